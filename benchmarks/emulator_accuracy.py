"""The Payne vs TransformerPayne on synthesized spectra with many labels: flux error and labels.

Grids come from the package's own synthesizer (:class:`stellarai.synth.Synthesizer`, its
default line list) over 5,000 pixels uniform in ln wavelength (R = 60,000 per pixel,
5000–5434 Angstrom, about 1,060 lines) with 14 labels: Teff, log g, [Fe/H], vmic and ten
individual [X/H] (C, Mg, Al, Si, Ca, Ti, V, Cr, Mn, Ni), drawn uniformly (FGK dwarfs and
subgiants). Both backends train on nested training sets of increasing size, each with its
own learning rate and step budget (a cosine schedule over the budget, optional early
stopping on validation spectra, the best weights kept), and are scored on the same
held-out spectra:

1. median and 95th-percentile absolute flux error;
2. label precision: the first ``--n-fit`` held-out spectra get Gaussian noise at SNR 100
   and each emulator fits all 14 labels by a batched Levenberg–Marquardt least-squares
   fit (Jacobian by finite differences, within the label box) from ``--starts`` starts
   (the centre of the label box, then random points; the lowest chi-square is kept);
   the table gives the scatter (std) of recovered − true per label, as in Różański et
   al. (2024).

Grids are cached as HDF5 files under ``--cache`` (synthesis takes under a minute),
so reruns only train. With ``--store DIR`` each training writes a checkpoint there after
every epoch and resumes from it when rerun, and finished emulators are saved there and
reused, so a run of several hours can be stopped and continued, and the backends or sizes
can be trained in separate processes (``--backends``, ``--sizes``) before one run with
``--write`` gathers them. Heavy, run it under ``nice``. Usage::

    nice -n 15 python benchmarks/emulator_accuracy.py --cache /tmp/emuacc \\
        [--sizes 500 2000] [--steps-payne 20000] [--steps-tp 12000 60000] [--knot-head] \\
        [--patience 3000] [--store /tmp/emustore] [--backends payne tp] \\
        [--write docs/includes/bench_emulator_accuracy.rst]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import astropy.units as u
import numpy as np
import torch
from emulators import rst_table  # sibling script (benchmarks/emulators.py)

from stellarai.emulators import PayneEmulator, Trainer, TransformerPayne
from stellarai.emulators.serialization import emulator_paths
from stellarai.grids import SpectralGrid, generate_grid
from stellarai.synth import LineList, Synthesizer
from stellarai.synth.parameters import synth_label_space

ELEMENTS = ("c", "mg", "al", "si", "ca", "ti", "v", "cr", "mn", "ni")
R, LOW, N_PIX = 60_000, 5000.0, 5_000
PAYNE = {"hidden": (300, 300)}
TRANSFORMER = {"d_model": 64, "n_blocks": 3, "n_heads": 4, "mlp_hidden": 128,
               "n_frequencies": 32, "train_pixels": 256}
BATCH = 32
LABEL_NAMES = {"teff": "Teff (K)", "logg": "log g", "feh": "[Fe/H]", "vmic": "vmic (km/s)"}


def synthesizer() -> Synthesizer:
    """The synthesizer of every grid: 14 labels, 5,000 pixels."""
    space = synth_label_space([f"{x}_h" for x in ELEMENTS], alpha=False, bounds=(-1.0, 0.5))
    for name, low, high in (("teff", 4000, 7000), ("logg", 3.5, 5.0), ("feh", -1.0, 0.5),
                            ("vmic", 0.5, 2.5)):
        space = space.with_bounds(name, low, high)
    high = LOW * math.exp((N_PIX - 1) / R)
    return Synthesizer(LineList.default([LOW - 30, high + 30] * u.AA), [LOW, high] * u.AA,
                       resolving_power=R, label_space=space, dtype=torch.float32)


def cached_grid(synth: Synthesizer, n: int, seed: int, cache: Path, progress: bool
                ) -> SpectralGrid:
    """``n`` spectra, labels drawn uniformly with ``seed``; read from or written to ``cache``."""
    path = cache / f"grid_n{n}_seed{seed}_pix{N_PIX}.h5"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        generate_grid(synth, n, method="random", seed=seed, progress=progress,
                      out=path).close()
    return SpectralGrid.read(path)


def train(cls: type, settings: dict, grid: SpectralGrid, valid: SpectralGrid, steps: int,
          lr: float, patience: int | None, store: Path | None = None, name: str = "emulator"
          ) -> tuple[object, dict]:
    """An emulator trained for at most about ``steps`` AdamW steps, early-stopped.

    ``patience`` (in steps, rounded to epochs; None: never stop early) ends the run when the
    validation loss has not fallen for that long; the best weights are kept. With ``store``
    (a directory) the run writes a checkpoint there after every epoch and resumes from it,
    and the finished emulator is saved there and reloaded by later runs of the same
    settings, so a long run can span several sessions. Returns the emulator and the run's
    record: steps run, best step and the training wall seconds (the sum over epochs).
    """
    per_epoch = math.ceil(len(grid) / BATCH)
    epochs = max(1, round(steps / per_epoch))
    wait = None if patience is None else max(1, round(patience / per_epoch))
    stem = None if store is None else store / f"{name}_n{len(grid)}"
    if stem is not None and emulator_paths(stem)[1].exists():
        emu = cls.load(stem)
        done = {**emu.provenance["training"]["settings"], **emu.architecture()}
        asked = {"epochs": epochs, "lr": lr, "patience": wait, "batch_size": BATCH,
                 **json.loads(json.dumps(settings))}  # tuples as the sidecar's lists
        other = {key: done.get(key) for key, value in asked.items() if done.get(key) != value}
        if other:
            raise SystemExit(f"{stem}.json was trained with other settings {other}; remove it "
                             f"or use another --store")
    else:
        emu = cls(grid.label_space, grid.wavelength, **settings)
        if cls is PayneEmulator:  # start at the continuum, as TransformerPayne's head does
            with torch.no_grad():
                emu.module.layers[-1].bias.fill_(1.0)
        checkpoint = None if stem is None else stem.with_name(stem.name + "_checkpoint")
        Trainer(emu, epochs=epochs, batch_size=BATCH, lr=lr, patience=wait, progress=False,
                threads=None, checkpoint=checkpoint).fit(grid, valid, resume=stem is not None)
        if stem is not None:
            emu.save(stem, overwrite=True)
    record = emu.provenance["training"]
    return emu, {"steps": record["epochs_run"] * per_epoch,
                 "best": (record["best_epoch"] + 1) * per_epoch, "seconds": record["seconds"]}


def predict(emu: object, z: torch.Tensor) -> torch.Tensor:
    """Flux of scaled labels ``z`` on the emulator's own wavelength grid (no checks)."""
    with torch.no_grad():
        return torch.cat([emu._evaluate(part, None) for part in z.split(200)])


def fit_labels(emu: object, flux: torch.Tensor, starts: list[torch.Tensor], iterations: int
               ) -> torch.Tensor:
    """Scaled labels minimizing the squared residuals, by batched Levenberg–Marquardt.

    Each start is iterated for ``iterations`` steps within the label box (±0.5); the
    solution with the lowest chi-square is kept per spectrum. The Jacobian comes from
    forward differences (step 1e-3 of the box).
    """
    n, k = flux.shape[0], len(emu.label_space)
    best_z, best_chi = None, torch.full((n,), math.inf, dtype=torch.float64)
    eye = torch.eye(k, dtype=torch.float64)
    for z in starts:
        z = z.clone().to(torch.float64)
        damp = torch.full((n,), 1e-2, dtype=torch.float64)
        model = predict(emu, z.float()).double()
        chi = ((flux - model) ** 2).sum(-1)
        for _ in range(iterations):
            h = 1e-3
            shifted = z[:, None, :] + h * eye  # (n, k, k)
            shifted = torch.where(shifted > 0.5, z[:, None, :] - h * eye, shifted)
            sign = torch.where(shifted.diagonal(dim1=1, dim2=2) > z, 1.0, -1.0)
            moved = predict(emu, shifted.reshape(-1, k).float()).double().view(n, k, -1)
            jac = (moved - model[:, None, :]) / (h * sign[..., None])  # (n, k, p)
            jtj = jac @ jac.transpose(1, 2)
            grad = jac @ (flux - model)[..., None]
            lhs = jtj + damp[:, None, None] * torch.diag_embed(jtj.diagonal(dim1=1, dim2=2))
            trial = (z + torch.linalg.solve(lhs, grad)[..., 0]).clamp(-0.5, 0.5)
            trial_model = predict(emu, trial.float()).double()
            trial_chi = ((flux - trial_model) ** 2).sum(-1)
            better = trial_chi < chi
            z = torch.where(better[:, None], trial, z)
            model = torch.where(better[:, None], trial_model, model)
            chi = torch.where(better, trial_chi, chi)
            damp = torch.where(better, damp / 3, damp * 4)
        if best_z is None:
            best_z = z
        take = chi < best_chi
        best_z = torch.where(take[:, None], z, best_z)
        best_chi = torch.where(take, chi, best_chi)
    return best_z


def label_scatter(emu: object, test: SpectralGrid, n_fit: int, iterations: int,
                  n_starts: int, snr: float = 100.0) -> np.ndarray:
    """Std of recovered − true labels (canonical units) over ``n_fit`` noisy test spectra."""
    space = emu.label_space
    gen = torch.Generator().manual_seed(7)
    clean = torch.as_tensor(np.asarray(test.flux[:n_fit]), dtype=torch.float64)
    noisy = clean + torch.randn(clean.shape, generator=gen, dtype=torch.float64) / snr
    starts = [torch.zeros(n_fit, len(space), dtype=torch.float64)]
    starts += [torch.rand(n_fit, len(space), generator=gen, dtype=torch.float64) - 0.5
               for _ in range(n_starts - 1)]
    z = fit_labels(emu, noisy, starts, iterations)
    recovered = space.unscale(z.numpy())
    return np.std(recovered - test.label_array[:n_fit], axis=0)


DEPTH_BINS = ((0.0, 1e-4), (1e-4, 1e-3), (1e-3, 1e-2), (1e-2, 0.1), (0.1, math.inf))
"""Bins of true line depth, 1 - flux, for the error by depth."""


def flux_errors(emu: object, test: SpectralGrid) -> tuple[float, float, float, list[float]]:
    """Median, 95th percentile and mean (MAE, the paper's measure) of the absolute error,
    and its median in each bin of true line depth (:data:`DEPTH_BINS`)."""
    z = torch.as_tensor(emu.label_space.scale(test.label_array), dtype=torch.float32)
    flux = np.asarray(test.flux)
    error = np.abs(predict(emu, z).numpy() - flux)
    by_depth = [float(np.median(error[mask])) for mask in depth_masks(flux)]
    return (float(np.median(error)), float(np.percentile(error, 95)), float(np.mean(error)),
            by_depth)


def depth_masks(flux: np.ndarray) -> list[np.ndarray]:
    """Boolean masks of the pixels of ``flux`` in each bin of :data:`DEPTH_BINS`."""
    depth = 1.0 - flux
    return [(depth >= low) & (depth < high) for low, high in DEPTH_BINS]


def budget(budgets: list[int], index: int) -> int:
    """The step budget of the ``index``-th training size: one for all, or one per size."""
    return budgets[0] if len(budgets) == 1 else budgets[index]


def budgets(steps: list[int]) -> str:
    """Step budgets as prose: '12,000' or '12,000 / 50,000' (by training size)."""
    return " / ".join(f"{n:,}" for n in steps) + (" (by training size)" if len(steps) > 1 else "")


def label_title(name: str) -> str:
    return LABEL_NAMES.get(name, f"[{name.split('_')[0].capitalize()}/H]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 8000])
    parser.add_argument("--pool", type=int, default=8000,
                        help="spectra synthesized for training; the sizes are its first rows")
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--valid", type=int, default=50)
    for backend, steps, what in (("payne", 20000, "The Payne"), ("tp", 3000, "TransformerPayne")):
        parser.add_argument(f"--steps-{backend}", type=int, nargs="+", default=[steps],
                            help=f"{what}'s step budget (the cosine schedule spans it): "
                                 "one for all sizes, or one per size in --sizes order")
        parser.add_argument(f"--lr-{backend}", type=float, default=5e-3,
                            help=f"{what}'s peak learning rate")
    parser.add_argument("--patience", type=int, default=None,
                        help="early stopping after this many steps without a lower "
                             "validation loss (default: none)")
    parser.add_argument("--n-fit", type=int, default=24)
    parser.add_argument("--fit-iter", type=int, default=7)
    parser.add_argument("--starts", type=int, default=1,
                        help="fit starts: the centre of the label box, then random points")
    parser.add_argument("--fit-sizes", type=int, nargs="*", default=None,
                        help="training sizes whose emulators fit labels (default: largest)")
    parser.add_argument("--knots", type=int, default=N_PIX)
    parser.add_argument("--label-blocks", type=int, default=2,
                        help="TransformerPayne's self-attention blocks among label tokens")
    parser.add_argument("--knot-head", action="store_true",
                        help="TransformerPayne reads the flux out per wavelength too "
                             "(weights on the query knots; needs --knots)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--backends", nargs="+", choices=("payne", "tp"),
                        default=["payne", "tp"],
                        help="train and score only these (with --store, to run the backends "
                             "of a long benchmark in separate processes; --write needs both)")
    parser.add_argument("--store", type=Path, default=None,
                        help="directory for checkpoints and trained emulators: a rerun "
                             "resumes an interrupted training and reuses finished ones")
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    if args.write is not None and set(args.backends) != {"payne", "tp"}:
        parser.error("--write needs both backends")
    if args.sizes != sorted(set(args.sizes)):
        parser.error(f"--sizes must be increasing, got {args.sizes}")
    if max(args.sizes) > args.pool:
        parser.error(f"--sizes must not exceed --pool ({args.pool})")
    for option in ("steps_payne", "steps_tp"):
        budgets = getattr(args, option)
        if len(budgets) not in (1, len(args.sizes)):
            parser.error(f"--{option.replace('_', '-')} takes one budget or one per size "
                         f"({len(args.sizes)}), got {len(budgets)}")
    torch.set_num_threads(args.threads)
    if args.store is not None:
        args.store.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    transformer = {**TRANSFORMER, "n_knots": args.knots, "n_label_blocks": args.label_blocks,
                   "knot_head": args.knot_head}
    synth = synthesizer()
    pool = cached_grid(synth, args.pool, 1, args.cache, True)
    test = cached_grid(synth, args.test, 2, args.cache, True)
    valid = cached_grid(synth, args.valid, 3, args.cache, True)
    print(f"grids ready ({time.perf_counter() - start:.0f} s)", flush=True)
    rows, scatter = [], {}
    fit_sizes = set(args.fit_sizes or [max(args.sizes)])
    for index, size in enumerate(args.sizes):
        train_grid = pool[:size]
        result = {}
        runs = [("payne", PayneEmulator, PAYNE, args.lr_payne, budget(args.steps_payne, index)),
                ("tp", TransformerPayne, transformer, args.lr_tp, budget(args.steps_tp, index))]
        for name, cls, settings, lr, steps in runs:
            if name not in args.backends:
                continue
            emu, run = train(cls, settings, train_grid, valid, steps, lr, args.patience,
                             args.store, name)
            median, p95, mean, by_depth = flux_errors(emu, test)
            train_median = flux_errors(emu, train_grid[:args.test])[0]
            result[name] = {**run, "median": median, "p95": p95, "mean": mean,
                            "by_depth": by_depth,
                            "train_median": train_median,
                            "params": emu.n_parameters()}
            print(f"n={size} {name}: median {median:.2e} p95 {p95:.2e} mean {mean:.2e} "
                  f"(training spectra: "
                  f"median {train_median:.2e}; {run['steps']} steps, best at {run['best']}, "
                  f"{run['seconds']:.0f} s of training)", flush=True)
            if size in fit_sizes:
                tic = time.perf_counter()
                scatter[(size, name)] = label_scatter(emu, test, args.n_fit, args.fit_iter,
                                                        args.starts)
                print(f"  label scatter ({time.perf_counter() - tic:.0f} s): "
                      + " ".join(f"{x:.3g}" for x in scatter[(size, name)]), flush=True)
        rows.append((size, result))
    total = time.perf_counter() - start
    machine = (f"{platform.platform()}, {platform.processor() or platform.machine()}, "
               f"Python {platform.python_version()}, torch {torch.__version__} "
               f"({args.threads} thread), {total / 60:.0f} min in all")
    print(machine)
    if args.write is not None:
        shares = [float(np.mean(mask)) for mask in depth_masks(np.asarray(test.flux))]
        write(args, rows, scatter, synth, machine, shares)


def write(args: argparse.Namespace, rows: list, scatter: dict, synth: Synthesizer,
          machine: str, shares: list[float]) -> None:
    names = synth.label_space.names
    acc = [[f"{size:,}", f"{r['payne']['median']:.2e}", f"{r['payne']['p95']:.2e}",
            f"{r['tp']['median']:.2e}", f"{r['tp']['p95']:.2e}",
            f"{r['payne']['mean']:.2e}", f"{r['tp']['mean']:.2e}",
            f"{r['payne']['median'] / r['tp']['median']:.2f}",
            f"{r['payne']['p95'] / r['tp']['p95']:.2f}",
            f"{r['payne']['mean'] / r['tp']['mean']:.2f}",
            f"{r['payne']['train_median']:.1e} / {r['tp']['train_median']:.1e}",
            f"{r['payne']['steps']:,} ({r['payne']['best']:,}) / "
            f"{r['tp']['steps']:,} ({r['tp']['best']:,})",
            f"{r['payne']['seconds']:.0f} / {r['tp']['seconds']:.0f}"] for size, r in rows]
    sizes = sorted({s for s, _ in scatter})
    lab = [[label_title(n)] + [f"{scatter[(s, b)][i]:.3g}" for s in sizes
                               for b in ("payne", "tp")] for i, n in enumerate(names)]
    header = ["Label"] + [f"{b} ({s:,} spectra)" for s in sizes for b in ("Payne", "TP")]
    n_payne, n_tp = rows[0][1]["payne"]["params"], rows[0][1]["tp"]["params"]
    fit_sizes = f"--fit-sizes {' '.join(map(str, args.fit_sizes))} " if args.fit_sizes else ""
    command = (f"nice -n 15 python benchmarks/emulator_accuracy.py --cache CACHE --sizes "
               f"{' '.join(map(str, args.sizes))} --test {args.test} "
               f"--steps-payne {' '.join(map(str, args.steps_payne))} "
               f"--steps-tp {' '.join(map(str, args.steps_tp))} "
               f"{'' if args.patience is None else f'--patience {args.patience} '}"
               f"--valid {args.valid} --n-fit {args.n_fit} --fit-iter {args.fit_iter} "
               f"--starts {args.starts} "
               f"{fit_sizes}"
               f"--knots {args.knots} {'--knot-head ' if args.knot_head else ''}"
               f"--label-blocks {args.label_blocks} "
               f"--lr-payne {args.lr_payne:g} --lr-tp {args.lr_tp:g} "
               f"--threads {args.threads} {'' if args.store is None else '--store STORE '}"
               f"--write {args.write}")
    text = "\n".join([
        "Emulator accuracy: The Payne vs TransformerPayne on 14 labels",
        "==============================================================",
        "",
        ".. code-block:: bash",
        "",
        f"    {command}",
        "",
        f"Machine: {machine} (two cores shared with other jobs). Grids from "
        f"``stellarai.synth.Synthesizer`` with its default line list: {N_PIX:,} pixels, "
        f"5000–5434 Angstrom (R = 60,000 per pixel), labels Teff 4000–7000 K, log g "
        f"3.5–5, [Fe/H] and ten [X/H] ({', '.join(x.capitalize() for x in ELEMENTS)}) "
        f"in −1…0.5 dex, vmic 0.5–2.5 km/s, drawn uniformly; nested training sets; "
        f"{args.test:,} held-out spectra; {args.valid} validation spectra. AdamW steps of "
        f"{BATCH} spectra, cosine schedule over a budget of {budgets(args.steps_payne)} steps "
        f"for The Payne and {budgets(args.steps_tp)} for TransformerPayne (peak learning rate "
        f"{args.lr_payne:g} and {args.lr_tp:g}), "
        + ("no early stopping" if args.patience is None else
           f"early stopping after {args.patience:,} steps without a lower validation loss")
        + ", best validation weights kept"
        + ("" if args.store is None else
           " (trainings checkpointed in a store directory, so that they could run in "
           "separate processes and be resumed; the training times in the table are the sums "
           "of their epochs' wall times, the total above is that of the final run)")
        + ". The Payne: two hidden layers of 300 "
        f"({n_payne:,} parameters); TransformerPayne: d=64, 3 blocks, 4 heads, MLP 128, "
        f"32 encoding periods, {args.knots:,} query knots"
        + (" (with a per-knot linear read-out added to the head)" if args.knot_head else "")
        + f", {args.label_blocks} "
        f"self-attention blocks among the label tokens, "
        f"{TRANSFORMER['train_pixels']} random pixels per spectrum per step "
        f"({n_tp:,} parameters).",
        "",
        rst_table("Absolute flux error on the held-out spectra",
                  ["Training spectra", "Payne median", "Payne 95th pct.", "TP median",
                   "TP 95th pct.", "Payne mean (MAE)", "TP mean (MAE)",
                   "Median ratio Payne / TP", "95th pct. ratio Payne / TP",
                   "Mean ratio Payne / TP (the paper's measure)",
                   "Median on training spectra (Payne / TP)",
                   "Steps run (best) Payne / TP", "Training wall s (Payne / TP)"],
                  acc),
        f"Label precision: std of recovered − true labels for the first {args.n_fit} "
        f"held-out spectra with Gaussian noise at SNR 100, each fitted by its emulator "
        f"(batched Levenberg–Marquardt, finite-difference Jacobian, {args.fit_iter} "
        f"iterations from {args.starts} start(s): the centre of the label box, then random "
        f"points).",
        "",
        rst_table("Label scatter (std of recovered − true), by training-set size", header,
                  lab),
        rst_table("Median absolute flux error by true line depth (1 − flux) on the held-out "
                  "spectra",
                  ["Line depth", "Share of pixels"]
                  + [f"{b} ({size:,} spectra)" for size, _ in rows
                     for b in ("Payne", "TP", "Payne / TP")],
                  [[f"{low:g}–{high:g}".replace("–inf", " and deeper"), f"{share:.0%}"]
                   + [cell for _, r in rows
                      for cell in (f"{r['payne']['by_depth'][i]:.1e}",
                                   f"{r['tp']['by_depth'][i]:.1e}",
                                   f"{r['payne']['by_depth'][i] / r['tp']['by_depth'][i]:.1f}")]
                   for i, ((low, high), share) in enumerate(zip(DEPTH_BINS, shares,
                                                                strict=True))]),
    ])
    args.write.write_text(text, encoding="utf-8")
    print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
