"""Emulators in the operator algebra and as astropy fittable models."""

from __future__ import annotations

import astropy.constants as const
import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.modeling.fitting import TRFLSQFitter
from specutils import Spectrum

from stellarai.emulators import EmulatorSource, PayneEmulator, Trainer
from stellarai.emulators.toy import toy_grid
from stellarai.ops import Doppler, Pipe, Rotation


@pytest.fixture(scope="module")
def emu() -> PayneEmulator:
    grid = toy_grid(250, n_pix=300, seed=4)
    emulator = PayneEmulator(grid.label_space, grid.wavelength, hidden=(64, 64), seed=0)
    Trainer(emulator, epochs=40, batch_size=16, lr=3e-3, patience=None,
            progress=False, threads=1).fit(grid)
    return emulator


def test_composes_with_operators(emu: PayneEmulator) -> None:
    chain = emu | Rotation(vsini=10 * u.km / u.s) | Doppler(rv=20 * u.km / u.s)
    assert isinstance(chain, Pipe) and isinstance(chain.operators[0], EmulatorSource)
    assert chain.param_names == ("teff", "logg", "feh", "vsini", "epsilon", "rv")
    assert chain.get("teff") == 5772 * u.K  # labels start at their defaults
    spec = chain()
    assert isinstance(spec, Spectrum) and spec.flux.shape == (300,)
    rest = emu.spectrum(fill_missing=True)
    deepest = spec.spectral_axis[np.argmin(spec.flux)]
    deepest_rest = rest.spectral_axis[np.argmin(rest.flux)]
    shift = (20 * u.km / u.s / const.c).decompose() * deepest_rest
    assert abs(deepest - deepest_rest - shift) < 0.15 * u.AA  # redshifted by rv
    assert spec.flux.min() > rest.flux.min()  # broadened lines are shallower


def test_operator_times_emulator_equals_emulator_times_operator(emu: PayneEmulator) -> None:
    from stellarai.ops import Template

    wavelength = emu.wavelength
    dip = Spectrum(flux=(1 - 0.5 * np.exp(-0.5 * ((wavelength - wavelength.mean()) / (0.3 * u.AA))
                                         ** 2)) * u.one, spectral_axis=wavelength)
    left = (Template(dip) * emu)()
    right = (emu * Template(dip))()
    np.testing.assert_allclose(left.flux.value, right.flux.value, rtol=1e-12)
    star = emu.spectrum(fill_missing=True).flux.value
    np.testing.assert_allclose(left.flux.value, dip.flux.value * star, rtol=1e-6)
    with pytest.raises(ValueError, match="cannot compose a str"):
        Template(dip) * "not an operator"


def test_source_gradients_reach_labels(emu: PayneEmulator) -> None:
    source = emu.source(teff=5000 * u.K, logg=4.5, feh=0.0)
    _, flux = source(None, None)
    flux.sum().backward()
    grads = [source.tensors[name].grad for name in ("teff", "logg", "feh")]
    assert all(g is not None and torch.isfinite(g) for g in grads)
    assert list(source.parameters()) == list(source.tensors.values())  # no network weights


def test_as_model_parameters(emu: PayneEmulator) -> None:
    model = emu.as_model(teff=5200 * u.K, fixed=["feh"])
    assert model.param_names == ("teff", "logg")
    assert model.teff.unit == u.K and model.teff.bounds == (4000.0, 7000.0)
    assert model.logg.unit == u.dex and model.logg.bounds == (3.5, 5.0)
    flux = model(emu.wavelength)
    expected = emu.spectrum(teff=5200, logg=4.438, feh=0.0).flux
    np.testing.assert_allclose(flux.value, expected.value, rtol=0, atol=1e-6)


def test_trf_recovers_injected_labels(emu: PayneEmulator) -> None:
    truth = {"teff": 5300.0, "logg": 4.1, "feh": -0.3}
    wavelength = emu.wavelength
    clean = emu.spectrum(**truth).flux.value
    sigma = 0.005  # SNR 200
    rng = np.random.default_rng(3)
    data = clean + sigma * rng.standard_normal(clean.size)
    start = emu.as_model(teff=5800 * u.K, logg=4.5, feh=0.0)
    fitted = TRFLSQFitter(calc_uncertainties=True)(start, wavelength, data * u.one,
                                                    weights=np.full(clean.size, 1 / sigma))
    # stated tolerance: within 4 sigma of the truth and within 40 K / 0.08 dex / 0.04 dex
    for name, tolerance in (("teff", 40.0), ("logg", 0.08), ("feh", 0.04)):
        value = getattr(fitted, name).value
        std = fitted.stds[name]
        assert abs(value - truth[name]) < min(tolerance, 4 * std), name


def test_chain_as_model_fits_rv(emu: PayneEmulator) -> None:
    labels = {"teff": 5100 * u.K, "logg": 4.4, "feh": 0.1}
    data_chain = emu.source(**labels) | Doppler(rv=15 * u.km / u.s)
    x = np.linspace(5005, 5025, 200) * u.AA
    y = data_chain.as_model()(x)
    model = (emu.source(**labels, fixed=["teff", "logg", "feh"])
             | Doppler(rv=0 * u.km / u.s)).as_model()
    assert model.param_names == ("rv",)
    fitted = TRFLSQFitter()(model, x, y)
    assert fitted.rv.quantity.to_value(u.km / u.s) == pytest.approx(15.0, abs=0.05)
