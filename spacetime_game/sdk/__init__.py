"""The SpacetimeDB client SDK for Python.

The documented 0.x entry points keep their module names: :mod:`~spacetime_game.sdk.spacetimedb_client`
(``SpacetimeDBClient``), :mod:`~spacetime_game.sdk.spacetimedb_async_client` (``SpacetimeDBAsyncClient``)
and :mod:`~spacetime_game.sdk.local_config`. The value types (:class:`Identity`,
:class:`Address`/:class:`ConnectionId`, :class:`Timestamp`, :class:`TimeDuration`, :class:`ScheduleAt`)
and the errors live here; the algebraic types and codecs in :mod:`spacetime_game.sdk.sats`, the wire
messages in :mod:`spacetime_game.sdk.protocol`, schemas in :mod:`spacetime_game.sdk.schema`.

The client's names (:class:`DbConnection` and the rest) are loaded on first use, so that importing a
lower layer (``spacetime_game.sdk.sats``, ``.protocol``, ``.schema``), which runs this module first,
does not load the client, its transport and websocket-client (docs/architecture.md, "Layers").
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .sats import (
    Address,
    ConnectionId,
    DecodeError,
    EncodeError,
    Identity,
    ScheduleAt,
    SchemaError,
    SpacetimeError,
    TimeDuration,
    Timestamp,
)

if TYPE_CHECKING:
    from ._client import (
        AppliedKind,
        AppliedMessage,
        ConnectionState,
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
    from ._transport import (
        Transport,
        TransportClosed,
        TransportError,
        TransportEvent,
        TransportMessage,
        TransportOpened,
        WebSocketTransport,
    )
    from .spacetimedb_async_client import SpacetimeDBAsyncClient, SpacetimeDBException
    from .spacetimedb_client import SpacetimeDBClient

__all__ = [
    "Address",
    "AppliedKind",
    "AppliedMessage",
    "ConnectionFailed",
    "ConnectionId",
    "ConnectionState",
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
    "Transport",
    "TransportClosed",
    "TransportError",
    "TransportEvent",
    "TransportMessage",
    "TransportOpened",
    "WebSocketTransport",
]

#: The names loaded on first use, and the module (relative to this package) that defines each.
_LAZY: dict[str, str] = {
    "AppliedKind": "._client",
    "AppliedMessage": "._client",
    "ConnectionFailed": "._failures",
    "ConnectionState": "._client",
    "DbConnection": "._client",
    "NetStats": "._client",
    "OneOffQueryHandle": "._client",
    "ProtocolError": "._client",
    "ReducerCall": "._client",
    "ReducerEvent": "._client",
    "SubscriptionHandle": "._client",
    "TransactionUpdateMessage": "._client",
    "Transport": "._transport",
    "TransportClosed": "._transport",
    "TransportError": "._transport",
    "TransportEvent": "._transport",
    "TransportMessage": "._transport",
    "TransportOpened": "._transport",
    "WebSocketTransport": "._transport",
    "SpacetimeDBAsyncClient": ".spacetimedb_async_client",
    "SpacetimeDBException": ".spacetimedb_async_client",
    "SpacetimeDBClient": ".spacetimedb_client",
}

# Hidden from type checkers, which see the imports above instead: a module-level __getattr__ would make
# mypy accept any name imported from this package.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        """Load a client-level name on first use (PEP 562)."""
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value


def __dir__() -> list[str]:
    """The module's names, including the client names not loaded yet."""
    return sorted({*globals(), *__all__})
