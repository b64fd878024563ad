"""Simulated HPF observations: truth recorded, noise at the SNR, seeded, HPF pixels."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
import torch

from stellarai.fitting.simulate import (
    HPF_N_PIXELS,
    SimulationError,
    hpf_pixel_wavelengths,
    simulate_hpf_observation,
    simulate_observation,
)
from stellarai.ops import C_KMS, Template
from stellarai.ops.kernels import uniform_log_grid


@pytest.fixture(scope="module")
def observed():
    return simulate_hpf_observation({"teff": 4900 * u.K, "feh": 0.1}, rv=15 * u.km / u.s,
                                    vsini=4 * u.km / u.s, telluric_strength=1.4, snr=80,
                                    orders=[0, 19], seed=5)


def test_truth_is_recorded_in_table_and_meta(observed):
    spectra, truth = observed
    values = dict(zip(truth["name"], truth["value"], strict=True))
    assert values == pytest.approx({"teff": 4900, "logg": 4.5, "feh": 0.1, "vmic": 1.1,
                                    "vsini": 4, "rv": 15, "telluric_strength": 1.4})
    assert list(truth["unit"]) == ["K", "dex", "dex", "km / s", "km / s", "km / s", ""]
    for spectrum in spectra:
        assert spectrum.meta["truth"] == pytest.approx(values)
        assert spectrum.meta["instrumental_resolution"] == 55_000
        assert spectrum.meta["snr"] == 80 and spectrum.meta["seed"] == 5
    assert [s.meta["m"] for s in spectra] == [0, 19]


def test_wavelengths_are_hpf_pixels_and_blue_end_trimmed_to_emulator(observed):
    spectra, _ = observed
    pixels = hpf_pixel_wavelengths()
    assert pixels.shape == (28, HPF_N_PIXELS)
    assert np.all(np.diff(pixels.value, axis=1) > 0)
    # HPF: 1.5-2.2 km/s per pixel, orders from 8079 to 12786 Angstrom.
    velocity_step = np.diff(np.log(pixels.value), axis=1) * C_KMS
    assert 1.4 < velocity_step.min() and velocity_step.max() < 2.3
    assert pixels[0, 0].value == pytest.approx(8079.04, abs=0.01)
    assert pixels[-1, -1].value == pytest.approx(12785.83, abs=0.01)
    red = spectra[1]
    np.testing.assert_array_equal(red.spectral_axis.to_value(u.AA), pixels[19].value)
    assert red.meta["trimmed_pixels"] == 0
    blue = spectra[0]
    n = blue.flux.size
    assert blue.meta["trimmed_pixels"] == HPF_N_PIXELS - n > 0
    np.testing.assert_array_equal(blue.spectral_axis.to_value(u.AA), pixels[0, -n:].value)
    # the default emulator starts at 8080 A; the first kept pixel is 300 km/s inside it
    assert blue.spectral_axis[0].value >= 8080 * np.exp(300 / C_KMS)


def test_noise_matches_snr_and_uncertainties():
    kwargs = dict(rv=-5 * u.km / u.s, vsini=3 * u.km / u.s, telluric_strength=1.0,
                  orders=[19], seed=11)
    noisy, _ = simulate_hpf_observation(snr=50, **kwargs)
    spectrum = noisy[0]
    sigma = spectrum.uncertainty.array
    coefficients = np.array(spectrum.meta["continuum"])
    wavelength = spectrum.spectral_axis.to_value(u.AA)
    x = 2 * (wavelength - wavelength[0]) / (wavelength[-1] - wavelength[0]) - 1
    continuum = np.polynomial.chebyshev.chebval(x, coefficients)
    np.testing.assert_allclose(sigma, continuum / 50, rtol=1e-3)
    # same seed and parameters at a huge SNR: the noiseless spectrum (up to 1e-6)
    clean, _ = simulate_hpf_observation(snr=1e6, **kwargs)
    pulls = (spectrum.flux.value - clean[0].flux.value) / sigma
    assert abs(np.std(pulls) - 1) < 0.05 and abs(np.mean(pulls)) < 0.1


def test_same_seed_same_spectrum_other_seed_other_noise():
    a, _ = simulate_hpf_observation(orders=[18], seed=2)
    b, _ = simulate_hpf_observation(orders=[18], seed=2)
    c, _ = simulate_hpf_observation(orders=[18], seed=3)
    np.testing.assert_array_equal(a[0].flux.value, b[0].flux.value)
    assert not np.allclose(a[0].flux.value, c[0].flux.value)


def test_injected_rv_moves_the_lines():
    at_rest, _ = simulate_hpf_observation(orders=[19], rv=0.0, snr=1e6, continuum=False,
                                          telluric_strength=0.0)
    moving, _ = simulate_hpf_observation(orders=[19], rv=30.0, snr=1e6, continuum=False,
                                         telluric_strength=0.0)
    wavelength = at_rest[0].spectral_axis.to_value(u.AA)
    trial = np.arange(20.0, 40.0, 0.05)
    inside = slice(200, -200)
    misfit = [np.sum((np.interp(wavelength / (1 + v / C_KMS), wavelength,
                                at_rest[0].flux.value) - moving[0].flux.value)[inside] ** 2)
              for v in trial]
    assert trial[np.argmin(misfit)] == pytest.approx(30, abs=0.2)


def test_generic_simulation_on_a_template():
    grid = uniform_log_grid(10_000.0, 10_040.0, resolving_power=50_000)
    model = Template((grid, torch.ones_like(grid)))
    pixels = [np.linspace(10_005.0, 10_015.0, 100) * u.AA,
              np.linspace(10_020.0, 10_030.0, 80) * u.AA]
    out = simulate_observation(model, pixels, snr=1e9, continuum=[[2.0, 0.5], [1.0, 0.0]],
                               order_numbers=[7, 8], meta={"origin": "test"})
    assert [s.flux.size for s in out] == [100, 80]
    assert out[0].flux.value[0] == pytest.approx(1.5, rel=1e-6)
    assert out[0].flux.value[-1] == pytest.approx(2.5, rel=1e-6)
    assert out[1].meta["m"] == 8 and out[1].meta["origin"] == "test"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"orders": [28]}, "orders must be distinct integers 0-27"),
    ({"orders": [3, 3]}, "orders must be distinct"),
    ({"snr": 0}, "snr must be a positive finite number"),
    ({"labels": {"alpha": 0.2}}, r"labels \['alpha'\] are not labels of the emulator"),
    ({"emulator": 3}, "emulator must be 'default', a path"),
])
def test_bad_input_is_refused(kwargs, message):
    labels = kwargs.pop("labels", None)
    with pytest.raises(SimulationError, match=message):
        simulate_hpf_observation(labels, **{"orders": [19], **kwargs})


def test_order_outside_the_emulator_is_refused():
    with pytest.raises(SimulationError, match="HPF order 0 .* lies outside the emulator"):
        simulate_hpf_observation(orders=[0], margin=5000 * u.km / u.s)
