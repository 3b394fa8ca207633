"""suitability.carrying: (zone, class) tallies against numpy's bincount, exact cell areas against pyproj.Geod and the
spherical formula, and the 短板 rule with its binding constraint worked by hand."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from affine import Affine
from pyproj import Geod

from rasters.errors import ConfigError, InputDataError
from rasters.grid import Grid
from suitability.carrying import (
    carrying_scale,
    land_limited_population,
    row_cell_areas_m2,
    zone_class_areas_km2,
    zone_class_counts,
)

ALBERS = "+proj=aea +lat_0=35 +lon_0=96 +lat_1=33 +lat_2=38 +ellps=GRS80 +units=m +no_defs"


def random_rasters(shape=(37, 53), n_zones=4, n_classes=5, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, n_zones + 1, shape).astype(np.int32),
            rng.integers(0, n_classes + 1, shape).astype(np.uint8))


def reference_counts(z, c, n_zones, n_classes):
    return np.bincount((z.astype(np.int64) * (n_classes + 1) + c).ravel(),
                       minlength=(n_zones + 1) * (n_classes + 1)).reshape(n_zones + 1, n_classes + 1)


@pytest.mark.parametrize("chunks", [None, (37, 53), (8, 11), (5, 7)])
def test_counts_match_numpy_bincount(chunks):
    z, c = random_rasters()
    ref = reference_counts(z, c, 4, 5)
    zi = z if chunks is None else da.from_array(z, chunks=chunks)
    ci = c if chunks is None else da.from_array(c, chunks=(13, 17))  # other chunks: rechunked inside
    out = zone_class_counts(zi, ci, n_zones=4, n_classes=5)
    np.testing.assert_array_equal(out, ref)
    assert out.dtype == np.int64


def test_areas_on_projected_grid_are_counts_times_cell_area():
    z, c = random_rasters()
    grid = Grid(ALBERS, Affine(250.0, 0, 0, 0, -250.0, 0), 53, 37, chunk_size=16)
    out = zone_class_areas_km2(da.from_array(z, chunks=16), da.from_array(c, chunks=16), grid, 4, 5)
    np.testing.assert_allclose(out, reference_counts(z, c, 4, 5) * 0.0625, rtol=0, atol=1e-12)  # 250 m² = 0.0625 km²


def test_row_areas_on_a_sphere_match_the_spherical_formula():
    # On a sphere of radius R the cell between latitudes φ1, φ2 spanning Δλ has area R² Δλ (sin φ2 − sin φ1).
    r = 6_371_000.0
    grid = Grid.from_bounds((90.0, 31.0, 91.0, 40.0), 0.5, f"+proj=longlat +R={r} +no_defs", chunk_size=16)
    lat_top = 40.0 - 0.5 * np.arange(grid.height)
    expected = r * r * np.radians(0.5) * (np.sin(np.radians(lat_top)) - np.sin(np.radians(lat_top - 0.5)))
    np.testing.assert_allclose(row_cell_areas_m2(grid), expected, rtol=1e-12)


def test_row_areas_on_the_ellipsoid_match_geod():
    # Reference: pyproj.Geod (Karney) area of the cell outlined with 2,000 points along each parallel, so the
    # geodesic chords follow the parallels closely.
    grid = Grid.from_bounds((95.0, 32.0, 95.25, 38.0), 0.25, "EPSG:4326", chunk_size=16)
    geod = Geod(ellps="WGS84")
    lons = np.linspace(95.0, 95.25, 2001)
    areas = row_cell_areas_m2(grid)
    for row in (0, 7, grid.height - 1):
        top = 38.0 - 0.25 * row
        bottom = top - 0.25
        ring_lon = np.concatenate([lons, lons[::-1]])
        ring_lat = np.concatenate([np.full(lons.size, bottom), np.full(lons.size, top)])
        ref = abs(geod.polygon_area_perimeter(ring_lon, ring_lat)[0])
        assert areas[row] == pytest.approx(ref, rel=1e-8)


def test_geographic_areas_are_chunk_invariant_and_sum_to_row_areas():
    z, c = random_rasters(shape=(40, 30))
    grid = Grid.from_bounds((95.0, 34.0, 97.5, 37.333333333333336), 1 / 12, "EPSG:4326", chunk_size=16)
    assert grid.shape == (40, 30)
    one = zone_class_areas_km2(z, c, grid, 4, 5)
    many = zone_class_areas_km2(da.from_array(z, chunks=(7, 9)), da.from_array(c, chunks=(7, 9)), grid, 4, 5)
    np.testing.assert_array_equal(one, many)  # bit-identical
    row_km2 = row_cell_areas_m2(grid) / 1e6
    # independent: per (zone, class) the sum over cells of their row's area, in plain numpy
    key = z.astype(np.int64) * 6 + c
    ref = np.zeros(30)
    np.add.at(ref, key.ravel(), np.repeat(row_km2, 30))
    np.testing.assert_allclose(one.ravel(), ref, rtol=1e-12)
    lazy = zone_class_areas_km2(z, c, grid, 4, 5, lazy=True)
    np.testing.assert_array_equal(lazy.compute(), one)


def test_codes_out_of_range_are_refused():
    z, c = random_rasters()
    with pytest.raises(InputDataError, match=r"class raster holds code 5, outside 0\.\.3"):
        zone_class_counts(z, c, 4, 3)
    with pytest.raises(InputDataError, match="must hold integer codes"):
        zone_class_counts(z, c.astype(np.float32), 4, 5)
    with pytest.raises(ConfigError, match="differ in shape"):
        zone_class_counts(z, c[:-1], 4, 5)


# --- the 短板 rule ----------------------------------------------------------------------------------------------------


def test_land_limited_population_by_hand():
    # zones 1, 2 (row 0 = no zone); classes 0..3; top classes 2 and 3
    areas = np.array([[9.0, 9.0, 9.0, 9.0],
                      [0.0, 5.0, 1.5, 0.5],    # 1.5 + 0.5 = 2.0 km² × 10,000 = 20,000
                      [0.0, 0.0, 0.0, 3.0]])   # 3.0 km² × 10,000 = 30,000
    np.testing.assert_allclose(land_limited_population(areas, (2, 3), 10_000), [20_000, 30_000])
    with pytest.raises(ConfigError, match=r"top_classes must be class codes within 1\.\.3"):
        land_limited_population(areas, (4,), 10_000)
    with pytest.raises(ConfigError, match="density_per_km2 must be a positive"):
        land_limited_population(areas, (3,), 0)


def test_binding_constraint_switches_when_a_quota_changes():
    names = ["A", "B"]
    water = [20_000.0, 45_000.0]  # e.g. 2.0e6 m3 / 100 m3 per person
    areas = np.array([[0, 0, 0], [0, 1.0, 3.0], [0, 0.0, 4.0]])
    land = land_limited_population(areas, (2,), 10_000)  # A: 3.0 km² × 10,000 = 30,000; B: 40,000
    s = carrying_scale(names, {"water": water, "land": land}, population=[15_000, 41_000])
    # A: min(20,000, 30,000) = 20,000 water; B: min(45,000, 40,000) = 40,000 land
    assert s["carrying_population"].tolist() == [20_000, 40_000]
    assert s["binding"].tolist() == ["water", "land"]
    assert s["headroom_population"].tolist() == [5_000, -1_000]
    # a more generous land quota, 200 m²/person = 5,000 persons/km², halves the land limit and land binds for A:
    land2 = land_limited_population(areas, (2,), 5_000)  # A: 15,000; B: 20,000
    s2 = carrying_scale(names, {"water": water, "land": land2})
    assert s2["binding"].tolist() == ["land", "land"]
    assert s2["carrying_population"].tolist() == [15_000, 20_000]
    # a lower per-capita water quota raises the water limit: 2.0e6 m3 / 50 m3 = 40,000 -> land still binds for A
    s3 = carrying_scale(names, {"water": [40_000.0, 90_000.0], "land": land}, population=[15_000, 41_000])
    assert s3["binding"].tolist() == ["land", "land"]


def test_further_limits_ties_and_mappings():
    s = carrying_scale(["A", "B", "C"], {"water": [10.0, 20.0, 30.0], "land": [10.0, 25.0, 40.0],
                                          "plan_cap": {"C": 5.0}})
    assert s["binding"].tolist() == ["water+land", "water", "plan_cap"]
    assert s["carrying_population"].tolist() == [10.0, 20.0, 5.0]
    assert np.isnan(s["limit_plan_cap"].iloc[0]) and s["limit_plan_cap"].iloc[2] == 5.0
    s1 = carrying_scale(["A"], {"water": 7.0})
    assert s1["binding"].tolist() == ["water"]


def test_carrying_scale_bad_input():
    with pytest.raises(ConfigError, match="give at least one limit"):
        carrying_scale(["A"], {})
    with pytest.raises(InputDataError, match=r"limit 'land' is missing for zone\(s\) B"):
        carrying_scale(["A", "B"], {"water": [1.0, 2.0], "land": [1.0, np.nan]})
    with pytest.raises(InputDataError, match=r"limit 'water' is negative for zone\(s\) A \(-3\)"):
        carrying_scale(["A", "B"], {"water": [-3.0, 2.0]})
    with pytest.raises(ConfigError, match=r"unknown zone 'Bb' \(did you mean 'B'\?\)"):
        carrying_scale(["A", "B"], {"cap": {"Bb": 1.0}})
    with pytest.raises(InputDataError, match=r"zone\(s\) A have no limit at all"):
        carrying_scale(["A", "B"], {"cap": {"B": 1.0}})
    with pytest.raises(ConfigError, match="3 values for 2 zones"):
        carrying_scale(["A", "B"], {"water": [1.0, 2.0, 3.0]})
    with pytest.raises(InputDataError, match=r"population is missing for zone\(s\) B"):
        carrying_scale(["A", "B"], {"water": [1.0, 2.0]}, population=[1.0, np.nan])
