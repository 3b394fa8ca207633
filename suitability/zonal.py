"""Zonal statistics of value and class rasters over candidate zones, exact for cells the zones cover in part.

Zones are polygons (or points with a catchment radius, made into circles by ``zones_from_points``). They may
overlap (the catchments of nearby towns do) and need not cover the grid: zones are **not** a partition, every
zone is measured on its own.

Coverage rule (exact area weighting)
------------------------------------
Every (zone, cell) pair gets the **exact** fraction ``f`` of the cell's area that lies inside the polygon
(holes and multi-part polygons included), computed by Green's theorem the way anti-aliasing font rasterisers
(e.g. font-rs) do: each polygon edge is split at the integer cell lines it crosses, each piece adds the exact
area between itself and the bottom of its cell to that cell, and a running sum down each column carries
"below this edge" to the cells underneath. The result equals ``area(polygon ∩ cell) / area(cell)`` to floating-
point rounding (~1e-12; tested against shapely intersections) for interior, boundary and sliver cells alike,
in O(vertices + cells crossed by edges + cells of the zone's bounding box) per zone and chunk, in numba.
Fractions below ``1e-9`` (less than 0.01 m² of a 90 m cell) are dropped as rounding noise. On a geographic grid
the fraction is taken in degree space and multiplied by the ellipsoidal area of the cell's row
(``suitability.carrying.row_cell_areas_m2``), which neglects the change of scale inside one cell.

A cell's weight in a zone is ``w = f · cell area (m²)``. Per zone and value layer:

* ``{layer}_mean``: ``Σ w·v / Σ w`` over cells where the layer is not NaN (area-weighted mean);
* ``{layer}_median``, ``{layer}_p{P}``: area-weighted quantiles (see below);
* ``{layer}_min`` / ``{layer}_max``: over the cells the zone touches (f > 1e-9) with a value;
* ``{layer}_excluded_share``: ``Σ w (v is NaN) / Σ w``, the share of the zone's on-grid area that is no data
  (for a suitability layer: excluded land);
* ``area_km2``: ``Σ w`` / 10⁶, the zone's area on the grid (less than the polygon's where it leaves the grid);
* ``class_{k}_km2`` (or ``{name}_km2`` with ``class_names``): ``Σ w`` over cells of class k of the class raster
  (uint8, 0 = no data, not reported), in km²;
* ``zonal_rule``: a text column stating the coverage and quantile rules, so a published table says how it was
  computed.

Quantiles (``quantiles=``)
--------------------------
* ``"histogram"`` (default; memory independent of the grid): per zone and layer a histogram of ``bins`` equal
  bins over ``ranges[layer] = (lo, hi)`` accumulates the weights (values outside are counted in the end bins).
  The p-quantile is the inverse of the area-weighted cumulative distribution with each bin's weight spread
  uniformly over the part of the bin between the zone's min and max value. Error ≤ one bin width
  ``(hi − lo) / bins`` (exact when a zone holds a single value). Without ``ranges`` the layer's min and max are
  computed first (one extra pass). Memory: ``n_zones × n_layers × bins × 8`` bytes.
* ``"exact"``: the (value, weight) pairs of every zone are gathered and the quantile is the weighted inverted
  CDF ``min{v : Σ_{v_i ≤ v} w_i ≥ p · Σ w_i}`` (numpy's ``quantile(..., weights=w, method="inverted_cdf")``).
  Memory grows with the number of covered cells: use it for a few dozen candidate catchments, not 10,000 zones.

Chunking: each dask block is one task that receives its window's zones as coordinate arrays (plain numpy,
picklable) and returns per-zone partial sums for the zones it meets; partials are merged by a tree of small
tasks, so a zone spanning chunks is merged and memory stays at one block plus the per-zone accumulators. Sums
run in float64; on a different chunking the results agree to ~1e-12 relative (summation order), not bit for bit.

How to call from the pipeline
-----------------------------
::

    zones = zones_from_points(towns_gdf, 10_000, grid)                    # 10 km catchments, or polygons
    table = zonal_stats(zones, {"suitability": suit, "slope_score": s1, "water_score": s2}, grid,
                        classes=suit_classes, class_names={4: "high", 5: "very_high"},
                        ranges={"suitability": (0, 1), "slope_score": (0, 1), "water_score": (0, 1)},
                        lazy=True)                                        # dask.delayed -> GeoDataFrame
    table = dask.compute(table, ...)[0]                                    # inside the one compute of the run
    table["travel_min_xining"] = point_values({"t": travel}, towns_gdf, grid)["t"]   # at the town itself
    ranked = sites.rank(table, {"suitability_mean": {"weight": 3}, ...})
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import dask
import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numba import njit
from pyproj import CRS, Transformer

from rasters.errors import ConfigError, InputDataError, did_you_mean
from rasters.grid import Grid
from suitability.carrying import row_cell_areas_m2

__all__ = ["QUANTILE_METHODS", "coverage_fractions", "isochrone_zones", "point_values", "zonal_stats",
           "zones_from_points"]

QUANTILE_METHODS = ("histogram", "exact")
MIN_FRACTION = 1e-9
_MERGE_FAN_IN = 8


# --- zones -------------------------------------------------------------------------------------------------------


def zones_from_points(points: gpd.GeoDataFrame, radius_m: float | str, grid: Grid, *,
                      quad_segs: int = 64) -> gpd.GeoDataFrame:
    """Circular catchments of ``radius_m`` metres (a number, or the name of a numeric column) around points.

    Returns the points' attributes with the geometry replaced by the circle in the grid CRS (a regular polygon
    of ``4 * quad_segs`` sides; with 64 its area is 0.004 % below the circle's). On a projected grid the buffer is
    taken in the grid CRS (a true circle in an equidistant neighbourhood, and near-true in the Qinghai Albers);
    on a geographic grid each circle is built in an azimuthal equidistant projection centred on its point.
    """
    if points.crs is None:
        raise InputDataError("zones_from_points: the points have no CRS")
    geom_types = set(points.geometry.geom_type.dropna())
    if not geom_types <= {"Point"}:
        raise ConfigError(f"zones_from_points needs point features, got {sorted(geom_types)}")
    if isinstance(radius_m, str):
        if radius_m not in points.columns:
            raise ConfigError(f"radius_m: no column '{radius_m}' in the points{did_you_mean(radius_m, points.columns)}")
        radii = points[radius_m].to_numpy(dtype=float)
    else:
        radii = np.full(len(points), float(radius_m))
    if not np.all(np.isfinite(radii) & (radii > 0)):
        raise ConfigError(f"radius_m must be > 0 metres for every point, got {radii[~(radii > 0)][:3].tolist()}")
    pts = points.to_crs(grid.crs)
    if not grid.is_geographic:
        circles = shapely.buffer(pts.geometry.values, radii / grid.linear_unit_m, quad_segs=quad_segs)
    else:
        circles = []
        for p, r in zip(pts.geometry.values, radii, strict=True):
            aeqd = CRS.from_proj4(f"+proj=aeqd +lat_0={p.y} +lon_0={p.x} +ellps=WGS84 +units=m")
            back = Transformer.from_crs(aeqd, grid.pyproj_crs, always_xy=True)
            circle = shapely.Point(0, 0).buffer(r, quad_segs=quad_segs)
            circles.append(shapely.transform(circle, lambda xy, t=back: np.column_stack(t.transform(xy[:, 0],
                                                                                                  xy[:, 1]))))
        circles = np.asarray(circles, dtype=object)
    out = pts.copy()
    out["catchment_radius_m"] = radii
    return out.set_geometry(gpd.GeoSeries(circles, index=pts.index, crs=grid.crs))


def isochrone_zones(points: gpd.GeoDataFrame, friction_min_per_m: Any, grid: Grid, minutes: float | str, *,
                    neighbours: int = 8) -> gpd.GeoDataFrame:
    """Travel-time catchments: per point, the union of the cells reachable within ``minutes`` (a number or a
    numeric column) over ``friction_min_per_m`` (``rasters.cost.travel_time``, Dijkstra from the point's cell,
    stopped at the limit), as a polygon of whole cells (so its coverage fractions are 0 or 1).

    A dask friction raster is computed once, whole (the search is global); one Dijkstra run per point, each
    stopping at its limit. A point off the grid or on a barrier gets an empty geometry (NaN statistics)."""
    import rasterio.features

    from rasters.cost import travel_time

    if points.crs is None:
        raise InputDataError("isochrone_zones: the points have no CRS")
    pts = points.to_crs(grid.crs)
    if isinstance(minutes, str):
        if minutes not in pts.columns:
            raise ConfigError(f"minutes: no column '{minutes}' in the points{did_you_mean(minutes, pts.columns)}")
        limits = pts[minutes].to_numpy(dtype=float)
    else:
        limits = np.full(len(pts), float(minutes))
    if not np.all(np.isfinite(limits) & (limits > 0)):
        raise ConfigError("isochrone minutes must be > 0 for every point")
    fric = friction_min_per_m.compute() if isinstance(friction_min_per_m, da.Array) else np.asarray(
        friction_min_per_m)
    rows, cols = grid.index_of_xy(pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy())
    geoms = []
    for r, c, limit in zip(rows, cols, limits, strict=True):
        if not (0 <= r < grid.height and 0 <= c < grid.width) or not np.isfinite(fric[r, c]):
            geoms.append(shapely.Polygon())
            continue
        res = travel_time(fric, [(int(r), int(c))], grid=grid, neighbours=neighbours, max_minutes=float(limit))
        mask = np.isfinite(res.minutes).astype(np.uint8)
        shapes = [shapely.geometry.shape(g) for g, v in rasterio.features.shapes(mask, mask=mask > 0,
                                                                                transform=grid.transform) if v == 1]
        geoms.append(shapely.union_all(shapes))
    out = pts.copy()
    out["isochrone_min"] = limits
    return out.set_geometry(gpd.GeoSeries(geoms, index=pts.index, crs=grid.crs))


def _polygon_arrays(geoms: np.ndarray, grid: Grid):
    """Flatten polygons to numba-friendly arrays in global pixel coordinates (x = column, y = row).

    Returns coords (P, 2), ring_start (R + 1), ring_role (R; +1 exterior, -1 hole), zone_ring_start (Z + 1)."""
    t = grid.transform
    parts, part_zone = shapely.get_parts(geoms, return_index=True)
    dims = shapely.get_dimensions(parts)
    if np.any(dims != 2):
        raise ConfigError("zonal statistics need polygon zones; give points a radius with zones_from_points")
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    # get_rings lists each polygon's exterior first, then its holes.
    first = np.r_[True, ring_part[1:] != ring_part[:-1]]
    role = np.where(first, 1, -1).astype(np.int8)
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    px = np.column_stack(((coords[:, 0] - t.c) / t.a, (coords[:, 1] - t.f) / t.e))
    ring_start = np.searchsorted(ring_of, np.arange(len(rings) + 1)).astype(np.int64)
    ring_zone = part_zone[ring_part]
    zone_ring_start = np.searchsorted(ring_zone, np.arange(len(geoms) + 1)).astype(np.int64)
    return np.ascontiguousarray(px), ring_start, role, zone_ring_start


# --- the coverage kernel ------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True, inline="always")
def _edge(xa0, ya0, xb0, yb0, mult, width, height, local, carry):
    """Add one edge's exact area contributions (in cell units) to ``local`` and ``carry`` (see module doc)."""
    if xa0 == xb0:
        return
    if xa0 < xb0:
        d = mult
        xa, ya, xb, yb = xa0, ya0, xb0, yb0
    else:
        d = -mult
        xa, ya, xb, yb = xb0, yb0, xa0, ya0
    if xb <= 0.0 or xa >= width:
        return
    slope = (yb - ya) / (xb - xa)
    x, y = xa, ya
    if x < 0.0:
        y = ya + (0.0 - xa) * slope
        x = 0.0
    xe, ye = xb, yb
    if xe > width:
        ye = ya + (width - xa) * slope
        xe = float(width)
    while x < xe:
        xn = math.floor(x) + 1.0
        if xn >= xe:
            xn = xe
            yn = ye
        else:
            yn = ya + (xn - xa) * slope
        # the next horizontal cell line the edge crosses inside 0..height
        if slope > 0.0:
            ny = math.floor(y) + 1.0
            if ny < 0.0:
                ny = 0.0
            if ny <= height:
                xc = x + (ny - y) / slope
                if xc < xn:
                    xn, yn = xc, ny
        elif slope < 0.0:
            ny = math.ceil(y) - 1.0
            if ny > height:
                ny = float(height)
            if ny >= 0.0:
                xc = x + (ny - y) / slope
                if xc < xn:
                    xn, yn = xc, ny
        w = xn - x
        if w > 0.0:
            c = int(math.floor((x + xn) * 0.5))
            if c >= width:
                c = width - 1
            ym = (y + yn) * 0.5
            if ym < 0.0:
                carry[0, c] += d * w
            elif ym < height:
                k = int(math.floor(ym))
                local[k, c] += d * w * (k + 1.0 - ym)
                carry[k + 1, c] += d * w
        x, y = xn, yn


@njit(cache=True, nogil=True)
def _zone_coverage(coords, ring_start, ring_role, r_lo, r_hi, ox, oy, bw, bh, local, carry):
    """Coverage of one zone's rings in the box [ox, ox + bw) x [oy, oy + bh) (pixel coordinates)."""
    for r in range(bh + 1):
        for c in range(bw):
            local[r, c] = 0.0
            carry[r, c] = 0.0
    for ring in range(r_lo, r_hi):
        s, e = ring_start[ring], ring_start[ring + 1]
        area2 = 0.0
        for i in range(s, e - 1):
            area2 += (coords[i, 0] - ox) * (coords[i + 1, 1] - oy) - (coords[i + 1, 0] - ox) * (coords[i, 1] - oy)
        if area2 == 0.0:
            continue
        mult = float(ring_role[ring]) if area2 > 0.0 else -float(ring_role[ring])
        for i in range(s, e - 1):
            _edge(coords[i, 0] - ox, coords[i, 1] - oy, coords[i + 1, 0] - ox, coords[i + 1, 1] - oy,
                  mult, bw, bh, local, carry)


@njit(cache=True, nogil=True)
def _zone_box(coords, ring_start, r_lo, r_hi, h, w):
    """The zone's bounding box in cells, clipped to a (h, w) block: (row0, row1, col0, col1)."""
    s, e = ring_start[r_lo], ring_start[r_hi]
    xmin, xmax, ymin, ymax = np.inf, -np.inf, np.inf, -np.inf
    for i in range(s, e):
        xmin = min(xmin, coords[i, 0])
        xmax = max(xmax, coords[i, 0])
        ymin = min(ymin, coords[i, 1])
        ymax = max(ymax, coords[i, 1])
    r0 = max(0, int(math.floor(ymin)))
    r1 = min(h, int(math.ceil(ymax)))
    c0 = max(0, int(math.floor(xmin)))
    c1 = min(w, int(math.ceil(xmax)))
    return r0, r1, c0, c1


@njit(cache=True, nogil=True)
def _block_kernel(coords, ring_start, ring_role, zone_ring_start, values, classes, has_classes, row_area,
                  lo, inv_width, bins, area, valid, sumwv, vmin, vmax, hist, clsw, emit, pair_zone, pair_cell,
                  pair_w):
    """Accumulate every zone's weighted sums over one block. ``coords`` are relative to the block origin."""
    n_layers, h, w = values.shape
    local = np.empty((h + 1, w))
    carry = np.empty((h + 1, w))
    run = np.empty(w)
    n_pairs = 0
    for z in range(zone_ring_start.size - 1):
        r_lo, r_hi = zone_ring_start[z], zone_ring_start[z + 1]
        if r_hi == r_lo:
            continue
        r0, r1, c0, c1 = _zone_box(coords, ring_start, r_lo, r_hi, h, w)
        if r1 <= r0 or c1 <= c0:
            continue
        bh, bw = r1 - r0, c1 - c0
        _zone_coverage(coords, ring_start, ring_role, r_lo, r_hi, float(c0), float(r0), bw, bh, local, carry)
        for c in range(bw):
            run[c] = 0.0
        for r in range(bh):
            ra = row_area[r0 + r]
            for c in range(bw):
                run[c] += carry[r, c]
                f = local[r, c] + run[c]
                if f <= 1e-9:
                    continue
                if f > 1.0:
                    f = 1.0
                wt = f * ra
                area[z] += wt
                rr, cc = r0 + r, c0 + c
                if emit:
                    pair_zone[n_pairs] = z
                    pair_cell[n_pairs] = rr * w + cc
                    pair_w[n_pairs] = wt
                    n_pairs += 1
                for layer in range(n_layers):
                    v = values[layer, rr, cc]
                    if v != v:
                        continue
                    valid[z, layer] += wt
                    sumwv[z, layer] += wt * v
                    if v < vmin[z, layer]:
                        vmin[z, layer] = v
                    if v > vmax[z, layer]:
                        vmax[z, layer] = v
                    if bins > 0:
                        b = int(math.floor((v - lo[layer]) * inv_width[layer]))
                        if b < 0:
                            b = 0
                        elif b >= bins:
                            b = bins - 1
                        hist[z, layer, b] += wt
                if has_classes:
                    clsw[z, classes[rr, cc]] += wt
    return n_pairs


def coverage_fractions(geometry: Any, grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact coverage of one polygon on ``grid``: (rows, cols, fraction) of every cell it covers (f > 1e-9).

    For small polygons, tests and diagnostics (it works on the whole grid at once)."""
    coords, ring_start, role, zrs = _polygon_arrays(np.asarray([geometry], dtype=object), grid)
    h, w = grid.shape
    ones = np.ones(h)
    empty = np.zeros((1, 0))
    pz, pc, pw = np.zeros(h * w, np.int64), np.zeros(h * w, np.int64), np.zeros(h * w)
    n = _block_kernel(coords, ring_start, role, zrs, np.zeros((0, h, w), np.float32), np.zeros((1, 1), np.uint8),
                      False, ones, np.zeros(0), np.zeros(0), 0, np.zeros(1), empty, empty, empty, empty,
                      np.zeros((1, 0, 0)), np.zeros((1, 1)), True, pz, pc, pw)
    return pc[:n] // w, pc[:n] % w, pw[:n]


# --- per-block task and merge -------------------------------------------------------------------------------------


def _block_task(r0, c0, zone_ids, coords, ring_start, role, zrs, row_area, lo, inv_width, bins, n_cls, exact,
                *blocks):
    n_layers = len(blocks) - (1 if n_cls else 0)
    vals = [np.asarray(b, dtype=np.float32) for b in blocks[:n_layers]]
    h, w = np.shape(blocks[0])
    values = np.stack(vals) if vals else np.zeros((0, h, w), np.float32)
    k = len(zone_ids)
    cls = np.asarray(blocks[-1]) if n_cls else np.zeros((1, 1), np.uint8)
    if n_cls:
        if cls.dtype.kind not in "uib":
            raise InputDataError(f"class raster must hold integer codes, got dtype {cls.dtype}")
        if cls.size and (cls.min() < 0 or cls.max() > n_cls):
            raise InputDataError(f"class raster holds code {int(cls.max())}, outside 0..{n_cls}")
        cls = cls.astype(np.int64)
    area = np.zeros(k)
    valid = np.zeros((k, n_layers))
    sumwv = np.zeros((k, n_layers))
    vmin = np.full((k, n_layers), np.inf)
    vmax = np.full((k, n_layers), -np.inf)
    hist = np.zeros((k, n_layers, bins) if bins else (k, 0, 0))
    clsw = np.zeros((k, n_cls + 1) if n_cls else (k, 1))
    local = coords - np.array([c0, r0], dtype=np.float64)
    if exact:
        bound = _pair_bound(local, ring_start, zrs, h, w)
        pz, pc, pw = np.empty(bound, np.int64), np.empty(bound, np.int64), np.empty(bound)
    else:
        pz = pc = np.zeros(0, np.int64)
        pw = np.zeros(0)
    n = _block_kernel(local, ring_start, role, zrs, values, cls, bool(n_cls), row_area, lo, inv_width, bins,
                      area, valid, sumwv, vmin, vmax, hist, clsw, exact, pz, pc, pw)
    pairs = None
    if exact:
        pz, pc, pw = pz[:n], pc[:n], pw[:n]
        pairs = []
        for layer in range(n_layers):
            v = values[layer].ravel()[pc]
            ok = ~np.isnan(v)
            pairs.append((zone_ids[pz[ok]], v[ok].astype(np.float64), pw[ok]))
    return {"ids": zone_ids, "area": area, "valid": valid, "sumwv": sumwv, "vmin": vmin, "vmax": vmax,
            "hist": hist, "cls": clsw, "pairs": pairs}


def _pair_bound(coords, ring_start, zrs, h, w) -> int:
    total = 0
    for z in range(len(zrs) - 1):
        if zrs[z + 1] > zrs[z]:
            r0, r1, c0, c1 = _zone_box(coords, ring_start, zrs[z], zrs[z + 1], h, w)
            total += max(0, r1 - r0) * max(0, c1 - c0)
    return total


def _merge(parts: Sequence[dict]) -> dict:
    parts = [p for p in parts if p is not None]
    ids = np.concatenate([p["ids"] for p in parts])
    uniq, inv = np.unique(ids, return_inverse=True)
    n = len(uniq)
    out: dict[str, Any] = {"ids": uniq}
    for key in ("area", "valid", "sumwv", "hist", "cls"):
        stacked = np.concatenate([p[key] for p in parts])
        acc = np.zeros((n,) + stacked.shape[1:])
        np.add.at(acc, inv, stacked)
        out[key] = acc
    for key, fn, init in (("vmin", np.minimum, np.inf), ("vmax", np.maximum, -np.inf)):
        stacked = np.concatenate([p[key] for p in parts])
        acc = np.full((n,) + stacked.shape[1:], init)
        fn.at(acc, inv, stacked)
        out[key] = acc
    if parts[0]["pairs"] is None:
        out["pairs"] = None
    else:
        out["pairs"] = [tuple(np.concatenate([p["pairs"][layer][i] for p in parts]) for i in range(3))
                        for layer in range(len(parts[0]["pairs"]))]
    return out


# --- quantiles ----------------------------------------------------------------------------------------------------


def _hist_quantile(hist: np.ndarray, lo: float, width: float, zmin: np.ndarray, zmax: np.ndarray,
                   p: float) -> np.ndarray:
    """p-quantile per row of ``hist`` (zones x bins), weights uniform inside each bin clipped to [zmin, zmax]."""
    n, bins = hist.shape
    total = hist.sum(axis=1)
    cum = np.cumsum(hist, axis=1)
    target = p * total
    b = np.minimum((cum < target[:, None]).sum(axis=1), bins - 1)
    before = np.where(b > 0, cum[np.arange(n), np.maximum(b - 1, 0)], 0.0)
    inbin = hist[np.arange(n), b]
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.clip(np.where(inbin > 0, (target - before) / inbin, 0.0), 0.0, 1.0)
    left = np.maximum(lo + b * width, zmin)
    right = np.minimum(lo + (b + 1) * width, zmax)
    right = np.maximum(right, left)
    q = left + t * (right - left)
    return np.where(total > 0, q, np.nan)


def _exact_quantiles(zone: np.ndarray, v: np.ndarray, w: np.ndarray, n_zones: int, ps: Sequence[float]):
    """Weighted inverted-CDF quantiles per zone: min{v : cumulative weight >= p * total}."""
    out = np.full((len(ps), n_zones), np.nan)
    if zone.size == 0:
        return out
    order = np.lexsort((v, zone))
    zone, v, w = zone[order], v[order], w[order]
    starts = np.flatnonzero(np.r_[True, zone[1:] != zone[:-1]])
    ends = np.r_[starts[1:], zone.size]
    cum = np.cumsum(w)
    base = np.r_[0.0, cum[starts[1:] - 1]] if len(starts) > 1 else np.zeros(1)
    totals = cum[ends - 1] - base
    for qi, p in enumerate(ps):
        for s, e, b0, tot in zip(starts, ends, base, totals, strict=True):
            local = cum[s:e] - b0
            # a relative tolerance keeps p * total from missing a cumulative weight it equals up to rounding
            j = int(np.searchsorted(local, p * tot * (1 - 1e-12), side="left"))
            out[qi, zone[s]] = v[s + min(j, e - s - 1)]
    return out


# --- public entry point -------------------------------------------------------------------------------------------


def _as_dask(arr: Any, chunks) -> da.Array:
    if isinstance(arr, da.Array):
        return arr.rechunk(chunks)
    return da.from_array(np.asarray(arr), chunks=chunks)


def zonal_stats(
    zones: gpd.GeoDataFrame,
    layers: Mapping[str, Any],
    grid: Grid,
    *,
    classes: Any = None,
    n_classes: int | None = None,
    class_names: Mapping[int, str] | None = None,
    quantiles: str = "histogram",
    bins: int = 256,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    percentile: float = 90.0,
    lazy: bool = False,
) -> Any:
    """Area-weighted zonal statistics of ``layers`` (and class areas of ``classes``) over ``zones``.

    Args:
        zones: polygon zones in any CRS (reprojected to the grid's); overlapping zones are fine. The result keeps
            their rows, index, attributes and geometry (in the grid CRS).
        layers: name -> float raster (numpy or dask, grid shape, NaN = no data). Names become column prefixes.
        grid: the analysis grid.
        classes: optional class raster (uint8, 0 = no data) whose per-class areas are reported in km².
        n_classes: largest class code (default: the largest key of ``class_names``, else 255).
        class_names: optional {code: name} for the area columns (``{name}_km2``; default ``class_{code}_km2``).
        quantiles: ``"histogram"`` or ``"exact"`` (module docstring).
        bins, ranges: histogram bins and per-layer (lo, hi); missing ranges are computed (an extra pass).
        percentile: the upper percentile reported besides the median (column ``{layer}_p{percentile:g}``).
        lazy: return a ``dask.delayed`` GeoDataFrame instead of computing now.

    Returns a GeoDataFrame, one row per zone, with the columns listed in the module docstring. Zones off the grid
    get ``area_km2 = 0`` and NaN statistics.
    """
    if quantiles not in QUANTILE_METHODS:
        raise ConfigError(f"quantiles must be one of {', '.join(QUANTILE_METHODS)}, got {quantiles!r}"
                          f"{did_you_mean(str(quantiles), QUANTILE_METHODS)}")
    if not isinstance(bins, int | np.integer) or isinstance(bins, bool) or bins < 1:
        raise ConfigError(f"bins must be an integer >= 1, got {bins!r}")
    if not 0 < float(percentile) < 100:
        raise ConfigError(f"percentile must be between 0 and 100 (exclusive), got {percentile!r}")
    if not isinstance(layers, Mapping):
        raise ConfigError("layers must be a mapping of name -> raster")
    if zones.crs is None and len(zones):
        raise InputDataError("zonal_stats: the zones have no CRS")
    names = [str(n) for n in layers]
    for name, arr in layers.items():
        if tuple(np.shape(arr)) != grid.shape:
            raise ConfigError(f"layer '{name}' has shape {tuple(np.shape(arr))}, the grid {grid.shape}")
    if classes is not None and tuple(np.shape(classes)) != grid.shape:
        raise ConfigError(f"class raster has shape {tuple(np.shape(classes))}, the grid {grid.shape}")
    n_cls = 0
    if classes is not None:
        n_cls = int(n_classes if n_classes is not None else (max(class_names) if class_names else 255))
    ranges = dict(ranges or {})
    for key in ranges:
        if key not in layers:
            raise ConfigError(f"ranges: no layer '{key}'{did_you_mean(str(key), names)}")

    frame = zones.to_crs(grid.crs) if len(zones) and not CRS.from_user_input(zones.crs).equals(
        grid.pyproj_crs, ignore_axis_order=True) else zones.copy()
    geoms = np.asarray(frame.geometry.values, dtype=object)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    geoms = np.where(ok, geoms, shapely.Polygon())
    coords, ring_start, role, zrs = _polygon_arrays(geoms, grid)

    first = next((a for a in layers.values() if isinstance(a, da.Array)), None)
    if first is None and isinstance(classes, da.Array):
        first = classes
    chunks = first.chunks if first is not None else grid.chunks
    arrays = [_as_dask(a, chunks) for a in layers.values()]
    if classes is not None:
        arrays.append(_as_dask(classes, chunks))

    hist_bins = bins if quantiles == "histogram" and names else 0
    missing = [n for n in names if n not in ranges] if hist_bins else []
    if missing:
        lows = [da.nanmin(arrays[names.index(n)]) for n in missing]
        highs = [da.nanmax(arrays[names.index(n)]) for n in missing]
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            found = dask.compute(*lows, *highs)
        for i, n in enumerate(missing):
            lo_, hi_ = float(found[i]), float(found[len(missing) + i])
            ranges[n] = (lo_, hi_) if np.isfinite(lo_) else (0.0, 1.0)
    lo = np.array([float(ranges[n][0]) for n in names]) if hist_bins else np.zeros(len(names))
    hi = np.array([float(ranges[n][1]) for n in names]) if hist_bins else np.ones(len(names))
    if hist_bins and np.any(~(hi >= lo)):
        bad = names[int(np.argmax(~(hi >= lo)))]
        raise ConfigError(f"ranges['{bad}'] must be (lo, hi) with lo <= hi, got {ranges[bad]}")
    span = np.where(hi > lo, hi - lo, 1.0)
    inv_width = hist_bins / span if hist_bins else np.zeros(len(names))
    width = span / hist_bins if hist_bins else span

    # Which zones meet which block: compare global pixel bounding boxes.
    n_zones = len(geoms)
    zmin_xy = np.full((n_zones, 2), np.inf)
    zmax_xy = np.full((n_zones, 2), -np.inf)
    if coords.size:
        pt_ring = np.repeat(np.arange(len(ring_start) - 1), np.diff(ring_start))
        ring_zone = np.repeat(np.arange(n_zones), np.diff(zrs))
        pt_zone = ring_zone[pt_ring]
        np.minimum.at(zmin_xy, pt_zone, coords)
        np.maximum.at(zmax_xy, pt_zone, coords)
    row_area = row_cell_areas_m2(grid)
    row_edges = np.concatenate([[0], np.cumsum(chunks[0])])
    col_edges = np.concatenate([[0], np.cumsum(chunks[1])])
    delayed = [a.to_delayed(optimize_graph=False) for a in arrays]
    parts = []
    for i in range(len(chunks[0])):
        r0, r1 = int(row_edges[i]), int(row_edges[i + 1])
        for j in range(len(chunks[1])):
            c0, c1 = int(col_edges[j]), int(col_edges[j + 1])
            sel = np.flatnonzero((zmin_xy[:, 0] < c1) & (zmax_xy[:, 0] > c0) & (zmin_xy[:, 1] < r1)
                                 & (zmax_xy[:, 1] > r0))
            if sel.size == 0:
                continue
            sub = _subset(sel, coords, ring_start, role, zrs)
            parts.append(dask.delayed(_block_task)(r0, c0, sel.astype(np.int64), *sub, row_area[r0:r1], lo,
                                                   inv_width, hist_bins, n_cls, quantiles == "exact",
                                                   *(d[i, j] for d in delayed)))
    while len(parts) > 1:
        parts = [dask.delayed(_merge)(parts[k:k + _MERGE_FAN_IN]) for k in range(0, len(parts), _MERGE_FAN_IN)]
    merged = parts[0] if parts else None
    rule = _rule_text(quantiles, hist_bins, names, lo, hi, width)
    table = dask.delayed(_finish)(merged, frame, names, n_zones, n_cls, class_names, lo, width, percentile,
                                  quantiles, rule)
    return table if lazy else table.compute()


def _subset(sel, coords, ring_start, role, zrs):
    rings = np.concatenate([np.arange(zrs[z], zrs[z + 1]) for z in sel]) if sel.size else np.zeros(0, np.int64)
    counts = np.diff(zrs)[sel]
    new_zrs = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    lengths = ring_start[rings + 1] - ring_start[rings]
    new_rs = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    pts = np.concatenate([np.arange(ring_start[r], ring_start[r + 1]) for r in rings]) if rings.size else \
        np.zeros(0, np.int64)
    return np.ascontiguousarray(coords[pts]), new_rs, role[rings], new_zrs


def _rule_text(quantiles, bins, names, lo, hi, width) -> str:
    text = "exact area-weighted coverage fractions (weight = covered share x cell area)"
    if quantiles == "exact":
        return text + "; quantiles: weighted inverted CDF of the exact values"
    parts = ", ".join(f"{n} [{lo[i]:g}, {hi[i]:g}] error <= {width[i]:.3g}" for i, n in enumerate(names))
    return text + f"; quantiles: {bins}-bin area-weighted histogram, linear within bins ({parts})"


def _finish(merged, frame, names, n_zones, n_cls, class_names, lo, width, percentile, quantiles, rule):
    n_layers = len(names)
    area = np.zeros(n_zones)
    valid = np.zeros((n_zones, n_layers))
    sumwv = np.zeros((n_zones, n_layers))
    vmin = np.full((n_zones, n_layers), np.nan)
    vmax = np.full((n_zones, n_layers), np.nan)
    cls = np.zeros((n_zones, n_cls + 1))
    p = percentile / 100.0
    med = np.full((n_zones, n_layers), np.nan)
    pct = np.full((n_zones, n_layers), np.nan)
    if merged is not None:
        ids = merged["ids"]
        area[ids] = merged["area"]
        valid[ids] = merged["valid"]
        sumwv[ids] = merged["sumwv"]
        vmin[ids] = np.where(np.isfinite(merged["vmin"]), merged["vmin"], np.nan)
        vmax[ids] = np.where(np.isfinite(merged["vmax"]), merged["vmax"], np.nan)
        if n_cls:
            cls[ids] = merged["cls"]
        for layer in range(n_layers):
            if quantiles == "histogram":
                h = merged["hist"][:, layer, :]
                med[ids, layer] = _hist_quantile(h, lo[layer], width[layer], merged["vmin"][:, layer],
                                                 merged["vmax"][:, layer], 0.5)
                pct[ids, layer] = _hist_quantile(h, lo[layer], width[layer], merged["vmin"][:, layer],
                                                 merged["vmax"][:, layer], p)
            else:
                z, v, w = merged["pairs"][layer]
                q = _exact_quantiles(z, v, w, n_zones, (0.5, p))
                med[:, layer], pct[:, layer] = q[0], q[1]
    out = frame.copy()
    out["area_km2"] = area / 1e6
    with np.errstate(invalid="ignore", divide="ignore"):
        for k, name in enumerate(names):
            out[f"{name}_mean"] = np.where(valid[:, k] > 0, sumwv[:, k] / valid[:, k], np.nan)
            out[f"{name}_median"] = med[:, k]
            out[f"{name}_p{percentile:g}"] = pct[:, k]
            out[f"{name}_min"] = vmin[:, k]
            out[f"{name}_max"] = vmax[:, k]
            out[f"{name}_excluded_share"] = np.where(area > 0, np.clip(1.0 - valid[:, k] / area, 0.0, 1.0), np.nan)
    if n_cls:
        codes = sorted(class_names) if class_names else range(1, n_cls + 1)
        for code in codes:
            label = f"{class_names[code]}_km2" if class_names else f"class_{code}_km2"
            out[label] = cls[:, code] / 1e6
    out["zonal_rule"] = rule
    return out


def point_values(layers: Mapping[str, Any], points: gpd.GeoDataFrame, grid: Grid) -> pd.DataFrame:
    """The value of each layer in the cell containing each point (NaN outside the grid), e.g. the travel time
    from a candidate town itself. Returns a DataFrame with the points' index and one column per layer."""
    pts = points.to_crs(grid.crs) if points.crs is not None else points
    rows, cols = grid.index_of_xy(pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy())
    inside = (rows >= 0) & (rows < grid.height) & (cols >= 0) & (cols < grid.width)
    out = {}
    for name, arr in layers.items():
        vals = np.full(len(pts), np.nan)
        if inside.any():
            r, c = rows[inside], cols[inside]
            got = arr.vindex[r, c].compute() if isinstance(arr, da.Array) else np.asarray(arr)[r, c]
            vals[inside] = got
        out[name] = vals
    return pd.DataFrame(out, index=points.index)
