"""Exceptions of :mod:`stellarai.lines`: bad line tables, templates and windows."""

from __future__ import annotations

from ..errors import StellarAIError

__all__ = ["LineTableError", "LineWindowError", "NoLinesError"]


class LineTableError(StellarAIError, ValueError):
    """A line table lacks a column, a unit, or has unusable values."""


class NoLinesError(StellarAIError, ValueError):
    """A template has no absorption line above the requested prominence."""


class LineWindowError(StellarAIError, ValueError):
    """The per-line pixel windows would not fit in the memory allowed for them."""
