"""rasters.terrain against independent references: closed-form planes and paraboloids, Horn worked by hand
(ESRI's published 3×3 examples), gdaldem itself when it is installed, and scipy's max/min filters."""

from __future__ import annotations

import math
import shutil
import subprocess

import dask.array as da
import numpy as np
import pytest
from scipy import ndimage

from rasters.errors import ConfigError
from rasters.grid import Grid
from rasters.terrain import _atan_nonneg, aspect, relief, slope

UTM = "EPSG:32647"


def projected_grid(h: int, w: int, res=(10.0, 10.0), chunk: int = 16) -> Grid:
    # Origin on whole multiples of the resolution, so from_bounds keeps exactly h x w cells.
    x0, y0 = 30000 * res[0], 30000 * res[1]
    g = Grid.from_bounds((x0, y0, x0 + w * res[0], y0 + h * res[1]), res, UTM, chunk_size=chunk)
    assert g.shape == (h, w)
    return g


def deg(x: float) -> np.float32:
    return np.float32(math.degrees(x))


# --- slope ------------------------------------------------------------------------------------------------
def test_horn_by_hand_esri_slope_example():
    # ESRI "How Slope works": cell 5 m, dz/dx = ((50+60+10)-(50+60+8))/40 = 0.05,
    # dz/dy = ((8+20+10)-(50+90+50))/40 = -3.8, slope = atan(sqrt(0.05² + 3.8²)) = 75.2576°.
    z = np.array([[50, 45, 50], [30, 30, 30], [8, 10, 10]], np.float32)
    g = projected_grid(3, 3, (5.0, 5.0))
    s = slope(z, g)
    assert s[1, 1] == pytest.approx(75.25762, abs=1e-4)
    assert s[1, 1] == deg(math.atan(math.hypot(0.05, 3.8)))
    assert slope(z, g, "percent")[1, 1] == pytest.approx(100 * math.hypot(0.05, 3.8), rel=1e-6)


def test_tilted_plane_gives_atan_of_gradient_everywhere_but_the_gdal_corners():
    # z = 3·col + 2·row metres on 10 m cells: |∇z| = hypot(0.3, 0.2) exactly; integer z is exact in float32.
    h, w = 23, 19
    rows, cols = np.mgrid[0:h, 0:w]
    z = (3 * cols + 2 * rows).astype(np.float32)
    g = projected_grid(h, w)
    s = slope(z, g)
    expected = deg(math.atan(math.hypot(0.3, 0.2)))
    corners = np.zeros((h, w), bool)
    corners[[0, 0, -1, -1], [0, -1, 0, -1]] = True
    # gdaldem extrapolates off-grid neighbours linearly (exact on a plane) ...
    assert np.all(s[~corners] == expected)
    # ... except at the 4 corners, where the off-grid column repeats the centre: the x gradient is halved.
    assert np.all(s[corners] == deg(math.atan(math.hypot(0.15, 0.2))))
    pct = slope(z, g, units="percent")
    assert np.allclose(pct[~corners], 100 * math.hypot(0.3, 0.2), rtol=1e-6)


def test_rectangular_cells_use_each_axis_size():
    h, w = 9, 11
    rows, cols = np.mgrid[0:h, 0:w]
    z = (4 * cols + 6 * rows).astype(np.float32)  # 4 m per 20 m column, 6 m per 30 m row
    s = slope(z, projected_grid(h, w, (20.0, 30.0)))
    assert s[4, 5] == deg(math.atan(math.hypot(4 / 20, 6 / 30)))


def test_paraboloid_interior_is_exact():
    # z = (x² + y²)/100 with x, y in metres from the centre and 10 m cells: z = dc² + dr² (integers).
    # Horn's central difference is exact on quadratics: dz/dx = x/50 = dc/5, so slope = atan(hypot(dc, dr)/5).
    h, w = 21, 25
    dr, dc = np.mgrid[0:h, 0:w]
    dr, dc = dr - 10, dc - 12
    z = (dc**2 + dr**2).astype(np.float32)
    s = slope(z, projected_grid(h, w))
    expected = np.degrees(np.arctan(np.hypot(dc, dr) / 5.0)).astype(np.float32)
    np.testing.assert_allclose(s[1:-1, 1:-1], expected[1:-1, 1:-1], rtol=2e-7, atol=1e-6)
    assert s[10, 12] == 0.0


def test_nan_centre_is_nan_and_nan_neighbour_takes_centre_value():
    z = np.arange(25, dtype=np.float32).reshape(5, 5) * np.float32(3)
    g = projected_grid(5, 5)
    hole = z.copy()
    hole[2, 2] = np.nan
    s = slope(hole, g)
    assert np.isnan(s[2, 2]) and np.count_nonzero(np.isnan(s)) == 1
    # Cell (1, 1) sees the hole at its south-east; by gdaldem's rule the hole takes the centre value z[1, 1].
    win = z[0:3, 0:3].copy()
    win[2, 2] = z[1, 1]
    dzdx = ((win[0, 2] + 2 * win[1, 2] + win[2, 2]) - (win[0, 0] + 2 * win[1, 0] + win[2, 0])) / (8 * 10.0)
    dzdy = ((win[2, 0] + 2 * win[2, 1] + win[2, 2]) - (win[0, 0] + 2 * win[0, 1] + win[0, 2])) / (8 * 10.0)
    assert s[1, 1] == pytest.approx(math.degrees(math.atan(math.hypot(dzdx, dzdy))), abs=1e-5)


def test_geographic_grid_uses_metres_per_row():
    # A surface with gradients 0.1 (east) and 0.05 (north) m/m on a 0.01° grid near 36°N, built from the
    # ellipsoidal cell sizes of each row. Meridians converge, so "metres east of column c0" is planar only
    # along column c0 itself: check there. Over these 53 rows the cell width changes by ~0.7 %, so a single
    # grid-wide width (or degrees instead of metres) would miss by far more than the tolerance.
    h, w, c0 = 53, 41, 20
    g = Grid.from_bounds((96.0, 35.5, 96.0 + w * 0.01, 35.5 + h * 0.01), 0.01, "EPSG:4326", chunk_size=16)
    assert g.shape == (h, w) and g.is_geographic
    ew, ns = g.cell_size_m_rows()
    x_m = (np.arange(w)[None, :] - c0) * ew[:, None]
    y_m = -(np.cumsum(ns) - ns / 2 - ns[0] / 2)[:, None]  # metres north of row 0's centre
    z = (0.1 * x_m + 0.05 * y_m).astype(np.float32)
    s = slope(da.from_array(z, chunks=16), g).compute()
    np.testing.assert_allclose(s[1:-1, c0], math.degrees(math.atan(math.hypot(0.1, 0.05))), atol=2e-3)
    a = aspect(z, g)
    # Rising to the east and to the north: faces south-west, azimuth 180 + atan2(0.1, 0.05).
    np.testing.assert_allclose(a[1:-1, c0], 180 + math.degrees(math.atan2(0.1, 0.05)), atol=2e-2)
    # The same numbers read as a projected grid of 0.01 "metre" cells would be nearly vertical.
    assert slope(z, projected_grid(h, w, (0.01, 0.01)))[h // 2, c0] > 89


def test_cephes_atan_matches_libm_after_float32_rounding():
    rng = np.random.default_rng(0)
    t = np.concatenate([10 ** rng.uniform(-8, 4, 20000), rng.uniform(0, 3, 20000), [0.0, 0.66, 2.414213562373095]])
    ours = np.array([np.float32(_atan_nonneg(x) * (180 / math.pi)) for x in t])
    ref = np.array([np.float32(math.atan(x) * (180 / math.pi)) for x in t])
    assert np.array_equal(ours, ref)


# --- aspect -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("drow", "dcol", "expected"),
    [
        (1, 0, 0.0),  # rising to the south: faces north
        (0, -1, 90.0),  # rising to the west: faces east
        (-1, 0, 180.0),  # rising to the north: faces south
        (0, 1, 270.0),  # rising to the east: faces west
        (1, -1, 45.0),  # rising to the south-west: faces north-east
    ],
)
def test_aspect_of_planes(drow, dcol, expected):
    rows, cols = np.mgrid[0:12, 0:10]
    z = (5 * (drow * rows + dcol * cols)).astype(np.float32)
    a = aspect(da.from_array(z, chunks=5), projected_grid(12, 10)).compute()
    assert np.all(a[1:-1, 1:-1] == np.float32(expected))


def test_aspect_by_hand_esri_example_and_flat_is_nan():
    # ESRI "How Aspect works": dz/dx = -8.125, dz/dy = -0.375, aspect = 92.64°.
    z = np.array([[101, 92, 85], [101, 92, 85], [101, 91, 84]], np.float32)
    a = aspect(z, projected_grid(3, 3, (5.0, 5.0)))
    assert a[1, 1] == pytest.approx(90 - math.degrees(math.atan2(-0.375, 8.125)), abs=1e-4)
    assert a[1, 1] == pytest.approx(92.64, abs=0.01)
    flat = aspect(np.full((4, 4), 7.0, np.float32), projected_grid(4, 4))
    assert np.all(np.isnan(flat))


def test_aspect_on_rectangular_cells_is_the_true_direction():
    # +1 m per 20 m column (east) and per 40 m row (south): ∇z = (0.05 east, -0.025 north), so the downhill
    # vector is (-0.05 east, +0.025 north), azimuth atan2(-0.05, 0.025) = 296.57°. gdaldem's size-free formula
    # would say 315° (the diagonal), which is wrong on these cells.
    rows, cols = np.mgrid[0:7, 0:7]
    z = (cols + rows).astype(np.float32)
    a = aspect(z, projected_grid(7, 7, (20.0, 40.0)))
    expected = math.degrees(math.atan2(-0.05, 0.025)) % 360
    assert a[3, 3] == pytest.approx(expected, abs=1e-4)


# --- chunking, degenerate shapes, errors -------------------------------------------------------------------
@pytest.mark.parametrize("func", [slope, aspect, lambda z, g: relief(z, g, 5), lambda z, g: relief(z, g, 4)])
def test_chunk_invariance_bit_identical(func):
    rng = np.random.default_rng(11)
    z = (1000 + np.cumsum(rng.normal(0, 3, (53, 41)), axis=1)).astype(np.float32)
    z[rng.random(z.shape) < 0.04] = np.nan
    z[0, 0] = z[-1, 5] = z[16, 16] = np.nan  # holes on the outer edge and on a chunk corner
    g = projected_grid(53, 41, chunk=16)
    one = func(z, g)
    for chunks in (16, (7, 13), 53):
        many = func(da.from_array(z, chunks=chunks), g)
        assert isinstance(many, da.Array) and many.chunks == da.from_array(z, chunks=chunks).chunks
        out = many.compute()
        assert out.dtype == np.float32
        assert np.array_equal(out, one, equal_nan=True)


def test_single_row_or_column_is_all_nan():
    for shape in ((1, 6), (6, 1)):
        g = projected_grid(*shape)
        assert np.all(np.isnan(slope(np.ones(shape, np.float32), g)))


def test_errors():
    g = projected_grid(5, 5)
    with pytest.raises(ConfigError, match="units"):
        slope(np.zeros((5, 5), np.float32), g, units="radians")
    with pytest.raises(ConfigError, match=r"grid's shape \(5, 5\)"):
        slope(np.zeros((4, 5), np.float32), g)
    with pytest.raises(ConfigError, match="window_cells"):
        relief(np.zeros((5, 5), np.float32), g, 0)


# --- relief -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [1, 3, 4, 7])
def test_relief_matches_scipy_filters(size):
    rng = np.random.default_rng(size)
    z = rng.normal(2000, 50, (37, 29)).astype(np.float32)
    g = projected_grid(37, 29, chunk=16)
    expected = ndimage.maximum_filter(z, size) - ndimage.minimum_filter(z, size)
    np.testing.assert_array_equal(relief(da.from_array(z, chunks=16), g, size).compute(), expected)


def test_relief_skips_nan_cells():
    z = np.array([[1, 2, 3], [4, np.nan, 6], [7, 8, 100]], np.float32)
    r = relief(z, projected_grid(3, 3), 3)
    assert np.isnan(r[1, 1])
    assert r[0, 0] == 3  # window {1, 2, 4} (the NaN is skipped)
    assert r[2, 2] == 94  # window {6, 8, 100}
    assert r[0, 2] == 4  # window {2, 3, 6}


# --- gdaldem itself ---------------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("gdaldem") is None, reason="gdaldem (GDAL command-line tools) is not on PATH")
@pytest.mark.parametrize(
    ("kind", "args", "units"), [("slope", [], "degrees"), ("slope", ["-p"], "percent"), ("aspect", [], None)]
)
def test_bit_identical_to_gdaldem_compute_edges(tmp_path, kind, args, units):
    rasterio = pytest.importorskip("rasterio")
    h, w = 53, 41
    g = projected_grid(h, w, (30.0, 30.0), chunk=16)
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:h, 0:w]
    z = (3000 + 40 * np.sin(xx / 5.0) * np.cos(yy / 7.0) + rng.normal(0, 3, (h, w))).astype(np.float32)
    z[rng.random((h, w)) < 0.05] = np.nan
    z[0, 0] = z[1, w - 1] = z[h - 1, 20] = np.nan
    src, dst = tmp_path / "dem.tif", tmp_path / "out.tif"
    profile = dict(driver="GTiff", width=w, height=h, count=1, dtype="float32", crs=g.rio_crs, transform=g.transform)
    with rasterio.open(src, "w", nodata=np.nan, **profile) as ds:
        ds.write(z, 1)
    subprocess.run(["gdaldem", kind, str(src), str(dst), "-compute_edges", "-q", *args], check=True)
    with rasterio.open(dst) as ds:
        ref = ds.read(1)
        ref[ref == ds.nodata] = np.nan  # gdaldem writes -9999 for nodata and for flat aspect
    dz = da.from_array(z, chunks=16)
    ours = (slope(dz, g, units) if kind == "slope" else aspect(dz, g)).compute()
    assert np.array_equal(ours, ref, equal_nan=True)
