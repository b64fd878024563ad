"""Checks applied to every order that crosses the boundary, with errors that say what to fix."""

from __future__ import annotations

import warnings

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

from ..errors import SpectrumInputError

__all__ = ["native_float_array", "check_strictly_monotonic", "warn_masked_nonfinite"]


def native_float_array(values: object, name: str) -> np.ndarray:
    """Return ``values`` as a floating-point array in native byte order.

    FITS files store big-endian arrays, which torch refuses; integers become float64;
    float32 and float64 keep their precision. Complex or non-numeric data are refused.

    Examples
    --------
    >>> import numpy as np
    >>> native_float_array(np.arange(3, dtype=">f4"), "flux").dtype.byteorder in "=|<"
    True
    """
    array = np.asarray(values)
    if array.dtype.kind in "iub":
        array = array.astype(np.float64)
    elif array.dtype.kind != "f":
        raise SpectrumInputError(
            f"{name} must hold real numbers, got an array of dtype {array.dtype}"
        )
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def check_strictly_monotonic(wavelength: np.ndarray, name: str) -> bool:
    """Check that a 1-D axis is strictly increasing or strictly decreasing.

    Returns
    -------
    bool
        True if the axis decreases (it is then flipped by the caller).

    Raises
    ------
    SpectrumInputError
        For fewer than one pixel, non-finite values, repeated values or an unsorted axis.
    """
    if wavelength.ndim != 1:
        raise SpectrumInputError(
            f"{name} must be one-dimensional per order, got shape {wavelength.shape}"
        )
    if wavelength.size == 0:
        raise SpectrumInputError(f"{name} is empty: an order needs at least one pixel")
    if not np.all(np.isfinite(wavelength)):
        bad = int(np.count_nonzero(~np.isfinite(wavelength)))
        raise SpectrumInputError(
            f"{name} has {bad} non-finite value(s); wavelengths must be finite"
        )
    if wavelength.size == 1:
        return False
    step = np.diff(wavelength)
    if np.all(step > 0):
        return False
    if np.all(step < 0):
        return True
    repeated = np.flatnonzero(step == 0)
    if repeated.size:
        i = int(repeated[0])
        raise SpectrumInputError(
            f"{name} has {repeated.size} duplicated value(s), first at pixels {i} and {i + 1} "
            f"({wavelength[i]!r}); the spectral axis must be strictly increasing or decreasing"
        )
    i = int(np.flatnonzero(np.sign(step) != np.sign(step[0]))[0])
    raise SpectrumInputError(
        f"{name} is not sorted: it changes direction at pixel {i + 1} "
        f"({wavelength[i]!r} -> {wavelength[i + 1]!r}); sort the spectrum first"
    )


def warn_masked_nonfinite(n_flux: int, n_uncertainty: int, n_orders: int) -> None:
    """Warn, with counts, that non-finite flux or uncertainty values were masked."""
    if n_flux == 0 and n_uncertainty == 0:
        return
    parts = []
    if n_flux:
        parts.append(f"{n_flux} NaN or infinite flux value(s)")
    if n_uncertainty:
        parts.append(f"{n_uncertainty} non-finite uncertainty value(s)")
    warnings.warn(
        f"{' and '.join(parts)} in {n_orders} order(s) were masked (mask=True, weight 0)",
        AstropyUserWarning,
        stacklevel=3,
    )
