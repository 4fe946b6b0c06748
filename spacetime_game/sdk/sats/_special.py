"""The special value types of SpacetimeDB: Identity, ConnectionId (also called Address), Timestamp,
TimeDuration and ScheduleAt. Uuid values are :class:`uuid.UUID`.

They are part of SATS: the BSATN and SATS-JSON codecs encode and decode them. This module binds them
into the codecs when the ``sats`` package is imported, so every codec, whatever imported it, encodes an
:class:`Identity` and decodes to one.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, ClassVar, Final

from ._values import SharedValues, SpecialBinding, register_special

__all__ = ["Address", "ConnectionId", "Identity", "ScheduleAt", "TimeDuration", "Timestamp"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _hex_to_le(text: str, size: int, what: str) -> bytes:
    if not isinstance(text, str):
        raise TypeError(f"{what}.from_string expects str, got {type(text).__name__}")
    body = text[2:] if text[:2].lower() == "0x" else text
    if len(body) != 2 * size:
        raise ValueError(f"{what} hex must have {2 * size} digits, got {len(body)}: {text!r}")
    try:
        raw = bytes.fromhex(body)
    except ValueError:
        raise ValueError(f"{what} is not valid hex: {text!r}") from None
    if len(raw) != size:  # bytes.fromhex skips whitespace
        raise ValueError(f"{what} is not valid hex: {text!r}")
    return raw[::-1]


class _FixedBytes(bytes):
    """A fixed-size id held as its little-endian wire bytes; shown and built big-endian."""

    __slots__ = ()
    SIZE: ClassVar[int] = 0

    def __new__(cls, data: bytes | bytearray | str) -> Any:
        """Build from the big-endian bytes of the documented SDK (``.data``), or from a hex string."""
        if isinstance(data, str):
            return bytes.__new__(cls, _hex_to_le(data, cls.SIZE, cls.__name__))
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(
                f"{cls.__name__} expects {cls.SIZE} bytes or a hex string, got {type(data).__name__}"
            )
        raw = bytes(data)
        if len(raw) != cls.SIZE:
            raise ValueError(f"{cls.__name__} must be {cls.SIZE} bytes, got {len(raw)}")
        return bytes.__new__(cls, raw[::-1])

    @classmethod
    def from_string(cls, string: str) -> Any:
        """From a hex string (big-endian, as displayed), with or without ``0x``."""
        return bytes.__new__(cls, _hex_to_le(string, cls.SIZE, cls.__name__))

    @classmethod
    def from_bytes(cls, data: bytes) -> Any:
        """From big-endian bytes (the display order, as ``.data`` returns them)."""
        return cls(data)

    @classmethod
    def from_le_bytes(cls, data: bytes) -> Any:
        """From the little-endian BSATN bytes."""
        raw = bytes(data)
        if len(raw) != cls.SIZE:
            raise ValueError(f"{cls.__name__} must be {cls.SIZE} bytes, got {len(raw)}")
        return bytes.__new__(cls, raw)

    @classmethod
    def from_int(cls, value: int) -> Any:
        """From the unsigned integer the id stands for."""
        return bytes.__new__(cls, int(value).to_bytes(cls.SIZE, "little"))

    @classmethod
    def zero(cls) -> Any:
        """The all-zero value."""
        return bytes.__new__(cls, bytes(cls.SIZE))

    @property
    def data(self) -> bytes:
        """The big-endian bytes (display order), as in the documented SDK."""
        return bytes(self)[::-1]

    def to_le_bytes(self) -> bytes:
        """The little-endian BSATN bytes."""
        return bytes(self)

    def to_int(self) -> int:
        """The unsigned integer value."""
        return int.from_bytes(self, "little")

    def is_zero(self) -> bool:
        """True for the all-zero value."""
        return not any(self)

    def to_hex(self) -> str:
        """Lowercase big-endian hex, no ``0x``."""
        return bytes(self)[::-1].hex()

    def __str__(self) -> str:
        return bytes(self)[::-1].hex()

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{self}')"

    # Not NotImplemented for other types: Python would then fall back to bytes.__eq__ and an id would
    # equal its own raw bytes.
    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return False
        return bytes.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        if type(other) is not type(self):
            return True
        return bytes.__ne__(self, other)

    __hash__ = bytes.__hash__

    def __reduce__(self) -> tuple[Any, ...]:
        # bytes would pickle (and copy) as cls(le_bytes), which __new__ reads as big-endian
        return (type(self).from_le_bytes, (bytes(self),))


class Identity(_FixedBytes):
    """A SpacetimeDB identity: a 256-bit number that names a user.

    Built from big-endian bytes (``Identity(data)``, ``Identity.from_bytes``) or hex
    (``Identity.from_string``); ``str()`` gives the 64-digit big-endian hex. The object is immutable,
    hashable, and *is* its 32 little-endian BSATN bytes (``bytes(identity)``).
    """

    __slots__ = ()
    SIZE: ClassVar[int] = 32


class ConnectionId(_FixedBytes):
    """A 128-bit id of one connection (``Address`` in the 0.x SDK). The all-zero value means "none".

    Same API as :class:`Identity`, with 16 bytes.
    """

    __slots__ = ()
    SIZE: ClassVar[int] = 16

    @classmethod
    def random(cls) -> ConnectionId:
        """A random non-zero ConnectionId."""
        while True:
            raw = secrets.token_bytes(16)
            if any(raw):
                return bytes.__new__(cls, raw)


#: The documented 0.x name of :class:`ConnectionId`; the same class.
Address = ConnectionId


class Timestamp:
    """A point in time: microseconds since the Unix epoch (signed 64-bit)."""

    __slots__ = ("micros_since_epoch",)

    micros_since_epoch: int

    def __init__(self, micros_since_epoch: int) -> None:
        if not isinstance(micros_since_epoch, int) or isinstance(micros_since_epoch, bool):
            raise TypeError(f"Timestamp expects int microseconds, got {type(micros_since_epoch).__name__}")
        object.__setattr__(self, "micros_since_epoch", micros_since_epoch)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Timestamp is immutable")

    @classmethod
    def from_datetime(cls, dt: datetime) -> Timestamp:
        """From a datetime; a naive datetime is taken as UTC."""
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        delta = dt - _EPOCH
        return cls((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)

    @classmethod
    def now(cls) -> Timestamp:
        """The current time."""
        return cls.from_datetime(datetime.now(UTC))

    @classmethod
    def from_seconds(cls, seconds: float) -> Timestamp:
        """From (float) seconds since the epoch."""
        return cls(round(seconds * 1_000_000))

    def to_datetime(self) -> datetime:
        """An aware UTC datetime."""
        return _EPOCH + timedelta(microseconds=self.micros_since_epoch)

    def to_seconds(self) -> float:
        """Seconds since the epoch."""
        return self.micros_since_epoch / 1_000_000

    def __sub__(self, other: Timestamp) -> TimeDuration:
        if not isinstance(other, Timestamp):
            return NotImplemented
        return TimeDuration(self.micros_since_epoch - other.micros_since_epoch)

    def __add__(self, other: TimeDuration) -> Timestamp:
        if not isinstance(other, TimeDuration):
            return NotImplemented
        return Timestamp(self.micros_since_epoch + other.micros)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Timestamp):
            return NotImplemented
        return self.micros_since_epoch == other.micros_since_epoch

    def __lt__(self, other: Timestamp) -> bool:
        if not isinstance(other, Timestamp):
            return NotImplemented
        return self.micros_since_epoch < other.micros_since_epoch

    def __le__(self, other: Timestamp) -> bool:
        if not isinstance(other, Timestamp):
            return NotImplemented
        return self.micros_since_epoch <= other.micros_since_epoch

    def __gt__(self, other: Timestamp) -> bool:
        if not isinstance(other, Timestamp):
            return NotImplemented
        return self.micros_since_epoch > other.micros_since_epoch

    def __ge__(self, other: Timestamp) -> bool:
        if not isinstance(other, Timestamp):
            return NotImplemented
        return self.micros_since_epoch >= other.micros_since_epoch

    def __hash__(self) -> int:
        return hash(("Timestamp", self.micros_since_epoch))

    def __repr__(self) -> str:
        return f"Timestamp({self.micros_since_epoch})"

    def __str__(self) -> str:
        try:
            return self.to_datetime().isoformat()
        except OverflowError:
            return f"Timestamp({self.micros_since_epoch})"


class TimeDuration:
    """A signed span of time in microseconds."""

    __slots__ = ("micros",)

    micros: int

    def __init__(self, micros: int) -> None:
        if not isinstance(micros, int) or isinstance(micros, bool):
            raise TypeError(f"TimeDuration expects int microseconds, got {type(micros).__name__}")
        object.__setattr__(self, "micros", micros)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("TimeDuration is immutable")

    @classmethod
    def from_timedelta(cls, td: timedelta) -> TimeDuration:
        """From a timedelta."""
        return cls((td.days * 86_400 + td.seconds) * 1_000_000 + td.microseconds)

    @classmethod
    def from_seconds(cls, seconds: float) -> TimeDuration:
        """From (float) seconds."""
        return cls(round(seconds * 1_000_000))

    def to_timedelta(self) -> timedelta:
        """A timedelta."""
        return timedelta(microseconds=self.micros)

    def to_seconds(self) -> float:
        """Seconds, as a float."""
        return self.micros / 1_000_000

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TimeDuration):
            return NotImplemented
        return self.micros == other.micros

    def __lt__(self, other: TimeDuration) -> bool:
        if not isinstance(other, TimeDuration):
            return NotImplemented
        return self.micros < other.micros

    def __le__(self, other: TimeDuration) -> bool:
        if not isinstance(other, TimeDuration):
            return NotImplemented
        return self.micros <= other.micros

    def __gt__(self, other: TimeDuration) -> bool:
        if not isinstance(other, TimeDuration):
            return NotImplemented
        return self.micros > other.micros

    def __ge__(self, other: TimeDuration) -> bool:
        if not isinstance(other, TimeDuration):
            return NotImplemented
        return self.micros >= other.micros

    def __hash__(self) -> int:
        return hash(("TimeDuration", self.micros))

    def __repr__(self) -> str:
        return f"TimeDuration({self.micros})"


class ScheduleAt:
    """When a scheduled reducer runs: repeatedly at an ``interval``, or once at a ``time``."""

    __slots__ = ("value",)

    value: TimeDuration | Timestamp

    def __init__(self, value: TimeDuration | Timestamp | timedelta | datetime) -> None:
        if isinstance(value, timedelta):
            value = TimeDuration.from_timedelta(value)
        elif isinstance(value, datetime):
            value = Timestamp.from_datetime(value)
        if not isinstance(value, TimeDuration | Timestamp):
            raise TypeError(f"ScheduleAt expects a TimeDuration or a Timestamp, got {type(value).__name__}")
        object.__setattr__(self, "value", value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("ScheduleAt is immutable")

    @classmethod
    def interval(cls, every: TimeDuration | timedelta) -> ScheduleAt:
        """Run repeatedly, every ``every``."""
        return cls(every)

    @classmethod
    def time(cls, at: Timestamp | datetime) -> ScheduleAt:
        """Run once, at ``at``."""
        return cls(at)

    @property
    def is_interval(self) -> bool:
        """True for an interval, False for a single time."""
        return isinstance(self.value, TimeDuration)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ScheduleAt):
            return NotImplemented
        return self.value == other.value

    def __hash__(self) -> int:
        return hash(("ScheduleAt", self.value))

    def __repr__(self) -> str:
        kind = "interval" if self.is_interval else "time"
        return f"ScheduleAt.{kind}({self.value!r})"


# ---- binding into the SATS codecs ----------------------------------------------------------------
def _ids_to_wire(cls: type[_FixedBytes]) -> Any:
    def to_wire(v: Any) -> bytes:
        if type(v) is not cls:
            raise TypeError(f"expected {cls.__name__}, got {type(v).__name__} {v!r:.60}")
        return bytes(v)

    return to_wire


def _ts_to_wire(v: Any) -> int:
    if type(v) is not Timestamp:
        raise TypeError(f"expected Timestamp, got {type(v).__name__}")
    return v.micros_since_epoch


def _td_to_wire(v: Any) -> int:
    if type(v) is not TimeDuration:
        raise TypeError(f"expected TimeDuration, got {type(v).__name__}")
    return v.micros


def _uuid_from_wire(le: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=le[::-1])


def _uuid_to_wire(v: Any) -> bytes:
    if not isinstance(v, uuid.UUID):
        raise TypeError(f"expected uuid.UUID, got {type(v).__name__}")
    return v.bytes[::-1]


def _sched_from_wire(tv: tuple[int, Any]) -> ScheduleAt:
    return ScheduleAt(tv[1])


def _sched_to_wire(v: Any) -> tuple[int, Any]:
    if type(v) is not ScheduleAt:
        raise TypeError(f"expected ScheduleAt, got {type(v).__name__}")
    return (0 if v.is_interval else 1), v.value


# decoded identities and connection ids are shared objects (they repeat across rows; see SharedValues)
register_special(
    "identity",
    SpecialBinding(SharedValues(partial(bytes.__new__, Identity)), _ids_to_wire(Identity), Identity),
)
register_special(
    "connection_id",
    SpecialBinding(
        SharedValues(partial(bytes.__new__, ConnectionId)), _ids_to_wire(ConnectionId), ConnectionId
    ),
)
register_special("timestamp", SpecialBinding(Timestamp, _ts_to_wire, Timestamp))
register_special("time_duration", SpecialBinding(TimeDuration, _td_to_wire, TimeDuration))
register_special("uuid", SpecialBinding(_uuid_from_wire, _uuid_to_wire, uuid.UUID))
register_special("schedule_at", SpecialBinding(_sched_from_wire, _sched_to_wire, ScheduleAt))
