"""Speed and memory of rasters.cost.travel_time against scikit-image's MCP_Geometric, run in the same process.

Data are SYNTHETIC and deterministic (seeded): a sinusoidal DEM (benchmarks._common.synthetic_dem) on a 30 m grid,
Tobler walking speed from its slope (numpy gradient), three straight "roads" at 60 km/h, a rectangular
"lake" barrier, and 50 destinations drawn with a fixed seed. Friction = 0.06 / speed (minutes per metre).

Measured (``--repeat`` times, the three stages alternating, after a warm-up that compiles the numba kernels;
medians of the per-repeat times and ratios are printed):
  * ``MCP_Geometric(friction, fully_connected=True, sampling=(30, 30)).find_costs(destinations)``;
  * our single-array numba kernel, ``travel_time(numpy friction, ...)``;
  * our tiled dask path, ``travel_time(dask friction, ...)`` + computing its three outputs on the threaded
    scheduler (border-exchange rounds run in this process; reported with the number of rounds and tile solves).
Prints Mcells/s, the ratio to MCP_Geometric, the largest relative difference between results, and the peak
RSS of the process after each stage of the first repeat (resource.getrusage; a high-water mark, so later stages
include earlier).

    python benchmarks/bench_cost.py [--size 2048|4096] [--chunk 512] [--workers 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import dask
import dask.array as da
import numpy as np
from skimage.graph import MCP_Geometric

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._common import machine, peak_rss_mib, synthetic_dem  # noqa: E402
from rasters.cost import travel_time  # noqa: E402
from rasters.friction import combine_speeds, tobler_speed_kmh  # noqa: E402

CELL_M = 30.0


def synthetic_friction(n: int, seed: int = 0) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """SYNTHETIC friction (min/m, float32) and 50 destinations; deterministic for a seed."""
    z = synthetic_dem(n, seed)
    gy, gx = np.gradient(z.astype(np.float64), CELL_M)
    slope_deg = np.degrees(np.arctan(np.hypot(gx, gy))).astype(np.float32)
    road = np.full((n, n), np.nan, np.float32)
    road[n // 3, :] = 60.0
    road[:, (2 * n) // 5] = 60.0
    i = np.arange(n)
    road[i, np.clip(n - 1 - i, 0, n - 1)] = 40.0
    lake = np.zeros((n, n), bool)
    lake[n // 2 : n // 2 + n // 8, n // 8 : n // 3] = True
    friction = combine_speeds(road, tobler_speed_kmh(slope_deg), lake)
    rng = np.random.default_rng(seed + 1)
    dest = []
    while len(dest) < 50:
        r, c = (int(v) for v in rng.integers(0, n, 2))
        if np.isfinite(friction[r, c]):
            dest.append((r, c))
    return friction, dest


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--chunk", type=int, default=512)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    n = a.size
    print(machine())
    friction, dest = synthetic_friction(n)
    cells = n * n
    print(f"SYNTHETIC friction {n} x {n} ({cells / 1e6:.1f} Mcells, {CELL_M:g} m), 50 destinations; "
          f"peak RSS after setup {peak_rss_mib():.0f} MiB")
    travel_time(friction[:64, :64], [(1, 1)], cell_size_m=CELL_M)  # compile
    travel_time(da.from_array(friction[:64, :64], chunks=32), [(1, 1)], cell_size_m=CELL_M).minutes.compute()

    f_mcp = np.where(np.isfinite(friction), friction, np.inf)
    dfr = da.from_array(friction, chunks=a.chunk)

    def mcp():
        costs, _ = MCP_Geometric(f_mcp, fully_connected=True, sampling=(CELL_M, CELL_M)).find_costs(dest)
        return costs

    def tiled():
        r = travel_time(dfr, dest, cell_size_m=CELL_M)
        return r, da.compute(r.minutes, r.allocation, r.backlink)

    # The three stages alternate within each repeat so that load from other processes on a shared machine hits
    # them alike; ratios are taken per repeat and their median reported. Peak RSS (a high-water mark) is read
    # after each stage of the first repeat.
    times = {"mcp": [], "np": [], "da": []}
    rss = {}
    with dask.config.set(scheduler="threads", num_workers=a.workers):
        for rep in range(a.repeat):
            t, ref = timed(mcp)
            times["mcp"].append(t)
            rss.setdefault("mcp", peak_rss_mib())
            t, res = timed(lambda: travel_time(friction, dest, cell_size_m=CELL_M))
            times["np"].append(t)
            rss.setdefault("np", peak_rss_mib())
            t, (r_da, out_da) = timed(tiled)
            times["da"].append(t)
            rss.setdefault("da", peak_rss_mib())
            print(f"  repeat {rep + 1}: MCP {times['mcp'][-1]:.3f} s, numpy kernel {times['np'][-1]:.3f} s, "
                  f"dask {times['da'][-1]:.3f} s")

    ok = np.isfinite(ref)
    rel_np = float(np.max(np.abs(res.minutes[ok] - ref[ok]) / np.maximum(ref[ok], 1e-12)))
    same_da = bool(np.array_equal(out_da[0], res.minutes, equal_nan=True)
                   and np.array_equal(out_da[1], res.allocation) and np.array_equal(out_da[2], res.backlink))
    t_mcp = np.asarray(times["mcp"])

    def row(name, key):
        t = np.asarray(times[key])
        ratio = float(np.median(t_mcp / t))
        speed = cells / float(np.median(t)) / 1e6
        print(f"{name:<34} {np.median(t):8.3f} s {speed:8.2f} Mcells/s  x{ratio:5.2f} vs MCP (median of "
              f"{len(t)})  peak RSS {rss[key]:6.0f} MiB")

    row("MCP_Geometric (skimage)", "mcp")
    row("travel_time numpy kernel", "np")
    row(f"travel_time dask {a.chunk}² x{a.workers} thr", "da")
    print(f"numpy kernel vs MCP: max relative difference {rel_np:.2e}; "
          f"dask == numpy (minutes, allocation, backlink): {same_da}; "
          f"dask rounds {r_da.rounds}, tile solves {r_da.tile_solves} (+{len(dfr.chunks[0]) * len(dfr.chunks[1])} "
          "in the final lazy pass, served from the kept tile states)")


if __name__ == "__main__":
    main()
