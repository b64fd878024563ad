"""Tests of stellarai.foundation: training, calibrated predictions, masks, sub-ranges,
cross-instrument input, attention, save/load and bad input."""

from __future__ import annotations

import json

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.nddata import StdDevUncertainty
from specutils import Spectrum, SpectrumList

from stellarai.emulators.toy import toy_grid
from stellarai.foundation import (
    AttentionMap,
    ExtrapolationWarning,
    FoundationError,
    FoundationFileError,
    FoundationModel,
    observe,
)
from stellarai.foundation.training import gaussian_nll
from stellarai.labels import LabelSpace

N_PIX = 150
BLUE = {"low": 5000.0, "high": 5030.0}
RED = {"low": 8000.0, "high": 8040.0}


def tiny(space):
    return FoundationModel(space, d_model=32, n_heads=2, mlp_hidden=64, n_blocks=2,
                           n_frequencies=32, min_period=1e-4, context=128, min_context=16)


@pytest.fixture(scope="module")
def trained():
    """A tiny model pre-trained on two toy 'instruments' (5000-5030 and 8000-8040 Å)."""
    blue = toy_grid(600, n_pix=N_PIX, seed=0, **BLUE)
    red = toy_grid(400, n_pix=100, seed=1, **RED)
    model = tiny(blue.label_space)
    history = model.pretrain([blue, red], epochs=8, lr=3e-3, noise=(0.0, 0.02),
                             patience=None, progress=False)
    return model, history


def noisy_star(index: int = 0, seed: int = 9, **window) -> Spectrum:
    grid = observe(toy_grid(index + 1, n_pix=N_PIX, seed=seed, **(window or BLUE)),
                   snr=100, seed=seed)
    return grid.spectrum(index)


def test_pretraining_lowers_validation_loss(trained):
    _, history = trained
    assert history.epochs == 8
    assert history.valid_loss[-1] < history.valid_loss[0] - 0.1
    assert history.valid_mae[-1] < history.valid_mae[0]
    assert history.plot().axes[0].get_ylabel() == "Gaussian negative log-likelihood"


def test_pulls_on_held_out_spectra_are_calibrated(trained):
    model, _ = trained
    test = observe(toy_grid(200, n_pix=N_PIX, seed=5, **BLUE), snr=100, seed=6)
    table = model.predict_many(test, n_contexts=8)
    for name in model.label_space.names:
        error = (table[name] - test.labels[name]).value
        pull = error / table[f"{name}_uncertainty"].value
        assert 0.7 <= np.std(pull) <= 1.5, name
    # the model learned something: [Fe/H] scatter well below the prior's (0.43 dex)
    assert np.sqrt(np.mean((table["feh"] - test.labels["feh"]).value ** 2)) < 0.3


def test_predict_table_format_and_determinism(trained):
    model, _ = trained
    star = noisy_star()
    table = model.predict(star, labels=["feh", "teff"])
    assert list(table["name"]) == ["feh", "teff"]
    assert list(table["unit"]) == ["dex", "K"]
    assert np.all(table["uncertainty"] > 0)
    again = model.predict(star, labels="feh")
    assert again["value"][0] == table["value"][0]


def test_half_masked_spectrum_predicts_with_larger_uncertainty(trained):
    model, _ = trained
    star = noisy_star(seed=11)
    mask = np.zeros(N_PIX, dtype=bool)
    mask[::2] = True
    masked = Spectrum(flux=star.flux, spectral_axis=star.spectral_axis, mask=mask,
                      uncertainty=StdDevUncertainty(np.full(N_PIX, 0.01)))
    full, half = model.predict(star), model.predict(masked)
    assert np.all(np.isfinite(half["value"]))
    assert np.all(half["uncertainty"] > full["uncertainty"])


def test_sub_range_and_orders_and_other_instrument(trained):
    model, _ = trained
    star = noisy_star(seed=12)
    chunk = star[40:100]
    assert chunk.spectral_axis.min() > 5000 * u.AA
    table = model.predict(chunk)
    assert np.all(np.isfinite(table["value"])) and np.all(table["uncertainty"] > 0)
    orders = SpectrumList([star[:75], star[75:]])
    assert np.all(np.isfinite(model.predict(orders)["value"]))
    red = observe(toy_grid(1, n_pix=100, seed=13, **RED), snr=100).spectrum(0)
    assert np.all(np.isfinite(model.predict(red)["value"]))
    many = model.predict_many([star, chunk, red])
    assert len(many) == 3 and many["feh"].unit == u.dex
    assert many["feh"][0].value == pytest.approx(model.predict(star)["value"][2], abs=0.2)


def test_attention_map(trained):
    model, _ = trained
    star = noisy_star(seed=14)
    mask = np.zeros(N_PIX, dtype=bool)
    mask[:10] = True
    star = Spectrum(flux=star.flux, spectral_axis=star.spectral_axis, mask=mask)
    attention = model.attention(star, "feh", n_contexts=8)
    assert isinstance(attention, AttentionMap)
    values = attention.attention[0]
    assert np.all(np.isnan(values[:10])) and np.all(np.isfinite(values[10:]))
    # relative attention averages to about one per pixel read
    assert 0.5 < np.nanmean(values) < 2.0
    assert attention.to_spectrum().flux.shape == (N_PIX,)
    assert attention.peaks(3).unit == u.AA and len(attention.peaks(3)) == 3
    assert len(attention.plot().axes) == 2


def test_finetune_frozen_blocks_and_partial_labels(trained):
    model, _ = trained
    state = {k: v.clone() for k, v in model.module.state_dict().items()}
    try:
        grid = observe(toy_grid(12, n_pix=N_PIX, seed=20, **BLUE), snr=100, seed=21)
        stars = [grid.spectrum(i) for i in range(len(grid))]
        history = model.finetune(stars, {"feh": grid.labels["feh"]},
                                 label_uncertainty={"feh": 0.05 * u.dex}, frozen_blocks=2,
                                 epochs=2, progress=False)
        assert history.epochs == 2
        after = model.module.state_dict()
        assert torch.equal(after["blocks.1.linear1.weight"], state["blocks.1.linear1.weight"])
        assert torch.equal(after["flux_embedding"], state["flux_embedding"])
        assert not torch.equal(after["head.weight"], state["head.weight"])
        assert model.provenance["runs"][-1]["frozen_blocks"] == 2
    finally:
        model.module.load_state_dict(state)


def test_save_load_round_trip(trained, tmp_path):
    model, _ = trained
    weights, sidecar = model.save(tmp_path / "fm")
    loaded = FoundationModel.load(tmp_path / "fm.json")
    star = noisy_star(seed=15)
    assert np.array_equal(model.predict(star)["value"], loaded.predict(star)["value"])
    assert loaded.wavelength_ranges == model.wavelength_ranges
    with pytest.raises(FoundationFileError, match="exists"):
        model.save(tmp_path / "fm")
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(FoundationFileError, match="checksum"):
        FoundationModel.load(tmp_path / "fm")
    record = json.loads(sidecar.read_text())
    record["format_version"] = 99
    sidecar.write_text(json.dumps(record))
    with pytest.raises(FoundationFileError, match="format version"):
        FoundationModel.load(tmp_path / "fm")


def test_bad_input(trained):
    model, _ = trained
    star = noisy_star(seed=16)
    with pytest.raises(FoundationError, match=r"not trained on \['mg_fe'\]"):
        model.predict(star, labels=["mg_fe"])
    with pytest.raises(FoundationError, match="not trained on"):
        model.attention(star, "vmic")
    empty = Spectrum(flux=star.flux, spectral_axis=star.spectral_axis,
                     mask=np.ones(N_PIX, dtype=bool))
    with pytest.raises(FoundationError, match="no valid pixel"):
        model.predict(empty)
    far = Spectrum(flux=star.flux, spectral_axis=np.linspace(15000, 15030, N_PIX) * u.AA)
    with pytest.raises(FoundationError, match="far outside every trained range"):
        model.predict(far)
    with pytest.warns(ExtrapolationWarning, match="extrapolated"):
        table = model.predict(far, outside="warn")
    assert np.all(np.isfinite(table["value"]))
    with pytest.raises(FoundationError, match="outside must be 'raise' or 'warn'"):
        model.predict(star, outside="ignore")
    with pytest.raises(FoundationError, match=r"frozen_blocks must be an integer in \[0, 2\]"):
        model.finetune([star, star], {"feh": [0.0, 0.1]}, frozen_blocks=3)
    with pytest.raises(FoundationError, match=r"labels \['mg_fe'\] are not labels"):
        model.finetune([star, star], {"mg_fe": [0.0, 0.1]})
    with pytest.raises(FoundationError, match="n_contexts must be a positive integer"):
        model.predict(star, n_contexts=0)
    with pytest.raises(FoundationError, match="not trained yet"):
        tiny(model.label_space).predict(star)
    with pytest.raises(FoundationError, match=r"lacks the labels \['vmic'\]"):
        tiny(LabelSpace.default().subset(["teff", "vmic"])).pretrain(
            toy_grid(20, n_pix=30), epochs=1, progress=False)


def test_gaussian_nll_adds_label_uncertainty():
    mean, log_var = torch.zeros(1, 1), torch.zeros(1, 1)
    target, known = torch.ones(1, 1), torch.ones(1, 1, dtype=torch.bool)
    # variance 1 + 1 = 2: 0.5 * (ln 2 + 1 / 2)
    value = gaussian_nll(mean, log_var, target, torch.ones(1, 1), known)
    assert float(value) == pytest.approx(0.5 * (np.log(2) + 0.5))


def _small_run(tmp_path, **kwargs):
    grid = toy_grid(80, n_pix=60, seed=3)
    model = FoundationModel(grid.label_space, d_model=16, n_heads=2, mlp_hidden=32,
                            n_blocks=1, n_frequencies=16, min_period=1e-4, context=32,
                            min_context=8)
    history = model.pretrain(grid, epochs=3, batch_size=16, patience=None, progress=False,
                             checkpoint=tmp_path / "ckpt", **kwargs)
    return model, history


def test_checkpoint_resume_equals_uninterrupted_run(tmp_path):
    straight, history = _small_run(tmp_path / "a")
    assert (tmp_path / "a" / "ckpt.safetensors").exists()
    assert json.loads((tmp_path / "a" / "ckpt.json").read_text())["step"] == 3 * 5
    # a session that stops after one epoch, then a new process resuming from its files
    _, first = _small_run(tmp_path / "b", stop_after=1)
    assert first.epochs == 1
    resumed, history_b = _small_run(tmp_path / "b", resume=True)
    assert history_b.epochs == 3
    assert history_b.valid_loss == history.valid_loss
    for key, value in straight.module.state_dict().items():
        assert torch.equal(value, resumed.module.state_dict()[key]), key
    # resume=True without files starts afresh; other settings are refused
    fresh, _ = _small_run(tmp_path / "c", resume=True)
    assert torch.equal(fresh.module.head.weight, straight.module.head.weight)
    with pytest.raises(FoundationError, match="differ from this run"):
        _small_run(tmp_path / "b", resume=True, lr=5e-4)
    with pytest.raises(FoundationError, match="needs a checkpoint path"):
        straight.pretrain(toy_grid(20, n_pix=60), epochs=1, resume=True, progress=False)
    (tmp_path / "b" / "ckpt.json").write_text("{}")
    with pytest.raises(FoundationFileError, match="not a stellarai.foundation-checkpoint"):
        _small_run(tmp_path / "b", resume=True)


def test_line_weighted_contexts_read_lines():
    from stellarai.foundation.tokens import TokenBlock, sample_contexts

    n, n_pix = 64, 400
    flux = torch.ones(n, n_pix) + 0.005 * torch.randn(n, n_pix,
                                                      generator=torch.Generator().manual_seed(1))
    flux[:, :40] = 0.7                                         # 10 % of the pixels in lines
    block = TokenBlock(torch.arange(n_pix, dtype=torch.float64), flux, torch.zeros(n, n_pix),
                       torch.ones(n, n_pix, dtype=torch.bool), torch.zeros(n, 1),
                       torch.zeros(n, 1), torch.ones(n, 1, dtype=torch.bool))
    generator = torch.Generator().manual_seed(0)
    uniform = sample_contexts(block, 40, generator)
    weighted = sample_contexts(block, 40, generator, line_floor=0.02)
    assert float((uniform.index < 40).float().mean()) < 0.2
    # weight 0.3 against 0.02: the 40 line pixels hold 12 / 19.2 of the total weight
    assert float((weighted.index < 40).float().mean()) > 0.45
    # without replacement, valid pixels only
    masked = TokenBlock(block.wavelength, flux, block.sigma,
                        torch.arange(n_pix)[None].expand(n, -1) >= 20, block.labels,
                        block.label_sigma, block.known)
    drawn = sample_contexts(masked, 40, generator, line_floor=0.02).index
    assert int(drawn.min()) >= 20
    assert all(len(set(row.tolist())) == 40 for row in drawn)


def test_line_floor_setting_saved_and_checked(trained, tmp_path):
    model, _ = trained
    assert model.line_floor == 0.02 and model.architecture()["line_floor"] == 0.02
    weights, sidecar = model.save(tmp_path / "fm")
    record = json.loads(sidecar.read_text())
    del record["architecture"]["line_floor"]               # a model saved before the option
    sidecar.write_text(json.dumps(record))
    assert FoundationModel.load(tmp_path / "fm").line_floor is None
    with pytest.raises(FoundationError, match="line_floor must be a positive number"):
        FoundationModel(model.label_space, line_floor=0.0)
