"""Zonal statistics for many polygon zones vs a single numpy ``bincount`` pass over the same cells.

SYNTHETIC data, deterministic: an ``--size``² float32 grid (default 8192², 90 m cells in the Qinghai Albers
CRS) of smooth terrain-like values (``_common.synthetic_dem`` rescaled to 0..1, 2 % of cells NaN) and
``--zones`` Voronoi polygons of seeded random points (default 10,000), clipped to the grid: a partition whose
boundaries cut cells at arbitrary angles, so every zone has partial cells.

* baseline (same process, same cells): the zones burned once into an int32 label raster with GDAL's centre rule
  (not timed), then ONE ``np.bincount(labels, weights=values)`` — per-zone sums by the centre rule, the cheapest
  possible zonal sum, no partial cells, no NaN handling, no quantiles.
* ours: ``suitability.zonal.zonal_stats`` on the dask array (chunks of ``--chunk``), threaded scheduler: exact
  coverage fractions, area-weighted mean, histogram median and p90 (256 bins), min/max, excluded share.

Prints both times, the speed ratio (bincount time / our time; the goal is >= 0.5) and peak RSS.

    python benchmarks/bench_zonal.py [--size 8192] [--zones 10000] [--chunk 1024] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import geopandas as gpd  # noqa: E402
import numpy as np  # noqa: E402
import shapely  # noqa: E402
from _common import machine, peak_rss_mib, synthetic_dem  # noqa: E402
from affine import Affine  # noqa: E402
from rasterio.errors import NotGeoreferencedWarning  # noqa: E402
from rasterio.features import rasterize  # noqa: E402

from rasters.grid import Grid  # noqa: E402
from suitability.zonal import zonal_stats  # noqa: E402

ALBERS = "+proj=aea +lat_0=35 +lon_0=96 +lat_1=33 +lat_2=38 +ellps=GRS80 +units=m +no_defs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=8192)
    ap.add_argument("--zones", type=int, default=10_000)
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    n, res = args.size, 90.0
    grid = Grid(ALBERS, Affine(res, 0, -400_000, 0, -res, 4_000_000), n, n, args.chunk)
    print(f"machine: {machine()}")
    print(f"SYNTHETIC grid {n}x{n} ({n * n / 1e6:.0f} M cells), {args.zones} Voronoi zones, chunks {args.chunk}")

    t0 = time.perf_counter()
    values = synthetic_dem(n, args.seed)
    values -= values.min()
    values /= values.max()
    rng = np.random.default_rng(args.seed)
    values[rng.random((n, n), dtype=np.float32) < 0.02] = np.nan
    xmin, ymin, xmax, ymax = grid.bounds
    pts = shapely.points(rng.uniform(xmin, xmax, args.zones), rng.uniform(ymin, ymax, args.zones))
    box = shapely.box(xmin, ymin, xmax, ymax)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=box))
    cells = shapely.intersection(cells, box)
    zones = gpd.GeoDataFrame({"zone": np.arange(len(cells))}, geometry=cells, crs=ALBERS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        labels = rasterize(zip(cells, range(1, len(cells) + 1), strict=True), out_shape=(n, n),
                           transform=grid.transform, dtype="int32")
    print(f"setup (data, zones, label raster for the baseline): {time.perf_counter() - t0:.1f} s")

    flat_labels, flat_values = labels.ravel(), np.nan_to_num(values.ravel())
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        sums = np.bincount(flat_labels, weights=flat_values, minlength=len(cells) + 1)
        times.append(time.perf_counter() - t0)
    t_bincount = min(times)
    del sums

    arr = da.from_array(values, chunks=args.chunk)
    with dask.config.set(scheduler="threads", num_workers=args.workers):
        zonal_stats(zones.iloc[:50], {"v": arr}, grid, ranges={"v": (0.0, 1.0)})  # numba compile, not timed
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            table = zonal_stats(zones, {"v": arr}, grid, ranges={"v": (0.0, 1.0)})
            times.append(time.perf_counter() - t0)
    t_ours = min(times)
    covered = table["area_km2"].sum() * 1e6 / (res * res)
    print(f"numpy bincount (centre rule, sums only, 1 thread): {t_bincount:.3f} s")
    print(f"zonal_stats (exact coverage, mean/median/p90/min/max/excluded, {args.workers} threads): {t_ours:.3f} s")
    print(f"ratio (bincount time / ours): {t_bincount / t_ours:.2f}  (goal >= 0.5)")
    print(f"check: covered cells {covered:,.1f} of {n * n:,}; zones with a mean {table['v_mean'].notna().sum()}")
    print(f"peak RSS: {peak_rss_mib():.0f} MiB (input {values.nbytes / 2**20:.0f} MiB + baseline labels "
          f"{labels.nbytes / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
