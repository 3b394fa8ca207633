"""Layer statistics and deterministic samples of valid cells, for fitting transforms and computing class breaks.

``layer_stats(array)`` gives the count, minimum, maximum, mean and population standard deviation of the valid
(finite) cells of a numpy or dask array, computed with one ``dask.compute``: each block reduces to ``(n, mean,
M2, min, max)`` in float64 and the blocks are merged with the pairwise update of Chan, Golub & LeVeque (1983,
"Algorithms for computing the sample variance"), which stays accurate for layers with a large mean (elevations
in metres). Count, min and max are exact and identical for any chunking; mean and std can differ between
chunkings in the last bits of float64 (about 1e-16 relative), which is why fitted parameters are recorded.

``valid_sample(array, size, seed)`` draws a uniform random sample without replacement of ``size`` valid cells
(all of them if there are fewer) that does not depend on the chunking: every cell gets a pseudo-random 64-bit
key from its flat index and the seed (the SplitMix64 mixer, Steele, Lea & Flood 2014), and the sample is the
cells with the ``size`` smallest keys ("bottom-k" sampling). Each block keeps its own ``size`` smallest, so memory
is bounded by ``size`` per block, and numpy and dask inputs give the same sample.
"""

from __future__ import annotations

import math
from typing import Any

import dask
import dask.array as da
import numpy as np

__all__ = ["fit_transform", "layer_stats", "layer_stats_many", "valid_sample"]


def _block_moments(block: np.ndarray) -> tuple[int, float, float, float, float]:
    values = np.asarray(block)
    values = values[np.isfinite(values)].astype(np.float64)
    n = int(values.size)
    if n == 0:
        return 0, 0.0, 0.0, math.inf, -math.inf
    mean = float(values.mean())
    m2 = float(np.square(values - mean).sum())
    return n, mean, m2, float(values.min()), float(values.max())


def _merge_moments(parts: list[tuple[int, float, float, float, float]]) -> tuple[int, float, float, float, float]:
    n, mean, m2, lo, hi = 0, 0.0, 0.0, math.inf, -math.inf
    for nb, mb, m2b, lob, hib in parts:
        if nb == 0:
            continue
        total = n + nb
        delta = mb - mean
        mean = mean + delta * nb / total
        m2 = m2 + m2b + delta * delta * n * nb / total
        n = total
        lo, hi = min(lo, lob), max(hi, hib)
    return n, mean, m2, lo, hi


def layer_stats(array: Any, layer: str | None = None) -> dict[str, Any]:
    """Statistics of the valid (finite) cells of a layer: ``{"layer", "count", "min", "max", "mean", "std"}``.

    ``std`` is the population standard deviation (divisor n). With no valid cell, ``count`` is 0 and the other
    numbers are NaN. A dask array is reduced block by block in one ``dask.compute``; nothing but five numbers per
    block is gathered.
    """
    if isinstance(array, da.Array):
        parts = [dask.delayed(_block_moments)(b) for b in array.to_delayed(optimize_graph=False).ravel()]
        (parts,) = dask.compute(parts)
    else:
        parts = [_block_moments(np.asarray(array))]
    n, mean, m2, lo, hi = _merge_moments(list(parts))
    if n == 0:
        return {"layer": layer, "count": 0, "min": math.nan, "max": math.nan, "mean": math.nan, "std": math.nan}
    return {"layer": layer, "count": n, "min": lo, "max": hi, "mean": mean, "std": math.sqrt(m2 / n)}


def layer_stats_many(arrays: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``layer_stats`` of several layers in one ``dask.compute`` (shared inputs are read once)."""
    lazy = {}
    for name, array in arrays.items():
        if isinstance(array, da.Array):
            lazy[name] = [dask.delayed(_block_moments)(b) for b in array.to_delayed(optimize_graph=False).ravel()]
        else:
            lazy[name] = [_block_moments(np.asarray(array))]
    (done,) = dask.compute(lazy)
    out = {}
    for name, parts in done.items():
        n, mean, m2, lo, hi = _merge_moments(list(parts))
        out[name] = (
            {"layer": name, "count": n, "min": lo, "max": hi, "mean": mean, "std": math.sqrt(m2 / n)}
            if n else {"layer": name, "count": 0, "min": math.nan, "max": math.nan, "mean": math.nan, "std": math.nan}
        )
    return out


def fit_transform(transform: Any, array: Any, layer: str | None = None) -> Any:
    """``transform.fit(layer_stats(array), layer)`` when the transform needs fitting, else the transform itself
    (so no statistics are computed for fully-parameterised transforms)."""
    if not transform.needs_fit:
        return transform
    return transform.fit(layer_stats(array, layer), layer)


# --- deterministic samples -------------------------------------------------------------------------------------

_MASK64 = (1 << 64) - 1


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser on uint64 (wrapping arithmetic, as in the reference C code)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _keys(flat_index: np.ndarray, seed: int) -> np.ndarray:
    salt = int(_splitmix64(np.array([seed & _MASK64], dtype=np.uint64))[0])
    with np.errstate(over="ignore"):
        state = flat_index.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(salt)
        return _splitmix64(state)


def _smallest(keys: np.ndarray, index: np.ndarray, values: np.ndarray, size: int):
    if keys.size > size:
        # Order by (key, flat index): a total order, so ties cannot make the sample depend on the chunking.
        order = np.lexsort((index, keys))[:size]
        keys, index, values = keys[order], index[order], values[order]
    return keys, index, values


def _block_sample(block: np.ndarray, offsets: tuple[int, ...], shape: tuple[int, ...], size: int, seed: int):
    block = np.asarray(block)
    valid = np.isfinite(block)
    coords = np.nonzero(valid)
    flat = np.ravel_multi_index(tuple(c + o for c, o in zip(coords, offsets, strict=True)), shape)
    flat = flat.astype(np.uint64)
    return _smallest(_keys(flat, seed), flat, block[valid].astype(np.float64), size)


def _merge_samples(parts: list, size: int):
    keys = np.concatenate([p[0] for p in parts])
    index = np.concatenate([p[1] for p in parts])
    values = np.concatenate([p[2] for p in parts])
    return _smallest(keys, index, values, size)


def valid_sample(array: Any, size: int, seed: int = 0) -> np.ndarray:
    """A uniform sample without replacement of ``min(size, valid count)`` valid cell values (float64, sorted).

    The same for numpy and dask inputs and for any chunking (see the module docstring); with ``size`` at least
    the number of valid cells it is all of them, so statistics on it are exact.
    """
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise ValueError(f"sample size must be a positive integer, got {size!r}")
    size = int(size)
    if not isinstance(array, da.Array):
        arr = np.asarray(array)
        _, _, values = _block_sample(arr, (0,) * arr.ndim, arr.shape, size, seed)
        return np.sort(values)
    shape = array.shape
    starts = [np.concatenate([[0], np.cumsum(c)[:-1]]).astype(int) for c in array.chunks]
    blocks = array.to_delayed(optimize_graph=False)
    parts = []
    for idx in np.ndindex(blocks.shape):
        offsets = tuple(int(starts[d][i]) for d, i in enumerate(idx))
        parts.append(dask.delayed(_block_sample)(blocks[idx], offsets, shape, size, seed))
    # Merge in a tree of fan-in 8 so no single task holds more than 8 * size values.
    while len(parts) > 1:
        parts = [dask.delayed(_merge_samples)(parts[i:i + 8], size) for i in range(0, len(parts), 8)]
    (result,) = dask.compute(parts[0])
    return np.sort(result[2])
