r"""The torch side of a :class:`~stellarai.flows.SpectralFlow`: compression plus a zuko flow.

:class:`FlowNetwork` holds the parameters (PCA basis, standardization constants and the
zuko flow); calling it with a context returns a `torch.distributions.Distribution` over
the standardized PCA coefficients, as zuko flows do (``network(c).log_prob(z)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import zuko
from torch import Tensor, nn
from torch.distributions import Distribution

from .compression import PCABasis
from .errors import FlowError

__all__ = ["TRANSFORMS", "FlowNetwork", "build_zuko_flow"]

TRANSFORMS = ("nsf", "maf")


def build_zuko_flow(features: int, context: int, *, transform: str = "nsf", transforms: int = 3,
                    hidden_features: Sequence[int] = (64, 64), bins: int = 8) -> nn.Module:
    """A zuko neural spline flow (``"nsf"``) or masked autoregressive flow (``"maf"``).

    Examples
    --------
    >>> flow = build_zuko_flow(4, 2, transforms=2, hidden_features=(16,))
    >>> flow(torch.zeros(2)).sample((3,)).shape
    torch.Size([3, 4])
    """
    if transform not in TRANSFORMS:
        raise FlowError(f"transform must be one of {list(TRANSFORMS)}, got {transform!r}")
    hidden = tuple(int(h) for h in hidden_features)
    if transform == "nsf":
        return zuko.flows.NSF(features, context, bins=bins, transforms=transforms,
                              hidden_features=hidden)
    return zuko.flows.MAF(features, context, transforms=transforms, hidden_features=hidden)


class FlowNetwork(nn.Module):
    r"""PCA compression, standardization and a conditional zuko flow.

    Parameters
    ----------
    pca : PCABasis
        The compression (float64 buffers).
    coefficient_mean, coefficient_std : torch.Tensor
        ``(n_components,)`` standardization of the coefficients:
        :math:`z = (c - \mu_c) / \sigma_c`.
    context_mean, context_std : torch.Tensor
        ``(n_context,)`` standardization of the scaled conditioning labels (empty for an
        unconditional flow).
    **architecture
        Passed to :func:`build_zuko_flow`.
    """

    def __init__(self, pca: PCABasis, coefficient_mean: Tensor, coefficient_std: Tensor,
                 context_mean: Tensor, context_std: Tensor, **architecture: Any) -> None:
        super().__init__()
        self.pca = pca
        self.register_buffer("coefficient_mean", coefficient_mean)
        self.register_buffer("coefficient_std", coefficient_std)
        self.register_buffer("context_mean", context_mean)
        self.register_buffer("context_std", context_std)
        self.flow = build_zuko_flow(pca.n_components, len(context_mean), **architecture)

    @property
    def n_context(self) -> int:
        """Number of conditioning labels."""
        return int(self.context_mean.shape[0])

    def standardize(self, coefficients: Tensor) -> Tensor:
        """Standardized coefficients ``z`` (float32) from PCA coefficients."""
        z = (coefficients - self.coefficient_mean) / self.coefficient_std
        return z.to(torch.float32)

    def context(self, scaled_labels: Tensor | None) -> Tensor | None:
        """Standardized context from scaled labels ``(n, n_context)`` (None if unconditional)."""
        if self.n_context == 0:
            return None
        c = (scaled_labels.to(self.context_mean.dtype) - self.context_mean) / self.context_std
        return c.to(torch.float32)

    def forward(self, context: Tensor | None = None) -> Distribution:
        """The distribution of standardized coefficients given a standardized context."""
        return self.flow(context)

    def log_prob(self, coefficients: Tensor, scaled_labels: Tensor | None) -> Tensor:
        r"""Log density of PCA coefficients, :math:`\log p(z) - \sum\log\sigma_c` (float64)."""
        z = self.standardize(coefficients)
        log_p = self(self.context(scaled_labels)).log_prob(z).to(torch.float64)
        return log_p - torch.log(self.coefficient_std).sum()

    def sample_coefficients(self, n: int, scaled_labels: Tensor | None) -> Tensor:
        """``(n, n_components)`` PCA coefficients drawn from the flow (float64)."""
        context = self.context(scaled_labels)
        z = self(None).sample((n,)) if context is None else self(context).sample()
        return z.to(torch.float64) * self.coefficient_std + self.coefficient_mean
