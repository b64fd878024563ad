"""Deterministic train / validation / test splits of a grid's rows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import GridError

__all__ = ["split_indices", "training_and_validation"]


def split_indices(n: int, fractions: Sequence[float] = (0.8, 0.1, 0.1),
                  seed: int = 0) -> list[np.ndarray]:
    """Row indices of a seeded random split of ``n`` rows into parts of given fractions.

    Parameters
    ----------
    n : int
        Number of rows (≥ 0).
    fractions : sequence of float
        Share of the rows in each part: at least one, each ≥ 0, summing to 1 (to 1e-9).
    seed : int
        Seed of the shuffle (`numpy.random.default_rng`); the same ``(n, fractions,
        seed)`` always gives the same parts.

    Returns
    -------
    list of numpy.ndarray
        One sorted int64 index array per fraction; the parts are disjoint and together
        hold every row. Part sizes are ``floor(fraction * n)``, with the rows left over
        given to the parts with the largest remainders (ties to the earlier part).

    Examples
    --------
    >>> [part.tolist() for part in split_indices(6, (0.5, 0.5), seed=0)]
    [[2, 3, 5], [0, 1, 4]]
    >>> [len(part) for part in split_indices(11, (0.8, 0.1, 0.1))]
    [9, 1, 1]
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise GridError(f"n must be a non-negative integer, got {n!r}")
    try:
        shares = np.array([float(f) for f in fractions], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise GridError(f"fractions must be a sequence of numbers, got {fractions!r}") from exc
    if shares.size == 0 or not np.all(np.isfinite(shares)) or np.any(shares < 0):
        raise GridError(f"fractions must be one or more non-negative numbers, got {fractions!r}")
    if not math.isclose(shares.sum(), 1.0, rel_tol=0, abs_tol=1e-9):
        raise GridError(f"fractions must sum to 1, got {list(fractions)} (sum {shares.sum():.12g})")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise GridError(f"seed must be an integer, got {seed!r}")
    exact = shares * n
    counts = np.floor(exact).astype(np.int64)
    leftover = min(max(n - int(counts.sum()), 0), counts.size)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:leftover]] += 1
    shuffled = np.random.default_rng(seed).permutation(n)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return [np.sort(shuffled[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def training_and_validation(train: Any, valid: Any, valid_fraction: float, seed: int, *,
                            error: type[Exception] = GridError,
                            train_name: str = "train") -> tuple[Any, Any]:
    """Check a training grid (and optional validation grid), splitting one off if needed.

    The one rule every trainer follows: both are `~stellarai.grids.SpectralGrid` objects;
    without a validation grid, a seeded fraction of the training grid becomes one.

    Parameters
    ----------
    train, valid : SpectralGrid, SpectralGrid or None
        Training grid and optional validation grid.
    valid_fraction : float
        Share of ``train`` held out when ``valid`` is None, in (0, 1).
    seed : int
        Seed of that split (see :meth:`SpectralGrid.split`).
    error : type of Exception
        The exception the caller raises (a trainer's own error class).
    train_name : str
        Name of the training argument in messages.

    Returns
    -------
    (SpectralGrid, SpectralGrid)
        The training and validation grids.

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> from stellarai.grids import SpectralGrid
    >>> grid = SpectralGrid.from_arrays(np.linspace(5000, 5001, 3) * u.AA, np.ones((10, 3)),
    ...                                 {"teff": np.linspace(4000, 6000, 10) * u.K})
    >>> [len(part) for part in training_and_validation(grid, None, 0.2, seed=0)]
    [8, 2]
    """
    from .grid import SpectralGrid

    for name, value in ((train_name, train), ("valid", valid)):
        if value is not None and not isinstance(value, SpectralGrid):
            raise error(f"{name} must be a stellarai.grids.SpectralGrid, got "
                        f"{type(value).__name__}")
    if valid is None:
        if not 0 < valid_fraction < 1:
            raise error(f"valid_fraction must be in (0, 1), got {valid_fraction!r}")
        train, valid = train.split((1 - valid_fraction, valid_fraction), seed=seed)
    return train, valid
