"""Relocation destinations and allocation: capacities by the 短板 rule, travel matrices, and a linear program.

Destination capacity (``destination_capacity``)
-----------------------------------------------
Per candidate destination the population it can still take is the minimum of its limits (短板原理, as
``suitability.carrying.carrying_scale``), each in persons:

* ``water``: the headroom of the destination's water zone (以水定人: ``suitability.water.water_carrying_table``'s
  ``headroom_population``; a zone over its budget gives 0). Several destinations in one zone *share* it: the table
  shows the zone's headroom for each, and the allocation gives the zone one joint constraint.
* ``land``: suitable land in the destination's catchment (km², e.g. ``catchment_land_km2``) × a density
  (persons/km²).
* services (optional): e.g. spare school places or hospital beds × persons served per unit (a school place per
  pupil: persons = places / pupils-per-person; a bed per 1,000/6 persons with 6 beds per 1,000). NaN = no limit.

``capacity`` is the minimum and ``binding`` names the limit(s) reaching it.

Travel times (``travel_matrix``)
--------------------------------
One Dijkstra per source on the friction surface (``rasters.cost.travel_time`` from the source's seat cell; numpy,
or dask with the tiled solver), sampled at the destination cells: minutes[s, d]. The move costs of the kernel are
symmetric, so the time from the seat to d equals the time from d to the seat. Unreachable pairs are NaN and the
allocation never uses them; ``paths=True`` keeps each pair's least-cost path (``rasters.cost.least_cost_path``,
reversed to run source → destination) for ``flow_lines`` (LineStrings through ``vectors.paths.path_linestring``).

The allocation (``allocate``)
-----------------------------
Variables x[s, d] ≥ 0 (persons from source s to destination d, for reachable pairs only) and u[s] ≥ 0 (unplaced).
Minimise

    Σ x[s,d] · ( α·travel_min[s,d] + β·suitability_loss[d] + γ·[prefecture(d) ≠ prefecture(s)]
                 + δ·max(0, elevation(d) − seat_elevation(s)) )  +  M · Σ u[s]

subject to  Σ_d x[s,d] + u[s] = demand[s]            (every person placed or reported unplaced)
            Σ_s x[s,d] ≤ limit_k[d]                   (one row per destination limit k other than water)
            Σ_{d in zone z} Σ_s x[s,d] ≤ headroom[z]  (one row per water zone)
            x[s,d] ≤ max_share · demand[s]            (no source sends more than that share to one place)

M (``unplaced_penalty``) defaults to (min(S, D) + 2) · max cost + 1: an extra placed person is reached by a chain
of at most min(S, D) + 1 moves each changing the cost by at most max cost, so leaving someone unplaced is never
cheaper than placing them when capacity exists. Solved by HiGHS through ``scipy.optimize.linprog(method="highs")``.
The dual values of the capacity rows (``res.ineqlin.marginals``, ≤ 0 for ≤ rows of a minimisation) are reported as
``value_per_unit`` = −marginal: how much the objective falls if that capacity grows by one person (while the
basis stays optimal). With unplaced demand a binding capacity is worth about M minus the cost of the placement:
one more place places one more person. For water rows the value per m³ is value_per_unit / (m³ per person per
year) when ``water_m3_per_person`` is given. The equality rows' duals are ``marginal_cost_per_person`` per source.

Minimum viable group (``min_group``): x[s,d] = 0 or x[s,d] ≥ min_group needs a binary y[s,d] with
min_group·y ≤ x ≤ ub·y; that is a mixed-integer program, solved with ``scipy.optimize.milp`` (HiGHS
branch-and-cut). ``integer=True`` also makes x integer (persons, or households if demand and capacities are given
in households). A MILP has no dual values: the constraint table then has NaN ``value_per_unit`` and
``duals_available`` is False (re-solve as an LP, without min_group, to read prices).

Groups (herders, town residents...) only define the demand: every group of a source has the same costs, so the LP
would be indifferent to which group goes where; flows are split among a source's groups in proportion to its
demand (``people_<group>`` columns), which is stated in the result.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from rasters.cost import least_cost_path, travel_time
from rasters.errors import ConfigError, InputDataError, SuitabilityError, did_you_mean
from rasters.grid import Grid

from .atmosphere import inspired_po2_kpa
from .carrying import zone_class_areas_km2

__all__ = [
    "Allocation",
    "CostWeights",
    "Scenario",
    "TravelMatrix",
    "allocate",
    "catchment_land_km2",
    "destination_capacity",
    "flow_lines",
    "run_scenarios",
    "scenario_demand",
    "travel_matrix",
]

_TOL = 1e-6  # persons: below this a flow is solver noise; a row with slack below this binds


def _fmt_names(names: Sequence[str]) -> str:
    names = list(names)
    return ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")


def _num(v: Any, what: str) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number, got {v!r}") from None
    if not math.isfinite(f):
        raise ConfigError(f"{what} must be finite, got {v!r}")
    return f


# --- destination capacity ---------------------------------------------------------------------------------------


def destination_capacity(
    table: pd.DataFrame,
    *,
    name: str = "name",
    zone: str | None = "zone",
    water_headroom: pd.DataFrame | Mapping[str, float] | None = None,
    land_km2: str | None = "suitable_land_km2",
    density_per_km2: str | float | None = None,
    services: Mapping[str, str | tuple[str, float]] | None = None,
    where: str = "relocation.destinations",
) -> pd.DataFrame:
    """Capacity (persons) of each destination = min of its limits, and which limit binds (短板).

    Args:
        table: one row per destination; other columns (``elevation_m``, ``prefecture``, ``suitability_loss``...)
            are kept for the allocation.
        name, zone: columns with the destination's unique name and its water zone.
        water_headroom: zone -> headroom persons, or ``water_carrying_table``'s frame (``zone``,
            ``headroom_population``). Negative headroom (zone over budget) gives 0.
        land_km2, density_per_km2: suitable land column (km²) and a density column or one number (persons/km²).
        services: limit name -> column (persons) or (column, persons per unit). NaN in a service column: no limit.

    Returns ``destination``, ``zone``, ``limit_<k>`` per limit (NaN = none), ``water_zone_shared_by``,
    ``capacity``, ``binding``, ``notes``, then the table's other columns.

    Raises ``ConfigError`` for an unknown column (with the closest name), a bad density or persons-per-unit;
    ``InputDataError`` naming the destination(s) for duplicate names, an unknown zone, a missing or negative land
    figure, a negative service figure, or no limit at all.
    """
    cols = [str(c) for c in table.columns]

    def need(c: str) -> str:
        if c not in cols:
            raise ConfigError(f"{where}: no column '{c}'{did_you_mean(c, cols)}")
        return c

    names = [str(v) for v in table[need(name)]]
    dup = sorted({v for v in names if names.count(v) > 1})
    if dup:
        raise InputDataError(f"{where}: destination names must be unique, repeated: {_fmt_names(dup)}")
    n = len(names)
    if n == 0:
        raise InputDataError(f"{where}: no destinations")
    zones = [str(v) for v in table[need(zone)]] if zone is not None else [""] * n
    limits: dict[str, np.ndarray] = {}
    notes = [[] for _ in range(n)]
    shared = np.zeros(n, dtype=int)
    if water_headroom is not None:
        if zone is None:
            raise ConfigError(f"{where}: water_headroom needs the destinations' zone column")
        if isinstance(water_headroom, pd.DataFrame):
            for c in ("zone", "headroom_population"):
                if c not in water_headroom.columns:
                    raise ConfigError(f"{where}: water table has no column '{c}'")
            head = dict(zip(water_headroom["zone"].astype(str), water_headroom["headroom_population"], strict=True))
        else:
            head = {str(k): v for k, v in water_headroom.items()}
        unknown = [f"{d} (zone '{z}'{did_you_mean(z, head)})" for d, z in zip(names, zones, strict=True)
                   if z not in head]
        if unknown:
            raise InputDataError(f"{where}: no water headroom for the zone of destination(s) {_fmt_names(unknown)}")
        raw = np.array([float(head[z]) for z in zones])
        if np.isnan(raw).any():
            raise InputDataError(f"{where}: water headroom is missing for destination(s) "
                                 f"{_fmt_names([d for d, v in zip(names, raw, strict=True) if np.isnan(v)])}")
        for i in np.flatnonzero(raw < 0):
            notes[i].append(f"water zone '{zones[i]}' is over its budget (headroom {raw[i]:,.0f})")
        limits["water"] = np.maximum(raw, 0.0)
        counts = pd.Series(zones).value_counts()
        shared = np.array([counts[z] for z in zones])
    if land_km2 is not None:
        land = pd.to_numeric(table[need(land_km2)], errors="coerce").to_numpy(float)
        if isinstance(density_per_km2, str):
            dens = pd.to_numeric(table[need(density_per_km2)], errors="coerce").to_numpy(float)
        elif density_per_km2 is None:
            raise ConfigError(f"{where}: land_km2 needs density_per_km2 (a column or persons/km2)")
        else:
            dens = np.full(n, _num(density_per_km2, f"{where}: density_per_km2"))
        bad = ~np.isfinite(land) | (land < 0) | ~np.isfinite(dens) | (dens <= 0)
        if bad.any():
            raise InputDataError(f"{where}: suitable land ('{land_km2}', km2) and density must be given, land >= 0 "
                                 f"and density > 0, for destination(s) {_fmt_names(np.asarray(names)[bad])}")
        limits["land"] = land * dens
    for key, spec in (services or {}).items():
        col, per_unit = (spec, 1.0) if isinstance(spec, str) else (spec[0], _num(spec[1], f"{where}: {key}"))
        if per_unit <= 0:
            raise ConfigError(f"{where}: {key}: persons per unit must be > 0, got {per_unit}")
        v = pd.to_numeric(table[need(col)], errors="coerce").to_numpy(float)
        neg = v < 0
        if neg.any():
            raise InputDataError(f"{where}: {key} ('{col}') is negative for destination(s) "
                                 f"{_fmt_names(np.asarray(names)[neg])}")
        limits[str(key)] = v * per_unit
    if not limits:
        raise ConfigError(f"{where}: give at least one limit (water_headroom, land_km2 or services)")
    stack = np.vstack(list(limits.values()))
    none = np.all(np.isnan(stack), axis=0)
    if none.any():
        raise InputDataError(f"{where}: destination(s) {_fmt_names(np.asarray(names)[none])} have no limit at all")
    cap = np.nanmin(stack, axis=0)
    keys = list(limits)
    out = pd.DataFrame({"destination": names, "zone": zones})
    for k, v in limits.items():
        out[f"limit_{k}"] = v
    out["water_zone_shared_by"] = shared
    out["capacity"] = cap
    out["binding"] = ["+".join(k for k, v in zip(keys, stack[:, i], strict=True) if v == cap[i]) for i in range(n)]
    for i in np.flatnonzero(cap <= 0):
        notes[i].append(f"zero capacity ({out['binding'][i]})")
    for i in np.flatnonzero(shared > 1):
        notes[i].append(f"water headroom shared with {shared[i] - 1} other destination(s) in zone '{zones[i]}'")
    out["notes"] = ["; ".join(v) for v in notes]
    rest = [c for c in table.columns if str(c) not in {name, zone} and str(c) not in out.columns]
    for c in rest:
        out[c] = table[c].to_numpy()
    out.attrs["rule"] = "capacity = min of limits (短板); water headroom is shared within a zone"
    return out


def catchment_land_km2(allocation: Any, classes: Any, grid: Grid, n_destinations: int,
                       top_classes: Sequence[int], n_classes: int = 255) -> np.ndarray:
    """Suitable land (km²) in each destination's catchment: cells allocated to it in the top classes.

    ``allocation``: int raster from ``rasters.cost.travel_time`` run with all destinations (index of the nearest
    one, −1 = none; pass ``max_minutes`` there to bound the catchment). ``classes``: the suitability class raster
    (uint8, 0 = no data). Cell areas as ``suitability.carrying.zone_class_areas_km2``.
    """
    lib = da if isinstance(allocation, da.Array) else np
    zone = lib.where(allocation < 0, 0, allocation + 1).astype(np.int32)
    areas = zone_class_areas_km2(zone, classes, grid, n_zones=int(n_destinations), n_classes=n_classes)
    top = sorted({int(c) for c in top_classes})
    if not top or any(c < 1 or c > n_classes for c in top):
        raise ConfigError(f"top_classes must be class codes within 1..{n_classes}, got {list(top_classes)!r}")
    return areas[1:, top].sum(axis=1)


# --- travel times -----------------------------------------------------------------------------------------------


@dataclass
class TravelMatrix:
    """Minutes from each source seat to each destination (NaN = unreachable), paths and notes per source."""

    minutes: np.ndarray
    paths: dict[tuple[int, int], list[tuple[int, int]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def travel_matrix(
    friction_min_per_m: Any,
    source_cells: Sequence[tuple[int, int]],
    destination_cells: Sequence[tuple[int, int]],
    *,
    grid: Grid | None = None,
    cell_size_m: float | tuple[float, float] | None = None,
    neighbours: int = 8,
    max_minutes: float | None = None,
    paths: bool = False,
) -> TravelMatrix:
    """Travel-time matrix (S, D) in minutes: one ``rasters.cost.travel_time`` run per source, sampled at the
    destinations (numpy friction: one array run; dask: the tiled solver, one compute per source).

    A source outside the grid or on a barrier cell gets a NaN row and a note (it reaches nothing); a destination
    outside the grid or on a barrier is NaN in every row. ``paths=True`` stores the least-cost path of every
    reachable pair as cells from the source to the destination.
    """
    fr = friction_min_per_m
    shape = tuple(np.shape(fr))
    src = np.asarray(source_cells, dtype=np.int64).reshape(-1, 2)
    dst = np.asarray(destination_cells, dtype=np.int64).reshape(-1, 2)
    if len(src) == 0 or len(dst) == 0:
        raise ConfigError("travel_matrix needs at least one source and one destination cell")
    d_in = (dst[:, 0] >= 0) & (dst[:, 0] < shape[0]) & (dst[:, 1] >= 0) & (dst[:, 1] < shape[1])
    dr, dc = np.where(d_in, dst[:, 0], 0), np.where(d_in, dst[:, 1], 0)
    out = np.full((len(src), len(dst)), np.nan)
    kept: dict[tuple[int, int], list[tuple[int, int]]] = {}
    notes = [""] * len(src)
    for s, (r, c) in enumerate(src):
        if not (0 <= r < shape[0] and 0 <= c < shape[1]):
            notes[s] = f"seat cell ({r}, {c}) lies outside the grid"
            continue
        f_here = float(fr[r, c].compute() if isinstance(fr, da.Array) else fr[r, c])
        if not (f_here < np.inf):
            notes[s] = f"seat cell ({r}, {c}) is a barrier on the friction surface"
            continue
        res = travel_time(fr, [(int(r), int(c))], grid=grid, cell_size_m=cell_size_m, neighbours=neighbours,
                          max_minutes=max_minutes)
        m = res.minutes
        vals = (m.vindex[dr, dc].compute() if isinstance(m, da.Array) else m[dr, dc]).astype(np.float64)
        vals[~d_in] = np.nan
        out[s] = vals
        if not np.isfinite(vals).any():
            notes[s] = "no destination is reachable from the seat"
        if paths:
            for d in np.flatnonzero(np.isfinite(vals)):
                cells = least_cost_path(res.backlink, (int(dr[d]), int(dc[d])))
                kept[s, int(d)] = cells[::-1]
    return TravelMatrix(out, kept, notes)


def flow_lines(flows: pd.DataFrame, matrix: TravelMatrix, grid: Grid, source_names: Sequence[str],
               destination_names: Sequence[str]):
    """Flow lines as a GeoDataFrame in the grid CRS (one LineString per flow along its least-cost path).

    ``matrix`` must come from ``travel_matrix(..., paths=True)`` with sources and destinations in the order of
    ``source_names`` / ``destination_names``. A flow whose path was not stored raises ``SuitabilityError``.
    """
    import geopandas as gpd

    from vectors.paths import path_linestring

    s_pos = {str(v): i for i, v in enumerate(source_names)}
    d_pos = {str(v): i for i, v in enumerate(destination_names)}
    geoms = []
    for s, d in zip(flows["source"].astype(str), flows["destination"].astype(str), strict=True):
        key = (s_pos[s], d_pos[d])
        if key not in matrix.paths:
            raise SuitabilityError(f"flow {s} -> {d} has no stored path (call travel_matrix with paths=True)")
        geoms.append(path_linestring(matrix.paths[key], grid))
    return gpd.GeoDataFrame(flows.reset_index(drop=True), geometry=geoms, crs=grid.crs)


# --- scenarios and demand ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """How many people leave each source: ``share`` of each group (one fraction for all groups, or group ->
    fraction; 0.2 = 20 %), and/or ``numbers`` (source -> persons, replacing the share for that source)."""

    name: str
    share: float | Mapping[str, float] | None = None
    numbers: Mapping[str, float] | None = None


def _groups_table(sources: pd.DataFrame, groups, where: str) -> dict[str, np.ndarray]:
    names = sources["source"].astype(str).tolist()
    pop = pd.to_numeric(sources["population"], errors="coerce").to_numpy(float) \
        if "population" in sources.columns else np.full(len(names), np.nan)
    if not groups:
        return {"all": pop}
    out = {}
    for g, spec in groups.items():
        if isinstance(spec, Mapping):
            unknown = [str(k) for k in spec if str(k) not in names]
            if unknown:
                raise ConfigError(f"{where}: group '{g}' names unknown source(s) {_fmt_names(unknown)}"
                                  f"{did_you_mean(unknown[0], names)}")
            v = np.array([float(spec.get(s, np.nan)) for s in names])
        else:
            f = _num(spec, f"{where}: group '{g}' share of the population")
            if not 0 <= f <= 1:
                raise ConfigError(f"{where}: group '{g}' share of the population must be within 0..1, got {f}")
            v = pop * f
        if (v < 0).any():
            raise InputDataError(f"{where}: group '{g}' has a negative population")
        out[str(g)] = v
    total = sum(out.values())
    over = np.isfinite(pop) & (total > pop * (1 + 1e-9))
    if over.any():
        raise InputDataError(f"{where}: groups add up to more than the population of "
                             f"{_fmt_names(np.asarray(names)[over])}")
    return out


def scenario_demand(sources: pd.DataFrame, scenario: Scenario, groups: Mapping[str, Any] | None = None,
                    *, where: str = "relocation.scenarios") -> pd.DataFrame:
    """Demand (persons) per source for one scenario: Σ_group share_g · population_g, or the given number.

    ``sources``: ``source``, ``population`` (+ any columns, kept). ``groups``: group -> a fraction of each
    source's population, or a mapping source -> persons; none: one group ``all`` = the population.

    Raises ``ConfigError`` for a share outside 0..1 (e.g. 20 for 20 %: write 0.2) or an unknown group/source;
    ``InputDataError`` naming the source(s) whose demand would need a population figure they do not have.
    """
    w = f"{where}.{scenario.name}"
    if "source" not in sources.columns:
        raise ConfigError(f"{w}: the source table needs a 'source' column")
    names = sources["source"].astype(str).tolist()
    table = _groups_table(sources, groups, w)
    shares = scenario.share
    if shares is None and not scenario.numbers:
        raise ConfigError(f"{w}: give a share (0..1) or numbers per source")
    if shares is None:
        shares = 0.0
    if isinstance(shares, Mapping):
        unknown = [str(g) for g in shares if str(g) not in table]
        if unknown:
            raise ConfigError(f"{w}: unknown group '{unknown[0]}'{did_you_mean(unknown[0], table)}")
        share = {g: _num(shares.get(g, 0.0), f"{w}: share of '{g}'") for g in table}
    else:
        share = dict.fromkeys(table, _num(shares, f"{w}: share"))
    for g, f in share.items():
        if f > 1 or f < 0:
            raise ConfigError(f"{w}: share of '{g}' is {f:g}; shares are fractions within 0..1 "
                              f"(100 % = 1; {f:g} would be {100 * f:g} %)")
    numbers = {str(k): v for k, v in (scenario.numbers or {}).items()}
    unknown = [k for k in numbers if k not in names]
    if unknown:
        raise ConfigError(f"{w}: numbers name unknown source '{unknown[0]}'{did_you_mean(unknown[0], names)}")
    out = sources.copy()
    demand = np.zeros(len(names))
    per_group = {g: np.zeros(len(names)) for g in table}
    missing = []
    for i, s in enumerate(names):
        if s in numbers:
            v = _num(numbers[s], f"{w}: number for '{s}'")
            if v < 0:
                raise ConfigError(f"{w}: number for '{s}' must be >= 0, got {v:g}")
            pop_i = sum(table[g][i] for g in table)
            for g in table:  # split the given number like the groups' populations (evenly if unknown)
                frac = table[g][i] / pop_i if np.isfinite(pop_i) and pop_i > 0 else 1.0 / len(table)
                per_group[g][i] = v * frac
            demand[i] = v
            continue
        vals = {g: share[g] * table[g][i] for g in table if share[g] > 0}
        if any(not np.isfinite(v) for v in vals.values()):
            missing.append(s)
            continue
        for g, v in vals.items():
            per_group[g][i] = v
        demand[i] = sum(vals.values())
    if missing:
        raise InputDataError(f"{w}: source(s) {_fmt_names(missing)} have no population figure, so a share of it "
                             "cannot be moved; give a census figure or a number for them")
    out["demand"] = demand
    for g, v in per_group.items():
        out[f"demand_{g}"] = v
    out.attrs["groups"] = list(table)
    return out


# --- the program ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostWeights:
    """Cost per person: α per minute of travel, β per unit of suitability loss (0..1), γ for leaving the
    prefecture, δ per metre of altitude gain. Units are the analyst's (minutes-equivalent with α = 1)."""

    per_minute: float = 1.0
    per_suitability_loss: float = 0.0
    leave_prefecture: float = 0.0
    per_metre_gain: float = 0.0

    def __post_init__(self) -> None:
        for k in ("per_minute", "per_suitability_loss", "leave_prefecture", "per_metre_gain"):
            v = _num(getattr(self, k), f"cost weight {k}")
            if v < 0:
                raise ConfigError(f"cost weight {k} must be >= 0, got {v:g}")


@dataclass
class Allocation:
    """Result of ``allocate``: tables and solver facts (see the module docstring)."""

    flows: pd.DataFrame
    destinations: pd.DataFrame
    constraints: pd.DataFrame
    sources: pd.DataFrame
    objective: float
    status: str
    solver: str
    duals_available: bool
    unplaced_penalty: float
    notes: list[str] = field(default_factory=list)


def _column(df: pd.DataFrame, col: str, n: int, default=np.nan) -> np.ndarray:
    if col in df.columns:
        return pd.to_numeric(df[col], errors="coerce").to_numpy(float)
    return np.full(n, default)


def allocate(
    sources: pd.DataFrame,
    destinations: pd.DataFrame,
    travel_min: np.ndarray,
    *,
    weights: CostWeights | None = None,
    max_share: float = 1.0,
    min_group: float | None = None,
    integer: bool = False,
    unplaced_penalty: float | None = None,
    water_m3_per_person: float | None = None,
    time_limit_s: float = 60.0,
    source_notes: Sequence[str] | None = None,
    where: str = "relocation.allocation",
) -> Allocation:
    """Assign each source's demand to destinations at least cost within capacities (LP, or MILP with min_group).

    Args:
        sources: ``source``, ``demand`` (persons; ``scenario_demand``), optional ``prefecture``,
            ``seat_elevation_m`` and ``demand_<group>`` columns.
        destinations: ``destination_capacity``'s table (``limit_*``, ``zone``, ``capacity``), optional
            ``prefecture``, ``elevation_m``, ``suitability_loss`` (0..1; needed when β > 0).
        travel_min: (S, D) minutes, NaN = unreachable (``travel_matrix``).
        weights: ``CostWeights``; max_share: 0 < share ≤ 1; min_group: persons (MILP); integer: integer x (MILP).
        unplaced_penalty: M per unplaced person (default: see the module docstring).
        water_m3_per_person: converts the water rows' value per person into value per m³.
        source_notes: per-source notes (``TravelMatrix.notes``) carried into the source summary.

    Returns ``Allocation``. Raises ``ConfigError`` for bad parameters or shapes, ``InputDataError`` for negative or
    missing demand or a missing suitability loss, ``SuitabilityError`` if HiGHS fails.
    """
    w = weights or CostWeights()
    for c in ("source", "demand"):
        if c not in sources.columns:
            raise ConfigError(f"{where}: the source table needs a '{c}' column")
    s_names = sources["source"].astype(str).tolist()
    d_names = destinations["destination"].astype(str).tolist()
    S, D = len(s_names), len(d_names)
    T = np.asarray(travel_min, dtype=np.float64)
    if T.shape != (S, D):
        raise ConfigError(f"{where}: travel matrix has shape {T.shape}, expected ({S}, {D}) sources x destinations")
    if (T < 0).any():
        raise InputDataError(f"{where}: travel times must be >= 0 minutes")
    demand = _column(sources, "demand", S)
    bad = ~np.isfinite(demand) | (demand < 0)
    if bad.any():
        raise InputDataError(f"{where}: demand must be a number >= 0 for source(s) "
                             f"{_fmt_names(np.asarray(s_names)[bad])}")
    max_share = _num(max_share, f"{where}: max_share")
    if not 0 < max_share <= 1:
        raise ConfigError(f"{where}: max_share must be within (0, 1], got {max_share:g}")
    if min_group is not None:
        min_group = _num(min_group, f"{where}: min_group")
        if min_group <= 0:
            raise ConfigError(f"{where}: min_group must be > 0 persons, got {min_group:g}")
    use_milp = min_group is not None or bool(integer)

    # Cost per person of each pair.
    s_pref = sources["prefecture"].astype(str).to_numpy() if "prefecture" in sources.columns else None
    d_pref = destinations["prefecture"].astype(str).to_numpy() if "prefecture" in destinations.columns else None
    s_elev = _column(sources, "seat_elevation_m", S)
    d_elev = _column(destinations, "elevation_m", D)
    cost = w.per_minute * T
    if w.per_suitability_loss > 0:
        loss = _column(destinations, "suitability_loss", D)
        if not np.isfinite(loss).all():
            raise InputDataError(f"{where}: a suitability-loss weight needs 'suitability_loss' (0..1) for every "
                                 "destination")
        cost = cost + w.per_suitability_loss * loss[None, :]
    if w.leave_prefecture > 0:
        if s_pref is None or d_pref is None:
            raise ConfigError(f"{where}: leave_prefecture needs a 'prefecture' column in both tables")
        cost = cost + w.leave_prefecture * (s_pref[:, None] != d_pref[None, :])
    if w.per_metre_gain > 0:
        gain = np.maximum(d_elev[None, :] - s_elev[:, None], 0.0)
        if not np.isfinite(gain[np.isfinite(T)]).all():
            raise InputDataError(f"{where}: an altitude-gain weight needs seat_elevation_m and elevation_m")
        cost = cost + w.per_metre_gain * gain
    pairs = np.argwhere(np.isfinite(T))  # row-major: deterministic variable order
    nx = len(pairs)
    c_pair = cost[pairs[:, 0], pairs[:, 1]] if nx else np.zeros(0)
    max_c = float(c_pair.max()) if nx else 0.0
    if unplaced_penalty is None:
        M = (min(S, D) + 2) * max_c + 1.0
    else:
        M = _num(unplaced_penalty, f"{where}: unplaced_penalty")
        if M <= max_c:
            warnings.warn(f"{where}: unplaced_penalty {M:g} is not above the largest placement cost {max_c:g}; "
                          "the solver may leave people unplaced to save cost", UserWarning, stacklevel=2)

    # Variables: x (nx), u (S), then y (nx) binaries when min_group is set.
    ny = nx if min_group is not None else 0
    nv = nx + S + ny
    c = np.concatenate([c_pair, np.full(S, M), np.zeros(ny)])
    ub_x = max_share * demand[pairs[:, 0]] if nx else np.zeros(0)
    lb = np.zeros(nv)
    ub = np.concatenate([ub_x, np.full(S, np.inf), np.ones(ny)])
    xi = np.arange(nx)
    a_eq = sp.coo_matrix((np.ones(nx + S), (np.concatenate([pairs[:, 0], np.arange(S)]),
                                            np.concatenate([xi, nx + np.arange(S)]))), shape=(S, nv)).tocsr()

    # Capacity rows: per destination and non-water limit, then one per water zone.
    limit_cols = [c_ for c_ in destinations.columns if str(c_).startswith("limit_")]
    rows_meta, r_i, r_j, rhs, row_members = [], [], [], [], []
    for col in limit_cols:
        key = str(col)[len("limit_"):]
        vals = _column(destinations, col, D)
        if key == "water":
            zones = destinations["zone"].astype(str).to_numpy()
            for z in dict.fromkeys(zones[np.isfinite(vals)]):
                members = np.flatnonzero(zones == z)
                k = len(rows_meta)
                rows_meta.append(("water", f"zone {z}", z, "+".join(d_names[m] for m in members)))
                row_members.append([int(m) for m in members])
                rhs.append(float(vals[members[0]]))
                sel = np.flatnonzero(np.isin(pairs[:, 1], members))
                r_i.extend([k] * len(sel))
                r_j.extend(sel)
            continue
        for d in np.flatnonzero(np.isfinite(vals)):
            k = len(rows_meta)
            rows_meta.append((key, d_names[d], destinations["zone"].iloc[d] if "zone" in destinations else "",
                              d_names[d]))
            row_members.append([int(d)])
            rhs.append(float(vals[d]))
            sel = np.flatnonzero(pairs[:, 1] == d)
            r_i.extend([k] * len(sel))
            r_j.extend(sel)
    n_cap = len(rows_meta)
    a_cap = sp.coo_matrix((np.ones(len(r_i)), (r_i, r_j)), shape=(n_cap, nv)).tocsr()
    b_cap = np.asarray(rhs, dtype=float)

    notes: list[str] = []
    if use_milp:
        blocks = [a_cap]
        lo = [np.full(n_cap, -np.inf)]
        hi = [b_cap]
        if min_group is not None:
            # min_group·y ≤ x ≤ ub·y: x is 0 (y = 0) or between min_group and its bound (y = 1).
            eye = sp.identity(nx, format="csr")
            blocks.append(sp.hstack([eye, sp.csr_matrix((nx, S)), -sp.diags(ub_x)]).tocsr())
            lo.append(np.full(nx, -np.inf))
            hi.append(np.zeros(nx))
            blocks.append(sp.hstack([-eye, sp.csr_matrix((nx, S)), sp.diags(np.full(nx, min_group))]).tocsr())
            lo.append(np.full(nx, -np.inf))
            hi.append(np.zeros(nx))
            too_small = ub_x < min_group - 1e-9
            if too_small.any():
                notes.append(f"{int(too_small.sum())} source-destination pair(s) cannot take a group of "
                             f"{min_group:g} (max_share x demand is smaller) and are closed")
        cons = [LinearConstraint(sp.vstack(blocks).tocsr(), np.concatenate(lo), np.concatenate(hi)),
                LinearConstraint(a_eq, demand, demand)]
        integrality = np.concatenate([np.full(nx, 1 if integer else 0), np.zeros(S), np.ones(ny)])
        if integer:
            integrality[nx:nx + S] = 1  # unplaced persons are whole too, or demand could not be met exactly
        res = milp(c, constraints=cons, integrality=integrality, bounds=Bounds(lb, ub),
                   options={"time_limit": float(time_limit_s), "disp": False})
        if res.x is None:
            raise SuitabilityError(f"{where}: the MILP solver found no solution ({res.message})")
        status = "optimal" if res.status == 0 else f"stopped: {res.message}"
        solver = "scipy.optimize.milp (HiGHS branch-and-cut)"
        marg_cap = np.full(n_cap, np.nan)
        marg_eq = np.full(S, np.nan)
        notes.append("mixed-integer program: no dual values (re-solve as an LP without min_group/integer for "
                     "prices)")
    else:
        res = linprog(c, A_ub=a_cap if n_cap else None, b_ub=b_cap if n_cap else None, A_eq=a_eq, b_eq=demand,
                      bounds=np.column_stack([lb, ub]), method="highs")
        if res.status != 0:
            raise SuitabilityError(f"{where}: HiGHS did not solve the LP ({res.message})")
        status = "optimal"
        solver = "scipy.optimize.linprog (HiGHS)"
        marg_cap = np.asarray(res.ineqlin.marginals, dtype=float) if n_cap else np.zeros(0)
        marg_eq = np.asarray(res.eqlin.marginals, dtype=float)
    x = np.where(np.abs(res.x[:nx]) < _TOL, 0.0, res.x[:nx])
    u = np.where(np.abs(res.x[nx:nx + S]) < _TOL, 0.0, res.x[nx:nx + S])
    objective = float(res.fun)

    # --- flows
    groups = [str(g)[len("demand_"):] for g in sources.columns if str(g).startswith("demand_")]
    used = np.flatnonzero(x > 0)
    fs, fd = pairs[used, 0], pairs[used, 1]
    pio2_s, pio2_d = inspired_po2_kpa(s_elev[fs]), inspired_po2_kpa(d_elev[fd])
    flows = pd.DataFrame({
        "source": [s_names[i] for i in fs],
        "destination": [d_names[j] for j in fd],
        "people": x[used],
        "travel_min": T[fs, fd],
        "source_elevation_m": s_elev[fs],
        "destination_elevation_m": d_elev[fd],
        "altitude_drop_m": s_elev[fs] - d_elev[fd],
        "source_pio2_kpa": pio2_s,
        "destination_pio2_kpa": pio2_d,
        "pio2_gain_kpa": pio2_d - pio2_s,
        "leaves_prefecture": (s_pref[fs] != d_pref[fd]) if s_pref is not None and d_pref is not None
        else np.full(len(used), False),
        "cost_per_person": c_pair[used],
        "at_max_share": x[used] >= ub_x[used] - _TOL * np.maximum(1.0, ub_x[used]) if max_share < 1
        else np.full(len(used), False),
    })
    for g in groups:
        gd = _column(sources, f"demand_{g}", S, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(demand[fs] > 0, gd[fs] / np.where(demand[fs] > 0, demand[fs], 1), 0.0)
        flows[f"people_{g}"] = flows["people"].to_numpy() * frac

    # --- capacity rows
    load_row = a_cap @ np.concatenate([x, u, np.zeros(ny)]) if n_cap else np.zeros(0)
    slack = b_cap - load_row
    binds = slack <= _TOL * np.maximum(1.0, np.abs(b_cap))
    cons_df = pd.DataFrame({
        "limit": [m[0] for m in rows_meta],
        "constraint": [m[1] for m in rows_meta],
        "zone": [m[2] for m in rows_meta],
        "destinations": [m[3] for m in rows_meta],
        "capacity": b_cap,
        "load": load_row,
        "slack": slack,
        "binds": binds,
        "value_per_unit": -marg_cap + 0.0,  # +0.0 turns -0.0 into 0.0
    })
    if water_m3_per_person is not None:
        q = _num(water_m3_per_person, f"{where}: water_m3_per_person")
        cons_df["value_per_m3"] = np.where(cons_df["limit"] == "water", cons_df["value_per_unit"] / q, np.nan)

    # --- destinations
    load_d = np.bincount(pairs[used, 1], weights=x[used], minlength=D)
    dest = destinations.copy()
    dest["load"] = load_d
    cap = _column(destinations, "capacity", D)
    with np.errstate(invalid="ignore", divide="ignore"):
        dest["load_share_of_capacity"] = np.where(cap > 0, load_d / np.where(cap > 0, cap, 1), np.nan)
    binding_at = [[] for _ in range(D)]
    for k, (lim, *_rest) in enumerate(rows_meta):
        for d in row_members[k]:
            dest.loc[d, f"value_per_unit_{lim}"] = cons_df["value_per_unit"].iloc[k]
            if binds[k]:
                binding_at[d].append(lim)
    dest["binds"] = ["+".join(b) for b in binding_at]

    # --- sources
    placed = demand - u
    travel_w = np.bincount(fs, weights=x[used] * T[fs, fd], minlength=S)
    drop_w = np.bincount(fs, weights=x[used] * (s_elev[fs] - d_elev[fd]), minlength=S)
    reach = np.isfinite(T).sum(axis=1)
    src_notes = list(source_notes) if source_notes is not None else [""] * S
    status_s = []
    for i in range(S):
        if demand[i] == 0:
            status_s.append("no demand in this scenario")
        elif reach[i] == 0:
            status_s.append("unreachable: no route to any destination" + (f" ({src_notes[i]})" if src_notes[i]
                                                                           else ""))
        elif u[i] > 0:
            status_s.append("partly unplaced: capacities bind" if placed[i] > 0 else "unplaced: capacities bind")
        else:
            status_s.append("placed")
    with np.errstate(invalid="ignore", divide="ignore"):
        src = pd.DataFrame({
            "source": s_names,
            "demand": demand,
            "placed": placed,
            "unplaced": u,
            "status": status_s,
            "reachable_destinations": reach,
            "destinations_used": np.bincount(fs, minlength=S),
            "mean_travel_min": np.where(placed > 0, travel_w / np.where(placed > 0, placed, 1), np.nan),
            "mean_altitude_drop_m": np.where(placed > 0, drop_w / np.where(placed > 0, placed, 1), np.nan),
            "marginal_cost_per_person": marg_eq + 0.0,
            "max_share_binds_at": ["+".join(flows.loc[(flows["source"] == s_names[i]) & flows["at_max_share"],
                                                      "destination"]) for i in range(S)],
        })
    if u.sum() > 0:
        bound = sorted({r for r, b in zip(cons_df["constraint"], binds, strict=True) if b})
        notes.append(f"{u.sum():,.6g} persons unplaced; binding capacities: {', '.join(bound) or 'none'}")
    if groups and groups != ["all"]:
        notes.append("groups share the same costs; flows are split among a source's groups in proportion to "
                     "its demand")
    return Allocation(flows, dest, cons_df, src, objective, status, solver, not use_milp, M, notes)


def run_scenarios(
    sources: pd.DataFrame,
    destinations: pd.DataFrame,
    travel_min: np.ndarray,
    scenarios: Sequence[Scenario],
    *,
    groups: Mapping[str, Any] | None = None,
    **allocate_kwargs: Any,
) -> tuple[dict[str, Allocation], pd.DataFrame]:
    """Run ``allocate`` for each scenario and return the results and a comparison table (one row per scenario):
    demand, placed, unplaced, share placed, people-weighted mean travel minutes, altitude drop and PiO₂ gain,
    flows, binding capacities and the objective."""
    names = [s.name for s in scenarios]
    if not names:
        raise ConfigError("relocation.scenarios: give at least one scenario")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"relocation.scenarios: scenario names must be unique, repeated: {', '.join(dup)}")
    results: dict[str, Allocation] = {}
    rows = []
    for sc in scenarios:
        dem = scenario_demand(sources, sc, groups)
        res = allocate(dem, destinations, travel_min, **allocate_kwargs)
        results[sc.name] = res
        f = res.flows
        placed = float(f["people"].sum())
        total = float(dem["demand"].sum())

        def wmean(col: str, f=f, placed=placed) -> float:
            return float((f[col] * f["people"]).sum() / placed) if placed > 0 else float("nan")

        rows.append({
            "scenario": sc.name,
            "demand": total,
            "placed": placed,
            "unplaced": float(res.sources["unplaced"].sum()),
            "share_placed": placed / total if total > 0 else float("nan"),
            "mean_travel_min": wmean("travel_min"),
            "mean_altitude_drop_m": wmean("altitude_drop_m"),
            "mean_pio2_gain_kpa": wmean("pio2_gain_kpa"),
            "flows": len(f),
            "binding": "; ".join(res.constraints.loc[res.constraints["binds"], "constraint"]
                                 + " (" + res.constraints.loc[res.constraints["binds"], "limit"] + ")"),
            "objective": res.objective,
            "solver": res.solver,
        })
    return results, pd.DataFrame(rows)
