"""Entity sync against a scripted server: the exact hook sequences for spawn / update / despawn, deferred
despawn, event rows, key-less coalescing, filters and origins."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from spacetime_game.engine import DEFER, Change, EntitySync

from ._scripted import Log, Net


class Sprite:
    """A stand-in game entity."""

    def __init__(self, row: Any) -> None:
        self.row = row

    def __repr__(self) -> str:
        return f"Sprite({self.row!r})"


def player_sync(net: Net, log: Log, **extra: Any) -> EntitySync[Any, Sprite]:
    def spawn(row: Any, change: Change) -> Sprite:
        log.log.append(("spawn", row, change.origin))
        return Sprite(row)

    def update(e: Sprite, old: Any, new: Any, change: Change) -> None:
        log.log.append(("update", old, new, change.origin))
        e.row = new

    def despawn(e: Sprite, row: Any, change: Change) -> object:
        log.log.append(("despawn", row, change.origin))
        return extra.pop("despawn_result", None)

    return net.driver.sync(net.mb.Player, on_spawn=spawn, on_update=update, on_despawn=despawn, **extra)


def test_rows_become_entities_with_their_origins(mb: ModuleType) -> None:
    P = mb.Player
    net = Net(mb).connect()
    log = Log()
    players = player_sync(net, log)
    applied: list[Change] = []
    net.driver.on_applied(applied.append)
    a, b = P(1, "a", 0.0, 0.0, 0.0), P(2, "b", 5.0, 5.0, 0.0)
    h = net.subscribe({"player": [a, b]})
    assert players.entities == {} and log.take() == []
    net.tick()
    assert log.take() == [("spawn", a, "initial"), ("spawn", b, "initial")]
    assert set(players.entities) == {1, 2} and players.entities[1].row == a
    assert [(c.origin, dict(c.rows), c.time) for c in applied] == [("initial", {"player": 2}, net.clock.now)]
    applied.clear()

    # another client moves b; this client moves a (its own call); then c joins and b leaves
    b2 = P(2, "b", 6.0, 5.0, 0.0)
    net.tx(net.update(h, {"player": ([b2], [b])}))
    a2 = P(1, "a", 1.0, 2.0, 0.0)
    call = mb.move(1, 1.0, 2.0, client=net.conn)
    net.own(call, net.update(h, {"player": ([a2], [a])}))
    c = P(3, "c", 0.0, 0.0, 0.0)
    net.tx(net.update(h, {"player": ([c], [b2])}))
    entity_a = players.entities[1]
    net.tick()
    assert log.take() == [
        ("update", b, b2, "other"),
        ("update", a, a2, "own"),
        ("despawn", b2, "other"),
        ("spawn", c, "other"),
    ]
    assert players.entities[1] is entity_a and entity_a.row == a2
    assert set(players.entities) == {1, 3}
    assert [c.origin for c in applied] == ["other", "own", "other"]
    own = applied[1]
    assert own.event is not None and own.event.reducer_name == "move" and own.event.args == [1, 1.0, 2.0]
    assert own.client is net.conn
    assert not net.errors


def test_a_sync_added_late_spawns_the_cached_rows(mb: ModuleType) -> None:
    P = mb.Player
    net = Net(mb).connect()
    a = P(1, "a", 0.0, 0.0, 0.0)
    net.subscribe({"player": [a]})
    net.tick()
    log = Log()
    players = player_sync(net, log)
    assert log.take() == [("spawn", a, "initial")]
    assert list(players.entities) == [1]


def test_without_on_spawn_the_entity_is_the_row(mb: ModuleType) -> None:
    P = mb.Player
    net = Net(mb).connect()
    players = net.driver.sync(P)
    a, a2 = P(1, "a", 0.0, 0.0, 0.0), P(1, "a", 3.0, 0.0, 0.0)
    h = net.subscribe({"player": [a]})
    net.tick()
    assert players.entities == {1: a}
    net.tx(net.update(h, {"player": ([a2], [a])}))
    net.tick()
    assert players.entities == {1: a2} and players.get(1) == a2 and len(players) == 1
    assert list(players) == [a2]


def test_deferred_despawn_keeps_the_entity_until_released(mb: ModuleType) -> None:
    P = mb.Player
    net = Net(mb).connect()
    log = Log()
    players = player_sync(net, log)
    players.on_despawn = log("despawn", lambda e, row, change: DEFER)
    a, b = P(1, "a", 0.0, 0.0, 0.0), P(2, "b", 0.0, 0.0, 0.0)
    h = net.subscribe({"player": [a, b]})
    net.tick()
    log.take()
    ea, eb = players.entities[1], players.entities[2]
    net.tx(net.update(h, {"player": ([], [a, b])}))
    net.tick()
    assert log.take() == [("despawn", ea, a, "other"), ("despawn", eb, b, "other")]
    assert players.entities == {} and players.dying == {1: [ea], 2: [eb]}
    assert players.release(eb) is True
    assert players.release(eb) is False  # once
    assert players.dying == {1: [ea]}

    # a comes back while its old entity is still dying: without on_revive, a new entity; the old one
    # keeps dying until released
    a2 = P(1, "a", 9.0, 0.0, 0.0)
    net.tx(net.update(h, {"player": ([a2], [])}))
    net.tick()
    assert log.take() == [("spawn", a2, "other")]
    assert players.entities[1] is not ea and players.dying == {1: [ea]}
    assert players.release(ea) is True and players.dying == {}


def test_a_row_back_under_a_dying_key_can_revive_its_entity(mb: ModuleType) -> None:
    P = mb.Player
    net = Net(mb).connect()
    log = Log()
    players = player_sync(net, log)
    players.on_despawn = lambda e, row, change: DEFER
    players.on_revive = log("revive", lambda e, row, change: True)
    a = P(1, "a", 0.0, 0.0, 0.0)
    h = net.subscribe({"player": [a]})
    net.tick()
    log.take()
    ea = players.entities[1]
    net.tx(net.update(h, {"player": ([], [a])}))
    net.tick()
    assert players.dying == {1: [ea]}
    a2 = P(1, "a", 4.0, 0.0, 0.0)
    net.tx(net.update(h, {"player": ([a2], [])}))
    net.tick()
    assert log.take() == [("revive", ea, a2, "other")]
    assert players.entities == {1: ea} and players.dying == {}
    assert players.release(ea) is False  # the animation's late release is ignored


def test_event_rows_are_one_shot_events(mb: ModuleType) -> None:
    P, Hit = mb.Player, mb.Hit
    net = Net(mb).connect()
    log = Log()
    hits = net.driver.sync(Hit, on_event=log("hit"), filter=lambda r: r.damage > 0)
    h = net.subscribe({"player": []}, ["SELECT * FROM player", "SELECT * FROM hit"])
    net.tick()
    call = mb.hit(1, 5, client=net.conn)
    net.own(call, net.update(h, events={"hit": [Hit(1, 5)]}))
    net.tx(net.update(h, events={"hit": [Hit(2, 7), Hit(3, 0)]}))
    net.tick()
    assert log.take() == [("hit", Hit(1, 5), "own"), ("hit", Hit(2, 7), "other")]
    assert hits.entities == {} and net.conn.count_rows("hit") == 0
    with pytest.raises(ValueError, match="event table"):
        net.driver.sync(Hit, on_spawn=lambda r, c: r, on_event=log("x"))
    with pytest.raises(ValueError, match="on_event"):
        net.driver.sync(Hit)
    with pytest.raises(ValueError, match="one-shot events"):
        net.driver.sync(P, on_event=log("x"), on_spawn=lambda r, c: r)


def test_on_event_makes_rows_of_an_unmarked_table_one_shot_events(mb: ModuleType) -> None:
    # bindings made from a V9 schema (the dev server's) do not know which tables are event tables
    M = mb.Marker
    net = Net(mb).connect()
    log = Log()
    markers = net.driver.sync(M, on_event=log("event"))
    h = net.subscribe({"marker": []})
    net.tick()
    net.tx(net.update(h, {"marker": ([M(1, 2.0)], [])}))
    net.tick()
    assert log.take() == [("event", M(1, 2.0), "other")]
    assert markers.entities == {}


def test_keyless_delete_and_insert_of_one_key_in_a_transaction_is_an_update(mb: ModuleType) -> None:
    M = mb.Marker
    net = Net(mb).connect()
    log = Log()
    markers = net.driver.sync(
        M,
        key="owner",
        on_spawn=log("spawn", lambda row, change: Sprite(row)),
        on_update=log("update"),
        on_despawn=log("despawn"),
    )
    m1, m2 = M(1, 0.0), M(2, 0.0)
    h = net.subscribe({"marker": [m1, m2]})
    net.tick()
    assert log.take() == [("spawn", m1, "initial"), ("spawn", m2, "initial")]
    e1 = markers.entities[1]
    # the server deletes and re-inserts marker 1 (moved) in one transaction: one update, no flicker
    m1b = M(1, 3.0)
    net.tx(net.update(h, {"marker": ([m1b], [m1])}))
    net.tick()
    assert log.take() == [("update", e1, m1, m1b, "other")]
    assert markers.entities[1] is e1
    # a delete alone despawns at the end of its transaction; the insert in the next one spawns
    net.tx(net.update(h, {"marker": ([], [m2])}))
    m2b = M(2, 1.0)
    net.tx(net.update(h, {"marker": ([m2b], [])}))
    e2 = markers.entities[2]
    net.tick()
    assert log.take() == [("despawn", e2, m2, "other"), ("spawn", m2b, "other")]
    # a key function works as well as column names
    keyed = net.driver.sync(M, key=lambda r: r.owner * 10)
    assert set(keyed.entities) == {10, 20}
    both = net.driver.sync(M, key=("owner", "x"))
    assert set(both.entities) == {(1, 3.0), (2, 1.0)}


def test_a_table_without_a_key_needs_one(mb: ModuleType) -> None:
    net = Net(mb).connect()
    with pytest.raises(ValueError, match="no primary key: pass key="):
        net.driver.sync(mb.Marker)
    with pytest.raises(ValueError, match="primary key"):
        net.driver.sync(mb.Player, key="name")
    with pytest.raises(ValueError, match="no column"):
        net.driver.sync(mb.Marker, key="nope")
    with pytest.raises(KeyError, match="no table 'nope'"):
        net.driver.sync("nope")
    with pytest.raises(TypeError, match="generated table class"):
        net.driver.sync(int)


def test_the_filter_spawns_and_despawns_as_rows_cross_it(mb: ModuleType) -> None:
    P = mb.Player
    net = Net(mb).connect()
    log = Log()
    near = player_sync(net, log, filter=lambda r: r.x < 10)
    a, b = P(1, "a", 0.0, 0.0, 0.0), P(2, "b", 50.0, 0.0, 0.0)
    h = net.subscribe({"player": [a, b]})
    net.tick()
    assert log.take() == [("spawn", a, "initial")]
    a2, b2 = P(1, "a", 20.0, 0.0, 0.0), P(2, "b", 5.0, 0.0, 0.0)
    net.tx(net.update(h, {"player": ([a2, b2], [a, b])}))
    net.tick()
    assert log.take() == [("despawn", a, "other"), ("spawn", b2, "other")]
    assert set(near.entities) == {2}
    net.tx(net.update(h, {"player": ([], [a2])}))  # a row outside the filter goes: nothing
    net.tick()
    assert log.take() == []


def test_a_hook_that_raises_is_reported_and_the_others_still_run(mb: ModuleType) -> None:
    P = mb.Player
    net = Net(mb).connect()
    spawned: list[int] = []

    def spawn(row: Any, change: Change) -> Any:
        if row.id == 2:
            raise RuntimeError("broken sprite")
        spawned.append(row.id)
        return row

    players = net.driver.sync(P, on_spawn=spawn)
    net.subscribe({"player": [P(i, "", 0.0, 0.0, 0.0) for i in (1, 2, 3)]})
    net.tick()
    assert spawned == [1, 3] and set(players.entities) == {1, 3}
    assert [str(e) for e in net.errors] == ["broken sprite"]


def test_a_transactions_updates_reach_the_hooks_in_order_and_one_bad_row_loses_no_other(
    mb: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    """A big transaction's updates come to the sync in bulk: every row reaches on_update in the
    transaction's order, and hooks that raise lose only their own rows: the first error is reported
    to the connection's on_error, the later ones are logged."""
    P = mb.Player
    net = Net(mb).connect()
    seen: list[int] = []

    def update(e: Any, old: Any, new: Any, change: Change) -> None:
        if new.id in (3, 7):
            raise RuntimeError(f"bad {new.id}")
        seen.append(new.id)

    players = net.driver.sync(P, on_update=update)
    rows = [P(i, "", 0.0, 0.0, 0.0) for i in range(10)]
    h = net.subscribe({"player": rows})
    net.tick()
    moved = [P(r.id, "", 1.0, 0.0, 0.0) for r in rows]
    net.tx(net.update(h, {"player": (moved, rows)}))
    net.tick()
    assert sorted(seen) == [i for i in range(10) if i not in (3, 7)]
    assert [str(e) for e in net.errors] in (["bad 3"], ["bad 7"])
    assert "an entity hook raised" in caplog.text
    assert all(players.entities[r.id] == r for r in moved)  # without on_spawn the entity is the row


def test_key_of_names_the_entity_a_row_belongs_to(mb: ModuleType) -> None:
    P, M = mb.Player, mb.Marker
    players = EntitySync(P)
    with pytest.raises(RuntimeError, match="not attached"):
        players.key_of(P(7, "g", 0.0, 0.0, 0.0))
    net = Net(mb).connect()
    net.driver.add_sync(players)
    assert players.key_of(P(7, "g", 0.0, 0.0, 0.0)) == 7
    assert net.driver.sync(M, key="owner").key_of(M(3, 1.5)) == 3
    assert net.driver.sync(M, key=("owner", "x")).key_of(M(3, 1.5)) == (3, 1.5)
    assert net.driver.sync(M, key=lambda r: -r.owner).key_of(M(3, 1.5)) == -3
