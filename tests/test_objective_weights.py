"""Entropy and CRITIC weights against published and hand-worked values; the cell sampler; learned weights."""

from __future__ import annotations

import math

import dask.array as da
import numpy as np
import pytest

from rasters.errors import ConfigError
from suitability.learned_weights import learned
from suitability.objective_weights import critic, critic_weights, entropy, entropy_weights, sample_cells

# --- entropy ---------------------------------------------------------------------------------------------------


def test_entropy_xu_2004_example():
    # Xu, X. (2004) A note on the subjective and objective integrated approach to determine attribute weights.
    # EJOR 156(2), 530-532: 4 alternatives x 4 attributes; printed entropy weights .4630, .3992, .1378, .0000
    # (the classic p_ij = x_ij / sum_i x_ij normalisation).
    x = [[30, 30, 38, 29], [19, 54, 86, 29], [19, 15, 85, 28.9], [68, 70, 60, 29]]
    ws = entropy_weights(x, ["u1", "u2", "u3", "u4"], normalise="sum")
    assert list(ws.values()) == pytest.approx([0.4630, 0.3992, 0.1378, 0.0000], abs=5e-5)


def test_entropy_zavadskas_podvezko_2016_example():
    # Zavadskas, E.K. & Podvezko, V. (2016) Integrated determination of objective criteria weights in MCDM.
    # IJITDM 15(2), 267-283: printed entropy weights .1146, .1981, .4185, .2689 (raw values, sum normalisation).
    x = [[3.0, 100, 10, 7], [2.5, 80, 8, 5], [1.8, 50, 20, 11], [2.2, 70, 12, 9]]
    ws = entropy_weights(x, ["a", "b", "c", "d"], normalise="sum")
    assert list(ws.values()) == pytest.approx([0.1146, 0.1981, 0.4185, 0.2689], abs=5e-5)


def test_entropy_minmax_by_hand():
    # 3 cells. Column a = (0, 5, 10) -> x' = (0, .5, 1) -> p = (0, 1/3, 2/3);
    # e_a = -(1/3 ln 1/3 + 2/3 ln 2/3) / ln 3 = 0.579380; column b = (1, 2, 3) gives the same x' -> same e.
    # Column c = (7, 9, 7) cost -> x' = (1, 0, 1) -> p = (.5, 0, .5) -> e_c = ln 2 / ln 3 = 0.630930.
    x = [[0, 1, 7], [5, 2, 9], [10, 3, 7]]
    ws = entropy_weights(x, ["a", "b", "c"], cost=["c"])
    e_ab = -(1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3)) / math.log(3)
    e_c = math.log(2) / math.log(3)
    d = [1 - e_ab, 1 - e_ab, 1 - e_c]
    assert list(ws.values()) == pytest.approx([v / sum(d) for v in d], rel=1e-12)
    assert ws.details["entropy"]["c"] == pytest.approx(e_c, rel=1e-12)


def test_entropy_constant_criterion_gets_zero_and_all_constant_is_an_error():
    ws = entropy_weights([[1, 5], [2, 5], [4, 5]], ["a", "b"])
    assert ws["b"] == 0.0 and ws["a"] == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="no criterion varies over the 2 sampled cells"):
        entropy_weights([[1, 5], [1, 5]], ["a", "b"])


# --- CRITIC ----------------------------------------------------------------------------------------------------


def test_critic_by_hand():
    # Columns (benefit): a = (0, 1, 2) -> (0, .5, 1); b = (2, 0, 1) -> (1, 0, .5); c = (0, 0, 3) -> (0, 0, 1).
    # sample std (ddof 1): a, b: 0.5; c: sqrt(1/3). Correlations: r_ab = -0.5, r_ac = sqrt(3)/2, r_bc = 0.
    x = [[0, 2, 0], [1, 0, 0], [2, 1, 3]]
    s_ab, s_c = 0.5, math.sqrt(1 / 3)
    r_ab, r_ac, r_bc = -0.5, math.sqrt(3) / 2, 0.0
    c_a = s_ab * ((1 - r_ab) + (1 - r_ac))
    c_b = s_ab * ((1 - r_ab) + (1 - r_bc))
    c_c = s_c * ((1 - r_ac) + (1 - r_bc))
    total = c_a + c_b + c_c
    ws = critic_weights(x, ["a", "b", "c"])
    assert list(ws.values()) == pytest.approx([c_a / total, c_b / total, c_c / total], rel=1e-12)
    # a cost criterion is reversed before the same computation: b as cost is (0, 1, .5), i.e. a column of
    # (2 - b) as benefit
    flipped = critic_weights([[0, 0, 0], [1, 2, 0], [2, 1, 3]], ["a", "b", "c"])
    assert dict(critic_weights(x, ["a", "b", "c"], cost=["b"])) == pytest.approx(dict(flipped), rel=1e-12)


def test_critic_tus_adali_2019_example():
    # Tuş, A. & Aytaç Adalı, E. (2019) The new combination with CRITIC and WASPAS methods for the time and
    # attendance software selection problem. Opsearch 56(2), 528-538: printed CRITIC weights
    # .157, .249, .168, .121, .154, .151 (all criteria min-max normalised as benefit, as in that worked example).
    x = [[5000, 3, 3, 4, 3, 2], [680, 5, 3, 2, 2, 1], [2000, 3, 2, 3, 4, 3], [600, 4, 3, 1, 2, 2],
         [800, 2, 4, 3, 3, 4]]
    ws = critic_weights(x, [f"c{i}" for i in range(6)])
    assert list(ws.values()) == pytest.approx([0.157, 0.249, 0.168, 0.121, 0.154, 0.151], abs=5e-4)


def test_critic_constant_criterion_gets_zero():
    ws = critic_weights([[0, 2, 7], [1, 0, 7], [2, 1, 7]], ["a", "b", "k"])
    assert ws["k"] == 0.0
    assert ws["a"] == pytest.approx(0.5) and ws["b"] == pytest.approx(0.5)  # same std, symmetric conflict


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: entropy_weights([[1, 2]], ["a", "b"]), "needs at least 2 alternatives"),
        (lambda: entropy_weights([[1, 2], [2, 3]], ["a"]), "one column per criterion (1)"),
        (lambda: entropy_weights([[1, np.nan], [2, 3]], ["a", "b"]), "must be finite"),
        (lambda: entropy_weights([[1, 2], [2, 3]], ["a", "b"], cost=["x"]), "cost criterion 'x' is not one"),
        (lambda: entropy_weights([[1, 2], [2, 3]], ["a", "b"], normalise="sum", cost=["a"]),
         "cost criteria need normalise 'minmax'"),
        (lambda: entropy_weights([[-1, 2], [2, 3]], ["a", "b"], normalise="sum"), "needs values >= 0"),
        (lambda: entropy_weights([[1, 2], [2, 3]], ["a", "b"], normalise="min-max"), "did you mean 'minmax'"),
        (lambda: critic_weights([[1, 2], [1, 2]], ["a", "b"]), "CRITIC: no criterion varies"),
    ],
)
def test_objective_weight_errors(call, message):
    with pytest.raises(ConfigError) as err:
        call()
    assert message in str(err.value)


# --- sampling ------------------------------------------------------------------------------------------------------


def _layers(seed=0, shape=(60, 45)):
    rng = np.random.default_rng(seed)
    a, b, c = (rng.random(shape).astype(np.float32) for _ in range(3))
    a[::4, ::3] = np.nan
    b[10:20, 5:9] = np.nan
    return {"a": a, "b": b, "c": c}


def test_sample_cells_is_valid_seeded_and_chunk_invariant():
    layers = _layers()
    s = sample_cells(layers, 300, seed=5)
    assert s.shape == (300, 3) and np.isfinite(s).all()
    # every sampled row is a real cell of the layers (rows are in row-major cell order)
    stack = np.stack(list(layers.values()), axis=-1).reshape(-1, 3)
    valid = stack[np.isfinite(stack).all(axis=1)]
    assert all((valid == row).all(axis=1).any() for row in s)
    assert len({tuple(r) for r in s}) == 300  # without replacement
    for chunks in [(60, 45), (7, 11), (16, 45), (1, 45)]:
        lazy = {k: da.from_array(v, chunks=chunks) for k, v in layers.items()}
        np.testing.assert_array_equal(sample_cells(lazy, 300, seed=5), s)
    assert not np.array_equal(sample_cells(layers, 300, seed=6), s)


def test_sample_cells_returns_all_valid_cells_when_n_is_large():
    layers = _layers()
    stack = np.stack(list(layers.values()), axis=-1).reshape(-1, 3)
    valid = stack[np.isfinite(stack).all(axis=1)]  # row-major order
    np.testing.assert_array_equal(sample_cells(layers, 10**6, seed=1), valid.astype(np.float64))


def test_sample_cells_is_roughly_uniform():
    # a layer whose value is its row index: the sample mean row should be near the grid's mean row
    rows = np.repeat(np.arange(200, dtype=np.float32)[:, None], 200, axis=1)
    s = sample_cells({"row": rows}, 4000, seed=3)
    assert abs(s.mean() - 99.5) < 3 * 57.7 / math.sqrt(4000) * 1.5  # ~4.5 standard errors, generous


def test_entropy_and_critic_on_layers_use_the_sample():
    layers = _layers(2)
    ws = entropy(layers, n_samples=500, seed=9)
    ref = entropy_weights(sample_cells(layers, 500, 9), ["a", "b", "c"])
    assert dict(ws) == dict(ref) and ws.raw["seed"] == 9
    assert dict(critic(layers, n_samples=500, seed=9)) == dict(critic_weights(sample_cells(layers, 500, 9),
                                                                             ["a", "b", "c"]))


# --- learned weights ---------------------------------------------------------------------------------------------


def _presence_world(seed=4, shape=(90, 90)):
    rng = np.random.default_rng(seed)
    layers = {k: rng.random(shape).astype(np.float32) for k in ("slope", "water", "roads")}
    # presence depends on 'water' only: likely where water > 0.75, rare elsewhere
    presence = rng.random(shape) < np.where(layers["water"] > 0.75, 0.5, 0.01)
    layers["roads"][:5] = np.nan
    return layers, presence


@pytest.mark.parametrize("method", ["logistic", "random_forest"])
def test_learned_weights_find_the_criterion_that_matters(method):
    layers, presence = _presence_world()
    ws = learned(layers, presence, method=method, n_background=1500, seed=1, n_estimators=40)
    assert max(ws, key=ws.get) == "water" and ws["water"] > 0.6
    assert ws.details["auc"] > 0.8 and len(ws.details["auc_folds"]) == 5
    assert sum(ws.values()) == pytest.approx(1.0)
    again = learned(layers, presence, method=method, n_background=1500, seed=1, n_estimators=40)
    assert dict(again) == dict(ws) and again.details["auc"] == ws.details["auc"]


def test_learned_logistic_reports_a_contradicting_direction():
    layers, presence = _presence_world()
    layers["water"] = 1.0 - layers["water"]  # now presence falls as this score rises
    ws = learned(layers, presence, n_background=1500, seed=1)
    assert ws.details["negative"] == ["water"] and ws.details["coefficients"]["water"] < 0


def test_learned_dask_equals_numpy():
    layers, presence = _presence_world()
    ws = learned(layers, presence, n_background=800, seed=2)
    lazy = {k: da.from_array(v, chunks=(20, 33)) for k, v in layers.items()}
    assert dict(learned(lazy, da.from_array(presence, chunks=17), n_background=800, seed=2)) == dict(ws)


def test_learned_errors():
    layers, presence = _presence_world()
    with pytest.raises(ConfigError, match="no cell where every criterion has data; cannot learn"):
        learned(layers, np.zeros_like(presence))
    only_nodata = np.zeros_like(presence)
    only_nodata[:5] = True  # presence only where 'roads' is NaN
    with pytest.raises(ConfigError, match="cannot learn weights without presence cells"):
        learned(layers, only_nodata)
    with pytest.raises(ConfigError, match="presence_mask must be a boolean array"):
        learned(layers, presence.astype(np.uint8))
    with pytest.raises(ConfigError, match="unknown method 'forest'"):
        learned(layers, presence, method="forest")
    one = np.zeros_like(presence)
    one[50, 50] = True
    with pytest.raises(ConfigError, match="at least 2 presence and 2 background cells"):
        learned(layers, one)
