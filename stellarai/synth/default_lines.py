"""The recipe of the built-in line list (:meth:`LineList.default`).

Hydrogen
    Balmer (n_l = 2), Paschen (3) and Brackett (4) lines with upper levels n_u ≤ 30, at
    the wavelengths of :func:`~stellarai.synth.hydrogen.rydberg_wavelength`, with the
    oscillator strengths of :func:`~stellarai.synth.hydrogen.hydrogen_log_gf`.

Metal pseudo-lines
    *Invented* transitions of 30 species (neutral and singly ionized C, N, O, Na, Mg, Al,
    Si, K, Ca, Ti, V, Cr, Mn, Fe, Ni). The wavelength axis is cut into 100 Å blocks; block
    ``b`` draws its lines from ``numpy.random.default_rng((seed, b))``, so a line does not
    depend on the range asked for. In each block and for each species:

    * the number of lines is Poisson with mean ``density × (10⁴ Å / λ)²`` per 100 Å (line
      density falls towards the infrared), Fe I being the richest (22 per 100 Å at 1 µm;
      about 2,900 lines over 8100–12800 Å in all);
    * positions are uniform in the block;
    * the excitation potential χ is drawn from a Beta distribution over a range typical
      of the species' observed lines: 0–6 eV for the iron-peak and light metals, 1–6 eV
      for their ions, 7.5–12 eV for C I, N I and O I, and higher for ions whose lines come
      from high levels (C II, Mg II, ...);
    * log gf is normal with a mean rising with χ (weak low-excitation lines, as among
      real infrared lines), clipped to [−5, 1];
    * damping: radiative rate = classical × 10^U(0.2, 1), Stark rate 10^U(−6.3, −5.0),
      van der Waals rate = Unsöld × 10^N(0, 0.15)
      (:func:`~stellarai.synth.physics.unsold_vdw`).

The numbers are tuned so that a solar-type spectrum looks like one (hundreds of lines
deeper than 5 %, a few saturated ones), not to reproduce any real star.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.table import QTable, vstack

from .elements import ELEMENT_DATA
from .hydrogen import (
    hydrogen_level_energy,
    hydrogen_log_gf,
    rydberg_wavelength,
)
from .physics import unsold_vdw

__all__ = ["BLOCK_WIDTH", "SPECIES_RECIPES", "default_line_table", "hydrogen_line_table"]

BLOCK_WIDTH = 100.0
"""Width (Angstrom) of the blocks drawn with their own seed."""

HYDROGEN_SERIES = (2, 3, 4)
MAX_UPPER_LEVEL = 30

# species: (lines per 100 A at 1 micron, chi range in eV, Beta shape (a, b),
#           log gf mean at chi_lo, log gf slope per eV, log gf sd)
SPECIES_RECIPES: dict[str, tuple[float, tuple[float, float], tuple[float, float],
                                 float, float, float]] = {
    "C 1": (3.0, (7.5, 9.0), (1.5, 1.5), -2.00, 0.3, 0.8),
    "C 2": (0.3, (14.0, 20.0), (1.5, 1.5), -0.80, 0.1, 0.6),
    "N 1": (1.0, (10.3, 12.0), (1.5, 1.5), -0.10, 0.3, 0.7),
    "N 2": (0.1, (18.0, 24.0), (1.5, 1.5), -0.80, 0.1, 0.6),
    "O 1": (0.6, (9.1, 11.0), (1.5, 1.5), -1.25, 0.3, 0.7),
    "O 2": (0.1, (22.0, 28.0), (1.5, 1.5), -0.80, 0.1, 0.6),
    "Na 1": (0.6, (0.0, 4.5), (2.0, 1.2), -3.00, 0.4, 0.8),
    "Na 2": (0.05, (30.0, 36.0), (1.5, 1.5), -0.80, 0.1, 0.6),
    "Mg 1": (1.5, (2.7, 6.0), (2.0, 1.2), -4.20, 0.4, 0.9),
    "Mg 2": (0.3, (8.0, 12.0), (1.5, 1.5), -0.70, 0.1, 0.6),
    "Al 1": (0.8, (3.0, 5.0), (2.0, 1.2), -2.15, 0.4, 0.8),
    "Al 2": (0.15, (10.0, 15.0), (1.5, 1.5), -0.50, 0.1, 0.6),
    "Si 1": (5.0, (4.5, 6.0), (1.5, 1.2), -3.10, 0.4, 0.9),
    "Si 2": (0.4, (6.0, 12.0), (1.5, 1.5), -1.50, 0.1, 0.6),
    "K 1": (0.3, (0.0, 4.0), (1.5, 1.2), -1.90, 0.3, 0.8),
    "K 2": (0.05, (20.0, 25.0), (1.5, 1.5), -0.50, 0.1, 0.6),
    "Ca 1": (2.0, (1.9, 6.0), (1.5, 1.2), -2.55, 0.4, 0.9),
    "Ca 2": (0.4, (1.7, 9.0), (1.2, 1.2), -3.00, 0.1, 0.8),
    "Ti 1": (5.0, (0.0, 6.0), (1.3, 1.3), -2.10, 0.4, 1.0),
    "Ti 2": (1.5, (1.0, 6.0), (1.5, 1.2), -3.00, 0.2, 0.9),
    "V 1": (3.0, (0.0, 6.0), (1.3, 1.3), -1.70, 0.4, 1.0),
    "V 2": (0.4, (1.0, 6.0), (1.5, 1.2), -3.10, 0.2, 0.9),
    "Cr 1": (4.0, (0.0, 6.0), (1.3, 1.2), -3.80, 0.4, 1.0),
    "Cr 2": (1.0, (2.5, 6.0), (1.5, 1.2), -4.20, 0.2, 0.9),
    "Mn 1": (2.0, (0.0, 6.0), (1.3, 1.2), -4.00, 0.4, 1.0),
    "Mn 2": (0.4, (1.0, 6.0), (1.5, 1.2), -5.10, 0.2, 0.9),
    "Fe 1": (22.0, (0.0, 6.0), (1.6, 1.0), -5.40, 0.45, 1.0),
    "Fe 2": (2.5, (2.0, 6.0), (1.5, 1.2), -5.50, 0.25, 0.9),
    "Ni 1": (5.0, (0.0, 6.0), (1.6, 1.0), -4.60, 0.45, 1.0),
    "Ni 2": (0.3, (2.0, 6.0), (1.5, 1.2), -5.10, 0.2, 0.9),
}
"""The pseudo-line recipe of each species (see the module docstring)."""

_COLUMNS = ("wavelength", "species", "excitation", "log_gf", "gamma_rad", "gamma_stark",
            "gamma_vdw")


def hydrogen_line_table(lo: float, hi: float) -> QTable:
    """Hydrogen lines (Balmer, Paschen, Brackett; n_u ≤ 30) in ``[lo, hi]`` Angstrom.

    Examples
    --------
    >>> table = hydrogen_line_table(12000, 13000)
    >>> table["species"].tolist(), np.round(table["wavelength"].value, 2).tolist()
    (['H 1'], [12821.58])
    """
    n_l, n_u = np.meshgrid(np.array(HYDROGEN_SERIES), np.arange(2, MAX_UPPER_LEVEL + 1))
    n_l, n_u = n_l.ravel(), n_u.ravel()
    ok = n_u > n_l
    n_l, n_u = n_l[ok], n_u[ok]
    lam = rydberg_wavelength(n_l, n_u)
    keep = (lam >= lo) & (lam <= hi)
    n_l, n_u, lam = n_l[keep], n_u[keep], lam[keep]
    nan = np.full(lam.size, np.nan)
    return QTable({
        "wavelength": lam * u.AA,
        "species": np.array(["H 1"] * lam.size, dtype="<U5"),
        "excitation": hydrogen_level_energy(n_l) * u.eV,
        "log_gf": hydrogen_log_gf(n_l, n_u),
        "gamma_rad": nan / u.s,
        "gamma_stark": nan * u.cm**3 / u.s,
        "gamma_vdw": nan * u.cm**3 / u.s,
    })


def _block_lines(block: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng((seed, block))
    start = block * BLOCK_WIDTH
    scale = (1e4 / (start + 0.5 * BLOCK_WIDTH)) ** 2
    parts: dict[str, list[np.ndarray]] = {name: [] for name in _COLUMNS}
    for species, (density, (chi_lo, chi_hi), (beta_a, beta_b), gf0, slope, sd) in (
            SPECIES_RECIPES.items()):
        n = int(rng.poisson(density * scale))
        lam = np.round(start + BLOCK_WIDTH * rng.random(n), 4)
        chi = np.round(chi_lo + (chi_hi - chi_lo) * rng.beta(beta_a, beta_b, n), 4)
        log_gf = np.round(np.clip(rng.normal(gf0 + slope * (chi - chi_lo), sd), -5.0, 1.0), 3)
        element, stage = species.split()
        data = ELEMENT_DATA[element]
        classical = 2.2233e15 / lam**2
        parts["wavelength"].append(lam)
        parts["species"].append(np.array([species] * n, dtype="<U5"))
        parts["excitation"].append(chi)
        parts["log_gf"].append(log_gf)
        parts["gamma_rad"].append(classical * 10.0 ** rng.uniform(0.2, 1.0, n))
        parts["gamma_stark"].append(10.0 ** rng.uniform(-6.3, -5.0, n))
        ionization = data.ionization_energies[int(stage) - 1]
        parts["gamma_vdw"].append(unsold_vdw(lam, chi, ionization, data.mass)
                                  * 10.0 ** rng.normal(0.0, 0.15, n))
    return {name: np.concatenate(values) for name, values in parts.items()}


def default_line_table(lo: float, hi: float, *, seed: int = 0, hydrogen: bool = True,
                       metals: bool = True) -> QTable:
    """The built-in line table in ``[lo, hi]`` Angstrom (vacuum); see the module docstring.

    Examples
    --------
    >>> a = default_line_table(10000, 10200)
    >>> b = default_line_table(10050, 10100)
    >>> inside = (a["wavelength"].value >= 10050) & (a["wavelength"].value <= 10100)
    >>> bool(np.array_equal(a["wavelength"][inside], b["wavelength"]))  # range-independent
    True
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    tables = []
    if hydrogen:
        tables.append(hydrogen_line_table(lo, hi))
    if metals:
        blocks = range(int(lo // BLOCK_WIDTH), int(hi // BLOCK_WIDTH) + 1)
        drawn = [_block_lines(b, int(seed)) for b in blocks]
        columns = {name: np.concatenate([d[name] for d in drawn]) for name in _COLUMNS}
        keep = (columns["wavelength"] >= lo) & (columns["wavelength"] <= hi)
        units = {"wavelength": u.AA, "excitation": u.eV, "gamma_rad": 1 / u.s,
                 "gamma_stark": u.cm**3 / u.s, "gamma_vdw": u.cm**3 / u.s}
        tables.append(QTable({name: columns[name][keep] * units[name] if name in units
                              else columns[name][keep] for name in _COLUMNS}))
    if not tables:
        raise ValueError("at least one of hydrogen and metals must be True")
    table = vstack(tables) if len(tables) > 1 else tables[0]
    table.sort("wavelength")
    return table
