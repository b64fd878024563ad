"""SpectralFlow mechanics: PCA, inputs and masks, sampling, save/load, bad input."""

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning
from specutils import Spectrum, SpectrumList

from stellarai.errors import LabelError, SpectrumInputError
from stellarai.flows import (
    FlowError,
    FlowFileError,
    SpectralFlow,
    fit_pca,
    pixel_correlations,
    roc_auc,
)
from stellarai.flows.toy import ToyStars


@pytest.fixture(scope="module")
def toy():
    return ToyStars(n_pix=600, n_fe=20, n_mg=6)


@pytest.fixture(scope="module")
def flow(toy):
    flow = SpectralFlow(n_components=8, conditional_on=("teff", "logg"), transforms=2,
                        hidden_features=(32, 32))
    flow.fit(toy.grid(500, seed=0), epochs=8, batch_size=128, lr=3e-3, seed=0,
             progress=False)
    return flow


@pytest.fixture(scope="module")
def normal(toy):
    labels = toy.labels(20, seed=5)
    return labels, toy.flux(labels, seed=6)


def test_pca_explained_variance_and_masked_projection():
    rng = np.random.default_rng(0)
    signal = rng.standard_normal((200, 3)) @ rng.standard_normal((3, 50))
    flux = torch.as_tensor(1 + signal + 1e-4 * rng.standard_normal((200, 50)))
    basis = fit_pca(flux, explained_variance=0.999)
    assert basis.n_components == 3
    assert torch.allclose(basis.components @ basis.components.T,
                          torch.eye(3, dtype=torch.float64), atol=1e-12)
    mask = torch.zeros_like(flux, dtype=torch.bool)
    mask[:, ::3] = True
    full, masked = basis.project(flux), basis.project(flux, mask)
    assert torch.allclose(full.coefficients, masked.coefficients, atol=1e-3)
    assert (masked.n_used == 33).all()
    with pytest.raises(ValueError, match="n_components must be"):
        fit_pca(flux, n_components=0)


def test_roc_auc_matches_pairwise_count():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=40), rng.normal(0.5, size=30).round(1)
    pairs = (b[:, None] > a[None, :]).mean() + 0.5 * (b[:, None] == a[None, :]).mean()
    assert roc_auc(a, b) == pytest.approx(pairs)
    assert roc_auc([0, 1], [2, 3]) == 1.0
    with pytest.raises(ValueError, match="at least one"):
        roc_auc([], [1.0])


def test_fit_records_history_and_repr(flow):
    assert flow.fitted and flow.history.epochs == 8
    assert 0 <= flow.history.best_epoch < 8
    assert "8 PCA components of 600 px" in repr(flow)
    assert flow.plot_history().axes
    assert set(flow.label_ranges) == {"teff", "logg"}


def test_log_prob_table_and_input_kinds(flow, toy, normal):
    labels, flux = normal
    table = flow.log_prob(flux, teff=labels[:, 0] * u.K, logg=labels[:, 1])
    assert isinstance(table, QTable) and len(table) == 20
    assert np.isfinite(table["log_prob"]).all()
    assert table["reconstruction_rms"].unit == u.dimensionless_unscaled
    assert np.allclose(table["reconstruction_rms"].value, toy.noise, rtol=0.2)
    spectra = SpectrumList([Spectrum(flux=f * u.one, spectral_axis=toy.wavelength)
                            for f in flux[:3]])
    from_list = flow.log_prob(spectra, QTable(toy.label_space.to_table(labels[:3])))
    assert np.allclose(from_list["log_prob"], table["log_prob"][:3], rtol=0, atol=1e-9)
    two_d = Spectrum(flux=flux[:3] * u.one, spectral_axis=toy.wavelength)
    assert np.allclose(flow.log_prob(two_d, teff=labels[:3, 0], logg=labels[:3, 1])["log_prob"],
                       table["log_prob"][:3], atol=1e-9)


def test_resampled_spectrum_on_a_finer_wider_grid(flow, toy, normal):
    labels, _ = normal
    fine = np.linspace(4999.0, 5061.0, 4000) * u.AA
    wide = ToyStars(n_pix=600, n_fe=20, n_mg=6)
    wide.wavelength = fine
    flux = wide.flux(labels[:1], seed=None)
    table = flow.log_prob(Spectrum(flux=flux[0] * u.one, spectral_axis=fine),
                          teff=labels[0, 0], logg=labels[0, 1])
    assert table["n_pixels"][0] == 600
    assert table["reconstruction_rms"][0] < 3 * toy.noise
    with pytest.raises(SpectrumInputError, match="but the flow needs"):
        flow.log_prob(Spectrum(flux=flux[0, 200:] * u.one, spectral_axis=fine[200:]),
                      teff=5000, logg=4.5)


def test_masked_pixels_are_ignored(flow, toy, normal):
    labels, flux = normal
    one = flux[0].copy()
    mask = np.zeros(one.shape, dtype=bool)
    mask[[100, 101, 350]] = True
    one[mask] = 1e6
    spectrum = Spectrum(flux=one * u.one, spectral_axis=toy.wavelength, mask=mask)
    reference = flux[0].copy()
    reference[mask] = 1.0
    kwargs = {"teff": labels[0, 0], "logg": labels[0, 1]}
    masked = flow.log_prob(spectrum, **kwargs)
    clean = flow.log_prob(reference, mask=mask, **kwargs)
    assert masked["log_prob"][0] == pytest.approx(clean["log_prob"][0], abs=1e-9)
    assert masked["n_pixels"][0] == 597
    scores = flow.outlier_scores(np.stack([reference, one]), mask=np.stack([mask, mask]),
                                 **kwargs)
    assert scores[0] == pytest.approx(scores[1], abs=1e-9)
    unmasked = flow.log_prob(one, **kwargs)
    assert unmasked["log_prob"][0] < masked["log_prob"][0] - 100
    with pytest.raises(SpectrumInputError, match="every pixel masked"):
        flow.log_prob(np.full(600, np.nan), **kwargs)


def test_sample_returns_spectrum_on_the_flow_grid(flow, toy):
    spec = flow.sample(6, teff=5000 * u.K, logg=[4.0, 4.2, 4.4, 4.6, 4.8, 5.0], seed=3)
    assert isinstance(spec, Spectrum) and spec.flux.shape == (6, 600)
    assert u.allclose(spec.spectral_axis, toy.wavelength)
    assert np.allclose(spec.meta["labels"]["logg"].value, [4.0, 4.2, 4.4, 4.6, 4.8, 5.0])
    again = flow.sample(6, teff=5000 * u.K, logg=[4.0, 4.2, 4.4, 4.6, 4.8, 5.0], seed=3)
    assert np.array_equal(spec.flux, again.flux)
    noisy = flow.sample(6, teff=5000, logg=4.5, seed=3, noise=True)
    assert np.std(noisy.flux.value - flow.sample(6, teff=5000, logg=4.5, seed=3).flux.value
                  ) == pytest.approx(toy.noise, rel=0.2)


def test_save_load_identical(flow, normal, tmp_path):
    labels, flux = normal
    flow.save(tmp_path / "flow")
    loaded = SpectralFlow.load(tmp_path / "flow.json")
    kwargs = {"teff": labels[:, 0], "logg": labels[:, 1]}
    assert np.array_equal(flow.log_prob(flux, **kwargs)["log_prob"],
                          loaded.log_prob(flux, **kwargs)["log_prob"])
    assert np.array_equal(flow.outlier_scores(flux, **kwargs),
                          loaded.outlier_scores(flux, **kwargs))
    assert np.array_equal(flow.sample(3, teff=5000, logg=4.5, seed=1).flux,
                          loaded.sample(3, teff=5000, logg=4.5, seed=1).flux)
    assert loaded.condition_space == flow.condition_space
    with pytest.raises(FlowFileError, match="exists"):
        flow.save(tmp_path / "flow")
    sidecar = tmp_path / "flow.json"
    sidecar.write_text(sidecar.read_text().replace('"format_version": 1', '"format_version": 99'))
    with pytest.raises(FlowFileError, match="format version 99"):
        SpectralFlow.load(tmp_path / "flow")
    with pytest.raises(FlowFileError, match="cannot read"):
        SpectralFlow.load(tmp_path / "missing")


def test_bad_input_errors(flow, toy, normal):
    labels, flux = normal
    with pytest.raises(FlowError, match="not fitted yet"):
        SpectralFlow().log_prob(flux)
    with pytest.raises(FlowError, match="not fitted yet"):
        SpectralFlow().sample(2)
    with pytest.raises(LabelError, match="cannot condition on"):
        SpectralFlow(conditional_on=("teff", "vsini")).fit(toy.grid(20), epochs=1,
                                                           progress=False)
    with pytest.raises(LabelError, match="missing label"):
        flow.log_prob(flux, teff=labels[:, 0])
    with pytest.raises(LabelError, match="tef"):
        flow.log_prob(flux, tef=5000, logg=4.5)
    with pytest.raises(LabelError, match="outside the allowed range"):
        flow.log_prob(flux, teff=9000, logg=4.5)
    with pytest.raises(LabelError, match="3 rows of labels for 20 spectra"):
        flow.log_prob(flux, teff=[5000, 5100, 5200], logg=4.5)
    with pytest.raises(SpectrumInputError, match=r"shape \(600,\) or \(n, 600\)"):
        flow.log_prob(flux[:, :500], teff=5000, logg=4.5)
    with pytest.raises(LabelError, match="not conditioned on 'mg_h'"):
        pixel_correlations(flow, "mg_h", n_samples=10)
    with pytest.raises(FlowError, match="transform must be"):
        SpectralFlow(transform="realnvp")


def test_unconditional_maf_and_pixel_pixel_map(toy):
    flow = SpectralFlow(n_components=6, conditional_on=None, transform="maf", transforms=2,
                        hidden_features=(16,))
    flow.fit(toy.grid(200, seed=2), epochs=3, progress=False)
    flux = toy.flux(toy.labels(4, seed=9), seed=10)
    assert np.isfinite(flow.log_prob(flux)["log_prob"]).all()
    with pytest.raises(LabelError, match="unconditional"):
        flow.log_prob(flux, teff=5000)
    assert flow.sample(2, seed=0).flux.shape == (2, 600)
    matrix = pixel_correlations(flow, n_samples=200)
    assert matrix.correlation.shape == (600, 600)
    assert np.allclose(np.diag(matrix.correlation), 1.0)
    row = pixel_correlations(flow, n_samples=200, reference=toy.lines["wavelength"][0])
    assert row.correlation.shape == (600,) and row.to_spectrum().flux.shape == (600,)
    assert matrix.plot().axes and row.plot().axes


def test_labels_outside_training_range_warn(toy):
    grid = toy.grid(300, seed=3)
    cool = grid[grid.label_array[:, 0] < 5500]
    flow = SpectralFlow(n_components=4, conditional_on=["teff"], transform="maf",
                        transforms=1, hidden_features=(8,))
    flow.fit(cool, epochs=2, progress=False)
    flux = toy.flux(toy.labels(2, seed=1, teff=6000), seed=2)
    with pytest.warns(AstropyUserWarning, match=r"2 spectra have teff outside .* training"):
        flow.log_prob(flux, teff=6000 * u.K)
    with pytest.warns(AstropyUserWarning, match="extrapolates"):
        flow.sample(2, teff=6400)
    assert SpectralFlow(conditional_on=()).conditional_on is None


def _small_flow():
    return SpectralFlow(n_components=4, conditional_on=("teff",), transforms=1,
                        hidden_features=(16,))


def _weights(flow):
    return [v for _, v in sorted(flow.network.state_dict().items())]


def test_resumed_fit_equals_uninterrupted_fit(toy, tmp_path):
    grid = toy.grid(120, seed=1)
    settings = {"epochs": 5, "batch_size": 32, "lr": 3e-3, "seed": 2, "patience": None,
                "progress": False}
    straight = _small_flow()
    straight.fit(grid, **settings)

    _small_flow().fit(grid, checkpoint=tmp_path / "ckpt", stop_after=2, **settings)  # cut
    assert (tmp_path / "ckpt.safetensors").exists() and (tmp_path / "ckpt.json").exists()
    assert not list(tmp_path.glob("*.tmp"))
    resumed = _small_flow()
    history = resumed.fit(grid, checkpoint=tmp_path / "ckpt", resume=True, **settings)
    assert history.epochs == 5
    assert history.train_loss == straight.history.train_loss
    assert history.valid_loss == straight.history.valid_loss
    assert history.best_epoch == straight.history.best_epoch
    assert all(torch.equal(a, b) for a, b in zip(_weights(resumed), _weights(straight),
                                                 strict=True))
    flux, teff = np.asarray(grid.flux[:10]), grid.label_array[:10, 0]
    np.testing.assert_array_equal(resumed.log_prob(flux, teff=teff)["log_prob"],
                                  straight.log_prob(flux, teff=teff)["log_prob"])
    # resuming a finished run trains no further and gives the same flow again
    again = _small_flow()
    assert again.fit(grid, checkpoint=tmp_path / "ckpt", resume=True,
                     **settings).train_loss == history.train_loss
    assert all(torch.equal(a, b) for a, b in zip(_weights(again), _weights(straight),
                                                 strict=True))


def test_checkpoint_refuses_other_settings_data_and_garbage(toy, tmp_path):
    grid = toy.grid(120, seed=1)
    _small_flow().fit(grid, epochs=1, batch_size=32, progress=False,
                      checkpoint=tmp_path / "c")
    with pytest.raises(FlowError, match="differ from this run's"):
        _small_flow().fit(grid, epochs=1, batch_size=16, progress=False,
                          checkpoint=tmp_path / "c", resume=True)
    with pytest.raises(FlowError, match="other training data"):
        _small_flow().fit(toy.grid(120, seed=9), epochs=1, batch_size=32, progress=False,
                          checkpoint=tmp_path / "c", resume=True)
    with pytest.raises(FlowError, match="needs a checkpoint"):
        _small_flow().fit(grid, epochs=1, progress=False, resume=True)
    with pytest.raises(FlowError, match="stop_after"):
        _small_flow().fit(grid, epochs=1, progress=False, stop_after=0)
    (tmp_path / "c.json").write_text("garbage")
    with pytest.raises(FlowFileError, match="cannot read checkpoint"):
        _small_flow().fit(grid, epochs=1, batch_size=32, progress=False,
                          checkpoint=tmp_path / "c", resume=True)
    (tmp_path / "c.json").write_text('{"format": "something else"}')
    with pytest.raises(FlowFileError, match="not a version-2"):
        _small_flow().fit(grid, epochs=1, batch_size=32, progress=False,
                          checkpoint=tmp_path / "c", resume=True)


def test_history_reuses_the_emulators_record(flow):
    from stellarai.emulators import TrainingHistory

    assert isinstance(flow.history, TrainingHistory)
    ax = flow.plot_history().axes[0]
    assert ax.get_ylabel() == "negative log-likelihood"
    assert ax.get_yscale() == "linear"
