"""Save and load a :class:`~stellarai.flows.SpectralFlow`: safetensors + a JSON sidecar.

The weights file holds every tensor of the network (PCA basis and mean, standardization
constants, zuko parameters) and the wavelength grid; the JSON sidecar holds the format
version, the package and zuko versions, the architecture, the conditioning label space,
the training label ranges, the outlier-score reference and the training record. No pickle
is ever written or read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import astropy.units as u
import torch
import zuko
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..labels import LabelSpace
from .compression import PCABasis
from .errors import FlowFileError
from .network import FlowNetwork
from .training import FlowHistory

if TYPE_CHECKING:
    from .flow import SpectralFlow

__all__ = ["FORMAT", "FORMAT_VERSION", "load_flow", "save_flow"]

FORMAT = "stellarai.spectral-flow"
FORMAT_VERSION = 1
_PCA_KEYS = ("mean", "components", "variance", "explained_variance_ratio", "residual_variance")


def _paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    stem = Path(os.fspath(path))
    if stem.suffix in (".json", ".safetensors"):
        stem = stem.with_suffix("")
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def _major(version: str) -> str:
    return version.split(".")[0]


def save_flow(flow: SpectralFlow, path: str | os.PathLike[str], *,
              overwrite: bool = False) -> tuple[Path, Path]:
    """Write a fitted flow to ``<path>.safetensors`` and ``<path>.json``.

    Raises
    ------
    FlowFileError
        If a file exists and ``overwrite`` is False.
    """
    from .. import __version__

    network = flow._require_fitted()
    weights, sidecar = _paths(path)
    for target in (weights, sidecar):
        if target.exists() and not overwrite:
            raise FlowFileError(f"{str(target)!r} exists; pass overwrite=True to replace it")
    tensors = {k: v.detach().contiguous().clone() for k, v in network.state_dict().items()}
    tensors["wavelength"] = torch.as_tensor(flow.wavelength.to_value(u.AA), dtype=torch.float64)
    record = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "stellarai_version": __version__, "zuko_version": zuko.__version__,
        "torch_version": torch.__version__,
        "n_components": network.pca.n_components,
        "explained_variance": flow.explained_variance,
        "conditional_on": None if flow.conditional_on is None else list(flow.conditional_on),
        "architecture": flow.architecture,
        "condition_space": (None if flow.condition_space is None
                            else flow.condition_space.to_dict()),
        "flux_unit": flow.flux_unit.to_string(),
        "label_ranges": flow.label_ranges,
        "reference": flow.reference,
        "history": flow.history.to_dict(),
        "provenance": flow.provenance,
    }
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(weights))
    sidecar.write_text(json.dumps(record, indent=1), encoding="utf-8")
    return weights, sidecar


def load_flow(path: str | os.PathLike[str]) -> SpectralFlow:
    """Read a flow written by :func:`save_flow`.

    Raises
    ------
    FlowFileError
        For missing or unreadable files, another format, a newer format version, or a
        file written with another major version of zuko.
    """
    from .flow import SpectralFlow

    weights, sidecar = _paths(path)
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
        tensors = load_file(str(weights))
    except (OSError, json.JSONDecodeError, SafetensorError) as exc:
        raise FlowFileError(f"cannot read a SpectralFlow from {str(weights)!r} and "
                            f"{str(sidecar)!r}: {exc}") from exc
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise FlowFileError(f"{str(sidecar)!r} is not a stellarai SpectralFlow file")
    if record.get("format_version") != FORMAT_VERSION:
        raise FlowFileError(
            f"{str(sidecar)!r} has SpectralFlow format version {record.get('format_version')}"
            f" (written by stellarai {record.get('stellarai_version')}); this stellarai reads "
            f"version {FORMAT_VERSION}")
    if _major(record["zuko_version"]) != _major(zuko.__version__):
        raise FlowFileError(f"{str(sidecar)!r} was written with zuko {record['zuko_version']}; "
                            f"the installed zuko {zuko.__version__} has another major version")
    flow = SpectralFlow(record["n_components"], explained_variance=record["explained_variance"],
                        conditional_on=record["conditional_on"], **record["architecture"])
    pca = PCABasis(*(tensors[f"pca.{k}"] for k in _PCA_KEYS))
    network = FlowNetwork(pca, tensors["coefficient_mean"], tensors["coefficient_std"],
                          tensors["context_mean"], tensors["context_std"],
                          **record["architecture"])
    state = {k: v for k, v in tensors.items() if k != "wavelength"}
    try:
        network.load_state_dict(state)
    except RuntimeError as exc:
        raise FlowFileError(f"the weights in {str(weights)!r} do not match the architecture "
                            f"in {str(sidecar)!r}: {exc}") from exc
    network.eval()
    flow.network = network
    flow.wavelength = tensors["wavelength"].numpy() * u.AA
    flow.flux_unit = u.Unit(record["flux_unit"])
    flow.condition_space = (None if record["condition_space"] is None
                            else LabelSpace.from_dict(record["condition_space"]))
    flow.label_ranges = record["label_ranges"]
    flow.reference = record["reference"]
    flow.history = FlowHistory(**record["history"])
    flow.provenance = record["provenance"]
    return flow


