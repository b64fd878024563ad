"""Pixel tokens: spectra as (wavelength, flux, uncertainty) sets, and random contexts.

A :class:`TokenBlock` holds spectra on one padded pixel axis (a grid's shared wavelength,
or each star's own pixels), with their labels. :func:`sample_contexts` draws a random
subset of valid pixels per spectrum, the model's input; :func:`augment` adds noise and a
continuum tilt to pre-training contexts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..spectra import as_order_batch
from .errors import FoundationError

__all__ = ["Context", "TokenBlock", "augment", "pad_stars", "sample_contexts", "star_tokens"]


@dataclass(frozen=True)
class TokenBlock:
    """Spectra with their labels, as tensors on one padded pixel axis.

    Attributes
    ----------
    wavelength : torch.Tensor
        Vacuum Angstrom, float64, ``(n_pix,)`` shared or ``(n, n_pix)``.
    flux, sigma : torch.Tensor
        ``(n, n_pix)`` float32 flux and its standard deviation (0: noise-free).
    valid : torch.Tensor
        ``(n, n_pix)`` bool, False at masked pixels and padding.
    labels, label_sigma : torch.Tensor
        ``(n, n_labels)`` float32 scaled labels and their scaled uncertainties.
    known : torch.Tensor
        ``(n, n_labels)`` bool, False where a label is not given (not trained on).
    """

    wavelength: Tensor
    flux: Tensor
    sigma: Tensor
    valid: Tensor
    labels: Tensor
    label_sigma: Tensor
    known: Tensor

    def __len__(self) -> int:
        return int(self.flux.shape[0])

    def rows(self, index: Tensor) -> TokenBlock:
        """The spectra at ``index`` (a 1-d index tensor)."""
        wavelength = self.wavelength if self.wavelength.ndim == 1 else self.wavelength[index]
        return TokenBlock(wavelength, self.flux[index], self.sigma[index], self.valid[index],
                          self.labels[index], self.label_sigma[index], self.known[index])

    def wavelength_range(self) -> tuple[float, float]:
        """Smallest and largest wavelength (Å) of a valid pixel."""
        wavelength = self.wavelength.expand_as(self.flux)[self.valid]
        return float(wavelength.min()), float(wavelength.max())


@dataclass(frozen=True)
class Context:
    """Random contexts: ``(b, p)`` tensors, ``index`` into the source pixels."""

    wavelength: Tensor
    flux: Tensor
    sigma: Tensor
    padding: Tensor
    index: Tensor


def sample_contexts(block: TokenBlock, size: int, generator: torch.Generator, *,
                    min_size: int | None = None, line_floor: float | None = None) -> Context:
    r"""Draw ``size`` random valid pixels per spectrum (fewer where fewer are valid).

    Parameters
    ----------
    block : TokenBlock
        The spectra; every spectrum needs a valid pixel.
    size : int
        Pixels per context.
    generator : torch.Generator
        Source of randomness.
    min_size : int, optional
        Each spectrum keeps a random number of the drawn pixels, uniform in
        ``[min_size, size]``; the rest are padding.
    line_floor : float, optional
        Draw pixel :math:`j` with weight :math:`\max(|1 - f_j|, \texttt{line\_floor})`
        (sampling without replacement, Efraimidis & Spirakis 2006), so that contexts hold
        mostly pixels in lines rather than continuum; None draws uniformly.

    Returns
    -------
    Context

    Examples
    --------
    >>> import torch
    >>> flux = torch.ones(1, 100)
    >>> flux[0, :10] = 0.5                      # ten pixels in a line
    >>> block = TokenBlock(torch.arange(100.0), flux, torch.zeros(1, 100),
    ...                    torch.ones(1, 100, dtype=torch.bool), torch.zeros(1, 1),
    ...                    torch.zeros(1, 1), torch.ones(1, 1, dtype=torch.bool))
    >>> c = sample_contexts(block, 10, torch.Generator().manual_seed(0), line_floor=0.01)
    >>> int((c.index < 10).sum()) > 5          # uniform drawing would average 1
    True
    """
    n, n_pix = block.flux.shape
    width = min(size, n_pix)
    uniform = torch.rand(n, n_pix, generator=generator)
    if line_floor is None:
        scores = -uniform
    else:
        weight = (1 - block.flux).abs().nan_to_num(0.0).clamp_min(line_floor)
        scores = torch.log(uniform.clamp_min(1e-30)) / weight
    scores = scores.masked_fill(~block.valid, -torch.inf)
    index = scores.topk(width, dim=1, largest=True, sorted=True).indices
    count = block.valid.sum(1)
    if min_size is not None and min_size < width:
        count = torch.minimum(count, torch.randint(min_size, width + 1, (n,),
                                                   generator=generator))
    padding = torch.arange(width)[None, :] >= count[:, None]
    wavelength = block.wavelength.expand(n, n_pix).gather(1, index)
    return Context(wavelength, block.flux.gather(1, index), block.sigma.gather(1, index),
                   padding, index)


def augment(context: Context, generator: torch.Generator, *, noise: tuple[float, float],
            continuum: float) -> Context:
    r"""Add Gaussian noise and a linear continuum error to contexts.

    Each spectrum gets a noise level uniform in ``noise`` (added to its flux and, in
    quadrature, to its uncertainty) and a factor :math:`1 + c\,x` with
    :math:`c \sim N(0, \texttt{continuum})` and :math:`x \in [-1, 1]` the pixel's position
    in the context's span of :math:`\ln\lambda`.
    """
    flux, sigma = context.flux, context.sigma
    n = flux.shape[0]
    if continuum > 0:
        x = torch.log(context.wavelength)
        lo, hi = x.amin(1, keepdim=True), x.amax(1, keepdim=True)
        x = (2 * (x - lo) / (hi - lo).clamp_min(1e-12) - 1).to(flux.dtype)
        slope = continuum * torch.randn(n, 1, generator=generator, dtype=flux.dtype)
        flux = flux * (1 + slope * x)
    if noise[1] > 0:
        level = noise[0] + (noise[1] - noise[0]) * torch.rand(n, 1, generator=generator,
                                                              dtype=flux.dtype)
        flux = flux + level * torch.randn(flux.shape, generator=generator, dtype=flux.dtype)
        sigma = torch.sqrt(sigma**2 + level**2)
    return Context(context.wavelength, flux, sigma, context.padding, context.index)


def star_tokens(spectra: Any, name: str = "spectra") -> tuple[Tensor, Tensor, Tensor, list]:
    """The valid pixels of one star (any spectrum object), flattened over its orders.

    Returns
    -------
    wavelength, flux, sigma : torch.Tensor
        ``(p,)`` float64 wavelength (Å), float32 flux and standard deviation (0 where the
        order has no uncertainty).
    pixels : list of (numpy.ndarray, numpy.ndarray)
        Per order, the vacuum wavelengths (Å) and fluxes of all its pixels and, in a third
        item, the positions of its valid pixels in the flattened arrays (-1 if masked).

    Raises
    ------
    FoundationError
        If no pixel of any order is valid (unmasked and finite).
    """
    batch = as_order_batch(spectra)
    waves, fluxes, sigmas, pixels = [], [], [], []
    start = 0
    for row, record in enumerate(batch.records):
        npix = int(batch.npix[row])
        valid = ~batch.mask[row, :npix]
        ivar = batch.ivar[row, :npix]
        sigma = torch.zeros(npix, dtype=torch.float64) if record.uncertainty is None else \
            1.0 / torch.sqrt(ivar.clamp_min(1e-300))
        position = np.full(npix, -1)
        position[valid.numpy()] = start + np.arange(int(valid.sum()))
        start += int(valid.sum())
        waves.append(batch.wavelength[row, :npix][valid])
        fluxes.append(batch.flux[row, :npix][valid])
        sigmas.append(sigma[valid])
        pixels.append((batch.wavelength[row, :npix].numpy(), batch.flux[row, :npix].numpy(),
                       position))
    if start == 0:
        raise FoundationError(f"{name} has no valid pixel: every pixel is masked, NaN or "
                              "infinite")
    return (torch.cat(waves), torch.cat(fluxes).float(), torch.cat(sigmas).float(), pixels)


def pad_stars(stars: Sequence[tuple[Tensor, Tensor, Tensor]]) -> tuple[Tensor, ...]:
    """Pad flattened stars to ``(n, p_max)`` wavelength, flux, sigma and valid tensors."""
    width = max(len(w) for w, _, _ in stars)
    n = len(stars)
    wavelength = torch.ones(n, width, dtype=torch.float64)
    flux, sigma = torch.zeros(n, width), torch.zeros(n, width)
    valid = torch.zeros(n, width, dtype=torch.bool)
    for i, (w, f, s) in enumerate(stars):
        wavelength[i, :len(w)], flux[i, :len(w)], sigma[i, :len(w)] = w, f, s
        wavelength[i, len(w):] = w[-1]
        valid[i, :len(w)] = True
    return wavelength, flux, sigma, valid
