"""A declared datum shift (``towgs84`` on an input, ``rasters.datum``): Beijing 1954 / Xian 1980 data put on a
WGS 84, CGCS2000 or GRS80-Albers grid with the 7-parameter Helmert their surveying bureau gives.

The reference is independent of PROJ's datum machinery: the Position Vector Helmert is worked by hand below with
numpy (geodetic -> geocentric on the source ellipsoid, small-angle rotation + scale + translation, geocentric ->
geodetic on WGS 84 by iteration), as in EPSG Guidance Note 7-2, section 4.4.3 (method 9606) and 4.1.1 (geographic
/ geocentric conversions). PROJ is used only for map projections (Gauss-Kruger, Albers), which involve no datum.
"""

from __future__ import annotations

import json
import re

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from pyproj import Transformer
from rasterio.transform import from_origin

from pipelines.cli import main
from rasters import io as rio
from rasters.datum import check_towgs84, declared_shift, shift_pipeline, wgs84_compatible
from rasters.errors import ConfigError
from rasters.grid import Grid
from tests._demo_core import core_raw
from tests.test_config import write_cfg
from tests.test_hostile_inputs import ARGS, _dem_copy, _rivers_declared
from vectors import io as vio

# Ellipsoids (a, f): Krassowsky 1940 (Beijing 1954), IAG 1975 (Xian 1980), WGS 84, GRS 1980 (CGCS2000).
KRASS = (6378245.0, 1 / 298.3)
IAG75 = (6378140.0, 1 / 298.257)
WGS84 = (6378137.0, 1 / 298.257223563)
GRS80 = (6378137.0, 1 / 298.257222101)
ARCSEC = np.pi / (180 * 3600)

# EPSG "Beijing 1954 to WGS 84 (4)" (Tarim basin, 3 parameters): about 27 m in Qinghai.
BJ54_3P = [15.8, -154.4, -82.3, 0.0, 0.0, 0.0, 0.0]
# A commonly quoted 7-parameter set: exercises every rotation and the scale.
SEVEN = [24.0, -123.0, -94.0, 0.02, -0.25, -0.13, 1.1]
# EPSG "Beijing 1954 to WGS 84 (2)": translations, a z rotation and a negative scale.
BJ54_ROT = [15.53, -113.82, -41.38, 0.0, 0.0, 0.814, -0.38]
ALBERS = "+proj=aea +lat_0=35 +lon_0=96 +lat_1=33 +lat_2=38 +ellps=GRS80 +units=m +no_defs"


# ------------------------------------------------------------------------------------------------ hand Helmert
def geocentric(lon, lat, ell, h=0.0):
    a, f = ell
    e2 = f * (2 - f)
    lam, phi = np.radians(lon), np.radians(lat)
    n = a / np.sqrt(1 - e2 * np.sin(phi) ** 2)
    return ((n + h) * np.cos(phi) * np.cos(lam), (n + h) * np.cos(phi) * np.sin(lam),
            (n * (1 - e2) + h) * np.sin(phi))


def geodetic(x, y, z, ell):
    """Geocentric -> (lon, lat) degrees by fixed-point iteration on the latitude (converges to ~1e-15 rad)."""
    a, f = ell
    e2 = f * (2 - f)
    p = np.hypot(x, y)
    phi = np.arctan2(z, p * (1 - e2))
    for _ in range(12):
        n = a / np.sqrt(1 - e2 * np.sin(phi) ** 2)
        h = p / np.cos(phi) - n
        phi = np.arctan2(z, p * (1 - e2 * n / (n + h)))
    return np.degrees(np.arctan2(y, x)), np.degrees(phi)


def position_vector(x, y, z, params):
    """EPSG 9606: X' = T + (1 + ds 1e-6) R X, R = [[1, -rz, ry], [rz, 1, -rx], [-ry, rx, 1]] (radians)."""
    dx, dy, dz, rx, ry, rz, ds = params
    rx, ry, rz = rx * ARCSEC, ry * ARCSEC, rz * ARCSEC
    m = 1 + ds * 1e-6
    return (dx + m * (x - rz * y + ry * z), dy + m * (rz * x + y - rx * z), dz + m * (-ry * x + rx * y + z))


def to_grid_datum(lon, lat, params, src_ell=KRASS, dst_ell=WGS84):
    """Source-datum lon/lat (h = 0) to WGS 84 by the Helmert; for a GRS80 (CGCS2000) grid, WGS 84 to GRS80 by a
    null Helmert at h = 0 (the documented equivalence of the two; it moves points by ~0.1 mm)."""
    lon, lat = geodetic(*position_vector(*geocentric(lon, lat, src_ell), params), WGS84)
    if dst_ell != WGS84:
        lon, lat = geodetic(*geocentric(lon, lat, WGS84), dst_ell)
    return lon, lat


def from_grid_datum(lon, lat, params, dst_ell=WGS84):
    """The inverse of ``to_grid_datum`` (Krassowsky source) by fixed-point iteration of the forward mapping."""
    blon, blat = np.array(lon, float), np.array(lat, float)
    for _ in range(8):
        flon, flat = to_grid_datum(blon, blat, params, dst_ell=dst_ell)
        blon, blat = blon + (lon - flon), blat + (lat - flat)
    return blon, blat


def metres(dlon, dlat, lat):
    return np.hypot(np.radians(dlon) * 6378137 * np.cos(np.radians(lat)), np.radians(dlat) * 6378137)


def test_hand_helmert_is_consistent():
    """The reference itself: geodetic <-> geocentric round-trips, and the inverse undoes the forward."""
    lon, lat = np.array([90.5, 96.0, 102.9]), np.array([32.1, 35.0, 39.4])
    lo, la = geodetic(*geocentric(lon, lat, KRASS), KRASS)
    assert np.abs(lo - lon).max() < 1e-12 and np.abs(la - lat).max() < 1e-12
    blon, blat = from_grid_datum(*to_grid_datum(lon, lat, SEVEN), SEVEN)
    assert metres(blon - lon, blat - lat, lat).max() < 1e-6


# ------------------------------------------------------------------------------------------------ vectors
POINTS_LONLAT = np.array([[90.2, 32.3], [93.7, 36.4], [96.0, 35.0], [99.4, 38.6], [101.8, 36.6], [102.9, 33.1]])


def _points(tmp_path, crs, xy, name="pts.gpkg"):
    p = tmp_path / name
    gpd.GeoDataFrame({"id": np.arange(len(xy))}, geometry=shapely.points(xy), crs=crs).to_file(p, layer="pts")
    return p


def _xy(gdf):
    return np.column_stack([gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy()])


@pytest.mark.parametrize("params", [BJ54_3P, SEVEN, BJ54_ROT], ids=["3-parameter", "7-parameter", "z-rotation"])
@pytest.mark.parametrize("grid_crs, ell", [("EPSG:4326", WGS84), ("EPSG:4490", GRS80)], ids=["WGS84", "CGCS2000"])
def test_beijing1954_points_match_the_hand_helmert(tmp_path, params, grid_crs, ell):
    path = _points(tmp_path, "EPSG:4214", POINTS_LONLAT)
    got = _xy(vio.read(path, grid_crs, towgs84=params))
    lon, lat = to_grid_datum(POINTS_LONLAT[:, 0], POINTS_LONLAT[:, 1], params, dst_ell=ell)
    err = metres(got[:, 0] - lon, got[:, 1] - lat, lat)
    assert err.max() < 1e-3, err  # < 1 mm
    # The shift is real (tens of metres here), so the comparison could fail: unshifted is far off.
    assert metres(POINTS_LONLAT[:, 0] - lon, POINTS_LONLAT[:, 1] - lat, lat).min() > 1.0


def test_gauss_kruger_and_xian80_and_albers_grid(tmp_path):
    """A projected Beijing 1954 file (3-degree Gauss-Kruger CM 102E) and a Xian 1980 file onto the demo's Albers
    grid (unnamed GRS80 datum): the file's projection is undone, the hand Helmert applied, Albers projected."""
    near = POINTS_LONLAT[[3, 4, 5]]  # within a few degrees of 102E
    gk = Transformer.from_crs("EPSG:4214", "EPSG:2431", always_xy=True)  # same datum: a pure projection
    path = _points(tmp_path, "EPSG:2431", np.column_stack(gk.transform(near[:, 0], near[:, 1])), "gk.gpkg")
    albers = Transformer.from_crs("+proj=longlat +ellps=GRS80 +no_defs", ALBERS, always_xy=True)
    got = _xy(vio.read(path, ALBERS, towgs84=SEVEN))
    lon, lat = to_grid_datum(near[:, 0], near[:, 1], SEVEN, dst_ell=GRS80)
    want = np.column_stack(albers.transform(lon, lat))
    assert np.hypot(*(got - want).T).max() < 1e-3

    xian = [-24.0, -130.0, -93.0, 0.2, -0.4, 0.6, -2.0]  # made-up but plausible: exercises another ellipsoid
    path = _points(tmp_path, "EPSG:4610", POINTS_LONLAT, "xian.gpkg")
    got = _xy(vio.read(path, ALBERS, towgs84=xian))
    lon, lat = to_grid_datum(POINTS_LONLAT[:, 0], POINTS_LONLAT[:, 1], xian, src_ell=IAG75, dst_ell=GRS80)
    want = np.column_stack(albers.transform(lon, lat))
    assert np.hypot(*(got - want).T).max() < 1e-3


def test_shift_pipeline_is_the_hand_helmert():
    """The PROJ string written into the QGIS project (``shift_pipeline``), applied on its own, puts projected
    Beijing 1954 (Gauss-Kruger) points on the Albers grid where the hand Helmert does, longitude/easting first."""
    near = POINTS_LONLAT[[3, 4, 5]]
    gx, gy = Transformer.from_crs("EPSG:4214", "EPSG:2431", always_xy=True).transform(near[:, 0], near[:, 1])
    text = shift_pipeline("EPSG:2431", BJ54_ROT, ALBERS)
    assert text.startswith("+proj=pipeline") and "+convention=position_vector" in text
    got = np.column_stack(Transformer.from_pipeline(text).transform(gx, gy))
    lon, lat = to_grid_datum(near[:, 0], near[:, 1], BJ54_ROT, dst_ell=GRS80)
    albers = Transformer.from_crs("+proj=longlat +ellps=GRS80 +no_defs", ALBERS, always_xy=True)
    want = np.column_stack(albers.transform(lon, lat))
    assert np.hypot(*(got - want).T).max() < 1e-3
    assert np.hypot(*(np.column_stack(albers.transform(*near.T)) - want).T).min() > 10  # the shift is real
    with pytest.raises(ConfigError, match=r"already on datum"):
        shift_pipeline("EPSG:4490", BJ54_ROT, ALBERS)


def test_vector_clip_uses_the_shifted_positions(tmp_path):
    """A point just outside the clip box before the shift and inside after it is kept (and the reverse dropped)."""
    lon0, lat0 = 100.0, 36.0
    lon, lat = to_grid_datum(np.array([lon0]), np.array([lat0]), BJ54_3P)
    dlat = float(lat[0] - lat0)  # ~ +0.00024 degrees (27 m north)
    assert dlat > 1e-4
    path = _points(tmp_path, "EPSG:4214", np.array([[lon0, lat0]]))
    box_after = (lon0 - 0.01, lat0 + dlat / 2, lon0 + 0.01, lat0 + 0.01)  # contains only the shifted point
    assert len(vio.read(path, "EPSG:4326", clip_bounds=box_after, towgs84=BJ54_3P)) == 1
    assert len(vio.read(path, "EPSG:4326", clip_bounds=box_after)) == 0


# ------------------------------------------------------------------------------------------------ rasters
R = 0.0001  # source cell, degrees: ~11 m north-south, ~9 m east-west at 36 N; the 27 m shift moves 1-3 cells
SW, SH, SX0, SY0 = 80, 80, 99.996, 36.004


@pytest.fixture
def bj54_raster(tmp_path):
    """Beijing 1954 raster: band 1 = column index, band 2 = row index, band 3 = id of the 8 x 8 pixel block."""
    p = tmp_path / "bj54.tif"
    cols, rows = np.meshgrid(np.arange(SW, dtype=np.float32), np.arange(SH, dtype=np.float32))
    with rasterio.open(p, "w", driver="GTiff", width=SW, height=SH, count=3, dtype="float32", crs="EPSG:4214",
                       transform=from_origin(SX0, SY0, R, R)) as ds:
        ds.write(cols, 1)
        ds.write(rows, 2)
        ds.write((rows // 8) * 100 + cols // 8, 3)
    return p


def _grid(res, crs="EPSG:4490", chunk=16):
    return Grid.from_bounds((99.998, 35.998, 100.002, 36.002), res, crs, chunk)


def _source_position(grid, params, ell):
    """Fractional source (col, row) of every grid cell centre by the hand inverse Helmert."""
    rows, cols = np.mgrid[0:grid.height, 0:grid.width]
    t = grid.transform
    lon, lat = t.c + (cols + 0.5) * t.a, t.f + (rows + 0.5) * t.e
    blon, blat = from_grid_datum(lon, lat, params, dst_ell=ell) if params is not None else (lon, lat)
    return (blon - SX0) / R, (SY0 - blat) / R


@pytest.mark.parametrize("grid_crs, ell", [("EPSG:4326", WGS84), ("EPSG:4490", GRS80)], ids=["WGS84", "CGCS2000"])
def test_nearest_picks_the_cell_the_hand_helmert_predicts(bj54_raster, grid_crs, ell):
    grid = _grid(R, grid_crs)
    fc, fr = _source_position(grid, BJ54_3P, ell)
    col = rio.read(bj54_raster, grid, "nearest", band=1, towgs84=BJ54_3P).compute()
    row = rio.read(bj54_raster, grid, "nearest", band=2, towgs84=BJ54_3P).compute()
    clear = (np.abs(fc - np.round(fc)) > 1e-4) & (np.abs(fr - np.round(fr)) > 1e-4)  # not on a cell edge (1 mm)
    assert clear.mean() > 0.95
    np.testing.assert_array_equal(col[clear], np.floor(fc[clear]))
    np.testing.assert_array_equal(row[clear], np.floor(fr[clear]))
    # Without the shift most cells would be another one: the test can fail.
    fc0, fr0 = _source_position(grid, None, ell)
    assert ((np.floor(fc0) != np.floor(fc)) | (np.floor(fr0) != np.floor(fr))).mean() > 0.9
    plain = rio.read(bj54_raster, grid, "nearest", band=2).compute()  # the ballpark: no shift at all
    np.testing.assert_array_equal(plain, np.floor(fr0))


def test_bilinear_position_within_a_millimetre(bj54_raster):
    """Bilinear of a linear field returns the fractional source position itself: compare it in metres."""
    grid = _grid(R)
    fc, fr = _source_position(grid, SEVEN, GRS80)
    col = rio.read(bj54_raster, grid, "bilinear", band=1, towgs84=SEVEN).compute()
    row = rio.read(bj54_raster, grid, "bilinear", band=2, towgs84=SEVEN).compute()
    lat = 36.0
    err = metres((col - (fc - 0.5)) * R, (row - (fr - 0.5)) * R, lat)
    assert np.isfinite(err).all() and err.max() < 1e-3


@pytest.mark.parametrize("chunk", [16, 64])
def test_gdal_warper_path_applies_the_shift(bj54_raster, chunk):
    """``mode``/``average`` go through GDAL's warper (a WarpedVRT with the declared CRS pair): the block chosen by
    mode is the one the hand Helmert puts the cell centre in, and average of the column index is the centre's
    column (GDAL approximates the transformation to 0.125 pixel)."""
    grid = _grid(2 * R, chunk=chunk)
    fc, fr = _source_position(grid, BJ54_3P, GRS80)
    mode = rio.read(bj54_raster, grid, "mode", band=3, towgs84=BJ54_3P).compute()
    # A 2 x 2 pixel footprint around the centre: clear of block edges by 1.5 pixels, mode is that block.
    inner = ((fc % 8 > 1.5) & (fc % 8 < 6.5) & (fr % 8 > 1.5) & (fr % 8 < 6.5)
             & (fc > 2) & (fc < SW - 2) & (fr > 2) & (fr < SH - 2))
    assert inner.sum() > 50
    want = (np.floor(fr) // 8) * 100 + np.floor(fc) // 8
    np.testing.assert_array_equal(mode[inner], want[inner])
    plain = rio.read(bj54_raster, grid, "mode", band=3).compute()  # no shift (the ballpark)
    assert (plain != mode).mean() > 0.2  # the shift moves ~2.4 rows and ~1.3 columns of 8: ~40 % change block

    avg = rio.read(bj54_raster, grid, "average", band=1, towgs84=BJ54_3P).compute()
    ok = (fc > 2) & (fc < SW - 2) & (fr > 2) & (fr < SH - 2)
    assert np.abs(avg[ok] - (fc[ok] - 0.5)).max() < 0.15


def test_projected_beijing_raster_on_the_albers_grid(tmp_path):
    """A Gauss-Kruger Beijing 1954 raster read with nearest (exact path) and average (GDAL) onto a GRS80 Albers
    grid: each cell takes the source cell of (hand Helmert + PROJ projections). EPSG "Beijing 1954 to WGS 84 (2)"
    (a z rotation and a scale): ~45 m here."""
    gk = Transformer.from_crs("EPSG:4214", "EPSG:2431", always_xy=True)
    x0, y0 = gk.transform(101.0, 36.0)
    x0, y0, res, n = round(x0, -2), round(y0, -2), 10.0, 120
    cols, rows = np.meshgrid(np.arange(n, dtype=np.float32), np.arange(n, dtype=np.float32))
    p = tmp_path / "gk.tif"
    with rasterio.open(p, "w", driver="GTiff", width=n, height=n, count=2, dtype="float32", crs="EPSG:2431",
                       transform=from_origin(x0, y0, res, res)) as ds:
        ds.write(cols, 1)
        ds.write(rows, 2)
    to_albers = Transformer.from_crs("+proj=longlat +ellps=GRS80 +no_defs", ALBERS, always_xy=True)
    cx, cy = to_albers.transform(*to_grid_datum(np.array([101.0]), np.array([36.0]), BJ54_ROT, dst_ell=GRS80))
    grid = Grid.from_bounds((cx[0] + 100, cy[0] - 1000, cx[0] + 1000, cy[0] - 100), res, ALBERS, 32)
    r, c = np.mgrid[0:grid.height, 0:grid.width]
    t = grid.transform
    lon, lat = to_albers.transform(t.c + (c + 0.5) * t.a, t.f + (r + 0.5) * t.e, direction="INVERSE")
    blon, blat = from_grid_datum(lon, lat, BJ54_ROT, dst_ell=GRS80)
    gx, gy = gk.transform(blon, blat)
    fc, fr = (gx - x0) / res, (y0 - gy) / res
    col = rio.read(p, grid, "nearest", band=1, towgs84=BJ54_ROT).compute()
    row = rio.read(p, grid, "nearest", band=2, towgs84=BJ54_ROT).compute()
    clear = (np.abs(fc - np.round(fc)) > 1e-4) & (np.abs(fr - np.round(fr)) > 1e-4)
    np.testing.assert_array_equal(col[clear], np.floor(fc[clear]))
    np.testing.assert_array_equal(row[clear], np.floor(fr[clear]))
    avg = rio.read(p, grid, "average", band=1, towgs84=BJ54_ROT).compute()
    assert np.abs(avg - (fc - 0.5)).max() < 0.15
    # The shift here is ~45 m (4.5 cells): unshifted, neither path would be within a cell of the prediction.
    assert np.abs(rio.read(p, grid, "average", band=1).compute() - (fc - 0.5)).min() > 1
    assert np.abs(rio.read(p, grid, "nearest", band=2).compute() - np.floor(fr)).min() >= 1


# ------------------------------------------------------------------------------------------------ refusals
def test_check_towgs84():
    assert check_towgs84([1, 2, 3, 0, 0, 0, 0]) == (1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ConfigError, match=r"expected 7 numbers .*got 3; for a 3-parameter shift"):
        check_towgs84([1, 2, 3])
    with pytest.raises(ConfigError, match=r"dz, ds are not finite"):
        check_towgs84([1, 2, float("nan"), 0, 0, 0, float("inf")])
    with pytest.raises(ConfigError, match=r"expected 7 numbers"):
        check_towgs84("15.8,-154.4")


@pytest.mark.parametrize("crs, ok", [("EPSG:4326", True), ("EPSG:4490", True), ("EPSG:4547", True),
                                     ("EPSG:9057", True), ("EPSG:7789", True), (ALBERS, True), ("EPSG:32647", True),
                                     ("EPSG:4214", False), ("EPSG:2431", False), ("EPSG:4610", False),
                                     ("+proj=longlat +ellps=krass +no_defs", False)])
def test_wgs84_compatible(crs, ok):
    from pyproj import CRS

    assert wgs84_compatible(CRS.from_user_input(crs)) is ok


def test_declared_shift_refusals():
    with pytest.raises(ConfigError, match=r"already on datum 'China 2000'.*second time: remove towgs84"):
        declared_shift("EPSG:4490", BJ54_3P, "EPSG:4326")
    with pytest.raises(ConfigError, match=r"already on datum 'World Geodetic System 1984 ensemble'"):
        declared_shift("EPSG:32647", BJ54_3P, ALBERS)
    with pytest.raises(ConfigError, match=r"grid CRS is on datum 'Xian 1980'.*\+towgs84"):
        declared_shift("EPSG:4214", BJ54_3P, "EPSG:2343")
    # A grid CRS with its own +towgs84 is accepted: the same declaration on both ends is no shift at all.
    src, dst = declared_shift("EPSG:4214", BJ54_3P, "+proj=longlat +ellps=krass +towgs84=15.8,-154.4,-82.3 +no_defs")
    x, y = Transformer.from_crs(src, dst, always_xy=True).transform(100.0, 36.0)
    assert metres(x - 100.0, y - 36.0, 36.0) < 1e-6


def test_reader_refusals_name_the_file(tmp_path, bj54_raster):
    wgs = _points(tmp_path, "EPSG:4326", POINTS_LONLAT, "wgs.gpkg")
    with pytest.raises(ConfigError, match=r"wgs\.gpkg: layer 'pts': towgs84: the file is already on datum"):
        vio.read(wgs, "EPSG:4490", towgs84=BJ54_3P)
    with pytest.raises(ConfigError, match=r"bj54\.tif: towgs84: expected 7 numbers"):
        rio.read(bj54_raster, _grid(R), towgs84=[1, 2, 3])


# ------------------------------------------------------------------------------------------------ pipeline
def _legacy_raw(tmp_path, **declared):
    """The demo core with the DEM labelled Beijing 1954 and the rivers Xian 1980 (coordinates unchanged)."""
    raw = core_raw()
    raw["inputs"]["elevation_m"]["raster"] = str(_dem_copy(tmp_path, "dem_bj54.tif", crs="EPSG:4214"))
    raw["inputs"]["rivers"]["vector"] = str(_rivers_declared(tmp_path, "rivers_xian80.gpkg", "EPSG:4610"))
    for name, value in declared.items():
        raw["inputs"][name]["towgs84"] = value
    return raw


def _fails(tmp_path, capsys, raw, code, pattern, command="run"):
    cfg = write_cfg(tmp_path, raw)
    out = tmp_path / "out"
    args = [command, str(cfg)] + ([*ARGS, "--output-dir", str(out)] if command == "run" else [])
    got = main(args)
    err = capsys.readouterr().err.strip()
    assert got == code, err
    assert err.count("\n") == 0 and err.startswith("suitability: error: "), err
    assert re.search(pattern, err), err
    assert not out.exists() or not any(out.iterdir())


def test_refused_without_towgs84_names_the_key(tmp_path, capsys):
    raw = _legacy_raw(tmp_path, rivers=SEVEN)
    _fails(tmp_path, capsys, raw, 3, r"inputs\.elevation_m\.raster: .*datum Beijing 1954 has no transformation .*"
                                     r"declare .* with inputs\.elevation_m\.towgs84: \[dx, dy, dz, rx, ry, rz, ds\]")


BAD = [
    ("too short", {"towgs84": [15.8, -154.4, -82.3]}, r"cfg\.yaml: inputs\.elevation_m\.towgs84: expected 7 numbers"),
    ("not finite", {"towgs84": [15.8, -154.4, float("nan"), 0, 0, 0, 0]},
     r"inputs\.elevation_m\.towgs84: expected 7 finite numbers .*dz is not finite"),
    ("not a number", {"towgs84": [15.8, "x", -82.3, 0, 0, 0, 0]}, r"inputs\.elevation_m\.towgs84\.1: "),
    ("with allow_ballpark", {"towgs84": BJ54_3P, "allow_ballpark": True},
     r"inputs\.elevation_m: give either towgs84 .* or allow_ballpark: true .*not both"),
    ("on a WGS 84 file", {"towgs84": BJ54_3P, "raster": "ORIGINAL"},
     r"inputs\.elevation_m\.towgs84: .*dem_5arcmin\.tif: the file is already on datum 'World Geodetic System 1984"),
    ("grid in Xian 1980", {"towgs84": BJ54_3P, "grid": "EPSG:2343"},
     r"inputs\.elevation_m\.towgs84: .*dem_bj54\.tif: the grid CRS is on datum 'Xian 1980'"),
]


@pytest.mark.parametrize("case, change, pattern", BAD, ids=[b[0] for b in BAD])
def test_bad_towgs84_is_a_config_error(tmp_path, capsys, case, change, pattern):
    raw = _legacy_raw(tmp_path, rivers=SEVEN)
    change = dict(change)
    if change.pop("raster", None):
        raw["inputs"]["elevation_m"]["raster"] = str(core_raw()["inputs"]["elevation_m"]["raster"])
    if "grid" in change:
        raw["grid"]["crs"] = change.pop("grid")
    raw["inputs"]["elevation_m"].update(change)
    _fails(tmp_path, capsys, raw, 2, pattern)
    if case in ("on a WGS 84 file", "with allow_ballpark"):
        _fails(tmp_path, capsys, raw, 2, pattern, command="validate")


def test_run_with_towgs84_reads_the_shift_and_records_it(tmp_path):
    raw = _legacy_raw(tmp_path, elevation_m=BJ54_3P, rivers=SEVEN)
    cfg = write_cfg(tmp_path, raw)
    out = tmp_path / "out"
    assert main(["run", str(cfg), *ARGS, "--no-cache", "--output-dir", str(out)]) == 0
    props = json.loads((out / "run.json").read_text(encoding="utf-8"))["properties"]
    assert props["suitability:inputs"]["elevation_m"]["towgs84"] == BJ54_3P
    assert props["suitability:inputs"]["rivers"]["towgs84"] == SEVEN
    assert props["suitability:config"]["inputs"]["elevation_m"]["towgs84"] == BJ54_3P
    assert "towgs84" not in props["suitability:inputs"]["counties"]
    assert "towgs84" not in props["suitability:config"]["inputs"]["counties"]  # undeclared: hashes as before
    # The written layer is the library's shifted read on the run's grid, and differs from the unshifted one.
    with rasterio.open(out / "elevation_m.tif") as ds:
        written = ds.read(1)
        grid = Grid(ds.crs.to_wkt(), ds.transform, ds.width, ds.height, 64)
    dem = raw["inputs"]["elevation_m"]["raster"]
    shifted = rio.read(dem, grid, "bilinear", towgs84=BJ54_3P).compute()
    np.testing.assert_array_equal(written, shifted)
    assert not np.array_equal(written, rio.read(dem, grid, "bilinear").compute(), equal_nan=True)


def test_changed_towgs84_is_a_cache_miss(tmp_path):
    """The input's cache key holds the declared shift: a changed shift recomputes slope, the same one reuses it."""
    raw = _legacy_raw(tmp_path, elevation_m=BJ54_3P, rivers=SEVEN)
    cache = ["--set", f"cache.folder={json.dumps(str(tmp_path / 'cache'))}"]

    def run(out, *extra):
        cfg = write_cfg(tmp_path, raw)
        args = [a for a in ARGS if a != "--no-cache"]
        assert main(["run", str(cfg), *args, *cache, "--output-dir", str(tmp_path / out), *extra]) == 0
        return json.loads((tmp_path / out / "run.json").read_text(encoding="utf-8"))["properties"]["suitability:cache"]

    assert run("a")["slope_deg"].startswith("stored")
    raw["inputs"]["elevation_m"]["towgs84"] = BJ54_ROT
    assert run("b")["slope_deg"].startswith("stored")  # a miss: not the layer computed with the other shift
    raw["inputs"]["elevation_m"]["towgs84"] = BJ54_3P
    assert run("c")["slope_deg"].startswith("hit")


def test_cache_key_without_towgs84_is_unchanged(tmp_path):
    """An input that declares nothing keys exactly as before the key existed (old cache entries stay valid)."""
    from pipelines.cache import LayerCache, _digest
    from pipelines.config import load
    from pipelines.plan import build_plan

    raw = core_raw()
    plan = build_plan(load(write_cfg(tmp_path, raw)))
    lc = LayerCache(plan, _grid(R), tmp_path / "cache")
    inp = plan.config.inputs["elevation_m"]
    params = {k: v for k, v in inp.model_dump(mode="json").items()
              if k not in ("raster", "label", "towgs84") and not k.startswith("allow_")}
    sha = lc._file_sha(plan.loaded.resolve(inp.raster))
    assert lc.key("elevation_m") == _digest({"input": "raster", "files": [sha], "params": params})
