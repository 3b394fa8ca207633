"""Relocation sources: per-county (any zone layer) figures and a configurable rule that flags relocation sources.

What is computed (``evaluate_sources``), one row per zone
---------------------------------------------------------
* ``population`` (persons) matched from a census table by name (exact, else the unique zone whose name ends with
  the table's name: ``城中区`` -> ``西宁市城中区``), with ``population_source``; a zone without a figure gets NaN
  and ``population_source = "missing"``, never 0.
* ``area_km2``: the polygon's area on the ellipsoid (Karney's geodesic area, ``suitability.water.geodesic_area_km2``),
  whatever the layer's CRS; ``density_per_km2`` = population / area (NaN when the population is missing).
* Elevation statistics from the DEM array on the grid, over the zone's cells (cell centre inside the polygon, GDAL
  rule, ``suitability.water.zone_index_raster``): ``elevation_{mean,median,min,max}_m`` of all cells with data,
  and ``inhabited_elevation_{mean,median,min,max}_m`` of the *inhabited* cells: cells where ``inhabited_mask`` is
  true (e.g. a settlement or built-up raster) if given, else cells below ``inhabited_below_m`` if given, else all
  cells with data. A zone with no inhabited cell falls back to all its cells, and ``inhabited_basis`` says which
  definition each row used. Means and extremes are exact (float64); medians come from a 1 m histogram (exact to
  the metre).
* ``share_above_<b>_m`` for each band ``b`` (default 3,500 / 4,000 / 4,500 m): cells with elevation ≥ b over cells
  with data. Cells count equally, so these are area shares on an equal-area grid (the project's Albers); on a
  geographic grid cells of one county differ in area by the cosine of latitude (a few per cent).
* At the seat (a point per zone, sampled at the cell containing it): ``seat_elevation_m``, ISA pressure
  ``seat_pressure_kpa`` and inspired oxygen ``seat_pio2_kpa`` (``suitability.atmosphere``), and
  ``seat_pio2_pct_of_sea_level``.
* ``red_line_share``: share of the zone's cells inside the ecological-red-line mask (if given); ``share_in_<area>``
  for each named area mask (e.g. the Sanjiangyuan National Park).
* ``travel_to_prefecture_min`` / ``travel_to_province_min``: the travel-time rasters (minutes, e.g.
  ``rasters.cost.travel_time`` with all prefecture seats, or the provincial capital, as destinations) sampled at
  the seat; NaN (and a note) where the seat was not reached.

Counts, sums and extremes are reduced per block and summed as integers (or combined in block order), one
``dask.compute`` for everything, so memory is bounded by the chunk size.

The flag rule (``FlagRule``)
----------------------------
A list of conditions, each ``"<column> <op> <number>"`` (ops ``>=  >  <=  <  ==  !=``; any numeric column of the
table, e.g. ``seat_elevation_m >= 4000``, ``density_per_km2 < 1``, ``share_above_4000_m >= 0.5``) or
``"in_area: <name>"`` (membership in a named area: a list of zone names, or a mask share ≥ ``min_share`` from the
``share_in_<name>`` column), combined with ``all``, ``any`` or ``at_least`` k. A condition on a missing number
(NaN: no population, seat off the DEM, seat unreachable) is *unknown*, and the combination follows Kleene's
three-valued logic: ``all`` is "no" as soon as one condition fails, "yes" only when all are met; ``any`` the
mirror; ``at_least`` k is "yes" with k met, "no" when even the unknown ones could not reach k. The table gets one
``meets_<condition>`` column per condition ("yes" / "no" / "unknown"), ``conditions_met``, ``conditions_unknown``
and ``flag`` ("yes" / "no" / "unknown").

``DEFAULT_RULE`` (all of): seat at or above 4,000 m; density below 1 person/km²; at least half the land at or
above 4,000 m. 4,000 m: the usual line of "very high altitude" in Chinese plateau planning and medicine (about
61 % of sea-level PiO₂); 1 person/km²: the issue's example. They flag 玛多 and 曲麻莱 on the Qinghai data by their
figures; no name is listed.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from rasters.errors import ConfigError, InputDataError, did_you_mean
from rasters.grid import Grid

from .atmosphere import inspired_po2_kpa, pressure_kpa
from .water import geodesic_area_km2, zone_index_raster

__all__ = [
    "DEFAULT_BANDS_M",
    "DEFAULT_RULE",
    "Condition",
    "FlagRule",
    "apply_rule",
    "evaluate_sources",
    "match_population",
    "seats_from_columns",
]

DEFAULT_BANDS_M: tuple[float, ...] = (3500.0, 4000.0, 4500.0)
_HIST_LO_M = -500  # 1 m histogram bins from -500 m (below the Dead Sea) ...
_HIST_HI_M = 9000  # ... to 9,000 m (above Everest); values outside go to the end bins
_OPS = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less, "==": np.equal,
        "!=": np.not_equal}
_OP_WORDS = {">=": "ge", ">": "gt", "<=": "le", "<": "lt", "==": "eq", "!=": "ne"}
_SHOWN = 8


# --- inputs -----------------------------------------------------------------------------------------------------


def seats_from_columns(zones: gpd.GeoDataFrame, lon: str = "seat_lon", lat: str = "seat_lat",
                       crs: Any = "EPSG:4326") -> gpd.GeoSeries:
    """Seat points from two attribute columns (``crs`` of the columns, lon/lat by default), in the zones' CRS."""
    cols = [str(c) for c in zones.columns]
    for c in (lon, lat):
        if c not in cols:
            raise ConfigError(f"seats: no attribute '{c}'{did_you_mean(c, cols)}")
    x = pd.to_numeric(zones[lon], errors="coerce").to_numpy(float)
    y = pd.to_numeric(zones[lat], errors="coerce").to_numpy(float)
    pts = gpd.GeoSeries(gpd.points_from_xy(x, y), crs=crs)
    return pts.to_crs(zones.crs) if zones.crs is not None else pts


def match_population(
    names: Sequence[str],
    table: pd.DataFrame | Mapping[str, float],
    *,
    name: str = "name_zh",
    value: str = "population_2020",
    source: str | None = "source",
    where: str = "population",
) -> tuple[np.ndarray, list[str]]:
    """Population per zone (NaN where missing) and a source string per zone ("missing" where none).

    ``table``: a DataFrame (columns ``name``, ``value`` and optionally ``source``) or a mapping name -> persons. A
    table name matches a zone exactly or, failing that, as the unique suffix of one zone name. A table row that
    matches no zone, or several, is skipped with a ``UserWarning`` naming it; a negative or non-numeric figure is an
    ``InputDataError``; two rows for one zone are an ``InputDataError``.
    """
    names = [str(n) for n in names]
    if isinstance(table, Mapping):
        rows = [(str(k), v, "given") for k, v in table.items()]
    else:
        cols = [str(c) for c in table.columns]
        for c in (name, value):
            if c not in cols:
                raise ConfigError(f"{where}: no column '{c}'{did_you_mean(c, cols)}")
        has_src = source is not None and source in cols
        rows = [(str(r[name]).strip(), r[value], str(r[source]) if has_src and pd.notna(r[source]) else "given")
                for _, r in table.iterrows()]
    pop = np.full(len(names), np.nan)
    src = ["missing"] * len(names)
    for nm, v, s in rows:
        try:
            fv = float(v)
        except (TypeError, ValueError):
            raise InputDataError(f"{where}: population of '{nm}' is not a number ({v!r})") from None
        if not (math.isfinite(fv) and fv >= 0):
            raise InputDataError(f"{where}: population of '{nm}' must be a non-negative number, got {v!r}")
        hits = [i for i, z in enumerate(names) if z == nm]
        how = ""
        if not hits:
            hits = [i for i, z in enumerate(names) if z.endswith(nm)]
            how = f" (name '{nm}' matched by suffix)"
        if len(hits) != 1:
            warnings.warn(f"{where}: row '{nm}' matches {len(hits)} zones; ignored", UserWarning, stacklevel=2)
            continue
        i = hits[0]
        if np.isfinite(pop[i]):
            raise InputDataError(f"{where}: two population rows for zone '{names[i]}'")
        pop[i] = fv
        src[i] = s + how
    return pop, src


def _sample_cells(arr: Any, rows: np.ndarray, cols: np.ndarray, inside: np.ndarray) -> Any:
    """Values at (rows, cols) (NaN outside): numpy now, or a lazy dask array of the picks."""
    r = np.where(inside, rows, 0)
    c = np.where(inside, cols, 0)
    if isinstance(arr, da.Array):
        return arr.vindex[r, c]
    return np.asarray(arr)[r, c]


# --- per-block tallies ------------------------------------------------------------------------------------------


def _as_bool(block: np.ndarray) -> np.ndarray:
    b = np.asarray(block)
    if b.dtype == bool:
        return b
    with np.errstate(invalid="ignore"):
        return np.isfinite(b) & (b != 0)


def _tally_block(zone, elev, inhabited, masks, n, bands, below):
    """Per-block sums for zones 0..n (0 = no zone): see ``_combine`` for the layout."""
    z = np.asarray(zone).astype(np.int64).ravel()
    if z.size and (z.min() < 0 or z.max() > n):
        raise InputDataError(f"zone index raster holds {int(z.max())}, outside 0..{n}")
    e = np.asarray(elev, dtype=np.float64).ravel()
    valid = np.isfinite(e)
    if inhabited is not None:
        inh = valid & _as_bool(inhabited).ravel()
    elif below is not None:
        inh = valid & (e < below)
    else:
        inh = valid
    m = n + 1
    out = {"cells": np.bincount(z, minlength=m)}
    nb = _HIST_HI_M - _HIST_LO_M
    for key, sel in (("all", valid), ("inh", inh)):
        zs, es = z[sel], e[sel]
        out[f"{key}_count"] = np.bincount(zs, minlength=m)
        out[f"{key}_sum"] = np.bincount(zs, weights=es, minlength=m)
        mn = np.full(m, np.inf)
        mx = np.full(m, -np.inf)
        np.minimum.at(mn, zs, es)
        np.maximum.at(mx, zs, es)
        out[f"{key}_min"], out[f"{key}_max"] = mn, mx
        b = np.clip(np.floor(es).astype(np.int64) - _HIST_LO_M, 0, nb - 1)
        keys, counts = np.unique(zs * nb + b, return_counts=True)
        out[f"{key}_hist"] = (keys, counts.astype(np.int64))
    out["bands"] = np.stack([np.bincount(z[valid & (e >= b)], minlength=m) for b in bands]) if bands else None
    out["masks"] = [np.bincount(z[_as_bool(mk).ravel()], minlength=m) for mk in masks]
    return out


def _combine(parts):
    out = {}
    for key in parts[0]:
        vals = [p[key] for p in parts]
        if key.endswith("_min"):
            out[key] = np.minimum.reduce(vals)
        elif key.endswith("_max"):
            out[key] = np.maximum.reduce(vals)
        elif key.endswith("_hist"):
            keys = np.concatenate([v[0] for v in vals])
            counts = np.concatenate([v[1] for v in vals])
            uniq, inv = np.unique(keys, return_inverse=True)
            out[key] = (uniq, np.bincount(inv, weights=counts).astype(np.int64))
        elif key == "masks":
            out[key] = [sum(v[i] for v in vals) for i in range(len(vals[0]))]
        elif key == "bands":
            out[key] = None if vals[0] is None else sum(vals)
        else:
            out[key] = sum(vals)  # integer counts exactly; float sums in block order
    return out


def _medians(hist, n: int) -> np.ndarray:
    """Median (lower median, bin centre, metres) per zone 1..n from sparse (zone * nb + bin, count) pairs."""
    nb = _HIST_HI_M - _HIST_LO_M
    keys, counts = hist
    zone, b = np.divmod(keys, nb)
    out = np.full(n + 1, np.nan)
    starts = np.searchsorted(zone, np.arange(n + 2))
    for zi in range(1, n + 1):
        s0, s1 = starts[zi], starts[zi + 1]
        if s1 == s0:
            continue
        c = np.cumsum(counts[s0:s1])
        k = int(np.searchsorted(c, (c[-1] + 1) // 2))  # the ceil(N/2)-th value: the lower median
        out[zi] = _HIST_LO_M + b[s0 + k] + 0.5
    return out[1:]


# --- evaluation -------------------------------------------------------------------------------------------------


def evaluate_sources(
    zones: gpd.GeoDataFrame,
    *,
    name: str,
    grid: Grid,
    elevation_m: Any,
    seats: gpd.GeoSeries,
    population: pd.DataFrame | Mapping[str, float] | None = None,
    population_columns: Mapping[str, str | None] | None = None,
    prefecture: str | None = None,
    zone_index: Any = None,
    inhabited_mask: Any = None,
    inhabited_below_m: float | None = None,
    bands_m: Sequence[float] = DEFAULT_BANDS_M,
    red_line: Any = None,
    area_masks: Mapping[str, Any] | None = None,
    travel_to_prefecture_min: Any = None,
    travel_to_province_min: Any = None,
    rule: FlagRule | None = None,
    where: str = "relocation.sources",
) -> pd.DataFrame:
    """One row per zone with the figures listed in the module docstring, and the rule's verdict if ``rule``.

    Args:
        zones: polygons (any CRS; rasterized onto ``grid`` unless ``zone_index`` is given).
        name: attribute with the zone name (unique).
        grid: the analysis grid of every raster argument.
        elevation_m: DEM on the grid (numpy or dask, NaN = no data).
        seats: one point per zone, in row order (any CRS; ``seats_from_columns`` builds them from lon/lat).
        population: census table or mapping (``match_population``); ``population_columns`` renames its
            ``name`` / ``value`` / ``source`` columns. None: every population is "missing".
        prefecture: attribute copied to the ``prefecture`` column (used by the allocation's penalties).
        zone_index: int raster 1..n (0 = no zone) in ``zones`` row order, if already burned.
        inhabited_mask / inhabited_below_m: the inhabited cells (see the module docstring); at most one.
        bands_m: altitude bands for ``share_above_<b>_m``.
        red_line: boolean (or 0/1) mask of the ecological protection red line.
        area_masks: name -> mask, giving ``share_in_<name>``.
        travel_to_prefecture_min / travel_to_province_min: travel-time rasters (minutes) sampled at the seats.
        rule: a ``FlagRule`` to apply (``apply_rule``); areas given as masks need ``area_masks``.

    Raises ``ConfigError`` for a wrong shape, both inhabited options, bad bands, an unknown attribute;
    ``InputDataError`` for duplicated or empty zone names or a seat count that differs from the zones.
    """
    if not isinstance(zones, gpd.GeoDataFrame) or len(zones) == 0:
        raise InputDataError(f"{where}: expected a non-empty GeoDataFrame of zones")
    cols = [str(c) for c in zones.columns if c != zones.geometry.name]
    for c in (name, prefecture):
        if c is not None and c not in cols:
            raise ConfigError(f"{where}: no attribute '{c}'{did_you_mean(c, cols)}")
    names = [str(v).strip() for v in zones[name]]
    if any(not v or v == "nan" for v in names):
        raise InputDataError(f"{where}: zone name '{name}' is empty for some rows")
    dup = sorted({v for v in names if names.count(v) > 1})
    if dup:
        raise InputDataError(f"{where}: zone names must be unique, repeated: {', '.join(dup[:_SHOWN])}")
    n = len(names)
    if len(seats) != n:
        raise InputDataError(f"{where}: {len(seats)} seats for {n} zones (one seat per zone, in row order)")
    if inhabited_mask is not None and inhabited_below_m is not None:
        raise ConfigError(f"{where}: give inhabited_mask or inhabited_below_m, not both")
    bands = tuple(float(b) for b in bands_m)
    if any(not math.isfinite(b) for b in bands) or len(set(bands)) != len(bands):
        raise ConfigError(f"{where}: bands_m must be distinct finite altitudes in metres, got {list(bands_m)!r}")
    below = None if inhabited_below_m is None else float(inhabited_below_m)
    area_masks = dict(area_masks or {})
    for key, arr in (("elevation_m", elevation_m), ("zone_index", zone_index), ("inhabited_mask", inhabited_mask),
                     ("red_line", red_line), ("travel_to_prefecture_min", travel_to_prefecture_min),
                     ("travel_to_province_min", travel_to_province_min),
                     *((f"area_masks.{k}", v) for k, v in area_masks.items())):
        if arr is not None and tuple(np.shape(arr)) != grid.shape:
            raise ConfigError(f"{where}: {key} has shape {tuple(np.shape(arr))}, the grid {grid.shape}")

    if zone_index is None:
        zone_index = zone_index_raster(zones, grid)
    mask_list = ([red_line] if red_line is not None else []) + list(area_masks.values())

    # One delayed tally per block of the zone raster; the other rasters are rechunked to match.
    zi = da.asarray(zone_index) if not isinstance(zone_index, da.Array) else zone_index
    # Any chunking gives the same tallies; follow the DEM's so it is not rechunked.
    zi = zi.rechunk(elevation_m.chunks if isinstance(elevation_m, da.Array) else grid.chunks)
    def blocks(a):
        return None if a is None else da.asarray(a).rechunk(zi.chunks).to_delayed(optimize_graph=False)
    zb, eb, ib = blocks(zi), blocks(elevation_m), blocks(inhabited_mask)
    mbs = [blocks(m) for m in mask_list]
    parts = [
        dask.delayed(_tally_block)(zb[i, j], eb[i, j], None if ib is None else ib[i, j],
                                   [mb[i, j] for mb in mbs], n, bands, below)
        for i in range(zb.shape[0]) for j in range(zb.shape[1])
    ]
    tally = dask.delayed(_combine)(parts)

    seats_g = seats.to_crs(grid.crs) if seats.crs is not None else seats
    geoms = np.asarray(seats_g.values, dtype=object)
    ok_geom = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    sx = np.where(ok_geom, shapely.get_x(np.where(ok_geom, geoms, shapely.Point(0, 0))), np.nan)
    sy = np.where(ok_geom, shapely.get_y(np.where(ok_geom, geoms, shapely.Point(0, 0))), np.nan)
    finite = np.isfinite(sx) & np.isfinite(sy)
    rows, cols_ = grid.index_of_xy(np.where(finite, sx, grid.bounds[0] - 1), np.where(finite, sy, 0.0))
    inside = finite & (rows >= 0) & (rows < grid.height) & (cols_ >= 0) & (cols_ < grid.width)
    samples = {"seat_elevation_m": elevation_m, "travel_to_prefecture_min": travel_to_prefecture_min,
               "travel_to_province_min": travel_to_province_min}
    picks = {k: _sample_cells(v, rows, cols_, inside) for k, v in samples.items() if v is not None}
    tally, picks = dask.compute(tally, picks)
    picked = {k: np.where(inside, np.asarray(v, dtype=np.float64), np.nan) for k, v in picks.items()}

    pop_cols = {"name": "name_zh", "value": "population_2020", "source": "source", **(population_columns or {})}
    if population is None:
        pop, pop_src = np.full(n, np.nan), ["missing"] * n
    else:
        pop, pop_src = match_population(names, population, name=pop_cols["name"], value=pop_cols["value"],
                                        source=pop_cols["source"], where=f"{where}.population")
    area = geodesic_area_km2(zones)
    with np.errstate(divide="ignore", invalid="ignore"):
        density = np.where(area > 0, pop / np.where(area > 0, area, 1.0), np.nan)

    t = tally
    out = pd.DataFrame({"zone": names})
    if prefecture is not None:
        out["prefecture"] = [str(v) for v in zones[prefecture]]
    out["population"] = pop
    out["population_source"] = pop_src
    out["area_km2"] = area
    out["density_per_km2"] = density
    out["seat_x"], out["seat_y"] = sx, sy
    out["seat_row"] = np.where(inside, rows, -1)
    out["seat_col"] = np.where(inside, cols_, -1)
    seat_el = picked.get("seat_elevation_m", np.full(n, np.nan))
    out["seat_elevation_m"] = seat_el
    out["seat_pressure_kpa"] = pressure_kpa(seat_el)
    out["seat_pio2_kpa"] = inspired_po2_kpa(seat_el)
    out["seat_pio2_pct_of_sea_level"] = 100.0 * out["seat_pio2_kpa"] / inspired_po2_kpa(0.0)

    cells = t["cells"][1:]
    all_n = t["all_count"][1:]
    inh_n = t["inh_count"][1:]
    fallback = (inh_n == 0) & (all_n > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        for key, lab in (("all", "elevation"), ("inh", "inhabited_elevation")):
            cnt = t[f"{key}_count"][1:].astype(float)
            mean = np.where(cnt > 0, t[f"{key}_sum"][1:] / np.where(cnt > 0, cnt, 1), np.nan)
            mn = np.where(cnt > 0, t[f"{key}_min"][1:], np.nan)
            mx = np.where(cnt > 0, t[f"{key}_max"][1:], np.nan)
            med = _medians(t[f"{key}_hist"], n)
            if key == "inh":
                # A zone with no inhabited cell is described by all its cells (and says so).
                mean, mn, mx, med = (np.where(fallback, out[f"elevation_{s}_m"].to_numpy(), v)
                                     for s, v in (("mean", mean), ("min", mn), ("max", mx), ("median", med)))
            out[f"{lab}_mean_m"], out[f"{lab}_median_m"] = mean, med
            out[f"{lab}_min_m"], out[f"{lab}_max_m"] = mn, mx
        if inhabited_mask is not None:
            basis = "cells in the inhabited mask"
        elif below is not None:
            basis = f"cells below {below:g} m"
        else:
            basis = "all cells with elevation data"
        out["inhabited_basis"] = np.where(fallback, f"all cells (none are {basis})", basis)
        out.loc[all_n == 0, "inhabited_basis"] = "no cell with elevation data"
        out["inhabited_cells"] = np.where(fallback, all_n, inh_n)
        out["cells"] = cells
        for k, b in enumerate(bands):
            out[f"share_above_{b:g}_m"] = np.where(all_n > 0, t["bands"][k][1:] / np.where(all_n > 0, all_n, 1),
                                                   np.nan)
        mk = list(t["masks"])
        share = lambda c: np.where(cells > 0, c[1:] / np.where(cells > 0, cells, 1), np.nan)  # noqa: E731
        if red_line is not None:
            out["red_line_share"] = share(mk.pop(0))
        for key in area_masks:
            out[f"share_in_{key}"] = share(mk.pop(0))
    for k in ("travel_to_prefecture_min", "travel_to_province_min"):
        if k in picked:
            out[k] = picked[k]

    notes = [[] for _ in range(n)]
    for i in range(n):
        if not np.isfinite(pop[i]):
            notes[i].append("no population figure")
        if not inside[i]:
            notes[i].append("seat missing or outside the grid")
        elif not np.isfinite(seat_el[i]):
            notes[i].append("no elevation at the seat")
        if cells[i] == 0:
            notes[i].append("no cell centre of the grid in the zone")
        for k, lab in (("travel_to_prefecture_min", "prefecture centre"), ("travel_to_province_min",
                                                                            "provincial centre")):
            if k in picked and inside[i] and not np.isfinite(picked[k][i]):
                notes[i].append(f"seat not reached from the {lab}")
    out["notes"] = ["; ".join(v) for v in notes]
    out.attrs.update({"bands_m": bands, "inhabited": basis,
                      "elevation_statistics": "means/extremes exact; medians from 1 m bins (lower median)",
                      "shares": "cell-count shares (area shares on an equal-area grid)"})
    if rule is not None:
        out = apply_rule(out, rule, where=f"{where}.rule")
    return out


# --- the flag rule ----------------------------------------------------------------------------------------------

_COND_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|==|!=|>|<)\s*([-+0-9.eE_]+)\s*$")
_AREA_RE = re.compile(r"^\s*in_area\s*:\s*(\S+)\s*$")


@dataclass(frozen=True)
class Condition:
    """One condition: ``column op value`` on a number, or membership ``in_area`` of a named area."""

    column: str | None = None
    op: str | None = None
    value: float | None = None
    area: str | None = None

    @classmethod
    def parse(cls, spec: str | Mapping[str, Any] | Condition, where: str = "rule") -> Condition:
        """From ``"seat_elevation_m >= 4000"``, ``"in_area: sanjiangyuan"`` or a mapping with the same keys."""
        if isinstance(spec, Condition):
            return spec
        if isinstance(spec, Mapping):
            extra = set(spec) - {"column", "op", "value", "area"}
            if extra:
                raise ConfigError(f"{where}: unknown key(s) {sorted(extra)} (valid: column, op, value, area)")
            if "area" in spec:
                return cls(area=str(spec["area"]))
            try:
                return cls(str(spec["column"]), str(spec["op"]), float(spec["value"]))._checked(where)
            except (KeyError, TypeError, ValueError):
                raise ConfigError(f"{where}: a condition needs column, op and a numeric value, got {dict(spec)!r}")\
                    from None
        text = str(spec)
        m = _AREA_RE.match(text)
        if m:
            return cls(area=m.group(1))
        m = _COND_RE.match(text)
        if not m:
            raise ConfigError(f"{where}: cannot read condition {text!r}; write e.g. 'seat_elevation_m >= 4000', "
                              "'density_per_km2 < 1' or 'in_area: sanjiangyuan'")
        try:
            value = float(m.group(3))
        except ValueError:
            raise ConfigError(f"{where}: condition {text!r}: {m.group(3)!r} is not a number") from None
        return cls(m.group(1), m.group(2), value)._checked(where)

    def _checked(self, where: str) -> Condition:
        if self.op not in _OPS:
            raise ConfigError(f"{where}: unknown operator {self.op!r} (valid: {', '.join(_OPS)})")
        if not math.isfinite(self.value):
            raise ConfigError(f"{where}: condition value must be finite, got {self.value!r}")
        return self

    @property
    def label(self) -> str:
        return f"in_area: {self.area}" if self.area else f"{self.column} {self.op} {self.value:g}"

    @property
    def slug(self) -> str:
        if self.area:
            return f"in_{self.area}"
        return f"{self.column}_{_OP_WORDS[self.op]}_{self.value:g}".replace(".", "p").replace("-", "m")


@dataclass(frozen=True)
class FlagRule:
    """Conditions combined with ``all`` / ``any`` / ``at_least`` (``k`` of them); areas for ``in_area`` conditions.

    ``areas``: name -> a list of zone names (membership), or ``{"min_share": s}`` to use the ``share_in_<name>``
    column (from ``evaluate_sources(area_masks=...)``) with threshold s (default 0.5).
    """

    conditions: tuple[Condition, ...]
    combine: str = "all"
    k: int | None = None
    areas: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        conds = tuple(Condition.parse(c, f"rule.conditions[{i}]") for i, c in enumerate(self.conditions))
        if not conds:
            raise ConfigError("rule: give at least one condition")
        object.__setattr__(self, "conditions", conds)
        if self.combine not in ("all", "any", "at_least"):
            raise ConfigError(f"rule: combine must be all, any or at_least, got {self.combine!r}"
                              f"{did_you_mean(str(self.combine), ('all', 'any', 'at_least'))}")
        if self.combine == "at_least":
            if not (isinstance(self.k, int) and 1 <= self.k <= len(conds)):
                raise ConfigError(f"rule: at_least needs k within 1..{len(conds)}, got {self.k!r}")
        elif self.k is not None:
            raise ConfigError(f"rule: k is only used with combine: at_least (got combine: {self.combine})")
        for c in conds:
            if c.area and c.area not in self.areas:
                raise ConfigError(f"rule: condition '{c.label}' names an area that is not defined in areas"
                                  f"{did_you_mean(c.area, self.areas)}")

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> FlagRule:
        """From ``{"conditions": [...], "combine": "all", "k": 2, "areas": {...}}`` (the config's shape)."""
        extra = set(spec) - {"conditions", "combine", "k", "areas"}
        if extra:
            raise ConfigError(f"rule: unknown key(s) {sorted(extra)} (valid: conditions, combine, k, areas)")
        return cls(tuple(spec.get("conditions") or ()), spec.get("combine", "all"), spec.get("k"),
                   dict(spec.get("areas") or {}))

    def describe(self) -> str:
        how = f"at least {self.k} of" if self.combine == "at_least" else f"{self.combine} of"
        return f"{how}: " + "; ".join(c.label for c in self.conditions)


DEFAULT_RULE = FlagRule(("seat_elevation_m >= 4000", "density_per_km2 < 1", "share_above_4000_m >= 0.5"))


def _evaluate(cond: Condition, table: pd.DataFrame, rule: FlagRule, where: str) -> np.ndarray:
    """+1 met, 0 not met, -1 unknown, per row."""
    cols = [str(c) for c in table.columns]
    if cond.area:
        spec = rule.areas[cond.area]
        if isinstance(spec, Mapping):
            col = f"share_in_{cond.area}"
            if col not in cols:
                raise ConfigError(f"{where}: area '{cond.area}' is defined by a mask share but the table has no "
                                  f"'{col}' column (pass area_masks={{'{cond.area}': mask}} to evaluate_sources)")
            s = pd.to_numeric(table[col], errors="coerce").to_numpy(float)
            thr = float(spec.get("min_share", 0.5))
            return np.where(np.isnan(s), -1, (s >= thr).astype(int))
        members = {str(v) for v in spec}
        unknown = sorted(members - set(table["zone"].astype(str)))
        if unknown:
            warnings.warn(f"{where}: area '{cond.area}' lists zone(s) not in the table: {', '.join(unknown[:8])}",
                          UserWarning, stacklevel=3)
        return table["zone"].astype(str).isin(members).to_numpy().astype(int)
    if cond.column not in cols:
        raise ConfigError(f"{where}: condition '{cond.label}': no column '{cond.column}'"
                          f"{did_you_mean(cond.column, cols)}")
    x = pd.to_numeric(table[cond.column], errors="coerce").to_numpy(float)
    with np.errstate(invalid="ignore"):
        met = _OPS[cond.op](x, cond.value)
    return np.where(np.isnan(x), -1, met.astype(int))


def apply_rule(table: pd.DataFrame, rule: FlagRule = DEFAULT_RULE, *, where: str = "rule") -> pd.DataFrame:
    """Add ``meets_<slug>`` per condition, ``conditions_met``, ``conditions_unknown``, ``n_met`` and ``flag``.

    Values are "yes" / "no" / "unknown" (three-valued, see the module docstring); ``table`` needs a ``zone``
    column and the columns the conditions name. Returns a copy; ``attrs["rule"]`` describes the rule.
    """
    if "zone" not in table.columns:
        raise ConfigError(f"{where}: the table needs a 'zone' column")
    out = table.copy()
    words = np.array(["unknown", "no", "yes"], dtype=object)  # index by state + 1
    states = []
    for c in rule.conditions:
        s = _evaluate(c, out, rule, where)
        states.append(s)
        out[f"meets_{c.slug}"] = words[s + 1]
    st = np.vstack(states)  # (conditions, zones)
    n_yes = (st == 1).sum(axis=0)
    n_unk = (st == -1).sum(axis=0)
    n_all = st.shape[0]
    if rule.combine == "all":
        yes, no = n_yes == n_all, (st == 0).any(axis=0)
    elif rule.combine == "any":
        yes, no = n_yes > 0, n_yes + n_unk == 0
    else:
        yes, no = n_yes >= rule.k, n_yes + n_unk < rule.k
    labels = [c.label for c in rule.conditions]
    out["n_met"] = n_yes
    out["conditions_met"] = ["; ".join(lab for lab, s in zip(labels, st[:, i], strict=True) if s == 1)
                             for i in range(st.shape[1])]
    out["conditions_unknown"] = ["; ".join(lab for lab, s in zip(labels, st[:, i], strict=True) if s == -1)
                                 for i in range(st.shape[1])]
    out["flag"] = np.where(yes, "yes", np.where(no, "no", "unknown"))
    out.attrs["rule"] = rule.describe()
    return out
