"""Speed and memory of rasters.cost.travel_time against scikit-image's MCP_Geometric, run in the same process.

Data are SYNTHETIC and deterministic (seeded): a sinusoidal DEM (benchmarks._common.synthetic_dem) on a 30 m grid,
Tobler walking speed from its slope (numpy gradient), three straight "roads" at 60 km/h, a rectangular
"lake" barrier, and 50 destinations drawn with a fixed seed. Friction = 0.06 / speed (minutes per metre).

Measured (best of ``--repeat``, after a warm-up that compiles the numba kernel):
  * ``MCP_Geometric(friction, fully_connected=True, sampling=(30, 30)).find_costs(destinations)``;
  * our single-array numba kernel, ``travel_time(numpy friction, ...)``;
  * our tiled dask path, ``travel_time(dask friction, ...)`` + computing its three outputs on the threaded
    scheduler (border-exchange rounds run in this process; reported with the number of rounds and tile solves).
Prints Mcells/s, the ratio to MCP_Geometric, the largest relative difference between results, and the peak
RSS of the process after each stage (resource.getrusage; a high-water mark, so later stages include earlier).

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


def best(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


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

    f_mcp = np.where(np.isfinite(friction), friction, np.inf)

    def mcp():
        costs, _ = MCP_Geometric(f_mcp, fully_connected=True, sampling=(CELL_M, CELL_M)).find_costs(dest)
        return costs

    t_mcp, ref = best(mcp, a.repeat)
    rss_mcp = peak_rss_mib()
    t_np, res = best(lambda: travel_time(friction, dest, cell_size_m=CELL_M), a.repeat)
    rss_np = peak_rss_mib()

    dfr = da.from_array(friction, chunks=a.chunk)

    def tiled():
        r = travel_time(dfr, dest, cell_size_m=CELL_M)
        out = da.compute(r.minutes, r.allocation, r.backlink)
        return r, out

    with dask.config.set(scheduler="threads", num_workers=a.workers):
        t_da, (r_da, out_da) = best(tiled, a.repeat)
    rss_da = peak_rss_mib()

    ok = np.isfinite(ref)
    rel_np = float(np.max(np.abs(res.minutes[ok] - ref[ok]) / np.maximum(ref[ok], 1e-12)))
    same_da = bool(np.array_equal(out_da[0], res.minutes, equal_nan=True)
                   and np.array_equal(out_da[1], res.allocation) and np.array_equal(out_da[2], res.backlink))

    def row(name, t, rss):
        speed = cells / t / 1e6
        print(f"{name:<34} {t:8.3f} s {speed:8.2f} Mcells/s  x{t_mcp / t:5.2f} vs MCP  peak RSS {rss:6.0f} MiB")

    row("MCP_Geometric (skimage)", t_mcp, rss_mcp)
    row("travel_time numpy kernel", t_np, rss_np)
    row(f"travel_time dask {a.chunk}² x{a.workers} thr", t_da, rss_da)
    print(f"numpy kernel vs MCP: max relative difference {rel_np:.2e}; "
          f"dask == numpy (minutes, allocation, backlink): {same_da}; "
          f"dask rounds {r_da.rounds}, tile solves {r_da.tile_solves} (+{len(dfr.chunks[0]) * len(dfr.chunks[1])} "
          "in the final lazy pass)")


if __name__ == "__main__":
    main()
