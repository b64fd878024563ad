"""Composable, differentiable forward-model operators.

A star's model becomes an observation through a chain of physical operators, each a
`torch.nn.Module` with named physical parameters (units, bounds, fixed/free, priors)::

    model = ((Template(star, grid=grid) | Rotation(vsini=3 * u.km / u.s)
              | Doppler(rv=-9.6 * u.km / u.s)) * Telluric.from_muler("hpf")
             | Instrument.from_data(orders) | Resample(orders))

``a | b`` applies ``b`` after ``a``; ``a * b`` multiplies fluxes on a common grid. A chain
runs on tensors inside a fit, on specutils spectra at the edges (``model()`` or
``op(spectrum)``), and as an astropy fittable model (``model.as_model()``).

- :mod:`~stellarai.ops.base`: the :class:`Operator` base class, :class:`Parameter`
  records, composition (:class:`Pipe`, :class:`Product`), :class:`Unconstrained`.
- :class:`Template`: a fixed spectrum that starts a chain.
- :class:`Doppler`: relativistic Doppler shift.
- :class:`Rotation`, :class:`Instrument`: rotational and instrumental broadening
  (kernels in :mod:`stellarai.ops.kernels`).
- :class:`Resample`, :func:`model_grid_for`: model grids with margins, and rebinning onto
  the observed pixels.
- :class:`Telluric`: telluric transmission (muler's HPF TelFit template or any spectrum).
- :class:`ChebyshevContinuum`, :class:`BlazeTemplate`: continuum and blaze.
- :func:`as_model`: the astropy bridge.
"""

from . import kernels
from .base import (
    C_KMS,
    GaussianPrior,
    GridCoverageError,
    Multiplicative,
    Operator,
    OperatorError,
    Parameter,
    ParameterError,
    ParameterTable,
    Pipe,
    Product,
    Unconstrained,
)
from .broadening import Instrument, Rotation
from .continuum import BlazeTemplate, ChebyshevContinuum
from .doppler import Doppler, doppler_factor
from .modeling import OperatorModel, as_model
from .resample import Resample, model_grid_for
from .telluric import Telluric
from .template import TabulatedFactor, Template, read_muler_template

__all__ = [
    "C_KMS",
    "BlazeTemplate",
    "ChebyshevContinuum",
    "Doppler",
    "GaussianPrior",
    "GridCoverageError",
    "Instrument",
    "Multiplicative",
    "Operator",
    "OperatorError",
    "OperatorModel",
    "Parameter",
    "ParameterError",
    "ParameterTable",
    "Pipe",
    "Product",
    "Resample",
    "Rotation",
    "TabulatedFactor",
    "Telluric",
    "Template",
    "Unconstrained",
    "as_model",
    "doppler_factor",
    "kernels",
    "model_grid_for",
    "read_muler_template",
]
