"""Inputs a config may not name without saying so: network paths and VRT files.

A GDAL/OGR path can fetch from the network (``/vsicurl/``, ``/vsis3/``, ``http://``...), and a VRT is an XML file
that can point at any other file or URL; a config shared between offices should not read either silently. Each
input may opt in with ``allow_remote: true`` or ``allow_vrt: true``.

Legacy Chinese datums (Beijing 1954, Xian 1980, New Beijing) differ from CGCS2000/WGS 84 by up to ~100 m, and
PROJ's database holds no transformation from them that is usable in Qinghai (or to a grid with an unnamed GRS80
datum, like the demo's Albers): it falls back to a "ballpark" offset of zero. An input in such a datum is refused
unless PROJ has a better transformation for the data's area, or the input says ``allow_ballpark: true``; the
remedy is to declare the data's known 7-parameter transformation to WGS 84 with ``towgs84: [dx, dy, dz, rx, ry, rz,
ds]`` on the input (PROJ ``+towgs84`` convention, applied by ``rasters.datum``), or to reproject it first
(``check_datum``). A declared ``towgs84`` is checked against the file and the grid here, before any pixel is read.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rasters.errors import ConfigError, InputDataError

NETWORK = ("/vsicurl", "/vsis3", "/vsigs", "/vsiaz", "/vsiadls", "/vsioss", "/vsiswift", "/vsihdfs", "/vsiwebhdfs",
           "http://", "https://", "ftp://")


# GDAL virtual file systems and URLs: kept verbatim as strings, never resolved against the config folder.
VIRTUAL = ("/vsi", "http://", "https://", "ftp://", "s3://", "gs://")


def is_virtual(path: str) -> bool:
    """True for a GDAL virtual path (``/vsicurl/...``, ``/vsizip/...``) or a URL: not a local file name."""
    return str(path).lower().startswith(VIRTUAL)


def is_remote(path: str) -> bool:
    s = str(path).lower()
    return any(s.startswith(n) or f"/{n.strip('/')}" in s and n.startswith("/vsi") for n in NETWORK)


def is_vrt(path: str, resolved: Path | str) -> bool:
    if str(path).lower().endswith(".vrt") or Path(resolved).suffix.lower() == ".vrt":
        return True
    try:
        with open(resolved, "rb") as f:  # a VRT renamed to .tif is still a VRT
            head = f.read(256).lstrip()
    except OSError:
        return False
    return head.startswith((b"<VRTDataset", b"<OGRVRTDataSource"))


def check_input(config_path: Path, name: str, inp, attr: str, resolved: Path | str) -> None:
    """Raise ``ConfigError`` (one line, naming the key and the opt-in) for a network path or a VRT."""
    raw = str(getattr(inp, attr))
    if is_remote(raw) and not getattr(inp, "allow_remote", False):
        raise ConfigError(f"{config_path}: inputs.{name}.{attr}: {raw} is a network path; set "
                          f"inputs.{name}.allow_remote: true to read it")
    if is_vrt(raw, resolved) and not getattr(inp, "allow_vrt", False):
        raise ConfigError(f"{config_path}: inputs.{name}.{attr}: {raw} is a VRT (it can point at any file or URL); "
                          f"set inputs.{name}.allow_vrt: true to read it")


# EPSG datum codes of the legacy Chinese geodetic datums, and the names their WKT1/ESRI forms use.
LEGACY_DATUMS = {"6214": "Beijing 1954", "6610": "Xian 1980", "1045": "New Beijing"}
_LEGACY_NAMES = {"beijing1954": "Beijing 1954", "xian1980": "Xian 1980", "newbeijing": "New Beijing"}


def legacy_datum(crs) -> str | None:
    """The name of ``crs``'s datum if it is Beijing 1954, Xian 1980 or New Beijing, else None."""
    base = crs.source_crs if crs.is_bound else crs
    datum = base.datum
    if datum is None:
        return None
    ident = (datum.to_json_dict().get("id") or {})
    if ident.get("authority") == "EPSG" and str(ident.get("code")) in LEGACY_DATUMS:
        return LEGACY_DATUMS[str(ident["code"])]
    key = datum.name.lower().replace("_", "").replace(" ", "").removeprefix("d")
    return _LEGACY_NAMES.get(key) or _LEGACY_NAMES.get("d" + key)


def _crs_and_bounds(attr: str, resolved: Path | str, inp):
    """The file's CRS and its bounds in that CRS, or (None, None) if it cannot be opened (reported elsewhere)."""
    from pyproj import CRS

    try:
        if attr == "raster":
            import rasterio

            with rasterio.open(str(resolved)) as src, warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. bounds of a rotated raster: the readers refuse it later
                return (CRS.from_wkt(src.crs.to_wkt()) if src.crs else None), tuple(src.bounds)
        import pyogrio

        # Bounds only when the driver knows them cheaply (GeoPackage, Shapefile): no scan of a big GeoJSON.
        info = pyogrio.read_info(str(resolved), layer=getattr(inp, "layer", None))
        return (CRS.from_user_input(info["crs"]) if info.get("crs") else None), info.get("total_bounds")
    except Exception:  # noqa: BLE001 - unreadable files get their own message from the readers
        return None, None


def ballpark_only(src, dst, bounds=None) -> bool:
    """True when every transformation PROJ has from ``src`` to ``dst`` (for ``bounds``, in ``src``) is a ballpark.

    PROJ names the fallback it uses when its database has no real transformation between two datums "Ballpark
    geographic offset" (accuracy unknown): for a legacy datum that is a silent error of tens to ~100 m.
    """
    from pyproj import Transformer
    from pyproj.aoi import AreaOfInterest
    from pyproj.transformer import TransformerGroup

    aoi = None
    if bounds is not None:
        try:
            geo = src.source_crs.geodetic_crs if src.is_bound else src.geodetic_crs
            w, s, e, n = Transformer.from_crs(src, geo, always_xy=True).transform_bounds(*bounds, densify_pts=21)
            if all(map(math.isfinite, (w, s, e, n))) and w <= e and s <= n:
                aoi = AreaOfInterest(max(w, -180.0), max(s, -90.0), min(e, 180.0), min(n, 90.0))
        except Exception:  # noqa: BLE001 - no area: judge over the CRS's whole area of use
            aoi = None
    group = TransformerGroup(src, dst, always_xy=True, area_of_interest=aoi)
    return not any("ballpark" not in t.description.lower() for t in group.transformers)


def check_datum(config_path: Path, name: str, inp, attr: str, resolved: Path | str, grid_crs: str) -> None:
    """Refuse (``InputDataError``, one line) an input in a legacy Chinese datum that PROJ could only shift to the
    grid's CRS by a ballpark offset, unless the input declares its transformation (``towgs84``) or says
    ``allow_ballpark: true``.

    A declared ``towgs84`` is a ``ConfigError`` naming ``inputs.<name>.towgs84`` when it cannot be right for this
    file and grid (``rasters.datum.declared_shift``): the file is already on WGS 84/CGCS2000 (the shift would move
    converted data a second time), or the grid's datum has no transformation to WGS 84.
    """
    towgs84 = getattr(inp, "towgs84", None)
    if towgs84 is None and getattr(inp, "allow_ballpark", False):
        return
    crs, bounds = _crs_and_bounds(attr, resolved, inp)
    if crs is None:
        return
    if towgs84 is not None:
        from pyproj import CRS

        from rasters.datum import declared_shift

        try:
            declared_shift(crs, towgs84, CRS.from_user_input(grid_crs))
        except ConfigError as e:
            raise ConfigError(f"{config_path}: inputs.{name}.towgs84: {getattr(inp, attr)}: {e}") from None
        return
    datum = legacy_datum(crs)
    if datum is None:
        return
    from pyproj import CRS

    if not ballpark_only(crs, CRS.from_user_input(grid_crs), bounds):
        return
    raise InputDataError(
        f"{config_path}: inputs.{name}.{attr}: {getattr(inp, attr)}: datum {datum} has no transformation to the "
        f"grid CRS in PROJ better than a ballpark offset for this area (silent errors up to ~100 m); declare its "
        f"7-parameter transformation to WGS 84 with inputs.{name}.towgs84: [dx, dy, dz, rx, ry, rz, ds] (metres, "
        f"arc-seconds, ppm, as PROJ's +towgs84), or reproject it to WGS 84 first (e.g. gdalwarp/ogr2ogr -s_srs "
        f"'+proj=longlat +ellps=krass +towgs84=dx,dy,dz,rx,ry,rz,ds' -t_srs EPSG:4326; with -t_srs EPSG:4490 PROJ "
        f"drops the +towgs84), or set inputs.{name}.allow_ballpark: true to accept the shift"
    )


def name_input_error(loaded, e: InputDataError) -> InputDataError:
    """``e`` prefixed with the config file and the ``inputs.<name>`` key of the input file it names (an error
    raised inside a dask task knows only the file), or ``e`` itself when it already names the config or names no
    input file."""
    msg = str(e)
    if msg.startswith(f"{loaded.path}:"):
        return e
    for name, inp in loaded.config.inputs.items():
        attr = "raster" if hasattr(inp, "raster") else "vector"
        if msg.startswith(f"{loaded.resolve(getattr(inp, attr))}:"):
            return InputDataError(f"{loaded.path}: inputs.{name}: {msg}")
    return e


@contextmanager
def inputs_named(loaded) -> Iterator[None]:
    """Re-raise an ``InputDataError`` naming an input file with that input's config key (``name_input_error``)."""
    try:
        yield
    except InputDataError as e:
        named = name_input_error(loaded, e)
        if named is e:
            raise
        raise named from None
