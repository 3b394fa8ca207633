"""A small, safe expression language for constraint rules on layers, e.g. ``slope_deg > 25 or elevation_m >= 5000``.

Grammar (a strict subset of Python's expression syntax, parsed with ``ast`` and never evaluated by Python)::

    rule       := condition
    condition  := condition 'or' condition | condition 'and' condition | 'not' condition
                | number_expr (cmp number_expr)+ | '(' condition ')'          # chains: 0 < x <= 3
    number_expr:= number_expr ('+' | '-' | '*' | '/') number_expr | '-' number_expr
                | NUMBER | NAME | '(' number_expr ')'
    cmp        := '<' | '<=' | '>' | '>=' | '==' | '!='

Names are layer names (not starting with ``__``); numbers are finite int or float literals. Anything else (calls,
attributes, indexing, strings, ``**``, ``%``, ``&``/``|``, lambdas, comprehensions, f-strings, ``if``-``else``...)
is a ``ConfigError`` saying what is allowed. The rule is also type-checked: ``and``/``or``/``not`` take conditions,
comparisons and arithmetic take numbers, and the whole rule must be a condition.

Evaluation is per cell, in float32 (the layers' own precision, so a threshold written with the same decimals as a
raster value compares equal to it), with division by zero giving inf/NaN silently.

**No data.** A comparison in which either side is NaN is *unknown*, and unknowns combine by SQL's three-valued
(Kleene) logic: ``unknown and False = False``, ``unknown or True = True``, ``not unknown = unknown``; a rule that
is still unknown at the end is False. So a comparison with NaN is False, and a NaN cell is never flagged by a rule
just because its value is missing (not even through ``not``): NaN cells are no data anyway.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import dask.array as da
import numpy as np

from rasters.errors import ConfigError, did_you_mean

__all__ = ["ALLOWED", "Expression", "parse"]

ALLOWED = (
    "a rule may use only numbers, layer names, + - * /, unary -, comparisons (< <= > >= == !=), "
    "and, or, not, and parentheses"
)
MAX_LENGTH = 10_000

_ARITH: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
}
_CMP: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le),
    ast.Gt: (">", operator.gt),
    ast.GtE: (">=", operator.ge),
    ast.Eq: ("==", operator.eq),
    ast.NotEq: ("!=", operator.ne),
}
_ARITH_BY_SYMBOL = {sym: fn for sym, fn in _ARITH.values()}
_CMP_BY_SYMBOL = {sym: fn for sym, fn in _CMP.values()}

# What to call the constructs we refuse, so the message says what was found, not just "invalid".
_FORBIDDEN: dict[type, str] = {
    ast.Call: "function calls",
    ast.Attribute: "attribute access ('.')",
    ast.Subscript: "indexing ('[...]')",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.JoinedStr: "f-strings",
    ast.FormattedValue: "f-strings",
    ast.IfExp: "if-else expressions",
    ast.List: "lists",
    ast.Tuple: "tuples (a stray comma?)",
    ast.Set: "sets",
    ast.Dict: "dicts",
    ast.NamedExpr: "':=' assignments",
    ast.Starred: "'*' unpacking",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slices",
}
_FORBIDDEN_OPS: dict[type, str] = {
    ast.Pow: "'**'",
    ast.Mod: "'%'",
    ast.FloorDiv: "'//'",
    ast.MatMult: "'@'",
    ast.BitAnd: "'&' (use 'and')",
    ast.BitOr: "'|' (use 'or')",
    ast.BitXor: "'^'",
    ast.LShift: "'<<'",
    ast.RShift: "'>>'",
    ast.Invert: "'~' (use 'not')",
    ast.UAdd: "unary '+'",
    ast.Is: "'is' (use '==')",
    ast.IsNot: "'is not' (use '!=')",
    ast.In: "'in'",
    ast.NotIn: "'not in'",
}


# ---------------------------------------------------------------------------------------------------------------
# The expression tree. Number nodes evaluate to float32 arrays (or scalars). A condition node evaluates, on
# request, to the mask where it is known True or the mask where it is known False; cells in neither are unknown.
# Evaluating "known False" of a negated subtree (De Morgan) gives Kleene logic at the cost of plain numpy
# comparisons, with no separate "known" masks to carry.


class Node:
    """A node of a parsed rule; ``is_condition`` says whether it yields a condition or a number."""

    is_condition: ClassVar[bool]

    def names(self) -> frozenset[str]:
        raise NotImplementedError

    def number(self, env: Mapping[str, np.ndarray]) -> Any:
        raise NotImplementedError

    def truth(self, env: Mapping[str, np.ndarray], holds: bool) -> Any:
        """Bool mask of cells where this condition is known to be True (``holds``) or known to be False."""
        raise NotImplementedError


@dataclass(frozen=True)
class Number(Node):
    value: float
    is_condition: ClassVar[bool] = False

    def names(self) -> frozenset[str]:
        return frozenset()

    def number(self, env: Mapping[str, np.ndarray]) -> Any:
        return np.float32(self.value)


@dataclass(frozen=True)
class Name(Node):
    id: str
    is_condition: ClassVar[bool] = False

    def names(self) -> frozenset[str]:
        return frozenset({self.id})

    def number(self, env: Mapping[str, np.ndarray]) -> Any:
        return env[self.id]


@dataclass(frozen=True)
class Negate(Node):
    operand: Node
    is_condition: ClassVar[bool] = False

    def names(self) -> frozenset[str]:
        return self.operand.names()

    def number(self, env: Mapping[str, np.ndarray]) -> Any:
        return -self.operand.number(env)


@dataclass(frozen=True)
class Arith(Node):
    op: str  # one of + - * /
    left: Node
    right: Node
    is_condition: ClassVar[bool] = False

    def names(self) -> frozenset[str]:
        return self.left.names() | self.right.names()

    def number(self, env: Mapping[str, np.ndarray]) -> Any:
        return _ARITH_BY_SYMBOL[self.op](self.left.number(env), self.right.number(env))


@dataclass(frozen=True)
class Compare(Node):
    """``operands[0] ops[0] operands[1] ops[1] operands[2] ...``: a chain, true when every link is true."""

    ops: tuple[str, ...]
    operands: tuple[Node, ...]
    is_condition: ClassVar[bool] = True

    def names(self) -> frozenset[str]:
        return frozenset().union(*(o.names() for o in self.operands))

    def truth(self, env: Mapping[str, np.ndarray], holds: bool) -> Any:
        values = [o.number(env) for o in self.operands]
        links = [_compare(op if holds else _COMPLEMENT[op], a, b)
                 for op, a, b in zip(self.ops, values, values[1:], strict=False)]
        # The chain holds when every link holds; it fails when any link fails.
        return _reduce(np.logical_and if holds else np.logical_or, links)


@dataclass(frozen=True)
class BoolOp(Node):
    op: str  # 'and' | 'or'
    operands: tuple[Node, ...]
    is_condition: ClassVar[bool] = True

    def names(self) -> frozenset[str]:
        return frozenset().union(*(o.names() for o in self.operands))

    def truth(self, env: Mapping[str, np.ndarray], holds: bool) -> Any:
        # Kleene: (p and q) is known True iff both are; known False iff either is (De Morgan for 'or').
        conjunctive = (self.op == "and") == holds
        return _reduce(np.logical_and if conjunctive else np.logical_or,
                       [o.truth(env, holds) for o in self.operands])


@dataclass(frozen=True)
class Not(Node):
    operand: Node
    is_condition: ClassVar[bool] = True

    def names(self) -> frozenset[str]:
        return self.operand.names()

    def truth(self, env: Mapping[str, np.ndarray], holds: bool) -> Any:
        # not p is known True where p is known False, and the reverse; unknown stays unknown.
        return self.operand.truth(env, not holds)


_COMPLEMENT = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}


def _compare(op: str, a: Any, b: Any) -> Any:
    """Cells where ``a op b`` is known to be True: IEEE already makes < <= > >= == False on NaN; only != is True
    on NaN, so it alone needs the explicit "both known" mask."""
    result = _CMP_BY_SYMBOL[op](a, b)
    if op == "!=":
        result = result & ~(np.isnan(a) | np.isnan(b))
    return result


def _reduce(combine: Callable[[Any, Any], Any], masks: list[Any]) -> Any:
    result = masks[0]
    for mask in masks[1:]:
        result = combine(result, mask)
    return result


# ---------------------------------------------------------------------------------------------------------------
# From Python's ast to our tree, refusing everything outside the grammar.


def _quote(text: str, limit: int = 200) -> str:
    # Keep a one-line message readable even for a pathological rule.
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


class _Converter:
    def __init__(self, text: str, where: str) -> None:
        self.text = text
        self.where = where

    def fail(self, message: str) -> ConfigError:
        return ConfigError(f"{self.where} {_quote(self.text)}: {message}")

    def show(self, node: ast.AST) -> str:
        segment = ast.get_source_segment(self.text, node)
        return segment if segment is not None else ast.unparse(node)

    def forbidden(self, what: str, node: ast.AST) -> ConfigError:
        return self.fail(f"{what} not allowed (found '{self.show(node)}'); {ALLOWED}")

    def number(self, node: ast.AST) -> Node:
        result = self.convert(node)
        if result.is_condition:
            raise self.fail(f"'{self.show(node)}' is a condition where a number is needed (arithmetic and "
                            f"comparisons take numbers and layer names)")
        return result

    def condition(self, node: ast.AST, keyword: str) -> Node:
        result = self.convert(node)
        if not result.is_condition:
            raise self.fail(f"'{keyword}' needs conditions such as 'slope_deg > 25', but '{self.show(node)}' is a "
                            f"number")
        return result

    def convert(self, node: ast.AST) -> Node:
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            if node.id.startswith("__"):
                raise self.forbidden("names starting with '__'", node)
            return Name(node.id)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return Negate(self.number(node.operand))
            if isinstance(node.op, ast.Not):
                return Not(self.condition(node.operand, "not"))
            raise self.forbidden(_FORBIDDEN_OPS.get(type(node.op), type(node.op).__name__), node)
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _ARITH:
                raise self.forbidden(_FORBIDDEN_OPS.get(type(node.op), type(node.op).__name__), node)
            return Arith(_ARITH[type(node.op)][0], self.number(node.left), self.number(node.right))
        if isinstance(node, ast.Compare):
            for op in node.ops:
                if type(op) not in _CMP:
                    raise self.forbidden(_FORBIDDEN_OPS.get(type(op), type(op).__name__), node)
            operands = tuple(self.number(n) for n in (node.left, *node.comparators))
            return Compare(tuple(_CMP[type(op)][0] for op in node.ops), operands)
        if isinstance(node, ast.BoolOp):
            keyword = "and" if isinstance(node.op, ast.And) else "or"
            return BoolOp(keyword, tuple(self.condition(v, keyword) for v in node.values))
        raise self.forbidden(_FORBIDDEN.get(type(node), f"'{type(node).__name__}' syntax"), node)

    def constant(self, node: ast.Constant) -> Node:
        value = node.value
        if isinstance(value, bool) or value is None or value is Ellipsis:
            raise self.forbidden(f"'{value!r}'", node)
        if isinstance(value, str | bytes):
            raise self.forbidden("strings", node)
        if isinstance(value, complex):
            raise self.forbidden("complex numbers", node)
        if not isinstance(value, int | float):
            raise self.forbidden(f"'{type(value).__name__}' constants", node)
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise self.fail(f"number '{self.show(node)}' is not finite; {ALLOWED}")
        return Number(number)


# ---------------------------------------------------------------------------------------------------------------


def _evaluate_block(root: Node, names: tuple[str, ...], *blocks: np.ndarray) -> np.ndarray:
    env = {name: block.astype(np.float32, copy=False) for name, block in zip(names, blocks, strict=True)}
    shape = np.broadcast_shapes(*(b.shape for b in blocks))
    with np.errstate(all="ignore"):  # x / 0 is inf or NaN by IEEE rules; NaN is then "unknown"
        value = root.truth(env, True)  # known True; unknown counts as False
    return np.array(np.broadcast_to(value, shape), dtype=bool)


@dataclass(frozen=True)
class Expression:
    """A parsed rule: ``text`` as written, its tree ``root``, and the layer ``names`` it uses."""

    text: str
    root: Node
    names: frozenset[str]
    where: str = "expression"

    def check_names(self, valid: Iterable[str]) -> None:
        """Raise ``ConfigError`` naming the first unknown layer (with a did-you-mean) if any name is not valid."""
        valid = set(valid)
        unknown = sorted(self.names - valid)
        if unknown:
            more = f" and {len(unknown) - 1} more ({', '.join(unknown[1:])})" if len(unknown) > 1 else ""
            raise ConfigError(
                f"{self.where} {_quote(self.text)}: unknown layer '{unknown[0]}'{did_you_mean(unknown[0], valid)}{more}"
            )

    def evaluate(self, layers: Mapping[str, Any]) -> Any:
        """Evaluate the rule per cell: a bool array (numpy, or dask if any used layer is dask) of the layers' shape.

        ``layers`` maps names to numpy or dask arrays of one shape (extra names are ignored). NaN follows the
        three-valued logic described in the module docstring: a cell is True only if the rule is known to hold.
        """
        self.check_names(layers)
        names = tuple(sorted(self.names))
        arrays = [layers[name] for name in names]
        shapes = {tuple(np.shape(a)) for a in arrays}
        if len(shapes) != 1:
            raise ConfigError(
                f"{self.where} {_quote(self.text)}: layers {', '.join(names)} differ in shape {sorted(shapes)}"
            )
        kernel = partial(_evaluate_block, self.root, names)
        if any(isinstance(a, da.Array) for a in arrays):
            first = next(a for a in arrays if isinstance(a, da.Array))
            # Every layer on the first dask layer's chunks, so blocks pair up cell for cell.
            arrays = [a.rechunk(first.chunks) if isinstance(a, da.Array)
                      else da.from_array(np.asarray(a), chunks=first.chunks) for a in arrays]
            return da.map_blocks(kernel, *arrays, dtype=bool)
        return kernel(*(np.asarray(a) for a in arrays))


def parse(text: str, *, where: str = "expression") -> Expression:
    """Parse a rule such as ``not (dist_river_m < 500) and 0 < slope_deg <= 3`` into an ``Expression``.

    ``where`` prefixes every error message (e.g. ``"constraints.exclude[2]"``), so the user knows which rule
    failed. Raises ``ConfigError`` with one line for a syntax error, a construct outside the grammar, a type
    mismatch (a number where a condition is needed or the reverse), or a rule that uses no layer.
    """
    if not isinstance(text, str):
        raise ConfigError(f"{where}: a rule must be text such as 'slope_deg > 25', got {text!r}")
    if not text.strip():
        raise ConfigError(f"{where}: empty rule; write a condition such as 'slope_deg > 25'")
    if len(text) > MAX_LENGTH:
        raise ConfigError(f"{where}: rule is {len(text)} characters long, at most {MAX_LENGTH} allowed")
    # Leading spaces are legal in a YAML value but an "unexpected indent" to Python; line breaks become spaces.
    source = " ".join(text.splitlines()).strip()
    converter = _Converter(source, where)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        detail = "" if exc.msg == "invalid syntax" else f" ({exc.msg})"
        at = f"at column {exc.offset}" if exc.offset and 0 < exc.offset <= len(source) else "at the end"
        raise converter.fail(f"invalid syntax{detail} {at}; {ALLOWED}") from None
    except (RecursionError, MemoryError):
        raise converter.fail("too deeply nested") from None
    try:
        root = converter.convert(tree.body)
    except RecursionError:
        raise converter.fail("too deeply nested") from None
    if not root.is_condition:
        raise converter.fail(f"a rule must be a condition such as 'slope_deg > 25', but '{converter.text}' is a number")
    names = root.names()
    if not names:
        raise converter.fail("the rule uses no layer name, so it is the same for every cell")
    return Expression(text=source, root=root, names=names, where=where)
