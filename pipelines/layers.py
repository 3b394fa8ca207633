"""Derived layer types a config can name under ``layers:``. Each type declares what it references (so the plan
can check names and order the DAG) and how it builds its lazy array from already-built layers.

To add a layer type: write a ``Strict`` model with a ``type: Literal[...]`` tag, ``refs()`` and ``build()``, and
append it to ``LAYER_TYPES``. Nothing else in the pipeline needs to change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal, NamedTuple

import dask.array as da
import geopandas as gpd
import numpy as np
from pydantic import Field, StrictFloat, StrictInt, model_validator

from rasters.cost import travel_time
from rasters.distance import euclidean_distance
from rasters.errors import ConfigError
from rasters.friction import combine_speeds, speed_from_slope_table, tobler_speed_kmh
from rasters.grid import Grid
from rasters.terrain import aspect, relief, slope
from suitability.grades import GradeRules, as_float32
from vectors.rasterize import mask as vector_mask
from vectors.rasterize import rasterize

from .base import Strict


class Ref(NamedTuple):
    """A name a layer uses: which key it is written under, and whether a raster or a vector is needed."""

    name: str
    key: str  # relative to the layer's own key, e.g. "dem" or "to[1]"
    want: Literal["raster", "vector"]


@dataclass
class Context:
    """What a layer's ``build`` may use: the grid and everything built before it."""

    grid: Grid
    layers: dict[str, da.Array]
    vectors: dict[str, gpd.GeoDataFrame]
    warnings: list[str]
    key: str
    dry_run: bool = False  # validate / --dry-run: build the graph but compute nothing eagerly


class SlopeLayer(Strict):
    """Slope of an elevation layer by Horn's method (as ``gdaldem slope``)."""

    type: Literal["slope"]
    dem: str = Field(description="name of the elevation layer (metres)")
    units: Literal["degrees", "percent"] = "degrees"

    def refs(self) -> list[Ref]:
        return [Ref(self.dem, "dem", "raster")]

    def build(self, ctx: Context) -> tuple[da.Array, str]:
        return slope(ctx.layers[self.dem], ctx.grid, units=self.units), self.units

    def memory_bytes(self, grid: Grid) -> int:
        return 0


class AspectLayer(Strict):
    """Aspect in degrees clockwise from north (the direction the slope faces); flat cells are nodata."""

    type: Literal["aspect"]
    dem: str = Field(description="name of the elevation layer (metres)")

    def refs(self) -> list[Ref]:
        return [Ref(self.dem, "dem", "raster")]

    def build(self, ctx: Context) -> tuple[da.Array, str]:
        return aspect(ctx.layers[self.dem], ctx.grid), "degrees"

    def memory_bytes(self, grid: Grid) -> int:
        return 0


class ReliefLayer(Strict):
    """Local relief (max − min elevation in a square window), used by 双评价 to downgrade rugged land."""

    type: Literal["relief"]
    dem: str = Field(description="name of the elevation layer (metres)")
    window_m: float | None = Field(None, gt=0, description="window edge in metres, rounded to the nearest odd number "
                                   "of cells so the window is centred on its cell (as GRASS r.neighbors requires)")
    window_cells: int | None = Field(None, ge=1, description="window edge in cells (instead of window_m)")

    def refs(self) -> list[Ref]:
        return [Ref(self.dem, "dem", "raster")]

    def cells(self, grid: Grid) -> int:
        if (self.window_m is None) == (self.window_cells is None):
            raise ConfigError("give exactly one of 'window_m' or 'window_cells'")
        if self.window_cells is not None:
            return self.window_cells
        cell_m = grid.res[0] * grid.linear_unit_m
        return max(1, 2 * round((self.window_m / cell_m - 1) / 2) + 1)

    def build(self, ctx: Context) -> tuple[da.Array, str]:
        n = self.cells(ctx.grid)
        if self.window_m is not None and n * ctx.grid.res[0] * ctx.grid.linear_unit_m != self.window_m:
            ctx.warnings.append(f"{ctx.key}: window_m {self.window_m:g} rounded to {n} cells")
        return relief(ctx.layers[self.dem], ctx.grid, n), "m"

    def memory_bytes(self, grid: Grid) -> int:
        return 0


class BandsLayer(Strict):
    """Elevation (or any) bands: 0 below the first edge, k between edge k-1 and edge k (right-open)."""

    type: Literal["bands"]
    layer: str = Field(description="name of the layer to band")
    edges: list[float] = Field(description="increasing band edges, e.g. [3500, 4000, 4500] metres")

    def refs(self) -> list[Ref]:
        return [Ref(self.layer, "layer", "raster")]

    def build(self, ctx: Context) -> tuple[da.Array, str]:
        edges = np.asarray(self.edges, dtype=np.float64)
        if edges.size == 0 or np.any(np.diff(edges) <= 0):
            raise ConfigError(f"edges must be strictly increasing, got {self.edges}")
        x = ctx.layers[self.layer]
        out = da.map_blocks(_band_block, x, edges, dtype=np.float32)
        return out, "band index"

    def memory_bytes(self, grid: Grid) -> int:
        return 0


def _band_block(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    out = np.digitize(x, edges).astype(np.float32)
    out[np.isnan(x)] = np.nan
    return out


class DistanceLayer(Strict):
    """Euclidean distance in metres from each cell centre to the nearest cell burned by the features."""

    type: Literal["distance"]
    to: str | list[str] = Field(description="vector input(s) to measure the distance to")
    max_km: float | None = Field(None, gt=0, description="saturate distances beyond this (faster); none = exact")
    all_touched: bool = Field(True, description="burn every cell a feature touches, not only cell centres")

    @property
    def targets(self) -> list[str]:
        return [self.to] if isinstance(self.to, str) else list(self.to)

    def refs(self) -> list[Ref]:
        if isinstance(self.to, str):
            return [Ref(self.to, "to", "vector")]
        return [Ref(t, f"to[{i}]", "vector") for i, t in enumerate(self.to)]

    def build(self, ctx: Context) -> tuple[da.Array, str]:
        gdf = gpd.GeoDataFrame(geometry=[g for t in self.targets for g in ctx.vectors[t].geometry], crs=ctx.grid.crs)
        if len(gdf) == 0:
            ctx.warnings.append(f"{ctx.key}: no features to measure the distance to; the layer is all nodata")
        features = vector_mask(gdf, ctx.grid, all_touched=self.all_touched)
        max_m = None if self.max_km is None else self.max_km * 1000.0
        return euclidean_distance(features, ctx.grid, max_m=max_m), "m"

    def memory_bytes(self, grid: Grid) -> int:
        c = grid.chunk_size
        if self.max_km is None:
            # The exact transform works on full-height column strips, then full-width row strips.
            return 3 * 4 * c * max(grid.height, grid.width)
        halo = math.ceil(self.max_km * 1000 / min(grid.res))
        return 3 * 4 * (c + 2 * halo) ** 2


class FrictionLayer(Strict):
    """Friction in minutes per metre: road speeds where there are roads, an off-road speed elsewhere (Tobler's
    hiking function, a speed-by-slope table or a constant), and barriers (lakes, closed areas) impassable."""

    type: Literal["friction"]
    slope: str | None = Field(None, description="slope layer in degrees (for offroad tobler or table)")
    offroad: Literal["tobler", "table", "constant"] = "tobler"
    offroad_factor: float = Field(1.0, gt=0, description="multiplies Tobler's walking speed (e.g. riding, driving)")
    offroad_speed_kmh: float | None = Field(None, gt=0, description="offroad constant: the speed")
    slope_edges_deg: list[float] | None = Field(None, description="offroad table: slope class limits")
    slope_speeds_kmh: list[float] | None = Field(None, description="offroad table: one speed per class (n+1)")
    roads: str | None = Field(None, description="vector input of road lines")
    road_speed_kmh: float | str = Field(60.0, description="a constant or the roads' speed attribute (km/h)")
    barriers: list[str] = Field(default_factory=list, description="vector inputs that cannot be crossed")

    def refs(self) -> list[Ref]:
        out = []
        if self.slope is not None:
            out.append(Ref(self.slope, "slope", "raster"))
        if self.roads is not None:
            out.append(Ref(self.roads, "roads", "vector"))
        out += [Ref(b, f"barriers[{i}]", "vector") for i, b in enumerate(self.barriers)]
        return out

    def build(self, ctx: Context) -> tuple[da.Array, str]:
        g = ctx.grid
        if self.offroad in ("tobler", "table") and self.slope is None:
            raise ConfigError(f"offroad {self.offroad} needs 'slope' (a slope layer in degrees)")
        if self.offroad == "tobler":
            off = tobler_speed_kmh(ctx.layers[self.slope]) * np.float32(self.offroad_factor)
        elif self.offroad == "table":
            if not self.slope_edges_deg or not self.slope_speeds_kmh:
                raise ConfigError("offroad table needs 'slope_edges_deg' and 'slope_speeds_kmh'")
            off = speed_from_slope_table(ctx.layers[self.slope], self.slope_edges_deg, self.slope_speeds_kmh)
        else:
            if self.offroad_speed_kmh is None:
                raise ConfigError("offroad constant needs 'offroad_speed_kmh'")
            off = da.full(g.shape, np.float32(self.offroad_speed_kmh), chunks=g.chunks)
        if self.roads is not None:
            road = rasterize(ctx.vectors[self.roads], g, value=self.road_speed_kmh, all_touched=True,
                             dtype="float32", merge_alg="replace")
        else:
            road = da.full(g.shape, np.float32(np.nan), chunks=g.chunks)
        barrier = None
        if self.barriers:
            gdf = gpd.GeoDataFrame(geometry=[x for b in self.barriers for x in ctx.vectors[b].geometry], crs=g.crs)
            barrier = vector_mask(gdf, g, all_touched=False)
        return combine_speeds(road, off, barrier), "min/m"

    def memory_bytes(self, grid: Grid) -> int:
        return 0


class TravelTimeLayer(Strict):
    """Least travel time in minutes to the nearest destination (Dijkstra on the friction surface, 8 or 16
    neighbours, equal to scikit-image's MCP_Geometric for 8); solved tile by tile in bounded memory."""

    type: Literal["travel_time"]
    friction: str = Field(description="friction layer in minutes per metre")
    to: str | list[str] = Field(description="vector input(s) of destinations (points; polygons use a point inside)")
    max_minutes: float | None = Field(None, gt=0, description="stop searching beyond this; farther cells nodata")
    neighbours: Literal[8, 16] = 8

    def refs(self) -> list[Ref]:
        refs = [Ref(self.friction, "friction", "raster")]
        targets = [self.to] if isinstance(self.to, str) else self.to
        refs += [Ref(t, "to" if isinstance(self.to, str) else f"to[{i}]", "vector") for i, t in enumerate(targets)]
        return refs

    def build(self, ctx: Context) -> tuple[da.Array, str]:
        g = ctx.grid
        targets = [self.to] if isinstance(self.to, str) else self.to
        pts = [p for t in targets for p in ctx.vectors[t].geometry.representative_point()]
        xs = np.array([p.x for p in pts])
        ys = np.array([p.y for p in pts])
        rows, cols = g.index_of_xy(xs, ys) if len(pts) else (np.array([], int), np.array([], int))
        inside = (rows >= 0) & (rows < g.height) & (cols >= 0) & (cols < g.width)
        if not inside.any():
            raise ConfigError(f"no destination of {', '.join(targets)} lies inside the grid")
        if (~inside).any():
            ctx.warnings.append(f"{ctx.key}: {int((~inside).sum())} destinations outside the grid were ignored")
        if ctx.dry_run:  # solving runs the tiles; a dry run or validate must not read pixels
            return da.full(g.shape, np.float32(np.nan), chunks=g.chunks), "min"
        dests = np.column_stack([rows[inside], cols[inside]])
        res = travel_time(ctx.layers[self.friction], dests, grid=g, neighbours=self.neighbours,
                          max_minutes=self.max_minutes)
        return res.minutes, "min"

    def memory_bytes(self, grid: Grid) -> int:
        return 6 * 8 * (grid.chunk_size + 4) ** 2


class RasterizeLayer(Strict):
    """A vector input burned onto the grid with a constant or an attribute (float32, NaN where no feature)."""

    type: Literal["rasterize"]
    vector: str
    value: float | str = Field(1, description="a constant or the numeric attribute to burn")
    all_touched: bool = False

    def refs(self) -> list[Ref]:
        return [Ref(self.vector, "vector", "vector")]

    def build(self, ctx: Context) -> tuple[da.Array, str]:
        arr = rasterize(ctx.vectors[self.vector], ctx.grid, value=self.value, all_touched=self.all_touched,
                        dtype="float32")
        return arr, ""

    def memory_bytes(self, grid: Grid) -> int:
        return 0


class GradeBreaksSpec(Strict):
    """Base grade of a ``grades`` layer from breaks on one layer (grade 1 = most suitable)."""

    layer: str = Field(description="layer to grade, e.g. slope_deg")
    breaks: list[float] = Field(description="n - 1 increasing breaks in the layer's units, e.g. [3, 8, 15, 25] degrees")
    closed: Literal["left", "right"] = Field(
        "left", description="left: a value on a break goes to the grade above (3° is in [3, 8)); right: below"
    )
    direction: Literal["increasing", "decreasing"] = Field(
        "increasing", description="increasing: grade 1 for the smallest values (slope); decreasing: for the largest"
    )
    source: str = Field("", description="the standard the numbers come from")


class GradeMatrixSpec(Strict):
    """Base grade of a ``grades`` layer from two grade layers: table[row grade - 1][column grade - 1]."""

    rows: str = Field(description="layer of grades 1..n_rows (e.g. a land grade); 0 or NaN = no data")
    columns: str = Field(description="layer of grades 1..n_columns (e.g. a water grade); 0 or NaN = no data")
    table: list[list[StrictInt | StrictFloat]] = Field(
        description="one row per row grade, one output grade 1..n per column"
    )
    n_rows: int | None = Field(None, description="check: the number of row grades (the table's row count)")
    n_columns: int | None = Field(None, description="check: the number of column grades (each row's length)")
    source: str = Field("", description="the standard the table comes from")


class GradeStepSpec(Strict):
    """One adjustment of a ``grades`` layer: lower by k grades, or force grade g, where a condition holds."""

    where: str = Field(description="condition over layer names, e.g. 'elevation_m >= 3500 and elevation_m < 5000'")
    lower: StrictInt | StrictFloat | None = Field(
        None, description="grades to lower by (1 = one grade worse; negative raises)"
    )
    force: StrictInt | StrictFloat | None = Field(None, description="the grade to set (e.g. n, the lowest)")
    source: str = Field("", description="the standard the rule comes from")


class GradesLayer(Strict):
    """A grade table (双评价 style) as a float32 layer of grades 1..n, 1 = most suitable, NaN = no data:
    a base grade from ``base`` breaks or a two-factor ``matrix``, then the ``adjust`` steps in order, then clamp to
    1..n (``suitability.grades``). Reclass it into a criterion, write it, or use it in constraints."""

    type: Literal["grades"]
    base: GradeBreaksSpec | None = Field(None, description="base grade from breaks on one layer")
    matrix: GradeMatrixSpec | None = Field(None, description="base grade from two grade layers (instead of base)")
    adjust: list[GradeStepSpec] = Field(default_factory=list, description="adjustments, applied in this order")
    n: int | None = Field(None, ge=2, le=255, description="number of grades (default: breaks + 1)")
    nodata: Literal["any", "base"] = Field(
        "any", description="any: no data where any layer the rules name is NaN; base: only the base layer(s)"
    )
    labels: list[str] | None = Field(None, description="one label per grade, grade 1 first (e.g. 高 .. 低)")
    source: str = Field("", description="the standard the table follows")

    @model_validator(mode="after")
    def _valid_rules(self) -> GradesLayer:
        self.rules()  # a ConfigError is a ValueError: reported at layers.<name> with the key inside the rules
        return self

    def rules(self) -> GradeRules:
        return GradeRules.from_dict(self.model_dump(exclude={"type"}))

    def refs(self) -> list[Ref]:
        if self.base is not None:
            out = [Ref(self.base.layer, "base.layer", "raster")]
        else:
            out = [Ref(self.matrix.rows, "matrix.rows", "raster"), Ref(self.matrix.columns, "matrix.columns", "raster")]
        for i, step in enumerate(self.rules().adjust):
            out += [Ref(name, f"adjust[{i}].where", "raster") for name in sorted(step.names)]
        return out

    def build(self, ctx: Context) -> tuple[da.Array, str]:
        rules = self.rules()
        grades = rules.apply({name: ctx.layers[name] for name in rules.names})
        return as_float32(grades), f"grade 1-{rules.n} (1 = most suitable)"

    def memory_bytes(self, grid: Grid) -> int:
        return 0


LAYER_TYPES = (SlopeLayer, AspectLayer, ReliefLayer, BandsLayer, DistanceLayer, FrictionLayer, TravelTimeLayer,
               RasterizeLayer, GradesLayer)
LAYER_TAGS = tuple(t.model_fields["type"].annotation.__args__[0] for t in LAYER_TYPES)
Layer = Annotated[
    SlopeLayer | AspectLayer | ReliefLayer | BandsLayer | DistanceLayer | FrictionLayer | TravelTimeLayer
    | RasterizeLayer | GradesLayer,
    Field(discriminator="type"),
]
