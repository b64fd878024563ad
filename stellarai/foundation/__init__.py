"""A spectral foundation model: pre-train on synthetic spectra, fine-tune on a few observed
ones, predict across instruments.

The SpectraFM idea (Koblischke & Bovy 2024, arXiv:2411.04750): a transformer reads a
spectrum as a set of (wavelength, flux, uncertainty) pixel tokens, so one model serves any
instrument's wavelength range and resolution.

- :class:`FoundationModel`: ``pretrain`` on :class:`~stellarai.grids.SpectralGrid`\\ s,
  ``finetune`` on a few labelled spectra, ``predict`` a label table with uncertainties,
  ``attention`` maps, ``save``/``load``.
- :class:`AttentionMap`: per-pixel attention of a label's query, with a plot.
- :mod:`~stellarai.foundation.domain`: an "observed" domain for studies: perturbed line
  lists, a different line-spread function, continuum errors and noise.
"""

from .attention import AttentionMap
from .domain import observe, perturb_linelist
from .errors import ExtrapolationWarning, FoundationError, FoundationFileError
from .model import FoundationModel
from .network import FoundationNet
from .serialization import load_model, save_model
from .training import FoundationHistory

__all__ = [
    "AttentionMap",
    "ExtrapolationWarning",
    "FoundationError",
    "FoundationFileError",
    "FoundationHistory",
    "FoundationModel",
    "FoundationNet",
    "load_model",
    "observe",
    "perturb_linelist",
    "save_model",
]
