r"""A batched, damped Newton optimizer for many independent small problems at once.

Each row of the batch is its own problem (one spectrum and one start): the objective is a
function ``fun(x, rows) -> (len(rows),)`` of a ``(len(rows), P)`` tensor, whose row ``i``
depends on ``x[i]`` only. One backward pass gives every row's gradient and ``P`` more
(double backward) give every row's ``P x P`` Hessian, so all problems advance together in
the same torch passes, and each problem's path depends on its own values only: a problem
solved in a batch follows the same steps as solved alone.

The step is Levenberg-Marquardt on the exact Hessian made positive definite
(eigenvalues replaced by their absolute values, as in saddle-free Newton),
:math:`(|H| + \lambda\,\mathrm{diag}|H|)\,\delta = -g`, with :math:`\lambda`
decreased after a step that lowers the objective and increased otherwise, per problem.

Convergence: the Newton decrement :math:`\tfrac12 g^\top H^{-1} g` (the decrease a full
Newton step would still bring) falls below ``tol`` with a positive-definite Hessian.
The objective changing by less than ``tol (1 + |f|)`` over 8 iterations with a
positive-definite Hessian also counts as converged; with an indefinite one the problem
stops unconverged (a saddle, or a parameter driven against a bound, where more
iterations bring nothing). When no step lowers the objective any more (damping beyond
1e12: not even a short step down the gradient does), the point is a local minimum of a
non-smooth objective (a leaky-ReLU emulator is piecewise linear in its labels) and counts
as converged if the
Hessian there is positive definite. A problem stops unconverged, with the reason, when
``max_iter`` is reached or when the objective is not finite at the start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor
from tqdm.auto import tqdm

__all__ = ["OptimizeResult", "minimize_newton", "value_grad_hessian"]

Objective = Callable[[Tensor, Tensor], Tensor]

_LAMBDA_START = 1e-3
_LAMBDA_MIN = 1e-9
_LAMBDA_MAX = 1e12
_WINDOW = 8


@dataclass
class OptimizeResult:
    """Where each problem ended and why."""

    x: Tensor
    """``(batch, P)``: the solution (unconstrained coordinates)."""
    value: Tensor
    """``(batch,)``: the objective there."""
    gradient_norm: Tensor
    """``(batch,)``: Euclidean norm of the gradient there."""
    decrement: Tensor
    """``(batch,)``: Newton decrement ``g^T H^-1 g / 2`` (NaN if H is not positive definite)."""
    last_step: Tensor
    """``(batch,)``: norm of the last accepted step."""
    iterations: Tensor
    """``(batch,)``: Newton iterations taken."""
    converged: Tensor
    """``(batch,)``: True where the convergence test passed."""
    messages: list[str] = field(default_factory=list)
    """One message per problem."""


def value_grad_hessian(fun: Objective, x: Tensor, rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Objective ``(b,)``, gradient ``(b, P)`` and Hessian ``(b, P, P)`` of every row."""
    with torch.enable_grad():
        x = x.detach().clone().requires_grad_(True)
        value = fun(x, rows)
        (grad,) = torch.autograd.grad(value.sum(), x, create_graph=True)
        columns = [torch.autograd.grad(grad[:, i].sum(), x, retain_graph=True)[0]
                   for i in range(x.shape[1])]
    hessian = torch.stack(columns, dim=-1)
    hessian = 0.5 * (hessian + hessian.transpose(-1, -2))
    return value.detach(), grad.detach(), hessian.detach()


def _positive_definite(hessian: Tensor) -> Tensor:
    """The Hessian with its eigenvalues replaced by their absolute values (floored at 1e-10
    of the largest): away from the optimum the Hessian may be indefinite, and a step along
    a negative-curvature direction should go downhill, not up (saddle-free Newton)."""
    values, vectors = torch.linalg.eigh(hessian)
    magnitude = values.abs()
    floor = 1e-10 * magnitude.amax(-1, keepdim=True).clamp_min(1e-300)
    magnitude = torch.maximum(magnitude, floor)
    return (vectors * magnitude[..., None, :]) @ vectors.transpose(-1, -2)


def _decrement(grad: Tensor, hessian: Tensor) -> Tensor:
    chol, info = torch.linalg.cholesky_ex(hessian)
    solved = torch.cholesky_solve(grad[..., None], chol)[..., 0]
    out = 0.5 * (grad * solved).sum(-1)
    return torch.where(info == 0, out, torch.full_like(out, float("nan")))


def minimize_newton(fun: Objective, x0: Tensor, *, max_iter: int = 100, tol: float = 1e-6,
                    progress: bool = False, description: str = "fitting",
                    iterations_before: Tensor | None = None) -> OptimizeResult:
    """Minimize ``fun`` from every row of ``x0`` (see the module notes).

    Parameters
    ----------
    fun : callable
        ``fun(x, rows)``: objective of the problems ``rows`` (an index tensor) at ``x``
        (``(len(rows), P)``), shape ``(len(rows),)``; differentiable twice.
    x0 : torch.Tensor
        ``(batch, P)`` starting points.
    max_iter : int
        Iterations at most (each one Newton step per unfinished problem).
    tol : float
        Convergence threshold on the Newton decrement (units of the objective).
    progress : bool
        Show a tqdm bar over the iterations.
    description : str
        The bar's label.
    iterations_before : torch.Tensor, optional
        ``(batch,)`` iterations already spent on each problem (when continuing an
        earlier run), counted in the result.

    Returns
    -------
    OptimizeResult
    """
    x = x0.detach().clone()
    n = x.shape[0]
    every = torch.arange(n)
    value, grad, hessian = value_grad_hessian(fun, x, every)
    damping = torch.full((n,), _LAMBDA_START, dtype=x.dtype)
    iterations = (torch.zeros(n, dtype=torch.int64) if iterations_before is None
                  else iterations_before.clone())
    last_step = torch.zeros(n, dtype=x.dtype)
    converged = torch.zeros(n, dtype=torch.bool)
    messages = [""] * n
    active = torch.isfinite(value) & torch.isfinite(grad).all(-1)
    for i in torch.nonzero(~active).flatten().tolist():
        messages[i] = "the objective is not finite at the start (model NaN or out of range)"
    decrement = _decrement(grad, hessian)
    done = active & (decrement < tol)
    converged |= done
    active &= ~done
    history = value[:, None].repeat(1, _WINDOW)
    bar = tqdm(total=max_iter, desc=description, disable=not progress, leave=False)
    for iteration in range(max_iter):
        if not bool(active.any()):
            break
        rows = torch.nonzero(active).flatten()
        h, g = _positive_definite(hessian[rows]), grad[rows]
        scale = h.diagonal(dim1=-2, dim2=-1).clamp_min(1e-12)
        damped = h + torch.diag_embed(damping[rows, None] * scale)
        chol, info = torch.linalg.cholesky_ex(damped)
        step = -torch.cholesky_solve(g[..., None], chol)[..., 0]
        definite = info == 0
        step = torch.where(definite[:, None], step, torch.zeros_like(step))
        trial = x[rows] + step
        with torch.no_grad():
            trial_value = fun(trial, rows)
        accept = definite & torch.isfinite(trial_value) & (trial_value <= value[rows])
        iterations[rows] += 1
        damping[rows] = torch.where(accept, (damping[rows] / 3).clamp_min(_LAMBDA_MIN),
                                    damping[rows] * 4)
        moved = rows[accept]
        if len(moved):
            x[moved] = trial[accept]
            last_step[moved] = step[accept].norm(dim=-1)
            value[moved], grad[moved], hessian[moved] = value_grad_hessian(fun, x[moved], moved)
            decrement[moved] = _decrement(grad[moved], hessian[moved])
            done = moved[decrement[moved] < tol]
            converged[done] = True
            active[done] = False
        history[rows, iteration % _WINDOW] = value[rows]
        if iteration >= _WINDOW:
            change = history[rows].max(-1).values - value[rows]
            flat = rows[(change < tol * (1 + value[rows].abs())) & active[rows]]
            for i in flat.tolist():
                active[i] = False
                if not bool(torch.isfinite(decrement[i])):
                    messages[i] = (f"stopped after {int(iterations[i])} iterations where the "
                                   f"objective changed by less than {tol:g} x (1 + "
                                   f"|objective|) over the last {_WINDOW} but the Hessian is "
                                   "not positive definite (a saddle, or a parameter driven "
                                   f"against a bound; gradient norm {float(grad[i].norm()):.3g})")
                    continue
                converged[i] = True
                messages[i] = (f"converged in {int(iterations[i])} iterations: the objective "
                               f"changed by less than {tol:g} x (1 + |objective|) over the "
                               f"last {_WINDOW} (Newton decrement {float(decrement[i]):.3g}; "
                               "a non-smooth model, or an optimum at a bound)")
        stalled = rows[damping[rows] > _LAMBDA_MAX]
        for i in stalled.tolist():
            active[i] = False
            if bool(torch.isfinite(decrement[i])):
                converged[i] = True
                messages[i] = (f"converged in {int(iterations[i])} iterations: not even a "
                               f"short step down the gradient lowers the objective (a kink "
                               f"of a non-smooth model; Newton decrement "
                               f"{float(decrement[i]):.3g})")
            else:
                messages[i] = (f"stalled where the Hessian is not positive definite (gradient "
                               f"norm {float(grad[i].norm()):.3g})")
        bar.update(1)
        bar.set_postfix(running=int(active.sum()))
    bar.close()
    for i in torch.nonzero(active).flatten().tolist():
        messages[i] = (f"did not converge in {max_iter} iterations (Newton decrement "
                       f"{float(decrement[i]):.3g}, gradient norm {float(grad[i].norm()):.3g})")
    for i in torch.nonzero(converged).flatten().tolist():
        if messages[i]:
            continue
        messages[i] = (f"converged in {int(iterations[i])} iterations (Newton decrement "
                       f"{float(decrement[i]):.2g} < {tol:g})")
    return OptimizeResult(x=x, value=value, gradient_norm=grad.norm(dim=-1),
                          decrement=decrement, last_step=last_step, iterations=iterations,
                          converged=converged, messages=messages)
