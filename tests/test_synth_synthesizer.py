"""Synthesizer API: grids, shapes, Spectrum output, sparse = dense, gradients, bad input."""

import warnings

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning
from specutils import Spectrum

from stellarai.errors import LabelError, SpectrumInputError
from stellarai.labels import Label, LabelSpace
from stellarai.synth import LineList, Synthesizer, default_label_space, synth_label_space

F64 = torch.float64
RANGE = [10500, 10560] * u.AA
SUN = [5772.0, 4.438, 0.0, 1.0, 0.0]
COOL_GIANT = [4300.0, 1.8, -0.7, 1.8, 0.3]


@pytest.fixture(scope="module")
def lines():
    return LineList.default([10450, 10610] * u.AA)


@pytest.fixture(scope="module")
def synth(lines):
    return Synthesizer(lines, RANGE, resolving_power=50_000)


def test_grid_is_uniform_in_log_lambda(lines):
    synth = Synthesizer(lines, RANGE, resolving_power=40_000, sampling=2.5)
    lam = synth.wavelength
    assert lam.unit == u.AA and lam[0].value == 10500.0 and lam[-1].value <= 10560.0
    step = np.diff(np.log(lam.value))
    assert np.allclose(step, 1.0 / (2.5 * 40_000), rtol=1e-9)
    assert synth.resolving_power == 40_000


def test_flux_shape_dtype_and_range(synth):
    labels = torch.tensor([SUN, COOL_GIANT], dtype=F64)
    flux = synth.flux(labels)
    assert flux.shape == (2, synth.wavelength.size) and flux.dtype == F64
    assert float(flux.max()) <= 1.0 and float(flux.min()) > 0.3
    assert float(flux[1].min()) < float(flux[0].min())  # a cool giant has deeper lines
    one = synth.flux(labels[0])
    assert one.shape == (synth.wavelength.size,)
    assert torch.allclose(one, flux[0], atol=2e-4)  # batch-mates change windows only
    flux2, cont = synth.flux(labels, return_continuum=True)
    assert torch.equal(flux2, flux) and cont.shape == flux.shape
    assert float(cont[0, 0]) > float(cont[1, 0])  # a hotter star is brighter


def test_spectrum_and_spectra(synth):
    star = synth.spectrum(teff=4.8 * u.kK, logg=4.6, feh=-0.3 * u.dex)
    assert isinstance(star, Spectrum) and star.flux.unit == u.dimensionless_unscaled
    assert np.array_equal(star.spectral_axis.value, synth.wavelength.value)
    assert star.meta["labels"] == {"teff": 4800.0, "logg": 4.6, "feh": -0.3, "vmic": 1.0,
                                   "alpha_fe": 0.0}
    assert star.meta["normalized"] is True and star.meta["label_units"]["teff"] == "K"
    warm = synth.spectrum(teff=6000, logg=4.0, with_continuum=True)
    assert warm.meta["continuum"].unit == u.erg / u.s / u.cm**2 / u.AA
    table = QTable({"teff": [4500, 5500, 6500] * u.K, "logg": [4.5, 4.0, 3.5],
                    "extra": [1, 2, 3]})
    many = synth.spectra(table)
    assert many.flux.shape == (3, synth.wavelength.size)
    assert np.allclose(many.meta["labels"]["teff"], [4500, 5500, 6500])
    assert np.allclose(many.flux.value[1],
                       synth.spectrum(teff=5500, logg=4.0).flux.value, atol=2e-4)


def test_sparse_windows_agree_with_dense_evaluation(lines):
    synth = Synthesizer(lines, [10520, 10540] * u.AA, resolving_power=60_000,
                        tolerance=1e-12)
    labels = torch.tensor([SUN, COOL_GIANT, [8000.0, 4.0, 0.3, 3.0, -0.2]], dtype=F64)
    sparse = synth.flux(labels)
    dense = synth.flux(labels, dense=True)
    assert float((sparse - dense).abs().max()) < 1e-8
    # the default tolerance bounds the error per line
    loose = Synthesizer(lines, [10520, 10540] * u.AA, resolving_power=60_000)
    assert float((loose.flux(labels) - dense).abs().max()) < 1e-3


def test_results_do_not_depend_on_batching(synth):
    table = synth.label_space.random(12, seed=4)
    labels = torch.from_numpy(synth.label_space.parse_batch(table))
    together = synth.flux(labels, progress=False)
    small = Synthesizer(synth.linelist, RANGE, resolving_power=50_000, batch_size=5)
    apart = small.flux(labels, progress=False)
    assert float((together - apart).abs().max()) < 3e-4  # windows: within the tolerance
    assert torch.equal(together, synth.flux(labels, progress=False))  # deterministic


def test_float32_agrees_with_float64(lines):
    labels = torch.tensor([SUN, COOL_GIANT], dtype=F64)
    f64 = Synthesizer(lines, RANGE, resolving_power=50_000).flux(labels)
    f32 = Synthesizer(lines, RANGE, resolving_power=50_000, dtype=torch.float32).flux(labels)
    assert f32.dtype == torch.float32
    assert float((f32.double() - f64).abs().max()) < 1e-4


def test_gradients_flow_to_labels_and_match_finite_differences(lines):
    synth = Synthesizer(lines, [10525, 10535] * u.AA, resolving_power=60_000, oversample=4,
                        tolerance=1e-10)
    weights = torch.linspace(-1.0, 1.0, synth.wavelength.size, dtype=F64)
    labels = torch.tensor([[5100.0, 4.2, -0.2, 1.3, 0.1]], dtype=F64, requires_grad=True)

    def loss(x):
        return (synth.flux(x) * weights).sum()

    grad, = torch.autograd.grad(loss(labels), labels)
    assert torch.all(torch.isfinite(grad)) and float(grad.abs().min()) > 0
    for j, step in ((0, 0.5), (2, 1e-4), (1, 1e-4)):  # teff, feh, logg
        plus, minus = labels.detach().clone(), labels.detach().clone()
        plus[0, j] += step
        minus[0, j] -= step
        with torch.no_grad():
            numeric = (loss(plus) - loss(minus)) / (2 * step)
        assert float(grad[0, j]) == pytest.approx(float(numeric), rel=1e-4)


def test_custom_label_spaces(lines):
    space = synth_label_space(["Mg", "c_h"], helium=True)
    synth = Synthesizer(lines, RANGE, resolving_power=30_000, label_space=space)
    assert synth.label_space.names[-3:] == ("mg_fe", "c_h", "he_h")
    star = synth.spectrum(teff=5000, logg=4.5, mg_fe=0.3, c_h=-0.2, he_h=0.1)
    assert star.meta["labels"]["mg_fe"] == 0.3
    minimal = LabelSpace.default().subset(["teff", "logg"]).with_bounds("teff", 3500, 7000)
    assert Synthesizer(lines, RANGE, resolving_power=30_000,
                       label_space=minimal).flux(torch.tensor([5000.0, 4.0])).ndim == 1


def test_progress_bar_is_optional(synth, capsys):
    labels = torch.tensor([SUN] * 3, dtype=F64)
    small = Synthesizer(synth.linelist, RANGE, resolving_power=50_000, batch_size=1)
    small.flux(labels, progress=False)
    assert "synthesizing" not in capsys.readouterr().err
    small.flux(labels, progress=True)
    assert "synthesizing" in capsys.readouterr().err


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize(("wavelength", "kwargs", "message"), [
    ([10500, 10500] * u.AA, {"resolving_power": 1e4}, "range is empty"),
    ([10600, 10500] * u.AA, {"resolving_power": 1e4}, "range is empty"),
    ([10500, 10600], {"resolving_power": 1e4}, "astropy Quantity"),
    ([10500, 10600] * u.s, {"resolving_power": 1e4}, "length unit"),
    ([10500, 10600] * u.AA, {}, "give resolving_power="),
    (np.linspace(10500, 10600, 50) * u.AA, {"resolving_power": 1e4}, "must be a \\(min, max\\)"),
    (np.array([10500.0, 10510, 10505]) * u.AA, {}, "strictly increasing"),
    ([2000, 2500] * u.AA, {"resolving_power": 1e4}, "covers 3000-30000"),
    ([10500, 10501] * u.AA, {"resolving_power": 100.0}, "fewer than 2 pixels"),
    ([10500, 10600] * u.AA, {"resolving_power": -5.0}, "resolving_power must be a positive"),
])
def test_bad_wavelengths_are_refused(lines, wavelength, kwargs, message):
    with pytest.raises(SpectrumInputError, match=message):
        Synthesizer(lines, wavelength, **kwargs)


def test_explicit_wavelength_array_works(lines):
    grid = np.linspace(10510, 10550, 400) * u.AA
    synth = Synthesizer(lines, grid.to(u.nm))
    assert synth.resolving_power is None
    assert np.allclose(synth.wavelength.value, grid.value)
    assert synth.flux(torch.tensor(SUN, dtype=F64)).shape == (400,)


def test_bad_labels_raise_label_errors(synth):
    with pytest.raises(LabelError, match=r"label 'teff' = 12000 K in row 1 is outside"):
        synth.flux(torch.tensor([SUN, [12000.0, 4.0, 0.0, 1.0, 0.0]], dtype=F64))
    with pytest.raises(LabelError, match="shape"):
        synth.flux(torch.tensor([[5000.0, 4.0]], dtype=F64))
    with pytest.raises(LabelError, match="must be finite"):
        synth.flux(torch.tensor([[np.nan, 4.0, 0.0, 1.0, 0.0]], dtype=F64))
    with pytest.raises(LabelError, match="'logg' = 7"):
        synth.spectrum(teff=5000, logg=7.0)
    with pytest.raises(LabelError, match="unknown label 'tef'"):
        synth.spectrum(tef=5000)


def test_bad_label_spaces_and_options_are_refused(lines):
    with pytest.raises(LabelError, match="physics holds within \\[3000, 10000\\]"):
        Synthesizer(lines, RANGE, resolving_power=1e4, label_space=LabelSpace.default())
    with pytest.raises(LabelError, match="does not know label 'm_h'"):
        Synthesizer(lines, RANGE, resolving_power=1e4,
                    label_space=default_label_space().with_label(Label("m_h", "dex", (-1, 1))))
    with pytest.raises(LabelError, match="needs label 'logg'"):
        Synthesizer(lines, RANGE, resolving_power=1e4,
                    label_space=default_label_space().subset(["teff", "feh"]))
    both = synth_label_space(["mg_h", "mg_fe"])
    with pytest.raises(LabelError, match="both as <x>_h and <x>_fe"):
        Synthesizer(lines, RANGE, resolving_power=1e4, label_space=both)
    with pytest.raises(TypeError, match="linelist must be a LineList"):
        Synthesizer(lines.table, RANGE, resolving_power=1e4)
    with pytest.raises(ValueError, match="oversample must be None or an integer"):
        Synthesizer(lines, RANGE, resolving_power=1e4, oversample=0)
    with pytest.raises(ValueError, match="tolerance must be"):
        Synthesizer(lines, RANGE, resolving_power=1e4, tolerance=2.0)
    with pytest.raises(SpectrumInputError, match="max_half_width"):
        Synthesizer(lines, RANGE, resolving_power=1e4, max_half_width=5.0)


def test_unsupported_species_are_dropped_with_a_warning():
    odd = LineList.from_columns(wavelength=[10510.0, 10520.0, 10530.0] * u.AA,
                                species=["Fe 1", "Sc 2", "Fe 3"],
                                excitation=[1.0, 1.0, 1.0] * u.eV, log_gf=[-1.0, -1.0, -1.0])
    with pytest.warns(AstropyUserWarning, match="dropped 2 lines.*Fe 3, Sc 2"):
        synth = Synthesizer(odd, RANGE, resolving_power=1e4)
    assert len(synth.linelist) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Synthesizer(odd.select(species="Fe 1"), RANGE, resolving_power=1e4)
