"""Column types with explicit widths for module authors, and the annotation -> AlgebraicType mapping."""

from __future__ import annotations

import enum
import types
import typing
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from ..sdk import ConnectionId, Identity, ScheduleAt, TimeDuration, Timestamp
from ..sdk.sats import AlgebraicType, ArrayType, PrimitiveType, SchemaError

__all__ = [
    "Column",
    "SatsType",
    "auto_inc",
    "f32",
    "f64",
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
    "i256",
    "index",
    "primary_key",
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "u256",
    "unique",
]


@dataclass(frozen=True, slots=True)
class SatsType:
    """Annotation metadata giving the exact SATS type of a column (``u32 = Annotated[int, SatsType(U32)]``)."""

    type: AlgebraicType


@dataclass(frozen=True, slots=True)
class Column:
    """Annotation metadata for a column constraint: ``Annotated[u32, primary_key, auto_inc]``."""

    kind: Literal["primary_key", "unique", "index", "auto_inc"]


primary_key: Final = Column("primary_key")
unique: Final = Column("unique")
index: Final = Column("index")
auto_inc: Final = Column("auto_inc")


def _p(name: str) -> SatsType:
    return SatsType(PrimitiveType(name))


u8 = Annotated[int, _p("U8")]
u16 = Annotated[int, _p("U16")]
u32 = Annotated[int, _p("U32")]
u64 = Annotated[int, _p("U64")]
u128 = Annotated[int, _p("U128")]
u256 = Annotated[int, _p("U256")]
i8 = Annotated[int, _p("I8")]
i16 = Annotated[int, _p("I16")]
i32 = Annotated[int, _p("I32")]
i64 = Annotated[int, _p("I64")]
i128 = Annotated[int, _p("I128")]
i256 = Annotated[int, _p("I256")]
f32 = Annotated[float, _p("F32")]
f64 = Annotated[float, _p("F64")]

_SPECIALS: Final[dict[Any, str]] = {
    Identity: "identity",
    ConnectionId: "connection_id",
    Timestamp: "timestamp",
    TimeDuration: "time_duration",
    ScheduleAt: "schedule_at",
    uuid.UUID: "uuid",
}


class TypeResolver(typing.Protocol):
    """Turns a user class (product or enum) into a Ref of the module typespace."""

    def ref_for(self, cls: type) -> AlgebraicType: ...


def split_annotated(annotation: Any) -> tuple[Any, list[Any]]:
    """``Annotated[T, a, b]`` -> ``(T, [a, b])``, flattening nested Annotated."""
    meta: list[Any] = []
    while typing.get_origin(annotation) is Annotated:
        args = typing.get_args(annotation)
        annotation = args[0]
        meta = list(args[1:]) + meta
    return annotation, meta


def to_algebraic(annotation: Any, where: str, resolver: TypeResolver) -> AlgebraicType:
    """The SATS type of a Python annotation (explicit integer widths required)."""
    base, meta = split_annotated(annotation)
    for m in meta:
        if isinstance(m, SatsType):
            return m.type
    if base is bool:
        return PrimitiveType("Bool")
    if base is int:
        raise SchemaError(
            where, "an int needs an explicit width: use u8..u256 or i8..i256 from spacetime_game.server"
        )
    if base is float:
        return PrimitiveType("F64")
    if base is str:
        return PrimitiveType("String")
    if base is bytes:
        return ArrayType(PrimitiveType("U8"))
    if base in _SPECIALS:
        return AlgebraicType.special(_SPECIALS[base])
    origin = typing.get_origin(base)
    if origin in (list, typing.List):  # noqa: UP006
        (elem,) = typing.get_args(base) or (None,)
        if elem is None:
            raise SchemaError(where, "a list needs an element type: list[T]")
        return ArrayType(to_algebraic(elem, where + "[]", resolver))
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(base) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(base)) == 2:
            return AlgebraicType.option(to_algebraic(args[0], where, resolver))
        raise SchemaError(where, f"unions other than Optional[T] are not supported: {base!r}")
    if isinstance(base, type) and (issubclass(base, enum.Enum) or hasattr(base, "__spacetime_product__")):
        return resolver.ref_for(base)
    raise SchemaError(where, f"unsupported column type {base!r}")


def column_markers(annotation: Any) -> set[str]:
    """The constraint kinds (primary_key, unique, index, auto_inc) in an annotation."""
    _, meta = split_annotated(annotation)
    return {m.kind for m in meta if isinstance(m, Column)}
