"""The constraint-rule language (every error path, results against numpy) and the exclusion helpers."""

from __future__ import annotations

import pickle

import dask.array as da
import numpy as np
import pytest

from rasters.errors import ConfigError
from suitability.constraints import apply_exclusions, exclusion_mask, rules_mask
from suitability.expressions import ALLOWED, parse

NAN = float("nan")


@pytest.fixture
def layers() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(42)
    shape = (23, 19)
    out = {
        "slope_deg": rng.uniform(0, 40, shape),
        "elevation_m": rng.uniform(2000, 6000, shape),
        "dist_river_m": rng.uniform(0, 2000, shape),
        "a": rng.normal(0, 2, shape),
        "b": rng.normal(0, 2, shape),
        "c": rng.normal(0, 4, shape),
        "x": rng.uniform(-1, 5, shape),
    }
    out = {k: v.astype(np.float32) for k, v in out.items()}
    for v in out.values():  # scattered no data, different per layer
        v[rng.random(shape) < 0.1] = np.nan
    out["x"][0, :4] = [0, 3, 3.0000002, -0.0]  # chain end points
    return out


def _known(*arrays):
    return ~np.any([np.isnan(a) for a in arrays], axis=0)


# Expected masks written directly with numpy: NaN comparisons are False for < <= > >= ==, and the rules below
# only need explicit "known" masks where 'not' or '!=' would otherwise turn a NaN into True.
GOOD = [
    ("slope_deg > 25 or elevation_m >= 5000", lambda L: (L["slope_deg"] > 25) | (L["elevation_m"] >= 5000)),
    ("not (dist_river_m < 500)", lambda L: (L["dist_river_m"] >= 500) & _known(L["dist_river_m"])),
    ("(a + b) * 2 > c", lambda L: (L["a"] + L["b"]) * np.float32(2) > L["c"]),
    ("0 < x <= 3", lambda L: (L["x"] > 0) & (L["x"] <= 3)),
    ("a - b / 2 <= -c", lambda L: L["a"] - L["b"] / np.float32(2) <= -L["c"]),
    ("a != b", lambda L: (L["a"] != L["b"]) & _known(L["a"], L["b"])),
    ("x == 3", lambda L: L["x"] == 3),
    ("slope_deg > 25 and not elevation_m < 3000",
     lambda L: (L["slope_deg"] > 25) & (L["elevation_m"] >= 3000)),
    ("a > 0 and b > 0 or c > 0", lambda L: ((L["a"] > 0) & (L["b"] > 0)) | (L["c"] > 0)),
    ("  slope_deg\n  > 25", lambda L: L["slope_deg"] > 25),
]


@pytest.mark.parametrize(("text", "reference"), GOOD, ids=[t for t, _ in GOOD])
def test_good_rules_match_numpy(layers, text, reference):
    with np.errstate(all="ignore"):
        expected = reference(layers)
    out = parse(text).evaluate(layers)
    assert out.dtype == np.bool_ and out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(("text", "_ref"), GOOD, ids=[t for t, _ in GOOD])
def test_dask_equals_numpy(layers, text, _ref):
    expr = parse(text)
    expected = expr.evaluate(layers)
    for chunks in [(23, 19), (8, 8), (1, 19)]:
        lazy = expr.evaluate({k: da.from_array(v, chunks=chunks) for k, v in layers.items()})
        assert isinstance(lazy, da.Array)
        np.testing.assert_array_equal(lazy.compute(), expected)
    mixed = {k: (da.from_array(v, chunks=(5, 7)) if i % 2 else v) for i, (k, v) in enumerate(layers.items())}
    result = expr.evaluate(mixed)  # dask if any layer it uses is dask
    np.testing.assert_array_equal(result.compute() if isinstance(result, da.Array) else result, expected)


def test_three_valued_logic_truth_table():
    # p = "a > 1", q = "b > 1"; a, b over {False (0), True (2), unknown (NaN)}. SQL/Kleene truth tables by hand,
    # with a final unknown counted as False (U -> F).
    a = np.array([0, 0, 0, 2, 2, 2, NAN, NAN, NAN], dtype=np.float32)
    b = np.array([0, 2, NAN, 0, 2, NAN, 0, 2, NAN], dtype=np.float32)
    env = {"a": a, "b": b}
    #                      FF     FT     FU     TF     TT     TU     UF     UT     UU
    and_ = np.array([False, False, False, False, True, False, False, False, False])  # TU -> U -> F
    or_ = np.array([False, True, False, True, True, True, False, True, False])  # FU -> U -> F; UT -> T
    not_and = np.array([True, True, True, True, False, False, True, False, False])  # not FU = not F = T
    not_or = np.array([True, False, False, False, False, False, False, False, False])  # not FU = not U = U -> F
    np.testing.assert_array_equal(parse("a > 1 and b > 1").evaluate(env), and_)
    np.testing.assert_array_equal(parse("a > 1 or b > 1").evaluate(env), or_)
    np.testing.assert_array_equal(parse("not (a > 1 and b > 1)").evaluate(env), not_and)
    np.testing.assert_array_equal(parse("not (a > 1 or b > 1)").evaluate(env), not_or)
    # a comparison with NaN is False either way round, so NaN is never flagged through 'not' either
    np.testing.assert_array_equal(parse("not a > 1").evaluate(env)[6:], [False] * 3)
    np.testing.assert_array_equal(parse("not not a > 1").evaluate(env)[6:], [False] * 3)


def test_division_by_zero_follows_ieee_quietly():
    env = {"a": np.array([1, -1, 0], dtype=np.float32), "b": np.zeros(3, dtype=np.float32)}
    # 1/0 = inf > 5 True; -1/0 = -inf; 0/0 = NaN -> unknown -> False (also under 'not')
    np.testing.assert_array_equal(parse("a / b > 5").evaluate(env), [True, False, False])
    np.testing.assert_array_equal(parse("not a / b > 5").evaluate(env), [False, True, False])


def test_thresholds_compare_in_float32():
    env = {"x": np.array([0.7, 0.1], dtype=np.float32)}
    np.testing.assert_array_equal(parse("x >= 0.7").evaluate(env), [True, False])
    np.testing.assert_array_equal(parse("x == 0.1").evaluate(env), [False, True])


def test_integer_layers_are_accepted():
    env = {"landuse": np.array([1, 2, 3, 4], dtype=np.uint8)}
    np.testing.assert_array_equal(parse("landuse == 3 or landuse < 2").evaluate(env), [True, False, True, False])


def test_names_and_pickling():
    expr = parse("not (dist_river_m < 500) and (a + b) * 2 > c or 0 < x <= 3")
    assert expr.names == frozenset({"dist_river_m", "a", "b", "c", "x"})
    clone = pickle.loads(pickle.dumps(expr))  # a dask.distributed worker receives it this way
    assert clone == expr


def test_check_names_suggests_close_names():
    expr = parse("slop_deg > 25 or elevation_m > 5000", where="constraints.exclude[0]")
    expr.check_names(["slop_deg", "elevation_m"])  # all known: no error
    with pytest.raises(ConfigError) as err:
        expr.check_names(["slope_deg", "elevation_m", "dist_river_m"])
    msg = str(err.value)
    assert msg.startswith("constraints.exclude[0] 'slop_deg > 25 or elevation_m > 5000': unknown layer 'slop_deg'")
    assert "(did you mean 'slope_deg'?)" in msg


def test_check_names_lists_all_unknown():
    with pytest.raises(ConfigError, match=r"unknown layer 'p' .* and 1 more \(q\)"):
        parse("p > 1 and q > 1").check_names(["zzzzzz"])


def test_evaluate_reports_missing_layer(layers):
    with pytest.raises(ConfigError, match=r"unknown layer 'slope' \(did you mean 'slope_deg'\?\)"):
        parse("slope > 25").evaluate(layers)


def test_evaluate_rejects_layers_of_different_shape():
    with pytest.raises(ConfigError, match="differ in shape"):
        parse("a > b").evaluate({"a": np.zeros((2, 2)), "b": np.zeros((3, 2))})


FORBIDDEN = [
    ("abs(x) > 1", "function calls not allowed (found 'abs(x)')"),
    ("__import__('os').system('true') > 0", "function calls not allowed"),
    ("x.real > 1", "attribute access ('.') not allowed (found 'x.real')"),
    ("x[0] > 1", "indexing ('[...]') not allowed (found 'x[0]')"),
    ("(lambda: x) > 1", "lambda not allowed"),
    ("x == 'forest'", "strings not allowed (found ''forest'')"),
    ("x ** 2 > 1", "'**' not allowed (found 'x ** 2')"),
    ("x % 2 == 0", "'%' not allowed"),
    ("x // 2 > 1", "'//' not allowed"),
    ("x > 1 & y", "'&' (use 'and') not allowed"),
    ("x > 1 | y", "'|' (use 'or') not allowed"),
    ("~(x > 1)", "'~' (use 'not') not allowed"),
    ("+x > 1", "unary '+' not allowed"),
    ("x is 1", "'is' (use '==') not allowed"),
    ("x in (1, 2)", "'in' not allowed"),
    ("[v for v in x] > 1", "comprehensions not allowed"),
    ("sum(v for v in x) > 1", "function calls not allowed"),
    ("{v for v in x} > 1", "comprehensions not allowed"),
    ("f'{x}' > 1", "f-strings not allowed"),
    ("__class__ > 1", "names starting with '__' not allowed (found '__class__')"),
    ("x > 1 if y > 0 else x < 0", "if-else expressions not allowed"),
    ("(x > 1, y > 1)", "tuples (a stray comma?) not allowed"),
    ("[x] > 1", "lists not allowed"),
    ("{'a': 1} > x", "dicts not allowed"),
    ("(y := 2) < x", "':=' assignments not allowed"),
    ("True or x > 1", "'True' not allowed"),
    ("x > None", "'None' not allowed"),
    ("x > 1j", "complex numbers not allowed"),
    ("x > ...", "'Ellipsis' not allowed"),
]


@pytest.mark.parametrize(("text", "message"), FORBIDDEN, ids=[t for t, _ in FORBIDDEN])
def test_forbidden_constructs(text, message):
    with pytest.raises(ConfigError) as err:
        parse(text, where="constraint")
    msg = str(err.value)
    assert message in msg
    assert msg.startswith(f"constraint {text!r}: ")
    assert msg.endswith(ALLOWED)
    assert "\n" not in msg


BAD = [
    ("x >", "invalid syntax at the end"),
    ("x = 1", "invalid syntax at column 3"),
    ("x > (1", "invalid syntax ('(' was never closed) at column 5"),
    ("x > 1; y > 2", "invalid syntax"),
    ("import os", "invalid syntax"),
    ("x > 1e999", "number '1e999' is not finite"),
    ("x > " + "9" * 400, "is not finite"),
    ("x + 1", "a rule must be a condition such as 'slope_deg > 25', but 'x + 1' is a number"),
    ("x", "a rule must be a condition"),
    ("x and y > 1", "'and' needs conditions such as 'slope_deg > 25', but 'x' is a number"),
    ("x > 1 or 2", "'or' needs conditions such as 'slope_deg > 25', but '2' is a number"),
    ("not x", "'not' needs conditions such as 'slope_deg > 25', but 'x' is a number"),
    ("(x > 1) + 1 > 0", "'x > 1' is a condition where a number is needed"),
    ("(x > 1) == (y > 1)", "'x > 1' is a condition where a number is needed"),
    ("-(x > 1) < 0", "is a condition where a number is needed"),
    ("1 < 2", "the rule uses no layer name"),
    ("", "empty rule"),
    ("   \n ", "empty rule"),
    ("(" * 300 + "x > 1" + ")" * 300, "nested"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[t[:30] for t, _ in BAD])
def test_bad_rules(text, message):
    with pytest.raises(ConfigError) as err:
        parse(text, where="rule")
    msg = str(err.value)
    assert message in msg
    assert msg.startswith("rule")
    assert "\n" not in msg


def test_non_text_and_overlong_rules():
    with pytest.raises(ConfigError, match="a rule must be text such as 'slope_deg > 25', got 5"):
        parse(5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="at most 10000 allowed"):
        parse("x > 1 or " * 2000 + "x > 1")


# --- constraints --------------------------------------------------------------------------------------------------


def test_exclusion_mask_is_or():
    m1 = np.array([[True, False], [False, False]])
    m2 = np.array([[False, False], [True, False]])
    m3 = np.array([[True, False], [False, False]])
    np.testing.assert_array_equal(exclusion_mask([m1, m2, m3]), [[True, False], [True, False]])
    np.testing.assert_array_equal(exclusion_mask([m2]), m2)


def test_apply_exclusions_by_hand():
    score = np.array([[0.1, 0.9], [NAN, 0.5]], dtype=np.float32)
    m1 = np.array([[True, False], [False, False]])
    m2 = np.array([[False, False], [True, False]])
    out = apply_exclusions(score, [m1, m2])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array([[NAN, 0.9], [NAN, 0.5]], dtype=np.float32))
    np.testing.assert_array_equal(apply_exclusions(score, []), score)
    np.testing.assert_array_equal(score, np.array([[0.1, 0.9], [NAN, 0.5]], dtype=np.float32))  # input untouched


def test_apply_exclusions_dask_equals_numpy(layers):
    score = np.nan_to_num(layers["x"] / 5, nan=0.3).astype(np.float32)
    masks = [layers["slope_deg"] > 25, layers["elevation_m"] > 5000]
    expected = apply_exclusions(score, masks)
    lazy = apply_exclusions(da.from_array(score, chunks=7), [da.from_array(masks[0], chunks=(5, 19)), masks[1]])
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(lazy.compute(), expected)
    # cells excluded are exactly the OR of the masks
    np.testing.assert_array_equal(np.isnan(expected), masks[0] | masks[1])


def test_rules_mask_matches_numpy(layers):
    out = rules_mask(["slope_deg > 25", "elevation_m >= 5000"], layers)
    np.testing.assert_array_equal(out, (layers["slope_deg"] > 25) | (layers["elevation_m"] >= 5000))


def test_rules_mask_checks_every_name_before_computing(layers):
    with pytest.raises(ConfigError, match=r"constraint\[1\] 'elev_m >= 5000': unknown layer 'elev_m'"):
        rules_mask(["slope_deg > 25", "elev_m >= 5000"], layers)
    with pytest.raises(ConfigError, match=r"constraint\[0\] 'slope_deg \*\* 2 > 25': '\*\*' not allowed"):
        rules_mask(["slope_deg ** 2 > 25"], layers)


@pytest.mark.parametrize(
    ("masks", "message"),
    [
        ([np.array([[0.0, 1.0], [0.0, 0.0]])], "exclusion mask 0 must be a boolean array (True = excluded), got dtype"),
        ([np.zeros((3, 2), bool)], "exclusion mask 0 has shape (3, 2), the score has shape (2, 2)"),
    ],
)
def test_apply_exclusions_errors(masks, message):
    with pytest.raises(ConfigError) as err:
        apply_exclusions(np.zeros((2, 2), np.float32), masks)
    assert message in str(err.value)


def test_exclusion_mask_errors():
    with pytest.raises(ConfigError, match="needs at least one mask"):
        exclusion_mask([])
    with pytest.raises(ConfigError, match="exclusion masks differ in shape"):
        exclusion_mask([np.zeros(2, bool), np.zeros(3, bool)])
