"""Cold run vs warm rerun with only a weight changed: what the derived-layer cache (``pipelines.cache``) saves.

Two studies:

* ``--province-m 90`` (the issue's measure): the SYNTHETIC province of ``synth.py`` at 90 m (128 M cells) with
  the run config of ``province_config.py`` (slope, relief, two distances, friction and travel time feeding five
  criteria); the warm rerun changes two weights (``province_config.WARM_CHANGE``);
* default: the Qinghai demo config (real data) plus the expensive layers a siting study adds: a friction surface (Tobler
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

    python benchmarks/bench_cache.py --province-m 90 [--out /work/bench-out/cache_90m]   # ~10 min
    python benchmarks/bench_cache.py [--resolution-m 1000] [--chunk-size 512] [--out /work/bench-out/cache]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.province_config import WARM_CHANGE, province_config  # noqa: E402
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


def same_rasters(a: Path, b: Path) -> bool:
    """True when every GeoTIFF in ``a`` has the same pixels as its namesake in ``b`` (NaN equal to NaN)."""
    import numpy as np
    import rasterio

    for p in sorted(a.glob("*.tif")):
        with rasterio.open(p) as x, rasterio.open(b / p.name) as y:
            if not np.array_equal(x.read(), y.read(), equal_nan=np.issubdtype(x.dtypes[0], np.floating)):
                return False
    return True


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
    ap.add_argument("--province-m", type=float, default=None,
                    help="run the SYNTHETIC province at this resolution (e.g. 90) instead of the demo")
    ap.add_argument("--province-dir", type=Path, default=None,
                    help="where the synthetic province is (generated if absent; default "
                    "/work/bench-out/province_<res>m, shared with bench_province.py)")
    ap.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary folder)")
    a = ap.parse_args(argv)
    work = a.out or Path(tempfile.mkdtemp(prefix="bench_cache_"))
    work.mkdir(parents=True, exist_ok=True)
    cache = work / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    os.environ["SUITABILITY_CACHE_DIR"] = str(cache)
    if a.province_m:
        res = a.province_m
        province = a.province_dir or ROOT.parent / "bench-out" / f"province_{res:g}m"
        cfg = province_config(work, province, res, chunk_size=1024)
        base = ["run", str(cfg), "-q"]
        change = [x for c in WARM_CHANGE for x in ("--set", c)]
        what = f"SYNTHETIC province at {res:g} m (province_config.py), chunks 1024"
    else:
        cfg = config(work)
        base = ["run", str(cfg), "-q", "--set", f"grid.resolution_m={a.resolution_m:g}",
                "--set", f"grid.chunk_size={a.chunk_size}"]
        change = ["--set", "criteria.slope.weight=0.4"]
        what = f"demo + friction + travel time at {a.resolution_m:g} m, chunks {a.chunk_size}"
    cold = timed([*base, "--output-dir", str(work / "cold")])
    warm = timed([*base, *change, "--output-dir", str(work / "warm")])
    nocache = timed([*base, *change, "--no-cache", "--output-dir", str(work / "nocache")])
    print(what)
    print(f"warm change: {' '.join(change[1::2])}")
    print(f"cold run (empty cache)          {cold:8.2f} s")
    print(f"warm rerun, one weight changed  {warm:8.2f} s")
    print(f"same rerun with --no-cache      {nocache:8.2f} s")
    print(f"cold / warm     = {cold / warm:6.1f} x")
    print(f"no-cache / warm = {nocache / warm:6.1f} x")
    print(f"warm rerun == no-cache rerun, bit for bit: {same_rasters(work / 'warm', work / 'nocache')}")
    print(f"peak RSS of this process (ru_maxrss, all three runs): "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
