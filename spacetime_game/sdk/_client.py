"""``DbConnection``: one connection to a database, driven by ``update()`` on the game thread.

The reader thread (the transport) only decodes frames and queues them in order. ``update()`` applies
them to the cache one message at a time, each as one atomic diff, then fires the callbacks; with a time
budget a big message is decoded over several calls, applied at once, and its callbacks are delivered over
the following calls. Every callback runs on the thread calling ``update()``; an exception in one is logged
and passed to ``on_error`` while the others still run.
"""

from __future__ import annotations

import logging
import math
import queue
import random
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice, repeat
from typing import Any, Literal, assert_never

from ._cache import ClientCache, PendingApply, TableDiff
from ._failures import ConnectionFailed, FailureNotice
from ._transport import DEFAULT_MAX_SEND_BUFFER, Event, Transport, WebSocketTransport, build_url
from ._values import ConnectionId, Identity
from .bindings import ModuleBindings, RowEvent
from .protocol import (
    DEFAULT_MAX_MESSAGE_SIZE,
    CallReducer,
    ClientMessage,
    Compression,
    InitialConnection,
    OneOffQuery,
    OneOffQueryResult,
    PersistentTableRows,
    ProcedureResult,
    QueryRows,
    ReducerErr,
    ReducerInternalError,
    ReducerOk,
    ReducerOkEmpty,
    ReducerResult,
    ServerMessage,
    Subscribe,
    SubscribeApplied,
    SubscriptionError,
    TransactionUpdate,
    Unsubscribe,
    UnsubscribeApplied,
    UnsubscribeFlags,
)
from .sats import DecodeError, SpacetimeError

__all__ = [
    "ConnectionState",
    "DbConnection",
    "NetStats",
    "OneOffQueryHandle",
    "ProtocolError",
    "ReducerCall",
    "ReducerEvent",
    "SubscriptionHandle",
]

log = logging.getLogger("spacetime_game.sdk")

#: ``failed``: a connection attempt failed for good (an unknown database, a refused token...; see
#: ``DbConnection.last_error``): the connection is not retried; ``connect()`` tries again.
ConnectionState = Literal["idle", "connecting", "connected", "reconnecting", "closed", "failed"]


@dataclass
class ReducerEvent:
    """Why rows changed. For this client's own calls every field is set; for other clients'
    transactions (the v2 protocol carries no reducer info) ``caller_identity``, ``caller_address``,
    ``reducer_name`` and ``args`` are None. Rows from a subscription being applied get no event (None)."""

    caller_identity: Identity | None
    caller_address: ConnectionId | None
    reducer_name: str | None
    status: str  # "committed", "failed" or "out_of_energy"
    message: str
    args: list[Any] | None
    timestamp: Any = None


class ReducerCall:
    """The handle of one reducer call: its outcome arrives through ``update()``."""

    def __init__(self, request_id: int, reducer: str, args: bytes, sent_at: float) -> None:
        self.request_id = request_id
        self.reducer = reducer
        self.args = args
        self.sent_at = sent_at
        #: ``pending``, ``committed``, ``failed`` (the reducer refused), ``internal_error`` or ``disconnected``.
        self.status = "pending"
        #: The error message, "" when committed.
        self.message = ""
        #: Round trip in seconds, once done.
        self.round_trip: float | None = None
        self._callbacks: list[Callable[[ReducerCall], None]] = []

    @property
    def done(self) -> bool:
        """True once the outcome is known."""
        return self.status != "pending"

    @property
    def committed(self) -> bool:
        """True when the reducer committed."""
        return self.status == "committed"

    def add_done_callback(self, callback: Callable[[ReducerCall], None]) -> None:
        """Call ``callback(call)`` when the outcome arrives (at once if it already has)."""
        self._callbacks.append(callback)

    def __repr__(self) -> str:
        return f"ReducerCall({self.reducer!r}, request_id={self.request_id}, status={self.status!r})"


class SubscriptionHandle:
    """A query set: applied, failed or ended. ``unsubscribe()`` removes exactly its rows."""

    def __init__(
        self, conn: DbConnection, query_set_id: int, queries: tuple[str, ...], legacy: bool = False
    ) -> None:
        self._conn = conn
        self.query_set_id = query_set_id
        self.queries = queries
        self.legacy = legacy
        self.state: Literal["pending", "active", "ended", "error"] = "pending"
        self.error: str | None = None
        # the request ids of this set's Subscribe / Unsubscribe sent on the current connection and not
        # answered yet (an answer with any other id, or for a set with none, breaks the protocol)
        self._sub_rid: int | None = None
        self._unsub_rid: int | None = None
        self._on_applied: list[Callable[[SubscriptionHandle], None]] = []
        self._on_error: list[Callable[[SubscriptionHandle, str], None]] = []
        self._on_end: list[Callable[[SubscriptionHandle], None]] = []

    @property
    def is_active(self) -> bool:
        """True while the set is applied on the server."""
        return self.state == "active"

    @property
    def is_ended(self) -> bool:
        """True after unsubscribe or an error."""
        return self.state in ("ended", "error")

    def on_applied(self, callback: Callable[[SubscriptionHandle], None]) -> SubscriptionHandle:
        """Call ``callback(handle)`` when the initial rows are in the cache."""
        self._on_applied.append(callback)
        return self

    def on_error(self, callback: Callable[[SubscriptionHandle, str], None]) -> SubscriptionHandle:
        """Call ``callback(handle, message)`` if the server rejects or drops the set."""
        self._on_error.append(callback)
        return self

    def on_end(self, callback: Callable[[SubscriptionHandle], None]) -> SubscriptionHandle:
        """Call ``callback(handle)`` once the set is unsubscribed and its rows are gone."""
        self._on_end.append(callback)
        return self

    def unsubscribe(self) -> None:
        """Drop this set; its rows (those no other set holds) are deleted with callbacks."""
        self._conn._unsubscribe(self)

    def __repr__(self) -> str:
        return f"SubscriptionHandle({self.query_set_id}, {self.queries!r}, {self.state})"


class OneOffQueryHandle:
    """The answer to a one-off query: ``rows`` per table (decoded row objects), or ``error``."""

    def __init__(self, request_id: int, sql: str) -> None:
        self.request_id = request_id
        self.sql = sql
        self.done = False
        self.error: str | None = None
        self.rows: dict[str, list[Any]] = {}
        self._callbacks: list[Callable[[OneOffQueryHandle], None]] = []

    def add_done_callback(self, callback: Callable[[OneOffQueryHandle], None]) -> None:
        """Call ``callback(handle)`` when the answer arrives."""
        self._callbacks.append(callback)


@dataclass
class NetStats:
    """Network statistics of a connection."""

    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    rows_in: int = 0
    apply_seconds: float = 0.0
    reconnects: int = 0
    #: Messages received but not applied yet, plus the one being applied (set by ``update()``).
    queue_depth: int = 0
    #: Reducer calls sent whose result has not arrived.
    calls_in_flight: int = 0
    round_trips: dict[str, deque[float]] = field(
        default_factory=lambda: defaultdict(lambda: deque(maxlen=512))
    )

    def round_trip(self, reducer: str, q: float) -> float | None:
        """The ``q`` quantile (0..1) of recent round trips of ``reducer``, in seconds."""
        data = sorted(self.round_trips.get(reducer, ()))
        if not data:
            return None
        return data[min(len(data) - 1, max(0, math.ceil(q * len(data)) - 1))]

    def summary(self) -> dict[str, Any]:
        """Everything as plain numbers (p50/p95 per reducer, in milliseconds)."""
        return {
            "messages_in": self.messages_in,
            "messages_out": self.messages_out,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "rows_in": self.rows_in,
            "apply_ms": round(self.apply_seconds * 1000, 3),
            "reconnects": self.reconnects,
            "queue_depth": self.queue_depth,
            "calls_in_flight": self.calls_in_flight,
            "round_trip_ms": {
                r: {
                    "p50": 1000 * (self.round_trip(r, 0.5) or 0),
                    "p95": 1000 * (self.round_trip(r, 0.95) or 0),
                }
                for r in self.round_trips
            },
        }


class _RowBatch:
    """Row callbacks for one table and one kind of event, resumable under a time budget. For updates
    ``rows`` are the old rows and ``news`` the new ones, at the same positions."""

    __slots__ = ("callbacks", "event", "i", "mode", "news", "rows")

    def __init__(
        self,
        callbacks: list[Callable[..., None]],
        rows: list[Any],
        mode: str,
        event: Any,
        news: list[Any] | None = None,
    ) -> None:
        self.callbacks = list(callbacks)  # a snapshot: callbacks may (un)register others
        self.rows = rows
        self.news = news if news is not None else []
        self.mode = mode
        self.event = event
        self.i = 0

    def run(self, on_error: Callable[[Callable[..., Any], Exception], None], deadline: float | None) -> bool:
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
            return True
        n = len(rows)
        perf = time.perf_counter
        while self.i < n:
            start = self.i
            end = n if deadline is None else min(n, start + 512)
            for cb in self.callbacks:
                it: Any = iter(rows)
                if start:
                    it.__setstate__(start)
                chunk = islice(it, end - start)
                try:
                    if mode == "plain":
                        _consume(map(cb, chunk, repeat(ev)))
                    elif mode == "pair":
                        _consume(map(cb, chunk, self._news(start), repeat(ev)))
                    elif mode == "legacy_insert":
                        _consume(map(cb, repeat("insert"), repeat(None), chunk, repeat(ev)))
                    elif mode == "legacy_delete":
                        _consume(map(cb, repeat("delete"), chunk, repeat(None), repeat(ev)))
                    else:
                        _consume(map(cb, repeat("update"), chunk, self._news(start), repeat(ev)))
                except Exception as exc:
                    on_error(cb, exc)
                    # the rest of this chunk for this callback still runs (the iterator stopped just
                    # after the row that raised)
                    self._rest(cb, n - it.__length_hint__(), end, on_error)
            self.i = end
            if deadline is not None and perf() >= deadline:
                return self.i >= n
        return True

    def _news(self, start: int) -> Iterator[Any]:
        it: Any = iter(self.news)
        if start:
            it.__setstate__(start)
        return it  # type: ignore[no-any-return]

    def _rest(self, cb: Callable[..., None], start: int, end: int, on_error: Callable[..., None]) -> None:
        for i in range(start, end):
            try:
                r = self.rows[i]
                if self.mode == "plain":
                    cb(r, self.event)
                elif self.mode == "pair":
                    cb(r, self.news[i], self.event)
                elif self.mode == "legacy_insert":
                    cb("insert", None, r, self.event)
                elif self.mode == "legacy_delete":
                    cb("delete", r, None, self.event)
                else:
                    cb("update", r, self.news[i], self.event)
            except Exception as exc:
                on_error(cb, exc)


@dataclass(slots=True)
class _Work:
    """The message being applied, and the callbacks still to deliver for it."""

    pending: PendingApply | None
    after: Callable[[list[TableDiff]], None]
    event: ReducerEvent | None = None
    calls: deque[Any] = field(default_factory=deque)  # (fn, args) or _RowBatch
    applied: bool = False


class DbConnection:
    """A connection to one database, with its cache, callbacks and handles (a ``BindingsClient``).

    Create it, register callbacks, call :meth:`connect`, then call :meth:`update` once per frame.
    ``max_message_size`` (bytes, default 128 MiB) is the largest server message accepted after
    decompression: a larger one is reported to ``on_error`` and the connection is rebuilt. A message that
    makes no sense in the protocol is reported as a :class:`ProtocolError` and handled the same way.
    Sending never blocks the game loop: what the socket cannot take at once waits in a buffer written by
    a background thread. ``max_send_buffer`` (bytes, default 16 MiB) bounds it: a server that has not
    read that much is treated as lost (a ConnectionError naming the limit goes to ``on_error``, calls
    waiting for an answer end as ``disconnected``, and the connection is rebuilt).

    A connection attempt that fails is reported as a :class:`ConnectionFailed` (one readable reason) to
    ``on_error`` and in :attr:`last_error`. A permanent failure (an unknown database, a refused token,
    no common protocol) ends in the ``failed`` state and also reaches ``on_disconnect``; a transient
    one (refused, reset, timed out, a 5xx) is retried with the backoff. With no ``on_error`` and no
    logging configured, the first failure of a run is also written to stderr as one line.
    """

    def __init__(
        self,
        module: ModuleBindings,
        host: str,
        database: str,
        *,
        token: str | None = None,
        ssl_enabled: bool = False,
        compression: Compression = Compression.GZIP,
        confirmed: bool | None = None,
        reconnect: bool = True,
        reconnect_min_delay: float = 0.25,
        reconnect_max_delay: float = 10.0,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_send_buffer: int = DEFAULT_MAX_SEND_BUFFER,
        transport_factory: Callable[[str, str | None], Transport] | None = None,
        on_connect: Callable[[DbConnection, Identity, str], None] | None = None,
        on_disconnect: Callable[[DbConnection, str | None], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_state: Callable[[ConnectionState], None] | None = None,
    ) -> None:
        if not isinstance(module, ModuleBindings):
            raise TypeError(
                f"module must be a ModuleBindings (module_bindings.MODULE), got {type(module).__name__}"
            )
        self.module = module
        self.host = host
        self.database = database
        self.token = token
        self.ssl_enabled = ssl_enabled
        self.compression = compression
        extra = {} if confirmed is None else {"confirmed": "true" if confirmed else "false"}
        self.url = build_url(host, database, ssl_enabled, compression, extra)
        self.reconnect = reconnect
        self.reconnect_min_delay = reconnect_min_delay
        self.reconnect_max_delay = reconnect_max_delay
        if max_message_size < 1:
            raise ValueError(f"max_message_size must be a positive number of bytes, got {max_message_size}")
        #: The largest server message accepted, in bytes after decompression (default 128 MiB): a larger
        #: one (say a decompression bomb) is refused after at most that much output, reported to
        #: ``on_error`` as a DecodeError naming the limit, and the connection is rebuilt.
        self.max_message_size = max_message_size
        if max_send_buffer < 1:
            raise ValueError(f"max_send_buffer must be a positive number of bytes, got {max_send_buffer}")
        #: How many bytes of outgoing messages may wait for a server that does not read them (default
        #: 16 MiB); one more message is then a lost connection (see the class docstring).
        self.max_send_buffer = max_send_buffer
        self._transport_factory = transport_factory or (
            lambda url, tok: WebSocketTransport(
                url, tok, max_message_size=self.max_message_size, max_send_buffer=self.max_send_buffer
            )
        )
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self.on_error = on_error
        self.on_state = on_state
        self.identity: Identity | None = None
        self.connection_id: ConnectionId | None = None
        self.state: ConnectionState = "idle"
        self.cache = ClientCache(module)
        self.stats = NetStats()
        #: The last failed connection attempt (its ``reason``, ``permanent``, ``status``), or None. It is
        #: kept after a later success: look at :attr:`state` to know whether the connection is up.
        self.last_error: ConnectionFailed | None = None
        self._failure: ConnectionFailed | None = None  # this attempt's failure, until its close
        self._notice = FailureNotice()
        self._events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._transport: Transport | None = None
        self._outbox: list[ClientMessage] = []
        self._work: deque[_Work] = deque()
        self._row_cbs: dict[tuple[str, str], list[Callable[..., None]]] = defaultdict(list)
        self._reducer_cbs: dict[str, list[Callable[..., None]]] = defaultdict(list)
        self._event_cbs: list[Callable[[Any], None]] = []
        self._applied_cbs: list[Callable[[], None]] = []
        self._calls: dict[int, ReducerCall] = {}
        self._one_offs: dict[int, OneOffQueryHandle] = {}
        self._subs: dict[int, SubscriptionHandle] = {}
        self._resubscribing: set[int] = set()
        self._next_request = 1
        self._next_qs = 1
        self._wakeups: list[Callable[[], None]] = []
        self._arrived = threading.Event()
        self._closing = False
        self._attempt = 0
        self._retry_at: float | None = None
        self._lock = threading.Lock()
        #: True once this connection's InitialConnection arrived (reset for each new transport).
        self._greeted = False
        #: Query sets that ended while an Unsubscribe was in flight: its answer (by request id) is expected.
        self._late: dict[int, int] = {}

    # ----- connection ------------------------------------------------------------------------------
    def connect(self) -> DbConnection:
        """Open the connection in the background (events arrive through :meth:`update`)."""
        if self.state in ("connecting", "connected"):
            return self
        self._closing = False
        self._set_state("connecting")
        self._open()
        return self

    def _open(self) -> None:
        self._greeted = False
        self._transport = self._transport_factory(self.url, self.token)
        self._transport.start(self._events, self._wake)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until something arrives from the server (or ``timeout`` seconds pass), without
        spinning; then call :meth:`update`. For scripts and tools that have no frame loop. True if
        something arrived."""
        if not self._events.empty() or self._work:
            return True
        got = self._arrived.wait(timeout)
        self._arrived.clear()
        return got or not self._events.empty()

    def _wake(self) -> None:
        self._arrived.set()
        for w in list(self._wakeups):
            try:
                w()
            except Exception:
                log.debug("wakeup failed", exc_info=True)

    def add_wakeup(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (from the reader thread) whenever something arrives (the async client uses it)."""
        self._wakeups.append(callback)

    def close(self) -> None:
        """Close the connection for good. It returns at once (it never waits for the server); the
        transport's threads end in the background, within about a second."""
        self._closing = True
        self._retry_at = None  # a pending reconnect must not reopen a closed connection
        t = self._transport
        self._transport = None
        if t is not None:
            t.close()
        self._set_state("closed")

    @property
    def is_connected(self) -> bool:
        """True between InitialConnection and a disconnect."""
        return self.state == "connected"

    def _set_state(self, state: ConnectionState) -> None:
        if state != self.state:
            self.state = state
            if self.on_state is not None:
                self._safe(self.on_state, state)

    # ----- sending --------------------------------------------------------------------------------------
    def _send(self, msg: ClientMessage) -> None:
        if self.state != "connected" or self._transport is None:
            self._outbox.append(msg)  # flushed on (re)connect
            return
        try:
            self.stats.bytes_out += self._transport.send([msg])
            self.stats.messages_out += 1
        except (ConnectionError, OSError, SpacetimeError) as exc:
            # the transport reports the lost connection; then a reducer call in the outbox is reported
            # "disconnected" and dropped, and subscriptions are sent again on the next connection
            log.info("send failed (%s); the connection is being rebuilt", exc)
            self._outbox.append(msg)
            return
        if isinstance(msg, Subscribe | Unsubscribe):
            h = self._subs.get(msg.query_set_id)
            if h is not None:  # its answer must carry this request id
                if isinstance(msg, Subscribe):
                    h._sub_rid = msg.request_id
                else:
                    h._unsub_rid = msg.request_id

    def _request_id(self) -> int:
        with self._lock:
            rid = self._next_request
            self._next_request = (self._next_request % 0xFFFFFFFF) + 1
            return rid

    def call_reducer(
        self, reducer: str, args: bytes, callback: Callable[..., None] | None = None
    ) -> ReducerCall:
        """Send a reducer call (``args``: the BSATN of its parameters); returns its handle."""
        call = ReducerCall(self._request_id(), reducer, bytes(args), time.perf_counter())
        if callback is not None:
            call.add_done_callback(callback)
        self._calls[call.request_id] = call
        self._send(CallReducer(call.request_id, 0, reducer, call.args))
        return call

    def subscribe_multi(self, queries: Sequence[str]) -> SubscriptionHandle:
        """Subscribe to a new query set; returns its handle (``on_applied``, ``on_error``, ``unsubscribe``)."""
        qs = _queries(queries)
        handle = SubscriptionHandle(self, self._take_qs(), qs)
        self._subs[handle.query_set_id] = handle
        self._send(Subscribe(self._request_id(), handle.query_set_id, qs))
        return handle

    def subscribe(self, queries: Sequence[str]) -> SubscriptionHandle:
        """The documented ``subscribe``: replaces every previous ``subscribe`` query set. Rows that no
        longer match are deleted (with callbacks) when the new set is applied."""
        qs = _queries(queries)
        handle = SubscriptionHandle(self, self._take_qs(), qs, legacy=True)
        self._subs[handle.query_set_id] = handle
        self._send(Subscribe(self._request_id(), handle.query_set_id, qs))
        return handle

    def _take_qs(self) -> int:
        qs = self._next_qs
        self._next_qs = (self._next_qs % 0xFFFFFFFF) + 1
        return qs

    def _unsubscribe(self, handle: SubscriptionHandle) -> None:
        if handle.state in ("ended", "error"):
            return
        handle.state = "ended"
        if self.state == "connected":
            self._send(Unsubscribe(self._request_id(), handle.query_set_id, UnsubscribeFlags.DEFAULT))
        else:  # not on the server now: drop its rows locally
            self._queue_drop(handle)

    def one_off_query(
        self, sql: str, callback: Callable[[OneOffQueryHandle], None] | None = None
    ) -> OneOffQueryHandle:
        """Run a query once, without subscribing; the rows arrive in the handle."""
        h = OneOffQueryHandle(self._request_id(), sql)
        if callback is not None:
            h.add_done_callback(callback)
        self._one_offs[h.request_id] = h
        self._send(OneOffQuery(h.request_id, sql))
        return h

    # ----- callbacks (BindingsClient) ------------------------------------------------------------------
    def iter_rows(self, table: str) -> Iterator[Any]:
        """Every cached row of ``table``."""
        return self.cache.table(table).iter()

    def count_rows(self, table: str) -> int:
        """How many rows of ``table`` are cached."""
        return len(self.cache.table(table))

    def find_row(self, table: str, column: str, value: Any) -> Any | None:
        """The row with unique ``column == value`` (index lookup)."""
        return self.cache.table(table).find(column, value)

    def filter_rows(self, table: str, column: str, value: Any) -> Iterator[Any]:
        """Rows with ``column == value``."""
        return self.cache.table(table).filter(column, value)

    def on_row(self, table: str, event: RowEvent, callback: Callable[..., None]) -> Any:
        """Register a row callback (``insert``, ``update``, ``delete`` or the documented ``row_update``)."""
        self.cache.table(table)
        if event not in ("insert", "update", "delete", "row_update"):
            raise ValueError(f"unknown row event {event!r}")
        self._row_cbs[(table, event)].append(callback)
        return callback

    def remove_on_row(self, table: str, event: RowEvent, callback: Callable[..., None]) -> None:
        """Unregister a row callback."""
        cbs = self._row_cbs.get((table, event), [])
        if callback in cbs:
            cbs.remove(callback)

    def on_reducer(self, reducer: str, callback: Callable[..., None]) -> Any:
        """Register ``callback(caller_identity, caller_address, status, message, *args)`` for this
        client's own calls of ``reducer``."""
        self._reducer_cbs[reducer].append(callback)
        return callback

    def remove_on_reducer(self, reducer: str, callback: Callable[..., None]) -> None:
        """Unregister a reducer callback."""
        cbs = self._reducer_cbs.get(reducer, [])
        if callback in cbs:
            cbs.remove(callback)

    def register_on_event(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback(message)`` for each transaction update (documented Basic-client API)."""
        self._event_cbs.append(callback)

    def unregister_on_event(self, callback: Callable[[Any], None]) -> None:
        """Stop calling an ``on_event`` callback."""
        if callback in self._event_cbs:
            self._event_cbs.remove(callback)

    def register_on_subscription_applied(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` whenever a subscription's rows have been applied."""
        self._applied_cbs.append(callback)

    def unregister_on_subscription_applied(self, callback: Callable[[], None]) -> None:
        """Stop calling a subscription-applied callback."""
        if callback in self._applied_cbs:
            self._applied_cbs.remove(callback)

    # ----- update() -----------------------------------------------------------------------------------
    @property
    def progress(self) -> float:
        """How much of the message being applied is decoded (1.0 when nothing is pending)."""
        w = self._work[0] if self._work else None
        return 1.0 if w is None or w.pending is None else w.pending.progress

    def update(self, budget: float | None = None, max_messages: int | None = None) -> int:
        """Apply what has arrived and fire callbacks, on this thread. ``budget`` is in seconds (e.g.
        0.004); ``max_messages`` caps how many messages are applied. Returns how many were applied."""
        if not self._work and self._events.empty() and self._retry_at is None:
            return 0
        deadline = None if budget is None else time.perf_counter() + budget
        applied = 0
        while True:
            if self._work:
                w = self._work[0]
                if not w.applied:
                    try:
                        if w.pending is not None and not w.pending.step(deadline):
                            break
                        t0 = time.perf_counter()
                        diffs = w.pending.apply() if w.pending is not None else []
                    except Exception as exc:
                        self._unusable(exc)
                        continue
                    self.stats.apply_seconds += time.perf_counter() - t0
                    w.applied = True
                    self._queue_callbacks(w, diffs)
                    applied += 1
                while w.calls:
                    job = w.calls[0]
                    if isinstance(job, _RowBatch):
                        if not job.run(self._safe_error, deadline):
                            break
                    else:
                        self._safe(job[0], *job[1])
                    w.calls.popleft()
                    if deadline is not None and time.perf_counter() >= deadline:
                        break
                if w.calls:
                    break
                self._work.popleft()
                if max_messages is not None and applied >= max_messages:
                    break
                if deadline is not None and time.perf_counter() >= deadline:
                    break
                continue
            if self._retry_at is not None and time.perf_counter() >= self._retry_at:
                self._retry_at = None
                self._open()
            try:
                ev = self._events.get_nowait()
            except queue.Empty:
                break
            try:
                self._on_event(ev)
            except Exception as exc:
                self._unusable(exc)
        self.stats.queue_depth = self._events.qsize() + len(self._work)
        self.stats.calls_in_flight = len(self._calls)
        return applied

    def _unusable(self, exc: Exception) -> None:
        """A server message could not be read or applied (malformed rows, say): report it, drop it and
        what followed it on this connection, and treat the connection as lost. The reconnect that
        follows (if enabled) re-subscribes and reconciles the cache; otherwise the connection closes."""
        if isinstance(exc, ProtocolError):
            what = "a message out of protocol"
        elif isinstance(exc, DecodeError):
            what = "malformed rows"
        else:
            what = "an internal error"
        then = "reconnecting" if self.reconnect else "closing the connection"
        log.error("a server message could not be applied (%s); %s", what, then, exc_info=exc)
        if self.on_error is not None:
            self._safe(self.on_error, exc)
        self._work.clear()
        t = self._transport
        self._transport = None
        if t is not None:
            t.close()  # never blocks; after it returns the transport queues nothing more
        while True:  # the rest of this connection's events come after the lost message
            try:
                self._events.get_nowait()
            except queue.Empty:
                break
        self._on_close((1011, f"a server message could not be applied: {exc}"))

    def _safe(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            log.exception("a callback raised: %r", fn)
            if self.on_error is not None and fn is not self.on_error:
                try:
                    self.on_error(exc)
                except Exception:
                    log.exception("on_error raised")

    def _safe_error(self, fn: Callable[..., Any], exc: Exception) -> None:
        log.error("a callback raised: %r", fn, exc_info=exc)
        if self.on_error is not None and fn is not self.on_error:
            try:
                self.on_error(exc)
            except Exception:
                log.exception("on_error raised")

    def _queue_callbacks(self, w: _Work, diffs: list[TableDiff]) -> None:
        ev = w.event
        cbs = self._row_cbs
        for d in diffs:
            t = d.table
            if d.deletes:
                if cbs.get((t, "delete")):
                    w.calls.append(_RowBatch(cbs[(t, "delete")], d.deletes, "plain", ev))
                if cbs.get((t, "row_update")):
                    w.calls.append(_RowBatch(cbs[(t, "row_update")], d.deletes, "legacy_delete", ev))
            if d.updates_old:
                if cbs.get((t, "update")):
                    w.calls.append(_RowBatch(cbs[(t, "update")], d.updates_old, "pair", ev, d.updates_new))
                if cbs.get((t, "row_update")):
                    w.calls.append(
                        _RowBatch(cbs[(t, "row_update")], d.updates_old, "legacy_update", ev, d.updates_new)
                    )
            for rows in (d.inserts, d.events):
                if rows:
                    if cbs.get((t, "insert")):
                        w.calls.append(_RowBatch(cbs[(t, "insert")], rows, "plain", ev))
                    if cbs.get((t, "row_update")):
                        w.calls.append(_RowBatch(cbs[(t, "row_update")], rows, "legacy_insert", ev))
        w.after(diffs)

    # ----- incoming events ---------------------------------------------------------------------------
    def _on_event(self, ev: Event) -> None:
        kind = ev.kind
        if kind == "message":
            self.stats.messages_in += 1
            self.stats.bytes_in += ev.nbytes
            self._on_message(ev.data)
        elif kind == "open":
            pass  # the InitialConnection message completes the connection
        elif kind == "error":
            self._report(ev.data)
        elif kind == "close":
            self._on_close(ev.data)
        else:
            assert_never(kind)

    def _report(self, exc: BaseException) -> None:
        if isinstance(exc, ConnectionFailed):  # a failed attempt: one line, once per run of them
            self.last_error = self._failure = exc
            retrying = self.reconnect and not exc.permanent
            self._notice.failed(exc, retrying=retrying, handled=self.on_error is not None)
        else:
            log.warning("connection error: %s", exc)
        if self.on_error is not None:
            self._safe(self.on_error, exc)

    def _on_close(self, data: tuple[int | None, str]) -> None:
        was = self.state
        code, reason = data
        failure, self._failure = self._failure, None
        if self._closing or was == "closed":
            return
        for h in self._subs.values():  # nothing sent on this connection will be answered
            h._sub_rid = h._unsub_rid = None
        self._late.clear()
        for call in list(self._calls.values()):
            self._finish_call(call, "disconnected", "the connection closed before the result arrived", None)
        # what this connection failed to send must not go out on the next one: a call reported as
        # disconnected, and the subscription requests of this connection (the next one renews every
        # active and pending set itself; a second Subscribe for one set would break the protocol)
        self._outbox = [
            m
            for m in self._outbox
            if not (isinstance(m, CallReducer) and m.request_id in self._calls)
            and not isinstance(m, Subscribe | Unsubscribe)
        ]
        self._calls.clear()
        if failure is not None and failure.permanent:  # not retried: an unknown database, say
            self._set_state("failed")
            if self.on_disconnect is not None:
                self._safe(self.on_disconnect, self, failure.reason)
            return
        if was == "connected" and self.on_disconnect is not None:
            self._safe(self.on_disconnect, self, reason or (str(code) if code else None))
        if not self.reconnect:
            self._set_state("closed")
            return
        self._set_state("reconnecting")
        self._attempt += 1
        delay = min(self.reconnect_max_delay, self.reconnect_min_delay * (2 ** min(self._attempt - 1, 10)))
        delay *= 0.5 + random.random()  # jitter
        self._retry_at = time.perf_counter() + delay
        self.stats.reconnects += 1
        for sub in list(self._subs.values()):
            if sub.is_active:
                self._resubscribing.add(sub.query_set_id)
            elif sub.state == "ended":  # its Unsubscribe will never be answered: drop its rows here
                self._queue_drop(sub)

    def _on_message(self, msg: ServerMessage) -> None:
        """Dispatch one server message. A message that makes no sense at this point of the session
        raises :class:`ProtocolError` before anything changes; ``update()`` then treats the connection
        as lost (see :meth:`_unusable`)."""
        if not self._greeted and not isinstance(msg, InitialConnection):
            raise ProtocolError(msg, "before InitialConnection (the first message of every connection)")
        match msg:
            case TransactionUpdate():
                self._work.append(
                    _Work(
                        self.cache.transaction(msg.query_sets),
                        self._after_tx,
                        ReducerEvent(None, None, None, "committed", "", None),
                    )
                )
                self._count_rows(msg.query_sets)
            case ReducerResult():
                self._on_reducer_result(msg)
            case SubscribeApplied():
                self._on_applied(msg)
            case UnsubscribeApplied():
                self._on_unsubscribed(msg)
            case SubscriptionError():
                self._on_sub_error(msg)
            case OneOffQueryResult():
                self._on_one_off(msg)
            case InitialConnection():
                self._on_initial(msg)
            case ProcedureResult():
                raise ProtocolError(
                    msg, f"for request id {msg.request_id}, but this client never calls procedures"
                )
            case _:
                assert_never(msg)

    def _count_rows(self, query_sets: Any) -> None:
        n = 0
        for qs in query_sets:
            for t in qs.tables:
                for r in t.rows:
                    if isinstance(r, PersistentTableRows):
                        n += len(r.inserts) + len(r.deletes)
                    else:
                        n += len(r.events)
        self.stats.rows_in += n

    def _on_initial(self, msg: InitialConnection) -> None:
        if self._greeted:
            raise ProtocolError(msg, "a second time on one connection")
        self._greeted = True
        self.identity = msg.identity
        self.connection_id = msg.connection_id
        if self.token is None:
            self.token = msg.token
        self._attempt = 0
        self._notice.connected()
        self._set_state("connected")
        # re-subscribe everything that was active, then flush what waited for the connection
        resub = [self._subs[q] for q in sorted(self._resubscribing) if q in self._subs]
        for h in resub:
            self._send(Subscribe(self._request_id(), h.query_set_id, h.queries))
        for h in list(self._subs.values()):
            if h.state == "pending" and not any(
                isinstance(m, Subscribe) and m.query_set_id == h.query_set_id for m in self._outbox
            ):
                self._send(Subscribe(self._request_id(), h.query_set_id, h.queries))
        out, self._outbox = self._outbox, []
        for m in out:
            self._send(m)
        if self.on_connect is not None:
            self._safe(self.on_connect, self, msg.identity, msg.token)

    def _on_applied(self, msg: SubscribeApplied) -> None:
        h = self._subs.get(msg.query_set_id)
        if h is None:
            raise ProtocolError(
                msg, f"for query set {msg.query_set_id}, which this client never subscribed to"
            )
        if h._sub_rid is None:
            raise ProtocolError(
                msg, f"for query set {msg.query_set_id}, which has no Subscribe waiting for an answer"
            )
        if h._sub_rid != msg.request_id:
            raise ProtocolError(
                msg,
                f"with request id {msg.request_id}, which this client never sent for query set "
                f"{msg.query_set_id} (its Subscribe had request id {h._sub_rid})",
            )
        h._sub_rid = None
        replace: list[int] = []
        if msg.query_set_id in self._resubscribing:
            self._resubscribing.discard(msg.query_set_id)
            replace.append(msg.query_set_id)  # reconcile: old rows of this set out, new rows in
        if h.legacy:
            for other in list(self._subs.values()):
                if (
                    other.legacy
                    and other is not h
                    and other.query_set_id < h.query_set_id
                    and other.state != "ended"
                ):
                    other.state = "ended"
                    replace.append(other.query_set_id)
                    if self.state == "connected":
                        self._send(
                            Unsubscribe(self._request_id(), other.query_set_id, UnsubscribeFlags.DEFAULT)
                        )
        pending = self.cache.subscribe_applied(msg.query_set_id, msg.rows, replace=replace)
        self.stats.rows_in += sum(len(t.rows) for t in msg.rows.tables)

        def after(_: list[TableDiff]) -> None:
            h.state = "active"
            for cb in h._on_applied:
                self._work[0].calls.append((cb, (h,)))
            for acb in self._applied_cbs:
                self._work[0].calls.append((acb, ()))

        self._work.append(_Work(pending, after, None))

    def _queue_drop(self, h: SubscriptionHandle | None, query_set_id: int | None = None) -> None:
        qsid = h.query_set_id if h is not None else query_set_id
        if qsid is None:
            return
        self._subs.pop(qsid, None)

        def after(_: list[TableDiff]) -> None:
            if h is not None:
                h.state = "ended" if h.state != "error" else "error"
                for cb in h._on_end:
                    self._work[0].calls.append((cb, (h,)))

        self._work.append(_Work(self.cache.drop_set(qsid), after, None))

    def _on_unsubscribed(self, msg: UnsubscribeApplied) -> None:
        qsid, rid = msg.query_set_id, msg.request_id
        h = self._subs.get(qsid)
        if h is None:
            if self._late.get(qsid) == rid:  # the set failed while this answer was on its way
                del self._late[qsid]
                return
            raise ProtocolError(msg, f"for query set {qsid}, which this client never subscribed to")
        if h._unsub_rid is None:
            raise ProtocolError(msg, f"for query set {qsid}, which this client never unsubscribed")
        if h._unsub_rid != rid:
            raise ProtocolError(
                msg,
                f"with request id {rid}, which this client never sent for query set {qsid} "
                f"(its Unsubscribe had request id {h._unsub_rid})",
            )
        h._unsub_rid = None
        self._queue_drop(h)

    def _on_sub_error(self, msg: SubscriptionError) -> None:
        qsid, rid = msg.query_set_id, msg.request_id
        h = self._subs.get(qsid)
        if h is None:
            if rid is not None and self._late.get(qsid) == rid:  # the answer to an Unsubscribe in flight
                del self._late[qsid]
                return
            raise ProtocolError(msg, f"for query set {qsid}, which this client never subscribed to")
        if rid is not None and rid not in (h._sub_rid, h._unsub_rid):
            raise ProtocolError(
                msg, f"with request id {rid}, which this client never sent for query set {qsid}"
            )
        if h._unsub_rid is not None and rid != h._unsub_rid:
            self._late[qsid] = h._unsub_rid  # the set is gone, but its Unsubscribe will be answered
        h._sub_rid = h._unsub_rid = None
        h.state = "error"
        h.error = msg.error
        if rid is None or qsid in self.cache.sets:
            self._queue_drop(h)  # failed after it was applied: take its rows away
        else:
            self._subs.pop(qsid, None)

        def after(_: list[TableDiff]) -> None:
            for cb in h._on_error:
                self._work[0].calls.append((cb, (h, msg.error)))
            if not h._on_error:
                self._work[0].calls.append((self._report, (SubscriptionFailed(msg.error),)))

        self._work.append(_Work(None, after, None))

    def _on_one_off(self, msg: OneOffQueryResult) -> None:
        h = self._one_offs.pop(msg.request_id, None)
        if h is None:
            raise ProtocolError(
                msg, f"for request id {msg.request_id}, which matches no one-off query in flight"
            )
        result: Any = msg.result
        if hasattr(result, "error"):
            h.error = result.error
        else:
            rows: QueryRows = result.value
            for t in rows.tables:
                tb = self.module.tables.get(t.table)
                if tb is not None:
                    h.rows.setdefault(t.table, []).extend(tb.codec.decode(r) for r in t.rows.rows())
        h.done = True

        def after(_: list[TableDiff]) -> None:
            for cb in h._callbacks:
                self._work[0].calls.append((cb, (h,)))

        self._work.append(_Work(None, after, None))

    def _on_reducer_result(self, msg: ReducerResult) -> None:
        call = self._calls.pop(msg.request_id, None)
        if call is None:
            raise ProtocolError(
                msg, f"for request id {msg.request_id}, which matches no reducer call in flight"
            )
        outcome = msg.result
        if isinstance(outcome, ReducerOk):
            status, message, sets = "committed", "", outcome.transaction_update.query_sets
        elif isinstance(outcome, ReducerOkEmpty):
            status, message, sets = "committed", "", ()
        elif isinstance(outcome, ReducerErr):
            status, message, sets = "failed", outcome.message, ()
        else:
            assert isinstance(outcome, ReducerInternalError)
            status, message, sets = "internal_error", outcome.message, ()
        reducer = call.reducer if call is not None else None
        args = None
        if call is not None and reducer in self.module.reducers:
            try:
                args = self.module.reducer(reducer).decode_args(call.args)
            except SpacetimeError:
                args = None
        event = ReducerEvent(
            self.identity,
            self.connection_id,
            reducer,
            "committed" if status == "committed" else "failed",
            message,
            args,
            msg.timestamp,
        )
        pending = self.cache.transaction(sets) if sets else None

        def after(_: list[TableDiff]) -> None:
            w = self._work[0]
            if call is not None:
                self._finish_call(call, status, message, w)
            for cb in self._event_cbs:
                w.calls.append((cb, (TransactionUpdateMessage(event),)))
            if reducer is not None:
                for cb in self._reducer_cbs.get(reducer, []):
                    w.calls.append(
                        (
                            cb,
                            (
                                event.caller_identity,
                                event.caller_address,
                                event.status,
                                message,
                                *(args or []),
                            ),
                        )
                    )

        self._work.append(_Work(pending, after, event))

    def _finish_call(self, call: ReducerCall, status: str, message: str, w: _Work | None) -> None:
        call.status = status
        call.message = message
        call.round_trip = time.perf_counter() - call.sent_at
        if status in ("committed", "failed", "internal_error"):
            self.stats.round_trips[call.reducer].append(call.round_trip)
        for cb in call._callbacks:
            if w is not None:
                w.calls.append((cb, (call,)))
            else:
                self._safe(cb, call)

    def _after_tx(self, diffs: list[TableDiff]) -> None:
        if not self._event_cbs:
            return
        w = self._work[0]
        msg = TransactionUpdateMessage(w.event)
        for cb in self._event_cbs:
            w.calls.append((cb, (msg,)))


class ProtocolError(SpacetimeError):
    """The server sent a message that makes no sense at this point of the session: anything before
    InitialConnection, a second InitialConnection, an answer about a query set this client never
    subscribed to (or never unsubscribed), or a result for a request id it never sent.

    It is the server's fault (a bug, or a hostile server), not the caller's. The client passes it to
    ``on_error``, applies nothing of that message or of what followed it on that connection, and treats
    the connection as lost: it reconnects, re-subscribes and reconciles its cache (or closes, when
    ``reconnect`` is off). ``message_type`` names the message, ``reason`` says what was wrong with it.
    """

    def __init__(self, message: ServerMessage, reason: str) -> None:
        self.message_type = type(message).__name__
        self.reason = reason
        super().__init__(
            f"the server sent {self.message_type} {reason}: this breaks the protocol (a server bug or a "
            "hostile server, not a bug in the game); the connection is dropped and rebuilt"
        )


class SubscriptionFailed(SpacetimeError):
    """The server rejected or dropped a query set (passed to ``on_error`` when the handle has no
    ``on_error`` callback of its own)."""


class TransactionUpdateMessage:
    """What ``register_on_event`` callbacks receive: the documented attributes of the 0.x SDK."""

    def __init__(self, event: ReducerEvent | None) -> None:
        self.reducer_event = event
        self.transaction_type = "TransactionUpdate"

    @property
    def caller_identity(self) -> Identity | None:
        """The caller (None for other clients' transactions on v2)."""
        return self.reducer_event.caller_identity if self.reducer_event else None

    @property
    def caller_address(self) -> ConnectionId | None:
        """The caller's connection (None for other clients' transactions on v2)."""
        return self.reducer_event.caller_address if self.reducer_event else None

    @property
    def status(self) -> str:
        """``committed`` or ``failed``."""
        return self.reducer_event.status if self.reducer_event else "committed"

    @property
    def message(self) -> str:
        """The error message, "" when committed."""
        return self.reducer_event.message if self.reducer_event else ""

    @property
    def reducer_name(self) -> str | None:
        """The reducer (None for other clients' transactions on v2)."""
        return self.reducer_event.reducer_name if self.reducer_event else None

    @property
    def args(self) -> list[Any] | None:
        """The decoded arguments (None for other clients' transactions on v2)."""
        return self.reducer_event.args if self.reducer_event else None


_consume: Callable[[Any], None] = deque(maxlen=0).extend


def _queries(queries: Sequence[str]) -> tuple[str, ...]:
    if isinstance(queries, str):
        queries = [queries]
    out = tuple(queries)
    if not out or not all(isinstance(q, str) and q.strip() for q in out):
        raise ValueError("queries must be a non-empty list of SQL strings")
    return out
