"""The ``stellarai`` command.

``stellarai inspect [FILE] [--plot out.png]`` reads any supported spectrum file (muler HPF
and IGRINS files, stellarai ECSV/FITS, anything specutils can read) and prints one line per
order; without FILE it inspects the built-in demo spectrum.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .errors import StellarAIError

__all__ = ["main", "inspect_lines"]


def inspect_lines(batch: object, source: str) -> list[str]:
    """Return the report ``stellarai inspect`` prints for an :class:`~stellarai.spectra.OrderBatch`.

    Examples
    --------
    >>> from stellarai.demo import demo_spectrum_list
    >>> from stellarai.spectra import OrderBatch
    >>> lines = inspect_lines(OrderBatch.from_spectra(demo_spectrum_list()), "demo")
    >>> print(lines[1])
    order     lambda_min     lambda_max   median SNR   masked
    """
    snr = batch.median_snr().tolist()
    masked = batch.masked_fraction().tolist()
    lines = [f"{source}: {batch.n_orders} order(s), vacuum wavelength in Angstrom",
             f"{'order':>5} {'lambda_min':>14} {'lambda_max':>14} {'median SNR':>12} {'masked':>8}"]
    for i, (order, wavelength, *_rest) in enumerate(batch.iter_orders()):
        snr_text = "n/a" if snr[i] != snr[i] else f"{snr[i]:.1f}"
        lines.append(f"{order:>5} {wavelength[0].item():>14.3f} {wavelength[-1].item():>14.3f} "
                     f"{snr_text:>12} {100 * masked[i]:>7.1f}%")
    return lines


def _inspect(args: argparse.Namespace) -> int:
    from .demo import demo_spectrum_list
    from .io import read_spectrum_list
    from .spectra import OrderBatch

    if args.file is None:
        spectra, source = demo_spectrum_list(), "built-in demo spectrum"
    else:
        spectra, source = read_spectrum_list(args.file), str(args.file)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batch = OrderBatch.from_spectra(spectra, medium=args.medium)
    print("\n".join(inspect_lines(batch, source)))
    for warning in caught:
        print(f"note: {warning.message}")
    if args.plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        from .plotting import plot_orders

        fig = plot_orders(batch, title=Path(source).name)
        fig.savefig(args.plot, dpi=110)
        print(f"wrote {args.plot}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stellarai", description="Machine-learning stellar spectroscopy for specutils."
    )
    parser.add_argument("--version", action="version", version=f"stellarai {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser(
        "inspect", help="summarize the orders of a spectrum file",
        description="Print one line per order (order number, wavelength range, median SNR, "
                    "masked fraction) and optionally plot every order.")
    inspect.add_argument("file", nargs="?", type=Path,
                         help="spectrum file; omit it to inspect the built-in demo spectrum")
    inspect.add_argument("--plot", type=Path, metavar="PNG", help="write a multi-order plot")
    inspect.add_argument("--medium", choices=("vacuum", "air"), default="vacuum",
                         help="medium of the file's wavelengths (default: vacuum)")
    inspect.set_defaults(run=_inspect)

    from .grids.cli import add_grid_parser

    add_grid_parser(commands)

    from .synth.cli import add_synth_parser

    add_synth_parser(commands)

    from .emulators.cli import add_train_parser

    add_train_parser(commands)

    from .fitting.cli import add_demo_parser, add_fit_parser

    add_fit_parser(commands)
    add_demo_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``stellarai`` command; returns the exit status.

    Errors on unreadable input end the command with a one-line message and status 1.
    """
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (StellarAIError, OSError, ValueError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"stellarai {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
