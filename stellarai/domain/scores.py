r"""The cross-validation report of Cycle-StarNet.

On pairs of spectra with the same labels in both domains (observed spectra with known
labels, and the emulator's spectra at those labels), two spectrum scores and four latent
scores, as defined in Cycle-StarNet's technical write-up (O'Briain et al.):

- ``x_synth_to_obs``: mean squared difference between :math:`x_{s\to o}` (the synthetic
  spectrum translated with the observed partner's split latent) and :math:`x_o`;
- ``x_obs_to_synth``: the same for :math:`x_{o\to s}` against :math:`x_s`;
- ``z_synth_vs_synth_to_obs``: :math:`z_{\rm sh}(x_s)` against
  :math:`z_{\rm sh}(x_{s\to o})`;
- ``z_obs_vs_obs_to_synth``: :math:`z_{\rm sh}(x_o)` against :math:`z_{\rm sh}(x_{o\to s})`;
- ``z_split_vs_synth_to_obs``: :math:`z_{\rm sp}(x_o)` against :math:`z_{\rm sp}(x_{s\to o})`;
- ``z_synth_vs_obs``: :math:`z_{\rm sh}(x_s)` against :math:`z_{\rm sh}(x_o)`.

A latent score min-max normalizes every latent variable to [0, 1] over the whole
cross-validation set (both members of the comparison together), then takes the mean
absolute difference: the network may scale its latents freely, so only differences
relative to the spread of the set mean anything. 0 is perfect agreement.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .networks import CycleNetwork

__all__ = ["SCORE_NAMES", "cross_validation_scores", "latent_score"]

SCORE_NAMES = ("x_synth_to_obs", "x_obs_to_synth", "z_synth_vs_synth_to_obs",
               "z_obs_vs_obs_to_synth", "z_split_vs_synth_to_obs", "z_synth_vs_obs")
"""Keys of :func:`cross_validation_scores`, in the order of the write-up."""


def latent_score(a: Tensor, b: Tensor) -> float:
    """Mean absolute difference of latents ``a`` and ``b`` after a joint min-max scaling.

    Examples
    --------
    >>> a = torch.tensor([[0.0], [1.0], [2.0]])
    >>> round(latent_score(a, a + 0.2), 4)
    0.0909
    """
    if a.shape[1] == 0:
        return 0.0
    both = torch.cat([a, b])
    lo, span = both.min(0).values, (both.max(0).values - both.min(0).values)
    span = torch.where(span > 0, span, torch.ones_like(span))
    return float(((a - lo) / span - (b - lo) / span).abs().mean())


def cross_validation_scores(network: CycleNetwork, synthetic: Tensor, observed: Tensor,
                            weight: Tensor) -> dict[str, float]:
    """The six scores on paired spectra (same labels, same row order).

    Parameters
    ----------
    network : CycleNetwork
        The translator's network (evaluated without gradients).
    synthetic, observed : torch.Tensor
        ``(n, n_pix)`` normalized flux of the pairs, in the network's dtype.
    weight : torch.Tensor
        Weights of ``observed`` (0 = masked; masked pixels are left out of the scores).
    """
    with torch.no_grad():
        z_s = network.encoder_synth(synthetic)
        z_o, split_o = network.encode_observed(observed)
        s_to_o = network.generate_observed(z_s, split_o)
        o_to_s = network.generator_synth(z_o)
        z_so, split_so = network.encode_observed(s_to_o)
        z_os = network.encoder_synth(o_to_s)
    used = weight > 0
    return {
        "x_synth_to_obs": float(((s_to_o - observed)[used] ** 2).mean()),
        "x_obs_to_synth": float(((o_to_s - synthetic)[used] ** 2).mean()),
        "z_synth_vs_synth_to_obs": latent_score(z_s, z_so),
        "z_obs_vs_obs_to_synth": latent_score(z_o, z_os),
        "z_split_vs_synth_to_obs": latent_score(split_o, split_so),
        "z_synth_vs_obs": latent_score(z_s, z_o),
    }
