"""四水四定 water budgets: carrying population, headroom and 以水定地 land per water-management zone.

Qinghai's territorial plan asks for towns sized by water (以水定城、以水定地、以水定人、以水定产). Here each
water-management zone (county, prefecture or basin polygon) gets a budget and the analyst sees how many people the
budget carries, how many more it could carry (headroom), and how much construction land that population needs.

The zone table
--------------
``WaterZones.from_frame(gdf, name=..., allocation=..., population=..., ...)`` reads and checks the attributes
(column names are parameters, as in the config): the water allocation W (用水总量控制指标, m³/yr), the current use U
(m³/yr, optional with ``method="budget"``), the shares of W reserved for agriculture s_a, industry s_i and ecology
s_e (fractions 0..1, a column name or one number for all zones), and the current resident population P. The zone
area A is computed on the ellipsoid (``geodesic_area_km2``), whatever the layer's CRS.

Formulas (``water_carrying_table``), with q the per-capita use in m³/person/yr (``PerCapitaUse``):

* water for towns                 W_t = W · (1 − s_a − s_i − s_e)                                    [m³/yr]
* ``method="budget"`` (default)   carrying C = W_t / q ;  headroom H = C − P
* ``method="remaining"``          headroom H = (W_t − U) / q ;  carrying C = P + H
* 以水定地 land                    L = C · m / 10⁶  with m the per-capita construction land (m²/person)  [km²]
* load ratio                      P / C  (> 1: the zone is over its water-carrying population)

"budget" is the water-resource carrying-scale formula of the 2020 双评价 guideline (《资源环境承载能力和国土空间开发
适宜性评价指南（试行）》, 自然资源部 2020, 承载规模: usable water ÷ per-capita water demand, then × per-capita
construction land for the land scale): it assumes the present population uses water at rate q. "remaining" uses the
measured current use U instead: H is the population the *unused* budget W_t − U could add at rate q (the 四水四定
"剩余可用水量" reading). The two agree when U = P·q. U and the shares must describe the same scope as q:

* a comprehensive per-capita use (e.g. Qinghai 2021: 413 m³/person/yr = total use 24.55 亿 m³ / population) goes
  with the whole allocation (all shares 0) and the total current use;
* a domestic quota (GB/T 50331-2002 zone 6: 75–125 L/person/day) goes with the domestic share (s_a + s_i + s_e =
  everything that is not domestic) and the current domestic use.

Water grade (水资源评价等级): the allocation modulus W / A (用水总量控制指标模数) or the resources modulus R / A
(水资源总量模数, needs a 水资源总量 column R), both in 万 m³/km², graded with right-open bins into 差 / 较差 / 一般 /
较好 / 好. ``water_grade_code`` 1 = 差 … 5 = 好 (higher is better, like ``suitability.classify``). The edges are
those of the 2019 draft technical guideline (《资源环境承载能力和国土空间开发适宜性评价技术指南（征求意见稿）》,
2019): allocation modulus ≥ 25, 13–25, 8–13, 3–8, < 3 万 m³/km² (county level); resources modulus ≥ 50, 20–50,
10–20, 5–10, < 5 万 m³/km² (province level). The 2020 guideline (试行) leaves thresholds to provincial calibration,
so they are parameters (``WaterGrades``); the 2019 values were checked against two independent public
implementations of the draft, not against the printed text.

Rasters
-------
``zone_index_raster`` burns zone positions (1..n, 0 = no zone) onto the grid (GDAL centre rule; where zones overlap
the zone listed first wins); ``check_zone_coverage`` finds cells in two zones and cells of a study area in none, and
raises or warns naming the zones. ``zone_values(index, values)`` maps any per-zone number to the cells (NaN outside
zones), so every zone raster is consistent with the one index raster. ``headroom_raster`` gives headroom per km²
(``mode="per_km2"``, the zone's H / A in every cell: a density, independent of the grid) or per cell
(``mode="per_cell"``, H spread evenly over the zone's cells: summing the raster over a zone gives H back).
``water_criterion`` turns the load ratio into a 0..1 score for the overlay.

How to call from the pipeline
-----------------------------
::

    gdf = vectors.read(cfg.path, grid.crs, layer=cfg.layer)
    zones = WaterZones.from_frame(gdf, name="name_zh", allocation="alloc_m3", population="pop",
                                  current_use="use_m3", agriculture_share=0.6, where="water.zones")
    q = PerCapitaUse(413, "m3/person/yr", source="Qinghai Water Resources Bulletin 2021")
    table = water_carrying_table(zones, q, land_m2_per_person=100.0)          # GeoDataFrame, one row per zone
    index = zone_index_raster(zones.frame(), grid)                             # lazy int32
    report = check_zone_coverage(zones.frame(), grid, zones.names, study_area=province_mask,
                                 on_overlap="first", on_gap="warn")
    criterion = zone_values(index, table["water_criterion"])                   # float32 0..1, NaN outside
    headroom = headroom_raster(index, table, mode="per_km2")
    table.to_file(gpkg, layer="water_zones"); csv_frame(table).to_csv(csv, index=False)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from rasters.errors import ConfigError, InputDataError, did_you_mean
from rasters.grid import Grid
from vectors.rasterize import rasterize

__all__ = [
    "ALLOCATION_MODULUS_GRADES",
    "DAYS_PER_YEAR",
    "GRADE_LABELS",
    "GRADE_LABELS_EN",
    "QINGHAI_PER_CAPITA_2021",
    "RESOURCES_MODULUS_GRADES",
    "CoverageReport",
    "PerCapitaUse",
    "WaterGrades",
    "WaterZones",
    "check_zone_coverage",
    "csv_frame",
    "geodesic_area_km2",
    "headroom_raster",
    "synthetic_county_water_allocation",
    "water_carrying_table",
    "water_criterion",
    "water_grade",
    "zone_index_raster",
    "zone_values",
]

DAYS_PER_YEAR = 365  # L/person/day -> m³/person/yr: × 365 / 1000
GRADE_LABELS: tuple[str, ...] = ("差", "较差", "一般", "较好", "好")  # code 1..5
GRADE_LABELS_EN: tuple[str, ...] = ("poor", "fairly poor", "medium", "fairly good", "good")
_UNITS = {"m3/person/yr": 1.0, "L/person/day": DAYS_PER_YEAR / 1000.0}
_METHODS = ("budget", "remaining")
_SHOWN = 8  # zones named in one error line before "and N more"


# --- value objects ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PerCapitaUse:
    """Per-capita water use with its unit and the source it was taken from.

    ``unit`` is ``"m3/person/yr"`` (a comprehensive or sectoral annual figure) or ``"L/person/day"`` (a daily
    quota such as GB/T 50331-2002). ``m3_per_person_year`` converts: m³/yr = L/day × 365 / 1000. ``source`` is
    required (the issue asks every quota to be cited) and is carried into the zone table.
    """

    value: float
    unit: str
    source: str

    def __post_init__(self) -> None:
        if self.unit not in _UNITS:
            raise ConfigError(f"per-capita water use: unknown unit '{self.unit}'{did_you_mean(str(self.unit), _UNITS)}")
        try:
            v = float(self.value)
        except (TypeError, ValueError):
            raise ConfigError(f"per-capita water use must be a number, got {self.value!r}") from None
        if not (math.isfinite(v) and v > 0):
            raise ConfigError(f"per-capita water use must be a positive number of {self.unit}, got {self.value!r}")
        if not str(self.source or "").strip():
            raise ConfigError("per-capita water use: give its source (e.g. 'GB/T 50331-2002 zone 6')")
        object.__setattr__(self, "value", v)

    @property
    def m3_per_person_year(self) -> float:
        return self.value * _UNITS[self.unit]

    def describe(self) -> str:
        return f"{self.value:g} {self.unit} ({self.m3_per_person_year:g} m3/person/yr; {self.source})"


QINGHAI_PER_CAPITA_2021 = PerCapitaUse(
    413.0, "m3/person/yr", "Qinghai 2021 comprehensive per-capita water use (24.55e8 m3 total use)"
)


@dataclass(frozen=True)
class WaterGrades:
    """Grade edges (万 m³/km², ascending, 4 numbers for 5 grades) of a water modulus, with their source.

    ``modulus`` is ``"allocation"`` (用水总量控制指标模数 = allocation / area) or ``"resources"`` (水资源总量模数 =
    water resources / area). A modulus ``x`` gets code ``1 + number of edges <= x`` (right-open bins, so
    ``x == 25`` is 好 with the allocation edges): 1 = 差 … 5 = 好.
    """

    edges_wan_m3_per_km2: tuple[float, ...]
    modulus: str = "allocation"
    source: str = ""

    def __post_init__(self) -> None:
        if self.modulus not in ("allocation", "resources"):
            raise ConfigError(f"water grades: modulus must be 'allocation' or 'resources', got {self.modulus!r}")
        try:
            edges = tuple(float(e) for e in self.edges_wan_m3_per_km2)
        except (TypeError, ValueError):
            raise ConfigError(f"water grades: edges must be numbers, got {self.edges_wan_m3_per_km2!r}") from None
        if len(edges) != len(GRADE_LABELS) - 1 or not all(math.isfinite(e) and e >= 0 for e in edges) or any(
            b <= a for a, b in zip(edges, edges[1:], strict=False)
        ):
            raise ConfigError(
                f"water grades: need {len(GRADE_LABELS) - 1} increasing non-negative edges in 万 m3/km2, got "
                f"{self.edges_wan_m3_per_km2!r}"
            )
        if not str(self.source or "").strip():
            raise ConfigError("water grades: give the source of the edges (or say they are placeholders)")
        object.__setattr__(self, "edges_wan_m3_per_km2", edges)


ALLOCATION_MODULUS_GRADES = WaterGrades(
    (3.0, 8.0, 13.0, 25.0),
    "allocation",
    "双评价技术指南（征求意见稿）2019: 用水总量控制指标模数 >=25/13-25/8-13/3-8/<3 万m3/km2 (2020 指南 leaves "
    "thresholds to local calibration)",
)
RESOURCES_MODULUS_GRADES = WaterGrades(
    (5.0, 10.0, 20.0, 50.0),
    "resources",
    "双评价技术指南（征求意见稿）2019: 水资源总量模数 >=50/20-50/10-20/5-10/<5 万m3/km2 (2020 指南 leaves "
    "thresholds to local calibration)",
)


# --- helpers ----------------------------------------------------------------------------------------------------


def _name_list(names: Sequence[str], mask: np.ndarray, values: np.ndarray | None = None) -> str:
    idx = np.flatnonzero(mask)
    parts = []
    for i in idx[:_SHOWN]:
        if values is None:
            parts.append(str(names[i]))
            continue
        v = values[i]
        shown = f"{float(v):g}" if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) else repr(v)
        parts.append(f"{names[i]} ({shown})")
    more = f" and {len(idx) - _SHOWN} more" if len(idx) > _SHOWN else ""
    return ", ".join(parts) + more


def geodesic_area_km2(geoms: gpd.GeoSeries | gpd.GeoDataFrame) -> np.ndarray:
    """Area of each (multi)polygon on the ellipsoid of its CRS's datum, in km² (0 for points and lines).

    The geometries are taken to the CRS's geographic (geodetic) CRS with always_xy axis order and measured with
    ``pyproj.Geod.geometry_area_perimeter`` (Karney's geodesic polygon area), so the result does not depend on
    the projection the layer is stored in. Edges are geodesics between vertices.
    """
    series = geoms.geometry if isinstance(geoms, gpd.GeoDataFrame) else geoms
    if series.crs is None:
        raise InputDataError("zone areas: the layer has no CRS, so areas cannot be measured on the ellipsoid")
    geog = CRS.from_user_input(series.crs).geodetic_crs
    lonlat = series.to_crs(geog) if not CRS.from_user_input(series.crs).equals(geog) else series
    geod = geog.get_geod()
    # Geod gives signed areas (counter-clockwise positive); oriented rings make holes subtract correctly.
    oriented = shapely.orient_polygons(np.asarray(lonlat.values, dtype=object), exterior_cw=False)
    out = np.zeros(len(series))
    for i, g in enumerate(oriented):
        if g is None or g.is_empty or shapely.get_dimensions(g) < 2:
            continue
        out[i] = abs(geod.geometry_area_perimeter(g)[0]) / 1e6
    return out


def _frame_columns(gdf: pd.DataFrame) -> list[str]:
    geom = gdf.geometry.name if isinstance(gdf, gpd.GeoDataFrame) else None
    return [str(c) for c in gdf.columns if c != geom]


def _numeric_column(gdf, column: str, role: str, names: Sequence[str], where: str) -> np.ndarray:
    """Column as float64; ConfigError for an unknown name, InputDataError naming zones with non-numbers."""
    columns = _frame_columns(gdf)
    if column not in columns:
        raise ConfigError(f"{where}: no attribute '{column}' for the {role}{did_you_mean(column, columns)}")
    raw = gdf[column]
    if pd.api.types.is_bool_dtype(raw.dtype):
        raise InputDataError(f"{where}: {role} attribute '{column}' is boolean, expected numbers")
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = np.isnan(values) & raw.notna().to_numpy()
    if bad.any():
        raise InputDataError(
            f"{where}: {role} attribute '{column}' is not a number for zone(s) "
            f"{_name_list(names, bad, raw.to_numpy(dtype=object))}"
        )
    return values


def _check_finite(values, role, column, names, where, *, allow_missing=False):
    missing = ~np.isfinite(values)
    if missing.any() and not allow_missing:
        raise InputDataError(f"{where}: {role} ('{column}') is missing for zone(s) {_name_list(names, missing)}")
    neg = np.isfinite(values) & (values < 0)
    if neg.any():
        raise InputDataError(
            f"{where}: {role} ('{column}') must not be negative, zone(s) {_name_list(names, neg, values)}"
        )


# --- the zone table model ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class WaterZones:
    """Checked attributes of the water-management zones, one entry per zone (row order of the layer).

    Build with ``WaterZones.from_frame``. Arrays are float64; shares are fractions; ``area_km2`` is ellipsoidal.
    ``current_use_m3`` and ``resources_m3`` are None when not given.
    """

    names: tuple[str, ...]
    allocation_m3: np.ndarray
    population: np.ndarray
    agriculture_share: np.ndarray
    industry_share: np.ndarray
    ecology_share: np.ndarray
    area_km2: np.ndarray
    geometry: gpd.GeoSeries
    current_use_m3: np.ndarray | None = None
    resources_m3: np.ndarray | None = None
    columns: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def town_share(self) -> np.ndarray:
        """Share of the allocation left for towns: 1 − agriculture − industry − ecology."""
        return 1.0 - self.agriculture_share - self.industry_share - self.ecology_share

    def frame(self) -> gpd.GeoDataFrame:
        """The zones as a GeoDataFrame (``zone`` + geometry), for ``zone_index_raster`` / ``check_zone_coverage``."""
        return gpd.GeoDataFrame({"zone": list(self.names)}, geometry=self.geometry.reset_index(drop=True))

    @classmethod
    def from_frame(
        cls,
        gdf: gpd.GeoDataFrame,
        *,
        name: str,
        allocation: str,
        population: str,
        current_use: str | None = None,
        agriculture_share: str | float = 0.0,
        industry_share: str | float = 0.0,
        ecology_share: str | float = 0.0,
        resources: str | None = None,
        where: str = "water zones",
    ) -> WaterZones:
        """Read and check the zone attributes of ``gdf`` (polygons, any CRS).

        Args:
            name: attribute with a unique, non-empty zone name (used in every message and in the output).
            allocation: 用水总量控制指标, m³/yr (≥ 0).
            population: current resident population, persons (≥ 0).
            current_use: current use in m³/yr of the same scope as the per-capita use (≥ 0), optional.
            agriculture_share, industry_share, ecology_share: a column name, or one number for every zone;
                fractions of the allocation reserved for those uses, each in 0..1 and summing to at most 1.
            resources: 水资源总量 m³/yr, needed only for grading on the resources modulus.
            where: prefix of error messages (the config key path, e.g. ``"water.zones"``).

        Raises ``ConfigError`` for an unknown attribute name (with the closest one) or a constant share outside
        0..1; ``InputDataError`` naming the zone(s) for a missing or duplicated name, a non-numeric, missing or
        negative value, a share outside 0..1, shares summing to more than 1, or a zone that is not a polygon.
        """
        if not isinstance(gdf, gpd.GeoDataFrame):
            raise ConfigError(f"{where}: expected a GeoDataFrame of zone polygons, got {type(gdf).__name__}")
        if len(gdf) == 0:
            raise InputDataError(f"{where}: the layer has no zones")
        columns = _frame_columns(gdf)
        if name not in columns:
            raise ConfigError(f"{where}: no attribute '{name}' for the zone name{did_you_mean(name, columns)}")
        raw_names = gdf[name]
        blank = raw_names.isna().to_numpy() | (raw_names.astype(str).str.strip() == "").to_numpy()
        if blank.any():
            rows = ", ".join(str(i) for i in np.flatnonzero(blank)[:_SHOWN])
            raise InputDataError(f"{where}: zone name '{name}' is empty for row(s) {rows}")
        names = tuple(str(v).strip() for v in raw_names)
        dup = pd.Series(names).duplicated(keep=False).to_numpy()
        if dup.any():
            raise InputDataError(f"{where}: zone names in '{name}' must be unique, repeated: "
                                 f"{', '.join(sorted(set(np.asarray(names)[dup])))}")
        geoms = gdf.geometry.values
        not_poly = shapely.is_missing(geoms) | (shapely.get_dimensions(geoms) != 2)
        if not_poly.any():
            raise InputDataError(f"{where}: zone(s) {_name_list(names, not_poly)} are not polygons")

        alloc = _numeric_column(gdf, allocation, "water allocation (m3/yr)", names, where)
        _check_finite(alloc, "water allocation (m3/yr)", allocation, names, where)
        pop = _numeric_column(gdf, population, "population", names, where)
        _check_finite(pop, "population", population, names, where)
        use = None
        if current_use is not None:
            use = _numeric_column(gdf, current_use, "current water use (m3/yr)", names, where)
            _check_finite(use, "current water use (m3/yr)", current_use, names, where)
        res = None
        if resources is not None:
            res = _numeric_column(gdf, resources, "water resources (m3/yr)", names, where)
            _check_finite(res, "water resources (m3/yr)", resources, names, where)

        shares = {}
        for role, spec in (("agriculture", agriculture_share), ("industry", industry_share),
                           ("ecology", ecology_share)):
            if isinstance(spec, str):
                s = _numeric_column(gdf, spec, f"{role} share", names, where)
                _check_finite(s, f"{role} share", spec, names, where)
                out = s > 1
                if out.any():
                    raise InputDataError(
                        f"{where}: {role} share ('{spec}') must be a fraction within 0..1 (not a percentage), "
                        f"zone(s) {_name_list(names, out, s)}"
                    )
            else:
                try:
                    v = float(spec)
                except (TypeError, ValueError):
                    raise ConfigError(
                        f"{where}: {role} share must be a column name or a number, got {spec!r}"
                    ) from None
                if not (0.0 <= v <= 1.0):
                    raise ConfigError(f"{where}: {role} share must be a fraction within 0..1, got {spec!r}")
                s = np.full(len(names), v)
            shares[role] = s
        total = shares["agriculture"] + shares["industry"] + shares["ecology"]
        over = total > 1 + 1e-9
        if over.any():
            raise InputDataError(
                f"{where}: reserved shares (agriculture + industry + ecology) sum to more than 1 for zone(s) "
                f"{_name_list(names, over, np.round(total, 6))}"
            )
        return cls(
            names=names,
            allocation_m3=alloc,
            population=pop,
            agriculture_share=shares["agriculture"],
            industry_share=shares["industry"],
            ecology_share=shares["ecology"],
            area_km2=geodesic_area_km2(gdf),
            geometry=gdf.geometry,
            current_use_m3=use,
            resources_m3=res,
            columns={"name": name, "allocation": allocation, "population": population, "current_use": current_use,
                     "agriculture_share": agriculture_share, "industry_share": industry_share,
                     "ecology_share": ecology_share, "resources": resources},
        )


# --- per-zone figures -------------------------------------------------------------------------------------------


def water_grade(modulus_wan_m3_per_km2: Any, grades: WaterGrades = ALLOCATION_MODULUS_GRADES) -> np.ndarray:
    """Grade code 1 (差) … 5 (好) of a modulus in 万 m³/km² (right-open bins on ``grades`` edges); NaN -> 0."""
    x = np.asarray(modulus_wan_m3_per_km2, dtype=float)
    code = np.digitize(x, grades.edges_wan_m3_per_km2, right=False) + 1
    return np.where(np.isnan(x), 0, code).astype(np.uint8)


def water_criterion(load_ratio: Any, zero_at_load: float = 1.0, one_at_load: float = 0.5) -> Any:
    """Water-availability score 0..1 from the load ratio P / C (population over water-carrying population).

    Linear: 1 at or below ``one_at_load`` (plenty of water left), 0 at or above ``zero_at_load`` (the budget is
    used up), ``(zero − load) / (zero − one)`` between. Defaults: a zone using half its water-carrying capacity or
    less scores 1, a zone at or over capacity scores 0 (placeholders to calibrate; the 承载状态 of the 2016
    资源环境承载能力监测预警 method calls load > 1 超载). Elementwise, numpy or dask; NaN stays NaN; +inf -> 0.
    """
    if not (math.isfinite(zero_at_load) and math.isfinite(one_at_load) and one_at_load < zero_at_load):
        raise ConfigError(
            f"water criterion: need one_at_load < zero_at_load, got one_at_load={one_at_load}, "
            f"zero_at_load={zero_at_load}"
        )
    lib = da if isinstance(load_ratio, da.Array) else np
    x = load_ratio.astype(np.float64) if lib is da else np.asarray(load_ratio, dtype=np.float64)
    score = lib.clip((zero_at_load - x) / (zero_at_load - one_at_load), 0.0, 1.0)
    return score.astype(np.float32)


def water_carrying_table(
    zones: WaterZones,
    per_capita: PerCapitaUse,
    *,
    method: str = "budget",
    land_m2_per_person: float = 100.0,
    grades: WaterGrades = ALLOCATION_MODULUS_GRADES,
    criterion_zero_at_load: float = 1.0,
    criterion_one_at_load: float = 0.5,
) -> gpd.GeoDataFrame:
    """The 四水四定 zone table: one row per zone, geometry kept (write it as GeoPackage; ``csv_frame`` for CSV).

    Formulas in the module docstring. ``land_m2_per_person`` is the per-capita construction land for 以水定地;
    the default 100 m²/person lies in GB 50137-2011's range for new cities (85.1–105.0 m²/person, §4.2; up to
    150 for remote and minority areas): calibrate it. Columns (units in the names): ``zone``, ``area_km2``,
    ``allocation_m3``, the three shares and ``town_share``, ``town_water_m3`` (W_t), ``current_use_m3``,
    ``available_m3`` (W_t for "budget", W_t − U for "remaining"), ``per_capita_m3`` (q), ``per_capita_source``,
    ``population`` (P), ``carrying_population`` (C), ``headroom_population`` (H), ``load_ratio`` (P/C, inf when
    C <= 0 < P), ``land_m2_per_person``, ``water_land_km2`` (以水定地 land of C), ``headroom_land_km2`` (land of H,
    negative when over), ``modulus_wan_m3_per_km2``, ``water_grade_code`` (1 差 … 5 好), ``water_grade``,
    ``water_criterion`` (0..1). ``attrs`` records the method, formulas and sources.
    """
    if method not in _METHODS:
        raise ConfigError(f"water carrying: unknown method '{method}'{did_you_mean(str(method), _METHODS)}")
    try:
        m2 = float(land_m2_per_person)
    except (TypeError, ValueError):
        m2 = float("nan")
    if not (math.isfinite(m2) and m2 > 0):
        raise ConfigError(f"land_m2_per_person must be a positive number of m2/person, got {land_m2_per_person!r}")
    if method == "remaining" and zones.current_use_m3 is None:
        raise ConfigError("water carrying: method 'remaining' needs the current water use attribute (current_use)")
    if grades.modulus == "resources" and zones.resources_m3 is None:
        raise ConfigError("water grades on the resources modulus need the water resources attribute (resources)")

    q = per_capita.m3_per_person_year
    town_water = zones.allocation_m3 * zones.town_share
    use = zones.current_use_m3 if zones.current_use_m3 is not None else np.full(len(zones), np.nan)
    if method == "budget":
        available = town_water
        carrying = town_water / q
        headroom = carrying - zones.population
    else:
        available = town_water - use
        headroom = available / q
        carrying = zones.population + headroom
    with np.errstate(divide="ignore", invalid="ignore"):
        load = np.where(carrying > 0, zones.population / np.where(carrying > 0, carrying, 1.0),
                        np.where(zones.population > 0, np.inf, 0.0))
        numerator = zones.allocation_m3 if grades.modulus == "allocation" else zones.resources_m3
        modulus = np.where(zones.area_km2 > 0, numerator / np.where(zones.area_km2 > 0, zones.area_km2, 1.0) / 1e4,
                           np.nan)
    code = water_grade(modulus, grades)
    labels = np.array(("",) + GRADE_LABELS, dtype=object)[code]
    table = gpd.GeoDataFrame(
        {
            "zone": list(zones.names),
            "area_km2": zones.area_km2,
            "allocation_m3": zones.allocation_m3,
            "agriculture_share": zones.agriculture_share,
            "industry_share": zones.industry_share,
            "ecology_share": zones.ecology_share,
            "town_share": zones.town_share,
            "town_water_m3": town_water,
            "current_use_m3": use,
            "available_m3": available,
            "per_capita_m3": np.full(len(zones), q),
            "per_capita_source": [per_capita.describe()] * len(zones),
            "population": zones.population,
            "carrying_population": carrying,
            "headroom_population": headroom,
            "load_ratio": load,
            "land_m2_per_person": np.full(len(zones), m2),
            "water_land_km2": carrying * m2 / 1e6,
            "headroom_land_km2": headroom * m2 / 1e6,
            "modulus_wan_m3_per_km2": modulus,
            "water_grade_code": code,
            "water_grade": labels,
            "water_criterion": water_criterion(load, criterion_zero_at_load, criterion_one_at_load).astype(float),
        },
        geometry=zones.geometry.reset_index(drop=True),
    )
    table.attrs.update(
        {
            "method": method,
            "formula": (
                "carrying = allocation*(1-agri-industry-eco)/per_capita; headroom = carrying - population"
                if method == "budget"
                else "headroom = (allocation*(1-agri-industry-eco) - current_use)/per_capita; "
                "carrying = population + headroom"
            ),
            "per_capita": per_capita.describe(),
            "grades": f"{grades.modulus} modulus edges {grades.edges_wan_m3_per_km2} 万m3/km2; {grades.source}",
            "land_m2_per_person": m2,
        }
    )
    return table


def csv_frame(gdf: gpd.GeoDataFrame) -> pd.DataFrame:
    """The attribute table without geometry, plus ``lon``/``lat`` (WGS 84) of a point inside each feature, for CSV."""
    out = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    pts = gdf.geometry.representative_point()
    if gdf.crs is not None:
        pts = pts.to_crs("EPSG:4326")
    out["lon"] = pts.x.to_numpy()
    out["lat"] = pts.y.to_numpy()
    return out


# --- rasters ----------------------------------------------------------------------------------------------------


def zone_index_raster(zones: gpd.GeoDataFrame, grid: Grid, *, all_touched: bool = False) -> da.Array:
    """Lazy int32 raster of zone positions: cell = 1 + row number of its zone in ``zones``, 0 = in no zone.

    GDAL's centre rule (``all_touched=False``): a cell belongs to a zone when its centre is inside. Where zones
    overlap, the zone listed first wins (features are burned in reverse row order); ``check_zone_coverage`` finds
    and names such cells.
    """
    n = len(zones)
    frame = gpd.GeoDataFrame({"_zone": np.arange(1, n + 1, dtype=np.int64)}, geometry=zones.geometry.values,
                             crs=zones.crs)
    return rasterize(frame.iloc[::-1], grid, value="_zone", all_touched=all_touched, dtype="int32", fill=0)


def _lookup_block(block: np.ndarray, lut: np.ndarray) -> np.ndarray:
    return lut[block]


def zone_values(index: Any, values: Any) -> Any:
    """Per cell the value of its zone: ``values[index - 1]`` as float32, NaN where ``index == 0`` (no zone).

    ``index`` is the output of ``zone_index_raster`` (numpy or dask); ``values`` one number per zone (NaN allowed).
    """
    vals = np.asarray(values, dtype=np.float64)
    lut = np.concatenate([[np.nan], vals]).astype(np.float32)
    if isinstance(index, da.Array):
        return index.map_blocks(_lookup_block, lut, dtype=np.float32)
    idx = np.asarray(index)
    if idx.size and (idx.min() < 0 or idx.max() > len(vals)):
        raise ConfigError(f"zone_values: index raster holds zone numbers up to {idx.max()}, only {len(vals)} values")
    return lut[idx]


def headroom_raster(
    index: Any,
    table: pd.DataFrame,
    *,
    mode: str = "per_km2",
    cells_per_zone: Sequence[int] | None = None,
    column: str = "headroom_population",
) -> Any:
    """Zone headroom mapped to the cells (float32, NaN outside zones).

    ``mode="per_km2"``: persons per km² = H / zone area (``area_km2``), the same in every cell of a zone; a density,
    so it reads the same on any grid. ``mode="per_cell"``: persons per cell = H / (number of the zone's cells),
    spread uniformly, so the raster summed over a zone gives H (zones with no cell are not mapped; pass
    ``CoverageReport.cells_per_zone``, else the counts are computed here).
    """
    if column not in table.columns:
        raise ConfigError(f"headroom raster: no column '{column}' in the table{did_you_mean(column, table.columns)}")
    h = table[column].to_numpy(dtype=float)
    if mode == "per_km2":
        area = table["area_km2"].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            per = np.where(area > 0, h / np.where(area > 0, area, 1.0), np.nan)
    elif mode == "per_cell":
        if cells_per_zone is None:
            lib = da if isinstance(index, da.Array) else np
            counts = lib.bincount(index.ravel(), minlength=len(h) + 1)
            counts = np.asarray(counts.compute() if lib is da else counts)[1:]
        else:
            counts = np.asarray(cells_per_zone, dtype=float)
        if len(counts) != len(h):
            raise ConfigError(f"headroom raster: {len(counts)} cell counts for {len(h)} zones")
        with np.errstate(divide="ignore", invalid="ignore"):
            per = np.where(counts > 0, h / np.where(counts > 0, counts, 1), np.nan)
    else:
        raise ConfigError(f"headroom raster: unknown mode '{mode}'{did_you_mean(str(mode), ('per_km2', 'per_cell'))}")
    return zone_values(index, per)


# --- coverage ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CoverageReport:
    """How the zones cover the grid.

    ``cells_per_zone``: cells assigned to each zone (after the first-listed-wins rule); ``overlaps``: (zone a,
    zone b, cells) for cells whose centre is in both (a listed before b: a got them); ``n_gap_cells``: cells of the
    study area in no zone, ``first_gap_xy``: the centre of the first such cell (row-major) or None.
    """

    cells_per_zone: np.ndarray
    overlaps: tuple[tuple[str, str, int], ...]
    n_overlap_cells: int
    n_gap_cells: int
    n_study_cells: int
    first_gap_xy: tuple[float, float] | None


def _coverage_block(first, last, count, study, row0, col0, n):
    first = first.astype(np.int64)
    cells = np.bincount(first.ravel(), minlength=n + 1)
    multi = count > 1
    pairs = np.unique(first[multi] * (n + 1) + last.astype(np.int64)[multi], return_counts=True)
    gap = (first == 0) & study
    n_gap = int(gap.sum())
    first_gap = None
    if n_gap:
        r, c = np.unravel_index(int(np.argmax(gap.ravel())), gap.shape)
        first_gap = (row0 + int(r), col0 + int(c))
    return cells, pairs, int(multi.sum()), n_gap, int(study.sum()), first_gap


def _coverage_combine(parts, n):
    cells = np.zeros(n + 1, dtype=np.int64)
    pair_counts: dict[int, int] = {}
    n_multi = n_gap = n_study = 0
    first_gap = None
    for c, (keys, cnts), m, g, s, fg in parts:
        cells += c
        for k, v in zip(keys.tolist(), cnts.tolist(), strict=True):
            pair_counts[k] = pair_counts.get(k, 0) + v
        n_multi += m
        n_gap += g
        n_study += s
        if fg is not None and (first_gap is None or fg < first_gap):
            first_gap = fg
    return cells, pair_counts, n_multi, n_gap, n_study, first_gap


def check_zone_coverage(
    zones: gpd.GeoDataFrame,
    grid: Grid,
    names: Sequence[str],
    *,
    study_area: Any = None,
    on_overlap: str = "error",
    on_gap: str = "warn",
    on_empty: str = "warn",
    all_touched: bool = False,
    where: str = "water zones",
) -> CoverageReport:
    """Check that every cell is in at most one zone and every study-area cell in one; compute cells per zone.

    A cell is in a zone when its centre is inside (GDAL rule, as in ``zone_index_raster``). Overlaps are found on
    the grid itself: the zones are burned once counting (``merge_alg="add"``), once first-listed-wins and once
    last-listed-wins, so each doubly covered cell names a pair of zones.

    Args:
        study_area: boolean raster (numpy or dask, True = must be covered), e.g. the province mask; None skips
            the gap check (a rectangular grid around a province is mostly outside every zone).
        on_overlap: ``"error"`` (``InputDataError`` naming the zone pairs) or ``"first"`` (a ``UserWarning``
            naming them; the zone listed first keeps the cells, which is what ``zone_index_raster`` does).
        on_gap: ``"error"``, ``"warn"`` or ``"ignore"`` for study-area cells in no zone (they get NaN in every zone
            raster); the message gives their number and the first one's coordinates.
        on_empty: ``"error"``, ``"warn"`` or ``"ignore"`` for zones that get no cell (too small for the grid, or
            outside it): their figures stay in the table but do not reach any raster.

    One ``dask.compute`` over the three burns. Returns a ``CoverageReport``.
    """
    for key, value, valid in (("on_overlap", on_overlap, ("error", "first")),
                              ("on_gap", on_gap, ("error", "warn", "ignore")),
                              ("on_empty", on_empty, ("error", "warn", "ignore"))):
        if value not in valid:
            raise ConfigError(f"{where}: {key} must be one of {', '.join(valid)}, got {value!r}")
    n = len(zones)
    if len(names) != n:
        raise ConfigError(f"{where}: {len(names)} names for {n} zones")
    frame = gpd.GeoDataFrame({"_zone": np.arange(1, n + 1, dtype=np.int64)}, geometry=zones.geometry.values,
                             crs=zones.crs)
    first = rasterize(frame.iloc[::-1], grid, value="_zone", all_touched=all_touched, dtype="int32", fill=0)
    last = rasterize(frame, grid, value="_zone", all_touched=all_touched, dtype="int32", fill=0)
    count = rasterize(frame, grid, value=1, all_touched=all_touched, dtype="uint16", fill=0, merge_alg="add")
    if study_area is None:
        study = da.zeros(grid.shape, dtype=bool, chunks=grid.chunks)
    else:
        if tuple(np.shape(study_area)) != grid.shape:
            raise ConfigError(f"{where}: study area has shape {tuple(np.shape(study_area))}, the grid {grid.shape}")
        if getattr(study_area, "dtype", None) != np.bool_:
            raise ConfigError(f"{where}: study area must be a boolean raster (True = must be covered)")
        study = da.asarray(study_area).rechunk(grid.chunks)
    blocks = []
    row_starts = np.concatenate([[0], np.cumsum(grid.chunks[0])])
    col_starts = np.concatenate([[0], np.cumsum(grid.chunks[1])])
    arrays = [a.to_delayed(optimize_graph=False) for a in (first, last, count, study)]
    for i in range(len(grid.chunks[0])):
        for j in range(len(grid.chunks[1])):
            blocks.append(dask.delayed(_coverage_block)(*(a[i, j] for a in arrays), int(row_starts[i]),
                                                        int(col_starts[j]), n))
    cells, pair_counts, n_multi, n_gap, n_study, first_gap = dask.compute(
        dask.delayed(_coverage_combine)(blocks, n))[0]

    overlaps = []
    for key in sorted(pair_counts):
        a, b = divmod(key, n + 1)
        if a and b and a != b:
            overlaps.append((str(names[a - 1]), str(names[b - 1]), int(pair_counts[key])))
    gap_xy = None
    if first_gap is not None:
        x, y = grid.xy_of_cells(np.array([first_gap[0]]), np.array([first_gap[1]]))
        gap_xy = (float(x[0]), float(y[0]))
    report = CoverageReport(cells[1:], tuple(overlaps), int(n_multi), int(n_gap), int(n_study), gap_xy)

    if n_multi:
        shown = "; ".join(f"{a} / {b} ({k} cells)" for a, b, k in overlaps[:_SHOWN])
        more = f" and {len(overlaps) - _SHOWN} more pairs" if len(overlaps) > _SHOWN else ""
        msg = f"{where}: {n_multi} cells lie in two zones: {shown}{more}"
        if on_overlap == "error":
            raise InputDataError(msg + " (fix the polygons, or set on_overlap: first to give them to the first zone)")
        warnings.warn(msg + "; each goes to the zone listed first", UserWarning, stacklevel=2)
    if n_gap and on_gap != "ignore":
        share = 100.0 * n_gap / max(n_study, 1)
        msg = (f"{where}: {n_gap} cells ({share:.2g} % of the study area) are in no zone, the first at "
               f"x={gap_xy[0]:.6g}, y={gap_xy[1]:.6g}")
        if on_gap == "error":
            raise InputDataError(msg)
        warnings.warn(msg + "; they get no water figures (NaN)", UserWarning, stacklevel=2)
    empty = report.cells_per_zone == 0
    if empty.any() and on_empty != "ignore":
        msg = f"{where}: zone(s) {_name_list(list(names), empty)} contain no cell centre of the grid"
        if on_empty == "error":
            raise InputDataError(msg)
        warnings.warn(msg + "; they are in the table but on no raster", UserWarning, stacklevel=2)
    return report


# --- demo: a clearly SYNTHETIC county allocation ----------------------------------------------------------------

_RULES = {"population_area": 0.5, "population": 1.0, "area": 0.0}


def synthetic_county_water_allocation(
    counties: gpd.GeoDataFrame,
    population_csv: str | Any,
    total_m3: float = 2.96e9,
    rule: str = "population_area",
    *,
    name_column: str = "name_zh",
    province_population: float = 5_923_957,
    per_capita_m3: float = 413.0,
) -> gpd.GeoDataFrame:
    """SYNTHETIC county water allocations for the Qinghai demo: the provincial cap shared among counties.

    NOT official figures. The real 2025 cap is provincial (29.6 亿 m³, 国函〔2023〕159号); its split among counties
    is not public here, so it is made up by a rule:

    * ``rule="population_area"``: allocation_i = total · (½ · P_i / ΣP + ½ · A_i / ΣA); ``"population"``: by
      population only; ``"area"``: by area only. A_i is the ellipsoidal county area.
    * P_i is the 2020 census population from ``population_csv`` (columns ``name_zh``, ``population_2020``,
      ``source``) where the county has a row. A CSV name matches a county name exactly or, failing that, when it
      is the unique suffix of one (``城中区`` -> ``西宁市城中区``). Counties without a row get a SYNTHETIC
      population: (province total − the census rows) shared by area among them (so the province total holds).
      ``population_source`` says which, per row; ``population_is_synthetic`` flags the fallback rows.
    * ``synthetic_current_use_m3`` = P_i × ``per_capita_m3`` (Qinghai 2021 comprehensive per-capita use, 413 m³).

    Returns the counties with ``zone``, ``area_km2``, ``population``, ``population_source``,
    ``population_is_synthetic``, ``synthetic_allocation_m3``, ``synthetic_current_use_m3`` and
    ``allocation_rule``; ``attrs["synthetic"]`` describes the rule. Use with ``WaterZones.from_frame(...,
    allocation="synthetic_allocation_m3", current_use="synthetic_current_use_m3", population="population")`` and
    all shares 0 (413 m³ is a comprehensive figure, so it goes with the whole allocation).
    """
    if rule not in _RULES:
        raise ConfigError(f"synthetic allocation: unknown rule '{rule}'{did_you_mean(str(rule), _RULES)}")
    if not (math.isfinite(total_m3) and total_m3 > 0):
        raise ConfigError(f"synthetic allocation: total_m3 must be positive, got {total_m3!r}")
    if name_column not in counties.columns:
        raise ConfigError(f"synthetic allocation: no attribute '{name_column}'"
                          f"{did_you_mean(name_column, _frame_columns(counties))}")
    pop_table = population_csv if isinstance(population_csv, pd.DataFrame) else pd.read_csv(population_csv)
    missing_cols = {"name_zh", "population_2020"} - set(pop_table.columns)
    if missing_cols:
        raise InputDataError(f"{population_csv}: missing column(s) {', '.join(sorted(missing_cols))}")
    names = [str(v) for v in counties[name_column]]
    area = geodesic_area_km2(counties)
    pop = np.full(len(names), np.nan)
    source = [""] * len(names)
    for _, row in pop_table.iterrows():
        csv_name = str(row["name_zh"]).strip()
        hits = [i for i, nm in enumerate(names) if nm == csv_name]
        how = ""
        if not hits:
            hits = [i for i, nm in enumerate(names) if nm.endswith(csv_name)]
            how = f"; CSV name '{csv_name}' matched by suffix"
        if len(hits) != 1:
            warnings.warn(f"{population_csv}: census row '{csv_name}' matches {len(hits)} counties; ignored",
                          UserWarning, stacklevel=2)
            continue
        pop[hits[0]] = float(row["population_2020"])
        src = str(row["source"]) if "source" in pop_table.columns and pd.notna(row.get("source")) else "census"
        source[hits[0]] = f"{src}{how}"
    known = np.isfinite(pop)
    rest = province_population - pop[known].sum()
    if rest < 0:
        raise InputDataError(f"{population_csv}: census rows sum to more than the province total {province_population}")
    if (~known).any():
        pop[~known] = rest * area[~known] / area[~known].sum()
        for i in np.flatnonzero(~known):
            source[i] = (f"SYNTHETIC: province 2020 total {province_population:,.0f} minus the {int(known.sum())} "
                         f"census rows, shared by area")
    w = _RULES[rule]
    alloc = total_m3 * (w * pop / pop.sum() + (1 - w) * area / area.sum())
    out = counties.copy()
    out["zone"] = names
    out["area_km2"] = area
    out["population"] = pop
    out["population_source"] = source
    out["population_is_synthetic"] = ~known
    out["synthetic_allocation_m3"] = alloc
    out["synthetic_current_use_m3"] = pop * per_capita_m3
    out["allocation_rule"] = (f"SYNTHETIC: {total_m3:.4g} m3 (国函〔2023〕159号 2025 cap) shared {w:.0%} by "
                              f"population, {1 - w:.0%} by area")
    out.attrs["synthetic"] = (
        f"SYNTHETIC county water allocation (rule {rule}); not official figures. Per-capita use {per_capita_m3:g} "
        "m3/person/yr (Qinghai 2021). Populations: 2020 census where in the CSV, else synthetic (see "
        "population_source)."
    )
    return out
