"""The one-pass numba kernels against the numpy they replace: bit-identical weighted accumulation, and block
statistics equal to numpy's to rounding (count, min and max exactly)."""

from __future__ import annotations

import numpy as np
import pytest

from rasters.kernels import accumulate_weighted, block_moments


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_accumulate_weighted_is_numpy_bit_for_bit(dtype):
    rng = np.random.default_rng(3)
    acc = rng.normal(size=(67, 45))
    x = (rng.normal(size=(67, 90)) * 1e3).astype(dtype)[:, ::2]  # a non-contiguous view, as dask blocks can be
    x[3, 4], x[10, :] = np.nan, np.inf
    want = acc + np.multiply(x, 0.1234567891, dtype=np.float64)
    accumulate_weighted(acc, x, 0.1234567891)
    assert np.array_equal(acc, want, equal_nan=True)


def test_accumulate_weighted_broadcasts_like_numpy():
    acc = np.zeros((4, 5))
    accumulate_weighted(acc, np.arange(5, dtype=np.float32), 2.0)  # a row broadcast over the rows: numpy's path
    np.testing.assert_array_equal(acc, np.tile(np.arange(5) * 2.0, (4, 1)))


@pytest.mark.parametrize("dtype,nodata", [(np.float32, float("nan")), (np.uint8, 0), (np.int16, -9999),
                                          (np.uint8, None)])
def test_block_moments_against_numpy(dtype, nodata):
    rng = np.random.default_rng(5)
    a = (rng.random((100, 70)) * 200).astype(dtype)
    if np.issubdtype(dtype, np.floating):
        a[::7, ::3] = np.nan
        valid = a[~np.isnan(a)].astype(np.float64)
    elif nodata is not None:
        a[::5, ::2] = nodata
        valid = a[a != nodata].astype(np.float64)
    else:
        valid = a.ravel().astype(np.float64)
    n, s, ss, lo, hi = block_moments(a, nodata)
    assert n == valid.size and lo == valid.min() and hi == valid.max()
    assert s == pytest.approx(valid.sum(), rel=1e-12) and ss == pytest.approx(np.dot(valid, valid), rel=1e-12)


def test_block_moments_of_an_empty_block():
    np.testing.assert_array_equal(block_moments(np.full((3, 3), np.nan, np.float32), float("nan")),
                                  [0, 0, 0, np.inf, -np.inf])
