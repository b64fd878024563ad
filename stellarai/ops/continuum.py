r"""Multiplicative continuum operators: a Chebyshev polynomial per order, a blaze template."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import astropy.units as u
import numpy as np
import torch
from torch import Tensor

from ..spectra.orders import OrderBatch
from .base import Multiplicative, OperatorError, ParameterError, row_ranges
from .template import TabulatedFactor, muler_entry, read_muler_template

__all__ = ["MULER_BLAZE_TEMPLATES", "BlazeTemplate", "ChebyshevContinuum"]

MULER_BLAZE_TEMPLATES = {
    "hpf": ("HPF_blaze_templates.csv", "wavelength_Angstrom",
            {"goldilocks": "blaze_Goldilocks", "2021": "blaze_2021"}),
}
"""Blaze templates shipped with muler: instrument -> (file, wavelength column, kinds).

``hpf``: ``HPF_blaze_templates.csv`` tabulates two blaze estimates, ``blaze_Goldilocks``
(the one muler's ``HPFSpectrum.deblaze()`` divides by) and ``blaze_2021`` (a 2021 median),
at the same 28 x 2048 HPF pixel wavelengths as the telluric template (vacuum Angstrom).
Both are about 1 at an order's centre, fall towards its ends and are 0 on a few
pixels at the ends of some orders.
"""


class ChebyshevContinuum(Multiplicative):
    r"""Multiply by a Chebyshev polynomial in wavelength, one per row (échelle order).

    Parameters
    ----------
    degree : int
        Polynomial degree (>= 0); the parameters are ``c0 ... c<degree>``.
    n_orders : int
        1 (default): one polynomial for every row, scalar parameters ``c0, c1, ...``;
        ``n``: one per row, each parameter a vector of ``n`` values (table rows
        ``c1_o0, c1_o1, ...``) and the input must have ``n`` rows.
    coefficients : array-like, optional
        Initial coefficients, shape ``(degree + 1,)`` or ``(n_orders, degree + 1)``;
        default ``c0 = 1`` and the others 0 (a flat continuum of 1).
    domain : Quantity or array-like, optional
        Wavelength range mapped to x in [-1, 1]: shape ``(2,)`` or ``(n_orders, 2)``
        (Angstrom if plain numbers). Default: each row's first and last wavelength of the
        grid the operator runs on. :meth:`from_data` sets it to each order's pixel range,
        so the polynomial is the same on a model grid and on the data.
    fixed, bounds, prior : optional
        Overrides of the parameter records, as for :class:`~stellarai.ops.Doppler`.

    Notes
    -----
    :math:`C(\lambda) = \sum_k c_k T_k(x)`, :math:`x = 2(\lambda - \lambda_a)/(\lambda_b -
    \lambda_a) - 1`, :math:`T_k` the Chebyshev polynomials of the first kind
    (:math:`T_0 = 1`, :math:`T_1 = x`, :math:`T_{k+1} = 2xT_k - T_{k-1}`). The
    coefficients are unbounded and free by default.

    Examples
    --------
    >>> import torch
    >>> op = ChebyshevContinuum(degree=1, coefficients=[1.0, 0.1])
    >>> op
    ChebyshevContinuum(c0=1, c1=0.1)
    >>> wavelength = torch.tensor([10_000.0, 10_050.0, 10_100.0], dtype=torch.float64)
    >>> op(wavelength, torch.ones(3, dtype=torch.float64))[1].tolist()
    [0.9, 1.0, 1.1]
    """

    def __init__(self, degree: int = 2, n_orders: int = 1, *, coefficients: Any = None,
                 domain: Any = None,
                 fixed: Iterable[str] | Mapping[str, bool] | None = None,
                 bounds: Mapping[str, Any] | None = None,
                 prior: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if int(degree) != degree or degree < 0:
            raise ParameterError(f"ChebyshevContinuum: degree must be an integer >= 0, got "
                                 f"{degree!r}")
        if int(n_orders) != n_orders or n_orders < 1:
            raise ParameterError(f"ChebyshevContinuum: n_orders must be an integer >= 1, got "
                                 f"{n_orders!r}")
        self.degree, self.n_orders = int(degree), int(n_orders)
        shape = () if self.n_orders == 1 else (self.n_orders,)
        if coefficients is None:
            coefficients = np.zeros(shape + (self.degree + 1,))
            coefficients[..., 0] = 1.0
        coefficients = np.asarray(coefficients, dtype=np.float64)
        if coefficients.shape[-1:] != (self.degree + 1,) or coefficients.ndim > 2 or (
                coefficients.ndim == 2 and coefficients.shape[0] != self.n_orders):
            raise ParameterError(
                f"ChebyshevContinuum: coefficients must have shape ({self.degree + 1},) or "
                f"({self.n_orders}, {self.degree + 1}), got {coefficients.shape}"
            )
        coefficients = np.broadcast_to(coefficients, shape + (self.degree + 1,))
        for k in range(self.degree + 1):
            self._add_parameter(f"c{k}", coefficients[..., k], unit=u.dimensionless_unscaled,
                                shape=shape, description=f"Chebyshev coefficient of T_{k}")
        self._finish_parameters(fixed, bounds, prior)
        self.domain: Tensor | None
        if domain is None:
            self.register_buffer("domain", None)
        else:
            values = (domain.to_value(u.AA, equivalencies=u.spectral())
                      if isinstance(domain, u.Quantity) else np.asarray(domain, np.float64))
            values = torch.as_tensor(np.asarray(values, dtype=np.float64))
            if values.shape not in ((2,), (self.n_orders, 2)) or not bool(
                    (values[..., 1] > values[..., 0]).all()):
                raise ParameterError(
                    f"ChebyshevContinuum: domain must have shape (2,) or ({self.n_orders}, 2) "
                    f"with lower < upper, got {tuple(values.shape)}"
                )
            self.register_buffer("domain", values)

    @classmethod
    def from_data(cls, orders: Any, degree: int = 2, **kwargs: Any) -> ChebyshevContinuum:
        """One polynomial per order of ``orders``, with x = ±1 at each order's end pixels.

        Examples
        --------
        >>> from stellarai.demo import demo_spectrum_list
        >>> op = ChebyshevContinuum.from_data(demo_spectrum_list(), degree=1)
        >>> op.param_names, tuple(op.get("c0").shape)
        (('c0', 'c1'), (3,))
        """
        batch = OrderBatch.from_spectra(orders)
        ranges, _ = row_ranges(batch)
        n_orders = batch.n_orders
        if n_orders == 1:
            ranges = ranges[0]
        return cls(degree=degree, n_orders=n_orders, domain=ranges.numpy(), **kwargs)

    def factor(self, wavelength: Tensor) -> Tensor:
        """The polynomial at ``wavelength`` (Angstrom)."""
        if self.n_orders > 1 and (wavelength.ndim < 2 or wavelength.shape[-2] != self.n_orders):
            raise OperatorError(
                f"ChebyshevContinuum: it has {self.n_orders} rows of coefficients but the "
                f"grid has shape {tuple(wavelength.shape)}; give one row per order"
            )
        if self.domain is None:
            low, high = wavelength[..., :1], wavelength[..., -1:]
        else:
            low, high = self.domain[..., :1], self.domain[..., 1:]
        x = 2 * (wavelength - low) / (high - low) - 1
        coefficient = [self.tensors[f"c{k}"] for k in range(self.degree + 1)]
        if self.n_orders > 1:
            coefficient = [c[:, None] for c in coefficient]
        previous, current = torch.ones_like(x), x
        total = coefficient[0] * previous
        for k in range(1, self.degree + 1):
            total = total + coefficient[k] * current
            previous, current = current, 2 * x * current - previous
        return total


class BlazeTemplate(TabulatedFactor):
    """Multiply by a tabulated blaze function (no parameters).

    Parameters
    ----------
    wavelength, blaze : array-like
        The blaze function against vacuum wavelength in Angstrom (1-D, increasing).

    Notes
    -----
    Interpolated linearly (across the gaps between orders too) and continued with its end
    values; the data's orders must lie within the table's segments
    (:meth:`~stellarai.ops.TabulatedFactor.check_coverage`). Combine with a
    :class:`ChebyshevContinuum` for the per-order scale.

    Examples
    --------
    >>> blaze = BlazeTemplate.from_muler("hpf")
    >>> blaze
    BlazeTemplate(<57344 px, 8079.0-12785.8 Angstrom>)
    >>> len(blaze.segments)
    28
    """

    def __init__(self, wavelength: Any, blaze: Any) -> None:
        super().__init__(wavelength, blaze, label="blaze template")

    @classmethod
    def from_muler(cls, instrument: str = "hpf", kind: str = "goldilocks") -> BlazeTemplate:
        """The blaze template muler ships (see :data:`MULER_BLAZE_TEMPLATES`).

        ``kind`` is ``"goldilocks"`` (default, the one muler's ``deblaze`` uses) or
        ``"2021"``.
        """
        filename, wl_column, kinds = muler_entry(MULER_BLAZE_TEMPLATES, instrument,
                                                 "BlazeTemplate.from_muler")
        if str(kind).lower() not in kinds:
            raise OperatorError(
                f"BlazeTemplate.from_muler: kind must be one of {sorted(kinds)}, got {kind!r}"
            )
        wavelength, blaze = read_muler_template(filename, [wl_column, kinds[str(kind).lower()]])
        return cls(wavelength, blaze)

    def factor(self, wavelength: Tensor) -> Tensor:
        """The blaze at ``wavelength`` (Angstrom)."""
        return self.lookup(wavelength)
