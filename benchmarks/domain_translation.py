"""Cycle-StarNet domain translation on stellarai's synthesizer: chi^2 and missing lines.

Two domains of spectra from :mod:`stellarai.synth` over ``--wavelength-range`` (vacuum;
pixels uniform in ln(lambda) at 1.5 per resolution element of R = 20,000). The default,
4700-4800 Angstrom, is a window rich in titanium lines (35 of the default line list's 270
lines there); the earlier window, 6450-6550 Angstrom (23 Ti lines of 148), leaves the
synthetic encoder only three kept Ti lines whose flux changes by more than 0.01 per dex to
learn [Ti/H] from, and five withheld lines deep enough to score recall on, so the map's
recall there moves in steps of 0.2 and hangs on lines near the threshold (see
docs/includes/bench_domain.rst).

- synthetic: the analyst's line list, which lacks two thirds of the titanium lines (it
  keeps every third Ti line by wavelength; ``--keep-every``), through a Gaussian
  line-spread function of FWHM 2 px; emulated by a The Payne (``PayneEmulator``) trained
  on ``--n-grid`` such spectra;
- observed: the full line list, a different line-spread function (FWHM 2.6 px), a
  continuum wiggle per star (a random quadratic in wavelength, up to +-1.5 %), and
  Gaussian noise at S/N = 100. Their labels are drawn independently of the grid's
  (unpaired).

Labels: Teff 4800-6200 K, log g 4.0-4.8, [Fe/H] and [Ti/H] -0.5..+0.5 (``--ti-range``),
vmic = 1 km/s, [alpha/Fe] = 0. A ``DomainTranslator`` learns the translation without pairs; then, on
``--n-test`` held-out observed spectra with known labels:

- mean reduced chi^2 between the observed spectra and (a) the emulator's spectra at their
  true labels, (b) those spectra translated to the observed domain with each observed
  spectrum's own split latent (as Cycle-StarNet compares them), and (c) translated with
  the mean split latent;
- precision and recall of the [Ti/H] missing-lines map (the translated response minus
  the synthetic generator's response from the same latent, and, for comparison, minus
  the emulator's own response) against the withheld Ti lines (detections:
  ``MissingLinesMap.lines(threshold)``, within +-2 px of a line; recall over withheld lines
  of central depth >= 0.02 at the reference labels' median);
- the time of each stage on this machine.

Usage::

    python benchmarks/domain_translation.py [--threads 1] [--epochs 30] \\
        [--write docs/includes/bench_domain.rst]
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from pathlib import Path

import astropy.units as u
import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

import stellarai
from stellarai.domain import DomainTranslator
from stellarai.emulators import PayneEmulator, Trainer
from stellarai.grids import SpectralGrid, fill_grid, sample_labels
from stellarai.synth import LineList, Synthesizer, synth_label_space

RANGE = (4700.0, 4800.0)  # rich in Ti lines; see the docstring
R, SAMPLING = 20_000, 1.5
TRAIN = {"teff": (4800.0, 6200.0), "logg": (4.0, 4.8), "feh": (-0.5, 0.5), "ti_h": (-0.5, 0.5)}
FIXED = {"vmic": 1.0, "alpha_fe": 0.0}
LSF_SYNTH, LSF_OBS = 2.0, 2.6  # FWHM in pixels
WIGGLE, SNR = 0.015, 100.0
HIDDEN = "Ti"
FWHM = 2 * math.sqrt(2 * math.log(2))


class Domain:
    """A synthesizer seen through a Gaussian line-spread function (grid interface)."""

    def __init__(self, lines: LineList, fwhm_pixels: float) -> None:
        space = synth_label_space(["ti_h"])
        for name, (lo, hi) in TRAIN.items():
            space = space.with_bounds(name, lo, hi)
        self.synth = Synthesizer(lines, RANGE * u.AA, resolving_power=R, sampling=SAMPLING,
                                 label_space=space)
        self.label_space, self.wavelength = space, self.synth.wavelength
        self.sigma = fwhm_pixels / FWHM
        self.settings = {**self.synth.settings, "lsf_fwhm_pixels": fwhm_pixels}

    def flux(self, labels: torch.Tensor) -> np.ndarray:
        flux = self.synth.flux(torch.as_tensor(labels, dtype=torch.float64), progress=False)
        return gaussian_filter1d(flux.numpy(), self.sigma, axis=1, mode="nearest")


def observe(domain: Domain, n: int, seed: int) -> SpectralGrid:
    """Observed-domain spectra: wiggled continuum and noise, with ivar."""
    labels = sample_labels(domain.label_space, n, method="random", seed=seed,
                           fixed=FIXED)
    clean = fill_grid(domain, labels, batch_size=256, progress=False)
    rng = np.random.default_rng(seed + 1)
    x = np.linspace(-1, 1, clean.n_pix)
    a, b = rng.uniform(-WIGGLE, WIGGLE, (2, n, 1))
    flux = np.asarray(clean.flux, dtype=np.float64) * (1 + a * x + b * (x**2 - 1 / 3))
    flux += rng.normal(0, 1 / SNR, flux.shape)
    return SpectralGrid(clean.wavelength, flux, clean.label_array, clean.label_space,
                        ivar=np.full(flux.shape, SNR**2), provenance={"seed": seed})


def line_lists(keep_every: int = 3) -> tuple[LineList, LineList, LineList]:
    """The full list, the analyst's list, and the withheld lines.

    The analyst keeps every ``keep_every``-th line of the hidden element by wavelength;
    ``keep_every=1`` withholds nothing (a null control: the map should find no lines).
    """
    full = LineList.default([RANGE[0] - 30, RANGE[1] + 30] * u.AA)
    ti = np.flatnonzero(full.element == HIDDEN)
    withheld = np.zeros(len(full), dtype=bool)
    withheld[ti] = True
    withheld[ti[::keep_every]] = False  # the analyst keeps every keep_every-th Ti line
    return full, full[~withheld], full[withheld]


def precision_recall(cmap, withheld, depth, threshold, window=2, cut=0.02):
    wl = cmap.wavelength.to_value(u.AA)
    found = cmap.lines(threshold)
    peaks = np.abs(wl[:, None] - found["wavelength"].to_value(u.AA)[None, :]).argmin(0)
    centre = np.abs(wl[:, None] - withheld.wavelength.value[None, :]).argmin(0)
    inside = (withheld.wavelength.value > wl[0]) & (withheld.wavelength.value < wl[-1])
    centre, depth = centre[inside], depth[inside]
    on_line = (np.abs(peaks[:, None] - centre[None, :]).min(1) <= window) if \
        len(peaks) and len(centre) else np.zeros(len(peaks), dtype=bool)
    strong = depth >= cut
    hit = np.abs(centre[strong][:, None] - peaks[None, :]).min(1) <= window if len(peaks) \
        else np.zeros(strong.sum(), dtype=bool)
    precision = float(on_line.mean()) if len(peaks) else 0.0
    recall = float(hit.mean()) if len(hit) else math.nan
    return precision, recall, len(peaks), int(on_line.sum()), int(hit.sum()), \
        int(strong.sum())


def split_r2(translator, spectra) -> float:
    """Share of the [Ti/H] variance of ``spectra`` explained by a linear fit from the split
    latents."""
    split = translator.latent(np.asarray(spectra.flux)).split
    ti = spectra.label_array[:, list(spectra.label_space.names).index("ti_h")]
    design = np.column_stack([split, np.ones(len(split))])
    residual = ti - design @ np.linalg.lstsq(design, ti, rcond=None)[0]
    return float(1 - residual.var() / ti.var())


def main() -> None:
    global RANGE  # noqa: PLW0603 - the domains' range, set once from the command line
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-grid", type=int, default=1500)
    parser.add_argument("--n-observed", type=int, default=1200)
    parser.add_argument("--n-test", type=int, default=300)
    parser.add_argument("--emulator-epochs", type=int, default=150)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threshold", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", type=Path, default=None)
    parser.add_argument("--wavelength-range", type=float, nargs=2, default=RANGE,
                        metavar=("LO", "HI"),
                        help="vacuum wavelength range of both domains, Angstrom")
    parser.add_argument("--keep-every", type=int, default=3,
                        help="the analyst keeps every N-th Ti line (1: none withheld, a null "
                             "control)")
    parser.add_argument("--ti-range", type=float, nargs=2, default=TRAIN["ti_h"],
                        metavar=("LO", "HI"), help="[Ti/H] range of both domains")
    parser.add_argument("--weight-synthetic", type=float, default=3.0,
                        help="loss weight of the synthetic reconstructions (Cycle-StarNet: 3)")
    parser.add_argument("--split-dropout", type=float, default=0.5,
                        help="share of observed spectra reconstructed with the mean split latent")
    parser.add_argument("--split-decorrelation", type=float, default=0.0,
                        help="weight of the split-shared latent decorrelation penalty")
    parser.add_argument("--channels", type=int, nargs="+", default=[4, 8, 8],
                        help="channels of the translator's convolutions (encoders, discriminators)")
    parser.add_argument("--save", type=Path, default=None,
                        help="save the trained translator under this path prefix")
    parser.add_argument("--figure", type=Path, default=None,
                        help="write the missing-lines map's plot to this PNG")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    TRAIN["ti_h"] = tuple(args.ti_range)
    RANGE = tuple(args.wavelength_range)
    machine = (f"{platform.platform()}, {platform.processor() or platform.machine()}, "
               f"Python {platform.python_version()}, torch {torch.__version__} "
               f"({args.threads} thread{'s' if args.threads > 1 else ''}), "
               f"stellarai {stellarai.__version__}")
    print(machine)
    start = time.perf_counter()
    if args.keep_every < 1:
        parser.error("--keep-every must be >= 1")
    full, analyst, withheld = line_lists(args.keep_every)
    synthetic, observed_domain = Domain(analyst, LSF_SYNTH), Domain(full, LSF_OBS)
    n_in = len(withheld.select(RANGE * u.AA))
    analyst_in = analyst.select(RANGE * u.AA)
    n_kept = int(np.sum(analyst_in.element == HIDDEN))
    print(f"{len(full.select(RANGE * u.AA))} lines in range, {n_in} {HIDDEN} lines withheld, "
          f"{n_kept} kept; {len(synthetic.wavelength)} px")

    tic = time.perf_counter()
    labels = sample_labels(synthetic.label_space, args.n_grid, method="sobol", seed=args.seed,
                           fixed=FIXED)
    grid = fill_grid(synthetic, labels, batch_size=256, progress=False)
    observed = observe(observed_domain, args.n_observed, seed=args.seed + 100)
    test = observe(observed_domain, args.n_test, seed=args.seed + 200)
    t_synth = time.perf_counter() - tic
    print(f"synthesis {t_synth:.0f} s")

    tic = time.perf_counter()
    train, valid = grid.split((0.95, 0.05), seed=args.seed)
    emulator = PayneEmulator(grid.label_space, grid.wavelength, hidden=(128, 128), seed=0)
    Trainer(emulator, epochs=args.emulator_epochs, batch_size=64, lr=3e-3, patience=40,
            progress=False).fit(train, valid)
    t_emu = time.perf_counter() - tic
    emu_test = emulator(test.label_array).numpy().astype(np.float64)
    clean_test = fill_grid(synthetic, test.labels, batch_size=256, progress=False).flux
    emu_err = float(np.median(np.abs(emu_test - clean_test)))
    print(f"emulator {t_emu:.0f} s, median |error| {emu_err:.2e}")

    tic = time.perf_counter()
    translator = DomainTranslator(emulator, n_shared=12, n_split=2, channels=tuple(args.channels),
                                  hidden=128, seed=args.seed,
                                  weights={"synthetic": args.weight_synthetic})
    history = translator.fit(observed, synthetic_labels=grid, cross_validation=test[:100],
                             epochs=args.epochs, batch_size=32, lr=1e-3, patience=None,
                             split_dropout=args.split_dropout,
                             split_decorrelation=args.split_decorrelation,
                             progress=True)
    t_cycle = time.perf_counter() - tic
    if args.save is not None:
        translator.save(args.save, overwrite=True)
    print(f"translator {t_cycle:.0f} s, {history.epochs} epochs, best {history.best_epoch}")

    obs, ivar = np.asarray(test.flux), np.asarray(test.ivar)
    own = translator.translate(emu_test, to="observed", split=obs).flux.value
    mean = translator.translate(emu_test, to="observed").flux.value
    chi2 = {key: float(np.mean(np.mean(ivar * (obs - model) ** 2, axis=1)))
            for key, model in (("emulator", emu_test), ("own", own), ("mean", mean))}
    reduction = 1 - chi2["own"] / chi2["emulator"]
    print(f"reduced chi2: emulator {chi2['emulator']:.2f}, translated (own split) "
          f"{chi2['own']:.2f}, (mean split) {chi2['mean']:.2f}; reduction {reduction:.0%}")

    ti_split = split_r2(translator, test)
    print(f"[Ti/H] variance explained by a linear fit from the split latent: {ti_split:.0%}")

    cmap = translator.missing_lines("ti_h", n_stars=256)
    emap = translator.missing_lines("ti_h", n_stars=256, reference="emulator")
    ref = {k: [float(np.median(translator.reference_labels[:, j]))]
           for j, k in enumerate(translator.label_space.names)}
    with_ti = fill_grid(Domain(full, LSF_SYNTH), ref, progress=False).flux[0]
    without = fill_grid(synthetic, ref, progress=False).flux[0]
    wl = cmap.wavelength.to_value(u.AA)
    centre = np.abs(wl[:, None] - withheld.wavelength.value[None, :]).argmin(0)
    depth = np.asarray(without - with_ti, dtype=np.float64)[centre]
    precision, recall, n_found, n_on, n_hit, n_strong = precision_recall(
        cmap, withheld, depth, args.threshold)
    e_precision, e_recall, e_found, e_on, e_hit, _ = precision_recall(
        emap, withheld, depth, args.threshold)
    inside = (withheld.wavelength.value > wl[0]) & (withheld.wavelength.value < wl[-1])
    print(f"map scatter {cmap.scatter:.2e}; withheld lines (wavelength, depth, map value in "
          "scatters): " + ", ".join(
              f"{w:.2f} {d:.3f} {cmap.difference[c] / cmap.scatter:+.1f}" for w, d, c in zip(
                  withheld.wavelength.value[inside], depth[inside], centre[inside],
                  strict=True)))
    print("lines found: " + ", ".join(f"{w:.2f} ({s:.1f})" for w, s in zip(
        cmap.lines(args.threshold)["wavelength"].value,
        cmap.lines(args.threshold)["significance"], strict=True)))
    if args.figure is not None:
        cmap.plot(threshold=args.threshold).savefig(args.figure)
    print(f"missing-lines map: {n_found} lines found, {n_on} on withheld {HIDDEN} lines "
          f"(precision {precision:.2f}); {n_hit}/{n_strong} withheld lines of depth >= 0.02 "
          f"found (recall {recall:.2f})")
    print(f"map against the emulator's own response: {e_found} found, {e_on} on withheld "
          f"lines (precision {e_precision:.2f}), {e_hit}/{n_strong} (recall {e_recall:.2f}); "
          "withheld lines in scatters: " + ", ".join(
              f"{emap.difference[c] / emap.scatter:+.1f}" for c in centre[inside]))
    total = time.perf_counter() - start
    print(f"total {total:.0f} s")
    if args.write is None:
        return
    per_epoch = t_cycle / max(history.epochs, 1)
    rows = [("Mean reduced chi2, observed vs emulator at true labels", f"{chi2['emulator']:.2f}"),
            ("... vs emulator spectra translated (own split latent)", f"{chi2['own']:.2f}"),
            ("... vs emulator spectra translated (mean split latent)", f"{chi2['mean']:.2f}"),
            ("chi2 reduction (own split latent; goal >= 35 %)", f"{reduction:.0%}"),
            ("Missing-lines map: precision (goal >= 0.7)",
             f"{precision:.2f} ({n_on} of {n_found} detections)"),
            ("Missing-lines map: recall (goal >= 0.7)",
             f"{recall:.2f} ({n_hit} of {n_strong} lines)"),
            ("... compared with the emulator's response instead: precision, recall",
             f"{e_precision:.2f} ({e_on} of {e_found}), {e_recall:.2f} ({e_hit} of "
             f"{n_strong})"),
            ("[Ti/H] variance explained by the split latent (linear fit, held-out)",
             f"{ti_split:.0%}"),
            ("Emulator median absolute error (held-out)", f"{emu_err:.1e}"),
            ("Synthesis of all spectra", f"{t_synth:.0f} s"),
            ("Emulator training", f"{t_emu:.0f} s"),
            ("Translator training", f"{t_cycle:.0f} s ({history.epochs} epochs, "
             f"{per_epoch:.1f} s each)")]
    table = "\n".join(f"   * - {a}\n     - {b}" for a, b in rows)
    text = f"""Domain translation: Cycle-StarNet on stellarai's synthesizer
============================================================

Measured in one run of

.. code-block:: bash

    nice -n 15 python benchmarks/domain_translation.py --threads {args.threads} \\
        --n-grid {args.n_grid} --n-observed {args.n_observed} --n-test {args.n_test} \\
        --emulator-epochs {args.emulator_epochs} --epochs {args.epochs} \\
        --threshold {args.threshold:g} \\
        --wavelength-range {RANGE[0]:g} {RANGE[1]:g} \\
        --keep-every {args.keep_every} --ti-range {args.ti_range[0]:g} {args.ti_range[1]:g} \\
        --weight-synthetic {args.weight_synthetic:g} --split-dropout {args.split_dropout:g} \\
        --split-decorrelation {args.split_decorrelation:g} \\
        --channels {" ".join(map(str, args.channels))} --write {args.write}

Machine: {machine}, {total:.0f} s in all, on a machine shared with other jobs (times are
wall-clock and only indicative). Synthetic domain: :mod:`stellarai.synth` over
{RANGE[0]:.0f}-{RANGE[1]:.0f} Angstrom ({len(synthetic.wavelength)} px, R = {R:,},
{SAMPLING} px per resolution element) with the default line list keeping one
{HIDDEN} line in {args.keep_every} ({n_in} withheld in range, {n_kept} kept), line-spread
FWHM {LSF_SYNTH:g} px, emulated by a The Payne (128 x 128) trained on {args.n_grid}
Sobol' spectra. Observed domain: the full list, line-spread FWHM {LSF_OBS:g} px, a random
quadratic continuum wiggle (up to {WIGGLE:.1%}), S/N = {SNR:.0f}; {args.n_observed}
spectra with labels drawn independently (unpaired). Labels of both domains: Teff
4800-6200 K, log g 4.0-4.8, [Fe/H] -0.5 to +0.5, [Ti/H] {args.ti_range[0]:+g} to
{args.ti_range[1]:+g}. Translator: shared latent 12, split latent 2, convolutions of
{", ".join(map(str, args.channels))} channels, generators of 128 x 128,
{args.epochs} epochs of 32 spectra, loss weights {args.weight_synthetic:g} / 9 / 1 / 1,
split dropout {args.split_dropout:g}, split decorrelation {args.split_decorrelation:g}.
Scores on {args.n_test} held-out observed spectra;
missing-lines map for [Ti/H] over 256 reference stars (translated response minus the
synthetic generator's response from the same latent), detections below
{args.threshold:g} robust scatters. Cycle-StarNet (O'Briain et al. 2021) reports a mean
reduced chi2 of 1.97 for APOGEE spectra against Kurucz spectra, 1.22 after translation.

.. list-table::
   :header-rows: 1

   * - Quantity
     - Value
{table}
"""
    args.write.write_text(text, encoding="utf-8")
    print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
