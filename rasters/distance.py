"""Euclidean distance (metres) from every cell centre to the nearest feature cell centre.

Exact, not approximate: the result equals ``scipy.ndimage.distance_transform_edt(~features,
sampling=(dy, dx))`` up to float32 rounding, on one chunk or many, however far the nearest feature is.

Uncapped, it is the separable exact EDT of Felzenszwalb & Huttenlocher (2012, "Distance transforms of sampled
functions", Theory of Computing 8:415-428), the same decomposition as Meijster et al. (2000):

1. per column, the distance in rows to the nearest feature of that column (two linear scans), on column strips
   of the full grid height;
2. per row, the lower envelope of the parabolas ``(g(q)·dy)² + ((p − q)·dx)²`` over the row's columns ``q``,
   on row strips of the full grid width. Anisotropic cells (dx ≠ dy) enter only through these weights.

Each strip holds about ``chunk_size²`` cells, so memory stays bounded by the chunk size whatever the grid size.
With ``max_m``, a bounded halo of ``ceil(max_m / cell)`` cells around each chunk holds every feature that can be
nearer than the cap, so each chunk is solved on its own (same exact kernels) and clipped.
"""

from __future__ import annotations

import math
from functools import partial

import dask.array as da
import numpy as np
from numba import njit

from .errors import ConfigError
from .grid import Grid

__all__ = ["euclidean_distance"]

def _column_pass(features):
    """Rows from each cell to the nearest True cell of its column, ``none`` if the column has none.

    uint16 (``none`` = 65535) when the grid has fewer than 65,535 rows, else int32 (``none`` = 2**30): this
    array spans the whole grid between the two passes, so its width is the memory of the exact transform
    (2.3 GB instead of 4.6 GB at 30 m over Qinghai).
    """
    h, w = features.shape
    if h < 65535:
        g = np.empty((h, w), np.uint16)
        _column_pass_into(features, g, np.uint16(65535))
    else:
        g = np.empty((h, w), np.int32)
        _column_pass_into(features, g, np.int32(2**30))
    return g


@njit(nogil=True, cache=True)
def _column_pass_into(features, g, none):
    """Fill ``g`` scanning row by row (not column by column) so memory is read contiguously."""
    h, w = features.shape
    for j in range(w):
        g[0, j] = 0 if features[0, j] else none
    for i in range(1, h):
        for j in range(w):
            if features[i, j]:
                g[i, j] = 0
            else:
                up = g[i - 1, j]
                g[i, j] = up + 1 if up < none else none
    for i in range(h - 2, -1, -1):
        for j in range(w):
            down = g[i + 1, j]
            if down < none and down + 1 < g[i, j]:
                g[i, j] = down + 1


def _row_pass(g, dx, dy):
    """Per row, the exact distance (float32 metres) from the column pass ``g`` (see ``_row_pass_kernel``)."""
    none = 65535 if g.dtype == np.uint16 else 2**30
    return _row_pass_kernel(g, dx, dy, none)


@njit(nogil=True, cache=True)
def _row_pass_kernel(g, dx, dy, none):
    """Per row, the exact distance (float32 metres) via the lower envelope of parabolas (F&H 2012, alg. 1).

    The envelope is built on ``F(q) = f(q) + (dx·q)²`` so that two parabolas meet at
    ``s = (F(q) − F(v)) / (2·dx²·(q − v))``; columns without any feature (``none``) are left out. A row with no
    parabola at all means the grid has no feature: NaN.
    """
    h, w = g.shape
    out = np.empty((h, w), np.float32)
    v = np.empty(w, np.int64)
    f_env = np.empty(w, np.float64)
    z = np.empty(w + 1, np.float64)
    two_dx2 = 2.0 * dx * dx
    for i in range(h):
        k = -1
        for q in range(w):
            gq = g[i, q]
            if gq >= none:
                continue
            fq = (np.float64(gq) * dy) ** 2 + (q * dx) ** 2
            s = -np.inf
            while k >= 0:
                s = (fq - f_env[k]) / (two_dx2 * (q - v[k]))
                if s <= z[k]:
                    k -= 1
                else:
                    break
            k += 1
            v[k] = q
            f_env[k] = fq
            z[k] = s if k > 0 else -np.inf
        if k < 0:
            for p in range(w):
                out[i, p] = np.nan
            continue
        z[k + 1] = np.inf
        m = 0
        for p in range(w):
            while z[m + 1] < p:
                m += 1
            q = v[m]
            # Same terms as scipy's EDT: (Δrow·dy)² + (Δcol·dx)² in float64, then the square root.
            d2 = (np.float64(g[i, q]) * dy) ** 2 + ((p - q) * dx) ** 2
            out[i, p] = math.sqrt(d2)
    return out


def _exact_edt(features: np.ndarray, dx: float, dy: float) -> np.ndarray:
    return _row_pass(_column_pass(np.ascontiguousarray(features, dtype=np.bool_)), dx, dy)


def _capped_block(block: np.ndarray, dx: float, dy: float, max_m: float) -> np.ndarray:
    if not block.any():
        return np.full(block.shape, max_m, np.float32)
    return np.minimum(_exact_edt(block, dx, dy), np.float32(max_m))


#: Narrowest strip of the exact transform, in cells. Going from column strips to row strips is an all-to-all
#: rechunk with (columns/strip) x (rows/strip) pieces: with strips of chunk_size² cells a 41,004 x 28,164 grid
#: (Qinghai at 30 m) made 37-cell strips and 1.25 million pieces, whose task overhead alone took gigabytes.
#: 256-cell strips make 17,600 pieces; a strip then holds 256 x the grid's side (42 MB of float32 at 30 m).
MIN_STRIP = 256


def _strip(n_along: int, n_across: int, chunk_size: int) -> int:
    """Width of a strip of full length ``n_along``: about ``chunk_size²`` cells, at least ``MIN_STRIP`` wide."""
    return max(1, min(n_across, max(MIN_STRIP, (chunk_size * chunk_size) // max(1, n_along))))


def _as_mask(features, grid: Grid):
    if not isinstance(grid, Grid):
        raise ConfigError(f"euclidean_distance: grid must be a rasters.Grid, got {type(grid).__name__}")
    if getattr(features, "ndim", None) != 2 or tuple(features.shape) != grid.shape:
        raise ConfigError(
            f"euclidean_distance: features must be a 2-D array of the grid's shape {grid.shape}, "
            f"got {getattr(features, 'shape', None)}"
        )
    dtype = np.dtype(features.dtype)
    if dtype == np.bool_:
        return features
    if np.issubdtype(dtype, np.integer):
        return features != 0
    raise ConfigError(
        f"euclidean_distance: features must be a boolean (or integer, nonzero = feature) mask, got dtype {dtype}"
    )


def euclidean_distance(features, grid: Grid, max_m: float | None = None):
    """Distance in metres from each cell centre to the nearest cell centre where ``features`` is True.

    Exact Euclidean distance on a projected grid, equal (within float32 rounding) to
    ``scipy.ndimage.distance_transform_edt(~features, sampling=(dy_m, dx_m))`` — 0 on feature cells.

    Args:
        features: boolean (or integer, nonzero = feature) numpy or dask array of the grid's shape.
        grid: a projected grid; cell width/height in metres are ``grid.res × linear unit`` (may differ).
        max_m: optional cap in metres. Cells farther than the cap from every feature get exactly ``max_m``.
            It bounds the work to a halo of ``ceil(max_m / cell)`` cells per chunk, so use it whenever the
            caller clips the distance anyway (e.g. a criterion that saturates at 5 km).

    Returns:
        float32 metres; numpy for numpy input, a lazy dask array (same chunks) for dask input. If there is no
        feature anywhere, the uncapped result is **all NaN** (distance undefined; the caller reports it) and the
        capped result is ``max_m`` everywhere (every cell is at least the cap away). The capped path has no
        global dependency: a global "any feature?" test would make every output block wait for every input
        block, holding the whole result in memory.

    Raises:
        ConfigError: geographic grid (project it first: cells must have a fixed size in metres), ``max_m`` not a
            positive number or smaller than one cell, or ``features`` of the wrong shape or dtype.
    """
    if isinstance(grid, Grid) and grid.is_geographic:
        raise ConfigError(
            "euclidean_distance needs a projected grid (cells of fixed size in metres); this grid is geographic "
            "(degrees): set the analysis grid's CRS to a projected one, e.g. an equal-area or UTM CRS"
        )
    mask = _as_mask(features, grid)
    ux = grid.linear_unit_m
    dx, dy = grid.res[0] * ux, grid.res[1] * ux
    if max_m is not None:
        if isinstance(max_m, bool) or not isinstance(max_m, int | float | np.integer | np.floating):
            raise ConfigError(f"euclidean_distance max_m must be a number of metres, got {max_m!r}")
        max_m = float(max_m)
        if not (math.isfinite(max_m) and max_m > 0):
            raise ConfigError(f"euclidean_distance max_m must be a positive number of metres, got {max_m}")
        if max_m < min(dx, dy):
            raise ConfigError(
                f"euclidean_distance max_m = {max_m:g} m is smaller than one cell ({dx:g} x {dy:g} m); "
                f"use at least {min(dx, dy):g} m or no cap"
            )

    if not isinstance(mask, da.Array):
        if max_m is not None:
            return _capped_block(np.asarray(mask), dx, dy, max_m)
        return _exact_edt(np.asarray(mask), dx, dy)

    chunks = mask.chunks
    if max_m is not None:
        depth = (math.ceil(max_m / dy), math.ceil(max_m / dx))
        if depth[0] < max(chunks[0]) and depth[1] < max(chunks[1]):
            capped = da.map_overlap(
                partial(_capped_block, dx=dx, dy=dy, max_m=max_m),
                mask,
                depth=depth,
                boundary=False,  # no features beyond the grid
                trim=True,
                dtype=np.float32,
                meta=np.empty((0, 0), np.float32),
            )
            if capped.chunks != chunks:  # map_overlap grew chunks smaller than the halo
                capped = capped.rechunk(chunks)
            return capped
        # A halo as large as a whole chunk buys no locality: the exact strip passes cost less. Same numbers.
        # NaN (no feature anywhere) saturates to the cap too, as in the halo path: fmin ignores NaN.
        return da.fmin(_exact_dask(mask, grid, dx, dy), np.float32(max_m))
    return _exact_dask(mask, grid, dx, dy)


def _exact_dask(mask: da.Array, grid: Grid, dx: float, dy: float) -> da.Array:
    """Exact EDT as two strip passes (columns, then rows), returned in ``mask``'s chunks."""
    h, w = grid.shape
    cols = mask.rechunk((h, _strip(h, w, grid.chunk_size)))
    gdt = np.uint16 if h < 65535 else np.int32  # as _column_pass chooses
    g = cols.map_blocks(_column_pass, dtype=gdt, meta=np.empty((0, 0), gdt))
    rows = g.rechunk((_strip(w, h, grid.chunk_size), w))
    dist = rows.map_blocks(partial(_row_pass, dx=dx, dy=dy), dtype=np.float32, meta=np.empty((0, 0), np.float32))
    return dist.rechunk(mask.chunks)
