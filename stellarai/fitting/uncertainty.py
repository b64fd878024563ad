r"""Uncertainties: the Laplace approximation, and posterior sampling with emcee.

Laplace
    The covariance is the inverse of the Hessian of :math:`-\ln p(\theta\mid d) =
    \chi^2/2 - \ln p(\theta)` at the optimum, in the physical units of the parameters
    (autograd, double backward). The per-order continuum is *profiled*: it is solved by
    weighted least squares at every :math:`\theta`, and the Hessian is taken through that
    solution. For parameters that enter linearly with a flat prior (the continuum), the
    profile Hessian of the others equals their marginal precision, so the continuum's
    uncertainty is propagated, not ignored.

emcee
    Affine-invariant ensemble sampling (Foreman-Mackey et al. 2013, PASP 125, 306) of the
    same posterior (flat priors within the parameter bounds, times any Gaussian priors of
    the model), with the continuum profiled; the walkers start in a small Gaussian ball
    (a hundredth of the Laplace widths) at the optimum and the whole ensemble is evaluated
    in one vectorized model call per step.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from .optimize import value_grad_hessian

__all__ = ["laplace_covariance", "sample_emcee"]


def laplace_covariance(objective: Callable[[Tensor, Tensor], Tensor], theta: Tensor
                       ) -> tuple[Tensor, list[str]]:
    """Inverse Hessian of ``objective`` at each row of ``theta`` ``(b, P)``.

    Returns the ``(b, P, P)`` covariances (NaN where the Hessian is not positive
    definite) and one note per row (empty when fine).
    """
    _, _, hessian = value_grad_hessian(objective, theta, torch.arange(theta.shape[0]))
    chol, info = torch.linalg.cholesky_ex(hessian)
    eye = torch.eye(theta.shape[1], dtype=theta.dtype).expand_as(hessian)
    covariance = torch.cholesky_solve(eye, chol)
    notes = []
    for i, code in enumerate(info.tolist()):
        if code:
            covariance[i] = float("nan")
            notes.append("the Hessian of -log posterior is not positive definite at the "
                         "optimum: no Laplace uncertainties (a parameter may be "
                         "unconstrained by the data or sit at a bound)")
        else:
            notes.append("")
    return covariance, notes


def sample_emcee(log_probability: Callable[[Tensor], Tensor], theta: np.ndarray,
                 scale: np.ndarray, *, nwalkers: int | None = None, nsteps: int = 1000,
                 burn: int | None = None, seed: int = 0, progress: bool = True) -> np.ndarray:
    """Run emcee from a ball at ``theta`` and return the flattened samples after burn-in.

    Parameters
    ----------
    log_probability : callable
        ``(n, P)`` tensor -> ``(n,)`` log posterior (``-inf`` outside the bounds).
    theta : numpy.ndarray
        ``(P,)`` optimum.
    scale : numpy.ndarray
        ``(P,)`` widths (Laplace sigmas); the ball has a hundredth of them.
    nwalkers : int, optional
        Default ``max(4 P, 16)``, made even.
    nsteps, burn : int
        Steps, and how many to drop (default a third of them).
    seed : int
        Seed of the ball and of emcee's moves.
    progress : bool
        emcee's tqdm bar.
    """
    import emcee

    ndim = theta.size
    nwalkers = int(nwalkers or max(4 * ndim, 16))
    nwalkers += nwalkers % 2
    burn = nsteps // 3 if burn is None else int(burn)
    if not 0 <= burn < nsteps:
        raise ValueError(f"burn must be in [0, nsteps), got burn={burn}, nsteps={nsteps}")
    rng = np.random.default_rng(seed)
    width = np.where(np.isfinite(scale) & (scale > 0), scale, 1e-3 * (np.abs(theta) + 1e-3))

    def log_prob(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return log_probability(torch.from_numpy(np.asarray(x, np.float64))).numpy()

    ball = theta + 1e-2 * width * rng.standard_normal((nwalkers, ndim))
    for shrink in range(1, 40):  # walkers outside the bounds (an optimum at a bound) move in
        bad = ~np.isfinite(log_prob(ball))
        if not bad.any():
            break
        ball[bad] = theta + 1e-2 * 0.5**shrink * width * rng.standard_normal(
            (int(bad.sum()), ndim))
    else:
        raise ValueError("emcee: cannot place the walkers where the posterior is finite "
                         "around the optimum")

    sampler = emcee.EnsembleSampler(nwalkers, ndim, log_prob, vectorize=True)
    sampler.random_state = np.random.RandomState(int(rng.integers(2**31))).get_state()
    sampler.run_mcmc(ball, nsteps, progress=progress)
    return sampler.get_chain(discard=burn, flat=True)
