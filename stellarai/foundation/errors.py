"""Exceptions and warnings of :mod:`stellarai.foundation`."""

from __future__ import annotations

from astropy.utils.exceptions import AstropyUserWarning

from ..errors import StellarAIError

__all__ = ["ExtrapolationWarning", "FoundationError", "FoundationFileError"]


class FoundationError(StellarAIError, ValueError):
    """A foundation model cannot do what was asked: bad settings, labels or spectra."""


class FoundationFileError(StellarAIError, OSError):
    """A saved foundation model cannot be read: missing, corrupt or incompatible files."""


class ExtrapolationWarning(AstropyUserWarning):
    """A prediction reads pixels outside every wavelength range the model was trained on."""
