"""A network simulator for development and tests: a :class:`~spacetime_game.sdk.Transport` wrapper that
delays traffic the way a distant player's TCP connection does, so that a developer sees on one machine
what players far away will see.

What it models, in each direction separately (client to server, server to client):

- **latency**: every message is held ``lag_ms`` milliseconds (one way: a round trip costs twice that);
- **jitter**: plus or minus up to ``jitter_ms`` milliseconds, drawn per message;
- **packet loss on TCP**: a lost segment is not dropped, it is retransmitted after the retransmission
  timeout (RTO), and TCP delivers nothing after it until it arrives: each message is lost with
  probability ``loss`` and then arrives one RTO late (twice that again if the retransmission is lost
  too), and everything behind it waits. The RTO is the round trip plus ``max(4 * jitter, rto_min_ms)``
  (``rto_min_ms`` is 200 ms, Linux's floor). The fast retransmit of a busy stream is not modelled:
  game traffic is sparse, and a stall of an RTO is what its players see.

Order is always kept and nothing is ever dropped: a message never overtakes the one before it (its due
time is at least the previous one's). The settings can be changed while the game runs
(:meth:`NetworkSimulator.configure`, :attr:`NetworkSimulator.enabled`); messages already on their way
keep their due times, later ones use the new settings.

Nothing blocks the game: :meth:`SimulatedTransport.send` queues the messages with their due time and
returns, and one background thread per connection delivers them to the wrapped transport, and the
wrapped transport's events to the client, each at its due time. The thread ends when the connection is
closed or lost.

Typical use, from a command line (``python -m mygame --lag 120 --jitter 30 --loss 0.02``)::

    parser = argparse.ArgumentParser()
    add_netsim_arguments(parser)
    args = parser.parse_args()
    sim = NetworkSimulator.from_args(args)
    conn = DbConnection(MODULE, host, db, transport_factory=sim.transport_factory())
    ...
    sim.configure(lag_ms=250)  # from a debug key, say: later traffic is slower
    sim.enabled = False  # and back to the plain connection
"""

from __future__ import annotations

import argparse
import logging
import math
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, TypeAlias

from spacetime_game.sdk import (
    SpacetimeError,
    Transport,
    TransportClosed,
    TransportEvent,
    TransportMessage,
    TransportOpened,
    WebSocketTransport,
)
from spacetime_game.sdk.protocol import PROTOCOL_V3, ClientMessage, encode_client_frame

__all__ = [
    "Direction",
    "NetSimSettings",
    "NetworkSimulator",
    "SimulatedTransport",
    "add_netsim_arguments",
]

log = logging.getLogger("spacetime_game.engine.netsim")

#: A direction of traffic: ``"up"`` from the client to the server, ``"down"`` from the server.
Direction: TypeAlias = Literal["up", "down"]

#: Retransmissions of one segment that can be lost in a row (TCP doubles the RTO after each).
_MAX_RETRIES = 6

_THREAD_NAME = "spacetime-game-netsim"


@dataclass(frozen=True, slots=True)
class NetSimSettings:
    """What a :class:`NetworkSimulator` adds to the traffic (see the module's docstring).

    ``lag_ms`` and ``jitter_ms`` are milliseconds one way; ``loss`` is the probability that a message
    is lost (then delivered an RTO late, holding back what follows), in ``[0, 1)``; ``rto_min_ms`` is
    the floor of the retransmission timeout. With ``enabled`` False nothing is added (messages still
    keep their order behind those already on their way).
    """

    lag_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0
    rto_min_ms: float = 200.0
    enabled: bool = True

    def __post_init__(self) -> None:
        for name in ("lag_ms", "jitter_ms", "rto_min_ms"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"network simulator: {name} must be a number of milliseconds >= 0, got {value!r}"
                )
        if not isinstance(self.loss, int | float) or not 0 <= self.loss < 1:
            raise ValueError(
                f"network simulator: loss must be a probability in [0, 1) (0.02 is 2 %), got {self.loss!r}"
            )

    @property
    def rto_ms(self) -> float:
        """The retransmission timeout: the round trip plus ``max(4 * jitter, rto_min_ms)``."""
        return 2 * self.lag_ms + max(4 * self.jitter_ms, self.rto_min_ms)

    @property
    def active(self) -> bool:
        """True when the settings change anything (enabled, and some lag, jitter or loss)."""
        return self.enabled and (self.lag_ms > 0 or self.jitter_ms > 0 or self.loss > 0)

    def describe(self) -> str:
        """A short line for an overlay: ``"lag 120 ms ± 30 ms, loss 2 %"``, or ``"off"``."""
        if not self.active:
            return "off"
        text = f"lag {self.lag_ms:g} ms"
        if self.jitter_ms:
            text += f" ± {self.jitter_ms:g} ms"
        if self.loss:
            text += f", loss {100 * self.loss:g} %"
        return text


class NetworkSimulator:
    """Adds latency, jitter and TCP loss stalls to the connections it wraps (see the module's docstring).

    One simulator can wrap any number of transports (each reconnect makes a new one); all use its
    current settings. With a ``seed`` the random draws are reproducible: the same traffic gets the same
    delays (each direction draws from its own generator, so the interleaving of the two does not
    matter). All methods are thread-safe and none blocks.
    """

    def __init__(
        self,
        lag_ms: float = 0.0,
        jitter_ms: float = 0.0,
        loss: float = 0.0,
        *,
        rto_min_ms: float = 200.0,
        enabled: bool = True,
        seed: int | str | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._settings = NetSimSettings(lag_ms, jitter_ms, loss, rto_min_ms, enabled)
        #: The seed given (None: not reproducible).
        self.seed = seed
        self._rng: dict[Direction, random.Random] = {
            "up": random.Random(None if seed is None else f"{seed}:up"),
            "down": random.Random(None if seed is None else f"{seed}:down"),
        }
        self._forced: dict[Direction, int] = {"up": 0, "down": 0}

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> NetworkSimulator:
        """The simulator that the options of :func:`add_netsim_arguments` ask for (all off when none was
        given: the game can still switch it on while it runs)."""
        return cls(
            args.lag,
            args.jitter,
            args.loss,
            rto_min_ms=args.rto_min,
            seed=args.netsim_seed,
        )

    # -- settings --
    @property
    def settings(self) -> NetSimSettings:
        """The current settings (a frozen value: change them with :meth:`configure`)."""
        return self._settings

    def configure(
        self,
        *,
        lag_ms: float | None = None,
        jitter_ms: float | None = None,
        loss: float | None = None,
        rto_min_ms: float | None = None,
        enabled: bool | None = None,
    ) -> NetSimSettings:
        """Change some settings (the others stay); they apply to the messages sent or received from now
        on. Returns the new settings; ValueError (and nothing changed) for a value out of range."""
        changes: dict[str, float | bool] = {
            k: v
            for k, v in (
                ("lag_ms", lag_ms),
                ("jitter_ms", jitter_ms),
                ("loss", loss),
                ("rto_min_ms", rto_min_ms),
                ("enabled", enabled),
            )
            if v is not None
        }
        with self._lock:
            self._settings = replace(self._settings, **changes)  # type: ignore[arg-type]
            new = self._settings
        log.info("network simulator: %s", new.describe())
        return new

    @property
    def enabled(self) -> bool:
        """Whether the simulator adds anything (False: the traffic passes as it comes, still in order)."""
        return self._settings.enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self.configure(enabled=bool(value))

    def toggle(self) -> bool:
        """Switch the simulator on or off (for a debug key); returns whether it is now on."""
        with self._lock:
            self._settings = replace(self._settings, enabled=not self._settings.enabled)
            on = self._settings.enabled
        log.info("network simulator: %s", self._settings.describe())
        return on

    def lose_next(self, count: int = 1, direction: Direction = "down") -> None:
        """Make the next ``count`` messages in ``direction`` lost once each (delivered one RTO late,
        holding back what follows), whatever ``loss`` is: a stall on demand, for a debug key or a test.
        Works while the simulator is disabled too."""
        if direction not in ("up", "down"):
            raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        with self._lock:
            self._forced[direction] += count

    def delay(self, direction: Direction) -> float:
        """Draw the one-way delay of the next message in ``direction``, in seconds: the lag, the jitter,
        and an RTO per loss (each transport calls this once per message it carries)."""
        with self._lock:
            s = self._settings
            forced = self._forced[direction] > 0
            if forced:
                self._forced[direction] -= 1
            ms = 0.0
            if s.enabled:
                rng = self._rng[direction]
                ms = s.lag_ms
                if s.jitter_ms:
                    ms = max(0.0, ms + rng.uniform(-s.jitter_ms, s.jitter_ms))
                rto = s.rto_ms
                retries = 0
                while s.loss and retries < _MAX_RETRIES and rng.random() < s.loss:
                    ms += rto * (1 << retries)  # TCP doubles the timeout after each lost retransmission
                    retries += 1
            if forced:
                ms += s.rto_ms
        return ms / 1000.0

    # -- wrapping transports --
    def wrap(self, transport: Transport) -> SimulatedTransport:
        """``transport`` behind this simulator (not started yet: the client starts it)."""
        return SimulatedTransport(transport, self)

    def transport_factory(
        self, inner: Callable[[str, str | None], Transport] | None = None
    ) -> Callable[[str, str | None], SimulatedTransport]:
        """A ``transport_factory`` for :class:`~spacetime_game.sdk.DbConnection` (and the clients built on
        it) whose connections go through this simulator. ``inner`` makes the real transport (default: a
        :class:`~spacetime_game.sdk.WebSocketTransport` with its default settings; pass
        ``spacetime_game.sdk.testing.ScriptedServer()`` in a test)."""

        def factory(url: str, token: str | None) -> SimulatedTransport:
            real = inner(url, token) if inner is not None else WebSocketTransport(url, token)
            return self.wrap(real)

        return factory

    def __repr__(self) -> str:
        return f"NetworkSimulator({self._settings.describe()})"


class SimulatedTransport:
    """One connection through a :class:`NetworkSimulator` (a :class:`~spacetime_game.sdk.Transport`).

    The wrapped transport (:attr:`inner`) reports its events to this one, which hands each to the client
    at its due time; messages the client sends are handed to :attr:`inner` at theirs. A background thread
    (named ``spacetime-game-netsim``) does both; it ends after the connection closes (:meth:`close`:
    the messages still on their way up are handed over at once, then the wrapped transport is closed)
    or is lost (the wrapped transport's :class:`~spacetime_game.sdk.TransportClosed` has been delivered).
    """

    def __init__(self, inner: Transport, simulator: NetworkSimulator) -> None:
        #: The wrapped transport.
        self.inner = inner
        #: The simulator whose settings apply.
        self.simulator = simulator
        self._cond = threading.Condition()
        self._up: deque[tuple[float, list[ClientMessage]]] = deque()
        self._down: deque[tuple[float, TransportEvent]] = deque()
        self._up_due = 0.0  # the due time of the last message queued each way (order is kept)
        self._down_due = 0.0
        self._in_frame = False  # the last event down was a message (a v3 frame's next ones travel with it)
        self._inbox: queue.SimpleQueue[TransportEvent] = queue.SimpleQueue()
        self._events: queue.SimpleQueue[TransportEvent] | None = None
        self._wake: Callable[[], None] = _nothing
        self._thread: threading.Thread | None = None
        self._protocol: str | None = None  # the subprotocol, once the wrapped transport has opened
        self._closing = False  # close() was called
        self._lost = False  # the close of the connection has been delivered to the client
        self._done = False  # the thread has ended (or is ending) without closing the wrapped transport

    # -- the Transport protocol --
    def start(self, events: queue.SimpleQueue[TransportEvent], wake: Callable[[], None]) -> None:
        """Start the delivery thread, then the wrapped transport (whose events come here first)."""
        with self._cond:
            if self._thread is not None:
                raise RuntimeError("this transport was started already")
            self._events = events
            self._wake = wake
            self._thread = threading.Thread(target=self._run, name=_THREAD_NAME, daemon=True)
            self._thread.start()
        try:
            self.inner.start(self._inbox, self._arrived)
        except BaseException:
            with self._cond:  # the thread must not wait for a transport that never started
                self._closing = True
                self._cond.notify()
            raise

    def send(self, messages: list[ClientMessage]) -> int:
        """Queue ``messages`` to be handed to the wrapped transport at their due time; never blocks.
        Returns the size of the frames they are encoded into (what the WebSocket transport reports).
        Raises ConnectionError when the connection is not open (yet, or any more)."""
        with self._cond:
            if self._closing:
                raise ConnectionError("the connection is closed")
            if self._lost:
                raise ConnectionError("the connection is lost")
            protocol = self._protocol
            if protocol is None:
                raise ConnectionError("not connected")
        nbytes = _frame_bytes(messages, protocol)
        delay = self.simulator.delay("up")
        with self._cond:
            if self._closing or self._lost:  # closed meanwhile (from another thread)
                raise ConnectionError("the connection is closed")
            due = max(time.monotonic() + delay, self._up_due)
            self._up_due = due
            self._up.append((due, list(messages)))
            self._cond.notify()
        return nbytes

    def close(self) -> None:
        """Close without blocking: no event reaches the client after this returns; the messages still on
        their way up are handed to the wrapped transport at once, which is then closed, and the thread
        ends."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            running = self._thread is not None and not self._done
            self._cond.notify()
        if not running:  # never started, or the thread has ended: close the wrapped transport here
            self.inner.close()

    # -- extras --
    @property
    def in_flight(self) -> tuple[int, int]:
        """How many messages are on their way (up, down): queued here, not yet due."""
        with self._cond:
            return len(self._up), len(self._down)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until this transport's thread (and the wrapped transport's, when it has a ``join``) have
        ended, after :meth:`close` or a lost connection; True if they have."""
        deadline = None if timeout is None else time.monotonic() + timeout
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
            if t.is_alive():
                return False
        inner_join = getattr(self.inner, "join", None)
        if callable(inner_join):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            return bool(inner_join(left))
        return True

    # -- the wrapped transport's side --
    def _arrived(self) -> None:
        """The wrapped transport's ``wake``: stamp what arrived with its due time (any thread)."""
        now = time.monotonic()
        with self._cond:
            while True:
                try:
                    ev = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if isinstance(ev, TransportOpened):
                    self._protocol = ev.protocol
                if isinstance(ev, TransportMessage) and ev.nbytes == 0 and self._in_frame:
                    due = self._down_due  # the rest of a v3 frame arrives with its first message
                else:
                    due = max(now + self.simulator.delay("down"), self._down_due)
                self._in_frame = isinstance(ev, TransportMessage)
                self._down_due = due
                self._down.append((due, ev))
            self._cond.notify()

    # -- the delivery thread --
    def _run(self) -> None:
        try:
            self._deliver()
        except Exception:  # a bug here must not leave the client waiting forever without a word
            log.exception("the network simulator's thread failed; the connection is closed")
            with self._cond:
                self._done = True
                closing = self._closing
                if not closing and not self._lost and self._events is not None:
                    self._lost = True
                    self._events.put(TransportClosed(None, "the network simulator failed"))
                    self._wake()
            self.inner.close()

    def _deliver(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closing:
                        flush = list(self._up)
                        self._up.clear()
                        self._down.clear()
                        break
                    now = time.monotonic()
                    up_due = self._up[0][0] if self._up else math.inf
                    down_due = self._down[0][0] if self._down else math.inf
                    if down_due <= now and down_due <= up_due:
                        _, ev = self._down.popleft()
                        # delivered under the lock: once close() has returned, nothing more is reported
                        assert self._events is not None
                        self._events.put(ev)
                        self._wake()
                        if isinstance(ev, TransportClosed):  # the connection is over: so is this thread
                            self._lost = True
                            self._done = True
                            self._up.clear()
                            return
                        continue
                    if up_due <= now:
                        flush = [self._up.popleft()]
                        break
                    timeout = min(up_due, down_due) - now
                    self._cond.wait(None if math.isinf(timeout) else timeout)
            for _, messages in flush:
                try:
                    self.inner.send(messages)
                except (ConnectionError, OSError, SpacetimeError) as exc:
                    # the wrapped transport reports the lost connection itself, in order
                    log.debug("network simulator: a delayed send failed: %s", exc)
            if self._closing:
                self.inner.close()
                return


def _frame_bytes(messages: list[ClientMessage], protocol: str) -> int:
    """The bytes of the frames ``messages`` are sent in (one frame on v3, one each on v2)."""
    if protocol == PROTOCOL_V3:
        return len(encode_client_frame(messages, PROTOCOL_V3))
    return sum(len(encode_client_frame(m)) for m in messages)


def _nothing() -> None:
    pass


# ---- the command line --------------------------------------------------------------------------------
def _milliseconds(text: str) -> float:
    try:
        value = float(text.strip().removesuffix("ms"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of milliseconds, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected milliseconds >= 0, got {text!r}")
    return value


def _probability(text: str) -> float:
    t = text.strip()
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a loss rate such as 0.02 or 2%, got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"a loss rate is in [0, 1) (0.02 or 2%), got {text!r}")
    return value


def _seed(text: str) -> int | str:
    try:
        return int(text)
    except ValueError:
        return text


def add_netsim_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the network simulator's options to ``parser`` (in a group of their own): ``--lag MS``,
    ``--jitter MS``, ``--loss P`` (``0.02`` or ``2%``), ``--rto-min MS`` and ``--netsim-seed N``; build
    the simulator with :meth:`NetworkSimulator.from_args`."""
    group = parser.add_argument_group(
        "network simulator", "make the connection behave like a distant player's (for development)"
    )
    group.add_argument(
        "--lag",
        type=_milliseconds,
        default=0.0,
        metavar="MS",
        help="latency added each way, in ms (default 0)",
    )
    group.add_argument(
        "--jitter",
        type=_milliseconds,
        default=0.0,
        metavar="MS",
        help="random variation of the latency, plus or minus, in ms (default 0)",
    )
    group.add_argument(
        "--loss",
        type=_probability,
        default=0.0,
        metavar="P",
        help="packet loss rate, e.g. 0.02 or 2%%: a lost packet stalls the TCP stream for a retransmission "
        "timeout (default 0)",
    )
    group.add_argument(
        "--rto-min",
        type=_milliseconds,
        default=200.0,
        metavar="MS",
        help="the smallest retransmission timeout, in ms (default 200)",
    )
    group.add_argument(
        "--netsim-seed", type=_seed, default=None, metavar="N", help="seed for reproducible delays"
    )
