"""The client session core, with no I/O (in the spirit of h11's ``Connection`` and websockets'
``Protocol``): it knows what the session means, never how bytes move or when callbacks run.

:class:`ClientSession` owns the request and query-set ids, the reducer calls, one-off queries and query
sets in flight with the request ids their answers must carry, the outbox of messages waiting for a
connection, and the reconnect decisions (which sets to renew, which to drop, when to retry: the backoff
is computed from a clock value passed in; nothing here sleeps, starts a thread or touches a socket).
:meth:`ClientSession.receive` checks a decoded server message against the session (raising
:class:`ProtocolError` when it makes no sense) and turns it into one typed :data:`SessionEvent` for the
driver (``DbConnection``), which applies rows to the cache and runs callbacks. Messages to write go to
:attr:`ClientSession.to_send`; the driver writes them and reports each as :meth:`~ClientSession.sent` or
:meth:`~ClientSession.unsent`.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any, Literal, assert_never

from ._errors import ProtocolError
from ._handles import CallStatus, OneOffQueryHandle, ReducerCall, SubscriptionHandle
from .protocol import (
    CallReducer,
    ClientMessage,
    InitialConnection,
    OneOffQuery,
    OneOffQueryResult,
    ProcedureResult,
    QueryRows,
    QuerySetUpdate,
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
from .sats import ConnectionId, Identity

__all__ = [
    "CallFinished",
    "ClientSession",
    "ConnectionState",
    "Greeted",
    "Lost",
    "QueryAnswered",
    "Reconnect",
    "SessionEvent",
    "SetApplied",
    "SetEnded",
    "SetFailed",
    "TransactionReceived",
]

#: Where a connection is: ``idle`` (never connected), ``connecting`` (the first attempt),
#: ``connected`` (InitialConnection arrived), ``reconnecting`` (lost; another attempt is scheduled),
#: ``closed`` (closed by the game, or lost with reconnect off).
#: ``failed``: a connection attempt failed for good (an unknown database, a refused token...; see
#: ``DbConnection.last_error``): the connection is not retried; ``connect()`` tries again.
ConnectionState = Literal["idle", "connecting", "connected", "reconnecting", "closed", "failed"]

DISCONNECTED = "the connection closed before the result arrived"


# ----- what the session makes of the server's messages -------------------------------------------------
@dataclass(frozen=True, slots=True)
class Greeted:
    """InitialConnection: the session is connected; the renewed subscriptions and the outbox are in
    :attr:`ClientSession.to_send`."""

    identity: Identity
    connection_id: ConnectionId
    token: str
    #: The query sets subscribed again on this connection (they were active when the last one was lost).
    renewed: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class TransactionReceived:
    """Another client's transaction (or a scheduled reducer's): rows of these query sets changed."""

    query_sets: tuple[QuerySetUpdate, ...]


@dataclass(frozen=True, slots=True)
class CallFinished:
    """The outcome of one of this client's reducer calls, with the rows its transaction changed (none
    unless committed)."""

    call: ReducerCall
    status: CallStatus
    message: str
    query_sets: tuple[QuerySetUpdate, ...]
    timestamp: Any


@dataclass(frozen=True, slots=True)
class SetApplied:
    """A query set's initial rows. The sets in ``replace`` lose the rows they hold, in the same diff:
    the set itself after a reconnect (a reconcile), and older ``subscribe`` sets it replaces."""

    handle: SubscriptionHandle
    rows: QueryRows
    replace: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SetEnded:
    """A query set is gone (unsubscribed, or failed after it was applied): drop its rows, then it ends.
    ``rows`` are the rows it held, when the server sent them (always on v1)."""

    handle: SubscriptionHandle
    rows: QueryRows | None = None


@dataclass(frozen=True, slots=True)
class SetFailed:
    """The server rejected a query set, or (``dropped``: an error answering no request) dropped one it
    had applied. Whatever rows the set holds must go, then its ``on_error`` callbacks run."""

    handle: SubscriptionHandle
    error: str
    dropped: bool


@dataclass(frozen=True, slots=True)
class QueryAnswered:
    """The answer to a one-off query: ``rows`` (when it succeeded) or ``error``."""

    handle: OneOffQueryHandle
    rows: QueryRows | None
    error: str | None


#: What :meth:`ClientSession.receive` makes of a server message.
SessionEvent = (
    Greeted | TransactionReceived | CallFinished | SetApplied | SetEnded | SetFailed | QueryAnswered
)


@dataclass(frozen=True, slots=True)
class Lost:
    """The connection was lost: ``calls`` waited for an outcome that will never come (their status is to
    be ``disconnected``); ``was_connected`` tells whether the session had been greeted."""

    was_connected: bool
    calls: tuple[ReducerCall, ...]


@dataclass(frozen=True, slots=True)
class Reconnect:
    """What follows a lost connection: a new attempt at ``retry_at`` (None: the session is closed), and
    the ended query sets whose Unsubscribe will never be answered (their rows go here)."""

    retry_at: float | None
    drops: tuple[SubscriptionHandle, ...]


class ClientSession:
    """The state of one client session across its connections; no I/O (see the module docstring).

    ``reconnect`` (on by default) retries a lost connection after ``reconnect_min_delay`` seconds,
    doubling up to ``reconnect_max_delay``, each delay jittered by a factor in [0.5, 1.5)."""

    def __init__(
        self, *, reconnect: bool = True, reconnect_min_delay: float = 0.25, reconnect_max_delay: float = 10.0
    ) -> None:
        self.reconnect = reconnect
        self.reconnect_min_delay = reconnect_min_delay
        self.reconnect_max_delay = reconnect_max_delay
        self.state: ConnectionState = "idle"
        #: True once this connection's InitialConnection arrived (reset for each new transport).
        self.greeted = False
        #: True after :meth:`close` (a lost connection is then not reported).
        self.closing = False
        #: Failed attempts since the last successful connection (the backoff's exponent).
        self.attempt = 0
        #: When the next connection attempt is due (a clock value), or None.
        self.retry_at: float | None = None
        self.calls: dict[int, ReducerCall] = {}
        self.one_offs: dict[int, OneOffQueryHandle] = {}
        self.subs: dict[int, SubscriptionHandle] = {}
        #: Messages waiting for a connection (flushed on the next InitialConnection).
        self.outbox: list[ClientMessage] = []
        #: Messages to write now, in order (the driver takes them).
        self.to_send: list[ClientMessage] = []
        self._resubscribing: set[int] = set()
        # request ids of each set's Subscribe / Unsubscribe sent on this connection and not answered yet
        # (an answer with any other id, or for a set with none, breaks the protocol)
        self._sub_rids: dict[int, int] = {}
        self._unsub_rids: dict[int, int] = {}
        # query sets that ended while an Unsubscribe was in flight: its answer (by request id) is expected
        self._late: dict[int, int] = {}
        self._next_request = 1
        self._next_qs = 1
        self._lock = threading.Lock()

    # ----- ids ---------------------------------------------------------------------------------------
    def next_request_id(self) -> int:
        """A new request id (1 .. 2**32 - 1, wrapping; safe from any thread)."""
        with self._lock:
            rid = self._next_request
            self._next_request = (self._next_request % 0xFFFFFFFF) + 1
            return rid

    def next_query_set_id(self) -> int:
        """A new query set id (1 .. 2**32 - 1, wrapping)."""
        qs = self._next_qs
        self._next_qs = (self._next_qs % 0xFFFFFFFF) + 1
        return qs

    # ----- what the game asks ------------------------------------------------------------------------
    def send(self, msg: ClientMessage) -> None:
        """Write ``msg`` now when connected, else keep it for the next connection."""
        if self.state == "connected":
            self.to_send.append(msg)
        else:
            self.outbox.append(msg)

    def call(self, reducer: str, args: bytes, now: float) -> ReducerCall:
        """A reducer call (``args``: its BSATN arguments) sent at ``now``."""
        call = ReducerCall(self.next_request_id(), reducer, bytes(args), now)
        self.calls[call.request_id] = call
        self.send(CallReducer(call.request_id, 0, reducer, call.args))
        return call

    def subscribe(self, handle: SubscriptionHandle) -> None:
        """A new query set (its handle made with :meth:`next_query_set_id`)."""
        self.subs[handle.query_set_id] = handle
        self.send(Subscribe(self.next_request_id(), handle.query_set_id, handle.queries))

    def unsubscribe(self, handle: SubscriptionHandle) -> bool:
        """The game drops a query set. True when its rows must be dropped here at once (the session is
        not connected: the server holds no such set); otherwise they go with the server's answer."""
        if handle.state in ("ended", "error"):
            return False
        handle.state = "ended"
        if self.state == "connected":
            self.send(Unsubscribe(self.next_request_id(), handle.query_set_id, UnsubscribeFlags.DEFAULT))
            return False
        self.subs.pop(handle.query_set_id, None)
        return True

    def one_off(self, sql: str) -> OneOffQueryHandle:
        """A one-off query."""
        h = OneOffQueryHandle(self.next_request_id(), sql)
        self.one_offs[h.request_id] = h
        self.send(OneOffQuery(h.request_id, sql))
        return h

    # ----- what the driver reports about the wire ---------------------------------------------------------
    def sent(self, msg: ClientMessage) -> None:
        """``msg`` went out on the current connection (its answer must carry its request id)."""
        if isinstance(msg, Subscribe):
            if msg.query_set_id in self.subs:
                self._sub_rids[msg.query_set_id] = msg.request_id
        elif isinstance(msg, Unsubscribe) and msg.query_set_id in self.subs:
            self._unsub_rids[msg.query_set_id] = msg.request_id

    def unsent(self, msg: ClientMessage) -> None:
        """Writing ``msg`` failed (the connection is being lost): it waits for the next connection."""
        self.outbox.append(msg)

    # ----- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> bool:
        """The game asks to connect: True when a transport is to be opened (not already connecting)."""
        if self.state in ("connecting", "connected"):
            return False
        self.closing = False
        self.state = "connecting"
        return True

    def opening(self) -> None:
        """A new transport is being opened: its first message must be InitialConnection."""
        self.greeted = False

    def close(self) -> None:
        """The game closes the connection for good (no reconnect, even if one was scheduled)."""
        self.closing = True
        self.retry_at = None
        self.state = "closed"

    def retry_due(self, now: float) -> bool:
        """True (once) when the scheduled reconnect is due at ``now``: open a new transport."""
        if self.retry_at is not None and now >= self.retry_at:
            self.retry_at = None
            return True
        return False

    def backoff(self, attempt: int) -> float:
        """The delay before attempt number ``attempt`` (1, 2, ...), jittered."""
        delay = min(self.reconnect_max_delay, self.reconnect_min_delay * (2.0 ** min(attempt - 1, 10)))
        return delay * (0.5 + random.random())

    def lost(self) -> Lost | None:
        """The transport closed. Nothing sent on it will be answered: the calls waiting for an outcome
        are returned (and forgotten); the messages it failed to send that must not go out on the next
        connection are dropped (a call reported as disconnected, and this connection's subscription
        requests: the next one renews every active and pending set itself, and a second Subscribe for
        one set would break the protocol). None when the session is closed (nothing to report)."""
        if self.closing or self.state == "closed":
            return None
        self._sub_rids.clear()
        self._unsub_rids.clear()
        self._late.clear()
        calls = tuple(self.calls.values())
        self.outbox = [
            m
            for m in self.outbox
            if not (isinstance(m, CallReducer) and m.request_id in self.calls)
            and not isinstance(m, Subscribe | Unsubscribe)
        ]
        self.calls.clear()
        return Lost(self.state == "connected", calls)

    def plan_reconnect(self, now: float, permanent: bool = False) -> Reconnect:
        """After :meth:`lost`: close (reconnect off), fail (``permanent``: the attempt failed in a way
        that retrying cannot fix, e.g. an unknown database), or schedule the next attempt with backoff
        from ``now``, marking the active sets for renewal and returning the ended ones to drop."""
        if permanent:
            self.state = "failed"
            return Reconnect(None, ())
        if not self.reconnect:
            self.state = "closed"
            return Reconnect(None, ())
        self.state = "reconnecting"
        self.attempt += 1
        self.retry_at = now + self.backoff(self.attempt)
        drops: list[SubscriptionHandle] = []
        for sub in list(self.subs.values()):
            if sub.is_active:
                self._resubscribing.add(sub.query_set_id)
            elif sub.state == "ended":  # its Unsubscribe will never be answered: drop its rows here
                self.subs.pop(sub.query_set_id, None)
                drops.append(sub)
        return Reconnect(self.retry_at, tuple(drops))

    # ----- what the server says ----------------------------------------------------------------------------
    def receive(self, msg: ServerMessage) -> SessionEvent | None:
        """What ``msg`` means for the session (None: nothing to do). Raises :class:`ProtocolError`,
        before anything changes, when it makes no sense at this point of the session."""
        if not self.greeted and not isinstance(msg, InitialConnection):
            raise ProtocolError(msg, "before InitialConnection (the first message of every connection)")
        match msg:
            case TransactionUpdate():
                return TransactionReceived(msg.query_sets)
            case ReducerResult():
                return self._reducer_result(msg)
            case SubscribeApplied():
                return self._applied(msg)
            case UnsubscribeApplied():
                return self._unsubscribed(msg)
            case SubscriptionError():
                return self._sub_error(msg)
            case OneOffQueryResult():
                return self._one_off(msg)
            case InitialConnection():
                return self._initial(msg)
            case ProcedureResult():
                raise ProtocolError(
                    msg, f"for request id {msg.request_id}, but this client never calls procedures"
                )
            case _:
                assert_never(msg)

    def _initial(self, msg: InitialConnection) -> Greeted:
        if self.greeted:
            raise ProtocolError(msg, "a second time on one connection")
        self.greeted = True
        self.attempt = 0
        self.state = "connected"
        # re-subscribe everything that was active, then flush what waited for the connection
        send = self.to_send
        renewed = []
        for q in sorted(self._resubscribing):
            h = self.subs.get(q)
            if h is not None:
                send.append(Subscribe(self.next_request_id(), h.query_set_id, h.queries))
                renewed.append(q)
        for h in list(self.subs.values()):
            if h.state == "pending" and not any(
                isinstance(m, Subscribe) and m.query_set_id == h.query_set_id for m in self.outbox
            ):
                send.append(Subscribe(self.next_request_id(), h.query_set_id, h.queries))
        out, self.outbox = self.outbox, []
        send.extend(out)
        return Greeted(msg.identity, msg.connection_id, msg.token, tuple(renewed))

    def _applied(self, msg: SubscribeApplied) -> SetApplied:
        qsid = msg.query_set_id
        h = self.subs.get(qsid)
        if h is None:
            raise ProtocolError(msg, f"for query set {qsid}, which this client never subscribed to")
        rid = self._sub_rids.get(qsid)
        if rid is None:
            raise ProtocolError(msg, f"for query set {qsid}, which has no Subscribe waiting for an answer")
        if rid != msg.request_id:
            raise ProtocolError(
                msg,
                f"with request id {msg.request_id}, which this client never sent for query set "
                f"{qsid} (its Subscribe had request id {rid})",
            )
        del self._sub_rids[qsid]
        replace: list[int] = []
        if qsid in self._resubscribing:
            self._resubscribing.discard(qsid)
            replace.append(qsid)  # reconcile: old rows of this set out, new rows in
        if h.legacy:
            for other in list(self.subs.values()):
                if other.legacy and other is not h and other.query_set_id < qsid and other.state != "ended":
                    other.state = "ended"
                    replace.append(other.query_set_id)
                    if self.state == "connected":
                        self.send(
                            Unsubscribe(self.next_request_id(), other.query_set_id, UnsubscribeFlags.DEFAULT)
                        )
        return SetApplied(h, msg.rows, tuple(replace))

    def _unsubscribed(self, msg: UnsubscribeApplied) -> SetEnded | None:
        qsid, rid = msg.query_set_id, msg.request_id
        h = self.subs.get(qsid)
        if h is None:
            if self._late.get(qsid) == rid:  # the set failed while this answer was on its way
                del self._late[qsid]
                return None
            raise ProtocolError(msg, f"for query set {qsid}, which this client never subscribed to")
        sent = self._unsub_rids.get(qsid)
        if sent is None:
            raise ProtocolError(msg, f"for query set {qsid}, which this client never unsubscribed")
        if sent != rid:
            raise ProtocolError(
                msg,
                f"with request id {rid}, which this client never sent for query set {qsid} "
                f"(its Unsubscribe had request id {sent})",
            )
        del self._unsub_rids[qsid]
        del self.subs[qsid]
        return SetEnded(h, msg.rows)

    def _sub_error(self, msg: SubscriptionError) -> SetFailed | None:
        qsid, rid = msg.query_set_id, msg.request_id
        h = self.subs.get(qsid)
        if h is None:
            if rid is not None and self._late.get(qsid) == rid:  # the answer to an Unsubscribe in flight
                del self._late[qsid]
                return None
            raise ProtocolError(msg, f"for query set {qsid}, which this client never subscribed to")
        sub_rid, unsub_rid = self._sub_rids.get(qsid), self._unsub_rids.get(qsid)
        if rid is not None and rid not in (sub_rid, unsub_rid):
            raise ProtocolError(
                msg, f"with request id {rid}, which this client never sent for query set {qsid}"
            )
        if unsub_rid is not None and rid != unsub_rid:
            self._late[qsid] = unsub_rid  # the set is gone, but its Unsubscribe will be answered
        self._sub_rids.pop(qsid, None)
        self._unsub_rids.pop(qsid, None)
        h.state = "error"
        h.error = msg.error
        del self.subs[qsid]
        return SetFailed(h, msg.error, dropped=rid is None)

    def _one_off(self, msg: OneOffQueryResult) -> QueryAnswered:
        h = self.one_offs.pop(msg.request_id, None)
        if h is None:
            raise ProtocolError(
                msg, f"for request id {msg.request_id}, which matches no one-off query in flight"
            )
        result: Any = msg.result
        if hasattr(result, "error"):
            return QueryAnswered(h, None, result.error)
        return QueryAnswered(h, result.value, None)

    def _reducer_result(self, msg: ReducerResult) -> CallFinished:
        call = self.calls.pop(msg.request_id, None)
        if call is None:
            raise ProtocolError(
                msg, f"for request id {msg.request_id}, which matches no reducer call in flight"
            )
        outcome = msg.result
        match outcome:
            case ReducerOk():
                return CallFinished(
                    call, "committed", "", outcome.transaction_update.query_sets, msg.timestamp
                )
            case ReducerOkEmpty():
                return CallFinished(call, "committed", "", (), msg.timestamp)
            case ReducerErr():
                return CallFinished(call, "failed", outcome.message, (), msg.timestamp)
            case ReducerInternalError():
                return CallFinished(call, "internal_error", outcome.message, (), msg.timestamp)
            case _:
                assert_never(outcome)
