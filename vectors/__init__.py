"""Vector layers: read, validate and repair, reproject, rasterize onto the analysis grid."""
