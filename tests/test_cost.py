"""rasters.cost.travel_time: hand-worked grids, scikit-image's MCP_Geometric, brute-force Dijkstra (heapq),
the tiled dask path against the single-array kernel, allocation, max_minutes, paths and bad input."""

from __future__ import annotations

import heapq
import math

import dask.array as da
import numpy as np
import pytest
from skimage.graph import MCP_Geometric

from rasters.cost import DC, DR, NO_LINK, SOURCE, least_cost_path, path_xy, travel_time
from rasters.errors import ConfigError, InputDataError
from rasters.grid import Grid
from vectors.paths import path_linestring

R2 = math.sqrt(2.0)


def _mcp(friction, sources, sampling=None):
    """MCP_Geometric reference: cumulative costs with unreached cells as NaN."""
    f = np.where(np.isfinite(friction), friction, np.inf)
    costs, _ = MCP_Geometric(f, fully_connected=True, sampling=sampling).find_costs(sources)
    return np.where(np.isfinite(costs), costs, np.nan)


def _random_case(shape=(70, 53), n_src=12, seed=0, barrier_frac=0.0):
    rng = np.random.default_rng(seed)
    f = rng.uniform(0.002, 0.05, shape)  # min/m: 1.2 .. 30 km/h
    if barrier_frac:
        f[rng.random(shape) < barrier_frac] = np.nan
    src = list(zip(rng.integers(0, shape[0], n_src).tolist(), rng.integers(0, shape[1], n_src).tolist(), strict=True))
    for r, c in src:
        f[r, c] = 0.01  # keep destinations passable
    return f, src


def _compute(res):
    return tuple(np.asarray(x) for x in da.compute(res.minutes, res.allocation, res.backlink))


# --- hand-worked grids ------------------------------------------------------------------------------------
def test_uniform_friction_hand_worked_5x7():
    # friction 0.5 min/m, 10 m cells, destination (2, 3): a straight step costs 10·(0.5+0.5)/2 = 5 min, a
    # diagonal step 10√2·0.5 = 7.0710678 min (D). Octile: m = min(|dr|,|dc|) diagonals + the rest straight.
    d = 5 * R2
    expected = np.array(
        [
            # |dr|=2: |dc|=3 → 2D+5; |dc|=2 → 2D; |dc|=1 → D+5; |dc|=0 → 10
            [2 * d + 5, 2 * d, d + 5, 10, d + 5, 2 * d, 2 * d + 5],
            # |dr|=1: |dc|=3 → D+10; 2 → D+5; 1 → D; 0 → 5
            [d + 10, d + 5, d, 5, d, d + 5, d + 10],
            [15, 10, 5, 0, 5, 10, 15],
            [d + 10, d + 5, d, 5, d, d + 5, d + 10],
            [2 * d + 5, 2 * d, d + 5, 10, d + 5, 2 * d, 2 * d + 5],
        ]
    )
    f = np.full((5, 7), 0.5, np.float32)
    res = travel_time(f, [(2, 3)], cell_size_m=10.0)
    assert res.minutes.dtype == np.float32 and res.allocation.dtype == np.int32 and res.backlink.dtype == np.uint8
    np.testing.assert_allclose(res.minutes, expected, rtol=1e-6)
    assert (res.allocation == 0).all()
    assert res.backlink[2, 3] == SOURCE
    # (2, 4) came from the west (code 6), (1, 3) from the south (code 4), (1, 2) from the south-east (code 3)
    assert (res.backlink[2, 4], res.backlink[1, 3], res.backlink[1, 2]) == (6, 4, 3)
    # Equal-cost tie: (1, 5) [D + 5] is reached from (2, 4) [cost 5] by a diagonal (5 + D) and from (1, 4)
    # [cost D] by a straight step (D + 5); float addition commutes, so both sums are identical. The tie rule
    # keeps the lower direction code: SW (5) towards (2, 4), not W (6) towards (1, 4).
    assert res.backlink[1, 5] == 5


def test_two_cell_mean_convention_hand_worked():
    # friction depends on the column only: 1, 2, ..., 7 min/m; 1 m cells; destination (2, 0).
    # Every path to (2, c) crosses each column boundary j→j+1 at a cost ≥ (f_j + f_j+1)/2, so the straight
    # row is optimal: 0, (1+2)/2 = 1.5, 1.5+2.5 = 4, 4+3.5 = 7.5, 7.5+4.5 = 12, 12+5.5 = 17.5, 17.5+6.5 = 24.
    f = np.tile(np.arange(1, 8, dtype=np.float64), (5, 1))
    res = travel_time(f, [(2, 0)], cell_size_m=1.0)
    np.testing.assert_allclose(res.minutes[2], [0, 1.5, 4, 7.5, 12, 17.5, 24], rtol=1e-7)
    # up column 0 (friction 1): two unit steps = 2 to rows 0 and 4
    assert res.minutes[0, 0] == pytest.approx(2.0) and res.minutes[4, 0] == pytest.approx(2.0)


def test_barrier_wall_hand_worked():
    # friction 1, 1 m cells, column 3 a barrier except row 4; destination (0, 0). (4, 3) is reached in
    # 3 diagonals + 1 straight = 3√2 + 1 = 5.2426407; every path to (0, 6) passes it, and (4,3)→(0,6) is the
    # same octile distance again: 2·(3√2 + 1) = 10.4852814.
    f = np.ones((5, 7))
    f[:4, 3] = np.nan
    res = travel_time(f, [(0, 0)], cell_size_m=1.0)
    assert res.minutes[4, 3] == pytest.approx(3 * R2 + 1, rel=1e-7)
    assert res.minutes[0, 6] == pytest.approx(2 * (3 * R2 + 1), rel=1e-7)
    assert np.isnan(res.minutes[:4, 3]).all()
    assert (res.allocation[:4, 3] == -1).all() and (res.backlink[:4, 3] == NO_LINK).all()


def test_knight_moves_hand_worked():
    # friction 1, 1 m cells, destination (0, 0). 8 neighbours: (2, 1) costs √2 + 1 = 2.4142136;
    # 16 neighbours: one knight move of length √(2² + 1²) = √5 = 2.2360680, at (L/4)·(1+1+1+1) = √5.
    f = np.ones((5, 7))
    assert travel_time(f, [(0, 0)], cell_size_m=1.0).minutes[2, 1] == pytest.approx(R2 + 1, rel=1e-7)
    res16 = travel_time(f, [(0, 0)], cell_size_m=1.0, neighbours=16)
    assert res16.minutes[2, 1] == pytest.approx(math.sqrt(5), rel=1e-7)
    assert res16.backlink[2, 1] == 15  # predecessor at (-2, -1): NNW knight
    # GRASS r.cost -k: the knight move crosses cells (1, 0) and (1, 1); blocking them forbids it. The best
    # remaining route is (0,0)→(0,1)→(1,2)→(2,1): 1 + √2 + √2 = 3.8284271.
    f[1, 0] = f[1, 1] = np.nan
    assert travel_time(f, [(0, 0)], cell_size_m=1.0, neighbours=16).minutes[2, 1] == pytest.approx(1 + 2 * R2)
    # Friction 1.2 in a crossed cell: the knight costs (L/4)·(1 + 1 + 1.2 + 1) = √5·4.2/4 = 2.3478714, still
    # cheaper than (1,0) then a diagonal (1 + √2 = 2.4142136) or via (1,1) (√2·2.2/2 + 2.2/2 = 2.6556349).
    f = np.ones((5, 7))
    f[1, 1] = 1.2
    got = travel_time(f, [(0, 0)], cell_size_m=1.0, neighbours=16).minutes[2, 1]
    assert got == pytest.approx(math.sqrt(5) * 4.2 / 4, rel=1e-7)


# --- against MCP_Geometric --------------------------------------------------------------------------------
@pytest.mark.parametrize("barrier_frac", [0.0, 0.15])
def test_numpy_kernel_matches_mcp_geometric(barrier_frac):
    f, src = _random_case(barrier_frac=barrier_frac)
    ref = _mcp(f, src)
    res = travel_time(f, src, cell_size_m=1.0)
    np.testing.assert_array_equal(np.isnan(res.minutes), np.isnan(ref))
    np.testing.assert_allclose(res.minutes, ref, rtol=1e-6)
    # float32 output of the same float64 arithmetic
    np.testing.assert_array_equal(res.minutes, ref.astype(np.float32))


def test_anisotropic_projected_cells_match_mcp_sampling():
    f, src = _random_case(shape=(40, 31), seed=3, barrier_frac=0.1)
    ref = _mcp(f, src, sampling=(20.0, 30.0))  # (dy, dx) in metres
    res = travel_time(f, src, cell_size_m=(30.0, 20.0))
    np.testing.assert_allclose(res.minutes, ref, rtol=1e-6)
    np.testing.assert_array_equal(np.isnan(res.minutes), np.isnan(ref))


@pytest.mark.parametrize("chunks", [16, (23, 9), (70, 53)])
@pytest.mark.parametrize("barrier_frac", [0.0, 0.15])
def test_tiled_dask_path_matches_mcp_and_single_array_exactly(chunks, barrier_frac):
    f, src = _random_case(barrier_frac=barrier_frac)
    single = travel_time(f, src, cell_size_m=1.0)
    res = travel_time(da.from_array(f.astype(np.float32), chunks=chunks), src, cell_size_m=1.0)
    assert isinstance(res.minutes, da.Array)
    minutes, alloc, back = _compute(res)
    np.testing.assert_allclose(minutes, _mcp(f.astype(np.float32), src), rtol=1e-6)
    single32 = travel_time(f.astype(np.float32), src, cell_size_m=1.0)
    np.testing.assert_array_equal(minutes, single32.minutes)
    np.testing.assert_array_equal(alloc, single32.allocation)
    np.testing.assert_array_equal(back, single32.backlink)
    assert res.rounds >= 1 and (res.rounds == 1) == (chunks == (70, 53))
    assert single.minutes.shape == minutes.shape


# --- brute force with heapq: anisotropic geographic rows and knight moves --------------------------------
def _brute_force(f, src, dx, dy, knights=False):
    """Textbook Dijkstra (heapq, tuples (cost, id, code, cell)) with the documented step geometry."""
    h, w = f.shape
    moves = [(-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1)]
    if knights:
        moves += [(-2, 1), (-1, 2), (1, 2), (2, 1), (2, -1), (1, -2), (-1, -2), (-2, -1)]

    def length(r, dr, dc):
        lo = min(r, r + dr)
        if dr == 0:
            return abs(dc) * dx[r]
        if abs(dr) == 1:
            v = (dy[lo] + dy[lo + 1]) / 2
            x = abs(dc) * (dx[lo] + dx[lo + 1]) / 2
        else:
            v = dy[lo] / 2 + dy[lo + 1] + dy[lo + 2] / 2
            x = (dx[lo] + dx[lo + 2]) / 2
        return math.hypot(v, x)

    best = {}
    heap = [(0.0, i, (r, c)) for i, (r, c) in enumerate(src) if np.isfinite(f[r, c])]
    heapq.heapify(heap)
    while heap:
        cost, i, (r, c) = heapq.heappop(heap)
        if (r, c) in best:
            continue
        best[r, c] = (cost, i)
        for dr, dc in moves:
            rr, cc = r + dr, c + dc
            if not (0 <= rr < h and 0 <= cc < w) or not np.isfinite(f[rr, cc]) or (rr, cc) in best:
                continue
            cells = [f[r, c], f[rr, cc]]
            if abs(dr) == 2:
                cells += [f[r + dr // 2, c], f[r + dr // 2, c + dc]]
            elif abs(dc) == 2:
                cells += [f[r, c + dc // 2], f[r + dr, c + dc // 2]]
            if not all(np.isfinite(cells)):
                continue
            heapq.heappush(heap, (cost + length(r, dr, dc) * sum(cells) / len(cells), i, (rr, cc)))
    out = np.full((h, w), np.nan)
    for (r, c), (cost, _) in best.items():
        out[r, c] = cost
    return out


@pytest.mark.parametrize("neighbours", [8, 16])
def test_geographic_grid_rows_against_brute_force(neighbours):
    # 0.01° cells between 60° and 60.33° N: cells ~557 m wide and ~1113 m tall, width shrinking by row.
    grid = Grid.from_bounds((90.0, 60.0, 90.26, 60.33), 0.01, "EPSG:4326", chunk_size=16)
    f, src = _random_case(shape=grid.shape, n_src=6, seed=5, barrier_frac=0.1)
    dx, dy = grid.cell_size_m_rows()
    assert dx[0] < dx[-1] and abs(dx[0] / dy[0] - 0.5) < 0.01  # top row is further north: narrower
    ref = _brute_force(f, src, dx, dy, knights=neighbours == 16)
    res = travel_time(f, src, grid=grid, neighbours=neighbours)
    np.testing.assert_array_equal(np.isnan(res.minutes), np.isnan(ref))
    np.testing.assert_allclose(res.minutes, ref, rtol=1e-6)
    tiled = travel_time(da.from_array(f, chunks=grid.chunks), src, grid=grid, neighbours=neighbours)
    minutes, alloc, back = _compute(tiled)
    np.testing.assert_array_equal(minutes, res.minutes)
    np.testing.assert_array_equal(alloc, res.allocation)
    np.testing.assert_array_equal(back, res.backlink)


def test_knight_moves_against_brute_force_and_tiles_with_thin_last_chunk():
    f, src = _random_case(shape=(45, 33), n_src=5, seed=9, barrier_frac=0.2)
    ref = _brute_force(f, src, np.full(45, 25.0), np.full(45, 25.0), knights=True)
    res = travel_time(f, src, cell_size_m=25.0, neighbours=16)
    np.testing.assert_allclose(res.minutes, ref, rtol=1e-6)
    # chunks of 16 leave a last column chunk of 1 cell (< the 2-cell knight halo): merged into its neighbour
    tiled = travel_time(da.from_array(f, chunks=16), src, cell_size_m=25.0, neighbours=16)
    minutes, alloc, back = _compute(tiled)
    np.testing.assert_array_equal(minutes, res.minutes)
    np.testing.assert_array_equal(alloc, res.allocation)
    np.testing.assert_array_equal(back, res.backlink)


# --- allocation, ties, max_minutes ------------------------------------------------------------------------
def test_allocation_is_the_cheapest_destination():
    f, src = _random_case(shape=(50, 41), n_src=7, seed=11, barrier_frac=0.1)
    per_dest = np.stack([_mcp(f, [s]) for s in src])  # one MCP run per destination
    res = travel_time(f, src, cell_size_m=1.0)
    reached = ~np.isnan(res.minutes)
    np.testing.assert_array_equal(reached, np.isfinite(per_dest).any(axis=0))
    best = np.nanmin(np.where(np.isfinite(per_dest), per_dest, np.inf), axis=0)
    rows, cols = np.nonzero(reached)
    own = per_dest[res.allocation[rows, cols], rows, cols]
    np.testing.assert_allclose(own, best[rows, cols], rtol=1e-12)
    np.testing.assert_allclose(res.minutes[reached], best[reached], rtol=1e-6)
    assert (res.allocation[~reached] == -1).all()


def test_tie_rule_lowest_destination_index_on_both_paths():
    # Two destinations mirrored about column 3 of a uniform grid: column 3 is equidistant from both (the same
    # steps in mirror order give bit-identical sums), so it goes to the lower index, 0 (the east one).
    f = np.ones((5, 7))
    res = travel_time(f, [(2, 6), (2, 0)], cell_size_m=1.0)
    assert (res.allocation[:, 3] == 0).all()  # index 0 is the east destination
    assert (res.allocation[:, :3] == 1).all() and (res.allocation[:, 4:] == 0).all()
    tiled = _compute(travel_time(da.from_array(f, chunks=(3, 2)), [(2, 6), (2, 0)], cell_size_m=1.0))
    np.testing.assert_array_equal(tiled[1], res.allocation)
    np.testing.assert_array_equal(tiled[2], res.backlink)
    # two destinations in one cell: the lower index owns it
    res2 = travel_time(f, [(0, 0), (4, 4), (0, 0)], cell_size_m=1.0)
    assert res2.allocation[0, 0] == 0 and res2.minutes[0, 0] == 0


def test_max_minutes_cuts_exactly_and_tiles_stop_early():
    f, src = _random_case(shape=(70, 53), n_src=3, seed=2)
    full = travel_time(f, src, cell_size_m=30.0)
    cap = float(np.nanpercentile(full.minutes, 30))
    res = travel_time(f, src, cell_size_m=30.0, max_minutes=cap)
    # float32 output vs a float64 limit: compare against the float64 truth via MCP
    ref = _mcp(f, src, sampling=(30.0, 30.0))
    inside = ref <= cap
    np.testing.assert_array_equal(~np.isnan(res.minutes), inside)
    np.testing.assert_array_equal(res.minutes[inside], full.minutes[inside])
    assert (res.allocation[~inside] == -1).all()
    tiled = travel_time(da.from_array(f, chunks=16), src, cell_size_m=30.0, max_minutes=cap)
    np.testing.assert_array_equal(_compute(tiled)[0], res.minutes)
    unlimited = travel_time(da.from_array(f, chunks=16), src, cell_size_m=30.0)
    assert tiled.tile_solves < unlimited.tile_solves


# --- paths ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("neighbours", [8, 16])
def test_least_cost_path_ends_at_its_destination_and_sums_to_the_cost(neighbours):
    f, src = _random_case(shape=(40, 37), n_src=4, seed=4, barrier_frac=0.1)
    res = travel_time(f, src, cell_size_m=10.0, neighbours=neighbours)
    rows, cols = np.nonzero(~np.isnan(res.minutes))
    for k in range(0, rows.size, max(1, rows.size // 15)):
        start = (int(rows[k]), int(cols[k]))
        path = least_cost_path(res.backlink, start)
        assert path[0] == start
        assert path[-1] == tuple(src[res.allocation[start]])
        total = 0.0
        for (r0, c0), (r1, c1) in zip(path, path[1:], strict=False):
            dr, dc = r1 - r0, c1 - c0
            cells = [f[r0, c0], f[r1, c1]]
            if abs(dr) == 2:
                cells += [f[r0 + dr // 2, c0], f[r0 + dr // 2, c1]]
            elif abs(dc) == 2:
                cells += [f[r0, c0 + dc // 2], f[r1, c0 + dc // 2]]
            total += 10.0 * math.hypot(dr, dc) * sum(cells) / len(cells)
        assert total == pytest.approx(float(res.minutes[start]), rel=1e-5)


def test_path_on_dask_backlink_and_geometry():
    f, src = _random_case(shape=(40, 37), n_src=2, seed=6)
    grid = Grid.from_bounds((0, 0, 370, 400), 10.0, "EPSG:32646", chunk_size=16)
    single = travel_time(f, src, grid=grid)
    tiled = travel_time(da.from_array(f, chunks=16), src, grid=grid)
    start = (39, 36)
    path = least_cost_path(tiled.backlink, start)
    assert path == least_cost_path(single.backlink, start)
    for (r0, c0), (r1, c1) in zip(path, path[1:], strict=False):
        code = single.backlink[r0, c0]
        assert (r0 + DR[code], c0 + DC[code]) == (r1, c1)
    xy = path_xy(path, grid)
    assert xy[0].tolist() == [365.0, 5.0]  # centre of the bottom-right cell
    line = path_linestring(path, grid)
    assert line.geom_type == "LineString" and len(line.coords) == len(path)
    assert path_linestring([path[-1]], grid).geom_type == "Point"


def test_path_from_unreached_cell_and_outside():
    f = np.ones((5, 7))
    f[:, 3] = np.nan
    res = travel_time(f, [(0, 0)], cell_size_m=1.0)
    with pytest.raises(InputDataError, match="not reached"):
        least_cost_path(res.backlink, (0, 6))
    with pytest.raises(ConfigError, match="outside"):
        least_cost_path(res.backlink, (5, 0))
    assert least_cost_path(res.backlink, (0, 0)) == [(0, 0)]


# --- bad input --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [0.0, -1.0, -np.inf])
def test_friction_must_be_positive(bad):
    f = np.ones((5, 7))
    f[3, 3] = bad
    with pytest.raises(InputDataError, match="friction_min_per_m has 1 cells <= 0"):
        travel_time(f, [(0, 0)], cell_size_m=1.0)
    with pytest.raises(InputDataError, match="friction_min_per_m"):
        res = travel_time(da.from_array(f, chunks=16), [(0, 0)], cell_size_m=1.0)
        res.minutes.compute()


def test_destinations_outside_or_on_barriers():
    f = np.ones((5, 7))
    with pytest.raises(InputDataError, match="none of the 2 destinations lies inside the 5 x 7 grid"):
        travel_time(f, [(-1, 0), (0, 7)], cell_size_m=1.0)
    f[0, 0] = np.nan
    f[1, 1] = np.inf
    for arr in (f, da.from_array(f, chunks=16)):
        with pytest.raises(InputDataError, match="all 2 destinations inside the grid lie on barriers"):
            travel_time(arr, [(0, 0), (1, 1), (9, 9)], cell_size_m=1.0)
    # one usable destination is enough; the outside one keeps its index
    res = travel_time(f, [(9, 9), (0, 0), (4, 6)], cell_size_m=1.0)
    assert set(np.unique(res.allocation)) == {-1, 2}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cell_size_m": 1.0, "neighbours": 4}, "neighbours must be 8 or 16"),
        ({"cell_size_m": 1.0, "max_minutes": 0}, "max_minutes must be > 0"),
        ({}, "exactly one of grid= or cell_size_m="),
        ({"cell_size_m": -5.0}, "positive metres"),
        ({"cell_size_m": (1.0, 2.0, 3.0)}, "cell_size_m must be"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        travel_time(np.ones((5, 7)), [(0, 0)], **kwargs)


def test_bad_destination_format_and_grid_mismatch():
    with pytest.raises(ConfigError, match="non-empty sequence of \\(row, col\\)"):
        travel_time(np.ones((5, 7)), [], cell_size_m=1.0)
    with pytest.raises(ConfigError, match="integer"):
        travel_time(np.ones((5, 7)), [(0.5, 1)], cell_size_m=1.0)
    grid = Grid.from_bounds((0, 0, 70, 60), 10.0, "EPSG:32646")
    with pytest.raises(ConfigError, match="does not match the grid"):
        travel_time(np.ones((5, 7)), [(0, 0)], grid=grid)


# --- queue variants and incremental tile rounds ------------------------------------------------------------
@pytest.mark.parametrize("neighbours", [8, 16])
def test_bucket_queue_and_heap_fallback_give_identical_labels(monkeypatch, neighbours):
    # A 1000:1 friction range runs the bucket queue; forcing the heap (ring limit 0) must reproduce its output
    # bit for bit (costs, allocation, back-links: the tie rule holds in both), and both match MCP_Geometric
    # (8 neighbours) or the heapq brute force (16).
    import rasters.cost as cost_mod

    f, src = _random_case(shape=(60, 47), n_src=9, seed=21, barrier_frac=0.1)
    f[::7, :] *= 40.0  # slow bands: a 1000:1 friction range
    dx = np.full(60, 25.0)
    ref = _mcp(f, src, sampling=(25.0, 25.0)) if neighbours == 8 else _brute_force(f, src, dx, dx, knights=True)
    buckets = travel_time(f, src, cell_size_m=25.0, neighbours=neighbours)
    monkeypatch.setattr(cost_mod, "_MAX_SLOTS", 0)
    heap = travel_time(f, src, cell_size_m=25.0, neighbours=neighbours)
    np.testing.assert_allclose(buckets.minutes, ref, rtol=1e-6)
    np.testing.assert_array_equal(np.isnan(buckets.minutes), np.isnan(ref))
    np.testing.assert_array_equal(buckets.minutes, heap.minutes)
    np.testing.assert_array_equal(buckets.allocation, heap.allocation)
    np.testing.assert_array_equal(buckets.backlink, heap.backlink)


def test_extreme_friction_range_falls_back_to_the_heap_and_stays_exact():
    import rasters.cost as cost_mod

    f, src = _random_case(shape=(40, 33), n_src=4, seed=22)
    f[5:9, :] = 1e-7  # a near-free corridor next to friction ~1e-2: the ring would need > 2**20 buckets
    fac = cost_mod._move_factors(np.ones(40), np.ones(40), 1)
    assert cost_mod._bucket_width(f, fac, 8)[1] == 0  # so the heap kernel runs
    res = travel_time(f, src, cell_size_m=1.0)
    np.testing.assert_allclose(res.minutes, _mcp(f, src), rtol=1e-6)


def test_idle_runs_tile_states_are_dropped(monkeypatch):
    """A run's tile states left behind (its final pass ran elsewhere) go at the next put once idle longer than
    TILE_STATE_IDLE_S; a run still active keeps them."""
    import rasters.cost as cost_mod

    clock = [1000.0]
    monkeypatch.setattr(cost_mod.time, "monotonic", lambda: clock[0])
    store = cost_mod._TileStates()
    work = np.zeros(1000)
    store.put(("old", (0, 0)), work)
    store.put(("old", (0, 1)), work)
    clock[0] += cost_mod.TILE_STATE_IDLE_S - 1
    store.put(("new", (0, 0)), work)
    assert len(store._items) == 3 and store.nbytes == 3 * work.nbytes
    clock[0] += 2  # "old" now idle past the limit; "new" was used 2 s ago
    store.put(("new", (0, 1)), work)
    assert sorted(store._items) == [("new", (0, 0)), ("new", (0, 1))] and store.nbytes == 2 * work.nbytes
    assert store.pop(("new", (0, 0))) is work and store.nbytes == work.nbytes


def test_incremental_tile_rounds_equal_from_scratch_rounds_and_free_their_state(monkeypatch):
    import rasters.cost as cost_mod

    f, src = _random_case(shape=(70, 53), n_src=12, seed=23, barrier_frac=0.1)
    single = travel_time(f, src, cell_size_m=1.0)
    n_before = len(cost_mod._STATES._items)
    kept = travel_time(da.from_array(f, chunks=(17, 13)), src, cell_size_m=1.0)
    assert len(cost_mod._STATES._items) > n_before  # tile states kept between rounds
    got = _compute(kept)
    assert len(cost_mod._STATES._items) == n_before  # the final pass took (and freed) them
    monkeypatch.setattr(cost_mod, "TILE_STATE_BUDGET_BYTES", 0)  # nothing kept: every round from scratch
    scratch = travel_time(da.from_array(f, chunks=(17, 13)), src, cell_size_m=1.0)
    assert (scratch.rounds, scratch.tile_solves) == (kept.rounds, kept.tile_solves)
    for a, b, c in zip(got, _compute(scratch), (single.minutes, single.allocation, single.backlink), strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, c)
    np.testing.assert_allclose(got[0], _mcp(f, src), rtol=1e-6)


def _counted_friction(f, chunks):
    """``f`` as a dask array whose blocks are made by a function that counts its calls per block."""
    import threading

    calls: dict = {}
    lock = threading.Lock()

    def make(block, block_info=None):
        key = tuple(block_info[0]["chunk-location"])
        with lock:
            calls[key] = calls.get(key, 0) + 1
        return block.copy()

    return da.from_array(f, chunks=chunks).map_blocks(make, dtype=f.dtype, name="counted-friction"), calls


def test_friction_is_computed_once_for_all_rounds_and_once_more_with_the_outputs(monkeypatch):
    """The rounds use the friction computed once (held, within FRICTION_HOLD_BYTES), not recomputed per round; the
    output pass computes it once more, sharing it with other consumers (here the friction itself, as a layer
    computed with the minutes); over the budget each round recomputes it, with the same numbers."""
    import dask

    import rasters.cost as cost_mod

    f, src = _random_case(shape=(70, 53), n_src=3, seed=24)
    fric, calls = _counted_friction(f, (17, 13))
    nblocks = fric.npartitions
    res = travel_time(fric, src, cell_size_m=1.0)
    assert res.rounds > 2
    assert len(calls) == nblocks and set(calls.values()) == {1}, calls
    calls.clear()
    minutes, same_f = dask.compute(res.minutes, fric)
    assert len(calls) == nblocks and set(calls.values()) == {1}, calls
    np.testing.assert_array_equal(same_f, f)
    np.testing.assert_allclose(minutes, _mcp(f, src), rtol=1e-6)

    monkeypatch.setattr(cost_mod, "FRICTION_HOLD_BYTES", 0)
    fric, calls = _counted_friction(f, (17, 13))
    big = travel_time(fric, src, cell_size_m=1.0)
    assert (big.rounds, big.tile_solves) == (res.rounds, res.tile_solves)
    assert max(calls.values()) > 1  # recomputed in the rounds that need it
    np.testing.assert_array_equal(big.minutes.compute(), minutes)
