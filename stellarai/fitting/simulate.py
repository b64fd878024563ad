r"""Simulated échelle observations with known parameters, for tests, demos and benchmarks.

:func:`simulate_observation` runs any forward model (a source chain on a fine model grid)
onto observed pixels, multiplies by a smooth per-order continuum and adds Gaussian noise
at a signal-to-noise ratio. :func:`simulate_hpf_observation` uses it for an HPF-like
observation: the default emulator (or any other), rotation, a radial velocity, muler's
TelFit telluric template, the instrumental profile at R = 55,000, HPF's own pixel
wavelengths (:func:`hpf_pixel_wavelengths`), a quadratic continuum per order and noise.
Both are seeded and deterministic, and record the injected values.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import astropy.units as u
import numpy as np
import torch
from astropy.nddata import StdDevUncertainty
from astropy.table import QTable
from specutils import Spectrum, SpectrumList

from ..ops import (
    C_KMS,
    ChebyshevContinuum,
    Doppler,
    Instrument,
    Operator,
    Resample,
    Rotation,
    Telluric,
    model_grid_for,
    read_muler_template,
)
from ..ops.kernels import uniform_log_grid
from ..ops.resample import DEFAULT_MARGIN, DEFAULT_OVERSAMPLE
from .errors import FitError

__all__ = [
    "DEFAULT_HPF_STAR",
    "HPF_N_ORDERS",
    "HPF_N_PIXELS",
    "HPF_RESOLVING_POWER",
    "SimulationError",
    "hpf_pixel_wavelengths",
    "random_continuum",
    "simulate_hpf_observation",
    "simulate_observation",
]

HPF_N_ORDERS = 28
"""Number of orders of an HPF Goldilocks spectrum."""
HPF_N_PIXELS = 2048
"""Pixels per HPF order."""
HPF_RESOLVING_POWER = 55_000.0
"""HPF's resolving power (muler's ``instrumental_resolution``)."""
DEFAULT_HPF_STAR = {"teff": 5200 * u.K, "logg": 4.5 * u.dex, "feh": -0.2 * u.dex,
                    "vmic": 1.1 * u.km / u.s}
"""Labels of the star :func:`simulate_hpf_observation` simulates when none are given (a
K0 dwarf); labels an emulator has beyond these start at its label space's defaults."""
_TELLURIC_TEMPLATE = "telfit_HPFtemplate_temp286_hum050.csv"


class SimulationError(FitError):
    """A simulation was asked for something it cannot make (bad SNR, orders, coverage)."""


def hpf_pixel_wavelengths(orders: Sequence[int] | None = None) -> u.Quantity:
    """HPF's pixel wavelengths (vacuum Angstrom), one row of 2048 per order.

    They are the wavelengths of HPF's Goldilocks pipeline, read from the TelFit telluric
    template muler ships (tabulated on exactly those 28 x 2048 pixels).

    Parameters
    ----------
    orders : sequence of int, optional
        Order indices 0-27 (blue to red); default all 28.

    Returns
    -------
    Quantity
        Shape ``(len(orders), 2048)``, Angstrom.

    Raises
    ------
    SimulationError
        For an index outside 0-27, a repeated index or an empty selection.

    Examples
    --------
    >>> wavelength = hpf_pixel_wavelengths([19])
    >>> wavelength.shape, round(float(wavelength[0, 0].value), 2)
    ((1, 2048), 10820.63)
    """
    (wavelength,) = read_muler_template(_TELLURIC_TEMPLATE, ["wavelength_A"])
    rows = wavelength.reshape(HPF_N_ORDERS, HPF_N_PIXELS)
    return rows[_order_indices(orders)] * u.AA


def _order_indices(orders: Sequence[int] | None) -> list[int]:
    if orders is None:
        return list(range(HPF_N_ORDERS))
    try:
        indices = [int(o) for o in orders]
    except (TypeError, ValueError) as exc:
        raise SimulationError(f"orders must be a sequence of order indices 0-"
                              f"{HPF_N_ORDERS - 1}, got {orders!r}") from exc
    bad = [o for o in indices if not 0 <= o < HPF_N_ORDERS]
    if not indices or bad or len(set(indices)) != len(indices) or any(
            i != o for i, o in zip(indices, orders, strict=True)):
        raise SimulationError(
            f"orders must be distinct integers 0-{HPF_N_ORDERS - 1} (HPF has "
            f"{HPF_N_ORDERS} orders), got {list(orders)!r}")
    return sorted(indices)


def random_continuum(n_orders: int, rng: np.random.Generator) -> np.ndarray:
    r"""Chebyshev coefficients ``(n_orders, 3)`` of smooth, blaze-like per-order continua.

    Each order gets :math:`a_0\,(1 + a_1 T_1(x) + a_2 T_2(x))` with :math:`a_0 \in
    [0.8, 1.2]` (the level), :math:`a_1 \in [-0.1, 0.1]` (a tilt) and :math:`a_2 \in
    [-0.25, -0.1]` (a dome falling towards the order's ends), :math:`x = \pm 1` at the
    order's end pixels; it stays above 0.65 :math:`a_0`.
    """
    level = rng.uniform(0.8, 1.2, n_orders)
    tilt = rng.uniform(-0.1, 0.1, n_orders)
    dome = rng.uniform(-0.25, -0.1, n_orders)
    return np.stack([level, level * tilt, level * dome], axis=1)


def _template_orders(wavelengths: Any, resolving_power: float | None,
                     order_numbers: Sequence[int] | None) -> SpectrumList:
    """Flat spectra on the target pixels, carrying order numbers and resolution."""
    if isinstance(wavelengths, u.Quantity):
        rows = [wavelengths] if wavelengths.ndim == 1 else list(wavelengths)
    elif isinstance(wavelengths, Sequence) and not isinstance(wavelengths, str):
        rows = list(wavelengths)
    else:
        raise SimulationError(f"wavelengths must be a Quantity (n_pix,) or (n_orders, n_pix), "
                              f"or a list of 1-D Quantities, got {type(wavelengths).__name__}")
    if order_numbers is None:
        order_numbers = range(len(rows))
    if len(order_numbers) != len(rows):
        raise SimulationError(f"order_numbers has {len(order_numbers)} entries for "
                              f"{len(rows)} orders")
    spectra = []
    for row, number in zip(rows, order_numbers, strict=True):
        if not isinstance(row, u.Quantity) or row.ndim != 1 or row.size < 2:
            raise SimulationError("each order's wavelengths must be a 1-D Quantity of at least "
                                  f"2 pixels, got {row!r:.80}")
        meta: dict[str, Any] = {"m": int(number)}
        if resolving_power is not None:
            meta["instrumental_resolution"] = float(resolving_power)
        spectra.append(Spectrum(flux=np.ones(row.size) * u.one, spectral_axis=row, meta=meta))
    return SpectrumList(spectra)


def simulate_observation(model: Operator, wavelengths: Any, *, snr: float = 100.0,
                         continuum: Any = None, seed: int = 0,
                         resolving_power: float | None = None,
                         order_numbers: Sequence[int] | None = None,
                         meta: Mapping[str, Any] | None = None) -> SpectrumList:
    r"""Observe a forward model on given pixels: continuum times model, plus noise.

    Parameters
    ----------
    model : stellarai.ops.Operator
        A source chain (it starts with an emulator or template) on a model grid fine
        enough for its kernels and wide enough for the pixels plus the kernels' reach, e.g.
        ``emu.source(wavelength=grid) | Rotation(...) | Doppler(...) | Instrument(...)``.
        :class:`~stellarai.ops.Resample` onto the pixels is appended here.
    wavelengths : Quantity or list of Quantity
        Pixel wavelengths: ``(n_pix,)``, ``(n_orders, n_pix)``, or one 1-D Quantity per
        order (orders may differ in length).
    snr : float
        Signal-to-noise ratio per pixel in the continuum: the noise's standard deviation
        is the continuum divided by ``snr`` (so it follows the continuum, and absorption
        lines are as noisy as the continuum next to them).
    continuum : array-like, optional
        Chebyshev coefficients of each order's continuum, ``(n_orders, degree + 1)``, with
        x = ±1 at the order's end pixels (:class:`~stellarai.ops.ChebyshevContinuum`);
        default a flat continuum of 1.
    seed : int
        Seed of the noise.
    resolving_power : float, optional
        Recorded as each order's ``meta["instrumental_resolution"]``.
    order_numbers : sequence of int, optional
        Each order's ``meta["m"]`` (default 0, 1, ...).
    meta : mapping, optional
        More metadata for every order (keep it JSON-serializable to write the spectra with
        the ``stellarai-fits`` writer).

    Returns
    -------
    SpectrumList
        One `~specutils.Spectrum` per order: flux, `~astropy.nddata.StdDevUncertainty`,
        ``meta`` with ``m``, ``instrumental_resolution``, ``snr``, ``seed``,
        ``continuum`` (the order's coefficients) and ``meta``'s entries.

    Raises
    ------
    SimulationError
        For a non-positive or non-finite ``snr`` or a continuum of the wrong shape.
    stellarai.ops.GridCoverageError
        If the model grid does not cover the pixels plus the kernels' reach.

    Examples
    --------
    >>> import astropy.units as u, numpy as np, torch
    >>> from stellarai.ops import Rotation, Template
    >>> from stellarai.ops.kernels import uniform_log_grid
    >>> grid = uniform_log_grid(10_000.0, 10_040.0, resolving_power=50_000)
    >>> line = 1 - 0.5 * torch.exp(-0.5 * ((grid - 10_020.0) / 0.1) ** 2)
    >>> model = Template((grid, line)) | Rotation(vsini=5 * u.km / u.s)
    >>> pixels = np.linspace(10_005.0, 10_035.0, 300) * u.AA
    >>> observed = simulate_observation(model, pixels, snr=200, seed=1)
    >>> spectrum = observed[0]
    >>> float(spectrum.uncertainty.array[0]), spectrum.meta["snr"]
    (0.005, 200.0)
    """
    if not (isinstance(snr, (int, float)) and math.isfinite(snr) and snr > 0):
        raise SimulationError(f"snr must be a positive finite number, got {snr!r}")
    template = _template_orders(wavelengths, resolving_power, order_numbers)
    n_orders = len(template)
    if continuum is None:
        continuum = np.zeros((n_orders, 1))
        continuum[:, 0] = 1.0
    continuum = np.asarray(continuum, dtype=np.float64)
    if continuum.ndim != 2 or continuum.shape[0] != n_orders:
        raise SimulationError(f"continuum must have shape (n_orders={n_orders}, degree + 1), "
                              f"got {continuum.shape}")
    shape_op = ChebyshevContinuum.from_data(template, degree=continuum.shape[1] - 1,
                                            coefficients=continuum if n_orders > 1
                                            else continuum[0])
    resample = Resample(template)
    with torch.no_grad():
        _, flux = (model | resample)(None, None)
        level = shape_op(resample.target_wavelength, torch.ones_like(flux))[1]
    rng = np.random.default_rng(seed)
    spectra = []
    for i, order in enumerate(template):
        n = order.flux.size
        clean = (flux[i, :n] * level[i, :n]).numpy()
        sigma = level[i, :n].numpy() / snr
        noisy = clean + sigma * rng.standard_normal(n)
        order_meta = dict(order.meta, snr=float(snr), seed=int(seed),
                          continuum=continuum[i].tolist(), **dict(meta or {}))
        spectra.append(Spectrum(flux=noisy * u.one, spectral_axis=order.spectral_axis,
                                uncertainty=StdDevUncertainty(sigma), meta=order_meta))
    return SpectrumList(spectra)


def _load_emulator(emulator: Any) -> Any:
    from ..emulators import SpectralEmulator, load

    if isinstance(emulator, SpectralEmulator):
        return emulator
    if isinstance(emulator, (str, os.PathLike)):
        return load(emulator)
    raise SimulationError(f"emulator must be 'default', a path to a saved emulator or a "
                          f"SpectralEmulator, got {type(emulator).__name__}")


def _labels_with_defaults(emulator: Any, labels: Any) -> dict[str, Any]:
    """The star's labels: ``labels`` over :data:`DEFAULT_HPF_STAR` over the label defaults."""
    given = dict(labels) if labels is not None else {}
    space = emulator.label_space
    unknown = sorted(set(given) - set(space.names))
    if unknown:
        raise SimulationError(f"labels {unknown} are not labels of the emulator; it has "
                              f"{list(space.names)}")
    start = {name: value for name, value in DEFAULT_HPF_STAR.items() if name in space}
    start.update(given)
    return start


_EDGE_ALLOWANCE_KMS = 10.0
"""Extra room beyond the margin (about five HPF pixels): model grids start at the outer
pixel edges and end at a whole grid step beyond them."""


def _pixels_the_emulator_covers(pixels: np.ndarray, indices: Sequence[int], low: float,
                                high: float, margin: Any, resolving_power: float,
                                oversample: float) -> list[np.ndarray]:
    """Each order's pixels, less those whose model-grid row would leave ``[low, high]``.

    The rows are those :func:`~stellarai.ops.model_grid_for` makes for the orders (the
    fitter's model grid): each starts ``margin`` below its order's blue pixel edge, and
    all have the length of the widest order plus twice the margin, so a row reaches
    beyond its own order's red end by more than the margin. First the pixels within the
    margin of the emulator's ends are dropped; then orders wider than the reddest row
    allows are shortened at their red end.
    """
    margin_kms = float(u.Quantity(margin, u.km / u.s).value)
    grow = math.exp((margin_kms + _EDGE_ALLOWANCE_KMS) / C_KMS)
    rows = [row[(row / grow >= low) & (row * grow <= high)] for row in pixels]
    _refuse_empty(rows, pixels, indices, low, high, margin_kms)
    widest = high / (max(float(row[0]) for row in rows) * grow)
    rows = [row[row <= row[0] * widest] for row in rows]
    _refuse_empty(rows, pixels, indices, low, high, margin_kms)
    grid = model_grid_for(_template_orders([r * u.AA for r in rows], resolving_power, None),
                          oversample=oversample, margin=margin)
    if float(grid[:, 0].min()) < low or float(grid[:, -1].max()) > high:
        raise SimulationError(  # pragma: no cover - guarded by the allowance above
            "the model grid of the simulated orders leaves the emulator's wavelength range")
    return rows


def _refuse_empty(rows: list[np.ndarray], pixels: np.ndarray, indices: Sequence[int],
                  low: float, high: float, margin_kms: float) -> None:
    for index, row, full in zip(indices, rows, pixels, strict=True):
        if row.size < 2:
            raise SimulationError(
                f"HPF order {index} ({full[0]:.1f}-{full[-1]:.1f} Angstrom) lies outside the "
                f"emulator's wavelength range {low:.1f}-{high:.1f} Angstrom less a margin of "
                f"{margin_kms:g} km/s; choose other orders or another emulator")


def simulate_hpf_observation(labels: Mapping[str, Any] | None = None, *,
                             rv: Any = -9.6 * u.km / u.s, vsini: Any = 6.0 * u.km / u.s,
                             telluric_strength: float = 1.0, snr: float = 100.0,
                             resolving_power: float = HPF_RESOLVING_POWER,
                             orders: Sequence[int] | None = None, emulator: Any = "default",
                             seed: int = 0, margin: Any = DEFAULT_MARGIN,
                             oversample: float = DEFAULT_OVERSAMPLE,
                             continuum: bool = True) -> tuple[SpectrumList, QTable]:
    r"""A synthetic HPF observation of a star with known labels.

    The star comes from an emulator (``"default"``: stellarai's default emulator of the
    HPF band, Teff, log g, [Fe/H], vmic), evaluated on a model grid uniform in
    :math:`\ln\lambda` (``oversample`` pixels per resolution element) and passed through
    the forward model

    ``(star | Rotation(vsini) | Doppler(rv)) * Telluric.from_muler("hpf",
    strength=telluric_strength) | Instrument(resolving_power)``,

    resampled onto HPF's pixel wavelengths (:func:`hpf_pixel_wavelengths`), multiplied by
    a random smooth continuum per order (:func:`random_continuum`, seeded) and given
    Gaussian noise (:func:`simulate_observation`).

    Parameters
    ----------
    labels : mapping, optional
        Stellar labels (Quantities or numbers in the labels' units); missing ones are
        taken from :data:`DEFAULT_HPF_STAR`, then from the emulator's label defaults.
    rv : Quantity or float
        Radial velocity (km/s if a number) of the star relative to the observatory.
    vsini : Quantity or float
        Projected rotational velocity (km/s if a number).
    telluric_strength : float
        Exponent of the telluric transmission (1: the template as muler ships it).
    snr : float
        Signal-to-noise ratio per pixel in the continuum.
    resolving_power : float
        Resolving power of the instrumental profile (and the orders'
        ``instrumental_resolution``).
    orders : sequence of int, optional
        HPF order indices 0-27 to simulate (default all 28).
    emulator : "default", path or SpectralEmulator
        The emulator of the star.
    seed : int
        Seed of the continua and of the noise.
    margin : Quantity or float
        Velocity (km/s if a number) by which the emulator must extend beyond each pixel:
        the model grid's margin, and the margin a fit's model grid will need (default
        300 km/s, :func:`~stellarai.ops.model_grid_for`'s). Pixels closer than this to
        the ends of the emulator's wavelength range are not simulated (HPF's bluest order
        begins at 8079 Angstrom, below the default emulator's 8080 Angstrom); each order's
        ``meta["trimmed_pixels"]`` says how many were left out.
    oversample : float
        Model-grid pixels per resolution element.
    continuum : bool
        Multiply by a random per-order continuum (default), or leave the spectrum
        normalized (continuum 1).

    Returns
    -------
    observation : SpectrumList
        One `~specutils.Spectrum` per order (dimensionless flux,
        `~astropy.nddata.StdDevUncertainty`), ``meta`` with ``m`` (the order index),
        ``instrumental_resolution``, ``snr``, ``seed``, ``continuum``, ``trimmed_pixels``
        and ``truth`` (the injected values in the units of the truth table).
    truth : QTable
        Columns ``name``, ``value``, ``unit``: the emulator's labels, ``vsini``, ``rv``
        and ``telluric_strength``.

    Raises
    ------
    SimulationError
        For unknown labels, bad orders or SNR, or an order the emulator does not cover.
    stellarai.errors.LabelError, stellarai.ops.ParameterError
        For labels or parameters outside their bounds.

    Examples
    --------
    >>> import astropy.units as u
    >>> observed, truth = simulate_hpf_observation(
    ...     {"teff": 4800 * u.K}, rv=12 * u.km / u.s, vsini=4 * u.km / u.s,
    ...     telluric_strength=1.2, orders=[19, 20], seed=3)
    >>> len(observed), observed[0].meta["m"], observed[0].flux.shape
    (2, 19, (2048,))
    >>> print(truth)
           name        value   unit
    ----------------- ------ ------
                 teff 4800.0      K
                 logg    4.5    dex
                  feh   -0.2    dex
                 vmic    1.1 km / s
                vsini    4.0 km / s
                   rv   12.0 km / s
    telluric_strength    1.2
    """
    emu = _load_emulator(emulator)
    indices = _order_indices(orders)
    star = emu.source(**_labels_with_defaults(emu, labels))
    stellar = {name: star.get(name) for name in emu.label_space.names}
    rotation = Rotation(vsini=vsini)
    doppler = Doppler(rv=rv)
    telluric = Telluric.from_muler("hpf", strength=telluric_strength)
    instrument = Instrument(resolving_power=resolving_power)
    margin_kms = float(u.Quantity(margin, u.km / u.s).value)
    pixels = hpf_pixel_wavelengths(indices).to_value(u.AA)
    low, high = (float(emu.wavelength[0].value), float(emu.wavelength[-1].value)
                 ) if emu.wavelength is not None else (0.0, math.inf)
    rows = _pixels_the_emulator_covers(pixels, indices, low, high, margin,
                                       float(resolving_power), float(oversample))
    trimmed = [HPF_N_PIXELS - row.size for row in rows]
    rows = [row * u.AA for row in rows]
    grow = math.exp(margin_kms / C_KMS)
    grid = uniform_log_grid(min(r[0].value for r in rows) / grow,
                            max(r[-1].value for r in rows) * grow,
                            resolving_power=float(resolving_power),
                            samples_per_resolution=float(oversample))
    grid = grid[grid <= high] if emu.wavelength is not None else grid
    source = emu.source(wavelength=grid.numpy() * u.AA, **stellar)
    model = (source | rotation | doppler) * telluric | instrument
    truth = QTable({
        "name": [*stellar, "vsini", "rv", "telluric_strength"],
        "value": [float(q.value) for q in stellar.values()]
        + [float(rotation.vsini.value), float(doppler.rv.value), float(telluric.strength.value)],
        "unit": [str(q.unit) for q in stellar.values()] + ["km / s", "km / s", ""],
    })
    rng = np.random.default_rng(seed)
    coefficients = random_continuum(len(rows), rng) if continuum else None
    recorded = {str(name): float(value) for name, value in zip(truth["name"], truth["value"],
                                                                strict=True)}
    observation = simulate_observation(
        model, rows, snr=snr, continuum=coefficients, seed=int(rng.integers(2**31)),
        resolving_power=resolving_power, order_numbers=indices,
        meta={"truth": recorded, "origin": "stellarai.fitting.simulate_hpf_observation"})
    for spectrum, count in zip(observation, trimmed, strict=True):
        spectrum.meta["trimmed_pixels"] = count
        spectrum.meta["seed"] = int(seed)
    return observation, truth
