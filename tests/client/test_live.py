"""End to end against the dev server (a child process) with the quickstart-chat module: several
independent connections in one process, generated functions with ``client=``, reducer results, one-off
queries, subscription handles, disconnects, the documented ``init`` singleton and ``local_config``.

The chat and subscription tests run against the server serving everything (the client gets v3), and
forced to v2 and to v1 (the protocol of 1.x servers, where other clients' calls come with their reducer,
caller and arguments)."""

from __future__ import annotations

import os
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from spacetime_game.sdk import DbConnection, ReducerEvent, local_config
from spacetime_game.sdk.bindings import NoClientError
from spacetime_game.sdk.spacetimedb_client import SpacetimeDBClient

from ._support import CHAT_MODULE, Recorder, ServerProcess, pump, sdk_threads_after_close

DB = "quickstart-chat"
QUERIES = ["SELECT * FROM user", "SELECT * FROM message"]


def watch(chat: ModuleType, client: Any, rec: Recorder) -> None:
    chat.User.on_insert(rec("user+"), client=client)
    chat.User.on_update(rec("user~"), client=client)
    chat.User.on_delete(rec("user-"), client=client)
    chat.Message.on_insert(rec("message+"), client=client)
    chat.register_on_set_name(rec("set_name"), client=client)
    chat.register_on_send_message(rec("send_message"), client=client)


def tagged(rec: Recorder, tag: str) -> list[tuple[Any, ...]]:
    return [e[1:] for e in rec.log if e[0] == tag]


PROTOCOLS = {None: "v3.bsatn.spacetimedb", "v2": "v2.bsatn.spacetimedb", "v1": "v1.bsatn.spacetimedb"}


@pytest.fixture(scope="module", params=list(PROTOCOLS), ids=["all", "v2", "v1"])
def served(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """The chat module on a dev server serving every protocol, only v2, or only v1."""
    protocols = None if request.param is None else [request.param]
    server = ServerProcess(CHAT_MODULE, DB, None, protocols=protocols).start()
    server.protocol = PROTOCOLS[request.param]
    yield server
    server.stop()


def test_two_connections_in_one_process(chat: ModuleType, served: ServerProcess) -> None:
    chat_server = served
    v1 = served.protocol == PROTOCOLS["v1"]
    threads_before = set(threading.enumerate())
    errors: list[BaseException] = []
    ids: dict[str, tuple[Any, ...]] = {}
    connected: list[str] = []
    a = SpacetimeDBClient(
        chat,
        chat_server.host,
        DB,
        on_identity=lambda tok, ident, addr: ids.__setitem__("a", (tok, ident, addr)),
        on_connect=lambda: connected.append("a"),
        on_error=errors.append,
    )
    b = SpacetimeDBClient(
        chat,
        chat_server.host,
        DB,
        on_identity=lambda tok, ident, addr: ids.__setitem__("b", (tok, ident, addr)),
        on_connect=lambda: connected.append("b"),
        on_error=errors.append,
    )
    rec_a, rec_b = Recorder(), Recorder()
    watch(chat, a, rec_a)
    watch(chat, b, rec_b)
    applied = Recorder()
    a.register_on_subscription_applied(applied("a"))
    b.register_on_subscription_applied(applied("b"))
    a.connect()
    b.connect()
    a.subscribe(QUERIES)
    b.subscribe(QUERIES)
    pump([a, b], lambda: len(applied.log) == 2, what="both subscriptions applied")
    assert sorted(connected) == ["a", "b"]
    assert a.protocol == b.protocol == served.protocol
    assert a.identity is not None and b.identity is not None and a.identity != b.identity
    assert ids["a"][1] == a.identity and ids["a"][2] == a.address and ids["a"][0] == a.token
    assert ids["b"][1] == b.identity
    User, Message = chat.User, chat.Message
    # each sees both users online (the second one may arrive as a transaction after the first applied)
    pump(
        [a, b],
        lambda: all(
            (u := User.filter_by_identity(i, client=c)) is not None and u.online
            for c in (a, b)
            for i in (a.identity, b.identity)
        ),
        what="both users online in both caches",
    )
    # subscription rows come with event None
    assert (User.filter_by_identity(a.identity, client=a), None) in tagged(rec_a, "user+")

    rec_a.take()
    rec_b.take()
    renamed = chat.set_name("alice", client=a)
    sent = chat.send_message("hello from bob", client=b)
    pump(
        [a, b],
        lambda: (
            renamed.done
            and sent.done
            and any(m.text == "hello from bob" for m in Message.iter(client=a))
            and (User.filter_by_identity(a.identity, client=b) or User(a.identity, None, True)).name
            == "alice"
        ),
        what="the rename and the message on both sides",
    )
    assert renamed.status == "committed" and sent.status == "committed"
    # a's own call: the reducer callback and a full ReducerEvent
    assert tagged(rec_a, "set_name") == [(a.identity, a.address, "committed", "", "alice")]
    ((old, new, ev),) = tagged(rec_a, "user~")
    assert (old.name, new.name, new.identity) == (None, "alice", a.identity)
    assert isinstance(ev, ReducerEvent)
    assert (ev.reducer_name, ev.args, ev.caller_identity, ev.caller_address, ev.status) == (
        "set_name",
        ["alice"],
        a.identity,
        a.address,
        "committed",
    )
    ((old, new, ev),) = tagged(rec_b, "user~")
    if v1:  # b sees a's rename with its reducer, caller and arguments, and its reducer callback runs
        assert (new.name, ev.reducer_name, ev.args, ev.caller_identity, ev.caller_address) == (
            "alice",
            "set_name",
            ["alice"],
            a.identity,
            a.address,
        )
        assert tagged(rec_b, "set_name") == [(a.identity, a.address, "committed", "", "alice")]
    else:  # v2 and v3 do not say who: no reducer info, no reducer callback
        assert new.name == "alice" and ev.reducer_name is None and ev.caller_identity is None
        assert tagged(rec_b, "set_name") == []
    # the message: b's own insert carries its ReducerEvent; a's carries none
    ((row, ev),) = tagged(rec_b, "message+")
    assert (row.text, row.sender, ev.reducer_name, ev.args) == (
        "hello from bob",
        b.identity,
        "send_message",
        ["hello from bob"],
    )
    assert tagged(rec_b, "send_message") == [(b.identity, b.address, "committed", "", "hello from bob")]
    ((row, ev),) = tagged(rec_a, "message+")
    if v1:
        assert (row.text, ev.reducer_name, ev.caller_identity, ev.args) == (
            "hello from bob",
            "send_message",
            b.identity,
            ["hello from bob"],
        )
        assert tagged(rec_a, "send_message") == [(b.identity, b.address, "committed", "", "hello from bob")]
    else:
        assert row.text == "hello from bob" and ev.reducer_name is None
        assert tagged(rec_a, "send_message") == []

    # an empty name is refused: through the call handle and register_on_set_name
    rec_a.take()
    bad = chat.set_name("", client=a)
    pump([a, b], lambda: bad.done, what="the refused set_name")
    assert (bad.status, bad.message) == ("failed", "Names must not be empty")
    assert tagged(rec_a, "set_name") == [(a.identity, a.address, "failed", "Names must not be empty", "")]
    assert tagged(rec_a, "user~") == []
    assert User.filter_by_identity(a.identity, client=a).name == "alice"

    # a one-off query, and a bad one
    q = a.one_off_query("SELECT * FROM message")
    bad_q = a.one_off_query("SELECT * FROM no_such_table")
    pump([a, b], lambda: q.done and bad_q.done, what="one-off queries")
    assert q.error is None
    assert [(m.text, m.sender) for m in q.rows["message"]] == [("hello from bob", b.identity)]
    assert bad_q.error and not bad_q.rows

    # b goes away: a sees it offline
    b_identity = b.identity
    b.close()
    assert b.state == "closed"
    pump([a], lambda: not User.filter_by_identity(b_identity, client=a).online, what="b offline")
    old, new, ev = tagged(rec_a, "user~")[-1]
    assert (old.identity, old.online, new.online) == (b_identity, True, False)

    a.close()
    assert errors == []
    assert sdk_threads_after_close() == []
    assert set(threading.enumerate()) <= threads_before


def test_subscription_handles(chat: ModuleType, served: ServerProcess) -> None:
    chat_server = served
    writer = DbConnection(chat.MODULE, chat_server.host, DB).connect()
    calls = [chat.send_message(f"handle test {i}", client=writer) for i in range(3)]
    pump([writer], lambda: all(c.done for c in calls))
    assert all(c.committed for c in calls)

    conn = DbConnection(chat.MODULE, chat_server.host, DB)
    rec = Recorder()
    chat.Message.on_insert(rec("message+"), client=conn)
    chat.Message.on_delete(rec("message-"), client=conn)
    mine = conn.subscribe_multi(["SELECT * FROM message"])
    mine.on_applied(rec("applied")).on_end(rec("end")).on_error(rec("error"))
    broken = conn.subscribe_multi(["SELECT * FROM no_such_table"])
    broken.on_error(rec("error"))
    conn.connect()
    pump([conn, writer], lambda: mine.is_active and broken.is_ended, what="applied and rejected")
    texts = {m.text for m in chat.Message.iter(client=conn)}
    assert {f"handle test {i}" for i in range(3)} <= texts
    assert len([e for e in rec.log if e[0] == "applied"]) == 1
    ((_, h, message),) = [e for e in rec.log if e[0] == "error"]
    assert h is broken and message and broken.error == message
    inserted = [e[1] for e in rec.log if e[0] == "message+"]
    assert len(inserted) == conn.count_rows("message")

    # a live insert reaches the set, then unsubscribe takes every row away
    more = chat.send_message("one more", client=writer)
    pump(
        [conn, writer],
        lambda: more.done and any(m.text == "one more" for m in chat.Message.iter(client=conn)),
    )
    n = conn.count_rows("message")
    rec.take()
    mine.unsubscribe()
    assert not mine.is_active
    pump([conn, writer], lambda: any(e[0] == "end" for e in rec.log), what="UnsubscribeApplied")
    assert conn.count_rows("message") == 0
    deleted = [e for e in rec.log if e[0] == "message-"]
    assert len(deleted) == n
    assert rec.log[-1] == ("end", mine)
    # nothing more arrives for the dropped set
    late = chat.send_message("after unsubscribe", client=writer)
    pump([writer], lambda: late.done)
    pump([conn], lambda: True)
    assert conn.count_rows("message") == 0
    conn.close()
    writer.close()
    assert sdk_threads_after_close() == []


@pytest.fixture
def fresh_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_config, "_path", None)
    monkeypatch.setattr(local_config, "_config", None)
    monkeypatch.delenv("SPACETIME_GAME_PROFILE", raising=False)


def test_init_default_client_and_saved_token(
    chat: ModuleType,
    chat_server: ServerProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_config: None,
) -> None:
    monkeypatch.setattr(sys, "argv", ["main.py", "--client", "2"])
    path = local_config.init(".quickstart-test", config_root=tmp_path)
    assert path == tmp_path / ".quickstart-test" / "settings_2.ini"
    assert local_config.get_string("auth_token") is None
    assert not path.exists()  # nothing written before the first set

    seen: list[Any] = []

    def on_identity(token: str, identity: Any, address: Any) -> None:
        local_config.set_string("auth_token", token)
        seen.append(identity)

    applied: list[bool] = []
    SpacetimeDBClient.init(None, chat_server.host, DB, False, chat, on_identity=on_identity)
    client = SpacetimeDBClient.instance
    assert client is not None
    client.register_on_subscription_applied(lambda: applied.append(True))
    client.subscribe(QUERIES)
    pump([client], lambda: bool(seen and applied), what="identity and subscription")
    identity = seen[0]
    # the generated functions use the default client
    assert chat.User.filter_by_identity(identity).online
    call = chat.set_name("persisted")
    pump([client], lambda: call.done)
    assert call.committed
    assert chat.User.filter_by_identity(identity).name == "persisted"

    # the token file: written atomically, private
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    assert client.token and client.token in path.read_text()
    client.close()
    with pytest.raises(NoClientError):
        list(chat.User.iter())

    # another profile is another file, with no token yet
    other = local_config.init(".quickstart-test", config_root=tmp_path, profile="3")
    assert other.name == "settings_3.ini" and local_config.get_string("auth_token") is None
    # the server runs the closed connection's disconnect (the user goes offline) on its own time: wait for
    # it, or it could come after the next connection's connect and leave the user offline
    observer = DbConnection(chat.MODULE, chat_server.host, DB)
    observer.connect()
    try:
        observer.subscribe(["SELECT * FROM user"])
        pump(
            [observer],
            lambda: any(u.identity == identity and not u.online for u in observer.iter_rows("user")),
            what="the closed connection's disconnect",
        )
    finally:
        observer.close()
    # back to profile 2, read from disk: the saved token gives the same identity
    local_config.init(".quickstart-test", config_root=tmp_path)
    token = local_config.get_string("auth_token")
    assert token
    seen.clear()
    applied.clear()
    SpacetimeDBClient.init(token, chat_server.host, DB, False, chat, on_identity=on_identity)
    client = SpacetimeDBClient.instance
    assert client is not None
    client.register_on_subscription_applied(lambda: applied.append(True))
    client.subscribe(QUERIES)
    pump([client], lambda: bool(seen and applied))
    assert seen == [identity]
    me = chat.User.filter_by_identity(identity)
    assert me.name == "persisted" and me.online
    client.close()
    assert sdk_threads_after_close() == []


def test_local_config_writes_are_atomic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_config: None
) -> None:
    path = local_config.init("cfg", config_root=tmp_path, profile="x", config_defaults={"Host": "localhost"})
    local_config.set_string("auth_token", "first")
    before = path.read_bytes()
    assert b"auth_token = first" in before and b"Host = localhost" in before  # key case is kept

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(local_config.os, "replace", broken_replace)
        with pytest.raises(OSError, match="disk full"):
            local_config.set_string("auth_token", "second")
    assert path.read_bytes() == before  # the old file is intact
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left
    local_config.set_config({"a": "1", "b": "2"})  # a dict sets its items (a 0.x bug)
    local_config.init("cfg", config_root=tmp_path, profile="x")
    assert (local_config.get_string("a"), local_config.get_string("b")) == ("1", "2")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
