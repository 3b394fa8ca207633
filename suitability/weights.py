"""Criterion weights: turn what the user wrote into weights that sum to 1, and keep a record of how.

Every weighting method returns a ``WeightSet``: a read-only mapping ``criterion -> weight`` (weights >= 0,
summing to 1), plus the method name and the raw input, so ``WeightSet.as_record()`` can go straight into run.json.
This module holds the direct and the rank-order methods; AHP (``suitability.ahp``), entropy and CRITIC
(``suitability.objective_weights``) and learned weights (``suitability.learned_weights``) return the same type.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rasters.errors import ConfigError, did_you_mean

__all__ = ["RANK_METHODS", "WeightSet", "direct", "rank_weights"]


@dataclass(frozen=True, eq=True)
class WeightSet(Mapping[str, float]):
    """Normalised criterion weights (a mapping that sums to 1) with their provenance.

    ``weights`` keeps the order the criteria were given in. ``raw`` is the method's input as given (for
    ``direct``: the unnormalised weights), ``method`` names the method, ``details`` holds method-specific extras
    (e.g. a consistency ratio) as plain data.
    """

    weights: Mapping[str, float]
    method: str
    raw: Mapping[str, Any]
    details: Mapping[str, Any] = field(default_factory=dict)

    __hash__ = None  # type: ignore[assignment]  # holds dicts: comparable, not hashable

    def __getitem__(self, name: str) -> float:
        return self.weights[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.weights)

    def __len__(self) -> int:
        return len(self.weights)

    def as_record(self) -> dict[str, Any]:
        """Plain JSON-ready data: ``{"method", "weights", "raw", **details}``."""
        return {"method": self.method, "weights": dict(self.weights), "raw": dict(self.raw), **dict(self.details)}


def direct(weights: Mapping[str, float]) -> WeightSet:
    """Normalise directly given weights so that they sum to 1: ``w_i / sum(w)``.

    The weights are relative importances on any scale (``{slope: 3, water: 1}`` means slope counts three times as
    much). Each must be a finite number >= 0 and at least one must be > 0; otherwise ``ConfigError`` names the
    criterion. Returns a ``WeightSet`` (use it like a ``dict[str, float]``; ``dict(ws)`` gives a plain dict).
    """
    if not isinstance(weights, Mapping) or not weights:
        raise ConfigError(f"weights must be a non-empty mapping of criterion name to number, got {weights!r}")
    raw: dict[str, float] = {}
    for name, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise ConfigError(f"weight of criterion '{name}' must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"weight of criterion '{name}' must be a finite number, got {value!r}")
        if value < 0:
            raise ConfigError(f"weight of criterion '{name}' is {value:g}; weights must be >= 0")
        raw[str(name)] = value
    # math.fsum: the total is exact, so permuting the criteria cannot change the normalised weights.
    total = math.fsum(raw.values())
    if total <= 0:
        raise ConfigError(f"all weights are zero ({', '.join(raw)}); at least one criterion needs a weight > 0")
    normalised = {name: value / total for name, value in raw.items()}
    return WeightSet(weights=normalised, method="direct", raw=raw)


def _rank_sum(n: int) -> list[float]:
    # Stillwell, Seaver & Edwards (1981): w_r proportional to n - r + 1, i.e. 2(n + 1 - r) / (n(n + 1)).
    return [(n - r + 1) / (n * (n + 1) / 2) for r in range(1, n + 1)]


def _rank_reciprocal(n: int) -> list[float]:
    # Stillwell, Seaver & Edwards (1981): w_r proportional to 1/r.
    total = math.fsum(1.0 / k for k in range(1, n + 1))
    return [(1.0 / r) / total for r in range(1, n + 1)]


def _rank_order_centroid(n: int) -> list[float]:
    # Barron & Barrett (1996), Management Science 42(11): w_r = (1/n) * sum_{k=r..n} 1/k, the centroid of the
    # simplex of weights ordered w_1 >= w_2 >= ... >= w_n.
    return [math.fsum(1.0 / k for k in range(r, n + 1)) / n for r in range(1, n + 1)]


RANK_METHODS = {"rank_sum": _rank_sum, "rank_reciprocal": _rank_reciprocal,
                "rank_order_centroid": _rank_order_centroid}


def rank_weights(ranks: Mapping[str, int], method: str = "rank_order_centroid") -> WeightSet:
    """Weights from an importance ranking ``{criterion: rank}`` (1 = most important), for n criteria.

    ``method``: ``"rank_sum"`` (w_r = 2(n + 1 - r) / (n(n + 1))), ``"rank_reciprocal"`` (w_r = (1/r) / sum_k 1/k)
    (both Stillwell, Seaver & Edwards 1981) or ``"rank_order_centroid"`` (w_r = (1/n) sum_{k=r..n} 1/k; Barron &
    Barrett 1996). Ranks are integers 1..n; tied criteria share the mean of the positional weights of the
    places they occupy (two criteria tied at rank 2 of 4 each get (w_2 + w_3) / 2, and the next rank is 4), so the
    weights still sum to 1. Bad ranks (not integers, < 1, > n, or skipping places after a tie) are a ConfigError.
    """
    if method not in RANK_METHODS:
        raise ConfigError(f"unknown rank weighting method '{method}'{did_you_mean(str(method), RANK_METHODS)}")
    if not isinstance(ranks, Mapping) or not ranks:
        raise ConfigError(f"ranks must be a non-empty mapping of criterion name to rank (1 = most important), "
                          f"got {ranks!r}")
    n = len(ranks)
    checked: dict[str, int] = {}
    for name, r in ranks.items():
        if isinstance(r, bool) or not isinstance(r, int | np.integer) or not 1 <= r <= n:
            raise ConfigError(f"rank of criterion '{name}' must be an integer from 1 to {n}, got {r!r}")
        checked[str(name)] = int(r)
    positional = RANK_METHODS[method](n)
    # Competition ranking ("1, 2, 2, 4"): a tie at rank r occupies places r .. r + t - 1.
    counts: dict[int, int] = {}
    for r in checked.values():
        counts[r] = counts.get(r, 0) + 1
    for r, t in sorted(counts.items()):
        if r + t - 1 > n:
            raise ConfigError(f"ranks: {t} criteria at rank {r} would occupy places {r}..{r + t - 1} but there are "
                              f"only {n} criteria; tied criteria share the best rank of their group (1, 2, 2, 4)")
        for place in range(r + 1, r + t):
            if place in counts:
                raise ConfigError(f"ranks: {t} criteria tied at rank {r} occupy places {r}..{r + t - 1}, so rank "
                                  f"{place} cannot be used; the next rank after the tie is {r + t}")
    weights = {name: math.fsum(positional[r - 1:r - 1 + counts[r]]) / counts[r] for name, r in checked.items()}
    return WeightSet(weights=weights, method=method, raw=dict(checked))
