"""What SpectralFlow must show on a synthesized grid: outliers, conditional samples, hidden lines.

The grid is `stellarai.flows.toy.ToyStars` (an analytic population with iron, magnesium and
one broad hydrogen-like line, 1500 px, noise 0.005); half its magnesium lines are not
"listed", as lines missing from an analyst's line list.
"""

import astropy.units as u
import numpy as np
import pytest

from stellarai.flows import SpectralFlow, pixel_correlations, roc_auc
from stellarai.flows.toy import ToyStars

SETTINGS = {"epochs": 30, "batch_size": 128, "lr": 3e-3, "seed": 0, "progress": False}




@pytest.fixture(scope="module")
def toy():
    return ToyStars()


@pytest.fixture(scope="module")
def grid(toy):
    return toy.grid(1500, seed=0)


@pytest.fixture(scope="module")
def flow(grid):
    flow = SpectralFlow(n_components=12, conditional_on=("teff", "logg"), transforms=3,
                        hidden_features=(64, 64))
    flow.fit(grid, **SETTINGS)
    return flow


def _scores(flow, flux, labels):
    return flow.outlier_scores(flux, teff=labels[:, 0], logg=labels[:, 1])


@pytest.mark.parametrize("anomaly", ["abundance", "unlisted_line", "other_class"])
def test_anomalies_rank_as_outliers(flow, toy, anomaly):
    normal_labels = toy.labels(300, seed=10)
    normal = _scores(flow, toy.flux(normal_labels, seed=11), normal_labels)
    if anomaly == "abundance":  # [Mg/H] = +1.5, the training grid stops at +0.5
        labels = toy.labels(100, seed=20, mg_h=1.5)
        flux = toy.flux(labels, seed=21)
    elif anomaly == "unlisted_line":  # one extra line, central depth 0.1
        labels = toy.labels(100, seed=30)
        flux = toy.flux(labels, seed=31, extra_lines=toy.free_wavelengths[5], extra_depth=0.1)
    else:  # a hot star (weak metals, strong broad hydrogen) with a cool star's labels
        labels = toy.labels(100, seed=40)
        flux = toy.flux(labels, seed=41, metals=0.1, hydrogen=4.0, hydrogen_width=4.0)
    anomalous = _scores(flow, flux, labels)
    assert roc_auc(normal, anomalous) >= 0.95
    assert abs(np.median(normal)) < 1.0  # normal spectra score about 0


def test_conditional_samples_follow_label_dependence(flow, toy):
    teffs = np.linspace(4700, 6300, 5)
    h_pixel = int(np.argmin(np.abs(toy.wavelength.value - toy.h_center)))
    fe = toy.lines[np.asarray(toy.lines["element"]) == "fe"]
    strongest = fe[np.argmax(np.abs(fe["teff_power"]) * fe["strength"])]
    fe_pixel = int(np.argmin(np.abs(toy.wavelength.value - strongest["wavelength"].value)))
    for teff in teffs:
        sample = flow.sample(400, teff=teff, logg=4.25, seed=int(teff)).flux.value
        truth = toy.flux(toy.labels(400, seed=int(teff), teff=teff, logg=4.25), seed=1)
        for pixel in (h_pixel, fe_pixel):
            scatter = truth[:, pixel].std()  # the grid's scatter at this Teff
            assert abs(sample[:, pixel].mean() - truth[:, pixel].mean()) < scatter
            assert 0.5 < sample[:, pixel].std() / scatter < 2.0
    # the trend itself: the hydrogen line deepens with Teff as in the grid
    depth = [1 - flow.sample(200, teff=t, logg=4.25, seed=1).flux.value[:, h_pixel].mean()
             for t in teffs]
    expected = 1 - np.exp(-0.6 * (teffs / 6500) ** 4)
    assert np.allclose(depth, expected, atol=0.02)


def test_hidden_lines_recovered_by_mg_correlation_map(grid, toy):
    flow = SpectralFlow(n_components=12, conditional_on=("teff", "logg", "mg_h"),
                        transforms=3, hidden_features=(64, 64))
    flow.fit(grid, **SETTINGS)
    fixed = {"teff": 5500 * u.K, "logg": 4.5}
    cmap = pixel_correlations(flow, "mg_h", n_samples=4000, fixed=fixed, seed=0)
    wl, r = cmap.wavelength.value, np.abs(cmap.correlation)
    lines = toy.lines
    is_mg = np.asarray(lines["element"]) == "mg"
    mg_wl = lines["wavelength"].value[is_mg]
    listed = np.asarray(lines["listed"])[is_mg]
    depth = toy.line_depth([[5500.0, 4.5, -0.35, -0.25]])[0]  # at the map's Teff, log g
    strong = depth > 0.05  # stated strength: central depth above 0.05 at mid-range [Mg/H]
    assert strong.sum() >= 6 and (~strong).sum() >= 3  # weak lines exist too
    centre = np.abs(wl[:, None] - mg_wl[None, :]).argmin(0)
    assert r[centre[strong]].min() > 0.5
    far = np.abs(wl[:, None] - mg_wl[None, :]).min(1) > 5 * toy.sigma
    assert r[far].mean() < 0.2

    # detections: peaks of |r| > 0.5; those not at a listed line are hidden-line candidates
    above = r > 0.5
    starts = np.flatnonzero(above & ~np.r_[False, above[:-1]])
    ends = np.flatnonzero(above & ~np.r_[above[1:], False])
    peaks = np.array([wl[s + np.argmax(r[s:e + 1])] for s, e in zip(starts, ends, strict=True)])
    candidates = peaks[np.abs(peaks[:, None] - mg_wl[listed][None, :]).min(1) > 0.3]
    unlisted = mg_wl[~listed]
    hidden = mg_wl[~listed & strong]
    assert len(hidden) >= 3
    precision = (np.abs(candidates[:, None] - unlisted[None, :]).min(1) <= 0.2).mean()
    recall = (np.abs(hidden[:, None] - candidates[None, :]).min(1) <= 0.2).mean()
    assert precision >= 0.8
    assert recall >= 0.8
    assert cmap.plot().axes
