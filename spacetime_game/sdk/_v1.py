"""The client on a 1.x server: the v1 protocol (``v1.bsatn.spacetimedb``) translated to and from the v2
messages the session and the cache work with (docs/protocol.md, "v1 and v2").

:class:`V1Adapter` belongs to one connection (the transport makes one when the server chose v1). Going out,
a query set is a ``SubscribeMulti`` under the query set id, its end an ``UnsubscribeMulti``, a one-off query
carries its request id as its ``message_id``. Coming in:

- ``IdentityToken`` is the ``InitialConnection``;
- ``SubscribeMultiApplied`` / ``UnsubscribeMultiApplied`` are the query set's ``SubscribeApplied`` /
  ``UnsubscribeApplied`` (the latter always with the rows it held);
- the full ``TransactionUpdate`` of this connection's own call (its connection id and a request id in
  flight) is the call's ``ReducerResult``; anyone else's is a ``TransactionUpdate``, and the transport hands
  the v1 message along so that the client can tell its reducer callbacks who called what with which
  arguments (v2 no longer says);
- ``TransactionUpdateLight`` is a ``TransactionUpdate``.

v1 updates are per table, not per query set: every row a v1 server sends is given to one query set,
:data:`POOL`, which counts each row as often as the server sent it (a row two subscriptions share is sent
for each of them). The client (``DbConnection``) keeps the rows of all v1 subscriptions there.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterable
from typing import Final, assert_never

from .protocol import (
    DEFAULT_MAX_MESSAGE_SIZE,
    BsatnRowList,
    CallProcedure,
    CallReducer,
    ClientMessage,
    Err,
    InitialConnection,
    Ok,
    OneOffQuery,
    OneOffQueryResult,
    PersistentTableRows,
    ProcedureInternalError,
    ProcedureResult,
    QueryRows,
    QuerySetUpdate,
    ReducerErr,
    ReducerOk,
    ReducerResult,
    ServerMessage,
    SingleTableRows,
    Subscribe,
    SubscribeApplied,
    SubscriptionError,
    TableUpdate,
    TransactionUpdate,
    Unsubscribe,
    UnsubscribeApplied,
    v1,
)
from .sats import ConnectionId, DecodeError

__all__ = ["POOL", "V1Adapter"]

#: The query set that holds every row of a v1 connection (v2 query set ids start at 1).
POOL: Final = 0
_ID: Final = struct.Struct("<I")
_STRING: Final = struct.Struct("<I")


class V1Adapter:
    """Translates one v1 connection's messages (see the module docstring). :meth:`outgoing` runs on the
    game thread, :meth:`incoming` on the transport's reader thread."""

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self.max_message_size = max_message_size
        #: This connection's id (from its IdentityToken).
        self.connection_id: ConnectionId | None = None
        self._calls: set[int] = set()  # request ids of this connection's calls without an answer
        self._lock = threading.Lock()

    # ----- out ---------------------------------------------------------------------------------------------
    def outgoing(self, msg: ClientMessage) -> v1.ClientMessage:
        """The v1 message for one of the session's messages."""
        match msg:
            case CallReducer():
                with self._lock:
                    self._calls.add(msg.request_id)
                return v1.CallReducer(msg.reducer, msg.args, msg.request_id, v1.CallReducerFlags.FULL_UPDATE)
            case Subscribe():
                return v1.SubscribeMulti(msg.query_strings, msg.request_id, msg.query_set_id)
            case Unsubscribe():
                return v1.UnsubscribeMulti(msg.request_id, msg.query_set_id)
            case OneOffQuery():
                return v1.OneOffQuery(_ID.pack(msg.request_id), msg.query_string)
            case CallProcedure():
                return v1.CallProcedure(msg.procedure, msg.args, msg.request_id, msg.flags)
            case _:
                assert_never(msg)

    def encode(self, messages: Iterable[ClientMessage]) -> list[bytes]:
        """One v1 frame per message."""
        return [v1.encode_client_frame(self.outgoing(m)) for m in messages]

    # ----- in ------------------------------------------------------------------------------------------------
    def incoming(self, msg: v1.ServerMessage) -> tuple[ServerMessage | None, v1.TransactionUpdate | None]:
        """The session's message for one v1 message (None: nothing for the session), and for another
        client's transaction the v1 message itself (who called what). Raises :class:`DecodeError` for a
        message this client never asks for, or rows that do not decode."""
        match msg:
            case v1.IdentityToken():
                self.connection_id = msg.connection_id
                return InitialConnection(msg.identity, msg.connection_id, msg.token), None
            case v1.SubscribeMultiApplied():
                return SubscribeApplied(msg.request_id, msg.query_id, self._rows(msg.update, "inserts")), None
            case v1.UnsubscribeMultiApplied():
                rows = self._rows(msg.update, "deletes")
                return UnsubscribeApplied(msg.request_id, msg.query_id, rows), None
            case v1.SubscriptionError():
                if msg.query_id is None:
                    raise DecodeError("v1.SubscriptionError", 0, f"for no query id: {msg.error}")
                return SubscriptionError(msg.request_id, msg.query_id, msg.error), None
            case v1.TransactionUpdate():
                return self._transaction(msg)
            case v1.TransactionUpdateLight():
                return self._update(msg.update), None
            case v1.OneOffQueryResponse():
                if len(msg.message_id) != 4:
                    raise DecodeError("v1.OneOffQueryResponse", 0, "a message_id this client never sent")
                (rid,) = _ID.unpack(msg.message_id)
                if msg.error is not None:
                    return OneOffQueryResult(rid, Err(msg.error)), None
                tables = tuple(SingleTableRows(t.table_name, t.rows) for t in msg.tables)
                return OneOffQueryResult(rid, Ok(QueryRows(tables))), None
            case v1.ProcedureResult():
                status = msg.status
                if isinstance(status, v1.ProcedureOutOfEnergy):
                    status = ProcedureInternalError("out of energy")
                return ProcedureResult(
                    status, msg.timestamp, msg.total_host_execution_duration, msg.request_id
                ), None
            case v1.InitialSubscription() | v1.SubscribeApplied() | v1.UnsubscribeApplied():
                raise DecodeError(
                    f"v1.{type(msg).__name__}", 0, "the answer to a request this client never sends"
                )
            case _:
                assert_never(msg)

    def _transaction(
        self, msg: v1.TransactionUpdate
    ) -> tuple[ServerMessage | None, v1.TransactionUpdate | None]:
        rid = msg.reducer_call.request_id
        own = False
        if self.connection_id is not None and msg.caller_connection_id == self.connection_id:
            with self._lock:
                own = rid in self._calls
                self._calls.discard(rid)
        status = msg.status
        if own:
            if isinstance(status, v1.Committed):
                outcome: ReducerOk | ReducerErr = ReducerOk(b"", self._update(status.update))
            else:
                text = status.message if isinstance(status, v1.Failed) else "out of energy"
                outcome = ReducerErr(_STRING.pack(len(text.encode())) + text.encode())
            return ReducerResult(rid, msg.timestamp, outcome), None
        if not isinstance(status, v1.Committed):
            return None, None  # (a server tells only the caller of a failure)
        return self._update(status.update), msg

    def _update(self, update: v1.DatabaseUpdate) -> TransactionUpdate:
        tables = []
        for t in update.tables:
            parts = tuple(PersistentTableRows(q.inserts, q.deletes) for q in self._query_updates(t))
            if parts:
                tables.append(TableUpdate(t.table_name, parts))
        return TransactionUpdate((QuerySetUpdate(POOL, tuple(tables)),) if tables else ())

    def _query_updates(self, table: v1.TableUpdate) -> list[v1.QueryUpdate]:
        try:
            return [v1.query_update(u, self.max_message_size) for u in table.updates]
        except DecodeError as exc:
            raise exc.within(f"table {table.table_name}") from None

    def _rows(self, update: v1.DatabaseUpdate, side: str) -> QueryRows:
        out = []
        for t in update.tables:
            for q in self._query_updates(t):
                rows: BsatnRowList = getattr(q, side)
                out.append(SingleTableRows(t.table_name, rows))
        return QueryRows(tuple(out))
