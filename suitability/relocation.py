"""Relocation from very high-altitude counties: who moves, where to, within which limits (issue 7).

The plan asks to move people and services "in an orderly way" out of very high-altitude, sparsely populated
ecological counties (玛多: seat about 4,270 m, 14,490 people in 2020, 25,253 km²; 曲麻莱: about 4,175 m, 33,170
people, 46,579 km²) towards places with better conditions, public services following the people. This module is
the one import for that step; the work is done in three files:

* ``suitability.atmosphere``: ISA pressure and inspired oxygen partial pressure at an altitude.
* ``suitability.relocation_sources``: per-county figures (population, ellipsoidal area, density, elevation of the
  inhabited area and at the seat, shares above altitude bands, pressure and PiO₂ at the seat, red-line share,
  travel time to the prefecture and provincial centres) and the configurable flag rule (three-valued: a county
  without a population figure is "unknown" on density, never 0).
* ``suitability.relocation_lp``: destination capacities (短板: water headroom, land × density, services), the
  travel-time matrix (one Dijkstra per source on the engine's friction surface) with least-cost flow lines, scenario
  demand, and the allocation as a linear program solved by HiGHS (a MILP for minimum group sizes), reporting
  unplaced people, binding capacities and their dual values.

How to call from the pipeline
-----------------------------
::

    from suitability import relocation as rl

    # 1. Sources: evaluate every county, flag by the rule from the config (DEFAULT_RULE if none).
    counties = vectors.read(cfg.counties, grid.crs)                          # polygons, grid CRS
    dem = rasters.io.read(cfg.dem, grid)                                     # float32 dask, metres
    to_pref = rasters.cost.travel_time(friction, prefecture_seat_cells, grid=grid).minutes
    to_prov = rasters.cost.travel_time(friction, [xining_cell], grid=grid).minutes
    rule = rl.FlagRule.from_dict(cfg.rule) if cfg.rule else rl.DEFAULT_RULE
    table = rl.evaluate_sources(counties, name="name_zh", grid=grid, elevation_m=dem,
                                seats=rl.seats_from_columns(counties), population=pd.read_csv(cfg.census),
                                prefecture="prefecture", red_line=red_line_mask, bands_m=(3500, 4000, 4500),
                                travel_to_prefecture_min=to_pref, travel_to_province_min=to_prov, rule=rule)
    sources = table.loc[table["flag"] == "yes"].rename(columns={"zone": "source"})   # "unknown" rows: report them

    # 2. Destinations: capacity by the 短板 rule (water headroom from suitability.water, land from the catchments).
    alloc = rasters.cost.travel_time(friction, town_cells, grid=grid, max_minutes=cfg.catchment_min).allocation
    towns["suitable_land_km2"] = rl.catchment_land_km2(alloc, classes, grid, len(towns), top_classes=(4, 5))
    dests = rl.destination_capacity(towns, name="name", zone="zone", water_headroom=water_table,
                                    land_km2="suitable_land_km2", density_per_km2=10_000,
                                    services={"school_places": ("school_places", 1 / 0.15)})

    # 3. Travel matrix and flow paths (one Dijkstra per source seat), then the scenarios.
    tm = rl.travel_matrix(friction, sources[["seat_row", "seat_col"]].to_numpy(), town_cells, grid=grid,
                          paths=True)
    scenarios = [rl.Scenario("herders 20%", share={"herders": 0.2}), rl.Scenario("all 100%", share=1.0)]
    results, comparison = rl.run_scenarios(
        sources, dests, tm.minutes, scenarios, groups={"herders": 0.6, "town": 0.4},
        weights=rl.CostWeights(per_minute=1.0, per_suitability_loss=60.0, leave_prefecture=120.0),
        max_share=0.6, min_group=None, water_m3_per_person=413.0, source_notes=tm.notes)
    for name, r in results.items():       # write each table (CSV / GeoPackage) and the flow lines
        lines = rl.flow_lines(r.flows, tm, grid, sources["source"], dests["destination"])
        lines.to_file(gpkg, layer=f"relocation_flows_{slug(name)}")
        r.flows, r.destinations, r.constraints, r.sources      # -> tables; r.notes -> report
    comparison                                                   # -> scenario comparison table

Everything is plain arrays and DataFrames: no config, no file names below this point.
"""

from __future__ import annotations

from .atmosphere import inspired_po2_kpa, pressure_kpa
from .relocation_lp import (
    Allocation,
    CostWeights,
    Scenario,
    TravelMatrix,
    allocate,
    catchment_land_km2,
    destination_capacity,
    flow_lines,
    run_scenarios,
    scenario_demand,
    travel_matrix,
)
from .relocation_sources import (
    DEFAULT_BANDS_M,
    DEFAULT_RULE,
    Condition,
    FlagRule,
    apply_rule,
    evaluate_sources,
    match_population,
    seats_from_columns,
)

__all__ = [
    "DEFAULT_BANDS_M",
    "DEFAULT_RULE",
    "Allocation",
    "Condition",
    "CostWeights",
    "FlagRule",
    "Scenario",
    "TravelMatrix",
    "allocate",
    "apply_rule",
    "catchment_land_km2",
    "destination_capacity",
    "evaluate_sources",
    "flow_lines",
    "inspired_po2_kpa",
    "match_population",
    "pressure_kpa",
    "run_scenarios",
    "scenario_demand",
    "seats_from_columns",
    "travel_matrix",
]
