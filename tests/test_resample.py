"""Tests of stellarai.spectra.resample against specutils, numpy and exact answers."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.nddata import StdDevUncertainty
from specutils import SpectralAxis, Spectrum
from specutils.manipulation import FluxConservingResampler

from stellarai.errors import SpectrumInputError, SpectrumTypeError
from stellarai.spectra.resample import (
    Rebinned,
    bin_edges,
    interpolate_linear,
    rebin_flux_conserving,
)

C_KMS = 299_792.458
NAN = float("nan")


# ----------------------------------------------------------------------------- helpers


def smooth_spectrum(n: int = 2048, seed: int = 0):
    """A non-uniform 2048-pixel grid near 1.5 micron with broad Gaussians on a continuum."""
    rng = np.random.default_rng(seed)
    pixel = np.arange(n)
    step = 0.1 * (1 + 0.3 * np.sin(2 * np.pi * pixel / n))          # Angstrom per pixel
    wavelength = 15_000.0 + np.concatenate([[0.0], np.cumsum(step[:-1])])
    flux = 1.0 + 1e-4 * (wavelength - wavelength.mean())
    for centre, depth in zip(rng.uniform(wavelength[50], wavelength[-50], 12),
                             rng.uniform(0.1, 0.6, 12), strict=True):
        flux = flux - depth * np.exp(-0.5 * ((wavelength - centre) / 1.5) ** 2)
    sigma = 0.01 * (1 + 0.5 * np.cos(pixel / 100))
    return wavelength, flux, sigma


def specutils_rebin(wavelength, flux, sigma, new_wavelength):
    spectrum = Spectrum(flux=flux * u.dimensionless_unscaled, spectral_axis=wavelength * u.AA,
                        uncertainty=StdDevUncertainty(sigma))
    out = FluxConservingResampler()(spectrum, new_wavelength * u.AA)
    return out.flux.value, out.uncertainty.array


def stellarai_rebin(wavelength, flux, sigma, new_wavelength) -> Rebinned:
    return rebin_flux_conserving(torch.from_numpy(new_wavelength), torch.from_numpy(wavelength),
                                 torch.from_numpy(flux), ivar=torch.from_numpy(sigma**-2.0))


def as_t(values, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype)


WL, FLUX, SIGMA = smooth_spectrum()
GRIDS = {
    # covers the input and beyond at both ends, 3x coarser
    "coarser": np.linspace(WL[0] - 0.05, WL[-1] + 1.0, 700),
    # 2.5x finer, inside the input range
    "finer": np.linspace(WL[10], WL[-10], 5000),
    # the input grid Doppler-shifted by 3 km/s (about 0.6 pixel)
    "shifted": WL * (1 + 3.0 / C_KMS),
}


@pytest.fixture(scope="module", params=sorted(GRIDS))
def both(request):
    """(new grid, specutils flux and ivar, stellarai result) for each output grid."""
    new = GRIDS[request.param]
    ref_flux, ref_ivar = specutils_rebin(WL, FLUX, SIGMA, new)
    return request.param, new, ref_flux, ref_ivar, stellarai_rebin(WL, FLUX, SIGMA, new)


# ------------------------------------------------------------------------------ bin_edges


def test_bin_edges_match_specutils():
    expected = SpectralAxis(WL * u.AA).bin_edges.value
    np.testing.assert_array_equal(bin_edges(torch.from_numpy(WL)).numpy(), expected)


def test_bin_edges_batched():
    grids = torch.from_numpy(np.stack([WL, WL * 1.001, WL[::-1].copy()]))
    edges = bin_edges(grids)
    assert edges.shape == (3, WL.size + 1)
    for grid, row in zip(grids, edges, strict=True):
        np.testing.assert_array_equal(row.numpy(), bin_edges(grid).numpy())


# ------------------------------------------------------------------ agreement with specutils


def test_flux_matches_specutils_where_finite(both):
    name, new, ref_flux, _, ours = both
    finite = np.isfinite(ref_flux)
    assert finite.sum() > 0.9 * new.size
    # everywhere specutils has a value, so do we
    assert not ours.mask.numpy()[finite].any()
    # specutils' first in-range output pixel can differ (see test_edges_compared_to_specutils)
    first = np.flatnonzero(finite)[0]
    finite[first] = False
    np.testing.assert_allclose(ours.flux.numpy()[finite], ref_flux[finite], rtol=1e-6)


def test_ivar_matches_specutils_where_finite(both):
    _, _, ref_flux, ref_ivar, ours = both
    finite = np.isfinite(ref_flux)
    finite[np.flatnonzero(finite)[0]] = False
    np.testing.assert_allclose(ours.ivar.numpy()[finite], ref_ivar[finite], rtol=1e-6)


def test_edges_compared_to_specutils(both):
    """How the two differ at the ends of the input range, and only there.

    - Red end: specutils returns NaN for an output pixel that the input covers only in
      part; stellarai returns the mean over the covered part. Fully uncovered pixels are
      NaN (masked) in both.
    - Blue end: specutils keeps a partly covered output pixel but, when it overlaps more
      than one input pixel, weights the first one by its overlap with the whole output
      pixel, including the uncovered part; stellarai uses the true overlap.
    """
    name, new, ref_flux, _, ours = both
    edges, new_edges = bin_edges(torch.from_numpy(WL)).numpy(), bin_edges(
        torch.from_numpy(new)).numpy()
    partial_red = (new_edges[:-1] < edges[-1]) & (new_edges[1:] > edges[-1])
    outside = (new_edges[1:] <= edges[0]) | (new_edges[:-1] >= edges[-1])
    ours_flux = ours.flux.numpy()
    assert np.array_equal(np.isnan(ref_flux), partial_red | outside)
    assert np.array_equal(ours.mask.numpy(), outside)
    assert np.isnan(ours_flux[outside]).all() and (ours.ivar.numpy()[outside] == 0).all()
    partial_blue = np.flatnonzero((new_edges[:-1] < edges[0]) & (new_edges[1:] > edges[0]))
    assert partial_red.sum() <= 1 and partial_blue.size <= 1
    expected_partial = {"coarser": (1, 1), "finer": (0, 0), "shifted": (1, 0)}[name]
    assert (partial_red.sum(), partial_blue.size) == expected_partial
    for j in partial_blue:
        lo, hi = edges[0], new_edges[j + 1]
        overlap = np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0, None)
        assert np.count_nonzero(overlap) > 1
        np.testing.assert_allclose(ours_flux[j], np.sum(overlap * FLUX) / overlap.sum(),
                                   rtol=1e-12)
        assert abs(ours_flux[j] - ref_flux[j]) > 1e-9  # specutils overweights FLUX[0]


def test_specutils_docstring_example():
    """specutils gives [1, 3, 6, 7, 6.25, 10, 20, nan, nan]; the 8th output pixel,
    [21.5, 22.5] nm, is half covered by the last input pixel [18, 22] nm, which gives it
    20 here and NaN in specutils."""
    out = rebin_flux_conserving(as_t([1, 5, 9, 13, 14, 17, 21, 22, 23]),
                                as_t([2, 4, 12, 16, 20]), as_t([1, 3, 7, 6, 20]))
    np.testing.assert_array_equal(out.flux.numpy(), [1, 3, 6, 7, 6.25, 10, 20, 20, NAN])
    np.testing.assert_array_equal(out.mask.numpy(), [False] * 8 + [True])
    assert out.ivar is None
    spectrum = Spectrum(flux=[1, 3, 7, 6, 20] * u.mJy, spectral_axis=[2, 4, 12, 16, 20] * u.nm)
    ref = FluxConservingResampler()(spectrum, [1, 5, 9, 13, 14, 17, 21, 22, 23] * u.nm)
    np.testing.assert_array_equal(ref.flux.value, [1, 3, 6, 7, 6.25, 10, 20, NAN, NAN])


# -------------------------------------------------------------------------- exact answers


def test_constant_stays_constant():
    new = np.linspace(WL[0] - 5, WL[-1] + 5, 1500)
    out = stellarai_rebin(WL, np.full_like(WL, 3.25), SIGMA, new)
    good = ~out.mask.numpy()
    assert good.sum() > 1400
    np.testing.assert_allclose(out.flux.numpy()[good], 3.25, rtol=1e-14)


def test_integrated_flux_is_conserved():
    """With output pixels spanning exactly the input's outer edges, sum(F dlambda) holds."""
    edges = bin_edges(torch.from_numpy(WL)).numpy()
    for m in (300, 2048, 7001):
        step = (edges[-1] - edges[0]) / m
        new = edges[0] + step * (np.arange(m) + 0.5)
        out = stellarai_rebin(WL, FLUX, SIGMA, new)
        assert not out.mask.any()
        np.testing.assert_allclose(np.sum(out.flux.numpy() * step), np.sum(FLUX * np.diff(edges)),
                                   rtol=1e-10)


def test_identity_grid_returns_input():
    out = stellarai_rebin(WL, FLUX, SIGMA, WL)
    np.testing.assert_allclose(out.flux.numpy(), FLUX, rtol=1e-13)
    np.testing.assert_allclose(out.ivar.numpy(), SIGMA**-2.0, rtol=1e-12)


# ------------------------------------------------------------------------ linear interpolation


def test_interpolate_linear_matches_np_interp():
    rng = np.random.default_rng(1)
    new = np.sort(rng.uniform(WL[0] - 3, WL[-1] + 3, 3000))
    new[:3] = WL[:3]                                        # exactly on nodes, incl. the ends
    new[-1] = WL[-1]
    expected = np.interp(new, WL, FLUX, left=np.nan, right=np.nan)
    ours = interpolate_linear(torch.from_numpy(new), torch.from_numpy(WL), torch.from_numpy(FLUX))
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-13, equal_nan=True)
    filled = interpolate_linear(torch.from_numpy(new), torch.from_numpy(WL),
                                torch.from_numpy(FLUX), fill=0.0)
    np.testing.assert_allclose(filled.numpy(), np.interp(new, WL, FLUX, left=0, right=0),
                               rtol=1e-13)


def test_interpolate_linear_broadcasts_one_grid_over_many_fluxes():
    fluxes = torch.from_numpy(np.stack([FLUX, 2 * FLUX, FLUX**2]))
    new = torch.from_numpy(GRIDS["shifted"])
    out = interpolate_linear(new, torch.from_numpy(WL), fluxes)
    assert out.shape == (3, WL.size)
    for row, flux in zip(out, fluxes, strict=True):
        np.testing.assert_array_equal(row.numpy(),
                                      interpolate_linear(new, torch.from_numpy(WL), flux).numpy())


# ---------------------------------------------------------------------------------- batching


def orders():
    """Three orders with different input grids and different output grids."""
    spectra = [smooth_spectrum(2048, seed) for seed in range(3)]
    wavelengths = np.stack([wl + 310.0 * k for k, (wl, _, _) in enumerate(spectra)])
    fluxes = np.stack([flux for _, flux, _ in spectra])
    sigmas = np.stack([sigma for _, _, sigma in spectra])
    news = np.stack([np.linspace(wl[0] - 1, wl[-1] + 1, 900) for wl in wavelengths])
    return wavelengths, fluxes, sigmas, news


def test_rebin_batched_equals_one_at_a_time():
    wavelengths, fluxes, sigmas, news = orders()
    batched = rebin_flux_conserving(torch.from_numpy(news), torch.from_numpy(wavelengths),
                                    torch.from_numpy(fluxes), ivar=torch.from_numpy(sigmas**-2))
    assert batched.flux.shape == batched.ivar.shape == batched.mask.shape == (3, 900)
    for k in range(3):
        single = stellarai_rebin(wavelengths[k], fluxes[k], sigmas[k], news[k])
        np.testing.assert_allclose(batched.flux[k].numpy(), single.flux.numpy(), rtol=1e-14)
        np.testing.assert_allclose(batched.ivar[k].numpy(), single.ivar.numpy(), rtol=1e-14)
        np.testing.assert_array_equal(batched.mask[k].numpy(), single.mask.numpy())


def test_interpolate_batched_equals_one_at_a_time():
    wavelengths, fluxes, _, news = orders()
    batched = interpolate_linear(torch.from_numpy(news), torch.from_numpy(wavelengths),
                                 torch.from_numpy(fluxes))
    for k in range(3):
        expected = np.interp(news[k], wavelengths[k], fluxes[k], left=np.nan, right=np.nan)
        np.testing.assert_allclose(batched[k].numpy(), expected, rtol=1e-13, equal_nan=True)


def test_shared_output_grid_for_all_orders():
    wavelengths, fluxes, _, _ = orders()
    new = np.linspace(wavelengths[1, 0], wavelengths[1, -1], 500)
    out = rebin_flux_conserving(torch.from_numpy(new), torch.from_numpy(wavelengths),
                                torch.from_numpy(fluxes))
    assert out.flux.shape == (3, 500)
    assert out.mask[0].all() and not out.mask[1].any()   # order 0 ends before order 1 starts


# ------------------------------------------------------------------------------------- masks


@pytest.mark.parametrize("how", ["mask", "ivar", "nan"])
def test_bad_pixel_does_not_leak(how):
    flux, ivar = FLUX.copy(), SIGMA**-2.0
    mask = np.zeros(WL.size, dtype=bool)
    bad = 1000
    flux[bad] = NAN if how == "nan" else 1e30
    mask[bad] = how == "mask"
    ivar[bad] = 0.0 if how == "ivar" else ivar[bad]
    new = GRIDS["coarser"]
    out = rebin_flux_conserving(torch.from_numpy(new), torch.from_numpy(WL), torch.from_numpy(flux),
                                ivar=torch.from_numpy(ivar), mask=torch.from_numpy(mask))
    clean = stellarai_rebin(WL, FLUX, SIGMA, new)
    good = ~out.mask.numpy()
    assert np.isfinite(out.flux.numpy()[good]).all() and out.flux.numpy()[good].max() < 2
    edges, new_edges = bin_edges(torch.from_numpy(WL)), bin_edges(torch.from_numpy(new))
    near = ((new_edges[:-1] < edges[bad + 1]) & (new_edges[1:] > edges[bad])).numpy()
    assert near.any() and good[near].all()
    # pixels far from the bad one are unchanged, the near ones moved only a little
    np.testing.assert_allclose(out.flux.numpy()[good & ~near], clean.flux.numpy()[good & ~near],
                               rtol=1e-14)
    np.testing.assert_allclose(out.flux.numpy()[near], clean.flux.numpy()[near], rtol=1e-2)
    assert (out.ivar.numpy()[near] < clean.ivar.numpy()[near]).all()


def test_fully_masked_output_pixel_is_flagged():
    mask = torch.zeros(WL.size, dtype=torch.bool)
    mask[500:540] = True
    out = rebin_flux_conserving(torch.from_numpy(GRIDS["coarser"]), torch.from_numpy(WL),
                                torch.from_numpy(FLUX), ivar=torch.from_numpy(SIGMA**-2.0),
                                mask=mask, fill=-1.0)
    inside = (GRIDS["coarser"] > WL[502]) & (GRIDS["coarser"] < WL[537])
    assert inside.sum() >= 5
    assert out.mask.numpy()[inside].all()
    assert (out.flux.numpy()[inside] == -1).all() and (out.ivar.numpy()[inside] == 0).all()


# ---------------------------------------------------------------------------------- gradients


def small_case():
    wavelength = as_t([1.0, 1.8, 3.1, 4.0, 5.2, 6.1, 7.0, 8.3, 9.0, 10.1])
    new = as_t([0.5, 2.2, 3.0, 4.9, 6.6, 7.4, 9.5, 11.0])
    flux = torch.linspace(0.5, 2.0, 10, dtype=torch.float64).requires_grad_()
    ivar = torch.linspace(1.0, 3.0, 10, dtype=torch.float64).requires_grad_()
    return new, wavelength, flux, ivar


def test_rebin_gradcheck_flux_and_ivar():
    new, wavelength, flux, ivar = small_case()
    mask = torch.zeros(10, dtype=torch.bool)
    mask[4] = True

    def rebin(flux, ivar):
        out = rebin_flux_conserving(new, wavelength, flux, ivar=ivar, mask=mask, fill=0.0)
        return out.flux, out.ivar

    assert torch.autograd.gradcheck(rebin, (flux, ivar))


def test_interpolate_gradcheck_flux_and_new_wavelength():
    _, wavelength, flux, _ = small_case()
    new = as_t([1.3, 2.9, 4.4, 7.77, 9.9]).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x, f: interpolate_linear(x, wavelength, f), (new, flux))


def test_gradients_reach_flux_and_new_wavelength():
    _, wavelength, flux, _ = small_case()
    new = as_t([0.0, 1.3, 2.9, 4.4]).requires_grad_()
    interpolate_linear(new, wavelength, flux, fill=0.0).sum().backward()
    assert flux.grad is not None and flux.grad.abs().sum() > 0
    # d flux / d lambda on the segments [1.0, 1.8], [1.8, 3.1] and [4.0, 5.2]
    flux_step = 1.5 / 9
    np.testing.assert_allclose(new.grad.numpy()[1:], [flux_step / 0.8, flux_step / 1.3,
                                                      flux_step / 1.2], rtol=1e-12)
    assert new.grad[0] == 0                                  # outside: fill, no gradient


# ------------------------------------------------------------------------------------ dtypes


def test_float32_works_and_stays_float32():
    new, wavelength, flux = (torch.from_numpy(a).float() for a in (GRIDS["shifted"] - 15_000,
                                                                  WL - 15_000, FLUX))
    out = rebin_flux_conserving(new, wavelength, flux, ivar=torch.ones_like(flux))
    assert out.flux.dtype == out.ivar.dtype == torch.float32
    ref = stellarai_rebin(WL, FLUX, SIGMA, GRIDS["shifted"])
    good = ~ref.mask.numpy()
    np.testing.assert_allclose(out.flux.numpy()[good], ref.flux.numpy()[good], rtol=1e-4)
    assert interpolate_linear(new, wavelength, flux).dtype == torch.float32


# ------------------------------------------------------------------------------------ errors


def test_error_not_increasing():
    wavelength = as_t([1.0, 2.0, 2.0, 3.0])
    with pytest.raises(SpectrumInputError, match=r"wavelength must be strictly increasing.*"
                                                 r"pixels 1 and 2"):
        rebin_flux_conserving(as_t([1.5, 2.5]), wavelength, torch.ones(4, dtype=torch.float64))
    with pytest.raises(SpectrumInputError, match=r"new_wavelength must be strictly increasing"):
        rebin_flux_conserving(as_t([2.5, 1.5]), as_t([1, 2, 3]), as_t([1, 1, 1]))
    with pytest.raises(SpectrumInputError, match=r"row \(1,\)"):
        interpolate_linear(as_t([1.5]), as_t([[1, 2, 3], [1, 3, 2]]), as_t([1, 1, 1]))


def test_error_mismatched_shapes():
    with pytest.raises(SpectrumInputError, match=r"flux has shape \(5,\) but wavelength has "
                                                 r"shape \(4,\)"):
        interpolate_linear(as_t([1.5]), as_t([1, 2, 3, 4]), torch.ones(5, dtype=torch.float64))
    with pytest.raises(SpectrumInputError, match=r"new_wavelength \(2, 3\) and wavelength "
                                                 r"\(3, 4\) do not broadcast"):
        interpolate_linear(torch.ones(2, 3, dtype=torch.float64),
                           as_t([[1, 2, 3, 4]] * 3), torch.ones(4, dtype=torch.float64))
    with pytest.raises(SpectrumInputError, match=r"flux \(3, 4\) and mask \(2, 4\) do not"):
        rebin_flux_conserving(as_t([1.5, 2.5]), as_t([1, 2, 3, 4]), torch.ones(3, 4),
                              mask=torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(SpectrumInputError, match=r"ivar has shape \(3,\) but flux"):
        rebin_flux_conserving(as_t([1.5, 2.5]), as_t([1, 2, 3, 4]), as_t([1, 2, 3, 4]),
                              ivar=as_t([1, 1, 1]))


def test_error_too_few_pixels():
    with pytest.raises(SpectrumInputError, match=r"wavelength needs at least 2 pixels"):
        interpolate_linear(as_t([1.0]), as_t([1.0]), as_t([1.0]))
    with pytest.raises(SpectrumInputError, match=r"new_wavelength needs at least 2 pixels"):
        rebin_flux_conserving(as_t([1.0]), as_t([1, 2]), as_t([1, 2]))
    with pytest.raises(SpectrumInputError, match=r"scalar"):
        bin_edges(torch.tensor(1.0))


def test_error_dtypes():
    with pytest.raises(SpectrumInputError, match=r"wavelength must have a floating-point "
                                                 r"dtype.*torch.int64"):
        interpolate_linear(as_t([1.5]), torch.arange(4), as_t([1, 2, 3, 4]))
    with pytest.raises(SpectrumInputError, match=r"mask must be a boolean tensor"):
        rebin_flux_conserving(as_t([1.5, 2.5]), as_t([1, 2, 3]), as_t([1, 2, 3]),
                              mask=torch.zeros(3))
    with pytest.raises(SpectrumTypeError, match=r"wavelength has a unit"):
        interpolate_linear(as_t([1.5]), [1, 2, 3] * u.AA, as_t([1, 2, 3]))
    with pytest.raises(ValueError, match=r"flux must have a floating-point"):  # a ValueError
        interpolate_linear(as_t([1.5]), as_t([1, 2]), torch.ones(2, dtype=torch.int32))
