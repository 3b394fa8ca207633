"""The sites block of the Qinghai demo through the command line (10 km grid): ranking, new regions in the
Xining–Haidong area, and the stability outputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rasterio

from pipelines.cli import main
from tests.test_config import DEMO


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    out = tmp_path_factory.mktemp("sites")
    assert main(["run", str(DEMO), "--set", "grid.resolution_m=10000",
                 "--set", "sites.regions.region_area_km2=[100, 400]",
                 "--set", "sites.regions.min_distance_km=20", "--set", "sites.regions.avoid_km=0",
                 "--output-dir", str(out), "-q"]) == 0
    return out


def test_every_candidate_is_ranked_with_reasons(sites):
    t = pd.read_csv(sites / "sites_ranking.csv", encoding="utf-8-sig")
    cands = t[t["origin"] == "candidate"]
    assert len(cands) == 44 + 5  # county seats + the plan's named towns
    assert set(cands["name"]) >= {"共和恰卜恰", "茫崖冷湖", "化隆甘都", "囊谦香达", "祁连默勒"}
    assert (t["rank"].dropna().sort_values().to_numpy() >= 1).all()
    assert t["reasons"].notna().all()
    approx = t.set_index("name").loc[["茫崖冷湖", "化隆甘都", "祁连默勒"], "position_is_approximate"]
    assert approx.astype(bool).all()
    # A 10 km catchment is a circle of pi x 100 km² (zonal areas are exact for partial cells).
    np.testing.assert_allclose(cands["area_km2"], np.pi * 100, rtol=2e-3)


def test_topsis_order_follows_the_closeness_score(sites):
    t = pd.read_csv(sites / "sites_ranking.csv", encoding="utf-8-sig").dropna(subset=["rank"])
    t = t.sort_values("rank")
    assert (np.diff(t["score"].to_numpy()) <= 1e-12).all()


def test_new_regions_lie_in_xining_haidong(sites):
    import geopandas as gpd

    t = gpd.read_file(sites / "sites_ranking.gpkg", layer="sites_ranking")
    regions = t[t["origin"] == "new region"]
    assert len(regions) >= 1
    counties = gpd.read_file(DEMO.parent / "../data/qinghai/counties.gpkg").to_crs(t.crs)
    area = counties[counties["prefecture"].isin(["西宁市", "海东市"])].make_valid().union_all()
    inside = regions.geometry.representative_point().within(area.buffer(10_000))
    assert inside.all()
    assert ((regions["area_km2"] >= 100 - 1e-6) & (regions["area_km2"] <= 400 + 100)).all()


def test_monte_carlo_outputs(sites):
    with rasterio.open(sites / "mc_suitability_mean.tif") as ds:
        mean = ds.read(1)
        assert ds.tags()["MONTE_CARLO_DRAWS"] == "200"
    with rasterio.open(sites / "suitability.tif") as ds:
        s = ds.read(1)
    ok = np.isfinite(mean) & np.isfinite(s)
    # Dirichlet draws centred on the configured weights: the mean surface stays close to the surface itself.
    assert np.nanmax(np.abs(mean[ok] - s[ok])) < 0.05
    d = pd.read_csv(sites / "sensitivity_rank_distribution.csv", encoding="utf-8-sig")
    assert ((d["p_top_k"] >= 0) & (d["p_top_k"] <= 1)).all()
    acc = pd.read_csv(sites / "sensitivity_acceptability.csv", encoding="utf-8-sig")
    np.testing.assert_allclose(acc.drop(columns=acc.columns[0]).sum(axis=1), 1.0, rtol=1e-9)
