"""The outputs open in a real QGIS (PyQGIS, headless) with their styles, CRS, nodata and statistics.

QGIS is a system package (Debian's python3-qgis), not a PyPI one, so it runs in a subprocess of the system
Python. `make test` installs it when it can (root with apt-get); elsewhere these tests are skipped.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest

from pipelines.cli import main
from tests.test_config import DEMO

SYSTEM_PYTHON = "/usr/bin/python3"
SCRIPT = Path(__file__).parent / "qgis" / "check_outputs.py"


def _has_pyqgis() -> bool:
    if not Path(SYSTEM_PYTHON).exists():
        return False
    r = subprocess.run([SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True,
                       env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    return r.returncode == 0


pytestmark = pytest.mark.skipif(not _has_pyqgis(), reason="PyQGIS (Debian package python3-qgis) is not installed")


def by_name_proj(project: dict) -> dict:
    return {rec["name"]: rec for rec in project["layers"]}


def test_demo_outputs_load_styled_in_qgis(tmp_path):
    assert main(["run", str(DEMO), "--set", "grid.resolution_m=5000", "--output-dir", str(tmp_path), "-q"]) == 0
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(tmp_path)}
    r = subprocess.run([SYSTEM_PYTHON, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stdout.strip().splitlines()]
    project = next(rec for rec in records if "project" in rec)
    layers = {rec["name"]: rec for rec in records if "name" in rec}
    assert set(layers) >= {"suitability.tif", "suitability_class.tif", "slope_deg.tif"}
    for rec in layers.values():
        assert rec["valid"] and rec["crs_valid"] and rec["crs_wkt_has_albers"], rec
    s = layers["suitability.tif"]
    assert s["renderer"] == "singlebandpseudocolor" and s["ramp"] == [0.0, 1.0]
    assert math.isnan(s["nodata"])
    assert 0 <= s["stats_min"] <= s["stats_max"] <= 1
    c = layers["suitability_class.tif"]
    assert c["renderer"] == "paletted" and c["nodata"] == 0
    assert [k[0] for k in c["classes"]] == [1, 2, 3, 4, 5]
    assert [k[1].split(" ")[0] for k in c["classes"]] == ["低", "较低", "中等", "较高", "高"]
    assert c["classes"][4][2] == "#1a9641"

    # The project: opens, every layer valid, grouped, styled, relative paths, the grid CRS.
    assert project["project"] is True and project["crs_valid"]
    assert project["crs"] == "Custom Albers Equal Area (GRS 1980)"
    assert list(project["groups"]) == ["Suitability", "Sites", "Water", "Criteria", "Layers", "Inputs"]
    assert by_name_proj(project)["sites_ranking"]["renderer"] == "graduatedSymbol"
    # GeoPackage outputs carry their default style in layer_styles: QGIS applies it on load.
    assert layers["water_zones.gpkg"]["renderer"] == "graduatedSymbol" and layers["water_zones.gpkg"]["labels"]
    assert layers["water_zones.gpkg"]["features"] == 44
    assert layers["conflicts.gpkg"]["renderer"] == "singleSymbol"
    assert by_name_proj(project)["water_zones"]["renderer"] == "graduatedSymbol"
    assert dict(map(tuple, project["groups"]["Suitability"])) == {"suitability_class": True, "suitability": True}
    assert all(not vis for _, vis in project["groups"]["Criteria"])
    assert dict(map(tuple, project["groups"]["Inputs"]))["counties"] is True
    by_name = {rec["name"]: rec for rec in project["layers"]}
    assert all(rec["valid"] and rec["crs_valid"] for rec in project["layers"]), project["layers"]
    assert by_name["suitability_class"]["renderer"] == "paletted"
    assert by_name["suitability"]["renderer"] == "singlebandpseudocolor"
    assert by_name["counties"]["features"] == 44
    text = (tmp_path / "project.qgs").read_text(encoding="utf-8")
    assert "<datasource>./suitability.tif</datasource>" in text
    assert str(tmp_path) not in text  # relative paths only
