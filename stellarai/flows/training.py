r"""Maximum-likelihood training of a :class:`~stellarai.flows.network.FlowNetwork`.

The conventions of :class:`stellarai.emulators.Trainer`: AdamW with a cosine schedule and
linear warm-up, a validation pass after each epoch, early stopping with patience (the best
weights are kept), a tqdm progress bar and a loss-curve figure. Shuffling in epoch ``e``
uses a generator seeded with ``(seed, e)``, so the same seed gives the same weights. The
loss is the mean negative log-likelihood of the standardized PCA coefficients.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from .errors import FlowError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .network import FlowNetwork

__all__ = ["FlowHistory", "cosine_lr", "train_flow"]


def cosine_lr(step: int, total: int, peak: float, warmup: float = 0.05) -> float:
    r"""Linear warm-up over ``warmup`` of the steps, then :math:`\tfrac12\eta(1+\cos\pi t)`.

    Examples
    --------
    >>> [round(cosine_lr(s, 100, 1e-3), 6) for s in (0, 5, 50, 99)]
    [0.0, 0.001, 0.000533, 0.0]
    """
    warm = int(round(warmup * total))
    if step < warm:
        return peak * step / warm
    t = (step - warm) / max(total - warm - 1, 1)
    return 0.5 * peak * (1 + math.cos(math.pi * min(t, 1.0)))


@dataclass
class FlowHistory:
    """Per-epoch record of a flow's training.

    Attributes
    ----------
    train_loss, valid_loss : list of float
        Mean negative log-likelihood of the standardized coefficients on the training
        batches and on the validation spectra.
    lr, seconds : list of float
        Learning rate at the end of each epoch and wall time of each epoch.
    best_epoch : int
        Epoch (from 0) with the lowest validation loss; its weights are kept.
    stopped_early : bool
        True if early stopping ended the run.
    """

    train_loss: list[float] = field(default_factory=list)
    valid_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        """Number of epochs run."""
        return len(self.train_loss)

    @property
    def best_valid_loss(self) -> float:
        """Lowest validation loss (NaN before the first epoch)."""
        return self.valid_loss[self.best_epoch] if self.best_epoch >= 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable copy."""
        return asdict(self)

    def plot(self, ax: Any = None) -> Figure:
        """Loss curves (training and validation NLL) as a matplotlib Figure."""
        from matplotlib.figure import Figure

        if ax is None:
            fig = Figure(figsize=(6, 3.5))
            ax = fig.add_subplot()
        else:
            fig = ax.figure
        epochs = np.arange(1, self.epochs + 1)
        ax.plot(epochs, self.train_loss, label="training")
        ax.plot(epochs, self.valid_loss, label="validation")
        if self.best_epoch >= 0:
            ax.axvline(self.best_epoch + 1, color="0.6", ls=":", label="best")
        ax.set_xlabel("epoch")
        ax.set_ylabel("negative log-likelihood")
        ax.legend()
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


def train_flow(network: FlowNetwork, train: tuple[Tensor, Tensor | None],
               valid: tuple[Tensor, Tensor | None], *, epochs: int = 100,
               batch_size: int = 128, lr: float = 1e-3, weight_decay: float = 0.0,
               patience: int | None = 10, seed: int = 0, progress: bool = True) -> FlowHistory:
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

    Returns
    -------
    FlowHistory
    """
    _check_settings(epochs, batch_size, lr, patience)
    z_train, c_train = train
    z_valid, c_valid = valid
    optimizer = torch.optim.AdamW(network.flow.parameters(), lr=lr, weight_decay=weight_decay)
    history = FlowHistory()
    total = epochs * math.ceil(len(z_train) / batch_size)
    step, bad_epochs, best_state = 0, 0, None
    bar = tqdm(range(epochs), disable=not progress, desc="training SpectralFlow", unit="epoch")
    for epoch in bar:
        tic = time.perf_counter()
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        network.train()
        running = 0.0
        for rows in torch.split(torch.randperm(len(z_train), generator=generator), batch_size):
            rate = cosine_lr(step, total, lr)
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
        if math.isfinite(valid_loss) and (history.best_epoch < 0
                                          or valid_loss < history.best_valid_loss):
            history.best_epoch, bad_epochs = epoch, 0
            best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
        else:
            bad_epochs += 1
            if patience is not None and bad_epochs >= patience:
                history.stopped_early = True
                break
    bar.close()
    if best_state is not None:
        network.load_state_dict(best_state)
    network.eval()
    return history
