"""LineModel: sparse evaluation against a dense reference, gradients, tables, errors."""

import math

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.table import QTable
from specutils import Spectrum

import stellarai.ops as ops
from stellarai.lines import (
    LineModel,
    LineTableError,
    LineWindowError,
    NoLinesError,
    clone_spectrum,
    plan_lines,
)
from stellarai.lines.profiles import absorption, pseudo_voigt_shape
from stellarai.ops.base import C_KMS


def _lines(n=40, seed=3, low=10_000.0, high=10_020.0):
    rng = np.random.default_rng(seed)
    return dict(wavelength=np.sort(rng.uniform(low + 1, high - 1, n)) * u.AA,
                amplitude=rng.uniform(0.002, 0.03, n) * u.AA,
                sigma=rng.uniform(0.02, 0.06, n) * u.AA,
                gamma=rng.uniform(0.01, 0.08, n) * u.AA)


def _dense_flux(grid, values, profile="pseudo_voigt", flux_model="product"):
    """Every line on every pixel: the lines x pixels reference."""
    center = torch.as_tensor(values["wavelength"].value)[:, None]
    x = grid[None, :] - center
    a, s, g = (torch.as_tensor(values[k].value)[:, None] for k in ("amplitude", "sigma",
                                                                    "gamma"))
    v = absorption(x, a, s, g, profile=profile)
    return torch.prod(1 - v, dim=0) if flux_model == "product" else torch.exp(-v.sum(0))


@pytest.mark.parametrize("profile", ["pseudo_voigt", "voigt"])
@pytest.mark.parametrize("flux_model", ["product", "exp"])
def test_sparse_equals_dense_with_unbounded_windows(profile, flux_model):
    values = _lines()
    grid = torch.linspace(10_000.0, 10_020.0, 3000, dtype=torch.float64)
    model = LineModel(**values, grid=grid, profile=profile, flux_model=flux_model,
                      tolerance=1e-12, max_window=math.inf, precision="double")
    _, flux = model(None, None)
    dense = _dense_flux(grid, values, profile, flux_model)
    assert torch.allclose(flux[0], dense, rtol=0, atol=1e-12)


def test_default_windows_are_sparse_and_accurate():
    values = _lines(n=200, low=10_000.0, high=10_100.0)
    grid = torch.linspace(10_000.0, 10_100.0, 20_000, dtype=torch.float64)
    model = LineModel(**values, grid=grid)
    dense = _dense_flux(grid, values)
    _, flux = model(None, None)
    assert float((flux[0] - dense).detach().abs().max()) < 2e-3
    assert model.plan.n_window_pixels < 0.15 * 200 * 20_000  # far from lines x pixels


def test_gradients_match_dense_autograd():
    values = _lines(n=12)
    grid = torch.linspace(10_000.0, 10_020.0, 2000, dtype=torch.float64)
    model = LineModel(**values, grid=grid, tolerance=1e-12, max_window=math.inf,
                      precision="double")
    rng = np.random.default_rng(0)
    model.set(shift=rng.normal(0, 2, 12))
    weight = torch.linspace(-1, 1, 2000, dtype=torch.float64)
    (model(None, None)[1][0] * weight).sum().backward()

    leaves = {k: model.tensors[k].detach().clone().requires_grad_(True) for k in model.tensors}
    center = model.rest_wavelength * (1 + leaves["shift"] / C_KMS)
    v = absorption(grid[None] - center[:, None], *(torch.exp(leaves[k])[:, None] for k in (
        "log_amplitude", "log_sigma", "log_gamma")))
    (torch.prod(1 - v, 0) * weight).sum().backward()
    for name, leaf in leaves.items():
        assert torch.allclose(model.tensors[name].grad, leaf.grad, rtol=1e-8, atol=1e-12), name


def test_multi_row_grid_and_single_precision():
    values = _lines()
    rows = torch.stack([torch.linspace(10_000.0, 10_011.0, 1500, dtype=torch.float64),
                        torch.linspace(10_009.0, 10_020.0, 1500, dtype=torch.float64)])
    model = LineModel(**values, grid=rows)
    _, flux = model(None, None)
    assert flux.shape == (2, 1500)
    for r in range(2):
        dense = _dense_flux(rows[r], values)
        assert float((flux[r] - dense).detach().abs().max()) < 2e-3


def test_table_round_trip_keeps_units_and_flux_model():
    values = _lines(n=5)
    model = LineModel(**values, flux_model="exp")
    model.set(shift=[1.0, 0, 0, 0, -2.0])
    table = model.to_table()
    assert table["sigma"].unit == u.AA and table.meta["flux_model"] == "exp"
    again = LineModel.from_table(table)
    assert again.flux_model == "exp"
    assert np.allclose(again.line_values()["wavelength"], model.line_values()["wavelength"])
    assert np.allclose(again.to_table()["amplitude"].value, values["amplitude"].value)


def test_table_meta_description_sets_product_model():
    values = _lines(n=3)
    table = QTable(values, meta={"description": "flux(lambda) = prod_i [1 - amplitude_i "
                                                "* V(lambda - wavelength_i)]"})
    assert LineModel.from_table(table, flux_model="exp").flux_model == "exp"  # explicit wins
    table.meta["description"] = "flux = exp(-sum_i amplitude_i V_i)"
    assert LineModel.from_table(table).flux_model == "exp"


def test_table_errors_name_the_column():
    values = _lines(n=3)
    with pytest.raises(LineTableError, match=r"lacks column\(s\) \['gamma'\]"):
        LineModel.from_table(QTable({k: v for k, v in values.items() if k != "gamma"}))
    bare = QTable({k: v.value for k, v in values.items()})
    with pytest.raises(LineTableError, match="column 'wavelength' must be a length with a unit"):
        LineModel.from_table(bare)
    wrong = QTable({**values, "sigma": values["sigma"].value * u.s})
    with pytest.raises(LineTableError, match="column 'sigma'.*got unit s"):
        LineModel.from_table(wrong)
    with pytest.raises(LineTableError, match="amplitude must be finite and > 0"):
        LineModel(values["wavelength"], -values["amplitude"], values["sigma"], values["gamma"])
    with pytest.raises(LineTableError, match="sigma has 2 values but wavelength has 3"):
        LineModel(values["wavelength"], values["amplitude"], values["sigma"][:2],
                  values["gamma"])


def test_windows_beyond_memory_suggest_a_smaller_window():
    values = _lines(n=200, low=10_000.0, high=10_100.0)
    grid = torch.linspace(10_000.0, 10_100.0, 200_000, dtype=torch.float64)
    with pytest.raises(LineWindowError, match=r"more than memory_limit=0\.0 GiB.*"
                                              r"Use a smaller window: max_window="):
        LineModel(**values, grid=grid, max_window=math.inf, tolerance=1e-12,
                  memory_limit=2**20)
    small = LineModel(**values, grid=grid, max_window=0.5 * u.AA, memory_limit=2**27)
    assert small.plan.n_window_pixels <= 200 * (0.5 / (100 / 200_000) + 2)


def test_plan_lines_padding_goes_to_the_dump_index():
    grid = torch.arange(10.0, dtype=torch.float64)[None]
    plan = plan_lines(grid, np.array([1.0, 5.0]), np.array([1.0, 3.5]))
    assert plan.n_window_pixels == 3 + 7
    assert set(plan.index.tolist()) <= set(range(11))
    assert plan.n_elements >= plan.n_window_pixels


def test_pseudo_voigt_limits():
    f, eta = pseudo_voigt_shape(torch.tensor([0.1, 1e-8]), torch.tensor([1e-8, 0.1]))
    assert torch.allclose(f, torch.tensor([0.1 * 2.3548200, 0.2]), rtol=1e-5)
    assert torch.allclose(eta, torch.tensor([0.0, 1.0]), atol=1e-6)


def test_composes_with_operators_and_returns_spectra():
    values = _lines()
    wl = np.linspace(10_003.0, 10_017.0, 700)
    observed = Spectrum(flux=np.ones(700) * u.one, spectral_axis=wl * u.AA,
                        meta={"instrumental_resolution": 50_000})
    grid = ops.model_grid_for(observed, margin=100 * u.km / u.s)
    lines = LineModel(**values).regrid(grid)
    chain = (lines | ops.Rotation(vsini=5 * u.km / u.s) | ops.Doppler(rv=20 * u.km / u.s)
             ) * ops.Telluric.from_muler("hpf", strength=0.0) | ops.Instrument(
        resolving_power=50_000) | ops.Resample(observed)
    assert {"shift", "log_amplitude", "vsini", "rv_2"} <= set(chain.param_names)
    model = chain()
    assert isinstance(model, Spectrum) and model.flux.shape == (700,)
    still = (LineModel(**values).regrid(grid) | ops.Instrument(resolving_power=50_000)
             | ops.Resample(observed))()
    # a redshift of 20 km/s moves the deepest point by about 0.67 Angstrom
    moved = wl[np.argmin(model.flux.value)] - wl[np.argmin(still.flux.value)]
    assert moved == pytest.approx(10_010 * 20 / C_KMS, abs=0.05)


def test_penalty_and_changes_against_the_reference():
    model = LineModel(**_lines(n=4))
    assert float(model.penalty({"shift": 1.0, "log_amplitude": 25.0}).detach()) == 0.0
    model.set(shift=[0.0, 2.0, 0.0, 0.0],
              log_amplitude=model.get("log_amplitude").value + np.log([1, 1, 2, 1]))
    penalty = float(model.penalty({"shift": 1.0, "log_amplitude": 25.0}).detach())
    assert penalty == pytest.approx(0.5 * 4.0 + 0.5 * (0.5 / 0.01) ** 2
                                    + 0.5 * 25 * math.log(2) ** 2)
    changes = model.changes()
    assert changes["shift"].to_value(u.km / u.s)[1] == pytest.approx(2.0)
    assert changes["amplitude_ratio"][2] == pytest.approx(2.0)
    assert changes["depth_ratio"][2] == pytest.approx(2.0)
    assert int(np.argmax(changes["moved"])) == 1


def test_clone_of_two_lines_and_no_lines_error():
    wl = np.linspace(10_000.0, 10_010.0, 1001)
    truth = LineModel([10_004.0, 10_006.5] * u.AA, [0.02, 0.01] * u.AA, [0.04, 0.05] * u.AA,
                      [0.03, 0.02] * u.AA, grid=torch.as_tensor(wl))
    clone = clone_spectrum(truth.spectrum(), prominence=0.01, steps=200)
    assert clone.n_lines == 2
    assert clone.clone_report.residual_rms < 1e-3
    assert np.allclose(clone.to_table()["wavelength"].value, [10_004.0, 10_006.5], atol=0.01)
    with pytest.raises(NoLinesError, match=r"no line with prominence >= 0\.5.*lower prominence"):
        clone_spectrum(truth.spectrum(), prominence=0.5)
