"""Fuzzing the decoders with random bytes and with mutated valid inputs (bit flips, truncations,
insertions, ...): the only exception a decoder may raise is DecodeError. Never IndexError,
struct.error, UnicodeDecodeError, a bare ValueError or TypeError, MemoryError, RecursionError, a
zlib or brotli error, or a hang.

Inputs that do decode must also re-encode to the same bytes (BSATN is canonical)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from spacetime_game.sdk import DecodeError, ScheduleAt, TimeDuration, Timestamp
from spacetime_game.sdk.protocol import (
    PROTOCOL_V2,
    PROTOCOL_V3,
    BsatnRowList,
    EventTableRows,
    Ok,
    OneOffQueryResult,
    PersistentTableRows,
    ReducerOk,
    ReducerResult,
    SubscribeApplied,
    TransactionUpdate,
    UnsubscribeApplied,
    decode_client_frame,
    decode_client_message,
    decode_server_frame,
    decode_server_message,
    decompress,
    encode_client_frame,
    encode_client_message,
    encode_server_frame,
    encode_server_message,
)
from spacetime_game.sdk.sats import (
    AlgebraicType,
    ArrayType,
    PrimitiveType,
    RefType,
    Some,
    SumValue,
    Typespace,
    compile_codec,
)
from tests._support import PLAYER, PLAYER_1, PLAYER_2, player_bytes, vectors

P = PrimitiveType
FUZZ = settings(
    max_examples=1200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
RANDOM = settings(FUZZ, max_examples=800)

# --------------------------------------------------------------------------------------------------
# corpora of valid inputs, and mutations of them
# --------------------------------------------------------------------------------------------------
V = vectors()
SERVER_MESSAGES = [bytes.fromhex(v["bsatn_hex"]) for v in V["server_messages_v2"]]
CLIENT_MESSAGES = [bytes.fromhex(v["bsatn_hex"]) for v in V["client_messages_v2"]]
SERVER_FRAMES = (
    [bytes.fromhex(v["frame_hex_uncompressed"]) for v in V["server_messages_v2"]]
    + [bytes.fromhex(v["frame_hex"]) for v in V["compression_envelopes_v2"]]
    + [bytes.fromhex(V["v3_frames"][1]["frame_hex"])]
)
CLIENT_FRAMES = [*CLIENT_MESSAGES, bytes.fromhex(V["v3_frames"][0]["frame_hex"])]
INTERESTING_U32 = [0, 1, 2, 0x7F, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]


@st.composite
def mutations(draw: st.DrawFn, corpus: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(corpus)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete", "u32", "splice"]))
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            i = min(pos, len(data) - 1)
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[min(pos, len(data) - 1)] = draw(st.sampled_from([0, 1, 2, 0x7F, 0x80, 0xC3, 0xFF]))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "u32":  # most likely to hit a length prefix or a count
            data[pos : pos + 4] = struct.pack("<I", draw(st.sampled_from(INTERESTING_U32)))
        elif op == "splice":  # a piece of another valid input
            other = draw(st.sampled_from(corpus))
            start = draw(st.integers(0, len(other)))
            data[pos:pos] = other[start : start + draw(st.integers(1, 40))]
    return bytes(data)


def only_decode_errors(fn: Callable[[bytes], Any], data: bytes) -> Any:
    """``fn(data)``, or None when it raises DecodeError; anything else fails the test."""
    try:
        result = fn(data)
    except DecodeError as exc:
        event("DecodeError")
        assert isinstance(exc.path, str)
        assert isinstance(exc.offset, int)
        assert str(exc)
        return None
    event("decoded")
    return result


# --------------------------------------------------------------------------------------------------
# checks on what did decode
# --------------------------------------------------------------------------------------------------
PLAYER_CODEC = compile_codec(PLAYER, name="Player")


def _row_lists(message: Any) -> list[BsatnRowList]:
    out: list[BsatnRowList] = []

    def query_rows(rows: Any) -> None:
        out.extend(t.rows for t in rows.tables)

    def tx(update: TransactionUpdate) -> None:
        for qs in update.query_sets:
            for table in qs.tables:
                for rows in table.rows:
                    if isinstance(rows, PersistentTableRows):
                        out.extend((rows.inserts, rows.deletes))
                    else:
                        assert isinstance(rows, EventTableRows)
                        out.append(rows.events)

    if isinstance(message, SubscribeApplied | UnsubscribeApplied):
        if message.rows is not None:
            query_rows(message.rows)
    elif isinstance(message, OneOffQueryResult) and isinstance(message.result, Ok):
        query_rows(message.result.value)
    elif isinstance(message, TransactionUpdate):
        tx(message)
    elif isinstance(message, ReducerResult) and isinstance(message.result, ReducerOk):
        tx(message.result.transaction_update)
    return out


def check_server_message(message: Any, data: bytes) -> None:
    assert encode_server_message(message) == data
    for rows in _row_lists(message):
        split = only_decode_errors(lambda _, rows=rows: rows.rows(), b"")
        if split is not None:
            assert b"".join(split) == rows.rows_data
            for row in split:
                only_decode_errors(PLAYER_CODEC.decode, row)
        only_decode_errors(PLAYER_CODEC.decode_concatenated, rows.rows_data)
        offsets = rows.row_offsets
        only_decode_errors(
            lambda d, o=offsets, s=rows.row_size: PLAYER_CODEC.decode_rows(d, s, o), rows.rows_data
        )


# --------------------------------------------------------------------------------------------------
# messages
# --------------------------------------------------------------------------------------------------
@RANDOM
@given(st.binary(max_size=200))
def test_server_message_random_bytes(data: bytes) -> None:
    message = only_decode_errors(decode_server_message, data)
    if message is not None:
        check_server_message(message, data)


@FUZZ
@given(mutations(SERVER_MESSAGES))
def test_server_message_mutated(data: bytes) -> None:
    message = only_decode_errors(decode_server_message, data)
    if message is not None:
        check_server_message(message, data)


@RANDOM
@given(st.binary(max_size=120))
def test_client_message_random_bytes(data: bytes) -> None:
    message = only_decode_errors(decode_client_message, data)
    if message is not None:
        assert encode_client_message(message) == data


@FUZZ
@given(mutations(CLIENT_MESSAGES))
def test_client_message_mutated(data: bytes) -> None:
    message = only_decode_errors(decode_client_message, data)
    if message is not None:
        assert encode_client_message(message) == data


# --------------------------------------------------------------------------------------------------
# frames and the compression envelope
# --------------------------------------------------------------------------------------------------
def _check_server_frame(data: bytes, protocol: str) -> None:
    messages = only_decode_errors(lambda d: decode_server_frame(d, protocol), data)
    if messages is not None:
        assert messages
        assert protocol == PROTOCOL_V3 or len(messages) == 1
        payload = decompress(data)
        assert encode_server_frame(messages, protocol) == b"\x00" + payload


@RANDOM
@given(st.binary(max_size=200), st.sampled_from([PROTOCOL_V2, PROTOCOL_V3]))
def test_server_frame_random_bytes(data: bytes, protocol: str) -> None:
    _check_server_frame(data, protocol)


@FUZZ
@given(mutations(SERVER_FRAMES), st.sampled_from([PROTOCOL_V2, PROTOCOL_V3]))
def test_server_frame_mutated(data: bytes, protocol: str) -> None:
    _check_server_frame(data, protocol)


@FUZZ
@given(
    st.one_of(mutations(CLIENT_FRAMES), st.binary(max_size=150)), st.sampled_from([PROTOCOL_V2, PROTOCOL_V3])
)
def test_client_frame(data: bytes, protocol: str) -> None:
    messages = only_decode_errors(lambda d: decode_client_frame(d, protocol), data)
    if messages is not None:
        assert encode_client_frame(messages, protocol) == data


COMPRESSED = [bytes.fromhex(v["frame_hex"]) for v in V["compression_envelopes_v2"]]


@FUZZ
@given(
    st.one_of(
        mutations(COMPRESSED),
        st.binary(max_size=100).map(lambda b: b"\x01" + b),
        st.binary(max_size=100).map(lambda b: b"\x02" + b),
        st.binary(max_size=100).map(lambda b: b"\x02\x1f\x8b\x08\x00" + b),
        st.binary(max_size=100),
    )
)
def test_decompress(data: bytes) -> None:
    payload = only_decode_errors(lambda d: decompress(d, max_message_size=1 << 16), data)
    if payload is not None:
        assert isinstance(payload, bytes)
        assert len(payload) <= 1 << 16


# --------------------------------------------------------------------------------------------------
# compiled row codecs
# --------------------------------------------------------------------------------------------------
TREE_TS = Typespace(
    (
        AlgebraicType.sum(
            Leaf=P("String"),
            Node=AlgebraicType.product(label=P("U8"), children=ArrayType(RefType(0))),
        ),
        AlgebraicType.product(head=P("I32"), tail=AlgebraicType.option(RefType(1))),
    )
)
FLAT = AlgebraicType.product(
    a=P("U32"),
    ok=P("Bool"),
    big=P("I128"),
    who=AlgebraicType.special("identity"),
    when=AlgebraicType.special("timestamp"),
    p=AlgebraicType.product(x=P("F32"), flag=P("Bool")),
)
MIXED = AlgebraicType.product(
    names=ArrayType(P("String")),
    maybe=AlgebraicType.option(AlgebraicType.option(P("String"))),
    sched=ArrayType(AlgebraicType.special("schedule_at")),
    result=AlgebraicType.result(ArrayType(P("U8")), P("String")),
    units=ArrayType(AlgebraicType.product()),
    enum=AlgebraicType.sum(A=AlgebraicType.product(), B=P("Bool"), C=ArrayType(P("I16"))),
)
CODECS = {
    "player": PLAYER_CODEC,
    "tree": compile_codec(RefType(0), TREE_TS, name="Tree"),
    "list": compile_codec(RefType(1), TREE_TS, name="List"),
    "flat": compile_codec(FLAT, name="Flat"),
    "mixed": compile_codec(MIXED, name="Mixed"),
    "unit": compile_codec(AlgebraicType.product(), name="Unit"),
}
FLAT_ROW = CODECS["flat"].encode(
    {
        "a": 7,
        "ok": True,
        "big": -5,
        "who": PLAYER_1["owner"],
        "when": PLAYER_1["created"],
        "p": {"x": 1.5, "flag": False},
    }
)
ROW_CORPUS = {
    "player": [
        player_bytes(PLAYER_1),
        player_bytes(PLAYER_2),
        player_bytes(PLAYER_1) + player_bytes(PLAYER_2),
    ],
    "tree": [
        CODECS["tree"].encode(
            SumValue(
                1, {"label": 1, "children": [SumValue(0, "a"), SumValue(1, {"label": 2, "children": []})]}
            )
        )
    ],
    "list": [struct.pack("<i", 1) + b"\x00" + struct.pack("<i", 2) + b"\x01"],
    "flat": [FLAT_ROW, FLAT_ROW * 3],
    "mixed": [
        CODECS["mixed"].encode(
            {
                "names": ["a", "hé"],
                "maybe": Some(None),
                "sched": [ScheduleAt(TimeDuration(5)), ScheduleAt(Timestamp(-1))],
                "result": SumValue(0, b"\x01"),
                "units": [(), ()],
                "enum": SumValue(2, [1, -1]),
            }
        ),
        CODECS["mixed"].encode(
            {
                "names": [],
                "maybe": Some("x"),
                "sched": [],
                "result": SumValue(1, "err"),
                "units": [],
                "enum": SumValue(1, True),
            }
        ),
    ],
    "unit": [b""],
}


def test_row_corpus_is_valid() -> None:
    for name, samples in ROW_CORPUS.items():
        codec = CODECS[name]
        for sample in samples:
            assert b"".join(codec.encode(v) for v in codec.decode_concatenated(sample)) == sample


@FUZZ
@given(
    st.sampled_from(sorted(CODECS)).flatmap(
        lambda name: st.tuples(st.just(name), st.one_of(mutations(ROW_CORPUS[name]), st.binary(max_size=120)))
    )
)
def test_row_codecs(case: tuple[str, bytes]) -> None:
    name, data = case
    codec = CODECS[name]
    value = only_decode_errors(codec.decode, data)
    if value is not None and name != "flat":  # (a float32 NaN may come back with another payload)
        assert codec.encode(value) == data
    if len(data) > 1:
        only_decode_errors(lambda d: codec.decode_from(d, 1), data)
    only_decode_errors(codec.decode_concatenated, data)
    only_decode_errors(codec.decode_rows, data)
    only_decode_errors(lambda d: codec.decode_rows(d, offsets=[0]), data)
    only_decode_errors(lambda d: codec.decode_rows(d, row_size=max(len(d) // 2, 1)), data)
    if codec.fixed_size:
        only_decode_errors(codec.decode_fixed, data)
