"""Score classification against hand-worked classes and numpy.digitize, and the class scheme."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rasters.errors import ConfigError
from suitability.classify import (
    DEFAULT_BREAKS,
    DEFAULT_COLORS,
    DEFAULT_LABELS,
    DEFAULT_LABELS_EN,
    DEFAULT_SCHEME,
    ClassScheme,
    classify,
    ramp_colors,
)

NAN = float("nan")


def test_classify_small_array_by_hand():
    score = np.array(
        [[0.0, 0.1, 0.2, 0.25], [0.39, 0.4, 0.5, 0.6], [0.79, 0.8, 0.95, 1.0], [NAN, -0.1, 1.2, 0.59]],
        dtype=np.float32,
    )
    # breaks 0.2 0.4 0.6 0.8, right-open: [.., 0.2) -> 1, [0.2, 0.4) -> 2, ... [0.8, ..) -> 5; NaN -> 0
    expected = np.array([[1, 1, 2, 2], [2, 3, 3, 4], [4, 5, 5, 5], [0, 1, 5, 3]], dtype=np.uint8)
    out = classify(score)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)
    # same thing via numpy.digitize on the valid cells
    valid = ~np.isnan(score)
    np.testing.assert_array_equal(out[valid], np.digitize(score[valid], np.float32(DEFAULT_BREAKS)) + 1)


def test_classify_custom_breaks_against_digitize():
    rng = np.random.default_rng(7)
    score = rng.uniform(-1, 11, size=(50, 40)).astype(np.float32)
    score[rng.random(score.shape) < 0.05] = np.nan
    breaks = [0, 2.5, 3, 7, 10]
    out = classify(score, breaks)
    valid = ~np.isnan(score)
    np.testing.assert_array_equal(out[valid], np.digitize(score[valid], np.float32(breaks)) + 1)
    assert np.all(out[~valid] == 0)
    assert set(np.unique(out[valid])) <= set(range(1, len(breaks) + 2))


def test_break_compared_in_float32():
    # float32(0.7) = 0.69999999; with break 0.7 it must still be in the upper class
    assert classify(np.array([0.7], np.float32), [0.7])[0] == 2


def test_dask_equals_numpy_whatever_the_chunks():
    rng = np.random.default_rng(1)
    score = rng.random((70, 33)).astype(np.float32)
    score[::9, ::4] = np.nan
    expected = classify(score)
    for chunks in [(70, 33), (16, 16), (3, 33)]:
        lazy = classify(da.from_array(score, chunks=chunks))
        assert isinstance(lazy, da.Array) and lazy.dtype == np.uint8
        np.testing.assert_array_equal(lazy.compute(), expected)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-2, 2, allow_nan=False), min_size=2, max_size=40))
def test_classes_are_monotone_in_score(values):
    score = np.sort(np.array(values, dtype=np.float32))
    classes = classify(score)
    assert np.all(np.diff(classes.astype(int)) >= 0)
    assert classes.min() >= 1 and classes.max() <= 5


@pytest.mark.parametrize(
    ("breaks", "message"),
    [
        ([0.4, 0.2], "class breaks must be strictly increasing (no duplicates, also in float32), got [0.4, 0.2]"),
        ([0.2, 0.2, 0.6], "strictly increasing (no duplicates, also in float32), got [0.2, 0.2, 0.6]"),
        ([0.1, 0.1 + 1e-12], "strictly increasing"),
        ([], "class breaks must hold at least one number"),
        ([0.1, NAN], "class breaks must be finite numbers"),
        ("0.5", "class breaks must be a list of numbers"),
        (list(range(255)), "more than 255 classes"),
    ],
)
def test_bad_breaks(breaks, message):
    with pytest.raises(ConfigError) as err:
        classify(np.zeros(3, np.float32), breaks)
    assert message in str(err.value)


# --- scheme -----------------------------------------------------------------------------------------------------


def test_default_scheme():
    assert DEFAULT_SCHEME.breaks == DEFAULT_BREAKS == (0.2, 0.4, 0.6, 0.8)
    assert DEFAULT_SCHEME.labels == DEFAULT_LABELS == ("低", "较低", "中等", "较高", "高")
    assert DEFAULT_SCHEME.labels_en == DEFAULT_LABELS_EN
    assert DEFAULT_SCHEME.colors == DEFAULT_COLORS and DEFAULT_SCHEME.n_classes == 5
    rgb = [tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in DEFAULT_COLORS]
    # red -> green: class 1 is mostly red, class 5 mostly green, and red minus green falls class by class
    assert rgb[0][0] > 2 * rgb[0][1] and rgb[-1][1] > 2 * rgb[-1][0]
    redness = [r - g for r, g, _ in rgb]
    assert all(later < earlier for earlier, later in zip(redness, redness[1:], strict=False))
    np.testing.assert_array_equal(DEFAULT_SCHEME.classify(np.array([0.1, 0.9], np.float32)), [1, 5])


def test_ramp_colors_hits_anchors_and_interpolates():
    assert ramp_colors(5) == DEFAULT_COLORS
    three = ramp_colors(3)
    assert three == (DEFAULT_COLORS[0], DEFAULT_COLORS[2], DEFAULT_COLORS[4])
    # 9 colours: every other one is an anchor, the ones between are RGB midpoints
    nine = ramp_colors(9)
    assert nine[::2] == DEFAULT_COLORS
    a, b = DEFAULT_COLORS[0], DEFAULT_COLORS[1]
    mid = tuple(round((int(a[i:i + 2], 16) + int(b[i:i + 2], 16)) / 2) for i in (1, 3, 5))
    assert nine[1] == "#{:02x}{:02x}{:02x}".format(*mid)


def test_from_breaks_builds_matching_scheme():
    s = ClassScheme.from_breaks([0.5])
    assert s.n_classes == 2 and s.labels == ("类别 1", "类别 2") and s.labels_en == ("class 1", "class 2")
    assert s.colors == (DEFAULT_COLORS[0], DEFAULT_COLORS[-1])
    assert ClassScheme.from_breaks([0.1, 0.3, 0.5, 0.9]).labels == DEFAULT_LABELS


def test_scheme_record_is_json_ready():
    record = json.loads(json.dumps(DEFAULT_SCHEME.as_record(), ensure_ascii=False))
    assert record["nodata"] == 0
    assert [c["value"] for c in record["classes"]] == [1, 2, 3, 4, 5]
    assert [(c["min"], c["max"]) for c in record["classes"]] == [
        (None, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, None)]
    assert record["classes"][2]["label"] == "中等"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"labels": ("a", "b")}, "4 breaks make 5 classes, so 'labels' needs 5 entries"),
        ({"colors": DEFAULT_COLORS[:4]}, "so 'colors' needs 5 entries"),
        ({"colors": ("#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "green")}, "hex string like '#1a9641', got 'green'"),
        ({"colors": ("#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#12345g")}, "got '#12345g'"),
        ({"breaks": (0.5, 0.1)}, "strictly increasing"),
        ({"labels_en": "lowhigh"}, "'labels_en' needs 5 entries"),
    ],
)
def test_bad_scheme(kwargs, message):
    with pytest.raises(ConfigError) as err:
        ClassScheme(**kwargs)
    assert message in str(err.value)
