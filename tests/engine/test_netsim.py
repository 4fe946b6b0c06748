"""The network simulator (``spacetime_game.engine.NetworkSimulator``): latency each way, jitter and TCP
loss stalls, order always kept, settings changed at runtime, never blocking the game, no thread left.

Transport-level tests wrap the public ``ScriptedTransport`` and read the events straight from the queue;
connection-level tests run a ``DbConnection`` on a ``ScriptedServer`` and on a real ``DevServer`` with the
chat module. Timing bounds are one-sided or generous (the machine may be loaded): a delay is checked to
be at least what was asked, and well below what a different setting would give.
"""

from __future__ import annotations

import argparse
import itertools
import queue
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from spacetime_game.engine import NetSimSettings, NetworkSimulator, SimulatedTransport, add_netsim_arguments
from spacetime_game.sdk import (
    ConnectionId,
    DbConnection,
    Identity,
    Timestamp,
    TransportClosed,
    TransportEvent,
    TransportMessage,
    TransportOpened,
)
from spacetime_game.sdk.protocol import (
    PROTOCOL_V3,
    CallReducer,
    ReducerOkEmpty,
    ReducerResult,
    encode_client_frame,
)
from spacetime_game.sdk.testing import ScriptedServer, ScriptedTransport
from spacetime_game.server import DevServer

from .._support import forget, import_generated
from ..client._support import CHAT_MODULE, chat_schema, sdk_threads_after_close

TS = Timestamp(0)


# ---- helpers ---------------------------------------------------------------------------------------------
def netsim_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "spacetime-game-netsim"]


@pytest.fixture(autouse=True)
def _no_thread_left() -> Iterator[None]:
    before = set(netsim_threads())
    yield
    deadline = time.monotonic() + 5
    while set(netsim_threads()) - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not set(netsim_threads()) - before, "a network simulator thread outlived its test"


class Wire:
    """A scripted transport behind a simulator, started on a queue that the test reads."""

    def __init__(self, sim: NetworkSimulator, **options: object) -> None:
        self.inner = ScriptedTransport("ws://test", None, **options)  # type: ignore[arg-type]
        self.t: SimulatedTransport = sim.wrap(self.inner)
        self.events: queue.SimpleQueue[TransportEvent] = queue.SimpleQueue()
        self.wakes = 0
        self.t.start(self.events, self._wake)

    def _wake(self) -> None:
        self.wakes += 1

    def next(self, timeout: float = 5.0) -> tuple[float, TransportEvent]:
        """The next event the client gets, and when (time.monotonic())."""
        ev = self.events.get(timeout=timeout)
        return time.monotonic(), ev

    def opened(self) -> float:
        at, ev = self.next()
        assert isinstance(ev, TransportOpened)
        return at

    def feed_results(self, ids: range) -> float:
        """The server sends a ReducerResult for each id; returns when it sent them."""
        at = time.monotonic()
        for i in ids:
            self.inner.feed(ReducerResult(i, TS, ReducerOkEmpty()))
        return at

    def received_ids(self, n: int) -> list[tuple[float, int]]:
        out = []
        for _ in range(n):
            at, ev = self.next()
            assert isinstance(ev, TransportMessage) and isinstance(ev.message, ReducerResult)
            out.append((at, ev.message.request_id))
        return out


def call(i: int) -> CallReducer:
    return CallReducer(i, 0, "send_message", b"\x00\x00\x00\x00")


def recording(
    factory: Callable[[str, str | None], SimulatedTransport],
) -> tuple[list[SimulatedTransport], Callable[[str, str | None], SimulatedTransport]]:
    """``factory``, keeping every transport it makes."""
    made: list[SimulatedTransport] = []

    def make(url: str, token: str | None) -> SimulatedTransport:
        made.append(factory(url, token))
        return made[-1]

    return made, make


def wait_for(
    cond: Callable[[], bool], timeout: float = 5.0, step: Callable[[], object] | None = None
) -> float:
    """Poll until ``cond()`` (calling ``step()`` between polls); returns when it held."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        if step is not None:
            step()
        time.sleep(0.002)
    return time.monotonic()


# ---- settings, draws, determinism ------------------------------------------------------------------------
def test_settings_are_checked_and_described() -> None:
    s = NetSimSettings(lag_ms=120, jitter_ms=30, loss=0.02)
    assert s.active and s.describe() == "lag 120 ms ± 30 ms, loss 2 %"
    assert s.rto_ms == 240 + 200  # the round trip plus the 200 ms floor (4 x jitter is less)
    assert NetSimSettings(lag_ms=50, jitter_ms=100).rto_ms == 100 + 400
    assert not NetSimSettings().active and NetSimSettings().describe() == "off"
    assert NetSimSettings(lag_ms=100, enabled=False).describe() == "off"
    for bad in ({"lag_ms": -1}, {"jitter_ms": float("nan")}, {"loss": 1.0}, {"loss": -0.1}):
        with pytest.raises(ValueError, match="network simulator"):
            NetSimSettings(**bad)  # type: ignore[arg-type]
    sim = NetworkSimulator(10)
    with pytest.raises(ValueError, match="loss"):
        sim.configure(loss=2)
    assert sim.settings.lag_ms == 10 and sim.settings.loss == 0  # nothing changed


def test_delays_are_lag_jitter_and_an_rto_per_loss() -> None:
    sim = NetworkSimulator(100, 20, seed=3)
    draws = [sim.delay("down") for _ in range(2000)]
    assert all(0.080 - 1e-9 <= d <= 0.120 + 1e-9 for d in draws)
    assert 0.095 < statistics.mean(draws) < 0.105
    assert max(draws) - min(draws) > 0.035  # the jitter spreads them over the range
    # loss alone: each delay is 0 or a sum of doubling RTOs (200, 200 + 400, ...), about 25 % lost
    lossy = NetworkSimulator(loss=0.25, seed=4)
    ms = [round(lossy.delay("up") * 1000, 6) for _ in range(4000)]
    assert set(ms) <= {0.0, 200.0, 600.0, 1400.0, 3000.0, 6200.0, 12600.0}
    lost = sum(1 for x in ms if x > 0) / len(ms)
    assert 0.21 < lost < 0.29
    assert ms.count(600.0) > 0  # a lost retransmission waits twice as long again


def test_a_seed_makes_the_draws_reproducible_per_direction() -> None:
    def draws(seed: int, interleave: bool) -> tuple[list[float], list[float]]:
        sim = NetworkSimulator(50, 40, 0.1, seed=seed)
        up, down = [], []
        for i in range(200):
            if interleave and i % 3 == 0:
                down.append(sim.delay("down"))
            up.append(sim.delay("up"))
        down += [sim.delay("down") for _ in range(200 - len(down))]
        return up, down

    assert draws(7, False) == draws(7, True)  # the other direction's traffic does not matter
    assert draws(7, False) != draws(8, False)
    up, down = draws(7, False)
    assert up != down


def test_lose_next_stalls_the_next_messages_once() -> None:
    sim = NetworkSimulator(lag_ms=10, rto_min_ms=250)
    sim.lose_next(2, "up")
    assert [round(sim.delay("up"), 6) for _ in range(3)] == [0.28, 0.28, 0.01]  # 10 + (20 + 250)
    assert round(sim.delay("down"), 6) == 0.01
    sim.enabled = False
    sim.lose_next()
    assert sim.delay("down") == pytest.approx(0.27)  # on demand even when disabled
    assert sim.delay("down") == 0
    with pytest.raises(ValueError):
        sim.lose_next(1, "sideways")  # type: ignore[arg-type]


# ---- the transport ---------------------------------------------------------------------------------------
def test_latency_each_way() -> None:
    sim = NetworkSimulator(lag_ms=150)
    started = time.monotonic()
    w = Wire(sim)
    assert w.opened() - started >= 0.15  # the handshake's answer travels too
    sent_at = time.monotonic()
    assert w.t.send([call(1)]) == len(encode_client_frame(call(1)))  # the v2 frame's size
    assert w.inner.sent == []  # on its way
    arrived = wait_for(lambda: bool(w.inner.sent))
    assert arrived - sent_at >= 0.15
    assert w.inner.sent == [call(1)]
    fed = w.feed_results(range(1))
    ((got, rid),) = w.received_ids(1)
    assert rid == 0 and got - fed >= 0.15
    w.t.close()
    assert w.t.join(5)


def test_v3_frames_count_once_and_travel_whole() -> None:
    sim = NetworkSimulator(lag_ms=20, jitter_ms=20, seed=1)
    w = Wire(sim, protocol=PROTOCOL_V3)
    w.opened()
    msgs = [call(1), call(2)]
    assert w.t.send(msgs) == len(encode_client_frame(msgs, PROTOCOL_V3))
    wait_for(lambda: len(w.inner.sent) == 2)
    assert w.inner.sent == msgs
    # a v3 frame's messages (the first carries the frame's bytes, the rest 0) arrive together
    sim.lose_next(1)
    for i, n in enumerate((300, 0, 0)):
        w.inner.put(TransportMessage(ReducerResult(i, TS, ReducerOkEmpty()), n))
    times = [at for at, _ in w.received_ids(3)]
    assert max(times) - min(times) < 0.1  # one stall for the frame, not one per message
    w.t.close()
    assert w.t.join(5)


def test_order_is_kept_under_jitter_and_loss_both_ways() -> None:
    sim = NetworkSimulator(lag_ms=5, jitter_ms=40, loss=0.2, rto_min_ms=50, seed=11)
    w = Wire(sim)
    w.opened()
    n = 150
    for i in range(n):
        w.t.send([call(i)])
    w.feed_results(range(n))
    got = w.received_ids(n)
    assert [rid for _, rid in got] == list(range(n))
    assert all(a <= b for (a, _), (b, _) in itertools.pairwise(got))
    wait_for(lambda: len(w.inner.sent) == n, timeout=20)
    assert [m.request_id for m in w.inner.sent] == list(range(n))  # type: ignore[union-attr]
    w.t.close()
    assert w.t.join(5)


def test_a_lost_message_stalls_everything_behind_it_for_about_an_rto() -> None:
    sim = NetworkSimulator(rto_min_ms=200, seed=7)  # seeded: the random loss below is the same each run
    w = Wire(sim)
    w.opened()
    # no loss: through at once
    fed = w.feed_results(range(3))
    assert max(at for at, _ in w.received_ids(3)) - fed < 0.2  # sooner than an RTO (generous: CPU load)
    # the first of five is lost: all five arrive together, an RTO (200 ms, no lag) later
    sim.lose_next(1)
    fed = w.feed_results(range(3, 8))
    got = w.received_ids(5)
    assert [rid for _, rid in got] == [3, 4, 5, 6, 7]
    waits = [at - fed for at, _ in got]
    assert min(waits) >= 0.2
    assert max(waits) < 0.2 + 0.4  # about the RTO, not several (generous: CPU load)
    assert max(waits) - min(waits) < 0.15  # released together
    # random loss: the slowest message waited one RTO or more, and the stream stayed in order
    sim.configure(loss=0.3)
    fed = w.feed_results(range(8, 28))
    got = w.received_ids(20)
    assert [rid for _, rid in got] == list(range(8, 28))
    assert got[-1][0] - fed >= 0.2
    w.t.close()
    assert w.t.join(5)


def test_settings_changed_at_runtime_apply_to_later_traffic() -> None:
    sim = NetworkSimulator()
    w = Wire(sim)
    w.opened()
    fed = w.feed_results(range(1))
    assert w.received_ids(1)[0][0] - fed < 0.15  # off: no delay
    sim.configure(lag_ms=250)
    fed = w.feed_results(range(1, 2))
    assert w.received_ids(1)[0][0] - fed >= 0.25
    sent_at = time.monotonic()
    w.t.send([call(1)])
    assert wait_for(lambda: bool(w.inner.sent)) - sent_at >= 0.25
    # switched off while a message is on its way: the next one comes at once, but not before it
    fed = w.feed_results(range(2, 3))
    assert not sim.toggle() and not sim.enabled
    w.feed_results(range(3, 4))
    got = w.received_ids(2)
    assert [rid for _, rid in got] == [2, 3]
    assert got[0][0] - fed >= 0.25 and got[1][0] - got[0][0] < 0.1
    fed = w.feed_results(range(4, 5))
    assert w.received_ids(1)[0][0] - fed < 0.15
    w.t.close()
    assert w.t.join(5)


def test_send_and_close_never_block_and_nothing_arrives_after_close() -> None:
    sim = NetworkSimulator(lag_ms=3000)
    w = Wire(sim, open_on_start=False)
    with pytest.raises(ConnectionError, match="not connected"):
        w.t.send([call(0)])  # the transport has not opened yet
    w.inner.open()
    time.sleep(0.05)  # the wrapped transport has opened (its event is still on its way)
    t0 = time.perf_counter()
    for i in range(200):
        w.t.send([call(i)])
    w.feed_results(range(50))
    w.t.close()
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.0  # nothing waited for the 3 s lag
    assert w.t.join(5)
    assert w.events.empty()  # nothing delivered after close (not even the opening)
    # what the client had sent before closing reached the wrapped transport, in order, then it closed
    assert [m.request_id for m in w.inner.sent] == list(range(200))  # type: ignore[union-attr]
    assert w.inner.closed
    with pytest.raises(ConnectionError):
        w.t.send([call(0)])
    w.t.close()  # again: nothing to do


def test_a_lost_connection_ends_the_thread_by_itself() -> None:
    sim = NetworkSimulator(lag_ms=20)
    w = Wire(sim)
    w.opened()
    threads = netsim_threads()
    assert len(threads) == 1
    w.inner.drop(1006, "gone")
    _, ev = w.next()
    assert ev == TransportClosed(1006, "gone")
    assert w.t.join(5)  # nobody called close(): the connection is over all the same
    assert not threads[0].is_alive()
    assert not w.inner.closed  # (a lost transport is not closed: the client does not close it either)
    with pytest.raises(ConnectionError, match="lost"):
        w.t.send([call(0)])
    w.t.close()  # closes the wrapped transport (the thread is gone)
    assert w.inner.closed


# ---- a connection on a scripted server -------------------------------------------------------------------
def test_a_connection_through_the_simulator_sees_the_lag_in_its_round_trips(chat: ModuleType) -> None:
    server = ScriptedServer()
    sim = NetworkSimulator(lag_ms=100)
    made, factory = recording(sim.transport_factory(server))
    conn = DbConnection(chat.MODULE, "localhost:3000", "db", transport_factory=factory)
    conn.connect()
    server.greet(Identity.from_int(1), ConnectionId.from_int(1), "token")
    wait_for(lambda: conn.is_connected, step=conn.update)
    assert isinstance(server.transport, ScriptedTransport)
    c = chat.send_message("hello", client=conn)
    assert server.transport.sent == []
    wait_for(lambda: bool(server.transport.sent))
    (sent,) = server.transport.of_type(CallReducer)
    server.transport.feed(ReducerResult(sent.request_id, TS, ReducerOkEmpty()))
    t0 = time.perf_counter()
    assert conn.update() == 0  # the answer is on its way: update() returns at once with nothing
    assert time.perf_counter() - t0 < 0.05
    wait_for(lambda: c.done, step=conn.update)
    assert c.committed and c.round_trip is not None and c.round_trip >= 0.2
    assert conn.stats.round_trip("send_message", 0.5) == c.round_trip
    # a lost connection: the client reconnects through a new simulated transport
    server.transport.drop()
    wait_for(lambda: len(server.transports) == 2, step=conn.update)
    assert made[0].join(5)  # the lost one's thread ended by itself
    conn.close()
    assert all(t.join(5) for t in made)
    assert [t.inner for t in made] == server.transports
    assert server.transports[1].closed  # closed by the thread, once it had flushed what was on its way


# ---- against a real dev server -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    pkg = import_generated(chat_schema(), tmp_path_factory.mktemp("chat"), "quickstart_chat.schema.json")
    yield pkg
    forget(pkg)


@pytest.fixture(scope="module")
def dev_server() -> Iterator[DevServer]:
    with DevServer(Path(CHAT_MODULE), "netsim-chat") as server:
        yield server


def _round_trips(
    chat: ModuleType, server: DevServer, sim: NetworkSimulator | None, n: int = 3
) -> list[float]:
    factory = sim.transport_factory() if sim is not None else None
    conn = DbConnection(chat.MODULE, server.address, server.database, transport_factory=factory)
    try:
        conn.connect()
        wait_for(lambda: conn.is_connected, timeout=15, step=conn.update)
        out = []
        for i in range(n):
            c = chat.set_name(f"player{i}", client=conn)
            wait_for(lambda c=c: c.done, timeout=15, step=conn.update)
            assert c.committed, c.message
            assert c.round_trip is not None
            out.append(c.round_trip)
        return out
    finally:
        conn.close()


def test_dev_server_round_trip_shows_the_lag(chat: ModuleType, dev_server: DevServer) -> None:
    plain = _round_trips(chat, dev_server, None)
    assert min(plain) < 0.15  # a few ms on one machine
    lagged = _round_trips(chat, dev_server, NetworkSimulator(lag_ms=100))
    assert min(lagged) >= 0.2  # 100 ms each way
    assert statistics.median(lagged) > statistics.median(plain) + 0.15


def test_dev_server_connection_closes_without_leaving_threads(
    chat: ModuleType, dev_server: DevServer
) -> None:
    sim = NetworkSimulator(lag_ms=30, jitter_ms=10, loss=0.05, seed=5)
    made, factory = recording(sim.transport_factory())
    conn = DbConnection(chat.MODULE, dev_server.address, dev_server.database, transport_factory=factory)
    conn.connect()
    wait_for(lambda: conn.is_connected, timeout=15, step=conn.update)
    calls = [chat.send_message(f"m{i}", client=conn) for i in range(20)]
    wait_for(lambda: all(c.done for c in calls), timeout=20, step=conn.update)
    assert all(c.committed for c in calls)
    conn.close()
    assert made and all(t.join(10) for t in made)
    assert sdk_threads_after_close() == []  # the simulator's, the reader, the writer, the closer


# ---- the command line ------------------------------------------------------------------------------------
def test_command_line_options_build_the_simulator() -> None:
    parser = argparse.ArgumentParser()
    add_netsim_arguments(parser)
    sim = NetworkSimulator.from_args(parser.parse_args(["--lag", "120", "--jitter", "30", "--loss", "0.02"]))
    assert sim.settings == NetSimSettings(lag_ms=120, jitter_ms=30, loss=0.02)
    sim = NetworkSimulator.from_args(
        parser.parse_args(["--lag", "80ms", "--loss", "5%", "--rto-min", "300", "--netsim-seed", "9"])
    )
    assert (sim.settings.lag_ms, sim.settings.loss, sim.settings.rto_min_ms, sim.seed) == (80, 0.05, 300, 9)
    off = NetworkSimulator.from_args(parser.parse_args([]))
    assert not off.settings.active and off.enabled  # all zero, still switchable at runtime


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lag", "-5"], "milliseconds >= 0"),
        (["--jitter", "abc"], "number of milliseconds"),
        (["--loss", "1.5"], "loss rate is in [0, 1)"),
        (["--loss", "half"], "such as 0.02 or 2%"),
    ],
)
def test_bad_command_line_values_are_refused_clearly(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="game")
    add_netsim_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(argv)
    assert message in capsys.readouterr().err


def test_a_wrapped_transport_that_fails_to_start_leaves_no_thread() -> None:
    class Broken(ScriptedTransport):
        def start(self, events: queue.SimpleQueue[TransportEvent], wake: Callable[[], None]) -> None:
            raise OSError("no network")

    t = NetworkSimulator(lag_ms=10).wrap(Broken("ws://test", None))
    with pytest.raises(OSError, match="no network"):
        t.start(queue.SimpleQueue(), lambda: None)
    assert t.join(5)
