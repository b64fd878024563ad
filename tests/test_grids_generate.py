"""Sampling label spaces, filling grids with a synthesizer, and ``stellarai grid``."""

import argparse

import astropy.units as u
import numpy as np
import pytest
import torch

from stellarai.errors import LabelError
from stellarai.grids import (
    GridError,
    GridFileError,
    SpectralGrid,
    fill_grid,
    generate_grid,
    sample_labels,
)
from stellarai.grids import cli as grid_cli
from stellarai.labels import LabelSpace

SPACE = LabelSpace.default().subset(["teff", "logg", "feh", "vmic"])


class FakeSynthesizer:
    """The synthesizer interface stellarai.grids expects, with a cheap analytic spectrum."""

    def __init__(self, n_pix=40, space=SPACE, nan_row=None):
        self.label_space = space
        self.wavelength = np.linspace(5000.0, 5010.0, n_pix) * u.AA
        self.settings = {"kind": "fake", "n_pix": n_pix}
        self.batches, self.grad_enabled = [], []
        self.nan_row = nan_row

    def flux(self, labels):
        assert isinstance(labels, torch.Tensor) and labels.dtype == torch.float64
        self.batches.append(len(labels))
        self.grad_enabled.append(torch.is_grad_enabled())
        x = torch.linspace(0.0, 1.0, len(self.wavelength), dtype=torch.float64)
        teff, logg, feh = labels[:, 0:1], labels[:, 1:2], labels[:, 2:3]
        depth = 0.2 + 0.1 * feh + 0.05 * logg
        center = 0.3 + (teff - 2300.0) / 20000.0
        flux = 1.0 - depth * torch.exp(-0.5 * ((x - center) / 0.03) ** 2)
        if self.nan_row is not None and sum(self.batches) > self.nan_row:
            flux[self.nan_row - sum(self.batches[:-1])] = float("nan")
        return flux


# ------------------------------------------------------------------------ sampling

@pytest.mark.parametrize("method", ["sobol", "latin_hypercube", "random"])
def test_samples_are_within_bounds_and_reproducible(method):
    a = sample_labels(SPACE, 100, method, seed=3)
    b = sample_labels(SPACE, 100, method, seed=3)
    c = sample_labels(SPACE, 100, method, seed=4)
    values = SPACE.parse_batch(a)  # raises if any value is outside the bounds
    assert values.shape == (100, 4) and a["teff"].unit == u.K
    np.testing.assert_array_equal(values, SPACE.parse_batch(b))
    assert not np.array_equal(values, SPACE.parse_batch(c))
    assert np.all(values >= SPACE.lower) and np.all(values <= SPACE.upper)


@pytest.mark.parametrize(("method", "n"), [("latin_hypercube", 50), ("sobol", 64)])
def test_stratified_designs_hit_every_stratum_once(method, n):
    values = SPACE.parse_batch(sample_labels(SPACE, n, method, seed=1))
    unit_cube = (values - SPACE.lower) / (SPACE.upper - SPACE.lower)
    strata = np.floor(unit_cube * n).astype(int)
    for j in range(len(SPACE)):
        assert sorted(strata[:, j].tolist()) == list(range(n)), SPACE.names[j]
    random = SPACE.parse_batch(sample_labels(SPACE, n, "random", seed=1))
    random_strata = np.floor((random - SPACE.lower) / (SPACE.upper - SPACE.lower) * n)
    assert len(set(random_strata[:, 0].tolist())) < n  # plain random draws are not stratified


def test_sobol_with_n_not_a_power_of_two_warns_nothing():
    table = sample_labels(SPACE, 10, "sobol", seed=0)  # filterwarnings=error would catch it
    assert len(table) == 10 and len(sample_labels(SPACE, 0, "sobol")) == 0


def test_fixed_labels_and_sub_ranges():
    table = sample_labels(SPACE, 32, "latin_hypercube", seed=0, fixed={"vmic": 1.5 * u.km / u.s},
                          ranges={"teff": (4.5 * u.kK, 5.5 * u.kK), "feh": [-1, -0.5]})
    assert np.all(table["vmic"] == 1.5 * u.km / u.s)
    assert table["teff"].min() >= 4500 * u.K and table["teff"].max() <= 5500 * u.K
    assert table["teff"].max() - table["teff"].min() > 900 * u.K  # the sub-range is spanned
    assert np.all((table["feh"].value >= -1) & (table["feh"].value <= -0.5))
    assert table["logg"].value.max() - table["logg"].value.min() > 5  # free label: full range
    fixed_only = sample_labels(SPACE.subset(["vmic"]), 3, "sobol", fixed={"vmic": 2.0})
    assert fixed_only["vmic"].value.tolist() == [2.0, 2.0, 2.0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "grid"}, "method must be one of"),
        ({"fixed": {"vmic": 9.0}}, r"fixed value of label 'vmic' must be a number within .*0, 5"),
        ({"fixed": {"tef": 5000}}, "did you mean 'teff'"),
        ({"ranges": {"teff": (1000, 5000)}}, "lower end of the range of label 'teff'"),
        ({"ranges": {"teff": (5000, 4000)}}, "lower <= upper"),
        ({"ranges": {"teff": 5000}}, "must be a pair"),
        ({"fixed": {"teff": 5000}, "ranges": {"teff": (4000, 6000)}}, "both in fixed and"),
        ({"n": -1}, "non-negative integer"),
    ],
)
def test_bad_sampling_arguments(kwargs, match):
    args = {"n": 8, "method": "sobol", **kwargs}
    with pytest.raises(LabelError, match=match):
        sample_labels(SPACE, args.pop("n"), args.pop("method"), **args)


# ------------------------------------------------------------------------ generation

def test_generated_grid_equals_calling_the_synthesizer_directly():
    synth = FakeSynthesizer()
    grid = generate_grid(synth, 50, method="latin_hypercube", seed=5, batch_size=16,
                         progress=False, fixed={"vmic": 1.0})
    assert synth.batches == [16, 16, 16, 2] and not any(synth.grad_enabled)
    expected_labels = SPACE.parse_batch(sample_labels(SPACE, 50, "latin_hypercube", seed=5,
                                                      fixed={"vmic": 1.0}))
    np.testing.assert_array_equal(grid.label_array, expected_labels)
    direct = synth.flux(torch.tensor(expected_labels)).numpy().astype(np.float32)
    assert grid.flux.dtype == np.float32
    np.testing.assert_array_equal(grid.flux, direct)
    np.testing.assert_array_equal(grid.wavelength, synth.wavelength)
    info = grid.provenance
    assert info["generator"] == "stellarai.grids.generate_grid"
    assert (info["method"], info["seed"], info["n_spectra"]) == ("latin_hypercube", 5, 50)
    assert info["fixed"] == {"vmic": 1.0}
    assert info["synthesizer"]["class"].endswith("FakeSynthesizer")
    assert info["synthesizer"]["settings"] == {"kind": "fake", "n_pix": 40}
    assert info["stellarai_version"] and info["created"]


class ChattySynthesizer(FakeSynthesizer):
    """A synthesizer that would draw its own progress bar unless told not to."""

    def flux(self, labels, progress=None):
        self.progress_arguments = [*getattr(self, "progress_arguments", []), progress]
        return super().flux(labels)


def test_the_grid_silences_the_synthesizers_own_progress_bar():
    synth = ChattySynthesizer()
    generate_grid(synth, 20, batch_size=8, progress=False)
    assert synth.progress_arguments == [False, False, False]


def test_generation_into_a_file_streams_batches(tmp_path, capsys):
    path = tmp_path / "grid.h5"
    in_memory = generate_grid(FakeSynthesizer(), 20, seed=2, progress=False, dtype=np.float64)
    with generate_grid(FakeSynthesizer(), 20, seed=2, batch_size=7, out=path,
                       dtype=np.float64) as on_disk:
        assert on_disk.is_lazy
        np.testing.assert_array_equal(np.asarray(on_disk.flux), in_memory.flux)
        np.testing.assert_array_equal(on_disk.label_array, in_memory.label_array)
    assert "synthesizing grid" in capsys.readouterr().err  # the progress bar
    assert [p.name for p in tmp_path.iterdir()] == ["grid.h5"]
    with pytest.raises(GridFileError, match="already exists"):
        generate_grid(FakeSynthesizer(), 20, out=path, progress=False)


def test_fill_grid_with_given_labels():
    table = SPACE.to_table([[5000.0, 4.0, 0.0, 1.0], [6000.0, 3.0, -1.0, 2.0]])
    synth = FakeSynthesizer()
    grid = fill_grid(synth, table, progress=False)
    np.testing.assert_array_equal(grid.flux, synth.flux(torch.tensor(grid.label_array)).numpy()
                                  .astype(np.float32))
    with pytest.raises(LabelError, match="row 1"):
        fill_grid(synth, [[5000.0, 4.0, 0.0, 1.0], [6000.0, 3.0, -1.0, 7.0]], progress=False)


def test_provenance_is_checked_before_synthesizing():
    synth = FakeSynthesizer()
    synth.settings = {"window": 5 * u.AA}  # not JSON: recorded as text
    grid = generate_grid(synth, 2, progress=False)
    assert grid.provenance["synthesizer"]["settings"] == repr({"window": 5 * u.AA})
    synth.batches.clear()
    with pytest.raises(GridError, match="provenance must be JSON-serializable"):
        fill_grid(synth, [[5000.0, 4.0, 0.0, 1.0]], provenance={"when": object()})
    assert synth.batches == []


def test_a_failing_synthesizer_leaves_no_file(tmp_path):
    path = tmp_path / "grid.h5"
    with pytest.raises(GridError, match="NaN or infinite flux for row 9"):
        generate_grid(FakeSynthesizer(nan_row=9), 16, batch_size=4, out=path, progress=False)
    assert not list(tmp_path.iterdir())

    class WrongShape(FakeSynthesizer):
        def flux(self, labels):
            return super().flux(labels)[:, :-1]

    with pytest.raises(GridError, match=r"returned shape \(4, 39\) for 4 label sets"):
        generate_grid(WrongShape(), 4, progress=False)
    with pytest.raises(GridError, match="has no \\['flux'\\]"):
        generate_grid(type("NoFlux", (), {"label_space": SPACE, "wavelength": [1] * u.AA})(),
                      4)


# ------------------------------------------------------------------------ CLI

def run_cli(argv):
    parser = argparse.ArgumentParser(prog="stellarai")
    grid_cli.add_grid_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


def test_cli_writes_a_grid(tmp_path, monkeypatch, capsys):
    made = {}

    def fake_factory(wavelength_range, resolving_power):
        made.update(range=wavelength_range, R=resolving_power)
        return FakeSynthesizer()

    monkeypatch.setattr(grid_cli, "make_synthesizer", fake_factory)
    out = tmp_path / "cli.h5"
    status = run_cli(["grid", "--n", "12", "--method", "latin_hypercube", "--seed", "4",
                      "--wavelength-range", "5000", "5010", "--resolving-power", "20000",
                      "--label", "teff=4000:6000", "--label", "vmic=1.0", "--out", str(out),
                      "--quiet", "--compression", "gzip"])
    assert status == 0
    assert made == {"range": (5000.0, 5010.0), "R": 20000.0}
    assert f"wrote 12 spectra x 40 px (teff, logg, feh, vmic) to {out}" in capsys.readouterr().out
    grid = SpectralGrid.read(out)
    assert np.all(grid.labels["vmic"] == 1 * u.km / u.s)
    teff = grid.labels["teff"].value
    assert teff.min() >= 4000 and teff.max() <= 6000
    expected = generate_grid(FakeSynthesizer(), 12, method="latin_hypercube", seed=4,
                             fixed={"vmic": 1.0}, ranges={"teff": (4000.0, 6000.0)},
                             progress=False)
    np.testing.assert_array_equal(grid.flux, expected.flux)


@pytest.mark.parametrize("label", ["teff", "teff=4000:5000:6000", "=5", "teff=hot"])
def test_cli_refuses_malformed_label_options(label, capsys):
    with pytest.raises(SystemExit) as info:
        run_cli(["grid", "--n", "2", "--wavelength-range", "5000", "5010", "--out", "x.h5",
                 "--label", label])
    assert info.value.code == 2
    assert "expected NAME=LO:HI or NAME=VALUE" in capsys.readouterr().err
