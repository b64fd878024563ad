"""The astropy bridge: as_model() fitted by TRFLSQFitter and by a torch optimizer."""

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.modeling import Fittable1DModel
from astropy.modeling.fitting import TRFLSQFitter
from test_ops_helpers import absorption, two_orders

from stellarai.ops import (
    Doppler,
    GridCoverageError,
    Instrument,
    OperatorError,
    Resample,
    Rotation,
    Telluric,
    Template,
    model_grid_for,
)

F64 = torch.float64
SIGMA = 0.005
TRUTH = {"rv_2": -9.6, "vsini": 5.0, "strength": 1.2}


@pytest.fixture(scope="module")
def problem():
    """Two 300-pixel orders, a star with 12 lines, a telluric with 6, noise of 0.005."""
    rng = np.random.default_rng(7)
    data = two_orders(instrumental_resolution=45_000)
    fine = np.linspace(10_750, 10_900, 60_001)
    star = absorption(fine, rng.uniform(10_795, 10_835, 12), 0.5, 0.08)
    tel = absorption(fine, rng.uniform(10_795, 10_835, 6), 0.3, 0.05)
    grid = model_grid_for(data, oversample=8, margin=60)

    def make(rv, vsini, strength):
        source = Template((torch.tensor(fine), torch.tensor(star)), grid=grid)
        # rv bounds within the grid's margin (60 km/s, minus the kernels' reach of about
        # 28 km/s): an optimizer never steps the model off its grid
        doppler = Doppler(rv=rv * u.km / u.s, bounds={"rv": (-25, 25) * u.km / u.s})
        return ((source | Rotation(vsini=vsini * u.km / u.s) | doppler)
                * Telluric(fine, tel, strength=strength)
                | Instrument.from_data(data) | Resample(data))

    with torch.no_grad():
        wavelength, clean = make(TRUTH["rv_2"], TRUTH["vsini"], TRUTH["strength"])(None, None)
    noisy = clean + SIGMA * torch.as_tensor(rng.standard_normal(clean.shape))
    return make, wavelength, noisy


def test_model_parameters_units_and_bounds(problem):
    make, wavelength, _ = problem
    model = make(0.0, 3.0, 1.0).as_model()
    assert isinstance(model, Fittable1DModel)
    assert model.param_names == ("vsini", "rv_2", "strength")
    assert model.rv_2.unit == u.km / u.s and model.vsini.unit == u.km / u.s
    assert model.strength.unit is None
    assert model.vsini.bounds == (0.0, 500.0) and model.rv_2.bounds == (-25.0, 25.0)
    x = wavelength.reshape(-1).numpy()
    in_angstrom = model(x * u.AA)
    assert in_angstrom.unit == u.dimensionless_unscaled
    assert np.allclose(model((x * u.AA).to(u.micron)).value, in_angstrom.value, rtol=1e-14)
    assert np.allclose(model(x), in_angstrom.value)  # plain numbers are Angstrom
    # any subset of the pixels, in any order, gives the same values
    pick = np.random.default_rng(0).permutation(x.size)[:50]
    assert np.array_equal(model(x[pick]), in_angstrom.value[pick])
    # other wavelengths are interpolated within the output; outside it is an error
    between = (x[10] + x[11]) / 2
    assert model(between) == pytest.approx((in_angstrom.value[10] + in_angstrom.value[11]) / 2)
    with pytest.raises(GridCoverageError, match="as_model: wavelength 9000.0 Angstrom lies "
                                                "outside the chain's output"):
        model(9000.0)
    with pytest.raises(OperatorError, match="as_model: Pipe does not start with a source"):
        (Doppler() | Rotation()).as_model()


def test_fit_deriv_is_the_exact_jacobian(problem):
    make, wavelength, _ = problem
    model = make(-9.0, 4.0, 1.1).as_model()
    x = wavelength.reshape(-1).numpy()
    jacobian = model.fit_deriv(x, *model.parameters)
    assert jacobian.shape == (3, x.size)
    for k, step in enumerate((1e-4, 1e-4, 1e-5)):
        plus, minus = model.parameters.copy(), model.parameters.copy()
        plus[k] += step
        minus[k] -= step
        difference = (model.evaluate(x, *plus) - model.evaluate(x, *minus)) / (2 * step)
        scale = np.abs(difference).max()
        assert np.abs(jacobian[k] - difference).max() < 1e-4 * scale, model.param_names[k]


def test_astropy_fitter_and_torch_optimizer_agree_on_rv(problem):
    make, wavelength, noisy = problem
    x = wavelength.reshape(-1).numpy() * u.AA
    y = noisy.reshape(-1).numpy() * u.dimensionless_unscaled
    fitter = TRFLSQFitter(calc_uncertainties=True)
    best = fitter(make(0.0, 3.0, 1.0).as_model(), x, y, weights=np.full(y.size, 1 / SIGMA))
    rv = best.rv_2.quantity.to_value(u.km / u.s)
    rv_sigma = best.stds["rv_2"]
    assert 0.005 < rv_sigma < 0.5
    assert abs(rv - TRUTH["rv_2"]) < 4 * rv_sigma
    assert best.vsini.quantity.to_value(u.km / u.s) == pytest.approx(TRUTH["vsini"], abs=1.0)
    # the same chi-square minimized by torch's L-BFGS on the unconstrained parameters
    chain = make(0.0, 3.0, 1.0)
    raw = chain.unconstrained()
    optimizer = torch.optim.LBFGS(raw.parameters(), max_iter=300, tolerance_grad=1e-12,
                                  tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        _, model = chain.evaluate(raw.values())
        chi2 = (((model - noisy) / SIGMA) ** 2).sum()
        chi2.backward()
        return chi2

    optimizer.step(closure)
    chi2_torch = closure().item()
    raw.apply()
    rv_torch = chain.get("rv_2").to_value(u.km / u.s)
    # the same minimum: chi-squares equal to 1e-5, RVs well within the uncertainty (the
    # chi-square is piecewise smooth at the 1e-3 km/s scale, which ends L-BFGS a little early)
    chi2_astropy = float((((best(x) - y).value / SIGMA) ** 2).sum())
    assert chi2_torch == pytest.approx(chi2_astropy, rel=1e-5)
    assert abs(rv_torch - rv) < 0.25 * rv_sigma
    assert chain.get("strength").value == pytest.approx(best.strength.value, abs=0.01)
    # the fitted astropy values go back into the operator
    fitted = best.sync_operator()
    assert fitted.get("rv_2").to_value(u.km / u.s) == pytest.approx(rv, rel=1e-12)
