r"""The network of the spectral foundation model: pixel tokens in, label Gaussians out.

Every pixel :math:`j` becomes a token

.. math::

    t_j = \frac{f_j - 1}{f_0}\,e_f + a(\sigma_j)\,e_\sigma + W\,\mathrm{enc}(\ln\lambda_j) + b,

a learned flux embedding :math:`e_f` scaled by the pixel's flux (its departure from a
normalized continuum, in units of :math:`f_0` = :data:`FLUX_SCALE`), a learned uncertainty
embedding scaled by :math:`a(\sigma) = \operatorname{asinh}(\sigma/\sigma_0)`
(:math:`\sigma_0` = :data:`SIGMA_SCALE`), and a projection of the multi-scale sinusoidal
encoding of :math:`\ln\lambda` (:class:`~stellarai.emulators.SinusoidalEncoding`, the
query encoding of TransformerPayne). Padding tokens (masked pixels, or fewer pixels than
the context length) are excluded from attention by a key-padding mask.

Pre-norm self-attention blocks encode the pixels. A learned query token per label
cross-attends to the encoded pixels (:class:`LabelDecoderBlock`), and a shared head gives
each label a mean and a log-variance. The queries also get a learned embedding scaled by
:math:`\ln(n/64)`, :math:`n` the number of tokens, so that the variance can grow when
fewer pixels are read (in the label space's scaled units, ±0.5 over the
bounds).

References
----------
Koblischke, N., & Bovy, J. 2024, arXiv:2411.04750 (SpectraFM).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..emulators.encoding import SinusoidalEncoding
from .errors import FoundationError

__all__ = ["FLUX_SCALE", "SIGMA_SCALE", "FoundationNet", "LabelDecoderBlock"]

FLUX_SCALE = 0.1
"""Flux departure from the continuum that gives a token its flux embedding once."""
SIGMA_SCALE = 0.01
"""Flux uncertainty :math:`\\sigma_0` at which the uncertainty feature turns logarithmic."""


class LabelDecoderBlock(nn.Module):
    """Pre-norm block: label queries cross-attend to encoded pixels, then an MLP.

    Parameters
    ----------
    d_model, n_heads, mlp_hidden : int
        Width, attention heads and MLP hidden width.
    """

    def __init__(self, d_model: int, n_heads: int, mlp_hidden: int) -> None:
        super().__init__()
        self.norm_query = nn.LayerNorm(d_model)
        self.norm_pixels = nn.LayerNorm(d_model)
        self.attention = nn.MultiheadAttention(d_model, n_heads, batch_first=True)
        self.norm_mlp = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, mlp_hidden), nn.GELU(),
                                 nn.Linear(mlp_hidden, d_model))

    def forward(self, query: Tensor, pixels: Tensor, padding: Tensor
                ) -> tuple[Tensor, Tensor]:
        """Updated queries ``(b, k, d)`` and head-averaged attention ``(b, k, p)``."""
        keys = self.norm_pixels(pixels)
        attended, weights = self.attention(self.norm_query(query), keys, keys,
                                           key_padding_mask=padding, need_weights=True,
                                           average_attn_weights=True)
        query = query + attended
        return query + self.mlp(self.norm_mlp(query)), weights


class FoundationNet(nn.Module):
    """Transformer from pixel tokens to a Gaussian per label.

    Parameters
    ----------
    n_labels : int
        Number of labels (one learned query token each).
    encoding : SinusoidalEncoding
        The log-wavelength encoding.
    d_model, n_heads, mlp_hidden : int
        Width, attention heads (dividing ``d_model``) and MLP width.
    n_blocks : int
        Self-attention encoder blocks.
    n_decoder : int
        Label decoder blocks.

    Examples
    --------
    >>> import math, torch
    >>> from stellarai.emulators import SinusoidalEncoding
    >>> net = FoundationNet(2, SinusoidalEncoding(8, 1e-5, 1.0, reference=math.log(1e4)),
    ...                     d_model=16, n_heads=2, mlp_hidden=32, n_blocks=1)
    >>> wl = torch.linspace(9990, 10010, 50, dtype=torch.float64).expand(3, -1)
    >>> mean, log_var, _ = net(wl, torch.ones(3, 50), torch.zeros(3, 50),
    ...                        torch.zeros(3, 50, dtype=torch.bool))
    >>> mean.shape, log_var.shape
    (torch.Size([3, 2]), torch.Size([3, 2]))
    """

    def __init__(self, n_labels: int, encoding: SinusoidalEncoding, *, d_model: int = 64,
                 n_heads: int = 4, mlp_hidden: int = 128, n_blocks: int = 3,
                 n_decoder: int = 1) -> None:
        super().__init__()
        for name, value in (("n_labels", n_labels), ("d_model", d_model),
                            ("n_heads", n_heads), ("mlp_hidden", mlp_hidden),
                            ("n_blocks", n_blocks), ("n_decoder", n_decoder)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise FoundationError(f"{name} must be a positive integer, got {value!r}")
        if d_model % n_heads:
            raise FoundationError(f"d_model ({d_model}) must be divisible by n_heads "
                                  f"({n_heads})")
        self.encoding = encoding
        self.flux_embedding = nn.Parameter(torch.randn(d_model) / math.sqrt(d_model))
        self.sigma_embedding = nn.Parameter(torch.randn(d_model) / math.sqrt(d_model))
        self.wavelength_in = nn.Linear(encoding.n_features, d_model)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(d_model, n_heads, mlp_hidden, dropout=0.0,
                                       activation="gelu", batch_first=True, norm_first=True)
            for _ in range(n_blocks))
        self.label_queries = nn.Parameter(0.5 * torch.randn(n_labels, d_model))
        self.count_embedding = nn.Parameter(torch.zeros(d_model))
        self.decoder = nn.ModuleList(LabelDecoderBlock(d_model, n_heads, mlp_hidden)
                                     for _ in range(n_decoder))
        self.norm_out = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 2)

    def tokens(self, wavelength: Tensor, flux: Tensor, sigma: Tensor) -> Tensor:
        """Pixel tokens ``(b, p, d)`` from wavelength (Å, float64), flux and uncertainty."""
        dtype = self.wavelength_in.weight.dtype
        position = self.wavelength_in(self.encoding(wavelength).to(dtype))
        feature = torch.asinh(sigma.to(dtype) / SIGMA_SCALE)
        return ((flux.to(dtype)[..., None] - 1) / FLUX_SCALE * self.flux_embedding
                + feature[..., None] * self.sigma_embedding + position)

    def encode(self, wavelength: Tensor, flux: Tensor, sigma: Tensor, padding: Tensor
               ) -> Tensor:
        """Encoded pixels ``(b, p, d)``; ``padding`` is True for tokens to ignore."""
        x = self.tokens(wavelength, flux, sigma)
        for block in self.blocks:
            x = block(x, src_key_padding_mask=padding)
        return x

    def forward(self, wavelength: Tensor, flux: Tensor, sigma: Tensor, padding: Tensor
                ) -> tuple[Tensor, Tensor, Tensor]:
        """Mean ``(b, k)``, log-variance ``(b, k)`` and last-block attention ``(b, k, p)``.

        ``wavelength``, ``flux``, ``sigma`` and ``padding`` are ``(b, p)``; every row needs
        at least one token that is not padding.
        """
        pixels = self.encode(wavelength, flux, sigma, padding)
        count = torch.log((~padding).sum(1).clamp_min(1).to(pixels.dtype) / 64.0)
        query = self.label_queries + count[:, None, None] * self.count_embedding
        weights = pixels.new_zeros(0)
        for block in self.decoder:
            query, weights = block(query, pixels, padding)
        out = self.head(self.norm_out(query))
        return out[..., 0], out[..., 1], weights

    def frozen_parameters(self, frozen_blocks: int) -> list[nn.Parameter]:
        """The tokenizer's and the first ``frozen_blocks`` encoder blocks' parameters."""
        if frozen_blocks == 0:
            return []
        frozen = [self.flux_embedding, self.sigma_embedding,
                  *self.wavelength_in.parameters()]
        for block in self.blocks[:frozen_blocks]:
            frozen.extend(block.parameters())
        return frozen
