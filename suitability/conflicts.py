"""现状问题识别: existing settlements that conflict with the ecological red line, the suitability classes or water.

For each existing settlement or construction patch (points or polygons) three checks, each optional:

1. **Ecological red line** (生态保护红线, or any exclusion polygon layer): a point inside a red-line polygon
   (boundary included), or a polygon overlapping one with positive area. Figures: the red line name(s) and the
   share of the settlement's area inside (1.0 for points).
2. **Unsuitable class**: the class raster (uint8, 0 = no data) at the settlement. Points: the cell containing the
   point. Polygons and lines: the majority class over the cells they cover (GDAL centre rule for polygons, the
   drawn path for lines; no-data cells ignored). Ties go to a class in ``unsuitable_classes`` if one ties (the
   conservative choice for a conflict report), else to the smallest code. A polygon too small to cover any
   cell centre falls back to the cell under its representative point. Figures: class code and label.
3. **Water overload**: the water zone containing the settlement's representative point has a current population
   above its water-carrying population (``suitability.water.water_carrying_table``). Figures: zone, population,
   carrying population, excess.

Output: a GeoDataFrame in the settlements' CRS with the settlement's name, one boolean column per check, the
figures, ``n_reasons`` and ``reasons`` (one readable line, "; "-separated), by default only the settlements with
at least one conflict. Write it with ``gdf.to_file(gpkg, layer="conflicts")`` and
``suitability.water.csv_frame(gdf).to_csv(csv)``.

How to call from the pipeline
-----------------------------
::

    settlements = vectors.read(cfg.settlements.path, grid.crs)
    red = vectors.read(cfg.red_line.path, grid.crs)
    report = settlement_conflicts(settlements, name_column="name", red_lines=red, red_line_name_column="name",
                                  classes=town_classes, grid=grid, unsuitable_classes=(1,),
                                  class_labels=dict(enumerate(DEFAULT_SCHEME.labels, start=1)),
                                  water_table=water_table)
    report.to_file(out / "conflicts.gpkg", layer="conflicts"); csv_frame(report).to_csv(out / "conflicts.csv")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from rasters.errors import ConfigError, InputDataError, did_you_mean
from rasters.grid import Grid
from vectors.rasterize import rasterize

from .carrying import zone_class_counts
from .water import geodesic_area_km2

__all__ = ["settlement_conflicts"]


def _column(gdf: gpd.GeoDataFrame, column: str, where: str) -> pd.Series:
    cols = [str(c) for c in gdf.columns if c != gdf.geometry.name]
    if column not in cols:
        raise ConfigError(f"{where}: no attribute '{column}'{did_you_mean(column, cols)}")
    return gdf[column]


def _areas(geoms: gpd.GeoSeries) -> np.ndarray:
    """True areas for overlap shares: ellipsoidal on geographic layers, planar otherwise (a ratio, so fine)."""
    if geoms.crs is not None and geoms.crs.is_geographic:
        return geodesic_area_km2(geoms)
    return shapely.area(np.asarray(geoms.values, dtype=object))


def _red_line_hits(settlements: gpd.GeoSeries, red: gpd.GeoDataFrame, red_names: list[str]):
    """Per settlement: list of red-line names it falls in, and the share of its area inside (points: 1.0)."""
    n = len(settlements)
    names: list[list[str]] = [[] for _ in range(n)]
    share = np.zeros(n)
    red_geoms = np.asarray(red.geometry.values, dtype=object)
    s_geoms = np.asarray(settlements.values, dtype=object)
    tree = shapely.STRtree(red_geoms)
    s_idx, r_idx = tree.query(s_geoms, predicate="intersects")
    dims = shapely.get_dimensions(s_geoms)
    areal = dims[s_idx] == 2
    keep = np.ones(len(s_idx), dtype=bool)
    if areal.any():
        inter = shapely.intersection(s_geoms[s_idx[areal]], red_geoms[r_idx[areal]])
        # Touching a red line along its edge is not being inside it.
        keep[np.flatnonzero(areal)] = shapely.area(inter) > 0
    for s, r in zip(s_idx[keep].tolist(), r_idx[keep].tolist(), strict=True):
        if red_names[r] not in names[s]:
            names[s].append(red_names[r])
    hit = np.array([bool(v) for v in names])
    poly = hit & (dims == 2)
    if poly.any():
        union = shapely.union_all(red_geoms[np.unique(r_idx[keep])])
        inside = shapely.intersection(s_geoms[poly], union)
        crs = settlements.crs
        a_in = _areas(gpd.GeoSeries(inside, crs=crs))
        a_all = _areas(gpd.GeoSeries(s_geoms[poly], crs=crs))
        share[poly] = np.where(a_all > 0, a_in / np.where(a_all > 0, a_all, 1), 0.0)
    share[hit & (dims < 2)] = 1.0
    return names, share


def _sample_points(classes: Any, grid: Grid, pts: gpd.GeoSeries) -> np.ndarray:
    pts = pts.to_crs(grid.crs) if pts.crs is not None else pts
    rows, cols = grid.index_of_xy(pts.x.to_numpy(), pts.y.to_numpy())
    inside = (rows >= 0) & (rows < grid.height) & (cols >= 0) & (cols < grid.width)
    out = np.zeros(len(pts), dtype=np.int64)
    if inside.any():
        r, c = rows[inside], cols[inside]
        vals = classes.vindex[r, c].compute() if isinstance(classes, da.Array) else np.asarray(classes)[r, c]
        out[inside] = np.asarray(vals, dtype=np.int64)
    return out


def _majority(counts: np.ndarray, unsuitable: set[int]) -> np.ndarray:
    """Majority class per row of ``counts`` (columns = class codes, column 0 = no data ignored); 0 if none."""
    c = counts[:, 1:]
    best = c.max(axis=1)
    out = np.zeros(len(c), dtype=np.int64)
    for i in np.flatnonzero(best > 0):
        tied = np.flatnonzero(c[i] == best[i]) + 1
        bad = [k for k in tied.tolist() if k in unsuitable]
        out[i] = bad[0] if bad else int(tied[0])
    return out


def settlement_conflicts(
    settlements: gpd.GeoDataFrame,
    *,
    name_column: str | None = None,
    red_lines: gpd.GeoDataFrame | None = None,
    red_line_name_column: str | None = None,
    classes: Any = None,
    grid: Grid | None = None,
    unsuitable_classes: Sequence[int] = (1,),
    class_labels: Mapping[int, str] | None = None,
    water_table: gpd.GeoDataFrame | None = None,
    zone_column: str = "zone",
    population_column: str = "population",
    carrying_column: str = "carrying_population",
    keep_all: bool = False,
    where: str = "conflicts",
) -> gpd.GeoDataFrame:
    """List the existing settlements that conflict with the red line, the unsuitable class or the water budget.

    Args:
        settlements: points, lines or polygons (any CRS with a CRS set).
        name_column: attribute naming each settlement; default the row number.
        red_lines: ecological red line / exclusion polygons (reprojected to the settlements' CRS);
            ``red_line_name_column`` names each polygon (default "red line <row>").
        classes, grid: the class raster (numpy or dask, integer codes, 0 = no data) on ``grid``;
            ``unsuitable_classes`` are the codes that count as unsuitable (default (1,): the lowest of
            ``suitability.classify``'s classes); ``class_labels`` maps codes to labels for the report.
        water_table: zone polygons with ``zone_column``, ``population_column`` and ``carrying_column`` (the output
            of ``water_carrying_table``).
        keep_all: keep settlements without any conflict too.

    Returns a GeoDataFrame (module docstring): ``settlement``, ``in_red_line``, ``red_line``,
    ``red_line_share``, ``class_code``, ``class_label``, ``on_unsuitable``, ``water_zone``, ``zone_population``,
    ``zone_carrying_population``, ``zone_excess_population``, ``water_overloaded``, ``n_reasons``, ``reasons``,
    geometry. Columns of checks that were not asked for are left out.

    Raises ``ConfigError`` for an unknown column, a class raster without its grid or of another shape, no check
    asked for; ``InputDataError`` for layers without a CRS, or a water zone with a missing population or
    carrying figure (named).
    """
    if not isinstance(settlements, gpd.GeoDataFrame):
        raise ConfigError(f"{where}: settlements must be a GeoDataFrame, got {type(settlements).__name__}")
    if red_lines is None and classes is None and water_table is None:
        raise ConfigError(f"{where}: nothing to check; give red_lines, classes (with grid) or water_table")
    if settlements.crs is None and len(settlements):
        raise InputDataError(f"{where}: the settlements layer has no CRS")
    geoms = settlements.geometry
    present = ~(shapely.is_missing(geoms.values) | shapely.is_empty(geoms.values))
    if not present.all():
        raise InputDataError(f"{where}: {int((~present).sum())} settlement(s) have no geometry, e.g. row "
                             f"{int(np.flatnonzero(~present)[0])}")
    n = len(settlements)
    names = ([str(v) for v in _column(settlements, name_column, f"{where}: name_column")]
             if name_column else [str(i) for i in range(n)])
    out = gpd.GeoDataFrame({"settlement": names}, geometry=geoms.reset_index(drop=True), crs=settlements.crs)
    reasons: list[list[str]] = [[] for _ in range(n)]

    if red_lines is not None:
        if red_lines.crs is None and len(red_lines):
            raise InputDataError(f"{where}: the red line layer has no CRS")
        red = red_lines.to_crs(settlements.crs) if len(red_lines) and not red_lines.crs.equals(settlements.crs) \
            else red_lines
        red_names = ([str(v) for v in _column(red, red_line_name_column, f"{where}: red_line_name_column")]
                     if red_line_name_column else [f"red line {i}" for i in range(len(red))])
        hit_names, share = _red_line_hits(out.geometry, red, red_names)
        out["in_red_line"] = [bool(h) for h in hit_names]
        out["red_line"] = [", ".join(h) for h in hit_names]
        out["red_line_share"] = share
        for i, h in enumerate(hit_names):
            if h:
                part = "" if share[i] >= 1 else f" ({share[i]:.0%} of its area)"
                reasons[i].append(f"inside ecological red line {', '.join(h)}{part}")

    if classes is not None:
        if grid is None:
            raise ConfigError(f"{where}: a class raster needs its grid")
        if tuple(np.shape(classes)) != grid.shape:
            raise ConfigError(f"{where}: class raster has shape {tuple(np.shape(classes))}, the grid {grid.shape}")
        unsuitable = {int(c) for c in unsuitable_classes}
        if not unsuitable:
            raise ConfigError(f"{where}: unsuitable_classes is empty")
        dims = shapely.get_dimensions(out.geometry.values)
        code = np.zeros(n, dtype=np.int64)
        pts = dims == 0
        rep = out.geometry.representative_point()
        if pts.any():
            code[pts] = _sample_points(classes, grid, rep[pts])
        if (~pts).any():
            sub = np.flatnonzero(~pts)
            frame = gpd.GeoDataFrame({"_i": np.arange(1, len(sub) + 1)}, geometry=out.geometry.values[sub],
                                     crs=out.crs)
            # Burned in reverse so the first-listed settlement keeps a cell two of them share.
            index = rasterize(frame.iloc[::-1], grid, value="_i", dtype="int32", fill=0)
            counts = zone_class_counts(index, classes, len(sub), n_classes=255)
            maj = _majority(counts[1:], unsuitable)
            none = maj == 0
            if none.any():
                maj[none] = _sample_points(classes, grid, rep.iloc[sub[none]])
            code[sub] = maj
        labels = class_labels or {}
        out["class_code"] = code.astype(np.uint8)
        out["class_label"] = [str(labels.get(int(c), "no data" if c == 0 else f"class {c}")) for c in code]
        out["on_unsuitable"] = np.isin(code, list(unsuitable))
        for i in np.flatnonzero(out["on_unsuitable"].to_numpy()):
            reasons[i].append(f"on unsuitable class {int(code[i])} ({out['class_label'].iat[i]})")

    if water_table is not None:
        if water_table.crs is None and len(water_table):
            raise InputDataError(f"{where}: the water zone table has no CRS")
        zn = [str(v) for v in _column(water_table, zone_column, f"{where}: zone_column")]
        zpop = pd.to_numeric(_column(water_table, population_column, f"{where}: population_column"),
                             errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        zcar = pd.to_numeric(_column(water_table, carrying_column, f"{where}: carrying_column"),
                             errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = np.isnan(zpop) | np.isnan(zcar)
        if bad.any():
            raise InputDataError(f"{where}: water zone(s) {', '.join(np.asarray(zn)[bad][:8])} lack a population or "
                                 "carrying figure")
        rep = out.geometry.representative_point()
        if len(water_table) and not water_table.crs.equals(out.crs):
            rep = rep.to_crs(water_table.crs)
        tree = shapely.STRtree(np.asarray(water_table.geometry.values, dtype=object))
        s_idx, z_idx = tree.query(np.asarray(rep.values, dtype=object), predicate="intersects")
        zone_of = np.full(n, -1)
        for s, z in zip(s_idx.tolist(), z_idx.tolist(), strict=True):
            if zone_of[s] < 0 or z < zone_of[s]:  # a point on a shared border goes to the first-listed zone
                zone_of[s] = z
        has = zone_of >= 0
        zi = np.where(has, zone_of, 0)
        out["water_zone"] = [zn[z] if h else None for z, h in zip(zi, has, strict=True)]
        out["zone_population"] = np.where(has, zpop[zi], np.nan)
        out["zone_carrying_population"] = np.where(has, zcar[zi], np.nan)
        out["zone_excess_population"] = out["zone_population"] - out["zone_carrying_population"]
        over = has & (zpop[zi] > zcar[zi])
        out["water_overloaded"] = over
        for i in np.flatnonzero(over):
            reasons[i].append(
                f"water zone {zn[zi[i]]}: population {zpop[zi[i]]:,.0f} exceeds water-carrying population "
                f"{zcar[zi[i]]:,.0f} by {zpop[zi[i]] - zcar[zi[i]]:,.0f}"
            )

    out["n_reasons"] = [len(r) for r in reasons]
    out["reasons"] = ["; ".join(r) for r in reasons]
    if not keep_all:
        out = out.loc[out["n_reasons"] > 0].reset_index(drop=True)
    geom_name = out.geometry.name
    return out[[c for c in out.columns if c != geom_name] + [geom_name]]
