r"""Normalizing flows over spectra: likelihoods, outlier scores, samples, hidden-line maps.

:class:`SpectralFlow` compresses spectra onto a PCA basis computed in torch and models the
density of the coefficients with a zuko neural spline (or masked autoregressive) flow,
conditioned on a subset of the labels or on nothing. :func:`pixel_correlations` turns its
conditional samples into maps of the pixels that co-vary with a label such as [Mg/H].

References
----------
Papamakarios, G., et al. 2021, JMLR, 22, 57 (arXiv:1912.02762);
Durkan, C., et al. 2019, NeurIPS (arXiv:1906.04032);
Rozet, F., et al., zuko (https://github.com/probabilists/zuko).
"""

from .compression import PCABasis, Projection, fit_pca
from .errors import FlowError, FlowFileError
from .flow import SpectralFlow
from .maps import CorrelationMap, pixel_correlations
from .metrics import roc_auc
from .network import FlowNetwork, build_zuko_flow
from .serialization import load_flow, save_flow
from .training import FlowHistory

__all__ = [
    "CorrelationMap",
    "FlowError",
    "FlowFileError",
    "FlowHistory",
    "FlowNetwork",
    "PCABasis",
    "Projection",
    "SpectralFlow",
    "build_zuko_flow",
    "fit_pca",
    "load_flow",
    "pixel_correlations",
    "roc_auc",
    "save_flow",
]
