"""Autograd through a full chain matches finite differences for every free parameter."""

import numpy as np
import pytest
import torch
from test_ops_helpers import absorption, two_orders

from stellarai.ops import (
    ChebyshevContinuum,
    Doppler,
    Instrument,
    Resample,
    Rotation,
    Telluric,
    Template,
    Unconstrained,
    model_grid_for,
)

F64 = torch.float64


def smooth_chain(seed=2):
    """Every operator kind, every parameter free, on a well-sampled grid (float64)."""
    rng = np.random.default_rng(seed)
    data = two_orders()
    fine = np.linspace(10_750, 10_900, 60_001)
    star = absorption(fine, rng.uniform(10_790, 10_840, 12), 0.4, 0.15)
    tel = absorption(fine, rng.uniform(10_790, 10_840, 6), 0.3, 0.1)
    grid = model_grid_for(data, 50_000, oversample=10, margin=80)
    chain = ((Template((torch.tensor(fine), torch.tensor(star)), grid=grid)
              | Rotation(vsini=6, fixed={"epsilon": False}) | Doppler(rv=12))
             * Telluric(fine, tel, strength=0.8, fixed={"rv": False})
             | Instrument(resolving_power=40_000, fixed={"resolving_power": False})
             | Resample(data)
             | ChebyshevContinuum.from_data(data, degree=1,
                                            coefficients=[[1.0, 0.02], [0.98, -0.01]]))
    target = torch.tensor(rng.normal(0.8, 0.1, (2, 300)))
    return chain, target


def test_gradient_of_every_free_parameter_matches_finite_differences():
    chain, target = smooth_chain()
    assert chain.free_names == ("vsini", "epsilon", "rv_2", "strength", "rv_3",
                                "resolving_power", "c0", "c1")

    def loss(values=None):
        _, model = chain.evaluate(values)
        return ((model - target) ** 2).sum()

    free = chain.free_parameters()
    grads = torch.autograd.grad(loss(), list(free.values()))
    # central differences; velocities use 1e-4 km/s: the rebinning is piecewise linear in
    # the grid, with kinks a few 1e-3 km/s apart here, and round-off dominates below 1e-5
    steps = {"vsini": 1e-4, "epsilon": 1e-4, "rv_2": 1e-4, "strength": 1e-4, "rv_3": 1e-4,
             "resolving_power": 1.0, "c0": 1e-5, "c1": 1e-5}
    checked = 0
    for (name, value), grad in zip(free.items(), grads, strict=True):
        assert grad is not None and torch.isfinite(grad).all(), name
        base = value.detach().clone()
        for index in np.ndindex(tuple(base.shape)):
            plus, minus = base.clone(), base.clone()
            plus[index] += steps[name]
            minus[index] -= steps[name]
            with torch.no_grad():
                difference = (loss({name: plus}) - loss({name: minus})).item() / (2 * steps[name])
            assert grad[index].item() == pytest.approx(difference, rel=1e-5), (name, index)
            checked += 1
    assert checked == 10


def test_unconstrained_reparametrization_respects_bounds_and_writes_back():
    chain, target = smooth_chain()
    raw = Unconstrained(chain)
    assert set(raw.values()) == set(chain.free_names)
    for name, value in raw.values().items():
        assert np.allclose(value.detach().numpy(), chain.get(name).value, rtol=1e-9, atol=1e-12)
    # gradients reach the raw tensors
    _, model = chain.evaluate(raw.values())
    ((model - target) ** 2).sum().backward()
    assert all(t.grad is not None and bool(torch.isfinite(t.grad).all())
               for t in raw.parameters())
    # a huge step on the raw tensors keeps every value inside its bounds
    with torch.no_grad():
        for name in ("vsini", "epsilon", "rv_2", "strength", "rv_3"):
            raw.raw[name].add_(-50.0)
    values = raw.values()
    assert 0.0 <= values["vsini"].item() < 1e-12 and 0.0 <= values["epsilon"].item() < 1e-12
    assert values["rv_2"].item() == pytest.approx(-1000.0, abs=1e-9)
    assert values["rv_3"].item() == pytest.approx(-50.0, abs=1e-9)
    raw.apply()  # written back, bounds checked
    assert 0.0 <= chain.get("vsini").value < 1e-12
    assert chain.get("rv_3").value == pytest.approx(-50.0, abs=1e-9)
