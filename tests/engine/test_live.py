"""The frame driver and entity sync end to end: a real dev server (``move_module.py``) and two clients,
each driven by its own FrameDriver. Entities appear, move and disappear with the rows, with the right
origins; the scheduled tick moves them; event rows arrive once; a key-less delete+insert is one update;
a server restart keeps the entities and brings only the real changes; no thread is left."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from spacetime_game.engine import Change, EntitySync, FrameDriver
from spacetime_game.sdk import DbConnection, WebSocketTransport
from spacetime_game.server import DevServer
from tests._support import wait_no_sdk_threads

from .conftest import MOVE_MODULE

QUERIES = ["SELECT * FROM player", "SELECT * FROM marker", "SELECT * FROM hit"]


def pump(drivers: list[FrameDriver], until: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Tick every driver (a game's frames) until ``until()`` holds."""
    deadline = time.monotonic() + timeout
    while not until():
        for d in drivers:
            d.tick(0.002)
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


class Game:
    """One client: a driver, syncs of players, markers and hits, and a log of what its hooks saw."""

    def __init__(self, mb: ModuleType, conn: DbConnection) -> None:
        self.conn = conn
        self.driver = FrameDriver(conn)
        self.log: list[tuple[Any, ...]] = []
        self.players: EntitySync[Any, dict[str, Any]] = self.driver.sync(
            mb.Player, on_spawn=self.spawn, on_update=self.update, on_despawn=self.despawn
        )
        self.markers = self.driver.sync(
            mb.Marker,
            key="owner",
            on_spawn=lambda row, c: self.log.append(("marker+", row.owner, row.x, c.origin)) or row,
            on_update=lambda e, old, new, c: self.log.append(("marker~", new.owner, new.x, c.origin)),
            on_despawn=lambda e, row, c: self.log.append(("marker-", row.owner, c.origin)),
        )
        self.driver.sync(
            mb.Hit, on_event=lambda row, c: self.log.append(("hit", row.target, row.damage, c.origin))
        )
        conn.subscribe_multi(QUERIES)

    def spawn(self, row: Any, change: Change) -> dict[str, Any]:
        self.log.append(("spawn", row.id, row.x, change.origin))
        return {"id": row.id, "x": row.x, "y": row.y}

    def update(self, e: dict[str, Any], old: Any, new: Any, change: Change) -> None:
        self.log.append(("update", new.id, new.x, change.origin))
        e["x"], e["y"] = new.x, new.y

    def despawn(self, e: dict[str, Any], row: Any, change: Change) -> None:
        self.log.append(("despawn", row.id, change.origin))

    def take(self, kinds: tuple[str, ...] | None = None) -> list[tuple[Any, ...]]:
        out = [r for r in self.log if kinds is None or r[0] in kinds]
        self.log = [r for r in self.log if not (kinds is None or r[0] in kinds)]
        return out


def test_two_clients_see_entities_appear_move_and_disappear(mb: ModuleType) -> None:
    with DevServer(MOVE_MODULE, database="move") as server:
        a = Game(mb, DbConnection(mb.MODULE, server.address, server.database))
        b = Game(mb, DbConnection(mb.MODULE, server.address, server.database))
        drivers = [a.driver, b.driver]
        try:
            pump(drivers, lambda: a.driver.loaded and b.driver.loaded, "the subscriptions")
            for g in (a, b):
                assert (g.driver.state, g.driver.reason, g.driver.progress) == ("connected", None, 1.0)

            join = mb.join(1, "a", 0.0, 0.0, client=a.conn)
            pump(drivers, lambda: 1 in a.players.entities and 1 in b.players.entities, "player 1")
            assert join.committed
            assert a.take() == [("spawn", 1, 0.0, "own")]
            assert b.take() == [("spawn", 1, 0.0, "other")]

            mb.move(1, 3.0, 4.0, client=a.conn)
            pump(drivers, lambda: b.players.entities[1]["x"] == 3.0, "the move")
            pump(drivers, lambda: a.players.entities[1]["x"] == 3.0, "the move")
            assert a.take() == [("update", 1, 3.0, "own")]
            assert b.take() == [("update", 1, 3.0, "other")]
            assert b.players.entities[1] == {"id": 1, "x": 3.0, "y": 4.0}

            # the server's scheduled tick moves a player: "other" for everyone
            mb.join(2, "b", 10.0, 0.0, client=b.conn)
            mb.set_velocity(2, 1.0, client=b.conn)
            mb.start_ticking(20, client=b.conn)
            pump(drivers, lambda: a.players.entities.get(2, {}).get("x", 0) >= 13.0, "three ticks")
            pump(drivers, lambda: b.players.entities[2]["x"] >= 13.0, "three ticks")
            seen_a = a.take()
            assert seen_a[0] == ("spawn", 2, 10.0, "other")
            ticks = [r for r in seen_a[1:] if r[2] > 10.0]
            assert ticks and all(r[0] == "update" and r[3] == "other" for r in ticks), seen_a
            seen_b = b.take()
            assert seen_b[0] == ("spawn", 2, 10.0, "own")
            assert [r for r in seen_b if r[2] > 10.0] == [r for r in seen_b[1:] if r[2] > 10.0]
            assert all(r[3] == "other" for r in seen_b if r[2] > 10.0), seen_b

            # an event row: once, on each client; nothing is kept
            mb.hit(1, 5, client=b.conn)
            pump(
                drivers,
                lambda: any(r[0] == "hit" for r in a.log) and any(r[0] == "hit" for r in b.log),
                "hit",
            )
            assert a.take(("hit",)) == [("hit", 1, 5, "other")]
            assert b.take(("hit",)) == [("hit", 1, 5, "own")]

            # a key-less row deleted and inserted in one transaction: one update, no despawn/spawn
            mb.place_marker(1, 0.0, client=a.conn)
            pump(drivers, lambda: 1 in b.markers.entities, "the marker")
            mb.place_marker(1, 5.0, client=a.conn)
            pump(drivers, lambda: any(r[0] == "marker~" for r in b.log), "the marker's move")
            assert b.take(("marker+", "marker~", "marker-")) == [
                ("marker+", 1, 0.0, "other"),
                ("marker~", 1, 5.0, "other"),
            ]
            pump(drivers, lambda: any(r[0] == "marker~" for r in a.log), "the marker's move")
            assert a.take(("marker+", "marker~", "marker-")) == [
                ("marker+", 1, 0.0, "own"),
                ("marker~", 1, 5.0, "own"),
            ]

            mb.leave(1, client=a.conn)
            pump(drivers, lambda: 1 not in b.players.entities and 1 not in a.players.entities, "the leave")
            assert ("despawn", 1, "other") in b.take(("despawn",))
            assert a.take(("despawn",)) == [("despawn", 1, "own")]
            assert set(b.players.entities) == {2}
        finally:
            for d in drivers:
                d.close()
            assert a.conn.state == "closed" and b.conn.state == "closed"
    wait_no_sdk_threads()


def test_a_server_restart_keeps_entities_and_applies_only_real_changes(
    mb: ModuleType, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    blocked = threading.Event()

    def gated(url: str, token: str | None) -> WebSocketTransport:
        """Client A's connections: while ``blocked``, they go to a port nothing listens on (refused, and
        retried with backoff), so that the changes below happen while A is away."""
        if blocked.is_set():
            url = url.replace(f":{port}/", ":9/")
        return WebSocketTransport(url, token)

    server = DevServer(MOVE_MODULE, database="move", data_dir=data).start_in_thread()
    port = server.port
    a = b = None
    try:
        a = Game(
            mb,
            DbConnection(
                mb.MODULE,
                server.address,
                server.database,
                transport_factory=gated,
                reconnect_min_delay=0.05,
                reconnect_max_delay=0.2,
            ),
        )
        b = Game(
            mb,
            DbConnection(
                mb.MODULE, server.address, server.database, reconnect_min_delay=0.05, reconnect_max_delay=0.2
            ),
        )
        drivers = [a.driver, b.driver]
        states: list[tuple[str, str | None]] = []
        a.driver.on_state(lambda st: states.append((st.state, st.reason)))
        pump(drivers, lambda: a.driver.loaded and b.driver.loaded, "the subscriptions")
        calls = [mb.join(i, n, float(i), 0.0, client=b.conn) for i, n in ((1, "a"), (2, "b"), (3, "c"))]
        calls.append(mb.place_marker(1, 0.0, client=b.conn))
        pump(
            drivers,
            lambda: len(a.players.entities) == 3 and 1 in a.markers.entities and all(c.done for c in calls),
            "the seed rows",  # A may see them before B hears its calls' outcomes: wait for both
        )
        assert all(c.committed for c in calls), calls
        kept = dict(a.players.entities)
        kept_marker = a.markers.entities[1]
        a.take()

        # the server stops; A cannot come back until the others have changed things
        blocked.set()
        server.close()
        pump(drivers, lambda: a.driver.state == "reconnecting", "A to notice")
        assert a.driver.reason, "no reason given for the lost connection"
        assert a.driver.progress == 1.0  # a reconnect is not a new load
        server = DevServer(MOVE_MODULE, database="move", port=port, data_dir=data).start_in_thread()
        pump([b.driver], lambda: b.driver.state == "connected", "B to reconnect")
        changes = [
            mb.move(2, 20.0, 0.0, client=b.conn),
            mb.leave(3, client=b.conn),
            mb.join(4, "d", 4.0, 0.0, client=b.conn),
            mb.place_marker(1, 9.0, client=b.conn),
        ]
        pump([b.driver], lambda: all(c.done for c in changes), "B's changes")
        assert all(c.committed for c in changes), changes
        assert a.take() == []  # A heard nothing while away
        assert a.driver.state == "reconnecting"

        blocked.clear()
        pump(drivers, lambda: a.driver.state == "connected" and 4 in a.players.entities, "A to come back")
        # the re-subscription is one message: its rows may still be on their way under the budget
        pump(drivers, lambda: any(r[0] == "marker~" for r in a.log), "the marker's change")
        seen = a.take()
        assert sorted(seen, key=repr) == sorted(
            [
                ("update", 2, 20.0, "initial"),
                ("despawn", 3, "initial"),
                ("spawn", 4, 4.0, "initial"),
                ("marker~", 1, 9.0, "initial"),
            ],
            key=repr,
        ), seen
        assert a.players.entities[1] is kept[1] and a.players.entities[2] is kept[2]
        assert a.markers.entities[1] is kept_marker
        # reported from tick(): connecting (unless the connection opened within the first tick, as on a
        # fast machine), connected, then reconnecting (with each attempt's reason) until connected again
        if states[0] == ("connecting", None):
            states = states[1:]
        assert states[0] == ("connected", None), states
        assert states[-1] == ("connected", None), states
        away = states[1:-1]
        assert away and all(s == "reconnecting" and r for s, r in away), states
    finally:
        for g in (a, b):
            if g is not None:
                g.driver.close()
        server.close()
    wait_no_sdk_threads()
