"""Sampling a label space: random, Latin-hypercube and Sobol designs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from astropy.table import QTable

from ..errors import LabelError
from ..labels import LabelSpace

__all__ = ["METHODS", "sample_labels"]

METHODS = ("random", "latin_hypercube", "sobol")
"""Sampling methods accepted by :func:`sample_labels`."""

Method = Literal["random", "latin_hypercube", "sobol"]


def _unit_cube(method: str, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    from scipy.stats import qmc  # imported on use: scipy.stats takes ~0.5 s to import

    if method == "random":
        return rng.random((n, d))
    if d == 0:
        return np.empty((n, 0))
    if method == "latin_hypercube":
        return qmc.LatinHypercube(d, rng=rng).random(n)
    if n == 0:
        return np.empty((0, d))
    # A scrambled Sobol' sequence is balanced for powers of two; for other n take the first
    # n points of the next power of two (still low-discrepancy, no scipy warning).
    return qmc.Sobol(d, scramble=True, rng=rng).random_base2(math.ceil(math.log2(n)))[:n]


def _value(space: LabelSpace, name: str, value: Any, what: str) -> float:
    """``value`` in the unit of label ``name``, checked to lie within its bounds."""
    label = space[name]
    x = label.to_value(value)
    if x.ndim or not label.lower <= float(x) <= label.upper:
        unit = label.unit.to_string() or "(dimensionless)"
        raise LabelError(f"{what} of label {name!r} must be a number within its bounds "
                         f"[{label.lower:.10g}, {label.upper:.10g}] {unit}, got {value!r}")
    return float(x)


def _ranges(space: LabelSpace, fixed: Mapping[str, Any] | None,
            ranges: Mapping[str, Any] | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-label (lower, upper) in canonical units; lower == upper for fixed labels."""
    lower, upper = space.lower.copy(), space.upper.copy()
    fixed, ranges = dict(fixed or {}), dict(ranges or {})
    both = sorted(set(fixed) & set(ranges))
    if both:
        raise LabelError(f"labels {both} are given both in fixed and in ranges")
    for name, value in fixed.items():
        j = space.index(name)
        lower[j] = upper[j] = _value(space, name, value, "fixed value")
    for name, pair in ranges.items():
        j = space.index(name)
        if isinstance(pair, str) or not hasattr(pair, "__len__") or len(pair) != 2:
            raise LabelError(f"range of label {name!r} must be a pair (lower, upper), got "
                             f"{pair!r}")
        lower[j] = _value(space, name, pair[0], "lower end of the range")
        upper[j] = _value(space, name, pair[1], "upper end of the range")
        if lower[j] > upper[j]:
            raise LabelError(f"range of label {name!r} must have lower <= upper, got {pair!r}")
    return lower, upper


def sample_labels(
    label_space: LabelSpace,
    n: int,
    method: Method = "sobol",
    *,
    seed: int | np.random.Generator | None = 0,
    fixed: Mapping[str, Any] | None = None,
    ranges: Mapping[str, Any] | None = None,
) -> QTable:
    """Draw ``n`` label vectors within the bounds of a label space.

    Parameters
    ----------
    label_space : LabelSpace
        The labels to sample.
    n : int
        Number of label vectors (≥ 0).
    method : {"sobol", "latin_hypercube", "random"}
        ``"sobol"``: a scrambled Sobol' sequence (`scipy.stats.qmc.Sobol`), the most even
        coverage, best when ``n`` is a power of two (otherwise the first ``n`` points of the
        next power of two). ``"latin_hypercube"``: `scipy.stats.qmc.LatinHypercube`, each
        label's range cut into ``n`` equal strata, each hit exactly once. ``"random"``:
        independent uniform draws.
    seed : int, numpy.random.Generator or None
        Seed of the draw (scrambling for Sobol'); the same seed gives the same table.
    fixed : mapping, optional
        Labels held at one value, e.g. ``{"vmic": 1.0}`` or ``{"teff": 5 * u.kK}``.
    ranges : mapping, optional
        Sub-ranges ``{name: (lower, upper)}`` (numbers in the label's unit or Quantities)
        to sample instead of the full bounds; they must lie within the bounds.

    Returns
    -------
    `~astropy.table.QTable`
        One column per label of ``label_space`` (in its order and canonical units).

    Raises
    ------
    LabelError
        For an unknown method or label name, or a fixed value or range outside the bounds.

    Examples
    --------
    >>> import astropy.units as u
    >>> space = LabelSpace.default().subset(["teff", "logg", "vmic"])
    >>> table = sample_labels(space, 4, "latin_hypercube", seed=1, fixed={"vmic": 1.0},
    ...                       ranges={"teff": (4 * u.kK, 6 * u.kK)})
    >>> table.colnames, table["vmic"].value.tolist()
    (['teff', 'logg', 'vmic'], [1.0, 1.0, 1.0, 1.0])
    >>> bool(((table["teff"] >= 4000 * u.K) & (table["teff"] <= 6000 * u.K)).all())
    True
    """
    if not isinstance(label_space, LabelSpace):
        raise LabelError(f"label_space must be a LabelSpace, got {type(label_space).__name__}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise LabelError(f"n must be a non-negative integer, got {n!r}")
    if method not in METHODS:
        raise LabelError(f"method must be one of {list(METHODS)}, got {method!r}")
    lower, upper = _ranges(label_space, fixed, ranges)
    free = np.flatnonzero(lower < upper)
    rng = np.random.default_rng(seed)
    cube = _unit_cube(method, int(n), free.size, rng)
    values = np.repeat(lower[None, :], int(n), axis=0)
    span = upper[free] - lower[free]
    values[:, free] = np.clip(lower[free] + cube * span, lower[free], upper[free])
    return label_space.to_table(values)
