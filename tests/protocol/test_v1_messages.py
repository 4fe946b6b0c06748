"""The v1 messages (``v1.bsatn.spacetimedb``, SpacetimeDB 1.x; issue #16) against the vectors the official
TypeScript SDK 1.12.0 encoded (tests/data/bsatn_vectors.json), and the v1 frame and compression helpers."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from spacetime_game.sdk.protocol import BsatnRowList, Compression, v1
from spacetime_game.sdk.sats import ConnectionId, DecodeError, Identity, TimeDuration, Timestamp
from tests._support import CONNECTION_ID_HEX, IDENTITY_HEX, JAN_1_2024_MICROS, bsatn_string, vectors

ALICE = bsatn_string("Alice")
T = "SELECT * FROM t"


def u32_rows(*values: int) -> BsatnRowList:
    return BsatnRowList.from_rows([struct.pack("<I", v) for v in values])  # (empty: RowOffsets([]))


def table(num_rows: int, deletes: tuple[int, ...], inserts: tuple[int, ...]) -> v1.TableUpdate:
    return v1.TableUpdate(4096, "t", num_rows, (v1.QueryUpdate(u32_rows(*deletes), u32_rows(*inserts)),))


UPDATE = v1.DatabaseUpdate((table(2, (5,), (6,)),))
CALLER = Identity.from_string(IDENTITY_HEX)
CONNECTION = ConnectionId.from_string(CONNECTION_ID_HEX)
CALL = v1.ReducerCallInfo("set_name", 3, ALICE, 6)


def transaction(status: v1.UpdateStatus) -> v1.TransactionUpdate:
    return v1.TransactionUpdate(
        status, Timestamp(JAN_1_2024_MICROS), CALLER, CONNECTION, CALL, 0, TimeDuration(42)
    )


CLIENT: dict[str, Any] = {
    'CallReducer{reducer:"set_name", args:bsatn(("Alice",)), request_id:6, flags:0 (FullUpdate)}': (
        v1.CallReducer("set_name", ALICE, 6, v1.CallReducerFlags.FULL_UPDATE)
    ),
    'CallReducer{reducer:"set_name", args:bsatn(("Alice",)), request_id:6, flags:1 (NoSuccessNotify)}': (
        v1.CallReducer("set_name", ALICE, 6, v1.CallReducerFlags.NO_SUCCESS_NOTIFY)
    ),
    'Subscribe{query_strings:["SELECT * FROM t"], request_id:1} (legacy, replaces all)': v1.Subscribe(
        (T,), 1
    ),
    'OneOffQuery{message_id:[1,2,3,4], query_string:"SELECT * FROM t"}': v1.OneOffQuery(b"\1\2\3\4", T),
    'SubscribeSingle{query:"SELECT * FROM t", request_id:2, query_id:{id:7}}': v1.SubscribeSingle(T, 2, 7),
    'SubscribeMulti{query_strings:["SELECT * FROM t"], request_id:3, query_id:{id:8}}': v1.SubscribeMulti(
        (T,), 3, 8
    ),
    "Unsubscribe{request_id:4, query_id:{id:7}}": v1.Unsubscribe(4, 7),
    "UnsubscribeMulti{request_id:5, query_id:{id:8}}": v1.UnsubscribeMulti(5, 8),
}

SERVER: dict[str, Any] = {
    f'IdentityToken{{identity:0x{IDENTITY_HEX}, token:"tok", connection_id:0x{CONNECTION_ID_HEX}}}': (
        v1.IdentityToken(CALLER, "tok", CONNECTION)
    ),
    'InitialSubscription{database_update:{tables:[{table_id:4096, table_name:"t", num_rows:2, '
    "updates:[Uncompressed{deletes:[5u32], inserts:[6u32]}]}]}, request_id:1, "
    "total_host_execution_duration:10us}": v1.InitialSubscription(UPDATE, 1, TimeDuration(10)),
    "TransactionUpdate{status:Committed(<same database_update>), timestamp:1704067200000000, caller_identity, "
    'caller_connection_id, reducer_call:{reducer_name:"set_name", reducer_id:3, args:bsatn(("Alice",)), '
    "request_id:6}, energy_quanta_used:{quanta:0}, total_host_execution_duration:42us}": transaction(
        v1.Committed(UPDATE)
    ),
    'TransactionUpdate{status:Failed("name taken"), ... same other fields}': transaction(
        v1.Failed("name taken")
    ),
    "TransactionUpdateLight{request_id:6, update:<same database_update>}": v1.TransactionUpdateLight(
        6, UPDATE
    ),
    "SubscribeMultiApplied{request_id:3, total_host_execution_duration_micros:7, query_id:{id:8}, "
    'update:{tables:[{table_id:4096, table_name:"t", num_rows:1, updates:[Uncompressed{deletes:[], '
    "inserts:[6u32]}]}]}}": v1.SubscribeMultiApplied(3, 7, 8, v1.DatabaseUpdate((table(1, (), (6,)),))),
    "UnsubscribeMultiApplied{request_id:5, total_host_execution_duration_micros:7, query_id:{id:8}, "
    "update:{tables:[{... updates:[Uncompressed{deletes:[6u32], inserts:[]}]}]}}": v1.UnsubscribeMultiApplied(
        5, 7, 8, v1.DatabaseUpdate((table(1, (6,), ()),))
    ),
    "SubscriptionError{total_host_execution_duration_micros:0, request_id:some(3), query_id:some(8), "
    'table_id:none, error:"bad query"}': v1.SubscriptionError(0, 3, 8, None, "bad query"),
    'OneOffQueryResponse{message_id:[1,2,3,4], error:none, tables:[{table_name:"t", rows:[6u32]}], '
    "total_host_execution_duration:5us}": v1.OneOffQueryResponse(
        b"\1\2\3\4", None, (v1.OneOffTable("t", u32_rows(6)),), TimeDuration(5)
    ),
}


def test_every_v1_vector_has_a_hand_built_expectation() -> None:
    assert [v["name"] for v in vectors()["client_messages_v1"]] == list(CLIENT)
    assert [v["name"] for v in vectors()["server_messages_v1"]] == list(SERVER)


@pytest.mark.parametrize("vec", vectors()["client_messages_v1"], ids=lambda v: v["name"][:50])
def test_client_vector(vec: dict[str, Any]) -> None:
    expected = CLIENT[vec["name"]]
    data = bytes.fromhex(vec["bsatn_hex"])
    assert v1.decode_client_frame(data) == expected and type(v1.decode_client_frame(data)) is type(expected)
    assert v1.encode_client_frame(expected) == data  # (a client frame has no tag byte)


@pytest.mark.parametrize("vec", vectors()["server_messages_v1"], ids=lambda v: v["name"][:50])
def test_server_vector(vec: dict[str, Any]) -> None:
    expected = SERVER[vec["name"]]
    data = bytes.fromhex(vec["bsatn_hex"])
    frame = bytes.fromhex(vec["frame_hex_uncompressed"])
    assert v1.server_message_codec.decode(data) == expected
    assert v1.server_message_codec.encode(expected) == data
    assert frame == b"\x00" + data
    assert v1.decode_server_frame(frame) == expected
    assert v1.encode_server_frame(expected) == frame
    for compression in (Compression.GZIP, Compression.BROTLI):  # a whole frame compressed
        assert v1.decode_server_frame(v1.encode_server_frame(expected, compression, threshold=0)) == expected


def test_decoded_fields_are_the_sdk_classes() -> None:
    tx = v1.decode_server_frame(bytes.fromhex(vectors()["server_messages_v1"][2]["frame_hex_uncompressed"]))
    assert isinstance(tx, v1.TransactionUpdate) and isinstance(tx.status, v1.Committed)
    assert type(tx.caller_identity) is Identity and type(tx.caller_connection_id) is ConnectionId
    assert type(tx.timestamp) is Timestamp and tx.energy_quanta_used == 0
    (t,) = tx.status.update.tables
    assert type(t.updates) is tuple and t.updates[0].inserts.rows() == [struct.pack("<I", 6)]


@pytest.mark.parametrize("compression", [Compression.GZIP, Compression.BROTLI])
def test_a_compressed_query_update_round_trips(compression: Compression) -> None:
    """Some 1.x servers compress each QueryUpdate on its own (variants 1 and 2): they decode the same."""
    plain = v1.QueryUpdate(u32_rows(1, 2, 3), u32_rows(*range(100)))
    packed = v1.compress_query_update(plain, compression)
    assert packed.compression == compression and len(packed.data) < 400
    msg = v1.TransactionUpdateLight(1, v1.DatabaseUpdate((v1.TableUpdate(1, "t", 103, (packed, plain)),)))
    back = v1.decode_server_frame(v1.encode_server_frame(msg))
    assert isinstance(back, v1.TransactionUpdateLight)
    got = back.update.tables[0].updates
    assert got[0] == packed and got[1] == plain  # kept as sent ...
    assert v1.query_update(got[0]) == plain and v1.query_update(got[1]) is got[1]  # ... and opened on demand
    varying = v1.QueryUpdate(BsatnRowList.from_rows([b"a", b"bc", b""]), BsatnRowList.from_rows([b"xyz"]))
    assert varying.deletes.row_offsets == (0, 1, 3)
    opened = v1.query_update(v1.compress_query_update(varying, compression))
    assert opened == varying and hash(opened.deletes.row_offsets)  # (offsets as a tuple, like every decode)


def test_a_bad_compressed_query_update_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="gzip"):
        v1.query_update(v1.CompressedQueryUpdate(Compression.GZIP, b"not gzip"))
    packed = v1.compress_query_update(v1.QueryUpdate(u32_rows(), u32_rows(*range(1000))), Compression.GZIP)
    with pytest.raises(DecodeError, match="max_message_size"):
        v1.query_update(packed, max_message_size=100)  # a bomb stops at the limit
    junk = v1.CompressedQueryUpdate(
        Compression.GZIP,
        v1.compress_query_update(v1.QueryUpdate(u32_rows(), u32_rows()), Compression.GZIP).data[:-1],
    )
    with pytest.raises(DecodeError):
        v1.query_update(junk)


def test_v1_tags_are_the_protocols() -> None:
    """The enum order of 1.0.0 onward (the pre-1.0 candidates differed)."""
    client_tags = [v1.encode_client_frame(m)[0] for m in CLIENT.values()]
    assert client_tags == [0, 0, 1, 2, 3, 4, 5, 6]
    assert v1.encode_client_frame(v1.CallProcedure("p", b"", 1))[0] == 7
    server_tags = [v1.server_message_codec.encode(m)[0] for m in SERVER.values()]
    assert server_tags == [3, 0, 1, 1, 2, 8, 9, 7, 4]
