"""Faults during a run: Ctrl-C inside a task exits 130 and leaves no temporary files (outputs or cache); a write
error (a full disk) leaves the previous outputs exactly as they were."""

from __future__ import annotations

import errno
import hashlib
import json

import dask.array as da
import numpy as np

import pipelines.layers
import rasters.io
from pipelines.cli import main
from tests._demo_core import core_raw
from tests.test_config import write_cfg

ARGS = ["--set", "grid.resolution_m=20000", "--set", "grid.chunk_size=32", "-q"]


def _leftovers(*folders):
    return [p for f in folders if f.exists() for p in f.rglob("*") if ".tmp" in p.name or p.name.startswith(".")]


def _interrupt_block(x):
    raise KeyboardInterrupt


def test_ctrl_c_inside_a_task_exits_130_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    slope = pipelines.layers.slope

    def interrupted_slope(*a, **k):
        s = slope(*a, **k)
        # The interrupt arrives while a task of the graph runs (as Ctrl-C does in dask's worker threads).
        return da.map_blocks(_interrupt_block, s, dtype=np.float32)

    monkeypatch.setattr(pipelines.layers, "slope", interrupted_slope)
    raw = core_raw()
    cache = tmp_path / "cache"
    raw["cache"] = {"folder": str(cache)}
    cfg = write_cfg(tmp_path, raw)
    out = tmp_path / "out"
    for extra in ([], ["--no-cache"]):  # interrupted while filling the cache, and while writing the outputs
        assert main(["run", str(cfg), *ARGS, "--output-dir", str(out), *extra]) == 130
        assert capsys.readouterr().err.strip() == "suitability: interrupted"
        assert not _leftovers(out, cache)
        assert not out.exists() or not any(out.iterdir())
        assert not list(cache.glob("??/*.json"))  # no cache entry claims to be complete


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


def test_disk_full_while_writing_keeps_previous_outputs(tmp_path, monkeypatch, capsys):
    cfg = write_cfg(tmp_path, core_raw())
    out = tmp_path / "out"
    assert main(["run", str(cfg), *ARGS, "--no-cache", "--output-dir", str(out)]) == 0
    before = _digests(out)
    finish, calls = rasters.io._finish, []

    def full_disk(*a, **k):
        calls.append(1)
        if len(calls) == 3:  # two outputs finished, the third hits a full disk
            raise OSError(errno.ENOSPC, "No space left on device", str(out / "x.tif"))
        return finish(*a, **k)

    monkeypatch.setattr(rasters.io, "_finish", full_disk)
    code = main(["run", str(cfg), *ARGS, "--no-cache", "--set", "criteria.slope.weight=0.9", "--output-dir",
                 str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.count("\n") == 0
    assert "No space left on device" in err and "previous outputs are unchanged" in err
    assert _digests(out) == before  # every output, run.json included, byte for byte
    assert not _leftovers(out)
    rec = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert rec["properties"]["suitability:config"]["criteria"]["slope"]["weight"] == 0.25
