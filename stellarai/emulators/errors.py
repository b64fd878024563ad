"""Exceptions of :mod:`stellarai.emulators`.

Both derive from :class:`~stellarai.errors.StellarAIError` and from the built-in exception
a caller would expect, so ``except ValueError`` and ``except OSError`` keep working.
"""

from __future__ import annotations

from ..errors import StellarAIError

__all__ = ["EmulatorError", "EmulatorFileError"]


class EmulatorError(StellarAIError, ValueError):
    """An emulator cannot do what was asked: wavelengths, shapes, settings or arguments."""


class EmulatorFileError(StellarAIError, OSError):
    """A saved emulator is missing, corrupt, tampered with or from an incompatible format."""
