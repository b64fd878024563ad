"""Exceptions raised by :mod:`stellarai.fitting`."""

from __future__ import annotations

from ..errors import SpectrumInputError, StellarAIError

__all__ = ["FitError", "FitInputError"]


class FitError(StellarAIError, ValueError):
    """A fit cannot be set up: a model, a parameter name or an option is unusable."""


class FitInputError(FitError, SpectrumInputError):
    """The data cannot be fitted: orders without valid pixels, shapes, NaN."""
