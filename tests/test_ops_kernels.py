"""Tests of stellarai.ops.kernels: rotation, Gaussian and tabulated broadening kernels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stellarai.errors import LabelError, SpectrumInputError
from stellarai.ops.kernels import (
    SPEED_OF_LIGHT_KMS,
    _convolve,
    gaussian_broaden,
    log_step,
    resolving_power_to_fwhm_velocity,
    rotational_broaden,
    tabulated_broaden,
    uniform_log_grid,
)

C = SPEED_OF_LIGHT_KMS
PIXEL_STEP = 1.0 / C  # a grid on which one pixel is exactly 1 km/s
F64 = torch.float64


def gray_variance(vsini: float, epsilon: float) -> float:
    """<v^2> of Gray's rotation profile: vsini^2 [(1-eps)/4 + 2 eps/15] / (1 - eps/3)."""
    return vsini**2 * ((1 - epsilon) / 4 + 2 * epsilon / 15) / (1 - epsilon / 3)


def absorption_lines(n: int, centers: list[float], sigma: float, depths: list[float],
                     dtype: torch.dtype = F64) -> torch.Tensor:
    """Normalized flux with Gaussian absorption lines (positions and widths in pixels)."""
    x = torch.arange(n, dtype=dtype)
    flux = torch.ones(n, dtype=dtype)
    for center, depth in zip(centers, depths, strict=True):
        flux = flux - depth * torch.exp(-0.5 * ((x - center) / sigma) ** 2)
    return flux


def impulse_response(broaden, n: int = 801, **kwargs) -> torch.Tensor:
    """The kernel in pixels (km/s on the PIXEL_STEP grid), centred at n // 2."""
    delta = torch.zeros(n, dtype=F64)
    delta[n // 2] = 1.0
    return broaden(delta, PIXEL_STEP, **kwargs)


def fwhm_of_dip(flux: torch.Tensor) -> float:
    """FWHM (pixels) of a single absorption dip, half-maximum crossings interpolated."""
    depth = (1 - flux).numpy()
    half = depth.max() / 2
    above = np.nonzero(depth >= half)[0]
    lo, hi = above[0], above[-1]
    left = lo - 1 + (half - depth[lo - 1]) / (depth[lo] - depth[lo - 1])
    right = hi + (depth[hi] - half) / (depth[hi] - depth[hi + 1])
    return float(right - left)


# ------------------------------------------------------------------------------- 1. EW


@pytest.mark.parametrize("vsini", [0.3, 2.7, 30.0, 120.0])
@pytest.mark.parametrize("epsilon", [0.0, 0.6, 1.0])
def test_01_rotation_conserves_equivalent_width(vsini, epsilon):
    wave = uniform_log_grid(10_000.0, 10_060.0, resolving_power=150_000)
    step = log_step(wave)
    x = torch.log(wave / 10_030.0) / step
    flux = 1 - 0.7 * torch.exp(-0.5 * (x / 2.0) ** 2)
    broad = rotational_broaden(flux, step, vsini=vsini, epsilon=epsilon)
    dlam = wave * step  # pixel widths in Angstrom
    ew_before, ew_after = ((1 - flux) * dlam).sum(), ((1 - broad) * dlam).sum()
    assert float(abs(ew_after / ew_before - 1)) < 1e-4
    assert not torch.allclose(broad, flux, atol=1e-6)  # it did broaden


@pytest.mark.parametrize("fwhm", [0.2, 3.0, 5.45, 40.0])
def test_02_gaussian_conserves_equivalent_width(fwhm):
    wave = uniform_log_grid(10_000.0, 10_060.0, resolving_power=150_000)
    step = log_step(wave)
    x = torch.log(wave / 10_030.0) / step
    flux = 1 - 0.7 * torch.exp(-0.5 * (x / 1.5) ** 2)
    broad = gaussian_broaden(flux, step, fwhm)
    dlam = wave * step
    ew_before, ew_after = ((1 - flux) * dlam).sum(), ((1 - broad) * dlam).sum()
    assert float(abs(ew_after / ew_before - 1)) < 1e-4
    assert not torch.allclose(broad, flux, atol=1e-6)


# ---------------------------------------------------------------------- 2. widths, moments


@pytest.mark.parametrize("resolving_power", [20_000, 55_000])
def test_03_gaussian_broadens_a_narrow_line_to_the_requested_fwhm(resolving_power):
    wave = uniform_log_grid(10_000.0, 10_020.0, resolving_power=150_000)
    step = log_step(wave)
    sigma0 = 0.5  # pixels: a delta-like line
    flux = absorption_lines(wave.numel(), [wave.numel() / 2 + 0.3], sigma0, [0.5])
    fwhm = resolving_power_to_fwhm_velocity(resolving_power)
    measured = fwhm_of_dip(gaussian_broaden(flux, step, fwhm)) * C * step  # km/s
    intrinsic = 2 * math.sqrt(2 * math.log(2)) * sigma0 * C * step
    assert math.sqrt(measured**2 - intrinsic**2) == pytest.approx(fwhm, rel=0.01)


def test_04_gaussian_broadenings_add_in_quadrature():
    flux = absorption_lines(600, [150.0, 300.4, 452.0], 1.0, [0.9, 0.5, 0.3])
    f1, f2 = 6.0, 8.0  # km/s on a 1 km/s grid: sigma 2.5 and 3.4 pixels
    twice = gaussian_broaden(gaussian_broaden(flux, PIXEL_STEP, f1), PIXEL_STEP, f2)
    once = gaussian_broaden(flux, PIXEL_STEP, math.hypot(f1, f2))
    depth = float((1 - once).max())
    assert float((twice - once).abs().max()) / depth < 1e-3


@pytest.mark.parametrize("vsini", [0.3, 0.9, 2.5, 7.3, 45.0])
@pytest.mark.parametrize("epsilon", [0.0, 0.6, 1.0])
def test_05_rotation_kernel_second_moment_is_grays(vsini, epsilon):
    kernel = impulse_response(rotational_broaden, vsini=vsini, epsilon=epsilon)
    v = torch.arange(kernel.numel(), dtype=F64) - kernel.numel() // 2  # km/s
    assert float(kernel.sum()) == pytest.approx(1.0, abs=1e-12)
    assert float((v * kernel).sum()) == pytest.approx(0.0, abs=1e-10)
    second = float((v**2 * kernel).sum())
    assert second == pytest.approx(gray_variance(vsini, epsilon), rel=0.01)
    assert second == pytest.approx(gray_variance(vsini, epsilon), rel=1e-8)  # in fact exact
    half_width = math.floor(vsini) + 3  # the profile's reach plus the cubic kernel's 3 pixels
    assert float(kernel[(v.abs() > half_width)].abs().max()) < 1e-15  # compact support


@pytest.mark.parametrize("fwhm", [0.3, 1.0, 1.4, 1.65, 2.0, 3.5, 12.0])
def test_06_gaussian_kernel_variance_right_even_below_a_pixel(fwhm):
    kernel = impulse_response(gaussian_broaden, fwhm_velocity=fwhm)
    v = torch.arange(kernel.numel(), dtype=F64) - kernel.numel() // 2
    sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))  # pixels: 0.13 to 5.1
    assert float(kernel.sum()) == pytest.approx(1.0, abs=1e-12)
    variance = float((v**2 * kernel).sum())
    assert variance == pytest.approx(sigma**2, rel=3e-4)
    if not 0.6 < sigma < 1.4:  # Keys-integrated below, point-sampled above: exact
        assert variance == pytest.approx(sigma**2, rel=1e-8)


def test_07_gaussian_kernel_continuous_in_fwhm_across_the_blend():
    fwhm = torch.linspace(0.5, 3.5, 301, dtype=F64)  # sigma 0.21 to 1.5 pixels
    delta = torch.zeros(41, dtype=F64)
    delta[20] = 1.0
    kernels = gaussian_broaden(delta.expand(len(fwhm), -1), PIXEL_STEP, fwhm)
    steps = torch.diff(kernels, dim=0).abs().max(dim=-1).values
    assert float(steps.max()) < 0.02  # no jump anywhere (a 1% change of FWHM per step)
    assert float(torch.diff(steps).abs().max()) < 2e-3  # and no kink


def converged_rotation(centers, sigma, depths, n, vsini, epsilon):
    """Gray-broadened Gaussian lines at the pixels by 400-point quadrature (pixels = km/s)."""
    theta, weight = np.polynomial.legendre.leggauss(400)
    theta, weight = theta * np.pi / 2, weight * np.pi / 2
    x = np.sin(theta)
    profile = (2 * (1 - epsilon) * np.cos(theta) + np.pi * epsilon / 2 * np.cos(theta) ** 2)
    density = profile * np.cos(theta) * weight / (np.pi * (1 - epsilon / 3))
    pixels = np.arange(n)[:, None] - vsini * x[None, :]
    flux = np.ones_like(pixels)
    for center, depth in zip(centers, depths, strict=True):
        flux -= depth * np.exp(-0.5 * ((pixels - center) / sigma) ** 2)
    return flux @ density


@pytest.mark.parametrize("vsini, tolerance", [
    (0.5, 1.5e-3), (1.5, 1.5e-3), (3.0, 5e-4), (6.0, 2e-4), (12.0, 1e-4), (30.0, 2e-5)])
def test_08_rotation_matches_a_converged_reference(vsini, tolerance):
    # a point-sampled kernel (as PyAstronomy's rotBroad) is off by 9e-3, 9e-3, 2e-2, 5e-3,
    # 2e-3, 5e-4 here; a box-integrated one by 9e-3, 7e-3, 5e-3, 1e-3, 3e-4, 7e-5
    centers, depths = [100.3, 130.7, 170.1], [0.8, 0.5, 0.3]
    flux = absorption_lines(300, centers, 1.5, depths)
    ours = rotational_broaden(flux, PIXEL_STEP, vsini, 0.6).numpy()
    reference = converged_rotation(centers, 1.5, depths, 300, vsini, 0.6)
    assert np.abs(ours - reference)[50:250].max() < tolerance


@pytest.mark.parametrize("sigma_lsf", [0.3, 0.7, 1.27, 2.0, 4.0])
def test_09_gaussian_matches_the_analytic_result(sigma_lsf):
    # a Gaussian line broadened by a Gaussian is a Gaussian of the summed variances
    sigma_line, x = 1.5, torch.arange(300, dtype=F64)
    flux = absorption_lines(300, [150.3], sigma_line, [0.8])
    total = math.hypot(sigma_line, sigma_lsf)
    exact = 1 - 0.8 * sigma_line / total * torch.exp(-0.5 * ((x - 150.3) / total) ** 2)
    fwhm = sigma_lsf * 2 * math.sqrt(2 * math.log(2))  # km/s = pixels here
    error = float((gaussian_broaden(flux, PIXEL_STEP, fwhm) - exact).abs().max())
    assert error < (1.5e-3 if sigma_lsf < 1 else 1e-7)  # point-sampled: spectral accuracy


# -------------------------------------------------------------------------- 3. PyAstronomy


def test_10_rotation_agrees_with_pyastronomy_rotbroad():
    pyasl = pytest.importorskip("PyAstronomy.pyasl")
    # rotBroad needs a grid uniform in wavelength; over 6000-6012 A such a grid is uniform in
    # ln(lambda) to 0.1% (the kernel width in pixels drifts by +-0.1% across it, which moves
    # the broadened flux by < 1e-4), so both codes run on the same samples.
    wave = np.linspace(6000.0, 6012.0, 2001)
    centers, depths = [6002.5, 6005.0, 6006.1, 6009.3], [0.8, 0.4, 0.6, 0.3]
    flux = np.ones_like(wave)
    for center, depth in zip(centers, depths, strict=True):
        flux -= depth * np.exp(-0.5 * ((wave - center) / 0.03) ** 2)
    step = (wave[1] - wave[0]) / wave.mean()
    for vsini, epsilon in [(15.0, 0.6), (6.0, 0.3), (40.0, 1.0)]:
        reference = pyasl.rotBroad(wave, flux, epsilon, vsini)
        ours = rotational_broaden(torch.as_tensor(flux), step, vsini, epsilon).numpy()
        margin = int(vsini / C * wave.max() / (wave[1] - wave[0])) + 5
        inner = slice(margin, -margin)
        assert np.abs(ours - reference)[inner].max() < 1e-3
        assert np.abs(flux - reference)[inner].max() > 0.05  # the comparison is not vacuous


# ------------------------------------------------------------------------- 4. gradients


def test_11_gradcheck_rotation_flux_vsini_epsilon():
    torch.manual_seed(1)
    flux = (1 - 0.5 * torch.rand(2, 24, dtype=F64)).requires_grad_()
    vsini = torch.tensor([1.3, 6.7], dtype=F64, requires_grad=True)  # analytic, quadrature
    epsilon = torch.tensor([0.3, 0.8], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda f, v, e: rotational_broaden(f, PIXEL_STEP, v, e), (flux, vsini, epsilon))


def test_12_gradgradcheck_rotation_vsini():
    flux = absorption_lines(20, [9.6], 1.0, [0.6]).unsqueeze(0)
    vsini = torch.tensor([2.2], dtype=F64, requires_grad=True)
    assert torch.autograd.gradgradcheck(
        lambda v: rotational_broaden(flux, PIXEL_STEP, v, 0.6), (vsini,))


def test_13_gradcheck_gaussian_flux_fwhm():
    torch.manual_seed(2)
    flux = (1 - 0.5 * torch.rand(3, 30, dtype=F64)).requires_grad_()
    fwhm = torch.tensor([0.9, 2.0, 6.5], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda f, w: gaussian_broaden(f, PIXEL_STEP, w), (flux, fwhm))


def test_14_gradcheck_tabulated_flux_kernel():
    torch.manual_seed(3)
    flux = (1 - 0.5 * torch.rand(2, 20, dtype=F64)).requires_grad_()
    velocity = torch.linspace(-4.0, 3.0, 15, dtype=F64)
    kernel = (torch.rand(15, dtype=F64) + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda f, k: tabulated_broaden(f, PIXEL_STEP, velocity, k), (flux, kernel))


@pytest.mark.parametrize("vsini", [0.05, 0.2, 0.5, 0.9, 1.7, 2.5, 10.0, 60.0])  # pixels
def test_15_vsini_gradient_nonzero_from_fractions_to_many_pixels(vsini):
    flux = absorption_lines(301, [150.2], 0.8, [0.7])
    v = torch.tensor(vsini, dtype=F64, requires_grad=True)
    center = rotational_broaden(flux, PIXEL_STEP, v)[150]
    (grad,) = torch.autograd.grad(center, v)
    assert math.isfinite(float(grad)) and float(grad) > 0  # the line core fills in
    h = 1e-6 * vsini
    numeric = (rotational_broaden(flux, PIXEL_STEP, vsini + h)[150]
               - rotational_broaden(flux, PIXEL_STEP, vsini - h)[150]) / (2 * h)
    assert float(grad) == pytest.approx(float(numeric), rel=1e-4)


# ---------------------------------------------------------------- 5. small widths, aliasing


def test_16_zero_width_is_the_identity_and_small_widths_tend_to_it():
    flux = absorption_lines(200, [100.3], 1.0, [0.8])
    assert torch.equal(rotational_broaden(flux, PIXEL_STEP, 0.0), flux)
    assert torch.equal(gaussian_broaden(flux, PIXEL_STEP, 0.0), flux)
    batch = rotational_broaden(flux.expand(2, -1), PIXEL_STEP, torch.tensor([0.0, 40.0]))
    assert torch.equal(batch[0], flux)  # exact even when the batch goes through the FFT
    change = {w: float((rotational_broaden(flux, PIXEL_STEP, w) - flux).abs().max())
              for w in (0.025, 0.05, 0.1)}
    # at 0.1 pixel a line one pixel wide (depth 0.8) moves by 1.1e-3: < 0.2% of its depth
    assert change[0.1] < 2e-3 * 0.8
    assert change[0.1] / change[0.05] == pytest.approx(4.0, rel=0.02)  # smoothly: ~ vsini^2
    assert change[0.05] / change[0.025] == pytest.approx(4.0, rel=0.02)


def test_17_line_core_rises_smoothly_with_vsini_without_aliasing():
    flux = absorption_lines(121, [60.0], 0.7, [0.8])
    widths = torch.arange(0.2, 8.0, 0.05, dtype=F64)
    core = rotational_broaden(flux.expand(len(widths), -1), PIXEL_STEP, widths)[:, 60]
    rise = torch.diff(core)
    assert bool((rise > 0).all())  # monotonic: no jumps as kernel edges cross pixels
    # smooth: steps change slowly (a point-sampled kernel gives jumps of order the step)
    assert float(torch.diff(rise).abs().max()) < 0.1 * float(rise.abs().max())


# ------------------------------------------------------------------ 6. batching, dtypes


def test_18_per_row_parameters_equal_row_by_row():
    torch.manual_seed(4)
    flux = 1 - 0.5 * torch.rand(4, 300, dtype=F64)
    vsini = torch.tensor([0.0, 0.7, 12.0, 33.0], dtype=F64)
    epsilon = torch.tensor([0.0, 0.5, 0.6, 1.0], dtype=F64)
    batched = rotational_broaden(flux, PIXEL_STEP, vsini, epsilon)
    for i in range(4):
        one = rotational_broaden(flux[i], PIXEL_STEP, float(vsini[i]), float(epsilon[i]))
        torch.testing.assert_close(batched[i], one, rtol=0, atol=1e-13)
    fwhm = torch.tensor([0.0, 1.5, 9.0, 40.0], dtype=F64)
    batched = gaussian_broaden(flux, PIXEL_STEP, fwhm)
    for i in range(4):
        torch.testing.assert_close(batched[i], gaussian_broaden(flux[i], PIXEL_STEP,
                                                                float(fwhm[i])),
                                   rtol=0, atol=1e-13)
    velocity = torch.linspace(-6.0, 6.0, 25, dtype=F64)
    kernels = torch.stack([torch.exp(-velocity**2 / (2 * s**2)) for s in (0.5, 1, 2, 3)])
    batched = tabulated_broaden(flux, PIXEL_STEP, velocity, kernels)
    for i in range(4):
        torch.testing.assert_close(batched[i], tabulated_broaden(flux[i], PIXEL_STEP,
                                                                 velocity, kernels[i]),
                                   rtol=0, atol=1e-13)


def test_19_broadcasting_shapes():
    flux = torch.ones(3, 1, 50, dtype=F64)
    out = rotational_broaden(flux, PIXEL_STEP, torch.tensor([1.0, 2.0]), 0.6)
    assert out.shape == (3, 2, 50)
    assert gaussian_broaden(torch.ones(50), PIXEL_STEP, torch.tensor([1.0, 2.0])).shape == (2, 50)
    with pytest.raises(SpectrumInputError, match="broadcast"):
        rotational_broaden(torch.ones(3, 50), PIXEL_STEP, torch.tensor([1.0, 2.0]))


@pytest.mark.parametrize("method", ["rotation", "gaussian", "tabulated"])
def test_20_float32_matches_float64(method):
    flux64 = absorption_lines(2000, [500.0, 1000.3, 1500.0], 1.5, [0.8, 0.5, 0.3])
    flux64 = flux64.expand(2, -1)
    call = {
        "rotation": lambda f: rotational_broaden(f, PIXEL_STEP, torch.tensor([3.3, 45.0])),
        "gaussian": lambda f: gaussian_broaden(f, PIXEL_STEP, torch.tensor([2.0, 30.0])),
        "tabulated": lambda f: tabulated_broaden(
            f, PIXEL_STEP, torch.linspace(-9.0, 9.0, 37),
            1 - torch.linspace(-9.0, 9.0, 37).abs() / 10),
    }[method]
    out32, out64 = call(flux64.to(torch.float32)), call(flux64)
    assert out32.dtype == torch.float32
    assert float((out32.double() - out64).abs().max()) < 1e-5


def test_21_float32_gradients_match_float64():
    flux64 = absorption_lines(400, [100.0, 200.3, 300.0], 1.5, [0.8, 0.5, 0.3])
    grads = []
    for dtype in (torch.float32, F64):
        vsini = torch.tensor([2.5, 40.0], requires_grad=True)  # direct and FFT paths
        fwhm = torch.tensor([1.5, 9.0], requires_grad=True)
        flux = flux64.to(dtype).expand(2, -1)
        out = gaussian_broaden(rotational_broaden(flux, PIXEL_STEP, vsini), PIXEL_STEP, fwhm)
        grads.append(torch.autograd.grad((out - 0.9).square().sum(), (vsini, fwhm)))
    for g32, g64 in zip(*grads, strict=True):
        torch.testing.assert_close(g32, g64, rtol=1e-3, atol=0)


@pytest.mark.parametrize("taps", [5, 31, 95])
def test_22_direct_and_fft_convolutions_agree(taps):
    torch.manual_seed(5)
    flux = torch.rand(3, 257, dtype=F64)
    kernel = torch.rand(3, taps, dtype=F64)  # asymmetric, per row
    direct, fft = _convolve(flux, kernel, "direct"), _convolve(flux, kernel, "fft")
    torch.testing.assert_close(direct, fft, rtol=0, atol=1e-12)
    # and both equal the textbook same-size convolution with replicate padding
    half = taps // 2
    padded = torch.cat([flux[:, :1].expand(3, half), flux, flux[:, -1:].expand(3, half)], -1)
    reference = torch.stack([
        torch.as_tensor(np.convolve(padded[i].numpy(), kernel[i].numpy(), mode="valid"))
        for i in range(3)])
    torch.testing.assert_close(direct, reference, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["direct", "fft"])
@pytest.mark.parametrize("shared", [True, False])
def test_23_convolution_gradients_and_hessians(method, shared):
    # the FFT path has a hand-written backward: check it to first and second order
    torch.manual_seed(6)
    flux = torch.rand(3, 17, dtype=F64, requires_grad=True)
    kernel = torch.rand(1 if shared else 3, 7, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f, k: _convolve(f, k, method), (flux, kernel))
    assert torch.autograd.gradgradcheck(lambda f, k: _convolve(f, k, method), (flux, kernel))


def test_24_edges_replicate_and_invent_no_flux():
    flat = torch.full((2, 300), 0.97, dtype=F64)
    for out in (rotational_broaden(flat, PIXEL_STEP, torch.tensor([5.0, 80.0])),
                gaussian_broaden(flat, PIXEL_STEP, torch.tensor([3.0, 60.0]))):
        torch.testing.assert_close(out, flat, rtol=0, atol=1e-14)  # edges included
    ramp = torch.linspace(0.9, 1.1, 300, dtype=F64)
    out = rotational_broaden(ramp, PIXEL_STEP, 20.0)
    inner = slice(25, -25)  # beyond the kernel's reach a linear ramp is kept exactly
    torch.testing.assert_close(out[inner], ramp[inner], rtol=0, atol=1e-12)
    assert float(out[0]) > float(ramp[0])  # at the ends the flux is extended as a constant
    assert float(out[0]) < float(ramp[25])


def test_25_tabulated_kernel_direction_and_agreement_with_gaussian():
    delta = torch.zeros(200, dtype=F64)
    delta[50] = 1.0
    velocity = torch.arange(0.0, 10.5, 0.5, dtype=F64)  # one-sided: redward only
    out = tabulated_broaden(delta, PIXEL_STEP, velocity, 10 - velocity)
    assert float(out[:50].abs().max()) < 1e-15 and float(out[51:61].min()) > 0
    velocity = torch.linspace(-40.0, 40.0, 801, dtype=F64)
    sigma = 6.0
    gaussian = torch.exp(-0.5 * (velocity / sigma) ** 2)
    flux = absorption_lines(300, [150.0], 1.0, [0.8])
    expected = gaussian_broaden(flux, PIXEL_STEP, sigma * 2 * math.sqrt(2 * math.log(2)))
    torch.testing.assert_close(tabulated_broaden(flux, PIXEL_STEP, velocity, gaussian),
                               expected, rtol=0, atol=1e-8)


# ------------------------------------------------------------------------------ 7. grids


def test_26_uniform_log_grid_and_log_step():
    grid = uniform_log_grid(8_000.0, 8_100.0, resolving_power=55_000, samples_per_resolution=2.5)
    assert grid.dtype == F64 and float(grid[0]) == 8_000.0
    assert float(grid[-1]) >= 8_100.0 > float(grid[-2])
    assert log_step(grid) == pytest.approx(1 / (2.5 * 55_000), rel=1e-12)
    rows = torch.stack([grid, grid * 1.01])  # rows may start elsewhere, same step
    assert log_step(rows) == pytest.approx(1 / (2.5 * 55_000), rel=1e-12)
    # a float32 grid at high R carries rounding of a few % of a step: still accepted
    fine = uniform_log_grid(10_000.0, 10_300.0, resolving_power=150_000)
    assert log_step(fine.float()) == pytest.approx(log_step(fine), rel=1e-4)
    assert resolving_power_to_fwhm_velocity(55_000) == pytest.approx(C / 55_000, rel=1e-15)
    power = torch.tensor([2e4, 1.2e5], dtype=F64, requires_grad=True)
    fwhm = resolving_power_to_fwhm_velocity(power)
    torch.testing.assert_close(fwhm, C / power.detach())
    fwhm.sum().backward()
    assert power.grad is not None


# ----------------------------------------------------------------------------- 8. errors


@pytest.mark.parametrize("call, error, match", [
    (lambda: rotational_broaden(torch.ones(20), PIXEL_STEP, -1.0), LabelError,
     r"vsini must lie in \[0, .*got -1.0"),
    (lambda: rotational_broaden(torch.ones(2, 20), PIXEL_STEP, torch.tensor([1.0, -0.5])),
     LabelError, r"vsini .*got -0.5 at index \(1,\)"),
    (lambda: rotational_broaden(torch.ones(20), PIXEL_STEP, float("nan")), LabelError,
     "vsini .*nan"),
    (lambda: rotational_broaden(torch.ones(20), PIXEL_STEP, 5.0, 1.2), LabelError,
     r"epsilon must lie in \[0, 1\].*got 1.2"),
    (lambda: rotational_broaden(torch.ones(20), PIXEL_STEP, 5.0, -0.1), LabelError,
     r"epsilon .*got -0.1"),
    (lambda: gaussian_broaden(torch.ones(20), PIXEL_STEP, -3.0), LabelError,
     r"fwhm_velocity must lie in \[0, .*got -3.0"),
    (lambda: resolving_power_to_fwhm_velocity(50.0), LabelError,
     r"resolving_power R must lie in \(100, 1e\+07\).*got 50.0"),
    (lambda: resolving_power_to_fwhm_velocity(torch.tensor([5e4, 2e7])), LabelError,
     r"resolving_power R .*got 20000000.0 at index \(1,\)"),
    (lambda: uniform_log_grid(5000.0, 5010.0, resolving_power=1e8), LabelError,
     "resolving_power R"),
    (lambda: uniform_log_grid(5010.0, 5000.0, resolving_power=5e4), LabelError,
     "wavelength_max must exceed wavelength_min"),
    (lambda: log_step(torch.linspace(5000.0, 5100.0, 1000, dtype=F64)), SpectrumInputError,
     "not uniform in ln"),
    (lambda: log_step(torch.linspace(10_000.0, 10_300.0, 20_000)), SpectrumInputError,
     "not uniform in ln"),  # float32 linear grid: caught by the cumulative test
    (lambda: log_step(torch.stack([torch.exp(torch.arange(10.0, dtype=F64) * 1e-5),
                                   torch.exp(torch.arange(10.0, dtype=F64) * 2e-5)])),
     SpectrumInputError, "different steps"),
    (lambda: log_step(torch.tensor([3.0, 2.0, 1.0], dtype=F64)), SpectrumInputError,
     "increasing"),
    (lambda: rotational_broaden(torch.ones(20), 0.0, 5.0), SpectrumInputError,
     r"log_step .*must lie in \(0, 0.1\]"),
    (lambda: rotational_broaden(torch.ones(20, dtype=torch.int64), PIXEL_STEP, 5.0),
     SpectrumInputError, "floating-point"),
    (lambda: tabulated_broaden(torch.ones(20), PIXEL_STEP, torch.linspace(-2.0, 2.0, 5),
                               torch.tensor([0.1, 0.5, 1.0, -0.2, 0.1])),
     SpectrumInputError, r"non-negative, got -0.2\d* at index \(3,\)"),
    (lambda: tabulated_broaden(torch.ones(20), PIXEL_STEP, torch.linspace(1.0, 4.0, 5),
                               torch.ones(5)),
     SpectrumInputError, "must cover zero velocity"),
    (lambda: tabulated_broaden(torch.ones(20), PIXEL_STEP, torch.linspace(-2.0, 2.0, 5),
                               torch.ones(4)),
     SpectrumInputError, "matching velocity"),
])
def test_27_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
    assert issubclass(error, ValueError)
