"""Continuum operators: Chebyshev polynomial per order, muler's HPF blaze template."""

import numpy as np
import pytest
import torch
from numpy.polynomial import chebyshev

from stellarai.demo import demo_spectrum_list
from stellarai.ops import (
    BlazeTemplate,
    ChebyshevContinuum,
    GridCoverageError,
    OperatorError,
    ParameterError,
    Resample,
    Template,
    model_grid_for,
    read_muler_template,
)
from stellarai.spectra import OrderBatch

F64 = torch.float64


def test_chebyshev_per_order_matches_numpy():
    orders = demo_spectrum_list()
    batch = OrderBatch.from_spectra(orders)
    rng = np.random.default_rng(0)
    coefficients = rng.normal(0, 0.1, (3, 4)) + np.array([1, 0, 0, 0])
    op = ChebyshevContinuum.from_data(orders, degree=3)
    op.set(**{f"c{k}": coefficients[:, k] for k in range(4)})
    _, flux = op(batch.wavelength, torch.ones_like(batch.flux))
    for row, n in enumerate(batch.npix.tolist()):
        w = batch.wavelength[row, :n].numpy()
        x = 2 * (w - w[0]) / (w[-1] - w[0]) - 1
        expected = chebyshev.chebval(x, coefficients[row])
        assert np.allclose(flux[row, :n].detach().numpy(), expected, rtol=1e-13)
    # the same polynomial on a model grid that extends beyond the orders (up to the
    # difference between a pixel average and the value at the pixel centre)
    grid = model_grid_for(orders, margin=50)
    _, on_grid = op(grid, torch.ones_like(grid))
    _, back = (Template((grid, on_grid.detach())) | Resample(orders))(None, None)
    n = int(batch.npix[1])
    assert np.allclose(back[1, :n].numpy(), flux[1, :n].detach().numpy(), rtol=1e-4)


def test_chebyshev_single_polynomial_and_bad_input():
    op = ChebyshevContinuum(degree=2, coefficients=[1.0, 0.1, -0.05])
    assert op.param_names == ("c0", "c1", "c2") and op.get("c2").shape == ()
    w = torch.linspace(9_000.0, 9_010.0, 11, dtype=F64)
    _, flux = op(w, torch.ones_like(w))
    assert np.allclose(flux.detach().numpy(),
                       chebyshev.chebval(np.linspace(-1, 1, 11), [1.0, 0.1, -0.05]))
    with pytest.raises(ParameterError, match="ChebyshevContinuum: degree must be an integer"):
        ChebyshevContinuum(degree=-1)
    with pytest.raises(ParameterError, match=r"coefficients must have shape \(3,\) or \(2, 3\)"):
        ChebyshevContinuum(degree=2, n_orders=2, coefficients=[1.0, 0.0])
    with pytest.raises(OperatorError, match="ChebyshevContinuum: it has 2 rows of coefficients "
                                            "but the grid has shape"):
        ChebyshevContinuum(degree=1, n_orders=2)(w, torch.ones_like(w))


def test_blaze_template_from_muler():
    wavelength, goldilocks, median = read_muler_template(
        "HPF_blaze_templates.csv", ["wavelength_Angstrom", "blaze_Goldilocks", "blaze_2021"])
    blaze = BlazeTemplate.from_muler("hpf")
    other = BlazeTemplate.from_muler("hpf", kind="2021")
    pixels = torch.tensor(wavelength.reshape(28, 2048)[10])
    _, flux = blaze(pixels, torch.ones_like(pixels))
    assert np.array_equal(flux.numpy(), goldilocks.reshape(28, 2048)[10])
    _, flux = other(pixels, torch.ones_like(pixels))
    assert np.array_equal(flux.numpy(), median.reshape(28, 2048)[10])
    assert blaze.param_names == () and len(blaze.segments) == 28
    with pytest.raises(OperatorError, match="kind must be one of"):
        BlazeTemplate.from_muler("hpf", kind="spline")
    with pytest.raises(GridCoverageError, match="BlazeTemplate: the blaze template does not "
                                                "cover"):
        blaze(demo_spectrum_list())  # the demo orders start in a gap between HPF orders
