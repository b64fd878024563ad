"""Saving and loading emulators: safetensors weights plus a JSON sidecar. No pickle.

An emulator saved as ``path`` is two files:

- ``path.safetensors``: the network's tensors in the safetensors format, which cannot
  run code when read;
- ``path.json``: the sidecar, with ``format`` (``"stellarai.emulator"``),
  ``format_version``, ``backend``, ``stellarai_version``, ``label_space``
  (:meth:`LabelSpace.to_dict <stellarai.labels.LabelSpace.to_dict>`), ``wavelength``
  (vacuum Angstrom, exact float repr, or null), ``flux_unit``, ``architecture``,
  ``provenance`` (training record) and ``weights`` (file name and SHA-256 checksum).

Loading refuses a sidecar of another format version, a weights file whose checksum does
not match (tampered or mismatched), and files that are missing or corrupt, each with
:class:`~stellarai.emulators.EmulatorFileError` saying what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import astropy.units as u
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import LabelError
from ..labels import LabelSpace
from .errors import EmulatorError, EmulatorFileError

if TYPE_CHECKING:
    from .base import SpectralEmulator

__all__ = ["FORMAT", "FORMAT_VERSION", "emulator_paths", "file_sha256", "load_emulator",
           "save_emulator"]

FORMAT = "stellarai.emulator"
"""Value of ``format`` in every emulator sidecar."""
FORMAT_VERSION = 1
"""Sidecar format version written by (and the only one read by) this stellarai."""

_SUFFIXES = (".json", ".safetensors")


def emulator_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The ``(weights, sidecar)`` paths of an emulator saved as ``path``.

    ``path`` may name either file or their common stem.

    Examples
    --------
    >>> [p.name for p in emulator_paths("models/payne.json")]
    ['payne.safetensors', 'payne.json']
    """
    stem = Path(os.fspath(path))
    if stem.suffix in _SUFFIXES:
        stem = stem.with_suffix("")
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks.

    Every sidecar of the package records this checksum of its weights file.
    """
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_emulator(emulator: SpectralEmulator, path: str | os.PathLike[str], *,
                  overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``emulator`` to ``<path>.safetensors`` and ``<path>.json``.

    Parameters
    ----------
    emulator : SpectralEmulator
        The emulator.
    path : str or path-like
        Stem (a ``.json`` or ``.safetensors`` suffix is dropped).
    overwrite : bool
        Replace existing files (default False: raise `EmulatorFileError`).

    Returns
    -------
    (Path, Path)
        The weights and sidecar paths.
    """
    from .. import __version__

    weights_path, sidecar_path = emulator_paths(path)
    if not overwrite:
        for existing in (weights_path, sidecar_path):
            if existing.exists():
                raise EmulatorFileError(f"{str(existing)!r} exists; pass overwrite=True to "
                                        "replace it")
    tensors = {name: tensor.detach().cpu().contiguous().clone()
               for name, tensor in emulator.module.state_dict().items()}
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(weights_path), metadata={"format": FORMAT,
                                                     "format_version": str(FORMAT_VERSION)})
    wavelength = emulator.wavelength
    sidecar = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "backend": emulator.backend,
        "stellarai_version": __version__,
        "torch_version": torch.__version__,
        "label_space": emulator.label_space.to_dict(),
        "wavelength_unit": "Angstrom (vacuum)",
        "wavelength": None if wavelength is None else [float(x) for x in wavelength.value],
        "flux_unit": emulator.flux_unit.to_string(),
        "architecture": emulator.architecture(),
        "provenance": emulator.provenance,
        "weights": {"file": weights_path.name, "sha256": file_sha256(weights_path),
                    "dtype": str(emulator.dtype).removeprefix("torch.")},
    }
    try:
        text = json.dumps(sidecar, indent=1, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise EmulatorError(f"the emulator's provenance or architecture is not JSON: {exc}"
                            ) from exc
    sidecar_path.write_text(text, encoding="utf-8")
    return weights_path, sidecar_path


def _read_sidecar(sidecar_path: Path) -> dict[str, Any]:
    from .. import __version__

    if not sidecar_path.is_file():
        raise EmulatorFileError(f"emulator sidecar {str(sidecar_path)!r} does not exist (an "
                                "emulator is saved as <name>.json plus <name>.safetensors)")
    try:
        sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EmulatorFileError(f"emulator sidecar {str(sidecar_path)!r} is not valid JSON "
                                f"({exc}); the file is corrupt") from exc
    if not isinstance(sidecar, dict) or sidecar.get("format") != FORMAT:
        raise EmulatorFileError(f"{str(sidecar_path)!r} is not a stellarai emulator sidecar "
                                f"(expected format {FORMAT!r})")
    version = sidecar.get("format_version")
    if version != FORMAT_VERSION:
        raise EmulatorFileError(
            f"{str(sidecar_path)!r} has emulator format version {version!r} (written by "
            f"stellarai {sidecar.get('stellarai_version', 'unknown')}); this stellarai "
            f"({__version__}) reads format version {FORMAT_VERSION} only: use a matching "
            "stellarai version, or re-save the emulator with it"
        )
    missing = [key for key in ("backend", "label_space", "wavelength", "flux_unit",
                               "architecture", "weights") if key not in sidecar]
    if missing:
        raise EmulatorFileError(f"emulator sidecar {str(sidecar_path)!r} lacks {missing}")
    return sidecar


def load_emulator(path: str | os.PathLike[str]) -> SpectralEmulator:
    """Load an emulator written by :func:`save_emulator` (never unpickles anything).

    Parameters
    ----------
    path : str or path-like
        The sidecar, the weights file or their common stem.

    Returns
    -------
    SpectralEmulator
        Of the saved backend, with the saved label space, wavelength, architecture,
        provenance and weights (outputs are bit-identical to the saved emulator's).

    Raises
    ------
    EmulatorFileError
        If a file is missing, corrupt or not an emulator, the format version is not
        :data:`FORMAT_VERSION`, the weights' checksum does not match the sidecar
        (tampered or mismatched files), or the tensors do not fit the architecture.
    """
    from .base import backend_class

    weights_path, sidecar_path = emulator_paths(path)
    sidecar = _read_sidecar(sidecar_path)
    if not weights_path.is_file():
        raise EmulatorFileError(f"emulator weights {str(weights_path)!r} do not exist (named "
                                f"by sidecar {str(sidecar_path)!r})")
    expected = sidecar["weights"].get("sha256") if isinstance(sidecar["weights"], dict) else None
    if expected != file_sha256(weights_path):
        raise EmulatorFileError(
            f"checksum of {str(weights_path)!r} does not match its sidecar "
            f"{str(sidecar_path)!r}: the weights were modified or belong to another emulator"
        )
    try:
        cls = backend_class(sidecar["backend"])
        space = LabelSpace.from_dict(sidecar["label_space"])
        emulator = cls._from_architecture(space, sidecar["wavelength"], sidecar["architecture"],
                                          flux_unit=u.Unit(sidecar["flux_unit"]),
                                          provenance=sidecar.get("provenance") or {})
    except (EmulatorError, LabelError, KeyError, TypeError, ValueError) as exc:
        raise EmulatorFileError(f"cannot rebuild the emulator described by "
                                f"{str(sidecar_path)!r}: {exc}") from exc
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError) as exc:
        raise EmulatorFileError(f"{str(weights_path)!r} is not a readable safetensors file "
                                f"({exc})") from exc
    dtype = getattr(torch, str(sidecar["weights"].get("dtype", "float32")), None)
    if isinstance(dtype, torch.dtype):
        emulator.module.to(dtype)
    try:
        emulator.module.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise EmulatorFileError(f"the tensors in {str(weights_path)!r} do not fit the "
                                f"architecture in its sidecar: {exc}") from exc
    return emulator
