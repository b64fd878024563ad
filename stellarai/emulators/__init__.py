"""Neural emulators of stellar spectra behind one Quantity-aware interface.

- :class:`SpectralEmulator`: the interface (labels → `~specutils.Spectrum`, batched calls,
  composition with :mod:`stellarai.ops`, ``as_model()`` for astropy, save / load);
- :class:`PayneEmulator`: The Payne's MLP (Ting et al. 2019) at fixed pixels;
- :class:`TransformerPayne`: flux as a function of labels and wavelength (Różański et al.
  2024), evaluable at any wavelength;
- :class:`Trainer`: training and fine-tuning of every backend on a
  :class:`~stellarai.grids.SpectralGrid`;
- :func:`load`: read a saved emulator (safetensors + JSON sidecar; never a pickle).
"""

from __future__ import annotations

import os

from .base import DEFAULT_MAX_ELEMENTS, SpectralEmulator, backend_class
from .encoding import SinusoidalEncoding
from .errors import EmulatorError, EmulatorFileError
from .payne import PayneEmulator, PayneMLP
from .serialization import FORMAT, FORMAT_VERSION, load_emulator, save_emulator
from .training import Trainer, TrainingHistory, learning_rate
from .transformer import TransformerPayne, TransformerPayneNet

__all__ = [
    "DEFAULT_MAX_ELEMENTS",
    "FORMAT",
    "FORMAT_VERSION",
    "EmulatorError",
    "EmulatorFileError",
    "EmulatorSource",
    "PayneEmulator",
    "PayneMLP",
    "SinusoidalEncoding",
    "SpectralEmulator",
    "Trainer",
    "TrainingHistory",
    "TransformerPayne",
    "TransformerPayneNet",
    "backend_class",
    "learning_rate",
    "load",
    "load_emulator",
    "save_emulator",
]


def __getattr__(name: str) -> object:
    # EmulatorSource subclasses stellarai.ops.Operator: import the operator layer only
    # when composition is used, so the emulators work without it.
    if name == "EmulatorSource":
        from .source import EmulatorSource

        return EmulatorSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load(path: str | os.PathLike[str]) -> SpectralEmulator:
    """Load a saved emulator (see :func:`load_emulator`).

    Parameters
    ----------
    path : str or path-like
        Sidecar (``.json``), weights (``.safetensors``) or their common stem. The name
        ``"default"`` is reserved for the emulator to be shipped with stellarai, which
        this version does not include yet.

    Raises
    ------
    EmulatorFileError
        For missing, corrupt, tampered or incompatible files (and for ``"default"``).
    """
    if os.fspath(path) == "default":
        raise EmulatorFileError(
            "stellarai does not ship a default emulator yet; train one with "
            "stellarai.emulators.Trainer and load it by path"
        )
    return load_emulator(path)
