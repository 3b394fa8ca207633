"""The same run on every scheduler gives the same bytes: threads (the reference), a local process pool, and a
dask.distributed LocalCluster with 2 worker processes (blocks computed on the workers, written by the client).

The demo is extended with a friction and a travel-time layer (written as an output), so the tiled travel-time
solver's border-exchange rounds also run on each scheduler; small chunks make it several tiles.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from pipelines.cli import main
from pipelines.compute import ComputeSpec, cli_overrides, scheduler
from rasters.errors import ConfigError
from tests._demo_core import core_raw as demo_raw
from tests.test_config import write_cfg

ARGS = ["--set", "grid.resolution_m=10000", "--set", "grid.chunk_size=48", "--no-cache", "-q"]
RASTERS = ("suitability.tif", "suitability_class.tif", "slope_deg.tif", "dist_water_m.tif", "travel_min.tif",
           "criterion_water_access.tif")


def _config(tmp_path):
    raw = demo_raw()
    raw["layers"]["friction_min_per_m"] = {"type": "friction", "slope": "slope_deg", "offroad": "tobler",
                                           "barriers": ["lakes"]}
    raw["layers"]["travel_min"] = {"type": "travel_time", "friction": "friction_min_per_m", "to": "county_seats"}
    raw["outputs"]["layers"] = [*raw["outputs"]["layers"], "travel_min"]
    return write_cfg(tmp_path, raw)


@pytest.fixture(scope="module")
def threaded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sched")
    cfg = _config(tmp)
    out = tmp / "threads"
    assert main(["run", str(cfg), *ARGS, "--output-dir", str(out)]) == 0
    return cfg, out


def _same_rasters(a, b):
    for name in RASTERS:
        with rasterio.open(a / name) as x, rasterio.open(b / name) as y:
            xa, ya = x.read(1), y.read(1)
            assert xa.dtype == ya.dtype
            np.testing.assert_array_equal(xa, ya, err_msg=name)  # NaN == NaN here, bit for bit otherwise
            assert x.tags(1) == y.tags(1), name  # statistics summed in the same order
    ra = json.loads((a / "run.json").read_text(encoding="utf-8"))["properties"]
    rb = json.loads((b / "run.json").read_text(encoding="utf-8"))["properties"]
    assert ra["suitability:config_sha256"] == rb["suitability:config_sha256"]
    return rb


def test_travel_time_has_several_tiles(threaded):
    _, out = threaded
    with rasterio.open(out / "travel_min.tif") as ds:
        t = ds.read(1)
        assert ds.width > 64 and ds.height > 64  # 48-cell chunks: at least 2 x 2 tiles
    assert np.isfinite(t).mean() > 0.5 and np.nanmin(t) == 0.0  # zero at the county seats


def test_local_cluster_two_workers_bit_identical(threaded, tmp_path):
    cfg, ref = threaded
    out = tmp_path / "lc"
    assert main(["run", str(cfg), *ARGS, "--scheduler", "local_cluster", "--workers", "2",
                 "--output-dir", str(out)]) == 0
    props = _same_rasters(ref, out)
    assert props["suitability:compute"]["kind"] == "local_cluster" and props["suitability:compute"]["workers"] == 2
    assert not [p for p in out.iterdir() if ".tmp" in p.name]


@pytest.mark.slow
def test_processes_bit_identical(threaded, tmp_path):
    cfg, ref = threaded
    out = tmp_path / "proc"
    assert main(["run", str(cfg), *ARGS, "--scheduler", "processes", "--workers", "2",
                 "--output-dir", str(out)]) == 0
    assert _same_rasters(ref, out)["suitability:compute"]["kind"] == "processes"


@pytest.mark.slow
def test_processes_small_batches_bit_identical(threaded, tmp_path, monkeypatch):
    """Several client-side write batches (as for a big grid) give the same bytes as one."""
    import rasters.io

    monkeypatch.setattr(rasters.io, "BATCH_BYTES", 3 * 48 * 48 * 4)
    cfg, ref = threaded
    out = tmp_path / "proc_batches"
    assert main(["run", str(cfg), *ARGS, "--scheduler", "processes", "--workers", "2",
                 "--output-dir", str(out)]) == 0
    _same_rasters(ref, out)


def test_scheduler_options():
    assert cli_overrides("tcp://10.0.0.1:8786", 4) == ["compute.scheduler=address", "compute.address=tcp://10.0.0.1:8786",
                                                       "compute.workers=4"]
    with pytest.raises(ConfigError, match="did you mean 'processes'"):
        cli_overrides("proceses", None)
    with pytest.raises(ValueError, match="needs 'address"):
        ComputeSpec(scheduler="address")


def test_unreachable_address_is_one_line(threaded, tmp_path, capsys, monkeypatch):
    import pipelines.compute

    monkeypatch.setattr(pipelines.compute, "CONNECT_TIMEOUT", "1s")
    cfg, _ = threaded
    out = tmp_path / "none"
    code = main(["run", str(cfg), *ARGS, "--scheduler", "tcp://127.0.0.1:9", "--output-dir", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cannot reach the scheduler at tcp://127.0.0.1:9" in err and err.count("\n") == 0
    assert not out.exists()


def test_local_cluster_console_shows_no_routine_shuffle_warnings():
    """A p2p rechunk on the run's LocalCluster (the exact-distance strips of a province take one) is routine:
    distributed logs its start and end at WARNING, which the run keeps off the console; the values are right.
    So is a graph of more than 10 MB carrying data its tasks need (the final travel-time pass carries the tiles'
    halos: 11 MiB at 90 m), which distributed warns about. In a subprocess, so the console is the real stderr
    (distributed's log handler holds the stream it was imported with)."""
    import subprocess
    import sys

    code = (
        "import dask.array as da\n"
        "from pipelines.compute import scheduler, ComputeSpec\n"
        "with scheduler(ComputeSpec(scheduler='local_cluster', workers=2, dashboard=False)):\n"
        "    a = da.arange(400 * 400, chunks=400 * 10).reshape(400, 400).rechunk((400, 10))\n"
        "    print(int(a.rechunk((10, 400), method='p2p').sum().compute()))\n"
        "    import dask, numpy as np\n"
        "    print(int(dask.delayed(np.sum)(np.ones(2_000_000, dtype=np.int64)).compute()))\n"  # a 16 MB graph
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=str(Path(__file__).resolve().parent.parent))
    assert done.returncode == 0, done.stderr
    assert [int(v) for v in done.stdout.split()] == [sum(range(400 * 400)), 2_000_000]
    assert "Shuffle" not in done.stderr, done.stderr
    assert "large graph" not in done.stderr, done.stderr


def test_existing_cluster_is_left_without_the_runs_tile_states():
    """On a long-lived cluster (scheduler: address) the travel-time rounds leave tile states in the workers' stores;
    a tile's final pass frees its state only on the worker that runs it. When the run's scheduler context ends,
    every worker is asked to drop the states of the runs started in it: none is left (before: held until the idle
    timeout, up to rasters.cost.TILE_STATE_BUDGET_BYTES per worker)."""
    import dask.array as da
    import distributed

    from rasters.cost import travel_time

    def held() -> int:
        from rasters import cost

        return cost._STATES.nbytes

    rng = np.random.default_rng(5)
    f = rng.uniform(0.002, 0.05, (70, 53))
    with (distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
          as cluster, distributed.Client(cluster, set_as_default=False) as probe):
        with scheduler(ComputeSpec(scheduler="address", address=cluster.scheduler_address), echo=lambda s: None):
            res = travel_time(da.from_array(f, chunks=(17, 13)), [(3, 4), (60, 40)], cell_size_m=1.0)
            assert res.rounds > 1
            # the rounds ran; the outputs, whose final pass would free the states, are never computed here
            assert sum(probe.run(held).values()) > 0
        assert set(probe.run(held).values()) == {0}
