"""SATS: SpacetimeDB's algebraic type system, with compiled BSATN codecs and SATS-JSON.

It includes the special value types that the codecs encode and decode (:class:`Identity`,
:class:`ConnectionId` alias :class:`Address`, :class:`Timestamp`, :class:`TimeDuration`,
:class:`ScheduleAt`; uuids are :class:`uuid.UUID`): importing this package binds them, so an Identity
encodes after ``import spacetime_game.sdk.sats`` alone. :mod:`spacetime_game.sdk` re-exports them.

This package depends on the standard library only.
"""

from ._bsatn import Binding, Codec, compile_codec
from ._errors import DecodeError, EncodeError, SchemaError, SpacetimeError
from ._json import from_json, to_json, to_untyped_json
from ._special import Address, ConnectionId, Identity, ScheduleAt, TimeDuration, Timestamp
from ._types import (
    PRIMITIVE_NAMES,
    AlgebraicType,
    ArrayType,
    PrimitiveType,
    ProductElement,
    ProductType,
    RefType,
    SumType,
    SumVariant,
    Typespace,
)
from ._values import (
    ProductBinding,
    SharedValues,
    Some,
    SpecialBinding,
    SumBinding,
    SumValue,
    get_special,
    register_special,
)

__all__ = [
    "PRIMITIVE_NAMES",
    "Address",
    "AlgebraicType",
    "ArrayType",
    "Binding",
    "Codec",
    "ConnectionId",
    "DecodeError",
    "EncodeError",
    "Identity",
    "PrimitiveType",
    "ProductBinding",
    "ProductElement",
    "ProductType",
    "SharedValues",
    "RefType",
    "ScheduleAt",
    "SchemaError",
    "Some",
    "SpacetimeError",
    "SpecialBinding",
    "SumBinding",
    "SumType",
    "SumValue",
    "SumVariant",
    "TimeDuration",
    "Timestamp",
    "Typespace",
    "compile_codec",
    "from_json",
    "get_special",
    "register_special",
    "to_json",
    "to_untyped_json",
]
