"""Building a :class:`~stellarai.grids.SpectralGrid` from other people's grids.

- :func:`from_arrays`: wavelength, flux and labels you already hold;
- :func:`from_gollum`: a ``gollum.phoenix.PHOENIXGrid`` read from a PHOENIX library on disk;
- :func:`from_payne_npz`: the ``.npz`` training spectra of The Payne (Ting et al. 2019).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np

from ..errors import LabelError
from ..labels import LabelSpace
from ..spectra.spectral_axis import Medium
from .continuum import upper_envelope
from .errors import GridError, GridFileError, require_attributes
from .grid import SpectralGrid, make_provenance
from .infer import infer_label_space

__all__ = ["from_arrays", "from_gollum", "from_payne_npz"]

_PHOENIX_LABELS = ("teff", "logg", "feh")


def from_arrays(
    wavelength: u.Quantity,
    flux: Any,
    labels: Any,
    label_space: LabelSpace | None = None,
    *,
    ivar: Any = None,
    flux_unit: Any = None,
    provenance: dict[str, Any] | None = None,
    medium: Medium = "vacuum",
) -> SpectralGrid:
    """Build a grid from arrays you hold.

    Parameters
    ----------
    wavelength : `~astropy.units.Quantity`
        ``(n_pix,)`` increasing spectral axis (any spectral unit).
    flux : array-like or `~astropy.units.Quantity`
        ``(n_spectra, n_pix)``.
    labels : `~astropy.table.QTable`, mapping or array
        Label columns by name (Quantities or numbers in the canonical units of
        :mod:`stellarai.labels`), or an ``(n_spectra, n_labels)`` array in the order and
        units of ``label_space``.
    label_space : LabelSpace, optional
        If omitted, inferred by :func:`~stellarai.grids.infer_label_space`: canonical units
        by name and the tightest bounds holding the labels.
    ivar, flux_unit, provenance, medium
        As for :class:`~stellarai.grids.SpectralGrid`; ``provenance`` defaults to
        ``{"generator": "arrays", ...}``.

    Examples
    --------
    >>> import astropy.units as u, numpy as np
    >>> grid = from_arrays(np.linspace(1.5, 1.6, 5) * u.um, np.ones((2, 5)),
    ...                    {"teff": [4000, 5000] * u.K, "feh": [0.0, -1.0]})
    >>> grid.label_space
    <LabelSpace: 2 labels
      teff  K    [4000, 5000]
      feh   dex  [-1, 0]>
    """
    if label_space is None:
        label_space = infer_label_space(labels)
    return SpectralGrid(wavelength, flux, labels, label_space, ivar=ivar, flux_unit=flux_unit,
                        provenance=provenance or make_provenance("arrays"), medium=medium)


def from_gollum(
    phoenix_grid: Any,
    *,
    normalize: bool = False,
    window: u.Quantity = 50 * u.AA,
    label_space: LabelSpace | None = None,
    dtype: Any = np.float64,
) -> SpectralGrid:
    """Convert a ``gollum.phoenix.PHOENIXGrid`` into a grid.

    Parameters
    ----------
    phoenix_grid : gollum.phoenix.PHOENIXGrid
        A grid read by gollum (``PHOENIXGrid(teff_range, logg_range, Z_range,
        path=".../", wl_lo=..., wl_hi=...)``).
    normalize : bool
        False (default): keep PHOENIX's physical flux (erg / (s cm³)). True: divide each
        spectrum by its upper-envelope continuum
        (:func:`~stellarai.grids.continuum.upper_envelope`), giving dimensionless flux near 1
        between lines.
    window : `~astropy.units.Quantity`
        Width of the continuum window (default 50 Å), converted to pixels with the median
        pixel spacing; wider than the broadest line to be removed.
    label_space : LabelSpace, optional
        Space of the labels ``teff``, ``logg``, ``feh`` (in this order). By default the
        tightest bounds holding the grid points (:func:`~stellarai.grids.infer_label_space`).
    dtype : numpy dtype
        dtype of the stored flux (default float64, as gollum reads it).

    Returns
    -------
    SpectralGrid
        Labels from ``phoenix_grid.grid_points`` (PHOENIX's ``Z`` becomes ``feh``). The
        spectra returned by ``phoenix_grid[i]`` are not used, because gollum 0.4 gives every
        one of them the same ``meta`` dict (the last one indexed wins). PHOENIX wavelengths
        are in vacuum.

    Raises
    ------
    GridError
        If the object lacks ``grid_points``, ``flux`` or ``spectral_axis``, or its spectra
        do not share one wavelength grid.
    """
    require_attributes(phoenix_grid, ("grid_points", "flux", "spectral_axis"), "phoenix_grid",
                       "a gollum PHOENIXGrid")
    points = np.array(phoenix_grid.grid_points, dtype=np.float64).reshape(-1, 3)
    axis = u.Quantity(phoenix_grid.spectral_axis)
    axis = axis.reshape(-1, axis.shape[-1])
    if not np.all(axis == axis[0]):
        raise GridError("the spectra of phoenix_grid do not share one wavelength grid")
    flux = u.Quantity(phoenix_grid.flux)
    values = np.asarray(flux.value, dtype=dtype).reshape(len(points), -1)
    unit = flux.unit
    wavelength = axis[0]
    pixels = 0
    if normalize:
        step = np.median(np.diff(wavelength.to_value(u.AA)))
        pixels = max(1, int(round(u.Quantity(window).to_value(u.AA) / step)))
        values = (values / upper_envelope(values, pixels)).astype(dtype, copy=False)
        unit = u.one
    table = {name: points[:, j] for j, name in enumerate(_PHOENIX_LABELS)}
    provenance = make_provenance(
        "gollum.phoenix.PHOENIXGrid", n_spectra=len(points), normalized=bool(normalize),
        continuum=("upper_envelope" if normalize else None),
        continuum_window_pixels=pixels or None, native_flux_unit=flux.unit.to_string(),
    )
    return SpectralGrid(wavelength, values, table, label_space or infer_label_space(table),
                        flux_unit=unit, provenance=provenance)


def _load_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except FileNotFoundError as exc:
        raise GridFileError(f"no such file: {str(path)!r}") from exc
    except (OSError, ValueError, EOFError) as exc:
        raise GridFileError(f"{str(path)!r} is not a readable .npz archive of plain arrays "
                            f"(object arrays are refused, nothing is unpickled): {exc}") from exc


def _orient(array: np.ndarray, rows: int, name: str, what: str) -> np.ndarray:
    """``array`` as (rows, ...): transposed if it is stored the other way round."""
    if array.ndim != 2:
        raise GridError(f"{name!r} must be a 2-d array, got shape {array.shape}")
    if array.shape[0] == rows:
        return array
    if array.shape[1] == rows:
        return array.T
    raise GridError(f"{name!r} has shape {array.shape}; neither axis matches {what} ({rows})")


def from_payne_npz(
    path: str | os.PathLike[str],
    label_names: Sequence[str] | None = None,
    *,
    wavelength: u.Quantity | str | os.PathLike[str] | None = None,
    label_space: LabelSpace | None = None,
    flux_unit: Any = u.one,
) -> SpectralGrid:
    r"""Read training spectra in the ``.npz`` layout of The Payne.

    The Payne (``tingyuansen/The_Payne``, ``utils.load_training_data``) keeps its training
    set in ``kurucz_training_spectra.npz`` with ``spectra`` of shape ``(n_spectra, n_pix)``
    and ``labels`` of shape ``(n_labels, n_spectra)`` (it reads ``labels.T``), and the
    wavelength grid in a separate ``apogee_wavelength.npz`` (key ``wavelength``, vacuum
    Angstrom). This reader accepts that layout and its obvious variants:

    - ``spectra``: ``(n_spectra, n_pix)``, or ``(n_pix, n_spectra)`` (transposed when only
      that reading matches the wavelength length);
    - ``labels``: ``(n_labels, n_spectra)`` as The Payne stores it, or ``(n_spectra,
      n_labels)``; a square array is read The Payne's way;
    - ``wavelength``: a key of the same file, or the ``wavelength`` argument;
    - ``label_names``: the argument, else a ``label_names`` key (an array of strings).

    Everything is loaded with ``allow_pickle=False``.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.npz`` file.
    label_names : sequence of str, optional
        Names of the labels in file order, in stellarai's naming scheme (``"teff"``,
        ``"logg"``, ``"vmic"``, ``"c_h"``, ...); required if the file has no
        ``label_names``.
    wavelength : Quantity, str or path, optional
        The wavelength grid if the file has none: a Quantity, or the path of an ``.npz``
        with a ``wavelength`` key in Angstrom (The Payne's ``apogee_wavelength.npz``).
    label_space : LabelSpace, optional
        Label space (names must match ``label_names``); inferred by default.
    flux_unit : unit
        Unit of the spectra (default dimensionless: The Payne's spectra are normalized).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "payne.npz")
    >>> np.savez(path, wavelength=np.linspace(15100.0, 15200.0, 6), spectra=np.ones((3, 6)),
    ...          labels=np.array([[4000.0, 4500.0, 5000.0], [4.5, 2.5, 3.0]]))
    >>> grid = from_payne_npz(path, ["teff", "logg"])
    >>> grid.labels["logg"]
    <Dex [4.5, 2.5, 3. ] dex(cm / s2)>
    """
    data = _load_npz(path)
    for key in ("spectra", "labels"):
        if key not in data:
            raise GridFileError(f"{str(path)!r} has no {key!r} array; found {sorted(data)}")
    if label_names is None:
        if "label_names" not in data:
            raise GridError(f"{str(path)!r} has no 'label_names' array: pass label_names=[...] "
                            "in file order (e.g. ['teff', 'logg', 'vmic', 'c_h', ...])")
        label_names = [str(name) for name in data["label_names"]]
    names = [label_names] if isinstance(label_names, str) else list(label_names)
    if wavelength is None:
        if "wavelength" not in data:
            raise GridError(f"{str(path)!r} has no 'wavelength' array: pass wavelength= (a "
                            "Quantity, or the path of an .npz with a 'wavelength' key)")
        wavelength = data["wavelength"] * u.AA
    elif not isinstance(wavelength, u.Quantity):
        grid_file = _load_npz(wavelength)
        if "wavelength" not in grid_file:
            raise GridFileError(f"{str(wavelength)!r} has no 'wavelength' array")
        wavelength = grid_file["wavelength"] * u.AA
    n_pix = wavelength.size
    spectra = data["spectra"]
    if spectra.ndim == 2 and spectra.shape[1] != n_pix and spectra.shape[0] == n_pix:
        spectra = spectra.T
    labels = data["labels"]
    if labels.ndim == 1 and len(names) == 1:
        labels = labels[:, None]
    if labels.ndim == 2 and labels.shape[0] == len(names):  # The Payne: (n_labels, n)
        labels = labels.T
    labels = _orient(labels, len(spectra), "labels", "the number of spectra")
    if labels.shape[1] != len(names):
        raise LabelError(f"labels in {str(path)!r} have {labels.shape[1]} columns but "
                         f"{len(names)} label_names were given: {names}")
    table = {name: labels[:, j] for j, name in enumerate(names)}
    if label_space is not None and list(label_space.names) != names:
        raise LabelError(f"label_space names {list(label_space.names)} differ from "
                         f"label_names {names}")
    provenance = make_provenance("the_payne.npz", source=Path(path).name)
    return SpectralGrid(wavelength, spectra, table, label_space or infer_label_space(table),
                        flux_unit=flux_unit, provenance=provenance)
