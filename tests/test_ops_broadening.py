"""Rotation and Instrument operators: parameters, grids, per-order R, bad input."""

import re

import astropy.units as u
import numpy as np
import pytest
import torch

from stellarai.ops import (
    C_KMS,
    Instrument,
    OperatorError,
    ParameterError,
    Rotation,
    kernels,
)
from stellarai.ops.kernels import log_step, uniform_log_grid

F64 = torch.float64


@pytest.fixture
def line():
    wave = uniform_log_grid(10_000.0, 10_020.0, resolving_power=200_000)
    flux = 1 - 0.6 * torch.exp(-0.5 * ((wave - 10_010.0) / 0.02) ** 2)
    return wave, flux


def second_moment_kms(wave, flux):
    depth = (1 - flux).detach()
    v = C_KMS * torch.log(wave / 10_010.0)
    mean = (depth * v).sum() / depth.sum()
    return float((depth * (v - mean) ** 2).sum() / depth.sum())


def test_operators_are_thin_wrappers_of_the_kernels(line):
    wave, flux = line
    step = log_step(wave)
    _, rotated = Rotation(vsini=12 * u.km / u.s, epsilon=0.3)(wave, flux)
    vsini, epsilon = torch.tensor(12.0, dtype=F64), torch.tensor(0.3, dtype=F64)
    expected = kernels.rotational_broaden(flux, step, vsini, epsilon)
    assert torch.allclose(rotated, expected, rtol=0, atol=1e-15)
    _, smoothed = Instrument(resolving_power=40_000)(wave, flux)
    expected = kernels.gaussian_broaden(flux, step, torch.tensor(C_KMS / 40_000, dtype=F64))
    assert torch.allclose(smoothed, expected, rtol=0, atol=1e-15)
    _, same = Instrument(fwhm=C_KMS / 40_000 * u.km / u.s)(wave, flux)
    assert torch.allclose(same, expected, rtol=0, atol=1e-15)


def test_equivalent_width_kept_and_gaussians_add_in_quadrature(line):
    wave, flux = line
    ew = float((1 - flux).sum())
    for op in (Rotation(vsini=25.0), Instrument(resolving_power=30_000)):
        _, out = op(wave, flux)
        assert float((1 - out).detach().sum()) == pytest.approx(ew, rel=1e-4)
    # R1 then R2 equals one Gaussian with FWHM^2 = FWHM1^2 + FWHM2^2
    _, twice = (Instrument(resolving_power=60_000) | Instrument(resolving_power=80_000))(
        wave, flux)
    combined = 1 / np.sqrt(1 / 60_000**2 + 1 / 80_000**2)
    _, once = Instrument(resolving_power=combined)(wave, flux)
    assert torch.allclose(twice, once, atol=2e-6)
    # and the width grows as it should: sigma^2 adds
    before, after = second_moment_kms(wave, flux), second_moment_kms(wave, once.detach())
    sigma = C_KMS / combined / (2 * np.sqrt(2 * np.log(2)))
    assert after - before == pytest.approx(sigma**2, rel=1e-3)


def test_tabulated_kernel_and_per_order_resolving_power(line):
    wave, flux = line
    velocity = torch.linspace(-20.0, 20.0, 401, dtype=F64)
    triangle = torch.clamp(1 - velocity.abs() / 8, min=0)
    op = Instrument(kernel=(velocity.numpy() * u.km / u.s, triangle.numpy()))
    assert op.param_names == ()
    _, out = op(wave, flux)
    assert torch.equal(out, kernels.tabulated_broaden(flux, log_step(wave), velocity, triangle))
    assert op.reach(log_step(wave)) == pytest.approx(20.0 + C_KMS * log_step(wave))
    rows = flux.expand(3, -1)
    per_order = Instrument(resolving_power=[30_000.0, 55_000.0, 90_000.0])
    assert list(per_order.parameters["name"]) == [
        "resolving_power_o0", "resolving_power_o1", "resolving_power_o2"]
    _, out = per_order(wave.expand(3, -1), rows)
    for i, power in enumerate([30_000.0, 55_000.0, 90_000.0]):
        _, single = Instrument(resolving_power=power)(wave, flux)
        assert torch.allclose(out[i], single, atol=1e-14)


def test_from_data_reads_the_resolution_of_each_order():
    from specutils import Spectrum, SpectrumList

    def order(resolution):
        spec = Spectrum(flux=np.ones(10) * u.ct,
                        spectral_axis=np.linspace(9_000, 9_001, 10) * u.AA)
        if resolution is not None:
            spec.meta["instrumental_resolution"] = resolution
        return spec

    same = Instrument.from_data(SpectrumList([order(55_000), order(55_000)]))
    assert same.get("resolving_power") == 55_000
    mixed = Instrument.from_data(SpectrumList([order(45_000), order(55_000)]))
    assert mixed.get("resolving_power").value.tolist() == [45_000, 55_000]
    with pytest.raises(OperatorError, match=r"Instrument.from_data: order row\(s\) \[1\] carry "
                                            r"no instrumental resolution"):
        Instrument.from_data(SpectrumList([order(55_000), order(None)]))


def test_bad_input_names_operator_and_parameter(line):
    wave, flux = line
    with pytest.raises(ParameterError, match=r"Rotation: parameter 'vsini' = -1 km / s is "
                                             r"outside its bounds \[0, 500\] km / s"):
        Rotation(vsini=-1 * u.km / u.s)
    with pytest.raises(ParameterError, match=r"Rotation: parameter 'epsilon' = 1.2 is outside"):
        Rotation(epsilon=1.2)
    for bad in (100, 50.0, 1e7, 3e7):
        with pytest.raises(ParameterError, match=r"Instrument: parameter 'resolving_power' = "
                                                 rf"{re.escape(f'{bad:g}')} is outside its bounds "
                                                 r"\(100, 1e\+07\)"):
            Instrument(resolving_power=bad)
    with pytest.raises(ParameterError, match=r"Instrument: parameter 'fwhm' must be a velocity"):
        Instrument(fwhm=0.2 * u.AA)
    with pytest.raises(OperatorError, match="Instrument: give exactly one of resolving_power, "
                                            "fwhm and kernel"):
        Instrument(resolving_power=50_000, fwhm=6 * u.km / u.s)
    op = Rotation(vsini=5.0)
    with pytest.raises(ParameterError, match=r"Rotation: parameter 'vsini' = -2 km / s"):
        op.vsini = -2 * u.km / u.s
    linear = torch.linspace(10_000.0, 10_020.0, 500, dtype=F64)
    for operator in (Rotation(vsini=5.0), Instrument(resolving_power=50_000)):
        name = type(operator).__name__
        with pytest.raises(OperatorError, match=rf"{name} needs a wavelength grid uniform in "
                                                r"ln\(wavelength\)"):
            operator(linear, torch.ones_like(linear))
    # a value pushed out of the bounds by an optimizer is caught by the kernel, named
    with torch.no_grad():
        op.tensors["vsini"].fill_(-1.0)
    with pytest.raises(ParameterError, match="Rotation: vsini must lie in"):
        op(wave, flux)
