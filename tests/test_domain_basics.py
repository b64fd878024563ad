"""stellarai.domain (issue 10): losses, networks, the training step, inputs, saving."""

import astropy.units as u
import numpy as np
import pytest
import torch
from specutils import Spectrum

from stellarai.domain import (
    CycleNetwork,
    CycleStep,
    DomainError,
    DomainFileError,
    DomainInputError,
    DomainTranslator,
    LossWeights,
    element_of,
    latent_score,
    load_translator,
    reduced_chi2,
    split_correlation,
)
from stellarai.domain.toy import ToyDomains
from stellarai.emulators import PayneEmulator, Trainer
from stellarai.grids import SpectralGrid
from stellarai.labels import LabelSpace


@pytest.fixture(scope="module")
def toy():
    return ToyDomains(n_pix=128, n_fe=6, n_ti=4, withheld=2)


@pytest.fixture(scope="module")
def emulator(toy):
    grid = toy.synthetic_grid(200, seed=0)
    emu = PayneEmulator(grid.label_space, grid.wavelength, hidden=(64, 64), seed=0)
    Trainer(emu, epochs=30, batch_size=16, lr=3e-3, progress=False).fit(grid)
    return emu


@pytest.fixture(scope="module")
def trained(toy, emulator):
    translator = DomainTranslator(emulator, n_shared=6, n_split=2, channels=(4, 8), hidden=64)
    history = translator.fit(toy.observed_grid(120, seed=3), synthetic_labels=toy.synthetic_grid(
        50, seed=1), epochs=6, batch_size=16, lr=2e-3, progress=False)
    return translator, history


def test_loss_weights_defaults_and_errors():
    assert LossWeights() == LossWeights(synthetic=3, observed=9, generator=1, discriminator=1)
    assert LossWeights.from_any({"generator": 0.5}).generator == 0.5
    with pytest.raises(DomainError, match="loss weight 'observed' must be a finite number"):
        LossWeights(observed=-1)
    with pytest.raises(DomainError, match=r"unknown loss weights \['cycle'\]"):
        LossWeights.from_any({"cycle": 1.0})


def test_reduced_chi2_is_weighted_and_ignores_masked_pixels():
    target = torch.zeros(2, 4)
    prediction = torch.tensor([[0.1, 0.2, 100.0, 0.0], [0.0, 0.0, 0.0, 0.3]])
    weight = torch.tensor([[100.0, 100.0, 0.0, 100.0], [100.0, 100.0, 100.0, 25.0]])
    expected = (100 * 0.01 + 100 * 0.04 + 25 * 0.09) / 7
    assert float(reduced_chi2(prediction, target, weight)) == pytest.approx(expected)


def test_split_correlation_values():
    x = torch.linspace(0, 1, 10)[:, None]
    shared = torch.cat([x, torch.ones(10, 1)], 1)          # a constant has no correlation
    assert float(split_correlation(shared, -3 * x)) == pytest.approx(1.0, abs=1e-4)
    assert float(split_correlation(shared, (x - 0.5) ** 2)) == pytest.approx(0.0, abs=1e-6)
    both = torch.cat([x, (x - 0.5) ** 2], 1)
    assert float(split_correlation(shared, both)) == pytest.approx(0.5, abs=1e-4)
    assert float(split_correlation(shared[:1], x[:1])) == 0.0


def test_decorrelation_penalty_removes_what_the_shared_latent_says():
    torch.manual_seed(0)
    factors = torch.rand(64, 2)                 # the shared latent knows only the first
    layer = torch.nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    start = float(split_correlation(factors[:, :1], layer(factors)).detach())
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.05)
    for _ in range(100):
        optimizer.zero_grad(set_to_none=True)
        split_correlation(factors[:, :1], layer(factors)).backward()
        optimizer.step()
    assert start > 0.3
    assert float(split_correlation(factors[:, :1], layer(factors)).detach()) < 0.01
    assert float(layer.weight.detach()[0, 1].abs()) > 0.5   # the other factor is kept


def test_decorrelation_penalty_moves_only_the_split_encoder():
    torch.manual_seed(1)
    net = CycleNetwork(64, n_shared=4, n_split=2, channels=(4,), hidden=16)
    observed = 1 - 0.3 * torch.rand(16, 64)
    synthetic = observed.flip(0)
    weight = torch.full_like(observed, 1e4)
    step = CycleStep(net, LossWeights(), synthetic_weight=1e4, split_decorrelation=2.0)
    out = step.forward(synthetic, observed)
    penalized = step.generator_losses(out, synthetic, observed, weight)
    penalty = float(penalized["decorrelation"].detach())
    assert np.isfinite(penalty) and penalty > 0
    penalized["decorrelation"].backward()
    assert all(p.grad is None for p in net.encoder_obs.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in net.encoder_split.parameters())
    step.split_decorrelation = 0.0              # Cycle-StarNet's loss, recorded but not added
    plain = step.generator_losses(out, synthetic, observed, weight)
    assert float((penalized["total"] - plain["total"]).detach()) == pytest.approx(
        2.0 * penalty, rel=1e-2)


def test_latent_score_and_element_names():
    a = torch.tensor([[0.0, 5.0], [1.0, 5.0], [2.0, 5.0]])
    assert latent_score(a, a) == 0.0
    assert latent_score(a, a.flip(0)) == pytest.approx((2 / 3 * 2 / 2) / 2 * 1.0)
    assert [element_of(n) for n in ("ti_h", "mg_fe", "feh")] == ["Ti", "Mg", "Fe"]
    with pytest.raises(DomainError, match="'teff' is not an abundance label"):
        element_of("teff")


def test_parameter_sets_partition_the_network():
    net = CycleNetwork(64, n_shared=4, n_split=2, channels=(4,), hidden=16)
    g = {id(p) for p in net.generator_parameters()}
    d = {id(p) for p in net.discriminator_parameters()}
    assert g and d and not g & d
    assert g | d == {id(p) for p in net.parameters()}
    with pytest.raises(DomainError, match="kernel_size must be odd"):
        CycleNetwork(64, kernel_size=4)


def test_each_parameter_set_changes_only_with_its_own_loss():
    torch.manual_seed(0)
    net = CycleNetwork(64, n_shared=4, n_split=2, channels=(4,), hidden=16)
    step = CycleStep(net, LossWeights(), synthetic_weight=1e4)
    synthetic = 1 - 0.3 * torch.rand(8, 64)
    observed = 1 - 0.3 * torch.rand(8, 64)
    weight = torch.full_like(observed, 1e4)
    g_opt = torch.optim.AdamW(net.generator_parameters(), lr=1e-2)
    d_opt = torch.optim.AdamW(net.discriminator_parameters(), lr=1e-2)

    def snapshot(params):
        return [p.detach().clone() for p in params]

    out = step.forward(synthetic, observed)
    g_before, d_before = snapshot(net.generator_parameters()), snapshot(
        net.discriminator_parameters())
    d_loss = step.discriminator_loss(out, synthetic, observed)
    d_loss.backward()
    assert all(p.grad is None for p in net.generator_parameters())
    d_opt.step()
    assert all(torch.equal(a, b) for a, b in zip(g_before, net.generator_parameters(), strict=True))
    d_now = list(net.discriminator_parameters())
    assert not all(torch.equal(a, b) for a, b in zip(d_before, d_now, strict=True))

    d_after = snapshot(net.discriminator_parameters())
    d_opt.zero_grad(set_to_none=True)
    losses = step.generator_losses(out, synthetic, observed, weight)
    losses["total"].backward()
    assert all(p.grad is None for p in net.discriminator_parameters())
    assert all(p.requires_grad for p in net.discriminator_parameters())
    g_opt.step()
    d_now = list(net.discriminator_parameters())
    assert all(torch.equal(a, b) for a, b in zip(d_after, d_now, strict=True))
    g_now = list(net.generator_parameters())
    assert not all(torch.equal(a, b) for a, b in zip(g_before, g_now, strict=True))


def test_tiny_model_losses_are_finite_and_fall(trained):
    _, history = trained
    assert history.epochs == 6
    for name, values in history.components.items():
        assert np.all(np.isfinite(values)), name
    for name in ("rec_synth", "rec_obs", "cycle_synth", "cycle_obs"):
        values = history.components[name]
        assert values[-1] < 0.5 * values[0], (name, values)
    assert history.valid_loss[history.best_epoch] < history.valid_loss[0]
    assert history.plot().axes


def test_translate_latent_and_map_shapes(trained, toy, emulator):
    translator, _ = trained
    labels = toy.labels(3, seed=4)
    synth = emulator.spectrum(teff=labels[0, 0] * u.K, feh=labels[0, 1], ti_h=labels[0, 2])
    out = translator.translate(synth, to="observed")
    assert isinstance(out, Spectrum) and out.flux.shape == (128,)
    assert out.meta["domain"] == "observed"
    back = translator.translate(toy.observed_flux(labels, seed=1), to="synthetic")
    assert back.flux.shape == (3, 128)
    latent = translator.latent(toy.observed_flux(labels, seed=1))
    assert latent.shared.shape == (3, 6) and latent.split.shape == (3, 2)
    assert translator.latent(synth, domain="synthetic").split is None
    cmap = translator.missing_lines("Ti", n_stars=8)
    assert cmap.label == "ti_h" and cmap.difference.shape == (128,)
    assert cmap.to_spectrum().meta["element"] == "Ti"
    assert "Ti" in cmap.plot().axes[0].get_title()


def test_missing_lines_reference_responses(trained, emulator):
    translator, _ = trained
    net, step = translator.network, 0.05
    labels = translator.reference_labels[:5]
    column = emulator.label_space.index("ti_h")
    up, down = labels.copy(), labels.copy()
    up[:, column] += step
    down[:, column] -= step
    with torch.no_grad():
        flux = [emulator(x).float() for x in (up, down)]
        split = net.split_mean.expand(5, net.n_split)
        delta = [net.generator_obs(net.encoder_synth(f), split) for f in flux]
    by_hand = ((delta[0] - delta[1]) / (2 * step)).double().mean(0).numpy()
    emulated = ((flux[0] - flux[1]) / (2 * step)).double().mean(0).numpy()
    # residual generators: G_obs - G_synth is the correction network alone
    cmap = translator.missing_lines("ti_h", labels=labels, step=step)
    assert cmap.meta["reference"] == "reconstructed"
    np.testing.assert_allclose(cmap.difference, by_hand, atol=1e-4)
    other = translator.missing_lines("ti_h", labels=labels, step=step, reference="emulator")
    np.testing.assert_allclose(other.emulated, emulated, atol=1e-4)
    np.testing.assert_allclose(other.translated, cmap.translated, atol=1e-6)
    assert not np.allclose(other.difference, cmap.difference, atol=1e-4)
    with pytest.raises(DomainError, match="reference must be 'reconstructed' or 'emulator'"):
        translator.missing_lines("ti_h", reference="grid")


def test_spectra_off_the_grid_are_resampled(trained, toy):
    translator, _ = trained
    flux = toy.observed_flux(toy.labels(1, seed=8), seed=2)[0]
    wl = toy.wavelength.value
    fine = np.linspace(wl[0] - 1, wl[-1] + 1, 3 * len(wl))
    spec = Spectrum(flux=np.interp(fine, wl, flux) * u.one, spectral_axis=fine * u.AA)
    direct = translator.translate(flux, to="synthetic").flux.value
    resampled = translator.translate(spec, to="synthetic").flux.value
    assert np.max(np.abs(direct - resampled)) < 0.02


def test_bad_input_errors(trained, toy, emulator):
    translator, _ = trained
    wl = toy.wavelength.value
    short = Spectrum(flux=np.ones(50) * u.one, spectral_axis=np.linspace(wl[0] + 3, wl[-1], 50)
                     * u.AA)
    with pytest.raises(DomainInputError, match="the translator needs"):
        translator.translate(short, to="synthetic")
    masked = Spectrum(flux=np.ones(len(wl)) * u.one, spectral_axis=toy.wavelength,
                      mask=np.ones(len(wl), dtype=bool))
    with pytest.raises(DomainInputError, match="every pixel masked"):
        translator.translate(masked, to="synthetic")
    with pytest.raises(DomainInputError, match=r"shape \(128,\) or \(n, 128\)"):
        translator.translate(np.ones(100), to="synthetic")
    with pytest.raises(DomainInputError, match="normalized"):
        translator.translate(np.ones(128) * u.Jy, to="synthetic")
    with pytest.raises(DomainError, match="to must be 'observed' or 'synthetic'"):
        translator.translate(np.ones(128), to="sideways")
    with pytest.raises(DomainError, match="not an abundance label of the emulator"):
        translator.missing_lines("teff")
    other = SpectralGrid(toy.wavelength, np.ones((3, 128)), {"teff": [5000, 5100, 5200] * u.K},
                         LabelSpace.default().subset(["teff"]))
    fresh = DomainTranslator(emulator, n_shared=4, n_split=1, channels=(4,), hidden=16)
    with pytest.raises(DomainError, match="not trained yet"):
        fresh.translate(np.ones(128))
    with pytest.raises(DomainError, match="the label spaces must match"):
        fresh.fit(toy.observed_grid(10, seed=1), synthetic_labels=other, epochs=1,
                  progress=False)
    for bad in (-1.0, float("nan"), float("inf"), True, "1"):
        with pytest.raises(DomainError, match="split_decorrelation must be a finite number"):
            fresh.fit(toy.observed_grid(10, seed=1), epochs=1, progress=False,
                      split_decorrelation=bad)
    with pytest.raises(DomainError, match="emulator must be a SpectralEmulator"):
        DomainTranslator("payne")


def test_save_load_round_trip(trained, tmp_path):
    translator, _ = trained
    translator.save(tmp_path / "tr")
    again = load_translator(tmp_path / "tr")
    flux = np.ones((2, 128)) - 0.1
    assert np.array_equal(again.translate(flux, to="synthetic").flux,
                          translator.translate(flux, to="synthetic").flux)
    assert np.array_equal(again.reference_labels, translator.reference_labels)
    with pytest.raises(DomainFileError, match="exists"):
        translator.save(tmp_path / "tr")
    weights = tmp_path / "tr.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"abcd")
    with pytest.raises(DomainFileError, match="checksum does not match"):
        load_translator(tmp_path / "tr")


def test_checkpoint_resume_matches_uninterrupted(toy, emulator, tmp_path):
    observed = toy.observed_grid(40, seed=6)
    settings = {"epochs": 3, "batch_size": 16, "progress": False}
    straight = DomainTranslator(emulator, n_shared=4, n_split=1, channels=(4,), hidden=16)
    straight.fit(observed, **settings)
    resumed = DomainTranslator(emulator, n_shared=4, n_split=1, channels=(4,), hidden=16)
    resumed.fit(observed, checkpoint=tmp_path / "ck", stop_after=1, **settings)
    resumed = DomainTranslator(emulator, n_shared=4, n_split=1, channels=(4,), hidden=16)
    resumed.fit(observed, checkpoint=tmp_path / "ck", resume=True, **settings)
    assert resumed.history.epochs == 3
    for a, b in zip(straight.network.state_dict().values(),
                    resumed.network.state_dict().values(), strict=True):
        assert torch.allclose(a, b)


def test_same_seed_same_run_whatever_the_global_random_state(toy, emulator):
    observed, labels = toy.observed_grid(60, seed=3), toy.synthetic_grid(30, seed=1)
    runs = []
    for global_seed in (1, 2):  # split dropout and cycle noise must not use the global RNG
        torch.manual_seed(global_seed)
        translator = DomainTranslator(emulator, n_shared=6, n_split=2, channels=(4, 8),
                                      hidden=64)
        history = translator.fit(observed, synthetic_labels=labels, epochs=3, batch_size=16,
                                 lr=2e-3, progress=False, split_dropout=0.5, cycle_noise=0.01)
        runs.append((history.valid_loss, list(translator.network.parameters())))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))
