"""Where a ``suitability run`` spends its time: the wall time and the dask task-seconds by task kind.

Runs the CLI in this process under ``dask.diagnostics.Profiler`` (threaded scheduler) and prints the task kinds
(``dask.utils.key_split``; fused tasks carry the names of their parts) that took the most time, summed over
threads. Used to find why the warm rerun of ``bench_cache.py --province-m 90`` takes what it takes.

Usage (everything after ``--`` goes to ``suitability run``)::

    SUITABILITY_CACHE_DIR=/work/bench-out/cache_90m/cache \\
        python benchmarks/profile_run.py -- /work/bench-out/cache_90m/province_90m.yaml -q --output-dir /tmp/p
"""

from __future__ import annotations

import collections
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dask.diagnostics import Profiler  # noqa: E402
from dask.utils import key_split  # noqa: E402

from pipelines.cli import main as cli  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        print(__doc__)
        return 2
    t0 = time.perf_counter()
    with Profiler() as prof:
        code = cli(["run", *args])
    wall = time.perf_counter() - t0
    acc: collections.Counter[str] = collections.Counter()
    for r in prof.results:
        acc[key_split(r.key)] += r.end_time - r.start_time
    print(f"exit code {code}, wall {wall:.1f} s, {sum(acc.values()):.1f} task-seconds in {len(prof.results)} tasks")
    for kind, seconds in acc.most_common(20):
        print(f"  {kind:50s} {seconds:8.1f}")
    return code


if __name__ == "__main__":
    sys.exit(main())
