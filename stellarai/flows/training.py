r"""Maximum-likelihood training of a :class:`~stellarai.flows.network.FlowNetwork`.

The conventions of :class:`stellarai.emulators.Trainer`, with its pieces reused
(:class:`~stellarai.emulators.TrainingHistory` and
:func:`~stellarai.emulators.learning_rate`): AdamW with a cosine schedule and linear
warm-up, a validation pass after each epoch, early stopping with patience (the best weights
are kept), a tqdm progress bar and a loss-curve figure. Shuffling in epoch ``e`` uses a
generator seeded with ``(seed, e)``, so the same seed gives the same weights. The loss is
the mean negative log-likelihood of the standardized PCA coefficients.

With ``checkpoint=``, the state of the run is written after every epoch: safetensors for
the weights, the best weights so far and the optimizer's tensors, JSON for the settings,
the step, the history and the optimizer's hyper-parameters (no pickle). A run resumed from
it ends with the weights of an uninterrupted run.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..emulators.training import (
    BestWeights,
    TrainingHistory,
    check_resume,
    learning_rate,
    read_checkpoint,
    write_checkpoint,
)
from .errors import FlowError, FlowFileError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .network import FlowNetwork

__all__ = ["FlowHistory", "train_flow"]

_CHECKPOINT_FORMAT = "stellarai.flow-checkpoint"
_CHECKPOINT_VERSION = 2  # 2: optimizer parameter groups by name


class FlowHistory(TrainingHistory):
    """Per-epoch record of a flow's training.

    The emulators' :class:`~stellarai.emulators.TrainingHistory` with the losses labelled
    as negative log-likelihoods and plotted on a linear scale (they can be negative).

    Attributes
    ----------
    train_loss, valid_loss : list of float
        Mean negative log-likelihood of the standardized coefficients on the training
        batches and on the validation spectra.
    valid_mae : list of float
        Not used by flows (empty).
    lr, seconds : list of float
        Learning rate at the end of each epoch and wall time of each epoch.
    best_epoch : int
        Epoch (from 0) with the lowest validation loss; its weights are kept.
    stopped_early : bool
        True if early stopping ended the run.
    """

    loss_name: ClassVar[str] = "negative log-likelihood"

    def plot(self, ax: Any = None) -> Figure:
        """Loss curves (training and validation NLL) as a matplotlib Figure."""
        fig = super().plot(ax)
        (fig.axes[0] if ax is None else ax).set_yscale("linear")
        return fig


def _check_settings(epochs: int, batch_size: int, lr: float, patience: int | None) -> None:
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise FlowError(f"{name} must be an integer >= 1, got {value!r}")
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise FlowError(f"lr must be a positive number, got {lr!r}")
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int)
                                 or patience < 1):
        raise FlowError(f"patience must be a positive integer or None, got {patience!r}")


def _nll(network: FlowNetwork, z: Tensor, context: Tensor | None) -> Tensor:
    return -network(context).log_prob(z).mean()


def _same_data(network: FlowNetwork, sidecar: str) -> Callable[[dict[str, Tensor]], None]:
    """A check that a checkpoint's fixed (non-flow) tensors are this network's."""

    def check(model: dict[str, Tensor]) -> None:
        for key, value in network.state_dict().items():
            if key.startswith("flow."):
                continue
            if key not in model or model[key].shape != value.shape or \
                    not torch.allclose(model[key], value, rtol=1e-6, atol=1e-9):
                raise FlowError(f"checkpoint {sidecar!r} was written for other training "
                                f"data (its {key!r} differs)")

    return check


def train_flow(network: FlowNetwork, train: tuple[Tensor, Tensor | None],
               valid: tuple[Tensor, Tensor | None], *, epochs: int = 100,
               batch_size: int = 128, lr: float = 1e-3, weight_decay: float = 0.0,
               patience: int | None = 10, seed: int = 0, progress: bool = True,
               checkpoint: str | os.PathLike[str] | None = None, resume: bool = False,
               stop_after: int | None = None) -> FlowHistory:
    """Train ``network.flow`` on standardized coefficients ``z`` and contexts, in place.

    Parameters
    ----------
    network : FlowNetwork
        The network; only ``network.flow`` has trainable parameters.
    train, valid : (torch.Tensor, torch.Tensor or None)
        Standardized coefficients ``(n, n_components)`` and standardized contexts
        ``(n, n_context)`` (None for an unconditional flow), float32.
    epochs, batch_size, lr, weight_decay, patience, seed, progress
        As for :class:`stellarai.emulators.Trainer`.
    checkpoint : str or path-like, optional
        Stem of the checkpoint files (``.safetensors`` + ``.json``), written after every
        epoch.
    resume : bool
        Continue from ``checkpoint`` if its files exist (the settings and the network's
        PCA basis and standardization must be the ones it was written with).
    stop_after : int, optional
        End this call after that many epochs in total (the schedule still spans
        ``epochs``); a later call with ``resume=True`` continues.

    Returns
    -------
    FlowHistory
    """
    _check_settings(epochs, batch_size, lr, patience)
    resuming = check_resume(checkpoint, resume, stop_after, FlowError)
    settings = {"epochs": epochs, "batch_size": batch_size, "lr": lr,
                "weight_decay": weight_decay, "patience": patience, "seed": seed}
    z_train, c_train = train
    z_valid, c_valid = valid
    optimizer = torch.optim.AdamW(network.flow.parameters(), lr=lr, weight_decay=weight_decay)
    history = FlowHistory()
    total = epochs * math.ceil(len(z_train) / batch_size)
    step, best = 0, BestWeights(patience)
    if resuming:
        record = read_checkpoint(checkpoint, network, optimizer, best, fmt=_CHECKPOINT_FORMAT,
                                 version=_CHECKPOINT_VERSION, settings=settings,
                                 check=_same_data(network, str(checkpoint)), error=FlowError,
                                 file_error=FlowFileError)
        step, history = int(record["step"]), FlowHistory(**record["history"])
    last = epochs if stop_after is None else min(stop_after, epochs)
    if history.stopped_early:
        last = history.epochs
    bar = tqdm(range(history.epochs, last), disable=not progress,
               desc="training SpectralFlow", unit="epoch")
    for epoch in bar:
        tic = time.perf_counter()
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        network.train()
        running = 0.0
        for rows in torch.split(torch.randperm(len(z_train), generator=generator), batch_size):
            rate = learning_rate(step, total, lr, "cosine")
            for group in optimizer.param_groups:
                group["lr"] = rate
            loss = _nll(network, z_train[rows], None if c_train is None else c_train[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            running += float(loss.detach()) * len(rows)
        network.eval()
        with torch.no_grad():
            valid_loss = float(_nll(network, z_valid, c_valid))
        history.train_loss.append(running / len(z_train))
        history.valid_loss.append(valid_loss)
        history.lr.append(rate)
        history.seconds.append(time.perf_counter() - tic)
        bar.set_postfix(train=f"{history.train_loss[-1]:.3f}", valid=f"{valid_loss:.3f}")
        best.update(history, network)
        if checkpoint is not None:
            write_checkpoint(checkpoint, network, optimizer, best,
                             {"settings": settings, "step": step, "history": history.to_dict()},
                             fmt=_CHECKPOINT_FORMAT, version=_CHECKPOINT_VERSION)
        if history.stopped_early:
            break
    bar.close()
    best.restore(network)
    network.eval()
    return history
