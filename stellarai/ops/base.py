r"""The operator algebra: physical parameters, composition, and the way to specutils.

Every forward-model step in :mod:`stellarai.ops` is an :class:`Operator`: a
`torch.nn.Module` whose ``forward(wavelength, flux)`` maps a batch of spectra to a batch of
spectra. Inside, a spectrum is a pair of tensors of shape ``(..., n_pix)``: vacuum
wavelength in Angstrom and flux; leading dimensions are spectra or échelle orders.

Parameters
----------
Each operator declares named physical parameters, each described by a :class:`Parameter`
record (unit, bounds, fixed or free, optional :class:`GaussianPrior`) and stored as a
float64 `torch.nn.Parameter` in canonical units (km/s for velocities, dimensionless
otherwise) in the operator's ``tensors`` dictionary. Constructors take Quantities
(``Doppler(rv=-9.6 * u.km / u.s)``) or plain numbers in canonical units; a value with the
wrong unit or outside its bounds raises :class:`ParameterError` naming the operator, the
parameter, the value and the bounds. Nothing is ever clipped.

Algebra
-------
``a | b`` applies ``b`` to the output of ``a`` (a :class:`Pipe`); ``a * b`` multiplies the
fluxes of ``a`` and ``b`` on ``a``'s wavelength grid (a :class:`Product`): a
:class:`Multiplicative` operator (telluric transmission, continuum, blaze) is evaluated on
that grid; any other right-hand side is linearly interpolated onto it, and must cover it.
Python's precedence makes ``a | b * c`` mean ``a | (b * c)``.

A composed operator has the union of its members' parameters. A name used by more than
one member operator gets the suffix ``_<i>``, ``i`` being the position (from 0) of that
member in :attr:`Operator.operators` (the members in order of appearance, left to
right): the suffix astropy's compound models use. Names used once keep their name.
"""

from __future__ import annotations

import abc
import contextlib
import math
import weakref
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import astropy.constants as const
import astropy.units as u
import numpy as np
import torch
from astropy.table import QTable
from specutils import Spectrum, SpectrumList
from torch import Tensor, nn

from ..errors import SpectrumTypeError, StellarAIError
from ..spectra.orders import OrderBatch
from ..spectra.resample import interpolate_linear

__all__ = [
    "C_KMS",
    "GaussianPrior",
    "GridCoverageError",
    "Multiplicative",
    "Operator",
    "OperatorError",
    "Parameter",
    "ParameterError",
    "ParameterTable",
    "Pipe",
    "Product",
    "Unconstrained",
    "uniform_log_step",
]

C_KMS = float(const.c.to_value(u.km / u.s))
"""Speed of light in vacuum, km/s."""

_STEP_CACHE: dict[int, tuple[Any, int, tuple[int, ...], float | None]] = {}


def uniform_log_step(wavelength: Tensor) -> float | None:
    """The step in ln(wavelength) of a uniform ln-wavelength grid, or None for other grids.

    Uses :func:`stellarai.ops.kernels.log_step` (uniform to 1e-6); the answer is remembered
    for the same tensor (same object, unmodified), so a model grid that passes through a
    chain is checked once, not by every operator on every call.

    Examples
    --------
    >>> import torch
    >>> from stellarai.ops.kernels import uniform_log_grid
    >>> round(uniform_log_step(uniform_log_grid(9000.0, 9010.0, resolving_power=50_000))
    ...       * 150_000, 9)
    1.0
    >>> uniform_log_step(torch.linspace(9000.0, 9010.0, 100, dtype=torch.float64)) is None
    True
    """
    from .kernels import log_step

    key = id(wavelength)
    hit = _STEP_CACHE.get(key)
    if (hit is not None and hit[0]() is wavelength and hit[1] == wavelength._version
            and hit[2] == tuple(wavelength.shape)):
        return hit[3]
    try:
        step: float | None = log_step(wavelength.detach())
    except ValueError:
        step = None
    if len(_STEP_CACHE) > 16:
        _STEP_CACHE.clear()
    _STEP_CACHE[key] = (weakref.ref(wavelength), wavelength._version, tuple(wavelength.shape),
                        step)
    return step

_KMS = u.km / u.s
_INF = math.inf


# ----------------------------------------------------------------------------- errors


class OperatorError(StellarAIError, ValueError):
    """An operator cannot run on its input (grid, shapes, composition)."""


class ParameterError(OperatorError):
    """A parameter value has the wrong unit or shape, or lies outside its bounds."""


class GridCoverageError(OperatorError):
    """A wavelength grid or template does not cover the wavelengths it must cover."""


# ------------------------------------------------------------------- parameter records


@dataclass(frozen=True)
class GaussianPrior:
    """A normal prior on a parameter, in the parameter's canonical unit.

    Parameters
    ----------
    mean, sigma : float
        Mean and standard deviation (``sigma > 0``), in canonical units (km/s for
        velocities).

    Examples
    --------
    >>> import torch
    >>> prior = GaussianPrior(-9.0, 2.0)
    >>> str(prior), round(float(prior.log_prob(torch.tensor(-9.0))), 4)
    ('N(-9, 2)', -1.6121)
    """

    mean: float
    sigma: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mean) and math.isfinite(self.sigma) and self.sigma > 0):
            raise ParameterError(
                f"a Gaussian prior needs a finite mean and a positive sigma, got mean="
                f"{self.mean!r}, sigma={self.sigma!r}"
            )

    def log_prob(self, value: Tensor) -> Tensor:
        """Log density at ``value`` (summed over elements for a vector parameter)."""
        z = (value - self.mean) / self.sigma
        return (-0.5 * z**2 - math.log(self.sigma * math.sqrt(2 * math.pi))).sum()

    def __str__(self) -> str:
        return f"N({self.mean:g}, {self.sigma:g})"


@dataclass
class Parameter:
    """What an operator knows about one of its parameters (the value lives in a tensor).

    Attributes
    ----------
    name : str
        Name inside its operator (``"rv"``, ``"vsini"``).
    unit : astropy.units.UnitBase
        Canonical unit of the stored value (km/s for velocities, dimensionless otherwise).
    bounds : tuple of float
        ``(lower, upper)`` in ``unit``; ``-inf``/``inf`` where unbounded.
    open_bounds : bool
        If True the bounds themselves are excluded (``lower < value < upper``).
    fixed : bool
        Fixed parameters are not optimized and not exposed by ``as_model``.
    prior : GaussianPrior or None
        Optional prior, used by :meth:`Operator.log_prior`.
    shape : tuple of int
        ``()`` for a scalar, ``(n,)`` for one value per row (échelle order).
    description : str
        One line for tables and astropy's parameter description.
    """

    name: str
    unit: u.UnitBase
    bounds: tuple[float, float] = (-_INF, _INF)
    open_bounds: bool = False
    fixed: bool = False
    prior: GaussianPrior | None = None
    shape: tuple[int, ...] = ()
    description: str = ""

    def bounds_text(self) -> str:
        """Bounds as text, e.g. ``[0, 500] km / s``."""
        left, right = ("(", ")") if self.open_bounds else ("[", "]")
        unit = "" if self.unit == u.dimensionless_unscaled else f" {self.unit}"
        return f"{left}{self.bounds[0]:g}, {self.bounds[1]:g}{right}{unit}"

    def outside(self, values: np.ndarray) -> np.ndarray:
        """Boolean array: True where ``values`` violate the bounds (or are not finite)."""
        low, high = self.bounds
        if self.open_bounds:
            ok = (values > low) & (values < high)
        else:
            ok = (values >= low) & (values <= high)
        return ~(ok & np.isfinite(values))


def _unit_words(unit: u.UnitBase) -> str:
    if unit == u.dimensionless_unscaled:
        return "dimensionless"
    if unit.is_equivalent(_KMS):
        return f"a velocity (convertible to {unit})"
    return f"convertible to {unit}"


def to_canonical(value: Any, unit: u.UnitBase, where: str) -> np.ndarray:
    """``value`` (Quantity, tensor, number or array) as float64 numbers in ``unit``.

    Parameters
    ----------
    value : Quantity, torch.Tensor, float or array-like
        The value; plain numbers and tensors are taken to be in ``unit`` already.
    unit : astropy.units.UnitBase
        The canonical unit.
    where : str
        What the value is, named in error messages (e.g. ``"Doppler rv"``).

    Returns
    -------
    numpy.ndarray
        Float64 numbers in ``unit``.

    Raises
    ------
    ParameterError
        If a Quantity has an incompatible unit, or the value is not numeric.
    """
    if isinstance(value, u.Quantity):
        try:
            array = value.to_value(unit)
        except u.UnitConversionError:
            raise ParameterError(
                f"{where} must be {_unit_words(unit)}, got {value!r}"
            ) from None
    elif isinstance(value, Tensor):
        array = value.detach().cpu().numpy()
    elif hasattr(value, "unit"):
        raise ParameterError(f"{where}: cannot use a {type(value).__name__} as a value")
    else:
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ParameterError(
                f"{where} must be a number or a Quantity ({_unit_words(unit)}), got "
                f"{value!r}"
            ) from None
    array = np.asarray(array, dtype=np.float64)
    if array.dtype.kind != "f":  # pragma: no cover - asarray(float64) guarantees it
        raise ParameterError(f"{where} must be real, got {value!r}")
    return array


def _shaped(array: np.ndarray, shape: tuple[int, ...], where: str) -> np.ndarray:
    """``array`` with ``shape``: a scalar is repeated, any other shape is an error."""
    if array.shape == shape:
        return array
    if array.ndim == 0:
        return np.full(shape, float(array))
    raise ParameterError(
        f"{where} must have shape {shape} (a scalar, or one value per row), got a value of "
        f"shape {array.shape}"
    )


def _bounds_from(value: Any, unit: u.UnitBase, where: str) -> tuple[float, float]:
    """Canonical ``(lower, upper)`` from a pair of numbers/Quantities/None or a Quantity."""
    try:
        low, high = value
    except (TypeError, ValueError):
        raise ParameterError(f"{where} must be a pair (lower, upper), got {value!r}") from None
    pair = []
    for side, default in ((low, -_INF), (high, _INF)):
        pair.append(default if side is None else float(to_canonical(side, unit, where)))
    if not pair[0] < pair[1]:
        raise ParameterError(f"{where} must satisfy lower < upper, got {value!r}")
    return pair[0], pair[1]


def _describe_value(values: np.ndarray, unit: u.UnitBase) -> str:
    unit_text = "" if unit == u.dimensionless_unscaled else f" {unit}"
    if values.ndim == 0:
        return f"{float(values):.6g}{unit_text}"
    shown = ", ".join(f"{v:.6g}" for v in values[:3])
    more = ", ..." if values.size > 3 else ""
    return f"[{shown}{more}]{unit_text}"


# ----------------------------------------------------------------------- the table


class ParameterTable(QTable):
    """The parameters of an operator as an astropy `~astropy.table.QTable`.

    One row per scalar (a per-order parameter gives one row per order, named
    ``<name>_o<row>``). Columns: ``name``, ``value``, ``unit``, ``free``, ``lower``,
    ``upper`` (bounds in ``unit``), ``prior``, ``operator`` (class name) and ``index``
    (position of that operator in the chain).

    Calling the table, ``op.parameters()``, returns the iterator of `torch.nn.Parameter`
    that `torch.nn.Module.parameters` returns, so torch code (optimizers, ``zero_grad``)
    keeps working on operators.
    """

    _owner_ref: Any = None

    def __call__(self, recurse: bool = True) -> Iterator[nn.Parameter]:
        owner = self._owner_ref() if self._owner_ref is not None else None
        if owner is None:
            raise TypeError("this parameter table is not attached to an operator")
        return nn.Module.parameters(owner, recurse)


# -------------------------------------------------------------------- the base class


@dataclass(frozen=True)
class _Element:
    """One scalar of one parameter, as exposed in tables and to astropy."""

    name: str
    qualified: str
    index: int | None
    leaf: Operator
    local: str
    spec: Parameter
    leaf_index: int


class _QuantityAttribute:
    """Class-level accessor: ``op.rv`` gives a Quantity, ``op.rv = ...`` validates and sets."""

    def __init__(self, name: str, doc: str = "") -> None:
        self.name = name
        self.__doc__ = doc or f"The ``{name}`` parameter as a Quantity (settable)."

    def __get__(self, obj: Operator | None, owner: type) -> Any:
        if obj is None:
            return self
        return obj.get(self.name)

    def __set__(self, obj: Operator, value: Any) -> None:
        obj.set(**{self.name: value})


class Operator(nn.Module, metaclass=abc.ABCMeta):
    """Base class of every forward-model operator.

    Subclasses call :meth:`_add_parameter` for each parameter in ``__init__`` and then
    :meth:`_finish_parameters`, and implement ``forward(wavelength, flux)``.

    Calling an operator:

    - ``op(wavelength, flux)`` with tensors runs :meth:`forward` (the inside of a fit);
    - ``op(spectrum)`` with a specutils `~specutils.Spectrum`, `~specutils.SpectrumList`
      (or muler ``EchelleSpectrumList``) or :class:`~stellarai.spectra.OrderBatch`
      returns the same kind of object with wavelength and flux updated, units kept;
    - ``op()`` on a chain that starts with a source (a :class:`~stellarai.ops.Template`)
      returns the model as specutils objects.
    """

    is_source: bool = False
    """True for operators that produce a spectrum from nothing (templates, emulators)."""
    is_kernel: bool = False
    """True for operators that convolve (they need a margin around the data)."""
    multiplicative: bool = False
    """True for operators that only multiply the flux by a factor (see :class:`Multiplicative`)."""

    def __init__(self) -> None:
        super().__init__()
        self.tensors = nn.ParameterDict()
        self._specs: dict[str, Parameter] = {}

    # ------------------------------------------------------------- declaring parameters
    def _add_parameter(self, name: str, value: Any, *, unit: u.UnitBase,
                       bounds: tuple[float, float] = (-_INF, _INF), fixed: bool = False,
                       open_bounds: bool = False, description: str = "",
                       shape: tuple[int, ...] | None = None) -> None:
        """Declare a parameter; its value is converted now and checked in
        :meth:`_finish_parameters` (after user bound overrides)."""
        unit = u.Unit(unit)
        where = f"{self._name()}: parameter {name!r}"
        array = to_canonical(value, unit, where)
        if shape is not None:
            array = _shaped(array, shape, where)
        if array.ndim > 1:
            raise ParameterError(
                f"{where} must be a scalar or one value per row (1-D), got shape {array.shape}"
            )
        self._specs[name] = Parameter(name=name, unit=unit, bounds=bounds,
                                      open_bounds=open_bounds, fixed=fixed,
                                      shape=array.shape, description=description)
        self.tensors[name] = nn.Parameter(torch.tensor(array, dtype=torch.float64),
                                          requires_grad=not fixed)

    def _finish_parameters(self, fixed: Iterable[str] | Mapping[str, bool] | None = None,
                           bounds: Mapping[str, Any] | None = None,
                           prior: Mapping[str, Any] | None = None) -> None:
        """Apply the user's ``fixed``/``bounds``/``prior`` overrides, then check values."""
        if isinstance(fixed, str):
            fixed = (fixed,)
        if fixed is not None:
            items = fixed.items() if isinstance(fixed, Mapping) else ((n, True) for n in fixed)
            for name, flag in items:
                self._spec(name).fixed = bool(flag)
                self.tensors[name].requires_grad_(not flag)
        for name, value in (bounds or {}).items():
            spec = self._spec(name)
            spec.bounds = _bounds_from(value, spec.unit, f"{self._name()}: bounds of {name!r}")
            spec.open_bounds = False
        for name, value in (prior or {}).items():
            spec = self._spec(name)
            if value is None or isinstance(value, GaussianPrior):
                spec.prior = value
            else:
                where = f"{self._name()}: prior of {name!r}"
                try:
                    mean, sigma = value
                except (TypeError, ValueError):
                    raise ParameterError(
                        f"{where} must be a GaussianPrior or a pair (mean, sigma), got {value!r}"
                    ) from None
                spec.prior = GaussianPrior(float(to_canonical(mean, spec.unit, where)),
                                           float(to_canonical(sigma, spec.unit, where)))
        for name, spec in self._specs.items():
            self._check_value(spec, self.tensors[name].detach().cpu().numpy())

    def _spec(self, name: str) -> Parameter:
        if name not in self._specs:
            known = ", ".join(self._specs) or "none"
            raise ParameterError(
                f"{self._name()} has no parameter {name!r} (its parameters: {known})"
            )
        return self._specs[name]

    def _check_value(self, spec: Parameter, values: np.ndarray,
                     operator: str | None = None, name: str | None = None) -> None:
        bad = spec.outside(values)
        if bool(np.any(bad)):
            first = values if values.ndim == 0 else values[np.flatnonzero(bad)[0]]
            row = "" if values.ndim == 0 else f" (row {int(np.flatnonzero(bad)[0])})"
            raise ParameterError(
                f"{operator or self._name()}: parameter {name or spec.name!r} = "
                f"{_describe_value(np.asarray(first), spec.unit)}{row} is outside its "
                f"bounds {spec.bounds_text()}"
            )

    def _name(self) -> str:
        return type(self).__name__

    # ------------------------------------------------------------ structure (leaves)
    def _leaves(self) -> list[Operator]:
        """The member operators that hold parameters, in order of appearance."""
        return [self]

    @property
    def operators(self) -> tuple[Operator, ...]:
        """The member operators of a chain in order of appearance (itself for a leaf)."""
        return tuple(self._leaves())

    def _named(self) -> dict[str, tuple[Operator, str, int]]:
        """Qualified parameter name -> (member operator, local name, member index)."""
        return {name: (self, name, 0) for name in self._specs}

    def _elements(self) -> list[_Element]:
        elements = []
        for qualified, (leaf, local, index) in self._named().items():
            spec = leaf._specs[local]
            if spec.shape == ():
                elements.append(_Element(qualified, qualified, None, leaf, local, spec, index))
            else:
                elements.extend(_Element(f"{qualified}_o{i}", qualified, i, leaf, local,
                                         spec, index) for i in range(spec.shape[0]))
        return elements

    def _resolve(self, name: str) -> tuple[Operator, str, int | None]:
        named = self._named()
        if name in named:
            leaf, local, _ = named[name]
            return leaf, local, None
        for element in self._elements():
            if element.name == name:
                return element.leaf, element.local, element.index
        known = ", ".join(named) or "none"
        raise ParameterError(f"{self._name()} has no parameter {name!r} (its parameters: "
                             f"{known})")

    # --------------------------------------------------------------- user-facing access
    @property
    def param_names(self) -> tuple[str, ...]:
        """Qualified names of all parameters (fixed and free)."""
        return tuple(self._named())

    @property
    def free_names(self) -> tuple[str, ...]:
        """Qualified names of the free parameters."""
        return tuple(q for q, (leaf, local, _) in self._named().items()
                     if not leaf._specs[local].fixed)

    def get(self, name: str) -> u.Quantity:
        """The value of parameter ``name`` (qualified, or an element ``<name>_o<i>``)."""
        leaf, local, index = self._resolve(name)
        values = leaf.tensors[local].detach().cpu().numpy().copy()
        if index is not None:
            values = values[index]
        return u.Quantity(values, leaf._specs[local].unit)

    def values(self) -> dict[str, u.Quantity]:
        """Every parameter's value as a Quantity, by qualified name."""
        return {name: self.get(name) for name in self._named()}

    def set(self, **values: Any) -> Operator:
        """Set parameter values (Quantities or canonical numbers); checks units and bounds.

        Returns the operator, so calls can be chained.
        """
        for name, value in values.items():
            leaf, local, index = self._resolve(name)
            spec = leaf._specs[local]
            where = f"{leaf._name()}: parameter {name!r}"
            tensor = leaf.tensors[local]
            array = _shaped(to_canonical(value, spec.unit, where),
                            () if index is not None else tuple(tensor.shape), where)
            leaf._check_value(spec, array, name=name)
            with torch.no_grad():
                new = torch.as_tensor(array, dtype=tensor.dtype, device=tensor.device)
                if index is None:
                    tensor.copy_(new)
                else:
                    tensor[index] = new
        return self

    def fix(self, *names: str) -> Operator:
        """Fix the named parameters (they keep their value and are not optimized)."""
        return self._set_fixed(names, True)

    def free(self, *names: str) -> Operator:
        """Free the named parameters."""
        return self._set_fixed(names, False)

    def _set_fixed(self, names: Sequence[str], flag: bool) -> Operator:
        for name in names:
            leaf, local, index = self._resolve(name)
            if index is not None:
                raise ParameterError(
                    f"{leaf._name()}: {name!r} is one element of {local!r}; fix or free the "
                    "whole parameter"
                )
            leaf._specs[local].fixed = flag
            leaf.tensors[local].requires_grad_(not flag)
        return self

    def free_parameters(self) -> dict[str, nn.Parameter]:
        """The free parameters' tensors (canonical units) by qualified name.

        These are the live `torch.nn.Parameter` objects: an optimizer stepping them changes
        the operator. Bounds are not enforced on such steps; use :meth:`unconstrained` for
        an unconstrained reparametrization that always respects them.
        """
        return {q: leaf.tensors[local] for q, (leaf, local, _) in self._named().items()
                if not leaf._specs[local].fixed}

    @property
    def parameters(self) -> ParameterTable:  # type: ignore[override]
        """All parameters as a :class:`ParameterTable` (an astropy QTable).

        Calling it, ``op.parameters()``, returns torch's iterator of `torch.nn.Parameter`
        instead, as `torch.nn.Module.parameters` does.
        """
        rows = []
        for e in self._elements():
            values = e.leaf.tensors[e.local].detach().cpu().numpy()
            value = float(values if e.index is None else values[e.index])
            rows.append((e.name, value, "" if e.spec.unit == u.dimensionless_unscaled
                         else e.spec.unit.to_string(), not e.spec.fixed, e.spec.bounds[0],
                         e.spec.bounds[1], "" if e.spec.prior is None else str(e.spec.prior),
                         e.leaf._name(), e.leaf_index))
        names = ("name", "value", "unit", "free", "lower", "upper", "prior", "operator",
                 "index")
        dtypes = (str, float, str, bool, float, float, str, str, int)
        table = ParameterTable(rows=rows or None, names=names, dtype=dtypes)
        table._owner_ref = weakref.ref(self)
        return table

    def log_prior(self, values: Mapping[str, Tensor] | None = None) -> Tensor:
        """Sum of the log priors of the free parameters that have one (0 if none)."""
        total = torch.zeros((), dtype=torch.float64)
        for q, (leaf, local, _) in self._named().items():
            spec = leaf._specs[local]
            if spec.prior is not None and not spec.fixed:
                value = (values or {}).get(q, leaf.tensors[local])
                total = total + spec.prior.log_prob(value)
        return total

    # ------------------------------------------------------------- functional evaluation
    @contextlib.contextmanager
    def _substituted(self, values: Mapping[str, Tensor]) -> Iterator[None]:
        """Temporarily replace parameter tensors by ``values`` (qualified names)."""
        named = self._named()
        saved = []
        try:
            for name, value in values.items():
                if name not in named:
                    raise ParameterError(f"{self._name()} has no parameter {name!r}")
                leaf, local, _ = named[name]
                store = leaf.tensors._parameters
                saved.append((store, local, store[local]))
                store[local] = value
            yield
        finally:
            for store, local, original in reversed(saved):
                store[local] = original

    def evaluate(self, values: Mapping[str, Tensor] | None = None,
                 wavelength: Tensor | None = None,
                 flux: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Run :meth:`forward` with some parameters replaced by the given tensors.

        Parameters
        ----------
        values : dict of str to torch.Tensor, optional
            Qualified parameter name -> tensor in canonical units (full shape). Gradients
            flow to these tensors; the operator's own parameters are left untouched.
        wavelength, flux : torch.Tensor, optional
            The input spectra (None for a chain that starts with a source).
        """
        with self._substituted(values or {}):
            return self.forward(wavelength, flux)

    def unconstrained(self) -> Unconstrained:
        """An unconstrained reparametrization of the free parameters, for torch optimizers.

        See :class:`Unconstrained`.
        """
        return Unconstrained(self)

    def as_model(self, **kwargs: Any) -> Any:
        """This operator as an `astropy.modeling.Fittable1DModel`.

        See :func:`stellarai.ops.modeling.as_model` (keywords are passed on).
        """
        from .modeling import as_model

        return as_model(self, **kwargs)

    # ------------------------------------------------------------------- chain helpers
    def needs_margin(self) -> bool:
        """True if the last call read neighbouring pixels (convolutions, flux shifts)."""
        return self.is_kernel

    def reach(self, log_step: float | None) -> float:
        """How far (km/s) this operator's output at a pixel depends on other pixels.

        0 for pointwise operators; the kernel half-width for convolutions, ``|rv|`` for a
        Doppler shift along the grid. ``log_step`` is the grid's step (None if the grid is
        not uniform in ln(wavelength)). Used to check that a model grid extends far
        enough beyond the data.
        """
        return 0.0

    def _spectra_forward(self, wavelength: Tensor, flux: Tensor) -> tuple[Tensor, Tensor]:
        """What ``op(spectrum)`` runs on the spectrum's tensors (``forward`` by default)."""
        return self(wavelength, flux)

    def check_coverage(self, ranges: Tensor, labels: Sequence[str]) -> None:
        """Check that templates held by this operator cover wavelength ``ranges``.

        ``ranges`` has shape ``(n_rows, 2)`` (first and last pixel wavelength of each row,
        Angstrom, observed frame); ``labels`` names the rows in messages. Operators without
        a template of limited coverage do nothing.
        """
        for leaf in self._leaves():
            if leaf is not self:
                leaf.check_coverage(ranges, labels)

    @property
    def flux_unit(self) -> u.UnitBase | None:
        """The flux unit this operator produces (sources), or None (it keeps its input's)."""
        return None

    def _output_batch(self) -> OrderBatch | None:
        """The batch whose pixels this operator's output is on (set by Resample)."""
        return None

    # -------------------------------------------------------------------------- algebra
    def __or__(self, other: Operator) -> Pipe:
        return Pipe(self, _as_operator(other))

    def __mul__(self, other: Operator) -> Product:
        return Product(self, _as_operator(other))

    # ----------------------------------------------------------------------- calling
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) + len(kwargs) >= 2:
            return super().__call__(*args, **kwargs)
        if kwargs:
            raise TypeError(f"{self._name()}: call with (wavelength, flux) tensors, a "
                            "spectrum, or nothing (for a chain that starts with a source)")
        return _apply_to_spectra(self, args[0] if args else None)

    @abc.abstractmethod
    def forward(self, wavelength: Tensor | None, flux: Tensor | None
                ) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        """The operator applied to ``(wavelength, flux)`` tensors (None for a source)."""

    def _require_input(self, wavelength: Tensor | None, flux: Tensor | None
                       ) -> tuple[Tensor, Tensor]:
        if wavelength is None or flux is None:
            raise OperatorError(
                f"{self._name()} transforms a spectrum and got none: start the chain with a "
                "source (e.g. stellarai.ops.Template) or pass (wavelength, flux)"
            )
        return wavelength, flux

    # ------------------------------------------------------------------------- repr
    def describe(self) -> str:
        """One-line description: class name and parameter values."""
        parts = []
        for name, spec in self._specs.items():
            text = _describe_value(self.tensors[name].detach().cpu().numpy(), spec.unit)
            parts.append(f"{name}={text}" + (" (fixed)" if spec.fixed else ""))
        return f"{self._name()}({', '.join(parts)})"

    def _expression(self, inside: str = "") -> str:
        return self.describe()

    def __repr__(self) -> str:
        return self.describe()


# ------------------------------------------------------------------ multiplicative


def _as_operator(obj: Any) -> Any:
    """Turn a model that is not an operator but can act as a source (an emulator) into one.

    Objects with a ``source()`` method, such as `~stellarai.emulators.SpectralEmulator`, join
    a chain through the source operator they return; anything else is passed on unchanged
    (and refused by the composite with a clear error).
    """
    if not isinstance(obj, Operator) and callable(getattr(obj, "source", None)):
        return obj.source()
    return obj


class Multiplicative(Operator):
    """An operator that multiplies the flux by a factor that depends on wavelength only.

    Subclasses implement :meth:`factor`. ``forward(wavelength, flux)`` returns
    ``(wavelength, flux * factor(wavelength))``; in a product ``a * m`` the factor is
    evaluated directly on ``a``'s output grid.
    """

    multiplicative = True

    @abc.abstractmethod
    def factor(self, wavelength: Tensor) -> Tensor:  # pragma: no cover - abstract
        """The multiplicative factor at ``wavelength`` (Angstrom), same shape."""

    def forward(self, wavelength: Tensor | None, flux: Tensor | None) -> tuple[Tensor, Tensor]:
        wavelength, flux = self._require_input(wavelength, flux)
        return wavelength, flux * self.factor(wavelength)


# --------------------------------------------------------------------- composites


class _Composite(Operator):
    """Shared machinery of :class:`Pipe` and :class:`Product`."""

    _members: nn.ModuleList

    def _init_members(self, members: list[Operator], attribute: str) -> None:
        for member in members:
            if not isinstance(member, Operator):
                raise OperatorError(
                    f"{self._name()}: cannot compose a {type(member).__name__}; every member "
                    "must be a stellarai.ops operator"
                )
        setattr(self, attribute, nn.ModuleList(members))
        self._build_names()

    def _children(self) -> list[Operator]:
        return list(self._members)

    def _leaves(self) -> list[Operator]:
        seen: dict[int, Operator] = {}
        for child in self._children():
            for leaf in child._leaves():
                seen.setdefault(id(leaf), leaf)
        return list(seen.values())

    def _build_names(self) -> None:
        leaves = self._leaves()
        counts = Counter(name for leaf in leaves for name in leaf._specs)
        named: dict[str, tuple[Operator, str, int]] = {}
        for i, leaf in enumerate(leaves):
            for name in leaf._specs:
                qualified = f"{name}_{i}" if counts[name] > 1 else name
                if qualified in named:
                    raise OperatorError(
                        f"{self._name()}: parameter name {qualified!r} occurs twice after "
                        "renaming; rename a parameter"
                    )
                named[qualified] = (leaf, name, i)
        self._named_cache = named

    def _named(self) -> dict[str, tuple[Operator, str, int]]:
        return self._named_cache

    def check_coverage(self, ranges: Tensor, labels: Sequence[str]) -> None:
        for leaf in self._leaves():
            leaf.check_coverage(ranges, labels)

    @property
    def is_kernel(self) -> bool:  # type: ignore[override]
        return any(child.is_kernel for child in self._children())

    def needs_margin(self) -> bool:
        return any(child.needs_margin() for child in self._children())

    def describe(self) -> str:
        return self._expression()

    def __repr__(self) -> str:
        text = self._expression()
        if len(text) <= 100 or not isinstance(self, Pipe):
            return f"<{self._name()}: {text}>"
        lines = [self._members[0]._expression("|")]
        lines += [f"| {child._expression('|')}" for child in self._members[1:]]
        return f"<{self._name()}:\n  " + "\n  ".join(lines) + "\n>"


class Pipe(_Composite):
    """``a | b | ...``: apply each operator to the output of the previous one.

    Built by the ``|`` operator; nested pipes are flattened. Only the first member may be
    a source. When a :class:`~stellarai.ops.Resample` is a member, the templates held by
    the other members are checked to cover its orders (a telluric template that does not
    reach the data fails here, at composition), and on every call the grid reaching it
    is checked to cover each order plus the reach of the kernels before it.
    """

    def __init__(self, *operators: Operator) -> None:
        super().__init__()
        flat: list[Operator] = []
        for op in operators:
            flat.extend(op._members if isinstance(op, Pipe) else [op])
        self._init_members(flat, "ops")
        for i, op in enumerate(flat[1:], start=1):
            if op.is_source:
                raise OperatorError(
                    f"Pipe: {op._name()} is a source (it makes a spectrum from nothing) and can "
                    f"only start a chain, but it is member {i} of "
                    f"{' | '.join(o._name() for o in flat)}"
                )
        for op in flat:
            batch = op._output_batch() if hasattr(op, "resample") else None
            if batch is not None:
                ranges, labels = row_ranges(batch)
                for other in flat:
                    if other is not op:
                        other.check_coverage(ranges, labels)

    @property
    def _members(self) -> nn.ModuleList:  # type: ignore[override]
        return self.ops

    @property
    def is_source(self) -> bool:  # type: ignore[override]
        return self.ops[0].is_source

    @property
    def flux_unit(self) -> u.UnitBase | None:
        return self.ops[0].flux_unit

    def _output_batch(self) -> OrderBatch | None:
        for op in reversed(self.ops):
            batch = op._output_batch()
            if batch is not None:
                return batch
            if not op.multiplicative:
                return None
        return None

    def reach(self, log_step: float | None) -> float:
        return sum(op.reach(log_step) for op in self.ops)

    def forward(self, wavelength: Tensor | None, flux: Tensor | None) -> tuple[Tensor, Tensor]:
        reach_so_far: list[Operator] = []
        for op in self.ops:
            if hasattr(op, "resample"):
                reach = 0.0
                if any(o.needs_margin() for o in reach_so_far):
                    step = uniform_log_step(wavelength)
                    reach = sum(o.reach(step) for o in reach_so_far)
                wavelength, flux = op.resample(wavelength, flux, reach=reach,
                                               upstream=reach_so_far)
            else:
                wavelength, flux = op(wavelength, flux)
            reach_so_far.append(op)
        return wavelength, flux

    def _expression(self, inside: str = "") -> str:
        text = " | ".join(op._expression("|") for op in self.ops)
        return f"({text})" if inside == "*" else text


class Product(_Composite):
    """``a * b * ...``: multiply fluxes on a common wavelength grid.

    The grid is the output grid of the first member that is not :class:`Multiplicative`
    (or the input grid if all are). Multiplicative members are evaluated on that grid;
    other members run on the same input and their flux is linearly interpolated onto it
    (:func:`~stellarai.spectra.interpolate_linear`), which must lie within their grid:
    otherwise :class:`GridCoverageError`. Fluxes multiply; flux units multiply too.
    """

    def __init__(self, *operators: Operator) -> None:
        super().__init__()
        flat: list[Operator] = []
        for op in operators:
            flat.extend(op._members if isinstance(op, Product) else [op])
        self._init_members(flat, "factors")
        sources = [op.is_source for op in flat if not op.multiplicative]
        if any(sources) and not all(sources):
            raise OperatorError(
                "Product: cannot multiply a source (a spectrum made from nothing) by an "
                "operator that transforms an input spectrum: "
                + " * ".join(op._name() for op in flat)
            )

    @property
    def _members(self) -> nn.ModuleList:  # type: ignore[override]
        return self.factors

    @property
    def is_source(self) -> bool:  # type: ignore[override]
        return any(op.is_source for op in self.factors)

    @property
    def multiplicative(self) -> bool:  # type: ignore[override]
        return all(op.multiplicative for op in self.factors)

    @property
    def flux_unit(self) -> u.UnitBase | None:
        units = [op.flux_unit for op in self.factors if op.flux_unit is not None]
        if not units:
            return None
        result = units[0]
        for unit in units[1:]:
            result = result * unit
        return result

    def _output_batch(self) -> OrderBatch | None:
        for op in self.factors:
            if not op.multiplicative:
                return op._output_batch()
        return None

    def reach(self, log_step: float | None) -> float:
        return max(op.reach(log_step) for op in self.factors)

    def factor(self, wavelength: Tensor) -> Tensor:
        """Product of the factors (only when every member is multiplicative)."""
        result = torch.ones_like(wavelength)
        for op in self.factors:
            result = result * op.factor(wavelength)
        return result

    def forward(self, wavelength: Tensor | None, flux: Tensor | None) -> tuple[Tensor, Tensor]:
        base = next((op for op in self.factors if not op.multiplicative), None)
        if base is None:
            wl, fl = self._require_input(wavelength, flux)
        else:
            wl, fl = base(wavelength, flux)
        for op in self.factors:
            if op is base:
                continue
            if op.multiplicative:
                fl = fl * op.factor(wl)
                continue
            other_wl, other_fl = op(wavelength, flux)
            if other_wl is not wl and not (other_wl.shape == wl.shape
                                           and torch.equal(other_wl, wl)):
                _check_within(wl, other_wl, f"Product: the grid of {op._name()}")
                other_fl = interpolate_linear(wl, other_wl, other_fl)
            fl = fl * other_fl
        return wl, fl

    def _expression(self, inside: str = "") -> str:
        return " * ".join(op._expression("*") for op in self.factors)


def _check_within(wavelength: Tensor, grid: Tensor, what: str) -> None:
    """Raise unless every row of ``wavelength`` lies within the matching row of ``grid``."""
    low, high, grid_low, grid_high = torch.broadcast_tensors(
        wavelength[..., 0].detach(), wavelength[..., -1].detach(), grid[..., 0].detach(),
        grid[..., -1].detach())
    bad = (low < grid_low) | (high > grid_high)
    if bool(bad.any()):
        index = tuple(torch.nonzero(bad)[0].tolist()) if bad.ndim else ()
        where = f" (row {index[0] if len(index) == 1 else index})" if index else ""
        raise GridCoverageError(
            f"{what} ({grid_low[index].item():.3f}-{grid_high[index].item():.3f} Angstrom) "
            f"does not cover the wavelengths it must be interpolated to "
            f"({low[index].item():.3f}-{high[index].item():.3f} Angstrom){where}"
        )


# --------------------------------------------------------------- reparametrization


class Unconstrained(nn.Module):
    r"""Unconstrained tensors for the free parameters of an operator, respecting bounds.

    For a parameter with bounds :math:`(a, b)` the unconstrained value :math:`r` maps to

    - :math:`a + (b - a)\,\sigma(r)` if both bounds are finite (:math:`\sigma` the
      logistic function),
    - :math:`a + \mathrm{softplus}(r)` if only the lower bound is finite,
    - :math:`b - \mathrm{softplus}(r)` if only the upper bound is finite,
    - :math:`r` if neither is.

    A value exactly on a bound starts a relative ``1e-12`` of the interval (or ``1e-12``
    of the unit) inside it. Optimize :meth:`parameters` with any torch optimizer,
    evaluate with ``operator.evaluate(unconstrained.values(), ...)``, and write the result
    back with :meth:`apply`.

    Examples
    --------
    >>> import astropy.units as u
    >>> from stellarai.ops import Rotation
    >>> raw = Rotation(vsini=5 * u.km / u.s).unconstrained()
    >>> sorted(raw.values()), round(raw.values()["vsini"].item(), 9)
    (['vsini'], 5.0)
    """

    _EDGE = 1e-12

    def __init__(self, operator: Operator) -> None:
        super().__init__()
        self._operator = [operator]  # a list: not registered as a submodule
        self.raw = nn.ParameterDict()
        self._bounds: dict[str, tuple[float, float]] = {}
        for name, tensor in operator.free_parameters().items():
            leaf, local, _ = operator._named()[name]
            low, high = leaf._specs[local].bounds
            self._bounds[name] = (low, high)
            self.raw[name] = nn.Parameter(self._inverse(tensor.detach().clone(), low, high))

    @classmethod
    def _inverse(cls, value: Tensor, low: float, high: float) -> Tensor:
        if math.isfinite(low) and math.isfinite(high):
            p = ((value - low) / (high - low)).clamp(cls._EDGE, 1 - cls._EDGE)
            return torch.log(p) - torch.log1p(-p)
        if math.isfinite(low):
            return _softplus_inverse((value - low).clamp_min(cls._EDGE))
        if math.isfinite(high):
            return _softplus_inverse((high - value).clamp_min(cls._EDGE))
        return value

    @staticmethod
    def _forward(raw: Tensor, low: float, high: float) -> Tensor:
        if math.isfinite(low) and math.isfinite(high):
            return low + (high - low) * torch.sigmoid(raw)
        if math.isfinite(low):
            return low + nn.functional.softplus(raw)
        if math.isfinite(high):
            return high - nn.functional.softplus(raw)
        return raw

    def values(self) -> dict[str, Tensor]:
        """Physical values (canonical units) of the free parameters, differentiable."""
        return {name: self._forward(self.raw[name], *bounds)
                for name, bounds in self._bounds.items()}

    def apply(self) -> Operator:
        """Write the current values into the operator (bounds checked) and return it."""
        operator = self._operator[0]
        operator.set(**{k: v.detach() for k, v in self.values().items()})
        return operator


def _softplus_inverse(y: Tensor) -> Tensor:
    return torch.where(y > 20, y, torch.log(torch.expm1(y.clamp_max(20))))


# ------------------------------------------------------------- specutils in and out


def row_ranges(batch: OrderBatch) -> tuple[Tensor, list[str]]:
    """First and last real pixel wavelength of each row, and a label per row.

    Parameters
    ----------
    batch : OrderBatch
        The padded batch of orders.

    Returns
    -------
    ranges : torch.Tensor
        ``(rows, 2)`` first and last real wavelength (Angstrom) of each row.
    labels : list of str
        ``"order m (row i)"`` for each row, for error messages.
    """
    last = (batch.npix - 1).clamp_min(0)
    rows = torch.arange(batch.n_orders)
    ranges = torch.stack([batch.wavelength[:, 0], batch.wavelength[rows, last]], dim=-1)
    labels = [f"order {int(m)} (row {i})" for i, m in enumerate(batch.order.tolist())]
    return ranges, labels


def _input_kind(spectra: Any) -> str:
    if isinstance(spectra, OrderBatch):
        return "batch"
    if isinstance(spectra, Spectrum) and not isinstance(spectra, SpectrumList):
        if spectra.flux.ndim == 1:
            return "spectrum"
    return "list"


def _strip_uncertainty(batch: OrderBatch, unit: u.UnitBase | None) -> OrderBatch:
    records = tuple(replace(r, uncertainty=None, uncertainty_type=None, mask=None,
                            flux_unit=unit if unit is not None else r.flux_unit)
                    for r in batch.records)
    return replace(batch, records=records)


def _spectra_from_tensors(wavelength: Tensor, flux: Tensor, unit: u.UnitBase | None,
                          single: bool) -> Spectrum | SpectrumList:
    wavelength = wavelength.detach().cpu()
    flux = flux.detach().cpu()
    wavelength, flux = torch.broadcast_tensors(wavelength, flux)
    rows_w = wavelength.reshape(-1, wavelength.shape[-1]).numpy()
    rows_f = flux.reshape(-1, flux.shape[-1]).numpy()
    unit = unit if unit is not None else u.dimensionless_unscaled
    spectra = [Spectrum(flux=u.Quantity(f, unit), spectral_axis=u.Quantity(w, u.AA))
               for w, f in zip(rows_w, rows_f, strict=True)]
    if single and len(spectra) == 1:
        return spectra[0]
    return SpectrumList(spectra)


def _package(batch: OrderBatch, wavelength: Tensor, flux: Tensor, kind: str) -> Any:
    flux = flux.detach().to(batch.flux.dtype).expand(batch.n_orders, batch.n_pix)
    wavelength = wavelength.detach().to(batch.wavelength.dtype).expand_as(flux)
    out = replace(batch, wavelength=wavelength.contiguous(), flux=flux.contiguous())
    if kind == "batch":
        return out
    result = out.to_spectrum_list()
    return result[0] if kind == "spectrum" and len(result) == 1 else result


def _apply_to_spectra(operator: Operator, spectra: Any) -> Any:
    """``operator(spectrum)`` and ``operator()``: run on specutils objects, return them."""
    if spectra is None:
        if not operator.is_source:
            raise TypeError(
                f"{operator._name()} transforms a spectrum: call it on a Spectrum, a "
                "SpectrumList or an OrderBatch (or on wavelength, flux tensors)"
            )
        with torch.no_grad():
            wavelength, flux = operator(None, None)
        target = operator._output_batch()
        if target is None:
            return _spectra_from_tensors(wavelength, flux, operator.flux_unit, single=True)
        return _package(_strip_uncertainty(target, operator.flux_unit), wavelength, flux,
                        _target_kind(operator))
    if operator.is_source:
        raise TypeError(
            f"{operator._name()} starts with a source and takes no input spectrum: call it "
            "with no argument to get the model"
        )
    if isinstance(spectra, Tensor):
        raise SpectrumTypeError(
            f"{operator._name()}: pass (wavelength, flux) tensors together, or a spectrum"
        )
    kind = _input_kind(spectra)
    batch = OrderBatch.from_spectra(spectra)
    ranges, labels = row_ranges(batch)
    operator.check_coverage(ranges, labels)
    if hasattr(operator, "resample") and not isinstance(operator, _Composite):
        return operator._resample_spectra(batch, kind)
    with torch.no_grad():
        wavelength, flux = operator._spectra_forward(batch.wavelength, batch.flux)
    target = operator._output_batch()
    if target is not None and target is not batch:
        unit = batch.records[0].flux_unit
        return _package(_strip_uncertainty(target, unit), wavelength, flux,
                        _target_kind(operator))
    return _package(batch, wavelength, flux, kind)


def _target_kind(operator: Operator) -> str:
    for leaf in reversed(operator._leaves()):
        kind = getattr(leaf, "_target_kind", None)
        if kind is not None:
            return kind
    return "list"
