"""The fuzzy / Rescale-by-Function transforms, hedges, scale, thresholds and fitting to layer statistics.

References are the published formulas (Esri ArcGIS Pro "How Fuzzy Membership works", "Formulas for the
transformation functions", the arcpy Fuzzy*/Tf* class pages) evaluated independently here with math/scipy,
and hand-worked points.
"""

from __future__ import annotations

import math

import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from rasters.errors import ConfigError
from suitability.fitting import fit_transform, layer_stats, valid_sample
from suitability.transforms import (
    TRANSFORMS,
    Exponential,
    Gaussian,
    Large,
    Linear,
    Logarithm,
    LogisticDecay,
    LogisticGrowth,
    MSLarge,
    MSSmall,
    Near,
    Piecewise,
    Power,
    Reclass,
    Sigmoid,
    Small,
    SymmetricLinear,
    make_transform,
)

NAN = float("nan")


def f32(*values):
    return np.array(values, dtype=np.float32)


# --- each function against its formula -------------------------------------------------------------------------


def test_symmetric_linear_hand_points():
    # minimum 10, maximum 30: peak at 20, 0.5 at 15 and 25, 0 at and beyond 10 / 30
    out = SymmetricLinear(10, 30)(f32(0, 10, 15, 20, 25, 30, 40, NAN))
    np.testing.assert_allclose(out, f32(0, 0, 0.5, 1, 0.5, 0, 0, NAN), atol=1e-7)


def test_piecewise_through_points():
    t = Piecewise([[0, 0.2], [10, 1.0], [20, 0.0]])
    out = t(f32(-5, 0, 5, 10, 15, 20, 30, NAN))
    np.testing.assert_allclose(out, f32(0.2, 0.2, 0.6, 1.0, 0.5, 0.0, 0.0, NAN), atol=1e-7)


def test_reclass_table_unlisted_nan_by_default_and_configurable():
    x = f32(1, 2, 3, 7, NAN)
    np.testing.assert_array_equal(Reclass({1: 0.5, 2: 1.0, 7: 0.0})(x), f32(0.5, 1.0, NAN, 0.0, NAN))
    np.testing.assert_array_equal(Reclass([[1, 0.5], [2, 1]], unlisted=0.1)(x), f32(0.5, 1.0, 0.1, 0.1, NAN))
    # JSON turns keys into strings: they are read back as numbers
    assert Reclass({"1": 0.5, "2": 1.0}) == Reclass({1: 0.5, 2: 1.0})


def test_sigmoid_is_logistic_cdf():
    x = np.linspace(-10, 30, 41).astype(np.float32)
    expected = sps.logistic.cdf(x.astype(np.float64), loc=10, scale=4)
    np.testing.assert_allclose(Sigmoid(10, 4)(x), expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(Sigmoid(10, 4, increasing=False)(x), 1 - expected, rtol=1e-6, atol=1e-6)


def test_logistic_growth_and_decay_meet_their_definition():
    # y_intercept_percent 5: 0.05 at minimum, 0.5 half-way, 0.95 at maximum
    g = LogisticGrowth(100, 300, y_intercept_percent=5)
    np.testing.assert_allclose(g(f32(100, 200, 300)), f32(0.05, 0.5, 0.95), atol=1e-6)
    d = LogisticDecay(100, 300, y_intercept_percent=5)
    np.testing.assert_allclose(d(f32(100, 200, 300)), f32(0.95, 0.5, 0.05), atol=1e-6)


@pytest.mark.parametrize(
    ("transform", "formula"),
    [
        (Gaussian(mid=5, spread=0.3), lambda x: math.exp(-0.3 * (x - 5) ** 2)),
        (Near(mid=5, spread=0.3), lambda x: 1 / (1 + 0.3 * (x - 5) ** 2)),
        (Small(mid=4, spread=3), lambda x: 1 / (1 + (x / 4) ** 3)),
        (Large(mid=4, spread=3), lambda x: 1 / (1 + (x / 4) ** -3)),
        # Esri MS Small / MS Large with m = 6, s = 2, a = 0.5, b = 1.5: a m = 3, b s = 3
        (MSSmall(0.5, 1.5, mean=6, std=2), lambda x: 3 / (x - 3 + 3) if x > 3 else 1.0),
        (MSLarge(0.5, 1.5, mean=6, std=2), lambda x: 1 - 3 / (x - 3 + 3) if x > 3 else 0.0),
        (Power(2, lower=0, upper=10), lambda x: (x / 10) ** 2),
        (Exponential(0.3, lower=0, upper=10), lambda x: (math.exp(0.3 * x) - 1) / (math.exp(3) - 1)),
        (Exponential(-0.3, lower=0, upper=10), lambda x: (math.exp(-0.3 * x) - 1) / (math.exp(-3) - 1)),
        (Logarithm(shift=-1, lower=0, upper=10), lambda x: math.log(x + 1) / math.log(11)),
    ],
)
def test_formula_at_hand_picked_points(transform, formula):
    xs = [0.5, 1, 2, 3, 3.5, 4, 5, 6.25, 8, 10]
    expected = np.array([formula(x) for x in xs])
    np.testing.assert_allclose(transform(np.array(xs, np.float32)), expected, rtol=2e-6, atol=1e-7)


def test_limits():
    # Gaussian and Near are 1 at mid and vanish far away; Small/Large are 0.5 at mid, -> 1 / 0 at the ends
    for t in (Gaussian(mid=5, spread=0.3), Near(mid=5, spread=0.3)):
        assert t(f32(5))[0] == 1 and t(f32(1e6))[0] < 1e-6
    assert Small(mid=4)(f32(4))[0] == pytest.approx(0.5) and Large(mid=4)(f32(4))[0] == pytest.approx(0.5)
    # x <= 0 gets the limit at 0+: Small 1, Large 0
    np.testing.assert_array_equal(Small(mid=4)(f32(-3, 0, 1e30)), f32(1, 1, 0))
    np.testing.assert_array_equal(Large(mid=4)(f32(-3, 0, 1e30)), f32(0, 0, 1))
    # MS Small is continuous at a m (= 1 there, our reading of Esri's function, see the class docstring)
    t = MSSmall(1, 1, mean=10, std=2)
    np.testing.assert_allclose(t(f32(-5, 10, 10.001, 1e9)), f32(1, 1, 1, 0), atol=1e-3)
    np.testing.assert_allclose(MSLarge(1, 1, mean=10, std=2)(f32(-5, 10, 1e9)), f32(0, 0, 1), atol=1e-6)
    # stretched curves: exactly 0 and 1 at the thresholds, clamped outside; huge rate does not overflow
    for t in (Power(0.5, lower=2, upper=9), Exponential(0.1, lower=2, upper=9), Logarithm(lower=2, upper=9),
              Exponential(500, lower=2, upper=9), Exponential(-500, lower=2, upper=9)):
        out = t(f32(-100, 2, 9, 100))
        np.testing.assert_allclose(out, f32(0, 0, 1, 1), atol=1e-7)
        assert np.all(np.isfinite(out))


def test_decreasing_variants_mirror():
    x = np.linspace(0, 10, 11).astype(np.float32)
    for cls, kw in ((Power, {"exponent": 2}), (Exponential, {"rate": 0.4}), (Logarithm, {"shift": -1})):
        up = cls(**kw, lower=0, upper=10)(x)
        down = cls(**kw, lower=0, upper=10, increasing=False)(x)
        np.testing.assert_allclose(down, 1 - up, atol=1e-6)


# --- thresholds, hedges, scale ---------------------------------------------------------------------------------


def test_thresholds_clamp_or_assign_below_above():
    g = Gaussian(mid=5, spread=0.5, lower=3, upper=6)
    # outside: scored as on the nearer threshold
    np.testing.assert_allclose(g(f32(0, 3, 7)), f32(math.exp(-2), math.exp(-2), math.exp(-0.5)), rtol=1e-6)
    g = Gaussian(mid=5, spread=0.5, lower=3, upper=6, below=NAN, above=0.25)
    out = g(f32(2.9, 3, 6, 6.1, NAN))
    np.testing.assert_allclose(out, f32(NAN, math.exp(-2), math.exp(-0.5), 0.25, NAN), rtol=1e-6)


def test_hedges_square_and_root():
    x = np.linspace(0, 10, 21).astype(np.float32)
    base = Near(mid=4, spread=0.2)(x).astype(np.float64)
    np.testing.assert_allclose(Near(mid=4, spread=0.2, hedge="very")(x), base**2, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(Near(mid=4, spread=0.2, hedge="somewhat")(x), np.sqrt(base), rtol=2e-6)


def test_scale_maps_zero_one_onto_range_and_below_is_on_that_scale():
    x = f32(-1, 0, 2.5, 10, 11)
    out = Linear(0, 10, scale=[1, 10], below=NAN, above=10)(x)
    np.testing.assert_allclose(out, f32(NAN, 1, 3.25, 10, 10), rtol=1e-6)
    # reversed scale = decreasing preference
    np.testing.assert_allclose(Linear(0, 10, scale=[10, 1])(f32(0, 10)), f32(10, 1))
    with pytest.raises(ConfigError, match=r"'below' must be on the output scale \[1, 10\]"):
        Linear(0, 10, scale=[1, 10], below=0.5)


def _curves(mid, spread):
    return [Gaussian(mid=mid, spread=spread), Near(mid=mid, spread=spread), Sigmoid(mid, 1 / spread),
            LogisticGrowth(mid - 1, mid + 1), SymmetricLinear(mid - 1 / spread, mid + 1 / spread)]


finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False)


@settings(max_examples=40, deadline=None)
@given(
    mid=st.floats(-100, 100),
    spread=st.floats(0.01, 10),
    xs=st.lists(finite, min_size=2, max_size=40),
    scale=st.tuples(st.floats(-10, 10), st.floats(-10, 10)).filter(lambda s: abs(s[0] - s[1]) > 1e-3),
    hedge=st.sampled_from([None, "very", "somewhat"]),
)
def test_properties_outputs_on_the_scale(mid, spread, xs, scale, hedge):
    x = np.array(xs, dtype=np.float32)
    lo, hi = min(scale), max(scale)
    for t in _curves(mid, spread) + [MSSmall(mean=mid, std=1 / spread), MSLarge(mean=mid, std=1 / spread)]:
        out = make_transform(t.name, {**{k: v for k, v in t.as_record().items() if k != "transform"},
                                      "scale": list(scale), "hedge": hedge})(x)
        assert out.dtype == np.float32
        assert np.all((out >= np.float32(lo)) & (out <= np.float32(hi))), t.name


@settings(max_examples=40, deadline=None)
@given(xs=st.lists(st.floats(0.001, 1e4), min_size=2, max_size=40), mid=st.floats(0.01, 1e3),
       spread=st.floats(0.1, 10), hedge=st.sampled_from([None, "very", "somewhat"]))
def test_properties_monotone_curves_and_hedges_preserve_order(xs, mid, spread, hedge):
    x = np.sort(np.array(xs, dtype=np.float32))
    increasing = [Large(mid=mid, spread=spread, hedge=hedge), Sigmoid(mid, mid / 3, hedge=hedge),
                  LogisticGrowth(0, 2 * mid, hedge=hedge), MSLarge(mean=mid, std=mid / 2, hedge=hedge),
                  Power(spread, lower=0, upper=1e4, hedge=hedge), Exponential(1e-3, lower=0, upper=1e4, hedge=hedge),
                  Logarithm(lower=0.001, upper=1e4, hedge=hedge)]
    decreasing = [Small(mid=mid, spread=spread, hedge=hedge), MSSmall(mean=mid, std=mid / 2, hedge=hedge),
                  LogisticDecay(0, 2 * mid, hedge=hedge)]
    for t in increasing:
        assert np.all(np.diff(t(x).astype(np.float64)) >= 0), t.name
    for t in decreasing:
        assert np.all(np.diff(t(x).astype(np.float64)) <= 0), t.name
    # a hedge is a monotone map of the score: it never reorders two cells
    base = Near(mid=mid, spread=1 / mid**2)(x).astype(np.float64)
    hedged = Near(mid=mid, spread=1 / mid**2, hedge=hedge)(x).astype(np.float64)
    order = np.argsort(base, kind="stable")
    assert np.all(np.diff(hedged[order]) >= -1e-7)


# --- numpy vs dask ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "transform",
    [
        SymmetricLinear(-2, 4), Piecewise([[-3, 0], [0, 1], [5, 0.3]], below=NAN), Reclass({0: 1, 1: 0.5}),
        Sigmoid(0, 2, hedge="very"), LogisticDecay(-3, 3), Gaussian(mid=1, spread=0.2, scale=[1, 10]),
        Near(mid=1, spread=0.2, lower=-2, upper=3, above=0), Small(mid=2), Large(mid=2, hedge="somewhat"),
        MSSmall(mean=0.5, std=3), MSLarge(mean=0.5, std=3), Power(3, lower=-5, upper=5),
        Exponential(0.7, lower=-5, upper=5), Logarithm(shift=-9, lower=-5, upper=5, below=NAN),
    ],
)
def test_dask_equals_numpy_whatever_the_chunks(transform):
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, size=(67, 45)).astype(np.float32)
    x[rng.random(x.shape) < 0.1] = np.nan
    x[::5, ::3] = np.round(x[::5, ::3])  # some integer codes for reclass
    expected = transform(x)
    assert expected.dtype == np.float32
    assert np.all(np.isnan(expected[np.isnan(x)]))
    for chunks in [(67, 45), (16, 16), (1, 13)]:
        lazy = transform(da.from_array(x, chunks=chunks))
        assert isinstance(lazy, da.Array) and lazy.dtype == np.float32
        np.testing.assert_array_equal(lazy.compute(), expected)


# --- fitting ----------------------------------------------------------------------------------------------------


def _normal_layer(mean, std, shape=(300, 200), seed=4):
    rng = np.random.default_rng(seed)
    x = rng.normal(mean, std, size=shape).astype(np.float32)
    x[rng.random(shape) < 0.2] = np.nan
    return x


def test_layer_stats_against_numpy_and_same_for_any_chunking():
    x = _normal_layer(3500.0, 400.0)  # elevation-like: large mean
    valid = x[~np.isnan(x)].astype(np.float64)
    ref = {"count": valid.size, "min": valid.min(), "max": valid.max(), "mean": valid.mean(), "std": valid.std()}
    for arr in (x, da.from_array(x, chunks=(300, 200)), da.from_array(x, chunks=(17, 33))):
        stats = layer_stats(arr, layer="dem")
        assert stats["layer"] == "dem" and stats["count"] == ref["count"]
        assert stats["min"] == ref["min"] and stats["max"] == ref["max"]
        assert stats["mean"] == pytest.approx(ref["mean"], rel=1e-13)
        assert stats["std"] == pytest.approx(ref["std"], rel=1e-11)


def test_layer_stats_all_nan():
    stats = layer_stats(da.full((10, 10), np.nan, chunks=5))
    assert stats["count"] == 0 and math.isnan(stats["mean"])


@pytest.mark.parametrize(("name", "check"), [
    ("ms_large", lambda t: (t.mean, t.std)),
    ("ms_small", lambda t: (t.mean, t.std)),
    ("gaussian", lambda t: (t.mid, math.sqrt(1 / (2 * t.spread)))),
    ("near", lambda t: (t.mid, math.sqrt(1 / t.spread))),
    ("sigmoid", lambda t: (t.mid, t.width * math.pi / math.sqrt(3))),
])
def test_fitting_recovers_mean_and_sigma_of_synthetic_layer(name, check):
    x = da.from_array(_normal_layer(120.0, 15.0), chunks=(64, 64))
    t = make_transform(name, {})
    assert t.needs_fit
    fitted = t.fit(layer_stats(x), layer="synthetic")
    assert not fitted.needs_fit
    mean, std = check(fitted)
    assert mean == pytest.approx(120.0, abs=0.2) and std == pytest.approx(15.0, rel=0.01)
    # the record carries the fitted numbers and rebuilds the same transform
    record = fitted.as_record()
    assert make_transform(record.pop("transform"), record) == fitted


def test_fitting_thresholds_from_min_max_and_only_missing_parameters():
    x = np.array([[2.0, 4.0], [NAN, 12.0]], dtype=np.float32)
    t = make_transform("linear", {"upper": 10})
    assert t.needs_fit and t.missing == ("lower",)
    fitted = fit_transform(t, x, layer="dist")
    assert (fitted.lower, fitted.upper) == (2.0, 10.0)
    np.testing.assert_allclose(fitted(x), [[0, 0.25], [NAN, 1]])
    assert fit_transform(Linear(0, 1), x) == Linear(0, 1)  # nothing to fit: no statistics needed
    for name in ("symmetric_linear", "logistic_growth", "logistic_decay"):
        f = make_transform(name, {}).fit(layer_stats(x))
        assert (f.minimum, f.maximum) == (2.0, 12.0)
    for name, params in (("power", {"exponent": 2}), ("exponential", {"rate": 1}), ("logarithm", {})):
        f = make_transform(name, params).fit(layer_stats(x))
        assert (f.lower, f.upper) == (2.0, 12.0)


def test_unfitted_transform_refuses_to_run():
    with pytest.raises(ConfigError, match=r"'mid', 'spread' were left out to be fitted"):
        make_transform("gaussian", {})(f32(1, 2))


def test_fit_on_all_nan_layer_names_layer_and_transform():
    stats = layer_stats(da.full((8, 8), np.nan, chunks=4), layer="slope_deg")
    with pytest.raises(ConfigError) as err:
        make_transform("ms_small", {"mean_mult": 2}).fit(stats)
    msg = str(err.value)
    assert msg.startswith("transform 'ms_small' on layer 'slope_deg': cannot fit 'mean', 'std'")
    assert "no valid cells" in msg and "\n" not in msg


@pytest.mark.parametrize(("name", "layer", "message"), [
    ("gaussian", np.full((4, 4), 7.0, np.float32), "cannot fit 'spread': the layer is constant"),
    ("linear", np.full((4, 4), 7.0, np.float32), "'lower' (7) must be smaller than 'upper' (7)"),
    ("small", np.full((4, 4), -3.0, np.float32), "the layer mean (-3) must be positive"),
    ("logarithm", np.array([-1.0, 5.0], np.float32), "'shift' (0) must be smaller than 'lower' (-1)"),
])
def test_fit_failures_are_config_errors(name, layer, message):
    with pytest.raises(ConfigError) as err:
        make_transform(name, {}).fit(layer_stats(layer), layer="L")
    assert f"transform '{name}' on layer 'L'" in str(err.value) and message in str(err.value)


def test_valid_sample_is_chunk_independent_and_exact_when_small():
    x = _normal_layer(0, 1, shape=(90, 70))
    small = valid_sample(da.from_array(x, chunks=(13, 29)), 10**6)
    np.testing.assert_array_equal(small, np.sort(x[~np.isnan(x)].astype(np.float64)))
    a = valid_sample(x, 500, seed=3)
    for chunks in [(90, 70), (7, 11), (45, 1)]:
        np.testing.assert_array_equal(valid_sample(da.from_array(x, chunks=chunks), 500, seed=3), a)
    assert a.size == 500 and not np.array_equal(a, valid_sample(x, 500, seed=4))
    assert set(a.tolist()) <= set(x[~np.isnan(x)].astype(np.float64).tolist())


# --- parameters and registry ----------------------------------------------------------------------------------


def test_registry_names():
    assert set(TRANSFORMS) == {
        "linear", "symmetric_linear", "piecewise", "breaks", "reclass", "sigmoid", "logistic_growth",
        "logistic_decay", "gaussian", "near", "small", "large", "ms_small", "ms_large", "power", "exponential",
        "logarithm"}


@pytest.mark.parametrize(("name", "params", "message"), [
    ("gausian", {}, "unknown transform 'gausian' (did you mean 'gaussian'?)"),
    ("gaussian", {"spred": 1}, "unknown parameter 'spred' (did you mean 'spread'?)"),
    ("gaussian", {"hedge": "vry"}, "'hedge' must be one of very, somewhat or absent, got 'vry' (did you mean 'very'?)"),
    ("gaussian", {"spread": 0}, "'spread' must be greater than 0"),
    ("gaussian", {"scale": [1, 1]}, "'scale' needs two different values"),
    ("gaussian", {"scale": [1]}, "'scale' must be [lo, hi]"),
    ("near", {"lower": 3, "upper": 1}, "'lower' (3) must be smaller than 'upper' (1)"),
    ("ms_small", {"std_mult": -1}, "'std_mult' must be greater than 0"),
    ("ms_large", {"std": 0}, "'std' must be greater than 0"),
    ("small", {"mid": 0}, "'mid' must be greater than 0"),
    ("symmetric_linear", {"minimum": 5, "maximum": 5}, "'minimum' (5) must be smaller than 'maximum' (5)"),
    ("logistic_growth", {"y_intercept_percent": 50}, "'y_intercept_percent' must be between 0 and 50"),
    ("piecewise", {"points": [[0, 0]]}, "'points' needs at least 2"),
    ("piecewise", {"points": [[1, 0], [1, 1]]}, "strictly increasing"),
    ("piecewise", {"points": [[0, 0], [1, 2]]}, "'points[1][1]' must be a score in [0, 1]"),
    ("piecewise", {}, "missing parameter 'points'"),
    ("reclass", {"table": {"a": 0.5}}, "table key 'a' is not a number"),
    ("reclass", {"table": [[1, 0.5], [1.00000001, 0.1]]}, "appears twice"),
    ("power", {"exponent": 0}, "'exponent' must be greater than 0"),
    ("exponential", {"rate": 0}, "'rate' must not be 0"),
    ("exponential", {}, "missing parameter 'rate'"),
    ("logarithm", {"shift": 2, "lower": 1, "upper": 4}, "'shift' (2) must be smaller than 'lower' (1)"),
])
def test_bad_parameters(name, params, message):
    with pytest.raises(ConfigError) as err:
        make_transform(name, params)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("transform", [
    Gaussian(mid=1, spread=2, hedge="very", scale=(1, 10), lower=0, upper=3, below=NAN, above=2),
    Reclass({3: 0.1, 1: 0.9}, unlisted=0.0), Piecewise([[0, 0], [1, 1]]), MSSmall(2, 1, mean=3, std=1),
])
def test_as_record_round_trips(transform):
    record = transform.as_record()
    assert make_transform(record.pop("transform"), record).as_record() == transform.as_record()
