r"""One :class:`Trainer` for every emulator backend.

AdamW with a learning-rate schedule (cosine with linear warm-up, or one-cycle), a
validation pass after each epoch, early stopping with patience (the best weights are kept),
resumable checkpoints (safetensors for every tensor, JSON for the rest: no pickle), a tqdm
progress bar and a loss-curve figure. Training is deterministic: batches and random pixel
subsets of epoch ``e`` come from a generator seeded with ``(seed, e)``, so the same seed
gives bit-identical weights, and a run resumed from a checkpoint ends where an
uninterrupted run ends.

Fine-tuning (for example a TransformerPayne pre-trained on one grid, adapted to another)
is the same trainer with ``parameters=`` restricted to some blocks and its own learning
rate; see :meth:`TransformerPayne.finetune_parameters
<stellarai.emulators.TransformerPayne.finetune_parameters>`.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from tqdm.auto import tqdm

from .base import SpectralEmulator
from .errors import EmulatorError, EmulatorFileError
from .serialization import emulator_paths

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..grids import SpectralGrid

__all__ = ["BestWeights", "Trainer", "TrainingHistory", "learning_rate", "read_checkpoint",
           "write_checkpoint"]

Schedule = Literal["cosine", "onecycle", "constant"]
_CHECKPOINT_FORMAT = "stellarai.emulator-checkpoint"
_CHECKPOINT_VERSION = 2  # 2: optimizer parameter groups by optimizer name


def learning_rate(step: int, total: int, peak: float, schedule: Schedule = "cosine",
                  warmup: float = 0.05) -> float:
    r"""Learning rate at optimizer step ``step`` of ``total``.

    ``"cosine"``: linear warm-up over the first ``warmup`` share of the steps, then
    :math:`\eta = \tfrac12\eta_{\max}(1 + \cos\pi t)` down to 0. ``"onecycle"``: cosine
    rise from :math:`\eta_{\max}/25` to :math:`\eta_{\max}` over the first 30 % of the
    steps, then cosine decay to :math:`\eta_{\max}/10^4` (Smith & Topin 2017).
    ``"constant"``: :math:`\eta_{\max}`.

    Examples
    --------
    >>> [round(learning_rate(s, 100, 1e-3), 6) for s in (0, 5, 50, 99)]
    [0.0, 0.001, 0.000533, 0.0]
    """
    if schedule == "constant":
        return peak
    if schedule == "cosine":
        warm = int(round(warmup * total))
        if step < warm:
            return peak * step / warm
        t = (step - warm) / max(total - warm - 1, 1)
        return 0.5 * peak * (1 + math.cos(math.pi * min(t, 1.0)))
    if schedule == "onecycle":
        rise = max(int(0.3 * total), 1)
        start, end = peak / 25, peak / 1e4
        if step < rise:
            t = step / rise
            return start + (peak - start) * 0.5 * (1 - math.cos(math.pi * t))
        t = min((step - rise) / max(total - rise - 1, 1), 1.0)
        return end + (peak - end) * 0.5 * (1 + math.cos(math.pi * t))
    raise EmulatorError(f"schedule must be 'cosine', 'onecycle' or 'constant', got {schedule!r}")


@dataclass
class TrainingHistory:
    """Per-epoch record of a training run.

    Attributes
    ----------
    train_loss, valid_loss : list of float
        Mean squared flux error on the training batches (mean over the epoch) and on the
        validation spectra (all pixels).
    valid_mae : list of float
        Mean absolute flux error on the validation spectra.
    lr : list of float
        Learning rate at the end of each epoch.
    seconds : list of float
        Wall time of each epoch.
    best_epoch : int
        Epoch (from 0) with the lowest validation loss; its weights are the ones kept.
    stopped_early : bool
        True if early stopping ended the run.

    Notes
    -----
    Other trainers can reuse this record by subclassing it and setting
    :attr:`loss_name` (the y-axis label of :meth:`plot`).
    """

    loss_name: ClassVar[str] = "mean squared flux error"
    """What the losses are (the y-axis label of :meth:`plot`)."""

    train_loss: list[float] = field(default_factory=list)
    valid_loss: list[float] = field(default_factory=list)
    valid_mae: list[float] = field(default_factory=list)
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
        """Loss curves (training and validation MSE, log scale) as a matplotlib Figure."""
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
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(self.loss_name)
        ax.legend()
        return fig


class BestWeights:
    """Early stopping: keeps the weights of the best validation epoch, counts the others.

    Every trainer of the package (emulators, flows, the foundation model, domain
    translation) calls :meth:`update` once per epoch, after appending the epoch's
    validation loss to its history.

    Parameters
    ----------
    patience : int or None
        Stop after this many epochs without a lower validation loss (None: never).
    bad_epochs : int
        Epochs without improvement so far (restored from a checkpoint).
    state : dict of str to Tensor, optional
        The best weights so far (restored from a checkpoint).

    Examples
    --------
    >>> history, keeper = TrainingHistory(), BestWeights(patience=1)
    >>> net = torch.nn.Linear(1, 1)
    >>> for loss in (0.5, 0.4, 0.45):
    ...     history.valid_loss.append(loss); history.train_loss.append(loss)
    ...     keeper.update(history, net)
    >>> history.best_epoch, history.stopped_early
    (1, True)
    """

    def __init__(self, patience: int | None, bad_epochs: int = 0,
                 state: dict[str, Tensor] | None = None) -> None:
        self.patience = patience
        self.bad_epochs = bad_epochs
        self.state = state

    def update(self, history: TrainingHistory, module: torch.nn.Module) -> None:
        """Judge the last epoch of ``history``: keep ``module``'s weights if it is the best.

        Sets ``history.best_epoch``, and ``history.stopped_early`` when the patience runs out.
        A non-finite validation loss never counts as the best.
        """
        loss = history.valid_loss[-1]
        if math.isfinite(loss) and (history.best_epoch < 0 or loss < history.best_valid_loss):
            history.best_epoch, self.bad_epochs = len(history.valid_loss) - 1, 0
            self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        else:
            self.bad_epochs += 1
            if self.patience is not None and self.bad_epochs >= self.patience:
                history.stopped_early = True

    def restore(self, module: torch.nn.Module) -> None:
        """Load the best weights into ``module`` (nothing happens before the first best)."""
        if self.state is not None:
            module.load_state_dict(self.state)


def _grid_tensors(grid: SpectralGrid, emulator: SpectralEmulator) -> tuple[Tensor, Tensor]:
    """Scaled labels and flux of a whole grid, in the emulator's dtype."""
    if grid.label_space.names != emulator.label_space.names:
        raise EmulatorError(f"the grid's labels {list(grid.label_space.names)} differ from the "
                            f"emulator's {list(emulator.label_space.names)}")
    wavelength = emulator.wavelength
    if wavelength is None or grid.n_pix != len(wavelength) or not np.array_equal(
            grid.wavelength.value, wavelength.value):
        raise EmulatorError("the grid's wavelength differs from the emulator's wavelength; "
                            "build the emulator with wavelength=grid.wavelength")
    labels = emulator.label_space.scale(grid.label_array)
    dataset = grid.dataset(scaled=False, dtype=emulator.dtype)
    flux = torch.stack([item[1] for item in dataset.__getitems__(list(range(len(grid))))]
                       ) if len(grid) else torch.zeros((0, grid.n_pix), dtype=emulator.dtype)
    return torch.as_tensor(labels, dtype=emulator.dtype), flux


class Trainer:
    """Train (or fine-tune) any :class:`~stellarai.emulators.SpectralEmulator`.

    Parameters
    ----------
    emulator : SpectralEmulator
        The emulator; its network is trained in place.
    epochs : int
        Maximum number of epochs.
    batch_size : int
        Spectra per optimizer step.
    lr : float
        Peak learning rate of AdamW.
    weight_decay : float
        AdamW's decoupled weight decay.
    schedule : {"cosine", "onecycle", "constant"}
        Learning-rate schedule over all steps (see :func:`learning_rate`).
    warmup : float
        Warm-up share of the steps for ``"cosine"``.
    patience : int or None
        Stop after this many epochs without a lower validation loss (None: never).
    seed : int
        Seed of the shuffling and of the random pixel subsets.
    parameters : iterable of torch.nn.Parameter, optional
        Train only these (fine-tuning); the other weights stay bit-identical. Default: all.
    checkpoint : str or path-like, optional
        Stem of the checkpoint files (``.safetensors`` + ``.json``), written after every
        epoch; ``fit(..., resume=True)`` continues from them.
    progress : bool
        Show a tqdm progress bar over epochs.
    threads : int, optional
        torch CPU threads while training (restored afterwards); None leaves torch's
        setting. One thread is often fastest for small networks, and avoids OpenMP
        threads spin-waiting when the machine is busy.

    Examples
    --------
    >>> import astropy.units as u, numpy as np
    >>> from stellarai.emulators import PayneEmulator
    >>> from stellarai.grids import SpectralGrid
    >>> from stellarai.labels import LabelSpace
    >>> space = LabelSpace.default().subset(["teff"])
    >>> wl = np.linspace(5000, 5010, 30)
    >>> teff = np.linspace(4000, 6000, 40)
    >>> flux = 1 - 0.5 * np.exp(-0.5 * ((wl - 5005) / 1.0) ** 2) * (teff[:, None] / 6000)
    >>> grid = SpectralGrid(wl * u.AA, flux, {"teff": teff * u.K}, space)
    >>> emu = PayneEmulator(space, grid.wavelength, hidden=(32,))
    >>> history = Trainer(emu, epochs=5, batch_size=8, progress=False).fit(grid)
    >>> history.epochs, history.best_valid_loss < history.valid_loss[0] or history.epochs == 1
    (5, True)
    """

    def __init__(self, emulator: SpectralEmulator, *, epochs: int = 200, batch_size: int = 64,
                 lr: float = 1e-3, weight_decay: float = 0.0, schedule: Schedule = "cosine",
                 warmup: float = 0.05, patience: int | None = 30, seed: int = 0,
                 parameters: Iterable[nn.Parameter] | None = None,
                 checkpoint: str | os.PathLike[str] | None = None,
                 progress: bool = True, threads: int | None = None) -> None:
        if not isinstance(emulator, SpectralEmulator):
            raise EmulatorError(f"emulator must be a SpectralEmulator, got "
                                f"{type(emulator).__name__}")
        for name, value, low in (("epochs", epochs, 1), ("batch_size", batch_size, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise EmulatorError(f"{name} must be an integer >= {low}, got {value!r}")
        if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
            raise EmulatorError(f"lr must be a positive number, got {lr!r}")
        if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int)
                                     or patience < 1):
            raise EmulatorError(f"patience must be a positive integer or None, got {patience!r}")
        learning_rate(0, 10, 1.0, schedule)  # validates the schedule name
        self.emulator = emulator
        self.epochs, self.batch_size, self.lr = epochs, batch_size, float(lr)
        self.weight_decay, self.schedule, self.warmup = float(weight_decay), schedule, warmup
        self.patience, self.seed, self.progress = patience, int(seed), progress
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or threads < 1):
            raise EmulatorError(f"threads must be a positive integer or None, got {threads!r}")
        self.threads = threads
        trainable = list(emulator.module.parameters() if parameters is None else parameters)
        owned = {id(p) for p in emulator.module.parameters()}
        if not trainable or any(id(p) not in owned for p in trainable):
            raise EmulatorError("parameters must be a non-empty selection of the emulator's "
                                "network parameters")
        self._trainable = trainable
        self.optimizer = torch.optim.AdamW(trainable, lr=self.lr, weight_decay=self.weight_decay)
        self.checkpoint = None if checkpoint is None else Path(os.fspath(checkpoint))
        self.history = TrainingHistory()
        self._step = 0
        self._best = BestWeights(self.patience)

    # ------------------------------------------------------------------ training
    def fit(self, train: SpectralGrid, valid: SpectralGrid | None = None, *,
            valid_fraction: float = 0.1, resume: bool = False,
            stop_after: int | None = None) -> TrainingHistory:
        """Train on a grid; validate after each epoch; keep the best weights.

        Parameters
        ----------
        train : SpectralGrid
            Training spectra, on the emulator's wavelength.
        valid : SpectralGrid, optional
            Validation spectra. If omitted, ``train`` is split by
            :meth:`SpectralGrid.split <stellarai.grids.SpectralGrid.split>` with
            ``(1 - valid_fraction, valid_fraction)`` and this trainer's seed.
        valid_fraction : float
            Share of ``train`` used for validation when ``valid`` is not given.
        resume : bool
            Continue from this trainer's checkpoint files if they exist (start afresh if
            neither exists; a checkpoint path is required, else
            :class:`~stellarai.emulators.EmulatorError`).
        stop_after : int, optional
            End this call after that many epochs in total, a positive integer (the
            schedule still spans ``epochs``): a time-boxed session that a later
            ``fit(..., resume=True)`` continues.

        Returns
        -------
        TrainingHistory
            Also kept as :attr:`history`; the emulator's ``provenance["training"]`` records
            the run.
        """
        saved = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            return self._fit(train, valid, valid_fraction, resume, stop_after)
        finally:
            torch.set_num_threads(saved)

    def _fit(self, train: SpectralGrid, valid: SpectralGrid | None, valid_fraction: float,
             resume: bool, stop_after: int | None) -> TrainingHistory:
        from ..grids import training_and_validation

        train, valid = training_and_validation(train, valid, valid_fraction, self.seed,
                                               error=EmulatorError)
        z_train, f_train = _grid_tensors(train, self.emulator)
        z_valid, f_valid = _grid_tensors(valid, self.emulator)
        if len(z_train) == 0 or len(z_valid) == 0:
            raise EmulatorError(f"need at least one training and one validation spectrum, got "
                                f"{len(z_train)} and {len(z_valid)}")
        steps_per_epoch = math.ceil(len(z_train) / self.batch_size)
        total = self.epochs * steps_per_epoch
        if check_resume(self.checkpoint, resume, stop_after):
            self._load_checkpoint()
        start = self.history.epochs
        end = self.epochs if stop_after is None else min(self.epochs, int(stop_after))
        bar = tqdm(range(start, end), initial=start, total=self.epochs,
                   disable=not self.progress, desc=f"training {type(self.emulator).__name__}",
                   unit="epoch")
        module = self.emulator.module
        for epoch in bar:
            if self.history.stopped_early:
                break
            tic = time.perf_counter()
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(len(z_train), generator=generator)
            module.train()
            total_loss = 0.0
            for rows in torch.split(order, self.batch_size):
                lr = learning_rate(self._step, total, self.lr, self.schedule, self.warmup)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                prediction, target = self.emulator.train_batch(z_train[rows], f_train[rows],
                                                               generator)
                loss = torch.mean((prediction - target) ** 2)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                self._step += 1
                total_loss += float(loss.detach()) * len(rows)
            valid_mse, valid_mae = self._validate(z_valid, f_valid)
            self._record(total_loss / len(z_train), valid_mse, valid_mae, lr,
                         time.perf_counter() - tic)
            bar.set_postfix(train=f"{self.history.train_loss[-1]:.2e}",
                            valid=f"{valid_mse:.2e}")
            if self.checkpoint is not None:
                self._save_checkpoint()
        bar.close()
        if end == self.epochs or self.history.stopped_early:
            self._best.restore(module)
        module.eval()
        self._provenance(train, valid)
        return self.history

    def _validate(self, z: Tensor, flux: Tensor) -> tuple[float, float]:
        module = self.emulator.module
        module.eval()
        with torch.no_grad():
            prediction = self.emulator._evaluate(z, None)
        error = prediction - flux
        return float(torch.mean(error**2)), float(torch.mean(error.abs()))

    def _record(self, train_loss: float, valid_mse: float, valid_mae: float, lr: float,
                seconds: float) -> None:
        history = self.history
        history.train_loss.append(train_loss)
        history.valid_loss.append(valid_mse)
        history.valid_mae.append(valid_mae)
        history.lr.append(lr)
        history.seconds.append(seconds)
        self._best.update(history, self.emulator.module)

    def _provenance(self, train: SpectralGrid, valid: SpectralGrid) -> None:
        from .. import __version__

        grid_info = {key: train.provenance.get(key) for key in ("generator", "seed", "created")
                     if key in train.provenance}
        self.emulator.provenance["training"] = {
            "trainer": "stellarai.emulators.Trainer",
            "stellarai_version": __version__,
            "torch_version": torch.__version__,
            "settings": self.settings(),
            "n_train": len(train),
            "n_valid": len(valid),
            "grid": grid_info,
            "epochs_run": self.history.epochs,
            "best_epoch": self.history.best_epoch,
            "stopped_early": self.history.stopped_early,
            "valid_mse": self.history.best_valid_loss,
            "valid_mae": (self.history.valid_mae[self.history.best_epoch]
                          if self.history.best_epoch >= 0 else None),
            "seconds": float(sum(self.history.seconds)),
        }

    def settings(self) -> dict[str, Any]:
        """The trainer's settings as a JSON-serializable dict."""
        return {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                "weight_decay": self.weight_decay, "schedule": self.schedule,
                "warmup": self.warmup, "patience": self.patience, "seed": self.seed,
                "n_trainable": sum(p.numel() for p in self._trainable)}

    def plot_history(self, ax: Any = None) -> Figure:
        """Loss curves as a matplotlib Figure (see :meth:`TrainingHistory.plot`)."""
        return self.history.plot(ax)

    # ------------------------------------------------------------------ checkpoints
    def _save_checkpoint(self) -> None:
        write_checkpoint(self.checkpoint, self.emulator.module, self.optimizer, self._best,
                         {"settings": self.settings(), "step": self._step,
                          "history": self.history.to_dict()},
                         fmt=_CHECKPOINT_FORMAT, version=_CHECKPOINT_VERSION)

    def _load_checkpoint(self) -> None:
        record = read_checkpoint(self.checkpoint, self.emulator.module, self.optimizer,
                                 self._best, fmt=_CHECKPOINT_FORMAT,
                                 version=_CHECKPOINT_VERSION, settings=self.settings(),
                                 ignore=("epochs",))
        self._step = int(record["step"])
        self.history = TrainingHistory(**record["history"])


def _prefixed(tensors: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


Optimizers = torch.optim.Optimizer | Mapping[str, torch.optim.Optimizer]


def _named_optimizers(optimizers: Optimizers) -> dict[str, torch.optim.Optimizer]:
    if isinstance(optimizers, torch.optim.Optimizer):
        return {"optimizer": optimizers}
    return dict(optimizers)


def check_resume(checkpoint: str | os.PathLike[str] | None, resume: bool,
                 stop_after: int | None, error: type[Exception] = EmulatorError) -> bool:
    """Check a trainer's ``checkpoint``/``resume``/``stop_after``; whether to resume.

    Parameters
    ----------
    checkpoint : str or path-like, optional
        Stem of the checkpoint files.
    resume : bool
        Whether to continue from ``checkpoint``.
    stop_after : int, optional
        Epochs after which to stop (a positive integer) or None.
    error : type of Exception
        Raised for a bad ``stop_after``, or ``resume`` without a checkpoint path.

    Returns
    -------
    bool
        True when ``resume`` is asked and a checkpoint file exists (a partial checkpoint
        then fails loudly in :func:`read_checkpoint`); False starts afresh.
    """
    if stop_after is not None and (isinstance(stop_after, bool) or
                                   not isinstance(stop_after, int) or stop_after < 1):
        raise error(f"stop_after must be a positive integer or None, got {stop_after!r}")
    if resume and checkpoint is None:
        raise error("resume=True needs a checkpoint path (pass checkpoint=)")
    return bool(resume) and any(p.exists() for p in emulator_paths(checkpoint))


def write_checkpoint(path: str | os.PathLike[str], module: nn.Module, optimizers: Optimizers,
                     best: BestWeights, record: dict[str, Any], *, fmt: str,
                     version: int | None = None) -> tuple[Path, Path]:
    """Write a training state: ``<path>.safetensors`` (tensors) and ``<path>.json``.

    The weights of ``module``, the best weights kept by ``best``, and the optimizers'
    state tensors go to the safetensors file; ``fmt`` and ``version`` (as ``"format"``
    and ``"format_version"``), ``record`` (JSON-serializable: settings, step,
    history...), ``best.bad_epochs`` and the optimizers' parameter groups to the sidecar.
    Both files are written under temporary names and then renamed, so an interruption
    never leaves a checkpoint whose two files disagree. :func:`read_checkpoint` reads them
    back. Every trainer of the package (emulators, flows, foundation model, domain
    translator) checkpoints through this pair.

    Parameters
    ----------
    path : str or path-like
        Stem (or either file) of the checkpoint.
    module : torch.nn.Module
        The network whose weights are saved.
    optimizers : torch.optim.Optimizer or mapping of str to Optimizer
        One optimizer, or several by name (e.g. a generator's and a discriminator's).
    best : BestWeights
        The early-stopping keeper (best weights and epochs without improvement).
    record : dict
        What else the run needs to resume.
    fmt : str
        The checkpoint's ``"format"`` (which :func:`read_checkpoint` checks).
    version : int, optional
        Its ``"format_version"``, if any.

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        The weights and sidecar paths.
    """
    weights, sidecar = emulator_paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().clone().contiguous()
               for k, v in module.state_dict().items()}
    tensors.update({f"best.{k}": v.contiguous() for k, v in (best.state or {}).items()})
    groups = {}
    for name, optimizer in _named_optimizers(optimizers).items():
        state = optimizer.state_dict()
        groups[name] = state["param_groups"]
        for index, entry in state["state"].items():
            for key, value in entry.items():
                tensors[f"{name}.{index}.{key}"] = torch.as_tensor(value).clone().contiguous()
    header = {"format": fmt} if version is None else {"format": fmt, "format_version": version}
    record = {**header, **record, "bad_epochs": best.bad_epochs, "param_groups": groups}
    save_file(tensors, str(weights) + ".tmp")
    Path(str(sidecar) + ".tmp").write_text(json.dumps(record, indent=1), encoding="utf-8")
    os.replace(str(weights) + ".tmp", weights)
    os.replace(str(sidecar) + ".tmp", sidecar)
    return weights, sidecar


def read_checkpoint(path: str | os.PathLike[str], module: nn.Module, optimizers: Optimizers,
                    best: BestWeights, *, fmt: str, settings: Mapping[str, Any],
                    version: int | None = None, ignore: Sequence[str] = (),
                    check: Callable[[dict[str, Tensor]], None] | None = None,
                    error: type[Exception] = EmulatorError,
                    file_error: type[Exception] = EmulatorFileError) -> dict[str, Any]:
    """Restore a state written by :func:`write_checkpoint`; return its JSON record.

    Parameters
    ----------
    path : str or path-like
        Stem (or either file) of the checkpoint.
    module, optimizers, best
        Receive the weights, the optimizers' states (as passed to
        :func:`write_checkpoint`), and the best weights with the count of epochs
        without improvement.
    fmt : str
        The ``"format"`` the record must have.
    settings : mapping
        Must equal the record's ``"settings"``, but for the keys in ``ignore`` (a run
        resumes only with its own settings).
    version : int, optional
        The ``"format_version"`` the record must have, if any.
    ignore : sequence of str
        Settings that may differ (e.g. the number of epochs, to train longer).
    check : callable, optional
        Called with the saved weights (names without the ``model.`` prefix) before they
        are loaded; raises if they do not belong to this run (e.g. other training data).
    error, file_error : type of Exception
        Raised for different settings, and for an unreadable or foreign checkpoint.

    Returns
    -------
    dict
        The checkpoint's JSON record.
    """
    weights, sidecar = emulator_paths(path)
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
        tensors = load_file(str(weights))
    except (OSError, json.JSONDecodeError, SafetensorError) as exc:
        raise file_error(f"cannot read checkpoint {str(sidecar)!r}: {exc}") from exc
    if not isinstance(record, dict) or record.get("format") != fmt or (
            version is not None and record.get("format_version") != version):
        what = fmt if version is None else f"version-{version} {fmt}"
        raise file_error(f"{str(sidecar)!r} is not a {what} file")
    mine = {k: v for k, v in dict(settings).items() if k not in ignore}
    saved = record.get("settings")
    theirs = {k: v for k, v in saved.items() if k not in ignore} if isinstance(
        saved, dict) else saved
    if theirs != mine:
        raise error(f"checkpoint {str(sidecar)!r} was written with settings {theirs}, which "
                    f"differ from this run's {mine}")
    model = _prefixed(tensors, "model.")
    if check is not None:
        check(model)
    try:
        module.load_state_dict(model)
    except RuntimeError as exc:
        raise file_error(f"checkpoint {str(weights)!r} does not fit this network: "
                         f"{exc}") from exc
    best.state = _prefixed(tensors, "best.") or None
    best.bad_epochs = int(record["bad_epochs"])
    for name, optimizer in _named_optimizers(optimizers).items():
        state: dict[int, dict[str, Tensor]] = {}
        for key, value in _prefixed(tensors, name + ".").items():
            index, entry = key.split(".", 1)
            state.setdefault(int(index), {})[entry] = value
        optimizer.load_state_dict({"state": state,
                                   "param_groups": record["param_groups"][name]})
    return record
