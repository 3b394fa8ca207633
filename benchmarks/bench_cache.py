"""Cold run vs warm rerun with only a weight changed: what the derived-layer cache (``pipelines.cache``) saves.

The Qinghai demo config (real data) plus the expensive layers a siting study adds: a friction surface (Tobler
walking speed from the slope, lakes as barriers) and the travel time to the nearest county seat. Steps, each a
full ``suitability run`` in this process, with a fresh cache folder:

1. cold: empty cache; every layer computed and stored;
2. warm: the same config with one criterion weight changed; terrain, distance, friction and travel time come
   from the cache, only the overlay, classes and outputs are computed again;
3. baseline, measured in the same run: the same weight change with ``--no-cache`` (what a rerun cost before).

Prints the three wall times and the ratios cold/warm and no-cache/warm. Fixed costs that the cache cannot
remove (reading and repairing the county polygons, water budgets, writing every output as a COG, the report)
bound the ratio at coarse resolutions; the cached share grows with the cell count.

Usage::

    python benchmarks/bench_cache.py [--resolution-m 1000] [--chunk-size 512] [--out /work/bench-out/cache]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.cli import main as cli  # noqa: E402

DEMO = ROOT / "configs" / "qinghai_demo.yaml"
CORE = ("name", "grid", "inputs", "layers", "criteria", "weights", "constraints", "combine", "classes", "outputs",
        "water", "carrying", "conflicts")


def config(folder: Path) -> Path:
    raw = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    raw = {k: v for k, v in raw.items() if k in CORE}
    for inp in raw["inputs"].values():
        for k in ("raster", "vector"):
            if k in inp:
                inp[k] = str((DEMO.parent / inp[k]).resolve())
    sa = raw.get("water", {}).get("synthetic_allocation")
    if sa:
        sa["population_csv"] = str((DEMO.parent / sa["population_csv"]).resolve())
    raw["layers"]["friction_min_per_m"] = {"type": "friction", "slope": "slope_deg", "barriers": ["lakes"]}
    raw["layers"]["travel_min"] = {"type": "travel_time", "friction": "friction_min_per_m", "to": "county_seats"}
    raw["criteria"]["access"] = {"layer": "travel_min", "weight": 0.2,
                                 "transform": {"type": "linear", "lower": 60, "upper": 1440, "increasing": False}}
    raw["report"] = {"enabled": False}
    import json

    rest = json.dumps({k: v for k, v in raw.items() if k != "inputs"}, ensure_ascii=False)
    raw["inputs"] = {n: i for n, i in raw["inputs"].items() if f'"{n}"' in rest}
    p = folder / "bench_cache.yaml"
    p.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return p


def timed(args: list[str]) -> float:
    t0 = time.perf_counter()
    code = cli(args)
    if code != 0:
        raise SystemExit(f"run failed with exit code {code}: {args}")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution-m", type=float, default=1000.0)
    ap.add_argument("--chunk-size", type=int, default=512)
    ap.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary folder)")
    a = ap.parse_args(argv)
    work = a.out or Path(tempfile.mkdtemp(prefix="bench_cache_"))
    work.mkdir(parents=True, exist_ok=True)
    cache = work / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    os.environ["SUITABILITY_CACHE_DIR"] = str(cache)
    cfg = config(work)
    base = ["run", str(cfg), "-q", "--set", f"grid.resolution_m={a.resolution_m:g}",
            "--set", f"grid.chunk_size={a.chunk_size}"]
    cold = timed([*base, "--output-dir", str(work / "cold")])
    warm = timed([*base, "--set", "criteria.slope.weight=0.4", "--output-dir", str(work / "warm")])
    nocache = timed([*base, "--set", "criteria.slope.weight=0.4", "--no-cache", "--output-dir",
                     str(work / "nocache")])
    print(f"demo + friction + travel time at {a.resolution_m:g} m, chunks {a.chunk_size}")
    print(f"cold run (empty cache)          {cold:8.2f} s")
    print(f"warm rerun, one weight changed  {warm:8.2f} s")
    print(f"same rerun with --no-cache      {nocache:8.2f} s")
    print(f"cold / warm     = {cold / warm:6.1f} x")
    print(f"no-cache / warm = {nocache / warm:6.1f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
