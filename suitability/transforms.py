"""Criterion transforms: map a criterion layer's values (metres, degrees, minutes...) to a suitability score.

Every transform is a frozen dataclass whose parameters are checked when it is built, and whose ``__call__`` is a
pure elementwise function: it takes a numpy or dask array of any real dtype and returns a float32 array of scores
in [0, 1] of the same shape (a dask array stays lazy and keeps its chunks). NaN (no data) in gives NaN out.
Because the function is elementwise and applied per block with ``map_blocks``, the result is identical on one
chunk and on many.

``TRANSFORMS`` maps the names used in configs to the classes; ``make_transform(name, params)`` builds one from
plain parameters and reports an unknown name or parameter as a one-line ``ConfigError``.

The families
------------
* Ramps and tables: ``linear``, ``symmetric_linear``, ``piecewise``, ``breaks``, ``reclass``.
* Fuzzy membership curves, with the formulas of Esri ArcGIS Pro's *Fuzzy Membership* tool (help pages "How Fuzzy
  Membership works" and the arcpy classes ``FuzzyGaussian``, ``FuzzyNear``, ``FuzzySmall``, ``FuzzyLarge``,
  ``FuzzyMSSmall``, ``FuzzyMSLarge``): ``gaussian``, ``near``, ``small``, ``large``, ``ms_small``, ``ms_large``, and
  the S-curves ``sigmoid``, ``logistic_growth``, ``logistic_decay``. Their values are memberships in [0, 1] as the
  formula gives them (not stretched).
* Unbounded curves of Esri's *Rescale by Function* (help page "Formulas for the transformation functions", arcpy
  classes ``TfPower``, ``TfExponential``, ``TfLogarithm``): ``power``, ``exponential``, ``logarithm``. Their raw
  values are not scores, so, as Rescale by Function does, they are stretched linearly so that the function's value
  at ``lower`` maps to 0 and at ``upper`` maps to 1 (these functions are monotone, so those are its min and max).

Options shared by every transform
---------------------------------
* Thresholds (all but ``breaks`` and ``reclass``): ``lower`` / ``upper`` bound the range where the function is
  applied. A value outside is scored as if it were on the nearer threshold, unless ``below`` / ``above`` is given:
  then every cell with ``x < lower`` gets ``below`` and every cell with ``x > upper`` gets ``above`` (a final output
  value, or NaN for no data). These are the "lower threshold / value below threshold / upper threshold / value
  above threshold" of ArcGIS Pro's Rescale by Function (help page "The interaction of the lower and upper
  thresholds"). Values are compared with the thresholds in float32, the layers' precision.
* ``hedge``: ``very`` squares the membership (mu^2, concentration) and ``somewhat`` takes its square root
  (sqrt(mu), dilation), Zadeh's linguistic hedges as offered by ArcGIS Pro's Fuzzy Membership tool ("Hedge:
  VERY / SOMEWHAT"). Both keep 0 and 1 and preserve the order of scores.
* ``scale: [lo, hi]``: maps the 0..1 membership linearly onto ``lo .. hi`` (e.g. ``[1, 10]``, the "from scale /
  to scale" evaluation scale of Rescale by Function); ``lo > hi`` reverses the preference. ``below``, ``above``
  and ``reclass``'s ``unlisted`` are values on this output scale and are neither hedged nor rescaled.
  The order is: function -> hedge -> scale -> below/above.

Fitting parameters to the layer
-------------------------------
Some parameters may be left out and fitted from the layer's statistics (the mean and standard deviation of an
MS-Small curve, the midpoint of a Gaussian, the thresholds of a linear ramp...). ``make_transform`` then returns
a transform with those parameters set to ``None``; ``transform.needs_fit`` is True and calling it raises
``ConfigError``. ``transform.fit(stats, layer=name)`` returns the completed transform, a new frozen instance
whose ``as_record()`` holds the fitted numbers (for run.json), where ``stats`` is the dict of
``suitability.fitting.layer_stats(array)`` (``count``, ``min``, ``max``, ``mean``, ``std`` of the valid cells,
computed lazily in one ``dask.compute``). A layer without valid cells, or one whose statistics cannot give a
valid parameter (e.g. a constant layer, sigma = 0), raises a one-line ``ConfigError`` naming the transform, the
layer and the parameter. Each class lists its fit rules in ``fit_rules``; the docstrings say what is fitted.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import dask.array as da
import numpy as np
from scipy.special import expit

from rasters.errors import ConfigError, did_you_mean

__all__ = [
    "HEDGES",
    "TRANSFORMS",
    "Breaks",
    "Exponential",
    "Gaussian",
    "Large",
    "Linear",
    "Logarithm",
    "LogisticDecay",
    "LogisticGrowth",
    "MSLarge",
    "MSSmall",
    "Near",
    "Piecewise",
    "Power",
    "Reclass",
    "Sigmoid",
    "Small",
    "SymmetricLinear",
    "Transform",
    "make_transform",
]

# Scores live on the 0..1 evaluation scale (one of the scales Esri lists for suitability models; the overlay
# and the default class breaks in ``classify`` assume it). ``scale`` maps them elsewhere.
SCORE_MIN = 0.0
SCORE_MAX = 1.0

HEDGES: tuple[str, ...] = ("very", "somewhat")

# A fit rule takes the layer statistics and the parameters known so far (fitted ones included, in rule order)
# and returns the parameter's value; it raises _FitError with a reason a user can act on.
FitRule = Callable[[Mapping[str, Any], Mapping[str, Any]], float]


class _FitError(ValueError):
    pass


def _stat(stats: Mapping[str, Any], key: str) -> float:
    value = stats.get(key)
    if value is None or not math.isfinite(float(value)):
        raise _FitError(f"the layer statistic '{key}' is {value!r}")
    return float(value)


def _fit_min(stats: Mapping[str, Any], params: Mapping[str, Any]) -> float:
    return _stat(stats, "min")


def _fit_max(stats: Mapping[str, Any], params: Mapping[str, Any]) -> float:
    return _stat(stats, "max")


def _fit_mean(stats: Mapping[str, Any], params: Mapping[str, Any]) -> float:
    return _stat(stats, "mean")


def _fit_std(stats: Mapping[str, Any], params: Mapping[str, Any]) -> float:
    std = _stat(stats, "std")
    if std <= 0:
        raise _FitError("the layer is constant (standard deviation 0)")
    return std


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


def _positive(owner: str, key: str, value: Any) -> float:
    value = _real(owner, key, value)
    if value <= 0:
        raise ConfigError(f"transform '{owner}': parameter '{key}' must be greater than 0, got {value:g}")
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


def _bool(owner: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ConfigError(f"transform '{owner}': parameter '{key}' must be true or false, got {value!r}")
    return bool(value)


def _pairs(owner: str, key: str, value: Any) -> list[tuple[Any, Any]]:
    """A list of ``[x, y]`` pairs (or a mapping ``{x: y}``) as a list of tuples, without checking the numbers."""
    if isinstance(value, Mapping):
        return list(value.items())
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        raise ConfigError(f"transform '{owner}': parameter '{key}' must be a list of [value, score] pairs, "
                          f"got {value!r}")
    out = []
    for i, pair in enumerate(value):
        if isinstance(pair, str | bytes) or not isinstance(pair, Sequence | np.ndarray) or len(pair) != 2:
            raise ConfigError(f"transform '{owner}': '{key}[{i}]' must be a [value, score] pair, got {pair!r}")
        out.append((pair[0], pair[1]))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


COMMON_FIELDS = ("hedge", "scale")


@dataclass(frozen=True)
class Transform:
    """Base of all transforms: ``t(x)`` maps criterion values to float32 scores (numpy or dask, NaN kept).

    Subclasses implement ``_membership(v)``: the function on float64 values already clipped to the thresholds,
    returning float64 memberships in [0, 1] (NaN kept); the base class applies hedge, scale and below/above.
    """

    name: ClassVar[str]
    # Parameters that may be left out (None) and fitted from the layer statistics, in the order they are fitted.
    fit_rules: ClassVar[dict[str, FitRule]] = {}

    hedge: str | None = field(default=None, kw_only=True)
    scale: tuple[float, float] | None = field(default=None, kw_only=True)

    # --- construction ---------------------------------------------------------------------------------------

    def __post_init__(self) -> None:
        self._check_common()
        self._check()

    def _set(self, key: str, value: Any) -> None:
        object.__setattr__(self, key, value)

    def _check_common(self) -> None:
        if self.hedge is not None:
            if not isinstance(self.hedge, str) or self.hedge not in HEDGES:
                raise ConfigError(
                    f"transform '{self.name}': parameter 'hedge' must be one of {', '.join(HEDGES)} or absent, got "
                    f"{self.hedge!r}{did_you_mean(str(self.hedge), HEDGES) if isinstance(self.hedge, str) else ''}"
                )
        if self.scale is not None:
            scale = self.scale
            if isinstance(scale, str | bytes) or not isinstance(scale, Sequence | np.ndarray) or len(scale) != 2:
                raise ConfigError(f"transform '{self.name}': parameter 'scale' must be [lo, hi], got {scale!r}")
            lo = _real(self.name, "scale[0]", scale[0])
            hi = _real(self.name, "scale[1]", scale[1])
            if float(np.float32(lo)) == float(np.float32(hi)):
                raise ConfigError(f"transform '{self.name}': 'scale' needs two different values, got [{lo:g}, {hi:g}]")
            self._set("scale", (lo, hi))

    def _check(self) -> None:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def _output_value(self, key: str, value: Any) -> float:
        """Check a value assigned directly to output cells (below/above/unlisted): on the output scale, or NaN."""
        if self.scale is None:
            return _score(self.name, key, value, allow_nan=True)
        value = _real(self.name, key, value, allow_nan=True)
        lo, hi = sorted(self.scale)
        if not (lo <= value <= hi or math.isnan(value)):
            raise ConfigError(
                f"transform '{self.name}': parameter '{key}' must be on the output scale [{lo:g}, {hi:g}] or NaN "
                f"(no data), got {value!r}"
            )
        return value

    def _check_thresholds(self, *, hint: str = "") -> None:
        """Validate ``lower``/``upper`` (optional, lower < upper) and ``below``/``above`` (output values or NaN)."""
        for key in ("lower", "upper"):
            value = getattr(self, key)
            if value is not None:
                self._set(key, _real(self.name, key, value))
        lower, upper = self.lower, self.upper  # type: ignore[attr-defined]
        if lower is not None and upper is not None:
            if lower >= upper:
                raise ConfigError(
                    f"transform '{self.name}': 'lower' ({lower:g}) must be smaller than 'upper' ({upper:g}){hint}"
                )
            if not math.isfinite(upper - lower):
                raise ConfigError(f"transform '{self.name}': 'upper' - 'lower' overflows ({lower:g} to {upper:g})")
        for key in ("below", "above"):
            value = getattr(self, key)
            if value is not None:
                self._set(key, self._output_value(key, value))

    # --- fitting --------------------------------------------------------------------------------------------

    @property
    def missing(self) -> tuple[str, ...]:
        """Names of the parameters left out, to be fitted from the layer."""
        return tuple(k for k in self.fit_rules if getattr(self, k) is None)

    @property
    def needs_fit(self) -> bool:
        """True when some parameter was left out and ``fit(layer_stats(...))`` must be called before use."""
        return bool(self.missing)

    def fit(self, stats: Mapping[str, Any], layer: str | None = None) -> Transform:
        """The same transform with every left-out parameter fitted from ``stats`` (``layer_stats`` output).

        Returns ``self`` when nothing is missing. Raises ``ConfigError`` naming the transform, the layer and the
        parameter when the layer has no valid cells or its statistics give no valid value.
        """
        missing = self.missing
        if not missing:
            return self
        layer = layer if layer is not None else stats.get("layer")
        where = f"transform '{self.name}'" + (f" on layer '{layer}'" if layer else "")
        count = stats.get("count") or 0
        if count <= 0:
            raise ConfigError(
                f"{where}: cannot fit {', '.join(repr(k) for k in missing)} because the layer has no valid cells "
                f"(all NaN); give {' and '.join(repr(k) for k in missing)} in the config"
            )
        params = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for key in missing:
            try:
                params[key] = self.fit_rules[key](stats, params)
            except _FitError as e:
                raise ConfigError(f"{where}: cannot fit '{key}': {e}; give '{key}' in the config") from None
        shown = ", ".join(f"{k} = {params[k]:.6g}" for k in missing)
        try:
            return dataclasses.replace(self, **{k: params[k] for k in missing})
        except ConfigError as e:
            raise ConfigError(f"{where}: the fitted parameters ({shown}) are not valid: {e}") from None

    # --- evaluation -----------------------------------------------------------------------------------------

    def __call__(self, x: Any) -> Any:
        if self.needs_fit:
            raise ConfigError(
                f"transform '{self.name}': parameter(s) {', '.join(repr(k) for k in self.missing)} were left out to be "
                "fitted from the layer; call .fit(layer_stats(layer)) before applying the transform"
            )
        return _elementwise(self._kernel, x)

    def _membership(self, v: np.ndarray) -> np.ndarray:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def _kernel(self, x: np.ndarray) -> np.ndarray:
        x32 = x.astype(np.float32, copy=False)
        v = x32.astype(np.float64)
        lower = getattr(self, "lower", None)
        upper = getattr(self, "upper", None)
        if lower is not None or upper is not None:
            # NaN stays NaN through clip; out-of-range values are scored as if on the nearer threshold.
            v = np.clip(v, -np.inf if lower is None else lower, np.inf if upper is None else upper)
        with np.errstate(all="ignore"):
            mu = self._membership(v)
        mu = np.clip(mu, 0.0, 1.0)  # guards rounding just outside [0, 1]; NaN passes
        if self.hedge == "very":
            mu = mu * mu
        elif self.hedge == "somewhat":
            mu = np.sqrt(mu)
        if self.scale is not None:
            lo, hi = self.scale
            # lo·(1 − μ) + hi·μ is exact at both ends (lo + μ·(hi − lo) loses hi when |hi| << |lo|).
            mu = lo * (1.0 - mu) + hi * mu
        mu = self._outside(x32, mu)
        return np.asarray(mu, dtype=np.float32)

    def _outside(self, x32: np.ndarray, mu: np.ndarray) -> np.ndarray:
        # Threshold tests in float32, the layer's own precision: a cell stored as the threshold's decimal value
        # counts as on the threshold. NaN compares False, so it stays NaN.
        below = getattr(self, "below", None)
        above = getattr(self, "above", None)
        if below is not None:
            mu = np.where(x32 < np.float32(self.lower), below, mu)  # type: ignore[attr-defined]
        if above is not None:
            mu = np.where(x32 > np.float32(self.upper), above, mu)  # type: ignore[attr-defined]
        return mu

    # --- records --------------------------------------------------------------------------------------------

    def as_record(self) -> dict[str, Any]:
        """Plain-data description for run.json: ``{"transform": name, **parameters}``; ``hedge`` and ``scale``
        only when set."""
        record: dict[str, Any] = {"transform": self.name}
        for f in dataclasses.fields(self):
            if f.name in COMMON_FIELDS:
                continue
            record[f.name] = _plain(getattr(self, f.name))
        for key in COMMON_FIELDS:
            value = getattr(self, key)
            if value is not None:
                record[key] = _plain(value)
        return record


# --- ramps and tables -------------------------------------------------------------------------------------------


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

    Fitted when left out: ``lower`` = layer minimum, ``upper`` = layer maximum (TfLinear's defaults).
    """

    name: ClassVar[str] = "linear"
    fit_rules: ClassVar[dict[str, FitRule]] = {"lower": _fit_min, "upper": _fit_max}

    lower: float | None = None
    upper: float | None = None
    increasing: bool = True
    below: float | None = None
    above: float | None = None

    def _check(self) -> None:
        self._check_thresholds(hint="; use increasing: false for a decreasing ramp")
        self._set("increasing", _bool(self.name, "increasing", self.increasing))

    def _membership(self, v: np.ndarray) -> np.ndarray:
        # The ramp in float64: exact 0 and 1 at the thresholds (v is already clipped to them).
        ramp = (v - self.lower) / (self.upper - self.lower)
        return ramp if self.increasing else 1.0 - ramp


@dataclass(frozen=True)
class SymmetricLinear(Transform):
    """Triangle: 1 at the midpoint of ``minimum`` and ``maximum``, falling linearly to 0 at both, 0 beyond.

    ``score = max(0, 1 - |x - c| / h)`` with ``c = (minimum + maximum) / 2`` and ``h = (maximum - minimum) / 2``;
    Esri ArcGIS Pro Rescale by Function's Symmetric Linear function (``arcpy.sa.TfSymmetricLinear(minimum,
    maximum, ...)``, help page "The transformation functions available for Rescale by Function"), for criteria
    with an optimum value such as a preferred elevation band. Fitted when left out: ``minimum`` / ``maximum`` =
    layer minimum / maximum (so the peak is at the middle of the layer's range).
    """

    name: ClassVar[str] = "symmetric_linear"
    fit_rules: ClassVar[dict[str, FitRule]] = {"minimum": _fit_min, "maximum": _fit_max}

    minimum: float | None = None
    maximum: float | None = None
    lower: float | None = None
    upper: float | None = None
    below: float | None = None
    above: float | None = None

    def _check(self) -> None:
        self._check_thresholds()
        for key in ("minimum", "maximum"):
            if getattr(self, key) is not None:
                self._set(key, _real(self.name, key, getattr(self, key)))
        if self.minimum is not None and self.maximum is not None:
            if self.minimum >= self.maximum:
                raise ConfigError(f"transform '{self.name}': 'minimum' ({self.minimum:g}) must be smaller than "
                                  f"'maximum' ({self.maximum:g})")
            if not math.isfinite(self.maximum - self.minimum):
                raise ConfigError(f"transform '{self.name}': 'maximum' - 'minimum' overflows")

    def _membership(self, v: np.ndarray) -> np.ndarray:
        centre = (self.minimum + self.maximum) / 2.0
        half = (self.maximum - self.minimum) / 2.0
        return np.maximum(1.0 - np.abs(v - centre) / half, 0.0)


@dataclass(frozen=True)
class Piecewise(Transform):
    """Piecewise-linear score through ``points = [[x0, s0], [x1, s1], ...]`` (``x`` strictly increasing).

    Between two points the score is interpolated linearly (``numpy.interp``); before the first point it is ``s0``,
    after the last ``s_last``. This is a "linear through points" curve as in QGIS's graduated-renderer
    interpolation or the GRASS ``r.recode`` rules with ranges mapped to ranges, written as break points; it covers
    any monotone or peaked piecewise-linear preference.
    """

    name: ClassVar[str] = "piecewise"

    points: tuple[tuple[float, float], ...]
    lower: float | None = None
    upper: float | None = None
    below: float | None = None
    above: float | None = None

    def _check(self) -> None:
        pairs = _pairs(self.name, "points", self.points)
        if len(pairs) < 2:
            raise ConfigError(f"transform '{self.name}': 'points' needs at least 2 [value, score] pairs, "
                              f"got {len(pairs)}")
        points = tuple((_real(self.name, f"points[{i}][0]", x), _score(self.name, f"points[{i}][1]", s))
                       for i, (x, s) in enumerate(pairs))
        xs32 = [float(np.float32(x)) for x, _ in points]
        if any(b <= a for a, b in zip(xs32, xs32[1:], strict=False)):
            shown = ", ".join(f"{x:g}" for x, _ in points)
            raise ConfigError(f"transform '{self.name}': the point values must be strictly increasing (and distinct "
                              f"in float32), got [{shown}]")
        self._set("points", points)
        self._check_thresholds()

    def _membership(self, v: np.ndarray) -> np.ndarray:
        xs = np.array([p[0] for p in self.points], dtype=np.float32).astype(np.float64)
        ss = np.array([p[1] for p in self.points], dtype=np.float64)
        return np.interp(v, xs, ss)  # NaN in -> NaN out


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

    def _check(self) -> None:
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
        self._set("edges", edges)
        self._set("scores", scores)

    def _membership(self, v: np.ndarray) -> np.ndarray:
        # v holds float32 values; the edges are compared as float32 too, so a cell stored as an edge's decimal
        # value is on the edge.
        nan = np.isnan(v)
        edges = np.asarray(self.edges, dtype=np.float32).astype(np.float64)
        # digitize counts edges <= x (right=False); NaN would land in the last bin, so it is put back below.
        index = np.digitize(np.where(nan, 0.0, v), edges, right=False)
        out = np.asarray(self.scores, dtype=np.float64)[index]
        out[nan] = np.nan
        return out


@dataclass(frozen=True)
class Reclass(Transform):
    """Categorical table: a cell whose value equals a key of ``table`` gets that key's score.

    ``table`` is ``{value: score}`` (or a list of ``[value, score]`` pairs; string keys such as JSON's are read as
    numbers). Values are matched exactly, in float32 (the layers' precision), so use it for class codes (land
    cover, soil type), not for continuous values. A value not in the table gets ``unlisted`` (default NaN = no
    data; a value on the output scale otherwise). This is ArcGIS's Reclassify / QGIS "Reclassify by table" /
    GRASS ``r.reclass`` for a single output score per category.
    """

    name: ClassVar[str] = "reclass"

    table: tuple[tuple[float, float], ...]
    unlisted: float = float("nan")

    def _check(self) -> None:
        pairs = _pairs(self.name, "table", self.table)
        if not pairs:
            raise ConfigError(f"transform '{self.name}': 'table' must hold at least one value: score entry")
        table = []
        for key, score in pairs:
            if isinstance(key, str):
                try:
                    key = float(key)
                except ValueError:
                    raise ConfigError(f"transform '{self.name}': table key {key!r} is not a number") from None
            table.append((_real(self.name, f"table key {key!r}", key),
                          _score(self.name, f"table[{key!r}]", score)))
        table.sort()
        keys32 = [float(np.float32(k)) for k, _ in table]
        for a, b in zip(keys32, keys32[1:], strict=False):
            if a == b:
                raise ConfigError(f"transform '{self.name}': table key {a:g} appears twice (keys are compared in "
                                  "float32)")
        self._set("table", tuple(table))
        self._set("unlisted", self._output_value("unlisted", self.unlisted))

    def _lookup(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keys = np.asarray([k for k, _ in self.table], dtype=np.float32).astype(np.float64)
        scores = np.asarray([s for _, s in self.table], dtype=np.float64)
        index = np.clip(np.searchsorted(keys, np.where(np.isnan(v), 0.0, v)), 0, len(keys) - 1)
        hit = keys[index] == v  # NaN never hits
        return hit, np.where(hit, scores[index], np.nan)

    def _membership(self, v: np.ndarray) -> np.ndarray:
        return self._lookup(v)[1]

    def _outside(self, x32: np.ndarray, mu: np.ndarray) -> np.ndarray:
        if math.isnan(self.unlisted):
            return mu
        hit = self._lookup(x32.astype(np.float64))[0]
        return np.where(hit | np.isnan(x32), mu, self.unlisted)


# --- S-curves ---------------------------------------------------------------------------------------------------

_SQRT3_OVER_PI = math.sqrt(3.0) / math.pi


def _fit_logistic_width(stats: Mapping[str, Any], params: Mapping[str, Any]) -> float:
    return _fit_std(stats, params) * _SQRT3_OVER_PI


@dataclass(frozen=True)
class Sigmoid(Transform):
    """Logistic S-curve ``1 / (1 + exp(-(x - mid) / width))`` (``increasing=False``: ``1 - ...``).

    The score is 0.5 at ``mid``; ``width`` (criterion units, > 0) sets how fast it rises: 0.731 at ``mid +
    width``, 0.953 at ``mid + 3 width``. It is the cumulative distribution of the logistic distribution. Fitted
    when left out: ``mid`` = layer mean and ``width`` = sigma * sqrt(3) / pi, so the curve is the logistic
    distribution with the layer's mean and standard deviation (a cell's score approximates its percentile).
    """

    name: ClassVar[str] = "sigmoid"
    fit_rules: ClassVar[dict[str, FitRule]] = {"mid": _fit_mean, "width": _fit_logistic_width}

    mid: float | None = None
    width: float | None = None
    increasing: bool = True
    lower: float | None = None
    upper: float | None = None
    below: float | None = None
    above: float | None = None

    def _check(self) -> None:
        if self.mid is not None:
            self._set("mid", _real(self.name, "mid", self.mid))
        if self.width is not None:
            self._set("width", _positive(self.name, "width", self.width))
        self._set("increasing", _bool(self.name, "increasing", self.increasing))
        self._check_thresholds()

    def _membership(self, v: np.ndarray) -> np.ndarray:
        z = (v - self.mid) / self.width
        return expit(z if self.increasing else -z)


@dataclass(frozen=True)
class LogisticGrowth(Transform):
    """Logistic growth from ``minimum`` to ``maximum``: ``y_intercept_percent`` % at ``minimum``, 100 - that % at
    ``maximum``, 50 % half-way.

    ``score = 1 / (1 + exp(-k (x - c)))`` with ``c = (minimum + maximum) / 2`` and ``k = 2 ln((1 - p) / p) /
    (maximum - minimum)``, ``p = y_intercept_percent / 100`` (0 < p < 0.5). The parameters are those of Esri ArcGIS
    Pro's ``arcpy.sa.TfLogisticGrowth(minimum, maximum, yInterceptPercent)`` (Rescale by Function; default
    yInterceptPercent 1, "must be between 0 and 50", smaller = steeper), and the curve satisfies their documented
    meaning. Esri's exact map-algebra form (help page "Formulas for the transformation functions") and its final
    stretch of the function's range onto the evaluation scale were not reproduced: here the curve is not
    stretched, so it gives ``p`` (not 0) at ``minimum``. Fitted when left out: ``minimum`` / ``maximum`` = layer
    minimum / maximum (Esri's defaults).
    """

    name: ClassVar[str] = "logistic_growth"
    fit_rules: ClassVar[dict[str, FitRule]] = {"minimum": _fit_min, "maximum": _fit_max}
    _sign: ClassVar[float] = 1.0

    minimum: float | None = None
    maximum: float | None = None
    y_intercept_percent: float = 1.0
    lower: float | None = None
    upper: float | None = None
    below: float | None = None
    above: float | None = None

    def _check(self) -> None:
        SymmetricLinear._check(self)  # type: ignore[arg-type]  # same minimum/maximum/threshold checks
        y = _real(self.name, "y_intercept_percent", self.y_intercept_percent)
        if not 0.0 < y < 50.0:
            raise ConfigError(f"transform '{self.name}': 'y_intercept_percent' must be between 0 and 50 "
                              f"(exclusive), got {y:g}")
        self._set("y_intercept_percent", y)

    def _membership(self, v: np.ndarray) -> np.ndarray:
        p = self.y_intercept_percent / 100.0
        centre = (self.minimum + self.maximum) / 2.0
        rate = 2.0 * math.log((1.0 - p) / p) / (self.maximum - self.minimum)
        return expit(self._sign * rate * (v - centre))


@dataclass(frozen=True)
class LogisticDecay(LogisticGrowth):
    """Logistic decay: the mirror image of ``logistic_growth`` (``100 - y_intercept_percent`` % at ``minimum``,
    ``y_intercept_percent`` % at ``maximum``); Esri's ``arcpy.sa.TfLogisticDecay``, same parameters and the same
    caveat about Esri's exact formula and stretch. Fitted when left out: ``minimum`` / ``maximum`` = layer min / max.
    """

    name: ClassVar[str] = "logistic_decay"
    _sign: ClassVar[float] = -1.0


# --- fuzzy membership curves (Esri Fuzzy Membership) ------------------------------------------------------------


def _fit_gaussian_spread(stats: Mapping[str, Any], params: Mapping[str, Any]) -> float:
    return 1.0 / (2.0 * _fit_std(stats, params) ** 2)


def _fit_near_spread(stats: Mapping[str, Any], params: Mapping[str, Any]) -> float:
    return 1.0 / _fit_std(stats, params) ** 2


class _MidSpread(Transform):
    """Shared checks for the (mid, spread) curves."""

    mid_must_be_positive: ClassVar[bool] = False

    def _check(self) -> None:
        if self.mid is not None:  # type: ignore[attr-defined]
            mid = _positive if self.mid_must_be_positive else _real
            self._set("mid", mid(self.name, "mid", self.mid))  # type: ignore[attr-defined]
        if self.spread is not None:  # type: ignore[attr-defined]
            self._set("spread", _positive(self.name, "spread", self.spread))  # type: ignore[attr-defined]
        self._check_thresholds()


@dataclass(frozen=True)
class Gaussian(_MidSpread):
    """Fuzzy Gaussian: ``exp(-spread * (x - mid)^2)``, 1 at ``mid``.

    Esri ArcGIS Pro Fuzzy Membership, ``arcpy.sa.FuzzyGaussian(midpoint, spread)`` (help pages "FuzzyGaussian" and
    "How Fuzzy Membership works": ``mu(x) = e^(-f1 (x - f2)^2)``, f1 = spread, f2 = midpoint). ``spread`` is in
    1 / (criterion unit)^2; larger = narrower. Fitted when left out: ``mid`` = layer mean and ``spread`` = 1 / (2
    sigma^2), so the curve is the normal density shape of the layer (0.607 at mean +- sigma). Esri's own defaults
    (midpoint of the range, spread 0.1 whatever the units) are not used.
    """

    name: ClassVar[str] = "gaussian"
    fit_rules: ClassVar[dict[str, FitRule]] = {"mid": _fit_mean, "spread": _fit_gaussian_spread}

    mid: float | None = None
    spread: float | None = None
    lower: float | None = None
    upper: float | None = None
    below: float | None = None
    above: float | None = None

    def _membership(self, v: np.ndarray) -> np.ndarray:
        return np.exp(-self.spread * (v - self.mid) ** 2)


@dataclass(frozen=True)
class Near(_MidSpread):
    """Fuzzy Near: ``1 / (1 + spread * (x - mid)^2)``, 1 at ``mid``, heavier tails than the Gaussian.

    Esri ArcGIS Pro Fuzzy Membership, ``arcpy.sa.FuzzyNear(midpoint, spread)`` ("How Fuzzy Membership works":
    ``mu(x) = 1 / (1 + f1 (x - f2)^2)``). Fitted when left out: ``mid`` = layer mean, ``spread`` = 1 / sigma^2
    (0.5 at mean +- sigma).
    """

    name: ClassVar[str] = "near"
    fit_rules: ClassVar[dict[str, FitRule]] = {"mid": _fit_mean, "spread": _fit_near_spread}

    mid: float | None = None
    spread: float | None = None
    lower: float | None = None
    upper: float | None = None
    below: float | None = None
    above: float | None = None

    def _membership(self, v: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + self.spread * (v - self.mid) ** 2)


def _fit_positive_mean(stats: Mapping[str, Any], params: Mapping[str, Any]) -> float:
    mean = _fit_mean(stats, params)
    if mean <= 0:
        raise _FitError(f"the layer mean ({mean:g}) must be positive for this curve")
    return mean


@dataclass(frozen=True)
class Small(_MidSpread):
    """Fuzzy Small: ``1 / (1 + (x / mid)^spread)``, 0.5 at ``mid``, near 1 for small values.

    Esri ArcGIS Pro Fuzzy Membership, ``arcpy.sa.FuzzySmall(midpoint, spread)`` ("How Fuzzy Membership works":
    ``mu(x) = 1 / (1 + (x / f2)^f1)``, default spread 5). ``mid`` must be > 0; the formula is for positive inputs
    (Esri: "positive values"), and ``x <= 0`` gets its limit at 0+, i.e. 1. Fitted when left out: ``mid`` = layer
    mean (which must be positive); ``spread`` defaults to Esri's 5 (unit-free).
    """

    name: ClassVar[str] = "small"
    fit_rules: ClassVar[dict[str, FitRule]] = {"mid": _fit_positive_mean}
    mid_must_be_positive: ClassVar[bool] = True

    mid: float | None = None
    spread: float = 5.0
    lower: float | None = None
    upper: float | None = None
    below: float | None = None
    above: float | None = None

    def _membership(self, v: np.ndarray) -> np.ndarray:
        ratio = np.maximum(v, 0.0) / self.mid
        return 1.0 / (1.0 + ratio**self.spread)  # ratio 0 -> 1; overflow to inf -> 0


@dataclass(frozen=True)
class Large(_MidSpread):
    """Fuzzy Large: ``1 / (1 + (x / mid)^-spread)``, 0.5 at ``mid``, near 1 for large values.

    Esri ArcGIS Pro Fuzzy Membership, ``arcpy.sa.FuzzyLarge(midpoint, spread)`` ("How Fuzzy Membership works":
    ``mu(x) = 1 / (1 + (x / f2)^-f1)``, default spread 5). ``x <= 0`` gets its limit at 0+, i.e. 0. Fitted when
    left out: ``mid`` = layer mean (positive); ``spread`` defaults to 5.
    """

    name: ClassVar[str] = "large"
    fit_rules: ClassVar[dict[str, FitRule]] = {"mid": _fit_positive_mean}
    mid_must_be_positive: ClassVar[bool] = True

    mid: float | None = None
    spread: float = 5.0
    lower: float | None = None
    upper: float | None = None
    below: float | None = None
    above: float | None = None

    def _membership(self, v: np.ndarray) -> np.ndarray:
        ratio = np.maximum(v, 0.0) / self.mid
        return 1.0 / (1.0 + ratio ** (-self.spread))  # ratio 0 -> inf -> 0


@dataclass(frozen=True)
class _MeanStd(Transform):
    """The parameters and the tail shared by MS Small and MS Large (Esri's mean/standard-deviation curves)."""

    fit_rules: ClassVar[dict[str, FitRule]] = {"mean": _fit_mean, "std": _fit_std}

    mean_mult: float = 1.0
    std_mult: float = 1.0
    mean: float | None = None
    std: float | None = None
    lower: float | None = None
    upper: float | None = None
    below: float | None = None
    above: float | None = None

    def _check(self) -> None:
        self._set("mean_mult", _positive(self.name, "mean_mult", self.mean_mult))
        self._set("std_mult", _positive(self.name, "std_mult", self.std_mult))
        if self.mean is not None:
            self._set("mean", _real(self.name, "mean", self.mean))
        if self.std is not None:
            self._set("std", _positive(self.name, "std", self.std))
        self._check_thresholds()

    def _tail(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(x > a m, b s / (x - a m + b s))``: the shared part of both MS curves."""
        am = self.mean_mult * self.mean
        bs = self.std_mult * self.std
        return v > am, bs / (np.maximum(v - am, 0.0) + bs)


@dataclass(frozen=True)
class MSSmall(_MeanStd):
    """Fuzzy MS Small (mean and standard deviation): ``b s / (x - a m + b s)`` for ``x > a m``, else 1.

    ``a`` = ``mean_mult``, ``b`` = ``std_mult`` (both > 0, default 1), ``m`` = ``mean`` and ``s`` = ``std`` of the
    layer. Esri ArcGIS Pro, ``arcpy.sa.FuzzyMSSmall(meanMultiplier, STDMultiplier)`` (Fuzzy Membership) and
    ``arcpy.sa.TfMSSmall`` (Rescale by Function).

    Where Esri's documentation and its function disagree: the FuzzyMSSmall and TfMSSmall class pages write
    ``u(x) = 0`` for ``x <= a m``. That contradicts the same pages ("smaller values having a membership closer to
    1"; "small input values are preferred and they should receive the higher output evaluation values") and the
    formula itself, which equals 1 at ``x = a m`` and decreases from there; with 0 the best (smallest) values
    would score worst and the curve would jump from 0 to 1 at ``a m``. We follow the function: **1 for x <= a m**,
    continuous and non-increasing. (We could not run ArcGIS to see which its code does.)

    Fitted when left out: ``mean`` and ``std`` = the layer's mean and population standard deviation over valid
    cells, as Esri computes them from the input raster; giving them explicitly fixes the curve across runs.
    """

    name: ClassVar[str] = "ms_small"
    def _membership(self, v: np.ndarray) -> np.ndarray:
        over, tail = self._tail(v)
        return np.where(over, tail, np.where(np.isnan(v), np.nan, 1.0))


@dataclass(frozen=True)
class MSLarge(_MeanStd):
    """Fuzzy MS Large: ``1 - b s / (x - a m + b s)`` for ``x > a m``, else 0.

    Esri ArcGIS Pro, ``arcpy.sa.FuzzyMSLarge(meanMultiplier, STDMultiplier)`` / ``arcpy.sa.TfMSLarge`` (here the
    documented ``0`` for ``x <= a m`` is also the function's limit, so documentation and function agree). ``a`` =
    ``mean_mult``, ``b`` = ``std_mult`` (> 0, default 1). Fitted when left out: ``mean`` and ``std`` of the layer.
    """

    name: ClassVar[str] = "ms_large"
    def _membership(self, v: np.ndarray) -> np.ndarray:
        over, tail = self._tail(v)
        return np.where(over, 1.0 - tail, np.where(np.isnan(v), np.nan, 0.0))


# --- unbounded curves, stretched over [lower, upper] (Esri Rescale by Function) ----------------------------------


class _Stretched(Transform):
    """Monotone curves whose raw values are stretched so that f(lower) -> 0 and f(upper) -> 1."""

    def _check(self) -> None:
        self._check_thresholds(hint="; use increasing: false for a decreasing curve")
        self._set("increasing", _bool(self.name, "increasing", self.increasing))  # type: ignore[attr-defined]
        self._check_shape()

    def _check_shape(self) -> None:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def _membership(self, v: np.ndarray) -> np.ndarray:
        mu = self._stretched(v)
        return mu if self.increasing else 1.0 - mu  # type: ignore[attr-defined]

    def _stretched(self, v: np.ndarray) -> np.ndarray:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError


@dataclass(frozen=True)
class Power(_Stretched):
    """Power curve ``((x - lower) / (upper - lower))^exponent`` on ``[lower, upper]``.

    Esri ArcGIS Pro Rescale by Function, ``arcpy.sa.TfPower(exponent, shift, ...)``: ``Power(x - shift,
    exponent)`` with the shift at the lower threshold, stretched linearly to the scale between its values at the
    thresholds (help page "Formulas for the transformation functions"), which reduces to the formula above.
    ``exponent`` > 0: above 1 favours the top of the range, below 1 rises quickly then flattens. Fitted when left
    out: ``lower`` / ``upper`` = layer minimum / maximum.
    """

    name: ClassVar[str] = "power"
    fit_rules: ClassVar[dict[str, FitRule]] = {"lower": _fit_min, "upper": _fit_max}

    exponent: float
    lower: float | None = None
    upper: float | None = None
    increasing: bool = True
    below: float | None = None
    above: float | None = None

    def _check_shape(self) -> None:
        self._set("exponent", _positive(self.name, "exponent", self.exponent))

    def _stretched(self, v: np.ndarray) -> np.ndarray:
        return ((v - self.lower) / (self.upper - self.lower)) ** self.exponent


@dataclass(frozen=True)
class Exponential(_Stretched):
    """Exponential curve ``(e^(rate (x - lower)) - 1) / (e^(rate (upper - lower)) - 1)`` on ``[lower, upper]``.

    Esri ArcGIS Pro Rescale by Function, ``arcpy.sa.TfExponential(shift, baseFactor, ...)``: ``Exp((x - shift) *
    baseFactor)`` stretched linearly between its values at the thresholds; the shift cancels in the stretch, so
    only ``rate`` (= baseFactor, in 1 / criterion unit, non-zero) matters. ``rate > 0`` rises slowly then steeply;
    ``rate < 0`` the reverse. Computed without overflow for any ``rate (upper - lower)``. Fitted when left out:
    ``lower`` / ``upper`` = layer minimum / maximum (``rate`` is always required).
    """

    name: ClassVar[str] = "exponential"
    fit_rules: ClassVar[dict[str, FitRule]] = {"lower": _fit_min, "upper": _fit_max}

    rate: float
    lower: float | None = None
    upper: float | None = None
    increasing: bool = True
    below: float | None = None
    above: float | None = None

    def _check_shape(self) -> None:
        rate = _real(self.name, "rate", self.rate)
        if rate == 0:
            raise ConfigError(f"transform '{self.name}': 'rate' must not be 0 (use 'linear' for a straight ramp)")
        self._set("rate", rate)

    def _stretched(self, v: np.ndarray) -> np.ndarray:
        span = self.upper - self.lower
        if self.rate > 0:
            # Divide numerator and denominator by e^(rate span): every exponent is <= 0, nothing overflows.
            return (np.exp(self.rate * (v - self.upper)) - math.exp(-self.rate * span)) / -math.expm1(
                -self.rate * span)
        return np.expm1(self.rate * (v - self.lower)) / math.expm1(self.rate * span)


@dataclass(frozen=True)
class Logarithm(_Stretched):
    """Logarithmic curve ``ln((x - shift) / (lower - shift)) / ln((upper - shift) / (lower - shift))``.

    Esri ArcGIS Pro Rescale by Function, ``arcpy.sa.TfLogarithm(shift, factor, ...)``: ``Ln(x - shift) * factor``
    stretched linearly between its values at the thresholds (the factor cancels). Rises steeply just above
    ``lower`` then flattens. Needs ``shift < lower`` (default shift 0, so ``lower`` > 0). Fitted when left out:
    ``lower`` / ``upper`` = layer minimum / maximum.
    """

    name: ClassVar[str] = "logarithm"
    fit_rules: ClassVar[dict[str, FitRule]] = {"lower": _fit_min, "upper": _fit_max}

    shift: float = 0.0
    lower: float | None = None
    upper: float | None = None
    increasing: bool = True
    below: float | None = None
    above: float | None = None

    def _check_shape(self) -> None:
        shift = _real(self.name, "shift", self.shift)
        if self.lower is not None and not shift < self.lower:
            raise ConfigError(f"transform '{self.name}': 'shift' ({shift:g}) must be smaller than 'lower' "
                              f"({self.lower:g}), since ln(x - shift) needs x - shift > 0")
        self._set("shift", shift)

    def _stretched(self, v: np.ndarray) -> np.ndarray:
        base = self.lower - self.shift
        return np.log((v - self.shift) / base) / math.log((self.upper - self.shift) / base)


TRANSFORMS: dict[str, type[Transform]] = {
    cls.name: cls
    for cls in (
        Linear, SymmetricLinear, Piecewise, Breaks, Reclass,
        Sigmoid, LogisticGrowth, LogisticDecay,
        Gaussian, Near, Small, Large, MSSmall, MSLarge,
        Power, Exponential, Logarithm,
    )
}


def make_transform(name: str, params: Mapping[str, Any]) -> Transform:
    """Build the transform called ``name`` (a key of ``TRANSFORMS``) from plain parameters.

    Parameters that can be fitted (see each class's ``fit_rules``) may be left out: the result then has
    ``needs_fit`` True and must be completed with ``.fit(layer_stats(layer))``.
    Raises ``ConfigError`` with one line for an unknown transform name, an unknown or missing parameter, or a
    parameter value the transform rejects.
    """
    cls = TRANSFORMS.get(name)
    if cls is None:
        raise ConfigError(f"unknown transform '{name}'{did_you_mean(str(name), TRANSFORMS)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
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
