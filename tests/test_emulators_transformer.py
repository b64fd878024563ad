"""TransformerPayne: any wavelength, cached label keys/values, save/load, fine-tuning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stellarai.emulators import (
    EmulatorError,
    SinusoidalEncoding,
    Trainer,
    TransformerPayne,
    load,
)
from stellarai.emulators.toy import toy_flux, toy_grid

SMALL = {"d_model": 32, "n_blocks": 2, "n_heads": 2, "mlp_hidden": 64, "n_frequencies": 32,
         "train_pixels": 32}





@pytest.fixture(scope="module")
def trained() -> tuple[TransformerPayne, object]:
    grid = toy_grid(250, n_pix=200, seed=0)
    train, test = grid.split((0.85, 0.15), seed=1)
    emu = TransformerPayne(grid.label_space, grid.wavelength, **SMALL)
    Trainer(emu, epochs=40, batch_size=16, lr=1e-2, patience=None, progress=False,
            threads=1).fit(train)
    return emu, test


def test_reproduces_held_out_spectra(trained: tuple) -> None:
    emu, test = trained
    error = np.abs(emu(test.label_array).numpy() - test.flux)
    # a 20k-parameter network after 40 short epochs on 212 spectra (lines up to 0.9 deep)
    assert np.median(error) < 0.03
    assert np.percentile(error, 95) < 0.12


def test_evaluable_between_training_pixels(trained: tuple) -> None:
    emu, test = trained
    wl = emu.wavelength.value
    mid = 0.5 * (wl[1:] + wl[:-1])
    at_pixels = np.abs(emu(test.label_array).numpy() - test.flux)
    between = np.abs(emu(test.label_array, mid).numpy() - toy_flux(test.label_array, mid))
    # interpolation is smooth: halfway between pixels the error is no worse than at them
    assert np.median(between) < 1.6 * np.median(at_pixels)
    spec = emu.spectrum(teff=5000, logg=4.5, feh=0.0, wavelength=mid[:7])
    assert spec.flux.shape == (7,)


def test_chunked_equals_unchunked() -> None:
    grid = toy_grid(5, n_pix=300)
    emu = TransformerPayne(grid.label_space, grid.wavelength, **SMALL)
    assert torch.equal(emu(grid.label_array), torch.ones(5, 300))  # untrained: continuum
    with torch.no_grad():
        emu.module.head.weight.normal_()  # so that the flux depends on labels and pixels
    labels = torch.tensor(grid.label_array)
    at_once = emu(labels)
    emu.max_elements = 64 * 70  # 70 pixels per chunk (width 64), one spectrum at a time
    chunked = emu(labels)
    torch.testing.assert_close(chunked, at_once, rtol=3e-6, atol=2e-6)  # float32 round-off
    z = grid.label_space.scale(labels).float()
    context = emu.module.context(z)  # keys/values once per spectrum, reused for any pixels
    pieces = [emu.module(z, emu._wavelength[a:a + 50], context) for a in range(0, 300, 50)]
    torch.testing.assert_close(torch.cat(pieces, dim=-1), at_once, rtol=3e-6, atol=2e-6)


def test_save_load_round_trip(trained: tuple, tmp_path) -> None:
    emu, test = trained
    emu.save(tmp_path / "tp")
    again = load(tmp_path / "tp")
    assert isinstance(again, TransformerPayne)
    assert again.architecture() == emu.architecture()
    assert torch.equal(again(test.label_array), emu(test.label_array))
    odd = np.linspace(5001.0, 5029.0, 37)
    assert torch.equal(again(test.label_array, odd), emu(test.label_array, odd))


def test_wavelength_outside_range(trained: tuple) -> None:
    emu, test = trained
    with pytest.raises(EmulatorError, match="outside the range this TransformerPayne"):
        emu(test.label_array, [4990.0, 5010.0])


def test_finetune_changes_only_unfrozen_blocks(trained: tuple) -> None:
    emu, _ = trained
    tuned = load_copy(emu)
    before = {k: v.clone() for k, v in tuned.module.state_dict().items()}
    other = toy_grid(60, n_pix=200, seed=9)  # "another grid"
    params = tuned.finetune_parameters(blocks=[-1])
    Trainer(tuned, epochs=2, batch_size=16, lr=1e-3, parameters=params,
            progress=False, threads=1).fit(other)
    after = tuned.module.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("blocks.1.", "norm_out.", "head.")) for k in changed)
    assert any(k.startswith("blocks.1.") for k in changed)
    with pytest.raises(EmulatorError, match=r"block index must be an integer in \[-2, 1\]"):
        tuned.finetune_parameters(blocks=[2])


def load_copy(emu: TransformerPayne) -> TransformerPayne:
    copy = TransformerPayne._from_architecture(emu.label_space, emu.wavelength,
                                               emu.architecture())
    copy.module.load_state_dict(emu.module.state_dict())
    return copy


def test_encoding() -> None:
    enc = SinusoidalEncoding(3, 1e-4, 1e-2, reference=np.log(5000.0))
    out = enc(torch.tensor([5000.0], dtype=torch.float64))
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]],
                                                 dtype=torch.float64))
    enc.to(torch.float32)  # periods are not buffers: never rounded
    assert enc.angular().dtype == torch.float64
    with pytest.raises(EmulatorError, match="0 < min_period < max_period"):
        SinusoidalEncoding(3, 1e-2, 1e-4)


def test_query_knots_learn_a_wavelength_table_and_round_trip(tmp_path) -> None:
    grid = toy_grid(4, n_pix=120)
    emu = TransformerPayne(grid.label_space, grid.wavelength, **SMALL, n_knots=60)
    labels = torch.tensor(grid.label_array)
    with torch.no_grad():
        emu.module.head.weight.normal_()  # the head starts at zero: flux 1 everywhere
    before = emu(labels)
    with torch.no_grad():  # knots start at zero; a bump at one knot moves only nearby pixels
        emu.module.knots[30].normal_()
    diff = (emu(labels) - before).abs().amax(0)
    wl = emu._wavelength
    pos = (torch.log(wl) - np.log(wl[0].item())) / np.log(wl[-1].item() / wl[0].item()) * 59
    near = (pos - 30).abs() < 1
    assert bool((diff[~near] == 0).all()) and bool((diff[near] > 0).any())
    emu.save(tmp_path / "knots")
    again = load(tmp_path / "knots")
    assert again.architecture()["n_knots"] == 60
    assert torch.equal(again(labels), emu(labels))
    assert any(p is emu.module.knots for p in emu.finetune_parameters(query=True))
    with pytest.raises(EmulatorError, match=r"n_knots must be 0 \(no knots\) or an integer"):
        TransformerPayne(grid.label_space, grid.wavelength, **SMALL, n_knots=1)


def test_architecture_without_knots_entry_still_loads() -> None:
    grid = toy_grid(2, n_pix=50)
    emu = TransformerPayne(grid.label_space, grid.wavelength, **SMALL)
    old = {k: v for k, v in emu.architecture().items()  # an older sidecar
           if k not in ("n_knots", "n_label_blocks", "knot_head")}
    again = TransformerPayne._from_architecture(emu.label_space, emu.wavelength, old)
    assert again.module.knots is None and len(again.module.label_blocks) == 0
    assert again.module.head_knots is None
    again.module.load_state_dict(emu.module.state_dict())
    assert torch.equal(again(grid.label_array), emu(grid.label_array))


def test_label_self_attention_mixes_labels_and_round_trips(tmp_path) -> None:
    grid = toy_grid(3, n_pix=40)
    plain = TransformerPayne(grid.label_space, grid.wavelength, **SMALL)
    mixed = TransformerPayne(grid.label_space, grid.wavelength, **SMALL, n_label_blocks=1)
    z = torch.zeros(2, len(grid.label_space))
    z[1, 1] = 0.4  # only the second label differs between the two rows
    # without self-attention a label's token depends on its own value only
    with torch.no_grad():
        same, moved = plain.module.tokens(z), mixed.module.tokens(z)
    assert torch.equal(same[0, 0], same[1, 0])
    assert float((moved[0, 0] - moved[1, 0]).abs().max()) > 1e-4
    emu = TransformerPayne(grid.label_space, grid.wavelength, **SMALL, n_label_blocks=2)
    emu.save(tmp_path / "mixed")
    again = load(tmp_path / "mixed")
    assert again.architecture()["n_label_blocks"] == 2
    assert torch.equal(again(grid.label_array), emu(grid.label_array))
    chosen = {id(p) for p in emu.finetune_parameters(blocks=[], head=False, labels=True)}
    assert {id(p) for p in emu.module.label_blocks.parameters()} <= chosen
    assert not {id(p) for p in emu.module.label_blocks.parameters()} & {
        id(p) for p in emu.finetune_parameters()}


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_bad_n_label_blocks_is_refused(bad) -> None:
    grid = toy_grid(2, n_pix=20)
    with pytest.raises(EmulatorError, match="n_label_blocks must be a non-negative integer"):
        TransformerPayne(grid.label_space, grid.wavelength, **SMALL, n_label_blocks=bad)


@pytest.mark.parametrize("n_knots", [0, 40])
def test_training_batch_reuses_grid_features_exactly(n_knots: int) -> None:
    grid = toy_grid(4, n_pix=60)
    emu = TransformerPayne(grid.label_space, grid.wavelength, **(SMALL | {"n_knots": n_knots}))
    with torch.no_grad():
        emu.module.head.weight.normal_()
        if n_knots:
            emu.module.knots.normal_()
    z = grid.label_space.scale(torch.tensor(grid.label_array)).float()
    flux = torch.tensor(grid.flux, dtype=torch.float32)
    prediction, target = emu.train_batch(z, flux, torch.Generator().manual_seed(3))
    index = torch.randint(0, 60, (4, SMALL["train_pixels"]),
                          generator=torch.Generator().manual_seed(3))
    # the cached encoding/knot positions give bit for bit what the wavelengths give
    assert torch.equal(prediction, emu.module(z, emu._wavelength[index]))
    assert torch.equal(target, flux.gather(1, index))
    emu.module.double()  # the cache follows the weights' dtype
    prediction, _ = emu.train_batch(z.double(), flux.double(), torch.Generator().manual_seed(3))
    assert prediction.dtype == torch.float64
    assert torch.equal(prediction, emu.module(z.double(), emu._wavelength[index]))
    with pytest.raises(EmulatorError, match="wavelength or its pixel features"):
        emu.module(z.double(), None)


def test_knot_head_reads_out_per_wavelength_and_round_trips(tmp_path) -> None:
    grid = toy_grid(4, n_pix=120)
    emu = TransformerPayne(grid.label_space, grid.wavelength, **SMALL, n_knots=60,
                           knot_head=True)
    labels = torch.tensor(grid.label_array)
    assert torch.equal(emu(labels), torch.ones(4, 120))  # starts silent: the continuum
    with torch.no_grad():  # a read-out at one knot changes only the pixels next to it
        emu.module.head_knots[30].normal_()
    diff = (emu(labels) - 1).abs().amax(0)
    wl = emu._wavelength
    pos = (torch.log(wl) - np.log(wl[0].item())) / np.log(wl[-1].item() / wl[0].item()) * 59
    near = (pos - 30).abs() < 1
    assert bool((diff[~near] == 0).all()) and bool((diff[near] > 0).all())
    z = grid.label_space.scale(labels).float()  # training batches see the same read-out
    prediction, _ = emu.train_batch(z, torch.ones(4, 120), torch.Generator().manual_seed(0))
    index = torch.randint(0, 120, (4, SMALL["train_pixels"]),
                          generator=torch.Generator().manual_seed(0))
    assert torch.equal(prediction, emu.module(z, wl[index]))
    emu.save(tmp_path / "knot_head")
    again = load(tmp_path / "knot_head")
    assert again.architecture()["knot_head"] is True
    assert torch.equal(again(labels), emu(labels))
    assert any(p is emu.module.head_knots for p in emu.finetune_parameters(blocks=[]))
    with pytest.raises(EmulatorError, match="knot_head needs query knots"):
        TransformerPayne(grid.label_space, grid.wavelength, **SMALL, knot_head=True)
