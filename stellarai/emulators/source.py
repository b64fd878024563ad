"""An emulator as the source of an operator chain: labels become operator parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import astropy.units as u
import torch
from torch import Tensor

from ..ops.base import Operator

if TYPE_CHECKING:
    from .base import SpectralEmulator

__all__ = ["EmulatorSource"]


def _parameter_unit(unit: Any) -> u.UnitBase:
    """The operator-parameter unit of a label: logarithmic units become plain ``dex``."""
    if isinstance(unit, u.FunctionUnitBase):
        return u.dex
    return unit


class EmulatorSource(Operator):
    """A :class:`~stellarai.emulators.SpectralEmulator` that starts an operator chain.

    Its parameters are the emulator's labels (bounds from the label space), so a chain
    ``emu | Rotation(...) | Doppler(...)`` has the labels, ``vsini`` and ``rv`` as
    parameters, and ``chain.as_model()`` fits them all. Made by
    :meth:`SpectralEmulator.source` (and by ``emu | op``, ``emu * op``).

    Parameters
    ----------
    emulator : SpectralEmulator
        The emulator (not registered as a submodule: the source's torch parameters are the
        labels only, so an optimizer over ``source.parameters()`` never trains the network).
    wavelength : Quantity or array, optional
        Model grid (default: the emulator's wavelength); a 2-D float64 tensor of Angstrom
        (one row per échelle order, as :func:`~stellarai.ops.model_grid_for` makes) gives
        one model row per order.
    fixed, bounds, prior : optional
        Overrides of the parameter records, as for :class:`~stellarai.ops.Doppler`.
    **labels
        Starting values (Quantities or numbers in the labels' units); missing labels start
        at their defaults.

    Notes
    -----
    Logarithmic labels (``logg`` in ``dex(cm / s2)``) are parameters in plain ``dex``,
    because :mod:`stellarai.ops` parameters hold ordinary Quantities. The emulator runs in
    its own dtype; the chain receives float64.

    Examples
    --------
    >>> import astropy.units as u, numpy as np
    >>> from stellarai.emulators import PayneEmulator
    >>> from stellarai.labels import LabelSpace
    >>> emu = PayneEmulator(LabelSpace.default().subset(["teff", "logg"]),
    ...                     np.linspace(5000, 5010, 40) * u.AA, hidden=(8,))
    >>> source = emu.source(teff=5000 * u.K)
    >>> source
    EmulatorSource(teff=5000 K, logg=4.438 dex)
    >>> wavelength, flux = source(None, None)
    >>> flux.shape, flux.dtype
    (torch.Size([1, 40]), torch.float64)
    """

    is_source = True

    def __init__(self, emulator: SpectralEmulator, *, wavelength: Any = None, fixed: Any = None,
                 bounds: Any = None, prior: Any = None, **labels: Any) -> None:
        super().__init__()
        self._emulator = [emulator]  # a list: keep the network out of this module's parameters
        space = emulator.label_space
        start = space.parse(labels, fill_missing=True)
        for label in space:
            self._add_parameter(label.name, start[label.name], unit=_parameter_unit(label.unit),
                                bounds=label.bounds, description=label.description)
        self._finish_parameters(fixed, bounds, prior)
        if isinstance(wavelength, Tensor) and wavelength.ndim == 2:
            grid = emulator._resolve_wavelength(wavelength.reshape(-1)).reshape(
                wavelength.shape)
        else:
            grid = emulator._resolve_wavelength(wavelength)
        self._explicit_grid = grid is not None
        self.register_buffer("grid", (emulator._wavelength if grid is None else grid).clone())

    @property
    def emulator(self) -> SpectralEmulator:
        """The wrapped emulator."""
        return self._emulator[0]

    @property
    def flux_unit(self) -> u.UnitBase:
        """Flux unit of the emulator."""
        return self.emulator.flux_unit

    def forward(self, wavelength: Tensor | None = None, flux: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        """The emulated ``(grid, flux)`` (float64); inputs ignored.

        With scalar labels the flux has shape ``(1, n)`` on a 1-D grid and the grid's shape
        on a 2-D one (one row per échelle order). Labels with leading dimensions (a batch
        of stars, as fitters pass them through :meth:`~stellarai.ops.Operator.evaluate`,
        e.g. shape ``(spectra, 1)``) give ``(spectra, *grid.shape)``.
        """
        emulator = self.emulator
        values = [self.tensors[name] for name in emulator.label_space.names]
        batched = any(v.ndim for v in values)
        labels = torch.stack([v.reshape(-1) for v in torch.broadcast_tensors(*values)], dim=-1)
        grid = self.grid
        wavelength = grid.reshape(-1) if self._explicit_grid else None
        out = emulator.flux(labels, wavelength).to(torch.float64)
        if batched:
            return grid, out.reshape(len(labels), *grid.shape)
        return grid, (out.reshape(grid.shape) if grid.ndim == 2 else out)
