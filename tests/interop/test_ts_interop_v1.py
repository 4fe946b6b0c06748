"""Byte-level interop of our v1 codecs (``v1.bsatn.spacetimedb``, issue #16) with the official TypeScript SDK 1.x
(npm ``spacetimedb@1.12.0``, installed as ``spacetimedb-v1``, see package.json): test_ts_interop.py for v1.

Here random instances of every v1 message are made with our dataclasses, and ``ts_codec_v1.mjs`` has the SDK
take them:

* server messages go as frames our ``v1.encode_server_frame`` wrote, uncompressed, gzip and brotli, with
  table updates whose query updates are uncompressed or compressed on their own (``v1.compress_query_update``).
  The SDK opens each frame (its WebsocketDecompressAdapter) and reads it (its ``ServerMessage`` type), and opens
  each compressed query update; what it read, rendered as JSON, must be what we put in;
* client messages go as JSON, which the SDK turns into its own ``ClientMessage`` values and writes; our
  ``v1.decode_client_frame`` must read those bytes as the message we meant, and our encoder write the same.

SDK 1.12.0 reads no Brotli (it throws on a brotli frame or query update): those are opened with node:zlib and
then read with the SDK's types, and the test checks the SDK's refusal of brotli frames, so that a later SDK
that reads them shows up here.

Setup: ``cd tests/interop && npm ci`` (Node 20). Without it these tests fail, unless
``SPACETIME_GAME_SKIP_INTEROP=1`` is set, which skips them. ``SPACETIME_GAME_INTEROP_SEED`` picks another seed.
"""

from __future__ import annotations

import functools
import json
import os
import random
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from spacetime_game.sdk.protocol import BsatnRowList, Compression, v1
from spacetime_game.sdk.sats import ConnectionId, Identity, TimeDuration, Timestamp

from .test_ts_server import HERE, _require_interop

pytestmark = pytest.mark.interop

SDK_VERSION = "1.12.0"
PACKAGES = ("spacetimedb-v1",)
SCRIPT = "ts_codec_v1.mjs"
NODE_TIMEOUT = 120.0
SEED = int(os.environ.get("SPACETIME_GAME_INTEROP_SEED", "20261126"))
SAMPLES_PER_CASE = 12
FRAME_COMPRESSIONS = (Compression.NONE, Compression.GZIP, Compression.BROTLI)
MAX_REPORTED = 8
#: what the SDK's WebsocketDecompressAdapter throws on a brotli frame (src/sdk/websocket_decompress_adapter.ts)
SDK_BROTLI_REFUSAL = "Brotli Compression not supported"

U32_EDGES = (0, 1, 2**31, 2**32 - 1)
U64_EDGES = (0, 2**32, 2**53 + 1, 2**64 - 1)
I64_EDGES = (-(2**63), -1, 0, 1, 2**53 + 1, 2**63 - 1)
TABLES = ("user", "message", "player", "logged_out_player", "Ünïcødé_表", "")
SQLS = ("SELECT * FROM user", "SELECT * FROM message WHERE sent > 0", 'SELECT * FROM "Ünïcødé_表"', "")
# (no U+FEFF: the SDK reads strings with a TextDecoder, which drops a leading byte order mark)
CHARS = "abcXYZ019 _-*'\"\\\n\t\x00\x7fé表\u200b😀\U0010ffff"


# --------------------------------------------------------------------------------------------------
# random v1 messages
# --------------------------------------------------------------------------------------------------
@dataclass
class Samples:
    """Random parts of v1 messages; ``opened`` maps each compressed query update made to its content."""

    rng: random.Random
    opened: dict[v1.CompressedQueryUpdate, v1.QueryUpdate] = field(default_factory=dict)

    def integer(self, edges: tuple[int, ...], lo: int, hi: int) -> int:
        """An edge value, a small one or any in [lo, hi]."""
        r = self.rng
        if r.random() < 0.15:
            return r.choice(edges)
        return r.randint(lo, hi) if r.random() < 0.5 else r.randint(max(lo, -1000), min(hi, 10**6))

    def u32(self) -> int:
        return self.integer(U32_EDGES, 0, 2**32 - 1)

    def u64(self) -> int:
        return self.integer(U64_EDGES, 0, 2**64 - 1)

    def i64(self) -> int:
        return self.integer(I64_EDGES, -(2**63), 2**63 - 1)

    def blob(self, hi: int = 24) -> bytes:
        return self.rng.randbytes(self.rng.randint(0, hi))

    def string(self, hi: int = 24) -> str:
        r = self.rng
        if r.random() < 0.3:
            return r.choice(SQLS + TABLES)
        return "".join(r.choice(CHARS) for _ in range(r.randint(0, hi)))

    def option(self, make: Callable[[], Any]) -> Any:
        return make() if self.rng.random() < 0.5 else None

    def rows(self) -> BsatnRowList:
        """FixedSize (same-size rows) or RowOffsets (mixed sizes, or none), as a server makes them."""
        r = self.rng
        n = 0 if r.random() < 0.15 else r.randint(1, 5)
        if r.random() < 0.5:
            size = r.choice((1, 4, 16, r.randint(1, 300)))
            rows = [r.randbytes(size) for _ in range(n)]
        else:
            rows = [r.randbytes(r.randint(0, 40)) for _ in range(n)]
        return BsatnRowList.from_rows(rows)

    def query_update(self) -> v1.QueryUpdate | v1.CompressedQueryUpdate:
        update = v1.QueryUpdate(self.rows(), self.rows())
        compression = self.rng.choice((Compression.NONE, Compression.BROTLI, Compression.GZIP))
        if compression == Compression.NONE:
            return update
        compressed = v1.compress_query_update(update, compression)
        self.opened[compressed] = update
        return compressed

    def table_update(self) -> v1.TableUpdate:
        updates = tuple(self.query_update() for _ in range(self.rng.randint(0, 3)))
        return v1.TableUpdate(self.u32(), self.string(), self.u64(), updates)

    def database_update(self) -> v1.DatabaseUpdate:
        return v1.DatabaseUpdate(tuple(self.table_update() for _ in range(self.rng.randint(0, 3))))

    def subscribe_rows(self) -> v1.SubscribeRows:
        return v1.SubscribeRows(self.u32(), self.string(), self.table_update())

    def identity(self) -> Identity:
        return Identity(self.rng.randbytes(32))

    def connection_id(self) -> ConnectionId:
        return ConnectionId(bytes(16) if self.rng.random() < 0.2 else self.rng.randbytes(16))  # (zero: none)

    def transaction(self, status: v1.UpdateStatus) -> v1.TransactionUpdate:
        call = v1.ReducerCallInfo(self.string(), self.u32(), self.blob(), self.u32())
        energy = self.integer((0, 2**64, 2**128 - 1), 0, 2**128 - 1)
        return v1.TransactionUpdate(
            status,
            Timestamp(self.i64()),
            self.identity(),
            self.connection_id(),
            call,
            energy,
            TimeDuration(self.i64()),
        )

    def procedure_result(self, status: Any) -> v1.ProcedureResult:
        return v1.ProcedureResult(status, Timestamp(self.i64()), TimeDuration(self.i64()), self.u32())

    def one_off_response(self, error: str | None) -> v1.OneOffQueryResponse:
        tables = (
            ()
            if error
            else tuple(v1.OneOffTable(self.string(), self.rows()) for _ in range(self.rng.randint(0, 3)))
        )
        return v1.OneOffQueryResponse(self.blob(16), error, tables, TimeDuration(self.i64()))


Make = Callable[[Samples], Any]

SERVER_CASES: dict[str, Make] = {
    "InitialSubscription": lambda s: v1.InitialSubscription(
        s.database_update(), s.u32(), TimeDuration(s.i64())
    ),
    "TransactionUpdate/Committed": lambda s: s.transaction(v1.Committed(s.database_update())),
    "TransactionUpdate/Failed": lambda s: s.transaction(v1.Failed(s.string(80))),
    "TransactionUpdate/OutOfEnergy": lambda s: s.transaction(v1.OutOfEnergy()),
    "TransactionUpdateLight": lambda s: v1.TransactionUpdateLight(s.u32(), s.database_update()),
    "IdentityToken": lambda s: v1.IdentityToken(s.identity(), s.string(300), s.connection_id()),
    "OneOffQueryResponse/ok": lambda s: s.one_off_response(None),
    "OneOffQueryResponse/error": lambda s: s.one_off_response(s.string(80) or "error"),
    "SubscribeApplied": lambda s: v1.SubscribeApplied(s.u32(), s.u64(), s.u32(), s.subscribe_rows()),
    "UnsubscribeApplied": lambda s: v1.UnsubscribeApplied(s.u32(), s.u64(), s.u32(), s.subscribe_rows()),
    "SubscriptionError/some": lambda s: v1.SubscriptionError(
        s.u64(), s.u32(), s.u32(), s.u32(), s.string(80)
    ),
    "SubscriptionError/none": lambda s: v1.SubscriptionError(s.u64(), None, None, None, s.string(80)),
    "SubscriptionError/mixed": lambda s: v1.SubscriptionError(
        s.u64(), s.option(s.u32), s.option(s.u32), s.option(s.u32), s.string(80)
    ),
    "SubscribeMultiApplied": lambda s: v1.SubscribeMultiApplied(
        s.u32(), s.u64(), s.u32(), s.database_update()
    ),
    "UnsubscribeMultiApplied": lambda s: v1.UnsubscribeMultiApplied(
        s.u32(), s.u64(), s.u32(), s.database_update()
    ),
    "ProcedureResult/Returned": lambda s: s.procedure_result(v1.ProcedureReturned(s.blob(40))),
    "ProcedureResult/OutOfEnergy": lambda s: s.procedure_result(v1.ProcedureOutOfEnergy()),
    "ProcedureResult/InternalError": lambda s: s.procedure_result(v1.ProcedureInternalError(s.string(80))),
}


def _queries(s: Samples) -> tuple[str, ...]:
    return tuple(s.string(60) for _ in range(s.rng.randint(0, 4)))


CLIENT_CASES: dict[str, Make] = {
    "CallReducer/FullUpdate": lambda s: v1.CallReducer(
        s.string(), s.blob(40), s.u32(), v1.CallReducerFlags.FULL_UPDATE
    ),
    "CallReducer/NoSuccessNotify": lambda s: v1.CallReducer(
        s.string(), s.blob(40), s.u32(), v1.CallReducerFlags.NO_SUCCESS_NOTIFY
    ),
    "Subscribe": lambda s: v1.Subscribe(_queries(s), s.u32()),
    "OneOffQuery": lambda s: v1.OneOffQuery(s.blob(16), s.string(60)),
    "SubscribeSingle": lambda s: v1.SubscribeSingle(s.string(60), s.u32(), s.u32()),
    "SubscribeMulti": lambda s: v1.SubscribeMulti(_queries(s), s.u32(), s.u32()),
    "Unsubscribe": lambda s: v1.Unsubscribe(s.u32(), s.u32()),
    "UnsubscribeMulti": lambda s: v1.UnsubscribeMulti(s.u32(), s.u32()),
    "CallProcedure": lambda s: v1.CallProcedure(
        s.string(), s.blob(40), s.u32(), s.rng.choice((0, 0, 1, 255))
    ),
}


# --------------------------------------------------------------------------------------------------
# the SDK's shape of a message, as JSON (ts_codec_v1.mjs renders what the SDK read the same way)
# --------------------------------------------------------------------------------------------------
def _sum(tag: str, value: Any) -> dict[str, Any]:
    return {"tag": tag, "value": value}


def _query_id(query_id: int) -> dict[str, Any]:
    return {"id": query_id}


def _micros(t: Timestamp | TimeDuration) -> dict[str, str]:
    if isinstance(t, Timestamp):
        return {"__timestamp_micros_since_unix_epoch__": str(t.micros_since_epoch)}
    return {"__time_duration_micros__": str(t.micros)}


def _rows(rl: BsatnRowList) -> dict[str, Any]:
    if rl.row_size is not None:
        hint = _sum("FixedSize", rl.row_size)
    else:
        assert rl.row_offsets is not None
        hint = _sum("RowOffsets", [str(o) for o in rl.row_offsets])
    return {"sizeHint": hint, "rowsData": rl.rows_data.hex()}


def _query_update(u: v1.QueryUpdate) -> dict[str, Any]:
    return {"deletes": _rows(u.deletes), "inserts": _rows(u.inserts)}


class Render:
    """The JSON rendering of a v1 message in the SDK's shape; a compressed query update gets its content,
    from ``opened``, as ``opened`` (as ts_codec_v1.mjs renders one)."""

    def __init__(self, opened: dict[v1.CompressedQueryUpdate, v1.QueryUpdate]) -> None:
        self.opened = opened

    def message(self, m: Any) -> dict[str, Any]:
        name = type(m).__name__
        return _sum(name, getattr(self, name)(m))

    def update(self, u: v1.QueryUpdate | v1.CompressedQueryUpdate) -> dict[str, Any]:
        if isinstance(u, v1.QueryUpdate):
            return _sum("Uncompressed", _query_update(u))
        tag = {Compression.GZIP: "Gzip", Compression.BROTLI: "Brotli"}[u.compression]
        return {**_sum(tag, u.data.hex()), "opened": _query_update(self.opened[u])}

    def table(self, t: v1.TableUpdate) -> dict[str, Any]:
        updates = [self.update(u) for u in t.updates]
        return {
            "tableId": t.table_id,
            "tableName": t.table_name,
            "numRows": str(t.num_rows),
            "updates": updates,
        }

    def database(self, d: v1.DatabaseUpdate) -> dict[str, Any]:
        return {"tables": [self.table(t) for t in d.tables]}

    def subscribe_rows(self, r: v1.SubscribeRows) -> dict[str, Any]:
        return {"tableId": r.table_id, "tableName": r.table_name, "tableRows": self.table(r.table_rows)}

    def applied(self, m: Any, **rest: Any) -> dict[str, Any]:
        return {
            "requestId": m.request_id,
            "totalHostExecutionDurationMicros": str(m.total_host_execution_duration_micros),
            "queryId": _query_id(m.query_id),
            **rest,
        }

    # ---- server messages (named as the SDK's variants, which are our class names)
    def InitialSubscription(self, m: v1.InitialSubscription) -> dict[str, Any]:
        return {
            "databaseUpdate": self.database(m.database_update),
            "requestId": m.request_id,
            "totalHostExecutionDuration": _micros(m.total_host_execution_duration),
        }

    def TransactionUpdate(self, m: v1.TransactionUpdate) -> dict[str, Any]:
        if isinstance(m.status, v1.Committed):
            status = _sum("Committed", self.database(m.status.update))
        elif isinstance(m.status, v1.Failed):
            status = _sum("Failed", m.status.message)
        else:
            status = _sum("OutOfEnergy", {})
        call = m.reducer_call
        return {
            "status": status,
            "timestamp": _micros(m.timestamp),
            "callerIdentity": m.caller_identity.to_hex(),
            "callerConnectionId": m.caller_connection_id.to_hex(),
            "reducerCall": {
                "reducerName": call.reducer_name,
                "reducerId": call.reducer_id,
                "args": call.args.hex(),
                "requestId": call.request_id,
            },
            "energyQuantaUsed": {"quanta": str(m.energy_quanta_used)},
            "totalHostExecutionDuration": _micros(m.total_host_execution_duration),
        }

    def TransactionUpdateLight(self, m: v1.TransactionUpdateLight) -> dict[str, Any]:
        return {"requestId": m.request_id, "update": self.database(m.update)}

    def IdentityToken(self, m: v1.IdentityToken) -> dict[str, Any]:
        return {"identity": m.identity.to_hex(), "token": m.token, "connectionId": m.connection_id.to_hex()}

    def OneOffQueryResponse(self, m: v1.OneOffQueryResponse) -> dict[str, Any]:
        return {
            "messageId": m.message_id.hex(),
            "error": m.error,
            "tables": [{"tableName": t.table_name, "rows": _rows(t.rows)} for t in m.tables],
            "totalHostExecutionDuration": _micros(m.total_host_execution_duration),
        }

    def SubscribeApplied(self, m: v1.SubscribeApplied) -> dict[str, Any]:
        return self.applied(m, rows=self.subscribe_rows(m.rows))

    def UnsubscribeApplied(self, m: v1.UnsubscribeApplied) -> dict[str, Any]:
        return self.applied(m, rows=self.subscribe_rows(m.rows))

    def SubscriptionError(self, m: v1.SubscriptionError) -> dict[str, Any]:
        return {
            "totalHostExecutionDurationMicros": str(m.total_host_execution_duration_micros),
            "requestId": m.request_id,
            "queryId": m.query_id,
            "tableId": m.table_id,
            "error": m.error,
        }

    def SubscribeMultiApplied(self, m: v1.SubscribeMultiApplied) -> dict[str, Any]:
        return self.applied(m, update=self.database(m.update))

    def UnsubscribeMultiApplied(self, m: v1.UnsubscribeMultiApplied) -> dict[str, Any]:
        return self.applied(m, update=self.database(m.update))

    def ProcedureResult(self, m: v1.ProcedureResult) -> dict[str, Any]:
        if isinstance(m.status, v1.ProcedureReturned):
            status = _sum("Returned", m.status.value.hex())
        elif isinstance(m.status, v1.ProcedureInternalError):
            status = _sum("InternalError", m.status.message)
        else:
            status = _sum("OutOfEnergy", {})
        return {
            "status": status,
            "timestamp": _micros(m.timestamp),
            "totalHostExecutionDuration": _micros(m.total_host_execution_duration),
            "requestId": m.request_id,
        }

    # ---- client messages
    def CallReducer(self, m: v1.CallReducer) -> dict[str, Any]:
        return {"reducer": m.reducer, "args": m.args.hex(), "requestId": m.request_id, "flags": m.flags}

    def Subscribe(self, m: v1.Subscribe) -> dict[str, Any]:
        return {"queryStrings": list(m.query_strings), "requestId": m.request_id}

    def OneOffQuery(self, m: v1.OneOffQuery) -> dict[str, Any]:
        return {"messageId": m.message_id.hex(), "queryString": m.query_string}

    def SubscribeSingle(self, m: v1.SubscribeSingle) -> dict[str, Any]:
        return {"query": m.query, "requestId": m.request_id, "queryId": _query_id(m.query_id)}

    def SubscribeMulti(self, m: v1.SubscribeMulti) -> dict[str, Any]:
        return {
            "queryStrings": list(m.query_strings),
            "requestId": m.request_id,
            "queryId": _query_id(m.query_id),
        }

    def Unsubscribe(self, m: v1.Unsubscribe) -> dict[str, Any]:
        return {"requestId": m.request_id, "queryId": _query_id(m.query_id)}

    UnsubscribeMulti = Unsubscribe

    def CallProcedure(self, m: v1.CallProcedure) -> dict[str, Any]:
        return {"procedure": m.procedure, "args": m.args.hex(), "requestId": m.request_id, "flags": m.flags}


# --------------------------------------------------------------------------------------------------
# one node run for the session
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Record:
    """One message, what it renders as, and what the SDK made of it: of a server message's ``frame``,
    ``{decoded, frame_error}``; of a client message, ``{hex, decoded}``; ``{error}`` if it threw."""

    case: str
    message: Any
    expected: dict[str, Any]
    sdk: dict[str, Any]
    frame: bytes = b""


@dataclass(frozen=True)
class Vectors:
    server: list[Record]
    client: list[Record]
    opened: dict[v1.CompressedQueryUpdate, v1.QueryUpdate]


def _make(cases: dict[str, Make], samples: Samples) -> list[tuple[str, Any]]:
    return [(case, make(samples)) for case, make in cases.items() for _ in range(SAMPLES_PER_CASE)]


@functools.cache
def _run(node: str) -> Vectors:
    samples = Samples(random.Random(SEED))
    server = [
        (case, m, v1.encode_server_frame(m, compression, threshold=0))
        for case, m in _make(SERVER_CASES, samples)
        for compression in FRAME_COMPRESSIONS
    ]
    client = _make(CLIENT_CASES, samples)
    render = Render(samples.opened)
    expected_server = [render.message(m) for _, m, _ in server]
    expected_client = [render.message(m) for _, m in client]
    request = {
        "server": [{"hex": f.hex()} for _, _, f in server],
        "client": [{"json": j} for j in expected_client],
    }
    proc = subprocess.run(
        [node, SCRIPT],
        cwd=HERE,
        input=json.dumps(request).encode(),
        capture_output=True,
        timeout=NODE_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"node {SCRIPT} failed (exit {proc.returncode}):\n{proc.stderr.decode(errors='replace')[-4000:]}",
            pytrace=False,
        )
    out = json.loads(proc.stdout)
    assert out["sdk_version"] == SDK_VERSION, f"expected spacetimedb {SDK_VERSION}, got {out['sdk_version']}"
    assert len(out["server"]) == len(server) and len(out["client"]) == len(client)
    return Vectors(
        [
            Record(c, m, e, r, f)
            for (c, m, f), e, r in zip(server, expected_server, out["server"], strict=True)
        ],
        [Record(c, m, e, r) for (c, m), e, r in zip(client, expected_client, out["client"], strict=True)],
        samples.opened,
    )


def vectors() -> Vectors:
    """The messages and what the SDK made of them; fails (or skips) the calling test when the SDK cannot
    be run (called from the tests, not a fixture, so that a missing ``npm ci`` fails the tests)."""
    return _run(_require_interop(PACKAGES))


def _report(case: str, failures: list[str]) -> None:
    assert not failures, f"{case}: mismatches with the TypeScript SDK {SDK_VERSION}:\n" + "\n".join(failures)


def _diff(ours: Any, theirs: Any, path: str = "") -> str:
    """Where two JSON renderings first differ."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for key in sorted(set(ours) | set(theirs)):
            if ours.get(key, "<missing>") != theirs.get(key, "<missing>"):
                return _diff(ours.get(key, "<missing>"), theirs.get(key, "<missing>"), f"{path}.{key}")
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            if a != b:
                return _diff(a, b, f"{path}[{i}]")
    return f"at {path or '<top>'}: ours {json.dumps(ours)[:300]}, the SDK's {json.dumps(theirs)[:300]}"


# --------------------------------------------------------------------------------------------------
# the tests
# --------------------------------------------------------------------------------------------------
def test_samples_cover_every_shape() -> None:
    """Every case, every frame compression, every CompressableQueryUpdate variant and both row size hints
    (including an empty RowOffsets) are in the samples."""
    v = vectors()
    assert Counter(r.case for r in v.server) == {
        c: SAMPLES_PER_CASE * len(FRAME_COMPRESSIONS) for c in SERVER_CASES
    }
    assert Counter(r.case for r in v.client) == dict.fromkeys(CLIENT_CASES, SAMPLES_PER_CASE)
    assert {r.frame[0] for r in v.server} == {0, 1, 2}
    updates = [u for r in v.server for u in _query_updates(r.expected)]
    assert {u["tag"] for u in updates} == {"Uncompressed", "Gzip", "Brotli"}
    hints = [h for u in updates for h in _size_hints(u)]
    assert {h["tag"] for h in hints} == {"FixedSize", "RowOffsets"}
    assert any(h["value"] == [] for h in hints) and any(
        len(h["value"]) > 1 for h in hints if h["tag"] == "RowOffsets"
    )
    errors = [r.message for r in v.server if r.case == "SubscriptionError/mixed"]
    assert {e.request_id is None for e in errors} == {True, False}


def _query_updates(value: Any) -> list[dict[str, Any]]:
    """Every rendered CompressableQueryUpdate in a rendered message."""
    if isinstance(value, list):
        return [u for item in value for u in _query_updates(item)]
    if not isinstance(value, dict):
        return []
    if "updates" in value and "tableName" in value:
        return list(value["updates"])
    return [u for item in value.values() for u in _query_updates(item)]


def _size_hints(update: dict[str, Any]) -> list[dict[str, Any]]:
    content = update.get("opened", update["value"])
    return [content["deletes"]["sizeHint"], content["inserts"]["sizeHint"]]


@pytest.mark.parametrize("case", SERVER_CASES)
def test_server_messages_decode_in_ts_sdk(case: str) -> None:
    """Our frames of each server message, uncompressed, gzip and brotli, read by the SDK as what we put in:
    every field, with compressed query updates opened."""
    failures: list[str] = []
    for i, r in enumerate(x for x in vectors().server if x.case == case):
        label = f"#{i} {r.message!r:.300} frame={r.frame.hex()[:200]}"
        if "error" in r.sdk:
            failures.append(f"{label}: the SDK failed: {r.sdk['error'][:1500]}")
        elif r.sdk["decoded"] != r.expected:
            failures.append(f"{label}: {_diff(r.expected, r.sdk['decoded'])}")
        elif r.frame[0] == Compression.BROTLI:  # SDK 1.12.0 throws on brotli frames (and query updates)
            if not (r.sdk["frame_error"] or "").startswith(SDK_BROTLI_REFUSAL):
                failures.append(
                    f"{label}: the SDK read a brotli frame ({r.sdk['frame_error']!r}); update the test"
                )
        elif r.sdk["frame_error"] is not None:
            failures.append(f"{label}: the SDK refused the frame: {r.sdk['frame_error']}")
        if len(failures) >= MAX_REPORTED:
            break
    _report(case, failures)


@pytest.mark.parametrize("case", CLIENT_CASES)
def test_client_messages_match_ts_sdk(case: str) -> None:
    """Each client message written by the SDK: we read its bytes as the message meant and write the same
    bytes, also when re-encoding what we read."""
    failures: list[str] = []
    for i, r in enumerate(x for x in vectors().client if x.case == case):
        label = f"#{i} {r.message!r:.300}"
        if "error" in r.sdk:
            failures.append(f"{label}: the SDK failed: {r.sdk['error'][:1500]}")
            continue
        data = bytes.fromhex(r.sdk["hex"])
        label += f" sdk={data.hex()[:300]}"
        if r.sdk["decoded"] != r.expected:  # (checks the JSON -> SDK value step of ts_codec_v1.mjs)
            failures.append(
                f"{label}: the SDK's message is not the one meant: {_diff(r.expected, r.sdk['decoded'])}"
            )
        try:
            decoded = v1.decode_client_frame(data)
        except Exception as exc:
            failures.append(f"{label}: decode_client_frame raised {exc!r}")
        else:
            if decoded != r.message:
                failures.append(f"{label}: decode_client_frame gave {decoded!r:.300}")
            elif (again := v1.encode_client_frame(decoded)) != data:
                failures.append(f"{label}: re-encoding what we read gave {again.hex()[:300]}")
        ours = v1.encode_client_frame(r.message)
        if ours != data:
            failures.append(f"{label}: encode_client_frame gave {ours.hex()[:300]}")
        if len(failures) >= MAX_REPORTED:
            break
    _report(case, failures)


def test_compressed_query_updates_open_to_what_was_compressed() -> None:
    """The SDK opened every Gzip / Brotli query update of the samples (gzip with its own ``decompress``; the
    contents are compared in test_server_messages_decode_in_ts_sdk), and our ``v1.query_update`` opens each
    to the rows we compressed."""
    v = vectors()
    theirs = [u for r in v.server for u in _query_updates(r.sdk.get("decoded")) if "opened" in u]
    ours = [u for r in v.server for u in _query_updates(r.expected) if "opened" in u]
    assert len(theirs) == len(ours) and {u["tag"] for u in theirs} == {"Gzip", "Brotli"}
    for compressed, content in v.opened.items():
        assert _query_update(v1.query_update(compressed)) == _query_update(content)
