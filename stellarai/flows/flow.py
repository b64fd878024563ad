r"""`SpectralFlow`: a conditional normalizing flow over PCA-compressed spectra.

References
----------
Papamakarios, G., Nalisnick, E., Rezende, D. J., Mohamed, S., & Lakshminarayanan, B. 2021,
JMLR, 22, 57, "Normalizing Flows for Probabilistic Modeling and Inference"
(arXiv:1912.02762).
Durkan, C., Bekasov, A., Murray, I., & Papamakarios, G. 2019, NeurIPS, "Neural Spline
Flows" (arXiv:1906.04032).
Papamakarios, G., Pavlakou, T., & Murray, I. 2017, NeurIPS, "Masked Autoregressive Flow
for Density Estimation" (arXiv:1705.07057).
Rozet, F., et al., zuko: normalizing flows in PyTorch (https://github.com/probabilists/zuko).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import astropy.units as u
import numpy as np
import torch
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning
from specutils import Spectrum

from ..errors import LabelError
from ..labels import LabelSpace
from .compression import fit_pca
from .errors import FlowError
from .inputs import parse_conditioning, spectra_on_grid
from .network import TRANSFORMS, FlowNetwork
from .training import FlowHistory, train_flow

if TYPE_CHECKING:
    import os

    from matplotlib.figure import Figure

    from ..grids import SpectralGrid

__all__ = ["SpectralFlow"]

_MAD_TO_SIGMA = 1.4826
_RANGE_TOLERANCE = 0.01


def _robust(values: np.ndarray) -> tuple[float, float]:
    """Median and MAD-based standard deviation (floored to stay positive)."""
    median = float(np.median(values))
    scale = _MAD_TO_SIGMA * float(np.median(np.abs(values - median)))
    return median, max(scale, 1e-12 * max(abs(median), 1.0))


class SpectralFlow:
    r"""A normalizing flow over spectra: likelihoods, outlier scores and conditional samples.

    Spectra are compressed to their coefficients on a PCA basis of the training flux
    (computed in torch by SVD), the coefficients are standardized, and a zuko neural spline
    flow (or masked autoregressive flow) models their density, conditioned on a subset of
    the grid's labels (scaled with the grid's :class:`~stellarai.labels.LabelSpace`, then
    standardized) or on nothing.

    Parameters
    ----------
    n_components : int, optional
        Number of PCA components; by default the fewest reaching ``explained_variance``.
    explained_variance : float
        Share of the training variance kept when ``n_components`` is None.
    conditional_on : sequence of str or None
        Labels of the grid to condition on (default Teff and log g); None for an
        unconditional density p(spectrum).
    transform : {"nsf", "maf"}
        zuko's ``NSF`` (monotonic rational-quadratic splines, Durkan et al. 2019) or
        ``MAF`` (affine autoregressive, Papamakarios et al. 2017).
    transforms : int
        Number of autoregressive transforms.
    hidden_features : sequence of int
        Hidden layer widths of each transform's masked network.
    bins : int
        Spline bins (``"nsf"`` only).

    Attributes
    ----------
    network : FlowNetwork
        The torch module (also :attr:`module`), after :meth:`fit` or :meth:`load`.
    history : FlowHistory
        Training record.

    Notes
    -----
    :meth:`log_prob` returns :math:`\log p(c \mid y)`, the density of the spectrum's PCA
    coefficients :math:`c` given the conditioning labels :math:`y`, including the
    change-of-variables term :math:`-\sum_k \log\sigma_k` of the standardization
    :math:`z = (c - \mu)/\sigma`. The basis is orthonormal, so this is also the density of
    the spectrum's projection onto the PCA subspace, in flux units to the power
    :math:`-n_{\rm components}`; what the subspace misses is reported as the reconstruction
    error beside it.

    Examples
    --------
    >>> import astropy.units as u, numpy as np
    >>> from stellarai.grids import SpectralGrid
    >>> from stellarai.labels import LabelSpace
    >>> rng = np.random.default_rng(0)
    >>> wl = np.linspace(5000, 5010, 60)
    >>> teff = rng.uniform(4500, 6500, 300)
    >>> depth = 0.5 * (teff / 6500)[:, None] ** 3
    >>> flux = 1 - depth * np.exp(-0.5 * ((wl - 5005) / 0.3) ** 2)
    >>> flux = flux + 0.002 * rng.standard_normal(flux.shape)
    >>> grid = SpectralGrid(wl * u.AA, flux, {"teff": teff * u.K},
    ...                     LabelSpace.default().subset(["teff"]))
    >>> flow = SpectralFlow(n_components=3, conditional_on=["teff"], transforms=2,
    ...                     hidden_features=(32,))
    >>> history = flow.fit(grid, epochs=5, seed=0, progress=False)
    >>> table = flow.log_prob(grid.spectrum(0), teff=grid.labels["teff"][0])
    >>> table.colnames
    ['log_prob', 'reconstruction_rms', 'n_pixels']
    >>> flow.sample(4, teff=5000 * u.K, seed=1).flux.shape
    (4, 60)
    """

    def __init__(self, n_components: int | None = None, *, explained_variance: float = 0.999,
                 conditional_on: Sequence[str] | None = ("teff", "logg"),
                 transform: str = "nsf", transforms: int = 3,
                 hidden_features: Sequence[int] = (64, 64), bins: int = 8) -> None:
        if transform not in TRANSFORMS:
            raise FlowError(f"transform must be one of {list(TRANSFORMS)}, got {transform!r}")
        if n_components is not None and (isinstance(n_components, bool)
                                         or not isinstance(n_components, int)
                                         or n_components < 1):
            raise FlowError(f"n_components must be a positive integer or None, got "
                            f"{n_components!r}")
        if not 0 < explained_variance <= 1:
            raise FlowError(f"explained_variance must be in (0, 1], got {explained_variance!r}")
        if isinstance(conditional_on, str):
            conditional_on = (conditional_on,)
        if conditional_on is not None and len(conditional_on) == 0:
            conditional_on = None
        self.n_components = n_components
        self.explained_variance = float(explained_variance)
        self.conditional_on = None if conditional_on is None else tuple(conditional_on)
        self.architecture = {"transform": transform, "transforms": int(transforms),
                             "hidden_features": [int(h) for h in hidden_features],
                             "bins": int(bins)}
        self.network: FlowNetwork | None = None
        self.condition_space: LabelSpace | None = None
        self.wavelength: u.Quantity | None = None
        self.flux_unit: u.UnitBase = u.dimensionless_unscaled
        self.label_ranges: dict[str, list[float]] = {}
        self.reference: dict[str, list[float]] = {}
        self.history = FlowHistory()
        self.provenance: dict[str, Any] = {}

    # ------------------------------------------------------------------ state
    @property
    def module(self) -> FlowNetwork:
        """The torch module (escape hatch): ``flow.module(context).log_prob(z)``."""
        return self._require_fitted()

    @property
    def fitted(self) -> bool:
        """True after :meth:`fit` or :meth:`load`."""
        return self.network is not None

    def _require_fitted(self) -> FlowNetwork:
        if self.network is None:
            raise FlowError("this SpectralFlow is not fitted yet: call fit(grid) first, or "
                            "SpectralFlow.load(path)")
        return self.network

    def __repr__(self) -> str:
        cond = "nothing" if self.conditional_on is None else ", ".join(self.conditional_on)
        if self.network is None:
            return f"<SpectralFlow (not fitted), conditional on {cond}>"
        wl = self.wavelength.value
        return (f"<SpectralFlow: {self.network.pca.n_components} PCA components of "
                f"{len(wl)} px, {wl[0]:g}-{wl[-1]:g} Angstrom, "
                f"{self.architecture['transform'].upper()}, conditional on {cond}>")

    # ------------------------------------------------------------------ training
    def _condition(self, grid: SpectralGrid) -> tuple[LabelSpace | None, np.ndarray | None]:
        if self.conditional_on is None:
            return None, None
        names = list(self.conditional_on)
        unknown = [n for n in names if n not in grid.label_space.names]
        if unknown:
            raise LabelError(f"cannot condition on {unknown}: the grid's labels are "
                             f"{list(grid.label_space.names)}")
        space = grid.label_space.subset(names)
        columns = [grid.label_space.index(n) for n in names]
        return space, grid.label_array[:, columns]

    def fit(self, grid: SpectralGrid, valid: SpectralGrid | None = None, *, epochs: int = 100,
            batch_size: int = 128, lr: float = 1e-3, weight_decay: float = 0.0,
            patience: int | None = 10, seed: int = 0, valid_fraction: float = 0.1,
            progress: bool = True, checkpoint: str | os.PathLike[str] | None = None,
            resume: bool = False, stop_after: int | None = None) -> FlowHistory:
        """Compute the PCA basis and train the flow by maximum likelihood.

        Parameters
        ----------
        grid : SpectralGrid
            Training spectra with their labels.
        valid : SpectralGrid, optional
            Validation spectra (early stopping and the outlier-score reference). Default:
            a ``valid_fraction`` share of ``grid`` split off with ``seed``.
        epochs, batch_size, lr, weight_decay, patience, seed, progress
            Training settings (AdamW, cosine schedule, early stopping after ``patience``
            epochs without a lower validation loss; the best weights are kept).
        valid_fraction : float
            Share of ``grid`` held out when ``valid`` is not given.
        checkpoint : str or path-like, optional
            Stem of checkpoint files written after every epoch: ``<stem>.safetensors``
            (weights, best weights, optimizer tensors) and ``<stem>.json`` (settings, step,
            history); no pickle.
        resume : bool
            Continue from ``checkpoint`` if its files exist. The grid, ``valid`` and the
            training settings must be those of the interrupted run; the result equals an
            uninterrupted run's.
        stop_after : int, optional
            End this call after that many epochs in total (the learning-rate schedule still
            spans ``epochs``), keeping the best weights so far: a time-boxed run that a
            later ``fit(..., checkpoint=..., resume=True)`` continues.

        Returns
        -------
        FlowHistory
        """
        from ..grids import training_and_validation

        grid, valid = training_and_validation(grid, valid, valid_fraction, seed,
                                              error=FlowError, train_name="grid")
        if not np.array_equal(grid.wavelength.value, valid.wavelength.value):
            raise FlowError("the validation grid's wavelength differs from the training grid's")
        if len(grid) < 2 or len(valid) < 1:
            raise FlowError(f"need at least 2 training and 1 validation spectra, got "
                            f"{len(grid)} and {len(valid)}")
        space, y_train = self._condition(grid)
        _, y_valid = self._condition(valid)
        f_train = torch.as_tensor(np.asarray(grid.flux[:], dtype=np.float64))
        f_valid = torch.as_tensor(np.asarray(valid.flux[:], dtype=np.float64))
        n_max = min(f_train.shape)
        if self.n_components is not None and self.n_components > n_max:
            raise FlowError(f"n_components = {self.n_components} exceeds the number of training "
                            f"spectra or pixels ({n_max})")
        pca = fit_pca(f_train, n_components=self.n_components,
                      explained_variance=self.explained_variance)
        c_train = pca.project(f_train).coefficients
        c_mean, c_std = c_train.mean(0), c_train.std(0).clamp_min(1e-12)
        if space is None:
            s_train = s_valid = None
            ctx_mean = ctx_std = torch.zeros(0, dtype=torch.float64)
        else:
            s_train = torch.as_tensor(space.scale(y_train))
            s_valid = torch.as_tensor(space.scale(y_valid))
            ctx_mean, ctx_std = s_train.mean(0), s_train.std(0).clamp_min(1e-6)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            network = FlowNetwork(pca, c_mean, c_std, ctx_mean, ctx_std.clone(),
                                  **self.architecture)
            history = train_flow(
                network,
                (network.standardize(c_train), network.context(s_train)),
                (network.standardize(pca.project(f_valid).coefficients),
                 network.context(s_valid)),
                epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                patience=patience, seed=seed, progress=progress, checkpoint=checkpoint,
                resume=resume, stop_after=stop_after)
        self.network, self.condition_space, self.history = network, space, history
        self.wavelength = grid.wavelength.copy()
        self.flux_unit = grid.flux_unit
        self.label_ranges = ({} if space is None else
                             {n: [float(y_train[:, j].min()), float(y_train[:, j].max())]
                              for j, n in enumerate(space.names)})
        self.reference = self._reference(f_valid, y_valid)
        self.provenance = {"n_train": len(grid), "n_valid": len(valid),
                           "training": {"epochs": epochs, "batch_size": batch_size, "lr": lr,
                                        "weight_decay": weight_decay, "patience": patience,
                                        "seed": seed},
                           "grid": {k: grid.provenance[k] for k in ("generator", "seed")
                                    if k in grid.provenance}}
        return history

    def _reference(self, flux: torch.Tensor, labels: np.ndarray | None) -> dict[str, list[float]]:
        """Median and robust spread of -log p and log RMS on the validation spectra."""
        nll, log_rms = self._raw_scores(flux, torch.zeros_like(flux, dtype=torch.bool), labels)
        return {"neg_log_prob": list(_robust(nll)), "log_rms": list(_robust(log_rms))}

    # ------------------------------------------------------------------ evaluation
    def _raw_scores(self, flux: torch.Tensor, mask: torch.Tensor,
                    labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        table = self._evaluate(flux, mask, labels)
        return -table[0], np.log(np.maximum(table[1], 1e-300))

    def _evaluate(self, flux: torch.Tensor, mask: torch.Tensor,
                  labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        network = self._require_fitted()
        scaled = None if labels is None else torch.as_tensor(
            self.condition_space.scale(labels))
        with torch.no_grad():
            projection = network.pca.project(flux, mask)
            log_p = network.log_prob(projection.coefficients, scaled)
        return log_p.numpy(), projection.rms.numpy(), projection.n_used.numpy()

    def _inputs(self, spectra: Any, mask: Any, values: Any,
                labels: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, np.ndarray | None]:
        self._require_fitted()
        grid = torch.as_tensor(self.wavelength.to_value(u.AA), dtype=torch.float64)
        flux, bad = spectra_on_grid(spectra, grid, self.flux_unit, mask)
        y = parse_conditioning(self.condition_space, len(flux), values, labels)
        self._warn_outside_training(y)
        return flux, bad, y

    def _warn_outside_training(self, y: np.ndarray | None) -> None:
        """Warn when conditioning labels leave the training range by over 1 % of it."""
        if y is None:
            return
        for j, name in enumerate(self.condition_space.names):
            lo, hi = self.label_ranges[name]
            tol = _RANGE_TOLERANCE * (hi - lo)
            outside = (y[:, j] < lo - tol) | (y[:, j] > hi + tol)
            if outside.any():
                warnings.warn(f"{int(outside.sum())} spectra have {name} outside the flow's "
                              f"training range [{lo:g}, {hi:g}]: the flow extrapolates there",
                              AstropyUserWarning, stacklevel=4)

    def log_prob(self, spectra: Any, values: Any = None, /, *, mask: Any = None,
                 **labels: Any) -> QTable:
        """Log-likelihood of each spectrum's PCA coefficients, and its reconstruction error.

        Parameters
        ----------
        spectra : Spectrum, SpectrumList, OrderBatch, tuple, array or Quantity
            One spectrum per row, resampled onto the flow's grid (see
            :func:`~stellarai.flows.inputs.spectra_on_grid`); masked pixels are left out
            of the projection.
        values : mapping, Table or Row, optional
            Conditioning labels (extra table columns are ignored).
        mask : array of bool, optional
            For array input: True where a pixel must be ignored.
        **labels
            Conditioning labels by name (numbers in the label's unit, Quantities, or 1-d
            arrays with one value per spectrum).

        Returns
        -------
        `~astropy.table.QTable`
            ``log_prob`` (see the class Notes), ``reconstruction_rms`` (RMS residual of
            the projection over the used pixels, in the flux unit) and ``n_pixels``.

        Raises
        ------
        FlowError
            If the flow is not fitted.
        SpectrumInputError
            For spectra not covering the flow's grid, or fully masked.
        LabelError
            For missing, unknown or out-of-range conditioning labels.
        """
        flux, bad, y = self._inputs(spectra, mask, values, labels)
        log_p, rms, used = self._evaluate(flux, bad, y)
        return QTable({"log_prob": log_p, "reconstruction_rms": rms * self.flux_unit,
                       "n_pixels": used})

    def outlier_scores(self, spectra: Any, values: Any = None, /, *, mask: Any = None,
                       **labels: Any) -> np.ndarray:
        r"""Anomaly score of each spectrum: higher is more anomalous.

        The score is :math:`s = (-\log p - m_1)/\sigma_1 + (\log r - m_2)/\sigma_2`, the
        sum of the negative log-likelihood and the log reconstruction RMS :math:`r`, each
        standardized by its median :math:`m` and robust spread :math:`\sigma` (1.4826 times
        the median absolute deviation) over the validation spectra: a normal spectrum
        scores about 0 with a spread of about 1.4. The first term catches spectra inside
        the PCA subspace but in a region of low density (abundances beyond the training
        range); the second catches features the basis cannot represent (unlisted lines,
        other classes of star). Both terms are available from :meth:`log_prob`.

        Parameters are those of :meth:`log_prob`.

        Returns
        -------
        numpy.ndarray
            ``(n,)`` scores.
        """
        flux, bad, y = self._inputs(spectra, mask, values, labels)
        nll, log_rms = self._raw_scores(flux, bad, y)
        (m1, s1), (m2, s2) = self.reference["neg_log_prob"], self.reference["log_rms"]
        return (nll - m1) / s1 + (log_rms - m2) / s2

    # ------------------------------------------------------------------ sampling
    def sample_coefficients(self, n: int, values: Any = None, /, *, seed: int | None = None,
                            **labels: Any) -> tuple[torch.Tensor, np.ndarray | None]:
        """PCA coefficients ``(n, n_components)`` drawn from the flow, with their labels."""
        network = self._require_fitted()
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise FlowError(f"n must be a positive integer, got {n!r}")
        y = parse_conditioning(self.condition_space, n, values, labels)
        self._warn_outside_training(y)
        scaled = None if y is None else torch.as_tensor(self.condition_space.scale(y))
        with torch.random.fork_rng(devices=[], enabled=seed is not None), torch.no_grad():
            if seed is not None:
                torch.manual_seed(seed)
            coefficients = network.sample_coefficients(n, scaled)
        return coefficients, y

    def sample(self, n: int, values: Any = None, /, *, seed: int | None = None,
               noise: bool = False, **labels: Any) -> Spectrum:
        """Draw ``n`` spectra from the flow (conditional on the labels given).

        Parameters
        ----------
        n : int
            Number of spectra.
        values : mapping, Table or Row, optional
            Conditioning labels; scalars are shared, 1-d arrays give one value per spectrum.
        seed : int, optional
            Seed of the draw (the global torch RNG is left untouched when given).
        noise : bool
            Add Gaussian noise with the per-pixel variance the PCA basis left out of the
            training spectra; by default the samples are noise-free reconstructions.
        **labels
            Conditioning labels by name.

        Returns
        -------
        `~specutils.Spectrum`
            2-D flux ``(n, n_pix)`` on the flow's wavelength grid; ``meta["labels"]`` holds
            the conditioning labels as a QTable.
        """
        coefficients, y = self.sample_coefficients(n, values, seed=seed, **labels)
        pca = self.module.pca
        flux = pca.reconstruct(coefficients)
        if noise:
            generator = torch.Generator().manual_seed(0 if seed is None else seed + 1)
            flux = flux + torch.sqrt(pca.residual_variance) * torch.randn(
                flux.shape, generator=generator, dtype=flux.dtype)
        meta: dict[str, Any] = {"generator": "stellarai.flows.SpectralFlow.sample"}
        if y is not None:
            meta["labels"] = self.condition_space.to_table(y)
        return Spectrum(flux=flux.numpy() * self.flux_unit, spectral_axis=self.wavelength,
                        meta=meta)

    def plot_history(self, ax: Any = None) -> Figure:
        """Loss curves as a matplotlib Figure (see :meth:`FlowHistory.plot`)."""
        return self.history.plot(ax)

    # ------------------------------------------------------------------ files
    def save(self, path: Any, *, overwrite: bool = False) -> None:
        """Write ``<path>.safetensors`` (weights) and ``<path>.json`` (everything else).

        See :func:`~stellarai.flows.serialization.save_flow`.
        """
        from .serialization import save_flow

        save_flow(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path: Any) -> SpectralFlow:
        """Read a flow written by :meth:`save` (no pickle is ever loaded).

        See :func:`~stellarai.flows.serialization.load_flow`.
        """
        from .serialization import load_flow

        return load_flow(path)
