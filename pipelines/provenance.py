"""run.json: the record of a run, shaped like a STAC Item (1.0.0) so catalogue tools can read it, with everything
needed to audit or reproduce the run under ``properties`` (the resolved config and its SHA-256, tool and library
versions, input checksums, the grid, weights, classes, statistics, timings, warnings).

``rerun_config`` turns a record back into a config; ``diff_records`` says what changed between two runs.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import pyproj
import rasterio
from pyproj import Transformer

from rasters.errors import ConfigError
from rasters.grid import Grid

STAC_VERSION = "1.0.0"
EXTENSIONS = [
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
]
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
DEPENDENCIES = ("numpy", "dask", "rasterio", "pyproj", "shapely", "geopandas", "pyogrio", "scipy", "scikit-learn",
                "pydantic", "numba")


def versions() -> dict[str, str]:
    """Tool, Python, GDAL, PROJ (and its EPSG database) and library versions."""
    out = {"suitability": _version("suitability"), "python": platform.python_version(),
           "gdal": rasterio.__gdal_version__, "proj": pyproj.proj_version_str}
    try:
        out["epsg_database"] = pyproj.database.get_database_metadata("EPSG.VERSION") or "unknown"
    except Exception:  # noqa: BLE001 - old PROJ databases lack the key
        out["epsg_database"] = "unknown"
    for dist in DEPENDENCIES:
        out[dist] = _version(dist)
    return out


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def footprint_wgs84(grid: Grid) -> tuple[dict, list[float]]:
    """GeoJSON polygon and bbox of the grid in WGS 84 (densified edges, as STAC asks)."""
    tr = Transformer.from_crs(grid.pyproj_crs, "EPSG:4326", always_xy=True)
    xmin, ymin, xmax, ymax = grid.bounds
    n = 16
    xs = [xmin + (xmax - xmin) * i / n for i in range(n)] + [xmax] * n + \
         [xmax - (xmax - xmin) * i / n for i in range(n)] + [xmin] * n
    ys = [ymin] * n + [ymin + (ymax - ymin) * i / n for i in range(n)] + \
         [ymax] * n + [ymax - (ymax - ymin) * i / n for i in range(n)]
    lon, lat = tr.transform(xs, ys)
    ring = [[round(x, 6), round(y, 6)] for x, y in zip(lon, lat, strict=True)]
    ring.append(ring[0])
    bbox = [min(lon), min(lat), max(lon), max(lat)]
    return {"type": "Polygon", "coordinates": [ring]}, [round(v, 6) for v in bbox]


def make_record(*, run_id: str, name: str, grid: Grid, config_file: Path, config_sha256: str, config: dict,
                inputs: dict, weights: dict, classes: dict, outputs: list[dict], timings: dict[str, float],
                warnings: list[str], fitted: dict | None = None, tables: dict | None = None) -> dict[str, Any]:
    """The STAC-Item-shaped run record. ``outputs``: dicts with file, description, units, nodata, statistics."""
    geometry, bbox = footprint_wgs84(grid)
    g = grid.to_dict()
    assets = {}
    for o in outputs:
        st = o["statistics"]
        band: dict[str, Any] = {"nodata": _json_nodata(o["nodata"]), "unit": o["units"], "data_type": o["dtype"]}
        if "STATISTICS_MINIMUM" in st:
            band["statistics"] = {
                "minimum": float(st["STATISTICS_MINIMUM"]), "maximum": float(st["STATISTICS_MAXIMUM"]),
                "mean": float(st["STATISTICS_MEAN"]), "stddev": float(st["STATISTICS_STDDEV"]),
                "valid_percent": float(st["STATISTICS_VALID_PERCENT"]),
            }
        assets[Path(o["file"]).stem] = {
            "href": f"./{o['file']}", "type": COG_TYPE, "title": o["description"], "roles": o.get("roles", ["data"]),
            "raster:bands": [band],
        }
    for extra in (tables or {}).values():
        assets[extra["key"]] = {k: v for k, v in extra.items() if k != "key"}
    assets["project"] = {"href": "./project.qgs", "type": "application/x-qgis-project", "roles": ["metadata"],
                         "title": "QGIS project with every output styled"}
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": EXTENSIONS,
        "id": f"{name}-{run_id}",
        "geometry": geometry,
        "bbox": bbox,
        "properties": {
            "datetime": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "title": name,
            "proj:wkt2": g["crs_wkt2"],
            "proj:transform": g["transform"],
            "proj:shape": [g["height"], g["width"]],
            "suitability:run_id": run_id,
            "suitability:config_file": str(config_file),
            "suitability:config_sha256": config_sha256,
            "suitability:config": config,
            "suitability:versions": versions(),
            "suitability:grid": g,
            "suitability:inputs": inputs,
            "suitability:weights": weights,
            "suitability:fitted_parameters": fitted or {},
            "suitability:classes": classes,
            "suitability:timings_s": {k: round(v, 3) for k, v in timings.items()},
            "suitability:warnings": warnings,
        },
        "assets": assets,
        "links": [],
    }


def _json_nodata(v: Any) -> Any:
    if isinstance(v, float) and v != v:
        return "nan"
    return v


def load_record(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: run record not found")
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not a run.json ({e})") from None
    if not isinstance(rec, dict) or "suitability:config" not in rec.get("properties", {}):
        raise ConfigError(f"{path}: not a run.json written by this tool (no properties.suitability:config)")
    return rec


def rerun_config(rec: dict) -> dict:
    """The resolved config of a recorded run (absolute paths), ready to validate and run again."""
    return json.loads(json.dumps(rec["properties"]["suitability:config"]))


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(d, list):
        return {prefix: json.dumps(d, ensure_ascii=False)}
    return {prefix: d}


def diff_records(a: dict, b: dict) -> list[str]:
    """Human-readable lines: config keys, input checksums, versions and output statistics that differ."""
    lines: list[str] = []
    pa, pb = a["properties"], b["properties"]
    sections = [
        ("config", "suitability:config"),
        ("input", "suitability:inputs"),
        ("version", "suitability:versions"),
        ("weight", "suitability:weights"),
    ]
    for label, key in sections:
        fa, fb = _flatten(pa.get(key, {})), _flatten(pb.get(key, {}))
        for k in sorted(set(fa) | set(fb)):
            if fa.get(k) != fb.get(k):
                lines.append(f"{label} {k}: {fa.get(k, '(absent)')} -> {fb.get(k, '(absent)')}")
    sa = {k: v.get("raster:bands", [{}])[0].get("statistics") for k, v in a.get("assets", {}).items()}
    sb = {k: v.get("raster:bands", [{}])[0].get("statistics") for k, v in b.get("assets", {}).items()}
    for k in sorted(set(sa) | set(sb)):
        if k not in sa or k not in sb:
            lines.append(f"output {k}: {'only in second' if k not in sa else 'only in first'}")
        elif sa[k] != sb[k] and sa[k] and sb[k]:
            changes = ", ".join(f"{s} {sa[k][s]:.6g} -> {sb[k][s]:.6g}" for s in sa[k] if sa[k][s] != sb[k].get(s))
            lines.append(f"output {k}: {changes}")
    return lines
