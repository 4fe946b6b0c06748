"""Snapshot interpolation: values between the snapshots they interpolate, short-way angles, capped
extrapolation, snaps, the automatic delay, the adaptive clock, tick timelines (unit tests and hypothesis)."""

from __future__ import annotations

import math
from types import SimpleNamespace as Row
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacetime_game.engine import Interpolator

EPS = 1e-6


def frames(dt: float, start: float, end: float) -> list[float]:
    n = round((end - start) / dt)
    return [start + i * dt for i in range(1, n + 1)]


def test_a_new_entity_is_drawn_at_once_at_its_first_snapshot() -> None:
    ip = Interpolator(fields=("x", "y"))
    ip.push("a", Row(x=3, y=4.5), 10.0)
    state = ip.get("a")
    assert (state.x, state.y) == (3.0, 4.5)
    assert state.key == "a" and state.row.x == 3 and "a" in ip and len(ip) == 1
    ip.advance(10.0)
    assert (state.x, state.y) == (3.0, 4.5) and not state.moving


def test_linear_motion_is_drawn_exactly_one_delay_behind() -> None:
    ip = Interpolator(fields=("x",), delay=0.1)
    now = 0.0
    state = None
    for i, now in enumerate(frames(1 / 60, 0.0, 3.0)):
        if i % 3 == 0:  # 20 Hz updates of x = 10 * t
            ip.push(1, Row(x=10 * now), now)
        ip.advance(now)
        state = ip.get(1)
        if now > 0.5:
            assert ip.render_time == pytest.approx(now - 0.1)
            assert state.x == pytest.approx(10 * (now - 0.1), abs=1e-6)
    assert state is not None and state.moving


def test_same_state_object_is_updated_in_place() -> None:
    ip = Interpolator()
    ip.push(1, Row(x=0, y=0), 0.0)
    state = ip.get(1)
    for now in frames(0.01, 0.0, 1.0):
        ip.push(1, Row(x=now, y=-now), now)
        ip.advance(now)
        assert ip.get(1) is state
    assert state.x > 0.5 and state.y < -0.5


@settings(max_examples=150, deadline=None)
@given(
    snaps=st.lists(
        st.tuples(st.floats(0.02, 0.1), st.floats(-1000, 1000), st.floats(-1000, 1000)),
        min_size=3,
        max_size=30,
    ),
    frame_dt=st.floats(0.004, 0.04),
)
def test_values_stay_between_the_two_snapshots_they_interpolate(
    snaps: list[tuple[float, float, float]], frame_dt: float
) -> None:
    """With a delay longer than any gap, at every frame whose render time lies within the snapshots
    pushed, each field lies between the two snapshots around the render time (and, from the second
    segment on, exactly on the line between them)."""
    ip = Interpolator(fields=("x", "y"), delay=0.25)
    stamps: list[float] = []
    arrivals = []
    t = 0.0
    for gap, x, y in snaps:
        t += gap
        arrivals.append((t, x, y))
    queue = list(arrivals)
    now = 0.0
    end = arrivals[-1][0]
    while now < end:
        now += frame_dt
        while queue and queue[0][0] <= now:
            at, x, y = queue.pop(0)
            ip.push("e", Row(x=x, y=y), at)
            stamps.append(at)
        ip.advance(now)
        r = ip.render_time
        assert r is not None
        pushed = arrivals[: len(stamps)]
        for i in range(len(pushed) - 1):
            (t0, x0, y0), (t1, x1, y1) = pushed[i], pushed[i + 1]
            if t0 <= r <= t1:
                state = ip.get("e")
                for v, a, b in ((state.x, x0, x1), (state.y, y0, y1)):
                    assert min(a, b) - EPS <= v <= max(a, b) + EPS
                    if i >= 1:
                        assert v == pytest.approx(a + (b - a) * (r - t0) / (t1 - t0), abs=1e-6)
                break


def short(a: float, b: float, turn: float) -> float:
    d = (b - a) % turn
    return d - turn if d >= turn / 2 else d


@settings(max_examples=200, deadline=None)
@given(
    a=st.floats(0, 360, exclude_max=True),
    b=st.floats(0, 360, exclude_max=True),
    degrees=st.booleans(),
)
def test_angles_take_the_short_way(a: float, b: float, degrees: bool) -> None:
    turn = 360.0 if degrees else math.tau
    a, b = a / 360 * turn, b / 360 * turn
    ip = Interpolator(fields=(), angles=("heading",), degrees=degrees, delay=0.1)
    for t, value in ((0.0, a), (0.05, a), (0.15, b)):
        ip.push(1, Row(heading=value), t)
        ip.advance(t)
    span = short(a, b, turn)
    for now in frames(0.01, 0.15, 0.25):
        ip.advance(now)
        v = ip.get(1).heading
        assert 0.0 <= v < turn + EPS
        u = (now - 0.1 - 0.05) / 0.1
        travelled = short(a, v, turn)
        # on the short arc from a toward b, never past it: |travelled| <= |span|, same direction
        assert abs(travelled) <= abs(span) + 1e-6
        assert travelled == pytest.approx(span * u, abs=1e-6)
    assert short(ip.get(1).heading, b, turn) == pytest.approx(0.0, abs=1e-6)


@settings(max_examples=150, deadline=None)
@given(
    velocity=st.floats(-500, 500),
    cap=st.one_of(st.none(), st.floats(0.0, 0.3)),
    gap=st.floats(0.02, 0.1),
)
def test_extrapolation_never_exceeds_its_cap(velocity: float, cap: float | None, gap: float) -> None:
    ip = Interpolator(fields=("x",), delay=2 * gap, extrapolate=cap)
    now = 0.0
    last = 0.0
    for k in range(10):
        now = k * gap
        last = velocity * now
        ip.push(1, Row(x=last), now)
        ip.advance(now)
    limit = (ip.interval if cap is None else cap) * abs(velocity)
    seen = 0.0
    sign = 1.0 if velocity >= 0 else -1.0
    for t in frames(0.005, now, now + 1.0):
        ip.advance(t)
        past = (ip.get(1).x - last) * sign  # how far beyond the newest snapshot, along the motion
        seen = max(seen, past)
        assert past <= limit + 1e-6
    state = ip.get(1)
    assert not state.moving and not state.extrapolating and ip.moving == 0
    if cap is not None and cap > 0.05 and abs(velocity) > 1:
        assert seen > 0.5 * limit  # it did extrapolate


def test_extrapolation_default_is_one_interval_then_back_to_the_newest_snapshot() -> None:
    """Past its newest snapshot an entity keeps moving for one interval; if nothing newer comes, it
    stopped there: it glides back (never beyond the overshoot) and is held exactly at the snapshot."""
    ip = Interpolator(fields=("x",), delay=0.1)
    for k in range(20):
        ip.push(1, Row(x=k * 1.0), k * 0.05)
        ip.advance(k * 0.05)
    assert ip.interval == pytest.approx(0.05)
    ip.advance(0.95 + 0.1 + 0.025)  # render time half an interval past the newest snapshot
    assert ip.get(1).extrapolating and ip.get(1).x == pytest.approx(19.5)
    xs = []
    for t in frames(0.01, 1.075, 1.5):
        ip.advance(t)
        xs.append(ip.get(1).x)
    peak = xs.index(max(xs))
    assert 19.9 < max(xs) <= 20.0 + 1e-9 and xs[peak:] == sorted(xs[peak:], reverse=True)
    assert xs[-1] == 19.0 and not ip.get(1).moving and ip.moving == 0


@settings(max_examples=150, deadline=None)
@given(threshold=st.floats(1.0, 500.0), ratio=st.floats(0.05, 3.0), angle=st.floats(0, math.tau))
def test_snaps_happen_above_the_threshold_and_not_below(threshold: float, ratio: float, angle: float) -> None:
    jump = threshold * ratio
    if abs(jump - threshold) < 1e-6 * threshold:
        return
    dx, dy = jump * math.cos(angle), jump * math.sin(angle)
    ip = Interpolator(fields=("x", "y"), delay=0.1, snap=threshold)
    ip.push(1, Row(x=0.0, y=0.0), 0.0)
    ip.push(1, Row(x=0.0, y=0.0), 0.05)
    ip.push(1, Row(x=dx, y=dy), 0.1)
    ip.advance(0.1)
    ip.advance(0.175)  # render time 0.075: halfway through the jump's segment
    state = ip.get(1)
    if jump >= threshold:
        assert (state.x, state.y) == (0.0, 0.0)
        ip.advance(0.2 + 1e-9)
        assert state.x == pytest.approx(dx) and state.y == pytest.approx(dy)
    else:
        assert state.x == pytest.approx(dx / 2) and state.y == pytest.approx(dy / 2)


def test_a_forced_snap_and_an_unlimited_threshold() -> None:
    ip = Interpolator(fields=("x",), delay=0.1)
    for k, x in enumerate([0.0, 0.0, 1e9]):
        ip.push(1, Row(x=x), k * 0.05)
    ip.push(2, Row(x=0.0), 0.0)
    ip.push(2, Row(x=0.0), 0.05)
    ip.push(2, Row(x=10.0), 0.1, snap=True)
    ip.advance(0.1)
    ip.advance(0.175)
    assert ip.get(1).x == pytest.approx(5e8)  # no threshold: even a huge jump is interpolated
    assert ip.get(2).x == 0.0


def run_rate(ip: Interpolator, start: float, end: float, gap: float) -> float:
    now, next_push, x = start, start, 0.0
    while now < end:
        now += 1 / 60
        if now >= next_push:
            next_push += gap
            x += 1
            ip.push(1, Row(x=x), now)
            ip.push(2, Row(x=-x), now)
        ip.advance(now)
    return now


def test_the_automatic_delay_tracks_a_changing_update_rate() -> None:
    ip = Interpolator(fields=("x",))
    now = run_rate(ip, 0.0, 3.0, 0.05)
    assert ip.delay == pytest.approx(0.1, rel=0.25)
    now = run_rate(ip, now, now + 6.0, 0.2)
    assert ip.delay == pytest.approx(0.4, rel=0.25)
    run_rate(ip, now, now + 4.0, 0.05)
    assert ip.delay == pytest.approx(0.1, rel=0.25)
    assert Interpolator(delay_intervals=3.0).delay == pytest.approx(0.3)  # before any update: 0.1 s


def test_long_pauses_are_not_update_intervals() -> None:
    ip = Interpolator(fields=("x",), max_interval=0.5)
    now = run_rate(ip, 0.0, 2.0, 0.05)
    ip.push(1, Row(x=0.0), now + 10.0)
    ip.advance(now + 10.0)
    assert ip.interval == pytest.approx(0.05, rel=0.2)


def test_the_adaptive_clock_changes_speed_gently_and_slows_when_dry() -> None:
    ip = Interpolator(fields=("x",), adaptive=True, max_rate_change=0.1)
    now, prev_r, x = 0.0, None, 0.0
    next_push = 0.0
    gap = 0.05
    for i in range(900):
        now += 1 / 60
        if i == 300:
            gap = 0.2  # the delay grows from 0.1 to 0.4 s: the clock slows down instead of jumping
        if now >= next_push:
            next_push += gap
            x += 1
            ip.push(1, Row(x=x), now)
        ip.advance(now)
        r = ip.render_time
        assert r is not None
        if prev_r is not None:
            step = r - prev_r
            assert (1 - 0.1) / 60 - EPS <= step <= (1 + 0.1) / 60 + EPS
            assert 0.9 - EPS <= ip.rate <= 1.1 + EPS
        prev_r = r
    assert now - ip.render_time == pytest.approx(ip.delay, rel=0.2)
    # no more data: the buffer runs dry and the clock slows down
    for _ in range(60):
        now += 1 / 60
        ip.advance(now)
    assert ip.depth < 0 and ip.rate == pytest.approx(0.9)


@settings(max_examples=60, deadline=None)
@given(jitter=st.lists(st.floats(0.0, 0.04), min_size=80, max_size=80))
def test_a_tick_column_gives_the_timeline_whatever_the_arrival_jitter(jitter: list[float]) -> None:
    """The server moves x = tick at 20 Hz; rows arrive with jitter; drawn on the tick timeline, x is
    exactly the render time in ticks (a straight line), which arrival stamps could not give."""
    ip = Interpolator(fields=("x",), time="tick", time_scale=0.05, delay=0.15)
    arrivals = sorted((tick * 0.05 + 0.03 + j, tick) for tick, j in enumerate(jitter))
    queue = list(arrivals)
    now = 0.0
    checked = 0
    while queue:
        now += 1 / 60
        while queue and queue[0][0] <= now:
            _, tick = queue.pop(0)
            ip.push(1, Row(x=float(tick), tick=tick), now)
        ip.advance(now)
        r = ip.render_time
        if now > 1.0 and queue and r is not None:
            assert ip.get(1).x == pytest.approx(r / 0.05, abs=1e-6)
            checked += 1
    assert checked > 60


def test_a_timestamp_function_and_a_timeline_restart() -> None:
    ip = Interpolator(fields=("x",), time=lambda row: row.micros, time_scale=1e-6, delay=0.1)
    for k in range(10):
        ip.push(1, Row(x=k, micros=1_000_000_000 + k * 50_000), k * 0.05)
        ip.advance(k * 0.05)
    ip.push(1, Row(x=99, micros=0), 0.5)  # the timeline went back (a restart): start over there
    ip.advance(0.5)
    assert ip.get(1).x == 99.0 and not ip.get(1).moving


def test_two_updates_at_the_same_time_keep_the_newer() -> None:
    ip = Interpolator(fields=("x",), delay=0.1)
    ip.push(1, Row(x=0.0), 0.0)
    ip.advance(0.0)
    ip.push(1, Row(x=1.0), 0.05)
    ip.push(1, Row(x=5.0), 0.05)
    assert ip.get(1).buffered == 1
    ip.advance(0.125)
    # from where it was drawn (0.0 at render time -0.1) to the newer value at 0.05
    assert ip.get(1).x == pytest.approx(5.0 * 0.125 / 0.15)
    ip.advance(0.15)
    assert ip.get(1).x == pytest.approx(5.0)


def test_held_entities_leave_the_frame_loop_until_their_next_snapshot() -> None:
    ip = Interpolator(fields=("x",), delay=0.1)
    for key in range(50):
        ip.push(key, Row(x=0.0), 0.0)
    ip.advance(0.0)
    assert ip.moving == 0
    ip.push(7, Row(x=1.0), 0.05)
    ip.advance(0.05)
    assert ip.moving == 1 and ip.get(7).moving
    for now in frames(0.01, 0.05, 1.0):
        ip.advance(now)
    assert ip.moving == 0 and ip.get(7).x == pytest.approx(1.0)


def test_moved_lists_exactly_the_entities_a_frame_wrote() -> None:
    """``moved``: the entities the last frame drew (including the one it brought to rest), never one held
    still, and an entity a restarted timeline moved outside a frame; the one place loop an adapter runs."""
    ip = Interpolator(fields=("x",), delay=0.1, extrapolate=0.0)
    for key in range(20):
        ip.push(key, Row(x=0.0, t=0.0), 0.0)
    ip.advance(0.0)
    assert ip.moved == []  # new entities are drawn by push itself
    ip.push(3, Row(x=1.0), 0.05)
    ip.push(4, Row(x=2.0), 0.05)
    seen: dict[int, list[float]] = {3: [], 4: []}
    for now in frames(0.01, 0.0, 0.4):
        ip.advance(now)
        for e in ip.moved:
            seen[e.key].append(e.x)  # type: ignore[index]
        assert {e.key for e in ip.moved} <= {3, 4}
    assert seen[3][-1] == 1.0 and seen[4][-1] == 2.0  # the frame that reached the rest is listed
    assert all(x > 0.0 for x in seen[3]) and seen[3] == sorted(seen[3])
    ip.advance(0.5)
    assert ip.moved == [] and ip.moving == 0

    tl = Interpolator(fields=("x",), time="t", delay=0.1)
    tl.push(1, Row(x=0.0, t=100.0), 0.0)
    tl.advance(0.0)
    tl.push(1, Row(x=9.0, t=0.0), 0.05)  # the timeline went back: drawn at 9 at once, outside a frame
    tl.advance(0.05)
    assert [e.key for e in tl.moved] == [1] and tl.get(1).x == 9.0
    tl.advance(0.06)
    assert tl.moved == []


def test_remove_and_clear() -> None:
    ip = Interpolator(fields=("x",))
    ip.push(1, Row(x=0.0), 0.0)
    ip.push(1, Row(x=1.0), 0.05)
    ip.push(2, Row(x=0.0), 0.0)
    ip.advance(0.05)
    ip.remove(1)
    ip.remove(12345)  # unknown: nothing happens
    assert 1 not in ip and len(ip) == 1
    with pytest.raises(KeyError):
        ip.get(1)
    ip.advance(0.1)
    ip.clear()
    assert len(ip) == 0 and ip.moving == 0 and list(ip) == []


def test_depth_counts_the_buffered_time() -> None:
    ip = Interpolator(fields=("x",), delay=0.2)
    assert ip.depth == 0.0 and ip.render_time is None
    for k in range(5):
        ip.push(1, Row(x=k), k * 0.05)
    ip.advance(0.2)
    assert ip.depth == pytest.approx(0.2)
    assert ip.get(1).buffered >= 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fields": ()}, "at least one field"),
        ({"fields": ("x", "x")}, "twice"),
        ({"fields": ("not a name",)}, "identifier"),
        ({"fields": ("_x",)}, "reserved"),
        ({"fields": ("key",)}, "reserved"),
        ({"fields": ("class",)}, "identifier"),
        ({"delay": -1.0}, "delay"),
        ({"max_rate_change": 1.5}, "max_rate_change"),
        ({"time_scale": 0.0}, "time_scale"),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_message(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Interpolator(**kwargs)  # type: ignore[arg-type]


class _TableRow(tuple[int, float, float, float]):
    """A row shaped like a generated table class: a tuple with ``column_names`` and properties."""

    __slots__ = ()
    column_names = ("id", "x", "y", "heading")

    @property
    def x(self) -> float:
        return self[1]

    @property
    def y(self) -> float:
        return self[2]

    @property
    def heading(self) -> float:
        return self[3]


_step = st.tuples(
    st.integers(0, 3),  # entity
    st.floats(-50, 50),  # x
    st.floats(-50, 50),  # y
    st.floats(0, 6.3),  # heading
    st.sampled_from([0.0, 0.0, 0.01, 0.05, 0.05, 0.05, 0.1, 0.4, 2.0, -0.02, -3.0]),  # time step
    st.booleans(),  # forced snap
    st.integers(0, 3),  # frames after
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_step, min_size=1, max_size=60), st.sampled_from([None, 30.0]), st.sampled_from([4, 64]))
def test_the_fast_push_matches_the_general_one(
    steps: list[tuple[int, float, float, float, float, bool, int]], snap: float | None, max_buffer: int
) -> None:
    """Pushing rows of a generated table class (read by index), plain rows (read by attribute), either
    with the fast path turned off, and the rows of one time together (``push_many``, table rows and
    plain ones mixed in a batch) draws every entity at the same place, frame after frame."""
    opts: dict[str, object] = {"snap": snap, "max_buffer": max_buffer}
    by_index = Interpolator(("x", "y"), ("heading",), **opts)  # type: ignore[arg-type]
    by_attr = Interpolator(("x", "y"), ("heading",), **opts)  # type: ignore[arg-type]
    general = Interpolator(("x", "y"), ("heading",), **opts)  # type: ignore[arg-type]
    general._fast_for = lambda row: lambda *a: -1.0  # type: ignore[method-assignment]
    general._fast_class = object  # never a row's class: every push asks _fast_for
    batched = Interpolator(("x", "y"), ("heading",), **opts)  # type: ignore[arg-type]
    batch: tuple[list[int], list[Any]] = ([], [])

    def flush() -> None:
        if batch[0]:
            batched.push_many(batch[0], batch[1], now)
            batch[0].clear()
            batch[1].clear()

    now = 10.0
    for n, (key, x, y, heading, dt, forced, frames) in enumerate(steps):
        if dt != 0.0 or forced:
            flush()
        now += dt
        by_index.push(key, _TableRow((key, x, y, heading)), now, snap=forced)
        by_attr.push(key, Row(x=x, y=y, heading=heading), now, snap=forced)
        general.push(key, Row(x=x, y=y, heading=heading), now, snap=forced)
        if forced:
            batched.push(key, Row(x=x, y=y, heading=heading), now, snap=True)
        else:
            batch[0].append(key)
            batch[1].append(_TableRow((key, x, y, heading)) if n % 3 else Row(x=x, y=y, heading=heading))
        if frames:
            flush()
        for _ in range(frames):
            now += 1 / 60
            for interp in (by_index, by_attr, general, batched):
                interp.advance(now)
            want = {s.key: (s.x, s.y, s.heading, s.buffered, s.moving) for s in general}
            assert {s.key: (s.x, s.y, s.heading, s.buffered, s.moving) for s in by_index} == want
            assert {s.key: (s.x, s.y, s.heading, s.buffered, s.moving) for s in by_attr} == want
            assert {s.key: (s.x, s.y, s.heading, s.buffered, s.moving) for s in batched} == want
            assert by_index.interval == by_attr.interval == general.interval == batched.interval
            assert by_index.depth == general.depth == batched.depth


class _Vec(tuple[float, float]):
    """A nested product column shaped like a generated ``DbVector2``."""

    __slots__ = ()

    @property
    def x(self) -> float:
        return self[0]

    @property
    def y(self) -> float:
        return self[1]


class _EntityRow(tuple[int, _Vec, int]):
    """Blackholio's ``entity`` row shape: a position column holding a vector, and a mass."""

    __slots__ = ()
    column_names = ("entity_id", "position", "mass")

    @property
    def entity_id(self) -> int:
        return self[0]

    @property
    def position(self) -> _Vec:
        return self[1]

    @property
    def mass(self) -> int:
        return self[2]


def test_dotted_fields_read_into_a_column_and_are_named_by_their_last_part() -> None:
    """``fields=("position.x", "position.y", "mass")`` interpolates a vector column: read by index then
    attribute from generated rows, by attributes from plain objects, one by one or in bulk, exactly as a
    flat row with ``x``, ``y``, ``mass`` would be."""
    nested = Interpolator(("position.x", "position.y", "mass"), snap=40.0)
    plain = Interpolator(("position.x", "position.y", "mass"), snap=40.0)
    bulk = Interpolator(("position.x", "position.y", "mass"), snap=40.0)
    flat = Interpolator(("x", "y", "mass"), snap=40.0)
    assert nested.names == ("x", "y", "mass") and nested.fields == ("position.x", "position.y", "mass")
    now = 1.0
    for step in range(40):
        keys, rows = [], []
        for key in range(3):
            x, y, m = 10.0 * key + 3.0 * step, 5.0 - step * (key + 1), 15 + step // 4
            if step == 20 and key == 1:
                x += 100.0  # a teleport
            nested.push(key, _EntityRow((key, _Vec((x, y)), m)), now)
            plain.push(key, Row(position=Row(x=x, y=y), mass=m), now)
            keys.append(key)
            rows.append(_EntityRow((key, _Vec((x, y)), m)))
            flat.push(key, Row(x=x, y=y, mass=m), now)
        bulk.push_many(keys, rows, now)
        for _ in range(3):
            now += 1 / 60
            for interp in (nested, plain, bulk, flat):
                interp.advance(now)
            want = {s.key: (s.x, s.y, s.mass) for s in flat}
            for interp in (nested, plain, bulk):
                assert {s.key: (s.x, s.y, s.mass) for s in interp} == want
    # the generated rows took the fast path that reads by index (row[1].x), not by attribute
    assert bulk._fast_class is _EntityRow and bulk._many is not bulk._k.push_attr.many


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        (("position..x",), "dotted path"),
        (("position.1",), "dotted path"),
        (("a.x", "b.x"), "declared twice"),
        (("position._x",), "reserved"),
    ],
)
def test_bad_dotted_fields_are_refused(fields: tuple[str, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Interpolator(fields)
