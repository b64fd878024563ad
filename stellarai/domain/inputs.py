"""Spectra in, tensors on the translator's wavelength grid out.

Every row of the input (a `~specutils.Spectrum`, each element of a
`~specutils.SpectrumList`, each row of a 2-D Spectrum, of a
:class:`~stellarai.grids.SpectralGrid` or of an array) is one spectrum. Spectra not on the
grid go through the boundary layer (:class:`~stellarai.spectra.OrderBatch`) and are
linearly interpolated onto it; a pixel is masked if either input pixel it is interpolated
from is masked. The result is the flux (masked pixels set to 1, the continuum) and the
weights: the inverse variance, 0 at masked pixels.
"""

from __future__ import annotations

from typing import Any

import astropy.units as u
import numpy as np
import torch
from torch import Tensor

from ..spectra import OrderBatch, interpolate_linear
from .errors import DomainInputError

__all__ = ["on_grid"]

_RTOL = 1e-9


def _flux_values(flux: Any, what: str) -> np.ndarray:
    if isinstance(flux, u.Quantity):
        if not flux.unit.is_equivalent(u.one):
            raise DomainInputError(f"{what} flux must be normalized (dimensionless), got unit "
                                   f"{flux.unit}")
        flux = flux.to_value(u.one)
    if isinstance(flux, Tensor):
        flux = flux.detach().cpu().numpy()
    try:
        return np.array(flux, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DomainInputError(f"{what} must be spectra or an array of flux, got "
                               f"{type(flux).__name__}") from exc


def _from_rows(flux: np.ndarray, ivar: Any, grid: Tensor, wavelength: Tensor | None,
               default_ivar: float, what: str) -> tuple[Tensor, Tensor]:
    n_pix = len(grid) if wavelength is None else len(wavelength)
    flux = flux.reshape(1, -1) if flux.ndim == 1 else flux
    if flux.ndim != 2 or flux.shape[1] != n_pix:
        raise DomainInputError(
            f"{what} as an array must have shape ({n_pix},) or (n, {n_pix}) on the "
            f"translator's wavelength grid, got {flux.shape}; pass a Spectrum to resample")
    weight = (np.full(flux.shape, default_ivar) if ivar is None
              else np.broadcast_to(_flux_values(ivar, f"{what} ivar"), flux.shape).copy())
    bad = ~np.isfinite(flux) | ~np.isfinite(weight) | (weight <= 0)
    values = torch.as_tensor(np.where(bad, 1.0, flux))
    weight_t = torch.as_tensor(np.where(bad, 0.0, weight))
    if wavelength is not None:
        values, weight_t = _resample(grid, wavelength, values, weight_t, what)
    return values, weight_t


def _resample(grid: Tensor, wavelength: Tensor, flux: Tensor, weight: Tensor,
              what: str) -> tuple[Tensor, Tensor]:
    lo, hi = float(wavelength[0]), float(wavelength[-1])
    if lo > float(grid[0]) * (1 + _RTOL) or hi < float(grid[-1]) * (1 - _RTOL):
        raise DomainInputError(
            f"{what}: the wavelengths cover {lo:.3f}-{hi:.3f} Angstrom (vacuum) but the "
            f"translator needs "
            f"{float(grid[0]):.3f}-{float(grid[-1]):.3f} Angstrom; pass spectra that cover "
            "its wavelength grid")
    if len(wavelength) == len(grid) and torch.allclose(wavelength, grid, rtol=_RTOL, atol=0.0):
        return flux, weight
    masked = interpolate_linear(grid, wavelength, (weight <= 0).to(flux.dtype), fill=1.0) > 0
    new_flux = interpolate_linear(grid, wavelength, flux, fill=1.0)
    new_weight = interpolate_linear(grid, wavelength, weight, fill=0.0)
    return torch.where(masked, 1.0, new_flux), torch.where(masked, 0.0, new_weight)


def _from_batch(batch: OrderBatch, grid: Tensor, default_ivar: float,
                what: str) -> tuple[Tensor, Tensor]:
    fluxes, weights = [], []
    for i, record in enumerate(batch.records):
        if not u.Unit(record.flux_unit).is_equivalent(u.one):
            raise DomainInputError(f"{what} {i} has flux unit {record.flux_unit}; the "
                                   "translator needs normalized (dimensionless) flux")
        npix = int(batch.npix[i])
        factor = float(u.Unit(record.flux_unit).to(u.one))
        ivar = batch.ivar[i, :npix] / factor**2 if record.uncertainty is not None else \
            torch.full((npix,), default_ivar, dtype=torch.float64)
        mask = batch.mask[i, :npix]
        flux = torch.where(mask, 1.0, batch.flux[i, :npix] * factor)
        weight = torch.where(mask, 0.0, ivar)
        flux, weight = _resample(grid, batch.wavelength[i, :npix], flux, weight,
                                 f"{what} {i}")
        fluxes.append(flux)
        weights.append(weight)
    return torch.stack(fluxes), torch.stack(weights)


def on_grid(spectra: Any, grid: Tensor, *, ivar: Any = None, default_uncertainty: float = 0.01,
            what: str = "spectra") -> tuple[Tensor, Tensor]:
    """Normalized flux ``(n, n_pix)`` and weights (inverse variance, 0 = masked), float64.

    Parameters
    ----------
    spectra : Spectrum, SpectrumList, OrderBatch, SpectralGrid, array, tensor or Quantity
        Spectra (resampled onto ``grid`` if needed), or flux already on ``grid`` (NaN means
        masked).
    grid : torch.Tensor
        The translator's vacuum wavelength in Angstrom.
    ivar : array, optional
        Inverse variance of array input (a Spectrum carries its own uncertainty).
    default_uncertainty : float
        Flux uncertainty assumed for spectra that carry none.
    what : str
        Name of the argument, for error messages.

    Raises
    ------
    DomainInputError
        For spectra that do not cover ``grid``, wrong shapes, flux that is not normalized
        or a spectrum with every pixel masked.

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> from specutils import Spectrum
    >>> spec = Spectrum(flux=np.linspace(1, 2, 11) * u.one,
    ...                 spectral_axis=np.linspace(5000, 5010, 11) * u.AA)
    >>> flux, weight = on_grid(spec, torch.tensor([5002.5, 5005.0], dtype=torch.float64))
    >>> flux.tolist(), weight.tolist()
    ([[1.25, 1.5]], [[10000.0, 10000.0]])
    """
    default_ivar = 1.0 / float(default_uncertainty) ** 2
    from ..grids import SpectralGrid

    if isinstance(spectra, SpectralGrid):
        if len(spectra) == 0:
            raise DomainInputError(f"{what} is an empty grid")
        if not spectra.flux_unit.is_equivalent(u.one):
            raise DomainInputError(f"{what} must hold normalized (dimensionless) flux, got "
                                   f"{spectra.flux_unit}")
        wavelength = torch.as_tensor(spectra.wavelength.to_value(u.AA), dtype=torch.float64)
        flux, weight = _from_rows(np.asarray(spectra.flux[:], dtype=np.float64),
                                  None if spectra.ivar is None else np.asarray(spectra.ivar[:]),
                                  grid, wavelength, default_ivar, what)
    elif isinstance(spectra, (np.ndarray, Tensor, list)) or (
            isinstance(spectra, u.Quantity) and not isinstance(spectra, u.SpectralQuantity)):
        flux, weight = _from_rows(_flux_values(spectra, what), ivar, grid, None, default_ivar,
                                  what)
    else:
        if ivar is not None:
            raise DomainInputError("ivar= is only for array input; a Spectrum carries its own "
                                   "uncertainty")
        batch = spectra if isinstance(spectra, OrderBatch) else OrderBatch.from_spectra(
            spectra)
        flux, weight = _from_batch(batch, grid, default_ivar, what)
    empty = torch.nonzero((weight <= 0).all(-1)).flatten()
    if len(empty):
        raise DomainInputError(f"{what}: spectrum {int(empty[0])} has every pixel masked on the "
                               "translator's wavelength grid")
    return flux, weight
