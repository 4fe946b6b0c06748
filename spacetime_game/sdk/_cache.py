"""The client cache (protocol.md section 6.2), sans-I/O.

Every row is reference-counted under its BSATN bytes, per query set and in total, so overlapping
subscriptions never duplicate rows and a set that fails or is dropped takes exactly its own rows away.
A server message becomes one :class:`PendingApply`: its rows are decoded in steps (so a big initial
subscription can be spread over several frames), then the whole diff is applied at once and the
resulting :class:`TableDiff` s tell the caller which callbacks to fire: inserts, deletes, and a delete
plus an insert with the same primary key reported as one update. Event-table rows are never stored.
"""

from __future__ import annotations

import gc
import struct
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, filterfalse
from operator import itemgetter
from typing import Any

from .bindings import ModuleBindings, TableBinding
from .protocol import BsatnRowList, EventTableRows, PersistentTableRows, QueryRows, QuerySetUpdate

__all__ = ["ClientCache", "PendingApply", "TableCache", "TableDiff"]

_first = itemgetter(0)
_second = itemgetter(1)

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
        #: The query set whose per-set counts *are* ``counts`` (while it is the table's only set).
        self.alias: int | None = None

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
        keys = list(map(_first, items))
        values = list(map(_second, items))
        for col, index in self.unique.items():
            index.update(zip(map(self._getters[col], values), keys, strict=True))

    def _index_add_lists(self, keys: list[bytes], values: list[Any]) -> None:
        for col, index in self.unique.items():
            index.update(zip(map(self._getters[col], values), keys, strict=True))

    def _index_remove(self, rows: Iterable[Any], replacing: Iterable[Any] = ()) -> None:
        """Drop ``rows`` from the unique indexes; values that ``replacing`` rows bring back (an update
        that keeps its key) are left for :meth:`_index_add_lists` to overwrite."""
        if not self.unique:
            return
        rows = list(rows)
        replacing = list(replacing)
        for col, index in self.unique.items():
            g = self._getters[col]
            pop = index.pop
            back = set(map(g, replacing)) if replacing else ()
            for v in map(g, rows):
                if v not in back:
                    pop(v, None)


@dataclass
class _TableWork:
    table: TableCache
    is_event: bool
    # (query set id, inserts, deletes) as row-bytes lists
    parts: list[tuple[int, list[bytes], list[bytes]]] = field(default_factory=list)
    events: list[bytes] = field(default_factory=list)
    # initial rows not split into per-row bytes yet (a first load can be staged straight from them)
    lazy: list[tuple[int, BsatnRowList]] = field(default_factory=list)

    def materialize(self) -> None:
        for qsid, rl in self.lazy:
            self.parts.append((qsid, rl.rows(), []))
        self.lazy.clear()


class PendingApply:
    """A server message's row changes, decoded step by step and then applied atomically.

    A first load into an empty table (the common big case) is also *staged* step by step: the new
    row dict, counts and unique indexes are built during the steps and swapped in at once by
    :meth:`apply`, so applying a 100,000-row subscription costs almost nothing in the final frame.
    """

    def __init__(
        self, cache: ClientCache, work: dict[str, _TableWork], drop_sets: Iterable[int] = ()
    ) -> None:
        self.cache = cache
        self.work = work
        self.drop_sets = tuple(drop_sets)
        self._todo: list[tuple[TableCache, list[bytes]]] = []
        self._staged: dict[str, _Staged] = {}
        self.decoded: dict[str, dict[bytes, Any]] = {}
        self._rate: float | None = None  # rows decoded per second, measured
        staged_total = 0
        for name, w in work.items():
            tc = w.table
            if (
                not tc.rows
                and not tc.counts
                and not w.is_event
                and not w.parts
                and not w.events
                and len(w.lazy) == 1
            ):
                qsid, rl = w.lazy[0]
                if rl.row_size:
                    st = _Staged(tc, qsid, rl)
                    self._staged[name] = st
                    staged_total += st.total
                    continue
            w.materialize()
            wanted = dict.fromkeys(chain.from_iterable(ins for _, ins, _ in w.parts))
            fresh = list(filterfalse(tc.rows.__contains__, wanted)) if tc.rows else list(wanted)
            if w.events:
                fresh.extend(w.events)
            if fresh:
                self._todo.append((tc, fresh))
        self.total = sum(len(k) for _, k in self._todo) + staged_total
        self.done_rows = 0

    @property
    def progress(self) -> float:
        """Fraction of the rows decoded so far (1.0 when ready to apply)."""
        return 1.0 if self.total == 0 else self.done_rows / self.total

    @property
    def ready(self) -> bool:
        """True when every row is decoded."""
        return not self._todo and all(st.done for st in self._staged.values())

    def _chunk(self, deadline: float | None) -> int | None:
        if deadline is None:
            return None
        if self._rate is None:
            return 1024  # measure first
        left = deadline - time.perf_counter()
        return max(256, min(65536, int(self._rate * left * 0.8)))

    def step(self, deadline: float | None = None) -> bool:
        """Decode rows until ``deadline`` (a ``time.perf_counter()`` value) or until done; True when done.

        The cyclic garbage collector is paused meanwhile: row objects hold no cycles, and a collection
        triggered by a burst of new rows would otherwise cost more than decoding them."""
        if not gc.isenabled():
            return self._step(deadline)
        before = self.done_rows
        gc.disable()
        try:
            return self._step(deadline)
        finally:
            gc.enable()
            if self.done_rows - before >= 2048:
                # collect the young generation now, while it holds only this chunk: the new row tuples
                # get untracked and cost nothing later, instead of one long pause in a later frame
                gc.collect(0)

    def _step(self, deadline: float | None) -> bool:
        for st in self._staged.values():
            while not st.done:
                t0 = time.perf_counter()
                n = st.step(self._chunk(deadline))
                self._measure(n, t0)
                self.done_rows += n
                if deadline is not None and time.perf_counter() >= deadline:
                    return False
        while self._todo:
            tc, keys = self._todo[0]
            limit = self._chunk(deadline)
            if limit is None or len(keys) <= limit:
                take, rest = keys, None
            else:
                take, rest = keys[:limit], keys[limit:]
            t0 = time.perf_counter()
            codec = tc.binding.codec
            if codec.fixed_size and len(take) > 1:
                values = codec.decode_fixed(b"".join(take))
            else:
                values = [codec.decode(k) for k in take]
            self.decoded.setdefault(tc.name, {}).update(zip(take, values, strict=True))
            self._measure(len(take), t0)
            self.done_rows += len(take)
            if rest:
                self._todo[0] = (tc, rest)
            else:
                self._todo.pop(0)
            if deadline is not None and time.perf_counter() >= deadline:
                break
        return self.ready

    def _measure(self, n: int, t0: float) -> None:
        dt = time.perf_counter() - t0
        if n >= 256 and dt > 0:
            rate = n / dt
            self._rate = rate if self._rate is None else 0.5 * (self._rate + rate)

    def apply(self) -> list[TableDiff]:
        """Apply the whole diff (decoding what is left) and return the events per table."""
        self.step(None)
        return self.cache._apply(self)


class _Staged:
    """A first load into an empty table, decoded and indexed chunk by chunk straight from the row
    list's bytes (``FixedSize`` rows need no splitting up front)."""

    def __init__(self, tc: TableCache, query_set_id: int, rl: BsatnRowList) -> None:
        self.tc = tc
        self.query_set_id = query_set_id
        self.rl = rl
        size = rl.row_size or 0
        if size <= 0 or len(rl.rows_data) % size:
            rl.rows()  # raises the DecodeError that describes the bad hint
        self.size = size
        self.total = len(rl.rows_data) // size
        self.pos = 0
        self.rows: dict[bytes, Any] = {}
        self.counts: dict[bytes, int] = {}
        self.values: list[Any] = []
        self.index: dict[str, dict[Any, bytes]] = {c: {} for c in tc.unique}
        self._split = struct.Struct(f"{size}s").iter_unpack

    @property
    def done(self) -> bool:
        return self.pos >= self.total

    def step(self, limit: int | None) -> int:
        """Decode up to ``limit`` rows (all with None); returns how many."""
        end = self.total if limit is None else min(self.total, self.pos + limit)
        data = self.rl.rows_data[self.pos * self.size : end * self.size]
        keys = list(map(_first, self._split(data)))
        codec = self.tc.binding.codec
        if codec.fixed_size == self.size:
            values = codec.decode_fixed(data)
        else:
            values = [codec.decode(k) for k in keys]
        self.rows.update(zip(keys, values, strict=True))
        self.counts.update(dict.fromkeys(keys, 1))
        self.values.extend(values)
        for col, index in self.index.items():
            index.update(zip(map(self.tc._getters[col], values), keys, strict=True))
        n = end - self.pos
        self.pos = end
        return n

    def swap_in(self) -> bool:
        """Make the staged rows the table's rows (only if the table is still empty and the rows were
        all distinct); False means: take the general path instead."""
        tc = self.tc
        if tc.rows or tc.counts or len(self.rows) != len(self.values):
            return False
        tc.rows = self.rows
        tc.counts = self.counts
        tc.unique = self.index
        return True


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
            if w is not None and len(t.rows):
                w.lazy.append((query_set_id, t.rows))
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
            if qs.query_set_id not in self.sets:
                continue  # a set dropped here (replaced, failed) whose updates were still in flight
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
            staged = p._staged.get(name)
            if staged is not None:
                if staged.swap_in():
                    # the only set holding this table: its counts are the table's counts (no copy)
                    self.sets.setdefault(staged.query_set_id, {})[name] = tc.counts
                    tc.alias = staged.query_set_id
                    diffs.append(TableDiff(name, inserts=staged.values))
                    continue
                p.decoded[name] = staged.rows  # the table filled meanwhile: take the general path
                w.materialize()
            decoded = p.decoded.setdefault(name, {})
            diff = TableDiff(name)
            if w.events:
                diff.events = [decoded[k] for k in w.events]
            if not w.is_event:
                self._apply_table(tc, w, decoded, diff)
            if diff:
                diffs.append(diff)
        for qsid in p.drop_sets:
            for table in self.sets.pop(qsid, {}):
                held = self.tables.get(table)
                if held is not None and held.alias == qsid:
                    held.alias = None
        return diffs

    def _per(self, qsid: int, tc: TableCache) -> dict[bytes, int]:
        """The counts of table ``tc`` in query set ``qsid``. While one set alone holds a table its
        counts are the table's own dict (no second bookkeeping); a second set gets them split."""
        sets = self.sets.setdefault(qsid, {})
        per = sets.get(tc.name)
        if per is not None:
            return per
        if tc.alias is None and not tc.counts:
            sets[tc.name] = tc.counts
            tc.alias = qsid
            return tc.counts
        if tc.alias is not None and tc.alias != qsid:
            self.sets[tc.alias][tc.name] = dict(tc.counts)
            tc.alias = None
        per = sets[tc.name] = {}
        return per

    def _apply_table(self, tc: TableCache, w: _TableWork, decoded: dict[bytes, Any], diff: TableDiff) -> None:
        counts = tc.counts
        rows = tc.rows
        born: list[bytes] = []
        died: list[bytes] = []
        # inserts first, then deletes (protocol.md 6.2 item 3). Each has a bulk path (C-level dict
        # operations) for the usual case: distinct rows that are all new / all held once.
        for qsid, ins, _ in w.parts:
            if not ins:
                continue
            per = self._per(qsid, tc)
            alias = per is counts
            fresh = dict.fromkeys(ins, 1)
            # (views on both sides, so that isdisjoint walks the short one, not the 100,000-row table)
            if (
                len(fresh) == len(ins)
                and fresh.keys().isdisjoint(counts.keys())
                and (alias or fresh.keys().isdisjoint(per.keys()))
            ):
                counts.update(fresh)
                if not alias:
                    per.update(fresh)
                born.extend(ins)
                continue
            cget, pget = counts.get, per.get
            for k in ins:
                c = cget(k, 0)
                counts[k] = c + 1
                if not alias:
                    per[k] = pget(k, 0) + 1
                if c == 0:
                    born.append(k)
        for qsid, _, dels in w.parts:
            if not dels:
                continue
            per = self._per(qsid, tc)
            alias = per is counts
            held: list[Any] = list(map(counts.get, dels))  # one lookup per row; None = not held
            if (
                None not in held
                and max(held) == 1
                and len(set(dels)) == len(dels)
                and (alias or (per.keys() >= set(dels) and max(map(per.__getitem__, dels)) == 1))
            ):
                _consume(map(counts.pop, dels))
                if not alias:
                    _consume(map(per.pop, dels))
                died.extend(dels)
                continue
            cget, pget = counts.get, per.get
            for k in dels:
                c = cget(k, 0)
                if c <= 0:
                    continue  # a delete of a row we do not have: ignore (no spurious event)
                if not alias:
                    pc = pget(k, 0)
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
        if born and not decoded.keys() >= set(born):  # rows that became new after this apply was staged
            codec = tc.binding.codec
            for k in born:
                if k not in decoded:
                    decoded[k] = codec.decode(k)
        new_values = list(map(decoded.__getitem__, born))
        old_values = list(map(rows.pop, died))  # removals first ...
        tc._index_remove(old_values, new_values)
        rows.update(zip(born, new_values, strict=True))  # ... then additions
        tc._index_add_lists(born, new_values)
        if tc.pk_getter is not None and new_values and old_values:
            pk = tc.pk_getter
            olds = dict(zip(map(pk, old_values), old_values, strict=True))
            new_pks = list(map(pk, new_values))
            if len(new_pks) == len(olds) and olds.keys() == set(new_pks):  # all updates (bulk)
                diff.updates = list(zip(map(olds.__getitem__, new_pks), new_values, strict=True))
                return
            inserts = []
            pop = olds.pop
            for key, r in zip(new_pks, new_values, strict=True):
                old = pop(key, None)
                if old is None:
                    inserts.append(r)
                else:
                    diff.updates.append((old, r))
            diff.inserts = inserts
            diff.deletes = list(olds.values())
        else:
            diff.inserts = new_values
            diff.deletes = old_values


_consume: Callable[[Iterable[Any]], None] = deque(maxlen=0).extend


def _rows(rl: BsatnRowList) -> list[bytes]:
    return rl.rows() if len(rl) else []
