r"""Line profiles of a :class:`~stellarai.lines.LineModel`: pseudo-Voigt and exact Voigt.

A line with area ``amplitude`` (Angstrom), Gaussian standard deviation ``sigma`` and
Lorentzian half width ``gamma`` absorbs :math:`A\,V(x; \sigma, \gamma)` at a distance
:math:`x` from its centre, :math:`V` an area-normalized profile.

* ``"pseudo_voigt"``: Thompson, Cox & Hastings (1987), as in blasé (Gully-Santiago &
  Morley 2022): :math:`V \simeq \eta L(x; f) + (1-\eta) G(x; f)`, a Lorentzian and a
  Gaussian of the same full width :math:`f` at half maximum (PHYSICS.md gives :math:`f`
  and :math:`\eta` from :math:`f_G = 2\sqrt{2\ln 2}\,\sigma` and :math:`f_L = 2\gamma`).
  Per pixel this is :math:`c_L/(x^2 + h^2) + c_G e^{-k x^2}` with four per-line
  coefficients (:func:`pseudo_voigt_coefficients`), which is what makes it cheap.
* ``"voigt"``: the exact Voigt profile,
  :func:`stellarai.synth.voigt_profile` (Weideman's Faddeeva function).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from ..synth.profiles import voigt_profile

__all__ = ["PROFILES", "PseudoVoigtCoefficients", "pseudo_voigt_coefficients",
           "pseudo_voigt_shape", "absorption", "window_half_width"]

PROFILES = ("pseudo_voigt", "voigt")
"""The line profiles a :class:`~stellarai.lines.LineModel` can use."""

_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


class PseudoVoigtCoefficients(NamedTuple):
    r"""Per-line coefficients of :math:`A V(x) = c_L/(x^2 + h^2) + c_G e^{-k x^2}`."""

    lorentz: Tensor  #: c_L = A eta h / pi (Angstrom^2)
    h2: Tensor  #: h^2, h = f / 2 (Angstrom^2)
    gauss: Tensor  #: c_G = A (1 - eta) / (s sqrt(2 pi)), s = f / 2.3548
    k: Tensor  #: 1 / (2 s^2) (Angstrom^-2)


def pseudo_voigt_shape(sigma: Tensor, gamma: Tensor) -> tuple[Tensor, Tensor]:
    r"""Total FWHM :math:`f` and Lorentzian fraction :math:`\eta` (Thompson et al. 1987).

    Examples
    --------
    >>> import torch
    >>> f, eta = pseudo_voigt_shape(torch.tensor([1.0, 1e-6]), torch.tensor([1e-6, 1.0]))
    >>> [round(v, 4) for v in f.tolist()], [round(v, 3) for v in eta.tolist()]
    ([2.3548, 2.0], [0.0, 1.0])
    """
    fg = _FWHM_PER_SIGMA * sigma
    fl = 2.0 * gamma
    f = (fg**5 + 2.69269 * fg**4 * fl + 2.42843 * fg**3 * fl**2 + 4.47163 * fg**2 * fl**3
         + 0.07842 * fg * fl**4 + fl**5) ** 0.2
    r = fl / f
    eta = 1.36603 * r - 0.47719 * r**2 + 0.11116 * r**3
    return f, eta


def pseudo_voigt_coefficients(amplitude: Tensor, sigma: Tensor, gamma: Tensor
                              ) -> PseudoVoigtCoefficients:
    """The four per-line coefficients of the pseudo-Voigt absorption (see the module)."""
    f, eta = pseudo_voigt_shape(sigma, gamma)
    h = 0.5 * f
    s = f / _FWHM_PER_SIGMA
    return PseudoVoigtCoefficients(amplitude * eta * h / math.pi, h * h,
                                   amplitude * (1.0 - eta) / (s * math.sqrt(2 * math.pi)),
                                   0.5 / (s * s))


def absorption(x: Tensor, amplitude: Tensor, sigma: Tensor, gamma: Tensor,
               profile: str = "pseudo_voigt") -> Tensor:
    r""":math:`A\,V(x)` for offsets ``x`` (Angstrom) broadcast against per-line values.

    Examples
    --------
    >>> import torch
    >>> x = torch.linspace(-30.0, 30.0, 60001, dtype=torch.float64)
    >>> one = torch.tensor(1.0, dtype=torch.float64)
    >>> for name in ("pseudo_voigt", "voigt"):    # area-normalized: integrates to ~A
    ...     area = torch.trapezoid(absorption(x, 2 * one, 0.05 * one, 0.05 * one, name), x)
    ...     print(name, round(float(area), 2))
    pseudo_voigt 2.0
    voigt 2.0
    """
    if profile == "voigt":
        return amplitude * voigt_profile(x, sigma, gamma)
    c = pseudo_voigt_coefficients(amplitude, sigma, gamma)
    x2 = x * x
    return c.lorentz / (x2 + c.h2) + c.gauss * torch.exp(-c.k * x2)


def window_half_width(amplitude: Tensor, sigma: Tensor, gamma: Tensor,
                      tolerance: float) -> Tensor:
    r"""Distance (Angstrom) beyond which a line absorbs less than ``tolerance``.

    Each of the two pseudo-Voigt terms is kept below ``tolerance / 2``: the Gaussian
    beyond :math:`\sqrt{\ln(2c_G/t)/k}`, the Lorentzian beyond :math:`\sqrt{2c_L/t}`.
    The exact Voigt profile is within about 1% of the pseudo-Voigt one, so the same
    windows serve it.

    Examples
    --------
    >>> import torch
    >>> w = window_half_width(torch.tensor([0.005, 0.05]), torch.tensor([0.04, 0.04]),
    ...                       torch.tensor([0.04, 0.04]), 1e-4)
    >>> [round(v, 2) for v in w.tolist()]
    [1.2, 3.8]
    """
    c = pseudo_voigt_coefficients(amplitude, sigma, gamma)
    gauss = torch.sqrt(torch.clamp(torch.log(2.0 * c.gauss / tolerance), min=0.0) / c.k)
    lorentz = torch.sqrt(2.0 * c.lorentz / tolerance)
    return torch.maximum(gauss, lorentz)
