r"""The sparse evaluation plan of a line model: which pixels each line touches.

Each line is evaluated only on the pixels of its own window (half width from its
parameters, :func:`~stellarai.lines.profiles.window_half_width`, at least
``min_half_width`` and at most ``max_half_width``). Windows are cut per grid row (an
échelle order of a model grid) and grouped by length into padded buckets with
``stellarai.synth.windows`` machinery: a bucket is a ``(segments, width)`` block of
pixel indices and of offsets from the line's reference centre, evaluated as one tensor.
The values of all buckets are concatenated and summed into the flattened grid with one
``index_add``; padding goes to a spare last index that is dropped. No lines × pixels
matrix is ever formed (unless the windows are unbounded, which is how the dense
evaluation of the benchmarks is made).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..synth.windows import Bucket, make_buckets, nonempty_segments
from .errors import LineWindowError

__all__ = ["BYTES_PER_ELEMENT", "DEFAULT_MEMORY_LIMIT", "SparsePlan", "plan_lines"]

BYTES_PER_ELEMENT = 96
"""Bytes one (line, pixel) element costs in a forward and backward pass (index, offset
and the intermediate tensors autograd keeps), used for the memory check."""

DEFAULT_MEMORY_LIMIT = 4 * 2**30
"""Default bytes the windows of one line model may take (4 GiB)."""

_PAD_OFFSET = 1.0e6  # Angstrom: padding elements sit this far out (absorb ~nothing)
MIN_BUCKET_ELEMENTS = 1 << 15
"""A bucket with fewer elements is merged into the next wider one (padded to its width):
on small problems the number of buckets, not the number of elements, sets the time."""


def _merge_small(buckets: list[Bucket], dump: int) -> list[Bucket]:
    """Merge buckets of fewer than MIN_BUCKET_ELEMENTS elements into wider ones."""
    merged: list[Bucket] = []
    carry: Bucket | None = None
    for bucket in buckets:
        if carry is not None:
            extra = bucket.width - carry.width
            index = torch.nn.functional.pad(carry.index, (0, extra), value=dump)
            offset = torch.cat([carry.offset, _PAD_OFFSET + torch.arange(
                extra, dtype=carry.offset.dtype).expand(carry.offset.shape[0], extra)], 1)
            bucket = Bucket(bucket.width, torch.cat([carry.line, bucket.line]),
                            torch.cat([index, bucket.index]),
                            torch.cat([offset, bucket.offset]))
        if bucket.index.numel() < MIN_BUCKET_ELEMENTS and bucket is not buckets[-1]:
            carry = bucket
        else:
            merged.append(bucket)
            carry = None
    if carry is not None:
        merged.append(carry)
    return merged


@dataclass(frozen=True)
class SparsePlan:
    """Index tensors of the windows of all lines on one grid.

    Attributes
    ----------
    line : torch.Tensor
        ``(n_seg,)`` line of each segment (concatenated over buckets).
    widths : tuple of int
        Padded width of each bucket; bucket ``b`` holds ``counts[b]`` segments.
    counts : tuple of int
        Segments per bucket.
    index : torch.Tensor
        ``(n_elements,)`` flat pixel index of every element (padding: ``n_flat``).
    offset : torch.Tensor
        ``(n_elements,)`` wavelength minus the line's reference centre (Angstrom).
    n_flat : int
        Number of grid pixels (rows × columns).
    n_window_pixels : int
        Elements without padding (the sum of the window lengths).
    """

    line: Tensor
    widths: tuple[int, ...]
    counts: tuple[int, ...]
    index: Tensor
    offset: Tensor
    n_flat: int
    n_window_pixels: int

    @property
    def n_elements(self) -> int:
        """Elements evaluated per call (padding included)."""
        return int(self.index.numel())


def plan_lines(grid: Tensor, center: np.ndarray, half_width: np.ndarray, *,
               memory_limit: float = DEFAULT_MEMORY_LIMIT, what: str = "LineModel"
               ) -> SparsePlan:
    """Plan the windows of lines at ``center`` (Angstrom) with ``half_width`` on ``grid``.

    Parameters
    ----------
    grid : torch.Tensor
        ``(rows, n)`` increasing wavelengths (Angstrom).
    center, half_width : numpy.ndarray
        Per line, Angstrom (``inf`` half width: the whole row).
    memory_limit : float
        Bytes the elements may take (``BYTES_PER_ELEMENT`` each); beyond it
        :class:`~stellarai.lines.LineWindowError`.

    Examples
    --------
    >>> import numpy as np, torch
    >>> grid = torch.arange(10.0, dtype=torch.float64)[None]
    >>> plan = plan_lines(grid, np.array([2.0, 7.0]), np.array([1.0, 2.0]))
    >>> plan.n_window_pixels, plan.widths   # small buckets are merged into wider ones
    (8, (5,))
    """
    rows, n = grid.shape
    wl = grid.detach().cpu().numpy()
    lines = np.arange(center.size)
    start, count, owner = [], [], []
    for r in range(rows):
        lo = np.searchsorted(wl[r], center - half_width, side="left")
        hi = np.searchsorted(wl[r], center + half_width, side="right")
        s, c, ln = nonempty_segments(lo + r * n, hi + r * n, lines)
        start.append(s)
        count.append(c)
        owner.append(ln)
    start, count, owner = (np.concatenate(a) for a in (start, count, owner))
    total = int(count.sum())
    need = total * BYTES_PER_ELEMENT * 1.25  # bucket padding adds at most ~25%
    if need > memory_limit:
        widest = float(np.max(np.minimum(half_width, wl[:, -1].max() - wl[:, 0].min())))
        raise LineWindowError(
            f"{what}: the line windows would hold {total:,} (line, pixel) elements, about "
            f"{need / 2**30:.1f} GiB, more than memory_limit={memory_limit / 2**30:.1f} GiB "
            f"(widest window {2 * widest:.3g} Angstrom). Use a smaller window: "
            "max_window=... (Angstrom) or a larger tolerance=..., or raise memory_limit"
        )
    if total == 0:
        raise LineWindowError(f"{what}: no line falls on the wavelength grid "
                              f"({wl.min():.3f}-{wl.max():.3f} Angstrom)")
    flat = wl.reshape(-1)
    buckets = _merge_small(make_buckets(start, count, owner, rows * n, flat, center,
                                    pad=_PAD_OFFSET), rows * n)
    return SparsePlan(
        line=torch.cat([b.line for b in buckets]),
        widths=tuple(b.width for b in buckets),
        counts=tuple(int(b.line.numel()) for b in buckets),
        index=torch.cat([b.index.reshape(-1) for b in buckets]),
        offset=torch.cat([b.offset.reshape(-1) for b in buckets]),
        n_flat=rows * n, n_window_pixels=total)
