r"""Explicit conversion between vacuum and standard-air wavelengths.

Inside stellarai every wavelength is a vacuum wavelength; spectra and line lists measured
in air are converted once, at the boundary, with the two functions of this module:
:func:`vacuum_to_air` and :func:`air_to_vacuum`.

The public functions take `~astropy.units.Quantity` wavelengths only (any length unit) and
return the same unit; they refuse unitless numbers, because an air/vacuum shift of
:math:`\sim 3\times10^{-4}` of the wavelength is exactly the size of error a wrong unit
guess would hide. Frequencies, wavenumbers and energies are refused as well: they do not
depend on the medium, so there is nothing to convert (turn them into a vacuum wavelength
with ``q.to(u.AA, equivalencies=u.spectral())`` instead). The private helpers
``_vacuum_to_air_angstrom`` and ``_air_to_vacuum_angstrom`` do the same arithmetic on bare
numpy arrays or torch tensors in Angstrom, for code inside the package.
"""

from __future__ import annotations

from typing import Literal, TypeVar

import astropy.units as u
import numpy as np
import torch

from ..errors import SpectrumInputError

__all__ = [
    "IAU_AIR_VACUUM_LIMIT",
    "air_refractive_index",
    "air_to_vacuum",
    "vacuum_to_air",
]

IAU_AIR_VACUUM_LIMIT = 2000.0 * u.AA
"""Below this wavelength the IAU convention quotes vacuum wavelengths: nothing is converted."""

_LIMIT_AA = 2000.0
_RTOL = 1e-12  # relative convergence of the fixed-point inversion
_MAX_ITER = 20  # each step gains ~5 orders of magnitude; 3 steps suffice above 2000 Å
_TORCH_ITER = 4  # fixed, differentiable number of steps for tensors

Below2000 = Literal["keep", "raise"]

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def _n_minus_1(vacuum_aa: ArrayT) -> ArrayT:
    """Refractivity n − 1 of standard air at vacuum wavelength ``vacuum_aa`` (Angstrom)."""
    sigma2 = (1e4 / vacuum_aa) ** 2  # vacuum wavenumber squared, µm⁻²
    return 1e-8 * (8342.13 + 2406030.0 / (130.0 - sigma2) + 15997.0 / (38.9 - sigma2))


def _where(condition: ArrayT, a: ArrayT, b: ArrayT) -> ArrayT:
    if isinstance(condition, torch.Tensor):
        return torch.where(condition, a, b)
    return np.where(condition, a, b)


def _vacuum_to_air_angstrom(vacuum_aa: ArrayT) -> ArrayT:
    """Vacuum → air on bare Angstrom values (numpy float64 or torch, dtype kept, differentiable).

    Values below 2000 Å are returned unchanged (IAU convention). No validation: callers
    pass finite, positive wavelengths.
    """
    above = vacuum_aa >= _LIMIT_AA
    # evaluate the formula only where it is valid, so the poles at 1603 Å and 877 Å never
    # produce inf/nan (which would poison gradients through torch.where)
    safe = _where(above, vacuum_aa, vacuum_aa * 0.0 + _LIMIT_AA)
    return _where(above, safe / (1.0 + _n_minus_1(safe)), vacuum_aa)


def _air_to_vacuum_angstrom(air_aa: ArrayT) -> ArrayT:
    """Air → vacuum on bare Angstrom values, by fixed-point iteration of λ_vac = λ_air·n(λ_vac).

    numpy input iterates until the relative change is below 1e-12; torch input takes a
    fixed number of steps (enough for < 1e-15 relative) so autograd can follow them. Values
    below 2000 Å are returned unchanged (IAU convention).
    """
    above = air_aa >= _LIMIT_AA
    safe = _where(above, air_aa, air_aa * 0.0 + _LIMIT_AA)
    vacuum = safe * (1.0 + _n_minus_1(safe))
    if isinstance(air_aa, torch.Tensor):
        for _ in range(_TORCH_ITER):
            vacuum = safe * (1.0 + _n_minus_1(vacuum))
    else:
        for _ in range(_MAX_ITER):
            new = safe * (1.0 + _n_minus_1(vacuum))
            converged = np.all(np.abs(new - vacuum) <= _RTOL * np.abs(new))
            vacuum = new
            if converged:
                break
        else:  # pragma: no cover - the iteration contracts by ~1e-4 per step above 2000 Å
            raise RuntimeError("air_to_vacuum: fixed-point iteration did not converge")
    return _where(above, vacuum, air_aa)


def _as_angstrom(wavelength: u.Quantity, name: str) -> tuple[np.ndarray, u.UnitBase]:
    """Validate a wavelength Quantity and return (float64 Angstrom values, original unit)."""
    if not isinstance(wavelength, u.Quantity):
        raise SpectrumInputError(
            f"{name} must be an astropy Quantity with a length unit (e.g. 6562.8 * u.AA), got "
            f"{type(wavelength).__name__}: stellarai never guesses the unit of a wavelength"
        )
    unit = wavelength.unit
    if unit is None or unit.physical_type != "length":
        kind = "dimensionless" if unit.physical_type == "dimensionless" else unit.physical_type
        raise SpectrumInputError(
            f"{name} must be a wavelength (a length unit such as AA, nm or micron), got unit "
            f"{unit.to_string() or 'dimensionless'!r} ({kind}); frequencies, wavenumbers and "
            "energies are the same in air and vacuum, so convert them to a vacuum wavelength "
            "with .to(u.AA, equivalencies=u.spectral()) instead of converting the medium"
        )
    values = np.asarray(wavelength.to_value(u.AA), dtype=np.float64)
    finite = np.isfinite(values)
    if not np.all(finite):
        bad = values[~finite].flat[0]
        raise SpectrumInputError(
            f"{name} must be finite, got {bad} at index {_first_index(~finite)}"
        )
    if np.any(values <= 0):
        bad_mask = values <= 0
        raise SpectrumInputError(
            f"{name} must be positive, got {values[bad_mask].flat[0]:g} Angstrom at index "
            f"{_first_index(bad_mask)}"
        )
    return values, unit


def _first_index(mask: np.ndarray) -> int | tuple[int, ...]:
    if mask.ndim == 0:
        return 0
    idx = np.unravel_index(int(np.argmax(mask)), mask.shape)
    return int(idx[0]) if len(idx) == 1 else tuple(int(i) for i in idx)


def _check_below_2000(values: np.ndarray, below_2000: str, name: str) -> None:
    if below_2000 not in ("keep", "raise"):
        raise SpectrumInputError(
            f"below_2000 must be 'keep' or 'raise', got {below_2000!r}"
        )
    if below_2000 == "raise" and np.any(values < _LIMIT_AA):
        low = float(np.min(values))
        raise SpectrumInputError(
            f"{name} reaches {low:.6g} Angstrom, below the 2000 Angstrom limit of the "
            "air/vacuum formula (by IAU convention wavelengths below 2000 Angstrom are "
            "always vacuum wavelengths); pass below_2000='keep' to leave them unchanged"
        )


def air_refractive_index(wavelength: u.Quantity) -> np.ndarray | np.float64:
    r"""Refractive index of standard air at a given *vacuum* wavelength.

    Parameters
    ----------
    wavelength : `~astropy.units.Quantity`
        Vacuum wavelength, any length unit, ≥ 2000 Å (the formula has poles near 1603 Å
        and 877 Å and is not defined below 2000 Å).

    Returns
    -------
    numpy.ndarray or numpy.float64
        :math:`n` (dimensionless, float64), same shape as ``wavelength``.

    Raises
    ------
    SpectrumInputError
        If ``wavelength`` is not a length Quantity, not finite, not positive, or below
        2000 Å.

    Notes
    -----
    See :func:`vacuum_to_air` for the formula and references.

    Examples
    --------
    >>> import astropy.units as u
    >>> round(float(air_refractive_index(6564.614 * u.AA)) - 1, 10)
    0.0002762375
    """
    values, _ = _as_angstrom(wavelength, "wavelength")
    _check_below_2000(values, "raise", "wavelength")
    return 1.0 + _n_minus_1(values)


def vacuum_to_air(wavelength: u.Quantity, *, below_2000: Below2000 = "keep") -> u.Quantity:
    r"""Convert vacuum wavelengths to wavelengths in standard air.

    Parameters
    ----------
    wavelength : `~astropy.units.Quantity`
        Vacuum wavelength(s) in any length unit (Angstrom, nm, micron, ...), scalar or
        array. Unitless numbers, frequencies, wavenumbers and energies are refused (see the
        module docstring).
    below_2000 : {"keep", "raise"}
        What to do with wavelengths below 2000 Å, where the formula does not apply.
        ``"keep"`` (default) follows the IAU convention that wavelengths below 2000 Å are
        always quoted in vacuum, so they are returned unchanged; ``"raise"`` refuses them.

    Returns
    -------
    `~astropy.units.Quantity`
        Air wavelength(s), float64, in the unit and shape of ``wavelength``.

    Raises
    ------
    SpectrumInputError
        If ``wavelength`` is not a length Quantity, contains non-finite or non-positive
        values, or (with ``below_2000="raise"``) values below 2000 Å.

    See Also
    --------
    air_to_vacuum : the inverse.

    Notes
    -----
    The refractivity of standard (dry, 15 °C, 101 325 Pa) air is

    .. math::

        n - 1 = 10^{-8}\left(8342.13 + \frac{2406030}{130 - \sigma^2}
                + \frac{15997}{38.9 - \sigma^2}\right),
        \qquad \sigma = 10^4/\lambda_{\rm vac}\ (\mu{\rm m}^{-1},\ \lambda\ {\rm in\ Å}),

    and :math:`\lambda_{\rm air} = \lambda_{\rm vac}/n(\lambda_{\rm vac})`. Because
    :math:`n` is a function of the vacuum wavelength, the inverse (:func:`air_to_vacuum`)
    is solved by fixed-point iteration. These are Edlén's (1966) constants, the form of
    the IAU standard discussed by Morton (2000); the Birch & Downs (1994) revision of the
    constants (``specutils`` method ``"Morton2000"``, used by VALD) and Ciddor's (1996)
    formula differ from it by less than 2×10⁻⁸ relative (≤ 5×10⁻⁴ Å) over
    3000–25 000 Å. That difference, not the arithmetic, sets the accuracy.

    The formula is valid above 2000 Å. The jump this convention introduces at 2000 Å
    (about 0.65 Å) means that vacuum wavelengths in [2000, 2000.65) Å do not round-trip;
    everywhere else the two functions are inverse to 10⁻¹² relative.

    References
    ----------
    - Morton, D. C. 2000, ApJS, 130, 403 (IAU standard for air/vacuum wavelengths)
    - Ciddor, P. E. 1996, Appl. Opt., 35, 1566
    - Edlén, B. 1966, Metrologia, 2, 71

    Examples
    --------
    >>> import astropy.units as u
    >>> vacuum_to_air(6564.614 * u.AA).round(3)  # H-alpha
    <Quantity 6562.801 Angstrom>
    >>> vacuum_to_air([656.4614, 1000.0] * u.nm).round(4)
    <Quantity [656.2801, 999.7259] nm>
    >>> vacuum_to_air(1215.67 * u.AA)  # Lyman alpha: below 2000 Å, kept in vacuum
    <Quantity 1215.67 Angstrom>
    """
    values, unit = _as_angstrom(wavelength, "wavelength")
    _check_below_2000(values, below_2000, "wavelength")
    return (_vacuum_to_air_angstrom(values) * u.AA).to(unit)


def air_to_vacuum(wavelength: u.Quantity, *, below_2000: Below2000 = "keep") -> u.Quantity:
    r"""Convert wavelengths in standard air to vacuum wavelengths.

    Parameters
    ----------
    wavelength : `~astropy.units.Quantity`
        Air wavelength(s) in any length unit, scalar or array. Unitless numbers,
        frequencies, wavenumbers and energies are refused.
    below_2000 : {"keep", "raise"}
        Wavelengths below 2000 Å are vacuum wavelengths by IAU convention: ``"keep"``
        (default) returns them unchanged, ``"raise"`` refuses them.

    Returns
    -------
    `~astropy.units.Quantity`
        Vacuum wavelength(s), float64, in the unit and shape of ``wavelength``.

    Raises
    ------
    SpectrumInputError
        If ``wavelength`` is not a length Quantity, contains non-finite or non-positive
        values, or (with ``below_2000="raise"``) values below 2000 Å.

    See Also
    --------
    vacuum_to_air : the forward conversion, with the formula.

    Notes
    -----
    Solves :math:`\lambda_{\rm vac} = \lambda_{\rm air}\, n(\lambda_{\rm vac})` with the
    refractive index :math:`n` of :func:`vacuum_to_air` (Edlén 1966 as adopted by Morton
    2000) by fixed-point iteration, starting from
    :math:`\lambda_{\rm air}\, n(\lambda_{\rm air})`, until successive iterates agree to
    10⁻¹² relative (two or three steps: each one reduces the error by a factor
    :math:`|{\rm d}\ln n/{\rm d}\ln\lambda| \lesssim 10^{-4}`).

    References
    ----------
    - Morton, D. C. 2000, ApJS, 130, 403
    - Ciddor, P. E. 1996, Appl. Opt., 35, 1566

    Examples
    --------
    >>> import astropy.units as u
    >>> air_to_vacuum(5889.951 * u.AA).round(3)  # Na D2
    <Quantity 5891.583 Angstrom>
    >>> air_to_vacuum(1.0 * u.micron).round(7)
    <Quantity 1.0002742 micron>
    """
    values, unit = _as_angstrom(wavelength, "wavelength")
    _check_below_2000(values, below_2000, "wavelength")
    return (_air_to_vacuum_angstrom(values) * u.AA).to(unit)
