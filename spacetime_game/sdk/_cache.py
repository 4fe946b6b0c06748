"""The client cache (docs/protocol.md section 6.2), sans-I/O: every subscribed table of a connection,
and the atomic apply of a staged server message.

Every row is reference-counted under its *key* (see :mod:`._tables`), per query set and in total, so
overlapping subscriptions never duplicate rows and a set that fails or is dropped takes exactly its own
rows away. While a single query set holds a table its per-set counts *are* the table's totals
(``TableCache.alias``; ``ClientCache.sets`` then maps the table to a read-only view), so the common
transaction (one set, new rows in, held rows out) costs one dict operation per row and side.
A server message becomes one :class:`PendingApply` (see :mod:`._staging`): its rows are decoded in steps,
then :meth:`ClientCache.apply_pending` applies the whole diff at once and the resulting :class:`TableDiff` s
tell the caller which callbacks to fire: inserts, deletes, and a delete plus an insert with the same
primary key reported as one update. Event-table rows are never stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from itertools import chain, compress, repeat
from operator import not_
from typing import Any

from ._keys import as_rows, rows_of
from ._staging import PendingApply, TableWork
from ._tables import TableCache, TableDiff, TotalCounts, decode_row_values
from .bindings import ModuleBindings
from .protocol import BsatnRowList, EventTableRows, PersistentTableRows, QueryRows, QuerySetUpdate

__all__ = ["ClientCache"]

log = logging.getLogger("spacetime_game.sdk.cache")

_MISSING: Any = object()


class ClientCache:
    """Every subscribed table of one connection, with per-query-set reference counts."""

    def __init__(self, module: ModuleBindings) -> None:
        self.module = module
        self.tables: dict[str, TableCache] = {name: TableCache(tb) for name, tb in module.tables.items()}
        self._unknown: set[str] = set()
        # query set id -> table -> row bytes -> count (the table's ``view`` for its ``alias`` set)
        self.sets: dict[int, dict[str, Mapping[bytes, int]]] = {}

    def table(self, name: str) -> TableCache:
        """The cache of table ``name`` (KeyError naming the known tables otherwise)."""
        try:
            return self.tables[name]
        except KeyError:
            raise KeyError(f"unknown table {name!r}; the bindings have {sorted(self.tables)}") from None

    # ----- building pending applies from messages ---------------------------------------------------
    def _work(self, work: dict[str, TableWork], table: str) -> TableWork | None:
        w = work.get(table)
        if w is None:
            tc = self.tables.get(table)
            if tc is None:  # a table these bindings do not know (they are older than the module)
                if table not in self._unknown:
                    self._unknown.add(table)
                    log.warning(
                        "the server sent rows of table %r, which the bindings do not have; they are "
                        "ignored (regenerate the bindings with `spacetime-game generate`)",
                        table,
                    )
                return None
            w = work[table] = TableWork(tc)
        return w

    def subscribe_applied(
        self, query_set_id: int, rows: QueryRows, replace: Iterable[int] = ()
    ) -> PendingApply:
        """The initial rows of a query set. Sets in ``replace`` lose the rows they hold now, in the same
        atomic diff: rows held by both stay without events, so a resubscribe (``replace`` holding the set
        itself, after a reconnect) or a replacing ``subscribe`` reports only what really changed."""
        work: dict[str, TableWork] = {}
        for t in rows.tables:
            w = self._work(work, t.table)
            if w is not None and len(t.rows):
                w.lazy.append((query_set_id, t.rows))
        replace = tuple(replace)
        for old in replace:
            for table, counts in self.sets.get(old, {}).items():
                w = self._work(work, table)
                if w is not None:
                    w.parts.append((old, [], _held(counts)))
        self.sets.setdefault(query_set_id, {})
        return PendingApply(self, work, drop_sets=tuple(q for q in replace if q != query_set_id))

    def transaction(self, query_sets: Iterable[QuerySetUpdate]) -> PendingApply:
        """The row changes of one transaction, over several query sets."""
        work: dict[str, TableWork] = {}
        sets = self.sets
        for qs in query_sets:
            if qs.query_set_id not in sets:
                continue  # a set dropped here (replaced, failed) whose updates were still in flight
            for tu in qs.tables:
                w = self._work(work, tu.table_name)
                if w is None:
                    continue
                for r in tu.rows:
                    if isinstance(r, PersistentTableRows) and w.is_event:
                        w.events.extend(rows_of(r.inserts))  # (v1 has no event rows: inserts are events)
                    elif isinstance(r, PersistentTableRows):
                        w.parts.append((qs.query_set_id, r.inserts, w.table.keys_of(r.deletes)))
                        if w.table.by_pk:
                            w.deleted.append(r.deletes)
                    elif isinstance(r, EventTableRows):
                        w.events.extend(rows_of(r.events))
        return PendingApply(self, work)

    def drop_set(self, query_set_id: int) -> PendingApply:
        """Remove exactly the rows a query set holds (unsubscribed, or failed after it was applied)."""
        work: dict[str, TableWork] = {}
        for table, counts in self.sets.get(query_set_id, {}).items():
            w = self._work(work, table)
            if w is not None:
                w.parts.append((query_set_id, [], _held(counts)))
        return PendingApply(self, work, drop_sets=(query_set_id,))

    def clear(self) -> PendingApply:
        """Remove every row (as deletes)."""
        work: dict[str, TableWork] = {}
        for qsid in list(self.sets):
            for table, counts in self.sets[qsid].items():
                w = self._work(work, table)
                if w is not None:
                    w.parts.append((qsid, [], _held(counts)))
        return PendingApply(self, work, drop_sets=tuple(self.sets))

    # ----- the atomic apply ----------------------------------------------------------------------------
    def apply_pending(self, p: PendingApply) -> list[TableDiff]:
        """Apply ``p`` (decoded) to the tables and sets atomically; the diffs per table. Called by
        :meth:`PendingApply.apply`, the one way to apply a message."""
        diffs: list[TableDiff] = []
        for name, w in p.work.items():
            tc = w.table
            staged = p.staged(name)
            if staged is not None:
                if (
                    not tc.rows
                    and len(staged.rows) == len(staged.values)
                    and self._alias_to(staged.query_set_id, tc)
                ):
                    # the only set holding this table, every row once: no counts to store at all
                    tc.rows = staged.rows
                    tc.unique = staged.index
                    diffs.append(TableDiff(name, inserts=staged.values))
                    continue
                # the table filled meanwhile (or a row came twice): take the general path
                w.materialize()
                if tc.by_pk:
                    p.decoded[name] = dict(zip(w.parts[-1][1], staged.values, strict=True))
                else:
                    p.decoded[name] = staged.rows
            diff = TableDiff(name)
            if w.events:
                decoded = p.table_decoded(name)
                diff.events = [decoded[k] for k in w.events]
            if not w.is_event and w.parts:
                self._apply_table(tc, w.parts, p, diff, w.deleted)
            if diff:
                diffs.append(diff)
        for qsid in p.drop_sets:
            for table in self.sets.pop(qsid, {}):
                held = self.tables.get(table)
                if held is not None and held.alias == qsid:
                    held.alias = None
        return diffs

    def _alias_to(self, qsid: int, tc: TableCache) -> bool:
        """Make ``qsid`` the only set holding the (empty) table ``tc``, its counts the table's totals.
        Other sets' (necessarily empty) entries for the table are dropped; False if one is not empty."""
        name = tc.name
        entries = [(q, tables) for q, tables in self.sets.items() if name in tables]
        if any(tables[name] for _, tables in entries):
            return False
        for _, tables in entries:
            del tables[name]
        self.sets.setdefault(qsid, {})[name] = tc.view
        tc.alias = qsid
        return True

    def _per(self, qsid: int, tc: TableCache, may_alias: bool) -> None:
        """Give query set ``qsid`` counts for table ``tc``. The first set to hold an empty table (if it
        is the only set in the message, ``may_alias``) uses the table's totals (no second bookkeeping);
        a second set splits them off into a dict of its own."""
        sets = self.sets.setdefault(qsid, {})
        if tc.name in sets:
            return
        if may_alias and not tc.rows and self._alias_to(qsid, tc):
            return
        if tc.alias is not None and tc.alias != qsid:
            self.sets[tc.alias][tc.name] = tc.counts
            tc.alias = None
        sets[tc.name] = {}

    def _apply_table(
        self,
        tc: TableCache,
        parts: list[tuple[int, list[bytes], list[Any]]],
        p: PendingApply,
        diff: TableDiff,
        deleted: list[BsatnRowList] | None = None,
    ) -> None:
        if len(parts) == 1:
            qsid, ins, dels = parts[0]
            self._per(qsid, tc, True)
            if tc.alias == qsid:
                if tc.by_pk:
                    old_rows = deleted[0] if deleted and len(deleted) == 1 else None
                    if self._apply_simple_pk(tc, ins, dels, p, diff, old_rows):
                        return
                elif self._apply_simple(tc, ins, dels, p, diff):
                    return
        else:
            qsids = list(dict.fromkeys([q for q, _, _ in parts]))
            for q in qsids:
                self._per(q, tc, len(qsids) == 1)
            if len(qsids) == 1 and tc.alias == qsids[0]:
                ins = [k for _, i, _ in parts for k in i]
                dels = [k for _, _, d in parts for k in d]
                simple = self._apply_simple_pk if tc.by_pk else self._apply_simple
                if simple(tc, ins, dels, p, diff):
                    return
        parts = [(q, as_rows(ins), dels) for q, ins, dels in parts]
        if tc.by_pk:
            self._apply_counted_pk(tc, parts, p.table_decoded(tc.name), diff)
        else:
            self._apply_counted(tc, parts, p.table_decoded(tc.name), diff)

    def _apply_simple_pk(
        self,
        tc: TableCache,
        ins: list[bytes],
        dels: list[Any],
        p: PendingApply,
        diff: TableDiff,
        old_rows: BsatnRowList | None = None,
    ) -> bool:
        """:meth:`_apply_simple` for a table keyed by its primary key: the table's only set deletes
        distinct keys it holds once and inserts rows with distinct keys that it does not hold (or that
        it deletes in the same message: updates). False (nothing changed) otherwise."""
        rows = tc.rows
        pk = tc.pk_getter
        assert pk is not None
        if ins:
            aligned = p.aligned_values(tc.name, ins)
            new_values = aligned if aligned is not None else _values(tc, ins, p.table_decoded(tc.name))
            new_keys = list(map(pk, new_values))
        else:
            new_values = new_keys = []
        multi = tc.multi
        if multi and not (multi.keys().isdisjoint(dels) and multi.keys().isdisjoint(new_keys)):
            return False
        if new_keys == dels:
            # every deleted row comes back with new contents, in order (the usual update transaction)
            if not dels or (len(dels) > 1 and len(set(dels)) != len(dels)):
                return not dels
            try:
                old_values = list(map(rows.__getitem__, dels))
            except KeyError:
                return False
            if old_rows is not None and len(old_rows) == len(ins):
                # the rows as the server sent them: one C comparison of bytes per row (comparing the values
                # would call the Python-level __eq__ of their Identity and similar columns)
                same = list(map(bytes.__eq__, rows_of(old_rows), as_rows(ins)))
            else:
                same = list(map(tuple.__eq__, old_values, new_values))  # same class: skip its __eq__
            if True in same:  # rows sent again unchanged (a resubscribe): no event, the old row stays
                changed = list(map(not_, same))
                new_keys = list(compress(new_keys, changed))
                old_values = list(compress(old_values, changed))
                new_values = list(compress(new_values, changed))
            rows.update(zip(new_keys, new_values, strict=True))
            for col, index in tc.unique.items():
                tc.index_remove_col(col, old_values, new_values)
                index.update(zip(map(tc.getters[col], new_values), new_keys, strict=True))
            diff.updates_old = old_values
            diff.updates_new = new_values
            return True
        gone = set(dels)
        if len(gone) != len(dels) or not rows.keys() >= gone:
            return False
        if new_keys:
            born = set(new_keys)
            if len(born) != len(new_keys) or not rows.keys().isdisjoint(born - gone):
                return False
        if gone.isdisjoint(new_keys):
            old_values = list(map(rows.pop, dels))
            tc.index_remove(old_values, new_values)
            if new_keys:
                rows.update(zip(new_keys, new_values, strict=True))
                tc.index_add(new_keys, new_values)
            diff.inserts = new_values
            diff.deletes = old_values
            return True
        # pair deletes and inserts by key: updates, and rows sent again unchanged (no event)
        olds = dict(zip(dels, map(rows.__getitem__, dels), strict=True))
        pop = olds.pop
        put_keys: list[Any] = []
        put_values: list[Any] = []
        for k, v in zip(new_keys, new_values, strict=True):
            old = pop(k, _MISSING)
            if old is _MISSING:
                diff.inserts.append(v)
            elif old != v:
                diff.updates_old.append(old)
                diff.updates_new.append(v)
            else:
                continue
            put_keys.append(k)
            put_values.append(v)
        diff.deletes = list(map(rows.pop, olds))
        tc.index_remove([*diff.deletes, *diff.updates_old], put_values)
        rows.update(zip(put_keys, put_values, strict=True))
        tc.index_add(put_keys, put_values)
        return True

    def _apply_simple(
        self, tc: TableCache, ins: list[bytes], dels: list[bytes], p: PendingApply, diff: TableDiff
    ) -> bool:
        """The common case, with one dict operation per row: the table's only set inserts distinct rows
        it does not hold and deletes distinct rows it holds once. False (nothing changed) otherwise."""
        rows = tc.rows
        new_values: list[Any] = []
        if ins:
            if len(ins) > 1 and len(set(ins)) != len(ins):
                return False
            if not rows.keys().isdisjoint(ins):
                return False
            aligned = p.aligned_values(tc.name, ins)
            new_values = aligned if aligned is not None else _values(tc, ins, p.table_decoded(tc.name))
        old_values: list[Any] = []
        if dels:
            multi = tc.multi
            if multi and not multi.keys().isdisjoint(dels):
                return False
            n = len(rows)
            old_values = list(map(rows.pop, dels, repeat(_MISSING)))
            if len(rows) != n - len(dels):  # a row not held, or deleted twice: put back, count them
                for k, v in zip(dels, old_values, strict=True):
                    if v is not _MISSING:
                        rows[k] = v
                return False
        pk = tc.pk_getter
        if pk is not None and old_values and new_values:
            new_pks = list(map(pk, new_values))
            if new_pks == list(map(pk, old_values)):
                # every row updated, in order (the usual shape of an update transaction): the primary
                # key's index keeps its values and only points them at the new rows' keys
                rows.update(zip(ins, new_values, strict=True))
                for col, index in tc.unique.items():
                    if col == tc.pk_column:
                        index.update(zip(new_pks, ins, strict=True))
                    else:
                        tc.index_remove_col(col, old_values, new_values)
                        index.update(zip(map(tc.getters[col], new_values), ins, strict=True))
                diff.updates_old = old_values
                diff.updates_new = new_values
                return True
        tc.index_remove(old_values, new_values)
        if ins:
            rows.update(zip(ins, new_values, strict=True))
            tc.index_add(ins, new_values)
        _pair(tc, old_values, new_values, diff)
        return True

    def _apply_counted(
        self,
        tc: TableCache,
        parts: list[tuple[int, list[bytes], list[Any]]],
        decoded: dict[bytes, Any],
        diff: TableDiff,
    ) -> None:
        """The general case: per-row counts, per set and in total, over every part of the message."""
        born, died, _ = self._count(tc, parts)
        rows = tc.rows
        new_values = _values(tc, born, decoded)
        old_values = list(map(rows.pop, died))  # removals first ...
        tc.index_remove(old_values, new_values)
        rows.update(zip(born, new_values, strict=True))  # ... then additions
        tc.index_add(born, new_values)
        _pair(tc, old_values, new_values, diff)

    def _apply_counted_pk(
        self,
        tc: TableCache,
        parts: list[tuple[int, list[bytes], list[Any]]],
        decoded: dict[bytes, Any],
        diff: TableDiff,
    ) -> None:
        """:meth:`_apply_counted` for a table keyed by its primary key. A key held before and after the
        message whose last insert brought other contents is an update."""
        pk = tc.pk_getter
        assert pk is not None
        latest: dict[Any, Any] = {}  # key -> the value of its last insert in this message
        keyed: list[tuple[int, list[Any], list[Any]]] = []
        for qsid, ins, dels in parts:
            values = _values(tc, ins, decoded) if ins else []
            keys = list(map(pk, values))
            latest.update(zip(keys, values, strict=True))
            keyed.append((qsid, keys, dels))
        born, died, kept = self._count(tc, keyed)
        rows = tc.rows
        changed_keys: list[Any] = []
        changed_old: list[Any] = []
        changed_new: list[Any] = []
        for k in kept:
            new = latest.get(k, _MISSING)
            if new is _MISSING:
                continue
            old = rows[k]
            if new == old:  # contents compared by value (as the row classes compare)
                continue
            changed_keys.append(k)
            changed_old.append(old)
            changed_new.append(new)
        new_values = list(map(latest.__getitem__, born))
        old_values = list(map(rows.pop, died))  # removals first ...
        tc.index_remove([*old_values, *changed_old], [*new_values, *changed_new])
        rows.update(zip(born, new_values, strict=True))  # ... then additions
        rows.update(zip(changed_keys, changed_new, strict=True))
        tc.index_add([*born, *changed_keys], [*new_values, *changed_new])
        diff.inserts = new_values
        diff.deletes = old_values
        diff.updates_old = changed_old
        diff.updates_new = changed_new

    def _count(
        self, tc: TableCache, parts: list[tuple[int, list[Any], list[Any]]]
    ) -> tuple[list[Any], list[Any], list[Any]]:
        """Count the inserted and deleted keys of ``parts`` (per set and in total, updating ``multi``
        and the sets' counts); returns the keys that appear, those that go, and the held keys that
        were touched and stay (in this order)."""
        rows, multi = tc.rows, tc.multi
        mget = multi.get
        touched = dict.fromkeys(chain.from_iterable(chain(ins, dels) for _, ins, dels in parts))
        cnt = {k: (mget(k, 1) if k in rows else 0) for k in touched}
        born: list[Any] = []
        died: list[Any] = []
        # inserts first, then deletes (docs/protocol.md section 6.2, item 3)
        for qsid, ins, _ in parts:
            if not ins:
                continue
            per = None if tc.alias == qsid else self.sets[qsid][tc.name]
            assert per is None or isinstance(per, dict)
            for k in ins:
                c = cnt[k]
                cnt[k] = c + 1
                if per is not None:
                    per[k] = per.get(k, 0) + 1
                if c == 0:
                    born.append(k)
        for qsid, _, dels in parts:
            if not dels:
                continue
            per = None if tc.alias == qsid else self.sets[qsid][tc.name]
            assert per is None or isinstance(per, dict)
            for k in dels:
                c = cnt[k]
                if c <= 0:
                    continue  # a delete of a row we do not have: ignore (no spurious event)
                if per is not None:
                    pc = per.get(k, 0)
                    if pc > 1:
                        per[k] = pc - 1
                    elif pc == 1:
                        del per[k]
                cnt[k] = c - 1
                if c == 1:
                    died.append(k)
        for k, c in cnt.items():
            if c > 1:
                multi[k] = c
            elif multi and k in multi:
                del multi[k]
        # a row born and died within the message cancels out
        if born and died:
            both = set(born).intersection(died)
            if both:
                born = [k for k in born if k not in both]
                died = [k for k in died if k not in both]
        kept = [k for k, c in cnt.items() if c > 0 and k in rows] if tc.by_pk else []
        return born, died, kept


def _values(tc: TableCache, keys: list[bytes], decoded: dict[bytes, Any]) -> list[Any]:
    """The decoded rows of ``keys`` (decoding those that became new after the apply was staged)."""
    try:
        return list(map(decoded.__getitem__, keys))
    except KeyError:
        missing = [k for k in dict.fromkeys(keys) if k not in decoded]
        decoded.update(zip(missing, decode_row_values(tc, missing), strict=True))
        return list(map(decoded.__getitem__, keys))


def _pair(tc: TableCache, old_values: list[Any], new_values: list[Any], diff: TableDiff) -> None:
    """Report the removed and added rows: as updates where a primary key is both removed and added."""
    if tc.pk_getter is not None and new_values and old_values:
        pk = tc.pk_getter
        olds = dict(zip(map(pk, old_values), old_values, strict=True))
        new_pks = list(map(pk, new_values))
        if len(new_pks) == len(olds) and olds.keys() == set(new_pks):  # all updates (bulk)
            diff.updates_old = list(map(olds.__getitem__, new_pks))
            diff.updates_new = new_values
            return
        inserts = []
        pop = olds.pop
        for key, r in zip(new_pks, new_values, strict=True):
            old = pop(key, None)
            if old is None:
                inserts.append(r)
            else:
                diff.updates_old.append(old)
                diff.updates_new.append(r)
        diff.inserts = inserts
        diff.deletes = list(olds.values())
    else:
        diff.inserts = new_values
        diff.deletes = old_values


def _held(counts: Mapping[bytes, int]) -> list[bytes]:
    """Each row of a set's counts, as often as the set holds it (the deletes that drop them all)."""
    if isinstance(counts, TotalCounts) and not counts.table.multi:
        return list(counts.table.rows)
    return [k for k, n in counts.items() for _ in range(n)]
