"""The outcome of a fit: parameters with uncertainties, model, residuals, diagnostics."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.nddata import StdDevUncertainty
from astropy.table import QTable
from specutils import Spectrum, SpectrumList

from .errors import FitError

__all__ = ["FitResult"]

_ARRAYS = ("values", "covariance", "chi2_per_order", "n_pixels", "orders", "continuum")
_RAGGED = ("wavelength", "flux", "sigma", "mask", "model_flux")


def _unit(text: str) -> u.UnitBase:
    return u.Unit(text) if text else u.dimensionless_unscaled


class FitResult:
    """Best-fit parameters, uncertainties, model and diagnostics of one fitted spectrum.

    Made by :class:`~stellarai.fitting.SpectrumFitter`; every attribute is plain numbers,
    arrays and strings, so :meth:`to_dict` / :meth:`from_dict` round-trip it exactly (for
    example between dask workers).

    Attributes
    ----------
    names : tuple of str
        Free parameters, in fit order.
    units : tuple of str
        Their units (``""`` for dimensionless).
    values : numpy.ndarray
        Best-fit values, ``(P,)``.
    covariance : numpy.ndarray
        ``(P, P)`` covariance (Laplace approximation, or of the emcee samples).
    chi2_per_order : numpy.ndarray
        Chi-square of each order at the best fit.
    n_pixels : numpy.ndarray
        Number of pixels with positive weight in each order.
    orders : numpy.ndarray
        Order numbers (``meta["m"]`` of muler orders, else the position).
    continuum : numpy.ndarray
        ``(orders, degree + 1)`` Chebyshev coefficients of each order's continuum (the
        polynomial runs over x = -1 ... 1 from the order's first to last pixel).
    converged : bool
        Whether the best start passed the optimizer's convergence test.
    message : str
        Why the optimizer stopped, plus notes (bounds reached, parameters restricted).
    samples : numpy.ndarray or None
        Posterior samples ``(n, P)`` (after :meth:`sample` or ``uncertainty="emcee"``).
    iterations, gradient_norm : int, float
        Newton iterations of the best start, and the gradient norm (unconstrained
        coordinates) where it stopped; ``meta`` adds the Newton decrement, the size of
        the last step, the index of the best start and the chain's parameter names.
    starts_chi2, starts_converged : numpy.ndarray
        ``chi2 - 2 ln(prior)`` and the convergence flag of every start.

    Examples
    --------
    >>> result = FitResult.from_dict({
    ...     "names": ["rv"], "units": ["km / s"], "values": [1.5], "covariance": [[0.01]],
    ...     "chi2_per_order": [2100.0], "n_pixels": [2048], "orders": [0],
    ...     "continuum": [[1.0, 0.0]], "converged": True, "message": "converged",
    ...     "wavelength": [[10000.0, 10000.1]], "flux": [[1.0, 1.0]],
    ...     "sigma": [[0.01, 0.01]], "mask": [[False, False]], "model_flux": [[1.0, 1.0]]})
    >>> result["rv"], result.uncertainty("rv")
    (<Quantity 1.5 km / s>, <Quantity 0.1 km / s>)
    """

    def __init__(self, *, names: Sequence[str], units: Sequence[str], values: Any,
                 covariance: Any, chi2_per_order: Any, n_pixels: Any, orders: Any,
                 continuum: Any, converged: bool, message: str, wavelength: Sequence[Any],
                 flux: Sequence[Any], sigma: Sequence[Any], mask: Sequence[Any],
                 model_flux: Sequence[Any], flux_unit: str = "",
                 uncertainty_method: str = "laplace", iterations: int = 0,
                 gradient_norm: float = float("nan"), starts_chi2: Any = (),
                 starts_converged: Any = (), samples: Any = None,
                 meta: Mapping[str, Any] | None = None) -> None:
        self.names = tuple(str(n) for n in names)
        self.units = tuple(str(s) for s in units)
        self.values = np.asarray(values, dtype=np.float64)
        self.covariance = np.asarray(covariance, dtype=np.float64)
        self.chi2_per_order = np.asarray(chi2_per_order, dtype=np.float64)
        self.n_pixels = np.asarray(n_pixels, dtype=np.int64)
        self.orders = np.asarray(orders, dtype=np.int64)
        self.continuum = np.asarray(continuum, dtype=np.float64)
        self.converged = bool(converged)
        self.message = str(message)
        self.wavelength = [np.asarray(a, dtype=np.float64) for a in wavelength]
        self.flux = [np.asarray(a, dtype=np.float64) for a in flux]
        self.sigma = [np.asarray(a, dtype=np.float64) for a in sigma]
        self.mask = [np.asarray(a, dtype=bool) for a in mask]
        self.model_flux = [np.asarray(a, dtype=np.float64) for a in model_flux]
        self.flux_unit = str(flux_unit)
        self.uncertainty_method = str(uncertainty_method)
        self.iterations = int(iterations)
        self.gradient_norm = float(gradient_norm)
        self.starts_chi2 = np.asarray(starts_chi2, dtype=np.float64)
        self.starts_converged = np.asarray(starts_converged, dtype=bool)
        self.samples = None if samples is None else np.asarray(samples, dtype=np.float64)
        self.meta = dict(meta or {})
        self._fitter: Any = None
        self._index: int | None = None
        self._context: Any = None

    # ------------------------------------------------------------------ parameters
    def _position(self, name: str) -> int:
        if name not in self.names:
            raise FitError(f"no fitted parameter {name!r}; the fitted parameters are "
                           f"{', '.join(self.names)}")
        return self.names.index(name)

    def __getitem__(self, name: str) -> u.Quantity:
        """Best-fit value of ``name`` as a Quantity."""
        i = self._position(name)
        return u.Quantity(self.values[i], _unit(self.units[i]))

    def uncertainty(self, name: str) -> u.Quantity:
        """One-sigma uncertainty of ``name`` (square root of the covariance's diagonal)."""
        i = self._position(name)
        return u.Quantity(np.sqrt(self.covariance[i, i]), _unit(self.units[i]))

    @property
    def uncertainties(self) -> np.ndarray:
        """One-sigma uncertainties of all parameters, ``(P,)``."""
        return np.sqrt(np.diagonal(self.covariance))

    @property
    def table(self) -> QTable:
        """Every free parameter: ``name``, ``value``, ``uncertainty``, ``unit``."""
        table = QTable({"name": list(self.names), "value": self.values,
                        "uncertainty": self.uncertainties, "unit": list(self.units)})
        table.meta.update(self._summary())
        return table

    def _summary(self) -> dict[str, Any]:
        return {"chi2": self.chi2, "reduced_chi2": self.reduced_chi2, "dof": self.dof,
                "converged": self.converged, "message": self.message,
                "uncertainty_method": self.uncertainty_method}

    # ------------------------------------------------------------------ goodness of fit
    @property
    def chi2(self) -> float:
        """Total chi-square at the best fit."""
        return float(self.chi2_per_order.sum())

    @property
    def dof(self) -> int:
        """Degrees of freedom: valid pixels minus free parameters minus continuum terms."""
        return int(self.n_pixels.sum() - len(self.names) - self.continuum.size)

    @property
    def reduced_chi2(self) -> float:
        """``chi2 / dof``."""
        return self.chi2 / max(self.dof, 1)

    # ------------------------------------------------------------------ spectra
    def _spectra(self, flux: Sequence[np.ndarray], with_uncertainty: bool) -> SpectrumList:
        unit = _unit(self.flux_unit)
        out = []
        for i, m in enumerate(self.orders.tolist()):
            out.append(Spectrum(
                flux=u.Quantity(flux[i], unit), spectral_axis=self.wavelength[i] * u.AA,
                uncertainty=StdDevUncertainty(self.sigma[i]) if with_uncertainty else None,
                mask=self.mask[i].copy() if with_uncertainty else None, meta={"m": m}))
        return SpectrumList(out)

    @property
    def data(self) -> SpectrumList:
        """The fitted data, one `~specutils.Spectrum` per order (vacuum Angstrom)."""
        return self._spectra(self.flux, True)

    @property
    def model(self) -> SpectrumList:
        """The best-fit model (continuum included) on the observed pixels."""
        return self._spectra(self.model_flux, False)

    @property
    def residuals(self) -> SpectrumList:
        """Data minus model, with the data's uncertainties and mask."""
        return self._spectra([f - m for f, m in zip(self.flux, self.model_flux, strict=True)],
                             True)

    # ------------------------------------------------------------------ serialization
    def to_dict(self) -> dict[str, Any]:
        """Plain numbers, arrays and strings (see :meth:`from_dict`)."""
        out: dict[str, Any] = {"names": list(self.names), "units": list(self.units)}
        for key in _ARRAYS:
            out[key] = getattr(self, key).copy()
        for key in _RAGGED:
            out[key] = [a.copy() for a in getattr(self, key)]
        out.update(converged=self.converged, message=self.message, flux_unit=self.flux_unit,
                   uncertainty_method=self.uncertainty_method, iterations=self.iterations,
                   gradient_norm=self.gradient_norm, starts_chi2=self.starts_chi2.copy(),
                   starts_converged=self.starts_converged.copy(),
                   samples=None if self.samples is None else self.samples.copy(),
                   meta=dict(self.meta))
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> FitResult:
        """Rebuild a result from :meth:`to_dict`'s output."""
        try:
            return cls(**values)
        except TypeError as exc:
            raise FitError(f"FitResult.from_dict: not a FitResult dictionary ({exc})") from exc

    def write(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write the parameter table, by suffix: ``.ecsv`` or ``.fits``.

        ECSV keeps the summary (chi-square, convergence, message) and the covariance in the
        table's metadata; FITS writes the table as a binary-table HDU (summary in its
        header) followed by a ``COVARIANCE`` image HDU.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
        table = self.table
        if suffix == ".ecsv":
            table.meta["covariance"] = self.covariance.tolist()
            table.write(path, format="ascii.ecsv", overwrite=True)
        elif suffix in (".fits", ".fit", ".fts"):
            hdu = fits.table_to_hdu(QTable(table, meta={}))
            hdu.name = "PARAMETERS"
            for key, value in self._summary().items():
                hdu.header[f"HIERARCH {key.upper()}"] = value
            hdus = fits.HDUList([fits.PrimaryHDU(), hdu,
                                 fits.ImageHDU(self.covariance, name="COVARIANCE")])
            hdus.writeto(path, overwrite=True)
        else:
            raise FitError(f"cannot write a FitResult to {path.name!r}: use a .ecsv or .fits "
                           "suffix")

    # ------------------------------------------------------------------ sampling
    def sample(self, *, nwalkers: int | None = None, nsteps: int = 1000, burn: int | None = None,
               seed: int = 0, progress: bool = True) -> np.ndarray:
        """Posterior samples by emcee, started in a small ball at the best fit.

        Needs the fitter that made this result (not kept by :meth:`to_dict`); sets
        :attr:`samples` and returns them. The covariance stays the Laplace one; the
        samples' covariance is ``numpy.cov(result.samples.T)``.
        """
        if self._fitter is None:
            raise FitError("this result no longer knows its fitter (it was rebuilt from a "
                           "dictionary); fit again to sample")
        self.samples = self._fitter._sample(self, nwalkers=nwalkers, nsteps=nsteps, burn=burn,
                                            seed=seed, progress=progress)
        return self.samples

    # ------------------------------------------------------------------ figures
    def plot(self, orders: Sequence[int] | None = None, *, figsize: Any = None) -> Any:
        """Data, model and normalized residuals of each order; returns the Figure.

        Parameters
        ----------
        orders : sequence of int, optional
            Positions (rows) of the orders to show; default all.
        """
        import matplotlib.pyplot as plt

        rows = list(range(len(self.orders)) if orders is None else orders)
        figure = plt.figure(figsize=figsize or (8, 3.0 * len(rows)))
        # one block per order (its own wavelength axis, labelled under its residuals)
        blocks = figure.add_gridspec(len(rows), 1, hspace=0.45)
        unit = f" [{self.flux_unit}]" if self.flux_unit else ""
        for k, i in enumerate(rows):
            panels = blocks[k].subgridspec(2, 1, height_ratios=[3, 1], hspace=0.06)
            top = figure.add_subplot(panels[0])
            bottom = figure.add_subplot(panels[1], sharex=top)
            good = ~self.mask[i] & np.isfinite(self.sigma[i]) & (self.sigma[i] > 0)
            x = self.wavelength[i]
            top.plot(x[good], self.flux[i][good], ".", ms=2, color="0.5", label="data")
            top.plot(x, self.model_flux[i], color="C0", lw=1, label="model")
            top.set_ylabel(f"flux{unit}")
            top.set_title(f"order {self.orders[i]}: chi2 = {self.chi2_per_order[i]:.1f} "
                          f"({self.n_pixels[i]} px)", fontsize="small")
            top.tick_params(labelbottom=False)
            pull = (self.flux[i] - self.model_flux[i])[good] / self.sigma[i][good]
            bottom.plot(x[good], pull, ".", ms=2, color="C3")
            bottom.axhline(0, color="k", lw=0.5)
            bottom.set_ylabel("resid./sigma")
            bottom.set_xlabel("vacuum wavelength [Angstrom]", fontsize="small")
            if k == 0:
                top.legend(loc="lower left", fontsize="small")
        return figure

    def corner(self, **kwargs: Any) -> Any:
        """Corner plot of the posterior samples (the ``corner`` package); returns the Figure."""
        if self.samples is None:
            raise FitError("no posterior samples: call result.sample() or fit with "
                           "uncertainty='emcee' first")
        import corner

        labels = [f"{n} [{s}]" if s else n for n, s in zip(self.names, self.units, strict=True)]
        return corner.corner(self.samples, labels=labels, truths=self.values, **kwargs)

    # ------------------------------------------------------------------ text
    def __repr__(self) -> str:
        state = "converged" if self.converged else f"NOT converged: {self.message}"
        lines = [f"<FitResult: {len(self.orders)} orders, {len(self.names)} parameters, "
                 f"chi2 = {self.chi2:.1f} (reduced {self.reduced_chi2:.3f}), {state}"]
        width = max((len(n) for n in self.names), default=4)
        for name, value, sigma, unit in zip(self.names, self.values, self.uncertainties,
                                            self.units, strict=True):
            lines.append(f"  {name:<{width}s} {value:12.6g} +- {sigma:<10.3g} {unit}".rstrip())
        return "\n".join(lines) + ">"
