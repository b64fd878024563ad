"""Faddeeva function and Voigt profiles against scipy, gradients, window bounds."""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad
from scipy.special import voigt_profile as scipy_voigt
from scipy.special import wofz

from stellarai.synth import faddeeva, voigt_hjerting, voigt_profile
from stellarai.synth.profiles import _w_forward
from stellarai.synth.windows import window_half_width, wing_average

F64 = torch.float64
U = np.concatenate([np.linspace(-200.0, 200.0, 20001), np.geomspace(200.0, 1e7, 300),
                    -np.geomspace(200.0, 1e7, 300)])
A_VALUES = np.geomspace(1e-4, 1e3, 36)


@pytest.mark.parametrize("a", A_VALUES)
def test_faddeeva_matches_scipy_to_1e4_relative(a):
    ref = wofz(U + 1j * a)
    re, im = faddeeva(torch.tensor(U), torch.full((U.size,), a, dtype=F64))
    assert np.max(np.abs(re.numpy() - ref.real) / np.abs(ref.real)) < 1e-4
    nonzero = np.abs(ref.imag) > 0
    assert np.max(np.abs(im.numpy() - ref.imag)[nonzero] / np.abs(ref.imag[nonzero])) < 1e-4


def test_voigt_without_damping_is_gaussian_to_1e10():
    h = voigt_hjerting(torch.zeros(1, dtype=F64), torch.tensor(U[:20001]))
    assert np.max(np.abs(h.numpy() - np.exp(-U[:20001] ** 2))) < 1e-10


@pytest.mark.parametrize(("sigma", "gamma"), [(1.0, 1e-3), (0.3, 0.5), (2.0, 5.0), (0.05, 0.01)])
def test_voigt_profile_matches_scipy(sigma, gamma):
    x = np.linspace(-40 * sigma, 40 * sigma, 4001)
    ours = voigt_profile(torch.tensor(x), sigma, gamma).numpy()
    ref = scipy_voigt(x, sigma, gamma)
    assert np.max(np.abs(ours - ref) / ref) < 1e-4
    assert abs(np.trapezoid(ours, x) / np.trapezoid(ref, x) - 1) < 1e-6


def test_near_and_far_branches_agree_where_both_hold():
    u = torch.tensor(np.linspace(6.0, 150.0, 3000), dtype=F64)
    for a in (1e-4, 0.05, 2.0):
        y = torch.full_like(u, a)
        near, _ = _w_forward(u, y, "near")
        far, _ = _w_forward(u, y, "far")
        assert float(((near - far).abs() / far).max()) < 5e-5


def test_float32_is_accurate_to_1e6_absolute():
    x = torch.tensor(U[:20001], dtype=torch.float32)
    re, _ = faddeeva(x, torch.full_like(x, 0.01))
    assert re.dtype == torch.float32
    assert np.max(np.abs(re.double().numpy() - wofz(U[:20001] + 0.01j).real)) < 1e-6


def test_gradients_are_exact_first_and_second_order():
    x = torch.tensor([0.3, -2.0, 5.9, 6.1, 40.0, -300.0], dtype=F64, requires_grad=True)
    y = torch.tensor([0.01, 0.5, 0.2, 0.2, 1.0, 3.0], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(faddeeva, (x, y))
    assert torch.autograd.gradgradcheck(faddeeva, (x, y))
    sigma = torch.tensor(0.7, dtype=F64, requires_grad=True)
    gamma = torch.tensor(0.2, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s, g: voigt_profile(x.detach(), s, g), (sigma, gamma))


def test_wing_average_is_the_exact_mean():
    for a in (1e-4, 0.02, 0.5, 3.0):
        for lo, width in ((6.0, 0.3), (9.0, 2.0), (40.0, 7.0), (-15.0, 1.0)):
            exact = quad(lambda v, a=a: wofz(v + 1j * a).real, lo, lo + width, epsrel=1e-12)[0]
            ours = float(wing_average(torch.tensor(a, dtype=F64), torch.tensor(lo, dtype=F64),
                                      torch.tensor(lo + width, dtype=F64)))
            assert abs(ours * width / exact - 1) < 1e-5


@pytest.mark.parametrize("tolerance", [1e-3, 1e-5, 1e-9])
def test_window_half_width_bounds_the_profile(tolerance):
    eta0 = torch.tensor(np.geomspace(1e-6, 1e6, 61), dtype=F64)[:, None]
    a = torch.tensor(np.geomspace(1e-4, 3.0, 25), dtype=F64)[None, :]
    eta0, a = torch.broadcast_tensors(eta0, a)
    u = window_half_width(eta0, a, tolerance)
    beyond = eta0 * voigt_hjerting(a, u) * (1 + 1e-9)
    assert float(beyond.max()) <= tolerance
    # and it is not wildly generous: the bound is within a factor 3 of the true radius
    assert float((eta0 * voigt_hjerting(a, u / 3)).max()) > tolerance


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="y must be finite and >= 0"):
        faddeeva(torch.tensor([1.0]), torch.tensor([-0.1]))
    with pytest.raises(ValueError, match="x must be finite"):
        faddeeva(torch.tensor([math.nan]), torch.tensor([0.1]))
    with pytest.raises(ValueError, match="sigma must be > 0"):
        voigt_profile(torch.tensor([0.0]), 0.0, 0.1)
