"""Province-scale run on the SYNTHETIC Qinghai province: time, cells/s and peak memory at 90 m or 30 m.

Steps (all on the Albers grid of ``benchmarks/synth.py``, chunks of ``--chunk-size`` cells, ``--workers`` dask
threads):

0. generate the synthetic province with :func:`benchmarks.synth.make_province` (or reuse it: same version,
   resolution and seed);
1. ONE :func:`rasters.io.write_many` pass (a single ``dask.compute``) writing, as COGs:
   slope (degrees, Horn), local relief (metres, a ``--relief-m`` window), distance to rivers (metres, exact EDT),
   distance to lakes (metres, capped at ``--lake-cap-km``) and, when ``rasters.cost`` exists, the friction
   surface for travel time (min/m: rasterized road speeds, Tobler off-road walking speed from the slope, lakes as
   barriers);
2. travel time (minutes) to the nearest county seat with :func:`rasters.cost.travel_time` on that friction.
   It is a second pass because the tiled Dijkstra exchanges tile borders in rounds, each a ``dask.compute``
   that re-reads its friction tiles: reading them from the file written in pass 1 keeps memory bounded
   (``persist`` would hold the whole friction array in RAM, 4.6 GB at 30 m).

Prints, per pass, wall time, cells/s, and peak RSS (``resource.getrusage`` ``ru_maxrss``: the process's peak
so far, so monotone; plus a 0.2 s /proc sampler for the peak *within* each pass and the task kinds running at
that moment), and task-seconds per task kind from ``dask.diagnostics.Profiler`` (summed over threads; that is
how one ``dask.compute`` is split into steps honestly without running each step alone).

Baseline, measured in the same run: a plain vectorised numpy Horn slope (``bench_terrain_distance.
numpy_horn_slope``) on one 4096 × 4096 window of the same DEM, in memory, timed best of 3 and **extrapolated**
linearly to the whole grid. It is one layer of the five, with no I/O, so the ratio says how the whole chunked
pass (read, 5 layers, exact distances, COG writing, bounded memory) compares with computing just the slope the
naive way — a whole-grid numpy slope would not fit the memory target at 30 m in any case.

Usage::

    python benchmarks/bench_province.py --resolution-m 90 [--out /work/bench-out/province_90m] [--workers 2]
        [--chunk-size 1024] [--no-travel-time] [--seed 0]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import dask
import numpy as np
import rasterio
from dask.callbacks import Callback
from rasterio.windows import Window

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_terrain_distance import numpy_horn_slope  # noqa: E402
from benchmarks.synth import SYNTHETIC_TAGS, make_province, province_grid  # noqa: E402
from rasters.distance import euclidean_distance  # noqa: E402
from rasters.grid import Grid  # noqa: E402
from rasters.io import RasterOutput, read, write_many  # noqa: E402
from rasters.terrain import relief, slope  # noqa: E402
from vectors.io import read as read_vector  # noqa: E402
from vectors.rasterize import mask as vector_mask  # noqa: E402
from vectors.rasterize import rasterize  # noqa: E402

HAS_COST = importlib.util.find_spec("rasters.cost") is not None
MIB = 2**20


# ------------------------------------------------------------------------------------------------ measuring
def ru_maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB


class LogProgress(Callback):
    """Progress for log files: one line per 5 % of tasks done, with elapsed time and current RSS."""

    def __init__(self, label: str):
        super().__init__()
        self.label = label

    def _start_state(self, dsk, state):
        self.total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished")) or 1
        self.done = 0
        self.next_pct = 5
        self.t0 = self.last = time.perf_counter()

    def _posttask(self, key, result, dsk, state, worker_id):
        self.done += 1
        pct = 100 * self.done / self.total
        now = time.perf_counter()
        if pct >= self.next_pct and (now - self.last >= 5.0 or self.done == self.total):
            self.next_pct = 5 * (int(pct) // 5 + 1)
            self.last = now
            print(f"  [{self.label}] {pct:5.1f} % of {self.total} tasks, {time.perf_counter() - self.t0:7.1f} s, "
                  f"RSS {_rss_mib():6.0f} MiB", flush=True)


class Measure:
    """Wall time, a 0.2 s RSS sampler, a dask Profiler (task kinds) and progress lines around one pass."""

    def __init__(self, label: str, progress: bool = True):
        self.label = label
        self.progress = progress
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()

    def _sample(self):
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), _rss_mib()))
            self._stop.wait(0.2)

    def __enter__(self):
        from dask.diagnostics import Profiler

        self.prof = Profiler()
        self.prof.__enter__()
        self.bar = LogProgress(self.label) if self.progress else None
        if self.bar:
            self.bar.__enter__()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        self._stop.set()
        self.thread.join()
        if self.bar:
            self.bar.__exit__(*exc)
        self.prof.__exit__(*exc)
        self.ru_maxrss = ru_maxrss_mib()

    def report(self, ncells: int) -> dict:
        from dask.utils import key_split

        tasks = self.prof.results
        by_kind: dict[str, float] = defaultdict(float)
        for t in tasks:
            by_kind[key_split(t.key)] += t.end_time - t.start_time
        peak_t, peak = max(self.samples, key=lambda s: s[1]) if self.samples else (self.t0, float("nan"))
        running = sorted({key_split(t.key) for t in tasks if t.start_time <= peak_t <= t.end_time})
        in_dask = (max(t.end_time for t in tasks) - min(t.start_time for t in tasks)) if tasks else 0.0
        return {
            "wall_s": round(self.wall, 2),
            "dask_compute_s": round(in_dask, 2),
            "mcells_per_s": round(ncells / self.wall / 1e6, 3),
            "peak_rss_in_pass_mib": round(peak, 0),
            "ru_maxrss_so_far_mib": round(self.ru_maxrss, 0),
            "running_at_peak": running,
            "task_seconds": {k: round(v, 1) for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])},
        }


def print_pass(name: str, r: dict) -> None:
    print(f"\n== {name}")
    print(f"  wall {r['wall_s']:.1f} s (dask compute {r['dask_compute_s']:.1f} s; the rest is statistics, "
          f"COG conversion and graph building), {r['mcells_per_s']:.2f} Mcells/s of grid")
    print(f"  peak RSS in this pass {r['peak_rss_in_pass_mib']:.0f} MiB (sampled), ru_maxrss so far "
          f"{r['ru_maxrss_so_far_mib']:.0f} MiB; running at the peak: {', '.join(r['running_at_peak']) or '-'}")
    print("  task-seconds by task kind (summed over threads):")
    for k, v in list(r["task_seconds"].items())[:14]:
        print(f"    {k:40s} {v:9.1f}")


# ------------------------------------------------------------------------------------------------ layers
def odd_window(metres: float, res: float) -> int:
    """The odd number of cells nearest to ``metres`` (at least 3)."""
    return max(3, 2 * round((metres / res - 1) / 2) + 1)


def friction_layer(grid: Grid, slope_deg, roads, lakes_mask):
    """Friction (min/m): road speed where a road is burned, Tobler walking speed elsewhere, lakes impassable."""
    from rasters.friction import combine_speeds, tobler_speed_kmh

    road_speed = rasterize(roads, grid, value="speed_kmh", dtype="float32", fill=float("nan"))
    return combine_speeds(road_speed, tobler_speed_kmh(slope_deg), lakes_mask)


def travel_time_minutes(friction, grid: Grid, seats):
    """Travel time (minutes) to the nearest seat: ``rasters.cost.travel_time`` (one call; the rounds run here)."""
    from rasters.cost import travel_time

    rows, cols = grid.index_of_xy(seats.geometry.x.to_numpy(), seats.geometry.y.to_numpy())
    res = travel_time(friction, list(zip(rows.tolist(), cols.tolist(), strict=True)), grid=grid)
    return res


def baseline(dem_path: Path, grid: Grid, n: int = 4096) -> dict:
    """Plain numpy Horn slope on an n × n window at the grid's centre, and our slope on the same window."""
    n = min(n, grid.height, grid.width)
    r0, c0 = (grid.height - n) // 2, (grid.width - n) // 2
    with rasterio.open(dem_path) as src:
        z = src.read(1, window=Window(c0, r0, n, n), out_dtype=np.float32)
    dx, dy = grid.res
    sub = Grid(grid.crs, grid.window_transform(Window(c0, r0, n, n)), n, n, grid.chunk_size)
    times_np, times_ours = [], []
    for _ in range(3):
        t = time.perf_counter()
        numpy_horn_slope(z, dx, dy)
        times_np.append(time.perf_counter() - t)
        t = time.perf_counter()
        slope(z, sub)
        times_ours.append(time.perf_counter() - t)
    t_np, t_ours = min(times_np), min(times_ours)
    scale = grid.width * grid.height / (n * n)
    return {"window": n, "numpy_slope_s": round(t_np, 3), "our_slope_numpy_s": round(t_ours, 3),
            "numpy_slope_extrapolated_s": round(t_np * scale, 1), "scale": round(scale, 2)}


def warm_up() -> None:
    """Compile the numba kernels (cached on disk after the first run) outside the timings."""
    from benchmarks.synth import fbm_block

    g = Grid.from_bounds((0, 0, 64 * 90, 64 * 90), 90, "EPSG:32647", chunk_size=32)
    z = np.arange(64 * 64, dtype=np.float32).reshape(64, 64)
    slope(z, g)
    euclidean_distance(np.eye(64, dtype=bool), g)
    fbm_block(g, 0, 0, 8, 8, 0)
    if HAS_COST:
        from rasters.cost import travel_time

        travel_time(np.full((64, 64), 0.01), [(3, 3)], grid=g)


# ------------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolution-m", type=float, required=True)
    ap.add_argument("--out", default=None, help="default /work/bench-out/province_<res>m (git-ignored)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk-size", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--relief-m", type=float, default=500.0)
    ap.add_argument("--lake-cap-km", type=float, default=50.0)
    ap.add_argument("--no-travel-time", action="store_true")
    ap.add_argument("--pass1-only", action="store_true",
                    help="write the friction surface in pass 1 but stop before travel time (to time pass 1 alone)")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--reuse-pass1", action="store_true",
                    help="skip pass 1 when its friction surface is already in OUT/derived (to measure travel time "
                         "alone after an earlier run)")
    ap.add_argument("--per-step", action="store_true",
                    help="also time each pass-1 layer alone (its own write_many, plain GeoTIFF, file deleted after)")
    args = ap.parse_args(argv)
    res = args.resolution_m
    out = Path(args.out or ROOT.parent / "bench-out" / f"province_{res:g}m")
    derived = out / "derived"
    do_tt = HAS_COST and not args.no_travel_time
    dask.config.set(scheduler="threads", num_workers=args.workers)
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB RAM, "
          f"Python {platform.python_version()}, dask {dask.__version__}; load average {os.getloadavg()[0]:.2f}")
    warm_up()
    results: dict = {"resolution_m": res, "workers": args.workers, "chunk_size": args.chunk_size}

    manifest = out / "synthetic_province.json"
    before = manifest.stat().st_mtime_ns if manifest.exists() else None
    with Measure("synthetic province", progress=not args.no_progress) as m0:
        paths = make_province(out, res, args.seed, args.chunk_size, progress=False)
    t_synth = m0.wall
    reused = before is not None and manifest.stat().st_mtime_ns == before
    grid = province_grid(res, args.chunk_size)
    ncells = grid.width * grid.height
    results["grid"] = {"width": grid.width, "height": grid.height, "cells": ncells}
    results["synth_s"] = round(t_synth, 1)
    results["synth_reused"] = reused
    if not reused:
        results["synth"] = m0.report(ncells)
        print_pass("synthetic province generation (vectors, roads, DEM COG)", results["synth"])
    print(f"SYNTHETIC province {grid.describe()}: {ncells / 1e6:.1f} M cells; generation "
          f"{'reused (' + format(t_synth, '.1f') + ' s)' if reused else format(t_synth, '.1f') + ' s'}, "
          f"ru_maxrss {ru_maxrss_mib():.0f} MiB")

    dem = read(paths["dem"], grid, resampling="nearest")  # same grid: nearest returns the stored values
    rivers = read_vector(paths["rivers"], grid.crs)
    lakes = read_vector(paths["lakes"], grid.crs)
    seats = read_vector(paths["county_seats"], grid.crs)
    roads = read_vector(paths["roads"], grid.crs)

    slope_deg = slope(dem, grid)
    win = odd_window(args.relief_m, res)
    lakes_mask = vector_mask(lakes, grid)
    layers = [
        ("synthetic_slope_deg", slope_deg, "slope (degrees, Horn 1981)", "degrees"),
        ("synthetic_relief_m", relief(dem, grid, win), f"local relief, {win}x{win} cells (m)", "m"),
        ("synthetic_dist_rivers_m", euclidean_distance(vector_mask(rivers, grid), grid),
         "distance to rivers (m, exact)", "m"),
        ("synthetic_dist_lakes_m", euclidean_distance(lakes_mask, grid, max_m=args.lake_cap_km * 1000),
         f"distance to lakes (m, capped at {args.lake_cap_km:g} km)", "m"),
    ]
    if do_tt:
        layers.append(("synthetic_friction_min_per_m", friction_layer(grid, slope_deg, roads, lakes_mask),
                       "friction (min/m): roads, Tobler off-road, lakes barrier", "min/m"))
    outputs = [RasterOutput(a, derived / f"{name}.tif", description=f"SYNTHETIC {d}", units=u, nodata=float("nan"),
                            tags={**SYNTHETIC_TAGS, "DESCRIPTION": f"derived from the SYNTHETIC DEM: {d}"})
               for name, a, d, u in layers]
    friction_path = derived / "synthetic_friction_min_per_m.tif"
    if args.reuse_pass1 and do_tt and friction_path.exists():
        print(f"pass 1 skipped (--reuse-pass1): reading {friction_path}")
        results["pass1"] = {"wall_s": 0.0, "reused": True}
    else:
        print(f"pass 1: {len(outputs)} layers in one write_many: {', '.join(n for n, *_ in layers)}")
        with Measure("pass 1", progress=not args.no_progress) as m1:
            write_many(outputs, grid)
        results["pass1"] = m1.report(ncells)
        results["pass1"]["layers"] = [n for n, *_ in layers]
        print_pass(f"pass 1 ({len(outputs)} layers)", results["pass1"])

    if do_tt and not args.pass1_only:
        friction = read(friction_path, grid, resampling="nearest")
        with Measure("pass 2", progress=not args.no_progress) as m2:
            tt = travel_time_minutes(friction, grid, seats)
            t_rounds = time.perf_counter() - m2.t0
            write_many([RasterOutput(tt.minutes, derived / "synthetic_travel_min.tif",
                                     description="SYNTHETIC travel time to the nearest county seat (minutes)",
                                     units="min", nodata=float("nan"),
                                     tags={**SYNTHETIC_TAGS, "DESCRIPTION": "travel time (min) to the nearest "
                                           "county seat over SYNTHETIC roads and DEM"})], grid)
        results["pass2"] = m2.report(ncells)
        results["pass2"].update({"rounds": tt.rounds, "tile_solves": tt.tile_solves,
                                 "rounds_s": round(t_rounds, 1)})
        print_pass(f"pass 2 (travel time: {tt.rounds} rounds, {tt.tile_solves} tile solves in {t_rounds:.1f} s, "
                   "then the final solve + write)", results["pass2"])
    elif not HAS_COST:
        print("\nrasters.cost is not there yet: travel time skipped")

    if args.per_step:
        # Fused tasks hide which kernel spent the time in one compute; here each layer runs alone (reading the
        # DEM or rasterizing again), so these times add up to more than pass 1.
        results["per_step"] = {}
        print("\n== per step: each layer alone (own write_many, plain tiled GeoTIFF, no overviews)")
        for o in outputs:
            tmp = derived / "steps" / o.path.name
            with Measure(o.path.stem, progress=False) as m:
                write_many([RasterOutput(o.array, tmp, nodata=float("nan"))], grid, cog=False)
            r = m.report(ncells)
            results["per_step"][o.path.stem] = {k: r[k] for k in ("wall_s", "mcells_per_s", "peak_rss_in_pass_mib")}
            print(f"  {o.path.stem:32s} {r['wall_s']:7.1f} s  {r['mcells_per_s']:7.2f} Mcells/s  "
                  f"peak RSS {r['peak_rss_in_pass_mib']:6.0f} MiB")
            tmp.unlink()

    b = baseline(paths["dem"], grid)
    results["baseline"] = b
    total = results["pass1"]["wall_s"] + results.get("pass2", {}).get("wall_s", 0.0)
    results["total_s"] = round(total, 1)
    results["ru_maxrss_mib"] = round(ru_maxrss_mib(), 0)
    speedup = b["numpy_slope_s"] / max(b["our_slope_numpy_s"], 1e-9)
    print(f"\n== baseline: plain numpy Horn slope on a {b['window']}² window of the same DEM: "
          f"{b['numpy_slope_s']:.3f} s (our numba slope on it: {b['our_slope_numpy_s']:.3f} s, x{speedup:.1f})")
    print(f"   EXTRAPOLATED x{b['scale']} to the whole grid: {b['numpy_slope_extrapolated_s']:.1f} s for the slope "
          "alone, in memory, no I/O")
    if b["numpy_slope_extrapolated_s"] > 0:
        print(f"   ratio (whole chunked run, all layers + COG writing) / (extrapolated numpy slope alone): "
              f"{total / b['numpy_slope_extrapolated_s']:.2f}")
    print(f"\n== total {total:.1f} s for {ncells / 1e6:.1f} M cells ({ncells / total / 1e6:.2f} Mcells/s of grid; "
          f"synthetic generation {'reused' if reused else f'{t_synth:.1f} s'} not included), "
          f"peak RSS (ru_maxrss) {results['ru_maxrss_mib']:.0f} MiB = {results['ru_maxrss_mib'] / 1024:.2f} GiB")
    (out / f"bench_results_{res:g}m.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
