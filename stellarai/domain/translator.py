r"""The :class:`DomainTranslator`: Cycle-StarNet between an emulator's spectra and observations.

References
----------
O'Briain, T., Ting, Y.-S., Fabbro, S., Yi, K. M., Venn, K., & Bialek, S. 2021, ApJ, 906,
130 (arXiv:2007.03112): Cycle-StarNet.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

import astropy.units as u
import numpy as np
import torch
from astropy.table import Table
from specutils import Spectrum
from torch import Tensor

from ..emulators import SpectralEmulator
from ..emulators.payne import seeded
from .errors import DomainError
from .inputs import on_grid
from .losses import LossWeights
from .maps import MissingLinesMap, element_of
from .networks import CycleNetwork
from .training import DomainHistory, train_cycle

__all__ = ["DomainTranslator", "Latent"]

Domain = Literal["observed", "synthetic"]
_N_REFERENCE = 256  # reference label rows kept for missing-lines maps


class Latent(NamedTuple):
    """Latent vectors of a batch of spectra: ``shared`` ``(n, n_shared)`` and ``split``
    ``(n, n_split)`` (None for synthetic spectra, which have no split latent)."""

    shared: np.ndarray
    split: np.ndarray | None


def _domain(value: Any, name: str = "to") -> Domain:
    if value not in ("observed", "synthetic"):
        raise DomainError(f"{name} must be 'observed' or 'synthetic', got {value!r}")
    return value


class DomainTranslator:
    """Unpaired translation between synthetic and observed spectra (Cycle-StarNet).

    Encoders :math:`E_{\\rm synth}`, :math:`E_{\\rm obs}` map spectra to a shared latent
    space, a split encoder gives observed spectra a few more latent variables (what the
    models lack: missing lines, instrument, continuum), and generators map back:
    :math:`G_{\\rm synth}` from the shared latent, :math:`G_{\\rm obs}` from both.
    Discriminators judge (spectrum, latent) pairs. Synthetic spectra come from a frozen
    emulator at labels drawn on the fly.

    Parameters
    ----------
    emulator : SpectralEmulator
        The synthetic domain (never trained here). Its wavelength is the translator's grid.
    n_shared, n_split : int
        Sizes of the shared and split latents.
    channels, kernel_size, hidden, share_weights, residual
        Architecture (see :class:`~stellarai.domain.CycleNetwork`).
    weights : LossWeights or mapping, optional
        Loss weights; default Cycle-StarNet's: synthetic 3, observed 9, generator 1,
        discriminator 1.
    seed : int
        Seed of the initial weights.

    Examples
    --------
    See ``docs/domain.rst`` for a worked example.
    """

    def __init__(self, emulator: SpectralEmulator, *, n_shared: int = 16, n_split: int = 4,
                 channels: Sequence[int] = (8, 16, 16), kernel_size: int = 7,
                 hidden: int = 256, share_weights: bool = True, residual: bool = True,
                 weights: LossWeights | Mapping[str, float] | None = None,
                 seed: int = 0) -> None:
        if not isinstance(emulator, SpectralEmulator):
            raise DomainError(f"emulator must be a SpectralEmulator, got "
                              f"{type(emulator).__name__}")
        if emulator.wavelength is None:
            raise DomainError("the emulator has no wavelength grid; the translator works on "
                              "the emulator's pixels")
        self.emulator = emulator
        self.weights = LossWeights.from_any(weights)
        self._grid = torch.as_tensor(emulator.wavelength.to_value(u.AA), dtype=torch.float64)
        with seeded(seed):
            self.network = CycleNetwork(len(self._grid), n_shared=n_shared, n_split=n_split,
                                        channels=channels, kernel_size=kernel_size,
                                        hidden=hidden, share_weights=share_weights,
                                        residual=residual)
        self.seed = seed
        self.history: DomainHistory | None = None
        self.reference_labels: np.ndarray | None = None
        self.provenance: dict[str, Any] = {}

    # ----------------------------------------------------------------- properties
    @property
    def wavelength(self) -> u.Quantity:
        """The translator's (the emulator's) vacuum wavelength grid."""
        return self._grid.numpy().copy() * u.AA

    @property
    def label_space(self) -> Any:
        """The emulator's :class:`~stellarai.labels.LabelSpace`."""
        return self.emulator.label_space

    @property
    def module(self) -> CycleNetwork:
        """The raw network (:class:`~stellarai.domain.CycleNetwork`)."""
        return self.network

    @property
    def is_trained(self) -> bool:
        """True after :meth:`fit` (or :meth:`load`)."""
        return self.history is not None

    def _require_trained(self) -> None:
        if not self.is_trained:
            raise DomainError("the translator is not trained yet; call fit() first")

    # ----------------------------------------------------------------- inputs
    def _flux(self, spectra: Any, what: str, ivar: Any = None,
              default_uncertainty: float = 0.01) -> tuple[Tensor, Tensor]:
        flux, weight = on_grid(spectra, self._grid, ivar=ivar,
                               default_uncertainty=default_uncertainty, what=what)
        dtype = next(self.network.parameters()).dtype
        return flux.to(dtype), weight.to(dtype)

    def _labels(self, labels: Any, what: str) -> np.ndarray:
        """Labels in the emulator's space as ``(n, n_labels)`` canonical values, checked."""
        from ..grids import SpectralGrid

        space = self.emulator.label_space
        if isinstance(labels, SpectralGrid):
            if labels.label_space.names != space.names:
                raise DomainError(
                    f"{what} has labels {list(labels.label_space.names)} but the emulator's "
                    f"label space is {list(space.names)}; the label spaces must match")
            array = np.array(labels.label_array, dtype=np.float64)
        elif isinstance(labels, (Table, Mapping)):
            array = space.parse_batch(labels, ignore_unknown=isinstance(labels, Table))
        else:
            array = np.asarray(labels, dtype=np.float64)
            array = array.reshape(1, -1) if array.ndim == 1 else array
            if array.ndim != 2 or array.shape[1] != len(space):
                raise DomainError(f"{what} must have shape (n, {len(space)}) for the "
                                  f"emulator's labels {list(space.names)}, got {array.shape}")
        if len(array) == 0:
            raise DomainError(f"{what} holds no labels")
        space.check(array)
        return array

    def _synthetic(self, labels: np.ndarray | Tensor) -> Tensor:
        with torch.no_grad():
            values = labels if isinstance(labels, Tensor) else torch.tensor(
                np.array(labels, dtype=np.float64))
            flux = self.emulator.flux(values, check=False)
        return flux.to(next(self.network.parameters()).dtype)

    def _sampler(self, pool: np.ndarray | None):  # noqa: ANN202 - a closure
        space = self.emulator.label_space
        lower = torch.tensor(np.array(space.lower), dtype=torch.float64)
        span = torch.tensor(np.array(space.upper - space.lower), dtype=torch.float64)
        pool_t = None if pool is None else torch.tensor(np.array(pool), dtype=torch.float64)

        def draw(n: int, generator: torch.Generator) -> Tensor:
            if pool_t is None:
                return lower + span * torch.rand(n, len(span), generator=generator,
                                                 dtype=torch.float64)
            return pool_t[torch.randint(len(pool_t), (n,), generator=generator)]

        return draw

    # ----------------------------------------------------------------- training
    def fit(self, observed: Any, *, synthetic_labels: Any = None, valid: Any = None,
            valid_fraction: float = 0.1, cross_validation: Any = None, epochs: int = 50,
            batch_size: int = 32, lr: float = 1e-3, lr_discriminator: float | None = None,
            weight_decay: float = 0.0, patience: int | None = 20,
            checkpoint: str | os.PathLike[str] | None = None, resume: bool = False,
            stop_after: int | None = None, progress: bool = True, threads: int | None = None,
            default_uncertainty: float = 0.01, cycle_noise: float | None = None,
            split_dropout: float = 0.5, split_decorrelation: float = 0.0) -> DomainHistory:
        """Train on unpaired observed spectra and emulator spectra made on the fly.

        Parameters
        ----------
        observed : Spectrum, SpectrumList, SpectralGrid or array
            Observed-domain spectra (normalized), resampled onto the emulator's grid if
            needed; their uncertainties weight the losses and masked pixels are left out.
        synthetic_labels : SpectralGrid, QTable, mapping or array, optional
            Labels the synthetic batches are drawn from (with replacement), e.g. the
            emulator's training grid; its label space must be the emulator's. Default:
            uniform within the emulator's label bounds.
        valid : like ``observed``, optional
            Validation spectra (default: ``valid_fraction`` of ``observed``, seeded).
        cross_validation : SpectralGrid or (spectra, labels), optional
            Observed spectra with known labels, for the per-epoch report of
            :func:`~stellarai.domain.cross_validation_scores` (their synthetic partners are
            the emulator's spectra at the same labels).
        epochs, batch_size, lr, lr_discriminator, weight_decay, patience, checkpoint, resume
            See :func:`~stellarai.domain.train_cycle`.
        stop_after, progress
            As for :class:`stellarai.emulators.Trainer`.
        threads : int, optional
            torch CPU threads while training (restored afterwards).
        default_uncertainty : float
            Flux uncertainty of observed spectra that carry none.
        cycle_noise : float, optional
            Standard deviation of the noise added to translated spectra inside the cycles
            (default: the observed spectra's median uncertainty; 0 turns it off).
        split_dropout : float
            Share of observed spectra reconstructed, in each batch, with the mean split
            latent instead of their own (default 0.5; see
            :meth:`~stellarai.domain.CycleStep.forward`): it keeps label-dependent
            lines out of the split latent.
        split_decorrelation : float
            Weight of a penalty on the squared correlations, over each batch, between the
            observed spectra's split latents and their shared latents (default 0; see
            :meth:`~stellarai.domain.CycleStep.generator_losses`). A stellarai addition,
            not part of Cycle-StarNet: it keeps what the labels tell out of the split
            latent, so that the missing-lines map, which holds the split latent fixed,
            sees the whole response of lines the models lack.

        Returns
        -------
        DomainHistory
        """
        flux, weight = self._flux(observed, "observed",
                                  default_uncertainty=default_uncertainty)
        if valid is None:
            if not 0 < valid_fraction < 1:
                raise DomainError(f"valid_fraction must be in (0, 1), got {valid_fraction!r}")
            order = torch.randperm(len(flux), generator=torch.Generator().manual_seed(self.seed))
            n_valid = max(1, int(round(valid_fraction * len(flux))))
            if len(flux) - n_valid < 1:
                raise DomainError(f"need at least 2 observed spectra, got {len(flux)}")
            v_flux, v_weight = flux[order[:n_valid]], weight[order[:n_valid]]
            flux, weight = flux[order[n_valid:]], weight[order[n_valid:]]
        else:
            v_flux, v_weight = self._flux(valid, "valid", default_uncertainty=default_uncertainty)
        pool = None if synthetic_labels is None else self._labels(synthetic_labels,
                                                                  "synthetic_labels")
        draw = self._sampler(pool)
        generator = torch.Generator().manual_seed(self.seed + 7)
        v_synth = self._synthetic(draw(len(v_flux), generator))
        cv = None
        if cross_validation is not None:
            cv_spectra, cv_labels = (cross_validation, cross_validation) if not isinstance(
                cross_validation, tuple) else cross_validation
            cv_flux, cv_weight = self._flux(cv_spectra, "cross_validation",
                                            default_uncertainty=default_uncertainty)
            cv_synth = self._synthetic(self._labels(cv_labels, "cross_validation labels"))
            if len(cv_synth) != len(cv_flux):
                raise DomainError(f"cross_validation has {len(cv_flux)} spectra but "
                                  f"{len(cv_synth)} label rows")
            cv = (cv_synth, cv_flux, cv_weight)
        synthetic_weight = float(weight[weight > 0].median())
        if cycle_noise is None:
            cycle_noise = synthetic_weight ** -0.5
        if not (isinstance(cycle_noise, (int, float)) and 0 <= cycle_noise < 1):
            raise DomainError(f"cycle_noise must be a number in [0, 1), got {cycle_noise!r}")
        if not (isinstance(split_dropout, (int, float)) and 0 <= split_dropout < 1):
            raise DomainError(f"split_dropout must be a number in [0, 1), got "
                              f"{split_dropout!r}")
        if isinstance(split_decorrelation, bool) or not isinstance(
                split_decorrelation, (int, float)) or not 0 <= split_decorrelation < math.inf:
            raise DomainError(f"split_decorrelation must be a finite number >= 0, got "
                              f"{split_decorrelation!r}")
        saved = torch.get_num_threads()
        if threads is not None:
            if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
                raise DomainError(f"threads must be a positive integer or None, got {threads!r}")
            torch.set_num_threads(threads)
        try:
            self.history = train_cycle(
                self.network, lambda n, g: self._synthetic(draw(n, g)), (flux, weight),
                (v_flux, v_weight, v_synth), weights=self.weights,
                synthetic_weight=synthetic_weight, cycle_noise=float(cycle_noise),
                split_dropout=float(split_dropout),
                split_decorrelation=float(split_decorrelation), epochs=epochs,
                batch_size=batch_size, lr=lr,
                lr_discriminator=lr_discriminator, weight_decay=weight_decay,
                patience=patience, seed=self.seed, progress=progress, checkpoint=checkpoint,
                resume=resume, stop_after=stop_after, cross_validation=cv)
        finally:
            torch.set_num_threads(saved)
        with torch.no_grad():
            self.network.split_mean.copy_(self.network.split(flux).mean(0))
        self.reference_labels = draw(_N_REFERENCE, torch.Generator().manual_seed(
            self.seed + 11)).numpy()
        self.provenance["training"] = {
            "n_observed": len(flux), "n_valid": len(v_flux),
            "synthetic_labels": "uniform in the label bounds" if pool is None else
            f"{len(pool)} label rows", "synthetic_weight": synthetic_weight,
            "epochs_run": self.history.epochs, "best_epoch": self.history.best_epoch,
            "seconds": float(sum(self.history.seconds))}
        return self.history

    # ----------------------------------------------------------------- products
    def _split_for(self, split: Any, n: int) -> Tensor | None:
        if split is None:
            return None
        if isinstance(split, (np.ndarray, Tensor)) and np.shape(split)[-1] == \
                self.network.n_split and np.ndim(split) <= 2 and \
                np.shape(split)[-1] != len(self._grid):
            values = torch.as_tensor(np.asarray(split, dtype=np.float64)).reshape(-1,
                                                                             self.network.n_split)
            values = values.to(next(self.network.parameters()).dtype)
        else:
            flux, _ = self._flux(split, "split")
            with torch.no_grad():
                values = self.network.split(flux)
        if len(values) not in (1, n):
            raise DomainError(f"split gives {len(values)} split latents for {n} spectra; give "
                              "one, or one per spectrum")
        return values.expand(n, -1)

    def translate(self, spectrum: Any, to: Domain = "observed", *, split: Any = None
                  ) -> Spectrum:
        """Translate spectra into the other domain.

        Parameters
        ----------
        spectrum : Spectrum, SpectrumList, SpectralGrid or array
            Spectra of the other domain (``to="observed"``: synthetic spectra, e.g. from the
            emulator; ``to="synthetic"``: observed spectra), resampled onto the grid.
        to : {"observed", "synthetic"}
            Target domain.
        split : Spectrum, array, optional
            For ``to="observed"``: observed spectra whose split latents to use (one, or one
            per spectrum), or split latents ``(n_split,)`` / ``(n, n_split)``. Default: the
            mean split latent of the training spectra.

        Returns
        -------
        Spectrum
            On the translator's grid; 1-D flux for one input spectrum, else ``(n, n_pix)``.
        """
        self._require_trained()
        to = _domain(to)
        flux, _ = self._flux(spectrum, "spectrum")
        with torch.no_grad():
            if to == "observed":
                out = self.network.translate_to_observed(flux, self._split_for(split, len(flux)))
            else:
                if split is not None:
                    raise DomainError("split= is only for translation to the observed domain")
                out = self.network.translate_to_synthetic(flux)
        values = out.double().numpy()
        return Spectrum(flux=(values[0] if len(values) == 1 else values) * u.one,
                        spectral_axis=self.wavelength,
                        meta={"domain": to, "translated_from": "synthetic" if to == "observed"
                              else "observed", "translator": "stellarai.domain"})

    def latent(self, spectrum: Any, domain: Domain = "observed") -> Latent:
        """Shared (and, for observed spectra, split) latent vectors of spectra."""
        self._require_trained()
        domain = _domain(domain, "domain")
        flux, _ = self._flux(spectrum, "spectrum")
        with torch.no_grad():
            if domain == "synthetic":
                return Latent(self.network.encoder_synth(flux).double().numpy(), None)
            shared, split = self.network.encode_observed(flux)
        return Latent(shared.double().numpy(), split.double().numpy())

    def missing_lines(self, label: str, *, labels: Any = None, n_stars: int = 64,
                      step: float = 0.05, split: Any = None,
                      reference: Literal["reconstructed", "emulator"] = "reconstructed"
                      ) -> MissingLinesMap:
        r"""Where the observed domain responds to an abundance and the emulator does not.

        Parameters
        ----------
        label : str
            An abundance label of the emulator (``"ti_h"``), or an element symbol
            (``"Ti"``) that names one.
        labels : QTable, mapping or array, optional
            Reference stars (default: ``n_stars`` rows of the labels the training drew
            synthetic spectra from).
        n_stars : int
            Number of default reference stars (at most 256).
        step : float
            Half-width (dex) of the central difference.
        split : optional
            Split latents for the translation, as in :meth:`translate` (default: mean).
        reference : {"reconstructed", "emulator"}
            The synthetic-domain response the translated one is compared with.
            ``"reconstructed"`` (default): the synthetic generator's output from the same
            shared latent, :math:`G_{\rm synth}(E_{\rm synth}(x_s))`, so that the map is
            the response of what the observed generator adds,
            :math:`G_{\rm obs}(z, z_{sp}) - G_{\rm synth}(z)`; an encoder that passes an
            abundance on only in part weakens both responses alike, and lines the models
            have cancel. ``"emulator"``: the emulator's flux itself (the map of O'Briain et
            al. 2021), where such a partial pass-through leaves positive residuals at the
            element's modelled lines and weakens the missing ones.

        Returns
        -------
        MissingLinesMap
        """
        self._require_trained()
        name = self._abundance_label(label)
        if not (isinstance(step, (int, float)) and step > 0):
            raise DomainError(f"step must be a positive number of dex, got {step!r}")
        if labels is None:
            if isinstance(n_stars, bool) or not isinstance(n_stars, int) or \
                    not 1 <= n_stars <= len(self.reference_labels):
                raise DomainError(f"n_stars must be an integer in [1, "
                                  f"{len(self.reference_labels)}], got {n_stars!r}")
            base = self.reference_labels[:n_stars]
        else:
            base = self._labels(labels, "labels")
        if reference not in ("reconstructed", "emulator"):
            raise DomainError(f"reference must be 'reconstructed' or 'emulator', got "
                              f"{reference!r}")
        column = self.emulator.label_space.index(name)
        shifted = []
        for sign in (1.0, -1.0):
            values = base.copy()
            values[:, column] += sign * step
            shifted.append(self._synthetic(values))
        net = self.network
        splits = self._split_for(split, len(base))
        if splits is None:
            splits = net.split_mean.expand(len(base), net.n_split)
        with torch.no_grad():
            shared = [net.encoder_synth(f) for f in shifted]
            moved = [net.generate_observed(z, splits) for z in shared]
            if reference == "reconstructed":
                shifted = [net.generator_synth(z) for z in shared]

        def response(pair: list[Tensor]) -> np.ndarray:
            return ((pair[0] - pair[1]) / (2 * step)).double().mean(0).numpy()

        translated, synthetic = response(moved), response(shifted)
        return MissingLinesMap(self.wavelength, translated - synthetic, translated, synthetic,
                               name, element_of(name), len(base),
                               meta={"step_dex": step, "reference": reference,
                                     "split": "mean" if split is None else "given"})

    def _abundance_label(self, label: str) -> str:
        names = self.emulator.label_space.names
        if isinstance(label, str) and label in names and _safe_element(label):
            return label
        if isinstance(label, str):
            matches = [n for n in names if n not in ("teff", "logg", "vmic")
                       and _safe_element(n) == label.capitalize()]
            if len(matches) == 1:
                return matches[0]
        abundances = [n for n in names if _safe_element(n)]
        raise DomainError(f"label {label!r} is not an abundance label of the emulator; its "
                          f"abundance labels are {abundances}")

    # ----------------------------------------------------------------- saving
    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Save as ``<path>.safetensors`` + ``<path>.json`` (the emulator beside them as
        ``<path>.emulator.*``); see :func:`~stellarai.domain.save_translator`."""
        from .serialization import save_translator

        save_translator(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DomainTranslator:
        """Load a translator written by :meth:`save`."""
        from .serialization import load_translator

        return load_translator(path)

    def __repr__(self) -> str:
        net = self.network
        state = "trained" if self.is_trained else "untrained"
        return (f"<DomainTranslator ({state}): {net.n_pix} px, shared latent {net.n_shared}, "
                f"split latent {net.n_split}, emulator labels "
                f"{list(self.emulator.label_space.names)}>")


def _safe_element(name: str) -> str:
    try:
        return element_of(name)
    except DomainError:
        return ""
