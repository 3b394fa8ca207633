"""Weighting and overlay methods reached from configs, checked against independent computations on the
written criterion rasters."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import rasterio

from pipelines.cli import main
from tests.conftest import DATA
from tests.test_config import demo_raw, write_cfg

NAMES = ["elevation", "slope", "water_access"]


def _run(tmp_path, raw, *extra):
    cfg = write_cfg(tmp_path, raw)
    out = tmp_path / "out"
    code = main(["run", str(cfg), "--set", "grid.resolution_m=10000", "--output-dir", str(out), "-q", *extra])
    return code, out


def _read(out, name):
    with rasterio.open(out / name) as ds:
        return ds.read(1)


def _no_weights(raw):
    for c in raw["criteria"].values():
        c.pop("weight")


def test_ahp_weights_from_the_principal_eigenvector_drive_the_sum(tmp_path):
    raw = demo_raw()
    _no_weights(raw)
    matrix = [[1, 3, 2], [1 / 3, 1, 0.5], [0.5, 2, 1]]
    raw["weights"] = {"method": "ahp", "pairwise": [3, 2, 0.5]}  # the upper triangle of `matrix`
    code, out = _run(tmp_path, raw)
    assert code == 0
    rec = json.loads((out / "run.json").read_text(encoding="utf-8"))["properties"]["suitability:weights"]
    vals, vecs = np.linalg.eig(np.array(matrix))
    k = int(np.argmax(vals.real))
    w = np.abs(vecs[:, k].real)
    w /= w.sum()
    assert rec["method"] == "ahp" and rec["cr"] < 0.1
    np.testing.assert_allclose([rec["weights"][n] for n in NAMES], w, rtol=1e-9)
    # Saaty's CI = (λmax − n)/(n − 1), CR = CI / RI(3) with RI(3) = 0.58.
    assert rec["cr"] == pytest.approx((vals.real[k] - 3) / 2 / 0.58, rel=1e-6)
    crit = [_read(out, f"criterion_{n}.tif").astype(np.float64) for n in NAMES]
    s = _read(out, "suitability.tif")
    ref = sum(wi * c for wi, c in zip(w, crit, strict=True))
    ok = np.isfinite(s)
    np.testing.assert_allclose(s[ok], ref[ok], rtol=1e-6, atol=1e-6)


def test_owa_full_orness_with_equal_weights_is_the_maximum(tmp_path):
    raw = demo_raw()
    for c in raw["criteria"].values():
        c["weight"] = 1
    raw["combine"] = {"method": "owa", "orness": 1.0}
    code, out = _run(tmp_path, raw)
    assert code == 0
    crit = np.stack([_read(out, f"criterion_{n}.tif") for n in NAMES])
    s = _read(out, "suitability.tif")
    ok = np.isfinite(s)
    np.testing.assert_allclose(s[ok], crit.max(axis=0)[ok], rtol=1e-6)


def test_learned_weights_from_county_seats(tmp_path):
    raw = demo_raw()
    _no_weights(raw)
    raw["inputs"]["seats"] = {"vector": str(DATA / "county_seats.gpkg"), "layer": "county_seats"}
    raw["weights"] = {"method": "learned", "presence": "seats", "n_samples": 2000, "folds": 3}
    code, out = _run(tmp_path, raw)
    assert code == 0
    rec = json.loads((out / "run.json").read_text(encoding="utf-8"))["properties"]["suitability:weights"]
    assert rec["method"].startswith("learned")
    assert sum(rec["weights"].values()) == pytest.approx(1.0)
    # County seats sit low and near water on the plateau: the model should beat chance.
    auc = next(v for k, v in rec.items() if "auc" in k and isinstance(v, float))
    assert auc > 0.6


@pytest.mark.parametrize(
    "mutate, pattern",
    [
        (lambda r: r.__setitem__("weights", {"method": "ahp", "pairwise": [9, 1 / 9, 9]}) or _no_weights(r),
         r"weights\.pairwise: .*(CR|consisten).*"),
        (lambda r: r.__setitem__("weights", {"method": "ahp", "pairwise": [3, 2, 0.5]}),
         r"criteria\.elevation\.weight: weights come from weights\.method ahp"),
        (lambda r: r["criteria"]["slope"].pop("weight"), r"criteria\.slope\.weight: required with weights\.method"),
        (lambda r: r.__setitem__("combine", {"method": "owaa"}), r"combine: unknown overlay 'owaa' .*'owa'"),
        (lambda r: r.__setitem__("weights", {"method": "rank", "ranks": {"elevation": 1, "slop": 2}})
         or _no_weights(r), r"weights\.ranks\.slop: not a criterion \(did you mean 'slope'\?\)"),
        (lambda r: r.__setitem__("weights", {"method": "learned"}) or _no_weights(r), r"weights\.presence: required"),
    ],
)
def test_weight_config_errors(tmp_path, capsys, mutate, pattern):
    raw = demo_raw()
    mutate(raw)
    code, out = _run(tmp_path, raw)
    err = capsys.readouterr().err
    assert code == 2, err
    assert re.search(pattern, err), err
    assert err.count("\n") == 1
    assert not out.exists()
