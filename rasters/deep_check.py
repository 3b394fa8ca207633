"""Read every block of a raster to find damage before a run starts (``suitability validate --deep``).

``rasters.io.inspect`` reads one block (the last) to catch a file cut short; a copy damaged in the middle, a bad
sector or a corrupt compressed tile only shows when that block is decoded, possibly an hour into a run. This
reads every internal block (tile or strip) of the band once, in the file's own block layout, so each block is
decoded exactly once and memory is one block.
"""

from __future__ import annotations

import os

import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window

from .errors import InputDataError
from .io import inspect


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def check_raster(path: str | os.PathLike, band: int = 1) -> int:
    """Decode every block of ``band``; return the number of blocks read.

    Raises ``InputDataError`` naming the file and the window (col_off, row_off, width, height in source pixels)
    of the first block that cannot be read, or the header problem ``rasters.io.inspect`` finds.
    """
    info = inspect(path, band)
    n = 0
    # GDAL's caches would otherwise hold blocks decoded earlier; checking must not fill memory.
    with rasterio.Env(GDAL_CACHEMAX=64), rasterio.open(info.path) as src:
        for _, window in src.block_windows(band):
            try:
                src.read(band, window=window)
            except RasterioError as e:
                raise InputDataError(f"{info.path}: band {band} block at window {_describe(window)} cannot be "
                                     f"read ({_first_line(e)})") from None
            n += 1
    return n


def _describe(w: Window) -> str:
    return f"col {int(w.col_off)}, row {int(w.row_off)}, {int(w.width)} x {int(w.height)} pixels"
