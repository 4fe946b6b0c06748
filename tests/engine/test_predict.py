"""Prediction of the local player: (a) replay of unacknowledged input on the server row, (b) per-tick
stepping re-based on a lagged server; corrections smoothed without jumps (unit tests and hypothesis)."""

from __future__ import annotations

import dataclasses
import math
import random
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacetime_game.engine import InputPredictor, InputThrottle, TickPredictor
from spacetime_game.sdk import ReducerCall


@dataclasses.dataclass(frozen=True)
class Player:
    x: float
    y: float
    heading: float = 0.0


def move(p: Player, d: tuple[float, float]) -> Player:
    return dataclasses.replace(p, x=p.x + d[0], y=p.y + d[1])


def new_call(n: int) -> ReducerCall:
    return ReducerCall(n, "move", b"", 0.0)


def settle(call: ReducerCall, status: str = "committed", rtt: float = 0.1) -> None:
    call.set_outcome(status, "" if status == "committed" else "blocked", rtt, lambda job: None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------- (a)


def test_input_is_applied_at_once() -> None:
    p: InputPredictor[Player, tuple[float, float]] = InputPredictor(move)
    p.authoritative(Player(0, 0))
    p.advance(0.0)
    assert p.input((1, 0), new_call(1)) == 1
    assert (p.rendered.x, p.rendered.y) == (1.0, 0.0)  # drawn before the next frame
    assert p.state == Player(1, 0) and p.pending == 1 and p.sequence == 1


def test_unacknowledged_inputs_are_replayed_on_the_server_row() -> None:
    p: InputPredictor[Player, tuple[float, float]] = InputPredictor(move, smoothing=0.0)
    p.authoritative(Player(0, 0))
    calls = [new_call(i) for i in range(4)]
    for c in calls:
        p.input((1, 0), c)
    settle(calls[0])
    settle(calls[1])
    p.authoritative(Player(2, 0))  # the server applied the first two
    p.advance(0.1)
    assert p.pending == 2 and p.state == Player(4, 0) and p.rendered.x == 4.0
    settle(calls[2])
    settle(calls[3])
    p.authoritative(Player(4, 0))
    p.advance(0.2)
    assert p.pending == 0 and p.state == Player(4, 0)


def test_failed_inputs_are_dropped() -> None:
    p: InputPredictor[Player, tuple[float, float]] = InputPredictor(move, smoothing=0.0)
    p.authoritative(Player(0, 0))
    ok, refused, later = new_call(1), new_call(2), new_call(3)
    p.input((1, 0), ok)
    p.input((0, 5), refused)  # into a wall: the server says no
    p.input((1, 0), later)
    assert p.state == Player(2, 5)
    settle(refused, "failed")
    p.advance(0.0)  # no row needed: a failed call is never in the server's state
    assert p.state == Player(2, 0) and p.rejected == 1
    settle(ok)
    p.authoritative(Player(1, 0))
    p.advance(0.1)
    assert p.state == Player(2, 0) and p.pending == 1


def test_a_committed_input_with_no_row_change_settles_after_a_few_frames() -> None:
    p: InputPredictor[Player, tuple[float, float]] = InputPredictor(move, smoothing=0.0, settle_frames=2)
    p.authoritative(Player(0, 0))
    c = new_call(1)
    p.input((1, 0), c)
    settle(c)  # the reducer committed without changing the row (blocked and clamped, say)
    p.advance(0.0)
    p.advance(0.01)
    assert p.state == Player(1, 0)
    p.advance(0.02)
    assert p.state == Player(0, 0) and p.pending == 0


def test_an_unsent_input_lasts_until_the_next_row() -> None:
    p: InputPredictor[Player, tuple[float, float]] = InputPredictor(move, smoothing=0.0)
    p.input((1, 0), None)  # before any row: recorded, applied once the row arrives
    p.authoritative(Player(0, 0))
    p.advance(0.0)
    assert p.state == Player(0, 0) and p.pending == 0


@settings(max_examples=100, deadline=None)
@given(
    moves=st.lists(st.tuples(st.integers(-3, 3), st.integers(-3, 3), st.booleans()), min_size=1, max_size=40),
    latency=st.integers(1, 12),
)
def test_prediction_converges_to_the_server_when_all_inputs_are_acknowledged(
    moves: list[tuple[int, int, bool]], latency: int
) -> None:
    """A server that refuses some moves answers ``latency`` frames later; once everything is answered
    and the smoothing time has passed, prediction and drawn state equal the server's row."""
    p: InputPredictor[Player, tuple[float, float]] = InputPredictor(move, smoothing=0.1)
    server = Player(0, 0)
    p.authoritative(server)
    inflight: deque[tuple[int, ReducerCall, tuple[int, int], bool]] = deque()
    frame = 0
    todo = list(moves)
    while todo or inflight or frame < 60 + len(moves):
        frame += 1
        now = frame / 60
        if todo:
            dx, dy, ok = todo.pop(0)
            call = new_call(frame)
            p.input((dx, dy), call)
            inflight.append((frame + latency, call, (dx, dy), ok))
        while inflight and inflight[0][0] <= frame:
            _, call, d, ok = inflight.popleft()
            if ok:
                server = move(server, d)
                settle(call)
                p.authoritative(server)
            else:
                settle(call, "failed")
        p.advance(now)
        expected = server
        for _, _, d, _ in inflight:
            expected = move(expected, d)
        assert p.state == expected  # always: the server's row plus the inputs still in flight
    assert p.state == server and p.pending == 0
    assert p.rendered.x == pytest.approx(server.x) and p.rendered.y == pytest.approx(server.y)
    assert p.rejected == sum(1 for *_, ok in moves if not ok)


@settings(max_examples=100, deadline=None)
@given(
    corrections=st.lists(
        st.tuples(st.integers(1, 20), st.floats(-40, 40), st.floats(-40, 40)), min_size=1, max_size=20
    ),
    smoothing=st.floats(0.05, 0.5),
)
def test_smoothing_never_jumps_more_than_its_bound_per_frame(
    corrections: list[tuple[int, float, float]], smoothing: float
) -> None:
    """The server corrects the player now and then (always below the snap distance, which is larger than
    any error these corrections can add up to): the drawn state never moves by more than ``error * dt /
    smoothing`` per frame, ``error`` being the largest gap between the drawn state and a correction, and
    it reaches the prediction ``smoothing`` seconds after the last correction."""
    snap = 10_000.0
    p: InputPredictor[Player, tuple[float, float]] = InputPredictor(move, smoothing=smoothing, snap=snap)
    p.authoritative(Player(0, 0))
    dt = 1 / 60
    now = 0.0
    p.advance(now)
    server = Player(0, 0)
    prev = (p.rendered.x, p.rendered.y)
    error = 0.0
    for wait, cx, cy in corrections:
        for i in range(wait):
            now += dt
            if i == 0:
                server = Player(server.x + cx, server.y + cy)
                error = max(error, math.dist((server.x, server.y), prev))
                assert error < snap
                p.authoritative(server)
            p.advance(now)
            # no input: the prediction moves only by the corrections, which the drawn state smooths
            jump = math.dist((p.rendered.x, p.rendered.y), prev)
            assert jump <= error * dt / smoothing + 1e-6
            prev = (p.rendered.x, p.rendered.y)
    for _ in range(math.ceil(smoothing / dt) + 1):
        now += dt
        p.advance(now)
    assert p.rendered.x == pytest.approx(server.x) and p.rendered.y == pytest.approx(server.y)
    assert p.error == 0.0


def test_a_large_error_snaps_and_a_small_one_is_smoothed() -> None:
    p: InputPredictor[Player, tuple[float, float]] = InputPredictor(move, smoothing=0.2, snap=50.0)
    p.authoritative(Player(0, 0))
    p.advance(0.0)
    p.authoritative(Player(10, 0))
    p.advance(0.1)
    assert p.rendered.x == pytest.approx(5.0)  # halfway through the smoothing
    p.advance(0.2)
    assert p.rendered.x == pytest.approx(10.0)
    p.authoritative(Player(500, 0))
    p.advance(0.21)
    assert p.rendered.x == 500.0  # a teleport: shown at once


def test_angles_are_smoothed_the_short_way() -> None:
    p: InputPredictor[Player, tuple[float, float]] = InputPredictor(
        move, fields=("x",), angles=("heading",), degrees=True, smoothing=0.2
    )
    p.authoritative(Player(0, 0, heading=350.0))
    p.advance(0.0)
    p.authoritative(Player(0, 0, heading=10.0))
    p.advance(0.1)
    assert p.rendered.heading == pytest.approx(0.0, abs=1e-9) or p.rendered.heading == pytest.approx(360.0)


# --------------------------------------------------------------------------------------------- (b)


@dataclasses.dataclass(frozen=True)
class Circle:
    x: float
    y: float


SPEED = 200.0


def integrate(c: Circle, direction: tuple[float, float], dt: float) -> Circle:
    return Circle(c.x + direction[0] * SPEED * dt, c.y + direction[1] * SPEED * dt)


def test_tick_prediction_moves_every_frame_and_responds_at_once() -> None:
    p: TickPredictor[Circle, tuple[float, float]] = TickPredictor(integrate, (0.0, 0.0), tick=0.05)
    p.authoritative(Circle(0, 0), 0.0)
    p.advance(0.0)
    p.set_input((1.0, 0.0))
    p.advance(1 / 60)
    assert p.rendered.x == pytest.approx(SPEED / 60)  # the next frame, not the next tick
    for i in range(2, 31):
        p.advance(i / 60)
    assert p.rendered.x == pytest.approx(SPEED * 0.5)


@pytest.mark.parametrize("auto_lead", [False, True])
@pytest.mark.parametrize("latency", [0.03, 0.1, 0.2])
def test_tick_prediction_stays_close_to_a_lagged_server(latency: float, auto_lead: bool) -> None:
    """A Blackholio-like server (a 50 ms tick moving the player toward its last direction) behind a
    channel with ``latency`` each way (and jitter); input sent at 20 Hz through the throttle.

    The prediction shows where the server will have the player once the input sent now arrives: it stays
    within a few ticks of motion of the server's state ``latency`` later, whatever the latency (the
    rows that arrive are ``2 * latency`` of motion away from it), and the drawn state never jumps."""
    rng = random.Random(int(latency * 1000) + auto_lead)
    tick = 0.05
    smoothing = 0.1
    server = Circle(0.0, 0.0)
    server_dir = (0.0, 0.0)
    history: list[tuple[float, Circle]] = [(0.0, server)]
    to_server: list[tuple[float, tuple[float, float], ReducerCall, float]] = []
    to_client: list[tuple[float, Circle]] = []
    acks: list[tuple[float, ReducerCall, float]] = []
    n = 0
    now = 0.0

    def send(direction: tuple[float, float]) -> ReducerCall:
        nonlocal n
        n += 1
        call = ReducerCall(n, "update_player_input", b"", now)
        to_server.append((now + latency + rng.uniform(0, 0.01), direction, call, now))
        return call

    p: TickPredictor[Circle, tuple[float, float]] = TickPredictor(
        integrate,
        (0.0, 0.0),
        tick=tick,
        smoothing=smoothing,
        lead=None if auto_lead else 2 * latency + tick / 2,
    )
    throttle: InputThrottle[tuple[float, float], ReducerCall] = InputThrottle(send, rate=20.0)
    next_tick = 0.013  # the server's tick has its own phase
    direction = (0.0, 0.0)
    drawn_at: list[tuple[float, float, float]] = []
    rows_at: list[tuple[float, float, float]] = []
    prev_drawn: tuple[float, float] | None = None
    max_step = 0.0
    for frame in range(60 * 12):
        now = frame / 60
        # the server side
        while next_tick <= now:
            for item in sorted(m for m in to_server if m[0] <= next_tick):
                to_server.remove(item)
                server_dir = item[1]  # the input reducer commits on arrival: it stores the direction
                acks.append((item[0] + latency, item[2], item[3]))
            server = integrate(server, server_dir, tick)
            history.append((next_tick, server))
            to_client.append((next_tick + latency + rng.uniform(0, 0.01), server))
            next_tick += tick
        # the client side
        for ack in [a for a in acks if a[0] <= now]:
            acks.remove(ack)
            ack[1].set_outcome("committed", "", now - ack[2], lambda job: None)
        for m in sorted(m for m in to_client if m[0] <= now):
            to_client.remove(m)
            p.authoritative(m[1], now)
            rows_at.append((now, m[1].x, m[1].y))
        if frame % 30 == 0:
            direction = rng.choice([(1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0), (0.0, 0.0)])
        p.set_input(direction, throttle.set(direction, now))
        throttle.advance(now)
        p.advance(now)
        if p.state is None:
            continue
        drawn = (p.rendered.x, p.rendered.y)
        if prev_drawn is not None and frame > 60:
            max_step = max(max_step, math.dist(drawn, prev_drawn))
        prev_drawn = drawn
        drawn_at.append((now, *drawn))

    def server_at(t: float) -> Circle:
        return [c for ts, c in history if ts <= t][-1]

    def p95(errors: list[float]) -> float:
        return sorted(errors)[int(len(errors) * 0.95)]

    horizon = history[-1][0] - latency - tick
    pred_err = [math.dist((x, y), astuple(server_at(t + latency))) for t, x, y in drawn_at if 1 < t < horizon]
    row_err = [math.dist((x, y), astuple(server_at(t + latency))) for t, x, y in rows_at if 1 < t < horizon]
    assert p95(pred_err) <= SPEED * 2.5 * tick, (p95(pred_err), p95(row_err))
    if latency >= 0.1:  # what the player would see without prediction: 2 * latency of motion behind
        assert p95(row_err) >= SPEED * 2 * latency * 0.9
        assert p95(pred_err) < p95(row_err)
    # per frame: the motion, plus the smoothing of corrections of a couple of ticks of motion
    assert max_step <= SPEED / 60 + SPEED * 3 * tick / 60 / smoothing
    if auto_lead:
        assert p.lead == pytest.approx(2 * latency + tick / 2, abs=0.03)


def astuple(c: Circle) -> tuple[float, float]:
    return (c.x, c.y)


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="tick"):
        TickPredictor(integrate, (0.0, 0.0), tick=0.0)
    with pytest.raises(ValueError, match="smoothing"):
        InputPredictor(move, smoothing=-1.0)
    with pytest.raises(ValueError, match="twice"):
        InputPredictor(move, fields=("x", "x"))
    with pytest.raises(ValueError, match="at least one"):
        InputPredictor(move, fields=())


@dataclasses.dataclass(frozen=True)
class Vec:
    x: float
    y: float


@dataclasses.dataclass(frozen=True)
class Blob:
    """Blackholio's ``entity`` shape: the position is a vector column."""

    position: Vec
    mass: int


def test_dotted_fields_read_a_vector_column_and_render_by_their_last_part() -> None:
    def drift(b: Blob, d: tuple[float, float], dt: float) -> Blob:
        return Blob(Vec(b.position.x + d[0] * dt / 0.05, b.position.y + d[1] * dt / 0.05), b.mass)

    tick: TickPredictor[Blob, tuple[float, float]] = TickPredictor(
        drift, (0.0, 0.0), tick=0.05, fields=("position.x", "position.y", "mass"), lead=0.0
    )
    tick.authoritative(Blob(Vec(100.0, 50.0), 15), 0.0)
    tick.advance(0.0)
    assert (tick.rendered.x, tick.rendered.y, tick.rendered.mass) == (100.0, 50.0, 15.0)
    tick.set_input((1.0, -1.0))
    tick.advance(0.1)  # two ticks
    assert (tick.rendered.x, tick.rendered.y) == (pytest.approx(102.0), pytest.approx(48.0))
    step: InputPredictor[Blob, float] = InputPredictor(
        lambda b, dx: Blob(Vec(b.position.x + dx, b.position.y), b.mass), fields=("position.x",)
    )
    step.authoritative(Blob(Vec(5.0, 0.0), 20))
    step.input(2.0, None)
    assert step.rendered.x == 7.0
    with pytest.raises(ValueError, match="declared twice"):
        TickPredictor(drift, (0.0, 0.0), fields=("position.x", "velocity.x"))
