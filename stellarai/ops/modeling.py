r"""The astropy bridge: any source chain as an `astropy.modeling.Fittable1DModel`.

:func:`as_model` turns an operator chain that starts with a source (a
:class:`~stellarai.ops.Template`, later an emulator) into a fittable astropy model:
wavelength in (Angstrom; any spectral unit through :func:`astropy.units.spectral`), flux
out. Its parameters are the chain's free parameters, with their units and bounds, so
astropy's own fitters (:class:`~astropy.modeling.fitting.TRFLSQFitter`) fit it, units
included; ``fit_deriv`` is the exact Jacobian from torch autograd.
"""

from __future__ import annotations

from typing import Any

import astropy.units as u
import numpy as np
import torch
from astropy.modeling import Fittable1DModel
from astropy.modeling import Parameter as AstropyParameter
from torch import Tensor

from ..spectra.resample import interpolate_linear
from .base import GridCoverageError, Operator, OperatorError, _Element

__all__ = ["OperatorModel", "as_model"]


class OperatorModel(Fittable1DModel):
    """Base class of the models made by :func:`as_model` (one subclass per chain).

    Class attributes set per subclass: ``operator`` (the wrapped chain) and ``elements``
    (the free scalars, in parameter order).
    """

    input_units_allow_dimensionless = {"x": True}  # plain numbers are Angstrom
    input_units_equivalencies = {"x": u.spectral()}
    input_units = {"x": u.AA}
    operator: Operator
    elements: tuple[_Element, ...] = ()
    _mapping_cache: dict[str, Any]

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _scalar(cls, value: Any, element: _Element) -> float:
        if isinstance(value, u.Quantity):
            value = value.to_value(element.spec.unit)
        return float(np.asarray(value, dtype=np.float64).ravel()[0])

    @classmethod
    def _values(cls, params: tuple[Any, ...], requires_grad: bool = False
                ) -> tuple[dict[str, Tensor], list[Tensor]]:
        """Qualified-name tensors for the chain, and the scalar leaves (one per element)."""
        scalars = [torch.tensor(cls._scalar(p, e), dtype=torch.float64,
                                requires_grad=requires_grad)
                   for p, e in zip(params, cls.elements, strict=True)]
        values: dict[str, Tensor] = {}
        vectors: dict[str, dict[int, Tensor]] = {}
        for scalar, element in zip(scalars, cls.elements, strict=True):
            if element.index is None:
                values[element.qualified] = scalar
            else:
                vectors.setdefault(element.qualified, {})[element.index] = scalar
        named = cls.operator._named()
        for qualified, parts in vectors.items():
            leaf, local, _ = named[qualified]
            current = leaf.tensors[local].detach()
            values[qualified] = torch.stack([parts.get(i, current[i])
                                             for i in range(current.shape[0])])
        return values, scalars

    # ----------------------------------------------------------- output at wavelengths
    @classmethod
    def _flux_at(cls, x: np.ndarray, values: dict[str, Tensor]) -> Tensor:
        wavelength, flux = cls.operator.evaluate(values)
        wavelength = wavelength.expand_as(flux)
        if flux.ndim == 1:
            wavelength, flux = wavelength[None], flux[None]
        wavelength = wavelength.reshape(-1, flux.shape[-1])
        flux = flux.reshape(-1, flux.shape[-1])
        batch = cls.operator._output_batch()
        if batch is not None and batch.n_orders == flux.shape[0]:
            npix = batch.npix.tolist()
        else:
            npix = [flux.shape[-1]] * flux.shape[0]
        x_t = torch.as_tensor(x, dtype=torch.float64)
        exact = cls._exact_positions(wavelength, npix, x_t)
        if exact is not None:
            rows, columns = exact
            return flux[rows, columns]
        return cls._interpolated(wavelength, flux, npix, x_t)

    @classmethod
    def _exact_positions(cls, wavelength: Tensor, npix: list[int], x: Tensor
                         ) -> tuple[Tensor, Tensor] | None:
        """(row, column) of each x if every x is one of the output pixels, else None."""
        grid = wavelength.detach()
        cache = cls._mapping_cache
        if not (cache.get("grid") is not None and cache["grid"].shape == grid.shape
                and torch.equal(cache["grid"], grid)):
            valid = torch.arange(grid.shape[-1])[None, :] < torch.tensor(npix)[:, None]
            rows, columns = torch.nonzero(valid, as_tuple=True)
            flat = grid[rows, columns]
            order = torch.argsort(flat)
            cache.clear()
            cache.update(grid=grid.clone(), sorted=flat[order], rows=rows[order],
                         columns=columns[order])
        ordered = cache["sorted"]
        index = torch.searchsorted(ordered, x).clamp(max=ordered.numel() - 1)
        if not bool((ordered[index] == x).all()):
            return None
        return cache["rows"][index], cache["columns"][index]

    @classmethod
    def _interpolated(cls, wavelength: Tensor, flux: Tensor, npix: list[int], x: Tensor
                      ) -> Tensor:
        """Linear interpolation; each x takes the first row whose range contains it."""
        result = torch.zeros_like(x)
        assigned = torch.zeros_like(x, dtype=torch.bool)
        for row, n in enumerate(npix):
            w, f = wavelength[row, :n], flux[row, :n]
            inside = (~assigned) & (x >= w[0].detach()) & (x <= w[-1].detach())
            if bool(inside.any()):
                result = torch.where(inside, interpolate_linear(x, w, f, fill=0.0), result)
                assigned = assigned | inside
        if not bool(assigned.all()):
            first = float(x[~assigned][0])
            raise GridCoverageError(
                f"as_model: wavelength {first!r} Angstrom lies outside the chain's output "
                f"({float(wavelength.detach().min()):.3f}-{float(wavelength.detach().max()):.3f} "
                f"Angstrom)"
            )
        return result

    # ------------------------------------------------------------------- astropy API
    def evaluate(self, x: Any, *params: Any) -> np.ndarray:
        """Model flux at wavelengths ``x`` (Angstrom) for the given parameter values."""
        x_values = np.asarray(x.to_value(u.AA, equivalencies=u.spectral())
                              if isinstance(x, u.Quantity) else x, dtype=np.float64)
        values, _ = self._values(params)
        with torch.no_grad():
            flux = self._flux_at(x_values.ravel(), values)
        return flux.cpu().numpy().reshape(x_values.shape)

    @classmethod
    def _jacobian(cls, x: Any, *params: Any) -> np.ndarray:
        x_values = np.asarray(x, dtype=np.float64).ravel()
        values, scalars = cls._values(params, requires_grad=True)
        out = cls._flux_at(x_values, values)
        probe = torch.zeros_like(out, requires_grad=True)
        grads = torch.autograd.grad(out, scalars, grad_outputs=probe, create_graph=True,
                                    allow_unused=True)
        rows = []
        for grad in grads:
            if grad is None or grad.grad_fn is None:
                rows.append(np.zeros(x_values.size))
            else:
                column = torch.autograd.grad(grad, probe, retain_graph=True,
                                             allow_unused=True)[0]
                rows.append(np.zeros(x_values.size) if column is None
                            else column.detach().cpu().numpy())
        return np.stack(rows) if rows else np.zeros((0, x_values.size))

    def _parameter_units_for_data_units(self, inputs_unit: dict, outputs_unit: dict
                                        ) -> dict[str, u.UnitBase]:
        return {e.name: e.spec.unit for e in self.elements
                if e.spec.unit != u.dimensionless_unscaled}

    def sync_operator(self) -> Operator:
        """Write this model's parameter values into the wrapped operator and return it.

        Bounds are checked (astropy's fitters keep values within them).
        """
        updates = {}
        for element in self.elements:
            parameter = getattr(self, element.name)
            value = parameter.quantity if parameter.unit is not None else parameter.value
            updates[element.name] = value
        return self.operator.set(**updates)


def as_model(operator: Operator, *, name: str | None = None) -> OperatorModel:
    r"""Wrap a chain that starts with a source as an `astropy.modeling.Fittable1DModel`.

    Parameters
    ----------
    operator : Operator
        A chain whose first member is a source (e.g. a :class:`~stellarai.ops.Template`),
        typically ending with a :class:`~stellarai.ops.Resample` onto the data.
    name : str, optional
        Name of the astropy model.

    Returns
    -------
    OperatorModel
        An instance whose parameters are the chain's free scalars (the names of
        :attr:`Operator.parameters`; per-order vectors give one parameter per order,
        ``<name>_o<row>``), with units (velocities in km/s, others dimensionless) and
        bounds; its input ``x`` is wavelength (Angstrom, or any spectral unit; plain
        numbers are Angstrom), its output the model flux in the chain's flux unit.

    Raises
    ------
    OperatorError
        If the chain does not start with a source.

    Notes
    -----
    ``evaluate(x, *params)`` runs the chain (fixed parameters at their current values)
    under ``torch.no_grad()``. When ``x`` holds pixels of the chain's output (for a chain
    ending in ``Resample``, the data's pixel wavelengths, any subset, any order) the flux
    at those pixels is returned exactly; other wavelengths are interpolated linearly
    within the output (each from the first order that contains it). ``fit_deriv`` is the
    exact Jacobian from reverse-mode autograd (one backward pass per free parameter).
    Fitted values go back into the chain with ``model.sync_operator()``. The wrapped
    operator is shared by all copies of the model (astropy fitters copy models).

    Examples
    --------
    >>> import numpy as np, astropy.units as u, torch
    >>> from astropy.modeling.fitting import TRFLSQFitter
    >>> from stellarai.ops import Doppler, Template
    >>> wl = torch.linspace(5000, 5010, 4001, dtype=torch.float64)
    >>> line = 1 - 0.6 * torch.exp(-0.5 * ((wl - 5005) / 0.05) ** 2)
    >>> model = (Template((wl, line)) | Doppler(rv=0 * u.km / u.s)).as_model()
    >>> model.param_names, model.rv.unit
    (('rv',), Unit("km / s"))
    >>> x = np.linspace(5002, 5008, 300) * u.AA
    >>> data = Template((wl, line)) | Doppler(rv=12 * u.km / u.s)
    >>> y = data.as_model()(x)
    >>> fitted = TRFLSQFitter()(model, x, y)
    >>> round(float(fitted.rv.quantity.to_value(u.km / u.s)), 4)
    12.0
    """
    if not operator.is_source:
        raise OperatorError(
            f"as_model: {operator._name()} does not start with a source; as_model needs a "
            "chain that makes a spectrum from wavelength alone, e.g. Template(...) | ..."
        )
    elements = tuple(e for e in operator._elements() if not e.spec.fixed)
    attributes: dict[str, Any] = {
        "operator": operator,
        "elements": elements,
        "_mapping_cache": {},
        "__doc__": f"astropy model of {operator!r}",
        "fit_deriv": staticmethod(lambda x, *params: model_class._jacobian(x, *params)),
    }
    unit = operator.flux_unit
    if unit is not None:
        attributes["return_units"] = {"y": unit}
    defaults = {}
    for element in elements:
        values = element.leaf.tensors[element.local].detach().cpu().numpy()
        value = float(values if element.index is None else values[element.index])
        has_unit = element.spec.unit != u.dimensionless_unscaled
        low, high = element.spec.bounds
        attributes[element.name] = AstropyParameter(
            default=value, unit=element.spec.unit if has_unit else None,
            bounds=(None if not np.isfinite(low) else low, None if not np.isfinite(high)
                    else high),
            description=element.spec.description)
        defaults[element.name] = value * element.spec.unit if has_unit else value
    model_class = type("OperatorModel", (OperatorModel,), attributes)
    return model_class(**defaults, name=name)
