"""Write a run's outputs: GeoTIFFs (atomic, with statistics and overviews) and run.json, written last."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import dask.array as da
import geopandas as gpd
import numpy as np
import pyproj

from rasters.atomic import write_json_atomic, write_text_atomic
from rasters.errors import ConfigError
from rasters.io import RasterOutput, write_many
from rasters.io import read as read_raster
from suitability.carrying import zone_class_areas_km2
from suitability.water import zone_index_raster

from .config import RasterInput
from .gpkg_styles import geometry_kind, graduated_qml, single_qml
from .input_policy import inputs_named
from .provenance import make_record
from .qgis_project import GROUP_ORDER, ProjectLayer, project_xml
from .relocation_step import run_relocation, write_relocation
from .report import build_report, report_zones
from .run import Built, progress, sha256_file
from .sites_step import run_sites, write_sites
from .styles import NEUTRAL_RAMP, SUITABILITY_RAMP, classes_qml, continuous_qml
from .water_step import carrying_table, class_areas_lazy, conflicts_table, write_table

TOOL = "suitability"


def planned_outputs(built: Built) -> list[RasterOutput]:
    """The rasters a run writes, in order: suitability, classes, requested layers, criteria."""
    cfg, folder = built.plan.config, built.plan.loaded.output_folder
    run_tags = {"SUITABILITY_RUN": cfg.name}
    outs = [
        RasterOutput(built.score, folder / cfg.outputs.suitability, "suitability (0-1, weighted sum)", "score 0-1",
                     float("nan"), tags=run_tags)
    ]
    if built.classes is not None:
        labels = built.scheme.labels
        tags = {**run_tags, "CLASS_BREAKS": json.dumps(list(built.scheme.breaks)),
                "CLASS_LABELS": json.dumps(list(labels), ensure_ascii=False)}
        outs.append(RasterOutput(built.classes, folder / cfg.outputs.classes, "suitability class (1 = lowest)",
                                 "class", 0, categorical=True, tags=tags))
    for name in cfg.outputs.layers:
        outs.append(RasterOutput(built.layers[name].astype(np.float32), folder / f"{name}.tif", name,
                                 built.units.get(name, ""), float("nan"), tags=run_tags))
    if cfg.outputs.criteria:
        for cname, arr in built.criteria.items():
            outs.append(RasterOutput(arr, folder / f"criterion_{cname}.tif", f"criterion {cname} (0-1)",
                                     "score 0-1", float("nan"), tags=run_tags))
    inputs = set()
    for inp in cfg.inputs.values():
        attr = "raster" if isinstance(inp, RasterInput) else "vector"
        inputs.add(built.plan.loaded.resolve(getattr(inp, attr)))
    for o in outs:
        if o.path.resolve() in inputs:
            raise ConfigError(f"{built.plan.loaded.path}: outputs: {o.path} is also an input; choose another folder")
    return outs


def run_and_publish(built: Built, show_progress: bool = True, events: Any = None) -> dict[str, Any]:
    """Compute and write every output in one pass, then write run.json. Returns the run record."""
    cfg, loaded = built.plan.config, built.plan.loaded
    run_id = uuid.uuid4().hex[:12]
    outs = planned_outputs(built)
    for o in outs:
        o.tags["SUITABILITY_RUN_ID"] = run_id
        o.tags["SUITABILITY_CONFIG_SHA256"] = loaded.sha256()
    t0 = time.perf_counter()
    extra_lazy: dict[str, Any] = {}
    if cfg.carrying is not None and built.water is not None and built.classes is not None:
        extra_lazy["water_class_areas"] = class_areas_lazy(built.water, built.classes, built.grid,
                                                           built.scheme.n_classes)
    zname, zones = report_zones(built)
    if cfg.report.enabled and zones is not None and len(zones) and built.classes is not None:
        index = zone_index_raster(zones, built.grid)
        extra_lazy["class_areas"] = zone_class_areas_km2(index, built.classes, built.grid, n_zones=len(zones),
                                                         n_classes=built.scheme.n_classes, lazy=True)
    # Valid cells of each raster input the outputs read anyway (criteria, expressions, written layers), counted
    # in the same pass: an input that is nodata everywhere on the grid is named in a warning. Inputs the outputs
    # do not read (only behind a cached layer, criterion score or exclusion mask) are not counted here, which would
    # read them again: the cache counted them when it stored that entry and kept the count in its manifest
    # (built.layer_valid).
    in_graph = set().union(*(o.array.__dask_graph__().layers for o in outs))
    raster_inputs = [n for n in built.plan.needed if n in cfg.inputs and isinstance(cfg.inputs[n], RasterInput)
                     and built.layers[n].name in in_graph]
    # 0-d dask arrays, not Delayed: a Delayed holding an array gets its own copy of the array's graph, so each
    # input would be read twice (once for the outputs, once for its count).
    valid_lazy = [da.count_nonzero(~da.isnan(built.layers[n])) for n in raster_inputs]
    with progress(show_progress, events), inputs_named(loaded):
        # A block that fails inside a task names only its file: inputs_named adds the input's config key.
        stats, extra_list = write_many(outs, built.grid, extra=list(extra_lazy.values()) + valid_lazy)
    valid_counts = extra_list[len(extra_lazy):]
    extra_done = dict(zip(extra_lazy, extra_list[: len(extra_lazy)], strict=True))
    counts = dict(built.layer_valid)  # every entry this run built or read, so every input behind one
    counts.update(zip(raster_inputs, valid_counts, strict=True))
    for n, count in counts.items():
        if n in cfg.inputs and int(count) == 0:
            built.warnings.append(f"inputs.{n}: {loaded.resolve(cfg.inputs[n].raster)}: no valid value on the grid "
                                  "(nodata everywhere it covers the grid); outputs that use it are nodata")
    built.timings["compute_and_write_s"] = time.perf_counter() - t0
    for o, s in zip(outs, stats, strict=True):
        if s.get("STATISTICS_VALID_PERCENT") == "0":
            built.warnings.append(f"{o.path.name}: every cell is nodata")
        write_text_atomic(o.path.with_suffix(".qml"), style_for(o, s, built))
    record = make_record(
        run_id=run_id, name=cfg.name, grid=built.grid, config_file=loaded.path.resolve(),
        config_sha256=loaded.sha256(), config=loaded.resolved_dict(), inputs=_input_records(built),
        weights=_jsonable(built.weight_set.as_record()),
        classes=built.scheme.as_record(),
        outputs=[{"file": o.path.name, "description": o.description, "units": o.units, "nodata": o.nodata,
                  "dtype": str(o.array.dtype), "statistics": s} for o, s in zip(outs, stats, strict=True)],
        timings=built.timings, warnings=built.warnings,
        fitted={c: {"layer": cfg.criteria[c].layer, **_jsonable(t.as_record()), "fitted": c in built.fitted}
                for c, t in built.transforms.items()},
    )
    record["properties"]["suitability:cache"] = dict(built.cache_log)
    record["properties"]["suitability:compute"] = dict(built.compute)
    vector_outputs = write_tables(built, extra_done.get("water_class_areas"))
    if cfg.sites is not None:
        t1 = time.perf_counter()
        built.sites = run_sites(built, loaded.output_folder)
        vector_outputs += write_sites(built.sites, loaded.output_folder)
        built.timings["sites_s"] = time.perf_counter() - t1
    if cfg.relocation is not None:
        t1 = time.perf_counter()
        built.relocation = run_relocation(built, loaded.output_folder / cfg.outputs.classes,
                                          loaded.output_folder / cfg.outputs.suitability)
        vector_outputs += write_relocation(built.relocation, loaded.output_folder)
        unknown = [n.split(":")[0] for n in built.relocation.notes if "flag unknown" in n]
        if unknown:
            built.warnings.append(f"relocation: {len(unknown)} counties could not be judged by the rule (missing "
                                  f"figures, e.g. census population): {', '.join(unknown)}")
        built.timings["relocation_s"] = time.perf_counter() - t1
    write_project(built, outs, stats, vector_outputs)
    if cfg.report.enabled:
        t1 = time.perf_counter()
        text = build_report(built, record, outs, extra_done)
        write_text_atomic(loaded.output_folder / "report.html", text)
        built.timings["report_s"] = time.perf_counter() - t1
        record["assets"]["report"] = {"href": "./report.html", "type": "text/html", "roles": ["overview"],
                                      "title": "report with maps, weights, tables and provenance"}
    write_text_atomic(loaded.output_folder / "run.log", "\n".join(run_log(built, record)) + "\n")
    write_json_atomic(loaded.output_folder / "run.json", record)
    return record


def _jsonable(d: dict) -> dict:
    """NaN is not JSON: write it as the string "nan" (as GDAL metadata does)."""
    import math

    def fix(v):
        if isinstance(v, float) and math.isnan(v):
            return "nan"
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [fix(x) for x in v]
        return v

    return fix(d)


def run_log(built: Built, record: dict) -> list[str]:
    """A plain-text log of the run, for the output folder (written at the end, so a failed run leaves none)."""
    p = record["properties"]
    lines = [f"{p['datetime']} run {p['suitability:run_id']} of {p['suitability:config_file']}",
             f"config sha256 {p['suitability:config_sha256']}",
             f"grid {built.grid.describe()}",
             "versions " + ", ".join(f"{k} {v}" for k, v in p["suitability:versions"].items())]
    lines += [f"weight {k} = {v:.6f}" for k, v in built.weights.items()]
    lines += [f"time {k} = {v:.3f} s" for k, v in built.timings.items()]
    lines += [f"wrote {a['href']}" for a in record["assets"].values()]
    lines += [f"warning: {w}" for w in built.warnings]
    return lines


def write_tables(built: Built, water_class_areas) -> list[ProjectLayer]:
    """Zone tables (water, carrying) and the conflict report as GeoPackage + CSV; their project layers."""
    cfg, folder = built.plan.config, built.plan.loaded.output_folder
    layers: list[ProjectLayer] = []
    if built.water is not None:
        table = built.water.table
        qml = water_zones_qml(table)
        write_table(table, folder, "water_zones", qml)
        layers.append(ProjectLayer("water_zones", folder / "water_zones.gpkg", "Water", True, kind="vector",
                                   vector_layer="water_zones", geometry="Polygon", qml=qml))
        if cfg.carrying is not None and water_class_areas is not None:
            scale = carrying_table(cfg, built.water, water_class_areas)
            gdf = gpd.GeoDataFrame(scale, geometry=table.geometry.values, crs=table.crs)
            cq = carrying_qml(gdf)
            write_table(gdf, folder, "carrying", cq)
            layers.append(ProjectLayer("carrying", folder / "carrying.gpkg", "Water", False, kind="vector",
                                       vector_layer="carrying", geometry="Polygon", qml=cq))
    if cfg.conflicts is not None and built.classes is not None:
        class_file = folder / cfg.outputs.classes
        classes = read_raster(class_file, built.grid, resampling="nearest")
        classes = da.where(da.isnan(classes), 0, classes).astype(np.uint8)
        report = conflicts_table(cfg, built.vectors, classes, built.grid, built.scheme, built.water)
        kq = single_qml(geometry_kind(report) if len(report) else "Point", "#e31a1c", label_field="name"
                        if "name" in report.columns else None)
        write_table(report, folder, "conflicts", kq)
        layers.append(ProjectLayer("conflicts", folder / "conflicts.gpkg", "Water", True, kind="vector",
                                   vector_layer="conflicts", geometry=geometry_kind(report), qml=kq))
    return layers


def water_zones_qml(table) -> str:
    """Headroom in people: deficits red, surpluses green."""
    edges = [-1e12, -100_000, -10_000, 0, 10_000, 100_000, 1e12]
    colors = ["#b2182b", "#ef8a62", "#fddbc7", "#d1e5f0", "#67a9cf", "#2166ac"]
    labels = ["< -100,000", "-100,000 – -10,000", "-10,000 – 0", "0 – 10,000", "10,000 – 100,000", "> 100,000"]
    return graduated_qml("headroom_population", edges, colors, labels, "Polygon",
                         label_field="zone" if "zone" in table.columns else None)


def carrying_qml(gdf) -> str:
    edges = [-1e12, 0, 1e12]
    return graduated_qml("headroom_population", edges, ["#d73027", "#1a9850"], ["over capacity", "within capacity"],
                         "Polygon", label_field="binding" if "binding" in gdf.columns else None)


def write_project(built: Built, outs: list[RasterOutput], stats: list[dict],
                  vector_outputs: list[ProjectLayer] = ()) -> Path:
    """project.qgs with every output (styles embedded), the vector inputs, grouped, paths relative."""
    cfg, loaded = built.plan.config, built.plan.loaded
    folder = loaded.output_folder
    layers: list[ProjectLayer] = []
    for o, s in zip(outs, stats, strict=True):
        name = o.path.stem
        if o.path.name in (cfg.outputs.suitability, cfg.outputs.classes):
            group, visible = "Suitability", True
        elif name.startswith("criterion_"):
            group, visible = "Criteria", False
        else:
            group, visible = "Layers", False
        layers.append(ProjectLayer(name, o.path, group, visible, qml=style_for(o, s, built)))
    layers += list(vector_outputs)
    # Classes above the continuous surface: planners read the five grades first.
    layers.sort(key=lambda lyr: (GROUP_ORDER.index(lyr.group), lyr.name != Path(cfg.outputs.classes or "").stem))
    outline = {cfg.grid.mask, cfg.grid.extent} - {None}
    for name, inp in cfg.inputs.items():
        if isinstance(inp, RasterInput):
            continue
        gdf = built.vectors.get(name)
        kind = _geometry_kind(gdf)
        src_crs = _file_crs_wkt(loaded.resolve(inp.vector), inp.layer)
        src_crs, op = _declared_crs_and_op(src_crs, inp.towgs84, built.grid.crs)
        layers.append(ProjectLayer(name, loaded.resolve(inp.vector), "Inputs", visible=name in outline,
                                   kind="vector", vector_layer=inp.layer, geometry=kind,
                                   outline_only=name in outline, crs_wkt=src_crs, coordinate_op=op,
                                   color="#1f78b4" if kind != "Polygon" or name not in outline else "#333333"))
    text = project_xml(cfg.name, built.grid.crs, layers, folder, built.grid.bounds)
    path = folder / "project.qgs"
    write_text_atomic(path, text)
    return path


def _geometry_kind(gdf) -> str:
    if gdf is None or len(gdf) == 0:
        return "Polygon"
    t = str(gdf.geom_type.mode().iloc[0])
    return "Point" if "Point" in t else "Line" if "Line" in t else "Polygon"


def _file_crs_wkt(path: Path, layer: str | None) -> str | None:
    import pyogrio

    try:
        info = pyogrio.read_info(path, layer=layer)
    except Exception:  # noqa: BLE001 - the project still opens; QGIS asks the provider for the CRS
        return None
    crs = info.get("crs")
    return pyproj.CRS.from_user_input(crs).to_wkt() if crs else None


def _declared_crs_and_op(crs_wkt: str | None, towgs84: list[float] | None,
                         grid_crs: str) -> tuple[str | None, str | None]:
    """The CRS and the operation QGIS must use for a vector input: with a declared ``towgs84``, the file's CRS bound
    to WGS 84 by that Helmert and the PROJ pipeline the run applied (file -> WGS 84 -> grid); else the file's CRS
    and None (QGIS's own choice, as for every undeclared layer). The run has already accepted the declaration."""
    if towgs84 is None or crs_wkt is None:
        return crs_wkt, None
    from rasters.datum import shift_pipeline, with_towgs84

    return with_towgs84(crs_wkt, towgs84).to_wkt(), shift_pipeline(crs_wkt, towgs84, grid_crs)


def style_for(o: RasterOutput, stats: dict[str, str], built: Built) -> str:
    """The .qml for one output: classes get their palette, scores a fixed 0-1 ramp, other layers their range."""
    if o.categorical:
        return classes_qml(built.scheme)
    if o.units == "score 0-1":
        return continuous_qml(0.0, 1.0, SUITABILITY_RAMP)
    lo = float(stats.get("STATISTICS_MINIMUM", 0.0))
    hi = float(stats.get("STATISTICS_MAXIMUM", 1.0))
    return continuous_qml(lo, hi, NEUTRAL_RAMP, units=o.units, precision=0 if hi - lo > 100 else 2)


def _input_records(built: Built) -> dict[str, Any]:
    out = {}
    for name, inp in built.plan.config.inputs.items():
        attr = "raster" if isinstance(inp, RasterInput) else "vector"
        p = built.plan.loaded.resolve(getattr(inp, attr))
        rec: dict[str, Any] = {"kind": attr, "path": str(p)}
        if isinstance(p, Path) and p.is_file():
            rec["sha256"] = sha256_file(p)
        if inp.towgs84 is not None:  # the declared datum shift the input was read with (rasters.datum)
            rec["towgs84"] = list(inp.towgs84)
        if attr == "vector":
            gdf = built.vectors.get(name)
            if gdf is not None:
                rec["features"] = len(gdf)
                rec["repaired_geometries"] = int(gdf.attrs.get("repaired", 0))
        out[name] = rec
    return out


