"""``stellarai synth``: write one synthetic spectrum to a FITS or ECSV file.

Wire it into the ``stellarai`` command with :func:`add_synth_parser`::

    stellarai synth --teff 5772 --logg 4.44 --feh 0 --range 10800 10900 \\
        --resolving-power 100000 -o sun.fits

The file is written with stellarai's own formats (``stellarai-fits`` for ``.fits``,
``stellarai-ecsv`` for ``.ecsv``), which keep the dimensionless (normalized) flux and the
labels in ``meta``; read it back with ``Spectrum.read(path)``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import astropy.units as u

from ..errors import StellarAIError
from .linelist import LineList
from .parameters import synth_label_space
from .synthesizer import Synthesizer

__all__ = ["add_synth_parser", "synth_command"]

_FORMATS = {".fits": "stellarai-fits", ".fit": "stellarai-fits", ".ecsv": "stellarai-ecsv"}


def add_synth_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``synth`` sub-command to an ``argparse`` sub-parser collection.

    Parameters
    ----------
    subparsers
        What ``ArgumentParser.add_subparsers()`` returned.

    Returns
    -------
    argparse.ArgumentParser
        The new sub-parser; its ``run`` default is :func:`synth_command`.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="stellarai")
    >>> _ = add_synth_parser(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["synth", "--teff", "5000", "--logg", "4.5", "--range",
    ...                           "10800", "10810", "-o", "star.fits"])
    >>> args.teff, args.range, args.resolving_power
    (5000.0, [10800.0, 10810.0], 100000.0)
    """
    parser = subparsers.add_parser(
        "synth", help="write a synthetic spectrum (FITS or ECSV) for given labels",
        description="Synthesize one normalized spectrum with stellarai's offline, "
                    "approximate synthesizer and write it as stellarai-fits (.fits) or "
                    "stellarai-ecsv (.ecsv). Labels not given take their defaults.")
    parser.add_argument("--teff", type=float, required=True, help="effective temperature, K")
    parser.add_argument("--logg", type=float, required=True,
                        help="log10 surface gravity, cgs (dex)")
    parser.add_argument("--feh", type=float, default=0.0, help="[Fe/H], dex (default 0)")
    parser.add_argument("--vmic", type=float, default=1.0,
                        help="microturbulence, km/s (default 1)")
    parser.add_argument("--alpha-fe", type=float, default=0.0,
                        help="[alpha/Fe], dex (default 0)")
    parser.add_argument("--he-h", type=float, default=None,
                        help="[He/H], dex (default: solar helium)")
    parser.add_argument("--abundance", action="append", default=[], metavar="NAME=VALUE",
                        help="an individual abundance such as mg_fe=0.2 or c_h=-0.3 (dex); "
                             "repeatable")
    parser.add_argument("--range", type=float, nargs=2, required=True,
                        metavar=("MIN", "MAX"), help="vacuum wavelength range, Angstrom")
    parser.add_argument("--resolving-power", type=float, default=100_000.0,
                        help="R of the log-uniform pixel grid (default 100000)")
    parser.add_argument("--sampling", type=float, default=1.0,
                        help="pixels per resolution element (default 1)")
    parser.add_argument("--linelist", type=Path, default=None,
                        help="line list: stellarai ECSV (.ecsv) or VALD short format "
                             "(anything else); default: the built-in list")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="output file, .fits or .ecsv")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    parser.set_defaults(run=synth_command)
    return parser


def _abundances(items: list[str]) -> dict[str, float]:
    values = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            values[name.strip().lower()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise StellarAIError(f"--abundance expects NAME=VALUE (e.g. mg_fe=0.2), got {item!r}")
    return values


def synth_command(args: argparse.Namespace) -> int:
    """Run ``stellarai synth`` for parsed arguments; returns the exit status (0).

    Raises
    ------
    StellarAIError
        (or a subclass) for bad labels, ranges, line lists or output names; the
        ``stellarai`` command turns it into a one-line message and status 1.
    """
    suffix = args.output.suffix.lower()
    if suffix not in _FORMATS:
        raise StellarAIError(
            f"output {str(args.output)!r} must end in .fits or .ecsv, got {suffix or 'none'!r}"
        )
    lo, hi = args.range
    if args.linelist is None:
        margin = 30.0
        lines = LineList.default([max(lo - margin, 3000.0), min(hi + margin, 30000.0)] * u.AA)
    elif args.linelist.suffix.lower() == ".ecsv":
        lines = LineList.read_ecsv(args.linelist)
    else:
        lines = LineList.read_vald(args.linelist)
    extra = _abundances(args.abundance)
    space = synth_label_space(list(extra), helium=args.he_h is not None)
    labels = {"teff": args.teff, "logg": args.logg, "feh": args.feh, "vmic": args.vmic,
              "alpha_fe": args.alpha_fe, **extra}
    if args.he_h is not None:
        labels["he_h"] = args.he_h
    synth = Synthesizer(lines, [lo, hi] * u.AA, resolving_power=args.resolving_power,
                        sampling=args.sampling, label_space=space)
    spectrum = synth.spectrum(**labels)
    spectrum.write(args.output, format=_FORMATS[suffix], overwrite=args.overwrite)
    print(f"wrote {args.output}: {spectrum.flux.size} pixels, {lo:g}-{hi:g} Angstrom, "
          f"R = {args.resolving_power:g}, {len(synth.linelist)} lines")
    return 0
