"""Reading vector layers: any OGR source, validated, repaired, reprojected to the analysis CRS and clipped.

``read(path, crs)`` returns a GeoDataFrame in the analysis CRS whose geometries are all valid (OGC simple
features validity, as tested by GEOS ``isValid``), non-empty, and of the dimension the layer was drawn in.

Axis order (EPSG:4490 and friends)
----------------------------------
EPSG:4490 (CGCS2000 geographic), like EPSG:4326, is defined with latitude first. File formats do not follow
that: GeoPackage, Shapefile and GeoJSON store x = longitude, y = latitude whatever the EPSG code says, and GDAL
reads them that way (``OAMS_TRADITIONAL_GIS_ORDER``). Every transformation here is therefore made with
``always_xy=True`` semantics: ``GeoDataFrame.to_crs`` builds its ``pyproj.Transformer`` with ``always_xy=True``,
and the clip box is transformed with an explicit ``Transformer.from_crs(..., always_xy=True)``. A point stored
as (lon 100, lat 36) in an EPSG:4490 file comes back as x = 100, y = 36 in EPSG:4490 or EPSG:4326, never
swapped. Code that builds its own transformer for these CRSs must pass ``always_xy=True`` as well.

A GeoJSON file without a ``crs`` member is read as EPSG:4326 (RFC 7946 says GeoJSON is WGS84 lon/lat); a
Shapefile without ``.prj`` or a GeoPackage layer with an undefined SRS has no CRS and is refused.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from rasters.datum import declared_shift
from rasters.errors import ConfigError, InputDataError, did_you_mean

__all__ = ["layers", "read", "repair"]

# GDAL virtual file systems and remote sources have no local file to check for.
_VIRTUAL_PREFIXES = ("/vsi", "http://", "https://", "s3://", "gs://", "az://")


def _check_exists(path: str) -> None:
    if path.startswith(_VIRTUAL_PREFIXES) or (":" in path.split(os.sep)[0] and not Path(path).drive):
        return  # "DRIVER:path" and URLs: let OGR decide
    if not Path(path).exists():
        raise InputDataError(f"{path}: file not found")


def layers(path: str | os.PathLike) -> list[str]:
    """Names of the vector layers in ``path`` (a GeoPackage may hold several; a Shapefile or GeoJSON has one).

    Raises ``InputDataError`` if the file is missing, or is not a vector source GDAL/OGR can open.
    """
    p = os.fspath(path)
    _check_exists(p)
    try:
        listed = pyogrio.list_layers(p)
    except (DataSourceError, DataLayerError) as e:
        raise InputDataError(f"{p}: not a vector file GDAL/OGR can read ({_first_line(e)})") from None
    names = [str(row[0]) for row in listed]
    if not names:
        raise InputDataError(f"{p}: contains no vector layers")
    return names


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text.split("; It might help")[0].strip()


def _choose_layer(path: str, names: list[str], layer: str | None) -> str:
    if layer is None:
        if len(names) > 1:
            raise InputDataError(f"{path}: has {len(names)} layers ({', '.join(names)}); name one with 'layer'")
        return names[0]
    if layer not in names:
        raise InputDataError(f"{path}: no layer '{layer}'; layers are {', '.join(names)}{did_you_mean(layer, names)}")
    return layer


def _flatten(geom: shapely.Geometry) -> np.ndarray:
    """All single-part pieces of a geometry (collections and multi-geometries opened recursively)."""
    parts = shapely.get_parts(np.asarray([geom], dtype=object))
    while parts.size and np.any(shapely.get_type_id(parts) >= 4):  # 4..7: Multi* and GeometryCollection
        parts = shapely.get_parts(parts)
    return parts[~shapely.is_empty(parts)]


_MULTI = {0: shapely.MultiPoint, 1: shapely.MultiLineString, 2: shapely.MultiPolygon}


def _keep_dimension(fixed: shapely.Geometry, dim: int, multi: bool) -> shapely.Geometry | None:
    """The parts of ``fixed`` of dimension ``dim`` (0 points, 1 lines, 2 polygons), as one geometry or None."""
    parts = _flatten(fixed)
    parts = parts[shapely.get_dimensions(parts) == dim]
    if parts.size == 0:
        return None
    if parts.size == 1 and not multi:
        return parts[0]
    out = _MULTI[dim](list(parts))
    if dim == 2 and not out.is_valid:
        # make_valid's polygon parts never overlap, but a collection may hold polygons that share an edge, which a
        # MultiPolygon forbids; dissolving them keeps the same area.
        out = shapely.unary_union(parts)
        if out.geom_type == "Polygon" and multi:
            out = shapely.MultiPolygon([out])
    return out


def repair(geoms: np.ndarray | gpd.GeoSeries) -> tuple[np.ndarray, np.ndarray]:
    """Make invalid geometries valid without changing their dimension.

    Uses GEOS ``MakeValid`` (``shapely.make_valid``, the "linework" method: it keeps every vertex and splits
    self-intersecting rings at their crossings, so a bow-tie becomes two triangles). MakeValid may also return
    lower-dimensional debris (the collapsed lines and points of a bow-tie's crossing); only the parts of the
    input geometry's own dimension are kept, so polygons stay (multi)polygons and lines stay lines. A geometry
    that keeps nothing of its dimension becomes None.

    Returns (geometries, repaired) where ``repaired`` is a boolean mask of the geometries that were invalid.
    Missing (None) and empty geometries are passed through unchanged and are not counted.
    """
    arr = np.asarray(geoms.values if isinstance(geoms, gpd.GeoSeries) else geoms, dtype=object)
    present = ~shapely.is_missing(arr)
    present[present] = ~shapely.is_empty(arr[present])
    invalid = np.zeros(arr.shape, dtype=bool)
    invalid[present] = ~shapely.is_valid(arr[present])
    out = arr.copy()
    idx = np.flatnonzero(invalid)
    if idx.size:
        fixed = shapely.make_valid(arr[idx])
        dims = shapely.get_dimensions(arr[idx])
        multi = shapely.get_type_id(arr[idx]) >= 4
        for k, g, d, m in zip(idx, fixed, dims, multi, strict=True):
            out[k] = _keep_dimension(g, int(d), bool(m))
    return out, invalid


def _target_crs(crs) -> CRS:
    try:
        return CRS.from_user_input(crs)
    except CRSError as e:
        raise ConfigError(f"crs: cannot interpret {str(crs)[:80]!r} as a CRS ({_first_line(e)})") from None


def _source_bbox(clip_bounds: tuple, target: CRS, source: CRS) -> tuple[float, float, float, float] | None:
    """The clip box in the layer's own CRS (for OGR's spatial filter), a little larger; None if unknown."""
    if source.equals(target, ignore_axis_order=True):
        xmin, ymin, xmax, ymax = clip_bounds
    else:
        try:
            t = Transformer.from_crs(target, source, always_xy=True)
            xmin, ymin, xmax, ymax = t.transform_bounds(*clip_bounds, densify_pts=21)
        except Exception:  # noqa: BLE001 - a pre-filter only; the exact filter after reprojection decides
            return None
    if not all(np.isfinite([xmin, ymin, xmax, ymax])) or xmax < xmin or ymax < ymin:
        return None  # e.g. a box across the antimeridian: read everything and filter after reprojection
    # Densified edges can still cut a little inside a curved edge of the true footprint; widen by 1 %.
    dx, dy = (xmax - xmin) * 0.01, (ymax - ymin) * 0.01
    return (xmin - dx, ymin - dy, xmax + dx, ymax + dy)


def read(
    path: str | os.PathLike,
    crs,
    layer: str | None = None,
    clip_bounds: tuple[float, float, float, float] | None = None,
    where: str | None = None,
    towgs84: Sequence[float] | None = None,
) -> gpd.GeoDataFrame:
    """Read one vector layer, repair it, reproject it to ``crs`` and keep the features touching ``clip_bounds``.

    Args:
        path: any OGR vector source (GeoPackage, Shapefile, GeoJSON, ...).
        crs: the target CRS, anything ``pyproj.CRS.from_user_input`` accepts (WKT, "EPSG:4490", PROJ string).
        layer: layer name; may be omitted when the source has exactly one layer.
        clip_bounds: (xmin, ymin, xmax, ymax) in the target CRS, typically ``grid.bounds``. Features whose
            geometry intersects this box are kept whole (geometries are not cut); the rest are dropped.
        where: an OGR SQL attribute filter, e.g. ``"name_zh IN ('玛多县', '曲麻莱县')"``; selecting nothing is
            an ``InputDataError``.
        towgs84: a declared datum shift for a layer in a datum of its own (Beijing 1954, Xian 1980):
            ``[dx, dy, dz, rx, ry, rz, ds]`` from the layer's datum to WGS 84 in metres, arc-seconds and ppm,
            Position Vector convention, exactly as PROJ's ``+towgs84``. The layer's own CRS is used with this
            Helmert and reprojected to ``crs`` through WGS 84 (``rasters.datum.declared_shift``, which raises
            ``ConfigError`` if the layer is already on a WGS 84-compatible datum or ``crs`` has no transformation
            to WGS 84).

    Steps: (1) read with OGR (a spatial filter in the source CRS skips far-away features early); (2) drop
    missing/empty geometries; (3) repair invalid geometries with ``repair`` (MakeValid, same dimension kept);
    (4) reproject with always_xy axis order (see the module docstring on EPSG:4490); (5) repair again any
    geometry the reprojection made invalid; (6) keep features intersecting ``clip_bounds``.

    ``gdf.attrs`` records ``source`` (path), ``layer``, ``repaired`` (number of features that were invalid and
    were repaired) and ``dropped`` (features dropped for a missing/empty geometry, one that repair emptied, or
    non-finite coordinates after reprojection; features outside ``clip_bounds`` are not counted) and
    ``collections`` (GeometryCollection features reduced to their highest-dimension parts, see
    ``_open_collections``).

    Raises ``InputDataError`` (one line naming the file) for a missing file, a file OGR cannot read, an unknown
    layer name (with the closest valid name), several layers and none named, an empty layer, a layer without
    a geometry column or without a CRS; ``ConfigError`` for an unusable ``crs`` or ``clip_bounds``.
    """
    p = os.fspath(path)
    target = _target_crs(crs)
    names = layers(p)
    name = _choose_layer(p, names, layer)
    try:
        info = pyogrio.read_info(p, layer=name, force_feature_count=True)
    except (DataSourceError, DataLayerError) as e:
        raise InputDataError(f"{p}: cannot read layer '{name}' ({_first_line(e)})") from None
    if info.get("geometry_type") is None:
        raise InputDataError(f"{p}: layer '{name}' has no geometry column")
    if info.get("features", -1) == 0:
        raise InputDataError(f"{p}: layer '{name}' is empty (no features)")
    if not info.get("crs"):
        raise InputDataError(
            f"{p}: layer '{name}' has no CRS; assign one (e.g. ogr2ogr -a_srs EPSG:4490 out.gpkg {Path(p).name})"
        )
    source = CRS.from_user_input(info["crs"])
    shift = None
    if towgs84 is not None:
        try:
            shift = declared_shift(source, towgs84, target)
        except ConfigError as e:
            raise ConfigError(f"{p}: layer '{name}': towgs84: {e}") from None

    bbox = None
    if clip_bounds is not None:
        try:
            clip_bounds = tuple(float(v) for v in clip_bounds)
        except (TypeError, ValueError):
            raise ConfigError(f"clip_bounds must be (xmin, ymin, xmax, ymax), got {clip_bounds!r}") from None
        if len(clip_bounds) != 4 or not (clip_bounds[0] <= clip_bounds[2] and clip_bounds[1] <= clip_bounds[3]):
            raise ConfigError(f"clip_bounds must be (xmin, ymin, xmax, ymax) with min <= max, got {clip_bounds}")
        bbox = _source_bbox(clip_bounds, *(shift[::-1] if shift else (target, source)))

    try:
        gdf = pyogrio.read_dataframe(p, layer=name, bbox=bbox, where=where)
    except (DataSourceError, DataLayerError) as e:
        if where:
            raise ConfigError(f"{p}: layer '{name}': the filter {where!r} is not valid OGR SQL ({_first_line(e)})")\
                from None
        raise InputDataError(f"{p}: cannot read layer '{name}' ({_first_line(e)})") from None
    if where and len(gdf) == 0 and (
        bbox is None
        or len(pyogrio.read_dataframe(p, layer=name, where=where, read_geometry=False, max_features=1)) == 0
    ):
        raise InputDataError(f"{p}: layer '{name}': the filter {where!r} selects no feature")
    if gdf.crs is None:  # read_info saw a CRS that the reader could not attach; treat alike
        raise InputDataError(f"{p}: layer '{name}' has no CRS; assign one (e.g. ogr2ogr -a_srs EPSG:4490)")

    n_read = len(gdf)
    gdf = gdf.reset_index(drop=True)  # index = position in the read order, used to count per feature
    repaired = np.zeros(n_read, dtype=bool)
    geoms = gdf.geometry.values
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if bbox is None and n_read and not present.any():
        raise InputDataError(f"{p}: layer '{name}' has no geometries (all {n_read} features are empty)")
    gdf = gdf.loc[present]
    gdf = _repair_frame(gdf, repaired)
    gdf, n_collections = _open_collections(gdf)
    if shift is not None or not gdf.crs.equals(target):
        if shift is not None:  # the declared Helmert: both ends bound to WGS 84, then labelled with the target
            gdf = gdf.set_crs(shift[0], allow_override=True).to_crs(shift[1]).set_crs(target, allow_override=True)
        else:
            gdf = gdf.to_crs(target)  # geopandas transforms with always_xy=True
        finite = np.isfinite(gdf.geometry.bounds.to_numpy()).all(axis=1)
        gdf = gdf.loc[finite]
        # Reprojection bends edges differently and can make a valid ring touch itself: repair once more.
        gdf = _repair_frame(gdf, repaired)
    n_dropped = n_read - len(gdf)

    if clip_bounds is not None and len(gdf):
        hits = gdf.sindex.query(shapely.box(*clip_bounds), predicate="intersects")
        gdf = gdf.iloc[np.sort(hits)]

    n_repaired = int(np.count_nonzero(repaired[gdf.index.to_numpy()]))
    gdf = gdf.reset_index(drop=True)
    gdf.attrs.update({"source": p, "layer": name, "repaired": n_repaired, "dropped": n_dropped,
                      "collections": n_collections})
    return gdf


def _open_collections(gdf: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, int]:
    """GeometryCollection features replaced by their parts of the collection's highest dimension, as one Multi*
    geometry: a collection of a polygon and a line becomes a MultiPolygon. Every use of a layer (a mask, a
    polygon rasterized by cell centres, a distance) then sees one kind of geometry, and stray lines or points
    never burn cells into a polygon mask. Invalid collections were already reduced this way by ``repair``."""
    geoms = gdf.geometry.values
    gc = np.asarray(shapely.get_type_id(geoms) == 7)
    if not gc.any():
        return gdf, 0
    fixed = np.asarray(geoms, dtype=object).copy()
    for k in np.flatnonzero(gc):
        fixed[k] = _keep_dimension(fixed[k], int(shapely.get_dimensions(fixed[k])), True)
    gdf = gdf.set_geometry(gpd.GeoSeries(fixed, index=gdf.index, crs=gdf.crs))
    return gdf.loc[~shapely.is_missing(gdf.geometry.values)], int(gc.sum())


def _repair_frame(gdf: gpd.GeoDataFrame, repaired: np.ndarray) -> gpd.GeoDataFrame:
    """Repair ``gdf`` in place of its geometries, mark repaired rows in ``repaired`` (by index), drop emptied."""
    fixed, invalid = repair(gdf.geometry.values)
    if not invalid.any():
        return gdf
    repaired[gdf.index.to_numpy()[invalid]] = True
    gdf = gdf.set_geometry(gpd.GeoSeries(fixed, index=gdf.index, crs=gdf.crs))
    return gdf.loc[~shapely.is_missing(gdf.geometry.values)]
