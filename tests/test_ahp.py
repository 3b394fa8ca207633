"""AHP weights against published examples, the three derivations against each other, and every error path;
rank-order weights against hand-worked values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rasters.errors import ConfigError
from suitability.ahp import AHP_METHODS, RANDOM_INDEX, ahp, parse_judgements
from suitability.weights import rank_weights

# --- published examples -------------------------------------------------------------------------------------------

# Saaty, T.L. (2008) Decision making with the analytic hierarchy process. Int. J. Services Sciences 1(1), 83-98,
# Table 2 "Which drink is consumed more in the US?": judgements by a group, derived scale printed as
# coffee .177, wine .019, tea .042, beer .116, sodas .190, milk .129, water .327, with C.R. = .022.
DRINKS = ["coffee", "wine", "tea", "beer", "soda", "milk", "water"]
DRINKS_MATRIX = [
    [1, 9, 5, 2, 1, 1, "1/2"],
    ["1/9", 1, "1/3", "1/9", "1/9", "1/9", "1/9"],
    ["1/5", 3, 1, "1/3", "1/4", "1/3", "1/9"],
    ["1/2", 9, 3, 1, "1/2", 1, "1/3"],
    [1, 9, 4, 2, 1, 2, "1/2"],
    [1, 9, 3, 1, "1/2", 1, "1/3"],
    [2, 9, 9, 3, 2, 3, 1],
]
DRINKS_PRINTED = [0.177, 0.019, 0.042, 0.116, 0.190, 0.129, 0.327]

# Wikipedia, "Analytic hierarchy process - leader example": criteria Experience, Education, Charisma, Age; the
# article prints the priorities with respect to the goal as .547, .127, .270, .056 and CR = 0.044 (Saaty RI 0.90).
LEADER = ["experience", "education", "charisma", "age"]
LEADER_UPPER = [4, 3, 7, "1/3", 3, 5]  # exp/edu, exp/cha, exp/age, edu/cha, edu/age, cha/age
LEADER_PRINTED = [0.547, 0.127, 0.270, 0.056]


def test_saaty_2008_drinks_example():
    ws = ahp(DRINKS_MATRIX, DRINKS)
    assert list(ws) == DRINKS
    for name, printed in zip(DRINKS, DRINKS_PRINTED, strict=True):
        assert ws[name] == pytest.approx(printed, abs=5e-4), name  # printed to 3 decimals
    assert ws.details["cr"] == pytest.approx(0.022, abs=5e-4)
    assert ws.details["ri"] == 1.32 and ws.details["ri_table"] == "saaty"
    n = 7
    assert ws.details["ci"] == pytest.approx((ws.details["lambda_max"] - n) / (n - 1), rel=1e-12)
    assert ws.details["consistent"] is True and ws.method == "ahp"


def test_wikipedia_leader_example_from_upper_triangle():
    ws = ahp(LEADER_UPPER, LEADER)
    for name, printed in zip(LEADER, LEADER_PRINTED, strict=True):
        assert ws[name] == pytest.approx(printed, abs=1e-3), name
    assert ws.details["cr"] == pytest.approx(0.044, abs=5e-4)
    # the same judgements as a full matrix give the same weights
    full = ahp(ws.details["matrix"], LEADER)
    assert dict(full) == pytest.approx(dict(ws), abs=1e-12)


def test_eigenvector_matches_an_independent_power_iteration():
    a = parse_judgements(DRINKS_MATRIX, DRINKS)
    v = np.ones(len(DRINKS))
    for _ in range(200):
        v = a @ v
        v /= v.sum()
    lam = float(np.mean((a @ v) / v))
    ws = ahp(DRINKS_MATRIX, DRINKS)
    np.testing.assert_allclose(list(ws.values()), v, rtol=1e-9)
    assert ws.details["lambda_max"] == pytest.approx(lam, rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(raw=st.lists(st.floats(min_value=0.34, max_value=2.9), min_size=1, max_size=9))
def test_three_derivations_agree_on_a_consistent_matrix(raw):
    # a_ij = w_i / w_j is perfectly consistent; ratios stay within 1/9..9 because each w is within 1/3..3
    w = np.asarray(raw) / sum(raw)
    a = (w[:, None] / w[None, :]).tolist()
    names = [f"c{i}" for i in range(len(raw))]
    for method in AHP_METHODS:
        ws = ahp(a, names, method=method)
        np.testing.assert_allclose(list(ws.values()), w, rtol=1e-9, atol=1e-12)
        assert ws.details["lambda_max"] == pytest.approx(len(raw), rel=1e-9)
        assert abs(ws.details["cr"]) < 1e-9


def test_geometric_and_column_mean_on_the_leader_example_by_hand():
    a = np.array([[1, 4, 3, 7], [1 / 4, 1, 1 / 3, 3], [1 / 3, 3, 1, 5], [1 / 7, 1 / 3, 1 / 5, 1]])
    g = np.array([math.prod(row) ** 0.25 for row in a.tolist()])
    cm = (a / a.sum(axis=0)).mean(axis=1)
    np.testing.assert_allclose(list(ahp(LEADER_UPPER, LEADER, method="geometric_mean").values()), g / g.sum())
    col = ahp(LEADER_UPPER, LEADER, method="column_mean")
    np.testing.assert_allclose(list(col.values()), cm / cm.sum())
    lam = float(np.mean((a @ (cm / cm.sum())) / (cm / cm.sum())))
    assert col.details["lambda_max"] == pytest.approx(lam, rel=1e-12)


def test_two_criteria_have_cr_zero_and_one_criterion_weight_one():
    ws = ahp([3], ["a", "b"])
    assert dict(ws) == pytest.approx({"a": 0.75, "b": 0.25})
    assert ws.details["cr"] == 0.0 and ws.details["ri"] == 0.0
    assert dict(ahp([], ["only"])) == {"only": 1.0}


def test_random_index_tables_are_indexed_by_n():
    # Saaty (1980): RI(3) = 0.58, RI(4) = 0.90; Alonso & Lamata (2006): RI(3) = 0.5245.
    assert RANDOM_INDEX["saaty"][3] == 0.58 and RANDOM_INDEX["saaty"][4] == 0.90
    assert RANDOM_INDEX["saaty"][15] == 1.59 and RANDOM_INDEX["alonso_lamata"][15] == 1.5838
    ws = ahp(LEADER_UPPER, LEADER, ri_table="alonso_lamata")
    assert ws.details["ri"] == 0.8815
    assert ws.details["cr"] == pytest.approx(ws.details["ci"] / 0.8815, rel=1e-12)


# A clearly intransitive 3 x 3: a > b (9), b > c (9), but c > a (9).
CYCLE = [9, "1/9", 9]


def test_inconsistent_matrix_is_refused_naming_the_worst_judgement():
    # a/b = 9 and b/c = 9 would need a/c = 81, but a/c = 1/9: CR far above 0.10.
    with pytest.raises(ConfigError) as err:
        ahp(CYCLE, ["a", "b", "c"])
    message = str(err.value)
    assert "CR = " in message and "> max_cr 0.1" in message and "accept_inconsistent" in message
    assert "\n" not in message
    ws = ahp(CYCLE, ["a", "b", "c"], accept_inconsistent=True)
    pair = ws.details["most_inconsistent"]["pair"]
    assert f"[{pair[0]}, {pair[1]}]" in message
    # independent check of "most inconsistent": the largest |ln(a_ij w_j / w_i)| over i < j
    a = np.asarray(ws.details["matrix"])
    w = np.asarray(list(ws.values()))
    dev = {(i, j): abs(math.log(a[i, j] * w[j] / w[i])) for i in range(3) for j in range(i + 1, 3)}
    i, j = max(dev, key=dev.get)
    assert pair == [["a", "b", "c"][i], ["a", "b", "c"][j]]
    assert ws.details["accepted_inconsistent"] is True and ws.details["consistent"] is False


def test_most_inconsistent_pair_is_the_perturbed_one():
    # consistent weights (4, 2, 1, 1) with a single judgement spoiled: b/d should be 2, is given as 1/5
    w = np.array([4.0, 2.0, 1.0, 1.0])
    a = w[:, None] / w[None, :]
    a[1, 3], a[3, 1] = 1 / 5, 5.0
    ws = ahp(a.tolist(), ["a", "b", "c", "d"], accept_inconsistent=True)
    assert ws.details["most_inconsistent"]["pair"] == ["b", "d"]


def test_record_is_json_ready():
    record = ahp(LEADER_UPPER, LEADER).as_record()
    again = json.loads(json.dumps(record))
    assert again["method"] == "ahp" and again["raw"]["judgements"] == [4, 3, 7, "1/3", 3, 5]
    assert set(again) >= {"lambda_max", "ci", "cr", "ri", "matrix", "most_inconsistent"}


@pytest.mark.parametrize(
    ("judgements", "names", "kwargs", "message"),
    [
        ([[1, 2], [0.5, 1], [1, 1]], ["a", "b"], {}, "AHP matrix must be 2 x 2"),
        ([[1, 2, 3], [0.5, 1, 1], [1 / 3, 1, 1]], ["a", "b"], {}, "AHP matrix must be 2 x 2"),
        ([2, 3], ["a", "b", "c"], {}, "needs n(n-1)/2 = 3 judgements"),
        ([[1, 3], [0.33, 1]], ["a", "b"], {}, "not reciprocal: [b, a] = 0.33 but 1 / [a, b] = 0.333333"),
        ([[1, -3], [-1 / 3, 1]], ["a", "b"], {}, "AHP judgement [a, b] must be a finite number > 0"),
        ([[2, 3], [1 / 3, 1]], ["a", "b"], {}, "diagonal [a, a] must be 1"),
        ([12], ["a", "b"], {}, "[a, b] = 12 is outside Saaty's scale 1/9 .. 9"),
        (["1/x"], ["a", "b"], {}, "must be a number or a fraction like '1/3', got '1/x'"),
        ([True], ["a", "b"], {}, "must be a number or a fraction"),
        ([3], ["a", "a"], {}, "names must be unique; 'a' appears more than once"),
        ([3], ["a", "b"], {"method": "eigen"}, "unknown method 'eigen' (did you mean 'eigenvector'?)"),
        ([3], ["a", "b"], {"ri_table": "alonso"}, "unknown ri_table 'alonso'"),
        ([3], ["a", "b"], {"max_cr": -1}, "max_cr must be a number >= 0"),
        ([1] * 120, [f"c{i}" for i in range(16)], {}, "covers 1..15 criteria, got 16"),
        ("1 3; 1/3 1", ["a", "b"], {}, "must be a matrix (list of rows) or an upper triangle list"),
    ],
)
def test_bad_judgements(judgements, names, kwargs, message):
    with pytest.raises(ConfigError) as err:
        ahp(judgements, names, **kwargs)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


# --- rank-order weights -------------------------------------------------------------------------------------------


def test_rank_weights_by_hand_for_four_criteria():
    ranks = {"slope": 1, "water": 2, "roads": 3, "towns": 4}
    # rank sum: (4, 3, 2, 1) / 10
    assert list(rank_weights(ranks, "rank_sum").values()) == pytest.approx([0.4, 0.3, 0.2, 0.1])
    # reciprocal: (1, 1/2, 1/3, 1/4) / (25/12) = (12, 6, 4, 3) / 25
    assert list(rank_weights(ranks, "rank_reciprocal").values()) == pytest.approx([0.48, 0.24, 0.16, 0.12])
    # ROC (Barron & Barrett 1996, n = 4): (25/48, 13/48, 7/48, 3/48) = 0.5208, 0.2708, 0.1458, 0.0625
    roc = rank_weights(ranks)
    assert roc.method == "rank_order_centroid"
    assert list(roc.values()) == pytest.approx([25 / 48, 13 / 48, 7 / 48, 3 / 48])


def test_rank_weights_ties_share_their_places():
    # ROC for n = 3 is (11/18, 5/18, 2/18); b and c tied at 2 share (5 + 2) / 2 / 18
    ws = rank_weights({"a": 1, "b": 2, "c": 2})
    assert dict(ws) == pytest.approx({"a": 11 / 18, "b": 3.5 / 18, "c": 3.5 / 18})
    assert sum(ws.values()) == pytest.approx(1.0)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 12), method=st.sampled_from(["rank_sum", "rank_reciprocal", "rank_order_centroid"]))
def test_rank_weights_sum_to_one_and_decrease(n, method):
    ws = rank_weights({f"c{i}": i + 1 for i in range(n)}, method)
    values = list(ws.values())
    assert math.fsum(values) == pytest.approx(1.0, abs=1e-12)
    assert all(a > b for a, b in zip(values, values[1:], strict=False))


@pytest.mark.parametrize(
    ("ranks", "method", "message"),
    [
        ({"a": 1, "b": 3}, "rank_sum", "rank of criterion 'b' must be an integer from 1 to 2, got 3"),
        ({"a": 1, "b": 1.5}, "rank_sum", "rank of criterion 'b' must be an integer"),
        ({"a": 2, "b": 2}, "rank_sum", "would occupy places 2..3 but there are only 2 criteria"),
        ({"a": 1, "b": 1, "c": 2}, "rank_sum", "rank 2 cannot be used; the next rank after the tie is 3"),
        ({}, "rank_sum", "ranks must be a non-empty mapping"),
        ({"a": 1}, "roc", "unknown rank weighting method 'roc'"),
    ],
)
def test_rank_weights_errors(ranks, method, message):
    with pytest.raises(ConfigError) as err:
        rank_weights(ranks, method)
    assert message in str(err.value)
