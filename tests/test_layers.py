"""Layer types reachable from configs, checked against independent references through the pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from scipy import ndimage

from pipelines.cli import main
from tests.conftest import ALBERS
from tests.test_config import demo_raw, write_cfg


def _run(tmp_path, raw, capsys=None):
    cfg = write_cfg(tmp_path, raw)
    out = tmp_path / "out"
    code = main(["run", str(cfg), "--set", "grid.resolution_m=10000", "--output-dir", str(out), "-q"])
    return code, out


def test_relief_aspect_bands_layers(tmp_path):
    raw = demo_raw()
    raw["layers"]["relief_m"] = {"type": "relief", "dem": "elevation_m", "window_m": 30000}
    raw["layers"]["aspect_deg"] = {"type": "aspect", "dem": "elevation_m"}
    raw["layers"]["altitude_band"] = {"type": "bands", "layer": "elevation_m", "edges": [3500, 4000, 4500]}
    raw["outputs"]["layers"] = ["elevation_m", "relief_m", "aspect_deg", "altitude_band"]
    code, out = _run(tmp_path, raw)
    assert code == 0
    with rasterio.open(out / "elevation_m.tif") as a:
        z = a.read(1)
    with rasterio.open(out / "relief_m.tif") as a:
        rel = a.read(1)
        assert a.units == ("m",)
    with rasterio.open(out / "altitude_band.tif") as a:
        band = a.read(1)
    with rasterio.open(out / "aspect_deg.tif") as a:
        asp = a.read(1)
    # 30 km at 10 km cells = 3x3 window; compare where the whole window is valid.
    full = ndimage.minimum_filter(np.isfinite(z).astype(np.uint8), size=3, mode="constant") == 1
    ref = ndimage.maximum_filter(z, size=3) - ndimage.minimum_filter(z, size=3)
    np.testing.assert_allclose(rel[full], ref[full], rtol=1e-6)
    valid = np.isfinite(z)
    np.testing.assert_array_equal(band[valid], np.digitize(z[valid], [3500, 4000, 4500]).astype(np.float32))
    assert np.nanmin(asp) >= 0 and np.nanmax(asp) < 360


@pytest.mark.parametrize(
    "layer, pattern",
    [
        ({"type": "relief", "dem": "elevation_m"}, r"layers\.relief_m: give exactly one of 'window_m' or"),
        ({"type": "bands", "layer": "elevation_m", "edges": [4000, 3500]}, r"layers\.relief_m: edges must be"),
    ],
)
def test_layer_parameter_errors(tmp_path, capsys, layer, pattern):
    import re

    raw = demo_raw()
    raw["layers"]["relief_m"] = layer
    raw["outputs"]["layers"] = ["relief_m"]
    code, out = _run(tmp_path, raw)
    err = capsys.readouterr().err
    assert code == 2 and re.search(pattern, err), err
    assert not out.exists() or not any(out.iterdir())


def test_fitted_transform_parameters_come_from_the_study_area(tmp_path):
    """A gaussian with no parameters is fitted to the mean and σ of elevation inside the province (grid.mask)."""
    import json

    raw = demo_raw()
    raw["criteria"]["elevation"]["transform"] = {"type": "gaussian"}
    # The province burned by the (separately tested) rasterizer, written out to select the cells by hand.
    raw["layers"]["province"] = {"type": "rasterize", "vector": "counties"}
    raw["outputs"]["layers"] = ["elevation_m", "province"]
    code, out = _run(tmp_path, raw)
    assert code == 0
    rec = json.loads((out / "run.json").read_text(encoding="utf-8"))
    fitted = rec["properties"]["suitability:fitted_parameters"]["elevation"]
    assert fitted["fitted"] is True and fitted["transform"] == "gaussian"
    with rasterio.open(out / "elevation_m.tif") as ds:
        z = ds.read(1)
    with rasterio.open(out / "province.tif") as ds:
        inside = ds.read(1) == 1
    v = z[inside & np.isfinite(z)].astype(np.float64)
    # gaussian spread is fitted as 1 / (2 sigma^2) (ArcGIS FuzzyGaussian convention).
    assert fitted["mid"] == pytest.approx(v.mean(), rel=1e-6)
    assert fitted["spread"] == pytest.approx(1 / (2 * v.var()), rel=1e-6)


def test_quantile_classes_from_the_data(tmp_path):
    """classes.method quantile: breaks are the quintiles of the valid suitability cells (numpy.quantile)."""
    raw = demo_raw()
    raw["classes"] = {"method": "quantile", "n": 5}
    code, out = _run(tmp_path, raw)
    assert code == 0
    with rasterio.open(out / "suitability.tif") as ds:
        s = ds.read(1)
    with rasterio.open(out / "suitability_class.tif") as ds:
        c = ds.read(1)
        breaks = json.loads(ds.tags()["CLASS_BREAKS"])
    v = s[np.isfinite(s)]
    np.testing.assert_allclose(breaks, np.quantile(v, [0.2, 0.4, 0.6, 0.8]), rtol=1e-5)
    counts = np.bincount(c[c > 0], minlength=6)[1:]
    assert counts.min() > 0.15 * v.size  # about a fifth of the cells in each class
    assert labels_default_for_five(out)


def labels_default_for_five(out) -> bool:
    with rasterio.open(out / "suitability_class.tif") as ds:
        return json.loads(ds.tags()["CLASS_LABELS"]) == ["低", "较低", "中等", "较高", "高"]


def test_travel_time_layer_matches_mcp_geometric(tmp_path):
    """Travel time to county seats on a Tobler friction surface with lakes as barriers equals scikit-image's
    MCP_Geometric on the same friction (8 neighbours, the same cost convention)."""
    from skimage.graph import MCP_Geometric

    from tests.conftest import DATA

    raw = demo_raw()
    raw["inputs"]["seats"] = {"vector": str(DATA / "county_seats.gpkg"), "layer": "county_seats"}
    raw["layers"]["friction_min_per_m"] = {"type": "friction", "slope": "slope_deg", "offroad": "tobler",
                                           "offroad_factor": 4.0, "barriers": ["lakes"]}
    raw["layers"]["travel_min"] = {"type": "travel_time", "friction": "friction_min_per_m", "to": "seats"}
    raw["outputs"]["layers"] = ["friction_min_per_m", "travel_min"]
    code, out = _run(tmp_path, raw)
    assert code == 0
    with rasterio.open(out / "friction_min_per_m.tif") as ds:
        fr = ds.read(1).astype(np.float64)
        transform = ds.transform
    with rasterio.open(out / "travel_min.tif") as ds:
        tt = ds.read(1)
        assert ds.units == ("min",)
    import geopandas as gpd

    seats = gpd.read_file(DATA / "county_seats.gpkg").to_crs(ALBERS)
    inv = ~transform
    starts = set()
    for p in seats.geometry:
        c, r = inv @ (p.x, p.y)
        if 0 <= int(r) < fr.shape[0] and 0 <= int(c) < fr.shape[1]:
            starts.add((int(r), int(c)))
    cost = np.where(np.isfinite(fr), fr, np.inf) * 10_000.0  # min per metre x metres per cell
    ref, _ = MCP_Geometric(cost, fully_connected=True).find_costs(sorted(starts))
    ok = np.isfinite(ref) & np.isfinite(tt)
    assert ok.sum() > 0.5 * tt.size
    np.testing.assert_allclose(tt[ok], ref[ok], rtol=1e-5)
    assert np.array_equal(np.isfinite(tt), np.isfinite(ref))


@pytest.mark.parametrize(("window_m", "res_m", "cells"), [
    (500, 90, 5),     # 5.56 cells: 5 is the nearest odd count (450 m)
    (600, 90, 7),     # 6.67 cells: 7 (630 m)
    (3000, 1000, 3),  # exact and odd: unchanged
    (4000, 1000, 5),  # exactly 4 cells, even: the tie goes to the even half-width (5 cells, 5 km)
    (100, 1000, 1),   # under a cell: the cell itself
])
def test_relief_window_m_rounds_to_a_centred_odd_window(window_m, res_m, cells):
    from pipelines.layers import ReliefLayer
    from rasters.grid import Grid

    grid = Grid.from_bounds((0, 0, 100 * res_m, 100 * res_m), res_m, "EPSG:32647", chunk_size=64)
    n = ReliefLayer(type="relief", dem="dem", window_m=window_m).cells(grid)
    assert n == cells and n % 2 == 1
