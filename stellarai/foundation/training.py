r"""Training of a :class:`~stellarai.foundation.network.FoundationNet` (pre-training and
fine-tuning).

The conventions of :class:`stellarai.emulators.Trainer`, with its pieces reused
(:class:`~stellarai.emulators.TrainingHistory`, :func:`~stellarai.emulators.learning_rate`):
AdamW with a cosine schedule and linear warm-up, a validation pass after each epoch,
early stopping with patience (the best weights are kept), a tqdm progress bar and a
loss-curve figure; epoch ``e`` draws its batches and contexts from a generator seeded with
``(seed, e)``, and validation always uses the same contexts. The loss is the Gaussian
negative log-likelihood of the labels,

.. math::

    \mathcal{L} = \tfrac12\Big[\ln(s^2 + \sigma_y^2) + \frac{(\mu - y)^2}{s^2 + \sigma_y^2}
    \Big],\qquad s^2 = e^{\ell},

averaged over the labels given, where :math:`\mu` and :math:`\ell` are the network's mean
and log-variance and :math:`\sigma_y` the label's own uncertainty (all in scaled units).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..emulators.training import (
    BestWeights,
    TrainingHistory,
    check_resume,
    learning_rate,
    read_checkpoint,
    write_checkpoint,
)
from .errors import FoundationError, FoundationFileError
from .tokens import TokenBlock, augment, sample_contexts

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .network import FoundationNet

__all__ = ["FoundationHistory", "TrainSettings", "gaussian_nll", "train_network"]

CHECKPOINT_FORMAT = "stellarai.foundation-checkpoint"
"""The ``"format"`` of a foundation training checkpoint's JSON sidecar."""


class FoundationHistory(TrainingHistory):
    """Per-epoch record of a foundation model's training.

    Attributes
    ----------
    train_loss, valid_loss : list of float
        Mean Gaussian negative log-likelihood of the scaled labels.
    valid_mae : list of float
        Mean absolute error of the predicted scaled labels on the validation spectra
        (a share of each label's range).
    lr, seconds, best_epoch, stopped_early
        As in :class:`~stellarai.emulators.TrainingHistory`.
    """

    loss_name: ClassVar[str] = "Gaussian negative log-likelihood"

    def plot(self, ax: Any = None) -> Figure:
        """Loss curves (training and validation NLL, linear scale: it can be negative)."""
        from matplotlib.figure import Figure

        if ax is None:
            ax = Figure(figsize=(6, 3.5)).add_subplot()
        epochs = range(1, self.epochs + 1)
        ax.plot(epochs, self.train_loss, label="training")
        ax.plot(epochs, self.valid_loss, label="validation")
        if self.best_epoch >= 0:
            ax.axvline(self.best_epoch + 1, color="0.6", ls=":", label="best")
        ax.set_xlabel("epoch")
        ax.set_ylabel(self.loss_name)
        ax.legend()
        return ax.figure


@dataclass(frozen=True)
class TrainSettings:
    """Settings of one training run (see :meth:`FoundationModel.pretrain
    <stellarai.foundation.FoundationModel.pretrain>` for their meaning)."""

    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int | None = 5
    seed: int = 0
    noise: tuple[float, float] = (0.0, 0.0)
    continuum: float = 0.0
    progress: bool = True

    def check(self) -> None:
        """Raise :class:`FoundationError` for a bad setting."""
        for name, value in (("epochs", self.epochs), ("batch_size", self.batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise FoundationError(f"{name} must be an integer >= 1, got {value!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise FoundationError(f"lr must be a positive number, got {self.lr!r}")
        if self.patience is not None and (isinstance(self.patience, bool) or
                                          not isinstance(self.patience, int) or
                                          self.patience < 1):
            raise FoundationError(f"patience must be a positive integer or None, got "
                                  f"{self.patience!r}")
        low, high = self.noise
        if not 0 <= low <= high < 1:
            raise FoundationError(f"noise must be (low, high) with 0 <= low <= high < 1, got "
                                  f"{self.noise!r}")
        if not 0 <= self.continuum < 1:
            raise FoundationError(f"continuum must be in [0, 1), got {self.continuum!r}")


def gaussian_nll(mean: Tensor, log_var: Tensor, target: Tensor, target_sigma: Tensor,
                 known: Tensor) -> Tensor:
    """Mean Gaussian NLL over the known labels (the label's own variance added).

    Examples
    --------
    >>> import torch
    >>> z = torch.zeros(1, 1)
    >>> float(gaussian_nll(z, z, z, z, torch.ones(1, 1, dtype=torch.bool)))
    0.0
    """
    variance = torch.exp(log_var) + target_sigma**2
    terms = 0.5 * (torch.log(variance) + (mean - target) ** 2 / variance)
    return terms[known].mean()


def _batches(blocks: Sequence[TokenBlock], batch_size: int, generator: torch.Generator
             ) -> list[tuple[int, Tensor]]:
    batches = []
    for b, block in enumerate(blocks):
        order = torch.randperm(len(block), generator=generator)
        batches.extend((b, rows) for rows in torch.split(order, batch_size))
    shuffle = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffle]


def _loss(net: FoundationNet, block: TokenBlock, generator: torch.Generator, size: int,
          min_size: int, settings: TrainSettings, line_floor: float | None
          ) -> tuple[Tensor, Tensor]:
    context = augment(sample_contexts(block, size, generator, min_size=min_size,
                                      line_floor=line_floor), generator,
                      noise=settings.noise, continuum=settings.continuum)
    mean, log_var, _ = net(context.wavelength, context.flux, context.sigma, context.padding)
    loss = gaussian_nll(mean, log_var, block.labels, block.label_sigma, block.known)
    error = (mean.detach() - block.labels).abs()[block.known]
    return loss, error


def train_network(net: FoundationNet, train: Sequence[TokenBlock], valid: Sequence[TokenBlock],
                  settings: TrainSettings, *, context: int, min_context: int,
                  line_floor: float | None = None,
                  parameters: Sequence[nn.Parameter] | None = None,
                  description: str = "training",
                  checkpoint: str | os.PathLike[str] | None = None, resume: bool = False,
                  stop_after: int | None = None) -> FoundationHistory:
    """Train ``net`` in place on token blocks; keep the weights of the best epoch.

    Parameters
    ----------
    net : FoundationNet
        The network.
    train, valid : sequence of TokenBlock
        Training and validation spectra with labels.
    settings : TrainSettings
        Epochs, batch size, learning rate, patience, seed, augmentation, progress bar.
    context, min_context : int
        Pixels per context, and the fewest a training context keeps.
    line_floor : float, optional
        Context pixels are drawn with weight ``max(|1 - flux|, line_floor)`` (None:
        uniformly); see :func:`~stellarai.foundation.tokens.sample_contexts`.
    parameters : sequence of torch.nn.Parameter, optional
        Train only these (the others stay bit-identical); default all.
    description : str
        Label of the progress bar.
    checkpoint : str or path-like, optional
        Stem of checkpoint files (``.safetensors`` + ``.json``) written after every epoch:
        weights, best weights, optimizer state, step and history.
    resume : bool
        Continue from ``checkpoint`` if its files exist (the settings must be the same);
        the run then ends with the weights an uninterrupted run would have.
    stop_after : int, optional
        End after this many epochs in total (the schedule still spans
        ``settings.epochs``): a time-boxed session that a later call with ``resume=True``
        continues. The best weights are restored only when the run is over.

    Returns
    -------
    FoundationHistory

    Raises
    ------
    FoundationError
        For bad settings, or a checkpoint written with other settings.
    FoundationFileError
        For an unreadable checkpoint, or one of another network.
    """
    settings.check()
    resuming = check_resume(checkpoint, resume, stop_after, FoundationError)
    trainable = list(net.parameters() if parameters is None else parameters)
    if not trainable:
        raise FoundationError("nothing to train: every parameter is frozen")
    optimizer = torch.optim.AdamW(trainable, lr=settings.lr,
                                  weight_decay=settings.weight_decay)
    history = FoundationHistory()
    steps = sum(math.ceil(len(block) / settings.batch_size) for block in train)
    total, step, best = settings.epochs * steps, 0, BestWeights(settings.patience)
    run = {**{k: v for k, v in asdict(settings).items() if k != "progress"},
           "context": context, "min_context": min_context,
           "line_floor": line_floor, "n_train": [len(b) for b in train],
           "n_trainable": sum(p.numel() for p in trainable)}
    run["noise"] = list(run["noise"])
    if resuming:
        record = read_checkpoint(checkpoint, net, optimizer, best, fmt=CHECKPOINT_FORMAT,
                                 settings=run, error=FoundationError,
                                 file_error=FoundationFileError)
        step, history = int(record["step"]), FoundationHistory(**record["history"])
    end = settings.epochs if stop_after is None else min(settings.epochs, stop_after)
    bar = tqdm(range(history.epochs, end), initial=history.epochs, total=settings.epochs,
               disable=not settings.progress, desc=description, unit="epoch")
    rate = settings.lr
    for epoch in bar:
        if history.stopped_early:
            break
        tic = time.perf_counter()
        generator = torch.Generator().manual_seed(settings.seed * 1_000_003 + epoch)
        net.train()
        running, count = 0.0, 0
        for b, rows in _batches(train, settings.batch_size, generator):
            rate = learning_rate(step, total, settings.lr, "cosine")
            for group in optimizer.param_groups:
                group["lr"] = rate
            loss, _ = _loss(net, train[b].rows(rows), generator, context, min_context,
                            settings, line_floor)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            running += float(loss.detach()) * len(rows)
            count += len(rows)
        valid_loss, valid_mae = evaluate(net, valid, context, settings,
                                         line_floor=line_floor)
        history.train_loss.append(running / count)
        history.valid_loss.append(valid_loss)
        history.valid_mae.append(valid_mae)
        history.lr.append(rate)
        history.seconds.append(time.perf_counter() - tic)
        bar.set_postfix(train=f"{history.train_loss[-1]:.3f}", valid=f"{valid_loss:.3f}")
        best.update(history, net)
        if checkpoint is not None:
            write_checkpoint(checkpoint, net, optimizer, best,
                             {"settings": run, "step": step, "history": history.to_dict()},
                             fmt=CHECKPOINT_FORMAT)
    bar.close()
    if history.epochs >= settings.epochs or history.stopped_early:
        best.restore(net)
    net.eval()
    return history


def evaluate(net: FoundationNet, blocks: Sequence[TokenBlock], context: int,
             settings: TrainSettings, *, batch_size: int = 256,
             line_floor: float | None = None) -> tuple[float, float]:
    """Mean NLL and mean absolute scaled-label error on fixed random contexts."""
    generator = torch.Generator().manual_seed(settings.seed + 7_919)
    net.eval()
    total, errors, count = 0.0, [], 0
    with torch.no_grad():
        for block in blocks:
            for rows in torch.split(torch.arange(len(block)), batch_size):
                loss, error = _loss(net, block.rows(rows), generator, context, context,
                                    settings, line_floor)
                total += float(loss) * len(rows)
                count += len(rows)
                errors.append(error)
    return total / count, float(torch.cat(errors).mean())
