r"""The Doppler shift: exact relativistic factor; a sub-pixel shift on a log-wavelength grid."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import astropy.units as u
import torch
from torch import Tensor

from .base import C_KMS, Operator, OperatorError, _QuantityAttribute, uniform_log_step

__all__ = ["Doppler", "doppler_factor", "shift_log_uniform"]

RV_BOUNDS_KMS = (-1000.0, 1000.0)
"""Default bounds of a radial velocity, km/s."""
_METHODS = ("auto", "shift", "grid")


def doppler_factor(rv: Tensor) -> Tensor:
    r"""The relativistic Doppler factor :math:`\sqrt{(1+\beta)/(1-\beta)}`, :math:`\beta = v/c`.

    Parameters
    ----------
    rv : torch.Tensor
        Radial velocity in km/s (positive: receding, redshift), any shape.

    Returns
    -------
    torch.Tensor
        :math:`\lambda_{\rm obs}/\lambda_{\rm emit}`, same shape, differentiable.

    Examples
    --------
    >>> import torch
    >>> round(doppler_factor(torch.tensor(30.0, dtype=torch.float64)).item() - 1, 10)
    0.0001000742
    """
    beta = rv / C_KMS
    return torch.sqrt((1 + beta) / (1 - beta))


def _keys_weights(t: Tensor) -> Tensor:
    """Weights of f[n-1], f[n], f[n+1], f[n+2] for the value at n + t (Keys 1981, a = -1/2)."""
    t2, t3 = t * t, t * t * t
    return torch.stack([(-t3 + 2 * t2 - t) / 2, (3 * t3 - 5 * t2 + 2) / 2,
                        (-3 * t3 + 4 * t2 + t) / 2, (t3 - t2) / 2], dim=-1)


def shift_log_uniform(flux: Tensor, log_step: float, rv: Tensor) -> Tensor:
    r"""Doppler-shift spectra sampled on a grid uniform in :math:`\ln\lambda`, keeping the grid.

    Parameters
    ----------
    flux : torch.Tensor
        Flux, shape ``(..., n)``, on a grid with step ``log_step`` in :math:`\ln\lambda`.
    log_step : float
        The grid's :math:`\Delta\ln\lambda`.
    rv : torch.Tensor
        Radial velocity in km/s: a scalar, or one per row: any shape that broadcasts
        against the leading dimensions of ``flux`` (``(rows,)`` for ``(rows, n)``, or
        ``(spectra, 1)`` for ``(spectra, orders, n)``).

    Returns
    -------
    torch.Tensor
        The shifted spectrum on the same grid, shape of ``flux`` broadcast against ``rv``.

    Notes
    -----
    A feature at pixel :math:`j` moves to :math:`j + s` with
    :math:`s = \ln\sqrt{(1+\beta)/(1-\beta)}/\Delta\ln\lambda` pixels; the output at pixel
    :math:`i` is the Keys (1981) cubic-convolution interpolant of the input at
    :math:`i - s` (third-order accurate, continuous with a continuous derivative in
    ``rv``, weights summing to 1 so equivalent widths are kept). Beyond the ends the flux
    continues at its end values: the outer :math:`|s| + 2` pixels are not reliable.

    Examples
    --------
    >>> import torch
    >>> flux = torch.zeros(9, dtype=torch.float64)
    >>> flux[4] = 1.0
    >>> shift = torch.log(doppler_factor(torch.tensor(30.0, dtype=torch.float64)))
    >>> shift_log_uniform(flux, shift.item() / 2, torch.tensor(30.0)).tolist()[4:8]
    [0.0, 0.0, 1.0, 0.0]
    """
    rv = torch.as_tensor(rv, dtype=torch.float64, device=flux.device)
    if rv.ndim and not (rv.ndim == 1 and flux.ndim <= 2):
        try:
            lead = torch.broadcast_shapes(flux.shape[:-1], rv.shape)
        except RuntimeError:
            raise OperatorError(
                f"Doppler: radial velocities of shape {tuple(rv.shape)} do not broadcast "
                f"against the leading dimensions of the flux, shape {tuple(flux.shape)}"
            ) from None
        n = flux.shape[-1]
        rows = shift_log_uniform(flux.expand(*lead, n).reshape(-1, n), log_step,
                                 rv.expand(lead).reshape(-1))
        return rows.reshape(*lead, n)
    pixels = torch.log(doppler_factor(rv)) / log_step
    whole = torch.floor(pixels.detach())
    t = (1 - (pixels - whole)).to(flux.dtype)
    weights = _keys_weights(t)
    n = flux.shape[-1]
    pad = int(whole.abs().max()) + 3
    if rv.ndim:
        flux = flux.expand(rv.shape[0], n) if flux.ndim == 1 else flux
        if flux.shape[-2] != rv.shape[0]:
            raise OperatorError(
                f"Doppler: {rv.shape[0]} radial velocities (one per row) but the flux has "
                f"shape {tuple(flux.shape)}"
            )
    lead = flux.shape[:-1]
    padded = torch.cat([flux[..., :1].expand(*lead, pad), flux,
                        flux[..., -1:].expand(*lead, pad)], dim=-1)
    start = torch.arange(n, device=flux.device) - 2 + pad  # f[i - floor(s) - 2] is f[n-1]
    if rv.ndim == 0:
        base = start - int(whole)
        return sum(weights[m] * padded.index_select(-1, base + m) for m in range(4))
    base = (start[None, :] - whole.long()[:, None]).expand(*lead, n)
    return sum(weights[:, m, None] * torch.gather(padded, -1, base + m) for m in range(4))


class Doppler(Operator):
    r"""Shift spectra by a radial velocity, with the exact relativistic factor.

    Parameters
    ----------
    rv : Quantity or float
        Radial velocity (a velocity Quantity, or km/s); positive values redshift. One
        value, or one per row (échelle order). Default bounds (-1000, 1000) km/s.
    method : {"auto", "shift", "grid"}
        ``"grid"`` moves the wavelength grid and keeps the flux (exact on any grid).
        ``"shift"`` keeps a grid uniform in :math:`\ln\lambda` and shifts the flux along it
        (:func:`shift_log_uniform`). ``"auto"`` (default) shifts on uniform
        :math:`\ln\lambda` grids (model grids) and moves any other grid.
    fixed, bounds, prior : optional
        Overrides of the parameter records: ``fixed={"rv": True}`` (or ``["rv"]``),
        ``bounds={"rv": (-50, 50) * u.km / u.s}``, ``prior={"rv": (-9 * u.km / u.s,
        1 * u.km / u.s)}`` (Gaussian mean and sigma).

    Notes
    -----
    :math:`\lambda_{\rm obs} = \lambda_{\rm emit}\sqrt{(1+\beta)/(1-\beta)}`,
    :math:`\beta = v/c` (PHYSICS.md); on a grid uniform in :math:`\ln\lambda` this is a
    shift by :math:`\tfrac12\ln\frac{1+\beta}{1-\beta}`. Inside a chain the shift keeps
    the model grid in the observatory frame, so what follows (telluric transmission,
    instrumental profile, resampling onto the detector) always sees the same grid: the
    telluric lines are not re-sampled at a different sub-pixel phase for each ``rv``, and
    the model is smooth (continuously differentiable) in ``rv``. The shifted-in
    :math:`|rv|` at one end of each row counts in the margin (:meth:`reach`).

    Applied to a spectrum (``Doppler(rv=...)(spectrum)``) it moves the spectral axis, as
    gollum's and muler's ``rv_shift`` do (absolute, not cumulative).

    Examples
    --------
    >>> import astropy.units as u, torch
    >>> op = Doppler(rv=-9.6 * u.km / u.s)
    >>> op
    Doppler(rv=-9.6 km / s)
    >>> pixels = torch.tensor([10_000.0, 10_001.0, 10_003.0], dtype=torch.float64)
    >>> shifted, flux = op(pixels, torch.ones(3, dtype=torch.float64))  # moves the pixels
    >>> round(shifted[0].item(), 6)
    9999.679784
    >>> from stellarai.ops.kernels import uniform_log_grid
    >>> grid = uniform_log_grid(10_000.0, 10_001.0, resolving_power=100_000)
    >>> same, moved = op(grid, torch.linspace(0.0, 1.0, grid.numel(), dtype=torch.float64))
    >>> same is grid, round(moved[10].item(), 4)   # the grid stays, the flux moves:
    (True, 0.6536)

    (-9.6 km/s is 9.6 pixels of this grid: pixel 10 now shows what was at pixel 19.6.)
    >>> op.rv = 30 * u.km / u.s          # setting validates units and bounds
    >>> op.rv
    <Quantity 30. km / s>
    """

    rv = _QuantityAttribute("rv", "Radial velocity (Quantity, km/s); settable.")

    def __init__(self, rv: Any = 0.0, *, method: str = "auto",
                 fixed: Iterable[str] | Mapping[str, bool] | None = None,
                 bounds: Mapping[str, Any] | None = None,
                 prior: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if method not in _METHODS:
            raise OperatorError(f"Doppler: method must be one of {_METHODS}, got {method!r}")
        self.method = method
        self._shifted = False
        self._add_parameter("rv", rv, unit=u.km / u.s, bounds=RV_BOUNDS_KMS,
                            description="radial velocity (positive: redshift)")
        self._finish_parameters(fixed, bounds, prior)

    def forward(self, wavelength: Tensor | None, flux: Tensor | None) -> tuple[Tensor, Tensor]:
        wavelength, flux = self._require_input(wavelength, flux)
        rv = self.tensors["rv"]
        step = None if self.method == "grid" else uniform_log_step(wavelength)
        if self.method == "shift" and step is None:
            raise OperatorError(
                "Doppler(method='shift') needs a wavelength grid uniform in ln(wavelength), "
                "e.g. from stellarai.ops.model_grid_for(...)"
            )
        self._shifted = step is not None
        if step is not None:
            return wavelength, shift_log_uniform(flux, step, rv)
        factor = doppler_factor(rv)
        if factor.ndim:
            factor = factor[:, None]
        return wavelength * factor, flux

    def needs_margin(self) -> bool:
        return self._shifted

    def reach(self, log_step: float | None) -> float:
        if not self._shifted or log_step is None:
            return 0.0
        return float(self.tensors["rv"].detach().abs().max()) + 2 * C_KMS * log_step

    def _spectra_forward(self, wavelength: Tensor, flux: Tensor) -> tuple[Tensor, Tensor]:
        factor = doppler_factor(self.tensors["rv"])
        return wavelength * (factor[:, None] if factor.ndim else factor), flux
