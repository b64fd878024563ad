"""A small offline table of observatory sites, and their lookup from FITS headers.

stellarai never calls `astropy.coordinates.EarthLocation.of_site`, which downloads its site
list. The geodetic coordinates below (longitude east-positive, latitude, height above the
WGS84 ellipsoid / sea level as published) are copied from astropy-data's
``coordinates/sites.json`` (github.com/astropy/astropy-data, the table behind
``EarthLocation.of_site``); each entry's ``source`` repeats the origin that file gives
(IRAF observatory database, observatory web sites, Wikipedia). A site 100 m off changes a
barycentric correction by under 0.1 m/s, far below what these tables need to deliver.

Add a site at run time with ``OBSERVATORIES["key"] = Observatory(...)``, or pass
``observatory=EarthLocation(...)`` to :func:`~stellarai.spectra.barycentric_correction`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import astropy.units as u
from astropy.coordinates import EarthLocation

from ..errors import SpectrumInputError

__all__ = [
    "OBSERVATORIES",
    "Observatory",
    "get_observatory",
    "known_observatories",
    "observatory_from_header",
]

HEADER_KEYWORDS: tuple[str, ...] = ("TELESCOP", "OBSERVAT", "INSTRUME")
"""Header keywords looked up, most specific first."""


@dataclass(frozen=True)
class Observatory:
    """An observatory site: name, geodetic position and where the numbers come from.

    Parameters
    ----------
    key : str
        Short identifier (``"het"``).
    name : str
        Full name.
    lon, lat : float
        Geodetic longitude (degrees, east positive) and latitude (degrees).
    height : float
        Height in metres.
    source : str
        Where the coordinates were published.
    aliases : tuple of str
        Other names, matched against header values case- and punctuation-insensitively.
    instruments : tuple of str
        Instruments (``INSTRUME`` values) that only ever worked at this site.
    """

    key: str
    name: str
    lon: float
    lat: float
    height: float
    source: str
    aliases: tuple[str, ...] = ()
    instruments: tuple[str, ...] = field(default=())

    @property
    def location(self) -> EarthLocation:
        """The site as an `~astropy.coordinates.EarthLocation`."""
        return EarthLocation.from_geodetic(self.lon * u.deg, self.lat * u.deg, self.height * u.m)

    def names(self) -> tuple[str, ...]:
        """Key, name and aliases."""
        return (self.key, self.name, *self.aliases)


_SITES_JSON = "astropy-data coordinates/sites.json"

OBSERVATORIES: dict[str, Observatory] = {
    o.key: o
    for o in [
        Observatory("het", "Hobby-Eberly Telescope, McDonald Observatory", -104.014722,
                    30.681389, 2026.0, f"{_SITES_JSON} (Wikipedia)",
                    ("HET", "Hobby Eberly Telescope", "Hobby-Eberly"), ("HPF",)),
        Observatory("mcdonald", "McDonald Observatory", -104.021667, 30.671667, 2075.0,
                    f"{_SITES_JSON} (IRAF observatory database)",
                    ("McDonald Observatory", "McDonald", "Harlan J. Smith Telescope",
                     "Harlan J Smith", "2.7m", "Otto Struve Telescope")),
        Observatory("gemini_south", "Gemini South, Cerro Pachon", -70.736683, -30.240742,
                    2750.0, f"{_SITES_JSON} (CTIO web site)",
                    ("Gemini South", "Gemini-South", "Gemini-S", "GS", "Cerro Pachon",
                     "gems")),
        Observatory("gemini_north", "Gemini North, Maunakea", -155.469047, 19.823801,
                    4213.0, f"{_SITES_JSON} (CTIO web site)",
                    ("Gemini North", "Gemini-North", "Gemini-N", "GN", "gemn")),
        Observatory("keck", "W. M. Keck Observatory, Maunakea", -155.478333, 19.828333,
                    4160.0, f"{_SITES_JSON} (IRAF observatory database)",
                    ("W. M. Keck Observatory", "Keck Observatory", "Keck", "Keck I",
                     "Keck II", "Keck1", "Keck2")),
        Observatory("subaru", "Subaru Telescope, Maunakea", -155.476111, 19.825556, 4139.0,
                    f"{_SITES_JSON} (Subaru web site, 2015)", ("Subaru Telescope", "Subaru")),
        Observatory("irtf", "NASA Infrared Telescope Facility, Maunakea", -155.471999,
                    19.826218, 4168.0, f"{_SITES_JSON} (IRTF web site)",
                    ("NASA Infrared Telescope Facility", "IRTF")),
        Observatory("cfht", "Canada-France-Hawaii Telescope, Maunakea", -155.471667,
                    19.826667, 4215.0, f"{_SITES_JSON} (IRAF observatory database)",
                    ("Canada-France-Hawaii Telescope", "CFHT")),
        Observatory("apo", "Apache Point Observatory", -105.82, 32.78, 2798.0,
                    f"{_SITES_JSON} (IRAF observatory database)",
                    ("Apache Point Observatory", "Apache Point", "APO", "SDSS 2.5-M",
                     "ARC 3.5m")),
        Observatory("kpno", "Kitt Peak National Observatory", -111.6, 31.963333, 2120.0,
                    f"{_SITES_JSON} (IRAF observatory database)",
                    ("Kitt Peak National Observatory", "Kitt Peak", "KPNO", "Mayall")),
        Observatory("wiyn", "WIYN Observatory, Kitt Peak", -111.600619, 31.95805, 2091.0,
                    f"{_SITES_JSON} (WIYN 3.5m TCS)", ("WIYN", "WIYN 3.5m", "NEID")),
        Observatory("lasilla", "La Silla Observatory (ESO)", -70.73, -29.256667, 2347.0,
                    f"{_SITES_JSON} (IRAF observatory database)",
                    ("La Silla Observatory", "La Silla", "ESO-3.6", "ESO 3.6m")),
        Observatory("paranal", "Paranal Observatory (ESO)", -70.404987, -24.627439, 2669.0,
                    f"{_SITES_JSON} (official reference in VLTI raw data products)",
                    ("Paranal Observatory", "Cerro Paranal", "Paranal", "VLT", "ESO-VLT",
                     "ESO-VLT-U1", "ESO-VLT-U2", "ESO-VLT-U3", "ESO-VLT-U4")),
        Observatory("calar_alto", "Centro Astronomico Hispano-Aleman, Calar Alto",
                    -2.546111, 37.223611, 2168.0, f"{_SITES_JSON} (Wikipedia)",
                    ("Calar Alto", "Calar Alto Observatory", "CAHA", "CA-3.5",
                     "Observatorio de Calar Alto")),
        Observatory("lco", "Las Campanas Observatory", -70.701667, -29.003333, 2282.0,
                    f"{_SITES_JSON} (IRAF observatory database)",
                    ("Las Campanas Observatory", "Las Campanas", "LCO", "Magellan",
                     "Clay", "Baade")),
        Observatory("ctio", "Cerro Tololo Inter-American Observatory", -70.815, -30.165278,
                    2215.0, f"{_SITES_JSON} (IRAF observatory database)",
                    ("Cerro Tololo Interamerican Observatory", "Cerro Tololo", "CTIO")),
        Observatory("lapalma", "Roque de los Muchachos, La Palma", -17.88, 28.758333,
                    2327.0, f"{_SITES_JSON} (IRAF observatory database)",
                    ("Roque de los Muchachos", "La Palma", "ORM", "TNG", "NOT", "WHT",
                     "GTC")),
        Observatory("lick", "Lick Observatory", -121.636667, 37.343333, 1290.0,
                    f"{_SITES_JSON} (IRAF observatory database)",
                    ("Lick Observatory", "Lick", "Shane")),
        Observatory("palomar", "Palomar Observatory (Hale Telescope)", -116.863, 33.356,
                    1706.0, f"{_SITES_JSON} (IRAF observatory database)",
                    ("Palomar", "Palomar Observatory", "Hale Telescope", "Hale", "P200")),
        Observatory("mmt", "MMT Observatory, Mt. Hopkins", -110.885, 31.688333, 2608.0,
                    f"{_SITES_JSON} (IRAF observatory database)",
                    ("MMT", "Multiple Mirror Telescope")),
        Observatory("lbt", "Large Binocular Telescope, Mt. Graham", -109.8719, 32.7016,
                    2902.0, f"{_SITES_JSON} (LBT web site)",
                    ("Large Binocular Telescope", "LBT", "Mt Graham")),
        Observatory("dct", "Lowell Discovery Telescope, Happy Jack", -111.422515, 34.744305,
                    2337.0, f"{_SITES_JSON} (site GPS 2013-07-08)",
                    ("Lowell Discovery Telescope", "Discovery Channel Telescope", "DCT",
                     "LDT")),
        Observatory("salt", "Southern African Large Telescope, Sutherland", 20.810808,
                    -32.375823, 1798.0, f"{_SITES_JSON} (SALT web site)",
                    ("Southern African Large Telescope", "SALT", "SAAO", "Sutherland")),
        Observatory("aao", "Anglo-Australian Observatory, Siding Spring", 149.066086,
                    -31.277039, 1164.0, f"{_SITES_JSON} (IRAF observatory database)",
                    ("Anglo-Australian Observatory", "AAO", "AAT",
                     "Anglo-Australian Telescope")),
        Observatory("ohp", "Observatoire de Haute-Provence", 5.713333, 43.930833, 650.0,
                    f"{_SITES_JSON} (OHP web site)",
                    ("Observatoire de Haute Provence", "OHP", "Haute-Provence")),
    ]
}
"""Known sites, by key. Values are :class:`Observatory` records."""


def _norm(text: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", str(text).lower())


def known_observatories() -> list[str]:
    """Keys of the known sites.

    Examples
    --------
    >>> "het" in known_observatories() and "gemini_south" in known_observatories()
    True
    """
    return sorted(OBSERVATORIES)


def _match(value: str) -> Observatory | None:
    target = _norm(value)
    if not target:
        return None
    exact = [o for o in OBSERVATORIES.values() if target in {_norm(n) for n in o.names()}]
    if len(exact) == 1:
        return exact[0]
    if len(exact) > 1:
        return None
    # "Keck II" -> "keck", "ESO-VLT-U2" -> "esovlt": the longest name the value starts with
    best: list[tuple[int, Observatory]] = []
    for o in OBSERVATORIES.values():
        for n in o.names():
            nn = _norm(n)
            if len(nn) >= 4 and target.startswith(nn):
                best.append((len(nn), o))
    if not best:
        return None
    longest = max(length for length, _ in best)
    hits = {o.key: o for length, o in best if length == longest}
    return next(iter(hits.values())) if len(hits) == 1 else None


def _unknown_message(what: str) -> str:
    return (
        f"{what}; known observatories: {', '.join(known_observatories())}. Pass "
        "observatory=EarthLocation.from_geodetic(lon, lat, height) (or a known key such as "
        "'het') to barycentric_correction, or add an entry to "
        "stellarai.spectra.observatories.OBSERVATORIES"
    )


def get_observatory(name: str) -> Observatory:
    """Look up a site by key, name or alias (case and punctuation do not matter).

    Examples
    --------
    >>> get_observatory("Gemini South").key
    'gemini_south'
    >>> round(float(get_observatory("HET").location.lat.deg), 3)
    30.681
    """
    found = _match(name)
    if found is None:
        raise SpectrumInputError(_unknown_message(f"unknown observatory {name!r}"))
    return found


def observatory_from_header(header: Mapping[str, Any]) -> Observatory:
    """Find the site of an observation from TELESCOP, then OBSERVAT, then INSTRUME.

    ``INSTRUME`` only identifies instruments tied to one telescope (HPF: HET).

    Examples
    --------
    >>> observatory_from_header({"OBSERVAT": "McDonald", "TELESCOP": "HET"}).key
    'het'
    >>> observatory_from_header({"OBSERVAT": "Gemini Observatory",
    ...                          "TELESCOP": "Gemini South"}).key
    'gemini_south'
    """
    seen = {}
    for key in HEADER_KEYWORDS:
        value = header.get(key)
        if value is None or not str(value).strip():
            continue
        seen[key] = str(value).strip()
        if key == "INSTRUME":
            for o in OBSERVATORIES.values():
                if _norm(value) in {_norm(i) for i in o.instruments}:
                    return o
            continue
        found = _match(str(value))
        if found is not None:
            return found
    if not seen:
        what = (f"the header has none of the keywords {', '.join(HEADER_KEYWORDS)} that name "
                "the observatory")
    else:
        what = "no known observatory matches the header's " + ", ".join(
            f"{k}={v!r}" for k, v in seen.items()
        )
    raise SpectrumInputError(_unknown_message(what))
