"""Reader for IGRINS spectra in the old PLP ``.spec_a0v.fits`` layout (``stellarai-igrins-plp``).

The file holds six ``(28, 2048)`` images: primary ``SPEC_DIVIDE_A0V`` (telluric-corrected
flux, NaN where undefined), ``WAVELENGTH`` (vacuum, micron; rows in *decreasing*
wavelength, each row increasing), ``TGT_SPEC``, ``A0V_SPEC``, ``VEGA_SPEC`` and
``SPEC_DIVIDE_CONT``. The file is recognised by those HDU names and ``INSTRUME`` starting
with ``IGRINS``, never by its name. muler 0.5.6 cannot read this layout. (Layout and
"wavelength in um in vacuum": IGRINS-at-Gemini "After Observing" page,
https://sites.google.com/site/igrinsatgemini/after-observing.)

Decisions
---------
* Orders come back in order of **increasing wavelength** (the file's rows reversed), with
  the spectral axis converted to **Angstrom** (vacuum), stellarai's canonical unit.
* ``meta["m"]`` follows muler: ``98 + row`` in H band and ``71 + row`` in K band, where
  ``row`` is the row index in the file (row 0 = longest wavelength). These are the true
  echelle orders (the PLP's ``WAT2`` keywords give order 98 for row 0 in H band).
* Flux is ``SPEC_DIVIDE_A0V``, which equals ``TGT_SPEC / A0V_SPEC * VEGA_SPEC``: a
  relative flux of arbitrary scale, returned as dimensionless.
* Uncertainty: the PLP writes the variance of ``TGT_SPEC`` (ADU^2) to a companion file
  ``<stem>.variance.fits`` (primary HDU, same shape). It is propagated to
  ``SPEC_DIVIDE_A0V`` as ``sigma = sqrt(var) * |VEGA_SPEC / A0V_SPEC|``, treating the A0V
  standard and the Vega model as noise-free (the A0V variance is not in the files), so
  it is a lower bound. Without the companion file the spectra have no uncertainty and
  an `~astropy.utils.exceptions.AstropyUserWarning` says so.
* ``mask`` is True where the flux is NaN, where the uncertainty is not finite or ``<= 0``,
  and where ``A0V_SPEC <= 0`` (a telluric division by a non-positive standard is
  meaningless: such pixels have finite but garbage flux). NaN flux stays NaN.
* All arrays are float64 in native byte order.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.nddata import StdDevUncertainty
from astropy.utils.exceptions import AstropyUserWarning
from specutils import Spectrum, SpectrumList

from ..errors import SpectrumInputError, UnreadableFileError
from .read import native, open_fits, sniff_fits, source_name, source_path

__all__ = [
    "IGRINS_ORDER_OFFSETS",
    "IGRINS_RESOLUTION",
    "identify_igrins_plp",
    "igrins_variance_path",
    "read_igrins_plp",
]

IGRINS_RESOLUTION = 45_000
"""IGRINS resolving power used in ``meta["instrumental_resolution"]`` (muler's value)."""

IGRINS_ORDER_OFFSETS = {"H": 98, "K": 71}
"""Echelle order of the first row of an H- or K-band file (muler's convention)."""

_REQUIRED = ("WAVELENGTH", "TGT_SPEC", "A0V_SPEC", "VEGA_SPEC")


def _is_igrins_plp(hdul: fits.HDUList) -> bool:
    primary = hdul[0]
    if not str(primary.header.get("INSTRUME", "")).strip().upper().startswith("IGRINS"):
        return False
    if primary.name.upper() != "SPEC_DIVIDE_A0V":
        return False
    names = {hdu.name.upper() for hdu in hdul}
    return set(_REQUIRED) <= names


def identify_igrins_plp(origin: str, path: Any, fileobj: Any, *args: Any,
                        **kwargs: Any) -> bool:
    """specutils identifier: True for an IGRINS PLP ``spec_a0v`` file (by HDU names)."""
    try:
        with sniff_fits(origin, path, fileobj, args) as hdul:
            return hdul is not None and _is_igrins_plp(hdul)
    except Exception:
        return False


def igrins_variance_path(spec_path: str | Path) -> Path:
    """Path of the PLP variance file next to ``spec_path``: same stem, ``.variance.fits``.

    The stem is the file name up to its first dot, so
    ``SDCH_20201202_0059.spec_a0v.fits`` gives ``SDCH_20201202_0059.variance.fits``.

    Examples
    --------
    >>> igrins_variance_path("/data/SDCH_20201202_0059.spec_a0v.fits").name
    'SDCH_20201202_0059.variance.fits'
    """
    p = Path(spec_path)
    return p.with_name(p.name.split(".", 1)[0] + ".variance.fits")


def _band(header: fits.Header, wavelength_um: np.ndarray, name: str) -> str:
    band = str(header.get("BAND", "")).strip().upper()
    if band in IGRINS_ORDER_OFFSETS:
        return band
    median = float(np.nanmedian(wavelength_um))
    if 1.4 < median < 1.9:
        return "H"
    if 1.9 <= median < 2.6:
        return "K"
    raise UnreadableFileError(
        f"{name}: cannot tell the IGRINS band: header BAND={header.get('BAND')!r} and the "
        f"median wavelength {median:.3f} micron is in neither H (1.4-1.9) nor K (1.9-2.6)"
    )


def read_igrins_plp(file: Any, variance_file: str | Path | None = None,
                    **kwargs: Any) -> SpectrumList:
    """Read an IGRINS PLP ``.spec_a0v.fits`` file (old layout): one Spectrum per order.

    Parameters
    ----------
    file : str, path-like, file object or `~astropy.io.fits.HDUList`
        The ``spec_a0v`` file (any file name).
    variance_file : str or path-like, optional
        The PLP variance file. By default ``<stem>.variance.fits`` next to ``file`` is
        used when it exists (see :func:`igrins_variance_path`).

    Returns
    -------
    specutils.SpectrumList
        One spectrum per order in order of **increasing wavelength**; spectral axis in
        vacuum Angstrom, dimensionless flux (``SPEC_DIVIDE_A0V``), a
        `~astropy.nddata.StdDevUncertainty` propagated from the variance file, a mask
        (NaN flux, bad uncertainty, ``A0V_SPEC <= 0``) and ``meta = {"m": 98 + row (H) or
        71 + row (K), "header": primary header, "instrumental_resolution": 45000,
        "instrument": "IGRINS"}``.

    Warns
    -----
    astropy.utils.exceptions.AstropyUserWarning
        If no variance file is found; the spectra then have no uncertainty.

    Raises
    ------
    FileNotFoundError
        If an explicit ``variance_file`` does not exist.
    stellarai.errors.SpectrumInputError
        If the variance image's shape differs from the flux image's.

    Examples
    --------
    >>> from specutils import SpectrumList
    >>> import stellarai.io  # registers the format
    >>> orders = SpectrumList.read("SDCH_20201202_0059.spec_a0v.fits")  # doctest: +SKIP
    >>> orders[0].meta["m"], orders[-1].meta["m"]  # doctest: +SKIP
    (125, 98)
    """
    name = source_name(file)
    with open_fits(file) as hdul:
        if not _is_igrins_plp(hdul):
            raise UnreadableFileError(
                f"{name} is not an IGRINS PLP spec_a0v file: expected INSTRUME='IGRINS', a "
                f"primary HDU 'SPEC_DIVIDE_A0V' and HDUs {list(_REQUIRED)}; found INSTRUME="
                f"{hdul[0].header.get('INSTRUME')!r} and HDUs {[h.name for h in hdul]}"
            )
        header = hdul[0].header.copy()
        flux = native(hdul[0].data, float)
        wave_um = native(hdul["WAVELENGTH"].data, float)
        a0v = native(hdul["A0V_SPEC"].data, float)
        vega = native(hdul["VEGA_SPEC"].data, float)
    if not (flux.shape == wave_um.shape == a0v.shape == vega.shape) or flux.ndim != 2:
        raise UnreadableFileError(
            f"{name}: SPEC_DIVIDE_A0V, WAVELENGTH, A0V_SPEC and VEGA_SPEC must share one 2-D "
            f"shape; found {flux.shape}, {wave_um.shape}, {a0v.shape}, {vega.shape}"
        )

    if variance_file is not None:
        var_path: Path | None = Path(variance_file)
        if not var_path.exists():
            raise FileNotFoundError(f"variance_file not found: {variance_file}")
    else:
        spec_path = source_path(file)
        var_path = igrins_variance_path(spec_path) if spec_path is not None else None
        if var_path is not None and not var_path.exists():
            var_path = None

    sigma = None
    if var_path is not None:
        variance = native(fits.getdata(var_path, memmap=False), float)
        if variance.shape != flux.shape:
            raise SpectrumInputError(
                f"variance file {var_path} has shape {variance.shape}, but the flux in "
                f"{name} has shape {flux.shape}"
            )
        with np.errstate(invalid="ignore", divide="ignore"):
            sigma = np.sqrt(variance) * np.abs(vega / a0v)
    else:
        warnings.warn(
            f"no variance file for {name} (looked for "
            f"{igrins_variance_path(source_path(file) or Path(name)).name} next to it): "
            "the IGRINS spectra have no uncertainty; pass variance_file= to supply one",
            AstropyUserWarning,
            stacklevel=2,
        )

    with np.errstate(invalid="ignore"):
        mask = ~np.isfinite(flux) | ~(a0v > 0)
        if sigma is not None:
            mask |= ~np.isfinite(sigma) | ~(sigma > 0)

    # each row must increase in wavelength; flip any row stored the other way round
    for row in range(wave_um.shape[0]):
        if wave_um[row, -1] < wave_um[row, 0]:
            for arr in (flux, wave_um, mask) + ((sigma,) if sigma is not None else ()):
                arr[row] = arr[row, ::-1].copy()

    band = _band(header, wave_um, name)
    offset = IGRINS_ORDER_OFFSETS[band]
    wave_aa = (wave_um * u.micron).to_value(u.AA)
    spectra = []
    for row in range(flux.shape[0] - 1, -1, -1):
        spectra.append(
            Spectrum(
                flux=flux[row] * u.dimensionless_unscaled,
                spectral_axis=wave_aa[row] * u.AA,
                uncertainty=StdDevUncertainty(sigma[row]) if sigma is not None else None,
                mask=mask[row].copy(),
                meta={
                    "m": offset + row,
                    "header": header,
                    "instrumental_resolution": IGRINS_RESOLUTION,
                    "instrument": "IGRINS",
                },
            )
        )
    # orders of increasing wavelength: check rather than assume the PLP's row order
    starts = [s.spectral_axis[0].value for s in spectra]
    if np.any(np.diff(starts) <= 0):
        order = np.argsort(starts)
        spectra = [spectra[i] for i in order]
    return SpectrumList(spectra)

