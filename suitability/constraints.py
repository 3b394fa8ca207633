"""Constraints: exclusion areas (red lines, 三区三线 protected zones, rules such as ``slope_deg > 25``).

A constraint is a boolean layer, True where land is excluded. Constraints combine with OR (a cell excluded by any
of them is excluded: the Boolean-overlay "screening" step that precedes weighted overlay in MCE, Malczewski 1999
§6.2), and an excluded cell's score becomes NaN (no data), so it can never be classified or chosen as a site.
Works on numpy and dask arrays (a dask input gives a lazy dask output); purely elementwise, so chunk-invariant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dask.array as da
import numpy as np

from rasters.errors import ConfigError

from .expressions import Expression, parse

__all__ = ["apply_exclusions", "exclusion_mask", "rules_mask"]


def _check_masks(masks: Sequence[Any], shape: tuple[int, ...] | None = None) -> list[Any]:
    masks = list(masks)
    for i, mask in enumerate(masks):
        dtype = getattr(mask, "dtype", None)
        if dtype is None or dtype != np.bool_:
            raise ConfigError(f"exclusion mask {i} must be a boolean array (True = excluded), got dtype {dtype}")
        if shape is not None and tuple(np.shape(mask)) != tuple(shape):
            raise ConfigError(f"exclusion mask {i} has shape {tuple(np.shape(mask))}, the score has shape {shape}")
    shapes = {tuple(np.shape(m)) for m in masks}
    if len(shapes) > 1:
        raise ConfigError(f"exclusion masks differ in shape: {sorted(shapes)}")
    return masks


def exclusion_mask(masks: Sequence[Any]) -> Any:
    """OR of boolean masks (True = excluded): a cell is excluded if any mask excludes it.

    ``masks`` must be non-empty (an empty list has no shape; use ``apply_exclusions`` with no masks instead).
    Returns a bool numpy array, or a dask array if any mask is dask.
    """
    masks = _check_masks(masks)
    if not masks:
        raise ConfigError("exclusion_mask needs at least one mask")
    lib = da if any(isinstance(m, da.Array) for m in masks) else np
    combined = masks[0]
    for mask in masks[1:]:
        combined = lib.logical_or(combined, mask)
    return combined if lib is da else np.asarray(combined, dtype=bool)


def rules_mask(rules: Sequence[str | Expression], layers: Mapping[str, Any], *, where: str = "constraint") -> Any:
    """Exclusion mask from text rules (see ``suitability.expressions``), e.g. ``["slope_deg > 25",
    "elevation_m >= 5000"]``: the OR of every rule evaluated on ``layers``. Each rule is checked against the layer
    names first, so a typo is reported (``ConfigError``) before anything is computed.
    """
    if not rules:
        raise ConfigError(f"{where}: no rules given")
    parsed = [r if isinstance(r, Expression) else parse(r, where=f"{where}[{i}]") for i, r in enumerate(rules)]
    for expression in parsed:
        expression.check_names(layers)
    return exclusion_mask([expression.evaluate(layers) for expression in parsed])


def apply_exclusions(score: Any, masks: Sequence[Any]) -> Any:
    """Return ``score`` as float32 with NaN wherever any mask is True (NaN already in ``score`` stays NaN).

    With no masks the score is returned unchanged (as float32). Every mask must be boolean and of the score's
    shape. Numpy in, numpy out; dask if the score or any mask is dask.
    """
    masks = _check_masks(masks, tuple(np.shape(score)))
    is_dask = isinstance(score, da.Array) or any(isinstance(m, da.Array) for m in masks)
    lib = da if is_dask else np
    score = score.astype(np.float32) if isinstance(score, da.Array) else np.asarray(score, dtype=np.float32)
    if not masks:
        return score
    return lib.where(exclusion_mask(masks), np.float32(np.nan), score)
