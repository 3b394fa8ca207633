"""Overlay: combine criterion score layers into one suitability score.

Every overlay has one calling convention, ``overlay(layers, weights, **params) -> float32 array``: ``layers`` is a
sequence of numpy or dask arrays of one shape (criterion scores, "more is better", normally on 0..1), ``weights``
one number per layer (or ``None`` for equal weights; the fuzzy operators, ``minimum`` and ``maximum`` ignore
weights), and the result is numpy for numpy input and a lazy dask array if any layer is dask. Every kernel works
cell by cell in float64 in a fixed order, so the result is bit-identical on numpy and on any chunking.

``OVERLAYS`` maps config names to functions; ``make_overlay(name, params)`` checks the parameters and returns a
callable ``f(layers, weights)``.

No data (NaN), parameter ``nodata``:

* ``"any"`` (default): a cell where any criterion is NaN is NaN; a missing criterion is never scored as 0.
* ``"renormalise"``: missing criteria are dropped from that cell and the weights of the remaining criteria are
  renormalised (so they keep the total weight); a cell with no valid criterion is NaN.

Methods: weighted linear combination (WLC) ``weighted_sum`` (Malczewski 1999, ch. 6; Eastman et al. 1995);
``weighted_product`` (weighted geometric mean); ``minimum``/``maximum`` and the fuzzy operators of Bonham-Carter
(1994, *Geographic Information Systems for Geoscientists*, ch. 9; ArcGIS Fuzzy Overlay): ``fuzzy_and``,
``fuzzy_or``, ``fuzzy_product``, ``fuzzy_sum``, ``fuzzy_gamma``; ordered weighted averaging ``owa`` (Yager 1988,
with criterion weights as Torra's 1997 WOWA); and ``topsis`` per cell (Hwang & Yoon 1981).
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import dask
import dask.array as da
import numpy as np

from rasters.errors import ConfigError, did_you_mean
from rasters.kernels import accumulate_weighted

__all__ = [
    "OVERLAYS", "NODATA_POLICIES", "fuzzy_and", "fuzzy_gamma", "fuzzy_or", "fuzzy_product", "fuzzy_sum",
    "make_overlay", "maximum", "minimum", "orness", "owa", "owa_order_weights", "topsis", "weighted_product",
    "weighted_sum",
]

NODATA_POLICIES = ("any", "renormalise")


# --- shared checks and block plumbing ---------------------------------------------------------------------------


def _check_nodata(name: str, nodata: Any) -> str:
    if nodata not in NODATA_POLICIES:
        raise ConfigError(f"{name}: nodata must be one of {', '.join(NODATA_POLICIES)}, got {nodata!r}"
                          f"{did_you_mean(str(nodata), NODATA_POLICIES)}")
    return nodata


def _check_layers(name: str, layers: Sequence[Any]) -> list[Any]:
    layers = list(layers)
    if not layers:
        raise ConfigError(f"{name} needs at least one layer")
    shapes = {tuple(np.shape(layer)) for layer in layers}
    if len(shapes) != 1:
        raise ConfigError(f"{name}: all layers must have one shape, got {sorted(shapes)}")
    return layers


def _check_weights(name: str, n: int, weights: Sequence[float] | None, *, nonnegative: bool) -> tuple[float, ...]:
    """One finite weight per layer (equal weights for None); nonnegative methods also need a positive total."""
    if weights is None:
        return tuple(1.0 / n for _ in range(n))
    if isinstance(weights, str | bytes) or not isinstance(weights, Sequence | np.ndarray):
        raise ConfigError(f"{name}: weights must be a list of numbers, got {weights!r}")
    weights = list(weights)
    if len(weights) != n:
        raise ConfigError(f"{name} got {n} layers but {len(weights)} weights; give one weight per layer")
    checked: list[float] = []
    for i, w in enumerate(weights):
        if isinstance(w, bool) or not isinstance(w, int | float | np.integer | np.floating) or not math.isfinite(w):
            raise ConfigError(f"{name}: weight {i} must be a finite number, got {w!r}")
        if nonnegative and w < 0:
            raise ConfigError(f"{name}: weight {i} is {float(w):g}; weights must be >= 0")
        checked.append(float(w))
    if nonnegative and math.fsum(checked) <= 0:
        raise ConfigError(f"{name}: all weights are zero; at least one layer needs a weight > 0")
    return tuple(checked)


def _normalised(weights: tuple[float, ...]) -> tuple[float, ...]:
    total = math.fsum(weights)
    return tuple(w / total for w in weights)


def _apply(kernel: Callable[..., np.ndarray], layers: list[Any], *extra: Any) -> Any:
    """Run ``kernel(*blocks, *extra_blocks)`` per block (dask) or once (numpy). ``extra`` are 1-D dask/numpy
    arrays of per-criterion statistics handed whole to every block."""
    if any(isinstance(layer, da.Array) for layer in layers) or any(isinstance(e, da.Array) for e in extra):
        first = next((layer for layer in layers if isinstance(layer, da.Array)), None)
        if first is None:
            first = da.from_array(np.asarray(layers[0]))
        # Every layer on the first dask layer's chunks, so blocks pair up cell for cell.
        arrays = [layer.rechunk(first.chunks) if isinstance(layer, da.Array)
                  else da.from_array(np.asarray(layer), chunks=first.chunks) for layer in layers]
        if not extra:
            return da.map_blocks(kernel, *arrays, dtype=np.float32)
        index = "abcdefghij"[:first.ndim]
        args: list[Any] = []
        for a in arrays:
            args += [a, index]
        for k, e in enumerate(extra):
            e = e if isinstance(e, da.Array) else da.from_array(np.asarray(e))
            args += [e.rechunk(-1), "zyxwvu"[k]]
        return da.blockwise(kernel, index, *args, dtype=np.float32, concatenate=True)
    return kernel(*(np.asarray(layer) for layer in layers), *(np.asarray(e) for e in extra))


def _stack(blocks: Sequence[np.ndarray]) -> np.ndarray:
    return np.stack([np.asarray(b, dtype=np.float64) for b in blocks])


# --- weighted linear combination ---------------------------------------------------------------------------------


def _weighted_sum_block(weights: tuple[float, ...], *blocks: np.ndarray) -> np.ndarray:
    # Accumulate in float64 in the given order: the same arithmetic per cell on numpy and on every dask block,
    # so results are bit-identical whatever the chunking. NaN * 0 is NaN, so a zero weight still propagates NaN.
    # rasters.kernels.accumulate_weighted: exactly numpy's multiply-then-add, in one pass.
    acc = np.zeros(np.broadcast_shapes(*(b.shape for b in blocks)), dtype=np.float64)
    for w, block in zip(weights, blocks, strict=True):
        accumulate_weighted(acc, np.asarray(block), w)
    return acc.astype(np.float32)


def _weighted_sum_renormalise(weights: tuple[float, ...], *blocks: np.ndarray) -> np.ndarray:
    total = math.fsum(weights)
    acc = np.zeros(np.broadcast_shapes(*(b.shape for b in blocks)), dtype=np.float64)
    wsum = np.zeros_like(acc)
    for w, block in zip(weights, blocks, strict=True):
        x = np.asarray(block, dtype=np.float64)
        ok = ~np.isnan(x)
        acc += np.where(ok, x * w, 0.0)
        wsum += np.where(ok, w, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(wsum != 0, acc / wsum * total, np.nan)
    return out.astype(np.float32)


def weighted_sum(layers: Sequence[Any], weights: Sequence[float] | None, *, nodata: str = "any") -> Any:
    """Weighted linear combination ``sum_i weights[i] * layers[i]`` as float32 (numpy in, numpy out; dask if any
    layer is dask).

    ``weights`` are used as given (normalise them first, e.g. with ``weights.direct``, to keep scores in [0, 1]);
    each must be finite; ``None`` means equal weights 1/n. ``layers`` and ``weights`` must have the same length
    (>= 1) and all layers one shape; otherwise ``ConfigError``. With ``nodata="any"`` any NaN criterion makes the
    cell NaN; with ``"renormalise"`` the cell is ``sum_valid w_i x_i / sum_valid w_i * sum_all w_i`` (NaN when
    the valid weights sum to 0).
    """
    _check_nodata("weighted_sum", nodata)
    layers = _check_layers("weighted_sum", layers)
    checked = _check_weights("weighted_sum", len(layers), weights, nonnegative=False)
    block = _weighted_sum_block if nodata == "any" else _weighted_sum_renormalise
    return _apply(partial(block, checked), layers)


# --- weighted product ----------------------------------------------------------------------------------------------


def _weighted_product_block(weights: tuple[float, ...], nodata: str, *blocks: np.ndarray) -> np.ndarray:
    x = _stack(blocks)
    ok = ~np.isnan(x)
    w = np.asarray(weights, dtype=np.float64).reshape((-1,) + (1,) * (x.ndim - 1))
    if nodata == "renormalise":
        wv = np.where(ok, w, 0.0)
        wsum = wv.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            expo = wv / wsum
        x = np.where(ok, x, 1.0)
    else:
        expo = np.broadcast_to(w, x.shape)
    out = np.ones(x.shape[1:], dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        for i in range(x.shape[0]):
            out *= np.power(x[i], expo[i])  # 0 ** 0 == 1: a zero-weight criterion cannot veto the cell
    if nodata == "renormalise":
        out[~ok.any(axis=0)] = np.nan
    return out.astype(np.float32)


def weighted_product(layers: Sequence[Any], weights: Sequence[float] | None, *, nodata: str = "any") -> Any:
    """Weighted product (weighted geometric mean) ``prod_i x_i ** (w_i / sum w)``, the multiplicative overlay
    of Malczewski (1999, §6.3; Triantaphyllou's WPM). Weights (>= 0, not all 0) are normalised, so scaling them
    does not change the result and it stays between the smallest and largest criterion score of the cell. A
    criterion scored 0 with a positive weight vetoes the cell (0). Scores must be >= 0 (a negative score gives
    NaN).
    """
    _check_nodata("weighted_product", nodata)
    layers = _check_layers("weighted_product", layers)
    w = _normalised(_check_weights("weighted_product", len(layers), weights, nonnegative=True))
    return _apply(partial(_weighted_product_block, w, nodata), layers)


# --- minimum, maximum and the fuzzy operators ---------------------------------------------------------------------


def _reduce_block(op: str, gamma: float, nodata: str, *blocks: np.ndarray) -> np.ndarray:
    x = _stack(blocks)
    ok = ~np.isnan(x)
    any_missing = ~ok.all(axis=0)
    if op == "min":
        out = np.min(np.where(ok, x, np.inf), axis=0)
    elif op == "max":
        out = np.max(np.where(ok, x, -np.inf), axis=0)
    else:
        product = np.ones(x.shape[1:], dtype=np.float64)
        complement = np.ones(x.shape[1:], dtype=np.float64)
        for i in range(x.shape[0]):  # fixed order: the same rounding on every chunking
            product *= np.where(ok[i], x[i], 1.0)
            complement *= np.where(ok[i], 1.0 - x[i], 1.0)
        fsum = 1.0 - complement
        if op == "product":
            out = product
        elif op == "sum":
            out = fsum
        else:  # gamma: Bonham-Carter (1994) eq. 9-8, (fuzzy algebraic sum)^gamma * (fuzzy algebraic product)^(1-gamma)
            out = np.power(fsum, gamma) * np.power(product, 1.0 - gamma)
    out = np.asarray(out, dtype=np.float64)
    out[~ok.any(axis=0)] = np.nan
    if nodata == "any":
        out[any_missing] = np.nan
    return out.astype(np.float32)


def _unweighted(name: str, op: str, layers: Sequence[Any], weights: Sequence[float] | None, nodata: str,
                gamma: float = 0.0) -> Any:
    _check_nodata(name, nodata)
    layers = _check_layers(name, layers)
    if weights is not None:
        _check_weights(name, len(layers), weights, nonnegative=False)  # ignored, but must still match the layers
    return _apply(partial(_reduce_block, op, gamma, nodata), layers)


def minimum(layers: Sequence[Any], weights: Sequence[float] | None = None, *, nodata: str = "any") -> Any:
    """Cell-wise minimum of the criterion scores (the most limiting factor; weights are ignored)."""
    return _unweighted("minimum", "min", layers, weights, nodata)


def maximum(layers: Sequence[Any], weights: Sequence[float] | None = None, *, nodata: str = "any") -> Any:
    """Cell-wise maximum of the criterion scores (weights are ignored)."""
    return _unweighted("maximum", "max", layers, weights, nodata)


def fuzzy_and(layers: Sequence[Any], weights: Sequence[float] | None = None, *, nodata: str = "any") -> Any:
    """Fuzzy AND: the minimum membership (Bonham-Carter 1994, eq. 9-4; weights are ignored)."""
    return _unweighted("fuzzy_and", "min", layers, weights, nodata)


def fuzzy_or(layers: Sequence[Any], weights: Sequence[float] | None = None, *, nodata: str = "any") -> Any:
    """Fuzzy OR: the maximum membership (Bonham-Carter 1994, eq. 9-5; weights are ignored)."""
    return _unweighted("fuzzy_or", "max", layers, weights, nodata)


def fuzzy_product(layers: Sequence[Any], weights: Sequence[float] | None = None, *, nodata: str = "any") -> Any:
    """Fuzzy algebraic product ``prod_i x_i`` (Bonham-Carter 1994, eq. 9-6): decreasive, never above the
    minimum for memberships in [0, 1]; weights are ignored."""
    return _unweighted("fuzzy_product", "product", layers, weights, nodata)


def fuzzy_sum(layers: Sequence[Any], weights: Sequence[float] | None = None, *, nodata: str = "any") -> Any:
    """Fuzzy algebraic sum ``1 - prod_i (1 - x_i)`` (Bonham-Carter 1994, eq. 9-7): increasive, never below the
    maximum for memberships in [0, 1]; weights are ignored."""
    return _unweighted("fuzzy_sum", "sum", layers, weights, nodata)


def _check_gamma(gamma: Any) -> float:
    if (isinstance(gamma, bool) or not isinstance(gamma, int | float | np.integer | np.floating)
            or not 0.0 <= float(gamma) <= 1.0):
        raise ConfigError(f"fuzzy_gamma: gamma must be a number from 0 to 1 (0 = product, 1 = sum), got {gamma!r}")
    return float(gamma)


def fuzzy_gamma(layers: Sequence[Any], weights: Sequence[float] | None = None, *, gamma: float,
                nodata: str = "any") -> Any:
    """Fuzzy GAMMA ``SUM ** gamma * PRODUCT ** (1 - gamma)`` (Bonham-Carter 1994, eq. 9-8; Zimmermann & Zysno
    1980) with SUM the fuzzy algebraic sum and PRODUCT the algebraic product; gamma in [0, 1]. gamma = 1 gives
    exactly the fuzzy sum, gamma = 0 exactly the product. Weights are ignored."""
    return _unweighted("fuzzy_gamma", "gamma", layers, weights, nodata, _check_gamma(gamma))


# --- ordered weighted averaging ------------------------------------------------------------------------------------


def orness(order_weights: Sequence[float]) -> float:
    """Yager's (1988) orness of OWA order weights v_1..v_n (v_1 applies to the largest value):
    ``sum_i (n - i) v_i / (n - 1)`` after normalising v to sum 1; 1 for max, 0 for min, 0.5 for the mean."""
    v = np.asarray(order_weights, dtype=np.float64)
    n = v.size
    if n == 1:
        return 0.5
    v = v / v.sum()
    return float(np.dot(np.arange(n - 1, -1, -1, dtype=np.float64), v) / (n - 1))


def owa_order_weights(n: int, level: float) -> np.ndarray:
    """The maximum-entropy OWA order weights of n criteria with orness ``level`` (O'Hagan 1988).

    Fullér & Majlender (2001) showed the solution is geometric, ``v_i proportional to q ** (i - 1)``; q is found
    by root-finding on ``orness(v) = level`` (orness decreases monotonically in q). Level 1 gives (1, 0, ..., 0)
    (the maximum), 0 gives (0, ..., 0, 1) (the minimum), 0.5 equal weights (the mean).
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ConfigError(f"owa: number of criteria must be an integer >= 1, got {n!r}")
    if (isinstance(level, bool) or not isinstance(level, int | float | np.integer | np.floating)
            or not 0.0 <= float(level) <= 1.0):
        raise ConfigError(f"owa: orness must be a number from 0 (minimum) to 1 (maximum), got {level!r}")
    level = float(level)
    if n == 1:
        return np.ones(1)
    if level == 1.0:
        return np.eye(n)[0]
    if level == 0.0:
        return np.eye(n)[-1]
    if level == 0.5:
        return np.full(n, 1.0 / n)
    from scipy.optimize import brentq

    i = np.arange(n, dtype=np.float64)

    def weights_of(t: float) -> np.ndarray:
        logw = i * t  # q = exp(t), in log space so extreme levels cannot overflow
        logw -= logw.max()
        w = np.exp(logw)
        return w / w.sum()

    def gap(t: float) -> float:
        return orness(weights_of(t)) - level

    bound = 1.0
    while gap(-bound) < 0 or gap(bound) > 0:
        bound *= 2.0
        if bound > 1e4:  # pragma: no cover - levels this close to 0 or 1 are numerically the extremes
            return np.eye(n)[0] if level > 0.5 else np.eye(n)[-1]
    t = brentq(gap, -bound, bound, xtol=1e-14, rtol=1e-14, maxiter=500)
    return weights_of(t)


def _owa_block(u: tuple[float, ...], v: tuple[float, ...], nodata: str, *blocks: np.ndarray) -> np.ndarray:
    x = _stack(blocks)
    n = x.shape[0]
    ok = ~np.isnan(x)
    k = ok.sum(axis=0)
    # Descending per cell, missing values last; stable, so ties keep the criteria's order (deterministic).
    order = np.argsort(np.where(ok, -x, np.inf), axis=0, kind="stable")
    xs = np.take_along_axis(np.where(ok, x, 0.0), order, axis=0)
    uw = np.broadcast_to(np.asarray(u, dtype=np.float64).reshape((n,) + (1,) * (x.ndim - 1)), x.shape)
    ps = np.take_along_axis(np.where(ok, uw, 0.0), order, axis=0)
    total = ps.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cum = np.clip(np.cumsum(ps, axis=0) / total, 0.0, 1.0)
    # Torra's quantifier w*: piecewise linear through (i/n, v_1 + ... + v_i)
    nodes = np.arange(n + 1) / n
    qv = np.concatenate([[0.0], np.cumsum(v)])
    q = np.interp(cum, nodes, qv)
    omega = np.diff(q, axis=0, prepend=0.0)
    out = (omega * xs).sum(axis=0)
    out[(k == 0) | ~(total > 0)] = np.nan
    if nodata == "any":
        out[k < n] = np.nan
    return out.astype(np.float32)


def _check_owa(n: int | None, order_weights: Any, level: Any) -> np.ndarray | None:
    if (order_weights is None) == (level is None):
        raise ConfigError("owa: give exactly one of order_weights (a list, largest value first) or orness (0..1)")
    if order_weights is None:
        return owa_order_weights(n, level) if n is not None else None
    if isinstance(order_weights, str | bytes) or not isinstance(order_weights, Sequence | np.ndarray):
        raise ConfigError(f"owa: order_weights must be a list of numbers, got {order_weights!r}")
    v = []
    for i, w in enumerate(order_weights):
        if isinstance(w, bool) or not isinstance(w, int | float | np.integer | np.floating) or not math.isfinite(w) \
                or w < 0:
            raise ConfigError(f"owa: order_weights[{i}] must be a finite number >= 0, got {w!r}")
        v.append(float(w))
    if math.fsum(v) <= 0:
        raise ConfigError("owa: order_weights are all zero; at least one must be > 0")
    if n is not None and len(v) != n:
        raise ConfigError(f"owa got {n} layers but {len(v)} order_weights; give one order weight per layer "
                          "(largest value first)")
    return np.asarray(v) / math.fsum(v)


def owa(layers: Sequence[Any], weights: Sequence[float] | None = None, *,
        order_weights: Sequence[float] | None = None, orness: float | None = None, nodata: str = "any") -> Any:
    """Ordered weighted averaging with criterion weights, per cell: Torra's (1997) weighted OWA (WOWA).

    In each cell the criterion scores are sorted from largest to smallest, z_(1) >= ... >= z_(n), carrying their
    criterion weights p_(j) (``weights`` normalised over the cell's valid criteria; ``None`` = equal). The result
    is ``sum_i omega_i z_(i)`` with ``omega_i = Q(p_(1) + ... + p_(i)) - Q(p_(1) + ... + p_(i-1))`` and Q the
    piecewise linear quantifier through the points ``(i/n, v_1 + ... + v_i)`` of the order weights v (Torra 1997,
    "The weighted OWA operator", Int. J. Intelligent Systems 12(2)). The order weights are given explicitly
    (``order_weights``, largest value first) or derived from an ``orness`` level as O'Hagan's maximum-entropy
    OWA (``owa_order_weights``).

    With equal criterion weights this is Yager's (1988) OWA: orness 1 is the maximum, 0 the minimum, 0.5 the
    mean; with equal order weights it is the weighted linear combination for any criterion weights. Unlike the
    ``u_j v_j / sum(u v)`` form (Malczewski 2006), WOWA is monotone in every criterion and stays between the
    cell's minimum and maximum. With unequal criterion weights the extremes are softened: orness 1 gives the
    largest score full weight only if its criterion weight is at least 1/n. With ``nodata="renormalise"`` the
    missing criteria are dropped and p renormalised, which the quantifier handles as it stands.
    """
    _check_nodata("owa", nodata)
    layers = _check_layers("owa", layers)
    u = _normalised(_check_weights("owa", len(layers), weights, nonnegative=True))
    v = _check_owa(len(layers), order_weights, orness)
    return _apply(partial(_owa_block, u, tuple(float(x) for x in v), nodata), layers)


# --- TOPSIS ----------------------------------------------------------------------------------------------------


def _expansion(block: np.ndarray) -> list[float]:
    """An exact expansion (floats whose exact sum is exactly sum(block**2) over finite cells).

    Squares of float32 values are exact in float64; ``math.fsum`` returns the correctly rounded exact sum, and
    repeating it on the residual peels off the next term until nothing is left. Adding the expansions of all
    blocks with one final ``fsum`` gives the correctly rounded total whatever the chunking."""
    x = np.asarray(block, dtype=np.float64)
    x = x[np.isfinite(x)]
    values = (x * x).tolist()
    terms: list[float] = []
    for _ in range(64):
        r = math.fsum(values + [-t for t in terms])
        if r == 0.0:
            break
        terms.append(r)
    return terms


def _fsum_expansions(parts: Sequence[list[float]]) -> np.ndarray:
    return np.array(math.fsum(t for p in parts for t in p), dtype=np.float64)


def _sum_of_squares(layer: Any) -> Any:
    if isinstance(layer, da.Array):
        parts = [dask.delayed(_expansion)(b) for b in layer.to_delayed(optimize_graph=False).ravel()]
        total = dask.delayed(_fsum_expansions)(parts)
        return da.from_delayed(total, shape=(), dtype=np.float64)
    return math.fsum(_expansion(np.asarray(layer)))


_IDEALS = ("unit", "data")
_TOPSIS_NORMALISATIONS = ("none", "vector")


def _topsis_block(w: tuple[float, ...], nodata: str, *args: np.ndarray) -> np.ndarray:
    *blocks, stats = args
    stats = np.asarray(stats, dtype=np.float64).reshape(3, -1)  # rows: ideal, anti-ideal, divisor
    x = _stack(blocks)
    n = x.shape[0]
    ok = ~np.isnan(x)
    d_plus = np.zeros(x.shape[1:])
    d_minus = np.zeros(x.shape[1:])
    for j in range(n):
        r = np.where(ok[j], x[j], 0.0) / stats[2, j]
        a = w[j] * (r - stats[0, j])
        b = w[j] * (r - stats[1, j])
        d_plus += np.where(ok[j], a * a, 0.0)
        d_minus += np.where(ok[j], b * b, 0.0)
    d_plus = np.sqrt(d_plus)
    d_minus = np.sqrt(d_minus)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(d_plus + d_minus > 0, d_minus / (d_plus + d_minus), np.nan)
    k = ok.sum(axis=0)
    out[k == 0] = np.nan
    if nodata == "any":
        out[k < n] = np.nan
    return out.astype(np.float32)


def topsis(layers: Sequence[Any], weights: Sequence[float] | None = None, *, ideal: str = "unit",
           normalise: str = "none", nodata: str = "any") -> Any:
    """TOPSIS relative closeness per cell (Hwang & Yoon 1981, *Multiple Attribute Decision Making*, §2.3.6).

    Each cell is an alternative. With r_j the (normalised) score of criterion j and w_j its weight, the distances
    to the ideal and anti-ideal points are ``d+ = sqrt(sum_j (w_j (r_j - r+_j))**2)`` and
    ``d- = sqrt(sum_j (w_j (r_j - r-_j))**2)``, and the result is the closeness ``d- / (d+ + d-)`` in [0, 1].
    All criteria are "more is better" (transformed scores). Scaling the weights does not change the result.

    * ``ideal="unit"`` (default): r+ = 1 and r- = 0, the ends of the 0..1 score scale. Each cell's result then
      depends on that cell only.
    * ``ideal="data"``: r+ and r- are each criterion's maximum and minimum over all its valid cells (the classic
      TOPSIS; a pass over the data before the overlay).
    * ``normalise="vector"`` (with ``ideal="data"``; Hwang & Yoon's normalisation): r_j = x_j / sqrt(sum x_j**2)
      over the criterion's valid cells; the sum is exact, so the result does not depend on the chunking.
      ``"none"``: r_j = x_j. To feed a raw "less is better" criterion in the classic way, negate it: the vector
      norm of -x is that of x, so ideal = max(-x) is the classic min(x) ideal.

    A cell whose d+ + d- is 0 (ideal equals anti-ideal on every criterion) is NaN.
    """
    _check_nodata("topsis", nodata)
    if ideal not in _IDEALS:
        raise ConfigError(f"topsis: ideal must be one of {', '.join(_IDEALS)}, got {ideal!r}"
                          f"{did_you_mean(str(ideal), _IDEALS)}")
    if normalise not in _TOPSIS_NORMALISATIONS:
        raise ConfigError(f"topsis: normalise must be one of {', '.join(_TOPSIS_NORMALISATIONS)}, got "
                          f"{normalise!r}{did_you_mean(str(normalise), _TOPSIS_NORMALISATIONS)}")
    if normalise == "vector" and ideal == "unit":
        raise ConfigError("topsis: normalise 'vector' needs ideal 'data' (the unit ideal 1 is on the 0..1 score "
                          "scale, not on the vector-normalised one)")
    layers = _check_layers("topsis", layers)
    w = _normalised(_check_weights("topsis", len(layers), weights, nonnegative=True))
    n = len(layers)
    lazy = any(isinstance(layer, da.Array) for layer in layers)
    if ideal == "unit":
        stats: Any = np.concatenate([np.ones(n), np.zeros(n), np.ones(n)])
    else:
        if lazy:
            as_dask = [layer if isinstance(layer, da.Array) else da.from_array(np.asarray(layer))
                       for layer in layers]
            hi = da.stack([da.nanmax(a).astype(np.float64) for a in as_dask])
            lo = da.stack([da.nanmin(a).astype(np.float64) for a in as_dask])
            div = (da.sqrt(da.stack([_sum_of_squares(a) for a in as_dask])) if normalise == "vector"
                   else da.ones(n, dtype=np.float64))
            stats = da.concatenate([hi / div, lo / div, div])
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN criterion: its ideal is NaN
                hi = np.array([np.nanmax(np.asarray(a)) for a in layers], dtype=np.float64)
                lo = np.array([np.nanmin(np.asarray(a)) for a in layers], dtype=np.float64)
            div = (np.sqrt(np.array([_sum_of_squares(a) for a in layers])) if normalise == "vector"
                   else np.ones(n))
            stats = np.concatenate([hi / div, lo / div, div])
    return _apply(partial(_topsis_block, w, nodata), layers, stats)


# --- registry ------------------------------------------------------------------------------------------------------

OVERLAYS: dict[str, Callable[..., Any]] = {
    "weighted_sum": weighted_sum,
    "weighted_product": weighted_product,
    "minimum": minimum,
    "maximum": maximum,
    "fuzzy_and": fuzzy_and,
    "fuzzy_or": fuzzy_or,
    "fuzzy_product": fuzzy_product,
    "fuzzy_sum": fuzzy_sum,
    "fuzzy_gamma": fuzzy_gamma,
    "owa": owa,
    "topsis": topsis,
}


def make_overlay(name: str, params: Mapping[str, Any] | None = None) -> Callable[[Sequence[Any], Any], Any]:
    """The overlay called ``name`` (a key of ``OVERLAYS``) with its parameters bound: ``f(layers, weights)``.

    Unknown names and parameters, missing required parameters and bad values that can be checked without the
    layers (nodata, gamma, orness, order weights, ideal, normalise) are reported now, as one-line ConfigErrors.
    """
    func = OVERLAYS.get(name)
    if func is None:
        raise ConfigError(f"unknown overlay '{name}'{did_you_mean(str(name), OVERLAYS)}")
    params = dict(params or {})
    sig = inspect.signature(func)
    options = {p.name: p for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    for key in params:
        if key not in options:
            valid = ", ".join(options) or "none"
            raise ConfigError(f"overlay '{name}': unknown parameter '{key}'{did_you_mean(str(key), options)}"
                              f" (parameters: {valid})")
    for key, p in options.items():
        if p.default is inspect.Parameter.empty and key not in params:
            raise ConfigError(f"overlay '{name}': missing parameter '{key}'")
    _check_nodata(name, params.get("nodata", "any"))
    if name == "fuzzy_gamma":
        _check_gamma(params["gamma"])
    if name == "owa":
        _check_owa(None, params.get("order_weights"), params.get("orness"))
        if params.get("orness") is not None:
            owa_order_weights(2, params["orness"])
    if name == "topsis":
        # validate the ideal / normalise combination on a one-cell dummy
        topsis([np.zeros(1)], None, **{k: v for k, v in params.items() if k != "nodata"})
    return partial(func, **params)
