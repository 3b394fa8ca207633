"""Monte Carlo weight sensitivity: cost per draw on a 1 km-like grid (goal: 1,000 draws in < 2 min on 2 cores).

SYNTHETIC, deterministic: ``--rows`` x ``--cols`` (default 1400 x 900, about the 1 km Qinghai demo grid) with
``--criteria`` (default 4) float32 score layers (``_common.synthetic_dem`` rescaled to 0..1, 3 % NaN), dask
chunks of ``--chunk``. Times ``suitability.sensitivity.monte_carlo_rasters`` (per-cell mean, std and CV over
``--draws`` Dirichlet draws, threaded scheduler with ``--workers``) and, for comparison in the same process, the
plain numpy way of one ``weighted_sum`` raster per draw accumulated into sum and sum of squares. Also times the
candidate rank distribution for 50 candidates (no raster pass). Prints seconds per draw and peak RSS.

    python benchmarks/bench_montecarlo.py [--draws 1000] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import machine, peak_rss_mib, synthetic_dem  # noqa: E402

from suitability.overlay import weighted_sum  # noqa: E402
from suitability.sensitivity import dirichlet_draws, monte_carlo_rasters, rank_distribution  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1400)
    ap.add_argument("--cols", type=int, default=900)
    ap.add_argument("--criteria", type=int, default=4)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--chunk", type=int, default=512)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--baseline-draws", type=int, default=50)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    print(f"SYNTHETIC {args.rows}x{args.cols} grid, {args.criteria} criteria, {args.draws} draws, chunks {args.chunk}")
    n = max(args.rows, args.cols)
    rng = np.random.default_rng(0)
    layers = []
    for i in range(args.criteria):
        z = synthetic_dem(n, seed=i)[: args.rows, : args.cols]
        z = (z - z.min()) / (z.max() - z.min())
        z[rng.random(z.shape) < 0.03] = np.nan
        layers.append(z.astype(np.float32))
    weights = {f"c{i}": float(i + 1) for i in range(args.criteria)}
    draws = dirichlet_draws(weights, args.draws, seed=42, concentration=50)
    arrays = [da.from_array(z, chunks=args.chunk) for z in layers]

    with dask.config.set(scheduler="threads", num_workers=args.workers):
        da.compute(*monte_carlo_rasters(arrays, draws[:2]))  # numba compile, not timed
        t0 = time.perf_counter()
        mean, std, cv = da.compute(*monte_carlo_rasters(arrays, draws))
        t_ours = time.perf_counter() - t0

    nb = min(args.baseline_draws, args.draws)
    t0 = time.perf_counter()
    acc = np.zeros(layers[0].shape)
    acc2 = np.zeros(layers[0].shape)
    for d in draws[:nb]:
        s = weighted_sum(layers, list(d)).astype(np.float64)
        acc += s
        acc2 += s * s
    t_numpy = (time.perf_counter() - t0) / nb

    means = pd.DataFrame(rng.random((50, args.criteria)), columns=list(weights))
    t0 = time.perf_counter()
    rank_distribution(means, draws, k=5, weights=weights)
    t_rank = time.perf_counter() - t0

    per_draw = t_ours / args.draws
    print(f"monte_carlo_rasters: {t_ours:.2f} s for {args.draws} draws = {per_draw * 1e3:.2f} ms per draw "
          f"({args.workers} threads); 1,000 draws would take {per_draw * 1000:.1f} s (goal < 120 s)")
    print(f"numpy baseline (weighted_sum raster per draw + sum/sumsq, 1 thread): {t_numpy * 1e3:.1f} ms per draw "
          f"-> ours is {t_numpy / per_draw:.1f}x faster per draw")
    print(f"rank distribution, 50 candidates x {args.draws} draws: {t_rank * 1e3:.1f} ms")
    print(f"check: mean of mean raster {np.nanmean(mean):.4f}, mean CV {np.nanmean(cv):.4f}")
    print(f"peak RSS: {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
