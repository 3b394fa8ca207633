"""Locate regions on small synthetic grids whose best answer is known: two clear hills and spacing rules."""

from __future__ import annotations

import dask.array as da
import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine

from rasters.errors import ConfigError
from rasters.grid import Grid
from suitability.regions import locate_regions

CRS = "EPSG:32647"
# 200 x 200 cells of 100 m: hill A peaks at cell (50, 50) = (5.05 km, 14.95 km), hill B (lower, narrower) at
# cell (150, 150) = (15.05 km, 4.95 km). Hill A is broad enough to hold two 4 km² regions that both beat B.
GRID = Grid(CRS, Affine(100, 0, 0, 0, -100, 20_000), 200, 200, 64)
A_XY, B_XY = (5050.0, 14950.0), (15050.0, 4950.0)


def _hills() -> np.ndarray:
    yy, xx = np.mgrid[0:200, 0:200]
    a = np.exp(-((yy - 50) ** 2 + (xx - 50) ** 2) / (2 * 25**2))
    b = 0.8 * np.exp(-((yy - 150) ** 2 + (xx - 150) ** 2) / (2 * 15**2))
    return (a + b).astype(np.float32)


def _centroids(t: gpd.GeoDataFrame) -> np.ndarray:
    c = t.geometry.centroid
    return np.column_stack([c.x, c.y])


def _near(xy, target, km: float) -> bool:
    return np.hypot(xy[0] - target[0], xy[1] - target[1]) <= km * 1000


def test_without_spacing_both_regions_sit_on_the_best_hill():
    t = locate_regions(_hills(), GRID, 2, region_area_km2=(1, 4), compactness=0.5)
    assert len(t) == 2
    assert all(_near(c, A_XY, 4) for c in _centroids(t))


def test_spacing_rule_forbids_two_regions_on_one_hill():
    t = locate_regions(_hills(), GRID, 2, region_area_km2=(1, 4), min_distance_km=8, compactness=0.5)
    c = _centroids(t)
    assert _near(c[0], A_XY, 1) and _near(c[1], B_XY, 1)
    assert t["area_km2"].tolist() == pytest.approx([4.0, 4.0])
    # each region takes the 400 best cells reachable around its hill top: the disc of the 400 highest cells
    s = _hills()
    assert t["suitability_mean"].iloc[0] == pytest.approx(np.sort(s[:100, :100].ravel())[-400:].mean(), rel=0.01)
    assert t["nearest_region_km"].iloc[0] == pytest.approx(np.hypot(10, 10), abs=0.2)


def test_max_distance_keeps_the_second_region_near_the_first():
    t = locate_regions(_hills(), GRID, 2, region_area_km2=(1, 4), min_distance_km=3, max_distance_km=5)
    c = _centroids(t)
    assert _near(c[0], A_XY, 1)
    # the rule holds between seeds (module docstring); the second region is on hill A's flank, not on hill B
    seeds = t[["seed_x", "seed_y"]].to_numpy()
    d = np.hypot(*(seeds[1] - seeds[0])) / 1000
    assert 3 <= d <= 5 and not _near(c[1], B_XY, 5) and _near(c[1], A_XY, 5)


def test_avoided_town_and_exclusions_are_respected():
    s = _hills()
    s[60:70, :] = np.nan  # an excluded band across hill A
    town = gpd.GeoDataFrame(geometry=[shapely.Point(*A_XY)], crs=CRS)
    t = locate_regions(s, GRID, 3, region_area_km2=(1, 3), min_distance_km=2, avoid=town, avoid_km=2)
    assert len(t) == 3
    for geom in t.geometry:
        assert geom.distance(shapely.Point(*A_XY)) >= 2000 - 100 * 0.75  # cells whose centre keeps 2 km
        assert not geom.intersects(shapely.box(0, 20_000 - 70 * 100 + 1, 20_000, 20_000 - 60 * 100 - 1))
    assert t["suitability_excluded_share"].max() == 0


def test_grow_from_town_and_total_area():
    town = gpd.GeoDataFrame({"name": ["甘都"]}, geometry=[shapely.Point(10_050, 10_050)], crs=CRS)
    t = locate_regions(_hills(), GRID, 5, region_area_km2=(1, 4), total_area_km2=6, grow_from=town,
                       min_distance_km=8)
    # target per region = clamp(6 / 5, 1, 4) = 1.2 km² = 120 cells; stops once 6 km² are placed
    assert t["origin"].iloc[0] == "grow_from:甘都"
    assert t.geometry.iloc[0].contains(shapely.Point(10_050, 10_050))
    assert t["area_km2"].tolist() == pytest.approx([1.2] * 5)
    assert t.attrs["found_regions"] == 5


def test_many_regions_do_not_overlap_and_are_deterministic_on_any_chunking():
    s = _hills() + 0.1
    a = locate_regions(s, GRID, 40, region_area_km2=(0.5, 1), min_distance_km=1.5, seed=3)
    b = locate_regions(da.from_array(s, chunks=37), GRID, 40, region_area_km2=(0.5, 1), min_distance_km=1.5,
                       seed=3)
    assert len(a) == 40
    assert all(ga.equals(gb) for ga, gb in zip(a.geometry, b.geometry, strict=True))
    union = shapely.union_all(a.geometry.values)
    assert union.area == pytest.approx(a.geometry.area.sum())
    seeds = a[["seed_x", "seed_y"]].to_numpy()
    d = np.hypot(seeds[:, None, 0] - seeds[None, :, 0], seeds[:, None, 1] - seeds[None, :, 1])
    assert d[np.triu_indices(40, 1)].min() >= 1500


def test_bad_parameters():
    with pytest.raises(ConfigError, match="region_area_km2 min 5 exceeds max 4"):
        locate_regions(_hills(), GRID, 2, region_area_km2=(5, 4))
    with pytest.raises(ConfigError, match="n_regions must be an integer >= 1"):
        locate_regions(_hills(), GRID, 0, region_area_km2=(1, 4))
    with pytest.raises(ConfigError, match="max_distance_km 1 is below min_distance_km 2"):
        locate_regions(_hills(), GRID, 2, region_area_km2=(1, 4), min_distance_km=2, max_distance_km=1)
