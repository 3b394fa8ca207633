"""Rank candidate sites (towns, catchments, located regions) over chosen columns of a zonal table, with reasons.

Input is one row per candidate, e.g. the output of ``suitability.zonal.zonal_stats`` (plus any other columns:
water headroom, travel time to Xining), and a column specification::

    {"suitability_mean": {"weight": 3}, "high_km2": 2, "travel_min_xining": {"weight": 1, "direction": "cost"}}

(a bare number is a weight of a benefit column). Weights are normalised to sum 1 (``suitability.weights.direct``).

Normalisation (``normalise=``), per column over the candidates, always explicit:

* ``"minmax"``: benefit ``r = (x − min) / (max − min)``, cost ``r = (max − x) / (max − min)``; a column with one
  value everywhere gets r = 1 for all (it cannot separate candidates).
* ``"vector"`` (Hwang & Yoon 1981): ``r = x / sqrt(Σ x²)``; values must be ≥ 0. For ``weighted_sum`` a cost
  column enters as ``1 − r``; for TOPSIS its ideal is the minimum instead.

Methods (``method=``):

* ``"weighted_sum"`` (simple additive weighting): ``score = Σ_j w_j r_j``; ``contrib_{col} = w_j r_j`` and the
  contributions add up to the score exactly.
* ``"topsis"`` (Hwang & Yoon 1981, §2.3.6): weighted normalised values ``v_j = w_j r_j``; ideal ``v+_j`` (max over
  candidates for benefit columns, min for cost columns under vector normalisation) and anti-ideal ``v−_j``;
  ``d+ = ||v − v+||``, ``d− = ||v − v−||``, ``score = d− / (d+ + d−)``. TOPSIS is not additive: ``contrib_{col}``
  is ``(v_j − v−_j)² / Σ_k (v_k − v−_k)²`` (each column's share of the squared separation from the anti-ideal,
  ``d−²``), which says which columns lift the candidate, and ``d_plus``/``d_minus`` are reported.

Candidates with NaN in a ranking column get NaN score and no rank (listed last). Ranks are 1 = best; ties share
the best rank ("1, 2, 2, 4").

How to call from the pipeline
-----------------------------
::

    table = zonal.zonal_stats(candidates, layers, grid, classes=classes, class_names=names)
    ranked = rank(table, config["ranking"]["columns"], method="topsis", normalise="vector")
    ranked.to_file(gpkg, layer="candidates"); ranked.drop(columns="geometry").to_csv(csv, index=False)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from rasters.errors import ConfigError, did_you_mean
from suitability.weights import direct

__all__ = ["DIRECTIONS", "NORMALISATIONS", "RANK_METHODS", "ColumnSpec", "normalised_matrix", "parse_columns",
           "rank", "rank_of", "scores"]

DIRECTIONS = ("benefit", "cost")
NORMALISATIONS = ("minmax", "vector")
RANK_METHODS = ("weighted_sum", "topsis")

ColumnSpec = dict[str, tuple[float, str]]


def parse_columns(columns: Mapping[str, Any], table: pd.DataFrame | None = None) -> ColumnSpec:
    """``{column: weight}`` or ``{column: {"weight": w, "direction": "benefit"|"cost"}}`` -> ``{column: (w, dir)}``
    with the weights normalised to sum 1. Unknown columns (when ``table`` is given) are ConfigErrors."""
    if not isinstance(columns, Mapping) or not columns:
        raise ConfigError("ranking columns must be a non-empty mapping of column name to weight")
    raw: dict[str, float] = {}
    dirs: dict[str, str] = {}
    for col, spec in columns.items():
        if table is not None and col not in table.columns:
            raise ConfigError(f"ranking column '{col}' is not in the table{did_you_mean(str(col), table.columns)}")
        if isinstance(spec, Mapping):
            unknown = set(spec) - {"weight", "direction"}
            if unknown:
                key = sorted(unknown)[0]
                raise ConfigError(f"ranking column '{col}': unknown key '{key}' (keys: weight, direction)")
            weight = spec.get("weight", 1.0)
            direction = spec.get("direction", "benefit")
        else:
            weight, direction = spec, "benefit"
        if direction not in DIRECTIONS:
            raise ConfigError(f"ranking column '{col}': direction must be benefit or cost, got {direction!r}"
                              f"{did_you_mean(str(direction), DIRECTIONS)}")
        raw[str(col)] = weight
        dirs[str(col)] = direction
    ws = direct(raw)
    return {c: (ws[c], dirs[c]) for c in raw}


def normalised_matrix(table: pd.DataFrame, spec: ColumnSpec, normalise: str) -> np.ndarray:
    """The candidates x columns matrix r of the module docstring (float64; cost columns not yet flipped for
    vector normalisation, because TOPSIS and the weighted sum treat them differently)."""
    if normalise not in NORMALISATIONS:
        raise ConfigError(f"normalise must be one of {', '.join(NORMALISATIONS)}, got {normalise!r}"
                          f"{did_you_mean(str(normalise), NORMALISATIONS)}")
    cols = list(spec)
    x = np.column_stack([pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=float) for c in cols]) \
        if len(table) else np.zeros((0, len(cols)))
    r = np.full_like(x, np.nan)
    for j, c in enumerate(cols):
        col = x[:, j]
        ok = np.isfinite(col)
        if not ok.any():
            continue
        if normalise == "minmax":
            lo, hi = col[ok].min(), col[ok].max()
            if hi > lo:
                r[:, j] = (col - lo) / (hi - lo) if spec[c][1] == "benefit" else (hi - col) / (hi - lo)
            else:
                r[ok, j] = 1.0
        else:
            if np.any(col[ok] < 0):
                raise ConfigError(f"vector normalisation needs values >= 0; column '{c}' has {col[ok].min():g}")
            norm = np.sqrt(np.sum(col[ok] ** 2))
            r[:, j] = col / norm if norm > 0 else np.where(ok, 0.0, np.nan)
    return r


def scores(r: np.ndarray, spec: ColumnSpec, method: str, normalise: str,
           weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Scores and per-column contributions from a normalised matrix (``weights`` overrides the spec's, e.g. for
    a sensitivity sweep; they are used as given). Returns ``score``, ``contrib`` (n x m) and, for TOPSIS,
    ``d_plus`` and ``d_minus``."""
    if method not in RANK_METHODS:
        raise ConfigError(f"ranking method must be one of {', '.join(RANK_METHODS)}, got {method!r}"
                          f"{did_you_mean(str(method), RANK_METHODS)}")
    cols = list(spec)
    w = np.array([spec[c][0] for c in cols]) if weights is None else np.asarray(weights, dtype=float)
    cost = np.array([spec[c][1] == "cost" for c in cols])
    if method == "weighted_sum":
        rr = np.where(cost, 1.0 - r, r) if normalise == "vector" else r
        contrib = rr * w
        return {"score": contrib.sum(axis=1), "contrib": contrib}
    v = r * w
    flip = cost & (normalise == "vector")  # under minmax the cost columns are already flipped
    with np.errstate(all="ignore"):
        vmax = np.nanmax(np.where(np.isfinite(v), v, np.nan), axis=0) if len(v) else np.zeros(len(cols))
        vmin = np.nanmin(np.where(np.isfinite(v), v, np.nan), axis=0) if len(v) else np.zeros(len(cols))
    ideal = np.where(flip, vmin, vmax)
    anti = np.where(flip, vmax, vmin)
    d_plus = np.sqrt(((v - ideal) ** 2).sum(axis=1))
    gap = (v - anti) ** 2
    d_minus = np.sqrt(gap.sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(d_plus + d_minus > 0, d_minus / (d_plus + d_minus), np.nan)
        contrib = np.where(gap.sum(axis=1, keepdims=True) > 0, gap / gap.sum(axis=1, keepdims=True), 0.0)
    contrib[~np.isfinite(score)] = np.nan
    return {"score": score, "contrib": contrib, "d_plus": d_plus, "d_minus": d_minus}


def rank_of(score: np.ndarray) -> np.ndarray:
    """1 = highest score; ties share the best rank; NaN scores get NaN rank."""
    s = np.asarray(score, dtype=float)
    out = np.full(s.shape, np.nan)
    ok = np.isfinite(s)
    out[ok] = rankdata(-s[ok], method="min")  # competition ranking: 1 + number of strictly better candidates
    return out


def rank(table: pd.DataFrame, columns: Mapping[str, Any], *, method: str = "weighted_sum",
         normalise: str = "minmax", reasons: int = 2) -> pd.DataFrame:
    """Rank the rows of ``table`` by ``method`` over ``columns`` (module docstring).

    Returns a copy of ``table`` (GeoDataFrame stays GeoDataFrame) sorted by rank with the added columns
    ``score``, ``rank`` (1 = best), ``contrib_{column}`` for every ranking column, ``d_plus``/``d_minus`` for
    TOPSIS, ``reasons`` (the ``reasons`` largest contributions as text) and ``ranking_rule`` (method,
    normalisation and normalised weights, so the published table says how it was ranked).
    """
    spec = parse_columns(columns, table)
    r = normalised_matrix(table, spec, normalise)
    res = scores(r, spec, method, normalise)
    out = table.copy()
    out["score"] = res["score"]
    out["rank"] = rank_of(res["score"])
    cols = list(spec)
    for j, c in enumerate(cols):
        out[f"contrib_{c}"] = res["contrib"][:, j]
    if method == "topsis":
        out["d_plus"] = res["d_plus"]
        out["d_minus"] = res["d_minus"]
    texts = []
    for i in range(len(out)):
        row = res["contrib"][i]
        if not np.all(np.isfinite(row)):
            texts.append("not ranked: missing " + ", ".join(c for c, x in zip(cols, r[i], strict=True)
                                                            if not np.isfinite(x)))
            continue
        order = np.argsort(-row, kind="stable")[:reasons]
        texts.append("; ".join(f"{cols[k]} {row[k]:.3g}" for k in order))
    out["reasons"] = texts
    out["ranking_rule"] = (f"{method}, {normalise} normalisation, weights "
                           + ", ".join(f"{c} {spec[c][0]:.3g} ({spec[c][1]})" for c in cols))
    order = np.lexsort((np.arange(len(out)), np.where(np.isfinite(out["rank"]), out["rank"], np.inf)))
    return out.iloc[order]
