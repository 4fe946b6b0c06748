"""``DbConnection``: one connection to a database, driven by ``update()`` on the game thread.

It is the driver around the I/O-free session core (:class:`~spacetime_game.sdk._session.ClientSession`,
which keeps the ids, the bookkeeping and the reconnect decisions): it owns the transport, the cache, the
frame budget and the callbacks. The reader thread (the transport) only decodes frames and queues them in
order. ``update()`` applies them to the cache one message at a time, each as one atomic diff, then fires
the callbacks; with a time budget a big message is decoded over several calls, applied at once, and its
callbacks are delivered over the following calls (see :mod:`~spacetime_game.sdk._scheduler`). Every
callback runs on the thread calling ``update()``; an exception in one is logged and passed to
``on_error`` while the others still run.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, assert_never

from ._cache import ClientCache
from ._errors import ProtocolError, SubscriptionFailed
from ._events import AppliedKind, AppliedMessage, ReducerEvent, TransactionUpdateMessage
from ._failures import ConnectionFailed, FailureNotice
from ._gc import count_new_rows, settle_frozen
from ._handles import CallStatus, Job, OneOffQueryHandle, ReducerCall, SubscriptionHandle
from ._netstats import NetStats
from ._scheduler import Batched, RowCallback, Work, queue_row_callbacks, run_calls
from ._session import (
    DISCONNECTED,
    CallFinished,
    ClientSession,
    ConnectionState,
    Greeted,
    QueryAnswered,
    SessionEvent,
    SetApplied,
    SetEnded,
    SetFailed,
    TransactionReceived,
)
from ._tables import TableDiff
from ._transport import (
    DEFAULT_MAX_SEND_BUFFER,
    OFFERED_PROTOCOLS,
    Transport,
    TransportClosed,
    TransportError,
    TransportEvent,
    TransportMessage,
    TransportOpened,
    WebSocketTransport,
    build_url,
)
from ._v1 import POOL
from .bindings import BatchRowEvent, ModuleBindings, RowEvent
from .protocol import (
    DEFAULT_MAX_MESSAGE_SIZE,
    PROTOCOL_V2,
    PROTOCOL_V3,
    BsatnRowList,
    Compression,
    PersistentTableRows,
    QueryRows,
    QuerySetUpdate,
    ServerMessage,
    SingleTableRows,
    TableUpdate,
    v1,
)
from .sats import ConnectionId, DecodeError, Identity, SpacetimeError

__all__ = [
    "AppliedKind",
    "AppliedMessage",
    "ConnectionState",
    "DbConnection",
    "NetStats",
    "OneOffQueryHandle",
    "ProtocolError",
    "ReducerCall",
    "ReducerEvent",
    "SubscriptionFailed",
    "SubscriptionHandle",
    "TransactionUpdateMessage",
]

log = logging.getLogger("spacetime_game.sdk")


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

    A connection attempt that fails is reported as a :class:`~spacetime_game.sdk.ConnectionFailed` (one
    readable reason) to ``on_error`` and in :attr:`last_error`. A permanent failure (an unknown database,
    a refused token, no common protocol) ends in the ``failed`` state and also reaches ``on_disconnect``;
    a transient one (refused, reset, timed out, a 5xx) is retried with the backoff. With no ``on_error``
    and no logging configured, the first failure of a run is also written to stderr as one line.

    The client offers the protocols of 2.x servers (``v3``, ``v2``) and of 1.x servers (``v1``) and works the
    same on each; ``protocol="v1"`` (or ``"v2"``, ``"v3"``) offers only that one, and :attr:`protocol` is the
    one in use. What differs is in docs/protocol.md section 3.8.

    ``gc_freeze=True`` keeps the cached rows out of the garbage collector's full collections, which
    otherwise traverse every cached row (a 45 ms pause with 100,000 rows here, whenever one runs): after
    each 1,024 new rows, :meth:`update` ends by collecting and then calling ``gc.freeze()``. It acts on the
    whole process: what is alive then is frozen too (see docs/architecture.md for what that means).
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
        gc_freeze: bool = False,
        protocol: str | None = None,
    ) -> None:
        if not isinstance(module, ModuleBindings):
            raise TypeError(
                f"module must be a ModuleBindings (module_bindings.MODULE), got {type(module).__name__}"
            )
        self.module = module
        self.host = host
        self.database = database
        self._gc_freeze = bool(gc_freeze)
        self.token = token
        self.ssl_enabled = ssl_enabled
        self.compression = compression
        extra = {} if confirmed is None else {"confirmed": "true" if confirmed else "false"}
        self.url = build_url(host, database, ssl_enabled, compression, extra)
        self._session = ClientSession(
            reconnect=reconnect,
            reconnect_min_delay=reconnect_min_delay,
            reconnect_max_delay=reconnect_max_delay,
        )
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
        self._protocols = _offered(protocol)
        self._transport_factory = transport_factory or (
            lambda url, tok: WebSocketTransport(
                url,
                tok,
                protocols=self._protocols,
                max_message_size=self.max_message_size,
                max_send_buffer=self.max_send_buffer,
            )
        )
        #: The subprotocol of the current (or last) connection, None before the first one opened:
        #: ``v3.bsatn.spacetimedb`` or ``v2.bsatn.spacetimedb`` (2.x servers), ``v1.bsatn.spacetimedb``
        #: (1.x servers). ``protocol=`` limits the choice to one of them.
        self.protocol: str | None = None
        self._pooled = False  # v1: every subscription's rows are counted in one set (see _v1)
        self._resync: _Resync | None = None
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self.on_error = on_error
        self.on_state = on_state
        self.identity: Identity | None = None
        self.connection_id: ConnectionId | None = None
        self.cache = ClientCache(module)
        self.stats = NetStats()
        #: The last failed connection attempt (its ``reason``, ``permanent``, ``status``), or None. It is
        #: kept after a later success: look at :attr:`state` to know whether the connection is up.
        self.last_error: ConnectionFailed | None = None
        #: Why the connection was last lost or closed, as one line (the server's close reason, the
        #: failed attempt's reason, or that this client closed it), or None while it has never been.
        #: Kept after a later success: look at :attr:`state` to know whether the connection is up.
        self.disconnect_reason: str | None = None
        self._failure: ConnectionFailed | None = None  # this attempt's failure, until its close
        self._notice = FailureNotice()
        self._events: queue.SimpleQueue[TransportEvent] = queue.SimpleQueue()
        self._transport: Transport | None = None
        self._work: deque[Work] = deque()
        self._row_cbs: dict[tuple[str, str], list[RowCallback]] = defaultdict(list)
        self._reducer_cbs: dict[str, list[Callable[..., None]]] = defaultdict(list)
        self._event_cbs: list[Callable[[Any], None]] = []
        self._applied_cbs: list[Callable[[], None]] = []
        self._applying_msg_cbs: list[Callable[[AppliedMessage], None]] = []
        self._applied_msg_cbs: list[Callable[[AppliedMessage], None]] = []
        self._wakeups: list[Callable[[], None]] = []
        self._arrived = threading.Event()
        self._reported_state: ConnectionState = self._session.state

    # ----- the session's settings and state ---------------------------------------------------------------
    @property
    def state(self) -> ConnectionState:
        """Where the connection is (see :data:`ConnectionState`)."""
        return self._session.state

    @property
    def reconnect(self) -> bool:
        """Whether a lost connection is rebuilt (re-subscribing and reconciling the cache)."""
        return self._session.reconnect

    @reconnect.setter
    def reconnect(self, value: bool) -> None:
        self._session.reconnect = value

    @property
    def reconnect_min_delay(self) -> float:
        """The first reconnect delay in seconds (doubled per failed attempt, jittered)."""
        return self._session.reconnect_min_delay

    @reconnect_min_delay.setter
    def reconnect_min_delay(self, value: float) -> None:
        self._session.reconnect_min_delay = value

    @property
    def reconnect_max_delay(self) -> float:
        """The longest reconnect delay in seconds."""
        return self._session.reconnect_max_delay

    @reconnect_max_delay.setter
    def reconnect_max_delay(self, value: float) -> None:
        self._session.reconnect_max_delay = value

    # ----- connection ------------------------------------------------------------------------------
    def connect(self) -> DbConnection:
        """Open the connection in the background (events arrive through :meth:`update`)."""
        if not self._session.start():
            return self
        self._state_changed()
        self._open()
        return self

    def _open(self) -> None:
        self._session.opening()
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
        self._session.close()  # a pending reconnect must not reopen a closed connection
        self.disconnect_reason = "closed by this client"
        t = self._transport
        self._transport = None
        if t is not None:
            t.close()
        self._state_changed()

    @property
    def is_connected(self) -> bool:
        """True between InitialConnection and a disconnect."""
        return self.state == "connected"

    def _state_changed(self) -> None:
        """Report the session's state to ``on_state`` if it changed since last reported."""
        state = self._session.state
        if state != self._reported_state:
            self._reported_state = state
            if self.on_state is not None:
                self._safe(self.on_state, state)

    # ----- sending --------------------------------------------------------------------------------------
    def _flush(self) -> None:
        """Write what the session has to send, in order; what fails waits for the next connection."""
        session = self._session
        while session.to_send:
            out, session.to_send = session.to_send, []
            for msg in out:
                t = self._transport
                if t is None:
                    session.unsent(msg)
                    continue
                try:
                    self.stats.bytes_out += t.send([msg])
                    self.stats.messages_out += 1
                except (ConnectionError, OSError, SpacetimeError) as exc:
                    # the transport reports the lost connection; then a reducer call in the outbox is
                    # reported "disconnected" and dropped, and subscriptions are sent again on the next
                    # connection
                    log.info("send failed (%s); the connection is being rebuilt", exc)
                    session.unsent(msg)
                    continue
                session.sent(msg)

    def call_reducer(
        self, reducer: str, args: bytes, callback: Callable[..., None] | None = None
    ) -> ReducerCall:
        """Send a reducer call (``args``: the BSATN of its parameters); returns its handle."""
        call = self._session.call(reducer, args, time.perf_counter())
        if callback is not None:
            call.add_done_callback(callback)
        self._flush()
        return call

    def subscribe_multi(self, queries: Sequence[str]) -> SubscriptionHandle:
        """Subscribe to a new query set; returns its handle (``on_applied``, ``on_error``, ``unsubscribe``)."""
        handle = SubscriptionHandle(self._unsubscribe, self._session.next_query_set_id(), _queries(queries))
        self._session.subscribe(handle)
        self._flush()
        return handle

    def subscribe(self, queries: Sequence[str]) -> SubscriptionHandle:
        """The documented ``subscribe``: replaces every previous ``subscribe`` query set. Rows that no
        longer match are deleted (with callbacks) when the new set is applied."""
        qs = _queries(queries)
        handle = SubscriptionHandle(self._unsubscribe, self._session.next_query_set_id(), qs, legacy=True)
        self._session.subscribe(handle)
        self._flush()
        return handle

    def _unsubscribe(self, handle: SubscriptionHandle) -> None:
        if self._session.unsubscribe(handle):  # not on the server now: drop its rows locally
            self._queue_drop(handle)
        self._flush()

    def one_off_query(
        self, sql: str, callback: Callable[[OneOffQueryHandle], None] | None = None
    ) -> OneOffQueryHandle:
        """Run a query once, without subscribing; the rows arrive in the handle."""
        h = self._session.one_off(sql)
        if callback is not None:
            h.add_done_callback(callback)
        self._flush()
        return h

    # ----- callbacks (BindingsClient) ------------------------------------------------------------------
    def iter_rows(self, table: str) -> Iterator[Any]:
        """Every cached row of ``table``."""
        return self.cache.table(table).iter()

    def count_rows(self, table: str) -> int:
        """How many rows of ``table`` are cached."""
        return len(self.cache.table(table))

    @property
    def cached_rows(self) -> int:
        """How many rows are cached, over every table."""
        return sum(map(len, self.cache.tables.values()))

    @property
    def gc_freeze(self) -> bool:
        """Keep the cached rows out of the garbage collector's full collections (see the class docstring
        and docs/architecture.md): after each 1,024 new rows, :meth:`update` ends with a collection and a
        ``gc.freeze()``. Turning it on later counts the rows already cached, so that the next
        :meth:`update` freezes them; turning it off stops further freezes (what is frozen stays so)."""
        return self._gc_freeze

    @gc_freeze.setter
    def gc_freeze(self, on: bool) -> None:
        if on and not self._gc_freeze:
            count_new_rows(self.cached_rows)
        self._gc_freeze = bool(on)

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

    def on_rows(self, table: str, event: BatchRowEvent, callback: Callable[..., None]) -> Any:
        """Register a row callback that takes rows in bulk: ``callback(rows, event)`` for ``insert`` and
        ``delete``, ``callback(olds, news, event)`` for ``update`` (old and new rows at the same
        positions), with lists (do not keep or modify them). One message's rows come in one call, or
        in several chunks, in order, when ``update(budget)`` spreads them over frames. Within a chunk
        the per-row callbacks of the same event run first. For a game with thousands of entities this
        saves a Python call per row. An exception is reported like any callback's and loses the rest
        of that chunk for this callback only. Returns the callback (for :meth:`remove_on_rows`)."""
        self.cache.table(table)
        if event not in ("insert", "update", "delete"):
            raise ValueError(f"unknown bulk row event {event!r} (insert, update or delete)")
        self._row_cbs[(table, event)].append(Batched(callback))
        return callback

    def remove_on_rows(self, table: str, event: BatchRowEvent, callback: Callable[..., None]) -> None:
        """Unregister a callback given to :meth:`on_rows`."""
        cbs = self._row_cbs.get((table, event), [])
        wrapped = Batched(callback)
        if wrapped in cbs:
            cbs.remove(wrapped)

    def on_reducer(self, reducer: str, callback: Callable[..., None]) -> Any:
        """Register ``callback(caller_identity, caller_address, status, message, *args)`` for calls of
        ``reducer``: this client's own, and on v1 (a 1.x server) everyone's (docs/protocol.md section 3.8)."""
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

    def register_on_applying(self, callback: Callable[[AppliedMessage], None]) -> None:
        """Call ``callback(message)`` when a server message has been applied to the cache, before its
        row callbacks: each subscription applied (also after a reconnect), each committed transaction
        (this client's own call or anyone else's) and each ended query set (an
        :class:`AppliedMessage`: its kind, event and the tables it changed). With an ``update()``
        budget the row callbacks may be spread over several frames; this callback comes first."""
        self._applying_msg_cbs.append(callback)

    def unregister_on_applying(self, callback: Callable[[AppliedMessage], None]) -> None:
        """Stop calling a ``register_on_applying`` callback."""
        if callback in self._applying_msg_cbs:
            self._applying_msg_cbs.remove(callback)

    def register_on_applied(self, callback: Callable[[AppliedMessage], None]) -> None:
        """Call ``callback(message)`` after the last row callback of each message that
        :meth:`register_on_applying` reports (the same :class:`AppliedMessage`): the whole transaction
        is then in the cache and every row callback has seen it. It runs before the message's other
        callbacks (the call's outcome, ``on_event``, reducer callbacks, ``on_applied`` of handles)."""
        self._applied_msg_cbs.append(callback)

    def unregister_on_applied(self, callback: Callable[[AppliedMessage], None]) -> None:
        """Stop calling a ``register_on_applied`` callback."""
        if callback in self._applied_msg_cbs:
            self._applied_msg_cbs.remove(callback)

    # ----- update() -----------------------------------------------------------------------------------
    @property
    def progress(self) -> float:
        """How much of the message being applied is decoded (1.0 when nothing is pending)."""
        w = self._work[0] if self._work else None
        return 1.0 if w is None or w.pending is None else w.pending.progress

    def update(self, budget: float | None = None, max_messages: int | None = None) -> int:
        """Apply what has arrived and fire callbacks, on this thread. ``budget`` is in seconds (e.g.
        0.004); ``max_messages`` caps how many messages are applied. Returns how many were applied.

        Under a budget, row callbacks run in chunks sized to the time left at their measured cost per
        row. Decoding and batches of 1,024 row callbacks or more run with the cyclic garbage collector
        paused (see docs/architecture.md: no setting is left changed)."""
        session = self._session
        if not self._work and self._events.empty() and session.retry_at is None:
            if self._gc_freeze:
                settle_frozen()  # (rows counted when gc_freeze was turned on)
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
                    if self._gc_freeze:
                        count_new_rows(sum(len(d.inserts) + len(d.updates_new) for d in diffs))
                    if w.event is not None and w.pending is not None:  # a transaction (not a set)
                        self.stats.transactions += 1
                    w.applied = True
                    self._queue_callbacks(w, diffs)
                    applied += 1
                if not run_calls(w, deadline, self._safe, self._safe_error):
                    break
                self._work.popleft()
                if max_messages is not None and applied >= max_messages:
                    break
                if deadline is not None and time.perf_counter() >= deadline:
                    break
                continue
            if session.retry_due(time.perf_counter()):
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
        self.stats.calls_in_flight = len(session.calls)
        if self._gc_freeze:
            settle_frozen()
        return applied

    def _queue_callbacks(self, w: Work, diffs: list[TableDiff]) -> None:
        """Queue an applied message's callbacks: ``on_applying``, the row callbacks, ``on_applied``, then
        the message's own (``w.after``)."""
        if w.kind is not None and (self._applying_msg_cbs or self._applied_msg_cbs):
            rows = {
                d.table: len(d.inserts) + len(d.deletes) + len(d.updates_old) + len(d.events)
                for d in diffs
                if d
            }
            info = AppliedMessage(w.kind, w.event, rows)
            for cb in self._applying_msg_cbs:
                w.calls.append((cb, (info,)))
            queue_row_callbacks(w, diffs, self._row_cbs)
            for cb in self._applied_msg_cbs:
                w.calls.append((cb, (info,)))
        else:
            queue_row_callbacks(w, diffs, self._row_cbs)
        w.after(diffs)

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
        self._on_close(1011, f"a server message could not be applied: {exc}")

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

    def _run_job(self, job: Job) -> None:
        """Run a callback at once (there is no message being applied to queue it behind)."""
        self._safe(job[0], *job[1])

    # ----- incoming events ---------------------------------------------------------------------------
    def _on_event(self, ev: TransportEvent) -> None:
        match ev:
            case TransportMessage():
                self.stats.messages_in += 1
                self.stats.bytes_in += ev.nbytes
                self._on_message(ev.message, ev.call)
            case TransportOpened():  # (the InitialConnection message completes the connection)
                self.protocol = ev.protocol
                self._pooled = ev.protocol == v1.PROTOCOL_V1
            case TransportError():
                self._report(ev.error)
            case TransportClosed():
                self._on_close(ev.code, ev.reason)
            case _:
                assert_never(ev)

    def _report(self, exc: BaseException) -> None:
        if isinstance(exc, ConnectionFailed):  # a failed attempt: one line, once per run of them
            self.last_error = self._failure = exc
            retrying = self.reconnect and not exc.permanent
            self._notice.failed(exc, retrying=retrying, handled=self.on_error is not None)
        else:
            log.warning("connection error: %s", exc)
        if self.on_error is not None:
            self._safe(self.on_error, exc)

    def _on_close(self, code: int | None, reason: str) -> None:
        failure, self._failure = self._failure, None
        if self._resync is not None:
            self._resync.lost()
        lost = self._session.lost()
        if lost is None:  # closed by the game
            return
        self.disconnect_reason = (
            failure.reason
            if failure is not None
            else reason or (f"closed with code {code}" if code else None)
        ) or "the connection was lost"
        for call in lost.calls:
            self._finish_call(call, "disconnected", DISCONNECTED, self._run_job)
        if failure is not None and failure.permanent:  # not retried: an unknown database, say
            self._session.plan_reconnect(time.perf_counter(), permanent=True)
            self._state_changed()
            if self.on_disconnect is not None:
                self._safe(self.on_disconnect, self, failure.reason)
            return
        if lost.was_connected and self.on_disconnect is not None:
            self._safe(self.on_disconnect, self, reason or (str(code) if code else None))
        plan = self._session.plan_reconnect(time.perf_counter())
        self._state_changed()
        if plan.retry_at is None:
            return
        self.stats.reconnects += 1
        for sub in plan.drops:
            self._queue_drop(sub)

    def _on_message(self, msg: ServerMessage, call: v1.TransactionUpdate | None = None) -> None:
        """Dispatch one server message. A message that makes no sense at this point of the session
        raises :class:`ProtocolError` before anything changes; ``update()`` then treats the connection
        as lost (see :meth:`_unusable`). ``call``: on v1, who made another client's transaction."""
        ev = self._session.receive(msg)
        if ev is not None:
            self._dispatch(ev, call)

    def _dispatch(self, ev: SessionEvent, call: v1.TransactionUpdate | None = None) -> None:
        resync = self._resync
        if resync is not None and not resync.take(ev, call):
            return
        self._on_session_event(ev, call)

    def _on_session_event(self, ev: SessionEvent, call: v1.TransactionUpdate | None = None) -> None:
        match ev:
            case TransactionReceived():
                event = self._others_event(call)
                self._work.append(
                    Work(
                        self.cache.transaction(ev.query_sets),
                        self._after_tx,
                        event,
                        kind="transaction",
                    )
                )
                self._count_rows(ev.query_sets)
            case CallFinished():
                self._on_call_finished(ev)
            case SetApplied():
                self._on_applied(ev)
            case SetEnded():
                self._queue_drop(ev.handle, ev.rows)
            case SetFailed():
                self._on_set_failed(ev)
            case QueryAnswered():
                self._on_one_off(ev)
            case Greeted():
                self._on_greeted(ev)
            case _:
                assert_never(ev)

    def _count_rows(self, query_sets: Sequence[QuerySetUpdate]) -> None:
        n = 0
        for qs in query_sets:
            for t in qs.tables:
                for r in t.rows:
                    if isinstance(r, PersistentTableRows):
                        n += len(r.inserts) + len(r.deletes)
                    else:
                        n += len(r.events)
        self.stats.rows_in += n

    def _others_event(self, call: v1.TransactionUpdate | None) -> ReducerEvent:
        """The event of another client's (or the server's) transaction: on v1 the server says who called
        which reducer with what; on v2 and v3 it does not (the fields are None)."""
        if call is None:
            return ReducerEvent(None, None, None, "committed", "", None)
        info = call.reducer_call
        args = None
        if info.reducer_name in self.module.reducers:
            try:
                args = self.module.reducer(info.reducer_name).decode_args(info.args)
            except SpacetimeError:
                args = None
        return ReducerEvent(
            call.caller_identity,
            call.caller_connection_id,
            info.reducer_name,
            "committed",
            "",
            args,
            call.timestamp,
        )

    def _on_greeted(self, ev: Greeted) -> None:
        self.identity = ev.identity
        self.connection_id = ev.connection_id
        if self.token is None:
            self.token = ev.token
        if self._pooled and (ev.renewed or self.cache.sets.get(POOL)):
            # v1 after a reconnect: the pool is rebuilt from every renewed set at once (see _Resync)
            self._resync = _Resync(self, set(ev.renewed))
            if not ev.renewed:
                self._resync.finish()
        self._notice.connected()
        self._state_changed()
        self._flush()  # the renewed subscriptions, then what waited for the connection
        if self.on_connect is not None:
            self._safe(self.on_connect, self, ev.identity, ev.token)

    def _on_applied(self, ev: SetApplied) -> None:
        h = ev.handle
        self._flush()  # the Unsubscribes of the ``subscribe`` sets this one replaces
        if self._pooled:  # v1: added to the pool (replaced sets leave it with their UnsubscribeApplied)
            pending = self.cache.subscribe_applied(POOL, ev.rows)
        else:
            pending = self.cache.subscribe_applied(h.query_set_id, ev.rows, replace=ev.replace)
        self.stats.rows_in += sum(len(t.rows) for t in ev.rows.tables)
        self._work.append(Work(pending, self._after_applied([h]), None, kind="subscribe"))

    def _after_applied(self, handles: list[SubscriptionHandle]) -> Callable[[list[TableDiff]], None]:
        def after(_: list[TableDiff]) -> None:
            calls = self._work[0].calls
            for h in handles:
                h.set_applied(calls.append)
                for acb in self._applied_cbs:
                    calls.append((acb, ()))

        return after

    def _queue_drop(self, h: SubscriptionHandle, rows: QueryRows | None = None) -> None:
        """Remove the rows of ``h``'s set (in order with the other messages), then end it. On v1 the set's
        rows are the ones the server sent with its end (``rows``): they leave the pool."""

        def after(_: list[TableDiff]) -> None:
            h.set_ended(self._work[0].calls.append)

        if not self._pooled:
            pending = self.cache.drop_set(h.query_set_id)
        elif rows is not None and rows.tables and POOL in self.cache.sets:
            tables = tuple(
                TableUpdate(t.table, (PersistentTableRows(_NO_ROWS, t.rows),)) for t in rows.tables
            )
            pending = self.cache.transaction([QuerySetUpdate(POOL, tables)])
        else:
            pending = None  # (v1, rows unknown: a reconnect rebuilds the pool)
        self._work.append(Work(pending, after, None, kind="unsubscribe"))

    def _on_set_failed(self, ev: SetFailed) -> None:
        h = ev.handle
        if self._pooled:
            if ev.dropped:
                log.warning(
                    "subscription %s failed after it was applied (%s); on a v1 server its rows stay in "
                    "the cache until the connection is rebuilt",
                    h.queries,
                    ev.error,
                )
        elif ev.dropped or h.query_set_id in self.cache.sets:
            self._queue_drop(h)  # failed after it was applied: take its rows away

        def after(_: list[TableDiff]) -> None:
            calls = self._work[0].calls
            if not h.set_failed(ev.error, calls.append):
                calls.append((self._report, (SubscriptionFailed(ev.error),)))

        self._work.append(Work(None, after, None))

    def _on_one_off(self, ev: QueryAnswered) -> None:
        h = ev.handle
        rows: dict[str, list[Any]] = {}
        if ev.rows is not None:
            for t in ev.rows.tables:
                tb = self.module.tables.get(t.table)
                if tb is not None:
                    rows.setdefault(t.table, []).extend(tb.codec.decode(r) for r in t.rows.rows())

        def after(_: list[TableDiff]) -> None:
            h.set_answer(rows, ev.error, self._work[0].calls.append)

        self._work.append(Work(None, after, None))

    def _on_call_finished(self, ev: CallFinished) -> None:
        call, status, message = ev.call, ev.status, ev.message
        reducer = call.reducer
        args = None
        if reducer in self.module.reducers:
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
            ev.timestamp,
        )
        pending = self.cache.transaction(ev.query_sets) if ev.query_sets else None

        def after(_: list[TableDiff]) -> None:
            w = self._work[0]
            self._finish_call(call, status, message, w.calls.append)
            for cb in self._event_cbs:
                w.calls.append((cb, (TransactionUpdateMessage(event),)))
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

        kind: AppliedKind | None = "transaction" if status == "committed" else None
        self._work.append(Work(pending, after, event, kind=kind))

    def _finish_call(
        self, call: ReducerCall, status: CallStatus, message: str, schedule: Callable[[Job], None]
    ) -> None:
        round_trip = time.perf_counter() - call.sent_at
        if status in ("committed", "failed", "internal_error"):
            self.stats.round_trips[call.reducer].append(round_trip)
            self.stats.round_trip_counts[call.reducer] += 1
        call.set_outcome(status, message, round_trip, schedule)

    def _after_tx(self, diffs: list[TableDiff]) -> None:
        w = self._work[0]
        event = w.event
        if self._event_cbs:
            msg = TransactionUpdateMessage(event)
            for cb in self._event_cbs:
                w.calls.append((cb, (msg,)))
        if event is not None and event.reducer_name is not None:  # (v1: another client's call)
            for cb in self._reducer_cbs.get(event.reducer_name, []):
                w.calls.append(
                    (
                        cb,
                        (
                            event.caller_identity,
                            event.caller_address,
                            event.status,
                            event.message,
                            *(event.args or []),
                        ),
                    )
                )


def _queries(queries: Sequence[str]) -> tuple[str, ...]:
    if isinstance(queries, str):
        queries = [queries]
    out = tuple(queries)
    if not out or not all(isinstance(q, str) and q.strip() for q in out):
        raise ValueError("queries must be a non-empty list of SQL strings")
    return out


_NO_ROWS = BsatnRowList(None, (), b"")
_SHORT_NAMES = {"v1": v1.PROTOCOL_V1, "v2": PROTOCOL_V2, "v3": PROTOCOL_V3}


def _offered(protocol: str | None) -> tuple[str, ...]:
    """The subprotocols to offer: all (None), or the one named (``v1``, ``v2``, ``v3`` or its full name)."""
    if protocol is None:
        return OFFERED_PROTOCOLS
    full = _SHORT_NAMES.get(protocol, protocol)
    if full not in OFFERED_PROTOCOLS:
        raise ValueError(
            f"unknown protocol {protocol!r}; expected one of v1, v2, v3 (or None: the server picks)"
        )
    return (full,)


class _Resync:
    """v1 after a reconnect: the server resends each renewed subscription's rows separately, and they all
    go to one pooled set. They are gathered, and applied as one replacement of the pool once the last one
    arrived (so that rows that stayed get no callbacks, as on v2); what arrives meanwhile waits, in order,
    and runs after it."""

    def __init__(self, client: DbConnection, waiting: set[int]) -> None:
        self.client = client
        self.waiting = waiting
        self.tables: list[SingleTableRows] = []
        self.handles: list[SubscriptionHandle] = []
        self.held: list[tuple[SessionEvent, v1.TransactionUpdate | None]] = []

    def take(self, ev: SessionEvent, call: v1.TransactionUpdate | None) -> bool:
        """Whether ``ev`` is to be handled now (False: it was gathered or held)."""
        if isinstance(ev, SetApplied) and ev.handle.query_set_id in self.waiting:
            self.waiting.discard(ev.handle.query_set_id)
            self.tables.extend(ev.rows.tables)
            self.handles.append(ev.handle)
            self.client.stats.rows_in += sum(len(t.rows) for t in ev.rows.tables)
            if not self.waiting:
                self.finish()
            return False
        if isinstance(ev, SetFailed) and ev.handle.query_set_id in self.waiting:
            self.waiting.discard(ev.handle.query_set_id)
            if not self.waiting:
                self.client._on_session_event(ev, call)
                self.finish()
                return False
            return True
        self.held.append((ev, call))
        return False

    def finish(self) -> None:
        """Replace the pool with the gathered rows, then handle what was held."""
        c = self.client
        c._resync = None
        pending = c.cache.subscribe_applied(POOL, QueryRows(tuple(self.tables)), replace=(POOL,))
        c._work.append(Work(pending, c._after_applied(self.handles), None, kind="subscribe"))
        for ev, call in self.held:
            c._dispatch(ev, call)

    def lost(self) -> None:
        """The connection was lost first: what needs no cache still happens (one-off answers, calls'
        outcomes without their rows, ended sets); the next connection rebuilds the pool."""
        c = self.client
        c._resync = None
        for ev, _ in self.held:
            if isinstance(ev, QueryAnswered | SetFailed):
                c._on_session_event(ev)
            elif isinstance(ev, CallFinished):
                c._on_session_event(CallFinished(ev.call, ev.status, ev.message, (), ev.timestamp))
            elif isinstance(ev, SetEnded):
                c._queue_drop(ev.handle, None)
