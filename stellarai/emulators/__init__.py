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
    "DEFAULT_EMULATOR",
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


DEFAULT_EMULATOR = "default_emulator"
"""Stem of the emulator shipped in ``stellarai/data`` (loaded by ``load("default")``)."""


def load(path: str | os.PathLike[str]) -> SpectralEmulator:
    """Load a saved emulator (see :func:`load_emulator`), or the shipped default one.

    Parameters
    ----------
    path : str or path-like
        Sidecar (``.json``), weights (``.safetensors``) or their common stem. The name
        ``"default"`` loads the emulator shipped with stellarai: a
        :class:`PayneEmulator` over the HPF band (vacuum 8,080-12,800 Angstrom, R =
        25,000 pixels) for FGK dwarfs and subgiants (Teff 4,000-7,000 K, log g 3.5-5.0,
        [Fe/H] -1.0 to +0.5, vmic 0.5-2.0 km/s), trained by
        ``scripts/train_default_emulator.py`` on spectra of :mod:`stellarai.synth`; its
        ``provenance["validation"]`` records its error on held-out spectra.

    Raises
    ------
    EmulatorFileError
        For missing, corrupt, tampered or incompatible files.

    Examples
    --------
    >>> emu = load("default")
    >>> emu.label_space.names
    ('teff', 'logg', 'feh', 'vmic')
    """
    if os.fspath(path) == "default":
        return _load_default()
    return load_emulator(path)


def _load_default() -> SpectralEmulator:
    import shutil
    import tempfile
    from importlib.resources import as_file, files

    data = files("stellarai").joinpath("data")
    sidecar_res = data.joinpath(DEFAULT_EMULATOR + ".json")
    weights_res = data.joinpath(DEFAULT_EMULATOR + ".safetensors")
    if not (sidecar_res.is_file() and weights_res.is_file()):
        raise EmulatorFileError("the default emulator (stellarai/data/default_emulator.json "
                                "and .safetensors) is missing from this installation")
    with as_file(sidecar_res) as sidecar, as_file(weights_res) as weights:
        if weights == sidecar.with_suffix(".safetensors"):  # files on disk: load in place
            return load_emulator(sidecar)
        with tempfile.TemporaryDirectory() as tmp:  # e.g. a zipped install
            for path in (sidecar, weights):
                shutil.copyfile(path, os.path.join(tmp, DEFAULT_EMULATOR + path.suffix))
            return load_emulator(os.path.join(tmp, DEFAULT_EMULATOR))
