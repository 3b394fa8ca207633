"""Classification of a 0..1 suitability score into ordered classes (uint8, 0 = no data).

``classify(score, breaks)`` gives class ``k + 1`` to scores with ``k`` breaks ``<= score`` (right-open bins, as
``numpy.digitize(score, breaks, right=False)``): class 1 holds the lowest scores, class ``len(breaks) + 1`` the
highest; NaN gets 0. ``ClassScheme`` bundles breaks, Chinese and English labels and colours, so the writer of the
GeoTIFF, the QGIS style and the report all show the same classes. The default is five equal-interval classes
(低 / 较低 / 中等 / 较高 / 高, the five-grade wording common in 双评价 suitability maps) coloured with ColorBrewer's
RdYlGn diverging ramp (Brewer, Hatchard & Harrower 2003, colorbrewer2.org), red = low to green = high.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import dask.array as da
import numpy as np

from rasters.errors import ConfigError

__all__ = [
    "DEFAULT_BREAKS",
    "DEFAULT_COLORS",
    "DEFAULT_LABELS",
    "DEFAULT_LABELS_EN",
    "DEFAULT_SCHEME",
    "NODATA_CLASS",
    "ClassScheme",
    "classify",
    "ramp_colors",
]

NODATA_CLASS = 0
DEFAULT_BREAKS: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
DEFAULT_LABELS: tuple[str, ...] = ("低", "较低", "中等", "较高", "高")
DEFAULT_LABELS_EN: tuple[str, ...] = ("low", "fairly low", "medium", "fairly high", "high")
# ColorBrewer RdYlGn, 5 classes.
DEFAULT_COLORS: tuple[str, ...] = ("#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#1a9641")


def _check_breaks(breaks: Sequence[float]) -> tuple[float, ...]:
    if isinstance(breaks, str | bytes) or not isinstance(breaks, Sequence | np.ndarray):
        raise ConfigError(f"class breaks must be a list of numbers, got {breaks!r}")
    values: list[float] = []
    for b in breaks:
        if isinstance(b, bool) or not isinstance(b, int | float | np.integer | np.floating) or not math.isfinite(b):
            raise ConfigError(f"class breaks must be finite numbers, got {list(breaks)!r}")
        values.append(float(b))
    if not values:
        raise ConfigError("class breaks must hold at least one number")
    if len(values) > 254:
        raise ConfigError(f"{len(values)} class breaks make more than 255 classes, too many for a uint8 raster")
    as32 = [float(np.float32(v)) for v in values]
    if any(b <= a for a, b in zip(as32, as32[1:], strict=False)):
        shown = ", ".join(f"{v:g}" for v in values)
        raise ConfigError(f"class breaks must be strictly increasing (no duplicates, also in float32), got [{shown}]")
    return tuple(values)


def _classify_block(breaks: tuple[float, ...], score: np.ndarray) -> np.ndarray:
    # Compared in float32, the score rasters' precision: a score stored as 0.7 is on the break 0.7 (in float64 the
    # float32 value 0.699999988 would fall below it).
    score = score.astype(np.float32, copy=False)
    nan = np.isnan(score)
    edges = np.asarray(breaks, dtype=np.float32)
    classes = np.digitize(np.where(nan, np.float32(0), score), edges, right=False) + 1
    classes = classes.astype(np.uint8)
    classes[nan] = NODATA_CLASS
    return classes


def classify(score: Any, breaks: Sequence[float] = DEFAULT_BREAKS) -> Any:
    """Classes ``1 .. len(breaks) + 1`` (uint8) of a score, right-open bins, 0 where the score is NaN.

    ``score < breaks[0]`` is class 1; ``breaks[k-1] <= score < breaks[k]`` is class ``k + 1``; ``score >=
    breaks[-1]`` is the top class. Breaks must be finite and strictly increasing (``ConfigError`` otherwise).
    Scores and breaks are compared in float32.
    Numpy in, numpy out; a dask array gives a lazy dask array with the same chunks.
    """
    edges = _check_breaks(breaks)
    if isinstance(score, da.Array):
        return score.map_blocks(partial(_classify_block, edges), dtype=np.uint8)
    return _classify_block(edges, np.asarray(score))


def _hex_to_rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def ramp_colors(n: int) -> tuple[str, ...]:
    """``n`` hex colours along the RdYlGn ramp (red -> yellow -> green), linearly interpolated in RGB between the
    five ColorBrewer anchors; ``ramp_colors(5) == DEFAULT_COLORS``."""
    if n < 1:
        raise ConfigError(f"a colour ramp needs at least 1 colour, got {n}")
    anchors = np.array([_hex_to_rgb(c) for c in DEFAULT_COLORS], dtype=np.float64)
    positions = np.linspace(0.0, len(anchors) - 1, n) if n > 1 else np.array([(len(anchors) - 1) / 2])
    out = []
    for p in positions:
        i = min(int(p), len(anchors) - 2)
        t = p - i
        rgb = np.rint(anchors[i] * (1 - t) + anchors[i + 1] * t).astype(int)
        out.append("#{:02x}{:02x}{:02x}".format(*rgb))
    return tuple(out)


def _check_color(color: Any) -> str:
    if not (isinstance(color, str) and len(color) == 7 and color[0] == "#"):
        raise ConfigError(f"class colour must be a hex string like '#1a9641', got {color!r}")
    try:
        int(color[1:], 16)
    except ValueError:
        raise ConfigError(f"class colour must be a hex string like '#1a9641', got {color!r}") from None
    return color.lower()


@dataclass(frozen=True)
class ClassScheme:
    """Breaks, labels (Chinese and English) and colours of a classification; class ``i + 1`` uses entry ``i``.

    ``labels``, ``labels_en`` and ``colors`` each need ``len(breaks) + 1`` entries. Build a scheme for other
    breaks with ``ClassScheme.from_breaks``.
    """

    breaks: tuple[float, ...] = DEFAULT_BREAKS
    labels: tuple[str, ...] = DEFAULT_LABELS
    labels_en: tuple[str, ...] = DEFAULT_LABELS_EN
    colors: tuple[str, ...] = DEFAULT_COLORS

    def __post_init__(self) -> None:
        breaks = _check_breaks(self.breaks)
        n = len(breaks) + 1
        object.__setattr__(self, "breaks", breaks)
        for key in ("labels", "labels_en", "colors"):
            value = getattr(self, key)
            if isinstance(value, str) or len(value) != n:
                raise ConfigError(
                    f"class scheme: {len(breaks)} breaks make {n} classes, so '{key}' needs {n} entries, got {value!r}"
                )
            if key == "colors":
                value = tuple(_check_color(c) for c in value)
            else:
                value = tuple(str(v) for v in value)
            object.__setattr__(self, key, value)

    @classmethod
    def from_breaks(
        cls,
        breaks: Sequence[float],
        labels: Sequence[str] | None = None,
        labels_en: Sequence[str] | None = None,
        colors: Sequence[str] | None = None,
    ) -> ClassScheme:
        """Scheme for any breaks: defaults are the 5-class labels when there are 4 breaks, else "类别 k" /
        "class k", and ``ramp_colors``."""
        edges = _check_breaks(breaks)
        n = len(edges) + 1
        five = n == len(DEFAULT_LABELS)
        return cls(
            breaks=edges,
            labels=tuple(labels) if labels is not None else (DEFAULT_LABELS if five else
                                                              tuple(f"类别 {k}" for k in range(1, n + 1))),
            labels_en=tuple(labels_en) if labels_en is not None else (DEFAULT_LABELS_EN if five else
                                                                      tuple(f"class {k}" for k in range(1, n + 1))),
            colors=tuple(colors) if colors is not None else ramp_colors(n),
        )

    @property
    def n_classes(self) -> int:
        return len(self.breaks) + 1

    def classify(self, score: Any) -> Any:
        """``classify(score, self.breaks)``."""
        return classify(score, self.breaks)

    def as_record(self) -> dict[str, Any]:
        """Plain JSON-ready data, one entry per class (``value`` is the raster code)."""
        bounds = (-math.inf, *self.breaks, math.inf)
        return {
            "nodata": NODATA_CLASS,
            "classes": [
                {
                    "value": k + 1,
                    "min": None if k == 0 else bounds[k],
                    "max": None if k == self.n_classes - 1 else bounds[k + 1],
                    "label": self.labels[k],
                    "label_en": self.labels_en[k],
                    "color": self.colors[k],
                }
                for k in range(self.n_classes)
            ],
        }


DEFAULT_SCHEME = ClassScheme()
