r"""The :class:`SpectralEmulator` interface shared by every neural backend.

An emulator maps stellar labels to a spectrum. The network (a `torch.nn.Module`, exposed
as :attr:`SpectralEmulator.module`) only ever sees labels scaled to ±0.5 by
:meth:`LabelSpace.scale <stellarai.labels.LabelSpace.scale>` and wavelengths in vacuum
Angstrom; users talk to the wrapper in Quantities:

- ``emu.spectrum(teff=4700 * u.K, logg=4.5, feh=0.0)`` gives a `~specutils.Spectrum`;
- ``emu(table)`` on a `~astropy.table.QTable` of labels gives one `~specutils.Spectrum`
  with a 2-D flux (one row per star);
- ``emu(labels)`` / ``emu.flux(labels)`` on a ``(n, n_labels)`` tensor or array in
  canonical units gives a ``(n, n_pix)`` tensor (``flux`` keeps the autograd graph);
- ``emu | Rotation(...) | Doppler(...)`` composes with :mod:`stellarai.ops` (the emulator
  becomes an :class:`~stellarai.emulators.EmulatorSource`), and ``emu.as_model()`` is an
  astropy fittable model whose parameters are the labels;
- ``emu.save(path)`` / ``SpectralEmulator.load(path)``: safetensors weights plus a JSON
  sidecar (:mod:`stellarai.emulators.serialization`).

Evaluation runs in chunks of at most :attr:`SpectralEmulator.max_elements` output values,
so memory stays bounded for any batch size.
"""

from __future__ import annotations

import abc
import os
import warnings
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Literal

import astropy.units as u
import numpy as np
import torch
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning
from specutils import Spectrum
from torch import Tensor, nn

from ..errors import LabelError
from ..labels import LabelSpace
from ..spectra.spectral_axis import to_vacuum_angstrom
from .errors import EmulatorError

__all__ = ["DEFAULT_MAX_ELEMENTS", "SpectralEmulator", "backend_class"]

DEFAULT_MAX_ELEMENTS = 2**22
"""Default bound on the number of output values (spectra × pixels) computed at once."""

OutOfRange = Literal["raise", "warn"]

_BACKENDS: dict[str, type[SpectralEmulator]] = {}


def backend_class(name: str) -> type[SpectralEmulator]:
    """The emulator class registered under backend ``name`` (``"payne"``, ...).

    Examples
    --------
    >>> backend_class("payne").__name__
    'PayneEmulator'
    """
    if name not in _BACKENDS:
        raise EmulatorError(
            f"unknown emulator backend {name!r}; known backends: {sorted(_BACKENDS)}"
        )
    return _BACKENDS[name]


def _as_wavelength(wavelength: Any, name: str = "wavelength") -> Tensor:
    """A 1-D wavelength (Quantity, tensor or array; numbers are Angstrom) as float64 Å."""
    if isinstance(wavelength, u.Quantity):
        array = to_vacuum_angstrom(wavelength, name=name)
    elif isinstance(wavelength, Tensor):
        array = wavelength.detach().cpu().numpy()
    else:
        try:
            array = np.asarray(wavelength, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise EmulatorError(f"{name} must be a Quantity or an array of Angstrom, got "
                                f"{wavelength!r:.100}") from exc
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 1 or array.size < 1 or not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise EmulatorError(f"{name} must be a 1-D array of positive finite wavelengths, got "
                            f"shape {array.shape}")
    return torch.from_numpy(array.copy())


class SpectralEmulator(abc.ABC):
    """Base class of the neural emulators: labels in, spectrum out.

    Subclasses set :attr:`backend` (which registers them for loading), build their
    network and implement :meth:`_evaluate` (scaled labels → flux, chunked),
    :meth:`train_batch` (one training step's prediction and target),
    :meth:`architecture` and :meth:`_from_architecture`.

    Parameters
    ----------
    label_space : LabelSpace
        Names, units and bounds of the labels; labels outside the bounds are refused.
    module : torch.nn.Module
        The network.
    wavelength : Quantity or array, optional
        Wavelength axis: the fixed output pixels (The Payne), or the default evaluation
        grid of an emulator that takes any wavelength (TransformerPayne).
    flux_unit : unit
        Unit of the emulated flux (dimensionless for normalized spectra).
    provenance : dict, optional
        JSON-serializable record of how the emulator was made (filled by the trainer).
    max_elements : int
        Bound on the output values (spectra × pixels) computed in one piece.
    """

    backend: ClassVar[str] = ""
    """Name of the backend in saved files (``"payne"``, ``"transformer_payne"``)."""
    fixed_wavelength: ClassVar[bool] = True
    """True if the network emulates fixed pixels (other wavelengths are interpolated)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.backend:
            _BACKENDS[cls.backend] = cls

    def __init__(self, label_space: LabelSpace, module: nn.Module, *, wavelength: Any = None,
                 flux_unit: Any = u.dimensionless_unscaled,
                 provenance: Mapping[str, Any] | None = None,
                 max_elements: int = DEFAULT_MAX_ELEMENTS) -> None:
        if not isinstance(label_space, LabelSpace):
            raise EmulatorError(f"label_space must be a LabelSpace, got "
                                f"{type(label_space).__name__}")
        if not isinstance(module, nn.Module):
            raise EmulatorError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        self._space = label_space
        self._module = module
        self._wavelength = None if wavelength is None else _as_wavelength(wavelength)
        if self._wavelength is not None and not bool((torch.diff(self._wavelength) > 0).all()):
            raise EmulatorError("wavelength must be strictly increasing")
        try:
            self._flux_unit = u.Unit(flux_unit)
        except (TypeError, ValueError) as exc:
            raise EmulatorError(f"flux_unit {flux_unit!r} is not a unit") from exc
        self.provenance: dict[str, Any] = dict(provenance or {})
        self.max_elements = max_elements
        self.out_of_range: OutOfRange = "raise"

    # ------------------------------------------------------------------ properties
    @property
    def label_space(self) -> LabelSpace:
        """The :class:`~stellarai.labels.LabelSpace` of the labels."""
        return self._space

    @property
    def module(self) -> nn.Module:
        """The raw network (`torch.nn.Module`); it takes scaled labels."""
        return self._module

    @property
    def wavelength(self) -> u.Quantity | None:
        """Wavelength axis (vacuum Angstrom): the emulated pixels, or the default grid."""
        if self._wavelength is None:
            return None
        return u.Quantity(self._wavelength.numpy().copy(), u.AA)

    @property
    def flux_unit(self) -> u.UnitBase:
        """Unit of the emulated flux."""
        return self._flux_unit

    @property
    def n_labels(self) -> int:
        """Number of labels."""
        return len(self._space)

    @property
    def dtype(self) -> torch.dtype:
        """dtype of the network's parameters (float32 unless changed through ``.module``)."""
        return next(self._module.parameters()).dtype

    @property
    def out_of_range(self) -> OutOfRange:
        """What labels outside the label space's bounds do: ``"raise"`` (default) a
        `~stellarai.errors.LabelError`, or ``"warn"`` (an `AstropyUserWarning` with the
        allowed range, then extrapolate). NaN and infinite labels always raise."""
        return self._out_of_range

    @out_of_range.setter
    def out_of_range(self, value: OutOfRange) -> None:
        if value not in ("raise", "warn"):
            raise EmulatorError(f"out_of_range must be 'raise' or 'warn', got {value!r}")
        self._out_of_range = value

    def _check(self, values: Any) -> None:
        """Check labels ``(n, n_labels)`` (canonical units) against the bounds."""
        if self._out_of_range == "raise":
            self._space.check(values)
            return
        array = values.detach().cpu().numpy() if isinstance(values, Tensor) else values
        if not np.all(np.isfinite(array)):
            self._space.check(array)  # raises, naming the label and row
        try:
            self._space.check(array)
        except LabelError as exc:
            warnings.warn(f"{exc} (extrapolating: out_of_range='warn')", AstropyUserWarning,
                          stacklevel=3)

    @property
    def max_elements(self) -> int:
        """Bound on the output values (spectra × pixels) computed in one piece."""
        return self._max_elements

    @max_elements.setter
    def max_elements(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise EmulatorError(f"max_elements must be a positive integer, got {value!r}")
        self._max_elements = int(value)

    def n_parameters(self) -> int:
        """Number of trainable scalars in the network."""
        return sum(p.numel() for p in self._module.parameters())

    # ------------------------------------------------------------------ inputs
    def _labels_tensor(self, labels: Any, check: bool = True) -> Tensor:
        """Labels as a float64 ``(n, n_labels)`` tensor in canonical units, validated."""
        if isinstance(labels, (Table, Mapping)):
            values = torch.from_numpy(self._parse(labels))
            if check:
                self._check(values)
            return values
        if isinstance(labels, u.Quantity):
            raise LabelError("labels as one Quantity array have no names; pass a QTable, a "
                             "mapping of label columns, or a plain array in canonical units")
        tensor = labels if isinstance(labels, Tensor) else torch.from_numpy(
            np.array(labels, dtype=np.float64))
        if tensor.ndim == 1:
            tensor = tensor[None, :]
        if tensor.ndim != 2 or tensor.shape[-1] != self.n_labels:
            raise LabelError(
                f"labels must have shape (n, {self.n_labels}) for labels "
                f"{list(self._space.names)} (canonical units), got shape {tuple(tensor.shape)}"
            )
        if not tensor.is_floating_point():
            tensor = tensor.to(torch.float64)
        if check:
            self._check(tensor)
        return tensor

    def _parse(self, values: Any = None, **kwargs: Any) -> np.ndarray:
        """Labels by name to a canonical ``(n, n_labels)`` array; bounds are not checked."""
        space = self._space
        if self._out_of_range == "warn":
            space = self._wide_space()
        return space.parse_batch(values, **kwargs)

    def _wide_space(self) -> LabelSpace:
        """The label space with each range widened 1000-fold (to parse, not to check)."""
        space = self._space
        for label in self._space:
            span = label.upper - label.lower
            space = space.with_bounds(label.name, label.lower - 1e3 * span,
                                      label.upper + 1e3 * span)
        return space

    def _resolve_wavelength(self, wavelength: Any) -> Tensor | None:
        if wavelength is None:
            if self._wavelength is None:
                raise EmulatorError(f"{type(self).__name__} has no default wavelength; pass "
                                    "wavelength=")
            return None
        return _as_wavelength(wavelength)

    def _row_chunks(self, n: int, per_row: int) -> Iterator[slice]:
        step = max(1, self._max_elements // max(per_row, 1))
        for start in range(0, n, step):
            yield slice(start, min(n, start + step))

    # ------------------------------------------------------------------ evaluation
    def flux(self, labels: Any, wavelength: Any = None, *, check: bool = True) -> Tensor:
        """Emulated flux for a batch of labels (differentiable).

        Parameters
        ----------
        labels : torch.Tensor, numpy.ndarray, QTable or mapping
            ``(n, n_labels)`` (or ``(n_labels,)``) in the order and canonical units of
            :attr:`label_space`, or a table / mapping of label columns with units. A
            tensor keeps its autograd graph.
        wavelength : Quantity or array, optional
            Output wavelengths (1-D; numbers are Angstrom); default :attr:`wavelength`.
        check : bool
            Validate labels against the label space (default): NaN or infinite labels raise
            `~stellarai.errors.LabelError`, and so do labels outside the bounds unless
            :attr:`out_of_range` is ``"warn"``.

        Returns
        -------
        torch.Tensor
            ``(n, n_pix)`` flux in :attr:`flux_unit`, in the network's dtype.
        """
        values = self._labels_tensor(labels, check)
        wl = self._resolve_wavelength(wavelength)
        z = self._space.scale(values).to(self.dtype)
        return self._evaluate(z, wl)

    @abc.abstractmethod
    def _evaluate(self, z: Tensor, wavelength: Tensor | None) -> Tensor:  # pragma: no cover
        """Flux ``(n, n_pix)`` for scaled labels ``z`` at ``wavelength`` (None: default)."""

    @abc.abstractmethod
    def train_batch(self, z: Tensor, flux: Tensor, generator: torch.Generator | None = None
                    ) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        """Prediction and target of one training batch (used by the Trainer).

        ``z`` are scaled labels ``(b, n_labels)`` and ``flux`` the ``(b, n_pix)`` training
        flux on :attr:`wavelength`; ``generator`` drives any random pixel choice.
        """

    def __call__(self, labels: Any, wavelength: Any = None) -> Any:
        """Flux for a batch: a tensor for tensor/array input, a `Spectrum` for a table.

        A `~astropy.table.QTable` (or mapping) of labels gives one
        `~specutils.Spectrum` with a ``(n, n_pix)`` flux and the labels in
        ``meta["labels"]``; a tensor or array in canonical units gives a detached tensor.
        """
        with torch.no_grad():
            flux = self.flux(labels, wavelength)
        if isinstance(labels, (Table, Mapping)):
            values = self._labels_tensor(labels, check=False)
            return self._to_spectrum(flux, wavelength, self._space.to_table(values.numpy()))
        return flux

    def spectrum(self, *, wavelength: Any = None, fill_missing: bool = False,
                 **labels: Any) -> Spectrum:
        """The emulated spectrum of one star, as a `~specutils.Spectrum`.

        Parameters
        ----------
        wavelength : Quantity or array, optional
            Output wavelengths (default: :attr:`wavelength`).
        fill_missing : bool
            Fill labels not given from their defaults (default False: missing labels raise).
        **labels
            The labels by name: Quantities, or numbers in the labels' units.

        Returns
        -------
        Spectrum
            Flux in :attr:`flux_unit` on vacuum Angstrom, the labels (Quantities) in
            ``meta["labels"]``.

        Raises
        ------
        LabelError
            For unknown or missing labels, wrong units, NaN, or values outside the bounds
            (the message gives the allowed range; with :attr:`out_of_range` set to
            ``"warn"`` the latter is a warning).
        """
        values = self._parse(fill_missing=fill_missing, **labels)
        self._check(values)
        with torch.no_grad():
            flux = self.flux(torch.from_numpy(values), wavelength, check=False)
        meta_labels = {label.name: values[0, j] * label.unit
                       for j, label in enumerate(self._space)}
        return self._to_spectrum(flux[0], wavelength, meta_labels)

    def _to_spectrum(self, flux: Tensor, wavelength: Any, labels: Any) -> Spectrum:
        wl = self._resolve_wavelength(wavelength)
        wl = self._wavelength if wl is None else wl
        return Spectrum(flux=u.Quantity(flux.detach().cpu().numpy().astype(np.float64),
                                        self._flux_unit),
                        spectral_axis=u.Quantity(wl.numpy(), u.AA),
                        meta={"labels": labels, "emulator": repr(self)})

    # ------------------------------------------------------------------ composition
    def source(self, *, wavelength: Any = None, fixed: Any = None, bounds: Any = None,
               prior: Any = None, **labels: Any) -> Any:
        """This emulator as a source operator of :mod:`stellarai.ops` (labels = parameters).

        See :class:`~stellarai.emulators.EmulatorSource`; labels not given start at their
        defaults.
        """
        from .source import EmulatorSource

        return EmulatorSource(self, wavelength=wavelength, fixed=fixed, bounds=bounds,
                              prior=prior, **labels)

    def __or__(self, other: Any) -> Any:
        return self.source() | other

    def __mul__(self, other: Any) -> Any:
        return self.source() * other

    def as_model(self, *, wavelength: Any = None, name: str | None = None,
                 fixed: Any = None, **labels: Any) -> Any:
        """An astropy fittable model whose parameters are the labels (with units, bounds).

        Parameters
        ----------
        wavelength : Quantity or array, optional
            Model grid (default :attr:`wavelength`); the model interpolates linearly between
            its pixels when evaluated elsewhere (pass the data's wavelengths for exact
            values).
        name : str, optional
            Name of the astropy model.
        fixed : iterable of str, optional
            Labels to hold fixed (not fitted).
        **labels
            Starting values (default: the labels' defaults).

        Returns
        -------
        stellarai.ops.OperatorModel
            Input wavelength (any spectral unit; numbers are Angstrom), output flux. Fit it
            with :class:`~astropy.modeling.fitting.TRFLSQFitter`; ``fit_deriv`` is the
            autograd Jacobian. Logarithmic labels (``logg``) have the unit ``dex``.
        """
        return self.source(wavelength=wavelength, fixed=fixed, **labels).as_model(name=name)

    # ------------------------------------------------------------------ saving
    @abc.abstractmethod
    def architecture(self) -> dict[str, Any]:  # pragma: no cover - abstract
        """JSON-serializable hyper-parameters that rebuild the network."""

    @classmethod
    @abc.abstractmethod
    def _from_architecture(cls, label_space: LabelSpace, wavelength: Any,
                           architecture: Mapping[str, Any], **kwargs: Any
                           ) -> SpectralEmulator:  # pragma: no cover - abstract
        """The emulator rebuilt from :meth:`architecture`'s output (weights not loaded)."""

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Save as ``<path>.safetensors`` (weights) and ``<path>.json`` (sidecar).

        See :func:`~stellarai.emulators.save_emulator`.
        """
        from .serialization import save_emulator

        save_emulator(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SpectralEmulator:
        """Load an emulator saved by :meth:`save` (see
        :func:`~stellarai.emulators.load_emulator`)."""
        from .serialization import load_emulator

        emulator = load_emulator(path)
        if not isinstance(emulator, cls):
            raise EmulatorError(f"{os.fspath(path)!r} holds a {type(emulator).__name__}, not a "
                                f"{cls.__name__}")
        return emulator

    def __repr__(self) -> str:
        wl = self._wavelength
        axis = ("any wavelength" if wl is None else
                f"{wl.numel()} px, {float(wl[0]):.6g}-{float(wl[-1]):.6g} Angstrom")
        if not self.fixed_wavelength and wl is not None:
            axis = f"any wavelength (default grid {axis})"
        return (f"<{type(self).__name__}: labels {list(self._space.names)}, {axis}, "
                f"{self.n_parameters():,} parameters>")
