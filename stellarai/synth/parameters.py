r"""Which labels the synthesizer understands, and what they do.

=============== ======= ===============================================================
label           unit    effect
=============== ======= ===============================================================
``teff``        K       temperature of the line-forming layer (required)
``logg``        dex     surface gravity: pressure of the layer (required)
``feh``         dex     [Fe/H]; also scales every other metal (default 0)
``alpha_fe``    dex     [α/Fe] added to O, Mg, Si, Ca and Ti (default 0)
``vmic``        km/s    microturbulence, added in quadrature to the thermal speed
                        (default 1 km/s)
``he_h``        dex     [He/H]: helium number ratio N_He/N_H = 0.0851 × 10^he_h (Asplund
                        et al. 2009 solar value); acts through the mean mass per hydrogen
                        nucleus and the gas pressure, hence P_e (default 0)
``<x>_h``       dex     [X/H] of metal X (``mg_h``, ``c_h`` ...): sets that element's
                        abundance, overriding ``feh`` and ``alpha_fe`` for it
``<x>_fe``      dex     [X/Fe] of metal X: [X/H] = ``feh`` + ``<x>_fe``, overriding
                        ``alpha_fe`` for it
=============== ======= ===============================================================

Abundance labels of single elements change only that element's lines: the atmosphere
(electron and gas pressure, continuum opacity) is computed from ``feh``, ``alpha_fe`` and
``he_h`` alone, as when a spectrum is synthesized for varied abundances on a fixed model
atmosphere. Labels absent from the label space keep the defaults above.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from ..errors import LabelError
from ..labels import Label, LabelSpace, abundance_label
from .elements import ALPHA_ELEMENTS, HELIUM_SOLAR_LOG_EPS, METALS

__all__ = [
    "PHYSICAL_LIMITS",
    "LabelMapping",
    "default_label_space",
    "synth_label_space",
]

_FIXED = {"feh": 0.0, "alpha_fe": 0.0, "vmic": 1.0, "he_h": 0.0}
PHYSICAL_LIMITS = {
    "teff": (3000.0, 10000.0),
    "logg": (-1.0, 6.5),
    "vmic": (0.0, 10.0),
    "he_h": (-2.0, 1.0),
}
"""Ranges (canonical units) that a label's bounds must lie within: where the
approximations of :mod:`stellarai.synth.physics` hold at all."""

_SOLAR_HELIUM = 10.0 ** (HELIUM_SOLAR_LOG_EPS - 12.0)
_ELEMENT_INDEX = {x.lower(): i for i, x in enumerate(METALS)}


def default_label_space() -> LabelSpace:
    """The synthesizer's default labels: teff, logg, feh, vmic, alpha_fe.

    As :meth:`stellarai.labels.LabelSpace.default`, with teff limited to 3000–10000 K
    and logg to 0–5.5, where the one-layer model is meaningful.

    Examples
    --------
    >>> default_label_space()["teff"]
    Label('teff', unit='K', bounds=(3000, 10000), default=5772)
    """
    return LabelSpace.default().with_bounds("teff", 3000.0, 10000.0).with_bounds(
        "logg", 0.0, 5.5)


def synth_label_space(abundances: Iterable[str] = (), *, helium: bool = False,
                      alpha: bool = True, bounds: tuple[float, float] = (-1.0, 1.0)
                      ) -> LabelSpace:
    """The default labels plus individual abundances and helium.

    Parameters
    ----------
    abundances : iterable of str
        Label names (``"mg_fe"``, ``"c_h"``) or element symbols (``"Mg"``, read as
        ``"<x>_fe"``) of metals, added with ``bounds``.
    helium : bool
        Add ``he_h`` ([He/H], −0.5 to 0.5 dex).
    alpha : bool
        Keep ``alpha_fe``.
    bounds : (float, float)
        Bounds (dex) of the added abundance labels.

    Examples
    --------
    >>> synth_label_space(["Mg", "c_h"], helium=True).names
    ('teff', 'logg', 'feh', 'vmic', 'alpha_fe', 'mg_fe', 'c_h', 'he_h')
    """
    space = default_label_space()
    if not alpha:
        space = space.subset([n for n in space.names if n != "alpha_fe"])
    for item in abundances:
        name = str(item)
        if name.lower() in _ELEMENT_INDEX:
            label = abundance_label(name, "fe", bounds)
        else:
            element, _, ref = name.partition("_")
            if element not in _ELEMENT_INDEX or ref not in ("h", "fe"):
                raise LabelError(
                    f"abundance {name!r} is not '<x>_h', '<x>_fe' or an element symbol of "
                    f"the synthesizer's metals ({', '.join(METALS)}; Fe is 'feh')"
                )
            label = abundance_label(element, ref, bounds)
        space = space.with_label(label)
    if helium:
        space = space.with_label(Label("he_h", "dex", (-0.5, 0.5), default=0.0,
                                       description="[He/H] helium abundance",
                                       latex=r"$[\mathrm{He}/\mathrm{H}]$"))
    return space


class LabelMapping:
    """Turn label arrays of a :class:`~stellarai.labels.LabelSpace` into physical inputs.

    Parameters
    ----------
    space : LabelSpace
        Must contain ``teff`` and ``logg``; other names must be among those of the module
        docstring, and bounds within :data:`PHYSICAL_LIMITS`.

    Raises
    ------
    LabelError
        For a missing required label, an unknown label (the message lists the known
        ones), an element given both as ``<x>_h`` and ``<x>_fe``, or bounds beyond the
        physical limits.

    Examples
    --------
    >>> import torch
    >>> mapping = LabelMapping(synth_label_space(["mg_h"]))
    >>> x = torch.tensor([[5000.0, 4.5, -1.0, 1.0, 0.4, 0.2]], dtype=torch.float64)
    >>> p = mapping.physical(x)
    >>> float(p["line_xh"][0, 4]), float(p["atmosphere_xh"][0, 4])  # [Mg/H]
    (0.2, -0.6)
    """

    def __init__(self, space: LabelSpace) -> None:
        if not isinstance(space, LabelSpace):
            raise LabelError(f"label_space must be a LabelSpace, got {type(space).__name__}")
        names = space.names
        for required in ("teff", "logg"):
            if required not in names:
                raise LabelError(
                    f"the synthesizer needs label {required!r}; label_space has {list(names)}"
                )
        self.space = space
        self._index = {name: i for i, name in enumerate(names)}
        self._xh: dict[int, int] = {}
        self._xfe: dict[int, int] = {}
        for name in names:
            if name in (*_FIXED, "teff", "logg"):
                continue
            element, _, ref = name.partition("_")
            if element in _ELEMENT_INDEX and element != "fe" and ref in ("h", "fe"):
                target = self._xh if ref == "h" else self._xfe
                target[_ELEMENT_INDEX[element]] = self._index[name]
                continue
            known = [*_FIXED, "teff", "logg", "<x>_h", "<x>_fe"]
            raise LabelError(
                f"the synthesizer does not know label {name!r}; it understands {known} with "
                f"<x> one of {', '.join(m.lower() for m in METALS if m != 'Fe')}"
            )
        both = sorted(METALS[i] for i in set(self._xh) & set(self._xfe))
        if both:
            raise LabelError(f"element(s) {both} given both as <x>_h and <x>_fe; keep one")
        for name, (lo, hi) in PHYSICAL_LIMITS.items():
            if name in names:
                label = space[name]
                if label.lower < lo or label.upper > hi:
                    raise LabelError(
                        f"label {name!r} has bounds [{label.lower:g}, {label.upper:g}] "
                        f"{label.unit.to_string()}; the synthesizer's physics holds within "
                        f"[{lo:g}, {hi:g}] (narrow the bounds with LabelSpace.with_bounds)"
                    )
        alpha = np.array([m in ALPHA_ELEMENTS for m in METALS], dtype=np.float64)
        self._alpha = torch.from_numpy(alpha)

    def _column(self, labels: torch.Tensor, name: str) -> torch.Tensor:
        if name in self._index:
            return labels[:, self._index[name]]
        return torch.full_like(labels[:, 0], _FIXED[name])

    def physical(self, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Physical inputs for a ``(n, n_labels)`` float tensor of labels.

        Returns
        -------
        dict
            ``teff``, ``logg``, ``vmic``, ``helium`` (N_He/N_H), all ``(n,)``; ``line_xh``
            and ``atmosphere_xh``, ``(n, 15)`` [X/H] of the metals (order of
            :data:`~stellarai.synth.elements.METALS`) for line opacities and for the
            atmosphere.
        """
        feh = self._column(labels, "feh")
        alpha = self._column(labels, "alpha_fe")
        weights = self._alpha.to(labels.dtype)
        atmosphere = feh[:, None] + alpha[:, None] * weights
        columns = list(atmosphere.unbind(-1))
        for element, index in self._xh.items():
            columns[element] = labels[:, index]
        for element, index in self._xfe.items():
            columns[element] = feh + labels[:, index]
        return {
            "teff": labels[:, self._index["teff"]],
            "logg": labels[:, self._index["logg"]],
            "vmic": self._column(labels, "vmic"),
            "helium": _SOLAR_HELIUM * 10.0 ** self._column(labels, "he_h"),
            "line_xh": torch.stack(columns, dim=-1),
            "atmosphere_xh": atmosphere,
        }
