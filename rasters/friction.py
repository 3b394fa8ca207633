"""Travel speeds and friction surfaces for travel-time analysis (pure elementwise functions, numpy or dask).

Units are in the names: speeds in **km/h**, slopes in **degrees**, friction in **minutes per metre**
(``friction_min_per_m = 0.06 / speed_kmh``: 60 min/h over 1000 m/km). A friction surface feeds
:func:`rasters.cost.travel_time`, whose accumulated cost is then in minutes.

Friction conventions (what :func:`rasters.cost.travel_time` expects):

* a positive finite value: minutes needed to cross one metre of that cell;
* ``+inf``: an impassable **barrier** (a ``barrier_mask`` cell, or a zero speed such as a "no passage" class
  of a slope table);
* ``NaN``: **no data** (no speed is known there); the cost kernel treats it as impassable too.

Every function accepts numpy arrays, dask arrays or scalars and returns the same kind (float32 arrays); on dask
the validation runs inside the blocks, so a bad value raises when the block is computed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import dask.array as da
import numpy as np

from .errors import ConfigError

__all__ = [
    "MIN_PER_M_PER_KMH",
    "combine_speeds",
    "friction_min_per_m",
    "speed_from_slope_table",
    "tobler_speed_kmh",
    "tobler_speed_kmh_from_gradient",
]

#: friction in min/m = MIN_PER_M_PER_KMH / speed in km/h (60 min per hour / 1000 m per km).
MIN_PER_M_PER_KMH = 0.06


def _apply(func: Callable[..., np.ndarray], *args):
    """Run an elementwise block function on numpy inputs, or blockwise when any input is a dask array.

    Scalars and ``None`` pass through unchanged; numpy arrays next to a dask array are chunked like it.
    """
    ref = next((a for a in args if isinstance(a, da.Array)), None)
    if ref is None:
        return func(*args)
    shaped = []
    for a in args:
        if isinstance(a, np.ndarray) and a.ndim > 0:
            if a.shape != ref.shape:
                raise ConfigError(f"array shapes differ: {a.shape} vs {ref.shape}; all layers must be on one grid")
            a = da.from_array(a, chunks=ref.chunks)
        elif isinstance(a, da.Array) and a.shape != ref.shape:
            raise ConfigError(f"array shapes differ: {a.shape} vs {ref.shape}; all layers must be on one grid")
        shaped.append(a)
    return da.map_blocks(func, *shaped, dtype=np.float32)


def _f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


# --- Tobler's hiking function -----------------------------------------------------------------------------
def _tobler_block(gradient):
    g = np.asarray(gradient, dtype=np.float64)
    # Tobler, W. (1993) "Three presentations on geographical analysis and modeling", NCGIA Technical Report
    # 93-1, p. 2: W = 6·exp(−3.5·|dh/dx + 0.05|) km/h, fastest (6 km/h) on a 2.86° (5 %) downhill.
    return _f32(6.0 * np.exp(-3.5 * np.abs(g + 0.05)))


def tobler_speed_kmh_from_gradient(gradient):
    """Walking speed (km/h) on a gradient ``dh/dx`` (rise over run; positive = uphill), Tobler (1993).

    ``W = 6·exp(−3.5·|dh/dx + 0.05|)``: 5.04 km/h on the flat, 6 km/h on a 5 % descent. NaN stays NaN.
    """
    return _apply(_tobler_block, gradient)


def _tobler_deg_block(slope_deg):
    s = np.asarray(slope_deg, dtype=np.float64)
    return _tobler_block(np.tan(np.radians(s)))


def tobler_speed_kmh(slope_deg):
    """Walking speed (km/h) on a slope in degrees (positive = uphill), Tobler (1993) hiking function.

    ``W = 6·exp(−3.5·|tan θ + 0.05|)`` (Tobler, W. 1993, NCGIA Technical Report 93-1). A friction surface is
    direction-free, so a DEM slope (a magnitude, ≥ 0) gives the *uphill* speed: the slower of the two
    directions for any slope steeper than 2.86°, i.e. a conservative travel time. NaN stays NaN.
    """
    return _apply(_tobler_deg_block, slope_deg)


# --- slope table ------------------------------------------------------------------------------------------
def _table_block(slope_deg, edges, speeds):
    s = np.abs(np.asarray(slope_deg, dtype=np.float64))
    idx = np.searchsorted(edges, s, side="right")
    out = speeds[np.minimum(idx, len(speeds) - 1)]
    return _f32(np.where(np.isnan(s), np.nan, out))


def speed_from_slope_table(slope_deg, edges_deg: Sequence[float], speeds_kmh: Sequence[float]):
    """Speed (km/h) looked up from a slope table: ``speeds_kmh[i]`` for ``edges_deg[i-1] ≤ |slope| < edges_deg[i]``.

    ``edges_deg`` are the ``n`` strictly increasing class limits in degrees and ``speeds_kmh`` the ``n + 1``
    speeds, from the flattest class (``|slope| < edges_deg[0]``) to the steepest (``|slope| ≥ edges_deg[-1]``).
    A speed of 0 marks a class as impassable (it becomes a barrier, friction ``+inf``). NaN slope → NaN.

    Raises:
        ConfigError: edges not strictly increasing or not finite, wrong number of speeds, or a speed that is
            negative or not finite.
    """
    edges = np.asarray(edges_deg, dtype=np.float64).ravel()
    speeds = np.asarray(speeds_kmh, dtype=np.float64).ravel()
    if edges.size == 0 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise ConfigError(f"slope table edges_deg must be finite and strictly increasing, got {list(edges_deg)}")
    if speeds.size != edges.size + 1:
        raise ConfigError(
            f"slope table needs len(speeds_kmh) == len(edges_deg) + 1 = {edges.size + 1}, got {speeds.size}"
        )
    if not np.all(np.isfinite(speeds)) or np.any(speeds < 0):
        raise ConfigError(f"slope table speeds_kmh must be finite and >= 0 (0 = impassable), got {list(speeds_kmh)}")
    return _apply(partial(_table_block, edges=edges, speeds=speeds), slope_deg)


# --- speeds to friction -----------------------------------------------------------------------------------
def _friction_block(speed_kmh):
    v = np.asarray(speed_kmh, dtype=np.float64)
    bad = (v < 0) | np.isinf(v)
    if np.any(bad):
        raise ConfigError(
            f"speed_kmh must be finite and >= 0 (0 = impassable, NaN = no data); {int(np.sum(bad))} cells are "
            f"not (e.g. {float(v[bad].flat[0])})"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        return _f32(np.where(v == 0, np.inf, MIN_PER_M_PER_KMH / v))


def friction_min_per_m(speed_kmh):
    """Friction in minutes per metre from a speed in km/h: ``0.06 / speed``; 0 km/h → ``+inf`` (barrier).

    Raises:
        ConfigError: a negative or infinite speed.
    """
    return _apply(_friction_block, speed_kmh)


def _combine_block(road, offroad, barrier):
    road = np.asarray(road, dtype=np.float64)
    off = np.asarray(offroad, dtype=np.float64)
    bad_road = ~np.isnan(road) & ~((road > 0) & np.isfinite(road))
    if np.any(bad_road):
        raise ConfigError(
            f"road_speed_kmh must be > 0 and finite where there is a road (NaN = no road); "
            f"{int(np.sum(bad_road))} cells are not (e.g. {float(road[bad_road].flat[0])})"
        )
    bad_off = (off < 0) | np.isinf(off)
    if np.any(bad_off):
        raise ConfigError(
            f"offroad_speed_kmh must be finite and >= 0 (0 = impassable, NaN = no data); "
            f"{int(np.sum(bad_off))} cells are not (e.g. {float(off[bad_off].flat[0])})"
        )
    speed = np.where(np.isnan(road), off, road)
    with np.errstate(divide="ignore", invalid="ignore"):
        fric = np.where(speed == 0, np.inf, MIN_PER_M_PER_KMH / speed)
    if barrier is not None:
        fric = np.where(np.asarray(barrier, dtype=bool), np.inf, fric)
    return _f32(fric)


def combine_speeds(road_speed_kmh, offroad_speed_kmh, barrier_mask=None):
    """Friction surface in **minutes per metre** from road speeds, off-road speeds and barriers.

    Per cell: the road speed where there is a road (``road_speed_kmh`` not NaN), else the off-road speed;
    friction = ``0.06 / speed`` min/m. Barrier cells (``barrier_mask`` true: lakes, glaciers, closed zones)
    and off-road speed 0 give ``+inf``; an off-road speed of NaN without a road gives NaN (no data). Both are
    impassable for :func:`rasters.cost.travel_time`. A road crossing a barrier is still a barrier (bridges
    must be left out of the mask).

    ``offroad_speed_kmh`` may be a scalar (e.g. 4 km/h everywhere) or a raster (e.g. :func:`tobler_speed_kmh`).

    Raises:
        ConfigError: a road speed ≤ 0 or infinite where a road exists, an off-road speed < 0 or infinite.
    """
    if np.ndim(offroad_speed_kmh) == 0:
        v = float(offroad_speed_kmh)
        if not (math.isfinite(v) or math.isnan(v)) or v < 0:
            raise ConfigError(f"offroad_speed_kmh must be finite and >= 0, got {offroad_speed_kmh}")
    return _apply(_combine_block, road_speed_kmh, offroad_speed_kmh, barrier_mask)
