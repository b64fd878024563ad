r"""Synthetic ↔ observed domain translation: Cycle-StarNet (O'Briain et al. 2021).

:class:`DomainTranslator` learns, from unpaired spectra, how the spectra of a frozen
emulator map to observed spectra and back, through a latent space shared by both domains
plus a split latent that only observed spectra have. It translates spectra
(:meth:`~DomainTranslator.translate`), gives their latents
(:meth:`~DomainTranslator.latent`) and maps the lines the models lack
(:meth:`~DomainTranslator.missing_lines`, a :class:`MissingLinesMap`).

References
----------
O'Briain, T., Ting, Y.-S., Fabbro, S., Yi, K. M., Venn, K., & Bialek, S. 2021, ApJ, 906,
130 (arXiv:2007.03112).
"""

from .errors import DomainError, DomainFileError, DomainInputError
from .losses import LossWeights, adversarial, reduced_chi2, split_correlation
from .maps import MissingLinesMap, element_of
from .networks import ConvEncoder, CycleNetwork, Discriminator, Generator
from .scores import SCORE_NAMES, cross_validation_scores, latent_score
from .serialization import load_translator, save_translator
from .training import LOSS_NAMES, CycleStep, DomainHistory, train_cycle
from .translator import DomainTranslator, Latent

__all__ = [
    "LOSS_NAMES",
    "SCORE_NAMES",
    "ConvEncoder",
    "CycleNetwork",
    "CycleStep",
    "Discriminator",
    "DomainError",
    "DomainFileError",
    "DomainHistory",
    "DomainInputError",
    "DomainTranslator",
    "Generator",
    "Latent",
    "LossWeights",
    "MissingLinesMap",
    "adversarial",
    "cross_validation_scores",
    "element_of",
    "latent_score",
    "load_translator",
    "reduced_chi2",
    "save_translator",
    "split_correlation",
    "train_cycle",
]
