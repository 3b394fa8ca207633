"""configs/qinghai_relocation.yaml end to end (10 km grid): sources flagged by their figures, three scenarios
solved, flows within capacities."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from pipelines.cli import main

RELOCATION = Path(__file__).resolve().parent.parent / "configs" / "qinghai_relocation.yaml"


@pytest.fixture(scope="module")
def rel(tmp_path_factory):
    out = tmp_path_factory.mktemp("relocation")
    assert main(["run", str(RELOCATION), "--set", "grid.resolution_m=10000", "--output-dir", str(out), "-q"]) == 0
    return out


def test_sources_flagged_by_their_figures(rel):
    s = pd.read_csv(rel / "relocation_sources.csv", encoding="utf-8-sig").set_index("zone")
    for county in ("玛多县", "曲麻莱县"):
        assert s.loc[county, "flag"] == "yes"
        assert s.loc[county, "seat_elevation_m"] >= 4000 and s.loc[county, "density_per_km2"] < 1
    for county in ("西宁市城中区", "城东区", "格尔木市", "乐都区"):
        assert s.loc[county, "flag"] == "no"


def test_scenarios_place_the_shares_of_the_flagged_population(rel):
    c = pd.read_csv(rel / "relocation_scenarios.csv", encoding="utf-8-sig").set_index("scenario")
    movers = 14_490 + 33_170  # 2020 census of 玛多 and 曲麻莱, the counties the default rule flags here
    for name, share in (("20%", 0.2), ("50%", 0.5), ("100%", 1.0)):
        assert c.loc[name, "demand"] == pytest.approx(share * movers)
        assert c.loc[name, "placed"] + c.loc[name, "unplaced"] == pytest.approx(c.loc[name, "demand"])


def test_flows_respect_capacity_and_altitude(rel):
    flows = pd.read_csv(rel / "relocation_flows_100_table.csv", encoding="utf-8-sig")
    dests = pd.read_csv(rel / "relocation_destinations.csv", encoding="utf-8-sig").set_index("destination")
    load = flows.groupby("destination")["people"].sum()
    assert (load <= dests.loc[load.index, "capacity"] + 1e-6).all()
    assert (dests["elevation_m"] < 3500).all()
    # No destination takes more than max_share (60 %) of one source's movers.
    per_source = flows.groupby("source")["people"].transform("sum")
    assert (flows["people"] <= 0.6 * per_source + 1e-6).all()
    lines = gpd.read_file(rel / "relocation_flows_100.gpkg", layer="relocation_flows_100")
    assert len(lines) == len(flows) and set(lines.geom_type) == {"LineString"}
