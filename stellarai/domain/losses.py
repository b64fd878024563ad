r"""The losses of the cycle-consistent translation, and their weights.

Spectrum losses are uncertainty-weighted squared errors averaged over the pixels that are
not masked, i.e. reduced :math:`\chi^2` values,

.. math::

    \chi^2_\nu(\hat x, x) = \frac{\sum_j w_j\,(\hat x_j - x_j)^2}{\#\{j: w_j > 0\}},

with :math:`w_j` the inverse variance of pixel :math:`j` (0 where it is masked). The
adversarial losses are binary cross-entropies on the discriminators' logits. The
optional decorrelation penalty (:func:`split_correlation`) is a stellarai addition, not a
Cycle-StarNet loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from .errors import DomainError

__all__ = ["LossWeights", "adversarial", "reduced_chi2", "split_correlation"]


@dataclass(frozen=True)
class LossWeights:
    """Weights of the losses (defaults: those of Cycle-StarNet, O'Briain et al. 2021).

    Attributes
    ----------
    synthetic : float
        Synthetic-domain reconstruction and cycle-reconstruction (default 3).
    observed : float
        Observed-domain reconstruction and cycle-reconstruction (default 9).
    generator : float
        Adversarial loss of the encoder-generator pairs (default 1).
    discriminator : float
        Loss of the discriminators (default 1).

    Examples
    --------
    >>> LossWeights.from_any({"observed": 5})
    LossWeights(synthetic=3.0, observed=5.0, generator=1.0, discriminator=1.0)
    """

    synthetic: float = 3.0
    observed: float = 9.0
    generator: float = 1.0
    discriminator: float = 1.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not value >= 0 or value == float("inf"):
                raise DomainError(f"loss weight {item.name!r} must be a finite number >= 0, "
                                  f"got {value!r}")
            object.__setattr__(self, item.name, float(value))

    @classmethod
    def from_any(cls, value: LossWeights | Mapping[str, float] | None) -> LossWeights:
        """Weights from a `LossWeights`, a mapping of some of the weights, or None."""
        if value is None:
            return cls()
        if isinstance(value, LossWeights):
            return value
        if not isinstance(value, Mapping):
            raise DomainError(f"weights must be a LossWeights or a mapping, got "
                              f"{type(value).__name__}")
        unknown = sorted(set(value) - {f.name for f in fields(cls)})
        if unknown:
            raise DomainError(f"unknown loss weights {unknown}; known: "
                              f"{[f.name for f in fields(cls)]}")
        return cls(**value)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable copy."""
        return asdict(self)


def reduced_chi2(prediction: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    r"""Mean of ``weight * (prediction - target)**2`` over the pixels with ``weight > 0``.

    Examples
    --------
    >>> reduced_chi2(torch.tensor([[1.0, 3.0]]), torch.tensor([[0.0, 0.0]]),
    ...              torch.tensor([[4.0, 0.0]]))
    tensor(4.)
    """
    used = (weight > 0).sum().clamp_min(1)
    return (weight * (prediction - target) ** 2).sum() / used


def adversarial(logits: Tensor, real: bool) -> Tensor:
    """Binary cross-entropy of discriminator ``logits`` against the class ``real``."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def split_correlation(shared: Tensor, split: Tensor, eps: float = 1e-6) -> Tensor:
    r"""Squared correlation between split and shared latents over a batch.

    With :math:`C_{ij}` the Pearson correlation of shared latent :math:`i` and split latent
    :math:`j` across the batch, the penalty is :math:`\frac{1}{n_{\rm split}}
    \sum_{i,j} C_{ij}^2`: 0 when no split latent follows any shared one linearly, about the
    share of a split latent's variance that the shared latents explain when those are
    uncorrelated with each other. Batches of fewer than 2 rows, or without split latents,
    give 0.

    Parameters
    ----------
    shared : torch.Tensor
        ``(b, n_shared)`` shared latents.
    split : torch.Tensor
        ``(b, n_split)`` split latents of the same spectra.
    eps : float
        Added to the standard deviations (a constant latent has no correlation).

    Returns
    -------
    torch.Tensor
        A scalar in :math:`[0, n_{\rm shared}]`.

    Examples
    --------
    >>> a = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    >>> round(float(split_correlation(a, 2 * a)), 4), float(split_correlation(a, a[:, :0]))
    (1.0, 0.0)
    """
    if len(shared) < 2 or not split.shape[1]:
        return split.new_zeros(())

    def standardized(x: Tensor) -> Tensor:
        x = x - x.mean(0)
        return x / (x.pow(2).mean(0).sqrt() + eps)

    corr = standardized(shared).T @ standardized(split) / len(shared)
    return corr.pow(2).sum() / split.shape[1]
