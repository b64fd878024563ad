"""stellarai: machine-learning methods of stellar spectroscopy for the specutils ecosystem.

Spectra enter and leave as specutils objects with astropy units; PyTorch does the work
underneath. Importing stellarai registers its file readers and writers with specutils'
I/O registry (``Spectrum.read`` / ``SpectrumList.read`` then know the stellarai formats).
"""

from importlib.metadata import PackageNotFoundError, version

from . import (
    domain,
    emulators,
    errors,
    fitting,
    flows,
    foundation,
    grids,
    io,
    labels,
    lines,
    ops,
    spectra,
    synth,
)
from .fitting import fit, fit_many
from .grids import SpectralGrid
from .io import read_spectrum_list
from .labels import Label, LabelSpace
from .spectra import OrderBatch, as_order_batch
from .synth import LineList, Synthesizer

try:
    __version__ = version("stellarai")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = [
    "Label",
    "LabelSpace",
    "LineList",
    "OrderBatch",
    "SpectralGrid",
    "Synthesizer",
    "__version__",
    "as_order_batch",
    "domain",
    "emulators",
    "errors",
    "fit",
    "fit_many",
    "fitting",
    "flows",
    "foundation",
    "grids",
    "io",
    "labels",
    "lines",
    "ops",
    "read_spectrum_list",
    "spectra",
    "synth",
]
