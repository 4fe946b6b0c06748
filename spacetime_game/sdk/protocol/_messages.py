"""The v2 client and server messages (docs/protocol.md sections 3.2 to 3.4) as frozen dataclasses.

The wire layout of each message is declared once, as SATS types, and the codecs are compiled from it,
so the messages share the BSATN codec (and its error reporting) with every other value.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from enum import IntEnum
from functools import partial
from operator import attrgetter, itemgetter, le
from typing import Any, Final, Generic, TypeAlias, TypeVar

from ..sats import (
    AlgebraicType,
    ArrayType,
    Codec,
    ConnectionId,
    DecodeError,
    Identity,
    PrimitiveType,
    ProductBinding,
    ProductElement,
    ProductType,
    RefType,
    SumBinding,
    SumType,
    SumVariant,
    TimeDuration,
    Timestamp,
    Typespace,
    compile_codec,
)

__all__ = [
    "BsatnRowList",
    "CallProcedure",
    "CallReducer",
    "ClientMessage",
    "Err",
    "EventTableRows",
    "InitialConnection",
    "Ok",
    "OneOffQuery",
    "OneOffQueryResult",
    "PersistentTableRows",
    "ProcedureInternalError",
    "ProcedureResult",
    "ProcedureReturned",
    "QueryRows",
    "QuerySetUpdate",
    "ReducerErr",
    "ReducerInternalError",
    "ReducerOk",
    "ReducerOkEmpty",
    "ReducerResult",
    "ServerMessage",
    "SingleTableRows",
    "Subscribe",
    "SubscribeApplied",
    "SubscriptionError",
    "TableUpdate",
    "TransactionUpdate",
    "Unsubscribe",
    "UnsubscribeApplied",
    "UnsubscribeFlags",
    "client_message_codec",
    "decode_client_message",
    "decode_server_message",
    "encode_client_message",
    "encode_server_message",
    "server_message_codec",
]

T = TypeVar("T")
E = TypeVar("E")


# --------------------------------------------------------------------------------------------------
# shared building blocks
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BsatnRowList:
    """Rows of one table, each the BSATN of a row, laid end to end.

    Exactly one of ``row_size`` (every row has this many bytes) and ``row_offsets`` (the start of each
    row) is set. The rows stay bytes: the client cache keys rows by them and decodes them itself.
    """

    row_size: int | None
    row_offsets: tuple[int, ...] | None
    rows_data: bytes

    def __post_init__(self) -> None:
        if (self.row_size is None) == (self.row_offsets is None):
            raise ValueError("exactly one of row_size and row_offsets must be set")

    @staticmethod
    def from_rows(rows: Sequence[bytes]) -> BsatnRowList:
        """Build a row list the way the server does: ``FixedSize`` when every row has the same non-zero
        length that fits a u16, otherwise ``RowOffsets`` (also for an empty list)."""
        if rows:
            size = len(rows[0])
            if 0 < size <= 0xFFFF and all(len(r) == size for r in rows):
                return BsatnRowList(size, None, b"".join(rows))
        offsets = []
        pos = 0
        for r in rows:
            offsets.append(pos)
            pos += len(r)
        return BsatnRowList(None, tuple(offsets), b"".join(rows))

    def __len__(self) -> int:
        if self.row_size is not None:
            return len(self.rows_data) // self.row_size if self.row_size else 0
        assert self.row_offsets is not None
        return len(self.row_offsets)

    def rows(self) -> list[bytes]:
        """Each row's bytes, checked against the size hint (a :class:`DecodeError` if they disagree)."""
        data = self.rows_data
        size = self.row_size
        if size is not None:
            if size == 0:
                if data:
                    raise DecodeError("BsatnRowList", 0, "FixedSize(0) with a non-empty rows_data")
                return []
            if len(data) % size:
                raise DecodeError(
                    "BsatnRowList", 0, f"{len(data)} bytes is not a whole number of {size}-byte rows"
                )
            return list(map(_first, struct.iter_unpack(f"{size}s", data)))
        offsets = self.row_offsets
        assert offsets is not None
        if not offsets:
            if data:
                raise DecodeError("BsatnRowList", 0, "RowOffsets([]) with a non-empty rows_data")
            return []
        ends = [*offsets[1:], len(data)]
        if offsets[0] != 0:
            raise DecodeError("BsatnRowList", 0, f"the first row offset is {offsets[0]}, not 0")
        if not all(map(le, offsets, ends)):  # (offsets[0] is 0 and the last end the data's length)
            prev = 0
            for i, end in enumerate(ends):
                if end < prev or end > len(data):
                    raise DecodeError(
                        "BsatnRowList", prev, f"row offset {end} of row {i + 1} is out of order"
                    )
                prev = end
        return list(map(data.__getitem__, map(slice, offsets, ends)))


_first = itemgetter(0)


@dataclass(frozen=True, slots=True)
class SingleTableRows:
    """The rows of one table in a query result."""

    table: str
    rows: BsatnRowList


@dataclass(frozen=True, slots=True)
class QueryRows:
    """The rows of a query set, per table."""

    tables: tuple[SingleTableRows, ...]


@dataclass(frozen=True, slots=True)
class PersistentTableRows:
    """Changes to a stored table: inserted and deleted rows (inserts first on the wire)."""

    inserts: BsatnRowList
    deletes: BsatnRowList


@dataclass(frozen=True, slots=True)
class EventTableRows:
    """Rows of an event table: never stored, only reported."""

    events: BsatnRowList


TableUpdateRows: TypeAlias = PersistentTableRows | EventTableRows


@dataclass(frozen=True, slots=True)
class TableUpdate:
    """The changes to one table within a query set."""

    table_name: str
    rows: tuple[TableUpdateRows, ...]


@dataclass(frozen=True, slots=True)
class QuerySetUpdate:
    """The changes to one query set in a transaction."""

    query_set_id: int
    tables: tuple[TableUpdate, ...]


@dataclass(frozen=True, slots=True)
class Ok(Generic[T]):
    """The ``ok`` of a result."""

    value: T


@dataclass(frozen=True, slots=True)
class Err(Generic[E]):
    """The ``err`` of a result."""

    error: E


class UnsubscribeFlags(IntEnum):
    """How an unsubscribe is answered: with the dropped rows, or without."""

    DEFAULT = 0
    SEND_DROPPED_ROWS = 1


# --------------------------------------------------------------------------------------------------
# client messages
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Subscribe:
    """Subscribe to a new query set (answered by SubscribeApplied or SubscriptionError)."""

    request_id: int
    query_set_id: int
    query_strings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """Drop a query set (answered by UnsubscribeApplied)."""

    request_id: int
    query_set_id: int
    flags: UnsubscribeFlags = UnsubscribeFlags.DEFAULT


@dataclass(frozen=True, slots=True)
class OneOffQuery:
    """Run one query once (answered by OneOffQueryResult)."""

    request_id: int
    query_string: str


@dataclass(frozen=True, slots=True)
class CallReducer:
    """Call a reducer; ``args`` is the BSATN of its parameter product (answered by ReducerResult)."""

    request_id: int
    flags: int
    reducer: str
    args: bytes


@dataclass(frozen=True, slots=True)
class CallProcedure:
    """Call a procedure (answered by ProcedureResult)."""

    request_id: int
    flags: int
    procedure: str
    args: bytes


ClientMessage: TypeAlias = Subscribe | Unsubscribe | OneOffQuery | CallReducer | CallProcedure


# --------------------------------------------------------------------------------------------------
# server messages
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class InitialConnection:
    """The first message of every connection: who the client is, and its token."""

    identity: Identity
    connection_id: ConnectionId
    token: str


@dataclass(frozen=True, slots=True)
class SubscribeApplied:
    """The initial rows of a new query set."""

    request_id: int
    query_set_id: int
    rows: QueryRows


@dataclass(frozen=True, slots=True)
class UnsubscribeApplied:
    """A query set was dropped; ``rows`` holds its rows when they were asked for."""

    request_id: int
    query_set_id: int
    rows: QueryRows | None


@dataclass(frozen=True, slots=True)
class SubscriptionError:
    """A query set failed; ``request_id`` is None when it failed after it was applied."""

    request_id: int | None
    query_set_id: int
    error: str


@dataclass(frozen=True, slots=True)
class TransactionUpdate:
    """Row changes of one committed transaction, for each of the client's query sets that changed."""

    query_sets: tuple[QuerySetUpdate, ...]


@dataclass(frozen=True, slots=True)
class OneOffQueryResult:
    """The answer to a OneOffQuery: ``Ok(QueryRows)`` or ``Err(message)``."""

    request_id: int
    result: Ok[QueryRows] | Err[str]


@dataclass(frozen=True, slots=True)
class ReducerOk:
    """The reducer committed; ``transaction_update`` holds the caller's own changed query sets."""

    ret_value: bytes
    transaction_update: TransactionUpdate


@dataclass(frozen=True, slots=True)
class ReducerOkEmpty:
    """The reducer committed, with nothing to report."""


@dataclass(frozen=True, slots=True)
class ReducerErr:
    """The reducer failed on purpose; ``error`` is the BSATN of its error value (a string today)."""

    error: bytes

    @property
    def message(self) -> str:
        """The error decoded as a BSATN string, or a hex dump if it is not one."""
        if len(self.error) >= 4:
            (n,) = struct.unpack_from("<I", self.error)
            if n == len(self.error) - 4:
                try:
                    return self.error[4:].decode("utf-8")
                except UnicodeDecodeError:
                    pass
        return self.error.hex()


@dataclass(frozen=True, slots=True)
class ReducerInternalError:
    """The reducer crashed, did not exist, or got bad arguments."""

    message: str


ReducerOutcome: TypeAlias = ReducerOk | ReducerOkEmpty | ReducerErr | ReducerInternalError


@dataclass(frozen=True, slots=True)
class ReducerResult:
    """The outcome of this client's CallReducer with the same ``request_id``."""

    request_id: int
    timestamp: Timestamp
    result: ReducerOutcome


@dataclass(frozen=True, slots=True)
class ProcedureReturned:
    """A procedure returned; ``value`` is the BSATN of its return value."""

    value: bytes


@dataclass(frozen=True, slots=True)
class ProcedureInternalError:
    """A procedure failed."""

    message: str


@dataclass(frozen=True, slots=True)
class ProcedureResult:
    """The outcome of this client's CallProcedure with the same ``request_id``."""

    status: ProcedureReturned | ProcedureInternalError
    timestamp: Timestamp
    total_host_execution_duration: TimeDuration
    request_id: int


ServerMessage: TypeAlias = (
    InitialConnection
    | SubscribeApplied
    | UnsubscribeApplied
    | SubscriptionError
    | TransactionUpdate
    | OneOffQueryResult
    | ReducerResult
    | ProcedureResult
)


# --------------------------------------------------------------------------------------------------
# wire layout
# --------------------------------------------------------------------------------------------------
class _Space:
    """Builds the typespace of the protocol types, with a binding per entry."""

    def __init__(self) -> None:
        self.types: list[AlgebraicType] = []
        self.bindings: dict[int, ProductBinding | SumBinding] = {}

    def add(self, ty: AlgebraicType, binding: ProductBinding | SumBinding | None = None) -> RefType:
        self.types.append(ty)
        if binding is not None:
            self.bindings[len(self.types) - 1] = binding
        return RefType(len(self.types) - 1)

    def message(self, cls: type, **layout: AlgebraicType) -> RefType:
        """A product in wire order bound to a dataclass (wire order may differ from field order)."""
        names = tuple(layout)
        order = [f.name for f in fields(cls)]
        if sorted(names) != sorted(order):
            raise AssertionError(f"layout of {cls.__name__} does not match its fields")
        product = ProductType(tuple(_el(n, t) for n, t in layout.items()))
        if list(names) == order:
            make: Callable[[tuple[Any, ...]], Any] = partial(_star, cls)
        else:
            perm = [names.index(n) for n in order]
            make = partial(_permuted, cls, perm)
        getter = _getter(names)
        return self.add(product, ProductBinding(make, getter, cls))

    def unit(self, cls: type) -> RefType:
        """An empty product bound to ``cls`` (a variant with no payload, like ``OkEmpty``)."""
        return self.add(ProductType(()), ProductBinding(_unit_payload(cls), _no_fields, cls))

    def int_product(self, field: str, ty: AlgebraicType, what: str) -> RefType:
        """A one-field product (``QuerySetId{id}``, ``EnergyQuanta{quanta}``) that is an int in Python;
        ``what`` names it in the error for a value that is not an int."""

        def split(v: Any) -> tuple[Any, ...]:
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{what} must be an int, got {type(v).__name__}")
            return (v,)

        return self.add(ProductType((_el(field, ty),)), ProductBinding(_first, split, int))

    def variants(self, *pairs: tuple[str, type, AlgebraicType]) -> RefType:
        """A sum whose variant payloads are bound classes; values are the payload objects."""
        classes = [cls for _, cls, _ in pairs]
        tags = {cls: i for i, cls in enumerate(classes)}

        def split(v: Any) -> tuple[int, Any]:
            try:
                return tags[type(v)], v
            except KeyError:
                expected = ", ".join(c.__name__ for c in classes)
                raise TypeError(f"expected one of {expected}, got {type(v).__name__}") from None

        return self.add(
            SumType(tuple(SumVariant(name, ty) for name, _, ty in pairs)),
            SumBinding(_payload, split),
        )


def _el(name: str, ty: AlgebraicType) -> ProductElement:
    return ProductElement(name, ty)


def _star(cls: type, t: tuple[Any, ...]) -> Any:
    return cls(*t)


def _permuted(cls: type, perm: list[int], t: tuple[Any, ...]) -> Any:
    return cls(*[t[i] for i in perm])


def _payload(tag: int, payload: Any) -> Any:
    return payload


def _getter(names: tuple[str, ...]) -> Callable[[Any], Sequence[Any]]:
    if not names:
        return lambda v: ()
    if len(names) == 1:
        (n,) = names
        return lambda v: (getattr(v, n),)
    ag = attrgetter(*names)
    return ag


def _no_fields(v: Any) -> tuple[Any, ...]:
    return ()


def _unit_payload(cls: type) -> Callable[[tuple[Any, ...]], Any]:
    instance = cls()
    return lambda t: instance


def _row_list_type(sp: _Space) -> RefType:
    """``BsatnRowList`` (the same on v1 and v2): a size hint, FixedSize(u16) or RowOffsets(u64 array), and the
    rows' bytes."""
    u16, u64 = PrimitiveType("U16"), PrimitiveType("U64")
    hint = sp.add(
        SumType((SumVariant("FixedSize", u16), SumVariant("RowOffsets", ArrayType(u64)))),
        SumBinding(_hint_make, _hint_split),
    )
    return sp.add(
        ProductType((_el("size_hint", hint), _el("rows_data", ArrayType(PrimitiveType("U8"))))),
        ProductBinding(_rl_make, _rl_fields, BsatnRowList),
    )


def _hint_make(tag: int, payload: Any) -> Any:
    return (tag, payload)


def _hint_split(v: Any) -> tuple[int, Any]:
    return v  # type: ignore[no-any-return]


def _rl_make(t: tuple[Any, ...]) -> BsatnRowList:
    (tag, payload), data = t
    if tag == 0:
        return BsatnRowList(payload, None, data)
    return BsatnRowList(None, payload, data)


def _rl_fields(v: Any) -> Sequence[Any]:
    if type(v) is not BsatnRowList:
        raise TypeError(f"expected BsatnRowList, got {type(v).__name__}")
    if v.row_size is not None:
        return ((0, v.row_size), v.rows_data)
    return ((1, v.row_offsets), v.rows_data)


def _build() -> tuple[Typespace, dict[int, ProductBinding | SumBinding], RefType, RefType]:
    sp = _Space()
    u8, u32 = PrimitiveType("U8"), PrimitiveType("U32")
    string = PrimitiveType("String")
    bytes_t = ArrayType(u8)
    identity = AlgebraicType.special("identity")
    connection_id = AlgebraicType.special("connection_id")
    timestamp = AlgebraicType.special("timestamp")
    duration = AlgebraicType.special("time_duration")

    query_set_id = sp.int_product("id", u32, "query_set_id")

    row_list = _row_list_type(sp)
    single = sp.message(SingleTableRows, table=string, rows=row_list)
    query_rows = sp.message(QueryRows, tables=ArrayType(single))
    persistent = sp.message(PersistentTableRows, inserts=row_list, deletes=row_list)
    event = sp.message(EventTableRows, events=row_list)
    table_rows = sp.variants(
        ("PersistentTable", PersistentTableRows, persistent), ("EventTable", EventTableRows, event)
    )
    table_update = sp.message(TableUpdate, table_name=string, rows=ArrayType(table_rows))
    qs_update = sp.message(QuerySetUpdate, query_set_id=query_set_id, tables=ArrayType(table_update))

    flags = sp.add(
        SumType((SumVariant("Default", ProductType(())), SumVariant("SendDroppedRows", ProductType(())))),
        SumBinding(lambda tag, p: UnsubscribeFlags(tag), _flags_split),
    )

    client = sp.variants(
        (
            "Subscribe",
            Subscribe,
            sp.message(Subscribe, request_id=u32, query_set_id=query_set_id, query_strings=ArrayType(string)),
        ),
        (
            "Unsubscribe",
            Unsubscribe,
            sp.message(Unsubscribe, request_id=u32, query_set_id=query_set_id, flags=flags),
        ),
        ("OneOffQuery", OneOffQuery, sp.message(OneOffQuery, request_id=u32, query_string=string)),
        (
            "CallReducer",
            CallReducer,
            sp.message(CallReducer, request_id=u32, flags=u8, reducer=string, args=bytes_t),
        ),
        (
            "CallProcedure",
            CallProcedure,
            sp.message(CallProcedure, request_id=u32, flags=u8, procedure=string, args=bytes_t),
        ),
    )

    transaction_update = sp.message(TransactionUpdate, query_sets=ArrayType(qs_update))
    ok_rows = sp.message(Ok, value=query_rows)
    err_str = sp.message(Err, error=string)
    one_off_result = sp.variants(("ok", Ok, ok_rows), ("err", Err, err_str))
    reducer_ok = sp.message(ReducerOk, ret_value=bytes_t, transaction_update=transaction_update)
    ok_empty = sp.unit(ReducerOkEmpty)
    reducer_err = sp.message(ReducerErr, error=bytes_t)
    internal = sp.message(ReducerInternalError, message=string)
    outcome = sp.variants(
        ("Ok", ReducerOk, reducer_ok),
        ("OkEmpty", ReducerOkEmpty, ok_empty),
        ("Err", ReducerErr, reducer_err),
        ("InternalError", ReducerInternalError, internal),
    )
    proc_status = sp.variants(
        ("Returned", ProcedureReturned, sp.message(ProcedureReturned, value=bytes_t)),
        ("InternalError", ProcedureInternalError, sp.message(ProcedureInternalError, message=string)),
    )
    server = sp.variants(
        (
            "InitialConnection",
            InitialConnection,
            sp.message(InitialConnection, identity=identity, connection_id=connection_id, token=string),
        ),
        (
            "SubscribeApplied",
            SubscribeApplied,
            sp.message(SubscribeApplied, request_id=u32, query_set_id=query_set_id, rows=query_rows),
        ),
        (
            "UnsubscribeApplied",
            UnsubscribeApplied,
            sp.message(
                UnsubscribeApplied,
                request_id=u32,
                query_set_id=query_set_id,
                rows=AlgebraicType.option(query_rows),
            ),
        ),
        (
            "SubscriptionError",
            SubscriptionError,
            sp.message(
                SubscriptionError,
                request_id=AlgebraicType.option(u32),
                query_set_id=query_set_id,
                error=string,
            ),
        ),
        ("TransactionUpdate", TransactionUpdate, transaction_update),
        (
            "OneOffQueryResult",
            OneOffQueryResult,
            sp.message(OneOffQueryResult, request_id=u32, result=one_off_result),
        ),
        (
            "ReducerResult",
            ReducerResult,
            sp.message(ReducerResult, request_id=u32, timestamp=timestamp, result=outcome),
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
    return Typespace(tuple(sp.types)), sp.bindings, client, server


def _flags_split(v: Any) -> tuple[int, Any]:
    return int(UnsubscribeFlags(v)), ()


_TYPESPACE, _BINDINGS, _CLIENT_REF, _SERVER_REF = _build()

#: Codec of the v2 ``ClientMessage`` sum.
client_message_codec: Final[Codec] = compile_codec(
    _CLIENT_REF, _TYPESPACE, _BINDINGS, "ClientMessage", tuples=True
)
#: Codec of the v2 ``ServerMessage`` sum.
server_message_codec: Final[Codec] = compile_codec(
    _SERVER_REF, _TYPESPACE, _BINDINGS, "ServerMessage", tuples=True
)


def encode_client_message(message: ClientMessage) -> bytes:
    """The BSATN of one v2 client message."""
    return client_message_codec.encode(message)


def decode_client_message(data: bytes) -> ClientMessage:
    """Decode one v2 client message that takes all of ``data`` (trailing bytes are an error)."""
    return client_message_codec.decode(data)  # type: ignore[no-any-return]


def encode_server_message(message: ServerMessage) -> bytes:
    """The BSATN of one v2 server message (without the compression tag byte)."""
    return server_message_codec.encode(message)


def decode_server_message(data: bytes) -> ServerMessage:
    """Decode one v2 server message that takes all of ``data`` (trailing bytes are an error)."""
    return server_message_codec.decode(data)  # type: ignore[no-any-return]
