"""SQL for the embedded dev server.

Two entry points, both parsing with sqlglot (PostgreSQL dialect) and then checking the syntax tree
against the module schema:

* :func:`compile_query` compiles one subscription query (docs/protocol.md section 6.1), also used for
  one-off queries. The :class:`Query` it returns evaluates the whole result (``SubscribeApplied``) and
  maintains it incrementally: :meth:`Query.delta` turns the rows one transaction inserted and deleted
  into the result rows added and removed, with index lookups only, never a table scan.
* :func:`execute_sql` runs the statements of the HTTP ``/sql`` endpoint, which also allows column
  lists, ``COUNT(*)`` and ``LIMIT``.

Every problem with a query raises :class:`SqlError`, whose message is meant for the client.

Semantics worth knowing:

* A subscription returns a *set* of rows of one table: a row of the selected table is in the result
  when at least one row of the other table joins it and the WHERE holds for that pair; it appears
  once however many partners it has. ``/sql`` joins follow plain SQL instead: one output row per
  matching pair.
* Option columns compare with their inner value; a ``none`` never matches (not even ``!=``).
* Identity, ConnectionId and Timestamp compare by their numeric value (so ``<`` works as expected).
* Literals take the type of the column they are compared with, as in SpacetimeDB: integers must be
  integral and in range, F32 literals are rounded to F32, strings compare with String columns,
  RFC 3339 strings with Timestamp columns, hex (``0xAB``, ``X'AB'`` or a hex string) with Identity,
  ConnectionId and bytes columns, and ``:sender`` (the caller's Identity) with Identity columns.
"""

from __future__ import annotations

import operator
import re
import struct
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Protocol, TypeVar

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError, TokenError

from ..sdk import Identity, SpacetimeError, Timestamp
from ..sdk.sats import (
    AlgebraicType,
    ArrayType,
    PrimitiveType,
    ProductElement,
    ProductType,
    RefType,
    Some,
    SumType,
    SumValue,
    Typespace,
)
from ..sdk.schema import ModuleSchema, TableDef
from ._logsafe import server_logger

__all__ = [
    "DEFAULT_SQL_LIMITS",
    "Query",
    "ReadView",
    "SqlError",
    "SqlLimits",
    "SqlResult",
    "TableChanges",
    "compile_query",
    "execute_sql",
]

logger = server_logger("spacetime_game.server.sql")

Row = tuple[Any, ...]
#: A compiled condition over (row of side 0, row of side 1); single-table queries pass ``()`` as side 1.
_Pred = Callable[[Row, Row], bool]
_Key = Callable[[Any], Hashable]
_T = TypeVar("_T")

_NO_ROW: Final[Row] = ()


class SqlError(SpacetimeError):
    """A query that cannot be run: bad syntax, outside the supported subset, unknown names, type
    mismatches or no access. The message is written for the client that sent the query."""


class ReadView(Protocol):
    """Read access to the committed rows of the database (the state after the transaction being
    processed, when computing a delta)."""

    def rows(self, table: str) -> Iterable[Row]:
        """Every row of ``table``."""
        ...

    def lookup(self, table: str, column: int, value: Any) -> Iterable[Row]:
        """The rows of ``table`` whose column ``column`` equals ``value``, found through an index."""
        ...


@dataclass(frozen=True)
class SqlLimits:
    """How big and how complex one query may be: every query (subscription, one-off, ``/sql``) is
    checked against these before it costs anything, so that no single request stalls the server.

    ``max_bytes`` bounds the UTF-8 length of the SQL text and is checked before parsing (parsing costs
    up to about 10 microseconds per byte, so a query at the default limit of 4 KiB costs a few tens of
    milliseconds). ``max_terms`` bounds the conditions (comparisons and boolean columns) in one WHERE
    clause, which every row the query looks at is tested against, and ``max_depth`` how deeply
    AND/OR/parentheses nest (a chain of the same operator counts as one level).
    """

    max_bytes: int = 4096
    max_terms: int = 256
    max_depth: int = 64

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_terms", "max_depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"SqlLimits.{name} must be a positive int, got {value!r}")


#: The limits used when none are given.
DEFAULT_SQL_LIMITS: Final = SqlLimits()


@dataclass(frozen=True)
class TableChanges:
    """The rows one transaction inserted into and deleted from one table.

    ``inserts`` are rows present after the transaction, ``deletes`` rows present before it. A row in
    both lists was deleted and inserted again unchanged (it is present before and after).
    """

    inserts: Sequence[Row] = ()
    deletes: Sequence[Row] = ()


@dataclass(frozen=True)
class SqlResult:
    """The result of one ``/sql`` statement: the output columns (names and types; the types are the
    column types as the module declares them, so they may hold ``Ref`` s into the module's typespace)
    and the rows, as tuples in column order."""

    schema: ProductType
    rows: list[Row]


# ==================================================================================================
# Queries
# ==================================================================================================
class Query:
    """A compiled subscription (or one-off) query.

    ``sql`` is the text it was compiled from, ``table`` the canonical name of the table whose rows it
    returns, ``reads`` the tables it depends on (one, or two for a join), ``uses_sender`` whether the
    text mentions ``:sender`` (so that its result depends on who subscribed).
    """

    __slots__ = ("reads", "sql", "table", "uses_sender")

    sql: str
    table: str
    reads: frozenset[str]
    uses_sender: bool

    def __init__(self, sql: str, table: str, reads: frozenset[str]) -> None:
        self.sql = sql
        self.table = table
        self.reads = reads
        self.uses_sender = ":sender" in sql.lower()

    def matches(self, row: Row) -> bool:
        """Whether a row of :attr:`table` passes the WHERE (single-table queries only)."""
        raise SqlError(f"matches() needs a single-table query, not a join: {self.sql}")

    def evaluate(self, view: ReadView) -> list[Row]:
        """All current result rows, each once."""
        raise NotImplementedError

    def delta(self, after: ReadView, changes: Mapping[str, TableChanges]) -> TableChanges:
        """The result rows one transaction removed and added.

        ``after`` reads the state after the transaction and ``changes`` holds its inserted and
        deleted rows per table. Only the changed rows and index lookups keyed by them are looked at.
        A result row that is deleted and inserted again unchanged is in neither list.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__.lstrip('_')}({self.sql!r})"


class _TableQuery(Query):
    """``SELECT * FROM t [WHERE ...]``."""

    __slots__ = ("_key", "_pred")

    def __init__(self, sql: str, table: str, pred: _Pred, key: _Key) -> None:
        super().__init__(sql, table, frozenset((table,)))
        self._pred = pred
        self._key = key

    def matches(self, row: Row) -> bool:
        """Whether ``row`` passes the WHERE."""
        return self._pred(row, _NO_ROW)

    def evaluate(self, view: ReadView) -> list[Row]:
        """All rows of the table that pass the WHERE."""
        pred = self._pred
        return [r for r in view.rows(self.table) if pred(r, _NO_ROW)]

    def delta(self, after: ReadView, changes: Mapping[str, TableChanges]) -> TableChanges:
        """The changed rows that pass the WHERE (rows deleted and re-inserted unchanged cancel)."""
        ch = changes.get(self.table)
        if ch is None:
            return TableChanges([], [])
        pred = self._pred
        ins = [r for r in ch.inserts if pred(r, _NO_ROW)]
        dels = [r for r in ch.deletes if pred(r, _NO_ROW)]
        return _cancel(ins, dels, self._key)


class _JoinQuery(Query):
    """``SELECT a.* FROM t a JOIN u b ON a.x = b.y [WHERE ...]`` (side 0 = ``a``, the returned table)."""

    __slots__ = (
        "_cache_eval",
        "_hk",
        "_key_a",
        "_key_b",
        "_other",
        "_pa",
        "_pab",
        "_pab_true",
        "_pb",
        "_xa",
        "_xb",
    )

    def __init__(
        self,
        sql: str,
        table: str,
        other: str,
        xa: int,
        xb: int,
        preds: tuple[_Pred, _Pred, _Pred | None],
        keys: tuple[_Key, _Key, _Key],
        cache_eval: bool,
    ) -> None:
        super().__init__(sql, table, frozenset((table, other)))
        self._other = other
        self._xa = xa
        self._xb = xb
        pa, pb, pab = preds
        self._pa: Callable[[Row], bool] = lambda r: pa(r, _NO_ROW)
        self._pb: Callable[[Row], bool] = lambda u: pb(_NO_ROW, u)
        self._pab: _Pred = pab if pab is not None else _true
        self._pab_true = pab is None
        self._key_a, self._key_b, self._hk = keys
        self._cache_eval = cache_eval

    def evaluate(self, view: ReadView) -> list[Row]:
        """Every row of the returned table with at least one partner satisfying the WHERE."""
        pa, pb, pab, pab_true = self._pa, self._pb, self._pab, self._pab_true
        xa, xb, other, hk = self._xa, self._xb, self._other, self._hk
        cache: dict[Hashable, list[Row]] | None = {} if self._cache_eval else None
        out = []
        for r in view.rows(self.table):
            if not pa(r):
                continue
            k = r[xa]
            if cache is None:
                partners = [u for u in view.lookup(other, xb, k) if pb(u)]
            else:
                h = hk(k)
                found = cache.get(h)
                if found is None:
                    found = cache[h] = [u for u in view.lookup(other, xb, k) if pb(u)]
                partners = found
            if partners and (pab_true or any(pab(r, u) for u in partners)):
                out.append(r)
        return out

    def delta(self, after: ReadView, changes: Mapping[str, TableChanges]) -> TableChanges:
        """The result rows added and removed, from the changed rows of both tables and index lookups.

        The state before the transaction is derived where needed: a table before is the table after,
        minus the inserted rows, plus the deleted rows.
        """
        ca = changes.get(self.table)
        cb = changes.get(self._other)
        if ca is None and cb is None:
            return TableChanges([], [])
        pa, pb, pab, pab_true = self._pa, self._pb, self._pab, self._pab_true
        xa, xb, hk, ka, kb = self._xa, self._xb, self._hk, self._key_a, self._key_b
        ins_a = ca.inserts if ca is not None else ()
        del_a = ca.deletes if ca is not None else ()
        ins_b = cb.inserts if cb is not None else ()
        del_b = cb.deletes if cb is not None else ()
        ins_a_keys = {ka(r) for r in ins_a}
        del_a_keys = {ka(r) for r in del_a}
        ins_b_keys = {kb(u) for u in ins_b}
        del_b_keys = {kb(u) for u in del_b}

        # Deleted partner rows (part of the state before), by join key.
        del_b_by_key: dict[Hashable, list[Row]] = {}
        for u in del_b:
            if pb(u):
                del_b_by_key.setdefault(hk(u[xb]), []).append(u)

        # Candidate result rows: changed rows of the returned table, and rows joined to a changed partner.
        cands: dict[Hashable, Row] = {}
        for r in ins_a:
            if pa(r):
                cands.setdefault(ka(r), r)
        for r in del_a:
            if pa(r):
                cands.setdefault(ka(r), r)
        touched: dict[Hashable, Any] = {}
        for rows in (ins_b, del_b):
            for u in rows:
                if not pb(u):
                    continue
                key_u = kb(u)
                if key_u in ins_b_keys and key_u in del_b_keys:
                    continue  # deleted and inserted again unchanged: no partner changed
                touched.setdefault(hk(u[xb]), u[xb])
        for k in touched.values():
            for r in after.lookup(self.table, xa, k):
                if pa(r):
                    cands.setdefault(ka(r), r)
        if not cands:
            return TableChanges([], [])

        after_partners: dict[Hashable, list[Row]] = {}
        before_partners: dict[Hashable, list[Row]] = {}

        def partners_after(h: Hashable, k: Any) -> list[Row]:
            found = after_partners.get(h)
            if found is None:
                found = after_partners[h] = [u for u in after.lookup(self._other, xb, k) if pb(u)]
            return found

        def partners_before(h: Hashable, k: Any) -> list[Row]:
            found = before_partners.get(h)
            if found is None:
                now = partners_after(h, k)
                kept = [u for u in now if kb(u) not in ins_b_keys] if ins_b_keys else now
                found = before_partners[h] = kept + del_b_by_key.get(h, [])
            return found

        inserts: list[Row] = []
        deletes: list[Row] = []
        for key, r in cands.items():
            in_ins = key in ins_a_keys
            in_del = key in del_a_keys
            k = r[xa]
            h = hk(k)
            was = in_del or not in_ins
            now = in_ins or not in_del
            if now:
                ps = partners_after(h, k)
                now = bool(ps) and (pab_true or any(pab(r, u) for u in ps))
            if was:
                ps = partners_before(h, k)
                was = bool(ps) and (pab_true or any(pab(r, u) for u in ps))
            if now and not was:
                inserts.append(r)
            elif was and not now:
                deletes.append(r)
        return TableChanges(inserts, deletes)


def _true(a: Row, b: Row) -> bool:
    return True


def _cancel(ins: list[Row], dels: list[Row], key: _Key) -> TableChanges:
    """Drop duplicates, and rows present in both lists."""
    if not ins and not dels:
        return TableChanges([], [])
    ik = {key(r): r for r in ins}
    dk = {key(r): r for r in dels}
    if ik and dk:
        both = ik.keys() & dk.keys()
        if both:
            return TableChanges(
                [r for k, r in ik.items() if k not in both], [r for k, r in dk.items() if k not in both]
            )
    return TableChanges(list(ik.values()), list(dk.values()))


# ==================================================================================================
# Entry points
# ==================================================================================================
def compile_query(
    sql: str,
    schema: ModuleSchema,
    sender: Identity,
    owner: bool = False,
    limits: SqlLimits = DEFAULT_SQL_LIMITS,
) -> Query:
    """Compile one subscription query (also used for one-off queries).

    Accepted: ``SELECT * FROM t [WHERE pred]`` and
    ``SELECT a.* FROM t [AS] a [INNER] JOIN u [AS] b ON a.x = b.y [WHERE pred]`` where both join columns
    are indexed. ``sender`` is the value of ``:sender``. Private tables need ``owner=True``. A query
    over ``limits`` raises :class:`SqlError` before it is parsed or compiled.
    """
    return _guard(sql, lambda: _compile_subscription(sql, schema, sender, owner, limits))


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


def _guard(sql: str, build: Callable[[], _T]) -> _T:
    try:
        return build()
    except SqlError:
        raise
    except RecursionError:
        raise SqlError("the query is nested too deeply") from None
    except Exception as exc:  # a bug: still report it to the client as a query error
        logger.exception("internal error while compiling SQL %r", sql[:500])
        raise SqlError(f"internal error while compiling the query: {type(exc).__name__}") from None


def _compile_subscription(
    sql: str, schema: ModuleSchema, sender: Identity, owner: bool, limits: SqlLimits
) -> Query:
    stmts = _parse(sql, limits)
    if len(stmts) != 1:
        raise SqlError(f"a subscription query must be exactly one SELECT statement, got {len(stmts)}")
    p = _plan(stmts[0], schema, sender, owner, subscription=True, limits=limits)
    ts = schema.typespace
    table = p.rels[0].table
    if len(p.rels) == 1:
        return _TableQuery(sql, table.name, _all([f for f, _ in p.conjuncts]), _row_key(table, ts))
    assert p.join is not None
    other = p.rels[1].table
    xa, xb = p.join
    pa = _all([f for f, sides in p.conjuncts if sides == frozenset((0,)) or not sides])
    pb = _all([f for f, sides in p.conjuncts if sides == frozenset((1,))])
    rest = [f for f, sides in p.conjuncts if len(sides) == 2]
    join_type = table.columns[xa].type
    return _JoinQuery(
        sql,
        table.name,
        other.name,
        xa,
        xb,
        (pa, pb, _all(rest) if rest else None),
        (_row_key(table, ts), _row_key(other, ts), _value_key(join_type, ts)),
        cache_eval=not _is_unique(table, xa),
    )


# ==================================================================================================
# Parsing and planning
# ==================================================================================================
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _parse(sql: str, limits: SqlLimits) -> list[Any]:
    if not isinstance(sql, str):
        raise SqlError(f"the query must be text, got {type(sql).__name__}")
    _check_size(sql, limits.max_bytes)
    try:
        stmts = sqlglot.parse(sql, read="postgres")
    except ParseError as exc:
        err = exc.errors[0] if exc.errors else None
        if err:
            near = str(err.get("highlight") or "").strip()
            where = f" at line {err.get('line')}, column {err.get('col')}"
            msg = _describe(str(err.get("description") or ""))
            raise SqlError(f"syntax error{where}{f' near `{near}`' if near else ''}{msg}") from None
        raise SqlError(f"syntax error: {_clean(str(exc))}") from None
    except TokenError as exc:
        context = _clean(str(exc)).removeprefix("Error tokenizing ")
        raise SqlError(
            f"syntax error: cannot read the query (an unterminated quote or a malformed literal?) near {context}"
        ) from None
    except SqlglotError as exc:
        raise SqlError(f"syntax error: {_clean(str(exc))}") from None
    except RecursionError:
        raise SqlError("the query is nested too deeply") from None
    except Exception as exc:  # sqlglot itself failed on odd input
        logger.debug("sqlglot failed on %r", sql[:500], exc_info=True)
        raise SqlError(f"syntax error: cannot parse the query ({type(exc).__name__})") from None
    out = [s for s in stmts if s is not None]
    if not out:
        raise SqlError("empty query: expected a SELECT statement")
    return out


def _check_size(sql: str, max_bytes: int) -> None:
    """Refuse a query text longer than ``max_bytes`` (UTF-8), before anything expensive is done."""
    # a str never has more characters than its UTF-8 has bytes, so a long text is refused without
    # encoding it; a short one is encoded to count multi-byte characters
    size = len(sql) if len(sql) > max_bytes else len(sql.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        shown = f"at least {size:,}" if len(sql) > max_bytes else f"{size:,}"
        raise SqlError(
            f"the query is {shown} bytes long, more than this server's limit of {max_bytes:,} bytes "
            "(max_query_bytes)"
        )


_END_TOKEN = re.compile(r"<Token token_type: TokenType\.SENTINEL[^>]*>")
_TOKEN = re.compile(r"<Token token_type: TokenType\.\w+, text: (.*?), line: [^>]*>")


def _describe(description: str) -> str:
    """sqlglot's description of a parse error, without its internals ('' when it is only internals)."""
    if not description or "<class" in description:
        return ""  # "Required keyword: 'this' missing for <class ...>": the position says more
    text = _TOKEN.sub(r"`\1`", _END_TOKEN.sub("the end of the query", description))
    return ": " + _clean(text)


def _clean(text: str) -> str:
    text = _ANSI.sub("", text).strip()
    return text if len(text) <= 200 else text[:197] + "..."


def _show(node: exp.Expression | None) -> str:
    """A short SQL rendering of a node, for messages."""
    if node is None:
        return "?"
    try:
        text = node.sql(dialect="postgres")
    except Exception:
        text = type(node).__name__
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class _Rel:
    """A table of the FROM clause: what the query calls it, its definition, and its side (0 or 1)."""

    alias: str
    table: TableDef


@dataclass(frozen=True)
class _Col:
    """A column reference: the side of its table, its position, its display name and type."""

    side: int
    index: int
    name: str
    type: AlgebraicType


@dataclass
class _Plan:
    rels: list[_Rel]  # side 0, then side 1
    join: tuple[int, int] | None  # join column of side 0, of side 1
    conjuncts: list[tuple[_Pred, frozenset[int]]]  # top-level AND terms and the sides they read
    project: tuple[str, Any]  # ("star", side) | ("columns", [(name, _Col)]) | ("count", name)
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
        return _Plan(rels, join, conjuncts, ("star", 0), None, _row_schema(table), scope.ts)
    project, out_schema = _projection(projection, scope)
    limit = _limit(limit_node) if limit_node else None
    return _Plan(rels, join, conjuncts, project, limit, out_schema, scope.ts)


class _Scope:
    """The tables a statement reads, and how to resolve names against them."""

    def __init__(self, schema: ModuleSchema, owner: bool, limits: SqlLimits) -> None:
        self.schema = schema
        self.ts = schema.typespace
        self.owner = owner
        self.limits = limits
        self.rels: list[_Rel] = []

    def table(self, name: str) -> TableDef:
        try:
            table = self.schema.table(name)
        except KeyError:
            hint = [t.name for t in self.schema.tables if t.name.lower() == name.lower()]
            extra = f" (names are case-sensitive: did you mean `{hint[0]}`?)" if hint else ""
            raise SqlError(f"no such table: `{name}`{extra}") from None
        if not table.is_public and not self.owner:
            raise SqlError(f"table `{name}` is private")
        return table

    def rel(self, alias: str) -> int:
        for i, r in enumerate(self.rels):
            if r.alias == alias:
                return i
        known = ", ".join(f"`{r.alias}`" for r in self.rels)
        raise SqlError(f"unknown table or alias `{alias}` (this query has {known})")

    def column(self, node: exp.Column) -> _Col:
        if node.args.get("db") or node.args.get("catalog"):
            raise SqlError(f"unsupported column reference `{_show(node)}`")
        ident = node.this
        if not isinstance(ident, exp.Identifier):
            raise SqlError(f"expected a column, got `{_show(node)}`")
        name = str(ident.this)
        qual = node.args.get("table")
        if qual is not None:
            if not isinstance(qual, exp.Identifier):
                raise SqlError(f"unsupported column reference `{_show(node)}`")
            side = self.rel(str(qual.this))
            return self._col(side, name, f"{qual.this}.{name}")
        found = [i for i, r in enumerate(self.rels) if any(c.name == name for c in r.table.columns)]
        if len(found) > 1:
            raise SqlError(f"ambiguous column `{name}`: qualify it with a table name or alias")
        if not found:
            if name[:1].isdigit():
                raise SqlError(f"invalid literal `{name}`")
            raise SqlError(f"no such column: `{name}`{self._hint(name)}")
        return self._col(found[0], name, name)

    def _col(self, side: int, name: str, shown: str) -> _Col:
        table = self.rels[side].table
        for c in table.columns:
            if c.name == name:
                return _Col(side, c.col_id, shown, c.type)
        raise SqlError(f"no such column: `{shown}` (table `{table.name}`){self._hint(name, side)}")

    def _hint(self, name: str, side: int | None = None) -> str:
        rels = self.rels if side is None else [self.rels[side]]
        for r in rels:
            for c in r.table.columns:
                if c.name.lower() == name.lower():
                    return f" (names are case-sensitive: did you mean `{c.name}`?)"
        return ""


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


def _projection(items: list[Any], scope: _Scope) -> tuple[tuple[str, Any], ProductType]:
    rels = scope.rels
    if len(items) == 1:
        item = items[0]
        if isinstance(item, exp.Star) or (isinstance(item, exp.Column) and isinstance(item.this, exp.Star)):
            side = _whole_row_side(items, rels)
            return ("star", side), _row_schema(rels[side].table)
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
            return ("count", name), ProductType((ProductElement(name, PrimitiveType("U64")),))
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
    return ("columns", cols), schema


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


# ==================================================================================================
# WHERE
# ==================================================================================================
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


@dataclass(frozen=True)
class _Lit:
    """A literal operand: ``kind`` is number, string, bool, hex or sender."""

    kind: str
    value: Any
    text: str

    def describe(self) -> str:
        if self.kind == "string":
            return f"the string {self.text}"
        if self.kind == "number":
            return f"the number {self.text}"
        if self.kind == "hex":
            return f"the hex literal {self.text}"
        if self.kind == "sender":
            return ":sender (an Identity)"
        return self.text


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


def _decimal(text: str) -> Decimal | None:
    try:
        d = Decimal(text)
    except (InvalidOperation, ValueError, ArithmeticError):
        return None
    return d if d.is_finite() else None


def _integral(d: Decimal) -> bool:
    return d == d.to_integral_value()


# ---- types ---------------------------------------------------------------------------------------
_INT_RANGES: Final[dict[str, tuple[int, int]]] = {
    name: ((-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if name[0] == "I" else (0, (1 << bits) - 1))
    for name, bits in (
        ("I8", 8),
        ("U8", 8),
        ("I16", 16),
        ("U16", 16),
        ("I32", 32),
        ("U32", 32),
        ("I64", 64),
        ("U64", 64),
        ("I128", 128),
        ("U128", 128),
        ("I256", 256),
        ("U256", 256),
    )
}
_ID_DIGITS: Final = {"identity": 64, "connection_id": 32}
_ID_NAMES: Final = {"identity": "Identity", "connection_id": "ConnectionId"}


@dataclass(frozen=True)
class _Scalar:
    """A column type that SQL can compare: ``kind`` is a primitive name (``I32``, ``F32``, ``String``,
    ``Bool``) or ``bytes``, ``identity``, ``connection_id``, ``timestamp``; ``key`` maps a stored value
    to the value compared (None: the value itself)."""

    kind: str
    optional: bool
    display: str
    key: Callable[[Any], Any] | None


def _le_int(v: Any) -> int:
    return int.from_bytes(v, "little")


def _micros(v: Any) -> Any:
    return v.micros_since_epoch if isinstance(v, Timestamp) else v


def _resolve(ty: AlgebraicType, ts: Typespace) -> AlgebraicType:
    try:
        return ts.resolve(ty)
    except Exception:
        return ty


def _type_name(ty: AlgebraicType, ts: Typespace) -> str:
    return repr(_resolve(ty, ts))


def _scalar(ty: AlgebraicType, ts: Typespace, name: str) -> _Scalar:
    full = _resolve(ty, ts)
    inner = full
    optional = False
    if isinstance(full, SumType) and full.special_kind == "option":
        inner = _resolve(full.variants[0].type, ts)
        optional = True
    display = repr(full)
    kind: str | None = None
    key: Callable[[Any], Any] | None = None
    if isinstance(inner, PrimitiveType):
        kind = inner.name
    elif isinstance(inner, ArrayType) and inner.is_bytes:
        kind = "bytes"
    elif isinstance(inner, ProductType) and inner.special_kind in ("identity", "connection_id"):
        kind, key = inner.special_kind, _le_int
    elif isinstance(inner, ProductType) and inner.special_kind == "timestamp":
        kind, key = "timestamp", _micros
    if kind is None:
        raise SqlError(f"column `{name}` has type {display}, which SQL cannot compare")
    return _Scalar(kind, optional, display, key)


def _coerce(lit: _Lit, sc: _Scalar, col: str, sender: Identity) -> Any:
    """The comparison key of a literal compared with a column of type ``sc``."""
    kind = sc.kind
    mismatch = SqlError(f"type mismatch: cannot compare `{col}` ({sc.display}) with {lit.describe()}")
    if lit.kind == "sender":
        if kind != "identity":
            raise mismatch
        return _le_int(bytes(sender))
    if kind == "Bool":
        if lit.kind != "bool":
            raise mismatch
        return lit.value
    if kind == "String":
        if lit.kind != "string":
            raise mismatch
        return lit.value
    if kind in _INT_RANGES:
        if lit.kind != "number":
            raise mismatch
        d: Decimal = lit.value
        if not _integral(d):
            raise SqlError(f"{lit.text} is not an integer, but `{col}` has type {sc.display}")
        lo, hi = _INT_RANGES[kind]
        if d.adjusted() > 80 or not lo <= int(d) <= hi:
            raise SqlError(f"{lit.text} is out of range for `{col}` ({sc.display})")
        return int(d)
    if kind in ("F32", "F64"):
        if lit.kind != "number":
            raise mismatch
        try:
            f = float(lit.value)
            if f in (float("inf"), float("-inf")):
                raise OverflowError
            if kind == "F32":
                f = struct.unpack("<f", struct.pack("<f", f))[0]
        except (OverflowError, struct.error):
            raise SqlError(f"{lit.text} is out of range for `{col}` ({sc.display})") from None
        return f
    if kind in ("bytes", "identity", "connection_id"):
        if lit.kind not in ("hex", "string"):
            raise mismatch
        digits = str(lit.value)
        if lit.kind == "string" and digits[:2].lower() == "0x":
            digits = digits[2:]
        if not digits or any(ch not in "0123456789abcdefABCDEF" for ch in digits):
            raise SqlError(
                f"{lit.text} is not a hex value, so it cannot be compared with `{col}` ({sc.display})"
            )
        if kind == "bytes":
            if len(digits) % 2:
                raise SqlError(f"{lit.text} has an odd number of hex digits")
            return bytes.fromhex(digits)
        want = _ID_DIGITS[kind]
        if len(digits) != want:
            raise SqlError(
                f"an {_ID_NAMES[kind]} literal needs {want} hex digits, got {len(digits)} ({lit.text})"
            )
        return int(digits, 16)
    if kind == "timestamp":
        if lit.kind != "string":
            raise mismatch
        try:
            dt = datetime.fromisoformat(str(lit.value))
        except ValueError:
            raise SqlError(
                f"{lit.text} is not a timestamp; write one in RFC 3339, e.g. '2024-01-01T00:00:00Z'"
            ) from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return Timestamp.from_datetime(dt).micros_since_epoch
    raise mismatch  # pragma: no cover - _scalar only returns the kinds above


# ---- row keys ------------------------------------------------------------------------------------
_SUM_MARK: Final = object()
_SOME_MARK: Final = object()
_REPR_MARK: Final = object()


def _freeze(v: Any) -> Hashable:
    """A hashable stand-in for a value that holds lists or dicts (arrays, unbound products)."""
    if isinstance(v, tuple | list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple((k, _freeze(x)) for k, x in v.items())
    if isinstance(v, SumValue):
        return (_SUM_MARK, v.tag, _freeze(v.value))
    if isinstance(v, Some):
        return (_SOME_MARK, _freeze(v.value))
    try:
        hash(v)
    except TypeError:
        return (_REPR_MARK, type(v).__name__, repr(v))
    return v  # type: ignore[no-any-return]


def _same(v: Any) -> Hashable:
    return v  # type: ignore[no-any-return]


def _hashable(ty: AlgebraicType, ts: Typespace, seen: frozenset[int] = frozenset()) -> bool:
    """Whether decoded values of ``ty`` are always hashable as they are."""
    if isinstance(ty, RefType):
        if ty.index in seen or not 0 <= ty.index < len(ts):
            return False
        return _hashable(ts[ty.index], ts, seen | {ty.index})
    if isinstance(ty, PrimitiveType):
        return True
    if isinstance(ty, ArrayType):
        return ty.is_bytes
    if isinstance(ty, ProductType):
        return ty.special_kind is not None
    if isinstance(ty, SumType):
        if ty.special_kind == "schedule_at":
            return True
        return all(_hashable(v.type, ts, seen) for v in ty.variants)
    return False


def _row_key(table: TableDef, ts: Typespace) -> _Key:
    return _same if all(_hashable(c.type, ts) for c in table.columns) else _freeze


def _value_key(ty: AlgebraicType, ts: Typespace) -> _Key:
    return _same if _hashable(ty, ts) else _freeze


def _is_unique(table: TableDef, col: int) -> bool:
    return any(c.col_id == col for c in table.unique_columns)


# ==================================================================================================
# /sql execution
# ==================================================================================================
def _execute(p: _Plan, view: ReadView) -> SqlResult:
    kind, arg = p.project
    limit = p.limit
    if kind == "count":
        n = sum(1 for _ in _pairs(p, view))
        rows: list[Row] = [(n,)] if limit is None or limit > 0 else []
        return SqlResult(p.schema, rows)
    if limit == 0:
        return SqlResult(p.schema, [])
    if kind == "star":
        side: int = arg
        out = (pair[side] for pair in _pairs(p, view))
    else:
        cols: list[tuple[str, _Col]] = arg
        picks = [(c.side, c.index) for _, c in cols]
        out = (tuple(pair[s][i] for s, i in picks) for pair in _pairs(p, view))
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
