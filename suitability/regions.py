"""Locate N new regions (compact patches of good land) on a suitability surface, with size and spacing rules.

ArcGIS Pro's *Locate Regions* does this for at most 30 regions, without telling how good the answer is. Here
N is unbounded (memory grows with N × region window, not with the grid) and the result is a table in the same
format as the candidate-town table (``suitability.zonal.zonal_stats`` columns), so new regions and existing
towns can be ranked side by side with ``suitability.sites.rank``.

Algorithm (a seeded, deterministic **heuristic**; it does not prove optimality)
------------------------------------------------------------------------------
1. **Coarse level.** The suitability (NaN = unusable) is averaged over k × k tiles on the dask grid, chunk by
   chunk (``k ≈ √(target cells) / 2`` unless given; a tile counts when at least half its cells are usable), then
   smoothed over 3 × 3 tiles (≈ 1.5 region widths), so each tile scores a region-sized neighbourhood. Memory:
   (height × width) / k² numbers.
2. **Seeds.** Tiles are ranked by that score, best first; exact ties are broken by a SplitMix64 hash of the
   tile's index and ``seed`` (the only use of the seed, so the answer is reproducible and the seed only matters
   for ties).
3. **Greedy selection with spacing.** Walking down the ranking, a tile becomes a seed when it keeps
   ``min_distance_km`` from every seed taken so far, lies within ``max_distance_km`` of at least one of them (if
   set; not for the first), and is at least ``avoid_km`` from every ``avoid`` town. Towns in ``grow_from`` are
   seeds first, in their given order. Greedy selection maximises the seed score one region at a time: it is the
   classic greedy heuristic for a maximum-weight set of points with minimum spacing (a packing problem that is
   NP-hard in general); it can miss a better pair of regions that a worse first choice would have allowed.
4. **Region growing on the full grid**, in a window of radius ``2 × r_eq + 2`` cells around the seed's best cell
   (r_eq = radius of a disc of the target area): best-first growth over 4-neighbours with a priority queue keyed
   on ``suitability − compactness × distance_to_seed / r_eq`` (distance in metres), skipping unusable cells,
   cells below ``min_suitability``, cells of earlier regions and cells within ``avoid_km`` of an ``avoid`` town,
   until the region reaches the target area ``clamp(total_area_km2 / N, min, max)`` (``max`` without a total).
   A region that cannot reach ``min`` km² is dropped and the next seed tried. Ties pop in insertion order.
5. **Polygons** from the region masks (``rasterio.features.shapes``, 4-connected, so one polygon per region),
   with ``zonal_stats`` of the suitability (and any further ``layers``/``classes``) plus ``polsby_popper``
   (4πA/P², 1 for a disc) and ``nearest_region_km`` (centroid to centroid).

Distances between regions are measured between seeds (their first cell); they are checked again between the
final centroids and reported. Total area is reached approximately: growth stops at the first cell that reaches
the target, so a region exceeds it by less than one cell.

How to call from the pipeline
-----------------------------
::

    suit = rasters.io.read(written_suitability_tif, grid)      # cheap to slice: windows are read per region
    regions = locate_regions(suit, grid, 40, region_area_km2=(2, 8), total_area_km2=200, min_distance_km=10,
                             compactness=0.5, avoid=county_seats, avoid_km=5, seed=cfg.seed,
                             layers={"slope_score": s1}, classes=suit_classes, class_names=names)
    both = pd.concat([candidates_table, regions]); sites.rank(both, columns)

Pass a suitability raster that is cheap to slice (a written GeoTIFF read lazily, or a persisted array): each
region reads one window of it, and a lazy overlay graph would be recomputed per window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import dask.array as da
import geopandas as gpd
import numpy as np
import rasterio.features
import shapely
from numba import njit
from rasterio.windows import Window
from scipy import ndimage

from rasters.cost import _heap_pop, _heap_push
from rasters.errors import ConfigError
from rasters.grid import Grid
from suitability.carrying import row_cell_areas_m2
from suitability.objective_weights import _seed_key, _splitmix64
from suitability.zonal import zonal_stats

__all__ = ["locate_regions"]


# --- coarse level -------------------------------------------------------------------------------------------------


def _coarse(suit: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per k x k tile: sum of usable suitability and count of usable cells (dask, chunk by chunk)."""
    a = suit if isinstance(suit, da.Array) else da.from_array(np.asarray(suit), chunks=1024)
    a = a.astype(np.float64)
    h, w = a.shape
    ph, pw = (-h) % k, (-w) % k
    if ph or pw:
        a = da.pad(a, ((0, ph), (0, pw)), mode="constant", constant_values=np.nan)
    step = max(k, (max(a.chunksize) // k) * k)
    a = a.rechunk((step, step))
    ok = da.isfinite(a)
    total = da.coarsen(np.sum, da.where(ok, a, 0.0), {0: k, 1: k})
    count = da.coarsen(np.sum, ok.astype(np.int32), {0: k, 1: k})
    return da.compute(total, count)


# --- growth kernel --------------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _grow(suit, blocked, sr, sc, start_usable, row_area, dx, dy, target_m2, compactness, r_eq_m, min_suit):
    """Best-first 4-neighbour growth from (sr, sc); returns (mask uint8, area m², sum of suitability)."""
    h, w = suit.shape
    mask = np.zeros((h, w), np.uint8)
    seen = np.zeros((h, w), np.uint8)
    hp = np.empty(256, np.float64)
    n = 0
    area = 0.0
    total = 0.0
    seen[sr, sc] = 1
    if start_usable:
        hp, n = _heap_push(hp, n, -1e300, float(sr * w + sc))  # the seed cell first
    else:
        # a town cell that is itself unusable (built up): grow from its neighbours
        for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            r, c = sr + dr, sc + dc
            if 0 <= r < h and 0 <= c < w and seen[r, c] == 0 and blocked[r, c] == 0:
                v = suit[r, c]
                seen[r, c] = 1
                if v == v and v >= min_suit:
                    d = math.sqrt(((r - sr) * dy) ** 2 + ((c - sc) * dx) ** 2)
                    hp, n = _heap_push(hp, n, -(v - compactness * d / r_eq_m), float(r * w + c))
    while n > 0 and area < target_m2:
        cell = int(hp[1])
        n = _heap_pop(hp, n)
        r, c = cell // w, cell % w
        mask[r, c] = 1
        area += row_area[r]
        total += suit[r, c]
        for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            rr, cc = r + dr, c + dc
            if 0 <= rr < h and 0 <= cc < w and seen[rr, cc] == 0 and blocked[rr, cc] == 0:
                seen[rr, cc] = 1
                v = suit[rr, cc]
                if v == v and v >= min_suit:
                    d = math.sqrt(((rr - sr) * dy) ** 2 + ((cc - sc) * dx) ** 2)
                    hp, n = _heap_push(hp, n, -(v - compactness * d / r_eq_m), float(rr * w + cc))
    return mask, area, total


# --- helpers ------------------------------------------------------------------------------------------------------


def _check_number(name: str, value: Any, *, lo: float = 0.0, allow_none: bool = False, strict: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating) \
            or not math.isfinite(value) or value < lo or (strict and value <= lo):
        raise ConfigError(f"locate_regions: {name} must be a number {'>' if strict else '>='} {lo:g}, got {value!r}")
    return float(value)


def _points_xy(gdf: gpd.GeoDataFrame | None, grid: Grid) -> np.ndarray:
    if gdf is None or len(gdf) == 0:
        return np.zeros((0, 2))
    pts = gdf.to_crs(grid.crs)
    if not set(pts.geometry.geom_type.dropna()) <= {"Point"}:
        raise ConfigError("locate_regions: avoid / grow_from towns must be points")
    return np.column_stack([pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy()])


def _read_window(suit: Any, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    block = suit[r0:r1, c0:c1]
    block = block.compute() if isinstance(block, da.Array) else np.asarray(block)
    return np.asarray(block, dtype=np.float64)


def locate_regions(
    suitability: Any,
    grid: Grid,
    n_regions: int,
    *,
    region_area_km2: tuple[float, float],
    total_area_km2: float | None = None,
    min_distance_km: float = 0.0,
    max_distance_km: float | None = None,
    compactness: float = 0.5,
    avoid: gpd.GeoDataFrame | None = None,
    avoid_km: float = 0.0,
    grow_from: gpd.GeoDataFrame | None = None,
    min_suitability: float | None = None,
    seed: int = 0,
    coarse_factor: int | None = None,
    name: str = "suitability",
    layers: Mapping[str, Any] | None = None,
    classes: Any = None,
    class_names: Mapping[int, str] | None = None,
    n_classes: int | None = None,
) -> gpd.GeoDataFrame:
    """Locate up to ``n_regions`` regions maximising ``suitability`` under the rules of the module docstring.

    Args:
        suitability: float raster (numpy or dask, grid shape), more is better, NaN = unusable (exclusions).
        grid: the analysis grid (projected; distances in km use its linear unit).
        n_regions: how many regions to find (any number >= 1; fewer come back if the land or the rules run out).
        region_area_km2: (min, max) area of one region.
        total_area_km2: total area to allocate; the target per region is clamp(total / n, min, max).
        min_distance_km, max_distance_km: spacing between region seeds (max: to the nearest other region).
        compactness: >= 0, weight of the distance penalty in the growth priority (0 = follow suitability only).
        avoid, avoid_km: existing towns (points) that new regions keep away from.
        grow_from: towns (points) to grow regions from first (a ``name`` column, if any, is reported).
        min_suitability: cells below it are never added.
        seed: breaks exact ties between seeds (module docstring).
        coarse_factor: tile size k of the coarse level (default √(target cells) / 2).
        name, layers, classes, class_names, n_classes: statistics columns, as ``zonal_stats`` (the suitability
            is reported under ``name``).

    Returns a GeoDataFrame (grid CRS), one row per region in the order found, with ``region_id``, ``origin``
    ("seed" or "grow_from:<town>"), ``seed_x``/``seed_y``, ``cells``, ``polsby_popper``, ``nearest_region_km``,
    ``locate_rule`` and the ``zonal_stats`` columns (``area_km2``, ``{name}_mean`` ...).
    """
    if isinstance(n_regions, bool) or not isinstance(n_regions, int | np.integer) or n_regions < 1:
        raise ConfigError(f"locate_regions: n_regions must be an integer >= 1, got {n_regions!r}")
    if tuple(np.shape(suitability)) != grid.shape:
        raise ConfigError(f"locate_regions: suitability has shape {tuple(np.shape(suitability))}, the grid "
                          f"{grid.shape}")
    if grid.is_geographic:
        raise ConfigError("locate_regions needs a projected grid (distances and areas in metres)")
    if not isinstance(region_area_km2, tuple | list) or len(region_area_km2) != 2:
        raise ConfigError(f"locate_regions: region_area_km2 must be (min, max), got {region_area_km2!r}")
    a_min = _check_number("region_area_km2 min", region_area_km2[0])
    a_max = _check_number("region_area_km2 max", region_area_km2[1], strict=True)
    if a_max < a_min:
        raise ConfigError(f"locate_regions: region_area_km2 min {a_min:g} exceeds max {a_max:g}")
    total = _check_number("total_area_km2", total_area_km2, allow_none=True, strict=True)
    dmin = _check_number("min_distance_km", min_distance_km)
    dmax = _check_number("max_distance_km", max_distance_km, allow_none=True, strict=True)
    if dmax is not None and dmax < dmin:
        raise ConfigError(f"locate_regions: max_distance_km {dmax:g} is below min_distance_km {dmin:g}")
    lam = _check_number("compactness", compactness)
    avoid_m = _check_number("avoid_km", avoid_km) * 1000.0
    min_s = -np.inf if min_suitability is None else _check_number("min_suitability", min_suitability, lo=-np.inf)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ConfigError(f"locate_regions: seed must be an integer, got {seed!r}")

    unit = grid.linear_unit_m
    dx, dy = grid.res[0] * unit, grid.res[1] * unit
    cell_m2 = dx * dy
    target_km2 = min(max(total / n_regions, a_min), a_max) if total is not None else a_max
    target_cells = max(1.0, target_km2 * 1e6 / cell_m2)
    k = int(coarse_factor) if coarse_factor is not None else max(1, int(round(math.sqrt(target_cells) / 2)))
    if k < 1:
        raise ConfigError(f"locate_regions: coarse_factor must be >= 1, got {coarse_factor!r}")
    r_eq_m = math.sqrt(target_km2 * 1e6 / math.pi)
    radius = int(math.ceil(2 * r_eq_m / min(dx, dy))) + 2 + k
    row_area = row_cell_areas_m2(grid)

    # 1-2: coarse scores and the seed order
    tsum, tcount = _coarse(suitability, k)
    kern = np.ones((3, 3))
    ssum = ndimage.convolve(tsum, kern, mode="constant", cval=0.0)
    scount = ndimage.convolve(tcount.astype(np.float64), kern, mode="constant", cval=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where((tcount >= 0.5 * k * k) & (scount > 0), ssum / scount, np.nan)
    ti, tj = np.nonzero(np.isfinite(score))
    flat = (ti * score.shape[1] + tj).astype(np.uint64)
    tie = _splitmix64(flat ^ _seed_key(int(seed)))
    order = np.lexsort((tie, -score[ti, tj]))
    ti, tj = ti[order], tj[order]

    avoid_xy = _points_xy(avoid, grid)
    grow_xy = _points_xy(grow_from, grid)
    grow_names = (grow_from["name"].astype(str).tolist() if grow_from is not None and "name" in grow_from.columns
                  else [str(i) for i in range(len(grow_xy))])
    t = grid.transform

    seeds_xy: list[tuple[float, float]] = []
    regions: list[dict] = []
    taken_area = 0.0

    def spacing_ok(x: float, y: float, check_min: bool = True) -> bool:
        if not seeds_xy:
            return True
        s = np.asarray(seeds_xy)
        d = np.hypot(s[:, 0] - x, s[:, 1] - y) * unit / 1000.0
        if check_min and d.min() < dmin:
            return False
        return not (dmax is not None and d.min() > dmax)

    def avoid_ok(x: float, y: float) -> bool:
        return avoid_xy.size == 0 or np.hypot(avoid_xy[:, 0] - x, avoid_xy[:, 1] - y).min() * unit >= avoid_m

    def grow_at(row: int, col: int, force_start: bool) -> dict | None:
        r0, r1 = max(0, row - radius), min(grid.height, row + radius + 1)
        c0, c1 = max(0, col - radius), min(grid.width, col + radius + 1)
        win = _read_window(suitability, r0, r1, c0, c1)
        blocked = np.zeros(win.shape, np.uint8)
        for reg in regions:  # cells of earlier regions are taken
            q0, q1, p0, p1 = reg["window"]
            a0, a1, b0, b1 = max(r0, q0), min(r1, q1), max(c0, p0), min(c1, p1)
            if a0 < a1 and b0 < b1:
                blocked[a0 - r0:a1 - r0, b0 - c0:b1 - c0] |= reg["mask"][a0 - q0:a1 - q0, b0 - p0:b1 - p0]
        if avoid_xy.size and avoid_m > 0:
            xs, ys = grid.xy_of_cells(np.arange(r0, r1)[:, None], np.arange(c0, c1)[None, :])
            near = np.flatnonzero(np.hypot(avoid_xy[:, 0] - xs.mean(), avoid_xy[:, 1] - ys.mean()) * unit
                                  <= avoid_m + radius * max(dx, dy) * 1.5)
            for p in near:
                blocked |= (np.hypot(xs - avoid_xy[p, 0], ys - avoid_xy[p, 1]) * unit < avoid_m).astype(np.uint8)
        sr, sc = row - r0, col - c0
        if blocked[sr, sc] and not force_start:
            return None
        start_usable = bool(np.isfinite(win[sr, sc]) and win[sr, sc] >= min_s and not blocked[sr, sc])
        if not start_usable and not force_start:
            return None
        mask, area_m2, _ = _grow(win, blocked, sr, sc, start_usable, row_area[r0:r1], dx, dy,
                                 target_km2 * 1e6, lam, r_eq_m, min_s)
        if area_m2 / 1e6 < a_min or not mask.any():
            return None
        return {"window": (r0, r1, c0, c1), "mask": mask, "area_km2": area_m2 / 1e6}

    def done() -> bool:
        return len(regions) >= n_regions or (total is not None and taken_area >= total - 1e-9)

    # 3-4: towns to grow from, then greedy seeds
    for (x, y), town in zip(grow_xy, grow_names, strict=True):
        if done():
            break
        row, col = grid.index_of_xy(np.array([x]), np.array([y]))
        row, col = int(row[0]), int(col[0])
        if not (0 <= row < grid.height and 0 <= col < grid.width):
            continue
        reg = grow_at(row, col, force_start=True)
        if reg is not None:
            reg.update(origin=f"grow_from:{town}", seed_xy=(x, y))
            regions.append(reg)
            seeds_xy.append((x, y))
            taken_area += reg["area_km2"]
    for a, b in zip(ti, tj, strict=True):
        if done():
            break
        # the best usable cell of the tile is the seed cell
        r0, c0 = int(a) * k, int(b) * k
        tile = _read_window(suitability, r0, min(r0 + k, grid.height), c0, min(c0 + k, grid.width))
        if not np.isfinite(tile).any():
            continue
        idx = int(np.nanargmax(tile))
        row, col = r0 + idx // tile.shape[1], c0 + idx % tile.shape[1]
        x, y = t.c + (col + 0.5) * t.a, t.f + (row + 0.5) * t.e
        if not spacing_ok(x, y) or not avoid_ok(x, y):
            continue
        reg = grow_at(row, col, force_start=False)
        if reg is None:
            continue
        reg.update(origin="seed", seed_xy=(x, y))
        regions.append(reg)
        seeds_xy.append((x, y))
        taken_area += reg["area_km2"]

    # 5: polygons and statistics
    geoms, rows = [], []
    for i, reg in enumerate(regions):
        r0, r1, c0, c1 = reg["window"]
        wt = grid.window_transform(Window(c0, r0, c1 - c0, r1 - r0))
        polys = [shapely.geometry.shape(g) for g, v in rasterio.features.shapes(reg["mask"], mask=reg["mask"] > 0,
                                                                               transform=wt, connectivity=4)
                 if v == 1]
        geom = shapely.union_all(polys) if len(polys) > 1 else polys[0]
        geoms.append(geom)
        rows.append({"region_id": i + 1, "origin": reg["origin"], "seed_x": reg["seed_xy"][0],
                     "seed_y": reg["seed_xy"][1], "cells": int(reg["mask"].sum())})
    frame = gpd.GeoDataFrame(rows, geometry=geoms, crs=grid.crs) if rows else gpd.GeoDataFrame(
        {"region_id": [], "origin": [], "seed_x": [], "seed_y": [], "cells": []}, geometry=[], crs=grid.crs)
    if len(frame):
        area = shapely.area(frame.geometry.values)
        perim = shapely.length(frame.geometry.values)
        frame["polsby_popper"] = 4 * math.pi * area / perim**2
        cent = shapely.get_coordinates(shapely.centroid(frame.geometry.values))
        if len(frame) > 1:
            d = np.hypot(cent[:, None, 0] - cent[None, :, 0], cent[:, None, 1] - cent[None, :, 1]) * unit / 1000.0
            np.fill_diagonal(d, np.inf)
            frame["nearest_region_km"] = d.min(axis=1)
        else:
            frame["nearest_region_km"] = np.nan
    else:
        frame["polsby_popper"] = []
        frame["nearest_region_km"] = []
    frame["locate_rule"] = (f"greedy seeds on {k}x{k}-cell tiles (3x3 smoothed), spacing {dmin:g}"
                            f"{'' if dmax is None else f'..{dmax:g}'} km between seeds, best-first growth to "
                            f"{target_km2:g} km2 (min {a_min:g}), compactness {lam:g}, seed {seed}; heuristic")
    stats_layers = {name: suitability, **dict(layers or {})}
    table = zonal_stats(frame, stats_layers, grid, classes=classes, class_names=class_names, n_classes=n_classes,
                        quantiles="exact")
    table.attrs["requested_regions"] = int(n_regions)
    table.attrs["found_regions"] = len(table)
    return table
