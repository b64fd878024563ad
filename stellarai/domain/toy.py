r"""A pair of analytic toy domains, for tests, examples and quick checks of translators.

The synthetic domain is what an analyst's model makes: Gaussian absorption lines of iron
and titanium, :math:`f = \exp[-\sum_i \tau_i \phi_i(\lambda)]`, with
:math:`\tau_i = a_i\,10^{[X/H]}\,(T_{\rm eff}/5500\,{\rm K})^{p_i}`. The observed domain
adds what the model lacks: the withheld titanium lines, a broader line-spread function
(a Gaussian of ``lsf`` pixels), a random continuum wiggle per star (a quadratic of
amplitude up to ``wiggle``) and Gaussian noise of ``noise``. This is a fixture generator;
:mod:`stellarai.synth` makes realistic spectra.
"""

from __future__ import annotations

from typing import Any

import astropy.units as u
import numpy as np
from astropy.table import QTable
from scipy.ndimage import gaussian_filter1d

from ..labels import Label, LabelSpace, abundance_label

__all__ = ["ToyDomains"]


class ToyDomains:
    """Seeded synthetic and observed toy domains over one label space.

    Parameters
    ----------
    seed : int
        Seed of the line list.
    n_pix : int
        Pixels from 5000 Angstrom in steps of 0.1 Angstrom.
    n_fe, n_ti : int
        Number of iron and titanium lines.
    withheld : int
        How many of the titanium lines only the observed domain has.
    lsf : float
        Extra Gaussian line-spread function of the observed domain (sigma, pixels).
    wiggle : float
        Largest amplitude of the observed continuum's quadratic wiggle.
    noise : float
        Standard deviation of the observed flux noise.

    Examples
    --------
    >>> toy = ToyDomains(n_pix=200)
    >>> toy.label_space.names, len(toy.withheld)
    (('teff', 'feh', 'ti_h'), 4)
    >>> toy.observed_grid(3, seed=1).flux.shape
    (3, 200)
    """

    def __init__(self, seed: int = 0, *, n_pix: int = 256, n_fe: int = 8, n_ti: int = 8,
                 withheld: int = 4, lsf: float = 1.0, wiggle: float = 0.02,
                 noise: float = 0.005) -> None:
        rng = np.random.default_rng(seed)
        self.wavelength = (5000.0 + 0.1 * np.arange(n_pix)) * u.AA
        self.label_space = LabelSpace([Label("teff", u.K, (4500.0, 6500.0)),
                                       abundance_label("fe", bounds=(-0.5, 0.5)),
                                       abundance_label("ti", bounds=(-0.5, 0.5))])
        wl = self.wavelength.value
        slots = np.linspace(wl[0] + 0.6, wl[-1] - 0.6, n_fe + n_ti)
        chosen = rng.permutation(len(slots))
        element = np.array(["Fe"] * n_fe + ["Ti"] * n_ti)
        listed = np.ones(n_fe + n_ti, dtype=bool)
        listed[n_fe:n_fe + withheld] = False
        self.lines = QTable({"wavelength": slots[chosen] * u.AA, "element": element,
                             "strength": rng.uniform(0.2, 0.8, n_fe + n_ti),
                             "teff_power": rng.uniform(-3.0, 1.0, n_fe + n_ti),
                             "listed": listed})
        self.width, self.lsf, self.wiggle, self.noise = 0.12, float(lsf), float(wiggle), float(
            noise)

    @property
    def withheld(self) -> QTable:
        """The lines only the observed domain has."""
        return self.lines[~self.lines["listed"]]

    def _flux(self, labels: Any, keep: np.ndarray) -> np.ndarray:
        labels = np.atleast_2d(np.asarray(labels, dtype=np.float64))
        lines = self.lines[keep]
        abundance = np.where(np.asarray(lines["element"]) == "Ti", labels[:, 2:3], labels[:, 1:2])
        tau = (np.asarray(lines["strength"]) * 10.0**abundance
               * (labels[:, :1] / 5500.0) ** np.asarray(lines["teff_power"]))
        centres = lines["wavelength"].to_value(u.AA)
        profiles = np.exp(-0.5 * ((self.wavelength.value[None, :] - centres[:, None])
                                  / self.width) ** 2)
        return np.exp(-tau @ profiles)

    def synthetic_flux(self, labels: Any) -> np.ndarray:
        """Noise-free synthetic flux ``(n, n_pix)`` for labels ``(n, 3)``: listed lines only."""
        return self._flux(labels, np.asarray(self.lines["listed"]))

    def observed_flux(self, labels: Any, *, seed: int | None = 0) -> np.ndarray:
        """Observed flux ``(n, n_pix)``: every line, broader LSF, wiggle and noise.

        ``seed=None`` gives the noise-free, wiggle-free observed flux.
        """
        flux = self._flux(labels, np.ones(len(self.lines), dtype=bool))
        if self.lsf > 0:
            flux = gaussian_filter1d(flux, self.lsf, axis=1, mode="nearest")
        if seed is None:
            return flux
        rng = np.random.default_rng(seed)
        x = np.linspace(-1.0, 1.0, flux.shape[1])
        a, b = rng.uniform(-self.wiggle, self.wiggle, (2, len(flux), 1))
        flux = flux * (1 + a * x + b * (x**2 - 1 / 3))
        return flux + self.noise * rng.standard_normal(flux.shape)

    def labels(self, n: int, *, seed: int = 0) -> np.ndarray:
        """``(n, 3)`` labels drawn uniformly within the bounds."""
        space = self.label_space
        return np.random.default_rng(seed).uniform(space.lower, space.upper, (n, len(space)))

    def synthetic_grid(self, n: int, *, seed: int = 0) -> Any:
        """A :class:`~stellarai.grids.SpectralGrid` of ``n`` synthetic spectra."""
        from ..grids import SpectralGrid

        labels = self.labels(n, seed=seed)
        return SpectralGrid(self.wavelength, self.synthetic_flux(labels), labels,
                            self.label_space, provenance={"generator": "ToyDomains synthetic",
                                                          "seed": seed})

    def observed_grid(self, n: int, *, seed: int = 0) -> Any:
        """A :class:`~stellarai.grids.SpectralGrid` of ``n`` observed spectra (with ivar)."""
        from ..grids import SpectralGrid

        labels = self.labels(n, seed=seed)
        flux = self.observed_flux(labels, seed=seed + 1)
        ivar = np.full(flux.shape, 1.0 / max(self.noise, 1e-6) ** 2)
        return SpectralGrid(self.wavelength, flux, labels, self.label_space, ivar=ivar,
                            provenance={"generator": "ToyDomains observed", "seed": seed})
