"""The official SpacetimeDB TypeScript SDK (npm ``spacetimedb``, see package.json) as a client of our server.

Each test starts ``spacetime-game serve demos/chat/module.py --in-memory`` on a port the OS picks, runs one
scenario of ``ts_chat.mjs`` (real ``DbConnection``s built from the hand-written bindings in
``chat_bindings.mjs``), and asserts on the JSON it prints: the row callbacks each client saw (with their
event kinds and values), reducer outcomes, client caches, the messages on the wire (decoded with the SDK's
own message types), one-off query results and subscription handle states. The scenarios are in
``chat_scenarios.mjs``; test_ts_server_v1.py runs them with SDK 1.12.0 over the v1 protocol and checks what
both SDK generations must see with the ``check_*`` functions here.

Setup: ``cd tests/interop && npm ci`` (Node 20). Without it these tests fail, unless
``SPACETIME_GAME_SKIP_INTEROP=1`` is set, which skips them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spacetime_game.server import DevServerProcess

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MODULE = ROOT / "demos" / "chat" / "module.py"
DATABASE = "quickstart-chat"
SDK_VERSION = "2.10.1"
READY_TIMEOUT = 30.0  # seconds for the server to log "ready"
STEP_TIMEOUT_MS = 5000  # each step of a scenario (one wait for a callback / reply)
DEADLINE_MS = 30000  # a whole scenario, enforced by ts_chat.mjs itself
NODE_TIMEOUT = 45.0  # seconds, the last resort if node itself hangs
V2 = "v2.bsatn.spacetimedb"
V3 = "v3.bsatn.spacetimedb"

#: SDK log lines a scenario may produce (anything else at WARN/ERROR fails the test)
ONE_OFF_WARNING = "Received OneOffQueryResult but SDK does not expose one-off query APIs yet."
CONNECT_ERROR = "Error connecting to SpacetimeDB WS"


# --------------------------------------------------------------------------------------------------
# prerequisites, server, scenario runner
# --------------------------------------------------------------------------------------------------
def _require_interop(packages: tuple[str, ...] = ("spacetimedb", "ws")) -> str:
    """The path of ``node``; fails (or skips) the calling test when the SDK (the npm ``packages``, as named
    in node_modules) cannot be run.

    Called from the tests themselves rather than from a fixture, so that a missing ``npm ci`` shows up as
    failed tests, not as setup errors."""
    if os.environ.get("SPACETIME_GAME_SKIP_INTEROP") == "1":
        pytest.skip("SPACETIME_GAME_SKIP_INTEROP=1")
    for package in packages:
        if not (HERE / "node_modules" / package / "package.json").is_file():
            pytest.fail(
                f"the npm package {package!r} is not installed: run `npm ci` in tests/interop "
                "(or set SPACETIME_GAME_SKIP_INTEROP=1 to skip the interop tests)",
                pytrace=False,
            )
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "`node` (Node.js 20) is not on PATH; it is needed for tests/interop "
            "(or set SPACETIME_GAME_SKIP_INTEROP=1 to skip the interop tests)",
            pytrace=False,
        )
    return node


@contextlib.contextmanager
def running_server(tmp_path: Path) -> Iterator[DevServerProcess]:
    """``spacetime-game serve`` of the chat module, in memory, on a port the OS picks (the public
    ``DevServerProcess``); stopped with SIGTERM (killed if that does not work) on the way out."""
    with DevServerProcess(MODULE, DATABASE).start(READY_TIMEOUT) as server:
        yield server
    assert "Traceback" not in server.log, f"the server logged an exception:\n{server.log}"


def run_scenario(
    node: str,
    server: DevServerProcess,
    scenario: str,
    *options: str,
    script: str = "ts_chat.mjs",
    sdk_version: str = SDK_VERSION,
) -> dict[str, Any]:
    """Run one scenario of ``script`` (ts_chat.mjs, or ts_chat_v1.mjs for SDK 1.x) against ``server``; its
    JSON, or a failed test with the details. The script must report the SDK version ``sdk_version``."""
    cmd = [
        node,
        script,
        scenario,
        "--uri",
        f"ws://{server.address}",
        "--db",
        DATABASE,
        "--step-timeout",
        str(STEP_TIMEOUT_MS),
        "--deadline",
        str(DEADLINE_MS),
        *options,
    ]
    try:
        proc = subprocess.run(cmd, cwd=HERE, capture_output=True, timeout=NODE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(cmd[1:])} hung for {NODE_TIMEOUT} s\nserver log:\n{server.log[-4000:]}")
        raise AssertionError from exc  # pytest.fail raises; this keeps type checkers quiet
    stderr = proc.stderr.decode(errors="replace")
    if proc.returncode == 3:
        pytest.fail(f"run `npm ci` in tests/interop: {stderr}", pytrace=False)
    try:
        data: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"{' '.join(cmd[1:])} exited with {proc.returncode} and printed no JSON\n"
            f"stdout:\n{proc.stdout.decode(errors='replace')[-4000:]}\nstderr:\n{stderr[-4000:]}"
        )
    if data.get("failed") or proc.returncode != 0:
        summary = json.dumps({k: v for k, v in data.items() if k != "clients"}, indent=1)[-6000:]
        pytest.fail(
            f"scenario {scenario} {' '.join(options)} failed at step {data.get('failed')}\n"
            f"output (without clients):\n{summary}\nnode stderr:\n{stderr[-3000:]}\n"
            f"server log:\n{server.log[-4000:]}",
            pytrace=False,
        )
    assert data["sdk_version"] == sdk_version, (
        f"expected spacetimedb {sdk_version}, got {data['sdk_version']}"
    )
    return data


def sql(server: DevServerProcess, query: str) -> list[dict[str, Any]]:
    req = urllib.request.Request(
        f"{server.url}/v1/database/{DATABASE}/sql", data=query.encode(), method="POST"
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        result: list[dict[str, Any]] = json.loads(resp.read())
    return result


# --------------------------------------------------------------------------------------------------
# checks shared by the scenarios
# --------------------------------------------------------------------------------------------------
def user(identity: str, name: str | None, online: bool) -> dict[str, Any]:
    return {"identity": identity, "name": name, "online": online}


def connected_clients(
    data: dict[str, Any], allowed_sdk_log: tuple[str, ...]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The clients of a scenario that connected, by name, once what holds for every SDK generation is
    checked: the SDK decoded every frame and logged no unexpected warning or error (nor anything outside
    ``allowed_sdk_log``); each connected client has an identity and a token and used the right URL."""
    unexpected = [line for line in data["sdk_log"] if not any(ok in line for ok in allowed_sdk_log)]
    assert not unexpected, f"the SDK logged: {unexpected}"
    for name, c in data["clients"].items():
        assert not c["tap_errors"], (
            f"{name}: frames the SDK's message types could not decode: {c['tap_errors']}"
        )
        if c["identity"] is None:
            continue  # never connected
        assert re.fullmatch(r"[0-9a-f]{64}", c["identity"]), c["identity"]
        assert c["has_token"], name
        assert c["ws_path"] == f"/v1/database/{DATABASE}/subscribe", c["ws_path"]
        yield name, c


def check_clients(data: dict[str, Any], *, allowed_sdk_log: tuple[str, ...] = ()) -> None:
    """What must hold for every client of every scenario (connected_clients(), and): each connected client
    got an InitialConnection with its identity first; every Subscribe, Unsubscribe and CallReducer got its
    own answer."""
    for name, c in connected_clients(data, allowed_sdk_log):
        first = c["server_messages"][0]
        assert first == {"tag": "InitialConnection", "identity": c["identity"]}, (name, first)
        replies = {
            (m["tag"], m["requestId"]): m
            for m in c["server_messages"]
            if "requestId" in m and m["tag"] != "TransactionUpdate"
        }
        for sent in c["client_messages"]:
            tag, rid = sent["tag"], sent["requestId"]
            expected = {
                "Subscribe": "SubscribeApplied",
                "Unsubscribe": "UnsubscribeApplied",
                "CallReducer": "ReducerResult",
                "OneOffQuery": "OneOffQueryResult",
            }[tag]
            reply = replies.get((expected, rid))
            assert reply is not None, f"{name}: no {expected} for {sent}; got {c['server_messages']}"
            if "querySetId" in sent:
                assert reply["querySetId"] == sent["querySetId"], (sent, reply)
        assert not [m for m in c["server_messages"] if m["tag"] == "SubscriptionError"], c["server_messages"]
        assert c["disconnected"] == {"error": None}, f"{name}: {c['disconnected']}"


def updates_of(client: dict[str, Any], identity: str) -> list[dict[str, Any]]:
    return [
        e
        for e in client["events"]
        if e["table"] == "user" and e["op"] == "update" and e["new"]["identity"] == identity
    ]


def by_identity(users: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(users, key=lambda u: u["identity"])


def reducer_error(call: dict[str, Any]) -> dict[str, Any]:
    """A failed call's report, without what depends on the SDK generation (its error class or status)."""
    return {k: call[k] for k in ("reducer", "args", "ok", "error")}


# --------------------------------------------------------------------------------------------------
# what every SDK generation must see (test_ts_server_v1.py runs the same scenarios with SDK 1.x)
# --------------------------------------------------------------------------------------------------
def check_chat(
    data: dict[str, Any],
    t0: int,
    t1: int,
    stored: list[dict[str, Any]],
    *,
    others_event: str,
    lifecycle_event: str,
) -> None:
    """The chat scenario's rows, names, errors, messages and disconnect, as the clients' caches and row
    callbacks saw them. ``others_event`` is the event kind of the row callbacks for another client's
    reducer call, ``lifecycle_event`` that for a client connecting or disconnecting; ``t0``..``t1`` (µs)
    brackets the run, ``stored`` is the server's ``SELECT * FROM message``."""
    a, b = data["clients"]["A"], data["clients"]["B"]
    ida, idb = a["identity"], b["identity"]
    assert ida != idb
    seen, calls = data["seen"], data["calls"]
    assert data["a_got_long_message_intact"] is True

    # subscribing: A's cache holds A; B's initial rows hold both, then A sees B arrive
    assert data["a_cache_after_subscribe"] == [user(ida, None, True)]
    assert by_identity(data["b_cache_after_subscribe"]) == by_identity(
        [user(ida, None, True), user(idb, None, True)]
    )
    assert a["events"][0]["event"] == "SubscribeApplied" and a["events"][0]["row"] == user(ida, None, True)
    assert seen["a_sees_b_insert"]["event"] == lifecycle_event
    assert seen["a_sees_b_insert"]["row"] == user(idb, None, True)

    # names: the caller gets a Reducer event carrying its call
    assert calls["a_set_name"]["ok"] is True and calls["b_set_name"]["ok"] is True
    own = seen["a_own_name"]
    assert (own["event"], own["reducer"], json.loads(own["args"])) == (
        "Reducer",
        "set_name",
        {"name": "alice"},
    )
    assert (own["old"], own["new"]) == (user(ida, None, True), user(ida, "alice", True))
    assert seen["b_sees_a_name"]["event"] == others_event
    assert (seen["b_sees_a_name"]["old"], seen["b_sees_a_name"]["new"]) == (
        user(ida, None, True),
        user(ida, "alice", True),
    )
    assert seen["a_sees_b_name"]["event"] == others_event
    assert (seen["a_sees_b_name"]["old"], seen["a_sees_b_name"]["new"]) == (
        user(idb, None, True),
        user(idb, "bob", True),
    )
    # exactly one rename per name was seen, never an insert/delete pair instead of an update
    for c in (a, b):
        assert [e["new"]["name"] for e in updates_of(c, ida)] == ["alice"], c["events"]
        assert [e["op"] for e in c["events"] if e["table"] == "user" and e["op"] != "update"] == [
            "insert",
            "insert",
        ]

    # errors: the reducer's message reaches the caller; nothing changed
    assert reducer_error(calls["a_empty_name"]) == {
        "reducer": "setName",
        "args": {"name": ""},
        "ok": False,
        "error": "Names must not be empty",
    }
    assert reducer_error(calls["b_empty_message"]) == {
        "reducer": "sendMessage",
        "args": {"text": ""},
        "ok": False,
        "error": "Messages must not be empty",
    }
    for c in (a, b):
        assert not [
            e for e in c["events"] if e["table"] == "user" and (e.get("new") or e["row"])["name"] == ""
        ]
        assert not [e for e in c["events"] if e["table"] == "message" and e["row"]["text"] == ""]

    # messages: each client sees the other's, with the sender's identity and the server's timestamp
    assert seen["a_own_message"]["event"] == "Reducer" and seen["a_own_message"]["reducer"] == "send_message"
    # the caller's event timestamp is the reducer's ctx.timestamp, which the module stored as `sent`
    assert seen["a_own_message"]["timestamp"] == seen["a_own_message"]["row"]["sent"]
    assert seen["b_sees_a_message"]["event"] == others_event
    assert seen["b_sees_a_message"]["row"] == seen["a_own_message"]["row"]
    assert seen["b_sees_a_message"]["row"]["sender"] == ida
    assert seen["b_sees_a_message"]["row"]["text"] == "hello from alice"
    assert seen["a_sees_b_message"]["event"] == others_event
    assert seen["a_sees_b_message"]["row"]["sender"] == idb
    assert seen["a_sees_b_message"]["row"]["text"] == "hi from bob"
    by_sent = sorted(data["a_messages"], key=lambda m: m["sent"])
    assert [(m["sender"], m["text"]) for m in by_sent] == [
        (ida, "hello from alice"),
        (idb, "hi from bob"),
        (idb, f"<{data['long_text_length']} chars>"),
    ]
    assert sorted(data["b_messages"], key=lambda m: m["sent"]) == by_sent
    for m in by_sent:
        assert t0 - 5_000_000 <= m["sent"] <= t1 + 5_000_000, (m, t0, t1)  # microseconds since the epoch
    assert len({m["sent"] for m in by_sent}) == 3
    (stored_messages,) = stored
    assert len(stored_messages["rows"]) == 3

    # going offline: A sees B's row updated to online=false, name kept
    offline = seen["a_sees_b_offline"]
    assert offline["event"] == lifecycle_event
    assert (offline["old"], offline["new"]) == (user(idb, "bob", True), user(idb, "bob", False))
    assert by_identity(data["a_users_after_b_left"]) == by_identity(
        [user(ida, "alice", True), user(idb, "bob", False)]
    )


def check_reconnect(data: dict[str, Any]) -> None:
    """The reconnect scenario (run with compression "none"): the same identity and row back with the saved
    token, a new identity without one, a malformed token refused, as the observer saw it."""
    clients, seen = data["clients"], data["seen"]
    identity = clients["A1"]["identity"]

    assert data["same_identity"] is True
    assert clients["A2"]["identity"] == identity
    assert data["a2_token_is_saved_token"] is True  # the SDK keeps the token it was given
    assert data["ws_token_differs_from_saved"] is True
    assert clients["A1"]["ws_query"] == {"compression": "None"}
    assert clients["A2"]["ws_query"] == {"token": "<token>", "compression": "None"}
    for name in ("O", "A1", "A2", "C"):
        assert clients[name]["compression_tags"] == [0], (name, clients[name]["compression_tags"])

    assert (seen["o_sees_a1_name"]["old"], seen["o_sees_a1_name"]["new"]) == (
        user(identity, None, True),
        user(identity, "carol", True),
    )
    assert (seen["o_sees_a1_offline"]["old"], seen["o_sees_a1_offline"]["new"]) == (
        user(identity, "carol", True),
        user(identity, "carol", False),
    )
    assert (seen["o_sees_a2_online"]["old"], seen["o_sees_a2_online"]["new"]) == (
        user(identity, "carol", False),
        user(identity, "carol", True),
    )
    assert data["a2_own_row"] == user(identity, "carol", True)
    assert data["a2_set_name"]["ok"] is True
    assert seen["o_sees_a2_name"]["new"] == user(identity, "carol2", True)
    assert (seen["o_sees_a2_offline"]["old"], seen["o_sees_a2_offline"]["new"]) == (
        user(identity, "carol2", True),
        user(identity, "carol2", False),
    )
    # the observer saw exactly: renamed, offline, online, renamed, offline (one row, never re-inserted)
    assert [(e["new"]["name"], e["new"]["online"]) for e in updates_of(clients["O"], identity)] == [
        ("carol", True),
        ("carol", False),
        ("carol", True),
        ("carol2", True),
        ("carol2", False),
    ]
    inserts = [e for e in clients["O"]["events"] if e["op"] == "insert" and e["row"]["identity"] == identity]
    assert [e["row"] for e in inserts] == [user(identity, None, True)]

    assert data["anonymous_identity_differs"] is True
    assert clients["C"]["identity"] not in (None, identity)
    assert data["bad_token"]["connected"] is False
    assert "Failed to verify token" in data["bad_token"]["error"], data["bad_token"]
    assert clients["X"]["identity"] is None


def check_one_off_and_unsubscribe(data: dict[str, Any], stored: list[dict[str, Any]]) -> None:
    """The oneoff-unsubscribe scenario's query results, and what the clients' caches and row callbacks saw
    around ``unsubscribeThen()`` and ``unsubscribe()``; ``stored`` is the server's ``SELECT text FROM
    message``."""
    a, b = data["clients"]["A"], data["clients"]["B"]
    ida, idb = a["identity"], b["identity"]
    one_off = data["one_off"]

    # one-off queries
    assert one_off["messages"]["ok"] is True
    ((table, rows),) = [(t["table"], t["rows"]) for t in one_off["messages"]["tables"]]
    assert table == "message"
    assert [(r["sender"], r["text"]) for r in sorted(rows, key=lambda r: r["sent"])] == [
        (ida, "first"),
        (idb, "second"),
    ]
    ((table, rows),) = [(t["table"], t["rows"]) for t in one_off["users"]["tables"]]
    assert table == "user"
    assert by_identity(rows) == by_identity([user(ida, None, True), user(idb, None, True)])
    ((rows),) = [t["rows"] for t in one_off["filtered"]["tables"]]
    assert [(r["sender"], r["text"]) for r in rows] == [(idb, "second")]
    ((rows),) = [t["rows"] for t in one_off["quoted"]["tables"]]
    assert sorted(r["identity"] for r in rows) == sorted([ida, idb])
    assert one_off["bad"]["ok"] is False and "no_such_table" in one_off["bad"]["error"]

    # unsubscribeThen(): callback, handle ended, rows deleted (event UnsubscribeApplied), cache empty
    assert data["messages_active_before"] is True
    assert data["messages_unsubscribe_then_called"] is True
    assert data["messages_ended"] is True and data["messages_active_after"] is False
    deleted = data["messages_deleted_on_unsubscribe"]
    assert {e["event"] for e in deleted} == {"UnsubscribeApplied"}
    assert sorted(e["row"]["text"] for e in deleted) == ["first", "second"]
    assert data["message_cache_after_unsubscribe"] == []

    # after it: no message rows reach A, neither for its own call nor for B's
    assert all(c["ok"] for c in data["after_unsubscribe_calls"]), data["after_unsubscribe_calls"]
    assert data["seen"]["a_sees_b_rename"]["new"] == user(idb, "dave", True)
    assert data["message_events_after_unsubscribe"] == []
    assert data["message_cache_later"] == []

    # unsubscribe(): the handle ends once the server confirmed it; user rows leave; nothing more arrives
    assert data["users_active_after"] is False
    assert sorted(e["row"]["identity"] for e in data["users_deleted_on_unsubscribe"]) == sorted([ida, idb])
    assert data["user_cache_after_unsubscribe"] == []
    assert data["events_after_all_unsubscribed"] == []
    assert data["one_off_still_works_with_no_subscription"] is True
    ((rows),) = [t["rows"] for t in one_off["users_later"]["tables"]]
    assert user(idb, "dave2", True) in rows

    # the server has all four messages, whoever was subscribed
    (result,) = stored
    assert sorted(row[0] for row in result["rows"]) == ["first", "fourth", "second", "third"]


# --------------------------------------------------------------------------------------------------
# the scenarios
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", ["default", "v2"])
def test_two_clients_chat(tmp_path: Path, protocol: str) -> None:
    """Two clients subscribe to both tables, name themselves, chat, get the reducers' errors and see each
    other's rows, updates and disconnect. ``default`` lets the SDK offer v3+v2 (our server picks v3);
    ``v2`` makes the SDK offer only v2.bsatn.spacetimedb (through a ``withWSFn`` factory)."""
    node = _require_interop()
    with running_server(tmp_path) as server:
        t0 = time.time_ns() // 1000
        data = run_scenario(node, server, "chat", "--protocol", protocol)
        t1 = time.time_ns() // 1000
        stored = sql(server, "SELECT * FROM message")
    check_clients(data)
    # v2: another client's call reaches the others as a plain Transaction, without the reducer
    check_chat(data, t0, t1, stored, others_event="Transaction", lifecycle_event="Transaction")
    a, b = data["clients"]["A"], data["clients"]["B"]
    calls = data["calls"]

    # the negotiated protocol, the URL and the compression envelope
    for c in (a, b):
        if protocol == "v2":
            assert c["offered_protocols"] == [V2] and c["protocol"] == V2
        else:
            assert c["offered_protocols"] == [V3, V2] and c["protocol"] == V3
        assert c["ws_query"] == {"compression": "Gzip"}  # (the SDK never sends connection_id: an SDK bug)
        # the >1 KiB message reached both in gzip frames (tag 2); small frames are uncompressed (tag 0)
        assert c["compression_tags"] == [0, 2], c["compression_tags"]

    # errors: the reducer's message reaches the promise as a SenderError
    assert calls["a_empty_name"]["errorClass"] == "SenderError"
    assert calls["b_empty_message"]["errorClass"] == "SenderError"
    assert [m["outcome"] for m in a["server_messages"] if m["tag"] == "ReducerResult"] == ["Ok", "Err", "Ok"]


def test_reconnect_with_saved_token(tmp_path: Path) -> None:
    """A client reconnects with the token it was given (``withToken``: the SDK swaps it for a short-lived one
    at POST /v1/identity/websocket-token and passes that as ``?token=``) and gets its identity and its row
    back; an observer sees it go offline and come back. A new anonymous client gets a new identity, and a
    malformed token is refused (onConnectError). Compression "none" here: every frame must carry tag 0."""
    node = _require_interop()
    with running_server(tmp_path) as server:
        data = run_scenario(node, server, "reconnect", "--compression", "none")
    check_clients(data, allowed_sdk_log=(CONNECT_ERROR,))
    check_reconnect(data)


def test_one_off_query_and_unsubscribe(tmp_path: Path) -> None:
    """One-off queries (SDK 2.10.1 has no API for them: ts_chat.mjs sends the SDK-encoded OneOffQuery on the
    connection's socket and decodes the OneOffQueryResult with the SDK's ServerMessage), then
    ``unsubscribeThen()`` and ``unsubscribe()``: the handles end, the dropped rows leave the cache through
    onDelete, and later changes to those tables are no longer delivered."""
    node = _require_interop()
    with running_server(tmp_path) as server:
        data = run_scenario(node, server, "oneoff-unsubscribe")
        stored = sql(server, "SELECT text FROM message")
    check_clients(data, allowed_sdk_log=(ONE_OFF_WARNING,))
    check_one_off_and_unsubscribe(data, stored)
    a = data["clients"]["A"]

    # the wire: Unsubscribe with SendDroppedRows, answered with the dropped rows; then only user updates
    unsubscribes = [m for m in a["client_messages"] if m["tag"] == "Unsubscribe"]
    assert [(m["querySetId"], m["flags"]) for m in unsubscribes] == [
        (0, "SendDroppedRows"),
        (1, "SendDroppedRows"),
    ]
    after = data["server_messages_after_unsubscribe"]
    assert after[0] == {
        "tag": "UnsubscribeApplied",
        "requestId": unsubscribes[0]["requestId"],
        "querySetId": 0,
        "tables": [{"table": "message", "rows": 2}],
    }
    tables_after = {t["table"] for m in after for qs in m.get("querySets", []) for t in qs["tables"]}
    assert tables_after == {"user"}, after
