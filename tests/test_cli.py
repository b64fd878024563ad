"""The `stellarai` command and the demo spectrum it inspects by default."""

import numpy as np
import pytest

from stellarai.cli import main
from stellarai.demo import DEMO_LINES, demo_spectrum_list
from stellarai.spectra import OrderBatch


def test_inspect_demo_and_unreadable_file(tmp_path, capsys):
    assert main(["inspect", "--plot", str(tmp_path / "demo.png")]) == 0
    out = capsys.readouterr().out
    assert "built-in demo spectrum: 3 order(s)" in out
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    junk = tmp_path / "notes.txt"
    junk.write_text("this is not a spectrum\n")
    assert main(["inspect", str(junk)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("stellarai inspect: error:")
    assert "notes.txt" in err[0]
    assert main(["inspect", str(tmp_path / "missing.fits")]) == 1
    assert "missing.fits" in capsys.readouterr().err


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("stellarai ")


def test_demo_spectrum_is_deterministic_and_has_its_lines():
    a, b = demo_spectrum_list(seed=3), demo_spectrum_list(seed=3)
    np.testing.assert_array_equal(a[1].flux.value, b[1].flux.value)
    assert not np.array_equal(a[1].flux.value, demo_spectrum_list(seed=4)[1].flux.value)
    batch = OrderBatch.from_spectra(demo_spectrum_list(snr=1e6))
    wavelength, flux = batch.wavelength.numpy(), batch.flux.numpy()
    # Pa gamma from the Rydberg formula (PHYSICS.md); measured vacuum value 10941.09 Angstrom
    label, center, depth, _ = next(line for line in DEMO_LINES if line[0] == "Pa gamma")
    assert center == pytest.approx(1e8 / (109677.583 * (1 / 3**2 - 1 / 6**2)), rel=1e-12)
    assert center == pytest.approx(10941.09, abs=0.1)
    row = 2
    pixel = np.argmin(flux[row, : batch.npix[row]])
    assert wavelength[row, pixel] == pytest.approx(center, abs=0.1)
    assert flux[row, pixel] == pytest.approx(np.exp(-depth), abs=0.01)
    with pytest.raises(ValueError, match="snr must be a positive number"):
        demo_spectrum_list(snr=0)


def test_synth_then_grid_end_to_end(tmp_path, capsys):
    from specutils import Spectrum

    from stellarai.grids import SpectralGrid

    star = tmp_path / "star.fits"
    assert main(["synth", "--teff", "5200", "--logg", "4.4", "--feh", "0.1", "--range",
                 "10820", "10840", "--resolving-power", "40000", "-o", str(star)]) == 0
    spectrum = Spectrum.read(star)
    assert spectrum.meta["labels"]["teff"] == 5200.0
    assert spectrum.flux.unit.is_equivalent(1) and float(spectrum.flux.max().value) <= 1.0
    out = tmp_path / "grid.h5"
    assert main(["grid", "--n", "8", "--wavelength-range", "10820", "10840",
                 "--resolving-power", "40000", "--label", "teff=4500:6000",
                 "--label", "vmic=1.0", "--out", str(out), "--quiet"]) == 0
    assert "wrote 8 spectra" in capsys.readouterr().out
    with SpectralGrid.read(out) as grid:
        teff = grid.labels["teff"].value
        assert len(grid) == 8 and teff.min() >= 4500 and teff.max() <= 6000
        np.testing.assert_array_equal(grid.labels["vmic"].value, 1.0)
        assert np.all(np.isfinite(grid.flux)) and grid.flux.max() <= 1.0 + 1e-6
    assert main(["grid", "--n", "2", "--wavelength-range", "10840", "10820",
                 "--out", str(tmp_path / "bad.h5"), "--quiet"]) == 1
