r"""The fused sparse kernel: sum of pseudo-Voigt line absorptions over their windows.

For each element (line :math:`i`, pixel :math:`j` of its window) with offset
:math:`x = \lambda_j - \lambda_{0,i} - \delta_i` (:math:`\delta_i` the move of the
centre), the absorption is :math:`v = c_L/(x^2 + h^2) + c_G e^{-k x^2}` and its
contribution to :math:`\ln F_j` is :math:`\ln(1 - v)` (product model) or :math:`-v`
(exp model). The per-pixel sum is one ``index_add`` over the flattened grid.

The forward and backward passes run over blocks of about 64k elements so that the
intermediate values stay in the processor's cache; the backward pass recomputes them
rather than storing per-element tensors, and reduces each line's derivatives
(:math:`\partial/\partial c_L, h^2, c_G, k, \delta`) along its window. Memory is that of
the plan (index and offset per element) plus one gradient per element.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .sparse import SparsePlan

__all__ = ["pseudo_voigt_log_flux"]

_BLOCK = 32_000  # elements per block: below torch's parallel grain size (32,768), so each
# block runs on one thread (no stalls of a parallel region on a busy machine)
_EXP_FLOOR = -80.0
"""The Gaussian term's exponent is floored here (e^-80 ~ 2e-35: nothing, but a normal
float32; exp of far more negative numbers takes a slow path on x86 processors)."""


def _blocks(plan: SparsePlan):
    """Yield (segment slice, element slice, width) blocks of about _BLOCK elements."""
    seg = el = 0
    for width, count in zip(plan.widths, plan.counts, strict=True):
        step = max(1, _BLOCK // width)
        for first in range(0, count, step):
            n = min(step, count - first)
            a = el + first * width
            yield slice(seg + first, seg + first + n), slice(a, a + n * width), n, width
        seg += count
        el += width * count


def _values(off: Tensor, n: int, width: int, rows: slice, c: tuple[Tensor, ...]
            ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    lorentz, h2, gauss, k, move = (t[rows, None] for t in c)
    x = off.view(n, width) - move
    x2 = x * x
    d = x2 + h2
    v_l = lorentz / d
    e = torch.exp((-k * x2).clamp_(min=_EXP_FLOOR))
    return x, x2, d, v_l, e


class _PseudoVoigtLogFlux(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, lorentz: Tensor, h2: Tensor, gauss: Tensor, k: Tensor,
                move: Tensor, plan: SparsePlan, product: bool, cap: float) -> Tensor:
        c = (lorentz, h2, gauss, k, move)
        values = torch.empty_like(plan.offset)
        for rows, els, n, width in _blocks(plan):
            _, _, _, v_l, e = _values(plan.offset[els], n, width, rows, c)
            v = e.mul_(gauss[rows, None]).add_(v_l)
            out = values[els].view(n, width)
            if product:
                torch.log1p(v.clamp_(max=cap).neg_(), out=out)
            else:
                torch.neg(v, out=out)
        total = torch.zeros(plan.n_flat + 1, dtype=values.dtype, device=values.device)
        total.index_add_(0, plan.index, values)
        ctx.save_for_backward(*c)
        ctx.plan, ctx.product, ctx.cap = plan, product, cap
        return total

    @staticmethod
    def backward(ctx: Any, grad_total: Tensor) -> tuple[Tensor | None, ...]:
        c = ctx.saved_tensors
        lorentz, h2, gauss, k, move = c
        plan = ctx.plan
        g_all = grad_total.index_select(0, plan.index)
        grads = [torch.zeros_like(t) for t in c]
        for rows, els, n, width in _blocks(plan):
            x, x2, d, v_l, e = _values(plan.offset[els], n, width, rows, c)
            g = g_all[els].view(n, width)
            ge = gauss[rows, None] * e
            if ctx.product:
                v = v_l + ge
                g = torch.where(v < ctx.cap, -g / (1.0 - v), torch.zeros_like(g))
            else:
                g = -g
            g_d = g / d
            grads[0][rows] = g_d.sum(1)
            g_vl_d = g_d * v_l
            grads[1][rows] = -g_vl_d.sum(1)
            grads[2][rows] = (g * e).sum(1)
            g_ge = g * ge
            grads[3][rows] = -(g_ge * x2).sum(1)
            # dv/dx = -2x (c_L/d^2 + k c_G e), x = offset - move
            grads[4][rows] = (2.0 * x * (g_vl_d + k[rows, None] * g_ge)).sum(1)
        return (*grads, None, None, None)


def pseudo_voigt_log_flux(lorentz: Tensor, h2: Tensor, gauss: Tensor, k: Tensor,
                          move: Tensor, plan: SparsePlan, *, product: bool = True,
                          cap: float = 1.0 - 1e-6) -> Tensor:
    """Per-pixel sum of the lines' log-flux contributions, ``(n_flat + 1,)``.

    The five per-segment inputs (``(n_seg,)``, one per window segment of
    ``plan``) are the pseudo-Voigt coefficients
    (:func:`~stellarai.lines.profiles.pseudo_voigt_coefficients`) and the move of the
    centre (Angstrom). Differentiable in all five; the last element is the padding dump.
    """
    dtype = plan.offset.dtype
    return _PseudoVoigtLogFlux.apply(lorentz.to(dtype), h2.to(dtype), gauss.to(dtype),
                                     k.to(dtype), move.to(dtype), plan, product, cap)
