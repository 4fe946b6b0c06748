"""The errors a connection reports to ``on_error`` about the server's messages."""

from __future__ import annotations

from .protocol import ServerMessage
from .sats import SpacetimeError

__all__ = ["ProtocolError", "SubscriptionFailed"]


class ProtocolError(SpacetimeError):
    """The server sent a message that makes no sense at this point of the session: anything before
    InitialConnection, a second InitialConnection, an answer about a query set this client never
    subscribed to (or never unsubscribed), or a result for a request id it never sent.

    It is the server's fault (a bug, or a hostile server), not the caller's. The client passes it to
    ``on_error``, applies nothing of that message or of what followed it on that connection, and treats
    the connection as lost: it reconnects, re-subscribes and reconciles its cache (or closes, when
    ``reconnect`` is off). ``message_type`` names the message, ``reason`` says what was wrong with it.
    """

    def __init__(self, message: ServerMessage, reason: str) -> None:
        self.message_type = type(message).__name__
        self.reason = reason
        super().__init__(
            f"the server sent {self.message_type} {reason}: this breaks the protocol (a server bug or a "
            "hostile server, not a bug in the game); the connection is dropped and rebuilt"
        )


class SubscriptionFailed(SpacetimeError):
    """The server rejected or dropped a query set (passed to ``on_error`` when the handle has no
    ``on_error`` callback of its own)."""
