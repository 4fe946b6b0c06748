"""The frame driver against scripted servers: the budget (one connection and shared), the steppers and
their clock, the connection state with its reason, the loading progress, a reconnect that keeps the
entities, the Basic client, and close()."""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

import pytest

from spacetime_game.engine import Change, ClientStatus, FrameDriver, Stepper
from spacetime_game.sdk import ConnectionFailed, ConnectionId, DbConnection, SpacetimeDBClient

from ._scripted import Log, Net


class Recorder:
    """A stepper that records the times it is advanced to, and what the sync held then."""

    def __init__(self, probe: Any = None) -> None:
        self.calls: list[tuple[float, Any]] = []
        self.probe = probe

    def advance(self, now: float) -> None:
        self.calls.append((now, self.probe() if self.probe else None))


def test_steppers_advance_after_the_rows_with_the_drivers_clock(mb: ModuleType) -> None:
    P = mb.Player
    net = Net(mb).connect()
    players = net.driver.sync(P)
    stepper = Recorder(lambda: len(players.entities))
    assert isinstance(stepper, Stepper)
    assert net.driver.add_stepper(stepper) is stepper
    net.subscribe({"player": [P(1, "a", 0.0, 0.0, 0.0)]})
    stepper.calls.clear()
    net.clock.now = 200.0
    net.driver.tick(0.016)
    assert stepper.calls == [(200.0, 1)]  # the rows of this frame were there
    assert net.driver.now == 200.0 and net.driver.frame_time == 0.016
    net.driver.remove_stepper(stepper)
    net.tick()
    assert len(stepper.calls) == 1
    with pytest.raises(TypeError, match="advance"):
        net.driver.add_stepper(object())  # type: ignore[arg-type]


def test_changes_are_stamped_with_the_tick_that_applied_them(mb: ModuleType) -> None:
    P = mb.Player
    net = Net(mb).connect()
    times: list[float] = []
    net.driver.sync(P, on_spawn=lambda row, change: times.append(change.time))
    h = net.subscribe({"player": [P(1, "a", 0.0, 0.0, 0.0)]})
    net.clock.now = 300.0
    net.driver.tick()
    net.tx(net.update(h, {"player": ([P(2, "b", 0.0, 0.0, 0.0)], [])}))
    net.clock.now = 300.5
    net.driver.tick()
    assert times == [300.0, 300.5]


def test_the_budget_spreads_a_big_subscription_over_frames(mb: ModuleType) -> None:
    P = mb.Player
    net = Net(mb, budget=0.001).connect()
    n = 20_000
    spawned: list[int] = []
    players = net.driver.sync(P, on_spawn=lambda row, change: spawned.append(row.id) or row.id)
    net.subscribe({"player": [P(i, "p", float(i), 0.0, 0.0) for i in range(n)]})
    progress = [net.driver.progress]
    frames = 0
    longest = 0.0
    while not net.driver.loaded:
        t0 = time.perf_counter()
        net.tick()
        longest = max(longest, time.perf_counter() - t0)
        frames += 1
        progress.append(net.driver.progress)
        assert frames < 50_000
    # a generous bound (CPU load): the work is cut into small slices, never done in one frame
    assert longest < 0.25, f"a frame took {longest * 1000:.0f} ms under a 1 ms budget"
    assert frames >= 3, f"20,000 rows were delivered in {frames} frames under a 1 ms budget"
    assert progress[0] == 0.0 and progress[-1] == 1.0
    assert progress == sorted(progress), "the loading progress went back"
    assert any(0.0 < p < 0.8 for p in progress) and any(0.8 < p < 1.0 for p in progress), progress
    assert sorted(spawned) == list(range(n)) and len(players.entities) == n
    assert net.driver.status().loaded


def test_the_budget_is_shared_and_connections_take_turns(mb: ModuleType) -> None:
    P = mb.Player
    a, b = Net(mb, n=1), Net(mb, n=2)
    driver = FrameDriver(a.conn, b.conn, budget=0.0005, clock=a.clock)
    a.driver, b.driver = driver, driver
    spawned: dict[str, int] = {"a": 0, "b": 0}

    def counter(name: str) -> Any:
        def spawn(row: Any, change: Change) -> Any:
            spawned[name] += 1
            return row

        return spawn

    with pytest.raises(ValueError, match="say which one"):
        driver.sync(P)
    driver.sync(P, client=a.conn, on_spawn=counter("a"))
    driver.sync(P, client=b.conn, on_spawn=counter("b"))
    driver.tick()
    for net in (a, b):
        net.server.greet(net.identity, net.connection_id, "token")
    driver.tick()
    n = 20_000
    for net in (a, b):
        net.subscribe({"player": [P(i, "p", 0.0, 0.0, 0.0) for i in range(n)]})
    seen_both_partial = False
    frames = 0
    while not driver.loaded:
        driver.tick()
        frames += 1
        if 0 < spawned["a"] < n and 0 < spawned["b"] < n:
            seen_both_partial = True
        assert frames < 100_000
    assert seen_both_partial, "one connection waited for the other's whole subscription"
    assert spawned == {"a": n, "b": n}
    assert driver.progress == 1.0
    driver.close()


def test_a_driver_behind_raises_its_budget_until_it_catches_up(mb: ModuleType) -> None:
    """After the first load, messages piling up (more than the budget applies) raise the next ticks'
    budget by half each, up to max_budget, and it falls back once the backlog is gone; while the first
    subscription loads the budget stays put, and max_budget=None never raises it."""
    P = mb.Player
    n = 3000
    rows = [P(i, "p", 0.0, 0.0, 0.0) for i in range(n)]
    for top in (0.004, None):
        net = Net(mb, budget=0.001, max_budget=top).connect()
        net.driver.sync(P)
        h = net.subscribe({"player": rows})
        for k in range(1, 21):  # already waiting behind the subscription
            net.tx(net.update(h, {"player": ([P(i, "p", float(k), 0.0, 0.0) for i in range(n)], rows)}))
            rows = [P(i, "p", float(k), 0.0, 0.0) for i in range(n)]
        budgets: list[float | None] = []
        while not net.driver.loaded:
            net.tick()
            if not net.driver.loaded:
                assert net.driver.tick_budget == 0.001, "the budget rose during the first load"
            else:
                budgets.append(net.driver.tick_budget)
        while net.conn.stats.queue_depth:
            net.tick()
            budgets.append(net.driver.tick_budget)
            assert len(budgets) < 10_000
        net.tick()
        assert net.driver.tick_budget == 0.001
        if top is None:
            assert set(budgets) == {0.001}
        else:
            rises = [b for b in budgets if b is not None and b > 0.001]
            assert rises[0] == pytest.approx(0.0015) and max(rises) == top  # by half a tick, to the top
        rows = [P(i, "p", 0.0, 0.0, 0.0) for i in range(n)]
        net.driver.close()
    with pytest.raises(ValueError, match="max_budget"):
        FrameDriver(max_budget=0)


def test_without_a_budget_everything_is_applied_at_once(mb: ModuleType) -> None:
    P = mb.Player
    net = Net(mb, budget=None).connect()
    players = net.driver.sync(P)
    net.subscribe({"player": [P(i, "p", 0.0, 0.0, 0.0) for i in range(5000)]})
    assert net.tick() == 1
    assert len(players.entities) == 5000 and net.driver.loaded
    with pytest.raises(ValueError, match="budget"):
        FrameDriver(budget=0)


def test_state_reason_and_progress_through_a_reconnect(mb: ModuleType) -> None:
    P = mb.Player
    net = Net(mb)
    states = Log()
    net.driver.on_state(lambda st: states.log.append((st.state, st.reason, st.loaded)))
    assert net.driver.state == "connecting" and net.driver.progress == 0.0  # not asked to connect yet
    log = Log()
    players = net.driver.sync(
        P,
        on_spawn=log("spawn", lambda row, c: [row]),
        on_update=log("update"),
        on_despawn=log("despawn"),
    )
    net.connect()
    assert states.take() == [("connecting", None, False), ("connected", None, False)]
    assert net.driver.state == "connected" and net.driver.reason is None
    assert net.driver.progress == 0.0  # connected, the rows have not come
    a, b, c = (P(i, n, 0.0, 0.0, 0.0) for i, n in ((1, "a"), (2, "b"), (3, "c")))
    h = net.subscribe({"player": [a, b, c]})
    net.tick()
    assert net.driver.progress == 1.0 and net.driver.loaded
    assert states.take() == []
    log.take()
    before = dict(players.entities)

    first = net.t
    first.drop(1006, "the server went away")
    net.tick()
    assert net.driver.state == "reconnecting" and net.driver.reason == "the server went away"
    assert states.take() == [("reconnecting", "the server went away", True)]
    st = net.driver.status()
    assert isinstance(st, ClientStatus) and st.client is net.conn and st.progress == 1.0
    for _ in range(1000):  # the backoff is a few ms
        net.tick()
        if net.t is not first:
            break
    assert net.t is not first
    net.server.greet(net.identity, ConnectionId.from_int(9), "token")
    net.tick()
    assert net.driver.state == "connected"
    # while away: b changed, c went, d came; a is the same
    b2, d = P(2, "b", 7.0, 0.0, 0.0), P(4, "d", 0.0, 0.0, 0.0)
    net.applied(h, {"player": [a, b2, d]})
    net.tick()
    # only the real changes, in the SDK's order (deletes, updates, inserts): no despawn/spawn of a or b
    assert log.take() == [
        ("despawn", [c], c, "initial"),
        ("update", [b], b, b2, "initial"),
        ("spawn", d, "initial"),
    ]
    assert players.entities[1] is before[1] and players.entities[2] is before[2]
    assert set(players.entities) == {1, 2, 4}
    assert states.take() == [("connected", None, True)]
    net.driver.close()
    assert states.take() == [("closed", "closed by this client", True)]
    assert net.driver.state == "closed" and net.driver.closed


def test_a_permanent_failure_is_reported_with_its_reason(mb: ModuleType) -> None:
    net = Net(mb)
    net.driver.tick()
    why = "the database 'db' does not exist (HTTP 404)"
    net.t.fail(ConnectionFailed(why, permanent=True, host="localhost:3000", database="db", status=404))
    net.tick()
    assert net.driver.state == "failed" and net.driver.reason == why
    assert net.driver.progress == 0.0


def test_the_worst_connection_speaks_for_the_driver(mb: ModuleType) -> None:
    a, b = Net(mb, n=1), Net(mb, n=2)
    driver = FrameDriver(a.conn, b.conn, clock=a.clock)
    driver.tick()
    a.server.greet(a.identity, a.connection_id, "t")
    driver.tick()
    assert driver.status(a.conn).state == "connected" and driver.status(b.conn).state == "connecting"
    assert driver.state == "connecting"
    b.server.greet(b.identity, b.connection_id, "t")
    driver.tick()
    assert driver.state == "connected"
    b.t.drop(1011, "kicked")
    driver.tick()
    assert (driver.state, driver.reason) == ("reconnecting", "kicked")
    assert driver.clients == (a.conn, b.conn)
    with pytest.raises(ValueError, match="not driven"):
        driver.status(Net(mb).conn)
    with pytest.raises(ValueError, match="already driven"):
        driver.add_client(a.conn)
    driver.close()


def test_the_basic_client_is_driven_like_a_connection(mb: ModuleType) -> None:
    P = mb.Player
    from spacetime_game.sdk.testing import ScriptedServer

    server = ScriptedServer()
    disconnects: list[Any] = []
    client = SpacetimeDBClient(
        mb, "localhost:3000", "db", transport_factory=server, on_disconnect=disconnects.append
    )
    net = Net(mb, client=client)
    net.server = server
    players = net.driver.sync(P)
    net.connect()
    net.subscribe({"player": [P(1, "a", 0.0, 0.0, 0.0)]})
    net.tick()
    assert list(players.entities) == [1] and net.driver.loaded
    net.t.drop(1006, "gone")
    net.tick()
    assert (net.driver.state, net.driver.reason) == ("reconnecting", "gone")
    assert disconnects == ["gone"]  # the client's own callback still runs
    net.driver.close()
    assert client.state == "closed"


def test_close_closes_the_clients_and_detaches_the_syncs(mb: ModuleType) -> None:
    P = mb.Player
    net = Net(mb).connect()
    applied: list[Change] = []
    net.driver.on_applied(applied.append)
    players = net.driver.sync(P)
    h = net.subscribe({"player": [P(1, "a", 0.0, 0.0, 0.0)]})
    net.tick()
    assert len(applied) == 1
    with FrameDriver() as empty:
        assert empty.state == "closed" and empty.progress == 0.0 and not empty.loaded
    net.driver.close()
    net.driver.close()  # again: nothing
    assert net.conn.state == "closed" and net.t.closed
    assert players.client is None and list(players.entities) == [1]  # the entities stay
    # nothing reaches the syncs or hooks any more, even if the connection were updated by hand
    net.tx(net.update(h, {"player": ([P(2, "b", 0.0, 0.0, 0.0)], [])}))
    net.conn.update()
    net.driver.tick()
    assert list(players.entities) == [1] and len(applied) == 1
    with pytest.raises(RuntimeError, match="closed"):
        net.driver.sync(P)


class _Decoding(DbConnection):
    """A connection whose decoding progress the test sets (the SDK reports 1.0 both when nothing is being
    decoded and when a message is decoded but not applied yet)."""

    decoded = 1.0

    @property
    def progress(self) -> float:
        return self.decoded


def test_the_loading_progress_never_goes_back_while_rows_wait_to_be_applied(mb: ModuleType) -> None:
    probe = Net(mb)
    conn = _Decoding(mb.MODULE, "localhost:3000", "db", transport_factory=probe.server)
    net = Net(mb, client=conn)
    net.server = probe.server
    net.connect()
    net.driver.sync(mb.Player)
    assert net.driver.progress == 0.0  # connected, nothing arrived yet
    conn.decoded = 0.5
    assert net.driver.progress == pytest.approx(0.4)
    conn.decoded = 1.0  # every row decoded, not applied yet: not a step back to 0
    assert net.driver.progress == pytest.approx(0.4)
    conn.close()
    net.tick()
    assert net.driver.progress == 0.0  # a closed connection is not loading


def test_tick_seconds_is_the_time_the_last_tick_took_steppers_included(mb: ModuleType) -> None:
    net = Net(mb).connect()

    class Slow:
        def advance(self, now: float) -> None:
            time.sleep(0.02)

    net.driver.tick(0.016)
    quick = net.driver.tick_seconds
    assert 0.0 < quick < 0.02
    net.driver.add_stepper(Slow())
    net.driver.tick(0.016)
    assert 0.02 <= net.driver.tick_seconds < 1.0
