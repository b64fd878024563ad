"""``stellarai fit`` and ``stellarai demo``: files in, parameter tables and plots out."""

from __future__ import annotations

import argparse

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.table import QTable
from specutils import Spectrum, SpectrumList

from stellarai import ops
from stellarai.errors import StellarAIError, UnreadableFileError
from stellarai.fitting import FitError
from stellarai.fitting.cli import (
    DEMO_TRUTH,
    add_demo_parser,
    add_fit_parser,
    build_model,
    covered_orders,
)
from stellarai.fitting.simulate import (
    hpf_pixel_wavelengths,
    simulate_hpf_observation,
    simulate_observation,
)
from stellarai.io import read_spectrum_list
from stellarai.ops.kernels import uniform_log_grid


def run(argv):
    parser = argparse.ArgumentParser(prog="stellarai")
    commands = parser.add_subparsers(dest="command", required=True)
    add_fit_parser(commands)
    add_demo_parser(commands)
    args = parser.parse_args(argv)
    return args.run(args)


@pytest.fixture(scope="module")
def observation(tmp_path_factory):
    data, truth = simulate_hpf_observation(
        {"teff": 5600 * u.K, "logg": 4.4, "feh": 0.0}, rv=8 * u.km / u.s,
        vsini=5 * u.km / u.s, telluric_strength=1.1, orders=[19], snr=150, seed=4)
    path = tmp_path_factory.mktemp("fit") / "star.fits"
    data.write(path, format="stellarai-fits")
    return path, truth


def test_fit_writes_table_model_and_plot(observation, tmp_path, capsys):
    path, truth = observation
    assert run(["fit", str(path), "--out", str(tmp_path), "--starts", "2", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "teff" in printed and "vsini" in printed and "wrote" in printed
    table = QTable.read(tmp_path / "star_params.ecsv")
    assert {"name", "value", "uncertainty", "unit"} <= set(table.colnames)
    values = {str(n): float(getattr(v, "value", v)) for n, v in zip(table["name"],
                                                                    table["value"], strict=True)}
    assert values["rv"] == pytest.approx(8.0, abs=0.5)
    model = read_spectrum_list(tmp_path / "star_model.fits")
    assert len(model) == 1 and model[0].flux.size == 2048
    assert (tmp_path / "star_fit.png").stat().st_size > 10_000


def test_demo_prints_injected_and_recovered(tmp_path, capsys):
    assert run(["demo", "--out", str(tmp_path), "--orders", "18", "19", "--starts", "2",
                "--quiet"]) == 0
    printed = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in printed.splitlines()
            if line.split() and line.split()[0] in DEMO_TRUTH}
    assert set(rows) == set(DEMO_TRUTH)
    for name, words in rows.items():
        injected, recovered, sigma, pull = (float(words[1]), float(words[2]), float(words[4]),
                                            float(words[-1]))
        assert injected == pytest.approx(DEMO_TRUTH[name], rel=1e-3)
        assert sigma > 0 and np.isfinite(pull)
        assert abs(recovered - injected) < 5 * sigma, name
    assert (tmp_path / "demo_fit.png").stat().st_size > 10_000
    assert (tmp_path / "demo_params.ecsv").exists()


def test_unreadable_file_is_a_one_line_error(tmp_path):
    bad = tmp_path / "notes.fits"
    bad.write_text("this is not a spectrum\n")
    with pytest.raises(UnreadableFileError, match="notes.fits") as caught:
        run(["fit", str(bad), "--out", str(tmp_path)])
    # stellarai.cli.main turns StellarAIError/OSError/ValueError into "error: <line>", status 1
    assert isinstance(caught.value, StellarAIError) and len(str(caught.value).splitlines()) == 1


@pytest.mark.parametrize(("argv", "error", "message"), [
    (["fit", "missing.fits"], FileNotFoundError, "missing.fits' does not exist"),
    (["demo", "--orders", "28"], ValueError, "orders must be distinct integers 0-27"),
])
def test_bad_arguments(argv, error, message, tmp_path):
    with pytest.raises(error, match=message):
        run([*argv, "--out", str(tmp_path)])


def test_featureless_star_fits_the_telluric_strength(tmp_path, capsys):
    pixels = hpf_pixel_wavelengths([5])
    grid = uniform_log_grid(8_640.0, 8_790.0, resolving_power=55_000,
                            samples_per_resolution=5)
    hot_star = (ops.Template((grid, torch.ones_like(grid)))
                * ops.Telluric.from_muler("hpf", strength=1.3)
                | ops.Instrument(resolving_power=55_000))
    observed = simulate_observation(hot_star, pixels, snr=200, seed=1, resolving_power=55_000,
                                    continuum=[[1.0, 0.05, -0.1]])
    path = tmp_path / "hot_star_v1.0.spectra.fits"
    observed.write(path, format="stellarai-fits")
    assert run(["fit", str(path), "--emulator", "none", "--out", str(tmp_path), "--quiet"]) == 0
    table = QTable.read(tmp_path / "hot_star_v1.0.spectra_params.ecsv")
    assert list(table["name"]) == ["strength"]
    assert float(table["value"][0]) == pytest.approx(1.3, abs=5 * float(table["uncertainty"][0]))
    with pytest.raises(ValueError, match="nothing to fit"):
        run(["fit", str(path), "--emulator", "none", "--telluric", "none", "--out",
             str(tmp_path)])


def test_orders_beyond_the_emulator_are_found():
    # HPF's bluest order starts at 8079 A, below the default emulator's 8080 A
    pixels = hpf_pixel_wavelengths([0, 19])
    data = SpectrumList([Spectrum(flux=np.ones(2048) * u.one, spectral_axis=row,
                                  meta={"instrumental_resolution": 55_000.0})
                         for row in pixels])
    assert covered_orders(build_model("default", data), data) == [1]
    assert covered_orders(build_model("none", data), data) == [0, 1]
    with pytest.raises(FitError, match="covers none of the orders"):
        covered_orders(build_model("default", data[:1]), data[:1])


def test_blaze_template_joins_the_chain(observation):
    path, _ = observation
    data = read_spectrum_list(path)
    kinds = [type(op).__name__ for op in build_model("none", data, blaze="hpf").operators]
    assert kinds == ["Telluric", "Instrument", "BlazeTemplate"]
    assert "BlazeTemplate" not in [type(op).__name__ for op in
                                   build_model("none", data).operators]
    with pytest.raises(ValueError, match="blaze must be one of none, hpf, got 'raw'"):
        build_model("none", data, blaze="raw")


def test_bad_telluric_and_orders(observation, tmp_path):
    path, _ = observation
    with pytest.raises(ValueError, match="telluric must be one of hpf, none, got 'h2o'"):
        run(["fit", str(path), "--telluric", "h2o", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="--orders must be distinct indices 0-0"):
        run(["fit", str(path), "--orders", "3", "--out", str(tmp_path)])


def test_stellarai_command_runs_fit_and_reports_a_bad_file(tmp_path, capsys):
    from stellarai.cli import main

    bad = tmp_path / "not_a_spectrum.fits"
    bad.write_bytes(b"this is not FITS")
    assert main(["fit", str(bad), "--out", str(tmp_path / "out"), "--quiet"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("stellarai fit: error:")
    assert "not_a_spectrum.fits" in error
    assert "\n" not in error
