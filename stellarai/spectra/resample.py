"""Differentiable, batched resampling of spectra in PyTorch.

Everything here works on plain tensors: wavelengths in Angstrom (converted at the
boundary, never here), fluxes as given. Every function is batched over leading
dimensions (spectra, échelle orders), so 28 orders with 28 different wavelength grids
are resampled in one call, and gradients flow back to the fluxes (and, for
interpolation, to the requested wavelengths) for use inside fitting loops.

- :func:`bin_edges`: pixel edges from pixel centers, as ``specutils`` computes them.
- :func:`interpolate_linear`: linear interpolation, the batched twin of ``np.interp``.
- :func:`rebin_flux_conserving`: the overlap-weighted (flux-conserving) rebinning of
  ``specutils.manipulation.FluxConservingResampler``, with inverse variances and masks.
"""

from __future__ import annotations

from functools import reduce
from typing import NamedTuple

import torch
from torch import Tensor

from ..errors import SpectrumInputError, SpectrumTypeError

__all__ = ["Rebinned", "bin_edges", "interpolate_linear", "rebin_flux_conserving"]


class Rebinned(NamedTuple):
    """Result of :func:`rebin_flux_conserving`.

    Attributes
    ----------
    flux : torch.Tensor
        Rebinned flux, shape ``(..., m)``; ``fill`` where ``mask`` is True.
    ivar : torch.Tensor or None
        Propagated inverse variance, shape ``(..., m)``, 0 where ``mask`` is True;
        None when no ``ivar`` was given.
    mask : torch.Tensor
        Boolean, shape ``(..., m)``: True (bad) where no valid input pixel overlaps the
        output pixel.
    """

    flux: Tensor
    ivar: Tensor | None
    mask: Tensor


# --------------------------------------------------------------------------- validation


def _as_tensor(value: object, name: str) -> Tensor:
    """Return ``value`` as a tensor with at least one dimension; refuse Quantities."""
    if hasattr(value, "unit") and not isinstance(value, Tensor):
        raise SpectrumTypeError(
            f"{name} has a unit: stellarai.spectra.resample takes plain numbers (wavelengths "
            "in Angstrom); convert first, e.g. quantity.to_value(u.AA)"
        )
    tensor = value if isinstance(value, Tensor) else torch.as_tensor(value)
    if tensor.ndim == 0:
        raise SpectrumInputError(f"{name} must have at least one (pixel) axis, got a scalar")
    return tensor


def _as_float(value: object, name: str) -> Tensor:
    tensor = _as_tensor(value, name)
    if not tensor.is_floating_point():
        raise SpectrumInputError(
            f"{name} must have a floating-point dtype (float32 or float64), got {tensor.dtype}"
        )
    return tensor


def _as_mask(value: object, name: str) -> Tensor:
    tensor = _as_tensor(value, name)
    if tensor.dtype != torch.bool:
        raise SpectrumInputError(
            f"{name} must be a boolean tensor (True = bad pixel), got {tensor.dtype}"
        )
    return tensor


def _check_pixels(tensor: Tensor, name: str, minimum: int = 2) -> None:
    if tensor.shape[-1] < minimum:
        raise SpectrumInputError(
            f"{name} needs at least {minimum} pixels along its last axis, "
            f"got shape {tuple(tensor.shape)}"
        )


def _check_increasing(wavelength: Tensor, name: str) -> None:
    """Raise unless every row of ``wavelength`` is strictly increasing (and not NaN)."""
    step_ok = torch.diff(wavelength, dim=-1) > 0
    if bool(step_ok.all()):
        return
    bad = tuple(torch.nonzero(~step_ok)[0].tolist())
    row, pixel = bad[:-1], bad[-1]
    where = f" of row {row}" if row else ""
    pair = wavelength[bad].item(), wavelength[(*row, pixel + 1)].item()
    raise SpectrumInputError(
        f"{name} must be strictly increasing along its last axis (and free of NaN); it is "
        f"not between pixels {pixel} and {pixel + 1}{where}: {pair[0]!r} -> {pair[1]!r}"
    )


def _check_same_length(tensor: Tensor, name: str, reference: Tensor, ref_name: str) -> None:
    if tensor.shape[-1] != reference.shape[-1]:
        raise SpectrumInputError(
            f"{name} has shape {tuple(tensor.shape)} but {ref_name} has shape "
            f"{tuple(reference.shape)}: their last (pixel) axes must have the same length"
        )


def _batch_shape(**named: Tensor) -> torch.Size:
    """Broadcast the leading (batch) dimensions of ``named``; name the culprits if not."""
    try:
        return torch.broadcast_shapes(*(t.shape[:-1] for t in named.values()))
    except RuntimeError:
        items = list(named.items())
        for i, (name_a, a) in enumerate(items):
            for name_b, b in items[i + 1:]:
                try:
                    torch.broadcast_shapes(a.shape[:-1], b.shape[:-1])
                except RuntimeError:
                    raise SpectrumInputError(
                        f"the leading (batch) dimensions of {name_a} {tuple(a.shape)} and "
                        f"{name_b} {tuple(b.shape)} do not broadcast"
                    ) from None
        raise  # pragma: no cover - pairwise broadcasting implies joint broadcasting


def _common_dtype(*tensors: Tensor) -> torch.dtype:
    return reduce(torch.promote_types, (t.dtype for t in tensors))


def _prepare(new_wavelength: object, wavelength: object, flux: object,
             new_minimum: int) -> tuple[Tensor, Tensor, Tensor]:
    """Validate the three arrays shared by both resamplers; cast to a common dtype."""
    new_wavelength = _as_float(new_wavelength, "new_wavelength")
    wavelength = _as_float(wavelength, "wavelength")
    flux = _as_float(flux, "flux")
    _check_pixels(wavelength, "wavelength")
    _check_pixels(new_wavelength, "new_wavelength", new_minimum)
    _check_same_length(flux, "flux", wavelength, "wavelength")
    _batch_shape(new_wavelength=new_wavelength, wavelength=wavelength, flux=flux)
    dtype = _common_dtype(new_wavelength, wavelength, flux)
    wavelength = wavelength.to(dtype)
    _check_increasing(wavelength, "wavelength")
    return new_wavelength.to(dtype), wavelength, flux.to(dtype)


# ---------------------------------------------------------------------- batched indexing


def _searchsorted(sorted_sequence: Tensor, values: Tensor, *, right: bool) -> Tensor:
    """``torch.searchsorted`` along the last axis with broadcasting leading dimensions."""
    if sorted_sequence.ndim > 1:
        lead = torch.broadcast_shapes(sorted_sequence.shape[:-1], values.shape[:-1])
        sorted_sequence = sorted_sequence.expand(*lead, sorted_sequence.shape[-1])
        values = values.expand(*lead, values.shape[-1])
    return torch.searchsorted(sorted_sequence.contiguous(), values.contiguous(), right=right)


def _take(values: Tensor, index: Tensor) -> Tensor:
    """``values[..., index]`` along the last axis, broadcasting leading dimensions."""
    lead = torch.broadcast_shapes(values.shape[:-1], index.shape[:-1])
    return torch.gather(values.expand(*lead, values.shape[-1]), -1,
                        index.expand(*lead, index.shape[-1]))


def _take_band(values: Tensor, band: Tensor) -> Tensor:
    """Like :func:`_take` for an index of shape ``(..., K, m)``: a band per output pixel."""
    return _take(values, band.flatten(-2)).unflatten(-1, band.shape[-2:])


# ----------------------------------------------------------------------------- public API


def bin_edges(centers: Tensor) -> Tensor:
    r"""Pixel edges from pixel centers, batched over leading dimensions.

    Interior edges are the midpoints between neighbouring centers; the two outer edges
    lie half a pixel beyond the first and last centers, as in ``specutils``'
    ``SpectralAxis.bin_edges`` (identical to the last bit in float64).

    Parameters
    ----------
    centers : torch.Tensor
        Pixel centers, shape ``(..., n)`` with ``n >= 2``, floating point.

    Returns
    -------
    torch.Tensor
        Edges, shape ``(..., n + 1)``, same dtype as ``centers``.

    Notes
    -----
    With :math:`c_{-1} = 2c_0 - c_1` and :math:`c_n = 2c_{n-1} - c_{n-2}` (extrapolated
    centers), the edges are :math:`e_i = (c_{i-1} + c_i)/2` for :math:`i = 0 \dots n`.
    The centers need not be increasing here; the resamplers check that themselves.

    Examples
    --------
    >>> import torch
    >>> bin_edges(torch.tensor([2.0, 4.0, 12.0, 16.0, 20.0])).tolist()
    [1.0, 3.0, 8.0, 14.0, 18.0, 22.0]
    >>> bin_edges(torch.zeros(28, 2048, dtype=torch.float64)).shape
    torch.Size([28, 2049])
    """
    centers = _as_float(centers, "centers")
    _check_pixels(centers, "centers")
    before = 2 * centers[..., :1] - centers[..., 1:2]
    after = 2 * centers[..., -1:] - centers[..., -2:-1]
    a = torch.cat([before, centers], dim=-1)
    b = torch.cat([centers, after], dim=-1)
    return (a + b) / 2


def interpolate_linear(new_wavelength: Tensor, wavelength: Tensor, flux: Tensor, *,
                       fill: float = float("nan")) -> Tensor:
    r"""Linear interpolation of batched spectra onto new wavelengths.

    The batched, differentiable counterpart of ``np.interp(new_wavelength, wavelength,
    flux, left=fill, right=fill)`` (and of ``specutils``' ``LinearInterpolatedResampler``).

    Parameters
    ----------
    new_wavelength : torch.Tensor
        Wavelengths to interpolate at, shape ``(..., m)`` (any order), or ``(m,)`` shared
        by every spectrum. Same unit as ``wavelength`` (Angstrom inside stellarai).
    wavelength : torch.Tensor
        Pixel wavelengths of the input, shape ``(..., n)``, strictly increasing along the
        last axis, ``n >= 2``.
    flux : torch.Tensor
        Input flux, shape ``(..., n)``. Leading dimensions of the three arrays broadcast
        against each other (for example one grid and a batch of fluxes).
    fill : float, optional
        Value returned outside ``[wavelength[..., 0], wavelength[..., -1]]``
        (default NaN).

    Returns
    -------
    torch.Tensor
        Interpolated flux, shape ``(broadcast leading dims..., m)``, in the common
        floating dtype of the inputs.

    Raises
    ------
    stellarai.errors.SpectrumInputError
        For a non-floating dtype, fewer than 2 input pixels, a ``wavelength`` that is not
        strictly increasing, or shapes that do not match or broadcast.

    Notes
    -----
    For :math:`\lambda_k \le x \le \lambda_{k+1}` (``k`` found with
    ``torch.searchsorted``),

    .. math::

        f(x) = f_k + \frac{x - \lambda_k}{\lambda_{k+1} - \lambda_k}\,(f_{k+1} - f_k).

    The result is differentiable with respect to ``flux``, ``wavelength`` and
    ``new_wavelength`` (the slope of the segment). NaN fluxes propagate to the two
    segments that touch them, as with ``np.interp``.

    Examples
    --------
    >>> import torch
    >>> wl = torch.tensor([2.0, 4.0, 12.0, 16.0, 20.0], dtype=torch.float64)
    >>> f = torch.tensor([1.0, 3.0, 7.0, 6.0, 20.0], dtype=torch.float64)
    >>> interpolate_linear(torch.tensor([1.0, 5, 9, 13, 14, 17, 21]), wl, f).tolist()
    [nan, 3.5, 5.5, 6.75, 6.5, 9.5, nan]
    >>> orders = torch.stack([wl, wl + 0.5])              # two orders, two grids
    >>> interpolate_linear(torch.tensor([3.0, 18.0]), orders, f).tolist()
    [[2.0, 13.0], [1.5, 11.25]]
    """
    new_wavelength, wavelength, flux = _prepare(new_wavelength, wavelength, flux, 1)
    n = wavelength.shape[-1]
    left = (_searchsorted(wavelength, new_wavelength, right=True) - 1).clamp(0, n - 2)
    x0, x1 = _take(wavelength, left), _take(wavelength, left + 1)
    f0, f1 = _take(flux, left), _take(flux, left + 1)
    value = f0 + (new_wavelength - x0) / (x1 - x0) * (f1 - f0)
    inside = (new_wavelength >= wavelength[..., :1]) & (new_wavelength <= wavelength[..., -1:])
    return torch.where(inside, value, fill)


def _overlap_band(new_edges: Tensor, edges: Tensor) -> tuple[Tensor, Tensor]:
    """Input pixels overlapping each output pixel, and the overlap lengths.

    Output pixel ``j`` spans ``[new_edges[j], new_edges[j+1]]`` and overlaps a contiguous
    run of input pixels. The run starts at the input pixel containing its left edge
    (``searchsorted`` on the input edges) and has at most ``K`` pixels, with ``K`` the
    longest run in the data. Returns ``index`` (clamped to valid pixels) and ``overlap``,
    both of shape ``(..., K, m)`` (the band axis before the pixel axis, so that sums over
    it are fast); padding entries have overlap 0.
    """
    n = edges.shape[-1] - 1
    start = (_searchsorted(edges, new_edges, right=True) - 1).clamp(0, n - 1)
    width = int((start[..., 1:] - start[..., :-1]).max()) + 1
    band = start[..., None, :-1] + torch.arange(width, device=start.device)[:, None]
    index = band.clamp(max=n - 1)
    lo, hi = new_edges[..., None, :-1], new_edges[..., None, 1:]
    right = torch.minimum(_take_band(edges, index + 1), hi)
    overlap = right - torch.maximum(_take_band(edges, index), lo)
    return index, overlap.clamp(min=0) * (band < n)


def _valid_pixels(flux: Tensor, ivar: Tensor | None, mask: Tensor | None) -> Tensor:
    """True where an input pixel may contribute: finite flux, not masked, ivar > 0."""
    valid = torch.isfinite(flux)
    if mask is not None:
        valid = valid & ~mask
    if ivar is not None:
        valid = valid & (ivar > 0)
    return valid


def rebin_flux_conserving(new_wavelength: Tensor, wavelength: Tensor, flux: Tensor, *,
                          ivar: Tensor | None = None, mask: Tensor | None = None,
                          fill: float = float("nan")) -> Rebinned:
    r"""Flux-conserving rebinning of batched spectra onto new pixel centers.

    Each output pixel receives the overlap-weighted mean of the input pixels it covers,
    as in ``specutils``' ``FluxConservingResampler`` (Carnall 2017, arXiv:1705.05165),
    vectorized over pixels and batched over leading dimensions, with masks and inverse
    variances.

    Parameters
    ----------
    new_wavelength : torch.Tensor
        Output pixel centers, shape ``(..., m)`` or ``(m,)`` shared by every spectrum,
        strictly increasing, ``m >= 2``. Same unit as ``wavelength``.
    wavelength : torch.Tensor
        Input pixel centers, shape ``(..., n)``, strictly increasing, ``n >= 2``. Pixel
        edges of both grids come from :func:`bin_edges`.
    flux : torch.Tensor
        Input flux, shape ``(..., n)``.
    ivar : torch.Tensor, optional
        Inverse variance of ``flux``, shape ``(..., n)``; pixels with ``ivar <= 0`` (or
        NaN) get zero weight. When given, the propagated inverse variance is returned.
    mask : torch.Tensor, optional
        Boolean, shape ``(..., n)``, True for bad pixels (the ``specutils`` convention);
        they get zero weight. Pixels with non-finite flux are treated as masked too.
    fill : float, optional
        Flux of output pixels with no valid input coverage (default NaN).

    Returns
    -------
    Rebinned
        ``(flux, ivar, mask)``, each of shape ``(broadcast leading dims..., m)``; ``ivar``
        is None when no ``ivar`` was given. Output pixels with no valid coverage (masked
        inputs, or wholly outside the input range) have flux ``fill``, ivar 0 and mask
        True.

    Raises
    ------
    stellarai.errors.SpectrumInputError
        For a non-floating dtype, a non-boolean mask, fewer than 2 pixels, a grid that is
        not strictly increasing, or shapes that do not match or broadcast.

    Notes
    -----
    With :math:`p_{ij}` the overlap length of input pixel :math:`i` with output pixel
    :math:`j` (zero for invalid input pixels),

    .. math::

        F_j = \frac{\sum_i p_{ij} f_i}{\sum_i p_{ij}}, \qquad
        \sigma^2_{F_j} = \frac{\sum_i p_{ij}^2 \sigma_i^2}{\left(\sum_i p_{ij}\right)^2}.

    When the output pixels cover the input, :math:`\sum_j F_j \sum_i p_{ij} =
    \sum_i f_i \Delta\lambda_i`: the integrated flux is conserved. An output pixel that
    is only partly covered (at the ends of the input range, or next to masked pixels)
    receives the mean over its covered part, with the larger variance that implies.
    ``specutils`` 2.4 differs at the two ends: it returns NaN for a partly covered pixel
    at the red end, and at the blue end it counts the uncovered part of the output pixel
    as covered by the first input pixel.

    No Python loop runs over pixels and no dense ``(m, n)`` matrix is built: each output
    pixel gathers a band of ``K`` consecutive input pixels, ``K`` being the longest run
    of overlapping input pixels in the data. The result is differentiable with respect
    to ``flux`` and ``ivar`` (and, piecewise, the grids).

    Examples
    --------
    The example of ``specutils``' ``FluxConservingResampler`` (mJy at nm):

    >>> import torch
    >>> wl = torch.tensor([2.0, 4.0, 12.0, 16.0, 20.0], dtype=torch.float64)
    >>> f = torch.tensor([1.0, 3.0, 7.0, 6.0, 20.0], dtype=torch.float64)
    >>> new = torch.tensor([1.0, 5, 9, 13, 14, 17, 21, 22, 23], dtype=torch.float64)
    >>> out = rebin_flux_conserving(new, wl, f, ivar=torch.ones(5, dtype=torch.float64))
    >>> out.flux.tolist()
    [1.0, 3.0, 6.0, 7.0, 6.25, 10.0, 20.0, 20.0, nan]
    >>> out.ivar.tolist()
    [1.0, 1.0, 1.6, 1.0, 1.6, 1.6896551724137931, 1.0, 1.0, 0.0]
    >>> out.mask.tolist()
    [False, False, False, False, False, False, False, False, True]

    ``specutils`` returns NaN for the eighth pixel, which the input covers only half-way.
    """
    new_wavelength, wavelength, flux = _prepare(new_wavelength, wavelength, flux, 2)
    _check_increasing(new_wavelength, "new_wavelength")
    extras = {}
    if ivar is not None:
        extras["ivar"] = ivar = _as_float(ivar, "ivar").to(flux.dtype)
    if mask is not None:
        extras["mask"] = mask = _as_mask(mask, "mask")
    for name, extra in extras.items():
        _check_same_length(extra, name, flux, "flux")
    _batch_shape(new_wavelength=new_wavelength, wavelength=wavelength, flux=flux, **extras)

    index, overlap = _overlap_band(bin_edges(new_wavelength), bin_edges(wavelength))
    valid = _valid_pixels(flux, ivar, mask)
    weight = overlap * _take_band(valid.to(flux.dtype), index)
    total = weight.sum(dim=-2)
    covered = total > 0
    safe_total = torch.where(covered, total, 1)
    weighted = (weight * _take_band(torch.where(valid, flux, 0), index)).sum(dim=-2)
    new_flux = torch.where(covered, weighted / safe_total, fill)
    new_ivar = None
    if ivar is not None:
        variance = valid / torch.where(valid, ivar, 1)
        spread = (weight**2 * _take_band(variance, index)).sum(dim=-2)
        new_ivar = torch.where(covered, safe_total**2 / torch.where(covered, spread, 1), 0)
    return Rebinned(new_flux, new_ivar, ~covered)
