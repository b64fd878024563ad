r"""One-layer LTE physics of the synthesizer: populations, opacities, widths, residual flux.

Everything is a batched, differentiable torch function of per-star tensors (leading axis
= stars). The model is an honest approximation, in the spirit of Gray (2005, *The
Observation and Analysis of Stellar Photospheres*, 3rd ed., chs. 1, 8, 11, 13–14):

**One layer.** Lines and continuum form at one layer with temperature :math:`T =
T_{\rm eff}` (the grey Eddington atmosphere at :math:`\tau = 2/3`). Its pressure follows
from hydrostatic equilibrium, :math:`P_g = g\,\tau\,\mu m_u/\kappa` with :math:`\tau = 2/3`
and :math:`\kappa` the continuum opacity per hydrogen nucleus at 5000 Å, and its electron
pressure from charge conservation, :math:`P_e = P_g\,\varepsilon_e/(1 + y + \varepsilon_e)`,
where :math:`\varepsilon_e = \sum_X A_X f^+_X + f^+_H` counts free electrons per hydrogen
nucleus (Saha for hydrogen and the 15 metals) and :math:`y = N_{He}/N_H`. The two are
solved together (Newton iteration on :math:`\ln P_e`; derivatives by the implicit function
theorem). This gives :math:`P_e \propto g^{1/3 \ldots 1/2}`, as in Gray's ch. 9.

**Populations.** Saha with Gray's practical constant (``log Φ = log(U_II/U_I) + 2.5 log T
− 5040 χ/T − 0.1762``, PHYSICS.md), neutral and singly ionized stages only; Boltzmann
factors :math:`g\,10^{-\theta\chi}/U`; partition functions from
:mod:`~stellarai.synth.elements`.

**Continuum opacity** per hydrogen nucleus: H⁻ bound–free (Gray eqs. 8.11–8.12, the
Wishart 1979 cross-section fit) and free–free (Gray eq. 8.13, Bell & Berrington 1987),
hydrogen bound–free and free–free with unit Gaunt factors (Gray eqs. 8.8–8.10), and
Thomson scattering by free electrons.

**Lines.** The line-to-continuum opacity ratio at line centre,
:math:`\eta_0 = (\pi e^2/m_e c^2)\,\lambda_0^2\,gf\,(n_l/g_l)\,(1 - e^{-hc/\lambda kT})
/(\sqrt\pi\,\Delta\lambda_D\,\kappa_c)`, times the Voigt function
:math:`H(a, u)`; Doppler width :math:`\Delta\lambda_D = (\lambda_0/c)\sqrt{2kT/m + \xi^2}`;
damping :math:`\Gamma = \gamma_{\rm rad} + \gamma_4 n_e (T/10^4)^{1/6} + \gamma_6 n_{H\,I}
(T/10^4)^{0.3}` (Stark and van der Waals grow with pressure), :math:`a = \Gamma\lambda^2/(4\pi
c\,\Delta\lambda_D)`. Hydrogen lines get the Stark width of
:mod:`~stellarai.synth.hydrogen` instead.

**Residual flux.** Milne–Eddington with a linear source function through
:math:`B(T_0)` and :math:`B(T_{\rm eff})` of the grey atmosphere, :math:`T_0 =
2^{-1/4}T_{\rm eff}`: :math:`F/F_c = (1 + b/(1+\eta))/(1 + b)`, :math:`b =
B_\lambda(T_{\rm eff})/B_\lambda(T_0) - 1`, which produces the linear, saturated and
damping parts of the curve of growth. The continuum is the surface flux :math:`\pi
B_\lambda(T_{\rm eff})`.

What it leaves out: molecules, depth dependence (strong lines are too shallow in the
near-infrared: the deepest possible line is :math:`b/(1+b) \approx 0.4` at 1 µm for the
Sun), non-LTE, hyperfine structure, doubly ionized stages, metal bound–free opacity (which
matters below ~4000 Å).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .elements import HELIUM_MASS, PARTITION_TEMPERATURES
from .hydrogen import HYDROGEN_IONIZATION_EV, RYDBERG_H

__all__ = [
    "Atmosphere",
    "ContinuumCoefficients",
    "continuum_opacity",
    "damping_parameter",
    "doppler_width",
    "log_partition_function",
    "planck_flux",
    "residual_flux",
    "saha_log_phi",
    "solve_atmosphere",
    "source_contrast",
    "unsold_vdw",
]

K_EV = 8.617333262e-5  # Boltzmann constant, eV/K
K_ERG = 1.380649e-16  # erg/K
C_CM = 2.99792458e10  # cm/s
C_KMS = 299792.458  # km/s
AMU_G = 1.66053906660e-24  # g
HC_OVER_K_AA = 1.438776877e8  # h c / k in Angstrom K
HC_EV_AA = 12398.41984  # h c in eV Angstrom
SIGMA_THOMSON = 6.6524587321e-25  # cm^2
LINE_CROSS_SECTION = math.pi * 2.8179403262e-13  # pi e^2 / (m_e c^2), cm
SAHA_CONSTANT = -0.1762  # Gray's practical Saha constant (includes log 2)
THETA_CONSTANT = 5040.0  # 5040 / T = log10(e) / (k T) with chi in eV (5039.78 exactly)
TAU_REFERENCE = 2.0 / 3.0
LAMBDA_REFERENCE = 5000.0  # Angstrom: wavelength of the hydrostatic reference opacity
_H_MINUS_THRESHOLD = 16419.0  # Angstrom: H- photo-detachment threshold (0.754 eV)
_ALPHA0 = 1.0449e-26  # Gray eq. 8.8, lambda in Angstrom
_LOG10E = math.log10(math.e)
# partition functions: held at their 4000 K value below, extrapolated (gently) up to 12000 K
_TEMPERATURE_CLAMP = (PARTITION_TEMPERATURES[0], 12000.0)
_LOG_T_NODES = tuple(math.log10(t) for t in PARTITION_TEMPERATURES)


# ------------------------------------------------------------------------------ populations


def log_partition_function(log_u_nodes: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """log10 U(T) by quadratic interpolation in log T through the tabulated nodes.

    Parameters
    ----------
    log_u_nodes : torch.Tensor
        Shape ``(n_species, 3)``: log10 U at
        :data:`~stellarai.synth.elements.PARTITION_TEMPERATURES`.
    temperature : torch.Tensor
        Shape ``(n,)`` in K; clamped to 4000–12000 K (partition functions change little
        below 4000 K, and a quadratic would extrapolate them the wrong way).

    Returns
    -------
    torch.Tensor
        Shape ``(n, n_species)``.

    Examples
    --------
    >>> import torch
    >>> nodes = torch.tensor([[1.36, 1.47, 1.64]], dtype=torch.float64)  # Fe I
    >>> log_partition_function(nodes, torch.tensor([6000.0], dtype=torch.float64))
    tensor([[1.4700]], dtype=torch.float64)
    """
    x = torch.log10(temperature.clamp(*_TEMPERATURE_CLAMP))[:, None]
    x0, x1, x2 = _LOG_T_NODES
    l0 = (x - x1) * (x - x2) / ((x0 - x1) * (x0 - x2))
    l1 = (x - x0) * (x - x2) / ((x1 - x0) * (x1 - x2))
    l2 = (x - x0) * (x - x1) / ((x2 - x0) * (x2 - x1))
    nodes = log_u_nodes.to(temperature.dtype)
    return l0 * nodes[:, 0] + l1 * nodes[:, 1] + l2 * nodes[:, 2]


def saha_log_phi(temperature: torch.Tensor, ionization_energy: torch.Tensor,
                 log_u_neutral: torch.Tensor, log_u_ion: torch.Tensor) -> torch.Tensor:
    r"""log10 of :math:`\Phi = P_e N_{II}/N_I` (dyn cm⁻²) from Saha's equation (Gray's form).

    Parameters
    ----------
    temperature : torch.Tensor
        Shape ``(n,)``, K.
    ionization_energy : torch.Tensor
        Shape ``(n_species,)``, eV.
    log_u_neutral, log_u_ion : torch.Tensor
        Shape ``(n, n_species)``.

    Examples
    --------
    >>> import torch
    >>> t = torch.tensor([5772.0], dtype=torch.float64)
    >>> chi = torch.tensor([7.9024], dtype=torch.float64)
    >>> u1 = torch.tensor([[1.45]], dtype=torch.float64)
    >>> u2 = torch.tensor([[1.64]], dtype=torch.float64)
    >>> round(float(saha_log_phi(t, chi, u1, u2)), 3)  # Fe: N_II/N_I = 10**2.517 / P_e
    2.517
    """
    t = temperature[:, None]
    return (log_u_ion - log_u_neutral + 2.5 * torch.log10(t)
            - THETA_CONSTANT * ionization_energy / t + SAHA_CONSTANT)


# ------------------------------------------------------------------------------ continuum


@dataclass(frozen=True)
class ContinuumCoefficients:
    """Wavelength-dependent, label-independent factors of the continuum opacity.

    Built once for a set of wavelengths (line centres, the reference wavelength) by
    :meth:`at`; :func:`continuum_opacity` combines them with the state of the gas.
    """

    wavelength: torch.Tensor  #: Angstrom, shape (m,)
    h_minus_bf: torch.Tensor  #: Wishart cross-section, cm^2
    ff_f0: torch.Tensor  #: Gray eq. 8.13 polynomial coefficients
    ff_f1: torch.Tensor
    ff_f2: torch.Tensor
    n0: torch.Tensor  #: lowest hydrogen level photo-ionizable at this wavelength

    @classmethod
    def at(cls, wavelength_aa: np.ndarray, dtype: torch.dtype = torch.float64
           ) -> ContinuumCoefficients:
        """Coefficients at wavelengths ``wavelength_aa`` (Angstrom, vacuum)."""
        lam = np.asarray(wavelength_aa, dtype=np.float64)
        poly = (1.99654, -1.18267e-5, 2.64243e-6, -4.40524e-10, 3.23992e-14,
                -1.39568e-18, 2.78701e-23)
        alpha = sum(c * lam**k for k, c in enumerate(poly)) * 1e-18
        alpha = np.where(lam < _H_MINUS_THRESHOLD, np.clip(alpha, 0.0, None), 0.0)
        x = np.log10(lam)
        f0 = -2.2763 - 1.6850 * x + 0.76661 * x**2 - 0.053346 * x**3
        f1 = 15.2827 - 9.2846 * x + 1.99381 * x**2 - 0.142631 * x**3
        f2 = -197.789 + 190.266 * x - 67.9775 * x**2 + 10.6913 * x**3 - 0.625151 * x**4
        n0 = np.ceil(np.sqrt(lam * RYDBERG_H * 1e-8) - 1e-12)
        def as_t(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=dtype)
        return cls(as_t(lam), as_t(alpha), as_t(f0), as_t(f1), as_t(f2), as_t(n0))


def continuum_opacity(coeffs: ContinuumCoefficients, temperature: torch.Tensor,
                      electron_pressure: torch.Tensor, neutral_h_fraction: torch.Tensor,
                      electrons_per_h: torch.Tensor) -> torch.Tensor:
    """Continuum opacity per hydrogen nucleus (cm²): H⁻ bf+ff, H bf+ff, Thomson.

    Parameters
    ----------
    coeffs : ContinuumCoefficients
        At ``m`` wavelengths.
    temperature, electron_pressure, neutral_h_fraction, electrons_per_h : torch.Tensor
        Shape ``(n,)``: T (K), P_e (dyn cm⁻²), N(H I)/N_H and free electrons per H nucleus.

    Returns
    -------
    torch.Tensor
        Shape ``(n, m)``.

    Examples
    --------
    >>> import torch
    >>> c = ContinuumCoefficients.at([5000.0])
    >>> one = lambda v: torch.tensor([v], dtype=torch.float64)
    >>> kappa = continuum_opacity(c, one(5772.0), one(30.0), one(1.0), one(1e-4))
    >>> f"{float(kappa):.2e}"  # cm^2 per H atom: ~0.5 cm^2/g
    '1.23e-24'
    """
    t = temperature[:, None]
    pe = electron_pressure[:, None]
    theta = THETA_CONSTANT / t
    lam = coeffs.wavelength.to(t.dtype)
    stim = -torch.expm1(-HC_OVER_K_AA / (lam * t))
    h_minus_bf = (4.158e-10 * coeffs.h_minus_bf.to(t.dtype) * pe * theta**2.5
                  * 10.0 ** (0.754 * theta) * stim)
    log_theta = torch.log10(theta)
    h_minus_ff = 1e-26 * pe * 10.0 ** (coeffs.ff_f0.to(t.dtype) + coeffs.ff_f1.to(t.dtype)
                                       * log_theta + coeffs.ff_f2.to(t.dtype) * log_theta**2)
    n0 = coeffs.n0.to(t.dtype)
    chi_i = HYDROGEN_IONIZATION_EV
    bound = sum(10.0 ** (-theta * chi_i * (1.0 - 1.0 / (n0 + k) ** 2)) / (n0 + k) ** 3
                for k in range(3))
    tail = _LOG10E / (2.0 * theta * chi_i)
    bound = bound + tail * (10.0 ** (-theta * chi_i * (1.0 - 1.0 / (n0 + 3.0) ** 2))
                            - 10.0 ** (-theta * chi_i))
    hydrogen = _ALPHA0 * lam**3 * (bound + tail * 10.0 ** (-theta * chi_i)) * stim
    neutral = h_minus_bf + h_minus_ff + hydrogen
    return neutral_h_fraction[:, None] * neutral + SIGMA_THOMSON * electrons_per_h[:, None]


# ------------------------------------------------------------------------------ atmosphere


@dataclass(frozen=True)
class Atmosphere:
    """State of the line-forming layer of a batch of stars; every field has shape (n,)."""

    temperature: torch.Tensor  #: K
    electron_pressure: torch.Tensor  #: dyn cm^-2
    gas_pressure: torch.Tensor  #: dyn cm^-2
    electrons_per_h: torch.Tensor  #: free electrons per H nucleus
    neutral_h_fraction: torch.Tensor  #: N(H I) / N_H
    electron_density: torch.Tensor  #: cm^-3
    neutral_h_density: torch.Tensor  #: cm^-3
    log_phi: torch.Tensor  #: (n, n_elements) log10 Saha Phi of the metals, dyn cm^-2


def _pressure_map(log_pe: torch.Tensor, t: torch.Tensor, g: torch.Tensor,
                  abundances: torch.Tensor, phi: torch.Tensor, phi_h: torch.Tensor,
                  helium: torch.Tensor, mass_per_h: torch.Tensor,
                  reference: ContinuumCoefficients) -> tuple[torch.Tensor, ...]:
    """One pass of hydrostatics + charge balance: ln P_e -> ln P_e(new) and the state."""
    pe = torch.exp(log_pe)
    ion_metals = (abundances * phi / (phi + pe[:, None])).sum(-1)
    ion_h = phi_h / (phi_h + pe)
    eps = ion_metals + ion_h
    f_h0 = pe / (phi_h + pe)
    kappa = continuum_opacity(reference, t, pe, f_h0, eps)[:, 0]
    pg = g * TAU_REFERENCE * mass_per_h * AMU_G / kappa
    new = torch.log(pg * eps / (1.0 + helium + eps))
    return new, pg, eps, f_h0


def solve_atmosphere(temperature: torch.Tensor, log_g: torch.Tensor,
                     metal_abundances: torch.Tensor, metal_masses: torch.Tensor,
                     log_phi_metals: torch.Tensor, log_phi_h: torch.Tensor,
                     helium: torch.Tensor, *, max_iter: int = 100) -> Atmosphere:
    r"""Solve hydrostatic equilibrium and charge conservation for :math:`P_e`, :math:`P_g`.

    Parameters
    ----------
    temperature, log_g : torch.Tensor
        Shape ``(n,)``: T (K) and log10 g (cgs).
    metal_abundances : torch.Tensor
        Shape ``(n, n_el)``: N_X/N_H of the electron donors.
    metal_masses : torch.Tensor
        Shape ``(n_el,)``: atomic masses (u).
    log_phi_metals, log_phi_h : torch.Tensor
        Saha :math:`\log_{10}\Phi` of the metals ``(n, n_el)`` and of hydrogen ``(n,)``.
    helium : torch.Tensor
        Shape ``(n,)``: y = N_He/N_H.
    max_iter : int
        Newton iterations at most (convergence to 1e-12 in ln P_e takes 5–10).

    Returns
    -------
    Atmosphere
        Differentiable with respect to all inputs: the converged root is refined by one
        implicit-function step, so gradients are exact at the solution.

    Examples
    --------
    >>> import torch
    >>> from stellarai.synth.elements import ELEMENT_DATA, METALS
    >>> f64 = dict(dtype=torch.float64)
    >>> t = torch.tensor([5772.0], **f64)
    >>> ab = torch.tensor([[10 ** (ELEMENT_DATA[x].solar_log_eps - 12) for x in METALS]], **f64)
    >>> m = torch.tensor([ELEMENT_DATA[x].mass for x in METALS], **f64)
    >>> chi = torch.tensor([ELEMENT_DATA[x].ionization_energies[0] for x in METALS], **f64)
    >>> u = torch.tensor([ELEMENT_DATA[x].log_u for x in METALS], **f64)
    >>> phi = saha_log_phi(t, chi, log_partition_function(u[:, 0], t),
    ...                    log_partition_function(u[:, 1], t))
    >>> phi_h = saha_log_phi(t, torch.tensor([13.5984], **f64), torch.tensor([[0.301]], **f64),
    ...                      torch.zeros(1, 1, **f64))[:, 0]
    >>> atm = solve_atmosphere(t, torch.tensor([4.438], **f64), ab, m, phi, phi_h,
    ...                        torch.tensor([0.0851], **f64))
    >>> round(float(atm.electron_pressure), 1), f"{float(atm.gas_pressure):.2e}"
    (13.4, '7.53e+04')
    """
    t = temperature
    g = 10.0**log_g
    phi = 10.0**log_phi_metals
    phi_h = 10.0**log_phi_h
    mass_per_h = 1.008 + HELIUM_MASS * helium + (metal_abundances * metal_masses).sum(-1)
    reference = ContinuumCoefficients.at(np.array([LAMBDA_REFERENCE]), dtype=t.dtype)
    args = (t, g, metal_abundances, phi, phi_h, helium, mass_per_h, reference)

    def residual(x: torch.Tensor) -> torch.Tensor:
        return _pressure_map(x, *args)[0] - x

    with torch.no_grad():
        x = torch.full_like(t, math.log(10.0))
        step = 1e-6
        for _ in range(max_iter):
            r = residual(x)
            slope = (residual(x + step) - residual(x - step)) / (2 * step)
            slope = torch.where(slope < -1e-3, slope, torch.full_like(slope, -1e-3))
            delta = (-r / slope).clamp(-2.0, 2.0)
            x = x + delta
            if float(delta.abs().max()) < 1e-12:
                break
        slope = (residual(x + step) - residual(x - step)) / (2 * step)
    x_star = x.detach()
    # one implicit-function step: value unchanged, d x / d params = (dF/dparams) / (1 - F')
    new, *_ = _pressure_map(x_star, *args)
    log_pe = x_star + (new - x_star) / (-slope)
    _, pg, eps, f_h0 = _pressure_map(log_pe, *args)
    pe = torch.exp(log_pe)
    kt = K_ERG * t
    n_h = pg / ((1.0 + helium + eps) * kt)
    return Atmosphere(
        temperature=t,
        electron_pressure=pe,
        gas_pressure=pg,
        electrons_per_h=eps,
        neutral_h_fraction=f_h0,
        electron_density=pe / kt,
        neutral_h_density=n_h * f_h0,
        log_phi=log_phi_metals,
    )


# ------------------------------------------------------------------------------ lines


def doppler_width(wavelength_aa: torch.Tensor, temperature: torch.Tensor,
                  mass_amu: torch.Tensor, vmic_kms: torch.Tensor) -> torch.Tensor:
    r"""Doppler width :math:`\Delta\lambda_D = (\lambda/c)\sqrt{2kT/m + \xi^2}` in Angstrom.

    Parameters
    ----------
    wavelength_aa, mass_amu : torch.Tensor
        Shape ``(m,)``: line wavelengths and atomic masses.
    temperature, vmic_kms : torch.Tensor
        Shape ``(n,)``.

    Returns
    -------
    torch.Tensor
        Shape ``(n, m)``.

    Examples
    --------
    >>> import torch
    >>> one = lambda v: torch.tensor([v], dtype=torch.float64)
    >>> round(float(doppler_width(one(10000.0), one(5772.0), one(55.845), one(0.0))), 4)
    0.0437
    """
    thermal = 2.0 * K_ERG * temperature[:, None] / (mass_amu * AMU_G) * 1e-10  # (km/s)^2
    return wavelength_aa / C_KMS * torch.sqrt(thermal + vmic_kms[:, None] ** 2)


def damping_parameter(gamma: torch.Tensor, wavelength_aa: torch.Tensor,
                      doppler_aa: torch.Tensor) -> torch.Tensor:
    r""":math:`a = \Gamma\lambda^2/(4\pi c\,\Delta\lambda_D)` (Γ in s⁻¹, lengths in Å).

    Examples
    --------
    >>> import torch
    >>> one = lambda v: torch.tensor(v, dtype=torch.float64)
    >>> round(float(damping_parameter(one(1e8), one(10000.0), one(0.05))), 5)
    0.00531
    """
    return gamma * (wavelength_aa * 1e-8) ** 2 / (4.0 * math.pi * C_CM * doppler_aa * 1e-8)


def unsold_vdw(wavelength_aa: np.ndarray, excitation_ev: np.ndarray,
               ionization_ev: np.ndarray, mass_amu: np.ndarray, *,
               enhancement: float = 2.0) -> np.ndarray:
    r"""Van der Waals damping rate per hydrogen atom at 10⁴ K (cm³ s⁻¹), Unsöld's formula.

    :math:`\gamma_6 = E\cdot 8.08\,\bar v^{3/5} C_6^{2/5}`, :math:`C_6 = 0.3\times10^{-30}
    [(I - \chi - \chi_\lambda)^{-2} - (I - \chi)^{-2}]` (energies in eV; Unsöld 1955, as in
    Gray 2005 eq. 11.30), :math:`\bar v` the mean relative speed of the atom and a
    hydrogen atom at 10⁴ K, and the customary enhancement factor :math:`E = 2`. Energy
    differences are floored at 1 eV so that levels near the ionization limit stay finite.

    Examples
    --------
    >>> round(float(np.log10(unsold_vdw(10000.0, 3.0, 7.9024, 55.845))), 2)
    -7.89
    """
    lam = np.asarray(wavelength_aa, dtype=np.float64)
    chi = np.asarray(excitation_ev, dtype=np.float64)
    ion = np.asarray(ionization_ev, dtype=np.float64)
    upper = np.maximum(ion - chi - HC_EV_AA / lam, 1.0)
    lower = np.maximum(ion - chi, upper + 1e-3)
    c6 = 0.3e-30 * (1.0 / upper**2 - 1.0 / lower**2)
    reduced = np.asarray(mass_amu, dtype=np.float64) * 1.008 / (np.asarray(mass_amu) + 1.008)
    speed = np.sqrt(8.0 * K_ERG * 1e4 / (math.pi * reduced * AMU_G))
    return enhancement * 8.08 * speed**0.6 * c6**0.4


# ------------------------------------------------------------------------------ flux


def source_contrast(wavelength_aa: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    r""":math:`b = B_\lambda(T)/B_\lambda(2^{-1/4}T) - 1`: the Milne–Eddington source slope.

    Shape ``(n, m)`` for wavelengths ``(m,)`` and temperatures ``(n,)``. The deepest
    possible line has depth :math:`b/(1+b)`.

    Examples
    --------
    >>> import torch
    >>> b = source_contrast(torch.tensor([10000.0], dtype=torch.float64),
    ...                     torch.tensor([5772.0], dtype=torch.float64))
    >>> round(float(b / (1 + b)), 3)
    0.396
    """
    x = HC_OVER_K_AA / (wavelength_aa * temperature[:, None])
    return torch.expm1(x * 2.0**0.25) / torch.expm1(x) - 1.0


def residual_flux(eta: torch.Tensor, contrast: torch.Tensor) -> torch.Tensor:
    r"""Milne–Eddington residual flux :math:`(1 + b/(1 + \eta))/(1 + b)`.

    Examples
    --------
    >>> import torch
    >>> residual_flux(torch.tensor([0.0, 1.0, 1e9]), torch.tensor(1.0))
    tensor([1.0000, 0.7500, 0.5000])
    """
    return (1.0 + contrast / (1.0 + eta)) / (1.0 + contrast)


def planck_flux(wavelength_aa: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    r"""Surface flux :math:`\pi B_\lambda(T)` in erg s⁻¹ cm⁻² Å⁻¹, shape ``(n, m)``.

    Examples
    --------
    >>> import torch
    >>> f = planck_flux(torch.tensor([5000.0], dtype=torch.float64),
    ...                 torch.tensor([5772.0], dtype=torch.float64))
    >>> f"{float(f):.3e}"
    '8.243e+06'
    """
    lam_cm = wavelength_aa * 1e-8
    x = HC_OVER_K_AA / (wavelength_aa * temperature[:, None])
    b_cm = 2.0 * 6.62607015e-27 * C_CM**2 / lam_cm**5 / torch.expm1(x)
    return math.pi * b_cm * 1e-8
