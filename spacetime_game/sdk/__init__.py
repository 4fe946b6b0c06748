"""The SpacetimeDB client SDK for Python.

The documented 0.x entry points keep their module names: :mod:`~spacetime_game.sdk.spacetimedb_client`
(``SpacetimeDBClient``), :mod:`~spacetime_game.sdk.spacetimedb_async_client` (``SpacetimeDBAsyncClient``)
and :mod:`~spacetime_game.sdk.local_config`. The value types (:class:`Identity`,
:class:`Address`/:class:`ConnectionId`, :class:`Timestamp`, :class:`TimeDuration`, :class:`ScheduleAt`)
and the errors live here; the algebraic types and codecs in :mod:`spacetime_game.sdk.sats`, the wire
messages in :mod:`spacetime_game.sdk.protocol`, schemas in :mod:`spacetime_game.sdk.schema`.
"""

from ._client import (
    DbConnection,
    NetStats,
    OneOffQueryHandle,
    ProtocolError,
    ReducerCall,
    ReducerEvent,
    SubscriptionHandle,
    TransactionUpdateMessage,
)
from ._failures import ConnectionFailed
from ._values import Address, ConnectionId, Identity, ScheduleAt, TimeDuration, Timestamp
from .sats import DecodeError, EncodeError, SchemaError, SpacetimeError
from .spacetimedb_async_client import SpacetimeDBAsyncClient, SpacetimeDBException
from .spacetimedb_client import SpacetimeDBClient

__all__ = [
    "Address",
    "ConnectionFailed",
    "ConnectionId",
    "DbConnection",
    "DecodeError",
    "EncodeError",
    "Identity",
    "NetStats",
    "OneOffQueryHandle",
    "ProtocolError",
    "ReducerCall",
    "ReducerEvent",
    "ScheduleAt",
    "SchemaError",
    "SpacetimeDBAsyncClient",
    "SpacetimeDBClient",
    "SpacetimeDBException",
    "SpacetimeError",
    "SubscriptionHandle",
    "TimeDuration",
    "Timestamp",
    "TransactionUpdateMessage",
]
