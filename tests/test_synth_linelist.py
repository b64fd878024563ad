"""Line lists: the built-in list, hydrogen, ECSV and VALD readers, validation."""

import astropy.units as u
import numpy as np
import pytest
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning

from stellarai.spectra import air_to_vacuum
from stellarai.synth import LineList, LineListError, parse_species
from stellarai.synth.elements import METALS
from stellarai.synth.hydrogen import RYDBERG_H, hydrogen_log_gf, rydberg_wavelength

HPF = [8100, 12800] * u.AA

VALD_AIR = """\
 8100.00000, 8110.00000, 5, 5023, 1.0 Wavelength region, lines selected, lines processed, Vmicro
                                                  Damping parameters    Lande  Central
Spec Ion       WL_air(A)  Excit(eV) Vmic log gf* Rad.   Stark   Waals   factor  depth  Reference
'Fe 1',        8100.1234,  4.1860, 1.0, -2.512, 7.890,-5.890,-7.720, 1.320, 0.123, '  K07 Fe'
'TiO 1',       8101.0000,  0.9562, 1.0,  0.389, 6.944, 0.000, 0.000,99.000, 0.123, '  PPN2012 TiO'
'Ca 2',        8102.5000,  3.0000, 1.0,  0.500, 8.000, 0.000, 0.000, 1.000, 0.250, '  Ca'
'Si 1',        8105.5000,  5.0000, 1.0, -1.500, 8.000,-5.000,241.232, 1.000, 0.250, '  Si'
'H 1',         8109.0000, 12.0875, 1.0, -1.000, 8.000, 0.000, 0.000, 1.000, 0.250, '  H'
'Sun',
'H :  0.92','He: -1.11',
 References:
  1. K07: Kurucz
"""

VALD_VAC_ALL = """\
 10000.00000, 10010.00000, 2, 300, Wavelength region, lines selected, lines processed
                                                  Damping parameters    Lande
Elm Ion      WL_vac(nm)  Excit(cm^-1) log gf* Rad.   Stark   Waals   factor  Reference
'Mg 1',       1000.1000,  40000.000, -1.000, 8.000,-5.000,-7.500, 1.000, '  Mg'
'Fe 2',       1000.5000,  20000.000, -2.000, 8.500, 0.000, 0.000, 1.000, '  Fe'
"""


# ----------------------------------------------------------------- the built-in list


def test_default_list_is_deterministic_and_range_independent():
    a = LineList.default(HPF)
    assert a == LineList.default(HPF)
    assert a != LineList.default(HPF, seed=1)
    part = LineList.default([10000, 10400] * u.AA)
    assert part == a.select([10000, 10400] * u.AA)


def test_default_list_has_realistic_content():
    lines = LineList.default(HPF)
    assert 2500 <= len(lines) <= 4000  # "a few thousand lines over the HPF band"
    counts = {s: int(np.sum(lines.species == s)) for s in lines.species_names}
    assert max(counts, key=counts.get) == "Fe 1"  # iron is the richest
    assert counts["Fe 1"] > 3 * counts["Ti 1"]
    expected = {f"{m} {stage}" for m in METALS for stage in (1, 2)} | {"H 1"}
    assert set(lines.species_names) == expected
    metal = lines.element != "H"
    chi = lines.excitation.value[metal]
    iron_peak = np.isin(lines.element, ["Ti", "V", "Cr", "Mn", "Fe", "Ni"]) & (
        lines.ion_stage == 1)
    assert chi.min() >= 0 and lines.excitation.value[iron_peak].max() <= 6.0
    assert -5.0 <= lines.log_gf[metal].min() and lines.log_gf[metal].max() <= 1.0
    table = lines.table
    assert np.all(table["gamma_rad"][metal] > 0) and np.all(table["gamma_vdw"][metal] > 0)


def test_hydrogen_lines_sit_at_the_rydberg_wavelengths():
    lines = LineList.default([8100, 13000] * u.AA, metals=False)
    assert set(lines.species_names) == {"H 1"}
    # Paschen beta: the Rydberg formula, computed here independently, to 0.01 Angstrom
    sigma = RYDBERG_H * (1 / 9 - 1 / 25)
    alpha2 = 7.2973525693e-3**2
    shift = [-RYDBERG_H * alpha2 / n**4 * ((2 * n - 1) / n - 0.75) for n in (3, 5)]
    expected = 1e8 / (sigma + shift[1] - shift[0])
    pa_beta = lines.wavelength.value[np.argmin(np.abs(lines.wavelength.value - 12821.6))]
    assert abs(pa_beta - expected) < 0.01
    assert abs(pa_beta - 12821.6) < 0.05  # PHYSICS.md's rounded value
    assert abs(1e8 / sigma - pa_beta) < 0.1  # the bare formula, without fine structure
    # the Paschen series from Pa-beta (n=5) to n=30, converging on 8204 Angstrom
    n_upper = np.arange(5, 31)
    assert np.allclose(np.sort(lines.wavelength.value), np.sort(rydberg_wavelength(3, n_upper)))
    assert np.allclose(np.sort(lines.log_gf), np.sort(hydrogen_log_gf(3, n_upper)))
    balmer = LineList.default([6000, 7000] * u.AA, metals=False)
    assert abs(balmer.wavelength.value[0] - 6564.61) < 0.01  # H alpha, vacuum


def test_hydrogen_oscillator_strengths_match_exact_values():
    f = {(3, 4): 0.8421, (3, 5): 0.1506, (2, 3): 0.6407, (4, 5): 1.038}
    for (lo, hi), exact in f.items():
        ours = 10 ** hydrogen_log_gf(lo, hi) / (2 * lo**2)
        assert abs(ours / exact - 1) < 0.03


# ----------------------------------------------------------------- ECSV


def test_ecsv_round_trip_keeps_units_and_missing_damping(tmp_path):
    lines = LineList.default([10500, 10560] * u.AA)
    lines = LineList(lines.table, medium="vacuum")
    path = tmp_path / "lines.ecsv"
    lines.write_ecsv(path)
    back = LineList.read_ecsv(path)
    assert back == lines
    assert back.table["excitation"].unit == u.eV
    assert np.isnan(back.table["gamma_stark"][lines.element == "H"]).all()
    with pytest.raises(OSError):
        lines.write_ecsv(path)


def test_ecsv_with_air_medium_is_converted(tmp_path):
    table = QTable({"wavelength": [10000.0] * u.AA, "species": ["Fe 1"],
                    "excitation": [1.0] * u.eV, "log_gf": [-1.0]})
    table.meta["medium"] = "air"
    table.write(tmp_path / "air.ecsv")
    back = LineList.read_ecsv(tmp_path / "air.ecsv")
    assert back.wavelength[0] == air_to_vacuum(10000.0 * u.AA)


def test_units_are_converted_on_input():
    lines = LineList.from_columns(wavelength=[1.05] * u.micron, species=["Ni II"],
                                  excitation=[8065.54] / u.cm, log_gf=[-1.0])
    assert lines.wavelength[0].to_value(u.AA) == pytest.approx(10500.0)
    assert lines.excitation[0].to_value(u.eV) == pytest.approx(1.0, rel=1e-6)
    assert lines.species_names == ["Ni 2"]


# ----------------------------------------------------------------- VALD


def test_vald_stellar_air_file_is_read_and_converted(tmp_path):
    path = tmp_path / "lines.vald"
    path.write_text(VALD_AIR)
    with pytest.warns(AstropyUserWarning, match="skipped 1 lines.*TiO 1"):
        lines = LineList.read_vald(path)
    assert list(lines.species) == ["Fe 1", "Ca 2", "Si 1", "H 1"]
    air = [8100.1234, 8102.5, 8105.5, 8109.0] * u.AA
    assert np.allclose(lines.wavelength.value, air_to_vacuum(air).value, rtol=0, atol=1e-6)
    assert lines.wavelength[0].value - 8100.1234 == pytest.approx(2.227, abs=0.01)
    table = lines.table
    assert table["gamma_rad"][0].value == pytest.approx(10**7.89)
    assert table["gamma_stark"][0].value == pytest.approx(10**-5.89)
    assert table["gamma_vdw"][0].value == pytest.approx(10**-7.72)
    assert np.isnan(table["gamma_stark"][1]) and np.isnan(table["gamma_vdw"][1])
    # Anstee-Barklem-O'Mara sigma.alpha = 241.232: a rate of order 1e-8 cm^3/s at 1e4 K
    assert 1e-8 < table["gamma_vdw"][2].value < 3e-8
    assert lines.log_gf[1] == 0.5


def test_vald_vacuum_nm_and_wavenumber_units(tmp_path):
    path = tmp_path / "all.vald"
    path.write_text(VALD_VAC_ALL)
    lines = LineList.read_vald(path)
    assert lines.wavelength.value == pytest.approx([10001.0, 10005.0])
    assert lines.excitation.value == pytest.approx([40000 / 8065.544, 20000 / 8065.544],
                                                   rel=1e-5)
    assert lines.log_gf.tolist() == [-1.0, -2.0]


def test_vald_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("hello\nworld\n")
    with pytest.raises(LineListError, match="not a VALD short-format"):
        LineList.read_vald(bad)
    long_format = tmp_path / "long.vald"
    long_format.write_text(VALD_AIR.replace("Excit(eV) Vmic", "E_low(eV) J lo"))
    with pytest.raises(LineListError, match="long-format"):
        LineList.read_vald(long_format)
    truncated = tmp_path / "short.vald"
    truncated.write_text("\n".join(VALD_AIR.splitlines()[:5]))
    with pytest.raises(LineListError, match="announces 5 lines but 2"):
        LineList.read_vald(truncated)
    with pytest.raises(LineListError, match="cannot read VALD file"):
        LineList.read_vald(tmp_path / "missing.vald")


# ----------------------------------------------------------------- validation


def _table(**overrides):
    columns = {"wavelength": [10000.0, 10001.0] * u.AA, "species": ["Fe 1", "Fe 2"],
               "excitation": [1.0, 2.0] * u.eV, "log_gf": [-1.0, -2.0]}
    columns.update(overrides)
    return QTable({k: v for k, v in columns.items() if v is not None})


@pytest.mark.parametrize("column", ["wavelength", "species", "excitation", "log_gf"])
def test_missing_column_is_named(column):
    with pytest.raises(LineListError, match=f"missing column.*'{column}'"):
        LineList(_table(**{column: None}))


def test_missing_or_wrong_units_are_named():
    with pytest.raises(LineListError, match="column 'wavelength' has no unit"):
        LineList(_table(wavelength=[10000.0, 10001.0]))
    with pytest.raises(LineListError, match="column 'excitation' has no unit"):
        LineList(_table(excitation=[1.0, 2.0]))
    with pytest.raises(LineListError, match="column 'excitation' has unit 's'"):
        LineList(_table(excitation=[1.0, 2.0] * u.s))
    with pytest.raises(LineListError, match="column 'log_gf' must be dimensionless"):
        LineList(_table(log_gf=[1.0, 2.0] * u.eV))
    with pytest.raises(LineListError, match="column 'gamma_vdw' has no unit"):
        LineList(_table(gamma_vdw=[1e-8, 1e-8]))


def test_bad_values_and_species_are_refused():
    with pytest.raises(LineListError, match="'wavelength' must hold finite, positive"):
        LineList(_table(wavelength=[10000.0, -1.0] * u.AA))
    with pytest.raises(LineListError, match="'log_gf' must hold finite"):
        LineList(_table(log_gf=[np.nan, 1.0]))
    with pytest.raises(LineListError, match="'excitation' must be >= 0"):
        LineList(_table(excitation=[-1.0, 1.0] * u.eV))
    with pytest.raises(LineListError, match="'TiO 1' is not an atom"):
        LineList(_table(species=["TiO 1", "Fe 1"]))
    with pytest.raises(LineListError, match="ion stage must be 1"):
        parse_species("Fe 0")
    with pytest.raises(LineListError, match="astropy Table"):
        LineList({"wavelength": [1.0]})
    with pytest.raises(LineListError, match="medium must be"):
        LineList(_table(), medium="water")


def test_select_by_range_and_species():
    lines = LineList.default([10000, 10300] * u.AA)
    iron = lines.select(species="Fe")
    assert set(iron.species_names) == {"Fe 1", "Fe 2"}
    assert set(lines.select(species=["Fe 2", "Ca"]).species_names) <= {"Fe 2", "Ca 1", "Ca 2"}
    window = lines.select([10100, 10150] * u.AA)
    assert window.wavelength.min().value >= 10100 and window.wavelength.max().value <= 10150
    with pytest.raises(LineListError, match="min < max"):
        lines.select([10150, 10100] * u.AA)
    with pytest.raises(LineListError, match="length unit"):
        lines.select([10100, 10150])
    with pytest.raises(LineListError, match="neither a species"):
        lines.select(species="iron")
    with pytest.raises(LineListError, match="within 3000-30000"):
        LineList.default([1000, 2000] * u.AA)
