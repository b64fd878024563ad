"""Fitting échelle spectra: joint multi-order inference with uncertainties.

- :func:`fit` and :class:`SpectrumFitter`: fit an emulator or an operator chain to a
  Spectrum, SpectrumList or muler EchelleSpectrumList, all orders jointly (shared labels,
  velocities and telluric strength; a per-order continuum solved by least squares),
  from several starts, with Laplace or emcee uncertainties;
  :meth:`SpectrumFitter.fit_batch` fits many spectra in the same torch passes.
- :class:`FitResult`: parameter table, covariance, chi-square per order, model and
  residuals as SpectrumLists, plot, write, to_dict/from_dict.
- :func:`fit_many`: many spectra, vectorized, optionally over a dask cluster;
  :func:`simulate_hpf_observation`: a synthetic HPF observation with known labels.
- :class:`FitProblem`: the forward model and chi-square behind a fit.
"""

from .errors import FitError, FitInputError
from .fitter import SpectrumFitter, fit
from .many import fit_many, local_client, results_table
from .optimize import OptimizeResult, minimize_newton
from .problem import FitProblem, chebyshev_basis
from .result import FitResult
from .simulate import hpf_pixel_wavelengths, simulate_hpf_observation, simulate_observation

__all__ = [
    "FitError",
    "FitInputError",
    "FitProblem",
    "FitResult",
    "OptimizeResult",
    "SpectrumFitter",
    "chebyshev_basis",
    "fit",
    "fit_many",
    "hpf_pixel_wavelengths",
    "local_client",
    "minimize_newton",
    "results_table",
    "simulate_hpf_observation",
    "simulate_observation",
]
