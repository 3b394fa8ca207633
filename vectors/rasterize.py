"""Burning vector features onto the analysis grid, chunk by chunk (GDAL's rasterizer via ``rasterio.features``).

Rules (GDAL ``GDALRasterizeGeometries``):

- polygons: a cell is burned when its centre lies inside the polygon; with ``all_touched=True`` every cell the
  polygon touches (interior or outline) is burned;
- lines: the cells on GDAL's Bresenham-style path between consecutive vertices; with ``all_touched=True`` every
  cell the line passes through;
- points: the cell that contains the point.

Features are burned in the GeoDataFrame's row order and, with the default ``merge_alg="replace"``, a later
feature overwrites an earlier one where they overlap; ``merge_alg="add"`` sums the values instead.

Each chunk task receives only the features whose bounding box meets its window (pre-selected with the
GeoDataFrame's spatial index) as WKB bytes plus their values, so the graph is picklable and runs on any dask
scheduler. Valid polygons reaching beyond a window are cut to the window widened by ``_MARGIN`` cells first (GEOS
``clip_by_rect``), so a province-sized polygon is not copied whole into every task; the margin keeps both the
centre rule and the all-touched outline inside the window exactly as they are without the cut. Lines and points
are passed whole: GDAL draws each line segment from its end vertices, and moving an end vertex would move cells.
"""

from __future__ import annotations

import warnings

import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
from pyproj import CRS
from rasterio.enums import MergeAlg
from rasterio.errors import NotGeoreferencedWarning
from rasterio.features import rasterize as _gdal_rasterize
from rasterio.windows import Window

from rasters.errors import ConfigError, InputDataError, did_you_mean
from rasters.grid import Grid

__all__ = ["mask", "rasterize"]

# Cells. A cut edge runs where the polygon already is, so inside the window it only touches cells the polygon
# covers anyway; the margin keeps the cut, and its floating-point noise, away from the window's edge cells.
_MARGIN = 2
_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "int64", "uint64", "float32", "float64")
_MERGE = {"replace": MergeAlg.replace, "add": MergeAlg.add}


def _values(gdf: gpd.GeoDataFrame, value: float | str, dtype: np.dtype) -> np.ndarray:
    """Per-feature burn values as float64 (NaN = do not burn), checked against ``dtype``."""
    if isinstance(value, str):
        columns = [c for c in gdf.columns if c != gdf.geometry.name]
        if value not in columns:
            raise ConfigError(f"value: no attribute '{value}' in the layer{did_you_mean(value, columns)}")
        col = gdf[value]
        if not pd.api.types.is_numeric_dtype(col.dtype):
            raise ConfigError(f"value: attribute '{value}' is not numeric (dtype {col.dtype}); rasterize numbers only")
        vals = col.to_numpy(dtype=float, na_value=np.nan)
    else:
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"value must be a number or an attribute name, got {value!r}") from None
        vals = np.full(len(gdf), v)
    ok = vals[np.isfinite(vals)]
    if dtype.kind in "iu" and ok.size:
        info = np.iinfo(dtype)
        if ok.min() < info.min or ok.max() > info.max:
            raise ConfigError(f"value: {ok.min():g}..{ok.max():g} does not fit dtype {dtype} ({info.min}..{info.max})")
        if np.any(ok != np.round(ok)):
            raise ConfigError(f"value: non-integer values cannot be burned into dtype {dtype}; use a float dtype")
    return vals


def rasterize(
    gdf: gpd.GeoDataFrame,
    grid: Grid,
    value: float | str = 1,
    all_touched: bool = False,
    dtype: str = "uint8",
    fill: float | None = None,
    merge_alg: str = "replace",
) -> da.Array:
    """Burn the features of ``gdf`` onto ``grid`` as a lazy (height, width) dask array of ``dtype``.

    Args:
        gdf: features; reprojected to the grid CRS first if they are in another CRS.
        grid: the analysis grid.
        value: a constant burned for every feature, or the name of a numeric attribute column. Features whose
            attribute is missing (NaN/None) are not burned.
        all_touched: burn every cell a feature touches instead of GDAL's centre/line rule (module docstring).
        dtype: output dtype (uint8 default, for class rasters where 0 = nodata; float32 for values).
        fill: value of cells no feature burns; default 0 for integer dtypes and NaN for float dtypes.
        merge_alg: "replace" (a later feature overwrites an earlier one where they overlap) or "add" (sum).

    Raises ``ConfigError`` for an unknown or non-numeric attribute (with the closest column name), values that
    do not fit ``dtype``, or an unknown ``dtype``/``merge_alg``; ``InputDataError`` if ``gdf`` has no CRS.
    """
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or str(dt) not in _DTYPES:
        raise ConfigError(f"dtype: {dtype!r} cannot be rasterized; use one of {', '.join(_DTYPES)}")
    if merge_alg not in _MERGE:
        raise ConfigError(f"merge_alg: unknown '{merge_alg}'{did_you_mean(str(merge_alg), _MERGE)}")
    if fill is None:
        fill = np.nan if dt.kind == "f" else 0
    elif dt.kind in "iu" and not (np.isfinite(fill) and np.iinfo(dt).min <= fill <= np.iinfo(dt).max):
        raise ConfigError(f"fill: {fill} does not fit dtype {dt}")
    if gdf.crs is None and len(gdf):
        raise InputDataError("rasterize: the features have no CRS; read them with vectors.read(path, grid.crs)")

    vals = _values(gdf, value, dt)
    geoms = gdf.geometry.values
    if len(gdf) and not gdf.crs.equals(CRS.from_wkt(grid.crs), ignore_axis_order=True):
        geoms = gdf.geometry.to_crs(grid.crs).values  # always_xy, as in vectors.io
    geoms = np.asarray(geoms, dtype=object)
    keep = np.isfinite(vals) & ~shapely.is_missing(geoms)
    keep[keep] = ~shapely.is_empty(geoms[keep])
    geoms, vals = geoms[keep], vals[keep]

    # Work in the grid's global pixel coordinates (column, row), computed once for the whole layer. Each block
    # then burns with a pure integer translation, which GDAL applies exactly, so a cell centre lying exactly on
    # an edge or vertex falls on the same side whatever the chunking (with world coordinates each block's own
    # origin changed the rounding, and shared county borders moved cells between chunkings).
    geoms = _to_pixels(geoms, grid)
    tree = shapely.STRtree(geoms)
    # Invalid polygons (not from vectors.read) are passed whole: GDAL fills them even-odd, a cut might not.
    is_poly = shapely.get_dimensions(geoms) == 2
    is_poly[is_poly] = shapely.is_valid(geoms[is_poly])
    gbounds = shapely.bounds(geoms)
    dsk_args = {}
    for (i, j), window in grid.windows():
        wb = (window.col_off, window.row_off, window.col_off + window.width, window.row_off + window.height)
        # Sorted: the burn order must be the row order whatever order the tree returns.
        idx = np.sort(tree.query(shapely.box(*wb)))
        sel = geoms[idx]
        rect = (wb[0] - _MARGIN, wb[1] - _MARGIN, wb[2] + _MARGIN, wb[3] + _MARGIN)
        b = gbounds[idx]
        cut = is_poly[idx] & ((b[:, 0] < rect[0]) | (b[:, 1] < rect[1]) | (b[:, 2] > rect[2]) | (b[:, 3] > rect[3]))
        if cut.any():
            sel = sel.copy()
            sel[cut] = shapely.clip_by_rect(sel[cut], *rect)
        nonempty = ~shapely.is_empty(sel)
        wkb = tuple(shapely.to_wkb(sel[nonempty]).tolist())
        dsk_args[(i, j)] = (window, wkb, vals[idx][nonempty].astype(dt))

    params = (dt.str, float(fill), bool(all_touched), merge_alg)
    token = f"rasterize-{tokenize(grid, dsk_args, params)}"
    # rasters.blocks.grid_blocks passes the same arguments to every block; here each block gets its own
    # features, so the graph is built the same way with per-block arguments.
    dsk = {(token, i, j): (_burn_block, grid, w, wkb, v, *params) for (i, j), (w, wkb, v) in dsk_args.items()}
    graph = HighLevelGraph.from_collections(token, dsk, dependencies=())
    return da.Array(graph, token, grid.chunks, dtype=dt)


def _to_pixels(geoms: np.ndarray, grid: Grid) -> np.ndarray:
    """Geometries in the grid's CRS -> the same geometries in (column, row) pixel units of the whole grid."""
    t = grid.transform

    def to_px(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(((xy[:, 0] - t.c) / t.a, (xy[:, 1] - t.f) / t.e))

    return shapely.transform(geoms, to_px) if len(geoms) else geoms


def _burn_block(
    grid: Grid,
    window: Window,
    wkb: tuple[bytes, ...],
    values: np.ndarray,
    dtype: str,
    fill: float,
    all_touched: bool,
    merge_alg: str,
) -> np.ndarray:
    shape = (int(window.height), int(window.width))
    if not wkb:
        return np.full(shape, fill, dtype=np.dtype(dtype))
    shapes = zip(shapely.from_wkb(np.asarray(wkb, dtype=object)), values.tolist(), strict=True)
    with warnings.catch_warnings():
        # rasterio's in-memory target dataset carries the transform separately and warns that it has none.
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return _gdal_rasterize(
            shapes,
            out_shape=shape,
            transform=Affine.translation(window.col_off, window.row_off),
            fill=fill,
            all_touched=all_touched,
            merge_alg=_MERGE[merge_alg],
            dtype=np.dtype(dtype),
        )


def mask(gdf: gpd.GeoDataFrame, grid: Grid, all_touched: bool = False) -> da.Array:
    """Boolean (height, width) dask array on ``grid``: True where any feature of ``gdf`` is burned."""
    return rasterize(gdf, grid, value=1, all_touched=all_touched, dtype="uint8", fill=0).astype(bool)
