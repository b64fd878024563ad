r"""Joint multi-order fits of échelle spectra: :class:`SpectrumFitter` and :func:`fit`.

One fit, for every spectrum of a batch at once:

1. :class:`~stellarai.fitting.problem.FitProblem` puts the model on a model grid with one
   row per order, resamples it onto the observed pixels and profiles a per-order
   Chebyshev continuum by weighted linear least squares.
2. Scans at start 0 set the starting values cheaply (model evaluations only, no
   gradients): a free Doppler ``rv`` over a grid of velocities (step half the
   instrumental FWHM, within the bounds), velocity being the parameter with the most
   local minima, on the pixels that the telluric transmission leaves (nearly)
   untouched, so that telluric residuals at the starting telluric strength do not pull
   the scan to a wrong velocity; then a free telluric ``strength`` (coarse and fine
   grid, every pixel); with ``starts > 1``, starts 1, 2, ... take the labels of the
   best of ``label_candidates`` random label vectors (seeded, uniform within the bounds).
3. ``starts`` starting points per spectrum (the model's values, then the scanned label
   vectors) are optimized together by a batched damped
   Newton method in unconstrained coordinates (bounds by a logistic/softplus
   reparametrization, never clipping), see :mod:`stellarai.fitting.optimize`, for
   ``explore_iter`` iterations; then the best start of each spectrum goes on alone.
4. The start with the lowest :math:`\chi^2/2 - \ln(\mathrm{prior})` after the exploration
   wins; if it then ends unconverged or with a label at a bound, the next start (in that
   order) is refined as well and taken instead when it converges inside the bounds. The
   winner's covariance
   is the Laplace approximation (:mod:`stellarai.fitting.uncertainty`), or the sample
   covariance of an emcee run with ``uncertainty="emcee"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import astropy.units as u
import numpy as np
import torch
from specutils import SpectrumList
from torch import Tensor

from ..ops import C_KMS, Doppler, Telluric
from ..ops.resample import DEFAULT_MARGIN, DEFAULT_OVERSAMPLE
from ..spectra.orders import OrderBatch, as_order_batch
from .errors import FitError, FitInputError
from .optimize import OptimizeResult, minimize_newton
from .problem import FitProblem
from .result import FitResult
from .uncertainty import laplace_covariance, sample_emcee

__all__ = ["SpectrumFitter", "fit"]

_UNCERTAINTY = ("laplace", "emcee")
_SCAN_ELEMENTS = 2**21  # model-grid values per chunk of the velocity scan (memory bound)
_SCAN_TELLURIC_CHANGE = 0.01  # scans ignore pixels a unit of telluric strength changes more
_SCAN_MIN_PIXELS = 100  # ... unless fewer pixels of the order would be left


class SpectrumFitter:
    """Fit a model to échelle spectra: all orders jointly, several starts, uncertainties.

    Parameters
    ----------
    model : SpectralEmulator or Operator
        An emulator, a chain of :mod:`stellarai.ops` operators that starts with a source
        (``emu | Rotation() | Doppler() * Telluric.from_muler("hpf") | Instrument(...)``),
        or a chain without a source, which then acts on a flat spectrum of 1 (for example
        ``Telluric.from_muler("hpf") | Instrument(...)`` for a featureless hot star). Its
        free parameters are fitted; its current values are the first start. The model is
        copied, never changed. Do not add a :class:`~stellarai.ops.Resample` or a
        continuum: the fitter appends both.
    starts : int
        Starting points per spectrum (>= 1).
    seed : int
        Seed of the random starts (the same for every spectrum).
    continuum_degree : int
        Degree of each order's Chebyshev continuum, solved linearly (-1: none).
    uncertainty : {"laplace", "emcee"}
        Laplace approximation (default), or emcee sampling (slower; sets ``samples``).
    progress : bool
        Show tqdm progress bars.
    max_iter : int
        Newton iterations at most.
    tol : float
        Convergence threshold on the Newton decrement (in units of chi-square / 2).
    margin, oversample, resolving_power
        Model grid (see :func:`~stellarai.ops.model_grid_for`); free ``rv`` and ``vsini``
        are searched within 0.5 and 0.35 of the margin (noted in the result's message).
    free, fixed : sequence of str
        Parameter names to free or fix (in the fitter's copy of the model).
    rv_scan : bool
        Scan the radial velocity (and a free telluric strength) before optimizing
        (default True).
    explore_iter : int
        With several starts, every start gets this many Newton iterations (default 15);
        then only the best start of each spectrum (lowest objective) goes on, up to
        ``max_iter`` in all. ``FitResult.starts_chi2`` holds every start's value after
        this exploration.
    label_candidates : int
        With several starts, starts 1, 2, ... are the best of this many random label
        vectors by chi-square at start 0's other values (default 32; fewer than
        ``starts``: the first random vectors, unscanned).
    emcee : dict, optional
        ``nwalkers``, ``nsteps``, ``burn`` for ``uncertainty="emcee"``.

    Examples
    --------
    See :doc:`/fitting`.
    """

    def __init__(self, model: Any, *, starts: int = 8, seed: int = 0, continuum_degree: int = 2,
                 uncertainty: str = "laplace", progress: bool = True, max_iter: int = 100,
                 tol: float = 1e-6, margin: Any = DEFAULT_MARGIN,
                 oversample: float = DEFAULT_OVERSAMPLE, resolving_power: float | None = None,
                 free: Sequence[str] = (), fixed: Sequence[str] = (), rv_scan: bool = True,
                 explore_iter: int = 15, label_candidates: int = 32,
                 emcee: dict[str, Any] | None = None) -> None:
        if isinstance(starts, bool) or not isinstance(starts, (int, np.integer)) or starts < 1:
            raise FitError(f"starts must be an integer >= 1, got {starts!r}")
        if uncertainty not in _UNCERTAINTY:
            raise FitError(f"uncertainty must be one of {_UNCERTAINTY}, got {uncertainty!r}")
        if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) \
                or max_iter < 1:
            raise FitError(f"max_iter must be an integer >= 1, got {max_iter!r}")
        self.model = model
        self.starts = int(starts)
        self.seed = int(seed)
        self.continuum_degree = continuum_degree
        self.uncertainty = uncertainty
        self.progress = bool(progress)
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.rv_scan = bool(rv_scan)
        if isinstance(explore_iter, bool) or not isinstance(explore_iter, (int, np.integer)) \
                or explore_iter < 1:
            raise FitError(f"explore_iter must be an integer >= 1, got {explore_iter!r}")
        self.explore_iter = int(explore_iter)
        if isinstance(label_candidates, bool) or not isinstance(label_candidates,
                                                                (int, np.integer)) \
                or label_candidates < 0:
            raise FitError(f"label_candidates must be an integer >= 0, got "
                           f"{label_candidates!r}")
        self.label_candidates = int(label_candidates)
        self.emcee = dict(emcee or {})
        self._problem_options = dict(continuum_degree=continuum_degree, oversample=oversample,
                                     margin=margin, resolving_power=resolving_power,
                                     free=tuple([free] if isinstance(free, str) else free),
                                     fixed=tuple([fixed] if isinstance(fixed, str) else fixed),
                                     emulator_cache={})

    def problem(self, data: Any) -> FitProblem:
        """The :class:`~stellarai.fitting.problem.FitProblem` for ``data`` (for inspection)."""
        return FitProblem(self.model, _as_batch(data, "data"), **self._problem_options)

    # ------------------------------------------------------------------ public API
    def fit(self, data: Any) -> FitResult:
        """Fit one spectrum (a Spectrum, SpectrumList or muler EchelleSpectrumList)."""
        return self.fit_batch([data])[0]

    def fit_batch(self, datas: Sequence[Any]) -> list[FitResult]:
        """Fit several spectra in the same torch passes; same results as one by one.

        Spectra with identical pixel wavelengths (same orders) share one model grid and
        are fitted together, all their starts in one batch; other spectra form their own
        groups.
        """
        if isinstance(datas, SpectrumList):
            raise FitError("fit_batch takes a list of spectra, each a Spectrum or SpectrumList; "
                           "it got one SpectrumList (one échelle spectrum?): use fit(data), or "
                           "list(data) to fit each of its elements as a separate spectrum")
        if isinstance(datas, OrderBatch) or not isinstance(datas, Sequence) or not datas:
            raise FitError("fit_batch needs a non-empty sequence of spectra (a list of "
                           "Spectrum / SpectrumList)")
        batches = [_as_batch(d, f"datas[{i}]") for i, d in enumerate(datas)]
        groups: dict[bytes, list[int]] = {}
        for i, batch in enumerate(batches):
            key = batch.wavelength.numpy().tobytes() + batch.npix.numpy().tobytes()
            groups.setdefault(key, []).append(i)
        results: list[FitResult | None] = [None] * len(batches)
        for members in groups.values():
            for i, result in zip(members, self._fit_group([batches[i] for i in members]),
                                 strict=True):
                results[i] = result
        return [r for r in results if r is not None]

    # ------------------------------------------------------------------ the work
    def _fit_group(self, batches: list[OrderBatch]) -> list[FitResult]:
        problem = FitProblem(self.model, batches[0], **self._problem_options)
        data = torch.stack([torch.where(b.mask, torch.zeros_like(b.flux), b.flux)
                            for b in batches])
        weights = torch.stack([b.weights for b in batches])
        n_spec, n_start = len(batches), self.starts
        starts = problem.random_starts(n_start, self.seed)
        theta0 = starts.repeat(n_spec, 1)
        scan = _scan_weights(problem, starts[0], weights)
        if self.rv_scan:
            theta0 = self._scan_rv(problem, theta0, data, *scan)
            theta0 = self._scan_strength(problem, theta0, data, weights)
        theta0 = self._scan_labels(problem, theta0, data, *scan)
        spectrum_of = torch.arange(n_spec).repeat_interleave(n_start)

        def objective_for(owner: Tensor) -> Any:
            def objective(raw: Tensor, rows: Tensor) -> Tensor:
                which = owner[rows]
                return problem.neg_log_posterior(problem.from_unconstrained(raw),
                                                 data[which], weights[which])
            return objective

        explore = self.max_iter if n_start == 1 else min(self.explore_iter, self.max_iter)
        first = minimize_newton(objective_for(spectrum_of), problem.to_unconstrained(theta0),
                                max_iter=explore, tol=self.tol, progress=self.progress,
                                description=f"fitting {n_spec} spectra x {n_start} starts")
        value = first.value.reshape(n_spec, n_start)
        value = torch.where(torch.isfinite(value), value, torch.full_like(value, math.inf))
        ranked = torch.sort(value, dim=-1, stable=True).indices
        best_start = ranked[:, 0].clone()
        best_rows = torch.arange(n_spec) * n_start + best_start
        solution = first
        if explore < self.max_iter:
            solution = minimize_newton(objective_for(torch.arange(n_spec)),
                                       first.x[best_rows], max_iter=self.max_iter - explore,
                                       tol=self.tol, progress=self.progress,
                                       description=f"refining {n_spec} best starts",
                                       iterations_before=first.iterations[best_rows])
            best_rows = torch.arange(n_spec)
            for rank in range(1, n_start):
                good = solution.converged & ~_at_bound(problem, problem.from_unconstrained(
                    solution.x).detach(), sorted(problem.label_columns())).any(-1)
                retry = torch.nonzero(~good & torch.isfinite(
                    value[torch.arange(n_spec), ranked[:, rank]])).flatten()
                if not len(retry):
                    break
                rows = retry * n_start + ranked[retry, rank]
                other = minimize_newton(objective_for(retry), first.x[rows],
                                        max_iter=self.max_iter - explore, tol=self.tol,
                                        progress=self.progress,
                                        description=f"refining {len(retry)} next starts",
                                        iterations_before=first.iterations[rows])
                fine = other.converged & ~_at_bound(problem, problem.from_unconstrained(
                    other.x).detach(), sorted(problem.label_columns())).any(-1)
                for j in torch.nonzero(fine).flatten().tolist():
                    k = int(retry[j])
                    _take(solution, k, other, j)
                    best_start[k] = ranked[k, rank]
        theta = problem.from_unconstrained(solution.x[best_rows]).detach()

        def physical(x: Tensor, rows: Tensor) -> Tensor:
            return problem.neg_log_posterior(x, data[rows], weights[rows])

        covariance, notes = laplace_covariance(physical, theta)
        with torch.no_grad():
            final = problem.evaluate(theta, data, weights)
        results = []
        for k, batch in enumerate(batches):
            row = int(best_rows[k])
            result = self._result(problem, batch, theta[k], covariance[k], final, k,
                                  solution, row, int(best_start[k]), value[k],
                                  first.converged.reshape(n_spec, n_start)[k], notes[k])
            result._fitter, result._index = self, k
            result._context = (problem, data[k], weights[k])
            if self.uncertainty == "emcee":
                result.sample(progress=self.progress, **self.emcee)
                result.covariance = np.atleast_2d(np.cov(result.samples.T))
                result.uncertainty_method = "emcee"
            results.append(result)
        return results

    def _scan_rv(self, problem: FitProblem, theta0: Tensor, data: Tensor, weights: Tensor,
                 orders: Tensor | None) -> Tensor:
        """Set each spectrum's starting ``rv`` to the best of a velocity scan at start 0."""
        positions = [i for i, name in enumerate(problem.names)
                     if isinstance(problem._specs[name][0], Doppler)]
        if len(positions) != 1:
            return theta0
        low, high = problem.bounds()[positions[0]].tolist()
        step = 0.5 * C_KMS / problem.resolving_power
        velocities = torch.arange(math.ceil(low / step), math.floor(high / step) + 1,
                                  dtype=torch.float64) * step
        return self._scan_column(problem, theta0, data, weights, orders, positions[0],
                                 velocities)

    def _scan_strength(self, problem: FitProblem, theta0: Tensor, data: Tensor,
                       weights: Tensor) -> Tensor:
        """Set the starting telluric ``strength`` by a coarse, then a fine scan (all
        pixels), so that the Newton steps start near the telluric optimum."""
        positions = [i for i, name in enumerate(problem.names)
                     if isinstance(problem._specs[name][0], Telluric)
                     and problem._specs[name][1] == "strength"]
        if len(positions) != 1:
            return theta0
        p = positions[0]
        low, high = problem.bounds()[p].tolist()
        if not math.isfinite(low):
            return theta0
        high = min(high, low + 10.0)
        coarse = torch.linspace(low, high, 11, dtype=torch.float64)
        theta0 = self._scan_column(problem, theta0, data, weights, None, p, coarse)
        step = float(coarse[1] - coarse[0])
        fine = torch.linspace(-step, step, 11, dtype=torch.float64)
        values = (theta0[::self.starts, p, None] + fine).clamp(low, high)
        return self._scan_column(problem, theta0, data, weights, None, p, values)

    def _scan_column(self, problem: FitProblem, theta0: Tensor, data: Tensor,
                     weights: Tensor, orders: Tensor | None, p: int, values: Tensor
                     ) -> Tensor:
        """Set column ``p`` of every start to the best of ``values`` (``(n,)``, or
        ``(n_spec, n)``: per spectrum) at start 0 of each spectrum."""
        n_spec = data.shape[0]
        values = values.expand(n_spec, -1)
        n_v = values.shape[1]
        trial = theta0[::self.starts].repeat_interleave(n_v, 0)
        trial[:, p] = values.reshape(-1)
        chi2 = _chi2_of(problem, trial, torch.arange(n_spec).repeat_interleave(n_v), data,
                        weights, orders)
        best = values.gather(1, chi2.reshape(n_spec, n_v).argmin(-1, keepdim=True))[:, 0]
        out = theta0.clone()
        out[:, p] = best.repeat_interleave(self.starts)
        return out

    def _scan_labels(self, problem: FitProblem, theta0: Tensor, data: Tensor,
                     weights: Tensor, orders: Tensor | None) -> Tensor:
        """Starts 1, 2, ... of each spectrum: the labels of the best ``label_candidates``
        random label vectors (chi-square at start 0's other values, e.g. the scanned rv)."""
        columns = sorted(problem.label_columns())
        if self.starts == 1 or not columns or self.label_candidates < self.starts:
            return theta0
        candidates = problem.random_starts(self.label_candidates + 1, self.seed)[1:, columns]
        n_spec, n_c = data.shape[0], len(candidates)
        base = theta0[::self.starts]
        trial = base.repeat_interleave(n_c, 0)
        trial[:, columns] = candidates.repeat(n_spec, 1)
        chi2 = _chi2_of(problem, trial, torch.arange(n_spec).repeat_interleave(n_c), data,
                        weights, orders).reshape(n_spec, n_c)
        order = torch.sort(chi2, dim=-1, stable=True).indices[:, :self.starts - 1]
        out = theta0.clone().reshape(n_spec, self.starts, -1)
        out[:, 1:, columns] = candidates[order]
        return out.reshape(theta0.shape)

    def _result(self, problem: FitProblem, batch: OrderBatch, theta: Tensor,
                covariance: Tensor, final: Any, k: int, solution: Any, row: int,
                best_start: int, start_values: Tensor, start_converged: Tensor,
                note: str) -> FitResult:
        messages = [solution.messages[row]] + ([note] if note else [])
        near = _at_bound(problem, theta[None])[0]
        at_bound = [problem.display_names[i] for i in torch.nonzero(near).flatten().tolist()]
        if at_bound:
            messages.append(f"at a bound: {', '.join(at_bound)}")
        messages.extend(problem.notes)
        wavelength, flux, sigma, mask, model = [], [], [], [], []
        for i, n in enumerate(batch.npix.tolist()):
            wavelength.append(batch.wavelength[i, :n].numpy())
            flux.append(batch.flux[i, :n].numpy())
            ivar = batch.ivar[i, :n].numpy()
            with np.errstate(divide="ignore"):
                sigma.append(np.where(ivar > 0, 1 / np.sqrt(ivar), np.inf))
            mask.append((batch.weights[i, :n] <= 0).numpy())
            model.append(final.flux[k, i, :n].numpy())
        units = ["" if unit == u.dimensionless_unscaled else unit.to_string()
                 for unit in problem.units()]
        finite = bool(torch.isfinite(start_values).any())
        return FitResult(
            names=problem.display_names, units=units, values=theta.numpy(),
            covariance=covariance.numpy(), chi2_per_order=final.chi2_per_order[k].numpy(),
            n_pixels=(batch.weights > 0).sum(-1).numpy(), orders=batch.order.numpy(),
            continuum=final.continuum[k].numpy(),
            converged=bool(solution.converged[row]) and finite,
            message="; ".join(m for m in messages if m), wavelength=wavelength, flux=flux,
            sigma=sigma, mask=mask, model_flux=model,
            flux_unit=batch.records[0].flux_unit.to_string(), uncertainty_method="laplace",
            iterations=int(solution.iterations[row]),
            gradient_norm=float(solution.gradient_norm[row]),
            starts_chi2=(2 * start_values).numpy(), starts_converged=start_converged.numpy(),
            meta={"parameters": list(problem.names), "start": best_start,
                  "newton_decrement": float(solution.decrement[row]),
                  "last_step": float(solution.last_step[row])})

    def _sample(self, result: FitResult, *, nwalkers: int | None, nsteps: int,
                burn: int | None, seed: int, progress: bool) -> np.ndarray:
        problem, data, weights = result._context

        def log_probability(theta: Tensor) -> Tensor:
            inside = problem.inside(theta)
            out = torch.full((theta.shape[0],), -math.inf, dtype=torch.float64)
            if bool(inside.any()):
                value = -problem.neg_log_posterior(theta[inside], data, weights)
                out[inside] = torch.where(torch.isfinite(value), value,
                                          torch.full_like(value, -math.inf))
            return out

        return sample_emcee(log_probability, result.values, result.uncertainties,
                            nwalkers=nwalkers, nsteps=nsteps, burn=burn, seed=seed,
                            progress=progress)


def _at_bound(problem: FitProblem, theta: Tensor, columns: Sequence[int] | None = None
              ) -> Tensor:
    """``(b, P)`` (or ``(b, len(columns))``): True where a value lies at its bound (within
    1e-6 of the bounds' range)."""
    bounds = problem.bounds()
    gap = torch.minimum(theta - bounds[:, 0], bounds[:, 1] - theta)
    near = gap <= 1e-6 * torch.where(torch.isfinite(bounds[:, 1] - bounds[:, 0]),
                                     bounds[:, 1] - bounds[:, 0], theta.abs() + 1)
    return near if columns is None else near[:, list(columns)]


def _take(solution: OptimizeResult, k: int, other: OptimizeResult, j: int) -> None:
    """Replace problem ``k`` of ``solution`` by problem ``j`` of ``other`` (in place)."""
    for name in ("x", "value", "gradient_norm", "decrement", "last_step", "iterations",
                 "converged"):
        getattr(solution, name)[k] = getattr(other, name)[j]
    solution.messages[k] = other.messages[j]


def _chi2_of(problem: FitProblem, trial: Tensor, which: Tensor, data: Tensor,
             weights: Tensor, orders: Tensor | None = None) -> Tensor:
    """Chi-square of parameter rows ``trial`` against spectra ``which``, summed over the
    ``orders`` (a boolean mask; default all), inf where not finite; evaluated in chunks
    that bound the memory."""
    chi2 = torch.empty(len(trial), dtype=torch.float64)
    chunk = max(1, _SCAN_ELEMENTS // problem.grid.numel())
    with torch.no_grad():
        for start in range(0, len(trial), chunk):
            rows = slice(start, start + chunk)
            per_order = problem.evaluate(trial[rows], data[which[rows]],
                                         weights[which[rows]]).chi2_per_order
            if orders is not None:
                per_order = torch.where(orders, per_order, torch.zeros_like(per_order))
            chi2[rows] = per_order.sum(-1)
    return torch.where(torch.isfinite(chi2), chi2, torch.full_like(chi2, math.inf))


def _scan_weights(problem: FitProblem, base: Tensor, weights: Tensor
                  ) -> tuple[Tensor, Tensor | None]:
    """Weights and orders for the scans: without the pixels that a free telluric
    ``strength`` changes by more than 1% per unit of strength, and without the orders
    left with fewer than ``_SCAN_MIN_PIXELS`` such pixels (``None``: all orders). At the
    starting strength, the telluric residuals of a telluric-dominated order would
    otherwise outweigh the star's lines and pull the velocity scan away."""
    positions = [i for i, name in enumerate(problem.names)
                 if isinstance(problem._specs[name][0], Telluric)
                 and problem._specs[name][1] == "strength"]
    if not positions:
        return weights, None
    trial = base.repeat(2, 1)
    trial[1, positions] += 1.0
    with torch.no_grad():
        flux = problem.model_flux(trial)
    change = (flux[1] / flux[0] - 1).abs()
    keep = torch.isfinite(change) & (change <= _SCAN_TELLURIC_CHANGE)
    orders = keep.sum(-1) >= _SCAN_MIN_PIXELS
    if not bool(orders.any()):
        return weights, None
    return weights * keep, orders


def _as_batch(data: Any, name: str) -> OrderBatch:
    if isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        raise FitInputError(f"{name}: got a file name ({data!r}); read it first, e.g. with "
                            "stellarai.io or muler's HPFSpectrumList.read")
    return as_order_batch(data)


def fit(model: Any, data: Any, *, starts: int = 8, seed: int = 0, uncertainty: str = "laplace",
        continuum_degree: int = 2, progress: bool = True, **options: Any) -> FitResult:
    """Fit ``model`` to ``data``, all orders jointly: a thin wrapper over
    :class:`SpectrumFitter` (``options`` are its other keywords).

    Parameters
    ----------
    model : SpectralEmulator or Operator
        See :class:`SpectrumFitter`.
    data : Spectrum, SpectrumList or muler EchelleSpectrumList
        The observed orders, with uncertainties (without, every pixel has weight 1).

    Returns
    -------
    FitResult
    """
    fitter = SpectrumFitter(model, starts=starts, seed=seed, uncertainty=uncertainty,
                            continuum_degree=continuum_degree, progress=progress, **options)
    return fitter.fit(data)
