"""Grid arithmetic and snapping, checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from affine import Affine
from pyproj import Geod

from rasters.errors import ConfigError
from rasters.grid import Grid
from tests.conftest import ALBERS


def test_from_bounds_snaps_outward_like_tap():
    # 1,234..5,678 with 1,000 m cells: -tap gives 1,000..6,000 (5 columns); 10..2,990 -> 0..3,000 (3 rows).
    g = Grid.from_bounds((1234, 10, 5678, 2990), 1000, ALBERS, chunk_size=16)
    assert g.transform == Affine(1000, 0, 1000, 0, -1000, 3000)
    assert (g.width, g.height) == (5, 3)
    assert g.bounds == (1000, 0, 6000, 3000)


def test_bounds_already_on_multiples_do_not_grow():
    g = Grid.from_bounds((-2000, -3000, 4000, 5000), 1000, ALBERS)
    assert g.bounds == (-2000, -3000, 4000, 5000)
    assert g.shape == (8, 6)


def test_negative_bounds_snap_outward():
    g = Grid.from_bounds((-1500, -2500, -100, -50), 1000, ALBERS)
    assert g.bounds == (-2000, -3000, 0, 0)


def test_chunks_and_windows_cover_grid_exactly():
    g = Grid.from_bounds((0, 0, 50, 37), 1, ALBERS, chunk_size=16)
    assert g.chunks == ((16, 16, 5), (16, 16, 16, 2))
    cover = np.zeros(g.shape, int)
    for _, w in g.windows():
        cover[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width] += 1
        assert g.window_transform(w) == g.transform @ Affine.translation(w.col_off, w.row_off)
    assert (cover == 1).all()


def test_cell_area_projected():
    g = Grid.from_bounds((0, 0, 10_000, 10_000), 250, ALBERS)
    assert g.cell_area_m2() == 62_500.0


def test_cell_size_geographic_matches_geodesic():
    g = Grid.from_bounds((96, 34, 97, 35), 1 / 12, "EPSG:4326")
    dx, dy = g.cell_size_m_rows(0, g.height)
    geod = Geod(ellps="WGS84")
    lat = g.transform.f + g.transform.e * 0.5
    # East-west arc along a parallel and north-south arc along a meridian, from pyproj.Geod.
    _, _, ew = geod.inv(96, lat, 96 + 1 / 12, lat)
    _, _, ns = geod.inv(96, lat - 1 / 24, 96, lat + 1 / 24)
    assert dx[0] == pytest.approx(ew, rel=1e-6)
    assert dy[0] == pytest.approx(ns, rel=1e-4)
    assert g.geodesic_cell_area_m2(0) == pytest.approx(ew * ns, rel=1e-3)


@pytest.mark.parametrize(
    "kwargs, msg",
    [
        ({"bounds": (0, 0, 0, 1), "resolution": 1}, "xmin < xmax"),
        ({"bounds": (0, 0, 1, 1), "resolution": 0}, "resolution must be positive"),
        ({"bounds": (0, 0, 1, 1), "resolution": -5}, "resolution must be positive"),
    ],
)
def test_bad_grid_specs(kwargs, msg):
    with pytest.raises(ConfigError, match=msg):
        Grid.from_bounds(crs=ALBERS, **kwargs)


def test_xy_index_round_trip():
    g = Grid.from_bounds((0, 0, 100, 80), 10, ALBERS)
    rows, cols = np.array([0, 7, 3]), np.array([0, 9, 4])
    x, y = g.xy_of_cells(rows, cols)
    assert np.allclose(x, [5, 95, 45]) and np.allclose(y, [75, 5, 45])
    r2, c2 = g.index_of_xy(x, y)
    assert (r2 == rows).all() and (c2 == cols).all()
    assert not math.isnan(g.linear_unit_m)


def test_proj_string_crs_gets_a_name_but_same_definition():
    from pyproj import CRS

    g = Grid.from_bounds((0, 0, 10, 10), 1, ALBERS)
    assert g.pyproj_crs.name == "Custom Albers Equal Area (GRS 1980)"
    assert g.pyproj_crs.equals(CRS.from_user_input(ALBERS), ignore_axis_order=True)
    assert Grid.from_bounds((0, 0, 10, 10), 1, "EPSG:32647").pyproj_crs.name == "WGS 84 / UTM zone 47N"
