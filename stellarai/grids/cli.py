"""``stellarai grid``: synthesize a labeled grid into an HDF5 file.

::

    stellarai grid --n 1024 --wavelength-range 15100 15200 --resolving-power 22500 \\
        --label teff=4000:6000 --label vmic=1.0 --out grid.h5

``--label NAME=LO:HI`` samples label NAME in a sub-range, ``--label NAME=VALUE`` holds it
fixed (numbers in the label's canonical unit: K, dex, km/s); other labels span the
synthesizer's label space. :func:`add_grid_parser` adds the command to the ``stellarai``
parser; :func:`grid_command` runs it.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from .generate import generate_grid
from .sampling import METHODS

__all__ = ["add_grid_parser", "grid_command", "make_synthesizer", "parse_label_option"]


def make_synthesizer(wavelength_range: tuple[float, float], resolving_power: float) -> Any:
    """The synthesizer ``stellarai grid`` uses: stellarai's own, on a vacuum Å range.

    Imported on first use, so that ``stellarai --help`` does not load it.
    """
    import astropy.units as u

    from ..synth import LineList, Synthesizer

    window = wavelength_range * u.AA
    # lines just outside the range still reach into it with their wings, out to the
    # synthesizer's default max_half_width of 25 Angstrom
    margin = 25.0 * u.AA
    lines = LineList.default(u.Quantity([window[0] - margin, window[1] + margin]))
    return Synthesizer(lines, window, resolving_power=resolving_power)


def parse_label_option(text: str) -> tuple[str, float | tuple[float, float]]:
    """Parse ``NAME=LO:HI`` (a sub-range) or ``NAME=VALUE`` (a fixed label).

    Examples
    --------
    >>> parse_label_option("teff=4000:6000"), parse_label_option("vmic=1.5")
    (('teff', (4000.0, 6000.0)), ('vmic', 1.5))
    """
    name, sep, value = text.partition("=")
    try:
        if not sep or not name.strip():
            raise ValueError
        if ":" in value:
            lo, hi = value.split(":")
            return name.strip(), (float(lo), float(hi))
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected NAME=LO:HI or NAME=VALUE (e.g. teff=4000:6000 or vmic=1.0), got {text!r}"
        ) from None


def add_grid_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``grid`` command to the sub-parsers of the ``stellarai`` parser.

    The command's ``run`` default is :func:`grid_command`.
    """
    parser = subparsers.add_parser(
        "grid", help="synthesize a labeled grid of spectra into an HDF5 file",
        description="Sample the synthesizer's label space (Sobol', Latin hypercube or random), "
                    "synthesize the spectra in batches and write a stellarai grid (HDF5).")
    parser.add_argument("--n", type=int, required=True, help="number of spectra")
    parser.add_argument("--method", choices=METHODS, default="sobol",
                        help="label sampling (default: sobol)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    parser.add_argument("--wavelength-range", type=float, nargs=2, required=True,
                        metavar=("MIN", "MAX"), help="vacuum wavelength range in Angstrom")
    parser.add_argument("--resolving-power", type=float, default=50_000.0, metavar="R",
                        help="resolving power of the sampling (default: 50000)")
    parser.add_argument("--label", type=parse_label_option, action="append", default=[],
                        metavar="NAME=LO:HI|NAME=VALUE",
                        help="sample a label in a sub-range, or fix it (repeatable)")
    parser.add_argument("--batch-size", type=int, default=64, help="spectra per batch")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="stored flux dtype (default: float32)")
    parser.add_argument("--compression", choices=("none", "gzip", "lzf"), default="none",
                        help="HDF5 compression of the flux (default: none)")
    parser.add_argument("--out", required=True, metavar="PATH", help="output HDF5 file")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=grid_command)
    return parser


def grid_command(args: argparse.Namespace) -> int:
    """Run ``stellarai grid`` with parsed arguments; returns the exit status (0)."""
    lo, hi = args.wavelength_range
    synthesizer = make_synthesizer((lo, hi), args.resolving_power)
    fixed = {name: value for name, value in args.label if not isinstance(value, tuple)}
    ranges = {name: value for name, value in args.label if isinstance(value, tuple)}
    compression = None if args.compression == "none" else args.compression
    grid = generate_grid(synthesizer, args.n, method=args.method, seed=args.seed,
                         batch_size=args.batch_size, progress=not args.quiet, fixed=fixed,
                         ranges=ranges, out=args.out, overwrite=args.overwrite,
                         compression=compression, dtype=np.dtype(args.dtype))
    with grid:
        print(f"wrote {len(grid)} spectra x {grid.n_pix} px "
              f"({', '.join(grid.label_space.names)}) to {args.out}")
    return 0
