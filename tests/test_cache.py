"""The derived-layer cache: a weight, transform or class-break change reuses terrain and distances (counted by
wrapping the kernels), anything upstream changes the key, an interrupted entry is recomputed, and results are
the same bytes with and without the cache."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import rasterio

import pipelines.layers
from pipelines.cli import main
from tests._demo_core import core_raw as demo_raw
from tests.conftest import DATA
from tests.test_config import write_cfg

ARGS = ["--set", "grid.resolution_m=20000", "--set", "grid.chunk_size=64", "-q"]


@pytest.fixture
def counted(monkeypatch):
    """Count calls of the slope and distance kernels the layers use."""
    calls = {"slope": 0, "distance": 0}
    slope, dist = pipelines.layers.slope, pipelines.layers.euclidean_distance

    def slope_(*a, **k):
        calls["slope"] += 1
        return slope(*a, **k)

    def dist_(*a, **k):
        calls["distance"] += 1
        return dist(*a, **k)

    monkeypatch.setattr(pipelines.layers, "slope", slope_)
    monkeypatch.setattr(pipelines.layers, "euclidean_distance", dist_)
    return calls


def _run(cfg, out, *extra):
    assert main(["run", str(cfg), *ARGS, "--set", f"cache.folder={json.dumps(str(cfg.parent / 'cache'))}",
                 "--output-dir", str(out), *extra]) == 0
    return json.loads((out / "run.json").read_text(encoding="utf-8"))["properties"]["suitability:cache"]


def _equal(a, b, name):
    with rasterio.open(a / name) as x, rasterio.open(b / name) as y:
        return np.array_equal(x.read(1), y.read(1), equal_nan=True)


CRITERIA = ("criterion:elevation", "criterion:slope", "criterion:water_access")


def _layer_manifests(cache):
    """Manifests of derived layers (not of criterion scores or exclusion masks)."""
    return sorted(m for m in cache.glob("??/*.json")
                  if ":" not in (n := json.loads(m.read_text())["name"]) and n != "exclusions")


def test_weight_transform_and_breaks_changes_reuse_layers(tmp_path, counted):
    cfg = write_cfg(tmp_path, demo_raw())
    log = _run(cfg, tmp_path / "cold")
    assert log["slope_deg"].startswith("stored") and log["dist_water_m"].startswith("stored")
    assert all(log[c].startswith("stored") for c in (*CRITERIA, "exclusions")), log
    assert counted == {"slope": 1, "distance": 1}
    # What each change must find in the cache: a weight or a class break changes no score and no mask; a
    # transform changes that criterion's score only.
    for i, (change, stored) in enumerate([(["--set", "criteria.slope.weight=0.5"], set()),
                                          (["--set", "criteria.water_access.transform.upper=80000"],
                                           {"criterion:water_access"}),
                                          (["--set", "classes.breaks=[0.1, 0.3, 0.5, 0.7]"], set())]):
        log = _run(cfg, tmp_path / f"warm{i}", *change)
        assert log["slope_deg"].startswith("hit") and log["dist_water_m"].startswith("hit"), change
        assert {k for k in (*CRITERIA, "exclusions") if log[k].startswith("stored")} == stored, (change, log)
        assert all(log[k].startswith("hit") for k in (*CRITERIA, "exclusions") if k not in stored), (change, log)
    assert counted == {"slope": 1, "distance": 1}  # never recomputed
    # The same config from the cache writes the same bytes as without any cache.
    _run(cfg, tmp_path / "warm_same")
    assert main(["run", str(cfg), *ARGS, "--no-cache", "--set", "outputs.criteria=true",
                 "--output-dir", str(tmp_path / "nocache")]) == 0
    _run(cfg, tmp_path / "warm_criteria", "--set", "outputs.criteria=true")
    for c in CRITERIA:  # criterion scores read back from the cache are the scores computed without it
        name = f"criterion_{c.split(':')[1]}.tif"
        assert _equal(tmp_path / "warm_criteria", tmp_path / "nocache", name)
    for name in ("suitability.tif", "suitability_class.tif", "slope_deg.tif", "dist_water_m.tif"):
        assert _equal(tmp_path / "cold", tmp_path / "nocache", name)
        assert _equal(tmp_path / "warm_same", tmp_path / "nocache", name)
    assert counted == {"slope": 2, "distance": 2}  # --no-cache computes


def _with_own_dem(tmp_path):
    """The demo core reading a copy of the DEM that a test may change: (raw config, config path, DEM path)."""
    raw = demo_raw()
    work = tmp_path / "data"
    work.mkdir()
    shutil.copy(DATA / "dem_5arcmin.tif", work / "dem.tif")
    raw["inputs"]["elevation_m"]["raster"] = str(work / "dem.tif")
    return raw, write_cfg(tmp_path, raw), work / "dem.tif"


def _raise_one_cell(dem):
    with rasterio.open(dem, "r+") as ds:
        arr = ds.read(1)
        arr[10, 10] += 100
        ds.write(arr, 1)


def test_upstream_changes_recompute(tmp_path, counted):
    raw, cfg, dem = _with_own_dem(tmp_path)
    _run(cfg, tmp_path / "a")
    # A changed input file: slope recomputed, distance (which does not read the DEM) reused.
    _raise_one_cell(dem)
    log = _run(cfg, tmp_path / "b")
    assert log["slope_deg"].startswith("stored") and log["dist_water_m"].startswith("hit")
    # A changed layer parameter, and a changed grid.
    log = _run(cfg, tmp_path / "c", "--set", "layers.dist_water_m.max_km=100")
    assert log["dist_water_m"].startswith("stored") and log["slope_deg"].startswith("hit")
    log = _run(cfg, tmp_path / "d", "--set", "grid.buffer_m=20000")
    assert log["slope_deg"].startswith("stored")
    assert counted == {"slope": 3, "distance": 3}


def test_criteria_and_exclusions_follow_what_they_read(tmp_path):
    """A criterion's score is recomputed when its layer's key changes, the exclusion mask when a constraint, the
    study area or a name a rule reads changes; the rest comes from the cache."""
    raw, cfg, dem = _with_own_dem(tmp_path)
    _run(cfg, tmp_path / "a")

    def stored(log):
        return {k for k in (*CRITERIA, "exclusions") if log[k].startswith("stored")}

    # The DEM feeds the elevation and slope criteria and two rules; the distance criterion reads no DEM.
    _raise_one_cell(dem)
    assert stored(_run(cfg, tmp_path / "b")) == {"criterion:elevation", "criterion:slope", "exclusions"}
    # A changed rule or buffer: only the mask.
    raw["constraints"]["exclude"][1]["where"] = "slope_deg >= 20"
    assert stored(_run(write_cfg(tmp_path, raw), tmp_path / "c")) == {"exclusions"}
    raw["constraints"]["exclude"][0]["buffer_m"] = 1000
    assert stored(_run(write_cfg(tmp_path, raw), tmp_path / "d")) == {"exclusions"}
    # A layer parameter a criterion reads: that criterion only.
    assert stored(_run(cfg, tmp_path / "e", "--set", "layers.dist_water_m.max_km=100")) == {"criterion:water_access"}
    # The mask entry is the OR of the rules, the lakes and the outside of the study area, as a uint8 file.
    m = [p for p in (tmp_path / "cache").glob("??/*.json") if json.loads(p.read_text())["name"] == "exclusions"]
    assert m and all(json.loads(p.read_text())["dtype"] == "bool" for p in m)
    with rasterio.open(m[0].with_suffix(".tif")) as ds:
        assert ds.dtypes[0] == "uint8" and set(np.unique(ds.read(1))) <= {0, 1}


def test_interrupted_entry_is_recomputed_and_clear(tmp_path, counted, capsys):
    cfg = write_cfg(tmp_path, demo_raw())
    _run(cfg, tmp_path / "a")
    cache = tmp_path / "cache"
    manifests = _layer_manifests(cache)
    assert len(manifests) == 2
    # As if the run stopped after the GeoTIFF and before its manifest: the entry must not be trusted.
    manifests[0].unlink()
    log = _run(cfg, tmp_path / "b")
    assert sorted(v.split()[0] for k, v in log.items() if k in ("slope_deg", "dist_water_m")) == ["hit", "stored"]
    # A damaged GeoTIFF (size differs from the manifest) is recomputed too.
    tif = manifests[1].with_suffix(".tif")
    tif.write_bytes(tif.read_bytes()[:100])
    log = _run(cfg, tmp_path / "c")
    assert sorted(v.split()[0] for k, v in log.items() if k in ("slope_deg", "dist_water_m")) == ["hit", "stored"]
    assert counted == {"slope": 2, "distance": 2}
    capsys.readouterr()
    raw = demo_raw()
    raw["cache"] = {"folder": str(cache)}
    assert main(["cache", "clear", str(write_cfg(tmp_path, raw))]) == 0
    assert "removed 6 cache entries" in capsys.readouterr().out  # 2 layers, 3 criterion scores, 1 exclusion mask
    assert not list(cache.glob("??/*"))


def test_fitted_statistics_are_cached(tmp_path, monkeypatch):
    """A transform fitted to its layer's statistics: the cold run computes them once and keeps them; a weight
    change reads them (no statistics pass over the layer), fits the same numbers and writes the same bytes as a
    run without the cache."""
    import pipelines.run

    raw = demo_raw()
    raw["criteria"]["elevation"]["transform"] = {"type": "gaussian"}
    cfg = write_cfg(tmp_path, raw)
    passes = []
    stats_many = pipelines.run.layer_stats_many

    def counted_stats(arrays):
        passes.append(sorted(arrays))
        return stats_many(arrays)

    monkeypatch.setattr(pipelines.run, "layer_stats_many", counted_stats)
    log = _run(cfg, tmp_path / "cold")
    assert log["stats:elevation_m"].startswith("stored") and passes == [["elevation_m"]]
    log = _run(cfg, tmp_path / "warm", "--set", "criteria.slope.weight=0.5")
    assert log["stats:elevation_m"].startswith("hit") and log["criterion:elevation"].startswith("hit")
    assert passes == [["elevation_m"]]  # no second pass
    assert main(["run", str(cfg), *ARGS, "--no-cache", "--set", "criteria.slope.weight=0.5",
                 "--output-dir", str(tmp_path / "nocache")]) == 0
    assert passes == [["elevation_m"], ["elevation_m"]]

    def fitted(out):
        rec = json.loads((out / "run.json").read_text(encoding="utf-8"))
        return rec["properties"]["suitability:fitted_parameters"]["elevation"]

    assert fitted(tmp_path / "warm") == fitted(tmp_path / "nocache") == fitted(tmp_path / "cold")
    for name in ("suitability.tif", "suitability_class.tif"):
        assert _equal(tmp_path / "warm", tmp_path / "nocache", name)
