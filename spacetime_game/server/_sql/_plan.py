"""Planning: checking one parsed SELECT against the supported subset and the module schema, and
turning it into a :class:`_Plan` (tables, join columns, compiled WHERE terms, projection, LIMIT)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlglot import exp

from ...sdk import Identity
from ...sdk.sats import PrimitiveType, ProductElement, ProductType, Typespace
from ...sdk.schema import ModuleSchema, TableDef
from ._coerce import _decimal, _integral, _resolve, _type_name
from ._common import SqlError, SqlLimits, _Pred
from ._parse import _show
from ._predicate import _where
from ._scope import _Col, _Rel, _Scope


@dataclass(frozen=True)
class _Star:
    """Select the whole rows of one side (``*`` or ``t.*``)."""

    side: int


@dataclass(frozen=True)
class _Columns:
    """Select a list of columns, each under its output name."""

    cols: list[tuple[str, _Col]]


@dataclass(frozen=True)
class _Count:
    """Select ``COUNT(*)`` under the output name ``name``."""

    name: str


#: What a statement selects.
_Projection = _Star | _Columns | _Count


@dataclass
class _Plan:
    rels: list[_Rel]  # side 0, then side 1
    join: tuple[int, int] | None  # join column of side 0, of side 1
    conjuncts: list[tuple[_Pred, frozenset[int]]]  # top-level AND terms and the sides they read
    project: _Projection
    limit: int | None
    schema: ProductType
    ts: Typespace


_CLAUSES: Final[dict[str, str]] = {
    "with": "WITH",
    "with_": "WITH",
    "distinct": "DISTINCT",
    "group": "GROUP BY",
    "having": "HAVING",
    "order": "ORDER BY",
    "offset": "OFFSET",
    "locks": "FOR UPDATE / FOR SHARE",
    "windows": "WINDOW",
    "qualify": "QUALIFY",
    "laterals": "LATERAL",
    "into": "SELECT INTO",
    "sample": "TABLESAMPLE",
    "sort": "SORT BY",
    "cluster": "CLUSTER BY",
    "distribute": "DISTRIBUTE BY",
    "connect": "CONNECT BY",
    "pivots": "PIVOT",
}


_ALLOWED_SELECT_ARGS: Final = frozenset({"expressions", "from", "from_", "joins", "where", "limit"})


_SET_OPS: Final[tuple[tuple[type[exp.Expression], str], ...]] = (
    (exp.Union, "UNION"),
    (exp.Intersect, "INTERSECT"),
    (exp.Except, "EXCEPT"),
)


def _plan(
    stmt: exp.Expression,
    schema: ModuleSchema,
    sender: Identity,
    owner: bool,
    *,
    subscription: bool,
    limits: SqlLimits,
) -> _Plan:
    if not isinstance(stmt, exp.Select):
        for cls, word in _SET_OPS:
            if isinstance(stmt, cls):
                raise SqlError(f"unsupported: {word}")
        kind = stmt.key.upper() if isinstance(stmt.key, str) else type(stmt).__name__.upper()
        if isinstance(stmt, exp.Command):
            kind = str(stmt.this).upper()
        raise SqlError(f"only SELECT is supported, got {kind}")
    for name, value in stmt.args.items():
        if value and name not in _ALLOWED_SELECT_ARGS:
            word = _CLAUSES.get(name, name.rstrip("_").upper().replace("_", " "))
            raise SqlError(f"unsupported: {word}")
    limit_node = stmt.args.get("limit")
    if limit_node and subscription:
        raise SqlError("unsupported: LIMIT in a subscription")
    from_node = stmt.args.get("from_") or stmt.args.get("from")
    if not from_node:
        raise SqlError("a query needs FROM <table>")
    scope = _Scope(schema, owner, limits)
    first = _table_ref(from_node.this if isinstance(from_node, exp.From) else from_node, scope)
    joins = stmt.args.get("joins") or []
    if len(joins) > 1:
        raise SqlError("at most two tables may be joined")
    second = None
    join_on = None
    if joins:
        second, join_on = _join_ref(joins[0], scope)
    rels = [first] + ([second] if second else [])
    if second is not None and second.alias == first.alias:
        raise SqlError(
            f"the table name or alias `{first.alias}` is used twice; give each table its own alias"
        )
    projection = stmt.args.get("expressions") or []

    if subscription:
        side = _whole_row_side(projection, rels)
        if side == 1:  # the returned table is side 0
            rels.reverse()
    scope.rels = rels

    join: tuple[int, int] | None = None
    if join_on is not None:
        join = _join_columns(join_on, scope, index_required=subscription)

    where = stmt.args.get("where")
    conjuncts = _where(where.this, scope, sender) if where else []

    if subscription:
        table = rels[0].table
        return _Plan(rels, join, conjuncts, _Star(0), None, _row_schema(table), scope.ts)
    project, out_schema = _projection(projection, scope)
    limit = _limit(limit_node) if limit_node else None
    return _Plan(rels, join, conjuncts, project, limit, out_schema, scope.ts)


def _table_ref(node: Any, scope: _Scope) -> _Rel:
    if isinstance(node, exp.Subquery | exp.Select):
        raise SqlError("unsupported: subqueries")
    if isinstance(node, exp.Lateral):
        raise SqlError("unsupported: LATERAL")
    if not isinstance(node, exp.Table):
        raise SqlError(f"expected a table name, got `{_show(node)}`")
    if node.args.get("db") or node.args.get("catalog"):
        raise SqlError(f"unsupported: qualified table names (`{_show(node)}`)")
    ident = node.this
    if not isinstance(ident, exp.Identifier):
        raise SqlError(f"expected a table name, got `{_show(node)}`")
    for name, value in node.args.items():
        if value and name not in ("this", "alias"):
            raise SqlError(f"unsupported table expression `{_show(node)}`")
    table = scope.table(str(ident.this))
    alias = table.name
    alias_node = node.args.get("alias")
    if alias_node:
        if not isinstance(alias_node, exp.TableAlias) or not isinstance(alias_node.this, exp.Identifier):
            raise SqlError(f"unsupported table alias `{_show(alias_node)}`")
        if alias_node.args.get("columns"):
            raise SqlError("unsupported: column aliases in FROM")
        alias = str(alias_node.this.this)
    return _Rel(alias, table)


def _join_ref(node: Any, scope: _Scope) -> tuple[_Rel, exp.Expression]:
    if not isinstance(node, exp.Join):
        raise SqlError(f"unsupported join `{_show(node)}`")
    side = str(node.args.get("side") or "").upper()
    kind = str(node.args.get("kind") or "").upper()
    if side:
        raise SqlError(f"unsupported: {side} OUTER JOIN (only inner joins are allowed)")
    if kind == "CROSS":
        raise SqlError("unsupported: CROSS JOIN (joins need ON a.x = b.y)")
    if kind and kind != "INNER":
        raise SqlError(f"unsupported: {kind} JOIN (only inner joins are allowed)")
    if node.args.get("method"):
        raise SqlError(f"unsupported: {str(node.args['method']).upper()} JOIN")
    if node.args.get("using"):
        raise SqlError("unsupported: JOIN ... USING (write ON a.x = b.y)")
    for name, value in node.args.items():
        if value and name not in ("this", "on", "kind"):
            raise SqlError(f"unsupported join syntax `{_show(node)}`")
    rel = _table_ref(node.this, scope)
    on = node.args.get("on")
    if on is None:
        raise SqlError("joins need ON a.x = b.y (implicit, comma and cross joins are not supported)")
    return rel, on


def _join_columns(on: exp.Expression, scope: _Scope, *, index_required: bool) -> tuple[int, int]:
    while isinstance(on, exp.Paren):
        on = on.this
    shape = "the ON clause must be one equality of two qualified columns, one of each table: `a.x = b.y`"
    if not isinstance(on, exp.EQ):
        raise SqlError(shape)
    left, right = on.this, on.expression
    if not (isinstance(left, exp.Column) and isinstance(right, exp.Column)):
        raise SqlError(shape)
    if not (left.args.get("table") and right.args.get("table")):
        raise SqlError(shape)
    a, b = scope.column(left), scope.column(right)
    if a.side == b.side:
        raise SqlError(shape)
    if a.side == 1:
        a, b = b, a
    ts = scope.ts
    if _resolve(a.type, ts) != _resolve(b.type, ts):
        raise SqlError(
            f"cannot join `{a.name}` ({_type_name(a.type, ts)}) with `{b.name}` ({_type_name(b.type, ts)}): "
            "the types differ"
        )
    if index_required:
        for c in (a, b):
            table = scope.rels[c.side].table
            if c.index not in {col.col_id for col in table.indexed_columns}:
                raise SqlError(f"joins must be on indexed columns: `{c.name}` has no index")
    return a.index, b.index


def _whole_row_side(projection: list[Any], rels: list[_Rel]) -> int:
    """The side whose rows a subscription returns (checks the SELECT list is `*` or `t.*`)."""
    whole = "subscriptions may only select whole rows (`*` or `t.*`)"
    if len(projection) != 1:
        raise SqlError(whole)
    item = projection[0]
    if isinstance(item, exp.Star):
        if any(item.args.values()):
            raise SqlError(f"unsupported: `{_show(item)}`")
        if len(rels) > 1:
            raise SqlError("a join must select the rows of one table: use `SELECT a.* FROM ...`")
        return 0
    if isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
        qual = item.args.get("table")
        if not isinstance(qual, exp.Identifier) or item.args.get("db") or item.args.get("catalog"):
            raise SqlError(whole)
        for i, r in enumerate(rels):
            if r.alias == str(qual.this):
                return i
        known = ", ".join(f"`{r.alias}`" for r in rels)
        raise SqlError(f"unknown table or alias `{qual.this}` (this query has {known})")
    inner = item.this if isinstance(item, exp.Alias) else item
    if isinstance(inner, exp.Count):
        raise SqlError(f"unsupported: COUNT in a subscription; {whole}")
    raise SqlError(whole)


def _projection(items: list[Any], scope: _Scope) -> tuple[_Projection, ProductType]:
    rels = scope.rels
    if len(items) == 1:
        item = items[0]
        if isinstance(item, exp.Star) or (isinstance(item, exp.Column) and isinstance(item.this, exp.Star)):
            side = _whole_row_side(items, rels)
            return _Star(side), _row_schema(rels[side].table)
        alias = None
        inner = item
        if isinstance(item, exp.Alias):
            inner = item.this
            alias = _alias_name(item)
        if isinstance(inner, exp.Count):
            arg = inner.this
            if not isinstance(arg, exp.Star) or any(
                v for k, v in inner.args.items() if k not in ("this", "big_int")
            ):
                raise SqlError(f"unsupported: `{_show(inner)}` (only COUNT(*) is supported)")
            name = alias or "count"
            return _Count(name), ProductType((ProductElement(name, PrimitiveType("U64")),))
    cols: list[tuple[str, _Col]] = []
    seen: set[str] = set()
    for item in items:
        node, alias = (item.this, _alias_name(item)) if isinstance(item, exp.Alias) else (item, None)
        if isinstance(node, exp.Star) or (isinstance(node, exp.Column) and isinstance(node.this, exp.Star)):
            raise SqlError("select either `*`, `t.*`, COUNT(*) or a list of columns")
        if isinstance(node, exp.Count):
            raise SqlError("COUNT(*) cannot be combined with other columns")
        if not isinstance(node, exp.Column):
            raise SqlError(
                f"unsupported select item `{_show(node)}`: select columns, `*`, `t.*` or COUNT(*) AS n"
            )
        col = scope.column(node)
        name = alias or str(node.this.this)
        if name in seen:
            raise SqlError(f"duplicate output column `{name}`: rename one with AS")
        seen.add(name)
        cols.append((name, col))
    schema = ProductType(tuple(ProductElement(n, c.type) for n, c in cols))
    return _Columns(cols), schema


def _alias_name(node: exp.Alias) -> str:
    ident = node.args.get("alias")
    if not isinstance(ident, exp.Identifier):
        raise SqlError(f"unsupported alias in `{_show(node)}`")
    return str(ident.this)


def _limit(node: Any) -> int:
    bad = "LIMIT must be a non-negative integer literal"
    if not isinstance(node, exp.Limit):
        raise SqlError(f"unsupported: {_show(node)}")
    if any(v for k, v in node.args.items() if k != "expression"):
        raise SqlError(bad)
    value = node.args.get("expression")
    if not (isinstance(value, exp.Literal) and not value.is_string):
        raise SqlError(bad)
    d = _decimal(str(value.this))
    if d is None or not _integral(d) or d < 0 or d.adjusted() > 20 or int(d) >= 1 << 64:
        raise SqlError(bad)
    return int(d)


def _row_schema(table: TableDef) -> ProductType:
    return ProductType(tuple(ProductElement(c.name, c.type) for c in table.columns))
