"""Net stats ready to draw (``spacetime_game.engine.NetMonitor``): rates, intervals, jitter and round trip
percentiles computed from a connection's counters on scripted input, with an injected clock."""

from __future__ import annotations

import dataclasses
import math
import time
import tracemalloc
from collections.abc import Iterator
from types import ModuleType

import pytest

from spacetime_game.engine import NetMonitor, NetworkSimulator, percentile
from spacetime_game.sdk import ConnectionId, DbConnection, Identity, Timestamp
from spacetime_game.sdk.protocol import (
    BsatnRowList,
    PersistentTableRows,
    QueryRows,
    QuerySetUpdate,
    ReducerOkEmpty,
    ReducerResult,
    SingleTableRows,
    Subscribe,
    SubscribeApplied,
    TableUpdate,
    TransactionUpdate,
)
from spacetime_game.sdk.testing import ScriptedServer

from .._support import forget, import_generated
from ..client._support import chat_schema

TS = Timestamp(0)


@pytest.fixture(scope="module")
def chat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    pkg = import_generated(chat_schema(), tmp_path_factory.mktemp("chat"), "quickstart_chat.schema.json")
    yield pkg
    forget(pkg)


class Game:
    """A connection on a scripted server, subscribed to ``message``, and helpers to feed it."""

    def __init__(self, chat: ModuleType) -> None:
        self.chat = chat
        self.server = ScriptedServer()
        self.conn = DbConnection(chat.MODULE, "localhost:3000", "db", transport_factory=self.server)
        self.monitor = NetMonitor(self.conn, history=8, rate_window=1.0, clock=self._no_clock)
        self.conn.connect()
        self.server.greet(Identity.from_int(1), ConnectionId.from_int(1), "token")
        self.conn.update()
        self.handle = self.conn.subscribe_multi(["SELECT * FROM message"])
        (sub,) = self.server.transport.of_type(Subscribe)
        empty = QueryRows((SingleTableRows("message", BsatnRowList.from_rows([])),))
        self.server.transport.feed(SubscribeApplied(sub.request_id, self.handle.query_set_id, empty))
        self.conn.update()
        self.n = 0

    @staticmethod
    def _no_clock() -> float:
        raise AssertionError("the tests pass the time in")

    def tx(self, count: int = 1, nbytes: int = 100) -> None:
        """The server sends ``count`` transactions (a new message each, ``nbytes`` on the wire)."""
        codec = self.chat.MODULE.table("message").codec
        for _ in range(count):
            self.n += 1
            row = self.chat.Message(Identity.from_int(2), TS, f"m{self.n}")
            rows = BsatnRowList.from_rows([bytes(codec.encode(row))])
            update = QuerySetUpdate(
                self.handle.query_set_id,
                (TableUpdate("message", (PersistentTableRows(rows, BsatnRowList.from_rows([])),)),),
            )
            self.server.transport.feed(TransactionUpdate((update,)), nbytes=nbytes)

    def frame(self, now: float, **kw: float) -> None:
        self.conn.update()
        self.monitor.sample(now, **kw)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50 and percentile(values, 0.95) == 95
    assert percentile(values, 0) == 1 and percentile(values, 1) == 100
    assert percentile([7.0], 0.95) == 7 and percentile([], 0.5) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2  # the lower middle, like NetStats.round_trip


def test_update_rate_and_bytes_per_second_over_the_window(chat: ModuleType) -> None:
    g = Game(chat)
    r = g.monitor.readout
    assert r.updates_per_s is None and r.bytes_in_per_s is None and r.bytes_out_per_s is None
    g.frame(10.0)  # the first sample starts the window
    assert r.state == "connected" and r.at == 10.0
    assert r.updates_per_s is None and r.bytes_in_per_s is None and r.bytes_out_per_s is None
    g.tx(1, nbytes=250)
    g.frame(10.25)
    g.tx(5, nbytes=250)
    g.frame(10.5)
    # the first window is not over: the rates are unknown, not zero, though an interval is measured
    assert r.update_interval_ms is not None and r.update_interval_ms > 0
    assert r.updates_per_s is None and r.bytes_in_per_s is None and r.bytes_out_per_s is None
    g.tx(4, nbytes=250)
    chat.send_message("hello", client=g.conn)  # 10 bytes out (the scripted transport's count)
    g.frame(11.0)
    assert r.updates_per_s == pytest.approx(10.0)
    assert r.bytes_in_per_s == pytest.approx(2500.0)
    assert r.bytes_out_per_s == pytest.approx(10.0)
    g.tx(3)
    g.frame(13.0)  # a longer window: per second of it
    assert r.updates_per_s == pytest.approx(1.5)
    assert r.bytes_in_per_s == pytest.approx(150.0)
    assert r.bytes_out_per_s == 0
    g.frame(14.0)
    assert r.updates_per_s == 0


def test_intervals_and_jitter_of_update_arrivals(chat: ModuleType) -> None:
    g = Game(chat)
    r = g.monitor.readout
    g.frame(0.0)
    assert r.update_interval_ms is None and r.jitter_ms is None
    for t in (1.0, 1.1, 1.2, 1.4):  # one update in each of these frames
        g.tx()
        g.frame(t)
    g.frame(1.45)  # frames without updates change nothing
    assert list(r.interval_history) == pytest.approx([100.0, 100.0, 200.0])
    assert r.update_interval_ms == pytest.approx(400 / 3)
    assert r.jitter_ms == pytest.approx(math.sqrt(((100 - 400 / 3) ** 2 * 2 + (200 - 400 / 3) ** 2) / 3))
    # a stall, then three updates applied by one frame: one long interval, then two of 0 ms
    g.tx(3)
    g.frame(1.9)
    assert list(r.interval_history) == pytest.approx([100.0, 100.0, 200.0, 500.0, 0.0, 0.0])
    # the history keeps the latest 8
    for i in range(10):
        g.tx()
        g.frame(2.0 + 0.05 * i)
    assert len(r.interval_history) == 8
    assert list(r.interval_history) == pytest.approx([50.0] * 8)
    assert r.update_interval_ms == pytest.approx(50.0) and r.jitter_ms == pytest.approx(0.0, abs=1e-9)


def test_round_trip_percentiles_and_history(chat: ModuleType) -> None:
    g = Game(chat)
    monitor = NetMonitor(g.conn, history=100, clock=lambda: 0.0)
    r = monitor.readout
    monitor.sample()  # the injected clock
    assert r.rtt_p50_ms is None and r.rtt_p95_ms is None and r.rtt_last_ms is None
    # round trips as the SDK records them (seconds; the count says how many are new)
    stats = g.conn.stats
    for ms in range(1, 61):
        stats.round_trips["send_message"].append(ms / 1000)
        stats.round_trip_counts["send_message"] += 1
    monitor.sample()
    for ms in range(61, 101):
        stats.round_trips["set_name"].append(ms / 1000)
        stats.round_trip_counts["set_name"] += 1
    monitor.sample()
    assert r.rtt_p50_ms == pytest.approx(50.0) and r.rtt_p95_ms == pytest.approx(95.0)
    assert r.rtt_last_ms == pytest.approx(100.0)
    assert len(r.rtt_history) == 100
    # 600 more, beyond what the SDK keeps (512): the history takes the latest, the percentiles follow
    for _ in range(600):
        stats.round_trips["send_message"].append(0.5)
        stats.round_trip_counts["send_message"] += 1
    monitor.sample()
    assert list(r.rtt_history) == pytest.approx([500.0] * 100)
    assert r.rtt_p50_ms == pytest.approx(500.0)


def test_round_trips_of_real_calls_and_a_reducer_filter(chat: ModuleType) -> None:
    g = Game(chat)
    only_names = NetMonitor(g.conn, reducers={"set_name"}, clock=lambda: 0.0)
    every = NetMonitor(g.conn, clock=lambda: 0.0)
    calls = [chat.send_message("a", client=g.conn), chat.set_name("bob", client=g.conn)]
    for c in calls:
        g.server.transport.feed(ReducerResult(c.request_id, TS, ReducerOkEmpty()))
    g.conn.update()
    assert all(c.committed and c.round_trip is not None for c in calls)
    every.sample()
    only_names.sample()
    assert sorted(every.readout.rtt_history) == sorted(1000 * c.round_trip for c in calls)
    assert list(only_names.readout.rtt_history) == [1000 * calls[1].round_trip]


def test_backlog_state_calls_and_buffer_depth(chat: ModuleType) -> None:
    g = Game(chat)
    r = g.monitor.readout
    g.tx(5)
    g.conn.update(max_messages=1)
    g.monitor.sample(1.0, buffer_depth_ms=83.5)
    assert r.backlog == 4  # received, not applied yet
    assert r.buffer_depth_ms == 83.5
    chat.send_message("x", client=g.conn)
    g.frame(2.0)
    assert r.backlog == 0 and r.calls_in_flight == 1
    assert r.buffer_depth_ms == 83.5  # kept until the caller gives another
    g.server.transport.drop()
    g.frame(3.0)
    assert r.state == "reconnecting" and r.reconnects == 1
    g.conn.close()
    g.frame(4.0)
    assert r.state == "closed"
    kept = dataclasses.replace(r)  # a copy keeps a value; the readout itself is updated in place
    assert g.monitor.sample(5.0) is r and kept.at == 4.0 and r.at == 5.0


def test_sampling_allocates_next_to_nothing(chat: ModuleType) -> None:
    g = Game(chat)
    monitor = NetMonitor(g.conn, history=64, clock=time.perf_counter)
    for _ in range(100):  # warm up: the histories fill
        g.tx()
        g.frame(0.0)
        monitor.sample()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(2000):
            monitor.sample()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename") if "_stats" in str(s.traceback))
    assert grown < 4096, f"sampling kept {grown} bytes"


def test_monitor_through_the_simulator_shows_the_lag(chat: ModuleType) -> None:
    server = ScriptedServer()
    sim = NetworkSimulator(lag_ms=60)
    conn = DbConnection(chat.MODULE, "localhost:3000", "db", transport_factory=sim.transport_factory(server))
    monitor = NetMonitor(conn)
    conn.connect()
    server.greet(Identity.from_int(1), ConnectionId.from_int(1), "token")
    deadline = time.monotonic() + 10
    while not conn.is_connected and time.monotonic() < deadline:
        conn.update()
        time.sleep(0.005)
    c = chat.send_message("hi", client=conn)
    while not server.transport.sent and time.monotonic() < deadline:
        time.sleep(0.005)
    server.transport.feed(ReducerResult(server.transport.sent[-1].request_id, TS, ReducerOkEmpty()))
    while not c.done and time.monotonic() < deadline:
        conn.update()
        monitor.sample()
        time.sleep(0.005)
    assert c.committed
    assert monitor.readout.rtt_last_ms is not None and monitor.readout.rtt_last_ms >= 120
    assert monitor.readout.state == "connected"
    conn.close()


def test_bad_settings_are_refused(chat: ModuleType) -> None:
    g = Game(chat)
    with pytest.raises(ValueError, match="history"):
        NetMonitor(g.conn, history=1)
    with pytest.raises(ValueError, match="rate_window"):
        NetMonitor(g.conn, rate_window=0)
