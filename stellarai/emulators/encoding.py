r"""Multi-scale sinusoidal encoding of :math:`\ln\lambda`, the query of TransformerPayne."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .errors import EmulatorError

__all__ = ["SinusoidalEncoding"]


class SinusoidalEncoding(nn.Module):
    r"""Encode wavelengths as sines and cosines of :math:`\ln\lambda` at many periods.

    .. math::

        e(\lambda) = \big[\sin(2\pi x/P_k),\ \cos(2\pi x/P_k)\big]_{k=1}^{K},\qquad
        x = \ln\lambda - \ln\lambda_{\rm ref},

    with periods :math:`P_k` spaced geometrically from ``min_period`` to ``max_period``
    (in :math:`\ln\lambda`, i.e. in units of :math:`c`: a period of 1e-5 is 3 km/s).
    The phases are computed in float64 (a float32 :math:`\ln\lambda` would only resolve
    about 1e-6, a third of a km/s); the result is float64 and the caller casts it.

    Parameters
    ----------
    n_frequencies : int
        Number of periods :math:`K` (the encoding has :math:`2K` features).
    min_period, max_period : float
        Shortest and longest period in :math:`\ln\lambda`, ``0 < min < max``.
    reference : float
        :math:`\ln\lambda_{\rm ref}` (Angstrom), e.g. the log of the central wavelength.

    Notes
    -----
    The periods are plain attributes, not buffers, so ``module.to(torch.float32)`` never
    rounds them.

    Examples
    --------
    >>> import torch
    >>> enc = SinusoidalEncoding(4, 1e-4, 1e-1, reference=math.log(5000.0))
    >>> enc(torch.tensor([5000.0, 5001.0], dtype=torch.float64)).shape
    torch.Size([2, 8])
    """

    def __init__(self, n_frequencies: int, min_period: float, max_period: float, *,
                 reference: float = 0.0) -> None:
        super().__init__()
        if isinstance(n_frequencies, bool) or not isinstance(n_frequencies, int) or \
                n_frequencies < 1:
            raise EmulatorError(f"n_frequencies must be a positive integer, got {n_frequencies!r}")
        if not (0 < min_period < max_period and math.isfinite(max_period)):
            raise EmulatorError(f"periods must satisfy 0 < min_period < max_period, got "
                                f"({min_period!r}, {max_period!r})")
        self.n_frequencies = n_frequencies
        self.min_period, self.max_period = float(min_period), float(max_period)
        self.reference = float(reference)

    @property
    def n_features(self) -> int:
        """Length of the encoding, ``2 * n_frequencies``."""
        return 2 * self.n_frequencies

    def angular(self) -> Tensor:
        """The angular frequencies :math:`2\\pi/P_k` (float64)."""
        periods = torch.logspace(math.log10(self.min_period), math.log10(self.max_period),
                                 self.n_frequencies, dtype=torch.float64)
        return 2 * math.pi / periods

    def forward(self, wavelength: Tensor) -> Tensor:
        """Encoding ``(..., 2K)`` (float64) of wavelengths ``(...)`` in Angstrom."""
        x = torch.log(wavelength.to(torch.float64)) - self.reference
        phase = x[..., None] * self.angular().to(x.device)
        return torch.cat([torch.sin(phase), torch.cos(phase)], dim=-1)

    def extra_repr(self) -> str:
        return (f"n_frequencies={self.n_frequencies}, periods=({self.min_period:g}, "
                f"{self.max_period:g}), reference={self.reference:.6g}")
