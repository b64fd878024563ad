"""Exceptions of :mod:`stellarai.domain`."""

from __future__ import annotations

from ..errors import SpectrumInputError, StellarAIError

__all__ = ["DomainError", "DomainFileError", "DomainInputError"]


class DomainError(StellarAIError, ValueError):
    """A translator cannot do what was asked: not trained yet, bad settings or labels."""


class DomainInputError(SpectrumInputError):
    """Spectra a translator cannot use: off its wavelength grid, all masked, wrong shape."""


class DomainFileError(StellarAIError, OSError):
    """A saved translator is missing, corrupt or of an incompatible format."""
