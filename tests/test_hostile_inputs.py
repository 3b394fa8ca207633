"""Hostile and damaged inputs through the command line (cases of issue 9 part 4 not already in test_cli.py,
test_config.py, test_raster_io.py or test_vectors.py). Each: exit code, one line naming the file/key, no output.
Plus ``validate --deep`` finding a corrupt tile in the middle of a GeoTIFF."""

from __future__ import annotations

import re

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from pipelines.cli import main
from tests._demo_core import core_raw
from tests.conftest import DATA
from tests.test_config import write_cfg

ARGS = ["--set", "grid.resolution_m=20000", "--set", "grid.chunk_size=64", "--no-cache", "-q"]


def _dem_copy(tmp_path, name="dem.tif", **changes):
    p = tmp_path / name
    with rasterio.open(DATA / "dem_5arcmin.tif") as src:
        prof, arr = src.profile, src.read(1)
    prof.update(changes)
    with rasterio.open(p, "w", **prof) as dst:
        dst.write(arr, 1)
    return p


def _rotated(tmp_path):
    with rasterio.open(DATA / "dem_5arcmin.tif") as src:
        t = src.transform
    return _dem_copy(tmp_path, transform=rasterio.Affine(t.a, 0.001, t.c, 0.001, t.e, t.f))


def _vrt(tmp_path):
    p = tmp_path / "dem.vrt"
    src = _dem_copy(tmp_path)
    with rasterio.open(src) as ds:
        w, h, t, wkt = ds.width, ds.height, ds.transform, ds.crs.to_wkt()
    gt = ", ".join(repr(v) for v in t.to_gdal())
    from xml.sax.saxutils import escape

    p.write_text(f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}"><SRS>{escape(wkt)}</SRS>'
                 f'<GeoTransform>{gt}</GeoTransform><VRTRasterBand dataType="Int16" band="1">'
                 f'<SimpleSource><SourceFilename relativeToVRT="1">dem.tif</SourceFilename>'
                 f'<SourceBand>1</SourceBand></SimpleSource></VRTRasterBand></VRTDataset>')
    return p


def _vrt_renamed(tmp_path):
    p = _vrt(tmp_path)
    q = tmp_path / "innocent.tif"
    p.rename(q)
    return q


def _huge_claim(tmp_path):
    """A 64 x 64 uncompressed TIFF whose header claims 2,000,000 x 2,000,000 pixels."""
    p = _dem_copy(tmp_path, "small.tif", width=64, height=64, compress=None, tiled=False)
    b = bytearray(p.read_bytes())
    import struct

    n = struct.unpack_from("<H", b, 8)[0]
    for i in range(n):  # classic little-endian TIFF: patch ImageWidth (256) and ImageLength (257)
        off = 10 + 12 * i
        tag, typ = struct.unpack_from("<HH", b, off)
        if tag in (256, 257):
            if typ == 3:
                struct.pack_into("<HHIHH", b, off, tag, 4, 1, 0, 0)
            struct.pack_into("<I", b, off + 8, 2_000_000)
    p.write_bytes(bytes(b))
    return p


# Around (96 E, 35 N), the centre of the demo Albers grid: a grid of a few cells for cases that need one.
SMALL_BOUNDS = [-3000.0, -3000.0, 3000.0, 3000.0]


def _huge_sparse_bad_tile(tmp_path):
    """100,000 x 100,000 cells of 0.0001 degrees from (91 E, 40 N), tiled and sparse (a few hundred KB): only the
    tiles around (96 E, 35 N) hold data, and the one containing that point is garbage inside its deflate stream."""
    p = tmp_path / "huge_sparse.tif"
    n, d = 100_000, 0.0001
    with rasterio.open(p, "w", driver="GTiff", width=n, height=n, count=1, dtype="int16", crs="EPSG:4326",
                       transform=from_origin(91, 40, d, d), tiled=True, blockxsize=512, blockysize=512,
                       compress="deflate", nodata=-32768, sparse_ok=True) as ds:
        ds.write((np.arange(1024 * 1024).reshape(1024, 1024) % 3000).astype("int16"), 1,
                 window=rasterio.windows.Window(49664, 49664, 1024, 1024))
    tile = 50_000 // 512
    with rasterio.open(p) as s:
        off = int(s.get_tag_item(f"BLOCK_OFFSET_{tile}_{tile}", "TIFF", bidx=1))
        size = int(s.get_tag_item(f"BLOCK_SIZE_{tile}_{tile}", "TIFF", bidx=1))
    b = bytearray(p.read_bytes())
    b[off + 10 : off + size - 10] = b"\x5a" * (size - 20)
    p.write_bytes(bytes(b))
    assert p.stat().st_size < 2_000_000
    return p


def _dem_reprojected(tmp_path, name, crs):
    """The demo DEM warped to ``crs`` (GDAL, same datum handling as any user tool)."""
    from rasterio.warp import calculate_default_transform, reproject

    p = tmp_path / name
    with rasterio.open(DATA / "dem_5arcmin.tif") as src:
        t, w, h = calculate_default_transform(src.crs, crs, src.width, src.height, *src.bounds)
        prof = {**src.profile, "crs": crs, "transform": t, "width": w, "height": h}
        with rasterio.open(p, "w", **prof) as dst:
            reproject(rasterio.band(src, 1), rasterio.band(dst, 1))
    return p


def _rivers_declared(tmp_path, name, crs):
    """The demo rivers with their lon/lat coordinates unchanged but declared in ``crs``."""
    import geopandas as gpd

    p = tmp_path / name
    gpd.read_file(DATA / "rivers.gpkg", layer="rivers").set_crs(crs, allow_override=True).to_file(p, layer="rivers")
    return p


CASES = [
    ("rotated transform", 3, r"inputs\.elevation_m: .*dem\.tif: rotated/sheared geotransform"),
    # The URL is kept verbatim (a Path would fold "https://" into "https:/").
    ("vsicurl path", 2, r"inputs\.elevation_m\.raster: /vsicurl/https://example\.invalid/dem\.tif is a network "
                        r"path; set inputs\.elevation_m\.allow_remote: true"),
    ("vrt", 2, r"inputs\.elevation_m\.raster: .*dem\.vrt is a VRT .*allow_vrt: true"),
    ("vrt renamed to .tif", 2, r"inputs\.elevation_m\.raster: .*innocent\.tif is a VRT"),
    ("vector vrt", 2, r"inputs\.rivers\.vector: .*rivers\.vrt is a VRT"),
    ("huge claimed dimensions", 3, r"small\.tif: cannot read"),
    ("python tag", 2, r"cfg\.yaml:.*not valid YAML"),
    # A sparse TIFF claiming 100,000 x 100,000 cells passes inspect (its last tile is sparse, read as nodata); a
    # corrupt tile is found only inside a chunk task, whose error names the file: the run adds the input's key.
    ("huge sparse, bad tile inside", 3, r"inputs\.elevation_m: .*huge_sparse\.tif: cannot read the block for grid "
                                        r"window"),
    ("Beijing 1954 raster", 3, r"inputs\.elevation_m\.raster: .*dem_bj54\.tif: datum Beijing 1954 has no "
                               r"transformation .*ballpark.*7-parameter.*inputs\.elevation_m\.allow_ballpark: true"),
    ("Beijing 1954 Gauss-Kruger raster", 3, r"inputs\.elevation_m\.raster: .*dem_gk\.tif: datum Beijing 1954 "),
    ("Xian 1980 vector", 3, r"inputs\.rivers\.vector: .*rivers_xian80\.gpkg: datum Xian 1980 has no "
                            r"transformation .*inputs\.rivers\.allow_ballpark: true"),
]


@pytest.mark.parametrize("case, code, pattern", CASES, ids=[c[0] for c in CASES])
def test_hostile_input(tmp_path, capsys, case, code, pattern):
    raw = core_raw()
    inputs = raw["inputs"]
    if case == "rotated transform":
        inputs["elevation_m"]["raster"] = str(_rotated(tmp_path))
    elif case == "vsicurl path":
        inputs["elevation_m"]["raster"] = "/vsicurl/https://example.invalid/dem.tif"
    elif case == "vrt":
        inputs["elevation_m"]["raster"] = str(_vrt(tmp_path))
    elif case == "vrt renamed to .tif":
        inputs["elevation_m"]["raster"] = str(_vrt_renamed(tmp_path))
    elif case == "vector vrt":
        p = tmp_path / "rivers.vrt"
        p.write_text(f'<OGRVRTDataSource><OGRVRTLayer name="rivers"><SrcDataSource>{DATA / "rivers.gpkg"}'
                     f'</SrcDataSource></OGRVRTLayer></OGRVRTDataSource>')
        inputs["rivers"]["vector"] = str(p)
    elif case == "huge claimed dimensions":
        inputs["elevation_m"]["raster"] = str(_huge_claim(tmp_path))
    elif case == "huge sparse, bad tile inside":
        inputs["elevation_m"]["raster"] = str(_huge_sparse_bad_tile(tmp_path))
        raw["grid"].pop("extent")
        raw["grid"]["bounds"] = SMALL_BOUNDS
    elif case == "Beijing 1954 raster":
        inputs["elevation_m"]["raster"] = str(_dem_copy(tmp_path, "dem_bj54.tif", crs="EPSG:4214"))
    elif case == "Beijing 1954 Gauss-Kruger raster":
        inputs["elevation_m"]["raster"] = str(_dem_reprojected(tmp_path, "dem_gk.tif", "EPSG:21417"))
    elif case == "Xian 1980 vector":
        inputs["rivers"]["vector"] = str(_rivers_declared(tmp_path, "rivers_xian80.gpkg", "EPSG:4610"))
    cfg = write_cfg(tmp_path, raw)
    if case == "python tag":
        cfg.write_text(cfg.read_text(encoding="utf-8") + "evil: !!python/object/apply:os.system ['touch pwned']\n",
                       encoding="utf-8")
    out = tmp_path / "out"
    got = main(["run", str(cfg), *ARGS, "--output-dir", str(out)])
    err = capsys.readouterr().err.strip()
    assert got == code, err
    assert err.count("\n") == 0 and err.startswith("suitability: error: "), err
    assert re.search(pattern, err), err
    assert not out.exists() or not any(out.iterdir())
    assert not (tmp_path / "pwned").exists()


def test_allow_vrt_reads_it(tmp_path):
    raw = core_raw()
    raw["inputs"]["elevation_m"]["raster"] = str(_vrt(tmp_path))
    raw["inputs"]["elevation_m"]["allow_vrt"] = True
    cfg = write_cfg(tmp_path, raw)
    assert main(["validate", str(cfg)]) == 0


def _corrupt_middle_tile(path):
    a = (np.arange(768 * 768).reshape(768, 768) % 251).astype("float32")
    with rasterio.open(path, "w", driver="GTiff", width=768, height=768, count=1, dtype="float32", crs="EPSG:4326",
                       transform=from_origin(90, 39, 0.01, 0.01), tiled=True, blockxsize=256, blockysize=256,
                       compress="deflate") as d:
        d.write(a, 1)
    with rasterio.open(path) as s:
        off = int(s.get_tag_item("BLOCK_OFFSET_1_1", "TIFF", bidx=1))
        size = int(s.get_tag_item("BLOCK_SIZE_1_1", "TIFF", bidx=1))
    b = bytearray(path.read_bytes())
    b[off + 10 : off + size - 10] = b"\x5a" * (size - 20)  # garbage inside the deflate stream of tile (1, 1)
    path.write_bytes(bytes(b))


def test_validate_deep_names_the_bad_tile(tmp_path, capsys):
    from rasters.deep_check import check_raster

    bad = tmp_path / "bad.tif"
    _corrupt_middle_tile(bad)
    raw = core_raw()
    raw["inputs"]["elevation_m"]["raster"] = str(bad)
    cfg = write_cfg(tmp_path, raw)
    assert main(["validate", str(cfg)]) == 0  # the header and the last block are fine
    capsys.readouterr()
    assert main(["validate", "--deep", str(cfg)]) == 3
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert re.search(r"inputs\.elevation_m: .*bad\.tif: band 1 block at window col 256, row 256, 256 x 256 pixels "
                     r"cannot be read", err), err
    # The good demo inputs pass, and every block is counted.
    capsys.readouterr()
    assert main(["validate", "--deep", str(write_cfg(tmp_path, core_raw()))]) == 0
    with rasterio.open(DATA / "dem_5arcmin.tif") as ds:
        assert check_raster(DATA / "dem_5arcmin.tif") == len(list(ds.block_windows(1)))


# ------------------------------------------------------------------------------------------------ must work
UTM = "EPSG:32647"
G0X, G0Y, GRES = 400_000.0, 3_900_000.0, 100.0  # grid origin (lower left) and cell size, metres


def _utm_grid():
    from rasters.grid import Grid

    return Grid.from_bounds((G0X, G0Y, G0X + 40 * GRES, G0Y + 24 * GRES), GRES, UTM, chunk_size=16)  # 24 x 40


def _linear_source(tmp_path, res, dx, dy, n=200):
    """An n x n source whose pixel (r, c) holds 10 r + c, with its upper-left corner ``dx``/``dy`` source pixels
    west/north of the point 3 source pixels beyond the grid's upper-left corner."""
    x0 = G0X - (3 + dx) * res
    y0 = G0Y + 24 * GRES + (3 + dy) * res
    r, c = np.mgrid[0:n, 0:n]
    p = tmp_path / f"src_{res}_{dx}_{dy}.tif"
    with rasterio.open(p, "w", driver="GTiff", width=n, height=n, count=1, dtype="float32", crs=UTM,
                       transform=from_origin(x0, y0, res, res)) as d:
        d.write((10 * r + c).astype("float32"), 1)
    return p, x0, y0


def _cell_centres():
    i, j = np.mgrid[0:24, 0:40]
    return G0X + (j + 0.5) * GRES, G0Y + 24 * GRES - (i + 0.5) * GRES


def test_half_pixel_offset_bilinear_is_the_mean_of_four():
    """Origin offset by half a cell: every grid centre falls on a source pixel corner, so bilinear is the mean of
    the four pixels around it. With 10 r + c values the corner at source (row 3 + i + 0.5, col 3 + j + 0.5) in
    pixel-centre coordinates gives 10 (i + 3) + (j + 3) + 5.5 = 10 i + j + 38.5, worked out by hand."""
    import tempfile
    from pathlib import Path

    from rasters.io import read

    with tempfile.TemporaryDirectory() as d:
        p, _, _ = _linear_source(Path(d), GRES, 0.5, 0.5)
        got = read(p, _utm_grid(), "bilinear").compute()
    i, j = np.mgrid[0:24, 0:40]
    np.testing.assert_array_equal(got, (10 * i + j + 38.5).astype(np.float32))


@pytest.mark.parametrize("res, dx, dy", [(GRES, 0.25, 0.75), (0.4 * GRES, 0.13, 0.61), (1.5 * GRES, 0.5, 0.5),
                                         (1.5 * GRES, 0.3, 0.2)])
def test_offset_and_resolution_align_exactly(tmp_path, res, dx, dy):
    """Any offset and resolution: bilinear reproduces a linear field exactly (its value at the fractional source
    position, in pixel-centre coordinates), and nearest takes the pixel that contains the grid cell's centre."""
    from rasters.io import read

    p, x0, y0 = _linear_source(tmp_path, res, dx, dy)
    x, y = _cell_centres()
    fc, fr = (x - x0) / res, (y0 - y) / res  # fractional source column/row of each grid centre, by hand
    grid = _utm_grid()
    bil = read(p, grid, "bilinear").compute()
    np.testing.assert_allclose(bil, 10 * (fr - 0.5) + (fc - 0.5), rtol=0, atol=2e-4)
    near = read(p, grid, "nearest").compute()
    np.testing.assert_array_equal(near, (10 * np.floor(fr) + np.floor(fc)).astype(np.float32))
    # One chunk or many: the same values.
    np.testing.assert_array_equal(read(p, grid.with_chunk_size(64), "bilinear").compute(), bil)


def test_all_nodata_input_warns_and_outputs_are_nodata(tmp_path, capsys):
    """A raster that is nodata everywhere on the grid: not an error (see the README: finding out needs every block,
    and the run has then written its outputs), but a warning naming the input, in run.json and on stderr; the
    outputs that use it are nodata in every cell (a weighted sum with a missing criterion is missing)."""
    import json

    with rasterio.open(DATA / "dem_5arcmin.tif") as src:
        prof = src.profile
    prof.update(nodata=-32768)
    p = tmp_path / "empty_dem.tif"
    with rasterio.open(p, "w", **prof) as dst:
        dst.write(np.full((prof["height"], prof["width"]), -32768, dtype=prof["dtype"]), 1)
    raw = core_raw()
    raw["inputs"]["elevation_m"]["raster"] = str(p)
    out = tmp_path / "out"
    assert main(["run", str(write_cfg(tmp_path, raw)), *ARGS, "--output-dir", str(out)]) == 0
    err = capsys.readouterr().err
    want = f"inputs.elevation_m: {p}: no valid value on the grid"
    assert f"warning: {want}" in err
    rec = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert any(w.startswith(want) for w in rec["properties"]["suitability:warnings"])
    with rasterio.open(out / "suitability.tif") as ds:
        assert np.isnan(ds.read(1)).all()
    with rasterio.open(out / "suitability_class.tif") as ds:
        assert (ds.read(1) == 0).all()
    def cold_then_warm(tag: str, cache_dir: str, entry: str) -> None:
        """Two runs on one cache: both warn; the first stores ``entry``, the second reads it."""
        folder = json.dumps(str(tmp_path / cache_dir))
        args = [a for a in ARGS if a != "--no-cache"] + ["--set", f"cache.folder={folder}"]
        for run in (f"{tag}_cold", f"{tag}_warm"):
            assert main(["run", str(write_cfg(tmp_path, raw)), *args, "--output-dir", str(tmp_path / run)]) == 0
            assert f"warning: {want}" in capsys.readouterr().err, run
            log = json.loads((tmp_path / run / "run.json").read_text(encoding="utf-8"))["properties"]
            assert log["suitability:cache"][entry].startswith("stored" if run.endswith("cold") else "hit"), run

    # With the cache, a cold run (which stores the criterion scores and reads them back) and a warm run (which
    # never reads the DEM) warn alike: the count comes from the criterion's cache entry.
    cold_then_warm("criterion", "c", "criterion:elevation")
    # An input only a rule reads (no criterion): counted when the exclusion mask is stored, kept in its manifest.
    del raw["criteria"]["elevation"]
    raw["criteria"]["slope"]["weight"], raw["criteria"]["water_access"]["weight"] = 0.5, 0.5
    raw["layers"]["slope_deg"]["dem"] = "elevation_ok"
    raw["inputs"]["elevation_ok"] = {"raster": str(DATA / "dem_5arcmin.tif")}
    raw["outputs"]["layers"] = ["slope_deg"]  # the outputs themselves never read the empty DEM
    cold_then_warm("rule", "c", "exclusions")
    # An input only a cached derived layer reads (the DEM behind slope_deg; no criterion or rule reads the DEM):
    # counted when the layer is stored, kept in the layer's manifest. A new cache: the first run stored this slope.
    raw["layers"]["slope_deg"]["dem"] = "elevation_m"
    del raw["inputs"]["elevation_ok"]
    raw["constraints"]["exclude"] = [{"vector": "lakes"}, {"where": "slope_deg >= 25"},
                                     {"where": "in_sanjiangyuan == 1 and slope_deg >= 15"}]
    raw["outputs"]["layers"] = ["dist_water_m"]
    cold_then_warm("derived", "c2", "slope_deg")


def test_geometry_collection_keeps_polygons_for_a_mask(tmp_path):
    """A GeometryCollection of a polygon and a line: read as its polygon (a MultiPolygon), so rasterizing burns
    exactly the cells whose centres the polygon covers (rows 3-6, columns 2-5, by hand) and none along the line."""
    import geopandas as gpd
    import shapely

    from vectors.io import read
    from vectors.rasterize import rasterize

    grid = _utm_grid()
    top = G0Y + 24 * GRES
    square = shapely.box(G0X + 2 * GRES, top - 7 * GRES, G0X + 6 * GRES, top - 3 * GRES)
    line = shapely.LineString([(G0X + 0.5 * GRES, top - 12.5 * GRES), (G0X + 39.5 * GRES, top - 12.5 * GRES)])
    path = tmp_path / "gc.gpkg"
    gpd.GeoDataFrame({"id": [1]}, geometry=[shapely.GeometryCollection([square, line])], crs=UTM).to_file(
        path, layer="zones")
    gdf = read(path, UTM, layer="zones")
    assert list(gdf.geom_type) == ["MultiPolygon"] and gdf.attrs["collections"] == 1
    assert gdf.geometry.iloc[0].equals(square)
    got = rasterize(gdf, grid).compute()
    want = np.zeros(grid.shape, np.uint8)
    want[3:7, 2:6] = 1
    np.testing.assert_array_equal(got, want)
    # GDAL burns a collection as it is: the line's row too. That is what reading it whole would have done.
    raw = rasterize(gpd.GeoDataFrame(geometry=[shapely.GeometryCollection([square, line])], crs=UTM), grid).compute()
    assert raw[12].sum() > 30


def test_epsg4490_raster_and_vector_need_no_axis_swap(tmp_path):
    """CGCS2000 geographic (EPSG:4490) is latitude-first in its EPSG definition, but GeoTIFF and GeoPackage store
    x = longitude. The same data declared EPSG:4490 and EPSG:4326 read the same on the Albers grid, and a cell
    sampled by nearest holds the DEM pixel found by hand (its centre projected to lon/lat, then the pixel index)."""
    import geopandas as gpd
    from pyproj import Transformer

    from rasters.grid import Grid
    from rasters.io import read as read_raster
    from tests.conftest import ALBERS
    from vectors.io import read as read_vector

    grid = Grid.from_bounds((-600_000, -400_000, 600_000, 400_000), 20_000, ALBERS, chunk_size=16)
    a = read_raster(_dem_copy(tmp_path, "dem4490.tif", crs="EPSG:4490"), grid, "nearest").compute()
    b = read_raster(_dem_copy(tmp_path, "dem4326.tif", crs="EPSG:4326"), grid, "nearest").compute()
    np.testing.assert_array_equal(a, b)
    tr = Transformer.from_crs(ALBERS, "EPSG:4326", always_xy=True)
    with rasterio.open(DATA / "dem_5arcmin.tif") as ds:
        dem, nodata = ds.read(1), ds.nodata
        for i, j in [(5, 7), (20, 30), (33, 51)]:
            lon, lat = tr.transform(*grid.xy_of_cells(np.array(i), np.array(j)))
            r, c = ds.index(lon, lat)
            if dem[r, c] != nodata:
                assert a[i, j] == dem[r, c], (i, j)
    assert np.isfinite(a).mean() > 0.5
    cgcs = tmp_path / "c4490.gpkg"
    wgs = tmp_path / "c4326.gpkg"
    counties = gpd.read_file(DATA / "counties.gpkg", layer="counties").to_crs("EPSG:4326")
    counties.set_crs("EPSG:4490", allow_override=True).to_file(cgcs, layer="counties")
    counties.to_file(wgs, layer="counties")
    va, vb = read_vector(cgcs, ALBERS), read_vector(wgs, ALBERS)
    assert va.geometry.geom_equals_exact(vb.geometry, tolerance=1e-6).all()
    lonlat = read_vector(cgcs, "EPSG:4490")
    xmin, ymin, xmax, ymax = lonlat.total_bounds
    assert 89 < xmin < xmax < 104 and 31 < ymin < ymax < 40  # x is longitude, y latitude


# ------------------------------------------------------------------------------------------------ datum rule
GRS80_ALBERS = "+proj=aea +lat_0=35 +lon_0=96 +lat_1=33 +lat_2=38 +ellps=GRS80 +units=m +no_defs"
QINGHAI = (89.0, 31.5, 103.5, 39.5)


@pytest.mark.parametrize("src, dst, refused", [
    ("EPSG:4214", GRS80_ALBERS, True),  # Beijing 1954 onto the demo grid: PROJ has only a ballpark
    ("EPSG:4610", "EPSG:4326", True),  # Xian 1980 to WGS 84
    ("EPSG:4555", "EPSG:4490", True),  # New Beijing to CGCS2000
    ("EPSG:21417", "EPSG:4214", False),  # Beijing 1954 Gauss-Kruger to Beijing 1954 geographic: no datum change
    ("EPSG:4214", "EPSG:21417", False),
    # A declared 7-parameter (here 3-parameter) shift to WGS 84 is a real transformation to a WGS 84 grid...
    ("+proj=longlat +ellps=krass +towgs84=15.8,-154.4,-82.3,0,0,0,0 +no_defs", "EPSG:4326", False),
])
def test_ballpark_rule(src, dst, refused):
    from pyproj import CRS

    from pipelines.input_policy import ballpark_only

    assert ballpark_only(CRS.from_user_input(src), CRS.from_user_input(dst), QINGHAI) is refused


def test_declared_shift_is_ignored_onto_an_unnamed_grs80_datum():
    """...but onto the demo grid's unnamed GRS80 datum PROJ drops it for a ballpark (the point does not move), so
    the rule refuses it there too; reproject such data to EPSG:4490 first."""
    from pyproj import CRS, Transformer

    from pipelines.input_policy import ballpark_only, legacy_datum

    bound = CRS.from_wkt(CRS("EPSG:4214").to_wkt(version="WKT1_GDAL").replace(
        'AUTHORITY["EPSG","6214"]', 'TOWGS84[15.8,-154.4,-82.3,0,0,0,0],AUTHORITY["EPSG","6214"]'))
    assert bound.is_bound and legacy_datum(bound) == "Beijing 1954"
    assert ballpark_only(bound, CRS(GRS80_ALBERS), QINGHAI)
    assert Transformer.from_crs(bound, GRS80_ALBERS, always_xy=True).transform(96, 35) == pytest.approx((0, 0))


@pytest.mark.parametrize("crs, name", [("EPSG:4214", "Beijing 1954"), ("EPSG:2343", "Xian 1980"),
                                       ("EPSG:4555", "New Beijing"), ("EPSG:4490", None), ("EPSG:4326", None),
                                       ("ESRI:104010", None)])
def test_legacy_datum_names(crs, name):
    from pyproj import CRS

    from pipelines.input_policy import legacy_datum

    assert legacy_datum(CRS.from_user_input(crs)) == name


def test_allow_ballpark_accepts_a_legacy_datum(tmp_path):
    raw = core_raw()
    raw["inputs"]["elevation_m"]["raster"] = str(_dem_copy(tmp_path, "dem_bj54.tif", crs="EPSG:4214"))
    raw["inputs"]["rivers"]["vector"] = str(_rivers_declared(tmp_path, "rivers_xian80.gpkg", "EPSG:4610"))
    raw["inputs"]["elevation_m"]["allow_ballpark"] = True
    raw["inputs"]["rivers"]["allow_ballpark"] = True
    assert main(["validate", str(write_cfg(tmp_path, raw))]) == 0


# ------------------------------------------------------------------------------------------------ remote paths
def test_remote_path_reaches_gdal_verbatim(tmp_path, capsys, monkeypatch):
    """With allow_remote the URL is passed to GDAL as written (no network here: GDAL's own error names it)."""
    from pipelines.config import load

    monkeypatch.setenv("GDAL_HTTP_TIMEOUT", "5")
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "0")
    url = "/vsicurl/https://example.invalid/dem.tif"
    raw = core_raw()
    raw["inputs"]["elevation_m"]["raster"] = url
    raw["inputs"]["elevation_m"]["allow_remote"] = True
    cfg = write_cfg(tmp_path, raw)
    loaded = load(cfg)
    assert loaded.resolve(loaded.config.inputs["elevation_m"].raster) == url
    assert loaded.resolved_dict()["inputs"]["elevation_m"]["raster"] == url
    out = tmp_path / "out"
    assert main(["run", str(cfg), *ARGS, "--output-dir", str(out)]) == 3
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    # GDAL's wording depends on how the lookup failed; the path in it must be the config's, "//" and all.
    assert re.search(r"inputs\.elevation_m: /vsicurl/https://example\.invalid/dem\.tif: (cannot read raster|not a "
                     r"raster GDAL can read)", err), err
    assert not out.exists() or not any(out.iterdir())


def test_remote_path_given_to_the_reader_verbatim(tmp_path, monkeypatch):
    """The string rasters.io.inspect receives is exactly the config's (checked without GDAL)."""
    import rasters.io
    from rasters.errors import InputDataError

    seen = []

    def fake_inspect(path, band=1):
        seen.append(path)
        raise InputDataError(f"{path}: stop here")

    monkeypatch.setattr(rasters.io, "inspect", fake_inspect)
    url = "/vsis3/bucket/dir//dem.tif"
    raw = core_raw()
    raw["inputs"]["elevation_m"]["raster"] = url
    raw["inputs"]["elevation_m"]["allow_remote"] = True
    assert main(["run", str(write_cfg(tmp_path, raw)), *ARGS, "--output-dir", str(tmp_path / "o")]) == 3
    assert seen == [url]
