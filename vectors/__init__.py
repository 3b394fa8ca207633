"""Vector layers: read, validate and repair, reproject, rasterize onto the analysis grid."""

from .io import layers, read, repair
from .rasterize import mask, rasterize

__all__ = ["layers", "mask", "rasterize", "read", "repair"]
