r"""Label spaces: the named, unit-carrying, bounded parameters of stellar spectra.

Emulators, fitters, flows and grids all describe a star by the same kind of object: a
:class:`LabelSpace`, an ordered tuple of :class:`Label`\ s, each with a name, a unit and
bounds. A label is never an unnamed column: user-facing values are Quantities (or bare
numbers in the label's unit), and the only arrays are ``(..., n_labels)`` arrays in the
space's order and canonical units, produced by :meth:`LabelSpace.parse` and checked by
:meth:`LabelSpace.check`.

Naming scheme
-------------
Names are lowercase Python identifiers, so they work as keyword arguments
(``emulator.spectrum(teff=4700 * u.K, logg=4.5)``):

============== ================================================ =================
name           quantity                                         unit (canonical)
============== ================================================ =================
``teff``       effective temperature                            K
``logg``       log10 of the surface gravity in cm s⁻²           ``dex(cm / s2)``
``feh``        [Fe/H], iron abundance relative to the Sun       dex
``m_h``        [M/H], overall metallicity                       dex
``alpha_fe``   [α/Fe], alpha-element enhancement                dex
``<x>_h``      [X/H] of element X, e.g. ``mg_h`` is [Mg/H]      dex
``<x>_fe``     [X/Fe] of element X, e.g. ``mg_fe`` is [Mg/Fe]   dex
``vmic``       microturbulent velocity                          km / s
``vmac``       macroturbulent velocity                          km / s
============== ================================================ =================

Element symbols are lowercased (``c_fe``, ``ti_h``). [Fe/H] is always ``feh`` (the name
``fe_h`` is refused so that one quantity has one spelling); :func:`abundance_label`
builds correctly named abundance labels. Velocities that are operators rather than
intrinsic labels (``vsini``, ``rv``) belong to :mod:`stellarai.ops`, not to label spaces.

Units
-----
Temperatures are in K, velocities in km/s, abundances in ``u.dex`` and surface gravity in
``u.dex(u.cm / u.s**2)``. On input, a bare number (or a dimensionless Quantity) is read
in the label's unit, and any Quantity astropy can convert is converted: ``4.7 * u.kK``,
``4426.85 * u.deg_C`` (through :func:`~astropy.units.temperature`), ``2.5 *
u.dex(u.m / u.s**2)`` or a linear ``27400 * u.cm / u.s**2`` for ``logg``. A Quantity in
bare ``u.dex`` is read as a number in the label's logarithmic unit, so ``logg=4.5 * u.dex``
means 4.5 dex(cgs).
"""

from __future__ import annotations

import difflib
import keyword
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import astropy.units as u
import numpy as np
import torch
from astropy.table import Column, QTable, Row, Table

from .errors import LabelError

__all__ = [
    "ABUNDANCE_UNIT",
    "ELEMENTS",
    "LOGG_UNIT",
    "TEMPERATURE_UNIT",
    "VELOCITY_UNIT",
    "Label",
    "LabelSpace",
    "abundance_label",
]

TEMPERATURE_UNIT = u.K
"""Canonical unit of temperatures."""
LOGG_UNIT = u.dex(u.cm / u.s**2)
"""Canonical unit of the surface gravity: dex of cm s⁻² (cgs)."""
ABUNDANCE_UNIT = u.dex
"""Canonical unit of abundances ([X/H], [X/Fe], [M/H], [α/Fe])."""
VELOCITY_UNIT = u.km / u.s
"""Canonical unit of velocities (micro- and macroturbulence)."""

ELEMENTS = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge "
    "As Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm "
    "Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U"
).split()
"""Chemical element symbols H to U, accepted by :func:`abundance_label`."""

_RESERVED = frozenset({"fill_missing", "defaults", "ignore_unknown"})
_FORMAT = "stellarai.LabelSpace"
_FORMAT_VERSION = 1
_BOUND_RTOL = 1e-12  # round-off from unit conversion tolerated at a bound, as a share of span

UnitLike = u.UnitBase | u.FunctionUnitBase | str
ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def _unit_str(unit: Any) -> str:
    text = unit.to_string()
    return text if text else "(dimensionless)"


def _num(x: float) -> str:
    return f"{x:.10g}"


def _is_logarithmic(unit: Any) -> bool:
    return isinstance(unit, u.FunctionUnitBase) or unit == u.dex


def _as_unit(unit: UnitLike, what: str) -> u.UnitBase | u.FunctionUnitBase:
    try:
        return u.Unit(unit)
    except (ValueError, TypeError) as exc:
        raise LabelError(f"{what}: {unit!r} is not a unit astropy understands ({exc})") from exc


def _to_values(value: Any, unit: Any, name: str) -> np.ndarray:
    """Convert one label's value(s) to a float64 array in ``unit``, or raise LabelError."""
    if isinstance(value, Column):
        _refuse_masked(np.ma.getmaskarray(value), name)
        col_unit = value.unit
        value = np.asarray(np.ma.getdata(value))
        if col_unit is not None:
            value = value * col_unit
    mask = getattr(value, "mask", None)
    if mask is not None:
        _refuse_masked(np.asarray(mask), name)
        value = value.unmasked if hasattr(value, "unmasked") else np.ma.getdata(value)
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, u.Quantity):
        if value.unit == u.dimensionless_unscaled or (
            _is_logarithmic(unit) and value.unit == u.dex
        ):
            value = value.value
        else:
            try:
                value = value.to_value(unit, equivalencies=u.temperature())
            except u.UnitsError as exc:
                raise LabelError(
                    f"label {name!r} expects a value in {_unit_str(unit)} (or a Quantity "
                    f"convertible to it), got unit {_unit_str(value.unit)!r}"
                ) from exc
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise LabelError(
            f"label {name!r} must be a number or a Quantity in {_unit_str(unit)}, got "
            f"{value!r}"
        ) from exc
    return array


def _refuse_masked(mask: np.ndarray, name: str) -> None:
    if np.any(mask):
        where = f" in row {int(np.flatnonzero(mask)[0])}" if mask.ndim else ""
        raise LabelError(
            f"label {name!r} is masked{where}; fill or drop masked values first"
        )


@dataclass(frozen=True)
class Label:
    r"""One stellar label: a name, a unit and the bounds of its allowed range.

    Parameters
    ----------
    name : str
        Lowercase identifier following the module's naming scheme (``"teff"``, ``"logg"``,
        ``"feh"``, ``"mg_fe"``, ...).
    unit : `~astropy.units.UnitBase`, `~astropy.units.FunctionUnitBase` or str
        Unit of the label's values (``u.K``, ``u.dex``, ``u.dex(u.cm / u.s**2)``,
        ``"km / s"``). Values inside stellarai are plain floats in this unit.
    bounds : (float or Quantity, float or Quantity)
        Inclusive lower and upper bound, ``lower < upper``; stored as floats in ``unit``.
    default : float or Quantity, optional
        Value used by :meth:`LabelSpace.parse` with ``fill_missing=True``; ``None`` (default)
        means the midpoint of the bounds.
    description : str, optional
        Human-readable description.
    latex : str, optional
        LaTeX symbol for plots, e.g. ``r"$T_{\rm eff}$"``.

    Notes
    -----
    ``description`` and ``latex`` are documentation only: they take no part in equality
    or hashing, so two labels are equal when name, unit, bounds and default agree.

    Examples
    --------
    >>> import astropy.units as u
    >>> Label("teff", u.K, (2.3 * u.kK, 12 * u.kK))
    Label('teff', unit='K', bounds=(2300, 12000))
    >>> Label("vmic", "km / s", (0, 5), default=1.0).unit
    Unit("km / s")
    """

    name: str
    unit: u.UnitBase | u.FunctionUnitBase
    bounds: tuple[float, float]
    default: float | None = field(default=None, kw_only=True)
    description: str = field(default="", kw_only=True, compare=False)
    latex: str = field(default="", kw_only=True, compare=False)

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise LabelError(f"label name must be a Python identifier, got {name!r}")
        if name != name.lower():
            raise LabelError(
                f"label name must be lowercase, got {name!r} (use {name.lower()!r})"
            )
        if name in _RESERVED:
            raise LabelError(
                f"label name {name!r} is reserved (it is a keyword of LabelSpace.parse); "
                f"reserved names: {sorted(_RESERVED)}"
            )
        if name == "fe_h":
            raise LabelError("label name 'fe_h' is spelled 'feh' in stellarai ([Fe/H])")
        unit = _as_unit(self.unit, f"unit of label {name!r}")
        object.__setattr__(self, "unit", unit)

        bounds = self.bounds
        if isinstance(bounds, u.Quantity) and bounds.ndim == 1:
            bounds = list(bounds)
        try:
            lower, upper = bounds
        except (TypeError, ValueError) as exc:
            raise LabelError(
                f"bounds of label {name!r} must be a pair (lower, upper), got {self.bounds!r}"
            ) from exc
        lo = _to_values(lower, unit, name)
        hi = _to_values(upper, unit, name)
        if lo.ndim or hi.ndim:
            raise LabelError(
                f"bounds of label {name!r} must be two scalars, got {self.bounds!r}"
            )
        lo_f, hi_f = float(lo), float(hi)
        if not (math.isfinite(lo_f) and math.isfinite(hi_f)) or not lo_f < hi_f:
            raise LabelError(
                f"bounds of label {name!r} must be finite with lower < upper, got "
                f"({_num(lo_f)}, {_num(hi_f)}) {_unit_str(unit)}"
            )
        object.__setattr__(self, "bounds", (lo_f, hi_f))

        if self.default is not None:
            dflt = _to_values(self.default, unit, name)
            if dflt.ndim or not lo_f <= float(dflt) <= hi_f:
                raise LabelError(
                    f"default of label {name!r} must be a scalar within its bounds "
                    f"[{_num(lo_f)}, {_num(hi_f)}] {_unit_str(unit)}, got {self.default!r}"
                )
            object.__setattr__(self, "default", float(dflt))
        if not isinstance(self.description, str) or not isinstance(self.latex, str):
            raise LabelError(f"description and latex of label {name!r} must be strings")

    @property
    def lower(self) -> float:
        """Lower bound, in :attr:`unit`."""
        return self.bounds[0]

    @property
    def upper(self) -> float:
        """Upper bound, in :attr:`unit`."""
        return self.bounds[1]

    @property
    def fill_value(self) -> float:
        """:attr:`default` if set, else the midpoint of the bounds."""
        return self.default if self.default is not None else 0.5 * (self.lower + self.upper)

    def to_value(self, value: Any) -> np.ndarray:
        """Convert ``value`` (number, array or Quantity) to floats in :attr:`unit`.

        Only units are converted; bounds are checked by :meth:`LabelSpace.parse`.

        Examples
        --------
        >>> import astropy.units as u
        >>> Label("teff", u.K, (2300, 12000)).to_value(4.7 * u.kK)
        array(4700.)
        """
        return _to_values(value, self.unit, self.name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable description of the label (see :meth:`from_dict`)."""
        return {
            "name": self.name,
            "unit": self.unit.to_string(),
            "bounds": [self.lower, self.upper],
            "default": self.default,
            "description": self.description,
            "latex": self.latex,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Label:
        """Rebuild a label from :meth:`to_dict` output.

        Examples
        --------
        >>> import astropy.units as u
        >>> label = Label("logg", u.dex(u.cm / u.s**2), (-0.5, 6), default=4.438)
        >>> Label.from_dict(label.to_dict()) == label
        True
        """
        if not isinstance(data, Mapping):
            raise LabelError(f"a label description must be a mapping, got {data!r}")
        allowed = {"name", "unit", "bounds", "default", "description", "latex"}
        unknown = set(data) - allowed
        missing = {"name", "unit", "bounds"} - set(data)
        if unknown or missing:
            raise LabelError(
                f"invalid label description {dict(data)!r}: unknown keys "
                f"{sorted(unknown)}, missing keys {sorted(missing)}; allowed: {sorted(allowed)}"
            )
        return cls(
            data["name"],
            data["unit"],
            tuple(data["bounds"]),
            default=data.get("default"),
            description=data.get("description", ""),
            latex=data.get("latex", ""),
        )

    def __repr__(self) -> str:
        text = (
            f"Label({self.name!r}, unit={_unit_str(self.unit)!r}, "
            f"bounds=({_num(self.lower)}, {_num(self.upper)})"
        )
        if self.default is not None:
            text += f", default={_num(self.default)}"
        return text + ")"


def abundance_label(
    element: str,
    relative_to: Literal["h", "fe"] = "h",
    bounds: tuple[float, float] = (-2.0, 2.0),
    *,
    default: float | None = 0.0,
) -> Label:
    """Build a correctly named abundance label, [X/H] or [X/Fe].

    Parameters
    ----------
    element : str
        Element symbol, any case (``"Mg"``, ``"mg"``), or ``"alpha"`` for [α/Fe] or
        ``"m"`` for [M/H].
    relative_to : {"h", "fe"}
        Reference: hydrogen ([X/H], name ``"<x>_h"``) or iron ([X/Fe], ``"<x>_fe"``).
    bounds : (float, float)
        Bounds in dex.
    default : float or None
        Fill value (see :class:`Label`), solar (0 dex) by default.

    Returns
    -------
    Label
        With unit ``u.dex``. [Fe/H] is named ``"feh"``.

    Examples
    --------
    >>> abundance_label("Mg", "fe", (-1, 1))
    Label('mg_fe', unit='dex', bounds=(-1, 1), default=0)
    >>> abundance_label("Fe").name
    'feh'
    """
    ref = str(relative_to).lower()
    if ref not in ("h", "fe"):
        raise LabelError(f"relative_to must be 'h' or 'fe', got {relative_to!r}")
    symbol = str(element)
    special = {"alpha": r"\alpha", "m": "M"}
    if symbol.lower() in special:
        tex = special[symbol.lower()]
        pretty = "α" if symbol.lower() == "alpha" else "M"
    else:
        matches = [e for e in ELEMENTS if e.lower() == symbol.lower()]
        if not matches:
            by_lower = {e.lower(): e for e in ELEMENTS}
            close = [by_lower[m] for m in
                     difflib.get_close_matches(symbol.lower(), by_lower, n=3, cutoff=0.5)]
            raise LabelError(
                f"element must be a chemical symbol from H to U, 'alpha' or 'm', got "
                f"{element!r}" + (f"; did you mean {close}?" if close else "")
            )
        tex = pretty = matches[0]
    ref_pretty = "H" if ref == "h" else "Fe"
    if symbol.lower() == ref:
        raise LabelError(f"[{pretty}/{ref_pretty}] is identically zero; choose another element")
    name = "feh" if (symbol.lower(), ref) == ("fe", "h") else f"{symbol.lower()}_{ref}"
    return Label(
        name,
        ABUNDANCE_UNIT,
        bounds,
        default=default,
        description=f"[{pretty}/{ref_pretty}] abundance relative to the Sun",
        latex=rf"$[{tex}/\mathrm{{{ref_pretty}}}]$",
    )


class LabelSpace:
    r"""An ordered collection of :class:`Label`\ s shared by emulators, fitters and grids.

    Parameters
    ----------
    labels : iterable of Label
        The labels, in the order of the last axis of every label array. Names must be
        unique.

    Notes
    -----
    A label space is immutable; :meth:`subset`, :meth:`with_label` and :meth:`with_bounds`
    return new spaces. Arrays of labels are ``(..., n_labels)`` floats in each label's
    unit, in the space's order. Equality (and hashing) compares the labels (see
    :class:`Label`).

    Examples
    --------
    >>> import astropy.units as u
    >>> space = LabelSpace.default()
    >>> space.names
    ('teff', 'logg', 'feh', 'vmic', 'alpha_fe')
    >>> space.parse(teff=4.7 * u.kK, logg=4.5, feh=0.1, vmic=1 * u.km / u.s, alpha_fe=0)
    {'teff': 4700.0, 'logg': 4.5, 'feh': 0.1, 'vmic': 1.0, 'alpha_fe': 0.0}
    >>> space.scale(space.parse_batch(teff=7150, logg=2.75, feh=-1.5, vmic=2.5, alpha_fe=0.1))
    array([[0., 0., 0., 0., 0.]])
    """

    def __init__(self, labels: Iterable[Label]) -> None:
        if isinstance(labels, (Label, str, Mapping)):
            raise LabelError(
                f"labels must be an iterable of Label objects, got {type(labels).__name__}"
            )
        labels = tuple(labels)
        for item in labels:
            if not isinstance(item, Label):
                raise LabelError(
                    f"labels must be Label objects, got {type(item).__name__}: {item!r}"
                )
        if not labels:
            raise LabelError("a LabelSpace needs at least one label, got none")
        names = [label.name for label in labels]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise LabelError(f"label names must be unique, got duplicates {duplicates}")
        self._labels: tuple[Label, ...] = labels
        self._index = {name: i for i, name in enumerate(names)}
        self._lower = np.array([label.lower for label in labels], dtype=np.float64)
        self._upper = np.array([label.upper for label in labels], dtype=np.float64)
        self._lower.flags.writeable = False
        self._upper.flags.writeable = False

    # ----------------------------------------------------------------- construction

    @classmethod
    def default(cls) -> LabelSpace:
        r"""The default space of stellar atmospheric labels.

        ========== ================ =============== ========
        name       unit             bounds          default
        ========== ================ =============== ========
        teff       K                2300 – 12000    5772
        logg       dex(cm / s2)     −0.5 – 6        4.438
        feh        dex              −4 – 1          0
        vmic       km / s           0 – 5           1
        alpha_fe   dex              −1 – 1.2        0
        ========== ================ =============== ========

        The bounds span M dwarfs to late B stars, supergiants to dwarfs and the metallicities
        of the PHOENIX grid; defaults are the nominal Sun (IAU 2015 B3 Teff, log g) with
        vmic = 1 km/s. Build other spaces with :meth:`with_label`, :meth:`subset` and
        :func:`abundance_label`.

        Examples
        --------
        >>> LabelSpace.default()["logg"]
        Label('logg', unit='dex(cm / s2)', bounds=(-0.5, 6), default=4.438)
        """
        return cls(
            [
                Label("teff", TEMPERATURE_UNIT, (2300.0, 12000.0), default=5772.0,
                      description="effective temperature", latex=r"$T_{\rm eff}$"),
                Label("logg", LOGG_UNIT, (-0.5, 6.0), default=4.438,
                      description="log10 of the surface gravity in cm s^-2",
                      latex=r"$\log g$"),
                Label("feh", ABUNDANCE_UNIT, (-4.0, 1.0), default=0.0,
                      description="[Fe/H] iron abundance relative to the Sun",
                      latex=r"$[\mathrm{Fe}/\mathrm{H}]$"),
                Label("vmic", VELOCITY_UNIT, (0.0, 5.0), default=1.0,
                      description="microturbulent velocity", latex=r"$v_{\rm mic}$"),
                Label("alpha_fe", ABUNDANCE_UNIT, (-1.0, 1.2), default=0.0,
                      description="[alpha/Fe] alpha-element enhancement",
                      latex=r"$[\alpha/\mathrm{Fe}]$"),
            ]
        )

    def subset(self, names: Iterable[str]) -> LabelSpace:
        """A new space with only ``names``, in the order given.

        Examples
        --------
        >>> LabelSpace.default().subset(["logg", "teff"]).names
        ('logg', 'teff')
        """
        if isinstance(names, str):
            names = [names]
        return LabelSpace([self[self._lookup(name)] for name in names])

    def with_label(self, label: Label, *, replace: bool = False) -> LabelSpace:
        """A new space with ``label`` appended (or substituted in place if ``replace``).

        Parameters
        ----------
        label : Label
            The label to add.
        replace : bool
            If a label of that name exists: replace it at its position (True) or raise
            `~stellarai.errors.LabelError` (False, default).

        Examples
        --------
        >>> space = LabelSpace.default().with_label(abundance_label("mg", "fe", (-1, 1)))
        >>> space.names[-1]
        'mg_fe'
        """
        if not isinstance(label, Label):
            raise LabelError(f"label must be a Label, got {type(label).__name__}: {label!r}")
        if label.name in self._index:
            if not replace:
                raise LabelError(
                    f"label {label.name!r} already exists in this space; pass replace=True "
                    "to substitute it"
                )
            labels = list(self._labels)
            labels[self._index[label.name]] = label
            return LabelSpace(labels)
        return LabelSpace([*self._labels, label])

    def with_bounds(self, name: str, lower: Any, upper: Any) -> LabelSpace:
        """A new space in which label ``name`` has bounds ``(lower, upper)``.

        ``lower`` and ``upper`` are numbers in the label's unit or Quantities. A default
        that falls outside the new bounds is reset to the new midpoint.

        Examples
        --------
        >>> import astropy.units as u
        >>> LabelSpace.default().with_bounds("teff", 3 * u.kK, 7 * u.kK)["teff"]
        Label('teff', unit='K', bounds=(3000, 7000), default=5772)
        """
        old = self[self._lookup(name)]
        new = Label(old.name, old.unit, (lower, upper), description=old.description,
                    latex=old.latex)
        default = old.default
        if default is not None and not new.lower <= default <= new.upper:
            default = None
        new = Label(new.name, new.unit, new.bounds, default=default,
                    description=old.description, latex=old.latex)
        return self.with_label(new, replace=True)

    # ----------------------------------------------------------------- serialization

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable description (for model sidecar files); see :meth:`from_dict`.

        Examples
        --------
        >>> import json
        >>> space = LabelSpace.default()
        >>> LabelSpace.from_dict(json.loads(json.dumps(space.to_dict()))) == space
        True
        """
        return {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "labels": [label.to_dict() for label in self._labels],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelSpace:
        """Rebuild a space from :meth:`to_dict` output (exact round trip)."""
        if not isinstance(data, Mapping) or data.get("format") != _FORMAT:
            raise LabelError(
                f"not a label-space description: expected a mapping with format={_FORMAT!r}, "
                f"got {data!r:.200}"
            )
        if data.get("version") != _FORMAT_VERSION:
            raise LabelError(
                f"unsupported label-space description version {data.get('version')!r}; this "
                f"stellarai reads version {_FORMAT_VERSION}"
            )
        labels = data.get("labels")
        if not isinstance(labels, Sequence) or isinstance(labels, str):
            raise LabelError(f"'labels' must be a list of label descriptions, got {labels!r}")
        return cls(Label.from_dict(item) for item in labels)

    # ----------------------------------------------------------------- container protocol

    @property
    def labels(self) -> tuple[Label, ...]:
        """The labels, in order."""
        return self._labels

    @property
    def names(self) -> tuple[str, ...]:
        """Label names, in order."""
        return tuple(label.name for label in self._labels)

    @property
    def units(self) -> tuple[u.UnitBase | u.FunctionUnitBase, ...]:
        """Label units, in order."""
        return tuple(label.unit for label in self._labels)

    @property
    def bounds(self) -> np.ndarray:
        """Bounds as a new float64 array of shape ``(n_labels, 2)``: columns lower, upper."""
        return np.stack([self._lower, self._upper], axis=1)

    @property
    def lower(self) -> np.ndarray:
        """Lower bounds, shape ``(n_labels,)`` (read-only)."""
        return self._lower

    @property
    def upper(self) -> np.ndarray:
        """Upper bounds, shape ``(n_labels,)`` (read-only)."""
        return self._upper

    @property
    def defaults(self) -> dict[str, float]:
        """Fill values used by ``parse(..., fill_missing=True)``: default, else midpoint."""
        return {label.name: label.fill_value for label in self._labels}

    def index(self, name: str) -> int:
        """Position of label ``name`` on the last axis of label arrays."""
        return self._index[self._lookup(name)]

    def _lookup(self, name: Any) -> str:
        if isinstance(name, str) and name in self._index:
            return name
        raise LabelError(self._unknown_message([name]))

    def _unknown_message(self, unknown: Sequence[Any]) -> str:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(str(name), self.names, n=1, cutoff=0.6)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        noun = "label" if len(unknown) == 1 else "labels"
        return f"unknown {noun} {', '.join(hints)}; known labels: {list(self.names)}"

    def __len__(self) -> int:
        return len(self._labels)

    def __iter__(self) -> Iterator[Label]:
        return iter(self._labels)

    def __getitem__(self, key: str | int) -> Label:
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            try:
                return self._labels[key]
            except IndexError:
                raise LabelError(
                    f"label index {key} out of range for a space of {len(self)} labels"
                ) from None
        return self._labels[self._index[self._lookup(key)]]

    def __contains__(self, item: object) -> bool:
        if isinstance(item, Label):
            return item.name in self._index and self[item.name] == item
        return isinstance(item, str) and item in self._index

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelSpace):
            return NotImplemented
        return self._labels == other._labels

    def __hash__(self) -> int:
        return hash(self._labels)

    def __repr__(self) -> str:
        width = max(len(name) for name in self.names)
        uwidth = max(len(_unit_str(unit)) for unit in self.units)
        rows = [
            f"  {label.name:<{width}}  {_unit_str(label.unit):<{uwidth}}  "
            f"[{_num(label.lower)}, {_num(label.upper)}]"
            for label in self._labels
        ]
        return f"<LabelSpace: {len(self)} labels\n" + "\n".join(rows) + ">"

    # ----------------------------------------------------------------- parsing

    def parse(
        self,
        values: Mapping[str, Any] | Table | Row | None = None,
        /,
        *,
        fill_missing: bool = False,
        defaults: Mapping[str, Any] | None = None,
        ignore_unknown: bool = False,
        **labels: Any,
    ) -> dict[str, float] | np.ndarray:
        """Convert user-supplied labels to canonical floats, checking names, units and bounds.

        Parameters
        ----------
        values : mapping, `~astropy.table.Table`/`~astropy.table.QTable`, table Row, optional
            Labels by name. A mapping may be combined with keyword arguments (a name given
            twice is an error). Table columns with units are converted; columns without a
            unit are read in the label's unit.
        fill_missing : bool
            If False (default) a missing label raises. If True it is filled from
            ``defaults``, else from the label's :attr:`Label.default`, else from the
            midpoint of its bounds (see :attr:`defaults`).
        defaults : mapping, optional
            Fill values for ``fill_missing=True`` (numbers or Quantities).
        ignore_unknown : bool
            Skip names (e.g. extra table columns) that are not labels of this space
            instead of raising.
        **labels
            Labels by name: numbers in the label's unit, Quantities, or 1-d arrays.

        Returns
        -------
        dict or numpy.ndarray
            For a single star (all values scalar, or a table Row): a dict name → float in
            the space's order. For a batch (a Table, or any 1-d value; scalars are
            broadcast): a float64 array of shape ``(n, n_labels)``. Use
            :meth:`parse_batch` to always get an array.

        Raises
        ------
        LabelError
            For an unknown name (with a close match suggested), a missing label, a unit
            that cannot be converted, a NaN or infinite value, or a value outside the
            label's bounds (the message names the label, the value with its unit, the
            allowed range and the row). Nothing is clipped: bounds are inclusive, and a value
            beyond a bound by at most 1e-12 of the label's range (round-off from a unit
            conversion) is accepted unchanged.

        Examples
        --------
        >>> import astropy.units as u
        >>> from astropy.table import QTable
        >>> space = LabelSpace.default().subset(["teff", "logg", "feh"])
        >>> space.parse({"teff": 5000}, logg=4.5 * u.dex, feh=-0.5 * u.dex)
        {'teff': 5000.0, 'logg': 4.5, 'feh': -0.5}
        >>> space.parse(teff=4.7 * u.kK, fill_missing=True)
        {'teff': 4700.0, 'logg': 4.438, 'feh': 0.0}
        >>> table = QTable({"teff": [4000, 6000] * u.K, "logg": [4.5, 4.0], "feh": [0, -1]})
        >>> space.parse(table)
        array([[ 4.0e+03,  4.5e+00,  0.0e+00],
               [ 6.0e+03,  4.0e+00, -1.0e+00]])
        """
        raw, batch = self._collect(values, labels, ignore_unknown)
        missing = [name for name in self.names if name not in raw]
        if missing and not fill_missing:
            raise LabelError(
                f"missing {'label' if len(missing) == 1 else 'labels'} {missing}; this space "
                f"needs {list(self.names)} (pass fill_missing=True to fill missing labels "
                "from their defaults)"
            )
        fill = self._fill_values(defaults) if missing else {}

        columns: list[np.ndarray] = []
        for label in self._labels:
            if label.name in raw:
                array = _to_values(raw[label.name], label.unit, label.name)
                if array.ndim > 1:
                    raise LabelError(
                        f"label {label.name!r} must be a scalar or a 1-d array, got shape "
                        f"{array.shape}"
                    )
            else:
                array = np.asarray(fill[label.name], dtype=np.float64)
            columns.append(array)
        batch = batch or any(col.ndim == 1 for col in columns)
        if not batch:
            stacked = np.array([float(col) for col in columns])[None, :]
        else:
            try:
                stacked = np.stack(np.broadcast_arrays(*[np.atleast_1d(c) for c in columns]),
                                   axis=-1)
            except ValueError:
                lengths = {name: col.shape[0] for name, col in zip(self.names, columns, strict=True)
                           if col.ndim == 1}
                raise LabelError(
                    f"label arrays must have the same length (or be scalars), got lengths "
                    f"{lengths}"
                ) from None
        self._validate(stacked, show_rows=batch)
        if batch:
            return stacked
        return {name: float(x) for name, x in zip(self.names, stacked[0], strict=True)}

    def parse_batch(
        self,
        values: Mapping[str, Any] | Table | Row | None = None,
        /,
        *,
        fill_missing: bool = False,
        defaults: Mapping[str, Any] | None = None,
        ignore_unknown: bool = False,
        **labels: Any,
    ) -> np.ndarray:
        """Like :meth:`parse`, but always return a float64 array ``(n, n_labels)``.

        Examples
        --------
        >>> space = LabelSpace.default().subset(["teff", "logg"])
        >>> space.parse_batch(teff=5000, logg=[4.0, 4.5])
        array([[5.0e+03, 4.0e+00],
               [5.0e+03, 4.5e+00]])
        """
        result = self.parse(values, fill_missing=fill_missing, defaults=defaults,
                            ignore_unknown=ignore_unknown, **labels)
        if isinstance(result, dict):
            return np.array([list(result.values())], dtype=np.float64)
        return result

    def _collect(
        self, values: Any, kwargs: dict[str, Any], ignore_unknown: bool
    ) -> tuple[dict[str, Any], bool]:
        batch = False
        if values is None:
            raw: dict[str, Any] = {}
        elif isinstance(values, Row):
            raw = {}
            for name in values.colnames:
                col = values.table[name]
                item = col[values.index]
                if isinstance(col, Column) and col.unit is not None and not np.ma.is_masked(item):
                    item = item * col.unit  # a plain Table's Row drops the column unit
                raw[name] = item
        elif isinstance(values, Table):
            raw = {name: values[name] for name in values.colnames}
            batch = True
        elif isinstance(values, Mapping):
            raw = dict(values)
        else:
            raise LabelError(
                "values must be a mapping of label names, an astropy Table/QTable or a table "
                f"Row, got {type(values).__name__} (a bare array has no names: use "
                "LabelSpace.check for arrays already in canonical units)"
            )
        twice = sorted(set(raw) & set(kwargs))
        if twice:
            raise LabelError(f"labels {twice} were given both in values and as keywords")
        raw.update(kwargs)
        unknown = [name for name in raw if name not in self._index]
        if unknown:
            if not ignore_unknown:
                raise LabelError(self._unknown_message(unknown))
            for name in unknown:
                del raw[name]
        return raw, batch

    def _fill_values(self, defaults: Mapping[str, Any] | None) -> dict[str, float]:
        fill = self.defaults
        if defaults is None:
            return fill
        if not isinstance(defaults, Mapping):
            raise LabelError(f"defaults must be a mapping of label names, got {defaults!r}")
        unknown = [name for name in defaults if name not in self._index]
        if unknown:
            raise LabelError("in defaults: " + self._unknown_message(unknown))
        for name, value in defaults.items():
            array = _to_values(value, self[name].unit, name)
            if array.ndim:
                raise LabelError(f"default for label {name!r} must be a scalar, got {value!r}")
            fill[name] = float(array)
        return fill

    def _validate(self, array: np.ndarray, *, show_rows: bool) -> None:
        """Raise LabelError for NaN/inf or out-of-bounds values of a (n, n_labels) array."""
        span = self._upper - self._lower
        for j, label in enumerate(self._labels):
            column = array[:, j]
            bad = ~np.isfinite(column)
            reason = "must be finite"
            if not np.any(bad):
                tol = _BOUND_RTOL * span[j]
                bad = (column < self._lower[j] - tol) | (column > self._upper[j] + tol)
                reason = "is outside the allowed range"
            if not np.any(bad):
                continue
            rows = np.flatnonzero(bad)
            value = column[rows[0]]
            where = ""
            if show_rows:
                where = f" in row {rows[0]}"
                if len(rows) > 1:
                    where += f" (and {len(rows) - 1} more rows)"
            unit = _unit_str(label.unit)
            message = f"label {label.name!r} = {_num(value)} {unit}{where} {reason}"
            if reason.startswith("is outside"):
                message += f" [{_num(label.lower)}, {_num(label.upper)}] {unit}"
            else:
                message += (f" (allowed range [{_num(label.lower)}, {_num(label.upper)}] "
                            f"{unit})")
            raise LabelError(message)

    def check(self, array: Any) -> None:
        """Validate an array of labels already in canonical units and label order.

        Parameters
        ----------
        array : array-like or torch.Tensor
            Shape ``(n_labels,)`` or ``(n, n_labels)``.

        Raises
        ------
        LabelError
            If the shape does not match, or a value is NaN, infinite or out of bounds; the
            message names the label, the value, the allowed range and the row index.

        Examples
        --------
        >>> space = LabelSpace.default().subset(["teff", "logg"])
        >>> space.check([[5000.0, 4.5], [6000.0, 4.0]])
        >>> from stellarai.errors import LabelError
        >>> try:
        ...     space.check([[5000.0, 4.5], [13000.0, 4.0]])
        ... except LabelError as error:
        ...     print(error)
        label 'teff' = 13000 K in row 1 is outside the allowed range [2300, 12000] K
        """
        values = self._as_numpy(array, "array")
        if values.ndim not in (1, 2) or values.shape[-1] != len(self):
            raise LabelError(
                f"array must have shape (n_labels,) or (n, n_labels) with n_labels = "
                f"{len(self)} ({list(self.names)}), got shape {values.shape}"
            )
        self._validate(np.atleast_2d(values), show_rows=True)

    def _as_numpy(self, array: Any, what: str) -> np.ndarray:
        if isinstance(array, torch.Tensor):
            array = array.detach().cpu().numpy()
        if isinstance(array, u.Quantity):
            raise LabelError(
                f"{what} must be a plain array in canonical units (the space's units "
                f"{[_unit_str(x) for x in self.units]}), got a Quantity; use parse() for "
                "Quantities"
            )
        try:
            return np.asarray(array, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise LabelError(f"{what} must be a numeric array, got {array!r:.200}") from exc

    # ----------------------------------------------------------------- scaling

    def _affine(self, x: Any) -> tuple[Any, Any, Any]:
        if isinstance(x, torch.Tensor):
            if not x.is_floating_point():
                x = x.to(torch.get_default_dtype())
            lower = torch.tensor(self._lower.tolist(), dtype=x.dtype, device=x.device)
            span = torch.tensor((self._upper - self._lower).tolist(), dtype=x.dtype,
                                device=x.device)
        else:
            x = np.asarray(x)
            if not np.issubdtype(x.dtype, np.floating):
                x = x.astype(np.float64)
            lower = self._lower.astype(x.dtype)
            span = (self._upper - self._lower).astype(x.dtype)
        if x.ndim == 0 or x.shape[-1] != len(self):
            raise LabelError(
                f"label array must have shape (..., {len(self)}) for labels "
                f"{list(self.names)}, got shape {tuple(x.shape)}"
            )
        return x, lower, span

    def scale(self, x: ArrayT) -> ArrayT:
        r"""Map labels to the unit box centred on zero, as in The Payne.

        :math:`z = (x - x_{\rm lo})/(x_{\rm hi} - x_{\rm lo}) - 0.5`, so the bounds map to
        ±0.5.

        Parameters
        ----------
        x : numpy.ndarray or torch.Tensor
            Shape ``(..., n_labels)`` in canonical units. Floating dtypes are preserved
            (integers become float64, or torch's default dtype); tensors stay on their
            device and keep their autograd graph. Values are not checked against bounds.

        Returns
        -------
        numpy.ndarray or torch.Tensor
            Scaled labels, same shape.

        References
        ----------
        Ting, Y.-S., Conroy, C., Rix, H.-W., & Cargile, P. 2019, ApJ, 879, 69
        (arXiv:1804.01530).

        Examples
        --------
        >>> import torch
        >>> space = LabelSpace.default().subset(["teff", "logg"])
        >>> space.scale(torch.tensor([[2300.0, 6.0]]))
        tensor([[-0.5000,  0.5000]])
        """
        x, lower, span = self._affine(x)
        return (x - lower) / span - 0.5

    def unscale(self, z: ArrayT) -> ArrayT:
        """Inverse of :meth:`scale`: ``x = (z + 0.5) * (hi - lo) + lo``.

        Examples
        --------
        >>> import numpy as np
        >>> LabelSpace.default().subset(["teff"]).unscale(np.array([[0.0]]))
        array([[7150.]])
        """
        z, lower, span = self._affine(z)
        return (z + 0.5) * span + lower

    # ----------------------------------------------------------------- tables

    def to_table(self, array: Any) -> QTable:
        """Turn an array ``(n, n_labels)`` (or ``(n_labels,)``) into a QTable with units.

        Values are not checked against bounds (use :meth:`check`); torch tensors are
        detached and moved to the CPU.

        Examples
        --------
        >>> space = LabelSpace.default().subset(["teff", "logg"])
        >>> table = space.to_table([[5000.0, 4.5]])
        >>> table["teff"], table["logg"]
        (<Quantity [5000.] K>, <Dex [4.5] dex(cm / s2)>)
        """
        values = self._as_numpy(array, "array")
        if values.ndim == 1:
            values = values[None, :]
        if values.ndim != 2 or values.shape[1] != len(self):
            raise LabelError(
                f"array must have shape (n, {len(self)}) or ({len(self)},) for labels "
                f"{list(self.names)}, got shape {np.shape(array)}"
            )
        return QTable(
            [values[:, j] * label.unit for j, label in enumerate(self._labels)],
            names=self.names,
        )

    def random(
        self,
        n: int,
        *,
        seed: int | np.random.Generator | None = None,
        method: Literal["uniform", "latin_hypercube"] = "uniform",
    ) -> QTable:
        """Draw ``n`` label vectors uniformly within the bounds, as a QTable with units.

        Parameters
        ----------
        n : int
            Number of draws (≥ 0).
        seed : int, numpy.random.Generator or None
            Seed or generator, for reproducible draws.
        method : {"uniform", "latin_hypercube"}
            Independent uniform draws, or a Latin hypercube: each label's range is cut
            into ``n`` equal strata and every stratum receives exactly one draw.

        Returns
        -------
        `~astropy.table.QTable`
            One column per label, in canonical units.

        Examples
        --------
        >>> table = LabelSpace.default().random(4, seed=1, method="latin_hypercube")
        >>> len(table), table.colnames
        (4, ['teff', 'logg', 'feh', 'vmic', 'alpha_fe'])
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise LabelError(f"n must be a non-negative integer, got {n!r}")
        if method not in ("uniform", "latin_hypercube"):
            raise LabelError(f"method must be 'uniform' or 'latin_hypercube', got {method!r}")
        rng = np.random.default_rng(seed)
        if method == "uniform":
            unit_cube = rng.random((int(n), len(self)))
        else:
            strata = np.stack([rng.permutation(int(n)) for _ in range(len(self))], axis=1)
            unit_cube = (strata + rng.random((int(n), len(self)))) / max(int(n), 1)
        return self.to_table(self._lower + unit_cube * (self._upper - self._lower))
