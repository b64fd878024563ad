r"""The sub-networks of Cycle-StarNet: encoders, generators and discriminators.

- :class:`ConvEncoder`: a 1-D convolutional encoder, spectrum → latent vector. Cycle-StarNet
  has three: :math:`E_{\rm synth}` and :math:`E_{\rm obs}` into the shared latent space, and
  the split encoder :math:`E_{\rm split}` of the observed domain only.
- :class:`Generator`: latent vector → spectrum (a multilayer perceptron on the model's
  pixels, as The Payne); :math:`G_{\rm synth}` reads the shared latent,
  :math:`G_{\rm obs}` the shared and split latents.
- :class:`Discriminator`: judges a (spectrum, latent) pair: convolutional features of the
  spectrum joined with the latent vector, then a perceptron to one logit ("real").
- :class:`CycleNetwork`: all seven, with :meth:`~CycleNetwork.generator_parameters` and
  :meth:`~CycleNetwork.discriminator_parameters` for the two optimizers.

Spectra enter as normalized flux; the networks see ``flux - 1`` and generators return
``1 + output``.

References
----------
O'Briain, T., Ting, Y.-S., Fabbro, S., et al. 2021, ApJ, 906, 130 (arXiv:2007.03112);
Liu, M.-Y., Breuel, T., & Kautz, J. 2017, NeurIPS (arXiv:1703.00848).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .errors import DomainError

__all__ = ["ConvEncoder", "CycleNetwork", "Discriminator", "Generator"]

_SLOPE = 0.1  # leaky-ReLU slope of every hidden layer


def _conv_stack(n_pix: int, channels: Sequence[int], kernel_size: int) -> tuple[nn.Sequential,
                                                                               int]:
    """Strided 1-D convolutions (stride 2 each) and the flattened output size."""
    layers: list[nn.Module] = []
    previous, length = 1, n_pix
    for width in channels:
        layers += [nn.Conv1d(previous, width, kernel_size, stride=2, padding=kernel_size // 2),
                   nn.LeakyReLU(_SLOPE)]
        previous, length = width, (length + 2 * (kernel_size // 2) - kernel_size) // 2 + 1
    return nn.Sequential(*layers, nn.Flatten()), previous * length


class ConvEncoder(nn.Module):
    """Spectrum ``(b, n_pix)`` → latent ``(b, n_latent)`` through strided 1-D convolutions.

    Parameters
    ----------
    n_pix, n_latent : int
        Input pixels and latent size.
    channels : sequence of int
        Channels of the convolutions (each halves the length).
    kernel_size : int
        Kernel width in pixels (odd).
    hidden : int
        Width of the dense layer after the convolutions.
    """

    def __init__(self, n_pix: int, n_latent: int, channels: Sequence[int] = (8, 16, 16),
                 kernel_size: int = 7, hidden: int = 128) -> None:
        super().__init__()
        self.features, n_features = _conv_stack(n_pix, channels, kernel_size)
        self.head = nn.Sequential(nn.Linear(n_features, hidden), nn.LeakyReLU(_SLOPE),
                                  nn.Linear(hidden, n_latent))

    def forward(self, flux: Tensor) -> Tensor:
        """Latent vectors of normalized spectra ``flux``."""
        return self.head(self.features((flux - 1.0)[:, None, :]))


class Generator(nn.Module):
    r"""Latents → flux ``(b, n_pix)``: :math:`1 + \mathrm{MLP}(W_{sh} z_{sh} + W_{sp} z_{sp})`.

    Parameters
    ----------
    n_shared, n_pix : int
        Shared latent size and output pixels.
    hidden : int
        Width of the hidden layers.
    n_split : int
        Split latent size (0 for the synthetic generator).
    shared_input : torch.nn.Linear, optional
        The input layer of the shared latent, to share it with another generator.
    """

    def __init__(self, n_shared: int, n_pix: int, hidden: int = 256, n_split: int = 0,
                 shared_input: nn.Linear | None = None) -> None:
        super().__init__()
        self.shared_input = shared_input if shared_input is not None else nn.Linear(n_shared,
                                                                                    hidden)
        self.split_input = nn.Linear(n_split, hidden, bias=False) if n_split else None
        self.body = nn.Sequential(nn.LeakyReLU(_SLOPE), nn.Linear(hidden, hidden),
                                  nn.LeakyReLU(_SLOPE), nn.Linear(hidden, n_pix))

    def forward(self, shared: Tensor, split: Tensor | None = None) -> Tensor:
        """Normalized flux for shared (and split) latent vectors."""
        h = self.shared_input(shared)
        if self.split_input is not None:
            h = h + self.split_input(split)
        return 1.0 + self.body(h)


class Discriminator(nn.Module):
    """Logit that a (spectrum, latent) pair is real, not translated."""

    def __init__(self, n_pix: int, n_latent: int, channels: Sequence[int] = (8, 16, 16),
                 kernel_size: int = 7, hidden: int = 128) -> None:
        super().__init__()
        self.features, n_features = _conv_stack(n_pix, channels, kernel_size)
        self.head = nn.Sequential(nn.Linear(n_features + n_latent, hidden), nn.LeakyReLU(_SLOPE),
                                  nn.Linear(hidden, 1))

    def forward(self, flux: Tensor, z: Tensor) -> Tensor:
        """Logits ``(b,)``."""
        features = self.features((flux - 1.0)[:, None, :])
        return self.head(torch.cat([features, z], dim=1))[:, 0]


class CycleNetwork(nn.Module):
    r"""The six trainable sub-networks of Cycle-StarNet (the emulator is kept apart).

    Parameters
    ----------
    n_pix : int
        Pixels of the model's wavelength grid.
    n_shared, n_split : int
        Sizes of the shared latent and of the observed domain's split latent (0: none).
    channels : sequence of int
        Convolution channels of the encoders and discriminators.
    kernel_size : int
        Convolution kernel width (odd).
    hidden : int
        Width of the generators' hidden layers (the encoders and discriminators use half).
    share_weights : bool
        Share the dense head of the two shared-latent encoders and the shared-latent input
        layer of the two generators (the weight sharing of UNIT, Liu et al. 2017), which
        ties the two domains' latents together (default True).
    residual : bool
        Make the observed generator the synthetic one plus a correction,
        :math:`G_{\rm obs}(z_{sh}, z_{sp}) = G_{\rm synth}(z_{sh}) + \Delta(z_{sh}, z_{sp})`
        (default True): a translation then starts as the identity and learns only what
        differs between the domains.

    Examples
    --------
    >>> net = CycleNetwork(64, n_shared=4, n_split=2, channels=(4,), hidden=16)
    >>> flux = torch.ones(3, 64)
    >>> net.encode_observed(flux)[1].shape, net.translate_to_synthetic(flux).shape
    (torch.Size([3, 2]), torch.Size([3, 64]))
    """

    def __init__(self, n_pix: int, *, n_shared: int = 16, n_split: int = 4,
                 channels: Sequence[int] = (8, 16, 16), kernel_size: int = 7,
                 hidden: int = 256, share_weights: bool = True,
                 residual: bool = True) -> None:
        super().__init__()
        for name, value, low in (("n_pix", n_pix, 8), ("n_shared", n_shared, 1),
                                 ("n_split", n_split, 0), ("kernel_size", kernel_size, 1),
                                 ("hidden", hidden, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise DomainError(f"{name} must be an integer >= {low}, got {value!r}")
        if kernel_size % 2 == 0:
            raise DomainError(f"kernel_size must be odd, got {kernel_size}")
        channels = tuple(channels)
        if not channels or any(isinstance(c, bool) or not isinstance(c, int) or c < 1
                               for c in channels) or n_pix // 2 ** len(channels) < 1:
            raise DomainError(f"channels must be 1 to log2(n_pix) positive integers, got "
                              f"{channels!r}")
        self.n_pix, self.n_shared, self.n_split = n_pix, n_shared, n_split
        self.share_weights, self.residual = bool(share_weights), bool(residual)
        conv = {"channels": channels, "kernel_size": kernel_size, "hidden": max(hidden // 2, 1)}
        self.encoder_synth = ConvEncoder(n_pix, n_shared, **conv)
        self.encoder_obs = ConvEncoder(n_pix, n_shared, **conv)
        self.encoder_split = ConvEncoder(n_pix, n_split, **conv) if n_split else None
        self.generator_synth = Generator(n_shared, n_pix, hidden)
        self.generator_obs = Generator(n_shared, n_pix, hidden, n_split, shared_input=(
            self.generator_synth.shared_input if share_weights else None))
        if share_weights:
            self.encoder_obs.head = self.encoder_synth.head
        self.discriminator_synth = Discriminator(n_pix, n_shared, **conv)
        self.discriminator_obs = Discriminator(n_pix, n_shared + n_split, **conv)
        self.register_buffer("split_mean", torch.zeros(n_split))

    # ----------------------------------------------------------------- parameter sets
    def discriminator_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the two discriminators (trained by the discriminator loss only)."""
        yield from self.discriminator_synth.parameters()
        yield from self.discriminator_obs.parameters()

    def generator_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the encoders and generators (trained by the generator losses)."""
        owned = {id(p) for p in self.discriminator_parameters()}
        yield from (p for p in self.parameters() if id(p) not in owned)

    # ----------------------------------------------------------------- mappings
    def split(self, flux: Tensor) -> Tensor:
        """Split latents of observed spectra (``(b, 0)`` without a split latent)."""
        if self.encoder_split is None:
            return flux.new_zeros(flux.shape[0], 0)
        return self.encoder_split(flux)

    def encode_observed(self, flux: Tensor) -> tuple[Tensor, Tensor]:
        """Shared and split latents of observed spectra."""
        return self.encoder_obs(flux), self.split(flux)

    def generate_observed(self, shared: Tensor, split: Tensor) -> Tensor:
        """Observed-domain flux from shared and split latents."""
        flux = self.generator_obs(shared, split)
        if self.residual:
            flux = flux - 1.0 + self.generator_synth(shared)
        return flux

    def translate_to_observed(self, flux: Tensor, split: Tensor | None = None) -> Tensor:
        """Synthetic → observed; ``split`` defaults to :attr:`split_mean` for every row."""
        if split is None:
            split = self.split_mean.expand(flux.shape[0], self.n_split)
        return self.generate_observed(self.encoder_synth(flux), split)

    def translate_to_synthetic(self, flux: Tensor) -> Tensor:
        """Observed → synthetic."""
        return self.generator_synth(self.encoder_obs(flux))

    def architecture(self) -> dict[str, Any]:
        """JSON-serializable hyper-parameters that rebuild the network."""
        conv = self.encoder_obs.features
        channels = [m.out_channels for m in conv if isinstance(m, nn.Conv1d)]
        first = next(m for m in conv if isinstance(m, nn.Conv1d))
        return {"n_pix": self.n_pix, "n_shared": self.n_shared, "n_split": self.n_split,
                "channels": channels, "kernel_size": int(first.kernel_size[0]),
                "hidden": self.generator_synth.shared_input.out_features,
                "share_weights": self.share_weights, "residual": self.residual}
