"""The water, carrying and conflicts blocks of a config: 四水四定 budgets per zone, the 短板 carrying scale, and
the 现状问题识别 conflict report. The numbers come from ``suitability.water``/``carrying``/``conflicts``;
this module only reads the config, joins the pieces and writes the tables (GeoPackage with a default QGIS style,
and CSV)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.array as da
import geopandas as gpd
import numpy as np

from rasters.errors import ConfigError, InputDataError
from rasters.grid import Grid
from suitability.carrying import carrying_scale, land_limited_population, zone_class_areas_km2
from suitability.conflicts import settlement_conflicts
from suitability.water import (
    PerCapitaUse,
    WaterZones,
    check_zone_coverage,
    csv_frame,
    headroom_raster,
    synthetic_county_water_allocation,
    water_carrying_table,
    zone_index_raster,
    zone_values,
)


@dataclass
class WaterState:
    table: gpd.GeoDataFrame
    zones: WaterZones
    index: da.Array
    layers: dict[str, da.Array]
    warnings: list[str] = field(default_factory=list)


def build_water(cfg, loaded, zones_gdf: gpd.GeoDataFrame, grid: Grid, region: da.Array | None) -> WaterState:
    """The zone table and its rasters (criterion 0..1 and headroom per km²), all lazy except the table."""
    w = cfg.water
    key = "water"
    gdf = zones_gdf
    try:
        if w.synthetic_allocation is not None:
            sa = w.synthetic_allocation
            gdf = synthetic_county_water_allocation(gdf, loaded.resolve(sa.population_csv), total_m3=sa.total_m3,
                                                    rule=sa.rule, name_column=w.name, per_capita_m3=sa.per_capita_m3)
            key = "water.synthetic_allocation"
        key = "water"
        zones = WaterZones.from_frame(gdf, name=w.name if w.synthetic_allocation is None else "zone",
                                      allocation=w.allocation_m3, population=w.population,
                                      current_use=w.current_use_m3 if w.synthetic_allocation is None
                                      else (w.current_use_m3 or "synthetic_current_use_m3"),
                                      agriculture_share=w.agriculture_share, industry_share=w.industry_share,
                                      ecology_share=w.ecology_share, where="water.zones")
        q = PerCapitaUse(w.per_capita.value, w.per_capita.unit, w.per_capita.source)
        table = water_carrying_table(zones, q, method=w.method, land_m2_per_person=w.land_m2_per_person)
        if w.synthetic_allocation is not None:
            # Say in the table itself which numbers are made up for the demo.
            table["allocation_is_SYNTHETIC"] = True
            table["allocation_rule_SYNTHETIC"] = gdf["allocation_rule"].to_numpy()
            table["population_source"] = gdf["population_source"].to_numpy()
        report = check_zone_coverage(zones.frame(), grid, zones.names, study_area=region, on_overlap=w.on_overlap,
                                     on_gap=w.on_gap, where="water.zones")
    except (ConfigError, InputDataError) as e:
        raise type(e)(f"{loaded.path}: {key}: {e}") from None
    index = zone_index_raster(zones.frame(), grid)
    layers = {
        "water_criterion": zone_values(index, table["water_criterion"].to_numpy()),
        "water_headroom_per_km2": headroom_raster(index, table, mode="per_km2"),
    }
    warnings = [f"water.zones: {m}" for m in getattr(report, "warnings", [])]
    return WaterState(table, zones, index, layers, warnings)


def class_areas_lazy(state: WaterState, classes: da.Array, grid: Grid, n_classes: int):
    return zone_class_areas_km2(state.index, classes, grid, n_zones=len(state.table), n_classes=n_classes, lazy=True)


def carrying_table(cfg, state: WaterState, class_areas: np.ndarray):
    c = cfg.carrying
    land = land_limited_population(class_areas, top_classes=c.top_classes, density_per_km2=c.density_per_km2)
    limits: dict[str, Any] = {"water": state.table["carrying_population"].to_numpy(), "land": land}
    limits.update(c.limits)
    try:
        return carrying_scale(state.zones.names, limits, population=state.table["population"].to_numpy(),
                              where="carrying")
    except ConfigError as e:
        raise ConfigError(f"carrying: {e}") from None


def conflicts_table(cfg, vectors: dict, class_raster: da.Array, grid: Grid, scheme, water: WaterState | None):
    k = cfg.conflicts
    red = None
    if k.red_lines:
        frames = [vectors[r].assign(red_line=r) for r in k.red_lines]
        red = gpd.GeoDataFrame(geometry=[g for f in frames for g in f.geometry], crs=grid.crs)
        red["red_line"] = [r for f, r in zip(frames, k.red_lines, strict=True) for _ in range(len(f))]
    return settlement_conflicts(
        vectors[k.settlements], name_column=k.name, red_lines=red, red_line_name_column="red_line" if red is not None
        else None, classes=class_raster, grid=grid, unsuitable_classes=tuple(k.unsuitable_classes),
        class_labels=dict(enumerate(scheme.labels, start=1)), water_table=water.table if water else None,
        where="conflicts",
    )


def write_table(gdf, folder: Path, name: str, style_qml: str | None = None) -> list[Path]:
    """``name.gpkg`` (layer ``name``, with a default style in layer_styles; GeoDataFrames only) and ``name.csv``,
    written atomically."""
    from .gpkg_styles import write_gpkg_atomic

    paths = []
    if isinstance(gdf, gpd.GeoDataFrame):
        paths.append(write_gpkg_atomic(gdf, folder / f"{name}.gpkg", name, style_qml))
    csv = folder / f"{name}.csv"
    tmp = csv.with_name(f".{csv.name}.tmp")
    frame = csv_frame(gdf) if isinstance(gdf, gpd.GeoDataFrame) else gdf
    frame.to_csv(tmp, index=False, encoding="utf-8-sig")  # BOM: Excel opens Chinese names correctly
    tmp.replace(csv)
    paths.append(csv)
    return paths
