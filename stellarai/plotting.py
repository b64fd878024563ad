"""Figures: every function returns a matplotlib `~matplotlib.figure.Figure` and shows nothing."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .spectra.orders import OrderBatch

__all__ = ["plot_orders"]


def plot_orders(spectra: Any, *, ncols: int = 4, title: str | None = None) -> Any:
    """Plot every échelle order in its own panel, masked pixels left out.

    Parameters
    ----------
    spectra : OrderBatch or anything :meth:`OrderBatch.from_spectra` accepts
        The orders to plot.
    ncols : int
        Number of panel columns.
    title : str, optional
        Figure title.

    Returns
    -------
    `~matplotlib.figure.Figure`

    Examples
    --------
    >>> from stellarai.demo import demo_spectrum_list
    >>> fig = plot_orders(demo_spectrum_list())
    >>> len(fig.axes)
    3
    """
    import matplotlib.pyplot as plt

    batch = OrderBatch.from_spectra(spectra)
    ncols = max(1, min(ncols, batch.n_orders))
    nrows = math.ceil(batch.n_orders / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.4 * nrows), squeeze=False,
                             layout="constrained")
    flux_unit = batch.records[0].flux_unit
    panels = zip(axes.flat, enumerate(batch.iter_orders()), strict=False)  # spare panels hidden
    for ax, (i, (order, wavelength, flux, _, mask)) in panels:
        shown = np.where(mask.numpy(), np.nan, flux.numpy())
        ax.plot(wavelength.numpy(), shown, lw=0.6, color=f"C{i % 10}")
        ax.set_title(f"order {order}", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[batch.n_orders:]:
        ax.set_visible(False)
    unit = flux_unit.to_string() or "normalized"
    fig.supxlabel("vacuum wavelength [Angstrom]")
    fig.supylabel(f"flux [{unit}]")
    if title:
        fig.suptitle(title)
    return fig
