"""Reader for VALD3 short-format line lists ("extract stellar", "extract all/element").

A short-format file starts with a summary line and a column header, e.g.::

     8100.00000, 8110.00000, 2, 5023, 1.0 Wavelength region, lines selected, lines processed, Vmicro
                                                  Damping parameters    Lande  Central
    Spec Ion       WL_air(A)  Excit(eV) Vmic log gf* Rad.   Stark   Waals   factor  depth  Reference
    'Fe 1',        8100.1234,  4.1860, 1.0, -2.512, 7.890,-5.890,-7.720, 1.320, 0.123, '  K07 Fe'

then one comma-separated record per line and a footer (model, abundances, references).
The column header gives the medium and units: ``WL_air`` or ``WL_vac``, in ``(A)``,
``(nm)`` or ``(cm^-1)``, and ``Excit(eV)`` or ``Excit(cm^-1)``. "Extract stellar" adds the
``Vmic`` and ``depth`` columns. Damping constants are log10 values (0 = not available);
a positive van der Waals value is an Anstee–Barklem–O'Mara pair σ.α (Barklem, Piskunov &
O'Mara 2000, A&AS 142, 467), turned here into the full width per H atom at 10⁴ K,
:math:`\\Gamma/N_H = 2(4/\\pi)^{\\alpha/2}\\Gamma((4-\\alpha)/2)\\,v_0\\,\\sigma a_0^2
(\\bar v/v_0)^{1-\\alpha}`, :math:`v_0 = 10^4` m/s. The long format is not read (ask VALD
for the short format).
"""

from __future__ import annotations

import csv
import math
import os
import re
import warnings

import astropy.units as u
import numpy as np
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning

from .elements import ELEMENT_DATA
from .linelist import LineListError, parse_species
from .physics import AMU_G, K_ERG

__all__ = ["abo_to_gamma", "read_vald_table"]

_A0_CM = 5.29177210903e-9
_V0 = 1e6  # cm/s
_WL_RE = re.compile(r"WL_(air|vac)\((A|nm|cm\^-1)\)", re.IGNORECASE)
_EXCIT_RE = re.compile(r"Excit\((eV|cm\^-1)\)", re.IGNORECASE)
_WL_UNITS = {"a": u.AA, "nm": u.nm, "cm^-1": u.cm**-1}
_E_UNITS = {"ev": u.eV, "cm^-1": u.cm**-1}


def abo_to_gamma(packed: np.ndarray, mass_amu: np.ndarray, temperature: float = 1e4
                 ) -> np.ndarray:
    """Full width per H atom (cm³ s⁻¹) from VALD's packed ABO value σ.α.

    Examples
    --------
    >>> f"{float(abo_to_gamma(np.array(241.232), np.array(55.845))):.2e}"
    '1.78e-08'
    """
    packed = np.asarray(packed, dtype=np.float64)
    sigma = np.floor(packed) * _A0_CM**2
    alpha = packed - np.floor(packed)
    mass = np.asarray(mass_amu, dtype=np.float64)
    reduced = mass * 1.008 / (mass + 1.008) * AMU_G
    vbar = np.sqrt(8.0 * K_ERG * temperature / (math.pi * reduced))
    gamma_fn = np.vectorize(math.gamma)((4.0 - alpha) / 2.0)
    return 2.0 * (4.0 / math.pi) ** (alpha / 2.0) * gamma_fn * _V0 * sigma * (
        vbar / _V0) ** (1.0 - alpha)


def _header(lines: list[str], source: str) -> tuple[int, list[str]]:
    """Index of the column-header line and its tokens."""
    for i, line in enumerate(lines[:6]):
        if "WL_" in line:
            if "E_low" in line or "J lo" in line:
                raise LineListError(
                    f"{source} is a VALD long-format file; request the short format "
                    "(extraction format: short) from VALD"
                )
            return i, line.split()
    raise LineListError(
        f"{source} is not a VALD short-format line list: no column header with 'WL_air' or "
        "'WL_vac' in its first lines"
    )


def read_vald_table(path: str | os.PathLike) -> tuple[QTable, str]:
    """Parse a VALD3 short-format file into a raw line table and its wavelength medium.

    Returns
    -------
    table : `~astropy.table.QTable`
        Columns ``wavelength`` (in the file's medium), ``species``, ``excitation``,
        ``log_gf``, ``gamma_rad``, ``gamma_stark``, ``gamma_vdw`` (NaN where VALD gives 0).
    medium : {"air", "vacuum"}
        From the column header (``WL_air`` or ``WL_vac``).

    Raises
    ------
    LineListError
        If the file is not a VALD short-format list, or a record cannot be read (with its
        line number).
    """
    source = os.fspath(path)
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise LineListError(f"cannot read VALD file {source!r}: {exc}") from exc
    start, tokens = _header(lines, source)
    header = " ".join(tokens)
    wl_match, ex_match = _WL_RE.search(header), _EXCIT_RE.search(header)
    if wl_match is None or ex_match is None:
        raise LineListError(
            f"{source}: cannot read the wavelength or excitation unit from the column header "
            f"{header!r} (expected e.g. 'WL_air(A)' and 'Excit(eV)')"
        )
    wl_unit = _WL_UNITS[wl_match.group(2).lower()]
    # wavenumbers are vacuum quantities whatever the header says
    medium = "air" if wl_match.group(1).lower() == "air" and wl_unit != u.cm**-1 else "vacuum"
    ex_unit = _E_UNITS[ex_match.group(1).lower()]
    has_vmic = "Vmic" in tokens
    n_expected = None
    summary = lines[0].split(",") if start > 0 else []
    if len(summary) >= 3 and summary[2].strip().isdigit():
        n_expected = int(summary[2])

    records: list[tuple[str, float, float, float, float, float, float]] = []
    skipped: dict[str, int] = {}
    for number, row in enumerate(csv.reader(lines[start + 1:], quotechar="'",
                                            skipinitialspace=True), start=start + 2):
        if len(row) < 8 or not row[0] or not _is_float(row[1]):
            break  # footer: model name, abundances, references
        offset = 1 if has_vmic else 0
        try:
            wl, chi = float(row[1]), float(row[2])
            log_gf = float(row[3 + offset])
            rad, stark, waals = (float(row[k + offset]) for k in (4, 5, 6))
        except (ValueError, IndexError) as exc:
            raise LineListError(f"{source}, line {number}: cannot read record {row!r}") from exc
        species = row[0].strip()
        try:
            parse_species(species)
        except LineListError:
            skipped[species] = skipped.get(species, 0) + 1
            continue
        records.append((species, wl, chi, log_gf, rad, stark, waals))
    n_read = len(records) + sum(skipped.values())
    if n_expected is not None and n_read != n_expected:
        raise LineListError(
            f"{source}: the header announces {n_expected} lines but {n_read} records were "
            "read; the file may be truncated"
        )
    if skipped:
        listed = ", ".join(f"{k} ({v})" for k, v in sorted(skipped.items()))
        warnings.warn(f"{source}: skipped {sum(skipped.values())} lines of species that are "
                      f"not atoms or atomic ions: {listed}", AstropyUserWarning, stacklevel=3)
    if not records:
        raise LineListError(f"{source}: no atomic lines found")
    species, wl, chi, log_gf, rad, stark, waals = (np.array(c) for c in zip(*records,
                                                                              strict=True))
    masses = np.array([ELEMENT_DATA[e].mass if e in ELEMENT_DATA else 50.0
                       for e, _ in (parse_species(s) for s in species)])
    wavelength = (wl * wl_unit).to(u.AA, equivalencies=u.spectral())
    gamma_vdw = np.where(waals < 0, 10.0**waals, np.nan)
    gamma_vdw = np.where(waals > 0, abo_to_gamma(np.where(waals > 0, waals, 0.0), masses),
                         gamma_vdw)
    table = QTable({
        "wavelength": wavelength,
        "species": species.astype(str),
        "excitation": (chi * ex_unit).to(u.eV, equivalencies=u.spectral()),
        "log_gf": log_gf.astype(np.float64),
        "gamma_rad": np.where(rad != 0, 10.0**rad, np.nan) / u.s,
        "gamma_stark": np.where(stark != 0, 10.0**stark, np.nan) * u.cm**3 / u.s,
        "gamma_vdw": gamma_vdw * u.cm**3 / u.s,
    })
    return table, medium


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
