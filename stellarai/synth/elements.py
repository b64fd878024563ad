"""Atomic data of the species the synthesizer knows: hydrogen and 15 metals.

One record per element: atomic mass, first and second ionization energies, the solar
abundance and a coarse table of partition functions for the neutral atom and the singly
charged ion. Nothing here is computed; :mod:`stellarai.synth.physics` turns the numbers
into populations.

Sources
-------
* Solar abundances log ε (with log ε_H = 12): Asplund, Grevesse, Sauval & Scott 2009,
  ARA&A 47, 481 (arXiv:0909.0948), photospheric values.
* Ionization energies and standard atomic masses: NIST Atomic Spectra Database and IUPAC
  (values rounded to 3–4 decimals).
* Partition functions: log10 U at 4000, 6000 and 8000 K, rounded values of the size found
  in standard tables (e.g. Gray 2005, *The Observation and Analysis of Stellar
  Photospheres*, 3rd ed., App. D). They are coarse (good to roughly 10–20 %), which is in
  keeping with the one-layer model that uses them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ALPHA_ELEMENTS",
    "ELEMENT_DATA",
    "HELIUM_MASS",
    "HELIUM_SOLAR_LOG_EPS",
    "METALS",
    "PARTITION_TEMPERATURES",
    "ElementData",
    "element_data",
]

PARTITION_TEMPERATURES = (4000.0, 6000.0, 8000.0)
"""Temperatures (K) at which :attr:`ElementData.log_u` is tabulated."""

HELIUM_SOLAR_LOG_EPS = 10.93
"""Solar helium abundance log ε_He (Asplund et al. 2009)."""

HELIUM_MASS = 4.0026
"""Atomic mass of helium (u)."""


@dataclass(frozen=True)
class ElementData:
    """Atomic data of one element, as used by the synthesizer.

    Parameters
    ----------
    symbol : str
        Element symbol (``"Fe"``).
    mass : float
        Standard atomic mass in atomic mass units.
    ionization_energies : (float, float)
        First and second ionization energies in eV.
    solar_log_eps : float
        Solar photospheric abundance log ε = log10(N_X/N_H) + 12 (Asplund et al. 2009).
    log_u : ((float, float, float), (float, float, float))
        log10 of the partition function of the neutral atom and of the singly charged
        ion at the temperatures :data:`PARTITION_TEMPERATURES`.

    Examples
    --------
    >>> element_data("Fe").solar_log_eps
    7.5
    """

    symbol: str
    mass: float
    ionization_energies: tuple[float, float]
    solar_log_eps: float
    log_u: tuple[tuple[float, float, float], tuple[float, float, float]]


def _e(symbol: str, mass: float, chi1: float, chi2: float, log_eps: float,
       neutral: tuple[float, float, float], ion: tuple[float, float, float]) -> ElementData:
    return ElementData(symbol, mass, (chi1, chi2), log_eps, (neutral, ion))


# symbol, mass (u), I (eV), II (eV), log eps (Asplund 2009), log U(I), log U(II) at 4/6/8 kK
ELEMENT_DATA: dict[str, ElementData] = {
    data.symbol: data
    for data in (
        _e("H", 1.008, 13.5984, 0.0, 12.00, (0.301, 0.301, 0.301), (0.0, 0.0, 0.0)),
        _e("C", 12.011, 11.2603, 24.3833, 8.43, (0.95, 0.98, 1.02), (0.77, 0.78, 0.78)),
        _e("N", 14.007, 14.5341, 29.6013, 7.83, (0.60, 0.60, 0.61), (0.94, 0.95, 0.96)),
        _e("O", 15.999, 13.6181, 35.1211, 8.69, (0.93, 0.94, 0.95), (0.60, 0.60, 0.60)),
        _e("Na", 22.990, 5.1391, 47.2864, 6.24, (0.30, 0.32, 0.44), (0.0, 0.0, 0.0)),
        _e("Mg", 24.305, 7.6462, 15.0353, 7.60, (0.00, 0.01, 0.05), (0.30, 0.30, 0.30)),
        _e("Al", 26.982, 5.9858, 18.8286, 6.45, (0.77, 0.78, 0.79), (0.0, 0.0, 0.0)),
        _e("Si", 28.086, 8.1517, 16.3459, 7.51, (0.97, 1.00, 1.05), (0.75, 0.76, 0.76)),
        _e("K", 39.098, 4.3407, 31.6300, 5.03, (0.31, 0.38, 0.62), (0.0, 0.0, 0.0)),
        _e("Ca", 40.078, 6.1132, 11.8717, 6.34, (0.03, 0.10, 0.30), (0.30, 0.35, 0.46)),
        _e("Ti", 47.867, 6.8281, 13.5755, 4.95, (1.40, 1.58, 1.75), (1.68, 1.77, 1.88)),
        _e("V", 50.942, 6.7462, 14.6180, 3.93, (1.50, 1.65, 1.80), (1.40, 1.52, 1.66)),
        _e("Cr", 51.996, 6.7665, 16.4857, 5.64, (0.92, 1.03, 1.20), (0.78, 0.84, 0.93)),
        _e("Mn", 54.938, 7.4340, 15.6400, 5.43, (0.78, 0.82, 0.92), (0.85, 0.90, 0.98)),
        _e("Fe", 55.845, 7.9024, 16.1992, 7.50, (1.36, 1.47, 1.64), (1.58, 1.66, 1.75)),
        _e("Ni", 58.693, 7.6399, 18.1688, 6.22, (1.46, 1.48, 1.52), (0.95, 1.01, 1.07)),
    )
}
"""Atomic data by element symbol: hydrogen and the 15 metals of the default line list."""

METALS = tuple(symbol for symbol in ELEMENT_DATA if symbol != "H")
"""The 15 metals, in order of atomic number: C, N, O, Na, Mg, Al, Si, K, Ca, Ti, V, Cr,
Mn, Fe, Ni."""

ALPHA_ELEMENTS = ("O", "Mg", "Si", "Ca", "Ti")
"""Elements scaled by the ``alpha_fe`` label."""


def element_data(symbol: str) -> ElementData:
    """Atomic data of element ``symbol`` (case-insensitive).

    Raises
    ------
    KeyError
        If the synthesizer has no data for the element; the message lists those it has.

    Examples
    --------
    >>> element_data("mg").ionization_energies
    (7.6462, 15.0353)
    """
    for key, data in ELEMENT_DATA.items():
        if key.lower() == str(symbol).lower():
            return data
    raise KeyError(
        f"no atomic data for element {symbol!r}; the synthesizer knows "
        f"{', '.join(ELEMENT_DATA)}"
    )
