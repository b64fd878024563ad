"""Per-pixel attention of a label's query: which pixels the model reads for a label."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np
from specutils import Spectrum, SpectrumList

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["AttentionMap"]


@dataclass(frozen=True)
class AttentionMap:
    """Attention of one label's query token over a star's pixels, order by order.

    The attention of a pixel is the decoder's cross-attention weight from the label's
    query to that pixel (last decoder block, mean over heads), averaged over the random
    contexts that contained the pixel, times the number of tokens in the context: 1 means
    "an average share", 10 ten times that. Masked pixels, and pixels no context drew,
    are NaN.

    Attributes
    ----------
    label : str
        The label.
    wavelength : list of Quantity
        Each order's vacuum wavelengths (Å).
    flux : list of numpy.ndarray
        Each order's flux.
    attention : list of numpy.ndarray
        Each order's relative attention per pixel.
    """

    label: str
    wavelength: list[u.Quantity]
    flux: list[np.ndarray]
    attention: list[np.ndarray]

    def to_spectrum_list(self) -> SpectrumList:
        """The attention as a `~specutils.SpectrumList`, one `~specutils.Spectrum` per
        order (flux: relative attention, dimensionless; ``meta["label"]``)."""
        return SpectrumList([Spectrum(flux=a * u.one, spectral_axis=w,
                                      meta={"label": self.label})
                             for w, a in zip(self.wavelength, self.attention, strict=True)])

    def to_spectrum(self, order: int = 0) -> Spectrum:
        """One order's attention as a `~specutils.Spectrum`."""
        return self.to_spectrum_list()[order]

    def peaks(self, n: int = 5) -> u.Quantity:
        """Wavelengths of the ``n`` pixels with the highest attention, highest first."""
        wavelength = np.concatenate([w.to_value(u.AA) for w in self.wavelength])
        attention = np.concatenate(self.attention)
        order = np.argsort(np.where(np.isfinite(attention), -attention, np.inf))
        return wavelength[order[:n]] * u.AA

    def plot(self) -> Figure:
        """Flux (top) and attention (bottom) against wavelength, as a Figure."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(8, 4.5), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(1, 1))
        for w, f, a in zip(self.wavelength, self.flux, self.attention, strict=True):
            top.plot(w.to_value(u.AA), f, lw=0.7, color="k")
            bottom.plot(w.to_value(u.AA), a, lw=0.7, color="C3")
        top.set_ylabel("flux")
        bottom.set_ylabel(f"attention of {self.label!r}")
        bottom.set_xlabel("vacuum wavelength (Angstrom)")
        return fig
