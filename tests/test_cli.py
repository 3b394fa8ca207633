"""The command line end to end on the real Qinghai data, and every bad input through it.

Each bad-input case checks the exit code, that stderr is one line naming the file/key, and that nothing was
written to the output folder.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from pyproj import Transformer

from pipelines.cli import main
from tests.conftest import ALBERS, DATA
from tests.test_config import DEMO, demo_raw, write_cfg

COARSE = ["--set", "grid.resolution_m=5000", "--set", "grid.chunk_size=64"]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    code = main(["run", str(DEMO), *COARSE, "--output-dir", str(out), "-q"])
    assert code == 0
    return out


def seat_values(path: Path, names: list[str]) -> dict[str, float]:
    seats = gpd.read_file(DATA / "county_seats.gpkg")
    tr = Transformer.from_crs("EPSG:4326", ALBERS, always_xy=True)
    out = {}
    with rasterio.open(path) as ds:
        for name in names:
            row = seats[seats.name_zh == name].iloc[0]
            x, y = tr.transform(row.seat_lon, row.seat_lat)
            out[name] = float(next(ds.sample([(x, y)]))[0])
    return out


def test_demo_outputs_open_correctly(demo_run):
    names = sorted(p.name for p in demo_run.iterdir())
    for name in ("suitability.tif", "suitability_class.tif", "run.json", "run.log", "project.qgs", "suitability.qml"):
        assert name in names
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")]
    with rasterio.open(demo_run / "suitability.tif") as ds:
        assert ds.crs.to_wkt() and "Albers" in ds.crs.to_wkt()
        assert ds.res == (5000.0, 5000.0) and ds.dtypes[0] == "float32" and np.isnan(ds.nodata)
        s = ds.read(1)
        tags = ds.tags(1)
    valid = s[~np.isnan(s)]
    assert valid.size > 0.3 * s.size  # the province fills most of its bounding box
    assert valid.min() >= 0 and valid.max() <= 1
    assert float(tags["STATISTICS_MAXIMUM"]) == pytest.approx(float(valid.max()))
    with rasterio.open(demo_run / "suitability_class.tif") as ds:
        assert ds.dtypes[0] == "uint8" and ds.nodata == 0
        c = ds.read(1)
    assert set(np.unique(c)) <= {0, 1, 2, 3, 4, 5}
    # Classes agree with the breaks wherever the score is valid, and are 0 exactly where it is not.
    np.testing.assert_array_equal(c == 0, np.isnan(s))
    np.testing.assert_array_equal(c[~np.isnan(s)], np.digitize(valid, [0.2, 0.4, 0.6, 0.8]) + 1)


def test_demo_outside_province_is_nodata(demo_run):
    with rasterio.open(demo_run / "suitability.tif") as ds:
        # A point in Gansu's Hexi corridor, north of the province, inside the grid's bounding box.
        x, y = Transformer.from_crs("EPSG:4326", ALBERS, always_xy=True).transform(98.5, 39.3)
        assert np.isnan(next(ds.sample([(x, y)]))[0])


def test_demo_high_counties_score_below_xining(demo_run):
    v = seat_values(demo_run / "suitability.tif", ["玛多县", "曲麻莱县", "西宁市城中区", "城东区"])
    xining = max(v["西宁市城中区"], v["城东区"])
    assert v["玛多县"] < xining and v["曲麻莱县"] < xining
    assert xining > 0.6


def test_demo_run_json(demo_run):
    import hashlib

    rec = json.loads((demo_run / "run.json").read_text(encoding="utf-8"))
    assert rec["type"] == "Feature" and rec["stac_version"] == "1.0.0"
    p = rec["properties"]
    assert len(p["suitability:config_sha256"]) == 64
    assert p["suitability:versions"]["gdal"] and p["suitability:versions"]["proj"]
    dem_sha = hashlib.sha256((DATA / "dem_5arcmin.tif").read_bytes()).hexdigest()
    assert p["suitability:inputs"]["elevation_m"]["sha256"] == dem_sha
    assert p["suitability:inputs"]["counties"]["repaired_geometries"] >= 30
    assert sum(p["suitability:weights"]["weights"].values()) == pytest.approx(1.0)
    assert p["proj:shape"] == [p["suitability:grid"]["height"], p["suitability:grid"]["width"]]
    assert "PROJCRS" in p["proj:wkt2"]
    # The footprint is Qinghai's bounding box in WGS 84 (31.6-39.2 N, 89.4-103.1 E, plus the 10 km buffer).
    lon0, lat0, lon1, lat1 = rec["bbox"]
    assert 88.5 < lon0 < 89.6 and 102.9 < lon1 < 104 and 31 < lat0 < 31.7 and 39.1 < lat1 < 39.8
    band = rec["assets"]["suitability"]["raster:bands"][0]
    with rasterio.open(demo_run / "suitability.tif") as ds:
        assert ds.tags()["SUITABILITY_CONFIG_SHA256"] == p["suitability:config_sha256"]
        assert band["statistics"]["maximum"] == pytest.approx(float(ds.tags(1)["STATISTICS_MAXIMUM"]))
    assert (demo_run / "run.log").read_text(encoding="utf-8").count("wrote ./") >= 8


def test_rerun_reproduces_bit_identical_rasters_and_diff(demo_run, tmp_path, capsys):
    assert main(["rerun", str(demo_run / "run.json"), "--output-dir", str(tmp_path), "-q"]) == 0
    for name in ("suitability.tif", "suitability_class.tif", "slope_deg.tif"):
        with rasterio.open(demo_run / name) as a, rasterio.open(tmp_path / name) as b:
            np.testing.assert_array_equal(a.read(1), b.read(1))
    a = json.loads((demo_run / "run.json").read_text(encoding="utf-8"))
    b = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    assert a["properties"]["suitability:config_sha256"] == b["properties"]["suitability:config_sha256"]
    capsys.readouterr()
    assert main(["diff", str(demo_run / "run.json"), str(tmp_path / "run.json")]) == 0
    out = capsys.readouterr().out
    assert "config outputs.folder" in out and "output suitability" not in out


def test_diff_names_a_changed_weight(demo_run, tmp_path, capsys):
    assert main(["run", str(DEMO), *COARSE, "--set", "criteria.slope.weight=0.5", "--output-dir", str(tmp_path),
                 "-q"]) == 0
    capsys.readouterr()
    assert main(["diff", str(demo_run / "run.json"), str(tmp_path / "run.json")]) == 0
    out = capsys.readouterr().out
    assert "config criteria.slope.weight: 0.25 -> 0.5" in out
    assert "output suitability: " in out


def test_rerun_refuses_changed_input(tmp_path, capsys):
    import shutil

    work = tmp_path / "data"
    shutil.copytree(DATA, work)
    raw = demo_raw()
    raw["inputs"]["elevation_m"]["raster"] = str(work / "dem_5arcmin.tif")
    cfg = write_cfg(tmp_path, raw)
    assert main(["run", str(cfg), *COARSE, "--output-dir", str(tmp_path / "a"), "-q"]) == 0
    with rasterio.open(work / "dem_5arcmin.tif", "r+") as ds:
        arr = ds.read(1)
        arr[0, 0] += 1
        ds.write(arr, 1)
    capsys.readouterr()
    code = main(["rerun", str(tmp_path / "a" / "run.json"), "--output-dir", str(tmp_path / "b"), "-q"])
    err = capsys.readouterr().err
    assert code == 3 and "input 'elevation_m'" in err and "changed since the run" in err
    assert not (tmp_path / "b").exists()


def test_json_events(tmp_path, capsys):
    assert main(["run", str(DEMO), *COARSE, "--output-dir", str(tmp_path), "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert events[-1]["event"] == "done" and "./suitability.tif" in events[-1]["outputs"]
    progress = [e for e in events if e["event"] == "progress"]
    assert progress and progress[-1]["done"] == progress[-1]["total"]


def test_json_progress_covers_the_cache_passes(tmp_path, capsys):
    """A cold run computes its cached layers and criterion scores in passes of their own before the outputs'
    pass: each reports progress (a sequence of events ending done == total). The warm rerun has no such pass."""
    cache = ["--set", f"cache.folder={json.dumps(str(tmp_path / 'cache'))}"]

    def passes(out):
        assert main(["run", str(DEMO), *COARSE, *cache, "--output-dir", str(tmp_path / out), "--json"]) == 0
        events = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
        ends = [e for e in events if e["event"] == "progress" and e.get("unit") is None and e["done"] == e["total"]]
        return len(ends)

    cold, warm = passes("cold"), passes("warm")
    # cold: slope, distance (their cache entries), criterion scores + mask, the outputs (+ sites/relocation passes)
    assert cold >= warm + 3, (cold, warm)


def test_chunk_size_does_not_change_bytes(demo_run, tmp_path):
    code = main(["run", str(DEMO), "--set", "grid.resolution_m=5000", "--set", "grid.chunk_size=1024",
                 "--output-dir", str(tmp_path), "-q"])
    assert code == 0
    for name in ("suitability.tif", "suitability_class.tif", "dist_water_m.tif", "slope_deg.tif"):
        with rasterio.open(demo_run / name) as a, rasterio.open(tmp_path / name) as b:
            np.testing.assert_array_equal(a.read(1), b.read(1))


def test_dry_run_prints_plan_and_writes_nothing(tmp_path, capsys):
    code = main(["run", str(DEMO), *COARSE, "--output-dir", str(tmp_path / "out"), "--dry-run"])
    assert code == 0
    out = capsys.readouterr().out
    for needle in ("grid:", "resampling bilinear", "slope_deg = slope(elevation_m)", "memory: about",
                   "suitability_class.tif", "weight 0.4500"):
        assert needle in out
    assert not (tmp_path / "out").exists()


def test_validate_ok(capsys):
    assert main(["validate", str(DEMO)]) == 0
    assert ": ok (" in capsys.readouterr().out


def test_schema_command(capsys):
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "suitability config"


def test_console_script_exit_code_and_one_line(tmp_path):
    exe = Path(sys.executable).parent / "suitability"
    r = subprocess.run([str(exe), "run", str(tmp_path / "none.yaml")], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "none.yaml: config file not found" in r.stderr


# --- bad input through the CLI ------------------------------------------------------------------------------
def _run_bad(tmp_path, raw, capsys, extra=()):
    cfg = write_cfg(tmp_path, raw)
    out = tmp_path / "out"
    code = main(["run", str(cfg), *COARSE, "--output-dir", str(out), "-q", *extra])
    err = capsys.readouterr().err.strip()
    assert not out.exists() or not any(out.iterdir()), "a failed run left files behind"
    return code, err


def _truncated(tmp_path):
    p = tmp_path / "cut.tif"
    data = (DATA / "dem_5arcmin.tif").read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


def _nocrs(tmp_path):
    p = tmp_path / "nocrs.tif"
    with rasterio.open(DATA / "dem_5arcmin.tif") as src:
        prof = src.profile
        arr = src.read(1)
    prof.pop("crs")
    with rasterio.open(p, "w", **prof) as dst:
        dst.write(arr, 1)
    return p


def _far(tmp_path):
    p = tmp_path / "far.tif"
    with rasterio.open(DATA / "dem_5arcmin.tif") as src:
        prof = src.profile
        arr = src.read(1)
    prof["transform"] = rasterio.Affine(0.0833, 0, -60, 0, -0.0833, -20)
    with rasterio.open(p, "w", **prof) as dst:
        dst.write(arr, 1)
    return p


def _text(tmp_path):
    p = tmp_path / "notes.tif"
    p.write_text("not a raster")
    return p


def _empty_vector(tmp_path):
    p = tmp_path / "empty.gpkg"
    gpd.GeoDataFrame({"a": []}, geometry=[], crs="EPSG:4326").to_file(p, layer="lakes")
    return p


@pytest.mark.parametrize(
    "case, code, pattern",
    [
        ("missing raster", 3, r"inputs\.elevation_m\.raster: .*missing\.tif: file not found"),
        ("not a raster", 3, r"inputs\.elevation_m: .*notes\.tif: not a raster GDAL can read"),
        ("no crs", 3, r"inputs\.elevation_m: .*nocrs\.tif: raster has no CRS"),
        ("truncated", 3, r"inputs\.elevation_m: .*cut\.tif: "),
        ("no overlap", 3, r"inputs\.elevation_m: .*far\.tif: raster does not overlap the analysis grid"),
        ("wrong layer", 3, r"inputs\.rivers: .*rivers\.gpkg: .*'river'.*did you mean 'rivers'"),
        ("empty layer", 3, r"inputs\.lakes: .*empty\.gpkg: .*empty"),
        ("negative weight", 2, r"criteria: weight of criterion 'slope' is -0.2; weights must be >= 0"),
        ("all zero weights", 2, r"criteria: .*zero"),
        ("unknown key", 2, r"criteria\.slope: unknown key 'wieght' \(did you mean 'weight'\?\)"),
        ("misspelled layer", 2, r"criteria\.water_access\.layer: 'dist_water' is not an input or layer "
                                r"\(did you mean 'dist_water_m'\?\)"),
        ("cycle", 2, r"cycle: "),
    ],
)
def test_bad_input(tmp_path, capsys, case, code, pattern):
    raw = demo_raw()
    inputs, crit = raw["inputs"], raw["criteria"]
    if case == "missing raster":
        inputs["elevation_m"]["raster"] = str(tmp_path / "missing.tif")
    elif case == "not a raster":
        inputs["elevation_m"]["raster"] = str(_text(tmp_path))
    elif case == "no crs":
        inputs["elevation_m"]["raster"] = str(_nocrs(tmp_path))
    elif case == "truncated":
        inputs["elevation_m"]["raster"] = str(_truncated(tmp_path))
    elif case == "no overlap":
        inputs["elevation_m"]["raster"] = str(_far(tmp_path))
    elif case == "wrong layer":
        inputs["rivers"]["layer"] = "river"
    elif case == "empty layer":
        inputs["lakes"]["vector"] = str(_empty_vector(tmp_path))
    elif case == "negative weight":
        crit["slope"]["weight"] = -0.2
    elif case == "all zero weights":
        for c in crit.values():
            c["weight"] = 0
    elif case == "unknown key":
        crit["slope"]["wieght"] = crit["slope"].pop("weight")
    elif case == "misspelled layer":
        crit["water_access"]["layer"] = "dist_water"
    elif case == "cycle":
        raw["layers"]["a_deg"] = {"type": "slope", "dem": "b_deg"}
        raw["layers"]["b_deg"] = {"type": "slope", "dem": "a_deg"}
        raw["outputs"]["layers"] = ["a_deg"]
    got, err = _run_bad(tmp_path, raw, capsys)
    assert got == code, err
    assert err.count("\n") == 0, f"expected one line, got:\n{err}"
    assert err.startswith("suitability: error: ")
    import re

    assert re.search(pattern, err), err


def test_debug_shows_traceback(tmp_path, capsys):
    raw = demo_raw()
    raw["criteria"]["slope"]["weight"] = -1
    cfg = write_cfg(tmp_path, raw)
    assert main(["run", str(cfg), "-q", "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err
    assert main(["--debug", "run", str(cfg), "-q"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_output_equal_to_input_refused(tmp_path, capsys):
    raw = demo_raw()
    work = tmp_path / "data"
    shutil.copytree(DATA, work)
    raw["inputs"]["elevation_m"]["raster"] = str(work / "elevation_m.tif")
    shutil.copy(DATA / "dem_5arcmin.tif", work / "elevation_m.tif")
    raw["outputs"]["folder"] = str(work)
    before = sorted(p.name for p in work.iterdir())
    cfg = write_cfg(tmp_path, raw)
    code = main(["run", str(cfg), *COARSE, "-q"])
    assert code == 2 and "is also an input" in capsys.readouterr().err
    assert sorted(p.name for p in work.iterdir()) == before


def test_block_progress_hook_for_cluster_writes(capsys):
    """On a cluster dask's local progress bar sees nothing: the writer reports blocks written through a hook,
    set only inside the progress context and restored after it."""
    from pipelines.run import progress
    from rasters import io as rio_mod

    class Events:
        def __init__(self):
            self.seen = []

        def emit(self, event, **fields):
            self.seen.append((event, fields))

    ev = Events()
    assert rio_mod.block_progress is None
    with progress(False, ev):
        rio_mod.block_progress(3, 8)
    assert rio_mod.block_progress is None
    assert ev.seen == [("progress", {"done": 3, "total": 8, "unit": "blocks"})]
    with progress(True):
        rio_mod.block_progress(8, 8)
    assert "100.0% blocks written" in capsys.readouterr().err
