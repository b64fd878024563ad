r"""The forward model of a fit: a model chain on a model grid, resampled onto the data.

:class:`FitProblem` turns a model (an emulator, a source operator chain, or an operator
chain without a source, which then acts on a flat spectrum) and a set of observed échelle
orders into a function of a batch of parameter vectors:

- the model runs on a grid uniform in :math:`\ln\lambda` with one row per order
  (:func:`~stellarai.ops.model_grid_for`), emulators are evaluated directly on it;
- a :class:`~stellarai.ops.Resample` onto the observed pixels ends the chain;
- each order's continuum, a Chebyshev polynomial in wavelength of degree
  ``continuum_degree``, is solved by weighted linear least squares for every parameter
  vector (it is *profiled*, not optimized);
- the chi-square uses the data's inverse variances; masked, padded and non-finite pixels
  have zero weight.

Parameter vectors have a leading batch axis (independent fits: several spectra times
several starts) and are passed through :meth:`~stellarai.ops.Operator.evaluate` with
shape ``(batch, 1)``, which every operator broadcasts against its ``(batch, orders,
pixels)`` flux.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import astropy.units as u
import numpy as np
import torch
from torch import Tensor

from ..emulators.base import SpectralEmulator
from ..emulators.source import EmulatorSource
from ..ops import (
    Doppler,
    GridCoverageError,
    Operator,
    Resample,
    Rotation,
    Template,
    Unconstrained,
    model_grid_for,
)
from ..ops.base import ParameterError, row_ranges
from ..ops.resample import DEFAULT_MARGIN, DEFAULT_OVERSAMPLE
from ..spectra.orders import OrderBatch
from .errors import FitError, FitInputError

__all__ = ["FitProblem", "chebyshev_basis"]

RV_MARGIN_SHARE = 0.5
"""Share of the model grid's margin that a fitted radial velocity may use."""
VSINI_MARGIN_SHARE = 0.35
"""Share of the model grid's margin that a fitted ``vsini`` may use."""
_RIDGE = 1e-10


def chebyshev_basis(x: Tensor, degree: int) -> Tensor:
    r"""Chebyshev polynomials :math:`T_0 \ldots T_{degree}` at ``x``, stacked on axis -2.

    Examples
    --------
    >>> import torch
    >>> chebyshev_basis(torch.tensor([-1.0, 0.0, 1.0]), 2).tolist()
    [[1.0, 1.0, 1.0], [-1.0, 0.0, 1.0], [1.0, -1.0, 1.0]]
    """
    rows = [torch.ones_like(x)]
    if degree >= 1:
        rows.append(x)
    for _ in range(2, degree + 1):
        rows.append(2 * x * rows[-1] - rows[-2])
    return torch.stack(rows, dim=-2)


@dataclass(frozen=True)
class Evaluation:
    """Model, continuum and chi-square of a batch of parameter vectors."""

    flux: Tensor
    """``(batch, orders, pixels)``: the model times the fitted continuum."""
    continuum: Tensor
    """``(batch, orders, degree + 1)``: the continuum coefficients."""
    chi2_per_order: Tensor
    """``(batch, orders)``."""

    @property
    def chi2(self) -> Tensor:
        """Total chi-square of each parameter vector, ``(batch,)``."""
        return self.chi2_per_order.sum(-1)


def _as_operator(model: Any) -> Operator:
    if isinstance(model, SpectralEmulator):
        return model.source()
    if not isinstance(model, Operator):
        raise FitError(
            f"model must be a stellarai emulator or a stellarai.ops operator chain, got a "
            f"{type(model).__name__}"
        )
    return model


def _float64(emulator: SpectralEmulator, cache: dict[int, Any]) -> SpectralEmulator:
    """``emulator`` with a float64 network (a copy, remembered in ``cache``, if needed).

    A float32 network makes the chi-square noisy at the 1e-7 relative level, too coarse
    for Newton steps and Hessians near the optimum.
    """
    if emulator.dtype == torch.float64:
        return emulator
    key = id(emulator)
    if key not in cache:
        double = copy.deepcopy(emulator)
        double.module.double()
        cache[key] = (emulator, double)  # keep the original alive: ids stay unique
    return cache[key][1]


def _copy_model(model: Operator, cache: dict[int, Any]) -> Operator:
    """A deep copy of the chain whose emulators run in float64 (networks shared via
    ``cache``, never copied per fit)."""
    memo: dict[int, Any] = {}
    for leaf in model.operators:
        if isinstance(leaf, EmulatorSource):
            memo[id(leaf.emulator)] = _float64(leaf.emulator, cache)
    return copy.deepcopy(model, memo)


class FitProblem:
    """A model, a set of observed orders and the chi-square between them.

    Parameters
    ----------
    model : SpectralEmulator or Operator
        An emulator, a chain that starts with a source (an emulator or a
        :class:`~stellarai.ops.Template`), or a chain without a source (applied to a flat
        spectrum of 1: a featureless star).
    batch : OrderBatch
        The observed orders.
    continuum_degree : int
        Degree of the per-order Chebyshev continuum (-1: no continuum, the model as is).
    oversample, margin, resolving_power
        Of the model grid (see :func:`~stellarai.ops.model_grid_for`); the resolving power
        defaults to the data's ``instrumental_resolution``, else to the largest resolving
        power of an :class:`~stellarai.ops.Instrument` in the chain.
    free, fixed : sequence of str
        Parameters to free or fix in the fitter's copy of the model (the model itself is
        never changed).
    emulator_cache : dict, optional
        Where float64 copies of float32 emulators are kept between problems.

    Raises
    ------
    FitError
        For an unknown parameter name, a per-order free parameter, or a model that is not
        one of the kinds above.
    FitInputError
        For an order with too few valid pixels.
    GridCoverageError
        If the emulator or a template does not cover the data.
    """

    def __init__(self, model: Any, batch: OrderBatch, *, continuum_degree: int = 2,
                 oversample: float = DEFAULT_OVERSAMPLE, margin: Any = DEFAULT_MARGIN,
                 resolving_power: float | None = None, free: Sequence[str] = (),
                 fixed: Sequence[str] = (), emulator_cache: dict[int, Any] | None = None
                 ) -> None:
        if int(continuum_degree) != continuum_degree or continuum_degree < -1:
            raise FitError(f"continuum_degree must be an integer >= -1, got {continuum_degree!r}")
        self.batch = batch
        self.continuum_degree = int(continuum_degree)
        self.notes: list[str] = []
        chain = _copy_model(_as_operator(model), {} if emulator_cache is None
                            else emulator_cache)
        self._free_and_fix(chain, free, fixed)
        self.margin_kms = float(u.Quantity(margin, u.km / u.s).value)
        self.resolving_power = self._resolving_power(chain, batch, resolving_power)
        self.grid = model_grid_for(batch, self.resolving_power, oversample=oversample,
                                   margin=margin)
        if not chain.is_source:
            chain = Template((self.grid, torch.ones_like(self.grid))) | chain
            self.notes.append("the model has no source: it acts on a flat spectrum of 1")
        self._put_sources_on_grid(chain)
        self._limit_velocities(chain)
        self.resample = Resample(batch)
        try:
            self.chain = chain | self.resample
        except GridCoverageError as exc:
            raise GridCoverageError(f"{exc}; the data cannot be fitted with this model") from exc
        self.model = chain
        self.names = tuple(self.chain.free_names)
        if not self.names:
            raise FitError("the model has no free parameter to fit; free some with free=[...]")
        self._specs = {}
        for name in self.names:
            leaf, local, _ = self.chain._named()[name]
            spec = leaf._specs[local]
            if spec.shape != ():
                raise FitError(
                    f"parameter {name!r} has one value per order (shape {spec.shape}); the "
                    "fitter fits scalar parameters only: fix it (fixed=[...]) or make it scalar"
                )
            self._specs[name] = (leaf, local, spec)
        self.display_names = self._display_names()
        self._prepare_data()

    def _display_names(self) -> tuple[str, ...]:
        """Free parameter names without the chain's ``_<i>`` suffix where that is unique
        among the free parameters (``rv`` for the star's ``rv_2`` when the telluric
        template's ``rv_3`` is fixed)."""
        locals_ = [self._specs[name][1] for name in self.names]
        return tuple(local if locals_.count(local) == 1 else name
                     for name, local in zip(self.names, locals_, strict=True))

    # ------------------------------------------------------------------ set-up helpers
    @staticmethod
    def _free_and_fix(chain: Operator, free: Sequence[str], fixed: Sequence[str]) -> None:
        for names, action in ((free, chain.free), (fixed, chain.fix)):
            for name in [names] if isinstance(names, str) else names:
                try:
                    action(name)
                except ParameterError as exc:
                    raise FitError(
                        f"cannot {'free' if action == chain.free else 'fix'} {name!r}: the "
                        f"model has no such parameter (its parameters: "
                        f"{', '.join(chain.param_names)})"
                    ) from exc

    @staticmethod
    def _resolving_power(chain: Operator, batch: OrderBatch, given: float | None) -> float:
        if given is not None:
            return float(given)
        known = [r for r in batch.resolution if r is not None]
        if known:
            return max(known)
        powers = [float(leaf.get("resolving_power").max()) for leaf in chain.operators
                  if "resolving_power" in leaf._specs]
        if powers:
            return max(powers)
        raise FitError(
            "the data carry no instrumental_resolution and the model has no Instrument with "
            "a resolving power: pass resolving_power=... for the model grid"
        )

    def _put_sources_on_grid(self, chain: Operator) -> None:
        low, high = float(self.grid[:, 0].min()), float(self.grid[:, -1].max())
        for leaf in chain.operators:
            if not isinstance(leaf, EmulatorSource):
                continue
            emulator = leaf.emulator
            wavelength = emulator._wavelength
            if wavelength is not None and emulator.fixed_wavelength:
                lo, hi = float(wavelength[0]), float(wavelength[-1])
                outside = [int(m) for m, row in zip(self.batch.order.tolist(), self.grid,
                                                    strict=True)
                           if float(row[0]) < lo or float(row[-1]) > hi]
                if outside:
                    raise GridCoverageError(
                        f"the emulator covers {lo:.1f}-{hi:.1f} Angstrom but the model grid "
                        f"of orders {outside} (each order plus a margin of "
                        f"{self.margin_kms:g} km/s, {low:.1f}-{high:.1f} Angstrom in all) "
                        "reaches beyond it: fit only the orders the emulator covers (e.g. "
                        "SpectrumList([orders[i] for i in ...])), or a smaller margin="
                    )
            leaf.grid = self.grid.clone()
            leaf._explicit_grid = True

    def _limit_velocities(self, chain: Operator) -> None:
        """Keep free velocities inside what the grid's margin can hold (noted, not hidden)."""
        limits = {Doppler: ("rv", RV_MARGIN_SHARE, True), Rotation: ("vsini", VSINI_MARGIN_SHARE,
                                                                     False)}
        for leaf in chain.operators:
            entry = limits.get(type(leaf))
            if entry is None:
                continue
            local, share, symmetric = entry
            spec = leaf._specs[local]
            if spec.fixed:
                continue
            limit = share * self.margin_kms
            low = max(spec.bounds[0], -limit) if symmetric else spec.bounds[0]
            high = min(spec.bounds[1], limit)
            if (low, high) != tuple(spec.bounds):
                value = float(leaf.tensors[local].detach())
                if not low <= value <= high:
                    raise FitError(
                        f"{leaf._name()}: the starting {local} = {value:g} km/s lies outside "
                        f"[{low:g}, {high:g}] km/s, the range the model grid's margin of "
                        f"{self.margin_kms:g} km/s allows; pass a larger margin="
                    )
                spec.bounds = (low, high)
                self.notes.append(f"{local} searched within [{low:g}, {high:g}] km/s "
                                  f"({share:g} of the grid margin of {self.margin_kms:g} km/s)")

    def _prepare_data(self) -> None:
        batch = self.batch
        self.weights = batch.weights.clone()
        self.flux = torch.where(batch.mask, torch.zeros_like(batch.flux), batch.flux)
        n_valid = (self.weights > 0).sum(-1)
        need = self.continuum_degree + 2
        bad = [(int(m), int(n)) for m, n in zip(batch.order.tolist(), n_valid.tolist(),
                                                strict=True) if n < need]
        if bad:
            listed = ", ".join(f"order {m} ({n} valid)" for m, n in bad)
            raise FitInputError(
                f"orders without enough valid pixels (unmasked, finite, with positive "
                f"uncertainty; at least {need} needed): {listed}. Drop these orders or "
                "unmask their pixels"
            )
        ranges, _ = row_ranges(batch)
        x = 2 * (batch.wavelength - ranges[:, :1]) / (ranges[:, 1:] - ranges[:, :1]) - 1
        self.basis = (chebyshev_basis(x, self.continuum_degree)
                      if self.continuum_degree >= 0 else None)

    # ------------------------------------------------------------------ properties
    @property
    def n_parameters(self) -> int:
        """Number of free (non-linear) parameters."""
        return len(self.names)

    def units(self) -> list[u.UnitBase]:
        """Unit of each free parameter."""
        return [self._specs[name][2].unit for name in self.names]

    def bounds(self) -> Tensor:
        """``(n_parameters, 2)`` lower and upper bounds."""
        return torch.tensor([self._specs[name][2].bounds for name in self.names],
                            dtype=torch.float64)

    def start(self) -> Tensor:
        """The model's current values of the free parameters, ``(n_parameters,)``."""
        return torch.stack([self._specs[name][0].tensors[self._specs[name][1]].detach()
                            .reshape(()) for name in self.names])

    def label_columns(self) -> dict[int, str]:
        """Position in :attr:`names` -> label name, for free emulator labels."""
        out = {}
        for i, name in enumerate(self.names):
            leaf, local, _ = self._specs[name]
            if isinstance(leaf, EmulatorSource):
                out[i] = local
        return out

    # ------------------------------------------------------------------ transforms
    def to_unconstrained(self, theta: Tensor) -> Tensor:
        """Physical ``(batch, P)`` values to unconstrained ones (see :class:`Unconstrained`)."""
        bounds = self.bounds().tolist()
        return torch.stack([Unconstrained._inverse(theta[:, i], *bounds[i])
                            for i in range(self.n_parameters)], dim=-1)

    def from_unconstrained(self, raw: Tensor) -> Tensor:
        """Unconstrained ``(batch, P)`` values to physical ones (differentiable)."""
        bounds = self.bounds().tolist()
        return torch.stack([Unconstrained._forward(raw[:, i], *bounds[i])
                            for i in range(self.n_parameters)], dim=-1)

    def inside(self, theta: Tensor) -> Tensor:
        """``(batch,)``: True where every value lies within its bounds (and is finite)."""
        bounds = self.bounds()
        ok = (theta >= bounds[:, 0]) & (theta <= bounds[:, 1]) & torch.isfinite(theta)
        return ok.all(-1)

    # ------------------------------------------------------------------ evaluation
    def model_flux(self, theta: Tensor) -> Tensor:
        """The model (without continuum) on the observed pixels, ``(batch, orders, pixels)``."""
        values = {name: theta[:, i].reshape(-1, 1) for i, name in enumerate(self.names)}
        try:
            _, flux = self.chain.evaluate(values)
        except GridCoverageError as exc:
            raise GridCoverageError(
                f"{exc} (in the fitter: pass a larger margin= to SpectrumFitter, or narrow "
                "the bounds of rv and vsini)"
            ) from exc
        return flux.expand(theta.shape[0], *self.flux.shape)

    def evaluate(self, theta: Tensor, data: Tensor | None = None,
                 weights: Tensor | None = None) -> Evaluation:
        """Model, profiled continuum and chi-square for parameters ``(batch, P)``.

        ``data`` and ``weights`` default to this problem's own and may carry a batch axis
        ``(batch, orders, pixels)`` (one spectrum per parameter vector).
        """
        data = self.flux if data is None else data
        weights = self.weights if weights is None else weights
        model = self.model_flux(theta)
        if self.basis is None:
            coefficients = model.new_zeros(*model.shape[:-1], 0)
            full = model
        else:
            design = model[..., None, :] * self.basis            # (b, o, k, m)
            weighted = design * weights[..., None, :]
            normal = weighted @ design.transpose(-1, -2)         # (b, o, k, k)
            rhs = (weighted @ data[..., :, None])[..., 0]        # (b, o, k)
            scale = normal.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1e-300)
            eye = torch.eye(normal.shape[-1], dtype=normal.dtype)
            coefficients = torch.linalg.solve(normal + _RIDGE * scale[..., None, None] * eye,
                                              rhs)
            full = (coefficients[..., :, None] * design).sum(-2)
        chi2 = (weights * (data - full) ** 2).sum(-1)
        return Evaluation(full, coefficients, chi2)

    def log_prior(self, theta: Tensor) -> Tensor:
        """Sum of the Gaussian priors of the free parameters, ``(batch,)`` (0 if none)."""
        total = theta.new_zeros(theta.shape[0])
        for i, name in enumerate(self.names):
            prior = self._specs[name][2].prior
            if prior is not None:
                total = total - 0.5 * ((theta[:, i] - prior.mean) / prior.sigma) ** 2 \
                    - math.log(prior.sigma * math.sqrt(2 * math.pi))
        return total

    def neg_log_posterior(self, theta: Tensor, data: Tensor | None = None,
                          weights: Tensor | None = None) -> Tensor:
        """``chi2 / 2 - log prior`` for each parameter vector, ``(batch,)``."""
        return 0.5 * self.evaluate(theta, data, weights).chi2 - self.log_prior(theta)

    def random_starts(self, n: int, seed: int) -> Tensor:
        """``(n, P)`` starts: the model's values, then ``n - 1`` random label vectors.

        The labels of the extra starts are drawn uniformly within their bounds (the label
        space's, unless overridden on the model) from ``numpy.random.default_rng(seed)``;
        the other parameters keep the model's values.
        """
        starts = self.start().repeat(n, 1)
        columns = sorted(self.label_columns())
        if n > 1 and columns:
            bounds = self.bounds()[columns].numpy()
            draws = np.random.default_rng(seed).random((n - 1, len(columns)))
            starts[1:, columns] = torch.from_numpy(bounds[:, 0] + draws
                                                   * (bounds[:, 1] - bounds[:, 0]))
        return starts
