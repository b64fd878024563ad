"""Saving and loading a :class:`~stellarai.domain.DomainTranslator`. No pickle.

A translator saved as ``path`` is four files: ``path.safetensors`` (the network's tensors
and the reference labels), ``path.json`` (format, version, architecture, loss weights,
training history and provenance, the weights' SHA-256), and its frozen emulator beside
them as ``path.emulator.safetensors`` + ``path.emulator.json``, written and read by
:func:`~stellarai.emulators.save_emulator` / :func:`~stellarai.emulators.load_emulator`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..emulators.errors import EmulatorFileError
from ..emulators.serialization import emulator_paths, file_sha256, load_emulator, save_emulator
from .errors import DomainFileError
from .training import DomainHistory

if TYPE_CHECKING:
    from .translator import DomainTranslator

__all__ = ["FORMAT", "FORMAT_VERSION", "load_translator", "save_translator"]

FORMAT = "stellarai.domain-translator"
FORMAT_VERSION = 1


def _emulator_stem(sidecar: Path) -> Path:
    return sidecar.with_name(sidecar.name[: -len(".json")] + ".emulator")


def save_translator(translator: DomainTranslator, path: str | os.PathLike[str], *,
                    overwrite: bool = False) -> tuple[Path, Path]:
    """Write a trained translator (and its emulator) next to ``path``.

    Raises
    ------
    DomainFileError
        If a file exists and ``overwrite`` is False.
    """
    from .. import __version__

    translator._require_trained()
    weights, sidecar = emulator_paths(path)
    emulator_stem = _emulator_stem(sidecar)
    for target in (weights, sidecar, *emulator_paths(emulator_stem)):
        if target.exists() and not overwrite:
            raise DomainFileError(f"{str(target)!r} exists; pass overwrite=True to replace it")
    tensors = {f"network.{k}": v.detach().contiguous().clone()
               for k, v in translator.network.state_dict().items()}
    tensors["reference_labels"] = torch.as_tensor(translator.reference_labels)
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(weights))
    save_emulator(translator.emulator, emulator_stem, overwrite=overwrite)
    record = {"format": FORMAT, "format_version": FORMAT_VERSION,
              "stellarai_version": __version__, "torch_version": torch.__version__,
              "architecture": translator.network.architecture(),
              "weights": translator.weights.to_dict(), "seed": translator.seed,
              "emulator": emulator_stem.name, "history": translator.history.to_dict(),
              "provenance": translator.provenance,
              "checksum": {"file": weights.name, "sha256": file_sha256(weights)}}
    sidecar.write_text(json.dumps(record, indent=1), encoding="utf-8")
    return weights, sidecar


def load_translator(path: str | os.PathLike[str]) -> DomainTranslator:
    """Read a translator written by :func:`save_translator` (never unpickles anything).

    Raises
    ------
    DomainFileError
        For missing or corrupt files, another format or version, or weights that do not
        match the sidecar's checksum or architecture.
    """
    from .translator import DomainTranslator

    weights, sidecar = emulator_paths(path)
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DomainFileError(f"cannot read translator sidecar {str(sidecar)!r}: {exc}") from exc
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise DomainFileError(f"{str(sidecar)!r} is not a stellarai DomainTranslator file")
    if record.get("format_version") != FORMAT_VERSION:
        raise DomainFileError(
            f"{str(sidecar)!r} has translator format version {record.get('format_version')!r}"
            f" (written by stellarai {record.get('stellarai_version')}); this stellarai reads "
            f"version {FORMAT_VERSION}")
    if not weights.is_file() or file_sha256(weights) != record["checksum"]["sha256"]:
        raise DomainFileError(f"{str(weights)!r} is missing, or its checksum does not match "
                              f"{str(sidecar)!r} (modified or from another translator)")
    try:
        emulator = load_emulator(sidecar.with_name(record["emulator"]))
        tensors = load_file(str(weights))
    except (EmulatorFileError, SafetensorError, OSError) as exc:
        raise DomainFileError(f"cannot read the translator saved as {str(sidecar)!r}: "
                              f"{exc}") from exc
    arch = record["architecture"]
    translator = DomainTranslator(emulator, n_shared=arch["n_shared"], n_split=arch["n_split"],
                                  channels=arch["channels"], kernel_size=arch["kernel_size"],
                                  hidden=arch["hidden"], share_weights=arch["share_weights"],
                                  residual=arch["residual"],
                                  weights=record["weights"],
                                  seed=record["seed"])
    state = {k[len("network."):]: v for k, v in tensors.items() if k.startswith("network.")}
    try:
        translator.network.load_state_dict(state)
    except RuntimeError as exc:
        raise DomainFileError(f"the weights in {str(weights)!r} do not fit the architecture "
                              f"in {str(sidecar)!r}: {exc}") from exc
    translator.network.eval()
    translator.reference_labels = tensors["reference_labels"].numpy()
    translator.history = DomainHistory(**record["history"])
    translator.provenance = record["provenance"]
    return translator
