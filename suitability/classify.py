"""Classification of a 0..1 suitability score into ordered classes (uint8, 0 = no data).

``classify(score, breaks)`` gives class ``k + 1`` to scores with ``k`` breaks ``<= score`` (right-open bins, as
``numpy.digitize(score, breaks, right=False)``): class 1 holds the lowest scores, class ``len(breaks) + 1`` the
highest; NaN gets 0. ``ClassScheme`` bundles breaks, Chinese and English labels and colours, so the writer of the
GeoTIFF, the QGIS style and the report all show the same classes. The default is five equal-interval classes
(低 / 较低 / 中等 / 较高 / 高, the five-grade wording common in 双评价 suitability maps) coloured with ColorBrewer's
RdYlGn diverging ramp (Brewer, Hatchard & Harrower 2003, colorbrewer2.org), red = low to green = high.

Breaks from the data: ``equal_interval_breaks``, ``quantile_breaks``, ``natural_breaks`` (Jenks / Fisher) and
``geometric_interval_breaks`` take a numpy or dask score (or any layer) and ``n`` classes and return ``n - 1``
breaks, a plain list of floats for ``classify`` and ``ClassScheme.from_breaks``; ``class_breaks(method, data, n,
...)`` picks one by name (``CLASS_METHODS``). Equal interval uses the exact min and max (one ``dask.compute``);
the others work on ``suitability.fitting.valid_sample``, a seeded uniform sample of valid cells that is the same
for numpy and dask and for any chunking, and is all valid cells when there are at most ``sample_size`` of them
(then quantile breaks are exact). Breaks that coincide (a layer with fewer distinct values than classes, or a
quantile landing on a long run of equal values) raise ``ConfigError`` rather than silently giving fewer classes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import dask.array as da
import numpy as np

from rasters.errors import ConfigError, did_you_mean
from suitability.fitting import layer_stats, valid_sample

__all__ = [
    "CLASS_METHODS",
    "DEFAULT_BREAKS",
    "DEFAULT_COLORS",
    "DEFAULT_LABELS",
    "DEFAULT_LABELS_EN",
    "DEFAULT_SCHEME",
    "NODATA_CLASS",
    "ClassScheme",
    "class_breaks",
    "classify",
    "equal_interval_breaks",
    "geometric_interval_breaks",
    "natural_breaks",
    "quantile_breaks",
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
    if len(edges) <= 16:
        # class - 1 = the number of breaks <= score (what np.digitize(right=False) counts), one compare per break:
        # 5x faster than digitize's binary search for the handful of breaks of a class scheme (NaN compares False).
        classes = np.ones(score.shape, dtype=np.uint8)
        for e in edges:
            classes += score >= e
    else:
        classes = (np.digitize(np.where(nan, np.float32(0), score), edges, right=False) + 1).astype(np.uint8)
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


# --- breaks from the data ---------------------------------------------------------------------------------------

QUANTILE_SAMPLE = 1_000_000
NATURAL_BREAKS_SAMPLE = 10_000
GEOMETRIC_SAMPLE = 100_000


def _n_classes(method: str, n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 2 <= n <= 255:
        raise ConfigError(f"{method}: the number of classes must be an integer from 2 to 255, got {n!r}")
    return int(n)


def _finish(method: str, n: int, breaks: Sequence[float], detail: str = "") -> list[float]:
    values = [float(b) for b in breaks]
    try:
        _check_breaks(values)
    except ConfigError:
        shown = ", ".join(f"{v:.6g}" for v in values)
        raise ConfigError(
            f"{method}: {n} classes need {n - 1} distinct breaks, got [{shown}]{detail}; use fewer classes or "
            "fixed breaks"
        ) from None
    return values


def _sample(method: str, data: Any, sample_size: int, seed: int) -> np.ndarray:
    if isinstance(sample_size, bool) or not isinstance(sample_size, int | np.integer) or sample_size < 2:
        raise ConfigError(f"{method}: 'sample_size' must be an integer >= 2, got {sample_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ConfigError(f"{method}: 'seed' must be an integer, got {seed!r}")
    values = valid_sample(data, int(sample_size), int(seed))
    if values.size == 0:
        raise ConfigError(f"{method}: the layer has no valid cells (all NaN), so no breaks can be computed")
    return values


def equal_interval_breaks(data: Any, n: int) -> list[float]:
    """``n - 1`` breaks dividing [min, max] of the valid cells into ``n`` classes of equal width.

    ``breaks[k-1] = min + k (max - min) / n`` (Esri "Data classification methods": Equal Interval); min and max
    are exact (``layer_stats``, one ``dask.compute`` for a dask array).
    """
    n = _n_classes("equal_interval", n)
    stats = layer_stats(data)
    if stats["count"] == 0:
        raise ConfigError("equal_interval: the layer has no valid cells (all NaN), so no breaks can be computed")
    lo, hi = stats["min"], stats["max"]
    return _finish("equal_interval", n, [lo + k * (hi - lo) / n for k in range(1, n)],
                   f" (the layer ranges over [{lo:.6g}, {hi:.6g}])")


def quantile_breaks(data: Any, n: int, sample_size: int = QUANTILE_SAMPLE, seed: int = 0) -> list[float]:
    """``n - 1`` breaks at the ``k / n`` quantiles of the valid cells, so each class holds about as many cells.

    Quantiles are ``numpy.quantile``'s default (linear interpolation between order statistics, Hyndman & Fan
    1996 definition 7) of ``valid_sample(data, sample_size, seed)``: exact when the layer has at most
    ``sample_size`` valid cells, otherwise those of a uniform sample (standard error of a quantile ~
    sqrt(p (1 - p) / sample_size) in probability). Esri "Data classification methods": Quantile.
    """
    n = _n_classes("quantile", n)
    values = _sample("quantile", data, sample_size, seed)
    breaks = np.quantile(values, np.arange(1, n) / n)
    return _finish("quantile", n, breaks, " (many cells share the same value)")


def _fisher_jenks_starts(values: np.ndarray, weights: np.ndarray, n: int) -> list[int]:
    """Start indices of classes 2..n of the partition of sorted distinct ``values`` (with multiplicities
    ``weights``) into ``n`` contiguous classes minimising the total within-class sum of squared deviations.

    Fisher's (1958) exact dynamic programme, the algorithm behind Jenks' natural breaks: ``D[j][i]`` = best cost
    of the first ``i + 1`` values in ``j + 1`` classes, ``D[j][i] = min_s D[j-1][s-1] + SSD(s..i)``, with SSD from
    weighted prefix sums of the centred values. Ties go to the smallest start.
    """
    m = values.size
    centred = values - np.average(values, weights=weights)
    W = np.concatenate([[0.0], np.cumsum(weights)])
    S1 = np.concatenate([[0.0], np.cumsum(weights * centred)])
    S2 = np.concatenate([[0.0], np.cumsum(weights * centred * centred)])

    def ssd(s: np.ndarray, i: np.ndarray) -> np.ndarray:  # classes values[s..i], inclusive
        s1 = S1[i + 1] - S1[s]
        return (S2[i + 1] - S2[s]) - s1 * s1 / (W[i + 1] - W[s])

    previous = ssd(np.zeros(m, dtype=int), np.arange(m))
    back = np.zeros((n, m), dtype=np.int64)
    rows = max(1, 2_000_000 // max(m, 1))  # bound the (rows x m) cost matrix to ~16 MB
    for j in range(1, n):
        current = np.full(m, np.inf)
        for i0 in range(j, m, rows):
            i = np.arange(i0, min(i0 + rows, m))
            s = np.arange(j, i[-1] + 1)
            with np.errstate(divide="ignore", invalid="ignore"):
                cost = previous[s - 1][None, :] + ssd(s[None, :], i[:, None])
            cost[s[None, :] > i[:, None]] = np.inf
            best = np.argmin(cost, axis=1)
            current[i] = cost[np.arange(i.size), best]
            back[j, i] = s[best]
        previous = current
    starts, i = [], m - 1
    for j in range(n - 1, 0, -1):
        starts.append(int(back[j, i]))
        i = starts[-1] - 1
    return sorted(starts)


def natural_breaks(data: Any, n: int, sample_size: int = NATURAL_BREAKS_SAMPLE, seed: int = 0) -> list[float]:
    """Jenks natural breaks: the exact optimal ``n``-class partition (minimum within-class sum of squares) of a
    seeded sample of the valid cells, by Fisher's dynamic programme.

    Jenks, G. F. (1967), "The data model concept in statistical mapping", International Yearbook of Cartography 7;
    Fisher, W. D. (1958), "On grouping for maximum homogeneity", JASA 53. The sample is ``valid_sample(data,
    sample_size, seed)`` (all valid cells if there are at most ``sample_size``), reduced to distinct values with
    counts (an optimal partition never splits equal values). Each break is the smallest sampled value of the
    next class, so ``classify(sample, breaks)`` reproduces the optimal classes under the right-open bins (Esri
    and jenkspy report each class's maximum instead). Cost O(n m^2) for m distinct sampled values, hence the
    modest default sample size.
    """
    n = _n_classes("natural_breaks", n)
    values = _sample("natural_breaks", data, sample_size, seed)
    distinct, counts = np.unique(values, return_counts=True)
    if distinct.size < n:
        raise ConfigError(f"natural_breaks: {n} classes need at least {n} distinct values, the layer (or its "
                          f"sample) has {distinct.size}; use fewer classes")
    starts = _fisher_jenks_starts(distinct, counts.astype(np.float64), n)
    return _finish("natural_breaks", n, distinct[starts])


def _geometric_edges(lo: float, hi: float, n: int, ratio: float, pivot: int, sign: int) -> np.ndarray:
    widths = ratio ** (sign * np.abs(np.arange(n) - pivot).astype(np.float64))
    return lo + np.cumsum(widths / widths.sum())[:-1] * (hi - lo)


def geometric_interval_breaks(
    data: Any, n: int, sample_size: int = GEOMETRIC_SAMPLE, seed: int = 0, max_ratio: float = 100.0
) -> list[float]:
    """Geometrical interval breaks: class widths form a geometric series whose coefficient may switch once to
    its inverse, chosen so that the classes hold as equal numbers of cells as possible.

    Esri, ArcGIS Desktop 9.2 help "Geometrical Interval Classification" (2007): intervals follow a geometric
    series, "the geometric coefficient in this classifier can change once (to its inverse)", found by
    "minimizing the square sum of elements per class". Esri has not published the solver (Wang et al. 2022,
    "Adaptive Geometric Interval Classifier", IJGI 11(8):430, formulate it as an optimisation), so this is our
    reading: widths ``w_k ~ r^(+-|k - p|)`` for k = 0..n-1, summing to max - min of the sample, with the
    coefficient ``r`` in [1, max_ratio] (a 401-point log grid, r = 1 being equal interval) and the switch class
    ``p`` searched exhaustively to minimise ``sum(count_k^2)`` over ``valid_sample(data, sample_size, seed)``;
    ties go to the smaller ``r``. Works for data of any sign (widths, not values, are geometric).
    """
    n = _n_classes("geometric_interval", n)
    if isinstance(max_ratio, bool) or not isinstance(max_ratio, int | float) or not 1 < max_ratio < 1e6:
        raise ConfigError(f"geometric_interval: 'max_ratio' must be a number in (1, 1e6), got {max_ratio!r}")
    values = _sample("geometric_interval", data, sample_size, seed)
    lo, hi = float(values[0]), float(values[-1])
    if lo == hi:
        raise ConfigError(f"geometric_interval: the layer is constant ({lo:.6g}), so it has no intervals to divide")
    best: tuple[float, np.ndarray] | None = None
    for ratio in np.geomspace(1.0, float(max_ratio), 401):
        for sign in (1, -1):
            for pivot in range(n):
                edges = _geometric_edges(lo, hi, n, float(ratio), pivot, sign)
                counts = np.diff(np.concatenate([[0], np.searchsorted(values, edges, side="left"), [values.size]]))
                score = float(np.sum(counts.astype(np.float64) ** 2))
                if best is None or score < best[0]:
                    best = (score, edges)
    assert best is not None
    return _finish("geometric_interval", n, best[1])


CLASS_METHODS = {
    "equal_interval": equal_interval_breaks,
    "quantile": quantile_breaks,
    "natural_breaks": natural_breaks,
    "geometric_interval": geometric_interval_breaks,
}


def class_breaks(method: str, data: Any, n: int, **options: Any) -> list[float]:
    """Breaks for ``n`` classes of ``data`` by the method named ``method`` (a key of ``CLASS_METHODS``), with
    its options (``sample_size``, ``seed``, ...); unknown names give a one-line ``ConfigError`` with a hint."""
    func = CLASS_METHODS.get(method)
    if func is None:
        raise ConfigError(f"unknown classification method '{method}'{did_you_mean(str(method), CLASS_METHODS)}")
    import inspect

    allowed = [p for p in inspect.signature(func).parameters if p not in ("data", "n")]
    for key in options:
        if key not in allowed:
            raise ConfigError(f"classification method '{method}': unknown option '{key}'"
                              f"{did_you_mean(str(key), allowed) if allowed else ' (it takes no options)'}")
    return func(data, n, **options)
