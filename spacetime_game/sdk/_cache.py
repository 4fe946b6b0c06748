"""The client cache (protocol.md section 6.2), sans-I/O.

Every row is reference-counted under its BSATN bytes, per query set and in total, so overlapping
subscriptions never duplicate rows and a set that fails or is dropped takes exactly its own rows away.
A server message becomes one :class:`PendingApply`: its rows are decoded in steps (so a big initial
subscription can be spread over several frames), then the whole diff is applied at once and the
resulting :class:`TableDiff` s tell the caller which callbacks to fire: inserts, deletes, and a delete
plus an insert with the same primary key reported as one update. Event-table rows are never stored.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from .bindings import ModuleBindings, TableBinding
from .protocol import BsatnRowList, EventTableRows, PersistentTableRows, QueryRows, QuerySetUpdate

__all__ = ["ClientCache", "PendingApply", "TableCache", "TableDiff"]

#: Rows decoded per step when a budget is given (a step takes well under a millisecond).
DECODE_CHUNK = 8192


@dataclass
class TableDiff:
    """What one message changed in one table (events to fire, after the whole message is applied)."""

    table: str
    inserts: list[Any] = field(default_factory=list)
    deletes: list[Any] = field(default_factory=list)
    updates: list[tuple[Any, Any]] = field(default_factory=list)  # (old, new), paired by primary key
    events: list[Any] = field(default_factory=list)  # event-table rows (never stored)

    def __bool__(self) -> bool:
        return bool(self.inserts or self.deletes or self.updates or self.events)


class TableCache:
    """The rows of one table, with unique-column indexes."""

    def __init__(self, binding: TableBinding) -> None:
        self.binding = binding
        self.name = binding.name
        self.rows: dict[bytes, Any] = {}
        self.counts: dict[bytes, int] = {}
        self.unique: dict[str, dict[Any, bytes]] = {c: {} for c in binding.unique_columns}
        self._getters = {c: itemgetter(binding.column_index(c)) for c in binding.unique_columns}
        pk = binding.primary_key
        self.pk_getter = itemgetter(binding.column_index(pk)) if pk else None

    def __len__(self) -> int:
        return len(self.rows)

    def iter(self) -> Iterator[Any]:
        """The rows (a snapshot, safe while callbacks change the cache)."""
        return iter(list(self.rows.values()))

    def find(self, column: str, value: Any) -> Any | None:
        """The row whose unique ``column`` equals ``value`` (an index lookup)."""
        index = self.unique.get(column)
        if index is None:
            raise KeyError(f"column {column!r} of table {self.name!r} is not unique; use filter")
        key = index.get(value)
        return self.rows.get(key) if key is not None else None

    def filter(self, column: str, value: Any) -> Iterator[Any]:
        """The rows whose ``column`` equals ``value``."""
        if column in self.unique:
            row = self.find(column, value)
            return iter([row] if row is not None else [])
        get = itemgetter(self.binding.column_index(column))
        return iter([r for r in self.rows.values() if get(r) == value])

    def _index_add(self, items: Iterable[tuple[bytes, Any]]) -> None:
        if not self.unique:
            return
        items = list(items)
        for col, index in self.unique.items():
            g = self._getters[col]
            index.update(zip(map(g, (r for _, r in items)), (k for k, _ in items), strict=True))

    def _index_remove(self, rows: Iterable[Any]) -> None:
        if not self.unique:
            return
        rows = list(rows)
        for col, index in self.unique.items():
            g = self._getters[col]
            for r in rows:
                index.pop(g(r), None)


@dataclass
class _TableWork:
    table: TableCache
    is_event: bool
    # (query set id, inserts, deletes) as row-bytes lists
    parts: list[tuple[int, list[bytes], list[bytes]]] = field(default_factory=list)
    events: list[bytes] = field(default_factory=list)


class PendingApply:
    """A server message's row changes, decoded step by step and then applied atomically."""

    def __init__(
        self, cache: ClientCache, work: dict[str, _TableWork], drop_sets: Iterable[int] = ()
    ) -> None:
        self.cache = cache
        self.work = work
        self.drop_sets = tuple(drop_sets)
        # rows that need decoding: (table, key) in order, and decoded objects by key
        self._todo: list[tuple[TableCache, list[bytes]]] = []
        for w in work.values():
            tc = w.table
            fresh: list[bytes] = []
            seen: set[bytes] = set()
            for _, ins, _ in w.parts:
                for k in ins:
                    if k not in tc.rows and k not in seen:
                        seen.add(k)
                        fresh.append(k)
            if w.events:
                fresh.extend(w.events)
            if fresh:
                self._todo.append((tc, fresh))
        self.total = sum(len(k) for _, k in self._todo)
        self.done_rows = 0
        self.decoded: dict[str, dict[bytes, Any]] = {name: {} for name in work}

    @property
    def progress(self) -> float:
        """Fraction of the rows decoded so far (1.0 when ready to apply)."""
        return 1.0 if self.total == 0 else self.done_rows / self.total

    @property
    def ready(self) -> bool:
        """True when every row is decoded."""
        return not self._todo

    def step(self, deadline: float | None = None) -> bool:
        """Decode rows until ``deadline`` (a ``time.perf_counter()`` value) or until done; True when done."""
        while self._todo:
            tc, keys = self._todo[0]
            take = keys if deadline is None else keys[:DECODE_CHUNK]
            rest = [] if deadline is None else keys[DECODE_CHUNK:]
            codec = tc.binding.codec
            size = codec.fixed_size
            if size and len(take) > 1:
                values = codec.decode_fixed(b"".join(take))
            else:
                values = [codec.decode(k) for k in take]
            self.decoded[tc.name].update(zip(take, values, strict=True))
            self.done_rows += len(take)
            if rest:
                self._todo[0] = (tc, rest)
            else:
                self._todo.pop(0)
            if deadline is not None and time.perf_counter() >= deadline:
                break
        return not self._todo

    def apply(self) -> list[TableDiff]:
        """Apply the whole diff (decoding what is left) and return the events per table."""
        self.step(None)
        return self.cache._apply(self)


class ClientCache:
    """Every subscribed table of one connection, with per-query-set reference counts."""

    def __init__(self, module: ModuleBindings) -> None:
        self.module = module
        self.tables: dict[str, TableCache] = {name: TableCache(tb) for name, tb in module.tables.items()}
        # query set id -> table -> row bytes -> count
        self.sets: dict[int, dict[str, dict[bytes, int]]] = {}

    def table(self, name: str) -> TableCache:
        """The cache of table ``name`` (KeyError naming the known tables otherwise)."""
        try:
            return self.tables[name]
        except KeyError:
            raise KeyError(f"unknown table {name!r}; the bindings have {sorted(self.tables)}") from None

    # ----- building pending applies from messages ---------------------------------------------------
    def _work(self, work: dict[str, _TableWork], table: str) -> _TableWork | None:
        w = work.get(table)
        if w is None:
            tc = self.tables.get(table)
            if tc is None:
                return None  # a table these bindings do not know: ignored (logged by the client)
            w = work[table] = _TableWork(tc, tc.binding.is_event)
        return w

    def subscribe_applied(
        self, query_set_id: int, rows: QueryRows, replace: Iterable[int] = ()
    ) -> PendingApply:
        """The initial rows of a query set. Sets in ``replace`` lose the rows they hold now, in the same
        atomic diff: rows held by both stay without events, so a resubscribe (``replace`` holding the set
        itself, after a reconnect) or a replacing ``subscribe`` reports only what really changed."""
        work: dict[str, _TableWork] = {}
        for t in rows.tables:
            w = self._work(work, t.table)
            if w is not None:
                w.parts.append((query_set_id, t.rows.rows(), []))
        replace = tuple(replace)
        for old in replace:
            for table, counts in self.sets.get(old, {}).items():
                w = self._work(work, table)
                if w is not None:
                    w.parts.append((old, [], [k for k, n in counts.items() for _ in range(n)]))
        self.sets.setdefault(query_set_id, {})
        return PendingApply(self, work, drop_sets=tuple(q for q in replace if q != query_set_id))

    def transaction(self, query_sets: Iterable[QuerySetUpdate]) -> PendingApply:
        """The row changes of one transaction, over several query sets."""
        work: dict[str, _TableWork] = {}
        for qs in query_sets:
            for tu in qs.tables:
                w = self._work(work, tu.table_name)
                if w is None:
                    continue
                for r in tu.rows:
                    if isinstance(r, PersistentTableRows):
                        w.parts.append((qs.query_set_id, _rows(r.inserts), _rows(r.deletes)))
                    elif isinstance(r, EventTableRows):
                        w.events.extend(_rows(r.events))
        return PendingApply(self, work)

    def drop_set(self, query_set_id: int) -> PendingApply:
        """Remove exactly the rows a query set holds (unsubscribed, or failed after it was applied)."""
        work: dict[str, _TableWork] = {}
        for table, counts in self.sets.get(query_set_id, {}).items():
            w = self._work(work, table)
            if w is not None:
                dels = [k for k, n in counts.items() for _ in range(n)]
                w.parts.append((query_set_id, [], dels))
        return PendingApply(self, work, drop_sets=(query_set_id,))

    def clear(self) -> PendingApply:
        """Remove every row (as deletes)."""
        work: dict[str, _TableWork] = {}
        for qsid in list(self.sets):
            for table, counts in self.sets[qsid].items():
                w = self._work(work, table)
                if w is not None:
                    w.parts.append((qsid, [], [k for k, n in counts.items() for _ in range(n)]))
        return PendingApply(self, work, drop_sets=tuple(self.sets))

    # ----- the atomic apply ----------------------------------------------------------------------------
    def _apply(self, p: PendingApply) -> list[TableDiff]:
        diffs: list[TableDiff] = []
        for name, w in p.work.items():
            tc = w.table
            decoded = p.decoded[name]
            diff = TableDiff(name)
            if w.events:
                diff.events = [decoded[k] for k in w.events]
            if not w.is_event:
                self._apply_table(tc, w, decoded, diff)
            if diff:
                diffs.append(diff)
        for qsid in p.drop_sets:
            self.sets.pop(qsid, None)
        return diffs

    def _apply_table(self, tc: TableCache, w: _TableWork, decoded: dict[bytes, Any], diff: TableDiff) -> None:
        counts = tc.counts
        rows = tc.rows
        born: list[bytes] = []
        died: list[bytes] = []
        # inserts first, then deletes (protocol.md 6.2 item 3)
        for qsid, ins, _ in w.parts:
            if not ins:
                continue
            per = self.sets.setdefault(qsid, {}).setdefault(tc.name, {})
            if not counts and not per and len(set(ins)) == len(ins):
                # the common first load: every row new and unique (bulk, C-level)
                counts.update(dict.fromkeys(ins, 1))
                per.update(dict.fromkeys(ins, 1))
                born.extend(ins)
                continue
            for k in ins:
                c = counts.get(k, 0)
                counts[k] = c + 1
                per[k] = per.get(k, 0) + 1
                if c == 0:
                    born.append(k)
        for qsid, _, dels in w.parts:
            if not dels:
                continue
            per = self.sets.setdefault(qsid, {}).setdefault(tc.name, {})
            for k in dels:
                c = counts.get(k, 0)
                if c <= 0:
                    continue  # a delete of a row we do not have: ignore (no spurious event)
                pc = per.get(k, 0)
                if pc > 1:
                    per[k] = pc - 1
                elif pc == 1:
                    del per[k]
                if c == 1:
                    del counts[k]
                    died.append(k)
                else:
                    counts[k] = c - 1
        # a row born and died within the message cancels out
        if born and died:
            both = set(born).intersection(died)
            if both:
                born = [k for k in born if k not in both]
                died = [k for k in died if k not in both]
        if any(k not in decoded for k in born):  # rows that became new after this apply was staged
            codec = tc.binding.codec
            for k in born:
                if k not in decoded:
                    decoded[k] = codec.decode(k)
        new_rows = [(k, decoded[k]) for k in born]
        old_rows = [(k, rows[k]) for k in died]
        # removals from the indexes first, then additions
        for k, _ in old_rows:
            del rows[k]
        tc._index_remove(r for _, r in old_rows)
        rows.update(new_rows)
        tc._index_add(new_rows)
        if tc.pk_getter is not None and new_rows and old_rows:
            pk = tc.pk_getter
            olds = {pk(r): r for _, r in old_rows}
            inserts = []
            for _, r in new_rows:
                old = olds.pop(pk(r), None)
                if old is None:
                    inserts.append(r)
                else:
                    diff.updates.append((old, r))
            diff.inserts = inserts
            diff.deletes = list(olds.values())
        else:
            diff.inserts = [r for _, r in new_rows]
            diff.deletes = [r for _, r in old_rows]


def _rows(rl: BsatnRowList) -> list[bytes]:
    return rl.rows() if len(rl) else []
