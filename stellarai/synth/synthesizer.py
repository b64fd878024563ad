r"""The offline synthesizer: labels in, normalized spectra out, batched and differentiable.

:class:`Synthesizer` combines a :class:`~stellarai.synth.LineList`, a wavelength grid
and a :class:`~stellarai.labels.LabelSpace` with the one-layer physics of
:mod:`stellarai.synth.physics`:

1. labels → atmosphere (:func:`~stellarai.synth.physics.solve_atmosphere`) and, for every
   line, the centre opacity ratio :math:`\eta_0`, the Doppler width and the damping
   parameter :math:`a` (arrays of shape stars × lines);
2. :math:`\eta(\lambda) = \sum_\ell \eta_{0,\ell}\,[H(a_\ell, u_\ell) - H(a_\ell,
   u_{\rm cut})]_+` summed on the sub-pixel grid, each line only on its window
   (:mod:`stellarai.synth.windows`); profiles are cut at ``max_half_width`` from the
   centre and lowered by their value there, so that they end at zero;
3. the Milne–Eddington residual flux on the sub-pixels, averaged over each pixel.

It is an honest approximation made for developing, testing and demonstrating methods
offline, not for measuring stars: see :mod:`stellarai.synth.physics` for what it leaves
out.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import astropy.units as u
import numpy as np
import torch
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning
from specutils import Spectrum
from tqdm.auto import tqdm

from ..errors import SpectrumInputError
from ..labels import LabelSpace
from .elements import ELEMENT_DATA, METALS
from .hydrogen import hydrogen_levels, hydrogen_stark_rate
from .linelist import LineList
from .parameters import LabelMapping, default_label_space
from .physics import (
    AMU_G,
    HC_OVER_K_AA,
    K_ERG,
    LINE_CROSS_SECTION,
    THETA_CONSTANT,
    ContinuumCoefficients,
    continuum_opacity,
    damping_parameter,
    doppler_width,
    log_partition_function,
    planck_flux,
    saha_log_phi,
    solve_atmosphere,
    source_contrast,
    unsold_vdw,
)
from .profiles import _voigt_unchecked
from .sampling import WavelengthGrid, auto_oversample, make_grid
from .windows import CORE_DOPPLER_WIDTHS, plan_windows, window_half_width, wing_primitive

__all__ = ["Synthesizer"]

_ELEMENTS = ("H", *METALS)  # element index 0 is hydrogen
_DEFAULT_LOG_STARK = -5.7  # log10 gamma_4 / n_e at 1e4 K when a line list gives none
_CHUNK_ELEMENTS = 1 << 18  # (segments x width x stars) per evaluation chunk
_LN10 = math.log(10.0)
_PROGRESS_MIN_STARS = 100  # default: a progress bar from this many stars on


def _log10_one_plus_pow10(x: torch.Tensor) -> torch.Tensor:
    """log10(1 + 10**x), without overflow."""
    return torch.logaddexp(torch.zeros_like(x), x * _LN10) / _LN10


class _LineData:
    """Label-independent arrays of the lines a synthesizer uses (float64, on a device)."""

    def __init__(self, lines: LineList, device: torch.device) -> None:
        lam = lines.wavelength.to_value(u.AA)
        elements = lines.element
        stage = lines.ion_stage
        element_index = np.array([_ELEMENTS.index(e) for e in elements], dtype=np.int64)
        mass = np.array([ELEMENT_DATA[e].mass for e in elements])
        chi = lines.excitation.to_value(u.eV)
        ionization = np.array([ELEMENT_DATA[e].ionization_energies[s - 1]
                               for e, s in zip(elements, stage, strict=True)])
        table = lines.table
        gamma_rad = table["gamma_rad"].to_value(1 / u.s)
        gamma_stark = table["gamma_stark"].to_value(u.cm**3 / u.s)
        gamma_vdw = table["gamma_vdw"].to_value(u.cm**3 / u.s)
        gamma_rad = np.where(np.isnan(gamma_rad), 2.2233e15 / lam**2, gamma_rad)
        gamma_stark = np.where(np.isnan(gamma_stark), 10.0**_DEFAULT_LOG_STARK, gamma_stark)
        gamma_vdw = np.where(np.isnan(gamma_vdw), unsold_vdw(lam, chi, ionization, mass),
                             gamma_vdw)
        is_h = elements == "H"
        n_l, n_u = hydrogen_levels(chi, lam)
        def as_t(a: object) -> torch.Tensor:
            return torch.as_tensor(np.asarray(a, dtype=np.float64), device=device)

        self.wavelength = as_t(lam)
        self.log_gf = as_t(lines.log_gf)
        self.excitation = as_t(chi)
        self.mass = as_t(mass)
        self.species = torch.as_tensor(2 * element_index + stage - 1, device=device)
        self.gamma_rad = as_t(gamma_rad)
        self.gamma_stark = as_t(np.where(is_h, 0.0, gamma_stark))
        self.gamma_vdw = as_t(np.where(is_h, 0.0, gamma_vdw))
        self.is_h = torch.as_tensor(is_h, device=device)
        self.n_lower = as_t(np.where(is_h, n_l, 1))
        self.n_upper = as_t(np.where(is_h, n_u, 2))
        self.continuum = ContinuumCoefficients.at(lam)
        self.continuum = ContinuumCoefficients(
            *(getattr(self.continuum, f).to(device) for f in
              ("wavelength", "h_minus_bf", "ff_f0", "ff_f1", "ff_f2", "n0")))
        self.log_cross_section = as_t(np.log10(LINE_CROSS_SECTION * (lam * 1e-8) ** 2
                                               / math.sqrt(math.pi)))
        data = [ELEMENT_DATA[e] for e in _ELEMENTS]
        self.log_u = as_t([d.log_u for d in data])  # (n_el, 2, 3)
        self.ionization = as_t([d.ionization_energies[0] for d in data])
        self.log_eps = as_t([d.solar_log_eps for d in data[1:]])
        self.metal_mass = as_t([d.mass for d in data[1:]])


class Synthesizer:
    r"""Synthesize normalized stellar spectra from labels, offline, in PyTorch.

    Parameters
    ----------
    linelist : LineList
        Lines to use. Lines of species the synthesizer has no atomic data for (elements
        other than H and the 15 metals of :mod:`~stellarai.synth.elements`, or stages
        above 2) are dropped with a warning; lines farther than ``max_half_width`` from
        the grid are ignored.
    wavelength : Quantity
        A ``(min, max)`` vacuum range, with ``resolving_power``, for a grid uniform in
        ln λ with :math:`\Delta\ln\lambda = 1/(n R)` (``n = sampling``); or an explicit,
        strictly increasing array of vacuum wavelengths. 3000–30000 Å.
    resolving_power : float, optional
        R of the log-uniform grid. It sets the pixel spacing only: no instrumental
        broadening is applied (that is the job of :mod:`stellarai.ops`).
    sampling : float
        Pixels per resolution element ``n`` (default 1: Δ ln λ = 1/R).
    label_space : LabelSpace, optional
        Labels of :meth:`flux`'s input columns (see :mod:`stellarai.synth.parameters`);
        default :func:`~stellarai.synth.default_label_space` (teff, logg, feh, vmic,
        alpha_fe).
    oversample : int, optional
        Sub-pixels per pixel over which the flux is averaged. Default: chosen for each
        star from its own narrowest line (the heaviest element's Doppler width at its
        teff and vmic; :func:`~stellarai.synth.sampling.auto_oversample`), so that a
        star's spectrum does not depend on the other stars of a batch (batches never
        mix sampling factors). Pass an integer to fix it for every star.
    tolerance : float
        Each line is evaluated where its opacity ratio :math:`\eta_0 H` exceeds this
        (default 1e-4); what is left out changes the normalized flux by less than that
        per line.
    max_half_width : Quantity
        Profiles are cut at this distance from the line centre (default 25 Å) and
        lowered by their value there.
    dtype : torch.dtype
        ``torch.float64`` (default) or ``torch.float32`` for the profile sums (about
        twice as fast; the physics stays in float64; flux accurate to ~1e-5).
    batch_size : int, optional
        Stars per batch (bounds memory); default: about 8 million sub-pixel values per
        batch.

    Attributes
    ----------
    wavelength : Quantity
        Pixel centres, vacuum Angstrom.
    label_space : LabelSpace
    linelist : LineList
        The lines used (supported species near the grid).
    oversample : int or None
        The fixed number of sub-pixels, or None (chosen per star).
    settings : dict
        JSON-serializable description (for the provenance of grids).

    Examples
    --------
    >>> import astropy.units as u, torch
    >>> lines = LineList.default([10800, 10870] * u.AA)
    >>> synth = Synthesizer(lines, [10825, 10845] * u.AA, resolving_power=100_000)
    >>> synth  # doctest: +ELLIPSIS
    <Synthesizer: 185 pixels 10825.0-10844.9 Angstrom (R = 100000, auto sub-pixels), 31 lines, ...>
    >>> labels = torch.tensor([[5772.0, 4.438, 0.0, 1.0, 0.0], [4500.0, 4.6, -0.5, 1.0, 0.2]],
    ...                       dtype=torch.float64)
    >>> flux = synth.flux(labels)
    >>> flux.shape, bool((flux <= 1).all() and (flux > 0).all())
    (torch.Size([2, 185]), True)
    """

    def __init__(self, linelist: LineList, wavelength: u.Quantity, *,
                 resolving_power: float | None = None, sampling: float = 1.0,
                 label_space: LabelSpace | None = None, oversample: int | None = None,
                 tolerance: float = 1e-4, max_half_width: u.Quantity = 25.0 * u.AA,
                 dtype: torch.dtype = torch.float64, batch_size: int | None = None) -> None:
        if not isinstance(linelist, LineList):
            raise TypeError(f"linelist must be a LineList, got {type(linelist).__name__}")
        grid = make_grid(wavelength, resolving_power, sampling)
        space = default_label_space() if label_space is None else label_space
        self._mapping = LabelMapping(space)
        if dtype not in (torch.float64, torch.float32):
            raise TypeError(f"dtype must be torch.float64 or torch.float32, got {dtype}")
        if not (isinstance(tolerance, (int, float)) and 0 < tolerance < 1):
            raise ValueError(f"tolerance must be a number in (0, 1), got {tolerance!r}")
        if not isinstance(max_half_width, u.Quantity) or \
                max_half_width.unit.physical_type != "length" or max_half_width.size != 1:
            raise SpectrumInputError(
                f"max_half_width must be a scalar length Quantity, got {max_half_width!r}")
        cut = float(max_half_width.to_value(u.AA))
        if not 0 < cut < 1e4:
            raise SpectrumInputError(f"max_half_width must be in (0, 10000) Angstrom, got {cut}")
        self.label_space = space
        self.tolerance = float(tolerance)
        self.max_half_width = cut * u.AA
        self.dtype = dtype
        self.linelist = self._usable_lines(linelist, grid, cut)
        self._lines = _LineData(self.linelist, torch.device("cpu"))
        self._core_radius = self._core_radius_aa()
        if oversample is not None and (
                isinstance(oversample, bool) or not isinstance(oversample, (int, np.integer))
                or not 1 <= oversample <= 1000):
            raise ValueError(
                f"oversample must be None or an integer in [1, 1000], got {oversample!r}")
        self.oversample = None if oversample is None else int(oversample)
        if batch_size is not None and (
                isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = None if batch_size is None else int(batch_size)
        self._base_grid: WavelengthGrid = grid
        self._grids: dict[int, WavelengthGrid] = {1: grid}
        self.wavelength = grid.centers * u.AA
        self._centers = torch.as_tensor(grid.centers)

    # ------------------------------------------------------------------ set-up

    @staticmethod
    def _usable_lines(linelist: LineList, grid: WavelengthGrid, cut: float) -> LineList:
        lines = linelist.select([grid.centers[0] - cut, grid.centers[-1] + cut] * u.AA)
        ok = np.array([e in ELEMENT_DATA and (s == 1 or (s == 2 and e != "H"))
                       for e, s in zip(lines.element, lines.ion_stage, strict=True)], dtype=bool)
        if not ok.all():
            dropped = sorted(set(lines.species[~ok]))
            warnings.warn(
                f"dropped {int((~ok).sum())} lines of species the synthesizer has no atomic "
                f"data for: {', '.join(dropped)} (it knows H 1 and stages 1-2 of "
                f"{', '.join(METALS)})", AstropyUserWarning, stacklevel=3)
        return lines[ok]

    def _core_radius_aa(self) -> np.ndarray:
        """Per line: 6 Doppler widths at the label space's highest teff and vmic (Å)."""
        t_high = self.label_space["teff"].upper
        v_high = self.label_space["vmic"].upper if "vmic" in self.label_space else 1.0
        widest = doppler_width(self._lines.wavelength, torch.tensor([t_high], dtype=torch.float64),
                               self._lines.mass, torch.tensor([v_high], dtype=torch.float64))
        return CORE_DOPPLER_WIDTHS * widest[0].numpy()

    def _grid_for(self, k: int) -> WavelengthGrid:
        if k not in self._grids:
            self._grids[k] = self._base_grid.with_oversample(k)
        return self._grids[k]

    def _batch_size_for(self, k: int) -> int:
        if self.batch_size is not None:
            return self.batch_size
        return max(1, min(512, (1 << 23) // (self._base_grid.n_pixels * k)))

    def _doppler_key(self, labels: torch.Tensor, mass: float) -> np.ndarray:
        """Squared Doppler velocity (km/s)^2 of an atom of ``mass`` for each star."""
        names = self.label_space.names
        t = labels[:, names.index("teff")].detach().double().cpu().numpy()
        vmic = (labels[:, names.index("vmic")].detach().double().cpu().numpy()
                if "vmic" in names else 1.0)
        return 2.0 * K_ERG * t / (mass * AMU_G) * 1e-10 + vmic**2

    def sub_pixels(self, labels: torch.Tensor) -> np.ndarray:
        """Sub-pixels per pixel used for each star of ``labels`` ``(n, n_labels)``.

        The fixed ``oversample``, or :func:`~stellarai.synth.sampling.auto_oversample`
        of the star's narrowest Doppler width (heaviest element, the star's teff and
        vmic).
        """
        n = labels.shape[0]
        if self.oversample is not None:
            return np.full(n, self.oversample, dtype=np.int64)
        heaviest = float(self._lines.mass.max()) if len(self.linelist) else 1.0
        speed = np.sqrt(self._doppler_key(labels, heaviest))
        return np.array([auto_oversample(self._base_grid.centers, float(v)) for v in speed],
                        dtype=np.int64)

    # ------------------------------------------------------------------ physics

    def _line_state(self, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Atmosphere and per-line quantities (float64) for labels (n, n_labels)."""
        d = self._lines
        p = self._mapping.physical(labels)
        t = p["teff"]
        log_u1 = log_partition_function(d.log_u[:, 0], t)
        log_u2 = log_partition_function(d.log_u[:, 1], t)
        log_phi = saha_log_phi(t, d.ionization, log_u1, log_u2)
        abundances = 10.0 ** (d.log_eps - 12.0 + p["atmosphere_xh"])
        atm = solve_atmosphere(t, p["logg"], abundances, d.metal_mass, log_phi[:, 1:],
                               log_phi[:, 0], p["helium"])
        log_ratio = log_phi - torch.log10(atm.electron_pressure)[:, None]  # log N_II/N_I
        log_f1 = -_log10_one_plus_pow10(log_ratio)
        log_ab = torch.cat([torch.zeros_like(t)[:, None], d.log_eps - 12.0 + p["line_xh"]], -1)
        log_pop = torch.stack([log_ab + log_f1 - log_u1, log_ab + log_ratio + log_f1 - log_u2],
                              dim=-1).reshape(t.shape[0], -1)  # (n, 2 * n_el): per g
        theta = THETA_CONSTANT / t
        lam = d.wavelength
        doppler = doppler_width(lam, t, d.mass, p["vmic"])
        kappa = continuum_opacity(d.continuum, t, atm.electron_pressure,
                                  atm.neutral_h_fraction, atm.electrons_per_h)
        stim = -torch.expm1(-HC_OVER_K_AA / (lam * t[:, None]))
        log_eta0 = (d.log_cross_section + d.log_gf + log_pop[:, d.species]
                    - theta[:, None] * d.excitation + torch.log10(stim)
                    - torch.log10(doppler * 1e-8) - torch.log10(kappa))
        t4 = (t / 1e4)[:, None]
        gamma = (d.gamma_rad + d.gamma_stark * atm.electron_density[:, None] * t4 ** (1 / 6)
                 + d.gamma_vdw * atm.neutral_h_density[:, None] * t4**0.3)
        stark_h = hydrogen_stark_rate(d.n_lower, d.n_upper, atm.electron_density[:, None])
        gamma = gamma + torch.where(d.is_h, stark_h, torch.zeros_like(stark_h))
        return {
            "eta0": 10.0**log_eta0,
            "a": damping_parameter(gamma, lam, doppler),
            "doppler": doppler,
            "teff": t,
            "electron_pressure": atm.electron_pressure,
        }

    # ------------------------------------------------------------------ opacity sums

    def _opacity(self, state: dict[str, torch.Tensor], grid: WavelengthGrid, dense: bool,
                 grad: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Opacity ratios (self.dtype): line cores on sub-pixels ``(n_fine, n)`` and line
        wings averaged over pixels ``(n_pix, n)``."""
        dtype = self.dtype
        eta0 = state["eta0"].to(dtype).T  # (lines, n)
        a = state["a"].to(dtype).T
        inv_doppler = (1.0 / state["doppler"]).to(dtype).T
        cut = float(self.max_half_width.to_value(u.AA))
        cap = _voigt_unchecked(a, cut * inv_doppler)
        n = eta0.shape[1]
        core_eta = torch.zeros(grid.fine.size + 1, n, dtype=dtype)
        wing_eta = torch.zeros(grid.n_pixels + 1, n, dtype=dtype)
        if not len(self.linelist):
            return core_eta[:-1], wing_eta[:-1]
        with torch.no_grad():
            if dense:
                half = np.full(len(self.linelist), np.inf)
            else:
                half = window_half_width(state["eta0"], state["a"], self.tolerance)
                half = torch.clamp(half * state["doppler"], max=cut).amax(0).numpy()
            near = (CORE_DOPPLER_WIDTHS * state["doppler"]).amax(0).numpy()
        plan = plan_windows(grid.fine, grid.edges, self._lines.wavelength.numpy(), half,
                            self._core_radius, near, cut)
        pieces: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {k: [] for k in plan}
        for kind, buckets in plan.items():
            target = wing_eta if kind == "wing" else core_eta
            for bucket in buckets:
                step = max(1, _CHUNK_ELEMENTS // (bucket.width * n))
                for start in range(0, bucket.line.numel(), step):
                    part = slice(start, start + step)
                    rows = bucket.line[part]
                    scale = inv_doppler[rows][:, None, :]
                    u_ = bucket.offset[part].to(dtype)[:, :, None] * scale
                    a_rows = a[rows][:, None, :]
                    if kind == "wing":
                        f = wing_primitive(a_rows, u_)
                        h = (f[:, :-1] - f[:, 1:]) / (u_[:, 1:] - u_[:, :-1])
                    else:
                        h = _voigt_unchecked(a_rows, u_, kind)
                    h = (h - cap[rows][:, None, :]).clamp(min=0.0) * eta0[rows][:, None, :]
                    index = bucket.index[part].reshape(-1)
                    if grad:
                        pieces[kind].append((index, h.reshape(-1, n)))
                    else:
                        target.index_put_((index,), h.reshape(-1, n), accumulate=True)
        if grad:
            sub = pieces["near"] + pieces["far"]
            if sub:
                core_eta = core_eta.index_put((torch.cat([p[0] for p in sub]),),
                                              torch.cat([p[1] for p in sub]), accumulate=True)
            if pieces["wing"]:
                wing_eta = wing_eta.index_put((torch.cat([p[0] for p in pieces["wing"]]),),
                                              torch.cat([p[1] for p in pieces["wing"]]),
                                              accumulate=True)
        return core_eta[:-1], wing_eta[:-1]

    def _flux_batch(self, labels: torch.Tensor, k: int, dense: bool, continuum: bool
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        grad = torch.is_grad_enabled() and labels.requires_grad
        state = self._line_state(labels.to(torch.float64))
        core, wings = self._opacity(state, self._grid_for(k), dense, grad)
        n = labels.shape[0]
        contrast = source_contrast(self._centers, state["teff"]).to(self.dtype)
        contrast = contrast[:, :, None]  # (n, n_pix, 1)
        eta = core.T.reshape(n, -1, k) + wings.T[:, :, None]
        flux = ((1.0 + contrast / (1.0 + eta)) / (1.0 + contrast)).mean(-1)
        cont = planck_flux(self._centers, state["teff"]).to(self.dtype) if continuum else None
        return flux, cont

    # ------------------------------------------------------------------ public API

    @property
    def resolving_power(self) -> float | None:
        """R of the log-uniform grid (None for an explicit wavelength array)."""
        return self._base_grid.resolving_power

    def flux(self, labels: torch.Tensor, *, return_continuum: bool = False,
             dense: bool = False, progress: bool | None = None
             ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Normalized flux for a batch of labels, as a differentiable tensor.

        Parameters
        ----------
        labels : torch.Tensor
            Shape ``(n, n_labels)`` (or ``(n_labels,)``), canonical units, columns in
            ``label_space.names`` order. Gradients flow back to it if it requires them.
        return_continuum : bool
            Also return the continuum, the surface flux π B_λ(Teff) in erg s⁻¹ cm⁻² Å⁻¹.
        dense : bool
            Evaluate every line at every sub-pixel (for tests and benchmarks only: slow).
        progress : bool, optional
            Show a progress bar (tqdm, on stderr); default: for 100 stars or more.

        Returns
        -------
        torch.Tensor or (torch.Tensor, torch.Tensor)
            Flux ``(n, n_pix)`` (continuum 1), in the synthesizer's dtype, and the
            continuum of the same shape if asked for; computed on the CPU and returned on
            the device of ``labels``.

        Raises
        ------
        LabelError
            If the shape does not match the label space or a label is NaN or out of
            bounds (the message names the label, its value, its range and the row).
        """
        if not isinstance(labels, torch.Tensor):
            labels = torch.as_tensor(np.asarray(labels, dtype=np.float64))
        single = labels.dim() == 1
        batch = labels[None, :] if single else labels
        self.label_space.check(batch)
        device = batch.device
        batch = batch.cpu()  # the synthesizer computes on the CPU; results go back to device
        if not batch.is_floating_point():
            batch = batch.to(torch.float64)
        n = batch.shape[0]
        ks = self.sub_pixels(batch)
        # batches hold stars of one sampling factor, sorted by line width (smaller windows)
        order = np.lexsort((self._doppler_key(batch, 55.845), ks)) if n > 1 else np.zeros(
            1, dtype=np.int64)
        chunks = []
        for k in np.unique(ks):
            members = order[ks[order] == k]
            size = self._batch_size_for(int(k))
            chunks += [(int(k), members[i:i + size]) for i in range(0, members.size, size)]
        show = progress if progress is not None else n >= _PROGRESS_MIN_STARS
        fluxes, conts = [], []
        with tqdm(total=n, unit="spectra", desc="synthesizing", disable=not show,
                  leave=False) as bar:
            for k, members in chunks:
                index = torch.as_tensor(members, device=batch.device)
                flux, cont = self._flux_batch(batch[index], k, dense, return_continuum)
                fluxes.append(flux)
                conts.append(cont)
                bar.update(flux.shape[0])
        flux = torch.cat(fluxes) if fluxes else torch.zeros(0, self._base_grid.n_pixels,
                                                            dtype=self.dtype)
        inverse = torch.empty(n, dtype=torch.long, device=flux.device)
        inverse[torch.as_tensor(np.concatenate([m for _, m in chunks]) if chunks else
                                np.zeros(0, dtype=np.int64), device=flux.device)] = \
            torch.arange(n, device=flux.device)
        flux = flux[inverse]
        flux = flux.to(device)
        if single:
            flux = flux[0]
        if not return_continuum:
            return flux
        cont = (torch.cat(conts)[inverse] if conts else torch.zeros_like(flux)).to(device)
        return flux, cont[0] if single else cont

    def spectrum(self, *, with_continuum: bool = False, **labels: Any) -> Spectrum:
        """One normalized spectrum, as a `~specutils.Spectrum`.

        Parameters
        ----------
        with_continuum : bool
            Put the continuum (π B_λ(Teff), erg s⁻¹ cm⁻² Å⁻¹) in ``meta["continuum"]``.
        **labels
            Labels by name (numbers in canonical units or Quantities); missing ones take
            the label space's defaults.

        Returns
        -------
        Spectrum
            Dimensionless flux on :attr:`wavelength`; ``meta["labels"]`` holds the labels
            (floats in ``meta["label_units"]``), ``meta["normalized"]`` is True.

        Examples
        --------
        >>> import astropy.units as u
        >>> synth = Synthesizer(LineList.default([10820, 10850] * u.AA), [10825, 10845] * u.AA,
        ...                     resolving_power=50_000)
        >>> star = synth.spectrum(teff=4.8 * u.kK, logg=4.6, feh=-0.3)
        >>> star.flux.unit, star.meta["labels"]["teff"], star.meta["labels"]["vmic"]
        (Unit(dimensionless), 4800.0, 1.0)
        """
        values = self.label_space.parse(fill_missing=True, **labels)
        x = torch.tensor([list(values.values())], dtype=torch.float64)
        with torch.no_grad():
            result = self.flux(x, return_continuum=with_continuum, progress=False)
        flux, cont = result if with_continuum else (result, None)
        meta = self._meta(values)
        if cont is not None:
            meta["continuum"] = cont[0].double().numpy() * (u.erg / u.s / u.cm**2 / u.AA)
        return Spectrum(flux=flux[0].double().numpy() * u.dimensionless_unscaled,
                        spectral_axis=self.wavelength.copy(), meta=meta)

    def spectra(self, labels: Table | Mapping[str, Any], *, progress: bool | None = None
                ) -> Spectrum:
        """Many spectra at once, as one 2-d `~specutils.Spectrum` (stars × pixels).

        Parameters
        ----------
        labels : `~astropy.table.QTable`, Table or mapping
            One row (or array element) per star; missing labels take the defaults,
            columns that are not labels are ignored.
        progress : bool, optional
            Progress bar (default: for 100 stars or more).

        Returns
        -------
        Spectrum
            Flux of shape ``(n, n_pix)``; ``meta["labels"]`` maps names to arrays.

        Examples
        --------
        >>> import astropy.units as u
        >>> synth = Synthesizer(LineList.default([10820, 10850] * u.AA), [10825, 10845] * u.AA,
        ...                     resolving_power=50_000)
        >>> grid = synth.label_space.random(3, seed=1)
        >>> synth.spectra(grid).flux.shape
        (3, 93)
        """
        x = self.label_space.parse_batch(labels, fill_missing=True, ignore_unknown=True)
        with torch.no_grad():
            flux = self.flux(torch.from_numpy(x), progress=progress)
        values = {name: x[:, j].copy() for j, name in enumerate(self.label_space.names)}
        return Spectrum(flux=flux.double().numpy() * u.dimensionless_unscaled,
                        spectral_axis=self.wavelength.copy(), meta=self._meta(values))

    @property
    def settings(self) -> dict[str, Any]:
        """JSON-serializable description of the synthesizer (for provenance records).

        Examples
        --------
        >>> import astropy.units as u
        >>> synth = Synthesizer(LineList.default([10820, 10850] * u.AA), [10825, 10845] * u.AA,
        ...                     resolving_power=50_000)
        >>> synth.settings["lines"], synth.settings["tolerance"], synth.settings["dtype"]
        (14, 0.0001, 'float64')
        """
        lam = self._base_grid.centers
        return {
            "synthesizer": "stellarai.synth.Synthesizer",
            "lines": len(self.linelist),
            "species": self.linelist.species_names,
            "wavelength_range_aa": [float(lam[0]), float(lam[-1])],
            "pixels": int(lam.size),
            "resolving_power": self.resolving_power,
            "sampling": self._base_grid.sampling,
            "oversample": "per star" if self.oversample is None else self.oversample,
            "tolerance": self.tolerance,
            "max_half_width_aa": float(self.max_half_width.to_value(u.AA)),
            "dtype": str(self.dtype).removeprefix("torch."),
            "label_space": self.label_space.to_dict(),
        }

    def _meta(self, values: Mapping[str, Any]) -> dict[str, Any]:
        settings = self.settings
        del settings["label_space"], settings["species"]
        return {
            "normalized": True,
            "labels": dict(values),
            "label_units": {label.name: label.unit.to_string() for label in self.label_space},
            "synthesizer": settings,
        }

    def __repr__(self) -> str:
        lam = self._base_grid.centers
        grid = (f"R = {self.resolving_power:g}" if self.resolving_power is not None
                else "explicit grid")
        sub = "auto" if self.oversample is None else self.oversample
        return (f"<Synthesizer: {lam.size} pixels {lam[0]:.1f}-{lam[-1]:.1f} Angstrom "
                f"({grid}, {sub} sub-pixels), {len(self.linelist)} lines, "
                f"labels {', '.join(self.label_space.names)}>")
