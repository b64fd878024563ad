"""Doppler: a shifted line lands where the relativistic formula puts it (to 0.01 km/s)."""

import astropy.units as u
import numpy as np
import pytest
import torch
from scipy.optimize import curve_fit
from test_ops_helpers import gaussian_line

from stellarai.ops import (
    C_KMS,
    Doppler,
    OperatorError,
    ParameterError,
    Resample,
    Template,
    doppler_factor,
)
from stellarai.ops.kernels import log_step, uniform_log_grid

F64 = torch.float64
LINE = 10_830.0  # Angstrom, vacuum
SIGMA = 0.08  # Angstrom



def relativistic(rv):
    beta = rv / C_KMS
    return np.sqrt((1 + beta) / (1 - beta))


@pytest.mark.parametrize("rv", [-250.0, -9.6, 0.37, 80.0, 250.0])
def test_shifted_line_lands_where_the_relativistic_formula_puts_it(rv):
    wl = torch.linspace(10_780.0, 10_880.0, 200_001, dtype=F64)
    flux = torch.as_tensor(gaussian_line(wl.numpy(), 0.6, LINE, SIGMA))
    grid = uniform_log_grid(10_800.0, 10_860.0, resolving_power=120_000,
                            samples_per_resolution=6)
    center = LINE * relativistic(rv)
    pixels = torch.arange(center - 1.5, center + 1.5, 0.013, dtype=F64)  # "data" pixels
    chain = Template((wl, flux), grid=grid) | Doppler(rv=rv * u.km / u.s) | Resample(pixels)
    with torch.no_grad():
        _, model = chain(None, None)
    popt, _ = curve_fit(gaussian_line, pixels.numpy(), model[0].numpy(),
                        p0=(0.5, center + 0.05, 0.1))
    measured_rv = C_KMS * ((popt[1] / LINE) ** 2 - 1) / ((popt[1] / LINE) ** 2 + 1)
    assert abs(measured_rv - rv) < 0.01
    # the classical formula would be off by up to beta^2/2 * c = 0.10 km/s at 250 km/s
    classical_rv = C_KMS * (popt[1] / LINE - 1)
    if abs(rv) == 250.0:
        assert abs(classical_rv - rv) > 0.09


def test_factor_and_moving_the_grid_are_exact():
    rv = torch.tensor([-30.0, 0.0, 1000.0], dtype=F64)
    assert np.allclose(doppler_factor(rv).numpy(), relativistic(rv.numpy()), rtol=0, atol=1e-15)
    grid = uniform_log_grid(9_000.0, 9_010.0, resolving_power=80_000)
    shifted, flux = Doppler(rv=42.0, method="grid")(grid, torch.ones_like(grid))
    expected = 0.5 * np.log((1 + 42.0 / C_KMS) / (1 - 42.0 / C_KMS))
    assert np.allclose((torch.log(shifted) - torch.log(grid)).detach().numpy(), expected,
                       rtol=0, atol=1e-12)
    assert log_step(shifted.detach()) == pytest.approx(log_step(grid), rel=1e-9)
    assert torch.equal(flux, torch.ones_like(grid))


def test_shift_along_a_log_grid_keeps_the_grid_and_the_equivalent_width():
    grid = uniform_log_grid(10_800.0, 10_860.0, resolving_power=100_000,
                            samples_per_resolution=5)
    line = torch.as_tensor(gaussian_line(grid.numpy(), 0.5, LINE, 0.1))
    for rv in (-37.3, 0.21, 12.0):
        wavelength, shifted = Doppler(rv=rv)(grid, line)
        assert wavelength is grid  # the grid stays in the observatory frame
        expected = gaussian_line(grid.numpy(), 0.5, LINE * relativistic(rv), 0.1)
        assert np.abs(shifted.detach().numpy() - expected).max() < 2e-4  # cubic, 5 px/FWHM
        assert float((1 - shifted.detach()).sum()) == pytest.approx(float((1 - line).sum()),
                                                                    rel=1e-12)
    # smooth in rv: the derivative is continuous across whole-pixel shifts
    seven_pixels = C_KMS * np.tanh(7 * log_step(grid))  # shifts by exactly 7 pixels
    pixel = int(line.argmin()) + 9  # on the line's flank after the shift
    slopes = []
    for offset in (-1e-7, 1e-7):
        op = Doppler(rv=seven_pixels + offset)
        _, out = op(grid, line)
        out[pixel].backward()
        slopes.append(op.tensors["rv"].grad.item())
    assert slopes[0] == pytest.approx(slopes[1], rel=1e-4, abs=1e-9)
    with pytest.raises(OperatorError, match="Doppler\\(method='shift'\\) needs a wavelength grid"):
        Doppler(method="shift")(torch.linspace(1.0, 2.0, 5, dtype=F64), torch.ones(5, dtype=F64))


def test_per_order_rv_and_gradient():
    grid = torch.stack([uniform_log_grid(9_000.0, 9_001.0, resolving_power=80_000)] * 2)
    shifted_rows = Doppler(rv=[1.0, -2.0])(grid, torch.exp(-((grid - 9_000.5) / 0.05) ** 2))[1]
    for row, rv in enumerate((1.0, -2.0)):
        single = Doppler(rv=rv)(grid[row], torch.exp(-((grid[row] - 9_000.5) / 0.05) ** 2))[1]
        assert torch.allclose(shifted_rows[row], single, atol=1e-15)
    op = Doppler(rv=[1.0, -2.0], method="grid")
    shifted, _ = op(grid, torch.ones_like(grid))
    assert shifted.shape == grid.shape
    ratio = (shifted / grid).detach()[:, 0].numpy()
    assert np.allclose(ratio, relativistic(np.array([1.0, -2.0])), atol=1e-15)
    shifted.sum().backward()
    assert op.tensors["rv"].grad.shape == (2,)
    assert float(op.tensors["rv"].grad[0]) == pytest.approx(float(grid[0].sum()) / C_KMS,
                                                            rel=1e-4)


def test_doppler_bad_input():
    with pytest.raises(ParameterError, match="Doppler: parameter 'rv' must be a velocity"):
        Doppler(rv=1 * u.m)
    with pytest.raises(ParameterError, match=r"Doppler: parameter 'rv' = -1500 km / s"):
        Doppler(rv=-1.5e6 * u.m / u.s)
    with pytest.raises(ParameterError, match="must be a number or a Quantity"):
        Doppler(rv="fast")
