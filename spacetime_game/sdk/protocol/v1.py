"""The v1 client and server messages (``v1.bsatn.spacetimedb``, the protocol of SpacetimeDB 1.x servers;
docs/protocol.md, "v1") as frozen dataclasses, with their codecs and frames.

The names are the protocol's own, so several match a v2 message with another layout (``CallReducer``,
``TransactionUpdate``, ...): use them through this module, ``from spacetime_game.sdk.protocol import v1``
and ``v1.TransactionUpdate``. The enum order is the one of 1.0.0 onward (``CallProcedure`` and
``ProcedureResult`` came in 1.8.0). A server frame is one message after the compression tag byte, as on
v2; a client frame is one message.

Differences from v2 worth knowing: subscriptions have a ``query_id`` (v2: query set id) and their updates
are per table, not per query set; a table's changes are a list of :class:`QueryUpdate` s, each with
*deletes first* and each possibly compressed on its own (:func:`query_update`); every subscriber may get
the full :class:`TransactionUpdate` with the reducer, its caller and arguments, not only the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from ..sats import (
    AlgebraicType,
    ArrayType,
    Codec,
    ConnectionId,
    DecodeError,
    Identity,
    PrimitiveType,
    ProductBinding,
    SumBinding,
    SumType,
    SumVariant,
    TimeDuration,
    Timestamp,
    Typespace,
    compile_codec,
)
from ._frames import (
    COMPRESSION_THRESHOLD,
    DEFAULT_MAX_MESSAGE_SIZE,
    Compression,
    _gunzip,
    _unbrotli,
    compress,
    decompress,
)
from ._messages import (
    BsatnRowList,
    ProcedureInternalError,
    ProcedureReturned,
    _row_list_type,
    _Space,
)

__all__ = [
    "PROTOCOL_V1",
    "CallProcedure",
    "CallReducer",
    "CallReducerFlags",
    "ClientMessage",
    "Committed",
    "CompressedQueryUpdate",
    "DatabaseUpdate",
    "Failed",
    "IdentityToken",
    "InitialSubscription",
    "OneOffQuery",
    "OneOffQueryResponse",
    "OneOffTable",
    "OutOfEnergy",
    "ProcedureInternalError",
    "ProcedureOutOfEnergy",
    "ProcedureResult",
    "ProcedureReturned",
    "QueryUpdate",
    "ReducerCallInfo",
    "ServerMessage",
    "Subscribe",
    "SubscribeApplied",
    "SubscribeMulti",
    "SubscribeMultiApplied",
    "SubscribeRows",
    "SubscribeSingle",
    "SubscriptionError",
    "TableUpdate",
    "TransactionUpdate",
    "TransactionUpdateLight",
    "Unsubscribe",
    "UnsubscribeApplied",
    "UnsubscribeMulti",
    "UnsubscribeMultiApplied",
    "UpdateStatus",
    "client_message_codec",
    "compress_query_update",
    "decode_client_frame",
    "decode_server_frame",
    "encode_client_frame",
    "encode_server_frame",
    "query_update",
    "server_message_codec",
]

PROTOCOL_V1: Final = "v1.bsatn.spacetimedb"


class CallReducerFlags:
    """The ``flags`` of a v1 :class:`CallReducer`."""

    #: The caller gets the full TransactionUpdate, success or not.
    FULL_UPDATE: Final = 0
    #: On success the caller gets nothing, unless rows of its subscriptions changed.
    NO_SUCCESS_NOTIFY: Final = 1


# ----- shared pieces -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QueryUpdate:
    """One query's changes to a table: deleted rows and inserted rows (deletes first on the wire)."""

    deletes: BsatnRowList
    inserts: BsatnRowList


@dataclass(frozen=True, slots=True)
class CompressedQueryUpdate:
    """A :class:`QueryUpdate` compressed on its own (``compression`` is BROTLI or GZIP); see
    :func:`query_update`."""

    compression: Compression
    data: bytes


@dataclass(frozen=True, slots=True)
class TableUpdate:
    """The changes to one table: ``num_rows`` rows in all, in one or more query updates."""

    table_id: int
    table_name: str
    num_rows: int
    updates: tuple[QueryUpdate | CompressedQueryUpdate, ...]


@dataclass(frozen=True, slots=True)
class DatabaseUpdate:
    """The changes to each table."""

    tables: tuple[TableUpdate, ...]


@dataclass(frozen=True, slots=True)
class Committed:
    """The transaction committed with these changes (those the receiver subscribed to)."""

    update: DatabaseUpdate


@dataclass(frozen=True, slots=True)
class Failed:
    """The reducer failed with this message; nothing changed."""

    message: str


@dataclass(frozen=True, slots=True)
class OutOfEnergy:
    """The reducer ran out of energy; nothing changed."""


UpdateStatus: TypeAlias = Committed | Failed | OutOfEnergy


@dataclass(frozen=True, slots=True)
class ReducerCallInfo:
    """Which reducer ran, with what arguments (BSATN), and the caller's request id."""

    reducer_name: str
    reducer_id: int
    args: bytes
    request_id: int


@dataclass(frozen=True, slots=True)
class SubscribeRows:
    """The rows of a single-query subscription (one table)."""

    table_id: int
    table_name: str
    table_rows: TableUpdate


@dataclass(frozen=True, slots=True)
class OneOffTable:
    """The rows of one table in a one-off query's answer."""

    table_name: str
    rows: BsatnRowList


# ----- client messages -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CallReducer:
    """Call a reducer; ``args`` is the BSATN of its parameter product. ``flags``: :class:`CallReducerFlags`."""

    reducer: str
    args: bytes
    request_id: int
    flags: int = CallReducerFlags.FULL_UPDATE


@dataclass(frozen=True, slots=True)
class Subscribe:
    """The legacy subscription: *replaces* all of the client's queries (answered by InitialSubscription)."""

    query_strings: tuple[str, ...]
    request_id: int


@dataclass(frozen=True, slots=True)
class OneOffQuery:
    """Run one query once; the answer carries the same ``message_id`` (any bytes the client chooses)."""

    message_id: bytes
    query_string: str


@dataclass(frozen=True, slots=True)
class SubscribeSingle:
    """Add one query (answered by SubscribeApplied)."""

    query: str
    request_id: int
    query_id: int


@dataclass(frozen=True, slots=True)
class SubscribeMulti:
    """Add a set of queries under one id (answered by SubscribeMultiApplied)."""

    query_strings: tuple[str, ...]
    request_id: int
    query_id: int


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """Drop a query added by SubscribeSingle (answered by UnsubscribeApplied)."""

    request_id: int
    query_id: int


@dataclass(frozen=True, slots=True)
class UnsubscribeMulti:
    """Drop queries added by SubscribeMulti (answered by UnsubscribeMultiApplied)."""

    request_id: int
    query_id: int


@dataclass(frozen=True, slots=True)
class CallProcedure:
    """Call a procedure (1.8.0 and later; answered by ProcedureResult)."""

    procedure: str
    args: bytes
    request_id: int
    flags: int = 0


ClientMessage: TypeAlias = (
    CallReducer
    | Subscribe
    | OneOffQuery
    | SubscribeSingle
    | SubscribeMulti
    | Unsubscribe
    | UnsubscribeMulti
    | CallProcedure
)


# ----- server messages -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class InitialSubscription:
    """The rows of a legacy Subscribe."""

    database_update: DatabaseUpdate
    request_id: int
    total_host_execution_duration: TimeDuration


@dataclass(frozen=True, slots=True)
class TransactionUpdate:
    """A transaction, in full: its outcome and changes, when, who called which reducer with what."""

    status: UpdateStatus
    timestamp: Timestamp
    caller_identity: Identity
    caller_connection_id: ConnectionId
    reducer_call: ReducerCallInfo
    energy_quanta_used: int
    total_host_execution_duration: TimeDuration


@dataclass(frozen=True, slots=True)
class TransactionUpdateLight:
    """A transaction's changes alone (to clients that connected with ``light=true``)."""

    request_id: int
    update: DatabaseUpdate


@dataclass(frozen=True, slots=True)
class IdentityToken:
    """The first message of every connection: who the client is, and its token."""

    identity: Identity
    token: str
    connection_id: ConnectionId


@dataclass(frozen=True, slots=True)
class OneOffQueryResponse:
    """The answer to the OneOffQuery with the same ``message_id``: ``error``, or the rows."""

    message_id: bytes
    error: str | None
    tables: tuple[OneOffTable, ...]
    total_host_execution_duration: TimeDuration


@dataclass(frozen=True, slots=True)
class SubscribeApplied:
    """The rows of a SubscribeSingle."""

    request_id: int
    total_host_execution_duration_micros: int
    query_id: int
    rows: SubscribeRows


@dataclass(frozen=True, slots=True)
class UnsubscribeApplied:
    """An Unsubscribe took effect; ``rows`` are the query's rows, now deleted."""

    request_id: int
    total_host_execution_duration_micros: int
    query_id: int
    rows: SubscribeRows


@dataclass(frozen=True, slots=True)
class SubscriptionError:
    """A subscription failed; with no ``request_id`` the client should drop all of its subscriptions."""

    total_host_execution_duration_micros: int
    request_id: int | None
    query_id: int | None
    table_id: int | None
    error: str


@dataclass(frozen=True, slots=True)
class SubscribeMultiApplied:
    """The rows of a SubscribeMulti (in the ``inserts``)."""

    request_id: int
    total_host_execution_duration_micros: int
    query_id: int
    update: DatabaseUpdate


@dataclass(frozen=True, slots=True)
class UnsubscribeMultiApplied:
    """An UnsubscribeMulti took effect; the queries' rows are in the ``deletes``."""

    request_id: int
    total_host_execution_duration_micros: int
    query_id: int
    update: DatabaseUpdate


@dataclass(frozen=True, slots=True)
class ProcedureOutOfEnergy:
    """A procedure ran out of energy."""


@dataclass(frozen=True, slots=True)
class ProcedureResult:
    """The outcome of the CallProcedure with the same ``request_id``."""

    status: ProcedureReturned | ProcedureOutOfEnergy | ProcedureInternalError
    timestamp: Timestamp
    total_host_execution_duration: TimeDuration
    request_id: int


ServerMessage: TypeAlias = (
    InitialSubscription
    | TransactionUpdate
    | TransactionUpdateLight
    | IdentityToken
    | OneOffQueryResponse
    | SubscribeApplied
    | UnsubscribeApplied
    | SubscriptionError
    | SubscribeMultiApplied
    | UnsubscribeMultiApplied
    | ProcedureResult
)


# ----- wire layout -----------------------------------------------------------------------------------------------
def _build() -> tuple[Typespace, dict[int, ProductBinding | SumBinding], Any, Any, Any]:
    sp = _Space()
    u8, u32, u64 = (PrimitiveType(n) for n in ("U8", "U32", "U64"))
    string = PrimitiveType("String")
    bytes_t = ArrayType(u8)
    identity = AlgebraicType.special("identity")
    connection_id = AlgebraicType.special("connection_id")
    timestamp = AlgebraicType.special("timestamp")
    duration = AlgebraicType.special("time_duration")
    query_id = sp.int_product("id", u32, "query_id")
    energy = sp.int_product("quanta", PrimitiveType("U128"), "energy_quanta_used")

    row_list = _row_list_type(sp)  # (the v2 layout: the same since 0.12)
    query_update = sp.message(QueryUpdate, deletes=row_list, inserts=row_list)

    def cq_make(tag: int, payload: Any) -> Any:
        return payload if tag == 0 else CompressedQueryUpdate(Compression(tag), payload)

    def cq_split(v: Any) -> tuple[int, Any]:
        if type(v) is QueryUpdate:
            return 0, v
        if type(v) is CompressedQueryUpdate and v.compression in (Compression.BROTLI, Compression.GZIP):
            return int(v.compression), v.data
        raise TypeError(f"expected QueryUpdate or CompressedQueryUpdate, got {v!r}"[:200])

    compressable = sp.add(
        SumType(
            (
                SumVariant("Uncompressed", query_update),
                SumVariant("Brotli", bytes_t),
                SumVariant("Gzip", bytes_t),
            )
        ),
        SumBinding(cq_make, cq_split),
    )
    table_update = sp.message(
        TableUpdate, table_id=u32, table_name=string, num_rows=u64, updates=ArrayType(compressable)
    )
    database_update = sp.message(DatabaseUpdate, tables=ArrayType(table_update))
    out_of_energy = sp.unit(OutOfEnergy)
    status = sp.variants(
        ("Committed", Committed, sp.message(Committed, update=database_update)),
        ("Failed", Failed, sp.message(Failed, message=string)),
        ("OutOfEnergy", OutOfEnergy, out_of_energy),
    )
    call_info = sp.message(ReducerCallInfo, reducer_name=string, reducer_id=u32, args=bytes_t, request_id=u32)
    subscribe_rows = sp.message(SubscribeRows, table_id=u32, table_name=string, table_rows=table_update)
    one_off_table = sp.message(OneOffTable, table_name=string, rows=row_list)

    client = sp.variants(
        (
            "CallReducer",
            CallReducer,
            sp.message(CallReducer, reducer=string, args=bytes_t, request_id=u32, flags=u8),
        ),
        ("Subscribe", Subscribe, sp.message(Subscribe, query_strings=ArrayType(string), request_id=u32)),
        ("OneOffQuery", OneOffQuery, sp.message(OneOffQuery, message_id=bytes_t, query_string=string)),
        (
            "SubscribeSingle",
            SubscribeSingle,
            sp.message(SubscribeSingle, query=string, request_id=u32, query_id=query_id),
        ),
        (
            "SubscribeMulti",
            SubscribeMulti,
            sp.message(SubscribeMulti, query_strings=ArrayType(string), request_id=u32, query_id=query_id),
        ),
        ("Unsubscribe", Unsubscribe, sp.message(Unsubscribe, request_id=u32, query_id=query_id)),
        (
            "UnsubscribeMulti",
            UnsubscribeMulti,
            sp.message(UnsubscribeMulti, request_id=u32, query_id=query_id),
        ),
        (
            "CallProcedure",
            CallProcedure,
            sp.message(CallProcedure, procedure=string, args=bytes_t, request_id=u32, flags=u8),
        ),
    )

    proc_out_of_energy = sp.unit(ProcedureOutOfEnergy)
    proc_status = sp.variants(
        ("Returned", ProcedureReturned, sp.message(ProcedureReturned, value=bytes_t)),
        ("OutOfEnergy", ProcedureOutOfEnergy, proc_out_of_energy),
        ("InternalError", ProcedureInternalError, sp.message(ProcedureInternalError, message=string)),
    )
    applied = {"request_id": u32, "total_host_execution_duration_micros": u64, "query_id": query_id}
    opt_u32 = AlgebraicType.option(u32)
    server = sp.variants(
        (
            "InitialSubscription",
            InitialSubscription,
            sp.message(
                InitialSubscription,
                database_update=database_update,
                request_id=u32,
                total_host_execution_duration=duration,
            ),
        ),
        (
            "TransactionUpdate",
            TransactionUpdate,
            sp.message(
                TransactionUpdate,
                status=status,
                timestamp=timestamp,
                caller_identity=identity,
                caller_connection_id=connection_id,
                reducer_call=call_info,
                energy_quanta_used=energy,
                total_host_execution_duration=duration,
            ),
        ),
        (
            "TransactionUpdateLight",
            TransactionUpdateLight,
            sp.message(TransactionUpdateLight, request_id=u32, update=database_update),
        ),
        (
            "IdentityToken",
            IdentityToken,
            sp.message(IdentityToken, identity=identity, token=string, connection_id=connection_id),
        ),
        (
            "OneOffQueryResponse",
            OneOffQueryResponse,
            sp.message(
                OneOffQueryResponse,
                message_id=bytes_t,
                error=AlgebraicType.option(string),
                tables=ArrayType(one_off_table),
                total_host_execution_duration=duration,
            ),
        ),
        ("SubscribeApplied", SubscribeApplied, sp.message(SubscribeApplied, **applied, rows=subscribe_rows)),
        (
            "UnsubscribeApplied",
            UnsubscribeApplied,
            sp.message(UnsubscribeApplied, **applied, rows=subscribe_rows),
        ),
        (
            "SubscriptionError",
            SubscriptionError,
            sp.message(
                SubscriptionError,
                total_host_execution_duration_micros=u64,
                request_id=opt_u32,
                query_id=opt_u32,
                table_id=opt_u32,
                error=string,
            ),
        ),
        (
            "SubscribeMultiApplied",
            SubscribeMultiApplied,
            sp.message(SubscribeMultiApplied, **applied, update=database_update),
        ),
        (
            "UnsubscribeMultiApplied",
            UnsubscribeMultiApplied,
            sp.message(UnsubscribeMultiApplied, **applied, update=database_update),
        ),
        (
            "ProcedureResult",
            ProcedureResult,
            sp.message(
                ProcedureResult,
                status=proc_status,
                timestamp=timestamp,
                total_host_execution_duration=duration,
                request_id=u32,
            ),
        ),
    )
    return Typespace(tuple(sp.types)), sp.bindings, client, server, query_update


_TYPESPACE, _BINDINGS, _CLIENT_REF, _SERVER_REF, _QUERY_UPDATE_REF = _build()

#: Codec of the v1 ``ClientMessage`` sum.
client_message_codec: Final[Codec] = compile_codec(
    _CLIENT_REF, _TYPESPACE, _BINDINGS, "v1.ClientMessage", tuples=True
)
#: Codec of the v1 ``ServerMessage`` sum.
server_message_codec: Final[Codec] = compile_codec(
    _SERVER_REF, _TYPESPACE, _BINDINGS, "v1.ServerMessage", tuples=True
)
_QUERY_UPDATE: Final[Codec] = compile_codec(
    _QUERY_UPDATE_REF, _TYPESPACE, _BINDINGS, "v1.QueryUpdate", tuples=True
)


def query_update(
    update: QueryUpdate | CompressedQueryUpdate, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
) -> QueryUpdate:
    """The :class:`QueryUpdate` itself: decompressed and decoded when it came compressed. A payload that
    inflates past ``max_message_size`` bytes, or does not decode, raises :class:`DecodeError`."""
    if type(update) is QueryUpdate:
        return update
    assert isinstance(update, CompressedQueryUpdate)
    data = memoryview(update.data)
    if update.compression == Compression.GZIP:
        raw = _gunzip(data, max_message_size)
    elif update.compression == Compression.BROTLI:
        raw = _unbrotli(data, max_message_size)
    else:
        raise DecodeError("v1.CompressableQueryUpdate", 0, f"unknown compression {update.compression!r}")
    try:
        return _QUERY_UPDATE.decode(raw)  # type: ignore[no-any-return]
    except DecodeError as exc:
        raise exc.within(f"{update.compression.name.lower()} QueryUpdate") from None


def compress_query_update(update: QueryUpdate, compression: Compression) -> CompressedQueryUpdate:
    """``update`` compressed on its own (BROTLI or GZIP), as some 1.x servers send it."""
    frame = compress(_QUERY_UPDATE.encode(update), compression, threshold=-1)
    return CompressedQueryUpdate(compression, frame[1:])


def decode_server_frame(
    frame: bytes | bytearray | memoryview, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
) -> ServerMessage:
    """The one v1 message of a server-to-client frame (after its compression tag byte)."""
    return server_message_codec.decode(decompress(frame, max_message_size))  # type: ignore[no-any-return]


def encode_server_frame(
    message: ServerMessage,
    compression: Compression = Compression.NONE,
    threshold: int = COMPRESSION_THRESHOLD,
) -> bytes:
    """A server-to-client frame: the compression tag byte and one v1 message."""
    return compress(server_message_codec.encode(message), compression, threshold)


def decode_client_frame(frame: bytes | bytearray | memoryview) -> ClientMessage:
    """The one v1 message of a client-to-server frame."""
    return client_message_codec.decode(bytes(frame))  # type: ignore[no-any-return]


def encode_client_frame(message: ClientMessage) -> bytes:
    """A client-to-server frame: one v1 message."""
    return client_message_codec.encode(message)
