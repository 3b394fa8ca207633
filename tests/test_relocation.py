"""Relocation: source figures and the flag rule, destination capacities, the allocation LP/MILP, travel matrices.

References are hand-worked (the toy transportation problem, small grids) or independent figures (census, README)."""

from __future__ import annotations

import math

import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from affine import Affine
from shapely.geometry import Point, box

import rasters.io
from rasters.errors import ConfigError, InputDataError
from rasters.grid import Grid
from suitability import relocation as rl
from vectors.io import read as read_vectors

from .conftest import ALBERS, DATA

# --- the toy: 2 sources, 3 destinations ----------------------------------------------------------------------------
#
#            X     Y     Z      demand
#   A       10    20    40      100
#   B       15    12    30       80
#   cap     70    60   100      (total 230 >= 180)
#
# Z is the dearest for both, so compare each cell with its row's Z ("saving"): A-X 30, A-Y 20, B-X 15, B-Y 18.
# X gives the largest saving to A (30 > 15): A-X = 70 fills X. Y: A saves 20, B 18 per person; A has 30 left, so
# A-Y = 30 and B-Y = 30 fills Y; the rest goes to Z: B-Z = 50. Cost 70*10 + 30*20 + 30*12 + 50*30 = 3160.
# Check with potentials (u_s + v_d = cost on used cells, v_Z = 0 as Z has slack 50): B-Z: u_B = 30; B-Y: v_Y = -18;
# A-Y: u_A = 38; A-X: v_X = -28. Unused cells have positive reduced cost, A-Z: 40 - 38 = 2, B-X: 15 - (30 - 28) = 13,
# so the optimum is unique. The duals: one more place at X is worth 28 (A-X +1, A-Y -1, B-Y +1, B-Z -1:
# +10 - 20 + 12 - 30 = -28), at Y 18 (A-Y... B-Y +1, B-Z -1: 12 - 30 = -18), at Z 0 (slack).
TOY_T = np.array([[10.0, 20.0, 40.0], [15.0, 12.0, 30.0]])
TOY_CAP = {"X": 70.0, "Y": 60.0, "Z": 100.0}


def toy_destinations(cap=TOY_CAP, **extra):
    t = pd.DataFrame({"name": list(cap), "zone": ["zx", "zy", "zz"], "land": list(cap.values()), **extra})
    return rl.destination_capacity(t, land_km2="land", density_per_km2=1.0)


def toy_sources(demand=(100.0, 80.0), **extra):
    return pd.DataFrame({"source": ["A", "B"], "demand": list(demand), **extra})


def flow(res, s, d):
    f = res.flows
    hit = f[(f["source"] == s) & (f["destination"] == d)]
    return float(hit["people"].sum())


def test_toy_optimum_by_hand():
    res = rl.allocate(toy_sources(), toy_destinations(), TOY_T)
    assert res.status == "optimal" and res.duals_available
    expected = {("A", "X"): 70, ("A", "Y"): 30, ("B", "Y"): 30, ("B", "Z"): 50}
    for s in "AB":
        for d in "XYZ":
            assert flow(res, s, d) == pytest.approx(expected.get((s, d), 0.0), abs=1e-6)
    assert res.objective == pytest.approx(3160.0)
    assert res.sources["unplaced"].sum() == 0
    cons = res.constraints.set_index("constraint")
    assert cons.loc["X", "value_per_unit"] == pytest.approx(28.0)
    assert cons.loc["Y", "value_per_unit"] == pytest.approx(18.0)
    assert cons.loc["Z", "value_per_unit"] == pytest.approx(0.0, abs=1e-9)
    assert cons.loc["X", "binds"] and cons.loc["Y", "binds"] and not cons.loc["Z", "binds"]
    # Source duals: u_A = 38, u_B = 30 (the cost of one more person at each source).
    assert res.sources.set_index("source")["marginal_cost_per_person"].to_dict() == pytest.approx({"A": 38, "B": 30})


@pytest.mark.parametrize("dest", ["X", "Y"])
def test_dual_equals_objective_change_when_capacity_grows(dest):
    base = rl.allocate(toy_sources(), toy_destinations(), TOY_T)
    value = float(base.constraints.set_index("constraint").loc[dest, "value_per_unit"])
    assert value > 0
    bigger = dict(TOY_CAP, **{dest: TOY_CAP[dest] + 1})
    again = rl.allocate(toy_sources(), toy_destinations(bigger), TOY_T)
    assert base.objective - again.objective == pytest.approx(value)


def test_infeasible_demand_reports_unplaced_and_binding():
    # Capacity 50 + 40 + 30 = 120 for a demand of 180: 60 persons cannot be placed, every capacity binds.
    res = rl.allocate(toy_sources(), toy_destinations({"X": 50.0, "Y": 40.0, "Z": 30.0}), TOY_T)
    assert res.sources["unplaced"].sum() == pytest.approx(60.0)
    assert res.sources["placed"].sum() == pytest.approx(120.0)
    assert res.constraints["binds"].all()
    assert (res.constraints["value_per_unit"] > 0).all()
    assert res.destinations.set_index("destination")["load"].to_dict() == pytest.approx({"X": 50, "Y": 40, "Z": 30})
    assert any("60 persons unplaced" in n for n in res.notes)
    assert res.sources["status"].str.contains("unplaced").any()


def test_max_share_and_min_group_milp():
    src = pd.DataFrame({"source": ["A"], "demand": [100.0]})
    dst = toy_destinations({"X": 30.0, "Y": 100.0, "Z": 100.0})
    t = np.array([[10.0, 20.0, 50.0]])
    lp = rl.allocate(src, dst, t)
    # LP: fill the cheap X (30), the rest at Y (70).
    assert flow(lp, "A", "X") == pytest.approx(30) and flow(lp, "A", "Y") == pytest.approx(70)
    # A minimum group of 40 cannot go to X (capacity 30): all 100 to Y, cost 2000 instead of 1700.
    mg = rl.allocate(src, dst, t, min_group=40)
    assert not mg.duals_available and mg.constraints["value_per_unit"].isna().all()
    assert flow(mg, "A", "X") == 0 and flow(mg, "A", "Y") == pytest.approx(100)
    assert mg.objective == pytest.approx(2000.0)
    # max_share 0.5: at most 50 anywhere: X 30, Y 50, Z 20 -> 300 + 1000 + 1000 = 2300.
    ms = rl.allocate(src, dst, t, max_share=0.5)
    assert [flow(ms, "A", d) for d in "XYZ"] == pytest.approx([30, 50, 20])
    assert ms.flows.set_index("destination")["at_max_share"].to_dict() == {"X": False, "Y": True, "Z": False}
    assert ms.sources.loc[0, "max_share_binds_at"] == "Y"
    assert ms.objective == pytest.approx(2300.0)
    # Integer households: 7 households, X takes 2.5 -> 2 whole ones.
    whole = rl.allocate(pd.DataFrame({"source": ["A"], "demand": [7.0]}),
                        toy_destinations({"X": 2.5, "Y": 100.0, "Z": 1.0}), t, integer=True)
    assert [flow(whole, "A", d) for d in "XYZ"] == pytest.approx([2, 5, 0])


def test_penalties_change_the_choice():
    # Same travel to X and Y; Y is in another prefecture and 500 m higher than the seat.
    src = pd.DataFrame({"source": ["A"], "demand": [10.0], "prefecture": ["P"], "seat_elevation_m": [4200.0]})
    t = pd.DataFrame({"name": ["X", "Y"], "zone": ["z1", "z2"], "land": [100.0, 100.0], "prefecture": ["Q", "P"],
                      "elevation_m": [3000.0, 4700.0]})
    dst = rl.destination_capacity(t, land_km2="land", density_per_km2=1.0)
    tt = np.array([[60.0, 60.0]])
    leave = rl.allocate(src, dst, tt, weights=rl.CostWeights(leave_prefecture=30.0))
    assert flow(leave, "A", "Y") == pytest.approx(10)
    both = rl.allocate(src, dst, tt, weights=rl.CostWeights(leave_prefecture=30.0, per_metre_gain=0.1))
    assert flow(both, "A", "X") == pytest.approx(10)  # 60 + 30 < 60 + 0.1 * 500
    f = both.flows.iloc[0]
    assert f["altitude_drop_m"] == pytest.approx(1200.0)
    assert f["pio2_gain_kpa"] == pytest.approx(rl.inspired_po2_kpa(3000.0) - rl.inspired_po2_kpa(4200.0))
    assert bool(f["leaves_prefecture"])


def test_unreachable_source_is_a_reported_row():
    t = TOY_T.copy()
    t[1] = np.nan
    res = rl.allocate(toy_sources(), toy_destinations(), t, source_notes=["", "seat cell is a barrier"])
    b = res.sources.set_index("source").loc["B"]
    assert b["unplaced"] == pytest.approx(80) and b["placed"] == 0
    assert b["status"].startswith("unreachable") and "barrier" in b["status"]
    assert flow(res, "A", "X") == pytest.approx(70) and flow(res, "A", "Y") == pytest.approx(30)


def test_water_shared_zone_and_zero_capacity():
    # X and Y share zone w (headroom 100); Z's zone is over budget (headroom -50 -> capacity 0).
    t = pd.DataFrame({"name": ["X", "Y", "Z"], "zone": ["w", "w", "v"], "land": [80.0, 80.0, 80.0]})
    dst = rl.destination_capacity(t, water_headroom={"w": 100.0, "v": -50.0}, land_km2="land", density_per_km2=1)
    d = dst.set_index("destination")
    assert d.loc["Z", "capacity"] == 0 and d.loc["Z", "binding"] == "water"
    assert "over its budget" in d.loc["Z", "notes"] and "zero capacity" in d.loc["Z", "notes"]
    assert d.loc["X", "limit_water"] == 100 and d.loc["X", "water_zone_shared_by"] == 2
    res = rl.allocate(toy_sources(), dst, TOY_T, water_m3_per_person=413.0)
    loads = res.destinations.set_index("destination")["load"]
    assert loads["X"] + loads["Y"] == pytest.approx(100) and loads["Z"] == 0
    assert res.sources["unplaced"].sum() == pytest.approx(80)
    water = res.constraints.set_index("constraint").loc["zone w"]
    assert water["binds"] and water["value_per_unit"] > 0
    assert water["value_per_m3"] == pytest.approx(water["value_per_unit"] / 413.0)


def test_destination_capacity_short_stave_and_errors():
    t = pd.DataFrame({"name": ["X", "Y"], "zone": ["a", "b"], "land_km2": [2.0, 10.0], "beds": [np.nan, 20.0]})
    d = rl.destination_capacity(t, name="name", water_headroom={"a": 5000.0, "b": 50_000.0}, land_km2="land_km2",
                                density_per_km2=10_000.0, services={"beds": ("beds", 1000 / 6)})
    # X: min(5000 water, 20000 land, no beds) = 5000 water; Y: min(50000, 100000, 20 * 166.7 = 3333) = beds.
    assert d["capacity"].tolist() == pytest.approx([5000.0, 20 * 1000 / 6])
    assert d["binding"].tolist() == ["water", "beds"]
    with pytest.raises(ConfigError, match="did you mean 'land_km2'"):
        rl.destination_capacity(t, land_km2="land_km", density_per_km2=1.0)
    with pytest.raises(InputDataError, match="zone of destination"):
        rl.destination_capacity(t, water_headroom={"a": 1.0}, land_km2=None)
    with pytest.raises(InputDataError, match="X"):
        rl.destination_capacity(t.assign(land_km2=[np.nan, 1.0]), land_km2="land_km2", density_per_km2=1.0)


def test_scenarios_groups_and_comparison():
    src = pd.DataFrame({"source": ["A", "B"], "population": [1000.0, 500.0], "seat_elevation_m": [4300.0, 4200.0]})
    dst = toy_destinations({"X": 300.0, "Y": 300.0, "Z": 1000.0}, elevation_m=[2300.0, 2500.0, 3000.0])
    groups = {"herders": 0.6, "town": 0.4}
    scen = [rl.Scenario("herders 20%", share={"herders": 0.2}), rl.Scenario("half", share=0.5),
            rl.Scenario("all", share=1.0), rl.Scenario("fixed", numbers={"A": 10.0, "B": 20.0})]
    results, comp = rl.run_scenarios(src, dst, TOY_T, scen, groups=groups)
    demand = comp.set_index("scenario")["demand"]
    assert demand.to_dict() == pytest.approx({"herders 20%": 0.2 * 0.6 * 1500, "half": 750, "all": 1500,
                                              "fixed": 30})
    assert comp["unplaced"].tolist() == pytest.approx([0, 0, 0, 0])
    f = results["herders 20%"].flows
    assert f["people_herders"].sum() == pytest.approx(180) and f["people_town"].sum() == pytest.approx(0)
    f = results["half"].flows
    np.testing.assert_allclose(f["people_herders"] / f["people"], 0.6)
    # With 1500 people, X and Y are full: people-weighted mean travel is computed from the flows themselves.
    fa = results["all"].flows
    assert comp.set_index("scenario").loc["all", "mean_travel_min"] == pytest.approx(
        (fa["people"] * fa["travel_min"]).sum() / 1500)


def test_scenario_bad_input():
    src = pd.DataFrame({"source": ["A", "B"], "population": [1000.0, np.nan]})
    with pytest.raises(ConfigError, match=r"share of 'all' is 20; shares are fractions"):
        rl.scenario_demand(src, rl.Scenario("s", share=20))
    with pytest.raises(ConfigError, match=r"1\.5"):
        rl.scenario_demand(src, rl.Scenario("s", share=1.5))
    with pytest.raises(InputDataError, match="source\\(s\\) B have no population figure"):
        rl.scenario_demand(src, rl.Scenario("s", share=0.5))
    # A number for B replaces the share: no population needed.
    d = rl.scenario_demand(src, rl.Scenario("s", share=0.5, numbers={"B": 30}))
    assert d["demand"].tolist() == [500.0, 30.0]
    with pytest.raises(ConfigError, match="did you mean 'herders'"):
        rl.scenario_demand(src, rl.Scenario("s", share={"herder": 0.2}), groups={"herders": 0.5})
    with pytest.raises(InputDataError, match="demand must be a number"):
        rl.allocate(toy_sources(demand=(np.nan, 1.0)), toy_destinations(), TOY_T)
    with pytest.raises(ConfigError, match="shape"):
        rl.allocate(toy_sources(), toy_destinations(), TOY_T[:, :2])


def test_allocation_is_deterministic():
    # A degenerate toy (equal costs everywhere) where many optima exist: the answer must still repeat exactly.
    t = np.full((2, 3), 30.0)
    runs = [rl.allocate(toy_sources(), toy_destinations(), t) for _ in range(3)]
    for r in runs[1:]:
        pd.testing.assert_frame_equal(r.flows, runs[0].flows)
        pd.testing.assert_frame_equal(r.constraints, runs[0].constraints)
        assert r.objective == runs[0].objective


# --- travel matrix -------------------------------------------------------------------------------------------------


def test_travel_matrix_by_hand_and_paths():
    # 5 x 5 cells of 1 m, friction 1 min/m: a straight step costs 1 min, a diagonal one sqrt(2).
    f = np.ones((5, 5))
    f[:, 3] = np.nan  # a wall in column 3 with a gap in row 4
    f[4, 3] = 1.0
    f[0, 0] = np.nan
    tm = rl.travel_matrix(f, [(2, 0), (0, 0)], [(2, 2), (0, 4), (9, 9)], cell_size_m=1.0, paths=True)
    # (2,0)->(2,2): 2 straight steps. (2,0)->(0,4) must pass the gap (4,3): 2 diagonals to (4,2), 1 step to (4,3),
    # 1 diagonal to (3,4), 3 steps up to (0,4) = 3 sqrt(2) + 4 (going (4,3)->(4,4)->up costs 1 + 4 > sqrt(2) + 3).
    assert tm.minutes[0, 0] == pytest.approx(2.0)
    assert tm.minutes[0, 1] == pytest.approx(3 * math.sqrt(2) + 4)
    assert np.isnan(tm.minutes[0, 2])  # outside the grid
    assert np.isnan(tm.minutes[1]).all() and "barrier" in tm.notes[1]
    path = tm.paths[0, 1]
    assert path[0] == (2, 0) and path[-1] == (0, 4) and (4, 3) in path
    # Dask friction (tiled solver) gives the same matrix.
    tm2 = rl.travel_matrix(da.from_array(f, chunks=2), [(2, 0), (0, 0)], [(2, 2), (0, 4), (9, 9)], cell_size_m=1.0)
    np.testing.assert_array_equal(tm2.minutes, tm.minutes)
    # Flow lines follow the stored paths, in the grid CRS.
    grid = Grid(ALBERS_WKT(), Affine(1.0, 0, 0, 0, -1.0, 5.0), 5, 5, 256)
    flows = pd.DataFrame({"source": ["s0"], "destination": ["far"], "people": [5.0]})
    lines = rl.flow_lines(flows, tm, grid, ["s0", "s1"], ["near", "far", "out"])
    coords = list(lines.geometry.iloc[0].coords)
    assert coords[0] == (0.5, 2.5) and coords[-1] == (4.5, 4.5) and len(coords) == len(path)


def ALBERS_WKT():  # noqa: N802
    from pyproj import CRS

    return CRS.from_proj4(ALBERS).to_wkt()


def test_catchment_land_km2():
    grid = Grid(ALBERS_WKT(), Affine(1000.0, 0, 0, 0, -1000.0, 4000.0), 4, 4, 16)
    alloc = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [-1, -1, 1, 1], [-1, -1, -1, -1]], dtype=np.int32)
    classes = np.array([[5, 4, 5, 3], [2, 5, 3, 3], [5, 5, 4, 0], [5, 5, 5, 5]], dtype=np.uint8)
    # destination 0: classes 5,4,2,5 -> three cells in (4, 5) = 3 km2; destination 1: 5,3,3,3,4,0 -> 2 km2.
    got = rl.catchment_land_km2(da.from_array(alloc, chunks=2), da.from_array(classes, chunks=2), grid, 2, (4, 5))
    np.testing.assert_allclose(got, [3.0, 2.0])


# --- source evaluation -------------------------------------------------------------------------------------------


def small_case():
    """4 x 4 cells of 1 km (Albers, equal area): zone a = left two columns, zone b = right two columns."""
    grid = Grid(ALBERS_WKT(), Affine(1000.0, 0, 0, 0, -1000.0, 4000.0), 4, 4, 16)
    dem = np.array([[3000, 3600, 4100, 4600],
                    [3200, 3400, 4200, 4700],
                    [3300, np.nan, 4300, 4800],
                    [3500, 3700, 4400, 4900]], dtype=np.float32)
    zones = gpd.GeoDataFrame({"name": ["a", "b"], "pref": ["P", "Q"]},
                             geometry=[box(0, 0, 2000, 4000), box(2000, 0, 4000, 4000)], crs=ALBERS)
    seats = gpd.GeoSeries([Point(500, 3500), Point(3500, 500)], crs=ALBERS)
    red = np.zeros((4, 4), bool)
    red[:, 3] = True
    travel = np.arange(16, dtype=np.float32).reshape(4, 4)
    return grid, dem, zones, seats, red, travel


@pytest.mark.parametrize("chunked", [False, True])
def test_evaluate_sources_hand_figures(chunked):
    grid, dem, zones, seats, red, travel = small_case()
    arr = da.from_array(dem, chunks=2) if chunked else dem
    t = rl.evaluate_sources(zones, name="name", grid=grid, elevation_m=arr, seats=seats,
                            population={"a": 6.0}, prefecture="pref", inhabited_below_m=4500, red_line=red,
                            travel_to_province_min=travel)
    a, b = t.iloc[0], t.iloc[1]
    # zone a: 7 cells with data 3000 3600 3200 3400 3300 3500 3700 (one NaN).
    assert a["elevation_mean_m"] == pytest.approx(np.mean([3000, 3600, 3200, 3400, 3300, 3500, 3700]))
    assert (a["elevation_min_m"], a["elevation_max_m"]) == (3000, 3700)
    assert a["elevation_median_m"] == pytest.approx(3400.5)  # 1 m bin centre of the 4th of 7 values
    assert a["share_above_3500_m"] == pytest.approx(3 / 7) and a["share_above_4000_m"] == 0
    assert a["population"] == 6 and a["area_km2"] == pytest.approx(8.0, rel=1e-3)
    assert a["density_per_km2"] == pytest.approx(6 / a["area_km2"])
    assert a["seat_elevation_m"] == 3000 and a["travel_to_province_min"] == 0
    assert a["seat_pressure_kpa"] == pytest.approx(rl.pressure_kpa(3000.0))
    # zone b: inhabited = cells below 4500 m: 4100 4200 4300 4400.
    assert b["inhabited_elevation_mean_m"] == pytest.approx(4250.0) and b["inhabited_cells"] == 4
    assert b["inhabited_elevation_max_m"] == 4400
    assert b["share_above_4500_m"] == pytest.approx(0.5)
    assert b["red_line_share"] == pytest.approx(0.5) and a["red_line_share"] == 0
    assert b["seat_elevation_m"] == 4900 and b["travel_to_province_min"] == 15
    assert b["population_source"] == "missing" and np.isnan(b["population"]) and np.isnan(b["density_per_km2"])
    assert "no population figure" in b["notes"]


def test_inhabited_fallback_is_labelled():
    grid, dem, zones, seats, _, _ = small_case()
    t = rl.evaluate_sources(zones, name="name", grid=grid, elevation_m=dem, seats=seats, inhabited_below_m=4000)
    b = t.iloc[1]
    assert b["inhabited_basis"].startswith("all cells (none are cells below 4000 m)")
    assert b["inhabited_elevation_mean_m"] == b["elevation_mean_m"] and b["inhabited_cells"] == 8


def hand_table():
    return pd.DataFrame({"zone": ["hi_sparse", "hi_dense", "low", "hi_unknown", "low_unknown"],
                         "seat_elevation_m": [4300, 4100, 2300, 4200, 2400],
                         "density_per_km2": [0.5, 3.0, 0.2, np.nan, np.nan],
                         "share_in_park": [0.9, 0.1, 0.0, 0.8, np.nan]})


def test_rule_all_three_valued():
    t = rl.apply_rule(hand_table(), rl.FlagRule(("seat_elevation_m >= 4000", "density_per_km2 < 1")))
    assert t["flag"].tolist() == ["yes", "no", "no", "unknown", "no"]
    assert t["meets_density_per_km2_lt_1"].tolist() == ["yes", "no", "yes", "unknown", "unknown"]
    assert t.loc[3, "conditions_met"] == "seat_elevation_m >= 4000"
    assert t.loc[3, "conditions_unknown"] == "density_per_km2 < 1"


def test_rule_any_at_least_and_areas():
    conds = ("seat_elevation_m >= 4000", "density_per_km2 < 1", "in_area: park")
    anyr = rl.FlagRule(conds, combine="any", areas={"park": {"min_share": 0.5}})
    assert rl.apply_rule(hand_table(), anyr)["flag"].tolist() == ["yes", "yes", "yes", "yes", "unknown"]
    two = rl.FlagRule(conds, combine="at_least", k=2, areas={"park": ["hi_sparse", "low"]})
    # hi_sparse 3 met; hi_dense 1; low: density + listed = 2; hi_unknown: seat only, density unknown -> 1 or 2;
    # low_unknown: 0 met + 1 unknown < 2 -> no.
    assert rl.apply_rule(hand_table(), two)["flag"].tolist() == ["yes", "no", "yes", "unknown", "no"]
    spec = rl.FlagRule.from_dict({"conditions": [{"column": "seat_elevation_m", "op": ">", "value": 4100}]})
    assert rl.apply_rule(hand_table(), spec)["flag"].tolist() == ["yes", "no", "no", "yes", "no"]


def test_rule_errors():
    with pytest.raises(ConfigError, match="cannot read condition"):
        rl.FlagRule(("seat elevation above 4000",))
    with pytest.raises(ConfigError, match="not defined in areas"):
        rl.FlagRule(("in_area: sanjiangyuan",))
    with pytest.raises(ConfigError, match="at_least needs k"):
        rl.FlagRule(("seat_elevation_m >= 4000",), combine="at_least", k=3)
    with pytest.raises(ConfigError, match="did you mean 'density_per_km2'"):
        rl.apply_rule(hand_table(), rl.FlagRule(("density_km2 < 1",)))


@pytest.fixture(scope="module")
def qinghai_sources():
    counties = read_vectors(DATA / "counties.gpkg", ALBERS)
    grid = Grid.from_bounds(tuple(counties.total_bounds), 5000.0, ALBERS, 128)
    dem = rasters.io.read(DATA / "dem_5arcmin.tif", grid)
    census = pd.read_csv(DATA / "county_population_2020.csv")
    return rl.evaluate_sources(counties, name="name_zh", grid=grid, elevation_m=dem,
                               seats=rl.seats_from_columns(counties), population=census, prefecture="prefecture",
                               rule=rl.DEFAULT_RULE).set_index("zone")


def test_qinghai_default_rule_flags_madoi_and_qumarleb(qinghai_sources):
    t = qinghai_sources
    # README figures: 玛多 seat ~4,270 m, 14,490 people, 25,253 km2; 曲麻莱 ~4,175 m, 33,170 people, 46,579 km2.
    for name, pop, area, seat in (("玛多县", 14490, 25253, 4270), ("曲麻莱县", 33170, 46579, 4175)):
        row = t.loc[name]
        assert row["flag"] == "yes", row["conditions_met"]
        assert row["population"] == pop
        assert row["area_km2"] == pytest.approx(area, rel=0.05)  # boundaries are 2018 and quantised
        assert row["density_per_km2"] == pytest.approx(pop / area, rel=0.05) and row["density_per_km2"] < 1
        assert abs(row["seat_elevation_m"] - seat) < 300  # 9 km DEM cells
        assert row["share_above_4000_m"] > 0.9
        assert row["seat_pio2_kpa"] < 0.62 * rl.inspired_po2_kpa(0.0)
    for name in ("城东区", "城北区", "城西区", "西宁市城中区", "格尔木市", "杂多县"):
        assert t.loc[name, "flag"] == "no", name
    assert t.loc["西宁市城中区", "population"] == 325813  # census name 城中区 matched by suffix


def test_qinghai_missing_population_is_not_zero(qinghai_sources):
    row = qinghai_sources.loc["治多县"]  # no census row in the bundled CSV
    assert row["population_source"] == "missing" and np.isnan(row["population"])
    assert row["meets_density_per_km2_lt_1"] == "unknown" and row["flag"] == "unknown"
