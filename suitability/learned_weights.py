"""Criterion weights learned from where the land use already is (presence cells) versus the rest of the area.

Presence cells (``presence_mask`` true, every criterion valid) are contrasted with a seeded background sample of
the other valid cells, in the spirit of presence/background species distribution models (Phillips et al. 2006).
Both samples come from ``objective_weights._sample``, so they are deterministic and chunk-invariant.

* ``method="logistic"``: logistic regression (scikit-learn, L2, C = 1) on standardised criteria. The weight of a
  criterion is ``|beta_j| / sum |beta|``; on standardised inputs the coefficients are comparable across
  criteria. A *negative* coefficient means that presence becomes less likely as the criterion's score rises:
  the transform's direction contradicts the data. Such criteria are listed in ``details["negative"]`` (their
  weight is still |beta|: review the transform rather than trusting the weight).
* ``method="random_forest"``: a random forest classifier; the weight is its permutation importance (decrease in
  ROC AUC when the criterion is shuffled; Breiman 2001), measured on the held-out fold of each cross-validation
  split and averaged, with negative importances clipped to 0.

``details["auc"]`` is the mean cross-validated ROC AUC (stratified k-fold, shuffled with ``seed``), with the
per-fold values in ``details["auc_folds"]``: how well the criteria separate presence from background at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from rasters.errors import ConfigError, did_you_mean
from suitability.objective_weights import _sample
from suitability.weights import WeightSet

__all__ = ["LEARNED_METHODS", "learned"]

LEARNED_METHODS = ("logistic", "random_forest")


def _logistic(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000, random_state=seed))


def _forest(seed: int, n_estimators: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    # n_jobs=1: the result must not depend on thread scheduling; min_samples_leaf smooths the AUC surface.
    return RandomForestClassifier(n_estimators=n_estimators, min_samples_leaf=2, random_state=seed, n_jobs=1)


def learned(
    layers: Mapping[str, Any],
    presence_mask: Any,
    *,
    method: str = "logistic",
    n_background: int = 10_000,
    n_presence: int = 10_000,
    seed: int = 0,
    folds: int = 5,
    n_estimators: int = 100,
) -> WeightSet:
    """Weights of the criterion ``layers`` learned from ``presence_mask`` (bool array, true where the land use
    is present) against up to ``n_background`` background cells (valid, not present), drawn with ``seed``.

    At most ``n_presence`` presence cells are used (a seeded sample when there are more). ``folds`` is the
    number of stratified cross-validation folds (reduced to the size of the smaller class when that is smaller;
    it must reach 2). No presence cell with valid criteria, or no background cell, is a ``ConfigError``. The same
    inputs and seed give identical weights.
    """
    if method not in LEARNED_METHODS:
        raise ConfigError(f"learned weights: unknown method '{method}'{did_you_mean(str(method), LEARNED_METHODS)}")
    if not isinstance(layers, Mapping) or not layers:
        raise ConfigError("learned weights need a non-empty mapping of criterion name to layer")
    names = [str(n) for n in layers]
    for key, value in (("n_background", n_background), ("n_presence", n_presence), ("folds", folds),
                       ("n_estimators", n_estimators)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ConfigError(f"learned weights: {key} must be an integer >= 1, got {value!r}")
    if np.shape(presence_mask) != np.shape(next(iter(layers.values()))):
        raise ConfigError(f"learned weights: presence_mask has shape {np.shape(presence_mask)}, the layers "
                          f"{np.shape(next(iter(layers.values())))}")
    dtype = getattr(presence_mask, "dtype", None)
    if dtype is None or dtype != np.bool_:
        raise ConfigError(f"learned weights: presence_mask must be a boolean array, got dtype {dtype}")
    arrays = list(layers.values())
    _, present = _sample(arrays, n_presence, seed, where=presence_mask)
    _, background = _sample(arrays, n_background, seed, where=~presence_mask)
    if len(present) == 0:
        raise ConfigError("learned weights: presence_mask has no cell where every criterion has data; "
                          "cannot learn weights without presence cells")
    if len(background) == 0:
        raise ConfigError("learned weights: no background cell (valid and outside presence_mask) to contrast with")
    x = np.concatenate([present, background])
    y = np.concatenate([np.ones(len(present), dtype=np.int8), np.zeros(len(background), dtype=np.int8)])
    k = min(int(folds), len(present), len(background))
    if k < 2:
        raise ConfigError(f"learned weights: cross-validation needs at least 2 presence and 2 background cells, "
                          f"got {len(present)} and {len(background)}")

    from sklearn.inspection import permutation_importance
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    aucs: list[float] = []
    importances = np.zeros(len(names))
    for fold, (train, test) in enumerate(splitter.split(x, y)):
        model = _logistic(seed) if method == "logistic" else _forest(seed, int(n_estimators))
        model.fit(x[train], y[train])
        aucs.append(float(roc_auc_score(y[test], model.predict_proba(x[test])[:, 1])))
        if method == "random_forest":
            result = permutation_importance(model, x[test], y[test], scoring="roc_auc", n_repeats=10,
                                            random_state=seed + fold)
            importances += result.importances_mean
    details: dict[str, Any] = {"learner": method, "seed": int(seed), "n_presence": int(len(present)),
                               "n_background": int(len(background)), "folds": k,
                               "auc": math.fsum(aucs) / len(aucs), "auc_folds": aucs}
    if method == "logistic":
        model = _logistic(seed).fit(x, y)
        beta = model[-1].coef_[0]
        raw_importance = np.abs(beta)
        details["coefficients"] = {n: float(b) for n, b in zip(names, beta, strict=True)}
        details["negative"] = [n for n, b in zip(names, beta, strict=True) if b < 0]
    else:
        raw_importance = np.clip(importances / k, 0.0, None)
        details["permutation_importance"] = {n: float(v) for n, v in zip(names, importances / k, strict=True)}
    total = math.fsum(raw_importance)
    if not total > 0:
        raise ConfigError(f"learned weights ({method}): no criterion helps to separate presence from background "
                          f"(all importances are 0; AUC {details['auc']:.2f})")
    weights = {n: float(v) / total for n, v in zip(names, raw_importance, strict=True)}
    raw = {"criteria": names, "method": method, "n_background": int(n_background), "n_presence": int(n_presence),
           "seed": int(seed)}
    return WeightSet(weights=weights, method=f"learned_{method}", raw=raw, details=details)
