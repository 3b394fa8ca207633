"""Read every feature of a vector layer to find damage before a run starts (``suitability validate --deep``).

``vectors.io.read`` reads only the features inside the grid; a damaged record elsewhere in the file, or one
whose geometry cannot be decoded, shows up here with the range of features it is in.
"""

from __future__ import annotations

import os

import pyogrio
import shapely

from rasters.errors import InputDataError

BATCH = 50_000


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def check_vector(path: str | os.PathLike, layer: str | None = None) -> int:
    """Read and decode every feature of ``layer`` in batches; return the number of features.

    Raises ``InputDataError`` naming the file, the layer and the features (by position) of the first batch that
    cannot be read, then narrows it to the single feature.
    """
    p = str(path)
    try:
        info = pyogrio.read_info(p, layer=layer, force_feature_count=True)
    except Exception as e:  # noqa: BLE001 - pyogrio raises several types for an unreadable file
        raise InputDataError(f"{p}: cannot read vector layer {layer or '(first)'} ({_first_line(e)})") from None
    total = int(info.get("features") or 0)
    for start in range(0, total, BATCH):
        n = min(BATCH, total - start)
        if _bad(p, layer, start, n):
            lo, hi = start, start + n  # bisect to the first bad feature
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _bad(p, layer, lo, mid - lo):
                    hi = mid
                else:
                    lo = mid
            raise InputDataError(f"{p}: layer {layer or '(first)'}: feature {lo} (0-based) cannot be read "
                                 f"({_bad(p, layer, lo, 1)})")
    return total


def _bad(path: str, layer: str | None, skip: int, n: int) -> str | None:
    try:
        df = pyogrio.read_dataframe(path, layer=layer, skip_features=skip, max_features=n)
        geoms = df.geometry.values
        shapely.is_valid_reason(geoms)  # touches every coordinate of every geometry
    except Exception as e:  # noqa: BLE001
        return _first_line(e)
    return None
