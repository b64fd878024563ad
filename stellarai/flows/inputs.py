"""Spectra and labels in, tensors out: what :class:`~stellarai.flows.SpectralFlow` reads.

Every row of the input (a `~specutils.Spectrum`, each element of a
`~specutils.SpectrumList`, each row of a 2-D Spectrum or array) is one spectrum. Spectra
go through the boundary layer (:class:`~stellarai.spectra.OrderBatch`) and are linearly
interpolated onto the flow's wavelength grid; a flow pixel is masked if either input pixel
that it is interpolated from is masked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import astropy.units as u
import numpy as np
import torch
from astropy.table import Row, Table
from torch import Tensor

from ..errors import LabelError, SpectrumInputError
from ..labels import LabelSpace
from ..spectra import OrderBatch, interpolate_linear

__all__ = ["parse_conditioning", "spectra_on_grid"]

_RTOL = 1e-9


def _from_array(flux: Any, mask: Any, n_pix: int, flux_unit: u.UnitBase) -> tuple[Tensor,
                                                                                   Tensor]:
    if isinstance(flux, u.Quantity):
        try:
            flux = flux.to_value(flux_unit)
        except u.UnitConversionError as exc:
            raise SpectrumInputError(f"flux unit {flux.unit} cannot be converted to the "
                                     f"flow's flux unit {flux_unit}") from exc
    values = torch.as_tensor(np.asarray(flux, dtype=np.float64))
    values = values.reshape(1, -1) if values.ndim == 1 else values
    if values.ndim != 2 or values.shape[1] != n_pix:
        raise SpectrumInputError(
            f"an array of flux must have shape ({n_pix},) or (n, {n_pix}) on the flow's "
            f"wavelength grid, got {tuple(np.shape(flux))}; pass a Spectrum to resample")
    bad = ~torch.isfinite(values)
    if mask is not None:
        bad = bad | torch.as_tensor(np.asarray(mask, dtype=bool)).reshape(values.shape)
    return torch.where(bad, 0.0, values), bad


def _row_on_grid(batch: OrderBatch, i: int, grid: Tensor, flux_unit: u.UnitBase) -> tuple[
        Tensor, Tensor]:
    npix = int(batch.npix[i])
    wavelength = batch.wavelength[i, :npix]
    try:
        factor = float(u.Unit(batch.records[i].flux_unit).to(flux_unit))
    except u.UnitConversionError as exc:
        raise SpectrumInputError(f"spectrum {i} has flux unit {batch.records[i].flux_unit}, "
                                 f"which cannot be converted to the flow's flux unit "
                                 f"{flux_unit}") from exc
    lo, hi = float(wavelength[0]), float(wavelength[-1])
    if lo > float(grid[0]) * (1 + _RTOL) or hi < float(grid[-1]) * (1 - _RTOL):
        raise SpectrumInputError(
            f"spectrum {i} covers {lo:.3f}-{hi:.3f} Angstrom (vacuum) but the flow needs "
            f"{float(grid[0]):.3f}-{float(grid[-1]):.3f} Angstrom; trim the flow's grid or "
            "pass spectra that cover it")
    flux = batch.flux[i, :npix] * factor
    mask = batch.mask[i, :npix]
    if npix == len(grid) and torch.allclose(wavelength, grid, rtol=_RTOL, atol=0.0):
        return flux, mask.clone()
    new_flux = interpolate_linear(grid, wavelength, flux, fill=0.0)
    new_mask = interpolate_linear(grid, wavelength, mask.to(torch.float64), fill=1.0) > 0
    return new_flux, new_mask


def spectra_on_grid(spectra: Any, grid: Tensor, flux_unit: u.UnitBase,
                    mask: Any = None) -> tuple[Tensor, Tensor]:
    """Flux ``(n, n_pix)`` (float64) and mask (True = ignore) on the flow's grid.

    Parameters
    ----------
    spectra : Spectrum, SpectrumList, OrderBatch, tuple, array or Quantity
        Spectra (resampled), or flux already on the flow's grid (an array or Quantity of
        shape ``(n_pix,)`` or ``(n, n_pix)``; NaN means masked).
    grid : torch.Tensor
        The flow's vacuum wavelength in Angstrom.
    flux_unit : astropy unit
        The flow's flux unit.
    mask : array of bool, optional
        Extra mask for array input (True = ignore).

    Raises
    ------
    SpectrumInputError
        For spectra that do not cover ``grid``, wrong shapes, unconvertible flux units or a
        spectrum with every pixel masked.

    Examples
    --------
    >>> import numpy as np, astropy.units as u, torch
    >>> from specutils import Spectrum
    >>> spec = Spectrum(flux=np.linspace(1, 2, 11) * u.one,
    ...                 spectral_axis=np.linspace(5000, 5010, 11) * u.AA)
    >>> flux, mask = spectra_on_grid(spec, torch.tensor([5002.5, 5005.0], dtype=torch.float64),
    ...                              u.one)
    >>> flux.tolist(), mask.tolist()
    ([[1.25, 1.5]], [[False, False]])
    """
    if isinstance(spectra, (np.ndarray, torch.Tensor)) or (
            isinstance(spectra, u.Quantity) and not isinstance(spectra, u.SpectralQuantity)):
        flux, bad = _from_array(spectra, mask, len(grid), flux_unit)
    else:
        if mask is not None:
            raise SpectrumInputError("mask= is only for array input; a Spectrum carries its "
                                     "own mask")
        batch = OrderBatch.from_spectra(spectra)
        rows = [_row_on_grid(batch, i, grid, flux_unit) for i in range(batch.n_orders)]
        flux = torch.stack([r[0] for r in rows])
        bad = torch.stack([r[1] for r in rows])
    empty = torch.nonzero(bad.all(-1)).flatten()
    if len(empty):
        raise SpectrumInputError(f"spectrum {int(empty[0])} has every pixel masked on the "
                                 "flow's wavelength grid")
    return torch.where(bad, 0.0, flux), bad


def parse_conditioning(space: LabelSpace | None, n: int, values: Any,
                       labels: dict[str, Any]) -> np.ndarray | None:
    """Conditioning labels ``(n, n_context)`` in canonical units (None if unconditional).

    ``values`` is a mapping, a `~astropy.table.Table` (extra columns are ignored) or a
    table Row; ``labels`` are keyword labels. Scalars are broadcast to ``n`` spectra.

    Examples
    --------
    >>> from stellarai.labels import LabelSpace
    >>> space = LabelSpace.default().subset(["teff", "logg"])
    >>> parse_conditioning(space, 2, None, {"teff": 5000, "logg": [4.0, 4.5]})
    array([[5.0e+03, 4.0e+00],
           [5.0e+03, 4.5e+00]])
    """
    if space is None:
        empty = values is None or (isinstance(values, Mapping) and not values)
        given = list(labels) + ([] if empty else ["values"])
        if given:
            raise LabelError(f"this flow is unconditional, but labels {given} were given")
        return None
    array = space.parse_batch(values, ignore_unknown=isinstance(values, (Table, Row)),
                              **labels)
    if len(array) == 1 and n != 1:
        array = np.repeat(array, n, axis=0)
    if len(array) != n:
        raise LabelError(f"got {len(array)} rows of labels for {n} spectra; give one row per "
                         "spectrum or scalars")
    return array
