"""The synthesizer's physics behaves as stars do: each test checks a number."""

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.modeling.physical_models import BlackBody
from scipy.optimize import curve_fit

from stellarai.synth import LineList, Synthesizer, synth_label_space

F64 = torch.float64


def _lines(specs, *, damping=None):
    """A line list from (wavelength, species, excitation, log gf) tuples."""
    extra = {}
    if damping is not None:
        n = len(specs)
        extra = {"gamma_rad": np.full(n, damping) / u.s,
                 "gamma_stark": np.full(n, 1e-30) * u.cm**3 / u.s,
                 "gamma_vdw": np.full(n, 1e-30) * u.cm**3 / u.s}
    return LineList.from_columns(
        wavelength=np.array([s[0] for s in specs]) * u.AA, species=[s[1] for s in specs],
        excitation=np.array([s[2] for s in specs]) * u.eV, log_gf=[s[3] for s in specs],
        **extra)


def _ew(synth, flux, center, half=6.0):
    """Equivalent width (Angstrom) of the line at ``center``, for each row of ``flux``."""
    lam = synth.wavelength.value
    near = np.abs(lam - center) < half
    return np.trapezoid(1.0 - np.atleast_2d(flux)[:, near], lam[near], axis=-1)


def _labels(*rows):
    return torch.tensor(rows, dtype=F64)


# teff, logg, feh, vmic, alpha_fe
STARS = [10010.0, 10030.0, 10050.0, 10070.0, 10090.0]
MIXED = _lines([(10010, "Fe 1", 0.5, -3.0), (10030, "Fe 2", 3.0, -2.5),
                (10050, "Fe 1", 4.5, -1.0), (10070, "Ti 2", 1.5, -2.0),
                (10090, "Mg 1", 4.0, -1.5)])


@pytest.fixture(scope="module")
def mixed():
    return Synthesizer(MIXED, [10000, 10100] * u.AA, resolving_power=200_000, tolerance=1e-8)


def test_neutral_low_excitation_lines_weaken_and_ions_strengthen_with_teff(mixed):
    teff = [4500.0, 5000.0, 5500.0]
    flux = mixed.flux(_labels(*[[t, 4.5, 0.0, 1.0, 0.0] for t in teff])).numpy()
    fe1_low = _ew(mixed, flux, 10010)
    fe2, ti2 = _ew(mixed, flux, 10030), _ew(mixed, flux, 10070)
    assert np.all(np.diff(fe1_low) < 0) and fe1_low[0] / fe1_low[-1] > 2.5
    assert np.all(np.diff(fe2) > 0) and fe2[-1] / fe2[0] > 1.3
    assert np.all(np.diff(ti2) > 0)


def test_ionized_lines_strengthen_as_gravity_falls(mixed):
    logg = [4.5, 3.5, 2.5, 1.5]
    flux = mixed.flux(_labels(*[[5500.0, g, 0.0, 1.0, 0.0] for g in logg])).numpy()
    for center in (10030, 10070):  # Fe II, Ti II
        ew = _ew(mixed, flux, center)
        assert np.all(np.diff(ew) > 0) and ew[-1] / ew[0] > 1.25


def test_abundance_of_one_element_changes_only_its_lines():
    space = synth_label_space(["mg_h", "ti_fe"])
    lines = LineList.default([10000, 10300] * u.AA)
    kwargs = dict(resolving_power=80_000, label_space=space, tolerance=1e-8)
    base = [5200.0, 4.3, -0.3, 1.2, 0.1, -0.3, 0.0]
    more_mg = list(base)
    more_mg[5] += 0.5
    rows = _labels(base, more_mg)
    # other elements' lines do not move at all: the atmosphere ignores single-element labels
    for others in (lines.select(species=["Fe", "Ti", "Si", "Ca", "C", "H"]),):
        synth = Synthesizer(others, [10020, 10280] * u.AA, **kwargs)
        flux = synth.flux(rows)
        assert float((flux[0] - flux[1]).abs().max()) <= 1e-10
    # magnesium lines deepen and widen
    mg = Synthesizer(lines.select(species="Mg"), [10020, 10280] * u.AA, **kwargs)
    flux = mg.flux(rows).numpy()
    assert np.all(flux[1] <= flux[0] + 1e-12)
    centers = mg.linelist.wavelength.value
    centers = centers[(centers > 10030) & (centers < 10270)]
    ew = np.array([_ew(mg, flux, c, half=1.0) for c in centers])
    assert np.all(ew[:, 1] > 1.05 * ew[:, 0])


def test_doppler_width_scales_as_sqrt_of_temperature_over_mass():
    # weak lines (depth < 1%), no damping, no microturbulence, sampled 15x per Doppler width
    lines = _lines([(10010, "Fe 1", 3.0, -6.5), (10030, "C 1", 8.0, -1.0)], damping=1e5)
    synth = Synthesizer(lines, [10000, 10040] * u.AA, resolving_power=2_000_000,
                        oversample=1, tolerance=1e-12)
    flux = synth.flux(_labels([4000.0, 4.5, 0.0, 0.0, 0.0], [8000.0, 4.5, 0.0, 0.0, 0.0]))
    lam = synth.wavelength.value

    def width(f, center):
        near = np.abs(lam - center) < 1.0
        depth = 1.0 - f.numpy()[near]
        assert depth.max() < 0.01

        def gauss(x, amp, mu, sig):
            return amp * np.exp(-0.5 * ((x - mu) / sig) ** 2)

        popt, _ = curve_fit(gauss, lam[near], depth, p0=[depth.max(), center, 0.03])
        return abs(popt[2]) / popt[1]

    ratio_t = width(flux[1], 10010) / width(flux[0], 10010)
    assert ratio_t == pytest.approx(np.sqrt(8000 / 4000), rel=0.02)
    ratio_m = width(flux[0], 10030) / width(flux[0], 10010)
    assert ratio_m == pytest.approx(np.sqrt(55.845 / 12.011), rel=0.02)


def test_curve_of_growth_is_linear_then_saturated():
    def equivalent_widths(log_gf):
        # one line per synthesis, so that no other line's wings fall in the window
        specs = [(10010.0 + 100 * i, "Fe 1", 2.0, g) for i, g in enumerate(log_gf)]
        synth = Synthesizer(_lines(specs), [10000, 10020 + 100 * len(log_gf)] * u.AA,
                            resolving_power=300_000, tolerance=1e-9)
        flux = synth.flux(_labels([5000.0, 4.5, 0.0, 1.0, 0.0]))[0].numpy()
        return np.array([_ew(synth, flux, 10010.0 + 100 * i, half=8.0)[0]
                         for i in range(len(log_gf))])

    weak = equivalent_widths([-8.0, -7.0])
    assert weak[1] / weak[0] == pytest.approx(10.0, rel=0.02)  # W proportional to gf
    strong = equivalent_widths([-2.5, -2.0])
    slope = np.log10(strong[1] / strong[0]) / 0.5
    assert slope < 0.5  # saturated: W grows much more slowly than gf


def test_hydrogen_line_minimum_is_at_the_rydberg_wavelength():
    lines = LineList.default([12790, 12850] * u.AA, metals=False)
    synth = Synthesizer(lines, [12810, 12833] * u.AA, resolving_power=1_000_000)
    # a cool dwarf: Paschen beta is not saturated over Angstroms as in an A star
    flux = synth.flux(_labels([5000.0, 4.5, 0.0, 1.0, 0.0]))[0].numpy()
    lam = synth.wavelength.value
    # line centre: midpoint of the two half-depth crossings (robust to a flat, saturated core)
    half = 1.0 - 0.5 * (1.0 - flux.min())
    below = np.flatnonzero(flux < half)
    lo, hi = below[0], below[-1]
    left = np.interp(half, [flux[lo], flux[lo - 1]], [lam[lo], lam[lo - 1]])
    right = np.interp(half, [flux[hi], flux[hi + 1]], [lam[hi], lam[hi + 1]])
    assert abs(0.5 * (left + right) - lines.wavelength.value[0]) < 0.01
    assert 1.0 - flux.min() > 0.1


def test_electron_pressure_grows_with_gravity_as_in_gray():
    synth = Synthesizer(MIXED, [10000, 10100] * u.AA, resolving_power=20_000)
    logg = torch.tensor([3.5, 4.5], dtype=F64)
    rows = torch.stack([torch.full((2,), 5000.0, dtype=F64), logg, torch.zeros(2, dtype=F64),
                        torch.ones(2, dtype=F64), torch.zeros(2, dtype=F64)], dim=1)
    pe = synth._line_state(rows)["electron_pressure"]
    slope = float(torch.log10(pe[1] / pe[0]))
    assert 0.3 <= slope <= 0.55  # P_e ~ g^(1/3 ... 1/2)
    sun = synth._line_state(_labels([5772.0, 4.438, 0.0, 1.0, 0.0]))["electron_pressure"]
    assert 5.0 < float(sun) < 60.0  # "of order 10-100 dyn cm^-2"


def test_helium_raises_the_pressure_as_hydrostatics_says():
    space = synth_label_space(helium=True)
    synth = Synthesizer(MIXED, [10000, 10100] * u.AA, resolving_power=20_000,
                        label_space=space)
    rows = _labels([4500.0, 4.5, 0.0, 1.0, 0.0, -0.5], [4500.0, 4.5, 0.0, 1.0, 0.0, 0.5])
    pe = synth._line_state(rows)["electron_pressure"]
    y = 0.0851 * 10.0 ** np.array([-0.5, 0.5])
    mu = (1.008 + 4.0026 * y) / (1.0 + y)  # mass per particle, in units of m_H
    # P_e^2 ~ g mu eps / kappa' with eps, kappa' nearly fixed in a cool star
    assert float(pe[1] / pe[0]) == pytest.approx(np.sqrt(mu[1] / mu[0]), rel=0.05)


def test_continuum_is_the_planck_surface_flux():
    synth = Synthesizer(MIXED, [10000, 10100] * u.AA, resolving_power=20_000)
    _, cont = synth.flux(_labels([5772.0, 4.438, 0.0, 1.0, 0.0]), return_continuum=True)
    bb = BlackBody(temperature=5772 * u.K, scale=1.0 * u.erg / (u.s * u.cm**2 * u.AA * u.sr))
    expected = np.pi * bb(synth.wavelength).to_value(u.erg / (u.s * u.cm**2 * u.AA * u.sr))
    assert np.allclose(cont[0].numpy(), expected, rtol=1e-6)
