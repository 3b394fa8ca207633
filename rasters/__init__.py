"""Lowest floor: the analysis grid, raster I/O aligned to it, and array kernels (terrain, distance, ...).

Knows nothing of suitability or configs; depends on numpy, dask, rasterio, pyproj, scipy, numba only.
"""

from .errors import ConfigError, InputDataError, SuitabilityError
from .grid import Grid
from .io import RasterOutput, read, write, write_many

__all__ = ["ConfigError", "Grid", "InputDataError", "RasterOutput", "SuitabilityError", "read", "write", "write_many"]
