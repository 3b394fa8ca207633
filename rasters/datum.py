"""A declared datum shift: a file in a datum of its own (Beijing 1954, Xian 1980...) put on the analysis grid
through WGS 84 with the 7-parameter Helmert transformation its owner gives.

``towgs84 = [dx, dy, dz, rx, ry, rz, ds]`` has exactly the meaning of PROJ's ``+towgs84`` and GDAL's WKT1
``TOWGS84[...]``: translations in metres, rotations in arc-seconds, scale difference in ppm, **Position Vector**
convention (EPSG method 9606): ``X_wgs84 = T + (1 + ds·1e-6) · R · X_file`` on geocentric coordinates, with the
small-angle rotation matrix ``R = [[1, -rz, ry], [rz, 1, -rx], [-ry, rx, 1]]``. A parameter set published in
the Coordinate Frame convention (EPSG method 9607, used by some software and bureaus) has the three rotations
negated; the translations and the scale are the same.

How it is applied: the file's CRS becomes a PROJ ``BoundCRS`` (the file's CRS + this Helmert to WGS 84), and the
grid's CRS is bound to WGS 84 as well (by a null Helmert when its datum is WGS 84, CGCS2000, an ITRF or an unnamed
datum on the GRS 1980 / WGS 84 ellipsoid: these agree to a few centimetres, and PROJ holds no better
transformation between WGS 84 and CGCS2000 than a null one). Why both ends: PROJ applies a BoundCRS's Helmert only
on the way to its hub; from a bound Beijing 1954 straight to CGCS2000 or to an Albers on an unnamed GRS 1980
datum it falls back to a "ballpark" offset of zero and silently drops the declared shift. Bound to bound, PROJ
goes file → WGS 84 → grid. Both CRSs are stripped of their authority codes: GDAL replaces a CRS that carries an
EPSG code by the EPSG definition (which has no TOWGS84) when it builds a transformation, so a bound
``EPSG:4214`` would be warped with no shift at all. A BoundCRS in WKT2 is read the same way by pyproj's
``Transformer`` and by GDAL (warper, ``WarpedVRT``, ``rasterio.warp.transform``), so the exact sampling path and
GDAL's warper apply the same operation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from pyproj import CRS, Transformer
from pyproj.crs import BoundCRS
from pyproj.crs.coordinate_operation import ToWGS84Transformation
from pyproj.exceptions import CRSError

from .errors import ConfigError

__all__ = ["check_towgs84", "declared_shift", "shift_pipeline", "wgs84_compatible", "with_towgs84"]

TOWGS84_KEYS = ("dx", "dy", "dz", "rx", "ry", "rz", "ds")

# Datums that agree with WGS 84 to a few centimetres (normalised names: lower case, letters and digits only).
_WGS84_LIKE = ("wgs84", "wgs1984", "worldgeodeticsystem1984", "china2000", "chinageodeticcoordinatesystem2000",
               "cgcs2000", "itrf", "internationalterrestrialreferenceframe", "igs", "igb")
_UNNAMED = ("unknown", "notspecified", "unnamed", "unspecified")


def check_towgs84(values: Any) -> tuple[float, ...]:
    """``values`` as 7 finite floats ``(dx, dy, dz, rx, ry, rz, ds)``; ``ConfigError`` (one line) otherwise.

    Messages here and in ``declared_shift`` do not repeat "towgs84": the caller prefixes where it came from
    (``inputs.<name>.towgs84`` in a config, the file name in the readers)."""
    try:
        vals = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ConfigError(f"expected 7 numbers [dx, dy, dz, rx, ry, rz, ds], got {values!r}") from None
    if len(vals) != 7:
        raise ConfigError(f"expected 7 numbers [dx, dy, dz (m), rx, ry, rz (arc-seconds), ds (ppm)], got "
                          f"{len(vals)}; for a 3-parameter shift give [dx, dy, dz, 0, 0, 0, 0]")
    bad = [k for k, v in zip(TOWGS84_KEYS, vals, strict=True) if not math.isfinite(v)]
    if bad:
        raise ConfigError(f"expected 7 finite numbers [dx, dy, dz, rx, ry, rz, ds]; {', '.join(bad)} "
                          f"{'is' if len(bad) == 1 else 'are'} not finite")
    return vals


def _norm(name: str) -> str:
    name = name[2:] if name.upper().startswith("D_") else name  # ESRI prefixes datum names with D_
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _datum_name(crs: CRS) -> str:
    geod = crs.geodetic_crs
    datum = geod.datum if geod is not None else None
    return datum.name if datum is not None else ""


def wgs84_compatible(crs: CRS) -> bool:
    """True when ``crs``'s datum agrees with WGS 84 to a few centimetres: WGS 84 (any realization), CGCS2000, an
    ITRF or IGS realization, or an unnamed datum on the GRS 1980 or WGS 84 ellipsoid (what a PROJ string with
    ``+ellps=GRS80`` and no ``+towgs84`` makes)."""
    base = crs.source_crs if crs.is_bound else crs
    name = _norm(_datum_name(base))
    if name.startswith(_WGS84_LIKE):
        return True
    ell = base.ellipsoid
    return (bool(name) and name.startswith(_UNNAMED) and ell is not None
            and abs(ell.semi_major_metre - 6378137.0) < 1e-3 and abs(ell.inverse_flattening - 298.2572) < 1e-3)


def _without_ids(node: Any) -> Any:
    """A PROJJSON tree without the authority codes of its CRSs and datums (see the module docstring: GDAL would
    otherwise swap the CRS for its EPSG definition and drop the Helmert)."""
    if isinstance(node, dict):
        kind = str(node.get("type", ""))
        drop = kind.endswith("CRS") or kind in ("GeodeticReferenceFrame", "DatumEnsemble")
        return {k: _without_ids(v) for k, v in node.items() if not (drop and k in ("id", "ids"))}
    if isinstance(node, list):
        return [_without_ids(v) for v in node]
    return node


def with_towgs84(crs: Any, towgs84: Sequence[float]) -> CRS:
    """``crs`` (its own base if it is already bound) bound to WGS 84 by the Position Vector Helmert ``towgs84``
    (PROJ ``+towgs84`` units and convention: metres, arc-seconds, ppm), as a ``BoundCRS`` without authority codes.
    """
    vals = check_towgs84(towgs84)
    crs = CRS.from_user_input(crs)
    base = crs.source_crs if crs.is_bound else crs
    if base.geodetic_crs is None:
        raise ConfigError(f"the CRS {base.name!r} has no geodetic datum to shift")
    base = CRS.from_json_dict(_without_ids(base.to_json_dict()))
    return BoundCRS(source_crs=base, target_crs=CRS.from_epsg(4326),
                    transformation=ToWGS84Transformation(base.geodetic_crs, *vals))


def declared_shift(src_crs: Any, towgs84: Sequence[float], dst_crs: Any) -> tuple[CRS, CRS]:
    """The (source, destination) CRS pair that transforms a file in ``src_crs`` to ``dst_crs`` through WGS 84 with
    the declared Helmert ``towgs84`` (see the module docstring for the convention and why both ends are bound).

    Raises ``ConfigError`` (one line) when the declaration cannot be right: the file is already on a datum that
    agrees with WGS 84 (WGS 84, CGCS2000, ITRF, unnamed GRS 1980: a shift declared on it would move data that
    was already converted a second time), or the grid's CRS is on a datum of its own with no transformation to
    WGS 84 (the file would be shifted to WGS 84, then put on the grid by a zero "ballpark" offset; give the grid
    CRS as a PROJ string with its own ``+towgs84``).
    """
    try:
        src, dst = CRS.from_user_input(src_crs), CRS.from_user_input(dst_crs)
    except CRSError as e:
        raise ConfigError(f"cannot interpret the CRS ({str(e).splitlines()[0]})") from None
    if wgs84_compatible(src):
        raise ConfigError(f"the file is already on datum {_datum_name(src)!r} (within centimetres of WGS 84); "
                          f"towgs84 declares the shift of a file in a datum of its own (Beijing 1954, Xian 1980, ...) "
                          f"and would move it a second time: remove towgs84")
    bound_src = with_towgs84(src, towgs84)
    if dst.is_bound:
        bound_dst = CRS.from_json_dict(_without_ids(dst.to_json_dict()))
    elif wgs84_compatible(dst):
        bound_dst = with_towgs84(dst, (0.0,) * 7)
    else:
        raise ConfigError(f"the grid CRS is on datum {_datum_name(dst)!r}, which has no declared transformation to "
                          f"WGS 84: the file would be shifted to WGS 84 and then put on the grid by a zero ballpark "
                          f"offset; use a CGCS2000/WGS 84 grid CRS, or give grid.crs as a PROJ string with its own "
                          f"+towgs84 (or drop towgs84 if the file is in the grid's datum)")
    return bound_src, bound_dst


def shift_pipeline(src_crs: Any, towgs84: Sequence[float], dst_crs: Any) -> str:
    """The PROJ pipeline string (``+proj=pipeline ...``) of the operation a run applies to a file in ``src_crs``
    with the declared ``towgs84`` on its way to ``dst_crs``: file -> WGS 84 by the Position Vector Helmert -> grid,
    exactly what ``Transformer.from_crs(*declared_shift(...), always_xy=True)`` does (``vectors.io.read``).

    Axes are longitude/easting first (PROJ's "normalized for visualization" order), which is the order GIS software
    feeds a stored operation (QGIS 3.22 fails on the authority-order string of a latitude-first CRS): QGIS takes
    this string in a project's transform context, so it draws the file where the run put it instead of choosing its
    own (ballpark) transformation. Same errors as ``declared_shift``.
    """
    src, dst = declared_shift(src_crs, towgs84, dst_crs)
    text = Transformer.from_crs(src, dst, always_xy=True).to_proj4()
    if not text:  # an operation PROJ cannot write as a string (none for a Helmert between bound CRSs)
        raise ConfigError(f"PROJ gives no single operation from {src.name!r} to {dst.name!r}")
    return text
