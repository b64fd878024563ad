"""Barycentric corrections: checked against an independent low-precision computation.

The reference here does not use astropy's coordinate machinery: the Earth's orbital
velocity comes from the Astronomical Almanac's low-precision solar coordinates (section
C, "Sun": mean longitude, mean anomaly, ecliptic longitude) with the eccentricity term,
and the Earth's rotation from the GMST formula; both are projected on the target
direction. It neglects the Sun's motion about the barycentre and the Earth's about the
Earth-Moon barycentre (each <= 0.013 km/s), so it agrees with astropy to ~0.01 km/s
(the tests allow 0.05 km/s).
"""

from __future__ import annotations

import math
import urllib.request

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import EarthLocation, SkyCoord
from astropy.io import fits
from astropy.time import Time
from specutils import Spectrum, SpectrumList

import stellarai.io  # noqa: F401  (registers the readers)
from stellarai.errors import SpectrumInputError, SpectrumTypeError
from stellarai.io import read_spectrum_list
from stellarai.spectra.barycentric import (
    apply_barycentric_correction,
    barycentric_correction,
    mid_exposure_time,
    target_coordinates,
)
from stellarai.spectra.observatories import (
    OBSERVATORIES,
    get_observatory,
    known_observatories,
    observatory_from_header,
)

KMS = u.km / u.s


def low_precision_correction(ra_deg: float, dec_deg: float, jd: float, lon_deg: float,
                             lat_deg: float) -> float:
    """Observer's velocity towards (ra, dec) J2000 in km/s, without astropy coordinates."""
    n = jd - 2451545.0  # days from J2000.0 (UTC ~ TT to 70 s: irrelevant here)
    t = n / 36525.0
    # Astronomical Almanac low-precision Sun (ecliptic and equinox of date), degrees
    mean_lon = 280.460 + 0.9856474 * n
    g = math.radians(357.528 + 0.9856003 * n)
    lam = mean_lon + 1.915 * math.sin(g) + 0.020 * math.sin(2 * g)
    perigee = 282.9373 + 1.7195 * t  # longitude of the Sun's perigee, of date
    precession = 1.3970 * t  # general precession in longitude since J2000, degrees
    lam, perigee = math.radians(lam - precession), math.radians(perigee - precession)
    eps = math.radians(23.4393)  # obliquity at J2000
    e = 0.016709
    au_km, year_s = 1.495978707e8, 365.256363 * 86400.0
    v0 = 2 * math.pi * au_km / year_s / math.sqrt(1 - e * e)  # ~29.79 km/s
    # Earth's heliocentric velocity, ecliptic J2000 axes: perpendicular to the Sun direction
    vx = v0 * (math.sin(lam) + e * math.sin(perigee))
    vy = -v0 * (math.cos(lam) + e * math.cos(perigee))
    v_eq = np.array([vx, vy * math.cos(eps), vy * math.sin(eps)])
    ra, dec = math.radians(ra_deg), math.radians(dec_deg)
    nhat = np.array([math.cos(dec) * math.cos(ra), math.cos(dec) * math.sin(ra), math.sin(dec)])
    v_orbit = float(v_eq @ nhat)
    # Earth rotation: eastward speed omega*R*cos(lat); towards the target -sin(hour angle)
    gmst_deg = 15.0 * (18.697374558 + 24.06570982441908 * n)
    hour_angle = math.radians(gmst_deg + lon_deg - ra_deg)
    v_rot = -0.46510 * math.cos(math.radians(lat_deg)) * math.cos(dec) * math.sin(hour_angle)
    return v_orbit + v_rot


def _reference_for(header) -> float:
    coord = target_coordinates(header).icrs
    time = mid_exposure_time(header)
    site = observatory_from_header(header)
    return low_precision_correction(coord.ra.deg, coord.dec.deg, time.utc.jd, site.lon,
                                    site.lat)


# ----------------------------------------------------------------------------------------
# the reference itself: sanity checks that do not involve astropy
# ----------------------------------------------------------------------------------------
def test_reference_is_sane():
    # ecliptic pole: orbital velocity is perpendicular to it -> only rotation (< 0.47 km/s)
    for jd in (2459000.5, 2459100.5, 2459200.5):
        assert abs(low_precision_correction(270.0, 66.56, jd, 0.0, 0.0)) < 0.5
    # a target on the ecliptic sees the full orbital speed at some time of the year
    speeds = [low_precision_correction(0.0, 0.0, 2459000.5 + d, 0.0, 90.0)
              for d in range(0, 366, 5)]
    assert 29.0 < max(speeds) < 30.6 and -30.6 < min(speeds) < -29.0


# ----------------------------------------------------------------------------------------
# real headers
# ----------------------------------------------------------------------------------------
def test_hpf_headers_against_reference_and_pipeline(hpf_files):
    for path in hpf_files:
        header = fits.getheader(path)
        v = barycentric_correction(header)
        assert v.unit == KMS and v.isscalar
        ref = _reference_for(header)
        assert abs(v.to_value(KMS) - ref) < 0.05, (path.name, v, ref)
        # the HPF pipeline's own value (barycorrpy), BRVCORR in m/s
        assert v.to_value(KMS) == pytest.approx(header["BRVCORR"] / 1000.0, abs=0.002)


def test_igrins_header_against_reference(igrins_file):
    header = fits.getheader(igrins_file)
    assert observatory_from_header(header).key == "gemini_south"
    v = barycentric_correction(header)
    ref = _reference_for(header)
    assert abs(v.to_value(KMS) - ref) < 0.05, (v, ref)
    # mid-exposure = mean of JD-OBS and JD-END
    expected = (header["JD-OBS"] + header["JD-END"]) / 2
    assert mid_exposure_time(header).jd == pytest.approx(expected, abs=1e-9)


@pytest.mark.filterwarnings("ignore::astropy.utils.exceptions.AstropyUserWarning")
def test_accepts_spectrum_and_list(hpf_files, igrins_file):
    orders = read_spectrum_list(hpf_files[0])
    header = fits.getheader(hpf_files[0])
    v = barycentric_correction(header)
    assert barycentric_correction(orders) == v
    assert barycentric_correction(orders[3]) == v
    igrins = read_spectrum_list(igrins_file)
    assert barycentric_correction(igrins) == barycentric_correction(fits.getheader(igrins_file))


# ----------------------------------------------------------------------------------------
# synthetic headers, explicit arguments, errors
# ----------------------------------------------------------------------------------------
HPF_LIKE = {
    "OBSERVAT": "McDonald", "TELESCOP": "HET", "INSTRUME": "HPF",
    "QRA": "07:52:37.00", "QDEC": "+55:12:34.00", "QEQUINOX": 2000,
    "DATE-OBS": "2021-02-12T07:29:05.148777", "EXPLNDR": 330.15,
}


def test_explicit_arguments_match_header():
    v_header = barycentric_correction(HPF_LIKE)
    v_explicit = barycentric_correction(
        observatory=EarthLocation.from_geodetic(-104.014722 * u.deg, 30.681389 * u.deg,
                                                2026 * u.m),
        target=SkyCoord("07h52m37s", "+55d12m34s", frame="fk5"),
        obstime=Time("2021-02-12T07:29:05.148777", scale="utc") + 165.075 * u.s,
    )
    assert v_explicit.to_value(KMS) == pytest.approx(v_header.to_value(KMS), abs=1e-6)
    assert barycentric_correction(HPF_LIKE, observatory="het") == v_header
    # RA_2000 (decimal hours) / DEC_2000 as a fallback target
    alt = {k: v for k, v in HPF_LIKE.items() if k not in ("QRA", "QDEC")}
    alt.update({"RA_2000": 7.876944, "DEC_2000": 55.209444})
    assert barycentric_correction(alt).to_value(KMS) == pytest.approx(
        v_header.to_value(KMS), abs=0.002)


def test_sign_observer_approaching_target():
    # in late March the Earth moves towards RA ~ 18h on the ecliptic; in September away
    target = SkyCoord(270 * u.deg, -23.44 * u.deg)
    march = barycentric_correction(observatory="het", target=target,
                                   obstime=Time("2021-03-21T12:00:00", scale="utc"))
    september = barycentric_correction(observatory="het", target=target,
                                       obstime=Time("2021-09-23T12:00:00", scale="utc"))
    assert march.to_value(KMS) > 29 and september.to_value(KMS) < -29


def test_missing_keywords_are_named():
    with pytest.raises(SpectrumInputError, match="QRA/QDEC"):
        barycentric_correction({"TELESCOP": "HET", "DATE-OBS": "2021-02-12T07:29:05",
                                "EXPLNDR": 300.0})
    with pytest.raises(SpectrumInputError, match="JD-OBS"):
        barycentric_correction({"TELESCOP": "HET", "QRA": "07:52:37", "QDEC": "+55:12:34"})
    with pytest.raises(SpectrumInputError, match="EXPLNDR"):
        barycentric_correction({"TELESCOP": "HET", "QRA": "07:52:37", "QDEC": "+55:12:34",
                                "DATE-OBS": "2021-02-12T07:29:05"})
    no_site = {k: v for k, v in HPF_LIKE.items()
               if k not in ("OBSERVAT", "TELESCOP", "INSTRUME")}
    with pytest.raises(SpectrumInputError, match="TELESCOP, OBSERVAT, INSTRUME"):
        barycentric_correction(no_site)
    with pytest.raises(SpectrumInputError, match="target"):
        barycentric_correction(None, observatory="het")
    spectrum = Spectrum(flux=np.ones(3) * u.one, spectral_axis=np.arange(1.0, 4.0) * u.AA)
    with pytest.raises(SpectrumInputError, match="meta\\['header'\\]"):
        barycentric_correction(spectrum)
    with pytest.raises(SpectrumTypeError, match="header_or_spectrum"):
        barycentric_correction(42)
    with pytest.raises(SpectrumInputError, match="DATE-OBS"):
        barycentric_correction({**HPF_LIKE, "DATE-OBS": "not a date"})


def test_unknown_observatory_lists_known_and_explains():
    header = {**HPF_LIKE, "OBSERVAT": "Atlantis", "TELESCOP": "Nautilus", "INSTRUME": "X"}
    with pytest.raises(SpectrumInputError) as info:
        barycentric_correction(header)
    message = str(info.value)
    assert "TELESCOP='Nautilus'" in message and "het" in message
    assert "gemini_south" in message and "EarthLocation" in message
    with pytest.raises(SpectrumInputError, match="unknown observatory 'Atlantis'"):
        get_observatory("Atlantis")


def test_observatory_table():
    assert {"het", "gemini_south", "gemini_north", "keck", "apo", "kpno", "lasilla",
            "paranal", "calar_alto"} <= set(known_observatories())
    for site in OBSERVATORIES.values():
        assert -180 <= site.lon <= 180 and -90 <= site.lat <= 90 and site.source
        assert get_observatory(site.key) is site
    assert get_observatory("Keck II").key == "keck"
    assert get_observatory("ESO-VLT-U2").key == "paranal"
    assert observatory_from_header({"INSTRUME": "HPF"}).key == "het"
    het = get_observatory("het").location
    assert het.lat.deg == pytest.approx(30.681389)
    assert het.height.to_value(u.m) == pytest.approx(2026.0)


def test_never_downloads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("barycentric_correction tried to use the network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr("astropy.utils.data.download_file", refuse)
    # a recent date, past the measured part of astropy's bundled IERS tables
    v = barycentric_correction(observatory="gemini_south",
                               target=SkyCoord(106.3 * u.deg, -57.57 * u.deg),
                               obstime=Time("2026-11-01T00:00:00", scale="utc"))
    jd = Time("2026-11-01T00:00:00", scale="utc").jd
    site = get_observatory("gemini_south")
    assert abs(v.to_value(KMS) - low_precision_correction(106.3, -57.57, jd, site.lon,
                                                          site.lat)) < 0.05


def test_apply_barycentric_correction():
    header = fits.Header(HPF_LIKE)
    wave = np.linspace(15000.0, 15010.0, 11)
    spectrum = Spectrum(flux=np.ones(11) * u.one, spectral_axis=wave * u.AA,
                        mask=np.zeros(11, bool), meta={"header": header})
    v = barycentric_correction(header)
    shifted = apply_barycentric_correction(spectrum)
    beta = (v / (299792.458 * KMS)).to_value(u.one)
    np.testing.assert_allclose(shifted.spectral_axis.value, wave * (1 + beta), rtol=1e-15)
    assert shifted.meta["barycentric_correction"] == pytest.approx(v.to_value(KMS))
    assert "barycentric_correction" not in spectrum.meta
    both = apply_barycentric_correction(SpectrumList([spectrum, spectrum]), 10 * KMS)
    assert len(both) == 2 and both[1].meta["barycentric_correction"] == 10.0
    with pytest.raises(SpectrumInputError, match="velocity"):
        apply_barycentric_correction(spectrum, 3 * u.AA)
