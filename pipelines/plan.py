"""The plan: every name in a config resolved to one node of a DAG, checked before any pixel is read.

Unknown names (with a did-you-mean), references of the wrong kind (a vector where a raster layer is needed),
cycles among derived layers, unused inputs and layers, and missing files are all reported here, each with the
config file and the key path.
"""

from __future__ import annotations

import graphlib
from dataclasses import dataclass, field
from pathlib import Path

from rasters.errors import ConfigError, InputDataError, did_you_mean
from suitability.ahp import ahp
from suitability.expressions import parse as parse_expression
from suitability.overlay import make_overlay
from suitability.transforms import make_transform

from .config import LoadedConfig, RasterInput, VectorInput
from .input_policy import check_datum, check_input

# Layers the water block adds, usable by criteria, constraints and outputs.layers.
WATER_LAYERS = ("water_criterion", "water_headroom_per_km2")


@dataclass(frozen=True)
class Node:
    name: str
    kind: str  # "raster", "vector", "slope", "distance", "rasterize"
    deps: tuple[str, ...]
    key: str  # config key path that defines it

    @property
    def is_vector(self) -> bool:
        return self.kind == "vector"


@dataclass
class Plan:
    loaded: LoadedConfig
    nodes: dict[str, Node]
    order: list[str]
    needed: list[str]  # raster-valued names that must be computed (criteria, expressions, written layers)
    uses: dict[str, list[str]] = field(default_factory=dict)

    @property
    def config(self):
        return self.loaded.config


def _err(loaded: LoadedConfig, key: str, msg: str) -> ConfigError:
    return ConfigError(f"{loaded.path}: {key}: {msg}")


def build_plan(loaded: LoadedConfig, check_files: bool = True) -> Plan:
    """Resolve every name in the config into a DAG; raise ``ConfigError``/``InputDataError`` on the first problem."""
    cfg = loaded.config
    nodes: dict[str, Node] = {}
    for name, inp in cfg.inputs.items():
        kind = "raster" if isinstance(inp, RasterInput) else "vector"
        nodes[name] = Node(name, kind, (), f"inputs.{name}")
    for name, layer in cfg.layers.items():
        key = f"layers.{name}"
        if name in nodes:
            raise _err(loaded, key, f"'{name}' is already an input name; every name must be unique")
        nodes[name] = Node(name, layer.type, tuple(r.name for r in layer.refs()), key)

    if cfg.water is not None:
        for name in WATER_LAYERS:
            if name in nodes:
                raise _err(loaded, nodes[name].key, f"'{name}' is reserved for the water block's layer")
            nodes[name] = Node(name, "water", (cfg.water.zones,), "water")

    raster_names = sorted(n for n, nd in nodes.items() if not nd.is_vector)
    vector_names = sorted(n for n, nd in nodes.items() if nd.is_vector)
    uses: dict[str, list[str]] = {n: [] for n in nodes}

    def ref(name: str, key: str, want: str, user: str) -> None:
        pool = raster_names if want == "raster" else vector_names
        if name not in nodes:
            what = "an input or layer" if want == "raster" else "a vector input"
            raise _err(loaded, key, f"'{name}' is not {what}{did_you_mean(name, pool)}")
        if nodes[name].is_vector != (want == "vector"):
            if want == "raster":
                raise _err(
                    loaded, key,
                    f"'{name}' is a vector input; use a raster layer here (a 'distance' or 'rasterize' layer of it)",
                )
            raise _err(loaded, key, f"'{name}' is a raster; a vector input is needed here{did_you_mean(name, pool)}")
        uses[name].append(user)

    for name, layer in cfg.layers.items():
        key = f"layers.{name}"
        for r in layer.refs():
            ref(r.name, f"{key}.{r.key}", r.want, key)

    needed: list[str] = []
    g = cfg.grid
    if g.extent is not None:
        ref(g.extent, "grid.extent", "vector", "grid")
    if g.mask is not None:
        ref(g.mask, "grid.mask", "vector", "grid")
    for cname, crit in cfg.criteria.items():
        key = f"criteria.{cname}"
        ref(crit.layer, f"{key}.layer", "raster", key)
        needed.append(crit.layer)
        try:
            make_transform(crit.transform.type, crit.transform.params())
        except ConfigError as e:
            raise _err(loaded, f"{key}.transform", str(e)) from None
    if cfg.water is not None:
        ref(cfg.water.zones, "water.zones", "vector", "water")
        for name in WATER_LAYERS:
            uses[name].append("water")  # optional outputs: never "unused"
        sa = cfg.water.synthetic_allocation
        if sa is not None and check_files and not loaded.resolve(sa.population_csv).exists():
            raise InputDataError(f"{loaded.path}: water.synthetic_allocation.population_csv: "
                                 f"{loaded.resolve(sa.population_csv)}: file not found")
    if cfg.carrying is not None and cfg.water is None:
        raise _err(loaded, "carrying", "needs a 'water' block (the water-limited population is one of the limits)")
    if cfg.carrying is not None and not cfg.outputs.classes:
        raise _err(loaded, "carrying", "needs outputs.classes (land in the top classes is one of the limits)")
    if cfg.conflicts is not None:
        ref(cfg.conflicts.settlements, "conflicts.settlements", "vector", "conflicts")
        for i, r in enumerate(cfg.conflicts.red_lines):
            ref(r, f"conflicts.red_lines[{i}]", "vector", "conflicts")
    rel = cfg.relocation
    if rel is not None:
        ref(rel.counties, "relocation.counties", "vector", "relocation")
        ref(rel.dem, "relocation.dem", "raster", "relocation")
        ref(rel.friction, "relocation.friction", "raster", "relocation")
        needed += [rel.dem, rel.friction]
        for i, d in enumerate(rel.destinations):
            ref(d, f"relocation.destinations[{i}]", "vector", "relocation")
        if not cfg.outputs.classes:
            raise _err(loaded, "relocation", "needs outputs.classes (destination land is counted by class)")
        if not rel.scenarios:
            raise _err(loaded, "relocation.scenarios", "name at least one scenario")
        if check_files and not loaded.resolve(rel.census_csv).exists():
            raise InputDataError(f"{loaded.path}: relocation.census_csv: {loaded.resolve(rel.census_csv)}: "
                                 "file not found")
    st = cfg.sites
    if st is not None:
        for i, c in enumerate(st.candidates):
            ref(c, f"sites.candidates[{i}]", "vector", "sites")
        for i, n in enumerate(st.point_layers):
            ref(n, f"sites.point_layers[{i}]", "raster", "sites")
            needed.append(n)
        if st.regions is not None:
            if st.regions.within:
                ref(st.regions.within, "sites.regions.within", "vector", "sites")
            if st.regions.avoid:
                ref(st.regions.avoid, "sites.regions.avoid", "vector", "sites")
            lo, hi = st.regions.region_area_km2
            if not 0 < lo <= hi:
                raise _err(loaded, "sites.regions.region_area_km2", f"need 0 < smallest <= largest, got [{lo}, {hi}]")
        if not cfg.outputs.classes:
            raise _err(loaded, "sites", "needs outputs.classes (class areas per site)")
        if st.sensitivity is not None and cfg.combine.method != "weighted_sum":
            raise _err(loaded, "sites.sensitivity", "Monte Carlo rasters and rank stability need combine.method "
                       f"weighted_sum (got {cfg.combine.method})")
    if cfg.report.zones is not None:
        ref(cfg.report.zones, "report.zones", "vector", "report")
    _check_weights(loaded, ref)
    try:
        make_overlay(cfg.combine.method, cfg.combine.params())
    except ConfigError as e:
        raise _err(loaded, "combine", str(e)) from None
    for i, ex in enumerate(cfg.constraints.exclude):
        key = f"constraints.exclude[{i}]"
        if ex.vector is not None:
            ref(ex.vector, f"{key}.vector", "vector", key)
        else:
            try:
                expr = parse_expression(ex.where)
                expr.check_names(raster_names)
            except ConfigError as e:
                raise _err(loaded, f"{key}.where", str(e)) from None
            for n in sorted(expr.names):
                ref(n, f"{key}.where", "raster", key)
                needed.append(n)
    for i, n in enumerate(cfg.outputs.layers):
        ref(n, f"outputs.layers[{i}]", "raster", "outputs")
        needed.append(n)

    # Cycles among derived layers.
    sorter = graphlib.TopologicalSorter({n: nd.deps for n, nd in nodes.items()})
    try:
        order = list(sorter.static_order())
    except graphlib.CycleError as e:
        cycle = e.args[1]
        raise _err(loaded, f"layers.{cycle[0]}", "cycle: " + " -> ".join(cycle)) from None

    for name, nd in nodes.items():
        if not uses[name]:
            where = "input" if nd.kind in ("raster", "vector") else "layer"
            raise _err(
                loaded, nd.key,
                f"{where} '{name}' is not used by any layer, criterion, constraint, grid or output; remove or use it",
            )

    if check_files:
        for name, inp in cfg.inputs.items():
            attr = "raster" if isinstance(inp, RasterInput) else "vector"
            p = loaded.resolve(getattr(inp, attr))
            check_input(loaded.path, name, inp, attr, p)
            if isinstance(p, Path) and not p.exists():  # GDAL virtual paths and URLs stay str: GDAL decides
                raise InputDataError(f"{loaded.path}: inputs.{name}.{attr}: {p}: file not found")
            check_datum(loaded.path, name, inp, attr, p, cfg.grid.crs)

    seen: set[str] = set()
    needed = [n for n in needed if not (n in seen or seen.add(n))]
    return Plan(loaded, nodes, order, needed, uses)


def _check_weights(loaded: LoadedConfig, ref) -> None:
    cfg = loaded.config
    w, names = cfg.weights, list(cfg.criteria)
    given = [c for c, crit in cfg.criteria.items() if crit.weight is not None]
    if w.method == "direct":
        missing = [c for c in names if c not in given]
        if missing:
            raise _err(loaded, f"criteria.{missing[0]}.weight",
                       "required with weights.method direct (or choose ahp, rank, entropy, critic or learned)")
        return
    if given:
        raise _err(loaded, f"criteria.{given[0]}.weight",
                   f"weights come from weights.method {w.method}; remove the per-criterion weight")
    if w.method == "ahp":
        if w.pairwise is None:
            raise _err(loaded, "weights.pairwise", "required for ahp: a full matrix or the upper triangle")
        try:
            ahp(w.pairwise, names, method=w.derivation, ri_table=w.ri_table, max_cr=w.max_cr,
                accept_inconsistent=w.accept_inconsistent)
        except ConfigError as e:
            raise _err(loaded, "weights.pairwise", str(e)) from None
    elif w.method == "rank":
        if not w.ranks:
            raise _err(loaded, "weights.ranks", "required for rank: criterion -> rank (1 = most important)")
        for c in w.ranks:
            if c not in cfg.criteria:
                raise _err(loaded, f"weights.ranks.{c}", f"not a criterion{did_you_mean(c, names)}")
        for c in names:
            if c not in w.ranks:
                raise _err(loaded, "weights.ranks", f"criterion '{c}' has no rank")
    elif w.method in ("entropy", "critic"):
        for i, c in enumerate(w.cost):
            if c not in cfg.criteria:
                raise _err(loaded, f"weights.cost[{i}]", f"'{c}' is not a criterion{did_you_mean(c, names)}")
    elif w.method == "learned":
        if w.presence is None:
            raise _err(loaded, "weights.presence", "required for learned: a vector input of existing settlements")
        ref(w.presence, "weights.presence", "vector", "weights")


def vector_inputs(plan: Plan) -> dict[str, VectorInput]:
    return {n: i for n, i in plan.config.inputs.items() if isinstance(i, VectorInput)}
