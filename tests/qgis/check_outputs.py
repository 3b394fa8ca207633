"""Run with the system Python that has PyQGIS (QGIS's Debian package python3-qgis), headless:

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/qgis/check_outputs.py OUTPUT_FOLDER

Loads every GeoTIFF in the folder as QGIS would (its .qml style is picked up automatically), and prints one JSON
object per layer: validity, CRS, nodata, renderer type, class labels or ramp range, provider statistics.
"""

import json
import os
import sys
from pathlib import Path

from qgis.core import QgsApplication, QgsRasterBandStats, QgsRasterLayer, QgsVectorLayer

app = QgsApplication([], False)
app.initQgis()
folder = Path(sys.argv[1])
for tif in sorted(folder.glob("*.tif")):
    layer = QgsRasterLayer(str(tif), tif.stem)
    rec = {"name": tif.name, "valid": layer.isValid()}
    if layer.isValid():
        prov = layer.dataProvider()
        renderer = layer.renderer()
        stats = prov.bandStatistics(1, QgsRasterBandStats.All)
        rec.update(
            crs_valid=layer.crs().isValid(),
            crs_wkt_has_albers="Albers" in layer.crs().toWkt(),
            nodata=prov.sourceNoDataValue(1) if prov.sourceHasNoDataValue(1) else None,
            renderer=renderer.type(),
            stats_min=stats.minimumValue,
            stats_max=stats.maximumValue,
            width=layer.width(),
            height=layer.height(),
        )
        if renderer.type() == "paletted":
            rec["classes"] = [[c.value, c.label, c.color.name()] for c in renderer.classes()]
        elif renderer.type() == "singlebandpseudocolor":
            shader = renderer.shader().rasterShaderFunction()
            rec["ramp"] = [shader.minimumValue(), shader.maximumValue()]
    print(json.dumps(rec, ensure_ascii=False))

for gpkg in sorted(folder.glob("*.gpkg")):
    layer = QgsVectorLayer(f"{gpkg}|layername={gpkg.stem}", gpkg.stem, "ogr")
    rec = {"name": gpkg.name, "valid": layer.isValid()}
    if layer.isValid():
        rec.update(crs_valid=layer.crs().isValid(), crs_wkt_has_albers="Albers" in layer.crs().toWkt(),
                   renderer=layer.renderer().type(), features=layer.featureCount(),
                   labels=layer.labelsEnabled())
    print(json.dumps(rec, ensure_ascii=False))

project_file = folder / "project.qgs"
if project_file.exists():
    from qgis.core import QgsProject

    project = QgsProject.instance()
    ok = project.read(str(project_file))
    root = project.layerTreeRoot()
    groups = {}
    for group in root.findGroups():
        groups[group.name()] = [[n.name(), n.isVisible()] for n in group.findLayers()]
    layers = []
    for lyr in project.mapLayers().values():
        rec = {"name": lyr.name(), "valid": lyr.isValid(), "source": lyr.source(),
               "crs_valid": lyr.crs().isValid()}
        if lyr.type() == lyr.RasterLayer:
            rec["renderer"] = lyr.renderer().type()
        else:
            rec["renderer"] = lyr.renderer().type() if lyr.renderer() else None
            rec["features"] = lyr.featureCount()
        layers.append(rec)
    print(json.dumps({"project": ok, "crs": project.crs().description(), "crs_valid": project.crs().isValid(),
                      "groups": groups, "layers": layers}, ensure_ascii=False))
# exitQgis() segfaults in headless QGIS 3.22 on some machines; the work is done, so leave without it.
sys.stdout.flush()
os._exit(0)
