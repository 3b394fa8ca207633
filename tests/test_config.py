"""Config validation and planning: every mistake gives one line naming the file, the key path and what is valid."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines.config import json_schema, load
from pipelines.plan import build_plan
from rasters.errors import ConfigError, InputDataError
from tests.conftest import DATA

DEMO = Path(__file__).resolve().parent.parent / "configs" / "qinghai_demo.yaml"


def demo_raw(keep_sites: bool = False) -> dict:
    """The demo config as a dict with absolute paths. The sites block (ranking, regions, 200 Monte Carlo
    draws) is dropped unless asked for: most tests exercise something else and should stay fast."""
    raw = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    if not keep_sites:
        raw.pop("sites", None)
        for name in ("named_towns", "xining_haidong"):  # inputs only the sites block uses
            raw["inputs"].pop(name, None)
    for inp in raw["inputs"].values():  # absolute paths so the config can live in tmp_path
        for k in ("raster", "vector"):
            if k in inp:
                inp[k] = str((DEMO.parent / inp[k]).resolve())
    sa = raw.get("water", {}).get("synthetic_allocation")
    if sa:
        sa["population_csv"] = str((DEMO.parent / sa["population_csv"]).resolve())
    return raw


def write_cfg(tmp_path: Path, raw: dict) -> Path:
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return p


def plan_of(tmp_path, raw):
    return build_plan(load(write_cfg(tmp_path, raw)))


def test_demo_config_plans():
    plan = build_plan(load(DEMO))
    assert set(plan.needed) >= {"elevation_m", "slope_deg", "dist_water_m"}
    # Derived layers come after what they depend on.
    assert plan.order.index("elevation_m") < plan.order.index("slope_deg")
    assert plan.order.index("rivers") < plan.order.index("dist_water_m")


def test_relative_paths_resolve_against_config_folder():
    loaded = load(DEMO)
    assert loaded.resolve(loaded.config.inputs["elevation_m"].raster) == (DATA / "dem_5arcmin.tif").resolve()


def test_hash_is_stable_and_sensitive():
    a, b = load(DEMO), load(DEMO)
    assert a.sha256() == b.sha256()
    c = load(DEMO, ["criteria.slope.weight=0.3"])
    assert c.sha256() != a.sha256()


def test_schema_is_json_schema():
    s = json_schema()
    assert s["type"] == "object" and "grid" in s["properties"] and s["additionalProperties"] is False


def _mutate(raw, dotted, value):
    cur = raw
    keys = dotted.split(".")
    for k in keys[:-1]:
        cur = cur[k]
    if value is KeyError:
        del cur[keys[-1]]
    else:
        cur[keys[-1]] = value


@pytest.mark.parametrize(
    "dotted, value, pattern",
    [
        ("criteria.slope.weigth", 1, r"criteria\.slope: unknown key 'weigth' \(did you mean 'weight'\?\)"),
        ("grid.resolution", 5, r"grid: unknown key 'resolution' \(did you mean 'resolution_m'\?\)"),
        ("grid.resolution_m", -5, r"grid\.resolution_m: Input should be greater than 0"),
        ("grid.crs", "EPSG:999999", r"grid\.crs: 'EPSG:999999' is not a CRS"),
        ("layers.slope_deg.type", "slop", r"layers\.slope_deg: unknown type 'slop' \(did you mean 'slope'\?\)"),
        ("criteria.slope.layer", "slope_dg", r"criteria\.slope\.layer: 'slope_dg' is not an input or layer "
                                            r"\(did you mean 'slope_deg'\?\)"),
        ("criteria.slope.layer", "rivers", r"criteria\.slope\.layer: 'rivers' is a vector input"),
        ("layers.dist_water_m.to", ["rivers", "lake"], r"layers\.dist_water_m\.to\[1\]: 'lake' is not a vector "
                                                        r"input \(did you mean 'lakes'\?\)"),
        ("criteria.slope.transform", {"type": "linnear", "lower": 0, "upper": 1},
         r"criteria\.slope\.transform: .*linnear.*did you mean 'linear'"),
        ("grid.extent", KeyError, r"grid: give exactly one of 'extent'"),
        ("inputs.dem2", {"raster": str(DATA / "dem_5arcmin.tif")}, r"inputs\.dem2: input 'dem2' is not used"),
        ("inputs.bad", {"rastr": "x.tif"}, r"inputs\.bad: give 'raster: <path>' or 'vector: <path>'"),
        ("constraints.exclude", [{"where": "slope_deg > 25 and elevaton_m > 1"}],
         r"constraints\.exclude\[0\]\.where: .*elevaton_m.*did you mean 'elevation_m'"),
        ("constraints.exclude", [{"where": "__import__('os').system('true')"}],
         r"constraints\.exclude\[0\]\.where: "),
    ],
)
def test_config_errors(tmp_path, dotted, value, pattern):
    raw = demo_raw()
    _mutate(raw, dotted, value)
    with pytest.raises(ConfigError, match=pattern) as ei:
        plan_of(tmp_path, raw)
    msg = str(ei.value)
    assert msg.startswith(str(tmp_path / "cfg.yaml")) and "\n" not in msg


def test_cycle_in_layers(tmp_path):
    raw = demo_raw()
    raw["layers"]["a_deg"] = {"type": "slope", "dem": "b_deg"}
    raw["layers"]["b_deg"] = {"type": "slope", "dem": "a_deg"}
    raw["outputs"]["layers"] = ["a_deg"]
    cycle = r"layers\.(a_deg|b_deg): cycle: (a_deg -> b_deg -> a_deg|b_deg -> a_deg -> b_deg)"
    with pytest.raises(ConfigError, match=cycle):
        plan_of(tmp_path, raw)


def test_missing_input_file(tmp_path):
    raw = demo_raw()
    raw["inputs"]["elevation_m"]["raster"] = str(tmp_path / "gone.tif")
    with pytest.raises(InputDataError, match=r"inputs\.elevation_m\.raster: .*gone\.tif: file not found"):
        plan_of(tmp_path, raw)


def test_yaml_python_tags_refused(tmp_path):
    p = tmp_path / "evil.yaml"
    p.write_text("grid: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match=r"evil\.yaml: line 1: not valid YAML"):
        load(p)


def test_config_not_a_mapping(tmp_path):
    p = tmp_path / "list.yaml"
    p.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load(p)


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="expected KEY.PATH=VALUE"):
        load(DEMO, ["grid.resolution_m"])
