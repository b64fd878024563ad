"""Grids from arrays, from a gollum PHOENIX grid on disk, and from The Payne's .npz files."""

import itertools

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import QTable

from stellarai.errors import LabelError
from stellarai.grids import (
    GridError,
    GridFileError,
    SpectralGrid,
    infer_label_space,
    upper_envelope,
)
from stellarai.labels import LabelSpace

# ------------------------------------------------------------------------ arrays


def test_from_arrays_infers_units_and_tight_bounds():
    labels = {"teff": [4.5, 5.0, 5.5] * u.kK, "logg": [4.0, 4.5, 2.0], "mg_fe": [0.1, 0.2, 0.3],
              "c12_c13": [20.0, 20.0, 20.0]}
    grid = SpectralGrid.from_arrays(np.linspace(1.5, 1.6, 4) * u.um, np.ones((3, 4)), labels)
    space = grid.label_space
    assert space.names == ("teff", "logg", "mg_fe", "c12_c13")
    assert space.units == (u.K, u.dex(u.cm / u.s**2), u.dex, u.one)
    np.testing.assert_allclose(space.bounds, [[4500, 5500], [2.0, 4.5], [0.1, 0.3], [19.5, 20.5]])
    assert space["teff"].latex == r"$T_{\rm eff}$"
    np.testing.assert_allclose(grid.wavelength.value, np.linspace(15000, 16000, 4))
    assert grid.provenance["generator"] == "arrays"


def test_from_arrays_with_a_label_space_and_an_array():
    space = LabelSpace.default().subset(["teff", "logg"])
    grid = SpectralGrid.from_arrays([5000.0, 5001.0] * u.AA, np.ones((2, 2)) * u.Jy,
                                    np.array([[5000.0, 4.0], [6000.0, 3.0]]), space)
    assert grid.label_space == space and grid.flux_unit == u.Jy
    with pytest.raises(LabelError, match="wants|bare array|QTable or a mapping"):
        SpectralGrid.from_arrays([5000.0, 5001.0] * u.AA, np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(LabelError, match="'logg' is nan in row 1"):
        infer_label_space({"logg": [4.0, np.nan]})
    with pytest.raises(LabelError, match="expects a value in K"):
        infer_label_space({"teff": [1.0, 2.0] * u.km})


# ------------------------------------------------------------------------ gollum PHOENIX

WAVE = np.linspace(1e4, 1.05e4, 4001)
POINTS = list(itertools.product((4600, 4700), (4.5, 5.0), (0.0, 0.5)))


def phoenix_flux(teff, logg, z):
    """A sloped continuum with one absorption line whose depth encodes the labels."""
    continuum = teff * 1e10 * (1.0 + (WAVE - 1e4) / 5e3)
    depth = 0.1 + (teff - 4600) / 1000 + (logg - 4.5) / 5 + z / 5
    return continuum * (1.0 - depth * np.exp(-0.5 * ((WAVE - 10250.0) / 1.0) ** 2))


@pytest.fixture(scope="module")
def phoenix_root(tmp_path_factory):
    """A tiny PHOENIX library in gollum's file naming (ECOSYSTEM.md section 4)."""
    root = tmp_path_factory.mktemp("fake_phoenix")
    fits.PrimaryHDU(WAVE).writeto(root / "WAVE_PHOENIX-ACES-AGSS-COND-2011.fits")
    for teff, logg, z in POINTS:
        z_text = f"{z:+0.1f}" if z else "-0.0"
        folder = root / "PHOENIX-ACES-AGSS-COND-2011" / f"Z{z_text}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"lte{teff:05d}-{logg:0.2f}{z_text}.PHOENIX-ACES-AGSS-COND-2011-HiRes.fits"
        fits.PrimaryHDU(phoenix_flux(teff, logg, z).astype(np.float32)).writeto(folder / name)
    return root


@pytest.fixture(scope="module")
def phoenix_grid(phoenix_root):
    phoenix = pytest.importorskip("gollum.phoenix")
    grid = phoenix.PHOENIXGrid((4600, 4700), (4.5, 5.0), (0, 0.5), path=str(phoenix_root) + "/",
                               wl_lo=10100, wl_hi=10400)
    grid[3], grid[0]  # noqa: B018 - trigger gollum's shared-meta bug before converting
    return grid


def test_from_gollum_reads_labels_from_grid_points(phoenix_grid):
    grid = SpectralGrid.from_gollum(phoenix_grid)
    keep = (WAVE >= 10100) & (WAVE <= 10400)
    assert len(grid) == 8 and grid.n_pix == keep.sum() == 2401
    assert grid.label_space.names == ("teff", "logg", "feh")
    np.testing.assert_allclose(grid.label_space.bounds, [[4600, 4700], [4.5, 5.0], [0.0, 0.5]])
    assert sorted(map(tuple, grid.label_array.tolist())) == sorted(POINTS)
    assert grid.flux_unit == u.erg / (u.s * u.cm**3)
    for row, (teff, logg, z) in enumerate(grid.label_array):
        expected = phoenix_flux(int(teff), logg, z).astype(np.float32)[keep]
        np.testing.assert_array_equal(grid.flux[row], expected)  # row i has grid point i
    np.testing.assert_array_equal(grid.wavelength.value, WAVE[keep])
    assert grid.provenance["generator"] == "gollum.phoenix.PHOENIXGrid"


def test_from_gollum_normalizes_by_the_upper_envelope(phoenix_grid):
    grid = SpectralGrid.from_gollum(phoenix_grid, normalize=True, window=20 * u.AA)
    assert grid.flux_unit == u.one and grid.provenance["normalized"]
    wave = grid.wavelength.value
    far = np.abs(wave - 10250.0) > 15
    inner = (wave > 10130) & (wave < 10370)
    np.testing.assert_allclose(grid.flux[:, far & inner], 1.0, atol=1e-9)
    line = np.argmin(np.abs(wave - 10250.0))
    for row, (teff, logg, z) in enumerate(grid.label_array):
        depth = 0.1 + (teff - 4600) / 1000 + (logg - 4.5) / 5 + z / 5
        assert grid.flux[row, line] == pytest.approx(1.0 - depth, abs=2e-3)


def test_from_gollum_refuses_other_objects():
    with pytest.raises(GridError, match=r"has no \['grid_points'"):
        SpectralGrid.from_gollum(QTable())


def test_upper_envelope_window_is_checked():
    with pytest.raises(ValueError, match="positive number of pixels"):
        upper_envelope(np.ones(5), 0)


# ------------------------------------------------------------------------ The Payne npz

def payne_files(tmp_path, n=5, n_pix=7):
    rng = np.random.default_rng(1)
    labels = np.stack([rng.uniform(4000, 5000, n), rng.uniform(1, 3, n), rng.uniform(0.5, 2, n),
                       rng.uniform(-0.5, 0.2, n)])  # (n_labels, n), The Payne's way
    spectra = rng.uniform(0.5, 1.0, (n, n_pix))
    wavelength = np.linspace(15100.0, 16900.0, n_pix)
    np.savez(tmp_path / "kurucz_training_spectra.npz", spectra=spectra, labels=labels)
    np.savez(tmp_path / "apogee_wavelength.npz", wavelength=wavelength)
    return labels, spectra, wavelength


NAMES = ["teff", "logg", "vmic", "c_h"]


def test_payne_layout_with_a_separate_wavelength_file(tmp_path):
    labels, spectra, wavelength = payne_files(tmp_path)
    grid = SpectralGrid.from_payne_npz(tmp_path / "kurucz_training_spectra.npz", NAMES,
                                       wavelength=tmp_path / "apogee_wavelength.npz")
    np.testing.assert_array_equal(grid.label_array, labels.T)
    np.testing.assert_array_equal(grid.flux, spectra)
    np.testing.assert_array_equal(grid.wavelength.value, wavelength)
    assert grid.label_space.units == (u.K, u.dex(u.cm / u.s**2), u.km / u.s, u.dex)
    assert grid.provenance["source"] == "kurucz_training_spectra.npz"


def test_payne_variants_label_names_key_and_row_major_labels(tmp_path):
    labels, spectra, wavelength = payne_files(tmp_path)
    path = tmp_path / "variant.npz"
    np.savez(path, spectra=spectra.T, labels=labels.T, wavelength=wavelength,
             label_names=np.array(NAMES))
    grid = SpectralGrid.from_payne_npz(path)
    np.testing.assert_array_equal(grid.label_array, labels.T)
    np.testing.assert_array_equal(grid.flux, spectra)
    assert grid.label_space.names == tuple(NAMES)


def test_payne_npz_errors(tmp_path):
    labels, spectra, wavelength = payne_files(tmp_path)
    training = tmp_path / "kurucz_training_spectra.npz"
    with pytest.raises(GridError, match="no 'wavelength' array: pass wavelength="):
        SpectralGrid.from_payne_npz(training, NAMES)
    with pytest.raises(GridError, match="no 'label_names' array: pass label_names"):
        SpectralGrid.from_payne_npz(training, wavelength=wavelength * u.AA)
    with pytest.raises(LabelError, match="have 4 columns but 3 label_names were given"):
        SpectralGrid.from_payne_npz(training, NAMES[:3], wavelength=wavelength * u.AA)
    np.savez(tmp_path / "short.npz", spectra=spectra, labels=labels[:, :3])
    with pytest.raises(GridError, match=r"'labels' has shape \(3, 4\); neither axis matches"):
        SpectralGrid.from_payne_npz(tmp_path / "short.npz", NAMES, wavelength=wavelength * u.AA)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, spectra=spectra, labels=np.array([{"teff": 1}], dtype=object))
    with pytest.raises(GridFileError, match="nothing is unpickled"):
        SpectralGrid.from_payne_npz(pickled, NAMES, wavelength=wavelength * u.AA)
    with pytest.raises(GridFileError, match="no 'spectra' array"):
        np.savez(tmp_path / "empty.npz", labels=labels)
        SpectralGrid.from_payne_npz(tmp_path / "empty.npz", NAMES)
    with pytest.raises(GridFileError, match="no such file"):
        SpectralGrid.from_payne_npz(tmp_path / "missing.npz", NAMES)
