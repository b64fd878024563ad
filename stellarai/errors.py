"""Exceptions raised by stellarai.

Every error stellarai raises on bad input derives from :class:`StellarAIError` and also
from the built-in exception a caller would expect (``ValueError``, ``TypeError`` or
``OSError``), so ``except ValueError`` keeps working. Messages name the argument, what
was expected and what was received.
"""

__all__ = [
    "StellarAIError",
    "SpectrumInputError",
    "SpectrumTypeError",
    "LabelError",
    "UnreadableFileError",
]


class StellarAIError(Exception):
    """Base class of every exception stellarai raises on purpose."""


class SpectrumInputError(StellarAIError, ValueError):
    """A spectrum's values are unusable: shapes, units, ordering or uncertainties."""


class SpectrumTypeError(StellarAIError, TypeError):
    """An object that is not a spectrum (or not a supported kind of one) was passed."""


class LabelError(StellarAIError, ValueError):
    """A stellar label is unknown, has the wrong unit, or lies outside its allowed range."""


class UnreadableFileError(StellarAIError, OSError):
    """A file could not be read as a spectrum by any of the supported readers."""
