"""A QGIS project (``project.qgs``) in the output folder: every output layer, relative paths, the grid's CRS as
project CRS, layers grouped (inputs, layers, criteria, suitability) with their styles embedded, and sensible
visibility (suitability and the province outline on, the rest off). Double-click it and everything is there.
A vector input with a declared datum shift (``towgs84``) is listed with its bound CRS and the run's operation in
the project's transform context, so QGIS draws it where the run put it (see ``_transform_context``).

Written as QGIS 3.x project XML (the format ``QgsProject.write`` produces, reduced to what QGIS needs to load);
checked by opening it with PyQGIS in ``tests/test_qgis.py``.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from pyproj import CRS


@dataclass
class ProjectLayer:
    """One layer of the project: a raster GeoTIFF with its .qml, or a vector layer of a GeoPackage/any OGR file."""

    name: str
    path: Path
    group: str
    visible: bool = False
    kind: str = "raster"  # "raster" or "vector"
    qml: str | None = None  # raster style (the .qml text) to embed
    vector_layer: str | None = None
    geometry: str = "Polygon"  # Point, Line or Polygon (vectors)
    outline_only: bool = False
    color: str = "#3a7bd5"
    crs_wkt: str | None = None  # the layer's own CRS (vectors keep theirs; rasters are on the grid)
    # The PROJ pipeline from crs_wkt to the project CRS that QGIS must use for this layer (a declared datum shift,
    # ``rasters.datum.shift_pipeline``); written in the project's transform context. None: QGIS chooses.
    coordinate_op: str | None = None
    layer_id: str = field(default="")


GROUP_ORDER = ("Suitability", "Sites", "Relocation", "Water", "Criteria", "Layers", "Inputs")


def _rel(path: Path | str, folder: Path) -> str:
    if str(path).startswith("/vsi") or "://" in str(path):
        return str(path)  # a GDAL virtual path or URL, as the config gave it
    rel = os.path.relpath(path, folder)
    return rel if rel.startswith("..") else f"./{rel}"


@lru_cache(maxsize=16)
def _srs(crs_wkt: str) -> str:
    # Cached: to_authority() searches PROJ's whole database for a custom CRS (0.3 s a call, once per layer).
    crs = CRS.from_wkt(crs_wkt)
    with warnings.catch_warnings():  # the PROJ string is a fallback for old readers; WKT2 is authoritative
        warnings.simplefilter("ignore", UserWarning)
        proj4 = crs.to_proj4() or ""
    auth = crs.to_authority()
    authid = f"{auth[0]}:{auth[1]}" if auth else ""
    return (
        "<spatialrefsys>"
        f"<wkt>{escape(crs.to_wkt(version='WKT2_2019'))}</wkt>"
        f"<proj4>{escape(proj4)}</proj4>"
        f"<srsid>0</srsid><srid>0</srid><authid>{escape(authid)}</authid>"
        f"<description>{escape(crs.name)}</description>"
        f"<projectionacronym></projectionacronym><ellipsoidacronym></ellipsoidacronym>"
        f"<geographicflag>{'true' if crs.is_geographic else 'false'}</geographicflag>"
        "</spatialrefsys>"
    )


def _pipe(qml: str) -> str:
    m = re.search(r"<pipe>.*</pipe>", qml, flags=re.S)
    return m.group(0) if m else ""


def _vector_style(layer: ProjectLayer) -> str:
    """The renderer (and labels) of a vector layer: from its .qml when given, else a plain symbol."""
    if layer.qml:
        m = re.search(r"<renderer-v2.*</renderer-v2>", layer.qml, flags=re.S)
        lab = re.search(r"<labeling.*</labeling>", layer.qml, flags=re.S)
        if m:
            return m.group(0) + (lab.group(0) if lab else "")
    return _vector_renderer(layer)


def _vector_renderer(layer: ProjectLayer) -> str:
    if layer.geometry == "Polygon":
        fill = "no" if layer.outline_only else "solid"
        props = (f'<Option type="Map"><Option name="color" value="{layer.color}" type="QString"/>'
                 f'<Option name="style" value="{fill}" type="QString"/>'
                 f'<Option name="outline_color" value="#333333" type="QString"/>'
                 f'<Option name="outline_width" value="0.3" type="QString"/></Option>')
        sym = f'<symbol type="fill" name="0" alpha="1"><layer class="SimpleFill" enabled="1">{props}</layer></symbol>'
    elif layer.geometry == "Line":
        props = (f'<Option type="Map"><Option name="line_color" value="{layer.color}" type="QString"/>'
                 f'<Option name="line_width" value="0.3" type="QString"/></Option>')
        sym = f'<symbol type="line" name="0" alpha="1"><layer class="SimpleLine" enabled="1">{props}</layer></symbol>'
    else:
        props = (f'<Option type="Map"><Option name="color" value="{layer.color}" type="QString"/>'
                 f'<Option name="size" value="2" type="QString"/></Option>')
        sym = (f'<symbol type="marker" name="0" alpha="1"><layer class="SimpleMarker" enabled="1">{props}</layer>'
               "</symbol>")
    return f'<renderer-v2 type="singleSymbol" symbollevels="0" enableorderby="0"><symbols>{sym}</symbols></renderer-v2>'


def project_xml(title: str, crs_wkt: str, layers: list[ProjectLayer], folder: Path,
                extent: tuple[float, float, float, float]) -> str:
    """The .qgs XML text; paths are written relative to ``folder``."""
    for i, lyr in enumerate(layers):
        lyr.layer_id = lyr.layer_id or f"{re.sub(r'[^A-Za-z0-9_]', '_', lyr.name)}_{i:03d}"
    srs = _srs(crs_wkt)
    tree, maplayers, order = [], [], []
    for group in GROUP_ORDER:
        members = [lyr for lyr in layers if lyr.group == group]
        if not members:
            continue
        any_on = any(m.visible for m in members)
        items = []
        for lyr in members:
            src = _source(lyr, folder)
            checked = "Qt::Checked" if lyr.visible else "Qt::Unchecked"
            provider = "gdal" if lyr.kind == "raster" else "ogr"
            items.append(f'<layer-tree-layer id={quoteattr(lyr.layer_id)} name={quoteattr(lyr.name)} '
                         f'source={quoteattr(src)} providerKey="{provider}" checked="{checked}" expanded="0">'
                         "<customproperties/></layer-tree-layer>")
            order.append(f"<item>{escape(lyr.layer_id)}</item>")
            maplayers.append(_maplayer(lyr, src, _srs(lyr.crs_wkt) if lyr.crs_wkt else srs))
        gchecked = "Qt::Checked" if any_on else "Qt::Unchecked"
        tree.append(f'<layer-tree-group name={quoteattr(group)} checked="{gchecked}" expanded="1">'
                    "<customproperties/>" + "".join(items) + "</layer-tree-group>")
    xmin, ymin, xmax, ymax = extent
    ext = f"<xmin>{xmin!r}</xmin><ymin>{ymin!r}</ymin><xmax>{xmax!r}</xmax><ymax>{ymax!r}</ymax>"
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        f'<qgis projectname={quoteattr(title)} version="3.22.16-Białowieża">\n'
        '  <homePath path=""/>\n'
        f"  <title>{escape(title)}</title>\n"
        f"  <projectCrs>{srs}</projectCrs>\n"
        '  <layer-tree-group><customproperties/>' + "".join(tree) + "</layer-tree-group>\n"
        f'  <mapcanvas name="theMapCanvas" annotationsVisible="1"><units>meters</units><extent>{ext}</extent>'
        f"<rotation>0</rotation><destinationsrs>{srs}</destinationsrs><rendermaptile>0</rendermaptile>"
        "</mapcanvas>\n"
        "  <projectlayers>\n" + "\n".join(maplayers) + "\n  </projectlayers>\n"
        "  <layerorder>" + "".join(f'<layer id={quoteattr(lyr.layer_id)}/>' for lyr in layers) + "</layerorder>\n"
        f"  {_transform_context(layers, srs)}\n"
        '  <properties><Paths><Absolute type="bool">false</Absolute></Paths>'
        '<Measure><Ellipsoid type="QString">NONE</Ellipsoid></Measure>'
        '<SpatialRefSys><ProjectionsEnabled type="int">1</ProjectionsEnabled></SpatialRefSys></properties>\n'
        "</qgis>\n"
    )


def _transform_context(layers: list[ProjectLayer], project_srs: str) -> str:
    """``<transformContext>`` as ``QgsProject.write`` writes it (QGIS 3.22): one ``<srcDest>`` per (layer CRS,
    project CRS) pair with the operation QGIS must use instead of its own choice.

    Why: QGIS picks its transformation between two CRSs itself; from a bound Xian 1980 / Beijing 1954 CRS to a grid
    CRS on another datum it takes PROJ's ballpark (no shift) and draws the layer tens of metres from the outputs.
    The pair is keyed by CRS, so the layer's CRS is its bound CRS (a distinct CRS per declared shift: another file
    in the same datum, without a declaration, keeps QGIS's default). ``allowFallback`` as QGIS's default: a point
    the pipeline cannot transform (far outside both projections) falls back rather than stopping the render.
    """
    entries = {}
    for lyr in layers:
        if lyr.coordinate_op and lyr.crs_wkt:
            entries.setdefault((lyr.crs_wkt, lyr.coordinate_op),
                               f'<srcDest allowFallback="1" coordinateOp={quoteattr(lyr.coordinate_op)}>'
                               f"<src>{_srs(lyr.crs_wkt)}</src><dest>{project_srs}</dest></srcDest>")
    return "<transformContext>" + "".join(entries.values()) + "</transformContext>"


def _source(lyr: ProjectLayer, folder: Path) -> str:
    rel = _rel(lyr.path, folder)
    return f"{rel}|layername={lyr.vector_layer}" if lyr.kind == "vector" and lyr.vector_layer else rel


def _maplayer(lyr: ProjectLayer, src: str, srs: str) -> str:
    if lyr.kind == "raster":
        body = _pipe(lyr.qml or "")
        return (f'    <maplayer type="raster" hasScaleBasedVisibilityFlag="0" refreshOnNotifyEnabled="0" '
                f'autoRefreshEnabled="0"><id>{escape(lyr.layer_id)}</id><datasource>{escape(src)}</datasource>'
                f"<layername>{escape(lyr.name)}</layername><srs>{srs}</srs><provider>gdal</provider>"
                f"{body}<blendMode>0</blendMode></maplayer>")
    style = _vector_style(lyr)
    labels = ' labelsEnabled="1"' if "<labeling" in style else ""
    return (f'    <maplayer type="vector" geometry="{lyr.geometry}"{labels} hasScaleBasedVisibilityFlag="0" '
            f'refreshOnNotifyEnabled="0" autoRefreshEnabled="0"><id>{escape(lyr.layer_id)}</id>'
            f"<datasource>{escape(src)}</datasource><layername>{escape(lyr.name)}</layername><srs>{srs}</srs>"
            f'<provider encoding="UTF-8">ogr</provider>{style}<blendMode>0</blendMode>'
            "</maplayer>")
