"""The boundary container: échelle orders as padded, batched torch tensors.

Every spectrum that enters stellarai — a specutils `~specutils.Spectrum` (or the legacy
``Spectrum1D`` and its muler/gollum subclasses), a `~specutils.SpectrumList`, a muler
``EchelleSpectrumList``, a `~specutils.SpectrumCollection` or plain Quantity arrays — is
turned into one :class:`OrderBatch`, and every spectrum that leaves is built from one.
Units are converted once, here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import astropy.units as u
import numpy as np
import torch
from astropy.nddata import (
    InverseVariance,
    NDUncertainty,
    StdDevUncertainty,
    VarianceUncertainty,
)
from specutils import Spectrum, SpectrumCollection, SpectrumList

from ..errors import SpectrumInputError, SpectrumTypeError
from .spectral_axis import (
    Medium,
    check_medium,
    from_vacuum_angstrom,
    is_wavelength_unit,
    to_vacuum_angstrom,
)
from .validate import check_strictly_monotonic, native_float_array, warn_masked_nonfinite

__all__ = ["OrderBatch", "OrderRecord", "as_order_batch"]

_UNCERTAINTY_TYPES = (StdDevUncertainty, VarianceUncertainty, InverseVariance)


@dataclass(frozen=True, eq=False)
class OrderRecord:
    """What the trip back to specutils needs to know about one order.

    The original arrays are kept by reference (not copied): when the batch's tensors still
    hold exactly what was made from them, the original values are handed back, so a round
    trip through :class:`OrderBatch` changes no value, not even in the last bit.
    """

    spectral_axis: u.Quantity
    flux: np.ndarray
    flux_unit: u.UnitBase
    uncertainty: np.ndarray | None
    uncertainty_type: type[NDUncertainty] | None
    mask: np.ndarray | None
    medium: Medium
    reversed: bool
    meta: dict[str, Any] = field(default_factory=dict)
    resolution: float | None = None

    @property
    def npix(self) -> int:
        """Number of pixels of the order."""
        return int(self.flux.size)


@dataclass(frozen=True)
class _CanonicalOrder:
    wavelength: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    n_nonfinite_flux: int = 0
    n_nonfinite_uncertainty: int = 0


def _inverse_variance(uncertainty: np.ndarray, kind: type[NDUncertainty]) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind is StdDevUncertainty:
            return 1.0 / uncertainty**2
        if kind is VarianceUncertainty:
            return 1.0 / uncertainty
    return uncertainty.copy()


def _uncertainty_from_ivar(ivar: np.ndarray, kind: type[NDUncertainty]) -> np.ndarray:
    with np.errstate(divide="ignore"):
        if kind is StdDevUncertainty:
            return 1.0 / np.sqrt(ivar)
        if kind is VarianceUncertainty:
            return 1.0 / ivar
    return ivar


def _check_uncertainty_values(uncertainty: np.ndarray, kind: type[NDUncertainty],
                              usable: np.ndarray, name: str) -> None:
    """Refuse zero or negative uncertainties on pixels that are not masked."""
    if kind is InverseVariance:
        bad = usable & ((uncertainty < 0) | np.isinf(uncertainty))
        what = "negative or infinite inverse variance"
    else:
        bad = usable & (uncertainty <= 0)
        what = "zero or negative uncertainty"
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise SpectrumInputError(
            f"{name}: {int(bad.sum())} unmasked pixel(s) have {what} (first at pixel {i}: "
            f"{uncertainty[i]!r}); uncertainties must be positive — mask such pixels "
            "(mask=True) if they carry no data"
        )


def _canonical(record: OrderRecord, name: str) -> _CanonicalOrder:
    """Convert one order to vacuum Angstrom, float64 flux, inverse variance and mask."""
    wavelength = to_vacuum_angstrom(record.spectral_axis, record.medium,
                                    name=f"{name} spectral axis")
    flux = record.flux.astype(np.float64)
    bad_flux = ~np.isfinite(flux)
    mask = bad_flux.copy() if record.mask is None else (record.mask | bad_flux)
    n_bad_unc = 0
    if record.uncertainty is None:
        ivar = np.ones_like(flux)
    else:
        uncertainty = record.uncertainty.astype(np.float64)
        bad_unc = ~np.isfinite(uncertainty)
        n_bad_unc = int(np.count_nonzero(bad_unc & ~mask))
        mask |= bad_unc
        _check_uncertainty_values(uncertainty, record.uncertainty_type, ~mask, name)
        ivar = _inverse_variance(uncertainty, record.uncertainty_type)
    flux = np.where(bad_flux, 0.0, flux)
    ivar = np.where(mask, 0.0, ivar)
    if record.reversed:
        wavelength, flux, ivar, mask = (a[::-1] for a in (wavelength, flux, ivar, mask))
    return _CanonicalOrder(wavelength, flux, ivar, mask,
                           int(np.count_nonzero(bad_flux)), n_bad_unc)


def _record(spectral_axis: u.Quantity, flux: Any, uncertainty: Any, mask: Any,
            medium: Medium, meta: dict[str, Any] | None, resolution: float | None,
            name: str) -> OrderRecord:
    """Validate the arrays of one order and keep them for the trip back."""
    if not isinstance(spectral_axis, u.Quantity):
        raise SpectrumInputError(
            f"{name} spectral axis has no unit: pass a Quantity such as wavelength * u.AA"
        )
    axis_values = native_float_array(spectral_axis.value, f"{name} spectral axis")
    descending = check_strictly_monotonic(axis_values, f"{name} spectral axis")
    if not is_wavelength_unit(spectral_axis.unit):  # frequency-like axes run the other way
        descending = not descending
    flux_unit = getattr(flux, "unit", None) or u.dimensionless_unscaled
    flux_values = native_float_array(getattr(flux, "value", flux), f"{name} flux")
    if flux_values.shape != axis_values.shape:
        raise SpectrumInputError(
            f"{name}: flux has shape {flux_values.shape} but the spectral axis has shape "
            f"{axis_values.shape}; they must match"
        )
    unc_values, unc_type = _split_uncertainty(uncertainty, flux_unit, flux_values.shape, name)
    mask_values = None
    if mask is not None:
        mask_values = np.asarray(mask)
        if mask_values.shape != flux_values.shape:
            raise SpectrumInputError(
                f"{name}: mask has shape {mask_values.shape} but flux has shape "
                f"{flux_values.shape}; they must match"
            )
        mask_values = mask_values.astype(bool, copy=False)
    return OrderRecord(
        spectral_axis=u.Quantity(axis_values, spectral_axis.unit, copy=False),
        flux=flux_values, flux_unit=flux_unit, uncertainty=unc_values,
        uncertainty_type=unc_type, mask=mask_values, medium=medium, reversed=descending,
        meta=dict(meta or {}), resolution=None if resolution is None else float(resolution),
    )


def _split_uncertainty(uncertainty: Any, flux_unit: u.UnitBase, shape: tuple[int, ...],
                       name: str) -> tuple[np.ndarray | None, type[NDUncertainty] | None]:
    """Return (values, type) of an uncertainty given as NDUncertainty, Quantity or array."""
    if uncertainty is None:
        return None, None
    if isinstance(uncertainty, NDUncertainty):
        if not isinstance(uncertainty, _UNCERTAINTY_TYPES):
            try:
                uncertainty = uncertainty.represent_as(InverseVariance)
            except Exception as exc:  # noqa: BLE001 - re-raised with context
                raise SpectrumInputError(
                    f"{name}: uncertainty of type {type(uncertainty).__name__} cannot be "
                    "converted to an inverse variance; use StdDevUncertainty, "
                    "VarianceUncertainty or InverseVariance"
                ) from exc
        kind = type(uncertainty)
        values = uncertainty.array
    else:  # a Quantity or array of standard deviations
        kind = StdDevUncertainty
        if isinstance(uncertainty, u.Quantity):
            try:
                values = uncertainty.to_value(flux_unit)
            except u.UnitConversionError as exc:
                raise SpectrumInputError(
                    f"{name}: uncertainty unit {uncertainty.unit} is not convertible to the "
                    f"flux unit {flux_unit}"
                ) from exc
        else:
            values = uncertainty
    values = native_float_array(values, f"{name} uncertainty")
    if values.shape != shape:
        raise SpectrumInputError(
            f"{name}: uncertainty has shape {values.shape} but flux has shape {shape}; "
            "they must match"
        )
    return values, kind


def _resolution_of(spectrum: Spectrum) -> float | None:
    value = getattr(spectrum, "instrumental_resolution", None)
    if value is None and isinstance(spectrum.meta, dict):
        value = spectrum.meta.get("instrumental_resolution")
    return None if value is None else float(value)


def _records_from_spectrum(spectrum: Spectrum, medium: Medium, name: str) -> list[OrderRecord]:
    """One record per order: a 1-D spectrum is one order, each row of a 2-D one is one."""
    meta = spectrum.meta if isinstance(spectrum.meta, dict) else {}
    resolution = _resolution_of(spectrum)
    flux = spectrum.flux
    unc = spectrum.uncertainty
    if flux.ndim == 1:
        return [_record(spectrum.spectral_axis, flux, unc, spectrum.mask, medium, meta,
                        resolution, name)]
    if flux.ndim != 2 or spectrum.spectral_axis.ndim != 1:
        raise SpectrumInputError(
            f"{name}: expected a 1-D spectrum or a 2-D (order, pixel) flux with a 1-D "
            f"spectral axis, got flux shape {flux.shape}"
        )
    kind = type(unc) if unc is not None else None
    return [
        _record(spectrum.spectral_axis, flux[i],
                None if unc is None else kind(unc.array[i]),
                None if spectrum.mask is None else spectrum.mask[i],
                medium, meta, resolution, f"{name} row {i}")
        for i in range(flux.shape[0])
    ]


def _records_from_collection(collection: SpectrumCollection, medium: Medium) -> list[OrderRecord]:
    unc = collection.uncertainty
    kind = type(unc) if unc is not None else None
    return [
        _record(collection.spectral_axis[i], collection.flux[i],
                None if unc is None else kind(unc.array[i]),
                None if collection.mask is None else collection.mask[i],
                medium, collection.meta, None, f"order {i}")
        for i in range(collection.flux.shape[0])
    ]


def _order_numbers(records: Sequence[OrderRecord]) -> list[int]:
    numbers = []
    for i, record in enumerate(records):
        m = record.meta.get("m", i)
        numbers.append(int(m) if np.ndim(m) == 0 and float(m) == int(m) else i)
    return numbers


def _pad_wavelength(wavelength: np.ndarray, length: int) -> np.ndarray:
    """Continue an ascending axis past its end with its last step, so it stays sorted."""
    extra = length - wavelength.size
    if extra == 0:
        return wavelength
    step = wavelength[-1] - wavelength[-2] if wavelength.size > 1 else 1.0
    tail = wavelength[-1] + step * np.arange(1, extra + 1)
    return np.concatenate([wavelength, tail])


def _pad(values: np.ndarray, length: int, fill: Any) -> np.ndarray:
    return np.concatenate([values, np.full(length - values.size, fill, dtype=values.dtype)])


@dataclass(frozen=True, eq=False)
class OrderBatch:
    """Échelle orders as a padded batch of tensors (the inside of the boundary).

    Rows are orders, columns pixels. All tensors are float64 (``mask`` is bool,
    ``order`` and ``npix`` int64). Orders shorter than the longest are padded at their
    red end: the wavelength continues with the order's last step (so every row stays
    strictly increasing), flux and ``ivar`` are 0 and ``mask`` is True there.

    Attributes
    ----------
    wavelength : torch.Tensor
        Vacuum wavelength in Angstrom, increasing along each row, shape (n_orders, n_pix).
    flux : torch.Tensor
        Flux in the original unit of each order (see ``records``); 0 where the input was
        NaN or infinite (those pixels are masked).
    ivar : torch.Tensor
        Inverse variance of the flux; 0 at masked pixels. Where the input had no
        uncertainty it is 1 (unit weights) and nothing is written back.
    mask : torch.Tensor
        True where a pixel must be ignored (the specutils convention): masked on input,
        NaN/infinite flux or uncertainty, or padding.
    order : torch.Tensor
        Order number of each row (``meta["m"]`` of muler spectra, else the row index).
    npix : torch.Tensor
        Number of real (unpadded) pixels in each row.
    records : tuple of OrderRecord
        Units, uncertainty type, medium, metadata and the original arrays of each order.

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> from specutils import Spectrum
    >>> spec = Spectrum(flux=np.ones(5) * u.dimensionless_unscaled,
    ...                 spectral_axis=np.linspace(1.0, 1.1, 5) * u.micron)
    >>> batch = OrderBatch.from_spectra(spec)
    >>> batch
    <OrderBatch: 1 order(s) x 5 px, 10000.0-11000.0 Angstrom (vacuum)>
    >>> batch.wavelength[0, :2].round(decimals=6)
    tensor([10000., 10250.], dtype=torch.float64)
    >>> batch.to_spectrum_list()[0].spectral_axis.unit
    Unit("micron")
    """

    wavelength: torch.Tensor
    flux: torch.Tensor
    ivar: torch.Tensor
    mask: torch.Tensor
    order: torch.Tensor
    npix: torch.Tensor
    records: tuple[OrderRecord, ...]

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_records(cls, records: Sequence[OrderRecord]) -> OrderBatch:
        """Assemble a batch from validated per-order records."""
        if len(records) == 0:
            raise SpectrumInputError(
                "no orders given: a spectrum list must hold at least one order"
            )
        canonical = [_canonical(r, f"order {i}") for i, r in enumerate(records)]
        warn_masked_nonfinite(sum(c.n_nonfinite_flux for c in canonical),
                              sum(c.n_nonfinite_uncertainty for c in canonical), len(records))
        width = max(c.flux.size for c in canonical)

        def stack(arrays: list[np.ndarray]) -> torch.Tensor:
            return torch.from_numpy(np.stack(arrays))

        return cls(
            wavelength=stack([_pad_wavelength(c.wavelength, width) for c in canonical]),
            flux=stack([_pad(c.flux, width, 0.0) for c in canonical]),
            ivar=stack([_pad(c.ivar, width, 0.0) for c in canonical]),
            mask=stack([_pad(c.mask, width, True) for c in canonical]),
            order=torch.tensor(_order_numbers(records), dtype=torch.int64),
            npix=torch.tensor([c.flux.size for c in canonical], dtype=torch.int64),
            records=tuple(records),
        )

    @classmethod
    def from_spectra(cls, spectra: Any, *, medium: Medium = "vacuum") -> OrderBatch:
        """Build a batch from any supported spectrum object.

        Parameters
        ----------
        spectra : Spectrum, SpectrumList, SpectrumCollection, list of Spectrum, or tuple
            A `~specutils.Spectrum` (1-D: one order; 2-D flux with a 1-D axis: one order
            per row), a `~specutils.SpectrumList` or muler ``EchelleSpectrumList`` (one
            order per element), a `~specutils.SpectrumCollection`, or a tuple
            ``(wavelength, flux[, uncertainty[, mask]])`` of Quantities (see
            :meth:`from_arrays`).
        medium : {"vacuum", "air"}
            Medium of the input wavelengths. Inside the batch they are always vacuum.

        Raises
        ------
        SpectrumTypeError
            If ``spectra`` is not one of the supported kinds.
        SpectrumInputError
            For an empty order or list, a unitless or pixel spectral axis, unsorted or
            repeated wavelengths, mismatched shapes, or zero/negative uncertainties on
            unmasked pixels.
        """
        medium = check_medium(medium)
        if isinstance(spectra, OrderBatch):
            return spectra
        if isinstance(spectra, tuple):
            return cls.from_arrays(*spectra, medium=medium)
        if isinstance(spectra, SpectrumCollection):
            return cls.from_records(_records_from_collection(spectra, medium))
        if isinstance(spectra, Spectrum):
            return cls.from_records(_records_from_spectrum(spectra, medium, "order 0"))
        if isinstance(spectra, (SpectrumList, list)):
            records: list[OrderRecord] = []
            for i, spectrum in enumerate(spectra):
                if not isinstance(spectrum, Spectrum):
                    raise SpectrumTypeError(
                        f"element {i} of the spectrum list is a {type(spectrum).__name__}, "
                        "not a specutils Spectrum"
                    )
                records.extend(_records_from_spectrum(spectrum, medium, f"order {i}"))
            return cls.from_records(records)
        raise SpectrumTypeError(
            f"cannot read spectra from a {type(spectra).__name__}: expected a specutils "
            "Spectrum, SpectrumList (or muler EchelleSpectrumList), SpectrumCollection, or a "
            "(wavelength, flux[, uncertainty[, mask]]) tuple of Quantities"
        )

    @classmethod
    def from_arrays(cls, wavelength: u.Quantity, flux: Any, uncertainty: Any = None,
                    mask: Any = None, *, medium: Medium = "vacuum",
                    meta: dict[str, Any] | None = None) -> OrderBatch:
        """Build a batch from plain arrays.

        Parameters
        ----------
        wavelength : `~astropy.units.Quantity`
            Spectral axis, shape (n_pix,) or (n_orders, n_pix).
        flux : `~astropy.units.Quantity` or array
            Flux, shape (n_pix,) or (n_orders, n_pix); a plain array is dimensionless.
        uncertainty : Quantity, array or `~astropy.nddata.NDUncertainty`, optional
            A Quantity or plain array is a standard deviation in the unit of ``flux``.
        mask : array of bool, optional
            True where a pixel must be ignored.
        medium : {"vacuum", "air"}
            Medium of the input wavelengths.
        meta : dict, optional
            Metadata given to every order.

        Examples
        --------
        >>> import numpy as np, astropy.units as u
        >>> wl = np.array([[5000.0, 5001.0, 5002.0], [6000.0, 6001.0, 6002.0]]) * u.AA
        >>> OrderBatch.from_arrays(wl, np.ones((2, 3)), 0.01 * np.ones((2, 3))).ivar[0]
        tensor([10000., 10000., 10000.], dtype=torch.float64)
        """
        medium = check_medium(medium)
        if not isinstance(wavelength, u.Quantity):
            raise SpectrumInputError(
                "wavelength has no unit: pass a Quantity such as wavelength * u.AA"
            )
        flux_shape = np.shape(flux)
        if wavelength.ndim == 1 and len(flux_shape) == 2:
            wavelength = np.broadcast_to(wavelength, flux_shape, subok=True)
        if wavelength.shape != flux_shape:
            raise SpectrumInputError(
                f"wavelength has shape {wavelength.shape} but flux has shape {flux_shape}; "
                "they must match (or wavelength may be 1-D and shared by every row)"
            )
        if wavelength.ndim == 1:
            return cls.from_records([_record(wavelength, flux, uncertainty, mask, medium,
                                             meta, None, "order 0")])
        if wavelength.ndim != 2:
            raise SpectrumInputError(
                f"wavelength must be 1-D or 2-D (order, pixel), got shape {wavelength.shape}"
            )

        def row(values: Any, i: int) -> Any:
            if values is None:
                return None
            if isinstance(values, NDUncertainty):
                return type(values)(values.array[i])
            return values[i]

        return cls.from_records([
            _record(wavelength[i], row(flux, i), row(uncertainty, i), row(mask, i), medium,
                    meta, None, f"order {i}")
            for i in range(wavelength.shape[0])
        ])

    # ----------------------------------------------------------------- properties
    @property
    def n_orders(self) -> int:
        """Number of orders (rows)."""
        return int(self.flux.shape[0])

    @property
    def n_pix(self) -> int:
        """Padded number of pixels per row."""
        return int(self.flux.shape[1])

    @property
    def weights(self) -> torch.Tensor:
        """Chi-square weights: ``ivar`` with masked pixels set to zero."""
        return torch.where(self.mask, torch.zeros_like(self.ivar), self.ivar)

    @property
    def resolution(self) -> tuple[float | None, ...]:
        """Instrumental resolving power of each order, where the input carried it."""
        return tuple(r.resolution for r in self.records)

    def __len__(self) -> int:
        return self.n_orders

    def __repr__(self) -> str:
        n = self.npix.tolist()
        first = self.wavelength[0, 0].item()
        last = max(self.wavelength[i, k - 1].item() for i, k in enumerate(n))
        media = sorted({r.medium for r in self.records})
        note = "vacuum" if media == ["vacuum"] else f"vacuum; input in {'/'.join(media)}"
        return (f"<OrderBatch: {self.n_orders} order(s) x {self.n_pix} px, "
                f"{first:.1f}-{last:.1f} Angstrom ({note})>")

    def to(self, dtype: torch.dtype | None = None,
           device: torch.device | str | None = None) -> OrderBatch:
        """Return a copy with floating tensors cast to ``dtype`` and all moved to ``device``."""
        def move(t: torch.Tensor, floating: bool) -> torch.Tensor:
            return t.to(device=device, dtype=dtype if floating else None)

        return replace(self, wavelength=move(self.wavelength, True), flux=move(self.flux, True),
                       ivar=move(self.ivar, True), mask=move(self.mask, False),
                       order=move(self.order, False), npix=move(self.npix, False))

    def iter_orders(self) -> Iterator[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor,
                                            torch.Tensor]]:
        """Yield ``(order, wavelength, flux, ivar, mask)`` per order, without padding."""
        for i, n in enumerate(self.npix.tolist()):
            yield (int(self.order[i]), self.wavelength[i, :n], self.flux[i, :n],
                   self.ivar[i, :n], self.mask[i, :n])

    def median_snr(self) -> torch.Tensor:
        """Median signal-to-noise ratio ``flux * sqrt(ivar)`` of unmasked pixels, per order.

        NaN for an order with no unmasked pixel or without uncertainties.
        """
        values = []
        for i, (_, _, flux, ivar, mask) in enumerate(self.iter_orders()):
            good = ~mask
            if self.records[i].uncertainty is None or not bool(good.any()):
                values.append(float("nan"))
            else:
                values.append(float(torch.median(flux[good] * torch.sqrt(ivar[good]))))
        return torch.tensor(values, dtype=torch.float64)

    def masked_fraction(self) -> torch.Tensor:
        """Fraction of each order's real pixels that are masked."""
        return torch.tensor([float(m.double().mean()) for *_, m in self.iter_orders()],
                            dtype=torch.float64)

    # ----------------------------------------------------------------- the way out
    def to_spectrum(self, index: int) -> Spectrum:
        """Return row ``index`` as a specutils `~specutils.Spectrum` in its original units.

        Values the batch still holds exactly as they were made from the input are handed
        back bit-identical; changed values are converted back to the original unit,
        uncertainty type, medium, pixel order and dtype.
        """
        record = self.records[index]
        n = record.npix
        current = _CanonicalOrder(*(t[index, :n].detach().cpu().numpy()
                                    for t in (self.wavelength, self.flux, self.ivar, self.mask)))
        made = _canonical(record, f"order {index}")
        flip = (lambda a: a[::-1]) if record.reversed else (lambda a: a)

        if np.array_equal(made.wavelength, current.wavelength):
            axis = record.spectral_axis
        else:
            axis = from_vacuum_angstrom(flip(current.wavelength), record.spectral_axis.unit,
                                        record.medium).astype(record.spectral_axis.dtype)
        if np.array_equal(made.flux, current.flux):
            flux = record.flux
        else:
            flux = flip(current.flux).astype(record.flux.dtype)
        mask = flip(current.mask)
        uncertainty = None
        if record.uncertainty_type is not None:
            if np.array_equal(made.ivar, current.ivar):
                values = record.uncertainty
            else:
                values = _uncertainty_from_ivar(flip(current.ivar), record.uncertainty_type)
                values = values.astype(record.uncertainty.dtype)
            uncertainty = record.uncertainty_type(values)
        if record.mask is None and not mask.any():
            mask = None
        elif record.mask is not None and np.array_equal(mask, record.mask):
            mask = record.mask
        return Spectrum(flux=u.Quantity(flux, record.flux_unit, copy=False),
                        spectral_axis=axis, uncertainty=uncertainty,
                        mask=None if mask is None else np.ascontiguousarray(mask),
                        meta=dict(record.meta))

    def to_spectrum_list(self) -> SpectrumList:
        """Return every order as a `~specutils.SpectrumList` of `~specutils.Spectrum`."""
        return SpectrumList([self.to_spectrum(i) for i in range(self.n_orders)])


def as_order_batch(spectra: Any, *, medium: Medium = "vacuum") -> OrderBatch:
    """Convert any supported spectrum object to an :class:`OrderBatch`.

    Shorthand for :meth:`OrderBatch.from_spectra`; see there for what is accepted.

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> batch = as_order_batch((np.linspace(8100, 8110, 11) * u.AA, np.ones(11)))
    >>> batch.n_orders, batch.n_pix
    (1, 11)
    """
    return OrderBatch.from_spectra(spectra, medium=medium)
