"""Fixed spectra inside a chain: a star template as a source, tabulated factors.

- :class:`Template` holds a spectrum (a synthetic star, an observed template) and starts a
  chain: it produces ``(wavelength, flux)`` from nothing, optionally on a model grid.
- :class:`TabulatedFactor` is the base of multiplicative operators read from a table
  (telluric transmission, blaze): the table is interpolated onto any grid and knows
  which wavelengths it really covers.
- :func:`read_muler_template` reads the CSV templates that muler ships in
  ``muler/templates``.
"""

from __future__ import annotations

import csv
import functools
import importlib.resources
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import astropy.units as u
import numpy as np
import torch
from torch import Tensor

from ..spectra.orders import OrderBatch
from ..spectra.resample import interpolate_linear, rebin_flux_conserving
from ..spectra.spectral_axis import Medium
from .base import GridCoverageError, Multiplicative, Operator, OperatorError, _check_within

__all__ = ["TabulatedFactor", "Template", "read_muler_template"]

_T = TypeVar("_T")

_GAP_FACTOR = 5.0
"""A step in ln(wavelength) this many times the median step separates two covered segments."""


@functools.lru_cache(maxsize=8)
def _read_csv(filename: str) -> tuple[tuple[str, ...], np.ndarray]:
    resource = importlib.resources.files("muler.templates").joinpath(filename)
    with resource.open("r", encoding="ascii") as handle:
        header = tuple(next(csv.reader(handle)))
        data = np.loadtxt(handle, delimiter=",", dtype=np.float64, ndmin=2)
    data.setflags(write=False)
    return header, data


def read_muler_template(filename: str, columns: Sequence[str]) -> tuple[np.ndarray, ...]:
    """Columns of a CSV template shipped in muler's ``muler/templates`` folder.

    Parameters
    ----------
    filename : str
        File name inside the installed ``muler.templates`` package, e.g.
        ``"telfit_HPFtemplate_temp286_hum050.csv"``.
    columns : sequence of str
        Header names of the columns to return.

    Returns
    -------
    tuple of numpy.ndarray
        One read-only float64 array per requested column (files are read once per
        process).

    Raises
    ------
    OperatorError
        If muler is not installed, the file is missing, or a column is absent.

    Examples
    --------
    >>> wavelength, transmission = read_muler_template(
    ...     "telfit_HPFtemplate_temp286_hum050.csv", ["wavelength_A", "transmission"])
    >>> wavelength.shape, round(float(wavelength[0]), 3)
    ((57344,), 8079.036)
    """
    try:
        header, data = _read_csv(filename)
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise OperatorError(
            f"cannot read muler's template {filename!r}: {exc} (is muler installed?)"
        ) from exc
    missing = [c for c in columns if c not in header]
    if missing:
        raise OperatorError(
            f"muler's template {filename!r} has no column(s) {missing}; it has {list(header)}"
        )
    return tuple(data[:, header.index(c)] for c in columns)


def muler_entry(table: Mapping[str, _T], instrument: str, where: str, hint: str = "") -> _T:
    """The entry of ``table`` for ``instrument`` (any case), or an error listing the keys."""
    key = str(instrument).lower()
    if key not in table:
        raise OperatorError(
            f"{where}: no template for {instrument!r}; muler ships {sorted(table)}{hint}"
        )
    return table[key]


def as_model_grid(grid: Any, where: str) -> Tensor:
    """A model grid as a float64 tensor in Angstrom (Quantities converted).

    Parameters
    ----------
    grid : Quantity, torch.Tensor or array-like
        Wavelengths, shape ``(n,)`` or ``(rows, n)``, strictly increasing along the last
        axis; plain numbers are Angstrom.
    where : str
        The caller, named in error messages.

    Returns
    -------
    torch.Tensor
        The grid as float64 Angstrom.

    Raises
    ------
    OperatorError
        If the grid is not a wavelength, has the wrong shape, or is not increasing.
    """
    if isinstance(grid, u.Quantity):
        try:
            grid = grid.to_value(u.AA, equivalencies=u.spectral())
        except u.UnitConversionError:
            raise OperatorError(
                f"{where}: grid must be a wavelength, got unit {grid.unit}") from None
    grid = torch.as_tensor(np.asarray(grid) if not isinstance(grid, Tensor) else grid)
    if not grid.is_floating_point() or grid.ndim not in (1, 2) or grid.shape[-1] < 2:
        raise OperatorError(
            f"{where}: grid must be a floating-point tensor of shape (n,) or (rows, n) with "
            f"n >= 2 (Angstrom), got {tuple(grid.shape)} {grid.dtype}"
        )
    grid = grid.to(torch.float64)
    if not bool((torch.diff(grid, dim=-1) > 0).all()):
        raise OperatorError(f"{where}: grid must be strictly increasing along its last axis")
    return grid


class Template(Operator):
    """A fixed spectrum that starts a chain (a source).

    Parameters
    ----------
    spectrum : Spectrum, SpectrumList, OrderBatch or tuple
        The template: anything :meth:`stellarai.spectra.OrderBatch.from_spectra` reads
        (a ``(wavelength, flux)`` tuple of Quantities included), or a
        ``(wavelength, flux)`` tuple of tensors in vacuum Angstrom.
    grid : torch.Tensor or Quantity, optional
        Model grid to put the template on, shape ``(n,)`` or ``(rows, n)`` (Angstrom), for
        example from :func:`~stellarai.ops.model_grid_for`. The template must cover every
        row. Without a grid the template is used on its own pixels.
    medium : {"vacuum", "air"}
        Medium of the template's wavelengths (converted to vacuum).
    method : {"flux_conserving", "linear"}
        How the template goes onto ``grid``: flux-conserving rebinning (right for a
        template sampled more finely than the grid) or linear interpolation.

    Raises
    ------
    GridCoverageError
        If the template does not cover a row of ``grid``.
    OperatorError
        For masked or non-finite template pixels, or an unknown ``method``.

    Examples
    --------
    >>> import numpy as np, astropy.units as u, torch
    >>> from specutils import Spectrum
    >>> wl = np.linspace(10_000, 10_010, 2001)
    >>> star = Spectrum(flux=(1 - 0.5 * np.exp(-0.5 * ((wl - 10_005) / 0.05) ** 2))
    ...                 * u.dimensionless_unscaled, spectral_axis=wl * u.AA)
    >>> source = Template(star, grid=torch.linspace(10_002, 10_008, 500, dtype=torch.float64))
    >>> source
    Template(<1 x 500 px, 10002.000-10008.000 Angstrom>)
    >>> wavelength, flux = source(None, None)
    >>> flux.shape, round(flux.min().item(), 2)
    (torch.Size([1, 500]), 0.5)
    """

    is_source = True

    def __init__(self, spectrum: Any, *, grid: Any = None, medium: Medium = "vacuum",
                 method: str = "flux_conserving") -> None:
        super().__init__()
        if method not in ("flux_conserving", "linear"):
            raise OperatorError(
                f"Template: method must be 'flux_conserving' or 'linear', got {method!r}"
            )
        wavelength, flux, unit = self._read(spectrum, medium)
        if grid is not None:
            grid = as_model_grid(grid, "Template")
            _check_within(grid, wavelength, "Template: the template")
            if method == "linear":
                flux = interpolate_linear(grid, wavelength, flux)
            else:
                flux = rebin_flux_conserving(grid, wavelength, flux).flux
            wavelength = grid.expand_as(flux).contiguous()
        self._unit = unit
        self.register_buffer("wavelength", wavelength.contiguous())
        self.register_buffer("flux", flux.contiguous())

    @staticmethod
    def _read(spectrum: Any, medium: Medium) -> tuple[Tensor, Tensor, u.UnitBase]:
        if (isinstance(spectrum, tuple) and len(spectrum) == 2
                and all(isinstance(t, Tensor) for t in spectrum)):
            wavelength, flux = (t.to(torch.float64) for t in spectrum)
            wavelength, flux = torch.broadcast_tensors(wavelength, flux)
            if wavelength.ndim == 1:
                wavelength, flux = wavelength[None], flux[None]
            return wavelength, flux, u.dimensionless_unscaled
        batch = OrderBatch.from_spectra(spectrum, medium=medium)
        if any(bool(batch.mask[i, :n].any()) for i, n in enumerate(batch.npix.tolist())):
            raise OperatorError(
                "Template: the template has masked or non-finite pixels; fill or cut them "
                "before using it as a template"
            )
        units = {r.flux_unit for r in batch.records}
        if len(units) != 1:
            raise OperatorError(
                f"Template: every row of the template needs the same flux unit, got {units}"
            )
        if bool((batch.npix != batch.n_pix).any()):
            raise OperatorError(
                "Template: the template's rows have different lengths; give rows of equal "
                "length or a grid"
            )
        return batch.wavelength, batch.flux, units.pop()

    @property
    def flux_unit(self) -> u.UnitBase:
        """Flux unit of the template."""
        return self._unit

    def forward(self, wavelength: Tensor | None = None, flux: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        """Return the template ``(wavelength, flux)``; any input is ignored."""
        return self.wavelength, self.flux

    def describe(self) -> str:
        rows, n = self.flux.shape[0], self.flux.shape[-1]
        return (f"Template(<{rows} x {n} px, {self.wavelength.min().item():.3f}-"
                f"{self.wavelength.max().item():.3f} Angstrom>)")


class TabulatedFactor(Multiplicative):
    """Base of multiplicative operators given as a table of values against wavelength.

    The table (vacuum Angstrom, strictly increasing) may consist of separate segments,
    such as the échelle orders of muler's HPF templates: a step in
    :math:`\\ln\\lambda` more than 5 times the median step separates two segments.
    :meth:`lookup` interpolates linearly, across gaps too, and continues the first and
    last values beyond the ends; :meth:`check_coverage` (run when the operator meets data,
    see :class:`~stellarai.ops.Pipe`) demands that every data order lie within one
    segment, to one table pixel.

    Parameters
    ----------
    wavelength, values : array-like
        The table, 1-D, same length, finite.
    label : str
        What the table is, for messages (``"transmission template"``).
    """

    def __init__(self, wavelength: Any, values: Any, *, label: str = "template") -> None:
        super().__init__()
        wl = torch.tensor(np.asarray(wavelength, dtype=np.float64))
        val = torch.tensor(np.asarray(values, dtype=np.float64))
        name = self._name()
        if wl.ndim != 1 or wl.shape != val.shape or wl.numel() < 2:
            raise OperatorError(
                f"{name}: the {label} must be two 1-D arrays of equal length (>= 2), got "
                f"shapes {tuple(wl.shape)} and {tuple(val.shape)}"
            )
        if not bool(torch.isfinite(wl).all() & torch.isfinite(val).all()):
            raise OperatorError(f"{name}: the {label} has non-finite values")
        if not bool((torch.diff(wl) > 0).all()):
            raise OperatorError(f"{name}: the {label}'s wavelengths must be strictly increasing")
        self._label = label
        self.register_buffer("table_wavelength", wl)
        self.register_buffer("table_values", val)
        steps = np.diff(np.log(wl.numpy()))
        breaks = np.flatnonzero(steps > _GAP_FACTOR * np.median(steps))
        starts = np.concatenate([[0], breaks + 1])
        stops = np.concatenate([breaks, [wl.numel() - 1]])
        self._segments = [(float(wl[a]), float(wl[b]),
                           float(wl[min(a + 1, b)] - wl[a]), float(wl[b] - wl[max(b - 1, a)]))
                          for a, b in zip(starts, stops, strict=True)]

    @property
    def segments(self) -> list[tuple[float, float]]:
        """``(first, last)`` wavelength (Angstrom) of each covered segment of the table."""
        return [(a, b) for a, b, _, _ in self._segments]

    def _shift(self) -> Tensor | None:
        """Doppler factor applied to the table (None: not shifted)."""
        return None

    def lookup(self, wavelength: Tensor) -> Tensor:
        """Table values at ``wavelength`` (shifted tables: at ``wavelength / factor``).

        On a fixed grid (a model grid in a chain: the same tensor, unmodified, no
        gradient) and an unchanged, fixed shift, the last result is reused.
        """
        shift = self._shift()
        constant = not wavelength.requires_grad and (shift is None or not shift.requires_grad)
        key = None
        if constant:
            key = (wavelength._version, tuple(wavelength.shape),
                   None if shift is None else shift.detach().cpu().numpy().tobytes())
            cached = getattr(self, "_lookup_cache", None)
            if cached is not None and cached[0]() is wavelength and cached[1] == key:
                return cached[2]
        query = wavelength if shift is None else wavelength / shift
        query = query.clamp(min=self.table_wavelength[0], max=self.table_wavelength[-1])
        values = interpolate_linear(query, self.table_wavelength, self.table_values)
        if constant:
            self._lookup_cache = (weakref.ref(wavelength), key, values)
        return values

    def check_coverage(self, ranges: Tensor, labels: Sequence[str]) -> None:
        shift = self._shift()
        factor = 1.0 if shift is None else float(shift.detach().max())
        low_factor = 1.0 if shift is None else float(shift.detach().min())
        for (lo, hi), label in zip(ranges.tolist(), labels, strict=True):
            covered = False
            nearest = None
            for a, b, step_a, step_b in self._segments:
                a, b = a * factor, b * low_factor
                if lo >= a - step_a and hi <= b + step_b:
                    covered = True
                    break
                overlap = min(hi, b) - max(lo, a)
                if nearest is None or overlap > nearest[0]:
                    nearest = (overlap, a, b)
            if not covered:
                _, a, b = nearest if nearest is not None else (0, 0.0, 0.0)
                if a > hi or b < lo:
                    missing = f"{lo:.3f}-{hi:.3f}"
                else:
                    parts = ([f"{lo:.3f}-{a:.3f}"] if lo < a else []) + \
                            ([f"{b:.3f}-{hi:.3f}"] if hi > b else [])
                    missing = " and ".join(parts)
                raise GridCoverageError(
                    f"{self._name()}: the {self._label} does not cover {label}, "
                    f"{lo:.3f}-{hi:.3f} Angstrom (nearest covered segment "
                    f"{a:.3f}-{b:.3f} Angstrom; missing {missing} Angstrom). Use a "
                    f"{self._label} that covers the data, or trim the order"
                )

    def describe(self) -> str:
        base = super().describe()
        lo, hi = float(self.table_wavelength[0]), float(self.table_wavelength[-1])
        inner = base[base.index("(") + 1:-1]
        table = f"<{self.table_wavelength.numel()} px, {lo:.1f}-{hi:.1f} Angstrom>"
        return f"{self._name()}({table}{', ' + inner if inner else ''})"
