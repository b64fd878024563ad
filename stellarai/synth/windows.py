r"""Sparse evaluation plan: where each line is evaluated.

A line adds :math:`\eta_0 H(a, u)` to the opacity ratio. Far from its centre that is
below any useful precision, so each line is evaluated only on a *window*: the distance
beyond which :math:`\eta_0 H <` ``tolerance``, from the Gaussian core,
:math:`\eta_0 e^{-u^2}`, and the Lorentzian wings, :math:`\eta_0 a/(\sqrt\pi u^2)`, with
a factor 2 of margin (:func:`window_half_width`), capped at the profile cut-off.

Within the window the line has two parts, split at a label-independent *core radius*
(6 Doppler widths of the line at the hottest, most turbulent corner of the label space):

* the **core** is evaluated at every sub-pixel (for a weak line, whose window is
  smaller than the core radius, only within the window): by Weideman's branch of the
  Faddeeva function where a star of the batch may have :math:`|u| < 6` ("near"), by the
  cheaper continued fraction elsewhere ("far"), which is the same function to 3e-5;
* the **wings**, whole output pixels beyond the core radius, get the exact pixel
  average of the asymptotic profile (:func:`wing_average`, from a primitive evaluated
  once per pixel edge), the same for all the sub-pixels of the pixel: there the profile
  is smooth on the scale of a pixel.

Which sub-pixels and pixels a line covers beyond its window depends on the other stars
of a batch only through the tolerance (what is left out is below it), and the
near/far split only changes how, not what, is computed.

Window parts are cut into segments of contiguous sub-pixels or pixels, and segments of
similar length are grouped into buckets padded to a common width ``W``. A bucket is then
evaluated as one ``(segments, W, stars)`` tensor gathered by index tensors and scattered
back with an accumulating ``index_put_``: no Python loop over lines, no dense lines × pixels matrix
(unless asked for, with unbounded windows). Padding goes to a spare "dump" index that is
discarded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Bucket", "plan_windows", "wing_average", "wing_primitive", "window_half_width"]

CORE_DOPPLER_WIDTHS = 6.0
"""Core radius in Doppler widths: beyond it the asymptotic wing formula holds (abs(u) >= 6)."""

_SQRT_PI = math.sqrt(math.pi)


def _bucket_sizes(limit: int) -> np.ndarray:
    sizes = [1, 2, 3]
    p = 4
    while sizes[-1] < limit:
        sizes += [p, p + p // 4, p + p // 2, p + 3 * p // 4]
        p *= 2
    return np.array(sizes, dtype=np.int64)


@dataclass(frozen=True)
class Bucket:
    """Segments of one padded width.

    For sub-pixel buckets ``index`` holds sub-pixel indices and ``offset`` the distances
    λ − λ₀ (Å) of the sub-pixel centres, ``(n_seg, width)``; for wing buckets ``index``
    holds pixel indices and ``offset`` the distances of the ``width + 1`` pixel edges,
    ``(n_seg, width + 1)``.
    """

    width: int
    line: torch.Tensor  #: (n_seg,) line of each segment
    index: torch.Tensor  #: (n_seg, width); padding -> the dump index
    offset: torch.Tensor  #: (n_seg, width) or (n_seg, width + 1), Angstrom


def window_half_width(eta0: torch.Tensor, a: torch.Tensor, tolerance: float) -> torch.Tensor:
    r"""Half width, in Doppler widths, beyond which :math:`\eta_0 H(a, u) <` ``tolerance``.

    :math:`u_w^2 = \ln(2\eta_0/t) + 2\eta_0 a/(\sqrt\pi\,t)` (``t`` the tolerance): the
    Gaussian-core and Lorentzian-wing radii added in quadrature, each for half the
    tolerance. Beyond :math:`u_w`, :math:`\eta_0 H` stays below ``tolerance / 2`` for any
    :math:`\eta_0` and :math:`a` (tested from 1e-6 to 1e8 and 1e-4 to 10).

    Examples
    --------
    >>> import torch
    >>> w = window_half_width(torch.tensor([1e-6, 1.0, 1e4]), torch.tensor([0.01] * 3), 1e-5)
    >>> [round(v, 1) for v in w.tolist()]
    [0.0, 33.8, 3359.1]
    """
    core = torch.clamp(torch.log(2.0 * eta0 / tolerance), min=0.0)
    wings = 2.0 * eta0 * a / (_SQRT_PI * tolerance)
    return torch.sqrt(core + wings)


def wing_primitive(a: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    r"""A primitive of :math:`-H(a, u)` valid far from the core (:math:`|u| \ge 6`).

    :math:`F(u) = [\arctan(a/u) - \operatorname{Im} P(z)]/\sqrt\pi`, with
    :math:`P = z^{-2}/4 + 3z^{-4}/16 + 5z^{-6}/16 + 105z^{-8}/128`, integrates the
    asymptotic series :math:`w(z) \simeq (i/\sqrt\pi)(z^{-1} + z^{-3}/2 + 3z^{-5}/4 +
    15z^{-7}/8 + 105z^{-9}/16)` term by term, so that
    :math:`\int_{u_1}^{u_2} H\,du = F(u_1) - F(u_2)` for :math:`u_1 < u_2` on the same
    side of the line. ``arctan(a/u)`` keeps full relative precision however far out.
    """
    inv2 = torch.complex(u, a).reciprocal().square()
    poly = inv2 * (0.25 + inv2 * (0.1875 + inv2 * (0.3125 + inv2 * 0.8203125)))
    return (torch.atan(a / u) - poly.imag) / _SQRT_PI


def wing_average(a: torch.Tensor, u1: torch.Tensor, u2: torch.Tensor) -> torch.Tensor:
    r"""Mean of :math:`H(a, u)` over :math:`[u_1, u_2]` far from the core (:math:`|u| \ge 6`).

    :math:`(F(u_1) - F(u_2))/(u_2 - u_1)` with :func:`wing_primitive`. Relative error
    below 1e-5 where :math:`|u| \ge 6` (both ends on the same side of the line; the
    neglected :math:`e^{-u^2}` is below 3e-16).

    Examples
    --------
    >>> import torch
    >>> f64 = dict(dtype=torch.float64)
    >>> mean = wing_average(torch.tensor(0.1, **f64), torch.tensor(10.0, **f64),
    ...                     torch.tensor(12.0, **f64))
    >>> from scipy.integrate import quad
    >>> from scipy.special import voigt_profile
    >>> exact = quad(lambda u: voigt_profile(u, 2**-0.5, 0.1) * 3.141592653589793**0.5, 10, 12)
    >>> abs(float(mean) * 2 / exact[0] - 1) < 1e-6
    True
    """
    return (wing_primitive(a, u1) - wing_primitive(a, u2)) / (u2 - u1)


def nonempty_segments(start: np.ndarray, stop: np.ndarray, line: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel segments ``[start, stop)`` of each line, without the empty ones.

    Parameters
    ----------
    start, stop : numpy.ndarray
        First and one-past-last pixel index of each segment.
    line : numpy.ndarray
        The line each segment belongs to.

    Returns
    -------
    start, count, line : numpy.ndarray
        The segments with at least one pixel: their start, pixel count and line.
    """
    count = stop - start
    keep = count > 0
    return start[keep], count[keep], line[keep]


def make_buckets(start: np.ndarray, count: np.ndarray, line: np.ndarray, n_index: int,
             position: np.ndarray, center: np.ndarray, *, edges: bool = False,
             pad: float = 0.0) -> list[Bucket]:
    """Group segments into buckets of equal padded width, for batched gathers.

    Parameters
    ----------
    start, count, line : numpy.ndarray
        Segments as returned by :func:`nonempty_segments`.
    n_index : int
        Number of pixels; padded entries point at index ``n_index`` (one past the end).
    position : numpy.ndarray
        Sub-pixel centres, or pixel edges (``n + 1`` of them) when ``edges`` is True.
    center : numpy.ndarray
        Line centres, in the units of ``position``.
    edges : bool
        Whether ``position`` holds pixel edges (each segment then has one more entry).
    pad : float
        Offset of padded entries beyond the profile cut-off.

    Returns
    -------
    list of Bucket
        One bucket per padded width.
    """
    if not count.size:
        return []
    sizes = _bucket_sizes(int(count.max()))
    width = sizes[np.searchsorted(sizes, count, side="left")]
    out = []
    for w in np.unique(width):
        rows = np.flatnonzero(width == w)
        steps = np.arange(int(w) + int(edges))
        index = start[rows, None] + steps[None, :]
        valid = steps[None, :] < count[rows, None] + int(edges)
        c = center[line[rows], None]
        # padding: beyond the profile cut-off (and increasing, for pixel edges)
        offset = np.where(valid, position[np.where(valid, index, 0)] - c, pad + steps)
        index = np.where(valid, index, n_index)[:, : int(w)]
        out.append(Bucket(int(w), torch.as_tensor(line[rows]), torch.as_tensor(index),
                          torch.as_tensor(offset)))
    return out


def plan_windows(fine: np.ndarray, edges: np.ndarray, center: np.ndarray,
                 half_width: np.ndarray, core_radius: np.ndarray, near_radius: np.ndarray,
                 cut: float) -> dict[str, list[Bucket]]:
    r"""Group the window parts of all lines into buckets of three kinds.

    Parameters
    ----------
    fine : numpy.ndarray
        Sub-pixel centres, ``(n_pix * k,)``, pixel-major and increasing (Angstrom).
        The dump index of sub-pixel buckets is ``n_pix * k``.
    edges : numpy.ndarray
        Pixel edges, ``(n_pix + 1,)``. The dump index of wing buckets is ``n_pix``.
    center, half_width, core_radius, near_radius : numpy.ndarray
        Per line, Angstrom: centre; window half width (``inf``: every pixel); core radius
        (label-independent: it decides which parts are summed per sub-pixel and which per
        pixel); and the radius within which some star of the batch has :math:`|u| < 6`.
    cut : float
        Profile cut-off (Angstrom); padding of wing buckets is placed beyond it.

    Returns
    -------
    dict
        ``"near"`` (sub-pixels with :math:`|u|` possibly below 6: Weideman's branch),
        ``"far"`` (sub-pixels with :math:`|u| \ge 6` for every star: the continued
        fraction) and ``"wing"`` (pixels, averaged analytically): lists of
        :class:`Bucket`.

    Examples
    --------
    >>> fine = np.arange(0.25, 20, 0.5)  # 20 pixels of 2 sub-pixels
    >>> edges = np.arange(21.0)
    >>> plan = plan_windows(fine, edges, np.array([10.0]), np.array([4.0]),
    ...                     np.array([1.0]), np.array([0.5]), 25.0)
    >>> {kind: [b.index.tolist() for b in buckets] for kind, buckets in plan.items()}
    {'near': [[[19, 20]]], 'far': [[[18], [21]]], 'wing': [[[6, 7, 8], [11, 12, 13]]]}
    """
    n_pix = edges.size - 1
    k = fine.size // n_pix
    lines = np.arange(center.size)
    narrow = half_width <= core_radius

    def pixel_start(x: np.ndarray) -> np.ndarray:
        return np.clip(np.searchsorted(edges, x, side="right") - 1, 0, n_pix)

    def pixel_stop(x: np.ndarray) -> np.ndarray:
        return np.clip(np.searchsorted(edges, x, side="left"), 0, n_pix)

    with np.errstate(invalid="ignore"):
        core_lo = pixel_start(center - core_radius)
        core_hi = pixel_stop(center + core_radius)
        wing_lo = pixel_start(center - half_width)
        wing_hi = pixel_stop(center + half_width)
    # sub-pixel region: the window of a weak line, whole core pixels of a strong one
    start = np.where(narrow, np.searchsorted(fine, center - half_width, side="left"),
                     k * core_lo)
    stop = np.where(narrow, np.searchsorted(fine, center + half_width, side="right"),
                    k * core_hi)
    stop = np.maximum(stop, start)
    near_lo = np.clip(np.searchsorted(fine, center - near_radius, side="left"), start, stop)
    near_hi = np.clip(np.searchsorted(fine, center + near_radius, side="right"), near_lo, stop)
    plan = {
        "near": make_buckets(*nonempty_segments(near_lo, near_hi, lines), fine.size, fine, center),
        "far": make_buckets(*nonempty_segments(np.concatenate([start, near_hi]),
                                   np.concatenate([near_lo, stop]),
                                   np.concatenate([lines, lines])),
                        fine.size, fine, center, pad=cut + 1.0),
    }
    strong = lines[~narrow]
    w_start = np.concatenate([wing_lo[strong], core_hi[strong]])
    w_stop = np.concatenate([core_lo[strong], wing_hi[strong]])
    plan["wing"] = make_buckets(*nonempty_segments(w_start, w_stop,
                                                   np.concatenate([strong, strong])),
                            n_pix, edges, center, edges=True, pad=cut + 1.0)
    return plan
