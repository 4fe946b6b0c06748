"""The input throttle: at most N sends a second, unchanged input skipped, the last change always sent."""

from __future__ import annotations

import itertools
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacetime_game.engine import InputThrottle


class Recorder:
    def __init__(self, fail: int = 0) -> None:
        self.sent: list[tuple[float, int]] = []
        self.now = 0.0
        self.fail = fail

    def __call__(self, value: int) -> str:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("not connected")
        self.sent.append((self.now, value))
        return f"call{len(self.sent)}"


def test_first_input_is_sent_at_once_and_returns_the_call() -> None:
    rec = Recorder()
    throttle = InputThrottle(rec, rate=20.0)
    assert throttle.set(1, 0.0) == "call1"
    assert throttle.last_call == "call1" and throttle.last_sent == 1 and throttle.sends == 1
    assert rec.sent == [(0.0, 1)]


def test_unchanged_input_is_not_sent_again() -> None:
    rec = Recorder()
    throttle = InputThrottle(rec, rate=20.0)
    for i in range(100):
        rec.now = i / 60
        throttle.set(7, rec.now)
        throttle.advance(rec.now)
    assert [v for _, v in rec.sent] == [7]


def test_a_change_within_the_period_waits_and_is_sent_by_advance() -> None:
    rec = Recorder()
    throttle = InputThrottle(rec, rate=10.0)
    throttle.set(1, 0.0)
    assert throttle.set(2, 0.01) is None and throttle.pending
    throttle.advance(0.05)
    assert rec.sent == [(0.0, 1)]
    rec.now = 0.1
    throttle.advance(0.1)
    assert rec.sent == [(0.0, 1), (0.1, 2)] and not throttle.pending


def test_a_change_undone_within_the_period_sends_nothing() -> None:
    rec = Recorder()
    throttle = InputThrottle(rec, rate=10.0)
    throttle.set(1, 0.0)
    throttle.set(2, 0.02)
    throttle.set(1, 0.04)
    throttle.advance(0.5)
    assert [v for _, v in rec.sent] == [1]


def test_custom_equality() -> None:
    rec = Recorder()
    throttle = InputThrottle(rec, rate=1000.0, equal=lambda a, b: abs(a - b) < 2)
    for i, v in enumerate([10, 11, 9, 13, 14]):
        throttle.set(v, i * 1.0)
    assert [v for _, v in rec.sent] == [10, 13]


def test_a_failing_send_is_logged_once_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder(fail=3)
    throttle = InputThrottle(rec, rate=20.0)
    with caplog.at_level(logging.ERROR, logger="spacetime_game.engine"):
        assert throttle.set(5, 0.0) is None
        for i in range(1, 20):
            rec.now = i * 0.02
            throttle.advance(rec.now)
    assert [v for _, v in rec.sent] == [5]
    assert rec.sent[0][0] >= 3 * 0.05 - 1e-9  # three tries, one period apart
    assert len([r for r in caplog.records if "failed" in r.getMessage()]) == 1


def test_reset_sends_the_same_input_again() -> None:
    rec = Recorder()
    throttle = InputThrottle(rec, rate=20.0)
    throttle.set(1, 0.0)
    throttle.reset()
    throttle.set(1, 0.001)
    assert [v for _, v in rec.sent] == [1, 1]


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rate"):
        InputThrottle(Recorder(), rate=0.0)


@settings(max_examples=200, deadline=None)
@given(
    rate=st.sampled_from([5.0, 20.0, 30.0, 60.0]),
    frames=st.lists(
        st.tuples(st.floats(0.001, 0.05), st.integers(0, 3)),
        min_size=1,
        max_size=200,
    ),
)
def test_rate_and_last_input_guarantees(rate: float, frames: list[tuple[float, int]]) -> None:
    """Sends are at least one period apart, each differs from the one before, and once input stops
    changing the last value set is the last value sent (within one period plus a frame)."""
    rec = Recorder()
    throttle = InputThrottle(rec, rate=rate)
    now = 0.0
    for dt, value in frames:
        now += dt
        rec.now = now
        throttle.set(value, now)
        throttle.advance(now)
    final = frames[-1][1]
    end = now + 1.0 / rate + 0.001
    while now < end:
        now += 0.01
        rec.now = now
        throttle.advance(now)
    times = [t for t, _ in rec.sent]
    values = [v for _, v in rec.sent]
    assert all(b - a >= 1.0 / rate - 1e-6 for a, b in itertools.pairwise(times))
    assert all(a != b for a, b in itertools.pairwise(values))
    assert values[-1] == final
    assert not throttle.pending
