"""SATS: SpacetimeDB's algebraic type system, with compiled BSATN codecs and SATS-JSON.

This package depends on the standard library only.
"""

from ._bsatn import Binding, Codec, compile_codec
from ._errors import DecodeError, EncodeError, SchemaError, SpacetimeError
from ._json import from_json, to_json, to_untyped_json
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
    "AlgebraicType",
    "ArrayType",
    "Binding",
    "Codec",
    "DecodeError",
    "EncodeError",
    "PrimitiveType",
    "ProductBinding",
    "ProductElement",
    "ProductType",
    "SharedValues",
    "RefType",
    "SchemaError",
    "Some",
    "SpacetimeError",
    "SpecialBinding",
    "SumBinding",
    "SumType",
    "SumValue",
    "SumVariant",
    "Typespace",
    "compile_codec",
    "from_json",
    "get_special",
    "register_special",
    "to_json",
    "to_untyped_json",
]
