"""Accumulated travel cost (minutes) from a set of destination cells to every cell of a friction surface.

What is computed
----------------
The least total cost of moving between each cell centre and the nearest (cheapest) destination cell, over
paths of moves between neighbouring cell centres, with Dijkstra's algorithm; the priority queue is a ring of
buckets of width δ ≤ half the least possible move cost (Dinitz 1978; exact, see :func:`_dijkstra_buckets`),
with a 4-ary heap as the fallback for friction ranges beyond ~10⁵ : 1.
Friction is in **minutes per metre** (see :mod:`rasters.friction`); step lengths are in metres, so the result
is in **minutes**. It is accumulated in float64 and returned as float32.

Move costs
----------
* **8 neighbours** (default), exactly ``skimage.graph.MCP_Geometric``'s convention (``_mcp.pyx``,
  ``_travel_cost``: ``offset_length * 0.5 * (old_cost + new_cost)``): half the step in each cell,
  ``cost(u→v) = (L/2)·(f_u + f_v)`` with ``L = dx`` (east-west), ``dy`` (north-south) or ``√(dx² + dy²)``
  (diagonal). The float64 operations are the same as MCP_Geometric's, so on a regular grid the costs agree
  to the last bit up to how ties are broken.
* **16 neighbours** (``neighbours=16``) add the eight knight moves (±1, ±2) / (±2, ±1), as GRASS ``r.cost -k``
  (``raster/r.cost/main.c``): the straight segment crosses the start cell, two intermediate cells and the end
  cell, so ``cost = (L/4)·(f_u + f_a + f_b + f_v)`` with ``L = √((2dy)² + dx²)`` or ``√(dy² + (2dx)²)``;
  the move is blocked if either intermediate cell is a barrier (GRASS skips it when one is null).
* **Anisotropic and geographic cells**: ``dx`` and ``dy`` may differ and may vary by row (a geographic grid's
  cells narrow towards the pole; :meth:`Grid.cell_size_m_rows`). A move between rows ``r`` and ``r'`` uses
  the centre-to-centre distances ``dy = (dy_r + dy_r')/2`` and ``dx = (dx_r + dx_r')/2`` (for two-row knight
  moves ``dy_r/2 + dy_(r+1) + dy_(r+2)/2``), computed from the lower row so both directions cost the same.

Barriers, sources, limits
-------------------------
Friction NaN or ``+inf`` is a **barrier**: never entered, NaN cost. Friction ``≤ 0`` or ``−inf`` is an error
(zero friction would make travel free). Destinations are ``(row, col)`` cells; those outside the grid or on a
barrier are ignored (their index is kept, so allocation numbers still refer to the caller's list); if none is
left, :class:`InputDataError`. Cells that cannot be reached, or (with ``max_minutes``) cost more than
``max_minutes``, get NaN cost, allocation −1, back-link :data:`NO_LINK`.

Outputs: ``minutes`` (float32), ``allocation`` (int32 index of the nearest destination, −1 = unreachable) and
``backlink`` (uint8 direction code of the predecessor on a least-cost path; :data:`SOURCE` on a destination,
:data:`NO_LINK` where unreachable). Codes 0–7 are N, NE, E, SE, S, SW, W, NW (clockwise from north), 8–15 the
knight moves clockwise from NNE: the predecessor of ``(r, c)`` is ``(r + DR[code], c + DC[code])``.

**Tie rule.** Each cell takes the lexicographically least ``(cost, destination index, direction code)`` over
its neighbours. Equal costs therefore allocate to the lowest destination index, deterministically, and the
single-array and tiled paths agree exactly (costs, allocation and back-links), except in the degenerate case
where a move adds less than one ulp to a cost (``cost + w == cost``) so that two cells of equal cost feed each
other; this needs friction ~1e-16 of the accumulated minutes and does not happen with real speeds.

Dask path (memory bounded by the chunk size)
--------------------------------------------
A dask friction array is solved tile by tile. Round 1 runs the same Dijkstra kernel on every tile holding a
destination; each tile task returns only its outer ``k`` rows and columns (``k`` = 1, or 2 with knight moves)
of costs and allocations. The client assembles each tile's halo ring from its eight neighbours' strips, and
every tile whose halo changed is brought up to date in the next round; the loop stops when no halo changes.
Labels only decrease, so it ends, and at the end every cell satisfies the same Bellman equations with the same
float64 operations as the single-array run, hence the same numbers.

*Incremental rounds.* A tile task keeps its work arrays (friction, cost, allocation, back-link: about 17 bytes a
cell with float32 friction, 21 with float64) in a process-local store, :data:`TILE_STATE_BUDGET_BYTES` (1 GiB)
at most, least recently used evicted first. The next round seeds Dijkstra with the halo cells that improved
only, so it visits only the cells whose label improves (exactly the from-scratch answer, see
:meth:`_Work.update`). A task that does not find its tile there (evicted, run by another worker process, or
retried) solves the tile from scratch from the halo, as before: same numbers, more time. The trade-off: the
client still holds only the strips (O(perimeter)); worker memory is bounded by the budget plus the tiles in
flight (each task: its friction tile with halo and four tile-sized work arrays), never by the raster size; at
province scale with a small budget the rounds degrade gracefully to whole-tile solves.

The returned arrays are lazy: each block takes its tile's converged state from the store when computed (and
frees it), or solves the tile once more from its final halo. Rounds are counted in :attr:`CostResult.rounds`,
tile runs in :attr:`CostResult.tile_solves`.

*Friction during the rounds.* Every round needs the friction tiles (with their halo) of the tiles it brings up to
date. A padded friction of at most :data:`FRICTION_HOLD_BYTES` (512 MiB: a 90 m province in float32) is computed
once before round 1 and held for the rounds (in this process, or on a cluster's workers, whose tile tasks then run
where their tile is) and released after them; a larger one is recomputed from its graph in every round that needs
it, so memory stays bounded by the chunk size (persist or cache an expensive friction array yourself then).
Measured on the SYNTHETIC 180 m province (140 tiles, 11 rounds, friction = Horn slope, Tobler, roads and lakes):
the friction blocks were otherwise computed 8.3 times each, about half the run's task time. The lazy outputs depend on
the friction's own graph, not on the held copy, so the pass that writes them shares the friction's inputs (the
slope layer, the DEM blocks) with every other output of the same compute.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import NamedTuple

import dask
import dask.array as da
import numpy as np
from numba import njit

from .errors import ConfigError, InputDataError
from .grid import Grid

__all__ = [
    "DC",
    "DR",
    "NO_LINK",
    "SOURCE",
    "CostResult",
    "least_cost_path",
    "path_xy",
    "travel_time",
]

#: back-link code of a destination cell (the path ends here).
SOURCE = np.uint8(254)
#: back-link code of a cell that was not reached.
NO_LINK = np.uint8(255)

# Predecessor offsets by direction code: 0-7 clockwise from north, 8-15 knight moves clockwise from NNE.
DR = np.array([-1, -1, 0, 1, 1, 1, 0, -1, -2, -1, 1, 2, 2, 1, -1, -2], dtype=np.int64)
DC = np.array([0, 1, 1, 1, 0, -1, -1, -1, 1, 2, 2, 1, -1, -2, -2, -1], dtype=np.int64)
# Intermediate cells crossed by a knight move (relative to the cell being left), as in GRASS r.cost -k.
_IAR = np.zeros(16, np.int64)
_IAC = np.zeros(16, np.int64)
_IBR = np.zeros(16, np.int64)
_IBC = np.zeros(16, np.int64)
for _d in range(8, 16):
    _dr, _dc = int(DR[_d]), int(DC[_d])
    if abs(_dr) == 2:
        _IAR[_d], _IAC[_d], _IBR[_d], _IBC[_d] = _dr // 2, 0, _dr // 2, _dc
    else:
        _IAR[_d], _IAC[_d], _IBR[_d], _IBC[_d] = 0, _dc // 2, _dr, _dc // 2


class CostResult(NamedTuple):
    """Outputs of :func:`travel_time` (numpy arrays for numpy input, lazy dask arrays for dask input)."""

    minutes: np.ndarray  #: float32 accumulated minutes, NaN = unreachable / beyond max_minutes / barrier
    allocation: np.ndarray  #: int32 index of the nearest destination, -1 = none
    backlink: np.ndarray  #: uint8 direction code to the predecessor, SOURCE / NO_LINK
    rounds: int  #: border-exchange rounds of the tiled solver (1 for the single-array kernel)
    tile_solves: int  #: tile Dijkstra runs during the rounds (excludes the final lazy pass)


# --- the kernel -------------------------------------------------------------------------------------------
# The heap is 4-ary (shallower than binary) and stores (key, cell) pairs side by side in one float64 array
# (cell indices < 2**53 are exact), so each level touches one cache line. Stale entries are skipped on pop
# (lazy deletion), which measured faster than a decrease-key heap here.
@njit(nogil=True, cache=True, inline="always")
def _heap_push(hp, n, key, val):
    if 2 * n == hp.size:
        grown = np.empty(2 * hp.size, np.float64)
        grown[: hp.size] = hp
        hp = grown
    j = n
    while j > 0:
        p = (j - 1) >> 2
        pk = hp[2 * p]
        if pk <= key:
            break
        hp[2 * j] = pk
        hp[2 * j + 1] = hp[2 * p + 1]
        j = p
    hp[2 * j] = key
    hp[2 * j + 1] = val
    return hp, n + 1


@njit(nogil=True, cache=True, inline="always")
def _heap_pop(hp, n):
    """Remove the root (the caller has read hp[0], hp[1]); returns the new size."""
    n -= 1
    key = hp[2 * n]
    val = hp[2 * n + 1]
    i = 0
    while True:
        c = 4 * i + 1
        if c >= n:
            break
        m = c
        mk = hp[2 * c]
        for q in range(c + 1, min(c + 4, n)):
            qk = hp[2 * q]
            if qk < mk:
                m = q
                mk = qk
        if key <= mk:
            break
        hp[2 * i] = mk
        hp[2 * i + 1] = hp[2 * m + 1]
        i = m
    hp[2 * i] = key
    hp[2 * i + 1] = val
    return n


@njit(nogil=True, cache=True)
def _dijkstra(fric, fac, uniform, offs, ia, ib, nb, w, cost, alloc, back, state, seeds, max_cost):
    """Least accumulated cost, in place, on flat arrays of a (H, w) work grid.

    ``fric`` float32 or float64 (read as float64, an exact widening), non-finite = barrier; the work grid has a
    border of barrier cells wide enough for every move, so no bounds checks are needed. ``fac`` (H, 16): move
    factor (L/2, or L/4 for knights) leaving a cell of each row (row 0 for all when ``uniform``).
    ``offs``/``ia``/``ib``: flat offsets of the neighbour and of a knight move's two intermediate cells.
    ``cost``/``alloc``/``back`` arrive initialised; each of ``seeds`` (flat indices) with a finite cost
    ≤ ``max_cost`` enters the queue; other cells keep their labels unless a relaxation improves them (so the
    same kernel does incremental updates). ``state``: 0 open, 2 fixed (a tile's halo: a seed that is never
    updated); the kernel marks finished cells 1 (open) or 3 (fixed). Relaxation keeps the least
    (cost, alloc, code). This binary-heap version is the fallback of :func:`_dijkstra_buckets`.
    """
    hp = np.empty(2048, np.float64)
    n = 0
    for i in seeds:
        ci = cost[i]
        if ci < np.inf and ci <= max_cost:
            hp, n = _heap_push(hp, n, ci, float(i))
    f0 = fac[0]
    while n > 0:
        cu = hp[0]
        u = np.int64(hp[1])
        n = _heap_pop(hp, n)
        s = state[u]
        if s == 1 or s == 3 or cu > cost[u]:
            continue
        state[u] = 1 if s == 0 else 3
        fu = np.float64(fric[u])
        au = alloc[u]
        fr = f0 if uniform else fac[u // w]
        for d in range(nb):
            v = u + offs[d]
            if state[v] != 0:
                continue
            # The relaxation below is repeated in _dijkstra_buckets on purpose: moving it into shared
            # inline="always" helpers (move cost, label comparison) halved both kernels' speed (bench_cost.py
            # --size 2048: 2.67x -> 1.27-1.43x MCP), so keep the two copies identical by hand.
            fv = np.float64(fric[v])
            if not (fv < np.inf):  # NaN or +inf: barrier
                continue
            if d < 8:
                new = cu + fr[d] * (fu + fv)
            else:
                fa = np.float64(fric[u + ia[d]])
                fb = np.float64(fric[u + ib[d]])
                if not (fa < np.inf and fb < np.inf):
                    continue
                new = cu + fr[d] * ((fu + fv) + (fa + fb))
            if new > max_cost:
                continue
            code = d ^ 4  # the opposite direction: 0-7 and 8-15 are both clockwise rings of eight
            old = cost[v]
            if new < old or (new == old and (au < alloc[v] or (au == alloc[v] and code < back[v]))):
                cost[v] = new
                alloc[v] = au
                back[v] = code
                hp, n = _heap_push(hp, n, new, float(v))


# --- the bucket-queue kernel ----------------------------------------------------------------------------
_BLOCK = 64  # entries per pool block of a bucket
# Bucket numbers stay below 2**45 so that rounding (relative 2**-53 per operation) can never move a cost by a
# whole bucket; beyond that (absurd cost / friction ratios) the heap kernel takes over.
_Q_LIMIT = 2**45
_MAX_SLOTS = 2**20


@njit(nogil=True, cache=True, inline="always")
def _bq_push(pool, nxt, head, fill, free, slot, v):
    """Push cell v on bucket `slot` (a LIFO list of 64-entry blocks from a shared pool). Returns pool, nxt, free."""
    b = head[slot]
    if b < 0 or fill[slot] == _BLOCK:
        if free < 0:  # grow the pool: blocks nblk .. 2*nblk-1 become the free list
            nblk = nxt.size
            p2 = np.empty(2 * pool.size, pool.dtype)
            p2[: pool.size] = pool
            pool = p2
            n2 = np.empty(2 * nblk, np.int32)
            n2[:nblk] = nxt
            for i in range(nblk, 2 * nblk - 1):
                n2[i] = i + 1
            n2[2 * nblk - 1] = -1
            nxt = n2
            free = nblk
        nb = free
        free = nxt[nb]
        nxt[nb] = b
        head[slot] = nb
        fill[slot] = 0
        b = nb
    pool[b * _BLOCK + fill[slot]] = v
    fill[slot] += 1
    return pool, nxt, free


@njit(nogil=True, cache=True)
def _dijkstra_buckets(fric, fac, uniform, offs, ia, ib, nb, w, cost, alloc, back, state, seeds_in, max_cost, delta,
                      nslots):
    """Same contract as :func:`_dijkstra`, with a bucket queue instead of a heap (Dinitz 1978).

    Bucket ``q`` holds the cells whose tentative cost lies in ``[q·δ, (q+1)·δ)`` (computed as
    ``int(cost / δ)``), with ``δ`` at most half the smallest possible move cost. A cell in the lowest
    non-empty bucket is final: any path that could still improve it leaves a cell of this or a later bucket
    and adds a move worth ≥ 2δ, so it lands at least one bucket later. Within a bucket the order is therefore
    irrelevant and no heap is needed; every cell ends with the same (cost, alloc, code) as in the heap kernel
    because each cell is still relaxed by all its neighbours of lower cost before it is settled (a neighbour
    offering the same cost lies at least one bucket lower). Rounding: every float64 operation errs by at most
    2⁻⁵³ relative, so while bucket numbers stay below ``_Q_LIMIT`` = 2⁴⁵ rounding shifts a computed bucket
    number by less than 0.02 and a move of ≥ 2δ still lands at least one bucket later (the caller checks that
    bound before choosing this kernel). The ring has ``nslots`` (a power of two) ≥ max move / δ + 4 slots, so pending
    costs never wrap onto the current slot. Returns False if an invariant was ever violated (the bound
    excludes it; the caller raises rather than return a wrong answer). Seeds enter the ring when their bucket
    becomes current, so a tile's halo may hold costs far apart.
    """
    inv = 1.0 / delta
    mask = nslots - 1
    ns = 0
    for i in seeds_in:
        ci = cost[i]
        if ci < np.inf and ci <= max_cost:
            ns += 1
    seeds = np.empty(ns, np.int64)
    skey = np.empty(ns, np.float64)
    j = 0
    for i in seeds_in:
        ci = cost[i]
        if ci < np.inf and ci <= max_cost:
            seeds[j] = i
            skey[j] = ci
            j += 1
    order = np.argsort(skey, kind="mergesort")
    head = np.full(nslots, -1, np.int32)
    fill = np.zeros(nslots, np.int32)
    nblk = 256
    pool = np.empty(nblk * _BLOCK, np.int64)
    nxt = np.empty(nblk, np.int32)
    for i in range(nblk - 1):
        nxt[i] = i + 1
    nxt[nblk - 1] = -1
    free = 0
    f0 = fac[0]
    count = 0  # entries in the ring (stale ones included)
    si = 0
    q = np.int64(0)
    if ns > 0:
        q = np.int64(skey[order[0]] * inv)
    while True:
        while si < ns:  # seeds enter when their bucket becomes current
            s_i = seeds[order[si]]
            qs = np.int64(cost[s_i] * inv)
            if qs > q:
                break
            pool, nxt, free = _bq_push(pool, nxt, head, fill, free, q & mask, s_i)
            count += 1
            si += 1
        slot = q & mask
        while head[slot] >= 0:
            b = head[slot]
            fill[slot] -= 1
            u = pool[b * _BLOCK + fill[slot]]
            if fill[slot] == 0:
                head[slot] = nxt[b]
                nxt[b] = free
                free = b
                fill[slot] = _BLOCK
            count -= 1
            s = state[u]
            if s == 1 or s == 3:
                continue
            state[u] = 1 if s == 0 else 3
            cu = cost[u]
            fu = np.float64(fric[u])
            au = alloc[u]
            fr = f0 if uniform else fac[u // w]
            for d in range(nb):
                v = u + offs[d]
                if state[v] != 0:
                    continue
                fv = np.float64(fric[v])
                if not (fv < np.inf):  # NaN or +inf: barrier
                    continue
                if d < 8:
                    new = cu + fr[d] * (fu + fv)
                else:
                    fa = np.float64(fric[u + ia[d]])
                    fb = np.float64(fric[u + ib[d]])
                    if not (fa < np.inf and fb < np.inf):
                        continue
                    new = cu + fr[d] * ((fu + fv) + (fa + fb))
                if new > max_cost:
                    continue
                code = d ^ 4
                old = cost[v]
                if new < old or (new == old and (au < alloc[v] or (au == alloc[v] and code < back[v]))):
                    qn = np.int64(new * inv)
                    if qn <= q or qn - q >= nslots:  # impossible while q < _Q_LIMIT (see the docstring)
                        return False
                    cost[v] = new
                    alloc[v] = au
                    back[v] = code
                    pool, nxt, free = _bq_push(pool, nxt, head, fill, free, qn & mask, v)
                    count += 1
        if count == 0:
            if si >= ns:
                break
            q = np.int64(cost[seeds[order[si]]] * inv)
        else:
            q += 1
        if q >= _Q_LIMIT:
            return False
    return True


@njit(nogil=True, cache=True)
def _count_bad_friction(fric):
    """Number of cells with friction <= 0 or -inf (NaN and +inf are barriers, allowed), and the first one."""
    n = 0
    first = 0.0
    for v in fric.ravel():
        if v <= 0.0:
            if n == 0:
                first = v
            n += 1
    return n, first


def _check_friction(fric: np.ndarray) -> None:
    n, first = _count_bad_friction(fric)
    if n:
        raise InputDataError(
            f"friction_min_per_m has {n} cells <= 0 (e.g. {first}); friction must be > 0 minutes per metre "
            "(NaN or +inf mark barriers)"
        )


# --- step lengths -----------------------------------------------------------------------------------------
def _move_factors(dx_rows: np.ndarray, dy_rows: np.ndarray, pad: int) -> np.ndarray:
    """(H + 2·pad, 16) move factors for global rows ``-pad .. H+pad-1``: L/2 (codes 0-7) or L/4 (knights).

    Row ``p`` of the table describes moves *leaving* a cell of global row ``p - pad`` towards the neighbour at
    offset ``(DR[d], DC[d])``. Everything is computed
    from the lower of the two rows, so a move and its reverse get bit-identical lengths, and a tile's slice
    equals the single-array table bit for bit. Rows beyond the grid repeat the edge sizes (never used: cells
    outside the grid are barriers).
    """
    h = dx_rows.size
    e = pad + 2
    dxp = np.pad(np.asarray(dx_rows, np.float64), e, mode="edge")
    dyp = np.pad(np.asarray(dy_rows, np.float64), e, mode="edge")
    q = np.arange(h + 2 * pad) + (e - pad)  # index into dxp of each table row
    out = np.empty((q.size, 16), np.float64)
    for d in range(16):
        r_off, c_off = int(DR[d]), int(DC[d])
        lo = np.minimum(q, q + r_off)
        if r_off == 0:
            length = dxp[q] * 1.0
        elif abs(r_off) == 1:
            v = (dyp[lo] + dyp[lo + 1]) / 2.0
            wdt = (dxp[lo] + dxp[lo + 1]) / 2.0
            if c_off == 0:
                length = v
            else:
                wdt = wdt * abs(c_off)
                length = np.sqrt(v * v + wdt * wdt)
        else:
            v = (dyp[lo] / 2.0 + dyp[lo + 1]) + dyp[lo + 2] / 2.0
            wdt = (dxp[lo] + dxp[lo + 2]) / 2.0
            length = np.sqrt(v * v + wdt * wdt)
        out[:, d] = length * (0.5 if d < 8 else 0.25)
    return out


def _cell_sizes(shape: tuple[int, int], grid: Grid | None, cell_size_m) -> tuple[np.ndarray, np.ndarray]:
    h, w = shape
    if (grid is None) == (cell_size_m is None):
        raise ConfigError("travel_time needs exactly one of grid= or cell_size_m= (metres, or (dx, dy))")
    if grid is not None:
        if grid.shape != (h, w):
            raise ConfigError(f"friction shape {(h, w)} does not match the grid {grid.shape}")
        dx, dy = grid.cell_size_m_rows()
    else:
        if np.ndim(cell_size_m) == 0:
            dx = dy = float(cell_size_m)
        else:
            if len(cell_size_m) != 2:
                raise ConfigError(f"cell_size_m must be a number or (dx, dy) in metres, got {cell_size_m!r}")
            dx, dy = cell_size_m
        dx = np.broadcast_to(np.asarray(dx, np.float64), (h,)).copy()
        dy = np.broadcast_to(np.asarray(dy, np.float64), (h,)).copy()
    dx = np.ascontiguousarray(dx, np.float64)
    dy = np.ascontiguousarray(dy, np.float64)
    if not (np.all(np.isfinite(dx)) and np.all(np.isfinite(dy)) and np.all(dx > 0) and np.all(dy > 0)):
        raise ConfigError(f"cell sizes must be positive metres, got dx={dx[:3]}..., dy={dy[:3]}...")
    return dx, dy


def _destinations(destinations, shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, cols and indices of the destinations inside the grid."""
    rc = np.asarray(destinations)
    if rc.ndim != 2 or rc.shape[1] != 2 or rc.shape[0] == 0:
        raise ConfigError(f"destinations must be a non-empty sequence of (row, col) cells, got shape {rc.shape}")
    if not np.issubdtype(rc.dtype, np.integer):
        if not np.all(np.isfinite(rc)) or np.any(rc != np.round(rc)):
            raise ConfigError("destinations must be integer (row, col) cell indices")
        rc = rc.astype(np.int64)
    rc = rc.astype(np.int64)
    ids = np.arange(rc.shape[0], dtype=np.int32)
    inside = (rc[:, 0] >= 0) & (rc[:, 0] < shape[0]) & (rc[:, 1] >= 0) & (rc[:, 1] < shape[1])
    if not inside.any():
        raise InputDataError(
            f"none of the {rc.shape[0]} destinations lies inside the {shape[0]} x {shape[1]} grid "
            f"(first: row {rc[0, 0]}, col {rc[0, 1]})"
        )
    return rc[inside, 0], rc[inside, 1], ids[inside]


def _no_passable_source(n: int) -> InputDataError:
    return InputDataError(
        f"all {n} destinations inside the grid lie on barriers (friction NaN or inf); nothing can be reached"
    )


# --- running the kernel on a region -----------------------------------------------------------------------
class _Work:
    """Work arrays of one solved region, kept between border-exchange rounds for incremental updates.

    The work grid is the region (for a tile: the tile plus its halo ring of width ``ring``) surrounded by a
    border of ``k`` barrier cells, so the kernel needs no bounds checks.
    """

    __slots__ = ("alloc", "back", "cost", "delta", "fac", "fric", "k", "n_ok", "nb", "nslots", "ring")

    def __init__(self, fric, cost, alloc, back, fac, nb, k, ring, n_ok):
        self.fric, self.cost, self.alloc, self.back = fric, cost, alloc, back
        self.fac, self.nb, self.k, self.ring, self.n_ok = fac, nb, k, ring, n_ok
        self.delta, self.nslots = _bucket_width(fric, fac, nb)

    @property
    def nbytes(self) -> int:
        return self.fric.nbytes + self.cost.nbytes + self.alloc.nbytes + self.back.nbytes + self.fac.nbytes

    def region(self, a):
        """View of a work array without the barrier border."""
        k = self.k
        return a[k:-k, k:-k]

    def run(self, seeds, max_cost):
        """Run Dijkstra from ``seeds`` (flat work-grid indices) in place; ring cells stay fixed."""
        hw, ww = self.fric.shape
        k, ring = self.k, self.ring
        state = np.zeros((hw, ww), np.uint8)
        if ring:
            state[k:-k, k:-k] = 2
            state[k + ring : -k - ring, k + ring : -k - ring] = 0
        args = (self.fric.ravel(), self.fac, bool(np.all(self.fac == self.fac[0])), DR * ww + DC,
                _IAR * ww + _IAC, _IBR * ww + _IBC, self.nb, ww, self.cost.ravel(), self.alloc.ravel(),
                self.back.ravel(), state.ravel(), seeds)
        if self.nslots and self._bucket_keys_fit(seeds, max_cost):
            if not _dijkstra_buckets(*args, max_cost, self.delta, self.nslots):
                raise RuntimeError("rasters.cost: bucket-queue invariant broken (a bug; please report it)")
        else:
            _dijkstra(*args, max_cost)

    def _bucket_keys_fit(self, seeds, max_cost) -> bool:
        # Every cost the kernel can reach is at most the largest seed plus one maximal move per cell.
        if seeds.size == 0:
            return True
        c = self.cost.ravel()[seeds]
        c = c[c <= max_cost]
        top = float(c.max()) if c.size else 0.0
        reach = top + self.fric.size * self.delta * (self.nslots + 1.0)
        return min(reach, max_cost) / self.delta < _Q_LIMIT / 2

    def update(self, halo, max_cost) -> bool:
        """Lower the ring to a new halo and propagate only the improvements; False if a halo cell got worse.

        The labels of an exact solve are monotone in the halo, and with a lexicographically lower halo the new
        solution is, cell by cell, the least of the old label and the candidates offered by neighbours that
        improved; Dijkstra seeded with the improved ring cells alone visits exactly those cells, so the result
        is identical to solving the tile from scratch with the new halo.
        """
        k, ring = self.k, self.ring
        cost, alloc = self.region(self.cost), self.region(self.alloc)
        h, w = cost.shape
        ww = self.fric.shape[1]
        seeds = []
        for (r0, c0), (nc, na) in zip(((0, 0), (h - ring, 0), (ring, 0), (ring, w - ring)), halo, strict=True):
            sh, sw = nc.shape
            oc = cost[r0 : r0 + sh, c0 : c0 + sw]
            oa = alloc[r0 : r0 + sh, c0 : c0 + sw]
            eq = nc == oc
            if np.any((nc > oc) | (eq & (na > oa))):
                return False
            better = (nc < oc) | (eq & (na < oa))
            if better.any():
                rr, cc = np.nonzero(better)
                seeds.append((rr + r0 + k) * ww + (cc + c0 + k))
                oc[better] = nc[better]
                oa[better] = na[better]
        if seeds:
            self.run(np.concatenate(seeds).astype(np.int64), max_cost)
        return True


def _solve(region, fac, nb, rows, cols, ids, max_cost, k, ring, halo=None) -> _Work:
    """Solve a region from scratch: the grid itself (``ring = 0``) or a tile with its halo ring (``ring = k``).

    ``region`` float32 or float64 friction (float32 is widened exactly inside the kernel); ``fac`` the move
    factors of the region's rows plus ``k`` rows either side; ``rows``/``cols`` region coordinates of the
    destinations; ``halo`` the ring's (cost, alloc) strips, fixed seeds. Returns the :class:`_Work` arrays
    (float64 cost, int32 alloc, uint8 back) and, in ``n_ok``, the number of destinations actually seeded.
    """
    h, w = region.shape
    hw, ww = h + 2 * k, w + 2 * k
    fric = np.full((hw, ww), np.nan, region.dtype)
    fric[k : k + h, k : k + w] = region
    cost = np.full((hw, ww), np.inf)
    alloc = np.full((hw, ww), -1, np.int32)
    back = np.full((hw, ww), NO_LINK, np.uint8)
    seeds = []
    if halo is not None:
        _put_halo(cost[k : k + h, k : k + w], alloc[k : k + h, k : k + w], halo, ring)
        ring_mask = np.ones((h, w), bool)
        ring_mask[ring:-ring, ring:-ring] = False
        rr, cc = np.nonzero(ring_mask & np.isfinite(cost[k : k + h, k : k + w]))
        seeds.append((rr + k) * ww + (cc + k))
    ok = np.isfinite(region[rows, cols]) if rows.size else np.zeros(0, bool)
    # Several destinations in one cell: the lowest index wins (the tie rule), so write them in reverse order.
    order = np.argsort(ids[ok], kind="stable")[::-1]
    r_ok, c_ok, i_ok = rows[ok][order] + k, cols[ok][order] + k, ids[ok][order]
    cost[r_ok, c_ok] = 0.0
    alloc[r_ok, c_ok] = i_ok
    back[r_ok, c_ok] = SOURCE
    seeds.append(r_ok * ww + c_ok)
    work = _Work(fric, cost, alloc, back, fac, nb, k, ring, int(ok.sum()))
    work.run(np.concatenate(seeds).astype(np.int64), max_cost)
    return work


@njit(nogil=True, cache=True)
def _finite_range(fric):
    lo = np.inf
    hi = 0.0
    for v in fric.ravel():
        if v < np.inf:  # not NaN, not +inf
            if v < lo:
                lo = v
            if v > hi:
                hi = v
    return lo, hi


def _bucket_width(fric, fac, nb):
    """Bucket width δ (half the least possible move cost) and ring size for :func:`_dijkstra_buckets`.

    Every move costs at least ``L_min · f_min`` (two half-steps of ≥ f_min, or four quarter-steps) and at most
    ``L_max · f_max``. Returns ``(δ, 0)`` when the ring would need more than ``_MAX_SLOTS`` slots (a friction
    range over ~10⁵ to 1): the heap kernel is used instead.
    """
    f_lo, f_hi = _finite_range(fric)
    if not (0.0 < f_lo <= f_hi < np.inf):
        return 1.0, 0
    steps = 2.0 * fac[:, :8] if nb == 8 else np.concatenate([2.0 * fac[:, :8], 4.0 * fac[:, 8:]], axis=1)
    delta = float(steps.min()) * float(f_lo) / 2.0
    if not (delta > 0.0 and np.isfinite(1.0 / delta)):
        return 1.0, 0
    span = float(steps.max()) * float(f_hi) / delta + 4.0
    if not span < _MAX_SLOTS:
        return delta, 0
    return delta, 1 << int(np.ceil(np.log2(span)))


def _finish(cost, alloc, back):
    unreached = ~np.isfinite(cost)
    minutes = cost.astype(np.float32)
    minutes[unreached] = np.nan
    alloc[unreached] = -1
    back[unreached] = NO_LINK
    return minutes, alloc, back


# --- tiles ------------------------------------------------------------------------------------------------
def _put_halo(cost, alloc, halo, k):
    """Write the halo ring (top, bottom, left, right strips of cost and alloc) around a padded tile."""
    (tc, ta), (bc, ba), (lc, la), (rc, ra) = halo
    cost[:k, :], alloc[:k, :] = tc, ta
    cost[-k:, :], alloc[-k:, :] = bc, ba
    cost[k:-k, :k], alloc[k:-k, :k] = lc, la
    cost[k:-k, -k:], alloc[k:-k, -k:] = rc, ra


def _tile_strips(cost, alloc, k):
    """The tile's own outer k rows/cols (top, bottom, left, right) of cost and alloc, from the padded arrays."""
    inner_c = cost[k:-k, k:-k]
    inner_a = alloc[k:-k, k:-k]
    return (
        (inner_c[:k].copy(), inner_a[:k].copy()),
        (inner_c[-k:].copy(), inner_a[-k:].copy()),
        (inner_c[:, :k].copy(), inner_a[:, :k].copy()),
        (inner_c[:, -k:].copy(), inner_a[:, -k:].copy()),
    )


class _TileStates:
    """Process-local store of tile work arrays between rounds, least recently used first out, bounded in bytes.

    Only an accelerator: a task whose tile is not here (evicted, another worker process, a retried task)
    solves the tile from scratch from its halo, which gives the same numbers.

    States of a run (token) untouched for ``TILE_STATE_IDLE_S`` are dropped at the next ``put``: on a long-lived
    cluster a worker otherwise kept a finished run's leftovers (tiles whose final pass ran on another worker) until
    evicted by a later run, up to the whole budget.
    """

    def __init__(self):
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._last_used: dict[str, float] = {}
        self.nbytes = 0

    def pop(self, key):
        with self._lock:
            self._last_used[key[0]] = time.monotonic()
            work = self._items.pop(key, None)
            if work is not None:
                self.nbytes -= work.nbytes
            return work

    def put(self, key, work) -> None:
        size = work.nbytes
        with self._lock:
            now = time.monotonic()
            self._last_used[key[0]] = now
            idle = [t for t, last in self._last_used.items() if now - last > TILE_STATE_IDLE_S]
            if idle:
                self._drop(set(idle))
            if size > TILE_STATE_BUDGET_BYTES:
                return
            while self._items and self.nbytes + size > TILE_STATE_BUDGET_BYTES:
                _, old = self._items.popitem(last=False)
                self.nbytes -= old.nbytes
            self._items[key] = work
            self.nbytes += size

    def _drop(self, tokens: set) -> None:
        for key in [key for key in self._items if key[0] in tokens]:
            self.nbytes -= self._items.pop(key).nbytes
        for t in tokens:
            self._last_used.pop(t, None)

    def drop_run(self, token) -> None:
        with self._lock:
            self._drop({token})


#: Bytes of tile work arrays (about 17-21 bytes a cell) the tiled solver may keep between border-exchange
#: rounds in one process. Tiles beyond it are re-solved from scratch when their halo changes (same result).
TILE_STATE_BUDGET_BYTES = 1 << 30
#: Bytes of padded friction (its tiles with their halos) the tiled solver computes once and holds for the
#: border-exchange rounds; a larger friction is recomputed in each round (see the module docstring).
FRICTION_HOLD_BYTES = 512 * 2**20
#: Seconds after which a run's tile states, not touched since, are dropped (the longest gap between two rounds of
#: one run is one round's solves: minutes at 30 m).
TILE_STATE_IDLE_S = 1800.0
_STATES = _TileStates()
#: Tokens of the travel-time runs started in this process whose tile states may still sit in workers' stores
#: (the final pass frees a tile's state only where it runs); see :func:`take_run_tokens`.
_RUN_TOKENS: list[str] = []


def take_run_tokens() -> list[str]:
    """The tokens of travel-time runs started in this process since the last call (and forget them)."""
    tokens = list(_RUN_TOKENS)
    _RUN_TOKENS.clear()
    return tokens


def release_tile_states(tokens: list[str]) -> int:
    """Drop the tile states of the runs ``tokens`` from this process's store; returns the bytes freed.

    Run on every worker of a long-lived cluster when the outputs that read them are written
    (``pipelines.compute`` does), so the workers do not hold a finished run's states until the idle timeout.
    """
    before = _STATES.nbytes
    for token in tokens:
        _STATES.drop_run(token)
    return before - _STATES.nbytes


def _tile_task(token, key, fric_padded, fac, nb, rows, cols, ids, max_cost, k, halo, full):
    """Bring one tile up to date with ``halo`` (a dask task: plain arrays, numbers and a run token only).

    Uses the tile's work arrays from the previous round when this process still holds them (an incremental
    update from the improved halo cells), else solves the tile from scratch. Returns the tile's border strips
    and seeded-destination count, or (``full``) its final minutes, allocation and back-links.
    """
    work = _STATES.pop((token, key))
    if work is None or not work.update(halo, max_cost):
        fric = np.asarray(fric_padded)
        if fric.dtype not in (np.float32, np.float64):
            fric = fric.astype(np.float64)
        _check_friction(fric)
        work = _solve(fric, fac, nb, rows + k, cols + k, ids, max_cost, k, k, halo)
    cost, alloc, back = work.region(work.cost), work.region(work.alloc), work.region(work.back)
    if full:
        return _finish(cost[k:-k, k:-k], alloc[k:-k, k:-k].copy(), back[k:-k, k:-k].copy())
    strips = _tile_strips(cost, alloc, k)
    _STATES.put((token, key), work)
    return strips, work.n_ok


def _empty_strips(h, w, k):
    def s(a, b):
        return np.full((a, b), np.inf), np.full((a, b), -1, np.int32)

    return (s(k, w), s(k, w), s(h, k), s(h, k))


def _normalise_chunks(chunks: tuple[int, ...], k: int) -> tuple[int, ...]:
    """Merge chunks narrower than the halo into their neighbour (a halo must come from one adjacent tile)."""
    out = list(chunks)
    i = 0
    while i < len(out):
        if out[i] < k and len(out) > 1:
            j = i - 1 if i > 0 else i + 1
            out[j] += out[i]
            del out[i]
            i = 0
        else:
            i += 1
    return tuple(out)


def _travel_time_tiled(friction: da.Array, dx, dy, rows, cols, ids, nb, max_cost) -> CostResult:
    k = 1 if nb == 8 else 2
    rch = _normalise_chunks(friction.chunks[0], k)
    cch = _normalise_chunks(friction.chunks[1], k)
    if (rch, cch) != friction.chunks:
        friction = friction.rechunk((rch, cch))
    ni, nj = len(rch), len(cch)
    r_off = np.concatenate([[0], np.cumsum(rch)])
    c_off = np.concatenate([[0], np.cumsum(cch)])
    fac = _move_factors(dx, dy, 2 * k)  # a tile's work grid: its halo ring plus a barrier border
    padded = da.overlap.overlap(friction, depth={0: k, 1: k}, boundary={0: np.nan, 1: np.nan})
    # The final pass keeps the friction's keys (not optimized here): optimized on its own, the friction graph gets
    # renamed keys, and the output pass computed the slope and DEM blocks under it once more beside the slope layer.
    blocks = padded.to_delayed(optimize_graph=False)
    if padded.nbytes <= FRICTION_HOLD_BYTES:
        (held,) = dask.persist(padded)
        round_blocks = held.to_delayed()
    else:
        round_blocks = padded.to_delayed()

    # Destinations bucketed by tile, in tile-local coordinates.
    ti = np.searchsorted(r_off, rows, side="right") - 1
    tj = np.searchsorted(c_off, cols, side="right") - 1
    src = {}
    for i in range(ni):
        for j in range(nj):
            m = (ti == i) & (tj == j)
            src[i, j] = (rows[m] - r_off[i], cols[m] - c_off[j], ids[m])
    fac_of = {i: fac[r_off[i] : r_off[i + 1] + 4 * k] for i in range(ni)}

    strips = {}  # (i, j) -> latest strips of a solved tile

    def strip(i, j, side):
        if 0 <= i < ni and 0 <= j < nj:
            if (i, j) in strips:
                return strips[i, j][side]
            return _empty_strips(rch[i], cch[j], k)[side]
        return None

    def halo(i, j):
        h, w = rch[i], cch[j]
        inf_c = np.inf
        top_c = np.full((k, w + 2 * k), inf_c)
        top_a = np.full((k, w + 2 * k), -1, np.int32)
        bot_c = top_c.copy()
        bot_a = top_a.copy()
        for dj, sl in ((-1, slice(0, k)), (0, slice(k, k + w)), (1, slice(k + w, w + 2 * k))):
            for di, (tc, ta), side in ((-1, (top_c, top_a), 1), (1, (bot_c, bot_a), 0)):
                s = strip(i + di, j + dj, side)
                if s is None:
                    continue
                sc, sa = s
                if dj == -1:
                    sc, sa = sc[:, -k:], sa[:, -k:]
                elif dj == 1:
                    sc, sa = sc[:, :k], sa[:, :k]
                tc[:, sl], ta[:, sl] = sc, sa
        left = strip(i, j - 1, 3) or (np.full((h, k), inf_c), np.full((h, k), -1, np.int32))
        right = strip(i, j + 1, 2) or (np.full((h, k), inf_c), np.full((h, k), -1, np.int32))
        return ((top_c, top_a), (bot_c, bot_a), left, right)

    def same(h1, h2):
        return all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(h1, h2, strict=True))

    token = uuid.uuid4().hex  # names this run's tile states in _STATES
    _RUN_TOKENS.append(token)
    used = {}
    active = sorted(key for key, s in src.items() if s[0].size)
    rounds = solves = 0
    n_seeded = 0
    while active:
        rounds += 1
        halos = {key: halo(*key) for key in active}
        tasks = [
            dask.delayed(_tile_task, pure=True)(
                token, (i, j), round_blocks[i, j], fac_of[i], nb, *src[i, j], max_cost, k, halos[i, j], False
            )
            for i, j in active
        ]
        try:
            results = dask.compute(*tasks)
        except BaseException:
            _STATES.drop_run(token)
            raise
        del tasks  # with the held friction: nothing refers to it once the rounds end
        solves += len(active)
        for key, (s, n_ok) in zip(active, results, strict=True):
            strips[key] = s
            used[key] = halos[key]
            if rounds == 1:
                n_seeded += n_ok
        if rounds == 1 and n_seeded == 0:
            _STATES.drop_run(token)
            raise _no_passable_source(rows.size)
        touched = {(i + a, j + b) for i, j in active for a in (-1, 0, 1) for b in (-1, 0, 1)}
        nxt = []
        for i, j in sorted(touched):
            if not (0 <= i < ni and 0 <= j < nj):
                continue
            hnew = halo(i, j)
            if (i, j) in used:
                if not same(hnew, used[i, j]):
                    nxt.append((i, j))
            elif any(np.isfinite(part[0]).any() for part in hnew):
                nxt.append((i, j))
        active = nxt
    round_blocks = held = None  # the held friction is released (on a cluster: its workers drop it)

    # Lazy outputs: each block solved once more from its converged halo.
    out_min, out_alloc, out_back = [], [], []
    for i in range(ni):
        rm, ra, rb = [], [], []
        for j in range(nj):
            h, w = rch[i], cch[j]
            t = dask.delayed(_tile_task, pure=True, nout=3)(
                token, (i, j), blocks[i, j], fac_of[i], nb, *src[i, j], max_cost, k, halo(i, j), True
            )
            rm.append(da.from_delayed(t[0], (h, w), dtype=np.float32))
            ra.append(da.from_delayed(t[1], (h, w), dtype=np.int32))
            rb.append(da.from_delayed(t[2], (h, w), dtype=np.uint8))
        out_min.append(rm)
        out_alloc.append(ra)
        out_back.append(rb)
    return CostResult(da.block(out_min), da.block(out_alloc), da.block(out_back), rounds, solves)


# --- public API -------------------------------------------------------------------------------------------
def travel_time(
    friction_min_per_m,
    destinations: Sequence[tuple[int, int]] | np.ndarray,
    *,
    grid: Grid | None = None,
    cell_size_m: float | tuple[float, float] | None = None,
    neighbours: int = 8,
    max_minutes: float | None = None,
) -> CostResult:
    """Least accumulated travel time (minutes) from every cell to the nearest of ``destinations``.

    Args:
        friction_min_per_m: 2-D friction (minutes per metre; NaN/+inf = barrier), numpy (solved in one run of
            the kernel) or dask (solved tile by tile, lazily returned; see the module docstring).
        destinations: ``(row, col)`` cells; allocation values are indices into this sequence.
        grid: the analysis grid (cell sizes in metres per row, also for geographic grids), or
        cell_size_m: cell size in metres, a number or ``(dx, dy)``.
        neighbours: 8 (MCP_Geometric convention) or 16 (adds GRASS r.cost -k knight moves).
        max_minutes: cells costing more become NaN, and the search stops there.

    Returns:
        :class:`CostResult` (minutes float32, allocation int32, backlink uint8, rounds, tile_solves).

    Raises:
        ConfigError: bad parameters (neighbours, max_minutes, cell sizes, shapes, destination format).
        InputDataError: friction ≤ 0 somewhere, no destination inside the grid, or all on barriers.
    """
    if neighbours not in (8, 16):
        raise ConfigError(f"neighbours must be 8 or 16, got {neighbours}")
    if max_minutes is None:
        max_cost = np.inf
    else:
        max_cost = float(max_minutes)
        if not max_cost > 0:
            raise ConfigError(f"max_minutes must be > 0, got {max_minutes}")
    is_dask = isinstance(friction_min_per_m, da.Array)
    arr = friction_min_per_m if is_dask else np.asarray(friction_min_per_m)
    if arr.ndim != 2:
        raise ConfigError(f"friction_min_per_m must be a 2-D array, got shape {arr.shape}")
    dx, dy = _cell_sizes(arr.shape, grid, cell_size_m)
    rows, cols, ids = _destinations(destinations, arr.shape)
    if is_dask:
        return _travel_time_tiled(arr, dx, dy, rows, cols, ids, neighbours, max_cost)
    fric = arr if arr.dtype in (np.float32, np.float64) else arr.astype(np.float64)
    _check_friction(fric)
    k = 1 if neighbours == 8 else 2
    fac = _move_factors(dx, dy, k)
    work = _solve(fric, fac, neighbours, rows, cols, ids, max_cost, k, 0)
    if work.n_ok == 0:
        raise _no_passable_source(rows.size)
    minutes, alloc, back = _finish(work.region(work.cost), work.region(work.alloc), work.region(work.back))
    return CostResult(minutes, alloc, back, 1, 1)


# --- paths ------------------------------------------------------------------------------------------------
class _BlockReader:
    """Reads single cells of a numpy or dask array, computing (and caching) one dask block at a time."""

    def __init__(self, arr):
        self.arr = arr
        self.is_dask = isinstance(arr, da.Array)
        if self.is_dask:
            self.r_off = np.cumsum((0,) + arr.chunks[0])
            self.c_off = np.cumsum((0,) + arr.chunks[1])
            self.cache: dict = {}

    def __getitem__(self, rc):
        r, c = rc
        if not self.is_dask:
            return self.arr[r, c]
        i = int(np.searchsorted(self.r_off, r, side="right") - 1)
        j = int(np.searchsorted(self.c_off, c, side="right") - 1)
        if (i, j) not in self.cache:
            if len(self.cache) > 8:
                self.cache.clear()
            self.cache[i, j] = np.asarray(self.arr.blocks[i, j].compute())
        return self.cache[i, j][r - self.r_off[i], c - self.c_off[j]]


def least_cost_path(backlink, start_rc: tuple[int, int]) -> list[tuple[int, int]]:
    """Cells of the least-cost path from ``start_rc`` to its destination, following the back-links.

    Returns ``[(row, col), ...]`` starting at ``start_rc`` and ending at a destination cell (a single cell if
    ``start_rc`` is a destination). Works on numpy or dask back-link arrays (dask blocks are computed one at
    a time as the path enters them).

    Raises:
        ConfigError: ``start_rc`` outside the array.
        InputDataError: the start cell was not reached (NaN travel time), or the back-links are corrupt.
    """
    shape = backlink.shape
    r, c = int(start_rc[0]), int(start_rc[1])
    if not (0 <= r < shape[0] and 0 <= c < shape[1]):
        raise ConfigError(f"path start {start_rc} lies outside the {shape[0]} x {shape[1]} grid")
    reader = _BlockReader(backlink)
    path = [(r, c)]
    for _ in range(shape[0] * shape[1]):
        code = int(reader[r, c])
        if code == SOURCE:
            return path
        if code == NO_LINK or code > 15:
            if len(path) == 1:
                raise InputDataError(f"cell {start_rc} was not reached from any destination; it has no path")
            raise InputDataError(f"back-link chain from {start_rc} breaks at {(r, c)} (code {code})")
        r, c = r + int(DR[code]), c + int(DC[code])
        if not (0 <= r < shape[0] and 0 <= c < shape[1]):
            raise InputDataError(f"back-link chain from {start_rc} leaves the grid at {(r, c)}")
        path.append((r, c))
    raise InputDataError(f"back-link chain from {start_rc} loops; the back-link array is not from travel_time")


def path_xy(path: Sequence[tuple[int, int]], grid: Grid) -> np.ndarray:
    """(n, 2) array of the grid-CRS coordinates (x, y) of the path's cell centres."""
    rc = np.asarray(path, dtype=np.int64).reshape(-1, 2)
    x, y = grid.xy_of_cells(rc[:, 0], rc[:, 1])
    return np.column_stack([x, y])
