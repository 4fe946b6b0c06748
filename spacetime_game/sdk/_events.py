"""What reducer and ``on_event`` callbacks receive: :class:`ReducerEvent` (why rows changed) and the 0.x
SDK's :class:`TransactionUpdateMessage`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .sats import ConnectionId, Identity

__all__ = ["AppliedKind", "AppliedMessage", "ReducerEvent", "ReducerEventStatus", "TransactionUpdateMessage"]

#: The outcome a :class:`ReducerEvent` reports.
ReducerEventStatus = Literal["committed", "failed"]


@dataclass
class ReducerEvent:
    """Why rows changed. For this client's own calls every field is set. For other clients' transactions
    it depends on the server: a 1.x server (the v1 protocol) says who called which reducer with what, and
    every field is set; a 2.x server (v2, v3) does not, and ``caller_identity``, ``caller_address``,
    ``reducer_name`` and ``args`` are None (docs/protocol.md section 3.8). Rows from a subscription being
    applied get no event (None)."""

    caller_identity: Identity | None
    caller_address: ConnectionId | None
    reducer_name: str | None
    #: ``committed``, or ``failed``: the reducer refused the call or hit an internal error (``message``
    #: says which and why; :attr:`ReducerCall.status` tells the two apart on v2 and v3). The 0.x SDK's
    #: ``out_of_energy`` is reported as ``failed`` with the message "out of energy" (v1 only).
    status: ReducerEventStatus
    message: str
    args: list[Any] | None
    timestamp: Any = None


class TransactionUpdateMessage:
    """What ``register_on_event`` callbacks receive: the documented attributes of the 0.x SDK."""

    def __init__(self, event: ReducerEvent | None) -> None:
        self.reducer_event = event
        self.transaction_type = "TransactionUpdate"

    @property
    def caller_identity(self) -> Identity | None:
        """The caller (None for other clients' transactions on v2 and v3)."""
        return self.reducer_event.caller_identity if self.reducer_event else None

    @property
    def caller_address(self) -> ConnectionId | None:
        """The caller's connection (None for other clients' transactions on v2 and v3)."""
        return self.reducer_event.caller_address if self.reducer_event else None

    @property
    def status(self) -> ReducerEventStatus:
        """``committed`` or ``failed``."""
        return self.reducer_event.status if self.reducer_event else "committed"

    @property
    def message(self) -> str:
        """The error message, "" when committed."""
        return self.reducer_event.message if self.reducer_event else ""

    @property
    def reducer_name(self) -> str | None:
        """The reducer (None for other clients' transactions on v2 and v3)."""
        return self.reducer_event.reducer_name if self.reducer_event else None

    @property
    def args(self) -> list[Any] | None:
        """The decoded arguments (None for other clients' transactions on v2 and v3)."""
        return self.reducer_event.args if self.reducer_event else None


#: What kind of server message an :class:`AppliedMessage` is: ``subscribe`` (a query set's rows, first
#: applied or re-applied after a reconnect, when only the rows that changed while away get callbacks),
#: ``transaction`` (a committed transaction: this client's own reducer call, or another client's or a
#: scheduled reducer's) or ``unsubscribe`` (a query set ended: its rows leave the cache).
AppliedKind = Literal["subscribe", "transaction", "unsubscribe"]


@dataclass(frozen=True, slots=True)
class AppliedMessage:
    """One server message applied to the cache, as ``register_on_applying`` and ``register_on_applied``
    callbacks receive it (the same object for both)."""

    #: What the message was (see :data:`AppliedKind`).
    kind: AppliedKind
    #: The event the message's row callbacks receive: None for ``subscribe`` and ``unsubscribe``; for a
    #: ``transaction`` a :class:`ReducerEvent`, with ``reducer_name`` set for this client's own call,
    #: and for anyone else's only on v1 (v2 and v3 do not say who).
    event: ReducerEvent | None
    #: How many rows changed in each table that changed (an update counts once; event-table rows count).
    rows: Mapping[str, int] = field(default_factory=dict)
