"""QGIS layer styles (.qml) written beside every raster output, so a layer dragged into QGIS shows the right
colours, class labels and value range at once (QGIS loads ``name.qml`` beside ``name.tif`` automatically).

Format: QGIS's layer-definition XML (``<qgis><pipe><rasterrenderer ...>``), as QGIS 3.x writes it for a
singleband pseudocolor renderer (continuous layers) and a paletted renderer (class layers).
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import quoteattr

from suitability.classify import ClassScheme

# ColorBrewer RdYlGn (5): red = least suitable, green = most suitable.
SUITABILITY_RAMP = ("#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#1a9641")
# For physical layers (elevation, slope, distance): ColorBrewer YlGnBu-like, light = low values.
NEUTRAL_RAMP = ("#ffffcc", "#a1dab4", "#41b6c4", "#2c7fb8", "#253494")

_HEAD = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" \
        '<qgis version="3.22.0" styleCategories="AllStyleCategories" hasScaleBasedVisibilityFlag="0">\n'


def _hex_rgb(color: str) -> str:
    return color if color.startswith("#") else f"#{color}"


def continuous_qml(vmin: float, vmax: float, colors: Sequence[str] = SUITABILITY_RAMP, units: str = "",
                   precision: int = 2) -> str:
    """Singleband pseudocolor, linearly interpolated from ``vmin`` to ``vmax`` (fixed, not sampled stretch)."""
    if not vmax > vmin:
        vmax = vmin + 1.0
    n = len(colors)
    items = []
    for k, c in enumerate(colors):
        v = vmin + (vmax - vmin) * k / (n - 1)
        label = f"{v:.{precision}f}" + (f" {units}" if units else "")
        items.append(f'          <item alpha="255" value="{v!r}" label={quoteattr(label)} color="{_hex_rgb(c)}"/>')
    return (
        _HEAD
        + "  <pipe>\n"
        + f'    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" alphaBand="-1" '
        f'classificationMin="{vmin!r}" classificationMax="{vmax!r}" nodataColor="">\n'
        + "      <rasterTransparency/>\n"
        + "      <minMaxOrigin><limits>None</limits><extent>WholeRaster</extent><statAccuracy>Exact</statAccuracy>"
        "<cumulativeCutLower>0.02</cumulativeCutLower><cumulativeCutUpper>0.98</cumulativeCutUpper>"
        "<stdDevFactor>2</stdDevFactor></minMaxOrigin>\n"
        + "      <rastershader>\n"
        + f'        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" clip="0" '
        f'minimumValue="{vmin!r}" maximumValue="{vmax!r}" labelPrecision="{precision}">\n'
        + "\n".join(items)
        + "\n        </colorrampshader>\n      </rastershader>\n    </rasterrenderer>\n"
        + '    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>\n'
        + '    <huesaturation colorizeOn="0" saturation="0" grayscaleMode="0" invertColors="0"/>\n'
        + '    <rasterresampler maxOversampling="2"/>\n'
        + "  </pipe>\n  <blendMode>0</blendMode>\n</qgis>\n"
    )


def classes_qml(scheme: ClassScheme, bilingual: bool = True) -> str:
    """Paletted renderer: one entry per class value with its label (高/较高/中等/较低/低) and fixed colour."""
    entries = []
    for k in range(scheme.n_classes):
        label = f"{scheme.labels[k]} ({scheme.labels_en[k]})" if bilingual else scheme.labels[k]
        entries.append(f'        <paletteEntry value="{k + 1}" alpha="255" color="{scheme.colors[k]}" '
                       f"label={quoteattr(label)}/>")
    return (
        _HEAD
        + "  <pipe>\n"
        + '    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="">\n'
        + "      <rasterTransparency/>\n"
        + "      <minMaxOrigin><limits>None</limits><extent>WholeRaster</extent><statAccuracy>Estimated</statAccuracy>"
        "<cumulativeCutLower>0.02</cumulativeCutLower><cumulativeCutUpper>0.98</cumulativeCutUpper>"
        "<stdDevFactor>2</stdDevFactor></minMaxOrigin>\n"
        + "      <colorPalette>\n"
        + "\n".join(entries)
        + "\n      </colorPalette>\n      <colorramp type=\"randomcolors\" name=\"[source]\"/>\n"
        + "    </rasterrenderer>\n"
        + '    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>\n'
        + '    <huesaturation colorizeOn="0" saturation="0" grayscaleMode="0" invertColors="0"/>\n'
        + '    <rasterresampler maxOversampling="2"/>\n'
        + "  </pipe>\n  <blendMode>0</blendMode>\n</qgis>\n"
    )
