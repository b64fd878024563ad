"""Telluric transmission: muler's HPF template, strength, observatory frame, coverage."""

from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.io import fits
from scipy.optimize import curve_fit
from specutils import Spectrum
from test_ops_helpers import gaussian_line

from stellarai.ops import (
    C_KMS,
    Doppler,
    GridCoverageError,
    Instrument,
    OperatorError,
    ParameterError,
    Resample,
    Telluric,
    Template,
    model_grid_for,
    read_muler_template,
)
from stellarai.ops.kernels import uniform_log_grid

F64 = torch.float64
HPF_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hpf"
TELFIT = "telfit_HPFtemplate_temp286_hum050.csv"


def template_orders():
    wavelength, transmission = read_muler_template(TELFIT, ["wavelength_A", "transmission"])
    return wavelength.reshape(28, 2048).copy(), transmission.reshape(28, 2048).copy()


def hpf_pixels(order):
    """Pixel wavelengths of one HPF order: a real Goldilocks file if present, else the
    template's own pixels (the same numbers: muler tabulates the template on them)."""
    files = sorted(HPF_DIR.glob("Goldilocks_*.spectra.fits"))
    if files:
        with fits.open(files[0]) as hdus:
            return np.asarray(hdus["Sci Wavl"].data[order], dtype=np.float64), files[0].name
    return template_orders()[0][order], "muler template pixels"


def reference(wavelength, transmission, pixels, resolving_power):
    """Independent numpy model: linear interpolant, Gaussian in velocity, pixel averages."""
    step = 0.05  # km/s
    fine = np.exp(np.arange(np.log(pixels[0]) - 1e-3, np.log(pixels[-1]) + 1e-3, step / C_KMS))
    values = np.interp(fine, wavelength, transmission)
    sigma = C_KMS / resolving_power / (2 * np.sqrt(2 * np.log(2)))
    taps = np.arange(-int(8 * sigma / step), int(8 * sigma / step) + 1) * step
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    values = np.convolve(values, kernel / kernel.sum(), mode="same")
    edges = np.concatenate([[1.5 * pixels[0] - 0.5 * pixels[1]], (pixels[1:] + pixels[:-1]) / 2,
                            [1.5 * pixels[-1] - 0.5 * pixels[-2]]])
    cumulative = np.concatenate([[0], np.cumsum((values[1:] + values[:-1]) / 2 * np.diff(fine))])
    return np.diff(np.interp(edges, fine, cumulative)) / np.diff(edges)


def test_muler_template_columns_units_and_segments():
    tel = Telluric.from_muler("hpf")
    wavelength, transmission = template_orders()
    assert tel.table_wavelength.numel() == 57_344
    assert np.array_equal(tel.table_wavelength.numpy(), wavelength.ravel())
    assert len(tel.segments) == 28
    assert tel.segments[19] == (wavelength[19, 0], wavelength[19, -1])
    assert 0 < transmission.min() and transmission.max() <= 1.0
    assert tel.param_names == ("strength", "rv") and tel.free_names == ("strength",)
    with pytest.raises(OperatorError, match="Telluric.from_muler: no template for 'igrins'; "
                                            r"muler ships \['hpf'\]; use Telluric.from_spectrum"):
        Telluric.from_muler("igrins")


def test_flat_star_times_telluric_matches_the_template_at_the_data_pixels():
    wavelength, transmission = template_orders()
    for order in (5, 19):  # a clean order and one full of water lines
        pixels, source = hpf_pixels(order)
        spec = Spectrum(flux=np.ones(2048) * u.ct, spectral_axis=pixels * u.AA,
                        meta={"instrumental_resolution": 55_000})
        grid = model_grid_for(spec, oversample=20, margin=40 * u.km / u.s)
        chain = (Template((grid, torch.ones_like(grid))) * Telluric.from_muler("hpf")
                 | Instrument.from_data(spec) | Resample(spec))
        with torch.no_grad():
            _, model = chain(None, None)
        model = model[0].numpy()
        expected = reference(wavelength[order], transmission[order], pixels, 55_000)
        inner = slice(12, -12)  # the template ends with the order: skip the kernel's reach
        assert np.abs(model - expected)[inner].max() < 1e-3, source
        ew_model = (1 - model[inner]).sum()
        assert ew_model == pytest.approx((1 - expected[inner]).sum(), rel=1e-4)
        assert ew_model == pytest.approx((1 - transmission[order][inner]).sum(), rel=1e-3)
    # strength is an exponent: T ** 2 at strength 2
    doubled = Telluric.from_muler("hpf", strength=2.0)
    _, squared = doubled(torch.as_tensor(pixels), torch.ones(2048, dtype=F64))
    assert np.allclose(squared.detach().numpy(), transmission[19] ** 2, rtol=1e-12)



def test_only_the_star_is_doppler_shifted():
    fine = torch.linspace(10_000.0, 10_040.0, 80_001, dtype=F64)
    star_line, telluric_line = 10_015.0, 10_025.0
    star = torch.as_tensor(gaussian_line(fine.numpy(), 0.5, star_line, 0.1))
    telluric = Telluric(fine.numpy(), gaussian_line(fine.numpy(), 0.4, telluric_line, 0.1))
    grid = uniform_log_grid(10_005.0, 10_035.0, resolving_power=100_000,
                            samples_per_resolution=8)
    pixels = torch.arange(10_010.0, 10_030.0, 0.02, dtype=F64)
    rv = 60.0
    chain = (Template((fine, star), grid=grid) | Doppler(rv=rv)) * telluric | Resample(pixels)
    with torch.no_grad():
        _, model = chain(None, None)
    x, y = pixels.numpy(), model[0].numpy()
    factor = np.sqrt((1 + rv / C_KMS) / (1 - rv / C_KMS))
    for center, depth in ((star_line * factor, 0.5), (telluric_line, 0.4)):
        near = np.abs(x - center) < 1.0
        popt, _ = curve_fit(gaussian_line, x[near], y[near], p0=(depth, center + 0.03, 0.1))
        assert abs(popt[1] - center) / center * C_KMS < 0.01  # km/s
    # the telluric's own offset moves only the telluric line
    telluric.free("rv").set(rv=-3 * u.km / u.s)
    with torch.no_grad():
        _, shifted = chain(None, None)
    near = np.abs(x - telluric_line) < 1.0
    popt, _ = curve_fit(gaussian_line, x[near], shifted[0].numpy()[near],
                        p0=(0.4, telluric_line, 0.1))
    assert (popt[1] / telluric_line - 1) * C_KMS == pytest.approx(-3.0, abs=0.01)


def test_template_not_covering_the_data_is_an_error():
    beyond = Spectrum(flux=np.ones(100) * u.ct,
                      spectral_axis=np.linspace(12_780.0, 12_800.0, 100) * u.AA,
                      meta={"m": 28, "instrumental_resolution": 55_000})
    tel = Telluric.from_muler("hpf")
    with pytest.raises(GridCoverageError, match=r"Telluric: the transmission template does not "
                                                r"cover order 28 \(row 0\), 12780.000-12800.000 "
                                                r"Angstrom \(nearest covered segment "
                                                r"12624.756-12785.831 Angstrom; missing "
                                                r"12785.831-12800.000 Angstrom\)"):
        tel(beyond)
    grid = model_grid_for(beyond, margin=50)
    star = Template((grid, torch.ones_like(grid)))
    with pytest.raises(GridCoverageError, match="Telluric: the transmission template does not "
                                                "cover order 28"):
        star * tel | Instrument.from_data(beyond) | Resample(beyond)  # fails at composition
    gap = Spectrum(flux=np.ones(100) * u.ct,
                   spectral_axis=np.linspace(10_780.0, 10_800.0, 100) * u.AA)
    with pytest.raises(GridCoverageError, match=r"missing 10780.000-10800.000 Angstrom"):
        tel(gap)


def test_telluric_bad_input():
    with pytest.raises(ParameterError, match=r"Telluric: parameter 'strength' = -1 is outside "
                                             r"its bounds \[0, 10\]"):
        Telluric.from_muler("hpf", strength=-1)
    with pytest.raises(ParameterError, match="Telluric: parameter 'rv' must be a velocity"):
        Telluric.from_muler("hpf", rv=1 * u.AA)
    with pytest.raises(OperatorError, match="Telluric: the transmission template has negative"):
        Telluric([1.0, 2.0, 3.0], [1.0, -0.1, 1.0])
    with pytest.raises(OperatorError, match="strictly increasing"):
        Telluric([1.0, 3.0, 2.0], [1.0, 1.0, 1.0])


def test_from_spectrum_joins_orders():
    wavelength, transmission = template_orders()
    spectra = [Spectrum(flux=transmission[i] * u.dimensionless_unscaled,
                        spectral_axis=wavelength[i] * u.AA) for i in (20, 19)]
    tel = Telluric.from_spectrum(spectra)
    assert len(tel.segments) == 2 and tel.segments[0][0] == wavelength[19, 0]
    _, flux = tel(torch.as_tensor(wavelength[20]), torch.ones(2048, dtype=F64))
    assert np.allclose(flux.detach().numpy(), transmission[20], rtol=1e-14)


def test_coverage_is_checked_after_the_resample_too():
    beyond = Spectrum(flux=np.ones(100) * u.ct,
                      spectral_axis=np.linspace(12_780.0, 12_800.0, 100) * u.AA)
    grid = model_grid_for(beyond, 55_000, margin=50)
    star = Template((grid, torch.ones_like(grid)))
    with pytest.raises(GridCoverageError, match="Telluric: the transmission template does not "
                                                "cover order 0"):
        star | Resample(beyond) | Telluric.from_muler("hpf")
