"""Rows of an HDF5 dataset read on demand: the flux of a grid larger than memory.

A :class:`LazyRows` is a view of selected rows of a 2-D dataset in a stellarai grid file.
It reads only the rows asked for, so a :class:`~stellarai.grids.SpectralGrid` opened with
``lazy=True`` (and its slices and splits) can feed a training loop without ever holding
the whole flux array. All the views of one file share one :class:`H5Source`, which owns
the open file handle; closing the grid closes it.

Each process opens its own handle: a view copied into a
:class:`torch.utils.data.DataLoader` worker reopens the file on first use instead of
sharing the parent's handle, which HDF5 does not allow across processes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .errors import GridFileError

__all__ = ["H5Source", "LazyRows", "row_index"]

_CHUNK_CACHE_BYTES = 64 * 2**20  # per open file: holds many row chunks for shuffled reads


def row_index(key: Any, n: int) -> np.ndarray:
    """Turn an index (int, slice, integer array or boolean mask) into row numbers.

    Negative indices count from the end, as in numpy. Raises `IndexError` for an index out
    of range and `TypeError` for a key that does not select rows.

    Examples
    --------
    >>> row_index(slice(1, None, 2), 6)
    array([1, 3, 5])
    >>> row_index(-1, 6)
    array([5])
    """
    rows = np.arange(n)
    if isinstance(key, (bool, np.bool_)):
        raise TypeError(f"a grid index must be an int, slice, or array of ints or bools, got "
                        f"{key!r}")
    if isinstance(key, (int, np.integer)):
        if not -n <= key < n:
            raise IndexError(f"index {key} is out of range for a grid of {n} spectra")
        return rows[[key]]
    if isinstance(key, slice):
        return rows[key]
    array = np.asarray(key)
    if array.dtype == bool:
        if array.shape != (n,):
            raise IndexError(f"a boolean mask must have shape ({n},), got {array.shape}")
        return rows[array]
    if array.size == 0:
        return rows[:0]
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"a grid index must be an int, slice, or 1-d array of ints or bools, "
                        f"got {key!r:.100}")
    if array.min() < -n or array.max() >= n:
        raise IndexError(f"index array has values outside [-{n}, {n}) for a grid of {n} spectra")
    return rows[array]


class H5Source:
    """An HDF5 file opened read-only on first use, once per process.

    Parameters
    ----------
    path : str or pathlib.Path
        The grid file.
    file : h5py.File, optional
        An already open handle for this process (it is adopted, and closed by
        :meth:`close`).
    """

    def __init__(self, path: str | os.PathLike[str], file: h5py.File | None = None) -> None:
        self.path = Path(path)
        self._file = file
        self._pid = os.getpid()
        self.closed = False

    @staticmethod
    def open(path: str | os.PathLike[str]) -> h5py.File:
        """Open ``path`` read-only, turning HDF5's errors into :class:`GridFileError`."""
        path = Path(path)
        if not path.is_file():
            raise GridFileError(f"grid file {str(path)!r} does not exist (or is not a file)")
        try:
            return h5py.File(path, "r", rdcc_nbytes=_CHUNK_CACHE_BYTES)
        except OSError as exc:
            raise GridFileError(
                f"{str(path)!r} is not a readable HDF5 file (corrupt, truncated or another "
                f"format): {exc}"
            ) from exc

    def file(self) -> h5py.File:
        """The open handle for this process."""
        if self.closed:
            raise GridFileError(
                f"the grid file {str(self.path)!r} has been closed; read it again with "
                "SpectralGrid.read(path, lazy=True), or use SpectralGrid.load() before closing "
                "to keep the flux in memory"
            )
        if self._file is None or self._pid != os.getpid():
            self._file = self.open(self.path)
            self._pid = os.getpid()
        return self._file

    def close(self) -> None:
        """Close the handle (if this process opened it); further reads raise."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None
        self.closed = True

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_file"] = None  # a handle cannot cross processes: the copy reopens the file
        return state


class LazyRows:
    """Selected rows of a 2-D dataset of an HDF5 file, read on demand.

    Behaves like a read-only ``(n_rows, n_pix)`` array for row selection:
    ``rows[i]`` is one row (1-d `numpy.ndarray`), ``rows[a:b]``, ``rows[[i, j]]`` and
    ``rows[mask]`` read those rows into a 2-d array, and ``np.asarray(rows)`` reads them
    all. :meth:`take` returns a narrower view without reading anything.

    Parameters
    ----------
    source : H5Source
        The file.
    name : str
        Name of the dataset in the file.
    rows : numpy.ndarray, optional
        Rows of the dataset in this view, in order; all rows if omitted.
    """

    def __init__(self, source: H5Source, name: str, rows: np.ndarray | None = None) -> None:
        self.source = source
        self.name = name
        dataset = self._dataset()
        self._n_file_rows, self._n_pix = dataset.shape
        self.dtype = dataset.dtype
        self._rows = np.arange(self._n_file_rows) if rows is None else np.asarray(rows)

    def _dataset(self) -> h5py.Dataset:
        return self.source.file()[self.name]

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_rows, n_pix)`` of this view."""
        return (len(self._rows), self._n_pix)

    @property
    def ndim(self) -> int:
        """Always 2."""
        return 2

    def __len__(self) -> int:
        return len(self._rows)

    def take(self, positions: np.ndarray) -> LazyRows:
        """A view of rows ``positions`` of this view (nothing is read)."""
        return LazyRows(self.source, self.name, self._rows[np.asarray(positions)])

    def read(self, positions: np.ndarray | None = None) -> np.ndarray:
        """Read rows ``positions`` of this view (all if omitted) into a 2-d array."""
        wanted = self._rows if positions is None else self._rows[np.asarray(positions)]
        if wanted.size == 0:
            return np.empty((0, self._n_pix), dtype=self.dtype)
        unique, inverse = np.unique(wanted, return_inverse=True)
        # One hyperslab per run of consecutive rows: much faster in h5py than a fancy
        # (point) selection, and a single slice when the rows are contiguous.
        breaks = np.flatnonzero(np.diff(unique) != 1) + 1
        starts, stops = np.r_[0, breaks], np.r_[breaks, unique.size]
        block = np.empty((unique.size, self._n_pix), dtype=self.dtype)
        try:
            dataset = self._dataset()
            for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
                first = int(unique[start])
                block[start:stop] = dataset[first:first + stop - start]
        except (OSError, ValueError) as exc:
            raise GridFileError(
                f"could not read rows of dataset {self.name!r} from "
                f"{str(self.source.path)!r} (corrupt or truncated file?): {exc}"
            ) from exc
        return block[inverse.reshape(-1)]

    def iter_blocks(self, block_rows: int) -> Iterator[np.ndarray]:
        """Yield the rows of this view in order, ``block_rows`` at a time."""
        for start in range(0, len(self), block_rows):
            yield self.read(np.arange(start, min(start + block_rows, len(self))))

    def __getitem__(self, key: Any) -> np.ndarray:
        rest: tuple[Any, ...] = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        data = self.read(row_index(key, len(self)))
        if isinstance(key, (int, np.integer)):
            data = data[0]
        return data[(Ellipsis, *rest)] if rest else data

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        data = self.read()
        return data if dtype is None else data.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return (f"<LazyRows {self.name!r} of {str(self.source.path)!r}: shape {self.shape}, "
                f"dtype {self.dtype}>")
