"""Air/vacuum wavelength conversion against known line wavelengths and specutils."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
import torch
from specutils.utils.wcs_utils import air_to_vac, vac_to_air

from stellarai.errors import SpectrumInputError
from stellarai.spectra.airvac import (
    IAU_AIR_VACUUM_LIMIT,
    _air_to_vacuum_angstrom,
    _vacuum_to_air_angstrom,
    air_refractive_index,
    air_to_vacuum,
    vacuum_to_air,
)

# (vacuum, air) in Angstrom: NIST / SDSS line lists
KNOWN_LINES = {
    "H-alpha": (6564.614, 6562.801),
    "Na D2": (5891.583, 5889.951),
    "[O III] 5007": (5008.240, 5006.843),
    "Ca II K": (3934.777, 3933.663),
}

GRID = np.linspace(3000.0, 25000.0, 2001)


@pytest.mark.parametrize("line", sorted(KNOWN_LINES))
def test_known_lines(line):
    vac, air = KNOWN_LINES[line]
    assert abs(vacuum_to_air(vac * u.AA).to_value(u.AA) - air) < 0.002
    assert abs(air_to_vacuum(air * u.AA).to_value(u.AA) - vac) < 0.002


def test_refractive_index_value():
    n = air_refractive_index(6564.614 * u.AA)
    assert n == pytest.approx(6564.614 / 6562.801, abs=3e-7)
    assert np.shape(n) == ()
    assert air_refractive_index([5000, 6000] * u.nm).shape == (2,)
    with pytest.raises(SpectrumInputError, match="2000 Angstrom"):
        air_refractive_index(1500 * u.AA)


@pytest.mark.parametrize("start", ["vacuum", "air"])
def test_round_trip(start):
    wave = GRID * u.AA
    if start == "vacuum":
        back = air_to_vacuum(vacuum_to_air(wave))
    else:
        back = vacuum_to_air(air_to_vacuum(wave))
    assert np.max(np.abs(back.to_value(u.AA) - GRID)) < 1e-10


def test_air_is_shorter_and_monotonic():
    air = vacuum_to_air(GRID * u.AA).to_value(u.AA)
    shift = GRID - air
    assert np.all(shift > 0)
    # n - 1 falls from ~2.92e-4 at 3000 Å towards its long-wavelength limit 2.726e-4
    assert shift[0] / GRID[0] == pytest.approx(2.916e-4, rel=1e-3)
    assert shift[-1] / GRID[-1] == pytest.approx(2.728e-4, rel=1e-3)
    assert np.all(np.diff(air) > 0)


@pytest.mark.parametrize("unit", [u.nm, u.micron, u.AA, u.m])
def test_units_preserved(unit):
    wave = ([6564.614, 10000.0] * u.AA).to(unit)
    air = vacuum_to_air(wave)
    assert air.unit == unit
    assert np.allclose(air.to_value(u.AA), [6562.80110854, 9997.25919043], rtol=0, atol=1e-6)
    vac = air_to_vacuum(air)
    assert vac.unit == unit
    assert np.allclose(vac.to_value(u.AA), [6564.614, 10000.0], rtol=0, atol=1e-8)


def test_shapes_preserved():
    scalar = vacuum_to_air(5000 * u.AA)
    assert scalar.isscalar
    grid = GRID[:2000].reshape(40, 50) * u.nm / 10
    assert vacuum_to_air(grid).shape == (40, 50)
    assert air_to_vacuum(grid).shape == (40, 50)


def test_matches_specutils_edlen1966_exactly():
    # the PHYSICS.md formula is Edlén (1966), which specutils implements as "Edlen1966"
    ours = vacuum_to_air(GRID * u.AA).to_value(u.AA)
    theirs = vac_to_air(GRID * u.AA, method="Edlen1966").to_value(u.AA)
    assert np.max(np.abs(ours - theirs)) < 1e-9
    back = air_to_vac(GRID * u.AA, scheme="iteration", method="Edlen1966").to_value(u.AA)
    assert np.max(np.abs(air_to_vacuum(GRID * u.AA).to_value(u.AA) - back)) < 1e-8


@pytest.mark.parametrize("method", ["Morton2000", "Ciddor1996"])
def test_agrees_with_other_standards(method):
    # documented accuracy: < 2e-8 relative, <= 5e-4 Å over 3000–25000 Å
    ours = vacuum_to_air(GRID * u.AA).to_value(u.AA)
    theirs = vac_to_air(GRID * u.AA, method=method).to_value(u.AA)
    assert np.max(np.abs(ours - theirs)) < 5e-4
    assert np.max(np.abs(ours - theirs) / GRID) < 2e-8


def test_below_2000_kept_by_iau_convention():
    uv = [1215.67, 1548.2, 1999.9] * u.AA
    assert np.array_equal(vacuum_to_air(uv), uv)
    assert np.array_equal(air_to_vacuum(uv), uv)
    mixed = vacuum_to_air([1215.67, 6564.614] * u.AA).to_value(u.AA)
    assert mixed[0] == 1215.67 and abs(mixed[1] - 6562.801) < 0.002
    assert IAU_AIR_VACUUM_LIMIT == 2000 * u.AA


def test_below_2000_raise():
    with pytest.raises(SpectrumInputError, match=r"reaches 1215\.67 Angstrom, below the 2000"):
        vacuum_to_air([1215.67, 6000] * u.AA, below_2000="raise")
    with pytest.raises(SpectrumInputError, match="below the 2000"):
        air_to_vacuum(150 * u.nm, below_2000="raise")
    assert vacuum_to_air(3000 * u.AA, below_2000="raise") < 3000 * u.AA
    with pytest.raises(SpectrumInputError, match="below_2000 must be 'keep' or 'raise', got 'x'"):
        vacuum_to_air(3000 * u.AA, below_2000="x")


@pytest.mark.parametrize("bad", [6563.0, np.array([6563.0]), [6563.0]])
def test_unitless_refused(bad):
    with pytest.raises(SpectrumInputError, match="must be an astropy Quantity with a length unit"):
        vacuum_to_air(bad)
    with pytest.raises(SpectrumInputError, match="never guesses the unit"):
        air_to_vacuum(bad)


@pytest.mark.parametrize(
    "bad, kind",
    [
        (5e14 * u.Hz, "frequency"),
        (15000 / u.cm, "wavenumber"),
        (2 * u.eV, "energy"),
        (3.0 * u.one, "dimensionless"),
        (3.0 * u.s, "time"),
    ],
)
def test_non_wavelength_units_refused(bad, kind):
    with pytest.raises(SpectrumInputError, match=f"must be a wavelength.*{kind}.*u.spectral"):
        vacuum_to_air(bad)


@pytest.mark.parametrize(
    "values, match",
    [
        ([5000.0, np.nan], "must be finite, got nan at index 1"),
        ([np.inf], "must be finite, got inf at index 0"),
        ([5000.0, -1.0], "must be positive, got -1 Angstrom at index 1"),
        ([0.0], "must be positive"),
    ],
)
def test_invalid_values_refused(values, match):
    with pytest.raises(SpectrumInputError, match=match):
        air_to_vacuum(values * u.AA)


def test_errors_are_value_errors():
    assert issubclass(SpectrumInputError, ValueError)


def test_private_numpy_helpers_match_public():
    np.testing.assert_array_equal(
        _vacuum_to_air_angstrom(GRID), vacuum_to_air(GRID * u.AA).to_value(u.AA)
    )
    np.testing.assert_array_equal(
        _air_to_vacuum_angstrom(GRID), air_to_vacuum(GRID * u.AA).to_value(u.AA)
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_helpers_dtype_and_values(dtype):
    wave = torch.tensor(GRID, dtype=dtype)
    air = _vacuum_to_air_angstrom(wave)
    vac = _air_to_vacuum_angstrom(wave)
    assert air.dtype == dtype and vac.dtype == dtype
    tol = 1e-9 if dtype == torch.float64 else 4e-3
    np.testing.assert_allclose(air.numpy(), _vacuum_to_air_angstrom(GRID), rtol=0, atol=tol)
    np.testing.assert_allclose(vac.numpy(), _air_to_vacuum_angstrom(GRID), rtol=0, atol=tol)


def test_torch_helpers_differentiable():
    wave = torch.tensor([1215.67, 1603.0, 6564.614, 20000.0], dtype=torch.float64,
                        requires_grad=True)
    air = _vacuum_to_air_angstrom(wave)
    (grad,) = torch.autograd.grad(air.sum(), wave)
    assert torch.all(torch.isfinite(grad))  # no NaN from the pole at 1603 Å
    assert grad[0] == 1 and grad[1] == 1  # identity below 2000 Å
    # d(lambda_air)/d(lambda_vac) = (1/n) (1 + lambda dn/dlambda / n) ≈ 1/n
    lam = wave.detach()[2:].numpy()
    step = 1e-3
    numeric = (_vacuum_to_air_angstrom(lam + step) - _vacuum_to_air_angstrom(lam - step)) / (
        2 * step
    )
    np.testing.assert_allclose(grad[2:].numpy(), numeric, rtol=1e-9)

    air_in = torch.tensor([6562.801, 15000.0], dtype=torch.float64, requires_grad=True)
    vac = _air_to_vacuum_angstrom(air_in)
    (grad,) = torch.autograd.grad(vac.sum(), air_in)
    lam = air_in.detach().numpy()
    numeric = (_air_to_vacuum_angstrom(lam + step) - _air_to_vacuum_angstrom(lam - step)) / (
        2 * step
    )
    np.testing.assert_allclose(grad.numpy(), numeric, rtol=1e-9)
