"""Malformed BSATN is a DecodeError naming the type path and the byte offset; a Python value that does
not fit its type is an EncodeError naming the field."""

from __future__ import annotations

import struct
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from spacetime_game.sdk import (
    ConnectionId,
    DecodeError,
    EncodeError,
    Identity,
    ScheduleAt,
    SpacetimeError,
    TimeDuration,
    Timestamp,
)
from spacetime_game.sdk.sats import (
    AlgebraicType,
    ArrayType,
    PrimitiveType,
    ProductElement,
    ProductType,
    RefType,
    Some,
    SumValue,
    Typespace,
    compile_codec,
    from_json,
)

P = PrimitiveType
UNIT = ProductType(())
U32 = struct.Struct("<I")


def decode_error(fn: Callable[[], Any]) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        fn()
    return info.value


def encode_error(fn: Callable[[], Any]) -> EncodeError:
    with pytest.raises(EncodeError) as info:
        fn()
    return info.value


ROW = AlgebraicType.product(
    id=P("U32"),
    name=P("String"),
    ok=P("Bool"),
    kind=AlgebraicType.sum(A=UNIT, B=P("U8"), C=UNIT),
    tags=ArrayType(P("U16")),
    blob=ArrayType(P("U8")),
)
ROW_CODEC = compile_codec(ROW, name="Row")
GOOD_ROW = {"id": 7, "name": "ab", "ok": True, "kind": SumValue(1, 9), "tags": [1, 2], "blob": b"\x01"}
# offsets of each field in the encoding of GOOD_ROW
ID, NAME, OK, KIND, TAGS, BLOB, END = 0, 4, 10, 11, 13, 21, 26


def test_the_row_layout_used_below() -> None:
    data = ROW_CODEC.encode(GOOD_ROW)
    assert len(data) == END
    assert data[NAME:OK] == b"\x02\x00\x00\x00ab"
    assert data[OK] == 1
    assert data[KIND : KIND + 2] == b"\x01\x09"
    assert data[TAGS:BLOB] == b"\x02\x00\x00\x00\x01\x00\x02\x00"
    assert ROW_CODEC.decode(data) == GOOD_ROW


def test_decode_error_is_a_spacetime_and_value_error() -> None:
    exc = decode_error(lambda: ROW_CODEC.decode(b""))
    assert isinstance(exc, SpacetimeError)
    assert isinstance(exc, ValueError)
    assert str(exc).startswith(f"cannot decode {exc.path} at byte offset {exc.offset}: ")


# --------------------------------------------------------------------------------------------------
# truncated data
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cut", "path", "offset"),
    [
        (0, "Row.id", 0),
        (3, "Row.id", 0),
        (4, "Row.name", 4),
        (7, "Row.name", 4),  # inside the length prefix
        (9, "Row.name", 4),  # the prefix says 2 bytes, only 1 is there
        (10, "Row.ok", 10),
        (11, "Row.kind", 11),
        (12, "Row.kind::B", 12),
        (13, "Row.tags", 13),
        (18, "Row.tags", 13),
        (21, "Row.blob", 21),
        (25, "Row.blob", 21),
    ],
)
def test_truncated(cut: int, path: str, offset: int) -> None:
    data = ROW_CODEC.encode(GOOD_ROW)[:cut]
    exc = decode_error(lambda: ROW_CODEC.decode(data))
    assert (exc.path, exc.offset) == (path, offset)


def test_truncated_scalars_and_fused_runs() -> None:
    exc = decode_error(lambda: compile_codec(P("U32")).decode(b"\x01\x02"))
    assert (exc.path, exc.offset) == ("U32", 0)
    assert "needs 4 bytes, 2 remain" in exc.reason
    for name, size in (("U128", 16), ("I256", 32), ("F64", 8)):
        exc = decode_error(lambda name=name, size=size: compile_codec(P(name)).decode(bytes(size - 1)))
        assert (exc.path, exc.offset) == (name, 0)
    # a run of fixed-width fields read with one struct still names the field that is cut
    flat = compile_codec(
        AlgebraicType.product(a=P("U32"), b=P("U64"), c=AlgebraicType.special("identity")), name="Flat"
    )
    exc = decode_error(lambda: flat.decode(bytes(6)))
    assert (exc.path, exc.offset) == ("Flat.b", 4)
    exc = decode_error(lambda: flat.decode(bytes(12 + 31)))
    assert (exc.path, exc.offset) == ("Flat.c", 12)
    exc = decode_error(lambda: compile_codec(AlgebraicType.option(P("U8"))).decode(b""))
    assert (exc.path, exc.offset) == ("Option<U8>", 0)
    exc = decode_error(lambda: compile_codec(AlgebraicType.option(P("U8"))).decode(b"\x00"))
    assert (exc.path, exc.offset) == ("Option<U8>::some", 1)


def test_truncated_inside_nested_structure() -> None:
    ty = AlgebraicType.product(
        items=ArrayType(AlgebraicType.product(x=P("U8"), label=P("String"))),
    )
    codec = compile_codec(ty, name="N")
    data = codec.encode({"items": [{"x": 1, "label": "a"}, {"x": 2, "label": "bcd"}]})
    # 4 (count) + 1 + 5 + 1 + 7 bytes; cut inside the second label's bytes
    exc = decode_error(lambda: codec.decode(data[:-1]))
    assert (exc.path, exc.offset) == ("N.items[1].label", 11)
    assert "length prefix 3" in exc.reason


def test_truncated_recursive_type_names_the_full_path() -> None:
    ts = Typespace((AlgebraicType.product(head=P("I32"), tail=AlgebraicType.option(RefType(0))),))
    codec = compile_codec(RefType(0), ts, name="List")
    data = codec.encode({"head": 1, "tail": {"head": 2, "tail": {"head": 3, "tail": None}}})
    exc = decode_error(lambda: codec.decode(data[:-1]))
    assert exc.path == "List.tail::some.tail::some.tail"
    assert exc.offset == len(data) - 1
    exc = decode_error(lambda: codec.decode(data[:7]))
    assert (exc.path, exc.offset) == ("List.tail::some.head", 5)


# --------------------------------------------------------------------------------------------------
# length prefixes larger than what remains
# --------------------------------------------------------------------------------------------------
def test_string_and_bytes_length_prefix_lies() -> None:
    exc = decode_error(lambda: compile_codec(P("String")).decode(U32.pack(5) + b"ab"))
    assert (exc.path, exc.offset) == ("String", 0)
    assert "length prefix 5" in exc.reason
    assert "2 bytes" in exc.reason
    exc = decode_error(lambda: compile_codec(ArrayType(P("U8"))).decode(U32.pack(0xFFFFFFFF) + b"ab"))
    assert (exc.path, exc.offset) == ("Array<U8>", 0)
    data = bytearray(ROW_CODEC.encode(GOOD_ROW))
    data[NAME : NAME + 4] = U32.pack(1000)
    exc = decode_error(lambda: ROW_CODEC.decode(bytes(data)))
    assert (exc.path, exc.offset) == ("Row.name", NAME)
    data = bytearray(ROW_CODEC.encode(GOOD_ROW))
    data[BLOB : BLOB + 4] = U32.pack(2)
    exc = decode_error(lambda: ROW_CODEC.decode(bytes(data)))
    assert (exc.path, exc.offset) == ("Row.blob", BLOB)


HUGE_ARRAYS = [
    (ArrayType(P("U64")), "Array<U64>"),
    (ArrayType(P("Bool")), "Array<Bool>"),
    (ArrayType(P("String")), "Array<String>"),
    (ArrayType(ArrayType(P("U8"))), "Array<Array<U8>>"),
    (ArrayType(AlgebraicType.product(a=P("U64"), b=P("String"))), "Array<Product{a: U64, b: String}>"),
    (ArrayType(AlgebraicType.option(P("U64"))), "Array<Option<U64>>"),
    (ArrayType(UNIT), "Array<Product{}>"),
    (ArrayType(AlgebraicType.special("identity")), "Array<Identity>"),
]


@pytest.mark.parametrize(("ty", "path"), HUGE_ARRAYS, ids=[p for _, p in HUGE_ARRAYS])
def test_huge_array_count_fails_fast_without_allocating(ty: AlgebraicType, path: str) -> None:
    codec = compile_codec(ty)
    data = U32.pack(0xFFFFFFFF) + bytes(10)
    tracemalloc.start()
    try:
        start = time.perf_counter()
        exc = decode_error(lambda: codec.decode(data))
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (exc.path, exc.offset) == (path, 0)
    assert "length prefix 4294967295" in exc.reason
    assert elapsed < 0.5
    assert peak < 1 << 20  # nothing of the size the count asks for


def test_huge_count_inside_a_message_field() -> None:
    ty = AlgebraicType.product(id=P("U32"), values=ArrayType(P("U64")))
    codec = compile_codec(ty, name="M")
    exc = decode_error(lambda: codec.decode(U32.pack(1) + U32.pack(0xFFFFFFFF) + bytes(10)))
    assert (exc.path, exc.offset) == ("M.values", 4)


def test_zero_size_elements_are_capped() -> None:
    codec = compile_codec(ArrayType(UNIT))
    assert codec.decode(U32.pack(3)) == [(), (), ()]
    assert len(codec.decode(U32.pack(1 << 16))) == 1 << 16
    exc = decode_error(lambda: codec.decode(U32.pack((1 << 16) + 1)))
    assert (exc.path, exc.offset) == ("Array<Product{}>", 0)


# --------------------------------------------------------------------------------------------------
# bad sum tags, bools, UTF-8
# --------------------------------------------------------------------------------------------------
def test_unknown_sum_tag() -> None:
    data = bytearray(ROW_CODEC.encode(GOOD_ROW))
    data[KIND] = 3
    exc = decode_error(lambda: ROW_CODEC.decode(bytes(data)))
    assert (exc.path, exc.offset) == ("Row.kind", KIND)
    assert "unknown sum tag 3" in exc.reason
    assert "3 variants" in exc.reason
    exc = decode_error(lambda: compile_codec(AlgebraicType.option(P("U8"))).decode(b"\x02"))
    assert (exc.path, exc.offset) == ("Option<U8>", 0)
    nested = compile_codec(AlgebraicType.option(AlgebraicType.option(P("U8"))), name="OO")
    exc = decode_error(lambda: nested.decode(b"\x00\x07"))
    assert (exc.path, exc.offset) == ("OO::some", 1)
    exc = decode_error(lambda: compile_codec(AlgebraicType.special("schedule_at")).decode(b"\x02" + bytes(8)))
    assert (exc.path, exc.offset) == ("ScheduleAt", 0)
    empty_sum = compile_codec(AlgebraicType.sum(), name="Never")
    exc = decode_error(lambda: empty_sum.decode(b"\x00"))
    assert (exc.path, exc.offset) == ("Never", 0)


def test_bool_byte_other_than_0_or_1() -> None:
    for byte in (2, 0x80, 0xFF):
        exc = decode_error(lambda byte=byte: compile_codec(P("Bool")).decode(bytes([byte])))
        assert (exc.path, exc.offset) == ("Bool", 0)
        assert f"0x{byte:02x}" in exc.reason
    data = bytearray(ROW_CODEC.encode(GOOD_ROW))
    data[OK] = 2
    exc = decode_error(lambda: ROW_CODEC.decode(bytes(data)))
    assert (exc.path, exc.offset) == ("Row.ok", OK)
    # in an array of bools, and in a fused run of fixed-width fields
    exc = decode_error(lambda: compile_codec(ArrayType(P("Bool"))).decode(U32.pack(3) + b"\x01\x00\x02"))
    assert (exc.path, exc.offset) == ("Array<Bool>[2]", 6)
    flat = compile_codec(AlgebraicType.product(a=P("U32"), p=AlgebraicType.product(x=P("Bool"))), name="F")
    exc = decode_error(lambda: flat.decode(U32.pack(1) + b"\x05"))
    assert (exc.path, exc.offset) == ("F.p.x", 4)


FIXED = AlgebraicType.product(a=P("U32"), ok=P("Bool"), p=AlgebraicType.product(x=P("I8"), flag=P("Bool")))


def test_bool_byte_in_the_bulk_fixed_width_path() -> None:
    codec = compile_codec(FIXED, name="Fixed")
    assert codec.fixed_size == 7
    rows = [{"a": i, "ok": i % 2 == 0, "p": {"x": -i, "flag": True}} for i in range(4)]
    data = bytearray(b"".join(codec.encode(r) for r in rows))
    assert codec.decode_fixed(bytes(data)) == rows
    data[2 * 7 + 4] = 2  # row 2, field ok
    exc = decode_error(lambda: codec.decode_fixed(bytes(data)))
    assert exc.path == "Fixed[2].ok"
    assert exc.offset == 2 * 7 + 4
    data[2 * 7 + 4] = 1
    data[3 * 7 + 6] = 0xFF  # row 3, field p.flag
    for decode in (codec.decode_fixed, codec.decode_concatenated, codec.decode_rows):
        exc = decode_error(lambda decode=decode: decode(bytes(data)))
        assert exc.path == "Fixed[3].p.flag"
        assert exc.offset == 3 * 7 + 6
    exc = decode_error(lambda: codec.decode_rows(bytes(data), row_size=7))
    assert exc.path == "Fixed[3].p.flag"
    assert exc.offset == 3 * 7 + 6
    # a single bool column takes the bulk path too
    bools = compile_codec(P("Bool"))
    assert bools.decode_fixed(b"\x00\x01\x01") == [False, True, True]
    exc = decode_error(lambda: bools.decode_fixed(b"\x00\x01\x02"))
    assert (exc.path, exc.offset) == ("Bool[2]", 2)


def test_bulk_path_other_errors() -> None:
    codec = compile_codec(FIXED, name="Fixed")
    exc = decode_error(lambda: codec.decode_fixed(bytes(7 * 2 + 3)))
    assert (exc.path, exc.offset) == ("Fixed", 14)
    assert "whole number of 7-byte rows" in exc.reason
    with pytest.raises(TypeError):
        compile_codec(P("String")).decode_fixed(b"")
    exc = decode_error(lambda: codec.decode_rows(bytes(14), row_size=0))
    assert exc.path == "Fixed"
    exc = decode_error(lambda: codec.decode_rows(bytes(14), row_size=4))
    assert exc.path == "Fixed"


def test_row_decoding_of_variable_width_rows_names_the_row() -> None:
    rows = [dict(GOOD_ROW, id=i, name="x" * i) for i in range(3)]
    encodings = [ROW_CODEC.encode(r) for r in rows]
    data = bytearray(b"".join(encodings))
    assert ROW_CODEC.decode_concatenated(bytes(data)) == rows
    start2 = len(encodings[0]) + len(encodings[1])
    data[start2 + OK] = 7  # row 2 has a 2-byte name, like GOOD_ROW
    exc = decode_error(lambda: ROW_CODEC.decode_concatenated(bytes(data)))
    assert (exc.path, exc.offset) == ("Row[2].ok", start2 + OK)
    exc = decode_error(lambda: ROW_CODEC.decode_rows(b"".join(encodings)[:-1]))
    assert exc.path == "Row[2].blob"
    exc = decode_error(lambda: ROW_CODEC.decode_rows(b"".join(encodings), offsets=[0, 5]))
    assert exc.path == "Row"
    assert "offsets" in exc.reason


def test_fixed_size_hint_over_variable_width_rows_names_the_row() -> None:
    """The server sends FixedSize whenever all rows have the same length, also for strings."""
    codec = compile_codec(P("String"), name="Name")
    data = U32.pack(1) + b"a" + U32.pack(1) + b"b" + U32.pack(1) + b"\xff"
    assert codec.decode_rows(data[:10], row_size=5) == ["a", "b"]
    exc = decode_error(lambda: codec.decode_rows(data, row_size=5))
    assert (exc.path, exc.offset) == ("Name[2]", 14)
    # a row that holds less than the hint says: trailing bytes in that row
    exc = decode_error(lambda: codec.decode_rows(U32.pack(1) + b"ab" + U32.pack(2) + b"ab", row_size=6))
    assert (exc.path, exc.offset) == ("Name[0]", 5)
    exc = decode_error(lambda: codec.decode_rows(data, row_size=4))
    assert exc.path == "Name"
    assert "whole number of 4-byte rows" in exc.reason


def test_rows_of_a_type_that_takes_no_bytes() -> None:
    """Zero-length rows: the server sends them with RowOffsets; the data is empty."""
    codec = compile_codec(UNIT, name="Unit")
    assert codec.fixed_size == 0
    assert codec.decode_rows(b"", offsets=[0, 0, 0]) == [(), (), ()]
    assert codec.decode_rows(b"", offsets=[]) == []
    assert codec.decode_concatenated(b"") == []
    # bytes where no row can hold any: an error, not an endless loop
    exc = decode_error(lambda: codec.decode_concatenated(b"\x00"))
    assert (exc.path, exc.offset) == ("Unit", 0)
    exc = decode_error(lambda: codec.decode_rows(b"\x00", offsets=[0]))
    assert exc.path == "Unit"


def test_invalid_utf8() -> None:
    codec = compile_codec(P("String"))
    exc = decode_error(lambda: codec.decode(U32.pack(3) + b"a\xffb"))
    assert (exc.path, exc.offset) == ("String", 5)  # the offset of the bad byte
    assert "UTF-8" in exc.reason
    for bad in (
        b"\xc3",
        b"\xed\xa0\x80",
        b"\xf8\x88\x80\x80\x80",
        b"\xc0\xaf",
    ):  # cut, surrogate, 5-byte, overlong
        exc = decode_error(lambda bad=bad: codec.decode(U32.pack(len(bad)) + bad))
        assert exc.path == "String"
        assert exc.offset == 4
    data = bytearray(ROW_CODEC.encode(GOOD_ROW))
    data[NAME + 5] = 0xFE
    exc = decode_error(lambda: ROW_CODEC.decode(bytes(data)))
    assert (exc.path, exc.offset) == ("Row.name", NAME + 5)
    strings = compile_codec(ArrayType(P("String")))
    exc = decode_error(lambda: strings.decode(U32.pack(2) + U32.pack(1) + b"a" + U32.pack(1) + b"\x80"))
    assert (exc.path, exc.offset) == ("Array<String>[1]", 13)


def test_trailing_bytes() -> None:
    data = ROW_CODEC.encode(GOOD_ROW)
    exc = decode_error(lambda: ROW_CODEC.decode(data + b"\x00\x00"))
    assert (exc.path, exc.offset) == ("Row", END)
    assert "2 trailing bytes" in exc.reason
    exc = decode_error(lambda: compile_codec(UNIT).decode(b"\x00"))
    assert exc.offset == 0


def test_decode_from_outside_the_buffer() -> None:
    codec = compile_codec(P("U8"))
    assert codec.decode_from(b"\x01\x02", 1) == (2, 2)
    for offset in (-1, 3):
        exc = decode_error(lambda offset=offset: codec.decode_from(b"\x01\x02", offset))
        assert (exc.path, exc.offset) == ("U8", offset)
    exc = decode_error(lambda: codec.decode_from(b"\x01\x02", 2))
    assert (exc.path, exc.offset) == ("U8", 2)


def test_deeply_nested_recursive_value_is_a_decode_error() -> None:
    """Data nested deeper than Python's stack: a DecodeError, never a RecursionError."""
    ts = Typespace((AlgebraicType.product(head=P("I32"), tail=AlgebraicType.option(RefType(0))),))
    codec = compile_codec(RefType(0), ts, name="List")
    depth = sys.getrecursionlimit() * 2
    data = (U32.pack(1) + b"\x00") * depth + U32.pack(1) + b"\x01"
    exc = decode_error(lambda: codec.decode(data))
    assert exc.path.startswith("List")
    exc = decode_error(lambda: codec.decode_from(b"\x00" + data, 1))
    exc = decode_error(lambda: codec.decode_concatenated(data))
    # a moderately deep value still works
    shallow = (U32.pack(1) + b"\x00") * 100 + U32.pack(1) + b"\x01"
    value = codec.decode(shallow)
    assert codec.encode(value) == shallow


# --------------------------------------------------------------------------------------------------
# encode errors
# --------------------------------------------------------------------------------------------------
WIDE = AlgebraicType.product(
    id=P("U32"),
    small=P("I8"),
    big=P("U128"),
    huge=P("I256"),
    ok=P("Bool"),
    f=P("F32"),
    name=P("String"),
    tags=ArrayType(P("U16")),
    flags=ArrayType(P("Bool")),
    blob=ArrayType(P("U8")),
    who=AlgebraicType.special("identity"),
    conn=AlgebraicType.special("connection_id"),
    when=AlgebraicType.special("timestamp"),
    every=AlgebraicType.special("time_duration"),
    sched=AlgebraicType.special("schedule_at"),
    uid=AlgebraicType.special("uuid"),
    opt=AlgebraicType.option(P("I8")),
    oo=AlgebraicType.option(AlgebraicType.option(P("U8"))),
    kind=AlgebraicType.sum(A=UNIT, B=P("U8")),
    inner=ArrayType(AlgebraicType.product(x=P("U8"), s=P("String"))),
)
WIDE_CODEC = compile_codec(WIDE, name="Wide")
GOOD_WIDE: dict[str, Any] = {
    "id": 1,
    "small": -1,
    "big": 2**100,
    "huge": -(2**200),
    "ok": False,
    "f": 0.5,
    "name": "n",
    "tags": [1, 2],
    "flags": [True],
    "blob": b"\x00",
    "who": Identity.zero(),
    "conn": ConnectionId.zero(),
    "when": Timestamp(0),
    "every": TimeDuration(0),
    "sched": ScheduleAt(TimeDuration(5)),
    "uid": uuid.UUID(int=0),
    "opt": None,
    "oo": Some(None),
    "kind": SumValue(0),
    "inner": [{"x": 1, "s": "a"}],
}


def test_the_wide_value_encodes() -> None:
    assert WIDE_CODEC.decode(WIDE_CODEC.encode(GOOD_WIDE)) == GOOD_WIDE


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        # wrong argument types
        ("id", "1", "Wide.id"),
        ("id", None, "Wide.id"),
        ("id", 1.0, "Wide.id"),
        ("small", 1.5, "Wide.small"),
        ("big", 1.0, "Wide.big"),
        ("huge", "0x1", "Wide.huge"),
        ("f", "x", "Wide.f"),
        ("name", 5, "Wide.name"),
        ("name", b"n", "Wide.name"),
        ("name", "\ud800", "Wide.name"),  # a lone surrogate is not UTF-8
        ("tags", "ab", "Wide.tags"),
        ("tags", 5, "Wide.tags"),
        ("tags", [1, "a"], "Wide.tags[1]"),
        ("tags", [1, 2, 3.5], "Wide.tags[2]"),
        ("blob", [0, 1], "Wide.blob"),
        ("blob", "00", "Wide.blob"),
        ("inner", [{"x": 1, "s": "a"}, {"x": 1, "s": 2}], "Wide.inner[1].s"),
        ("kind", SumValue(1, "x"), "Wide.kind::B"),
        ("kind", SumValue(5), "Wide.kind"),
        ("kind", 1, "Wide.kind"),
        ("opt", "a", "Wide.opt::some"),
        # out-of-range ints
        ("id", -1, "Wide.id"),
        ("id", 2**32, "Wide.id"),
        ("small", 128, "Wide.small"),
        ("small", -129, "Wide.small"),
        ("big", -1, "Wide.big"),
        ("big", 2**128, "Wide.big"),
        ("huge", 2**255, "Wide.huge"),
        ("huge", -(2**255) - 1, "Wide.huge"),
        ("tags", [1, 70000], "Wide.tags[1]"),
        ("tags", [-1], "Wide.tags[0]"),
        ("opt", 300, "Wide.opt::some"),
        ("inner", [{"x": 256, "s": "a"}], "Wide.inner[0].x"),
        ("f", 1e300, "Wide.f"),  # does not fit a float32
        # non-bool for bool
        ("ok", 1, "Wide.ok"),
        ("ok", 0, "Wide.ok"),
        ("ok", None, "Wide.ok"),
        ("ok", "true", "Wide.ok"),
        ("flags", [True, 2], "Wide.flags[1]"),
        ("flags", [1], "Wide.flags[0]"),
        # wrong special classes
        ("who", ConnectionId.zero(), "Wide.who"),
        ("who", bytes(32), "Wide.who"),
        ("who", str(Identity.zero()), "Wide.who"),
        ("conn", Identity.zero(), "Wide.conn"),
        ("when", 0, "Wide.when"),
        ("when", TimeDuration(0), "Wide.when"),
        ("every", Timestamp(0), "Wide.every"),
        ("sched", Timestamp(0), "Wide.sched"),
        ("sched", TimeDuration(0), "Wide.sched"),
        ("uid", str(uuid.UUID(int=0)), "Wide.uid"),
        ("oo", 5, "Wide.oo"),  # an option of an option needs Some(...)
    ],
)
def test_encode_error_names_the_field(field: str, value: Any, path: str) -> None:
    bad = dict(GOOD_WIDE)
    bad[field] = value
    exc = encode_error(lambda: WIDE_CODEC.encode(bad))
    assert exc.path == path
    assert str(exc).startswith(f"cannot encode {path}: ")
    assert isinstance(exc, TypeError)
    assert isinstance(exc, SpacetimeError)


def test_encode_error_reasons_say_what_was_wrong() -> None:
    def reason(field: str, value: Any) -> str:
        return encode_error(lambda: WIDE_CODEC.encode({**GOOD_WIDE, field: value})).reason

    assert "str" in reason("id", "1")
    assert "out of range" in reason("big", -1)
    assert "70000" in reason("tags", [1, 70000])
    assert "expected bool" in reason("ok", 1)
    assert "Identity" in reason("who", ConnectionId.zero())
    assert "Timestamp" in reason("when", 0)


@pytest.mark.parametrize("missing", ["id", "ok", "name", "who", "inner"])
def test_missing_dict_key(missing: str) -> None:
    bad = {k: v for k, v in GOOD_WIDE.items() if k != missing}
    exc = encode_error(lambda: WIDE_CODEC.encode(bad))
    assert exc.path == "Wide"
    assert repr(missing) in exc.reason


def test_missing_key_in_a_nested_product() -> None:
    exc = encode_error(lambda: WIDE_CODEC.encode({**GOOD_WIDE, "inner": [{"x": 1, "s": "a"}, {"x": 1}]}))
    assert exc.path == "Wide.inner[1]"
    assert "'s'" in exc.reason


def test_not_a_product_value() -> None:
    for value in ([1], "x", None, 5, (1, 2)):
        exc = encode_error(lambda value=value: WIDE_CODEC.encode(value))
        assert exc.path == "Wide"


def test_wrong_field_count_for_a_tuple_product() -> None:
    ty = ProductType((ProductElement(None, P("U8")), ProductElement(None, P("String"))))
    codec = compile_codec(ty, name="Tup")
    assert codec.encode((1, "x")) == b"\x01\x01\x00\x00\x00x"
    assert codec.encode([1, "x"]) == b"\x01\x01\x00\x00\x00x"
    for bad in ((1,), (1, "x", 3), {"a": 1}):
        exc = encode_error(lambda bad=bad: codec.encode(bad))
        assert exc.path == "Tup"
    exc = encode_error(lambda: codec.encode((1, 2)))
    assert exc.path == "Tup.1"


def test_from_json_errors_name_the_path() -> None:
    ty = AlgebraicType.product(a=P("U8"), b=ArrayType(AlgebraicType.product(c=P("Bool"))))
    cases = [
        ({"a": 1}, "value"),
        ({"a": 256, "b": []}, "value.a"),
        ({"a": "x", "b": []}, "value.a"),
        ({"a": 1, "b": [{"c": 1}]}, "value.b[0].c"),
        ({"a": 1, "b": [], "z": 0}, "value"),
        ([1], "value"),
        ("x", "value"),
    ]
    for obj, path in cases:
        exc = encode_error(lambda obj=obj: from_json(obj, ty))
        assert exc.path == path
    exc = encode_error(lambda: from_json({"Nope": []}, AlgebraicType.sum(A=UNIT)))
    assert exc.path == "value"
    exc = encode_error(lambda: from_json("zz", ArrayType(P("U8"))))
    assert exc.path == "value"
    exc = encode_error(lambda: from_json({"__identity__": "0x1", "x": 1}, AlgebraicType.special("identity")))
    assert exc.path == "value"
