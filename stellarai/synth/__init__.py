"""The offline synthesizer: line lists and a fast, approximate, differentiable spectrum model.

``stellarai.synth`` turns stellar labels into normalized spectra without any data file or
network access, so that every method of stellarai can be developed, tested and
demonstrated offline. It is an honest approximation (one-layer LTE, Milne–Eddington line
formation, see :mod:`stellarai.synth.physics`), not a substitute for model-atmosphere
grids such as PHOENIX when measuring real stars.

>>> import astropy.units as u
>>> from stellarai.synth import LineList, Synthesizer
>>> synth = Synthesizer(LineList.default([10820, 10850] * u.AA), [10825, 10845] * u.AA,
...                     resolving_power=50_000)
>>> synth.spectrum(teff=5000 * u.K, logg=4.5, feh=0.0).flux.shape
(93,)
"""

from .default_lines import default_line_table
from .elements import ELEMENT_DATA, METALS, element_data
from .hydrogen import hydrogen_log_gf, rydberg_wavelength
from .linelist import LineList, LineListError, parse_species
from .parameters import LabelMapping, default_label_space, synth_label_space
from .profiles import faddeeva, voigt_hjerting, voigt_profile
from .sampling import WavelengthGrid, auto_oversample, make_grid
from .synthesizer import Synthesizer

__all__ = [
    "ELEMENT_DATA",
    "METALS",
    "LabelMapping",
    "LineList",
    "LineListError",
    "Synthesizer",
    "WavelengthGrid",
    "auto_oversample",
    "default_label_space",
    "default_line_table",
    "element_data",
    "faddeeva",
    "hydrogen_log_gf",
    "make_grid",
    "parse_species",
    "rydberg_wavelength",
    "synth_label_space",
    "voigt_hjerting",
    "voigt_profile",
]
