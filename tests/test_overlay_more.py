"""The overlay family: published TOPSIS example, OWA extremes, fuzzy operators by hand, properties, nodata
policies, numpy vs dask, and the registry."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rasters.errors import ConfigError
from suitability.overlay import (
    OVERLAYS,
    fuzzy_gamma,
    fuzzy_product,
    fuzzy_sum,
    make_overlay,
    maximum,
    minimum,
    orness,
    owa,
    owa_order_weights,
    topsis,
    weighted_product,
    weighted_sum,
)

NAN = float("nan")


def _layers(seed: int, n: int, shape=(9, 7)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random(shape).astype(np.float32) for _ in range(n)]


# --- TOPSIS --------------------------------------------------------------------------------------------------------

# Hwang, C.L. & Yoon, K. (1981) Multiple Attribute Decision Making, Springer (LNEMS 186), TOPSIS numerical
# example (fighter aircraft): attributes max speed (Mach), ferry range (NM), max payload (lb), acquisition cost
# (10^6 $, a cost attribute), reliability and maneuverability (linguistic ratings on their 1-9 interval scale);
# weights (.2, .1, .1, .1, .2, .3); vector normalisation; printed relative closeness
# C1* = .643, C2* = .268, C3* = .613, C4* = .312.
AIRCRAFT = np.array([[2.0, 1500, 20000, 5.5, 5, 9],
                     [2.5, 2700, 18000, 6.5, 3, 5],
                     [1.8, 2000, 21000, 4.5, 7, 7],
                     [2.2, 1800, 20000, 5.0, 5, 5]])
AIRCRAFT_W = [0.2, 0.1, 0.1, 0.1, 0.2, 0.3]
AIRCRAFT_PRINTED = [0.643, 0.268, 0.613, 0.312]


def _aircraft_layers() -> list[np.ndarray]:
    cols = [AIRCRAFT[:, j].astype(np.float32) for j in range(6)]
    cols[3] = -cols[3]  # cost attribute: negated, so its ideal max(-x) is the classic min(x) (same vector norm)
    return cols


def test_topsis_hwang_yoon_fighter_aircraft():
    out = topsis(_aircraft_layers(), AIRCRAFT_W, ideal="data", normalise="vector")
    assert out.dtype == np.float32
    # the book works with intermediate values rounded to a few decimals, so its third decimal may be off by one
    np.testing.assert_allclose(out, AIRCRAFT_PRINTED, atol=1e-3)
    # the weights are relative: scaling them changes nothing
    np.testing.assert_allclose(topsis(_aircraft_layers(), [w * 7 for w in AIRCRAFT_W], ideal="data",
                                      normalise="vector"), out, rtol=1e-6)


def test_topsis_vector_normalised_is_bitwise_chunk_invariant():
    layers = _layers(3, 3, shape=(40, 30))
    layers[0][::7, ::5] = np.nan
    expected = topsis(layers, [0.5, 0.3, 0.2], ideal="data", normalise="vector", nodata="renormalise")
    for chunks in [(40, 30), (7, 11), (1, 30)]:
        lazy = topsis([da.from_array(x, chunks=chunks) for x in layers], [0.5, 0.3, 0.2], ideal="data",
                      normalise="vector", nodata="renormalise")
        assert isinstance(lazy, da.Array)
        np.testing.assert_array_equal(lazy.compute(), expected)


def test_topsis_unit_ideal_by_hand():
    # two criteria, weights (.5, .5), cell (1, 0): d+ = d- = .5 -> .5; cell (.8, .6): d+ = .5 * sqrt(.04 + .16),
    # d- = .5 * sqrt(.64 + .36)
    a = np.array([1.0, 0.8, 1.0, 0.0], dtype=np.float32)
    b = np.array([0.0, 0.6, 1.0, 0.0], dtype=np.float32)
    out = topsis([a, b], [0.5, 0.5])
    dp, dm = 0.5 * np.sqrt(0.2), 0.5
    np.testing.assert_allclose(out, [0.5, dm / (dp + dm), 1.0, 0.0], rtol=1e-6)


def test_topsis_nodata_policies():
    a = np.array([0.2, NAN], dtype=np.float32)
    b = np.array([0.6, 0.6], dtype=np.float32)
    assert np.isnan(topsis([a, b], [0.5, 0.5])[1])
    # renormalise: only b is left in cell 1, so closeness = 0.6 / (0.4 + 0.6)
    assert topsis([a, b], [0.5, 0.5], nodata="renormalise")[1] == pytest.approx(0.6, rel=1e-6)


# --- OWA -----------------------------------------------------------------------------------------------------------


def test_owa_orness_extremes_and_mean():
    layers = _layers(1, 4)
    stack = np.stack(layers)
    np.testing.assert_array_equal(owa(layers, None, orness=1.0), stack.max(axis=0))
    np.testing.assert_array_equal(owa(layers, None, orness=0.0), stack.min(axis=0))
    np.testing.assert_allclose(owa(layers, None, orness=0.5), stack.mean(axis=0), rtol=1e-6)
    # with criterion weights and equal order weights it is the weighted linear combination (Malczewski 2006)
    w = [0.1, 0.2, 0.3, 0.4]
    np.testing.assert_allclose(owa(layers, w, orness=0.5), np.average(stack, axis=0, weights=w), rtol=1e-6)


def test_owa_order_weights_by_hand():
    # values (0.2, 0.9, 0.5), equal criterion weights, order weights (0.5, 0.3, 0.2) applied to 0.9, 0.5, 0.2
    layers = [np.array([v], dtype=np.float32) for v in (0.2, 0.9, 0.5)]
    assert owa(layers, None, order_weights=[0.5, 0.3, 0.2])[0] == pytest.approx(0.45 + 0.15 + 0.04, rel=1e-6)
    # WOWA (Torra 1997) with criterion weights p = (.5, .25, .25): sorted values 0.9, 0.5, 0.2 carry p = .25, .25,
    # .5, cumulated .25, .5, 1. The quantifier through (0, 0), (1/3, .5), (2/3, .8), (1, 1) gives Q(.25) = .375,
    # Q(.5) = .65, Q(1) = 1, so omega = (.375, .275, .35) and the result .375*.9 + .275*.5 + .35*.2 = .545.
    assert owa(layers, [0.5, 0.25, 0.25], order_weights=[0.5, 0.3, 0.2])[0] == pytest.approx(0.545, rel=1e-6)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 9), level=st.floats(min_value=0.0, max_value=1.0))
def test_maximum_entropy_order_weights_hit_the_orness(n, level):
    v = owa_order_weights(n, level)
    assert v.sum() == pytest.approx(1.0, abs=1e-12) and (v >= 0).all()
    assert orness(v) == pytest.approx(level, abs=1e-9)


def test_owa_renormalise_by_hand():
    # values (0.9, NaN, 0.5), equal weights -> p = (.5, 0, .5) over the valid ones; v = (.5, .3, .2):
    # Q(.5) = .5 + (.5 - 1/3) * 3 * .3 = .65, so omega = (.65, .35) and the result .65*.9 + .35*.5 = .76
    layers = [np.array([v], dtype=np.float32) for v in (0.9, NAN, 0.5)]
    out = owa(layers, None, order_weights=[0.5, 0.3, 0.2], nodata="renormalise")
    assert out[0] == pytest.approx(0.76, rel=1e-6)


def test_owa_renormalise_keeps_min_as_min():
    a = np.array([0.2, NAN, 0.7], dtype=np.float32)
    b = np.array([0.6, 0.4, NAN], dtype=np.float32)
    c = np.array([0.9, 0.3, NAN], dtype=np.float32)
    np.testing.assert_allclose(owa([a, b, c], None, orness=0.0, nodata="renormalise"), [0.2, 0.3, 0.7])
    np.testing.assert_allclose(owa([a, b, c], None, orness=1.0, nodata="renormalise"), [0.9, 0.4, 0.7])
    assert np.isnan(owa([a, b, c], None, orness=0.0)[1:]).all()


# --- fuzzy operators, product, min/max -------------------------------------------------------------------------


def test_fuzzy_operators_by_hand():
    # Bonham-Carter (1994) style example: memberships 0.75 and 0.4
    a = np.array([0.75], dtype=np.float32)
    b = np.array([0.4], dtype=np.float32)
    assert fuzzy_product([a, b], None)[0] == pytest.approx(0.3)
    assert fuzzy_sum([a, b], None)[0] == pytest.approx(1 - 0.25 * 0.6)  # 0.85
    assert fuzzy_gamma([a, b], None, gamma=0.5)[0] == pytest.approx((0.85 * 0.3) ** 0.5, rel=1e-6)
    assert minimum([a, b])[0] == np.float32(0.4) and maximum([a, b])[0] == np.float32(0.75)
    assert OVERLAYS["fuzzy_and"]([a, b], None)[0] == np.float32(0.4)
    assert OVERLAYS["fuzzy_or"]([a, b], None)[0] == np.float32(0.75)


def test_weighted_product_by_hand():
    a = np.array([0.25, 0.0, 1.0], dtype=np.float32)
    b = np.array([1.0, 0.5, 0.5], dtype=np.float32)
    # weights (2, 2) normalise to (.5, .5): sqrt(.25 * 1) = .5; a zero with positive weight vetoes
    np.testing.assert_allclose(weighted_product([a, b], [2, 2]), [0.5, 0.0, np.sqrt(0.5)], rtol=1e-6)
    # a zero weight: the criterion does not count at all (0 ** 0 = 1)
    np.testing.assert_allclose(weighted_product([a, b], [0, 1]), b, rtol=1e-6)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(2, 5))
def test_fuzzy_gamma_ends_are_sum_and_product(seed, n):
    layers = _layers(seed, n)
    np.testing.assert_array_equal(fuzzy_gamma(layers, None, gamma=1.0), fuzzy_sum(layers, None))
    np.testing.assert_array_equal(fuzzy_gamma(layers, None, gamma=0.0), fuzzy_product(layers, None))
    # in between it lies between the product and the sum
    mid = fuzzy_gamma(layers, None, gamma=0.7)
    assert np.all(mid >= fuzzy_product(layers, None) - 1e-6) and np.all(mid <= fuzzy_sum(layers, None) + 1e-6)


# --- properties shared by the family ----------------------------------------------------------------------------

WEIGHTED = {
    "weighted_product": lambda ls, w: weighted_product(ls, w),
    "owa_0.3": lambda ls, w: owa(ls, w, orness=0.3),
    "owa_0.8": lambda ls, w: owa(ls, w, orness=0.8),
    "topsis": lambda ls, w: topsis(ls, w),
}
UNWEIGHTED_BETWEEN_MIN_MAX = {"minimum": minimum, "maximum": maximum}


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), raw=st.lists(st.floats(min_value=1e-2, max_value=1e2), min_size=2, max_size=5),
       scale=st.floats(min_value=1e-2, max_value=1e2), name=st.sampled_from(sorted(WEIGHTED)))
def test_bounds_and_weight_scale_invariance(seed, raw, scale, name):
    layers = _layers(seed, len(raw))
    stack = np.stack(layers)
    f = WEIGHTED[name]
    out = f(layers, raw)
    assert out.dtype == np.float32
    np.testing.assert_allclose(f(layers, [w * scale for w in raw]), out, rtol=1e-5, atol=1e-6)
    if name == "topsis":
        assert np.all((out >= 0) & (out <= 1))
    else:  # means: between the smallest and the largest criterion score of the cell
        assert np.all(out >= stack.min(axis=0) - 1e-6) and np.all(out <= stack.max(axis=0) + 1e-6)


ALL_MONOTONE = {
    "weighted_sum": lambda ls: weighted_sum(ls, [0.2, 0.5, 0.3]),
    "weighted_product": lambda ls: weighted_product(ls, [0.2, 0.5, 0.3]),
    "minimum": lambda ls: minimum(ls),
    "maximum": lambda ls: maximum(ls),
    "fuzzy_product": lambda ls: fuzzy_product(ls, None),
    "fuzzy_sum": lambda ls: fuzzy_sum(ls, None),
    "fuzzy_gamma": lambda ls: fuzzy_gamma(ls, None, gamma=0.6),
    "owa": lambda ls: owa(ls, [0.2, 0.5, 0.3], orness=0.7),
    "topsis": lambda ls: topsis(ls, [0.2, 0.5, 0.3]),
}


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), which=st.integers(0, 2), bump=st.floats(min_value=0.0, max_value=0.5),
       name=st.sampled_from(sorted(ALL_MONOTONE)))
def test_monotone_in_every_criterion(seed, which, bump, name):
    layers = _layers(seed, 3)
    raised = [x.copy() for x in layers]
    raised[which] = np.minimum(raised[which] + np.float32(bump), np.float32(1.0))
    f = ALL_MONOTONE[name]
    assert np.all(f(raised) >= f(layers) - 1e-6)


@pytest.mark.parametrize("name", sorted(ALL_MONOTONE))
def test_numpy_and_dask_are_bitwise_identical(name):
    layers = _layers(7, 3, shape=(37, 29))
    layers[1][::4, ::3] = np.nan
    f = ALL_MONOTONE[name]
    expected = f(layers)
    for chunks in [(37, 29), (8, 8), (5, 29)]:
        lazy = f([da.from_array(x, chunks=chunks) for x in layers])
        assert isinstance(lazy, da.Array) and lazy.dtype == np.float32
        np.testing.assert_array_equal(lazy.compute(), expected)
    # NaN policy "any": every cell with the NaN criterion is NaN
    assert np.isnan(expected[::4, ::3]).all()


@pytest.mark.parametrize("name", sorted(OVERLAYS))
def test_renormalise_equals_any_where_all_valid_and_drops_missing(name):
    layers = _layers(8, 3, shape=(12, 10))
    layers[2][0, :] = np.nan
    layers[0][1, :] = layers[1][1, :] = layers[2][1, :] = np.nan
    params = {"fuzzy_gamma": {"gamma": 0.4}, "owa": {"orness": 0.6}}.get(name, {})
    f_any = make_overlay(name, params)
    f_ren = make_overlay(name, {**params, "nodata": "renormalise"})
    w = [0.5, 0.3, 0.2]
    a, r = f_any(layers, w), f_ren(layers, w)
    np.testing.assert_allclose(r[2:], a[2:], rtol=1e-6)
    assert np.isnan(a[0]).all() and np.isfinite(r[0]).all() and np.isnan(r[1]).all()
    if name == "owa":
        return  # WOWA keeps the n-criterion quantifier for fewer criteria: checked by hand in the OWA tests
    # a cell missing criterion 2 scores as the overlay of the two others (with their weights)
    two = make_overlay(name, params)([layers[0][:1], layers[1][:1]], w[:2])
    if name == "weighted_sum":  # keeps the total weight 1.0 instead of 0.8
        two = two / np.float32(0.8)
    np.testing.assert_allclose(r[:1], two, rtol=1e-5)


def test_weighted_sum_renormalise_by_hand():
    a = np.array([0.5, NAN], dtype=np.float32)
    b = np.array([1.0, 1.0], dtype=np.float32)
    np.testing.assert_allclose(weighted_sum([a, b], [0.6, 0.4], nodata="renormalise"), [0.7, 1.0], rtol=1e-6)


# --- registry and errors ---------------------------------------------------------------------------------------


def test_make_overlay_binds_parameters():
    layers = _layers(2, 3)
    f = make_overlay("owa", {"orness": 1.0})
    np.testing.assert_array_equal(f(layers, None), np.stack(layers).max(axis=0))
    np.testing.assert_array_equal(make_overlay("weighted_sum", {})(layers, [0.2, 0.3, 0.5]),
                                  weighted_sum(layers, [0.2, 0.3, 0.5]))


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("weigted_sum", {}, "unknown overlay 'weigted_sum' (did you mean 'weighted_sum'?)"),
        ("owa", {"ornes": 0.5}, "overlay 'owa': unknown parameter 'ornes' (did you mean 'orness'?)"),
        ("fuzzy_gamma", {}, "overlay 'fuzzy_gamma': missing parameter 'gamma'"),
        ("fuzzy_gamma", {"gamma": 1.5}, "gamma must be a number from 0 to 1"),
        ("owa", {}, "give exactly one of order_weights"),
        ("owa", {"orness": 0.5, "order_weights": [1, 0]}, "give exactly one of order_weights"),
        ("owa", {"orness": 2}, "orness must be a number from 0 (minimum) to 1"),
        ("owa", {"order_weights": [1, -1]}, "order_weights[1] must be a finite number >= 0"),
        ("topsis", {"ideal": "best"}, "ideal must be one of unit, data"),
        ("topsis", {"normalise": "vector"}, "normalise 'vector' needs ideal 'data'"),
        ("minimum", {"nodata": "all"}, "nodata must be one of any, renormalise"),
    ],
)
def test_make_overlay_errors(name, params, message):
    with pytest.raises(ConfigError) as err:
        make_overlay(name, params)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ls: weighted_product(ls, [1, -1]), "weighted_product: weight 1 is -1; weights must be >= 0"),
        (lambda ls: owa(ls, [0, 0], orness=0.5), "owa: all weights are zero"),
        (lambda ls: owa(ls, None, order_weights=[1, 0, 0]), "owa got 2 layers but 3 order_weights"),
        (lambda ls: topsis(ls, [1]), "topsis got 2 layers but 1 weights"),
        (lambda ls: minimum(ls, [1, 2, 3]), "minimum got 2 layers but 3 weights"),
        (lambda ls: fuzzy_sum([ls[0], np.zeros(3)], None), "fuzzy_sum: all layers must have one shape"),
        (lambda ls: maximum([]), "maximum needs at least one layer"),
    ],
)
def test_overlay_call_errors(call, message):
    with pytest.raises(ConfigError) as err:
        call(_layers(0, 2))
    assert message in str(err.value)
