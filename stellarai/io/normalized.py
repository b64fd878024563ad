"""stellarai's own spectrum files: ``stellarai-fits`` and ``stellarai-ecsv``.

Both formats round-trip what specutils' ``tabular-fits`` loses: **dimensionless
(normalized) flux** as well as physical units, the uncertainty *type* (standard
deviation, variance, inverse variance, or unknown), the mask (any dtype), the spectral-axis
unit, the array dtypes (float32 stays float32), JSON-serializable meta, and a FITS header
held in ``meta["header"]``. They hold one `~specutils.Spectrum` or a whole
`~specutils.SpectrumList` (for example the orders of an echelle spectrum), and read back
as the same kind. Nothing is ever pickled.

Files are recognised by a marker stellarai writes, never by name, so these formats do not
claim other FITS or ECSV files: the ``STLRAI`` keyword (FITS primary header) or table meta
key (ECSV), whose value is the format version (currently 1).

Layout of ``stellarai-fits``
----------------------------
* HDU 0 (primary, no data): ``STLRAI`` (format version), ``STLKIND`` (``'Spectrum'`` or
  ``'SpectrumList'``), ``STLNSPEC`` (number of spectra), followed by the cards of the first
  spectrum's ``meta["header"]`` (if any), so ``fitsheader`` shows the observation's header.
* HDU ``('SPECTRUM', i + 1)`` for spectrum ``i`` of the list: a binary table with columns
  ``SPECTRAL_AXIS``, ``FLUX`` and, when present, ``UNCERTAINTY`` and ``MASK``. Its header
  holds ``STLWUNIT`` / ``STLFUNIT`` (spectral-axis and flux units, astropy generic
  strings, ``''`` = dimensionless), ``STLUTYPE`` (``std``, ``var``, ``ivar`` or
  ``unknown``), ``STLHDR`` (which header HDU holds ``meta["header"]``: 0 = primary, j =
  ``('HEADER', j)``; absent = none), ``STLRV`` (radial velocity, km/s, when non-zero) and
  ``STLMETA`` (the rest of ``meta`` as JSON, a long-string keyword). ``TUNITn`` are
  written too, for other tools.
* HDU ``('HEADER', j)`` (no data): further distinct ``meta["header"]`` headers. Spectra that
  share a header (the orders of one exposure) share one copy.

FITS structural keywords describe the HDU a header came from, not the spectrum, and are
not kept in ``meta["header"]``: ``SIMPLE``, ``BITPIX``, ``NAXIS``/``NAXISn``, ``EXTEND``,
``XTENSION``, ``PCOUNT``, ``GCOUNT``, ``GROUPS``, ``TFIELDS``, ``THEAP``, ``EXTNAME``,
``EXTVER``, ``EXTLEVEL``, ``BSCALE``, ``BZERO``, ``BLANK``, ``CHECKSUM``, ``DATASUM`` and
the table column keywords (``TTYPEn``, ``TFORMn``, ``TUNITn``...). Every other card,
including duplicates, ``COMMENT``, ``HISTORY`` and long strings, round-trips in order.

Layout of ``stellarai-ecsv``
----------------------------
One table with columns ``spectral_axis``, ``flux``, ``uncertainty`` (if any spectrum has
one) and ``mask`` (if any spectrum has one) and, for a SpectrumList, ``spectrum_index``
(position in the list; rows of one spectrum are contiguous). Column units are set when
all spectra share them, for readers of the file; the authoritative description lives in
the table meta: ``STLRAI`` (format version) and ``stellarai`` = ``{kind, spectra: [one
record per spectrum: units, dtypes, uncertainty type, number of pixels, header index,
meta as JSON], headers: [FITS header text]}``. ECSV keeps headers whole (structural
keywords included). Floats are written with round-trip precision, so values read back
bit-identical.

Meta
----
``meta`` is written as JSON. Numbers, strings, booleans, None, lists and dicts round-trip;
numpy scalars become Python numbers; `~astropy.units.Quantity` and `numpy.ndarray` values
are tagged and restored. Keys whose values cannot be serialized (for example muler's
``meta["sky"]`` spectra) are dropped with an `~astropy.utils.exceptions.AstropyUserWarning`.

Examples
--------
>>> import os, tempfile
>>> import astropy.units as u, numpy as np
>>> from astropy.nddata import InverseVariance
>>> from specutils import Spectrum
>>> import stellarai.io
>>> s = Spectrum(flux=np.array([1.0, 0.9, 1.02]) * u.one,
...              spectral_axis=np.array([15000.0, 15000.1, 15000.2]) * u.AA,
...              uncertainty=InverseVariance(np.full(3, 1e4)),
...              mask=np.array([False, True, False]), meta={"normalized": True})
>>> fname = os.path.join(tempfile.mkdtemp(), "star.fits")
>>> s.write(fname, format="stellarai-fits")
>>> back = Spectrum.read(fname)              # identified by content
>>> back.flux.unit == u.one, type(back.uncertainty).__name__, back.meta["normalized"]
(True, 'InverseVariance', True)
"""

from __future__ import annotations

import copy
import json
import re
import warnings
from typing import Any

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.nddata import (
    InverseVariance,
    NDUncertainty,
    StdDevUncertainty,
    UnknownUncertainty,
    VarianceUncertainty,
)
from astropy.table import Table
from astropy.table.meta import get_header_from_yaml
from astropy.utils.exceptions import AstropyUserWarning
from specutils import Spectrum, SpectrumList
from specutils.io.registers import custom_writer, data_loader

from ..errors import SpectrumInputError, SpectrumTypeError, UnreadableFileError
from .read import native, open_fits, peek, sniff_fits, source_name

__all__ = [
    "FORMAT_VERSION",
    "identify_stellarai_ecsv",
    "identify_stellarai_fits",
    "read_stellarai_ecsv",
    "read_stellarai_fits",
    "strip_structural_keywords",
    "write_stellarai_ecsv",
    "write_stellarai_fits",
]

FORMAT_VERSION = 1
"""Version of the stellarai file layout, written as ``STLRAI``."""

_MARKER = "STLRAI"
_RESERVED_PRIMARY = ("STLRAI", "STLKIND", "STLNSPEC")
_UNC_TYPES: dict[str, type[NDUncertainty]] = {
    "std": StdDevUncertainty,
    "var": VarianceUncertainty,
    "ivar": InverseVariance,
    "unknown": UnknownUncertainty,
}
_STRUCTURAL = re.compile(
    r"^(SIMPLE|BITPIX|NAXIS\d*|EXTEND|XTENSION|PCOUNT|GCOUNT|GROUPS|TFIELDS|THEAP|EXTNAME"
    r"|EXTVER|EXTLEVEL|BSCALE|BZERO|BLANK|CHECKSUM|DATASUM|END"
    r"|T(TYPE|FORM|UNIT|DIM|NULL|SCAL|ZERO|DISP|DMIN|DMAX|LMIN|LMAX)\d+)$"
)


# ----------------------------------------------------------------------------------------
# meta <-> JSON
# ----------------------------------------------------------------------------------------
def _json_default(obj: Any) -> Any:
    if isinstance(obj, u.Quantity):
        return {"__quantity__": obj.value.tolist(), "unit": obj.unit.to_string(),
                "dtype": obj.dtype.str}
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": obj.dtype.str}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, u.UnitBase):
        return {"__unit__": obj.to_string()}
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _json_hook(obj: dict) -> Any:
    if "__quantity__" in obj:
        values = np.asarray(obj["__quantity__"], dtype=obj.get("dtype"))
        return values * u.Unit(obj["unit"])  # also builds logarithmic quantities (dex, mag)
    if "__ndarray__" in obj:
        return np.asarray(obj["__ndarray__"], dtype=obj.get("dtype"))
    if "__unit__" in obj:
        return u.Unit(obj["__unit__"])
    return obj


def _meta_to_json(meta: Any) -> tuple[str, list[str]]:
    """JSON text of ``meta`` (without a FITS ``header``) and the keys that were dropped."""
    out: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in dict(meta or {}).items():
        if key == "header" and isinstance(value, fits.Header):
            continue
        try:
            json.dumps(value, default=_json_default)
        except (TypeError, ValueError):
            dropped.append(str(key))
            continue
        out[str(key)] = value
    return json.dumps(out, default=_json_default), dropped


def _warn_dropped(dropped: dict[int, list[str]], n_spectra: int) -> None:
    """One warning per write for the meta keys that could not be serialized."""
    if not dropped:
        return
    keys = sorted({k for ks in dropped.values() for k in ks})
    if n_spectra == 1:
        which = "the spectrum"
    elif len(dropped) == n_spectra:
        which = f"all {n_spectra} spectra"
    else:
        shown = sorted(dropped)[:10]
        which = f"spectra {shown}{'...' if len(dropped) > 10 else ''}"
    warnings.warn(
        f"meta keys {keys} of {which} are not JSON-serializable and were not written",
        AstropyUserWarning,
        stacklevel=5,  # the caller of Spectrum(List).write
    )


def _json_to_meta(text: str) -> dict:
    return json.loads(text, object_hook=_json_hook) if text else {}


# ----------------------------------------------------------------------------------------
# decomposing a Spectrum into arrays + a record
# ----------------------------------------------------------------------------------------
def _as_list(data: Any, argname: str = "data") -> tuple[str, list[Spectrum]]:
    if isinstance(data, SpectrumList):
        spectra = list(data)
        kind = "SpectrumList"
    elif isinstance(data, Spectrum):
        spectra = [data]
        kind = "Spectrum"
    else:
        raise SpectrumTypeError(
            f"{argname} must be a specutils Spectrum or SpectrumList, got {type(data).__name__}"
        )
    for i, s in enumerate(spectra):
        if not isinstance(s, Spectrum):
            raise SpectrumTypeError(
                f"{argname}[{i}] must be a specutils Spectrum, got {type(s).__name__}"
            )
        if s.flux.ndim != 1:
            raise SpectrumInputError(
                f"{argname}[{i}] has a {s.flux.ndim}-D flux of shape {s.flux.shape}; the "
                "stellarai formats store 1-D spectra (put several in a SpectrumList)"
            )
    if not spectra:
        raise SpectrumInputError(f"{argname} is an empty SpectrumList: nothing to write")
    return kind, spectra


def _uncertainty_type(unc: NDUncertainty | None, where: str) -> str | None:
    if unc is None:
        return None
    for name, cls in _UNC_TYPES.items():
        if type(unc) is cls:
            return name
    for name, cls in _UNC_TYPES.items():
        if isinstance(unc, cls):
            return name
    raise SpectrumTypeError(
        f"{where}: uncertainty must be StdDevUncertainty, VarianceUncertainty, "
        f"InverseVariance or UnknownUncertainty, got {type(unc).__name__}"
    )


def _uncertainty_values(spec: Spectrum, utype: str) -> np.ndarray:
    unc = spec.uncertainty
    arr = np.asarray(unc.array)
    if utype == "unknown" or unc.unit is None:
        return arr
    funit = spec.flux.unit
    implied = {"std": funit, "var": funit**2, "ivar": funit**-2}[utype]
    if unc.unit == implied:
        return arr
    return (arr * unc.unit).to_value(implied)


def _decompose(spec: Spectrum, where: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    arrays: dict[str, np.ndarray] = {
        "spectral_axis": np.asarray(spec.spectral_axis.value),
        "flux": np.asarray(spec.flux.value),
    }
    utype = _uncertainty_type(spec.uncertainty, where)
    if utype is not None:
        arrays["uncertainty"] = _uncertainty_values(spec, utype)
    if spec.mask is not None:
        mask = np.asarray(spec.mask)
        if mask.shape != arrays["flux"].shape:
            raise SpectrumInputError(
                f"{where}: mask has shape {mask.shape}, flux has {arrays['flux'].shape}"
            )
        arrays["mask"] = mask
    rv = spec.spectral_axis.radial_velocity
    record: dict[str, Any] = {
        "n": int(arrays["flux"].size),
        "spectral_axis_unit": spec.spectral_axis.unit.to_string(),
        "flux_unit": spec.flux.unit.to_string(),
        "uncertainty_type": utype,
        "dtypes": {k: v.dtype.newbyteorder("=").str for k, v in arrays.items()},
        "radial_velocity": float(rv.to_value(u.km / u.s)) if rv is not None else 0.0,
    }
    record["meta"], record["dropped"] = _meta_to_json(spec.meta)
    return arrays, record


def _compose(arrays: dict[str, np.ndarray], record: dict[str, Any],
             header: fits.Header | None) -> Spectrum:
    dtypes = record.get("dtypes", {})

    def col(key: str) -> np.ndarray:
        dtype = np.dtype(dtypes[key]).newbyteorder("=") if key in dtypes else None
        return native(arrays[key], dtype)

    utype = record.get("uncertainty_type")
    uncertainty = _UNC_TYPES[utype](col("uncertainty")) if utype else None
    mask = col("mask") if "mask" in arrays else None
    meta = _json_to_meta(record.get("meta", ""))
    if header is not None:
        meta["header"] = header
    kwargs: dict[str, Any] = {}
    rv = record.get("radial_velocity") or 0.0
    if rv:
        kwargs["radial_velocity"] = rv * u.km / u.s
    return Spectrum(
        flux=col("flux") * u.Unit(record["flux_unit"]),
        spectral_axis=col("spectral_axis") * u.Unit(record["spectral_axis_unit"]),
        uncertainty=uncertainty,
        mask=mask,
        meta=meta,
        **kwargs,
    )


def _unique_headers(spectra: list[Spectrum]) -> tuple[list[fits.Header], list[int | None]]:
    headers: list[fits.Header] = []
    texts: list[str] = []
    index: list[int | None] = []
    for s in spectra:
        h = (s.meta or {}).get("header")
        if not isinstance(h, fits.Header):
            index.append(None)
            continue
        for j, known in enumerate(headers):
            if h is known:
                index.append(j)
                break
        else:
            text = h.tostring()
            if text in texts:
                index.append(texts.index(text))
            else:
                headers.append(h)
                texts.append(text)
                index.append(len(headers) - 1)
    return headers, index


def strip_structural_keywords(header: fits.Header) -> fits.Header:
    """Copy of ``header`` without FITS structural keywords and stellarai's own markers.

    These keywords describe the HDU a header was read from (``SIMPLE``, ``BITPIX``,
    ``NAXISn``, ``EXTNAME``, ``TTYPEn``...), not the observation; this is what
    ``stellarai-fits`` keeps of ``meta["header"]``.

    Examples
    --------
    >>> from astropy.io import fits
    >>> h = fits.PrimaryHDU().header
    >>> h["OBJECT"] = "HD 1"
    >>> list(strip_structural_keywords(h))
    ['OBJECT']
    """
    out = fits.Header()
    for card in header.cards:
        key = card.keyword
        if _STRUCTURAL.match(key) or key in _RESERVED_PRIMARY:
            continue
        out.append(copy.copy(card), useblanks=False, bottom=True)
    return out


# ----------------------------------------------------------------------------------------
# FITS
# ----------------------------------------------------------------------------------------
def _fits_unit(unit_string: str) -> str | None:
    try:
        text = u.Unit(unit_string).to_string("fits")
    except (ValueError, TypeError):
        return None
    return text or None


def identify_stellarai_fits(origin: str, path: Any, fileobj: Any, *args: Any,
                            **kwargs: Any) -> bool:
    """specutils identifier: True for a FITS file whose primary header has ``STLRAI``."""
    try:
        with sniff_fits(origin, path, fileobj, args) as hdul:
            return hdul is not None and _MARKER in hdul[0].header
    except Exception:
        return False


def write_stellarai_fits(data: Spectrum | SpectrumList, file_name: Any,
                         overwrite: bool = False, **kwargs: Any) -> None:
    """Write a Spectrum or SpectrumList in the ``stellarai-fits`` layout.

    Parameters
    ----------
    data : specutils.Spectrum or specutils.SpectrumList
        1-D spectra; dimensionless flux is fine.
    file_name : str or path-like
        Output file.
    overwrite : bool
        Replace an existing file.

    Examples
    --------
    ``spectrum.write("out.fits", format="stellarai-fits")`` or
    ``orders.write("out.fits", format="stellarai-fits", overwrite=True)``.
    """
    kind, spectra = _as_list(data)
    headers, header_index = _unique_headers(spectra)
    primary_header = strip_structural_keywords(headers[0]) if headers else fits.Header()
    primary = fits.PrimaryHDU(header=primary_header)
    primary.header["STLRAI"] = (FORMAT_VERSION, "stellarai spectrum file format version")
    primary.header["STLKIND"] = (kind, "Spectrum or SpectrumList")
    primary.header["STLNSPEC"] = (len(spectra), "number of spectra (SPECTRUM HDUs)")
    hdus: list[Any] = [primary]
    dropped: dict[int, list[str]] = {}
    for i, spec in enumerate(spectra):
        arrays, record = _decompose(spec, f"spectrum {i}")
        if keys := record.pop("dropped"):
            dropped[i] = keys
        table = Table({k.upper(): v for k, v in arrays.items()}, copy=False)
        hdu = fits.table_to_hdu(table)
        hdr = hdu.header
        hdr["EXTNAME"] = "SPECTRUM"
        hdr["EXTVER"] = i + 1
        for k, colname in enumerate(table.colnames, start=1):
            base = {"SPECTRAL_AXIS": record["spectral_axis_unit"], "FLUX": record["flux_unit"]}
            unit = base.get(colname)
            if colname == "UNCERTAINTY" and record["uncertainty_type"] != "unknown":
                funit = u.Unit(record["flux_unit"])
                implied = {"std": funit, "var": funit**2, "ivar": funit**-2}
                unit = implied[record["uncertainty_type"]].to_string()
            tunit = _fits_unit(unit) if unit is not None else None
            if tunit:
                hdr[f"TUNIT{k}"] = tunit
        hdr["STLWUNIT"] = (record["spectral_axis_unit"], "spectral axis unit (astropy)")
        hdr["STLFUNIT"] = (record["flux_unit"], "flux unit (astropy); '' = dimensionless")
        if record["uncertainty_type"] is not None:
            hdr["STLUTYPE"] = (record["uncertainty_type"], "uncertainty: std, var, ivar")
        if header_index[i] is not None:
            hdr["STLHDR"] = (header_index[i], "header HDU: 0 = primary, j = ('HEADER', j)")
        if record["radial_velocity"]:
            hdr["STLRV"] = (record["radial_velocity"], "[km/s] radial velocity")
        hdr["STLMETA"] = record["meta"]
        hdus.append(hdu)
    for j, header in enumerate(headers[1:], start=1):
        extra = fits.ImageHDU(header=strip_structural_keywords(header))
        extra.header["EXTNAME"] = "HEADER"
        extra.header["EXTVER"] = j
        hdus.append(extra)
    _warn_dropped(dropped, len(spectra))
    # "fix": repair (and warn about) non-standard cards a pipeline header may carry
    fits.HDUList(hdus).writeto(file_name, overwrite=overwrite, output_verify="fix")


def _read_fits(file: Any) -> tuple[str, list[Spectrum]]:
    name = source_name(file)
    with open_fits(file) as hdul:
        primary = hdul[0].header
        if _MARKER not in primary:
            raise UnreadableFileError(
                f"{name} is not a stellarai-fits file: no {_MARKER} keyword in its primary "
                "header"
            )
        version = int(primary[_MARKER])
        if version > FORMAT_VERSION:
            raise UnreadableFileError(
                f"{name} uses stellarai-fits version {version}; this stellarai reads up to "
                f"version {FORMAT_VERSION}: upgrade stellarai"
            )
        kind = str(primary.get("STLKIND", "SpectrumList"))
        tables = sorted(
            (hdu for hdu in hdul if hdu.name.upper() == "SPECTRUM"),
            key=lambda h: h.ver,
        )
        headers: dict[int, fits.Header] = {}

        def header_for(j: int) -> fits.Header:
            if j not in headers:
                src = primary if j == 0 else hdul["HEADER", j].header
                headers[j] = strip_structural_keywords(src)
            return headers[j]

        spectra = []
        for hdu in tables:
            hdr = hdu.header
            data = hdu.data
            arrays = {k.lower(): np.asarray(data[k]) for k in data.columns.names}
            record = {
                "spectral_axis_unit": hdr.get("STLWUNIT", ""),
                "flux_unit": hdr.get("STLFUNIT", ""),
                "uncertainty_type": hdr.get("STLUTYPE"),
                "radial_velocity": hdr.get("STLRV", 0.0),
                "meta": hdr.get("STLMETA", ""),
            }
            j = hdr.get("STLHDR")
            spectra.append(_compose(arrays, record, header_for(int(j)) if j is not None else None))
    expected = primary.get("STLNSPEC")
    if expected is not None and expected != len(spectra):
        raise UnreadableFileError(
            f"{name}: STLNSPEC says {expected} spectra but {len(spectra)} SPECTRUM HDUs were "
            "found (truncated file?)"
        )
    return kind, spectra


def read_stellarai_fits(file: Any, **kwargs: Any) -> SpectrumList:
    """Read a ``stellarai-fits`` file into a `~specutils.SpectrumList`."""
    return SpectrumList(_read_fits(file)[1])


def _read_fits_single(file: Any, **kwargs: Any) -> Spectrum:
    _, spectra = _read_fits(file)
    return _single(spectra, file)


def _single(spectra: list[Spectrum], file: Any) -> Spectrum:
    if len(spectra) != 1:
        raise SpectrumInputError(
            f"{source_name(file)} holds {len(spectra)} spectra, not one: read it with "
            "SpectrumList.read(...) or stellarai.io.read_spectrum_list(...)"
        )
    return spectra[0]


# ----------------------------------------------------------------------------------------
# ECSV
# ----------------------------------------------------------------------------------------
def _ecsv_header_lines(path: Any, fileobj: Any, limit: int = 64 * 2**20) -> list[str]:
    lines: list[bytes] = []
    total = 0

    def consume(f: Any) -> None:
        nonlocal total
        for raw in f:
            if isinstance(raw, str):
                raw = raw.encode("utf-8")
            if not raw.startswith(b"#"):
                break
            lines.append(raw)
            total += len(raw)
            if total > limit:
                break

    if fileobj is not None and hasattr(fileobj, "read"):
        pos = fileobj.tell()
        fileobj.seek(0)
        try:
            consume(fileobj)
        finally:
            fileobj.seek(pos)
    else:
        with open(path, "rb") as f:
            consume(f)
    text = [ln.decode("utf-8").rstrip("\r\n") for ln in lines]
    return [ln[2:] if ln.startswith("# ") else ln[1:] for ln in text]


def identify_stellarai_ecsv(origin: str, path: Any, fileobj: Any, *args: Any,
                            **kwargs: Any) -> bool:
    """specutils identifier: True for an ECSV file whose table meta has ``STLRAI``."""
    if origin != "read":
        return False
    try:
        if not peek(path, fileobj, 7).startswith(b"# %ECSV"):
            return False
        lines = _ecsv_header_lines(path, fileobj)
        if not any(_MARKER in ln for ln in lines):
            return False
        header = get_header_from_yaml(lines)
        return _MARKER in (header.get("meta") or {})
    except Exception:
        return False


def write_stellarai_ecsv(data: Spectrum | SpectrumList, file_name: Any,
                         overwrite: bool = False, **kwargs: Any) -> None:
    """Write a Spectrum or SpectrumList in the ``stellarai-ecsv`` layout (one table).

    Examples
    --------
    ``spectrum.write("out.ecsv", format="stellarai-ecsv")``.
    """
    kind, spectra = _as_list(data)
    headers, header_index = _unique_headers(spectra)
    parts = []
    records = []
    dropped: dict[int, list[str]] = {}
    for i, spec in enumerate(spectra):
        arrays, record = _decompose(spec, f"spectrum {i}")
        if keys := record.pop("dropped"):
            dropped[i] = keys
        record["header"] = header_index[i]
        parts.append(arrays)
        records.append(record)
    columns: dict[str, Any] = {}
    if kind == "SpectrumList":
        columns["spectrum_index"] = np.concatenate(
            [np.full(r["n"], i, dtype=np.int32) for i, r in enumerate(records)]
        )
    for key, fill in (("spectral_axis", None), ("flux", None), ("uncertainty", np.nan),
                      ("mask", False)):
        if not any(key in p for p in parts):
            continue
        chunks = []
        for p, r in zip(parts, records, strict=True):
            if key in p:
                chunks.append(p[key])
            else:
                dtype = bool if key == "mask" else float
                chunks.append(np.full(r["n"], fill, dtype=dtype))
        columns[key] = np.concatenate(chunks)
    _warn_dropped(dropped, len(spectra))
    table = Table(columns, copy=False)
    for key, unit_key in (("spectral_axis", "spectral_axis_unit"), ("flux", "flux_unit")):
        units = {r[unit_key] for r in records}
        if len(units) == 1 and (unit := units.pop()):
            table[key].unit = u.Unit(unit)
    table.meta[_MARKER] = FORMAT_VERSION
    table.meta["stellarai"] = {
        "kind": kind,
        "spectra": records,
        "headers": [h.tostring(sep="\n", endcard=False, padding=False) for h in headers],
    }
    table.write(file_name, format="ascii.ecsv", overwrite=overwrite)


def _read_ecsv(file: Any) -> tuple[str, list[Spectrum]]:
    name = source_name(file)
    if hasattr(file, "seek"):
        file.seek(0)
    try:
        table = Table.read(file, format="ascii.ecsv")
    except Exception as exc:
        raise UnreadableFileError(f"{name} is not a readable ECSV table: {exc}") from exc
    if _MARKER not in table.meta:
        raise UnreadableFileError(
            f"{name} is not a stellarai-ecsv file: no {_MARKER} key in its table meta"
        )
    version = int(table.meta[_MARKER])
    if version > FORMAT_VERSION:
        raise UnreadableFileError(
            f"{name} uses stellarai-ecsv version {version}; this stellarai reads up to "
            f"version {FORMAT_VERSION}: upgrade stellarai"
        )
    info = table.meta["stellarai"]
    headers = [fits.Header.fromstring(text, sep="\n") for text in info.get("headers", [])]
    records = info["spectra"]
    counts = [int(r["n"]) for r in records]
    if sum(counts) != len(table):
        raise UnreadableFileError(
            f"{name}: the meta describes {sum(counts)} rows but the table has {len(table)}"
        )
    bounds = np.cumsum([0, *counts])
    spectra = []
    for i, record in enumerate(records):
        rows = slice(bounds[i], bounds[i + 1])
        arrays = {}
        for key in ("spectral_axis", "flux", "uncertainty", "mask"):
            if key in table.colnames and key in record.get("dtypes", {}):
                arrays[key] = np.asarray(table[key][rows])
        j = record.get("header")
        spectra.append(_compose(arrays, record, headers[j] if j is not None else None))
    return str(info.get("kind", "SpectrumList")), spectra


def read_stellarai_ecsv(file: Any, **kwargs: Any) -> SpectrumList:
    """Read a ``stellarai-ecsv`` file into a `~specutils.SpectrumList`."""
    return SpectrumList(_read_ecsv(file)[1])


def _read_ecsv_single(file: Any, **kwargs: Any) -> Spectrum:
    return _single(_read_ecsv(file)[1], file)


# ----------------------------------------------------------------------------------------
# registration
# ----------------------------------------------------------------------------------------
def register() -> None:
    """Register ``stellarai-fits`` and ``stellarai-ecsv`` with specutils (idempotent)."""
    for label, ident, read_list, read_one, write, ext in (
        ("stellarai-fits", identify_stellarai_fits, read_stellarai_fits, _read_fits_single,
         write_stellarai_fits, ["fits", "fit", "fits.gz"]),
        ("stellarai-ecsv", identify_stellarai_ecsv, read_stellarai_ecsv, _read_ecsv_single,
         write_stellarai_ecsv, ["ecsv"]),
    ):
        for dtype, reader in ((SpectrumList, read_list), (Spectrum, read_one)):
            data_loader(label, identifier=ident, dtype=dtype, extensions=ext, priority=20,
                        force=True, autogenerate_spectrumlist=False)(reader)
            custom_writer(label, dtype=dtype, force=True)(write)

