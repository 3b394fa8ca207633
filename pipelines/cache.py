"""On-disk cache of derived layers (the ``layers:`` entries that cost real work: slope, aspect, relief, distance,
friction, travel time), so a rerun that changes only a weight, a transform, a class break or an output does not
recompute terrain, distances or travel times.

Key: SHA-256 of a canonical JSON of the layer's type and parameters, the keys of what it reads (an input's key is
the SHA-256 of its file(s) plus band/resampling or layer/where and a declared ``towgs84``; a derived layer's key
is its own cache key), the grid (CRS, transform, shape; not the chunk size, which never changes a value) and the
tool and cache format versions. A change anywhere upstream changes every key downstream of it.

Entry: ``<folder>/<key[:2]>/<key>.tif`` (a tiled float32 GeoTIFF on the run's grid, written atomically) and
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
    """Remove every cache entry under ``folder``; returns the number of layers removed."""
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
            k = None if any(v is None for v in deps.values()) else _digest({
                "format": CACHE_FORMAT, "tool": tool_version(), "layer": spec.model_dump(mode="json"),
                "deps": deps, "grid": grid_identity(self.grid),
            })
        else:
            k = None
        self._keys[name] = k
        return k

    # --- entries ----------------------------------------------------------------------------------------
    def _paths(self, key: str) -> tuple[Path, Path]:
        d = self.folder / key[:2]
        return d / f"{key}.tif", d / f"{key}.json"

    def lookup(self, key: str) -> dict | None:
        """The manifest of a complete entry, or None (absent, interrupted or damaged entries are misses)."""
        tif, man = self._paths(key)
        try:
            m = json.loads(man.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if m.get("key") != key or m.get("format") != CACHE_FORMAT:
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
        m = self.lookup(key)
        if m is not None:
            ctx.warnings.extend(m.get("warnings", []))
            self.log[name] = f"hit {key[:16]}"
            return rio.read(self._paths(key)[0], self.grid, resampling="nearest"), m["units"]
        n_warn = len(ctx.warnings)
        arr, units = spec.build(ctx)
        if not self.writable or ctx.dry_run:
            self.log[name] = "miss (not stored: dry run)"
            return arr, units
        if arr.dtype != np.float32:
            self.log[name] = f"miss (not stored: dtype {arr.dtype})"
            return arr, units
        tif, man = self._paths(key)
        log.info("computing layer %s into the cache (%s)", name, tif)
        rio.write_many([rio.RasterOutput(arr, tif, description=name, units=units, nodata=float("nan"),
                                         tags={"SUITABILITY_CACHE_KEY": key})], self.grid, cog=False)
        # The manifest last: an entry without it is an interrupted write and is recomputed.
        write_json_atomic(man, {"format": CACHE_FORMAT, "key": key, "name": name, "type": spec.type,
                                "units": units, "warnings": ctx.warnings[n_warn:], "size": tif.stat().st_size,
                                "tool": tool_version(), "grid": grid_identity(self.grid)})
        self.log[name] = f"stored {key[:16]}"
        return rio.read(tif, self.grid, resampling="nearest"), units
