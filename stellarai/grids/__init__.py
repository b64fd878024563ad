"""Labeled training grids: the spectra every stellarai trainer reads.

A :class:`SpectralGrid` holds spectra on one vacuum wavelength grid with their labels
(a QTable tied to a :class:`~stellarai.labels.LabelSpace`), optional inverse variance and
a provenance record. It splits deterministically into train / validation / test parts,
gives a `torch.utils.data.Dataset` view, and reads and writes HDF5 files, lazily if the
grid is larger than memory. Grids come from a synthesizer (:func:`generate_grid`, with
:func:`sample_labels`), from arrays, from a gollum PHOENIX grid or from The Payne's
``.npz`` training spectra.
"""

from .adapters import from_arrays, from_gollum, from_payne_npz
from .continuum import upper_envelope
from .dataset import GridDataset
from .errors import GridError, GridFileError
from .generate import fill_grid, generate_grid
from .grid import SpectralGrid, make_provenance
from .hdf5 import FORMAT, FORMAT_VERSION
from .infer import canonical_unit, infer_label_space
from .lazy import LazyRows
from .sampling import sample_labels
from .splits import split_indices, training_and_validation

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "GridDataset",
    "GridError",
    "GridFileError",
    "LazyRows",
    "SpectralGrid",
    "canonical_unit",
    "fill_grid",
    "from_arrays",
    "from_gollum",
    "from_payne_npz",
    "generate_grid",
    "infer_label_space",
    "make_provenance",
    "sample_labels",
    "split_indices",
    "training_and_validation",
    "upper_envelope",
]
