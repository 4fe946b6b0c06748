"""The client cache (docs/protocol.md section 6.2), sans-I/O.

Every row is reference-counted under its *key*, per query set and in total, so overlapping subscriptions
never duplicate rows and a set that fails or is dropped takes exactly its own rows away. A row's key is its
BSATN bytes, except in a table with a primary key, where it is the primary key's value (as in the official
TypeScript SDK): the server never holds two rows with one primary key, a delete names its row by the key
(cut straight from the row bytes for fixed-width layouts), and an insert of a key already held with other
contents replaces the row and is reported as an update. Keyed by the primary key, the common update
touches less memory (no bytes object per row, no separate primary-key index).
The counts are stored sparsely: a cached row is held at least once, so only rows held more than once have
a stored total (``TableCache.multi``), and while a single query set holds a table its per-set counts *are*
the totals (``TableCache.alias``; ``ClientCache.sets`` then maps the table to a read-only view). The
common transaction (one set, new rows in, held rows out) thus costs one dict operation per row and side.
A server message becomes one :class:`PendingApply`: its rows are decoded in steps (so a big initial
subscription can be spread over several frames), then the whole diff is applied at once and the
resulting :class:`TableDiff` s tell the caller which callbacks to fire: inserts, deletes, and a delete
plus an insert with the same primary key reported as one update. Event-table rows are never stored.
"""

from __future__ import annotations

import gc
import logging
import struct
import sys
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain, compress, filterfalse, repeat
from operator import itemgetter, not_
from typing import Any

from .bindings import ModuleBindings, TableBinding
from .protocol import BsatnRowList, EventTableRows, PersistentTableRows, QueryRows, QuerySetUpdate
from .sats import Codec, PrimitiveType, ProductType, compile_codec

__all__ = ["ClientCache", "PendingApply", "TableCache", "TableDiff"]

log = logging.getLogger("spacetime_game.sdk.cache")

_first = itemgetter(0)

#: Rows decoded per step when a budget is given (a step takes well under a millisecond).
DECODE_CHUNK = 8192

#: Below this many inserted rows, a table held by one query set decodes them all without first
#: looking each up in the cache (a re-inserted row is rare there; a lookup costs a third of a decode).
_FILTER_MIN = 512

_MISSING: Any = object()


def _promote_young() -> None:
    """Move the young GC generations to the oldest one without traversing them (O(1)).

    Called after a big chunk of rows was decoded with the collector paused: the new row objects are
    long-lived, and collecting them young (then again in generation 1, then in the full collections their
    count would trigger) costs a long pause per chunk. ``freeze`` + ``unfreeze`` moves them (and whatever
    else is young) to the oldest generation, where the next regular full collection checks them. When
    someone else uses the permanent generation (``gc.freeze()`` before a fork, say) it is left alone
    and the young generation is collected instead."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()
    else:
        gc.collect(0)


@dataclass(slots=True)
class TableDiff:
    """What one message changed in one table (events to fire, after the whole message is applied)."""

    table: str
    inserts: list[Any] = field(default_factory=list)
    deletes: list[Any] = field(default_factory=list)
    # updates, paired by primary key: the old rows and, at the same positions, the new rows
    updates_old: list[Any] = field(default_factory=list)
    updates_new: list[Any] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)  # event-table rows (never stored)

    @property
    def updates(self) -> list[tuple[Any, Any]]:
        """The updates as (old, new) pairs."""
        return list(zip(self.updates_old, self.updates_new, strict=True))

    def __bool__(self) -> bool:
        return bool(self.inserts or self.deletes or self.updates_old or self.events)


class TableCache:
    """The rows of one table by their key (the primary key's value, or else the row's BSATN bytes),
    with indexes for the other unique columns."""

    def __init__(self, binding: TableBinding) -> None:
        self.binding = binding
        self.name = binding.name
        pk = binding.primary_key
        #: True when rows are keyed by their primary key's value (else by their BSATN bytes).
        self.by_pk = pk is not None and not binding.is_event
        self.rows: dict[Any, Any] = {}
        #: The total count of each row held more than once (every other cached row is held once).
        self.multi: dict[Any, int] = {}
        #: Unique column -> value -> row key (the primary key needs none when it is the key).
        self.unique: dict[str, dict[Any, Any]] = {
            c: {} for c in binding.unique_columns if not (self.by_pk and c == pk)
        }
        #: Unique column -> a getter of its value from a row.
        self.getters = {c: itemgetter(binding.column_index(c)) for c in binding.unique_columns}
        self.pk_getter = itemgetter(binding.column_index(pk)) if pk else None
        self.pk_column = pk
        self._key_cutter: Callable[[BsatnRowList], list[Any]] | None = None
        #: The query set whose per-set counts *are* the totals (while it is the table's only set).
        self.alias: int | None = None
        #: What ``ClientCache.sets`` holds for the ``alias`` set: a live read-only view of the totals.
        self.view = _TotalCounts(self)

    @property
    def counts(self) -> dict[Any, int]:
        """Every cached row's total count by its key (a new dict; for inspection and tests)."""
        mget = self.multi.get
        return {k: mget(k, 1) for k in self.rows}

    def count(self, key: Any) -> int:
        """How many times the row ``key`` is held, over every query set."""
        return self.multi.get(key, 1) if key in self.rows else 0

    def keys_of(self, rl: BsatnRowList) -> list[Any]:
        """The cache keys of the rows of ``rl`` (a :class:`DecodeError` if they are malformed)."""
        if not self.by_pk:
            return _rows(rl)
        if not len(rl):
            return []
        if self._key_cutter is None:
            self._key_cutter = _key_cutter(self)
        return self._key_cutter(rl)

    def __len__(self) -> int:
        return len(self.rows)

    def iter(self) -> Iterator[Any]:
        """The rows (a snapshot, safe while callbacks change the cache)."""
        return iter(list(self.rows.values()))

    def find(self, column: str, value: Any) -> Any | None:
        """The row whose unique ``column`` equals ``value`` (an index lookup)."""
        if self.by_pk and column == self.pk_column:
            try:
                return self.rows.get(value)
            except TypeError:  # an unhashable value matches no row
                return None
        index = self.unique.get(column)
        if index is None:
            raise KeyError(f"column {column!r} of table {self.name!r} is not unique; use filter")
        key = index.get(value)
        return self.rows.get(key) if key is not None else None

    def filter(self, column: str, value: Any) -> Iterator[Any]:
        """The rows whose ``column`` equals ``value``."""
        if column in self.unique or (self.by_pk and column == self.pk_column):
            row = self.find(column, value)
            return iter([row] if row is not None else [])
        get = itemgetter(self.binding.column_index(column))
        return iter([r for r in self.rows.values() if get(r) == value])

    def index_add(self, keys: list[bytes], values: list[Any]) -> None:
        """Point the unique indexes at the rows ``values`` stored under ``keys``."""
        for col, index in self.unique.items():
            index.update(zip(map(self.getters[col], values), keys, strict=True))

    def index_remove(self, rows: Iterable[Any], replacing: Iterable[Any] = ()) -> None:
        """Drop ``rows`` from the unique indexes; values that ``replacing`` rows bring back (an update
        that keeps its key) are left for :meth:`index_add` to overwrite."""
        if not self.unique:
            return
        rows = list(rows)
        if not rows:
            return
        replacing = list(replacing)
        for col in self.unique:
            self.index_remove_col(col, rows, replacing)

    def index_remove_col(self, col: str, rows: list[Any], replacing: list[Any]) -> None:
        """:meth:`index_remove` for the index of one unique column."""
        g = self.getters[col]
        gone = list(map(g, rows))
        if replacing:
            back = set(map(g, replacing))
            if back.issuperset(gone):
                return
            gone = list(filterfalse(back.__contains__, gone))
        _consume(map(self.unique[col].pop, gone, repeat(None)))


class _TotalCounts(Mapping[bytes, int]):
    """The counts of a table's only query set: the table's own totals, read-only."""

    __slots__ = ("table",)

    def __init__(self, tc: TableCache) -> None:
        #: The table whose totals these are.
        self.table = tc

    def __getitem__(self, key: bytes) -> int:
        n = self.table.count(key)
        if not n:
            raise KeyError(key)
        return n

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.table.rows)

    def __len__(self) -> int:
        return len(self.table.rows)

    def __contains__(self, key: object) -> bool:
        return key in self.table.rows


class _TableWork:
    """One table's part of a message."""

    __slots__ = ("events", "is_event", "lazy", "parts", "table")

    def __init__(self, table: TableCache) -> None:
        self.table = table
        self.is_event = table.binding.is_event
        # (query set id, inserts as row bytes, deletes as row keys); the inserts of a small transaction
        # on a fixed-width keyed table stay a row list, decoded straight from its bytes (PendingApply)
        self.parts: list[tuple[int, Any, list[Any]]] = []
        self.events: list[bytes] = []
        # initial rows not split into per-row bytes yet (a first load can be staged straight from them)
        self.lazy: list[tuple[int, BsatnRowList]] = []

    def materialize(self) -> None:
        for qsid, rl in self.lazy:
            self.parts.append((qsid, rl.rows(), []))
        self.lazy.clear()


class PendingApply:
    """A server message's row changes, decoded step by step and then applied atomically.

    A first load into an empty table (the common big case) is also *staged* step by step: the new
    row dict and unique indexes are built during the steps and swapped in at once by :meth:`apply`,
    so applying a 100,000-row subscription costs almost nothing in the final frame.
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
        # a table's rows decoded in one go: (the very list of keys, their values), no dict built
        self._aligned: dict[str, tuple[list[bytes], list[Any]]] = {}
        self._rate: float | None = None  # rows decoded per second, measured
        total = 0
        for name, w in work.items():
            tc = w.table
            if not tc.rows and not w.is_event and not w.parts and not w.events and len(w.lazy) == 1:
                qsid, rl = w.lazy[0]
                if rl.row_size:
                    st = _Staged(tc, qsid, rl)
                    self._staged[name] = st
                    total += st.total
                    continue
            w.materialize()
            parts = w.parts
            if not (tc.by_pk and len(parts) == 1 and not w.events and _whole(tc, parts[0][1])):
                parts = w.parts = [(q, _as_rows(ins), dels) for q, ins, dels in parts]
            if tc.by_pk:
                # every insert is decoded: its key is in its value, and a held key may bring new contents
                if len(parts) == 1 and not w.events:
                    n = len(parts[0][1])
                    if n:
                        self._todo.append((tc, parts[0][1]))
                        total += n
                    continue
                fresh = list(dict.fromkeys(chain.from_iterable(ins for _, ins, _ in parts)))
                fresh.extend(w.events)
                if fresh:
                    self._todo.append((tc, fresh))
                    total += len(fresh)
                continue
            if len(parts) == 1:
                wanted: Collection[bytes] = parts[0][1]
                if not w.events and (not tc.rows or (len(wanted) < _FILTER_MIN and parts[0][0] == tc.alias)):
                    # the inserts of the table's only set, decoded as they are (duplicates too): the
                    # apply finds their values by the identity of this list
                    if wanted:
                        self._todo.append((tc, parts[0][1]))
                        total += len(wanted)
                    continue
                if len(wanted) > 1:
                    wanted = dict.fromkeys(wanted)
            else:
                wanted = dict.fromkeys(chain.from_iterable(ins for _, ins, _ in parts))
            rows = tc.rows
            if rows and (len(wanted) >= _FILTER_MIN or any(q != tc.alias for q, _, _ in parts)):
                # rows already cached need no decoding (they are not new)
                fresh = list(filterfalse(rows.__contains__, wanted))
            else:
                fresh = list(wanted)
            if w.events:
                fresh.extend(w.events)
            if fresh:
                self._todo.append((tc, fresh))
                total += len(fresh)
        self.total = total
        self.done_rows = 0

    @property
    def progress(self) -> float:
        """Fraction of the rows decoded so far (1.0 when ready to apply)."""
        return 1.0 if self.total == 0 else self.done_rows / self.total

    @property
    def ready(self) -> bool:
        """True when every row is decoded."""
        return not self._todo and (not self._staged or all(st.done for st in self._staged.values()))

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
        triggered by a burst of new rows would otherwise cost more than decoding them. After a big
        chunk the new objects are moved to the oldest generation (see :func:`_promote_young`), so that
        no later frame pays for collecting 100,000 young rows at once."""
        if not self._todo and not self._staged:
            return True
        if not gc.isenabled():
            return self._step(deadline)
        before = self.done_rows
        gc.disable()
        try:
            return self._step(deadline)
        finally:
            gc.enable()
            if self.done_rows - before >= 2048:
                _promote_young()

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
            if limit is None or isinstance(keys, BsatnRowList) or len(keys) <= limit:
                take, rest = keys, None
            else:
                take, rest = keys[:limit], keys[limit:]
            t0 = time.perf_counter()
            codec = tc.binding.codec
            if isinstance(take, BsatnRowList):  # (see _whole: never split into chunks)
                values = codec.decode_fixed(take.rows_data)
            elif codec.fixed_size and len(take) > 1:
                values = codec.decode_fixed(b"".join(take))
            else:
                values = [codec.decode(k) for k in take]
            if rest is None and tc.name not in self.decoded and tc.name not in self._aligned:
                self._aligned[tc.name] = (take, values)
            else:
                self.table_decoded(tc.name).update(zip(take, values, strict=True))
            if len(take) >= 256:
                self._measure(len(take), t0)
            self.done_rows += len(take)
            if rest:
                self._todo[0] = (tc, rest)
            else:
                self._todo.pop(0)
            if deadline is not None and time.perf_counter() >= deadline:
                break
        return self.ready

    def table_decoded(self, name: str) -> dict[bytes, Any]:
        """The rows of table ``name`` decoded so far, by their bytes."""
        decoded = self.decoded.get(name)
        if decoded is None:
            decoded = self.decoded[name] = {}
            aligned = self._aligned.pop(name, None)
            if aligned is not None:
                decoded.update(zip(_as_rows(aligned[0]), aligned[1], strict=True))
        return decoded

    def staged(self, name: str) -> _Staged | None:
        """The first load of table ``name`` staged during the steps, if it was."""
        return self._staged.get(name)

    def aligned_values(self, name: str, keys: list[Any]) -> list[Any] | None:
        """The values of exactly ``keys`` (the very list this message holds for table ``name``) when they
        were decoded in one go, in order; else None (look them up in :meth:`table_decoded`)."""
        aligned = self._aligned.get(name)
        if aligned is not None and aligned[0] is keys:
            return aligned[1]
        return None

    def _measure(self, n: int, t0: float) -> None:
        dt = time.perf_counter() - t0
        if n >= 256 and dt > 0:
            rate = n / dt
            self._rate = rate if self._rate is None else 0.5 * (self._rate + rate)

    def apply(self) -> list[TableDiff]:
        """Apply the whole diff (decoding what is left) and return the events per table."""
        self.step(None)
        return self.cache.apply_pending(self)


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
        self.rows: dict[Any, Any] = {}
        self.values: list[Any] = []
        self.index: dict[str, dict[Any, Any]] = {c: {} for c in tc.unique}
        self._split = struct.Struct(f"{size}s").iter_unpack

    @property
    def done(self) -> bool:
        return self.pos >= self.total

    def step(self, limit: int | None) -> int:
        """Decode up to ``limit`` rows (all with None); returns how many."""
        end = self.total if limit is None else min(self.total, self.pos + limit)
        data = self.rl.rows_data
        if self.pos or end < self.total:
            data = data[self.pos * self.size : end * self.size]
        codec = self.tc.binding.codec
        if codec.fixed_size == self.size:
            values = codec.decode_fixed(data)
            pk = self.tc.pk_getter
            keys = list(map(pk, values)) if self.tc.by_pk and pk else list(map(_first, self._split(data)))
        else:
            keys = list(map(_first, self._split(data)))
            values = [codec.decode(k) for k in keys]
            if self.tc.by_pk and self.tc.pk_getter:
                keys = list(map(self.tc.pk_getter, values))
        if self.rows:
            self.rows.update(zip(keys, values, strict=True))
        else:
            self.rows = dict(zip(keys, values, strict=True))
        if self.values:
            self.values.extend(values)
        else:
            self.values = values
        getters = self.tc.getters
        for col, index in self.index.items():
            if index:
                index.update(zip(map(getters[col], values), keys, strict=True))
            else:
                self.index[col] = dict(zip(map(getters[col], values), keys, strict=True))
        n = end - self.pos
        self.pos = end
        return n


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
    def _work(self, work: dict[str, _TableWork], table: str) -> _TableWork | None:
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
            w = work[table] = _TableWork(tc)
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
                    w.parts.append((old, [], _held(counts)))
        self.sets.setdefault(query_set_id, {})
        return PendingApply(self, work, drop_sets=tuple(q for q in replace if q != query_set_id))

    def transaction(self, query_sets: Iterable[QuerySetUpdate]) -> PendingApply:
        """The row changes of one transaction, over several query sets."""
        work: dict[str, _TableWork] = {}
        sets = self.sets
        for qs in query_sets:
            if qs.query_set_id not in sets:
                continue  # a set dropped here (replaced, failed) whose updates were still in flight
            for tu in qs.tables:
                w = self._work(work, tu.table_name)
                if w is None:
                    continue
                for r in tu.rows:
                    if isinstance(r, PersistentTableRows):
                        w.parts.append((qs.query_set_id, r.inserts, w.table.keys_of(r.deletes)))
                    elif isinstance(r, EventTableRows):
                        w.events.extend(_rows(r.events))
        return PendingApply(self, work)

    def drop_set(self, query_set_id: int) -> PendingApply:
        """Remove exactly the rows a query set holds (unsubscribed, or failed after it was applied)."""
        work: dict[str, _TableWork] = {}
        for table, counts in self.sets.get(query_set_id, {}).items():
            w = self._work(work, table)
            if w is not None:
                w.parts.append((query_set_id, [], _held(counts)))
        return PendingApply(self, work, drop_sets=(query_set_id,))

    def clear(self) -> PendingApply:
        """Remove every row (as deletes)."""
        work: dict[str, _TableWork] = {}
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
                self._apply_table(tc, w.parts, p, diff)
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
    ) -> None:
        simple = self._apply_simple_pk if tc.by_pk else self._apply_simple
        if len(parts) == 1:
            qsid, ins, dels = parts[0]
            self._per(qsid, tc, True)
            if tc.alias == qsid and simple(tc, ins, dels, p, diff):
                return
        else:
            qsids = list(dict.fromkeys([q for q, _, _ in parts]))
            for q in qsids:
                self._per(q, tc, len(qsids) == 1)
            if len(qsids) == 1 and tc.alias == qsids[0]:
                ins = [k for _, i, _ in parts for k in i]
                dels = [k for _, _, d in parts for k in d]
                if simple(tc, ins, dels, p, diff):
                    return
        parts = [(q, _as_rows(ins), dels) for q, ins, dels in parts]
        if tc.by_pk:
            self._apply_counted_pk(tc, parts, p.table_decoded(tc.name), diff)
        else:
            self._apply_counted(tc, parts, p.table_decoded(tc.name), diff)

    def _apply_simple_pk(
        self, tc: TableCache, ins: list[bytes], dels: list[Any], p: PendingApply, diff: TableDiff
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
        codec = tc.binding.codec
        for k in keys:
            if k not in decoded:
                decoded[k] = codec.decode(k)
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
    if isinstance(counts, _TotalCounts) and not counts.table.multi:
        return list(counts.table.rows)
    return [k for k, n in counts.items() for _ in range(n)]


_consume: Callable[[Iterable[Any]], None] = deque(maxlen=0).extend


def _rows(rl: BsatnRowList) -> list[bytes]:
    return rl.rows() if len(rl) else []


def _as_rows(rows: list[bytes] | BsatnRowList) -> list[bytes]:
    return _rows(rows) if isinstance(rows, BsatnRowList) else rows


#: The most rows a step decodes from a row list in one go (bigger lists are split into row bytes).
_WHOLE_MAX = 1024


def _whole(tc: TableCache, rows: list[bytes] | BsatnRowList) -> bool:
    """True when the inserts ``rows`` can be decoded straight from their row list's bytes (a small
    ``FixedSize`` list of the table's own width): no row bytes are made for them at all."""
    if not isinstance(rows, BsatnRowList):
        return False
    size = tc.binding.codec.fixed_size
    return (
        size is not None
        and size > 0
        and rows.row_size == size
        and 0 < len(rows.rows_data) <= size * _WHOLE_MAX
    )


#: struct formats of the primitive types whose unpacked value is the decoded value
_RAW_FORMATS = {"U8": "B", "I8": "b", "U16": "H", "I16": "h", "U32": "I", "I32": "i", "U64": "Q", "I64": "q"}


def _key_cutter(tc: TableCache) -> Callable[[BsatnRowList], list[Any]]:
    """A function giving the primary-key values of a row list's rows without decoding the rows: when
    every column before the key has a fixed width, the key is cut from each row at its offset (for
    ``FixedSize`` rows with one strided view or one ``iter_unpack``); otherwise each row is decoded."""
    binding = tc.binding
    module = binding.module
    row_codec = binding.codec
    pk_index = binding.column_index(binding.primary_key or "")
    row_type = module.typespace.resolve(module.typespace[binding.ref])
    assert isinstance(row_type, ProductType)

    def column_codec(i: int) -> Codec:
        return compile_codec(
            row_type.elements[i].type,
            module.typespace,
            dict(module.type_bindings),
            name=f"{binding.name}.{binding.column_names[i]}",
        )

    def decode_all(rl: BsatnRowList) -> list[Any]:
        return [row_codec.decode(r)[pk_index] for r in rl.rows()]

    offset = 0
    for i in range(pk_index):
        size = column_codec(i).fixed_size
        if size is None:
            return decode_all
        offset += size
    key_codec = column_codec(pk_index)
    key_size = key_codec.fixed_size
    if key_size is None:
        return decode_all
    end = offset + key_size
    pk_type = module.typespace.resolve(row_type.elements[pk_index].type)
    raw = _RAW_FORMATS.get(pk_type.name) if isinstance(pk_type, PrimitiveType) else None
    fixed = row_codec.fixed_size
    cut = None
    if fixed is not None:
        piece = raw if raw is not None else f"{key_size}s"
        cut = struct.Struct(f"<{offset}x{piece}{fixed - end}x").iter_unpack

    def keys(rl: BsatnRowList) -> list[Any]:
        if cut is not None and fixed and rl.row_size == fixed and len(rl.rows_data) % fixed == 0:
            cuts = cut(rl.rows_data)
            if raw is not None:
                return list(map(_first, cuts))
            pieces = list(map(_first, cuts))
        else:
            pieces = [r[offset:end] for r in rl.rows()]
            if any(len(b) != key_size for b in pieces):
                return decode_all(rl)  # a row too short: the row codec names the error
        if key_codec.fixed_size and key_codec.bulk and len(pieces) > 1:
            return key_codec.decode_fixed(b"".join(pieces))
        return list(map(key_codec.decode, pieces))

    if (
        fixed is None
        or raw is None
        or sys.byteorder != "little"
        or struct.calcsize(raw) != key_size
        or offset % key_size
        or fixed % key_size
    ):
        return keys
    # the keys are every n-th item of the rows' bytes seen as an array of the key's integer type
    start, step = offset // key_size, fixed // key_size
    typecode: Any = raw  # one of the integer formats memoryview.cast takes

    def strided(rl: BsatnRowList) -> list[Any]:
        data = rl.rows_data
        if rl.row_size != fixed or len(data) % fixed:
            return keys(rl)
        return memoryview(data).cast(typecode)[start::step].tolist()

    return strided
