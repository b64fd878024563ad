r"""Telluric transmission: a template raised to a strength, in the observatory frame."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import astropy.units as u
import torch
from torch import Tensor

from ..spectra.orders import OrderBatch
from ..spectra.spectral_axis import Medium
from .base import OperatorError, _QuantityAttribute
from .doppler import doppler_factor
from .template import TabulatedFactor, muler_entry, read_muler_template

__all__ = ["MULER_TELLURIC_TEMPLATES", "Telluric"]

MULER_TELLURIC_TEMPLATES = {
    "hpf": ("telfit_HPFtemplate_temp286_hum050.csv", "wavelength_A", "transmission"),
}
"""Telluric templates shipped with muler: instrument -> (file, wavelength column, values).

``hpf``: a TelFit transmission (286 K, 50% humidity, as the file name says) tabulated at
the 28 x 2048 pixel wavelengths of HPF's Goldilocks pipeline (identical to its
``Sci Wavl`` extension: vacuum Angstrom, 8079-12786 Angstrom, 28 segments with gaps
between the orders), already at about HPF's resolution (the narrowest lines span 2.4-2.7
pixels FWHM). It is the template muler's ``HPFSpectrum.mask_tellurics`` uses.
"""

STRENGTH_BOUNDS = (0.0, 10.0)
TELLURIC_RV_BOUNDS_KMS = (-50.0, 50.0)
_TINY = 1e-300


class Telluric(TabulatedFactor):
    r"""Multiply by a telluric transmission template raised to a strength.

    Parameters
    ----------
    wavelength, transmission : array-like
        The template: vacuum Angstrom (strictly increasing) and transmission in [0, 1]
        (values slightly above 1, as templates have, are accepted).
    strength : float
        Exponent applied to the transmission (airmass / water-column scale), bounds
        [0, 10], free by default.
    rv : Quantity or float
        Velocity offset of the template (a velocity, or km/s), bounds [-50, 50] km/s,
        fixed by default (``fixed={"rv": False}`` to fit it).
    fixed, bounds, prior : optional
        Overrides of the parameter records, as for :class:`~stellarai.ops.Doppler`.

    Notes
    -----
    :math:`T(\lambda)^{s}` with :math:`T` linearly interpolated at
    :math:`\lambda/\sqrt{(1+\beta)/(1-\beta)}` (:math:`\beta = rv/c`); beyond the
    template's ends the end values continue (only model-grid margins go there: the data
    must be covered, which :meth:`check_coverage` enforces when the operator meets data).
    Zero transmission is taken as 1e-300 so that the power stays defined.

    Telluric lines stay in the observatory frame: in
    ``(star | Doppler(rv=...)) * telluric`` the product is evaluated on the shifted stellar
    grid, so only the star moves. Keep the data's wavelengths in the observatory frame
    (put the barycentric correction into the star's ``Doppler``).

    Examples
    --------
    >>> import torch
    >>> tel = Telluric.from_muler("hpf")
    >>> tel
    Telluric(<57344 px, 8079.0-12785.8 Angstrom>, strength=1, rv=0 km / s (fixed))
    >>> wavelength = torch.linspace(10_820.7, 10_959.7, 5, dtype=torch.float64)
    >>> _, flux = tel(wavelength, torch.ones(5, dtype=torch.float64))
    >>> bool(((flux > 0) & (flux <= 1.0 + 1e-9)).all())
    True
    """

    strength = _QuantityAttribute("strength", "Exponent of the transmission; settable.")
    rv = _QuantityAttribute("rv", "Velocity offset of the template (Quantity); settable.")

    def __init__(self, wavelength: Any, transmission: Any, *, strength: Any = 1.0,
                 rv: Any = 0.0, fixed: Iterable[str] | Mapping[str, bool] | None = None,
                 bounds: Mapping[str, Any] | None = None,
                 prior: Mapping[str, Any] | None = None) -> None:
        super().__init__(wavelength, transmission, label="transmission template")
        if bool((self.table_values < 0).any()):
            raise OperatorError("Telluric: the transmission template has negative values")
        self._add_parameter("strength", strength, unit=u.dimensionless_unscaled,
                            bounds=STRENGTH_BOUNDS,
                            description="exponent of the transmission (airmass scale)")
        self._add_parameter("rv", rv, unit=u.km / u.s, bounds=TELLURIC_RV_BOUNDS_KMS,
                            fixed=True, description="velocity offset of the template")
        self._finish_parameters(fixed, bounds, prior)

    @classmethod
    def from_muler(cls, instrument: str = "hpf", **kwargs: Any) -> Telluric:
        """The telluric template muler ships for ``instrument`` (see
        :data:`MULER_TELLURIC_TEMPLATES`; only ``"hpf"`` so far).

        Keywords are passed to the constructor (``strength``, ``rv``, ``fixed``, ...).
        """
        filename, wl_column, value_column = muler_entry(
            MULER_TELLURIC_TEMPLATES, instrument, "Telluric.from_muler",
            "; use Telluric.from_spectrum(...) for others")
        wavelength, transmission = read_muler_template(filename, [wl_column, value_column])
        return cls(wavelength, transmission, **kwargs)

    @classmethod
    def from_spectrum(cls, spectrum: Any, *, medium: Medium = "vacuum",
                      **kwargs: Any) -> Telluric:
        """A telluric operator from any transmission spectrum.

        Parameters
        ----------
        spectrum : Spectrum, SpectrumList or tuple
            Transmission against wavelength (dimensionless flux); several non-overlapping
            orders are joined. Masked pixels are dropped.
        medium : {"vacuum", "air"}
            Medium of its wavelengths (converted to vacuum).
        **kwargs
            Passed to the constructor.
        """
        batch = OrderBatch.from_spectra(spectrum, medium=medium)
        rows = [(w[~m], f[~m]) for _, w, f, _, m in batch.iter_orders()]
        rows.sort(key=lambda row: float(row[0][0]))
        for (w0, _), (w1, _) in zip(rows, rows[1:], strict=False):
            if float(w1[0]) <= float(w0[-1]):
                raise OperatorError(
                    "Telluric.from_spectrum: the orders of the transmission spectrum overlap; "
                    "give non-overlapping orders or one spectrum"
                )
        wavelength = torch.cat([w for w, _ in rows]).numpy()
        transmission = torch.cat([f for _, f in rows]).numpy()
        return cls(wavelength, transmission, **kwargs)

    def _shift(self) -> Tensor:
        factor = doppler_factor(self.tensors["rv"])
        return factor[..., None] if factor.ndim else factor

    def factor(self, wavelength: Tensor) -> Tensor:
        """Transmission ** strength at ``wavelength`` (Angstrom, observatory frame).

        A ``strength`` (or ``rv``) with leading dimensions (one value per row, or per
        spectrum as ``(spectra, 1)``) broadcasts against the leading dimensions of
        ``wavelength``.
        """
        transmission = self.lookup(wavelength)
        strength = self.tensors["strength"]
        if strength.ndim:
            strength = strength[..., None]
        return torch.exp(strength * torch.log(transmission.clamp_min(_TINY)))
