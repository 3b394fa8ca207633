"""A worker process killed (SIGKILL) in the middle of a LocalCluster run with 2 nanny-managed workers.

With the default ``distributed.scheduler.allowed-failures`` the scheduler reruns the dead worker's tasks on the
other worker (the nanny starts a new process meanwhile) and the run completes with the same bytes as the threaded
run. With ``allowed-failures: 0`` the first death is final: the run exits 1 with one line naming the task and the
cause, and the output folder (holding an earlier run's outputs) is left exactly as it was, without temporary files.

The kill is made deterministic by a scheduler plugin (the scheduler of a LocalCluster runs in this process):
once the output writer has opened its temporary files (so the run is writing its outputs, with blocks still to
compute), at the ``KILL_AT``-th task the scheduler hands out, it SIGKILLs the process of the worker that task was
just given. That worker then holds at least one task it has not finished (it has not even received it), so the
run cannot end without the scheduler noticing the death; the plugin records the kill, the worker's removal and
the reruns, and the tests assert on them.

The same two cases are then run with the kill landing in the travel-time layer's border-exchange rounds
(``rasters.cost._travel_time_tiled``: each round is one ``dask.compute`` of ``_tile_task`` tasks, issued by the
client while the layers are built, before any output file is opened), recognised by the tile tasks' key names;
with the layer cache off, and on in a fresh folder, where the failed run must leave no travel-time entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
from pathlib import Path

import dask
import pytest
from distributed.client import FutureCancelledError
from distributed.comm.core import CommClosedError
from distributed.diagnostics.plugin import SchedulerPlugin

import pipelines.cli
import pipelines.compute
import pipelines.layers
import rasters.cost
from pipelines.cli import main
from tests.test_schedulers import ARGS, _same_rasters, threaded  # noqa: F401 - threaded is the reference fixture

#: the task handed out while the outputs are being written at which the worker is killed (the write graph of this
#: demo has a few hundred tasks, so this is early in it)
KILL_AT = 30
LC = ["--scheduler", "local_cluster", "--workers", "2"]


class _KillWorker(SchedulerPlugin):
    """SIGKILL the process of the worker a task was just given, at the first task :meth:`kill_point` picks; then
    record which tasks the death left unfinished and what became of them."""

    def __init__(self, scheduler):
        self.scheduler = scheduler
        self.killed: tuple[str, int] | None = None  # (worker address, process id)
        self.unfinished: set = set()  # tasks the worker held when killed, or was given before its death was seen
        self.killed_worker_errors: set = set()  # unfinished tasks failed with KilledWorker
        self.removed: list[str] = []
        self.redone: set = set()  # unfinished tasks later computed by another worker

    def kill_point(self, key) -> bool:
        """Whether to kill the worker just given ``key`` (asked for each task entering "processing")."""
        raise NotImplementedError

    def transition(self, key, start, finish, *args, **kwargs):
        if self.killed is not None:
            if finish == "processing" and self.killed[0] not in self.removed:
                ws = self.scheduler.tasks[key].processing_on
                if ws is not None and ws.address == self.killed[0]:
                    self.unfinished.add(key)
            elif finish == "memory" and key in self.unfinished and kwargs.get("worker") != self.killed[0]:
                self.redone.add(key)
            elif finish == "erred" and start == "processing" and kwargs.get("worker") == self.killed[0]:
                self.killed_worker_errors.add(key)
            return
        if finish != "processing" or not self.kill_point(key):
            return
        ws = self.scheduler.tasks[key].processing_on
        if ws.pid in (0, os.getpid()):  # never this process (a threads-only cluster); the test then fails
            return
        self.unfinished = {ts.key for ts in ws.processing}
        self.killed = (ws.address, ws.pid)
        os.kill(ws.pid, signal.SIGKILL)

    def remove_worker(self, scheduler, worker, *args, **kwargs):
        self.removed.append(worker)


class KillWorkerWhileWriting(_KillWorker):
    """SIGKILL the worker given the ``after``-th task scheduled once ``out`` holds the writer's temporary files."""

    name = "kill-worker-while-writing"

    def __init__(self, scheduler, out: Path, after: int = KILL_AT):
        super().__init__(scheduler)
        self.out, self.after = out, after
        self.scheduled_while_writing = 0
        self.writer_tmp: list[str] = []

    def kill_point(self, key) -> bool:
        if not self.scheduled_while_writing:
            tmp = [p.name for p in self.out.glob("*.tmp.tif")]
            if not tmp:
                return False
            self.writer_tmp = tmp
        self.scheduled_while_writing += 1
        return self.scheduled_while_writing >= self.after


def _register(monkeypatch, plugin_for) -> list:
    """Register ``plugin_for(scheduler)`` on the run's scheduler through pipelines.compute.client_hooks."""
    plugins: list = []

    def hook(client):
        sched = client.cluster.scheduler
        plugin = plugin_for(sched)

        async def add():  # on the scheduler's event loop, where its plugins are iterated
            sched.add_plugin(plugin)

        client.sync(add)
        plugins.append(plugin)

    monkeypatch.setattr(pipelines.compute, "client_hooks", [hook])
    return plugins


def _kill_while_writing(monkeypatch, out: Path) -> list[KillWorkerWhileWriting]:
    return _register(monkeypatch, lambda sched: KillWorkerWhileWriting(sched, out))


def _the_kill_happened_mid_run(k: KillWorkerWhileWriting) -> None:
    assert k.killed is not None, "no worker was killed: the run ended before the kill point"
    assert k.writer_tmp, "the kill did not land while the outputs were being written"
    assert k.unfinished, "the killed worker held no unfinished task"
    assert k.killed[0] in k.removed, "the scheduler did not see the worker die"


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def test_worker_killed_mid_run_is_retried_and_gives_the_same_bytes(threaded, tmp_path, monkeypatch):  # noqa: F811
    cfg, ref = threaded
    out = tmp_path / "lc"
    plugins = _kill_while_writing(monkeypatch, out)
    assert main(["run", str(cfg), *ARGS, *LC, "--output-dir", str(out)]) == 0
    (k,) = plugins
    _the_kill_happened_mid_run(k)
    assert k.redone == k.unfinished  # every task the dead worker held was rerun on another worker
    _same_rasters(ref, out)
    assert not [p for p in out.iterdir() if ".tmp" in p.name]


def test_killed_worker_beyond_allowed_failures_is_one_line_and_keeps_previous_outputs(
    threaded, tmp_path, monkeypatch, capsys  # noqa: F811
):
    cfg, ref = threaded
    out = tmp_path / "out"
    shutil.copytree(ref, out)  # an earlier successful run's outputs
    before = _snapshot(out)
    plugins = _kill_while_writing(monkeypatch, out)
    capsys.readouterr()
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):  # the first death of a task is final
        code = main(["run", str(cfg), *ARGS, *LC, "--output-dir", str(out)])
    (k,) = plugins
    _the_kill_happened_mid_run(k)
    _exit_1_one_line_naming_the_killed_task(code, capsys.readouterr().err, k)
    assert _snapshot(out) == before  # previous outputs byte for byte; no temporary or new file


def _exit_1_one_line_naming_the_killed_task(code: int, stderr: str, k: _KillWorker) -> None:
    err = stderr.strip().splitlines()
    assert code == 1, err
    assert k.killed_worker_errors and k.killed_worker_errors <= k.unfinished  # the kill made the KilledWorker
    line = [ln for ln in err if ln.startswith("suitability:")]
    assert len(line) == 1 and line == err[-1:], err  # one message, the last thing printed
    assert line[0].startswith("suitability: error: a Dask worker process died while running task "), err
    assert any(repr(key) in line[0] for key in k.killed_worker_errors), line[0]  # names the task
    assert k.killed[0] in line[0] and "allowed-failures is 0" in line[0]
    assert "Traceback" not in "\n".join(err)


# --- a worker killed during the travel-time layer's border-exchange rounds -------------------------------------
#: key prefix of the tasks of the tiled travel-time solver's rounds (each round computes its tile tasks directly,
#: so they keep their own keys; in the lazy final pass dask fuses them into the output blocks' tasks, whose keys
#: start otherwise, e.g. ``from-value-getitem-overlap-getitem-tile_task-concatenate-...``)
TILE_TASK = f"{rasters.cost._tile_task.__name__}-"
#: the round task handed out at which the worker is killed: the demo's travel time has 2 x 3 tiles and runs rounds
#: of 4, 6, 6 and 4 tile tasks, so the 7th is in round 2, after round 1 left tile states on the workers for the
#: incremental updates (the retried task finds none, or an older round's, and gives the same strips either way)
KILL_AT_TILE = 7


class TravelTimeWatch:
    """The travel-time solves of a run, seen from the client: ``running`` while :func:`rasters.cost.travel_time`
    runs its rounds (its arrays are returned lazy, so nothing of it runs on the cluster after it returns but
    the final pass, which is computed with the outputs or the cache entry)."""

    def __init__(self):
        self.running = False
        self.returned: list = []  # CostResult of each solve that finished its rounds
        self.raised: list[BaseException] = []


def _watch_travel_time(monkeypatch) -> TravelTimeWatch:
    watch = TravelTimeWatch()
    solve = pipelines.layers.travel_time

    def watched(*args, **kwargs):
        watch.running = True
        try:
            res = solve(*args, **kwargs)
        except BaseException as e:
            watch.raised.append(e)
            raise
        finally:
            watch.running = False
        watch.returned.append(res)
        return res

    monkeypatch.setattr(pipelines.layers, "travel_time", watched)
    return watch


class KillWorkerInTravelTimeRounds(_KillWorker):
    """SIGKILL the worker given the ``after``-th travel-time tile task (recognised by its key); record whether the
    client was inside the rounds then."""

    name = "kill-worker-in-travel-time-rounds"

    def __init__(self, scheduler, watch: TravelTimeWatch, after: int = KILL_AT_TILE):
        super().__init__(scheduler)
        self.watch, self.after = watch, after
        self.tile_tasks = 0
        self.in_rounds: bool | None = None  # the client was running the rounds when the kill landed

    def kill_point(self, key) -> bool:
        if not str(key).startswith(TILE_TASK):
            return False
        self.tile_tasks += 1
        if self.tile_tasks < self.after:
            return False
        self.in_rounds = self.watch.running
        return True


def _kill_in_rounds(monkeypatch) -> tuple[list[KillWorkerInTravelTimeRounds], TravelTimeWatch]:
    watch = _watch_travel_time(monkeypatch)
    return _register(monkeypatch, lambda sched: KillWorkerInTravelTimeRounds(sched, watch)), watch


def _the_kill_happened_in_the_rounds(k: KillWorkerInTravelTimeRounds) -> None:
    assert k.killed is not None, f"no worker was killed: the run scheduled only {k.tile_tasks} travel-time tasks"
    assert k.in_rounds, "the kill did not land while the travel-time rounds ran"
    assert k.unfinished, "the killed worker held no unfinished task"
    assert k.killed[0] in k.removed, "the scheduler did not see the worker die"


def _cache_args(cache: Path | None) -> list[str]:
    """ARGS with the layer cache off (None) or in ``cache``: a fresh folder, so the travel time is computed."""
    if cache is None:
        return ARGS
    return [a for a in ARGS if a != "--no-cache"] + ["--set", f"cache.folder={json.dumps(str(cache))}"]


def _cache_entries(cache: Path) -> dict[str, str]:
    """Complete cache entries (a manifest naming a GeoTIFF of the size it records): layer name by key. Fails on
    anything else in the folder: a temporary file, a GeoTIFF without its manifest or of the wrong size."""
    if not cache.exists():
        return {}
    files = [p for p in cache.rglob("*") if p.is_file()]
    assert not [p.name for p in files if ".tmp" in p.name or p.name.startswith(".")], files
    entries = {}
    for man in cache.glob("??/*.json"):
        m = json.loads(man.read_text(encoding="utf-8"))
        tif = man.with_suffix(".tif")
        assert m["key"] == man.stem and tif.stat().st_size == m["size"], man
        entries[man.stem] = m["name"]
    rest = {p.name for p in files} - {f"{key}{ext}" for key in entries for ext in (".json", ".tif")} - {"files.json"}
    assert not rest, f"cache files that are no complete entry: {sorted(rest)}"
    return entries


@pytest.mark.parametrize("cached", [False, True], ids=["no-cache", "fresh-cache"])
def test_worker_killed_in_travel_time_rounds_is_retried_and_gives_the_same_bytes(
    threaded, tmp_path, monkeypatch, cached  # noqa: F811
):
    cfg, ref = threaded
    out = tmp_path / "lc"
    cache = tmp_path / "cache" if cached else None
    plugins, watch = _kill_in_rounds(monkeypatch)
    assert main(["run", str(cfg), *_cache_args(cache), *LC, "--output-dir", str(out)]) == 0
    (k,) = plugins
    _the_kill_happened_in_the_rounds(k)
    assert len(watch.returned) == 1 and not watch.raised  # the rounds went on to converge after the kill
    assert k.redone == k.unfinished  # every task the dead worker held was rerun on another worker
    _same_rasters(ref, out)  # travel_min.tif included: the retried tiles give the same minutes
    assert not [p for p in out.iterdir() if ".tmp" in p.name]
    if cached:
        assert "travel_min" in _cache_entries(cache).values()


@pytest.mark.parametrize("cached", [False, True], ids=["no-cache", "fresh-cache"])
def test_killed_worker_in_travel_time_rounds_beyond_allowed_failures_is_one_line_and_leaves_nothing(
    threaded, tmp_path, monkeypatch, capsys, cached  # noqa: F811
):
    """The failure comes out of a round's dask.compute while the layers are built: no output has been opened yet
    and the travel time's cache entry not begun; the layers cached before it stay complete, usable entries."""
    cfg, ref = threaded
    out = tmp_path / "out"
    shutil.copytree(ref, out)  # an earlier successful run's outputs
    before = _snapshot(out)
    cache = tmp_path / "cache" if cached else None
    plugins, watch = _kill_in_rounds(monkeypatch)
    capsys.readouterr()
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):  # the first death of a task is final
        code = main(["run", str(cfg), *_cache_args(cache), *LC, "--output-dir", str(out)])
    (k,) = plugins
    _the_kill_happened_in_the_rounds(k)
    assert not watch.returned and [type(e).__name__ for e in watch.raised] == ["KilledWorker"]  # from a round
    _exit_1_one_line_naming_the_killed_task(code, capsys.readouterr().err, k)
    assert _snapshot(out) == before  # previous outputs byte for byte; no temporary or new file
    if cached:
        left = _cache_entries(cache)
        assert "travel_min" not in left.values()  # no entry, complete or partial, for the layer that failed
        assert "friction_min_per_m" in left.values()  # built before the rounds began: a complete entry, reusable


@pytest.mark.parametrize(("error", "says"), [
    (CommClosedError("in <TCP (closed) Scheduler connection>: Stream is closed"),
     "lost the connection to the Dask scheduler or a worker (in <TCP (closed) Scheduler connection>: Stream is"),
    (FutureCancelledError(("getitem-abc", 0, 1), "scheduler-connection-lost", "Client lost the connection\nto it"),
     "the Dask scheduler cancelled the computation (('getitem-abc', 0, 1) cancelled for reason: scheduler-"),
])
def test_other_cluster_failures_are_one_line_exit_1(error, says, monkeypatch, capsys):
    """CommClosedError is an OSError: it must not be reported as a file that cannot be written."""
    def fail(args):
        raise error

    monkeypatch.setattr(pipelines.cli, "_dispatch", fail)
    assert main(["run", "any.yaml"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"suitability: error: {says}"), err
    assert "outputs not yet finished keep their previous version" in err and "cannot write" not in err
