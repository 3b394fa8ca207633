"""Build dask arrays whose blocks are produced by a function of (grid, window): the graph holds only plain,
picklable arguments (paths, WKT, windows), never open datasets, so it runs on any dask scheduler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from .grid import Grid


def grid_blocks(
    func: Callable[..., np.ndarray],
    grid: Grid,
    dtype: Any,
    *args: Any,
    name: str = "block",
    **kwargs: Any,
) -> da.Array:
    """A lazy (height, width) array on ``grid``: block (i, j) = ``func(grid, window, *args, **kwargs)``.

    ``func`` must return an array of exactly the window's shape and ``dtype``. The key is a deterministic
    token of the arguments, so identical requests share one node in the graph.
    """
    token = f"{name}-{tokenize(func, grid, np.dtype(dtype).str, args, kwargs)}"
    dsk: dict = {}
    for (i, j), window in grid.windows():
        dsk[(token, i, j)] = (_call, func, grid, window, args, kwargs)
    graph = HighLevelGraph.from_collections(token, dsk, dependencies=())
    return da.Array(graph, token, grid.chunks, dtype=np.dtype(dtype))


def _call(func, grid, window, args, kwargs):
    return func(grid, window, *args, **kwargs)
