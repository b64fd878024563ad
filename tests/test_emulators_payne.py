"""PayneEmulator and the SpectralEmulator interface: evaluation, labels, save/load."""

from __future__ import annotations

import json

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.utils.exceptions import AstropyUserWarning
from specutils import Spectrum

from stellarai.emulators import (
    EmulatorError,
    EmulatorFileError,
    PayneEmulator,
    Trainer,
    load,
)
from stellarai.emulators.toy import toy_flux, toy_grid, toy_label_space
from stellarai.errors import LabelError


@pytest.fixture(scope="module")
def trained() -> tuple[PayneEmulator, object]:
    grid = toy_grid(300, n_pix=200, seed=0)
    train, test = grid.split((0.85, 0.15), seed=1)
    emu = PayneEmulator(grid.label_space, grid.wavelength, hidden=(128, 128), seed=0)
    Trainer(emu, epochs=80, batch_size=16, lr=3e-3, patience=None, progress=False,
            threads=1).fit(train)
    return emu, test


def test_reproduces_held_out_spectra(trained: tuple) -> None:
    emu, test = trained
    error = np.abs(emu(test.label_array).numpy() - test.flux)
    # toy lines are up to 0.9 deep; after 80 short epochs on 230 spectra:
    assert np.median(error) < 0.006
    assert np.percentile(error, 95) < 0.025


def test_spectrum_has_units_and_labels(trained: tuple) -> None:
    emu, _ = trained
    spec = emu.spectrum(teff=5.5 * u.kK, logg=4.4, feh=-0.2 * u.dex)
    assert isinstance(spec, Spectrum) and type(spec) is Spectrum
    assert spec.spectral_axis.unit == u.AA and spec.flux.unit == u.dimensionless_unscaled
    assert spec.meta["labels"]["teff"] == 5500 * u.K
    truth = toy_flux(np.array([[5500.0, 4.4, -0.2]]), emu.wavelength.value)[0]
    assert np.max(np.abs(spec.flux.value - truth)) < 0.06


def test_batched_calls_agree(trained: tuple) -> None:
    emu, test = trained
    table = test.labels[:4]
    from_table = emu(table)
    from_tensor = emu(torch.tensor(test.label_array[:4]))
    assert isinstance(from_table, Spectrum) and from_table.flux.shape == (4, 200)
    np.testing.assert_array_equal(from_table.flux.value, from_tensor.numpy().astype(np.float64))
    single = emu.spectrum(**{name: table[name][1] for name in table.colnames})
    np.testing.assert_allclose(single.flux.value, from_tensor[1].numpy(), rtol=0, atol=1e-6)


def test_flux_keeps_gradient(trained: tuple) -> None:
    emu, _ = trained
    labels = torch.tensor([[5000.0, 4.5, 0.0]], dtype=torch.float64, requires_grad=True)
    emu.flux(labels).sum().backward()
    assert labels.grad is not None and torch.all(torch.isfinite(labels.grad))


def test_chunked_equals_unchunked(trained: tuple) -> None:
    emu, test = trained
    full = emu(test.label_array)
    emu.max_elements = 450  # two spectra per chunk
    try:
        chunked = emu(test.label_array)
    finally:
        emu.max_elements = 2**22
    torch.testing.assert_close(chunked, full, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        ({"teff": 8000 * u.K, "logg": 4.5, "feh": 0.0}, r"'teff' = 8000 K .*\[4000, 7000\] K"),
        ({"teff": 5000, "logg": 4.5, "feh": float("nan")}, "'feh' .* must be finite"),
        ({"teff": 5000, "logg": 4.5}, "missing label"),
        ({"teff": 5000, "logg": 4.5, "feh": 0, "mgfe": 0}, "unknown label"),
        ({"teff": 5 * u.km, "logg": 4.5, "feh": 0.0}, "expects a value in K"),
    ],
)
def test_bad_labels(trained: tuple, labels: dict, match: str) -> None:
    emu, _ = trained
    with pytest.raises(LabelError, match=match):
        emu.spectrum(**labels)


def test_out_of_range_can_warn(trained: tuple) -> None:
    emu, _ = trained
    emu.out_of_range = "warn"
    try:
        with pytest.warns(AstropyUserWarning, match=r"'teff' = 7100 K .*\[4000, 7000\] K"):
            spec = emu.spectrum(teff=7100 * u.K, logg=4.5, feh=0.0)
        assert np.all(np.isfinite(spec.flux.value))
        with pytest.warns(AstropyUserWarning, match="'logg' = 5.2"):
            emu(np.array([[5000.0, 5.2, 0.0]]))
        with pytest.raises(LabelError, match="must be finite"):
            emu.spectrum(teff=float("nan"), logg=4.5, feh=0.0)
    finally:
        emu.out_of_range = "raise"
    with pytest.raises(EmulatorError, match="out_of_range must be 'raise' or 'warn'"):
        emu.out_of_range = "clip"


def test_bad_label_arrays(trained: tuple) -> None:
    emu, _ = trained
    with pytest.raises(LabelError, match=r"row 1 is outside the allowed range"):
        emu(np.array([[5000.0, 4.5, 0.0], [5000.0, 9.0, 0.0]]))
    with pytest.raises(LabelError, match=r"shape \(n, 3\)"):
        emu(np.zeros((2, 4)))


def test_wavelengths_outside_fixed_grid(trained: tuple) -> None:
    emu, _ = trained
    inside = np.array([5001.0, 5020.5]) * u.AA
    spec = emu.spectrum(teff=5000, logg=4.5, feh=0.0, wavelength=inside)
    assert spec.flux.shape == (2,)
    with pytest.raises(EmulatorError, match="outside the emulated pixels"):
        emu.spectrum(teff=5000, logg=4.5, feh=0.0, wavelength=[4990, 5001] * u.AA)


def test_save_load_bit_identical(trained: tuple, tmp_path) -> None:
    emu, test = trained
    emu.save(tmp_path / "payne")
    sidecar = json.loads((tmp_path / "payne.json").read_text())
    assert sidecar["backend"] == "payne" and sidecar["format_version"] == 1
    assert sidecar["architecture"]["hidden"] == [128, 128]
    assert sidecar["provenance"]["training"]["n_train"] == 230
    assert "stellarai_version" in sidecar and sidecar["label_space"]["labels"]
    again = load(tmp_path / "payne.json")
    assert isinstance(again, PayneEmulator) and again.label_space == emu.label_space
    assert torch.equal(again(test.label_array), emu(test.label_array))
    np.testing.assert_array_equal(again.wavelength, emu.wavelength)
    with pytest.raises(EmulatorFileError, match="exists; pass overwrite=True"):
        emu.save(tmp_path / "payne")


def test_refuses_other_format_version(trained: tuple, tmp_path) -> None:
    emu, _ = trained
    emu.save(tmp_path / "m")
    path = tmp_path / "m.json"
    sidecar = json.loads(path.read_text())
    sidecar["format_version"] = 2
    path.write_text(json.dumps(sidecar))
    with pytest.raises(EmulatorFileError, match="format version 2 .* reads format version 1"):
        load(path)


def test_corrupt_tampered_missing_files(trained: tuple, tmp_path) -> None:
    emu, _ = trained
    emu.save(tmp_path / "m")
    weights = tmp_path / "m.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(EmulatorFileError, match="checksum .* does not match"):
        load(tmp_path / "m")
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(EmulatorFileError, match="not valid JSON"):
        load(tmp_path / "m")
    with pytest.raises(EmulatorFileError, match="does not exist"):
        load(tmp_path / "absent")


def test_truncated_weights_with_matching_checksum(tmp_path) -> None:
    space = toy_label_space()
    emu = PayneEmulator(space, np.linspace(5000, 5010, 20) * u.AA, hidden=(8,))
    emu.save(tmp_path / "m")
    other = PayneEmulator(space, np.linspace(5000, 5010, 20) * u.AA, hidden=(9,))
    other.save(tmp_path / "o")
    # a sidecar pointing at weights of another architecture (checksum updated to match)
    sidecar = json.loads((tmp_path / "m.json").read_text())
    other_sidecar = json.loads((tmp_path / "o.json").read_text())
    sidecar["weights"]["sha256"] = other_sidecar["weights"]["sha256"]
    (tmp_path / "o.json").write_text(json.dumps(sidecar))
    with pytest.raises(EmulatorFileError, match="do not fit the architecture"):
        load(tmp_path / "o")


def test_same_seed_same_initial_weights() -> None:
    space = toy_label_space()
    wl = np.linspace(5000, 5010, 20) * u.AA
    a, b = (PayneEmulator(space, wl, hidden=(16,), seed=3) for _ in range(2))
    c = PayneEmulator(space, wl, hidden=(16,), seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a.module.parameters(), b.module.parameters(),
                                                  strict=True))
    assert not torch.equal(a.module.layers[0].weight, c.module.layers[0].weight)


def test_constructor_errors() -> None:
    space = toy_label_space()
    with pytest.raises(EmulatorError, match="strictly increasing"):
        PayneEmulator(space, [5000, 4999] * u.AA)
    with pytest.raises(EmulatorError, match="activation must be one of"):
        PayneEmulator(space, [5000, 5001] * u.AA, activation="swish")
    with pytest.raises(EmulatorError, match="max_elements"):
        PayneEmulator(space, [5000, 5001] * u.AA, max_elements=0)
