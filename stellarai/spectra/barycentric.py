"""Barycentric radial-velocity corrections computed offline from FITS headers.

:func:`barycentric_correction` reads the observatory, the target's coordinates and the
mid-exposure time from a header (or a spectrum's ``meta["header"]``) and calls
`astropy.coordinates.SkyCoord.radial_velocity_correction` with ``kind="barycentric"``.
Nothing is downloaded: the observatory comes from the offline table in
:mod:`stellarai.spectra.observatories` (never ``EarthLocation.of_site``), and the
computation runs with IERS auto-download and astropy's internet access switched off, so
astropy uses its bundled Earth-orientation tables and the built-in (ERFA) ephemeris.
Outside the bundled IERS table's time range the UT1-UTC and polar-motion values degrade
gracefully; the effect on the correction is well below 1 m/s.

Sign convention (astropy's): the correction is the observer's velocity towards the
target, so ``v_barycentric = v_measured + correction`` (to first order), and a wavelength
measured at the telescope maps to the barycentric frame as
``lambda_bary = lambda_obs * (1 + correction / c)``.

Header keywords used
--------------------
Site
    ``TELESCOP``, then ``OBSERVAT``, then ``INSTRUME`` (see
    :func:`~stellarai.spectra.observatories.observatory_from_header`).
Target (first pair found)
    ``QRA``/``QDEC`` (HPF queue position, sexagesimal hours/degrees, equinox ``QEQUINOX``);
    ``OBJRA``/``OBJDEC`` (IGRINS: degrees, or sexagesimal strings; equinox ``OBJEQUIN``
    or ``OBJEPOCH``); ``RA_2000``/``DEC_2000`` (HET TCS: RA in decimal *hours*, J2000);
    ``RA``/``DEC`` (degrees, or sexagesimal hours/degrees strings; equinox ``EQUINOX``).
Mid-exposure time (first rule that applies; UTC)
    mean of ``JD-OBS`` and ``JD-END``; mean of ``DATE-OBS`` and ``DATE-END``;
    ``DATE-OBS`` (+ ``UT``/``TIME-OBS`` when it holds only a date) plus half of
    ``EXPLNDR``, ``ITIME`` or ``EXPTIME`` seconds (HPF: DATE-OBS + EXPLNDR/2);
    ``MJD-OBS`` plus half the exposure.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from typing import Any, NoReturn

import astropy.units as u
import numpy as np
from astropy.constants import c
from astropy.coordinates import FK5, ICRS, EarthLocation, SkyCoord
from astropy.io import fits
from astropy.time import Time, TimeDelta
from astropy.utils import iers
from astropy.utils.data import conf as data_conf
from specutils import Spectrum, SpectrumList

from ..errors import SpectrumInputError, SpectrumTypeError
from .observatories import Observatory, get_observatory, observatory_from_header

__all__ = [
    "apply_barycentric_correction",
    "barycentric_correction",
    "mid_exposure_time",
    "offline_iers",
    "target_coordinates",
]

_EXPOSURE_KEYWORDS = ("EXPLNDR", "ITIME", "EXPTIME")


@contextlib.contextmanager
def offline_iers() -> Iterator[None]:
    """Context in which astropy may not download anything (IERS tables, data files).

    Examples
    --------
    >>> from astropy.utils import iers
    >>> with offline_iers():
    ...     iers.conf.auto_download
    False
    """
    with (
        iers.conf.set_temp("auto_download", False),
        # without downloads the bundled IERS-A predictions may be "too old": use them anyway
        iers.conf.set_temp("auto_max_age", None),
        iers.conf.set_temp("iers_degraded_accuracy", "ignore"),
        data_conf.set_temp("allow_internet", False),
        warnings.catch_warnings(),
    ):
        # Outside the bundled IERS-B range astropy extrapolates UT1-UTC and polar motion
        # (and says so); the effect on a barycentric correction is < 1 m/s.
        warnings.filterwarnings("ignore", message=r".*(polar motion|UT1-UTC|IERS).*")
        # Far from today ERFA flags a "dubious year" (unknown leap seconds): <= 1 s of time,
        # < 1 cm/s of correction.
        warnings.filterwarnings("ignore", message=r".*dubious year.*")
        yield


def _header_of(obj: Any, argname: str = "header_or_spectrum") -> Mapping[str, Any] | None:
    if obj is None:
        return None
    if isinstance(obj, SpectrumList):
        if len(obj) == 0:
            raise SpectrumInputError(f"{argname} is an empty SpectrumList: no header to read")
        obj = obj[0]
    if isinstance(obj, Spectrum):
        header = (obj.meta or {}).get("header")
        if header is None:
            raise SpectrumInputError(
                f"{argname} is a Spectrum without meta['header']; pass the FITS header, or "
                "target=, obstime= and observatory= explicitly"
            )
        return header
    if isinstance(obj, (fits.Header, Mapping)):
        return obj
    raise SpectrumTypeError(
        f"{argname} must be a FITS header (or mapping), a Spectrum or a SpectrumList, got "
        f"{type(obj).__name__}"
    )


def _get(header: Mapping[str, Any], key: str) -> Any:
    value = header.get(key)
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
    if value is None or isinstance(value, fits.card.Undefined):
        return None
    return value


def _missing(header: Mapping[str, Any] | None, what: str, keywords: str, arg: str) -> NoReturn:
    where = "the header" if header is not None else "no header was given and"
    raise SpectrumInputError(
        f"cannot determine the {what}: {where} has none of {keywords}; pass {arg}= explicitly"
    )


def _equinox_frame(value: Any) -> Any:
    if value is None:
        return ICRS()
    try:
        year = float(str(value).upper().lstrip("J"))
    except ValueError:
        return ICRS()
    return FK5(equinox=Time(year, format="jyear"))


def target_coordinates(header: Mapping[str, Any]) -> SkyCoord:
    """The target's sky position from a header (see the module docstring for keywords).

    Examples
    --------
    >>> c = target_coordinates({"OBJRA": 106.301325, "OBJDEC": -57.57048056,
    ...                         "OBJEPOCH": 2000.0})
    >>> round(float(c.icrs.ra.deg), 2), round(float(c.icrs.dec.deg), 2)
    (106.3, -57.57)
    """
    def parse(ra: Any, dec: Any, numeric_ra_unit: u.Unit, equinox: Any, keys: str) -> SkyCoord:
        frame = _equinox_frame(equinox)
        try:
            if isinstance(ra, str) or isinstance(dec, str):
                if isinstance(ra, str) and ":" not in ra and " " not in ra:
                    ra = float(ra)
                    ra_unit = numeric_ra_unit
                else:
                    ra_unit = u.hourangle
                return SkyCoord(ra, dec, unit=(ra_unit, u.deg), frame=frame)
            return SkyCoord(float(ra) * numeric_ra_unit, float(dec) * u.deg, frame=frame)
        except Exception as exc:
            raise SpectrumInputError(
                f"cannot parse the target position from header {keys} = ({ra!r}, {dec!r}): "
                f"{exc}"
            ) from exc

    rules = (
        ("QRA", "QDEC", u.hourangle, ("QEQUINOX",)),
        ("OBJRA", "OBJDEC", u.deg, ("OBJEQUIN", "OBJEPOCH")),
        ("RA_2000", "DEC_2000", u.hourangle, ()),
        ("RA", "DEC", u.deg, ("EQUINOX",)),
    )
    for ra_key, dec_key, numeric_unit, eq_keys in rules:
        ra, dec = _get(header, ra_key), _get(header, dec_key)
        if ra is None or dec is None:
            continue
        equinox = next((_get(header, k) for k in eq_keys if _get(header, k) is not None),
                       2000.0 if ra_key == "RA_2000" else None)
        return parse(ra, dec, numeric_unit, equinox, f"{ra_key}/{dec_key}")
    _missing(header, "target coordinates",
             "QRA/QDEC, OBJRA/OBJDEC, RA_2000/DEC_2000, RA/DEC", "target")


def _exposure_seconds(header: Mapping[str, Any]) -> float | None:
    for key in _EXPOSURE_KEYWORDS:
        value = _get(header, key)
        if value is not None:
            try:
                return float(value)
            except (TypeError, ValueError):
                continue
    return None


def mid_exposure_time(header: Mapping[str, Any]) -> Time:
    """The UTC time at mid-exposure from a header (see the module docstring).

    Examples
    --------
    >>> t = mid_exposure_time({"DATE-OBS": "2021-02-12T07:29:05", "EXPLNDR": 330.0})
    >>> t.isot
    '2021-02-12T07:31:50.000'
    """
    jd0, jd1 = _get(header, "JD-OBS"), _get(header, "JD-END")
    if jd0 is not None and jd1 is not None:
        return Time((float(jd0) + float(jd1)) / 2, format="jd", scale="utc")
    date_obs, date_end = _get(header, "DATE-OBS"), _get(header, "DATE-END")
    try:
        if date_obs is not None and date_end is not None and "T" in str(date_end):
            t0 = Time(str(date_obs), scale="utc")
            t1 = Time(str(date_end), scale="utc")
            return t0 + (t1 - t0) / 2
        exposure = _exposure_seconds(header)
        if date_obs is not None:
            text = str(date_obs)
            if "T" not in text:
                clock = _get(header, "UT") or _get(header, "TIME-OBS") or _get(header, "UTSTART")
                if isinstance(clock, str) and ":" in clock:
                    text = f"{text}T{clock}"
            start = Time(text, scale="utc")
        elif _get(header, "MJD-OBS") is not None:
            start = Time(float(_get(header, "MJD-OBS")), format="mjd", scale="utc")
        else:
            _missing(header, "observation time",
                     "JD-OBS/JD-END, DATE-OBS (+DATE-END or EXPLNDR/ITIME/EXPTIME), MJD-OBS",
                     "obstime")
    except SpectrumInputError:
        raise
    except Exception as exc:
        raise SpectrumInputError(
            f"cannot parse the observation time from header DATE-OBS={date_obs!r}: {exc}"
        ) from exc
    if exposure is None:
        raise SpectrumInputError(
            "cannot determine the mid-exposure time: the header gives the start "
            f"(DATE-OBS/MJD-OBS) but none of {', '.join(_EXPOSURE_KEYWORDS)} or "
            "JD-END/DATE-END; pass obstime= explicitly"
        )
    return start + TimeDelta(exposure / 2 * u.s)


def _location(observatory: Any, header: Mapping[str, Any] | None) -> EarthLocation:
    if isinstance(observatory, EarthLocation):
        return observatory
    if isinstance(observatory, Observatory):
        return observatory.location
    if isinstance(observatory, str):
        return get_observatory(observatory).location
    if observatory is not None:
        raise SpectrumTypeError(
            "observatory must be an EarthLocation, an Observatory or a site name, got "
            f"{type(observatory).__name__}"
        )
    if header is None:
        _missing(header, "observatory", "TELESCOP, OBSERVAT, INSTRUME", "observatory")
    return observatory_from_header(header).location


def barycentric_correction(
    header_or_spectrum: Any = None,
    *,
    observatory: EarthLocation | Observatory | str | None = None,
    target: SkyCoord | None = None,
    obstime: Time | None = None,
) -> u.Quantity:
    """Barycentric radial-velocity correction of an observation, computed offline.

    Parameters
    ----------
    header_or_spectrum : `~astropy.io.fits.Header`, mapping, Spectrum or SpectrumList, optional
        Where to read the site, target and time (a spectrum's ``meta["header"]``; for a
        SpectrumList, the first spectrum's). May be None when ``observatory``, ``target``
        and ``obstime`` are all given.
    observatory : `~astropy.coordinates.EarthLocation`, Observatory or str, optional
        Overrides the site found in the header; a string is looked up in
        :data:`~stellarai.spectra.observatories.OBSERVATORIES`.
    target : `~astropy.coordinates.SkyCoord`, optional
        Overrides the header's target position.
    obstime : `~astropy.time.Time`, optional
        Overrides the header's mid-exposure time.

    Returns
    -------
    astropy.units.Quantity
        The correction in km/s (scalar): add it to a measured radial velocity.

    Raises
    ------
    stellarai.errors.SpectrumInputError
        If a needed header keyword is missing (the message names the keywords looked
        for) or the observatory is unknown (the message lists the known ones and how to
        pass ``observatory=EarthLocation(...)``).

    Examples
    --------
    >>> import astropy.units as u
    >>> from astropy.coordinates import SkyCoord
    >>> from astropy.time import Time
    >>> v = barycentric_correction(observatory="het",
    ...                            target=SkyCoord("07h52m37s", "+55d12m34s"),
    ...                            obstime=Time("2021-02-12T07:31:50", scale="utc"))
    >>> round(float(v.to_value(u.km / u.s)), 2)
    -14.2
    """
    header = _header_of(header_or_spectrum)
    if target is None:
        if header is None:
            _missing(header, "target coordinates", "QRA/QDEC, OBJRA/OBJDEC, RA/DEC", "target")
        target = target_coordinates(header)
    elif not isinstance(target, SkyCoord):
        raise SpectrumTypeError(f"target must be a SkyCoord, got {type(target).__name__}")
    if obstime is None:
        if header is None:
            _missing(header, "observation time", "JD-OBS/JD-END, DATE-OBS", "obstime")
        obstime = mid_exposure_time(header)
    elif not isinstance(obstime, Time):
        raise SpectrumTypeError(f"obstime must be an astropy Time, got {type(obstime).__name__}")
    location = _location(observatory, header)
    with offline_iers():
        correction = target.radial_velocity_correction(
            kind="barycentric", obstime=obstime, location=location
        )
    return correction.to(u.km / u.s)


def apply_barycentric_correction(
    spectra: Spectrum | SpectrumList, correction: u.Quantity | None = None, **kwargs: Any
) -> Spectrum | SpectrumList:
    """Move spectra to the barycentric frame: ``lambda * (1 + correction / c)``.

    Parameters
    ----------
    spectra : Spectrum or SpectrumList
        Spectra in the observatory frame.
    correction : Quantity, optional
        The correction (velocity). By default computed with :func:`barycentric_correction`
        from ``spectra``'s header; ``kwargs`` are passed on to it.

    Returns
    -------
    Spectrum or SpectrumList
        New spectra (same flux, uncertainty, mask; meta copied) on the shifted spectral
        axis, with ``meta["barycentric_correction"]`` set to the correction in km/s.

    Examples
    --------
    >>> import astropy.units as u, numpy as np
    >>> from specutils import Spectrum
    >>> s = Spectrum(flux=np.ones(3) * u.one, spectral_axis=[1.0, 2.0, 3.0] * u.um)
    >>> shifted = apply_barycentric_correction(s, 29.9792458 * u.km / u.s)
    >>> shifted.spectral_axis.value
    array([1.0001, 2.0002, 3.0003])
    """
    if correction is None:
        correction = barycentric_correction(spectra, **kwargs)
    correction = u.Quantity(correction)
    if correction.size != 1:
        raise SpectrumInputError(
            f"correction must be a scalar velocity, got shape {correction.shape}"
        )
    try:
        beta = float((correction / c).to_value(u.dimensionless_unscaled))
    except u.UnitConversionError as exc:
        raise SpectrumInputError(
            f"correction must be a velocity (e.g. km/s), got unit {correction.unit}"
        ) from exc
    factor = 1.0 + beta

    def shift(s: Spectrum) -> Spectrum:
        if not isinstance(s, Spectrum):
            raise SpectrumTypeError(f"expected Spectrum objects, got {type(s).__name__}")
        meta = dict(s.meta or {})
        meta["barycentric_correction"] = float(correction.to_value(u.km / u.s))
        axis = s.spectral_axis
        if axis.unit.physical_type != "length":
            raise SpectrumInputError(
                f"the spectral axis must be a wavelength to apply the correction, got unit "
                f"{axis.unit}"
            )
        return Spectrum(
            flux=s.flux,
            spectral_axis=np.asarray(axis.value) * factor * axis.unit,
            uncertainty=None if s.uncertainty is None else type(s.uncertainty)(
                np.array(s.uncertainty.array), unit=s.uncertainty.unit
            ),
            mask=None if s.mask is None else np.array(s.mask, copy=True),
            meta=meta,
        )

    if isinstance(spectra, SpectrumList):
        return SpectrumList([shift(s) for s in spectra])
    return shift(spectra)
