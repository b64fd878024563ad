r"""Transfer learning: fit a cloned line model to observed orders, regularized toward the clone.

The forward model of :func:`fit_lines` is

.. code-block:: text

    ((lines | Rotation | Doppler) * telluric_lines * ChebyshevContinuum
     | Instrument | Resample)

on a model grid uniform in :math:`\ln\lambda` with one row per order
(:func:`~stellarai.ops.model_grid_for`), every order fitted jointly. The loss is

.. math::

    \mathcal{L} = \tfrac12 \sum_{\rm pixels} w (F - d)^2
    + \tfrac{r}{2} \sum_{k} \lambda_k \sum_i (\theta_{k,i} - \theta^{\rm clone}_{k,i})^2,

:math:`w` the inverse variances, :math:`k` the per-line parameter kinds (``shift``,
``log_amplitude``, ``log_sigma``, ``log_gamma``) of every
:class:`~stellarai.lines.LineModel` in the chain (star and telluric), :math:`\lambda_k`
their prior strengths (:data:`DEFAULT_STRENGTHS`: a Gaussian prior of 1 km/s on shifts,
20% on areas and Gaussian widths, 50% on Lorentzian widths) and :math:`r` one overall
``regularization``: :math:`r = \infty` keeps the clone, :math:`r = 0` lets every line go
where the data (and their noise) pull it. :func:`scan_regularization` fits a range of
:math:`r` on part of the pixels and scores the rest, so that :math:`r` is chosen, not
guessed.

The fit runs in two stages: the global parameters (RV, vsini, continuum) first by L-BFGS
with the lines held at the clone, then everything together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import astropy.units as u
import numpy as np
import torch
from astropy.table import QTable
from specutils import Spectrum, SpectrumList
from torch import Tensor

from ..ops.base import Operator, ParameterError, to_canonical
from ..ops.broadening import Instrument, Rotation
from ..ops.continuum import ChebyshevContinuum
from ..ops.doppler import Doppler
from ..ops.resample import Resample, model_grid_for
from ..spectra.orders import OrderBatch
from .model import KINDS, LineModel
from .optimize import minimize

__all__ = ["DEFAULT_STRENGTHS", "LineFit", "RegularizationScan", "build_chain", "fit_lines",
           "scan_regularization"]

DEFAULT_STRENGTHS = {"shift": 1.0, "log_amplitude": 25.0, "log_sigma": 25.0,
                     "log_gamma": 4.0}
r"""Prior strengths :math:`\lambda_k` (inverse variances) per parameter kind, at
``regularization=1``: 1 (km/s)\ :sup:`-2` on shifts (a 1 km/s prior), 25 on the
logarithms of areas and Gaussian widths (20%), 4 on that of Lorentzian widths (50%)."""

RV_RANGE = 50.0
"""The RV is bounded to the initial value ± this (km/s)."""
VSINI_MAX = 80.0
"""Upper bound of vsini (km/s); with RV_RANGE it sets the model grid's margin."""


def _strengths(strengths: Mapping[str, float] | None) -> dict[str, float]:
    merged = dict(DEFAULT_STRENGTHS)
    for kind, value in (strengths or {}).items():
        if kind not in KINDS:
            raise ParameterError(f"strengths: unknown parameter kind {kind!r}; the kinds are "
                                 f"{KINDS}")
        if not (value >= 0):
            raise ParameterError(f"strengths: {kind!r} must be >= 0, got {value!r}")
        merged[kind] = float(value)
    return merged


def _line_leaves(chain: Operator) -> list[LineModel]:
    return [leaf for leaf in chain.operators if isinstance(leaf, LineModel)]


def build_chain(lines: LineModel, orders: Any, *, telluric: LineModel | None = None,
                rv: Any = 0.0, vsini: Any = 2.0, continuum_degree: int = 2,
                oversample: float = 4.0) -> Operator:
    """The transfer-learning forward model of ``lines`` for ``orders`` (see the module).

    The lines (and telluric lines) are put on a model grid of ``oversample`` samples per
    resolution element with a margin for ``rv ± 50`` km/s and vsini up to 80 km/s.

    Examples
    --------
    >>> import astropy.units as u
    >>> from stellarai.demo import demo_spectrum_list
    >>> lines = LineModel([10_830.0] * u.AA, [0.02] * u.AA, [0.03] * u.AA, [0.02] * u.AA)
    >>> chain = build_chain(lines, demo_spectrum_list()[:1], rv=-9 * u.km / u.s)
    >>> chain.free_names
    ('shift', 'log_amplitude', 'log_sigma', 'log_gamma', 'vsini', 'rv', 'c0', 'c1', 'c2')
    """
    batch = OrderBatch.from_spectra(orders)
    rv_kms = float(to_canonical(rv, u.km / u.s, "build_chain: rv"))
    margin = abs(rv_kms) + RV_RANGE + VSINI_MAX + 30.0
    grid = model_grid_for(batch, oversample=oversample, margin=margin)
    star = (lines.regrid(grid)
            | Rotation(vsini=vsini, bounds={"vsini": (0.0, VSINI_MAX)})
            | Doppler(rv=rv_kms, bounds={"rv": (rv_kms - RV_RANGE, rv_kms + RV_RANGE)}))
    if telluric is not None:
        star = star * telluric.regrid(grid)
    star = star * ChebyshevContinuum.from_data(batch, degree=continuum_degree)
    return star | Instrument.from_data(batch) | Resample(batch)


@dataclass
class LineFit:
    """The result of :func:`fit_lines`.

    Attributes
    ----------
    lines : LineModel
        The fitted lines on the original (native) grid; the clone stays their reference.
    telluric : LineModel or None
        The fitted telluric lines.
    chain : Operator
        The fitted forward model (on the model grid and observed pixels).
    data : OrderBatch
        The observed orders, as fitted.
    weights : torch.Tensor
        Weights used (0 where left out).
    regularization : float
        Overall regularization :math:`r`.
    strengths : dict
        Prior strengths per kind.
    history : list of float
        Loss per step.
    """

    lines: LineModel
    telluric: LineModel | None
    chain: Operator
    data: OrderBatch
    weights: Tensor
    regularization: float
    strengths: dict[str, float]
    history: list[float] = field(default_factory=list)

    @property
    def rv(self) -> u.Quantity:
        """Fitted radial velocity."""
        return self.chain.get("rv")

    @property
    def vsini(self) -> u.Quantity:
        """Fitted projected rotational velocity."""
        return self.chain.get("vsini")

    def model_flux(self) -> Tensor:
        """The fitted model on the observed pixels, ``(n_orders, n_pix)``."""
        with torch.no_grad():
            return self.chain.evaluate({})[1]

    def residual_rms(self, weights: Tensor | None = None) -> float:
        r"""RMS of the normalized residuals :math:`(d - F)\sqrt{w}` over pixels with
        weight (default: those fitted)."""
        return _normalized_rms(self.model_flux(), self.data, self.weights if weights is None
                               else weights)

    @property
    def changes(self) -> QTable:
        """Per line, what changed versus the clone (:meth:`LineModel.changes`)."""
        return self.lines.changes()

    def template(self) -> Spectrum:
        """The semi-empirical template: the fitted lines at native resolution, rest frame."""
        return self.lines.spectrum()

    def model(self) -> SpectrumList:
        """The fitted model on the observed pixels, as a `~specutils.SpectrumList`."""
        result = self.chain()
        if isinstance(result, OrderBatch):
            return result.to_spectrum_list()
        return result if isinstance(result, SpectrumList) else SpectrumList([result])

    def plot(self, order: int = 0, n_marked: int = 8) -> Any:
        """Figure: the data and fit of one order (top) and, at native resolution in the
        rest frame, the template the lines were cloned from, the clone and the fitted
        lines (bottom), with the ``n_marked`` lines that moved most marked.

        Returns
        -------
        matplotlib.figure.Figure
        """
        return _plot(self, order, n_marked)


def _normalized_rms(model: Tensor, data: OrderBatch, weights: Tensor) -> float:
    keep = weights > 0
    residual = (data.flux - model)[keep] * weights[keep].sqrt()
    return float(residual.pow(2).mean().sqrt())


def _penalty(chain: Operator, regularization: float, strengths: Mapping[str, float]):
    named = chain._named()
    scaled = {k: regularization * s for k, s in strengths.items()}

    def penalty(values: Mapping[str, Tensor]) -> Tensor:
        total = torch.zeros((), dtype=torch.float64)
        for name, value in values.items():
            leaf, local, _ = named[name]
            if isinstance(leaf, LineModel) and scaled.get(local):
                total = total + leaf.penalty({local: scaled[local]}, {local: value})
        return total

    return penalty


def fit_lines(lines: LineModel, orders: Any, *, telluric: LineModel | None = None,
              rv: Any = 0.0, vsini: Any = 2.0, continuum_degree: int = 2,
              regularization: float = 1.0, strengths: Mapping[str, float] | None = None,
              steps: int = 150, optimizer: str = "lbfgs", lr: float = 0.01,
              global_steps: int = 30, oversample: float = 4.0, weights: Any = None,
              progress: bool = True) -> LineFit:
    r"""Transfer-learn ``lines`` (and ``telluric`` lines) from observed ``orders``.

    Parameters
    ----------
    lines : LineModel
        The clone (its reference values are the prior's centres).
    orders : Spectrum, SpectrumList or OrderBatch
        Observed orders, continuum-normalized or not (the continuum is fitted), with
        uncertainties (else unit weights) and ``meta["instrumental_resolution"]``.
    telluric : LineModel, optional
        Telluric lines (observatory frame), fitted jointly with the same prior.
    rv, vsini : Quantity or float
        Starting values (km/s); the RV may move by ±50 km/s.
    continuum_degree : int
        Degree of the Chebyshev continuum of each order.
    regularization : float
        Overall prior scale :math:`r` (``math.inf``: lines fixed at the clone).
    strengths : dict, optional
        Prior strengths per kind, overriding :data:`DEFAULT_STRENGTHS`.
    steps, optimizer, lr : optional
        Joint-stage iterations, ``"lbfgs"`` (default) or ``"adam"``, Adam's rate.
    global_steps : int
        L-BFGS iterations of the first stage (global parameters only).
    oversample : float
        Model-grid samples per resolution element.
    weights : torch.Tensor, optional
        Replaces the data's inverse variances (e.g. 0 for held-out pixels).
    progress : bool
        Show progress bars.

    Returns
    -------
    LineFit
    """
    if not (regularization >= 0):
        raise ParameterError(f"fit_lines: regularization must be >= 0 (or inf), got "
                             f"{regularization!r}")
    strengths = _strengths(strengths)
    batch = OrderBatch.from_spectra(orders)
    chain = build_chain(lines, orders, telluric=telluric, rv=rv, vsini=vsini,
                        continuum_degree=continuum_degree, oversample=oversample)
    w = batch.weights if weights is None else torch.as_tensor(weights, dtype=torch.float64)
    if w.shape != batch.flux.shape:
        raise ParameterError(f"fit_lines: weights must have the data's shape "
                             f"{tuple(batch.flux.shape)}, got {tuple(w.shape)}")
    leaves = _line_leaves(chain)
    free_kinds = [[k for k in KINDS if not leaf._specs[k].fixed] for leaf in leaves]
    for leaf, kinds in zip(leaves, free_kinds, strict=True):
        if kinds:
            leaf.fix(*kinds)
    history = minimize(chain, batch.flux, w, steps=global_steps, optimizer="lbfgs",
                       progress=progress, description="globals")
    if math.isfinite(regularization) and steps > 0:
        for leaf, kinds in zip(leaves, free_kinds, strict=True):
            if kinds:
                leaf.free(*kinds)
        history += minimize(chain, batch.flux, w, steps=steps, optimizer=optimizer, lr=lr,
                            penalty=_penalty(chain, regularization, strengths),
                            progress=progress, description="lines")
    else:
        for leaf, kinds in zip(leaves, free_kinds, strict=True):
            if kinds:
                leaf.free(*kinds)
    fitted_star = _copy_values(leaves[0], lines)
    fitted_telluric = _copy_values(leaves[1], telluric) if telluric is not None else None
    return LineFit(fitted_star, fitted_telluric, chain, batch, w, float(regularization),
                   strengths, history)


def _copy_values(source: LineModel, original: LineModel) -> LineModel:
    """``original`` (grid, settings, reference) with the values of ``source``."""
    fitted = source.regrid(original.grid)
    fitted.template = getattr(original, "template", None)
    fitted.clone_report = getattr(original, "clone_report", None)
    return fitted


@dataclass
class RegularizationScan:
    """The result of :func:`scan_regularization`.

    Attributes
    ----------
    table : astropy.table.QTable
        One row per regularization: ``regularization``, ``train_rms`` and
        ``heldout_rms`` (RMS of normalized residuals on fitted and held-out pixels),
        ``rv`` and ``vsini``.
    best : float
        The regularization with the lowest held-out RMS.
    fits : list of LineFit
        The fits, in the order of the table.
    """

    table: QTable
    best: float
    fits: list[LineFit]


def holdout_weights(batch: OrderBatch, fraction: float, block: int, seed: int
                    ) -> tuple[Tensor, Tensor]:
    """Split the weighted pixels into fitted and held-out blocks of ``block`` pixels."""
    if not 0 < fraction < 1:
        raise ParameterError(f"holdout must be a fraction in (0, 1), got {fraction!r}")
    rng = np.random.default_rng(seed)
    n_blocks = -(-batch.n_pix // block)
    chosen = torch.as_tensor(rng.random((batch.n_orders, n_blocks)) < fraction)
    held = chosen.repeat_interleave(block, dim=1)[:, :batch.n_pix]
    w = batch.weights
    return torch.where(held, 0.0, w), torch.where(held, w, 0.0)


def scan_regularization(lines: LineModel, orders: Any,
                        regularizations: Sequence[float] = (0.0, 0.01, 0.1, 1.0, 10.0,
                                                            math.inf), *,
                        holdout: float = 0.25, block: int = 8, seed: int = 0,
                        progress: bool = True, **fit_kwargs: Any) -> RegularizationScan:
    """Fit with each regularization on part of the pixels and score the held-out rest.

    Parameters
    ----------
    lines, orders
        As for :func:`fit_lines`.
    regularizations : sequence of float
        Values of the overall regularization :math:`r` to try (``math.inf`` included:
        the clone itself).
    holdout : float
        Fraction of the pixels held out, in blocks of ``block`` pixels (neighbouring
        pixels share noise through the line-spread function, so single pixels would
        not test a fit honestly), chosen with ``seed``.
    **fit_kwargs
        Passed to :func:`fit_lines`.

    Returns
    -------
    RegularizationScan
    """
    batch = OrderBatch.from_spectra(orders)
    train, test = holdout_weights(batch, holdout, block, seed)
    rows, fits = [], []
    for value in regularizations:
        fit = fit_lines(lines, batch, regularization=value, weights=train, progress=progress,
                        **fit_kwargs)
        fits.append(fit)
        rows.append((float(value), fit.residual_rms(), fit.residual_rms(test),
                     fit.rv.value, fit.vsini.value))
    table = QTable(rows=rows, names=("regularization", "train_rms", "heldout_rms", "rv",
                                     "vsini"))
    table["rv"].unit = table["vsini"].unit = u.km / u.s
    best = float(table["regularization"][int(np.argmin(table["heldout_rms"]))])
    return RegularizationScan(table, best, fits)


def _plot(fit: LineFit, order: int, n_marked: int) -> Any:
    import matplotlib.pyplot as plt

    data = fit.data
    if not 0 <= order < data.n_orders:
        raise ParameterError(f"plot: order must be a row index in [0, {data.n_orders}), got "
                             f"{order!r}")
    n = int(data.npix[order])
    x = data.wavelength[order, :n].numpy()
    keep = ~data.mask[order, :n].numpy()
    model = fit.model_flux()[order, :n].numpy()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=False)
    top.plot(x[keep], data.flux[order, :n].numpy()[keep], ".", ms=2, color="0.5",
             label="data")
    top.plot(x, model, color="C3", lw=0.8, label="fit")
    top.set_ylabel("flux")
    top.set_title(f"order {int(data.order[order])}: rv {fit.rv.value:.2f} km/s, "
                  f"vsini {fit.vsini.value:.2f} km/s")
    top.legend(loc="lower left", fontsize=8)
    factor = math.sqrt((1 + fit.rv.value / 299792.458) / (1 - fit.rv.value / 299792.458))
    low, high = x[0] / factor, x[-1] / factor
    lines = fit.lines
    grid = lines.grid[0].numpy()
    inside = (grid >= low) & (grid <= high)
    template = getattr(lines, "template", None)
    if template is not None:
        t_batch = OrderBatch.from_spectra(template)
        for _, wl, fl, _, mask in t_batch.iter_orders():
            sel = (wl >= low) & (wl <= high) & ~mask
            if bool(sel.any()):
                bottom.plot(wl[sel].numpy(), fl[sel].numpy(), color="0.6", lw=1.5,
                            label="template")
                break
    clone = lines.regrid(lines.grid)
    for kind in KINDS:
        clone.set(**{kind: getattr(lines, f"reference_{kind}")})
    with torch.no_grad():
        bottom.plot(grid[inside], clone(None, None)[1][0].numpy()[inside], color="C0",
                    lw=0.8, label="clone")
        bottom.plot(grid[inside], lines(None, None)[1][0].numpy()[inside], color="C3",
                    lw=0.8, label="fitted lines")
    changes = lines.changes()
    centre = changes["wavelength"].to_value(u.AA)
    in_order = np.flatnonzero((centre >= low) & (centre <= high))
    moved = in_order[np.argsort(-np.asarray(changes["moved"])[in_order])][:n_marked]
    for i in moved:
        bottom.axvline(centre[i], color="C1", lw=0.6, ls=":")
        top.axvline(centre[i] * factor, color="C1", lw=0.6, ls=":")
    bottom.set_xlim(low, high)
    top.set_xlim(x[0], x[-1])
    bottom.set_xlabel("vacuum wavelength (Angstrom; top: observed, bottom: rest frame)")
    bottom.set_ylabel("native flux")
    bottom.legend(loc="lower left", fontsize=8, title=f"dotted: {len(moved)} lines that "
                  "moved most", title_fontsize=8)
    fig.tight_layout()
    return fig
