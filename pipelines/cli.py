"""The ``suitability`` command line: parses arguments and reports; all work happens in the library.

Exit codes: 0 ok, 1 runtime failure, 2 config or usage error, 3 bad input data, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path

from rasterio.errors import NotGeoreferencedWarning

from rasters.errors import SuitabilityError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own usage errors: one line, exit 2
        self.print_usage(sys.stderr)
        print(f"suitability: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="suitability",
        description="Land-use and settlement suitability analysis from a YAML config. "
        "Exit codes: 0 ok, 1 runtime failure, 2 config/usage error, 3 bad input data, 130 interrupted.",
    )
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("config", type=Path, help="YAML config file")
        sp.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set grid.resolution_m=5000 (repeatable)")
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks")

    def with_compute(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--scheduler", metavar="NAME",
                        help="threads (default), processes, local_cluster, or a scheduler address tcp://host:8786 "
                             "(overrides the config's compute block)")
        sp.add_argument("--workers", type=int, metavar="N", help="number of workers (threads, processes or "
                        "LocalCluster worker processes)")
        sp.add_argument("--no-cache", action="store_true", help="neither read nor write the derived-layer cache")

    v = sub.add_parser("validate", help="check a config and its inputs without reading any pixel")
    with_config(v)
    v.add_argument("--deep", action="store_true",
                   help="also read every block of every raster input and every feature of every vector input, "
                        "and name the file and window of the first bad block")
    r = sub.add_parser("run", help="run a config and write its outputs")
    with_config(r)
    with_compute(r)
    r.add_argument("--dry-run", action="store_true",
                   help="print the grid, inputs, layer DAG, chunking, memory estimate and outputs; compute nothing")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    r.add_argument("--output-dir", type=Path, help="write outputs here instead of the config's outputs.folder")
    r.add_argument("--json", action="store_true", help="print progress and results as JSON lines (for wrappers)")
    rr = sub.add_parser("rerun", help="run again exactly what a run.json recorded (inputs checked by SHA-256)")
    rr.add_argument("run_json", type=Path, help="run.json of an earlier run")
    rr.add_argument("--output-dir", type=Path, help="write here instead of the recorded output folder")
    rr.add_argument("--allow-changed-inputs", action="store_true", help="rerun even if an input's checksum differs")
    rr.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    rr.add_argument("--json", action="store_true", help="print progress and results as JSON lines")
    rr.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks")
    with_compute(rr)
    c = sub.add_parser("cache", help="manage the cache of derived layers, criterion scores and exclusion masks")
    c.add_argument("action", choices=["clear", "info"], help="clear: delete every cache entry; info: where and "
                   "how much")
    c.add_argument("config", type=Path, nargs="?", help="use this config's cache folder (default: the default "
                   "folder, $SUITABILITY_CACHE_DIR or ~/.cache/suitability)")
    c.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    d = sub.add_parser("diff", help="what changed between two runs (config, inputs, versions, outputs)")
    d.add_argument("run_a", type=Path)
    d.add_argument("run_b", type=Path)
    d.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    s = sub.add_parser("schema", help="print the config JSON Schema (for editors)")
    s.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    # GDAL's in-memory targets carry their transform separately; warnings.catch_warnings is not thread-safe,
    # so the library's own suppression can leak from dask threads.
    warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        print("suitability: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as e:
        if (cluster := _cluster_failure(e)) is not None:  # distributed's CommClosedError is an OSError
            return _report(args, f"suitability: error: {cluster}")
        # A full disk, a vanished network share, permissions: not a bug, and every output is written atomically,
        # so the previous outputs are intact.
        if args.debug:
            traceback.print_exc()
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        print(f"suitability: error: cannot write or read a file{where}: {e.strerror or e}; previous outputs "
              "are unchanged", file=sys.stderr)
        return EXIT_FAILURE
    except SuitabilityError as e:
        if args.debug:
            traceback.print_exc()
        print(f"suitability: error: {e}", file=sys.stderr)
        return e.exit_code
    except Exception as e:  # noqa: BLE001 - the last line of defence: one line unless --debug
        if (cluster := _cluster_failure(e)) is not None:
            return _report(args, f"suitability: error: {cluster}")
        if args.debug:
            traceback.print_exc()
        else:
            print(f"suitability: internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)",
                  file=sys.stderr)
        return EXIT_FAILURE


def _report(args: argparse.Namespace, line: str) -> int:
    if args.debug:
        traceback.print_exc()
    print(line, file=sys.stderr)
    return EXIT_FAILURE


#: how a failed dask.distributed run ends, for every message of _cluster_failure
_CLUSTER_STOPPED = "the run stopped; outputs not yet finished keep their previous version (each is replaced only " \
    "when complete, run.json last)"


def _cluster_failure(e: BaseException) -> str | None:
    """One line for a run that a ``dask.distributed`` cluster could not finish (exit 1): a task whose workers
    all died (``KilledWorker``: more than ``distributed.scheduler.allowed-failures`` deaths; fewer are retried
    by the scheduler and never reach here), the scheduler gone (``CommClosedError``) or the computation cancelled
    by it. None for any other error. Matched by class name so that runs without distributed never import it."""
    mod, name = type(e).__module__, type(e).__name__
    if not mod.startswith("distributed."):
        return None
    if name == "KilledWorker":
        worker = getattr(getattr(e, "last_worker", None), "address", "?")
        n = getattr(e, "allowed_failures", 0) + 1
        return (f"a Dask worker process died while running task {getattr(e, 'task', '?')!r} ({n} worker"
                f"{'s' if n != 1 else ''} died running it, the last {worker}; distributed.scheduler.allowed-failures "
                f"is {n - 1}): killed from outside or out of memory? see the worker logs; lower compute.workers or "
                f"raise compute.memory_limit; {_CLUSTER_STOPPED}")
    first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "no detail")
    if name == "CommClosedError":
        return f"lost the connection to the Dask scheduler or a worker ({first}); {_CLUSTER_STOPPED}"
    if name in ("FutureCancelledError", "FuturesCancelledError"):
        return f"the Dask scheduler cancelled the computation ({first}); {_CLUSTER_STOPPED}"
    return None


def _dispatch(args: argparse.Namespace) -> int:
    from . import config as cfgmod

    if args.command == "schema":
        print(json.dumps(cfgmod.json_schema(), indent=2, ensure_ascii=False))
        return EXIT_OK
    if args.command == "diff":
        from .provenance import diff_records, load_record

        lines = diff_records(load_record(args.run_a), load_record(args.run_b))
        print("\n".join(lines) if lines else "no differences in config, inputs, versions, weights or outputs")
        return EXIT_OK

    if args.command == "cache":
        return _cache_command(args)

    overrides = list(getattr(args, "overrides", []))
    if getattr(args, "scheduler", None) or getattr(args, "workers", None) is not None:
        from .compute import cli_overrides

        overrides += cli_overrides(args.scheduler, args.workers)
    if getattr(args, "no_cache", False):
        overrides.append("cache.enabled=false")
    if getattr(args, "output_dir", None) is not None:
        overrides.append(f"outputs.folder={json.dumps(str(args.output_dir.resolve()))}")
    if args.command == "rerun":
        loaded = _rerun_config(args, overrides)
    else:
        loaded = cfgmod.load(args.config, overrides)

    from .plan import build_plan
    from .run import build, progress

    plan = build_plan(loaded)
    if args.command == "validate" or getattr(args, "dry_run", False):
        built = build(plan, dry_run=True)
        if args.command == "validate":
            if args.deep:
                _deep_check(plan, built)
            print(f"{args.config}: ok ({len(plan.nodes)} inputs and layers, {len(plan.config.criteria)} criteria; "
                  f"grid {built.grid.describe()})" + ("; every block and feature read" if args.deep else ""))
            return EXIT_OK
        _print_dry_run(built)
        return EXIT_OK
    from .compute import scheduler
    from .publish import run_and_publish

    events = _JsonEvents() if args.json else None
    echo = (lambda s: None) if args.quiet else None
    from .input_policy import inputs_named

    # inputs_named: a block read failing inside a task (fitting, cached layers, the write) names its input's key.
    show = not (args.quiet or args.json)
    with scheduler(loaded.config.compute, echo=echo) as info, inputs_named(loaded):
        # Layers computed into the cache (terrain, distances, each travel-time round, criterion scores) are
        # passes of their own before the outputs' pass: each longer than a second gets its own bar.
        with progress(show, events):
            built = build(plan)
        built.compute = info.as_record()
        record = run_and_publish(built, show_progress=show, events=events)
    assets = {k: v for k, v in record["assets"].items() if "raster:bands" in v}
    warnings_ = record["properties"]["suitability:warnings"]
    if args.json:
        events.emit("done", folder=str(loaded.output_folder), outputs=[a["href"] for a in assets.values()],
                    warnings=warnings_)
    elif not args.quiet:
        print(f"wrote {len(assets)} rasters, project.qgs and run.json to {loaded.output_folder}")
        for key, a in assets.items():
            st = a["raster:bands"][0].get("statistics")
            rng = (f"{st['minimum']:.4g}..{st['maximum']:.4g}, {st['valid_percent']:.1f}% valid" if st
                   else "no valid cells")
            print(f"  {key}: {rng}")
    if not args.json:
        for w in warnings_:
            print(f"warning: {w}", file=sys.stderr)
    return EXIT_OK


def _cache_command(args: argparse.Namespace) -> int:
    from .cache import cache_folder, clear, default_folder

    if args.config is not None:
        from . import config as cfgmod

        folder = cache_folder(cfgmod.load(args.config))
    else:
        folder = default_folder()
    if args.action == "clear":
        n = clear(folder)
        print(f"removed {n} cache entr{'ies' if n != 1 else 'y'} from {folder}")
    else:
        files = list(folder.glob("??/*.tif")) if folder.is_dir() else []
        size = sum(f.stat().st_size for f in files)
        print(f"{folder}: {len(files)} cache entries (layers, criterion scores, exclusion masks), "
              f"{size / 2**20:.1f} MiB")
    return EXIT_OK


def _deep_check(plan, built) -> None:
    """Read every block of every raster input and every feature of every vector input (validate --deep)."""
    from rasters.deep_check import check_raster
    from rasters.errors import InputDataError
    from vectors.deep_check import check_vector

    from .config import RasterInput

    loaded = plan.loaded
    for name, inp in plan.config.inputs.items():
        try:
            if isinstance(inp, RasterInput):
                check_raster(loaded.resolve(inp.raster), band=inp.band)
            else:
                check_vector(loaded.resolve(inp.vector), layer=inp.layer)
        except InputDataError as e:
            raise InputDataError(f"{loaded.path}: inputs.{name}: {e}") from None


def _rerun_config(args: argparse.Namespace, overrides: list[str]):
    """The config recorded in run.json, with its inputs checked against the recorded checksums."""
    from . import config as cfgmod
    from .provenance import load_record, rerun_config
    from .run import sha256_file

    rec = load_record(args.run_json)
    raw = rerun_config(rec)
    for item in overrides:
        key, _, value = item.partition("=")
        cfgmod._set_dotted(raw, key.strip(), __import__("yaml").safe_load(value))
    loaded = cfgmod.parse(raw, Path(args.run_json))
    for name, inp in rec["properties"]["suitability:inputs"].items():
        want, p = inp.get("sha256"), Path(inp["path"])
        if want and p.is_file() and sha256_file(p) != want and not args.allow_changed_inputs:
            from rasters.errors import InputDataError

            raise InputDataError(f"{args.run_json}: input '{name}' ({p}) changed since the run (SHA-256 differs); "
                                 "pass --allow-changed-inputs to rerun anyway")
    return loaded


class _JsonEvents:
    """One JSON object per line on stdout, for tools that wrap the CLI."""

    def emit(self, event: str, **fields) -> None:
        print(json.dumps({"event": event, **fields}, ensure_ascii=False), flush=True)


def _print_dry_run(built) -> None:
    from .config import RasterInput
    from .publish import planned_outputs
    from .run import memory_estimate_bytes

    plan, grid = built.plan, built.grid
    cfg = plan.config
    print(f"config: {plan.loaded.path}  (sha256 {plan.loaded.sha256()[:16]}...)")
    print(f"grid:   {grid.describe()}")
    nchunks = len(grid.chunks[0]) * len(grid.chunks[1])
    print(f"chunks: {nchunks} of at most {grid.chunk_size} x {grid.chunk_size} cells")
    print("inputs:")
    for name, inp in cfg.inputs.items():
        if isinstance(inp, RasterInput):
            print(f"  {name}: raster {plan.loaded.resolve(inp.raster)} (resampling {inp.resampling})")
        else:
            n = len(built.vectors.get(name, []))
            print(f"  {name}: vector {plan.loaded.resolve(inp.vector)} layer={inp.layer or '(only)'}, {n} features")
    print("layers (in dependency order):")
    for name in plan.order:
        nd = plan.nodes[name]
        if nd.kind not in ("raster", "vector"):
            print(f"  {name} = {nd.kind}({', '.join(nd.deps)})")
    print("criteria:")
    for cname, crit in cfg.criteria.items():
        params = ", ".join(f"{k}={v}" for k, v in crit.transform.params().items())
        print(f"  {cname}: {crit.transform.type}({crit.layer}; {params}) weight {built.weights[cname]:.4f}")
    for i, ex in enumerate(cfg.constraints.exclude):
        print(f"exclude[{i}]: " + (f"where {ex.where}" if ex.where else f"inside {ex.vector} (+{ex.buffer_m:g} m)"))
    est = memory_estimate_bytes(built)
    print(f"memory: about {est / 2**20:.0f} MiB peak (rough estimate)")
    print("outputs:")
    for o in planned_outputs(built):
        print(f"  {o.path}")
    print(f"  {plan.loaded.output_folder / 'run.json'}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
