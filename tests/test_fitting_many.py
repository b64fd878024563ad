"""fit_many: chunked vectorized fits equal one-by-one fits; dask workers equal serial."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
import torch

from stellarai import ops
from stellarai.fitting import fit
from stellarai.fitting.many import FitManyError, fit_many, results_table
from stellarai.fitting.simulate import simulate_observation
from stellarai.ops.kernels import uniform_log_grid

LINES = ((10_004.0, 0.5), (10_011.0, 0.3), (10_017.5, 0.6), (10_024.0, 0.4),
         (10_031.0, 0.5))
PIXELS = [np.geomspace(10_002.0, 10_014.0, 160) * u.AA,
          np.geomspace(10_016.0, 10_033.0, 200) * u.AA]
OPTIONS = {"starts": 2, "uncertainty": "laplace", "continuum_degree": 1}


def star_template():
    grid = uniform_log_grid(9_985.0, 10_050.0, resolving_power=40_000, samples_per_resolution=4)
    flux = torch.ones_like(grid)
    for center, depth in LINES:
        flux = flux - depth * torch.exp(-0.5 * ((grid - center) / 0.08) ** 2)
    return grid, flux


def chain(rv=0.0, vsini=3.0):
    return (ops.Template(star_template()) | ops.Rotation(vsini=vsini * u.km / u.s)
            | ops.Doppler(rv=rv * u.km / u.s, bounds={"rv": (-60, 60) * u.km / u.s}))


@pytest.fixture(scope="module")
def spectra():
    return [simulate_observation(chain(rv=rv, vsini=vsini), PIXELS, snr=150, seed=i,
                                 continuum=[[1.0, 0.05], [0.9, -0.03]],
                                 resolving_power=40_000)
            for i, (rv, vsini) in enumerate([(-12.0, 4.0), (5.0, 6.0), (20.0, 3.0)])]


def parameters(result):
    return np.array([float(v) for v in result.table["value"]])


@pytest.fixture(scope="module")
def serial(spectra):
    return fit_many(spectra, chain(), chunk_size=2, progress=False, **OPTIONS)


def test_fit_many_equals_one_by_one_fits(spectra, serial):
    assert len(serial) == 3
    for spectrum, result in zip(spectra, serial, strict=True):
        alone = fit(chain(), spectrum, progress=False, **OPTIONS)
        np.testing.assert_allclose(parameters(result), parameters(alone), rtol=1e-6, atol=1e-9)
    # and the fits found the injected velocities
    rv = [result["rv"].to_value(u.km / u.s) for result in serial]
    np.testing.assert_allclose(rv, [-12.0, 5.0, 20.0], atol=0.5)


def test_chunking_does_not_change_results(spectra, serial):
    one_each = fit_many(spectra, chain(), chunk_size=1, progress=False, **OPTIONS)
    for a, b in zip(serial, one_each, strict=True):
        np.testing.assert_allclose(parameters(a), parameters(b), rtol=1e-6, atol=1e-9)


def test_two_dask_workers_equal_serial(spectra, serial):
    # two tiny spectra, one task per worker: the workers' start-up dominates the time
    distributed = fit_many(spectra[:2], chain(), n_workers=2, chunk_size=1, progress=False,
                           **OPTIONS)
    assert len(distributed) == 2
    assert [r.converged for r in distributed] == [r.converged for r in serial[:2]]
    for a, b in zip(serial[:2], distributed, strict=True):
        np.testing.assert_allclose(parameters(a), parameters(b), rtol=1e-6, atol=1e-9)
        assert a.chi2 == pytest.approx(b.chi2, rel=1e-6)


def test_results_table_one_row_per_spectrum(serial):
    table = results_table(serial, names=["rv", "vsini"])
    assert len(table) == 3 and list(table["index"]) == [0, 1, 2]
    assert table["rv"].unit == u.km / u.s
    np.testing.assert_allclose(table["rv"].value, [r["rv"].to_value(u.km / u.s) for r in serial])
    assert np.all(table["rv_uncertainty"].value > 0)
    with pytest.raises(FitManyError, match="result 0 has no parameter 'alpha'"):
        results_table(serial, names=["alpha"])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_workers": 0}, "n_workers must be an integer >= 1, got 0"),
    ({"chunk_size": 0}, "chunk_size must be an integer >= 1, got 0"),
    ({"client": "localhost:8786"}, "client must be a dask.distributed.Client, got str"),
])
def test_bad_arguments_are_refused(spectra, kwargs, message):
    with pytest.raises(FitManyError, match=message):
        fit_many(spectra, chain(), progress=False, **kwargs)


def test_one_spectrum_list_is_not_taken_for_many(spectra):
    with pytest.raises(FitManyError, match="spectra is one SpectrumList"):
        fit_many(spectra[0], chain(), progress=False)


def test_empty_input_is_refused():
    with pytest.raises(FitManyError, match="spectra is empty"):
        fit_many([], chain())
    with pytest.raises(FitManyError, match="results is empty"):
        results_table([])
