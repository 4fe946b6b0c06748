"""The embedded development server: a module authoring API (:func:`table`, :func:`reducer`, ...), a
datastore with a commit log, subscription SQL, and the network surface that speaks the SpacetimeDB 2.x
protocol (WebSocket ``v3``/``v2.bsatn.spacetimedb`` and the HTTP API; docs/protocol.md). Run it with
``spacetime-game serve module.py``."""

from ..sdk import ConnectionId, Identity, ScheduleAt, TimeDuration, Timestamp
from ._context import Database, IndexColumn, ReducerContext, TableHandle, UniqueColumn
from ._errors import ReducerError
from ._module import (
    ModuleDef,
    client_connected,
    client_disconnected,
    init,
    load_module,
    product_type,
    reducer,
    table,
)
from ._types import (
    auto_inc,
    f32,
    f64,
    i8,
    i16,
    i32,
    i64,
    i128,
    i256,
    index,
    primary_key,
    u8,
    u16,
    u32,
    u64,
    u128,
    u256,
    unique,
)

__all__ = [
    "ConnectionId",
    "Database",
    "Identity",
    "IndexColumn",
    "ModuleDef",
    "ReducerContext",
    "ReducerError",
    "ScheduleAt",
    "TableHandle",
    "TimeDuration",
    "Timestamp",
    "UniqueColumn",
    "auto_inc",
    "client_connected",
    "client_disconnected",
    "f32",
    "f64",
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
    "i256",
    "index",
    "init",
    "load_module",
    "primary_key",
    "product_type",
    "reducer",
    "table",
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "u256",
    "unique",
]
