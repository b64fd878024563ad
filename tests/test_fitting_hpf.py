"""Real HPF telluric standards: a fitted telluric model beats dividing by muler's template.

The three Goldilocks files in ../shared/data/hpf are hot, fast-rotating telluric standard
stars (HR 3039, HR 4829, HR 7634): in the orders chosen here (8, 12 and 23, water bands
free of hydrogen lines) almost every narrow line is telluric, and the star is a smooth
continuum. The model is therefore a flat star times muler's TelFit transmission template
raised to a fitted strength, shifted by a fitted velocity, times muler's blaze template,
broadened by a fitted Gaussian, times the per-order cubic continuum the fitter solves.
The baseline divides the data by the static template (muler's way) and fits the same
continuum (blaze times a cubic) to the result.
"""

import astropy.units as u
import numpy as np
import pytest
from numpy.polynomial import chebyshev
from specutils import Spectrum, SpectrumList

import stellarai.ops as ops
from stellarai.fitting import SpectrumFitter
from stellarai.io import read_spectrum_list

ORDERS = (8, 12, 23)
DEGREE = 3


def _templates():
    (_, transmission) = ops.read_muler_template("telfit_HPFtemplate_temp286_hum050.csv",
                                                ["wavelength_A", "transmission"])
    (_, blaze) = ops.read_muler_template("HPF_blaze_templates.csv",
                                         ["wavelength_Angstrom", "blaze_Goldilocks"])
    return transmission.reshape(28, 2048), blaze.reshape(28, 2048)


def _orders(path, blaze):
    spectra = read_spectrum_list(path)
    out = []
    for i in ORDERS:
        s = spectra[i]
        out.append(Spectrum(flux=s.flux, spectral_axis=s.spectral_axis,
                            uncertainty=s.uncertainty, mask=s.mask | (blaze[i] < 0.05),
                            meta=s.meta))
    return SpectrumList(out)


def _static_residual(spectrum, transmission, blaze):
    """Data / template, divided by its best blaze x cubic continuum, minus 1 (muler's way)."""
    good = ~spectrum.mask & (transmission > 0.05)
    flux, sigma = spectrum.flux.value, spectrum.uncertainty.array
    corrected = np.where(good, flux / np.where(good, transmission, 1.0), 0.0)
    weight = np.where(good, (transmission / np.where(good, sigma, 1.0)) ** 2, 0.0)
    design = blaze * chebyshev.chebvander(np.linspace(-1, 1, flux.size), DEGREE).T
    coefficients = np.linalg.solve((design * weight) @ design.T, (design * weight) @ corrected)
    continuum = coefficients @ design
    return np.where(good, corrected, np.nan) / np.where(good, continuum, 1.0) - 1


def _model():
    return (ops.Telluric.from_muler("hpf", fixed={"rv": False})
            * ops.BlazeTemplate.from_muler("hpf")
            | ops.Instrument(fwhm=2.0 * u.km / u.s, fixed={"fwhm": False},
                             bounds={"fwhm": (0.1, 20) * u.km / u.s}))


def test_fitted_tellurics_beat_the_static_template(hpf_files):
    transmission, blaze = _templates()
    fitter = SpectrumFitter(_model(), starts=1, continuum_degree=DEGREE, progress=False)
    datas = [_orders(path, blaze) for path in hpf_files]
    ratios = []
    for data, result in zip(datas, fitter.fit_batch(datas), strict=True):
        assert result.converged, result.message
        assert result.names == ("strength", "rv", "fwhm")
        assert 0.3 < result["strength"] < 4
        assert abs(result["rv"]) < 1 * u.km / u.s
        fitted, static = [], []
        for k, i in enumerate(ORDERS):
            telluric = ~result.mask[k] & (transmission[i] < 0.9) & (transmission[i] > 0.2)
            assert telluric.sum() > 300
            fitted.append(result.flux[k][telluric] / result.model_flux[k][telluric] - 1)
            static.append(_static_residual(data[k], transmission[i], blaze[i])[telluric])
        fitted, static = np.concatenate(fitted), np.concatenate(static)
        ratios.append(np.sqrt(np.mean(fitted**2) / np.mean(static**2)))
    ratios = np.array(ratios)
    assert np.all(ratios < 0.85), ratios
    assert np.median(ratios) < 0.6, ratios


def test_orders_without_valid_pixels_are_named(hpf_files):
    _, blaze = _templates()
    data = _orders(hpf_files[0], blaze)
    bad = Spectrum(flux=data[1].flux, spectral_axis=data[1].spectral_axis,
                   uncertainty=data[1].uncertainty, mask=np.ones(2048, bool),
                   meta=data[1].meta)
    with pytest.raises(ValueError, match=r"orders without enough valid pixels.*order 12 \(0 "):
        SpectrumFitter(_model(), progress=False).fit(SpectrumList([data[0], bad, data[2]]))
