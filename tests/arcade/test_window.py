"""The arcade adapter end to end, headless, against a real dev server (``move_module.py``) and two
clients: client A is a :class:`spacetime_game.arcade.Window`, client B a plain connection that makes
the changes. Sprites appear, move (interpolated, between the snapshots) and disappear with the rows;
the pixels show them; the network's news reach handler methods on the Window and on the current View;
deferred despawn and a predicted local player; closing leaves no thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from spacetime_game.engine import DEFER, Change, FrameDriver, InputPredictor, Interpolator
from spacetime_game.sdk import DbConnection
from spacetime_game.server import DevServer
from tests.engines._support import open_arcade_window

from ._helpers import QUERIES, StepClock, adapter, frame, near, pixel, pump, wait_threads_gone
from .conftest import MOVE_MODULE

W, H = 160, 120
BACKGROUND = (24, 28, 40, 255)
GREEN = (110, 210, 140)
ORANGE = (240, 160, 80)


@pytest.fixture
def sga() -> ModuleType:
    return adapter()


@pytest.fixture
def server() -> Iterator[DevServer]:
    with DevServer(MOVE_MODULE, database="move") as s:
        yield s


class Other:
    """Client B: a connection driven by its own FrameDriver, subscribed to everything."""

    def __init__(self, mb: ModuleType, server: DevServer) -> None:
        self.conn = DbConnection(mb.MODULE, server.address, server.database)
        self.driver = FrameDriver(self.conn)
        self.conn.subscribe_multi(QUERIES)


def make_window(
    sga: ModuleType, mb: ModuleType, server: DevServer, cls: type[Any] | None = None, **kw: Any
) -> Any:
    conn = DbConnection(mb.MODULE, server.address, server.database)
    win = open_arcade_window(cls or sga.Window, W, H, client=conn, **kw)
    return win


def test_sprites_appear_move_between_snapshots_and_disappear(
    sga: ModuleType, mb: ModuleType, server: DevServer
) -> None:
    clock = StepClock(0.01)
    win = make_window(sga, mb, server, clock=clock)
    b = Other(mb, server)
    try:
        made: list[tuple[int, str]] = []

        def factory(row: Any, change: Change) -> Any:
            made.append((row.id, change.origin))
            return sga.circle_sprite(10, GREEN)

        interp = Interpolator(fields=("x", "y"), delay=0.1, extrapolate=0.0)
        players = win.net.sprites(mb.Player, factory, interpolate=interp)
        win.net.subscribe(QUERIES)
        assert isinstance(players.sprite_list, __import__("arcade").SpriteList)
        assert players.sprite_list.spatial_hash is None  # network-moved sprites: no spatial hash
        pump(win, lambda: win.net.driver.loaded, "the subscription", clock=clock, others=[b.driver])
        pump(win, lambda: b.driver.loaded, "B's subscription", clock=clock, others=[b.driver])

        mb.join(1, "b", 40.0, 30.0, client=b.conn)
        pump(win, lambda: 1 in players, "the sprite", clock=clock, others=[b.driver])
        assert made == [(1, "other")]
        sprite = players.get(1)
        assert sprite in players.sprite_list
        assert sprite.position == (40.0, 30.0)

        # the pixels show it where the row says
        win.clear(color=BACKGROUND)
        players.draw()
        image = __import__("arcade").get_image(0, 0, W, H)
        assert near(pixel(image, H, 40, 30), GREEN), pixel(image, H, 40, 30)
        assert near(pixel(image, H, 120, 90), BACKGROUND)

        # B moves it: the sprite glides there, always between the two snapshots, never beyond
        for _ in range(30):  # let the first snapshot age so the render time is past it
            frame(win, clock)
        mb.move(1, 120.0, 90.0, client=b.conn)
        seen: list[tuple[float, float]] = []
        pump(
            win,
            lambda: players.get(1).position == (120.0, 90.0),
            "the move",
            clock=clock,
            others=[b.driver],
            each=lambda: seen.append(players.get(1).position),
        )
        assert all(40.0 <= x <= 120.0 and 30.0 <= y <= 90.0 for x, y in seen), seen
        between = [p for p in seen if 40.0 < p[0] < 120.0]
        assert len(between) >= 3, f"the sprite jumped instead of gliding: {seen}"
        xs = [p[0] for p in seen]
        assert xs == sorted(xs), "it never goes back"
        # on a straight line from the one snapshot to the other
        assert all(abs((y - 30.0) - (x - 40.0) * 60.0 / 80.0) < 1e-6 for x, y in between)

        win.clear(color=BACKGROUND)
        players.draw()
        image = __import__("arcade").get_image(0, 0, W, H)
        assert near(pixel(image, H, 120, 90), GREEN)
        assert near(pixel(image, H, 40, 30), BACKGROUND)

        # B's player leaves: the sprite goes
        mb.leave(1, client=b.conn)
        pump(win, lambda: 1 not in players, "the despawn", clock=clock, others=[b.driver])
        assert sprite not in players.sprite_list and len(players.sprite_list) == 0
        assert 1 not in interp
    finally:
        b.driver.close()
        win.close()


class Recorder:
    """Handler methods for every network event, logging (who, event, summary)."""

    who = "?"

    def _log(self, *entry: Any) -> None:
        self.calls.append((self.who, *entry))  # type: ignore[attr-defined]

    def on_connect(self, status: Any) -> None:
        self._log("connect", status.state)

    def on_disconnect(self, status: Any) -> None:
        self._log("disconnect", status.state)

    def on_row_insert(self, table: str, row: Any, change: Change) -> None:
        self._log("insert", table, getattr(row, "id", getattr(row, "target", None)), change.origin)

    def on_row_update(self, table: str, old: Any, new: Any, change: Change) -> None:
        self._log("update", table, new.id, old.x, new.x, change.origin)

    def on_row_delete(self, table: str, row: Any, change: Change) -> None:
        self._log("delete", table, row.id, change.origin)

    def on_reducer_result(self, event: Any) -> None:
        self._log("result", event.reducer_name, event.status)

    def on_transaction(self, change: Change) -> None:
        self._log("transaction", change.origin)

    def on_subscription_applied(self, change: Change) -> None:
        self._log("applied", change.origin)

    def on_subscription_error(self, message: str, handle: Any) -> None:
        self._log("sub-error", "nope" in message)


def test_handlers_on_the_window_and_on_the_current_view(
    sga: ModuleType, mb: ModuleType, server: DevServer
) -> None:
    import arcade

    calls: list[tuple[Any, ...]] = []

    class GameWindow(Recorder, sga.Window):
        who = "window"

    class GameView(Recorder, sga.NetView):
        who = "view"

    win = make_window(sga, mb, server, GameWindow)
    b = Other(mb, server)
    try:
        win.calls = calls
        view = GameView()
        view.calls = calls
        win.show_view(view)
        assert view.net is win.net
        win.net.watch(mb.Player)
        win.net.watch(mb.Hit, event=True)
        win.net.subscribe(QUERIES)
        bad = win.net.subscribe("SELECT * FROM nope")
        pump(win, lambda: win.net.driver.loaded, "the subscription", others=[b.driver])
        pump(
            win, lambda: ("window", "sub-error", True) in calls, "the refused subscription", others=[b.driver]
        )
        assert bad is not None
        assert calls[:2] == [("view", "connect", "connected"), ("window", "connect", "connected")]
        assert ("view", "applied", "initial") in calls and ("window", "applied", "initial") in calls
        calls.clear()

        # this client's call: the row first (view, then window), then the whole transaction, then the
        # call's outcome
        mb.join(1, "a", 5.0, 6.0, client=win.net.client)
        pump(win, lambda: ("window", "result", "join", "committed") in calls, "the join", others=[b.driver])
        assert calls == [
            ("view", "insert", "player", 1, "own"),
            ("window", "insert", "player", 1, "own"),
            ("view", "transaction", "own"),
            ("window", "transaction", "own"),
            ("view", "result", "join", "committed"),
            ("window", "result", "join", "committed"),
        ]
        calls.clear()

        # another client's changes: rows in the server's order, origin "other", no reducer result
        mb.move(1, 7.0, 6.0, client=b.conn)
        mb.hit(1, 3, client=b.conn)
        mb.leave(1, client=b.conn)
        pump(
            win, lambda: ("window", "delete", "player", 1, "other") in calls, "B's changes", others=[b.driver]
        )
        window_calls = [c[1:] for c in calls if c[0] == "window"]
        assert window_calls == [
            ("update", "player", 1, 5.0, 7.0, "other"),
            ("transaction", "other"),
            ("insert", "hit", 1, "other"),
            ("transaction", "other"),
            ("delete", "player", 1, "other"),
            ("transaction", "other"),
        ]
        assert [c[1:] for c in calls if c[0] == "view"] == window_calls
        calls.clear()

        # a refused call: its outcome, no rows
        mb.leave(42, client=win.net.client)
        pump(win, lambda: ("window", "result", "leave", "failed") in calls, "the refusal", others=[b.driver])
        assert calls == [("view", "result", "leave", "failed"), ("window", "result", "leave", "failed")]
        calls.clear()

        # a View that handles an event stops it there; another View takes the handlers with it
        class Stopper(arcade.View):
            def on_row_insert(self, table: str, row: Any, change: Change) -> bool:
                calls.append(("stopper", "insert", table, row.id, change.origin))
                return True

        win.show_view(Stopper())
        mb.join(2, "b", 1.0, 1.0, client=b.conn)
        pump(win, lambda: ("window", "transaction", "other") in calls, "B's join", others=[b.driver])
        assert calls == [("stopper", "insert", "player", 2, "other"), ("window", "transaction", "other")]
    finally:
        b.driver.close()
        win.close()


def test_initial_false_leaves_out_the_first_load_only(
    sga: ModuleType, mb: ModuleType, server: DevServer
) -> None:
    b = Other(mb, server)
    for i in range(50):
        mb.join(i, f"p{i}", float(i), 0.0, client=b.conn)
    pump_driver(b.driver, lambda: len(list(b.conn.iter_rows("player"))) == 50)

    class Counting(sga.Window):
        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, **k)
            self.rows: list[tuple[str, int]] = []
            self.applied = 0

        def on_row_insert(self, table: str, row: Any, change: Change) -> None:
            self.rows.append(("insert", row.id))

        def on_row_update(self, table: str, old: Any, new: Any, change: Change) -> None:
            self.rows.append(("update", new.id))

        def on_subscription_applied(self, change: Change) -> None:
            self.applied += 1

    win = make_window(sga, mb, server, Counting)
    try:
        players = win.net.watch(mb.Player, initial=False)
        win.net.subscribe(QUERIES)
        pump(win, lambda: win.net.driver.loaded, "the subscription", others=[b.driver])
        assert win.applied == 1 and win.rows == []
        assert len(players.entities) == 50  # the rows are there, only their handler calls were left out
        mb.move(3, 9.0, 9.0, client=b.conn)
        pump(win, lambda: win.rows == [("update", 3)], "a live change", others=[b.driver])
    finally:
        b.driver.close()
        win.close()


def pump_driver(driver: FrameDriver, until: Any, timeout: float = 15.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not until():
        driver.tick(0.002)
        assert time.monotonic() < deadline
        time.sleep(0.002)


def test_despawn_deferred_for_an_animation(sga: ModuleType, mb: ModuleType, server: DevServer) -> None:
    win = make_window(sga, mb, server)
    b = Other(mb, server)
    try:
        dying: list[Any] = []

        def on_despawn(sprite: Any, row: Any, change: Change) -> object:
            dying.append(sprite)
            return DEFER

        players = win.net.sprites(
            mb.Player, lambda row, c: sga.circle_sprite(6, ORANGE), on_despawn=on_despawn
        )
        win.net.subscribe(QUERIES)
        mb.join(1, "a", 10.0, 10.0, client=b.conn)
        pump(win, lambda: 1 in players, "the sprite", others=[b.driver])
        sprite = players.get(1)
        mb.leave(1, client=b.conn)
        pump(win, lambda: 1 not in players, "the despawn", others=[b.driver])
        assert dying == [sprite]
        assert sprite in players.sprite_list, "a deferred sprite stays drawn"
        assert players.dying == {1: [sprite]}
        assert players.release(sprite) is True
        assert sprite not in players.sprite_list and players.dying == {}
        assert players.release(sprite) is False
    finally:
        b.driver.close()
        win.close()


def test_the_local_player_is_predicted_and_reconciled(
    sga: ModuleType, mb: ModuleType, server: DevServer
) -> None:
    """The hook for prediction: the own player's sprite follows an InputPredictor. A move shows at the next
    frame, before the server has it; a move the server refuses is taken back, smoothly."""
    clock = StepClock(0.01)
    win = make_window(sga, mb, server, clock=clock)
    try:
        P = mb.Player

        def apply(p: Any, to: tuple[float, float]) -> Any:
            return P(p.id, p.name, to[0], to[1], p.vx)

        players = win.net.sprites(mb.Player, lambda row, c: sga.circle_sprite(8, GREEN))
        predictor: InputPredictor[Any, tuple[float, float]] = InputPredictor(apply, smoothing=0.05)
        players.predict(1, predictor)
        win.net.subscribe(QUERIES)
        conn = win.net.client
        mb.join(1, "me", 20.0, 20.0, client=conn)
        pump(win, lambda: 1 in players and predictor.server is not None, "my player", clock=clock)
        assert players.state(1) is predictor.rendered
        frame(win, clock)
        assert players.get(1).position == (20.0, 20.0)

        # a move: drawn at the next frame, long before its round trip
        call = mb.move(1, 60.0, 50.0, client=conn)
        predictor.input((60.0, 50.0), call)
        frame(win, clock)
        assert players.get(1).position == (60.0, 50.0)
        pump(win, lambda: call.committed and predictor.pending == 0, "the move's commit", clock=clock)
        assert players.get(1).position == (60.0, 50.0)

        # a move the server refuses (to another player's id: the reducer fails): shown at once, taken back
        bad = mb.move(99, 0.0, 0.0, client=conn)
        predictor.input((100.0, 100.0), bad)
        frame(win, clock)
        x, y = players.get(1).position
        if bad.done:  # the refusal came back within this very frame (a loaded machine, a local server):
            assert 60.0 < x <= 100.0 and 50.0 < y <= 100.0  # the correction began from the predicted spot
        else:
            assert (x, y) == (100.0, 100.0)
        seen: list[tuple[float, float]] = []
        pump(
            win,
            lambda: players.get(1).position == (60.0, 50.0),
            "the correction",
            clock=clock,
            each=lambda: seen.append(players.get(1).position),
        )
        assert bad.status == "failed" and predictor.rejected == 1
        assert any(60.0 < x < 100.0 for x, _ in seen), f"the correction jumped: {seen}"
    finally:
        win.close()


def test_closing_the_window_closes_the_connection_and_leaves_no_thread(
    sga: ModuleType, mb: ModuleType, server: DevServer
) -> None:
    before = set(threading.enumerate())  # after `import arcade`, which starts pyglet's media thread
    gone: list[tuple[str, str | None]] = []

    class Game(sga.Window):
        def on_disconnect(self, status: Any) -> None:
            gone.append((status.state, status.reason))

    win = make_window(sga, mb, server, Game)
    conn = win.net.client
    win.net.sprites(mb.Player, lambda row, c: sga.circle_sprite(6, GREEN))
    win.net.subscribe(QUERIES)
    pump(win, lambda: win.net.driver.loaded, "the subscription")
    assert conn.state == "connected"
    assert [t for t in threading.enumerate() if t not in before], "the connection runs threads"
    win.close()  # what the close button leads to inside arcade.run (on_close -> close)
    assert win.closed and win.net.closed
    assert conn.state == "closed"
    assert [state for state, _ in gone] == ["closed"], gone
    left = wait_threads_gone(before)
    assert left == [], f"threads left after the window closed: {left}"


def test_every_on_update_pumps_the_engine_once_however_arcade_calls_it(
    sga: ModuleType, mb: ModuleType, server: DevServer
) -> None:
    """pyglet's loop dispatches ``on_update`` (View's handler, then Window's); headless ``arcade.run`` calls
    the active View's or Window's ``on_update`` directly. Either way the engine ticks once, first."""
    ticks: list[int] = []
    order: list[str] = []

    class Game(sga.Window):
        def on_update(self, delta_time: float) -> None:
            order.append(f"window after {self.net.driver.frames} ticks")

    class Play(sga.NetView):
        def on_update(self, delta_time: float) -> None:
            order.append(f"view after {self.net.driver.frames} ticks")
            super().on_update(delta_time)  # the base pumps too, but not twice in one frame

    win = make_window(sga, mb, server, Game)
    try:
        win.net.driver.add_stepper(type("S", (), {"advance": lambda self, now: ticks.append(1)})())
        win.on_update(1 / 60)  # headless arcade.run without a View
        assert (len(ticks), order) == (1, ["window after 1 ticks"])
        win.show_view(Play())
        order.clear()
        win.current_view.on_update(1 / 60)  # headless arcade.run with a View
        assert (len(ticks), order) == (2, ["view after 2 ticks"])
        order.clear()
        frame(win)  # pyglet's event loop
        assert (len(ticks), order) == (3, ["view after 3 ticks", "window after 3 ticks"])
    finally:
        win.close()


def test_a_big_first_load_sizes_the_tables_own_sprite_list_once(sga: ModuleType, mb: ModuleType) -> None:
    """Told that a first load brings 5,000 rows, a sprite table sizes its own sprite list for them before
    the first sprite (one allocation instead of a copy at each doubling); a small load, a later one and a
    list the game passed are left as they are."""
    import arcade  # (importable: the sga fixture imported the adapter)

    from tests.engine._scripted import Net

    P = mb.Player
    texture = sga.circle_texture(2, GREEN)

    def spy(table: Any) -> list[tuple[int | None, int]]:
        calls: list[tuple[int | None, int]] = []
        real = table.sprite_list.clear

        def clear(**kwargs: Any) -> None:
            calls.append((kwargs.get("capacity"), len(table.sprite_list)))
            real(**kwargs)

        table.sprite_list.clear = clear
        return calls

    rows = [P(i, "p", float(i), 0.0, 0.0) for i in range(5000)]
    for own, n, expected in ((True, 5000, [(5000, 0)]), (True, 100, []), (False, 5000, [])):
        net = Net(mb).connect()
        given = None if own else arcade.SpriteList(use_spatial_hash=False)
        table = sga.SpriteTable(P, lambda row, c: arcade.Sprite(texture), sprite_list=given)
        calls = spy(table)
        table.attach(net.driver)
        net.subscribe({"player": rows[:n]})
        net.tick()
        assert calls == expected and len(table.sprite_list) == n
        table.detach()
        net.driver.close()


def test_net_sprites_passes_on_exactly_the_sprite_tables_keywords(sga: ModuleType) -> None:
    """``NetBridge.sprites`` takes SpriteTable's keywords through ``SpriteTableOptions``: the two lists
    cannot drift apart."""
    import inspect

    params = inspect.signature(sga.SpriteTable.__init__).parameters.values()
    keywords = {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert set(sga.SpriteTableOptions.__annotations__) == keywords
    bridge_params = inspect.signature(sga.NetBridge.sprites).parameters
    assert bridge_params["options"].kind is inspect.Parameter.VAR_KEYWORD
