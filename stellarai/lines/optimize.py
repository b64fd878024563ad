"""One optimization loop for cloning and transfer learning: weighted least squares plus a
penalty, by Adam (cosine-decayed learning rate) or L-BFGS, on unconstrained parameters."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..ops.base import Operator, ParameterError

__all__ = ["OPTIMIZERS", "minimize"]

OPTIMIZERS = ("adam", "lbfgs")


def minimize(model: Operator, target: Tensor, weights: Tensor, *,
             penalty: Callable[[Mapping[str, Tensor]], Tensor] | None = None,
             steps: int = 200, lr: float = 0.01, optimizer: str = "adam",
             lr_groups: Mapping[str, float] | None = None, progress: bool = False,
             description: str = "fit") -> list[float]:
    r"""Minimize :math:`\tfrac12\sum w (F - d)^2 + P(\theta)` over ``model``'s free
    parameters, and write the result into ``model``.

    Parameters
    ----------
    model : Operator
        A chain that starts with a source (called as ``model.evaluate(values)``).
    target, weights : torch.Tensor
        Data and weights (inverse variances; 0 for pixels left out), the model's output
        shape.
    penalty : callable, optional
        Maps the physical parameter values (qualified names) to a scalar.
    steps : int
        Adam steps, or L-BFGS iterations.
    lr : float
        Learning rate of Adam (per parameter, in the unconstrained space).
    optimizer : {"adam", "lbfgs"}
    lr_groups : dict, optional
        Learning rates for named parameters that differ from ``lr`` (Adam).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    list of float
        The loss after each step (iteration).
    """
    if optimizer not in OPTIMIZERS:
        raise ParameterError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    raw = model.unconstrained()
    if not raw.raw:
        return []
    weights = weights.to(target.dtype)
    target = torch.where(weights > 0, target, torch.zeros_like(target))  # no NaN * 0

    def loss_fn() -> Tensor:
        values = raw.values()
        _, flux = model.evaluate(values)
        loss = 0.5 * (weights * (flux - target) ** 2).sum()
        if penalty is not None:
            loss = loss + penalty(values)
        return loss

    history: list[float] = []
    bar = tqdm(total=steps, desc=description, disable=not progress, leave=False)
    try:
        if optimizer == "lbfgs":
            opt = torch.optim.LBFGS(raw.parameters(), lr=1.0, max_iter=1, max_eval=25,
                                    history_size=20,
                                    line_search_fn="strong_wolfe")

            def closure() -> Tensor:
                opt.zero_grad()
                loss = loss_fn()
                loss.backward()
                return loss

            for _ in range(steps):
                history.append(float(opt.step(closure).detach()))
                bar.update()
                if len(history) > 1 and history[-1] == history[-2]:
                    break  # converged: no step changes the loss any more
        else:
            groups = [{"params": [p], "lr": (lr_groups or {}).get(name, lr)}
                      for name, p in raw.raw.items()]
            opt = torch.optim.Adam(groups, lr=lr)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1), lr * 0.0)
            for _ in range(steps):
                opt.zero_grad()
                loss = loss_fn()
                loss.backward()
                opt.step()
                sched.step()
                history.append(float(loss.detach()))
                bar.update()
    finally:
        bar.close()
    raw.apply()
    return history
