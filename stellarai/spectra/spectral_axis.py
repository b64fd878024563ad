"""Spectral axes: validation and conversion to the canonical vacuum-Angstrom wavelength.

Inside stellarai every wavelength is a vacuum wavelength in Angstrom, in increasing order.
This module converts any spectral axis a user hands over (wavelength in Angstrom, nm or
micron; frequency; wavenumber; energy; in air or vacuum; increasing or decreasing) into that
form, and back, and refuses axes it cannot interpret instead of misreading them.
"""

from __future__ import annotations

from typing import Literal

import astropy.units as u
import numpy as np

from ..errors import SpectrumInputError
from .airvac import air_to_vacuum, vacuum_to_air

__all__ = ["CANONICAL_WAVELENGTH_UNIT", "Medium", "check_medium", "is_wavelength_unit",
           "to_vacuum_angstrom", "from_vacuum_angstrom"]

CANONICAL_WAVELENGTH_UNIT = u.AA
"""Unit of every wavelength inside stellarai (vacuum Angstrom)."""

Medium = Literal["vacuum", "air"]

_SPECTRAL_TYPES = {"length", "frequency", "wavenumber", "energy"}


def check_medium(medium: str) -> Medium:
    """Return ``medium`` if it is ``"vacuum"`` or ``"air"``, else raise a clear error."""
    if medium not in ("vacuum", "air"):
        raise SpectrumInputError(
            f"medium must be 'vacuum' or 'air', got {medium!r}"
        )
    return medium  # type: ignore[return-value]


def _physical_types(unit: u.UnitBase) -> set[str]:
    return set(u.Unit(unit).physical_type)


def is_wavelength_unit(unit: u.UnitBase) -> bool:
    """True for a length unit; False for frequency, wavenumber, energy or anything else.

    An axis in a non-wavelength spectral unit runs the other way in wavelength.
    """
    return "length" in _physical_types(unit)


def _check_spectral_unit(axis: u.Quantity, name: str) -> None:
    unit = getattr(axis, "unit", None)
    if unit is None or not isinstance(axis, u.Quantity):
        raise SpectrumInputError(
            f"{name} has no unit: pass a Quantity such as wavelength * u.AA "
            "(stellarai never guesses the unit of a spectral axis)"
        )
    if not _physical_types(unit) & _SPECTRAL_TYPES:
        raise SpectrumInputError(
            f"{name} must be a wavelength, frequency, wavenumber or energy, got unit "
            f"{unit.to_string() or 'dimensionless'!r} (a pixel or unitless axis cannot be "
            "converted to wavelength)"
        )


def to_vacuum_angstrom(axis: u.Quantity, medium: Medium = "vacuum", *,
                       name: str = "spectral_axis") -> np.ndarray:
    """Convert a spectral axis to vacuum wavelengths in Angstrom (float64, native byte order).

    Parameters
    ----------
    axis : `~astropy.units.Quantity`
        Wavelength (any length unit), frequency, wavenumber or energy.
    medium : {"vacuum", "air"}
        Whether a wavelength axis is measured in vacuum or in standard air. Frequencies,
        wavenumbers and energies do not depend on the medium; they are always converted
        with the vacuum relation.
    name : str
        Name of the argument, used in error messages.

    Returns
    -------
    numpy.ndarray
        Vacuum wavelength in Angstrom, in the order of the input (a frequency axis
        therefore comes back in decreasing order).

    Examples
    --------
    >>> import astropy.units as u
    >>> to_vacuum_angstrom([1.0, 1.5] * u.micron)
    array([10000., 15000.])
    >>> to_vacuum_angstrom([5000.0, 10000.0] / u.cm).round(6)  # wavenumbers run the other way
    array([20000., 10000.])
    """
    medium = check_medium(medium)
    _check_spectral_unit(axis, name)
    unit = axis.unit
    if medium == "air" and is_wavelength_unit(unit):
        axis = air_to_vacuum(axis)
    values = axis.to_value(CANONICAL_WAVELENGTH_UNIT, equivalencies=u.spectral())
    return np.asarray(values, dtype=np.float64)


def from_vacuum_angstrom(wavelength: np.ndarray, unit: u.UnitBase,
                         medium: Medium = "vacuum") -> u.Quantity:
    """Inverse of :func:`to_vacuum_angstrom`: vacuum Angstrom to ``unit`` in ``medium``.

    Parameters
    ----------
    wavelength : numpy.ndarray
        Vacuum wavelength in Angstrom.
    unit : `~astropy.units.UnitBase`
        Target spectral unit (wavelength, frequency, wavenumber or energy).
    medium : {"vacuum", "air"}
        Medium of the returned wavelengths (ignored for non-wavelength units).

    Returns
    -------
    `~astropy.units.Quantity`

    Examples
    --------
    >>> import astropy.units as u
    >>> from_vacuum_angstrom(np.array([10000.0, 15000.0]), u.micron)
    <Quantity [1. , 1.5] micron>
    """
    medium = check_medium(medium)
    axis = u.Quantity(np.asarray(wavelength, dtype=np.float64), CANONICAL_WAVELENGTH_UNIT)
    if medium == "air" and is_wavelength_unit(unit):
        axis = vacuum_to_air(axis)
    return axis.to(unit, equivalencies=u.spectral())
