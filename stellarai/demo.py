"""A small demonstration spectrum that stellarai generates itself (no data files needed).

Three ragged, HPF-like échelle orders near 1.08 µm with a handful of absorption lines
(Voigt profiles), photon noise and masked detector edges. It exists so that the README's
main command, the docs and the tests run anywhere, offline.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.nddata import StdDevUncertainty
from scipy.special import voigt_profile
from specutils import Spectrum, SpectrumList

__all__ = ["DEMO_LINES", "demo_spectrum_list"]

RYDBERG_HYDROGEN_PER_CM = 109677.583
"""Reduced-mass corrected Rydberg constant for hydrogen (cm^-1), PHYSICS.md."""


def _hydrogen_vacuum_wavelength(lower: int, upper: int) -> float:
    """Vacuum wavelength in Angstrom of the hydrogen transition ``upper -> lower``."""
    wavenumber = RYDBERG_HYDROGEN_PER_CM * (1.0 / lower**2 - 1.0 / upper**2)
    return 1e8 / wavenumber


DEMO_LINES: tuple[tuple[str, float, float, float], ...] = (
    # (label, vacuum wavelength [Angstrom], depth, Lorentzian HWHM [Angstrom])
    ("Si I", 10830.057, 0.45, 0.08),
    ("He I", 10833.306, 0.15, 0.05),
    ("Na I", 10837.814, 0.10, 0.03),
    ("Si I", 10846.792, 0.25, 0.05),
    ("Fe I", 10866.640, 0.20, 0.04),
    ("Fe I", 10884.262, 0.22, 0.04),
    ("Fe I", 10898.364, 0.12, 0.03),
    ("Pa gamma", _hydrogen_vacuum_wavelength(3, 6), 0.35, 1.50),
    ("Ca I", 10958.166, 0.18, 0.04),
)
"""Lines of the demo spectrum: approximate positions of real near-infrared lines."""

_ORDER_RANGES_ANGSTROM = ((10815.0, 10862.0, 1024), (10858.0, 10908.0, 1100),
                          (10904.0, 10965.0, 980))
_GAUSSIAN_SIGMA_ANGSTROM = 0.09  # thermal + instrumental width, about R = 50,000


def demo_spectrum_list(seed: int = 0, snr: float = 150.0) -> SpectrumList:
    """Return the demo spectrum: three normalized orders as a `~specutils.SpectrumList`.

    Parameters
    ----------
    seed : int
        Seed of the noise generator; the same seed gives the same spectrum.
    snr : float
        Signal-to-noise ratio per pixel in the continuum.

    Returns
    -------
    `~specutils.SpectrumList`
        Three `~specutils.Spectrum` orders (1024, 1100 and 980 pixels) with dimensionless
        flux, `~astropy.nddata.StdDevUncertainty`, a mask on the four outermost pixels of
        each side, and ``meta = {"m": order number, "instrumental_resolution": 50000,
        "origin": "stellarai demo"}``.

    Examples
    --------
    >>> orders = demo_spectrum_list()
    >>> len(orders), orders[0].flux.unit
    (3, Unit(dimensionless))
    """
    if not np.isfinite(snr) or snr <= 0:
        raise ValueError(f"snr must be a positive number, got {snr!r}")
    rng = np.random.default_rng(seed)
    orders = []
    for index, (start, stop, npix) in enumerate(_ORDER_RANGES_ANGSTROM):
        wavelength = np.geomspace(start, stop, npix)
        depth = np.zeros(npix)
        for _, center, strength, gamma in DEMO_LINES:
            profile = voigt_profile(wavelength - center, _GAUSSIAN_SIGMA_ANGSTROM, gamma)
            peak = voigt_profile(0.0, _GAUSSIAN_SIGMA_ANGSTROM, gamma)
            depth += strength * profile / peak
        clean = np.exp(-depth)
        sigma = np.sqrt(clean) / snr
        mask = np.zeros(npix, dtype=bool)
        mask[:4] = mask[-4:] = True
        orders.append(Spectrum(
            flux=(clean + sigma * rng.standard_normal(npix)) * u.dimensionless_unscaled,
            spectral_axis=wavelength * u.AA,
            uncertainty=StdDevUncertainty(sigma),
            mask=mask,
            meta={"m": 100 + index, "instrumental_resolution": 50_000.0,
                  "origin": "stellarai demo"},
        ))
    return SpectrumList(orders)
