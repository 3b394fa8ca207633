"""Overlay: combine criterion score layers into one suitability score.

``weighted_sum`` is the weighted linear combination (WLC, "simple additive weighting") of multi-criteria
evaluation, S = sum_i w_i * x_i (Malczewski, *GIS and Multicriteria Decision Analysis*, 1999, ch. 6; Eastman et
al. 1995). Layers are numpy or dask arrays of one shape; the result is float32. A cell where any criterion is
NaN (no data) is NaN: a missing criterion is not silently scored as 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any

import dask.array as da
import numpy as np

from rasters.errors import ConfigError

__all__ = ["weighted_sum"]


def _weighted_sum_block(weights: tuple[float, ...], *blocks: np.ndarray) -> np.ndarray:
    # Accumulate in float64 in the given order: the same arithmetic per cell on numpy and on every dask block,
    # so results are bit-identical whatever the chunking. NaN * 0 is NaN, so a zero weight still propagates NaN.
    acc = np.zeros(np.broadcast_shapes(*(b.shape for b in blocks)), dtype=np.float64)
    term = np.empty_like(acc)
    for w, block in zip(weights, blocks, strict=True):
        np.multiply(block, w, out=term, dtype=np.float64)
        acc += term
    return acc.astype(np.float32)


def weighted_sum(layers: Sequence[Any], weights: Sequence[float]) -> Any:
    """Weighted linear combination ``sum_i weights[i] * layers[i]`` as float32 (numpy in, numpy out; dask if any
    layer is dask).

    ``weights`` are used as given (normalise them first, e.g. with ``weights.direct``, to keep scores in [0, 1]);
    each must be finite. ``layers`` and ``weights`` must have the same length (>= 1) and all layers one shape;
    otherwise ``ConfigError``. Any NaN criterion makes the cell NaN.
    """
    layers = list(layers)
    weights = list(weights)
    if not layers:
        raise ConfigError("weighted_sum needs at least one layer")
    if len(layers) != len(weights):
        raise ConfigError(
            f"weighted_sum got {len(layers)} layers but {len(weights)} weights; give one weight per layer"
        )
    checked: list[float] = []
    for i, w in enumerate(weights):
        if isinstance(w, bool) or not isinstance(w, int | float | np.integer | np.floating) or not math.isfinite(w):
            raise ConfigError(f"weighted_sum: weight {i} must be a finite number, got {w!r}")
        checked.append(float(w))
    shapes = {tuple(np.shape(layer)) for layer in layers}
    if len(shapes) != 1:
        raise ConfigError(f"weighted_sum: all layers must have one shape, got {sorted(shapes)}")
    kernel = partial(_weighted_sum_block, tuple(checked))
    if any(isinstance(layer, da.Array) for layer in layers):
        first = next(layer for layer in layers if isinstance(layer, da.Array))
        # Every layer on the first dask layer's chunks, so blocks pair up cell for cell.
        arrays = [layer.rechunk(first.chunks) if isinstance(layer, da.Array)
                  else da.from_array(np.asarray(layer), chunks=first.chunks) for layer in layers]
        return da.map_blocks(kernel, *arrays, dtype=np.float32)
    return kernel(*(np.asarray(layer) for layer in layers))
