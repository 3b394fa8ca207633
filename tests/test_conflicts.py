"""suitability.conflicts: settlements in the red line, on unsuitable land, or in water-overloaded zones.

A 6 x 6 grid of 1 km cells in UTM 47N, top-left corner (X0, Y0 + 6 km): cell (row r, col c) has its centre at
(X0 + (c + 0.5) km, Y0 + (5.5 - r) km). Every expectation is read off the hand-drawn layout in each test.
"""

from __future__ import annotations

import dask.array as da
import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from shapely.geometry import Point, box

from rasters.errors import ConfigError, InputDataError
from rasters.grid import Grid
from suitability.conflicts import settlement_conflicts
from suitability.water import PerCapitaUse, WaterZones, csv_frame, water_carrying_table

UTM = "EPSG:32647"
KM = 1000.0
X0, Y0 = 500_000.0, 4_000_000.0


def grid6() -> Grid:
    return Grid(UTM, Affine(KM, 0, X0, 0, -KM, Y0 + 6 * KM), 6, 6, chunk_size=16)


def pt(col: float, row: float) -> Point:
    """The point at (fractional) cell position: col 0.5 / row 0.5 is the centre of cell (0, 0)."""
    return Point(X0 + col * KM, Y0 + (6 - row) * KM)


def cell_box(c0, r0, c1, r1):
    """Box covering columns c0..c1-1 and rows r0..r1-1."""
    return box(X0 + c0 * KM, Y0 + (6 - r1) * KM, X0 + c1 * KM, Y0 + (6 - r0) * KM)


def settlements(geoms, names):
    return gpd.GeoDataFrame({"name": names}, geometry=geoms, crs=UTM)


RED = gpd.GeoDataFrame({"name": ["三江源 (approx.)"]}, geometry=[cell_box(0, 0, 3, 6)], crs=UTM)  # left half


def test_settlement_inside_red_line_is_reported_with_the_name():
    s = settlements([pt(1.5, 2.5), pt(4.5, 2.5)], ["in", "out"])
    out = settlement_conflicts(s, name_column="name", red_lines=RED, red_line_name_column="name")
    assert out["settlement"].tolist() == ["in"]
    assert out["in_red_line"].tolist() == [True]
    assert out["red_line"].iloc[0] == "三江源 (approx.)"
    assert out["reasons"].iloc[0] == "inside ecological red line 三江源 (approx.)"
    assert out["red_line_share"].iloc[0] == 1.0
    assert out.crs == s.crs and out.geometry.iloc[0].equals(pt(1.5, 2.5))


def test_polygon_half_inside_gets_its_share_and_edge_touch_does_not_count():
    # columns 2..3 (x 2..4 km) of which x 2..3 is inside the red line (x 0..3): half the area
    half = cell_box(2, 1, 4, 3)
    touching = cell_box(3, 1, 5, 3)  # shares only the x = 3 km edge with the red line
    out = settlement_conflicts(settlements([half, touching], ["half", "touch"]), name_column="name",
                               red_lines=RED, red_line_name_column="name", keep_all=True)
    assert out["in_red_line"].tolist() == [True, False]
    assert out["red_line_share"].iloc[0] == pytest.approx(0.5)
    assert "(50% of its area)" in out["reasons"].iloc[0]
    assert out["n_reasons"].tolist() == [1, 0]


def test_unsuitable_class_points_and_polygon_majority():
    classes = np.full((6, 6), 3, dtype=np.uint8)
    classes[:, :2] = 1                # columns 0-1 unsuitable
    classes[4, 4] = 0                 # a no-data cell
    s = settlements(
        [
            pt(0.5, 0.5),               # cell (0, 0): class 1 -> flagged
            pt(3.5, 3.5),               # cell (3, 3): class 3
            cell_box(1, 2, 4, 3),       # cells (2, 1), (2, 2), (2, 3): classes 1, 3, 3 -> majority 3
            cell_box(1, 4, 3, 5),       # cells (4, 1), (4, 2): 1 and 3 tie -> the unsuitable 1 wins
            cell_box(4, 4, 5, 5),       # cell (4, 4): no data -> class 0
            pt(0.5, -2.0),              # outside the grid -> no data
        ],
        ["p1", "p3", "maj3", "tie", "nodata", "outside"],
    )
    labels = {1: "低", 3: "中等"}
    for cls in (classes, da.from_array(classes, chunks=4)):
        out = settlement_conflicts(s, name_column="name", classes=cls, grid=grid6(), unsuitable_classes=(1,),
                                   class_labels=labels, keep_all=True)
        assert out["class_code"].tolist() == [1, 3, 3, 1, 0, 0]
        assert out["on_unsuitable"].tolist() == [True, False, False, True, False, False]
        assert out["class_label"].tolist() == ["低", "中等", "中等", "低", "no data", "no data"]
        assert out["reasons"].iloc[0] == "on unsuitable class 1 (低)"


def test_tiny_polygon_falls_back_to_its_point():
    classes = np.full((6, 6), 2, dtype=np.uint8)
    classes[1, 1] = 1
    tiny = box(X0 + 1.1 * KM, Y0 + 4.1 * KM, X0 + 1.2 * KM, Y0 + 4.2 * KM)  # inside cell (1, 1), no centre
    out = settlement_conflicts(settlements([tiny], ["tiny"]), classes=classes, grid=grid6())
    assert out["class_code"].tolist() == [1]


def water_table():
    zones = gpd.GeoDataFrame(
        {"name": ["West", "East"], "alloc": [2.0e6, 8.0e6], "pop": [25_000.0, 10_000.0]},
        geometry=[cell_box(0, 0, 3, 6), cell_box(3, 0, 6, 6)], crs=UTM,
    )
    z = WaterZones.from_frame(zones, name="name", allocation="alloc", population="pop")
    # West: 2.0e6 / 100 = 20,000 carried < 25,000 living -> over by 5,000; East: 80,000 carried, fine
    return water_carrying_table(z, PerCapitaUse(100, "m3/person/yr", "toy"))


def test_water_overloaded_zone_is_reported_with_figures():
    s = settlements([pt(1.5, 1.5), pt(4.5, 1.5)], ["w", "e"])
    out = settlement_conflicts(s, name_column="name", water_table=water_table(), keep_all=True)
    assert out["water_overloaded"].tolist() == [True, False]
    assert out["water_zone"].tolist() == ["West", "East"]
    assert out["zone_population"].tolist() == [25_000, 10_000]
    assert out["zone_carrying_population"].tolist() == [20_000, 80_000]
    assert out["zone_excess_population"].iloc[0] == 5_000
    assert out["reasons"].iloc[0] == ("water zone West: population 25,000 exceeds water-carrying population 20,000 "
                                      "by 5,000")


def test_all_reasons_together_and_csv():
    classes = np.full((6, 6), 1, dtype=np.uint8)
    s = settlements([pt(1.5, 1.5)], ["both"])
    out = settlement_conflicts(s, name_column="name", red_lines=RED, red_line_name_column="name",
                               classes=classes, grid=grid6(), water_table=water_table())
    assert out["n_reasons"].tolist() == [3]
    assert out["reasons"].iloc[0].split("; ")[0].startswith("inside ecological red line")
    f = csv_frame(out)
    assert "geometry" not in f.columns and f["reasons"].iloc[0] == out["reasons"].iloc[0]


def test_conflicts_bad_input():
    s = settlements([pt(1.5, 1.5)], ["x"])
    with pytest.raises(ConfigError, match="nothing to check"):
        settlement_conflicts(s)
    with pytest.raises(ConfigError, match="a class raster needs its grid"):
        settlement_conflicts(s, classes=np.ones((6, 6), dtype=np.uint8))
    with pytest.raises(ConfigError, match=r"name_column: no attribute 'nmae' \(did you mean 'name'\?\)"):
        settlement_conflicts(s, name_column="nmae", red_lines=RED)
    with pytest.raises(ConfigError, match="class raster has shape"):
        settlement_conflicts(s, classes=np.ones((5, 6), dtype=np.uint8), grid=grid6())
    t = water_table()
    t.loc[1, "carrying_population"] = np.nan
    with pytest.raises(InputDataError, match=r"water zone\(s\) East lack a population or carrying figure"):
        settlement_conflicts(s, water_table=t)
    with pytest.raises(InputDataError, match="settlements layer has no CRS"):
        settlement_conflicts(gpd.GeoDataFrame({"name": ["x"]}, geometry=[pt(1, 1)]), red_lines=RED)
