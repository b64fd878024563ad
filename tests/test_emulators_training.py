"""The Trainer: determinism, resumable checkpoints, early stopping, history, provenance."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from stellarai.emulators import (
    EmulatorError,
    EmulatorFileError,
    PayneEmulator,
    Trainer,
    learning_rate,
)
from stellarai.emulators.toy import toy_grid


@pytest.fixture(scope="module")
def grid() -> object:
    return toy_grid(80, n_pix=40, seed=2)


def _emulator(grid: object, seed: int = 0) -> PayneEmulator:
    return PayneEmulator(grid.label_space, grid.wavelength, hidden=(32, 32), seed=seed)


def _weights(emu: PayneEmulator) -> list[torch.Tensor]:
    return [p.detach().clone() for p in emu.module.parameters()]


def test_same_seed_identical_weights(grid: object) -> None:
    results = []
    for _ in range(2):
        emu = _emulator(grid)
        Trainer(emu, epochs=4, batch_size=16, seed=5, progress=False, threads=1).fit(grid)
        results.append(_weights(emu))
    assert all(torch.equal(a, b) for a, b in zip(*results, strict=True))
    other = _emulator(grid)
    Trainer(other, epochs=4, batch_size=16, seed=6, progress=False, threads=1).fit(grid)
    assert not all(torch.equal(a, b) for a, b in zip(results[0], _weights(other), strict=True))


def test_resume_matches_uninterrupted_run(grid: object, tmp_path) -> None:
    straight = _emulator(grid)
    full = Trainer(straight, epochs=6, batch_size=16, patience=None, progress=False, threads=1)
    full.fit(grid)

    resumed = _emulator(grid)
    first = Trainer(resumed, epochs=6, batch_size=16, patience=None, progress=False, threads=1,
                    checkpoint=tmp_path / "ckpt")
    first.fit(grid, stop_after=3)  # an interrupted run
    assert (tmp_path / "ckpt.safetensors").exists() and (tmp_path / "ckpt.json").exists()
    fresh = _emulator(grid, seed=99)  # different start: everything must come from the file
    second = Trainer(fresh, epochs=6, batch_size=16, patience=None, progress=False, threads=1,
                     checkpoint=tmp_path / "ckpt")
    history = second.fit(grid, resume=True)
    assert history.epochs == 6
    assert history.train_loss == full.history.train_loss
    assert all(torch.equal(a, b) for a, b in zip(_weights(fresh), _weights(straight),
                                                  strict=True))


def test_checkpoint_refuses_other_settings(grid: object, tmp_path) -> None:
    Trainer(_emulator(grid), epochs=1, batch_size=16, progress=False, threads=1,
            checkpoint=tmp_path / "c").fit(grid)
    other = Trainer(_emulator(grid), epochs=2, batch_size=8, progress=False, threads=1,
                    checkpoint=tmp_path / "c")
    with pytest.raises(EmulatorError, match="differ from this run's"):
        other.fit(grid, resume=True)
    (tmp_path / "c.json").write_text("garbage")
    with pytest.raises(EmulatorFileError, match="cannot read checkpoint"):
        other.fit(grid, resume=True)


def test_resume_and_stop_after_are_checked(grid: object) -> None:
    trainer = Trainer(_emulator(grid), epochs=2, batch_size=16, progress=False, threads=1)
    with pytest.raises(EmulatorError, match="needs a checkpoint path"):
        trainer.fit(grid, resume=True)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(EmulatorError, match="stop_after must be a positive integer"):
            trainer.fit(grid, stop_after=bad)
    assert trainer.history.epochs == 0


def test_early_stopping_keeps_best(grid: object) -> None:
    emu = _emulator(grid)
    trainer = Trainer(emu, epochs=60, batch_size=16, lr=0.5, schedule="constant", patience=2,
                      progress=False, threads=1)
    history = trainer.fit(grid)
    assert history.stopped_early and history.epochs < 60
    assert history.epochs - 1 - history.best_epoch == 2
    train, valid = grid.split((0.9, 0.1), seed=0)
    prediction = emu(valid.label_array).numpy()
    mse = float(np.mean((prediction - valid.flux) ** 2))
    assert mse == pytest.approx(history.best_valid_loss, rel=1e-4)


def test_history_plot_and_provenance(grid: object) -> None:
    emu = _emulator(grid)
    trainer = Trainer(emu, epochs=3, batch_size=16, schedule="onecycle", progress=False, threads=1)
    history = trainer.fit(grid)
    assert history.epochs == 3 and len(history.lr) == 3
    fig = trainer.plot_history()
    assert isinstance(fig, Figure) and fig.axes[0].get_yscale() == "log"
    record = emu.provenance["training"]
    assert record["settings"]["schedule"] == "onecycle" and record["n_valid"] == 8
    json.dumps(record)


def test_progress_bar_runs(grid: object, capsys: pytest.CaptureFixture[str]) -> None:
    Trainer(_emulator(grid), epochs=1, batch_size=40, progress=True, threads=1).fit(grid)
    assert "training PayneEmulator" in capsys.readouterr().err


def test_schedules() -> None:
    assert learning_rate(0, 100, 1e-3, "onecycle") == pytest.approx(4e-5)
    assert learning_rate(30, 100, 1e-3, "onecycle") == pytest.approx(1e-3)
    assert learning_rate(99, 100, 1e-3, "onecycle") == pytest.approx(1e-7)
    assert learning_rate(7, 100, 1e-3, "constant") == 1e-3
    with pytest.raises(EmulatorError, match="schedule must be"):
        learning_rate(0, 10, 1e-3, "linear")


def test_bad_arguments(grid: object) -> None:
    emu = _emulator(grid)
    with pytest.raises(EmulatorError, match="epochs must be an integer >= 1"):
        Trainer(emu, epochs=0)
    with pytest.raises(EmulatorError, match="non-empty selection"):
        Trainer(emu, parameters=[torch.nn.Parameter(torch.zeros(2))])
    wrong = toy_grid(10, n_pix=41)
    with pytest.raises(EmulatorError, match="wavelength differs"):
        Trainer(emu, epochs=1, progress=False, threads=1).fit(wrong)
    with pytest.raises(EmulatorError, match="SpectralGrid"):
        Trainer(emu, epochs=1, progress=False, threads=1).fit(np.zeros((3, 40)))
