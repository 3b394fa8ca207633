"""Raster I/O aligned to the analysis grid: lazy per-chunk warped reading and atomic GeoTIFF writing.

Reading: every chunk task opens the file itself (paths in the graph, never datasets) and warps just its
window with GDAL (``rasterio.warp.reproject``), so memory is bounded by the chunk size and the graph is
picklable. Source nodata becomes NaN; the result is float32.

Writing: one dataset per output, opened once for writing and filled window by window by ``dask.array.store``
under a lock (rioxarray's per-chunk reopen was measured 3.2x slower and drops creation options). Data go to a
temporary file in the destination folder; statistics and overviews are added, then ``os.replace`` puts the
finished file in place, so a failed run never leaves a half-written GeoTIFF under the final name.
"""

from __future__ import annotations

import math
import os
import threading
import uuid
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import dask.local
import dask.threaded
import numpy as np
import rasterio
import rasterio.shutil
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph
from pyproj import CRS, Transformer
from rasterio.crs import CRS as RioCRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window

from .atomic import temp_beside
from .blocks import grid_blocks
from .datum import declared_shift
from .errors import ConfigError, InputDataError
from .grid import Grid
from .kernels import block_moments

RESAMPLING = {
    "nearest": Resampling.nearest,
    "bilinear": Resampling.bilinear,
    "cubic": Resampling.cubic,
    "cubic_spline": Resampling.cubic_spline,
    "lanczos": Resampling.lanczos,
    "average": Resampling.average,
    "mode": Resampling.mode,
    "min": Resampling.min,
    "max": Resampling.max,
    "med": Resampling.med,
}

# Creation options of the plain tiled files write_many writes (the temporaries COGs are made from, and cache
# entries), chosen by measurement on these machines for reading back: ZSTD level 1 without a predictor decodes
# float32 layers and criterion scores in 3.8-5.0 ms per million cells against 7.9-9.3 with the floating-point
# predictor, and encodes faster too, at 0.6-1.6x the size (smaller for scores with long runs of equal values).
# Both beat DEFLATE and LZW. The final COGs keep the predictor (ZSTD level 1, PREDICTOR=YES, in _finish): smaller
# files for the user, decoded once by QGIS.
FLOAT_PROFILE = {"compress": "ZSTD", "zstd_level": 1}
INT_PROFILE = {"compress": "ZSTD", "zstd_level": 1}
BLOCK = 256  # internal tile edge; chunk sizes are multiples of it in every shipped config


def resampling_from_name(name: str) -> Resampling:
    try:
        return RESAMPLING[name]
    except KeyError:
        from .errors import did_you_mean

        raise ConfigError(f"unknown resampling '{name}'{did_you_mean(name, RESAMPLING)}") from None


# ------------------------------------------------------------------------------------------------ reading
@dataclass(frozen=True)
class RasterInfo:
    """What a raster file is, checked before any chunk is read."""

    path: str
    crs_wkt: str
    width: int
    height: int
    count: int
    dtype: str
    nodata: float | None
    bounds: tuple[float, float, float, float]
    res: tuple[float, float]


def inspect(path: str | os.PathLike, band: int = 1) -> RasterInfo:
    """Open ``path`` once and check it is a usable, georeferenced raster.

    Raises ``InputDataError`` for a missing file, a file GDAL cannot read as a raster, a raster without a CRS,
    a rotated transform, a band that does not exist, or a file cut short (its last block cannot be read).
    """
    p = str(path)
    if not p.startswith("/vsi") and not Path(p).exists():
        raise InputDataError(f"{p}: file not found")
    try:
        with rasterio.open(p) as src:
            if src.crs is None:
                raise InputDataError(f"{p}: raster has no CRS; assign one (e.g. gdal_edit.py -a_srs EPSG:4326)")
            t = src.transform
            if t.b != 0 or t.d != 0:
                raise InputDataError(f"{p}: rotated/sheared geotransform is not supported; warp it north-up first")
            if t.is_identity:
                raise InputDataError(f"{p}: raster has no geotransform")
            if not 1 <= band <= src.count:
                raise InputDataError(f"{p}: band {band} does not exist (the file has {src.count})")
            # A copy cut short keeps its header: reading the last block is the cheap way to notice.
            src.read(band, window=Window(src.width - 1, src.height - 1, 1, 1))
            return RasterInfo(
                p,
                src.crs.to_wkt(),
                src.width,
                src.height,
                src.count,
                src.dtypes[band - 1],
                src.nodata,
                tuple(src.bounds),
                src.res,
            )
    except InputDataError:
        raise
    except (RasterioIOError, RasterioError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "not recognized as" in msg or "not recognised" in msg:
            raise InputDataError(f"{p}: not a raster GDAL can read") from None
        raise InputDataError(f"{p}: cannot read raster ({msg})") from None


def overlap_fraction(info: RasterInfo, grid: Grid, src_wkt: str | None = None, dst_wkt: str | None = None) -> float:
    """Share of the grid's bounding box covered by the raster's footprint (0 when they do not overlap).

    ``src_wkt``/``dst_wkt``: the CRS pair of a declared datum shift (``rasters.datum.declared_shift``)."""
    try:
        b = transform_bounds(src_wkt or info.crs_wkt, dst_wkt or grid.rio_crs, *info.bounds, densify_pts=21)
    except Exception:  # noqa: BLE001 - a footprint that cannot be projected does not overlap usefully
        return 0.0
    gx0, gy0, gx1, gy1 = grid.bounds
    w = max(0.0, min(b[2], gx1) - max(b[0], gx0))
    h = max(0.0, min(b[3], gy1) - max(b[1], gy0))
    if not all(map(math.isfinite, (w, h))):
        return 0.0
    return (w * h) / ((gx1 - gx0) * (gy1 - gy0))


def read(
    path: str | os.PathLike,
    grid: Grid,
    resampling: str = "bilinear",
    band: int = 1,
    towgs84: Sequence[float] | None = None,
) -> da.Array:
    """Lazy float32 dask array of ``path`` on ``grid``; source nodata and cells off the source are NaN.

    Any GDAL raster in any CRS. ``nearest`` and ``bilinear`` (the defaults for categories and continuous data)
    are computed exactly here: every grid cell centre is transformed to the source CRS with PROJ and sampled
    (bilinear renormalises its weights over valid neighbours, as GDAL's warper does with nodata). That makes
    the result independent of the chunking, which GDAL's warper is not: it approximates the transformation
    piecewise per chunk to within 0.125 source pixels. The other methods (``average``, ``mode``, ``min``...,
    for reading a finer source onto a coarser grid) use GDAL's warper per chunk.

    ``towgs84``: a declared datum shift for a file in a datum of its own (Beijing 1954, Xian 1980):
    ``[dx, dy, dz, rx, ry, rz, ds]`` from the file's datum to WGS 84 in metres, arc-seconds and ppm, Position
    Vector convention, exactly as PROJ's ``+towgs84`` and GDAL's ``TOWGS84``. The file's own CRS is used with
    this Helmert and the result is put on the grid through WGS 84, on both paths (``rasters.datum``). A
    ``ConfigError`` if the file is already on a WGS 84-compatible datum or the grid's datum has no declared
    transformation to WGS 84 (``rasters.datum.declared_shift``).
    """
    info = inspect(path, band)
    rs = resampling_from_name(resampling)
    crs_pair: dict[str, str] = {}
    if towgs84 is not None:
        try:
            src_crs, dst_crs = declared_shift(info.crs_wkt, towgs84, grid.crs)
        except ConfigError as e:
            raise ConfigError(f"{info.path}: towgs84: {e}") from None
        crs_pair = {"src_wkt": src_crs.to_wkt(), "dst_wkt": dst_crs.to_wkt()}
    if overlap_fraction(info, grid, **crs_pair) == 0.0:
        raise InputDataError(f"{info.path}: raster does not overlap the analysis grid ({grid.describe()})")
    func = _sample_window if rs in (Resampling.nearest, Resampling.bilinear) else _warp_window
    return grid_blocks(func, grid, np.float32, info.path, band, rs.value, info.nodata,
                       name=f"read-{Path(info.path).stem}", **crs_pair)


@lru_cache(maxsize=32)
def _transformer(dst_wkt: str, src_wkt: str) -> Transformer | None:
    src, dst = CRS.from_wkt(src_wkt), CRS.from_wkt(dst_wkt)
    if src == dst:
        return None
    return Transformer.from_crs(dst, src, always_xy=True)


#: Edge, in source pixels, of the pieces a chunk's source footprint is read in: a source much finer than the grid
#: (a 30 m DEM sampled onto a 1 km grid) would otherwise be read whole behind every chunk, so memory would follow
#: the source's resolution instead of the chunk size.
SOURCE_PIECE = 4096


def _sample_window(grid: Grid, window: Window, path: str, band: int, resampling: int, nodata: float | None,
                   src_wkt: str | None = None, dst_wkt: str | None = None):
    """Exact nearest/bilinear sampling of the source at the window's cell centres.

    The source pixels needed are read in pieces of at most ``SOURCE_PIECE``² (+1 for bilinear's neighbours), so
    memory is bounded whatever the source's resolution. ``src_wkt``/``dst_wkt`` replace the file's and the grid's
    CRS in the transformation (a declared datum shift, ``rasters.datum.declared_shift``).
    """
    h, w = int(window.height), int(window.width)
    out = np.full((h, w), np.nan, dtype=np.float32)
    bilinear = Resampling(resampling) == Resampling.bilinear
    try:
        with rasterio.open(path) as src:
            tr = _transformer(dst_wkt or grid.crs, src_wkt or src.crs.to_wkt())
            t = src.transform
            offset = _aligned_offset(grid, t) if tr is None else None
            if offset is not None:
                return _read_aligned(src, band, nodata, window, offset, out)
            rows, cols = np.mgrid[0:h, 0:w]
            x, y = grid.xy_of_cells(rows + window.row_off, cols + window.col_off)
            if tr is not None:
                x, y = tr.transform(x, y, errcheck=False)
            fc, fr = (x - t.c) / t.a, (y - t.f) / t.e  # fractional source pixel coordinates
            inside = (fc >= 0) & (fc < src.width) & (fr >= 0) & (fr < src.height) & np.isfinite(fc) & np.isfinite(fr)
            if not inside.any():
                return out
            fc, fr = fc[inside], fr[inside]
            if bilinear:  # on pixel centres: the 2x2 neighbourhood starts at floor(f - 0.5)
                fx, fy = fc - 0.5, fr - 0.5
            else:
                fx, fy = fc, fr
            x0, y0 = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
            bx, by = x0.min(), y0.min()
            piece = (y0 - by) // SOURCE_PIECE * (1 << 32) + (x0 - bx) // SOURCE_PIECE
            vals = np.full(fx.shape, np.nan, np.float64)
            order = np.argsort(piece, kind="stable")
            keys, starts = np.unique(piece[order], return_index=True)
            bounds = np.append(starts, len(order))
            for k, key in enumerate(keys):
                idx = order[bounds[k]: bounds[k + 1]]
                pr, pc = divmod(int(key), 1 << 32)
                r_lo, c_lo = by + pr * SOURCE_PIECE, bx + pc * SOURCE_PIECE
                r_hi, c_hi = r_lo + SOURCE_PIECE + 1, c_lo + SOURCE_PIECE + 1  # +1: bilinear's far neighbours
                r_lo, c_lo = max(r_lo, 0), max(c_lo, 0)
                r_hi, c_hi = min(r_hi, src.height), min(c_hi, src.width)
                a = src.read(band, window=Window(c_lo, r_lo, c_hi - c_lo, r_hi - r_lo), out_dtype=np.float32)
                if nodata is not None:
                    a[a == np.float32(nodata)] = np.nan
                vals[idx] = _sample_piece(a, r_lo, c_lo, fx[idx], fy[idx], x0[idx], y0[idx], bilinear)
    except (RasterioIOError, RasterioError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputDataError(f"{path}: cannot read the block for grid window {window.flatten()} ({msg})") from None
    out[inside] = vals.astype(np.float32)
    return out


def _aligned_offset(grid: Grid, t) -> tuple[int, int] | None:
    """``(row, col)`` of the grid's top-left cell in the source when both share the CRS, the cell size and the
    cell edges (a whole number of cells apart, to 1e-6 of a cell); else None.

    On such a grid nearest and bilinear sampling at cell centres both return the source's own values, so the
    window can be read directly: no coordinates, no gather (the cache's entries, a DEM already on the grid).
    """
    g = grid.transform
    if t.b != 0 or t.d != 0 or abs(g.a - t.a) > 1e-9 * abs(t.a) or abs(g.e - t.e) > 1e-9 * abs(t.e):
        return None
    c, r = (g.c - t.c) / t.a, (g.f - t.f) / t.e
    rc, rr = round(c), round(r)
    if abs(c - rc) > 1e-6 or abs(r - rr) > 1e-6:
        return None
    return rr, rc


def _read_aligned(src, band: int, nodata: float | None, window: Window, offset: tuple[int, int],
                  out: np.ndarray) -> np.ndarray:
    """Fill ``out`` (NaN already) with the source pixels under ``window`` on an aligned grid (``_aligned_offset``);
    cells off the source stay NaN."""
    h, w = out.shape
    r0, c0 = offset[0] + int(window.row_off), offset[1] + int(window.col_off)
    r_lo, c_lo = max(r0, 0), max(c0, 0)
    r_hi, c_hi = min(r0 + h, src.height), min(c0 + w, src.width)
    if r_lo >= r_hi or c_lo >= c_hi:
        return out
    a = src.read(band, window=Window(c_lo, r_lo, c_hi - c_lo, r_hi - r_lo), out_dtype=np.float32)
    if nodata is not None:
        a[a == np.float32(nodata)] = np.nan
    out[r_lo - r0: r_hi - r0, c_lo - c0: c_hi - c0] = a
    return out


def _sample_piece(a, r_lo, c_lo, fx, fy, x0, y0, bilinear: bool) -> np.ndarray:
    """Values at fractional pixel positions from the piece ``a`` whose top-left source pixel is (r_lo, c_lo).

    Nearest: the pixel containing the point. Bilinear: the four pixel centres around it, weights renormalised
    over the neighbours that exist and are not nodata (as GDAL's warper does with nodata).
    """
    if not bilinear:
        return a[y0 - r_lo, x0 - c_lo].astype(np.float64)
    wx, wy = fx - x0, fy - y0
    acc = np.zeros(fx.shape, np.float64)
    wsum = np.zeros(fx.shape, np.float64)
    for dy, dx, wgt in ((0, 0, (1 - wx) * (1 - wy)), (0, 1, wx * (1 - wy)), (1, 0, (1 - wx) * wy), (1, 1, wx * wy)):
        yy, xx = y0 + dy - r_lo, x0 + dx - c_lo
        ok = (yy >= 0) & (yy < a.shape[0]) & (xx >= 0) & (xx < a.shape[1])
        v = np.full(fx.shape, np.nan, np.float64)
        v[ok] = a[yy[ok], xx[ok]]
        ok &= ~np.isnan(v) & (wgt > 0)
        acc[ok] += wgt[ok] * v[ok]
        wsum[ok] += wgt[ok]
    vals = np.full(fx.shape, np.nan, np.float64)
    good = wsum > 1e-9
    vals[good] = acc[good] / wsum[good]
    return vals


def _warp_window(grid: Grid, window: Window, path: str, band: int, resampling: int, nodata: float | None,
                 src_wkt: str | None = None, dst_wkt: str | None = None):
    out = np.full((int(window.height), int(window.width)), np.nan, dtype=np.float32)
    try:
        with rasterio.Env(GDAL_NUM_THREADS=1), rasterio.open(path) as src, warnings.catch_warnings():
            # GDAL's warper treats the destination ndarray as a dataset without georeferencing and says so;
            # the transform is passed explicitly, so the warning is noise.
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            if src_wkt is not None:
                # A declared datum shift. rasterio's reproject takes a band's CRS from its dataset and ignores
                # src_crs (measured: no shift at all); a WarpedVRT honours it, and GDAL reads only the source
                # blocks the window needs.
                with WarpedVRT(src, src_crs=RioCRS.from_wkt(src_wkt), crs=RioCRS.from_wkt(dst_wkt or grid.crs),
                               transform=grid.window_transform(window), width=out.shape[1], height=out.shape[0],
                               resampling=Resampling(resampling), src_nodata=nodata, nodata=np.nan,
                               dtype="float32") as vrt:
                    return vrt.read(band)
            reproject(
                source=rasterio.band(src, band),
                destination=out,
                src_nodata=nodata,
                dst_transform=grid.window_transform(window),
                dst_crs=grid.rio_crs,
                dst_nodata=np.nan,
                resampling=Resampling(resampling),
                init_dest_nodata=True,
            )
    except (RasterioIOError, RasterioError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputDataError(f"{path}: cannot read the block for grid window {window.flatten()} ({msg})") from None
    return out


# ------------------------------------------------------------------------------------------------ writing
@dataclass
class RasterOutput:
    """One raster to write: the lazy array, where, and how to describe it."""

    array: da.Array
    path: Path
    description: str = ""
    units: str = ""
    nodata: float | int | None = None
    categorical: bool = False
    tags: dict[str, str] = field(default_factory=dict)


class _Target:
    """The writable end of one output for ``dask.array.store``.

    Deliberately a plain class, not a dataclass: dask looks inside dataclasses (and lists, dicts) for dask
    collections, and this object refers to the output's own dask array. As a dataclass, every store task
    depended on the whole array, which was then held in memory until the end: memory grew with the raster
    (about one block per block written), not with the chunk size.
    """

    __slots__ = ("out", "tmp", "dataset", "lock", "cog_tmp")

    def __init__(self, out: RasterOutput, tmp: Path, dataset: Any, lock: threading.Lock,
                 cog_tmp: Path | None = None):
        self.out, self.tmp, self.dataset, self.lock, self.cog_tmp = out, tmp, dataset, lock, cog_tmp

    def __setitem__(self, key: tuple[slice, slice], block: np.ndarray) -> None:
        rows, cols = key
        window = Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
        with self.lock:
            self.dataset.write(block, 1, window=window)


def _profile(grid: Grid, dtype: np.dtype, nodata) -> dict:
    base = FLOAT_PROFILE if np.issubdtype(dtype, np.floating) else INT_PROFILE
    tiled = grid.width > BLOCK or grid.height > BLOCK
    return {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": 1,
        "dtype": dtype.name,
        "crs": grid.rio_crs,
        "transform": grid.transform,
        "nodata": nodata,
        "tiled": tiled,
        **({"blockxsize": BLOCK, "blockysize": BLOCK} if tiled else {}),
        "BIGTIFF": "IF_SAFER",
        **base,
    }


def _block_stats(block: np.ndarray, nodata) -> np.ndarray:
    """[count, sum, sum of squares, min, max] of a block's valid cells (float64; ``rasters.kernels``)."""
    return block_moments(block, nodata)


def _merge_stats(parts: list[np.ndarray]) -> dict[str, float]:
    p = np.stack(parts)
    return {"count": p[:, 0].sum(), "sum": p[:, 1].sum(), "sumsq": p[:, 2].sum(), "min": p[:, 3].min(),
            "max": p[:, 4].max()}


def _store_graph(arr: da.Array, target: _Target) -> da.Array:
    """Lazy (block rows, block columns, 5) array: each task writes one block of ``arr`` into ``target`` and returns
    its ``_block_stats``, so the write and the statistics take one pass over each block.

    Not ``da.store(compute=False)``: dask 2026.8 gives each store its own copy of the stored array's graph (keys
    renamed per store), so every block read, transform and overlay shared by two outputs, or by an output and its
    statistics, ran once per consumer: measured on the warm 90 m rerun, every criterion block was read 3 times.
    ``map_blocks`` keeps the array's keys, so shared work runs once.
    """
    nr, nc = len(arr.chunks[0]), len(arr.chunks[1])
    return arr.map_blocks(_store_block, target, dtype=np.float64, chunks=((1,) * nr, (1,) * nc, (5,)), new_axis=2,
                          name=f"store-{target.tmp.name}-{uuid.uuid4().hex}")


def _store_block(block: np.ndarray, target: _Target, block_info=None) -> np.ndarray:
    (r0, r1), (c0, c1) = block_info[0]["array-location"]
    target[slice(r0, r1), slice(c0, c1)] = block
    return _block_stats(block, target.out.nodata)[None, None, :]


def _stats_tags(s: dict[str, Any], ncells: int) -> dict[str, str]:
    n = int(s["count"])
    if n == 0:
        return {"STATISTICS_VALID_PERCENT": "0"}
    mean = float(s["sum"]) / n
    var = max(0.0, float(s["sumsq"]) / n - mean * mean)
    return {
        "STATISTICS_MINIMUM": repr(float(s["min"])),
        "STATISTICS_MAXIMUM": repr(float(s["max"])),
        "STATISTICS_MEAN": repr(mean),
        "STATISTICS_STDDEV": repr(math.sqrt(var)),
        "STATISTICS_VALID_PERCENT": repr(100.0 * n / ncells),
    }


def write_many(
    outputs: Sequence[RasterOutput], grid: Grid, extra: Sequence[Any] = (), cog: bool = True
) -> tuple[list[dict], list]:
    """Write every output in one ``dask.compute`` (shared intermediates computed once), atomically.

    Each output becomes a Cloud Optimized GeoTIFF (ZSTD, 256-cell tiles, overviews averaged for continuous
    data and nearest for classes) with exact statistics, nodata, band description and units; ``cog=False``
    writes a plain tiled GeoTIFF without overviews (for intermediate files).

    ``extra`` lazy objects (e.g. zonal sums) are computed in the same pass and returned.
    Returns (statistics per output, computed extras).
    """
    seen: set[Path] = set()
    for o in outputs:
        if o.array.shape != grid.shape:
            raise ValueError(f"{o.path}: array shape {o.array.shape} is not the grid shape {grid.shape}")
        if o.path.resolve() in seen:
            raise ConfigError(f"{o.path}: two outputs would be written to the same file")
        seen.add(o.path.resolve())
    targets: list[_Target] = []
    kind = scheduler_kind()
    try:
        stores, arrays = [], []
        for o in outputs:
            tmp = temp_beside(o.path, ".tmp.tif")
            arr = o.array.rechunk(grid.chunks)
            ds = rasterio.open(tmp, "w", **_profile(grid, arr.dtype, o.nodata))
            t = _Target(o, Path(tmp), ds, threading.Lock())
            targets.append(t)
            arrays.append(arr)
            if kind == "threads":
                stores.append(_store_graph(arr, t))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if kind == "threads":
                # One dask.compute of arrays only: dask optimizes them together, so work shared by several
                # outputs and extras runs once (a collection passed into a dask.delayed is optimized, and its keys
                # renamed, on its own: each output then recomputed all it shared). Delayed extras ride along as
                # 0-d object arrays; all-array lists also come back in order (dask 2026.8 swapped results of
                # mixed lists of arrays and delayed objects).
                ns = len(stores)
                got = dask.compute(*stores, *_extras_as_arrays(extra))
                stats_done = [_merge_stats(list(s.reshape(-1, 5))) for s in got[:ns]]
                extra_done = _extras_done(extra, got[ns:])
            elif kind == "distributed":
                stats_done, extra_done = _write_distributed(arrays, targets, list(extra))
            else:
                stats_done, extra_done = _write_batched(arrays, targets, list(extra))
        results = [_stats_tags(s, grid.width * grid.height) for s in stats_done]
        finished = _finish_all(targets, grid, results, cog)
        # Only when every output is complete do they take their final names.
        for t, done in zip(targets, finished, strict=True):
            os.replace(done, t.out.path)
        return results, list(extra_done)
    finally:
        for t in targets:
            if not t.dataset.closed:
                t.dataset.close()
            for p in (t.tmp, t.cog_tmp):
                if p is not None and p.exists():
                    p.unlink()


def scheduler_kind() -> str:
    """``threads`` when tasks run in this process (threads or synchronous), so they may write into a dataset
    open here; ``distributed`` for a ``dask.distributed`` client; ``processes`` for anything else."""
    get = dask.base.get_scheduler()
    if get is None or get in (dask.threaded.get, dask.local.get_sync):
        return "threads"
    client = getattr(get, "__self__", None)
    if client is not None and type(client).__module__.startswith("distributed"):
        return "distributed"
    return "processes"


def _extras_as_arrays(extra: Sequence[Any]) -> list[da.Array]:
    """``write_many``'s extras as dask arrays (a Delayed becomes a 0-d object array), so that they are optimized with
    the outputs' arrays: a collection passed into a dask.delayed, or optimized on its own, gets its own copy (keys
    renamed) of the graph it shares with the outputs, which then runs twice."""
    return [e if isinstance(e, da.Array) else da.from_delayed(e, shape=(), dtype=object) for e in extra]


def _extras_done(extra: Sequence[Any], got: Sequence[Any]) -> list:
    """Computed extras as the caller gave them: a Delayed's value, not the 0-d array it rode in."""
    return [g[()] if not isinstance(e, da.Array) and isinstance(g, np.ndarray) and g.ndim == 0 else g
            for e, g in zip(extra, got, strict=True)]


def _optimized_together(arrays: Sequence[da.Array]) -> list[da.Array]:
    """The same arrays, on ONE graph optimized for all their keys at once (keys of the arrays kept).

    The distributed and processes paths compute blocks, not arrays, so they optimize before splitting. Not
    ``dask.optimize(*arrays)``: in dask 2026.8 it optimizes each array on its own, and blockwise fusion then copies
    every layer two outputs share into each output's fused tasks under new names. Measured on a 2-worker
    LocalCluster (the SYNTHETIC 180 m province): the weighted sum behind both the suitability and its classes ran
    twice per block, with what was fused into it (the relief filter), and the extra counting the DEM's valid cells
    read every DEM block once more. Optimizing the merged graph with every array's keys, as ``dask.compute`` of
    several arrays does, keeps a shared layer one task per block.
    """
    if not arrays:
        return []
    graph = HighLevelGraph.merge(*(a.__dask_graph__() for a in arrays))
    opt = arrays[0].__dask_optimize__(graph, [a.__dask_keys__() for a in arrays])
    name = f"write-together-{uuid.uuid4().hex}"
    hlg = HighLevelGraph.from_collections(name, opt, dependencies=())
    return [da.Array(hlg, a.name, a.chunks, meta=a._meta) for a in arrays]


def _blocks_and_extras(arrays: Sequence[da.Array], extra: Sequence[Any]) -> tuple[list, list[da.Array]]:
    """The outputs' blocks (:func:`_block_items`) and the extras as arrays, all on one optimized graph."""
    together = _optimized_together([*arrays, *_extras_as_arrays(extra)])
    return (_block_items(together[: len(arrays)]) if arrays else []), together[len(arrays):]


def _block_items(arrays: Sequence[da.Array]) -> list[tuple[int, tuple[int, int], Window, Any]]:
    """(output index, block index, window, delayed block), block position by block position, so the
    blocks of all outputs at one place (which share their intermediates) are asked for together.

    ``arrays`` come from :func:`_optimized_together`; they are split into blocks without optimizing again (each
    output on its own would get a private copy of all it shares with the others)."""
    items = []
    delayed = []
    for a in arrays:
        graph = a.__dask_graph__()
        (layer,) = graph.layers  # the one layer of _optimized_together
        delayed.append([[Delayed(k, graph, layer=layer) for k in row] for row in a.__dask_keys__()])
    chunks = arrays[0].chunks
    r_off = np.concatenate([[0], np.cumsum(chunks[0])])
    c_off = np.concatenate([[0], np.cumsum(chunks[1])])
    for i in range(len(chunks[0])):
        for j in range(len(chunks[1])):
            window = Window(int(c_off[j]), int(r_off[i]), chunks[1][j], chunks[0][i])
            for n, d in enumerate(delayed):
                items.append((n, (i, j), window, d[i][j]))
    return items


def _client_write(targets: Sequence[_Target], stats: list[dict], n: int, ij, window: Window, block) -> None:
    """Write one computed block into its output (in this process) and keep its statistics."""
    block = np.asarray(block)
    t = targets[n]
    t.dataset.write(block, 1, window=window)
    stats[n][ij] = _block_stats(block, t.out.nodata)


def _merged(arrays: Sequence[da.Array], stats: list[dict]) -> list[dict]:
    # The same order of summation as the threaded path's graph (row-major blocks), hence the same bits.
    return [_merge_stats([s[i, j] for i in range(a.numblocks[0]) for j in range(a.numblocks[1])])
            for a, s in zip(arrays, stats, strict=True)]


#: Called as ``block_progress(done, total)`` after each block written on the distributed and processes paths,
#: where dask's local progress bar sees nothing (set by the command line; None = silent).
block_progress: Callable[[int, int], None] | None = None


def _write_distributed(arrays: Sequence[da.Array], targets: Sequence[_Target], extra: list) -> tuple[list, list]:
    """Blocks computed on the cluster's workers, written here as they complete (GeoTIFF takes one writer).

    One ``client.compute`` of every block (and the extras) keeps intermediates shared between outputs computed
    once; each block is fetched, written and released as soon as it is done, so this process holds one block
    at a time and the cluster holds only blocks not yet written.
    """
    from distributed import as_completed, default_client

    client = default_client()
    items, extra_arrays = _blocks_and_extras(arrays, extra)
    # Already optimized, as one graph: optimizing again would optimize each block and each extra on its own.
    futures = client.compute([it[3] for it in items] + extra_arrays, optimize_graph=False)
    block_futs, extra_futs = futures[: len(items)], futures[len(items):]
    where = {f.key: it[:3] for f, it in zip(block_futs, items, strict=True)}
    stats: list[dict] = [{} for _ in arrays]
    try:
        total = len(block_futs)
        for done, fut in enumerate(as_completed(block_futs), start=1):
            n, ij, window = where.pop(fut.key)
            _client_write(targets, stats, n, ij, window, fut.result())
            fut.release()
            if block_progress is not None:
                block_progress(done, total)
        extra_done = _extras_done(extra, client.gather(extra_futs))
    except BaseException:
        # Releasing (not client.cancel) lets the scheduler drop the rest: in distributed 2026.8 cancelling a
        # future whose task feeds unrequested tasks (a block also summed into an extra) fails an assertion in
        # the scheduler (stimulus_cancel: assert ts.who_wants) and drops the client's connection.
        for f in futures:
            f.release()
        raise
    return _merged(arrays, stats), list(extra_done)


#: bytes of output blocks computed per batch on the processes scheduler
BATCH_BYTES = 512 * 2**20


def _write_batched(arrays: Sequence[da.Array], targets: Sequence[_Target], extra: list) -> tuple[list, list]:
    """Blocks computed by a process pool in batches of block positions, written here.

    The process pool's workers cannot write into a dataset open in this process, and the local process
    scheduler returns every result to this process anyway; batches bound how many blocks are held here.
    Intermediates reaching across blocks (distance strips, travel-time tiles) may be recomputed for each batch:
    for large runs on several processes use ``local_cluster``, which computes everything in one graph.
    """
    items, extra_arrays = _blocks_and_extras(arrays, extra)
    per_item = max((a.dtype.itemsize * max(a.chunks[0]) * max(a.chunks[1]) for a in arrays), default=1)
    size = max(1, BATCH_BYTES // per_item)
    stats: list[dict] = [{} for _ in arrays]
    extra_done: list = []
    first = True
    for b0 in range(0, max(len(items), 1), size):
        batch = items[b0 : b0 + size]
        got = dask.compute([it[3] for it in batch], extra_arrays if first else [], optimize_graph=False)
        for it, block in zip(batch, got[0], strict=True):
            _client_write(targets, stats, it[0], it[1], it[2], block)
        if block_progress is not None:
            block_progress(min(b0 + size, len(items)), len(items))
        if first:
            extra_done = _extras_done(extra, got[1])
            first = False
    return _merged(arrays, stats), extra_done


def _finish_all(targets: Sequence[_Target], grid: Grid, stats: Sequence[dict[str, str]], cog: bool) -> list[Path]:
    """``_finish`` every target; the COG conversions run side by side (as many at once as there are cores).

    GDAL builds a COG's overviews on one thread, so converting one file at a time left a core idle much of the
    time. Measured on 2 cores: four 128 M-cell float layers took 22.6 s one after the other, 17.1 s two at a time
    with NUM_THREADS=ALL_CPUS each, 13.8 s two at a time with one thread each; the 90 m warm rerun's two outputs
    (float score, uint8 classes) 11.4 s one after the other, 10.9 s side by side with ALL_CPUS, 12.6-15.4 s side by
    side with one thread. Hence: one GDAL thread each when there are more outputs than cores, else ALL_CPUS. Every
    conversion still finishes (or fails) before any output takes its final name.
    """
    cpus = os.cpu_count() or 1
    workers = min(len(targets), cpus) if cog else 1
    if workers <= 1:
        return [_finish(t, grid, s, cog) for t, s in zip(targets, stats, strict=True)]
    gdal_threads = "1" if len(targets) > cpus else "ALL_CPUS"
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(_finish, t, grid, s, cog, gdal_threads) for t, s in zip(targets, stats, strict=True)]
        wait(futures)
    return [f.result() for f in futures]  # the first failure, if any, is raised here


def _finish(t: _Target, grid: Grid, stats: dict[str, str], cog: bool, gdal_threads: str = "ALL_CPUS") -> Path:
    """Add statistics and metadata, then make the Cloud Optimized GeoTIFF; return the finished temporary file."""
    ds, o = t.dataset, t.out
    ds.update_tags(1, **stats)
    if o.tags:
        ds.update_tags(**o.tags)
    if o.description:
        ds.set_band_description(1, o.description)
    if o.units:
        ds.set_band_unit(1, o.units)
    ds.close()
    if not cog:
        return t.tmp
    # GDAL's COG driver lays out IFDs and overviews first so QGIS (and HTTP range readers) fetch only what they
    # show. Measured here: letting it build the overviews costs less than building them in the GTiff first.
    t.cog_tmp = t.tmp.with_name(t.tmp.name.replace(".tmp.tif", ".cog.tmp.tif"))
    rasterio.shutil.copy(
        t.tmp, t.cog_tmp, driver="COG", COMPRESS="ZSTD", LEVEL=1, PREDICTOR="YES", BLOCKSIZE=BLOCK,
        RESAMPLING="NEAREST" if o.categorical else "AVERAGE", BIGTIFF="IF_SAFER", NUM_THREADS=gdal_threads,
    )
    t.tmp.unlink()
    return t.cog_tmp


def write(array: da.Array | np.ndarray, grid: Grid, path: str | os.PathLike, **meta: Any) -> dict:
    """Write one array on ``grid`` to ``path`` as a Cloud Optimized GeoTIFF with statistics and overviews.

    ``meta``: ``description``, ``units``, ``nodata``, ``categorical``, ``tags`` (see ``RasterOutput``).
    Float arrays get nodata NaN unless told otherwise. Returns the statistics written.
    """
    arr = da.asarray(array).rechunk(grid.chunks) if not isinstance(array, da.Array) else array
    if "nodata" not in meta and np.issubdtype(arr.dtype, np.floating):
        meta["nodata"] = float("nan")
    stats, _ = write_many([RasterOutput(arr, Path(path), **meta)], grid)
    return stats[0]
