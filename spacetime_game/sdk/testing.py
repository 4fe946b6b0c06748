"""An in-memory transport for tests: a scripted server that a test drives message by message, so that a
:class:`~spacetime_game.sdk.DbConnection` (and everything built on it: generated bindings, an engine
adapter, a game) runs with no network and no server, like httpx's ``MockTransport``.

:class:`ScriptedServer` is the ``transport_factory`` of the connection; each connection attempt gets a
new :class:`ScriptedTransport` (``server.transport``, the latest). The test feeds server messages to it
(built with :mod:`spacetime_game.sdk.protocol`), calls ``update()``, and checks what the client did:
the callbacks that ran, the cache, and the messages the client sent (``transport.sent``)::

    from spacetime_game.sdk import ConnectionId, DbConnection, Identity, Timestamp
    from spacetime_game.sdk.protocol import ReducerOkEmpty, ReducerResult
    from spacetime_game.sdk.testing import ScriptedServer

    server = ScriptedServer()
    conn = DbConnection(module_bindings.MODULE, "localhost:3000", "game", transport_factory=server)
    conn.connect()
    server.greet(Identity.from_int(1), ConnectionId.from_int(1), "token")
    conn.update()
    assert conn.is_connected

    call = module_bindings.move(1, 2, client=conn)
    server.transport.feed(ReducerResult(call.request_id, Timestamp(0), ReducerOkEmpty()))
    conn.update()
    assert call.committed

    server.transport.drop()  # the connection is lost: the client reconnects (a new transport)

Everything runs on the test's thread: events are queued when fed, and nothing happens until the
connection's ``update()``.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any, TypeVar

from ._transport import (
    TransportClosed,
    TransportError,
    TransportEvent,
    TransportMessage,
    TransportOpened,
)
from .protocol import PROTOCOL_V2, ClientMessage, InitialConnection, ServerMessage
from .sats import ConnectionId, Identity

__all__ = ["ScriptedServer", "ScriptedTransport"]

M = TypeVar("M")


class ScriptedTransport:
    """One connection of a scripted server (a :class:`~spacetime_game.sdk.Transport`).

    When started it reports :class:`~spacetime_game.sdk.TransportOpened` at once (unless
    ``open_on_start`` is False: then call :meth:`open`). What the client sends is recorded in
    :attr:`sent`; sending after :meth:`close` (or with :attr:`closed` set by the test, to play a dead
    connection) raises ConnectionError, as a lost connection does.
    """

    def __init__(
        self, url: str, token: str | None, *, protocol: str = PROTOCOL_V2, open_on_start: bool = True
    ) -> None:
        #: The URL and token the client connected with.
        self.url = url
        self.token = token
        #: The subprotocol reported when opened.
        self.protocol = protocol
        self.open_on_start = open_on_start
        #: Every message the client sent on this connection, in order.
        self.sent: list[ClientMessage] = []
        #: True once the client closed this transport (or the test set it: every send then fails).
        self.closed = False
        self.events: queue.SimpleQueue[TransportEvent] | None = None
        self._wake: Callable[[], None] = _nothing

    # -- the Transport protocol (the client's side) --
    def start(self, events: queue.SimpleQueue[TransportEvent], wake: Callable[[], None]) -> None:
        """Called by the client: report events to ``events`` from now on."""
        self.events = events
        self._wake = wake
        if self.open_on_start:
            self.open()

    def send(self, messages: list[ClientMessage]) -> int:
        """Called by the client: record ``messages``; returns a nominal 10 bytes per message."""
        if self.closed:
            raise ConnectionError("the scripted connection is closed")
        self.sent.extend(messages)
        return 10 * len(messages)

    def close(self) -> None:
        """Called by the client: nothing more is sent on this connection."""
        self.closed = True

    # -- the test's side --
    def put(self, event: TransportEvent) -> None:
        """Report any event to the client (the helpers below build the usual ones)."""
        if self.events is None:
            raise RuntimeError("the client has not started this transport (call connect() first)")
        self.events.put(event)
        self._wake()

    def open(self, protocol: str | None = None) -> None:
        """The handshake is done (with ``open_on_start`` this happens when the client starts it)."""
        self.put(TransportOpened(protocol or self.protocol))

    def feed(self, *messages: ServerMessage, nbytes: int = 100) -> None:
        """The server sends ``messages``, in order (each counted as ``nbytes`` in the client's stats)."""
        for m in messages:
            self.put(TransportMessage(m, nbytes))

    def drop(self, code: int | None = 1006, reason: str = "connection lost") -> None:
        """The connection ends (1006: lost without a close frame)."""
        self.put(TransportClosed(code, reason))

    def error(self, exc: BaseException) -> None:
        """Report an error on the connection (a :class:`~spacetime_game.sdk.TransportClosed` does not
        follow by itself)."""
        self.put(TransportError(exc))

    def fail(self, exc: BaseException) -> None:
        """The connection attempt fails, as the WebSocket transport reports it: the error, then the close."""
        self.put(TransportError(exc))
        self.put(TransportClosed(None, f"cannot connect: {exc}"))

    def of_type(self, cls: type[M]) -> list[M]:
        """The messages of type ``cls`` the client sent on this connection."""
        return [m for m in self.sent if isinstance(m, cls)]


class ScriptedServer:
    """A scripted server: pass it as ``transport_factory`` (it is called with ``(url, token)`` for each
    connection attempt and returns a new :class:`ScriptedTransport`, kept in :attr:`transports`).
    Keyword arguments are passed to each transport."""

    def __init__(self, **transport_options: Any) -> None:
        self._options = transport_options
        #: Every transport made, one per connection attempt, in order.
        self.transports: list[ScriptedTransport] = []

    def __call__(self, url: str, token: str | None) -> ScriptedTransport:
        t = ScriptedTransport(url, token, **self._options)
        self.transports.append(t)
        return t

    @property
    def transport(self) -> ScriptedTransport:
        """The latest connection attempt's transport."""
        if not self.transports:
            raise RuntimeError("the client has not connected yet (call connect() first)")
        return self.transports[-1]

    def greet(self, identity: Identity, connection_id: ConnectionId, token: str) -> None:
        """Send the first message of a connection (InitialConnection) on the latest transport."""
        self.transport.feed(InitialConnection(identity, connection_id, token))


def _nothing() -> None:
    pass
