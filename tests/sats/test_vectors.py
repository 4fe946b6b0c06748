"""Every entry of ``tests/data/bsatn_vectors.json`` (produced by the official TypeScript encoders):
decode to a value built here by hand, and re-encode to the same bytes.

Sections not tested here, on purpose:

* ``client_messages_v1`` / ``server_messages_v1``: the v1 protocol is not implemented (docs/protocol.md
  section 3.7 describes it for 1.x servers; ``spacetime_game.sdk.protocol`` speaks v2 and v3 only).
* ``identity_from_claims``: deriving an Identity from JWT claims is the server's job (the embedded dev
  server's tests own it), not part of the client protocol core.
"""

from __future__ import annotations

import struct
import uuid
from typing import Any

import pytest

from spacetime_game.sdk import ConnectionId, DecodeError, Identity, ScheduleAt, TimeDuration, Timestamp
from spacetime_game.sdk.protocol import (
    PROTOCOL_V2,
    PROTOCOL_V3,
    BsatnRowList,
    CallProcedure,
    CallReducer,
    Compression,
    Err,
    EventTableRows,
    InitialConnection,
    Ok,
    OneOffQuery,
    OneOffQueryResult,
    PersistentTableRows,
    ProcedureInternalError,
    ProcedureResult,
    ProcedureReturned,
    QueryRows,
    QuerySetUpdate,
    ReducerErr,
    ReducerInternalError,
    ReducerOk,
    ReducerOkEmpty,
    ReducerResult,
    SingleTableRows,
    Subscribe,
    SubscribeApplied,
    SubscriptionError,
    TableUpdate,
    TransactionUpdate,
    Unsubscribe,
    UnsubscribeApplied,
    UnsubscribeFlags,
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
    ProductElement,
    ProductType,
    SumType,
    SumValue,
    SumVariant,
    compile_codec,
)
from tests._support import (
    CONNECTION_ID_HEX,
    IDENTITY_HEX,
    JAN_1_2024_MICROS,
    OWNER,
    PLAYER,
    PLAYER_1,
    PLAYER_1B,
    PLAYER_2,
    UNIT,
    P,
    assert_strict_eq,
    bsatn_string,
    player_bytes,
    vector,
    vectors,
)

TESTED_SECTIONS = {
    "values",
    "client_messages_v2",
    "server_messages_v2",
    "compression_envelopes_v2",
    "v3_frames",
    "client_messages_v1",  # in tests/protocol/test_v1_messages.py
    "server_messages_v1",
}
SKIPPED_SECTIONS = {
    "identity_from_claims": "Identity::from_claims is a server concern",
}


def test_every_section_is_tested_or_skipped_on_purpose() -> None:
    sections = {k for k, v in vectors().items() if isinstance(v, list) or k == "identity_from_claims"}
    assert sections == TESTED_SECTIONS | set(SKIPPED_SECTIONS)


def test_constants() -> None:
    consts = vectors()["constants"]
    assert consts["identity_hex_big_endian"] == IDENTITY_HEX
    assert consts["connection_id_hex_big_endian"] == CONNECTION_ID_HEX


# --------------------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------------------
def _special(field: str, inner: str) -> ProductType:
    return ProductType((ProductElement(field, P(inner)),))


IDENTITY_T = _special("__identity__", "U256")
CONNECTION_ID_T = _special("__connection_id__", "U128")
TIMESTAMP_T = _special("__timestamp_micros_since_unix_epoch__", "I64")
TIME_DURATION_T = _special("__time_duration_micros__", "I64")
UUID_T = _special("__uuid__", "U128")
SCHEDULE_AT_T = SumType((SumVariant("Interval", TIME_DURATION_T), SumVariant("Time", TIMESTAMP_T)))

#: The vector's ``type`` string, mapped by hand to an AlgebraicType.
TYPES: dict[str, Any] = {
    "Bool": P("Bool"),
    "U8": P("U8"),
    "I8": P("I8"),
    "U16": P("U16"),
    "I16": P("I16"),
    "U32": P("U32"),
    "I32": P("I32"),
    "U64": P("U64"),
    "I64": P("I64"),
    "U128": P("U128"),
    "I128": P("I128"),
    "U256": P("U256"),
    "I256": P("I256"),
    "F32": P("F32"),
    "F64": P("F64"),
    "String": P("String"),
    "Array<U8>": ArrayType(P("U8")),
    "Array<U32>": ArrayType(P("U32")),
    "Array<String>": ArrayType(P("String")),
    "Sum{some:String,none:()}": SumType((SumVariant("some", P("String")), SumVariant("none", UNIT))),
    "Sum{some:U32,none:()}": SumType((SumVariant("some", P("U32")), SumVariant("none", UNIT))),
    "Product{}": UNIT,
    "Sum{Red:(),Green:(),Blue:()}": SumType(
        (SumVariant("Red", UNIT), SumVariant("Green", UNIT), SumVariant("Blue", UNIT))
    ),
    "Sum{Circle:F32,Rect:Product{w:U16,h:U16}}": SumType(
        (
            SumVariant("Circle", P("F32")),
            SumVariant("Rect", ProductType((ProductElement("w", P("U16")), ProductElement("h", P("U16"))))),
        )
    ),
    "Product{__identity__:U256}": IDENTITY_T,
    "Product{__connection_id__:U128}": CONNECTION_ID_T,
    "Product{__timestamp_micros_since_unix_epoch__:I64}": TIMESTAMP_T,
    "Product{__time_duration_micros__:I64}": TIME_DURATION_T,
    "Sum{Interval:TimeDuration,Time:Timestamp}": SCHEDULE_AT_T,
    "Product{__uuid__:U128}": UUID_T,
    "Product{id:U64,name:String,owner:Identity,pos:Option<Product{x:F32,y:F32}>,created:Timestamp}": PLAYER,
    "same as Player row #1": PLAYER,
    "Product{name:String}": ProductType((ProductElement("name", P("String")),)),
}

#: The vector's name, mapped to the Python value it must decode to (built by hand from the name).
VALUES: dict[str, Any] = {
    "bool false": False,
    "bool true": True,
    "u8 200": 200,
    "i8 -2": -2,
    "u16 0x1234": 0x1234,
    "i16 -300": -300,
    "u32 1": 1,
    "i32 -1": -1,
    "u64 2^40+5": 2**40 + 5,
    "i64 -1234567890123": -1234567890123,
    "u128 2^100+7": 2**100 + 7,
    "i128 -5": -5,
    "u256 2^200+1": 2**200 + 1,
    "i256 -1": -1,
    "f32 1.5": 1.5,
    "f64 -0.1": -0.1,
    'string "hé!"': "hé!",
    'string ""': "",
    "bytes [de ad be ef]": b"\xde\xad\xbe\xef",
    "array<u32> [1,2,3]": [1, 2, 3],
    "array<string> []": [],
    'option<string> some("a")': "a",
    "option<string> none": None,
    "option<u32> some(7)": 7,
    "unit ()": (),
    "simple enum Color{Red,Green,Blue} = Green": SumValue(1, ()),
    "enum Shape{Circle(f32),Rect{w:u16,h:u16}} = Rect{w:3,h:4}": SumValue(1, {"w": 3, "h": 4}),
    f"Identity 0x{IDENTITY_HEX}": Identity.from_string(IDENTITY_HEX),
    f"ConnectionId 0x{CONNECTION_ID_HEX}": ConnectionId.from_string(CONNECTION_ID_HEX),
    "Timestamp 2024-01-01T00:00:00Z (1704067200000000 us)": Timestamp(JAN_1_2024_MICROS),
    "TimeDuration 1.5s (1500000 us)": TimeDuration(1_500_000),
    "ScheduleAt Interval(1s)": ScheduleAt(TimeDuration(1_000_000)),
    "ScheduleAt Time(1704067200000000)": ScheduleAt(Timestamp(JAN_1_2024_MICROS)),
    f"Uuid 0x{CONNECTION_ID_HEX}": uuid.UUID(CONNECTION_ID_HEX),
    'Player row #1 {id:1,name:"alice",owner:Identity,pos:some{x:1,y:2},created:1704067200000000}': PLAYER_1,
    'Player row #2 {id:2,name:"bob",owner:Identity,pos:none,created:1704067200000001}': PLAYER_2,
    'Player row #1 updated {id:1,name:"alice2",...}': PLAYER_1B,
    'Reducer args for set_name(name: String) with "Alice"': {"name": "Alice"},
    # a product with no fields has no names to key a dict by: it is the unit value ()
    "Reducer args for a zero-parameter reducer": (),
}


def test_every_value_vector_has_a_hand_built_expectation() -> None:
    names = [v["name"] for v in vectors()["values"]]
    assert len(names) == len(set(names)) == 39
    assert set(names) == set(VALUES)
    assert {v["type"] for v in vectors()["values"]} == set(TYPES)


@pytest.mark.parametrize("vec", vectors()["values"], ids=lambda v: v["name"])
def test_value_vector(vec: dict[str, Any]) -> None:
    ty = TYPES[vec["type"]]
    expected = VALUES[vec["name"]]
    data = bytes.fromhex(vec["bsatn_hex"])
    codec = compile_codec(ty)
    decoded = codec.decode(data)
    assert_strict_eq(decoded, expected)
    assert codec.encode(expected) == data
    assert codec.encode(decoded) == data
    # the same bytes in the middle of a buffer
    assert codec.decode_from(b"\xaa" + data + b"\xbb", 1) == (expected, 1 + len(data))


def test_value_vectors_agree_with_their_json_value_column() -> None:
    """A guard against typos in VALUES: where the vector's own ``value`` is a plain number or string,
    it matches the hand-built value."""
    checked = 0
    for vec in vectors()["values"]:
        expected, raw = VALUES[vec["name"]], vec["value"]
        if vec["type"] in ("U64", "I64", "U128", "I128", "U256", "I256"):
            assert expected == int(raw)
        elif vec["type"] in ("Bool", "U8", "I8", "U16", "I16", "U32", "I32", "F32", "F64", "String"):
            assert expected == raw
        elif vec["type"] == "Array<U8>":
            assert expected == bytes.fromhex(raw)
        else:
            continue
        checked += 1
    assert checked == 19


def test_special_value_vectors_decode_to_the_sdk_classes() -> None:
    for vec in vectors()["values"]:
        decoded = compile_codec(TYPES[vec["type"]]).decode(bytes.fromhex(vec["bsatn_hex"]))
        assert type(decoded) is type(VALUES[vec["name"]])
    row = compile_codec(PLAYER).decode(player_bytes(PLAYER_1))
    assert type(row["owner"]) is Identity
    assert type(row["created"]) is Timestamp


def test_identity_vector_is_little_endian_on_the_wire() -> None:
    vec = vector("values", f"Identity 0x{IDENTITY_HEX}")
    assert vec["bsatn_hex"] == bytes.fromhex(IDENTITY_HEX)[::-1].hex()
    assert str(compile_codec(IDENTITY_T).decode(bytes.fromhex(vec["bsatn_hex"]))) == IDENTITY_HEX


# --------------------------------------------------------------------------------------------------
# v2 messages
# --------------------------------------------------------------------------------------------------
ROW1 = player_bytes(PLAYER_1)
ROW2 = player_bytes(PLAYER_2)
ROW1B = player_bytes(PLAYER_1B)
PAIRS = struct.pack("<4I", 1, 2, 3, 4)  # (1,2) || (3,4) as Product{a:U32,b:U32}
CHAT_HI = bsatn_string("hi")  # {msg:"hi"}
TIMESTAMP = Timestamp(JAN_1_2024_MICROS)

SUBSCRIBE_PLAYER = Subscribe(request_id=1, query_set_id=1, query_strings=("SELECT * FROM player",))
CALL_SET_NAME = CallReducer(request_id=6, flags=0, reducer="set_name", args=bsatn_string("Alice"))

CLIENT_MESSAGES: dict[str, Any] = {
    'Subscribe{request_id:1, query_set_id:{id:1}, query_strings:["SELECT * FROM player"]}': SUBSCRIBE_PLAYER,
    'Subscribe{request_id:2, query_set_id:{id:2}, query_strings:["SELECT * FROM player WHERE id = 1",'
    '"SELECT * FROM config"]}': Subscribe(
        2, 2, ("SELECT * FROM player WHERE id = 1", "SELECT * FROM config")
    ),
    "Unsubscribe{request_id:3, query_set_id:{id:1}, flags:Default}": Unsubscribe(
        3, 1, UnsubscribeFlags.DEFAULT
    ),
    "Unsubscribe{request_id:4, query_set_id:{id:1}, flags:SendDroppedRows}": Unsubscribe(
        4, 1, UnsubscribeFlags.SEND_DROPPED_ROWS
    ),
    'OneOffQuery{request_id:5, query_string:"SELECT * FROM player"}': OneOffQuery(5, "SELECT * FROM player"),
    'CallReducer{request_id:6, flags:0, reducer:"set_name", args:bsatn(("Alice",))}': CALL_SET_NAME,
    'CallReducer{request_id:7, flags:0, reducer:"tick", args:<empty>}': CallReducer(7, 0, "tick", b""),
    'CallProcedure{request_id:8, flags:0, procedure:"fetch_data", args:bsatn((42u32,))}': CallProcedure(
        8, 0, "fetch_data", struct.pack("<I", 42)
    ),
}

PLAYER_ROWS_1_2 = QueryRows((SingleTableRows("player", BsatnRowList(None, (0, len(ROW1)), ROW1 + ROW2)),))
SUBSCRIBE_APPLIED_PLAYER = SubscribeApplied(request_id=1, query_set_id=1, rows=PLAYER_ROWS_1_2)
INITIAL_CONNECTION = InitialConnection(
    identity=OWNER,
    connection_id=ConnectionId.from_string(CONNECTION_ID_HEX),
    token="eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
)
PLAYER_UPDATE = TransactionUpdate(
    (
        QuerySetUpdate(
            1,
            (
                TableUpdate(
                    "player",
                    (
                        PersistentTableRows(
                            inserts=BsatnRowList(None, (0,), ROW1B), deletes=BsatnRowList(None, (0,), ROW1)
                        ),
                    ),
                ),
            ),
        ),
    )
)

SERVER_MESSAGES: dict[str, Any] = {
    f"InitialConnection{{identity:0x{IDENTITY_HEX}, connection_id:0x{CONNECTION_ID_HEX}, "
    'token:"eyJhbGciOiJFUzI1NiJ9.e30.c2ln"}': INITIAL_CONNECTION,
    'SubscribeApplied{request_id:1, query_set_id:{id:1}, rows:{tables:[{table:"player", '
    "rows:BsatnRowList{RowOffsets[0,len(row1)], row1||row2}}]}}": SUBSCRIBE_APPLIED_PLAYER,
    'SubscribeApplied{request_id:9, query_set_id:{id:3}, rows:{tables:[{table:"pair", '
    "rows:BsatnRowList{FixedSize(8), (1,2)||(3,4)}}]}}": SubscribeApplied(
        9, 3, QueryRows((SingleTableRows("pair", BsatnRowList(8, None, PAIRS)),))
    ),
    'UnsubscribeApplied{request_id:4, query_set_id:{id:1}, rows:some({tables:[{table:"player", '
    "rows:[row1b,row2] as RowOffsets}]})}": UnsubscribeApplied(
        4, 1, QueryRows((SingleTableRows("player", BsatnRowList(None, (0, len(ROW1B)), ROW1B + ROW2)),))
    ),
    "UnsubscribeApplied{request_id:3, query_set_id:{id:1}, rows:none}": UnsubscribeApplied(3, 1, None),
    'SubscriptionError{request_id:some(2), query_set_id:{id:2}, error:"no such table"}': SubscriptionError(
        2, 2, "no such table"
    ),
    'SubscriptionError{request_id:none, query_set_id:{id:2}, error:"boom"}': SubscriptionError(
        None, 2, "boom"
    ),
    'TransactionUpdate{query_sets:[{query_set_id:{id:1}, tables:[{table_name:"player", '
    "rows:[PersistentTable{inserts:[row1b], deletes:[row1]}]}]}]}": PLAYER_UPDATE,
    'TransactionUpdate{query_sets:[{query_set_id:{id:4}, tables:[{table_name:"chat_event", '
    'rows:[EventTable{events:[{msg:"hi"}]}]}]}]}': TransactionUpdate(
        (
            QuerySetUpdate(
                4, (TableUpdate("chat_event", (EventTableRows(BsatnRowList(None, (0,), CHAT_HI)),)),)
            ),
        )
    ),
    "ReducerResult{request_id:6, timestamp:1704067200000000, result:Ok{ret_value:<empty>, "
    "transaction_update:<the TransactionUpdate above>}}": ReducerResult(
        6, TIMESTAMP, ReducerOk(b"", PLAYER_UPDATE)
    ),
    "ReducerResult{request_id:6, timestamp:1704067200000000, result:Ok{ret_value:<empty>, "
    "transaction_update:{query_sets:[]}}}": ReducerResult(
        6, TIMESTAMP, ReducerOk(b"", TransactionUpdate(()))
    ),
    "ReducerResult{request_id:6, timestamp:1704067200000000, result:OkEmpty}": ReducerResult(
        6, TIMESTAMP, ReducerOkEmpty()
    ),
    'ReducerResult{request_id:6, timestamp:1704067200000000, result:Err(bsatn(String "name taken"))}': (
        ReducerResult(6, TIMESTAMP, ReducerErr(bsatn_string("name taken")))
    ),
    'ReducerResult{request_id:6, timestamp:1704067200000000, result:InternalError("No such reducer")}': (
        ReducerResult(6, TIMESTAMP, ReducerInternalError("No such reducer"))
    ),
    'OneOffQueryResult{request_id:5, result:ok({tables:[{table:"player", rows:[row2]}]})}': OneOffQueryResult(
        5, Ok(QueryRows((SingleTableRows("player", BsatnRowList(None, (0,), ROW2)),)))
    ),
    "ProcedureResult{status:Returned(bsatn(u32 43)), timestamp:1704067200000000, "
    "total_host_execution_duration:250us, request_id:8}": ProcedureResult(
        ProcedureReturned(struct.pack("<I", 43)), TIMESTAMP, TimeDuration(250), 8
    ),
    'ProcedureResult{status:InternalError("oops"), timestamp:1704067200000000, '
    "total_host_execution_duration:0us, request_id:8}": ProcedureResult(
        ProcedureInternalError("oops"), TIMESTAMP, TimeDuration(0), 8
    ),
}


def test_every_message_vector_has_a_hand_built_expectation() -> None:
    assert [v["name"] for v in vectors()["client_messages_v2"]] == list(CLIENT_MESSAGES)
    assert [v["name"] for v in vectors()["server_messages_v2"]] == list(SERVER_MESSAGES)


@pytest.mark.parametrize("vec", vectors()["client_messages_v2"], ids=lambda v: v["name"][:60])
def test_client_message_vector(vec: dict[str, Any]) -> None:
    expected = CLIENT_MESSAGES[vec["name"]]
    data = bytes.fromhex(vec["bsatn_hex"])
    decoded = decode_client_message(data)
    assert decoded == expected
    assert type(decoded) is type(expected)
    assert encode_client_message(expected) == data
    # client frames carry no tag byte; a v2 frame is exactly one message
    assert encode_client_frame(expected, PROTOCOL_V2) == data
    assert decode_client_frame(data, PROTOCOL_V2) == [expected]
    assert decode_client_frame(data, PROTOCOL_V3) == [expected]


@pytest.mark.parametrize("vec", vectors()["server_messages_v2"], ids=lambda v: v["name"][:60])
def test_server_message_vector(vec: dict[str, Any]) -> None:
    expected = SERVER_MESSAGES[vec["name"]]
    data = bytes.fromhex(vec["bsatn_hex"])
    frame = bytes.fromhex(vec["frame_hex_uncompressed"])
    decoded = decode_server_message(data)
    assert decoded == expected
    assert type(decoded) is type(expected)
    assert encode_server_message(expected) == data
    assert frame == b"\x00" + data
    assert decode_server_frame(frame) == [expected]
    assert decode_server_frame(frame, PROTOCOL_V3) == [expected]
    assert encode_server_frame(expected) == frame


def test_message_field_types_after_decoding() -> None:
    """The decoded messages hold the SDK's classes and tuples, not raw ints and lists."""
    vecs = {v["name"]: bytes.fromhex(v["bsatn_hex"]) for v in vectors()["server_messages_v2"]}
    init = decode_server_message(next(b for n, b in vecs.items() if n.startswith("InitialConnection")))
    assert isinstance(init, InitialConnection)
    assert type(init.identity) is Identity
    assert type(init.connection_id) is ConnectionId
    assert str(init.identity) == IDENTITY_HEX
    assert str(init.connection_id) == CONNECTION_ID_HEX
    unsub = decode_client_message(bytes.fromhex(vectors()["client_messages_v2"][3]["bsatn_hex"]))
    assert isinstance(unsub, Unsubscribe)
    assert unsub.flags is UnsubscribeFlags.SEND_DROPPED_ROWS
    result = decode_server_message(next(b for n, b in vecs.items() if "name taken" in n))
    assert isinstance(result, ReducerResult)
    assert type(result.timestamp) is Timestamp
    assert isinstance(result.result, ReducerErr)
    assert result.result.message == "name taken"
    sub = decode_client_message(bytes.fromhex(vectors()["client_messages_v2"][1]["bsatn_hex"]))
    assert isinstance(sub, Subscribe)
    assert type(sub.query_strings) is tuple


def test_row_lists_of_the_vectors_split_and_decode_to_the_rows() -> None:
    rows = SUBSCRIBE_APPLIED_PLAYER.rows.tables[0].rows
    assert rows.rows() == [ROW1, ROW2]
    assert len(rows) == 2
    assert compile_codec(PLAYER).decode_rows(rows.rows_data, offsets=rows.row_offsets) == [PLAYER_1, PLAYER_2]
    pairs = decode_server_message(bytes.fromhex(vectors()["server_messages_v2"][2]["bsatn_hex"]))
    assert isinstance(pairs, SubscribeApplied)
    pair_rows = pairs.rows.tables[0].rows
    assert pair_rows.row_size == 8
    assert pair_rows.rows() == [PAIRS[:8], PAIRS[8:]]
    pair_t = AlgebraicType.product(a=P("U32"), b=P("U32"))
    assert compile_codec(pair_t).decode_rows(pair_rows.rows_data, row_size=8) == [
        {"a": 1, "b": 2},
        {"a": 3, "b": 4},
    ]


def test_row_lists_are_built_like_the_server_builds_them() -> None:
    """``BsatnRowList.from_rows`` picks the same size hint as the server did for the vectors."""
    assert BsatnRowList.from_rows([ROW1, ROW2]) == BsatnRowList(None, (0, len(ROW1)), ROW1 + ROW2)
    assert BsatnRowList.from_rows([PAIRS[:8], PAIRS[8:]]) == BsatnRowList(8, None, PAIRS)
    assert BsatnRowList.from_rows([ROW2]) == BsatnRowList(len(ROW2), None, ROW2)
    assert BsatnRowList.from_rows([]) == BsatnRowList(None, (), b"")
    assert BsatnRowList.from_rows([b"", b""]) == BsatnRowList(None, (0, 0), b"")


# --------------------------------------------------------------------------------------------------
# compression envelopes
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("vec", vectors()["compression_envelopes_v2"], ids=lambda v: v["name"])
def test_compression_envelope_vector(vec: dict[str, Any]) -> None:
    frame = bytes.fromhex(vec["frame_hex"])
    payload = bytes.fromhex(vec["decompressed_bsatn_hex"])
    assert decompress(frame) == payload
    assert decode_server_frame(frame) == [SUBSCRIBE_APPLIED_PLAYER]
    assert decode_server_frame(frame, PROTOCOL_V3) == [SUBSCRIBE_APPLIED_PLAYER]
    assert encode_server_message(SUBSCRIBE_APPLIED_PLAYER) == payload


def test_all_three_compression_tags_are_covered() -> None:
    tags = sorted(bytes.fromhex(v["frame_hex"])[0] for v in vectors()["compression_envelopes_v2"])
    assert tags == [0, 1, 2]


@pytest.mark.parametrize("compression", list(Compression))
def test_encode_server_frame_compression_round_trip(compression: Compression) -> None:
    small = encode_server_frame(SUBSCRIBE_APPLIED_PLAYER, compression=compression)
    assert small[0] == 0  # below the threshold the server never compresses
    forced = encode_server_frame(SUBSCRIBE_APPLIED_PLAYER, compression=compression, threshold=0)
    assert forced[0] == int(compression)
    for frame in (small, forced):
        assert decode_server_frame(frame) == [SUBSCRIBE_APPLIED_PLAYER]
        assert decompress(frame) == encode_server_message(SUBSCRIBE_APPLIED_PLAYER)


# --------------------------------------------------------------------------------------------------
# v3 frames
# --------------------------------------------------------------------------------------------------
def test_v3_client_frame_vector() -> None:
    (vec,) = [v for v in vectors()["v3_frames"] if v["name"].startswith("client->server")]
    frame = bytes.fromhex(vec["frame_hex"])
    expected = [SUBSCRIBE_PLAYER, CALL_SET_NAME]
    assert decode_client_frame(frame, PROTOCOL_V3) == expected
    assert encode_client_frame(expected, PROTOCOL_V3) == frame
    assert encode_client_frame(tuple(expected), PROTOCOL_V3) == frame


def test_v3_server_frame_vector() -> None:
    (vec,) = [v for v in vectors()["v3_frames"] if v["name"].startswith("server->client")]
    frame = bytes.fromhex(vec["frame_hex"])
    expected = [INITIAL_CONNECTION, SUBSCRIBE_APPLIED_PLAYER]
    assert decode_server_frame(frame, PROTOCOL_V3) == expected
    assert encode_server_frame(expected, PROTOCOL_V3) == frame
    # the tag applies to the whole concatenation
    gz = encode_server_frame(expected, PROTOCOL_V3, Compression.GZIP, threshold=0)
    assert gz[0] == 2
    assert decode_server_frame(gz, PROTOCOL_V3) == expected
    br = encode_server_frame(expected, PROTOCOL_V3, Compression.BROTLI, threshold=0)
    assert br[0] == 1
    assert decode_server_frame(br, PROTOCOL_V3) == expected


def test_v2_frames_hold_exactly_one_message() -> None:
    with pytest.raises(ValueError):
        encode_client_frame([SUBSCRIBE_PLAYER, CALL_SET_NAME], PROTOCOL_V2)
    with pytest.raises(ValueError):
        encode_server_frame([INITIAL_CONNECTION, SUBSCRIBE_APPLIED_PLAYER], PROTOCOL_V2)
    with pytest.raises(ValueError):
        encode_client_frame([], PROTOCOL_V3)
    with pytest.raises(ValueError):
        decode_server_frame(b"\x00", "v1.bsatn.spacetimedb")
    two = encode_client_frame([SUBSCRIBE_PLAYER, CALL_SET_NAME], PROTOCOL_V3)
    # a v2 decoder sees the second message as trailing bytes
    with pytest.raises(DecodeError) as info:
        decode_client_frame(two, PROTOCOL_V2)
    assert info.value.path == "ClientMessage"
    assert info.value.offset == len(encode_client_message(SUBSCRIBE_PLAYER))


def test_one_off_query_error_result() -> None:
    """No vector has the ``err`` side of OneOffQueryResult; its layout is the ``result`` sum (err = 1)."""
    msg = OneOffQueryResult(5, Err("no such table: nope"))
    data = b"\x05" + struct.pack("<I", 5) + b"\x01" + bsatn_string("no such table: nope")
    assert encode_server_message(msg) == data
    assert decode_server_message(data) == msg
