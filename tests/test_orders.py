"""The boundary container: conversions in, round trips out, and errors on bad input."""

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.nddata import InverseVariance, StdDevUncertainty, VarianceUncertainty
from astropy.utils.exceptions import AstropyUserWarning
from specutils import Spectrum, SpectrumCollection, SpectrumList

from stellarai.errors import SpectrumInputError, SpectrumTypeError
from stellarai.spectra import OrderBatch, air_to_vacuum, as_order_batch


def make_spectrum(n=50, start=10000.0, unit=u.AA, dtype=np.float64, uncertainty=StdDevUncertainty,
                  seed=0, mask=None):
    rng = np.random.default_rng(seed)
    wavelength = (np.linspace(start, start + n - 1, n) * u.AA).to(unit).astype(dtype)
    flux = (1 + 0.1 * rng.standard_normal(n)).astype(dtype)
    sigma = (0.01 + 0.01 * rng.random(n)).astype(dtype)
    values = {StdDevUncertainty: sigma, VarianceUncertainty: sigma**2,
              InverseVariance: 1 / sigma**2}[uncertainty]
    return Spectrum(flux=flux * u.dimensionless_unscaled, spectral_axis=wavelength,
                    uncertainty=uncertainty(values), mask=mask, meta={"m": 7, "note": "x"})


def assert_same_spectrum(a, b):
    assert type(b) is Spectrum
    assert a.spectral_axis.unit == b.spectral_axis.unit
    assert a.flux.unit == b.flux.unit
    np.testing.assert_array_equal(a.spectral_axis.value, b.spectral_axis.value)
    np.testing.assert_array_equal(a.flux.value, b.flux.value)
    assert a.flux.dtype == b.flux.dtype
    if a.uncertainty is None:
        assert b.uncertainty is None
    else:
        assert type(a.uncertainty) is type(b.uncertainty)
        np.testing.assert_array_equal(a.uncertainty.array, b.uncertainty.array)
    if a.mask is not None:
        np.testing.assert_array_equal(a.mask, b.mask)
    for key, value in a.meta.items():
        assert b.meta[key] is value or b.meta[key] == value


@pytest.mark.parametrize("kind", [StdDevUncertainty, VarianceUncertainty, InverseVariance])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_bit_identical(kind, dtype):
    spec = make_spectrum(uncertainty=kind, dtype=dtype)
    back = OrderBatch.from_spectra(spec).to_spectrum_list()
    assert len(back) == 1
    assert_same_spectrum(spec, back[0])


def test_canonical_units_and_inverse_variance():
    spec = make_spectrum(unit=u.micron)
    batch = as_order_batch(spec)
    np.testing.assert_allclose(batch.wavelength[0].numpy(),
                               spec.spectral_axis.to_value(u.AA), rtol=1e-15)
    np.testing.assert_allclose(batch.ivar[0].numpy(), 1 / spec.uncertainty.array**2, rtol=1e-15)
    assert batch.wavelength.dtype == torch.float64
    assert batch.order.tolist() == [7]
    assert_same_spectrum(spec, batch.to_spectrum(0))


@pytest.mark.parametrize("unit", [u.nm, u.micron, u.AA, u.Hz, u.cm**-1, u.eV])
def test_spectral_units_convert_to_ascending_angstrom(unit):
    wavelength = np.linspace(9000.0, 9100.0, 21) * u.AA
    axis = wavelength.to(unit, equivalencies=u.spectral())
    spec = Spectrum(flux=np.linspace(1, 2, 21) * u.Jy, spectral_axis=axis)
    batch = OrderBatch.from_spectra(spec)
    np.testing.assert_allclose(batch.wavelength[0].numpy(), wavelength.value, rtol=1e-12)
    # each flux value stays with its wavelength, whichever way the input axis ran
    np.testing.assert_array_equal(batch.flux[0].numpy(), np.linspace(1, 2, 21))
    assert_same_spectrum(spec, batch.to_spectrum_list()[0])


def test_descending_wavelength_axis_is_flipped_and_restored():
    n = 30
    spec = Spectrum(flux=np.arange(n, dtype=float) * u.ct,
                    spectral_axis=np.linspace(2.0, 1.9, n) * u.micron,
                    uncertainty=StdDevUncertainty(np.full(n, 0.5)))
    batch = OrderBatch.from_spectra(spec)
    assert torch.all(torch.diff(batch.wavelength[0]) > 0)
    assert batch.flux[0, 0].item() == n - 1  # the reddest pixel came first in the input
    assert_same_spectrum(spec, batch.to_spectrum(0))


def test_air_wavelengths_become_vacuum_and_come_back_in_air():
    spec = make_spectrum(start=6560.0)
    batch = OrderBatch.from_spectra(spec, medium="air")
    expected = air_to_vacuum(spec.spectral_axis).to_value(u.AA)
    np.testing.assert_allclose(batch.wavelength[0].numpy(), expected, rtol=1e-14)
    assert batch.wavelength[0, 0].item() == pytest.approx(6561.81, abs=0.01)
    assert "input in air" in repr(batch)
    assert_same_spectrum(spec, batch.to_spectrum(0))


def test_ragged_orders_are_padded_and_masked():
    spectra = SpectrumList([make_spectrum(n=40), make_spectrum(n=25, start=10100.0, seed=1)])
    batch = OrderBatch.from_spectra(spectra)
    assert batch.wavelength.shape == (2, 40)
    assert batch.npix.tolist() == [40, 25]
    assert torch.all(batch.mask[1, 25:]) and not torch.any(batch.mask[1, :25])
    assert torch.all(batch.ivar[1, 25:] == 0) and torch.all(batch.flux[1, 25:] == 0)
    assert torch.all(torch.diff(batch.wavelength[1]) > 0)
    np.testing.assert_allclose(batch.wavelength[1, 25:].numpy(), 10100.0 + np.arange(25, 40))
    for original, back in zip(spectra, batch.to_spectrum_list(), strict=True):
        assert_same_spectrum(original, back)


def test_nonfinite_flux_is_masked_counted_and_restored():
    spec = make_spectrum()
    flux = spec.flux.value.copy()
    flux[[3, 10, 11]] = [np.nan, np.inf, -np.inf]
    spec = Spectrum(flux=flux * u.dimensionless_unscaled, spectral_axis=spec.spectral_axis,
                    uncertainty=spec.uncertainty)
    with pytest.warns(AstropyUserWarning, match=r"3 NaN or infinite flux value\(s\) in 1 order"):
        batch = OrderBatch.from_spectra(spec)
    assert batch.mask[0, [3, 10, 11]].all() and batch.mask[0].sum() == 3
    assert torch.all(torch.isfinite(batch.flux)) and torch.all(batch.ivar[0, [3, 10, 11]] == 0)
    assert torch.all(batch.weights[0, [3, 10, 11]] == 0)
    back = batch.to_spectrum(0)
    np.testing.assert_array_equal(back.flux.value, flux)  # NaN and infinities come back
    np.testing.assert_array_equal(back.mask, np.isin(np.arange(50), [3, 10, 11]))


def test_nonfinite_uncertainty_is_masked_with_a_warning():
    spec = make_spectrum()
    sigma = spec.uncertainty.array.copy()
    sigma[5] = np.nan
    spec = Spectrum(flux=spec.flux, spectral_axis=spec.spectral_axis,
                    uncertainty=StdDevUncertainty(sigma))
    with pytest.warns(AstropyUserWarning, match=r"1 non-finite uncertainty"):
        batch = OrderBatch.from_spectra(spec)
    assert batch.mask[0, 5] and batch.ivar[0, 5] == 0


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_zero_or_negative_uncertainty_is_refused(bad):
    spec = make_spectrum()
    sigma = spec.uncertainty.array.copy()
    sigma[9] = bad
    spec = Spectrum(flux=spec.flux, spectral_axis=spec.spectral_axis,
                    uncertainty=StdDevUncertainty(sigma))
    with pytest.raises(SpectrumInputError, match=r"1 unmasked pixel\(s\) have zero or negative "
                                                 r"uncertainty \(first at pixel 9"):
        OrderBatch.from_spectra(spec)


def test_zero_uncertainty_on_masked_pixels_is_accepted():
    mask = np.zeros(50, dtype=bool)
    mask[:4] = True
    spec = make_spectrum(mask=mask)
    sigma = spec.uncertainty.array.copy()
    sigma[:4] = 0.0
    spec = Spectrum(flux=spec.flux, spectral_axis=spec.spectral_axis,
                    uncertainty=StdDevUncertainty(sigma), mask=mask)
    batch = OrderBatch.from_spectra(spec)
    assert torch.all(batch.ivar[0, :4] == 0) and torch.all(torch.isfinite(batch.ivar))
    assert_same_spectrum(spec, batch.to_spectrum(0))


def test_negative_inverse_variance_is_refused():
    spec = make_spectrum(uncertainty=InverseVariance)
    ivar = spec.uncertainty.array.copy()
    ivar[2] = -3.0
    spec = Spectrum(flux=spec.flux, spectral_axis=spec.spectral_axis,
                    uncertainty=InverseVariance(ivar))
    with pytest.raises(SpectrumInputError, match="negative or infinite inverse variance"):
        OrderBatch.from_spectra(spec)


def test_unsorted_and_duplicated_wavelengths_are_refused():
    wavelength = np.linspace(5000, 5010, 11)
    unsorted = wavelength.copy()
    unsorted[[4, 5]] = unsorted[[5, 4]]
    with pytest.raises(SpectrumInputError, match="not sorted: it changes direction at pixel"):
        OrderBatch.from_arrays(unsorted * u.AA, np.ones(11))
    duplicated = wavelength.copy()
    duplicated[6] = duplicated[5]
    with pytest.raises(SpectrumInputError,
                       match=r"1 duplicated value\(s\), first at pixels 5 and 6"):
        OrderBatch.from_arrays(duplicated * u.AA, np.ones(11))


def test_unitless_and_pixel_axes_are_refused():
    with pytest.raises(SpectrumInputError, match="wavelength has no unit"):
        OrderBatch.from_arrays(np.linspace(5000, 5010, 11), np.ones(11))
    pixels = Spectrum(flux=np.ones(11) * u.ct, spectral_axis=np.arange(11) * u.pix)
    with pytest.raises(SpectrumInputError, match="must be a wavelength, frequency, wavenumber"):
        OrderBatch.from_spectra(pixels)
    with pytest.raises(SpectrumInputError, match="must be a wavelength"):
        OrderBatch.from_arrays(np.arange(11.0) * u.km / u.s, np.ones(11))


def test_mismatched_shapes_are_refused():
    wavelength = np.linspace(5000, 5010, 11) * u.AA
    with pytest.raises(SpectrumInputError, match=r"wavelength has shape \(11,\) but flux has "
                                                 r"shape \(12,\)"):
        OrderBatch.from_arrays(wavelength, np.ones(12))
    with pytest.raises(SpectrumInputError, match=r"uncertainty has shape \(10,\) but flux has "
                                                 r"shape \(11,\)"):
        OrderBatch.from_arrays(wavelength, np.ones(11), np.ones(10))
    with pytest.raises(SpectrumInputError, match=r"mask has shape \(3,\)"):
        OrderBatch.from_arrays(wavelength, np.ones(11), None, np.zeros(3, dtype=bool))


def test_empty_order_and_empty_list_are_refused():
    with pytest.raises(SpectrumInputError, match="is empty: an order needs at least one pixel"):
        OrderBatch.from_arrays(np.array([]) * u.AA, np.array([]))
    with pytest.raises(SpectrumInputError, match="no orders given"):
        OrderBatch.from_spectra(SpectrumList([]))


@pytest.mark.parametrize("thing", ["spectrum.fits", {"flux": [1, 2]}, np.ones(5), 3.0])
def test_objects_that_are_not_spectra_are_refused(thing):
    with pytest.raises(SpectrumTypeError, match="cannot read spectra from a"):
        OrderBatch.from_spectra(thing)


def test_list_with_a_non_spectrum_is_refused():
    with pytest.raises(SpectrumTypeError, match="element 1 of the spectrum list is a str"):
        OrderBatch.from_spectra([make_spectrum(), "not a spectrum"])


def test_incompatible_uncertainty_unit_is_refused():
    with pytest.raises(SpectrumInputError, match="not convertible to the flux unit"):
        OrderBatch.from_arrays(np.linspace(5000, 5010, 11) * u.AA, np.ones(11) * u.Jy,
                               np.ones(11) * u.m)


def test_big_endian_and_float32_arrays_work():
    wavelength = np.linspace(8000, 8100, 101).astype(">f8")
    flux = np.linspace(1, 2, 101).astype(">f4")
    sigma = np.full(101, 0.1, dtype=">f4")
    batch = OrderBatch.from_arrays(wavelength * u.AA, flux * u.ct, sigma * u.ct)
    np.testing.assert_array_equal(batch.flux[0].numpy(), flux.astype(np.float64))
    back = batch.to_spectrum(0)
    assert back.flux.dtype == np.float32 and back.flux.dtype.isnative
    np.testing.assert_array_equal(back.flux.value, flux)
    np.testing.assert_array_equal(back.uncertainty.array, sigma)


def test_quantity_arrays_with_orders_share_or_own_axes():
    wavelength = np.linspace(5000, 5010, 11) * u.AA
    batch = OrderBatch.from_arrays(wavelength, np.ones((3, 11)) * u.Jy, 0.1 * np.ones((3, 11)))
    assert batch.n_orders == 3 and batch.order.tolist() == [0, 1, 2]
    np.testing.assert_allclose(batch.ivar.numpy(), 100.0)
    via_tuple = as_order_batch((wavelength, np.ones(11) * u.Jy))
    assert via_tuple.n_orders == 1 and via_tuple.records[0].flux_unit == u.Jy


def test_two_dimensional_spectrum_and_collection():
    wavelength = np.linspace(5000, 5010, 11) * u.AA
    flux = np.arange(33, dtype=float).reshape(3, 11) * u.ct
    spec2d = Spectrum(flux=flux, spectral_axis=wavelength,
                      uncertainty=StdDevUncertainty(np.ones((3, 11))))
    batch = OrderBatch.from_spectra(spec2d)
    assert batch.n_orders == 3
    np.testing.assert_array_equal(batch.flux.numpy(), flux.value)
    axes = np.stack([wavelength.value, wavelength.value + 20]) * u.AA
    collection = SpectrumCollection(flux=flux[:2], spectral_axis=axes,
                                    uncertainty=StdDevUncertainty(np.ones((2, 11))))
    batch = OrderBatch.from_spectra(collection)
    np.testing.assert_array_equal(batch.wavelength.numpy(), axes.value)


@pytest.mark.filterwarnings("ignore:The Spectrum1D class is deprecated")
def test_legacy_spectrum1d_is_accepted():
    from specutils import Spectrum1D

    legacy = Spectrum1D(flux=np.ones(11) * u.ct, spectral_axis=np.linspace(5000, 5010, 11) * u.AA)
    back = OrderBatch.from_spectra(legacy).to_spectrum(0)
    assert type(back) is Spectrum
    np.testing.assert_array_equal(back.flux.value, np.ones(11))


def test_changed_values_are_converted_back():
    spec = make_spectrum(unit=u.micron)
    batch = OrderBatch.from_spectra(spec)
    batch.flux.mul_(2.0)
    batch.ivar.mul_(4.0)
    batch.wavelength.add_(1.0)
    back = batch.to_spectrum(0)
    np.testing.assert_allclose(back.flux.value, 2 * spec.flux.value, rtol=1e-15)
    np.testing.assert_allclose(back.uncertainty.array, spec.uncertainty.array / 2, rtol=1e-14)
    np.testing.assert_allclose(back.spectral_axis.to_value(u.AA),
                               spec.spectral_axis.to_value(u.AA) + 1.0, rtol=1e-14)
    assert back.spectral_axis.unit == u.micron


def test_statistics_and_dtype_casting():
    n = 100
    flux = np.full(n, 50.0)
    mask = np.zeros(n, dtype=bool)
    mask[:10] = True
    batch = OrderBatch.from_arrays(np.linspace(9000, 9100, n) * u.AA, flux * u.ct,
                                   np.full(n, 2.0) * u.ct, mask)
    assert batch.median_snr().tolist() == [25.0]
    assert batch.masked_fraction().tolist() == [pytest.approx(0.1)]
    single = batch.to(torch.float32)
    assert single.flux.dtype == torch.float32 and single.mask.dtype == torch.bool
    assert single.order.dtype == torch.int64
    no_sigma = OrderBatch.from_arrays(np.linspace(9000, 9100, n) * u.AA, flux)
    assert np.isnan(no_sigma.median_snr()[0].item())
    assert torch.all(no_sigma.ivar == 1.0) and no_sigma.to_spectrum(0).uncertainty is None


def test_invalid_medium_is_refused():
    with pytest.raises(SpectrumInputError, match="medium must be 'vacuum' or 'air', got 'water'"):
        OrderBatch.from_spectra(make_spectrum(), medium="water")
