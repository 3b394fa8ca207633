"""The sites block of a config: rank candidate towns, locate new regions, and test how stable the ranking is.

Runs after the rasters are written and reads them back lazily (windows of a written GeoTIFF are cheap; a lazy
overlay graph would be recomputed per region). The numbers come from ``suitability.zonal``/``sites``/``regions``/
``sensitivity``; this module joins them and writes tables, rasters and project layers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd

from rasters.errors import ConfigError, InputDataError
from rasters.io import RasterOutput, write_many
from rasters.io import read as read_raster
from suitability import sensitivity as sens
from suitability.regions import locate_regions
from suitability.sites import rank
from suitability.zonal import point_values, zonal_stats, zones_from_points
from vectors.rasterize import mask as vector_mask

from .gpkg_styles import graduated_qml
from .qgis_project import ProjectLayer
from .styles import SUITABILITY_RAMP, continuous_qml
from .water_step import write_table


@dataclass
class SitesResult:
    ranking: gpd.GeoDataFrame
    regions: gpd.GeoDataFrame | None
    oat: pd.DataFrame | None = None
    distribution: pd.DataFrame | None = None
    acceptability: pd.DataFrame | None = None
    verdict: pd.DataFrame | None = None
    rasters: list[RasterOutput] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _candidates(built) -> gpd.GeoDataFrame:
    cfg, grid = built.plan.config, built.grid
    s = cfg.sites
    frames = []
    for name in s.candidates:
        g = built.vectors[name]
        if s.name not in g.columns:
            raise ConfigError(f"{built.plan.loaded.path}: sites.name: input '{name}' has no attribute '{s.name}'")
        extra = [c for c in ("position_is_approximate", "position_source") if c in g.columns]
        frames.append(g[[s.name, *extra, "geometry"]].rename(columns={s.name: "name"}).assign(source_layer=name))
    cands = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=grid.crs)
    cands = cands.drop_duplicates("name").reset_index(drop=True)
    points = cands.geom_type.isin(["Point", "MultiPoint"])
    if points.any():
        circles = zones_from_points(cands.loc[points].assign(geometry=cands.loc[points].geometry.centroid),
                                    s.catchment_m, grid)
        cands.loc[points, "geometry"] = circles.geometry.values
    cands["origin"] = "candidate"
    return cands


def run_sites(built, folder: Path) -> SitesResult:
    cfg, grid, loaded = built.plan.config, built.grid, built.plan.loaded
    s = cfg.sites
    where = f"{loaded.path}: sites"
    suit = read_raster(folder / cfg.outputs.suitability, grid, resampling="nearest")
    classes = read_raster(folder / cfg.outputs.classes, grid, resampling="nearest")
    classes = da.where(da.isnan(classes), 0, classes).astype(np.uint8)
    # Criteria as written (0..1), masked where the suitability is nodata, so a candidate's score is exactly the
    # weighted sum of its criterion means (the linearity the sensitivity analysis relies on).
    criteria = {}
    for c in cfg.criteria:
        p = folder / f"criterion_{c}.tif"
        arr = read_raster(p, grid, resampling="nearest") if p.exists() else built.criteria[c]
        criteria[c] = da.where(da.isnan(suit), np.float32(np.nan), arr)
    class_names = {k + 1: f"class{k + 1}_{lab}" for k, lab in enumerate(built.scheme.labels_en)}
    class_names = {k: v.replace(" ", "_") for k, v in class_names.items()}
    layers = {"suitability": suit, **{f"crit_{c}": a for c, a in criteria.items()}}
    ranges = {k: (0.0, 1.0) for k in layers}
    cands = _candidates(built)
    try:
        table = zonal_stats(cands, layers, grid, classes=classes, n_classes=built.scheme.n_classes,
                            class_names=class_names, ranges=ranges)
    except (ConfigError, InputDataError) as e:
        raise type(e)(f"{where}: {e}") from None
    centres = gpd.GeoDataFrame(geometry=cands.geometry.centroid, crs=grid.crs)
    for lname in s.point_layers:
        table[f"{lname}_at_site"] = point_values({lname: built.layers[lname]}, centres, grid)[lname].to_numpy()

    regions = None
    if s.regions is not None:
        r = s.regions
        search = suit
        if r.within:
            inside = vector_mask(built.vectors[r.within], grid)
            search = da.where(inside, suit, np.float32(np.nan))
        # Persist the search surface: every region reads a window of it.
        search = da.from_array(search.compute(), chunks=grid.chunks) if search.nbytes < 2**30 else search
        avoid = built.vectors[r.avoid] if r.avoid else None
        try:
            regions = locate_regions(
                search, grid, r.n, region_area_km2=tuple(r.region_area_km2), total_area_km2=r.total_area_km2,
                min_distance_km=r.min_distance_km, max_distance_km=r.max_distance_km, compactness=r.compactness,
                avoid=avoid, avoid_km=r.avoid_km, min_suitability=r.min_suitability, seed=r.seed,
                layers={f"crit_{c}": a for c, a in criteria.items()}, classes=classes, class_names=class_names,
                n_classes=built.scheme.n_classes)
        except (ConfigError, InputDataError) as e:
            raise type(e)(f"{where}.regions: {e}") from None
        regions["origin"] = "new region"
        if "name" not in regions.columns or regions["name"].isna().all():
            regions["name"] = [f"new region {i + 1}" for i in range(len(regions))]
        for lname in s.point_layers:
            cen = gpd.GeoDataFrame(geometry=regions.geometry.centroid, crs=grid.crs)
            regions[f"{lname}_at_site"] = point_values({lname: built.layers[lname]}, cen, grid)[lname].to_numpy()

    both = pd.concat([table, regions], ignore_index=True) if regions is not None and len(regions) else table
    both = gpd.GeoDataFrame(both, geometry="geometry", crs=grid.crs)
    try:
        ranked = rank(both, s.ranking.columns, method=s.ranking.method, normalise=s.ranking.normalise)
    except ConfigError as e:
        raise ConfigError(f"{where}.ranking.columns: {e}") from None
    res = SitesResult(ranking=ranked, regions=regions)
    if s.sensitivity is not None:
        _sensitivity(built, res, criteria, folder)
    return res


def _sensitivity(built, res: SitesResult, criteria: dict, folder: Path) -> None:
    cfg, grid = built.plan.config, built.grid
    z = cfg.sites.sensitivity
    names = list(cfg.criteria)
    ranked = res.ranking
    means = ranked[[f"crit_{c}_mean" for c in names]].copy()
    means.columns = names
    means.index = ranked["name"].astype(str)
    ok = means.notna().all(axis=1)
    means = means.loc[ok]
    weights = {c: float(built.weights[c]) for c in names}
    res.oat = sens.oat_sweep(means, weights, changes=tuple(z.changes))
    draws = sens.dirichlet_draws(weights, z.draws, seed=z.seed, concentration=z.concentration)
    res.distribution, res.acceptability = sens.rank_distribution(means, draws, k=z.top_k, weights=weights)
    res.verdict = sens.stability_verdict(res.distribution, res.oat, k=z.top_k, threshold=z.robust_share)
    mean, std, cv = sens.monte_carlo_rasters([criteria[c] for c in names], draws)
    tags = {"MONTE_CARLO_DRAWS": str(z.draws), "MONTE_CARLO_SEED": str(z.seed),
            "DIRICHLET_CONCENTRATION": str(z.concentration)}
    res.rasters = [
        RasterOutput(mean.astype(np.float32), folder / "mc_suitability_mean.tif",
                     f"Monte Carlo mean suitability ({z.draws} weight draws)", "score 0-1", float("nan"), tags=tags),
        RasterOutput(std.astype(np.float32), folder / "mc_suitability_std.tif",
                     f"Monte Carlo standard deviation of suitability ({z.draws} draws)", "score 0-1",
                     float("nan"), tags=tags),
        RasterOutput(cv.astype(np.float32), folder / "mc_suitability_cv.tif",
                     f"Monte Carlo coefficient of variation ({z.draws} draws)", "ratio", float("nan"), tags=tags),
    ]
    write_many(res.rasters, grid)


def write_sites(res: SitesResult, folder: Path) -> list[ProjectLayer]:
    table = res.ranking
    if res.verdict is not None:
        # The stability analysis ranks sites by the mean suitability of their catchment (linear in the criterion
        # weights it perturbs), which is not the multi-column ranking above: name the columns so.
        v = res.verdict.set_index("candidate")
        for col, new in (("base_rank", "suitability_mean_rank"), ("p_top_k", "p_top_k_by_suitability"),
                         ("verdict", "stability_by_suitability"), ("sensitive_to", "sensitive_to_weights")):
            if col in v.columns:
                table[new] = table["name"].astype(str).map(v[col])
    rq = graduated_qml("rank", [0.5, 3.5, 10.5, 30.5, 1e9], ["#1a9641", "#a6d96a", "#fdae61", "#d7191c"],
                       ["rank 1-3", "4-10", "11-30", "> 30"], "Polygon", label_field="name")
    write_table(table, folder, "sites_ranking", rq)
    layers = [ProjectLayer("sites_ranking", folder / "sites_ranking.gpkg", "Sites", True, kind="vector",
                           vector_layer="sites_ranking", geometry="Polygon", qml=rq)]
    for name, df in (("sensitivity_oat", res.oat), ("sensitivity_rank_distribution", res.distribution),
                     ("sensitivity_acceptability", res.acceptability), ("sensitivity_verdict", res.verdict)):
        if df is not None:
            write_table(df.reset_index() if name == "sensitivity_acceptability" else df, folder, name)
    for o in res.rasters:
        hi = 1.0 if o.units == "score 0-1" else 0.5
        qml = continuous_qml(0.0, hi, SUITABILITY_RAMP if "mean" in o.path.stem else
                             tuple(reversed(SUITABILITY_RAMP)))
        from rasters.atomic import write_text_atomic

        write_text_atomic(o.path.with_suffix(".qml"), qml)
        layers.append(ProjectLayer(o.path.stem, o.path, "Sites", False, qml=qml))
    return layers
