r"""Rotational and instrumental broadening operators.

Thin operators around the functional kernels of :mod:`stellarai.ops.kernels`: they hold
the physical parameters (with units, bounds and priors) and require a wavelength grid
uniform in :math:`\ln\lambda` (from :func:`~stellarai.ops.model_grid_for` or
:func:`~stellarai.ops.kernels.uniform_log_grid`); any other grid raises
:class:`~stellarai.ops.OperatorError` naming the operator.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import astropy.units as u
import numpy as np
import torch
from torch import Tensor

from ..errors import LabelError, SpectrumInputError
from ..spectra.orders import OrderBatch
from .base import (
    C_KMS,
    Operator,
    OperatorError,
    ParameterError,
    _QuantityAttribute,
    uniform_log_step,
)
from .kernels import (
    gaussian_broaden,
    log_step,
    rotational_broaden,
    tabulated_broaden,
)

__all__ = ["Instrument", "Rotation"]

VSINI_BOUNDS_KMS = (0.0, 500.0)
"""Default bounds of vsini, km/s."""
RESOLVING_POWER_BOUNDS = (100.0, 1.0e7)
"""Allowed resolving powers (open interval), as in :mod:`stellarai.ops.kernels`."""
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
_GAUSSIAN_REACH_SIGMA = 7.0  # the kernels truncate Gaussians at 7 sigma ...
_EXTRA_TAPS = 3.0  # ... and their cubic interpolation kernel reaches up to 3 more pixels


def _grid_step(operator: str, wavelength: Tensor) -> float:
    """The log step of ``wavelength``, or an error naming ``operator``."""
    step = uniform_log_step(wavelength)
    if step is not None:
        return step
    try:
        return log_step(wavelength.detach())
    except (SpectrumInputError, ValueError) as exc:
        raise OperatorError(
            f"{operator} needs a wavelength grid uniform in ln(wavelength), e.g. from "
            f"stellarai.ops.model_grid_for(...): {exc}"
        ) from exc


def _run_kernel(operator: str, kernel: Any, *args: Any) -> Tensor:
    try:
        return kernel(*args)
    except LabelError as exc:
        raise ParameterError(f"{operator}: {exc}") from exc
    except SpectrumInputError as exc:
        raise OperatorError(f"{operator}: {exc}") from exc


class Rotation(Operator):
    r"""Rotational broadening with linear limb darkening (Gray's profile).

    Parameters
    ----------
    vsini : Quantity or float
        Projected equatorial velocity (a velocity, or km/s), bounds [0, 500] km/s; one
        value or one per row. Free by default.
    epsilon : float
        Linear limb-darkening coefficient in [0, 1] (default 0.6). Fixed by default.
    fixed, bounds, prior : optional
        Overrides of the parameter records, as for :class:`~stellarai.ops.Doppler`.

    Raises
    ------
    ParameterError
        For ``vsini < 0`` (or beyond its bounds), ``epsilon`` outside [0, 1], or a value
        that is not a velocity.

    Notes
    -----
    Gray (The Observation and Analysis of Stellar Photospheres, eq. 18.14), with
    :math:`x = v/v\sin i`:
    :math:`G(x) = [2(1-\epsilon)\sqrt{1-x^2} + \tfrac{\pi\epsilon}{2}(1-x^2)] /
    [\pi\,v\sin i\,(1-\epsilon/3)]` for :math:`|x| < 1`, convolved on a grid uniform in
    :math:`\ln\lambda` by :func:`stellarai.ops.kernels.rotational_broaden`, which conserves
    equivalent widths and is differentiable in ``vsini`` and ``epsilon``. The output at a
    pixel depends on the input within ``vsini`` (plus two pixels): :meth:`reach`.

    Examples
    --------
    >>> import astropy.units as u, torch
    >>> from stellarai.ops.kernels import uniform_log_grid
    >>> wave = uniform_log_grid(6000.0, 6010.0, resolving_power=100_000)
    >>> flux = 1 - 0.5 * torch.exp(-0.5 * ((wave - 6005.0) / 0.02) ** 2)
    >>> op = Rotation(vsini=20 * u.km / u.s)
    >>> op
    Rotation(vsini=20 km / s, epsilon=0.6 (fixed))
    >>> _, broad = op(wave, flux)
    >>> round(broad.min().item(), 3)
    0.957
    >>> Rotation(vsini=-1 * u.km / u.s)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    stellarai.ops.base.ParameterError: Rotation: parameter 'vsini' = -1 km / s is outside ...
    """

    is_kernel = True
    vsini = _QuantityAttribute("vsini", "Projected rotational velocity (Quantity); settable.")
    epsilon = _QuantityAttribute("epsilon", "Linear limb-darkening coefficient; settable.")

    def __init__(self, vsini: Any = 0.0, epsilon: Any = 0.6, *,
                 fixed: Iterable[str] | Mapping[str, bool] | None = None,
                 bounds: Mapping[str, Any] | None = None,
                 prior: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self._add_parameter("vsini", vsini, unit=u.km / u.s, bounds=VSINI_BOUNDS_KMS,
                            description="projected rotational velocity")
        self._add_parameter("epsilon", epsilon, unit=u.dimensionless_unscaled,
                            bounds=(0.0, 1.0), fixed=True,
                            description="linear limb-darkening coefficient")
        self._finish_parameters(fixed, bounds, prior)

    def forward(self, wavelength: Tensor | None, flux: Tensor | None) -> tuple[Tensor, Tensor]:
        wavelength, flux = self._require_input(wavelength, flux)
        step = _grid_step("Rotation", wavelength)
        out = _run_kernel("Rotation", rotational_broaden, flux, step, self.tensors["vsini"],
                          self.tensors["epsilon"])
        return wavelength, out

    def reach(self, log_step: float | None) -> float:
        vsini = float(self.tensors["vsini"].detach().max())
        return vsini + _EXTRA_TAPS * C_KMS * (log_step or 0.0) if vsini > 0 else 0.0


class Instrument(Operator):
    r"""The instrumental profile: a Gaussian of given resolving power or FWHM, or a table.

    Give exactly one of ``resolving_power``, ``fwhm`` and ``kernel``.

    Parameters
    ----------
    resolving_power : float or array-like, optional
        :math:`R = \lambda/\Delta\lambda_{\rm FWHM}` in the open interval (100, 1e7); one
        value or one per row (échelle order). The Gaussian has FWHM :math:`c/R` in
        velocity (gollum's and muler's convention, FWHM = :math:`\lambda/R`). Fixed by
        default (``fixed={"resolving_power": False}`` to fit it).
    fwhm : Quantity or float, optional
        FWHM of the Gaussian as a velocity (or km/s), instead of ``resolving_power``.
    kernel : tuple, optional
        A tabulated line-spread function ``(velocity, profile)``: velocities as a Quantity
        (or km/s), shape ``(k,)``, increasing and covering 0; profile values of shape
        ``(k,)`` or ``(rows, k)`` (any normalization). No parameters.
    fixed, bounds, prior : optional
        Overrides of the parameter records, as for :class:`~stellarai.ops.Doppler`.

    Raises
    ------
    ParameterError
        For ``R`` outside (100, 1e7), a FWHM outside the equivalent range, or a value with
        the wrong unit.
    OperatorError
        When none or more than one of the three ways is given.

    Notes
    -----
    Convolution on a grid uniform in :math:`\ln\lambda` by
    :func:`~stellarai.ops.kernels.gaussian_broaden` (:math:`\sigma_v =
    \mathrm{FWHM}/2\sqrt{2\ln 2}`, truncated at :math:`7\sigma`) or
    :func:`~stellarai.ops.kernels.tabulated_broaden`; equivalent widths are conserved and
    the result is differentiable in the FWHM. :meth:`from_data` reads ``R`` per order from
    the data (muler's ``instrumental_resolution``).

    Examples
    --------
    >>> import astropy.units as u
    >>> Instrument(resolving_power=55_000)
    Instrument(resolving_power=55000 (fixed))
    >>> Instrument(fwhm=5.45 * u.km / u.s)
    Instrument(fwhm=5.45 km / s (fixed))
    >>> Instrument(resolving_power=50)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    stellarai.ops.base.ParameterError: Instrument: ... = 50 is outside its bounds (100, 1e+07)
    """

    is_kernel = True
    resolving_power = _QuantityAttribute("resolving_power", "Resolving power; settable.")
    fwhm = _QuantityAttribute("fwhm", "FWHM of the Gaussian profile (Quantity); settable.")

    def __init__(self, resolving_power: Any = None, *, fwhm: Any = None, kernel: Any = None,
                 fixed: Iterable[str] | Mapping[str, bool] | None = None,
                 bounds: Mapping[str, Any] | None = None,
                 prior: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        given = [n for n, v in (("resolving_power", resolving_power), ("fwhm", fwhm),
                                ("kernel", kernel)) if v is not None]
        if len(given) != 1:
            raise OperatorError(
                "Instrument: give exactly one of resolving_power, fwhm and kernel, got "
                f"{given or 'none'}"
            )
        self._mode = given[0]
        if self._mode == "resolving_power":
            self._add_parameter("resolving_power", resolving_power,
                                unit=u.dimensionless_unscaled, bounds=RESOLVING_POWER_BOUNDS,
                                open_bounds=True, fixed=True,
                                description="resolving power lambda / FWHM")
        elif self._mode == "fwhm":
            low, high = RESOLVING_POWER_BOUNDS
            self._add_parameter("fwhm", fwhm, unit=u.km / u.s, bounds=(C_KMS / high, C_KMS / low),
                                open_bounds=True, fixed=True,
                                description="FWHM of the Gaussian line-spread function")
        else:
            self._set_table(kernel)
        self._finish_parameters(fixed, bounds, prior)

    def _set_table(self, kernel: Any) -> None:
        try:
            velocity, profile = kernel
        except (TypeError, ValueError):
            raise OperatorError(
                f"Instrument: kernel must be a pair (velocity, profile), got {type(kernel)}"
            ) from None
        if isinstance(velocity, u.Quantity):
            try:
                velocity = velocity.to_value(u.km / u.s)
            except u.UnitConversionError:
                raise ParameterError(
                    f"Instrument: the kernel's velocities must be velocities, got unit "
                    f"{velocity.unit}"
                ) from None
        self.register_buffer("kernel_velocity",
                             torch.as_tensor(np.asarray(velocity, dtype=np.float64)))
        self.register_buffer("kernel_profile",
                             torch.as_tensor(np.asarray(profile, dtype=np.float64)))

    @classmethod
    def from_data(cls, orders: Any, **kwargs: Any) -> Instrument:
        """An instrument with the resolving power each order carries.

        Parameters
        ----------
        orders : OrderBatch, Spectrum or SpectrumList
            Data whose orders carry an instrumental resolution (muler's
            ``instrumental_resolution``, or ``meta["instrumental_resolution"]``).
        **kwargs
            ``fixed``, ``bounds``, ``prior``.

        Returns
        -------
        Instrument
            One ``resolving_power`` when all orders agree, else one per order.

        Raises
        ------
        OperatorError
            If an order carries no resolution.

        Examples
        --------
        >>> from stellarai.demo import demo_spectrum_list
        >>> Instrument.from_data(demo_spectrum_list())
        Instrument(resolving_power=50000 (fixed))
        """
        batch = OrderBatch.from_spectra(orders)
        values = batch.resolution
        missing = [i for i, r in enumerate(values) if r is None]
        if missing:
            raise OperatorError(
                f"Instrument.from_data: order row(s) {missing} carry no instrumental "
                "resolution (muler's instrumental_resolution or meta['instrumental_resolution'])"
                "; pass Instrument(resolving_power=...)"
            )
        unique = set(values)
        power = values[0] if len(unique) == 1 else np.asarray(values, dtype=np.float64)
        return cls(resolving_power=power, **kwargs)

    def fwhm_velocity(self) -> Tensor:
        """FWHM of the Gaussian profile in km/s (tensor, differentiable)."""
        if self._mode == "resolving_power":
            return C_KMS / self.tensors["resolving_power"]
        if self._mode == "fwhm":
            return self.tensors["fwhm"]
        raise OperatorError("Instrument: a tabulated kernel has no single FWHM")

    def forward(self, wavelength: Tensor | None, flux: Tensor | None) -> tuple[Tensor, Tensor]:
        wavelength, flux = self._require_input(wavelength, flux)
        step = _grid_step("Instrument", wavelength)
        if self._mode == "kernel":
            out = _run_kernel("Instrument", tabulated_broaden, flux, step,
                              self.kernel_velocity, self.kernel_profile)
        else:
            out = _run_kernel("Instrument", gaussian_broaden, flux, step,
                              self.fwhm_velocity())
        return wavelength, out

    def reach(self, log_step: float | None) -> float:
        pixel = C_KMS * (log_step or 0.0)
        if self._mode == "kernel":
            return float(self.kernel_velocity.abs().max()) + pixel
        sigma = float(self.fwhm_velocity().detach().max()) / FWHM_PER_SIGMA
        return _GAUSSIAN_REACH_SIGMA * sigma + _EXTRA_TAPS * pixel

    def describe(self) -> str:
        if self._mode == "kernel":
            v = self.kernel_velocity
            return (f"Instrument(kernel=<{v.numel()} values, {float(v[0]):g} to "
                    f"{float(v[-1]):g} km/s>)")
        return super().describe()
