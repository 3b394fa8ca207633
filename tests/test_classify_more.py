"""Class breaks from data: equal interval, quantile (vs numpy.quantile), natural breaks (vs brute force and
jenkspy), geometric interval, and their errors."""

from __future__ import annotations

import itertools

import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rasters.errors import ConfigError
from suitability.classify import (
    ClassScheme,
    class_breaks,
    classify,
    equal_interval_breaks,
    geometric_interval_breaks,
    natural_breaks,
    quantile_breaks,
)

NAN = float("nan")


def _layer(seed=0, shape=(60, 50)):
    rng = np.random.default_rng(seed)
    x = rng.gamma(2.0, 3.0, size=shape).astype(np.float32)
    x[rng.random(shape) < 0.15] = np.nan
    return x


def test_equal_interval_hand_worked():
    x = np.array([[0, 3, NAN], [10, 7, 1]], dtype=np.float32)
    assert equal_interval_breaks(x, 4) == [2.5, 5.0, 7.5]
    assert equal_interval_breaks(da.from_array(x, chunks=1), 5) == pytest.approx([2, 4, 6, 8])


def test_quantile_breaks_equal_numpy_quantile_for_numpy_and_dask():
    x = _layer()
    valid = x[~np.isnan(x)].astype(np.float64)
    expected = np.quantile(valid, [0.2, 0.4, 0.6, 0.8])
    assert quantile_breaks(x, 5) == pytest.approx(expected, rel=0, abs=0)
    for chunks in [(60, 50), (7, 9)]:
        assert quantile_breaks(da.from_array(x, chunks=chunks), 5) == list(expected)
    # classes hold equal counts (+- ties)
    counts = np.bincount(classify(x, quantile_breaks(x, 4))[~np.isnan(x)])[1:]
    assert counts.max() - counts.min() <= 2


def test_quantile_on_a_sample_is_close_and_chunk_independent():
    x = _layer(seed=5, shape=(200, 200))
    valid = x[~np.isnan(x)].astype(np.float64)
    sampled = quantile_breaks(x, 4, sample_size=5000, seed=1)
    assert sampled == quantile_breaks(da.from_array(x, chunks=(33, 64)), 4, sample_size=5000, seed=1)
    # probability error of a sample quantile ~ sqrt(p(1-p)/n) = 0.007; allow 4 sigma
    probs = [np.mean(valid < b) for b in sampled]
    np.testing.assert_allclose(probs, [0.25, 0.5, 0.75], atol=0.03)


def _ssd(values, starts):
    bounds = [0, *starts, len(values)]
    return sum(((values[a:b] - values[a:b].mean()) ** 2).sum() for a, b in zip(bounds, bounds[1:], strict=False))


def _brute_force(values, n):
    """Minimum within-class SSD over every partition of sorted values into n contiguous classes."""
    return min(_ssd(values, s) for s in itertools.combinations(range(1, len(values)), n - 1))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-100, 100, allow_nan=False, width=32), min_size=4, max_size=10, unique=True),
       st.integers(2, 4))
def test_natural_breaks_is_the_brute_force_optimum(values, n):
    values = np.sort(np.array(values, dtype=np.float64))
    if n > len(values):
        n = len(values)
    breaks = natural_breaks(values.astype(np.float32), n)
    starts = [int(np.searchsorted(values, b, side="left")) for b in breaks]
    assert _ssd(values, starts) == pytest.approx(_brute_force(values, n), rel=1e-9, abs=1e-9)
    # the breaks are the first value of each upper class, so classify reproduces the partition
    classes = classify(values.astype(np.float32), breaks)
    assert list(np.flatnonzero(np.diff(classes.astype(int)))) == [s - 1 for s in starts]


def test_natural_breaks_hand_worked_clusters():
    # three obvious groups; the optimum splits between them
    x = np.array([1, 2, 3, 10, 11, 12, 20, 21, 22, NAN], dtype=np.float32)
    assert natural_breaks(x, 3) == [10.0, 20.0]
    # repeated values count with their multiplicity. By hand, for fifty 0s and 1, 9, 10:
    # {0 x 50} | {1} | {9, 10} costs 0 + 0 + 0.5 = 0.5; {0 x 50, 1} | {9} | {10} costs 1 - 1/51 = 0.98
    y = np.array([0] * 50 + [1, 9, 10], dtype=np.float32)
    assert natural_breaks(y, 3) == [1.0, 9.0]


def test_natural_breaks_matches_jenkspy():
    jenkspy = pytest.importorskip("jenkspy")
    rng = np.random.default_rng(11)
    for n, values in [
        (3, np.concatenate([rng.normal(0, 1, 300), rng.normal(8, 1, 300), rng.normal(20, 2, 300)])),
        (5, rng.gamma(2.0, 3.0, 1500)),
        (4, rng.uniform(0, 1, 800)),
    ]:
        values = np.sort(values.astype(np.float32).astype(np.float64))
        ours = natural_breaks(values.astype(np.float32), n)
        theirs = jenkspy.jenks_breaks(values.tolist(), n_classes=n)  # [min, max of class 1, ..., max]
        # jenkspy reports each class's maximum; ours is the next class's minimum
        expected = [float(values[np.searchsorted(values, m, side="right")]) for m in theirs[1:-1]]
        assert ours == expected


def test_natural_breaks_sample_numpy_equals_dask():
    x = _layer(seed=2, shape=(120, 100))
    a = natural_breaks(x, 4, sample_size=800, seed=7)
    assert a == natural_breaks(da.from_array(x, chunks=(31, 17)), 4, sample_size=800, seed=7)


def test_geometric_interval_on_evenly_spread_data_is_equal_interval():
    x = np.linspace(0, 1, 10001).astype(np.float32)
    assert geometric_interval_breaks(x, 4) == pytest.approx([0.25, 0.5, 0.75], abs=1e-3)


@pytest.mark.parametrize(("widths", "expected"), [((1, 2, 4, 8), [1, 3, 7]), ((8, 4, 2, 1), [8, 12, 14]),
                                                  ((4, 2, 1, 2, 4), [4, 6, 7, 9])])
def test_geometric_interval_recovers_geometric_classes_of_equal_counts(widths, expected):
    # each class [edge_k, edge_k+1) holds 2000 evenly spaced values: a geometric series of widths (ratio 2,
    # switching to its inverse once in the last case) gives equal counts, the optimum of Esri's criterion
    edges = np.concatenate([[0.0], np.cumsum(widths)])
    x = np.concatenate([np.linspace(a, b, 2000, endpoint=False) for a, b in zip(edges, edges[1:], strict=False)])
    x = np.append(x, edges[-1])
    breaks = geometric_interval_breaks(x.astype(np.float32), len(widths))
    assert breaks == pytest.approx(expected, rel=0.02)


def test_class_breaks_by_name_and_scheme():
    x = _layer()
    assert class_breaks("quantile", x, 3) == quantile_breaks(x, 3)
    assert class_breaks("natural_breaks", x, 3, sample_size=500, seed=2) == natural_breaks(x, 3, 500, 2)
    scheme = ClassScheme.from_breaks(class_breaks("equal_interval", x, 5))
    assert scheme.n_classes == 5 and scheme.labels[0] == "低"
    classes = scheme.classify(x)
    assert set(np.unique(classes[~np.isnan(x)])) == {1, 2, 3, 4, 5} and np.all(classes[np.isnan(x)] == 0)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: equal_interval_breaks(np.arange(5.0), 1), "number of classes must be an integer from 2 to 255, got 1"),
    (lambda: quantile_breaks(np.arange(5.0), 2.5), "got 2.5"),
    (lambda: natural_breaks(np.arange(5.0), 256), "got 256"),
    (lambda: equal_interval_breaks(np.full(4, np.nan), 3), "equal_interval: the layer has no valid cells"),
    (lambda: quantile_breaks(da.full((4, 4), np.nan, chunks=2), 3), "quantile: the layer has no valid cells"),
    (lambda: natural_breaks(np.full(9, np.nan), 3), "natural_breaks: the layer has no valid cells"),
    (lambda: equal_interval_breaks(np.full(4, 2.0), 3), "3 classes need 2 distinct breaks, got [2, 2]"),
    (lambda: quantile_breaks(np.array([0.0] * 90 + list(range(10))), 4), "quantile: 4 classes need 3 distinct"),
    (lambda: natural_breaks(np.array([1.0, 1, 2, 2]), 3), "3 classes need at least 3 distinct values"),
    (lambda: geometric_interval_breaks(np.full(5, 3.0), 3), "the layer is constant"),
    (lambda: natural_breaks(np.arange(9.0), 3, sample_size=1), "'sample_size' must be an integer >= 2"),
    (lambda: class_breaks("jenks_breaks", np.arange(9.0), 3), "unknown classification method 'jenks_breaks'"),
    (lambda: class_breaks("natural_brakes", np.arange(9.0), 3), "(did you mean 'natural_breaks'?)"),
    (lambda: class_breaks("quantile", np.arange(9.0), 3, sample_sise=9), "(did you mean 'sample_size'?)"),
    (lambda: class_breaks("equal_interval", np.arange(9.0), 3, seed=1), "it takes no options"),
])
def test_bad_input(call, message):
    with pytest.raises(ConfigError) as err:
        call()
    assert message in str(err.value)
    assert "\n" not in str(err.value)
