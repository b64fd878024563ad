"""SpectralGrid: validation, views, splits, the torch Dataset and the HDF5 format."""

import copy
import json
import sys
import warnings

import astropy.units as u
import h5py
import numpy as np
import pytest
import torch
from astropy.table import QTable
from specutils import Spectrum

from stellarai.errors import LabelError, StellarAIError
from stellarai.grids import (
    FORMAT_VERSION,
    GridError,
    GridFileError,
    LazyRows,
    SpectralGrid,
    split_indices,
)
from stellarai.labels import LabelSpace

SPACE = LabelSpace.default().subset(["teff", "logg", "feh"])


def make_grid(n=20, n_pix=30, *, seed=0, ivar=True, dtype=np.float32):
    rng = np.random.default_rng(seed)
    labels = QTable({"teff": rng.uniform(4000, 6000, n) * u.K,
                     "logg": rng.uniform(1, 5, n) * u.dex(u.cm / u.s**2),
                     "feh": rng.uniform(-2, 0.5, n) * u.dex})
    flux = (1 - 0.5 * rng.random((n, n_pix))).astype(dtype)
    inverse_variance = rng.uniform(1e3, 1e4, (n, n_pix)) if ivar else None
    return SpectralGrid(np.linspace(15000, 15030, n_pix) * u.AA, flux, labels, SPACE,
                        ivar=inverse_variance, provenance={"generator": "test", "seed": seed})


@pytest.fixture
def grid_file(tmp_path):
    grid = make_grid()
    path = tmp_path / "grid.h5"
    grid.write(path)
    return grid, path


# ------------------------------------------------------------------------ the container

def test_labels_wavelength_and_indexing():
    grid = make_grid(n=6, n_pix=5)
    assert len(grid) == 6 and grid.n_pix == 5 and not grid.is_lazy
    assert grid.labels["teff"].unit == u.K and grid.labels["logg"].unit == u.dex(u.cm / u.s**2)
    np.testing.assert_array_equal(grid.labels["feh"].value, grid.label_array[:, 2])
    assert grid.wavelength.unit == u.AA and grid.flux_unit == u.one
    assert grid.provenance["generator"] == "test" and "stellarai_version" in grid.provenance
    for key, rows in [(slice(1, 5, 2), [1, 3]), (-1, [5]), ([4, 0, 4], [4, 0, 4]),
                      (np.arange(6) % 2 == 0, [0, 2, 4])]:
        sub = grid[key]
        assert isinstance(sub, SpectralGrid)
        np.testing.assert_array_equal(sub.flux, grid.flux[rows])
        np.testing.assert_array_equal(sub.ivar, grid.ivar[rows])
        np.testing.assert_array_equal(sub.label_array, grid.label_array[rows])
    with pytest.raises(IndexError, match="out of range"):
        grid[6]
    with pytest.raises(TypeError):
        grid["teff"]


def test_spectrum_is_a_specutils_spectrum_with_labels():
    grid = make_grid(n=3, n_pix=4)
    spec = grid.spectrum(2)
    assert type(spec) is Spectrum
    np.testing.assert_array_equal(spec.flux.value, grid.flux[2])
    np.testing.assert_array_equal(spec.spectral_axis.to_value(u.AA), grid.wavelength.value)
    np.testing.assert_array_equal(spec.uncertainty.array, grid.ivar[2])
    assert type(spec.uncertainty).__name__ == "InverseVariance"
    assert spec.meta["labels"]["teff"] == grid.labels["teff"][2]
    assert spec.meta["labels"]["logg"].unit == u.dex(u.cm / u.s**2)


def test_air_wavelength_and_frequency_axes_become_vacuum_angstrom():
    air = SpectralGrid([5000.0, 5001.0] * u.AA, np.ones((1, 2)), {"teff": [5000] * u.K},
                       SPACE.subset(["teff"]), medium="air")
    assert 5001.3 < air.wavelength[0].value < 5001.5  # vacuum = air + ~1.39 Angstrom here
    with pytest.raises(GridError, match="strictly increasing"):  # frequencies run backwards
        SpectralGrid([500.0, 600.0] * u.THz, np.ones((1, 2)), {"teff": [5000] * u.K},
                     SPACE.subset(["teff"]))


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"flux": np.ones((5, 30))}, GridError, "labels have 6 rows but flux has 5 rows"),
        ({"flux": np.ones((6, 29))}, GridError, "29 pixels per spectrum but wavelength has 30"),
        ({"flux": np.ones(30)}, GridError, r"shape \(n_spectra, n_pix\)"),
        ({"wavelength": np.linspace(15000, 15030, 30)}, GridError, "must be a Quantity"),
        ({"wavelength": np.r_[np.linspace(15000, 15010, 15), np.linspace(15005, 15030, 15)]
          * u.AA}, GridError, "pixel 15 .* follows"),
        ({"wavelength": np.r_[np.nan, np.linspace(15000, 15030, 29)] * u.AA}, GridError,
         "finite"),
        ({"labels": {"teff": [5000] * 5 + [13000], "logg": [4.0] * 6, "feh": [0.0] * 6}},
         LabelError, "label 'teff' = 13000 K in row 5 is outside"),
        ({"labels": {"teff": [5000] * 6, "logg": [4.0] * 6}}, LabelError, "missing label"),
        ({"labels": np.zeros((6, 2))}, GridError, r"shape \(n_spectra, 3\)"),
        ({"ivar": -np.ones((6, 30))}, GridError, "ivar row 0 .* negative"),
        ({"ivar": np.ones((6, 3))}, GridError, "ivar must have the shape of flux"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(change, error, match):
    good = {"wavelength": np.linspace(15000, 15030, 30) * u.AA, "flux": np.ones((6, 30)),
            "labels": {"teff": [5000] * 6, "logg": [4.0] * 6, "feh": [0.0] * 6}}
    args = {**good, **change}
    ivar = args.pop("ivar", None)
    with pytest.raises(error, match=match) as info:
        SpectralGrid(args["wavelength"], args["flux"], args["labels"], SPACE, ivar=ivar)
    assert isinstance(info.value, StellarAIError)


def test_nan_flux_row_is_named_with_its_labels():
    flux = np.ones((4, 30))
    flux[2, 7] = np.nan
    flux[3, 1] = np.inf
    labels = {"teff": [4000, 4500, 5000, 5500], "logg": [4.0] * 4, "feh": [0.0] * 4}
    with pytest.raises(GridError, match=r"flux row 2 \(teff=5000, logg=4, feh=0\) has 1 NaN "
                                        r"or infinite values of 30 \(and 1 more rows"):
        SpectralGrid(np.linspace(15000, 15030, 30) * u.AA, flux, labels, SPACE)


def test_provenance_must_be_json():
    with pytest.raises(GridError, match="JSON-serializable"):
        SpectralGrid([1.0, 2.0] * u.um, np.ones((1, 2)), {"teff": [5000] * u.K},
                     SPACE.subset(["teff"]), provenance={"when": object()})


# ------------------------------------------------------------------------ splits

def test_splits_are_deterministic_disjoint_and_covering():
    grid = make_grid(n=103)
    parts = grid.split((0.8, 0.1, 0.1), seed=7)
    again = grid.split((0.8, 0.1, 0.1), seed=7)
    other = grid.split((0.8, 0.1, 0.1), seed=8)
    assert [len(p) for p in parts] == [83, 10, 10]
    for a, b in zip(parts, again, strict=True):
        np.testing.assert_array_equal(a.label_array, b.label_array)
        np.testing.assert_array_equal(a.flux, b.flux)
    assert not np.array_equal(parts[0].label_array, other[0].label_array)
    indices = split_indices(103, (0.8, 0.1, 0.1), seed=7)
    together = np.concatenate(indices)
    assert sorted(together.tolist()) == list(range(103))  # disjoint and covering
    np.testing.assert_array_equal(parts[1].label_array, grid.label_array[indices[1]])
    assert [len(i) for i in split_indices(10, (0.8, 0.1, 0.1))] == [8, 1, 1]
    assert [len(i) for i in split_indices(7, (0.5, 0.5))] == [4, 3]
    assert [len(i) for i in split_indices(0, (0.8, 0.2))] == [0, 0]


@pytest.mark.parametrize("fractions", [(0.8, 0.1), (0.8, 0.3, -0.1), (), ("a",)])
def test_bad_split_fractions(fractions):
    with pytest.raises(GridError, match="fractions"):
        split_indices(10, fractions)


# ------------------------------------------------------------------------ torch Dataset

def test_dataset_yields_scaled_labels_and_flux():
    grid = make_grid(n=10)
    data = grid.dataset()
    labels, flux = data[3]
    assert labels.dtype == flux.dtype == torch.float32
    torch.testing.assert_close(labels, torch.tensor(SPACE.scale(grid.label_array[3]),
                                                    dtype=torch.float32))
    torch.testing.assert_close(flux, torch.from_numpy(grid.flux[3]))
    raw = grid.dataset(scaled=False, dtype=torch.float64, ivar=True)
    labels, flux, ivar = raw[-1]
    assert labels.dtype == torch.float64
    np.testing.assert_array_equal(labels.numpy(), grid.label_array[-1])
    np.testing.assert_array_equal(ivar.numpy(), grid.ivar[-1])
    with pytest.raises(TypeError, match="must be an int"):
        data[1:3]
    with pytest.raises(ValueError, match="no inverse variance"):
        make_grid(ivar=False).dataset(ivar=True)


# ------------------------------------------------------------------------ HDF5

def test_hdf5_round_trip_is_bit_identical(tmp_path):
    grid = make_grid(n=70, n_pix=33)  # more rows than one chunk
    for compression in (None, "gzip"):
        path = tmp_path / f"grid-{compression}.h5"
        grid.write(path, compression=compression)
        back = SpectralGrid.read(path)
        assert back.flux.dtype == np.float32 and back.ivar.dtype == np.float64
        for a, b in [(grid.flux, back.flux), (grid.ivar, back.ivar),
                     (grid.label_array, back.label_array),
                     (grid.wavelength.value, back.wavelength.value)]:
            assert a.tobytes() == b.tobytes()
        assert back.label_space == grid.label_space
        assert back.provenance == grid.provenance
        assert back.flux_unit == grid.flux_unit
        for name in SPACE.names:
            assert back.labels[name].unit == grid.labels[name].unit
    with h5py.File(tmp_path / "grid-gzip.h5") as f:
        assert f.attrs["format"] == "stellarai.SpectralGrid"
        assert f.attrs["format_version"] == FORMAT_VERSION
        assert f["flux"].chunks == (64, 33) and f["flux"].compression == "gzip"
        assert json.loads(f["labels"].attrs["names"]) == ["teff", "logg", "feh"]
        assert f["wavelength"].attrs["unit"] == "Angstrom"
    assert not list(tmp_path.glob("*.partial"))


def test_physical_flux_unit_round_trips(tmp_path):
    unit = u.erg / u.s / u.cm**3
    grid = SpectralGrid([1.0, 2.0] * u.um, [[1e14, 2e14]] * unit, {"teff": [5000] * u.K},
                        SPACE.subset(["teff"]))
    grid.write(tmp_path / "g.h5")
    back = SpectralGrid.read(tmp_path / "g.h5")
    assert back.flux_unit == unit and back.spectrum(0).flux.unit == unit


def test_write_refuses_to_overwrite_unless_asked(grid_file):
    grid, path = grid_file
    with pytest.raises(GridFileError, match="already exists; pass overwrite=True"):
        grid.write(path)
    grid[:3].write(path, overwrite=True)
    assert len(SpectralGrid.read(path)) == 3


def test_lazy_read_reads_rows_on_demand_and_works_with_a_dataloader(grid_file):
    grid, path = grid_file
    with SpectralGrid.read(path, lazy=True) as lazy:
        assert lazy.is_lazy and isinstance(lazy.flux, LazyRows) and "lazy from" in repr(lazy)
        np.testing.assert_array_equal(lazy.flux[5], grid.flux[5])
        np.testing.assert_array_equal(lazy.flux[[9, 2, 9]], grid.flux[[9, 2, 9]])
        np.testing.assert_array_equal(lazy.flux[3:6, 2:4], grid.flux[3:6, 2:4])
        np.testing.assert_array_equal(np.asarray(lazy.flux), grid.flux)
        sub = lazy[::3]
        assert sub.is_lazy
        np.testing.assert_array_equal(np.asarray(sub.ivar), grid.ivar[::3])
        train, valid, test = lazy.split(seed=1)
        assert train.is_lazy
        eager_parts = grid.split(seed=1)
        np.testing.assert_array_equal(np.asarray(test.flux), eager_parts[2].flux)
        loader = torch.utils.data.DataLoader(lazy.dataset(), batch_size=8, shuffle=True,
                                             generator=torch.Generator().manual_seed(0))
        eager = torch.utils.data.DataLoader(grid.dataset(), batch_size=8, shuffle=True,
                                            generator=torch.Generator().manual_seed(0))
        batches = 0
        for (labels_a, flux_a), (labels_b, flux_b) in zip(loader, eager, strict=True):
            assert flux_a.shape == (len(labels_a), 30)
            torch.testing.assert_close(labels_a, labels_b, rtol=0, atol=0)
            torch.testing.assert_close(flux_a, flux_b, rtol=0, atol=0)
            batches += 1
        assert batches == 3
        loaded = train.load()
        lazy.check_flux()
    assert not loaded.is_lazy
    np.testing.assert_array_equal(loaded.flux, eager_parts[0].flux)  # survives closing
    with pytest.raises(GridFileError, match="has been closed"):
        lazy.flux[0]
    with pytest.raises(GridFileError, match="has been closed"):
        train.spectrum(0)  # sub-grids share the file


def test_lazy_grid_can_be_written_again(grid_file, tmp_path):
    grid, path = grid_file
    with SpectralGrid.read(path, lazy=True) as lazy:
        lazy[5:].write(tmp_path / "copy.h5")
    copy = SpectralGrid.read(tmp_path / "copy.h5")
    assert copy.flux.tobytes() == grid.flux[5:].tobytes()


def test_random_bytes_and_truncated_files_are_refused(grid_file, tmp_path):
    _, path = grid_file
    junk = tmp_path / "junk.h5"
    junk.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(GridFileError, match="not a readable HDF5 file"):
        SpectralGrid.read(junk)
    data = path.read_bytes()
    for keep in (len(data) // 2, 100):
        cut = tmp_path / f"cut{keep}.h5"
        cut.write_bytes(data[:keep])
        for lazy in (False, True):
            with pytest.raises(GridFileError, match="cut"):
                SpectralGrid.read(cut, lazy=lazy).check_flux()
    with pytest.raises(GridFileError, match="does not exist"):
        SpectralGrid.read(tmp_path / "missing.h5")
    assert isinstance(GridFileError("x"), OSError)


def edit(path, action):
    with h5py.File(path, "a") as f:
        action(f)


@pytest.mark.parametrize(
    ("action", "match"),
    [
        (lambda f: f.__delitem__("flux"), "has no 'flux' dataset"),
        (lambda f: f.__delitem__("labels"), "has no 'labels' dataset"),
        (lambda f: f.attrs.__setitem__("format", "something.else"),
         "not a stellarai grid file: root attribute 'format' is 'something.else'"),
        (lambda f: f.attrs.__delitem__("format"), "not a stellarai grid file"),
        (lambda f: f.attrs.__setitem__("format_version", FORMAT_VERSION + 1),
         "format version 2, written by a newer stellarai"),
        (lambda f: f.attrs.__setitem__("label_space", "{not json"), "not valid JSON"),
        (lambda f: f.attrs.__setitem__("label_space", json.dumps({"format": "x"})),
         "unusable 'label_space'"),
        (lambda f: f.__delitem__("ivar") or f.create_dataset("ivar", data=np.ones((2, 2))),
         "dataset 'ivar' has shape"),
    ],
)
def test_foreign_or_damaged_files_are_refused(grid_file, action, match):
    _, path = grid_file
    edit(path, action)
    for lazy in (False, True):
        with pytest.raises(GridFileError, match=match):
            SpectralGrid.read(path, lazy=lazy)


def test_an_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    grid = make_grid(n=300)
    path = tmp_path / "grid.h5"

    lazy_like = grid[:]
    monkeypatch.setattr(lazy_like, "_flux", LazyLike(grid.flux, fail_after=1))
    with pytest.raises(RuntimeError, match="disk on fire"):
        lazy_like.write(path)
    assert not path.exists() and not list(tmp_path.iterdir())


class LazyLike(LazyRows):
    """In-memory stand-in for LazyRows that fails after some block reads."""

    def __init__(self, array, fail_after):
        self.array, self.dtype, self.fail_after = array, array.dtype, fail_after

    @property
    def shape(self):
        return self.array.shape

    def read(self, positions=None):
        if self.fail_after == 0:
            raise RuntimeError("disk on fire")
        self.fail_after -= 1
        return self.array if positions is None else self.array[positions]


def test_copies_of_a_lazy_grid_reopen_the_file(grid_file):
    """What DataLoader workers get: a copy without the parent's handle, reopened on use."""
    grid, path = grid_file
    with SpectralGrid.read(path, lazy=True) as lazy:
        data = lazy[4:].dataset()
        clone = copy.deepcopy(data)
        assert clone.grid.flux.source._file is None
        np.testing.assert_array_equal(clone[0][1].numpy(), grid.flux[4])
        assert clone.grid.flux.source._file is not None
        clone.grid.close()
        np.testing.assert_array_equal(data[1][1].numpy(), grid.flux[5])  # the original is open


@pytest.mark.skipif(sys.platform != "linux", reason="uses the fork start method (Linux)")
def test_lazy_grid_feeds_dataloader_workers(grid_file):
    grid, path = grid_file
    with SpectralGrid.read(path, lazy=True) as lazy, warnings.catch_warnings():
        # Python >= 3.12 warns that fork() in a multi-threaded process may deadlock
        warnings.filterwarnings("ignore", "This process .* is multi-threaded",
                                DeprecationWarning)
        loader = torch.utils.data.DataLoader(lazy.dataset(), batch_size=8, num_workers=2,
                                             multiprocessing_context="fork")
        flux = torch.cat([batch for _, batch in loader])
    np.testing.assert_array_equal(flux.numpy(), grid.flux)


def test_wide_rows_get_one_row_chunks(tmp_path):
    grid = make_grid(n=5, n_pix=40_000, ivar=False)
    grid.write(tmp_path / "wide.h5")
    with h5py.File(tmp_path / "wide.h5") as f:
        assert f["flux"].chunks == (1, 40_000)


def test_training_and_validation_checks_and_splits():
    from stellarai.grids import GridError, SpectralGrid, training_and_validation

    grid = SpectralGrid.from_arrays(np.linspace(5000, 5001, 3) * u.AA, np.ones((20, 3)),
                                    {"teff": np.linspace(4000, 6000, 20) * u.K})
    train, valid = training_and_validation(grid, None, 0.25, seed=1)
    assert (len(train), len(valid)) == (15, 5)
    assert set(train.label_array[:, 0]).isdisjoint(valid.label_array[:, 0])
    same = training_and_validation(grid, valid, 0.25, seed=1)
    assert same[0] is grid and same[1] is valid
    with pytest.raises(GridError, match="valid_fraction must be in \\(0, 1\\), got 1.5"):
        training_and_validation(grid, None, 1.5, seed=0)
    with pytest.raises(ValueError, match="valid must be a stellarai.grids.SpectralGrid, got list"):
        training_and_validation(grid, [], 0.1, seed=0, error=ValueError)
