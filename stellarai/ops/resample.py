r"""From the model grid to the observed pixels: model grids with margins, and Resample.

A forward model runs on a fine grid uniform in :math:`\ln\lambda` (kernels need it) that
extends beyond each observed order by a margin, so that Doppler shifts and broadening
kernels never read past its ends; :class:`Resample` then rebins it, flux-conserving, onto
the observed pixels of every order at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import astropy.units as u
import numpy as np
import torch
from torch import Tensor

from ..errors import LabelError
from ..spectra.orders import OrderBatch
from ..spectra.resample import rebin_flux_conserving
from .base import (
    C_KMS,
    GridCoverageError,
    Operator,
    OperatorError,
    ParameterError,
    _input_kind,
    _package,
    row_ranges,
    to_canonical,
)
from .kernels import uniform_log_grid

__all__ = ["DEFAULT_MARGIN", "DEFAULT_OVERSAMPLE", "Resample", "model_grid_for"]

DEFAULT_MARGIN = 300.0 * u.km / u.s
"""Default margin of :func:`model_grid_for`: room for |rv| plus the kernels' reach."""
DEFAULT_OVERSAMPLE = 5.0
"""Default samples per resolution element of :func:`model_grid_for`."""


def _margin_kms(margin: Any, where: str) -> float:
    value = to_canonical(margin, u.km / u.s, f"{where}: margin")
    if value.ndim or not (np.isfinite(value) and value >= 0):
        raise ParameterError(f"{where}: margin must be one velocity >= 0, got {margin!r}")
    return float(value)


def _pixel_edges(batch: OrderBatch) -> tuple[Tensor, Tensor]:
    """Outer edges (Angstrom) of the first and last real pixel of each row."""
    if bool((batch.npix < 2).any()):
        raise OperatorError("an order needs at least 2 pixels to be resampled onto")
    rows = torch.arange(batch.n_orders)
    last = batch.npix - 1
    w = batch.wavelength
    low = w[:, 0] - (w[:, 1] - w[:, 0]) / 2
    high = w[rows, last] + (w[rows, last] - w[rows, last - 1]) / 2
    return low, high


def model_grid_for(orders: Any, resolving_power: float | None = None, *,
                   oversample: float = DEFAULT_OVERSAMPLE,
                   margin: Any = DEFAULT_MARGIN) -> Tensor:
    r"""A model grid, uniform in :math:`\ln\lambda`, covering every order plus a margin.

    Parameters
    ----------
    orders : OrderBatch, Spectrum or SpectrumList
        The observed orders.
    resolving_power : float, optional
        Resolving power the grid samples; default: the highest ``instrumental_resolution``
        the orders carry.
    oversample : float
        Pixels per resolution element :math:`\lambda/R` (default 5): the step is
        :math:`\Delta\ln\lambda = 1/(\mathrm{oversample}\cdot R)`.
    margin : Quantity or float
        Velocity (or km/s) by which each row extends beyond its order's outer pixel edges
        on both sides (default 300 km/s). It must exceed the largest :math:`|rv|` the fit
        will reach plus the reach of the kernels (``vsini`` plus about 3.5 FWHM of the
        instrumental profile); :class:`Resample` checks it on every call.

    Returns
    -------
    torch.Tensor
        float64, shape ``(n_orders, n)``: one row per order, all with the same step and
        length (made with :func:`~stellarai.ops.kernels.uniform_log_grid` for the widest
        order and scaled to start at each order's lower end), so kernels run on all
        orders at once.

    Raises
    ------
    OperatorError
        If no resolving power is given or carried by the data.

    Examples
    --------
    >>> from stellarai.demo import demo_spectrum_list
    >>> grid = model_grid_for(demo_spectrum_list(), margin=100)
    >>> grid.shape
    torch.Size([3, 1564])
    >>> from stellarai.ops.kernels import log_step
    >>> round(log_step(grid) * 5 * 50_000, 9)
    1.0
    """
    batch = OrderBatch.from_spectra(orders)
    if resolving_power is None:
        known = [r for r in batch.resolution if r is not None]
        if not known:
            raise OperatorError(
                "model_grid_for: the orders carry no instrumental resolution; pass "
                "resolving_power=..."
            )
        resolving_power = max(known)
    extra = math.exp(_margin_kms(margin, "model_grid_for") / C_KMS)
    low, high = _pixel_edges(batch)
    low, high = low / extra, high * extra
    widest = int(torch.argmax(torch.log(high / low)))
    try:
        grid = uniform_log_grid(float(low[widest]), float(high[widest]),
                                resolving_power=float(resolving_power),
                                samples_per_resolution=float(oversample))
    except LabelError as exc:
        raise ParameterError(f"model_grid_for: {exc}") from exc
    relative = grid / grid[0]
    return low[:, None] * relative[None, :]


class Resample(Operator):
    r"""Rebin a model, flux-conserving, onto the observed pixels of every order.

    Parameters
    ----------
    target : OrderBatch, Spectrum, SpectrumList or wavelengths
        The observed orders (their pixel wavelengths are the output grid), or a tensor /
        Quantity of wavelengths of shape ``(m,)`` or ``(n_orders, m)``.
    margin : Quantity or float
        Extra velocity (or km/s, default 0) by which the incoming model grid must extend
        beyond the first and last pixel (centre) of each order, in addition to the reach
        of the broadening kernels before this operator in a chain (always required,
        computed from their current parameters).

    Raises
    ------
    GridCoverageError
        On a call, if a row of the incoming grid does not cover its order plus the
        margin; the message names the order and the missing range.
    OperatorError
        If the model has neither one row nor one row per order.

    Notes
    -----
    Uses :func:`stellarai.spectra.rebin_flux_conserving` (the overlap-weighted mean of
    ``specutils``' ``FluxConservingResampler``), batched over orders and differentiable
    in the flux and in the model grid (so in ``rv`` upstream). The padding pixels of
    ragged orders (masked in the data) get the model where the grid reaches them and 0
    elsewhere. Applied directly to a spectrum, it propagates the inverse variance and the
    mask as well.

    Examples
    --------
    >>> import astropy.units as u, torch
    >>> from stellarai.demo import demo_spectrum_list
    >>> orders = demo_spectrum_list()
    >>> grid = model_grid_for(orders, margin=50 * u.km / u.s)
    >>> op = Resample(orders)
    >>> op
    Resample(<3 orders x 1100 px, 10815.000-10965.000 Angstrom>)
    >>> wavelength, flux = op(grid, torch.ones_like(grid))
    >>> flux.shape, bool((flux[0, :1024] == 1).all())
    (torch.Size([3, 1100]), True)
    >>> op(grid[:, 100:], torch.ones_like(grid[:, 100:]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    stellarai.ops.base.GridCoverageError: Resample: the model grid does not cover order 100 ...
    """

    def __init__(self, target: Any, *, margin: Any = 0.0) -> None:
        super().__init__()
        self._target_kind = _input_kind(target)
        if isinstance(target, (Tensor, np.ndarray)) or (
                isinstance(target, u.Quantity) and not hasattr(target, "spectral_axis")):
            wavelength = target if isinstance(target, u.Quantity) else (
                np.asarray(target.detach().cpu() if isinstance(target, Tensor) else target)
                * u.AA)
            target = OrderBatch.from_arrays(wavelength, np.zeros(wavelength.shape))
            self._target_kind = "list"
        self._batch = OrderBatch.from_spectra(target)
        self._margin = _margin_kms(margin, "Resample")
        self.register_buffer("target_wavelength", self._batch.wavelength)
        ranges, _ = row_ranges(self._batch)
        self.register_buffer("_low_edge", ranges[:, 0].contiguous())
        self.register_buffer("_high_edge", ranges[:, 1].contiguous())

    @property
    def margin(self) -> u.Quantity:
        """The extra margin required beyond the kernels' reach."""
        return self._margin * u.km / u.s

    @property
    def orders(self) -> OrderBatch:
        """The target orders."""
        return self._batch

    def _output_batch(self) -> OrderBatch:
        return self._batch

    def check_grid(self, wavelength: Tensor, reach: float = 0.0,
                   upstream: Sequence[Operator] = ()) -> None:
        """Raise unless each row of ``wavelength`` covers its order plus the margins."""
        grid = wavelength.detach()
        grid = grid[None] if grid.ndim == 1 else grid.reshape(-1, grid.shape[-1])
        n_orders = self._batch.n_orders
        if grid.shape[0] not in (1, n_orders):
            raise OperatorError(
                f"Resample: the model has {grid.shape[0]} rows but the target has {n_orders} "
                "orders; give one row per order (see model_grid_for) or a single row"
            )
        need = reach + self._margin
        grow = math.exp(need / C_KMS)
        low = grid[:, 0].expand(n_orders)
        high = grid[:, -1].expand(n_orders)
        need_low = self._low_edge / grow
        need_high = self._high_edge * grow
        bad = (low > need_low) | (high < need_high)
        if not bool(bad.any()):
            return
        i = int(torch.nonzero(bad)[0])
        _, labels = row_ranges(self._batch)
        kernels = [leaf._name() for op in upstream for leaf in op._leaves()
                   if leaf.needs_margin()]
        why = []
        if reach:
            why.append(f"the reach of {' and '.join(kernels) or 'the kernels'} "
                       f"({reach:.1f} km/s)")
        if self._margin or not why:
            why.append(f"margin={self._margin:g} km/s")
        missing = []
        if low[i] > need_low[i]:
            missing.append(f"{need_low[i].item():.3f}-{low[i].item():.3f}")
        if high[i] < need_high[i]:
            missing.append(f"{high[i].item():.3f}-{need_high[i].item():.3f}")
        raise GridCoverageError(
            f"Resample: the model grid does not cover {labels[i]}, "
            f"{self._low_edge[i].item():.3f}-{self._high_edge[i].item():.3f} Angstrom plus a "
            f"margin of {need:.4g} km/s"
            + (f" ({' + '.join(why)})" if reach or self._margin else "")
            + f": the grid row spans {low[i].item():.3f}-{high[i].item():.3f} Angstrom, "
            f"missing {' and '.join(missing)} Angstrom. Build the model grid with "
            "model_grid_for(orders, margin=...) wider than the largest |rv| plus the "
            "kernels' reach"
        )

    def resample(self, wavelength: Tensor | None, flux: Tensor | None, *, reach: float = 0.0,
                 upstream: Sequence[Operator] = ()) -> tuple[Tensor, Tensor]:
        """Rebin ``flux`` on ``wavelength`` onto the target pixels (after checking the grid)."""
        wavelength, flux = self._require_input(wavelength, flux)
        self.check_grid(wavelength, reach, upstream)
        target = self.target_wavelength
        out = rebin_flux_conserving(target, wavelength, flux, fill=0.0).flux
        return target.expand_as(out), out

    def forward(self, wavelength: Tensor | None, flux: Tensor | None) -> tuple[Tensor, Tensor]:
        return self.resample(wavelength, flux)

    def _resample_spectra(self, batch: OrderBatch, kind: str) -> Any:
        """Apply to observed spectra: flux, inverse variance and mask are rebinned."""
        self.check_grid(batch.wavelength)
        out = rebin_flux_conserving(self.target_wavelength, batch.wavelength, batch.flux,
                                    ivar=batch.ivar, mask=batch.mask, fill=0.0)
        source = batch.records[0]
        records = tuple(
            replace(r, flux_unit=source.flux_unit, mask=None,
                    uncertainty_type=source.uncertainty_type,
                    uncertainty=None if source.uncertainty_type is None else np.ones(r.npix))
            for r in self._batch.records)
        target = replace(self._batch, records=records, ivar=out.ivar, mask=out.mask)
        return _package(target, self.target_wavelength, out.flux, self._target_kind
                        if kind != "batch" else "batch")

    def describe(self) -> str:
        b = self._batch
        ranges, _ = row_ranges(b)
        return (f"Resample(<{b.n_orders} orders x {b.n_pix} px, {ranges[:, 0].min().item():.3f}"
                f"-{ranges[:, 1].max().item():.3f} Angstrom>)")
