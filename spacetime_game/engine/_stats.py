"""Net stats ready to draw: :class:`NetMonitor` samples a connection's public counters
(:attr:`DbConnection.stats <spacetime_game.sdk.DbConnection.stats>`, :attr:`~spacetime_game.sdk.DbConnection.state`)
once per frame and turns them into the figures a debug overlay shows: the update rate and its jitter,
reducer round trips (p50/p95), the backlog, bytes per second each way, the connection state, the
interpolation buffer depth (given by the caller), and short histories of round trips and update
intervals for a small graph.

It only reads counters and diffs them against the previous sample, on the game's thread, with a clock
the caller may pass in (tests use their own); the readout is one object updated in place, so sampling
allocates next to nothing per frame.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from spacetime_game.sdk import ConnectionState, DbConnection

__all__ = ["NetMonitor", "NetReadout", "percentile"]


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``sorted_values`` by the nearest-rank method (the same rule as
    :meth:`spacetime_game.sdk.NetStats.round_trip`): the smallest value with at least ``q`` of the
    values at or below it. None for no values."""
    n = len(sorted_values)
    if not n:
        return None
    return sorted_values[min(n - 1, max(0, math.ceil(q * n) - 1))]


@dataclass(slots=True)
class NetReadout:
    """What a :class:`NetMonitor` shows, as of its last sample (times in milliseconds, rates per second).

    The monitor updates this one object in place at each sample; copy it (``dataclasses.replace``) to
    keep a value. Figures that need data not seen yet are None (no round trip yet, fewer than two
    updates, no complete rate window yet...): show them as unknown, not as zero.
    """

    #: When the sample was taken (the monitor's clock, seconds).
    at: float = 0.0
    #: The connection's state.
    state: ConnectionState = "idle"
    #: Transactions applied per second, over the last rate window (None until the first window, which
    #: starts at the first sample, is over).
    updates_per_s: float | None = None
    #: The mean time between updates, over the interval history.
    update_interval_ms: float | None = None
    #: How much the time between updates varies: the standard deviation of the interval history.
    jitter_ms: float | None = None
    #: The median and 95th percentile of the round trip history (reducer call to result applied).
    rtt_p50_ms: float | None = None
    rtt_p95_ms: float | None = None
    #: The latest round trip.
    rtt_last_ms: float | None = None
    #: Messages received and waiting to be applied (as of the last ``update()``).
    backlog: int = 0
    #: Reducer calls sent whose result has not arrived.
    calls_in_flight: int = 0
    #: Bytes per second from and to the server (frames as sent), over the last rate window (None until
    #: the first window is over, like :attr:`updates_per_s`).
    bytes_in_per_s: float | None = None
    bytes_out_per_s: float | None = None
    #: How far the interpolation's newest snapshot is ahead of the render time, as the caller gave it.
    buffer_depth_ms: float | None = None
    #: Connections rebuilt since the start.
    reconnects: int = 0
    #: The latest round trips, oldest first (for a graph).
    rtt_history: deque[float] = field(default_factory=deque)
    #: The latest times between updates, oldest first (for a graph). Updates applied by the same
    #: frame count as arriving together: the first after the time since the previous update, the
    #: others after 0 ms (what the game saw: a stall then a burst shows as jitter).
    interval_history: deque[float] = field(default_factory=deque)


class NetMonitor:
    """Samples ``connection`` into a :class:`NetReadout` (:attr:`readout`): call :meth:`sample` once per
    frame (or a few times a second), after the frame's ``update()``.

    ``history`` is how many round trips and update intervals the histories keep (the percentiles and
    the jitter are computed over them); rates are recomputed every ``rate_window`` seconds (steady
    figures, readable on an overlay; None until the first window is over); ``reducers`` limits the round trips to those reducers (say, the
    input reducer); ``clock`` is the time source in seconds when :meth:`sample` is not given ``now``.
    """

    def __init__(
        self,
        connection: DbConnection,
        *,
        history: int = 120,
        rate_window: float = 1.0,
        reducers: Collection[str] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if history < 2:
            raise ValueError(f"history must keep at least 2 values, got {history}")
        if not rate_window > 0:
            raise ValueError(f"rate_window must be a positive number of seconds, got {rate_window}")
        #: The connection sampled.
        self.connection = connection
        self.rate_window = rate_window
        self.reducers = None if reducers is None else frozenset(reducers)
        self.clock = clock
        #: The latest figures (one object, updated in place by :meth:`sample`).
        self.readout = NetReadout(rtt_history=deque(maxlen=history), interval_history=deque(maxlen=history))
        stats = connection.stats
        self._window_start: float | None = None
        self._window_tx = self._window_in = self._window_out = 0
        self._seen_tx = stats.transactions
        self._last_update_at: float | None = None
        self._seen_rtt: dict[str, int] = dict(stats.round_trip_counts)
        self._sorted_rtt: list[float] = []

    def sample(self, now: float | None = None, *, buffer_depth_ms: float | None = None) -> NetReadout:
        """Read the connection's counters at time ``now`` (default: the clock) and update
        :attr:`readout`, which is returned. ``buffer_depth_ms`` is the interpolation buffer's depth to
        show (None leaves the last one given)."""
        t = self.clock() if now is None else now
        r = self.readout
        conn = self.connection
        stats = conn.stats
        r.at = t
        r.state = conn.state
        r.backlog = stats.queue_depth
        r.calls_in_flight = stats.calls_in_flight
        r.reconnects = stats.reconnects
        if buffer_depth_ms is not None:
            r.buffer_depth_ms = buffer_depth_ms
        self._sample_updates(t, stats.transactions)
        self._sample_round_trips()
        # rates, once per window (the first sample starts the first window)
        if self._window_start is not None and t - self._window_start >= self.rate_window:
            span = t - self._window_start
            r.updates_per_s = (stats.transactions - self._window_tx) / span
            r.bytes_in_per_s = (stats.bytes_in - self._window_in) / span
            r.bytes_out_per_s = (stats.bytes_out - self._window_out) / span
        if self._window_start is None or t - self._window_start >= self.rate_window:
            self._window_start = t
            self._window_tx = stats.transactions
            self._window_in = stats.bytes_in
            self._window_out = stats.bytes_out
        return r

    def _sample_updates(self, t: float, transactions: int) -> None:
        new = transactions - self._seen_tx
        if new <= 0:
            return
        self._seen_tx = transactions
        intervals = self.readout.interval_history
        if self._last_update_at is not None:  # (the very first update has no interval)
            intervals.append(1000.0 * (t - self._last_update_at))
        for _ in range(min(new - 1, intervals.maxlen or 0)):  # the rest of the burst came with it
            intervals.append(0.0)
        self._last_update_at = t
        n = len(intervals)
        if n:
            mean = sum(intervals) / n
            self.readout.update_interval_ms = mean
            if n >= 2:
                self.readout.jitter_ms = math.sqrt(sum((x - mean) ** 2 for x in intervals) / n)

    def _sample_round_trips(self) -> None:
        stats = self.connection.stats
        counts = stats.round_trip_counts
        history = self.readout.rtt_history
        changed = False
        for reducer, count in counts.items():
            seen = self._seen_rtt.get(reducer, 0)
            if count == seen or (self.reducers is not None and reducer not in self.reducers):
                continue
            self._seen_rtt[reducer] = count
            kept = stats.round_trips.get(reducer)
            if not kept:
                continue
            k = min(count - seen, len(kept))
            for i in range(len(kept) - k, len(kept)):
                history.append(1000.0 * kept[i])
            changed = True
        if changed:
            r = self.readout
            r.rtt_last_ms = history[-1]
            self._sorted_rtt[:] = history
            self._sorted_rtt.sort()
            r.rtt_p50_ms = percentile(self._sorted_rtt, 0.5)
            r.rtt_p95_ms = percentile(self._sorted_rtt, 0.95)
