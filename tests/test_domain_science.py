"""stellarai.domain (issue 10): a translator trained on an easy pair of toy domains.

The easy pair: the observed domain is the synthetic one seen through a slightly broader
line-spread function (Gaussian sigma 0.7 px) with noise 0.003, no continuum wiggle and no
missing lines (``stellarai.domain.toy.ToyDomains``, 128 px, 10 lines).
"""

import numpy as np
import pytest

from stellarai.domain import DomainTranslator
from stellarai.domain.toy import ToyDomains
from stellarai.emulators import PayneEmulator, Trainer


@pytest.fixture(scope="module")
def easy():
    toy = ToyDomains(n_pix=128, n_fe=6, n_ti=4, withheld=0, lsf=0.7, wiggle=0.0, noise=0.003)
    grid = toy.synthetic_grid(300, seed=0)
    emulator = PayneEmulator(grid.label_space, grid.wavelength, hidden=(64, 64), seed=0)
    Trainer(emulator, epochs=40, batch_size=16, lr=3e-3, progress=False).fit(grid)
    translator = DomainTranslator(emulator, n_shared=6, n_split=1, channels=(4, 8), hidden=96)
    history = translator.fit(toy.observed_grid(400, seed=2), synthetic_labels=grid,
                             cross_validation=toy.observed_grid(50, seed=7), epochs=30,
                             batch_size=16, lr=3e-3, progress=False)
    return toy, emulator, translator, history


def test_synthetic_to_observed_to_synthetic_returns_the_input(easy):
    toy, emulator, translator, _ = easy
    labels = toy.labels(40, seed=11)
    synthetic = emulator(labels).numpy()
    there = translator.translate(synthetic, to="observed").flux.value
    back = translator.translate(there, to="synthetic").flux.value
    rms = np.sqrt(np.mean((back - synthetic) ** 2))
    depth = np.mean(1 - synthetic.min(1))
    print(f"\ncycle rms {rms:.4f}, mean deepest line {depth:.3f}")
    assert rms < 0.05 * depth
    assert rms < 0.02


def test_translation_moves_towards_the_observed_domain(easy):
    toy, emulator, translator, _ = easy
    labels = toy.labels(40, seed=12)
    synthetic = emulator(labels).numpy()
    truth = toy.observed_flux(labels, seed=None)  # noise-free observed spectra
    there = translator.translate(synthetic, to="observed").flux.value
    before = np.sqrt(np.mean((synthetic - truth) ** 2))
    after = np.sqrt(np.mean((there - truth) ** 2))
    print(f"\nrms vs observed domain: emulator {before:.4f}, translated {after:.4f}")
    assert after < before


def test_cross_validation_report_improves(easy):
    _, _, _, history = easy
    for name, values in history.scores.items():
        assert np.all(np.isfinite(values)), name
    assert history.scores["x_synth_to_obs"][-1] < history.scores["x_synth_to_obs"][0]
    assert history.scores["z_synth_vs_obs"][-1] < history.scores["z_synth_vs_obs"][0]
