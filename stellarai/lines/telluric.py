"""Telluric lines: a :class:`~stellarai.lines.LineModel` cloned from muler's TelFit template.

muler ships a TelFit transmission spectrum of the Earth's atmosphere tabulated on HPF's
pixels (``stellarai.ops.telluric.MULER_TELLURIC_TEMPLATES``), that is at HPF's
resolving power. :func:`telluric_lines` clones it through a Gaussian instrumental
profile of that resolving power, so the lines it returns are native (narrower than
observed) and can be multiplied with the star's lines before the instrument, in the
observatory frame: ``(star | Rotation | Doppler) * telluric | Instrument``.
"""

from __future__ import annotations

from typing import Any

import astropy.units as u
import numpy as np
from specutils import Spectrum, SpectrumList

from ..ops.telluric import Telluric
from .clone import clone_spectrum
from .errors import NoLinesError
from .model import LineModel

__all__ = ["HPF_RESOLVING_POWER", "telluric_lines"]

HPF_RESOLVING_POWER = 55_000.0
"""Resolving power of HPF, at which muler's TelFit template is tabulated."""


def telluric_lines(instrument: str = "hpf", *, wavelength_range: Any = None,
                   prominence: float = 0.02, resolving_power: float = HPF_RESOLVING_POWER,
                   steps: int = 150, optimizer: str = "lbfgs", progress: bool = False,
                   **kwargs: Any) -> LineModel:
    """Clone the telluric transmission muler ships for ``instrument`` into lines.

    Parameters
    ----------
    instrument : str
        ``"hpf"`` (the only template muler ships).
    wavelength_range : Quantity, optional
        ``(low, high)``: clone only the template's orders (segments) that overlap it.
    prominence : float
        Peak prominence for a telluric line.
    resolving_power : float
        Resolving power of the template (55,000 for HPF).
    steps, optimizer, progress, **kwargs
        Passed to :func:`~stellarai.lines.clone_spectrum`.

    Returns
    -------
    LineModel
        Native telluric lines (reference: the clone), on a native grid over the cloned
        segments; ``clone_report`` says how well they reproduce the template.

    Raises
    ------
    NoLinesError
        If no segment overlaps ``wavelength_range`` or no line reaches ``prominence``.
    """
    template = Telluric.from_muler(instrument)
    wavelength = template.table_wavelength.numpy()
    transmission = template.table_values.numpy()
    low, high = -np.inf, np.inf
    if wavelength_range is not None:
        low, high = u.Quantity(wavelength_range, u.AA).value
    spectra = []
    for first, last in template.segments:
        if last < low or first > high:
            continue
        keep = (wavelength >= first) & (wavelength <= last)
        spectra.append(Spectrum(flux=transmission[keep] * u.dimensionless_unscaled,
                                spectral_axis=wavelength[keep] * u.AA))
    if not spectra:
        raise NoLinesError(
            f"telluric_lines: no order of the {instrument!r} telluric template overlaps "
            f"{low:.1f}-{high:.1f} Angstrom (it covers {wavelength[0]:.1f}-"
            f"{wavelength[-1]:.1f} Angstrom)")
    return clone_spectrum(SpectrumList(spectra), prominence=prominence,
                          resolving_power=resolving_power, steps=steps, optimizer=optimizer,
                          progress=progress, **kwargs)
