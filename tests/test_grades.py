"""双评价 grade tables (suitability.grades): hand-worked grids, the config layer type and the preset config."""

from __future__ import annotations

import json
import re
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import rasterio
import yaml

from pipelines.cli import main
from pipelines.config import load
from pipelines.plan import build_plan
from rasters.errors import ConfigError, InputDataError
from rasters.grid import Grid
from rasters.terrain import relief, slope
from suitability.grades import (
    Adjustment,
    BreaksBase,
    GradeRules,
    MatrixBase,
    as_float32,
    grade_by_breaks,
    grade_by_matrix,
    town_construction_2019,
)
from tests.conftest import ALBERS

PRESET = Path(__file__).resolve().parent.parent / "configs" / "shuangpingjia_town.yaml"


def preset_block() -> dict:
    """The grades block of the preset config, as the config layer gives it to GradeRules.from_dict."""
    raw = yaml.safe_load(PRESET.read_text(encoding="utf-8"))
    block = dict(raw["layers"]["town_land_grade"])
    assert block.pop("type") == "grades"
    return block


# ---------------------------------------------------------------------------------------------------------------
# The preset on a hand-built DEM.
#
# The DEM is separable, z[r, c] = base + f[c] + g[r], on 100 m cells. For such a surface Horn's 3x3 gradient is
# exactly the central difference: dz/dx = (f[c+1] - f[c-1]) / 200, dz/dy = (g[r+1] - g[r-1]) / 200 (the 1-2-1
# weights are the same on both sides and cancel), so slope = atan(hypot(dz/dx, dz/dy)). The 3x3 relief
# (max - min) of a sum over a product window is range(f over c-1..c+1) + range(g over r-1..r+1). The 6x6 study
# area is the interior of an 8x8 array, so every study cell has its full 3x3 window.

F = np.array([0, 0, 0, 20, 70, 20, 110, 120], dtype=np.float64)  # along columns 0..7 (0 and 7 are the ring)
G = np.array([0, 0, 0, 60, 0, 150, 0, 150], dtype=np.float64)  # along rows 0..7
#   study columns c = 1..6:   dz/dx = 0, .1, .35, 0, .2, .5     x-relief = 0, 20, 70, 50, 90, 100
#   study rows    r = 1..6:   dz/dy = 0, .3, 0, .45, 0, 0       y-relief = 0, 60, 60, 150, 150, 150
#   elevation above base, f[c] + g[r]:
#        0   0  20  70  20 110
#        0   0  20  70  20 110
#       60  60  80 130  80 170
#        0   0  20  70  20 110
#      150 150 170 220 170 260
#        0   0  20  70  20 110
#
# Slope grades by hand (tan 3° = .0524, tan 8° = .1405, tan 15° = .2679, tan 25° = .4663):
#   rows with dz/dy = 0: tan = 0, .1, .35, 0, .2, .5          -> 1 2 4 1 3 5
#   row 2 (dz/dy = .3):  hypot = .3, .316, .461, .3, .361, .583 -> 4 4 4 4 4 5
#   row 4 (dz/dy = .45): hypot = .45, .461, .570, .45, .492, .673 -> 4 4 5 4 5 5
SLOPE_GRADES = np.array([
    [1, 2, 4, 1, 3, 5],
    [4, 4, 4, 4, 4, 5],
    [1, 2, 4, 1, 3, 5],
    [4, 4, 5, 4, 5, 5],
    [1, 2, 4, 1, 3, 5],
    [1, 2, 4, 1, 3, 5],
])
# Relief = x-relief + y-relief; (100, 200] lowers one grade, > 200 two (100 and 200 are on the edges):
#   row 1:         0  20  70  50  90 100  -> 0 0 0 0 0 0
#   rows 2, 3:    60  80 130 110 150 160  -> 0 0 1 1 1 1
#   rows 4, 5, 6: 150 170 220 200 240 250 -> 1 1 2 1 2 2
RELIEF_LOWER = np.array([
    [0, 0, 0, 0, 0, 0],
    [0, 0, 1, 1, 1, 1],
    [0, 0, 1, 1, 1, 1],
    [1, 1, 2, 1, 2, 2],
    [1, 1, 2, 1, 2, 2],
    [1, 1, 2, 1, 2, 2],
])

EXPECTED = {
    # base 2000 m: no elevation rule applies; grade = clamp(slope grade + relief lowering, 1, 5).
    2000.0: [
        [1, 2, 4, 1, 3, 5],
        [4, 4, 5, 5, 5, 5],
        [1, 2, 5, 2, 4, 5],
        [5, 5, 5, 5, 5, 5],
        [2, 3, 5, 2, 5, 5],
        [2, 3, 5, 2, 5, 5],
    ],
    # base 3440 m: cells 60 m or more above base reach 3,500 m (row 3 columns 1-2 exactly 3,500) and are lowered
    # one more grade; nothing reaches 5,000 m.
    3440.0: [
        [1, 2, 4, 2, 3, 5],
        [4, 4, 5, 5, 5, 5],
        [2, 3, 5, 3, 5, 5],
        [5, 5, 5, 5, 5, 5],
        [3, 4, 5, 3, 5, 5],
        [2, 3, 5, 3, 5, 5],
    ],
    # base 4940 m: cells 60 m or more above base reach 5,000 m (row 3 columns 1-2 exactly 5,000) and are forced
    # to 5; the others are in 3,500-5,000 m and lowered one grade before the relief rules.
    4940.0: [
        [2, 3, 5, 5, 4, 5],
        [5, 5, 5, 5, 5, 5],
        [5, 5, 5, 5, 5, 5],
        [5, 5, 5, 5, 5, 5],
        [5, 5, 5, 5, 5, 5],
        [3, 4, 5, 5, 5, 5],
    ],
}


def hand_dem(base: float) -> np.ndarray:
    return (base + F[None, :] + G[:, None]).astype(np.float32)


def dem_layers(base: float) -> dict[str, np.ndarray]:
    """Slope and relief of the hand DEM by the pipeline's own kernels, checked against the closed forms above;
    the 6x6 study area of each layer."""
    z = hand_dem(base)
    grid = Grid.from_bounds((0, 0, 800, 800), 100, ALBERS, chunk_size=16)
    s = slope(z, grid)
    rel = relief(z, grid, 3)
    fx = (F[2:] - F[:-2]) / 200.0
    gy = (G[2:] - G[:-2]) / 200.0
    s_ref = np.degrees(np.arctan(np.hypot(fx[None, :], gy[:, None])))
    rx = np.array([np.ptp(F[c - 1:c + 2]) for c in range(1, 7)])
    ry = np.array([np.ptp(G[r - 1:r + 2]) for r in range(1, 7)])
    inner = (slice(1, 7), slice(1, 7))
    np.testing.assert_allclose(s[inner], s_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(rel[inner], ry[:, None] + rx[None, :])
    return {"slope_deg": s[inner], "relief_m": rel[inner], "elevation_m": z[inner]}


@pytest.mark.parametrize("base", sorted(EXPECTED))
def test_preset_on_hand_built_dem(base):
    layers = dem_layers(base)
    expected = np.array(EXPECTED[base], dtype=np.uint8)
    np.testing.assert_array_equal(town_construction_2019().apply(layers), expected)
    # The preset config's block gives the same grades.
    np.testing.assert_array_equal(GradeRules.from_dict(preset_block()).apply(layers), expected)
    # And on dask, in uneven chunks.
    lazy = {k: da.from_array(v, chunks=(4, 5)) for k, v in layers.items()}
    np.testing.assert_array_equal(town_construction_2019().apply(lazy).compute(), expected)


def test_hand_grids_follow_the_rule_text():
    """Guard on the hand-written tables: the base-2000 grid is slope + relief, clamped."""
    np.testing.assert_array_equal(np.clip(SLOPE_GRADES + RELIEF_LOWER, 1, 5), EXPECTED[2000.0])


# ---------------------------------------------------------------------------------------------------------------
# Breaks.


def test_breaks_edges_closed_left_and_right():
    x = np.array([0, 2.999, 3, 7.9, 8, 15, 24.99, 25, 89, np.nan], dtype=np.float32)
    np.testing.assert_array_equal(grade_by_breaks(x, [3, 8, 15, 25]), [1, 1, 2, 2, 3, 4, 4, 5, 5, 0])
    np.testing.assert_array_equal(grade_by_breaks(x, [3, 8, 15, 25], closed="right"), [1, 1, 1, 2, 2, 3, 4, 4, 5, 0])


def test_breaks_decreasing_direction():
    # e.g. a water-availability index: the more, the better (grade 1).
    x = np.array([0.0, 0.2, 0.5, 0.9, np.nan], dtype=np.float32)
    np.testing.assert_array_equal(grade_by_breaks(x, [0.2, 0.5], direction="decreasing"), [3, 2, 1, 1, 0])


def test_breaks_compare_in_float32():
    # 0.1 is not exactly representable: the layer's float32 0.1 must still be "on" the break 0.1.
    x = np.array([0.1], dtype=np.float32)
    assert grade_by_breaks(x, [0.1])[0] == 2
    assert grade_by_breaks(x.astype(np.float64), [0.1])[0] == 2


def test_intervals_in_the_record():
    rec = town_construction_2019().as_record()
    assert rec["base"]["grades"] == {"1": "< 3", "2": "[3, 8)", "3": "[8, 15)", "4": "[15, 25)", "5": ">= 25"}
    right = BreaksBase("s", (3, 8), closed="right", direction="decreasing").intervals()
    assert right == {1: "> 8", 2: "(3, 8]", 3: "<= 3"}


# ---------------------------------------------------------------------------------------------------------------
# Adjustments, order and clamp, each on a small grid by hand.


def _layers():
    s = np.array([[1.0, 5.0, 10.0, 20.0, 30.0]], dtype=np.float32)  # slope grades 1 2 3 4 5
    flag = np.array([[1.0, 0.0, 1.0, 0.0, 1.0]], dtype=np.float32)
    return {"s": s, "flag": flag}


BASE = BreaksBase("s", (3, 8, 15, 25))


@pytest.mark.parametrize(
    "step, expected",
    [
        (Adjustment("flag == 1", lower=1), [2, 2, 4, 4, 5]),    # 5 + 1 clamps to 5
        (Adjustment("flag == 1", lower=3), [4, 2, 5, 4, 5]),
        (Adjustment("flag == 1", lower=-1), [1, 2, 2, 4, 4]),   # raising grade 1 clamps to 1
        (Adjustment("flag == 1", force=5), [5, 2, 5, 4, 5]),
        (Adjustment("flag == 1", force=1), [1, 2, 1, 4, 1]),
        (Adjustment("flag == 0", force=3), [1, 3, 3, 3, 5]),
        (Adjustment("s >= 10 and flag == 1", lower=1), [1, 2, 4, 4, 5]),
    ],
)
def test_each_adjustment_alone(step, expected):
    np.testing.assert_array_equal(GradeRules(BASE, (step,)).apply(_layers()), [expected])


def test_order_of_adjustments():
    lower = Adjustment("flag == 1", lower=1)
    force = Adjustment("flag == 1", force=3)
    # lower then force: the force wins on flagged cells.
    np.testing.assert_array_equal(GradeRules(BASE, (lower, force)).apply(_layers()), [[3, 2, 3, 4, 3]])
    # force then lower: the forced grade is lowered again.
    np.testing.assert_array_equal(GradeRules(BASE, (force, lower)).apply(_layers()), [[4, 2, 4, 4, 4]])


def test_clamp_only_at_the_end():
    # Grade 4 lowered by 2 is 6 (not clamped between steps), raised by 1 is 5; grade 5: 7 -> 6 -> 5.
    steps = (Adjustment("s > 0", lower=2), Adjustment("s > 0", lower=-1))
    np.testing.assert_array_equal(GradeRules(BASE, steps).apply(_layers()), [[2, 3, 4, 5, 5]])
    # Raising below 1 and lowering back: 1 - 3 + 1 = -1 -> clamp 1; 3 - 3 + 1 = 1.
    steps = (Adjustment("s > 0", lower=-3), Adjustment("s > 0", lower=1))
    np.testing.assert_array_equal(GradeRules(BASE, steps).apply(_layers()), [[1, 1, 1, 2, 3]])


def test_nodata_policies():
    s = np.array([1.0, 1.0, np.nan, 1.0], dtype=np.float32)
    z = np.array([4000.0, np.nan, 4000.0, 3000.0], dtype=np.float32)
    step = (Adjustment("z >= 3500", lower=1),)
    # any: a cell whose elevation is unknown has no grade.
    np.testing.assert_array_equal(GradeRules(BreaksBase("s", (3,)), step).apply({"s": s, "z": z}), [2, 0, 0, 1])
    # base: only slope decides; the unknown condition does not apply.
    rules = GradeRules(BreaksBase("s", (3,)), step, nodata="base")
    np.testing.assert_array_equal(rules.apply({"s": s, "z": z}), [2, 1, 0, 1])


def test_as_float32():
    g = np.array([0, 1, 5], dtype=np.uint8)
    out = as_float32(g)
    assert out.dtype == np.float32 and np.isnan(out[0]) and list(out[1:]) == [1.0, 5.0]
    lazy = as_float32(da.from_array(g, chunks=2))
    np.testing.assert_array_equal(lazy.compute(), out)


# ---------------------------------------------------------------------------------------------------------------
# Two-factor matrix.


def test_matrix_by_hand():
    # land grade (rows, 1..3) x water grade (columns, 1..2) -> base grade 1..4
    table = [[1, 2],
             [2, 3],
             [4, 4]]
    land = np.array([1, 1, 2, 2, 3, 3, 0, np.nan, 2], dtype=np.float32)
    water = np.array([1, 2, 1, 2, 1, 2, 1, 1, np.nan], dtype=np.float32)
    expected = [1, 2, 2, 3, 4, 4, 0, 0, 0]
    np.testing.assert_array_equal(grade_by_matrix(land, water, table, 4), expected)
    land_u8 = np.array([1, 1, 2, 2, 3, 3, 0, 0, 2], dtype=np.uint8)  # uint8 grades: 0 is the no data
    np.testing.assert_array_equal(grade_by_matrix(land_u8, water, table, 4), expected)
    lazy = grade_by_matrix(da.from_array(land, chunks=4), da.from_array(water, chunks=3), table, 4)
    np.testing.assert_array_equal(lazy.compute(), expected)


def test_matrix_then_adjustment():
    rules = GradeRules.from_dict({
        "matrix": {"rows": "land", "columns": "water", "table": [[1, 2], [2, 3]]},
        "adjust": [{"lower": 1, "where": "hazard > 0"}],
        "n": 3,
    })
    land = np.array([1, 1, 2, 2], dtype=np.float32)
    water = np.array([1, 2, 1, 2], dtype=np.float32)
    hazard = np.array([1, 0, 1, 1], dtype=np.float32)
    np.testing.assert_array_equal(rules.apply({"land": land, "water": water, "hazard": hazard}), [2, 2, 3, 3])


@pytest.mark.parametrize("bad", [4.0, 1.5, -1.0, np.inf])
def test_matrix_input_not_a_grade_is_loud(bad):
    land = np.array([1, bad], dtype=np.float32)
    water = np.array([1, 1], dtype=np.float32)
    with pytest.raises(InputDataError, match=r"matrix\.rows: layer 'rows' holds .* not a grade 1\.\.3"):
        grade_by_matrix(land, water, [[1], [2], [3]], 3)
    with pytest.raises(InputDataError, match=r"not a grade 1\.\.3"):
        grade_by_matrix(da.from_array(land, chunks=1), water, [[1], [2], [3]], 3).compute()


# ---------------------------------------------------------------------------------------------------------------
# numpy and dask give identical grades, whatever the chunks.


@pytest.mark.parametrize("chunks", [(64, 64), (7, 13), (1, 64)])
def test_numpy_and_dask_identical(chunks):
    rng = np.random.default_rng(4)
    shape = (64, 64)
    s = rng.uniform(0, 40, shape).astype(np.float32)
    z = rng.uniform(2000, 6000, shape).astype(np.float32)
    r = rng.uniform(0, 300, shape).astype(np.float32)
    for a in (s, z, r):
        a[rng.random(shape) < 0.05] = np.nan
    s[0, :5] = [3, 8, 15, 25, 0]  # exactly on the breaks
    layers = {"slope_deg": s, "elevation_m": z, "relief_m": r}
    rules = town_construction_2019()
    eager = rules.apply(layers)
    lazy = rules.apply({k: da.from_array(v, chunks=chunks) for k, v in layers.items()})
    assert isinstance(lazy, da.Array) and lazy.dtype == np.uint8
    np.testing.assert_array_equal(lazy.compute(), eager)
    # Mixed numpy and dask inputs too.
    mixed = rules.apply({**layers, "relief_m": da.from_array(r, chunks=chunks)})
    np.testing.assert_array_equal(mixed.compute(), eager)
    assert set(np.unique(eager)) == {0, 1, 2, 3, 4, 5}


# ---------------------------------------------------------------------------------------------------------------
# Bad input: one line naming the key.


@pytest.mark.parametrize(
    "spec, pattern",
    [
        ({"base": {"layer": "s", "breaks": [8, 3, 15, 25]}},
         r"^base\.breaks: must be strictly increasing .* got \[8, 3, 15, 25\]$"),
        ({"base": {"layer": "s", "breaks": [0.1, 0.100000001]}}, r"^base\.breaks: must be strictly increasing"),
        ({"base": {"layer": "s", "breaks": []}}, r"^base\.breaks: needs at least one break"),
        ({"base": {"layer": "s", "breaks": [3, "8"]}}, r"^base\.breaks\[1\]: must be a finite number"),
        ({"base": {"layer": "s", "breaks": [3, float("nan")]}}, r"^base\.breaks\[1\]: must be a finite number"),
        ({"base": {"layer": "s", "breaks": [3, 8]}, "n": 5}, r"^base\.breaks: 2 breaks make 3 grades, but n is 5"),
        ({"base": {"layer": "s", "breaks": [3], "closed": "both"}}, r"^base\.closed: must be one of left, right"),
        ({"base": {"layer": "s", "breaks": [3], "direction": "down"}}, r"^base\.direction: must be one of"),
        ({"base": {"layer": "s", "breaks": [3], "brakes": 1}}, r"^base\.brakes: unknown key"),
        ({"base": {"breaks": [3]}}, r"^base: needs 'layer' and 'breaks'"),
        ({"base": {"layer": "s", "breaks": [3]}, "adjust": [{"lower": 1, "force": 2, "where": "s > 1"}]},
         r"^adjust\[0\]: give exactly one of 'lower'"),
        ({"base": {"layer": "s", "breaks": [3]}, "adjust": [{"where": "s > 1"}]},
         r"^adjust\[0\]: give exactly one of 'lower'"),
        ({"base": {"layer": "s", "breaks": [3]}, "adjust": [{"lower": 0, "where": "s > 1"}]},
         r"^adjust\[0\]\.lower: 0 changes nothing"),
        ({"base": {"layer": "s", "breaks": [3]}, "adjust": [{"lower": 1.5, "where": "s > 1"}]},
         r"^adjust\[0\]\.lower: must be a whole number"),
        ({"base": {"layer": "s", "breaks": [3, 8]}, "adjust": [{"force": 4, "where": "s > 1"}]},
         r"^adjust\[0\]\.force: 4 is not a grade 1\.\.3"),
        ({"base": {"layer": "s", "breaks": [3]}, "adjust": [{"force": 0, "where": "s > 1"}]},
         r"^adjust\[0\]\.force: must be a whole number in 1\.\.255, got 0"),
        ({"base": {"layer": "s", "breaks": [3]}, "adjust": [{"lower": 1, "where": "abs(s) > 1"}]},
         r"^adjust\[0\]\.where 'abs\(s\) > 1': function calls not allowed"),
        ({"base": {"layer": "s", "breaks": [3]}, "adjust": [{"lower": 1, "where": "s + 1"}]},
         r"^adjust\[0\]\.where 's \+ 1': a rule must be a condition"),
        ({"base": {"layer": "s", "breaks": [3]}, "adjust": [{"lower": 1}]}, r"^adjust\[0\]: needs 'where'"),
        ({"base": {"layer": "s", "breaks": [3]}, "nodata": "all"}, r"^nodata: must be one of any, base"),
        ({"base": {"layer": "s", "breaks": [3, 8]}, "labels": ["a", "b"]}, r"^labels: need 3 texts"),
        ({"base": {"layer": "s", "breaks": [3]}, "grades": 2}, r"^grades: unknown key"),
        ({"adjust": []}, r"^give exactly one of 'base'"),
        ({"base": {"layer": "s", "breaks": [3]}, "matrix": {"rows": "a", "columns": "b", "table": [[1]]}},
         r"^give exactly one of 'base'"),
        ({"matrix": {"rows": "a", "columns": "b", "table": [[1, 2], [2, 3]]}}, r"^n: required with a matrix"),
        ({"matrix": {"rows": "a", "columns": "b", "table": [[1, 2], [2, 3]]}, "n": 2},
         r"^matrix\.table\[1\]\[1\]: 3 is not a grade 1\.\.2"),
        ({"matrix": {"rows": "a", "columns": "b", "table": [[1, 0]]}, "n": 2},
         r"^matrix\.table\[0\]\[1\]: must be a whole number in 1\.\.255, got 0"),
        ({"matrix": {"rows": "a", "columns": "b", "table": [[1, 2.5]]}, "n": 3},
         r"^matrix\.table\[0\]\[1\]: must be a whole number"),
        ({"matrix": {"rows": "a", "columns": "b", "table": [[1, 2], [2]]}, "n": 3},
         r"^matrix\.table: every row needs the same number of columns, got row lengths \[2, 1\]"),
        ({"matrix": {"rows": "a", "columns": "b", "table": [[1, 2], [2, 3]], "n_rows": 3}, "n": 3},
         r"^matrix\.table: shape is 2 x 2, but n_rows is 3: need 3 rows of 2 grades"),
        ({"matrix": {"rows": "a", "columns": "b", "table": [[1, 2], [2, 3]], "n_columns": 3}, "n": 3},
         r"^matrix\.table: shape is 2 x 2, but n_columns is 3"),
        ({"matrix": {"rows": "a", "columns": "b", "table": []}, "n": 3}, r"^matrix\.table: must be a list of rows"),
        ({"matrix": {"rows": "a", "columns": "a", "table": [[1]]}, "n": 3}, r"^matrix: rows and columns name the sa"),
        ({"base": {"layer": "s", "breaks": [3]}, "n": 1}, r"^n: must be a whole number in 2\.\.255, got 1$"),
    ],
)
def test_bad_rules(spec, pattern):
    with pytest.raises(ConfigError) as info:
        GradeRules.from_dict(spec)
    msg = str(info.value)
    assert "\n" not in msg
    assert re.search(pattern, msg), msg


def test_unknown_layers_are_named_with_a_suggestion():
    rules = town_construction_2019()
    layers = {"slope_deg": np.zeros(2, np.float32), "elevation": np.zeros(2, np.float32),
              "relief_m": np.zeros(2, np.float32)}
    with pytest.raises(ConfigError, match=r"^adjust\[0\]\.where 'elevation_m >= 3500 .*': unknown layer "
                                          r"'elevation_m' \(did you mean 'elevation'\?\)"):
        rules.apply(layers)
    with pytest.raises(ConfigError, match=r"^base\.layer: unknown layer 'slope' \(did you mean 'slope_deg'\?\)"):
        GradeRules(BreaksBase("slope", (3,))).check_names({"slope_deg"})
    with pytest.raises(ConfigError, match=r"^matrix\.columns: unknown layer 'water' \(did you mean 'water_grade'"):
        GradeRules(MatrixBase("land_grade", "water", ((1,),)), n=2).check_names({"land_grade", "water_grade"})


def test_layers_of_different_shapes():
    with pytest.raises(ConfigError, match="differ in shape"):
        GradeRules(BASE, (Adjustment("flag > 0", lower=1),)).apply(
            {"s": np.zeros(3, np.float32), "flag": np.zeros(4, np.float32)})


def test_record_is_explicit_and_json_ready():
    rec = GradeRules.from_dict(preset_block()).as_record()
    json.dumps(rec, ensure_ascii=False)
    assert rec["n"] == 5 and rec["grade_1"] == "most suitable" and rec["clamp"] == [1, 5]
    assert rec["base"]["breaks"] == [3, 8, 15, 25] and "2019 draft" in rec["base"]["source"]
    assert [(s.get("lower"), s.get("force"), s["where"]) for s in rec["adjust"]] == [
        (1, None, "elevation_m >= 3500 and elevation_m < 5000"),
        (None, 5, "elevation_m >= 5000"),
        (1, None, "relief_m > 100 and relief_m <= 200"),
        (2, None, "relief_m > 200"),
    ]
    assert all("2019 draft" in s["source"] for s in rec["adjust"])
    assert rec["labels"] == ["高", "较高", "中等", "较低", "低"]


def test_preset_function_equals_preset_config():
    a, b = town_construction_2019().as_record(), GradeRules.from_dict(preset_block()).as_record()
    for key in ("n", "clamp", "nodata", "labels"):
        assert a[key] == b[key]
    assert a["base"]["breaks"] == b["base"]["breaks"] and a["base"]["closed"] == b["base"]["closed"]
    strip = [{k: v for k, v in s.items() if k != "source"} for s in a["adjust"]]
    assert strip == [{k: v for k, v in s.items() if k != "source"} for s in b["adjust"]]


# ---------------------------------------------------------------------------------------------------------------
# The config layer and the preset config.


def _preset_raw() -> dict:
    raw = yaml.safe_load(PRESET.read_text(encoding="utf-8"))
    for inp in raw["inputs"].values():
        for k in ("raster", "vector"):
            if k in inp:
                inp[k] = str((PRESET.parent / inp[k]).resolve())
    return raw


def _write(tmp_path, raw) -> Path:
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return p


def test_preset_config_plans():
    plan = build_plan(load(PRESET))
    assert set(plan.nodes["town_land_grade"].deps) == {"slope_deg", "elevation_m", "relief_m"}
    assert plan.order.index("relief_m") < plan.order.index("town_land_grade")


@pytest.mark.parametrize(
    "edit, pattern",
    [
        (lambda g: g["base"].update(breaks=[3, 15, 8, 25]),
         r"layers\.town_land_grade: base\.breaks: must be strictly increasing .*got \[3, 15, 8, 25\]"),
        (lambda g: g["adjust"][0].update(where="elevaton_m >= 3500"),
         r"layers\.town_land_grade\.adjust\[0\]\.where: 'elevaton_m' is not an input or layer "
         r"\(did you mean 'elevation_m'\?\)"),
        (lambda g: g["adjust"][1].update(force=6),
         r"layers\.town_land_grade: adjust\[1\]\.force: 6 is not a grade 1\.\.5"),
        (lambda g: g["adjust"][2].update(where="relief_m > 100 & relief_m <= 200"),
         r"layers\.town_land_grade: adjust\[2\]\.where .*'&' \(use 'and'\) not allowed"),
        (lambda g: g.update(matrix={"rows": "slope_deg", "columns": "relief_m", "table": [[1, 2]]}),
         r"layers\.town_land_grade: give exactly one of 'base'"),
        (lambda g: g["base"].update(layer="slope"),
         r"layers\.town_land_grade\.base\.layer: 'slope' is not an input or layer \(did you mean 'slope_deg'\?\)"),
        (lambda g: g["adjust"][0].update(lower=True),
         r"layers\.town_land_grade\.adjust\.0\.lower\S*: Input should be a valid integer"),
        (lambda g: g["adjust"][0].update(lowr=1),
         r"layers\.town_land_grade\.adjust\.0: unknown key 'lowr' \(did you mean 'lower'\?\)"),
    ],
)
def test_config_errors_name_the_key(tmp_path, capsys, edit, pattern):
    raw = _preset_raw()
    edit(raw["layers"]["town_land_grade"])
    out = tmp_path / "out"
    code = main(["run", str(_write(tmp_path, raw)), "--output-dir", str(out), "-q"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert re.search(pattern, err), err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())


def test_matrix_layer_through_the_pipeline(tmp_path):
    """A grade_matrix form in a config: slope grade x elevation band -> grade, equal to the table read by hand."""
    raw = _preset_raw()
    raw["layers"]["slope_grade"] = {"type": "grades", "base": {"layer": "slope_deg", "breaks": [1, 2]}}
    raw["layers"]["height_grade"] = {"type": "grades", "base": {"layer": "elevation_m", "breaks": [3000, 4000]}}
    table = [[1, 1, 2], [1, 2, 3], [2, 3, 3]]
    raw["layers"]["town_land_grade"] = {"type": "grades", "n": 3,
                                        "matrix": {"rows": "slope_grade", "columns": "height_grade",
                                                   "table": table, "n_rows": 3, "n_columns": 3}}
    raw["criteria"]["town_land"]["transform"] = {"type": "reclass", "table": {1: 1.0, 2: 0.5, 3: 0.0}}
    raw["classes"] = {"breaks": [0.25, 0.75], "labels": ["c1", "c2", "c3"]}
    raw["layers"].pop("relief_m")
    raw["outputs"]["layers"] = ["slope_deg", "elevation_m", "town_land_grade"]
    out = tmp_path / "out"
    code = main(["run", str(_write(tmp_path, raw)), "--set", "grid.resolution_m=10000", "--output-dir", str(out),
                 "-q"])
    assert code == 0
    s, z, g = (_read(out / f"{n}.tif") for n in ("slope_deg", "elevation_m", "town_land_grade"))
    valid = np.isfinite(s) & np.isfinite(z)
    sg = 1 + (s[valid] >= 1) + (s[valid] >= 2)
    zg = 1 + (z[valid] >= 3000) + (z[valid] >= 4000)
    np.testing.assert_array_equal(g[valid], np.array(table)[sg - 1, zg - 1])
    assert np.isnan(g[~valid]).all()
    assert len(np.unique(g[valid])) == 3


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


def test_preset_config_end_to_end(tmp_path):
    """The preset at 10 km (relief over 3 x 3 cells): the grade raster equals the 2019-draft rules applied by hand
    to the written slope, relief and elevation; suitability and class follow the documented mapping."""
    out = tmp_path / "out"
    code = main(["run", str(PRESET), "--set", "grid.resolution_m=10000", "--set", "layers.relief_m.window_m=30000",
                 "--output-dir", str(out), "-q"])
    assert code == 0
    s, r, z, g = (_read(out / f"{n}.tif") for n in ("slope_deg", "relief_m", "elevation_m", "town_land_grade"))
    with rasterio.open(out / "suitability_class.tif") as ds:
        cls = ds.read(1)
        assert json.loads(ds.tags()["CLASS_LABELS"]) == ["低", "较低", "中等", "较高", "高"]
    score = _read(out / "suitability.tif")

    valid = np.isfinite(s) & np.isfinite(r) & np.isfinite(z)
    # The 2019 draft by hand: slope < 3, 3-8, 8-15, 15-25, >= 25 degrees -> 1..5; elevation [3500, 5000) lowers
    # one; >= 5000 forces 5; relief (100, 200] lowers one, > 200 two; clamp 1..5.
    ref = 1 + (s >= 3).astype(int) + (s >= 8) + (s >= 15) + (s >= 25)
    ref = ref + ((z >= 3500) & (z < 5000))
    ref = np.where(z >= 5000, 5, ref)
    ref = ref + ((r > 100) & (r <= 200)) + 2 * (r > 200)
    ref = np.clip(ref, 1, 5)
    np.testing.assert_array_equal(g[valid], ref[valid].astype(np.float32))
    assert np.isnan(g[~valid]).all()
    # Every rule does something on this grid (the test is not vacuous).
    assert ((z >= 3500) & (z < 5000))[valid].any() and (z >= 5000)[valid].any()
    assert ((r > 100) & (r <= 200))[valid].any() and (r > 200)[valid].any()
    assert len(np.unique(g[valid])) >= 4

    # Suitability: the reclass 1 -> 1.0 ... 5 -> 0.0; class = 6 - grade where the province mask leaves a value.
    inside = cls > 0
    assert inside.sum() > 0.3 * cls.size
    np.testing.assert_allclose(score[inside], (5 - g[inside]) / 4, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(cls[inside], 6 - g[inside])
    assert np.isnan(score[~inside]).all()
    rec = json.loads((out / "run.json").read_text(encoding="utf-8"))
    layer = rec["properties"]["suitability:config"]["layers"]["town_land_grade"]
    assert layer["base"]["breaks"] == [3, 8, 15, 25] and "2019 draft" in layer["base"]["source"]
    assert [a["where"] for a in layer["adjust"]] == ["elevation_m >= 3500 and elevation_m < 5000",
                                                    "elevation_m >= 5000", "relief_m > 100 and relief_m <= 200",
                                                    "relief_m > 200"]
