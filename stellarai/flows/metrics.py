"""Ranking metrics for outlier scores, in numpy (no scikit-learn needed)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["roc_auc"]


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(1, len(values) + 1)
    unique, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    if len(unique) < len(values):
        sums = np.bincount(inverse, weights=ranks)
        ranks = (sums / counts)[inverse]
    return ranks


def roc_auc(normal: Any, anomalous: Any) -> float:
    r"""Area under the ROC curve for scores where higher means more anomalous.

    Parameters
    ----------
    normal, anomalous : array-like
        Scores of the normal (negative) and anomalous (positive) examples.

    Returns
    -------
    float
        The probability that a random anomalous example scores higher than a random
        normal one (ties count one half): the Mann–Whitney :math:`U` statistic divided by
        :math:`n_+ n_-`.

    Examples
    --------
    >>> roc_auc([0.1, 0.2, 0.3], [0.25, 0.9])
    0.8333333333333334
    >>> roc_auc([0, 1], [1, 2])
    0.875
    """
    negative = np.asarray(normal, dtype=np.float64).ravel()
    positive = np.asarray(anomalous, dtype=np.float64).ravel()
    if negative.size == 0 or positive.size == 0:
        raise ValueError(f"need at least one normal and one anomalous score, got "
                         f"{negative.size} and {positive.size}")
    if not (np.isfinite(negative).all() and np.isfinite(positive).all()):
        raise ValueError("scores must be finite")
    ranks = _ranks(np.concatenate([positive, negative]))
    u_statistic = ranks[:positive.size].sum() - positive.size * (positive.size + 1) / 2
    return float(u_statistic / (positive.size * negative.size))
