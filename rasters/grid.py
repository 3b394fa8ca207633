"""The analysis grid: one immutable object that knows CRS, transform, shape and how it tiles into chunks.

Modelled on odc-geo's ``GeoBox``/``GeoboxTiles``: everything in a run is on one ``Grid`` and asks it for
windows, chunk shapes, cell sizes and areas; nothing is aligned by hand.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from affine import Affine
from pyproj import CRS, Geod
from rasterio.crs import CRS as RioCRS
from rasterio.windows import Window

from .errors import ConfigError


def _named(crs: CRS) -> CRS:
    """A CRS built from a bare PROJ string is called "unknown", which is all QGIS shows; name it after its
    projection method and ellipsoid instead (the definition is unchanged)."""
    if crs.name.lower() != "unknown" or crs.coordinate_operation is None:
        return crs
    d = crs.to_json_dict()
    ell = crs.ellipsoid.name if crs.ellipsoid else "unknown ellipsoid"
    d["name"] = f"Custom {crs.coordinate_operation.method_name} ({ell})"
    return CRS.from_json_dict(d)


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid.

    Attributes:
        crs: WKT2 (or any pyproj-accepted string) of the grid's CRS.
        transform: affine transform of the top-left corner (north-up: ``b == d == 0``, ``e < 0``).
        width, height: size in cells.
        chunk_size: edge of a square processing chunk in cells (the last row/column of chunks may be smaller).
    """

    crs: str
    transform: Affine
    width: int
    height: int
    chunk_size: int = 1024

    def __post_init__(self) -> None:
        t = self.transform
        if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0:
            raise ConfigError(f"grid transform must be north-up with positive cell size, got {tuple(t)[:6]}")
        if self.width <= 0 or self.height <= 0:
            raise ConfigError(f"grid must have at least one cell, got {self.width} x {self.height}")
        if self.chunk_size < 16:
            raise ConfigError(f"grid.chunk_size must be at least 16 cells, got {self.chunk_size}")
        object.__setattr__(self, "crs", _named(CRS.from_user_input(self.crs)).to_wkt())

    # --- construction -------------------------------------------------------------------------------------
    @classmethod
    def from_bounds(
        cls,
        bounds: tuple[float, float, float, float],
        resolution: float | tuple[float, float],
        crs: str | CRS,
        chunk_size: int = 1024,
    ) -> Grid:
        """Grid covering ``bounds`` (xmin, ymin, xmax, ymax) in ``crs`` units.

        The edges are snapped outward to whole multiples of the resolution, like ``gdalwarp -tap``, so that two
        grids with the same resolution and CRS always align cell for cell.
        """
        xres, yres = (resolution, resolution) if np.isscalar(resolution) else resolution
        xres, yres = float(xres), float(yres)
        if not (xres > 0 and yres > 0 and math.isfinite(xres) and math.isfinite(yres)):
            raise ConfigError(f"grid resolution must be positive, got {resolution}")
        xmin, ymin, xmax, ymax = map(float, bounds)
        if not (xmax > xmin and ymax > ymin):
            raise ConfigError(f"grid bounds must have xmin < xmax and ymin < ymax, got {bounds}")
        # A small tolerance keeps bounds that are already multiples (up to float noise) from growing a cell.
        eps = 1e-9
        x0 = math.floor(xmin / xres + eps) * xres
        x1 = math.ceil(xmax / xres - eps) * xres
        y0 = math.floor(ymin / yres + eps) * yres
        y1 = math.ceil(ymax / yres - eps) * yres
        width = max(1, round((x1 - x0) / xres))
        height = max(1, round((y1 - y0) / yres))
        crs_wkt = _named(CRS.from_user_input(crs)).to_wkt()
        return cls(crs_wkt, Affine(xres, 0.0, x0, 0.0, -yres, y1), width, height, chunk_size)

    # --- geometry -----------------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns)."""
        return (self.height, self.width)

    @property
    def res(self) -> tuple[float, float]:
        """Cell size (x, y) in CRS units, both positive."""
        return (self.transform.a, -self.transform.e)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the outer cell edges."""
        t = self.transform
        return (t.c, t.f + t.e * self.height, t.c + t.a * self.width, t.f)

    @cached_property
    def pyproj_crs(self) -> CRS:
        return CRS.from_wkt(self.crs)

    @cached_property
    def rio_crs(self) -> RioCRS:
        return RioCRS.from_wkt(self.crs)

    @property
    def is_geographic(self) -> bool:
        return self.pyproj_crs.is_geographic

    @property
    def linear_unit_m(self) -> float:
        """Metres per CRS unit of a projected grid (1.0 for metres, 0.3048 for feet)."""
        if self.is_geographic:
            raise ConfigError("a geographic grid has no linear unit; use cell_size_m_rows() for metres")
        axis = self.pyproj_crs.axis_info[0]
        return float(axis.unit_conversion_factor or 1.0)

    def cell_area_m2(self) -> float:
        """Area of one cell in m² on a projected grid (exact for an equal-area CRS)."""
        ux = self.linear_unit_m
        return self.res[0] * ux * self.res[1] * ux

    def cell_size_m_rows(self, row_start: int = 0, row_stop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Cell width and height in metres for each row ``row_start:row_stop``.

        On a projected grid both are constant. On a geographic grid they come from the ellipsoid's radii of
        curvature at the row-centre latitude: width = N·cosφ·Δλ, height = M·Δφ (Δ in radians).
        """
        row_stop = self.height if row_stop is None else row_stop
        n = row_stop - row_start
        if not self.is_geographic:
            ux = self.linear_unit_m
            return np.full(n, self.res[0] * ux), np.full(n, self.res[1] * ux)
        ell = self.pyproj_crs.ellipsoid
        a, inv_f = ell.semi_major_metre, ell.inverse_flattening
        e2 = 0.0 if not inv_f else (2 - 1 / inv_f) / inv_f
        rows = np.arange(row_start, row_stop) + 0.5
        lat = np.radians(self.transform.f + self.transform.e * rows)
        w = 1 - e2 * np.sin(lat) ** 2
        n_radius = a / np.sqrt(w)
        m_radius = a * (1 - e2) / w**1.5
        return (
            n_radius * np.cos(lat) * np.radians(self.res[0]),
            m_radius * np.radians(self.res[1]),
        )

    def geodesic_cell_area_m2(self, row: int) -> float:
        """Area of one cell in a given row on the ellipsoid (geographic grids), via pyproj.Geod."""
        geod = Geod(ellps="WGS84") if not self.is_geographic else self.pyproj_crs.get_geod()
        t = self.transform
        y0 = t.f + t.e * row
        lons = [t.c, t.c + t.a, t.c + t.a, t.c]
        lats = [y0, y0, y0 + t.e, y0 + t.e]
        return abs(geod.polygon_area_perimeter(lons, lats)[0])

    def xy_of_cells(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates of cell centres."""
        t = self.transform
        return t.c + (np.asarray(cols) + 0.5) * t.a, t.f + (np.asarray(rows) + 0.5) * t.e

    def index_of_xy(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of the cells containing points (may lie outside the grid)."""
        t = self.transform
        cols = np.floor((np.asarray(x, dtype=float) - t.c) / t.a).astype(np.int64)
        rows = np.floor((np.asarray(y, dtype=float) - t.f) / t.e).astype(np.int64)
        return rows, cols

    # --- chunking -----------------------------------------------------------------------------------------
    @property
    def chunks(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Dask chunk tuple for a (height, width) array on this grid."""

        def split(n: int) -> tuple[int, ...]:
            c = self.chunk_size
            return tuple([c] * (n // c) + ([n % c] if n % c else []))

        return split(self.height), split(self.width)

    def windows(self) -> Iterator[tuple[tuple[int, int], Window]]:
        """Yield ((chunk_row, chunk_col), Window) for every chunk, row-major."""
        row_chunks, col_chunks = self.chunks
        r0 = 0
        for i, h in enumerate(row_chunks):
            c0 = 0
            for j, w in enumerate(col_chunks):
                yield (i, j), Window(c0, r0, w, h)
                c0 += w
            r0 += h

    def window_transform(self, window: Window) -> Affine:
        return self.transform @ Affine.translation(window.col_off, window.row_off)

    def window_bounds(self, window: Window) -> tuple[float, float, float, float]:
        t = self.window_transform(window)
        return (t.c, t.f + t.e * window.height, t.c + t.a * window.width, t.f)

    def with_chunk_size(self, chunk_size: int) -> Grid:
        return Grid(self.crs, self.transform, self.width, self.height, chunk_size)

    def describe(self) -> str:
        """One line for dry runs and logs."""
        name = self.pyproj_crs.name
        return (
            f"{self.width} x {self.height} cells of {self.res[0]:g} x {self.res[1]:g} "
            f"({name}), bounds {tuple(round(b, 6) for b in self.bounds)}, chunks {self.chunk_size}²"
        )

    def to_dict(self) -> dict:
        """JSON-serialisable description (WKT2, transform, shape) for run.json."""
        return {
            "crs_wkt2": self.pyproj_crs.to_wkt(version="WKT2_2019"),
            "transform": list(self.transform)[:6],
            "width": self.width,
            "height": self.height,
            "chunk_size": self.chunk_size,
        }
