"""Staging a server message for the client cache (docs/protocol.md section 6.2), sans-I/O.

A server message becomes one :class:`PendingApply`: its rows are decoded in steps (so a big initial
subscription can be spread over several frames), then the whole diff is applied at once by the cache
(:meth:`PendingApply.apply`). Only rows that will be new are decoded; a first load into an empty table is
staged whole (:class:`Staged`), its row dict and indexes built during the steps.
"""

from __future__ import annotations

import gc
import struct
import time
from collections.abc import Collection, Iterable
from itertools import chain, filterfalse
from operator import itemgetter
from typing import Any, Protocol

from ._gc import promote_young
from ._keys import as_rows
from ._tables import TableCache, TableDiff, decode_row_values
from .protocol import BsatnRowList

__all__ = ["Applier", "PendingApply", "Staged", "TableWork"]

_first = itemgetter(0)

#: Below this many inserted rows, a table held by one query set decodes them all without first
#: looking each up in the cache (a re-inserted row is rare there; a lookup costs a third of a decode).
_FILTER_MIN = 512


class Applier(Protocol):
    """What applies a decoded :class:`PendingApply` to the tables (the client cache)."""

    def apply_pending(self, p: PendingApply) -> list[TableDiff]:
        """Apply ``p`` to the tables atomically; the diffs per table."""
        ...


class TableWork:
    """One table's part of a message (built by the cache from the message, read by its apply)."""

    __slots__ = ("deleted", "events", "is_event", "lazy", "parts", "table")

    def __init__(self, table: TableCache) -> None:
        #: The table.
        self.table = table
        #: True for an event table (its rows are reported, never stored).
        self.is_event = table.binding.is_event
        #: (query set id, inserts as row bytes, deletes as row keys); the inserts of a small transaction
        #: on a fixed-width keyed table stay a row list, decoded straight from its bytes (PendingApply)
        self.parts: list[tuple[int, Any, list[Any]]] = []
        #: The event-table rows, as row bytes.
        self.events: list[bytes] = []
        #: The deletes of ``parts`` as the server sent them (row lists), for a keyed table: an update's
        #: old and new rows compare by their bytes (see ``ClientCache._apply_simple_pk``).
        self.deleted: list[BsatnRowList] = []
        #: Initial rows not split into per-row bytes yet (a first load can be staged straight from them).
        self.lazy: list[tuple[int, BsatnRowList]] = []

    def materialize(self) -> None:
        """Move the ``lazy`` initial rows into ``parts``, split into row bytes."""
        for qsid, rl in self.lazy:
            self.parts.append((qsid, rl.rows(), []))
        self.lazy.clear()


class PendingApply:
    """A server message's row changes, decoded step by step and then applied atomically.

    A first load into an empty table (the common big case) is also *staged* step by step: the new
    row dict and unique indexes are built during the steps and swapped in at once by :meth:`apply`,
    so applying a 100,000-row subscription costs almost nothing in the final frame.
    """

    def __init__(self, cache: Applier, work: dict[str, TableWork], drop_sets: Iterable[int] = ()) -> None:
        #: What applies this message: the client cache.
        self.cache = cache
        #: Each table's part of the message, by table name.
        self.work = work
        #: The query sets that this message ends (their entries go once the rows are applied).
        self.drop_sets = tuple(drop_sets)
        self._todo: list[tuple[TableCache, list[bytes]]] = []
        self._staged: dict[str, Staged] = {}
        #: Table name -> row bytes -> the decoded row (see :meth:`table_decoded`, which fills it).
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
                    st = Staged(tc, qsid, rl)
                    self._staged[name] = st
                    total += st.total
                    continue
            w.materialize()
            parts = w.parts
            if not (tc.by_pk and len(parts) == 1 and not w.events and _whole(tc, parts[0][1])):
                parts = w.parts = [(q, as_rows(ins), dels) for q, ins, dels in parts]
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
        chunk the new objects are moved to the oldest generation (see :func:`promote_young`), so that
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
                promote_young()

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
            elif codec.fixed_size and len(take) > 1 and len(take[0]) == codec.fixed_size:
                values = codec.decode_fixed(b"".join(take))
            else:
                values = decode_row_values(tc, take)
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
                decoded.update(zip(as_rows(aligned[0]), aligned[1], strict=True))
        return decoded

    def staged(self, name: str) -> Staged | None:
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


class Staged:
    """A first load into an empty table, decoded and indexed chunk by chunk straight from the row
    list's bytes (``FixedSize`` rows need no splitting up front)."""

    def __init__(self, tc: TableCache, query_set_id: int, rl: BsatnRowList) -> None:
        #: The (empty) table loaded.
        self.tc = tc
        #: The query set whose initial rows these are.
        self.query_set_id = query_set_id
        #: The initial rows.
        self.rl = rl
        size = rl.row_size or 0
        if size <= 0 or len(rl.rows_data) % size:
            rl.rows()  # raises the DecodeError that describes the bad hint
        self.size = size
        self.total = len(rl.rows_data) // size
        self.pos = 0
        #: The rows decoded so far by their cache key (fewer than ``values`` if a key came twice).
        self.rows: dict[Any, Any] = {}
        #: The rows decoded so far, in order.
        self.values: list[Any] = []
        #: The unique indexes of the rows decoded so far (as ``TableCache.unique``).
        self.index: dict[str, dict[Any, Any]] = {c: {} for c in tc.unique}
        self._split = struct.Struct(f"{size}s").iter_unpack

    @property
    def done(self) -> bool:
        """True when every row is decoded."""
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
            values = decode_row_values(self.tc, keys)
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
