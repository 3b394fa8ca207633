"""The config schema: what an analyst may write in a YAML config, validated before any pixel is read.

Keys are plain English with units in the key (``resolution_m``, ``max_km``); relative paths resolve against the
config file's folder; unknown keys are errors with a did-you-mean; YAML is read with ``safe_load`` only.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from rasters.errors import ConfigError, did_you_mean

from .base import Strict
from .cache import CacheSpec
from .compute import ComputeSpec
from .input_policy import is_virtual
from .layers import LAYER_TAGS, Layer


# ------------------------------------------------------------------------------------------------ grid
class GridSpec(Strict):
    crs: str = Field(description="CRS of the analysis grid: EPSG code ('EPSG:32647'), PROJ string or WKT")
    resolution_m: float = Field(gt=0, description="cell size in CRS units (metres for a projected CRS)")
    extent: str | None = Field(None, description="name of a vector input whose extent the grid covers")
    bounds: tuple[float, float, float, float] | None = Field(
        None, description="xmin, ymin, xmax, ymax in grid CRS units (instead of extent)"
    )
    buffer_m: float = Field(0.0, ge=0, description="grow the extent by this distance on every side")
    chunk_size: int = Field(1024, ge=16, description="processing chunk edge in cells; memory scales with its square")
    mask: str | None = Field(None, description="name of a polygon vector input: cells outside it are nodata")

    @field_validator("crs")
    @classmethod
    def _crs(cls, v: str) -> str:
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        try:
            CRS.from_user_input(v)
        except CRSError:
            raise ValueError(f"'{v}' is not a CRS PROJ understands (e.g. 'EPSG:4326' or a PROJ string)") from None
        return v

    @model_validator(mode="after")
    def _one_extent(self) -> GridSpec:
        if (self.extent is None) == (self.bounds is None):
            raise ValueError("give exactly one of 'extent' (a vector input name) or 'bounds' [xmin, ymin, xmax, ymax]")
        return self


# ------------------------------------------------------------------------------------------------ inputs
def _pathlike(v: Any) -> Any:
    return os.fspath(v) if isinstance(v, os.PathLike) else v


# A string, not a Path: Path folds "//", which turns "/vsicurl/https://host/x.tif" into "/vsicurl/https:/host/x.tif".
InputPath = Annotated[str, BeforeValidator(_pathlike)]


def _towgs84(v: list[float]) -> list[float]:
    from rasters.datum import check_towgs84

    return list(check_towgs84(v))  # its ConfigError is a ValueError: reported at inputs.<name>.towgs84


# rasters.datum describes the convention and how the shift is applied (file -> WGS 84 -> grid, both ends bound).
Towgs84 = Annotated[list[float], AfterValidator(_towgs84)]
TOWGS84_HELP = ("declared 7-parameter Helmert from the file's own datum (Beijing 1954, Xian 1980, ...) to WGS 84: "
                "[dx, dy, dz, rx, ry, rz, ds] in metres, arc-seconds and ppm, Position Vector convention, exactly as "
                "PROJ's +towgs84 and GDAL's TOWGS84 (a Coordinate Frame set has rx, ry, rz negated); the file's CRS "
                "is used with it and put on the grid through WGS 84. Not with allow_ballpark")


def _allow_remote() -> Any:
    return Field(False, description="accept a /vsicurl/ (or other network /vsi) path")


def _allow_ballpark() -> Any:
    return Field(False, description="accept a legacy Chinese datum (Beijing 1954, Xian 1980, New Beijing) that PROJ "
                 "can only shift to the grid's datum by a ballpark (~100 m errors)")


class _FileInput(Strict):
    """What raster and vector inputs share: the datum rule (a declared shift or a ballpark, not both)."""

    @model_validator(mode="after")
    def _datum(self) -> _FileInput:
        if self.towgs84 is not None and self.allow_ballpark:  # type: ignore[attr-defined]
            raise ValueError("give either towgs84 (a declared datum shift) or allow_ballpark: true (no shift), "
                             "not both")
        return self


class RasterInput(_FileInput):
    raster: InputPath = Field(description="path to any GDAL raster (relative to the config file); a GDAL virtual "
                              "path such as /vsicurl/https://... is kept verbatim")
    band: int = Field(1, ge=1)
    resampling: Literal[
        "nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode", "min", "max", "med"
    ] = Field("bilinear", description="bilinear for continuous data, nearest or mode for categories")
    units: str = Field("", description="units of the values, recorded in outputs (e.g. 'm')")
    allow_remote: bool = _allow_remote()
    allow_vrt: bool = Field(False, description="accept a GDAL VRT (it can point at any file or URL)")
    allow_ballpark: bool = _allow_ballpark()
    towgs84: Towgs84 | None = Field(None, description=TOWGS84_HELP)


class VectorInput(_FileInput):
    vector: InputPath = Field(description="path to any OGR vector (GeoPackage, Shapefile, GeoJSON); a GDAL virtual "
                              "path such as /vsicurl/https://... is kept verbatim")
    layer: str | None = Field(None, description="layer name inside the file (required when it has several)")
    where: str | None = Field(None, description="OGR SQL attribute filter, e.g. \"name_zh IN ('玛多县')\"")
    label: str | None = Field(None, description="what the layer is, shown in outputs (say SYNTHETIC/approximate)")
    allow_remote: bool = _allow_remote()
    allow_vrt: bool = Field(False, description="accept an OGR VRT (it can point at any file or URL)")
    allow_ballpark: bool = _allow_ballpark()
    towgs84: Towgs84 | None = Field(None, description=TOWGS84_HELP)


def _input_kind(v: Any) -> str | None:
    if isinstance(v, dict):
        return "raster" if "raster" in v else "vector" if "vector" in v else None
    return "raster" if isinstance(v, RasterInput) else "vector" if isinstance(v, VectorInput) else None


Input = Annotated[
    Annotated[RasterInput, Tag("raster")] | Annotated[VectorInput, Tag("vector")],
    Discriminator(
        _input_kind, custom_error_type="input_kind", custom_error_message="give 'raster: <path>' or 'vector: <path>'"
    ),
]


# ------------------------------------------------------------------------------------------------ analysis
class TransformSpec(BaseModel):
    """``{type: linear, lower: .., upper: ..}``; parameters are checked by ``suitability.transforms``."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: str

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Criterion(Strict):
    layer: str = Field(description="name of an input raster or a derived layer")
    transform: TransformSpec
    weight: float | None = Field(None, description="relative weight (weights.method direct); normalised to sum to 1")


class Exclusion(Strict):
    vector: str | None = Field(None, description="vector input: cells inside its features are excluded")
    buffer_m: float = Field(0.0, ge=0, description="grow the features by this distance first")
    all_touched: bool = False
    where: str | None = Field(None, description="condition on layers, e.g. 'slope_deg > 25 or elevation_m >= 5000'")

    @model_validator(mode="after")
    def _one(self) -> Exclusion:
        if (self.vector is None) == (self.where is None):
            raise ValueError("give exactly one of 'vector' or 'where'")
        return self


class Constraints(Strict):
    exclude: list[Exclusion] = Field(default_factory=list)


class Weights(Strict):
    """How criterion weights are derived; every method is recorded with its details in run.json."""

    method: Literal["direct", "ahp", "rank", "entropy", "critic", "learned"] = Field(
        "direct", description="direct: each criterion's weight; ahp: pairwise matrix; rank: rank-order weights; "
        "entropy/critic: from the data (熵权法, CRITIC); learned: from presence locations with scikit-learn"
    )
    pairwise: list[list[float | str]] | list[float | str] | None = Field(
        None, description="ahp: full matrix (rows/columns in criteria order) or the upper triangle row by row; "
        "Saaty's 1-9 scale, '1/3' allowed"
    )
    derivation: Literal["eigenvector", "geometric_mean", "column_mean"] = "eigenvector"
    ri_table: Literal["saaty", "alonso_lamata"] = Field("saaty", description="random index table for CR")
    max_cr: float = Field(0.10, gt=0, description="largest acceptable consistency ratio (Saaty: 0.10)")
    accept_inconsistent: bool = False
    ranks: dict[str, int] | None = Field(None, description="rank: criterion -> rank (1 = most important)")
    rank_method: Literal["rank_order_centroid", "rank_sum", "rank_reciprocal"] = "rank_order_centroid"
    n_samples: int = Field(10_000, ge=100, description="entropy/critic/learned: cells sampled (seeded)")
    seed: int = 0
    cost: list[str] = Field(default_factory=list, description="entropy/critic: criteria where less is better")
    presence: str | None = Field(None, description="learned: vector input of existing towns/built-up land")
    model: Literal["logistic", "random_forest"] = "logistic"
    folds: int = Field(5, ge=2)


class Combine(BaseModel):
    """``{method: owa, orness: 0.7}``: the overlay method and its parameters (checked by suitability.overlay)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    method: str = "weighted_sum"

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Classes(Strict):
    method: Literal["fixed", "equal_interval", "quantile", "natural_breaks", "geometric_interval"] = Field(
        "fixed", description="fixed breaks, or breaks computed from the suitability values (a second pass)"
    )
    breaks: list[float] = Field([0.2, 0.4, 0.6, 0.8], description="fixed method: class edges (right-open)")
    n: int = Field(5, ge=2, le=32, description="number of classes for computed methods")
    sample_size: int | None = Field(None, ge=100, description="cells sampled for quantile/natural breaks")
    seed: int = Field(0, description="seed of the cell sample")
    labels: list[str] | None = Field(None, description="one label per class, lowest class first (default 低..高)")
    labels_en: list[str] | None = Field(None, description="English labels, lowest class first")
    colors: list[str] | None = Field(None, description="hex colours, lowest class first (default red to green)")


class Outputs(Strict):
    folder: Path = Field(Path("outputs"), description="output folder (relative to the config file)")
    suitability: str = Field("suitability.tif", description="float32 0-1 suitability")
    classes: str | None = Field("suitability_class.tif", description="uint8 classes 1..n, 0 = nodata; null to skip")
    layers: list[str] = Field(default_factory=list, description="also write these inputs/derived layers")
    criteria: bool = Field(False, description="also write each transformed criterion (0-1)")


class PerCapita(Strict):
    value: float = Field(gt=0, description="per-capita water use")
    unit: Literal["m3/person/yr", "L/person/day"] = Field(description="comprehensive m³/yr or a domestic quota L/day")
    source: str = Field(description="where the figure comes from (e.g. GB/T 50331-2002 zone 6: 75-125 L)")


class SyntheticAllocation(Strict):
    """Demo only: share a provincial water cap among the zones by a documented SYNTHETIC rule."""

    population_csv: Path = Field(description="census CSV with name_zh and population_2020")
    total_m3: float = Field(2.96e9, gt=0, description="provincial cap m³/yr (国函〔2023〕159号: 29.6 亿 m³, 2025)")
    rule: Literal["population_area", "population", "area"] = "population_area"
    per_capita_m3: float = Field(413.0, gt=0, description="current use per person m³/yr (Qinghai 2021)")


class Water(Strict):
    """四水四定: water-management zones as budgets (carrying population, headroom, 以水定地 land)."""

    zones: str = Field(description="vector input of water-management zones (counties, prefectures or basins)")
    name: str = Field("name_zh", description="attribute with the zone name")
    allocation_m3: str = Field("synthetic_allocation_m3", description="attribute: water allocation m³/yr")
    population: str = Field("population", description="attribute: current population")
    current_use_m3: str | None = Field(None, description="attribute: current use m³/yr")
    agriculture_share: float | str = Field(0.0, description="share reserved for agriculture (number or attribute)")
    industry_share: float | str = Field(0.0, description="share reserved for industry")
    ecology_share: float | str = Field(0.0, description="share reserved for ecology")
    per_capita: PerCapita
    method: Literal["budget", "remaining"] = "budget"
    land_m2_per_person: float = Field(100.0, gt=0, description="以水定地: construction land per person (m²)")
    synthetic_allocation: SyntheticAllocation | None = None
    on_overlap: Literal["error", "first"] = Field("first", description="a cell in two zones: refuse, or first wins")
    on_gap: Literal["warn", "error"] = Field("warn", description="study-area cells in no zone")


class Carrying(Strict):
    """Carrying scale by the 短板 rule: the minimum of the water-, land- and other limited populations."""

    top_classes: list[int] = Field([4, 5], description="suitability classes counted as land for towns")
    density_per_km2: float = Field(10_000.0, gt=0, description="people per km² of town land")
    limits: dict[str, dict[str, float]] = Field(default_factory=dict,
                                                description="further limits: name -> {zone: population}")


class Conflicts(Strict):
    """现状问题识别: existing settlements in red lines, on unsuitable land, or in over-loaded water zones."""

    settlements: str = Field(description="vector input of existing settlements (points or polygons)")
    name: str | None = Field(None, description="attribute with the settlement name")
    red_lines: list[str] = Field(default_factory=list, description="vector inputs of ecological red lines")
    unsuitable_classes: list[int] = Field([1], description="suitability classes counted as unsuitable")


class RelocationScenario(Strict):
    name: str
    share: float | dict[str, float] | None = Field(None, description="share of each source's people (0-1), or "
                                                   "per group, e.g. {herders: 0.2}")
    numbers: dict[str, float] | None = Field(None, description="people per source (instead of a share)")


class RelocationCost(Strict):
    per_minute: float = Field(1.0, ge=0, description="cost per minute of travel from the source seat")
    per_suitability_loss: float = Field(0.0, ge=0, description="cost per unit of (1 - destination suitability)")
    leave_prefecture: float = Field(0.0, ge=0, description="cost per person moving to another prefecture")
    per_metre_gain: float = Field(0.0, ge=0, description="cost per metre of altitude gained")


class Relocation(Strict):
    """Who moves from very high-altitude counties, where to, within water/land/service limits (an LP)."""

    counties: str = Field(description="vector input of counties (sources are flagged among them)")
    name: str = Field("name_zh", description="county name attribute")
    prefecture: str | None = Field("prefecture", description="prefecture attribute (for the leave-prefecture cost)")
    census_csv: Path = Field(description="CSV with name_zh, population_2020 and source per county")
    dem: str = Field(description="elevation layer in metres")
    friction: str = Field(description="friction layer (min/m) for travel times")
    seat_lon: str = "seat_lon"
    seat_lat: str = "seat_lat"
    rule: dict[str, Any] | None = Field(None, description="flag rule {combine: all|any|at_least, conditions: "
                                        "['seat_elevation_m >= 4000', ...]}; default: seat >= 4000 m, density < 1, "
                                        "half the land >= 4000 m")
    province_centre: str = Field("西宁市城中区", description="county whose seat is the provincial centre")
    destinations: list[str] = Field(description="vector inputs of candidate destination towns (points)")
    destination_name: str = Field("name_zh", description="name attribute of destination points")
    destination_max_elevation_m: float | None = Field(3500.0, description="drop destinations above this")
    catchment_minutes: float = Field(60.0, gt=0, description="a destination's land: cells it reaches first within")
    top_classes: list[int] = Field([4, 5], description="suitability classes counted as land for newcomers")
    density_per_km2: float = Field(10_000.0, gt=0)
    cost: RelocationCost = Field(default_factory=RelocationCost)
    max_share: float = Field(1.0, gt=0, le=1, description="largest share of a source's movers in one destination")
    min_group: float | None = Field(None, gt=0, description="smallest viable group in a destination (MILP)")
    scenarios: list[RelocationScenario] = Field(description="e.g. 20 %, 50 % and 100 % of the people")


class Ranking(Strict):
    method: Literal["weighted_sum", "topsis"] = "topsis"
    normalise: Literal["minmax", "vector"] = "vector"
    columns: dict[str, float | dict[str, Any]] = Field(
        description="column -> weight, or {weight, direction: benefit|cost}; columns of the zonal table: "
        "suitability_mean, suitability_p90, crit_<criterion>_mean, class5_high_km2, <layer>_at_site ..."
    )


class Regions(Strict):
    n: int = Field(ge=1, description="number of new regions to locate (may be well above 30)")
    region_area_km2: tuple[float, float] = Field(description="smallest and largest area of one region")
    total_area_km2: float | None = Field(None, gt=0, description="stop when the regions reach this total")
    min_distance_km: float = Field(0.0, ge=0, description="smallest distance between regions")
    max_distance_km: float | None = Field(None, gt=0, description="largest distance to the nearest other region")
    compactness: float = Field(0.5, ge=0, le=1, description="0 = any shape, 1 = as compact as possible")
    within: str | None = Field(None, description="polygon vector input: search only inside it")
    avoid: str | None = Field(None, description="vector input of existing towns to keep away from")
    avoid_km: float = Field(0.0, ge=0)
    min_suitability: float | None = Field(None, ge=0, le=1)
    seed: int = 0


class Sensitivity(Strict):
    changes: list[float] = Field([-0.2, -0.1, 0.1, 0.2], description="one-at-a-time relative weight changes")
    draws: int = Field(200, ge=10, description="Monte Carlo weight draws")
    concentration: float = Field(50.0, gt=0, description="Dirichlet concentration around the weights")
    seed: int = 0
    top_k: int = Field(5, ge=1)
    robust_share: float = Field(0.95, gt=0, le=1, description="share of draws in the top k to call it robust")


class Sites(Strict):
    """Rank candidate towns, locate new regions, and test the stability of the ranking."""

    candidates: list[str] = Field(description="vector inputs of candidate towns (points) or sites (polygons)")
    name: str = Field("name_zh", description="name attribute of the candidates")
    catchment_m: float = Field(10_000.0, gt=0, description="radius of a point candidate's catchment")
    point_layers: list[str] = Field(default_factory=list, description="layers sampled at each site (e.g. travel)")
    ranking: Ranking
    regions: Regions | None = None
    sensitivity: Sensitivity | None = None


class Report(Strict):
    """report.html: maps, weights, tables and provenance in one self-contained file."""

    enabled: bool = True
    zones: str | None = Field(None, description="polygon vector input for the class-area table (default grid.mask)")
    zone_name: str = Field("name_zh", description="attribute naming each zone in maps and tables")
    title: str | None = None


class Config(Strict):
    name: str = Field("suitability", description="run name, used in output metadata")
    grid: GridSpec
    inputs: dict[str, Input]
    layers: dict[str, Layer] = Field(default_factory=dict)
    criteria: dict[str, Criterion]
    weights: Weights = Field(default_factory=Weights)
    constraints: Constraints = Field(default_factory=Constraints)
    combine: Combine = Field(default_factory=Combine)
    classes: Classes = Field(default_factory=Classes)
    outputs: Outputs = Field(default_factory=Outputs)
    water: Water | None = None
    carrying: Carrying | None = None
    conflicts: Conflicts | None = None
    report: Report = Field(default_factory=Report)
    compute: ComputeSpec = Field(default_factory=ComputeSpec)
    cache: CacheSpec = Field(default_factory=CacheSpec)
    relocation: Relocation | None = None
    sites: Sites | None = None

    @field_validator("inputs", "criteria")
    @classmethod
    def _not_empty(cls, v: dict) -> dict:
        if not v:
            raise ValueError("must name at least one entry")
        return v


# ------------------------------------------------------------------------------------------------ loading
class LoadedConfig:
    """A validated config with its source file, the folder paths resolve against, and its hash."""

    def __init__(self, config: Config, path: Path, raw: dict):
        self.config = config
        self.path = path
        self.base = path.parent
        self.raw = raw

    def resolve(self, p: str | Path) -> Path | str:
        """A config path made absolute against the config file's folder, as a ``Path``; a GDAL virtual or network
        path (``/vsicurl/https://...``, ``/vsizip/...``, ``https://...``) is returned verbatim as a ``str``."""
        if is_virtual(str(p)):
            return str(p)
        p = Path(p).expanduser()
        return p if p.is_absolute() else (self.base / p).resolve()

    @property
    def output_folder(self) -> Path:
        return self.resolve(self.config.outputs.folder)

    def resolved_dict(self) -> dict:
        """The config as run: defaults filled in, paths absolute."""
        d = self.config.model_dump(mode="json")
        for name, inp in self.config.inputs.items():
            key = "raster" if isinstance(inp, RasterInput) else "vector"
            d["inputs"][name][key] = str(self.resolve(getattr(inp, key)))
            if inp.towgs84 is None:  # recorded only when declared: a config without it hashes as it always did
                d["inputs"][name].pop("towgs84", None)
        d["outputs"]["folder"] = str(self.output_folder)
        w = self.config.water
        if w is not None and w.synthetic_allocation is not None:
            csv = self.resolve(w.synthetic_allocation.population_csv)
            d["water"]["synthetic_allocation"]["population_csv"] = str(csv)
        if self.config.relocation is not None:
            d["relocation"]["census_csv"] = str(self.resolve(self.config.relocation.census_csv))
        return d

    def sha256(self) -> str:
        """SHA-256 of the resolved config, without the output folder: the same analysis written elsewhere
        (``--output-dir``, ``rerun``) has the same hash."""
        d = self.resolved_dict()
        d["outputs"].pop("folder")
        # Where and how it is computed never changes a value (bit-identical on every scheduler, cache or not).
        d.pop("compute", None)
        d.pop("cache", None)
        text = json.dumps(d, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def _format_loc(loc: tuple) -> str:
    # pydantic puts the union member's tag in the location ("layers.slope_deg.slope.units"): drop it.
    tags = {*LAYER_TAGS, "raster", "vector"}
    parts = [str(x) for x in loc]
    # Drop the union member tag pydantic inserts after a dict key ("inputs.dem.raster.band" -> "inputs.dem.band").
    if len(parts) >= 3 and parts[0] in {"inputs", "layers"} and parts[2] in tags:
        del parts[2]
    return ".".join(parts) or "(top level)"


def _message(err: dict) -> str:
    t, msg, ctx = err["type"], err["msg"], err.get("ctx") or {}
    if t == "union_tag_invalid":
        tags = [s.strip(" '") for s in str(ctx.get("expected_tags", "")).split(",")]
        return f"unknown type '{ctx.get('tag')}'{did_you_mean(str(ctx.get('tag')), tags)}"
    if t == "union_tag_not_found":
        return f"missing 'type' (one of: {', '.join(LAYER_TAGS)})"
    if t == "missing":
        return "required key is missing"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return msg


def parse(raw: Any, path: Path) -> LoadedConfig:
    """Validate a config mapping; raise ``ConfigError`` with file, key path and what would be valid."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a YAML mapping of keys (grid, inputs, criteria, ...)")
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as e:
        errs = e.errors()
        first = errs[0]
        loc = _format_loc(first["loc"])
        extra = f" (and {len(errs) - 1} more problem{'s' if len(errs) > 2 else ''})" if len(errs) > 1 else ""
        raise ConfigError(f"{path}: {loc}: {_message(first)}{extra}") from None
    return LoadedConfig(cfg, path, raw)


def _set_dotted(d: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    cur = d
    for k in keys[:-1]:
        if not isinstance(cur.get(k), dict):
            cur[k] = {}
        cur = cur[k]
    cur[keys[-1]] = value


def load(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> LoadedConfig:
    """Read a YAML config with ``safe_load`` (no Python tags), apply ``key.path=value`` overrides, validate."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}:{where}: not valid YAML ({problem})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    if raw is None:
        raise ConfigError(f"{path}: the config is empty")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY.PATH=VALUE, e.g. grid.resolution_m=5000")
        if isinstance(raw, dict):
            _set_dotted(raw, key.strip(), yaml.safe_load(value))
    return parse(raw, path)


def json_schema() -> dict:
    """JSON Schema of the config, for editors (e.g. VS Code's YAML extension)."""
    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "suitability config"
    return schema
