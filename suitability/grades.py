"""Grade tables of 双评价 practice: a base grade from breaks on one layer (or from a two-factor matrix), then
adjustments "lower by k grades if <condition>" / "force grade g if <condition>", then a clamp to 1..n.

Grades are whole numbers ``1..n`` with **1 = most suitable** and ``n`` = least suitable, as in the 2019 draft
《资源环境承载能力和国土空间开发适宜性评价技术指南（征求意见稿）》 (Ministry of Natural Resources, 2019), whose
town-construction land-resource evaluation grades slope from 高 (grade 1) to 低 (grade 5). Grade rasters are
uint8 with **0 = no data** (the project's convention for class rasters); ``as_float32`` turns one into a float32
layer with NaN for no data, so it can be written, used in constraints or reclassed into a criterion.

The rule form (every number is a parameter: the 2020 guideline 《资源环境承载能力和国土空间开发适宜性评价指南
（试行）》 leaves thresholds to local calibration):

1. **Base grade**, either

   * ``BreaksBase``: breaks ``b[0] < ... < b[n-2]`` on one layer. With ``closed="left"`` (default) a value on a
     break belongs to the grade above it: ``x < b[0]`` is grade 1, ``b[0] <= x < b[1]`` grade 2, ...,
     ``x >= b[n-2]`` grade n (the reading "< 3°, 3–8°, ..., ≥ 25°"); ``closed="right"`` puts it in the grade
     below (the reading "≤ 3°, 3–8°, ..., > 25°"). ``direction="decreasing"`` numbers the grades the other way
     (grade 1 for the largest values, e.g. a water-availability index). Values and breaks are compared in
     float32, the layers' precision, so a cell stored as ``3.0`` is exactly on the break ``3``.
   * ``MatrixBase``: ``grade = table[row_grade - 1][column_grade - 1]`` from two grade layers (e.g. land grade ×
     water grade → base grade). Input grades must be whole numbers ``1..n_rows`` / ``1..n_columns`` (0 or NaN
     = no data); any other value is an ``InputDataError`` when the cell is computed, never a silent no data.

2. **Adjustments**, applied in the order listed to the cells that have a grade: ``Adjustment(lower=k,
   where=...)`` adds ``k`` to the grade where the condition holds (a negative ``k`` raises the grade),
   ``Adjustment(force=g, where=...)`` sets it to ``g``. Conditions are safe expressions over named layers
   (``suitability.expressions``: comparisons, arithmetic, and/or/not; never ``eval``). Intermediate grades are
   **not** clamped between steps, so the order matters only through ``force`` (a later ``force`` overrides
   earlier lowering; a later ``lower`` moves a forced grade again).

3. **Clamp** to ``1..n``.

**No data.** With ``nodata="any"`` (default) a cell is no data (0) when any layer the rules name is NaN there: an
adjustment that cannot be judged leaves the grade unknown. With ``nodata="base"`` only the base layer(s) decide,
and a condition that is unknown on a cell (NaN in one of its layers) does not apply there (the expressions'
three-valued logic).

Everything is elementwise and computed per block with the same numpy kernel, so numpy and dask inputs give
identical grades, on one chunk or many. ``GradeRules.as_record()`` is the explicit, JSON-ready description
(every break, condition and source) for run.json.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import dask.array as da
import numpy as np

from rasters.errors import ConfigError, InputDataError, did_you_mean

from .expressions import Expression
from .expressions import parse as parse_expression

__all__ = [
    "DRAFT_2019",
    "GUIDE_2020",
    "Adjustment",
    "BreaksBase",
    "GradeRules",
    "MatrixBase",
    "as_float32",
    "grade_by_breaks",
    "grade_by_matrix",
    "town_construction_2019",
]

DRAFT_2019 = ("《资源环境承载能力和国土空间开发适宜性评价技术指南（征求意见稿）》, Ministry of Natural Resources, "
              "2019 draft: town-construction (城镇建设) land-resource evaluation")
GUIDE_2020 = ("《资源环境承载能力和国土空间开发适宜性评价指南（试行）》, Ministry of Natural Resources, 2020: "
              "thresholds are calibrated locally")

MAX_GRADES = 255  # uint8, with 0 kept for no data


def _int(key: str, value: Any, lo: int, hi: int) -> int:
    """A whole number in lo..hi (bools and fractions refused), or a one-line ConfigError naming ``key``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ConfigError(f"{key}: must be a whole number in {lo}..{hi}, got {value!r}")
    if not (math.isfinite(float(value)) and float(value) == int(value)):
        raise ConfigError(f"{key}: must be a whole number in {lo}..{hi}, got {value!r}")
    value = int(value)
    if not lo <= value <= hi:
        raise ConfigError(f"{key}: must be a whole number in {lo}..{hi}, got {value}")
    return value


def _name(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}: must be a layer name, got {value!r}")
    return value


def _choice(key: str, value: Any, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise ConfigError(f"{key}: must be one of {', '.join(valid)}, got {value!r}"
                          f"{did_you_mean(str(value), valid) if isinstance(value, str) else ''}")
    return value


# ---------------------------------------------------------------------------------------------------------------
# Elementwise kernels (numpy blocks).


def _break_counts(x: np.ndarray, edges32: np.ndarray, closed: str) -> np.ndarray:
    """Per cell, how many breaks lie below ``x`` (``<= x`` for left-closed bins, ``< x`` for right-closed)."""
    v = np.asarray(x, dtype=np.float32)
    nan = np.isnan(v)
    side = "right" if closed == "left" else "left"
    k = np.searchsorted(edges32, np.where(nan, np.float32(0), v), side=side).astype(np.int32)
    k[nan] = -1
    return k


def _breaks_block(x: np.ndarray, edges32: np.ndarray, closed: str, decreasing: bool) -> np.ndarray:
    k = _break_counts(x, edges32, closed)
    n = edges32.size + 1
    g = np.where(k < 0, 0, (n - k) if decreasing else (k + 1))
    return g.astype(np.uint8)


def _as_grade_index(v: np.ndarray, n: int, what: str) -> np.ndarray:
    """Grades 1..n of an input layer as int indices, -1 where no data (NaN or 0); anything else is an error."""
    v = np.asarray(v, dtype=np.float64)
    nodata = np.isnan(v) | (v == 0)
    ok = nodata | ((v == np.round(v)) & (v >= 1) & (v <= n))
    if not ok.all():
        bad = v[~ok].flat[0]
        raise InputDataError(f"{what} holds {bad:g}, which is not a grade 1..{n} (0 or NaN = no data)")
    index = np.where(nodata, 1.0, v) - 1.0
    return np.where(nodata, -1, index).astype(np.int64)


def _matrix_block(a: np.ndarray, b: np.ndarray, table: np.ndarray, what_a: str, what_b: str) -> np.ndarray:
    ia = _as_grade_index(a, table.shape[0], what_a)
    ib = _as_grade_index(b, table.shape[1], what_b)
    nodata = (ia < 0) | (ib < 0)
    g = table[np.where(nodata, 0, ia), np.where(nodata, 0, ib)]
    return np.where(nodata, 0, g).astype(np.uint8)


def _float_block(g: np.ndarray) -> np.ndarray:
    out = g.astype(np.float32)
    out[g == 0] = np.nan
    return out


def _elementwise(func, *arrays: Any, dtype) -> Any:
    """Apply a numpy block kernel to numpy arrays, or lazily per block if any is dask (on the first's chunks)."""
    shapes = {tuple(np.shape(a)) for a in arrays}
    if len(shapes) != 1:
        raise ConfigError(f"grade layers differ in shape: {sorted(shapes)}")
    if any(isinstance(a, da.Array) for a in arrays):
        first = next(a for a in arrays if isinstance(a, da.Array))
        arrays = [a.rechunk(first.chunks) if isinstance(a, da.Array)
                  else da.from_array(np.asarray(a), chunks=first.chunks) for a in arrays]
        return da.map_blocks(func, *arrays, dtype=dtype)
    return func(*(np.asarray(a) for a in arrays))


def as_float32(grades: Any) -> Any:
    """A uint8 grade raster (0 = no data) as float32 grades with NaN for no data (numpy or dask)."""
    return _elementwise(_float_block, grades, dtype=np.float32)


# ---------------------------------------------------------------------------------------------------------------
# The rule parts.


@dataclass(frozen=True)
class BreaksBase:
    """Base grade from breaks on one layer (see the module docstring for ``closed`` and ``direction``).

    ``breaks`` are in the layer's units (degrees for slope). ``source`` cites the standard the numbers come from;
    ``key`` is the config key path used in error messages.
    """

    layer: str
    breaks: tuple[float, ...]
    closed: str = "left"
    direction: str = "increasing"
    source: str = ""
    key: str = "base"

    def __post_init__(self) -> None:
        _name(f"{self.key}.layer", self.layer)
        raw = self.breaks
        if isinstance(raw, str | bytes) or not isinstance(raw, Sequence | np.ndarray):
            raise ConfigError(f"{self.key}.breaks: must be a list of increasing numbers, got {raw!r}")
        values = []
        for i, v in enumerate(raw):
            if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating) \
                    or not math.isfinite(float(v)):
                raise ConfigError(f"{self.key}.breaks[{i}]: must be a finite number, got {v!r}")
            values.append(float(v))
        if not values:
            raise ConfigError(f"{self.key}.breaks: needs at least one break (n - 1 breaks make n grades)")
        if len(values) + 1 > MAX_GRADES:
            raise ConfigError(f"{self.key}.breaks: {len(values)} breaks make more than {MAX_GRADES} grades")
        as32 = [float(np.float32(v)) for v in values]
        if any(b <= a for a, b in zip(as32, as32[1:], strict=False)):
            raise ConfigError(f"{self.key}.breaks: must be strictly increasing (and distinct in float32), got "
                              f"[{', '.join(f'{v:g}' for v in values)}]")
        object.__setattr__(self, "breaks", tuple(values))
        _choice(f"{self.key}.closed", self.closed, ("left", "right"))
        _choice(f"{self.key}.direction", self.direction, ("increasing", "decreasing"))

    @property
    def n(self) -> int:
        return len(self.breaks) + 1

    @property
    def names(self) -> frozenset[str]:
        return frozenset({self.layer})

    def intervals(self) -> dict[int, str]:
        """Each grade's interval in the layer's units, e.g. ``{1: "< 3", 2: "[3, 8)", ..., 5: ">= 25"}``."""
        b = self.breaks
        lo_br, hi_br = ("[", ")") if self.closed == "left" else ("(", "]")
        first = f"< {b[0]:g}" if self.closed == "left" else f"<= {b[0]:g}"
        last = f">= {b[-1]:g}" if self.closed == "left" else f"> {b[-1]:g}"
        bins = [first] + [f"{lo_br}{a:g}, {c:g}{hi_br}" for a, c in zip(b, b[1:], strict=False)] + [last]
        if self.direction == "decreasing":
            bins = bins[::-1]
        return {g + 1: text for g, text in enumerate(bins)}

    def grade(self, env: Mapping[str, np.ndarray]) -> np.ndarray:
        edges32 = np.asarray(self.breaks, dtype=np.float32)
        return _breaks_block(env[self.layer], edges32, self.closed, self.direction == "decreasing")

    def as_record(self) -> dict[str, Any]:
        return {"kind": "breaks", "layer": self.layer, "breaks": list(self.breaks), "closed": self.closed,
                "direction": self.direction, "grades": {str(g): t for g, t in self.intervals().items()},
                "source": self.source}


@dataclass(frozen=True)
class MatrixBase:
    """Base grade from two grade layers: ``grade = table[row_grade - 1][column_grade - 1]``.

    ``rows`` / ``columns`` name layers of grades ``1..n_rows`` / ``1..n_columns`` (e.g. land grade × water
    grade). ``n_rows`` / ``n_columns``, when given, must match the table's shape; the output grades are checked
    against ``n`` by ``GradeRules``.
    """

    rows: str
    columns: str
    table: tuple[tuple[int, ...], ...]
    n_rows: int | None = None
    n_columns: int | None = None
    source: str = ""
    key: str = "matrix"

    def __post_init__(self) -> None:
        _name(f"{self.key}.rows", self.rows)
        _name(f"{self.key}.columns", self.columns)
        raw = self.table
        if isinstance(raw, str | bytes) or not isinstance(raw, Sequence | np.ndarray) or len(raw) == 0:
            raise ConfigError(f"{self.key}.table: must be a list of rows of grades (one row per row grade), "
                              f"got {raw!r}")
        rows = []
        for i, row in enumerate(raw):
            if isinstance(row, str | bytes) or not isinstance(row, Sequence | np.ndarray) or len(row) == 0:
                raise ConfigError(f"{self.key}.table[{i}]: must be a list of grades, got {row!r}")
            rows.append(tuple(_int(f"{self.key}.table[{i}][{j}]", v, 1, MAX_GRADES) for j, v in enumerate(row)))
        widths = {len(r) for r in rows}
        if len(widths) != 1:
            raise ConfigError(f"{self.key}.table: every row needs the same number of columns, got row lengths "
                              f"{[len(r) for r in rows]}")
        object.__setattr__(self, "table", tuple(rows))
        for attr, have in (("n_rows", len(rows)), ("n_columns", len(rows[0]))):
            want = getattr(self, attr)
            if want is not None:
                want = _int(f"{self.key}.{attr}", want, 1, MAX_GRADES)
                object.__setattr__(self, attr, want)
                if want != have:
                    raise ConfigError(f"{self.key}.table: shape is {len(rows)} x {len(rows[0])}, but {attr} is "
                                      f"{want}: need {self.n_rows or len(rows)} rows of "
                                      f"{self.n_columns or len(rows[0])} grades")
        if self.rows == self.columns:
            raise ConfigError(f"{self.key}: rows and columns name the same layer '{self.rows}'")

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.table), len(self.table[0])

    @property
    def names(self) -> frozenset[str]:
        return frozenset({self.rows, self.columns})

    def grade(self, env: Mapping[str, np.ndarray]) -> np.ndarray:
        return _matrix_block(env[self.rows], env[self.columns], np.asarray(self.table, dtype=np.int64),
                             f"{self.key}.rows: layer '{self.rows}'", f"{self.key}.columns: layer '{self.columns}'")

    def as_record(self) -> dict[str, Any]:
        return {"kind": "matrix", "rows": self.rows, "columns": self.columns, "shape": list(self.shape),
                "table": [list(r) for r in self.table], "source": self.source}


@dataclass(frozen=True)
class Adjustment:
    """One step: ``lower`` the grade by ``k`` (negative ``k`` raises it) or ``force`` it to ``g`` where the
    condition ``where`` holds. Give exactly one of ``lower`` and ``force``."""

    where: str
    lower: int | None = None
    force: int | None = None
    source: str = ""
    key: str = "adjust"
    expression: Expression = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.lower is None) == (self.force is None):
            raise ConfigError(f"{self.key}: give exactly one of 'lower' (grades to lower by) or 'force' (the grade "
                              f"to set)")
        if self.lower is not None:
            k = _int(f"{self.key}.lower", self.lower, -MAX_GRADES, MAX_GRADES)
            if k == 0:
                raise ConfigError(f"{self.key}.lower: 0 changes nothing; give a whole number of grades (negative "
                                  f"raises the grade)")
            object.__setattr__(self, "lower", k)
        else:
            object.__setattr__(self, "force", _int(f"{self.key}.force", self.force, 1, MAX_GRADES))
        object.__setattr__(self, "expression", parse_expression(self.where, where=f"{self.key}.where"))

    @property
    def names(self) -> frozenset[str]:
        return self.expression.names

    def as_record(self) -> dict[str, Any]:
        action = {"lower": self.lower} if self.lower is not None else {"force": self.force}
        return {**action, "where": self.expression.text, "source": self.source}


@dataclass(frozen=True)
class GradeRules:
    """A whole grade table: ``base`` (``BreaksBase`` or ``MatrixBase``), ``adjust`` steps in order, ``n`` grades.

    ``n`` defaults to the base's number of grades (breaks + 1); with a matrix it is required. ``labels`` name the
    grades from 1 to n (e.g. 高, 较高, 中等, 较低, 低). ``apply(layers)`` returns the uint8 grades (0 = no data).
    """

    base: BreaksBase | MatrixBase
    adjust: tuple[Adjustment, ...] = ()
    n: int | None = None
    nodata: str = "any"
    labels: tuple[str, ...] | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.base, BreaksBase | MatrixBase):
            raise ConfigError(f"base: must be breaks on a layer or a two-factor matrix, got {self.base!r}")
        object.__setattr__(self, "adjust", tuple(self.adjust))
        for i, a in enumerate(self.adjust):
            if not isinstance(a, Adjustment):
                raise ConfigError(f"adjust[{i}]: must be an Adjustment (lower or force where ...), got {a!r}")
        if self.n is None:
            if isinstance(self.base, MatrixBase):
                raise ConfigError("n: required with a matrix (the number of output grades)")
            object.__setattr__(self, "n", self.base.n)
        n = _int("n", self.n, 2, MAX_GRADES)
        object.__setattr__(self, "n", n)
        if isinstance(self.base, BreaksBase) and self.base.n != n:
            raise ConfigError(f"{self.base.key}.breaks: {len(self.base.breaks)} breaks make {self.base.n} grades, "
                              f"but n is {n}; give {n - 1} breaks")
        if isinstance(self.base, MatrixBase):
            for i, row in enumerate(self.base.table):
                for j, v in enumerate(row):
                    if v > n:
                        raise ConfigError(f"{self.base.key}.table[{i}][{j}]: {v} is not a grade 1..{n}")
        for a in self.adjust:
            if a.force is not None and a.force > n:
                raise ConfigError(f"{a.key}.force: {a.force} is not a grade 1..{n}")
        _choice("nodata", self.nodata, ("any", "base"))
        if self.labels is not None:
            labels = tuple(self.labels)
            if len(labels) != n or not all(isinstance(s, str) for s in labels):
                raise ConfigError(f"labels: need {n} texts (grade 1 first), got {list(labels)!r}")
            object.__setattr__(self, "labels", labels)

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> GradeRules:
        """Build from plain parameters shaped like the config block: ``base: {layer, breaks, closed, direction,
        source}`` or ``matrix: {rows, columns, table, n_rows, n_columns, source}``, ``adjust: [{lower | force,
        where, source}, ...]``, ``n``, ``nodata``, ``labels``, ``source``. Unknown keys are a ``ConfigError``."""
        if not isinstance(spec, Mapping):
            raise ConfigError(f"grade rules must be a mapping of keys, got {spec!r}")
        spec = {k: v for k, v in spec.items() if v is not None}
        _known("", spec, ("base", "matrix", "adjust", "n", "nodata", "labels", "source"))
        if ("base" in spec) == ("matrix" in spec):
            raise ConfigError("give exactly one of 'base' (breaks on a layer) or 'matrix' (two-factor table)")
        if "base" in spec:
            b = _mapping("base", spec["base"])
            _known("base.", b, ("layer", "breaks", "closed", "direction", "source"))
            if "layer" not in b or "breaks" not in b:
                raise ConfigError("base: needs 'layer' and 'breaks'")
            base: BreaksBase | MatrixBase = BreaksBase(**b)
        else:
            m = _mapping("matrix", spec["matrix"])
            _known("matrix.", m, ("rows", "columns", "table", "n_rows", "n_columns", "source"))
            for k in ("rows", "columns", "table"):
                if k not in m:
                    raise ConfigError(f"matrix: needs '{k}'")
            base = MatrixBase(**m)
        raw_adjust = spec.get("adjust", ())
        if isinstance(raw_adjust, str | bytes | Mapping) or not isinstance(raw_adjust, Sequence):
            raise ConfigError(f"adjust: must be a list of steps, got {raw_adjust!r}")
        steps = []
        for i, a in enumerate(raw_adjust):
            a = {k: v for k, v in _mapping(f"adjust[{i}]", a).items() if v is not None}
            _known(f"adjust[{i}].", a, ("lower", "force", "where", "source"))
            if "where" not in a:
                raise ConfigError(f"adjust[{i}]: needs 'where' (the condition)")
            steps.append(Adjustment(**a, key=f"adjust[{i}]"))
        labels = spec.get("labels")
        return cls(base=base, adjust=tuple(steps), n=spec.get("n"), nodata=spec.get("nodata", "any"),
                   labels=None if labels is None else tuple(labels), source=spec.get("source", ""))

    # --- names --------------------------------------------------------------------------------------------
    @property
    def names(self) -> frozenset[str]:
        """Every layer name the rules use."""
        return self.base.names.union(*(a.names for a in self.adjust))

    def check_names(self, valid: Any) -> None:
        """Raise ``ConfigError`` naming the key and the first unknown layer (with a did-you-mean)."""
        valid = set(valid)
        if isinstance(self.base, BreaksBase):
            base_keys = [("layer", self.base.layer)]
        else:
            base_keys = [("rows", self.base.rows), ("columns", self.base.columns)]
        for attr, name in base_keys:
            if name not in valid:
                raise ConfigError(f"{self.base.key}.{attr}: unknown layer '{name}'{did_you_mean(name, valid)}")
        for a in self.adjust:
            a.expression.check_names(valid)

    # --- computing ----------------------------------------------------------------------------------------
    def apply(self, layers: Mapping[str, Any]) -> Any:
        """Grades 1..n per cell as uint8 (0 = no data): numpy, or dask if any used layer is a dask array.

        ``layers`` maps names to numpy or dask arrays of one shape (extra names are ignored).
        """
        self.check_names(layers)
        names = tuple(sorted(self.names))
        return _elementwise(partial(_rules_block, self, names), *(layers[n] for n in names), dtype=np.uint8)

    def as_record(self) -> dict[str, Any]:
        """The rules as plain JSON-ready data, in the order they are applied."""
        return {
            "method": "grade_rules",
            "n": self.n,
            "grade_1": "most suitable",
            f"grade_{self.n}": "least suitable",
            "order": "base grade, then each adjustment in the order listed (no clamping between), then clamp",
            "base": self.base.as_record(),
            "adjust": [{"step": i + 1, **a.as_record()} for i, a in enumerate(self.adjust)],
            "clamp": [1, self.n],
            "nodata": self.nodata,
            "labels": None if self.labels is None else list(self.labels),
            "source": self.source,
        }


def _mapping(key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: must be a mapping of keys, got {value!r}")
    return dict(value)


def _known(prefix: str, spec: Mapping[str, Any], valid: tuple[str, ...]) -> None:
    for k in spec:
        if k not in valid:
            raise ConfigError(f"{prefix}{k}: unknown key{did_you_mean(str(k), valid)}")


def _rules_block(rules: GradeRules, names: tuple[str, ...], *blocks: np.ndarray) -> np.ndarray:
    env = {n: np.asarray(b, dtype=np.float32) for n, b in zip(names, blocks, strict=True)}
    g = rules.base.grade(env).astype(np.int32)
    valid = g > 0
    if rules.nodata == "any":
        for b in env.values():
            valid &= ~np.isnan(b)
    for a in rules.adjust:
        hit = a.expression.evaluate(env) & valid  # unknown (NaN) counts as not holding
        g = np.where(hit, g + a.lower, g) if a.lower is not None else np.where(hit, a.force, g)
    return np.where(valid, np.clip(g, 1, rules.n), 0).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------------------
# Plain functions for one step, and the 2019-draft preset.


def grade_by_breaks(x: Any, breaks: Sequence[float], *, closed: str = "left",
                    direction: str = "increasing") -> Any:
    """Grades ``1..len(breaks)+1`` of ``x`` by breaks (uint8, 0 where ``x`` is NaN); see ``BreaksBase``."""
    base = BreaksBase("x", tuple(breaks) if isinstance(breaks, Sequence) else breaks, closed, direction)
    edges32 = np.asarray(base.breaks, dtype=np.float32)
    return _elementwise(partial(_breaks_block, edges32=edges32, closed=closed,
                                decreasing=direction == "decreasing"), x, dtype=np.uint8)


def grade_by_matrix(row_grades: Any, column_grades: Any, table: Sequence[Sequence[int]], n: int) -> Any:
    """``table[row - 1][column - 1]`` per cell (uint8, 0 where either input is 0 or NaN); the table must be
    ``n_rows × n_columns`` of grades ``1..n``. An input value that is not such a grade raises ``InputDataError``."""
    rules = GradeRules(MatrixBase("rows", "columns", table), n=n, nodata="base")
    return rules.apply({"rows": row_grades, "columns": column_grades})


def town_construction_2019(slope: str = "slope_deg", elevation: str = "elevation_m",
                           relief: str = "relief_m") -> GradeRules:
    """The 2019 draft's town-construction land-resource grades (DRAFT_2019), with the layer names given.

    Slope (degrees) < 3, 3–8, 8–15, 15–25, ≥ 25 → grades 1..5 (高, 较高, 中等, 较低, 低); elevation 3,500 to
    < 5,000 m lowers one grade; elevation ≥ 5,000 m forces grade 5 (the lowest); local relief > 100 to ≤ 200 m
    lowers one grade and > 200 m two; then clamp to 1..5. The bin edges (which side of 3°, 3,500 m, 100 m... a
    value exactly on a threshold falls) are our reading of the draft's ranges and, like every number here, a
    parameter (GUIDE_2020: thresholds are calibrated locally).
    """
    return GradeRules(
        base=BreaksBase(slope, (3.0, 8.0, 15.0, 25.0), source=f"{DRAFT_2019}: slope grades 3°/8°/15°/25°"),
        adjust=(
            Adjustment(f"{elevation} >= 3500 and {elevation} < 5000", lower=1, key="adjust[0]",
                       source=f"{DRAFT_2019}: elevation 3,500–5,000 m lowers one grade"),
            Adjustment(f"{elevation} >= 5000", force=5, key="adjust[1]",
                       source=f"{DRAFT_2019}: elevation ≥ 5,000 m is the lowest grade"),
            Adjustment(f"{relief} > 100 and {relief} <= 200", lower=1, key="adjust[2]",
                       source=f"{DRAFT_2019}: relief 100–200 m lowers one grade"),
            Adjustment(f"{relief} > 200", lower=2, key="adjust[3]",
                       source=f"{DRAFT_2019}: relief > 200 m lowers two grades"),
        ),
        n=5,
        labels=("高", "较高", "中等", "较低", "低"),
        source=DRAFT_2019,
    )
