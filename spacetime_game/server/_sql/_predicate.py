"""Predicate compilation: a WHERE clause becomes closures over (row of side 0, row of side 1), with
literals coerced to the column types once, at compile time."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlglot import exp

from ...sdk import Identity
from ._coerce import _coerce, _decimal, _Lit, _scalar
from ._common import Row, SqlError, _Pred, _true
from ._parse import _show
from ._scope import _Col, _Scope

_COMPARISONS: Final[dict[type[exp.Expression], Callable[[Any, Any], bool]]] = {
    exp.EQ: operator.eq,
    exp.NEQ: operator.ne,
    exp.LT: operator.lt,
    exp.LTE: operator.le,
    exp.GT: operator.gt,
    exp.GTE: operator.ge,
}


_FLIPPED: Final[dict[Callable[[Any, Any], bool], Callable[[Any, Any], bool]]] = {
    operator.eq: operator.eq,
    operator.ne: operator.ne,
    operator.lt: operator.gt,
    operator.le: operator.ge,
    operator.gt: operator.lt,
    operator.ge: operator.le,
}


_ARITHMETIC: Final = (
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Mod,
    exp.IntDiv,
    exp.Pow,
    exp.DPipe,
    exp.BitwiseAnd,
    exp.BitwiseOr,
    exp.BitwiseXor,
    exp.BitwiseNot,
    exp.BitwiseLeftShift,
    exp.BitwiseRightShift,
)


@dataclass(frozen=True)
class _Compiled:
    fn: _Pred
    sides: frozenset[int]
    const: bool | None = None  # the value, when the condition does not read any row


_TRUE: Final = _Compiled(_true, frozenset(), True)


_FALSE: Final = _Compiled(lambda a, b: False, frozenset(), False)


def _where(node: exp.Expression, scope: _Scope, sender: Identity) -> list[tuple[_Pred, frozenset[int]]]:
    """The top-level AND terms of a WHERE clause, compiled, with the sides each reads."""
    _check_terms(node, scope.limits.max_terms)
    terms = _flatten(node, exp.And)
    out: list[tuple[_Pred, frozenset[int]]] = []
    for t in terms:
        c = _cond(t, scope, sender, 1)
        if c.const is True:
            continue
        if c.const is False:
            return [(_FALSE.fn, frozenset())]
        out.append((c.fn, c.sides))
    return out


def _check_terms(node: exp.Expression, max_terms: int) -> None:
    """Refuse a WHERE clause with more than ``max_terms`` conditions (the operands of its AND/OR
    tree), before any of them is compiled; iterative, so it also copes with deep trees."""
    count = 0
    stack = [node]
    while stack:
        n = stack.pop()
        while isinstance(n, exp.Paren):
            n = n.this
        if isinstance(n, exp.And | exp.Or):
            stack.append(n.expression)
            stack.append(n.this)
            continue
        count += 1
        if count > max_terms:
            raise SqlError(
                f"the WHERE clause has more than {max_terms:,} conditions, this server's limit "
                "(max_query_terms)"
            )


def _flatten(node: exp.Expression, cls: type[exp.Expression]) -> list[exp.Expression]:
    """The operands of a chain of ``cls`` (AND or OR), looking through parentheses; iterative."""
    out: list[exp.Expression] = []
    stack = [node]
    while stack:
        n = stack.pop()
        while isinstance(n, exp.Paren):
            n = n.this
        if isinstance(n, cls):
            stack.append(n.expression)
            stack.append(n.this)
        else:
            out.append(n)
    return out


def _all(preds: Sequence[_Pred]) -> _Pred:
    if not preds:
        return _true
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        p, q = preds
        return lambda a, b: p(a, b) and q(a, b)
    ps = tuple(preds)
    return lambda a, b: all(p(a, b) for p in ps)


def _any(preds: Sequence[_Pred]) -> _Pred:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        p, q = preds
        return lambda a, b: p(a, b) or q(a, b)
    ps = tuple(preds)
    return lambda a, b: any(p(a, b) for p in ps)


def _cond(node: exp.Expression, scope: _Scope, sender: Identity, depth: int) -> _Compiled:
    if depth > scope.limits.max_depth:
        raise SqlError(
            f"the WHERE clause is nested too deeply (more than {scope.limits.max_depth} levels, "
            "this server's limit: max_query_depth)"
        )
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And | exp.Or):
        is_and = isinstance(node, exp.And)
        parts = [_cond(n, scope, sender, depth + 1) for n in _flatten(node, type(node))]
        keep = []
        for c in parts:
            if c.const is not None:
                if c.const is not is_and:  # false in an AND, true in an OR decides it
                    return c
                continue
            keep.append(c)
        if not keep:
            return _TRUE if is_and else _FALSE
        fns = [c.fn for c in keep]
        sides = frozenset().union(*(c.sides for c in keep))
        return _Compiled(_all(fns) if is_and else _any(fns), sides)
    cmp = _COMPARISONS.get(type(node))
    if cmp is not None:
        return _comparison(node, cmp, scope, sender)
    if isinstance(node, exp.Boolean):
        return _TRUE if node.this else _FALSE
    if isinstance(node, exp.Column):
        col = _column_operand(node, scope)
        if _scalar(col.type, scope.ts, col.name).kind != "Bool":
            raise SqlError(f"`{col.name}` is not a Bool column, so it cannot be a condition on its own")
        get = _getter(col, None)
        return _Compiled(lambda a, b: bool(get(a, b)), frozenset((col.side,)))
    if isinstance(node, exp.Not):
        raise SqlError("unsupported: NOT")
    raise _unsupported(node, "in WHERE")


def _unsupported(node: exp.Expression, where: str) -> SqlError:
    if isinstance(node, exp.Subquery | exp.Select | exp.Exists) or (
        isinstance(node, exp.In) and node.args.get("query")
    ):
        return SqlError("unsupported: subqueries")
    if isinstance(node, (*_ARITHMETIC, exp.Neg)):
        return SqlError(f"unsupported: arithmetic (`{_show(node)}`)")
    if isinstance(node, exp.Null):
        return SqlError(
            "unsupported: NULL (option columns compare with their inner value; none never matches)"
        )
    if isinstance(node, exp.Placeholder | exp.Parameter):
        return SqlError(f"unsupported parameter `{_show(node)}`: the only parameter is :sender")
    if isinstance(node, exp.Cast):
        return SqlError(f"unsupported: casts (`{_show(node)}`)")
    if isinstance(node, exp.Func):
        return SqlError(f"unsupported: function calls (`{_show(node)}`)")
    return SqlError(f"unsupported expression {where}: `{_show(node)}`")


def _comparison(
    node: exp.Expression, op: Callable[[Any, Any], bool], scope: _Scope, sender: Identity
) -> _Compiled:
    left = _operand(node.this, scope, sender)
    right = _operand(node.args.get("expression"), scope, sender)
    if isinstance(left, _Lit) and isinstance(right, _Lit):
        raise SqlError(f"a comparison needs a column on at least one side: `{_show(node)}`")
    if isinstance(left, _Lit):
        left, right = right, left
        op = _FLIPPED[op]
    assert isinstance(left, _Col)
    ts = scope.ts
    sc = _scalar(left.type, ts, left.name)
    if isinstance(right, _Col):
        sc2 = _scalar(right.type, ts, right.name)
        if sc.kind != sc2.kind:
            raise SqlError(
                f"type mismatch: cannot compare `{left.name}` ({sc.display}) with `{right.name}` ({sc2.display})"
            )
        g1, g2 = _getter(left, sc.key), _getter(right, sc2.key)

        def both(a: Row, b: Row) -> bool:
            x = g1(a, b)
            if x is None:
                return False
            y = g2(a, b)
            return y is not None and op(x, y)

        return _Compiled(both, frozenset((left.side, right.side)))
    value = _coerce(right, sc, left.name, sender)
    i = left.index
    if sc.key is None and not sc.optional:
        if left.side == 0:
            return _Compiled(lambda a, b: op(a[i], value), frozenset((0,)))
        return _Compiled(lambda a, b: op(b[i], value), frozenset((1,)))
    get = _getter(left, sc.key)

    def one(a: Row, b: Row) -> bool:
        x = get(a, b)
        return x is not None and op(x, value)

    return _Compiled(one, frozenset((left.side,)))


def _getter(col: _Col, key: Callable[[Any], Any] | None) -> Callable[[Row, Row], Any]:
    """Reads a column's comparison key (None for an option's none)."""
    i = col.index
    if key is None:
        if col.side == 0:
            return lambda a, b: a[i]
        return lambda a, b: b[i]

    def keyed(a: Row, b: Row) -> Any:
        v = (a if col.side == 0 else b)[i]
        return None if v is None else key(v)

    return keyed


def _operand(node: Any, scope: _Scope, sender: Identity) -> _Col | _Lit:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Column):
        return _column_operand(node, scope)
    if isinstance(node, exp.Literal):
        if node.is_string:
            text = str(node.this)
            return _Lit("string", text, "'" + text.replace("'", "''") + "'")
        return _number_lit(str(node.this), False)
    if isinstance(node, exp.Neg):
        inner = node.this
        while isinstance(inner, exp.Paren):
            inner = inner.this
        if isinstance(inner, exp.Literal) and not inner.is_string:
            return _number_lit(str(inner.this), True)
        raise _unsupported(node, "in a comparison")
    if isinstance(node, exp.Boolean):
        return _Lit("bool", bool(node.this), "true" if node.this else "false")
    if isinstance(node, exp.HexString):
        digits = str(node.this)
        return _Lit("hex", digits, f"0x{digits}")
    if isinstance(node, exp.Placeholder) and node.this == "sender":
        return _Lit("sender", None, ":sender")
    if isinstance(node, exp.Placeholder) and isinstance(node.this, str):
        raise SqlError(f"unknown parameter `:{node.this}`: the only parameter is :sender")
    if node is None:
        raise SqlError("incomplete comparison")
    raise _unsupported(node, "in a comparison")


def _column_operand(node: exp.Column, scope: _Scope) -> _Col:
    if isinstance(node.this, exp.Star):
        raise SqlError(f"`{_show(node)}` cannot be used in a condition")
    return scope.column(node)


def _number_lit(text: str, negative: bool) -> _Lit:
    d = _decimal(text)
    if d is None:
        raise SqlError(f"invalid number `{text}`")
    if negative:
        d = d.copy_negate()
        text = "-" + text
    return _Lit("number", d, text)
