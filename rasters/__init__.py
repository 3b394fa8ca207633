"""Lowest floor: the analysis grid, raster I/O aligned to it, and array kernels (terrain, distance, ...).

Knows nothing of suitability or configs; depends on numpy, dask, rasterio, pyproj, scipy, numba only.
"""

from .errors import ConfigError, InputDataError, SuitabilityError
from .grid import Grid
from .io import RasterOutput, read, write, write_many
from .warning_state import install as _guard_warning_state

_guard_warning_state()  # every layer above computes through dask: see rasters/warning_state.py

__all__ = ["ConfigError", "Grid", "InputDataError", "RasterOutput", "SuitabilityError", "read", "write", "write_many"]
