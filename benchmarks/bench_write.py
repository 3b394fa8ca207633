"""GeoTIFF writing: our writer (one dataset, dask store under a lock, ZSTD level 1 + floating-point predictor)
against DEFLATE with default options and against reopening the file per chunk (what rioxarray's dask writer does).

Run: .venv/bin/python benchmarks/bench_write.py [--size 4096]
Prints seconds, Mcells/s, file size and the ratio of each baseline's time to ours, plus peak RSS.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from pathlib import Path

import dask.array as da
import numpy as np
import rasterio
from rasterio.windows import Window

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._common import best_of, machine, peak_rss_mib, synthetic_dem  # noqa: E402
from rasters import io  # noqa: E402
from rasters.grid import Grid  # noqa: E402

ALBERS = "+proj=aea +lat_0=35 +lon_0=96 +lat_1=33 +lat_2=38 +ellps=GRS80 +units=m +no_defs"


def write_reopen_per_chunk(arr: da.Array, grid: Grid, path: Path, profile: dict) -> None:
    """Baseline: create the file, then every chunk task reopens it in r+ mode to write its window."""
    with rasterio.open(path, "w", **profile):
        pass
    lock = threading.Lock()

    class Target:
        def __setitem__(self, key, block):
            rows, cols = key
            with lock, rasterio.open(path, "r+") as ds:
                ds.write(block, 1, window=Window(cols.start, rows.start, cols.stop - cols.start,
                                                 rows.stop - rows.start))

    da.store(arr, Target(), lock=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=3)
    n = ap.parse_args().size
    repeat = ap.parse_args().repeat
    grid = Grid.from_bounds((0, 0, n * 30, n * 30), 30, ALBERS, chunk_size=1024)
    data = synthetic_dem(n)
    arr = da.from_array(data, chunks=grid.chunks)
    tmp = Path(tempfile.mkdtemp())
    base_profile = io._profile(grid, np.dtype("float32"), float("nan"))
    deflate = {**base_profile, "compress": "DEFLATE"}
    deflate.pop("zstd_level"), deflate.pop("predictor")

    results = {}
    results["ZSTD-1 + predictor 3, one dataset"] = best_of(
        lambda: _write_with(arr, grid, tmp / "zstd.tif", base_profile), repeat)
    results["DEFLATE default, one dataset"] = best_of(
        lambda: _write_with(arr, grid, tmp / "deflate.tif", deflate), repeat)
    results["ZSTD-1, reopen per chunk"] = best_of(
        lambda: write_reopen_per_chunk(arr, grid, tmp / "reopen.tif", base_profile), repeat)
    results["rasters.io.write (+stats, overviews)"] = best_of(lambda: io.write(arr, grid, tmp / "ours.tif"), repeat)
    sizes = dict(zip(results, ["zstd.tif", "deflate.tif", "reopen.tif", "ours.tif"], strict=True))
    ours = results["ZSTD-1 + predictor 3, one dataset"]
    print(f"GeoTIFF write, {n}x{n} float32 SYNTHETIC DEM, chunks 1024, on {machine()}")
    print("ratio = time / time of 'ZSTD-1 + predictor 3, one dataset' (the data path of rasters.io.write)")
    for k, t in results.items():
        size = (tmp / sizes[k]).stat().st_size / 2**20
        print(f"  {k:32s} {t:7.3f} s  {n * n / t / 1e6:7.1f} Mcells/s  {size:7.1f} MiB  ratio {t / ours:5.2f}x")
    print(f"  peak RSS {peak_rss_mib():.0f} MiB (input array itself {data.nbytes / 2**20:.0f} MiB)")


def _write_with(arr, grid, path, profile):
    with rasterio.open(path, "w", **profile) as ds:
        lock = threading.Lock()

        class T:
            def __setitem__(self, key, block):
                rows, cols = key
                with lock:
                    ds.write(block, 1, window=Window(cols.start, rows.start, cols.stop - cols.start,
                                                     rows.stop - rows.start))

        da.store(arr, T(), lock=False)


if __name__ == "__main__":
    main()
