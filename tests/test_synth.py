"""The SYNTHETIC benchmark province (benchmarks/synth.py): determinism, chunk invariance, plausible relief,
synthetic labelling, and a road network that connects every county seat while avoiding steep ground."""

from __future__ import annotations

import json
import math

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from pyproj import Transformer

from benchmarks import synth
from rasters.grid import Grid
from rasters.io import read

DEM_5 = synth.DATA / "dem_5arcmin.tif"


@pytest.fixture(scope="module")
def province(tmp_path_factory):
    out = tmp_path_factory.mktemp("province5km")
    return synth.make_province(out, 5000, seed=0, chunk_size=64)


@pytest.fixture(scope="module")
def amplitude(tmp_path_factory):
    return synth.write_amplitude(tmp_path_factory.mktemp("amp") / "synthetic_relief_amplitude_m.tif")


def _mountain_grid(n: int = 160, chunk: int = 64, res: float = 90.0) -> Grid:
    """A small fine grid over the Qilian range, where the fractal amplitude is large and every octave is used."""
    x, y = Transformer.from_crs("EPSG:4326", synth.ALBERS, always_xy=True).transform(99.0, 38.6)
    x0, y0 = math.floor(x / res) * res, math.floor(y / res) * res
    return Grid.from_bounds((x0, y0, x0 + n * res, y0 + n * res), res, synth.ALBERS, chunk_size=chunk)


def test_same_seed_same_bytes_other_seed_differs(amplitude):
    g = _mountain_grid()
    a = synth.synthetic_dem(g, 0, amplitude).compute()
    b = synth.synthetic_dem(g, 0, amplitude).compute()
    c = synth.synthetic_dem(g, 1, amplitude).compute()
    assert a.dtype == np.float32 and a.tobytes() == b.tobytes()
    assert np.mean(a != c) > 0.99  # a new seed changes (almost) every cell
    assert np.nanmax(np.abs(a - c)) > 10.0


def test_chunk_size_does_not_change_the_dem(amplitude):
    ref = synth.synthetic_dem(_mountain_grid(chunk=160), 3, amplitude).compute()
    for chunk in (16, 48, 100):
        other = synth.synthetic_dem(_mountain_grid(chunk=chunk), 3, amplitude).compute()
        assert other.tobytes() == ref.tobytes(), chunk


def test_noise_of_a_window_equals_the_same_cells_of_a_larger_window():
    g = _mountain_grid(res=30.0)
    big = synth.fbm_block(g, 0, 0, 120, 140, 5)
    part = synth.fbm_block(g, 37, 53, 40, 50, 5)
    assert part.tobytes() == big[37:77, 53:103].tobytes()


def test_dem_is_real_relief_plus_bounded_fractal_detail(amplitude):
    g = _mountain_grid()
    dem = synth.synthetic_dem(g, 0, amplitude).compute()
    coarse = read(DEM_5, g, "bilinear").compute()
    amp = read(amplitude, g, "bilinear").compute()
    detail = dem.astype(np.float64) - coarse
    # Perlin noise with unit gradients lies in ±√2/2 and the octave weights sum to at most 1.
    assert np.all(np.abs(detail) <= amp * math.sqrt(2) / 2 + 0.01)
    assert np.std(detail) > 20.0  # the Qilian range gets real texture, not a smoothed coarse DEM
    wl, w = synth.octaves(90.0)
    assert wl.min() >= 2.5 * 90 and w.sum() <= 1.0 + 1e-12


def test_whole_province_range_is_plausible(province):
    with rasterio.open(province["dem"]) as src:
        dem = src.read(1)
    with rasterio.open(DEM_5) as src:
        real = src.read(1).astype(np.float64)
        real = real[real != src.nodata]
    assert np.nanmin(dem) >= real.min() - synth.AMP_MAX_M and np.nanmax(dem) <= real.max() + synth.AMP_MAX_M
    assert np.mean(np.isnan(dem)) < 0.05  # only grid corners beyond the real DEM's box are nodata
    # The province holds the Qaidam basin (~2700 m) and the 4000 m+ plateau.
    assert np.nanpercentile(dem, 5) < 3000 < 4000 < np.nanpercentile(dem, 95)


def test_everything_says_synthetic(province):
    for key in ("dem", "amplitude"):
        assert "synthetic" in province[key].name
        with rasterio.open(province[key]) as src:
            assert src.tags()["SYNTHETIC"] == "yes"
            assert "SYNTHETIC" in src.tags()["DESCRIPTION"]
    assert "synthetic" in province["roads"].name
    meta = pyogrio.read_info(province["roads"])["layer_metadata"]
    assert "SYNTHETIC" in meta["DESCRIPTION"]
    for key in ("rivers", "lakes", "county_seats"):
        assert "REAL" in pyogrio.read_info(province[key])["layer_metadata"]["DESCRIPTION"]
    manifest = json.loads(province["manifest"].read_text())
    assert manifest["synthetic"] is True and "SYNTHETIC" in manifest["description"]


def test_reuse_does_not_regenerate(province):
    before = province["manifest"].stat().st_mtime_ns
    again = synth.make_province(province["manifest"].parent, 5000, seed=0, chunk_size=64)
    assert again == province and province["manifest"].stat().st_mtime_ns == before


def test_roads_connect_every_seat(province):
    seats = gpd.read_file(province["county_seats"])
    roads = gpd.read_file(province["roads"])
    n = len(seats)
    assert n == 44
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for _, r in roads.iterrows():
        parent[find(r.from_idx)] = find(r.to_idx)
        # Each road really runs from one seat to the other.
        start, end = shapely.get_point(r.geometry, 0), shapely.get_point(r.geometry, -1)
        assert start.distance(seats.geometry.iloc[r.from_idx]) < 1e-6
        assert end.distance(seats.geometry.iloc[r.to_idx]) < 1e-6
    assert len({find(i) for i in range(n)}) == 1
    assert set(roads["speed_kmh"]) == set(synth.ROAD_SPEEDS_KMH.values())
    assert (roads["kind"] == "trunk").sum() == n - 1  # a spanning tree has n - 1 edges


def test_roads_avoid_steep_ground_more_than_straight_lines(province):
    roads = gpd.read_file(province["roads"])
    grid = synth.province_grid(5000)
    cgrid = Grid.from_bounds(grid.bounds, max(synth.ROAD_CELL_M, 5000), grid.crs, chunk_size=256)
    dem = read(DEM_5, cgrid, "bilinear").compute().astype(np.float64)
    # Independent slope: numpy central differences, not the Horn kernel the router used.
    gy, gx = np.gradient(dem, cgrid.res[1], cgrid.res[0])
    steep = np.degrees(np.arctan(np.hypot(gx, gy)))

    def mean_slope(line):
        d = np.arange(0.0, line.length, 500.0)
        pts = shapely.line_interpolate_point(line, d)
        r, c = cgrid.index_of_xy(shapely.get_x(pts), shapely.get_y(pts))
        ok = (r >= 0) & (r < cgrid.height) & (c >= 0) & (c < cgrid.width)
        return np.nanmean(steep[r[ok], c[ok]])

    along = [mean_slope(g) for g in roads.geometry]
    straight = [mean_slope(shapely.LineString([shapely.get_point(g, 0), shapely.get_point(g, -1)]))
                for g in roads.geometry]
    assert np.nanmean(along) < 0.95 * np.nanmean(straight)
    assert np.mean(np.asarray(along) <= np.asarray(straight) + 0.5) > 0.7
