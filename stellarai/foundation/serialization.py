"""Saving and loading foundation models: safetensors weights plus a JSON sidecar.

A model saved as ``path`` is ``path.safetensors`` (the network's tensors) and ``path.json``
with ``format`` (``"stellarai.foundation"``), ``format_version``, ``stellarai_version``,
``label_space``, ``architecture``, ``wavelength_ranges`` (vacuum Å), ``calibration``,
``provenance`` and ``weights`` (file name and SHA-256). No pickle is ever loaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..emulators.serialization import emulator_paths, file_sha256
from ..errors import LabelError
from ..labels import LabelSpace
from .errors import FoundationError, FoundationFileError

if TYPE_CHECKING:
    from .model import FoundationModel

__all__ = ["FORMAT", "FORMAT_VERSION", "load_model", "save_model"]

FORMAT = "stellarai.foundation"
"""Value of ``format`` in every foundation-model sidecar."""
FORMAT_VERSION = 1
"""Sidecar format version written and read by this stellarai."""


def save_model(model: FoundationModel, path: str | os.PathLike[str], *,
               overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``model`` to ``<path>.safetensors`` and ``<path>.json``.

    Parameters
    ----------
    model : FoundationModel
        The model.
    path : str or path-like
        Stem (a ``.json`` or ``.safetensors`` suffix is dropped).
    overwrite : bool
        Replace existing files (default False: raise `FoundationFileError`).

    Returns
    -------
    (Path, Path)
        The weights and sidecar paths.
    """
    from .. import __version__

    weights, sidecar = emulator_paths(path)
    if not overwrite:
        for existing in (weights, sidecar):
            if existing.exists():
                raise FoundationFileError(f"{str(existing)!r} exists; pass overwrite=True to "
                                          "replace it")
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous().clone()
               for k, v in model.module.state_dict().items()}, str(weights),
              metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
    record = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "stellarai_version": __version__,
        "torch_version": torch.__version__, "label_space": model.label_space.to_dict(),
        "architecture": model.architecture(),
        "wavelength_ranges": [list(r) for r in model.wavelength_ranges],
        "calibration": [float(x) for x in model.calibration],
        "provenance": model.provenance,
        "weights": {"file": weights.name, "sha256": file_sha256(weights)},
    }
    sidecar.write_text(json.dumps(record, indent=1, allow_nan=False), encoding="utf-8")
    return weights, sidecar


def load_model(path: str | os.PathLike[str]) -> FoundationModel:
    """Load a model written by :func:`save_model`.

    Raises
    ------
    FoundationFileError
        If a file is missing, corrupt or not a foundation model, of another format
        version, or the weights' checksum does not match the sidecar.
    """
    from .model import FoundationModel

    weights, sidecar = emulator_paths(path)
    if not sidecar.is_file() or not weights.is_file():
        raise FoundationFileError(f"a saved foundation model is {weights.name} plus "
                                  f"{sidecar.name}; {str(path)!r} lacks one of them")
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FoundationFileError(f"{str(sidecar)!r} is not valid JSON ({exc})") from exc
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise FoundationFileError(f"{str(sidecar)!r} is not a stellarai foundation-model "
                                  f"sidecar (expected format {FORMAT!r})")
    if record.get("format_version") != FORMAT_VERSION:
        raise FoundationFileError(f"{str(sidecar)!r} has format version "
                                  f"{record.get('format_version')!r}; this stellarai reads "
                                  f"version {FORMAT_VERSION} only")
    if record.get("weights", {}).get("sha256") != file_sha256(weights):
        raise FoundationFileError(f"checksum of {str(weights)!r} does not match "
                                  f"{str(sidecar)!r}: the weights were modified or belong to "
                                  "another model")
    try:
        architecture = dict(record["architecture"])
        reference = architecture.pop("reference_wavelength")
        architecture.setdefault("line_floor", None)     # saved before the option existed
        model = FoundationModel(LabelSpace.from_dict(record["label_space"]),
                                reference_wavelength=reference * u.AA, **architecture)
        tensors = load_file(str(weights))
        model.module.load_state_dict(tensors, strict=True)
    except (KeyError, TypeError, LabelError, FoundationError, RuntimeError,
            SafetensorError) as exc:
        raise FoundationFileError(f"cannot rebuild the model described by {str(sidecar)!r}: "
                                  f"{exc}") from exc
    model.module.eval()
    model.wavelength_ranges = [tuple(r) for r in record.get("wavelength_ranges", [])]
    model.provenance = record.get("provenance") or {"runs": []}
    calibration = np.asarray(record.get("calibration", np.ones(len(model.label_space))), float)
    if calibration.shape != (len(model.label_space),):
        raise FoundationFileError(f"{str(sidecar)!r}: calibration must hold one factor per "
                                  f"label, got {calibration.shape}")
    model.calibration = calibration
    return model
