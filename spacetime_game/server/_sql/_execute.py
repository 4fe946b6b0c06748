"""The HTTP ``/sql`` executor: the statements of one request, planned, then run against a read view
(plain SQL join semantics, column lists, ``COUNT(*)``, ``LIMIT``)."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import assert_never

from ...sdk import Identity
from ...sdk.sats import ProductType
from ...sdk.schema import ModuleSchema
from ._common import _NO_ROW, DEFAULT_SQL_LIMITS, ReadView, Row, SqlLimits, _guard
from ._keys import _value_key
from ._parse import _parse
from ._plan import _Columns, _Count, _Plan, _plan, _Star
from ._predicate import _all


@dataclass(frozen=True)
class SqlResult:
    """The result of one ``/sql`` statement: the output columns (names and types; the types are the
    column types as the module declares them, so they may hold ``Ref`` s into the module's typespace)
    and the rows, as tuples in column order."""

    schema: ProductType
    rows: list[Row]


def execute_sql(
    sql: str,
    schema: ModuleSchema,
    view: ReadView,
    sender: Identity,
    owner: bool = False,
    limits: SqlLimits = DEFAULT_SQL_LIMITS,
) -> list[SqlResult]:
    """Run the ``;``-separated SELECT statements of the HTTP ``/sql`` endpoint against ``view``.

    Besides the subscription forms, a statement may select a list of columns (``a.x, b.y AS z``),
    ``COUNT(*) [AS n]``, and end with ``LIMIT n``. Nothing is run unless every statement compiles.
    ``limits`` applies to the whole text (all statements together) and to each WHERE clause.
    """
    plans = _guard(
        sql,
        lambda: [
            _plan(s, schema, sender, owner, subscription=False, limits=limits) for s in _parse(sql, limits)
        ],
    )
    return [_execute(p, view) for p in plans]


def _execute(p: _Plan, view: ReadView) -> SqlResult:
    project = p.project
    limit = p.limit
    if isinstance(project, _Count):
        n = sum(1 for _ in _pairs(p, view))
        rows: list[Row] = [(n,)] if limit is None or limit > 0 else []
        return SqlResult(p.schema, rows)
    if limit == 0:
        return SqlResult(p.schema, [])
    out: Iterator[Row]
    match project:
        case _Star(side):
            out = (pair[side] for pair in _pairs(p, view))
        case _Columns(cols):
            picks = [(c.side, c.index) for _, c in cols]
            out = (tuple(pair[s][i] for s, i in picks) for pair in _pairs(p, view))
        case _:
            assert_never(project)
    rows = []
    for r in out:
        rows.append(r)
        if limit is not None and len(rows) >= limit:
            break
    return SqlResult(p.schema, rows)


def _pairs(p: _Plan, view: ReadView) -> Iterator[tuple[Row, Row]]:
    """(row of side 0, row of side 1 or ``()``) for every combination that satisfies the statement."""
    table = p.rels[0].table
    if p.join is None:
        pred = _all([f for f, _ in p.conjuncts])
        for r in view.rows(table.name):
            if pred(r, _NO_ROW):
                yield r, _NO_ROW
        return
    other = p.rels[1].table
    x0, x1 = p.join
    p0 = _all([f for f, sides in p.conjuncts if sides == frozenset((0,)) or not sides])
    p1 = _all([f for f, sides in p.conjuncts if sides == frozenset((1,))])
    p01 = _all([f for f, sides in p.conjuncts if len(sides) == 2])
    hk = _value_key(other.columns[x1].type, p.ts)
    indexed = any(c.col_id == x1 for c in other.indexed_columns)
    by_key: dict[Hashable, list[Row]] | None = None
    cache: dict[Hashable, list[Row]] = {}
    for a in view.rows(table.name):
        if not p0(a, _NO_ROW):
            continue
        k = a[x0]
        h = hk(k)
        if indexed:
            partners = cache.get(h)
            if partners is None:
                partners = cache[h] = [b for b in view.lookup(other.name, x1, k) if p1(_NO_ROW, b)]
        else:
            if by_key is None:
                by_key = {}
                for b in view.rows(other.name):
                    if p1(_NO_ROW, b):
                        by_key.setdefault(hk(b[x1]), []).append(b)
            partners = by_key.get(h, [])
        for b in partners:
            if p01(a, b):
                yield a, b
