"""The relocation block of a config: evaluate and flag source counties, size destinations by the 短板 rule,
build the travel-time matrix on the friction surface, solve every scenario as an LP (HiGHS), and write the
tables and flow lines. The numbers come from ``suitability.relocation``; this module joins and writes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd

from rasters.cost import travel_time
from rasters.errors import ConfigError, InputDataError
from rasters.grid import Grid
from suitability import relocation as rl

from .gpkg_styles import graduated_qml, single_qml
from .qgis_project import ProjectLayer
from .water_step import write_table


@dataclass
class RelocationResult:
    sources: pd.DataFrame
    destinations: pd.DataFrame
    comparison: pd.DataFrame
    results: dict[str, Any]
    layers: list[ProjectLayer] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _slug(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]+", "_", name).strip("_") or "scenario"


def _cells(points: gpd.GeoSeries, grid: Grid) -> np.ndarray:
    rows, cols = grid.index_of_xy(points.x.to_numpy(), points.y.to_numpy())
    return np.column_stack([rows, cols])


def run_relocation(built, classes_path: Path, suitability_path: Path) -> RelocationResult:
    """Everything after the rasters are written (reads the class and suitability rasters back, lazily)."""
    from rasters.io import read as read_raster

    cfg, loaded, grid = built.plan.config, built.plan.loaded, built.grid
    rel = cfg.relocation
    where = f"{loaded.path}: relocation"
    counties = built.vectors[rel.counties]
    for col in (rel.name, rel.seat_lon, rel.seat_lat):
        if col not in counties.columns:
            raise ConfigError(f"{where}: counties have no attribute '{col}'")
    census = pd.read_csv(loaded.resolve(rel.census_csv))
    seats = rl.seats_from_columns(counties, rel.seat_lon, rel.seat_lat).to_crs(grid.crs)
    friction = built.layers[rel.friction]
    names = counties[rel.name].astype(str).tolist()
    if rel.province_centre not in names:
        raise ConfigError(f"{where}.province_centre: '{rel.province_centre}' is not a county name")
    seat_cells = _cells(seats, grid)
    inside = (seat_cells[:, 0] >= 0) & (seat_cells[:, 0] < grid.height) & (seat_cells[:, 1] >= 0) & \
             (seat_cells[:, 1] < grid.width)
    # Friction is read several times (travel to centres, the matrix): compute it once into memory if it is
    # small, else keep it lazy (the tiled solver bounds memory either way).
    if friction.nbytes <= 512 * 2**20:
        friction = da.from_array(friction.compute(), chunks=friction.chunks)
    prov_cell = seat_cells[names.index(rel.province_centre)][None, :]
    pref_cells = _prefecture_centres(counties, rel, seat_cells, inside)
    to_prov = travel_time(friction, prov_cell, grid=grid).minutes
    to_pref = travel_time(friction, pref_cells, grid=grid).minutes if len(pref_cells) else None
    rule = rl.FlagRule.from_dict(rel.rule) if rel.rule else rl.DEFAULT_RULE
    try:
        table = rl.evaluate_sources(counties, name=rel.name, grid=grid, elevation_m=built.layers[rel.dem],
                                    seats=seats, population=census, prefecture=rel.prefecture,
                                    travel_to_prefecture_min=to_pref, travel_to_province_min=to_prov, rule=rule)
    except (ConfigError, InputDataError) as e:
        raise type(e)(f"{where}: {e}") from None
    sources = table.loc[table["flag"] == "yes"].rename(columns={"zone": "source"}).reset_index(drop=True)
    notes = [f"{n}: flag unknown (missing figures)" for n in table.loc[table["flag"] == "unknown", "zone"]]
    if sources.empty:
        raise InputDataError(f"{where}: no county meets the relocation rule ({rule})")

    # Destinations: candidate towns below the altitude limit, outside the source counties.
    frames = []
    for d in rel.destinations:
        g = built.vectors[d]
        if rel.destination_name not in g.columns:
            raise ConfigError(f"{where}.destination_name: '{d}' has no attribute '{rel.destination_name}'")
        g = g.assign(geometry=g.geometry.representative_point())
        frames.append(g[[rel.destination_name, "geometry"]].rename(columns={rel.destination_name: "name"}))
    towns = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=grid.crs).drop_duplicates("name")
    cells = _cells(towns.geometry, grid)
    ok = (cells[:, 0] >= 0) & (cells[:, 0] < grid.height) & (cells[:, 1] >= 0) & (cells[:, 1] < grid.width)
    towns, cells = towns.loc[ok].reset_index(drop=True), cells[ok]
    dem = built.layers[rel.dem]
    suit = read_raster(suitability_path, grid, resampling="nearest")
    elev, score = dask.compute(dem.vindex[cells[:, 0], cells[:, 1]], suit.vindex[cells[:, 0], cells[:, 1]])
    towns["elevation_m"] = elev
    towns["suitability"] = score
    towns["suitability_loss"] = 1.0 - np.nan_to_num(score, nan=0.0)
    joined = gpd.sjoin(towns, counties[[rel.name, "geometry"] + ([rel.prefecture] if rel.prefecture else [])],
                       how="left", predicate="within")
    towns["zone"] = joined.groupby(level=0)[rel.name].first().reindex(towns.index).to_numpy()
    if rel.prefecture:
        towns["prefecture"] = joined.groupby(level=0)[rel.prefecture].first().reindex(towns.index).to_numpy()
    keep = ~towns["zone"].isin(sources["source"]) & towns["zone"].notna()
    if rel.destination_max_elevation_m is not None:
        keep &= towns["elevation_m"] < rel.destination_max_elevation_m
    towns, cells = towns.loc[keep].reset_index(drop=True), cells[keep.to_numpy()]
    if towns.empty:
        raise InputDataError(f"{where}.destinations: no candidate town below {rel.destination_max_elevation_m} m "
                             "outside the source counties")
    # Land: cells each town reaches first within the catchment time, in the top classes.
    alloc = travel_time(friction, cells, grid=grid, max_minutes=rel.catchment_minutes).allocation
    classes = read_raster(classes_path, grid, resampling="nearest")
    classes = da.where(da.isnan(classes), 0, classes).astype(np.uint8)
    towns["suitable_land_km2"] = rl.catchment_land_km2(alloc, classes, grid, len(towns), rel.top_classes)
    water = built.water.table if built.water is not None else None
    try:
        dests = rl.destination_capacity(towns.drop(columns="geometry"), name="name", zone="zone",
                                        water_headroom=water, land_km2="suitable_land_km2",
                                        density_per_km2=rel.density_per_km2)
    except (ConfigError, InputDataError) as e:
        raise type(e)(f"{where}.destinations: {e}") from None

    src_cells = sources[["seat_row", "seat_col"]].to_numpy()
    tm = rl.travel_matrix(friction, src_cells, cells, grid=grid, paths=True)
    scenarios = [rl.Scenario(s.name, share=s.share, numbers=s.numbers) for s in rel.scenarios]
    weights = rl.CostWeights(rel.cost.per_minute, rel.cost.per_suitability_loss, rel.cost.leave_prefecture,
                             rel.cost.per_metre_gain)
    try:
        results, comparison = rl.run_scenarios(
            sources, dests, tm.minutes, scenarios, weights=weights, max_share=rel.max_share,
            min_group=rel.min_group, water_m3_per_person=cfg.water.per_capita.value if cfg.water else None,
            source_notes=tm.notes)
    except (ConfigError, InputDataError) as e:
        raise type(e)(f"{where}.scenarios: {e}") from None
    out = RelocationResult(table, dests, comparison, results, notes=notes)
    out.flow_lines = {name: rl.flow_lines(r.flows, tm, grid, sources["source"], dests["destination"])
                      for name, r in results.items()}
    out.source_points = gpd.GeoDataFrame(table.drop(columns=[c for c in ("geometry",) if c in table]),
                                         geometry=seats.values, crs=grid.crs)
    out.destination_points = gpd.GeoDataFrame(dests, geometry=towns.geometry.values, crs=grid.crs)
    return out


def _prefecture_centres(counties, rel, seat_cells, inside) -> np.ndarray:
    """Seats of prefecture-level cities/prefectures: the seat named like the prefecture's seat county, or, when
    that cannot be told, every county seat of the prefecture whose name ends in 市 or 区 (city districts)."""
    if not rel.prefecture or rel.prefecture not in counties.columns:
        return np.empty((0, 2), int)
    names = counties[rel.name].astype(str)
    pick = names.str.endswith(("市", "区")) | names.str.contains("直辖")
    pick &= inside
    return seat_cells[pick.to_numpy()]


def write_relocation(res: RelocationResult, folder: Path) -> list[ProjectLayer]:
    layers: list[ProjectLayer] = []
    src_q = graduated_qml("n_met", [-0.5, 0.5, 1.5, 2.5, 10], ["#f7f7f7", "#fee391", "#fe9929", "#cc4c02"],
                          ["0 conditions", "1", "2", "3+"], "Point", label_field="zone")
    write_table(res.source_points, folder, "relocation_sources", src_q)
    layers.append(ProjectLayer("relocation_sources", folder / "relocation_sources.gpkg", "Relocation", True,
                               kind="vector", vector_layer="relocation_sources", geometry="Point", qml=src_q))
    dq = single_qml("Point", "#1a9641", label_field="destination")
    write_table(res.destination_points, folder, "relocation_destinations", dq)
    layers.append(ProjectLayer("relocation_destinations", folder / "relocation_destinations.gpkg", "Relocation",
                               True, kind="vector", vector_layer="relocation_destinations", geometry="Point", qml=dq))
    write_table(res.comparison, folder, "relocation_scenarios")
    for i, (name, r) in enumerate(res.results.items()):
        slug = _slug(name)
        write_table(r.flows, folder, f"relocation_flows_{slug}_table")
        write_table(r.constraints, folder, f"relocation_capacity_{slug}")
        write_table(r.sources, folder, f"relocation_source_summary_{slug}")
        lines = res.flow_lines[name]
        if len(lines):
            fq = graduated_qml("people", [0, 1000, 5000, 1e12], ["#9ecae1", "#4292c6", "#08306b"],
                               ["< 1,000", "1,000 – 5,000", "> 5,000"], "Line")
            write_table(lines, folder, f"relocation_flows_{slug}", fq)
            layers.append(ProjectLayer(f"relocation_flows_{slug}", folder / f"relocation_flows_{slug}.gpkg",
                                       "Relocation", i == len(res.results) - 1, kind="vector",
                                       vector_layer=f"relocation_flows_{slug}", geometry="Line", qml=fq))
    return layers
