"""``stellarai train``: train an emulator on an HDF5 grid and save it.

::

    stellarai grid --n 2048 --wavelength-range 15100 15200 --out grid.h5
    stellarai train grid.h5 --backend payne --hidden 300 300 --epochs 300 --out payne \\
        --plot loss.png

The grid (written by ``stellarai grid`` or :meth:`SpectralGrid.write
<stellarai.grids.SpectralGrid.write>`) is split by ``--seed`` into training and
validation spectra; the trained emulator (best validation epoch) is written as
``PATH.safetensors`` + ``PATH.json`` and the validation error (median, 95th percentile
and mean absolute flux error over all validation pixels) is printed and recorded in the
sidecar's ``provenance["validation"]``. :func:`add_train_parser` adds the command to the
``stellarai`` parser; :func:`train_command` runs it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["BACKENDS", "add_train_parser", "train_command", "validation_error"]

BACKENDS = ("payne", "transformer")
"""Values of ``--backend``: :class:`PayneEmulator` and :class:`TransformerPayne`."""


def add_train_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``train`` command to the sub-parsers of the ``stellarai`` parser.

    The command's ``run`` default is :func:`train_command`.
    """
    parser = subparsers.add_parser(
        "train", help="train an emulator on an HDF5 grid",
        description="Train a PayneEmulator or TransformerPayne on a stellarai grid (HDF5), "
                    "keep the best validation epoch, write PATH.safetensors + PATH.json and "
                    "print the validation error.")
    parser.add_argument("grid", type=Path, metavar="GRID", help="grid file (HDF5)")
    parser.add_argument("--backend", default="payne", metavar="{payne,transformer}",
                        help="emulator backend (default: payne)")
    parser.add_argument("--hidden", type=int, nargs="+", default=None, metavar="N",
                        help="payne: hidden-layer widths (default: 300 300); transformer: "
                             "model width d_model (default: 128; MLP width is twice it)")
    parser.add_argument("--epochs", type=int, default=200, help="maximum epochs (default: 200)")
    parser.add_argument("--batch-size", type=int, default=64,
                        help="spectra per optimizer step (default: 64)")
    parser.add_argument("--lr", type=float, default=1e-3,
                        help="peak learning rate of AdamW (default: 1e-3)")
    parser.add_argument("--patience", type=int, default=30,
                        help="early-stopping patience in epochs, 0 to disable (default: 30)")
    parser.add_argument("--valid-fraction", type=float, default=0.1,
                        help="share of the grid held out for validation (default: 0.1)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the split, initialization and batches (default: 0)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default: 1, fastest for small networks)")
    parser.add_argument("--out", required=True, metavar="PATH",
                        help="output stem: writes PATH.safetensors and PATH.json")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    parser.add_argument("--plot", type=Path, metavar="PNG", help="write the loss curves")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=train_command)
    return parser


def validation_error(emulator: Any, grid: Any) -> dict[str, float]:
    """Absolute flux error of ``emulator`` on ``grid``: median, p95, mean and max.

    Over all pixels of all spectra of ``grid`` (which must be on the emulator's pixels).
    """
    import numpy as np
    import torch

    truth = np.asarray(grid.load().flux)
    with torch.no_grad():
        model = emulator.flux(grid.label_array).detach().cpu().numpy()
    error = np.abs(model.astype(np.float64) - truth.astype(np.float64))
    return {"median_abs_error": float(np.median(error)),
            "p95_abs_error": float(np.percentile(error, 95)),
            "mean_abs_error": float(np.mean(error)),
            "max_abs_error": float(np.max(error)),
            "n_spectra": int(len(grid)), "n_pix": int(error.shape[1])}


def _build(args: argparse.Namespace, grid: Any) -> Any:
    from .errors import EmulatorError
    from .payne import PayneEmulator
    from .transformer import TransformerPayne

    if args.backend == "payne":
        hidden = args.hidden or [300, 300]
        return PayneEmulator(grid.label_space, grid.wavelength, hidden=hidden, seed=args.seed)
    if args.backend == "transformer":
        if args.hidden is not None and len(args.hidden) != 1:
            raise EmulatorError(f"--hidden takes one width (d_model) for the transformer "
                                f"backend, got {args.hidden}")
        width = 128 if args.hidden is None else args.hidden[0]
        return TransformerPayne(grid.label_space, grid.wavelength, d_model=width,
                                mlp_hidden=2 * width, seed=args.seed)
    raise EmulatorError(f"--backend must be one of {', '.join(BACKENDS)}, got {args.backend!r}")


def train_command(args: argparse.Namespace) -> int:
    """Run ``stellarai train`` with parsed arguments; returns the exit status (0)."""
    from ..grids import SpectralGrid
    from .errors import EmulatorError
    from .serialization import emulator_paths, save_emulator
    from .training import Trainer

    if args.backend not in BACKENDS:
        raise EmulatorError(f"--backend must be one of {', '.join(BACKENDS)}, got "
                            f"{args.backend!r}")
    if not args.overwrite:
        for path in emulator_paths(args.out):
            if path.exists():
                raise EmulatorError(f"{str(path)!r} exists; pass --overwrite to replace it")
    if not args.grid.is_file():
        raise FileNotFoundError(f"grid file {str(args.grid)!r} does not exist")
    if not 0 < args.valid_fraction < 1:
        raise EmulatorError(f"--valid-fraction must be in (0, 1), got {args.valid_fraction}")
    with SpectralGrid.read(args.grid, lazy=True) as grid:
        emulator = _build(args, grid)
        train, valid = grid.split((1 - args.valid_fraction, args.valid_fraction),
                                  seed=args.seed)
        trainer = Trainer(emulator, epochs=args.epochs, batch_size=args.batch_size,
                          lr=args.lr, patience=args.patience or None, seed=args.seed,
                          progress=not args.quiet, threads=args.threads)
        history = trainer.fit(train, valid)
        error = validation_error(emulator, valid)
    emulator.provenance["validation"] = error
    emulator.provenance["training"]["grid"]["file"] = args.grid.name
    weights, sidecar = save_emulator(emulator, args.out, overwrite=args.overwrite)
    if args.plot is not None:
        fig = history.plot()
        fig.savefig(args.plot, dpi=110)
        print(f"wrote {args.plot}")
    print(f"wrote {weights} and {sidecar} ({type(emulator).__name__}, "
          f"{emulator.n_parameters():,} parameters, {history.epochs} epochs, best "
          f"{history.best_epoch + 1})")
    print(f"validation error on {error['n_spectra']} held-out spectra: median |dflux| "
          f"{error['median_abs_error']:.2e}, p95 {error['p95_abs_error']:.2e}, mean "
          f"{error['mean_abs_error']:.2e}")
    return 0
