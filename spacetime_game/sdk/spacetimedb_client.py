"""The documented Basic client of the 0.x Python SDK, on today's protocol.

::

    from spacetime_game.sdk.spacetimedb_client import SpacetimeDBClient
    import module_bindings

    SpacetimeDBClient.init(token, "localhost:3000", "quickstart-chat", False, module_bindings,
                           on_connect=..., on_identity=...)
    SpacetimeDBClient.instance.subscribe(["SELECT * FROM user", "SELECT * FROM message"])
    while running:
        SpacetimeDBClient.instance.update()      # once per frame: callbacks run here

``init`` makes a process-wide default connection (``SpacetimeDBClient.instance``) so that generated
``User.iter()`` / ``set_name(...)`` calls need no arguments. For several connections in one process,
create :class:`SpacetimeDBClient` objects directly and pass ``client=`` to generated functions.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from . import bindings, local_config
from ._client import (
    DbConnection,
    NetStats,
    OneOffQueryHandle,
    ReducerCall,
    ReducerEvent,
    SubscriptionHandle,
    TransactionUpdateMessage,
)
from ._transport import build_url
from .bindings import ModuleBindings
from .protocol import Compression
from .sats import Address, ConnectionId, Identity

__all__ = [
    "Address",
    "ConnectionId",
    "Identity",
    "NetStats",
    "OneOffQueryHandle",
    "ReducerCall",
    "ReducerEvent",
    "SpacetimeDBClient",
    "SubscriptionHandle",
    "TransactionUpdateMessage",
]

log = logging.getLogger("spacetime_game.sdk")


def _module_of(autogen_package: Any) -> ModuleBindings:
    if isinstance(autogen_package, ModuleBindings):
        return autogen_package
    module = getattr(autogen_package, "MODULE", None)
    if isinstance(module, ModuleBindings):
        return module
    what = (
        autogen_package.__name__ if isinstance(autogen_package, types.ModuleType) else repr(autogen_package)
    )
    raise TypeError(
        f"autogen_package must be a package made by `spacetime-game generate` (it has MODULE); got {what}"
    )


class SpacetimeDBClient(DbConnection):
    """The Basic client: you call :meth:`update` once per frame and every callback runs there.

    It is a :class:`DbConnection` (so it also has ``subscribe_multi``, ``one_off_query``,
    ``call_reducer`` handles, ``stats``...) with the documented 0.x entry points.
    """

    #: The connection made by :meth:`init` (the documented singleton-style access).
    instance: ClassVar[SpacetimeDBClient | None] = None

    def __init__(
        self,
        autogen_package: Any,
        host: str = "localhost:3000",
        address_or_name: str = "",
        *,
        auth_token: str | None = None,
        ssl_enabled: bool = False,
        on_connect: Callable[[], None] | None = None,
        on_disconnect: Callable[[str | None], None] | None = None,
        on_identity: Callable[[str, Identity, ConnectionId], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        compression: Compression = Compression.GZIP,
        reconnect: bool = True,
        persist_token: bool | str = False,
        **kwargs: Any,
    ) -> None:
        self._user_on_connect = on_connect
        self._user_on_disconnect = on_disconnect
        self._user_on_identity = on_identity
        #: With ``persist_token`` the token lives in ``local_config`` under this key.
        self.token_key: str | None = (
            (persist_token if isinstance(persist_token, str) else "auth_token") if persist_token else None
        )
        if self.token_key is not None and auth_token is None:
            auth_token = local_config.get_string(self.token_key)
        super().__init__(
            _module_of(autogen_package),
            host,
            address_or_name,
            token=auth_token,
            ssl_enabled=ssl_enabled,
            compression=compression,
            reconnect=reconnect,
            on_connect=self._connected,
            on_disconnect=self._disconnected,
            on_error=on_error,
            **kwargs,
        )

    def _connected(self, conn: DbConnection, identity: Identity, token: str) -> None:
        if self.token_key is not None and token and local_config.get_string(self.token_key) != token:
            local_config.set_string(self.token_key, token)
        if self._user_on_identity is not None:
            assert self.connection_id is not None
            self._user_on_identity(token, identity, self.connection_id)
        if self._user_on_connect is not None:
            self._user_on_connect()

    def _disconnected(self, conn: DbConnection, reason: str | None) -> None:
        if self._user_on_disconnect is not None:
            self._user_on_disconnect(reason)

    def _configure(
        self,
        auth_token: str | None,
        host: str,
        address_or_name: str,
        ssl_enabled: bool,
        on_connect: Callable[[], None] | None,
        on_disconnect: Callable[[str | None], None] | None,
    ) -> None:
        """Point a client made before its address was known (the Async client's inner client) at a
        database; callbacks registered on it so far are kept."""
        self.host = host
        self.database = address_or_name
        self.token = auth_token
        self.ssl_enabled = ssl_enabled
        self.url = build_url(host, address_or_name, ssl_enabled, self.compression, {})
        self._user_on_connect = on_connect
        self._user_on_disconnect = on_disconnect

    @property
    def address(self) -> ConnectionId | None:
        """This connection's id (``Address`` in the 0.x SDK)."""
        return self.connection_id

    @classmethod
    def init(
        cls,
        auth_token: str | None,
        host: str,
        address_or_name: str,
        ssl_enabled: bool,
        autogen_package: Any,
        on_connect: Callable[[], None] | None = None,
        on_disconnect: Callable[[str | None], None] | None = None,
        on_identity: Callable[[str, Identity, ConnectionId], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        **kwargs: Any,
    ) -> SpacetimeDBClient:
        """Create the default connection and start connecting (documented signature).

        ``on_connect()``, ``on_disconnect(reason)``, ``on_identity(token, identity, address)`` and
        ``on_error(exception)`` all run inside :meth:`update`. A connection that fails for good (an
        unknown database, a refused token) ends in ``state == "failed"`` with the reason in
        ``last_error`` (also passed to ``on_error`` and ``on_disconnect``); other failures are retried. Returns the client (also
        ``SpacetimeDBClient.instance``). Extra keywords: ``persist_token=True`` (or a key name) keeps
        the token in :mod:`local_config` (read when ``auth_token`` is None, saved on connect);
        ``reconnect``, ``compression``, ``confirmed``, ``on_state``.
        """
        if cls.instance is not None and cls.instance.state not in ("closed", "idle"):
            cls.instance.close()
        client = cls(
            autogen_package,
            host,
            address_or_name,
            auth_token=auth_token,
            ssl_enabled=ssl_enabled,
            on_connect=on_connect,
            on_disconnect=on_disconnect,
            on_identity=on_identity,
            on_error=on_error,
            **kwargs,
        )
        cls.instance = client
        bindings.set_default_client(client)
        client.connect()
        return client

    def close(self) -> None:
        """Close the connection; no thread is left running."""
        super().close()
        if SpacetimeDBClient.instance is self:
            bindings.set_default_client(None)

    def subscribe(self, queries: Sequence[str]) -> SubscriptionHandle:
        """Subscribe to ``queries``, replacing every previous ``subscribe`` (documented semantics):
        rows that no longer match are deleted, with callbacks, once the new queries are applied."""
        return super().subscribe(queries)
