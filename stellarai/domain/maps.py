r"""Missing-lines maps: where the observed domain responds to an element and the models do not.

For a set of reference stars, the derivative of the flux with respect to one abundance
label :math:`\theta_X` is taken twice: of the emulator's spectrum :math:`x_s(\theta)`
translated to the observed domain, :math:`x_{s\to o} = G_{\rm obs}(z, z_{sp})` with
:math:`z = E_{\rm synth}(x_s)`, and of a synthetic-domain reference :math:`r(\theta)`.
Their mean difference,

.. math::

    \Delta_j = \left\langle \frac{\partial x_{s\to o,j}}{\partial\theta_X}
    - \frac{\partial r_j}{\partial\theta_X} \right\rangle_{\rm stars},

is near zero where the synthetic models describe the element's lines, and negative at
absorption lines of element :math:`X` that the observed spectra have and the models lack
(Cycle-StarNet's "new lines", O'Briain et al. 2021, Sect. 5). Cycle-StarNet takes the
emulator's spectrum as the reference, :math:`r = x_s`; by default stellarai takes the
synthetic generator's output from the same latent, :math:`r = G_{\rm synth}(z)`, so that
:math:`\Delta` is the response of what the observed generator adds to the synthetic one.
An encoder that passes the abundance on only in part (a small shared latent, a short
training) then weakens both responses alike instead of leaving positive residuals at the
modelled lines and weakened missing ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import astropy.units as u
import numpy as np
from astropy.table import QTable
from specutils import Spectrum

from .errors import DomainError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["MissingLinesMap", "element_of"]


def element_of(label: str) -> str:
    """The element an abundance label belongs to.

    Examples
    --------
    >>> element_of("ti_h"), element_of("mg_fe"), element_of("feh")
    ('Ti', 'Mg', 'Fe')
    """
    name = label.lower()
    if name in ("feh", "fe_h"):
        return "Fe"
    if name in ("mh", "m_h"):
        return "M"
    for suffix in ("_h", "_fe"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)].capitalize()
    raise DomainError(f"{label!r} is not an abundance label ([X/H] as 'x_h', [X/Fe] as "
                      "'x_fe', or 'feh')")


@dataclass
class MissingLinesMap:
    """Per-pixel difference of the translated and synthetic responses to one abundance.

    Attributes
    ----------
    wavelength : Quantity
        ``(n_pix,)`` vacuum wavelength.
    difference : numpy.ndarray
        ``(n_pix,)`` translated minus synthetic response, flux per dex.
    translated, emulated : numpy.ndarray
        The two mean responses, flux per dex: of the translated spectra, and of the
        synthetic reference (``meta["reference"]``: the synthetic generator's
        reconstruction, or the emulator's spectra).
    label : str
        The abundance label differentiated.
    element : str
        Its element.
    n_stars : int
        Number of reference stars averaged over.
    meta : dict
        How the map was made (step, reference, split latent).
    """

    wavelength: u.Quantity
    difference: np.ndarray
    translated: np.ndarray
    emulated: np.ndarray
    label: str
    element: str
    n_stars: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def scatter(self) -> float:
        """Robust scatter of the map (1.4826 times the median absolute deviation)."""
        d = self.difference
        return float(1.4826 * np.median(np.abs(d - np.median(d))))

    def lines(self, threshold: float = 5.0, *, window: int = 2,
              minimum: float = 0.0) -> QTable:
        """The missing lines found: local minima of the map below ``-threshold`` scatters.

        Parameters
        ----------
        threshold : float
            Detection threshold in units of :attr:`scatter`.
        window : int
            A detection is the lowest pixel within ``±window`` pixels.
        minimum : float
            Also require a response below ``-minimum`` (flux per dex).

        Returns
        -------
        QTable
            ``wavelength``, ``response`` (flux per dex), ``significance`` (in scatters) and
            ``element`` of each line, strongest first.
        """
        if not (isinstance(threshold, (int, float)) and threshold > 0):
            raise DomainError(f"threshold must be a positive number, got {threshold!r}")
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise DomainError(f"window must be a positive integer, got {window!r}")
        d = self.difference
        padded = np.pad(d, window, constant_values=np.inf)
        local = np.all([d <= padded[window + k: window + k + len(d)]
                        for k in range(-window, window + 1) if k], axis=0)
        cut = min(-threshold * self.scatter, -float(minimum))
        found = np.flatnonzero(local & (d < cut))
        found = found[np.argsort(d[found])]
        scatter = self.scatter if self.scatter > 0 else np.inf
        return QTable({"wavelength": self.wavelength[found],
                       "response": d[found] * u.dex**-1,
                       "significance": -d[found] / scatter,
                       "element": [self.element] * len(found)})

    def to_spectrum(self) -> Spectrum:
        """The map as a `~specutils.Spectrum` (flux: the difference, per dex)."""
        return Spectrum(flux=self.difference * u.dimensionless_unscaled,
                        spectral_axis=self.wavelength,
                        meta={"label": self.label, "element": self.element,
                              "unit": "flux per dex", "n_stars": self.n_stars, **self.meta})

    def plot(self, ax: Any = None, *, threshold: float = 5.0) -> Figure:
        """The map against wavelength, the lines found marked with their element."""
        from matplotlib.figure import Figure

        if ax is None:
            fig = Figure(figsize=(8, 3.5), layout="constrained")
            ax = fig.add_subplot()
        else:
            fig = ax.figure
        wl = self.wavelength.to_value(u.AA)
        ax.plot(wl, self.difference, lw=0.8, color="k", label="translated - synthetic")
        ax.axhline(-threshold * self.scatter, color="0.6", ls=":", lw=0.8,
                   label=f"-{threshold:g} x scatter")
        found = self.lines(threshold)
        for i, (wavelength, response) in enumerate(zip(found["wavelength"].to_value(u.AA),
                                                       found["response"].value, strict=True)):
            ax.axvline(wavelength, color="C3", lw=0.6, alpha=0.6,
                       label=f"missing {self.element} line" if i == 0 else None)
            ax.annotate(self.element, (wavelength, response), textcoords="offset points",
                        xytext=(0, -10), ha="center", fontsize=7, color="C3")
        ax.set_xlabel(r"vacuum wavelength [$\AA$]")
        ax.set_ylabel(f"d flux / d {self.label} [1/dex]")
        ax.set_title(f"missing-lines map for {self.element} ({self.label}), "
                     f"{self.n_stars} stars")
        ax.legend(fontsize=7, loc="lower right")
        return fig
