"""Run a plan: build the grid, read inputs lazily, derive layers, score, classify and write, in one dask.compute."""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import geopandas as gpd
import numpy as np
from dask.callbacks import Callback
from dask.diagnostics import ProgressBar

from rasters import io as rio
from rasters.errors import ConfigError, InputDataError
from rasters.grid import Grid
from suitability.classify import ClassScheme, class_breaks, classify
from suitability.constraints import apply_exclusions
from suitability.expressions import parse as parse_expression
from suitability.fitting import layer_stats_many
from suitability.overlay import weighted_sum
from suitability.transforms import make_transform
from suitability.weights import direct
from vectors import io as vio
from vectors.rasterize import mask as vmask

from .config import RasterInput
from .layers import Context
from .plan import Plan

log = logging.getLogger("suitability")

@dataclass
class Built:
    """Everything lazy a run will compute, before any pixel is read."""

    plan: Plan
    grid: Grid
    vectors: dict[str, gpd.GeoDataFrame]
    layers: dict[str, da.Array]
    units: dict[str, str]
    criteria: dict[str, da.Array]
    weights: dict[str, float]
    score: da.Array
    classes: da.Array | None
    scheme: ClassScheme
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    transforms: dict[str, Any] = field(default_factory=dict)  # criterion -> transform as applied (fitted)
    fitted: list[str] = field(default_factory=list)  # criteria whose parameters were fitted from the data


def make_grid(plan: Plan, vectors: dict[str, gpd.GeoDataFrame]) -> Grid:
    g = plan.config.grid
    if g.bounds is not None:
        xmin, ymin, xmax, ymax = g.bounds
    else:
        gdf = vectors[g.extent]
        xmin, ymin, xmax, ymax = gdf.total_bounds
    b = g.buffer_m
    try:
        return Grid.from_bounds((xmin - b, ymin - b, xmax + b, ymax + b), g.resolution_m, g.crs, g.chunk_size)
    except ConfigError as e:
        raise ConfigError(f"{plan.loaded.path}: grid: {e}") from None


def _read_vector(plan: Plan, name: str, crs: str, clip_bounds=None) -> gpd.GeoDataFrame:
    inp = plan.config.inputs[name]
    path = plan.loaded.resolve(inp.vector)
    try:
        gdf = vio.read(path, crs, layer=inp.layer, clip_bounds=clip_bounds)
    except InputDataError as e:
        raise InputDataError(f"{plan.loaded.path}: inputs.{name}: {e}") from None
    return gdf


def build(plan: Plan) -> Built:
    """Build the lazy graph of a run (reads vectors and raster headers only)."""
    cfg, loaded = plan.config, plan.loaded
    t0 = time.perf_counter()
    vectors: dict[str, gpd.GeoDataFrame] = {}
    if cfg.grid.extent is not None:
        vectors[cfg.grid.extent] = _read_vector(plan, cfg.grid.extent, cfg.grid.crs)
    grid = make_grid(plan, vectors)
    warnings_: list[str] = []
    layers: dict[str, da.Array] = {}
    units: dict[str, str] = {}

    for name in plan.order:
        node = plan.nodes[name]
        if node.kind == "vector":
            if name not in vectors:
                vectors[name] = _read_vector(plan, name, grid.crs, clip_bounds=grid.bounds)
            if len(vectors[name]) == 0:
                warnings_.append(f"inputs.{name}: no features inside the grid")
            continue
        if node.kind == "raster":
            inp: RasterInput = cfg.inputs[name]
            path = loaded.resolve(inp.raster)
            try:
                layers[name] = rio.read(path, grid, resampling=inp.resampling, band=inp.band)
            except InputDataError as e:
                raise InputDataError(f"{loaded.path}: inputs.{name}: {e}") from None
            units[name] = inp.units
            continue
        ctx = Context(grid, layers, vectors, warnings_, node.key)
        try:
            layers[name], units[name] = cfg.layers[name].build(ctx)
        except ConfigError as e:
            raise ConfigError(f"{loaded.path}: {node.key}: {e}") from None

    # Criteria and weights.
    try:
        weights = direct({c: crit.weight for c, crit in cfg.criteria.items()}).weights
    except ConfigError as e:
        raise ConfigError(f"{loaded.path}: criteria: {e}") from None
    transforms = {c: make_transform(crit.transform.type, crit.transform.params()) for c, crit in cfg.criteria.items()}
    to_fit = {c: t for c, t in transforms.items() if t.needs_fit}
    if to_fit:
        # Parameters left out are fitted from the layers' statistics: one pass over all of them together.
        t1 = time.perf_counter()
        # Statistics of the study area only (inside grid.mask), not of the whole bounding box.
        region = vmask(vectors[cfg.grid.mask], grid) if cfg.grid.mask is not None else None
        stats = layer_stats_many({
            cfg.criteria[c].layer: (layers[cfg.criteria[c].layer] if region is None
                                    else da.where(region, layers[cfg.criteria[c].layer], np.float32(np.nan)))
            for c in to_fit
        })
        for c, t in to_fit.items():
            try:
                transforms[c] = t.fit(stats[cfg.criteria[c].layer], cfg.criteria[c].layer)
            except ConfigError as e:
                raise ConfigError(f"{loaded.path}: criteria.{c}.transform: {e}") from None
        timings_fit = time.perf_counter() - t1
    criteria: dict[str, da.Array] = {}
    for cname, fn in transforms.items():
        criteria[cname] = fn(layers[cfg.criteria[cname].layer]).astype(np.float32)
    score = weighted_sum(list(criteria.values()), [weights[c] for c in criteria]).astype(np.float32)

    # Constraints and the study-area mask.
    masks = []
    for i, ex in enumerate(cfg.constraints.exclude):
        if ex.where is not None:
            masks.append(parse_expression(ex.where).evaluate(layers))
        else:
            gdf = vectors[ex.vector]
            if ex.buffer_m > 0:
                if grid.is_geographic:
                    raise ConfigError(f"{loaded.path}: constraints.exclude[{i}].buffer_m: needs a projected grid CRS")
                gdf = gdf.set_geometry(gdf.buffer(ex.buffer_m / grid.linear_unit_m))
            masks.append(vmask(gdf, grid, all_touched=ex.all_touched))
    if cfg.grid.mask is not None:
        masks.append(~vmask(vectors[cfg.grid.mask], grid, all_touched=False))
    if masks:
        score = apply_exclusions(score, masks)

    cl = cfg.classes
    try:
        breaks = cl.breaks
        if cl.method != "fixed":
            # Breaks from the data need the suitability values first: one extra pass over the graph.
            opts = {} if cl.method == "equal_interval" else {"seed": cl.seed}
            if cl.sample_size and cl.method != "equal_interval":
                opts["sample_size"] = cl.sample_size
            t1 = time.perf_counter()
            breaks = class_breaks(cl.method, score, cl.n, **opts)
            timings_classes = time.perf_counter() - t1
        scheme = ClassScheme.from_breaks(breaks, cl.labels, cl.labels_en, cl.colors)
    except ConfigError as e:
        raise ConfigError(f"{loaded.path}: classes: {e}") from None
    classes = classify(score, scheme.breaks) if cfg.outputs.classes else None
    built = Built(plan, grid, vectors, layers, units, criteria, weights, score, classes, scheme, warnings_)
    built.transforms = transforms
    built.fitted = sorted(to_fit)
    built.timings["plan_s"] = time.perf_counter() - t0
    if to_fit:
        built.timings["fit_transforms_s"] = timings_fit
    if cl.method != "fixed":
        built.timings["class_breaks_s"] = timings_classes
    return built


def memory_estimate_bytes(built: Built, workers: int | None = None) -> int:
    """A rough upper bound of peak memory: live chunks per worker times the number of raster nodes."""
    workers = workers or dask.system.CPU_COUNT
    c = built.grid.chunk_size
    per_chunk = c * c * 4
    n_nodes = len(built.layers) + len(built.criteria) + 4
    est = workers * per_chunk * n_nodes * 2
    for spec in built.plan.config.layers.values():
        est += workers * spec.memory_bytes(built.grid)
    return est


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class _EventProgress(Callback):
    """Dask callback that reports finished/total tasks as JSON-line events, at most every ``dt`` seconds."""

    def __init__(self, events, dt: float = 0.5):
        super().__init__()
        self.events, self.dt, self.last = events, dt, 0.0

    def _start_state(self, dsk, state):
        self.total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))

    def _posttask(self, key, result, dsk, state, worker_id):
        now = time.perf_counter()
        if now - self.last >= self.dt:
            self.last = now
            self.events.emit("progress", done=len(state["finished"]), total=self.total)

    def _finish(self, dsk, state, errored):
        self.events.emit("progress", done=len(state["finished"]), total=self.total)


def progress(enabled: bool, events=None):
    """A progress bar on stderr for the local scheduler, or JSON-line progress events, or nothing."""
    if events is not None:
        return _EventProgress(events)
    return ProgressBar(minimum=1.0, dt=0.25, out=sys.stderr) if enabled else nullcontext()


def count_nan(arr: da.Array) -> Any:
    return da.isnan(arr).sum()
