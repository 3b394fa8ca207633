"""Which Dask scheduler a run uses: local threads (default), local processes, a ``dask.distributed``
LocalCluster, or an existing scheduler at an address. The ``compute:`` config block and the ``--scheduler`` /
``--workers`` options of ``run`` and ``rerun``.

Every graph the pipeline builds carries paths, windows and plain parameters (never open datasets), so the same
graph runs on all of them; only the GeoTIFF writer needs to know (a dataset open in the client cannot be
written by another process), and it asks :func:`rasters.io.scheduler_kind`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import dask
from pydantic import Field, model_validator

from rasters.errors import ConfigError

from .base import Strict

SCHEDULERS = ("threads", "processes", "local_cluster", "address")
#: how long to keep trying to reach an existing scheduler
CONNECT_TIMEOUT = "20s"
#: Called with the ``distributed.Client`` right after a run connects to its LocalCluster or scheduler address,
#: before any graph is submitted. Empty in normal use; a seam for tools and tests that watch or disturb a run
#: from inside the scheduler (the worker-fault tests register a scheduler plugin that kills a worker mid-run).
client_hooks: list[Callable[[Any], None]] = []


class ComputeSpec(Strict):
    """Where the graph runs. The results are bit-identical on every scheduler."""

    scheduler: Literal["threads", "processes", "local_cluster", "address"] = Field(
        "threads", description="threads (default, one process), processes (local process pool), local_cluster "
        "(a dask.distributed LocalCluster with a dashboard), or address (an existing scheduler, see 'address')"
    )
    address: str | None = Field(None, description="scheduler address for scheduler: address, e.g. tcp://host:8786")
    workers: int | None = Field(None, ge=1, description="threads, processes or LocalCluster workers (default: "
                                "one per CPU core; LocalCluster: distributed's own choice)")
    threads_per_worker: int | None = Field(None, ge=1, description="local_cluster: threads in each worker process")
    memory_limit: str | None = Field(None, description="local_cluster: memory per worker, e.g. '4GB' (default: "
                                     "the machine's memory shared among the workers)")
    dashboard: bool = Field(True, description="local_cluster: serve the diagnostics dashboard (link printed)")

    @model_validator(mode="after")
    def _address(self) -> ComputeSpec:
        if self.scheduler == "address" and not self.address:
            raise ValueError("scheduler 'address' needs 'address: tcp://host:8786'")
        if self.address and self.scheduler != "address":
            raise ValueError(f"'address' is only used with scheduler: address (scheduler is '{self.scheduler}')")
        if self.address and "://" not in self.address:
            raise ValueError(f"address '{self.address}' should look like tcp://host:8786")
        return self


@dataclass(frozen=True)
class SchedulerInfo:
    """What a run was computed on, for run.json and the console."""

    kind: str
    workers: int | None
    dashboard: str | None = None
    address: str | None = None

    def as_record(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def _distributed():
    try:
        import distributed
    except ImportError:  # pragma: no cover - a dependency; a broken install says so in one line
        raise ConfigError("compute.scheduler needs the 'distributed' package (pip install distributed)") from None
    return distributed


@contextmanager
def scheduler(spec: ComputeSpec | None = None, echo: Callable[[str], None] | None = None) -> Iterator[SchedulerInfo]:
    """Make ``spec``'s scheduler the default for every ``dask.compute`` inside the block; close what it started.

    ``echo`` receives one line with the dashboard link (LocalCluster or an address); default: stderr.
    """
    spec = spec or ComputeSpec()
    echo = echo or (lambda s: print(s, file=sys.stderr))
    if spec.scheduler == "threads":
        opts = {"scheduler": "threads"}
        if spec.workers:
            opts["num_workers"] = spec.workers
        with dask.config.set(opts):
            yield SchedulerInfo("threads", spec.workers or dask.system.CPU_COUNT)
        return
    if spec.scheduler == "processes":
        # One pool for the whole run: dask would otherwise spawn (and import numpy, GDAL, numba in) a fresh
        # pool for every compute call, and a run makes several.
        n = spec.workers or dask.system.CPU_COUNT
        from dask.multiprocessing import get_context

        pool = ProcessPoolExecutor(n, mp_context=get_context())
        try:
            with dask.config.set(scheduler="processes", pool=pool, num_workers=n):
                yield SchedulerInfo("processes", n)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return
    distributed = _distributed()
    if spec.scheduler == "local_cluster":
        # distributed logs every worker start and stop at INFO; a run's console shows only the dashboard link.
        logging.getLogger("distributed").setLevel(logging.WARNING)
        # ... and the start and end of every p2p rechunk at WARNING (routine: the exact-distance strips of a
        # province-sized grid take one); a failed shuffle still fails the run with its own message.
        logging.getLogger("distributed.shuffle._scheduler_plugin").setLevel(logging.ERROR)
        kw = {"processes": True, "dashboard_address": ":0" if spec.dashboard else None,
              "silence_logs": logging.WARNING}
        if spec.workers:
            kw["n_workers"] = spec.workers
        if spec.threads_per_worker:
            kw["threads_per_worker"] = spec.threads_per_worker
        if spec.memory_limit:
            kw["memory_limit"] = spec.memory_limit
        try:
            cluster = distributed.LocalCluster(**kw)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"compute: cannot start a LocalCluster ({e})") from None
        try:
            with distributed.Client(cluster, set_as_default=True) as client, dask.config.set(_QUIET_GRAPHS):
                info = SchedulerInfo("local_cluster", len(cluster.workers), _link(client), cluster.scheduler_address)
                for hook in client_hooks:
                    hook(client)
                if info.dashboard:
                    echo(f"dask dashboard: {info.dashboard}")
                yield info
        finally:
            cluster.close()
        return
    try:
        client = distributed.Client(spec.address, set_as_default=True, timeout=CONNECT_TIMEOUT)
    except OSError as e:
        raise ConfigError(f"compute.address: cannot reach the scheduler at {spec.address} ({e})") from None
    try:
        n = len(client.scheduler_info().get("workers", {}))
        info = SchedulerInfo("address", n, _link(client), spec.address)
        for hook in client_hooks:
            hook(client)
        echo(f"dask scheduler {spec.address}: {n} workers" + (f"; dashboard: {info.dashboard}" if info.dashboard
                                                                else ""))
        with dask.config.set(_QUIET_GRAPHS):
            yield info
    finally:
        _release_tile_states(client)
        client.close()


def _release_tile_states(client) -> None:
    """Free the travel-time tile states this run left on the workers of a long-lived cluster (a LocalCluster's
    workers end with it). A tile's state is freed by its final pass only on the worker that runs that pass; the
    others kept theirs until ``rasters.cost.TILE_STATE_IDLE_S`` passed and another run stored a state."""
    from rasters.cost import release_tile_states, take_run_tokens

    tokens = take_run_tokens()
    if tokens:
        try:
            client.run(release_tile_states, tokens, on_error="ignore")
        except Exception:  # noqa: BLE001 - a lost scheduler: nothing to free, and the run's outcome stands
            pass


# distributed warns above 10 MB of graph. The final travel-time pass carries each tile's converged halo strips in
# its tasks (about 11 MiB at 90 m, 100 MiB at 30 m): data the tasks need, not a graph built by mistake, so the
# console of a cluster run stays quiet up to this size.
_QUIET_GRAPHS = {"distributed.admin.large-graph-warning-threshold": "512MB"}


def _link(client) -> str | None:
    try:
        return client.dashboard_link or None
    except Exception:  # noqa: BLE001 - no dashboard (bokeh missing or disabled) is not an error
        return None


def cli_overrides(scheduler_name: str | None, workers: int | None) -> list[str]:
    """``--scheduler``/``--workers`` as ``--set`` overrides of the compute block. A value that is not a
    scheduler name is taken as an address (``--scheduler tcp://host:8786``)."""
    out: list[str] = []
    if scheduler_name:
        if "://" in scheduler_name:
            out += ["compute.scheduler=address", f"compute.address={scheduler_name}"]
        elif scheduler_name in SCHEDULERS:
            out.append(f"compute.scheduler={scheduler_name}")
        else:
            from rasters.errors import did_you_mean

            raise ConfigError(f"--scheduler {scheduler_name!r}: not one of {', '.join(SCHEDULERS[:3])} or a "
                              f"tcp:// address{did_you_mean(scheduler_name, SCHEDULERS)}")
    if workers is not None:
        out.append(f"compute.workers={workers}")
    return out
