"""rasters.friction: Tobler's hiking function, slope tables, speeds → friction (min/m), on numpy and dask."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from rasters.errors import ConfigError
from rasters.friction import (
    combine_speeds,
    friction_min_per_m,
    speed_from_slope_table,
    tobler_speed_kmh,
    tobler_speed_kmh_from_gradient,
)

# Tobler (1993): W = 6·exp(−3.5·|tan θ + 0.05|) km/h, worked out by hand (tan values from tables):
#   0°:  |0 + 0.05| = 0.05;                3.5·0.05 = 0.175;        e^−0.175 = 0.839457;  × 6 = 5.036742
#  +5°:  tan 5° = 0.0874887; |…+0.05| = 0.1374887; ×3.5 = 0.4812103; e^−0.4812103 = 0.6180349; × 6 = 3.708210
#  −5°:  |−0.0874887 + 0.05| = 0.0374887; ×3.5 = 0.1312103;          e^−0.1312103 = 0.8770333; × 6 = 5.262200
#  20°:  tan 20° = 0.3639702; +0.05 = 0.4139702; ×3.5 = 1.4488958;   e^−1.4488958 = 0.2348294; × 6 = 1.408977
TOBLER = {0.0: 5.036742, 5.0: 3.708210, -5.0: 5.262200, 20.0: 1.408977}


def test_tobler_published_formula_values():
    slopes = np.array(list(TOBLER), dtype=np.float32)
    got = tobler_speed_kmh(slopes)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, list(TOBLER.values()), rtol=2e-6)


def test_tobler_maximum_is_6_kmh_on_a_5_percent_descent():
    # dh/dx = −0.05 makes the exponent 0: the function's peak, 6 km/h.
    assert tobler_speed_kmh_from_gradient(np.array([-0.05]))[0] == pytest.approx(6.0)
    g = np.linspace(-1, 1, 401)
    assert np.argmax(tobler_speed_kmh_from_gradient(g)) == np.argmin(np.abs(g + 0.05))


def test_tobler_gradient_and_degrees_agree_and_nan_stays_nan():
    deg = np.array([0.0, 5.0, -5.0, 20.0, np.nan])
    a = tobler_speed_kmh(deg)
    b = tobler_speed_kmh_from_gradient(np.tan(np.radians(deg)))
    np.testing.assert_array_equal(a, b)
    assert np.isnan(a[-1])


def test_tobler_dask_equals_numpy_on_any_chunking():
    rng = np.random.default_rng(1)
    s = rng.uniform(-40, 40, (37, 23)).astype(np.float32)
    ref = tobler_speed_kmh(s)
    for chunks in ((37, 23), (16, 7)):
        got = tobler_speed_kmh(da.from_array(s, chunks=chunks))
        assert isinstance(got, da.Array)
        np.testing.assert_array_equal(got.compute(), ref)


def test_slope_table_classes_include_the_lower_edge():
    # edges 5°, 15°, 25° → classes [0,5) 5 km/h, [5,15) 4, [15,25) 2, ≥25 impassable (0)
    s = np.array([0.0, 4.99, 5.0, 14.9, 15.0, 24.9, 25.0, 60.0, -7.0, np.nan])
    got = speed_from_slope_table(s, [5, 15, 25], [5, 4, 2, 0])
    np.testing.assert_array_equal(got[:-1], [5, 5, 4, 4, 2, 2, 0, 0, 4])  # −7° is a 7° slope
    assert np.isnan(got[-1])
    dgot = speed_from_slope_table(da.from_array(s, chunks=3), [5, 15, 25], [5, 4, 2, 0]).compute()
    np.testing.assert_array_equal(dgot, got)


@pytest.mark.parametrize(
    ("edges", "speeds", "match"),
    [
        ([5, 5, 25], [5, 4, 2, 0], "strictly increasing"),
        ([5, 15], [5, 4, 2, 0], "len\\(speeds_kmh\\)"),
        ([5, 15, 25], [5, -4, 2, 0], ">= 0"),
        ([5, 15, 25], [5, np.inf, 2, 0], ">= 0"),
    ],
)
def test_slope_table_bad_parameters(edges, speeds, match):
    with pytest.raises(ConfigError, match=match):
        speed_from_slope_table(np.zeros(3), edges, speeds)


def test_friction_from_speed():
    # 60 km/h = 1000 m/min → 0.001 min/m; 4 km/h → 0.06/4 = 0.015 min/m; 0 km/h impassable.
    got = friction_min_per_m(np.array([60.0, 4.0, 0.0, np.nan]))
    np.testing.assert_allclose(got[:2], [0.001, 0.015], rtol=1e-7)
    assert got[2] == np.inf and np.isnan(got[3])
    with pytest.raises(ConfigError, match="speed_kmh"):
        friction_min_per_m(np.array([5.0, -1.0]))


def test_combine_speeds_roads_offroad_barriers():
    road = np.array([[60.0, np.nan, np.nan], [30.0, np.nan, 60.0]])
    off = np.array([[4.0, 5.0, 0.0], [4.0, np.nan, 3.0]])
    barrier = np.array([[False, False, False], [False, False, True]])
    got = combine_speeds(road, off, barrier)
    assert got.dtype == np.float32
    # road 60 → 0.001; off-road 5 → 0.012; speed 0 → inf; road 30 → 0.002; no data → NaN; barrier → inf
    np.testing.assert_allclose(got[0, :2], [0.001, 0.012], rtol=1e-7)
    assert got[0, 2] == np.inf
    assert got[1, 0] == pytest.approx(0.002)
    assert np.isnan(got[1, 1])
    assert got[1, 2] == np.inf
    dgot = combine_speeds(da.from_array(road, chunks=1), off, da.from_array(barrier, chunks=1)).compute()
    np.testing.assert_array_equal(dgot, got)


def test_combine_speeds_scalar_offroad():
    got = combine_speeds(np.array([np.nan, 80.0]), 4.0)
    np.testing.assert_allclose(got, [0.015, 0.06 / 80], rtol=1e-7)


def test_combine_speeds_rejects_bad_speeds():
    with pytest.raises(ConfigError, match="road_speed_kmh must be > 0"):
        combine_speeds(np.array([0.0, np.nan]), 4.0)
    with pytest.raises(ConfigError, match="offroad_speed_kmh"):
        combine_speeds(np.array([np.nan]), np.array([-2.0]))
    with pytest.raises(ConfigError, match="offroad_speed_kmh"):
        combine_speeds(np.array([np.nan]), -2.0)
    lazy = combine_speeds(da.from_array(np.array([np.nan, -5.0]), chunks=1), 4.0)
    with pytest.raises(ConfigError, match="road_speed_kmh"):
        lazy.compute()


def test_combine_speeds_shape_mismatch():
    with pytest.raises(ConfigError, match="shapes differ"):
        combine_speeds(da.zeros((3, 3), chunks=2) + np.nan, np.ones((2, 2)))
