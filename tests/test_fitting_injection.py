"""Injection-recovery on synthetic multi-order HPF-like observations at SNR 100.

The observations are made by the same forward model the fit uses (the shipped default
emulator, rotation, Doppler shift, muler's TelFit telluric template, R = 55,000, resampled
onto HPF's own pixel wavelengths of nine line-rich orders, 11-19, the first of them
dominated by water lines), times a random quadratic continuum per
order, plus Gaussian noise: so the fitted values must scatter around the truth by their
quoted uncertainties.
"""

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.nddata import StdDevUncertainty
from specutils import Spectrum, SpectrumList

import stellarai.ops as ops
from stellarai.emulators import load
from stellarai.fitting import SpectrumFitter

ORDERS = tuple(range(11, 20))
SNR = 100.0
N_INJECTIONS = 30
STARTS = 2
NAMES = ("teff", "logg", "feh", "vmic", "vsini", "rv", "strength")


def _pixels():
    (wavelength,) = ops.read_muler_template("telfit_HPFtemplate_temp286_hum050.csv",
                                            ["wavelength_A"])
    return wavelength.reshape(28, 2048)[list(ORDERS)]


def _model():
    return (load("default") | ops.Rotation(vsini=5 * u.km / u.s)
            | ops.Doppler(rv=0.0, bounds={"rv": (-60, 60) * u.km / u.s})
            * ops.Telluric.from_muler("hpf") | ops.Instrument(resolving_power=55_000))


def _observations(truths, seed):
    """Noisy spectra (counts) for each row of ``truths`` (physical, in NAMES order)."""
    pixels = _pixels()
    template = SpectrumList([Spectrum(flux=np.ones(2048) * u.ct, spectral_axis=p * u.AA,
                                      meta={"instrumental_resolution": 55_000})
                             for p in pixels])
    problem = SpectrumFitter(_model(), starts=1, progress=False).problem(template)
    assert problem.display_names == NAMES
    with torch.no_grad():
        clean = problem.model_flux(torch.as_tensor(truths)).numpy()
    rng = np.random.default_rng(seed)
    out = []
    for flux in clean:
        orders = []
        for i, row in enumerate(flux):
            x = 2 * (pixels[i] - pixels[i][0]) / (pixels[i][-1] - pixels[i][0]) - 1
            level = 1000 * (1 + 0.05 * rng.standard_normal() * x
                            + 0.03 * rng.standard_normal() * (2 * x**2 - 1))
            signal = row * level
            sigma = signal / SNR
            orders.append(Spectrum(
                flux=(signal + sigma * rng.standard_normal(2048)) * u.ct,
                spectral_axis=pixels[i] * u.AA, uncertainty=StdDevUncertainty(sigma),
                meta={"instrumental_resolution": 55_000, "m": ORDERS[i]}))
        out.append(SpectrumList(orders))
    return out


def _truths(n, seed):
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(4500, 6000, n), rng.uniform(3.8, 4.8, n),
                            rng.uniform(-0.7, 0.3, n), rng.uniform(0.7, 1.8, n),
                            rng.uniform(2, 8, n), rng.uniform(-40, 40, n),
                            rng.uniform(0.6, 1.6, n)])


@pytest.fixture(scope="module")
def injections():
    truths = _truths(N_INJECTIONS, seed=7)
    data = _observations(truths, seed=11)
    fitter = SpectrumFitter(_model(), starts=STARTS, progress=False)
    return truths, data, fitter.fit_batch(data)


def test_every_injection_converges_and_recovers_within_three_sigma(injections):
    truths, _, results = injections
    within = []
    for truth, result in zip(truths, results, strict=True):
        assert result.converged, result.message
        assert result.names == NAMES
        assert 0.9 < result.reduced_chi2 < 1.1
        assert np.all(np.isfinite(result.uncertainties))
        within.append(np.all(np.abs((result.values - truth) / result.uncertainties) < 3))
    # with 7 parameters, 2% of Gaussian injections have some label beyond 3 sigma: at
    # most one of 30 may (a fit in a wrong local minimum is 10-35 sigma off)
    assert np.sum(~np.array(within)) <= 1
    assert within[0]


def test_radial_velocity_within_0p1_kms(injections):
    truths, _, results = injections
    error = np.array([r["rv"].to_value(u.km / u.s) for r in results]) - truths[:, 5]
    sigma = np.array([r.uncertainty("rv").to_value(u.km / u.s) for r in results])
    # nine orders at SNR 100 give sigma(rv) = 0.02-0.06 km/s
    assert np.median(sigma) < 0.04
    assert np.median(np.abs(error)) < 0.04
    assert np.all(np.abs(error) < 0.1), error
    assert np.all(np.abs(error) < 4 * sigma)


def test_pull_distribution_is_honest(injections):
    truths, _, results = injections
    pulls = np.array([(r.values - t) / r.uncertainties
                      for r, t in zip(results, truths, strict=True)])
    assert pulls.shape == (N_INJECTIONS, len(NAMES))
    assert 0.7 <= pulls.std() <= 1.5
    assert np.mean(np.abs(pulls) < 3) > 0.95
    per_parameter = pulls.std(axis=0)
    assert np.all((per_parameter > 0.6) & (per_parameter < 1.6)), per_parameter
    assert np.all(np.abs(pulls.mean(axis=0)) < 0.7)
    rv_pulls = pulls[:, NAMES.index("rv")]
    assert 0.7 <= rv_pulls.std() <= 1.3 and abs(rv_pulls.mean()) < 0.4


def test_batch_equals_one_by_one(injections):
    _, data, results = injections
    alone = SpectrumFitter(_model(), starts=STARTS, progress=False).fit(data[3])
    np.testing.assert_allclose(alone.values, results[3].values, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(alone.uncertainties, results[3].uncertainties, rtol=1e-5)
    assert alone.chi2 == pytest.approx(results[3].chi2, rel=1e-10)
