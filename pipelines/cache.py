"""On-disk cache of derived layers (the ``layers:`` entries that cost real work: slope, aspect, relief, distance,
friction, travel time), so a rerun that changes only a weight, a transform, a class break or an output does not
recompute terrain, distances or travel times; and of what does not depend on the weights: each criterion's score
(its transform applied to its layer) and the exclusion mask (every constraint and the outside of ``grid.mask``,
combined), so a rerun that changes only weights, the overlay or the classes reads finished scores and one mask.

Criterion key: the transform as applied (``as_record()``, fitted parameters included) and the key of its layer.
Exclusion key: the ``constraints.exclude`` entries, the study-area vector and the keys of every name they read.
Both include the grid, tool and format. A criterion entry's manifest also holds the valid cells of its layer, the
mask's those of the raster inputs its rules read, and a derived layer's those of the raster inputs it reads
(``source_valid_cells``), so a run that reads only the entry still warns about an input that is nodata everywhere.
The statistics a fitted transform needs (count, min, max, mean, std of a layer inside ``grid.mask``) are kept as
a manifest without a GeoTIFF (``stats:<layer>``), keyed by the layer's and the study area's keys.

Key: SHA-256 of a canonical JSON of the layer's type and parameters, the keys of what it reads (an input's key is
the SHA-256 of its file(s) plus band/resampling or layer/where and a declared ``towgs84``; a derived layer's key
is its own cache key), the grid (CRS, transform, shape; not the chunk size, which never changes a value) and the
tool and cache format versions. A change anywhere upstream changes every key downstream of it.

Entry: ``<folder>/<key[:2]>/<key>.tif`` (a tiled float32 GeoTIFF on the run's grid, or uint8 for the mask,
ZSTD level 1 without predictor for fast reading, ``rasters.io.FLOAT_PROFILE``; written atomically) and
``<key>.json`` (the manifest: name, units, the warnings the build emitted, the file's size), written only after
the GeoTIFF is complete. A GeoTIFF without its manifest (an interrupted run) is recomputed, never trusted.
Reading an entry is ``rasters.io.read(path, grid, "nearest")`` of a file on the same grid: exact, so a run from
the cache writes the same bytes as a run without it.

Folder: ``cache.folder`` in the config, else ``$SUITABILITY_CACHE_DIR``, else ``$XDG_CACHE_HOME/suitability``,
else ``~/.cache/suitability``. ``suitability cache clear`` empties it; ``--no-cache`` bypasses it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
from pydantic import Field

from rasters import io as rio
from rasters.atomic import write_json_atomic
from rasters.grid import Grid

from .base import Strict

log = logging.getLogger("suitability")

#: bumped when the entry layout or the meaning of a key changes
CACHE_FORMAT = 2
#: layer types worth caching (the others are cheap elementwise or burn-in steps)
CACHED_TYPES = frozenset({"slope", "aspect", "relief", "distance", "friction", "travel_time"})
_SIDECARS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx")


class CacheSpec(Strict):
    """The layer cache (see ``pipelines.cache``)."""

    enabled: bool = Field(True, description="reuse derived layers computed by earlier runs with the same inputs")
    folder: Path | None = Field(None, description="cache folder (default $SUITABILITY_CACHE_DIR or "
                                "~/.cache/suitability); relative to the config file")


def default_folder() -> Path:
    env = os.environ.get("SUITABILITY_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "suitability"


def cache_folder(loaded) -> Path:
    """The cache folder a loaded config uses."""
    spec = getattr(loaded.config, "cache", None)
    if spec is not None and spec.folder is not None:
        return loaded.resolve(spec.folder)
    return default_folder()


def clear(folder: Path) -> int:
    """Remove every cache entry under ``folder``; returns the number of entries removed."""
    if not folder.is_dir():
        return 0
    n = sum(1 for _ in folder.glob("??/*.json"))
    for sub in folder.iterdir():
        if sub.is_dir() and len(sub.name) == 2:
            shutil.rmtree(sub)
        elif sub.name == "files.json":
            sub.unlink()
    return n


def tool_version() -> str:
    try:
        return metadata.version("suitability")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def grid_identity(grid: Grid) -> dict:
    return {"crs": grid.crs, "transform": list(grid.transform)[:6], "width": grid.width, "height": grid.height}


class LayerCache:
    """The cache as one run sees it: keys of its nodes, lookups, stores, and a log of what happened."""

    def __init__(self, plan, grid: Grid, folder: Path | None, enabled: bool = True, writable: bool = True):
        self.plan, self.grid = plan, grid
        self.folder = folder
        self.enabled = enabled and folder is not None
        self.writable = writable
        self.log: dict[str, str] = {}
        self.source_valid: dict[str, dict[str, int]] = {}  # entry name -> {layer read: its valid cells}
        self._keys: dict[str, str | None] = {}
        self._files: dict[str, Any] | None = None

    @classmethod
    def for_plan(cls, plan, grid: Grid, dry_run: bool = False) -> LayerCache:
        spec = getattr(plan.config, "cache", None)
        enabled = spec is None or spec.enabled
        return cls(plan, grid, cache_folder(plan.loaded) if enabled else None, enabled, writable=not dry_run)

    # --- keys -------------------------------------------------------------------------------------------
    def _file_sha(self, path: Path) -> str:
        """SHA-256 of a file, remembered in ``files.json`` by (size, mtime) so big inputs are hashed once."""
        if self._files is None:
            try:
                self._files = json.loads((self.folder / "files.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self._files = {}
        st = path.stat()
        rec = self._files.get(str(path))
        if rec and rec.get("size") == st.st_size and rec.get("mtime_ns") == st.st_mtime_ns:
            return rec["sha256"]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        sha = h.hexdigest()
        self._files[str(path)] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha}
        if self.writable:
            try:
                write_json_atomic(self.folder / "files.json", self._files)
            except OSError:  # a read-only cache still works; it just hashes again next time
                pass
        return sha

    def _input_key(self, name: str) -> str | None:
        inp = self.plan.config.inputs[name]
        attr = "raster" if hasattr(inp, "raster") else "vector"
        path = self.plan.loaded.resolve(getattr(inp, attr))
        # /vsi paths and URLs (kept as str) and folders: no stable content hash, so no caching downstream
        if not isinstance(path, Path) or not path.is_file():
            return None
        files = [path] + ([path.with_suffix(s) for s in _SIDECARS if path.with_suffix(s).is_file()]
                          if path.suffix.lower() == ".shp" else [])
        params = inp.model_dump(mode="json")
        params.pop(attr)
        params.pop("label", None)
        for k in [k for k in params if k.startswith("allow_")]:
            params.pop(k)
        # A declared datum shift moves every value read (kept in the key); absent, the key is as before it existed.
        if params.get("towgs84") is None:
            params.pop("towgs84", None)
        return _digest({"input": attr, "files": [self._file_sha(f) for f in files], "params": params})

    def key(self, name: str) -> str | None:
        """Cache key of node ``name`` (None: not cacheable, e.g. it depends on a remote input)."""
        if name in self._keys:
            return self._keys[name]
        nodes = self.plan.nodes
        node = nodes[name]
        if node.kind in ("raster", "vector"):
            k = self._input_key(name)
        elif name in self.plan.config.layers:
            deps = {d: self.key(d) for d in node.deps}
            spec = self.plan.config.layers[name]
            k = None if any(v is None for v in deps.values()) else self._derived_key(
                layer=spec.model_dump(mode="json"), deps=deps)
        else:
            k = None
        self._keys[name] = k
        return k

    # --- entries ----------------------------------------------------------------------------------------
    def _paths(self, key: str) -> tuple[Path, Path]:
        d = self.folder / key[:2]
        return d / f"{key}.tif", d / f"{key}.json"

    def _manifest(self, key: str) -> dict | None:
        """The manifest written for ``key`` in this cache format, or None."""
        try:
            m = json.loads(self._paths(key)[1].read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return m if m.get("key") == key and m.get("format") == CACHE_FORMAT else None

    def _derived_key(self, **parts: Any) -> str:
        """Key of an entry computed on this grid by this tool and cache format from ``parts``."""
        return _digest({"format": CACHE_FORMAT, "tool": tool_version(), **parts, "grid": grid_identity(self.grid)})

    def lookup(self, key: str) -> dict | None:
        """The manifest of a complete entry, or None (absent, interrupted or damaged entries are misses)."""
        tif = self._paths(key)[0]
        m = self._manifest(key)
        if m is None:
            return None
        try:
            if tif.stat().st_size != m.get("size"):
                return None
        except OSError:
            return None
        return m

    def build(self, name: str, spec, ctx) -> tuple[da.Array, str]:
        """The layer ``name`` from the cache, or built by ``spec.build(ctx)`` and stored in the cache.

        Either way the array returned on a cacheable layer is a lazy read of the cache file, so a cold and a warm
        run compute everything downstream from the same bytes.
        """
        if not self.enabled or spec.type not in CACHED_TYPES:
            self.log[name] = "off" if not self.enabled else "not cached (cheap)"
            return spec.build(ctx)
        key = self.key(name)
        if key is None:
            self.log[name] = "not cached (an input has no file to hash)"
            return spec.build(ctx)
        # The raster inputs the layer reads: their valid cells go into the manifest, so a run that reads the entry
        # (and never the input, e.g. a DEM behind a cached slope) still warns about an input nodata everywhere.
        sources = {d: ctx.layers[d] for d in self.plan.nodes[name].deps
                   if self.plan.nodes[d].kind == "raster" and d in ctx.layers}
        m = self.lookup(key)
        if m is not None:
            ctx.warnings.extend(m.get("warnings", []))
            self.log[name] = f"hit {key[:16]}"
            self._note_sources(name, m, sources)
            return self._read(key, np.dtype(np.float32)), m["units"]
        n_warn = len(ctx.warnings)
        arr, units = spec.build(ctx)
        if not self.writable or ctx.dry_run:
            self.log[name] = "miss (not stored: dry run)"
            return arr, units
        if arr.dtype != np.float32:
            self.log[name] = f"miss (not stored: dtype {arr.dtype})"
            return arr, units
        log.info("computing layer %s into the cache (%s)", name, self._paths(key)[0])
        self._store([_Entry(name, key, arr, units, {"type": spec.type, "warnings": ctx.warnings[n_warn:]}, sources)])
        return self._read(key, arr.dtype), units

    # --- criteria and the exclusion mask ----------------------------------------------------------------
    def criterion_key(self, layer: str, transform) -> str | None:
        """Key of a criterion: the transform as applied (fitted parameters included) of the layer ``layer``."""
        k = self.key(layer) if self.enabled else None
        return None if k is None else self._derived_key(criterion=transform.as_record(), layer=k)

    def exclusion_key(self, constraints: list[dict], study_area: str | None, names: list[str]) -> str | None:
        """Key of the exclusion mask: the constraints, the study-area vector and the keys of every name they read."""
        if not self.enabled:
            return None
        deps = {n: self.key(n) for n in sorted(set(names) | ({study_area} - {None}))}
        return None if any(v is None for v in deps.values()) else self._derived_key(
            exclusions=constraints, study_area=study_area, deps=deps)

    def resolve(self, items: list[tuple[str, str | None, Callable[[], da.Array], str, dict[str, da.Array]]]
                ) -> dict[str, da.Array]:
        """Weight-independent arrays (criterion scores, the exclusion mask) from the cache, or built and stored.

        ``items``: (name, key or None, build, units, sources); ``build()`` returns the lazy float32 or bool array.
        Every miss is stored in ONE write pass (the layers they read are read once), then read back like a hit, so
        a run that only changes a weight or a class break reads finished scores and one mask instead of every
        layer, rasterization and transform again. A bool mask is stored as uint8 (1 = True) and read back as
        bool. ``sources``: layers the entry is computed from (name -> array), whose counts of valid cells are
        stored in the manifest (in name order: the key fixes what they are, not what the config calls them) and
        put in ``self.source_valid[name]`` on a store or a hit (a run that reads the entry does not read them, yet
        still warns about an input that is nodata everywhere). Returns name -> lazy array.
        """
        out: dict[str, da.Array] = {}
        misses: list[_Entry] = []
        for name, key, build, units, sources in items:
            if not self.enabled or key is None:
                self.log[name] = "off" if not self.enabled else "not cached (an input has no file to hash)"
                out[name] = build()
                continue
            m = self.lookup(key)
            if m is not None:
                self.log[name] = f"hit {key[:16]}"
                out[name] = self._read(key, np.dtype(m.get("dtype", "float32")))
                self._note_sources(name, m, sources)
                continue
            arr = build()
            if not self.writable:
                self.log[name] = "miss (not stored: dry run)"
                out[name] = arr
                continue
            misses.append(_Entry(name, key, arr, units, {"type": name.split(":")[0]}, dict(sources)))
        if misses:
            log.info("computing %s into the cache", ", ".join(e.name for e in misses))
            self._store(misses)
            for e in misses:
                out[e.name] = self._read(e.key, e.array.dtype)
        return out

    def _note_sources(self, name: str, manifest: dict, sources: dict) -> None:
        """Put the valid cells an entry's manifest kept for its ``sources`` (in name order) in ``source_valid``."""
        counts = manifest.get("source_valid_cells")
        counts = [counts] if isinstance(counts, int) else counts
        if sources and isinstance(counts, list) and len(counts) == len(sources):
            self.source_valid[name] = dict(zip(sorted(sources), map(int, counts), strict=True))

    # --- statistics of fitted layers --------------------------------------------------------------------
    def stats_key(self, layer: str, study_area: str | None) -> str | None:
        """Key of a layer's statistics inside the study area (``suitability.fitting.layer_stats``)."""
        if not self.enabled:
            return None
        deps = {n: self.key(n) for n in ({layer, study_area} - {None})}
        return None if any(v is None for v in deps.values()) else self._derived_key(
            stats=layer, study_area=study_area, deps=deps)

    def stats_lookup(self, layers: list[str], study_area: str | None) -> dict[str, dict]:
        """The cached statistics of those ``layers`` that have them (layer -> ``layer_stats`` dict)."""
        found = {}
        for name in layers:
            key = self.stats_key(name, study_area)
            if key is None:
                continue
            m = self._manifest(key)
            if m is not None and isinstance(m.get("stats"), dict):
                found[name] = {**m["stats"], "layer": name}
                self.log[f"stats:{name}"] = f"hit {key[:16]}"
        return found

    def stats_store(self, stats: dict[str, dict], study_area: str | None) -> None:
        """Keep computed statistics (a layer without valid cells is not kept: fitting it fails anyway)."""
        for name, st in stats.items():
            key = self.stats_key(name, study_area)
            if key is None or not self.writable or not st.get("count"):
                continue
            write_json_atomic(self._paths(key)[1], {"format": CACHE_FORMAT, "key": key, "name": f"stats:{name}",
                                                    "stats": {k: v for k, v in st.items() if k != "layer"},
                                                    "tool": tool_version(), "grid": grid_identity(self.grid)})
            self.log[f"stats:{name}"] = f"stored {key[:16]}"

    # --- storage ----------------------------------------------------------------------------------------
    def _store(self, entries: list[_Entry]) -> None:
        """Write ``entries`` in one pass (plain tiled GeoTIFFs), then each manifest, last."""
        outs, counts = [], []
        for e in entries:
            counts += [da.count_nonzero(~da.isnan(e.sources[n])) for n in sorted(e.sources)]
            tif = self._paths(e.key)[0]
            arr = e.array.astype(np.uint8) if e.array.dtype == np.bool_ else e.array
            outs.append(rio.RasterOutput(arr, tif, description=e.name, units=e.units,
                                         nodata=None if arr.dtype == np.uint8 else float("nan"),
                                         tags={"SUITABILITY_CACHE_KEY": e.key}))
        _, counted = rio.write_many(outs, self.grid, extra=counts, cog=False)
        counted = iter(counted)
        # The manifest last: an entry without it is an interrupted write and is recomputed.
        for e in entries:
            if e.sources:
                got = {n: int(next(counted)) for n in sorted(e.sources)}
                self.source_valid[e.name] = got
                e.meta["source_valid_cells"] = [got[n] for n in sorted(got)]
            tif, man = self._paths(e.key)
            write_json_atomic(man, {"format": CACHE_FORMAT, "key": e.key, "name": e.name, "units": e.units,
                                    "dtype": str(e.array.dtype), "warnings": [], **e.meta,
                                    "size": tif.stat().st_size, "tool": tool_version(),
                                    "grid": grid_identity(self.grid)})
            self.log[e.name] = f"stored {e.key[:16]}"

    def _read(self, key: str, dtype: np.dtype) -> da.Array:
        """Lazy read of an entry on the grid (exact: same grid); bool entries come back as bool."""
        arr = rio.read(self._paths(key)[0], self.grid, resampling="nearest")
        return arr != 0 if dtype == np.bool_ else arr


@dataclass
class _Entry:
    name: str
    key: str
    array: da.Array
    units: str
    meta: dict = field(default_factory=dict)  # extra manifest fields (layer type, warnings of its build)
    sources: dict[str, da.Array] = field(default_factory=dict)  # layers read (valid cells kept in the manifest)
