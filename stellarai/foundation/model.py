r"""The spectral foundation model: one transformer for any instrument's spectra.

A spectrum is read as a set of (wavelength, flux, uncertainty) pixel tokens, so one model
serves any wavelength range and resolution. It is pre-trained on many synthetic spectra
(:meth:`FoundationModel.pretrain`), fine-tuned on a few observed ones
(:meth:`FoundationModel.finetune`), and predicts labels with uncertainties
(:meth:`FoundationModel.predict`) from a random context of a few hundred pixels,
averaged over many contexts.

References
----------
Koblischke, N., & Bovy, J. 2024, arXiv:2411.04750 (SpectraFM).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import astropy.units as u
import numpy as np
import torch
from astropy.table import QTable

from ..emulators.encoding import SinusoidalEncoding
from ..emulators.payne import seeded
from ..grids import SpectralGrid, training_and_validation
from ..labels import LabelSpace
from .attention import AttentionMap
from .errors import ExtrapolationWarning, FoundationError
from .network import FoundationNet
from .tokens import TokenBlock, pad_stars, sample_contexts, star_tokens
from .training import FoundationHistory, TrainSettings, train_network

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["FoundationModel"]

Outside = Literal["raise", "warn"]
EXTRAPOLATION_MARGIN = 0.01
"""Pixels farther than this share of their wavelength outside every trained range are
"far outside" (1 %: about 100 Å at 1 µm)."""


class FoundationModel:
    r"""A SpectraFM-like transformer over pixel tokens (Koblischke & Bovy 2024).

    Parameters
    ----------
    label_space : LabelSpace
        The labels it predicts (one query token each); their bounds set the scaling.
    d_model, n_heads, mlp_hidden, n_blocks, n_decoder : int
        Width, attention heads, MLP width, self-attention blocks, label decoder blocks.
    n_frequencies : int
        Periods of the sinusoidal :math:`\ln\lambda` encoding.
    min_period, max_period : float
        Shortest and longest period, in :math:`\ln\lambda` (2e-5 is 6 km/s, about a pixel
        at R = 55,000; 2 spans any optical–infrared range).
    reference_wavelength : Quantity
        Origin of the encoding.
    context : int
        Pixels per context (a few hundred).
    min_context : int
        Fewest pixels a training context keeps (sizes are drawn uniformly between the
        two, so the model learns that fewer pixels mean larger uncertainties).
    line_floor : float or None
        Context pixels are drawn with weight :math:`\max(|1 - f|, \texttt{line\_floor})`,
        :math:`f` the normalized flux, in training and prediction alike: most pixels of a
        spectrum are continuum, and a uniform context of a few hundred of them holds few
        line pixels. None draws uniformly (the behaviour of models saved before this
        option, which load with None).
    seed : int
        Seed of the initial weights.

    Attributes
    ----------
    module : FoundationNet
        The torch network (scaled labels; tensors only).
    wavelength_ranges : list of (float, float)
        Vacuum ranges (Å) of the spectra it was trained on.
    history : FoundationHistory or None
        Record of the last training run.
    calibration : numpy.ndarray
        Factor per label applied to the predicted standard deviations, set after each
        training run so that the pulls on the validation spectra have unit RMS (variance
        recalibration on held-out data, as in Kuleshov et al. 2018).
    provenance : dict
        Training record (JSON-serializable), saved with the model.

    Examples
    --------
    >>> from stellarai.emulators.toy import toy_grid
    >>> grid = toy_grid(64, n_pix=120)
    >>> model = FoundationModel(grid.label_space, d_model=16, n_heads=2, mlp_hidden=32,
    ...                         n_blocks=1, context=64, min_context=16)
    >>> history = model.pretrain(grid, epochs=2, progress=False)
    >>> table = model.predict(grid.spectrum(0))
    >>> table.colnames, table["name"].tolist()
    (['name', 'value', 'uncertainty', 'unit'], ['teff', 'logg', 'feh'])
    """

    def __init__(self, label_space: LabelSpace, *, d_model: int = 64, n_heads: int = 4,
                 mlp_hidden: int = 128, n_blocks: int = 3, n_decoder: int = 1,
                 n_frequencies: int = 48, min_period: float = 2e-5, max_period: float = 2.0,
                 reference_wavelength: u.Quantity = 10_000 * u.AA, context: int = 256,
                 min_context: int = 32, line_floor: float | None = 0.02, seed: int = 0
                 ) -> None:
        if not isinstance(label_space, LabelSpace):
            raise FoundationError(f"label_space must be a LabelSpace, got "
                                  f"{type(label_space).__name__}")
        for name, value in (("context", context), ("min_context", min_context)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise FoundationError(f"{name} must be a positive integer, got {value!r}")
        if line_floor is not None and not (isinstance(line_floor, (int, float)) and
                                           0 < line_floor < math.inf):
            raise FoundationError(f"line_floor must be a positive number or None, got "
                                  f"{line_floor!r}")
        if min_context > context:
            raise FoundationError(f"min_context ({min_context}) must not exceed context "
                                  f"({context})")
        reference = u.Quantity(reference_wavelength).to_value(u.AA)
        self.label_space = label_space
        self.context, self.min_context = context, min_context
        self.line_floor = None if line_floor is None else float(line_floor)
        self._architecture = {
            "d_model": d_model, "n_heads": n_heads, "mlp_hidden": mlp_hidden,
            "n_blocks": n_blocks, "n_decoder": n_decoder, "n_frequencies": n_frequencies,
            "min_period": float(min_period), "max_period": float(max_period),
            "reference_wavelength": float(reference), "context": context,
            "min_context": min_context, "line_floor": self.line_floor}
        encoding = SinusoidalEncoding(n_frequencies, min_period, max_period,
                                      reference=math.log(reference))
        with seeded(seed):
            self.module = FoundationNet(len(label_space), encoding, d_model=d_model,
                                        n_heads=n_heads, mlp_hidden=mlp_hidden,
                                        n_blocks=n_blocks, n_decoder=n_decoder)
        self.module.eval()
        self.wavelength_ranges: list[tuple[float, float]] = []
        self.history: FoundationHistory | None = None
        self.provenance: dict[str, Any] = {"runs": []}
        self.calibration = np.ones(len(label_space))

    def __repr__(self) -> str:
        ranges = ", ".join(f"{lo:.0f}-{hi:.0f}" for lo, hi in self.wavelength_ranges)
        return (f"<FoundationModel: labels {', '.join(self.label_space.names)}; "
                f"{self.module.head.in_features}-wide, {len(self.module.blocks)} blocks; "
                f"context {self.context} px; trained on {ranges or 'nothing yet'} Angstrom>")

    def architecture(self) -> dict[str, Any]:
        """The constructor's settings (JSON-serializable)."""
        return dict(self._architecture)

    # ----------------------------------------------------------------- data in
    def _label_columns(self, space: LabelSpace, what: str) -> list[int]:
        missing = [n for n in self.label_space.names if n not in space.names]
        if missing:
            raise FoundationError(f"{what} lacks the labels {missing} that the model predicts "
                                  f"({list(self.label_space.names)})")
        return [space.index(n) for n in self.label_space.names]

    def _grid_block(self, grid: SpectralGrid, what: str = "grid", *, labels: bool = True
                    ) -> TokenBlock:
        if not isinstance(grid, SpectralGrid):
            raise FoundationError(f"{what} must be a SpectralGrid, got {type(grid).__name__}")
        if grid.is_lazy:
            grid = grid.load()
        flux = torch.as_tensor(np.asarray(grid.flux), dtype=torch.float32)
        valid = torch.isfinite(flux)
        if grid.ivar is None:
            sigma = torch.zeros_like(flux)
        else:
            ivar = torch.as_tensor(np.asarray(grid.ivar), dtype=torch.float32)
            valid &= ivar > 0
            sigma = torch.where(valid, 1 / torch.sqrt(ivar.clamp_min(1e-30)), 0.0)
        if labels:
            columns = self._label_columns(grid.label_space, what)
            scaled = self.label_space.scale(grid.label_array[:, columns])
        else:
            scaled = np.zeros((len(grid), len(self.label_space)))
        return self._block(torch.as_tensor(grid.wavelength.to_value(u.AA)),
                           flux.nan_to_num(), sigma, valid, scaled, None, what)

    def _block(self, wavelength: Tensor, flux: Tensor, sigma: Tensor, valid: Tensor,
               labels: np.ndarray, label_sigma: np.ndarray | None, what: str) -> TokenBlock:
        empty = (~valid.any(1)).nonzero().flatten()
        if len(empty):
            raise FoundationError(f"{what}: spectrum {int(empty[0])} has no valid pixel")
        labels_t = torch.as_tensor(labels, dtype=torch.float32)
        known = torch.isfinite(labels_t)
        sigma_t = torch.zeros_like(labels_t) if label_sigma is None else \
            torch.as_tensor(label_sigma, dtype=torch.float32)
        return TokenBlock(wavelength.to(torch.float64), flux, sigma, valid,
                          labels_t.nan_to_num(), sigma_t.nan_to_num(), known)

    def _stars_block(self, stars: Sequence[Any], labels: Any, label_uncertainty: Any
                     ) -> TokenBlock:
        tokens = [star_tokens(s, f"spectra[{i}]")[:3] for i, s in enumerate(stars)]
        wavelength, flux, sigma, valid = pad_stars(tokens)
        values, sigmas = self._parse_labels(labels, label_uncertainty, len(stars))
        return self._block(wavelength, flux, sigma, valid, values, sigmas, "spectra")

    def _parse_labels(self, labels: Any, uncertainty: Any, n: int
                      ) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(labels, (Mapping, QTable)):
            raise FoundationError(f"labels must be a table or a mapping of label columns, got "
                                  f"{type(labels).__name__}")
        names = list(labels.colnames if isinstance(labels, QTable) else labels)
        unknown = [name for name in names if name not in self.label_space.names]
        if unknown:
            raise FoundationError(f"labels {unknown} are not labels of this model "
                                  f"({list(self.label_space.names)})")
        if not names:
            raise FoundationError("labels holds no label column")
        uncertainty = {} if uncertainty is None else uncertainty
        values = np.full((n, len(self.label_space)), np.nan)
        sigmas = np.zeros((n, len(self.label_space)))
        span = self.label_space.upper - self.label_space.lower
        for j, label in enumerate(self.label_space.labels):
            if label.name in names:
                column = np.broadcast_to(label.to_value(labels[label.name]), (n,))
                values[:, j] = column
            if label.name in uncertainty:
                error = uncertainty[label.name]
                error = error.to_value(label.unit) if isinstance(error, u.Quantity) and \
                    not isinstance(label.unit, u.FunctionUnitBase) else \
                    getattr(error, "value", error)
                sigmas[:, j] = np.broadcast_to(np.asarray(error, dtype=float), (n,)) / span[j]
        scaled = self.label_space.scale(values)
        return scaled, sigmas

    # ----------------------------------------------------------------- training
    def pretrain(self, grids: SpectralGrid | Sequence[SpectralGrid],
                 valid: SpectralGrid | Sequence[SpectralGrid] | None = None, *,
                 valid_fraction: float = 0.1, epochs: int = 20, batch_size: int = 32,
                 lr: float = 1e-3, weight_decay: float = 1e-4, patience: int | None = 5,
                 seed: int = 0, noise: tuple[float, float] = (0.0, 0.01),
                 continuum: float = 0.0, progress: bool = True,
                 checkpoint: str | os.PathLike[str] | None = None, resume: bool = False,
                 stop_after: int | None = None) -> FoundationHistory:
        """Pre-train on one or more synthetic grids (different instruments welcome).

        Parameters
        ----------
        grids : SpectralGrid or sequence of SpectralGrid
            Training spectra; each grid may have its own wavelengths and resolution. Their
            label spaces must hold the model's labels.
        valid : SpectralGrid or sequence, optional
            Validation grids, one per training grid; by default ``valid_fraction`` of each
            is held out (seeded).
        epochs, batch_size, lr, weight_decay, patience, seed
            AdamW with a cosine schedule, early stopping after ``patience`` epochs without
            a lower validation loss (None: never); ``seed`` fixes batches and contexts.
        noise : (float, float)
            Each training context gets Gaussian noise of a level uniform in this range
            (added to its uncertainty too), so the model learns to read noisy spectra.
        continuum : float
            Standard deviation of a random linear continuum error per context.
        progress : bool
            Show a progress bar.
        checkpoint : str or path-like, optional
            Stem of checkpoint files (``.safetensors`` + ``.json``, no pickle) written after
            every epoch: weights, best weights, optimizer state and history.
        resume : bool
            Continue from ``checkpoint`` if its files exist (same data and settings); the
            result is the one an uninterrupted run gives.
        stop_after : int, optional
            End after this many epochs in total (the schedule still spans ``epochs``), for
            time-boxed sessions continued later with ``resume=True``.

        Returns
        -------
        FoundationHistory
        """
        settings = TrainSettings(epochs, batch_size, lr, weight_decay, patience, seed,
                                 tuple(noise), float(continuum), progress)
        grids = [grids] if isinstance(grids, SpectralGrid) else list(grids)
        valids = [None] * len(grids) if valid is None else \
            [valid] if isinstance(valid, SpectralGrid) else list(valid)
        if not grids or len(valids) != len(grids):
            raise FoundationError(f"need at least one training grid and one validation grid "
                                  f"per training grid, got {len(grids)} and {len(valids)}")
        train_blocks, valid_blocks = [], []
        for i, (grid, held) in enumerate(zip(grids, valids, strict=True)):
            grid, held = training_and_validation(grid, held, valid_fraction, seed,
                                                 error=FoundationError,
                                                 train_name=f"grids[{i}]")
            train_blocks.append(self._grid_block(grid, f"grids[{i}]"))
            valid_blocks.append(self._grid_block(held, f"valid[{i}]"))
        return self._train(train_blocks, valid_blocks, settings, None, "pretrain",
                           checkpoint=checkpoint, resume=resume, stop_after=stop_after)

    def finetune(self, spectra: SpectralGrid | Sequence[Any], labels: Any = None, *,
                 label_uncertainty: Mapping[str, Any] | None = None,
                 frozen_blocks: int = 0, valid_fraction: float = 0.1, epochs: int = 100,
                 batch_size: int = 16, lr: float = 3e-4, weight_decay: float = 1e-4,
                 patience: int | None = 15, seed: int = 0,
                 noise: tuple[float, float] = (0.0, 0.0), continuum: float = 0.0,
                 progress: bool = True, checkpoint: str | os.PathLike[str] | None = None,
                 resume: bool = False, stop_after: int | None = None) -> FoundationHistory:
        """Fine-tune on a few (observed) spectra with labels.

        Parameters
        ----------
        spectra : SpectralGrid or sequence of spectra
            A grid (its labels are used when ``labels`` is None; its ``ivar`` gives the
            pixels' uncertainties), or one spectrum object per star (a Spectrum,
            SpectrumList or EchelleSpectrumList, any instrument).
        labels : QTable or mapping, optional
            One row per star; columns named like the model's labels (Quantities, or
            numbers in the label's unit). A label may be absent (not trained on) or NaN
            for some stars.
        label_uncertainty : mapping, optional
            Standard deviations of the labels, by name (Quantity or number per star or
            one for all), added to the predicted variance in the loss.
        frozen_blocks : int
            Keep the tokenizer and the first ``frozen_blocks`` encoder blocks fixed
            (0: train everything; ``n_blocks``: train only the label decoder and head).
        valid_fraction : float
            Share of the stars (at least one) held out for early stopping.
        epochs, batch_size, lr, weight_decay, patience, seed, noise, continuum, progress
            As for :meth:`pretrain`.
        checkpoint, resume, stop_after
            As for :meth:`pretrain` (use another checkpoint path than pre-training's).

        Returns
        -------
        FoundationHistory
        """
        n_blocks = len(self.module.blocks)
        if isinstance(frozen_blocks, bool) or not isinstance(frozen_blocks, int) or \
                not 0 <= frozen_blocks <= n_blocks:
            raise FoundationError(f"frozen_blocks must be an integer in [0, {n_blocks}], got "
                                  f"{frozen_blocks!r}")
        if not 0 < valid_fraction < 1:
            raise FoundationError(f"valid_fraction must be in (0, 1), got {valid_fraction!r}")
        settings = TrainSettings(epochs, batch_size, lr, weight_decay, patience, seed,
                                 tuple(noise), float(continuum), progress)
        if isinstance(spectra, SpectralGrid):
            if labels is not None:
                spectra = SpectralGrid(spectra.wavelength, spectra.flux, labels,
                                       self.label_space, ivar=spectra.ivar)
            block = self._grid_block(spectra, "spectra")
        else:
            if labels is None:
                raise FoundationError("labels are needed when spectra is not a SpectralGrid")
            block = self._stars_block(list(spectra), labels, label_uncertainty)
        n = len(block)
        if n < 2:
            raise FoundationError(f"fine-tuning needs at least 2 stars, got {n}")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        n_valid = max(1, int(round(valid_fraction * n)))
        frozen = {id(p) for p in self.module.frozen_parameters(frozen_blocks)}
        trainable = [p for p in self.module.parameters() if id(p) not in frozen]
        return self._train([block.rows(order[n_valid:])], [block.rows(order[:n_valid])],
                           settings, trainable, "finetune", checkpoint=checkpoint,
                           resume=resume, stop_after=stop_after, frozen_blocks=frozen_blocks)

    def _train(self, train: list[TokenBlock], valid: list[TokenBlock],
               settings: TrainSettings, parameters: list | None, kind: str, *,
               checkpoint: str | os.PathLike[str] | None, resume: bool,
               stop_after: int | None, **extra: Any) -> FoundationHistory:
        history = train_network(self.module, train, valid, settings, context=self.context,
                                min_context=self.min_context, line_floor=self.line_floor,
                                parameters=parameters, description=kind,
                                checkpoint=checkpoint, resume=resume, stop_after=stop_after)
        for block in train:
            self._add_range(block.wavelength_range())
        self.history = history
        self.calibration = self._calibrate(valid)
        self.provenance["runs"].append({
            "kind": kind, "n_spectra": sum(len(b) for b in train),
            "n_valid": sum(len(b) for b in valid), "settings": {
                k: v for k, v in vars(settings).items() if k != "progress"},
            "history": history.to_dict(), **extra})
        return history

    def _calibrate(self, blocks: list[TokenBlock], n_contexts: int = 8) -> np.ndarray:
        """RMS pull per label on held-out blocks (label uncertainties included)."""
        sums, counts = np.zeros(len(self.label_space)), np.zeros(len(self.label_space))
        for block in blocks:
            mean, variance = self._predict_block(block, n_contexts, seed=1)
            known = block.known.numpy()
            target, sigma = block.labels.double().numpy(), block.label_sigma.double().numpy()
            pull2 = (mean - target) ** 2 / (variance + sigma**2)
            sums += np.where(known, pull2, 0).sum(0)
            counts += known.sum(0)
        scale = np.sqrt(sums / np.maximum(counts, 1))
        return np.where(counts > 0, np.clip(scale, 0.1, 10.0), 1.0)

    def _add_range(self, new: tuple[float, float]) -> None:
        ranges = sorted([*self.wavelength_ranges, new])
        merged = [ranges[0]]
        for lo, hi in ranges[1:]:
            if lo <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
            else:
                merged.append((lo, hi))
        self.wavelength_ranges = merged

    # ----------------------------------------------------------------- prediction
    def _check_coverage(self, wavelength: Tensor, outside: Outside, what: str) -> None:
        if outside not in ("raise", "warn"):
            raise FoundationError(f"outside must be 'raise' or 'warn', got {outside!r}")
        if not self.wavelength_ranges:
            raise FoundationError("the model is not trained yet: call pretrain() first")
        far = torch.ones_like(wavelength, dtype=torch.bool)
        for lo, hi in self.wavelength_ranges:
            far &= (wavelength < lo * (1 - EXTRAPOLATION_MARGIN)) | \
                (wavelength > hi * (1 + EXTRAPOLATION_MARGIN))
        if far.any():
            ranges = ", ".join(f"{lo:.0f}-{hi:.0f}" for lo, hi in self.wavelength_ranges)
            message = (f"{what}: {int(far.sum())} of {len(wavelength)} valid pixels "
                       f"({float(wavelength[far].min()):.0f}-{float(wavelength[far].max()):.0f}"
                       f" Angstrom) lie far outside every trained range ({ranges} Angstrom)")
            if outside == "raise":
                raise FoundationError(message + "; pass outside='warn' to predict anyway "
                                      "(extrapolated)")
            warnings.warn(message + "; the prediction is extrapolated", ExtrapolationWarning,
                          stacklevel=3)

    def _label_indices(self, labels: Sequence[str] | None) -> list[int]:
        if labels is None:
            return list(range(len(self.label_space)))
        names = [labels] if isinstance(labels, str) else list(labels)
        unknown = [n for n in names if n not in self.label_space.names]
        if unknown:
            raise FoundationError(f"the model was not trained on {unknown}; it predicts "
                                  f"{list(self.label_space.names)}")
        return [self.label_space.index(n) for n in names]

    def _predict_block(self, block: TokenBlock, n_contexts: int, seed: int,
                       batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
        r"""Scaled means and variances ``(n, n_labels)`` averaged over random contexts.

        With :math:`K` contexts giving means :math:`\mu_k` and variances :math:`v_k`, the
        prediction is :math:`\bar\mu` with variance
        :math:`\max(\bar v - (1 - 1/K)\,s^2,\ s^2/K)`, :math:`s^2` the spread of the
        :math:`\mu_k`: each :math:`v_k` already holds the scatter between contexts, of
        which averaging keeps only :math:`1/K`. (Uncalibrated; see :attr:`calibration`.)
        """
        if isinstance(n_contexts, bool) or not isinstance(n_contexts, int) or n_contexts < 1:
            raise FoundationError(f"n_contexts must be a positive integer, got {n_contexts!r}")
        generator = torch.Generator().manual_seed(seed)
        means, variances = [], []
        self.module.eval()
        with torch.no_grad():
            for rows in torch.split(torch.arange(len(block)), batch_size):
                part = block.rows(rows)
                mu, var = [], []
                for _ in range(n_contexts):
                    c = sample_contexts(part, self.context, generator,
                                        line_floor=self.line_floor)
                    mean, log_var, _ = self.module(c.wavelength, c.flux, c.sigma, c.padding)
                    mu.append(mean)
                    var.append(torch.exp(log_var))
                mu_t, var_t = torch.stack(mu).double(), torch.stack(var).double()
                spread = mu_t.var(0, unbiased=False)
                total = torch.maximum(var_t.mean(0) - (1 - 1 / n_contexts) * spread,
                                      spread / n_contexts)
                means.append(mu_t.mean(0))
                variances.append(total)
        return torch.cat(means).numpy(), torch.cat(variances).numpy()

    def _physical(self, mean: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, ...]:
        span = self.label_space.upper - self.label_space.lower
        return self.label_space.unscale(mean), np.sqrt(variance) * span * self.calibration

    def predict(self, spectra: Any, *, labels: Sequence[str] | str | None = None,
                n_contexts: int = 16, seed: int = 0, outside: Outside = "raise") -> QTable:
        """Labels with uncertainties of one star from any of its spectra.

        Parameters
        ----------
        spectra : Spectrum, SpectrumList or EchelleSpectrumList
            One star: a spectrum, or its orders (any instrument the model was trained on,
            or a part of its range). Continuum-normalized flux; masked and NaN pixels are
            skipped (NaN ones with a warning from :mod:`stellarai.spectra`).
        labels : str or sequence of str, optional
            Labels to report (default: all the model predicts).
        n_contexts : int
            Random contexts averaged; their spread enters the uncertainty.
        seed : int
            Seed of the contexts.
        outside : {"raise", "warn"}
            What to do when pixels lie far outside every trained range.

        Returns
        -------
        QTable
            One row per label: ``name``, ``value``, ``uncertainty`` (1 σ) and ``unit``,
            the format of the fitters' result tables.

        Raises
        ------
        FoundationError
            For a label the model was not trained on, a spectrum without valid pixels, or
            (``outside="raise"``) pixels far outside every trained range.
        """
        indices = self._label_indices(labels)
        wavelength, flux, sigma, _ = star_tokens(spectra)
        self._check_coverage(wavelength, outside, "spectra")
        block = TokenBlock(wavelength, flux[None], sigma[None],
                           torch.ones(1, len(flux), dtype=torch.bool),
                           torch.zeros(1, len(self.label_space)),
                           torch.zeros(1, len(self.label_space)),
                           torch.ones(1, len(self.label_space), dtype=torch.bool))
        value, error = self._physical(*self._predict_block(block, n_contexts, seed))
        units = self.label_space.units
        return QTable({"name": [self.label_space.names[j] for j in indices],
                       "value": [float(value[0, j]) for j in indices],
                       "uncertainty": [float(error[0, j]) for j in indices],
                       "unit": [units[j].to_string() for j in indices]})

    def predict_many(self, stars: SpectralGrid | Sequence[Any], *, n_contexts: int = 16,
                     seed: int = 0, outside: Outside = "raise") -> QTable:
        """Labels of many stars at once: one row per star.

        Parameters
        ----------
        stars : SpectralGrid or sequence of spectra
            A grid (one star per row; its labels are ignored) or one spectrum object per
            star.
        n_contexts, seed, outside
            As for :meth:`predict`.

        Returns
        -------
        QTable
            A column per label (Quantity) and ``<label>_uncertainty`` beside it.
        """
        if isinstance(stars, SpectralGrid):
            block = self._grid_block(stars, "stars", labels=False)
        else:
            tokens = [star_tokens(s, f"stars[{i}]")[:3] for i, s in enumerate(stars)]
            wavelength, flux, sigma, valid = pad_stars(tokens)
            zeros = np.zeros((len(tokens), len(self.label_space)))
            block = self._block(wavelength, flux, sigma, valid, zeros, None, "stars")
        self._check_coverage(block.wavelength.expand_as(block.flux)[block.valid], outside,
                             "stars")
        value, error = self._physical(*self._predict_block(block, n_contexts, seed))
        table = QTable()
        for j, label in enumerate(self.label_space.labels):
            table[label.name] = value[:, j] * label.unit
            table[f"{label.name}_uncertainty"] = error[:, j] * label.unit
        return table

    def attention(self, spectrum: Any, label: str, *, n_contexts: int = 32, seed: int = 0,
                  outside: Outside = "raise") -> AttentionMap:
        """Which pixels the model reads for ``label``: per-pixel attention of its query.

        Parameters
        ----------
        spectrum : Spectrum, SpectrumList or EchelleSpectrumList
            One star.
        label : str
            A label the model predicts.
        n_contexts : int
            Random contexts averaged (more cover more pixels).
        seed, outside
            As for :meth:`predict`.

        Returns
        -------
        AttentionMap
            Per order: wavelength, flux and relative attention; ``plot()`` draws them.
        """
        (index,) = self._label_indices([label])
        wavelength, flux, sigma, pixels = star_tokens(spectrum)
        self._check_coverage(wavelength, outside, "spectrum")
        n = len(flux)
        total, count = torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
        generator = torch.Generator().manual_seed(seed)
        block = TokenBlock(wavelength, flux[None], sigma[None],
                           torch.ones(1, n, dtype=torch.bool), torch.zeros(1, 1),
                           torch.zeros(1, 1), torch.ones(1, 1, dtype=torch.bool))
        self.module.eval()
        with torch.no_grad():
            for _ in range(n_contexts):
                c = sample_contexts(block, self.context, generator,
                                    line_floor=self.line_floor)
                _, _, weights = self.module(c.wavelength, c.flux, c.sigma, c.padding)
                used = ~c.padding[0]
                share = weights[0, index].double() * used.sum()
                total.index_add_(0, c.index[0][used], share[used])
                count.index_add_(0, c.index[0][used], torch.ones(int(used.sum()),
                                                                  dtype=torch.float64))
        relative = torch.where(count > 0, total / count.clamp_min(1), torch.nan).numpy()
        attention = [np.where(pos >= 0, relative[np.maximum(pos, 0)], np.nan)
                     for _, _, pos in pixels]
        return AttentionMap(label, [w * u.AA for w, _, _ in pixels],
                            [f for _, f, _ in pixels], attention)

    # ----------------------------------------------------------------- files
    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False
             ) -> tuple[Path, Path]:
        """Write ``<path>.safetensors`` and ``<path>.json`` (see
        :func:`~stellarai.foundation.save_model`)."""
        from .serialization import save_model

        return save_model(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FoundationModel:
        """Read a model written by :meth:`save` (never unpickles anything)."""
        from .serialization import load_model

        return load_model(path)
