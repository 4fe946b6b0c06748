"""Subscription queries: compiled from a plan, evaluated whole (``SubscribeApplied``) and maintained
incrementally: :meth:`Query.delta` turns the rows one transaction inserted and deleted into the
result rows added and removed (what a subscriber gets per transaction), with index lookups only."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...sdk import Identity
from ...sdk.schema import ModuleSchema
from ._common import (
    _NO_ROW,
    DEFAULT_SQL_LIMITS,
    ReadView,
    Row,
    SqlError,
    SqlLimits,
    _guard,
    _Key,
    _Pred,
    _true,
)
from ._keys import _is_unique, _row_key, _value_key
from ._parse import _parse
from ._plan import _plan
from ._predicate import _all


@dataclass(frozen=True)
class RowDelta:
    """The rows one transaction inserted into and deleted from one table (the input of
    :meth:`Query.delta`), or added to and removed from one query's result (its output).

    ``inserts`` are rows present after the transaction, ``deletes`` rows present before it. A row in
    both lists was deleted and inserted again unchanged (it is present before and after).
    """

    inserts: Sequence[Row] = ()
    deletes: Sequence[Row] = ()


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

    def delta(self, after: ReadView, changes: Mapping[str, RowDelta]) -> RowDelta:
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

    def delta(self, after: ReadView, changes: Mapping[str, RowDelta]) -> RowDelta:
        """The changed rows that pass the WHERE (rows deleted and re-inserted unchanged cancel)."""
        ch = changes.get(self.table)
        if ch is None:
            return RowDelta([], [])
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

    def delta(self, after: ReadView, changes: Mapping[str, RowDelta]) -> RowDelta:
        """The result rows added and removed, from the changed rows of both tables and index lookups.

        The state before the transaction is derived where needed: a table before is the table after,
        minus the inserted rows, plus the deleted rows.
        """
        ca = changes.get(self.table)
        cb = changes.get(self._other)
        if ca is None and cb is None:
            return RowDelta([], [])
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
            return RowDelta([], [])

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
        return RowDelta(inserts, deletes)


def _cancel(ins: list[Row], dels: list[Row], key: _Key) -> RowDelta:
    """Drop duplicates, and rows present in both lists."""
    if not ins and not dels:
        return RowDelta([], [])
    ik = {key(r): r for r in ins}
    dk = {key(r): r for r in dels}
    if ik and dk:
        both = ik.keys() & dk.keys()
        if both:
            return RowDelta(
                [r for k, r in ik.items() if k not in both], [r for k, r in dk.items() if k not in both]
            )
    return RowDelta(list(ik.values()), list(dk.values()))


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
