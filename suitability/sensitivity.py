"""How stable is the answer? One-at-a-time weight sweeps, Monte Carlo weights, and a stability verdict.

Candidate scores without a raster pass
--------------------------------------
For the weighted sum (WLC), the suitability of a cell is ``S = Σ_i w_i x_i``, so the area-weighted zonal mean of
S over a candidate is ``Σ_i w_i · mean(x_i)``: linear in the zonal means of the criterion scores. A sweep or a
Monte Carlo draw of the weights therefore re-scores every candidate from the (candidates × criteria) matrix of
zonal means, with no raster pass. This is exact when the criterion means are taken over the cells where S is
defined (with ``nodata="any"``: mask each criterion with ``isnan(S)`` before ``zonal_stats``). For a non-linear
overlay (weighted product, TOPSIS, OWA, fuzzy) the mean of S is not a function of the means: pass ``score_fn``
(weights -> one score per candidate), e.g. one that recomputes the overlay per cell on the candidates' cells.

One-at-a-time sweeps (``oat_sweep``)
------------------------------------
Each criterion weight in turn is changed by each step of ``changes`` and the other weights are rescaled in
proportion so that the weights still sum to 1 (Chen, Yu & Khan 2010, *Environmental Modelling & Software* 25,
"Spatial sensitivity analysis of multi-criteria weights in GIS-based land suitability evaluation": ``mode =
"relative"``, w_i' = w_i (1 + δ); ``"absolute"``, w_i' = w_i + δ; clipped to [0, 1]). Every candidate is
re-scored and re-ranked for every (criterion, δ).

Monte Carlo (``dirichlet_draws``, ``ahp_draws``, ``monte_carlo_rasters``, ``rank_distribution``)
-------------------------------------------------------------------------------------------------
Weights are drawn once, up front, from a seeded ``numpy.random.Generator`` (PCG64):

* Dirichlet around the configured weights w: ``α = concentration · w`` (mean w, variance
  ``w_i (1 − w_i) / (concentration + 1)``; zero weights stay 0);
* or AHP judgements perturbed on Saaty's scale: each upper-triangle judgement moves by a uniform integer number
  of steps in ``[−steps, steps]`` along 1/9, 1/8, …, 1/2, 1, 2, …, 9 (clamped at the ends), and the weights are
  re-derived (``suitability.ahp.ahp``; the consistency ratio of every draw is returned).

``monte_carlo_rasters`` computes per cell the mean, the standard deviation (population, over the draws) and the
coefficient of variation ``std / mean`` of the weighted-sum suitability over all draws, block by block: each
block loops over the draws accumulating the sum and sum of squares of ``S_d − S_ref`` (shifted by the score
under the mean weights, which keeps the variance free of cancellation), so memory does not depend on the number
of draws, and every cell's arithmetic is the same in any chunking (bit-identical results). ``rank_distribution``
ranks the candidates under every draw: rank acceptability indices ``b_i^r`` = share of draws in which candidate
i has rank r (SMAA-2, Lahdelma & Salminen 2001, *Operations Research* 49(3)), ``P(top k) = Σ_{r≤k} b_i^r``.

Verdict (``stability_verdict``)
-------------------------------
* ``robust_top_k``: in the top k in ≥ ``threshold`` (95 %) of the draws **and** under every one-at-a-time change;
* ``top_k_depends_on``: in the top k with the configured weights, but a change of a single weight (named in
  ``sensitive_to``, smallest change first) moves it out;
* ``top_k_uncertain``: in the top k under every single-weight change but in fewer than ``threshold`` of draws;
* ``outside_top_k`` / ``outside_top_k_depends_on``: not in the top k (the latter enters it with a single change).

How to call from the pipeline
-----------------------------
::

    masked = {n: da.where(da.isnan(suit), np.nan, s) for n, s in criteria.items()}
    means = zonal.zonal_stats(cands, masked, grid)[[f"{n}_mean" for n in criteria]]
    means.columns = list(criteria)
    sweep = oat_sweep(means, weights, changes=(-0.2, -0.1, 0.1, 0.2))
    draws = dirichlet_draws(weights, n_draws=1000, seed=cfg.seed, concentration=50)
    mean, std, cv = monte_carlo_rasters(list(criteria.values()), draws)     # lazy; write them in the one compute
    summary, acceptability = rank_distribution(means, draws, list(criteria), k=5)
    verdict = stability_verdict(summary, sweep, k=5)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
from numba import njit
from scipy.stats import rankdata

from rasters.errors import ConfigError, did_you_mean
from suitability.ahp import ahp, parse_judgements
from suitability.weights import direct

__all__ = ["SAATY_STEPS", "VERDICTS", "ahp_draws", "dirichlet_draws", "monte_carlo_rasters", "oat_summary",
           "oat_sweep", "rank_distribution", "stability_verdict"]

# Saaty's fundamental scale as 17 ordered steps: 1/9 .. 1/2, 1, 2 .. 9.
SAATY_STEPS = np.array([1 / v for v in range(9, 1, -1)] + [1.0] + [float(v) for v in range(2, 10)])
VERDICTS = ("robust_top_k", "top_k_depends_on", "top_k_uncertain", "outside_top_k", "outside_top_k_depends_on")
_MODES = ("relative", "absolute")


# --- helpers ------------------------------------------------------------------------------------------------------


def _weights_vector(weights: Mapping[str, float], names: Sequence[str]) -> np.ndarray:
    ws = direct(weights)
    missing = [n for n in names if n not in ws]
    if missing:
        raise ConfigError(f"no weight for criterion '{missing[0]}'{did_you_mean(missing[0], list(ws))}")
    extra = [n for n in ws if n not in names]
    if extra:
        raise ConfigError(f"weight given for '{extra[0]}', which is not a criterion column"
                          f"{did_you_mean(extra[0], names)}")
    return np.array([ws[n] for n in names])


def _check_int(name: str, v: Any, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
        raise ConfigError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def _linear(means: pd.DataFrame) -> Callable[[np.ndarray], np.ndarray]:
    m = means.to_numpy(dtype=float)

    def score(w: np.ndarray) -> np.ndarray:
        return m @ np.asarray(w, dtype=float)

    return score


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Competition ranks (1 = best) down axis 0; NaN scores rank last (n)."""
    s = np.where(np.isfinite(scores), scores, -np.inf)
    return rankdata(-s, axis=0, method="min")


# --- one at a time ------------------------------------------------------------------------------------------------


def oat_sweep(
    means: pd.DataFrame,
    weights: Mapping[str, float],
    *,
    changes: Sequence[float] = (-0.2, -0.1, 0.1, 0.2),
    mode: str = "relative",
    score_fn: Callable[[np.ndarray], np.ndarray] | None = None,
) -> pd.DataFrame:
    """Re-score the candidates for every single-weight change (module docstring).

    Args:
        means: candidates x criteria (zonal means of the criterion scores; the index names the candidates).
        weights: configured weights per criterion (normalised here).
        changes: the steps δ (relative fractions, or absolute weight differences with ``mode="absolute"``).
        score_fn: weights vector (criteria order of ``means``) -> score per candidate; default the weighted sum.

    Returns a long DataFrame: ``criterion, change, weight`` (the changed criterion's new weight), ``candidate,
    score, rank, base_rank, rank_change`` (positive = moved up). The unchanged run is included with criterion
    ``"(base)"`` and change 0.
    """
    if mode not in _MODES:
        raise ConfigError(f"oat_sweep: mode must be relative or absolute, got {mode!r}"
                          f"{did_you_mean(str(mode), _MODES)}")
    names = [str(c) for c in means.columns]
    w0 = _weights_vector(weights, names)
    fn = score_fn or _linear(means)
    base = np.asarray(fn(w0), dtype=float)
    base_rank = _ranks(base)
    cand = list(means.index)
    frames = [pd.DataFrame({"criterion": "(base)", "change": 0.0, "weight": np.nan, "candidate": cand,
                            "score": base, "rank": base_rank, "base_rank": base_rank, "rank_change": 0})]
    for i, name in enumerate(names):
        for delta in changes:
            wi = w0[i] * (1 + delta) if mode == "relative" else w0[i] + delta
            wi = min(max(wi, 0.0), 1.0)
            rest = 1.0 - w0[i]
            if rest <= 0:
                continue  # a single criterion: nothing to trade against
            w = w0 * ((1.0 - wi) / rest)
            w[i] = wi
            s = np.asarray(fn(w), dtype=float)
            r = _ranks(s)
            frames.append(pd.DataFrame({"criterion": name, "change": float(delta), "weight": wi, "candidate": cand,
                                        "score": s, "rank": r, "base_rank": base_rank,
                                        "rank_change": base_rank - r}))
    return pd.concat(frames, ignore_index=True)


def oat_summary(sweep: pd.DataFrame, k: int) -> pd.DataFrame:
    """Per (candidate, criterion): best and worst rank over the changes, largest |rank change|, and the smallest
    |change| at which the candidate's membership of the top k differs from the base (NaN if never)."""
    k = _check_int("k", k, 1)
    rows = sweep[sweep["criterion"] != "(base)"].copy()
    rows["flips"] = (rows["rank"] <= k) != (rows["base_rank"] <= k)
    rows["abs_change"] = rows["change"].abs()
    g = rows.groupby(["candidate", "criterion"], sort=False)
    out = g.agg(base_rank=("base_rank", "first"), best_rank=("rank", "min"), worst_rank=("rank", "max"),
                max_rank_change=("rank_change", lambda x: int(np.abs(x).max())))
    flip = rows[rows["flips"]].groupby(["candidate", "criterion"], sort=False)["abs_change"].min()
    out["smallest_flip_change"] = flip.reindex(out.index)
    return out.reset_index()


# --- Monte Carlo weights ------------------------------------------------------------------------------------------


def dirichlet_draws(weights: Mapping[str, float], n_draws: int, seed: int, concentration: float) -> np.ndarray:
    """``n_draws`` x criteria weights from Dirichlet(concentration · w) (zero weights stay 0), rows sum to 1."""
    n_draws = _check_int("n_draws", n_draws, 1)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    if isinstance(concentration, bool) or not isinstance(concentration, int | float | np.integer | np.floating) \
            or not math.isfinite(concentration) or concentration <= 0:
        raise ConfigError(f"concentration must be a number > 0 (larger = draws closer to the weights), "
                          f"got {concentration!r}")
    w = np.array(list(direct(weights).values()))
    rng = np.random.default_rng(int(seed))
    out = np.zeros((n_draws, w.size))
    pos = w > 0
    out[:, pos] = rng.dirichlet(concentration * w[pos], size=n_draws)
    return out


def ahp_draws(judgements: Any, names: Sequence[str], n_draws: int, seed: int, *, steps: int = 1,
              method: str = "eigenvector") -> tuple[np.ndarray, np.ndarray]:
    """Weights re-derived from judgements perturbed on Saaty's scale (module docstring).

    Returns (``n_draws`` x criteria weights, consistency ratio per draw). Judgements between scale points are
    snapped to the nearest one (in log space) before moving."""
    n_draws = _check_int("n_draws", n_draws, 1)
    steps = _check_int("steps", steps, 0)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    a = parse_judgements(judgements, names)
    n = a.shape[0]
    iu = np.triu_indices(n, 1)
    log_scale = np.log(SAATY_STEPS)
    pos = np.abs(np.log(a[iu])[:, None] - log_scale[None, :]).argmin(axis=1)
    rng = np.random.default_rng(int(seed))
    moves = rng.integers(-steps, steps + 1, size=(n_draws, pos.size))
    out = np.empty((n_draws, n))
    crs = np.empty(n_draws)
    for d in range(n_draws):
        p = np.clip(pos + moves[d], 0, SAATY_STEPS.size - 1)
        upper = [float(SAATY_STEPS[i]) for i in p]
        ws = ahp(upper, list(names), method=method, accept_inconsistent=True)
        out[d] = [ws[x] for x in names]
        crs[d] = ws.details["cr"]
    return out, crs


@njit(cache=True, nogil=True)
def _mc_kernel(x, draws, ref):
    """x: (m, h, w) float32; draws: (n, m); ref: (m,) shift weights -> (3, h, w) float32 mean, std, cv."""
    m, h, w = x.shape
    n = draws.shape[0]
    out = np.empty((3, h, w), np.float32)
    xs = np.empty(m)
    for r in range(h):
        for c in range(w):
            bad = False
            for i in range(m):
                xs[i] = x[i, r, c]
                if xs[i] != xs[i]:
                    bad = True
            if bad:
                out[0, r, c] = np.nan
                out[1, r, c] = np.nan
                out[2, r, c] = np.nan
                continue
            k = 0.0
            for i in range(m):
                k += ref[i] * xs[i]
            acc = 0.0
            acc2 = 0.0
            for d in range(n):
                s = 0.0
                for i in range(m):
                    s += draws[d, i] * xs[i]
                t = s - k
                acc += t
                acc2 += t * t
            mt = acc / n
            mean = k + mt
            var = acc2 / n - mt * mt
            std = math.sqrt(var) if var > 0 else 0.0
            out[0, r, c] = mean
            out[1, r, c] = std
            out[2, r, c] = std / mean if mean != 0 else np.nan
    return out


def _mc_block(draws, ref, *blocks):
    x = np.stack([np.asarray(b, dtype=np.float32) for b in blocks])
    return _mc_kernel(x, draws, ref)


def monte_carlo_rasters(layers: Sequence[Any], draws: np.ndarray) -> tuple[Any, Any, Any]:
    """Per-cell mean, standard deviation and coefficient of variation of the weighted-sum suitability over the
    weight ``draws`` (n x criteria, criteria in the order of ``layers``), as float32 arrays (lazy dask if any
    layer is dask; numpy otherwise). A cell with any NaN criterion is NaN; CV is NaN where the mean is 0."""
    layers = list(layers)
    draws = np.ascontiguousarray(draws, dtype=np.float64)
    if draws.ndim != 2 or draws.shape[1] != len(layers) or draws.shape[0] < 1:
        raise ConfigError(f"draws must be (n_draws, {len(layers)}) for {len(layers)} layers, got {draws.shape}")
    shapes = {tuple(np.shape(a)) for a in layers}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ConfigError(f"monte_carlo_rasters needs 2-D layers of one shape, got {sorted(shapes)}")
    ref = draws.mean(axis=0)
    if any(isinstance(a, da.Array) for a in layers):
        first = next(a for a in layers if isinstance(a, da.Array))
        arrays = [a.rechunk(first.chunks) if isinstance(a, da.Array) else da.from_array(np.asarray(a),
                                                                                        chunks=first.chunks)
                  for a in layers]
        out = da.map_blocks(_mc_block, draws, ref, *arrays, dtype=np.float32, new_axis=0,
                            chunks=((3,),) + first.chunks)
        return out[0], out[1], out[2]
    out = _mc_block(draws, ref, *layers)
    return out[0], out[1], out[2]


def rank_distribution(means: pd.DataFrame, draws: np.ndarray, *, k: int, weights: Mapping[str, float] | None = None,
                      score_fn: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ranks of the candidates (rows of ``means``) under every weight draw (columns in the order of ``means``).

    Returns (summary, acceptability). ``summary`` per candidate: ``base_rank`` (with ``weights``, if given),
    ``mean_rank``, ``rank_p05``, ``rank_median``, ``rank_p95``, ``best_rank``, ``worst_rank`` and ``p_top_k``;
    ``acceptability`` is candidates x ranks 1..n, the share of draws with that rank (rows sum to 1).
    """
    k = _check_int("k", k, 1)
    draws = np.asarray(draws, dtype=float)
    if draws.ndim != 2 or draws.shape[1] != means.shape[1]:
        raise ConfigError(f"draws must be (n_draws, {means.shape[1]}), got {draws.shape}")
    fn = score_fn or _linear(means)
    s = np.column_stack([np.asarray(fn(w), dtype=float) for w in draws]) if score_fn else \
        means.to_numpy(dtype=float) @ draws.T
    r = _ranks(s)  # candidates x draws
    n_c, n_d = r.shape
    acc = np.zeros((n_c, n_c))
    for i in range(n_c):
        acc[i] = np.bincount(r[i].astype(np.int64) - 1, minlength=n_c) / n_d
    summary = pd.DataFrame({
        "candidate": list(means.index),
        "mean_rank": r.mean(axis=1),
        "rank_p05": np.percentile(r, 5, axis=1, method="inverted_cdf"),
        "rank_median": np.percentile(r, 50, axis=1, method="inverted_cdf"),
        "rank_p95": np.percentile(r, 95, axis=1, method="inverted_cdf"),
        "best_rank": r.min(axis=1),
        "worst_rank": r.max(axis=1),
        "p_top_k": (r <= k).mean(axis=1),
    })
    if weights is not None:
        summary.insert(1, "base_rank", _ranks(np.asarray(fn(_weights_vector(weights, list(means.columns))))))
    acceptability = pd.DataFrame(acc, index=list(means.index), columns=[f"rank_{j}" for j in range(1, n_c + 1)])
    return summary, acceptability


# --- verdict ------------------------------------------------------------------------------------------------------


def stability_verdict(summary: pd.DataFrame, sweep: pd.DataFrame, *, k: int, threshold: float = 0.95) -> pd.DataFrame:
    """One verdict per candidate from the Monte Carlo ``summary`` (``rank_distribution``) and the one-at-a-time
    ``sweep`` (``oat_sweep``): columns ``candidate, base_rank, p_top_k, verdict, sensitive_to`` (criteria whose
    single change flips top-k membership, smallest change first, with the change) and ``verdict_rule``."""
    k = _check_int("k", k, 1)
    if not 0 < threshold <= 1:
        raise ConfigError(f"threshold must be in (0, 1], got {threshold!r}")
    oat = oat_summary(sweep, k)
    base = sweep[sweep["criterion"] == "(base)"].set_index("candidate")["base_rank"]
    p = summary.set_index("candidate")["p_top_k"]
    rows = []
    for cand in summary["candidate"]:
        b = float(base.get(cand, np.nan))
        flips = oat[(oat["candidate"] == cand) & oat["smallest_flip_change"].notna()]
        flips = flips.sort_values(["smallest_flip_change", "criterion"])
        sens = ", ".join(f"{c} (±{x:g})" for c, x in zip(flips["criterion"], flips["smallest_flip_change"],
                                                             strict=True))
        in_top = b <= k
        pk = float(p.get(cand, np.nan))
        if in_top:
            verdict = "top_k_depends_on" if len(flips) else ("robust_top_k" if pk >= threshold else "top_k_uncertain")
        else:
            verdict = "outside_top_k_depends_on" if len(flips) else "outside_top_k"
        rows.append({"candidate": cand, "base_rank": b, "p_top_k": pk, "verdict": verdict, "sensitive_to": sens})
    out = pd.DataFrame(rows)
    out["verdict_rule"] = (f"robust_top_k: in top {k} in >= {threshold:.0%} of draws and under every one-at-a-time "
                           f"change; depends_on: a single weight change flips top-{k} membership")
    return out
