r"""The Payne: a multilayer perceptron from scaled labels to flux at fixed pixels.

References
----------
Ting, Y.-S., Conroy, C., Rix, H.-W., & Cargile, P. 2019, ApJ, 879, 69 (arXiv:1804.01530).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import astropy.units as u
import torch
from torch import Tensor, nn

from ..labels import LabelSpace
from ..spectra.resample import interpolate_linear
from .base import DEFAULT_MAX_ELEMENTS, SpectralEmulator
from .errors import EmulatorError

__all__ = ["ACTIVATIONS", "PayneEmulator", "PayneMLP", "make_activation", "seeded"]

ACTIVATIONS = {
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}
"""Activation functions by name (``leaky_relu`` has slope 0.01 for negative inputs)."""


class seeded:  # noqa: N801 - a context manager used like a function
    """Context manager: run a block with torch's CPU RNG seeded, then restore its state.

    Examples
    --------
    >>> with seeded(1):
    ...     a = torch.rand(2)
    >>> with seeded(1):
    ...     b = torch.rand(2)
    >>> torch.equal(a, b)
    True
    """

    def __init__(self, seed: int) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise EmulatorError(f"seed must be an integer, got {seed!r}")
        self.seed = seed

    def __enter__(self) -> None:
        self._state = torch.random.get_rng_state()
        torch.manual_seed(self.seed)

    def __exit__(self, *exc: object) -> None:
        torch.random.set_rng_state(self._state)


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by name (see :data:`ACTIVATIONS`)."""
    if name not in ACTIVATIONS:
        raise EmulatorError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]()


class PayneMLP(nn.Module):
    r"""The Payne's network: :math:`f = W_{k+1}\,\sigma(\dots\sigma(W_1 z + b_1)\dots) + b_{k+1}`.

    Parameters
    ----------
    n_labels, n_pix : int
        Input (scaled labels) and output (pixels) sizes.
    hidden : sequence of int
        Widths of the hidden layers.
    activation : str
        Name in :data:`ACTIVATIONS`.
    """

    def __init__(self, n_labels: int, n_pix: int, hidden: Sequence[int] = (300, 300),
                 activation: str = "leaky_relu") -> None:
        super().__init__()
        widths = [int(n_labels), *(int(h) for h in hidden)]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), make_activation(activation)]
        layers.append(nn.Linear(widths[-1], int(n_pix)))
        self.layers = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        """Flux ``(n, n_pix)`` from scaled labels ``(n, n_labels)``."""
        return self.layers(z)


class PayneEmulator(SpectralEmulator):
    r"""The Payne (Ting et al. 2019): an MLP from scaled labels to flux at fixed pixels.

    Parameters
    ----------
    label_space : LabelSpace
        The labels (the network's inputs are scaled to ±0.5 within their bounds).
    wavelength : Quantity or array
        The ``n_pix`` emulated pixels (vacuum; numbers are Angstrom).
    hidden : sequence of int
        Hidden-layer widths; default two layers of 300 neurons.
    activation : str
        Activation (default ``"leaky_relu"``, slope 0.01); see :data:`ACTIVATIONS`.
    seed : int
        Seed of the weight initialization (same seed, same initial weights).
    flux_unit, provenance, max_elements
        See :class:`~stellarai.emulators.SpectralEmulator`.

    Notes
    -----
    The defaults (two hidden layers of 300 leaky-ReLU neurons, labels scaled to
    :math:`(x - x_{\rm lo})/(x_{\rm hi} - x_{\rm lo}) - 0.5`) follow the public training
    code of The Payne; the paper (Ting et al. 2019, ApJ 879, 69) describes a small
    fully-connected network per spectrum trained on Kurucz spectra. Other wavelengths
    than the emulated pixels are linearly interpolated; wavelengths outside the pixels
    raise :class:`~stellarai.emulators.EmulatorError`.

    Examples
    --------
    >>> import astropy.units as u, numpy as np
    >>> from stellarai.labels import LabelSpace
    >>> space = LabelSpace.default().subset(["teff", "logg"])
    >>> emu = PayneEmulator(space, np.linspace(5000, 5010, 50) * u.AA, hidden=(16, 16))
    >>> emu
    <PayneEmulator: labels ['teff', 'logg'], 50 px, 5000-5010 Angstrom, 1,170 parameters>
    >>> spec = emu.spectrum(teff=5 * u.kK, logg=4.4)
    >>> spec.flux.shape, spec.spectral_axis.unit
    ((50,), Unit("Angstrom"))
    """

    backend = "payne"
    fixed_wavelength = True

    def __init__(self, label_space: LabelSpace, wavelength: Any, *,
                 hidden: Sequence[int] = (300, 300), activation: str = "leaky_relu",
                 seed: int = 0, flux_unit: Any = u.dimensionless_unscaled,
                 provenance: Mapping[str, Any] | None = None,
                 max_elements: int = DEFAULT_MAX_ELEMENTS) -> None:
        if wavelength is None:
            raise EmulatorError("PayneEmulator needs the wavelengths of its pixels")
        hidden = tuple(int(h) for h in hidden)
        if any(h < 1 for h in hidden):
            raise EmulatorError(f"hidden widths must be positive integers, got {hidden!r}")
        self._hidden, self._activation, self._seed = hidden, activation, seed
        n_pix = len(wavelength)
        with seeded(seed):
            module = PayneMLP(len(label_space), n_pix, hidden, activation)
        super().__init__(label_space, module, wavelength=wavelength, flux_unit=flux_unit,
                         provenance=provenance, max_elements=max_elements)

    def _evaluate(self, z: Tensor, wavelength: Tensor | None) -> Tensor:
        n_pix = self._wavelength.numel()
        pieces = [self._module(z[rows]) for rows in self._row_chunks(len(z), n_pix)]
        flux = torch.cat(pieces) if pieces else z.new_zeros((0, n_pix))
        if wavelength is None:
            return flux
        grid = self._wavelength
        if float(wavelength.min()) < float(grid[0]) or float(wavelength.max()) > float(grid[-1]):
            raise EmulatorError(
                f"wavelength {float(wavelength.min()):.6g}-{float(wavelength.max()):.6g} "
                f"Angstrom lies outside the emulated pixels {float(grid[0]):.6g}-"
                f"{float(grid[-1]):.6g} Angstrom"
            )
        return interpolate_linear(wavelength.to(flux.dtype), grid.to(flux.dtype), flux)

    def train_batch(self, z: Tensor, flux: Tensor, generator: torch.Generator | None = None
                    ) -> tuple[Tensor, Tensor]:
        """Prediction and target for one training batch (all pixels)."""
        return self._module(z), flux

    def architecture(self) -> dict[str, Any]:
        """Hyper-parameters: ``{"hidden": [...], "activation": ..., "seed": ...}``."""
        return {"hidden": list(self._hidden), "activation": self._activation,
                "seed": self._seed}

    @classmethod
    def _from_architecture(cls, label_space: LabelSpace, wavelength: Any,
                           architecture: Mapping[str, Any], **kwargs: Any) -> PayneEmulator:
        return cls(label_space, wavelength, hidden=architecture["hidden"],
                   activation=architecture["activation"], seed=architecture.get("seed", 0),
                   **kwargs)
