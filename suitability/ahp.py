"""Analytic Hierarchy Process (AHP) criterion weights from pairwise judgements (Saaty 1977, 1980).

A decision maker compares each pair of criteria on Saaty's 1-9 scale: ``a[i, j] = 3`` reads "criterion i is
moderately more important than j" (1 equal, 3 moderate, 5 strong, 7 very strong, 9 extreme, 2/4/6/8 between),
and ``a[j, i] = 1 / a[i, j]``. ``ahp`` turns the reciprocal matrix into weights that sum to 1 and measures how
consistent the judgements are:

* ``lambda_max``: the principal eigenvalue (for the eigenvector derivation) or Saaty's estimate
  ``mean_i((A w)_i / w_i)`` (for the two approximate derivations); it equals n for a perfectly consistent matrix;
* ``CI = (lambda_max - n) / (n - 1)``, the consistency index;
* ``CR = CI / RI[n]``, the consistency ratio, against the mean CI of random reciprocal matrices of order n.
  ``CR > max_cr`` (Saaty's 0.10) is refused unless ``accept_inconsistent=True``. For n <= 2 every reciprocal
  matrix is consistent and CR is 0.

Random index tables (``RANDOM_INDEX``) are indexed by the matrix order n: ``RANDOM_INDEX["saaty"][n]`` is the RI
of an n x n matrix. (GRASS GIS's ``r.mcda.ahp`` has been reported to read its RI list off by one, i.e. the value
of order n - 1; this module does not.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from rasters.errors import ConfigError, did_you_mean
from suitability.weights import WeightSet

__all__ = ["AHP_METHODS", "RANDOM_INDEX", "SAATY_SCALE_MAX", "ahp", "parse_judgements"]

SAATY_SCALE_MAX = 9.0  # Saaty's fundamental scale runs 1/9 .. 9; the RI tables are computed on that scale.

# Random consistency index RI[n] for n = 1..15, indexed by n (index 0 unused).
RANDOM_INDEX: dict[str, dict[int, float]] = {
    # Saaty, T.L. (1980) The Analytic Hierarchy Process, McGraw-Hill (random index from Oak Ridge / Wharton
    # simulations), reprinted for n = 1..15 in Saaty & Vargas (2012) Models, Methods, Concepts & Applications of
    # the AHP, 2nd ed., Springer, ch. 1. The dip at n = 12 (1.48) is as printed; some software "corrects" it.
    "saaty": {1: 0.0, 2: 0.0, 3: 0.58, 4: 0.90, 5: 1.12, 6: 1.24, 7: 1.32, 8: 1.41, 9: 1.45, 10: 1.49,
              11: 1.51, 12: 1.48, 13: 1.56, 14: 1.57, 15: 1.59},
    # Alonso, J.A. & Lamata, M.T. (2006) Consistency in the analytic hierarchy process: a new approach.
    # Int. J. Uncertainty, Fuzziness and Knowledge-Based Systems 14(4), 445-459: 100,000 random matrices per n.
    "alonso_lamata": {1: 0.0, 2: 0.0, 3: 0.5245, 4: 0.8815, 5: 1.1086, 6: 1.2479, 7: 1.3417, 8: 1.4056,
                      9: 1.4499, 10: 1.4854, 11: 1.5141, 12: 1.5365, 13: 1.5551, 14: 1.5713, 15: 1.5838},
}

AHP_METHODS = ("eigenvector", "geometric_mean", "column_mean")
_RECIPROCAL_RTOL = 1e-6


def _judgement(value: Any, where: str) -> float:
    """One judgement as a float: a number, or a string such as ``"3"``, ``"1/3"`` or ``"0.5"``."""
    if isinstance(value, bool):
        raise ConfigError(f"AHP judgement {where} must be a number or a fraction like '1/3', got {value!r}")
    if isinstance(value, str):
        try:
            return float(Fraction(value.strip()))
        except (ValueError, ZeroDivisionError):
            raise ConfigError(
                f"AHP judgement {where} must be a number or a fraction like '1/3', got {value!r}"
            ) from None
    if isinstance(value, int | float | np.integer | np.floating | Fraction):
        return float(value)
    raise ConfigError(f"AHP judgement {where} must be a number or a fraction like '1/3', got {value!r}")


def parse_judgements(judgements: Any, names: Sequence[str]) -> np.ndarray:
    """Build the full n x n judgement matrix (float64) from a full matrix or its strict upper triangle.

    ``judgements`` is either an n x n nested sequence / array, or a flat sequence of the n(n-1)/2 upper-triangle
    entries in row-major order (``a12, a13, ..., a1n, a23, ..., a(n-1)n``); the diagonal is then 1 and the lower
    triangle the reciprocals. Values may be numbers or fraction strings (``"1/3"``). Validation (each failure is
    a one-line ``ConfigError`` naming the cell): square and of the size of ``names``; finite and > 0; diagonal 1;
    reciprocal (``a_ji * a_ij = 1`` within 1e-6 relative); every value within Saaty's scale 1/9 .. 9 (refused
    outside it, because the random index tables are only defined on that scale).
    """
    names = [str(n) for n in names]
    n = len(names)
    if n == 0:
        raise ConfigError("AHP needs at least one criterion name")
    if len(set(names)) != n:
        dup = next(x for x in names if names.count(x) > 1)
        raise ConfigError(f"AHP criterion names must be unique; '{dup}' appears more than once")
    if isinstance(judgements, str | bytes) or not isinstance(judgements, Sequence | np.ndarray):
        raise ConfigError(f"AHP judgements must be a matrix (list of rows) or an upper triangle list, got "
                          f"{judgements!r}")
    rows = list(judgements)
    is_matrix = len(rows) > 0 and all(
        isinstance(r, Sequence | np.ndarray) and not isinstance(r, str | bytes) for r in rows
    )
    if is_matrix:
        if len(rows) != n or any(len(r) != n for r in rows):
            shape = f"{len(rows)} rows of lengths {sorted({len(r) for r in rows})}"
            raise ConfigError(f"AHP matrix must be {n} x {n} (one row and column per criterion: "
                              f"{', '.join(names)}), got {shape}")
        a = np.array([[_judgement(v, f"[{names[i]}, {names[j]}]") for j, v in enumerate(r)]
                      for i, r in enumerate(rows)], dtype=np.float64)
    else:
        expected = n * (n - 1) // 2
        if len(rows) != expected:
            raise ConfigError(f"AHP upper triangle for {n} criteria needs n(n-1)/2 = {expected} judgements "
                              f"(row-major: a12, a13, ..., a23, ...), got {len(rows)}")
        a = np.ones((n, n), dtype=np.float64)
        k = 0
        for i in range(n):
            for j in range(i + 1, n):
                value = _judgement(rows[k], f"[{names[i]}, {names[j]}] (upper triangle item {k})")
                a[i, j] = value
                a[j, i] = 1.0 / value if value > 0 else value
                k += 1
    for i in range(n):
        for j in range(n):
            v = a[i, j]
            if not math.isfinite(v) or v <= 0:
                raise ConfigError(f"AHP judgement [{names[i]}, {names[j]}] must be a finite number > 0, got {v:g}")
    for i in range(n):
        if abs(a[i, i] - 1.0) > _RECIPROCAL_RTOL:
            raise ConfigError(f"AHP matrix diagonal [{names[i]}, {names[i]}] must be 1, got {a[i, i]:g}")
    for i in range(n):
        for j in range(i + 1, n):
            if abs(a[i, j] * a[j, i] - 1.0) > _RECIPROCAL_RTOL:
                raise ConfigError(
                    f"AHP matrix is not reciprocal: [{names[j]}, {names[i]}] = {a[j, i]:.6g} but "
                    f"1 / [{names[i]}, {names[j]}] = {1.0 / a[i, j]:.6g} (write fractions exactly, e.g. '1/3')"
                )
    lo, hi = (1.0 / SAATY_SCALE_MAX) * (1 - _RECIPROCAL_RTOL), SAATY_SCALE_MAX * (1 + _RECIPROCAL_RTOL)
    for i in range(n):
        for j in range(n):
            if not lo <= a[i, j] <= hi:
                raise ConfigError(
                    f"AHP judgement [{names[i]}, {names[j]}] = {a[i, j]:.6g} is outside Saaty's scale 1/9 .. 9"
                )
    return a


def _priorities(a: np.ndarray, method: str) -> tuple[np.ndarray, float]:
    """Priority vector (sums to 1) and lambda_max of a positive reciprocal matrix."""
    if method == "eigenvector":
        # Saaty (1977): the principal (Perron) eigenvector. A positive matrix has a simple real eigenvalue of
        # largest modulus with a positive eigenvector, so the largest real part picks it.
        values, vectors = np.linalg.eig(a)
        k = int(np.argmax(values.real))
        w = np.abs(vectors[:, k].real)
        w = w / w.sum()
        return w, float(values[k].real)
    if method == "geometric_mean":
        # Row geometric means (Crawford & Williams 1985; the logarithmic least squares solution).
        w = np.exp(np.log(a).mean(axis=1))
    else:  # column_mean: normalise each column to sum 1, then average across each row (Saaty's approximation).
        w = (a / a.sum(axis=0)).mean(axis=1)
    w = w / w.sum()
    lam = float(np.mean((a @ w) / w))
    return w, lam


def ahp(
    judgements: Any,
    names: Sequence[str],
    *,
    method: str = "eigenvector",
    ri_table: str = "saaty",
    max_cr: float = 0.10,
    accept_inconsistent: bool = False,
) -> WeightSet:
    """AHP weights of the criteria ``names`` from pairwise judgements (full matrix or row-major upper triangle).

    ``method``: ``"eigenvector"`` (Saaty's principal eigenvector, the default), ``"geometric_mean"`` (normalised
    row geometric means) or ``"column_mean"`` (average of the column-normalised matrix). All three agree exactly
    on a consistent matrix. ``ri_table``: a key of ``RANDOM_INDEX`` (``"saaty"`` default, or
    ``"alonso_lamata"``), covering n <= 15. A consistency ratio above ``max_cr`` raises ``ConfigError`` naming
    the most inconsistent judgement (the pair (i, j) with the largest ``|ln(a_ij * w_j / w_i)|``, i.e. the
    judgement furthest from what the derived weights imply) unless ``accept_inconsistent`` is true.

    Returns a ``WeightSet`` whose ``details`` hold ``derivation``, ``lambda_max``, ``ci``, ``cr``, ``ri``,
    ``ri_table``, ``max_cr``, ``consistent`` (CR <= max_cr), ``most_inconsistent`` and the full ``matrix``.
    """
    if method not in AHP_METHODS:
        raise ConfigError(f"AHP: unknown method '{method}'{did_you_mean(str(method), AHP_METHODS)}")
    if ri_table not in RANDOM_INDEX:
        raise ConfigError(f"AHP: unknown ri_table '{ri_table}'{did_you_mean(str(ri_table), RANDOM_INDEX)}")
    if (isinstance(max_cr, bool) or not isinstance(max_cr, int | float | np.integer | np.floating)
            or not math.isfinite(max_cr) or max_cr < 0):
        raise ConfigError(f"AHP: max_cr must be a number >= 0 (Saaty's rule is 0.10), got {max_cr!r}")
    names = [str(x) for x in names] if isinstance(names, Sequence) and not isinstance(names, str) else names
    if not isinstance(names, list):
        raise ConfigError(f"AHP: names must be a list of criterion names, got {names!r}")
    a = parse_judgements(judgements, names)
    n = a.shape[0]
    table = RANDOM_INDEX[ri_table]
    if n not in table:
        raise ConfigError(f"AHP: random index table '{ri_table}' covers 1..{max(table)} criteria, got {n}")
    w, lam = _priorities(a, method)
    ri = table[n]
    ci = (lam - n) / (n - 1) if n > 1 else 0.0
    # n <= 2: every reciprocal matrix is consistent (RI = 0); rounding must not make CR nonzero or undefined.
    cr = ci / ri if n > 2 else 0.0
    ci = max(ci, 0.0) if n <= 2 else ci
    # The judgement furthest from the ratio the weights imply: e_ij = a_ij * w_j / w_i is 1 when consistent.
    dev = np.abs(np.log(a * w[None, :] / w[:, None]))
    i, j = np.unravel_index(int(np.argmax(np.triu(dev, k=1))), dev.shape) if n > 1 else (0, 0)
    worst = {"pair": [names[i], names[j]], "given": float(a[i, j]), "implied": float(w[i] / w[j]),
             "log_deviation": float(dev[i, j])}
    consistent = bool(cr <= max_cr)
    if not consistent and not accept_inconsistent:
        raise ConfigError(
            f"AHP judgements are too inconsistent: CR = {cr:.3f} > max_cr {max_cr:g} (RI '{ri_table}' = {ri:g} "
            f"for n = {n}); the most inconsistent judgement is [{names[i]}, {names[j]}] = {a[i, j]:.4g} while "
            f"the weights imply {w[i] / w[j]:.3g}: revise it, or set accept_inconsistent: true"
        )
    weights = {name: float(x) for name, x in zip(names, w, strict=True)}
    raw_judgements = judgements.tolist() if isinstance(judgements, np.ndarray) else [
        list(r) if isinstance(r, Sequence | np.ndarray) and not isinstance(r, str) else r for r in judgements
    ]
    details: dict[str, Any] = {
        "derivation": method, "lambda_max": lam, "ci": float(ci), "cr": float(cr), "ri": ri,
        "ri_table": ri_table, "max_cr": float(max_cr), "consistent": consistent,
        "accepted_inconsistent": bool(not consistent and accept_inconsistent),
        "most_inconsistent": worst, "matrix": a.tolist(),
    }
    return WeightSet(weights=weights, method="ahp", raw={"judgements": _plain(raw_judgements), "names": names},
                     details=details)


def _plain(value: Any) -> Any:
    """JSON-ready copy of the judgements as given (numbers stay numbers, fraction strings stay strings)."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value
