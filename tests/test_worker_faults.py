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
"""

from __future__ import annotations

import hashlib
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
from pipelines.cli import main
from tests.test_schedulers import ARGS, _same_rasters, threaded  # noqa: F401 - threaded is the reference fixture

#: the task handed out while the outputs are being written at which the worker is killed (the write graph of this
#: demo has a few hundred tasks, so this is early in it)
KILL_AT = 30
LC = ["--scheduler", "local_cluster", "--workers", "2"]


class KillWorkerWhileWriting(SchedulerPlugin):
    """SIGKILL the worker given the ``after``-th task scheduled once ``out`` holds the writer's temporary files."""

    name = "kill-worker-while-writing"

    def __init__(self, scheduler, out: Path, after: int = KILL_AT):
        self.scheduler, self.out, self.after = scheduler, out, after
        self.scheduled_while_writing = 0
        self.killed: tuple[str, int] | None = None  # (worker address, process id)
        self.unfinished: set = set()  # tasks the worker held when killed, or was given before its death was seen
        self.killed_worker_errors: set = set()  # unfinished tasks failed with KilledWorker
        self.writer_tmp: list[str] = []
        self.removed: list[str] = []
        self.redone: set = set()  # unfinished tasks later computed by another worker

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
        if finish != "processing":
            return
        if not self.scheduled_while_writing:
            tmp = [p.name for p in self.out.glob("*.tmp.tif")]
            if not tmp:
                return
            self.writer_tmp = tmp
        self.scheduled_while_writing += 1
        if self.scheduled_while_writing < self.after:
            return
        ws = self.scheduler.tasks[key].processing_on
        if ws.pid in (0, os.getpid()):  # never this process (a threads-only cluster); the test then fails
            return
        self.unfinished = {ts.key for ts in ws.processing}
        self.killed = (ws.address, ws.pid)
        os.kill(ws.pid, signal.SIGKILL)

    def remove_worker(self, scheduler, worker, *args, **kwargs):
        self.removed.append(worker)


def _kill_while_writing(monkeypatch, out: Path) -> list[KillWorkerWhileWriting]:
    """Register the plugin on the run's scheduler through pipelines.compute.client_hooks."""
    plugins: list[KillWorkerWhileWriting] = []

    def hook(client):
        sched = client.cluster.scheduler
        plugin = KillWorkerWhileWriting(sched, out)

        async def add():  # on the scheduler's event loop, where its plugins are iterated
            sched.add_plugin(plugin)

        client.sync(add)
        plugins.append(plugin)

    monkeypatch.setattr(pipelines.compute, "client_hooks", [hook])
    return plugins


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
    err = capsys.readouterr().err.strip().splitlines()
    (k,) = plugins
    _the_kill_happened_mid_run(k)
    assert code == 1, err
    assert k.killed_worker_errors and k.killed_worker_errors <= k.unfinished  # the kill made the KilledWorker
    line = [ln for ln in err if ln.startswith("suitability:")]
    assert len(line) == 1 and line == err[-1:], err  # one message, the last thing printed
    assert line[0].startswith("suitability: error: a Dask worker process died while running task "), err
    assert any(repr(key) in line[0] for key in k.killed_worker_errors), line[0]  # names the task
    assert k.killed[0] in line[0] and "allowed-failures is 0" in line[0]
    assert "Traceback" not in "\n".join(err)
    assert _snapshot(out) == before  # previous outputs byte for byte; no temporary or new file


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
