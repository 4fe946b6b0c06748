"""Generic Python values for SATS types that have no class of their own, and the hooks that bind
types to classes (generated row classes, protocol messages, and the special types such as Identity that
``_special`` defines)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "SharedValues",
    "ProductBinding",
    "Some",
    "SpecialBinding",
    "SumBinding",
    "SumValue",
    "get_special",
    "register_special",
]


@dataclass(frozen=True, slots=True)
class SumValue:
    """A value of a sum type that has no class bound to it: the variant's ``tag`` (its index),
    its ``name`` and its payload ``value`` (``()`` for a unit variant)."""

    tag: int
    value: Any = ()
    name: str | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SumValue):
            return NotImplemented
        return self.tag == other.tag and self.value == other.value

    def __hash__(self) -> int:
        return hash((self.tag, self.value))


@dataclass(frozen=True, slots=True)
class Some:
    """The ``some`` of an option whose payload is itself an option, so that ``Some(None)`` and
    ``None`` stay apart. Options of any other type use the payload itself for ``some`` and ``None``
    for ``none``."""

    value: Any


@dataclass(frozen=True, slots=True)
class ProductBinding:
    """How a product type maps to a Python class.

    ``make`` builds a value from the tuple of field values (in declaration order); it is called once
    per decoded value, so a C-level callable (``functools.partial(tuple.__new__, cls)``) is fastest.
    ``fields`` returns the field values of a value, in declaration order, for encoding.
    ``cls`` is the class, when there is one (used for type checks and messages).
    """

    make: Callable[[tuple[Any, ...]], Any]
    fields: Callable[[Any], Sequence[Any]]
    cls: type | None = None


@dataclass(frozen=True, slots=True)
class SumBinding:
    """How a sum type maps to Python values: ``make(tag, payload)`` and ``split(value) -> (tag, payload)``."""

    make: Callable[[int, Any], Any]
    split: Callable[[Any], tuple[int, Any]]
    cls: type | None = None


@dataclass(frozen=True, slots=True)
class SpecialBinding:
    """How a special type maps to a Python class.

    For ``identity``, ``connection_id`` and ``uuid`` the wire form is the little-endian bytes
    (32, 16, 16); for ``timestamp`` and ``time_duration`` it is the int of microseconds; for
    ``schedule_at`` it is ``(tag, payload)`` with the payload already converted.
    ``from_wire`` is called once per decoded value; ``to_wire`` validates and converts back, and
    raises TypeError or ValueError for a value of the wrong kind.
    """

    from_wire: Callable[[Any], Any]
    to_wire: Callable[[Any], Any]
    cls: type | None = None


class SharedValues:
    """A ``from_wire`` that hands out one shared object per distinct wire value.

    Identities and connection ids repeat across rows (every row a player owns names the player), and
    their objects are immutable: sharing them saves an allocation per decoded value and keeps big
    caches small. The compiled codecs look values up inline (and remember new ones while there is room;
    a full memory is emptied when the next decode starts). At most ``limit`` values are kept.
    """

    __slots__ = ("cache", "limit", "make")

    def __init__(self, make: Callable[[Any], Any], limit: int = 4096) -> None:
        self.make = make
        self.limit = limit
        #: wire value -> the shared object (the same dict for the object's whole life)
        self.cache: dict[Any, Any] = {}

    def __call__(self, wire: Any) -> Any:
        value = self.cache.get(wire)
        if value is None:
            if len(self.cache) >= self.limit:
                self.cache.clear()
            value = self.cache[wire] = self.make(wire)
        return value

    def __repr__(self) -> str:
        return f"SharedValues({self.make!r}, limit={self.limit})"


#: The special types; ``_special`` binds each to its class when the package is imported.
_KINDS: Final = frozenset({"identity", "connection_id", "uuid", "timestamp", "time_duration", "schedule_at"})
_SPECIALS: Final[dict[str, SpecialBinding]] = {}


def register_special(kind: str, binding: SpecialBinding) -> None:
    """Bind a special type (``identity``, ``timestamp``, ...) to a Python class.

    The ``sats`` package binds its own classes (:class:`Identity`, :class:`Timestamp`, ...) when it
    is imported; a later call replaces that binding for the codecs compiled afterwards.
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown special type {kind!r}")
    _SPECIALS[kind] = binding


def get_special(kind: str) -> SpecialBinding:
    """The current binding of a special type."""
    return _SPECIALS[kind]
