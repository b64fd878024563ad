r"""Training of a :class:`~stellarai.domain.CycleNetwork`.

The conventions of :class:`stellarai.emulators.Trainer`, with its pieces reused
(:class:`~stellarai.emulators.TrainingHistory`, :func:`~stellarai.emulators.learning_rate`):
AdamW with a cosine schedule, a validation pass after each epoch, early stopping with
patience (the best weights are kept), resumable checkpoints (safetensors + JSON, no
pickle), a seed, a tqdm bar and a loss-curve figure.

Each step takes a batch of observed spectra and an equal batch of synthetic spectra that
the frozen emulator makes from labels on the fly, and runs one forward pass
(:meth:`CycleStep.forward`). The discriminators are updated first, on the translated
spectra detached from the graph (:meth:`CycleStep.discriminator_loss`); the encoders and
generators then, with the discriminators' parameters frozen
(:meth:`CycleStep.generator_losses`). Two optimizers hold the two parameter sets, so each
set is changed only by its own losses.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
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
from .errors import DomainError, DomainFileError
from .losses import LossWeights, adversarial, reduced_chi2, split_correlation
from .networks import CycleNetwork
from .scores import SCORE_NAMES, cross_validation_scores

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["LOSS_NAMES", "CycleStep", "DomainHistory", "train_cycle"]

LOSS_NAMES = ("rec_synth", "rec_obs", "cycle_synth", "cycle_obs", "generator", "discriminator",
              "decorrelation")
"""Keys of the per-epoch training losses in :attr:`DomainHistory.components`."""
_CHECKPOINT_FORMAT = "stellarai.domain-checkpoint"
_CHECKPOINT_VERSION = 2  # 2: the shared checkpoint layout


@dataclass
class DomainHistory(TrainingHistory):
    """Per-epoch record of a translator's training.

    The emulators' :class:`~stellarai.emulators.TrainingHistory` (``train_loss`` is the
    weighted generator-side loss, ``valid_loss`` the weighted reconstruction and cycle
    losses on the validation spectra, which early stopping watches), plus:

    Attributes
    ----------
    components : dict of list of float
        Mean of each training loss (:data:`LOSS_NAMES`) per epoch, unweighted.
    scores : dict of list of float
        The cross-validation report (:data:`~stellarai.domain.SCORE_NAMES`) per
        epoch, if a cross-validation set was given.
    """

    loss_name: ClassVar[str] = "weighted loss (reduced chi2 units)"

    components: dict[str, list[float]] = field(default_factory=dict)
    scores: dict[str, list[float]] = field(default_factory=dict)

    def plot(self, ax: Any = None) -> Figure:
        """Loss curves, and the cross-validation scores beside them if any, as a Figure."""
        from matplotlib.figure import Figure

        if ax is not None or not self.scores:
            return super().plot(ax)
        fig = Figure(figsize=(10, 3.5), layout="constrained")
        left, right = fig.subplots(1, 2)
        super().plot(left)
        for name, values in self.scores.items():
            right.plot(range(1, len(values) + 1), values, label=name)
        right.set_yscale("log")
        right.set_xlabel("epoch")
        right.set_ylabel("cross-validation score")
        right.legend(fontsize=7)
        return fig


class CycleStep:
    """The losses of one step, for a network and loss weights.

    Parameters
    ----------
    network : CycleNetwork
    weights : LossWeights
    synthetic_weight : float
        Inverse variance given to every synthetic pixel (synthetic spectra are noise-free;
        the translator uses the observed spectra's median inverse variance).
    cycle_noise, split_dropout : float
        See :meth:`forward`.
    split_decorrelation : float
        Weight of the decorrelation penalty (see :meth:`generator_losses`; 0: none).
    """

    def __init__(self, network: CycleNetwork, weights: LossWeights,
                 synthetic_weight: float, cycle_noise: float = 0.0,
                 split_dropout: float = 0.0, split_decorrelation: float = 0.0) -> None:
        self.network, self.weights = network, weights
        self.synthetic_weight = float(synthetic_weight)
        self.cycle_noise, self.split_dropout = float(cycle_noise), float(split_dropout)
        self.split_decorrelation = float(split_decorrelation)

    def forward(self, synthetic: Tensor, observed: Tensor,
                generator: torch.Generator | None = None) -> dict[str, Tensor]:
        r"""Latents, reconstructions, translations and cycles of a batch pair.

        The synthetic spectra are translated to the observed domain with the split latents
        of the observed batch (:math:`x_{s\to o} = G_o(E_s(x_s), E_{sp}(x_o))`); the
        observed spectra's cycle keeps their own split latents. With ``cycle_noise`` > 0,
        Gaussian noise of that standard deviation is added to the translated spectra
        before they are encoded again: the cycle then cannot pass information through
        signals far below the noise of real spectra (the "steganography" of cycle GANs).
        With ``split_dropout`` > 0, that share of the observed spectra (drawn with
        ``generator``) are reconstructed with the batch's mean split latent instead of their
        own, so the generator must explain from the shared latent whatever it can (lines
        that follow the labels), and the split latent keeps only what the labels cannot
        tell (continuum, instrument).
        """
        net = self.network
        z_s = net.encoder_synth(synthetic)
        z_o, split = net.encode_observed(observed)
        kept = split
        if self.split_dropout > 0 and split.shape[1]:
            drop = torch.rand(len(split), 1, generator=generator) < self.split_dropout
            kept = torch.where(drop, split.mean(0, keepdim=True), split)
        s_to_o = net.generate_observed(z_s, split)
        o_to_s = net.generator_synth(z_o)
        noisy_so, noisy_os = s_to_o, o_to_s
        if self.cycle_noise > 0:
            shape, dtype = (2, *s_to_o.shape), s_to_o.dtype
            noise = self.cycle_noise * torch.randn(shape, generator=generator, dtype=dtype)
            noisy_so, noisy_os = s_to_o + noise[0], o_to_s + noise[1]
        return {
            "z_s": z_s, "z_o": z_o, "split": split, "s_to_o": s_to_o, "o_to_s": o_to_s,
            "rec_s": net.generator_synth(z_s),
            "rec_o": net.generate_observed(z_o, kept),
            "cycle_s": net.generator_synth(net.encoder_obs(noisy_so)),
            "cycle_o": net.generate_observed(net.encoder_synth(noisy_os), kept),
        }

    def discriminator_loss(self, out: Mapping[str, Tensor], synthetic: Tensor,
                           observed: Tensor) -> Tensor:
        """Weighted discriminator loss; every generator-side tensor is detached."""
        net = self.network
        d = {k: v.detach() for k, v in out.items()}
        real_o = torch.cat([d["z_o"], d["split"]], 1)
        fake_o = torch.cat([d["z_s"], d["split"]], 1)
        loss = (adversarial(net.discriminator_obs(observed, real_o), True)
                + adversarial(net.discriminator_obs(d["s_to_o"], fake_o), False)
                + adversarial(net.discriminator_synth(synthetic, d["z_s"]), True)
                + adversarial(net.discriminator_synth(d["o_to_s"], d["z_o"]), False))
        return self.weights.discriminator * loss

    def generator_losses(self, out: Mapping[str, Tensor], synthetic: Tensor, observed: Tensor,
                         weight: Tensor, *, adversarial_terms: bool = True
                         ) -> dict[str, Tensor]:
        """Unweighted losses and their weighted sum ``"total"`` for the generator step.

        The discriminators' parameters are frozen while their logits are computed, so
        this loss puts no gradient on them. ``"decorrelation"`` is
        :func:`~stellarai.domain.losses.split_correlation` between the observed spectra's
        split latents and their shared latents, the latter detached: weighted by
        ``split_decorrelation``, it pushes the split encoder (never the shared one) to keep
        out of the split latent whatever the shared latent already says (the labels, and
        with them the lines that follow the labels but the models lack).
        """
        w_s = torch.full_like(synthetic, self.synthetic_weight)
        losses = {"rec_synth": reduced_chi2(out["rec_s"], synthetic, w_s),
                  "rec_obs": reduced_chi2(out["rec_o"], observed, weight),
                  "cycle_synth": reduced_chi2(out["cycle_s"], synthetic, w_s),
                  "cycle_obs": reduced_chi2(out["cycle_o"], observed, weight)}
        w = self.weights
        total = (w.synthetic * (losses["rec_synth"] + losses["cycle_synth"])
                 + w.observed * (losses["rec_obs"] + losses["cycle_obs"]))
        losses["decorrelation"] = split_correlation(out["z_o"].detach(), out["split"])
        if self.split_decorrelation > 0:
            total = total + self.split_decorrelation * losses["decorrelation"]
        if adversarial_terms:
            net = self.network
            discriminators = list(net.discriminator_parameters())
            for p in discriminators:
                p.requires_grad_(False)
            try:
                fake_o = torch.cat([out["z_s"], out["split"]], 1)
                losses["generator"] = (
                    adversarial(net.discriminator_obs(out["s_to_o"], fake_o), True)
                    + adversarial(net.discriminator_synth(out["o_to_s"], out["z_o"]), True))
            finally:
                for p in discriminators:
                    p.requires_grad_(True)
            total = total + w.generator * losses["generator"]
        losses["total"] = total
        return losses


def _check_settings(epochs: int, batch_size: int, lr: float, lr_discriminator: float,
                    patience: int | None) -> None:
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise DomainError(f"{name} must be an integer >= 1, got {value!r}")
    for name, value in (("lr", lr), ("lr_discriminator", lr_discriminator)):
        if not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
            raise DomainError(f"{name} must be a positive number, got {value!r}")
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int)
                                 or patience < 1):
        raise DomainError(f"patience must be a positive integer or None, got {patience!r}")


class _Run:
    """State of one training run: optimizers, step, best weights, history."""

    def __init__(self, network: CycleNetwork, settings: dict[str, Any]) -> None:
        self.network, self.settings = network, settings
        decay = settings["weight_decay"]
        self.g_opt = torch.optim.AdamW(network.generator_parameters(), lr=settings["lr"],
                                       weight_decay=decay)
        self.d_opt = torch.optim.AdamW(network.discriminator_parameters(),
                                       lr=settings["lr_discriminator"], weight_decay=decay)
        self.history = DomainHistory()
        self.step = 0
        self.keeper = BestWeights(settings["patience"])

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"g_opt": self.g_opt, "d_opt": self.d_opt}

    def save(self, checkpoint: Path) -> None:
        write_checkpoint(checkpoint, self.network, self._optimizers(), self.keeper,
                         {"settings": self.settings, "step": self.step,
                          "history": self.history.to_dict()},
                         fmt=_CHECKPOINT_FORMAT, version=_CHECKPOINT_VERSION)

    def load(self, checkpoint: Path) -> None:
        record = read_checkpoint(checkpoint, self.network, self._optimizers(), self.keeper,
                                 fmt=_CHECKPOINT_FORMAT, version=_CHECKPOINT_VERSION,
                                 settings=self.settings, error=DomainError,
                                 file_error=DomainFileError)
        self.step = int(record["step"])
        self.history = DomainHistory(**record["history"])


def _validation_loss(step: CycleStep, synthetic: Tensor, observed: Tensor,
                     weight: Tensor, seed: int) -> float:
    """Weighted reconstruction and cycle losses of the validation pair.

    The split dropout and cycle noise draw from a generator seeded with ``seed``, the
    same draws every epoch: the loss then changes only with the weights, and does not
    depend on the global random state (which made early stopping, and so whole runs,
    differ between two runs with the same seed).
    """
    step.network.eval()
    with torch.no_grad():
        out = step.forward(synthetic, observed, torch.Generator().manual_seed(seed))
        return float(step.generator_losses(out, synthetic, observed, weight,
                                           adversarial_terms=False)["total"])


def train_cycle(network: CycleNetwork, synthesize: Callable[[int, torch.Generator], Tensor],
                train: tuple[Tensor, Tensor], valid: tuple[Tensor, Tensor, Tensor], *,
                weights: LossWeights, synthetic_weight: float, cycle_noise: float = 0.0,
                split_dropout: float = 0.0, split_decorrelation: float = 0.0, epochs: int = 50,
                batch_size: int = 32, lr: float = 1e-3, lr_discriminator: float | None = None,
                weight_decay: float = 0.0, patience: int | None = 20, seed: int = 0,
                progress: bool = True, checkpoint: str | os.PathLike[str] | None = None,
                resume: bool = False, stop_after: int | None = None,
                cross_validation: tuple[Tensor, Tensor, Tensor] | None = None
                ) -> DomainHistory:
    """Train ``network`` in place; keep the weights of the best validation epoch.

    Parameters
    ----------
    network : CycleNetwork
    synthesize : callable
        ``synthesize(n, generator)`` returns ``n`` synthetic spectra (the frozen emulator
        at labels drawn with ``generator``), in the network's dtype.
    train : (torch.Tensor, torch.Tensor)
        Observed training flux and weights ``(n, n_pix)``.
    valid : (torch.Tensor, torch.Tensor, torch.Tensor)
        Observed validation flux and weights, and as many synthetic validation spectra.
    weights : LossWeights
    synthetic_weight : float
        Inverse variance of the synthetic pixels.
    cycle_noise : float
        Noise added to translated spectra inside the cycles (see :meth:`CycleStep.forward`).
    split_dropout : float
        Share of observed spectra reconstructed with the mean split latent (see
        :meth:`CycleStep.forward`).
    split_decorrelation : float
        Weight of the penalty on correlations between split and shared latents (see
        :meth:`CycleStep.generator_losses`).
    epochs, batch_size, lr, weight_decay, patience, seed, progress, stop_after
        As for :class:`stellarai.emulators.Trainer`; ``lr`` is the encoders' and
        generators' peak learning rate.
    lr_discriminator : float, optional
        Peak learning rate of the discriminators (default ``lr``).
    checkpoint : str or path-like, optional
        Stem of checkpoint files written after every epoch; ``resume=True`` continues.
    cross_validation : (torch.Tensor, torch.Tensor, torch.Tensor), optional
        Paired synthetic flux, observed flux and observed weights for the per-epoch report.

    Returns
    -------
    DomainHistory
    """
    lr_discriminator = lr if lr_discriminator is None else lr_discriminator
    _check_settings(epochs, batch_size, lr, lr_discriminator, patience)
    resuming = check_resume(checkpoint, resume, stop_after, DomainError)
    flux, weight = train
    settings = {"epochs": epochs, "batch_size": batch_size, "lr": float(lr),
                "lr_discriminator": float(lr_discriminator), "weight_decay": weight_decay,
                "patience": patience, "seed": seed, "weights": weights.to_dict(),
                "cycle_noise": cycle_noise, "split_dropout": split_dropout,
                "split_decorrelation": split_decorrelation, "n_train": len(flux)}
    run = _Run(network, settings)
    path = None if checkpoint is None else Path(os.fspath(checkpoint))
    if resuming:
        run.load(path)
    step = CycleStep(network, weights, synthetic_weight, cycle_noise, split_dropout,
                     split_decorrelation)
    history = run.history
    total = epochs * math.ceil(len(flux) / batch_size)
    last = history.epochs if history.stopped_early else (
        epochs if stop_after is None else min(stop_after, epochs))
    bar = tqdm(range(history.epochs, last), disable=not progress,
               desc="training DomainTranslator", unit="epoch")
    for epoch in bar:
        tic = time.perf_counter()
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        sums = dict.fromkeys(LOSS_NAMES, 0.0)
        running = 0.0
        for rows in torch.split(torch.randperm(len(flux), generator=generator), batch_size):
            rate = learning_rate(run.step, total, lr, "cosine")
            for optimizer, peak in ((run.g_opt, lr), (run.d_opt, lr_discriminator)):
                for group in optimizer.param_groups:
                    group["lr"] = rate * peak / lr
            synthetic = synthesize(len(rows), generator)
            network.train()
            out = step.forward(synthetic, flux[rows], generator)
            d_loss = step.discriminator_loss(out, synthetic, flux[rows])
            run.d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            run.d_opt.step()
            losses = step.generator_losses(out, synthetic, flux[rows], weight[rows])
            run.g_opt.zero_grad(set_to_none=True)
            losses["total"].backward()
            run.g_opt.step()
            run.step += 1
            losses["discriminator"] = d_loss / max(weights.discriminator, 1e-300)
            for name in LOSS_NAMES:
                sums[name] += float(losses[name].detach()) * len(rows)
            running += float(losses["total"].detach()) * len(rows)
        valid_loss = _validation_loss(step, valid[2], valid[0], valid[1], seed)
        history.train_loss.append(running / len(flux))
        history.valid_loss.append(valid_loss)
        history.lr.append(rate)
        for name in LOSS_NAMES:
            history.components.setdefault(name, []).append(sums[name] / len(flux))
        if cross_validation is not None:
            scores = cross_validation_scores(network, *cross_validation)
            for name in SCORE_NAMES:
                history.scores.setdefault(name, []).append(scores[name])
        history.seconds.append(time.perf_counter() - tic)
        bar.set_postfix(train=f"{history.train_loss[-1]:.3g}", valid=f"{valid_loss:.3g}")
        run.keeper.update(history, network)
        if path is not None:
            run.save(path)
        if history.stopped_early:
            break
    bar.close()
    if history.stopped_early or history.epochs == epochs:
        run.keeper.restore(network)
    network.eval()
    return history
