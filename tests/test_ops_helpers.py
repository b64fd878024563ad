"""Shared helpers of the stellarai.ops tests (no tests of its own)."""

import astropy.units as u
import numpy as np
import torch

F64 = torch.float64


def two_orders(**meta):
    """Two 300-pixel orders (0.05 Angstrom pixels) near 1.08 micron, flat, in counts."""
    from specutils import Spectrum, SpectrumList

    return SpectrumList([
        Spectrum(flux=np.ones(300) * u.ct,
                 spectral_axis=(10_800 + 20 * i + 0.05 * np.arange(300)) * u.AA,
                 meta={"m": i, **meta})
        for i in range(2)])


def absorption(wavelength, centers, depth, sigma):
    """A unit continuum with Gaussian lines of one depth and width at ``centers``."""
    flux = np.ones_like(wavelength)
    for center in centers:
        flux -= depth * np.exp(-0.5 * ((wavelength - center) / sigma) ** 2)
    return flux


def gaussian_line(x, depth, center, sigma):
    """A Gaussian absorption line on a unit continuum (numpy or torch)."""
    exp = torch.exp if isinstance(x, torch.Tensor) else np.exp
    return 1 - depth * exp(-0.5 * ((x - center) / sigma) ** 2)
