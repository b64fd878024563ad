"""The emulator shipped with stellarai: ``stellarai.emulators.load("default")``."""

from __future__ import annotations

import json
from importlib.resources import files

import astropy.units as u
import numpy as np
import pytest

from stellarai.emulators import PayneEmulator, load

RANGES = {"teff": (4000.0, 7000.0), "logg": (3.5, 5.0), "feh": (-1.0, 0.5), "vmic": (0.5, 2.0)}
MAX_BYTES = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def emulator():
    return load("default")


def test_files_within_size_limit():
    data = files("stellarai").joinpath("data")
    for suffix in (".safetensors", ".json"):
        resource = data.joinpath("default_emulator" + suffix)
        assert resource.is_file()
        assert len(resource.read_bytes()) <= MAX_BYTES


def test_label_space_covers_stated_ranges(emulator):
    assert isinstance(emulator, PayneEmulator)
    space = emulator.label_space
    assert space.names == tuple(RANGES)
    for label in space:
        lo, hi = RANGES[label.name]
        assert label.lower <= lo and label.upper >= hi
    wavelength = emulator.wavelength.to_value(u.AA)
    assert wavelength[0] <= 8080.5 and wavelength[-1] >= 12799


def test_sidecar_records_validation_error(emulator):
    validation = emulator.provenance["validation"]
    assert validation["n_spectra"] > 0
    assert 0 < validation["median_abs_error"] <= validation["p95_abs_error"] < 0.05
    sidecar = json.loads(files("stellarai").joinpath("data", "default_emulator.json")
                         .read_text(encoding="utf-8"))
    assert sidecar["provenance"]["validation"] == validation
    assert "train_default_emulator.py" in sidecar["provenance"]["default_emulator"]["script"]


def test_sun_like_spectrum_is_normalized_with_lines(emulator):
    spec = emulator.spectrum(teff=5000, logg=4.5, feh=0.0, vmic=1.0)
    flux = spec.flux.value
    assert flux.shape == (len(emulator.wavelength),) and np.isfinite(flux).all()
    assert abs(np.median(flux) - 1) < 0.02
    assert np.sum(flux < 0.9) > 20  # absorption lines
    assert flux.min() < 0.7
