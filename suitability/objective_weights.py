"""Objective (data-driven) criterion weights: Shannon entropy (熵权法) and CRITIC, on a seeded sample of cells.

Both methods look only at how the criteria vary over the study area, not at what anyone thinks of them. They work
on a decision matrix X of m alternatives (rows) by n criteria (columns). For rasters the alternatives are cells,
and ``sample_cells`` draws a deterministic, chunk-invariant random sample of valid cells to build X without
loading the layers.

Normalisation of X (``normalise``):

* ``"minmax"`` (default; the usual 熵权法 standardisation): benefit criteria ``x' = (x - min) / (max - min)``,
  cost criteria (listed in ``cost``) ``x' = (max - x) / (max - min)``. Transformed suitability scores are
  already "more is better", so for them ``cost`` is empty.
* ``"sum"`` (entropy only; Hwang & Yoon 1981, Zeleny 1982): ``p_ij = x_ij / sum_i x_ij`` on the raw values,
  which must be >= 0. Entropy measures dispersion, so the criterion's direction plays no role and ``cost`` must
  be empty.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np

from rasters.errors import ConfigError, did_you_mean
from suitability.weights import WeightSet

__all__ = ["critic", "critic_weights", "entropy", "entropy_weights", "sample_cells"]

_NORMALISATIONS = ("minmax", "sum")
_MERGE_FAN_IN = 8


# --- sampling --------------------------------------------------------------------------------------------------


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser (Steele, Lea & Flood 2014): a bijection on uint64 with good avalanche."""
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x += np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def _seed_key(seed: int) -> np.uint64:
    return _splitmix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]


def _block_sample(offset: tuple[int, int], width: int, seed_key: np.uint64, n: int, has_mask: bool,
                  *blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The n valid cells of one block with the smallest keys: (keys, flat indices, values[k, n_criteria])."""
    if has_mask:
        mask, blocks = np.asarray(blocks[0], dtype=bool), blocks[1:]
    stack = np.stack([np.asarray(b, dtype=np.float64) for b in blocks], axis=-1)
    valid = np.all(np.isfinite(stack), axis=-1)
    if has_mask:
        valid &= mask
    rows, cols = np.nonzero(valid)
    flat = (rows.astype(np.int64) + offset[0]) * width + (cols.astype(np.int64) + offset[1])
    # The key depends only on the cell's global position and the seed, so the sample is the same whatever the
    # chunking; keys are distinct because splitmix64 is a bijection.
    keys = _splitmix64(flat.astype(np.uint64) ^ seed_key)
    if keys.size > n:
        keep = np.argpartition(keys, n - 1)[:n]
        keys, flat, rows, cols = keys[keep], flat[keep], rows[keep], cols[keep]
    return keys, flat, stack[rows, cols]


def _merge(n: int, parts: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    keys = np.concatenate([p[0] for p in parts])
    flat = np.concatenate([p[1] for p in parts])
    values = np.concatenate([p[2] for p in parts])
    if keys.size > n:
        keep = np.argpartition(keys, n - 1)[:n]
        keys, flat, values = keys[keep], flat[keep], values[keep]
    return keys, flat, values


def _sample(layers: Sequence[Any], n: int, seed: int, where: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Seeded sample of up to n cells where every layer is finite (and ``where`` is true): (flat index, values)."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ConfigError(f"sample size must be an integer >= 1, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    arrays = list(layers) if where is None else [where, *layers]
    shapes = {tuple(np.shape(a)) for a in arrays}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ConfigError(f"sampling needs 2-D layers (and mask) of one shape, got {sorted(shapes)}")
    height, width = next(iter(shapes))
    key = _seed_key(int(seed))
    has_mask = where is not None
    if any(isinstance(a, da.Array) for a in arrays):
        first = next(a for a in arrays if isinstance(a, da.Array))
        chunks = first.chunks
        arrays = [a.rechunk(chunks) if isinstance(a, da.Array) else da.from_array(np.asarray(a), chunks=chunks)
                  for a in arrays]
        row_offsets = np.concatenate([[0], np.cumsum(chunks[0])[:-1]])
        col_offsets = np.concatenate([[0], np.cumsum(chunks[1])[:-1]])
        delayed_blocks = [a.to_delayed(optimize_graph=False) for a in arrays]
        tasks = []
        for bi, r0 in enumerate(row_offsets):
            for bj, c0 in enumerate(col_offsets):
                tasks.append(dask.delayed(_block_sample)((int(r0), int(c0)), width, key, int(n), has_mask,
                                                         *(d[bi, bj] for d in delayed_blocks)))
        # A tree of merges keeps at most fan-in * n rows in one task, however many blocks there are.
        while len(tasks) > 1:
            tasks = [dask.delayed(_merge)(int(n), tasks[i:i + _MERGE_FAN_IN])
                     for i in range(0, len(tasks), _MERGE_FAN_IN)]
        (result,) = dask.compute(tasks[0])
        keys, flat, values = result
    else:
        keys, flat, values = _block_sample((0, 0), width, key, int(n), has_mask, *(np.asarray(a) for a in arrays))
    order = np.argsort(flat, kind="stable")  # row-major order of the chosen cells
    return flat[order], values[order]


def sample_cells(layers: Mapping[str, Any], n: int, seed: int) -> np.ndarray:
    """A seeded random sample of up to ``n`` cells where every layer is finite, as an (n_samples, n_criteria)
    float64 matrix (columns in the order of ``layers``, rows in row-major cell order).

    Each cell gets a pseudo-random key from its global (row, column) and ``seed`` (SplitMix64), and the sample is
    the ``n`` valid cells with the smallest keys: a uniform sample without replacement, identical for numpy
    inputs and for dask inputs with any chunking. Dask layers are read block by block, once, and only the best
    ``n`` candidates of each block are kept, so memory stays near ``n`` rows per task. Fewer than ``n`` rows
    come back when fewer cells are valid.
    """
    if not isinstance(layers, Mapping) or not layers:
        raise ConfigError("sample_cells needs a non-empty mapping of criterion name to layer")
    _, values = _sample(list(layers.values()), n, seed)
    return values


# --- weighting methods on a decision matrix --------------------------------------------------------------------


def _matrix(matrix: Any, names: Sequence[str], cost: Sequence[str], who: str) -> tuple[np.ndarray, list[str],
                                                                                       set[str]]:
    x = np.asarray(matrix, dtype=np.float64)
    names = [str(n) for n in names]
    if x.ndim != 2 or x.shape[1] != len(names):
        raise ConfigError(f"{who}: decision matrix must be 2-D with one column per criterion ({len(names)}), "
                          f"got shape {x.shape}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{who}: criterion names must be unique, got {names}")
    if x.shape[0] < 2:
        raise ConfigError(f"{who}: needs at least 2 alternatives (sampled cells), got {x.shape[0]}")
    if not np.all(np.isfinite(x)):
        raise ConfigError(f"{who}: decision matrix must be finite (sample only valid cells)")
    cost_set = {str(c) for c in cost}
    for c in cost_set:
        if c not in names:
            raise ConfigError(f"{who}: cost criterion '{c}' is not one of the criteria{did_you_mean(c, names)}")
    return x, names, cost_set


def _minmax(x: np.ndarray, names: list[str], cost: set[str]) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = x.min(axis=0), x.max(axis=0)
    span = hi - lo
    constant = span == 0
    safe = np.where(constant, 1.0, span)
    out = (x - lo) / safe
    for j, name in enumerate(names):
        if name in cost:
            out[:, j] = (hi[j] - x[:, j]) / safe[j]
    out[:, constant] = 0.0
    return out, constant


def entropy_weights(matrix: Any, names: Sequence[str], *, normalise: str = "minmax",
                    cost: Sequence[str] = ()) -> WeightSet:
    """Entropy weights (Shannon entropy method; Hwang & Yoon 1981 §2.3, Zeleny 1982) of a decision matrix.

    With x' the normalised matrix (see the module docstring), ``p_ij = x'_ij / sum_i x'_ij``,
    ``e_j = -k sum_i p_ij ln p_ij`` with ``k = 1 / ln(m)`` and ``0 ln 0 = 0``, divergence ``d_j = 1 - e_j`` and
    ``w_j = d_j / sum_j d_j``. A criterion that does not vary (all x' equal or all zero) carries no information:
    e_j = 1, w_j = 0. If no criterion varies, ``ConfigError``. ``details`` hold ``entropy`` and ``divergence``.
    """
    if normalise not in _NORMALISATIONS:
        raise ConfigError(f"entropy: unknown normalise '{normalise}'{did_you_mean(str(normalise), _NORMALISATIONS)}")
    x, names, cost_set = _matrix(matrix, names, cost, "entropy")
    m = x.shape[0]
    if normalise == "sum":
        if cost_set:
            raise ConfigError("entropy: cost criteria need normalise 'minmax' (with 'sum' the direction of a "
                              "criterion plays no role in its entropy)")
        if np.any(x < 0):
            raise ConfigError("entropy: normalise 'sum' needs values >= 0; use 'minmax' for signed data")
        xn = x
    else:
        xn, _ = _minmax(x, names, cost_set)
    col = xn.sum(axis=0)
    dead = col <= 0
    p = xn / np.where(dead, 1.0, col)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(p > 0, p * np.log(p), 0.0)
    e = -plogp.sum(axis=0) / math.log(m)
    e[dead] = 1.0
    d = np.clip(1.0 - e, 0.0, None)  # e <= 1 in exact arithmetic; rounding may overshoot by an ulp
    total = math.fsum(d)
    if total <= 0:
        raise ConfigError(f"entropy: no criterion varies over the {m} sampled cells ({', '.join(names)}); "
                          "entropy weights are undefined")
    weights = {name: float(v) / total for name, v in zip(names, d, strict=True)}
    details = {"normalise": normalise, "cost": sorted(cost_set), "n_samples": int(m),
               "entropy": {name: float(v) for name, v in zip(names, e, strict=True)},
               "divergence": {name: float(v) for name, v in zip(names, d, strict=True)}}
    return WeightSet(weights=weights, method="entropy", raw={"criteria": names}, details=details)


def critic_weights(matrix: Any, names: Sequence[str], *, cost: Sequence[str] = ()) -> WeightSet:
    """CRITIC weights (Diakoulaki, Mavrotas & Papayannakis 1995, Computers & OR 22(7)) of a decision matrix.

    Min-max normalise (cost criteria reversed), then for each criterion the information ``C_j = sigma_j *
    sum_k (1 - r_jk)``: contrast (standard deviation of the normalised column) times conflict (one minus the
    Pearson correlation with every other criterion); ``w_j = C_j / sum C``. The ratio does not depend on whether
    sigma uses m or m - 1. A constant criterion has sigma = 0 and weight 0 and is left out of the others' conflict
    sums (its correlation is undefined). ``details`` hold ``std``, ``conflict`` and ``information``.
    """
    x, names, cost_set = _matrix(matrix, names, cost, "CRITIC")
    xn, constant = _minmax(x, names, cost_set)
    live = ~constant
    if not live.any():
        raise ConfigError(f"CRITIC: no criterion varies over the {x.shape[0]} sampled cells ({', '.join(names)})")
    sigma = xn.std(axis=0, ddof=1)
    sigma[constant] = 0.0
    conflict = np.zeros(len(names))
    if live.sum() > 1:
        r = np.corrcoef(xn[:, live], rowvar=False)
        conflict[live] = (1.0 - r).sum(axis=1)
    info = sigma * conflict
    total = math.fsum(info)
    if total <= 0:
        # a single varying criterion (or all perfectly correlated) has no conflict: it carries all the weight
        info = np.where(live, sigma, 0.0)
        total = math.fsum(info)
    weights = {name: float(v) / total for name, v in zip(names, info, strict=True)}
    details = {"cost": sorted(cost_set), "n_samples": int(x.shape[0]),
               "std": {n: float(v) for n, v in zip(names, sigma, strict=True)},
               "conflict": {n: float(v) for n, v in zip(names, conflict, strict=True)},
               "information": {n: float(v) for n, v in zip(names, info, strict=True)}}
    return WeightSet(weights=weights, method="critic", raw={"criteria": names}, details=details)


# --- the same on raster layers ---------------------------------------------------------------------------------


def entropy(layers: Mapping[str, Any], *, n_samples: int = 10_000, seed: int = 0, normalise: str = "minmax",
            cost: Sequence[str] = ()) -> WeightSet:
    """Entropy weights of criterion layers, from ``sample_cells(layers, n_samples, seed)``; see
    ``entropy_weights``. ``details`` also record the seed and the number of cells sampled."""
    ws = entropy_weights(sample_cells(layers, n_samples, seed), list(layers), normalise=normalise, cost=cost)
    return WeightSet(weights=ws.weights, method=ws.method, raw={**ws.raw, "n_samples": n_samples, "seed": seed},
                     details=ws.details)


def critic(layers: Mapping[str, Any], *, n_samples: int = 10_000, seed: int = 0,
           cost: Sequence[str] = ()) -> WeightSet:
    """CRITIC weights of criterion layers, from ``sample_cells(layers, n_samples, seed)``; see
    ``critic_weights``."""
    ws = critic_weights(sample_cells(layers, n_samples, seed), list(layers), cost=cost)
    return WeightSet(weights=ws.weights, method=ws.method, raw={**ws.raw, "n_samples": n_samples, "seed": seed},
                     details=ws.details)
