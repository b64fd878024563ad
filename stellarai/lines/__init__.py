"""Semi-empirical line models: clone a template into Voigt lines and transfer-learn them.

The blasé method (Gully-Santiago & Morley 2022, ApJ 941, 200; arXiv:2210.01827): a
synthetic spectrum becomes one trainable line per feature (:class:`LineModel`, cloned by
:meth:`LineModel.from_spectrum` or read with :meth:`LineModel.from_table`), and all lines
are fitted to observed échelle orders together with RV, vsini, continuum and telluric
lines (:func:`fit_lines`), pulled toward the clone by a prior whose overall strength
:func:`scan_regularization` chooses from held-out pixels.

- ``stellarai.lines.model``: :class:`LineModel`, a source operator evaluated
  sparsely (``stellarai.lines.sparse``, ``stellarai.lines.kernel``).
- :mod:`~stellarai.lines.profiles`: pseudo-Voigt and exact Voigt absorption, windows.
- ``stellarai.lines.clone``: :func:`clone_spectrum`, :class:`CloneReport`.
- ``stellarai.lines.transfer``: :func:`fit_lines`, :class:`LineFit`,
  :func:`scan_regularization`, :class:`RegularizationScan`, :func:`build_chain`.
- ``stellarai.lines.telluric``: :func:`telluric_lines` from muler's TelFit template.
"""

from .clone import CloneReport, clone_spectrum, find_lines
from .errors import LineTableError, LineWindowError, NoLinesError
from .model import (
    DEFAULT_MAX_WINDOW,
    DEFAULT_TOLERANCE,
    FLUX_MODELS,
    KINDS,
    MEAN_SHIFT_SIGMA,
    NATIVE_RESOLVING_POWER,
    LineModel,
)
from .profiles import PROFILES
from .sparse import SparsePlan, plan_lines
from .telluric import telluric_lines
from .transfer import (
    DEFAULT_STRENGTHS,
    LineFit,
    RegularizationScan,
    build_chain,
    fit_lines,
    scan_regularization,
)

__all__ = [
    "DEFAULT_MAX_WINDOW",
    "DEFAULT_STRENGTHS",
    "DEFAULT_TOLERANCE",
    "FLUX_MODELS",
    "KINDS",
    "MEAN_SHIFT_SIGMA",
    "NATIVE_RESOLVING_POWER",
    "PROFILES",
    "CloneReport",
    "LineFit",
    "LineModel",
    "LineTableError",
    "LineWindowError",
    "NoLinesError",
    "RegularizationScan",
    "SparsePlan",
    "build_chain",
    "clone_spectrum",
    "find_lines",
    "fit_lines",
    "plan_lines",
    "scan_regularization",
    "telluric_lines",
]
