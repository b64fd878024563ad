r"""An analytic toy population of stars for tests, examples and benchmarks of flows.

Spectra are :math:`f(\lambda) = \exp[-\sum_i \tau_i\, \phi_i(\lambda)]` plus Gaussian
noise, with Gaussian line profiles :math:`\phi_i` (peak 1) on a 0.1 Angstrom grid. A broad
hydrogen-like line at the middle of the grid (``h_center``) has
:math:`\tau = 0.6\,(T_{\rm eff}/6500\,{\rm K})^4`; iron lines have
:math:`\tau_i = a_i 10^{[{\rm Fe/H}]} (T_{\rm eff}/5500\,{\rm K})^{p_i}
[1 + q_i(\log g - 4.25)]`; magnesium lines
:math:`\tau_i = a_i 10^{[{\rm Mg/H}]} (T_{\rm eff}/5500\,{\rm K})^{p_i}`. Half the
magnesium lines are flagged as not ``listed``: the lines an analyst's line list lacks, for
hidden-line maps. This is a fixture generator, not a model of real stars; use
:mod:`stellarai.synth` for that.
"""

from __future__ import annotations

from typing import Any

import astropy.units as u
import numpy as np
from astropy.table import QTable

from ..labels import Label, LabelSpace, abundance_label

__all__ = ["ToyStars"]

class ToyStars:
    """A seeded toy population: line list, label space, flux and grids.

    Parameters
    ----------
    seed : int
        Seed of the line list.
    n_pix : int
        Pixels from 5000 Angstrom in steps of 0.1 Angstrom.
    noise : float
        Standard deviation of the flux noise.
    n_fe, n_mg : int
        Number of iron lines and of magnesium lines (half of them unlisted). Iron line
        strengths are uniform in [0.1, 0.8]; magnesium ones log-spaced from 0.02 to 0.8, so
        that some magnesium lines are weak.

    Examples
    --------
    >>> toy = ToyStars(n_pix=400)
    >>> grid = toy.grid(5, seed=1)
    >>> grid.flux.shape, grid.label_space.names
    ((5, 400), ('teff', 'logg', 'feh', 'mg_h'))
    """

    def __init__(self, seed: int = 0, *, n_pix: int = 1500, noise: float = 0.005,
                 n_fe: int = 30, n_mg: int = 12) -> None:
        rng = np.random.default_rng(seed)
        self.wavelength = (5000.0 + 0.1 * np.arange(n_pix)) * u.AA
        self.noise = float(noise)
        self.label_space = LabelSpace([
            Label("teff", u.K, (4500.0, 6500.0)),
            Label("logg", u.dex(u.cm / u.s**2), (3.5, 5.0)),
            abundance_label("fe", bounds=(-1.0, 0.3)),
            abundance_label("mg", bounds=(-1.0, 0.5)),
        ])
        wl = self.wavelength.value
        self.h_center = round(0.5 * (wl[0] + wl[-1]), 1)
        slots = np.arange(np.ceil(wl[0]) + 1.0, wl[-1] - 1.0, 1.0)
        slots = slots[np.abs(slots - self.h_center) > 4.0]
        chosen = rng.choice(len(slots), size=min(n_fe + n_mg, len(slots)), replace=False)
        n_mg = min(n_mg, len(chosen))
        element = np.array(["fe"] * (len(chosen) - n_mg) + ["mg"] * n_mg)
        listed = np.ones(len(chosen), dtype=bool)
        listed[len(chosen) - n_mg // 2:] = False
        self.lines = QTable({
            "wavelength": slots[chosen] * u.AA,
            "element": element,
            "strength": np.r_[rng.uniform(0.1, 0.8, len(chosen) - n_mg),
                              np.geomspace(0.8, 0.02, n_mg)[rng.permutation(n_mg)]],
            "teff_power": rng.uniform(-4.0, 2.0, len(chosen)),
            "logg_coef": np.where(element == "fe", rng.uniform(-0.3, 0.3, len(chosen)), 0.0),
            "listed": listed,
        })
        self.free_wavelengths = np.delete(slots, chosen) * u.AA
        self.sigma = 0.12

    def _profiles(self, centers: np.ndarray, sigma: float) -> np.ndarray:
        wl = self.wavelength.value
        return np.exp(-0.5 * ((wl[None, :] - centers[:, None]) / sigma) ** 2)

    def optical_depth(self, labels: np.ndarray, *, metals: float = 1.0) -> np.ndarray:
        r"""``(n, n_lines)`` line-centre optical depths for labels ``(n, 4)``."""
        teff, logg, feh, mg_h = (labels[:, i:i + 1] for i in range(4))
        lines = self.lines
        abundance = np.where(np.asarray(lines["element"]) == "mg", mg_h, feh)
        return (metals * lines["strength"] * 10.0**abundance
                * (teff / 5500.0) ** lines["teff_power"]
                * (1 + lines["logg_coef"] * (logg - 4.25)))

    def flux(self, labels: Any, *, seed: int | None = 0, metals: float = 1.0,
             hydrogen: float = 1.0, hydrogen_width: float = 1.5,
             extra_lines: Any = None, extra_depth: float = 0.3) -> np.ndarray:
        """Noisy flux ``(n, n_pix)`` for labels ``(n, 4)`` (``seed=None``: no noise).

        ``metals`` scales every metal line, ``hydrogen`` and ``hydrogen_width`` the broad
        line; ``extra_lines`` (Quantity) adds lines of optical depth ``extra_depth`` that
        are in no list.
        """
        labels = np.atleast_2d(np.asarray(labels, dtype=np.float64))
        tau = self.optical_depth(labels, metals=metals) @ self._profiles(
            self.lines["wavelength"].to_value(u.AA), self.sigma)
        tau_h = hydrogen * 0.6 * (labels[:, :1] / 6500.0) ** 4
        tau = tau + tau_h * self._profiles(np.array([self.h_center]), hydrogen_width)
        if extra_lines is not None:
            centers = np.atleast_1d(u.Quantity(extra_lines, u.AA).value)
            tau = tau + extra_depth * self._profiles(centers, self.sigma).sum(0)
        flux = np.exp(-tau)
        if seed is not None:
            flux = flux + self.noise * np.random.default_rng(seed).standard_normal(flux.shape)
        return flux

    def labels(self, n: int, *, seed: int = 0, **fixed: float) -> np.ndarray:
        """``(n, 4)`` labels drawn uniformly within the bounds; ``fixed`` overrides columns."""
        rng = np.random.default_rng(seed)
        space = self.label_space
        array = rng.uniform(space.lower, space.upper, (n, len(space)))
        for name, value in fixed.items():
            array[:, space.index(name)] = value
        return array

    def grid(self, n: int, *, seed: int = 0) -> Any:
        """A :class:`~stellarai.grids.SpectralGrid` of ``n`` noisy spectra."""
        from ..grids import SpectralGrid

        labels = self.labels(n, seed=seed)
        return SpectralGrid(self.wavelength, self.flux(labels, seed=seed + 1), labels,
                            self.label_space, provenance={"generator": "ToyStars",
                                                          "seed": seed})

    def line_depth(self, labels: Any, element: str = "mg") -> np.ndarray:
        """``(n, n_lines_of_element)`` noise-free central depth ``1 - exp(-tau)``."""
        labels = np.atleast_2d(np.asarray(labels, dtype=np.float64))
        keep = np.asarray(self.lines["element"]) == element
        return 1 - np.exp(-self.optical_depth(labels)[:, keep])
