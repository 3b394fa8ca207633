"""QGIS draws a vector input with a declared datum shift (``towgs84``) where the run put it.

QGIS picks its own transformation between a layer's CRS and the project CRS: from Xian 1980 or Beijing 1954 to the
demo's Albers (an unnamed GRS 1980 datum) that is PROJ's ballpark, no shift at all, tens of metres from the run's
positions. The project therefore lists such a layer with its bound CRS and writes the run's operation into the
project's transform context (``pipelines.qgis_project``). The reference is the hand Helmert of
``tests/test_datum_shift.py`` (EPSG Guidance Note 7-2, method 9606) followed by a pure Albers projection; PyQGIS
runs in the system Python, as in ``tests/test_qgis.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Transformer

from pipelines.cli import main
from tests._demo_core import core_raw
from tests.test_config import write_cfg
from tests.test_datum_shift import ALBERS, BJ54_ROT, GRS80, IAG75, KRASS, to_grid_datum
from tests.test_hostile_inputs import ARGS
from tests.test_qgis import SYSTEM_PYTHON, _has_pyqgis

SCRIPT = Path(__file__).parent / "qgis" / "check_layer_positions.py"
XIAN = [-24.0, -130.0, -93.0, 0.2, -0.4, 0.6, -2.0]  # made-up but plausible (as in test_datum_shift)

pytestmark = pytest.mark.skipif(not _has_pyqgis(), reason="PyQGIS (Debian package python3-qgis) is not installed")


def _declared(tmp_path, raw, name, crs):
    """Input ``name`` of the demo with its lon/lat coordinates unchanged but labelled ``crs``; the lon/lat."""
    inp = raw["inputs"][name]
    gdf = gpd.read_file(inp["vector"], layer=inp["layer"], fid_as_index=True)
    p = tmp_path / f"{name}_declared.gpkg"
    gdf.set_crs(crs, allow_override=True).to_file(p, layer=inp["layer"])
    inp["vector"] = str(p)
    return shapely.get_coordinates(gdf.geometry)


@pytest.fixture(scope="module")
def qgis_positions(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("qgis_datum")
    raw = core_raw()
    lonlat = {
        "county_seats": _declared(tmp_path, raw, "county_seats", "EPSG:4610"),  # Xian 1980, declared
        "rivers": _declared(tmp_path, raw, "rivers", "EPSG:4214"),  # Beijing 1954, declared (rotation + scale)
        "lakes": _declared(tmp_path, raw, "lakes", "EPSG:4610"),  # Xian 1980 again, not declared: the ballpark
    }
    raw["inputs"]["county_seats"]["towgs84"] = XIAN
    raw["inputs"]["rivers"]["towgs84"] = BJ54_ROT
    raw["inputs"]["lakes"]["allow_ballpark"] = True
    lonlat["counties"] = shapely.get_coordinates(gpd.read_file(raw["inputs"]["counties"]["vector"]).geometry)
    out = tmp_path / "out"
    assert main(["run", str(write_cfg(tmp_path, raw)), *ARGS, "--output-dir", str(out)]) == 0
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(tmp_path)}
    r = subprocess.run([SYSTEM_PYTHON, str(SCRIPT), str(out / "project.qgs"), *lonlat], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    recs = {rec["name"]: rec for rec in map(json.loads, r.stdout.strip().splitlines())}
    return recs, lonlat, (out / "project.qgs").read_text(encoding="utf-8")


ALBERS_GRS80 = Transformer.from_crs("+proj=longlat +ellps=GRS80 +no_defs", ALBERS, always_xy=True)


def _albers(lonlat):
    """A pure map projection (GRS 1980 lon/lat to the grid's Albers): no datum involved."""
    return np.column_stack(ALBERS_GRS80.transform(lonlat[:, 0], lonlat[:, 1]))


def _error_m(rec, key, want):
    return np.hypot(*(np.asarray(rec[key]) - want).T)


@pytest.mark.parametrize("name, params, ell", [("county_seats", XIAN, IAG75), ("rivers", BJ54_ROT, KRASS)],
                         ids=["Xian 1980 points", "Beijing 1954 lines"])
def test_declared_layer_is_drawn_where_the_run_put_it(qgis_positions, name, params, ell):
    recs, lonlat, _ = qgis_positions
    rec = recs[name]
    assert rec["project_read"] and rec["valid"]
    src = lonlat[name]
    np.testing.assert_allclose(rec["source"], src, rtol=0, atol=1e-9)  # QGIS reads the vertices we compare
    lon, lat = to_grid_datum(src[:, 0], src[:, 1], params, src_ell=ell, dst_ell=GRS80)
    want = _albers(np.column_stack([lon, lat]))
    assert _error_m(rec, "context", want).max() < 0.01
    assert _error_m(rec, "canvas", want).max() < 0.01  # what the map canvas draws
    # QGIS's own choice for this CRS pair (the project before this fix) is tens of metres off: the test can fail.
    assert _error_m(rec, "default", want).min() > 5
    # The layer's CRS in QGIS carries the declared Helmert (Layer Properties shows it; a reprojection to WGS 84
    # in QGIS uses it too).
    assert "+towgs84=" + ",".join(f"{v:g}" for v in params) in rec["layer_proj"]


@pytest.mark.parametrize("name", ["lakes", "counties"])
def test_undeclared_layers_keep_qgis_default(qgis_positions, name):
    """A WGS 84 layer and a Xian 1980 layer accepted with allow_ballpark: the run projects their lon/lat with no
    datum shift, and QGIS still does, although another Xian 1980 layer in the project has a declared shift."""
    recs, lonlat, _ = qgis_positions
    rec = recs[name]
    want = _albers(lonlat[name])
    for key in ("context", "canvas", "default"):
        assert _error_m(rec, key, want).max() < 0.01, key
    assert "towgs84" not in rec["layer_proj"]


def test_transform_context_has_one_entry_per_declaration(qgis_positions):
    _, _, text = qgis_positions
    assert text.count("<srcDest ") == 2
    assert text.count("+proj=helmert") == 2 and "+convention=position_vector" in text
