"""The resumable callback scheduler of ``update()``: each applied server message becomes a :class:`Work`
whose callbacks (row callbacks in :class:`RowBatch` es, then the others) run in order and can stop at a
deadline and resume on the next call, where they stopped."""

from __future__ import annotations

import gc
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice, repeat
from typing import Any, Literal, assert_never

from ._events import AppliedKind, ReducerEvent
from ._gc import promote_young
from ._handles import Job
from ._staging import PendingApply
from ._tables import TableDiff

__all__ = [
    "GC_PAUSE_ROWS",
    "Batched",
    "RowBatch",
    "RowCallback",
    "RowMode",
    "Work",
    "queue_row_callbacks",
    "run_calls",
]

#: A row batch with at least this many rows left runs with the cyclic garbage collector paused (see
#: :func:`run_calls`).
GC_PAUSE_ROWS = 1024

#: How a :class:`RowBatch` calls its callbacks: ``plain`` ``cb(row, event)`` (inserts, deletes, event
#: rows), ``pair`` ``cb(old, new, event)`` (updates), and the documented 0.x ``row_update`` shapes
#: ``cb("insert", None, row, event)``, ``cb("delete", row, None, event)``, ``cb("update", old, new, event)``.
RowMode = Literal["plain", "pair", "legacy_insert", "legacy_delete", "legacy_update"]

#: Reports a callback's exception (the callback, the exception).
OnError = Callable[[Callable[..., Any], Exception], None]


class Batched:
    """A row callback registered with ``on_rows``: called once per chunk of rows, with lists
    (``fn(rows, event)``; for updates ``fn(olds, news, event)``), instead of once per row."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[..., None]) -> None:
        self.fn = fn

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Batched) and other.fn == self.fn

    def __hash__(self) -> int:
        return hash(self.fn)


#: A registered row callback: called per row, or (wrapped) per chunk.
RowCallback = Callable[..., None] | Batched


class RowBatch:
    """Row callbacks for one table and one kind of event, resumable under a time budget. For updates
    ``rows`` are the old rows and ``news`` the new ones, at the same positions. Callbacks wrapped in
    :class:`Batched` get each chunk as lists (after the per-row callbacks of the chunk)."""

    __slots__ = ("batched", "callbacks", "cost", "event", "i", "mode", "news", "rows")

    def __init__(
        self,
        callbacks: list[RowCallback],
        rows: list[Any],
        mode: RowMode,
        event: Any,
        news: list[Any] | None = None,
    ) -> None:
        # a snapshot (callbacks may (un)register others), the per-row ones apart from the batched ones
        self.callbacks: list[Callable[..., None]] = [cb for cb in callbacks if not isinstance(cb, Batched)]
        self.batched: list[Callable[..., None]] = []
        if len(self.callbacks) != len(callbacks) and mode in ("plain", "pair"):
            self.batched = [cb.fn for cb in callbacks if isinstance(cb, Batched)]
        self.rows = rows
        self.news = news if news is not None else []
        self.mode = mode
        self.event = event
        self.i = 0
        #: The measured cost of one row under a deadline (all the callbacks, seconds), or None before
        #: the first chunk (of :data:`_MIN_CHUNK` rows: the callbacks may be slow).
        self.cost: float | None = None

    def run(self, on_error: OnError, deadline: float | None) -> bool:
        """Fire callbacks from where we stopped; True when every row is done."""
        rows, ev, mode = self.rows, self.event, self.mode
        if deadline is None and not self.i and mode in ("plain", "pair"):
            # the whole batch at once (no budget): one C-level loop per callback
            self.i = n = len(rows)
            for cb in self.callbacks:
                whole: Any = iter(rows)
                try:
                    if mode == "plain":
                        _consume(map(cb, whole, repeat(ev)))
                    else:
                        _consume(map(cb, whole, self.news, repeat(ev)))
                except Exception as exc:
                    on_error(cb, exc)
                    # the rest of the rows for this callback still run (the iterator stopped just after
                    # the row that raised)
                    self._rest(cb, n - whole.__length_hint__(), n, on_error)
            self._run_batched(rows, self.news, on_error)
            return True
        n = len(rows)
        perf = time.perf_counter
        while self.i < n:
            start = self.i
            if deadline is None:
                end = n
            else:
                # a chunk sized to use half the time left at the measured cost per row: the chunks
                # shrink as the deadline nears, so the last one ends close to it
                cost = self.cost
                left = deadline - perf()
                size = int(0.5 * left / cost) if cost is not None and left > 0 else 0
                end = min(n, start + max(_MIN_CHUNK, min(size, _MAX_CHUNK)))
                t0 = perf()
            for cb in self.callbacks:
                it: Any = iter(rows)
                if start:
                    it.__setstate__(start)
                chunk = islice(it, end - start)
                try:
                    match mode:
                        case "plain":
                            _consume(map(cb, chunk, repeat(ev)))
                        case "pair":
                            _consume(map(cb, chunk, self._news(start), repeat(ev)))
                        case "legacy_insert":
                            _consume(map(cb, repeat("insert"), repeat(None), chunk, repeat(ev)))
                        case "legacy_delete":
                            _consume(map(cb, repeat("delete"), chunk, repeat(None), repeat(ev)))
                        case "legacy_update":
                            _consume(map(cb, repeat("update"), chunk, self._news(start), repeat(ev)))
                        case _:
                            assert_never(mode)
                except Exception as exc:
                    on_error(cb, exc)
                    # the rest of this chunk for this callback still runs (the iterator stopped just
                    # after the row that raised)
                    self._rest(cb, n - it.__length_hint__(), end, on_error)
            if self.batched:
                if start == 0 and end == n:
                    self._run_batched(rows, self.news, on_error)
                else:
                    self._run_batched(rows[start:end], self.news[start:end], on_error)
            self.i = end
            if deadline is not None:
                t1 = perf()
                measured = max(_MIN_COST, (t1 - t0) / (end - start))
                if cost is None:
                    self.cost = measured
                else:
                    # (a chunk of a few rows measures little but timer noise: it moves the estimate less)
                    self.cost = cost + min(1.0, (end - start) / 64) * (measured - cost)
                if t1 >= deadline:
                    return self.i >= n
        return True

    def _run_batched(self, rows: list[Any], news: list[Any], on_error: OnError) -> None:
        """The batched callbacks over one chunk (an exception loses the rest of the chunk for that
        callback only)."""
        for fn in self.batched:
            try:
                if self.mode == "plain":
                    fn(rows, self.event)
                else:
                    fn(rows, news, self.event)
            except Exception as exc:
                on_error(fn, exc)

    def _news(self, start: int) -> Iterator[Any]:
        it: Any = iter(self.news)
        if start:
            it.__setstate__(start)
        return it  # type: ignore[no-any-return]

    def _rest(self, cb: Callable[..., None], start: int, end: int, on_error: OnError) -> None:
        mode = self.mode
        for i in range(start, end):
            try:
                r = self.rows[i]
                match mode:
                    case "plain":
                        cb(r, self.event)
                    case "pair":
                        cb(r, self.news[i], self.event)
                    case "legacy_insert":
                        cb("insert", None, r, self.event)
                    case "legacy_delete":
                        cb("delete", r, None, self.event)
                    case "legacy_update":
                        cb("update", r, self.news[i], self.event)
                    case _:
                        assert_never(mode)
            except Exception as exc:
                on_error(cb, exc)


@dataclass(slots=True)
class Work:
    """The message being applied, and the callbacks still to deliver for it. ``after`` runs once the
    diff is applied (after the row callbacks are queued) and queues the message's other callbacks.
    ``kind`` is set for the messages reported to ``register_on_applying`` / ``register_on_applied``."""

    pending: PendingApply | None
    after: Callable[[list[TableDiff]], None]
    event: ReducerEvent | None = None
    kind: AppliedKind | None = None
    calls: deque[Job | RowBatch] = field(default_factory=deque)
    applied: bool = False


def queue_row_callbacks(
    w: Work, diffs: list[TableDiff], row_cbs: dict[tuple[str, str], list[RowCallback]]
) -> None:
    """Queue the row callbacks of an applied diff (deletes, updates, then inserts and event rows, table by
    table). The caller then runs ``w.after``."""
    ev = w.event
    cbs = row_cbs
    for d in diffs:
        t = d.table
        if d.deletes:
            if cbs.get((t, "delete")):
                w.calls.append(RowBatch(cbs[(t, "delete")], d.deletes, "plain", ev))
            if cbs.get((t, "row_update")):
                w.calls.append(RowBatch(cbs[(t, "row_update")], d.deletes, "legacy_delete", ev))
        if d.updates_old:
            if cbs.get((t, "update")):
                w.calls.append(RowBatch(cbs[(t, "update")], d.updates_old, "pair", ev, d.updates_new))
            if cbs.get((t, "row_update")):
                w.calls.append(
                    RowBatch(cbs[(t, "row_update")], d.updates_old, "legacy_update", ev, d.updates_new)
                )
        for rows in (d.inserts, d.events):
            if rows:
                if cbs.get((t, "insert")):
                    w.calls.append(RowBatch(cbs[(t, "insert")], rows, "plain", ev))
                if cbs.get((t, "row_update")):
                    w.calls.append(RowBatch(cbs[(t, "row_update")], rows, "legacy_insert", ev))


def run_calls(w: Work, deadline: float | None, safe: Callable[..., None], on_error: OnError) -> bool:
    """Run ``w``'s queued callbacks in order until ``deadline`` (a ``time.perf_counter()`` value); True
    when none is left. ``safe(fn, *args)`` runs one callback, reporting its exception. A row batch of
    :data:`GC_PAUSE_ROWS` rows or more runs with the collector paused (if it is enabled), every chunk of
    it to the last, and what its callbacks made then joins the oldest generation (:func:`promote_young`)."""
    calls = w.calls
    while calls:
        job = calls[0]
        if isinstance(job, RowBatch):
            if len(job.rows) >= GC_PAUSE_ROWS and gc.isenabled():
                # a bulk of row callbacks (a subscription's rows, a big transaction) makes objects by the
                # thousand (the game's entities): the collector waits, then they join the oldest
                # generation in O(1) (see promote_young) instead of triggering full collections
                gc.disable()
                try:
                    done = job.run(on_error, deadline)
                finally:
                    gc.enable()
                    promote_young()
            else:
                done = job.run(on_error, deadline)
            if not done:
                return False
        else:
            safe(job[0], *job[1])
        calls.popleft()
        if deadline is not None and time.perf_counter() >= deadline:
            break
    return not calls


_consume: Callable[[Any], None] = deque(maxlen=0).extend

#: The fewest and the most rows a chunk under a deadline runs before looking at the clock again.
_MIN_CHUNK = 8
_MAX_CHUNK = 65536
#: The lowest per-row cost assumed (a few rows that took no measurable time do not make the next chunk
#: huge).
_MIN_COST = 1e-7
