"""Zonal statistics: exact partial-cell coverage, area-weighted statistics, overlapping zones, chunk invariance."""

from __future__ import annotations

import dask.array as da
import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine

from rasters.cost import travel_time
from rasters.errors import ConfigError
from rasters.grid import Grid
from suitability.carrying import row_cell_areas_m2
from suitability.zonal import coverage_fractions, isochrone_zones, point_values, zonal_stats, zones_from_points

CRS = "EPSG:32647"  # UTM 47N: a projected grid in metres


def _grid(n: int = 4, res: float = 10.0, chunk: int = 16, top: float = 40.0) -> Grid:
    return Grid(CRS, Affine(res, 0, 0, 0, -res, top), n, n, chunk)


def _zones(*geoms, **cols) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(cols or {"id": list(range(len(geoms)))}, geometry=list(geoms), crs=CRS)


def _shapely_fractions(poly, grid: Grid) -> np.ndarray:
    """Independent reference: area(poly ∩ cell) / area(cell) by GEOS for every cell."""
    r, c = np.mgrid[0:grid.height, 0:grid.width]
    t = grid.transform
    boxes = shapely.box(t.c + c * t.a, t.f + (r + 1) * t.e, t.c + (c + 1) * t.a, t.f + r * t.e)
    return shapely.area(shapely.intersection(boxes, poly)) / (t.a * -t.e)


def test_coverage_matches_geos_for_random_polygons_with_holes_and_parts():
    grid = Grid(CRS, Affine(10, 0, 0, 0, -10, 300), 30, 30, 16)
    rng = np.random.default_rng(7)
    for trial in range(40):
        pts = rng.uniform(-30, 330, (rng.integers(3, 10), 2))
        poly = shapely.convex_hull(shapely.MultiPoint(pts))
        if trial % 2:
            poly = poly.difference(shapely.Point(poly.centroid).buffer(rng.uniform(5, 40)))
        if trial % 3 == 0:
            poly = shapely.union(poly, shapely.Point(rng.uniform(0, 300, 2)).buffer(rng.uniform(3, 30)))
        r, c, f = coverage_fractions(poly, grid)
        got = np.zeros(grid.shape)
        got[r, c] = f
        np.testing.assert_allclose(got, _shapely_fractions(poly, grid), atol=1e-10)


def test_partial_cells_hand_computed():
    # 4 x 4 grid of 10 m cells; values by column 1, 2, 3, 4. The zone x 5..25, y 10..30 covers rows 1-2 and half
    # of column 0, all of column 1, half of column 2: mean = (0.5*1 + 1*2 + 0.5*3) / 2 = 2, area = 4 * 100 m².
    grid = _grid()
    v = np.tile(np.array([1, 2, 3, 4], np.float32), (4, 1))
    t = zonal_stats(_zones(shapely.box(5, 10, 25, 30)), {"v": v}, grid, quantiles="exact")
    assert t["area_km2"].iloc[0] == pytest.approx(400 / 1e6)
    assert t["v_mean"].iloc[0] == pytest.approx(2.0)
    # weights 1:2:1 on values 1, 2, 3 -> weighted CDF 0.25, 0.75, 1: median 2, p90 3
    assert t["v_median"].iloc[0] == 2.0
    assert t["v_p90"].iloc[0] == 3.0
    assert (t["v_min"].iloc[0], t["v_max"].iloc[0]) == (1.0, 3.0)
    assert "exact area-weighted" in t["zonal_rule"].iloc[0]


def test_triangle_cuts_a_cell_diagonally():
    # right triangle over cell (row 3, col 0) with legs 10 m: half the cell, so the area is 50 m² and the mean is
    # that cell's value even with other values around.
    grid = _grid()
    v = np.arange(16, dtype=np.float32).reshape(4, 4)
    t = zonal_stats(_zones(shapely.Polygon([(0, 0), (10, 0), (0, 10)])), {"v": v}, grid)
    assert t["area_km2"].iloc[0] == pytest.approx(50 / 1e6)
    assert t["v_mean"].iloc[0] == pytest.approx(12.0)


def test_excluded_share_and_class_areas_hand_computed():
    grid = _grid()
    v = np.ones((4, 4), np.float32)
    v[1, 1] = np.nan  # inside the zone fully
    v[1, 0] = np.nan  # half inside
    cls = np.zeros((4, 4), np.uint8)
    cls[:, 0] = 1
    cls[:, 1] = 2
    cls[:, 2] = 3
    t = zonal_stats(_zones(shapely.box(5, 10, 25, 30)), {"v": v}, grid, classes=cls,
                    class_names={1: "low", 2: "mid", 3: "high"})
    # zone weight: col0 2 * 50, col1 2 * 100, col2 2 * 50 = 400 m²; NaN weight 100 + 50 = 150
    assert t["v_excluded_share"].iloc[0] == pytest.approx(150 / 400)
    assert t["low_km2"].iloc[0] == pytest.approx(100 / 1e6)
    assert t["mid_km2"].iloc[0] == pytest.approx(200 / 1e6)
    assert t["high_km2"].iloc[0] == pytest.approx(100 / 1e6)


def test_overlapping_zones_are_measured_independently():
    grid = _grid()
    v = np.tile(np.array([1, 2, 3, 4], np.float32), (4, 1))
    big, small = shapely.box(0, 0, 40, 40), shapely.box(20, 0, 40, 40)
    t = zonal_stats(_zones(big, small, big), {"v": v}, grid)
    assert t["v_mean"].tolist() == pytest.approx([2.5, 3.5, 2.5])
    assert t["area_km2"].tolist() == pytest.approx([1600e-6, 800e-6, 1600e-6])


def test_exact_quantiles_match_numpy_weighted_inverted_cdf():
    grid = Grid(CRS, Affine(10, 0, 0, 0, -10, 300), 30, 30, 16)
    rng = np.random.default_rng(3)
    v = rng.random(grid.shape).astype(np.float32)
    poly = shapely.Point(140, 160).buffer(87)
    t = zonal_stats(_zones(poly), {"v": v}, grid, quantiles="exact", percentile=90)
    f = _shapely_fractions(poly, grid).ravel()
    keep = f > 1e-9
    vals, w = v.ravel()[keep].astype(np.float64), f[keep]
    assert t["v_median"].iloc[0] == np.quantile(vals, 0.5, weights=w, method="inverted_cdf")
    assert t["v_p90"].iloc[0] == np.quantile(vals, 0.9, weights=w, method="inverted_cdf")
    assert t["v_mean"].iloc[0] == pytest.approx(np.average(vals, weights=w), rel=1e-12)


def test_histogram_quantiles_within_one_bin_and_exact_for_a_constant_zone():
    grid = Grid(CRS, Affine(10, 0, 0, 0, -10, 300), 30, 30, 16)
    rng = np.random.default_rng(4)
    v = rng.random(grid.shape).astype(np.float32)
    v[:5, :5] = 0.3
    zones = _zones(shapely.Point(150, 150).buffer(100), shapely.box(0, 260, 50, 300))
    exact = zonal_stats(zones, {"v": v}, grid, quantiles="exact")
    hist = zonal_stats(zones, {"v": v}, grid, bins=64, ranges={"v": (0, 1)})
    assert abs(hist["v_median"].iloc[0] - exact["v_median"].iloc[0]) <= 1 / 64
    assert abs(hist["v_p90"].iloc[0] - exact["v_p90"].iloc[0]) <= 1 / 64
    assert hist["v_median"].iloc[1] == pytest.approx(0.3)
    assert hist["v_p90"].iloc[1] == pytest.approx(0.3)
    assert "64-bin" in hist["zonal_rule"].iloc[0]


@pytest.mark.parametrize("quantiles", ["histogram", "exact"])
def test_chunk_invariance(quantiles):
    grid = Grid(CRS, Affine(10, 0, 0, 0, -10, 640), 64, 64, 16)
    rng = np.random.default_rng(0)
    v = rng.random(grid.shape).astype(np.float32)
    v[rng.random(grid.shape) < 0.1] = np.nan
    cls = rng.integers(0, 4, grid.shape).astype(np.uint8)
    zones = _zones(shapely.Point(200, 300).buffer(150), shapely.Point(300, 300).buffer(120),
                   shapely.box(-50, -50, 100, 100), shapely.Point(5000, 5000).buffer(10))
    tables = [zonal_stats(zones, {"v": da.from_array(v, chunks=ch)}, grid, classes=cls, n_classes=3,
                          quantiles=quantiles, ranges={"v": (0, 1)}).drop(columns="geometry")
              for ch in (64, 16, 23)]
    num = tables[0].select_dtypes("number").to_numpy()
    for other in tables[1:]:
        np.testing.assert_allclose(other.select_dtypes("number").to_numpy(), num, rtol=1e-12, equal_nan=True)
    # the zone off the grid: no area, no statistics
    assert tables[0]["area_km2"].iloc[3] == 0 and np.isnan(tables[0]["v_mean"].iloc[3])


def test_geographic_grid_weights_by_row_area():
    grid = Grid("EPSG:4326", Affine(1, 0, 90, 0, -1, 40), 4, 4, 16)
    v = np.array([[1], [2], [3], [4]], np.float32) * np.ones((1, 4), np.float32)
    t = zonal_stats(gpd.GeoDataFrame(geometry=[shapely.box(90, 36, 91, 40)], crs="EPSG:4326"), {"v": v}, grid)
    areas = row_cell_areas_m2(grid)
    assert t["area_km2"].iloc[0] == pytest.approx(areas.sum() / 1e6)
    assert t["v_mean"].iloc[0] == pytest.approx(np.dot(areas, [1, 2, 3, 4]) / areas.sum())


def test_zones_from_points_are_circles_of_the_radius():
    grid = Grid(CRS, Affine(100, 0, 0, 0, -100, 10_000), 100, 100, 32)
    pts = gpd.GeoDataFrame({"name": ["a", "b"], "r": [1000.0, 2000.0]},
                           geometry=[shapely.Point(5000, 5000), shapely.Point(3000, 3000)], crs=CRS)
    zones = zones_from_points(pts, "r", grid)
    n = 4 * 64  # sides of the polygon: area of a regular n-gon inscribed in the circle
    expected = 0.5 * n * np.sin(2 * np.pi / n) * np.array([1000.0, 2000.0]) ** 2
    t = zonal_stats(zones, {"one": np.ones(grid.shape, np.float32)}, grid)
    np.testing.assert_allclose(t["area_km2"].to_numpy() * 1e6, expected, rtol=1e-9)
    assert t["name"].tolist() == ["a", "b"]


def test_isochrone_zone_is_the_set_of_cells_within_the_time():
    grid = Grid(CRS, Affine(100, 0, 0, 0, -100, 3000), 30, 30, 16)
    rng = np.random.default_rng(2)
    fric = rng.uniform(0.01, 0.05, grid.shape)  # minutes per metre
    fric[10, 5:25] = np.nan  # a barrier
    pts = gpd.GeoDataFrame({"name": ["t"]}, geometry=[shapely.Point(1550, 1550)], crs=CRS)
    zones = isochrone_zones(pts, fric, grid, 60)
    reach = np.isfinite(travel_time(fric, [(14, 15)], grid=grid, max_minutes=60).minutes)
    t = zonal_stats(zones, {"reach": reach.astype(np.float32)}, grid)
    assert t["area_km2"].iloc[0] == pytest.approx(reach.sum() * 0.01)
    assert t["reach_min"].iloc[0] == 1.0


def test_point_values():
    grid = _grid()
    v = np.arange(16, dtype=np.float32).reshape(4, 4)
    pts = gpd.GeoDataFrame(geometry=[shapely.Point(15, 35), shapely.Point(100, 100)], crs=CRS)
    got = point_values({"v": da.from_array(v, chunks=2)}, pts, grid)["v"].to_numpy()
    assert got[0] == 1.0 and np.isnan(got[1])


def test_bad_arguments_are_config_errors():
    grid = _grid()
    v = np.ones((4, 4), np.float32)
    zones = _zones(shapely.box(0, 0, 10, 10))
    with pytest.raises(ConfigError, match="quantiles must be one of histogram, exact"):
        zonal_stats(zones, {"v": v}, grid, quantiles="exakt")
    with pytest.raises(ConfigError, match="layer 'v' has shape"):
        zonal_stats(zones, {"v": np.ones((3, 3))}, grid)
    with pytest.raises(ConfigError, match="ranges: no layer 'w'"):
        zonal_stats(zones, {"v": v}, grid, ranges={"w": (0, 1)})
    with pytest.raises(ConfigError, match="polygon zones"):
        zonal_stats(_zones(shapely.Point(5, 5)), {"v": v}, grid)
    with pytest.raises(ConfigError, match="radius_m must be > 0"):
        zones_from_points(gpd.GeoDataFrame(geometry=[shapely.Point(5, 5)], crs=CRS), -1, grid)
