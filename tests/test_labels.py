"""Label spaces: names, units, bounds, parsing, scaling, tables and serialization."""

from __future__ import annotations

import json

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.table import MaskedColumn, QTable, Table

from stellarai.errors import LabelError
from stellarai.labels import (
    ABUNDANCE_UNIT,
    ELEMENTS,
    LOGG_UNIT,
    Label,
    LabelSpace,
    abundance_label,
)

LOGG_SI = u.dex(u.m / u.s**2)


@pytest.fixture
def space():
    return LabelSpace.default()


@pytest.fixture
def small():
    return LabelSpace.default().subset(["teff", "logg", "feh"])


# --------------------------------------------------------------------------- Label


def test_label_converts_bounds_and_default():
    label = Label("teff", "K", (2.3 * u.kK, 12 * u.kK), default=5.772 * u.kK)
    assert label.unit == u.K
    assert label.bounds == (2300.0, 12000.0)
    assert type(label.bounds[0]) is float
    assert label.default == 5772.0
    assert (label.lower, label.upper) == (2300.0, 12000.0)
    assert Label("teff", u.K, [2300, 12000] * u.K).bounds == (2300.0, 12000.0)


def test_label_fill_value_and_to_value():
    assert Label("vmic", u.km / u.s, (0, 4)).fill_value == 2.0
    assert Label("vmic", u.km / u.s, (0, 4), default=1).fill_value == 1.0
    assert Label("vmic", u.km / u.s, (0, 4)).to_value(1500 * u.m / u.s) == 1.5


@pytest.mark.parametrize(
    "name, match",
    [
        ("Teff", "must be lowercase, got 'Teff' \\(use 'teff'\\)"),
        ("t eff", "must be a Python identifier, got 't eff'"),
        ("class", "must be a Python identifier"),
        (3, "must be a Python identifier, got 3"),
        ("fe_h", "'fe_h' is spelled 'feh'"),
        ("fill_missing", "reserved"),
    ],
)
def test_label_bad_names(name, match):
    with pytest.raises(LabelError, match=match):
        Label(name, u.K, (0, 1))


@pytest.mark.parametrize(
    "bounds, match",
    [
        ((5, 1), r"lower < upper, got \(5, 1\) K"),
        ((0, np.inf), "must be finite"),
        ((1,), r"must be a pair \(lower, upper\)"),
        ((0 * u.m, 1 * u.m), "expects a value in K.*got unit 'm'"),
        (([0, 1], 2), "must be two scalars"),
    ],
)
def test_label_bad_bounds(bounds, match):
    with pytest.raises(LabelError, match=match):
        Label("teff", u.K, bounds)


def test_label_bad_unit_and_default():
    with pytest.raises(LabelError, match="'parsecs per fortnight' is not a unit"):
        Label("teff", "parsecs per fortnight", (0, 1))
    with pytest.raises(LabelError, match=r"default of label 'teff' must be a scalar within its "
                                         r"bounds \[0, 1\] K, got 2"):
        Label("teff", u.K, (0, 1), default=2)


def test_label_equality_ignores_documentation():
    a = Label("feh", u.dex, (-4, 1), description="one", latex="a")
    b = Label("feh", "dex", (-4.0, 1.0), description="two", latex="b")
    assert a == b and hash(a) == hash(b)
    assert a != Label("feh", u.dex, (-4, 0.5))
    assert a != Label("feh", u.dex, (-4, 1), default=0)


def test_label_repr_and_dict_round_trip():
    label = Label("logg", LOGG_UNIT, (-0.5, 6), default=4.438, latex="$g$")
    assert repr(label) == "Label('logg', unit='dex(cm / s2)', bounds=(-0.5, 6), default=4.438)"
    data = json.loads(json.dumps(label.to_dict()))
    assert data["unit"] == "dex(cm / s2)"
    again = Label.from_dict(data)
    assert again == label and again.latex == "$g$" and again.unit == LOGG_UNIT
    with pytest.raises(LabelError, match=r"unknown keys \['colour'\], missing keys \['bounds'\]"):
        Label.from_dict({"name": "teff", "unit": "K", "colour": "red"})


# --------------------------------------------------------------------------- abundances


def test_abundance_label_naming():
    mg = abundance_label("Mg", "fe", (-1, 1))
    assert mg.name == "mg_fe" and mg.unit == ABUNDANCE_UNIT and mg.bounds == (-1.0, 1.0)
    assert mg.latex == r"$[Mg/\mathrm{Fe}]$" and mg.default == 0.0
    assert "[Mg/Fe]" in mg.description
    assert abundance_label("ti").name == "ti_h"
    assert abundance_label("FE", "h").name == "feh"
    assert abundance_label("alpha", "fe").name == "alpha_fe"
    assert abundance_label("m").name == "m_h"
    assert len(ELEMENTS) == 92 and ELEMENTS[25] == "Fe"


def test_abundance_label_errors():
    with pytest.raises(LabelError, match=r"got 'Mgg'; did you mean \['Mg'"):
        abundance_label("Mgg")
    with pytest.raises(LabelError, match="relative_to must be 'h' or 'fe', got 'o'"):
        abundance_label("Mg", "o")
    with pytest.raises(LabelError, match=r"\[Fe/Fe\] is identically zero"):
        abundance_label("Fe", "fe")


# --------------------------------------------------------------------------- LabelSpace basics


def test_default_space(space):
    assert space.names == ("teff", "logg", "feh", "vmic", "alpha_fe")
    assert space.units == (u.K, LOGG_UNIT, u.dex, u.km / u.s, u.dex)
    np.testing.assert_array_equal(
        space.bounds, [[2300, 12000], [-0.5, 6], [-4, 1], [0, 5], [-1, 1.2]]
    )
    assert space.defaults == {"teff": 5772.0, "logg": 4.438, "feh": 0.0, "vmic": 1.0,
                              "alpha_fe": 0.0}
    assert len(space) == 5
    assert [label.name for label in space] == list(space.names)
    assert space.labels[0] is space[0]
    assert LabelSpace.default() == space and hash(LabelSpace.default()) == hash(space)


def test_bounds_are_copies_and_read_only(space):
    bounds = space.bounds
    bounds[0, 0] = 0
    assert space.bounds[0, 0] == 2300
    with pytest.raises(ValueError, match="read-only"):
        space.lower[0] = 0


def test_getitem_contains_index(space):
    assert space["logg"].unit == LOGG_UNIT
    assert space[-1].name == "alpha_fe"
    assert space[np.int64(2)].name == "feh"
    assert space.index("vmic") == 3
    assert "teff" in space and "rv" not in space and 3 not in space
    assert space["feh"] in space
    assert Label("feh", u.dex, (-1, 1)) not in space
    with pytest.raises(LabelError, match=r"unknown label 'logG' \(did you mean 'logg'\?\); "
                                         r"known labels: \['teff', 'logg'"):
        space["logG"]
    with pytest.raises(LabelError, match="label index 7 out of range for a space of 5 labels"):
        space[7]


def test_repr(space):
    text = repr(space)
    assert text.startswith("<LabelSpace: 5 labels\n")
    assert "  teff      K             [2300, 12000]" in text
    assert "logg      dex(cm / s2)  [-0.5, 6]" in text


def test_constructor_errors():
    teff = Label("teff", u.K, (1, 2))
    with pytest.raises(LabelError, match=r"duplicates \['teff'\]"):
        LabelSpace([teff, teff])
    with pytest.raises(LabelError, match="at least one label"):
        LabelSpace([])
    with pytest.raises(LabelError, match="must be Label objects, got str: 'logg'"):
        LabelSpace([teff, "logg"])
    with pytest.raises(LabelError, match="iterable of Label objects, got Label"):
        LabelSpace(teff)


def test_equality_is_ordered(space):
    assert space.subset(["teff", "logg"]) != space.subset(["logg", "teff"])
    assert space != "space"


def test_subset(space):
    sub = space.subset(["feh", "teff"])
    assert sub.names == ("feh", "teff")
    assert sub["teff"] == space["teff"]
    assert space.subset("logg").names == ("logg",)
    with pytest.raises(LabelError, match=r"unknown label 'vmac'.*known labels"):
        space.subset(["teff", "vmac"])


def test_with_label(space):
    mg = abundance_label("mg", "fe", (-1, 1))
    bigger = space.with_label(mg)
    assert bigger.names[-1] == "mg_fe" and len(bigger) == 6 and len(space) == 5
    with pytest.raises(LabelError, match="'feh' already exists.*replace=True"):
        space.with_label(Label("feh", u.dex, (-2, 0.5)))
    replaced = space.with_label(Label("feh", u.dex, (-2, 0.5)), replace=True)
    assert replaced.names == space.names and replaced["feh"].bounds == (-2.0, 0.5)
    with pytest.raises(LabelError, match="label must be a Label, got str"):
        space.with_label("feh")


def test_with_bounds(space):
    narrow = space.with_bounds("teff", 3 * u.kK, 5000)
    assert narrow["teff"].bounds == (3000.0, 5000.0)
    assert narrow["teff"].default is None  # 5772 K fell outside: reset to the midpoint
    assert narrow.defaults["teff"] == 4000.0
    assert narrow["teff"].description == space["teff"].description
    assert space.with_bounds("teff", 3000, 7000)["teff"].default == 5772.0
    assert space["teff"].bounds == (2300.0, 12000.0)
    with pytest.raises(LabelError, match=r"lower < upper, got \(7000, 3000\) K"):
        space.with_bounds("teff", 7000, 3000)
    with pytest.raises(LabelError, match="unknown label 'tef'"):
        space.with_bounds("tef", 1, 2)


# --------------------------------------------------------------------------- serialization


def test_dict_round_trip_exact():
    awkward = LabelSpace(
        [
            Label("teff", u.K, (0.1 + 0.2, 1 / 3 * 1e4), default=1234.5678901234567),
            Label("logg", LOGG_UNIT, (-0.5, 6)),
            abundance_label("c", "fe", (-1 / 3, 2 / 3)),
            Label("vmac", "km / s", (0, 30), description="macroturbulence ✓",
                  latex=r"$v_{\rm mac}$"),
        ]
    )
    text = json.dumps(awkward.to_dict())
    again = LabelSpace.from_dict(json.loads(text))
    assert again == awkward
    assert [label.to_dict() for label in again] == [label.to_dict() for label in awkward]
    np.testing.assert_array_equal(again.bounds, awkward.bounds)
    assert json.dumps(again.to_dict()) == text


def test_from_dict_errors(space):
    data = space.to_dict()
    with pytest.raises(LabelError, match="format='stellarai.LabelSpace'"):
        LabelSpace.from_dict({"labels": data["labels"]})
    with pytest.raises(LabelError, match="unsupported label-space description version 99"):
        LabelSpace.from_dict({**data, "version": 99})
    with pytest.raises(LabelError, match="'labels' must be a list"):
        LabelSpace.from_dict({**data, "labels": "teff"})


# --------------------------------------------------------------------------- parsing


def test_parse_kwargs_units(space):
    result = space.parse(teff=4.7 * u.kK, logg=4.5, feh=0.1, vmic=1500 * u.m / u.s,
                         alpha_fe=0.2 * u.dex)
    assert result == {"teff": 4700.0, "logg": 4.5, "feh": 0.1, "vmic": 1.5, "alpha_fe": 0.2}
    assert list(result) == list(space.names)
    assert all(type(v) is float for v in result.values())


@pytest.mark.parametrize(
    "value, expected",
    [
        (4700, 4700.0),
        (4700 * u.K, 4700.0),
        (4.7 * u.kK, 4700.0),
        (4426.85 * u.deg_C, 4700.0),
        (u.Quantity(4700), 4700.0),
    ],
)
def test_parse_temperature_units(small, value, expected):
    assert small.parse(teff=value, logg=4, feh=0)["teff"] == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize(
    "value, expected",
    [
        (4.5, 4.5),
        (4.5 * u.dex, 4.5),
        (4.5 * LOGG_UNIT, 4.5),
        (2.5 * LOGG_SI, 4.5),
        (27400 * u.cm / u.s**2, 4.437750562820388),
        (274 * u.m / u.s**2, 4.437750562820388),
    ],
)
def test_parse_logg_units(small, value, expected):
    assert small.parse(teff=5000, logg=value, feh=0)["logg"] == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize(
    "value, expected",
    [(-0.3, -0.3), (-0.3 * u.dex, -0.3), (0.75 * u.mag, -0.3), (-0.3 * u.dex(u.one), -0.3)],
)
def test_parse_abundance_units(small, value, expected):
    assert small.parse(teff=5000, logg=4, feh=value)["feh"] == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"teff": 3 * u.m}, r"label 'teff' expects a value in K .*got unit 'm'"),
        ({"logg": 4.5 * u.km}, r"label 'logg' expects a value in dex\(cm / s2\).*got unit 'km'"),
        ({"feh": 5 * u.percent}, r"label 'feh' expects a value in dex.*got unit '%'"),
        ({"teff": "hot"}, "label 'teff' must be a number or a Quantity in K, got 'hot'"),
    ],
)
def test_parse_incompatible_units(small, kwargs, match):
    values = {"teff": 5000, "logg": 4.5, "feh": 0.0, **kwargs}
    with pytest.raises(LabelError, match=match):
        small.parse(**values)


def test_parse_out_of_bounds_names_label_value_range(small):
    with pytest.raises(
        LabelError,
        match=r"^label 'teff' = 15000 K is outside the allowed range \[2300, 12000\] K$",
    ):
        small.parse(teff=15 * u.kK, logg=4.5, feh=0)
    with pytest.raises(
        LabelError,
        match=r"label 'logg' = 6.5 dex\(cm / s2\) is outside the allowed range "
              r"\[-0.5, 6\] dex\(cm / s2\)",
    ):
        small.parse(teff=5000, logg=4.5 * LOGG_SI, feh=0)
    with pytest.raises(LabelError, match=r"'feh' = -4.5 dex is outside .* \[-4, 1\] dex"):
        small.parse(teff=5000, logg=4.5, feh=-4.5)


def test_parse_never_clips(small):
    assert small.parse(teff=12 * u.kK, logg=-0.5, feh=1)["teff"] == 12000.0  # bounds inclusive
    with pytest.raises(LabelError, match="12000.00001 K is outside"):
        small.parse(teff=12000.00001, logg=4, feh=0)
    with pytest.raises(LabelError, match="2299.9999 K is outside"):
        small.parse(teff=2299.9999, logg=4, feh=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_parse_non_finite(small, bad):
    with pytest.raises(LabelError, match=r"label 'feh' = -?(nan|inf) dex must be finite "
                                         r"\(allowed range \[-4, 1\] dex\)"):
        small.parse(teff=5000, logg=4, feh=bad)


def test_parse_unknown_and_suggestions(small):
    with pytest.raises(LabelError, match=r"unknown label 'Teff' \(did you mean 'teff'\?\); "
                                         r"known labels: \['teff', 'logg', 'feh'\]"):
        small.parse(Teff=5000, logg=4, feh=0)
    with pytest.raises(LabelError, match=r"unknown labels 'fe_h' \(did you mean 'feh'\?\), "
                                         r"'rv'"):
        small.parse(teff=5000, logg=4, fe_h=0, rv=3)
    assert small.parse(teff=5000, logg=4, feh=0, rv=3, ignore_unknown=True) == {
        "teff": 5000.0, "logg": 4.0, "feh": 0.0}


def test_parse_mapping_and_kwargs(small):
    assert small.parse({"teff": 5 * u.kK, "logg": 4}, feh=0) == {
        "teff": 5000.0, "logg": 4.0, "feh": 0.0}
    with pytest.raises(LabelError, match=r"labels \['logg'\] were given both"):
        small.parse({"teff": 5000, "logg": 4}, logg=4, feh=0)
    with pytest.raises(LabelError, match="values must be a mapping.*got ndarray.*check"):
        small.parse(np.array([5000, 4, 0]))


def test_parse_missing(small):
    with pytest.raises(LabelError, match=r"missing labels \['logg', 'feh'\]; this space needs "
                                         r"\['teff', 'logg', 'feh'\].*fill_missing=True"):
        small.parse(teff=5000)
    with pytest.raises(LabelError, match=r"missing label \['feh'\]"):
        small.parse(teff=5000, logg=4)


def test_parse_fill_missing(small):
    assert small.parse(teff=5000, fill_missing=True) == {
        "teff": 5000.0, "logg": 4.438, "feh": 0.0}
    filled = small.parse(teff=5000, fill_missing=True, defaults={"feh": 1.25 * u.mag})
    assert filled["feh"] == pytest.approx(-0.5)
    no_default = LabelSpace([Label("vmic", u.km / u.s, (0, 4))])
    assert no_default.parse(fill_missing=True) == {"vmic": 2.0}  # midpoint
    batch = small.parse(teff=[4000, 5000], fill_missing=True)
    np.testing.assert_array_equal(batch, [[4000, 4.438, 0], [5000, 4.438, 0]])
    with pytest.raises(LabelError, match="in defaults: unknown label 'fe'"):
        small.parse(teff=5000, fill_missing=True, defaults={"fe": 0})
    with pytest.raises(LabelError, match="default for label 'feh' must be a scalar"):
        small.parse(teff=5000, fill_missing=True, defaults={"feh": [0, 1]})
    with pytest.raises(LabelError, match=r"label 'feh' = 3 dex is outside"):
        small.parse(teff=5000, fill_missing=True, defaults={"feh": 3})


def test_parse_qtable_batch(small):
    table = QTable({
        "feh": [0.0, -1.0, 0.5] * u.dex,
        "teff": [4.0, 5.0, 6.0] * u.kK,
        "logg": [2.5, 0.5, 2.0] * LOGG_SI,
    })
    result = small.parse(table)
    assert result.shape == (3, 3) and result.dtype == np.float64
    np.testing.assert_allclose(result, [[4000, 4.5, 0], [5000, 2.5, -1], [6000, 4, 0.5]],
                               rtol=1e-14)
    single = small.parse(table[1])
    assert single == pytest.approx({"teff": 5000.0, "logg": 2.5, "feh": -1.0}, rel=1e-14)


def test_parse_plain_table_with_units_and_extras(small):
    table = Table({"teff": [5.0, 6.0], "logg": [4.4, 4.0], "feh": [0.0, 0.1],
                   "name": ["a", "b"]})
    table["teff"].unit = u.kK
    with pytest.raises(LabelError, match="unknown label 'name'"):
        small.parse(table)
    result = small.parse(table, ignore_unknown=True)
    np.testing.assert_allclose(result, [[5000, 4.4, 0], [6000, 4.0, 0.1]])
    assert small.parse(table[1], ignore_unknown=True)["teff"] == 6000.0


def test_parse_batch_row_index_in_errors(small):
    table = QTable({"teff": [5000, 5000, 13000, 14000] * u.K, "logg": [4.0] * 4,
                    "feh": [0.0, np.nan, 0.0, 0.0]})
    with pytest.raises(LabelError, match=r"label 'teff' = 13000 K in row 2 \(and 1 more rows\) "
                                         r"is outside the allowed range \[2300, 12000\] K"):
        small.parse(table)
    table["teff"] = 5000 * u.K
    with pytest.raises(LabelError, match=r"label 'feh' = nan dex in row 1 must be finite"):
        small.parse(table)


def test_parse_masked(small):
    table = QTable({"teff": MaskedColumn([5000.0, 6000.0], mask=[False, True]),
                    "logg": [4, 4], "feh": [0, 0]})
    with pytest.raises(LabelError, match="label 'teff' is masked in row 1"):
        small.parse(table)
    with pytest.raises(LabelError, match="label 'teff' is masked"):
        small.parse(table[1])
    masked_q = QTable({"teff": [5000.0, 6000.0] * u.K, "logg": [4, 4], "feh": [0, 0]},
                      masked=True)
    masked_q["teff"].mask[0] = True
    with pytest.raises(LabelError, match="label 'teff' is masked in row 0"):
        small.parse(masked_q)


def test_parse_broadcasting_and_shapes(small):
    result = small.parse(teff=[4000, 5000] * u.K, logg=4.5, feh=0)
    np.testing.assert_array_equal(result, [[4000, 4.5, 0], [5000, 4.5, 0]])
    assert small.parse(teff=[4000], logg=4.5, feh=0).shape == (1, 3)
    with pytest.raises(LabelError, match=r"same length.*\{'teff': 2, 'logg': 3\}"):
        small.parse(teff=[4000, 5000], logg=[4, 4, 4], feh=0)
    with pytest.raises(LabelError, match=r"label 'teff' must be a scalar or a 1-d array, got "
                                         r"shape \(1, 2\)"):
        small.parse(teff=[[4000, 5000]], logg=4, feh=0)
    assert small.parse(QTable({"teff": [] * u.K, "logg": [], "feh": []})).shape == (0, 3)


def test_parse_torch_values(small):
    result = small.parse(teff=torch.tensor(5000.0, requires_grad=True), logg=4, feh=0)
    assert result["teff"] == 5000.0


def test_parse_batch_always_2d(small):
    one = small.parse_batch(teff=5000, logg=4, feh=0)
    np.testing.assert_array_equal(one, [[5000, 4, 0]])
    assert one.dtype == np.float64
    assert small.parse_batch(teff=[5000, 6000], logg=4, feh=0).shape == (2, 3)
    assert small.parse_batch({"teff": 5000}, fill_missing=True).shape == (1, 3)


# --------------------------------------------------------------------------- check


def test_check(small):
    assert small.check([[5000, 4, 0], [2300, -0.5, 1]]) is None
    assert small.check(np.array([5000, 4, 0])) is None
    assert small.check(torch.tensor([[5000.0, 4, 0]], requires_grad=True)) is None
    with pytest.raises(LabelError, match=r"label 'logg' = 7 dex\(cm / s2\) in row 1 is outside "
                                         r"the allowed range \[-0.5, 6\]"):
        small.check([[5000, 4, 0], [5000, 7, 0]])
    with pytest.raises(LabelError, match=r"label 'teff' = nan K in row 0 must be finite"):
        small.check([[np.nan, 4, 0]])
    with pytest.raises(LabelError, match=r"shape \(n_labels,\) or \(n, n_labels\) with "
                                         r"n_labels = 3.*got shape \(2, 2\)"):
        small.check([[5000, 4], [5000, 4]])
    with pytest.raises(LabelError, match="got a Quantity; use parse"):
        small.check([5000, 4, 0] * u.K)
    with pytest.raises(LabelError, match="must be a numeric array"):
        small.check([["a", "b", "c"]])


# --------------------------------------------------------------------------- scaling


def test_scale_known_values(space):
    lower, upper = space.lower, space.upper
    np.testing.assert_array_equal(space.scale(lower), np.full(5, -0.5))
    np.testing.assert_array_equal(space.scale(upper), np.full(5, 0.5))
    np.testing.assert_allclose(space.scale((lower + upper) / 2), np.zeros(5), atol=1e-15)
    # teff 4725 K in [2300, 12000]: (4725 - 2300) / 9700 - 0.5 = -0.25
    assert space.scale(np.array([4725.0, 4.5, 0.0, 1.0, 0.0]))[0] == pytest.approx(-0.25)


def test_scale_round_trip_and_batch_shapes(space):
    x = np.asarray(space.parse_batch(space.random(60, seed=3))).reshape(3, 4, 5, 5)
    z = space.scale(x)
    assert z.shape == (3, 4, 5, 5)
    assert np.all(np.abs(z) <= 0.5)
    np.testing.assert_allclose(space.unscale(z), x, rtol=1e-14, atol=1e-12)


def test_scale_numpy_dtypes(space):
    x32 = np.array([[5000, 4, 0, 1, 0]], dtype=np.float32)
    assert space.scale(x32).dtype == np.float32
    assert space.unscale(space.scale(x32)).dtype == np.float32
    assert space.scale(np.array([[5000, 4, 0, 1, 0]])).dtype == np.float64  # ints -> float64
    assert space.scale([5000, 4, 0, 1, 0]).dtype == np.float64


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scale_torch_dtype_and_gradients(space, dtype):
    x = torch.tensor([[5000.0, 4.0, 0.0, 1.0, 0.0], [3000.0, 1.0, -2.0, 2.0, 0.4]],
                     dtype=dtype, requires_grad=True)
    z = space.scale(x)
    assert z.dtype == dtype and z.shape == x.shape and z.requires_grad
    (grad,) = torch.autograd.grad(z.sum(), x)
    span = torch.tensor(space.upper - space.lower, dtype=dtype)
    torch.testing.assert_close(grad, (1 / span).expand(2, 5))
    back = space.unscale(z)
    assert back.dtype == dtype
    torch.testing.assert_close(back, x)
    (grad,) = torch.autograd.grad(space.unscale(x).sum(), x)
    torch.testing.assert_close(grad, span.expand(2, 5))
    assert space.scale(torch.tensor([5000, 4, 0, 1, 0])).dtype == torch.get_default_dtype()


def test_scale_wrong_shape(space):
    with pytest.raises(LabelError, match=r"shape \(\.\.\., 5\) for labels \['teff'.*got shape "
                                         r"\(2, 3\)"):
        space.scale(np.zeros((2, 3)))
    with pytest.raises(LabelError, match=r"got shape \(\)"):
        space.unscale(torch.tensor(0.0))


# --------------------------------------------------------------------------- tables


def test_to_table_units_and_round_trip(space):
    x = np.array([[5000, 4.5, -0.5, 1.0, 0.2], [6000, 4.0, 0.0, 2.0, 0.0]])
    table = space.to_table(x)
    assert isinstance(table, QTable) and table.colnames == list(space.names)
    assert table["teff"].unit == u.K and table["logg"].unit == LOGG_UNIT
    assert table["vmic"].unit == u.km / u.s and table["feh"].unit == u.dex
    np.testing.assert_array_equal(table["logg"].value, [4.5, 4.0])
    np.testing.assert_array_equal(space.parse(table), x)
    assert len(space.to_table(torch.tensor(x[0]))) == 1
    with pytest.raises(LabelError, match=r"shape \(n, 5\) or \(5,\).*got shape \(2, 2\)"):
        space.to_table(np.zeros((2, 2)))


def test_random_uniform(space):
    table = space.random(500, seed=42)
    assert isinstance(table, QTable) and len(table) == 500
    x = space.parse(table)  # within bounds, right units, or parse would raise
    assert x.shape == (500, 5)
    assert np.all(x.min(axis=0) < space.lower + 0.05 * (space.upper - space.lower))
    np.testing.assert_array_equal(space.parse(space.random(500, seed=42)), x)
    assert not np.array_equal(space.parse(space.random(500, seed=43)), x)
    rng = np.random.default_rng(0)
    assert len(space.random(2, seed=rng)) == 2
    assert len(space.random(0)) == 0


def test_random_latin_hypercube_stratified(space):
    n = 50
    x = space.parse(space.random(n, seed=7, method="latin_hypercube"))
    strata = np.floor((space.scale(x) + 0.5) * n).astype(int)
    for j in range(len(space)):
        assert sorted(strata[:, j]) == list(range(n))


def test_random_errors(space):
    with pytest.raises(LabelError, match="n must be a non-negative integer, got -1"):
        space.random(-1)
    with pytest.raises(LabelError, match="n must be a non-negative integer, got 2.5"):
        space.random(2.5)
    with pytest.raises(LabelError, match="method must be 'uniform' or 'latin_hypercube', "
                                         "got 'sobol'"):
        space.random(3, method="sobol")


def test_label_error_is_value_error():
    assert issubclass(LabelError, ValueError)
