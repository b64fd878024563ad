"""stellarai.lines on the real PHOENIX line parameters of blasé (../shared/data/linelists).

A simulated HPF order (HPF's own pixel wavelengths, order 19, 2,048 pixels) of the T4700
star with the areas of a known set of isolated lines (deeper than 10%, where the signal
measures an area to a few percent) changed by 0.7 or 1.3, a known RV and vsini,
R = 55,000 and S/N 400 is fitted from the unperturbed clone.
"""

import math
from pathlib import Path
from types import SimpleNamespace

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.nddata import StdDevUncertainty
from astropy.table import QTable
from matplotlib.figure import Figure
from specutils import Spectrum, SpectrumList

import stellarai.ops as ops
from stellarai.lines import (
    LineModel,
    build_chain,
    fit_lines,
    scan_regularization,
    telluric_lines,
)
from stellarai.ops import ParameterError

LINELISTS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "linelists"
TABLES = {"T4700": "phoenix_T4700_g4.5_HPF_blase_clone.ecsv",
          "T4100": "phoenix_T4100_g3.5_HPF_blase_clone.ecsv"}
RV, VSINI, NOISE = -9.6, 6.0, 0.0025


def _read(name):
    path = LINELISTS / TABLES[name]
    if not path.exists():
        pytest.skip(f"PHOENIX line table not found at {path} (../shared absent)")
    return QTable.read(path)


@pytest.fixture(scope="module")
def phoenix_table():
    """The 9,028-line T4700 table (skips when ../shared/data is absent)."""
    return _read("T4700")


def _pixels():
    (wavelength,) = ops.read_muler_template("telfit_HPFtemplate_temp286_hum050.csv",
                                            ["wavelength_A"])
    return wavelength.reshape(28, 2048)[19]


def _perturbed_set(lines, low, high, rng):
    """Isolated lines deeper than 10% (no other line deeper than 0.5% within 0.5 Angstrom),
    at least 1.5 Angstrom apart from each other."""
    depth = lines.peak_depth()
    centre = lines.rest_wavelength.numpy()
    visible = np.flatnonzero(depth > 0.005)
    chosen = []
    for i in rng.permutation(np.flatnonzero((depth > 0.1) & (centre > low) & (centre < high))):
        others = visible[visible != i]
        isolated = np.min(np.abs(centre[others] - centre[i])) > 0.5
        apart = all(abs(centre[i] - centre[j]) > 1.5 for j in chosen)
        if isolated and apart:
            chosen.append(int(i))
    return np.array(chosen[:10])


def _observe(lines, pixels, rng, telluric=None, noise=NOISE):
    frame = Spectrum(flux=np.ones(pixels.size) * u.one, spectral_axis=pixels * u.AA,
                     meta={"instrumental_resolution": 55_000.0})
    chain = build_chain(lines, frame, telluric=telluric, rv=RV, vsini=VSINI,
                        continuum_degree=0)
    with torch.no_grad():
        flux = chain.evaluate({})[1][0].numpy()
    return Spectrum(flux=(flux + noise * rng.standard_normal(flux.size)) * u.one,
                    spectral_axis=pixels * u.AA,
                    uncertainty=StdDevUncertainty(np.full(flux.size, noise)),
                    meta={"instrumental_resolution": 55_000.0})


@pytest.fixture(scope="module")
def observation(phoenix_table):
    pixels = _pixels()
    wavelength = phoenix_table["wavelength"].to_value(u.AA)
    sub = phoenix_table[(wavelength > pixels[0] - 15) & (wavelength < pixels[-1] + 15)]
    clone = LineModel.from_table(sub)
    truth = LineModel.from_table(sub)
    rng = np.random.default_rng(1)
    perturbed = _perturbed_set(truth, pixels[0] + 5, pixels[-1] - 5, rng)
    factor = np.ones(truth.n_lines)
    factor[perturbed] = np.where(np.arange(perturbed.size) % 2, 0.7, 1.3)
    truth.set(log_amplitude=truth.get("log_amplitude").value + np.log(factor))
    data = _observe(truth, pixels, rng)
    return SimpleNamespace(clone=clone, truth=truth, data=data, factor=factor,
                           perturbed=perturbed, pixels=pixels)


@pytest.fixture(scope="module")
def fitted(observation):
    return fit_lines(observation.clone, observation.data, rv=-5.0, vsini=3.0, steps=200,
                     progress=False)


@pytest.mark.parametrize("name", sorted(TABLES))
def test_clone_recovers_phoenix_template(name):
    table = _read(name)
    wavelength = table["wavelength"].to_value(u.AA)
    sub = table[(wavelength > 10_820.0) & (wavelength < 10_960.0)]
    template = LineModel.from_table(sub).spectrum()
    clone = LineModel.from_spectrum(template, prominence=0.002, steps=300)
    report = clone.clone_report
    assert report.residual_rms < 0.005  # below 0.5% RMS
    assert report.residual_rms < 0.5 * report.initial_rms
    # blended lines make no peak of their own: 75% or more of the lines are found
    # (88% for T4700, 77% for the more crowded T4100)
    assert 0.75 * len(sub) <= report.n_lines <= len(sub)


def test_fit_recovers_rv_vsini_and_changed_amplitudes(fitted, observation):
    assert observation.perturbed.size >= 6
    assert abs(fitted.rv.to_value(u.km / u.s) - RV) < 0.05
    assert abs(fitted.vsini.to_value(u.km / u.s) - VSINI) < 0.3
    ratio = np.asarray(fitted.changes["amplitude_ratio"])[observation.perturbed]
    truth = observation.factor[observation.perturbed]
    assert np.all(np.abs(ratio / truth - 1) < 0.10), ratio / truth
    assert fitted.residual_rms() == pytest.approx(1.0, abs=0.08)  # fits to the noise


def test_fit_products(fitted, observation):
    template = fitted.template()
    assert isinstance(template, Spectrum)
    assert template.flux.shape == (observation.clone.grid.shape[-1],)  # native grid
    changes = fitted.changes
    assert changes["shift"].unit == u.km / u.s and len(changes) == observation.clone.n_lines
    most = np.argsort(-np.asarray(changes["moved"]))[:10]
    assert len(set(most) & set(observation.perturbed)) >= 5  # the changed lines moved most
    model = fitted.model()
    assert isinstance(model, SpectrumList) and model[0].flux.shape == (2048,)
    figure = fitted.plot(order=0, n_marked=5)
    assert isinstance(figure, Figure) and len(figure.axes) == 2
    assert len(figure.axes[1].lines) == 2 + 5  # clone, fit, 5 marked lines
    with pytest.raises(ParameterError, match=r"order must be a row index in \[0, 1\)"):
        fitted.plot(order=3)


def test_regularization_scan(observation):
    # at S/N 100 the free lines of an unregularized fit chase the noise (half the order)
    noisy = _observe(observation.truth, observation.pixels, np.random.default_rng(2),
                     noise=0.01)[:1024]
    scan = scan_regularization(observation.clone, noisy, (0.0, 1.0, math.inf), rv=-5.0,
                               vsini=3.0, steps=150, progress=False)
    rows = {float(r["regularization"]): r for r in scan.table}
    # infinite strength returns the clone, untouched
    assert np.all(np.asarray(scan.fits[2].changes["moved"]) == 0.0)
    # zero strength fits the noise: below the noise on the fitted pixels, worse elsewhere
    assert rows[0.0]["train_rms"] < rows[1.0]["train_rms"] < 1.0
    assert scan.best == 1.0
    assert rows[1.0]["heldout_rms"] < rows[0.0]["heldout_rms"]
    assert rows[1.0]["heldout_rms"] < rows[math.inf]["heldout_rms"]


def test_bad_fit_arguments(observation):
    with pytest.raises(ParameterError, match="regularization must be >= 0"):
        fit_lines(observation.clone, observation.data, regularization=-1.0, progress=False)
    with pytest.raises(ParameterError, match="unknown parameter kind 'depth'"):
        fit_lines(observation.clone, observation.data, strengths={"depth": 1.0},
                  progress=False)
    with pytest.raises(ParameterError, match=r"optimizer must be one of \('adam', 'lbfgs'\)"):
        fit_lines(observation.clone, observation.data, optimizer="sgd", progress=False)
    with pytest.raises(ParameterError, match="rv must be a velocity"):
        fit_lines(observation.clone, observation.data, rv=3 * u.AA, progress=False)
    with pytest.raises(ParameterError, match=r"weights must have the data's shape \(1, 2048\)"):
        fit_lines(observation.clone, observation.data, weights=np.ones(5), progress=False)


def test_telluric_lines_cloned_and_fitted_jointly(observation):
    pixels = observation.pixels
    telluric = telluric_lines(wavelength_range=(pixels[0], pixels[-1]) * u.AA, steps=100)
    assert telluric.n_lines >= 5
    assert telluric.clone_report.residual_rms < 0.01
    wetter = telluric.regrid(telluric.grid)
    wetter.set(log_amplitude=wetter.get("log_amplitude").value + math.log(1.25))
    data = _observe(observation.clone, pixels, np.random.default_rng(5), telluric=wetter)
    fit = fit_lines(observation.clone, data, telluric=telluric, rv=-5.0, vsini=3.0,
                    steps=150, progress=False)
    assert abs(fit.rv.to_value(u.km / u.s) - RV) < 0.05
    depth = telluric.peak_depth()
    centre = telluric.rest_wavelength.numpy()
    strong = (depth > 0.05) & (centre > pixels[0] + 2) & (centre < pixels[-1] - 2)
    assert strong.sum() >= 10
    ratio = np.asarray(fit.telluric.changes()["amplitude_ratio"])[strong]
    assert np.median(ratio) == pytest.approx(1.25, abs=0.05)
