"""SpectrumFitter / fit / FitResult: one-order fits, the result's API, errors on bad input."""

import warnings

import astropy.units as u
import matplotlib
import numpy as np
import pytest
import torch
from astropy.nddata import StdDevUncertainty
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning
from specutils import Spectrum, SpectrumList

import stellarai.ops as ops
from stellarai.emulators import load
from stellarai.fitting import FitError, FitInputError, FitResult, SpectrumFitter, fit

matplotlib.use("Agg")

ORDER = 19
TRUTH = {"vsini": 6.0, "rv": -12.3, "strength": 1.3}
LABELS = {"teff": 5100 * u.K, "logg": 4.4, "feh": -0.1, "vmic": 1.0 * u.km / u.s}


def _pixels(order=ORDER):
    (wavelength,) = ops.read_muler_template("telfit_HPFtemplate_temp286_hum050.csv",
                                            ["wavelength_A"])
    return wavelength.reshape(28, 2048)[order]


def _model(**labels):
    emu = load("default")
    source = emu.source(fixed=["teff", "logg", "feh", "vmic"], **(labels or LABELS))
    return (source | ops.Rotation(vsini=3 * u.km / u.s)
            | ops.Doppler(rv=0.0, bounds={"rv": (-50, 50) * u.km / u.s})
            * ops.Telluric.from_muler("hpf") | ops.Instrument(resolving_power=55_000))


def _observation(seed=3, order=ORDER, snr=150.0, shift=0.0):
    pixels = _pixels(order) + shift
    shell = Spectrum(flux=np.ones(2048) * u.ct, spectral_axis=pixels * u.AA,
                     meta={"instrumental_resolution": 55_000})
    model = _model().set(vsini=TRUTH["vsini"], rv_2=TRUTH["rv"],
                         strength=TRUTH["strength"])
    problem = SpectrumFitter(model, starts=1, progress=False).problem(shell)
    with torch.no_grad():
        clean = problem.model_flux(problem.start()[None])[0, 0].numpy()
    rng = np.random.default_rng(seed)
    signal = 800 * clean * (1 + 0.04 * (pixels - pixels.mean()) / np.ptp(pixels))
    sigma = signal / snr
    return Spectrum(flux=(signal + sigma * rng.standard_normal(2048)) * u.ct,
                    spectral_axis=pixels * u.AA, uncertainty=StdDevUncertainty(sigma),
                    meta={"instrumental_resolution": 55_000, "m": order})


@pytest.fixture(scope="module")
def result():
    return fit(_model(), _observation(), starts=2, progress=False)


def test_fit_recovers_the_injected_values(result):
    assert result.converged, result.message
    assert result.names == ("vsini", "rv", "strength")
    for name, truth in TRUTH.items():
        assert abs(result.values[result.names.index(name)] - truth) < 3.5 * \
            result.uncertainties[result.names.index(name)]
    assert abs(result["rv"] - TRUTH["rv"] * u.km / u.s) < 0.1 * u.km / u.s
    assert 0.85 < result.reduced_chi2 < 1.15
    assert result.dof == 2048 - 3 - 3


def test_result_values_table_and_repr(result):
    assert result["rv"].unit == u.km / u.s
    assert result.uncertainty("vsini").unit == u.km / u.s
    assert result["strength"].unit == u.dimensionless_unscaled
    table = result.table
    assert table.colnames == ["name", "value", "uncertainty", "unit"]
    assert list(table["name"]) == ["vsini", "rv", "strength"]
    assert table["unit"][1] == "km / s"
    assert table.meta["converged"] is True
    np.testing.assert_allclose(table["uncertainty"], np.sqrt(np.diag(result.covariance)))
    text = repr(result)
    assert text.startswith("<FitResult: 1 orders, 3 parameters, chi2 = ")
    assert "rv" in text and "+-" in text and "km / s" in text
    with pytest.raises(FitError, match="no fitted parameter 'teff'.*vsini, rv, strength"):
        result["teff"]


def test_model_residuals_and_plot(result):
    assert isinstance(result.model, SpectrumList) and len(result.model) == 1
    data, model, residuals = result.data[0], result.model[0], result.residuals[0]
    np.testing.assert_allclose(residuals.flux.value, data.flux.value - model.flux.value)
    assert model.flux.unit == u.ct
    pulls = residuals.flux.value / residuals.uncertainty.array
    assert 0.85 < np.std(pulls[~residuals.mask]) < 1.15
    assert result.chi2 == pytest.approx(np.sum(pulls[~residuals.mask] ** 2))
    figure = result.plot()
    assert len(figure.axes) == 2
    assert figure.axes[0].get_title().startswith(f"order {ORDER}")


def test_write_ecsv_and_fits_round_trip(result, tmp_path):
    result.write(tmp_path / "fit.ecsv")
    back = QTable.read(tmp_path / "fit.ecsv")
    np.testing.assert_array_equal(back["value"], result.values)
    np.testing.assert_array_equal(back["uncertainty"], result.uncertainties)
    np.testing.assert_array_equal(back.meta["covariance"], result.covariance)
    assert back.meta["chi2"] == result.chi2
    result.write(tmp_path / "fit.fits")
    back = QTable.read(tmp_path / "fit.fits", hdu="PARAMETERS")
    assert list(back["name"]) == list(result.names)
    np.testing.assert_array_equal(back["value"], result.values)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        result.write(tmp_path / "fit.fits")
    with pytest.raises(FitError, match=r"\.ecsv or \.fits"):
        result.write(tmp_path / "fit.txt")


def test_to_dict_round_trip_is_exact(result):
    values = result.to_dict()
    for value in values.values():
        assert isinstance(value, (str, bool, int, float, list, dict, np.ndarray, type(None)))
    again = FitResult.from_dict(values)
    np.testing.assert_array_equal(again.values, result.values)
    np.testing.assert_array_equal(again.covariance, result.covariance)
    np.testing.assert_array_equal(again.model_flux[0], result.model_flux[0])
    assert repr(again) == repr(result)
    with pytest.raises(FitError, match="fit again to sample"):
        again.sample()
    with pytest.raises(FitError, match="not a FitResult dictionary"):
        FitResult.from_dict({"names": ["a"]})


def test_emcee_agrees_with_laplace_and_corner():
    data = _observation(seed=5)
    laplace = fit(_model(), data, starts=1, progress=False)
    sampled = fit(_model(), data, starts=1, progress=False, uncertainty="emcee",
                  emcee={"nsteps": 150, "nwalkers": 16})
    assert sampled.uncertainty_method == "emcee"
    assert sampled.samples.shape == (16 * (150 - 150 // 3), 3)
    np.testing.assert_allclose(sampled.values, laplace.values)
    ratio = sampled.uncertainties / laplace.uncertainties
    assert np.all((ratio > 0.7) & (ratio < 1.4)), ratio
    figure = sampled.corner()
    assert len(figure.axes) == 9
    with pytest.raises(FitError, match="no posterior samples"):
        laplace.corner()


def test_fit_batch_groups_different_pixel_grids():
    first, second = _observation(seed=8), _observation(seed=9, shift=0.01)
    fitter = SpectrumFitter(_model(), starts=1, progress=False)
    both = fitter.fit_batch([first, second])
    alone = fitter.fit(second)
    np.testing.assert_allclose(both[1].values, alone.values, rtol=1e-8)
    assert both[0].wavelength[0][0] != both[1].wavelength[0][0]


def test_not_converged_is_flagged_with_the_reason():
    result = fit(_model(), _observation(), starts=1, progress=False, max_iter=1)
    assert not result.converged
    assert "did not converge in 1 iterations" in result.message
    assert "NOT converged" in repr(result)


def test_nan_pixels_are_masked_with_a_warning():
    data = _observation()
    flux = data.flux.value.copy()
    flux[100:110] = np.nan
    holed = Spectrum(flux=flux * u.ct, spectral_axis=data.spectral_axis,
                     uncertainty=data.uncertainty, meta=data.meta)
    with pytest.warns(AstropyUserWarning, match="10 NaN or infinite flux value"):
        result = fit(_model(), holed, starts=1, progress=False)
    assert result.mask[0][100:110].all() and result.n_pixels[0] == 2048 - 10
    assert np.isfinite(result.chi2)


def test_bad_input_errors():
    data = _observation()
    with pytest.raises(FitError, match="cannot free 'alpha_fe': the model has no such"):
        SpectrumFitter(_model(), free=["alpha_fe"], progress=False).fit(data)
    with pytest.raises(FitError, match="starts must be an integer >= 1"):
        SpectrumFitter(_model(), starts=0)
    with pytest.raises(FitError, match="label_candidates must be an integer >= 0"):
        SpectrumFitter(_model(), label_candidates=-1)
    with pytest.raises(FitError, match="uncertainty must be one of"):
        SpectrumFitter(_model(), uncertainty="bootstrap")
    with pytest.raises(FitError, match="model must be a stellarai emulator"):
        SpectrumFitter(object()).fit(data)
    with pytest.raises(FitError, match="it got one SpectrumList"):
        SpectrumFitter(_model()).fit_batch(SpectrumList([data]))
    with pytest.raises(FitInputError, match="got a file name"):
        SpectrumFitter(_model()).fit("spectrum.fits")
    per_order = ops.Instrument(resolving_power=[60_000.0], fixed={"resolving_power": False})
    with pytest.raises(FitError, match="'resolving_power_5' has one value per order"):
        SpectrumFitter(_model() | per_order, progress=False).fit(data)
    blank = Spectrum(flux=np.full(2048, np.nan) * u.ct, spectral_axis=data.spectral_axis,
                     uncertainty=data.uncertainty, meta=data.meta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)
        with pytest.raises(FitInputError, match=rf"order {ORDER} \(0 valid\)"):
            fit(_model(), SpectrumList([data, blank]), progress=False)


def test_model_not_covering_the_data_says_what_to_do():
    optical = Spectrum(flux=np.ones(500) * u.ct, spectral_axis=np.linspace(5000, 5050, 500) * u.AA,
                       uncertainty=StdDevUncertainty(np.full(500, 0.01)),
                       meta={"instrumental_resolution": 55_000})
    emu_only = load("default").source(fixed=["teff", "logg", "feh", "vmic"]) \
        | ops.Doppler(rv=0.0)
    with pytest.raises(ops.GridCoverageError, match=r"emulator covers 8.*fit only the orders"):
        fit(emu_only, optical, progress=False)


def test_operators_broadcast_a_batch_of_parameter_vectors():
    """The fitter passes (batch, 1) parameters; each row must equal its own evaluation."""
    problem = SpectrumFitter(_model(), progress=False).problem(_observation())
    grid = problem.grid
    flux = torch.rand(2, *grid.shape, dtype=torch.float64)
    rv = torch.tensor([[3.0], [-7.5]], dtype=torch.float64)
    doppler = ops.Doppler()
    _, batched = doppler.evaluate({"rv": rv}, grid, flux)
    for k in range(2):
        _, single = doppler.evaluate({"rv": rv[k, 0]}, grid, flux[k])
        torch.testing.assert_close(batched[k], single, rtol=1e-12, atol=1e-12)
    telluric = ops.Telluric.from_muler("hpf", fixed={"rv": False})
    strength = torch.tensor([[0.5], [1.5]], dtype=torch.float64)
    _, batched = telluric.evaluate({"strength": strength, "rv": rv}, grid, torch.ones_like(grid))
    for k in range(2):
        _, single = telluric.evaluate({"strength": strength[k, 0], "rv": rv[k, 0]}, grid,
                                      torch.ones_like(grid))
        torch.testing.assert_close(batched[k], single, rtol=1e-12, atol=1e-12)
    source = load("default").source(wavelength=grid)
    teff = torch.tensor([[4800.0], [6100.0]], dtype=torch.float64)
    _, batched = source.evaluate({"teff": teff})
    assert batched.shape == (2, *grid.shape)
    _, single = source.evaluate({"teff": teff[1, 0]})
    assert single.shape == grid.shape
    torch.testing.assert_close(batched[1], single, rtol=1e-6, atol=1e-6)
