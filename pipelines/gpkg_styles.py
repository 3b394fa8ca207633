"""Vector outputs as GeoPackages whose default QGIS style is stored inside them (the ``layer_styles`` table QGIS
reads and writes), so a layer dragged into QGIS is styled at once. Written atomically like every output."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from xml.sax.saxutils import quoteattr

import geopandas as gpd

from rasters.atomic import temp_beside

LAYER_STYLES_DDL = """
CREATE TABLE IF NOT EXISTS layer_styles (
  id INTEGER PRIMARY KEY AUTOINCREMENT, f_table_catalog TEXT(256), f_table_schema TEXT(256),
  f_table_name TEXT(256), f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, styleSLD TEXT,
  useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30), update_time DATETIME DEFAULT CURRENT_TIMESTAMP
)"""


def _symbol(geometry: str, color: str, name: str = "0") -> str:
    if geometry == "Polygon":
        opts = (f'<Option name="color" value="{color}" type="QString"/><Option name="style" value="solid" '
                'type="QString"/><Option name="outline_color" value="#555555" type="QString"/>'
                '<Option name="outline_width" value="0.2" type="QString"/>')
        return (f'<symbol type="fill" name="{name}" alpha="0.85"><layer class="SimpleFill" enabled="1">'
                f'<Option type="Map">{opts}</Option></layer></symbol>')
    if geometry == "Line":
        opts = f'<Option name="line_color" value="{color}" type="QString"/><Option name="line_width" value="0.5" ' \
               'type="QString"/>'
        return (f'<symbol type="line" name="{name}" alpha="1"><layer class="SimpleLine" enabled="1">'
                f'<Option type="Map">{opts}</Option></layer></symbol>')
    opts = (f'<Option name="color" value="{color}" type="QString"/><Option name="size" value="2.6" type="QString"/>'
            '<Option name="outline_color" value="#222222" type="QString"/>')
    return (f'<symbol type="marker" name="{name}" alpha="1"><layer class="SimpleMarker" enabled="1">'
            f'<Option type="Map">{opts}</Option></layer></symbol>')


def _wrap(renderer: str, label_field: str | None) -> str:
    labeling = ""
    if label_field:
        labeling = ('<labeling type="simple"><settings calloutType="simple">'
                    f'<text-style fieldName={quoteattr(label_field)} fontSize="8" textColor="0,0,0,255" '
                    'isExpression="0"/><text-buffer bufferDraw="1" '
                    'bufferSize="0.8" bufferColor="255,255,255,255"/><placement placement="0"/></settings>'
                    "</labeling>")
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            f'<qgis version="3.22.0" styleCategories="AllStyleCategories" labelsEnabled="{1 if label_field else 0}">'
            f"{renderer}{labeling}</qgis>\n")


def single_qml(geometry: str, color: str, label_field: str | None = None) -> str:
    r = (f'<renderer-v2 type="singleSymbol" symbollevels="0" enableorderby="0"><symbols>{_symbol(geometry, color)}'
         "</symbols></renderer-v2>")
    return _wrap(r, label_field)


def graduated_qml(field: str, edges: list[float], colors: list[str], labels: list[str], geometry: str,
                  label_field: str | None = None) -> str:
    """Graduated colours on ``field``: class k covers edges[k]..edges[k+1] (len(edges) = len(colors) + 1)."""
    ranges = "".join(
        f'<range lower="{edges[k]!r}" upper="{edges[k + 1]!r}" symbol="{k}" label={quoteattr(labels[k])} '
        'render="true"/>' for k in range(len(colors))
    )
    symbols = "".join(_symbol(geometry, c, str(k)) for k, c in enumerate(colors))
    r = (f'<renderer-v2 type="graduatedSymbol" attr={quoteattr(field)} graduatedMethod="GraduatedColor" '
         f'symbollevels="0" enableorderby="0"><ranges>{ranges}</ranges><symbols>{symbols}</symbols></renderer-v2>')
    return _wrap(r, label_field)


def geometry_kind(gdf: gpd.GeoDataFrame) -> str:
    if len(gdf) == 0:
        return "Polygon"
    t = str(gdf.geom_type.mode().iloc[0])
    return "Point" if "Point" in t else "Line" if "Line" in t else "Polygon"


def write_gpkg_atomic(gdf: gpd.GeoDataFrame, path: Path, layer: str, style_qml: str | None = None) -> Path:
    """Write ``gdf`` as ``layer`` of a new GeoPackage at ``path`` with ``style_qml`` as its default style."""
    tmp = str(temp_beside(path, ".tmp.gpkg"))
    os.unlink(tmp)  # the driver creates it
    try:
        gdf.to_file(tmp, layer=layer, driver="GPKG")
        if style_qml:
            with sqlite3.connect(tmp) as con:
                con.execute(LAYER_STYLES_DDL)
                geom_col = gdf.geometry.name if gdf.geometry.name != "geometry" else "geom"
                row = con.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?",
                                  (layer,)).fetchone()
                if row:
                    geom_col = row[0]
                con.execute(
                    "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, "
                    "styleName, styleQML, styleSLD, useAsDefault, description, owner, ui) "
                    "VALUES ('', '', ?, ?, ?, ?, '', 1, 'default style written by suitability', '', '')",
                    (layer, geom_col, layer, style_qml),
                )
                con.execute(
                    "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description) "
                    "VALUES ('layer_styles', 'attributes', 'layer_styles', 'QGIS layer styles')"
                )
        os.replace(tmp, path)
        return path
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
