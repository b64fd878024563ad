"""Operator algebra: parameters, units, bounds, composition, naming, tables, specutils I/O."""

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.nddata import StdDevUncertainty
from astropy.table import QTable
from specutils import Spectrum, SpectrumList

from stellarai.ops import (
    ChebyshevContinuum,
    Doppler,
    GaussianPrior,
    GridCoverageError,
    Instrument,
    OperatorError,
    ParameterError,
    Pipe,
    Product,
    Resample,
    Rotation,
    Telluric,
    Template,
    model_grid_for,
)
from stellarai.ops.kernels import uniform_log_grid
from stellarai.spectra import OrderBatch

F64 = torch.float64


def line_template(center=10_830.0, sigma=0.1, depth=0.5, lo=10_700.0, hi=10_960.0, n=40_001):
    wl = torch.linspace(lo, hi, n, dtype=F64)
    return wl, 1 - depth * torch.exp(-0.5 * ((wl - center) / sigma) ** 2)


def data_orders(n_orders=2, npix=600, start=10_800.0, step=0.05, resolution=50_000):
    spectra = []
    for i in range(n_orders):
        wl = start + 30.0 * i + step * np.arange(npix)
        spectra.append(Spectrum(flux=np.ones(npix) * u.ct, spectral_axis=wl * u.AA,
                                uncertainty=StdDevUncertainty(np.full(npix, 0.02)),
                                meta={"m": 40 + i, "instrumental_resolution": resolution}))
    return SpectrumList(spectra)


# ------------------------------------------------------------------ parameters


def test_quantity_and_float_constructors_agree_in_canonical_units():
    a = Doppler(rv=-9.6 * u.km / u.s)
    b = Doppler(rv=-9600 * u.m / u.s)
    c = Doppler(rv=-9.6)
    assert a.get("rv") == b.get("rv") == c.get("rv") == -9.6 * u.km / u.s
    assert a.tensors["rv"].dtype == F64 and a.tensors["rv"].requires_grad


def test_wrong_units_name_operator_and_parameter():
    with pytest.raises(ParameterError, match=r"Doppler: parameter 'rv' must be a velocity"):
        Doppler(rv=5 * u.AA)
    with pytest.raises(ParameterError, match=r"Rotation: parameter 'epsilon' must be "
                                             r"dimensionless"):
        Rotation(vsini=1, epsilon=0.5 * u.km / u.s)
    with pytest.raises(ParameterError, match=r"Rotation: parameter 'vsini' must be a velocity"):
        Rotation(vsini=3 * u.K)
    op = Doppler()
    with pytest.raises(ParameterError, match=r"Doppler: parameter 'rv' must be a velocity"):
        op.rv = 1 * u.s


def test_out_of_bounds_is_an_error_never_clipped():
    with pytest.raises(ParameterError, match=r"Doppler: parameter 'rv' = 2000 km / s is outside "
                                             r"its bounds \[-1000, 1000\] km / s"):
        Doppler(rv=2000 * u.km / u.s)
    op = Doppler(rv=1 * u.km / u.s, bounds={"rv": (-5, 5) * u.km / u.s})
    with pytest.raises(ParameterError, match=r"'rv' = 6 km / s is outside its bounds \[-5, 5\]"):
        op.rv = 6 * u.km / u.s
    assert op.rv == 1 * u.km / u.s  # unchanged after the refused assignment


def test_fixed_free_prior_and_unknown_names():
    op = Rotation(vsini=3, fixed=["vsini"], prior={"epsilon": (0.6, 0.1)})
    assert op.free_names == ()
    op.free("vsini", "epsilon")
    assert op.free_names == ("vsini", "epsilon")
    assert op.tensors["epsilon"].requires_grad
    assert op._specs["epsilon"].prior == GaussianPrior(0.6, 0.1)
    expected = -np.log(0.1 * np.sqrt(2 * np.pi))
    assert float(op.log_prior().detach()) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ParameterError, match=r"Rotation has no parameter 'rv' \(its parameters: "
                                             r"vsini, epsilon\)"):
        op.set(rv=1.0)
    with pytest.raises(ParameterError, match="sigma"):
        Doppler(prior={"rv": (0.0, -1.0)})


def test_free_parameters_are_live_torch_parameters():
    op = Doppler(rv=2.0)
    free = op.free_parameters()
    assert list(free) == ["rv"] and isinstance(free["rv"], torch.nn.Parameter)
    assert list(op.parameters()) == [free["rv"]]  # torch's API still works
    with torch.no_grad():
        free["rv"].add_(1.0)
    assert op.rv == 3.0 * u.km / u.s


# ------------------------------------------------------------------ composition


def test_pipe_applies_right_after_left_and_order_matters():
    wl, flux = line_template()
    grid = uniform_log_grid(10_760.0, 10_900.0, resolving_power=100_000)
    data = torch.linspace(10_800.0, 10_860.0, 1201, dtype=F64)
    shift_then_resample = Template((wl, flux), grid=grid) | Doppler(rv=30.0) | Resample(data)
    out_wl, out_flux = shift_then_resample(None, None)
    assert torch.equal(out_wl[0], data)
    # the line moved by 30 km/s: its minimum is near 10830 * (1 + 1e-4)
    assert out_wl[0, out_flux[0].argmin()].item() == pytest.approx(10_831.08, abs=0.06)
    # resample first, then shift: the grid moves, the line stays at the same pixel
    resample_then_shift = Template((wl, flux), grid=grid) | Resample(data) | Doppler(rv=30.0)
    w2, f2 = resample_then_shift(None, None)
    assert int(f2[0].argmin()) == int((data - 10_830.0).abs().argmin())
    beta = 30.0 / 299_792.458
    assert w2[0, 0].item() == pytest.approx(10_800.0 * np.sqrt((1 + beta) / (1 - beta)),
                                            rel=1e-14)


def test_product_multiplies_on_the_left_grid_and_interpolates_the_right():
    grid = torch.linspace(10_800.0, 10_810.0, 101, dtype=F64)
    a = Template((grid, torch.full_like(grid, 2.0)))
    b = Template((grid, torch.linspace(1.0, 3.0, 101, dtype=F64)))
    w, f = (a * b)(None, None)
    assert torch.allclose(f[0], 2.0 * torch.linspace(1.0, 3.0, 101, dtype=F64))
    # a finer right-hand grid is interpolated onto the left one
    fine = torch.linspace(10_790.0, 10_820.0, 3001, dtype=F64)
    c = Template((fine, fine - 10_000.0))
    w, f = (a * c)(None, None)
    assert torch.allclose(f[0], 2.0 * (grid - 10_000.0), rtol=1e-12)
    # ... but must cover it
    short = Template((grid[:50], torch.ones(50, dtype=F64)))
    with pytest.raises(GridCoverageError, match=r"Product: the grid of Template "
                                                r"\(10800.000-10804.900 Angstrom\) does not cover"):
        (a * short)(None, None)


def test_multiplicative_factor_first_is_evaluated_on_the_source_grid():
    grid = torch.linspace(10_800.0, 10_810.0, 11, dtype=F64)
    star = Template((grid, torch.full_like(grid, 2.0)))
    continuum = ChebyshevContinuum(degree=1, coefficients=[1.0, 0.5])
    w1, f1 = (continuum * star)(None, None)
    w2, f2 = (star * continuum)(None, None)
    assert torch.equal(w1, w2) and torch.equal(f1, f2)
    assert f1[0, 0].item() == pytest.approx(1.0) and f1[0, -1].item() == pytest.approx(3.0)
    # a product of factors alone multiplies an input spectrum
    _, f3 = (continuum * continuum)(grid, torch.ones_like(grid))
    assert torch.allclose(f3, (f1[0] / 2) ** 2)


def test_name_clashes_get_the_member_index_like_astropy():
    chain = Doppler(rv=1.0) | Rotation(vsini=2.0) | Doppler(rv=3.0)
    assert chain.param_names == ("rv_0", "vsini", "epsilon", "rv_2")
    assert chain.get("rv_2") == 3.0 * u.km / u.s
    tel = Telluric.from_muler("hpf")
    star = Template(line_template(lo=10_820.0, hi=10_960.0))
    model = (star | Rotation(vsini=3.0) | Doppler(rv=-9.6)) * tel
    assert model.param_names == ("vsini", "epsilon", "rv_2", "strength", "rv_3")
    assert [type(op).__name__ for op in model.operators] == [
        "Template", "Rotation", "Doppler", "Telluric"]
    # unique names stay as they are
    assert (Doppler() | Rotation()).param_names == ("rv", "vsini", "epsilon")
    # the same operator used twice is one member with one set of parameters
    d = Doppler(rv=1.0)
    assert (d | d).param_names == ("rv",)


def test_parameters_table_contents():
    chain = (Template(line_template()) | Rotation(vsini=3 * u.km / u.s)
             | Doppler(rv=-9.6 * u.km / u.s, prior={"rv": (-9 * u.km / u.s, 2 * u.km / u.s)})
             | Instrument(resolving_power=55_000))
    table = chain.parameters
    assert isinstance(table, QTable)
    assert table.colnames == ["name", "value", "unit", "free", "lower", "upper", "prior",
                              "operator", "index"]
    assert list(table["name"]) == ["vsini", "epsilon", "rv", "resolving_power"]
    assert list(table["value"]) == [3.0, 0.6, -9.6, 55_000.0]
    assert list(table["unit"]) == ["km / s", "", "km / s", ""]
    assert list(table["free"]) == [True, False, True, False]
    assert list(table["lower"]) == [0.0, 0.0, -1000.0, 100.0]
    assert list(table["upper"]) == [500.0, 1.0, 1000.0, 1e7]
    assert list(table["prior"]) == ["", "", "N(-9, 2)", ""]
    assert list(table["operator"]) == ["Rotation", "Rotation", "Doppler", "Instrument"]
    assert list(table["index"]) == [1, 1, 2, 3]
    # per-order parameters give one row per order
    cont = ChebyshevContinuum(degree=1, n_orders=3)
    assert list(cont.parameters["name"]) == ["c0_o0", "c0_o1", "c0_o2", "c1_o0", "c1_o1",
                                             "c1_o2"]
    cont.set(c1_o2=0.25)
    assert cont.get("c1").value.tolist() == [0.0, 0.0, 0.25]


def test_repr_is_readable():
    chain = Doppler(rv=-9.6 * u.km / u.s) | Rotation(vsini=3 * u.km / u.s)
    assert repr(chain) == ("<Pipe: Doppler(rv=-9.6 km / s) | Rotation(vsini=3 km / s, "
                           "epsilon=0.6 (fixed))>")
    product = (Template(line_template()) | Doppler()) * ChebyshevContinuum(degree=0)
    assert repr(product) == ("<Product: (Template(<1 x 40001 px, 10700.000-10960.000 "
                             "Angstrom>) | Doppler(rv=0 km / s)) * ChebyshevContinuum(c0=1)>")
    long = product | Instrument(resolving_power=55_000) | Rotation()
    assert repr(long).splitlines()[1:] == [
        "  (Template(<1 x 40001 px, 10700.000-10960.000 Angstrom>) | Doppler(rv=0 km / s)) * "
        "ChebyshevContinuum(c0=1)",
        "  | Instrument(resolving_power=55000 (fixed))",
        "  | Rotation(vsini=0 km / s, epsilon=0.6 (fixed))",
        ">"]


def test_bad_compositions_are_refused():
    star = Template(line_template())
    with pytest.raises(OperatorError, match=r"Pipe: Template is a source .* member 1 of "
                                            r"Doppler \| Template"):
        Doppler() | star
    with pytest.raises(OperatorError, match="Product: cannot multiply a source"):
        star * Doppler()
    with pytest.raises(OperatorError, match="every member must be a stellarai.ops operator"):
        Pipe(Doppler(), "not an operator")
    with pytest.raises(OperatorError, match="Doppler transforms a spectrum and got none"):
        Doppler()(None, None)
    assert isinstance(star * star, Product)


# --------------------------------------------------------------- specutils in and out


def test_spectrum_in_spectrum_out_units_preserved():
    wl = np.linspace(1.08, 1.09, 500) * u.micron
    spec = Spectrum(flux=np.ones(500) * u.ct, spectral_axis=wl,
                    uncertainty=StdDevUncertainty(np.full(500, 0.1)))
    out = Doppler(rv=30 * u.km / u.s)(spec)
    assert type(out) is Spectrum
    assert out.spectral_axis.unit == u.micron and out.flux.unit == u.ct
    factor = np.sqrt((1 + 30 / 299_792.458) / (1 - 30 / 299_792.458))
    assert np.allclose(out.spectral_axis.value, wl.value * factor, rtol=1e-14, atol=0)
    assert np.array_equal(out.uncertainty.array, spec.uncertainty.array)
    # lists stay lists, batches stay batches
    orders = data_orders()
    assert isinstance(Doppler(rv=1.0)(orders), SpectrumList)
    assert isinstance(Doppler(rv=1.0)(OrderBatch.from_spectra(orders)), OrderBatch)


def test_source_chain_called_with_no_argument_returns_the_model_on_the_data_pixels():
    orders = data_orders()
    grid = model_grid_for(orders, margin=100)
    star = Spectrum(flux=line_template()[1].numpy() * u.dimensionless_unscaled,
                    spectral_axis=line_template()[0].numpy() * u.AA)
    chain = Template(star, grid=grid) | Instrument.from_data(orders) | Resample(orders)
    model = chain()
    assert isinstance(model, SpectrumList) and len(model) == 2
    assert model[0].flux.unit == u.dimensionless_unscaled  # the model's unit, not the data's
    assert model[0].uncertainty is None and model[0].meta["m"] == 40
    assert np.array_equal(model[1].spectral_axis.value, orders[1].spectral_axis.value)
    with pytest.raises(TypeError, match="starts with a source and takes no input"):
        chain(orders)
    with pytest.raises(TypeError, match="Doppler transforms a spectrum"):
        Doppler()()
    # without a Resample the model comes on the model grid
    free = (Template(star, grid=grid[0]) | Doppler(rv=5.0))()
    assert isinstance(free, Spectrum) and free.spectral_axis.unit == u.AA
