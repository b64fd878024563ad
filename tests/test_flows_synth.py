"""SpectralFlow on grids made by stellarai's own synthesizer (issue 8).

The grid: `stellarai.synth.Synthesizer` with the default line list over 8510-8590 A (85
lines, 13 of them titanium), pixels uniform in ln(lambda) at 3 per resolution element of
R = 40,000 (1123 px, 0.071 A), the synthesized flux convolved with a Gaussian of FWHM
lambda/R (the synthesizer applies no instrumental profile), and Gaussian noise at S/N = 200
per pixel. Labels: Teff 4800-6200 K, log g 4.0-4.8, [Fe/H] and [Ti/H] -0.5..+0.5 (Sobol),
vmic = 1 km/s, [alpha/Fe] = 0. The flow is conditioned on Teff, log g and [Ti/H]; [Fe/H]
is a nuisance it marginalizes over.

The "analyst's" line list is the synthesizer's without titanium: the Ti lines are the
hidden lines that the [Ti/H] correlation map must find.
"""

import math

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.table import vstack
from scipy.ndimage import gaussian_filter1d

from stellarai.flows import SpectralFlow, pixel_correlations, roc_auc
from stellarai.grids import SpectralGrid, fill_grid, generate_grid
from stellarai.synth import LineList, Synthesizer, synth_label_space

RANGE = (8510.0, 8590.0)  # Angstrom, vacuum
R, SAMPLING = 40_000, 3
SNR = 200.0
HIDDEN = "Ti"  # the element whose lines the analyst's line list lacks
TRAIN = {"teff": (4800.0, 6200.0), "logg": (4.0, 4.8), "feh": (-0.5, 0.5), "ti_h": (-0.5, 0.5)}
FIXED = {"vmic": 1.0, "alpha_fe": 0.0}
CONDITION = ("teff", "logg", "ti_h")
N_GRID = 1280
SETTINGS = {"epochs": 30, "batch_size": 128, "lr": 3e-3, "seed": 0, "progress": False}


class Observed:
    """A synthesizer seen through an instrument: Gaussian line-spread function of FWHM
    lambda/R (``SAMPLING`` pixels), the grid-generation interface of
    `stellarai.grids.generate_grid`."""

    def __init__(self, synth):
        self.synth = synth
        self.label_space = synth.label_space
        self.wavelength = synth.wavelength
        self.settings = {**synth.settings, "lsf_fwhm_pixels": SAMPLING}

    def flux(self, labels):
        flux = self.synth.flux(torch.as_tensor(labels, dtype=torch.float64),
                               progress=False).numpy()
        sigma = SAMPLING / (2 * math.sqrt(2 * math.log(2)))
        return gaussian_filter1d(flux, sigma, axis=1, mode="nearest")


def _synthesizer(lines, *, wide=False):
    """The grid's synthesizer (label bounds = training ranges), or one with the
    synthesizer's full label bounds (for the anomalies)."""
    space = synth_label_space([f"{HIDDEN.lower()}_h"], bounds=(-2.0, 1.0))
    if not wide:
        for name, (lo, hi) in TRAIN.items():
            space = space.with_bounds(name, lo, hi)
    synth = Synthesizer(lines, RANGE * u.AA, resolving_power=R, sampling=SAMPLING,
                        label_space=space)
    return Observed(synth)


def _noisy(flux, seed):
    rng = np.random.default_rng(seed)
    return flux + rng.normal(0.0, 1.0 / SNR, np.shape(flux))


def _labels(n, seed, **fixed):
    """Random labels of the training population (canonical units), as a dict of columns."""
    rng = np.random.default_rng(seed)
    labels = {name: rng.uniform(lo, hi, n) for name, (lo, hi) in TRAIN.items()}
    labels.update({name: np.full(n, value) for name, value in FIXED.items()})
    labels.update({name: np.full(n, float(value)) for name, value in fixed.items()})
    return labels


def _observe(synth, labels, seed):
    """Noisy flux (n, n_pix) for label columns (missing labels take their defaults)."""
    table = {name: labels.get(name, np.full(len(labels["teff"]),
                                            synth.label_space[name].default))
             for name in synth.label_space.names}
    grid = fill_grid(synth, table, batch_size=256, progress=False)
    return _noisy(np.asarray(grid.flux, dtype=np.float64), seed)


@pytest.fixture(scope="module")
def lines():
    return LineList.default([RANGE[0] - 30, RANGE[1] + 30] * u.AA)


@pytest.fixture(scope="module")
def synth(lines):
    return _synthesizer(lines)


@pytest.fixture(scope="module")
def grid(synth):
    clean = generate_grid(synth, N_GRID, method="sobol", seed=0, progress=False,
                          fixed=FIXED, batch_size=256)
    return SpectralGrid(clean.wavelength, _noisy(np.asarray(clean.flux), 1).astype(np.float32),
                        clean.label_array, clean.label_space,
                        provenance={**clean.provenance, "snr": SNR})


@pytest.fixture(scope="module")
def flow(grid):
    flow = SpectralFlow(n_components=16, conditional_on=CONDITION, transforms=3,
                        hidden_features=(64, 64))
    flow.fit(grid, **SETTINGS)
    return flow


def _scores(flow, flux, labels):
    return flow.outlier_scores(flux, **{name: labels[name] for name in CONDITION})


def test_grid_is_synthesized(grid, lines):
    assert grid.provenance["generator"] == "stellarai.grids.generate_grid"
    assert 1000 <= grid.n_pix <= 2000 and len(grid) == N_GRID
    inside = lines.select(RANGE * u.AA)
    assert len(inside) >= 60 and len(inside.select(species=HIDDEN)) >= 10


def _extra_line_list(lines):
    """The default list plus one Fe I line (central depth ~0.1) in the widest gap."""
    lam = lines.select(RANGE * u.AA).wavelength.value
    gap = int(np.argmax(np.diff(lam)))
    centre = 0.5 * (lam[gap] + lam[gap + 1])
    extra = LineList.from_columns(wavelength=[centre] * u.AA, species=["Fe 1"],
                                  excitation=[2.5] * u.eV, log_gf=[-3.6])
    return LineList(vstack([lines.table, extra.table])), centre


@pytest.mark.parametrize("anomaly", ["abundance", "unlisted_line", "other_class"])
def test_anomalies_rank_as_outliers(flow, synth, lines, anomaly):
    normal_labels = _labels(300, seed=10)
    normal = _scores(flow, _observe(synth, normal_labels, 11), normal_labels)
    wide = _synthesizer(lines, wide=True)
    labels = _labels(100, seed=20)
    if anomaly == "abundance":  # [Fe/H] = -1.5; the grid spans -0.5..+0.5
        flux = _observe(wide, {**labels, "feh": np.full(100, -1.5)}, 21)
        what = "[Fe/H] = -1.5"
    elif anomaly == "unlisted_line":  # one extra Fe I line, log gf = -3.6, chi = 2.5 eV
        extended, centre = _extra_line_list(lines)
        flux = _observe(_synthesizer(extended), labels, 31)
        plain = _observe(synth, labels, 31)
        pixel = int(np.argmin(np.abs(synth.wavelength.value - centre)))
        depth = float(np.median(plain[:, pixel] - flux[:, pixel]))
        assert depth > 0.05, f"the extra line at {centre:.2f} A is only {depth:.3f} deep"
        what = f"extra Fe I line at {centre:.2f} A, median depth {depth:.3f}"
    else:  # an A star (Teff 8500 K, log g 4.0) scored with a normal star's labels
        hot = {**labels, "teff": np.full(100, 8500.0), "logg": np.full(100, 4.0)}
        flux = _observe(wide, hot, 41)
        what = "Teff = 8500 K, log g = 4.0 with normal labels"
    anomalous = _scores(flow, flux, labels)
    auc = roc_auc(normal, anomalous)
    print(f"\n{anomaly}: ROC AUC = {auc:.4f} ({what})")
    assert auc >= 0.95, f"{anomaly} ({what}): ROC AUC = {auc:.4f} < 0.95"
    assert abs(np.median(normal)) < 1.0, f"median normal score {np.median(normal):.2f}"


def test_conditional_samples_follow_label_dependence(flow, synth):
    teffs = np.linspace(4900.0, 6100.0, 4)
    wl = synth.wavelength.value
    # the most Teff-sensitive pixel and the deepest pixel, according to the synthesizer
    probe = _labels(200, seed=50, logg=4.4, ti_h=0.0)
    cool = _observe(synth, {**probe, "teff": np.full(200, teffs[0])}, 0).mean(0)
    hot = _observe(synth, {**probe, "teff": np.full(200, teffs[-1])}, 0).mean(0)
    pixels = {"Teff-sensitive": int(np.argmax(np.abs(cool - hot))),
              "deepest": int(np.argmin(0.5 * (cool + hot)))}
    depths = {key: [] for key in pixels}
    for i, teff in enumerate(teffs):
        sample = flow.sample(400, teff=teff, logg=4.4, ti_h=0.0, seed=i, noise=True).flux.value
        truth = _observe(synth, _labels(400, seed=60 + i, teff=teff, logg=4.4, ti_h=0.0),
                         70 + i)
        for key, pixel in pixels.items():
            scatter = truth[:, pixel].std()  # the grid's scatter at these labels
            mean_s, mean_t = sample[:, pixel].mean(), truth[:, pixel].mean()
            ratio = sample[:, pixel].std() / scatter
            print(f"\n{key} pixel {wl[pixel]:.2f} A, Teff {teff:.0f}: flow {mean_s:.4f}, "
                  f"synth {mean_t:.4f}, scatter {scatter:.4f}, std ratio {ratio:.2f}")
            assert abs(mean_s - mean_t) < scatter, (
                f"{key} pixel at {teff:.0f} K: flow mean {mean_s:.4f} vs synthesizer "
                f"{mean_t:.4f}, scatter {scatter:.4f}")
            assert 0.5 < ratio < 2.0, f"{key} pixel at {teff:.0f} K: std ratio {ratio:.2f}"
            depths[key].append((1 - mean_s, 1 - mean_t, scatter))
    change = np.array(depths["Teff-sensitive"])
    d_flow, d_synth = change[-1, :2] - change[0, :2]
    assert abs(d_synth) > 3 * change[:, 2].max()  # a real trend, well above the scatter
    assert abs(d_flow - d_synth) < 0.1 * abs(d_synth), (
        f"depth change over {teffs[0]:.0f}-{teffs[-1]:.0f} K: flow {d_flow:.4f}, "
        f"synthesizer {d_synth:.4f}")


def test_hidden_lines_recovered_by_correlation_map(flow, synth, lines):
    analyst = lines[lines.element != HIDDEN]  # the analyst's list: no titanium
    hidden = lines.select(RANGE * u.AA, species=HIDDEN)
    assert len(analyst) + len(lines.select(species=HIDDEN)) == len(lines)
    teff, logg = 5000.0, 4.5
    cmap = pixel_correlations(flow, f"{HIDDEN.lower()}_h", n_samples=4000,
                              fixed={"teff": teff * u.K, "logg": logg}, seed=0)
    wl, r = cmap.wavelength.value, np.abs(cmap.correlation)

    # each hidden line's strength: its central depth at the map's labels, from the
    # synthesizer with and without it (noise-free, [Fe/H] = [Ti/H] = 0)
    at = {"teff": [teff], "logg": [logg], "feh": [0.0], "ti_h": [0.0], **{
        k: [v] for k, v in FIXED.items()}}
    with_ti = fill_grid(synth, at, progress=False).flux[0]
    without = fill_grid(_synthesizer(analyst), at, progress=False).flux[0]
    centre = np.abs(wl[:, None] - hidden.wavelength.value[None, :]).argmin(0)
    depth = np.asarray(without - with_ti, dtype=np.float64)[centre]
    cut = 0.02  # stated strength: central depth >= 0.02 of the continuum
    strong = depth >= cut

    # detections: local maxima of |r| (over +-2 px) above the threshold
    threshold, window = 0.5, 2
    padded = np.pad(r, window, constant_values=0.0)
    local_max = np.all([r >= padded[window + k:window + k + len(r)]
                        for k in range(-window, window + 1)], axis=0)
    peaks = np.flatnonzero(local_max & (r > threshold))
    on_line = np.abs(peaks[:, None] - centre[None, :]).min(1) <= window
    found = np.abs(centre[strong][:, None] - peaks[None, :]).min(1) <= window
    precision = on_line.mean() if len(peaks) else 0.0
    recall = found.mean()
    report = (f"{len(peaks)} peaks of |r| > {threshold}, {on_line.sum()} on {HIDDEN} lines; "
              f"{found.sum()}/{strong.sum()} {HIDDEN} lines of depth >= {cut} found: "
              f"precision {precision:.2f}, recall {recall:.2f}; depths "
              f"{np.round(np.sort(depth)[::-1], 3).tolist()}; missed "
              f"{np.round(hidden.wavelength.value[strong][~found], 2).tolist()}; "
              f"spurious {np.round(wl[peaks[~on_line]], 2).tolist()}")
    print("\n" + report)
    assert strong.sum() >= 6, report
    assert precision >= 0.8, report
    assert recall >= 0.8, report
    assert cmap.plot().axes
