"""Exceptions of :mod:`stellarai.grids`.

Both derive from :class:`~stellarai.errors.StellarAIError` and from the built-in exception
a caller would expect, so ``except ValueError`` and ``except OSError`` keep working.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import StellarAIError

__all__ = ["GridError", "GridFileError", "require_attributes"]


class GridError(StellarAIError, ValueError):
    """A grid's contents are unusable: shapes, wavelengths, flux values or arguments."""


class GridFileError(StellarAIError, OSError):
    """A grid file is missing, corrupt, truncated, incomplete or not a stellarai grid."""


def require_attributes(obj: object, names: Sequence[str], argument: str, expected: str) -> None:
    """Raise `GridError` naming the attributes ``obj`` lacks, if any.

    Examples
    --------
    >>> require_attributes(object(), ["flux"], "synthesizer", "a synthesizer")
    Traceback (most recent call last):
    ...
    stellarai.grids.errors.GridError: synthesizer must be a synthesizer; object has no ['flux']
    """
    missing = [name for name in names if not hasattr(obj, name)]
    if missing:
        raise GridError(f"{argument} must be {expected}; {type(obj).__name__} has no {missing}")
