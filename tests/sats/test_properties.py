"""Round-trip properties over random types and values: BSATN, decoding at an offset, SATS-JSON (typed
and untyped), and the bulk row decoders."""

from __future__ import annotations

import json
import math
import struct
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from spacetime_game.sdk import DecodeError, Identity, ScheduleAt, TimeDuration, Timestamp
from spacetime_game.sdk.protocol import BsatnRowList
from spacetime_game.sdk.sats import (
    AlgebraicType,
    ArrayType,
    PrimitiveType,
    ProductType,
    RefType,
    Some,
    SumValue,
    compile_codec,
    from_json,
    to_json,
    to_untyped_json,
)
from tests._support import assert_strict_eq
from tests.sats._strategies import (
    FLAT_LEAVES,
    LEAF_TYPES,
    LINKED_LIST,
    MAYBE_MAYBE_POINT,
    TREE,
    TYPESPACE,
    codec_for,
    flat_products,
    typed_values,
    values_of,
)

P = PrimitiveType
SETTINGS = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --------------------------------------------------------------------------------------------------
# BSATN
# --------------------------------------------------------------------------------------------------
@SETTINGS
@given(typed_values, st.binary(max_size=8), st.binary(max_size=8), st.data())
@example((P("F64"), -0.0), b"", b"", None)
@example((P("F32"), math.inf), b"\x00", b"", None)
@example((AlgebraicType.option(AlgebraicType.option(P("U8"))), Some(None)), b"", b"\x01", None)
@example((RefType(MAYBE_MAYBE_POINT), Some(None)), b"", b"", None)
@example((RefType(LINKED_LIST), {"head": 1, "tail": {"head": 2, "tail": None}}), b"", b"", None)
def test_bsatn_round_trip(typed: tuple[AlgebraicType, Any], prefix: bytes, suffix: bytes, data: Any) -> None:
    ty, value = typed
    codec = codec_for(ty)
    encoded = codec.encode(value)
    decoded = codec.decode(encoded)
    assert_strict_eq(decoded, value)
    assert codec.encode(decoded) == encoded  # byte equality also covers NaN payloads
    # encode_into gives the same bytes
    parts: list[bytes] = []
    codec.encode_into(value, parts.append)
    assert b"".join(parts) == encoded
    # at an offset inside a bigger buffer
    got, end = codec.decode_from(prefix + encoded + suffix, len(prefix))
    assert_strict_eq(got, value)
    assert end == len(prefix) + len(encoded)
    # BSATN is prefix-free for a given type: trailing bytes and any truncation are errors
    if suffix:
        with pytest.raises(DecodeError) as info:
            codec.decode(encoded + suffix)
        assert info.value.offset == len(encoded)
    if encoded and data is not None:
        cut = data.draw(st.integers(0, len(encoded) - 1), label="cut")
        with pytest.raises(DecodeError):
            codec.decode(encoded[:cut])


@SETTINGS
@given(typed_values)
def test_typed_json_round_trip(typed: tuple[AlgebraicType, Any]) -> None:
    ty, value = typed
    js = to_json(value, ty, TYPESPACE)
    assert_strict_eq(from_json(js, ty, TYPESPACE), value)
    # it is real JSON (Python's json writes inf/nan as Infinity/NaN)
    text = json.dumps(js)
    assert_strict_eq(from_json(json.loads(text), ty, TYPESPACE), value)
    # and the BSATN of what comes back is the same
    assert codec_for(ty).encode(from_json(js, ty, TYPESPACE)) == codec_for(ty).encode(value)


@SETTINGS
@given(typed_values)
def test_untyped_json_round_trip(typed: tuple[AlgebraicType, Any]) -> None:
    ty, value = typed
    js = to_untyped_json(value, ty, TYPESPACE)
    assert js == to_json(value, ty, TYPESPACE, untyped=True)
    assert_strict_eq(from_json(json.loads(json.dumps(js)), ty, TYPESPACE), value)


def _classes_in(v: Any) -> set[str]:
    seen = {type(v).__name__}
    if isinstance(v, dict):
        children: Any = v.values()
    elif isinstance(v, list | tuple):
        children = v
    elif isinstance(v, SumValue | Some):
        children = [v.value]
    else:
        children = []
    for x in children:
        seen |= _classes_in(x)
    return seen


def test_strategies_generate_every_kind_of_value() -> None:
    """A guard for the strategies above: each shape of composite value does come out of them
    (derandomized, so this is not flaky). Each leaf type is covered by ``test_every_leaf_type``."""
    seen: set[str] = set()

    @settings(max_examples=300, database=None, derandomize=True, deadline=None)
    @given(typed_values)
    def collect(typed: tuple[AlgebraicType, Any]) -> None:
        seen.update(_classes_in(typed[1]))

    collect()
    expected = {
        "bool",
        "int",
        "float",
        "str",
        "bytes",
        "list",
        "tuple",
        "dict",
        "NoneType",
        "SumValue",
        "Some",
    }
    assert expected <= seen


def _wrapped(leaf: AlgebraicType) -> list[AlgebraicType]:
    return [
        leaf,
        ArrayType(leaf),
        AlgebraicType.option(leaf),
        AlgebraicType.product(a=leaf, b=P("Bool"), c=leaf),
        AlgebraicType.sum(A=ProductType(()), B=leaf),
    ]


@pytest.mark.parametrize("leaf", LEAF_TYPES, ids=repr)
def test_every_leaf_type(leaf: AlgebraicType) -> None:
    """Every primitive, special and Ref, alone and inside an array, an option, a product and a sum."""

    @settings(SETTINGS, max_examples=30)
    @given(st.sampled_from(_wrapped(leaf)).flatmap(lambda t: st.tuples(st.just(t), values_of(t))))
    def check(typed: tuple[AlgebraicType, Any]) -> None:
        ty, value = typed
        codec = codec_for(ty)
        encoded = codec.encode(value)
        assert_strict_eq(codec.decode(encoded), value)
        assert codec.encode(codec.decode(encoded)) == encoded
        assert_strict_eq(codec.decode_from(b"\x07" + encoded, 1)[0], value)
        assert_strict_eq(
            from_json(json.loads(json.dumps(to_json(value, ty, TYPESPACE))), ty, TYPESPACE), value
        )
        assert_strict_eq(from_json(to_untyped_json(value, ty, TYPESPACE), ty, TYPESPACE), value)

    check()


# --------------------------------------------------------------------------------------------------
# hand-picked values of every special and edge type
# --------------------------------------------------------------------------------------------------
EDGE_CASES: list[tuple[AlgebraicType, Any, str]] = [
    (P("F64"), -0.0, "0000000000000080"),
    (P("F64"), math.inf, "000000000000f07f"),
    (P("F32"), -math.inf, "000080ff"),
    (P("U256"), (1 << 256) - 1, "ff" * 32),
    (P("I256"), -(1 << 255), "00" * 31 + "80"),
    (P("I128"), -(1 << 127), "00" * 15 + "80"),
    (P("U128"), (1 << 128) - 1, "ff" * 16),
    (P("String"), "日本", "06000000e697a5e69cac"),
    (AlgebraicType.option(AlgebraicType.option(P("U8"))), None, "01"),
    (AlgebraicType.option(AlgebraicType.option(P("U8"))), Some(None), "0001"),
    (AlgebraicType.option(AlgebraicType.option(P("U8"))), Some(7), "000007"),
    (RefType(MAYBE_MAYBE_POINT), Some(None), "0001"),
    (RefType(LINKED_LIST), {"head": 5, "tail": None}, "0500000001"),
    (RefType(TREE), SumValue(1, {"label": 1, "children": [SumValue(0, "a")]}), "010101000000000100000061"),
    (ArrayType(RefType(6)), b"\x01\x02", "020000000102"),  # Array<Ref -> U8> is bytes
    (AlgebraicType.special("uuid"), uuid.UUID(int=1), "01" + "00" * 15),
    (AlgebraicType.special("schedule_at"), ScheduleAt(TimeDuration(-1)), "00" + "ff" * 8),
    (AlgebraicType.special("identity"), Identity.from_int(1), "01" + "00" * 31),
    (AlgebraicType.special("timestamp"), Timestamp(-(1 << 63)), "00" * 7 + "80"),
    (ProductType(()), (), ""),
    (ArrayType(ProductType(())), [(), ()], "02000000"),
]


@pytest.mark.parametrize(("ty", "value", "hex_"), EDGE_CASES, ids=lambda x: repr(x)[:40])
def test_edge_case_values(ty: AlgebraicType, value: Any, hex_: str) -> None:
    codec = codec_for(ty)
    assert codec.encode(value).hex() == hex_
    assert_strict_eq(codec.decode(bytes.fromhex(hex_)), value)
    assert_strict_eq(from_json(to_json(value, ty, TYPESPACE), ty, TYPESPACE), value)
    assert_strict_eq(from_json(to_untyped_json(value, ty, TYPESPACE), ty, TYPESPACE), value)


def test_nan_round_trips_bit_for_bit() -> None:
    for name, fmt in (("F32", "<f"), ("F64", "<d")):
        codec = compile_codec(P(name))
        encoded = codec.encode(math.nan)
        assert encoded == struct.pack(fmt, math.nan)
        assert math.isnan(codec.decode(encoded))
        assert codec.encode(codec.decode(encoded)) == encoded


def test_tuples_option_decodes_arrays_to_tuples() -> None:
    ty = AlgebraicType.product(a=ArrayType(P("U32")), b=ArrayType(P("String")))
    codec = compile_codec(ty, tuples=True)
    data = codec.encode({"a": [1, 2], "b": ["x"]})
    assert codec.decode(data) == {"a": (1, 2), "b": ("x",)}
    assert compile_codec(ty).decode(data) == {"a": [1, 2], "b": ["x"]}


# --------------------------------------------------------------------------------------------------
# row lists: fixed-width bulk path and offsets
# --------------------------------------------------------------------------------------------------
def flat_size(ty: AlgebraicType) -> int:
    """The byte size of a flat type, computed here independently of the codec."""
    ty = TYPESPACE.resolve(ty)
    if isinstance(ty, PrimitiveType):
        return {"Bool": 1, "F32": 4, "F64": 8}.get(ty.name) or int(ty.name[1:]) // 8
    assert isinstance(ty, ProductType)
    kind = ty.special_kind
    if kind is not None:
        return {"identity": 32, "connection_id": 16, "uuid": 16, "timestamp": 8, "time_duration": 8}[kind]
    return sum(flat_size(e.type) for e in ty.elements)


@settings(SETTINGS, max_examples=150)
@given(flat_products.flatmap(lambda t: st.tuples(st.just(t), st.lists(values_of(t), max_size=8))))
def test_fixed_width_bulk_decode(typed_rows: tuple[AlgebraicType, list[Any]]) -> None:
    ty, rows = typed_rows
    codec = codec_for(ty)
    size = flat_size(ty)
    if size == 0:  # only empty products: not a fixed-width row type
        assert not codec.fixed_size
        return
    assert codec.fixed_size == size
    encodings = [codec.encode(r) for r in rows]
    assert all(len(e) == size for e in encodings)
    data = b"".join(encodings)
    one_by_one = [codec.decode(e) for e in encodings]
    for r, d in zip(rows, one_by_one, strict=True):
        assert_strict_eq(d, r)
    assert_strict_eq(codec.decode_fixed(data), one_by_one)
    assert_strict_eq(codec.decode_rows(data, row_size=size), one_by_one)
    assert_strict_eq(codec.decode_rows(data, offsets=[i * size for i in range(len(rows))]), one_by_one)
    assert_strict_eq(codec.decode_rows(data), one_by_one)
    assert_strict_eq(codec.decode_concatenated(data), one_by_one)
    assert_strict_eq(codec.decode_fixed(bytearray(data)), one_by_one)
    if rows and size > 1:  # a byte short is never a whole number of rows
        with pytest.raises(DecodeError) as info:
            codec.decode_fixed(data[:-1])
        assert info.value.offset == (len(rows) - 1) * size


@settings(SETTINGS, max_examples=150)
@given(typed_values.flatmap(lambda tv: st.tuples(st.just(tv[0]), st.lists(values_of(tv[0]), max_size=5))))
def test_row_list_decode_with_offsets(typed_rows: tuple[AlgebraicType, list[Any]]) -> None:
    ty, rows = typed_rows
    codec = codec_for(ty)
    encodings = [codec.encode(r) for r in rows]
    data = b"".join(encodings)
    offsets = []
    pos = 0
    for e in encodings:
        offsets.append(pos)
        pos += len(e)
    if all(encodings):
        assert_strict_eq(codec.decode_rows(data, offsets=offsets), rows)
        assert_strict_eq(codec.decode_concatenated(data), rows)
        assert_strict_eq(codec.decode_rows(data), rows)
    if encodings and len({len(e) for e in encodings}) == 1 and encodings[0]:
        assert_strict_eq(codec.decode_rows(data, row_size=len(encodings[0])), rows)
    assert_strict_eq(codec.decode_many(encodings), rows)
    assert_strict_eq(codec.decode_many([memoryview(e) for e in encodings]), rows)
    rl = BsatnRowList.from_rows(encodings)
    first = rl.rows()
    assert first == encodings
    first.append(b"not a row")  # each call gives a list of its own: the split kept inside is safe
    assert rl.rows() == encodings


@settings(SETTINGS, max_examples=100)
@given(
    typed_values.flatmap(
        lambda tv: st.tuples(st.just(tv[0]), st.lists(values_of(tv[0]), min_size=1, max_size=5))
    ),
    st.data(),
)
def test_decode_many_fails_as_one_by_one_decoding_does(
    typed_rows: tuple[AlgebraicType, list[Any]], data: Any
) -> None:
    """A value with a byte too many or too few, anywhere in the list, raises the DecodeError that decoding
    that value alone raises (the generated loop never returns a partial or shifted list)."""
    ty, rows = typed_rows
    codec = codec_for(ty)
    encodings = [codec.encode(r) for r in rows]
    bad = data.draw(st.integers(0, len(encodings) - 1))
    grow = data.draw(st.booleans()) or not encodings[bad]
    encodings[bad] = encodings[bad] + b"\x00" if grow else encodings[bad][:-1]
    with pytest.raises(DecodeError) as alone:
        codec.decode(encodings[bad])
    with pytest.raises(DecodeError) as many:
        codec.decode_many(encodings)
    assert (many.value.path, many.value.offset, many.value.reason) == (
        alone.value.path,
        alone.value.offset,
        alone.value.reason,
    )


def test_flat_leaf_catalogue_is_fixed_width() -> None:
    for ty in FLAT_LEAVES:
        if ty != ProductType(()):
            assert codec_for(ty).fixed_size == flat_size(ty)
