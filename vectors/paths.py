"""Least-cost paths as vector geometries (the raster side, ``rasters.cost.least_cost_path``, gives cells)."""

from __future__ import annotations

from collections.abc import Sequence

from shapely.geometry import LineString, Point

from rasters.cost import path_xy
from rasters.grid import Grid


def path_linestring(path: Sequence[tuple[int, int]], grid: Grid) -> LineString | Point:
    """A shapely ``LineString`` through the path's cell centres in the grid's CRS (a ``Point`` for one cell)."""
    xy = path_xy(path, grid)
    if len(xy) == 1:
        return Point(xy[0])
    return LineString(xy)
