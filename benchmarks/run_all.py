"""Run the quick benchmarks one after another (minutes, not hours) and print what each prints.

The province-scale runs (`bench_province.py --resolution-m 90|30`) take from minutes to an hour and several GB
of disk; run them by hand as benchmarks/README.md explains.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUICK = [
    ["bench_write.py", "--repeat", "2"],
    ["bench_terrain_distance.py", "--repeat", "2"],
    ["bench_cost.py", "--size", "2048", "--repeat", "1"],
    ["bench_zonal.py"],
    ["bench_montecarlo.py"],
    ["bench_cache.py"],
]


def main() -> int:
    failed = []
    for args in QUICK:
        print(f"\n=== {' '.join(args)} ===", flush=True)
        r = subprocess.run([sys.executable, str(HERE / args[0]), *args[1:]], cwd=HERE.parent)
        if r.returncode:
            failed.append(args[0])
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
