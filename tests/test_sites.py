"""Ranking candidates: TOPSIS and weighted sum against hand-worked examples, contributions, NaN and ties."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rasters.errors import ConfigError
from suitability.sites import rank


def test_topsis_vector_normalisation_hand_computed():
    # Benefit column x: 3, 4, 0 -> ||x|| = 5, r = .6, .8, 0; cost column y: 0, 6, 8 -> ||y|| = 10, r = 0, .6, .8.
    # Weights .5/.5: v_x = .3, .4, 0; v_y = 0, .3, .4. Ideal (max x, min y) = (.4, 0); anti-ideal (0, .4).
    # A: d+ = sqrt(.1²) = .1,               d- = sqrt(.3² + .4²) = .5,      C = .5 / .6
    # B: d+ = sqrt(.3²) = .3,               d- = sqrt(.4² + .1²) = √.17,    C = √.17 / (.3 + √.17)
    # C: d+ = sqrt(.4² + .4²) = √.32,       d- = 0,                         C = 0
    table = pd.DataFrame({"name": ["A", "B", "C"], "x": [3.0, 4.0, 0.0], "y": [0.0, 6.0, 8.0]})
    out = rank(table, {"x": 1, "y": {"weight": 1, "direction": "cost"}}, method="topsis", normalise="vector")
    assert out["name"].tolist() == ["A", "B", "C"]
    assert out["rank"].tolist() == [1, 2, 3]
    expected = [0.5 / 0.6, math.sqrt(0.17) / (0.3 + math.sqrt(0.17)), 0.0]
    np.testing.assert_allclose(out["score"].to_numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(out["d_plus"].to_numpy(), [0.1, 0.3, math.sqrt(0.32)], rtol=1e-12)
    # A's separation from the anti-ideal: .3² from x and .4² from y -> shares .36 and .64
    a = out.iloc[0]
    assert (a["contrib_x"], a["contrib_y"]) == pytest.approx((0.36, 0.64))
    assert "topsis, vector normalisation" in a["ranking_rule"]


def test_weighted_sum_minmax_with_a_cost_column_hand_computed():
    # minmax: x 0, 5, 10 -> 0, .5, 1; travel (cost) 30, 60, 90 -> 1, .5, 0. Weights 3:1 -> .75, .25.
    # scores: P .75*0 + .25*1 = .25, Q .375 + .125 = .5, R .75 + 0 = .75
    table = pd.DataFrame({"x": [0.0, 5.0, 10.0], "travel": [30.0, 60.0, 90.0]}, index=["P", "Q", "R"])
    out = rank(table, {"x": 3, "travel": {"weight": 1, "direction": "cost"}})
    assert list(out.index) == ["R", "Q", "P"]
    np.testing.assert_allclose(out["score"].to_numpy(), [0.75, 0.5, 0.25])
    np.testing.assert_allclose(out["contrib_x"] + out["contrib_travel"], out["score"])
    assert out.loc["P", "reasons"].startswith("travel 0.25")


def test_missing_values_are_not_ranked_and_ties_share_a_rank():
    table = pd.DataFrame({"x": [1.0, np.nan, 1.0, 0.0]}, index=list("abcd"))
    out = rank(table, {"x": 1})
    assert list(out.index) == ["a", "c", "d", "b"]
    assert out["rank"].tolist()[:3] == [1, 1, 3]
    assert np.isnan(out.loc["b", "rank"]) and out.loc["b", "reasons"] == "not ranked: missing x"


def test_bad_specs_are_config_errors():
    table = pd.DataFrame({"suitability_mean": [0.1, 0.2]})
    with pytest.raises(ConfigError, match="did you mean 'suitability_mean'"):
        rank(table, {"suitability_men": 1})
    with pytest.raises(ConfigError, match="direction must be benefit or cost"):
        rank(table, {"suitability_mean": {"weight": 1, "direction": "costs"}})
    with pytest.raises(ConfigError, match="ranking method"):
        rank(table, {"suitability_mean": 1}, method="electre")
    with pytest.raises(ConfigError, match="vector normalisation needs values >= 0"):
        rank(pd.DataFrame({"x": [-1.0, 2.0]}), {"x": 1}, normalise="vector")
