r"""Hidden-line maps: correlations between pixels, or pixels and a label, under a flow.

Draw spectra from a conditional :class:`~stellarai.flows.SpectralFlow` at fixed Teff and
log g while a label such as [Mg/H] varies over its training range, and correlate every
pixel with that label: pixels that follow the element's abundance (its lines, including
lines absent from a line list) stand out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import astropy.units as u
import numpy as np
import torch
from specutils import Spectrum

from ..errors import LabelError
from .errors import FlowError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .flow import SpectralFlow

__all__ = ["CorrelationMap", "pixel_correlations"]


@dataclass
class CorrelationMap:
    """Pearson correlations on a flow's wavelength grid.

    Attributes
    ----------
    wavelength : `~astropy.units.Quantity`
        ``(n_pix,)`` vacuum wavelength.
    correlation : numpy.ndarray
        ``(n_pix,)`` correlation of each pixel with ``label`` (or with the pixel at
        ``reference``), or the ``(n_pix, n_pix)`` pixel-pixel matrix.
    label : str or None
        The label correlated with, if any.
    reference : Quantity or None
        The reference wavelength of a pixel-pixel map, if any.
    conditions : dict
        The conditioning values held fixed (canonical units), and for ``label`` its range.
    n_samples : int
        Number of flow samples used.
    """

    wavelength: u.Quantity
    correlation: np.ndarray
    label: str | None = None
    reference: u.Quantity | None = None
    conditions: dict[str, Any] = field(default_factory=dict)
    n_samples: int = 0

    def to_spectrum(self) -> Spectrum:
        """A `~specutils.Spectrum` with the (1-D) correlation as dimensionless flux."""
        if self.correlation.ndim != 1:
            raise FlowError("only a 1-D map (a label or a reference pixel) is a spectrum; "
                            "this one is a pixel-pixel matrix")
        return Spectrum(flux=self.correlation * u.dimensionless_unscaled,
                        spectral_axis=self.wavelength,
                        meta={"label": self.label, "conditions": self.conditions})

    def plot(self, ax: Any = None) -> Figure:
        """Correlation against wavelength (or the matrix as an image) as a Figure."""
        from matplotlib.figure import Figure

        if ax is None:
            fig = Figure(figsize=(8, 3.5) if self.correlation.ndim == 1 else (5, 4.5))
            ax = fig.add_subplot()
        else:
            fig = ax.figure
        wl = self.wavelength.to_value(u.AA)
        if self.correlation.ndim == 1:
            ax.plot(wl, self.correlation, lw=0.8)
            ax.axhline(0, color="0.6", lw=0.5)
            ax.set_ylim(-1.05, 1.05)
            what = self.label if self.label else f"pixel at {self.reference:.2f}"
            ax.set_ylabel(f"correlation with {what}")
        else:
            image = ax.imshow(self.correlation, origin="lower", cmap="RdBu_r", vmin=-1, vmax=1,
                              extent=(wl[0], wl[-1], wl[0], wl[-1]))
            fig.colorbar(image, ax=ax, label="correlation")
            ax.set_ylabel(r"wavelength [$\AA$]")
        ax.set_xlabel(r"wavelength [$\AA$]")
        return fig


def _context(flow: SpectralFlow, label: str | None, fixed: Mapping[str, Any], n: int,
             generator: np.random.Generator) -> tuple[dict[str, Any], dict[str, Any]]:
    space = flow.condition_space
    names = () if space is None else space.names
    unknown = [k for k in fixed if k not in names]
    if unknown:
        raise LabelError(f"fixed labels {unknown} are not conditioning labels of this flow "
                         f"({list(names)})")
    if label is not None:
        if label not in names:
            raise LabelError(f"the flow is not conditioned on {label!r} (it is on "
                             f"{list(names)}): fit a SpectralFlow with conditional_on "
                             f"including {label!r} to correlate pixels with it")
        if label in fixed:
            raise LabelError(f"label {label!r} cannot be both correlated with and fixed")
    values: dict[str, Any] = {}
    conditions: dict[str, Any] = {}
    for name in names:
        lo, hi = flow.label_ranges[name]
        if name == label:
            values[name] = generator.uniform(lo, hi, n)
            conditions[name] = [lo, hi]
        elif name in fixed:
            values[name] = fixed[name]
        else:
            values[name] = 0.5 * (lo + hi)
    others = [name for name in names if name != label]
    if others:
        conditions.update(space.subset(others).parse({k: values[k] for k in others}))
    return values, conditions


def _normalize(cov: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    return cov / torch.sqrt(var.clamp_min(torch.finfo(var.dtype).tiny))


def pixel_correlations(flow: SpectralFlow, label: str | None = None, *, n_samples: int = 4000,
                       fixed: Mapping[str, Any] | None = None,
                       reference: u.Quantity | None = None, seed: int = 0) -> CorrelationMap:
    r"""Correlations between pixels and a label, or among pixels, from flow samples.

    Parameters
    ----------
    flow : SpectralFlow
        A fitted flow; for ``label`` it must be conditioned on that label.
    label : str, optional
        Correlate every pixel with this conditioning label, drawn uniformly over its
        training range. If None, correlate pixels with each other.
    n_samples : int
        Number of spectra drawn.
    fixed : mapping, optional
        Values of the other conditioning labels (e.g. ``{"teff": 5000 * u.K,
        "logg": 4.5}``); those not given are held at the midpoint of their training range.
    reference : Quantity, optional
        For ``label=None``: correlate with the pixel nearest this wavelength and return a
        1-D map; without it the full ``(n_pix, n_pix)`` matrix is returned.
    seed : int
        Seed of the label draws and of the flow samples.

    Returns
    -------
    CorrelationMap

    Notes
    -----
    A sample is :math:`f = \mu + B^\top c + \epsilon`, with flow coefficients :math:`c`
    and a pixel noise :math:`\epsilon` whose variance :math:`\sigma_j^2` is what the PCA
    basis left out of the training spectra. With the sample covariances
    :math:`C = \mathrm{Cov}(c)` and :math:`g = \mathrm{Cov}(c, y)`,

    .. math::

        r_j = \frac{(B^\top g)_j}{\sqrt{\left[(B^\top C B)_{jj} + \sigma_j^2\right]
        \mathrm{Var}(y)}},

    so pixels whose flow variance is only noise (the continuum) correlate weakly.

    Examples
    --------
    See the worked example in ``docs/flows.rst``.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 3:
        raise FlowError(f"n_samples must be an integer >= 3, got {n_samples!r}")
    network = flow._require_fitted()
    if label is not None and reference is not None:
        raise FlowError("give either label= (pixel-label map) or reference= (pixel-pixel "
                        "map), not both")
    generator = np.random.default_rng(seed)
    values, conditions = _context(flow, label, dict(fixed or {}), n_samples, generator)
    coefficients, y = flow.sample_coefficients(n_samples, values, seed=seed)
    pca = network.pca
    basis, noise = pca.components, pca.residual_variance
    centred = coefficients - coefficients.mean(0)
    cov_c = centred.T @ centred / (n_samples - 1)
    var_pix = torch.einsum("kp,kl,lp->p", basis, cov_c, basis) + noise
    wavelength = flow.wavelength
    if label is not None:
        target = torch.as_tensor(y[:, flow.condition_space.index(label)])
        target = target - target.mean()
        cov_cy = centred.T @ target / (n_samples - 1)
        var_y = target.var()
        r = _normalize(basis.T @ cov_cy, var_pix * var_y)
    else:
        full = basis.T @ cov_c @ basis + torch.diag(noise)
        if reference is None:
            r = _normalize(full, torch.outer(var_pix, var_pix))
        else:
            j = int(np.argmin(np.abs(wavelength.to_value(u.AA)
                                     - reference.to_value(u.AA, equivalencies=u.spectral()))))
            r = _normalize(full[j], var_pix * var_pix[j])
    return CorrelationMap(wavelength=wavelength, correlation=r.clamp(-1, 1).numpy(),
                          label=label, reference=reference, conditions=conditions,
                          n_samples=n_samples)
