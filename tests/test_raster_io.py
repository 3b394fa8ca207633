"""Raster reading aligned to the grid (against GDAL's own warp of the whole file) and atomic writing."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer
from rasterio.enums import Resampling
from rasterio.warp import reproject

from rasters import io
from rasters.errors import InputDataError
from rasters.grid import Grid
from tests.conftest import ALBERS, DATA, write_tif

DEM = DATA / "dem_5arcmin.tif"


def gdal_warp_whole(path, grid: Grid, resampling: Resampling) -> np.ndarray:
    """Reference: GDAL's warper run once over the whole grid."""
    out = np.full(grid.shape, np.nan, np.float32)
    with rasterio.open(path) as src:
        reproject(rasterio.band(src, 1), out, dst_transform=grid.transform, dst_crs=grid.rio_crs,
                  dst_nodata=np.nan, resampling=resampling, init_dest_nodata=True)
    return out


def exact_reference(path, grid: Grid, method: str) -> np.ndarray:
    """Independent reference: cell centres through pyproj, then nearest / bilinear by formula on the source."""
    rows, cols = np.indices(grid.shape)
    x, y = grid.xy_of_cells(rows, cols)
    with rasterio.open(path) as s:
        a = s.read(1).astype(np.float64)
        a[a == s.nodata] = np.nan
        t, crs = s.transform, s.crs
    lon, lat = Transformer.from_crs(grid.pyproj_crs, crs.to_wkt(), always_xy=True).transform(x, y)
    fc, fr = (lon - t.c) / t.a, (lat - t.f) / t.e
    if method == "nearest":
        return a[np.floor(fr).astype(int), np.floor(fc).astype(int)]
    x0, y0 = np.floor(fc - 0.5).astype(int), np.floor(fr - 0.5).astype(int)
    wx, wy = fc - 0.5 - x0, fr - 0.5 - y0
    return (a[y0, x0] * (1 - wx) * (1 - wy) + a[y0, x0 + 1] * wx * (1 - wy)
            + a[y0 + 1, x0] * (1 - wx) * wy + a[y0 + 1, x0 + 1] * wx * wy)


# Inside the DEM's footprint, away from its edges, so the formula reference needs no edge rules.
REF_GRID = Grid.from_bounds((-400_000, -300_000, 300_000, 250_000), 5000, ALBERS, chunk_size=32)


@pytest.mark.parametrize("resampling", ["nearest", "bilinear"])
def test_read_other_crs_matches_exact_formula(resampling):
    ours = io.read(DEM, REF_GRID, resampling=resampling).compute()
    ref = exact_reference(DEM, REF_GRID, resampling)
    assert ours.dtype == np.float32 and ours.shape == REF_GRID.shape
    np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-3)


@pytest.mark.parametrize("resampling", ["nearest", "bilinear"])
def test_read_agrees_with_gdal_whole_warp(resampling):
    """GDAL's warper approximates the transformation to within 0.125 source pixels (gdalwarp -et default), so
    nearest may pick the neighbour for cells that close to a source edge, and bilinear differs by at most
    the local gradient times 0.125 pixel."""
    ours = io.read(DEM, REF_GRID, resampling=resampling).compute()
    ref = gdal_warp_whole(DEM, REF_GRID, getattr(Resampling, resampling))
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    if resampling == "nearest":
        assert (ours == ref).mean() > 0.97
    else:
        diff = np.abs(ours - ref)
        assert np.nanmedian(diff) < 5.0 and np.nanmax(diff) < 60


def test_read_average_uses_gdal_warper(tmp_path):
    # 4x4 source of 10 m cells averaged onto 20 m cells: each output is the mean of a 2x2 block.
    arr = np.arange(16, dtype=np.float32).reshape(4, 4)
    p = write_tif(tmp_path / "a.tif", arr, Affine(10, 0, 0, 0, -10, 40), ALBERS)
    grid = Grid.from_bounds((0, 0, 40, 40), 20, ALBERS, chunk_size=16)
    out = io.read(p, grid, resampling="average").compute()
    np.testing.assert_allclose(out, arr.reshape(2, 2, 2, 2).mean(axis=(1, 3)))


def test_read_is_chunk_invariant_and_picklable():
    g1 = Grid.from_bounds((-400_000, -300_000, 300_000, 250_000), 5000, ALBERS, chunk_size=1024)
    g2 = g1.with_chunk_size(17)
    a = io.read(DEM, g1).compute()
    lazy = io.read(DEM, g2)
    pickle.dumps(dict(lazy.__dask_graph__()))  # only paths and windows in the graph
    np.testing.assert_array_equal(lazy.compute(), a)


def test_source_nodata_becomes_nan(tmp_path):
    arr = np.arange(16, dtype=np.int16).reshape(4, 4)
    arr[1, 2] = -9999
    p = write_tif(tmp_path / "a.tif", arr, Affine(10, 0, 0, 0, -10, 40), ALBERS, nodata=-9999)
    grid = Grid.from_bounds((0, 0, 40, 40), 10, ALBERS, chunk_size=16)
    out = io.read(p, grid, resampling="nearest").compute()
    expected = arr.astype(np.float32)
    expected[1, 2] = np.nan
    np.testing.assert_array_equal(out, expected)


def test_write_round_trip_with_stats_overviews_and_no_temp(tmp_path):
    grid = Grid.from_bounds((0, 0, 600_000, 400_000), 1000, ALBERS, chunk_size=256)
    rng = np.random.default_rng(0)
    data = rng.random(grid.shape, dtype=np.float32)
    data[:10, :10] = np.nan
    out = tmp_path / "x.tif"
    stats = io.write(data, grid, out, description="test layer", units="m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.tif"]
    with rasterio.open(out) as ds:
        assert ds.crs == grid.rio_crs and ds.transform == grid.transform
        assert np.isnan(ds.nodata)
        assert ds.compression.name.lower() == "zstd"
        assert ds.block_shapes[0] == (256, 256)
        assert ds.overviews(1) == [2, 4]
    from rio_cogeo.cogeo import cog_validate

    valid, errors, _ = cog_validate(str(out), quiet=True)
    assert valid, errors
    with rasterio.open(out) as ds:
        assert ds.descriptions == ("test layer",) and ds.units == ("m",)
        np.testing.assert_array_equal(ds.read(1), data)
        tags = ds.tags(1)
    valid = data[~np.isnan(data)]
    assert float(tags["STATISTICS_MINIMUM"]) == pytest.approx(float(valid.min()))
    assert float(tags["STATISTICS_MAXIMUM"]) == pytest.approx(float(valid.max()))
    assert float(tags["STATISTICS_MEAN"]) == pytest.approx(float(valid.astype(np.float64).mean()), rel=1e-9)
    assert float(tags["STATISTICS_STDDEV"]) == pytest.approx(float(valid.astype(np.float64).std()), rel=1e-6)
    assert float(tags["STATISTICS_VALID_PERCENT"]) == pytest.approx(100 * valid.size / data.size)
    assert stats == tags


def test_failed_write_leaves_nothing_and_keeps_previous(tmp_path):
    import dask.array as da

    grid = Grid.from_bounds((0, 0, 64, 64), 1, ALBERS, chunk_size=16)
    out = tmp_path / "x.tif"
    out.write_bytes(b"previous")

    def boom(block):
        if block.sum() >= 0:
            raise RuntimeError("disk on fire")
        return block

    bad = da.zeros(grid.shape, chunks=16, dtype=np.float32).map_blocks(boom, dtype=np.float32)
    with pytest.raises(RuntimeError, match="disk on fire"):
        io.write(bad, grid, out)
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["x.tif"]


# --- bad input -----------------------------------------------------------------------------------------------
GRID = Grid.from_bounds((-400_000, -300_000, 300_000, 250_000), 5000, ALBERS, chunk_size=64)


def test_missing_file(tmp_path):
    with pytest.raises(InputDataError, match=r"nope\.tif: file not found"):
        io.read(tmp_path / "nope.tif", GRID)


def test_not_a_raster(tmp_path):
    p = tmp_path / "notes.tif"
    p.write_text("this is not a GeoTIFF")
    with pytest.raises(InputDataError, match=r"notes\.tif: not a raster GDAL can read"):
        io.read(p, GRID)


def test_raster_without_crs(tmp_path):
    p = write_tif(tmp_path / "nocrs.tif", np.ones((4, 4), np.float32), Affine(1, 0, 0, 0, -1, 4), None)
    with pytest.raises(InputDataError, match=r"nocrs\.tif: raster has no CRS"):
        io.read(p, GRID)


def test_truncated_geotiff(tmp_path):
    src = tmp_path / "full.tif"
    arr = np.random.default_rng(1).random((512, 512)).astype(np.float32)
    write_tif(src, arr, Affine(0.01, 0, 95, 0, -0.01, 36), "EPSG:4326", tiled=True, blockxsize=128,
              blockysize=128)
    cut = tmp_path / "cut.tif"
    data = src.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputDataError, match=r"cut\.tif: "):
        io.read(cut, GRID)


def test_no_overlap(tmp_path):
    p = write_tif(tmp_path / "far.tif", np.ones((4, 4), np.float32), Affine(0.1, 0, -60, 0, -0.1, -30),
                  "EPSG:4326")
    with pytest.raises(InputDataError, match=r"far\.tif: raster does not overlap the analysis grid"):
        io.read(p, GRID)


def test_rotated_transform(tmp_path):
    p = write_tif(tmp_path / "rot.tif", np.ones((4, 4), np.float32), Affine(1, 0.2, 95, 0.1, -1, 36), "EPSG:4326")
    with pytest.raises(InputDataError, match="rotated"):
        io.read(p, GRID)


def test_write_memory_is_bounded_by_chunks_not_raster(tmp_path):
    """Writing a 256 MiB raster (64 blocks of 4 MiB) must not hold it in memory. Peak RSS is measured in a fresh
    process against the same process writing a 16-block raster: the difference must stay far below the
    192 MiB the extra 48 blocks weigh (it was about 390 MiB when the store target was a dataclass that made
    dask wait for the whole array)."""
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    script = textwrap.dedent('''
        import resource, sys
        import numpy as np
        from pathlib import Path
        from rasters.blocks import grid_blocks
        from rasters.grid import Grid
        from rasters import io
        n = int(sys.argv[1])
        g = Grid.from_bounds((0, 0, n * 90, n * 90), 90, "EPSG:32647", chunk_size=1024)
        def blk(grid, w):
            rng = np.random.default_rng(int(w.row_off * 7 + w.col_off))
            return rng.random((int(w.height), int(w.width)), dtype=np.float32)
        arr = grid_blocks(blk, g, np.float32, name="rnd")
        io.write_many([io.RasterOutput(arr, Path(sys.argv[2]), nodata=float("nan"))], g, cog=False)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
    ''')
    peaks = []
    for n in (4096, 8192):
        r = subprocess.run([sys.executable, "-c", script, str(n), str(tmp_path / f"{n}.tif")], capture_output=True,
                           text=True, check=True, cwd=Path(__file__).resolve().parent.parent)
        peaks.append(int(r.stdout.strip().splitlines()[-1]))
    assert peaks[1] - peaks[0] < 100, peaks


@pytest.mark.parametrize("resampling", ["nearest", "bilinear"])
def test_reading_the_source_in_small_pieces_changes_nothing(monkeypatch, resampling):
    """The source footprint of a chunk is read in pieces (bounded memory for fine sources); pieces of 3 pixels,
    which put many cells' bilinear neighbours across piece edges, give exactly the single-read result."""
    whole = io.read(DEM, REF_GRID, resampling=resampling).compute()
    monkeypatch.setattr(io, "SOURCE_PIECE", 3)
    pieces = io.read(DEM, REF_GRID, resampling=resampling).compute()
    np.testing.assert_array_equal(pieces, whole)


def test_extras_come_back_in_order():
    """Extras of mixed kinds (a dask array reduction, a delayed dict) are returned in the order given."""
    import dask
    import dask.array as da

    grid = Grid.from_bounds((0, 0, 64, 64), 1, ALBERS, chunk_size=16)
    arr = da.ones(grid.shape, chunks=16, dtype=np.float32)
    extras = [dask.delayed(dict)(a=1), da.count_nonzero(arr), dask.delayed(lambda: "third")()]
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        stats, got = io.write_many([io.RasterOutput(arr, Path(d) / "x.tif", nodata=float("nan"))], grid, extra=extras)
    assert got[0] == {"a": 1} and int(got[1]) == 64 * 64 and got[2] == "third"
    assert float(stats[0]["STATISTICS_MEAN"]) == 1.0


def test_write_many_computes_shared_blocks_once(tmp_path):
    """Two outputs and an extra computed from one source block function (as suitability, classes and a zonal
    count share every criterion read): each source block is computed once, not once per consumer (dask gives a
    collection passed into a delayed, or each da.store, its own copy of the graph)."""
    import threading

    import dask
    import dask.array as da

    from rasters.blocks import grid_blocks

    grid = Grid.from_bounds((0, 0, 64, 48), 1, ALBERS, chunk_size=16)
    calls: dict = {}
    lock = threading.Lock()

    def source(g, window):
        with lock:
            calls[(window.row_off, window.col_off)] = calls.get((window.row_off, window.col_off), 0) + 1
        return np.full((int(window.height), int(window.width)), window.row_off + window.col_off, np.float32)

    src = grid_blocks(source, grid, np.float32, name="shared-source")
    score = (src * 2).astype(np.float32)
    classes = (score > 40).astype(np.uint8)
    # a 0-d array, and a Delayed over blocks as the zonal tables are built (to_delayed without optimizing apart)
    extras = [da.count_nonzero(score > 10),
              dask.delayed(sum)([dask.delayed(np.count_nonzero)(b)
                                 for b in classes.to_delayed(optimize_graph=False).ravel()])]
    for scheduler in ("threads", "sync"):
        calls.clear()
        with dask.config.set(scheduler=scheduler):
            stats, got = io.write_many([io.RasterOutput(score, tmp_path / f"s_{scheduler}.tif", nodata=float("nan")),
                                        io.RasterOutput(classes, tmp_path / f"c_{scheduler}.tif", nodata=0)],
                                       grid, extra=extras)
        assert len(calls) == 3 * 4 and set(calls.values()) == {1}, (scheduler, calls)
        want = np.add.outer(np.arange(48) // 16 * 16, np.arange(64) // 16 * 16) * 2
        assert int(got[0]) == int((want > 10).sum()) and got[1] == int((want > 40).sum())
        with rasterio.open(tmp_path / f"s_{scheduler}.tif") as ds:
            np.testing.assert_array_equal(ds.read(1), want)
        assert float(stats[0]["STATISTICS_MAXIMUM"]) == want.max()


def _logged_source(g, window, log):
    """Block (window) of a test source; appends the block's position to the file ``log`` (from any process)."""
    with open(log, "a") as fh:
        fh.write(f"{window.row_off} {window.col_off}\n")
    return np.full((int(window.height), int(window.width)), window.row_off + window.col_off, np.float32)


@pytest.mark.parametrize("where", ["local_cluster", "processes"])
def test_write_many_computes_shared_blocks_once_in_other_processes(tmp_path, where):
    """As above, on the paths where blocks are computed in other processes and written here (a dask.distributed
    LocalCluster with 2 worker processes, and a process pool): each source block runs once, although the blocks
    are computed block by block rather than as arrays (dask.optimize in dask 2026.8 optimized each output on its
    own, so the score was computed again inside the classes' fused tasks and again for the count)."""
    import dask
    import dask.array as da
    import distributed

    from rasters.blocks import grid_blocks

    grid = Grid.from_bounds((0, 0, 64, 48), 1, ALBERS, chunk_size=16)
    log = tmp_path / "calls.txt"
    src = grid_blocks(_logged_source, grid, np.float32, str(log), name="logged-source")
    score = (src * 2).astype(np.float32)
    classes = (score > 40).astype(np.uint8)
    extras = [da.count_nonzero(score > 10), dask.delayed(int)(3)]
    outs = [io.RasterOutput(score, tmp_path / "s.tif", nodata=float("nan")),
            io.RasterOutput(classes, tmp_path / "c.tif", nodata=0)]
    if where == "local_cluster":
        with (distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
              as cluster, distributed.Client(cluster, set_as_default=True)):
            assert io.scheduler_kind() == "distributed"
            stats, got = io.write_many(outs, grid, extra=extras)
    else:
        with dask.config.set(scheduler="processes", num_workers=2):
            assert io.scheduler_kind() == "processes"
            stats, got = io.write_many(outs, grid, extra=extras)
    calls = log.read_text().split("\n")[:-1]
    assert len(calls) == 3 * 4 and len(set(calls)) == 3 * 4, sorted(calls)
    want = np.add.outer(np.arange(48) // 16 * 16, np.arange(64) // 16 * 16) * 2
    assert int(got[0]) == int((want > 10).sum()) and got[1] == 3
    with rasterio.open(tmp_path / "s.tif") as a, rasterio.open(tmp_path / "c.tif") as b:
        np.testing.assert_array_equal(a.read(1), want)
        np.testing.assert_array_equal(b.read(1), (want > 40).astype(np.uint8))
    assert float(stats[0]["STATISTICS_MAXIMUM"]) == want.max()


def _aligned_source(tmp_path):
    """An 80 x 100 int16 source on 100 m cells with nodata, in the grid's CRS."""
    a = (np.arange(80 * 100, dtype=np.int16).reshape(80, 100) * 7) % 1000
    a[5, 7] = -9999
    return write_tif(tmp_path / "aligned.tif", a, Affine(100, 0, 10_000, 0, -100, 20_000), ALBERS,
                     nodata=-9999), a.astype(np.float32)


@pytest.mark.parametrize("resampling", ["nearest", "bilinear"])
@pytest.mark.parametrize("chunk", [16, 17, 64])
def test_aligned_grid_reads_the_source_values(tmp_path, resampling, chunk):
    """A grid sharing the source's cells (a cache entry, a DEM made on the grid) returns the stored values:
    shifted by whole cells, reaching past the source on two sides (NaN there), any chunking."""
    path, a = _aligned_source(tmp_path)
    a[a == -9999] = np.nan
    # starts 3 cells left of and 2 cells below the source's top-left corner; 85 x 106 cells
    grid = Grid(ALBERS, Affine(100, 0, 10_000 - 300, 0, -100, 20_000 - 200), 106, 85, chunk_size=chunk)
    expected = np.full(grid.shape, np.nan, np.float32)
    expected[:78, 3:103] = a[2:80, :100]
    got = io.read(path, grid, resampling=resampling).compute()
    np.testing.assert_array_equal(got, expected)


def test_aligned_fast_path_equals_the_general_sampler(tmp_path, monkeypatch):
    """The shortcut changes no value: the general coordinate sampler on the same aligned grid gives the same
    nearest values, and bilinear values within float rounding of the pixel centres (1e-6 relative)."""
    path, _ = _aligned_source(tmp_path)
    grid = Grid(ALBERS, Affine(100, 0, 10_000 + 500, 0, -100, 20_000 - 300), 40, 35, chunk_size=16)
    fast = {m: io.read(path, grid, resampling=m).compute() for m in ("nearest", "bilinear")}
    monkeypatch.setattr(io, "_aligned_offset", lambda grid, t: None)
    slow = {m: io.read(path, grid, resampling=m).compute() for m in ("nearest", "bilinear")}
    np.testing.assert_array_equal(fast["nearest"], slow["nearest"])
    np.testing.assert_allclose(fast["bilinear"], slow["bilinear"], rtol=1e-6, atol=0)


def test_half_cell_offset_is_not_taken_as_aligned(tmp_path):
    """A grid half a cell off the source (the classic GDAL pixel-is-point slip) is sampled, not copied: nearest
    at centres that fall on source pixel edges takes the pixel below/right (floor), bilinear averages two."""
    path, a = _aligned_source(tmp_path)
    a[a == -9999] = np.nan
    grid = Grid(ALBERS, Affine(100, 0, 10_000 + 50, 0, -100, 20_000), 20, 20, chunk_size=16)
    assert io._aligned_offset(grid, Affine(100, 0, 10_000, 0, -100, 20_000)) is None
    near = io.read(path, grid, resampling="nearest").compute()
    bil = io.read(path, grid, resampling="bilinear").compute()
    np.testing.assert_array_equal(near, a[:20, 1:21])
    mean = (a[:20, 0:20].astype(np.float64) + a[:20, 1:21]) / 2
    mean[5, 6:8] = [a[5, 6], a[5, 8]]  # the nodata pixel (5, 7) drops out of the average: weights renormalised
    np.testing.assert_allclose(bil, mean, rtol=1e-6)
