"""Exceptions of :mod:`stellarai.flows`."""

from __future__ import annotations

from ..errors import StellarAIError

__all__ = ["FlowError", "FlowFileError"]


class FlowError(StellarAIError, ValueError):
    """A flow cannot do what was asked: not fitted yet, bad settings or bad training data."""


class FlowFileError(StellarAIError, OSError):
    """A saved flow cannot be read: missing files, wrong format or incompatible version."""
