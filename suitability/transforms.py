"""Criterion transforms: map a criterion layer's values (metres, degrees, minutes...) to a suitability score.

Every transform is a frozen dataclass whose parameters are checked when it is built, and whose ``__call__`` is a
pure elementwise function: it takes a numpy or dask array of any real dtype and returns a float32 array of scores
in [0, 1] of the same shape (a dask array stays lazy and keeps its chunks). NaN (no data) in gives NaN out.
Because the function is elementwise and applied per block with ``map_blocks``, the result is identical on one
chunk and on many.

``TRANSFORMS`` maps the names used in configs to the classes; ``make_transform(name, params)`` builds one from
plain parameters and reports an unknown name or parameter as a one-line ``ConfigError``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import dask.array as da
import numpy as np

from rasters.errors import ConfigError, did_you_mean

__all__ = ["TRANSFORMS", "Breaks", "Linear", "Transform", "make_transform"]

# Scores live on the 0..1 evaluation scale (one of the scales Esri lists for suitability models; the overlay
# and the default class breaks in ``classify`` assume it).
SCORE_MIN = 0.0
SCORE_MAX = 1.0


def _elementwise(func: Callable[[np.ndarray], np.ndarray], x: Any) -> Any:
    """Apply a numpy kernel to a numpy or dask array; a dask array stays lazy with the same chunks."""
    if isinstance(x, da.Array):
        return x.map_blocks(func, dtype=np.float32)
    return func(np.asarray(x))


def _real(owner: str, key: str, value: Any, *, allow_nan: bool = False) -> float:
    """Check that a parameter is a real number (not a bool or a string) and return it as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ConfigError(f"transform '{owner}': parameter '{key}' must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value) and allow_nan:
        return value
    if not math.isfinite(value):
        raise ConfigError(f"transform '{owner}': parameter '{key}' must be a finite number, got {value!r}")
    return value


def _score(owner: str, key: str, value: Any, *, allow_nan: bool = False) -> float:
    """Check that a parameter is a score on the 0..1 scale (NaN allowed where it means 'no data')."""
    value = _real(owner, key, value, allow_nan=allow_nan)
    if not (SCORE_MIN <= value <= SCORE_MAX or (allow_nan and math.isnan(value))):
        extra = " or NaN (no data)" if allow_nan else ""
        raise ConfigError(
            f"transform '{owner}': parameter '{key}' must be a score in [{SCORE_MIN:g}, {SCORE_MAX:g}]{extra}, "
            f"got {value!r}"
        )
    return value


class Transform:
    """Base of all transforms: ``t(x)`` maps criterion values to float32 scores (numpy or dask, NaN kept)."""

    name: ClassVar[str]

    def __call__(self, x: Any) -> Any:
        return _elementwise(self._kernel, x)

    def _kernel(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def as_record(self) -> dict[str, Any]:
        """Plain-data description for run.json: ``{"transform": name, **parameters}``."""
        record: dict[str, Any] = {"transform": self.name}
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            record[field.name] = list(value) if isinstance(value, tuple) else value
        return record


@dataclass(frozen=True)
class Linear(Transform):
    """Linear ramp between two thresholds, in the criterion's own units.

    For ``increasing=True`` the score is 0 at ``x <= lower``, 1 at ``x >= upper`` and ``(x - lower) / (upper -
    lower)`` in between; ``increasing=False`` mirrors it (1 at ``lower``, 0 at ``upper``), for "less is better"
    criteria such as slope or travel time.

    Outside the thresholds the score is clamped to the end value unless ``below`` / ``above`` is given: then every
    cell with ``x < lower`` gets ``below`` and every cell with ``x > upper`` gets ``above`` (a score in [0, 1], or
    NaN to make it no data). The thresholds themselves stay on the ramp. These are the "lower threshold / value
    below threshold / upper threshold / value above threshold" semantics of Esri ArcGIS Pro's Rescale by Function
    and Suitability Modeler (``arcpy.sa.TfLinear``; see the help page "The interaction of the lower and upper
    thresholds"), on a 0..1 evaluation scale with the function's minimum and maximum at the thresholds.
    """

    name: ClassVar[str] = "linear"

    lower: float
    upper: float
    increasing: bool = True
    below: float | None = None
    above: float | None = None

    def __post_init__(self) -> None:
        lower = _real(self.name, "lower", self.lower)
        upper = _real(self.name, "upper", self.upper)
        if lower >= upper:
            raise ConfigError(
                f"transform 'linear': 'lower' ({lower:g}) must be smaller than 'upper' ({upper:g}); "
                "use increasing: false for a decreasing ramp"
            )
        if not math.isfinite(upper - lower):
            raise ConfigError(f"transform 'linear': 'upper' - 'lower' overflows ({lower:g} to {upper:g})")
        if not isinstance(self.increasing, bool | np.bool_):
            raise ConfigError(
                f"transform 'linear': parameter 'increasing' must be true or false, got {self.increasing!r}"
            )
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        object.__setattr__(self, "increasing", bool(self.increasing))
        for key in ("below", "above"):
            value = getattr(self, key)
            if value is not None:
                object.__setattr__(self, key, _score(self.name, key, value, allow_nan=True))

    def _kernel(self, x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32, copy=False)
        # The ramp in float64 (exact 0 and 1 at the thresholds); the threshold tests in float32, the layer's own
        # precision, so a cell stored as the threshold's decimal value counts as on the threshold.
        ramp = np.clip((x.astype(np.float64) - self.lower) / (self.upper - self.lower), 0.0, 1.0)
        if not self.increasing:
            ramp = 1.0 - ramp
        if self.below is not None:
            ramp = np.where(x < np.float32(self.lower), self.below, ramp)
        if self.above is not None:
            ramp = np.where(x > np.float32(self.upper), self.above, ramp)
        # NaN compares False above, so it reaches here untouched by below/above and stays NaN through the ramp.
        return ramp.astype(np.float32)


@dataclass(frozen=True)
class Breaks(Transform):
    """Piecewise-constant scores between class edges, in the criterion's own units.

    With edges ``e[0] < e[1] < ... < e[n-1]`` and ``n + 1`` scores, a value ``x`` gets ``scores[k]`` where ``k`` is
    the number of edges ``<= x``: ``x < e[0]`` gets ``scores[0]``, ``e[k-1] <= x < e[k]`` gets ``scores[k]``, and
    ``x >= e[n-1]`` gets ``scores[n]``. Bins are closed on the left and open on the right, like
    ``numpy.digitize(x, edges, right=False)``; a value exactly on an edge belongs to the bin above it. Values and
    edges are compared in float32 (the layers' precision). This is the
    usual graded-criterion table of 双评价 technical guides (e.g. slope grades), written as edges plus scores.
    """

    name: ClassVar[str] = "breaks"

    edges: tuple[float, ...]
    scores: tuple[float, ...]

    def __post_init__(self) -> None:
        for key in ("edges", "scores"):
            value = getattr(self, key)
            if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
                raise ConfigError(f"transform 'breaks': parameter '{key}' must be a list of numbers, got {value!r}")
        edges = tuple(_real(self.name, f"edges[{i}]", v) for i, v in enumerate(self.edges))
        scores = tuple(_score(self.name, f"scores[{i}]", v) for i, v in enumerate(self.scores))
        if not edges:
            raise ConfigError("transform 'breaks': 'edges' must hold at least one number")
        if len(scores) != len(edges) + 1:
            raise ConfigError(
                f"transform 'breaks': {len(edges)} edges make {len(edges) + 1} bins, so 'scores' needs "
                f"{len(edges) + 1} values, got {len(scores)}"
            )
        as32 = [float(np.float32(e)) for e in edges]
        if any(b <= a for a, b in zip(as32, as32[1:], strict=False)):
            shown = ", ".join(f"{e:g}" for e in edges)
            raise ConfigError(
                f"transform 'breaks': 'edges' must be strictly increasing (and distinct in float32), got [{shown}]"
            )
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "scores", scores)

    def _kernel(self, x: np.ndarray) -> np.ndarray:
        # Compared in float32, the layer's own precision: a cell stored as an edge's decimal value is on the edge.
        x = x.astype(np.float32, copy=False)
        nan = np.isnan(x)
        # digitize counts edges <= x (right=False); NaN would land in the last bin, so it is put back below.
        index = np.digitize(np.where(nan, np.float32(0), x), np.asarray(self.edges, dtype=np.float32), right=False)
        out = np.asarray(self.scores, dtype=np.float32)[index]
        out[nan] = np.nan
        return out


TRANSFORMS: dict[str, type[Transform]] = {cls.name: cls for cls in (Linear, Breaks)}


def make_transform(name: str, params: Mapping[str, Any]) -> Transform:
    """Build the transform called ``name`` (a key of ``TRANSFORMS``) from plain parameters.

    Raises ``ConfigError`` with one line for an unknown transform name, an unknown or missing parameter, or a
    parameter value the transform rejects.
    """
    cls = TRANSFORMS.get(name)
    if cls is None:
        raise ConfigError(f"unknown transform '{name}'{did_you_mean(str(name), TRANSFORMS)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in params:
        if key not in fields:
            raise ConfigError(f"transform '{name}': unknown parameter '{key}'{did_you_mean(str(key), fields)}")
    required = [
        f.name
        for f in fields.values()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [key for key in required if key not in params]
    if missing:
        raise ConfigError(
            f"transform '{name}': missing parameter '{missing[0]}' (required: {', '.join(required)}; "
            f"optional: {', '.join(k for k in fields if k not in required) or 'none'})"
        )
    return cls(**params)
