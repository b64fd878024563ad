r"""The line model: a spectrum as thousands of trainable Voigt lines (blasé).

A :class:`LineModel` holds one line per absorption feature, each with a centre, an area
(``amplitude``, Angstrom), a Gaussian width ``sigma`` and a Lorentzian half width
``gamma``, and makes a spectrum on a wavelength grid:

.. math::

    F(\lambda) = \prod_i \bigl[1 - A_i V(\lambda - \lambda_i; \sigma_i, \gamma_i)\bigr]
    \quad\text{(``flux_model="product"``)}, \qquad
    F(\lambda) = \exp\Bigl[-\sum_i A_i V(\lambda - \lambda_i; \sigma_i, \gamma_i)\Bigr]
    \quad\text{(``"exp"``)},

:math:`V` an area-normalized pseudo-Voigt or exact Voigt profile
(:mod:`stellarai.lines.profiles`). Its trainable parameters, named physical parameters of
a :class:`~stellarai.ops.Operator`, are per-line vectors: ``shift`` (km/s, the line's
centre is :math:`\lambda_i = \lambda_{0,i}(1 + v_i/c)`), ``log_amplitude``,
``log_sigma`` and ``log_gamma`` (natural logarithms of the values in Angstrom). The
values they start from (the clone) are kept as the *reference* toward which
:meth:`LineModel.penalty` pulls them.

Reference: Gully-Santiago, M. & Morley, C. V. 2022, ApJ 941, 200, "An Interpretable
Machine-learning Framework for Modeling High-resolution Spectroscopic Data"
(arXiv:2210.01827).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import astropy.units as u
import numpy as np
import torch
from astropy.table import QTable
from specutils import Spectrum
from torch import Tensor

from ..ops.base import C_KMS, Operator
from ..ops.kernels import uniform_log_grid
from ..ops.template import as_model_grid
from .errors import LineTableError
from .kernel import pseudo_voigt_log_flux
from .profiles import PROFILES, absorption, pseudo_voigt_coefficients, window_half_width
from .sparse import DEFAULT_MEMORY_LIMIT, SparsePlan, plan_lines

__all__ = ["DEFAULT_MAX_WINDOW", "DEFAULT_TOLERANCE", "FLUX_MODELS", "KINDS",
           "MAX_ABSORPTION", "MEAN_SHIFT_SIGMA", "NATIVE_RESOLVING_POWER", "LineModel"]

FLUX_MODELS = ("product", "exp")
"""How line absorptions combine: a product of ``1 - A V`` or ``exp(-sum A V)``."""

KINDS = ("shift", "log_amplitude", "log_sigma", "log_gamma")
"""The per-line parameter kinds of a :class:`LineModel`."""

NATIVE_RESOLVING_POWER = 650_000.0
"""Resolving power of the default grid (uniform in ln wavelength): about 300,000 pixels
over the HPF band, 8,070-12,820 Angstrom, the sampling of the PHOENIX models blasé cloned."""

DEFAULT_TOLERANCE = 1e-4
"""Default absorption below which a line's window ends (per line, from its widths)."""

DEFAULT_MAX_WINDOW = 40.0 * u.AA
"""Default cap on the full width of one line's window."""

MAX_ABSORPTION = 1.0 - 1e-6
"""In the product model one line absorbs at most this fraction of the light (the factor
``1 - A V`` stays positive while an optimizer explores)."""

MEAN_SHIFT_SIGMA = 0.01
"""Prior width (km/s) of the mean line shift in :meth:`LineModel.penalty`."""

_WINDOW_GROWTH = 1.25  # windows are sized for lines this much stronger and wider
_MIN_WINDOW_FWHM = 3.0  # and reach at least this many FWHM from the centre
_PRECISIONS = {"single": torch.float32, "double": torch.float64}
_LOG = {"log_amplitude": "amplitude", "log_sigma": "sigma", "log_gamma": "gamma"}
_DESCRIPTIONS = {
    "shift": "velocity shift of each line's centre",
    "log_amplitude": "ln of each line's area (amplitude, Angstrom)",
    "log_sigma": "ln of each line's Gaussian standard deviation (Angstrom)",
    "log_gamma": "ln of each line's Lorentzian half width (Angstrom)",
}


def _angstrom(value: Any, name: str) -> np.ndarray:
    """``value`` as float64 Angstrom; a Quantity must be a length, numbers are Angstrom."""
    if isinstance(value, u.Quantity):
        try:
            value = value.to_value(u.AA)
        except u.UnitConversionError:
            raise LineTableError(
                f"LineModel: {name} must be a length (convertible to Angstrom), got unit "
                f"{value.unit}") from None
    array = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if array.ndim != 1:
        raise LineTableError(f"LineModel: {name} must be 1-D, got shape {array.shape}")
    return array


def _flux_model_from_meta(meta: Mapping[str, Any]) -> str | None:
    """The flux model a table's metadata states (``flux_model`` key or its description)."""
    if meta.get("flux_model") in FLUX_MODELS:
        return str(meta["flux_model"])
    text = str(meta.get("description", "")).replace(" ", "").lower()
    if "prod_i[1-" in text or "prod[1-" in text:
        return "product"
    if "exp(-sum" in text:
        return "exp"
    return None


class LineModel(Operator):
    r"""A spectrum made of trainable Voigt lines, evaluated sparsely (a source operator).

    Parameters
    ----------
    wavelength, amplitude, sigma, gamma : Quantity or array-like
        Per line: vacuum centre, area, Gaussian standard deviation, Lorentzian half width
        (lengths; plain numbers are Angstrom). Amplitudes and widths must be > 0.
    grid : torch.Tensor or Quantity, optional
        Wavelengths to evaluate on, ``(n,)`` or ``(rows, n)`` (e.g. from
        :func:`~stellarai.ops.model_grid_for`). Default: a grid uniform in
        :math:`\ln\lambda` at :data:`NATIVE_RESOLVING_POWER` spanning the lines.
    profile : {"pseudo_voigt", "voigt"}
        Line profile (see :mod:`stellarai.lines.profiles`).
    flux_model : {"product", "exp"}
        How lines combine (see the module).
    tolerance : float
        Each line is evaluated where it may absorb more than this (its window is sized
        from its widths and amplitude, grown by 1.25 for the changes a fit makes, and at
        least 3 FWHM from the centre).
    max_window : Quantity or float
        Largest full width of one line's window (Angstrom if a number).
    memory_limit : float
        Bytes the windows may take; more is a :class:`~stellarai.lines.LineWindowError`
        that suggests a smaller window.
    precision : {"single", "double"}
        Floating-point precision of the per-pixel line sums (default single: offsets
        from each line's centre are small numbers, and the log-flux sums keep 1e-7
        relative precision); the output flux is float64 like the grid.
    shift : Quantity or array-like, optional
        Initial per-line shifts (km/s), default 0.
    fixed : iterable of str, optional
        Parameter kinds to keep fixed.
    meta : dict, optional
        Carried into :meth:`to_table`.

    Raises
    ------
    LineTableError
        For mismatched lengths, non-positive amplitudes or widths, or non-length units.

    Examples
    --------
    >>> import astropy.units as u
    >>> lines = LineModel([10_830.0, 10_831.0] * u.AA, [0.02, 0.01] * u.AA,
    ...                   [0.03, 0.03] * u.AA, [0.02, 0.02] * u.AA)
    >>> lines
    LineModel(2 lines, pseudo_voigt, product, grid 1 x 80 px)
    >>> spectrum = lines()                      # a specutils Spectrum on the native grid
    >>> round(float(spectrum.flux.min()), 3)
    0.833
    """

    is_source = True

    def __init__(self, wavelength: Any, amplitude: Any, sigma: Any, gamma: Any, *,
                 grid: Any = None, profile: str = "pseudo_voigt",
                 flux_model: str = "product", tolerance: float = DEFAULT_TOLERANCE,
                 max_window: Any = DEFAULT_MAX_WINDOW,
                 memory_limit: float = DEFAULT_MEMORY_LIMIT, precision: str = "single",
                 shift: Any = None,
                 fixed: Iterable[str] | None = None,
                 meta: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if profile not in PROFILES:
            raise LineTableError(f"LineModel: profile must be one of {PROFILES}, got "
                                 f"{profile!r}")
        if precision not in _PRECISIONS:
            raise LineTableError(f"LineModel: precision must be 'single' or 'double', got "
                                 f"{precision!r}")
        if flux_model not in FLUX_MODELS:
            raise LineTableError(f"LineModel: flux_model must be one of {FLUX_MODELS}, got "
                                 f"{flux_model!r}")
        if not (isinstance(tolerance, (int, float)) and 0 < tolerance < 1):
            raise LineTableError(f"LineModel: tolerance must be a number in (0, 1), got "
                                 f"{tolerance!r}")
        columns = {name: _angstrom(value, name) for name, value in
                   (("wavelength", wavelength), ("amplitude", amplitude), ("sigma", sigma),
                    ("gamma", gamma))}
        n = columns["wavelength"].size
        for name, values in columns.items():
            if values.size != n:
                raise LineTableError(f"LineModel: {name} has {values.size} values but "
                                     f"wavelength has {n}; give one value per line")
            if not np.isfinite(values).all() or (name != "wavelength" and (values <= 0).any()):
                raise LineTableError(f"LineModel: {name} must be finite"
                                     + ("" if name == "wavelength" else " and > 0"))
        if n == 0:
            raise LineTableError("LineModel: no lines given")
        self.profile = profile
        self.precision = precision
        self.element_dtype = _PRECISIONS[precision]
        self.flux_model = flux_model
        self.tolerance = float(tolerance)
        self.max_window = float(_angstrom(max_window, "max_window")[0])
        self.memory_limit = float(memory_limit)
        self.meta = dict(meta or {})
        self.register_buffer("rest_wavelength", torch.as_tensor(columns["wavelength"]))
        shift = np.zeros(n) if shift is None else shift
        self._add_parameter("shift", shift, unit=u.km / u.s, shape=(n,),
                            description=_DESCRIPTIONS["shift"])
        for kind, column in _LOG.items():
            self._add_parameter(kind, np.log(columns[column]), unit=u.dimensionless_unscaled,
                                shape=(n,), description=_DESCRIPTIONS[kind])
        self._finish_parameters(fixed)
        for kind in KINDS:
            self.register_buffer(f"reference_{kind}", self.tensors[kind].detach().clone())
        if grid is None:
            pad = 3.0 * float(np.max(columns["sigma"] + columns["gamma"]))
            grid = uniform_log_grid(float(columns["wavelength"].min()) - pad,
                                    float(columns["wavelength"].max()) + pad,
                                    resolving_power=NATIVE_RESOLVING_POWER,
                                    samples_per_resolution=1.0)
        grid = as_model_grid(grid, "LineModel")
        self.register_buffer("grid", grid[None] if grid.ndim == 1 else grid)
        self.plan = self._make_plan()

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_table(cls, table: QTable, **kwargs: Any) -> LineModel:
        """A line model from a table with ``wavelength``, ``amplitude``, ``sigma`` and
        ``gamma`` columns (lengths, with units); an optional ``shift`` column (velocity).

        The flux model is read from the table's metadata (a ``flux_model`` key, or a
        description stating ``prod_i [1 - ...]`` or ``exp(-sum ...)``) unless given.

        Raises
        ------
        LineTableError
            If a column is missing or has no (or a wrong) unit.

        Examples
        --------
        >>> import astropy.units as u
        >>> from astropy.table import QTable
        >>> table = QTable({"wavelength": [9000.0] * u.AA, "amplitude": [0.05] * u.AA,
        ...                 "sigma": [0.04] * u.AA, "gamma": [0.04] * u.AA})
        >>> LineModel.from_table(table).to_table()["amplitude"]
        <Quantity [0.05] Angstrom>
        >>> LineModel.from_table(table[["wavelength", "sigma"]])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        stellarai.lines.errors.LineTableError: ... lacks column(s) ['amplitude', 'gamma']; ...
        """
        needed = ("wavelength", "amplitude", "sigma", "gamma")
        missing = [c for c in needed if c not in table.colnames]
        if missing:
            raise LineTableError(
                f"LineModel.from_table: the table lacks column(s) {missing}; it needs "
                f"{', '.join(needed)} (lengths with units)")
        values = {}
        for name in needed:
            column = table[name]
            unit = getattr(column, "unit", None)
            if unit is None or not u.Unit(unit).is_equivalent(u.AA):
                raise LineTableError(
                    f"LineModel.from_table: column {name!r} must be a length with a unit "
                    f"(e.g. Angstrom), got unit {unit}")
            values[name] = u.Quantity(column, unit)
        if "shift" in table.colnames:
            kwargs.setdefault("shift", u.Quantity(table["shift"]).to(u.km / u.s))
        meta = dict(table.meta)
        stated = _flux_model_from_meta(meta)
        if stated is not None:
            kwargs.setdefault("flux_model", stated)
        kwargs.setdefault("meta", meta)
        return cls(values["wavelength"], values["amplitude"], values["sigma"],
                   values["gamma"], **kwargs)

    @classmethod
    def from_spectrum(cls, template: Any, *, prominence: float = 0.005,
                      **kwargs: Any) -> LineModel:
        """Clone a normalized template spectrum: :func:`~stellarai.lines.clone_spectrum`.

        The result carries a :class:`~stellarai.lines.CloneReport` in ``clone_report``.

        Examples
        --------
        >>> import numpy as np, astropy.units as u
        >>> from specutils import Spectrum
        >>> wl = np.linspace(10_000.0, 10_010.0, 1001)
        >>> flux = (1 - 0.3 * np.exp(-0.5 * ((wl - 10_004.0) / 0.05) ** 2)) * (
        ...     1 - 0.2 * np.exp(-0.5 * ((wl - 10_006.0) / 0.08) ** 2))
        >>> lines = LineModel.from_spectrum(Spectrum(flux=flux * u.one,
        ...                                          spectral_axis=wl * u.AA))
        >>> lines.n_lines, lines.clone_report.residual_rms < 0.005
        (2, True)
        >>> LineModel.from_spectrum(Spectrum(flux=np.ones(50) * u.one,
        ...                                  spectral_axis=wl[:50] * u.AA))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        stellarai.lines.errors.NoLinesError: ... no line with prominence >= 0.005 ...
        """
        from .clone import clone_spectrum

        return clone_spectrum(template, prominence=prominence, **kwargs)

    def fit(self, orders: Any, **kwargs: Any) -> Any:
        """Transfer-learn these lines from observed ``orders``:
        :func:`~stellarai.lines.fit_lines` (returns a :class:`~stellarai.lines.LineFit`)."""
        from .transfer import fit_lines

        return fit_lines(self, orders, **kwargs)

    def _settings(self) -> dict[str, Any]:
        return {"profile": self.profile, "flux_model": self.flux_model,
                "tolerance": self.tolerance, "max_window": self.max_window,
                "memory_limit": self.memory_limit, "precision": self.precision,
                "meta": self.meta}

    def regrid(self, grid: Any, **settings: Any) -> LineModel:
        """A new line model with this one's current values and reference, on ``grid``.

        Keywords override the settings (``profile``, ``tolerance``, ``max_window``...).
        """
        values = self.line_values()
        kwargs = {**self._settings(), **settings}
        fixed = [k for k in KINDS if self._specs[k].fixed]
        new = LineModel(self.rest_wavelength.numpy(), values["amplitude"], values["sigma"],
                        values["gamma"], grid=grid, shift=values["shift"], fixed=fixed,
                        **kwargs)
        for kind in KINDS:
            getattr(new, f"reference_{kind}").copy_(getattr(self, f"reference_{kind}"))
        return new

    def _make_plan(self) -> SparsePlan:
        with torch.no_grad():
            amplitude, sigma, gamma = (torch.exp(self.tensors[k]) for k in _LOG)
            half = window_half_width(amplitude * _WINDOW_GROWTH, sigma * _WINDOW_GROWTH,
                                     gamma * _WINDOW_GROWTH, self.tolerance)
            fwhm = 2.0 * (sigma * math.sqrt(2 * math.log(2)) + gamma)
            half = torch.maximum(half, _MIN_WINDOW_FWHM * fwhm).clamp(max=self.max_window / 2)
            center = self.rest_wavelength * (1 + self.tensors["shift"] / C_KMS)
        plan = plan_lines(self.grid, center.numpy(), half.numpy(),
                          memory_limit=self.memory_limit, what="LineModel")
        return replace(plan, offset=plan.offset.to(self.element_dtype))

    def set_reference(self) -> LineModel:
        """Make the current values the reference the penalty pulls toward; returns self."""
        for kind in KINDS:
            getattr(self, f"reference_{kind}").copy_(self.tensors[kind].detach())
        return self

    # ------------------------------------------------------------------- evaluation
    @property
    def n_lines(self) -> int:
        """Number of lines."""
        return int(self.rest_wavelength.numel())

    def forward(self, wavelength: Tensor | None = None, flux: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        """The model flux on :attr:`grid` (any input is ignored: this is a source)."""
        plan = self.plan
        shift = self.tensors["shift"][plan.line]
        move = self.rest_wavelength[plan.line] * shift / C_KMS
        params = [torch.exp(self.tensors[k][plan.line]) for k in _LOG]
        if self.profile == "pseudo_voigt":
            total = pseudo_voigt_log_flux(*pseudo_voigt_coefficients(*params), move, plan,
                                          product=self.flux_model == "product",
                                          cap=MAX_ABSORPTION)
        else:
            total = self._voigt_log_flux(params, move)
        flux = torch.exp(total[:-1].to(self.grid.dtype))
        return self.grid, flux.view(self.grid.shape)

    def _voigt_log_flux(self, params: list[Tensor], move: Tensor) -> Tensor:
        """The exact-Voigt sum (plain autograd, bucket by bucket)."""
        plan = self.plan
        parts = []
        seg = el = 0
        for width, count in zip(plan.widths, plan.counts, strict=True):
            rows = slice(seg, seg + count)
            x = plan.offset[el:el + width * count].view(count, width) - move[rows, None]
            value = absorption(x, *(p[rows, None].to(x.dtype) for p in params),
                               profile="voigt")
            parts.append(value.reshape(-1))
            seg += count
            el += width * count
        values = torch.cat(parts)
        if self.flux_model == "product":
            values = torch.log1p(-values.clamp(max=MAX_ABSORPTION))
        else:
            values = -values
        total = torch.zeros(plan.n_flat + 1, dtype=values.dtype, device=values.device)
        return total.index_add(0, plan.index, values)

    def spectrum(self) -> Spectrum:
        """The model as a specutils `~specutils.Spectrum` on its grid (first row).

        On the default grid this is the spectrum at native resolution: after a fit, the
        semi-empirical template.
        """
        result = self()
        return result if isinstance(result, Spectrum) else result[0]

    # ------------------------------------------------------------ values and tables
    def line_values(self) -> dict[str, np.ndarray]:
        """Current per-line values: ``wavelength``, ``amplitude``, ``sigma``, ``gamma``
        (Angstrom) and ``shift`` (km/s), as numpy arrays."""
        t = {k: self.tensors[k].detach().cpu().numpy() for k in KINDS}
        rest = self.rest_wavelength.numpy()
        return {"wavelength": rest * (1 + t["shift"] / C_KMS),
                "amplitude": np.exp(t["log_amplitude"]), "sigma": np.exp(t["log_sigma"]),
                "gamma": np.exp(t["log_gamma"]), "shift": t["shift"]}

    def peak_depth(self, reference: bool = False) -> np.ndarray:
        """Each line's own absorption at its centre, ``A V(0)`` (alone, no blends)."""
        source = (lambda k: getattr(self, f"reference_{k}")) if reference else (
            lambda k: self.tensors[k])
        with torch.no_grad():
            a, s, g = (torch.exp(source(k)) for k in _LOG)
            zero = torch.zeros_like(a)
            return absorption(zero, a, s, g, profile=self.profile).numpy()

    def to_table(self) -> QTable:
        """The lines as a `~astropy.table.QTable` (``wavelength``, ``amplitude``,
        ``sigma``, ``gamma`` in Angstrom), readable by :meth:`from_table`.

        The metadata state the flux model (``flux_model`` and a description) and the
        profile.
        """
        values = self.line_values()
        table = QTable({k: values[k] * u.AA for k in ("wavelength", "amplitude", "sigma",
                                                       "gamma")})
        formula = ("prod_i [1 - amplitude_i * V(lambda - wavelength_i; sigma_i, gamma_i)]"
                   if self.flux_model == "product" else
                   "exp(-sum_i amplitude_i * V(lambda - wavelength_i; sigma_i, gamma_i))")
        table.meta.update(self.meta)
        table.meta.update({"flux_model": self.flux_model, "profile": self.profile,
                           "description": f"Line model: flux(lambda) = {formula}, V an "
                                          f"area-normalized {self.profile} profile."})
        return table

    def changes(self) -> QTable:
        """What changed per line versus the reference (the clone).

        Columns: ``wavelength`` (reference centre), ``shift`` (km/s),
        ``amplitude_ratio``, ``depth_ratio`` (own central depth, fitted / reference),
        ``sigma_ratio``, ``gamma_ratio`` and ``moved``, a score of how far the line moved
        (the largest of ``|shift|`` in km/s and ``|ln ratio|`` of area and depth).
        """
        values = self.line_values()
        ref = {k: getattr(self, f"reference_{k}").numpy() for k in KINDS}
        rest = self.rest_wavelength.numpy()
        depth_ratio = self.peak_depth() / self.peak_depth(reference=True)
        amplitude_ratio = values["amplitude"] / np.exp(ref["log_amplitude"])
        shift = values["shift"] - ref["shift"]
        moved = np.maximum.reduce([np.abs(shift), np.abs(np.log(amplitude_ratio)),
                                   np.abs(np.log(depth_ratio))])
        return QTable({
            "wavelength": rest * (1 + ref["shift"] / C_KMS) * u.AA,
            "shift": shift * u.km / u.s,
            "amplitude_ratio": amplitude_ratio,
            "depth_ratio": depth_ratio,
            "sigma_ratio": values["sigma"] / np.exp(ref["log_sigma"]),
            "gamma_ratio": values["gamma"] / np.exp(ref["log_gamma"]),
            "moved": moved,
        })

    def penalty(self, strengths: Mapping[str, float], values: Mapping[str, Tensor] | None = None
                ) -> Tensor:
        r""":math:`\tfrac12\sum_k \lambda_k \sum_i (\theta_{k,i} - \theta^{\rm ref}_{k,i})^2`.

        ``strengths`` maps parameter kinds (:data:`KINDS`) to :math:`\lambda_k` (inverse
        variance of a Gaussian prior centred on the reference, in the kind's canonical
        unit); ``values`` optionally replaces the parameter tensors (by local name).
        With a shift strength, the mean shift of the lines is also held at the
        reference's, to :data:`MEAN_SHIFT_SIGMA`: a common shift of all lines is a radial
        velocity, which the lines must leave to the ``Doppler`` operator.
        """
        total = torch.zeros((), dtype=torch.float64)
        for kind, strength in strengths.items():
            if strength and not self._specs[kind].fixed:
                value = (values or {}).get(kind, self.tensors[kind])
                change = value - getattr(self, f"reference_{kind}")
                total = total + 0.5 * strength * (change**2).sum()
                if kind == "shift":
                    total = total + 0.5 * (change.mean() / MEAN_SHIFT_SIGMA) ** 2
        return total

    def describe(self) -> str:
        rows, n = self.grid.shape
        return (f"LineModel({self.n_lines} lines, {self.profile}, {self.flux_model}, grid "
                f"{rows} x {n} px)")

    def _expression(self, inside: str = "") -> str:
        return self.describe()
