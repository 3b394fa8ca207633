"""Criterion weights: turn what the user wrote into weights that sum to 1, and keep a record of how.

Every weighting method returns a ``WeightSet``: a read-only mapping ``criterion -> weight`` (weights >= 0,
summing to 1), plus the method name and the raw input, so ``WeightSet.as_record()`` can go straight into run.json.
Only the direct method lives here for now; AHP, entropy and learned weights return the same type.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rasters.errors import ConfigError

__all__ = ["WeightSet", "direct"]


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
