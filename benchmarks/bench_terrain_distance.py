"""Speed and memory of rasters.terrain.slope and rasters.distance.euclidean_distance against baselines run here.

Data are SYNTHETIC and deterministic (seeded): a 4096 x 4096 float32 DEM made of sinusoidal ridges plus seeded
noise on a 30 m UTM grid, and a sparse feature mask (seeded random points plus a few straight "river" lines).

Baselines, measured in the same process on the same data:
  * slope: a plain vectorised numpy Horn slope (float32 slices of an edge-padded array, np.arctan/np.hypot);
  * distance: scipy.ndimage.distance_transform_edt (single-threaded by construction).

Prints Mcells/s, the ratio to the baseline, and the peak RSS of the process (resource.getrusage). Timings are
best of ``--repeat`` runs after a warm-up that compiles the numba kernels. Usage:

    python benchmarks/bench_terrain_distance.py [--size 4096] [--chunk 1024] [--workers 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import dask
import dask.array as da
import numpy as np
from scipy import ndimage

from rasters.distance import euclidean_distance
from rasters.grid import Grid
from rasters.terrain import slope


def synthetic_dem(n: int, seed: int = 42) -> np.ndarray:
    """SYNTHETIC terrain: ridges + valleys (sinusoids) + seeded noise, metres."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n].astype(np.float32) / np.float32(n)
    z = 3000 + 800 * np.sin(6.0 * x) * np.cos(4.0 * y) + 200 * np.sin(31.0 * x + 17.0 * y)
    return (z + rng.normal(0, 2.0, (n, n))).astype(np.float32)


def synthetic_features(n: int, seed: int = 7) -> np.ndarray:
    """SYNTHETIC features: ~1 point per 20 000 cells plus three straight lines."""
    rng = np.random.default_rng(seed)
    f = rng.random((n, n)) < 5e-5
    f[n // 3, : n // 2] = True
    f[:, (2 * n) // 3] = False
    f[n // 5 : n // 2, (3 * n) // 4] = True
    idx = np.arange(n // 2)
    f[n // 2 + idx // 2, idx] = True
    return f


def numpy_horn_slope(z: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Baseline: textbook vectorised Horn slope in degrees (edges by replication)."""
    p = np.pad(z, 1, mode="edge")
    a, b, c = p[:-2, :-2], p[:-2, 1:-1], p[:-2, 2:]
    d, f = p[1:-1, :-2], p[1:-1, 2:]
    g, h, i = p[2:, :-2], p[2:, 1:-1], p[2:, 2:]
    dzdx = ((c + 2 * f + i) - (a + 2 * d + g)) / np.float32(8 * dx)
    dzdy = ((g + 2 * h + i) - (a + 2 * b + c)) / np.float32(8 * dy)
    return np.degrees(np.arctan(np.hypot(dzdx, dzdy))).astype(np.float32)


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    n = args.size
    x0, y0 = 390000.0, 3990000.0  # whole multiples of 30 m, so the grid is exactly n x n
    grid = Grid.from_bounds((x0, y0, x0 + 30 * n, y0 + 30 * n), 30.0, "EPSG:32647", chunk_size=args.chunk)
    mcells = n * n / 1e6
    load = os.getloadavg()[0]
    print(f"load average before the run: {load:.2f} on {os.cpu_count()} CPUs (timings are noisy on a busy machine)")
    print(
        f"SYNTHETIC data: {n} x {n} float32 DEM and feature mask on a 30 m grid, chunks {args.chunk}, "
        f"{args.workers} dask threads, best of {args.repeat}"
    )

    # Warm-up: compile numba kernels (cached on disk after the first run) outside the timings.
    small = Grid.from_bounds((0, 0, 30 * 64, 30 * 64), 30.0, "EPSG:32647", chunk_size=32)
    slope(np.ones((64, 64), np.float32), small)
    euclidean_distance(np.eye(64, dtype=bool), small)
    euclidean_distance(np.eye(64, dtype=bool), small, max_m=300.0)

    dem = synthetic_dem(n)
    feats = synthetic_features(n)
    print(f"data built; peak RSS so far {peak_rss_mb():.0f} MB")

    with dask.config.set(scheduler="threads", num_workers=args.workers):
        t_np, ref = best_of(lambda: numpy_horn_slope(dem, 30.0, 30.0), args.repeat)
        t_one, ours1 = best_of(lambda: slope(dem, grid), args.repeat)
        ddem = da.from_array(dem, chunks=args.chunk)
        t_dask, ours = best_of(lambda: slope(ddem, grid).compute(), args.repeat)
        inner = (slice(1, -1), slice(1, -1))
        print(
            f"\nslope (degrees)   max |ours - numpy Horn| on interior cells: "
            f"{np.max(np.abs(ours[inner] - ref[inner])):.2e} deg"
        )
        print(f"  numpy Horn baseline       {t_np:7.3f} s  {mcells / t_np:8.1f} Mcells/s")
        print(f"  ours, numpy (1 thread)    {t_one:7.3f} s  {mcells / t_one:8.1f} Mcells/s  x{t_np / t_one:.2f}")
        print(f"  ours, dask                {t_dask:7.3f} s  {mcells / t_dask:8.1f} Mcells/s  x{t_np / t_dask:.2f}")
        print(f"  peak RSS {peak_rss_mb():.0f} MB")
        del ref, ours, ours1

        t_sp, ref = best_of(lambda: ndimage.distance_transform_edt(~feats, sampling=(30.0, 30.0)), args.repeat)
        t_one, ours1 = best_of(lambda: euclidean_distance(feats, grid), args.repeat)
        dfeat = da.from_array(feats, chunks=args.chunk)
        t_dask, ours = best_of(lambda: euclidean_distance(dfeat, grid).compute(), args.repeat)
        t_cap, capped = best_of(lambda: euclidean_distance(dfeat, grid, max_m=3000.0).compute(), args.repeat)
        rel = np.max(np.abs(ours - ref) / np.maximum(ref, 1.0))
        cap_err = np.max(np.abs(capped - np.minimum(ref, 3000.0)))
        print(f"\nEuclidean distance   max rel. error vs scipy {rel:.1e}; capped 3 km max abs error {cap_err:.1e} m")
        print(f"  scipy EDT baseline        {t_sp:7.3f} s  {mcells / t_sp:8.1f} Mcells/s")
        print(f"  ours, numpy (1 thread)    {t_one:7.3f} s  {mcells / t_one:8.1f} Mcells/s  x{t_sp / t_one:.2f}")
        print(f"  ours, dask exact          {t_dask:7.3f} s  {mcells / t_dask:8.1f} Mcells/s  x{t_sp / t_dask:.2f}")
        print(f"  ours, dask max_m=3 km     {t_cap:7.3f} s  {mcells / t_cap:8.1f} Mcells/s  x{t_sp / t_cap:.2f}")
        print(f"  peak RSS {peak_rss_mb():.0f} MB (process-wide, includes the baselines' full-size arrays)")


if __name__ == "__main__":
    main()
