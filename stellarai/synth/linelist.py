r"""Atomic line lists: a validated table with units.

A :class:`LineList` holds one row per transition:

================ ==================== =========== ===========================================
column           unit                 required    meaning
================ ==================== =========== ===========================================
``wavelength``   length (stored in Å) yes         vacuum wavelength
``species``      —                    yes         element and ion stage, ``"Fe 1"`` (neutral),
                                                  ``"Fe 2"`` (singly ionized)
``excitation``   energy (stored in eV) yes        excitation potential of the lower level
``log_gf``       — (dimensionless)    yes         log10 of (statistical weight × oscillator
                                                  strength)
``gamma_rad``    s⁻¹                  no          radiative damping rate
``gamma_stark``  cm³ s⁻¹              no          quadratic Stark rate per electron at 10⁴ K
``gamma_vdw``    cm³ s⁻¹              no          van der Waals rate per H atom at 10⁴ K
================ ==================== =========== ===========================================

Damping rates are full widths (as in VALD); NaN means "not given", and the synthesizer
then uses the classical, constant and Unsöld defaults of :mod:`stellarai.synth.physics`.
Species are written as in VALD (``"Ca 2"``); ``"Ca II"`` is accepted on input. Wavelengths
in air are converted once, on input, with :func:`~stellarai.spectra.air_to_vacuum`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import astropy.units as u
import numpy as np
from astropy.table import QTable, Table

from ..errors import StellarAIError
from ..labels import ELEMENTS
from ..spectra.airvac import air_to_vacuum

__all__ = ["LineList", "LineListError", "parse_species"]

_FORMAT = "stellarai.LineList"
_FORMAT_VERSION = 1
_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6}
_SPECIES_RE = re.compile(r"^\s*([A-Za-z]{1,2})\s*([0-9]+|[IVX]+)\s*$")
_ELEMENT_LOOKUP = {e.lower(): e for e in ELEMENTS}

_REQUIRED: dict[str, u.UnitBase | None] = {
    "wavelength": u.AA,
    "species": None,
    "excitation": u.eV,
    "log_gf": u.dimensionless_unscaled,
}
_OPTIONAL: dict[str, u.UnitBase] = {
    "gamma_rad": u.s**-1,
    "gamma_stark": u.cm**3 / u.s,
    "gamma_vdw": u.cm**3 / u.s,
}
_DESCRIPTIONS = {
    "wavelength": "vacuum wavelength",
    "species": "element and ion stage (1 = neutral)",
    "excitation": "excitation potential of the lower level",
    "log_gf": "log10 of g times the oscillator strength",
    "gamma_rad": "radiative damping rate (full width); NaN = default",
    "gamma_stark": "quadratic Stark rate per electron at 1e4 K; NaN = default",
    "gamma_vdw": "van der Waals rate per H atom at 1e4 K; NaN = default",
}


class LineListError(StellarAIError, ValueError):
    """A line list is unusable: a column, unit, value or species is missing or wrong."""


def parse_species(name: str) -> tuple[str, int]:
    """Split a species name into (element symbol, ion stage); 1 is the neutral atom.

    Accepts ``"Fe 1"``, ``"fe 2"``, ``"Fe II"`` or ``"FeII"``.

    Raises
    ------
    LineListError
        For a molecule, an unknown element or a stage below 1.

    Examples
    --------
    >>> parse_species("Fe 2"), parse_species("ca II"), parse_species("H 1")
    (('Fe', 2), ('Ca', 2), ('H', 1))
    """
    name = str(name)
    match = _SPECIES_RE.match(name)
    element = _ELEMENT_LOOKUP.get(match.group(1).lower()) if match else None
    if match is None or element is None:
        raise LineListError(
            f"species {name!r} is not an atom and ion stage such as 'Fe 1' or 'Ca 2' "
            "(molecules are not supported)"
        )
    stage_text = match.group(2)
    stage = int(stage_text) if stage_text.isdigit() else _ROMAN.get(stage_text, 0)
    if stage < 1:
        raise LineListError(f"species {name!r}: the ion stage must be 1 (neutral) or more")
    return element, stage


def _column_quantity(table: Table, name: str, unit: u.UnitBase) -> u.Quantity:
    column = table[name]
    col_unit = getattr(column, "unit", None)
    if unit == u.dimensionless_unscaled:
        if col_unit not in (None, u.dimensionless_unscaled, u.dex):
            raise LineListError(
                f"column {name!r} must be dimensionless (a plain number), got unit "
                f"{col_unit.to_string()!r}"
            )
        values = np.asarray(getattr(column, "value", column), dtype=np.float64)
        return values * u.dimensionless_unscaled
    if col_unit is None or col_unit == u.dimensionless_unscaled:
        raise LineListError(
            f"column {name!r} has no unit; give it a unit convertible to "
            f"{unit.to_string()!r} (stellarai never guesses units)"
        )
    try:
        values = u.Quantity(column).to(unit, equivalencies=u.spectral())
    except u.UnitConversionError as exc:
        raise LineListError(
            f"column {name!r} has unit {col_unit.to_string()!r}, which cannot be converted "
            f"to {unit.to_string()!r}"
        ) from exc
    return values.astype(np.float64)


def _normalized(table: Table, medium: str) -> QTable:
    """Validate a table and return the canonical QTable (sorted by wavelength)."""
    if not isinstance(table, Table):
        raise LineListError(
            f"a LineList is built from an astropy Table or QTable, got {type(table).__name__}"
        )
    if medium not in ("vacuum", "air"):
        raise LineListError(f"medium must be 'vacuum' or 'air', got {medium!r}")
    missing = [name for name in _REQUIRED if name not in table.colnames]
    if missing:
        raise LineListError(
            f"line list is missing column{'s' if len(missing) > 1 else ''} {missing}; "
            f"required: {list(_REQUIRED)} (optional: {list(_OPTIONAL)})"
        )
    if any(getattr(table[name], "mask", None) is not None and np.any(table[name].mask)
           for name in _REQUIRED):
        raise LineListError("line list has masked (missing) values in required columns")
    columns: dict[str, Any] = {}
    for name, unit in _REQUIRED.items():
        if unit is not None:
            columns[name] = _column_quantity(table, name, unit)
    lam = columns["wavelength"]
    if np.any(~np.isfinite(lam)) or np.any(lam <= 0):
        raise LineListError("column 'wavelength' must hold finite, positive values")
    if medium == "air":
        lam = air_to_vacuum(lam)
    columns["wavelength"] = lam
    for name in ("excitation", "log_gf"):
        if not np.all(np.isfinite(columns[name])):
            raise LineListError(f"column {name!r} must hold finite values")
    if np.any(columns["excitation"] < 0):
        raise LineListError("column 'excitation' must be >= 0 eV")
    species = [f"{el} {stage}" for el, stage in (parse_species(s) for s in table["species"])]
    columns["species"] = np.array(species, dtype=str)
    columns["log_gf"] = columns["log_gf"].value
    n = len(table)
    for name, unit in _OPTIONAL.items():
        if name in table.colnames:
            values = _column_quantity(table, name, unit)
            if np.any(values.value < 0):
                raise LineListError(f"column {name!r} must be >= 0 (NaN means default)")
        else:
            values = np.full(n, np.nan) * unit
        columns[name] = values
    order = np.argsort(columns["wavelength"].value, kind="stable")
    out = QTable({name: columns[name][order] for name in (*_REQUIRED, *_OPTIONAL)})
    for name, text in _DESCRIPTIONS.items():
        out[name].info.description = text
    return out


class LineList:
    """A table of atomic transitions with units, sorted by vacuum wavelength.

    Parameters
    ----------
    table : `~astropy.table.QTable` or `~astropy.table.Table`
        With the columns of the module docstring; units are converted (any length for
        ``wavelength``, any energy or wavenumber for ``excitation``), extra columns are
        dropped.
    medium : {"vacuum", "air"}
        Medium of the input wavelengths; air wavelengths are converted to vacuum.

    Raises
    ------
    LineListError
        For a missing column, a column without a unit (or with a wrong one), a value that
        is not finite, or a species that is not an atom, naming the column.

    Examples
    --------
    >>> import astropy.units as u
    >>> lines = LineList.from_columns(wavelength=[10500.0, 10400.0] * u.AA,
    ...                               species=["Fe 1", "Si 1"],
    ...                               excitation=[2.2, 4.9] * u.eV, log_gf=[-2.0, -0.5])
    >>> lines
    <LineList: 2 lines, 10400-10500 Angstrom (vacuum), species Fe 1, Si 1>
    >>> lines.table["species"][0], lines.wavelength[0]
    (np.str_('Si 1'), <Quantity 10400. Angstrom>)
    """

    def __init__(self, table: Table, *, medium: Literal["vacuum", "air"] = "vacuum") -> None:
        self._table = _normalized(table, medium)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_columns(cls, *, wavelength: u.Quantity, species: Sequence[str],
                     excitation: u.Quantity, log_gf: Any,
                     medium: Literal["vacuum", "air"] = "vacuum", **damping: Any) -> LineList:
        """Build a line list from columns given as keyword arguments.

        ``damping`` may hold ``gamma_rad``, ``gamma_stark`` and ``gamma_vdw`` Quantities.
        """
        unknown = sorted(set(damping) - set(_OPTIONAL))
        if unknown:
            raise LineListError(f"unknown columns {unknown}; optional columns: {list(_OPTIONAL)}")
        data = {"wavelength": wavelength, "species": list(species), "excitation": excitation,
                "log_gf": log_gf, **damping}
        try:
            table = QTable(data)
        except (ValueError, TypeError) as exc:
            raise LineListError(f"columns do not form a table: {exc}") from exc
        return cls(table, medium=medium)

    @classmethod
    def default(cls, wavelength_range: u.Quantity, *, seed: int = 0,
                hydrogen: bool = True, metals: bool = True) -> LineList:
        """The built-in, deterministic line list over ``wavelength_range``.

        Hydrogen lines of the Balmer, Paschen and Brackett series (upper levels up to
        n = 30) at their Rydberg wavelengths, plus seeded *pseudo*-lines of C, N, O, Na, Mg,
        Al, Si, K, Ca, Ti, V, Cr, Mn, Fe and Ni: invented transitions with realistic
        densities, excitation potentials, log gf and damping constants, about 3,000 over
        the HPF band (8100–12800 Å). They are not real lines: use :meth:`read_vald` for
        those. See :mod:`stellarai.synth.default_lines` for the recipe.

        Parameters
        ----------
        wavelength_range : Quantity
            ``(min, max)`` vacuum wavelengths within 3000–30000 Å.
        seed : int
            Seed of the pseudo-lines; the same seed gives the same lines in any range (a
            range is cut from a fixed, seeded list).
        hydrogen, metals : bool
            Include the hydrogen series, the metal pseudo-lines.

        Examples
        --------
        >>> import astropy.units as u
        >>> lines = LineList.default([8100, 12800] * u.AA)
        >>> len(lines), len(lines.select(species="Fe 1")), len(lines.select(species="H"))
        (2970, 1037, 25)
        >>> LineList.default([12800, 12900] * u.AA, metals=False).wavelength  # Paschen beta
        <Quantity [12821.57951828] Angstrom>
        """
        from .default_lines import default_line_table

        lo, hi = _range_angstrom(wavelength_range, "wavelength_range")
        return cls(default_line_table(lo, hi, seed=seed, hydrogen=hydrogen, metals=metals))

    @classmethod
    def read_ecsv(cls, path: str | os.PathLike) -> LineList:
        """Read a line list written by :meth:`write_ecsv` (or any ECSV with the columns).

        A table meta key ``medium: air`` marks air wavelengths, which are converted.
        """
        try:
            table = QTable.read(path, format="ascii.ecsv")
        except (OSError, ValueError) as exc:
            raise LineListError(f"cannot read {os.fspath(path)!r} as an ECSV table: {exc}"
                                ) from exc
        return cls(table, medium=table.meta.get("medium", "vacuum"))

    @classmethod
    def read_vald(cls, path: str | os.PathLike) -> LineList:
        """Read a VALD3 "extract stellar" (or "extract all/element") short-format file.

        Wavelengths are converted from air to vacuum when the column header says
        ``WL_air``; excitation energies in cm⁻¹ are converted to eV; damping constants of
        0 (VALD's "not available") become NaN (the synthesizer's defaults), and positive
        van der Waals values (Anstee–Barklem–O'Mara cross sections) are converted to a
        rate at 10⁴ K. Molecular lines, which the synthesizer cannot handle, are skipped
        with a warning. See :func:`stellarai.synth.vald.read_vald_table`.
        """
        from .vald import read_vald_table

        table, medium = read_vald_table(path)
        return cls(table, medium=medium)

    def write_ecsv(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write the line list as ECSV (vacuum wavelengths, units and descriptions kept).

        Examples
        --------
        >>> import os, tempfile
        >>> import astropy.units as u
        >>> lines = LineList.default([10500, 10520] * u.AA)
        >>> path = os.path.join(tempfile.mkdtemp(), "lines.ecsv")
        >>> lines.write_ecsv(path)
        >>> LineList.read_ecsv(path) == lines
        True
        """
        table = self.table
        table.meta.update({"format": _FORMAT, "version": _FORMAT_VERSION, "medium": "vacuum"})
        table.write(path, format="ascii.ecsv", overwrite=overwrite)

    # ------------------------------------------------------------------ access

    @property
    def table(self) -> QTable:
        """A copy of the line table (QTable with units)."""
        return self._table.copy()

    @property
    def wavelength(self) -> u.Quantity:
        """Vacuum wavelengths (Angstrom)."""
        return self._table["wavelength"].copy()

    @property
    def excitation(self) -> u.Quantity:
        """Excitation potentials of the lower levels (eV)."""
        return self._table["excitation"].copy()

    @property
    def log_gf(self) -> np.ndarray:
        """log10(g f)."""
        return np.array(self._table["log_gf"])

    @property
    def species(self) -> np.ndarray:
        """Species of every line (``"Fe 1"``...)."""
        return np.array(self._table["species"])

    @property
    def element(self) -> np.ndarray:
        """Element symbol of every line."""
        return np.array([s.split()[0] for s in self._table["species"]])

    @property
    def ion_stage(self) -> np.ndarray:
        """Ion stage of every line (1 = neutral)."""
        return np.array([int(s.split()[1]) for s in self._table["species"]], dtype=np.int64)

    @property
    def species_names(self) -> list[str]:
        """The distinct species, sorted."""
        return sorted(set(self._table["species"]))

    def select(self, wavelength_range: u.Quantity | None = None, *,
               species: str | Iterable[str] | None = None) -> LineList:
        """A new line list with the lines in a wavelength range and/or of some species.

        Parameters
        ----------
        wavelength_range : Quantity, optional
            ``(min, max)``, inclusive, vacuum.
        species : str or iterable of str, optional
            Species (``"Fe 2"``) or elements (``"Fe"``: every stage) to keep.

        Examples
        --------
        >>> import astropy.units as u
        >>> lines = LineList.default([10000, 10100] * u.AA)
        >>> iron = lines.select(species="Fe")
        >>> set(iron.species_names) <= {"Fe 1", "Fe 2"}
        True
        >>> len(lines.select([10000, 10050] * u.AA)) < len(lines)
        True
        """
        keep = np.ones(len(self), dtype=bool)
        if wavelength_range is not None:
            lo, hi = _range_angstrom(wavelength_range, "wavelength_range", domain=False)
            lam = self._table["wavelength"].value
            keep &= (lam >= lo) & (lam <= hi)
        if species is not None:
            wanted = [species] if isinstance(species, str) else list(species)
            full, elements = set(), set()
            for item in wanted:
                if _SPECIES_RE.match(str(item)):
                    full.add("{} {}".format(*parse_species(item)))
                elif str(item).lower() in _ELEMENT_LOOKUP:
                    elements.add(_ELEMENT_LOOKUP[str(item).lower()])
                else:
                    raise LineListError(
                        f"species filter {item!r} is neither a species ('Fe 2') nor an "
                        "element symbol ('Fe')"
                    )
            keep &= np.isin(self.species, list(full)) | np.isin(self.element, list(elements))
        return self[keep]

    def __getitem__(self, index: Any) -> LineList:
        new = object.__new__(LineList)
        rows = self._table[index]
        if not isinstance(rows, QTable):
            raise LineListError("index a LineList with a slice, a boolean mask or row indices")
        new._table = rows
        return new

    def __len__(self) -> int:
        return len(self._table)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LineList):
            return NotImplemented
        if len(self) != len(other):
            return False
        for name in self._table.colnames:
            a, b = self._table[name], other._table[name]
            if name == "species":
                if not np.array_equal(np.asarray(a), np.asarray(b)):
                    return False
            elif not np.array_equal(u.Quantity(a).value, u.Quantity(b).to_value(
                    getattr(a, "unit", None) or u.one), equal_nan=True):
                return False
        return True

    __hash__ = None  # mutable-looking container: equality by content, not hashable

    def __repr__(self) -> str:
        if not len(self):
            return "<LineList: 0 lines>"
        lam = self._table["wavelength"].value
        names = self.species_names
        shown = ", ".join(names[:8]) + (f", ... ({len(names)} species)" if len(names) > 8 else "")
        return (f"<LineList: {len(self)} lines, {lam[0]:.0f}-{lam[-1]:.0f} Angstrom (vacuum), "
                f"species {shown}>")


def _range_angstrom(value: Any, name: str, *, domain: bool = True) -> tuple[float, float]:
    """Validate a (min, max) wavelength Quantity and return floats in Angstrom."""
    if not isinstance(value, u.Quantity):
        raise LineListError(
            f"{name} must be a Quantity pair with a length unit, e.g. [8100, 12800] * u.AA, "
            f"got {type(value).__name__}"
        )
    if value.unit.physical_type != "length":
        raise LineListError(
            f"{name} must have a length unit, got {value.unit.to_string() or 'dimensionless'!r}"
        )
    if value.shape != (2,):
        raise LineListError(f"{name} must be (min, max), got shape {value.shape}")
    lo, hi = (float(v) for v in value.to_value(u.AA))
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo >= hi:
        raise LineListError(f"{name} must be finite with min < max, got ({lo:g}, {hi:g}) Angstrom")
    if domain and (lo < 3000.0 or hi > 30000.0):
        raise LineListError(
            f"{name} ({lo:g}, {hi:g}) Angstrom must lie within 3000-30000 Angstrom, the "
            "range of the built-in line list and of the synthesizer's continuum opacities"
        )
    return lo, hi
