"""A full ``suitability run`` config for the SYNTHETIC province of ``synth.py``: what the cache and scheduler
benchmarks run at 90 m (128 M cells) instead of the 1 km demo.

It is a siting study an analyst would write: elevation, slope, local relief, distance to rivers, distance to lakes
(capped) and travel time to the nearest county seat over the synthetic roads (Tobler walking speed off-road,
lakes as barriers), combined by a weighted sum, with lakes and slopes ≥ 25° excluded and five classes. Outputs are
the suitability and its classes (the derived layers stay in the cache; writing five more 128 M-cell COGs per
run would measure the writer, not the pipeline).

The grid is the province grid of ``synth.py`` (the real county polygons' extent, snapped like ``gdalwarp
-tap``), so the DEM is read with ``nearest`` on its own grid: the stored values, no resampling.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.synth import ALBERS, make_province  # noqa: E402

DATA = ROOT / "data" / "qinghai"
#: the weight change a "warm rerun" makes (only the overlay depends on it)
WARM_CHANGE = ("criteria.slope.weight=0.30", "criteria.access.weight=0.15")


def province_config(folder: Path, province: Path, resolution_m: float, chunk_size: int = 1024,
                    seed: int = 0) -> Path:
    """Generate (or reuse) the SYNTHETIC province under ``province`` and write ``folder/province_<res>m.yaml``,
    a run config over it; returns the config's path. Outputs go to ``folder/out`` unless ``--output-dir``."""
    paths = make_province(province, resolution_m, seed, chunk_size, progress=False)
    raw = {
        "name": f"synthetic_province_{resolution_m:g}m",
        "grid": {"crs": ALBERS, "resolution_m": float(resolution_m), "extent": "counties", "mask": "counties",
                 "chunk_size": chunk_size},
        "inputs": {
            "elevation_m": {"raster": str(paths["dem"]), "resampling": "nearest", "units": "m"},
            "counties": {"vector": str(DATA / "counties.gpkg"), "layer": "counties"},
            "rivers": {"vector": str(paths["rivers"])},
            "lakes": {"vector": str(paths["lakes"])},
            "county_seats": {"vector": str(paths["county_seats"])},
            "roads": {"vector": str(paths["roads"]), "label": "SYNTHETIC least-cost roads between county seats"},
        },
        "layers": {
            "slope_deg": {"type": "slope", "dem": "elevation_m"},
            "relief_m": {"type": "relief", "dem": "elevation_m", "window_m": 500},
            "dist_rivers_m": {"type": "distance", "to": "rivers"},
            "dist_lakes_m": {"type": "distance", "to": "lakes", "max_km": 50},
            "friction_min_per_m": {"type": "friction", "slope": "slope_deg", "roads": "roads",
                                   "road_speed_kmh": "speed_kmh", "barriers": ["lakes"]},
            "travel_min": {"type": "travel_time", "friction": "friction_min_per_m", "to": "county_seats"},
        },
        "criteria": {
            "elevation": {"layer": "elevation_m", "weight": 0.30,
                          "transform": {"type": "linear", "lower": 2200, "upper": 4600, "increasing": False}},
            "slope": {"layer": "slope_deg", "weight": 0.20,
                      "transform": {"type": "breaks", "edges": [3, 8, 15, 25], "scores": [1.0, 0.8, 0.5, 0.2, 0.0]}},
            "relief": {"layer": "relief_m", "weight": 0.10,
                       "transform": {"type": "linear", "lower": 30, "upper": 300, "increasing": False}},
            "water": {"layer": "dist_rivers_m", "weight": 0.20,
                      "transform": {"type": "linear", "lower": 2000, "upper": 50000, "increasing": False}},
            "access": {"layer": "travel_min", "weight": 0.20,
                       "transform": {"type": "linear", "lower": 60, "upper": 1440, "increasing": False}},
        },
        "constraints": {"exclude": [{"vector": "lakes"}, {"where": "slope_deg >= 25"},
                                    {"where": "dist_lakes_m < 500"}]},
        "classes": {"breaks": [0.2, 0.4, 0.6, 0.8]},
        "report": {"enabled": False},
        "outputs": {"folder": str(folder / "out"), "suitability": "suitability.tif",
                    "classes": "suitability_class.tif"},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"province_{resolution_m:g}m.yaml"
    path.write_text("# SYNTHETIC province (benchmarks/synth.py): not real terrain or roads\n"
                    + yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path
