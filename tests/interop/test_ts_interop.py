"""Byte-for-byte interop with the official SpacetimeDB TypeScript SDK (npm ``spacetimedb``, see package.json).

``ts_vectors.mjs`` makes random values of every SATS type and random instances of every v2 protocol message,
and serializes them with the SDK's own BSATN serializers. Here every vector is decoded and re-encoded with
our codecs and compared with the SDK's bytes.

Setup: ``cd tests/interop && npm ci`` (Node 20). Without it these tests fail, unless
``SPACETIME_GAME_SKIP_INTEROP=1`` is set, which skips them. ``SPACETIME_GAME_INTEROP_SEED`` picks another seed.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import subprocess
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from spacetime_game.sdk.protocol import (
    PROTOCOL_V2,
    PROTOCOL_V3,
    BsatnRowList,
    CallProcedure,
    CallReducer,
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
    ConnectionId,
    Identity,
    Some,
    SumValue,
    TimeDuration,
    Timestamp,
    compile_codec,
    from_json,
)

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
SDK_VERSION = "2.10.1"
SEED = int(os.environ.get("SPACETIME_GAME_INTEROP_SEED", "20261126"))
MIN_VALUES_PER_TYPE = 200
MIN_MESSAGES_PER_CASE = 20

#: The value records ts_vectors.mjs writes, by name (kept in step with TYPES there).
VALUE_TYPES = [
    "Bool",
    "U8",
    "I8",
    "U16",
    "I16",
    "U32",
    "I32",
    "U64",
    "I64",
    "U128",
    "I128",
    "U256",
    "I256",
    "F32",
    "F64",
    "String",
    "Bytes",
    "Array<U8> (t.array)",
    "Array<U32>",
    "Array<I8>",
    "Array<I64>",
    "Array<I128>",
    "Array<F32>",
    "Array<String>",
    "Array<Bool>",
    "Array<F64>",
    "Array<Array<U32>>",
    "Array<Array<String>>",
    "Array<Bytes>",
    "Array<Array<Array<I8>>>",
    "Array<Option<I32>>",
    "Array<Vec2>",
    "Array<Identity>",
    "Array<Stamp>",
    "Option<U8>",
    "Option<String>",
    "Option<I128>",
    "Option<Bytes>",
    "Option<Array<U16>>",
    "Option<Option<U8>>",
    "Option<Vec2>",
    "Product Vec2 (fixed size)",
    "Product Fixed (all primitives)",
    "Product Stamp (fixed size, specials)",
    "Product Player (nested, options, specials)",
    "Product Unit (no fields)",
    "Enum Color (unit variants)",
    "Enum Wide (256 unit variants)",
    "Sum Shape (payloads)",
    "Identity",
    "ConnectionId",
    "Timestamp",
    "TimeDuration",
    "Uuid",
    "ScheduleAt",
    "Result<U32,U32>",
    "Result<String,String>",
]

CLIENT_CASES = [
    "Subscribe",
    "Unsubscribe/Default",
    "Unsubscribe/SendDroppedRows",
    "OneOffQuery",
    "CallReducer",
    "CallProcedure",
]

# OneOffQueryResult/err cannot be made with the SDK's ServerMessage serializer (SDK 2.10.1 writes a result's
# err payload with the ok type, and throws); the "(workaround)" case gets its bytes from the SDK's writer and
# generic sum serializer and checks them with the SDK's ServerMessage decoder (see ts_vectors.mjs).
SERVER_CASES = [
    "InitialConnection",
    "SubscribeApplied",
    "UnsubscribeApplied/some",
    "UnsubscribeApplied/none",
    "SubscriptionError/some",
    "SubscriptionError/none",
    "TransactionUpdate",
    "OneOffQueryResult/ok",
    "OneOffQueryResult/err (workaround)",
    "ReducerResult/Ok",
    "ReducerResult/OkEmpty",
    "ReducerResult/Err",
    "ReducerResult/InternalError",
    "ProcedureResult/Returned",
    "ProcedureResult/InternalError",
]

MAX_REPORTED = 8


# --------------------------------------------------------------------------------------------------
# running the generator
# --------------------------------------------------------------------------------------------------
@functools.cache
def _run_generator() -> tuple[str, Any]:
    """("ok", data), ("skip", reason) or ("fail", reason); cached, so node runs once per session."""
    if os.environ.get("SPACETIME_GAME_SKIP_INTEROP") == "1":
        return "skip", "SPACETIME_GAME_SKIP_INTEROP=1"
    if not (HERE / "node_modules" / "spacetimedb" / "package.json").is_file():
        return "fail", (
            "the TypeScript SDK is not installed: run `npm ci` in tests/interop "
            "(or set SPACETIME_GAME_SKIP_INTEROP=1 to skip the interop tests)"
        )
    node = shutil.which("node")
    if node is None:
        return "fail", (
            "`node` (Node.js 20) is not on PATH; it is needed for tests/interop "
            "(or set SPACETIME_GAME_SKIP_INTEROP=1 to skip the interop tests)"
        )
    proc = subprocess.run(
        [node, "ts_vectors.mjs", str(SEED)], cwd=HERE, capture_output=True, timeout=120, check=False
    )
    if proc.returncode != 0:
        return "fail", (
            f"node ts_vectors.mjs {SEED} failed (exit {proc.returncode}):\n"
            f"{proc.stderr.decode(errors='replace')[-4000:]}"
        )
    return "ok", json.loads(proc.stdout)


def load_vectors() -> dict[str, Any]:
    """The generator's output; fails (or skips) the calling test when it cannot be had.

    Called from the tests themselves rather than from a fixture, so that a missing ``npm ci`` shows up as
    failed tests, not as setup errors.
    """
    status, data = _run_generator()
    if status == "skip":
        pytest.skip(data)
    if status == "fail":
        pytest.fail(data, pytrace=False)
    assert data["sdk_version"] == SDK_VERSION, (
        f"expected spacetimedb {SDK_VERSION}, got {data['sdk_version']}"
    )
    result: dict[str, Any] = data
    return result


def value_records() -> dict[str, Any]:
    return {r["name"]: r for r in load_vectors()["values"]}


def message_records() -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    data = load_vectors()
    for side in ("client_messages", "server_messages"):
        for rec in data[side]:
            out.setdefault(rec["case"], []).append(rec)
    return out


def test_every_type_and_case_is_generated() -> None:
    vectors = load_vectors()
    assert [r["name"] for r in vectors["values"]] == VALUE_TYPES
    for r in vectors["values"]:
        assert len(r["values"]) >= MIN_VALUES_PER_TYPE, r["name"]
    for side, cases in (("client_messages", CLIENT_CASES), ("server_messages", SERVER_CASES)):
        counts = Counter(rec["case"] for rec in vectors[side])
        assert sorted(counts) == sorted(cases)
        assert min(counts.values()) >= MIN_MESSAGES_PER_CASE, counts


# --------------------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------------------
def _has_nan(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, dict):
        return any(_has_nan(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_nan(v) for v in value)
    if isinstance(value, SumValue | Some):
        return _has_nan(value.value)
    return False


def _float_signs_equal(a: Any, b: Any) -> bool:
    """``==`` treats -0.0 and 0.0 as equal; compare the signs of zeros too."""
    if isinstance(a, float) and isinstance(b, float):
        return math.copysign(1.0, a) == math.copysign(1.0, b) or math.isnan(a)
    if isinstance(a, dict) and isinstance(b, dict):
        return all(_float_signs_equal(a[k], b[k]) for k in a if k in b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return all(_float_signs_equal(x, y) for x, y in zip(a, b, strict=False))
    if isinstance(a, SumValue | Some) and isinstance(b, SumValue | Some):
        return _float_signs_equal(a.value, b.value)
    return True


def _display(value: Any) -> str:
    if isinstance(value, Identity | ConnectionId | uuid.UUID):
        return str(value)
    raise AssertionError(f"no display form for {type(value).__name__}")


@pytest.mark.parametrize("name", VALUE_TYPES)
def test_values_match_ts_sdk(name: str) -> None:
    record = value_records()[name]
    ty = AlgebraicType.from_json(record["type"])
    assert ty.to_json() == record["type"], "our typed SATS-JSON of the type differs from the SDK's"
    codec = compile_codec(ty)
    failures: list[str] = []

    def fail(i: int, item: dict[str, Any], what: str) -> None:
        failures.append(f"#{i} json={json.dumps(item['json'])[:200]} hex={item['hex'][:200]}: {what}")

    for i, item in enumerate(record["values"]):
        data = bytes.fromhex(item["hex"])
        try:
            expected = from_json(item["json"], ty)
        except Exception as exc:
            fail(i, item, f"from_json raised {exc!r}")
            continue
        try:
            decoded = codec.decode(data)
        except Exception as exc:
            fail(i, item, f"decode raised {exc!r}")
            decoded = None
        try:
            encoded: bytes | None = codec.encode(expected)
        except Exception as exc:
            fail(i, item, f"encode raised {exc!r}")
            encoded = None
        if encoded is not None and encoded != data:
            fail(i, item, f"encode gave {encoded.hex()[:200]}")
        if _has_nan(expected):  # NaN != NaN: compare the bytes of the decoded value instead
            if decoded is not None and codec.encode(decoded) != data:
                fail(i, item, f"decode/encode of a NaN value gave {codec.encode(decoded).hex()}")
        elif decoded is not None and (decoded != expected or not _float_signs_equal(decoded, expected)):
            fail(i, item, f"decode gave {decoded!r:.200}, expected {expected!r:.200}")
        if "display" in item and _display(expected) != item["display"]:
            fail(i, item, f"str() is {_display(expected)!r}, the SDK prints {item['display']!r}")
        if len(failures) >= MAX_REPORTED:
            break

    assert not failures, f"{name}: mismatches with the TypeScript SDK:\n" + "\n".join(failures)


# --------------------------------------------------------------------------------------------------
# messages: desc (JSON written by ts_vectors.mjs) -> our dataclasses
# --------------------------------------------------------------------------------------------------
def _row_list(d: dict[str, Any]) -> BsatnRowList:
    hint = d["size_hint"]
    data = bytes.fromhex(d["rows_data"])
    if "FixedSize" in hint:
        return BsatnRowList(hint["FixedSize"], None, data)
    return BsatnRowList(None, tuple(int(x) for x in hint["RowOffsets"]), data)


def _query_rows(d: dict[str, Any]) -> QueryRows:
    return QueryRows(tuple(SingleTableRows(t["table"], _row_list(t["rows"])) for t in d["tables"]))


def _table_update_rows(d: dict[str, Any]) -> PersistentTableRows | EventTableRows:
    if "PersistentTable" in d:
        p = d["PersistentTable"]
        return PersistentTableRows(_row_list(p["inserts"]), _row_list(p["deletes"]))
    return EventTableRows(_row_list(d["EventTable"]["events"]))


def _transaction_update(d: dict[str, Any]) -> TransactionUpdate:
    return TransactionUpdate(
        tuple(
            QuerySetUpdate(
                qs["query_set_id"],
                tuple(
                    TableUpdate(tu["table_name"], tuple(_table_update_rows(r) for r in tu["rows"]))
                    for tu in qs["tables"]
                ),
            )
            for qs in d["query_sets"]
        )
    )


def client_message(d: dict[str, Any]) -> Any:
    kind = d["type"]
    if kind == "Subscribe":
        return Subscribe(d["request_id"], d["query_set_id"], tuple(d["query_strings"]))
    if kind == "Unsubscribe":
        flags = {"Default": UnsubscribeFlags.DEFAULT, "SendDroppedRows": UnsubscribeFlags.SEND_DROPPED_ROWS}
        return Unsubscribe(d["request_id"], d["query_set_id"], flags[d["flags"]])
    if kind == "OneOffQuery":
        return OneOffQuery(d["request_id"], d["query_string"])
    if kind == "CallReducer":
        return CallReducer(d["request_id"], d["flags"], d["reducer"], bytes.fromhex(d["args"]))
    if kind == "CallProcedure":
        return CallProcedure(d["request_id"], d["flags"], d["procedure"], bytes.fromhex(d["args"]))
    raise AssertionError(f"unknown client message {kind}")


def server_message(d: dict[str, Any]) -> Any:
    kind = d["type"]
    if kind == "InitialConnection":
        return InitialConnection(
            Identity.from_string(d["identity"]), ConnectionId.from_string(d["connection_id"]), d["token"]
        )
    if kind == "SubscribeApplied":
        return SubscribeApplied(d["request_id"], d["query_set_id"], _query_rows(d["rows"]))
    if kind == "UnsubscribeApplied":
        rows = None if d["rows"] is None else _query_rows(d["rows"])
        return UnsubscribeApplied(d["request_id"], d["query_set_id"], rows)
    if kind == "SubscriptionError":
        return SubscriptionError(d["request_id"], d["query_set_id"], d["error"])
    if kind == "TransactionUpdate":
        return _transaction_update(d)
    if kind == "OneOffQueryResult":
        r = d["result"]
        result = Ok(_query_rows(r["ok"])) if "ok" in r else Err(r["err"])
        return OneOffQueryResult(d["request_id"], result)
    if kind == "ReducerResult":
        r = d["result"]
        outcome: Any
        if "Ok" in r:
            outcome = ReducerOk(
                bytes.fromhex(r["Ok"]["ret_value"]), _transaction_update(r["Ok"]["transaction_update"])
            )
        elif "OkEmpty" in r:
            outcome = ReducerOkEmpty()
        elif "Err" in r:
            outcome = ReducerErr(bytes.fromhex(r["Err"]))
        else:
            outcome = ReducerInternalError(r["InternalError"])
        return ReducerResult(d["request_id"], Timestamp(int(d["timestamp"])), outcome)
    if kind == "ProcedureResult":
        s = d["status"]
        status: Any = (
            ProcedureReturned(bytes.fromhex(s["Returned"]))
            if "Returned" in s
            else ProcedureInternalError(s["InternalError"])
        )
        return ProcedureResult(
            status,
            Timestamp(int(d["timestamp"])),
            TimeDuration(int(d["total_host_execution_duration"])),
            d["request_id"],
        )
    raise AssertionError(f"unknown server message {kind}")


def _row_lists(value: Any) -> list[BsatnRowList]:
    """Every BsatnRowList inside a message."""
    if isinstance(value, BsatnRowList):
        return [value]
    if isinstance(value, tuple):
        return [r for v in value for r in _row_lists(v)]
    if hasattr(value, "__dataclass_fields__"):
        return [r for f in value.__dataclass_fields__ for r in _row_lists(getattr(value, f))]
    return []


def _check_messages(
    records: list[dict[str, Any]], build: Any, decode: Any, encode: Any, what: str
) -> list[str]:
    failures: list[str] = []
    for i, rec in enumerate(records):
        data = bytes.fromhex(rec["hex"])
        label = f"{rec['case']} #{i} desc={json.dumps(rec['desc'])[:300]} hex={rec['hex'][:300]}"
        expected = build(rec["desc"])
        try:
            decoded = decode(data)
        except Exception as exc:
            failures.append(f"{label}: decode_{what}_message raised {exc!r}")
        else:
            if decoded != expected:
                failures.append(f"{label}: decoded {decoded!r:.400}")
        try:
            encoded = encode(expected)
        except Exception as exc:
            failures.append(f"{label}: encode_{what}_message raised {exc!r}")
        else:
            if encoded != data:
                failures.append(f"{label}: encoded {encoded.hex()[:300]}")
        for rl in _row_lists(expected):  # the server-shaped row lists split into rows
            try:
                rows = rl.rows()
            except Exception as exc:
                failures.append(f"{label}: BsatnRowList.rows() raised {exc!r}")
            else:
                if b"".join(rows) != rl.rows_data or len(rows) != len(rl):
                    failures.append(f"{label}: BsatnRowList.rows() split {rl!r:.200} wrongly")
        if len(failures) >= MAX_REPORTED:
            break
    return failures


@pytest.mark.parametrize("case", CLIENT_CASES)
def test_client_messages_match_ts_sdk(case: str) -> None:
    records = message_records()[case]
    failures = _check_messages(
        records, client_message, decode_client_message, encode_client_message, "client"
    )
    assert not failures, f"{case}: mismatches with the TypeScript SDK:\n" + "\n".join(failures)


@pytest.mark.parametrize("case", SERVER_CASES)
def test_server_messages_match_ts_sdk(case: str) -> None:
    records = message_records()[case]
    failures = _check_messages(
        records, server_message, decode_server_message, encode_server_message, "server"
    )
    assert not failures, f"{case}: mismatches with the TypeScript SDK:\n" + "\n".join(failures)


def test_message_samples_cover_every_shape() -> None:
    """The random samples hold every nested variant: both TableUpdateRows kinds, both RowSizeHint kinds,
    empty and non-empty lists, non-zero call flags."""
    records = message_records()
    tx = [server_message(r["desc"]) for r in records["TransactionUpdate"]]
    tx += [server_message(r["desc"]).result.transaction_update for r in records["ReducerResult/Ok"]]
    rows = [r for u in tx for qs in u.query_sets for t in qs.tables for r in t.rows]
    assert any(isinstance(r, PersistentTableRows) for r in rows)
    assert any(isinstance(r, EventTableRows) for r in rows)
    assert any(not u.query_sets for u in tx) and any(len(u.query_sets) > 1 for u in tx)
    lists = [rl for u in tx for rl in _row_lists(u)]
    assert any(rl.row_size is not None for rl in lists)
    assert any(rl.row_offsets is not None and len(rl.row_offsets) > 1 for rl in lists)
    assert any(rl.row_offsets == () for rl in lists)
    calls = [client_message(r["desc"]) for r in records["CallReducer"] + records["CallProcedure"]]
    assert any(c.flags for c in calls) and any(c.args == b"" for c in calls)


# --------------------------------------------------------------------------------------------------
# frames
# --------------------------------------------------------------------------------------------------
def test_v3_client_frame() -> None:
    frame = load_vectors()["frames"]["client_v3"]
    data = bytes.fromhex(frame["hex"])  # made by the SDK's encodeClientMessagesV3
    expected = [client_message(d) for d in frame["messages"]]
    assert len(expected) > 1
    assert decode_client_frame(data, PROTOCOL_V3) == expected
    assert encode_client_frame(expected, PROTOCOL_V3) == data


def test_v3_server_frame() -> None:
    frame = load_vectors()["frames"]["server_v3"]
    data = bytes.fromhex(frame["hex"])
    expected = [server_message(d) for d in frame["messages"]]
    assert len(expected) > 1
    assert data == b"\x00" + b"".join(encode_server_message(m) for m in expected)
    assert decode_server_frame(data, PROTOCOL_V3) == expected
    assert encode_server_frame(expected, PROTOCOL_V3) == data


def test_v3_gzip_server_frame() -> None:
    frame = load_vectors()["frames"]["server_v3_gzip"]
    data = bytes.fromhex(frame["hex"])  # tag 2 + zlib.gzipSync(concatenated messages)
    assert data[0] == 2
    expected = [server_message(d) for d in frame["messages"]]
    assert decode_server_frame(data, PROTOCOL_V3) == expected


def test_v2_gzip_server_frame() -> None:
    frame = load_vectors()["frames"]["server_v2_gzip"]
    data = bytes.fromhex(frame["hex"])
    (expected,) = [server_message(d) for d in frame["messages"]]
    assert data[0] == 2
    assert decompress(data) == bytes.fromhex(frame["message_hex"])
    assert decode_server_frame(data, PROTOCOL_V2) == [expected]
    assert decode_server_frame(data, PROTOCOL_V3) == [expected]
