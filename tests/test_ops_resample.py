"""Model grids with margins and Resample onto the observed pixels."""

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.nddata import InverseVariance
from specutils import Spectrum, SpectrumList

from stellarai.demo import demo_spectrum_list
from stellarai.ops import (
    C_KMS,
    Doppler,
    GridCoverageError,
    Instrument,
    OperatorError,
    ParameterError,
    Resample,
    Rotation,
    Template,
    model_grid_for,
)
from stellarai.ops.kernels import log_step
from stellarai.spectra import OrderBatch, rebin_flux_conserving

F64 = torch.float64


def test_model_grid_covers_every_order_plus_margin_with_one_step():
    orders = demo_spectrum_list()  # three ragged orders, R = 50,000
    batch = OrderBatch.from_spectra(orders)
    grid = model_grid_for(orders, oversample=4, margin=150 * u.km / u.s)
    assert grid.shape[0] == 3 and grid.dtype == F64
    assert log_step(grid) == pytest.approx(1 / (4 * 50_000), rel=1e-9)
    grow = np.exp(150 / C_KMS)
    for row, n in enumerate(batch.npix.tolist()):
        w = batch.wavelength[row, :n]
        assert grid[row, 0] <= (w[0] - (w[1] - w[0]) / 2) / grow
        assert grid[row, -1] >= (w[-1] + (w[-1] - w[-2]) / 2) * grow
        assert grid[row, 0] > (w[0] - (w[1] - w[0]) / 2) / grow * (1 - 1e-9)
    assert model_grid_for(orders, 100_000, oversample=2).shape[1] == pytest.approx(
        grid.shape[1] * (300 + 0) / 300, rel=0.3)  # same step: R * oversample


def test_model_grid_bad_input():
    spec = Spectrum(flux=np.ones(50) * u.ct, spectral_axis=np.linspace(9000, 9005, 50) * u.AA)
    with pytest.raises(OperatorError, match="model_grid_for: the orders carry no instrumental "
                                            "resolution; pass resolving_power"):
        model_grid_for(spec)
    with pytest.raises(ParameterError, match="model_grid_for: margin must be a velocity"):
        model_grid_for(spec, 50_000, margin=3 * u.AA)
    with pytest.raises(ParameterError, match="model_grid_for: margin must be one velocity >= 0"):
        model_grid_for(spec, 50_000, margin=-3)
    with pytest.raises(ParameterError, match="model_grid_for: resolving_power"):
        model_grid_for(spec, 50.0)


def test_resample_conserves_flux_on_ragged_orders():
    orders = demo_spectrum_list()
    batch = OrderBatch.from_spectra(orders)
    grid = model_grid_for(orders, oversample=6, margin=50)
    line = 1 - 0.5 * torch.exp(-0.5 * ((grid - 10_850.0) / 0.2) ** 2)
    wavelength, flux = Resample(orders)(grid, line)
    assert torch.equal(wavelength, batch.wavelength)
    assert bool(torch.isfinite(flux).all())
    # the equivalent width of the line (order 0) is kept
    n = int(batch.npix[0])
    edges = torch.cat([batch.wavelength[0, :1] - (batch.wavelength[0, 1] - batch.wavelength[0, 0])
                       / 2, (batch.wavelength[0, 1:n] + batch.wavelength[0, :n - 1]) / 2,
                       batch.wavelength[0, n - 1:n] + (batch.wavelength[0, n - 1]
                                                      - batch.wavelength[0, n - 2]) / 2])
    ew_data = float(((1 - flux[0, :n]) * torch.diff(edges)).sum())
    assert ew_data == pytest.approx(0.5 * 0.2 * np.sqrt(2 * np.pi), rel=1e-6)


def test_grid_not_covering_an_order_plus_margins_names_order_and_range():
    orders = demo_spectrum_list()
    grid = model_grid_for(orders, margin=30 * u.km / u.s)
    star = Template((grid, torch.ones_like(grid)))
    ok = star | Rotation(vsini=10.0) | Doppler(rv=5.0) | Resample(orders)
    ok(None, None)
    too_fast = star | Rotation(vsini=10.0) | Doppler(rv=25.0) | Resample(orders)
    with pytest.raises(GridCoverageError) as info:
        too_fast(None, None)
    message = str(info.value)
    # the grid stays put; the shift (25 km/s + 2 px) and the rotation kernel (10 km/s + 3 px)
    # must both fit in the 30 km/s margin
    assert message.startswith("Resample: the model grid does not cover order 100 (row 0), "
                              "10815.000-10862.000 Angstrom plus a margin of 41 km/s (the "
                              "reach of Rotation and Doppler (41.0 km/s)): the grid row spans ")
    assert "spans 10813.895-10876.667 Angstrom, missing 10813.521-10813.895 Angstrom" in message
    assert "model_grid_for(orders, margin=...)" in message
    # an explicit margin adds to the kernels' reach
    with pytest.raises(GridCoverageError, match=r"plus a margin of 40 km/s \(margin=40 km/s\)"):
        (star | Resample(orders, margin=40 * u.km / u.s))(None, None)
    with pytest.raises(OperatorError, match="Resample: the model has 2 rows but the target has "
                                            "3 orders"):
        Resample(orders)(grid[:2], torch.ones_like(grid[:2]))
    with pytest.raises(ParameterError, match="Resample: margin must be a velocity"):
        Resample(orders, margin=1 * u.AA)


def test_instrument_reach_counts_in_the_margin():
    orders = demo_spectrum_list()
    grid = model_grid_for(orders, margin=10 * u.km / u.s)
    star = Template((grid, torch.ones_like(grid)))
    chain = star | Instrument(resolving_power=20_000) | Resample(orders)
    with pytest.raises(GridCoverageError, match=r"\(the reach of Instrument \(48.2 km/s\)\)"):
        chain(None, None)


def test_resample_on_spectra_propagates_inverse_variance_and_units():
    rng = np.random.default_rng(3)
    wl = np.linspace(10_000, 10_010, 400)
    ivar = rng.uniform(50, 100, 400)
    spec = Spectrum(flux=rng.normal(1, 0.1, 400) * u.ct, spectral_axis=wl * u.AA,
                    uncertainty=InverseVariance(ivar))
    target = Spectrum(flux=np.zeros(120) * u.ct,
                      spectral_axis=np.linspace(1.0002, 1.0008, 120) * u.micron)
    out = Resample(target)(spec)
    assert isinstance(out, Spectrum) and out.spectral_axis.unit == u.micron
    assert out.flux.unit == u.ct and isinstance(out.uncertainty, InverseVariance)
    ref = rebin_flux_conserving(torch.as_tensor(target.spectral_axis.to_value(u.AA)),
                                torch.as_tensor(wl), torch.as_tensor(spec.flux.value),
                                ivar=torch.as_tensor(ivar))
    assert np.allclose(out.flux.value, ref.flux.numpy(), rtol=1e-13)
    assert np.allclose(out.uncertainty.array, ref.ivar.numpy(), rtol=1e-13)
    listed = Resample(SpectrumList([target, target]))(spec)
    assert isinstance(listed, SpectrumList) and len(listed) == 2
