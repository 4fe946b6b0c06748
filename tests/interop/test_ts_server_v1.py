"""The official SpacetimeDB TypeScript SDK 1.x (npm ``spacetimedb@1.12.0``, installed as ``spacetimedb-v1``,
see package.json) as a client of our server, over the v1 protocol (``v1.bsatn.spacetimedb``, issue #16).

The scenarios are those SDK 2.10.1 runs in test_ts_server.py (chat_scenarios.mjs), driven by
``ts_chat_v1.mjs`` through real ``DbConnection``s built from ``chat_bindings_v1.mjs``; what both SDK
generations must see is checked by the same functions. On top of that, what makes v1 different: every
subscriber gets the full ``TransactionUpdate`` of another client's call (its reducer callbacks fire with the
caller's identity and the arguments), the caller learns its outcome from its own reducer callback, and
subscriptions are ``SubscribeMulti`` / ``UnsubscribeMulti`` by query id.

Setup as for test_ts_server.py (``cd tests/interop && npm ci``, Node 20); without it these tests fail,
unless ``SPACETIME_GAME_SKIP_INTEROP=1`` is set, which skips them.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from .test_ts_server import (
    CONNECT_ERROR,
    _require_interop,
    check_chat,
    check_one_off_and_unsubscribe,
    check_reconnect,
    connected_clients,
    run_scenario,
    running_server,
    sql,
)

pytestmark = pytest.mark.interop

SDK_VERSION = "1.12.0"
SCRIPT = "ts_chat_v1.mjs"
PACKAGES = ("spacetimedb-v1", "spacetimedb", "ws")  # (the bindings share code with the 2.x ones)
V1 = "v1.bsatn.spacetimedb"

#: What answers each v1 client message (the SDK sends request id 0 for all of them, so subscriptions are
#: matched by query id, one-off queries by message id and reducer calls by their order)
ANSWERS = {
    "SubscribeMulti": ("SubscribeMultiApplied", "queryId"),
    "UnsubscribeMulti": ("UnsubscribeMultiApplied", "queryId"),
    "OneOffQuery": ("OneOffQueryResponse", "messageId"),
}


def run_v1(node: str, server: Any, scenario: str, *options: str) -> dict[str, Any]:
    return run_scenario(node, server, scenario, *options, script=SCRIPT, sdk_version=SDK_VERSION)


def own_updates(client: dict[str, Any]) -> list[dict[str, Any]]:
    """The TransactionUpdates of this client's own calls."""
    return [
        m
        for m in client["server_messages"]
        if m["tag"] == "TransactionUpdate"
        and (m["caller"], m["callerConnectionId"]) == (client["identity"], client["connection_id"])
    ]


def calls_seen(client: dict[str, Any]) -> list[tuple[str, str, str, Any, bool]]:
    """(reducer, caller, status, args, own) of every reducer callback of a client, in order."""
    return [(e["reducer"], e["caller"], e["status"], e["args"], e["own"]) for e in client["reducer_events"]]


def check_clients_v1(data: dict[str, Any], *, allowed_sdk_log: tuple[str, ...] = ()) -> None:
    """What must hold for every client of every scenario (connected_clients(), and): each connected client
    spoke v1 and got an IdentityToken with its identity and connection id first; every SubscribeMulti,
    UnsubscribeMulti and OneOffQuery got its own answer, and every CallReducer the caller's
    TransactionUpdate, in order; every table update counts its rows right."""
    for name, c in connected_clients(data, allowed_sdk_log):
        assert re.fullmatch(r"[0-9a-f]{32}", c["connection_id"]), c["connection_id"]
        assert c["offered_protocols"] == [V1] and c["protocol"] == V1, (name, c["protocol"])
        first = c["server_messages"][0]
        assert first == {
            "tag": "IdentityToken",
            "identity": c["identity"],
            "connectionId": c["connection_id"],
        }, (name, first)
        for sent in c["client_messages"]:
            if sent["tag"] in ANSWERS:
                tag, key = ANSWERS[sent["tag"]]
                answers = [m for m in c["server_messages"] if m["tag"] == tag and m[key] == sent[key]]
                assert len(answers) == 1, (
                    f"{name}: {len(answers)} {tag} for {sent}; got {c['server_messages']}"
                )
        calls = [m for m in c["client_messages"] if m["tag"] == "CallReducer"]
        assert [(m["reducer"], m["requestId"], m["flags"]) for m in calls] == [
            (m["reducer"], m["requestId"], 0) for m in own_updates(c)
        ], (name, calls, own_updates(c))
        for m in c["server_messages"]:
            if m["tag"] == "OneOffQueryResponse":
                continue  # (its tables are row counts)
            for t in m.get("tables", []):
                rows = sum(u["inserts"] + u["deletes"] for u in t["updates"] if "inserts" in u)
                assert t["numRows"] == rows, (name, m)
        assert not [m for m in c["server_messages"] if m["tag"] == "SubscriptionError"], c["server_messages"]
        assert c["disconnected"] == {"error": None}, f"{name}: {c['disconnected']}"


# --------------------------------------------------------------------------------------------------
# the scenarios
# --------------------------------------------------------------------------------------------------
def test_two_clients_chat_v1(tmp_path: Path) -> None:
    """The chat scenario of SDK 2.10.1, with SDK 1.12.0: the same rows, names, errors, messages and
    disconnect. On v1, B's reducer callbacks see A's calls with A's identity, connection id and arguments,
    and its row callbacks get them as Reducer events; a failed call is told to its caller only; a client
    (dis)connecting reaches the others as an UnknownTransaction (lifecycle reducers are not in the
    bindings)."""
    node = _require_interop(PACKAGES)
    with running_server(tmp_path) as server:
        t0 = time.time_ns() // 1000
        data = run_v1(node, server, "chat")
        t1 = time.time_ns() // 1000
        stored = sql(server, "SELECT * FROM message")
    check_clients_v1(data)
    check_chat(data, t0, t1, stored, others_event="Reducer", lifecycle_event="UnknownTransaction")
    a, b = data["clients"]["A"], data["clients"]["B"]
    ida, idb = a["identity"], b["identity"]
    seen, calls = data["seen"], data["calls"]

    # the URL and the compression envelope
    for c in (a, b):
        assert c["ws_query"] == {"compression": "Gzip"}  # (the SDK never sends connection_id: an SDK bug)
        # the >1 KiB message reached both in gzip frames (tag 2); small frames are uncompressed (tag 0)
        assert c["compression_tags"] == [0, 2], c["compression_tags"]

    # B's reducer callbacks saw A's calls, with A's identity, connection id and arguments
    for key, reducer, args in (
        ("b_sees_a_set_name_call", "set_name", {"name": "alice"}),
        ("b_sees_a_call", "send_message", {"text": "hello from alice"}),
    ):
        call = seen[key]
        assert (call["reducer"], call["caller"], call["caller_connection_id"]) == (
            reducer,
            ida,
            a["connection_id"],
        ), call
        assert (call["args"], call["status"], call["own"]) == (args, "Committed", False), call
    assert seen["b_sees_a_call"]["timestamp"] == seen["b_sees_a_message"]["row"]["sent"]
    # ... and its row callbacks got them as Reducer events naming the caller and the arguments
    for key, caller in (("b_sees_a_name", ida), ("b_sees_a_message", ida), ("a_sees_b_name", idb)):
        assert seen[key]["caller"] == caller, seen[key]
    assert (seen["b_sees_a_message"]["reducer"], json.loads(seen["b_sees_a_message"]["args"])) == (
        "send_message",
        {"text": "hello from alice"},
    )

    # every callback each client saw: its own calls (the failed ones too) and the other's successful ones
    long_text = f"<{data['long_text_length']} chars>"
    a_calls = [
        ("set_name", ida, "Committed", {"name": "alice"}, True),
        ("set_name", idb, "Committed", {"name": "bob"}, False),
        ("set_name", ida, "Failed", {"name": ""}, True),
        ("send_message", ida, "Committed", {"text": "hello from alice"}, True),
        ("send_message", idb, "Committed", {"text": "hi from bob"}, False),
        ("send_message", idb, "Committed", {"text": long_text}, False),
    ]
    assert calls_seen(a) == a_calls
    b_calls = [
        ("set_name", ida, "Committed", {"name": "alice"}, False),
        ("set_name", idb, "Committed", {"name": "bob"}, True),
        ("send_message", idb, "Failed", {"text": ""}, True),
        ("send_message", ida, "Committed", {"text": "hello from alice"}, False),
        ("send_message", idb, "Committed", {"text": "hi from bob"}, True),
        ("send_message", idb, "Committed", {"text": long_text}, True),
    ]
    assert calls_seen(b) == b_calls

    # errors: the caller's callback gets status Failed with the reducer's message
    assert calls["a_empty_name"]["status"] == "Failed" and calls["b_empty_message"]["status"] == "Failed"
    assert [(m["status"], m["error"]) for m in own_updates(a)] == [
        ("Committed", None),
        ("Failed", "Names must not be empty"),
        ("Committed", None),
    ]
    assert [m["tables"] for m in own_updates(a) if m["status"] == "Failed"] == [[]]

    # on the wire, B got A's calls as full TransactionUpdates; A got B's (dis)connect with B as the caller
    updates = {
        c["identity"]: [m for m in c["server_messages"] if m["tag"] == "TransactionUpdate"] for c in (a, b)
    }
    from_a = [(m["reducer"], m["status"]) for m in updates[idb] if m["caller"] == ida]
    assert from_a == [("set_name", "Committed"), ("send_message", "Committed")]
    lifecycle = [m for m in updates[ida] if m["reducer"] not in ("set_name", "send_message")]
    assert [(m["caller"], m["callerConnectionId"]) for m in lifecycle] == [(idb, b["connection_id"])] * 2
    assert not [m for c in (a, b) for m in c["server_messages"] if m["tag"] == "TransactionUpdateLight"]


def test_two_clients_chat_v1_light_mode(tmp_path: Path) -> None:
    """The chat scenario with ``withLightMode(true)`` (``?light=true``): the same rows, names, errors,
    messages and disconnect, but other clients' calls arrive as TransactionUpdateLight, without the caller
    or the reducer (row events UnknownTransaction, no reducer callbacks); a client's own calls still come
    back as full TransactionUpdates."""
    node = _require_interop(PACKAGES)
    with running_server(tmp_path) as server:
        t0 = time.time_ns() // 1000
        data = run_v1(node, server, "chat", "--light", "on")
        t1 = time.time_ns() // 1000
        stored = sql(server, "SELECT * FROM message")
    check_clients_v1(data)
    check_chat(data, t0, t1, stored, others_event="UnknownTransaction", lifecycle_event="UnknownTransaction")
    a, b = data["clients"]["A"], data["clients"]["B"]
    assert "b_sees_a_call" not in data["seen"]
    for c in (a, b):
        assert c["ws_query"] == {"compression": "Gzip", "light": "true"}
        assert {m["tag"] for m in c["server_messages"][2:]} == {"TransactionUpdate", "TransactionUpdateLight"}
        assert own_updates(c) == [m for m in c["server_messages"] if m["tag"] == "TransactionUpdate"]
        assert all(e["own"] for e in c["reducer_events"]), c["reducer_events"]
    ida = a["identity"]
    assert calls_seen(a) == [
        ("set_name", ida, "Committed", {"name": "alice"}, True),
        ("set_name", ida, "Failed", {"name": ""}, True),
        ("send_message", ida, "Committed", {"text": "hello from alice"}, True),
    ]


def test_reconnect_with_saved_token_v1(tmp_path: Path) -> None:
    """SDK 1.12.0 reconnects with the token it was given (``withToken``, the same short-lived token exchange
    as 2.x) and gets its identity and its row back, with a new connection id; the rest as with SDK 2.10.1.
    Compression "none" here: every frame must carry tag 0."""
    node = _require_interop(PACKAGES)
    with running_server(tmp_path) as server:
        data = run_v1(node, server, "reconnect", "--compression", "none")
    check_clients_v1(data, allowed_sdk_log=(CONNECT_ERROR,))
    check_reconnect(data)
    clients, seen = data["clients"], data["seen"]
    identity = clients["A1"]["identity"]
    assert clients["A2"]["connection_id"] != clients["A1"]["connection_id"]
    # the observer's row callbacks named the caller of each rename: A1, then A2 (the same identity)
    assert [(seen[k]["event"], seen[k]["caller"]) for k in ("o_sees_a1_name", "o_sees_a2_name")] == [
        ("Reducer", identity),
        ("Reducer", identity),
    ]
    renames = [
        m["callerConnectionId"]
        for m in clients["O"]["server_messages"]
        if m["tag"] == "TransactionUpdate" and m["reducer"] == "set_name"
    ]
    assert renames == [clients["A1"]["connection_id"], clients["A2"]["connection_id"]]


def test_one_off_query_and_unsubscribe_v1(tmp_path: Path) -> None:
    """One-off queries (SDK 1.12.0 has no API for them and throws on an answer it did not ask for:
    ts_chat_v1.mjs sends the SDK-encoded OneOffQuery with a message id on the connection's socket, and takes
    the OneOffQueryResponse from the tap), then ``unsubscribeThen()`` and ``unsubscribe()``
    (UnsubscribeMulti): the same results as with SDK 2.10.1."""
    node = _require_interop(PACKAGES)
    with running_server(tmp_path) as server:
        data = run_v1(node, server, "oneoff-unsubscribe")
        stored = sql(server, "SELECT text FROM message")
    check_clients_v1(data)
    check_one_off_and_unsubscribe(data, stored)
    a, b = data["clients"]["A"], data["clients"]["B"]

    # one-off answers carry the query's message id back; the bad query's carries the error
    queries = {m["messageId"]: m["query"] for m in a["client_messages"] if m["tag"] == "OneOffQuery"}
    answers = {m["messageId"]: m for m in a["server_messages"] if m["tag"] == "OneOffQueryResponse"}
    assert answers.keys() == queries.keys() and len(queries) == 6
    errors = {queries[k]: m["error"] for k, m in answers.items() if m["error"] is not None}
    assert list(errors) == ["SELECT * FROM no_such_table"], errors

    # the wire: one SubscribeMulti per query id, UnsubscribeMulti answered with the dropped rows as deletes
    subscribes = [(m["queryId"], m["queries"]) for m in a["client_messages"] if m["tag"] == "SubscribeMulti"]
    assert subscribes == [(0, ["SELECT * FROM message"]), (1, ["SELECT * FROM user"])]
    unsubscribes = [m["queryId"] for m in a["client_messages"] if m["tag"] == "UnsubscribeMulti"]
    assert unsubscribes == [0, 1]
    after = data["server_messages_after_unsubscribe"]
    assert after[0]["tag"] == "UnsubscribeMultiApplied" and after[0]["queryId"] == 0
    ((table,),) = [after[0]["tables"]]
    assert (table["table"], table["updates"]) == ("message", [{"inserts": 0, "deletes": 2}])
    # after it, A's own call still gets its TransactionUpdate (with no rows), B's message none at all
    tx_after = [m for m in after if m["tag"] == "TransactionUpdate"]
    first = tx_after[0]
    assert (first["reducer"], first["caller"], first["tables"]) == ("send_message", a["identity"], [])
    tables_after = {t["table"] for m in tx_after for t in m["tables"]}
    assert tables_after == {"user"}, after
    assert [m["caller"] for m in tx_after] == [a["identity"], b["identity"]], after
