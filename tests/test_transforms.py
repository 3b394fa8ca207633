"""Criterion transforms against hand-worked values, numpy.digitize, and properties (bounds, monotonicity)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rasters.errors import ConfigError
from suitability.transforms import TRANSFORMS, Breaks, Linear, make_transform

NAN = float("nan")
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


# --- Linear -----------------------------------------------------------------------------------------------------


def test_linear_increasing_hand_points():
    # lower 100, upper 500: (x - 100) / 400, clamped to [0, 1].
    x = np.array([50, 100, 200, 300, 450, 500, 600, NAN], dtype=np.float32)
    expected = np.array([0, 0, 0.25, 0.5, 0.875, 1, 1, NAN], dtype=np.float32)
    out = Linear(100, 500)(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


def test_linear_decreasing_hand_points():
    # Slope in degrees, 0 best, 25 worst: 1 - x / 25.
    x = np.array([-3, 0, 5, 10, 20, 25, 40, NAN], dtype=np.float32)
    expected = np.array([1, 1, 0.8, 0.6, 0.2, 0, 0, NAN], dtype=np.float32)
    np.testing.assert_allclose(Linear(0, 25, increasing=False)(x), expected, rtol=0, atol=1e-7)


def test_linear_below_above_replace_values_outside_thresholds_only():
    # ArcGIS threshold semantics: the thresholds stay on the ramp, strictly outside gets below/above.
    x = np.array([-1, 0, 5, 10, 11], dtype=np.float32)
    out = Linear(0, 10, below=0.2, above=NAN)(x)
    np.testing.assert_array_equal(out, np.array([0.2, 0, 0.5, 1, NAN], dtype=np.float32))
    out = Linear(0, 10, increasing=False, below=NAN, above=0.3)(x)
    np.testing.assert_array_equal(out, np.array([NAN, 1, 0.5, 0, 0.3], dtype=np.float32))


def test_linear_threshold_compared_in_float32():
    # A cell stored as float32(0.7) = 0.69999999 is "at" the threshold 0.7, not below it.
    x = np.array([0.7], dtype=np.float32)
    assert Linear(0.7, 1.0, below=NAN)(x)[0] == 0.0


def test_linear_accepts_integer_input_and_returns_float32():
    out = Linear(0, 4)(np.array([0, 1, 2, 3, 4], dtype=np.uint8))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [0, 0.25, 0.5, 0.75, 1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lower": 5, "upper": 5}, "'lower' (5) must be smaller than 'upper' (5)"),
        ({"lower": 9, "upper": 1}, "'lower' (9) must be smaller than 'upper' (1)"),
        ({"lower": "0", "upper": 1}, "parameter 'lower' must be a number"),
        ({"lower": True, "upper": 2}, "parameter 'lower' must be a number"),
        ({"lower": NAN, "upper": 1}, "parameter 'lower' must be a finite number"),
        ({"lower": 0, "upper": float("inf")}, "parameter 'upper' must be a finite number"),
        ({"lower": -1e308, "upper": 1e308}, "overflows"),
        ({"lower": 0, "upper": 1, "increasing": "yes"}, "'increasing' must be true or false"),
        ({"lower": 0, "upper": 1, "below": 1.5}, "parameter 'below' must be a score in [0, 1] or NaN"),
        ({"lower": 0, "upper": 1, "above": -0.1}, "parameter 'above' must be a score in [0, 1]"),
    ],
)
def test_linear_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ConfigError) as err:
        Linear(**kwargs)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@settings(max_examples=60, deadline=None)
@given(
    lower=finite,
    width=st.floats(min_value=1e-3, max_value=1e6),
    xs=st.lists(finite, min_size=1, max_size=50),
    increasing=st.booleans(),
)
def test_linear_properties_bounds_and_monotone(lower, width, xs, increasing):
    t = Linear(lower, lower + width, increasing=increasing)
    x = np.sort(np.array(xs, dtype=np.float32))
    out = t(x)
    assert out.dtype == np.float32
    assert np.all((out >= 0) & (out <= 1))
    steps = np.diff(out.astype(np.float64))
    assert np.all(steps >= 0) if increasing else np.all(steps <= 0)


@settings(max_examples=40, deadline=None)
@given(lower=finite, width=st.floats(min_value=1e-3, max_value=1e6), xs=st.lists(finite, min_size=1, max_size=30))
def test_linear_matches_formula_inside_thresholds(lower, width, xs):
    upper = lower + width
    x = np.array(xs, dtype=np.float32)
    x64 = x.astype(np.float64)
    expected = np.minimum(np.maximum((x64 - lower) / (upper - lower), 0.0), 1.0)
    np.testing.assert_allclose(Linear(lower, upper)(x), expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(Linear(lower, upper, increasing=False)(x), 1 - expected, rtol=1e-6, atol=1e-7)


# --- Breaks -----------------------------------------------------------------------------------------------------

# Slope grades (degrees) in the style of the 双评价 guide: <2, 2-8, 8-15, 15-25, >=25.
SLOPE_EDGES = (2, 8, 15, 25)
SLOPE_SCORES = (1.0, 0.8, 0.6, 0.3, 0.0)


def test_breaks_hand_points_right_open():
    x = np.array([0, 1.99, 2, 5, 8, 14.9, 15, 24.99, 25, 60, NAN], dtype=np.float32)
    expected = np.array([1, 1, 0.8, 0.8, 0.6, 0.6, 0.3, 0.3, 0, 0, NAN], dtype=np.float32)
    out = Breaks(SLOPE_EDGES, SLOPE_SCORES)(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


def test_breaks_agrees_with_numpy_digitize():
    rng = np.random.default_rng(3)
    x = rng.uniform(-5, 40, size=(40, 30)).astype(np.float32)
    x[::7, ::5] = np.array(SLOPE_EDGES, dtype=np.float32)[rng.integers(0, 4, size=x[::7, ::5].shape)]  # on edges
    expected = np.array(SLOPE_SCORES, dtype=np.float32)[np.digitize(x, np.float32(SLOPE_EDGES))]
    np.testing.assert_array_equal(Breaks(SLOPE_EDGES, SLOPE_SCORES)(x), expected)


def test_breaks_edge_compared_in_float32():
    assert Breaks([0.7], [0.0, 1.0])(np.array([0.7], dtype=np.float32))[0] == 1.0


@pytest.mark.parametrize(
    ("edges", "scores", "message"),
    [
        ([3, 1], [0, 0.5, 1], "'edges' must be strictly increasing (and distinct in float32), got [3, 1]"),
        ([1, 1], [0, 0.5, 1], "strictly increasing (and distinct in float32), got [1, 1]"),
        ([1, 2], [0, 1], "2 edges make 3 bins, so 'scores' needs 3 values, got 2"),
        ([], [1], "'edges' must hold at least one number"),
        ([1], [0, 2], "parameter 'scores[1]' must be a score in [0, 1], got 2.0"),
        ([1, NAN], [0, 0, 1], "parameter 'edges[1]' must be a finite number"),
        ("12", [0, 1, 1], "parameter 'edges' must be a list of numbers"),
        ([1, "a"], [0, 0, 1], "parameter 'edges[1]' must be a number"),
    ],
)
def test_breaks_rejects_bad_parameters(edges, scores, message):
    with pytest.raises(ConfigError) as err:
        Breaks(edges, scores)
    assert message in str(err.value)


@settings(max_examples=60, deadline=None)
@given(
    edges=st.lists(finite, min_size=1, max_size=6, unique=True).map(sorted),
    data=st.data(),
    xs=st.lists(st.one_of(finite, st.just(NAN)), min_size=1, max_size=40),
)
def test_breaks_properties_output_in_scores_and_nan_kept(edges, data, xs):
    assume(len(set(np.float32(edges).tolist())) == len(edges))  # float32 collisions are rejected (tested above)
    scores = data.draw(st.lists(st.floats(0, 1), min_size=len(edges) + 1, max_size=len(edges) + 1))
    x = np.array(xs, dtype=np.float32)
    out = Breaks(edges, scores)(x)
    nan = np.isnan(x)
    np.testing.assert_array_equal(np.isnan(out), nan)
    assert set(out[~nan].tolist()) <= set(np.float32(scores).tolist())


# --- numpy vs dask ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "transform",
    [Linear(-2, 3), Linear(-2, 3, increasing=False, below=NAN, above=0.25), Breaks([-1, 0, 2.5], [0, 0.2, 0.9, 1])],
)
def test_dask_equals_numpy_whatever_the_chunks(transform):
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, size=(67, 45)).astype(np.float32)
    x[rng.random(x.shape) < 0.1] = np.nan
    expected = transform(x)
    for chunks in [(67, 45), (16, 16), (7, 45), (1, 13)]:
        lazy = transform(da.from_array(x, chunks=chunks))
        assert isinstance(lazy, da.Array) and lazy.dtype == np.float32
        assert lazy.chunks == da.from_array(x, chunks=chunks).chunks
        np.testing.assert_array_equal(lazy.compute(), expected)


# --- registry -------------------------------------------------------------------------------------------------


def test_make_transform_builds_registered_classes():
    assert {"linear", "breaks"} <= set(TRANSFORMS)  # the others are tested in test_transforms_more.py
    assert make_transform("linear", {"lower": 1, "upper": 3, "increasing": False}) == Linear(1, 3, increasing=False)
    assert make_transform("breaks", {"edges": [1, 2], "scores": [0, 0.5, 1]}) == Breaks((1, 2), (0, 0.5, 1))


@pytest.mark.parametrize("transform", [Linear(1, 3, below=0.5), Breaks([1, 2], [0, 0.5, 1])])
def test_as_record_round_trips_through_make_transform(transform):
    record = transform.as_record()
    name = record.pop("transform")
    assert make_transform(name, record) == transform


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("lineer", {}, "unknown transform 'lineer' (did you mean 'linear'?)"),
        ("zzz", {}, "unknown transform 'zzz' (valid: breaks, exponential, gaussian,"),
        ("linear", {"lo": 1, "upper": 2}, "transform 'linear': unknown parameter 'lo'"),
        ("linear", {"lowr": 1, "upper": 2}, "unknown parameter 'lowr' (did you mean 'lower'?)"),
        # linear's lower/upper may be left out (fitted to the layer's min/max, see test_transforms_more.py)
        ("piecewise", {}, "transform 'piecewise': missing parameter 'points' (required: points;"),
        ("breaks", {"edges": [1]}, "missing parameter 'scores'"),
        ("breaks", {"edges": [2, 1], "scores": [0, 0, 1]}, "got [2, 1]"),
    ],
)
def test_make_transform_errors(name, params, message):
    with pytest.raises(ConfigError) as err:
        make_transform(name, params)
    assert message in str(err.value)
