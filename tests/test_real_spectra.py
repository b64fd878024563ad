"""Real échelle spectra from ../shared/data through the boundary and back, and `inspect`."""

import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning

from stellarai.cli import main
from stellarai.io import read_spectrum_list
from stellarai.spectra import OrderBatch


def read_with_muler(path):
    from muler.hpf import HPFSpectrumList

    return HPFSpectrumList.read(str(path))


def assert_orders_unchanged(originals, back):
    assert len(originals) == len(back)
    for original, returned in zip(originals, back, strict=True):
        assert returned.spectral_axis.unit == original.spectral_axis.unit
        assert returned.flux.unit == original.flux.unit
        np.testing.assert_array_equal(returned.spectral_axis.value, original.spectral_axis.value)
        np.testing.assert_array_equal(returned.flux.value, original.flux.value)
        assert type(returned.uncertainty) is type(original.uncertainty)
        np.testing.assert_array_equal(returned.uncertainty.array, original.uncertainty.array)
        np.testing.assert_array_equal(returned.mask, original.mask)
        assert returned.meta["m"] == original.meta["m"]


def test_hpf_files_through_muler_round_trip(hpf_files):
    for path in hpf_files:
        orders = read_with_muler(path)
        batch = OrderBatch.from_spectra(orders)
        assert batch.wavelength.shape == (28, 2048)
        assert 8079 < batch.wavelength[:, 0].min().item() < 8080
        assert 12785 < batch.wavelength.max().item() < 12786
        assert batch.resolution == (55_000.0,) * 28
        # the pipeline's no-data edge pixels (flux 0, error 0) are masked by muler
        assert batch.mask[:, :4].all() and batch.mask[:, -4:].all()
        assert (batch.ivar[~batch.mask] > 0).all()
        assert_orders_unchanged(orders, batch.to_spectrum_list())


def test_igrins_file_through_stellarai_reader_round_trip(igrins_file):
    orders = read_spectrum_list(igrins_file)
    with pytest.warns(AstropyUserWarning, match="NaN or infinite flux"):
        batch = OrderBatch.from_spectra(orders)
    assert batch.n_orders == 28
    assert torch_all_increasing(batch.wavelength)
    assert 14000 < batch.wavelength[0, 0].item() < 14500  # H band, bluest order first
    assert batch.mask.any() and np.isfinite(batch.flux.numpy()).all()
    assert_orders_unchanged(orders, batch.to_spectrum_list())


def torch_all_increasing(wavelength):
    return bool((wavelength[:, 1:] > wavelength[:, :-1]).all())


def test_inspect_runs_on_every_real_file(hpf_files, igrins_file, tmp_path, capsys):
    for path in [*hpf_files, igrins_file]:
        png = tmp_path / f"{path.stem}.png"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyUserWarning)
            assert main(["inspect", str(path), "--plot", str(png)]) == 0
        out = capsys.readouterr().out.splitlines()
        order_lines = [line for line in out if line[:5].strip().isdigit()]
        assert len(order_lines) == 28
        assert png.stat().st_size > 10_000
        first = order_lines[0].split()
        assert float(first[1]) < float(first[2])  # lambda_min < lambda_max
        assert 0 <= float(first[-1].rstrip("%")) <= 100
