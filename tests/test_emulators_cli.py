"""``stellarai train``: grid file in, saved emulator out, held-out accuracy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stellarai.cli import main
from stellarai.emulators import PayneEmulator, TransformerPayne, load
from stellarai.emulators.toy import toy_grid

# Held-out tolerance of the small Payne trained below on the toy model (lines up to 0.9
# deep): median absolute flux error < 0.01 and 95th percentile < 0.03 (measured:
# about 0.003 and 0.011).
MEDIAN_TOL, P95_TOL = 0.01, 0.03


@pytest.fixture(scope="module")
def grid_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("grid") / "toy.h5"
    toy_grid(400, n_pix=100, seed=0).write(path)
    return path


def test_train_payne_reproduces_held_out_spectra(grid_file, tmp_path, capsys):
    out = tmp_path / "payne"
    status = main(["train", str(grid_file), "--backend", "payne", "--hidden", "64", "64",
                   "--epochs", "200", "--batch-size", "32", "--lr", "3e-3", "--seed", "0",
                   "--out", str(out), "--plot", str(tmp_path / "loss.png"), "--quiet"])
    assert status == 0
    text = capsys.readouterr().out
    assert "validation error" in text and "median" in text and "p95" in text
    assert (tmp_path / "loss.png").stat().st_size > 0
    sidecar = json.loads((tmp_path / "payne.json").read_text())
    validation = sidecar["provenance"]["validation"]
    assert validation["n_spectra"] == 40 and validation["p95_abs_error"] < P95_TOL
    assert sidecar["provenance"]["training"]["settings"]["epochs"] == 200

    emulator = load(out)
    assert isinstance(emulator, PayneEmulator)
    held_out = toy_grid(60, n_pix=100, seed=99)  # labels never seen in training
    model = emulator.flux(held_out.label_array).detach().numpy()
    error = np.abs(model - held_out.flux)
    assert np.median(error) < MEDIAN_TOL
    assert np.percentile(error, 95) < P95_TOL


def test_train_transformer_runs(grid_file, tmp_path):
    out = tmp_path / "tp"
    assert main(["train", str(grid_file), "--backend", "transformer", "--hidden", "16",
                 "--epochs", "2", "--out", str(out), "--quiet"]) == 0
    emulator = load(out)
    assert isinstance(emulator, TransformerPayne)
    assert np.isfinite(emulator.flux(toy_grid(2, n_pix=100, seed=5).label_array)
                       .detach().numpy()).all()


@pytest.mark.parametrize(("argv", "message"), [
    (["missing.h5", "--out", "x"], "does not exist"),
    (["GRID", "--backend", "mlp", "--out", "x"], "--backend must be one of"),
    (["GRID", "--backend", "transformer", "--hidden", "8", "8", "--out", "x"], "one width"),
])
def test_bad_input_exits_1_with_one_line(grid_file, tmp_path, capsys, argv, message):
    argv = [str(tmp_path / a) if a in ("missing.h5", "x") else a for a in argv]
    argv = [str(grid_file) if a == "GRID" else a for a in argv]
    assert main(["train", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("stellarai train: error:") and message in err
    assert err.count("\n") == 1


def test_existing_output_needs_overwrite(grid_file, tmp_path, capsys):
    (tmp_path / "e.json").write_text("{}")
    assert main(["train", str(grid_file), "--out", str(tmp_path / "e"), "--quiet"]) == 1
    assert "--overwrite" in capsys.readouterr().err
