"""The AlgebraicType model of SATS (docs/protocol.md section 4).

Types are immutable values. They are parsed from, and written to, the typed SATS-JSON form
found in module schemas (``{"U32": []}``, ``{"Product": {"elements": [...]}}``, ``{"Ref": n}``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from ._errors import SchemaError

__all__ = [
    "PRIMITIVE_NAMES",
    "AlgebraicType",
    "ArrayType",
    "PrimitiveType",
    "ProductElement",
    "ProductType",
    "RefType",
    "SumType",
    "SumVariant",
    "Typespace",
]

#: Primitive type names, in the order of the AlgebraicType sum (tags 4 to 19).
PRIMITIVE_NAMES: Final[tuple[str, ...]] = (
    "String",
    "Bool",
    "I8",
    "U8",
    "I16",
    "U16",
    "I32",
    "U32",
    "I64",
    "U64",
    "I128",
    "U128",
    "I256",
    "U256",
    "F32",
    "F64",
)

#: Names of the single field of each special product type, mapped to (kind, inner primitive).
SPECIAL_PRODUCTS: Final[dict[str, tuple[str, str]]] = {
    "__identity__": ("identity", "U256"),
    "__connection_id__": ("connection_id", "U128"),
    "__timestamp_micros_since_unix_epoch__": ("timestamp", "I64"),
    "__time_duration_micros__": ("time_duration", "I64"),
    "__uuid__": ("uuid", "U128"),
}


class AlgebraicType:
    """Base class of every SATS type. Use the subclasses or the constructors below."""

    __slots__ = ()

    # ----- constructors -------------------------------------------------------------------
    @staticmethod
    def from_json(obj: Any) -> AlgebraicType:
        """Parse the typed SATS-JSON form of an AlgebraicType, as found in schemas."""
        return _type_from_json(obj, "type")

    def to_json(self) -> dict[str, Any]:
        """The typed SATS-JSON form of this type (the inverse of :meth:`from_json`)."""
        raise NotImplementedError

    @staticmethod
    def option(inner: AlgebraicType) -> SumType:
        """``Option<inner>``: the sum ``{some: inner, none: ()}``."""
        return SumType((SumVariant("some", inner), SumVariant("none", ProductType(()))))

    @staticmethod
    def result(ok: AlgebraicType, err: AlgebraicType) -> SumType:
        """``Result<ok, err>``: the sum ``{ok: ok, err: err}``."""
        return SumType((SumVariant("ok", ok), SumVariant("err", err)))

    @staticmethod
    def product(**fields: AlgebraicType) -> ProductType:
        """A named product, from keyword arguments in declaration order."""
        return ProductType(tuple(ProductElement(k, v) for k, v in fields.items()))

    @staticmethod
    def sum(**variants: AlgebraicType) -> SumType:
        """A sum, from keyword arguments in declaration order."""
        return SumType(tuple(SumVariant(k, v) for k, v in variants.items()))

    @staticmethod
    def array(elem: AlgebraicType) -> ArrayType:
        """``Array<elem>``."""
        return ArrayType(elem)

    @staticmethod
    def special(kind: str) -> ProductType | SumType:
        """The SATS shape of a special type: ``identity``, ``connection_id``, ``timestamp``,
        ``time_duration``, ``uuid`` or ``schedule_at``."""
        if kind == "schedule_at":
            return SumType(
                (
                    SumVariant("Interval", AlgebraicType.special("time_duration")),
                    SumVariant("Time", AlgebraicType.special("timestamp")),
                )
            )
        for field_name, (k, inner) in SPECIAL_PRODUCTS.items():
            if k == kind:
                return ProductType((ProductElement(field_name, PrimitiveType(inner)),))
        raise ValueError(f"unknown special type {kind!r}")

    # ----- classification -------------------------------------------------------------------
    @property
    def special_kind(self) -> str | None:
        """``identity``, ``connection_id``, ``timestamp``, ``time_duration``, ``uuid``,
        ``schedule_at``, ``option``, ``result`` or None for an ordinary type."""
        return None


@dataclass(frozen=True, slots=True)
class PrimitiveType(AlgebraicType):
    """A scalar: ``Bool``, integers ``I8``..``U256``, ``F32``, ``F64`` or ``String``."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in PRIMITIVE_NAMES:
            raise ValueError(f"unknown primitive type {self.name!r}")

    def to_json(self) -> dict[str, Any]:
        return {self.name: []}

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class ArrayType(AlgebraicType):
    """``Array<elem>``. ``Array<U8>`` is the bytes type."""

    elem: AlgebraicType

    def to_json(self) -> dict[str, Any]:
        return {"Array": self.elem.to_json()}

    @property
    def is_bytes(self) -> bool:
        """True for ``Array<U8>``, which maps to Python ``bytes``."""
        return self.elem == PrimitiveType("U8")

    def __repr__(self) -> str:
        return f"Array<{self.elem!r}>"


@dataclass(frozen=True, slots=True)
class ProductElement:
    """One field of a product: an optional name and a type."""

    name: str | None
    type: AlgebraicType

    def to_json(self) -> dict[str, Any]:
        """The typed SATS-JSON form ``{"name": {"some": ...} | {"none": []}, "algebraic_type": ...}``."""
        return {
            "name": {"some": self.name} if self.name is not None else {"none": []},
            "algebraic_type": self.type.to_json(),
        }


@dataclass(frozen=True, slots=True)
class ProductType(AlgebraicType):
    """A product (struct or tuple). The empty product is the unit type."""

    elements: tuple[ProductElement, ...]

    def to_json(self) -> dict[str, Any]:
        return {"Product": {"elements": [e.to_json() for e in self.elements]}}

    @property
    def names(self) -> tuple[str | None, ...]:
        """The field names, in declaration order."""
        return tuple(e.name for e in self.elements)

    @property
    def special_kind(self) -> str | None:
        if len(self.elements) == 1:
            e = self.elements[0]
            spec = SPECIAL_PRODUCTS.get(e.name or "")
            if spec is not None and e.type == PrimitiveType(spec[1]):
                return spec[0]
        return None

    def __repr__(self) -> str:
        kind = self.special_kind
        if kind is not None:
            return _SPECIAL_DISPLAY[kind]
        inner = ", ".join(f"{e.name}: {e.type!r}" if e.name else repr(e.type) for e in self.elements)
        return f"Product{{{inner}}}"


@dataclass(frozen=True, slots=True)
class SumVariant:
    """One variant of a sum: an optional name and a payload type (the unit product for none)."""

    name: str | None
    type: AlgebraicType

    def to_json(self) -> dict[str, Any]:
        """The typed SATS-JSON form ``{"name": {"some": ...} | {"none": []}, "algebraic_type": ...}``."""
        return {
            "name": {"some": self.name} if self.name is not None else {"none": []},
            "algebraic_type": self.type.to_json(),
        }


@dataclass(frozen=True, slots=True)
class SumType(AlgebraicType):
    """A sum (tagged union). The tag is the variant's index, encoded as one byte."""

    variants: tuple[SumVariant, ...]

    def to_json(self) -> dict[str, Any]:
        return {"Sum": {"variants": [v.to_json() for v in self.variants]}}

    @property
    def special_kind(self) -> str | None:
        names = tuple(v.name for v in self.variants)
        if names == ("some", "none") and self.variants[1].type == UNIT:
            return "option"
        if names == ("ok", "err"):
            return "result"
        if (
            names == ("Interval", "Time")
            and self.variants[0].type.special_kind == "time_duration"
            and self.variants[1].type.special_kind == "timestamp"
        ):
            return "schedule_at"
        return None

    @property
    def is_plain_enum(self) -> bool:
        """True when every variant carries the unit payload (a C-like enum)."""
        return all(v.type == UNIT for v in self.variants)

    def __repr__(self) -> str:
        kind = self.special_kind
        if kind == "option":
            return f"Option<{self.variants[0].type!r}>"
        if kind == "result":
            return f"Result<{self.variants[0].type!r}, {self.variants[1].type!r}>"
        if kind == "schedule_at":
            return "ScheduleAt"
        inner = ", ".join(f"{v.name}: {v.type!r}" for v in self.variants)
        return f"Sum{{{inner}}}"


@dataclass(frozen=True, slots=True)
class RefType(AlgebraicType):
    """A reference to entry ``index`` of a :class:`Typespace`."""

    index: int

    def to_json(self) -> dict[str, Any]:
        return {"Ref": self.index}

    def __repr__(self) -> str:
        return f"Ref({self.index})"


UNIT: Final = ProductType(())

_SPECIAL_DISPLAY: Final[dict[str, str]] = {
    "identity": "Identity",
    "connection_id": "ConnectionId",
    "timestamp": "Timestamp",
    "time_duration": "TimeDuration",
    "uuid": "Uuid",
}


@dataclass(frozen=True, slots=True)
class Typespace:
    """The numbered list of types that ``Ref`` types point into."""

    types: tuple[AlgebraicType, ...] = ()

    EMPTY: ClassVar[Typespace]

    @staticmethod
    def from_json(obj: Any) -> Typespace:
        """Parse ``{"types": [...]}``; every Ref must point inside the list."""
        if not isinstance(obj, Mapping) or not isinstance(obj.get("types"), list):
            raise SchemaError("typespace", 'expected an object {"types": [...]}')
        types = tuple(_type_from_json(t, f"typespace.types[{i}]") for i, t in enumerate(obj["types"]))
        ts = Typespace(types)
        ts.check_refs()
        return ts

    def to_json(self) -> dict[str, Any]:
        """The typed SATS-JSON form ``{"types": [...]}``."""
        return {"types": [t.to_json() for t in self.types]}

    def __getitem__(self, index: int) -> AlgebraicType:
        return self.types[index]

    def __len__(self) -> int:
        return len(self.types)

    def resolve(self, ty: AlgebraicType) -> AlgebraicType:
        """Follow Refs until a non-Ref type is reached."""
        seen: set[int] = set()
        while isinstance(ty, RefType):
            if ty.index in seen:
                raise SchemaError(f"Ref({ty.index})", "reference cycle with no structure")
            seen.add(ty.index)
            if not 0 <= ty.index < len(self.types):
                raise SchemaError(
                    f"Ref({ty.index})", f"dangling Ref: typespace has {len(self.types)} entries"
                )
            ty = self.types[ty.index]
        return ty

    def check_refs(self, extra: Iterable[tuple[str, AlgebraicType]] = ()) -> None:
        """Raise :class:`SchemaError` naming the place of any Ref that points outside the typespace."""
        for path, ty in [(f"typespace.types[{i}]", t) for i, t in enumerate(self.types)] + list(extra):
            for sub_path, ref in _iter_refs(ty, path):
                if not 0 <= ref < len(self.types):
                    raise SchemaError(
                        sub_path, f"dangling Ref {ref}: typespace has {len(self.types)} entries"
                    )


Typespace.EMPTY = Typespace(())


def _iter_refs(ty: AlgebraicType, path: str) -> Iterable[tuple[str, int]]:
    if isinstance(ty, RefType):
        yield path, ty.index
    elif isinstance(ty, ArrayType):
        yield from _iter_refs(ty.elem, path + "[]")
    elif isinstance(ty, ProductType):
        for i, e in enumerate(ty.elements):
            yield from _iter_refs(e.type, f"{path}.{e.name or i}")
    elif isinstance(ty, SumType):
        for i, v in enumerate(ty.variants):
            yield from _iter_refs(v.type, f"{path}::{v.name or i}")


def _opt_name(obj: Any, path: str) -> str | None:
    if obj is None:
        return None
    if isinstance(obj, str):  # lenient: a bare string
        return obj
    if isinstance(obj, Mapping) and len(obj) == 1:
        if "some" in obj and isinstance(obj["some"], str):
            return str(obj["some"])
        if "none" in obj:
            return None
    raise SchemaError(path, f'expected {{"some": "<name>"}} or {{"none": []}}, got {obj!r}')


def _elements(obj: Any, key: str, path: str) -> Sequence[Any]:
    if not isinstance(obj, Mapping) or not isinstance(obj.get(key), list):
        raise SchemaError(path, f'expected {{"{key}": [...]}}, got {_short(obj)}')
    items: Sequence[Any] = obj[key]
    return items


def _type_from_json(obj: Any, path: str) -> AlgebraicType:
    if not isinstance(obj, Mapping) or len(obj) != 1:
        raise SchemaError(path, f"expected a single-key object naming a type, got {_short(obj)}")
    ((tag, body),) = obj.items()
    if tag in PRIMITIVE_NAMES:
        return PrimitiveType(tag)
    if tag == "Array":
        return ArrayType(_type_from_json(body, path + "[]"))
    if tag == "Ref":
        if not isinstance(body, int) or isinstance(body, bool) or body < 0:
            raise SchemaError(path, f"Ref must be a non-negative integer, got {body!r}")
        return RefType(body)
    if tag == "Product":
        elems = []
        for i, e in enumerate(_elements(body, "elements", path)):
            epath = f"{path}.elements[{i}]"
            if not isinstance(e, Mapping) or "algebraic_type" not in e:
                raise SchemaError(epath, f"expected {{name, algebraic_type}}, got {_short(e)}")
            name = _opt_name(e.get("name"), epath + ".name")
            elems.append(ProductElement(name, _type_from_json(e["algebraic_type"], f"{path}.{name or i}")))
        return ProductType(tuple(elems))
    if tag == "Sum":
        variants = []
        for i, v in enumerate(_elements(body, "variants", path)):
            vpath = f"{path}.variants[{i}]"
            if not isinstance(v, Mapping) or "algebraic_type" not in v:
                raise SchemaError(vpath, f"expected {{name, algebraic_type}}, got {_short(v)}")
            name = _opt_name(v.get("name"), vpath + ".name")
            variants.append(SumVariant(name, _type_from_json(v["algebraic_type"], f"{path}::{name or i}")))
        if len(variants) > 256:
            raise SchemaError(path, f"a sum may have at most 256 variants, got {len(variants)}")
        return SumType(tuple(variants))
    raise SchemaError(path, f"unknown type tag {tag!r}")


def _short(obj: Any) -> str:
    text = repr(obj)
    return text if len(text) <= 80 else text[:77] + "..."
