#!/usr/bin/env python
"""Train stellarai's default emulator: a Payne over the HPF band for FGK dwarfs/subgiants.

Synthesizes a Sobol' grid with :mod:`stellarai.synth` (vacuum 8,080-12,800 Angstrom,
log-uniform pixels at R = 25,000, one pixel per resolution element: 11,502 pixels;
Teff 4,000-7,000 K, log g 3.5-5.0, [Fe/H] -1.0-+0.5, vmic 0.5-2.0 km/s), splits it into
training / validation (early stopping) / test spectra, trains a
:class:`~stellarai.emulators.PayneEmulator` and writes
``stellarai/data/default_emulator.safetensors`` + ``.json``. The median and 95th
percentile absolute flux errors on the test spectra (never used in training) are recorded
in the sidecar's ``provenance["validation"]``.

Size: the weights are float32; the output layer dominates (last hidden width x 11,502
pixels x 4 bytes), so the last hidden layer is narrow (96 by default: 4.5 MB) to keep the
file under the repository's 5 MiB limit, which the script checks.

Run from the repository root (7.7 minutes on one core of a shared 2-core machine)::

    python scripts/train_default_emulator.py

Everything is seeded: the same stellarai and torch versions give the same weights.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import astropy.units as u
import numpy as np
import torch

from stellarai.emulators import PayneEmulator, Trainer, load, save_emulator
from stellarai.emulators.cli import validation_error
from stellarai.grids import generate_grid
from stellarai.labels import LabelSpace
from stellarai.synth import LineList, Synthesizer

MAX_BYTES = 5 * 1024 * 1024
BAND = (8080.0, 12800.0)
RANGES = {"teff": (4000.0, 7000.0), "logg": (3.5, 5.0), "feh": (-1.0, 0.5), "vmic": (0.5, 2.0)}
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "stellarai" / "data" / "default_emulator"


def label_space() -> LabelSpace:
    """Teff, log g, [Fe/H], vmic over the ranges of the default emulator."""
    space = LabelSpace.default().subset(list(RANGES))
    for name, (lo, hi) in RANGES.items():
        space = space.with_bounds(name, lo, hi)
    return space


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=6144, help="spectra synthesized (Sobol')")
    parser.add_argument("--resolving-power", type=float, default=25_000.0,
                        help="pixel sampling R (one pixel per resolution element)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 96],
                        help="hidden-layer widths (the last one sets the file size)")
    parser.add_argument("--epochs", type=int, default=450)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--patience", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output stem (default: stellarai/data/default_emulator)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    command = " ".join(["python scripts/train_default_emulator.py",
                        *(sys.argv[1:] if argv is None else argv)])

    space = label_space()
    margin = 25.0  # lines just outside the band reach into it (max_half_width)
    lines = LineList.default([BAND[0] - margin, BAND[1] + margin] * u.AA)
    synthesizer = Synthesizer(lines, list(BAND) * u.AA, resolving_power=args.resolving_power,
                              label_space=space, dtype=torch.float32)
    print(f"[{time.perf_counter() - start:6.1f} s] {synthesizer!r}", flush=True)
    grid = generate_grid(synthesizer, args.n, method="sobol", seed=args.seed,
                         batch_size=64, progress=False)
    synth_seconds = time.perf_counter() - start
    print(f"[{synth_seconds:6.1f} s] synthesized {len(grid)} spectra x {grid.n_pix} px",
          flush=True)

    train, valid, test = grid.split((0.9, 0.05, 0.05), seed=args.seed)
    emulator = PayneEmulator(space, grid.wavelength, hidden=args.hidden, seed=args.seed)
    weight_bytes = 4 * emulator.n_parameters()
    print(f"PayneEmulator hidden={args.hidden}: {emulator.n_parameters():,} parameters "
          f"({weight_bytes / 2**20:.2f} MiB float32); training on {len(train)}, "
          f"validating on {len(valid)}, testing on {len(test)}", flush=True)
    if weight_bytes > MAX_BYTES:
        raise SystemExit(f"the weights would exceed {MAX_BYTES} bytes; narrow --hidden")
    trainer = Trainer(emulator, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      patience=args.patience, seed=args.seed, progress=False,
                      threads=args.threads)
    chunk = 10
    for stop in range(chunk, args.epochs + chunk, chunk):  # resumable-in-memory progress
        history = trainer.fit(train, valid, stop_after=min(stop, args.epochs))
        print(f"[{time.perf_counter() - start:6.1f} s] epoch {history.epochs}: valid MSE "
              f"{history.valid_loss[-1]:.3e}, MAE {history.valid_mae[-1]:.3e}", flush=True)
        if history.stopped_early or history.epochs >= args.epochs:
            break
    train_seconds = time.perf_counter() - start - synth_seconds

    error = validation_error(emulator, test)
    emulator.provenance["validation"] = {**error, "set": "test split (never trained on)"}
    emulator.provenance["default_emulator"] = {
        "script": "scripts/train_default_emulator.py",
        "command": command,
        "label_ranges": {k: list(v) for k, v in RANGES.items()},
        "wavelength_range": list(BAND),
        "resolving_power": args.resolving_power,
        "n_spectra": args.n,
        "synthesizer": synthesizer.settings,
        "synth_seconds": round(synth_seconds, 1),
        "train_seconds": round(train_seconds, 1),
    }
    weights, sidecar = save_emulator(emulator, args.out, overwrite=True)
    for path in (weights, sidecar):
        size = path.stat().st_size
        print(f"wrote {path} ({size / 2**20:.2f} MiB)")
        if size > MAX_BYTES:
            raise SystemExit(f"{path} exceeds the {MAX_BYTES}-byte limit")
    reloaded = load(args.out)
    probe = reloaded.flux(test.label_array[:4]).detach().numpy()
    assert np.array_equal(probe, emulator.flux(test.label_array[:4]).detach().numpy())
    print(json.dumps(emulator.provenance["validation"], indent=1))
    print(f"total {time.perf_counter() - start:.1f} s (synthesis {synth_seconds:.1f} s, "
          f"training {train_seconds:.1f} s, {history.epochs} epochs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
