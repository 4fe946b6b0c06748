"""The arena module (``demos/arena/module.py``, Blackholio ported): its exported schema is Blackholio's,
and its rules (eating, splitting, decay, recombining, respawning, food, logging out) hold when its
reducers run on the dev server's host, with the clock and the timers driven by the test."""

from __future__ import annotations

import json
import math
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from spacetime_game.sdk import Identity, Timestamp
from spacetime_game.server import Database, ReducerContext, load_module
from spacetime_game.server._host import CallResult, Host

ROOT = Path(__file__).resolve().parents[2]
ARENA = ROOT / "demos" / "arena" / "module.py"
START = 1_800_000_000_000_000  # the test's clock, in microseconds


def test_the_schema_is_blackholios_with_its_list_orders() -> None:
    expected = json.loads((ROOT / "tests" / "data" / "blackholio.schema.json").read_text())
    got = load_module(ARENA).schema_json()
    assert got == expected  # dict equality ignores key order, never list order


class Arena:
    """The module on a host; ``now`` is the clock every call sees (microseconds)."""

    def __init__(self) -> None:
        self.module = load_module(ARENA)
        self.m: Any = self._namespace()
        self.host = Host(self.module, Identity.from_int(1))
        self.now = START
        assert self.host.lifecycle("init", self.host.identity, None).status == "ok"  # type: ignore[union-attr]

    def _namespace(self) -> Any:
        """The module's classes by name: its row types, and ``DbVector2`` (the circle's direction)."""
        classes: dict[str, Any] = {spec.cls.__name__: spec.cls for spec in self.module.tables}
        classes["DbVector2"] = typing.get_type_hints(classes["Circle"])["direction"]
        return type("M", (), classes)

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1_000_000)

    def call(self, reducer: str, *args: Any, who: Identity) -> CallResult:
        return self.host.call(reducer, args, who, None, Timestamp(self.now))

    def connect(self, who: Identity) -> CallResult:
        r = self.host.lifecycle("client_connected", who, None)
        assert r is not None
        return r

    def disconnect(self, who: Identity) -> CallResult:
        r = self.host.lifecycle("client_disconnected", who, None)
        assert r is not None
        return r

    def scheduled(self, reducer: str, row: Any) -> CallResult:
        return self.host.call(reducer, (row,), self.host.identity, None, Timestamp(self.now), internal=True)

    def tick(self, table: str) -> CallResult:
        """Run the interval timer of ``table`` once."""
        (row,) = self.rows(table)
        reducer = self.module.table_spec(table).scheduled
        assert reducer is not None
        r = self.scheduled(reducer, row)
        assert r.status == "ok", r.message
        return r

    def run_consumes(self) -> list[CallResult]:
        """Run every pending one-shot consume timer (each row deleted after, as the scheduler does)."""
        results = []
        for row in self.rows("consume_entity_timer"):
            results.append(self.scheduled("consume_entity", row))
            self.edit(lambda db, row=row: db.consume_entity_timer.scheduled_id.delete(row.scheduled_id))
        return results

    def rows(self, table: str) -> list[Any]:
        ts = self.host.store.tables[table]
        return [ts.spec.from_row(r) for r in ts.rows.values()]

    def edit(self, fn: Callable[[Database], object]) -> None:
        """Change rows directly, as one committed transaction."""
        tx = self.host.store.begin()
        db = Database(self.host.store, tx)
        ReducerContext(db, self.host.identity, None, Timestamp(self.now), self.host.identity)
        fn(db)
        self.host.store.commit(tx)

    def entity(self, entity_id: int) -> Any:
        return next((e for e in self.rows("entity") if e.entity_id == entity_id), None)

    def circles(self, player_id: int) -> list[Any]:
        return [c for c in self.rows("circle") if c.player_id == player_id]

    def player(self, who: Identity) -> Any:
        return next(p for p in self.rows("player") if p.identity == who)

    def place(self, entity_id: int, x: float, y: float, mass: int | None = None) -> None:
        e = self.entity(entity_id)
        e.position = type(e.position)(x, y)
        if mass is not None:
            e.mass = mass
        self.edit(lambda db: db.entity.entity_id.update(e))

    def join(self, who: Identity, name: str) -> Any:
        assert self.connect(who).status == "ok"
        r = self.call("enter_game", name, who=who)
        assert r.status == "ok", r.message
        (circle,) = self.circles(self.player(who).player_id)
        return circle


ALICE, BOB = Identity.from_int(10), Identity.from_int(11)


@pytest.fixture
def arena() -> Arena:
    return Arena()


def test_init_sets_the_world_and_the_three_interval_timers(arena: Arena) -> None:
    (config,) = arena.rows("config")
    assert (config.id, config.world_size) == (0, 1000)
    for table, micros in (
        ("move_all_players_timer", 50_000),
        ("spawn_food_timer", 500_000),
        ("circle_decay_timer", 5_000_000),
    ):
        (row,) = arena.rows(table)
        assert row.scheduled_id == 1 and row.scheduled_at.is_interval
        assert row.scheduled_at.value.micros == micros
    assert arena.rows("food") == [] and arena.rows("entity") == []


def test_a_player_enters_with_one_start_circle_and_one_connection_per_identity(arena: Arena) -> None:
    assert arena.connect(ALICE).status == "ok"
    me = arena.player(ALICE)
    assert (me.player_id, me.name) == (1, "")
    assert arena.connect(ALICE).status != "ok", "a second connection of the same identity is refused"
    circle = arena.join(BOB, "bob")
    assert (
        arena.player(BOB).name == "bob" and circle.player_id > me.player_id
    )  # (a refused insert may leave a gap)
    e = arena.entity(circle.entity_id)
    r = math.sqrt(15)
    assert e.mass == 15 and r <= e.position.x < 1000 - r and r <= e.position.y < 1000 - r
    assert (circle.direction.x, circle.direction.y, circle.speed) == (0.0, 1.0, 0.0)
    assert circle.last_split_time == Timestamp(arena.now)
    nobody = arena.call("enter_game", "x", who=Identity.from_int(99))
    assert (nobody.status, nobody.message) == ("err", "")


def test_input_is_normalized_its_length_the_throttle_and_zero_stays_zero(arena: Arena) -> None:
    circle = arena.join(ALICE, "alice")
    V = arena.m.DbVector2
    assert arena.call("update_player_input", V(3.0, 4.0), who=ALICE).status == "ok"
    (c,) = arena.circles(circle.player_id)
    assert (c.direction.x, c.direction.y, c.speed) == (pytest.approx(0.6), pytest.approx(0.8), 1.0)
    arena.call("update_player_input", V(0.3, 0.0), who=ALICE)
    (c,) = arena.circles(circle.player_id)
    assert (c.direction.x, c.direction.y, c.speed) == (1.0, 0.0, pytest.approx(0.3))
    arena.call("update_player_input", V(0.0, 0.0), who=ALICE)
    (c,) = arena.circles(circle.player_id)
    assert (c.direction.x, c.direction.y, c.speed) == (0.0, 0.0, 0.0)
    again = arena.call("update_player_input", V(0.0, 0.0), who=ALICE)
    assert again.status == "ok" and again.record is not None and again.record.is_empty(), "a no-op update"
    stranger = arena.call("update_player_input", V(1.0, 0.0), who=BOB)
    assert (stranger.status, stranger.message) == ("err", "Player not found")


def test_circles_move_at_the_mass_speed_and_stay_inside_the_arena(arena: Arena) -> None:
    circle = arena.join(ALICE, "alice")
    V = arena.m.DbVector2
    arena.place(circle.entity_id, 500.0, 500.0)
    arena.call("update_player_input", V(1.0, 0.0), who=ALICE)
    arena.tick("move_all_players_timer")
    assert arena.entity(circle.entity_id).position.x == pytest.approx(510.0)  # 10 per tick at mass 15
    arena.place(circle.entity_id, 500.0, 500.0, mass=60)
    arena.tick("move_all_players_timer")
    assert arena.entity(circle.entity_id).position.x == pytest.approx(500.0 + 20 / 3)
    arena.place(circle.entity_id, 998.0, 500.0, mass=60)
    arena.tick("move_all_players_timer")
    assert arena.entity(circle.entity_id).position.x == pytest.approx(1000 - math.sqrt(60))
    arena.call("update_player_input", V(0.0, 0.0), who=ALICE)
    still = arena.tick("move_all_players_timer")
    assert still.record is not None and "entity" not in still.record.changes, "a circle at rest sends nothing"


def _add_food(arena: Arena, x: float, y: float, mass: int) -> int:
    made: list[int] = []

    def add(db: Database) -> None:
        e = db.entity.insert(arena.m.Entity(0, arena.m.DbVector2(x, y), mass))
        db.food.insert(arena.m.Food(e.entity_id))
        made.append(e.entity_id)

    arena.edit(add)
    return made[0]


def test_food_under_a_circle_is_eaten_on_the_next_consume_with_an_event(arena: Arena) -> None:
    circle = arena.join(ALICE, "alice")
    arena.place(circle.entity_id, 300.0, 300.0)
    near = _add_food(arena, 302.0, 301.0, 3)  # inside the radius of sqrt(15)
    far = _add_food(arena, 306.0, 300.0, 2)  # outside
    arena.tick("move_all_players_timer")
    pending = arena.rows("consume_entity_timer")
    assert [(t.consumer_entity_id, t.consumed_entity_id) for t in pending] == [(circle.entity_id, near)]
    assert arena.entity(circle.entity_id).mass == 15, "no mass changes inside the movement tick"
    (done,) = arena.run_consumes()
    assert done.status == "ok" and done.record is not None
    event = done.record.changes["consume_entity_event"]
    assert [tuple(r) for r in event.inserts] == [(near, circle.entity_id)]
    assert arena.rows("consume_entity_event") == [], "event rows are never stored"
    assert arena.entity(circle.entity_id).mass == 18
    assert arena.entity(near) is None and near not in [f.entity_id for f in arena.rows("food")]
    assert arena.entity(far) is not None
    assert arena.rows("consume_entity_timer") == []
    # a stale timer (its food already eaten) fails harmlessly
    stale = arena.scheduled("consume_entity", pending[0])
    assert (stale.status, stale.message) == ("err", "Consumed entity doesn't exist")


@pytest.mark.parametrize(("small", "eaten"), [(84, True), (85, False)])
def test_another_players_circle_is_eaten_only_under_085_of_the_mass(
    arena: Arena, small: int, eaten: bool
) -> None:
    a = arena.join(ALICE, "alice")
    b = arena.join(BOB, "bob")
    arena.place(a.entity_id, 400.0, 400.0, mass=100)
    arena.place(b.entity_id, 405.0, 400.0, mass=small)  # b's centre inside a (radius 10)
    arena.tick("move_all_players_timer")
    pending = [(t.consumer_entity_id, t.consumed_entity_id) for t in arena.rows("consume_entity_timer")]
    assert pending == ([(a.entity_id, b.entity_id)] if eaten else [])
    arena.run_consumes()
    assert (arena.entity(b.entity_id) is None) == eaten
    assert arena.entity(a.entity_id).mass == (100 + small if eaten else 100)


def test_own_circles_are_not_eaten_and_split_halves_recombine_after_5_s(arena: Arena) -> None:
    a = arena.join(ALICE, "alice")
    pid = a.player_id
    arena.place(a.entity_id, 500.0, 500.0, mass=59)
    assert arena.call("player_split", who=ALICE).status == "ok"
    assert len(arena.circles(pid)) == 1, "under 60 nothing splits"
    assert len(arena.rows("circle_recombine_timer")) == 1, "the recombine timer is set all the same"
    arena.place(a.entity_id, 500.0, 500.0, mass=60)
    split_at = arena.now
    assert arena.call("player_split", who=ALICE).status == "ok"
    circles = arena.circles(pid)
    assert len(circles) == 2
    masses = sorted(arena.entity(c.entity_id).mass for c in circles)
    assert masses == [30, 30]
    timers = arena.rows("circle_recombine_timer")
    assert timers[-1].scheduled_at.value == Timestamp(split_at + 5_000_000)
    assert all(c.last_split_time == Timestamp(split_at) for c in circles)
    # the halves overlap: pushed apart, never eaten by each other
    before = _distance(arena, circles)
    for _ in range(10):
        arena.advance(0.05)
        arena.tick("move_all_players_timer")
    assert _distance(arena, circles) > before
    assert arena.rows("consume_entity_timer") == []
    # too early: nothing merges
    arena.now = split_at + 4_000_000
    assert arena.scheduled("circle_recombine", timers[-1]).status == "ok"
    assert arena.rows("consume_entity_timer") == []
    arena.now = split_at + 5_000_000
    assert arena.scheduled("circle_recombine", timers[-1]).status == "ok"
    arena.run_consumes()
    (left,) = arena.circles(pid)
    assert arena.entity(left.entity_id).mass == 60


def _distance(arena: Arena, circles: list[Any]) -> float:
    a, b = (arena.entity(c.entity_id).position for c in circles)
    return math.hypot(a.x - b.x, a.y - b.y)


def test_a_split_stops_at_16_circles(arena: Arena) -> None:
    a = arena.join(ALICE, "alice")
    arena.place(a.entity_id, 500.0, 500.0, mass=10_000)
    counts = []
    for _ in range(6):
        assert arena.call("player_split", who=ALICE).status == "ok"
        counts.append(len(arena.circles(a.player_id)))
    assert counts == [2, 4, 8, 16, 16, 16]
    assert sum(arena.entity(c.entity_id).mass for c in arena.circles(a.player_id)) == 10_000


def test_decay_takes_one_percent_above_15(arena: Arena) -> None:
    ids = []
    for who, mass in ((ALICE, 100), (BOB, 16), (Identity.from_int(12), 15), (Identity.from_int(13), 1000)):
        c = arena.join(who, "p")
        arena.place(c.entity_id, 100.0 + 50 * len(ids), 100.0, mass=mass)
        ids.append(c.entity_id)
    arena.tick("circle_decay_timer")
    assert [arena.entity(i).mass for i in ids] == [99, 15, 15, 990]


def test_food_is_topped_up_to_600_only_while_someone_is_connected(arena: Arena) -> None:
    arena.tick("spawn_food_timer")
    assert arena.rows("food") == []
    arena.connect(ALICE)
    arena.tick("spawn_food_timer")
    food = arena.rows("food")
    assert len(food) == 600
    for f in food:
        e = arena.entity(f.entity_id)
        r = math.sqrt(e.mass)
        assert e.mass in (2, 3) and r <= e.position.x < 1000 - r and r <= e.position.y < 1000 - r
    assert {arena.entity(f.entity_id).mass for f in food} == {2, 3}
    again = arena.tick("spawn_food_timer")
    assert again.record is not None and again.record.is_empty()


def test_logging_out_keeps_the_circles_for_the_next_connection(arena: Arena) -> None:
    a = arena.join(ALICE, "alice")
    arena.place(a.entity_id, 250.0, 750.0, mass=40)
    before = (arena.player(ALICE), arena.entity(a.entity_id), arena.circles(a.player_id))
    assert arena.disconnect(ALICE).status == "ok"
    assert arena.rows("player") == [] and arena.rows("circle") == [] and arena.rows("entity") == []
    assert [p.identity for p in arena.rows("logged_out_player")] == [ALICE]
    assert [e.entity_id for e in arena.rows("logged_out_entity")] == [a.entity_id]
    assert arena.connect(ALICE).status == "ok"
    assert (arena.player(ALICE), arena.entity(a.entity_id), arena.circles(a.player_id)) == before
    assert arena.rows("logged_out_player") == [] and arena.rows("logged_out_circle") == []
    # a new player gets a new player_id, never one handed out before
    arena.connect(BOB)
    assert arena.player(BOB).player_id > arena.player(ALICE).player_id


def test_suicide_removes_every_circle_and_respawn_brings_one_back(arena: Arena) -> None:
    a = arena.join(ALICE, "alice")
    arena.place(a.entity_id, 500.0, 500.0, mass=120)
    arena.call("player_split", who=ALICE)
    assert len(arena.circles(a.player_id)) == 2
    assert arena.call("suicide", who=ALICE).status == "ok"
    assert arena.circles(a.player_id) == [] and arena.rows("entity") == []
    assert arena.call("respawn", who=ALICE).status == "ok"
    (c,) = arena.circles(a.player_id)
    assert arena.entity(c.entity_id).mass == 15
    for reducer in ("respawn", "suicide"):
        r = arena.call(reducer, who=BOB)
        assert (r.status, r.message) == ("err", "No such player found")


def test_own_circles_are_pulled_together_only_in_the_last_2_s_before_the_merge(arena: Arena) -> None:
    a = arena.join(ALICE, "alice")
    arena.place(a.entity_id, 500.0, 500.0, mass=120)
    split_at = arena.now
    arena.call("player_split", who=ALICE)
    circles = arena.circles(a.player_id)
    arena.place(circles[0].entity_id, 400.0, 500.0)
    arena.place(circles[1].entity_id, 600.0, 500.0)  # far apart, not touching, both at rest
    arena.now = split_at + 2_500_000  # 2.5 s before the merge: no pull yet
    arena.tick("move_all_players_timer")
    assert _distance(arena, circles) == pytest.approx(200.0)
    arena.now = split_at + 4_000_000  # 1 s before: pulled, both towards each other
    arena.tick("move_all_players_timer")
    assert _distance(arena, circles) < 200.0
    assert arena.entity(circles[0].entity_id).position.x > 400.0
    assert arena.entity(circles[1].entity_id).position.x < 600.0
