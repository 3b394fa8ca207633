"""The water, carrying and conflicts blocks through the command line on the Qinghai demo (10 km grid)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import rasterio

from pipelines.cli import main
from tests.test_config import demo_raw, write_cfg


@pytest.fixture(scope="module")
def run10(tmp_path_factory):
    out = tmp_path_factory.mktemp("water")
    raw = demo_raw()
    raw["outputs"]["layers"] = ["elevation_m", "in_sanjiangyuan", "water_criterion", "water_headroom_per_km2"]
    cfg = write_cfg(out, raw)
    assert main(["run", str(cfg), "--set", "grid.resolution_m=10000", "--output-dir", str(out / "o"), "-q"]) == 0
    return out / "o"


def test_zone_table_budgets_add_up(run10):
    t = pd.read_csv(run10 / "water_zones.csv", encoding="utf-8-sig")
    assert len(t) == 44
    # The whole provincial cap (2.96e9 m³/yr) at 413 m³ per person carries 2.96e9 / 413 people.
    assert t["carrying_population"].sum() == pytest.approx(2.96e9 / 413, rel=1e-9)
    assert t["population"].sum() == pytest.approx(5_923_957, rel=1e-9)
    np.testing.assert_allclose(t["headroom_population"], t["carrying_population"] - t["population"], rtol=1e-12)
    # 以水定地: land = carrying population x 100 m² per person, in km².
    np.testing.assert_allclose(t["water_land_km2"], t["carrying_population"] * 100 / 1e6, rtol=1e-12)
    rows = t.set_index("zone")
    assert rows.loc["玛多县", "population"] == 14_490 and rows.loc["曲麻莱县", "population"] == 33_170
    assert t["allocation_is_SYNTHETIC"].all()


def test_carrying_is_the_minimum_of_its_limits(run10):
    c = pd.read_csv(run10 / "carrying.csv", encoding="utf-8-sig")
    lim = c[["limit_water", "limit_land"]].to_numpy()
    np.testing.assert_allclose(c["carrying_population"], lim.min(axis=1), rtol=1e-12)
    expected = np.where(c["limit_water"] < c["limit_land"], "water", "land")
    assert (c["binding"].str.split("+").str[0] == expected).all() or (c["binding"].isin(["water", "land"])).all()


def test_red_line_cells_never_score(run10):
    with rasterio.open(run10 / "suitability.tif") as ds:
        s = ds.read(1)
    with rasterio.open(run10 / "in_sanjiangyuan.tif") as ds:
        sjy = ds.read(1) == 1
    with rasterio.open(run10 / "elevation_m.tif") as ds:
        z = ds.read(1)
    red = sjy & (z >= 4500)
    assert red.sum() > 50
    assert np.isnan(s[red]).all()


def test_conflicts_report_seats_in_the_red_line(run10):
    k = pd.read_csv(run10 / "conflicts.csv", encoding="utf-8-sig").set_index("settlement")
    for seat in ("玛多县", "曲麻莱县"):
        assert bool(k.loc[seat, "in_red_line"])
        assert "red line" in k.loc[seat, "reasons"]
    # Xining's districts are far outside it.
    assert "城东区" not in k.index or not bool(k.loc["城东区", "in_red_line"])


def test_water_layers_follow_the_zone_table(run10):
    t = pd.read_csv(run10 / "water_zones.csv", encoding="utf-8-sig")
    with rasterio.open(run10 / "water_criterion.tif") as ds:
        wc = ds.read(1)
    vals = wc[np.isfinite(wc)]
    assert set(np.round(np.unique(vals), 5)) <= set(np.round(t["water_criterion"].astype(np.float32), 5))


@pytest.mark.parametrize(
    "dotted, value, code, pattern",
    [
        ("water.allocation_m3", "alloc", 2, r"water: .*alloc"),
        ("water.per_capita.unit", "L/day", 2, r"water\.per_capita\.unit: "),
        ("water.zones", "countys", 2, r"water\.zones: 'countys' is not a vector input \(did you mean 'counties'\?\)"),
        ("inputs.approx_redline_sanjiangyuan_SYNTHETIC.where", "name_zh = 'nowhere'", 3, r"selects no feature"),
    ],
)
def test_water_config_errors(tmp_path, capsys, dotted, value, code, pattern):
    raw = demo_raw()
    cur = raw
    keys = dotted.split(".")
    for k in keys[:-1]:
        cur = cur[k]
    cur[keys[-1]] = value
    cfg = write_cfg(tmp_path, raw)
    got = main(["run", str(cfg), "--set", "grid.resolution_m=10000", "--output-dir", str(tmp_path / "o"), "-q"])
    err = capsys.readouterr().err
    assert got == code, err
    assert re.search(pattern, err), err
    assert err.count("\n") == 1
    assert not (tmp_path / "o").exists()
