"""Run with the system Python that has PyQGIS (QGIS's Debian package python3-qgis), headless:

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/qgis/check_layer_positions.py PROJECT.qgs LAYER [LAYER...]

Opens the project as QGIS does and prints one JSON object per named vector layer: its CRS, the project CRS, and
every vertex of every feature (in feature-id order) put in the project CRS three ways:

- ``context``: ``QgsCoordinateTransform(layer CRS, project CRS, project.transformContext())``;
- ``canvas``: ``QgsMapSettings.layerToMapCoordinates`` with the project's CRS and transform context, which is the
  transformation the map canvas draws the layer with;
- ``default``: the same CRS pair with an empty transform context (QGIS's own choice of operation).
"""

import json
import os
import sys

from qgis.core import (
    QgsApplication,
    QgsCoordinateTransform,
    QgsCoordinateTransformContext,
    QgsMapSettings,
    QgsPointXY,
    QgsProject,
)

app = QgsApplication([], False)
app.initQgis()
project = QgsProject.instance()
ok = project.read(sys.argv[1])
ctx = project.transformContext()
settings = QgsMapSettings()
settings.setDestinationCrs(project.crs())
settings.setTransformContext(ctx)
for name in sys.argv[2:]:
    layer = project.mapLayersByName(name)[0]
    settings.setLayers([layer])
    via_ctx = QgsCoordinateTransform(layer.crs(), project.crs(), ctx)
    via_default = QgsCoordinateTransform(layer.crs(), project.crs(), QgsCoordinateTransformContext())
    rec = {"name": name, "project_read": ok, "valid": layer.isValid(), "layer_proj": layer.crs().toProj(),
           "project_proj": project.crs().toProj(), "fids": [], "source": [], "context": [], "canvas": [],
           "default": []}
    for feat in sorted(layer.getFeatures(), key=lambda f: f.id()):
        rec["fids"].append(feat.id())
        for v in feat.geometry().vertices():
            p = QgsPointXY(v.x(), v.y())
            rec["source"].append([p.x(), p.y()])
            for key, q in (("context", via_ctx.transform(p)), ("canvas", settings.layerToMapCoordinates(layer, p)),
                           ("default", via_default.transform(p))):
                rec[key].append([q.x(), q.y()])
    print(json.dumps(rec))
# exitQgis() segfaults in headless QGIS 3.22 on some machines; the work is done, so leave without it.
sys.stdout.flush()
os._exit(0)
