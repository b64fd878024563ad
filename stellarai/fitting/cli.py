"""``stellarai fit`` and ``stellarai demo``: the main job from the command line.

::

    stellarai fit Goldilocks_...spectra.fits --emulator default --telluric hpf --out fits/
    stellarai demo --out demo/

``stellarai fit FILE`` reads any spectrum file stellarai reads (muler's HPF Goldilocks
files, IGRINS, the ``stellarai-fits``/``stellarai-ecsv`` formats, ...), builds the forward
model ``emulator | Rotation | Doppler * Telluric | Instrument`` (the telluric factor only
with ``--telluric hpf``; with ``--emulator none`` a featureless star, ``Telluric |
Instrument``, as for a telluric standard), fits every order jointly with
:func:`stellarai.fitting.fit` and writes ``DIR/<stem>_params.ecsv`` (the parameter
table), ``DIR/<stem>_model.fits`` (the best-fit model, ``stellarai-fits`` format) and
``DIR/<stem>_fit.png`` (data, model and residuals per order), and prints the table.

``stellarai demo`` simulates an HPF observation of a star with known labels
(:func:`~stellarai.fitting.simulate.simulate_hpf_observation`), fits it the same way and
prints the injected against the recovered values with their uncertainties.

:func:`add_fit_parser` and :func:`add_demo_parser` add the commands to the ``stellarai``
parser; their ``run`` defaults are :func:`fit_command` and :func:`demo_command`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = [
    "BLAZE_CHOICES",
    "DEMO_ORDERS",
    "DEMO_TRUTH",
    "FIT_NAMES",
    "TELLURIC_CHOICES",
    "add_demo_parser",
    "add_fit_parser",
    "build_model",
    "covered_orders",
    "demo_command",
    "fit_command",
    "injection_table",
]

TELLURIC_CHOICES = ("hpf", "none")
"""Values of ``--telluric``: muler's HPF TelFit template, or no telluric factor."""
BLAZE_CHOICES = ("none", "hpf")
"""Values of ``--blaze``: no blaze factor, or muler's HPF Goldilocks blaze template."""
DEMO_ORDERS = (17, 18, 19)
"""HPF order indices the demo simulates by default (1.04-1.10 micron: stellar lines and
water bands)."""
DEMO_TRUTH: dict[str, Any] = {"teff": 5200.0, "logg": 4.5, "feh": -0.2, "vmic": 1.1,
                              "rv": -9.6, "vsini": 6.0, "telluric_strength": 1.2}
"""Injected values of the demo (K, dex, dex, km/s, km/s, km/s, exponent)."""


def build_model(emulator: Any, data: Any, *, telluric: str = "hpf", blaze: str = "none"
                ) -> Any:
    """The forward model the CLI fits: ``emu | Rotation | Doppler [* Telluric] | Instrument``.

    Parameters
    ----------
    emulator : SpectralEmulator, "default", "none" or path
        The stellar emulator (``"default"``: :func:`stellarai.emulators.load`'s default;
        ``"none"``: a featureless star, the chain is then ``Telluric | Instrument``, for
        a hot telluric-standard star).
    data : Spectrum or SpectrumList
        The observation; its orders' ``instrumental_resolution`` sets the instrumental
        profile (55,000, HPF's, when the data carry none).
    telluric : {"hpf", "none"}
        Multiply by muler's HPF telluric template (free strength), or not.
    blaze : {"none", "hpf"}
        Multiply the model by muler's HPF (Goldilocks) blaze template, for spectra that
        are not deblazed; the per-order continuum the fitter solves then only corrects
        it. Default "none" (deblazed or normalized data).

    Returns
    -------
    stellarai.ops.Pipe
        The chain, starting at the emulator's default labels, vsini 5 km/s and rv 0.
        The star's velocity is the chain's ``rv_2`` (the telluric template has a fixed
        ``rv`` too); a :class:`~stellarai.fitting.FitResult` calls it ``rv``.

    Examples
    --------
    >>> from stellarai.fitting.simulate import simulate_hpf_observation
    >>> data, _ = simulate_hpf_observation(orders=[19], snr=50)
    >>> build_model("default", data).free_names
    ('teff', 'logg', 'feh', 'vmic', 'vsini', 'rv_2', 'strength')
    """
    import astropy.units as u

    from .. import ops
    from ..spectra import OrderBatch
    from .simulate import HPF_RESOLVING_POWER, SimulationError, _load_emulator

    for name, value, choices in (("telluric", telluric, TELLURIC_CHOICES),
                                 ("blaze", blaze, BLAZE_CHOICES)):
        if value not in choices:
            raise SimulationError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    known = [r for r in OrderBatch.from_spectra(data).resolution if r is not None]
    resolving_power = max(known) if known else HPF_RESOLVING_POWER
    instrument = ops.Instrument(resolving_power=resolving_power)
    if isinstance(emulator, str) and emulator == "none":
        if telluric == "none":
            raise SimulationError("with emulator 'none' and telluric 'none' there is nothing "
                                  "to fit; keep the telluric factor or give an emulator")
        chain = ops.Telluric.from_muler("hpf") | instrument
    else:
        emu = _load_emulator(emulator)
        doppler = ops.Doppler(rv=0 * u.km / u.s)
        moving = doppler * ops.Telluric.from_muler("hpf") if telluric == "hpf" else doppler
        chain = emu | ops.Rotation(vsini=5 * u.km / u.s) | moving | instrument
    return chain * ops.BlazeTemplate.from_muler("hpf") if blaze == "hpf" else chain


def add_fit_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``fit`` command to the sub-parsers of the ``stellarai`` parser."""
    parser = _command(
        subparsers, "fit", fit_command, Path("."),
        "fit a spectrum file with an emulator and the forward model",
        "Fit every order of a spectrum file jointly (stellar labels, vsini, rv, telluric "
        "strength, per-order continuum); write DIR/<stem>_params.ecsv, DIR/<stem>_model.fits "
        "and DIR/<stem>_fit.png and print the table.")
    parser.add_argument("file", type=Path, metavar="FILE",
                        help="spectrum file (muler HPF Goldilocks, stellarai-fits, ...)")
    parser.add_argument("--emulator", default="default", metavar="default|none|PATH",
                        help="the stellar emulator: 'default', a saved emulator's path, or "
                             "'none' for a featureless (hot telluric-standard) star")
    parser.add_argument("--telluric", default="hpf", metavar="{hpf,none}",
                        help="telluric factor: muler's HPF template (default) or none")
    parser.add_argument("--blaze", default="none", metavar="{none,hpf}",
                        help="multiply the model by muler's HPF blaze template, for data "
                             "that are not deblazed (default: none)")
    parser.add_argument("--orders", type=int, nargs="+", default=None, metavar="I",
                        help="fit only these orders (indices into the file's orders)")
    return parser


def add_demo_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``demo`` command to the sub-parsers of the ``stellarai`` parser."""
    parser = _command(
        subparsers, "demo", demo_command, Path("stellarai-demo"),
        "simulate an HPF observation with known labels and fit it",
        "Simulate an HPF observation (default emulator, rotation, rv, muler's TelFit "
        "telluric template, R=55,000, noise), fit it and print the injected against the "
        "recovered values; write DIR/demo_params.ecsv, DIR/demo_model.fits and "
        "DIR/demo_fit.png.")
    parser.add_argument("--orders", type=int, nargs="+", default=list(DEMO_ORDERS),
                        metavar="I", help="HPF order indices 0-27 to simulate (default: "
                                          f"{' '.join(map(str, DEMO_ORDERS))})")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the simulated continuum and noise (default: 0)")
    parser.add_argument("--snr", type=float, default=100.0,
                        help="signal-to-noise ratio per pixel in the continuum (default: 100)")
    return parser


def _command(subparsers: Any, name: str, run: Any, default_out: Path, summary: str,
             description: str) -> argparse.ArgumentParser:
    """A sub-command with the options ``fit`` and ``demo`` share."""
    parser = subparsers.add_parser(name, help=summary, description=description)
    parser.set_defaults(run=run)
    parser.add_argument("--out", type=Path, default=default_out, metavar="DIR",
                        help=f"output folder (default: {default_out})")
    parser.add_argument("--starts", type=int, default=None, metavar="N",
                        help="optimizer starts over the label space (default: the fitter's)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default: 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _fit(model: Any, data: Any, args: argparse.Namespace, seed: int = 0) -> Any:
    import torch

    from . import fit

    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    options: dict[str, Any] = {"seed": seed, "progress": not args.quiet}
    if args.starts is not None:
        if args.starts < 1:
            raise ValueError(f"--starts must be >= 1, got {args.starts}")
        options["starts"] = args.starts
    return fit(model, data, **options)


def _save_outputs(result: Any, out: Path, stem: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    params, model, png = (out / f"{stem}_params.ecsv", out / f"{stem}_model.fits",
                          out / f"{stem}_fit.png")
    result.write(params, overwrite=True)
    result.model.write(model, format="stellarai-fits", overwrite=True)
    fig = result.plot()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return [params, model, png]


def _select_orders(data: Any, orders: list[int] | None, source: str) -> Any:
    from specutils import SpectrumList

    if orders is None:
        return data
    bad = [i for i in orders if not 0 <= i < len(data)]
    if bad or len(set(orders)) != len(orders):
        raise ValueError(f"--orders must be distinct indices 0-{len(data) - 1} of the "
                         f"{len(data)} orders of {source}, got {orders}")
    return SpectrumList([data[i] for i in orders])


def covered_orders(model: Any, data: Any) -> list[int]:
    """Indices of the orders of ``data`` whose model grid the model's emulator covers.

    The model grid is :func:`~stellarai.ops.model_grid_for`'s with its default margin
    (the fitter's): every row as long as the widest order plus the margins, so leaving
    out an order can shorten the rows of the others; orders are left out, the one whose
    row sticks out furthest first, until every row fits. A model without an emulator
    (or one that evaluates anywhere) covers every order.

    Raises
    ------
    stellarai.fitting.FitError
        If no order is covered.
    """
    import torch
    from specutils import SpectrumList

    from ..ops import model_grid_for
    from ..spectra import OrderBatch
    from .errors import FitError
    from .simulate import HPF_RESOLVING_POWER

    emulators = [leaf.emulator for leaf in model.operators if hasattr(leaf, "emulator")]
    if not emulators or emulators[0].wavelength is None or not emulators[0].fixed_wavelength:
        return list(range(len(data)))
    wavelength = emulators[0].wavelength.to_value("Angstrom")
    low, high = float(wavelength[0]), float(wavelength[-1])
    keep = list(range(len(data)))
    while keep:
        batch = OrderBatch.from_spectra(SpectrumList([data[i] for i in keep]))
        known = [r for r in batch.resolution if r is not None]
        grid = model_grid_for(batch, max(known) if known else HPF_RESOLVING_POWER)
        excess = torch.maximum(low / grid[:, 0], grid[:, -1] / high)
        if float(excess.max()) <= 1:
            return keep
        keep.pop(int(excess.argmax()))
    raise FitError(f"the emulator ({low:.1f}-{high:.1f} Angstrom) covers none of the orders "
                   "with the model grid's margin")


def _stem(path: Path) -> str:
    """The file name without its format suffix (and ``.gz``): ``a_v1.0.spectra.fits``
    gives ``a_v1.0.spectra``."""
    name = path.name.removesuffix(".gz")
    return Path(name).stem or name


def fit_command(args: argparse.Namespace) -> int:
    """Run ``stellarai fit`` with parsed arguments; returns the exit status (0)."""
    from ..io import read_spectrum_list

    if not args.file.is_file():
        raise FileNotFoundError(f"spectrum file {str(args.file)!r} does not exist")
    data = _select_orders(read_spectrum_list(args.file), args.orders, str(args.file))
    model = build_model(args.emulator, data, telluric=args.telluric, blaze=args.blaze)
    if args.orders is None:
        keep = covered_orders(model, data)
        if len(keep) < len(data):
            left_out = sorted(set(range(len(data))) - set(keep))
            print(f"note: orders {left_out} of {args.file.name} (with the model grid's margin) "
                  "reach beyond the emulator's wavelength range and are left out; choose "
                  "orders with --orders")
            data = _select_orders(data, keep, str(args.file))
    result = _fit(model, data, args)
    written = _save_outputs(result, args.out, _stem(args.file))
    print(result.table)
    status = "converged" if result.converged else "NOT converged"
    print(f"{args.file.name}: {status}, chi2 = {result.chi2:.1f}")
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


FIT_NAMES = {"telluric_strength": "strength"}
"""Names in a :class:`~stellarai.fitting.FitResult` of the simulation's truth entries
that differ (the Telluric operator's parameter is ``strength``)."""


def injection_table(truth: Any, result: Any) -> Any:
    """Injected against recovered values: a QTable with one row per injected parameter.

    Parameters
    ----------
    truth : QTable
        The truth table of :func:`~stellarai.fitting.simulate.simulate_hpf_observation`
        (``name``, ``value``, ``unit``).
    result : FitResult
        The fit; injected parameters it did not fit are left out.

    Returns
    -------
    QTable
        Columns ``name``, ``injected``, ``recovered``, ``uncertainty``, ``unit`` and
        ``pull`` (recovered minus injected, in units of the uncertainty).
    """
    import numpy as np
    from astropy.table import QTable

    fitted = {str(n): i for i, n in enumerate(result.table["name"])}
    rows = []
    for name, value, unit in zip(truth["name"], truth["value"], truth["unit"], strict=True):
        key = FIT_NAMES.get(str(name), str(name))
        if key not in fitted:
            continue
        row = result.table[fitted[key]]
        recovered, sigma = _plain(row["value"]), _plain(row["uncertainty"])
        pull = (recovered - float(value)) / sigma if sigma > 0 else np.nan
        rows.append((str(name), float(value), recovered, sigma, str(unit), pull))
    return QTable(rows=rows, names=("name", "injected", "recovered", "uncertainty", "unit",
                                    "pull"))


def _plain(value: Any) -> float:
    return float(getattr(value, "value", value))


def demo_command(args: argparse.Namespace) -> int:
    """Run ``stellarai demo`` with parsed arguments; returns the exit status (0)."""
    import astropy.units as u

    from .simulate import simulate_hpf_observation

    labels = {"teff": DEMO_TRUTH["teff"] * u.K, "logg": DEMO_TRUTH["logg"],
              "feh": DEMO_TRUTH["feh"], "vmic": DEMO_TRUTH["vmic"] * u.km / u.s}
    data, truth = simulate_hpf_observation(
        labels, rv=DEMO_TRUTH["rv"] * u.km / u.s, vsini=DEMO_TRUTH["vsini"] * u.km / u.s,
        telluric_strength=DEMO_TRUTH["telluric_strength"], snr=args.snr,
        orders=args.orders, seed=args.seed)
    print(f"simulated HPF orders {' '.join(map(str, args.orders))} at SNR {args.snr:g} "
          f"(seed {args.seed}); fitting ...")
    model = build_model("default", data, telluric="hpf")
    result = _fit(model, data, args, seed=args.seed)
    table = injection_table(truth, result)
    print(f"{'parameter':<18} {'injected':>10} {'recovered':>22} {'unit':<7} {'pull':>6}")
    for row in table:
        print(f"{row['name']:<18} {row['injected']:>10.4g} "
              f"{row['recovered']:>11.4g} +- {row['uncertainty']:<8.2g} {row['unit']:<7} "
              f"{row['pull']:>6.2f}")
    status = "converged" if result.converged else "NOT converged"
    print(f"fit {status}, chi2 = {result.chi2:.1f} for {_n_pixels(data)} pixels")
    written = _save_outputs(result, args.out, "demo")
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _n_pixels(data: Any) -> int:
    return int(sum(s.flux.size for s in data))
