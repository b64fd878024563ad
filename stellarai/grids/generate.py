"""Filling a grid with a synthesizer, in batches, with a progress bar.

The synthesizer is anything with this interface (``stellarai.synth.Synthesizer`` has it):

- ``label_space``: a :class:`~stellarai.labels.LabelSpace`;
- ``wavelength``: a `~astropy.units.Quantity` ``(n_pix,)``, vacuum wavelength;
- ``flux(labels)``: takes a float64 `torch.Tensor` ``(n, n_labels)`` of labels in
  ``label_space`` order and canonical units and returns ``(n, n_pix)`` normalized flux
  (a tensor, or an array);
- optionally ``settings``: a JSON-serializable mapping, recorded in the grid's provenance.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Iterator, Mapping
from functools import partial
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..labels import LabelSpace
from ..spectra.spectral_axis import to_vacuum_angstrom
from .errors import GridError, require_attributes
from .grid import SpectralGrid, make_provenance
from .hdf5 import Compression, GridWriter
from .sampling import Method, sample_labels

__all__ = ["fill_grid", "generate_grid"]


def _describe(synthesizer: Any) -> dict[str, Any]:
    cls = type(synthesizer)
    info: dict[str, Any] = {"class": f"{cls.__module__}.{cls.__qualname__}"}
    settings = getattr(synthesizer, "settings", None)
    if isinstance(settings, Mapping):
        try:
            info["settings"] = json.loads(json.dumps(dict(settings)))
        except (TypeError, ValueError):
            info["settings"] = repr(settings)  # not JSON: kept as text rather than lost
    return info


def _plain(value: Any) -> float | str:
    """A number as a float, anything else (a Quantity) as its string, for provenance."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    return str(value)


def _check_synthesizer(synthesizer: Any) -> tuple[LabelSpace, np.ndarray]:
    require_attributes(synthesizer, ("label_space", "wavelength", "flux"), "synthesizer",
                       "a synthesizer (label_space, wavelength and flux(labels))")
    if not isinstance(synthesizer.label_space, LabelSpace):
        raise GridError(f"synthesizer.label_space must be a LabelSpace, got "
                        f"{type(synthesizer.label_space).__name__}")
    return synthesizer.label_space, to_vacuum_angstrom(synthesizer.wavelength,
                                                       name="synthesizer.wavelength")


def _flux_without_own_progress_bar(synthesizer: Any) -> Any:
    """``synthesizer.flux``, told not to draw its own bar where it takes ``progress=``.

    The grid's bar already counts the spectra; a second one per batch would clutter it.
    """
    try:
        accepts_progress = "progress" in inspect.signature(synthesizer.flux).parameters
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        accepts_progress = False
    return partial(synthesizer.flux, progress=False) if accepts_progress else synthesizer.flux


def _synthesize(synthesizer: Any, labels: np.ndarray, start: int, n_pix: int,
                dtype: np.dtype) -> np.ndarray:
    with torch.no_grad():
        flux = _flux_without_own_progress_bar(synthesizer)(
            torch.tensor(labels, dtype=torch.float64))
    if isinstance(flux, torch.Tensor):
        flux = flux.detach().cpu().numpy()
    flux = np.asarray(flux)
    if flux.shape != (len(labels), n_pix):
        raise GridError(f"synthesizer.flux returned shape {flux.shape} for {len(labels)} label "
                        f"sets; expected ({len(labels)}, {n_pix}) from synthesizer.wavelength")
    bad = np.flatnonzero(~np.isfinite(flux).all(axis=1))
    if bad.size:
        raise GridError(f"synthesizer.flux gave NaN or infinite flux for row {start + bad[0]} "
                        f"(labels {labels[bad[0]].tolist()})")
    return flux.astype(dtype, copy=False)


def fill_grid(
    synthesizer: Any,
    labels: Any,
    *,
    batch_size: int = 64,
    progress: bool = True,
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    compression: Compression = None,
    dtype: Any = np.float32,
    provenance: dict[str, Any] | None = None,
) -> SpectralGrid:
    """Synthesize the spectra of given labels into a grid.

    Parameters
    ----------
    synthesizer : object
        See the module docstring for the interface.
    labels : `~astropy.table.QTable`, mapping or array
        The label sets: columns by name, or an ``(n, n_labels)`` array in the
        synthesizer's label order and canonical units; checked against its label space.
    batch_size : int
        Label sets per ``synthesizer.flux`` call (under `torch.no_grad`).
    progress : bool
        Show a tqdm progress bar (on stderr).
    out : str or pathlib.Path, optional
        Write the grid to this HDF5 file batch by batch, so that it never sits in memory,
        and return it opened lazily (close it, or use it in a ``with`` block).
    overwrite : bool
        With ``out``: replace an existing file.
    compression : {None, "gzip", "lzf"}
        With ``out``: compression of the flux.
    dtype : numpy dtype
        dtype of the stored flux (float32 by default, as the trainers use).
    provenance : dict, optional
        Provenance of the grid; by default the synthesizer's class and ``settings``.

    Returns
    -------
    SpectralGrid
    """
    space, wavelength = _check_synthesizer(synthesizer)
    label_array = SpectralGrid._parse_labels(labels, space)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise GridError(f"batch_size must be a positive integer, got {batch_size!r}")
    dtype = np.dtype(dtype)
    if provenance is None:
        provenance = make_provenance("stellarai.grids.fill_grid",
                                     synthesizer=_describe(synthesizer))
    try:  # before any synthesis: a late failure would waste it
        json.dumps(provenance)
    except (TypeError, ValueError) as exc:
        raise GridError(f"provenance must be JSON-serializable: {exc}") from exc
    n, n_pix = len(label_array), wavelength.size

    def batches(bar: tqdm) -> Iterator[tuple[int, np.ndarray]]:
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            yield start, _synthesize(synthesizer, label_array[start:stop], start, n_pix, dtype)
            bar.update(stop - start)

    with tqdm(total=n, desc="synthesizing grid", unit="spectra", disable=not progress) as bar:
        if out is None:
            flux = np.empty((n, n_pix), dtype=dtype)
            for start, block in batches(bar):
                flux[start:start + len(block)] = block
            return SpectralGrid(synthesizer.wavelength, flux, label_array, space,
                                provenance=provenance)
        with GridWriter(out, space, label_array, wavelength, "", provenance, dtype,
                        overwrite=overwrite, compression=compression) as writer:
            for _, block in batches(bar):
                writer.append(block)
    return SpectralGrid.read(out, lazy=True)


def generate_grid(
    synthesizer: Any,
    n: int,
    *,
    method: Method = "sobol",
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = True,
    fixed: Mapping[str, Any] | None = None,
    ranges: Mapping[str, Any] | None = None,
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    compression: Compression = None,
    dtype: Any = np.float32,
) -> SpectralGrid:
    """Sample ``n`` label sets of a synthesizer's label space and synthesize their spectra.

    Labels come from :func:`~stellarai.grids.sample_labels` (``method``, ``seed``,
    ``fixed``, ``ranges``); spectra from :func:`fill_grid` (``batch_size``, ``progress``,
    ``out``, ``overwrite``, ``compression``, ``dtype``). The provenance records the
    generator, sampling settings, seed, synthesizer class and ``settings``, stellarai
    version and creation time.

    Examples
    --------
    A stand-in synthesizer: one Gaussian line whose depth grows with [Fe/H].

    >>> import astropy.units as u, torch
    >>> from stellarai.labels import LabelSpace
    >>> class OneLine:
    ...     label_space = LabelSpace.default().subset(["teff", "feh"])
    ...     wavelength = torch.linspace(5000, 5002, 50).numpy() * u.AA
    ...     def flux(self, labels):
    ...         x = torch.as_tensor(self.wavelength.value)
    ...         depth = 0.3 * 10 ** labels[:, 1:2] * (5000 / labels[:, 0:1])
    ...         return 1 - depth.clamp(max=0.95) * torch.exp(-0.5 * ((x - 5001) / 0.1) ** 2)
    >>> grid = generate_grid(OneLine(), 16, seed=3, progress=False)
    >>> grid.provenance["method"], grid.flux.shape, grid.flux.dtype
    ('sobol', (16, 50), dtype('float32'))
    """
    space, _ = _check_synthesizer(synthesizer)
    table = sample_labels(space, n, method, seed=seed, fixed=fixed, ranges=ranges)
    provenance = make_provenance(
        "stellarai.grids.generate_grid", method=method, seed=seed, n_spectra=int(n),
        fixed={k: _plain(v) for k, v in (fixed or {}).items()},
        ranges={k: [_plain(x) for x in v] for k, v in (ranges or {}).items()},
        synthesizer=_describe(synthesizer),
    )
    return fill_grid(synthesizer, table, batch_size=batch_size, progress=progress, out=out,
                     overwrite=overwrite, compression=compression, dtype=dtype,
                     provenance=provenance)
