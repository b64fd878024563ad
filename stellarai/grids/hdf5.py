"""The HDF5 file format of :class:`~stellarai.grids.SpectralGrid` (h5py).

Layout (format version 1)
-------------------------
Root attributes:

=================== ========================================================================
``format``          ``"stellarai.SpectralGrid"`` (how the file is recognised)
``format_version``  ``1``; a file from a newer stellarai (a larger number) is refused
``stellarai_version`` the version of stellarai that wrote the file
``label_space``     the grid's :class:`~stellarai.labels.LabelSpace` as JSON
                    (:meth:`~stellarai.labels.LabelSpace.to_dict`)
``provenance``      the grid's provenance dict as JSON
=================== ========================================================================

Datasets:

=============== ===================== =====================================================
``wavelength``  float64 ``(n_pix,)``   vacuum wavelength; attributes ``unit = "Angstrom"``,
                                       ``medium = "vacuum"``
``labels``      float64                labels in the label space's order and canonical
                ``(n, n_labels)``      units; attributes ``names`` and ``units`` (JSON lists)
``flux``        ``(n, n_pix)``,        float32 or float64 as the grid holds it, chunked by
                chunked by rows        rows, optionally compressed; attribute ``unit``
                                       (astropy string, ``""`` = dimensionless)
``ivar``        like ``flux``          optional inverse variance; attribute ``unit``
=============== ===================== =====================================================

Flux chunks hold whole rows: as many as fit in 128 KiB, at least 1 and at most 64. Reading
one spectrum therefore touches one chunk, and the shuffled batches of a training loop
read a lazy file almost as fast as memory when it is uncompressed (the default; see
``benchmarks/grid_io.py``). Compression saves little on float spectra (about 15 %) and
makes shuffled lazy reads about ten times slower, since every row read decompresses its
whole chunk. Files are written to ``<path>.partial`` and renamed when
complete, so an interrupted write never leaves a file that looks like a grid.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import astropy.units as u
import h5py
import numpy as np

from ..labels import LabelSpace
from .errors import GridError, GridFileError
from .lazy import H5Source, LazyRows

__all__ = ["FORMAT", "FORMAT_VERSION", "GridParts", "GridWriter", "read_grid_parts"]

FORMAT = "stellarai.SpectralGrid"
"""Value of the root attribute ``format`` that marks a stellarai grid file."""
FORMAT_VERSION = 1
"""Layout version written by (and the newest read by) this stellarai."""

_MAX_CHUNK_ROWS = 64
_CHUNK_BYTES = 128 * 2**10
_REQUIRED = ("wavelength", "labels", "flux")

Compression = Literal["gzip", "lzf"] | None


@dataclass
class GridParts:
    """What :func:`read_grid_parts` found in a file (flux eager or lazy)."""

    label_space: LabelSpace
    labels: np.ndarray
    wavelength: np.ndarray
    flux: np.ndarray | LazyRows
    ivar: np.ndarray | LazyRows | None
    flux_unit: u.UnitBase
    provenance: dict[str, Any]
    source: H5Source | None


def chunk_rows(n: int, n_pix: int, itemsize: int) -> int:
    """Rows per chunk: whole rows within 128 KiB, at least 1, at most 64 and at most ``n``."""
    by_size = max(1, _CHUNK_BYTES // max(1, n_pix * itemsize))
    return max(1, min(n, _MAX_CHUNK_ROWS, by_size))


class GridWriter:
    """Write a grid file row block by row block, so a huge grid never sits in memory.

    Use it as a context manager: the file is written to ``<path>.partial`` and renamed to
    ``path`` on a clean exit once every row is written; on an error it is deleted.

    Parameters
    ----------
    path : str or pathlib.Path
        Output file.
    label_space : LabelSpace
        The labels' space.
    labels : numpy.ndarray
        ``(n, n_labels)`` labels in canonical units (written at once).
    wavelength : numpy.ndarray
        ``(n_pix,)`` vacuum wavelength in Angstrom.
    flux_unit : astropy unit
        Unit of the flux (dimensionless for normalized flux).
    provenance : dict
        JSON-serializable provenance.
    flux_dtype : numpy dtype
        dtype of the ``flux`` (and ``ivar``) datasets.
    ivar_dtype : numpy dtype, optional
        dtype of an ``ivar`` dataset; ``None`` (default) writes none.
    overwrite : bool
        Replace an existing file (default False: raise).
    compression : {None, "gzip", "lzf"}
        HDF5 compression filter of ``flux`` and ``ivar``.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from stellarai.labels import LabelSpace
    >>> space = LabelSpace.default().subset(["teff"])
    >>> path = os.path.join(tempfile.mkdtemp(), "grid.h5")
    >>> with GridWriter(path, space, np.array([[5000.0], [6000.0]]), np.array([1.0, 2.0]),
    ...                 u.one, {}, np.float32) as writer:
    ...     writer.append(np.ones((1, 2)))
    ...     writer.append(np.zeros((1, 2)))
    >>> read_grid_parts(path).flux
    array([[1., 1.],
           [0., 0.]], dtype=float32)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        label_space: LabelSpace,
        labels: np.ndarray,
        wavelength: np.ndarray,
        flux_unit: Any,
        provenance: dict[str, Any],
        flux_dtype: Any,
        *,
        ivar_dtype: Any = None,
        overwrite: bool = False,
        compression: Compression = None,
    ) -> None:
        if compression not in (None, "gzip", "lzf"):
            raise GridError(f"compression must be None, 'gzip' or 'lzf', got {compression!r}")
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise GridFileError(
                f"{str(self.path)!r} already exists; pass overwrite=True to replace it"
            )
        if self.path.is_dir():
            raise GridFileError(f"{str(self.path)!r} is a directory, not a file name")
        self._partial = self.path.with_name(self.path.name + ".partial")
        self._label_space = label_space
        self._labels = np.asarray(labels, dtype=np.float64)
        self._wavelength = np.asarray(wavelength, dtype=np.float64)
        self._flux_unit = u.Unit(flux_unit)
        self._provenance_json = _to_json(provenance, "provenance")
        self._flux_dtype = np.dtype(flux_dtype)
        self._ivar_dtype = None if ivar_dtype is None else np.dtype(ivar_dtype)
        self._compression = compression
        self._file: h5py.File | None = None
        self.n_written = 0

    @property
    def n_spectra(self) -> int:
        """Number of rows the file will hold."""
        return self._labels.shape[0]

    def __enter__(self) -> GridWriter:
        try:
            self._file = h5py.File(self._partial, "w")
        except OSError as exc:
            raise GridFileError(f"cannot create {str(self._partial)!r}: {exc}") from exc
        f = self._file
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["stellarai_version"] = _stellarai_version()
        f.attrs["label_space"] = json.dumps(self._label_space.to_dict())
        f.attrs["provenance"] = self._provenance_json
        wavelength = f.create_dataset("wavelength", data=self._wavelength)
        wavelength.attrs["unit"] = "Angstrom"
        wavelength.attrs["medium"] = "vacuum"
        labels = f.create_dataset("labels", data=self._labels)
        labels.attrs["names"] = json.dumps(list(self._label_space.names))
        labels.attrs["units"] = json.dumps([unit.to_string() for unit in self._label_space.units])
        self._create_rows("flux", self._flux_dtype)
        if self._ivar_dtype is not None:
            self._create_rows("ivar", self._ivar_dtype)
        return self

    def _create_rows(self, name: str, dtype: np.dtype) -> None:
        n, n_pix = self.n_spectra, self._wavelength.shape[0]
        options: dict[str, Any] = {}
        if n > 0:
            options["chunks"] = (chunk_rows(n, n_pix, dtype.itemsize), n_pix)
            if self._compression is not None:
                options["compression"] = self._compression
        dataset = self._file.create_dataset(name, shape=(n, n_pix), dtype=dtype, **options)
        dataset.attrs["unit"] = self._flux_unit.to_string() if name == "flux" else (
            (self._flux_unit**-2).to_string())

    def append(self, flux: np.ndarray, ivar: np.ndarray | None = None) -> None:
        """Write the next ``len(flux)`` rows (and their ``ivar`` if the file has one)."""
        if self._file is None:
            raise GridFileError("GridWriter.append() must be called inside its 'with' block")
        flux = np.asarray(flux)
        start, stop = self.n_written, self.n_written + flux.shape[0]
        if stop > self.n_spectra:
            raise GridError(f"too many rows: {stop} written, the grid has {self.n_spectra}")
        self._file["flux"][start:stop] = flux
        if (ivar is None) != (self._ivar_dtype is None):
            raise GridError("ivar must be given exactly when the writer was created with "
                            "ivar_dtype")
        if ivar is not None:
            self._file["ivar"][start:stop] = ivar
        self.n_written = stop

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if exc_type is None and self.n_written != self.n_spectra:
            self._partial.unlink(missing_ok=True)
            raise GridError(f"only {self.n_written} of {self.n_spectra} rows were written to "
                            f"{str(self.path)!r}; the file was not created")
        if exc_type is not None:
            self._partial.unlink(missing_ok=True)
            return
        os.replace(self._partial, self.path)


def _stellarai_version() -> str:
    from .. import __version__

    return __version__


def _to_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise GridError(f"{what} must be JSON-serializable: {exc}") from exc


def _from_json(text: Any, what: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise GridFileError(f"attribute {what!r} of {str(path)!r} is not valid JSON: {exc}"
                            ) from exc


def _check_header(f: h5py.File, path: Path) -> LabelSpace:
    where = repr(str(path))
    marker = f.attrs.get("format")
    if marker != FORMAT:
        raise GridFileError(f"{where} is not a stellarai grid file: root attribute 'format' is "
                            f"{marker!r}, expected {FORMAT!r}")
    version = f.attrs.get("format_version")
    if not isinstance(version, (int, np.integer)) or version < 1:
        raise GridFileError(f"{where} has an invalid 'format_version' {version!r}")
    if version > FORMAT_VERSION:
        raise GridFileError(
            f"{where} uses grid format version {int(version)}, written by a newer stellarai "
            f"({f.attrs.get('stellarai_version')!r}); this stellarai "
            f"({_stellarai_version()}) reads versions up to {FORMAT_VERSION}: upgrade stellarai"
        )
    for name in _REQUIRED:
        if not isinstance(f.get(name), h5py.Dataset):
            raise GridFileError(f"{where} has no {name!r} dataset; a grid file needs "
                                f"{list(_REQUIRED)}")
    try:
        space = LabelSpace.from_dict(_from_json(f.attrs.get("label_space"), "label_space", path))
    except ValueError as exc:  # LabelError is a ValueError
        raise GridFileError(f"{where} has an unusable 'label_space' attribute: {exc}") from exc
    wavelength_shape, labels_shape = f["wavelength"].shape, f["labels"].shape
    if len(wavelength_shape) != 1 or len(labels_shape) != 2 or labels_shape[1] != len(space):
        raise GridFileError(f"{where}: 'wavelength' must be 1-d and 'labels' (n, {len(space)}), "
                            f"got shapes {wavelength_shape} and {labels_shape}")
    expected = (labels_shape[0], wavelength_shape[0])
    for name in ("flux", "ivar"):
        if name in f and f[name].shape != expected:
            raise GridFileError(f"{where}: dataset {name!r} has shape {f[name].shape}, expected "
                                f"{expected} from 'labels' and 'wavelength'")
    return space


def read_grid_parts(path: str | os.PathLike[str], *, lazy: bool = False) -> GridParts:
    """Read a grid file; with ``lazy=True`` the flux (and ivar) stay in the file.

    Raises
    ------
    GridFileError
        If the file is missing, not HDF5, corrupt or truncated, lacks the format marker or a
        dataset, has inconsistent shapes, or comes from a newer format version.
    """
    path = Path(path)
    f = H5Source.open(path)
    keep_open = False
    try:
        space = _check_header(f, path)
        labels = f["labels"][()]
        wavelength = f["wavelength"][()]
        flux_unit = u.Unit(f["flux"].attrs.get("unit", ""))
        provenance = _from_json(f.attrs.get("provenance", "{}"), "provenance", path)
        if lazy:
            source = H5Source(path, f)
            flux: np.ndarray | LazyRows = LazyRows(source, "flux")
            ivar = LazyRows(source, "ivar") if "ivar" in f else None
            keep_open = True
        else:
            source = None
            flux = f["flux"][()]
            ivar = f["ivar"][()] if "ivar" in f else None
    except (OSError, ValueError, KeyError) as exc:
        if isinstance(exc, GridFileError):
            raise
        raise GridFileError(f"could not read grid file {str(path)!r} (corrupt or truncated?): "
                            f"{exc}") from exc
    finally:
        if not keep_open:
            f.close()
    return GridParts(space, labels, wavelength, flux, ivar, flux_unit, provenance, source)
