"""Sensitivity: one-at-a-time sweeps, Monte Carlo weights and rasters, rank acceptability and the verdict."""

from __future__ import annotations

import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine

from rasters.errors import ConfigError
from rasters.grid import Grid
from suitability.ahp import ahp
from suitability.overlay import weighted_sum
from suitability.sensitivity import (
    ahp_draws,
    dirichlet_draws,
    monte_carlo_rasters,
    oat_summary,
    oat_sweep,
    rank_distribution,
    stability_verdict,
)
from suitability.zonal import zonal_stats

CRS = "EPSG:32647"


def test_oat_changes_one_weight_and_renormalises_the_others():
    seen = []
    means = pd.DataFrame({"a": [1.0], "b": [0.0], "c": [0.0]}, index=["x"])

    def capture(w):
        seen.append(np.array(w))
        return np.array([0.0])

    oat_sweep(means, {"a": 0.5, "b": 0.3, "c": 0.2}, changes=(-0.2, 0.4), score_fn=capture)
    w = np.array(seen[1:])
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    # a: 0.5 * 0.8 = 0.4, the rest 0.6 split 3:2 -> (0.4, 0.36, 0.24); a: 0.5 * 1.4 = 0.7 -> (0.7, 0.18, 0.12)
    np.testing.assert_allclose(w[0], [0.4, 0.36, 0.24])
    np.testing.assert_allclose(w[1], [0.7, 0.18, 0.12])
    # c + 40 % absolute would be 0.6 -> others 0.4 split 5:3
    seen.clear()
    oat_sweep(means, {"a": 0.5, "b": 0.3, "c": 0.2}, changes=(0.4,), mode="absolute", score_fn=capture)
    np.testing.assert_allclose(seen[3], [0.25, 0.15, 0.6])


def test_candidate_score_is_linear_in_criterion_means():
    # zonal mean of the weighted-sum raster == weighted sum of the zonal means of the criteria (module docstring)
    grid = Grid(CRS, Affine(10, 0, 0, 0, -10, 320), 32, 32, 16)
    rng = np.random.default_rng(1)
    x = [rng.random(grid.shape).astype(np.float32) for _ in range(3)]
    w = [0.5, 0.3, 0.2]
    zones = gpd.GeoDataFrame(geometry=[shapely.Point(120, 200).buffer(77), shapely.box(3, 3, 180, 90)], crs=CRS)
    s = weighted_sum(x, w)
    t = zonal_stats(zones, {"s": s, "x0": x[0], "x1": x[1], "x2": x[2]}, grid)
    lin = sum(wi * t[f"x{i}_mean"] for i, wi in enumerate(w))
    np.testing.assert_allclose(t["s_mean"], lin, rtol=1e-6)  # float32 rounding of the overlay raster


def test_dirichlet_draws_are_seeded_and_have_the_dirichlet_moments():
    w = {"a": 0.5, "b": 0.3, "c": 0.2, "z": 0.0}
    d1 = dirichlet_draws(w, 20_000, seed=5, concentration=40)
    d2 = dirichlet_draws(w, 20_000, seed=5, concentration=40)
    assert np.array_equal(d1, d2)
    assert not np.array_equal(d1, dirichlet_draws(w, 20_000, seed=6, concentration=40))
    np.testing.assert_allclose(d1.sum(axis=1), 1.0)
    assert np.all(d1[:, 3] == 0)
    mean = np.array([0.5, 0.3, 0.2])
    np.testing.assert_allclose(d1[:, :3].mean(axis=0), mean, atol=0.003)
    np.testing.assert_allclose(d1[:, :3].var(axis=0), mean * (1 - mean) / 41, rtol=0.05)


def test_ahp_draws_move_judgements_on_saatys_scale():
    names = ["slope", "water", "road"]
    upper = [3, 5, 2]
    base = ahp(upper, names)
    w0, cr0 = ahp_draws(upper, names, 5, seed=1, steps=0)
    np.testing.assert_allclose(w0, np.tile([base[n] for n in names], (5, 1)))
    assert cr0 == pytest.approx([base.details["cr"]] * 5)
    w1, cr1 = ahp_draws(upper, names, 200, seed=2, steps=1)
    w2, _ = ahp_draws(upper, names, 200, seed=2, steps=1)
    assert np.array_equal(w1, w2)
    # one step moves 3 to 2 or 4, 5 to 4 or 6, 2 to 1 or 3: every draw is one of the 27 re-derived matrices
    options = {tuple(np.round([ahp([a, b, c], names, accept_inconsistent=True)[n] for n in names], 12))
               for a in (2, 3, 4) for b in (4, 5, 6) for c in (1, 2, 3)}
    assert {tuple(np.round(r, 12)) for r in w1} <= options
    assert len({tuple(np.round(r, 12)) for r in w1}) > 10


def _criteria(shape=(48, 40)):
    rng = np.random.default_rng(11)
    x = [rng.random(shape).astype(np.float32) for _ in range(3)]
    x[1][5, 7] = np.nan
    return x


def test_monte_carlo_rasters_match_a_brute_force_reference():
    x = _criteria()
    draws = dirichlet_draws({"a": 0.5, "b": 0.3, "c": 0.2}, 64, seed=0, concentration=20)
    mean, std, cv = monte_carlo_rasters(x, draws)
    stack = np.stack([weighted_sum(x, list(d)).astype(np.float64) for d in draws])
    # the reference sums in float32 per draw; ours in float64 per cell
    np.testing.assert_allclose(mean, stack.mean(axis=0), rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(std, stack.std(axis=0), atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(cv, stack.std(axis=0) / stack.mean(axis=0), atol=1e-5, equal_nan=True)
    assert np.isnan(mean[5, 7]) and np.isnan(cv[5, 7])


def test_monte_carlo_rasters_are_chunk_invariant_and_deterministic():
    x = _criteria()
    draws = dirichlet_draws({"a": 0.5, "b": 0.3, "c": 0.2}, 100, seed=9, concentration=10)
    ref = np.stack(monte_carlo_rasters(x, draws))
    for chunks in (16, (7, 13), 48):
        got = da.compute(*monte_carlo_rasters([da.from_array(a, chunks=chunks) for a in x], draws))
        assert np.array_equal(np.stack(got), ref, equal_nan=True)
    again = dirichlet_draws({"a": 0.5, "b": 0.3, "c": 0.2}, 100, seed=9, concentration=10)
    assert np.array_equal(np.stack(monte_carlo_rasters(x, again)), ref, equal_nan=True)


def test_rank_acceptability_hand_computed():
    # Two criteria; draws (1, 0), (0, 1), (0.5, 0.5), (0.5, 0.5). Candidate scores per draw:
    #   P = (0.9, 0.1): .9, .1, .5, .5   Q = (0.2, 0.6): .2, .6, .4, .4   R = (0, 0): 0 always
    # ranks P: 1, 2, 1, 1   Q: 2, 1, 2, 2   R: 3 always
    means = pd.DataFrame({"a": [0.9, 0.2, 0.0], "b": [0.1, 0.6, 0.0]}, index=["P", "Q", "R"])
    draws = np.array([[1, 0], [0, 1], [0.5, 0.5], [0.5, 0.5]], dtype=float)
    summary, acc = rank_distribution(means, draws, k=1, weights={"a": 1, "b": 1})
    np.testing.assert_allclose(acc.to_numpy(), [[0.75, 0.25, 0], [0.25, 0.75, 0], [0, 0, 1]])
    assert summary["p_top_k"].tolist() == [0.75, 0.25, 0.0]
    assert summary["base_rank"].tolist() == [1, 2, 3]
    assert summary["mean_rank"].tolist() == [1.25, 1.75, 3.0]


def test_verdict_robust_leader_and_a_pair_that_swaps_with_one_weight():
    # A leads on every criterion. B and C tie on slope; C is better on water, B on road.
    # base: B = .2 + .12 + .18 = .50, C = .2 + .138 + .165 = .503 -> C is 2nd (top 2), B 3rd.
    # water -20 %: water .24, slope and road scaled by .76/.7 -> .4343, .3257:
    #   B = .2171 + .096 + .1954 = .5086, C = .2171 + .1104 + .1791 = .5067 -> B overtakes C.
    # road +20 %: road .36, slope .3657, water .2743: B = .5086, C = .5070 -> B overtakes C as well.
    # slope changes scale water and road alike, so C's lead keeps its sign: slope must not be named.
    means = pd.DataFrame({"slope": [0.9, 0.50, 0.50], "water": [0.9, 0.40, 0.46], "road": [0.9, 0.60, 0.55]},
                         index=["A", "B", "C"])
    weights = {"slope": 0.4, "water": 0.3, "road": 0.3}
    sweep = oat_sweep(means, weights, changes=(-0.2, -0.1, 0.1, 0.2))
    draws = dirichlet_draws(weights, 500, seed=0, concentration=50)
    summary, _ = rank_distribution(means, draws, k=2, weights=weights)
    v = stability_verdict(summary, sweep, k=2).set_index("candidate")
    assert v.loc["A", "verdict"] == "robust_top_k" and v.loc["A", "p_top_k"] == 1.0
    assert v.loc["C", "verdict"] == "top_k_depends_on"
    assert v.loc["C", "sensitive_to"] == "road (±0.2), water (±0.2)"
    assert v.loc["B", "verdict"] == "outside_top_k_depends_on"
    summ = oat_summary(sweep, 2).set_index(["candidate", "criterion"])
    assert summ.loc[("C", "water"), "smallest_flip_change"] == pytest.approx(0.2)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="concentration must be a number > 0"):
        dirichlet_draws({"a": 1}, 10, seed=0, concentration=0)
    with pytest.raises(ConfigError, match="draws must be"):
        monte_carlo_rasters([np.zeros((2, 2))], np.ones((3, 2)))
    with pytest.raises(ConfigError, match="no weight for criterion 'b'"):
        oat_sweep(pd.DataFrame({"a": [1.0], "b": [2.0]}), {"a": 1})
