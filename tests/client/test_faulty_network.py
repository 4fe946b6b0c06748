"""A faulty network: the dev server (a child process with a data directory) is killed with SIGKILL while a
client is subscribed. The server comes back, and a second client changes rows before the first one has
reconnected. The first client must reconnect on its own (with backoff), subscribe again with the same
identity, and reconcile: callbacks only for the rows that really changed while it was away."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import websocket

from spacetime_game.sdk import DbConnection
from spacetime_game.sdk import _session as session_module
from spacetime_game.sdk._transport import WebSocketTransport
from spacetime_game.sdk.schema import ModuleSchema
from spacetime_game.server import load_module

from ._support import HERE, Recorder, ServerProcess, forget, import_generated, pump

MODULE = HERE / "reconcile_module.py"
DB = "reconcile"


@pytest.fixture(scope="module")
def rmb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """Bindings of ``reconcile_module.py``, generated from the schema the server would publish."""
    schema = ModuleSchema.from_json(load_module(MODULE).schema_json())
    pkg = import_generated(schema, tmp_path_factory.mktemp("reconcile"), "reconcile_module.py")
    yield pkg
    forget(pkg)


def by_tag(log: list[tuple[Any, ...]]) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    for tag, *args in log:
        out.setdefault(tag, []).append(tuple(args))
    return out


@pytest.mark.parametrize("protocol", ["v2", "v1"])
def test_reconnect_after_server_crash_reconciles(
    rmb: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    """The server forced to v2, and to v1 (a 1.x server: the client keeps every subscription's rows in one
    pool, which a reconnect rebuilds from all the renewed subscriptions at once)."""
    monkeypatch.setattr(session_module.random, "random", lambda: 0.5)  # no jitter: 0.05, 0.1, 0.2, 0.4 s
    server = ServerProcess(MODULE, DB, tmp_path / "data", protocols=[protocol]).start()
    a: DbConnection | None = None
    b: DbConnection | None = None
    try:
        Item, Note = rmb.Item, rmb.Note
        attempts: list[float] = []

        def factory(url: str, token: str | None) -> WebSocketTransport:
            attempts.append(time.monotonic())
            return WebSocketTransport(url, token)

        errors: list[BaseException] = []
        disconnects: list[Any] = []
        states: list[str] = []
        a = DbConnection(
            rmb.MODULE,
            server.host,
            DB,
            reconnect_min_delay=0.05,
            reconnect_max_delay=0.4,
            transport_factory=factory,
            on_error=errors.append,
            on_disconnect=lambda c, reason: disconnects.append(reason),
            on_state=states.append,
        )
        rec = Recorder()
        for cls, tag in ((Item, "item"), (Note, "note")):
            cls.on_insert(rec(f"{tag}+"), client=a)
            cls.on_update(rec(f"{tag}~"), client=a)
            cls.on_delete(rec(f"{tag}-"), client=a)
        applied = Recorder()
        items = a.subscribe_multi(["SELECT * FROM item"])
        items.on_applied(applied("items"))
        notes = a.subscribe(["SELECT * FROM note"])  # the documented (legacy) subscribe
        notes.on_applied(applied("notes"))
        a.connect()
        seed = [rmb.put_item(i, f"item {i}", client=a) for i in range(1, 6)]
        seed += [rmb.add_note(t, client=a) for t in ("n1", "n2", "n3")]
        pump([a], lambda: all(c.done for c in seed) and len(applied.log) == 2, what="seeded")
        assert all(c.committed for c in seed), seed
        assert a.count_rows("item") == 5 and a.count_rows("note") == 3
        assert a.protocol == f"{protocol}.bsatn.spacetimedb"
        identity, token = a.identity, a.token
        assert identity is not None and token
        rec.take()
        applied.take()
        before = {k: set(getattr(rmb, n).iter(client=a)) for k, n in (("item", "Item"), ("note", "Note"))}

        # the server dies without a word
        port = server.port
        server.kill()
        pump([a], lambda: a.state == "reconnecting", what="the client to notice the crash")
        assert disconnects and len(disconnects) == 1
        n_before = len(attempts)
        # while it is down the client retries, further and further apart
        down_until = time.monotonic() + 1.0
        while time.monotonic() < down_until:
            a.update()
            time.sleep(0.005)
        tries = attempts[n_before:]
        assert 2 <= len(tries) <= 8, tries
        gaps = [y - x for x, y in itertools.pairwise(tries)]
        assert gaps == sorted(gaps) or max(gaps) >= 0.35, gaps
        assert all(g >= 0.08 for g in gaps), gaps  # never a busy loop
        assert a.state == "reconnecting"
        assert a.count_rows("item") == 5  # the cache stays while offline

        # the server is back, and someone else changes things before `a` gets there
        server = ServerProcess(MODULE, DB, tmp_path / "data", port=port, protocols=[protocol]).start()
        b = DbConnection(rmb.MODULE, server.host, DB).connect()
        changes = [
            rmb.put_item(6, "item 6", client=b),
            rmb.relabel_item(2, "item 2 (renamed)", client=b),
            rmb.delete_item(3, client=b),
            rmb.delete_note("n1", client=b),
            rmb.add_note("n4", client=b),
        ]
        pump([b], lambda: all(c.done for c in changes), what="the second client's changes")
        assert all(c.committed for c in changes), [(c.reducer, c.status, c.message) for c in changes]
        b.close()
        assert rec.take() == []  # `a` has not seen anything yet

        # `a` reconnects on its own and subscribes again
        pump([a], lambda: len(applied.log) == 2, timeout=15, what="the re-subscription")
        assert a.is_connected and a.identity == identity and a.token == token
        assert items.is_active and notes.is_active
        assert a.stats.reconnects >= 1
        assert states[0] == "connecting" and states[-1] == "connected" and "reconnecting" in states

        # exactly what changed, and nothing for the rows that stayed the same
        assert by_tag(rec.take()) == {
            "item-": [(Item(3, "item 3"), None)],
            "item~": [(Item(2, "item 2"), Item(2, "item 2 (renamed)"), None)],
            "item+": [(Item(6, "item 6"), None)],
            "note-": [(Note("n1"), None)],
            "note+": [(Note("n4"), None)],
        }
        assert set(Item.iter(client=a)) == (before["item"] - {Item(2, "item 2"), Item(3, "item 3")}) | {
            Item(2, "item 2 (renamed)"),
            Item(6, "item 6"),
        }
        assert set(Note.iter(client=a)) == {Note("n2"), Note("n3"), Note("n4")}
        assert Item.filter_by_id(3, client=a) is None
        assert Item.filter_by_id(2, client=a).label == "item 2 (renamed)"

        # and it keeps working live
        call = rmb.put_item(7, "item 7", client=a)
        pump([a], lambda: call.done and Item.filter_by_id(7, client=a) is not None)
        ((row, ev),) = by_tag(rec.take())["item+"]
        assert row == Item(7, "item 7") and ev.reducer_name == "put_item" and ev.args == [7, "item 7"]
        # on_error heard only about the connection (the crash, the refused attempts)
        net = (ConnectionError, OSError, websocket.WebSocketException)
        assert errors and not [e for e in errors if not isinstance(e, net)], errors
    finally:
        if a is not None:
            a.close()
        if b is not None:
            b.close()
        server.stop()
