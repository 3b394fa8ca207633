"""Carrying scale by the 短板 (minimum) rule of the 2020 资源环境承载能力 guideline.

《资源环境承载能力和国土空间开发适宜性评价指南（试行）》(自然资源部 2020) sizes the towns a region can carry from
each resource separately (water, land, ...) and takes the smallest (短板原理, the weakest stave of the barrel):

    carrying scale of zone z = min over constraints k of limit_k(z)

and the table says which constraint binds. This module provides the pieces:

* ``zone_class_counts`` / ``zone_class_areas_km2``: per (zone, class) cell counts and areas from a zone index
  raster (``suitability.water.zone_index_raster``) and a class raster (uint8, 0 = no data), as a bincount over
  (zone id, class) on dask blocks. Counts are exact integers. Areas are exact cell areas: on a projected grid
  count × cell area (true area only for an equal-area CRS such as the Qinghai Albers); on a geographic grid the
  area of each row's cell on the ellipsoid between its two parallels (closed form through the authalic
  latitude function q(φ), Snyder 1987, *Map Projections — A Working Manual*, eq. 3-12), summed as count per
  (row, zone, class) × row area in a fixed order, so the result is bit-identical for any chunking.
* ``land_limited_population``: suitable area in the top classes (km²) × a density (persons/km²). A density is
  10⁶ / per-capita construction land (m²/person): 100 m²/person ⇔ 10,000 persons/km².
* ``carrying_scale``: the minimum over any named limits (water, land, further caps from the config) per zone.

How to call from the pipeline
-----------------------------
::

    index = water.zone_index_raster(zones.frame(), grid)              # int32, 0 = no zone
    areas = zone_class_areas_km2(index, classes, grid, n_zones=len(zones), n_classes=5)   # numpy (n+1, 6)
    land_pop = land_limited_population(areas, top_classes=(4, 5), density_per_km2=10_000)
    scale = carrying_scale(zones.names, {"water": table["carrying_population"], "land": land_pop,
                                         "plan_cap": {"玛多县": 20_000}}, population=zones.population)
    # -> DataFrame: zone, limit_water, limit_land, limit_plan_cap, carrying_population, binding, headroom_population
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd

from rasters.errors import ConfigError, InputDataError, did_you_mean
from rasters.grid import Grid

__all__ = [
    "carrying_scale",
    "land_limited_population",
    "row_cell_areas_m2",
    "zone_class_areas_km2",
    "zone_class_counts",
]


# --- cell areas -------------------------------------------------------------------------------------------------


def _authalic_q(phi: np.ndarray, e: float) -> np.ndarray:
    """Snyder (1987) eq. 3-12: q(φ) = (1 − e²)[sinφ/(1 − e² sin²φ) − 1/(2e) ln((1 − e sinφ)/(1 + e sinφ))]."""
    s = np.sin(phi)
    if e == 0:
        return 2.0 * s
    return (1 - e * e) * (s / (1 - e * e * s * s) - np.log((1 - e * s) / (1 + e * s)) / (2 * e))


def row_cell_areas_m2(grid: Grid) -> np.ndarray:
    """Area in m² of one cell in each row of ``grid`` (shape ``(height,)``).

    Geographic grid: the ellipsoidal area between the row's two parallels over the cell's longitude span,
    A = a² Δλ (q(φ₂) − q(φ₁)) / 2, exact on the ellipsoid of the grid's datum. Projected grid: the constant map
    area of a cell (``Grid.cell_area_m2``), a true area only in an equal-area CRS.
    """
    if not grid.is_geographic:
        return np.full(grid.height, grid.cell_area_m2())
    crs = grid.pyproj_crs
    ell = crs.ellipsoid
    a, inv_f = ell.semi_major_metre, ell.inverse_flattening
    e = 0.0 if not inv_f else math.sqrt((2 - 1 / inv_f) / inv_f)
    to_rad = float(crs.axis_info[0].unit_conversion_factor or math.pi / 180)
    t = grid.transform
    edges = t.f + t.e * np.arange(grid.height + 1)
    q = _authalic_q(edges * to_rad, e)
    return np.abs(a * a * (grid.res[0] * to_rad) * (q[:-1] - q[1:]) / 2.0)


# --- (zone, class) tallies --------------------------------------------------------------------------------------


def _check_codes(block: np.ndarray, top: int, what: str) -> np.ndarray:
    if block.dtype.kind not in "iub":
        raise InputDataError(f"{what} raster must hold integer codes, got dtype {block.dtype}")
    b = block.astype(np.int64)
    if b.size and (b.min() < 0 or b.max() > top):
        raise InputDataError(f"{what} raster holds code {int(b.max()) if b.max() > top else int(b.min())}, "
                             f"outside 0..{top}")
    return b


def _pair_block(zone, cls, row0, n_zones, n_classes, by_row):
    """Sparse tallies of one block: (global row or 0, key = zone * (n_classes + 1) + class, count)."""
    z = _check_codes(np.asarray(zone), n_zones, "zone index")
    c = _check_codes(np.asarray(cls), n_classes, "class")
    k = n_classes + 1
    key = z * k + c
    if by_row:
        rows = np.arange(key.shape[0], dtype=np.int64)[:, None] + row0
        combined = (rows * (n_zones + 1) * k + key).ravel()
    else:
        combined = key.ravel()
    uniq, counts = np.unique(combined, return_counts=True)
    return uniq, counts.astype(np.int64)


def _pair_combine(parts, n_zones, n_classes, row_areas):
    keys = np.concatenate([p[0] for p in parts])
    counts = np.concatenate([p[1] for p in parts])
    uniq, inverse = np.unique(keys, return_inverse=True)
    # Integer-valued float64 sums are exact below 2**53 cells, so the counts do not depend on the chunking.
    total = np.rint(np.bincount(inverse, weights=counts, minlength=len(uniq))).astype(np.int64)
    nk = (n_zones + 1) * (n_classes + 1)
    rows, pair = np.divmod(uniq, nk)
    out_counts = np.rint(np.bincount(pair, weights=total, minlength=nk)).astype(np.int64)
    areas = None
    if row_areas is not None:
        # ``uniq`` is sorted by (row, pair), so this float sum runs in the same order for any chunking.
        areas = np.bincount(pair, weights=total * row_areas[rows], minlength=nk)
    return out_counts.reshape(n_zones + 1, n_classes + 1), areas


def _tally(zone_index, classes, n_zones, n_classes, row_areas, lazy):
    if tuple(np.shape(zone_index)) != tuple(np.shape(classes)):
        raise ConfigError(f"zone index raster {np.shape(zone_index)} and class raster {np.shape(classes)} differ in "
                          "shape")
    for label, v in (("n_zones", n_zones), ("n_classes", n_classes)):
        if not (isinstance(v, (int, np.integer)) and v >= 0):
            raise ConfigError(f"{label} must be a non-negative integer, got {v!r}")
    by_row = row_areas is not None and not np.all(row_areas == row_areas[0])
    if isinstance(zone_index, da.Array) or isinstance(classes, da.Array):
        zi = da.asarray(zone_index)
        cl = da.asarray(classes).rechunk(zi.chunks)
        zb, cb = zi.to_delayed(optimize_graph=False), cl.to_delayed(optimize_graph=False)
        row_starts = np.concatenate([[0], np.cumsum(zi.chunks[0])])
        parts = [
            dask.delayed(_pair_block)(zb[i, j], cb[i, j], int(row_starts[i]), n_zones, n_classes, by_row)
            for i in range(zb.shape[0])
            for j in range(zb.shape[1])
        ]
    else:
        parts = [_pair_block(np.asarray(zone_index), np.asarray(classes), 0, n_zones, n_classes, by_row)]
    areas_in = None
    if row_areas is not None:
        areas_in = row_areas if by_row else np.asarray(row_areas[:1])
    result = dask.delayed(_pair_combine)(parts, n_zones, n_classes, areas_in)
    return result if lazy else result.compute()


def zone_class_counts(zone_index: Any, classes: Any, n_zones: int, n_classes: int = 255) -> np.ndarray:
    """Cells per (zone, class): int64 array ``(n_zones + 1, n_classes + 1)``; row 0 = no zone, column 0 = no data.

    ``zone_index``: integer raster 0..n_zones (0 = no zone); ``classes``: integer raster 0..n_classes (0 = no
    data). numpy or dask (the class raster is rechunked to the zone raster's chunks). Codes outside those ranges
    raise ``InputDataError``. One bincount of (zone, class) keys per block, summed exactly as integers.
    """
    counts, _ = _tally(zone_index, classes, n_zones, n_classes, None, lazy=False)
    return counts


def zone_class_areas_km2(
    zone_index: Any, classes: Any, grid: Grid, n_zones: int, n_classes: int = 255, *, lazy: bool = False
) -> Any:
    """Area in km² per (zone, class): float64 ``(n_zones + 1, n_classes + 1)``, rows/columns as ``zone_class_counts``.

    Cell areas from ``row_cell_areas_m2`` (see the module docstring). ``lazy=True`` returns a ``dask.delayed``
    object (computing it gives the array), so the pipeline can put it in its one ``dask.compute``.
    """
    if tuple(np.shape(zone_index)) != grid.shape:
        raise ConfigError(f"zone index raster has shape {tuple(np.shape(zone_index))}, the grid {grid.shape}")
    row_areas = row_cell_areas_m2(grid)
    result = _tally(zone_index, classes, n_zones, n_classes, row_areas, lazy=True)
    by_row = not np.all(row_areas == row_areas[0])
    areas = dask.delayed(_areas_km2)(result, n_zones, n_classes, None if by_row else float(row_areas[0]))
    return areas if lazy else areas.compute()


def _areas_km2(result, n_zones, n_classes, constant_area):
    counts, areas = result
    if constant_area is not None:
        return counts * (constant_area / 1e6)
    return areas.reshape(n_zones + 1, n_classes + 1) / 1e6


def land_limited_population(
    class_areas_km2: np.ndarray, top_classes: Sequence[int], density_per_km2: float
) -> np.ndarray:
    """Population the suitable land can hold, per zone: Σ area of ``top_classes`` (km²) × density (persons/km²).

    ``class_areas_km2`` is ``zone_class_areas_km2``'s output (row 0, "no zone", is dropped: the result has one
    entry per zone). ``top_classes`` are class codes (e.g. (4, 5) for 较高 and 高 with the default five classes).
    """
    a = np.asarray(class_areas_km2, dtype=float)
    if a.ndim != 2 or a.shape[0] < 1:
        raise ConfigError(f"class areas must be a (zones + 1, classes + 1) table, got shape {a.shape}")
    top = [int(c) for c in top_classes]
    if not top or any(c < 1 or c >= a.shape[1] for c in top):
        raise ConfigError(f"top_classes must be class codes within 1..{a.shape[1] - 1}, got {list(top_classes)!r}")
    try:
        d = float(density_per_km2)
    except (TypeError, ValueError):
        d = float("nan")
    if not (math.isfinite(d) and d > 0):
        raise ConfigError(f"density_per_km2 must be a positive number of persons/km2, got {density_per_km2!r}")
    return a[1:, sorted(set(top))].sum(axis=1) * d


def carrying_scale(
    zone_names: Sequence[str],
    limits: Mapping[str, Any],
    *,
    population: Sequence[float] | None = None,
    where: str = "carrying",
) -> pd.DataFrame:
    """The 短板 rule: per zone the minimum of the named population limits, and which one binds.

    Args:
        zone_names: one name per zone (the order of every per-zone sequence).
        limits: name -> per-zone limit (persons). Each value is a sequence/array with one number per zone, a
            single number for every zone, or a mapping zone name -> number; zones absent from a mapping have no
            limit from that constraint. A NaN in a sequence is an error (say "no limit" with a mapping).
        population: current population per zone; adds ``population`` and ``headroom_population``.

    Returns a DataFrame: ``zone``, ``limit_<name>`` per limit (NaN where none), ``carrying_population`` (the
    minimum), ``binding`` (the limit(s) reaching the minimum, joined with "+" in the order given) and, with a
    population, ``headroom_population`` = carrying − population.

    Raises ``ConfigError`` for no limits, a wrong length, an unknown zone name in a mapping (with the closest
    name); ``InputDataError`` naming the zone for a missing (NaN) or negative limit, or a zone with no limit.
    """
    names = [str(z) for z in zone_names]
    n = len(names)
    if not limits:
        raise ConfigError(f"{where}: give at least one limit (e.g. water, land)")
    columns = {}
    for key, spec in limits.items():
        label = f"{where}: limit '{key}'"
        if isinstance(spec, Mapping):
            vals = np.full(n, np.nan)
            pos = {nm: i for i, nm in enumerate(names)}
            for zone, v in spec.items():
                if str(zone) not in pos:
                    raise ConfigError(f"{label}: unknown zone '{zone}'{did_you_mean(str(zone), names)}")
                vals[pos[str(zone)]] = float(v)
            given = np.isfinite(vals)
        elif np.ndim(spec) == 0:
            vals = np.full(n, float(spec))
            given = np.ones(n, dtype=bool)
        else:
            try:
                vals = np.asarray(spec, dtype=float).ravel()
            except (TypeError, ValueError):
                raise ConfigError(f"{label}: values must be numbers") from None
            if len(vals) != n:
                raise ConfigError(f"{label}: {len(vals)} values for {n} zones")
            given = np.ones(n, dtype=bool)
            bad = np.isnan(vals)
            if bad.any():
                raise InputDataError(f"{label} is missing for zone(s) {', '.join(np.asarray(names)[bad][:8])}")
        neg = given & (vals < 0)
        if neg.any():
            shown = ", ".join(f"{names[i]} ({vals[i]:g})" for i in np.flatnonzero(neg)[:8])
            raise InputDataError(f"{label} is negative for zone(s) {shown}")
        columns[str(key)] = np.where(given, vals, np.nan)

    stack = np.vstack(list(columns.values()))  # (limits, zones)
    none = np.all(np.isnan(stack), axis=0)
    if none.any():
        raise InputDataError(f"{where}: zone(s) {', '.join(np.asarray(names)[none][:8])} have no limit at all")
    carrying = np.nanmin(stack, axis=0)
    keys = list(columns)
    binding = ["+".join(k for k, v in zip(keys, stack[:, i], strict=True) if v == carrying[i]) for i in range(n)]
    out = pd.DataFrame({"zone": names})
    for k, v in columns.items():
        out[f"limit_{k}"] = v
    out["carrying_population"] = carrying
    out["binding"] = binding
    if population is not None:
        pop = np.asarray(population, dtype=float).ravel()
        if len(pop) != n:
            raise ConfigError(f"{where}: {len(pop)} population values for {n} zones")
        if np.isnan(pop).any():
            raise InputDataError(f"{where}: population is missing for zone(s) "
                                 f"{', '.join(np.asarray(names)[np.isnan(pop)][:8])}")
        out["population"] = pop
        out["headroom_population"] = carrying - pop
    return out
