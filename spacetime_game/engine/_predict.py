"""Prediction for the local player (engine-neutral, pure: rows are objects with attributes, times are
passed in), in the two shapes that real modules use.

(a) :class:`InputPredictor`: the input reducer changes the player's row directly (``move(dx, dy)``). Input
is applied locally at once and numbered; each authoritative row drops the inputs it already reflects and the
rest are replayed on top of it.

(b) :class:`TickPredictor`: the server integrates the input on its own tick (Blackholio: a scheduled reducer
every 50 ms moves each player toward its last direction). A user function is stepped per server tick locally
and the prediction is re-based on each authoritative row (stepped forward by the ticks it lags behind).

In both, a correction (the prediction moved because the server disagreed) is not shown at once: the drawn
state (:attr:`rendered`) keeps an offset that shrinks linearly to zero over ``smoothing`` seconds, so it
converges to the prediction without a visible jump; an error of ``snap`` or more is shown at once.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._interp import field_names

if TYPE_CHECKING:
    from spacetime_game.sdk import ReducerCall

__all__ = ["InputPredictor", "Rendered", "TickPredictor"]

log = logging.getLogger("spacetime_game.engine")

S = TypeVar("S")  # the player's state: a row (or any object with the declared fields as attributes)
I = TypeVar("I")  # noqa: E741 - one input

#: the outcomes of a reducer call after which its input is not in the server's state
_FAILED = frozenset({"failed", "internal_error", "disconnected"})


class Rendered:
    """The drawn state of the predicted player: one float attribute per declared field, updated in place
    (``rendered.x``); 0.0 until the first authoritative row. Angle fields come out in ``[0, turn)``."""

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> float: ...

    def __repr__(self) -> str:
        return f"Rendered({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


class _Corrector:
    """The smoothed view shared by both predictors: rendered = predicted + an offset that decays."""

    def __init__(
        self,
        fields: Sequence[str],
        angles: Sequence[str],
        degrees: bool,
        smoothing: float,
        snap: float | None,
    ) -> None:
        names = field_names(fields, angles, "a predictor", reserved=())
        #: how each field is read from a state (an attribute, or a dotted path into one)
        self.reads = tuple(attrgetter(path) for path in (*fields, *angles))
        if not smoothing >= 0:
            raise ValueError(f"smoothing must be >= 0 seconds, got {smoothing!r}")
        if snap is not None and not snap >= 0:
            raise ValueError(f"snap must be >= 0 or None, got {snap!r}")
        self.names = names
        self.nlin = len(fields)
        self.turn = 360.0 if degrees else math.tau
        self.smoothing = smoothing
        self.snap = snap
        self.offset = [0.0] * len(names)
        self.speed = [0.0] * len(names)  # how fast each offset shrinks (units per second)
        self.rendered = Rendered()
        for name in names:  # 0.0 until the first authoritative row
            setattr(self.rendered, name, 0.0)
        self.predicted: tuple[float, ...] | None = None
        self.last_now: float | None = None

    def values(self, state: Any) -> tuple[float, ...]:
        return tuple(float(read(state)) for read in self.reads)

    def diff(self, a: float, b: float, i: int) -> float:
        """a - b (the short way round for an angle)."""
        d = a - b
        if i >= self.nlin:
            d %= self.turn
            if d >= self.turn / 2:
                d -= self.turn
        return d

    def correct(self, old: tuple[float, ...] | None, new: tuple[float, ...]) -> None:
        """The prediction jumped from ``old`` to ``new``: keep drawing where it was, converging to ``new``."""
        if old is None or self.smoothing == 0:
            self.offset = [0.0] * len(new)
            return
        offset = [
            o + self.diff(a, b, i) for i, (o, a, b) in enumerate(zip(self.offset, old, new, strict=True))
        ]
        error = math.sqrt(sum(o * o for o in offset[: self.nlin]))
        if self.snap is not None and error >= self.snap:
            offset = [0.0] * len(offset)
        self.offset = offset
        self.speed = [abs(o) / self.smoothing for o in offset]

    def draw(self, predicted: tuple[float, ...], now: float | None) -> None:
        """Draw ``predicted`` plus the offset, shrunk by the time since the last draw (none if ``now`` is
        None: drawn again within the same frame)."""
        self.predicted = predicted
        if now is not None:
            dt = 0.0 if self.last_now is None else max(0.0, now - self.last_now)
            self.last_now = now
            if dt:
                offset, speed = self.offset, self.speed
                for i, o in enumerate(offset):
                    if o:
                        step = speed[i] * dt
                        offset[i] = 0.0 if abs(o) <= step else (o - step if o > 0 else o + step)
        r = self.rendered
        nlin, turn = self.nlin, self.turn
        for i, (name, v, o) in enumerate(zip(self.names, predicted, self.offset, strict=True)):
            setattr(r, name, v + o if i < nlin else (v + o) % turn)

    @property
    def error(self) -> float:
        """The size of the correction still being smoothed (over the linear fields)."""
        return math.sqrt(sum(o * o for o in self.offset[: self.nlin]))


class _Predicted(Generic[S]):
    """What both predictors show: the predicted state, the last server row and the smoothed drawing."""

    _c: _Corrector
    _state: S | None
    _server: S | None

    @property
    def state(self) -> S | None:
        """The predicted state (``None`` before the first authoritative row)."""
        return self._state

    @property
    def server(self) -> S | None:
        """The last authoritative row."""
        return self._server

    @property
    def rendered(self) -> Rendered:
        """The drawn state: the prediction plus the correction still being smoothed (the same object
        every frame, updated in place)."""
        return self._c.rendered

    @property
    def error(self) -> float:
        """The size of the correction still being smoothed (distance over the linear fields)."""
        return self._c.error


class InputPredictor(_Predicted[S], Generic[S, I]):
    """Prediction for modules whose input reducer changes the player's row directly (shape (a)).

    ``apply(state, input) -> state`` is the client's copy of what the reducer does to the row; it must
    return a new state and leave its argument alone (rows are often frozen dataclasses: use
    ``dataclasses.replace``). ``fields``/``angles`` name the numeric attributes to draw and smooth
    (angles in radians, or degrees with ``degrees=True``); a dotted path such as ``"position.x"`` reads
    into a column, and ``rendered`` names it by its last part.

    - :meth:`input` applies an input at once and numbers it; pass the ``ReducerCall`` that the generated
      reducer function returned for it, whose outcome says whether it committed.
    - :meth:`authoritative` takes each server row of the player: the inputs whose call has an outcome by
      then are dropped (committed ones are in the row; failed ones never will be), the rest are replayed.
    - :meth:`advance` (once per frame; a ``Stepper``) also drops inputs that failed, and committed ones
      with no row after ``settle_frames`` frames (the reducer did not change the row), and moves the drawn
      state :attr:`rendered` toward the prediction.

    Example::

        def step(p: Player, d: tuple[int, int]) -> Player:
            return dataclasses.replace(p, x=p.x + d[0], y=p.y + d[1])

        predictor = InputPredictor(step, fields=("x", "y"), smoothing=0.1)
        Player.register_row_update(lambda op, old, new, ev: new and new.identity == me
                                   and predictor.authoritative(new))
        # on a key press:
        predictor.input((1, 0), move_reducer.move(1, 0))
        # every frame, after the driver's tick:
        sprite.x, sprite.y = predictor.rendered.x, predictor.rendered.y
    """

    def __init__(
        self,
        apply: Callable[[S, I], S],
        fields: Sequence[str] = ("x", "y"),
        angles: Sequence[str] = (),
        *,
        degrees: bool = False,
        smoothing: float = 0.1,
        snap: float | None = None,
        settle_frames: int = 2,
        max_pending: int = 1024,
    ) -> None:
        self._apply = apply
        self._c = _Corrector(fields, angles, degrees, smoothing, snap)
        self._settle = max(1, settle_frames)
        # [number, input, call, frames since its outcome is known]
        self._pending: deque[list[Any]] = deque(maxlen=max_pending)
        self._server: S | None = None
        self._state: S | None = None
        self._seq = 0
        #: Inputs dropped because their call failed (a counter for stats and tests).
        self.rejected: int = 0

    @property
    def pending(self) -> int:
        """How many inputs are applied locally but not yet reflected by the server."""
        return len(self._pending)

    @property
    def sequence(self) -> int:
        """The number of the last input (1 for the first)."""
        return self._seq

    def input(self, value: I, call: ReducerCall | None) -> int:
        """Apply ``value`` to the prediction at once and return its number. ``call`` is the handle of the
        reducer call that sends it (``None``: not sent, it lasts until the next authoritative row)."""
        self._seq += 1
        self._pending.append([self._seq, value, call, 0])
        if self._state is not None:
            self._state = self._apply(self._state, value)
            self._c.draw(self._c.values(self._state), None)
        return self._seq

    def authoritative(self, row: S) -> None:
        """The server's row of the player arrived: drop the inputs it reflects, replay the others (the
        drawn state moves to the new prediction smoothly, from the next :meth:`advance` on)."""
        self._server = row
        kept = [p for p in self._pending if p[2] is not None and p[2].status == "pending"]
        self._pending.clear()
        self._pending.extend(kept)
        self._rebase(None)

    def advance(self, now: float) -> None:
        """Once per frame: drop settled inputs, re-base on the server row if needed, draw."""
        pending = self._pending
        dropped = False
        if pending:
            kept = []
            for p in pending:
                call = p[2]
                if call is not None and call.status != "pending":
                    if call.status in _FAILED:
                        self.rejected += 1
                        dropped = True
                        continue
                    p[3] += 1
                    if p[3] > self._settle:
                        dropped = True
                        continue
                kept.append(p)
            if dropped:
                pending.clear()
                pending.extend(kept)
        if dropped and self._server is not None:
            self._rebase(now)
        elif self._state is not None:
            self._c.draw(self._c.values(self._state), now)

    def _rebase(self, now: float | None) -> None:
        """The prediction is the server row with the pending inputs replayed on it."""
        state = self._server
        assert state is not None
        for p in self._pending:
            state = self._apply(state, p[1])
        old = self._c.predicted
        self._state = state
        new = self._c.values(state)
        self._c.correct(old, new)
        self._c.draw(new, now)


class TickPredictor(_Predicted[S], Generic[S, I]):
    """Prediction for modules that integrate input on a server tick (shape (b), Blackholio).

    ``step(state, input, dt) -> state`` is the client's copy of what one server tick does to the player
    with the input it last received; it is called with ``dt = tick`` for each whole tick and once per frame
    with the fraction of a tick elapsed (so the drawn state moves every frame and responds to input at
    the next frame). It must return a new state and leave its argument alone.

    - :meth:`set_input` sets the current input (it holds until changed); pass the ``ReducerCall`` that
      sent it to let the round trip be measured.
    - :meth:`authoritative` re-bases the prediction on a server row: the row is stepped forward by the
      ticks it lags behind (``lead`` seconds: fixed, or the measured round trip plus half a tick) with the
      inputs recorded for those ticks, and the drawn state blends toward the result over ``smoothing``.
    - :meth:`advance` (once per frame; a ``Stepper``) runs the ticks due and draws.

    Example (Blackholio)::

        def move(c: Circle, direction: DbVector2, dt: float) -> Circle:
            speed = mass_to_max_move_speed(c.mass)
            return dataclasses.replace(c, x=c.x + direction.x * speed * dt, y=c.y + direction.y * speed * dt)

        predictor = TickPredictor(move, DbVector2(0.0, 0.0), tick=0.05, fields=("x", "y"))
        # on the player's row update:       predictor.authoritative(row, now)
        # every frame:
        predictor.set_input(direction, throttle.set(direction, now))
        predictor.advance(now)
        sprite.x, sprite.y = predictor.rendered.x, predictor.rendered.y
    """

    def __init__(
        self,
        step: Callable[[S, I, float], S],
        initial_input: I,
        tick: float = 0.05,
        fields: Sequence[str] = ("x", "y"),
        angles: Sequence[str] = (),
        *,
        degrees: bool = False,
        smoothing: float = 0.1,
        snap: float | None = None,
        lead: float | None = None,
        max_ticks_per_frame: int = 10,
    ) -> None:
        if not tick > 0:
            raise ValueError(f"TickPredictor tick must be > 0 seconds, got {tick!r}")
        if lead is not None and not lead >= 0:
            raise ValueError(f"TickPredictor lead must be >= 0 seconds or None, got {lead!r}")
        self._step = step
        self._input = initial_input
        #: The server's tick in seconds.
        self.tick: float = tick
        self._c = _Corrector(fields, angles, degrees, smoothing, snap)
        self._fixed_lead = lead
        self._rtt: float | None = None
        self._calls: list[ReducerCall] = []
        self._max_ticks = max(1, max_ticks_per_frame)
        self._history: deque[I] = deque(maxlen=256)
        self._state: S | None = None
        self._server: S | None = None
        self._acc = 0.0
        # the inputs that held earlier in the current tick, with how long each held: a change of input
        # within a tick keeps the motion already drawn (no jump back) and shows at the next frame
        self._parts: list[tuple[I, float]] = []
        self._parts_time = 0.0
        self._last: float | None = None

    @property
    def lead(self) -> float:
        """How far (seconds) the prediction runs ahead of an arriving server row: the fixed ``lead``, or
        the measured round trip plus half a tick (two ticks before any round trip is measured)."""
        if self._fixed_lead is not None:
            return self._fixed_lead
        if self._rtt is None:
            return 2.0 * self.tick
        return self._rtt + self.tick / 2.0

    def set_input(self, value: I, call: ReducerCall | None = None) -> None:
        """The input is now ``value`` (it holds until changed); ``call`` (if it was sent) measures the
        round trip for the automatic ``lead``."""
        if value is not self._input and value != self._input:
            held = self._acc - self._parts_time
            if held > 0:
                self._parts.append((self._input, held))
                self._parts_time = self._acc
            self._input = value
            if self._state is not None:
                self._c.draw(self._c.values(self._partial(self._state, self._acc)), None)
        if call is not None and len(self._calls) < 64:
            self._calls.append(call)

    def _partial(self, state: S, upto: float) -> S:
        """``state`` stepped through the part of the current tick up to ``upto`` seconds."""
        for inp, held in self._parts:
            state = self._step(state, inp, held)
        rest = upto - self._parts_time
        return self._step(state, self._input, rest) if rest > 0 else state

    def authoritative(self, row: S, now: float) -> None:
        """The server's row of the player arrived at ``now``: re-base the prediction on it."""
        self._server = row
        lag = min(len(self._history), round(self.lead / self.tick))
        state = row
        if lag:
            history = self._history
            for i in range(len(history) - lag, len(history)):
                state = self._step(state, history[i], self.tick)
        if self._state is None:
            self._state = state
            self._c.correct(None, self._c.values(state))
            self._c.draw(self._c.values(state), now)
            return
        old = self._c.values(self._state)
        self._state = state
        self._c.correct(old, self._c.values(state))

    def advance(self, now: float) -> None:
        """Run the ticks due by ``now`` with the current input, and draw (once per frame)."""
        if self._calls:
            self._measure()
        last = now if self._last is None else self._last
        self._last = now
        self._acc += max(0.0, now - last)
        state, tick, inp, n = self._state, self.tick, self._input, 0
        while self._acc >= tick and n < self._max_ticks:
            # the inputs are recorded before the first row too: it is re-based with them
            if state is not None:
                state = self._partial(state, tick)
            self._parts.clear()
            self._parts_time = 0.0
            self._history.append(inp)
            self._acc -= tick
            n += 1
        if self._acc >= tick:  # a long stall: do not try to catch up with the ticks beyond the limit
            self._acc %= tick
        if state is None:
            return
        self._state = state
        self._c.draw(self._c.values(self._partial(state, self._acc)), now)

    def _measure(self) -> None:
        kept = []
        for call in self._calls:
            if call.round_trip is None:
                if call.status == "pending":
                    kept.append(call)
                continue
            rtt = call.round_trip
            self._rtt = rtt if self._rtt is None else self._rtt + 0.2 * (rtt - self._rtt)
        self._calls = kept
