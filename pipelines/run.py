"""Run a plan: build the grid, read inputs lazily, derive layers, score, classify and write, in one dask.compute."""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from contextlib import contextmanager, nullcontext
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
from suitability.ahp import ahp
from suitability.classify import ClassScheme, class_breaks, classify
from suitability.constraints import apply_exclusions, exclusion_mask
from suitability.expressions import parse as parse_expression
from suitability.fitting import layer_stats_many
from suitability.learned_weights import learned
from suitability.objective_weights import critic, entropy
from suitability.overlay import make_overlay
from suitability.transforms import make_transform
from suitability.weights import direct, rank_weights
from vectors import io as vio
from vectors.rasterize import mask as vmask

from .cache import LayerCache
from .config import RasterInput
from .layers import Context
from .plan import Plan
from .water_step import build_water

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
    weight_set: Any = None  # suitability.weights.WeightSet with the method's details
    water: Any = None  # pipelines.water_step.WaterState when the config has a water block
    cache_log: dict[str, str] = field(default_factory=dict)  # layer -> hit / stored / not cached (run.json)
    compute: dict[str, Any] = field(default_factory=dict)  # the scheduler it ran on (pipelines.compute)
    relocation: Any = None  # pipelines.relocation_step.RelocationResult after a run with a relocation block
    sites: Any = None  # pipelines.sites_step.SitesResult after a run with a sites block
    layer_valid: dict[str, int] = field(default_factory=dict)  # valid cells of layers counted when cached


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
        gdf = vio.read(path, crs, layer=inp.layer, clip_bounds=clip_bounds, where=inp.where, towgs84=inp.towgs84)
    except InputDataError as e:
        raise InputDataError(f"{plan.loaded.path}: inputs.{name}: {e}") from None
    except ConfigError as e:
        key = "towgs84" if ": towgs84: " in str(e) else "where"  # the plan checked towgs84 already (check_datum)
        raise ConfigError(f"{plan.loaded.path}: inputs.{name}.{key}: {e}") from None
    return gdf


def build(plan: Plan, dry_run: bool = False) -> Built:
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
    timings_layers: dict[str, float] = {}
    cache = LayerCache.for_plan(plan, grid, dry_run=dry_run)
    water = None

    for name in plan.order:
        node = plan.nodes[name]
        if node.kind == "vector":
            if name not in vectors:
                vectors[name] = _read_vector(plan, name, grid.crs, clip_bounds=grid.bounds)
            if len(vectors[name]) == 0:
                warnings_.append(f"inputs.{name}: no features inside the grid")
            continue
        if node.kind == "water":
            if water is None:
                region = vmask(vectors[cfg.grid.mask], grid) if cfg.grid.mask is not None else None
                water = build_water(cfg, loaded, vectors[cfg.water.zones], grid, region)
                warnings_ += water.warnings
            layers[name] = water.layers[name]
            units[name] = "score 0-1" if name == "water_criterion" else "people/km²"
            continue
        if node.kind == "raster":
            inp: RasterInput = cfg.inputs[name]
            path = loaded.resolve(inp.raster)
            try:
                layers[name] = rio.read(path, grid, resampling=inp.resampling, band=inp.band, towgs84=inp.towgs84)
            except InputDataError as e:
                raise InputDataError(f"{loaded.path}: inputs.{name}: {e}") from None
            except ConfigError as e:  # only a towgs84 that does not fit (the plan checked it already)
                raise ConfigError(f"{loaded.path}: inputs.{name}: {e}") from None
            units[name] = inp.units
            continue
        ctx = Context(grid, layers, vectors, warnings_, node.key, dry_run=dry_run)
        try:
            t_layer = time.perf_counter()
            layers[name], units[name] = cache.build(name, cfg.layers[name], ctx)
            if time.perf_counter() - t_layer > 0.5:
                timings_layers[f"layer_{name}_s"] = time.perf_counter() - t_layer
        except ConfigError as e:
            raise ConfigError(f"{loaded.path}: {node.key}: {e}") from None

    transforms = {c: make_transform(crit.transform.type, crit.transform.params()) for c, crit in cfg.criteria.items()}
    to_fit = {c: t for c, t in transforms.items() if t.needs_fit}
    if to_fit:
        # Parameters left out are fitted from the layers' statistics: one pass over all of them together.
        t1 = time.perf_counter()
        # Statistics of the study area only (inside grid.mask), not of the whole bounding box.
        # They are cached like the layers (a weight change must not read every fitted layer again).
        fit_layers = sorted({cfg.criteria[c].layer for c in to_fit})
        stats = cache.stats_lookup(fit_layers, cfg.grid.mask)
        missing = [name for name in fit_layers if name not in stats]
        if missing:
            region = vmask(vectors[cfg.grid.mask], grid) if cfg.grid.mask is not None else None
            computed = layer_stats_many({
                name: layers[name] if region is None else da.where(region, layers[name], np.float32(np.nan))
                for name in missing
            })
            cache.stats_store(computed, cfg.grid.mask)
            stats.update(computed)
        for c, t in to_fit.items():
            try:
                transforms[c] = t.fit(stats[cfg.criteria[c].layer], cfg.criteria[c].layer)
            except ConfigError as e:
                raise ConfigError(f"{loaded.path}: criteria.{c}.transform: {e}") from None
        timings_fit = time.perf_counter() - t1
    # Criterion scores and the exclusion mask do not depend on the weights, the overlay or the classes: they come
    # from the cache when only those changed (pipelines.cache.LayerCache.resolve), else they are built here.
    def criterion(cname: str):
        return lambda: transforms[cname](layers[cfg.criteria[cname].layer]).astype(np.float32)

    items = [(f"criterion:{c}", cache.criterion_key(cfg.criteria[c].layer, t), criterion(c), "score 0-1",
              {cfg.criteria[c].layer: layers[cfg.criteria[c].layer]}) for c, t in transforms.items()]
    ex_names = _exclusion_names(cfg)
    if ex_names is not None:
        ex_key = cache.exclusion_key([ex.model_dump(mode="json") for ex in cfg.constraints.exclude], cfg.grid.mask,
                                     ex_names)
        rule_inputs = {n: layers[n] for n in ex_names if isinstance(cfg.inputs.get(n), RasterInput)}
        items.append(("exclusions", ex_key, lambda: _exclusions(cfg, loaded, layers, vectors, grid), "excluded",
                      rule_inputs))
    resolved = cache.resolve(items)
    criteria = {c: resolved[f"criterion:{c}"] for c in transforms}
    # Valid cells of the layers behind criteria and rules stored or found in the cache (publish warns about
    # empty inputs).
    layer_valid = {n: count for counts in cache.source_valid.values() for n, count in counts.items()}
    t1 = time.perf_counter()
    try:
        weight_set = derive_weights(cfg, criteria, vectors, grid)
    except ConfigError as e:
        raise ConfigError(f"{loaded.path}: {'criteria' if cfg.weights.method == 'direct' else 'weights'}: {e}") \
            from None
    weights = dict(weight_set)
    if cfg.weights.method not in ("direct", "ahp", "rank"):
        timings_weights = time.perf_counter() - t1
    overlay = make_overlay(cfg.combine.method, cfg.combine.params())
    score = overlay(list(criteria.values()), [weights[c] for c in criteria]).astype(np.float32)
    if ex_names is not None:
        score = apply_exclusions(score, [resolved["exclusions"]])

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
    built.water = water
    built.cache_log = cache.log
    built.layer_valid = layer_valid
    built.weight_set = weight_set
    if cfg.weights.method not in ("direct", "ahp", "rank"):
        built.timings["derive_weights_s"] = timings_weights
    built.fitted = sorted(to_fit)
    built.timings["plan_s"] = time.perf_counter() - t0
    built.timings.update(timings_layers)
    if to_fit:
        built.timings["fit_transforms_s"] = timings_fit
    if cl.method != "fixed":
        built.timings["class_breaks_s"] = timings_classes
    return built


def _exclusion_names(cfg) -> list[str] | None:
    """Every input and layer the constraints and the study-area mask read; None when nothing is excluded."""
    if not cfg.constraints.exclude and cfg.grid.mask is None:
        return None
    names: list[str] = []
    for ex in cfg.constraints.exclude:
        names += [ex.vector] if ex.where is None else sorted(parse_expression(ex.where).names)
    return names


def _exclusions(cfg, loaded, layers: dict[str, da.Array], vectors: dict, grid: Grid) -> da.Array:
    """The exclusion mask (True = excluded): every ``constraints.exclude`` entry and the outside of ``grid.mask``,
    combined with OR (``suitability.constraints.exclusion_mask``)."""
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
    return exclusion_mask(masks)


def derive_weights(cfg, criteria: dict[str, da.Array], vectors: dict, grid: Grid):
    """The WeightSet of the config's weights.method (data-driven methods read a seeded sample of cells)."""
    w, names = cfg.weights, list(cfg.criteria)
    if w.method == "direct":
        return direct({c: cfg.criteria[c].weight for c in names})
    if w.method == "ahp":
        return ahp(w.pairwise, names, method=w.derivation, ri_table=w.ri_table, max_cr=w.max_cr,
                   accept_inconsistent=w.accept_inconsistent)
    if w.method == "rank":
        return rank_weights(w.ranks, method=w.rank_method)
    if w.method == "entropy":
        return entropy(criteria, n_samples=w.n_samples, seed=w.seed, cost=w.cost)
    if w.method == "critic":
        return critic(criteria, n_samples=w.n_samples, seed=w.seed, cost=w.cost)
    presence = vmask(vectors[w.presence], grid, all_touched=True)
    return learned(criteria, presence, method=w.model, n_background=w.n_samples, n_presence=w.n_samples,
                   seed=w.seed, folds=w.folds)


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


@contextmanager
def progress(enabled: bool, events=None):
    """A progress bar on stderr (dask's for tasks run here; a block counter for blocks written from a cluster or
    worker processes), or JSON-line progress events, or nothing."""
    from rasters import io as rio_mod

    bar_open = [False]  # a bar line without its newline yet: a failure's message must start on a line of its own

    def blocks(done: int, total: int) -> None:
        if events is not None:
            events.emit("progress", done=done, total=total, unit="blocks")
        else:
            width = 40
            k = int(width * done / max(total, 1))
            end = "\n" if done >= total else ""
            bar_open[0] = not end
            print(f"\r[{'#' * k}{' ' * (width - k)}] {100 * done / max(total, 1):5.1f}% blocks written", end=end,
                  file=sys.stderr, flush=True)

    local = _EventProgress(events) if events is not None else (
        ProgressBar(minimum=1.0, dt=0.25, out=sys.stderr) if enabled else nullcontext())
    previous = rio_mod.block_progress
    rio_mod.block_progress = blocks if (enabled or events is not None) else None
    try:
        with local:
            yield
    finally:
        rio_mod.block_progress = previous
        if bar_open[0]:
            print(file=sys.stderr, flush=True)


def count_nan(arr: da.Array) -> Any:
    return da.isnan(arr).sum()
