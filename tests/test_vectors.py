"""vectors: reading/repairing/reprojecting layers, and rasterizing them onto the grid.

Rasterize cases are on a 6 x 6 grid of 1 m cells with its top-left corner at (0, 6): cell (row r, col c) spans
x in [c, c+1], y in [5-r, 6-r] and has its centre at (c + 0.5, 5.5 - r). Every expected array below was worked
out by hand from those two facts and GDAL's documented rules (centre inside / every cell touched); no shape
puts a vertex or edge exactly on a cell centre or a cell corner, so the expectations are unambiguous.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import dask
import dask.array as da
import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio import features
from shapely.geometry import LineString, Point, Polygon, box

from rasters.errors import ConfigError, InputDataError
from rasters.grid import Grid
from vectors import layers, mask, rasterize, read

ALBERS = "+proj=aea +lat_0=35 +lon_0=96 +lat_1=33 +lat_2=38 +ellps=GRS80 +units=m +no_defs"
COUNTIES = Path(__file__).resolve().parents[1] / "data" / "qinghai" / "counties.gpkg"
CRS_M = "EPSG:32647"  # any projected CRS in metres; the hand cases only need a planar grid


def grid6() -> Grid:
    return Grid(CRS_M, Affine(1.0, 0.0, 0.0, 0.0, -1.0, 6.0), 6, 6, chunk_size=16)


def frame(geoms, **cols) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(cols, geometry=list(geoms), crs=CRS_M)


def burn(geoms, **kw) -> np.ndarray:
    cols = kw.pop("cols", {})
    return rasterize(frame(geoms, **cols), grid6(), **kw).compute()


# --- hand-drawn 6 x 6 cases ------------------------------------------------------------------------------------


def test_square_centre_rule_vs_all_touched():
    # box x, y in [0.7, 3.3]: centres inside are x, y in {1.5, 2.5} -> cols 1-2, rows 4-3 (y 1.5 -> r 4).
    sq = box(0.7, 0.7, 3.3, 3.3)
    expected_centre = np.array(
        [
            [0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0],
            [0, 1, 1, 0, 0, 0],
            [0, 1, 1, 0, 0, 0],
            [0, 0, 0, 0, 0, 0],
        ],
        dtype=np.uint8,
    )
    # every cell the box touches: x in [0.7, 3.3] meets cols 0-3; y in [0.7, 3.3] meets rows 5-2.
    expected_touched = np.array(
        [
            [0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 0, 0],
        ],
        dtype=np.uint8,
    )
    got = burn([sq])
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected_centre)
    np.testing.assert_array_equal(burn([sq], all_touched=True), expected_touched)


def test_triangle_centre_rule():
    # x + y < 6.3 at centre (c + .5, 5.5 - r) <=> c - r < 0.3 <=> c <= r: the lower-left triangle with diagonal.
    tri = Polygon([(0, 0), (6.3, 0), (0, 6.3)])
    expected = np.tril(np.ones((6, 6), dtype=np.uint8))
    np.testing.assert_array_equal(burn([tri]), expected)


def test_lines():
    # horizontal line along y = 2.5 (centre of row 3), x from 0.5 to 5.5: all of row 3.
    horizontal = LineString([(0.5, 2.5), (5.5, 2.5)])
    # vertical line along x = 4.2 from y 5.6 to 3.4: col 4, rows 0 (y 5.6), 1, 2 (y 3.4).
    vertical = LineString([(4.2, 5.6), (4.2, 3.4)])
    expected = np.zeros((6, 6), np.uint8)
    expected[3, :] = 1
    expected[0:3, 4] = 1
    np.testing.assert_array_equal(burn([horizontal, vertical]), expected)


def test_slanted_line_bresenham_vs_all_touched():
    # (0.5, 4.7) -> (3.5, 3.4): x = 0.5 + 3t, y = 4.7 - 1.3t. It crosses x = 1 at y 4.57, x = 2 at y 4.05,
    # y = 4 at x 2.12 and x = 3 at y 3.62, so it passes through (row, col) (1,0) (1,1) (1,2) (2,2) (2,3).
    line = LineString([(0.5, 4.7), (3.5, 3.4)])
    touched = np.zeros((6, 6), np.uint8)
    for r, c in [(1, 0), (1, 1), (1, 2), (2, 2), (2, 3)]:
        touched[r, c] = 1
    np.testing.assert_array_equal(burn([line], all_touched=True), touched)
    # GDAL's default line rule visits one cell per column (|dx| > |dy|): the row of the line at each column
    # centre x = 0.5, 1.5, 2.5, 3.5 is y = 4.70, 4.27, 3.83, 3.40 -> rows 1, 1, 2, 2.
    one_per_col = np.zeros((6, 6), np.uint8)
    for r, c in [(1, 0), (1, 1), (2, 2), (2, 3)]:
        one_per_col[r, c] = 1
    np.testing.assert_array_equal(burn([line]), one_per_col)


def test_points():
    # (4.5, 0.5) lies in col 4, row 5; (2.3, 4.9) in col 2, row 1 (6 - 4.9 = 1.1).
    expected = np.zeros((6, 6), np.uint8)
    expected[5, 4] = 1
    expected[1, 2] = 1
    np.testing.assert_array_equal(burn([Point(4.5, 0.5), Point(2.3, 4.9)]), expected)
    np.testing.assert_array_equal(burn([Point(4.5, 0.5), Point(2.3, 4.9)], all_touched=True), expected)


def test_attribute_values_and_float_fill():
    # two disjoint squares: box(0.2, 4.2, 1.8, 5.8) holds centres (0.5, 5.5), (1.5, 5.5), (0.5, 4.5), (1.5, 4.5)
    # -> rows 0-1, cols 0-1; box(3.2, 0.2, 5.8, 1.8) holds centres x 3.5..5.5, y 0.5, 1.5 -> rows 4-5, cols 3-5.
    geoms = [box(0.2, 4.2, 1.8, 5.8), box(3.2, 0.2, 5.8, 1.8)]
    cols = {"score": [3.0, 7.5], "code": [3, 7], "label": ["a", "b"]}
    f = np.nan
    expected_float = np.array(
        [
            [3.0, 3.0, f, f, f, f],
            [3.0, 3.0, f, f, f, f],
            [f, f, f, f, f, f],
            [f, f, f, f, f, f],
            [f, f, f, 7.5, 7.5, 7.5],
            [f, f, f, 7.5, 7.5, 7.5],
        ],
        dtype=np.float32,
    )
    got = burn(geoms, cols=cols, value="score", dtype="float32")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected_float)  # NaN fill by default for float dtypes
    # the integer column 'code' burns 3 and 7 with fill 0
    expected_int = np.where(expected_float == 7.5, 7, np.nan_to_num(expected_float)).astype(np.uint8)
    np.testing.assert_array_equal(burn(geoms, cols=cols, value="code"), expected_int)
    # explicit fill and a constant value
    expected_const = np.where(np.isnan(expected_float), 9, 4).astype(np.int16)
    np.testing.assert_array_equal(burn(geoms, value=4, dtype="int16", fill=9), expected_const)


def test_overlapping_polygons_later_feature_wins():
    # A = box(0.2, 0.2, 3.8, 3.8): cols 0-3, rows 2-5. B = box(2.2, 2.2, 5.8, 5.8): cols 2-5, rows 0-3.
    # They overlap in rows 2-3, cols 2-3.
    a, b = box(0.2, 0.2, 3.8, 3.8), box(2.2, 2.2, 5.8, 5.8)
    base = np.array(
        [
            [0, 0, 2, 2, 2, 2],
            [0, 0, 2, 2, 2, 2],
            [1, 1, 9, 9, 2, 2],
            [1, 1, 9, 9, 2, 2],
            [1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 0, 0],
        ],
        dtype=np.uint8,
    )
    cols = {"v": [1, 2]}
    np.testing.assert_array_equal(burn([a, b], cols=cols, value="v"), np.where(base == 9, 2, base))
    rev = {"v": [2, 1]}
    np.testing.assert_array_equal(burn([b, a], cols=rev, value="v"), np.where(base == 9, 1, base))
    np.testing.assert_array_equal(burn([a, b], cols=cols, value="v", merge_alg="add"), np.where(base == 9, 3, base))


def test_mask_is_boolean():
    got = mask(frame([box(0.7, 0.7, 3.3, 3.3)]), grid6(), all_touched=True).compute()
    assert got.dtype == bool
    assert got.sum() == 16 and got[2:6, 0:4].all()


def test_empty_frame_and_missing_values():
    g = frame([box(0.2, 0.2, 3.8, 3.8), box(2.2, 2.2, 5.8, 5.8)], v=[1.0, np.nan])
    got = rasterize(g, grid6(), value="v").compute()
    expected = np.zeros((6, 6), np.uint8)
    expected[2:6, 0:4] = 1  # the NaN feature is not burned, so it does not overwrite the first one
    np.testing.assert_array_equal(got, expected)
    empty = rasterize(frame([]), grid6(), dtype="float32").compute()
    assert np.isnan(empty).all()


# --- chunking and the graph ------------------------------------------------------------------------------------


def _mixed_features() -> gpd.GeoDataFrame:
    rng = np.random.default_rng(7)
    geoms, vals = [], []
    geoms.append(box(-3.3, -2.2, 40.7, 60.1).difference(Point(20.1, 18.3).buffer(9.7)))  # spans every chunk
    vals.append(1)
    for k in range(25):
        x, y = rng.uniform(0, 50), rng.uniform(0, 37)
        geoms.append(Point(x, y).buffer(rng.uniform(1, 9), quad_segs=5))
        vals.append(2 + k % 5)
    for _ in range(8):
        pts = rng.uniform([-5, -5], [55, 42], size=(4, 2))
        geoms.append(LineString(pts))
        vals.append(10)
    for _ in range(15):
        geoms.append(Point(rng.uniform(0, 50), rng.uniform(0, 37)))
        vals.append(20)
    return gpd.GeoDataFrame({"v": vals}, geometry=geoms, crs=CRS_M)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
@pytest.mark.parametrize("all_touched", [False, True])
def test_chunk_invariance(all_touched):
    g = _mixed_features()
    many = Grid(CRS_M, Affine(1.0, 0, 0, 0, -1.0, 37.0), 50, 37, chunk_size=16)
    one = many.with_chunk_size(1024)
    a = rasterize(g, many, "v", all_touched=all_touched)
    b = rasterize(g, one, "v", all_touched=all_touched)
    assert a.chunks == ((16, 16, 5), (16, 16, 16, 2))
    assert b.numblocks == (1, 1)
    np.testing.assert_array_equal(a.compute(), b.compute())
    # and both equal GDAL burning the whole frame at once in row order (no chunks, no per-chunk selection)
    whole = features.rasterize(
        zip(g.geometry, g["v"], strict=True),
        out_shape=(37, 50),
        transform=many.transform,
        all_touched=all_touched,
        dtype="uint8",
    )
    np.testing.assert_array_equal(a.compute(), whole)
    assert a.compute().max() == 20 and len(np.unique(a.compute())) > 5  # the mix really is burned


def test_graph_pickles_and_tasks_get_only_their_features():
    g = frame([box(0.2, 0.2, 3.8, 3.8)], v=[5])  # in the bottom-left corner of the grid only
    grid = Grid(CRS_M, Affine(1.0, 0, 0, 0, -1.0, 37.0), 50, 37, chunk_size=16)
    arr = rasterize(g, grid, "v")
    graph = pickle.loads(pickle.dumps(arr.dask))
    restored = da.Array(graph, arr.name, arr.chunks, dtype=arr.dtype)
    got = restored.compute(scheduler="sync")
    expected = np.zeros((37, 50), np.uint8)
    expected[33:37, 0:4] = 5  # rows 33-36 have centre y 3.5..0.5
    np.testing.assert_array_equal(got, expected)
    # only the bottom-left block's task carries a geometry
    with_geoms = [k for k, t in dict(arr.dask).items() if isinstance(t, tuple) and len(t) > 3 and len(t[3])]
    assert [k[1:] for k in with_geoms] == [(2, 0)]


def test_big_polygon_is_cut_per_task():
    """A polygon over all 12 chunks is not copied whole into each task: the tasks' WKB adds up to about one copy."""
    circle = Point(25.1, 18.3).buffer(30.0, quad_segs=1024)  # 4097 vertices, covers the whole 50 x 37 grid
    grid = Grid(CRS_M, Affine(1.0, 0, 0, 0, -1.0, 37.0), 50, 37, chunk_size=16)
    arr = rasterize(frame([circle]), grid)
    carried = sum(sum(len(b) for b in t[3]) for t in dict(arr.dask).values())
    assert carried < 2 * len(circle.wkb)
    # the centre rule by hand: a cell is burned iff its centre is within 30 (less the polygon's chord error)
    rows, cols = np.mgrid[0:37, 0:50]
    d = np.hypot(cols + 0.5 - 25.1, 37 - (rows + 0.5) - 18.3)
    got = arr.compute()
    assert got[d < 29.99].all() and not got[d > 30.0].any()


def test_rasterize_reprojects_features_in_another_crs():
    # a square in UTM 47N, burned on a grid in the same CRS vs. burned after reading it in lon/lat.
    g = frame([box(500_000.2, 4_000_000.2, 500_003.8, 4_000_003.8)])
    grid = Grid(CRS_M, Affine(1.0, 0, 500_000.0, 0, -1.0, 4_000_006.0), 6, 6, chunk_size=16)
    lonlat = g.to_crs("EPSG:4326")
    np.testing.assert_array_equal(rasterize(lonlat, grid).compute(), rasterize(g, grid).compute())


def test_rasterize_errors():
    g = frame([box(0.2, 0.2, 3.8, 3.8)], height_m=[3.0], name=["x"])
    with pytest.raises(ConfigError, match=r"no attribute 'heigth_m' in the layer \(did you mean 'height_m'\?\)"):
        rasterize(g, grid6(), value="heigth_m")
    with pytest.raises(ConfigError, match=r"attribute 'name' is not numeric"):
        rasterize(g, grid6(), value="name")
    with pytest.raises(ConfigError, match=r"value: 300..300 does not fit dtype uint8"):
        rasterize(g, grid6(), value=300)
    with pytest.raises(ConfigError, match=r"non-integer values cannot be burned into dtype uint8"):
        rasterize(g, grid6(), value=2.5)
    with pytest.raises(ConfigError, match=r"merge_alg: unknown 'replce' \(did you mean 'replace'\?\)"):
        rasterize(g, grid6(), merge_alg="replce")
    with pytest.raises(ConfigError, match=r"dtype: 'bool' cannot be rasterized"):
        rasterize(g, grid6(), dtype="bool")


# --- reading ---------------------------------------------------------------------------------------------------


def test_counties_are_repaired():
    raw = pyogrio.read_dataframe(COUNTIES, layer="counties")
    assert (~raw.is_valid).sum() == 34  # as shipped (data README)
    g = read(COUNTIES, ALBERS, layer="counties")
    assert len(g) == 44
    assert g.is_valid.all()
    assert set(g.geom_type) == {"MultiPolygon"}
    assert g.attrs["repaired"] == 34 and g.attrs["dropped"] == 0
    # area kept: the repaired polygons cover what the input outlines covered (union computed independently)
    reference = shapely.unary_union(raw.to_crs(ALBERS).geometry.values).area
    assert abs(g.area.sum() / reference - 1) < 0.005
    # and 玛多 is about 24,506 km² in this data set (README), 25,253 km² officially
    maduo = g.loc[g["name_zh"] == "玛多县"].area.iloc[0] / 1e6
    assert 24_000 < maduo < 25_300


def test_bow_tie_becomes_valid_polygons(tmp_path):
    # bow-tie (0,0) (2,2) (2,0) (0,2): two triangles meeting at (1,1), each of base 2 and height 1, area 1.
    bow = Polygon([(0, 0), (2, 2), (2, 0), (0, 2), (0, 0)])
    assert not bow.is_valid
    ok = box(5, 5, 6, 6)
    path = tmp_path / "bow.gpkg"
    gpd.GeoDataFrame({"id": [1, 2]}, geometry=[bow, ok], crs=CRS_M).to_file(path, layer="shapes")
    g = read(path, CRS_M)
    assert g.attrs["repaired"] == 1
    assert g.is_valid.all()
    assert list(g.geom_type) == ["MultiPolygon", "Polygon"]  # no stray lines or points from make_valid
    assert len(g.geometry.iloc[0].geoms) == 2
    assert g.geometry.iloc[0].area == pytest.approx(2.0)
    assert g.geometry.iloc[1].equals(ok)


def test_reproject_point_to_albers_matches_pyproj(tmp_path):
    path = tmp_path / "pt.geojson"
    gpd.GeoDataFrame({"id": [1]}, geometry=[Point(100.5, 36.25)], crs="EPSG:4326").to_file(path)
    g = read(path, ALBERS)
    x, y = Transformer.from_crs("EPSG:4326", ALBERS, always_xy=True).transform(100.5, 36.25)
    assert g.geometry.iloc[0].x == pytest.approx(x, abs=1e-6)
    assert g.geometry.iloc[0].y == pytest.approx(y, abs=1e-6)
    # east of the central meridian 96°E and north of 35°N: a swapped axis order would give neither
    assert 350_000 < x < 450_000 and 100_000 < y < 200_000


def test_epsg4490_round_trip_keeps_lon_lat(tmp_path):
    path = tmp_path / "cgcs2000.gpkg"
    gpd.GeoDataFrame({"id": [1]}, geometry=[Point(100.5, 36.25)], crs="EPSG:4490").to_file(path, layer="pts")
    assert pyogrio.read_info(path)["crs"] == "EPSG:4490"
    same = read(path, "EPSG:4490")
    assert (same.geometry.iloc[0].x, same.geometry.iloc[0].y) == (100.5, 36.25)
    wgs = read(path, "EPSG:4326")  # CGCS2000 and WGS84 agree to well under a metre: no swap, same numbers
    assert wgs.geometry.iloc[0].x == pytest.approx(100.5, abs=1e-6)
    assert wgs.geometry.iloc[0].y == pytest.approx(36.25, abs=1e-6)
    alb = read(path, ALBERS)
    x, y = Transformer.from_crs("EPSG:4490", ALBERS, always_xy=True).transform(100.5, 36.25)
    assert (alb.geometry.iloc[0].x, alb.geometry.iloc[0].y) == pytest.approx((x, y), abs=1e-6)
    # written back and read again: still the same point
    back = tmp_path / "back.gpkg"
    alb.to_crs("EPSG:4490").to_file(back)
    again = read(back, "EPSG:4490")
    assert again.geometry.iloc[0].x == pytest.approx(100.5, abs=1e-9)
    assert again.geometry.iloc[0].y == pytest.approx(36.25, abs=1e-9)


def test_clip_bounds_keeps_only_features_touching_the_box():
    bounds_ll = (101.5, 36.5, 101.9, 36.8)  # around Xining
    raw = pyogrio.read_dataframe(COUNTIES, layer="counties")
    expected = set(raw.loc[shapely.intersects(shapely.make_valid(raw.geometry.values), box(*bounds_ll)), "name_zh"])
    assert 2 <= len(expected) < 44
    g = read(COUNTIES, "EPSG:4326", clip_bounds=bounds_ll)
    assert set(g["name_zh"]) == expected
    assert g.is_valid.all()
    # the same box given in the Albers CRS (its footprint is a little larger than the lon/lat box)
    t = Transformer.from_crs("EPSG:4326", ALBERS, always_xy=True)
    alb_bounds = t.transform_bounds(*bounds_ll)
    ga = read(COUNTIES, ALBERS, clip_bounds=alb_bounds)
    assert expected <= set(ga["name_zh"])
    box_alb = box(*alb_bounds)
    assert all(geom.intersects(box_alb) for geom in ga.geometry)


def test_clip_bounds_outside_the_layer_gives_an_empty_frame():
    g = read(COUNTIES, "EPSG:4326", clip_bounds=(10.0, 10.0, 11.0, 11.0))
    assert len(g) == 0 and g.crs.to_epsg() == 4326
    grid = Grid.from_bounds((10.0, 10.0, 11.0, 11.0), 0.05, "EPSG:4326", chunk_size=16)
    assert not mask(g, grid).compute().any()


def test_layers_and_layer_choice(tmp_path):
    assert layers(COUNTIES) == ["counties"]
    path = tmp_path / "two.gpkg"
    pts = gpd.GeoDataFrame({"id": [1]}, geometry=[Point(100, 36)], crs="EPSG:4326")
    pts.to_file(path, layer="towns")
    pts.to_file(path, layer="wells")
    assert sorted(layers(path)) == ["towns", "wells"]
    assert read(path, "EPSG:4326", layer="wells").attrs["layer"] == "wells"
    with pytest.raises(InputDataError, match=r"two\.gpkg: has 2 layers \(towns, wells\); name one with 'layer'"):
        read(path, "EPSG:4326")


# --- error paths -----------------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.gpkg"
    with pytest.raises(InputDataError, match=r"nope\.gpkg: file not found$"):
        read(path, "EPSG:4326")
    assert not path.exists()


def test_text_file_is_not_a_vector(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\nthis is not a vector\n")
    with pytest.raises(InputDataError, match=r"notes\.txt: not a vector file GDAL/OGR can read") as e:
        read(path, "EPSG:4326")
    assert "\n" not in str(e.value)


def test_wrong_layer_name_suggests_closest():
    with pytest.raises(InputDataError, match=r"no layer 'countys'; layers are counties \(did you mean 'counties'\?\)"):
        read(COUNTIES, "EPSG:4326", layer="countys")


def test_empty_layer(tmp_path):
    path = tmp_path / "empty.gpkg"
    gpd.GeoDataFrame({"a": []}, geometry=gpd.GeoSeries([], crs="EPSG:4326")).to_file(path, layer="nothing")
    with pytest.raises(InputDataError, match=r"empty\.gpkg: layer 'nothing' is empty \(no features\)"):
        read(path, "EPSG:4326")


@pytest.mark.parametrize("name", ["nocrs.gpkg", "nocrs.shp"])
def test_no_crs(tmp_path, name):
    path = tmp_path / name
    with pytest.warns(UserWarning):  # geopandas warns that it writes without a CRS
        gpd.GeoDataFrame({"a": [1]}, geometry=[Point(1, 2)], crs=None).to_file(path)
    with pytest.raises(InputDataError, match=r"nocrs\.(gpkg|shp): layer 'nocrs' has no CRS; assign one"):
        read(path, "EPSG:4326")


def test_all_geometries_empty(tmp_path):
    path = tmp_path / "nulls.gpkg"
    gpd.GeoDataFrame({"a": [1, 2]}, geometry=[None, None], crs="EPSG:4326").to_file(path, layer="nulls")
    with pytest.raises(InputDataError, match=r"layer 'nulls' has no geometries"):
        read(path, "EPSG:4326")


def test_table_without_geometry(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("name,pop\nXining,2467965\n")
    with pytest.raises(InputDataError, match=r"table\.csv: layer 'table' has no geometry column"):
        read(path, "EPSG:4326")


def test_bad_target_crs():
    with pytest.raises(ConfigError, match=r"crs: cannot interpret 'EPSG:99999' as a CRS"):
        read(COUNTIES, "EPSG:99999")


def test_read_then_rasterize_counties_area():
    """End to end: each county's burned cell count times the cell area is close to its polygon area."""
    g = read(COUNTIES, ALBERS, layer="counties")
    g["idx"] = np.arange(1, len(g) + 1)
    grid = Grid.from_bounds(tuple(g.total_bounds), 5000.0, ALBERS, chunk_size=64)
    with dask.config.set(scheduler="sync"):
        arr = rasterize(g, grid, "idx").compute()
    counts = np.bincount(arr.ravel(), minlength=len(g) + 1)[1:]
    big = g.area.to_numpy() > 5e9  # > 200 cells of 25 km²: the centre rule is within a few percent
    rel = counts[big] * grid.cell_area_m2() / g.area.to_numpy()[big] - 1
    assert np.abs(rel).max() < 0.05


def test_cells_centred_on_a_shared_border_do_not_depend_on_chunking():
    """Two polygons share a zigzag border whose vertices sit exactly on cell centres (1/8-degree multiples on a
    1/12-degree grid, as in the Qinghai county data). Burning in world coordinates gave ~100 such cells to one
    neighbour or the other depending on the chunk origin; in global pixel coordinates the answer is the same for
    every chunking. (Which side GDAL's centre rule picks for a centre exactly on an edge is GDAL's business.)"""
    import geopandas as gpd
    from shapely.geometry import Polygon

    from rasters.grid import Grid
    from vectors.rasterize import rasterize

    res = 1 / 12
    grid = Grid.from_bounds((89.5, 31.5, 89.5 + 60 * res, 31.5 + 60 * res), res, "EPSG:4326", chunk_size=1024)
    xs = 89.5 + (np.arange(0, 61, 3) + 0.5) * res
    ys = [31.5 + (20 + (i % 2) * 3 + 0.5) * res for i in range(len(xs))]
    border = list(zip(xs, ys, strict=True))
    below = Polygon([(89.0, 31.0), *border, (95.0, 31.0)])
    above = Polygon([(89.0, 37.0), *border, (95.0, 37.0)])
    gdf = gpd.GeoDataFrame({"v": [1, 2]}, geometry=[below, above], crs="EPSG:4326")
    base = rasterize(gdf, grid, value="v").compute()
    assert (base == 1).sum() > 1000 and (base == 2).sum() > 1000
    for chunk in (16, 17, 23, 32, 48):
        np.testing.assert_array_equal(rasterize(gdf, grid.with_chunk_size(chunk), value="v").compute(), base)
