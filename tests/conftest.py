"""Shared fixtures: the bundled Qinghai data and small synthetic rasters written on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "qinghai"
ALBERS = "+proj=aea +lat_0=35 +lon_0=96 +lat_1=33 +lat_2=38 +ellps=GRS80 +units=m +no_defs"


@pytest.fixture
def data_dir() -> Path:
    return DATA


def write_tif(path: Path, array: np.ndarray, transform: Affine, crs: str | None, nodata=None, **kw) -> Path:
    profile = {"driver": "GTiff", "width": array.shape[1], "height": array.shape[0], "count": 1,
               "dtype": array.dtype.name, "transform": transform, "nodata": nodata, **kw}
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)
    return path


@pytest.fixture(scope="session", autouse=True)
def _isolated_layer_cache(tmp_path_factory):
    """Every test session gets an empty derived-layer cache (pipelines.cache), never the user's own."""
    import os

    old = os.environ.get("SUITABILITY_CACHE_DIR")
    os.environ["SUITABILITY_CACHE_DIR"] = str(tmp_path_factory.mktemp("layer_cache"))
    yield
    if old is None:
        os.environ.pop("SUITABILITY_CACHE_DIR", None)
    else:
        os.environ["SUITABILITY_CACHE_DIR"] = old
