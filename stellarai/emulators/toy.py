r"""An analytic toy spectrum model, for examples, tests and benchmarks of emulators.

Gaussian absorption lines whose depths depend on Teff and [Fe/H] and whose widths depend
on log g, multiplied together on a wavelength grid uniform in :math:`\ln\lambda`. It is
cheap, smooth in the labels and known everywhere in wavelength, so an emulator's accuracy
can be measured at pixels it never saw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np

from ..labels import LabelSpace

if TYPE_CHECKING:
    from ..grids import SpectralGrid

__all__ = ["toy_flux", "toy_grid", "toy_label_space", "toy_wavelength"]


def toy_label_space() -> LabelSpace:
    """Teff 4000–7000 K, log g 3.5–5, [Fe/H] −1 to 0.5 (defaults of the default space).

    Examples
    --------
    >>> toy_label_space().names
    ('teff', 'logg', 'feh')
    """
    space = LabelSpace.default().subset(["teff", "logg", "feh"])
    space = space.with_bounds("teff", 4000, 7000).with_bounds("logg", 3.5, 5.0)
    return space.with_bounds("feh", -1.0, 0.5)


def toy_wavelength(n_pix: int = 300, low: float = 5000.0, high: float = 5030.0) -> u.Quantity:
    """``n_pix`` wavelengths uniform in :math:`\\ln\\lambda` from ``low`` to ``high`` (Å)."""
    return np.geomspace(low, high, n_pix) * u.AA


def toy_flux(labels: np.ndarray, wavelength: np.ndarray, *, n_lines: int = 12,
             seed: int = 1) -> np.ndarray:
    r"""Normalized toy flux ``(n, n_pix)`` for labels ``(n, 3)`` (teff, logg, feh) at Å.

    Line :math:`k` has centre :math:`c_k`, depth
    :math:`d_k = 0.9\,\sigma(a_k + b_k [{\rm Fe/H}] - s_k (T_{\rm eff} - 5500)/1000)` and width
    :math:`w_k (1 + 0.2(\log g - 4.25))`; the lines' parameters are drawn from ``seed``.

    Examples
    --------
    >>> flux = toy_flux(np.array([[5500.0, 4.5, 0.0]]), np.linspace(5000, 5030, 5))
    >>> flux.shape, bool((flux > 0).all() and (flux <= 1).all())
    ((1, 5), True)
    """
    rng = np.random.default_rng(seed)
    wl = np.asarray(wavelength, dtype=np.float64)
    lo, hi = float(wl.min()), float(wl.max())
    centre = rng.uniform(lo + 0.05 * (hi - lo), hi - 0.05 * (hi - lo), n_lines)
    a = rng.uniform(-1.5, 1.0, n_lines)
    b = rng.uniform(0.5, 2.0, n_lines)
    s = rng.uniform(-0.5, 1.5, n_lines)
    width = rng.uniform(0.15, 0.4, n_lines)
    labels = np.atleast_2d(np.asarray(labels, dtype=np.float64))
    teff, logg, feh = labels[:, 0:1], labels[:, 1:2], labels[:, 2:3]
    flux = np.ones((len(labels), wl.size))
    for k in range(n_lines):
        depth = 0.9 / (1 + np.exp(-(a[k] + b[k] * feh - s[k] * (teff - 5500) / 1000)))
        sigma = width[k] * (1 + 0.2 * (logg - 4.25))
        flux *= 1 - depth * np.exp(-0.5 * ((wl - centre[k]) / sigma) ** 2)
    return flux


def toy_grid(n: int, *, n_pix: int = 300, seed: int = 0, **kwargs: float) -> SpectralGrid:
    """A :class:`~stellarai.grids.SpectralGrid` of ``n`` toy spectra at random labels.

    Parameters
    ----------
    n : int
        Number of spectra (labels drawn uniformly in :func:`toy_label_space`).
    n_pix : int
        Pixels (see :func:`toy_wavelength`).
    seed : int
        Seed of the labels.
    **kwargs
        ``low`` and ``high`` of :func:`toy_wavelength`.

    Examples
    --------
    >>> toy_grid(5, n_pix=20)
    <SpectralGrid: 5 spectra x 20 px, 5000-5030 Angstrom (vacuum)
      labels: teff [K], logg [dex(cm / s2)], feh [dex]
      flux: dimensionless, float64, in memory>
    """
    from ..grids import SpectralGrid, make_provenance

    space = toy_label_space()
    labels = space.random(n, seed=seed)
    wavelength = toy_wavelength(n_pix, **kwargs)
    values = space.parse_batch(labels)
    return SpectralGrid(wavelength, toy_flux(values, wavelength.value), labels, space,
                        provenance=make_provenance("stellarai.emulators.toy.toy_grid",
                                                   seed=seed))
