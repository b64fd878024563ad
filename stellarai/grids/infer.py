"""Inferring a label space from label columns: units by name, bounds from the data."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import astropy.units as u
import numpy as np
from astropy.table import Table

from ..errors import LabelError
from ..labels import (
    ABUNDANCE_UNIT,
    ELEMENTS,
    LOGG_UNIT,
    TEMPERATURE_UNIT,
    VELOCITY_UNIT,
    Label,
    LabelSpace,
)

__all__ = ["canonical_unit", "infer_label_space"]

_ABUNDANCE = re.compile(r"(?P<x>[a-z]{1,2}|alpha|m)_(?P<ref>h|fe)")
_ELEMENTS = {e.lower() for e in ELEMENTS}


def canonical_unit(name: str) -> u.UnitBase | u.FunctionUnitBase | None:
    """The canonical unit of a label named by stellarai's naming scheme, or None.

    See :mod:`stellarai.labels` for the scheme: ``teff`` (K), ``logg`` (dex cgs),
    ``feh``, ``m_h``, ``alpha_fe``, ``<x>_h``, ``<x>_fe`` (dex), ``vmic``, ``vmac`` (km/s).

    Examples
    --------
    >>> canonical_unit("mg_fe"), canonical_unit("vmic"), canonical_unit("c12_c13")
    (Unit("dex"), Unit("km / s"), None)
    """
    if name == "teff":
        return TEMPERATURE_UNIT
    if name == "logg":
        return LOGG_UNIT
    if name in ("vmic", "vmac"):
        return VELOCITY_UNIT
    match = _ABUNDANCE.fullmatch(name)
    if name == "feh" or (match and (match["x"] in _ELEMENTS or match["x"] in ("alpha", "m"))):
        return ABUNDANCE_UNIT
    return None


def _columns(labels: Any) -> dict[str, Any]:
    if isinstance(labels, Table):
        return {name: labels[name] for name in labels.colnames}
    if isinstance(labels, Mapping):
        return dict(labels)
    raise LabelError(
        f"to infer a label space, labels must be a QTable or a mapping of label names to "
        f"columns, got {type(labels).__name__}; pass label_space= for a bare array"
    )


def infer_label_space(labels: Any) -> LabelSpace:
    """The tightest label space holding some labels, with units from the naming scheme.

    Parameters
    ----------
    labels : `~astropy.table.QTable` or mapping
        Label columns by name (Quantities, table columns or plain numbers).

    Returns
    -------
    LabelSpace
        One label per column, in column order. The unit is the canonical unit of the name
        (:func:`canonical_unit`; a column with another, convertible unit is converted),
        else the column's unit, else dimensionless. The bounds are the data's minimum and
        maximum, as The Payne scales its labels; a label with a single value gets bounds
        value ± 0.5 (in its unit). Description and LaTeX symbol come from
        :meth:`LabelSpace.default <stellarai.labels.LabelSpace.default>` where the name
        is there.

    Examples
    --------
    >>> import astropy.units as u
    >>> infer_label_space({"teff": [4.5, 5.5] * u.kK, "logg": [4.0, 4.5], "c12_c13": [20, 20]})
    <LabelSpace: 3 labels
      teff     K                [4500, 5500]
      logg     dex(cm / s2)     [4, 4.5]
      c12_c13  (dimensionless)  [19.5, 20.5]>
    """
    defaults = LabelSpace.default()
    inferred = []
    for name, column in _columns(labels).items():
        unit = canonical_unit(str(name)) or getattr(column, "unit", None) or u.one
        probe = Label(name, unit, (0.0, 1.0))  # validates the name; converts the values
        values = probe.to_value(column)
        if values.ndim != 1 or values.size == 0:
            raise LabelError(f"label {name!r} must be a non-empty 1-d column, got shape "
                             f"{values.shape}")
        if not np.all(np.isfinite(values)):
            row = int(np.flatnonzero(~np.isfinite(values))[0])
            raise LabelError(f"label {name!r} is {values[row]} in row {row}; labels must be "
                             "finite")
        lower, upper = float(values.min()), float(values.max())
        if lower == upper:
            lower, upper = lower - 0.5, upper + 0.5
        known = defaults[name] if name in defaults else None
        inferred.append(Label(name, probe.unit, (lower, upper),
                              description=known.description if known else "",
                              latex=known.latex if known else ""))
    return LabelSpace(inferred)
