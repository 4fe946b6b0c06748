"""The v1 protocol (``v1.bsatn.spacetimedb``, what SpacetimeDB 1.x servers speak) on the dev server.

The runtime works in v2 terms: query sets, ReducerResult for the caller, TransactionUpdate per query set.
A v1 connection gets a :class:`V1Link` that translates both ways, with the semantics of a 1.x server:

- ``SubscribeMulti`` / ``SubscribeSingle`` are query sets under the client's ``query_id``; their answers are
  ``SubscribeMultiApplied`` / ``SubscribeApplied``. ``UnsubscribeMulti`` / ``Unsubscribe`` answer with the
  rows the queries held, as deletes. The legacy ``Subscribe`` replaces every subscription of the client and
  is answered by ``InitialSubscription``.
- The caller of a reducer gets the full ``TransactionUpdate`` (the reducer, its arguments, the outcome, and
  on success its own changed rows), except with the ``NoSuccessNotify`` flag, where a success that changed
  none of its rows is not answered.
- Every other subscriber whose rows changed gets the full ``TransactionUpdate`` too, with the caller's
  identity and arguments (:func:`transaction_bytes`), or ``TransactionUpdateLight`` when it connected with
  ``light=true``. A transaction no reducer made (a one-shot schedule row ending) is sent light.
- ``OneOffQuery`` carries the client's ``message_id`` back in ``OneOffQueryResponse``.

The rows of every query set of a v1 client go into one ``DatabaseUpdate`` per message: a table's
``updates`` hold one ``QueryUpdate`` per query set (deletes first), so a row that two subscriptions share
is sent for each, as a 1.x server does (the 1.x clients count them). Event-table rows, which v1 does not
know, are sent as inserted and deleted by the same transaction: a client that knows the table is an event
table (ours, with V10 bindings) fires them as events; to any other, the row comes and goes and nothing
stays in its cache.
"""

from __future__ import annotations

import struct
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, assert_never

from ..sdk import ConnectionId, DecodeError, Identity, TimeDuration, Timestamp
from ..sdk.protocol import (
    BsatnRowList,
    CallProcedure,
    CallReducer,
    ClientMessage,
    EventTableRows,
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
    v1,
)

__all__ = [
    "LEGACY_QUERY_ID",
    "OversizedV1Subscribe",
    "TxCall",
    "V1Link",
    "database_update",
    "transaction_bytes",
    "v1_frame_items",
]

#: The query set of the legacy ``Subscribe`` (one per client, replaced by the next one).
LEGACY_QUERY_ID: Final = 0xFFFFFFFF
_EMPTY: Final = BsatnRowList(None, (), b"")
_ZERO_CONNECTION: Final = ConnectionId.zero()


@dataclass(frozen=True, slots=True)
class TxCall:
    """The reducer call behind a transaction, as a v1 ``TransactionUpdate`` reports it."""

    reducer: str
    reducer_id: int
    args: bytes
    caller: Identity
    connection_id: ConnectionId | None
    request_id: int
    timestamp: Timestamp
    duration_micros: int


class V1Link:
    """One v1 connection: turns its messages into the runtime's (v2) ones and the runtime's answers into
    v1 messages. ``reducer_id`` names a reducer's id; ``table_id`` a table's."""

    def __init__(
        self,
        identity: Identity,
        connection_id: ConnectionId,
        light: bool,
        reducer_id: Callable[[str], int],
        table_id: Callable[[str], int],
    ) -> None:
        self.identity = identity
        self.connection_id = connection_id
        self.light = light
        self.reducer_id = reducer_id
        self.table_id = table_id
        self.single: set[int] = set()  # query ids of SubscribeSingle (answered in its single-table form)
        self.active: set[int] = set()  # query ids subscribed or being subscribed
        self._hidden: set[int] = set()  # request ids whose answer the client must not see (legacy drops)
        self._one_offs: dict[int, bytes] = {}  # request id -> the client's message_id
        self._calls: dict[int, deque[tuple[str, bytes, int, float]]] = {}  # request id -> calls in flight
        self._next = 0x80000000  # request ids of our own (one-off queries, legacy drops)

    # ----- client to runtime ---------------------------------------------------------------------------------
    def _own_request_id(self) -> int:
        self._next = self._next + 1 if self._next < 0xFFFFFFFF else 0x80000000
        return self._next

    def incoming(self, msg: v1.ClientMessage) -> list[ClientMessage]:
        """The runtime messages that carry out one v1 message (raises ``ValueError`` for a message no 1.x
        server accepts: the connection is closed with the reason)."""
        match msg:
            case v1.CallReducer():
                if msg.flags not in (v1.CallReducerFlags.FULL_UPDATE, v1.CallReducerFlags.NO_SUCCESS_NOTIFY):
                    raise ValueError(f"invalid CallReducer flags {msg.flags}")
                self._calls.setdefault(msg.request_id, deque()).append(
                    (msg.reducer, msg.args, msg.flags, time.perf_counter())
                )
                return [CallReducer(msg.request_id, 0, msg.reducer, msg.args)]
            case v1.SubscribeMulti():
                self._check_new(msg.query_id)
                self.active.add(msg.query_id)
                return [Subscribe(msg.request_id, msg.query_id, msg.query_strings)]
            case v1.SubscribeSingle():
                self._check_new(msg.query_id)
                self.active.add(msg.query_id)
                self.single.add(msg.query_id)
                return [Subscribe(msg.request_id, msg.query_id, (msg.query,))]
            case v1.UnsubscribeMulti() | v1.Unsubscribe():
                return [Unsubscribe(msg.request_id, msg.query_id, UnsubscribeFlags.SEND_DROPPED_ROWS)]
            case v1.Subscribe():  # replaces everything: drop every query set without telling, then one
                out: list[ClientMessage] = []
                for qid in sorted(self.active):
                    rid = self._own_request_id()
                    self._hidden.add(rid)
                    out.append(Unsubscribe(rid, qid, UnsubscribeFlags.DEFAULT))
                self.active = {LEGACY_QUERY_ID}
                self.single.clear()
                out.append(Subscribe(msg.request_id, LEGACY_QUERY_ID, msg.query_strings))
                return out
            case v1.OneOffQuery():
                rid = self._own_request_id()
                self._one_offs[rid] = bytes(msg.message_id)
                return [OneOffQuery(rid, msg.query_string)]
            case v1.CallProcedure():
                return [CallProcedure(msg.request_id, msg.flags, msg.procedure, msg.args)]
            case _:
                assert_never(msg)

    def _check_new(self, query_id: int) -> None:
        if query_id == LEGACY_QUERY_ID:
            raise ValueError(f"query id {query_id} is reserved (the legacy Subscribe's)")

    # ----- runtime to client -----------------------------------------------------------------------------------
    def outgoing(self, msg: ServerMessage) -> v1.ServerMessage | None:
        """The v1 message for one of the runtime's answers to this client (None: nothing is sent)."""
        match msg:
            case InitialConnection():
                return v1.IdentityToken(msg.identity, msg.token, msg.connection_id)
            case ReducerResult():
                return self._reducer_result(msg)
            case SubscribeApplied():
                return self._applied(msg)
            case UnsubscribeApplied():
                if msg.request_id in self._hidden:
                    self._hidden.discard(msg.request_id)
                    return None
                return self._unsubscribed(msg)
            case SubscriptionError():
                if msg.request_id is not None and msg.request_id in self._hidden:
                    self._hidden.discard(msg.request_id)
                    return None
                self.active.discard(msg.query_set_id)
                self.single.discard(msg.query_set_id)
                legacy = msg.query_set_id == LEGACY_QUERY_ID
                return v1.SubscriptionError(
                    0, msg.request_id, None if legacy else msg.query_set_id, None, msg.error
                )
            case OneOffQueryResult():
                message_id = self._one_offs.pop(msg.request_id, b"")
                result: Any = msg.result
                if hasattr(result, "error"):
                    return v1.OneOffQueryResponse(message_id, result.error, (), TimeDuration(0))
                tables = tuple(v1.OneOffTable(t.table, t.rows) for t in result.value.tables)
                return v1.OneOffQueryResponse(message_id, None, tables, TimeDuration(0))
            case ProcedureResult():
                return v1.ProcedureResult(
                    msg.status, msg.timestamp, msg.total_host_execution_duration, msg.request_id
                )
            case TransactionUpdate():  # (the runtime sends these as bytes made by transaction_bytes)
                return v1.TransactionUpdateLight(0, database_update(msg.query_sets, self.table_id))
            case _:
                assert_never(msg)

    def _reducer_result(self, msg: ReducerResult) -> v1.TransactionUpdate | None:
        queue = self._calls.get(msg.request_id)
        if not queue:
            return None
        reducer, args, flags, t0 = queue.popleft()
        if not queue:
            del self._calls[msg.request_id]
        outcome = msg.result
        status: v1.UpdateStatus
        if isinstance(outcome, ReducerOk):
            sets = outcome.transaction_update.query_sets
            if flags == v1.CallReducerFlags.NO_SUCCESS_NOTIFY and not sets:
                return None
            status = v1.Committed(database_update(sets, self.table_id))
        elif isinstance(outcome, ReducerOkEmpty):
            if flags == v1.CallReducerFlags.NO_SUCCESS_NOTIFY:
                return None
            status = v1.Committed(v1.DatabaseUpdate(()))
        elif isinstance(outcome, ReducerErr | ReducerInternalError):
            status = v1.Failed(outcome.message)
        else:
            return None
        micros = int((time.perf_counter() - t0) * 1e6)
        return v1.TransactionUpdate(
            status,
            msg.timestamp,
            self.identity,
            self.connection_id,
            v1.ReducerCallInfo(reducer, self.reducer_id(reducer), args, msg.request_id),
            0,
            TimeDuration(micros),
        )

    def _applied(self, msg: SubscribeApplied) -> v1.ServerMessage:
        qid = msg.query_set_id
        if qid == LEGACY_QUERY_ID:
            return v1.InitialSubscription(
                _rows_update(msg.rows, self.table_id, inserts=True), msg.request_id, TimeDuration(0)
            )
        if qid in self.single:
            return v1.SubscribeApplied(msg.request_id, 0, qid, _single(msg.rows, self.table_id, inserts=True))
        return v1.SubscribeMultiApplied(
            msg.request_id, 0, qid, _rows_update(msg.rows, self.table_id, inserts=True)
        )

    def _unsubscribed(self, msg: UnsubscribeApplied) -> v1.ServerMessage:
        qid = msg.query_set_id
        self.active.discard(qid)
        rows = msg.rows or QueryRows(())
        if qid in self.single:
            self.single.discard(qid)
            return v1.UnsubscribeApplied(msg.request_id, 0, qid, _single(rows, self.table_id, inserts=False))
        return v1.UnsubscribeMultiApplied(
            msg.request_id, 0, qid, _rows_update(rows, self.table_id, inserts=False)
        )


# ----- building the v1 shapes --------------------------------------------------------------------------------
def _table_update(table_id: int, name: str, updates: list[v1.QueryUpdate]) -> v1.TableUpdate:
    return v1.TableUpdate(
        table_id, name, sum(len(u.deletes) + len(u.inserts) for u in updates), tuple(updates)
    )


def _rows_update(rows: QueryRows, table_id: Callable[[str], int], *, inserts: bool) -> v1.DatabaseUpdate:
    return v1.DatabaseUpdate(
        tuple(
            _table_update(
                table_id(t.table),
                t.table,
                [v1.QueryUpdate(_EMPTY, t.rows) if inserts else v1.QueryUpdate(t.rows, _EMPTY)],
            )
            for t in rows.tables
        )
    )


def _single(rows: QueryRows, table_id: Callable[[str], int], *, inserts: bool) -> v1.SubscribeRows:
    update = _rows_update(rows, table_id, inserts=inserts)
    if update.tables:
        t = update.tables[0]
        return v1.SubscribeRows(t.table_id, t.table_name, t)
    return v1.SubscribeRows(0, "", v1.TableUpdate(0, "", 0, ()))


def database_update(sets: Iterable[QuerySetUpdate], table_id: Callable[[str], int]) -> v1.DatabaseUpdate:
    """The changes of several query sets as one v1 ``DatabaseUpdate``: per table, one ``QueryUpdate`` per
    query set that changed it."""
    per_table: dict[str, list[v1.QueryUpdate]] = {}
    for qs in sets:
        for t in qs.tables:
            updates = per_table.setdefault(t.table_name, [])
            for rows in t.rows:
                if isinstance(rows, EventTableRows):  # inserted and deleted at once: nothing stays
                    updates.append(v1.QueryUpdate(rows.events, rows.events))
                else:
                    updates.append(v1.QueryUpdate(rows.deletes, rows.inserts))
    return v1.DatabaseUpdate(
        tuple(_table_update(table_id(name), name, updates) for name, updates in per_table.items())
    )


def transaction_bytes(
    sets: Sequence[QuerySetUpdate], call: TxCall | None, light: bool, table_id: Callable[[str], int]
) -> bytes:
    """The BSATN of the v1 message that tells a subscriber (not the caller) about a committed transaction:
    the full ``TransactionUpdate`` with the call, or ``TransactionUpdateLight``."""
    update = database_update(sets, table_id)
    if light or call is None:
        return v1.server_message_codec.encode(v1.TransactionUpdateLight(0, update))
    return v1.server_message_codec.encode(
        v1.TransactionUpdate(
            v1.Committed(update),
            call.timestamp,
            call.caller,
            call.connection_id or _ZERO_CONNECTION,
            v1.ReducerCallInfo(call.reducer, call.reducer_id, call.args, call.request_id),
            0,
            TimeDuration(call.duration_micros),
        )
    )


# ----- reading v1 client frames ------------------------------------------------------------------------------
@dataclass(frozen=True)
class OversizedV1Subscribe:
    """A SubscribeMulti or legacy Subscribe with more query strings than a connection may hold, left
    undecoded; ``query_id`` is None for the legacy Subscribe."""

    request_id: int
    query_id: int | None
    queries: int


_TAG_SUBSCRIBE: Final = 1
_TAG_SUBSCRIBE_MULTI: Final = 4
_U32: Final = struct.Struct("<I")


def v1_frame_items(
    data: bytes, max_queries: int, skip_step: int
) -> Iterator[v1.ClientMessage | OversizedV1Subscribe | None]:
    """The one message of a v1 client frame. A (legacy or multi) Subscribe with more than ``max_queries``
    query strings is not decoded but reported as :class:`OversizedV1Subscribe`; while its strings are
    skipped, ``None`` is yielded every ``skip_step`` strings so that the caller can let other work run.
    Raises DecodeError."""
    if data[:1] in (bytes((_TAG_SUBSCRIBE,)), bytes((_TAG_SUBSCRIBE_MULTI,))) and len(data) >= 5:
        (count,) = _U32.unpack_from(data, 1)
        if count > max_queries:
            off = 5
            for done in range(count):
                if off + 4 > len(data):
                    raise DecodeError(f"v1.ClientMessage: query_strings[{done}]", off, "truncated")
                off += 4 + _U32.unpack_from(data, off)[0]
                if done % skip_step == skip_step - 1:
                    yield None
            multi = data[0] == _TAG_SUBSCRIBE_MULTI
            tail = 8 if multi else 4
            if off + tail != len(data):
                raise DecodeError(
                    "v1.ClientMessage", min(off, len(data)), "truncated or followed by extra bytes"
                )
            request_id = _U32.unpack_from(data, off)[0]
            yield OversizedV1Subscribe(
                request_id, _U32.unpack_from(data, off + 4)[0] if multi else None, count
            )
            return
    yield v1.decode_client_frame(data)
