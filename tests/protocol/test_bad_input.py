"""Malformed frames and messages from the server are DecodeErrors naming the place and the byte offset.

Offsets count from the start of the message bytes: for a server frame, from the start of the payload
after the compression tag byte (and after decompression)."""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Callable
from typing import Any

import brotli
import pytest

from spacetime_game.sdk import DecodeError, EncodeError, Identity
from spacetime_game.sdk.protocol import (
    PROTOCOL_V2,
    PROTOCOL_V3,
    BsatnRowList,
    CallReducer,
    Compression,
    InitialConnection,
    QueryRows,
    SingleTableRows,
    Subscribe,
    SubscribeApplied,
    SubscriptionError,
    Unsubscribe,
    decode_client_frame,
    decode_client_message,
    decode_server_frame,
    decode_server_message,
    decompress,
    encode_client_message,
    encode_server_frame,
    encode_server_message,
)
from spacetime_game.sdk.sats import AlgebraicType, PrimitiveType, compile_codec
from tests._support import vectors

U32 = struct.Struct("<I")
P = PrimitiveType


def decode_error(fn: Callable[[], Any]) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        fn()
    return info.value


def server_vector(prefix: str) -> bytes:
    (entry,) = [v for v in vectors()["server_messages_v2"] if v["name"].startswith(prefix)]
    return bytes.fromhex(entry["bsatn_hex"])


SUBSCRIPTION_ERROR = server_vector("SubscriptionError{request_id:some(2)")  # 03 | 00 u32 | u32 | string
SUBSCRIBE_APPLIED = server_vector("SubscribeApplied{request_id:1,")
INITIAL_CONNECTION = server_vector("InitialConnection")
REDUCER_OK_EMPTY = server_vector("ReducerResult{request_id:6, timestamp:1704067200000000, result:OkEmpty}")
UNSUBSCRIBE = bytes.fromhex(vectors()["client_messages_v2"][2]["bsatn_hex"])  # 01 | u32 | u32 | flags


# --------------------------------------------------------------------------------------------------
# messages
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "path", "offset"),
    [
        (b"", "ServerMessage", 0),
        (SUBSCRIPTION_ERROR[:1], "ServerMessage::SubscriptionError.request_id", 1),
        (SUBSCRIPTION_ERROR[:4], "ServerMessage::SubscriptionError.request_id::some", 2),
        (SUBSCRIPTION_ERROR[:8], "ServerMessage::SubscriptionError.query_set_id.id", 6),
        (SUBSCRIPTION_ERROR[:-1], "ServerMessage::SubscriptionError.error", 10),
        (INITIAL_CONNECTION[:20], "ServerMessage::InitialConnection.identity", 1),
        (INITIAL_CONNECTION[:40], "ServerMessage::InitialConnection.connection_id", 33),
        (INITIAL_CONNECTION[:-1], "ServerMessage::InitialConnection.token", 49),
        (
            SUBSCRIBE_APPLIED[:30],
            "ServerMessage::SubscribeApplied.rows.tables[0].rows.size_hint::RowOffsets",
            24,
        ),
        (SUBSCRIBE_APPLIED[:60], "ServerMessage::SubscribeApplied.rows.tables[0].rows.rows_data", 44),
        (REDUCER_OK_EMPTY[:-1], "ServerMessage::ReducerResult.result", 13),
    ],
)
def test_truncated_server_message(data: bytes, path: str, offset: int) -> None:
    exc = decode_error(lambda: decode_server_message(data))
    assert (exc.path, exc.offset) == (path, offset)


def test_truncated_client_message() -> None:
    exc = decode_error(lambda: decode_client_message(UNSUBSCRIBE[:-1]))
    assert (exc.path, exc.offset) == ("ClientMessage::Unsubscribe.flags", 9)
    exc = decode_error(lambda: decode_client_message(b""))
    assert (exc.path, exc.offset) == ("ClientMessage", 0)


def test_length_prefix_larger_than_the_rest() -> None:
    # Subscribe whose query_strings count is 0xFFFFFFFF: fails at once, allocates nothing
    data = b"\x00" + U32.pack(1) + U32.pack(1) + U32.pack(0xFFFFFFFF) + bytes(10)
    exc = decode_error(lambda: decode_client_message(data))
    assert (exc.path, exc.offset) == ("ClientMessage::Subscribe.query_strings", 9)
    assert "4294967295" in exc.reason
    # a row list whose RowOffsets count (of u64s) is huge
    bad = bytearray(SUBSCRIBE_APPLIED)
    bad[24:28] = U32.pack(0xFFFFFFFF)
    exc = decode_error(lambda: decode_server_message(bytes(bad)))
    assert (exc.path, exc.offset) == (
        "ServerMessage::SubscribeApplied.rows.tables[0].rows.size_hint::RowOffsets",
        24,
    )
    # a rows_data length one more than what is there
    bad = bytearray(SUBSCRIBE_APPLIED)
    bad[44:48] = U32.pack(len(SUBSCRIBE_APPLIED) - 48 + 1)
    exc = decode_error(lambda: decode_server_message(bytes(bad)))
    assert (exc.path, exc.offset) == ("ServerMessage::SubscribeApplied.rows.tables[0].rows.rows_data", 44)
    # a table-name length that runs past the end
    bad = bytearray(SUBSCRIBE_APPLIED)
    bad[13:17] = U32.pack(1 << 20)
    exc = decode_error(lambda: decode_server_message(bytes(bad)))
    assert (exc.path, exc.offset) == ("ServerMessage::SubscribeApplied.rows.tables[0].table", 13)


def test_unknown_sum_tags() -> None:
    exc = decode_error(lambda: decode_server_message(b"\x08"))
    assert (exc.path, exc.offset) == ("ServerMessage", 0)
    assert "unknown sum tag 8" in exc.reason
    exc = decode_error(lambda: decode_client_message(b"\x05" + bytes(20)))
    assert (exc.path, exc.offset) == ("ClientMessage", 0)
    bad = bytearray(REDUCER_OK_EMPTY)
    bad[13] = 4
    exc = decode_error(lambda: decode_server_message(bytes(bad)))
    assert (exc.path, exc.offset) == ("ServerMessage::ReducerResult.result", 13)
    exc = decode_error(lambda: decode_client_message(UNSUBSCRIBE[:-1] + b"\x02"))
    assert (exc.path, exc.offset) == ("ClientMessage::Unsubscribe.flags", 9)
    bad = bytearray(SUBSCRIPTION_ERROR)
    bad[1] = 2  # option tag
    exc = decode_error(lambda: decode_server_message(bytes(bad)))
    assert (exc.path, exc.offset) == ("ServerMessage::SubscriptionError.request_id", 1)
    bad = bytearray(SUBSCRIBE_APPLIED)
    bad[23] = 2  # RowSizeHint tag
    exc = decode_error(lambda: decode_server_message(bytes(bad)))
    assert (exc.path, exc.offset) == ("ServerMessage::SubscribeApplied.rows.tables[0].rows.size_hint", 23)


def test_invalid_utf8_in_a_message() -> None:
    bad = bytearray(SUBSCRIPTION_ERROR)
    bad[16] = 0xFF  # inside "no such table"
    exc = decode_error(lambda: decode_server_message(bytes(bad)))
    assert (exc.path, exc.offset) == ("ServerMessage::SubscriptionError.error", 16)
    bad = bytearray(SUBSCRIBE_APPLIED)
    bad[17] = 0xC3  # first byte of "player": a cut two-byte sequence
    exc = decode_error(lambda: decode_server_message(bytes(bad)))
    assert (exc.path, exc.offset) == ("ServerMessage::SubscribeApplied.rows.tables[0].table", 17)
    call = encode_client_message(CallReducer(1, 0, "ab", b""))
    bad = bytearray(call)
    bad[10] = 0x80
    exc = decode_error(lambda: decode_client_message(bytes(bad)))
    assert (exc.path, exc.offset) == ("ClientMessage::CallReducer.reducer", 10)


def test_trailing_bytes_after_a_message() -> None:
    exc = decode_error(lambda: decode_server_message(SUBSCRIPTION_ERROR + b"\x00"))
    assert (exc.path, exc.offset) == ("ServerMessage", len(SUBSCRIPTION_ERROR))
    assert "1 trailing bytes" in exc.reason
    exc = decode_error(lambda: decode_client_message(UNSUBSCRIBE + b"\x00\x00"))
    assert (exc.path, exc.offset) == ("ClientMessage", len(UNSUBSCRIBE))
    # a v2 server frame holds one message; the offset is in the payload after the tag byte
    exc = decode_error(lambda: decode_server_frame(b"\x00" + SUBSCRIPTION_ERROR + b"\x07"))
    assert (exc.path, exc.offset) == ("ServerMessage", len(SUBSCRIPTION_ERROR))
    gz = b"\x02" + gzip.compress(SUBSCRIPTION_ERROR + b"\x07")
    exc = decode_error(lambda: decode_server_frame(gz))
    assert (exc.path, exc.offset) == ("ServerMessage", len(SUBSCRIPTION_ERROR))
    exc = decode_error(lambda: decode_client_frame(UNSUBSCRIBE + b"\x01", PROTOCOL_V2))
    assert (exc.path, exc.offset) == ("ClientMessage", len(UNSUBSCRIBE))


def test_bad_bool_in_rows_of_a_message() -> None:
    """Rows stay bytes in the message; a bad bool surfaces when the row codec decodes them, on the
    bulk fixed-width path as on the per-row path."""
    user = AlgebraicType.product(id=P("U32"), online=P("Bool"))
    rows = U32.pack(1) + b"\x01" + U32.pack(2) + b"\x03"
    msg = SubscribeApplied(1, 1, QueryRows((SingleTableRows("user", BsatnRowList(5, None, rows)),)))
    decoded = decode_server_message(encode_server_message(msg))
    assert isinstance(decoded, SubscribeApplied)
    row_list = decoded.rows.tables[0].rows
    assert row_list.rows() == [rows[:5], rows[5:]]
    codec = compile_codec(user, name="User")
    assert row_list.row_size is not None
    exc = decode_error(lambda: codec.decode_rows(row_list.rows_data, row_size=row_list.row_size))
    assert (exc.path, exc.offset) == ("User[1].online", 9)
    exc = decode_error(lambda: codec.decode(row_list.rows()[1]))
    assert (exc.path, exc.offset) == ("User.online", 4)


# --------------------------------------------------------------------------------------------------
# frames
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tag", [3, 4, 0x7F, 0xFF])
def test_unknown_compression_byte(tag: int) -> None:
    frame = bytes([tag]) + SUBSCRIPTION_ERROR
    for fn in (decompress, decode_server_frame):
        exc = decode_error(lambda fn=fn: fn(frame))
        assert (exc.path, exc.offset) == ("frame", 0)
        assert f"unknown compression tag {tag}" in exc.reason
    exc = decode_error(lambda: decode_server_frame(frame, PROTOCOL_V3))
    assert (exc.path, exc.offset) == ("frame", 0)


@pytest.mark.parametrize(
    "stream",
    [
        b"garbage",
        b"\x1f\x8b\x08\x00" + bytes(6) + b"\xff\xff\xff",  # a header, then no valid deflate data
        b"\x1f\x8b\x09" + bytes(20),  # unknown compression method
        zlib.compress(SUBSCRIPTION_ERROR),  # zlib, not gzip
    ],
)
def test_corrupt_gzip(stream: bytes) -> None:
    for protocol in (PROTOCOL_V2, PROTOCOL_V3):
        exc = decode_error(lambda protocol=protocol: decode_server_frame(b"\x02" + stream, protocol))
        assert (exc.path, exc.offset) == ("frame(gzip)", 1)
        assert "corrupt gzip stream" in exc.reason


def test_gzip_with_a_bad_checksum() -> None:
    good = bytearray(gzip.compress(SUBSCRIPTION_ERROR))
    good[-8] ^= 0xFF  # CRC32
    exc = decode_error(lambda: decompress(b"\x02" + bytes(good)))
    assert (exc.path, exc.offset) == ("frame(gzip)", 1)


@pytest.mark.parametrize("keep", [0, 1, 5, 10, -9, -4, -1])
def test_truncated_gzip(keep: int) -> None:
    stream = gzip.compress(SUBSCRIBE_APPLIED * 3)
    cut = stream[:keep]
    exc = decode_error(lambda: decode_server_frame(b"\x02" + cut))
    assert (exc.path, exc.offset) == ("frame(gzip)", 1)
    assert "gzip" in exc.reason


def test_corrupt_and_truncated_brotli() -> None:
    stream = brotli.compress(SUBSCRIBE_APPLIED * 3)
    for bad in (b"garbage\xff\xff", stream[:-3], stream[: len(stream) // 2], b"", stream + b"junk"):
        exc = decode_error(lambda bad=bad: decode_server_frame(b"\x01" + bad))
        assert (exc.path, exc.offset) == ("frame(brotli)", 1)
        assert "brotli" in exc.reason


def test_decompression_bombs_are_refused() -> None:
    big = bytes(100_000)
    for tag, stream in ((2, gzip.compress(big)), (1, brotli.compress(big))):
        exc = decode_error(
            lambda tag=tag, stream=stream: decompress(bytes([tag]) + stream, max_message_size=1000)
        )
        assert exc.offset == 1
        assert "more than 1000 bytes" in exc.reason
        assert decompress(bytes([tag]) + stream, max_message_size=100_000) == big


def test_empty_frames() -> None:
    for protocol in (PROTOCOL_V2, PROTOCOL_V3):
        exc = decode_error(lambda protocol=protocol: decode_server_frame(b"", protocol))
        assert (exc.path, exc.offset) == ("frame", 0)
        assert "empty frame" in exc.reason
    exc = decode_error(lambda: decompress(b""))
    assert (exc.path, exc.offset) == ("frame", 0)
    # a tag byte and nothing after it
    exc = decode_error(lambda: decode_server_frame(b"\x00"))
    assert (exc.path, exc.offset) == ("ServerMessage", 0)
    exc = decode_error(lambda: decode_client_frame(b"", PROTOCOL_V2))
    assert (exc.path, exc.offset) == ("ClientMessage", 0)


def test_empty_v3_frames() -> None:
    for frame in (b"\x00", b"\x02" + gzip.compress(b""), b"\x01" + brotli.compress(b"")):
        exc = decode_error(lambda frame=frame: decode_server_frame(frame, PROTOCOL_V3))
        assert (exc.path, exc.offset) == ("ServerMessage", 0)
        assert "at least one message" in exc.reason
    exc = decode_error(lambda: decode_client_frame(b"", PROTOCOL_V3))
    assert (exc.path, exc.offset) == ("ClientMessage", 0)
    assert "at least one message" in exc.reason


def test_bad_message_inside_a_v3_frame() -> None:
    frame = bytes.fromhex(vectors()["v3_frames"][1]["frame_hex"])
    first = len(INITIAL_CONNECTION)
    exc = decode_error(lambda: decode_server_frame(frame[:-1], PROTOCOL_V3))
    assert "message #1" in exc.path
    assert exc.path.endswith("ServerMessage::SubscribeApplied.rows.tables[0].rows.rows_data")
    assert exc.offset == first + 44
    # garbage after the last whole message is an error too
    exc = decode_error(lambda: decode_server_frame(frame + b"\x09", PROTOCOL_V3))
    assert "message #2" in exc.path
    assert exc.offset == len(frame) - 1
    client = bytes.fromhex(vectors()["v3_frames"][0]["frame_hex"])
    exc = decode_error(lambda: decode_client_frame(client + b"\x00", PROTOCOL_V3))
    assert "message #2" in exc.path


# --------------------------------------------------------------------------------------------------
# BsatnRowList
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rows", "offset", "words"),
    [
        (BsatnRowList(None, (1,), bytes(10)), 0, "first row offset is 1"),
        (BsatnRowList(None, (0, 5, 3), bytes(10)), 5, "row offset 3"),
        (BsatnRowList(None, (0, 11), bytes(10)), 0, "row offset 11"),
        (BsatnRowList(None, (0, -1), bytes(10)), 0, "row offset -1"),
        (BsatnRowList(None, (0, 4, 4, 12), bytes(10)), 4, "row offset 12"),
        (BsatnRowList(None, (), bytes(1)), 0, "RowOffsets([])"),
        (BsatnRowList(3, None, bytes(10)), 0, "not a whole number of 3-byte rows"),
        (BsatnRowList(0, None, bytes(1)), 0, "FixedSize(0)"),
    ],
)
def test_row_list_with_bad_offsets(rows: BsatnRowList, offset: int, words: str) -> None:
    exc = decode_error(rows.rows)
    assert exc.path == "BsatnRowList"
    assert exc.offset == offset
    assert words in exc.reason


def test_row_list_good_shapes() -> None:
    assert BsatnRowList(None, (0, 4, 4, 7), bytes(10)).rows() == [bytes(4), b"", bytes(3), bytes(3)]
    assert BsatnRowList(None, (0, 0), b"").rows() == [b"", b""]
    assert BsatnRowList(None, (), b"").rows() == []
    assert BsatnRowList(0, None, b"").rows() == []
    assert BsatnRowList(2, None, b"abcd").rows() == [b"ab", b"cd"]
    assert len(BsatnRowList(2, None, b"abcd")) == 2
    assert len(BsatnRowList(None, (0, 1, 2), b"abc")) == 3
    with pytest.raises(ValueError):
        BsatnRowList(None, None, b"")
    with pytest.raises(ValueError):
        BsatnRowList(1, (0,), b"")


def test_row_list_decoded_from_the_wire_is_checked_when_split() -> None:
    """A message with an inconsistent row list decodes (rows stay bytes); splitting it fails."""
    msg = SubscribeApplied(1, 1, QueryRows((SingleTableRows("t", BsatnRowList(None, (0, 9), b"abc")),)))
    decoded = decode_server_message(encode_server_message(msg))
    assert decoded == msg
    assert isinstance(decoded, SubscribeApplied)
    exc = decode_error(decoded.rows.tables[0].rows.rows)
    assert exc.path == "BsatnRowList"


# --------------------------------------------------------------------------------------------------
# encode errors for messages (the caller's side)
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("message", "path"),
    [
        (Subscribe("1", 1, ("q",)), "ClientMessage::Subscribe.request_id"),  # type: ignore[arg-type]
        (Subscribe(1, 1.5, ("q",)), "ClientMessage::Subscribe.query_set_id"),  # type: ignore[arg-type]
        (Subscribe(1, 1, ("q", 5)), "ClientMessage::Subscribe.query_strings[1]"),  # type: ignore[arg-type]
        (Subscribe(1, 1, "q"), "ClientMessage::Subscribe.query_strings"),  # type: ignore[arg-type]
        (Subscribe(-1, 1, ()), "ClientMessage::Subscribe.request_id"),
        (Subscribe(1, 2**32, ()), "ClientMessage::Subscribe.query_set_id.id"),
        (Unsubscribe(1, 1, 7), "ClientMessage::Unsubscribe.flags"),  # type: ignore[arg-type]
        (CallReducer(1, 256, "r", b""), "ClientMessage::CallReducer.flags"),
        (CallReducer(1, 0, "r", "args"), "ClientMessage::CallReducer.args"),  # type: ignore[arg-type]
        (CallReducer(1, 0, b"r", b""), "ClientMessage::CallReducer.reducer"),  # type: ignore[arg-type]
        ("Subscribe", "ClientMessage"),
        (InitialConnection(Identity.zero(), Identity.zero(), "t"), "ClientMessage"),
    ],
)
def test_client_message_encode_errors(message: Any, path: str) -> None:
    with pytest.raises(EncodeError) as info:
        encode_client_message(message)
    assert info.value.path == path


def test_server_message_encode_errors() -> None:
    with pytest.raises(EncodeError) as info:
        encode_server_message(InitialConnection(Identity.zero(), Identity.zero(), "t"))  # type: ignore[arg-type]
    assert info.value.path == "ServerMessage::InitialConnection.connection_id"
    with pytest.raises(EncodeError) as info:
        encode_server_message(SubscriptionError("2", 2, "e"))  # type: ignore[arg-type]
    assert info.value.path == "ServerMessage::SubscriptionError.request_id::some"
    with pytest.raises(EncodeError) as info:
        encode_server_frame(SubscriptionError(2, 2, None), compression=Compression.GZIP)  # type: ignore[arg-type]
    assert info.value.path == "ServerMessage::SubscriptionError.error"
