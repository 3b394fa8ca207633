"""Direct weights and the weighted linear combination, against hand values and numpy.average."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rasters.errors import ConfigError
from suitability.overlay import weighted_sum
from suitability.weights import WeightSet, direct

NAN = float("nan")
positive = st.floats(min_value=1e-3, max_value=1e3)


# --- direct weights ---------------------------------------------------------------------------------------------


def test_direct_normalises_by_hand():
    ws = direct({"slope": 3, "water": 1, "roads": 0})
    assert isinstance(ws, WeightSet)
    assert dict(ws) == {"slope": 0.75, "water": 0.25, "roads": 0.0}
    assert list(ws) == ["slope", "water", "roads"]  # order kept
    assert ws["slope"] == 0.75 and len(ws) == 3
    assert ws.method == "direct"
    assert dict(ws.raw) == {"slope": 3.0, "water": 1.0, "roads": 0.0}


def test_direct_record_is_json_ready():
    record = direct({"a": 1, "b": 4}).as_record()
    assert json.loads(json.dumps(record)) == {"method": "direct", "weights": {"a": 0.2, "b": 0.8},
                                               "raw": {"a": 1.0, "b": 4.0}}


@settings(max_examples=60, deadline=None)
@given(raw=st.dictionaries(st.text("abcdefgh", min_size=1, max_size=4), positive, min_size=1, max_size=8),
       scale=st.floats(min_value=1e-3, max_value=1e3))
def test_direct_sums_to_one_and_is_scale_invariant(raw, scale):
    ws = direct(raw)
    assert sum(ws.values()) == pytest.approx(1.0, abs=1e-12)
    assert all(w >= 0 for w in ws.values())
    scaled = direct({k: v * scale for k, v in raw.items()})
    for k in raw:
        assert scaled[k] == pytest.approx(ws[k], rel=1e-12)
        # ratios between criteria are what the user meant, so they are kept
        assert ws[k] / ws[next(iter(raw))] == pytest.approx(raw[k] / raw[next(iter(raw))], rel=1e-12)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"slope": 1, "water": -0.2}, "weight of criterion 'water' is -0.2; weights must be >= 0"),
        ({"slope": NAN}, "weight of criterion 'slope' must be a finite number"),
        ({"slope": float("inf"), "a": 1}, "weight of criterion 'slope' must be a finite number"),
        ({"slope": 0, "water": 0.0}, "all weights are zero (slope, water); at least one criterion needs a weight > 0"),
        ({"slope": "1"}, "weight of criterion 'slope' must be a number, got '1'"),
        ({"slope": True}, "weight of criterion 'slope' must be a number"),
        ({}, "weights must be a non-empty mapping"),
        ([("a", 1)], "weights must be a non-empty mapping"),
    ],
)
def test_direct_rejects_bad_weights(weights, message):
    with pytest.raises(ConfigError) as err:
        direct(weights)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


# --- weighted sum -----------------------------------------------------------------------------------------------


def test_weighted_sum_by_hand():
    a = np.array([[0.0, 0.5], [1.0, 0.2]], dtype=np.float32)
    b = np.array([[1.0, 0.5], [0.0, NAN]], dtype=np.float32)
    c = np.array([[0.2, 0.0], [0.4, 0.8]], dtype=np.float32)
    # 0.5 a + 0.3 b + 0.2 c, worked by hand; the NaN in b makes its cell NaN.
    expected = np.array([[0.34, 0.40], [0.58, NAN]], dtype=np.float32)
    out = weighted_sum([a, b, c], [0.5, 0.3, 0.2])
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_nan_propagates_even_with_zero_weight():
    a = np.array([0.5, 0.5], dtype=np.float32)
    b = np.array([NAN, 0.1], dtype=np.float32)
    out = weighted_sum([a, b], [1.0, 0.0])
    assert np.isnan(out[0]) and out[1] == 0.5


def _layers(draw_seed: int, n: int, shape=(9, 7)) -> list[np.ndarray]:
    rng = np.random.default_rng(draw_seed)
    return [rng.random(shape).astype(np.float32) for _ in range(n)]


@settings(max_examples=40, deadline=None)
@given(raw=st.lists(positive, min_size=1, max_size=6), seed=st.integers(0, 2**16),
       scale=st.floats(min_value=1e-2, max_value=1e2))
def test_weighted_sum_matches_numpy_average_and_is_scale_invariant(raw, seed, scale):
    layers = _layers(seed, len(raw))
    ws = direct({f"c{i}": w for i, w in enumerate(raw)})
    out = weighted_sum(layers, list(ws.values()))
    # independent reference: numpy's weighted average normalises by sum(w) itself
    np.testing.assert_allclose(out, np.average(np.stack(layers), axis=0, weights=raw), rtol=1e-5, atol=1e-6)
    # normalised weights of scaled raw weights give the same overlay
    scaled = direct({f"c{i}": w * scale for i, w in enumerate(raw)})
    np.testing.assert_allclose(weighted_sum(layers, list(scaled.values())), out, rtol=1e-5, atol=1e-6)
    # unnormalised weights scale the result (homogeneity of degree 1)
    np.testing.assert_allclose(weighted_sum(layers, [w * scale for w in raw]), scale * weighted_sum(layers, raw),
                               rtol=1e-5, atol=1e-6)
    # a convex combination stays between the smallest and largest criterion score of the cell
    stack = np.stack(layers)
    assert np.all(out >= stack.min(axis=0) - 1e-6) and np.all(out <= stack.max(axis=0) + 1e-6)


def test_weighted_sum_of_identical_layers_is_the_layer():
    (layer,) = _layers(5, 1)
    np.testing.assert_allclose(weighted_sum([layer, layer, layer], [0.2, 0.3, 0.5]), layer, rtol=1e-6)


def test_weighted_sum_dask_equals_numpy_bitwise():
    layers = _layers(11, 3, shape=(61, 47))
    layers[1][::5, ::3] = np.nan
    weights = [0.1, 0.6, 0.3]
    expected = weighted_sum(layers, weights)
    for chunks in [(61, 47), (16, 16), (5, 47)]:
        lazy = weighted_sum([da.from_array(x, chunks=chunks) for x in layers], weights)
        assert isinstance(lazy, da.Array) and lazy.dtype == np.float32
        np.testing.assert_array_equal(lazy.compute(), expected)
    # mixed: numpy, dask with one chunking, dask with another
    mixed = weighted_sum([layers[0], da.from_array(layers[1], chunks=8), da.from_array(layers[2], chunks=(20, 9))],
                         weights)
    np.testing.assert_array_equal(mixed.compute(), expected)


@pytest.mark.parametrize(
    ("layers", "weights", "message"),
    [
        ([np.zeros(3), np.zeros(3)], [1.0], "weighted_sum got 2 layers but 1 weights"),
        ([], [], "weighted_sum needs at least one layer"),
        ([np.zeros(3), np.zeros(4)], [0.5, 0.5], "all layers must have one shape"),
        ([np.zeros(3)], [NAN], "weight 0 must be a finite number"),
        ([np.zeros(3)], ["1"], "weight 0 must be a finite number"),
    ],
)
def test_weighted_sum_errors(layers, weights, message):
    with pytest.raises(ConfigError) as err:
        weighted_sum(layers, weights)
    assert message in str(err.value)
