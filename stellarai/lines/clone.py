"""Cloning: find the lines of a template spectrum and fit one Voigt line to each.

:func:`clone_spectrum` (also :meth:`LineModel.from_spectrum
<stellarai.lines.LineModel.from_spectrum>`) finds absorption lines by their peak
prominence (:func:`scipy.signal.find_peaks`), starts each line from its depth and width at
half prominence, and optimizes all lines together to reproduce the template, as blasé
does (Gully-Santiago & Morley 2022). A template seen through an instrument (a telluric
transmission tabulated at the spectrograph's resolution) is cloned through that
instrument's profile with ``resolving_power=``, so that the lines are native.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.signal import find_peaks, peak_widths

from ..ops.base import C_KMS
from ..ops.broadening import Instrument
from ..ops.resample import Resample, model_grid_for
from ..spectra.orders import OrderBatch
from .errors import NoLinesError
from .model import LineModel
from .optimize import minimize
from .profiles import absorption

__all__ = ["CloneReport", "clone_spectrum", "find_lines"]

_TCH_EQUAL = 1.6355  # total FWHM / component FWHM of a pseudo-Voigt with f_G = f_L
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


@dataclass(frozen=True)
class CloneReport:
    """How well a clone reproduces its template.

    Attributes
    ----------
    n_lines : int
        Lines found (one per peak above the prominence).
    prominence : float
        The peak prominence used.
    residual_rms : float
        RMS of clone minus template over the template's pixels (flux units: a fraction
        of the continuum for a normalized template).
    max_residual : float
        Largest absolute residual.
    initial_rms : float
        RMS before optimization (the peaks' first guesses).
    steps : int
        Optimization steps taken.
    seconds : float
        Wall time of the whole clone.
    """

    n_lines: int
    prominence: float
    residual_rms: float
    max_residual: float
    initial_rms: float
    steps: int
    seconds: float

    def __str__(self) -> str:
        return (f"{self.n_lines} lines (prominence {self.prominence:g}): residual RMS "
                f"{100 * self.residual_rms:.3f}% (max {100 * self.max_residual:.2f}%, "
                f"{100 * self.initial_rms:.2f}% before optimizing), {self.steps} steps, "
                f"{self.seconds:.1f} s")


def find_lines(wavelength: np.ndarray, flux: np.ndarray, prominence: float
               ) -> dict[str, np.ndarray]:
    """Absorption lines of one row: centre, depth and FWHM (Angstrom) of each peak of
    ``1 - flux`` with at least ``prominence``.

    Examples
    --------
    >>> wl = np.linspace(5000.0, 5010.0, 2001)
    >>> flux = 1 - 0.3 * np.exp(-0.5 * ((wl - 5004.0) / 0.1) ** 2)
    >>> found = find_lines(wl, flux, 0.01)
    >>> found["center"].tolist(), round(float(found["fwhm"][0]), 3)
    ([5004.0], 0.236)
    """
    depth = 1.0 - np.asarray(flux, dtype=np.float64)
    peaks, props = find_peaks(depth, prominence=prominence)
    if not peaks.size:
        return {"center": np.empty(0), "depth": np.empty(0), "fwhm": np.empty(0)}
    width_px = peak_widths(depth, peaks, rel_height=0.5, prominence_data=(
        props["prominences"], props["left_bases"], props["right_bases"]))[0]
    step = np.gradient(wavelength)[peaks]
    return {"center": wavelength[peaks], "depth": np.clip(depth[peaks], 1e-6, 1 - 1e-6),
            "fwhm": np.maximum(width_px, 1.0) * step}


def _initial_lines(batch: OrderBatch, prominence: float, resolving_power: float | None,
                   flux_model: str, profile: str) -> dict[str, np.ndarray]:
    found: dict[str, list[np.ndarray]] = {"center": [], "depth": [], "fwhm": []}
    deepest = 0.0
    for _, wl, fl, _, mask in batch.iter_orders():
        wl, fl = wl[~mask].numpy(), fl[~mask].numpy()
        if wl.size < 3:
            continue
        deepest = max(deepest, float(np.max(1.0 - fl)))
        for key, values in find_lines(wl, fl, prominence).items():
            found[key].append(values)
    lines = {k: np.concatenate(v) if v else np.empty(0) for k, v in found.items()}
    if not lines["center"].size:
        raise NoLinesError(
            f"clone_spectrum: the template has no line with prominence >= {prominence:g} "
            f"(its deepest point lies {deepest:.3g} below 1; is it normalized?); lower "
            "prominence=... or normalize the template")
    order = np.argsort(lines["center"])
    center, depth, fwhm = (lines[k][order] for k in ("center", "depth", "fwhm"))
    keep = np.concatenate([[True], np.diff(center) > 0])  # overlapping orders: once
    center, depth, fwhm = center[keep], depth[keep], fwhm[keep]
    sigma = fwhm / _TCH_EQUAL / _FWHM_PER_SIGMA
    gamma = fwhm / _TCH_EQUAL / 2.0
    peak = absorption(torch.zeros(center.size, dtype=torch.float64),
                      torch.ones(center.size, dtype=torch.float64), torch.as_tensor(sigma),
                      torch.as_tensor(gamma), profile=profile).numpy()
    strength = depth if flux_model == "product" else -np.log1p(-depth)
    amplitude = strength / peak
    if resolving_power is not None:
        instrument = center / resolving_power
        native = np.sqrt(np.maximum(fwhm**2 - instrument**2, (0.3 * instrument) ** 2))
        sigma, gamma = sigma * native / fwhm, gamma * native / fwhm
    return {"wavelength": center, "amplitude": amplitude, "sigma": sigma, "gamma": gamma}


def clone_spectrum(template: Any, *, prominence: float = 0.005,
                   resolving_power: float | None = None, steps: int = 300, lr: float = 0.02,
                   optimizer: str = "adam", grid: Any = None, oversample: float = 4.0,
                   progress: bool = False, **model_kwargs: Any) -> LineModel:
    """Clone a normalized template spectrum into a :class:`~stellarai.lines.LineModel`.

    Parameters
    ----------
    template : Spectrum, SpectrumList or OrderBatch
        Normalized flux (continuum 1), vacuum wavelengths; several rows (orders) allowed.
    prominence : float
        Peak prominence (in units of the continuum) a feature needs to become a line.
    resolving_power : float, optional
        The template's resolving power if it is seen through an instrument (e.g. 55,000
        for muler's HPF TelFit template): the lines are then fitted through a Gaussian
        instrumental profile on a model grid, so that they are native.
    steps, lr, optimizer : optional
        Optimization of the clone (see ``stellarai.lines.optimize.minimize``).
    grid : torch.Tensor, optional
        Grid of the returned model (default: the template's own pixels; with
        ``resolving_power``, the native grid of :class:`~stellarai.lines.LineModel`).
    oversample : float
        Samples per resolution element of the model grid used with ``resolving_power``.
    progress : bool
        Show a progress bar.
    **model_kwargs
        Passed to :class:`~stellarai.lines.LineModel` (``profile``, ``flux_model``,
        ``tolerance``, ``max_window``...).

    Returns
    -------
    LineModel
        With the clone as its reference, and a :class:`CloneReport` in
        ``clone_report`` (also the template, in ``template``).

    Raises
    ------
    NoLinesError
        If no feature reaches ``prominence``.
    """
    begin = time.perf_counter()
    batch = OrderBatch.from_spectra(template)
    flux_model = model_kwargs.get("flux_model", "product")
    profile = model_kwargs.get("profile", "pseudo_voigt")
    start = _initial_lines(batch, prominence, resolving_power, flux_model, profile)
    weights = (~batch.mask).to(torch.float64)
    if resolving_power is None:
        model = LineModel(**start, grid=batch.wavelength, **model_kwargs)
        chain = model
    else:
        margin = 6 * C_KMS / resolving_power  # the Instrument reads ~3.5 FWHM out
        model = LineModel(**start, grid=model_grid_for(
            batch, resolving_power, oversample=oversample, margin=margin), **model_kwargs)
        chain = model | Instrument(resolving_power=resolving_power) | Resample(batch)

    def rms() -> tuple[float, float]:
        with torch.no_grad():
            residual = (chain.evaluate({})[1] - batch.flux)[weights > 0]
        return float(residual.pow(2).mean().sqrt()), float(residual.abs().max())

    initial, _ = rms()
    minimize(chain, batch.flux, weights, steps=steps, lr=lr, optimizer=optimizer,
             progress=progress, description="clone")
    final, worst = rms()
    if grid is not None or resolving_power is not None:
        model = model.regrid(grid) if grid is not None else LineModel.from_table(
            model.to_table(), **model_kwargs)
    model.set_reference()
    model.clone_report = CloneReport(model.n_lines, float(prominence), final, worst, initial,
                                     steps, time.perf_counter() - begin)
    model.template = template
    return model
