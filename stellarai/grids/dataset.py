"""A torch `Dataset` view of a :class:`~stellarai.grids.SpectralGrid`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .lazy import LazyRows, row_index

if TYPE_CHECKING:
    from .grid import SpectralGrid

__all__ = ["GridDataset"]

Sample = tuple[torch.Tensor, ...]


class GridDataset(Dataset):
    """``(labels, flux)`` tensor pairs of a grid, read row by row (lazily if the grid is).

    Parameters
    ----------
    grid : SpectralGrid
        The grid; a lazy grid's rows are read from its file on demand.
    scaled : bool
        Give labels scaled to ±0.5 by
        :meth:`LabelSpace.scale <stellarai.labels.LabelSpace.scale>` (default), or in
        canonical units.
    dtype : torch.dtype
        dtype of the tensors (float32 by default).
    ivar : bool
        Also give the inverse variance, as a third tensor (the grid must have one).

    Notes
    -----
    Item ``i`` is ``(labels[i], flux[i])`` with shapes ``(n_labels,)`` and ``(n_pix,)``.
    ``__getitems__`` reads a whole batch in one call (the `torch.utils.data.DataLoader`
    uses it), which is much faster for a lazy grid than row-by-row reads.

    Examples
    --------
    >>> import astropy.units as u, numpy as np
    >>> from stellarai.grids import SpectralGrid
    >>> from stellarai.labels import LabelSpace
    >>> grid = SpectralGrid([1.0, 2.0] * u.um, np.ones((2, 2)), {"teff": [2300, 12000] * u.K},
    ...                     LabelSpace.default().subset(["teff"]))
    >>> labels, flux = grid.dataset()[1]
    >>> labels, flux
    (tensor([0.5000]), tensor([1., 1.]))
    """

    def __init__(self, grid: SpectralGrid, *, scaled: bool = True,
                 dtype: torch.dtype = torch.float32, ivar: bool = False) -> None:
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        if ivar and grid.ivar is None:
            raise ValueError("ivar=True but the grid has no inverse variance (grid.ivar is None)")
        labels = grid.label_array
        if scaled:
            labels = grid.label_space.scale(labels)
        self.grid = grid
        self.dtype = dtype
        self._labels = torch.tensor(np.array(labels), dtype=dtype)
        self._rows = [grid.flux] + ([grid.ivar] if ivar else [])

    def __len__(self) -> int:
        return len(self._labels)

    def _fetch(self, rows: np.ndarray) -> list[torch.Tensor]:
        fetched = [self._labels[torch.as_tensor(rows)]]
        for source in self._rows:
            block = source.read(rows) if isinstance(source, LazyRows) else source[rows]
            fetched.append(torch.as_tensor(np.ascontiguousarray(block), dtype=self.dtype))
        return fetched

    def __getitem__(self, index: Any) -> Sample:
        if isinstance(index, torch.Tensor) and index.numel() == 1:
            index = index.item()
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"a GridDataset index must be an int, got {index!r:.100}")
        rows = row_index(index, len(self))
        return tuple(tensor[0] for tensor in self._fetch(rows))

    def __getitems__(self, indices: list[int]) -> list[Sample]:
        rows = np.array([row_index(int(i), len(self))[0] for i in indices], dtype=np.int64)
        batch = self._fetch(rows)
        return [tuple(tensor[k] for tensor in batch) for k in range(len(rows))]
