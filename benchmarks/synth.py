"""A deterministic, SYNTHETIC Qinghai-like study area at any resolution, for scale benchmarks.

Everything written here is labelled synthetic (file names, GeoTIFF tags, GeoPackage layer metadata and the
manifest ``synthetic_province.json``); the reprojected copies of the real layers say which real file they are.

Grid: Albers equal-area for Qinghai (``ALBERS`` below) over the extent of ``data/qinghai/counties.gpkg``, made
with :meth:`rasters.grid.Grid.from_bounds` (edges snapped to whole cells).

``synthetic_dem_m.tif`` = large-scale relief + fractal detail, per cell:

    dem = coarse + amplitude · fbm

* ``coarse``: the real 5′ DEM (``dem_5arcmin.tif``, ~9 km cells) sampled onto the grid with
  :func:`rasters.io.read` (bilinear, lazy, per chunk).
* ``amplitude`` (metres): ``clip(AMP_PER_RELIEF · local range of the coarse DEM over 3 × 3 source cells,
  AMP_MIN_M, AMP_MAX_M)``, computed once on the tiny source grid, written as
  ``synthetic_relief_amplitude_m.tif`` and sampled per chunk the same way (bilinear), so flat basins (Qaidam)
  get a few metres of texture and the Kunlun/Qilian ranges hundreds.
* ``fbm``: fractional Brownian motion made of octaves of 2-D gradient noise (Perlin, K. 2002, "Improving
  noise", SIGGRAPH, quintic fade ``6t⁵ − 15t⁴ + 10t³``) with wavelengths ``BASE_WAVELENGTH_M / 2ᵏ`` and weights
  ``∝ (wavelength)^HURST`` summing to 1 over all ``N_OCTAVES`` octaves (fBm with Hurst exponent H: amplitude
  ∝ scale^H). An octave is used only if its wavelength is at least ``NYQUIST_CELLS`` cells (finer detail
  would alias), so a 30 m DEM has more detail than a 90 m one of the same landscape. The lattice is in
  projected metres and the gradient at lattice node ``(ix, iy)`` of octave ``k`` is a pure function of
  ``hash(ix, iy, k, seed)`` (splitmix64), so each chunk is generated on its own from absolute coordinates:
  no global array, memory bounded by the chunk, and the same bits whatever the chunk size. With unit
  gradients each octave lies in ±√2/2, so ``|fbm| ≤ √2/2 < 1`` and ``|dem − coarse| < amplitude``.

Vectors (GeoPackages in the output folder, reprojected to the grid CRS with :func:`vectors.io.read`, which also
repairs invalid geometries): real ``rivers.gpkg``, ``lakes.gpkg``, ``county_seats.gpkg`` (destinations), and
``synthetic_roads.gpkg``: least-cost paths between county seats, the edges of a minimum spanning tree of the
seats' least-cost distances (``trunk``, 80 km/h) plus links from each seat to its 2 cheapest neighbours
(``secondary``, 40 km/h). They are routed with ``skimage.graph.MCP_Geometric`` on a COARSE cost surface
(``ROAD_CELL_M`` = 2 km cells, or the grid resolution if coarser) whose cost per metre rises with the slope of
the real coarse DEM and is high on lakes, so road generation takes seconds at any resolution.

Usage::

    python benchmarks/synth.py --resolution-m 90 --out /work/bench-out/province_90m [--seed 0] [--chunk-size 1024]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import dask.array as da
import geopandas as gpd
import numpy as np
import pyogrio
import rasterio
import shapely
from numba import njit
from scipy import ndimage
from scipy.sparse.csgraph import minimum_spanning_tree

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rasters.grid import Grid  # noqa: E402
from rasters.io import RasterOutput, read, write_many  # noqa: E402
from rasters.terrain import slope  # noqa: E402
from vectors.io import read as read_vector  # noqa: E402
from vectors.rasterize import mask as vector_mask  # noqa: E402

__all__ = ["ALBERS", "fbm_block", "make_province", "province_grid", "synthetic_dem", "octaves"]

DATA = ROOT / "data" / "qinghai"
ALBERS = "+proj=aea +lat_0=35 +lon_0=96 +lat_1=33 +lat_2=38 +ellps=GRS80 +units=m +no_defs"
VERSION = 1  # bump when the generator changes, so cached provinces are rebuilt

# Fractal detail. Tuned by looking at 1024² windows at 90 m (slope median / 90th percentile, degrees): Qilian
# 9.7 / 20.8, Anyemaqen 8.0 / 15.8, Xining 9.1 / 17.7, Maduo plateau 4.2 / 9.1: steep ranges, gentle plateau,
# somewhat gentler than real 90 m DEMs there (enough to exercise every kernel; not a terrain model).
BASE_WAVELENGTH_M = 8_000.0  # the coarse DEM already holds the scales above ~20 km
N_OCTAVES = 8  # 8 km ... 62.5 m
HURST = 0.65
NYQUIST_CELLS = 2.5
AMP_PER_RELIEF = 1.5
AMP_MIN_M = 5.0
AMP_MAX_M = 2000.0
NOISE_BOUND = math.sqrt(2.0) / 2.0  # max |2-D gradient noise| with unit gradients

ROAD_CELL_M = 2000.0
ROAD_SPEEDS_KMH = {"trunk": 80.0, "secondary": 40.0}
ROAD_NEIGHBOURS = 2
SYNTHETIC_TAGS = {"SYNTHETIC": "yes"}


# ------------------------------------------------------------------------------------------------ grid
def province_grid(resolution_m: float, chunk_size: int = 1024) -> Grid:
    """The Albers grid over the extent of the real county boundaries at ``resolution_m`` metres."""
    counties = read_vector(DATA / "counties.gpkg", ALBERS)
    return Grid.from_bounds(tuple(counties.total_bounds), float(resolution_m), ALBERS, chunk_size=chunk_size)


# ------------------------------------------------------------------------------------------------ noise
def octaves(resolution_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(wavelengths in metres, weights) of the octaves used at ``resolution_m``.

    Weights are ``∝ wavelength^HURST`` normalised over all ``N_OCTAVES`` octaves, so leaving out the octaves a
    coarse grid cannot resolve does not change the amplitude of the others.
    """
    k = np.arange(N_OCTAVES)
    wl = BASE_WAVELENGTH_M / 2.0**k
    w = (wl / BASE_WAVELENGTH_M) ** HURST
    w /= w.sum()
    keep = wl >= NYQUIST_CELLS * float(resolution_m)
    return wl[keep], w[keep]


_GOLDEN = 0.6180339887498949


@njit(inline="always")
def _mix64(h):
    # splitmix64 finaliser (Steele, Lea & Flood 2014): a bijective avalanche on 64-bit integers.
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


@njit(inline="always")
def _node_angle(ix, iy, octave, seed):
    """Gradient direction (radians) at lattice node (ix, iy) of an octave: a hash of (ix, iy, octave, seed)."""
    bias = np.int64(1) << np.int64(40)  # keeps negative lattice indices non-negative before the cast
    h = _mix64(np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(octave))
    h = _mix64(h ^ (np.uint64(ix + bias) * np.uint64(0xD1B54A32D192ED03)))
    h = _mix64(h ^ (np.uint64(iy + bias) * np.uint64(0xABC98388FB8FAC03)))
    return (h >> np.uint64(11)) * (2.0 * math.pi / 9007199254740992.0)  # 53 random bits -> [0, 2π)


@njit(nogil=True, cache=True)
def _fbm(c, a, f, e, row0, col0, h, w, wavelengths, weights, seed):
    out = np.zeros((h, w), np.float64)
    xs = np.empty(w)
    ys = np.empty(h)
    for j in range(w):
        xs[j] = c + (col0 + j + 0.5) * a  # cell centres from absolute indices: identical in every chunking
    for i in range(h):
        ys[i] = f + (row0 + i + 0.5) * e
    ix = np.empty(w, np.int64)
    fx = np.empty(w)
    sx = np.empty(w)
    iy = np.empty(h, np.int64)
    fy = np.empty(h)
    sy = np.empty(h)
    for k in range(wavelengths.size):
        inv = 1.0 / wavelengths[k]
        off = k * _GOLDEN  # shifts each octave's lattice so no point is a node of every octave
        for j in range(w):
            u = xs[j] * inv + off
            ix[j] = np.int64(math.floor(u))
            fx[j] = u - ix[j]
            sx[j] = fx[j] * fx[j] * fx[j] * (fx[j] * (fx[j] * 6.0 - 15.0) + 10.0)
        for i in range(h):
            v = ys[i] * inv + off
            iy[i] = np.int64(math.floor(v))
            fy[i] = v - iy[i]
            sy[i] = fy[i] * fy[i] * fy[i] * (fy[i] * (fy[i] * 6.0 - 15.0) + 10.0)
        x0 = ix.min()
        y0 = iy.min()
        nx = ix.max() - x0 + 2
        ny = iy.max() - y0 + 2
        gx = np.empty((ny, nx))
        gy = np.empty((ny, nx))
        for q in range(ny):
            for p in range(nx):
                ang = _node_angle(x0 + p, y0 + q, k, seed)
                gx[q, p] = math.cos(ang)
                gy[q, p] = math.sin(ang)
        wk = weights[k]
        for i in range(h):
            b = iy[i] - y0
            ty = fy[i]
            for j in range(w):
                p = ix[j] - x0
                tx = fx[j]
                n00 = gx[b, p] * tx + gy[b, p] * ty
                n10 = gx[b, p + 1] * (tx - 1.0) + gy[b, p + 1] * ty
                n01 = gx[b + 1, p] * tx + gy[b + 1, p] * (ty - 1.0)
                n11 = gx[b + 1, p + 1] * (tx - 1.0) + gy[b + 1, p + 1] * (ty - 1.0)
                n0 = n00 + sx[j] * (n10 - n00)
                n1 = n01 + sx[j] * (n11 - n01)
                out[i, j] += wk * (n0 + sy[i] * (n1 - n0))
    return out.astype(np.float32)


def fbm_block(grid: Grid, row0: int, col0: int, height: int, width: int, seed: int) -> np.ndarray:
    """fBm gradient noise (dimensionless, ``|value| ≤ √2/2``) for the cells ``[row0:row0+height, col0:col0+width]``.

    Computed from absolute cell-centre coordinates only, so any window gives the same numbers as the same cells
    of any other window (chunk-size invariance).
    """
    t = grid.transform
    wl, w = octaves(min(grid.res))
    if wl.size == 0:
        return np.zeros((height, width), np.float32)
    return _fbm(t.c, t.a, t.f, t.e, int(row0), int(col0), int(height), int(width), wl, w, int(seed))


def _dem_block(coarse: np.ndarray, amp: np.ndarray, grid: Grid, seed: int, block_info=None) -> np.ndarray:
    (r0, r1), (c0, c1) = block_info[0]["array-location"]
    noise = fbm_block(grid, r0, c0, r1 - r0, c1 - c0, seed)
    return (coarse + amp * noise).astype(np.float32, copy=False)


def synthetic_dem(grid: Grid, seed: int, amplitude_path: str | os.PathLike, dem_path: str | os.PathLike | None = None):
    """Lazy float32 SYNTHETIC elevation (metres) on ``grid``: ``coarse + amplitude · fbm`` (module docstring)."""
    coarse = read(dem_path or DATA / "dem_5arcmin.tif", grid, resampling="bilinear")
    amp = read(amplitude_path, grid, resampling="bilinear")
    return da.map_blocks(_dem_block, coarse, amp, grid=grid, seed=int(seed), dtype=np.float32,
                         meta=np.empty((0, 0), np.float32))


def write_amplitude(out_path: Path, dem_path: Path = DATA / "dem_5arcmin.tif") -> Path:
    """Write the fractal amplitude (metres) on the coarse DEM's own grid; see the module docstring."""
    with rasterio.open(dem_path) as src:
        z = src.read(1, out_dtype=np.float32)
        if src.nodata is not None:
            z[z == np.float32(src.nodata)] = np.nan
        profile = src.profile
    nan = np.isnan(z)
    hi = ndimage.maximum_filter(np.where(nan, -np.inf, z), size=3, mode="nearest")
    lo = ndimage.minimum_filter(np.where(nan, np.inf, z), size=3, mode="nearest")
    amp = np.clip(AMP_PER_RELIEF * (hi - lo), AMP_MIN_M, AMP_MAX_M).astype(np.float32)
    amp[nan] = np.nan
    profile.update(dtype="float32", nodata=float("nan"), compress="deflate", tiled=False)
    profile.pop("blockxsize", None), profile.pop("blockysize", None)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(amp, 1)
        dst.update_tags(**SYNTHETIC_TAGS, DESCRIPTION="SYNTHETIC fractal amplitude (m) for the synthetic DEM: "
                        f"clip({AMP_PER_RELIEF} x 3x3 local range of {dem_path.name}, {AMP_MIN_M}, {AMP_MAX_M})")
        dst.set_band_description(1, "SYNTHETIC fractal amplitude")
        dst.set_band_unit(1, "m")
    os.replace(tmp, out_path)
    return out_path


# ------------------------------------------------------------------------------------------------ roads
def road_cost_surface(grid: Grid, lakes: gpd.GeoDataFrame) -> tuple[Grid, np.ndarray, np.ndarray]:
    """(coarse grid, cost per metre, slope in degrees) for routing roads.

    Cost per metre = ``1 + (slope / 8°)²`` on the real coarse DEM (so 8° doubles the cost and 24° makes it ten
    times the flat), ×50 on lakes and 100 where the DEM has no data: roads prefer valleys and go round lakes.
    """
    cell = max(ROAD_CELL_M, max(grid.res))
    cgrid = Grid.from_bounds(grid.bounds, cell, grid.crs, chunk_size=256)
    dem = read(DATA / "dem_5arcmin.tif", cgrid, resampling="bilinear").compute()
    s = slope(dem, cgrid)
    cost = 1.0 + (np.nan_to_num(s, nan=0.0).astype(np.float64) / 8.0) ** 2
    cost[np.isnan(dem)] = 100.0
    if len(lakes):
        cost[np.asarray(vector_mask(lakes, cgrid).compute())] *= 50.0
    return cgrid, cost, s


def make_roads(grid: Grid, seats: gpd.GeoDataFrame, lakes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """SYNTHETIC road network between the seats (module docstring): one LineString per road, with speeds."""
    from skimage.graph import MCP_Geometric

    cgrid, cost, _ = road_cost_surface(grid, lakes)
    xy = np.column_stack([seats.geometry.x.to_numpy(), seats.geometry.y.to_numpy()])
    rows, cols = cgrid.index_of_xy(xy[:, 0], xy[:, 1])
    rows = np.clip(rows, 0, cgrid.height - 1)
    cols = np.clip(cols, 0, cgrid.width - 1)
    n = len(seats)
    dist = np.zeros((n, n))
    paths: dict[tuple[int, int], np.ndarray] = {}
    for i in range(n):
        mcp = MCP_Geometric(cost, sampling=(cgrid.res[1], cgrid.res[0]))
        costs, _ = mcp.find_costs([(rows[i], cols[i])])
        dist[i] = costs[rows, cols]
        for j in range(i + 1, n):
            paths[i, j] = np.asarray(mcp.traceback((rows[j], cols[j])))  # from seat i's cell to seat j's
    dist = np.maximum(dist, dist.T)  # symmetric up to float noise; make it exactly so
    mst = minimum_spanning_tree(dist + 1e-9 * (1 - np.eye(n))).toarray() > 0  # tiny term: 0-cost pairs count
    edges: dict[tuple[int, int], str] = {}
    for i, j in zip(*np.nonzero(mst | mst.T), strict=True):
        edges[min(i, j), max(i, j)] = "trunk"
    for i in range(n):
        order = [j for j in np.argsort(dist[i], kind="stable") if j != i][:ROAD_NEIGHBOURS]
        for j in order:
            edges.setdefault((min(i, j), max(i, j)), "secondary")
    names = seats["pinyin"].astype(str).tolist() if "pinyin" in seats else [str(k) for k in range(n)]
    recs = []
    for (i, j), kind in sorted(edges.items(), key=lambda kv: (kv[1] == "trunk", kv[0])):
        # Secondary first: rasterizing in row order with "replace", a trunk road wins where two overlap.
        rc = paths[i, j]
        cx, cy = cgrid.xy_of_cells(rc[:, 0], rc[:, 1])
        line = np.vstack([xy[i], np.column_stack([cx, cy])[1:-1], xy[j]])  # ends exactly on the two seats
        geom = shapely.LineString(line)
        recs.append({"from_idx": int(i), "to_idx": int(j), "from_seat": names[i], "to_seat": names[j], "kind": kind,
                     "speed_kmh": ROAD_SPEEDS_KMH[kind], "length_km": geom.length / 1000.0, "geometry": geom})
    return gpd.GeoDataFrame(recs, geometry="geometry", crs=grid.crs)


# ------------------------------------------------------------------------------------------------ writing
def _write_gpkg(gdf: gpd.GeoDataFrame, path: Path, layer: str, description: str) -> Path:
    tmp = path.with_name(f".{path.stem}.tmp.gpkg")
    if tmp.exists():
        tmp.unlink()
    pyogrio.write_dataframe(gdf, tmp, layer=layer, driver="GPKG",
                            layer_metadata={"DESCRIPTION": description},
                            dataset_metadata={"DESCRIPTION": description})
    os.replace(tmp, path)
    return path


def _manifest_matches(path: Path, want: dict) -> bool:
    if not path.exists():
        return False
    try:
        have = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if any(have.get(k) != v for k, v in want.items()):
        return False
    return all((path.parent / f).exists() for f in have.get("files", {}).values())


def make_province(
    out_dir: str | os.PathLike,
    resolution_m: float,
    seed: int = 0,
    chunk_size: int = 1024,
    reuse: bool = True,
    progress: bool = False,
) -> dict[str, Path]:
    """Generate (or reuse, if ``out_dir`` already holds the same version, resolution and seed) the SYNTHETIC province.

    Returns paths by role: ``dem``, ``amplitude``, ``rivers``, ``lakes``, ``county_seats``, ``roads``,
    ``manifest``. The DEM's content does not depend on ``chunk_size`` (only the processing does).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "synthetic_province.json"
    key = {"synthetic": True, "version": VERSION, "resolution_m": float(resolution_m), "seed": int(seed)}
    names = {"dem": "synthetic_dem_m.tif", "amplitude": "synthetic_relief_amplitude_m.tif",
             "rivers": "rivers.gpkg", "lakes": "lakes.gpkg", "county_seats": "county_seats.gpkg",
             "roads": "synthetic_roads.gpkg"}
    paths = {k: out / v for k, v in names.items()} | {"manifest": manifest}
    if reuse and _manifest_matches(manifest, key):
        return paths

    t0 = time.perf_counter()
    grid = province_grid(resolution_m, chunk_size)
    clip = grid.bounds
    rivers = read_vector(DATA / "rivers.gpkg", grid.crs, clip_bounds=clip)
    lakes = read_vector(DATA / "lakes.gpkg", grid.crs, clip_bounds=clip)
    seats = read_vector(DATA / "county_seats.gpkg", grid.crs, clip_bounds=clip)
    real = "REAL data reprojected to the Albers grid CRS (part of a SYNTHETIC benchmark province)"
    _write_gpkg(rivers, paths["rivers"], "rivers", f"{real}; source {DATA / 'rivers.gpkg'}")
    _write_gpkg(lakes, paths["lakes"], "lakes", f"{real}; source {DATA / 'lakes.gpkg'}")
    _write_gpkg(seats, paths["county_seats"], "county_seats", f"{real}; source {DATA / 'county_seats.gpkg'}")
    roads = make_roads(grid, seats, lakes)
    _write_gpkg(roads, paths["roads"], "synthetic_roads",
                "SYNTHETIC roads: least-cost paths between real county seats on a coarse slope cost surface "
                f"(MST trunk {ROAD_SPEEDS_KMH['trunk']:g} km/h + {ROAD_NEIGHBOURS} nearest neighbours "
                f"{ROAD_SPEEDS_KMH['secondary']:g} km/h); not real roads")
    t_vec = time.perf_counter() - t0

    write_amplitude(paths["amplitude"])
    dem = synthetic_dem(grid, seed, paths["amplitude"])
    wl, _ = octaves(resolution_m)
    desc = (f"SYNTHETIC elevation (m): real 5-arcminute DEM (bilinear) + fBm gradient noise, seed {seed}, "
            f"{wl.size} octaves {wl.max() if wl.size else 0:g}-{wl.min() if wl.size else 0:g} m; not a real DEM")
    tags = {**SYNTHETIC_TAGS, "DESCRIPTION": desc, "SEED": str(seed), "GENERATOR": f"benchmarks/synth.py v{VERSION}"}
    t1 = time.perf_counter()
    with _progress(progress):
        write_many([RasterOutput(dem, paths["dem"], description=desc, units="m", nodata=float("nan"), tags=tags)],
                   grid)
    t_dem = time.perf_counter() - t1

    manifest_data = {
        **key,
        "description": "SYNTHETIC Qinghai-like benchmark province: synthetic DEM and roads; rivers, lakes and "
                       "county seats are real data reprojected",
        "grid": grid.to_dict(),
        "octaves_m": wl.tolist(),
        "files": names,
        "seconds": {"vectors_and_roads": round(t_vec, 2), "dem": round(t_dem, 2)},
    }
    fd, tmp = tempfile.mkstemp(prefix=".synthetic_province.", suffix=".json", dir=out)
    with os.fdopen(fd, "w") as fh:
        json.dump(manifest_data, fh, indent=2)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; it is a plain result file
    os.replace(tmp, manifest)
    return paths


class _progress:
    """A dask progress bar when asked for (updates every 2 s when stdout is not a terminal)."""

    def __init__(self, on: bool):
        self.bar = None
        if on:
            from dask.diagnostics import ProgressBar

            self.bar = ProgressBar(dt=0.5 if sys.stdout.isatty() else 2.0)

    def __enter__(self):
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolution-m", type=float, required=True)
    ap.add_argument("--out", required=True, help="output folder (created)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk-size", type=int, default=1024)
    ap.add_argument("--force", action="store_true", help="regenerate even if the folder holds the same province")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    paths = make_province(args.out, args.resolution_m, args.seed, args.chunk_size, reuse=not args.force,
                          progress=True)
    print(f"SYNTHETIC province at {args.resolution_m:g} m in {time.perf_counter() - t0:.1f} s:")
    for k, p in paths.items():
        print(f"  {k:13s} {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
