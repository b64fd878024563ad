"""Reading and writing spectra: stellarai's readers and writers for specutils.

Importing this package registers four formats with specutils' I/O registry (again on
every import or reload, without "already registered" errors):

.. list-table::
   :header-rows: 1

   * - label
     - classes
     - what
   * - ``stellarai-fits``
     - Spectrum, SpectrumList (read and write)
     - stellarai's FITS layout (normalized flux, uncertainty type, mask, meta, header)
   * - ``stellarai-ecsv``
     - Spectrum, SpectrumList (read and write)
     - the same content as one ECSV table
   * - ``stellarai-hpf-goldilocks``
     - SpectrumList (read)
     - HPF spectra from the Goldilocks pipeline
   * - ``stellarai-igrins-plp``
     - SpectrumList (read)
     - IGRINS PLP ``.spec_a0v.fits`` (old layout)

All four are identified by file content (HDU names, ``INSTRUME``, or the ``STLRAI``
marker), never by file name, and take priority over specutils' generic readers. Use them
through ``SpectrumList.read(path)`` / ``Spectrum.read(path)`` / ``.write(path,
format=...)``, or through :func:`read_spectrum_list`, which also falls back on every
other specutils format.
"""

from __future__ import annotations

from specutils import SpectrumList
from specutils.io.registers import data_loader

from . import normalized
from .goldilocks import HPF_RESOLUTION, identify_hpf_goldilocks, read_hpf_goldilocks
from .igrins_plp import (
    IGRINS_ORDER_OFFSETS,
    IGRINS_RESOLUTION,
    identify_igrins_plp,
    igrins_variance_path,
    read_igrins_plp,
)
from .normalized import (
    FORMAT_VERSION,
    identify_stellarai_ecsv,
    identify_stellarai_fits,
    read_stellarai_ecsv,
    read_stellarai_fits,
    strip_structural_keywords,
    write_stellarai_ecsv,
    write_stellarai_fits,
)
from .read import STELLARAI_FORMATS, read_spectrum_list

__all__ = [
    "FORMAT_VERSION",
    "HPF_RESOLUTION",
    "IGRINS_ORDER_OFFSETS",
    "IGRINS_RESOLUTION",
    "STELLARAI_FORMATS",
    "identify_hpf_goldilocks",
    "identify_igrins_plp",
    "identify_stellarai_ecsv",
    "identify_stellarai_fits",
    "igrins_variance_path",
    "read_hpf_goldilocks",
    "read_igrins_plp",
    "read_spectrum_list",
    "read_stellarai_ecsv",
    "read_stellarai_fits",
    "register_formats",
    "strip_structural_keywords",
    "write_stellarai_ecsv",
    "write_stellarai_fits",
]


_INSTRUMENT_READERS = (
    ("stellarai-hpf-goldilocks", identify_hpf_goldilocks, read_hpf_goldilocks),
    ("stellarai-igrins-plp", identify_igrins_plp, read_igrins_plp),
)


def register_formats() -> None:
    """(Re-)register stellarai's formats with specutils; safe to call any number of times."""
    normalized.register()
    for label, identifier, reader in _INSTRUMENT_READERS:
        data_loader(label, identifier=identifier, dtype=SpectrumList, extensions=["fits"],
                    priority=20, force=True, autogenerate_spectrumlist=False)(reader)


register_formats()
