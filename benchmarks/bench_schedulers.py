"""The SYNTHETIC province at 90 m on local threads and on a 2-worker ``dask.distributed`` LocalCluster: both wall
times, their ratio, the peak memory of the whole process tree and a bit-for-bit comparison of the outputs.

Both runs are a full ``suitability run`` of ``province_config.py`` (slope, relief, two distances, friction, travel
time, five criteria, classes) with ``--no-cache``, in this process; only ``--scheduler`` differs. On one 2-core
machine the cluster cannot be faster: its workers compute the same blocks, but every block crosses a socket to
the client that writes the GeoTIFF (GeoTIFF has no safe concurrent writer) and the travel-time rounds exchange
tile borders through the scheduler. The ratio is the price of being able to add machines.

Usage::

    python benchmarks/bench_schedulers.py [--resolution-m 90] [--workers 2] [--out /work/bench-out/sched_90m]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_cache import same_rasters  # noqa: E402
from benchmarks.province_config import province_config  # noqa: E402
from pipelines.cli import main as cli  # noqa: E402


class TreeRSS:
    """Peak resident memory of this process plus all its descendants (cluster workers, nannies), sampled every
    0.2 s from psutil."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(0.2)

    def __enter__(self) -> TreeRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def timed(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak MiB of the process tree) of one CLI run; raises if it fails."""
    with TreeRSS() as rss:
        t0 = time.perf_counter()
        code = cli(args)
        wall = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"run failed with exit code {code}: {args}")
    return wall, rss.peak / 2**20


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution-m", type=float, default=90.0)
    ap.add_argument("--workers", type=int, default=2, help="threads, and LocalCluster worker processes")
    ap.add_argument("--province-dir", type=Path, default=None,
                    help="the synthetic province (generated if absent; default /work/bench-out/province_<res>m)")
    ap.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary folder)")
    a = ap.parse_args(argv)
    work = a.out or Path(tempfile.mkdtemp(prefix="bench_sched_"))
    province = a.province_dir or ROOT.parent / "bench-out" / f"province_{a.resolution_m:g}m"
    cfg = province_config(work, province, a.resolution_m)
    base = ["run", str(cfg), "-q", "--no-cache", "--workers", str(a.workers)]
    threads, threads_mib = timed([*base, "--scheduler", "threads", "--output-dir", str(work / "threads")])
    cluster, cluster_mib = timed([*base, "--scheduler", "local_cluster", "--output-dir", str(work / "cluster")])
    print(f"SYNTHETIC province at {a.resolution_m:g} m (province_config.py), {a.workers} workers, no cache")
    print(f"threads ({a.workers} threads, one process)     {threads:8.1f} s   peak {threads_mib:7.0f} MiB")
    print(f"LocalCluster ({a.workers} worker processes)    {cluster:8.1f} s   peak {cluster_mib:7.0f} MiB "
          "(client + workers)")
    print(f"LocalCluster / threads = {cluster / threads:5.2f} x the time")
    print(f"outputs bit-identical: {same_rasters(work / 'threads', work / 'cluster')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
