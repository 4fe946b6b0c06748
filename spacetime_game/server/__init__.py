"""The embedded development server: the module authoring API (``@table``, ``@reducer``, column
types), and a server that serves a module as a database over HTTP and WebSocket (the SpacetimeDB 2.x
protocol, docs/protocol.md), with SQL subscriptions and a durable commit log.

Run one from code with :class:`DevServer` (in this process: on its own thread or in a running asyncio
loop) or :class:`DevServerProcess` (``spacetime-game serve`` as a child process)::

    with DevServer("module.py") as server:
        conn = DbConnection(module_bindings.MODULE, server.address, server.database)

Test a module's rules with no server at all with :class:`ModuleRunner` (its reducers called here, as
any sender, at any time; its timers run by hand).

Authoring a module needs only the standard library and the SDK; the server itself (aiohttp, sqlglot,
the ``server`` extra) is imported the first time one of its names is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..sdk import ConnectionId, Identity, ScheduleAt, TimeDuration, Timestamp
from ._context import Database, IndexColumn, ReducerContext, TableHandle, UniqueColumn
from ._errors import ReducerError
from ._host import CallResult
from ._lan import reachable_address
from ._migrate import IncompatibleSchema, ModuleUpdate
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
from ._runner import ModuleRunner
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

if TYPE_CHECKING:
    from ._devserver import DevServer, DevServerError, DevServerProcess, ServerLimits
    from ._logsafe import EscapeControlFilter
    from ._runtime import ServerFailed
    from ._serve import run_server, watch_module
    from ._wal import CommitLog, CommitLogError

#: The server's names, imported on first use (they need the ``server`` extra): name -> module.
_LAZY = {
    "DevServer": "._devserver",
    "DevServerError": "._devserver",
    "DevServerProcess": "._devserver",
    "ServerLimits": "._devserver",
    "EscapeControlFilter": "._logsafe",
    "ServerFailed": "._runtime",
    "run_server": "._serve",
    "watch_module": "._serve",
    "CommitLog": "._wal",
    "CommitLogError": "._wal",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "CallResult",
    "CommitLog",
    "CommitLogError",
    "ConnectionId",
    "Database",
    "DevServer",
    "DevServerError",
    "DevServerProcess",
    "EscapeControlFilter",
    "Identity",
    "IncompatibleSchema",
    "IndexColumn",
    "ModuleDef",
    "ModuleRunner",
    "ModuleUpdate",
    "ReducerContext",
    "ReducerError",
    "ScheduleAt",
    "ServerFailed",
    "ServerLimits",
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
    "reachable_address",
    "run_server",
    "watch_module",
    "table",
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "u256",
    "unique",
]
