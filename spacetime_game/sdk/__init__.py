"""The SpacetimeDB client SDK for Python.

The value types (:class:`Identity`, :class:`Address`/:class:`ConnectionId`, :class:`Timestamp`,
:class:`TimeDuration`, :class:`ScheduleAt`) and the errors live here; the algebraic types and codecs in
:mod:`spacetime_game.sdk.sats`, the wire messages in :mod:`spacetime_game.sdk.protocol`.
"""

from ._values import Address, ConnectionId, Identity, ScheduleAt, TimeDuration, Timestamp
from .sats import DecodeError, EncodeError, SchemaError, SpacetimeError

__all__ = [
    "Address",
    "ConnectionId",
    "DecodeError",
    "EncodeError",
    "Identity",
    "ScheduleAt",
    "SchemaError",
    "SpacetimeError",
    "TimeDuration",
    "Timestamp",
]
