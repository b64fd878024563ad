"""One entry point that reads any spectrum file into a `~specutils.SpectrumList`.

:func:`read_spectrum_list` is what the ``stellarai`` command uses. It identifies a file by
its *content*, never by its name, trying in turn

1. the stellarai formats (``stellarai-fits``, ``stellarai-ecsv``,
   ``stellarai-hpf-goldilocks``, ``stellarai-igrins-plp``), through the identifiers
   registered with specutils' I/O registry;
2. specutils' own auto-identification, ``SpectrumList.read(path)``;
3. ``Spectrum.read(path)``, for formats registered only for single spectra.

A single `~specutils.Spectrum` always comes back as a one-element
`~specutils.SpectrumList`.

This module also holds the small helpers the stellarai readers share (content sniffing
and byte-order conversion).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
from astropy.io import fits
from astropy.io import registry as io_registry
from specutils import Spectrum, SpectrumList

from ..errors import UnreadableFileError

__all__ = ["STELLARAI_FORMATS", "read_spectrum_list"]

STELLARAI_FORMATS: tuple[str, ...] = (
    "stellarai-fits",
    "stellarai-ecsv",
    "stellarai-hpf-goldilocks",
    "stellarai-igrins-plp",
)
"""Labels of the formats stellarai registers with specutils, in the order they are tried."""

_FITS_MAGIC = b"SIMPLE  ="
_GZIP_MAGIC = b"\x1f\x8b"


# ----------------------------------------------------------------------------------------
# helpers shared by the stellarai readers
# ----------------------------------------------------------------------------------------
def native(array: Any, dtype: Any = None) -> np.ndarray:
    """Return a C-contiguous copy of ``array`` in native byte order.

    FITS stores big-endian numbers; torch and many numpy routines want native ones.
    ``dtype`` (optional) also converts the kind, e.g. ``float`` for float64.
    """
    arr = np.asarray(array)
    target = np.dtype(dtype) if dtype is not None else arr.dtype
    if target.byteorder not in ("=", "|"):
        target = target.newbyteorder("=")
    return np.array(arr, dtype=target, order="C", copy=True)


def source_name(file: Any) -> str:
    """A printable name for a path, a file object or an `~astropy.io.fits.HDUList`."""
    if isinstance(file, (str, os.PathLike)):
        return os.fspath(file)
    path = source_path(file)
    if path is not None:
        return os.fspath(path)
    name = getattr(file, "name", None)
    return str(name) if name is not None else f"<{type(file).__name__}>"


def source_path(file: Any) -> Path | None:
    """The filesystem path behind ``file`` (path, open file or HDUList), if there is one."""
    if isinstance(file, (str, os.PathLike)):
        return Path(file)
    if isinstance(file, fits.HDUList):
        info = file.fileinfo(0) if len(file) else None
        name = info.get("filename") if info else None
    else:
        name = getattr(file, "name", None)
    if isinstance(name, (str, os.PathLike)) and Path(name).exists():
        return Path(name)
    return None


def peek(path: Any, fileobj: IO[bytes] | None, nbytes: int) -> bytes:
    """Return up to ``nbytes`` leading bytes of a file (gunzipped), leaving its position."""
    if fileobj is not None and hasattr(fileobj, "read"):
        # Read from the start whatever the position: identifiers that ran before may not
        # have rewound a shared file object.
        pos = fileobj.tell()
        try:
            fileobj.seek(0)
            head = fileobj.read(nbytes)
        finally:
            fileobj.seek(pos)
        if isinstance(head, str):
            head = head.encode("utf-8", "replace")
        return head
    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        return b""
    with open(path, "rb") as f:
        head = f.read(nbytes)
    if head.startswith(_GZIP_MAGIC):
        with gzip.open(path, "rb") as f:
            head = f.read(nbytes)
    return head


@contextlib.contextmanager
def sniff_fits(origin: str, path: Any, fileobj: Any,
               args: tuple = ()) -> Iterator[fits.HDUList | None]:
    """Open a file's FITS headers lazily for an identifier, or yield None if not FITS.

    ``origin, path, fileobj, args`` are what astropy's registry passes to an identifier
    (``args[0]`` is an `~astropy.io.fits.HDUList` when one was given to ``read``). Only
    headers are read (``lazy_load_hdus``). A caller's open file object is left open at its
    position; a path is opened and closed here.
    """
    if origin != "read":
        yield None
        return
    for candidate in (fileobj, path, args[0] if args else None):
        if isinstance(candidate, fits.HDUList):
            yield candidate
            return
    if peek(path, fileobj, len(_FITS_MAGIC)) != _FITS_MAGIC:
        yield None
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fileobj is not None:
            pos = fileobj.tell()
            fileobj.seek(0)
            try:
                # Never close an HDUList opened on the caller's file object: that would
                # close the caller's file.
                yield fits.open(fileobj, lazy_load_hdus=True)
            finally:
                fileobj.seek(pos)
        else:
            with fits.open(path, lazy_load_hdus=True, memmap=False) as hdul:
                yield hdul


@contextlib.contextmanager
def open_fits(file: Any) -> Iterator[fits.HDUList]:
    """Open a path, file object or HDUList for reading; close only what was opened here."""
    if isinstance(file, fits.HDUList):
        yield file
    elif hasattr(file, "read"):
        pos = file.tell()
        file.seek(0)
        hdul = fits.open(file, memmap=False)
        try:
            yield hdul
        finally:
            file.seek(pos)
    else:
        with fits.open(file, memmap=False) as hdul:
            yield hdul


# ----------------------------------------------------------------------------------------
# the entry point
# ----------------------------------------------------------------------------------------
def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _as_spectrum_list(result: Any) -> SpectrumList:
    if isinstance(result, SpectrumList):
        return result
    if isinstance(result, Spectrum):
        return SpectrumList([result])
    if isinstance(result, (list, tuple)) and all(isinstance(s, Spectrum) for s in result):
        return SpectrumList(list(result))
    raise TypeError(f"reader returned {type(result).__name__}, not a Spectrum or SpectrumList")


def _check_nonempty(result: SpectrumList) -> SpectrumList:
    if len(result) == 0:
        raise ValueError("the reader returned no spectra")
    return result


def read_spectrum_list(path: str | os.PathLike, format: str | None = None) -> SpectrumList:
    """Read any supported spectrum file into a `~specutils.SpectrumList`.

    Parameters
    ----------
    path : str or path-like
        The file. It is identified by its content, so a renamed copy reads the same way.
    format : str, optional
        A specutils/stellarai format label (for example ``"stellarai-fits"``,
        ``"stellarai-hpf-goldilocks"`` or ``"tabular-fits"``) to skip identification.

    Returns
    -------
    specutils.SpectrumList
        The spectra in the file; a single-spectrum file gives a one-element list.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    stellarai.errors.UnreadableFileError
        If no reader can read the file (not FITS/ECSV, corrupt, empty, or not a
        spectrum such as a plain text file or a 2-D image); the one-line message names
        the file and lists what was tried.

    Examples
    --------
    >>> import astropy.units as u, numpy as np, tempfile, os
    >>> from specutils import Spectrum
    >>> from stellarai.io import read_spectrum_list
    >>> s = Spectrum(flux=np.ones(5) * u.one, spectral_axis=np.arange(5.0) * u.AA)
    >>> fname = os.path.join(tempfile.mkdtemp(), "any_name.dat")
    >>> s.write(fname, format="stellarai-ecsv")
    >>> sl = read_spectrum_list(fname)
    >>> len(sl), sl[0].flux.unit == u.one
    (1, True)
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"spectrum file not found: {os.fspath(path)}")
    name = os.fspath(path)
    if p.is_dir():
        raise UnreadableFileError(f"cannot read {name} as a spectrum: it is a directory")

    if format is not None:
        try:
            return _check_nonempty(_as_spectrum_list(SpectrumList.read(name, format=format)))
        except Exception as exc:
            try:
                return _check_nonempty(_as_spectrum_list(Spectrum.read(name, format=format)))
            except Exception:
                pass
            raise UnreadableFileError(
                f"cannot read {name} with format {format!r}: {_one_line(exc)}"
            ) from exc

    tried: list[str] = []
    if p.stat().st_size == 0:
        raise UnreadableFileError(f"cannot read {name} as a spectrum: the file is empty")

    # 1. stellarai's own formats, identified by content through the registry
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # third-party identifiers may warn while sniffing
        try:
            found = io_registry.identify_format("read", SpectrumList, name, None, [name], {})
        except Exception:  # pragma: no cover - identifiers are wrapped by specutils
            found = []
    ours = [f for f in STELLARAI_FORMATS if f in found]
    for fmt in ours:
        try:
            return _check_nonempty(_as_spectrum_list(SpectrumList.read(name, format=fmt)))
        except Exception as exc:
            tried.append(f"{fmt} ({_one_line(exc)})")
    if not ours:
        tried.append("stellarai formats (" + ", ".join(STELLARAI_FORMATS) + ": none matched)")

    # 2. specutils auto-identification, for SpectrumList then Spectrum
    last_exc: Exception | None = None
    for cls in (SpectrumList, Spectrum):
        try:
            return _check_nonempty(_as_spectrum_list(cls.read(name)))
        except io_registry.IORegistryError as exc:
            last_exc = exc
            tried.append(f"specutils {cls.__name__}.read (no format identified the file)")
        except Exception as exc:
            last_exc = exc
            tried.append(f"specutils {cls.__name__}.read ({_one_line(exc)})")
    raise UnreadableFileError(
        f"cannot read {name} as a spectrum; tried: " + "; ".join(tried)
    ) from last_exc
