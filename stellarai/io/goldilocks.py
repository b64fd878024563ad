"""Reader for HPF spectra reduced by the Goldilocks pipeline (format ``stellarai-hpf-goldilocks``).

A Goldilocks ``*.spectra.fits`` file holds a primary header and nine ``(28, 2048)`` images:
``Sci Flux``, ``Sky Flux``, ``Cal Flux``, ``Sci Error``, ``Sky Error``, ``Cal Error``,
``Sci Wavl``, ``Sky Wavl``, ``Cal Wavl`` (big-endian; vacuum wavelengths in Angstrom).
The file is recognised by those HDU names and ``INSTRUME = 'HPF'``, never by its name.

Decisions
---------
* Values are those of muler's ``HPFSpectrumList.read``: flux and uncertainty converted to
  float64 (``u.ct``, muler's unit), wavelength float64 in Angstrom, all in native byte
  order. Orders keep the file's row order (increasing wavelength), ``meta["m"]`` is the row
  index, as in muler (Goldilocks files carry no echelle order numbers).
* ``mask`` is True where the error is not finite or ``<= 0``, or the flux is not finite.
  This flags the pipeline's no-data pixels (the 4 edge pixels at each end of every order
  have flux 0 and error 0). Values are left untouched: masked pixels are not set to NaN.
"""

from __future__ import annotations

from typing import Any

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.nddata import StdDevUncertainty
from specutils import Spectrum, SpectrumList

from ..errors import SpectrumInputError, UnreadableFileError
from .read import native, open_fits, sniff_fits, source_name

__all__ = ["HPF_RESOLUTION", "identify_hpf_goldilocks", "read_hpf_goldilocks"]

HPF_RESOLUTION = 55_000
"""HPF resolving power used in ``meta["instrumental_resolution"]`` (muler's value)."""

_FIBERS = ("Sci", "Sky", "Cal")


def _is_goldilocks(hdul: fits.HDUList) -> bool:
    if str(hdul[0].header.get("INSTRUME", "")).strip().upper() != "HPF":
        return False
    names = {hdu.name.upper() for hdu in hdul}
    return {"SCI FLUX", "SCI ERROR", "SCI WAVL"} <= names


def identify_hpf_goldilocks(origin: str, path: Any, fileobj: Any, *args: Any,
                            **kwargs: Any) -> bool:
    """specutils identifier: True for an HPF Goldilocks file (by HDU names and INSTRUME)."""
    try:
        with sniff_fits(origin, path, fileobj, args) as hdul:
            return hdul is not None and _is_goldilocks(hdul)
    except Exception:
        return False


def read_hpf_goldilocks(file: Any, fiber: str = "Sci", **kwargs: Any) -> SpectrumList:
    """Read an HPF Goldilocks ``spectra.fits`` file: one `~specutils.Spectrum` per order.

    Parameters
    ----------
    file : str, path-like, file object or `~astropy.io.fits.HDUList`
        The Goldilocks file (any file name).
    fiber : {"Sci", "Sky", "Cal"}
        Which fiber to read; the science fiber by default.

    Returns
    -------
    specutils.SpectrumList
        28 spectra in the file's row order (increasing wavelength). Each has float64 flux
        in ``ct``, a `~astropy.nddata.StdDevUncertainty`, vacuum wavelengths in Angstrom,
        a boolean mask (True = no data: error not finite or ``<= 0``, or flux not finite)
        and ``meta = {"m": row index, "header": primary header, "instrumental_resolution":
        55000, "instrument": "HPF", "fiber": fiber}``. The header object is shared by the
        orders.

    Raises
    ------
    stellarai.errors.UnreadableFileError
        If the file is not a Goldilocks file.

    Examples
    --------
    >>> from specutils import SpectrumList
    >>> import stellarai.io  # registers the format
    >>> fname = "Goldilocks_20210212T072837_v1.0_0037.spectra.fits"
    >>> orders = SpectrumList.read(fname)  # doctest: +SKIP
    >>> orders[19].meta["m"], orders[19].meta["instrument"]  # doctest: +SKIP
    (19, 'HPF')
    """
    fiber_key = str(fiber).capitalize()
    if fiber_key not in _FIBERS:
        raise SpectrumInputError(f"fiber must be one of {list(_FIBERS)}, got {fiber!r}")
    name = source_name(file)
    with open_fits(file) as hdul:
        if not _is_goldilocks(hdul):
            raise UnreadableFileError(
                f"{name} is not an HPF Goldilocks file: expected INSTRUME='HPF' and HDUs "
                f"'Sci Flux', 'Sci Error', 'Sci Wavl'; found INSTRUME="
                f"{hdul[0].header.get('INSTRUME')!r} and HDUs {[h.name for h in hdul]}"
            )
        header = hdul[0].header.copy()
        flux = native(hdul[f"{fiber_key} Flux"].data, float)
        error = native(hdul[f"{fiber_key} Error"].data, float)
        wavl = native(hdul[f"{fiber_key} Wavl"].data, float)
    if not (flux.shape == error.shape == wavl.shape) or flux.ndim != 2:
        raise UnreadableFileError(
            f"{name}: {fiber_key} flux, error and wavelength images must share one 2-D "
            f"shape; found {flux.shape}, {error.shape}, {wavl.shape}"
        )
    with np.errstate(invalid="ignore"):
        masks = ~np.isfinite(flux) | ~np.isfinite(error) | ~(error > 0)
    spectra = []
    for m in range(flux.shape[0]):
        spectra.append(
            Spectrum(
                flux=flux[m] * u.ct,
                spectral_axis=wavl[m] * u.AA,
                uncertainty=StdDevUncertainty(error[m]),
                mask=masks[m].copy(),
                meta={
                    "m": m,
                    "header": header,
                    "instrumental_resolution": HPF_RESOLUTION,
                    "instrument": "HPF",
                    "fiber": fiber_key,
                },
            )
        )
    return SpectrumList(spectra)

