"""Terrain derivatives of a DEM: slope, aspect (Horn 1981, as ``gdaldem``) and local relief (max − min).

Every function takes a 2-D DEM (numpy or dask, elevations in metres, NaN = no data) on a :class:`Grid` and
returns the same kind of array, float32. The dask path gives bit-identical results on one chunk and on many:
the 3×3 kernels run under ``map_overlap`` with a one-cell halo and are told which block sides lie on the
grid's outer edge, so a cell is computed from exactly the same nine numbers whatever the chunking.

Slope and aspect follow GDAL's ``gdaldem slope|aspect -alg Horn -compute_edges`` (``apps/gdaldem_lib.cpp``)
operation for operation, so that a DEM read as float32 gives the same float32 numbers:

* the window sums run in float32 in gdaldem's order, ``((a + d + d + g) - (c + f + f + i))``, and are then
  widened to float64 and divided by the cell size (Horn, B.K.P. 1981, "Hill shading and the reflectance
  map", Proc. IEEE 69(1):14-47; the eight-weight form used by Burrough & McDonnell 1998, p. 190);
* a **NaN centre** gives NaN;
* a **NaN neighbour** takes the centre cell's value (gdaldem's ``afWin[k] = afWin[4]`` under -compute_edges);
* a neighbour **outside the grid** is *not* the centre value in gdaldem: it is extrapolated linearly from
  the two cells inward, ``2·a − b`` (``INTERPOL``, computed in float32; NaN if either is NaN, and then the
  NaN rule above gives it the centre value). In the first and last grid rows the off-grid column at a left
  or right corner repeats the centre column instead (gdaldem's ``jmin = j`` at ``j == 0``). We copy this
  exactly, quirks included, so the outer ring matches gdaldem too;
* a grid of a single row or column has no 3×3 neighbourhood at all and gives all NaN (gdaldem writes nodata).

Cell sizes are metres: ``grid.res × linear unit`` on a projected grid; on a geographic grid the width and
height of each row's cells from :meth:`Grid.cell_size_m_rows` (ellipsoidal radii of curvature at the row-centre
latitude), using the centre row's size for the whole 3×3 window.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Literal

import dask.array as da
import numpy as np
from numba import njit
from scipy import ndimage

from .errors import ConfigError
from .grid import Grid

__all__ = ["aspect", "relief", "slope"]

_SLOPE_DEG, _SLOPE_PCT, _ASPECT = 0, 1, 2
_RAD_TO_DEG = 180.0 / math.pi  # gdaldem's kdfRadiansToDegrees
_DEG_TO_RAD = math.pi / 180.0  # gdaldem's kdfDegreesToRadians


# --- the 3×3 kernel ---------------------------------------------------------------------------------------
# Cephes atan.c (S. L. Moshier): three-interval range reduction + degree 4/5 rational minimax. Branch-free
# here so LLVM can vectorise the slope loop; libm's atan was ~40 % of the kernel. Within 1 ulp of libm in
# float64 and, over 4e7 test arguments, identical after the float32 cast (the test suite checks this too).
_T3P8 = 2.41421356237309504880  # tan(3π/8)
_MOREBITS = 6.123233995736765886130e-17
_AP = (
    -8.750608600031904122785e-1,
    -1.615753718733365076637e1,
    -7.500855792314704667340e1,
    -1.228866684490136173410e2,
    -6.485021904942025371773e1,
)
_AQ = (
    2.485846490142306297962e1,
    1.650270098316988542046e2,
    4.328810604912902668951e2,
    4.853903996359136964868e2,
    1.945506571482613964425e2,
)


@njit(inline="always", error_model="numpy")
def _atan_nonneg(x):
    """arctan(x) for x >= 0 (float64), Cephes' algorithm."""
    big = x > _T3P8
    mid = x > 0.66
    xr = -1.0 / x if big else ((x - 1.0) / (x + 1.0) if mid else x)
    y0 = math.pi / 2 if big else (math.pi / 4 if mid else 0.0)
    extra = _MOREBITS if big else (0.5 * _MOREBITS if mid else 0.0)
    z = xr * xr
    num = (((_AP[0] * z + _AP[1]) * z + _AP[2]) * z + _AP[3]) * z + _AP[4]
    den = ((((z + _AQ[0]) * z + _AQ[1]) * z + _AQ[2]) * z + _AQ[3]) * z + _AQ[4]
    z = z * num / den
    z = xr * z + xr
    return y0 + (z + extra)


@njit(inline="always")
def _interpol(a, b):
    # gdaldem's INTERPOL: float32 linear extrapolation of the off-grid neighbour; NaN in, NaN out.
    return np.float32(2.0) * a - b


@njit(inline="always")
def _edge_window(z, ii, jj, first_row, last_row, first_col, last_col):
    """gdaldem's -compute_edges window for a cell on the grid's outer ring (z is haloed, ii/jj index it)."""
    if first_row or last_row:
        jm = jj if first_col else jj - 1
        jp = jj if last_col else jj + 1
        if first_row:
            r0 = ii
            r1 = ii + 1
            return (
                _interpol(z[r0, jm], z[r1, jm]),
                _interpol(z[r0, jj], z[r1, jj]),
                _interpol(z[r0, jp], z[r1, jp]),
                z[r0, jm],
                z[r0, jj],
                z[r0, jp],
                z[r1, jm],
                z[r1, jj],
                z[r1, jp],
            )
        r1 = ii - 1
        r2 = ii
        return (
            z[r1, jm],
            z[r1, jj],
            z[r1, jp],
            z[r2, jm],
            z[r2, jj],
            z[r2, jp],
            _interpol(z[r2, jm], z[r1, jm]),
            _interpol(z[r2, jj], z[r1, jj]),
            _interpol(z[r2, jp], z[r1, jp]),
        )
    if first_col:
        return (
            _interpol(z[ii - 1, jj], z[ii - 1, jj + 1]),
            z[ii - 1, jj],
            z[ii - 1, jj + 1],
            _interpol(z[ii, jj], z[ii, jj + 1]),
            z[ii, jj],
            z[ii, jj + 1],
            _interpol(z[ii + 1, jj], z[ii + 1, jj + 1]),
            z[ii + 1, jj],
            z[ii + 1, jj + 1],
        )
    # last column
    return (
        z[ii - 1, jj - 1],
        z[ii - 1, jj],
        _interpol(z[ii - 1, jj], z[ii - 1, jj - 1]),
        z[ii, jj - 1],
        z[ii, jj],
        _interpol(z[ii, jj], z[ii, jj - 1]),
        z[ii + 1, jj - 1],
        z[ii + 1, jj],
        _interpol(z[ii + 1, jj], z[ii + 1, jj - 1]),
    )


@njit(inline="always")
def _fill(w, c):
    # gdaldem's ComputeVal under -compute_edges: a missing neighbour takes the centre value.
    return c if w != w else w


@njit(inline="always")
def _horn_value(w0, w1, w2, w3, w4, w5, w6, w7, w8, ewi, nsi, mode):
    """One output value from a 3×3 float32 window (gdaldem's ComputeVal + GDALSlopeHornAlg/GDALAspectAlg)."""
    if w4 != w4:
        return np.float32(np.nan)
    w0 = _fill(w0, w4)
    w1 = _fill(w1, w4)
    w2 = _fill(w2, w4)
    w3 = _fill(w3, w4)
    w5 = _fill(w5, w4)
    w6 = _fill(w6, w4)
    w7 = _fill(w7, w4)
    w8 = _fill(w8, w4)
    # float32 sums in gdaldem's order, then float64.
    west = w0 + w3 + w3 + w6
    east = w2 + w5 + w5 + w8
    south = w6 + w7 + w7 + w8
    north = w0 + w1 + w1 + w2
    if mode == _ASPECT:
        dx = np.float64(east - west)
        dy = np.float64(south - north)
        if dx == 0.0 and dy == 0.0:
            return np.float32(np.nan)
        # gdaldem ignores the cell size here; scaling dx by ns/ew keeps it exact on square cells
        # (ratio == 1.0) and makes it right on rectangular (e.g. geographic) cells.
        a = np.float32(math.atan2(dy, -dx * (nsi / ewi)) / _DEG_TO_RAD)
        if a > np.float32(90.0):
            a = np.float32(450.0) - a
        else:
            a = np.float32(90.0) - a
        if a == np.float32(360.0):
            a = np.float32(0.0)
        return a
    dx = np.float64(west - east) / ewi
    dy = np.float64(south - north) / nsi
    key = dx * dx + dy * dy
    if mode == _SLOPE_DEG:
        return np.float32(_atan_nonneg(math.sqrt(key) / 8.0) * _RAD_TO_DEG)
    return np.float32(100.0 * (math.sqrt(key) / 8.0))


@njit(inline="always")
def _horn_core(z, ew, ns, top, bottom, left, right, mode):
    """Horn slope/aspect of the interior of a haloed float32 block ``z`` of shape (h + 2, w + 2).

    ``ew``/``ns``: cell width/height in metres per output row. ``top``..``right``: whether that side of the
    block is the grid's outer edge (its halo is then ignored and gdaldem's edge rule applies). Interior cells
    take a branch-free path; only the outer ring of the grid goes through ``_edge_window``.
    """
    h = z.shape[0] - 2
    w = z.shape[1] - 2
    out = np.empty((h, w), np.float32)
    for i in range(h):
        ii = i + 1
        ewi = ew[i]
        nsi = ns[i]
        first_row = top and i == 0
        last_row = bottom and i == h - 1
        if first_row or last_row:
            for j in range(w):
                w0, w1, w2, w3, w4, w5, w6, w7, w8 = _edge_window(
                    z, ii, j + 1, first_row, last_row, left and j == 0, right and j == w - 1
                )
                out[i, j] = _horn_value(w0, w1, w2, w3, w4, w5, w6, w7, w8, ewi, nsi, mode)
            continue
        j_lo = 0
        j_hi = w
        if left:
            w0, w1, w2, w3, w4, w5, w6, w7, w8 = _edge_window(z, ii, 1, False, False, True, w == 1)
            out[i, 0] = _horn_value(w0, w1, w2, w3, w4, w5, w6, w7, w8, ewi, nsi, mode)
            j_lo = 1
        if right and w - 1 >= j_lo:
            w0, w1, w2, w3, w4, w5, w6, w7, w8 = _edge_window(z, ii, w, False, False, False, True)
            out[i, w - 1] = _horn_value(w0, w1, w2, w3, w4, w5, w6, w7, w8, ewi, nsi, mode)
            j_hi = w - 1
        za = z[ii - 1]
        zb = z[ii]
        zc = z[ii + 1]
        for j in range(j_lo, j_hi):
            out[i, j] = _horn_value(
                za[j], za[j + 1], za[j + 2], zb[j], zb[j + 1], zb[j + 2], zc[j], zc[j + 1], zc[j + 2], ewi, nsi, mode
            )
    return out


# One compiled kernel per output, so the mode is a constant the compiler folds away.
@njit(nogil=True, cache=True, error_model="numpy")
def _slope_deg_block(z, ew, ns, top, bottom, left, right):
    return _horn_core(z, ew, ns, top, bottom, left, right, _SLOPE_DEG)


@njit(nogil=True, cache=True, error_model="numpy")
def _slope_pct_block(z, ew, ns, top, bottom, left, right):
    return _horn_core(z, ew, ns, top, bottom, left, right, _SLOPE_PCT)


@njit(nogil=True, cache=True, error_model="numpy")
def _aspect_block(z, ew, ns, top, bottom, left, right):
    return _horn_core(z, ew, ns, top, bottom, left, right, _ASPECT)


_KERNELS = {_SLOPE_DEG: _slope_deg_block, _SLOPE_PCT: _slope_pct_block, _ASPECT: _aspect_block}


# --- numpy / dask plumbing --------------------------------------------------------------------------------
def _check_dem(dem, grid: Grid, what: str):
    if not isinstance(grid, Grid):
        raise ConfigError(f"{what}: grid must be a rasters.Grid, got {type(grid).__name__}")
    if getattr(dem, "ndim", None) != 2 or tuple(dem.shape) != grid.shape:
        raise ConfigError(f"{what}: dem must be a 2-D array of the grid's shape {grid.shape}, got {dem.shape}")
    if not np.issubdtype(dem.dtype, np.number) or np.issubdtype(dem.dtype, np.complexfloating):
        raise ConfigError(f"{what}: dem must hold real numbers (elevation in metres), got dtype {dem.dtype}")
    return dem.astype(np.float32, copy=False) if dem.dtype != np.float32 else dem


def _cell_sizes(grid: Grid, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
    ew, ns = grid.cell_size_m_rows(r0, r1)
    return np.ascontiguousarray(ew, dtype=np.float64), np.ascontiguousarray(ns, dtype=np.float64)


def _horn_dask_block(block: np.ndarray, grid: Grid, mode: int, block_info=None) -> np.ndarray:
    info = block_info[None]
    (r0, r1), _ = info["array-location"]
    (ci, cj), (ni, nj) = info["chunk-location"], info["num-chunks"]
    ew, ns = _cell_sizes(grid, r0, r1)
    z = np.ascontiguousarray(block, dtype=np.float32)
    return _KERNELS[mode](z, ew, ns, ci == 0, ci == ni - 1, cj == 0, cj == nj - 1)


def _horn(dem, grid: Grid, mode: int, what: str):
    dem = _check_dem(dem, grid, what)
    if grid.height < 2 or grid.width < 2:
        # No 3×3 neighbourhood exists; gdaldem writes nodata everywhere too.
        return da.full_like(dem, np.nan) if isinstance(dem, da.Array) else np.full(dem.shape, np.nan, np.float32)
    if isinstance(dem, da.Array):
        return da.map_overlap(
            partial(_horn_dask_block, grid=grid, mode=mode),
            dem,
            depth=1,
            boundary=np.nan,
            trim=False,
            dtype=np.float32,
            chunks=dem.chunks,
            meta=np.empty((0, 0), np.float32),
        )
    z = np.pad(np.asarray(dem, dtype=np.float32), 1, mode="constant", constant_values=np.nan)
    ew, ns = _cell_sizes(grid, 0, grid.height)
    return _KERNELS[mode](z, ew, ns, True, True, True, True)


def slope(dem, grid: Grid, units: Literal["degrees", "percent"] = "degrees"):
    """Slope of ``dem`` (elevations in metres) by Horn's (1981) 3×3 method, exactly as ``gdaldem slope``.

    ``slope = atan(sqrt((dz/dx)² + (dz/dy)²))`` with ``dz/dx = ((c + 2f + i) − (a + 2d + g)) / (8·dx)`` and
    ``dz/dy = ((g + 2h + i) − (a + 2b + c)) / (8·dy)`` over the window ``a b c / d e f / g h i`` (north up),
    ``dx``/``dy`` the cell width/height in metres (per row on geographic grids). ``units="degrees"`` gives
    degrees in [0, 90); ``"percent"`` gives ``100·tan(slope)``. Edge and NaN rules: see the module docstring
    (gdaldem ``-compute_edges``). Returns float32, numpy for numpy input and a lazy dask array for dask input.
    """
    if units not in ("degrees", "percent"):
        raise ConfigError(f"slope units must be 'degrees' or 'percent', got {units!r}")
    return _horn(dem, grid, _SLOPE_DEG if units == "degrees" else _SLOPE_PCT, "slope")


def aspect(dem, grid: Grid):
    """Aspect of ``dem``: the compass direction the slope faces, in degrees clockwise from north in [0, 360).

    Horn's (1981) 3×3 gradient, with gdaldem's azimuth convention (0 = north-facing, 90 = east-facing, i.e.
    the downslope direction) and float32 arithmetic. A flat cell (both gradients exactly zero) is **NaN**,
    where gdaldem writes its nodata value (-9999 by default; ``-zero_for_flat`` gives 0): one nodata convention
    for the whole project. On square cells the result equals gdaldem's; on rectangular cells (e.g. a geographic
    grid) the east-west gradient is scaled by ``dy/dx`` so the direction is the true one, which gdaldem's
    size-free formula does not do. Edge and NaN rules: see the module docstring. Returns float32.
    """
    return _horn(dem, grid, _ASPECT, "aspect")


def _relief_block(block: np.ndarray, size: int) -> np.ndarray:
    z = np.asarray(block, dtype=np.float32)
    nan = np.isnan(z)
    # NaN cells are skipped by the window: -inf never wins a max, +inf never wins a min.
    hi = ndimage.maximum_filter(np.where(nan, -np.inf, z), size=size, mode="nearest")
    lo = ndimage.minimum_filter(np.where(nan, np.inf, z), size=size, mode="nearest")
    out = (hi - lo).astype(np.float32)
    out[nan] = np.nan
    return out


def relief(dem, grid: Grid, window_cells: int):
    """Local relief: ``max − min`` of ``dem`` over a ``window_cells × window_cells`` window (metres, float32).

    Same window as ``scipy.ndimage.maximum_filter(size=window_cells)``: offsets ``-(n // 2) .. n - 1 - n // 2``
    around the cell (centred for odd ``n``). Cells outside the grid and NaN cells are left out of the window
    (for a max/min this equals scipy's ``reflect``/``nearest`` modes at the edge); a NaN centre gives NaN.
    ``window_cells = 1`` gives 0 on every valid cell.
    """
    if isinstance(window_cells, bool) or not isinstance(window_cells, int | np.integer) or window_cells < 1:
        raise ConfigError(f"relief window_cells must be a whole number of cells >= 1, got {window_cells!r}")
    dem = _check_dem(dem, grid, "relief")
    size = int(window_cells)
    if isinstance(dem, da.Array):
        depth = size // 2
        if depth == 0:
            return dem.map_blocks(_relief_block, size, dtype=np.float32)
        out = da.map_overlap(
            partial(_relief_block, size=size), dem, depth=depth, boundary=np.nan, trim=True, dtype=np.float32
        )
        # map_overlap grows chunks smaller than the halo; give the caller back the chunks it passed in.
        return out if out.chunks == dem.chunks else out.rechunk(dem.chunks)
    return _relief_block(dem, size)
