"""`SpectralGrid`: the labeled training grid every stellarai trainer reads."""

from __future__ import annotations

import copy
import datetime
import json
import os
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import astropy.units as u
import numpy as np
import torch
from astropy.nddata import InverseVariance
from astropy.table import QTable, Table
from specutils import Spectrum

from ..labels import LabelSpace
from ..spectra.spectral_axis import Medium, to_vacuum_angstrom
from .errors import GridError
from .hdf5 import Compression, GridWriter, read_grid_parts
from .lazy import H5Source, LazyRows, row_index
from .splits import split_indices

if TYPE_CHECKING:
    from .dataset import GridDataset

__all__ = ["SpectralGrid", "make_provenance"]

_STREAM_ROWS = 256  # rows per block when streaming a lazy grid (checks, writes, load)

Rows = np.ndarray | LazyRows


def make_provenance(generator: str, **settings: Any) -> dict[str, Any]:
    """A provenance dict: generator, stellarai version, UTC creation time, settings.

    Parameters
    ----------
    generator : str
        What made the grid (``"stellarai.grids.generate_grid"``, ``"gollum.PHOENIXGrid"``).
    **settings
        Further JSON-serializable entries (seed, sampling method, synthesizer settings).

    Examples
    --------
    >>> info = make_provenance("arrays", seed=1)
    >>> sorted(info)
    ['created', 'generator', 'seed', 'stellarai_version']
    """
    from .. import __version__

    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return {"generator": generator, "stellarai_version": __version__, "created": created,
            **settings}


def _as_rows(values: Any, name: str) -> tuple[Rows, u.UnitBase | None]:
    """Flux-like input as a 2-d float array (or lazy rows), plus its unit if a Quantity."""
    if isinstance(values, LazyRows):
        return values, None
    unit = None
    if isinstance(values, u.Quantity):
        unit, values = values.unit, values.value
    elif isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise GridError(f"{name} must be a real numeric array, got dtype {array.dtype}")
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    if array.ndim != 2:
        raise GridError(f"{name} must have shape (n_spectra, n_pix), got shape {array.shape}")
    return array, unit


def _read(rows: Rows, positions: np.ndarray | None = None) -> np.ndarray:
    if isinstance(rows, LazyRows):
        return rows.read(positions)
    return rows if positions is None else rows[positions]


def _take(rows: Rows | None, positions: np.ndarray) -> Rows | None:
    if rows is None:
        return None
    return rows.take(positions) if isinstance(rows, LazyRows) else rows[positions]


class SpectralGrid:
    r"""Spectra with their labels on one wavelength grid: what emulators train on.

    Parameters
    ----------
    wavelength : `~astropy.units.Quantity`
        ``(n_pix,)`` spectral axis, strictly increasing (any spectral unit; stored as vacuum
        Angstrom).
    flux : array-like, `~astropy.units.Quantity` or `~stellarai.grids.lazy.LazyRows`
        ``(n_spectra, n_pix)`` flux, normalized (dimensionless) or not. A numpy array is
        kept, not copied; float32 and float64 are kept as they are.
    labels : `~astropy.table.QTable`, mapping or array
        One row per spectrum: a table or mapping of label columns (Quantities, or numbers
        in the labels' units), or an ``(n_spectra, n_labels)`` array in ``label_space``
        order and canonical units.
    label_space : `~stellarai.labels.LabelSpace`
        The labels' names, units and bounds; every label must lie within the bounds.
        :meth:`from_arrays` can infer one.
    ivar : array-like, optional
        ``(n_spectra, n_pix)`` inverse variance of the flux (non-negative).
    flux_unit : unit, optional
        Unit of ``flux`` when it is not a Quantity (default: dimensionless).
    provenance : dict, optional
        JSON-serializable record of how the grid was made; ``stellarai_version`` and
        ``created`` are added when missing (see :func:`make_provenance`).
    medium : {"vacuum", "air"}
        Medium of a wavelength axis given in air (converted to vacuum).

    Raises
    ------
    GridError
        If shapes disagree, the wavelength is not finite and strictly increasing, or a flux
        row holds NaN or infinite values (the message names the row and its labels).
    LabelError
        If a label is missing, has the wrong unit, or lies outside the label space.

    Notes
    -----
    ``grid[i]``, ``grid[a:b]``, ``grid[[i, j]]`` and ``grid[mask]`` return sub-grids (an
    int gives a grid of one spectrum; use :meth:`spectrum` for a `~specutils.Spectrum`).
    A grid read with ``SpectralGrid.read(path, lazy=True)`` keeps the file open and reads
    flux rows on demand, as do its sub-grids and splits; close it with :meth:`close` or a
    ``with`` block.

    Examples
    --------
    >>> import astropy.units as u
    >>> import numpy as np
    >>> from stellarai.labels import LabelSpace
    >>> space = LabelSpace.default().subset(["teff", "logg"])
    >>> grid = SpectralGrid(np.linspace(5000, 5001, 4) * u.AA, np.ones((3, 4)),
    ...                     {"teff": [4000, 5000, 6000] * u.K, "logg": [4.5, 4.0, 3.5]}, space)
    >>> grid
    <SpectralGrid: 3 spectra x 4 px, 5000-5001 Angstrom (vacuum)
      labels: teff [K], logg [dex(cm / s2)]
      flux: dimensionless, float64, in memory>
    >>> grid[1:].labels["teff"]
    <Quantity [5000., 6000.] K>
    """

    def __init__(
        self,
        wavelength: u.Quantity,
        flux: Any,
        labels: Any,
        label_space: LabelSpace,
        *,
        ivar: Any = None,
        flux_unit: Any = None,
        provenance: Mapping[str, Any] | None = None,
        medium: Medium = "vacuum",
    ) -> None:
        if not isinstance(label_space, LabelSpace):
            raise GridError(f"label_space must be a LabelSpace, got {type(label_space).__name__}")
        if not isinstance(wavelength, u.Quantity):
            raise GridError(f"wavelength must be a Quantity with a spectral unit (e.g. u.AA), got "
                            f"{type(wavelength).__name__}")
        flux, unit = _as_rows(flux, "flux")
        if unit is not None and flux_unit is not None and u.Unit(flux_unit) != unit:
            raise GridError(f"flux is a Quantity in {unit} but flux_unit={flux_unit!r} was given")
        label_array = self._parse_labels(labels, label_space)
        self._set(
            label_space, label_array, to_vacuum_angstrom(wavelength, medium, name="wavelength"),
            flux, None if ivar is None else _as_rows(ivar, "ivar")[0],
            u.Unit(unit or flux_unit or u.one), provenance,
        )
        self._validate()
        if not isinstance(self._flux, LazyRows):
            self.check_flux()

    @staticmethod
    def _parse_labels(labels: Any, space: LabelSpace) -> np.ndarray:
        if isinstance(labels, (Table, Mapping)):
            return space.parse_batch(labels)
        array = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else labels
        if isinstance(array, u.Quantity):
            raise GridError("labels given as one Quantity array have no names; pass a QTable or "
                            "a dict of label columns")
        array = np.array(array, dtype=np.float64)
        if array.ndim != 2 or array.shape[1] != len(space):
            raise GridError(f"labels as an array must have shape (n_spectra, {len(space)}) for "
                            f"labels {list(space.names)}, got shape {array.shape}")
        space.check(array)
        return array

    def _set(self, space: LabelSpace, labels: np.ndarray, wavelength: np.ndarray, flux: Rows,
             ivar: Rows | None, flux_unit: u.UnitBase, provenance: Any,
             source: H5Source | None = None) -> None:
        if provenance is None:
            provenance = {}
        if not isinstance(provenance, Mapping):
            raise GridError(f"provenance must be a dict, got {type(provenance).__name__}")
        try:  # a JSON round trip: a private, serializable copy
            provenance = json.loads(json.dumps(dict(provenance)))
        except (TypeError, ValueError) as exc:
            raise GridError(f"provenance must be JSON-serializable: {exc}") from exc
        stamp = make_provenance("")
        for key in ("stellarai_version", "created"):
            provenance.setdefault(key, stamp[key])
        labels.flags.writeable = False
        self._space, self._labels, self._flux, self._ivar = space, labels, flux, ivar
        self._wavelength, self._flux_unit = wavelength, flux_unit
        self._provenance, self._source = provenance, source

    @classmethod
    def _from_parts(cls, space: LabelSpace, labels: np.ndarray, wavelength: np.ndarray,
                    flux: Rows, ivar: Rows | None, flux_unit: u.UnitBase,
                    provenance: dict[str, Any], source: H5Source | None) -> SpectralGrid:
        grid = cls.__new__(cls)
        grid._set(space, labels, wavelength, flux, ivar, flux_unit, provenance, source)
        return grid

    def _validate(self) -> None:
        wavelength, (n, n_pix) = self._wavelength, self._flux.shape
        if wavelength.ndim != 1 or wavelength.size == 0:
            raise GridError(f"wavelength must be a non-empty 1-d array, got shape "
                            f"{wavelength.shape}")
        if not np.all(np.isfinite(wavelength)):
            bad = int(np.flatnonzero(~np.isfinite(wavelength))[0])
            raise GridError(f"wavelength must be finite, got {wavelength[bad]} at pixel {bad}")
        steps = np.diff(wavelength)
        if np.any(steps <= 0) or wavelength[0] <= 0:
            bad = int(np.flatnonzero(steps <= 0)[0]) if np.any(steps <= 0) else -1
            raise GridError(
                "wavelength must be positive and strictly increasing (sort the pixels, or "
                "reverse a frequency axis); " + (f"pixel {bad + 1} ({wavelength[bad + 1]:.6g}"
                f" Angstrom) follows {wavelength[bad]:.6g} Angstrom" if bad >= 0 else
                f"first value {wavelength[0]:.6g} Angstrom")
            )
        if n != len(self._labels):
            raise GridError(f"labels have {len(self._labels)} rows but flux has {n} rows "
                            "(one label row per spectrum)")
        if n_pix != wavelength.size:
            raise GridError(f"flux has {n_pix} pixels per spectrum but wavelength has "
                            f"{wavelength.size} values")
        if self._ivar is not None and self._ivar.shape != self._flux.shape:
            raise GridError(f"ivar must have the shape of flux {self._flux.shape}, got "
                            f"{self._ivar.shape}")

    def check_flux(self) -> None:
        """Check that every flux value is finite and every ivar value finite and ≥ 0.

        Run on construction for in-memory flux; a lazy grid's file is streamed only when
        this is called. Raises `GridError` naming the first bad row and its labels.
        """
        for name, rows in (("flux", self._flux), ("ivar", self._ivar)):
            if rows is None:
                continue
            blocks = rows.iter_blocks(_STREAM_ROWS) if isinstance(rows, LazyRows) else [rows]
            start = 0
            for block in blocks:
                bad = ~np.isfinite(block) | ((block < 0) if name == "ivar" else False)
                bad_rows = np.flatnonzero(bad.any(axis=1))
                if bad_rows.size:
                    row = start + int(bad_rows[0])
                    labels = ", ".join(f"{k}={v:.6g}" for k, v in
                                       zip(self._space.names, self._labels[row], strict=True))
                    what = "NaN or infinite" if name == "flux" else "NaN, infinite or negative"
                    raise GridError(
                        f"{name} row {row} ({labels}) has {int(bad[bad_rows[0]].sum())} "
                        f"{what} values of {block.shape[1]}"
                        + (f" (and {bad_rows.size - 1} more rows in this block)"
                           if bad_rows.size > 1 else "")
                    )
                start += len(block)

    # ------------------------------------------------------------------ properties

    @property
    def label_space(self) -> LabelSpace:
        """The labels' :class:`~stellarai.labels.LabelSpace`."""
        return self._space

    @property
    def labels(self) -> QTable:
        """The labels as a new `~astropy.table.QTable` with units, one row per spectrum."""
        return self._space.to_table(self._labels)

    @property
    def label_array(self) -> np.ndarray:
        """Labels as a read-only float64 array ``(n_spectra, n_labels)``, canonical units."""
        return self._labels

    @property
    def wavelength(self) -> u.Quantity:
        """Vacuum wavelength in Angstrom, ``(n_pix,)``."""
        return u.Quantity(self._wavelength, u.AA, copy=True)

    @property
    def flux(self) -> np.ndarray | LazyRows:
        """``(n_spectra, n_pix)`` flux in :attr:`flux_unit`: an array, or `LazyRows`."""
        return self._flux

    @property
    def ivar(self) -> np.ndarray | LazyRows | None:
        """Inverse variance of the flux (same shape), or None."""
        return self._ivar

    @property
    def flux_unit(self) -> u.UnitBase:
        """Unit of the flux (dimensionless for normalized spectra)."""
        return self._flux_unit

    @property
    def provenance(self) -> dict[str, Any]:
        """How the grid was made: generator, seed, versions, creation time, settings."""
        return self._provenance

    @property
    def n_pix(self) -> int:
        """Pixels per spectrum."""
        return self._wavelength.size

    @property
    def is_lazy(self) -> bool:
        """True if the flux is read from a file on demand."""
        return isinstance(self._flux, LazyRows)

    def __len__(self) -> int:
        return len(self._labels)

    def __getitem__(self, key: Any) -> SpectralGrid:
        rows = row_index(key, len(self))
        return self._from_parts(self._space, self._labels[rows], self._wavelength,
                                _take(self._flux, rows), _take(self._ivar, rows),
                                self._flux_unit, self._provenance, self._source)

    def __repr__(self) -> str:
        labels = ", ".join(f"{label.name} [{label.unit.to_string() or 'dimensionless'}]"
                           for label in self._space)
        where = (f"lazy from {str(self._source.path)!r}" if self.is_lazy else "in memory")
        unit = self._flux_unit.to_string() or "dimensionless"
        return (f"<SpectralGrid: {len(self)} spectra x {self.n_pix} px, "
                f"{self._wavelength[0]:.6g}-{self._wavelength[-1]:.6g} Angstrom (vacuum)\n"
                f"  labels: {labels}\n"
                f"  flux: {unit}, {self._flux.dtype}, {where}>")

    # ------------------------------------------------------------------ views

    def spectrum(self, index: int) -> Spectrum:
        """Spectrum ``index`` as a `~specutils.Spectrum`, labels in ``meta["labels"]``.

        Examples
        --------
        >>> import astropy.units as u, numpy as np
        >>> from stellarai.labels import LabelSpace
        >>> grid = SpectralGrid([1.0, 1.1] * u.um, [[1.0, 0.5]], {"teff": [5000] * u.K},
        ...                     LabelSpace.default().subset(["teff"]))
        >>> spec = grid.spectrum(0)
        >>> spec.flux, spec.meta["labels"]
        (<Quantity [1. , 0.5]>, {'teff': <Quantity 5000. K>})
        """
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an int, got {index!r}")
        row = int(row_index(index, len(self))[0])
        flux = _read(self._flux, np.array([row]))[0]
        uncertainty = None
        if self._ivar is not None:
            uncertainty = InverseVariance(_read(self._ivar, np.array([row]))[0])
        labels = {label.name: self._labels[row, j] * label.unit
                  for j, label in enumerate(self._space)}
        return Spectrum(flux=flux * self._flux_unit, spectral_axis=self.wavelength,
                        uncertainty=uncertainty,
                        meta={"labels": labels, "provenance": copy.deepcopy(self._provenance)})

    def split(
        self, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
    ) -> tuple[SpectralGrid, ...]:
        """Split into disjoint sub-grids (train, validation, test) by a seeded shuffle.

        Parameters
        ----------
        fractions : sequence of float
            Share of the spectra in each part (non-negative, summing to 1).
        seed : int
            Seed of the shuffle: the same seed gives the same split.

        Returns
        -------
        tuple of SpectralGrid
            One sub-grid per fraction, covering the grid; rows keep their original order
            within a part. Lazy grids give lazy parts. See
            :func:`~stellarai.grids.split_indices` for the counts.

        Examples
        --------
        >>> import astropy.units as u, numpy as np
        >>> from stellarai.labels import LabelSpace
        >>> grid = SpectralGrid([1.0, 2.0] * u.um, np.ones((10, 2)),
        ...                     {"teff": np.linspace(4000, 6000, 10) * u.K},
        ...                     LabelSpace.default().subset(["teff"]))
        >>> [len(part) for part in grid.split((0.8, 0.1, 0.1), seed=1)]
        [8, 1, 1]
        """
        return tuple(self[rows] for rows in split_indices(len(self), fractions, seed))

    def dataset(self, *, scaled: bool = True, dtype: torch.dtype = torch.float32,
                ivar: bool = False) -> GridDataset:
        """A `torch.utils.data.Dataset` of ``(labels, flux)`` tensors (see `GridDataset`)."""
        from .dataset import GridDataset

        return GridDataset(self, scaled=scaled, dtype=dtype, ivar=ivar)

    # ------------------------------------------------------------------ files

    def write(self, path: str | os.PathLike[str], *, overwrite: bool = False,
              compression: Compression = None) -> None:
        """Write the grid to an HDF5 file (layout in :mod:`stellarai.grids.hdf5`).

        Parameters
        ----------
        path : str or pathlib.Path
            Output file.
        overwrite : bool
            Replace an existing file (default False: raise `GridFileError`).
        compression : {None, "gzip", "lzf"}
            Compression of the flux; values round-trip bit-identical either way.
        """
        ivar_dtype = None if self._ivar is None else self._ivar.dtype
        with GridWriter(path, self._space, self._labels, self._wavelength, self._flux_unit,
                        self._provenance, self._flux.dtype, ivar_dtype=ivar_dtype,
                        overwrite=overwrite, compression=compression) as writer:
            for start in range(0, len(self), _STREAM_ROWS):
                rows = np.arange(start, min(start + _STREAM_ROWS, len(self)))
                writer.append(_read(self._flux, rows),
                              None if self._ivar is None else _read(self._ivar, rows))

    @classmethod
    def read(cls, path: str | os.PathLike[str], *, lazy: bool = False) -> SpectralGrid:
        """Read a grid written by :meth:`write` (or by `~stellarai.grids.generate_grid`).

        Parameters
        ----------
        path : str or pathlib.Path
            The HDF5 file.
        lazy : bool
            If False (default) read everything into memory and close the file. If True keep
            the file open and read flux rows on demand (for grids larger than memory); close
            it with :meth:`close` or use the grid in a ``with`` block. The flux of a lazy
            grid is not scanned for NaN on opening (:meth:`check_flux` does it).

        Raises
        ------
        GridFileError
            For a missing, corrupt, truncated or foreign file, a missing dataset, or a file
            from a newer stellarai.
        """
        parts = read_grid_parts(path, lazy=lazy)
        grid = cls._from_parts(parts.label_space, parts.labels, parts.wavelength, parts.flux,
                               parts.ivar, parts.flux_unit, parts.provenance, parts.source)
        try:
            grid._validate()
            parts.label_space.check(parts.labels)
            if not lazy:
                grid.check_flux()
        except ValueError:
            grid.close()
            raise
        return grid

    def load(self) -> SpectralGrid:
        """An in-memory copy of this grid (reads a lazy grid's rows; the file may be closed)."""
        ivar = None if self._ivar is None else np.array(_read(self._ivar))
        return self._from_parts(self._space, self._labels, self._wavelength,
                                np.array(_read(self._flux)), ivar, self._flux_unit,
                                self._provenance, None)

    def close(self) -> None:
        """Close the file of a lazy grid (and of every sub-grid sharing it); else no-op."""
        if self._source is not None:
            self._source.close()

    def __enter__(self) -> SpectralGrid:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------------ adapters

    @classmethod
    def from_arrays(cls, wavelength: u.Quantity, flux: Any, labels: Any,
                    label_space: LabelSpace | None = None, **kwargs: Any) -> SpectralGrid:
        """Build a grid from arrays, inferring the label space if not given.

        See :func:`stellarai.grids.adapters.from_arrays`.
        """
        from .adapters import from_arrays

        return from_arrays(wavelength, flux, labels, label_space, **kwargs)

    @classmethod
    def from_gollum(cls, phoenix_grid: Any, **kwargs: Any) -> SpectralGrid:
        """Convert a ``gollum.phoenix.PHOENIXGrid``; see :func:`~stellarai.grids.from_gollum`."""
        from .adapters import from_gollum

        return from_gollum(phoenix_grid, **kwargs)

    @classmethod
    def from_payne_npz(cls, path: str | os.PathLike[str], label_names: Sequence[str] | None = None,
                       **kwargs: Any) -> SpectralGrid:
        """Read The Payne's training ``.npz``; see :func:`~stellarai.grids.from_payne_npz`."""
        from .adapters import from_payne_npz

        return from_payne_npz(path, label_names, **kwargs)
