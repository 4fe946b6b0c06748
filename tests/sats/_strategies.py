"""Hypothesis strategies: random AlgebraicTypes over a fixed typespace (with recursive entries), and
random values of any such type."""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

from hypothesis import strategies as st

from spacetime_game.sdk import ConnectionId, Identity, ScheduleAt, TimeDuration, Timestamp
from spacetime_game.sdk.sats import (
    PRIMITIVE_NAMES,
    AlgebraicType,
    ArrayType,
    Codec,
    PrimitiveType,
    ProductElement,
    ProductType,
    RefType,
    Some,
    SumType,
    SumValue,
    SumVariant,
    Typespace,
    compile_codec,
)

P = PrimitiveType
UNIT = ProductType(())

# --------------------------------------------------------------------------------------------------
# the typespace that random types may point into
# --------------------------------------------------------------------------------------------------
LINKED_LIST = 0  # Product{head: I32, tail: Option<Ref(0)>}
TREE = 1  # Sum{Leaf: String, Node: Product{label: U8, children: Array<Ref(1)>}}
POINT = 2  # Product{x: F32, y: F32}
MAYBE_POINT = 3  # Option<Ref(2)>
POINT_ALIAS = 4  # Ref(2)
MAYBE_MAYBE_POINT = 5  # Option<Ref(3)>: an option of an option, through a Ref
BYTE = 6  # U8 (so Array<Ref(6)> is bytes)
UNIT_REF = 7  # Product{}
SCHEDULE = 8  # Product{id: U64, at: ScheduleAt, who: Identity}

TYPESPACE = Typespace(
    (
        AlgebraicType.product(head=P("I32"), tail=AlgebraicType.option(RefType(LINKED_LIST))),
        AlgebraicType.sum(
            Leaf=P("String"), Node=AlgebraicType.product(label=P("U8"), children=ArrayType(RefType(TREE)))
        ),
        AlgebraicType.product(x=P("F32"), y=P("F32")),
        AlgebraicType.option(RefType(POINT)),
        RefType(POINT),
        AlgebraicType.option(RefType(MAYBE_POINT)),
        P("U8"),
        UNIT,
        AlgebraicType.product(
            id=P("U64"), at=AlgebraicType.special("schedule_at"), who=AlgebraicType.special("identity")
        ),
    )
)

INT_RANGES = {
    **{f"U{b}": (0, (1 << b) - 1) for b in (8, 16, 32, 64, 128, 256)},
    **{f"I{b}": (-(1 << (b - 1)), (1 << (b - 1)) - 1) for b in (8, 16, 32, 64, 128, 256)},
}
I64 = INT_RANGES["I64"]


def primitive_values(name: str) -> st.SearchStrategy[Any]:
    if name == "Bool":
        return st.booleans()
    if name == "String":
        return st.text(max_size=12) | st.sampled_from(["", "hé!", "日本語", "🎮 game", "a\x00b", "\u2028"])
    if name == "F32":
        return st.floats(width=32) | st.sampled_from([-0.0, float("inf"), float("-inf"), float("nan")])
    if name == "F64":
        return st.floats() | st.sampled_from([-0.0, float("inf"), float("-inf"), float("nan"), 5e-324])
    lo, hi = INT_RANGES[name]
    return st.integers(lo, hi) | st.sampled_from([lo, hi, 0])


timestamps = st.integers(*I64).map(Timestamp)
durations = st.integers(*I64).map(TimeDuration)
SPECIAL_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "identity": st.binary(min_size=32, max_size=32).map(Identity.from_le_bytes),
    "connection_id": st.binary(min_size=16, max_size=16).map(ConnectionId.from_le_bytes),
    "uuid": st.integers(0, (1 << 128) - 1).map(lambda i: uuid.UUID(int=i)),
    "timestamp": timestamps,
    "time_duration": durations,
    "schedule_at": (timestamps | durations).map(ScheduleAt),
}
SPECIAL_TYPES = {kind: AlgebraicType.special(kind) for kind in SPECIAL_VALUES}

ints32 = primitive_values("I32")


def ordered_dicts(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts with the keys in the given (declaration) order."""
    names = list(fields)
    return st.tuples(*fields.values()).map(lambda t: dict(zip(names, t, strict=True)))


points = ordered_dicts({"x": primitive_values("F32"), "y": primitive_values("F32")})
maybe_points = st.none() | points


def _cons(head: int, tail: Any) -> dict[str, Any]:
    return {"head": head, "tail": tail}


def _node(label: int, children: list[Any]) -> SumValue:
    return SumValue(1, {"label": label, "children": children})


REF_VALUES: dict[int, st.SearchStrategy[Any]] = {
    LINKED_LIST: st.recursive(
        st.builds(_cons, ints32, st.none()),
        lambda tail: st.builds(_cons, ints32, tail),
        max_leaves=12,
    ),
    TREE: st.recursive(
        st.builds(SumValue, st.just(0), primitive_values("String")),
        lambda kids: st.builds(_node, primitive_values("U8"), st.lists(kids, max_size=3)),
        max_leaves=8,
    ),
    POINT: points,
    MAYBE_POINT: maybe_points,
    POINT_ALIAS: points,
    MAYBE_MAYBE_POINT: st.none() | maybe_points.map(Some),
    BYTE: primitive_values("U8"),
    UNIT_REF: st.just(()),
    SCHEDULE: ordered_dicts(
        {
            "id": primitive_values("U64"),
            "at": SPECIAL_VALUES["schedule_at"],
            "who": SPECIAL_VALUES["identity"],
        }
    ),
}


# --------------------------------------------------------------------------------------------------
# random types
# --------------------------------------------------------------------------------------------------
LEAF_TYPES: list[AlgebraicType] = [
    *(P(n) for n in PRIMITIVE_NAMES),
    ArrayType(P("U8")),
    UNIT,
    *SPECIAL_TYPES.values(),
    *(RefType(i) for i in range(len(TYPESPACE))),
]


def _product(children: list[AlgebraicType], names: str) -> ProductType:
    if names == "named":
        return ProductType(tuple(ProductElement(f"f{i}", c) for i, c in enumerate(children)))
    if names == "unnamed":
        return ProductType(tuple(ProductElement(None, c) for c in children))
    # mixed: every other field named
    return ProductType(tuple(ProductElement(f"f{i}" if i % 2 else None, c) for i, c in enumerate(children)))


def _sum(children: list[AlgebraicType], units: list[bool], named: bool) -> SumType:
    variants = []
    for i, (c, unit) in enumerate(zip(children, units, strict=False)):
        variants.append(SumVariant(f"V{i}" if named or i % 2 else None, UNIT if unit else c))
    return SumType(tuple(variants))


def _extend(children: st.SearchStrategy[AlgebraicType]) -> st.SearchStrategy[AlgebraicType]:
    return st.one_of(
        children.map(ArrayType),
        children.map(AlgebraicType.option),
        st.builds(AlgebraicType.result, children, children),
        st.builds(
            _product,
            st.lists(children, max_size=4),
            st.sampled_from(["named", "named", "unnamed", "mixed"]),
        ),
        st.builds(
            _sum,
            st.lists(children, min_size=1, max_size=4),
            st.lists(st.booleans(), min_size=4, max_size=4),
            st.booleans(),
        ),
    )


types: st.SearchStrategy[AlgebraicType] = st.recursive(st.sampled_from(LEAF_TYPES), _extend, max_leaves=8)


def resolve(ty: AlgebraicType) -> AlgebraicType:
    return TYPESPACE.resolve(ty)


def values_of(ty: AlgebraicType) -> st.SearchStrategy[Any]:
    """A strategy for Python values of ``ty`` (in the codecs' default conventions)."""
    if isinstance(ty, RefType):
        return REF_VALUES[ty.index]
    if isinstance(ty, PrimitiveType):
        return primitive_values(ty.name)
    if isinstance(ty, ArrayType):
        if resolve(ty.elem) == P("U8"):
            return st.binary(max_size=12)
        return st.lists(values_of(ty.elem), max_size=4)
    if isinstance(ty, ProductType):
        kind = ty.special_kind
        if kind is not None:
            return SPECIAL_VALUES[kind]
        if not ty.elements:
            return st.just(())
        if all(ty.names):
            return ordered_dicts({str(e.name): values_of(e.type) for e in ty.elements})
        return st.tuples(*(values_of(e.type) for e in ty.elements))
    if isinstance(ty, SumType):
        kind = ty.special_kind
        if kind == "schedule_at":
            return SPECIAL_VALUES["schedule_at"]
        if kind == "option":
            inner_ty = ty.variants[0].type
            inner = values_of(inner_ty)
            resolved = resolve(inner_ty)
            if isinstance(resolved, SumType) and resolved.special_kind == "option":
                inner = inner.map(Some)
            return st.none() | inner
        return st.one_of(
            *(
                st.builds(SumValue, st.just(tag), st.just(()) if v.type == UNIT else values_of(v.type))
                for tag, v in enumerate(ty.variants)
            )
        )
    raise TypeError(ty)


typed_values: st.SearchStrategy[tuple[AlgebraicType, Any]] = types.flatmap(
    lambda t: st.tuples(st.just(t), values_of(t))
)

# --------------------------------------------------------------------------------------------------
# fixed-width ("flat") products, for the bulk row decoder
# --------------------------------------------------------------------------------------------------
FLAT_LEAVES: list[AlgebraicType] = [
    *(P(n) for n in PRIMITIVE_NAMES if n != "String"),
    *(SPECIAL_TYPES[k] for k in ("identity", "connection_id", "uuid", "timestamp", "time_duration")),
    RefType(POINT),
    RefType(POINT_ALIAS),
    UNIT,
]


def _flat_extend(children: st.SearchStrategy[AlgebraicType]) -> st.SearchStrategy[AlgebraicType]:
    return st.builds(
        _product, st.lists(children, min_size=1, max_size=5), st.sampled_from(["named", "unnamed", "mixed"])
    )


flat_products: st.SearchStrategy[AlgebraicType] = st.builds(
    _product,
    st.lists(st.recursive(st.sampled_from(FLAT_LEAVES), _flat_extend, max_leaves=10), min_size=1, max_size=8),
    st.sampled_from(["named", "unnamed", "mixed"]),
)


@cache
def codec_for(ty: AlgebraicType) -> Codec:
    """Compiled once per type (types are hashable values)."""
    return compile_codec(ty, TYPESPACE)
