"""rasters.distance.euclidean_distance against scipy.ndimage.distance_transform_edt (an independent exact EDT)."""

from __future__ import annotations

import math

import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from rasters.distance import euclidean_distance
from rasters.errors import ConfigError
from rasters.grid import Grid


def projected_grid(h: int, w: int, res=(30.0, 30.0), chunk: int = 16, crs: str = "EPSG:32647") -> Grid:
    x0, y0 = 20000 * res[0], 20000 * res[1]
    g = Grid.from_bounds((x0, y0, x0 + w * res[0], y0 + h * res[1]), res, crs, chunk_size=chunk)
    assert g.shape == (h, w)
    return g


def scipy_edt(features: np.ndarray, dx: float, dy: float) -> np.ndarray:
    return ndimage.distance_transform_edt(~features, sampling=(dy, dx))


def assert_close_to(ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.dtype == np.float32
    # float32 rounding of a float64 distance: half an ulp, relative 6e-8.
    np.testing.assert_allclose(ours, ref, rtol=1.2e-7, atol=0)


@pytest.mark.parametrize("res", [(30.0, 30.0), (20.0, 35.0), (25.0, 10.0)])
@pytest.mark.parametrize("density", [0.002, 0.02, 0.3])
def test_matches_scipy_on_random_masks_with_odd_chunks(res, density):
    rng = np.random.default_rng(int(density * 1000) + int(res[0]))
    f = rng.random((53, 41)) < density
    f[rng.integers(53), rng.integers(41)] = True
    g = projected_grid(53, 41, res)
    ref = scipy_edt(f, *res)
    assert_close_to(euclidean_distance(f, g), ref)
    for chunks in (16, (7, 13), (53, 41)):
        out = euclidean_distance(da.from_array(f, chunks=chunks), g)
        assert isinstance(out, da.Array) and out.chunks == da.from_array(f, chunks=chunks).chunks
        assert_close_to(out.compute(), ref)


def test_one_far_feature_several_chunks_away():
    # The only feature sits in the bottom-right chunk; the top-left chunk is 3 chunks away in each direction.
    f = np.zeros((70, 90), bool)
    f[66, 85] = True
    g = projected_grid(70, 90, (30.0, 20.0), chunk=16)
    out = euclidean_distance(da.from_array(f, chunks=16), g).compute()
    assert_close_to(out, scipy_edt(f, 30.0, 20.0))
    assert out[0, 0] == pytest.approx(math.hypot(66 * 20.0, 85 * 30.0), rel=1e-7)


def test_line_features_and_feature_cells_are_zero():
    f = np.zeros((40, 33), bool)
    f[5, :] = True
    f[:, 30] = True
    g = projected_grid(40, 33, (10.0, 10.0))
    out = euclidean_distance(da.from_array(f, chunks=(9, 16)), g).compute()
    assert np.all(out[f] == 0)
    assert out[20, 0] == pytest.approx(150.0)  # 15 rows below the horizontal line, 30 columns from the vertical
    assert_close_to(out, scipy_edt(f, 10.0, 10.0))


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    chunk=st.integers(1, 17),
    seed=st.integers(0, 2**16),
    dx=st.sampled_from([1.0, 7.5, 30.0]),
    dy=st.sampled_from([1.0, 12.0, 30.0]),
)
def test_property_matches_scipy(h, w, chunk, seed, dx, dy):
    rng = np.random.default_rng(seed)
    f = rng.random((h, w)) < rng.uniform(0.001, 0.2)
    f.flat[rng.integers(h * w)] = True
    g = projected_grid(h, w, (dx, dy))
    assert_close_to(euclidean_distance(da.from_array(f, chunks=chunk), g).compute(), scipy_edt(f, dx, dy))


def test_no_feature_anywhere_is_all_nan():
    g = projected_grid(20, 20)
    empty = np.zeros((20, 20), bool)
    assert np.all(np.isnan(euclidean_distance(empty, g)))
    assert np.all(np.isnan(euclidean_distance(da.from_array(empty, chunks=7), g).compute()))
    # With a cap, "no feature" means "at least the cap away": saturated, and no global dependency in the graph.
    capped = euclidean_distance(da.from_array(empty, chunks=7), g, max_m=100.0).compute()
    assert np.all(capped == np.float32(100.0))
    assert np.all(euclidean_distance(empty, g, max_m=100.0) == np.float32(100.0))
    big_cap = euclidean_distance(da.from_array(empty, chunks=7), g, max_m=1e6).compute()  # strip path
    assert np.all(big_cap == np.float32(1e6))


def test_integer_mask_nonzero_is_feature():
    f = np.zeros((10, 12), np.uint8)
    f[3, 4] = 7
    g = projected_grid(10, 12)
    assert_close_to(euclidean_distance(f, g), scipy_edt(f != 0, 30.0, 30.0))


# --- capped ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("max_m", [30.0, 100.0, 250.0, 2000.0])
@pytest.mark.parametrize("res", [(30.0, 30.0), (20.0, 45.0)])
def test_capped_equals_min_of_scipy_and_cap(max_m, res):
    rng = np.random.default_rng(int(max_m))
    f = rng.random((53, 41)) < 0.01
    f[40, 3] = True
    g = projected_grid(53, 41, res)
    expected = np.minimum(scipy_edt(f, *res), max_m)
    for arr in (f, da.from_array(f, chunks=16), da.from_array(f, chunks=(7, 13))):
        out = euclidean_distance(arr, g, max_m=max_m)
        out = out.compute() if isinstance(out, da.Array) else out
        assert out.dtype == np.float32 and out.shape == f.shape
        np.testing.assert_allclose(out, expected, rtol=1.2e-7)
        far = expected >= max_m
        assert np.all(out[far] == np.float32(max_m))  # exactly the cap, not a rounding of it


def test_capped_keeps_the_caller_chunks():
    f = np.zeros((53, 41), bool)
    f[10, 10] = True
    arr = da.from_array(f, chunks=(7, 13))
    for max_m in (150.0, 2000.0):  # halo of 5 cells (smaller than the chunks) and of 67 (larger than the grid)
        out = euclidean_distance(arr, projected_grid(53, 41), max_m=max_m)
        assert out.chunks == arr.chunks


# --- errors ----------------------------------------------------------------------------------------------
def test_cap_smaller_than_a_cell_is_a_config_error():
    g = projected_grid(10, 10, (30.0, 30.0))
    with pytest.raises(ConfigError, match=r"max_m = 29.9 m is smaller than one cell \(30 x 30 m\)"):
        euclidean_distance(np.zeros((10, 10), bool), g, max_m=29.9)
    for bad in (0.0, -5.0, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="max_m must be a positive number of metres"):
            euclidean_distance(np.zeros((10, 10), bool), g, max_m=bad)


def test_geographic_grid_is_a_config_error():
    g = Grid.from_bounds((96.0, 35.0, 96.1, 35.1), 0.01, "EPSG:4326", chunk_size=16)
    with pytest.raises(ConfigError, match="needs a projected grid.*geographic"):
        euclidean_distance(np.zeros(g.shape, bool), g)


def test_wrong_shape_or_dtype_is_a_config_error():
    g = projected_grid(10, 10)
    with pytest.raises(ConfigError, match=r"grid's shape \(10, 10\)"):
        euclidean_distance(np.zeros((9, 10), bool), g)
    with pytest.raises(ConfigError, match="boolean"):
        euclidean_distance(np.zeros((10, 10), np.float32), g)


def test_feet_grid_distances_are_in_metres():
    # EPSG:2277 (Texas Central, US survey feet): 100 ft cells are 30.48006 m.
    g = projected_grid(12, 14, (100.0, 100.0), crs="EPSG:2277")
    f = np.zeros((12, 14), bool)
    f[0, 0] = True
    ft = g.linear_unit_m
    assert ft == pytest.approx(0.3048006, rel=1e-6)
    assert_close_to(euclidean_distance(f, g), scipy_edt(f, 100 * ft, 100 * ft))


def test_tall_grids_use_the_wide_column_pass():
    """Grids of 65,535 rows or more do not fit the uint16 column pass: the int32 path gives scipy's answer."""
    from scipy import ndimage

    from rasters.distance import _column_pass, euclidean_distance

    h = 65_600
    feats = np.zeros((h, 3), bool)
    feats[10, 1] = True
    feats[h - 5, 0] = True
    assert _column_pass(feats).dtype == np.int32 and _column_pass(feats[:1000]).dtype == np.uint16
    g = Grid.from_bounds((0, 0, 3 * 30.0, h * 30.0), 30.0, "EPSG:32647", chunk_size=1024)
    ours = euclidean_distance(feats, g)
    ref = ndimage.distance_transform_edt(~feats, sampling=(30.0, 30.0)).astype(np.float32)
    np.testing.assert_allclose(ours, ref, rtol=1e-6)


@pytest.mark.parametrize("min_strip", [1, 7, 256])
def test_exact_dask_path_with_many_narrow_strips(monkeypatch, min_strip):
    """The strip width of the two passes (at least MIN_STRIP cells) never changes the exact answer: with
    1- and 7-cell strips the column-to-row rechunk is all-to-all over many pieces."""
    import dask.array as da
    from scipy import ndimage

    import rasters.distance as dist

    monkeypatch.setattr(dist, "MIN_STRIP", min_strip)
    rng = np.random.default_rng(5)
    feats = rng.random((53, 41)) < 0.01
    feats[0, 0] = True
    g = Grid.from_bounds((0, 0, 41 * 30.0, 53 * 20.0), (30.0, 20.0), "EPSG:32647", chunk_size=16)
    ours = dist.euclidean_distance(da.from_array(feats, chunks=16), g).compute()
    ref = ndimage.distance_transform_edt(~feats, sampling=(20.0, 30.0)).astype(np.float32)
    np.testing.assert_allclose(ours, ref, rtol=1e-6)
