r"""An "observed" domain for studies of domain transfer, made with the synthesizer.

Real spectra differ from synthetic ones by an imperfect line list, an instrument's
line-spread function, continuum-normalization errors and noise. :func:`perturb_linelist`
and :func:`observe` imitate each, so a model pre-trained on clean synthetic spectra can be
tested, and fine-tuned, on a shifted domain whose true labels are known.
"""

from __future__ import annotations

import numpy as np
import torch
from astropy.table import QTable

from ..grids import SpectralGrid, make_provenance
from ..ops.kernels import gaussian_broaden, log_step, resolving_power_to_fwhm_velocity
from ..synth import LineList
from .errors import FoundationError

__all__ = ["observe", "perturb_linelist"]


def perturb_linelist(lines: LineList, *, log_gf_scatter: float = 0.1, drop: float = 0.0,
                     seed: int = 0) -> LineList:
    """A copy of ``lines`` with errors: scattered oscillator strengths, missing lines.

    Parameters
    ----------
    lines : LineList
        The list.
    log_gf_scatter : float
        Standard deviation (dex) of Gaussian errors added to every ``log_gf``.
    drop : float
        Share of lines removed at random, in [0, 1).
    seed : int
        Seed of the errors.

    Returns
    -------
    LineList

    Examples
    --------
    >>> import astropy.units as u
    >>> lines = LineList.default([10800, 10900] * u.AA)
    >>> other = perturb_linelist(lines, log_gf_scatter=0.2, drop=0.1, seed=1)
    >>> len(other) < len(lines), bool((other.log_gf != lines.log_gf[:len(other)]).any())
    (True, True)
    """
    if not isinstance(lines, LineList):
        raise FoundationError(f"lines must be a LineList, got {type(lines).__name__}")
    if not (log_gf_scatter >= 0 and np.isfinite(log_gf_scatter)):
        raise FoundationError(f"log_gf_scatter must be >= 0, got {log_gf_scatter!r}")
    if not 0 <= drop < 1:
        raise FoundationError(f"drop must be in [0, 1), got {drop!r}")
    rng = np.random.default_rng(seed)
    table = QTable(lines.table, copy=True)
    table["log_gf"] = np.asarray(table["log_gf"]) + rng.normal(0, log_gf_scatter, len(table))
    keep = rng.random(len(table)) >= drop
    return LineList(table[keep])


def observe(grid: SpectralGrid, *, resolving_power: float | None = None,
            continuum: float = 0.0, snr: float | None = None, seed: int = 0
            ) -> SpectralGrid:
    r"""Turn clean synthetic spectra into "observations".

    In order: a Gaussian line-spread function of resolving power ``resolving_power``
    (the grid must be uniform in :math:`\ln\lambda`), a continuum error
    :math:`1 + a_1 x + a_2 (x^2 - 1/3)` with :math:`a_i \sim N(0, \texttt{continuum})`
    and :math:`x \in [-1, 1]` across the grid, and Gaussian noise of standard deviation
    ``1 / snr`` (recorded as the grid's ``ivar``).

    Parameters
    ----------
    grid : SpectralGrid
        Normalized synthetic spectra.
    resolving_power : float, optional
        R of the line-spread function (None: none applied).
    continuum : float
        Scatter of the continuum-error coefficients (0: none).
    snr : float, optional
        Signal-to-noise ratio per pixel (None: no noise, no ``ivar``).
    seed : int
        Seed of the continuum errors and the noise.

    Returns
    -------
    SpectralGrid
        Same wavelengths and labels, provenance recording these settings.

    Examples
    --------
    >>> from stellarai.emulators.toy import toy_grid
    >>> noisy = observe(toy_grid(4, n_pix=200), resolving_power=20_000, snr=50, seed=1)
    >>> noisy.ivar[0, 0]
    np.float64(2500.0)
    """
    if not isinstance(grid, SpectralGrid):
        raise FoundationError(f"grid must be a SpectralGrid, got {type(grid).__name__}")
    if snr is not None and not snr > 0:
        raise FoundationError(f"snr must be positive or None, got {snr!r}")
    if not continuum >= 0:
        raise FoundationError(f"continuum must be >= 0, got {continuum!r}")
    flux = torch.as_tensor(np.asarray(grid.flux), dtype=torch.float64)
    wavelength = torch.as_tensor(grid.wavelength.value)
    if resolving_power is not None:
        flux = gaussian_broaden(flux, log_step(wavelength),
                                resolving_power_to_fwhm_velocity(float(resolving_power)))
    rng = np.random.default_rng(seed)
    flux = flux.numpy()
    if continuum > 0:
        x = np.log(grid.wavelength.value)
        x = 2 * (x - x[0]) / (x[-1] - x[0]) - 1
        a = rng.normal(0, continuum, (len(grid), 2))
        flux = flux * (1 + a[:, :1] * x + a[:, 1:] * (x**2 - 1 / 3))
    ivar = None
    if snr is not None:
        flux = flux + rng.normal(0, 1 / snr, flux.shape)
        ivar = np.full(flux.shape, float(snr) ** 2)
    provenance = make_provenance("stellarai.foundation.observe", source=grid.provenance,
                                 resolving_power=resolving_power, continuum=continuum,
                                 snr=snr, seed=seed)
    return SpectralGrid(grid.wavelength, flux, grid.label_array, grid.label_space, ivar=ivar,
                        provenance=provenance)
