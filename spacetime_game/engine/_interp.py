"""Snapshot interpolation for many entities (engine-neutral, pure: no connection, no clock of its own).

Each entity keeps a small buffer of snapshots (its declared numeric fields, stamped with a time) and is drawn
a little in the past, at a *render time* that trails the newest data by a render delay, so that there are
(nearly) always two snapshots around it to interpolate between. Protocol v2 updates carry no server time, so
a snapshot is stamped with the local arrival time passed to :meth:`Interpolator.push`, unless the table
has a tick or timestamp column (``time=``), whose values then give the timeline.

The per-frame work is code generated for the declared fields (as ``dataclasses`` does for its methods):
an entity between two snapshots costs one comparison and one multiply-add per field; an entity that stopped
moving (held after its capped extrapolation) leaves the per-frame loop until its next snapshot.
"""

from __future__ import annotations

import keyword
import logging
import math
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

__all__ = ["Interpolated", "Interpolator"]

log = logging.getLogger("spacetime_game.engine")

# entity modes
_INTERP = 0  # between two snapshots (or holding before a snap)
_EXTRAP = 1  # past the newest snapshot, continuing its motion up to the cap
_CATCHUP = 2  # moving from where it was drawn to a snapshot that arrived too late
_HELD = 3  # not moving: out of the per-frame loop until the next snapshot

_INF = math.inf


class Interpolated:
    """The drawn state of one entity, updated in place by :meth:`Interpolator.advance`.

    Each declared field is an attribute holding a float (``state.x``, ``state.angle``): copy them into a
    sprite after each frame, no allocation needed. Angle fields come out in ``[0, turn)`` (``turn`` is
    ``2*pi`` or ``360``). ``key`` is the entity's key and ``row`` the last row pushed for it. ``target``
    is free for the caller (None until set): what is drawn from this state, such as its sprite, so that
    a loop over :attr:`Interpolator.moved` can place it without a lookup.

    Instances are made by the interpolator (a subclass per field set, with ``__slots__``); do not create
    or modify them.
    """

    __slots__ = (
        "__weakref__",
        "_buf",
        "_lt",
        "_lv",
        "_mode",
        "_s",
        "_t1",
        "key",
        "row",
        "target",
    )

    key: Hashable
    row: Any
    target: Any
    #: the segments ahead of the one drawn, each (t0, t1, inv, umax, snap, b0, d0, b1, d1, ...)
    _buf: list[tuple[float, ...]]  # (a list: a deque would weigh 600 bytes per entity)
    #: the segment drawn (see _Kernels): a switch to the next one is a single store
    _s: tuple[float, ...]
    #: its end time t1, apart for the per-frame test (-inf makes the next frame look at the entity)
    _t1: float
    #: the newest snapshot: its time and values
    _lt: float
    _lv: tuple[float, ...]
    _mode: int

    if TYPE_CHECKING:  # the declared fields are slots of the generated subclass

        def __getattr__(self, name: str) -> float: ...

    @property
    def buffered(self) -> int:
        """Snapshots waiting ahead of the segment being drawn (0 when drawing toward the newest one)."""
        return len(self._buf)

    @property
    def extrapolating(self) -> bool:
        """True while the entity is drawn past its newest snapshot (its motion continued, up to the cap)."""
        return self._mode == _EXTRAP

    @property
    def moving(self) -> bool:
        """False once the entity is held still (it then costs nothing per frame until its next snapshot)."""
        return self._mode != _HELD

    def __repr__(self) -> str:
        names = [n for n in type(self).__slots__ if not n.startswith("_")]
        values = ", ".join(f"{n}={getattr(self, n, None)!r}" for n in names)
        return f"<Interpolated {self.key!r} {values}>"


Values = tuple[float, ...]
Segment = tuple[float, ...]


class _Kernels:
    """The functions generated for one set of fields (see the module docstring).

    A segment is a flat tuple ``(t0, t1, inv, umax, flag, b0, d0, b1, d1, ...)``: field ``i`` is drawn as
    ``b_i + d_i * u`` with ``u = (r - t0) * inv``, capped at ``umax``, while the render time ``r`` is
    before ``t1``. ``flag`` 1.0 marks a teleport (hold ``b`` until ``t1``, then jump), 2.0 a segment that
    starts where the entity was drawn (not between two snapshots: never extrapolated); both end held at
    the newest snapshot.
    """

    def __init__(
        self, names: Sequence[str], angles: Sequence[bool], turn: float, paths: Sequence[str] | None = None
    ) -> None:
        n = len(names)
        paths = tuple(names) if paths is None else tuple(paths)
        lines: list[str] = []
        emit = lines.append
        g: dict[str, Any] = {"TURN": turn, "HALF": turn / 2.0, "INF": _INF}

        def draw(indent: str, u: str) -> None:
            for i, (name, ang) in enumerate(zip(names, angles, strict=True)):
                expr = f"s[{5 + 2 * i}] + s[{6 + 2 * i}] * {u}"
                emit(f"{indent}e.{name} = ({expr}) % TURN" if ang else f"{indent}e.{name} = {expr}")

        # one frame of the whole active set: the hot loop (segment fields read by constant index)
        emit("def frame(states, r, slow, done):")
        emit("    for e in states:")
        emit("        if r < e._t1:")
        emit("            s = e._s")
        emit("            u = (r - s[0]) * s[2]")
        emit("            if u > s[3]:")
        emit("                u = s[3]")
        draw("            ", "u")
        emit("            continue")
        # the common switch, inlined: the next segment is buffered and reaches past r
        emit("        buf = e._buf")
        emit("        if buf and e._mode == 0 and buf[0][1] > r:")
        emit("            e._s = s = buf.pop(0)")
        emit("            e._t1 = s[1]")
        emit("            u = (r - s[0]) * s[2]")
        draw("            ", "u")
        emit("        elif slow(e, r):")
        emit("            done.append(e)")

        emit("def put(e, s, u):")
        draw("    ", "u")

        # a segment from values a at t0 to values b at t1
        emit("def seg(t0, a, t1, b, snap):")
        emit("    inv = 1.0 / (t1 - t0)")
        emit("    if snap:")
        emit(f"        return (t0, t1, inv, 1.0, 1.0, {''.join(f'a[{i}], 0.0, ' for i in range(n))})")
        for i, ang in enumerate(angles):
            _emit_delta(emit, "    ", i, ang, f"b[{i}]", f"a[{i}]")
        emit(f"    return (t0, t1, inv, 1.0, 0.0, {''.join(f'a[{i}], d{i}, ' for i in range(n))})")

        emit("def hold(t, a):")
        emit(f"    return (t, INF, 0.0, 0.0, 0.0, {''.join(f'a[{i}], 0.0, ' for i in range(n))})")

        emit("def current(e):")
        emit(f"    return ({''.join(f'e.{name}, ' for name in names)})")

        emit("def end(s):")
        ends = [
            f"(s[{5 + 2 * i}] + s[{6 + 2 * i}]) % TURN" if ang else f"s[{5 + 2 * i}] + s[{6 + 2 * i}]"
            for i, ang in enumerate(angles)
        ]
        emit(f"    return ({''.join(f'{x}, ' for x in ends)})")

        emit("def start(s):")
        emit(f"    return ({''.join(f's[{5 + 2 * i}], ' for i in range(n))})")

        emit("def values(row):")
        emit(f"    return ({''.join(f'float(row.{path}), ' for path in paths)})")

        emit("def jump2(a, b):")
        terms = [f"(b[{i}] - a[{i}]) ** 2" for i in range(n) if not angles[i]]
        emit(f"    return {' + '.join(terms) if terms else '0.0'}")

        exec(compile("\n".join(lines), "<interpolation kernels>", "exec"), g)
        self._names = tuple(names)
        self._paths = paths
        self._angles = tuple(angles)
        self._globals = g
        #: The fast push of a row read by attribute (see :meth:`_fast_push`), and those of row classes
        #: that are tuples with ``column_names`` (read by index), by class.
        self.push_attr = self._fast_push([f"row.{path}" for path in paths])
        self._push_by_class: dict[type, _Pushes] = {}
        self.frame: Callable[[Any, float, Callable[[Interpolated, float], bool], list[Interpolated]], None]
        self.frame = g["frame"]
        self.put: Callable[[Interpolated, Segment, float], None] = g["put"]
        self.seg: Callable[[float, Values, float, Values, bool], Segment] = g["seg"]
        self.hold: Callable[[float, Values], Segment] = g["hold"]
        self.current: Callable[[Interpolated], Values] = g["current"]
        self.end: Callable[[Segment], Values] = g["end"]
        self.start: Callable[[Segment], Values] = g["start"]
        self.values: Callable[[Any], Values] = g["values"]
        self.jump2: Callable[[Values, Values], float] = g["jump2"]
        slots = tuple(names)
        self.state_class: type[Interpolated] = type("Interpolated", (Interpolated,), {"__slots__": slots})

    def _fast_push(self, reads: Sequence[str], cls: type | None = None) -> _Pushes:
        """The common case of :meth:`Interpolator.push` in one function: a snapshot of a known entity
        ``e`` at ``t``, later than its newest by ``0 < dt <= maxi``, not a snap (the squared distance
        is under ``snap2``) and with room in its buffer (fewer than ``full`` segments): appends the
        segment and returns ``dt``. Anything else returns -1.0 and changes nothing (the general path
        then handles it). ``reads`` are the expressions reading each field from ``row``.

        And the same over many rows at one time (see :meth:`Interpolator.push_many`): ``many(get,
        keys, rows, i, t, maxi, snap2, full, active, isum, n)`` runs the common case from row ``i`` on,
        for rows of known entities (``get(key)``), waking each (into ``active``) if it was not
        interpolating and adding its interval to the running ``isum`` and ``n``. It stops at the first
        row that needs the general path (a new entity, a snap, ...; with ``cls``, a row of another
        class too: the reads are by index, for that class only) and returns ``(index, isum, n)``, the
        index being ``len(rows)`` when all are done."""
        names, angles = self._names, self._angles
        lines: list[str] = []
        emit = lines.append

        def body(indent: str, fail: str) -> None:
            emit(f"{indent}dt = t - e._lt")
            emit(f"{indent}if not 0.0 < dt <= maxi:")
            emit(f"{indent}    {fail}")
            emit(f"{indent}buf = e._buf")
            emit(f"{indent}if len(buf) >= full:")
            emit(f"{indent}    {fail}")
            emit(f"{indent}a = e._lv")
            for i, read in enumerate(reads):
                emit(f"{indent}v{i} = float({read})")
            dist: list[str] = []
            for i, ang in enumerate(angles):
                _emit_delta(emit, indent, i, ang, f"v{i}", f"a[{i}]")
                if not ang:
                    dist.append(f"d{i} * d{i}")
            if dist:
                emit(f"{indent}if {' + '.join(dist)} >= snap2:")
                emit(f"{indent}    {fail}")
            pairs = "".join(f"a[{i}], d{i}, " for i in range(len(names)))
            emit(f"{indent}buf.append((e._lt, t, 1.0 / dt, 1.0, 0.0, {pairs}))")
            emit(f"{indent}e.row = row")
            emit(f"{indent}e._lt = t")
            emit(f"{indent}e._lv = ({''.join(f'v{i}, ' for i in range(len(names)))})")

        emit("def push(e, row, t, maxi, snap2, full):")
        body("    ", "return -1.0")
        emit("    return dt")

        emit("def many(get, keys, rows, i, t, maxi, snap2, full, active, isum, n):")
        emit("    end = len(rows)")
        emit("    while i < end:")
        emit("        key = keys[i]")
        emit("        row = rows[i]")
        emit("        e = get(key)")
        emit("        if e is None" + (" or type(row) is not CLS:" if cls is not None else ":"))
        emit("            return i, isum, n")
        body("        ", "return i, isum, n")
        emit("        isum += dt")
        emit("        n += 1")
        emit("        i += 1")
        emit("        if e._mode:")  # not interpolating (0): leave the hold, extrapolation or catch-up
        emit("            e._t1 = -INF")
        emit(f"            if e._mode == {_HELD}:")
        emit("                active[key] = e")
        emit("    return end, isum, n")
        g = dict(self._globals)
        g["CLS"] = cls
        exec(compile("\n".join(lines), "<interpolation push>", "exec"), g)
        return _Pushes(g["push"], g["many"])

    def push_for(self, row: Any) -> _Pushes:
        """The fast pushes for ``row``'s class: reading the fields by index when the class is a
        generated table class (a tuple with ``column_names`` whose attributes are its items), else by
        attribute."""
        cls = type(row)
        fns = self._push_by_class.get(cls)
        if fns is None:
            fns = self.push_attr
            columns = getattr(cls, "column_names", None)
            heads = [path.split(".", 1) for path in self._paths]  # the column, and what is read in it
            if (
                isinstance(row, tuple)
                and isinstance(columns, tuple)
                and len(columns) == len(row)
                and all(head[0] in columns for head in heads)
            ):
                idx = [columns.index(head[0]) for head in heads]
                try:
                    same = all(getattr(row, h[0]) is row[i] for h, i in zip(heads, idx, strict=True))
                except Exception:
                    same = False
                if same:
                    reads = [
                        f"row[{i}]" + (f".{h[1]}" if len(h) > 1 else "")
                        for h, i in zip(heads, idx, strict=True)
                    ]
                    fns = self._fast_push(reads, cls)
            if len(self._push_by_class) < 64:
                self._push_by_class[cls] = fns
        return fns


def _emit_delta(emit: Callable[[str], object], indent: str, i: int, angle: bool, new: str, old: str) -> None:
    """Emit ``d<i> = new - old``: for an angle the short way round, in ``[-TURN/2, TURN/2)``."""
    if angle:
        emit(f"{indent}d{i} = ({new} - {old}) % TURN")
        emit(f"{indent}if d{i} >= HALF:")
        emit(f"{indent}    d{i} -= TURN")
    else:
        emit(f"{indent}d{i} = {new} - {old}")


class _Pushes(NamedTuple):
    """The generated fast pushes of one row class (see :meth:`_Kernels._fast_push`)."""

    one: Callable[..., float]
    many: Callable[..., tuple[int, float, int]]


#: The attributes of :class:`Interpolated` that a field cannot be named.
_RESERVED = ("key", "row", "target", "buffered", "extrapolating", "moving")


def field_names(
    fields: Sequence[str],
    angles: Sequence[str],
    what: str = "Interpolator",
    reserved: Sequence[str] = _RESERVED,
) -> tuple[str, ...]:
    """The attribute names of declared fields (each a row attribute, or a dotted path into one such as
    ``"position.x"``, named by its last part: ``x``), checked: identifiers, not reserved, no name twice."""
    paths = [*fields, *angles]
    if not paths:
        raise ValueError(f"{what} needs at least one field (fields=('x', 'y'), angles=('angle',))")
    names = []
    for path in paths:
        parts = path.split(".") if isinstance(path, str) else [path]
        for part in parts:
            if not isinstance(part, str) or not part.isidentifier() or keyword.iskeyword(part):
                raise ValueError(
                    f"{what} field {path!r} is not a row attribute (a Python identifier) or a dotted path of them"
                )
        name = parts[-1]
        if name.startswith("_") or name in ("key", "row", "target", "buffered", "extrapolating", "moving"):
            raise ValueError(
                f"{what} field {path!r} is reserved (a leading underscore, or a name of Interpolated)"
            )
        names.append(name)
    if len(set(names)) != len(names):
        raise ValueError(
            f"{what} fields are declared twice (a dotted path is named by its last part): {paths}"
        )
    return tuple(names)


class Interpolator:
    """Interpolates the declared fields of many entities between snapshots; a ``Stepper`` of the driver.

    ``fields`` are interpolated linearly, ``angles`` the short way round (in radians, or in degrees with
    ``degrees=True``); both are read from rows as attributes and converted with ``float``. A field may
    be a dotted path into a column (``"position.x"`` for a ``DbVector2`` column); the state's attribute
    is then its last part (``state.x``), and :attr:`names` lists them.

    - ``delay``: the render delay in seconds; ``None`` (the default) makes it automatic:
      ``delay_intervals`` (2) times the observed update interval, which is re-estimated as it changes.
    - ``time``: where a snapshot's time comes from. ``None`` stamps it with the ``now`` given to
      :meth:`push` (its arrival: v2 updates carry no server time); a column name (``"tick"``) or a function of
      the row gives a time in the module's own timeline, multiplied by ``time_scale`` to make seconds (0.05
      for a 20 Hz tick counter, 1e-6 for microseconds). The render clock then follows that timeline.
    - ``extrapolate``: how far (seconds) an entity whose snapshots run out keeps moving along its last
      segment; ``None`` is one observed update interval, 0 holds at once. If no newer snapshot comes by
      then, it glides back to its newest snapshot over an interval and is held there.
    - ``snap``: a distance (over the linear fields, Euclidean); a snapshot that far or farther from the
      previous one is a teleport: the entity stays where it was until the snapshot's time, then jumps to it.
    - ``adaptive``: run the render clock at a playback rate within ``1 ± max_rate_change`` that keeps it
      ``delay`` behind the newest data: slightly faster when the buffer is deep, slower when it runs dry.
      Without it, the render clock is simply ``now - delay`` (never going back).
    - ``max_interval``: gaps between snapshots longer than this (an entity that stood still) are not
      counted as update intervals.

    Example (in an adapter, once per frame)::

        interp = Interpolator(fields=("x", "y"), angles=("heading",), snap=500.0)
        # on a row insert / update:   interp.push(row.entity_id, row, now)
        # on a row delete:            interp.remove(row.entity_id)
        interp.advance(now)
        state = interp.get(entity_id)
        sprite.center_x, sprite.center_y = state.x, state.y
    """

    def __init__(
        self,
        fields: Sequence[str] = ("x", "y"),
        angles: Sequence[str] = (),
        *,
        degrees: bool = False,
        delay: float | None = None,
        delay_intervals: float = 2.0,
        time: str | Callable[[Any], float] | None = None,
        time_scale: float = 1.0,
        extrapolate: float | None = None,
        snap: float | None = None,
        adaptive: bool = False,
        max_rate_change: float = 0.1,
        initial_interval: float = 0.1,
        max_interval: float = 1.0,
        max_buffer: int = 64,
    ) -> None:
        fields, angles = tuple(fields), tuple(angles)
        names = field_names(fields, angles)
        for label, value in (
            ("delay_intervals", delay_intervals),
            ("time_scale", time_scale),
            ("initial_interval", initial_interval),
            ("max_interval", max_interval),
        ):
            if not value > 0:
                raise ValueError(f"Interpolator {label} must be > 0, got {value!r}")
        for label, opt in (("delay", delay), ("extrapolate", extrapolate), ("snap", snap)):
            if opt is not None and not opt >= 0:
                raise ValueError(f"Interpolator {label} must be >= 0 or None, got {opt!r}")
        if not 0 <= max_rate_change < 1:
            raise ValueError(f"Interpolator max_rate_change must be in [0, 1), got {max_rate_change!r}")
        if max_buffer < 2:
            raise ValueError(f"Interpolator max_buffer must be >= 2, got {max_buffer!r}")
        #: The linearly interpolated fields (as declared: attributes or dotted paths).
        self.fields: tuple[str, ...] = fields
        #: The angle fields (as declared).
        self.angles: tuple[str, ...] = angles
        #: A full turn in the angles' unit (``2*pi``, or 360 with ``degrees=True``).
        self.turn: float = 360.0 if degrees else math.tau
        #: The attribute names of the fields and then the angles on each :class:`Interpolated` state
        #: (a dotted path is named by its last part: ``"position.x"`` is ``state.x``).
        self.names: tuple[str, ...] = names
        self._k = _Kernels(names, [False] * len(fields) + [True] * len(angles), self.turn, fields + angles)
        self._fixed_delay = delay
        self._delay_intervals = delay_intervals
        if isinstance(time, str):
            column = time
            self._stamp: Callable[[Any], float] | None = lambda row: float(getattr(row, column)) * time_scale
        elif time is not None:
            fn = time
            self._stamp = lambda row: float(fn(row)) * time_scale
        else:
            self._stamp = None
        self._fixed_extrapolate = extrapolate
        self._snap2 = _INF if snap is None else snap * snap
        self._adaptive = adaptive
        self._max_rate_change = max_rate_change
        self._max_interval = max_interval
        self._max_buffer = max_buffer
        # the fast push of the last row class seen (see _Kernels.push_for)
        self._fast_class: type = type(None)
        self._fast = self._k.push_attr.one
        self._many = self._k.push_attr.many
        self._entities: dict[Hashable, Interpolated] = {}
        self._active: dict[Hashable, Interpolated] = {}
        self._done: list[Interpolated] = []
        # what the last advance() wrote, and entities moved by a push since (a restarted timeline)
        self._moved: list[Interpolated] = []
        self._touched: list[Interpolated] = []
        # estimates, folded once per frame from the samples of the pushes since the last one
        self._interval = initial_interval
        self._jitter = 0.0
        self._offset = 0.0
        self._have_interval = False
        self._have_offset = False
        self._isum = 0.0
        self._in = 0
        self._osum = 0.0
        self._on = 0
        self._newest = -_INF
        # the render clock
        self._render: float | None = None
        self._render_prev = 0.0
        self._now_prev = 0.0
        self._rate = 1.0

    # ----------------------------------------------------------------------------------------- input

    def push(self, key: Hashable, row: Any, now: float, *, snap: bool = False) -> None:
        """Add a snapshot of ``row`` for entity ``key`` (spawning it on its first snapshot), received at
        ``now`` (seconds, the clock given to :meth:`advance`). ``snap=True`` makes it a teleport whatever
        the distance. A new entity is drawn at once at its first snapshot."""
        k = self._k
        if self._stamp is None:
            t = now
            e = self._entities.get(key)
            if e is not None and not snap:
                fast = self._fast if type(row) is self._fast_class else self._fast_for(row)
                dt = fast(e, row, t, self._max_interval, self._snap2, self._max_buffer)
                if dt > 0.0:  # the common case, done (see _Kernels._fast_push): what follows the append
                    self._isum += dt
                    self._in += 1
                    if t > self._newest:
                        self._newest = t
                    if e._mode != _INTERP:
                        e._t1 = -_INF
                        if e._mode == _HELD:
                            self._active[key] = e
                    return
        else:
            t = self._stamp(row)
            self._osum += t - now
            self._on += 1
        if t > self._newest:
            self._newest = t
        v = k.values(row)
        e = self._entities.get(key)
        if e is None:
            e = k.state_class()
            e.key = key
            e.row = row
            e.target = None
            e._buf = []
            self._hold(e, t, v)
            self._entities[key] = e
            return
        e.row = row
        buf = e._buf
        dt = t - e._lt
        if dt < -1.0:  # the timeline restarted (a tick counter reset): start over from this snapshot
            buf.clear()
            self._hold(e, t, v)
            self._active.pop(key, None)
            self._touched.append(e)  # drawn at a new place outside a frame: in the next frame's moved
            return
        jump = snap or (self._snap2 != _INF and k.jump2(e._lv, v) >= self._snap2)
        if dt <= 0.0:  # the same time again (two updates in one tick or one frame): the newer wins
            if buf:
                last = buf[-1]
                buf[-1] = k.seg(last[0], k.start(last), last[1], v, jump or last[4] != 0.0)
                e._lv = v
                return
            t = e._lt + 1e-6
        elif dt <= self._max_interval:
            self._isum += dt
            self._in += 1
        if len(buf) >= self._max_buffer:
            del buf[0]
        buf.append(k.seg(e._lt, e._lv, t, v, jump))
        e._lt = t
        e._lv = v
        if e._mode != _INTERP:  # leave the hold, extrapolation or catch-up on the next frame
            e._t1 = -_INF
            if e._mode == _HELD:
                self._active[key] = e

    def _fast_for(self, row: Any) -> Callable[..., float]:
        fns = self._k.push_for(row)
        self._fast_class = type(row)
        self._fast = fns.one
        self._many = fns.many
        return fns.one

    def push_many(self, keys: Sequence[Hashable], rows: Sequence[Any], now: float) -> None:
        """:meth:`push` for many entities at one time (a transaction's rows): ``rows[i]`` is a snapshot
        of entity ``keys[i]``, received at ``now``. The same as pushing them one by one, in order, in
        one loop: about half the cost per row for the thousands of rows of a big transaction."""
        if self._stamp is not None or not rows:
            push = self.push
            for key, row in zip(keys, rows, strict=True):
                push(key, row, now)
            return
        if len(keys) != len(rows):
            raise ValueError(f"push_many: {len(keys)} keys for {len(rows)} rows")
        if type(rows[0]) is not self._fast_class:
            self._fast_for(rows[0])
        many, get, end = self._many, self._entities.get, len(rows)
        i = 0
        while True:
            # the common case in one generated loop, the stats carried through it in push order; a row
            # it cannot take goes through push (which may change self._many for another row class)
            seen = self._in
            i, self._isum, self._in = many(
                get,
                keys,
                rows,
                i,
                now,
                self._max_interval,
                self._snap2,
                self._max_buffer,
                self._active,
                self._isum,
                self._in,
            )
            if self._in != seen and now > self._newest:
                self._newest = now
            if i >= end:
                return
            self.push(keys[i], rows[i], now)
            i += 1

    def remove(self, key: Hashable) -> None:
        """Forget entity ``key`` (despawned); nothing happens if it is unknown."""
        self._entities.pop(key, None)
        self._active.pop(key, None)

    def clear(self) -> None:
        """Forget every entity (the estimates of interval and delay are kept)."""
        self._entities.clear()
        self._active.clear()
        self._moved = []
        self._touched.clear()

    # ----------------------------------------------------------------------------------------- frame

    def advance(self, now: float) -> None:
        """Move the render clock to ``now`` (seconds) and update every moving entity's fields in place."""
        self._fold()
        delay = self.delay
        target = now + self._offset - delay
        r = self._render
        if r is None:
            r = target
        elif self._adaptive:
            dt = now - self._now_prev
            err = target - r
            if abs(err) > max(2.0 * delay, 0.5):
                r = target
            else:
                m = self._max_rate_change
                rate = 1.0 + max(-m, min(m, err / delay if delay > 0 else m))
                if r >= self._newest:  # the buffer ran dry: slow down
                    rate = min(rate, 1.0 - m)
                self._rate = rate
                if dt > 0:
                    r += dt * rate
        elif target > r or target < r - 1.0:
            r = target
        self._render_prev = self._render if self._render is not None else r
        self._render = r
        self._now_prev = now
        done = self._done
        active = self._active
        self._k.frame(active.values(), r, self._slow, done)
        moved = list(active.values())
        if self._touched:
            touched, self._touched = self._touched, []
            moved.extend(e for e in touched if self._entities.get(e.key) is e and e.key not in active)
        self._moved = moved
        if done:
            active = self._active
            for e in done:
                active.pop(e.key, None)
            done.clear()

    def _fold(self) -> None:
        if self._in:
            mean = self._isum / self._in
            if self._have_interval:
                self._jitter += 0.1 * (abs(mean - self._interval) - self._jitter)
                self._interval += 0.1 * (mean - self._interval)
            else:
                self._interval = mean
                self._have_interval = True
            self._isum = 0.0
            self._in = 0
        if self._on:
            mean = self._osum / self._on
            if self._have_offset:
                self._offset += 0.1 * (mean - self._offset)
            else:
                self._offset = mean
                self._have_offset = True
            self._osum = 0.0
            self._on = 0

    def _cap(self) -> float:
        cap = self._fixed_extrapolate
        return self._interval if cap is None else cap

    def _slow(self, e: Interpolated, r: float) -> bool:
        """The render time passed the end of ``e``'s segment, or a snapshot woke it: set up what it draws
        next. True when ``e`` is now held still (it leaves the per-frame loop)."""
        k = self._k
        buf = e._buf
        s = e._s
        if buf:
            nxt = buf.pop(0)
            while nxt[1] <= r and buf:
                nxt = buf.pop(0)
            if e._mode == _INTERP:
                e._s = s = nxt
                e._t1 = nxt[1]
                if nxt[1] > r:
                    k.put(e, nxt, (r - nxt[0]) * nxt[2])
                    return False
                # every buffered segment is behind the render time: go on past the newest (below)
            else:  # leave a hold, extrapolation or catch-up from where the entity is drawn
                t0 = self._render_prev
                cur = k.current(e)
                t1 = nxt[1]
                if t1 > r and t1 > t0:
                    # not extrapolated past its end: it does not join two snapshots (flag 2.0)
                    s = k.seg(t0, cur, t1, cur if nxt[4] else k.end(nxt), nxt[4] != 0.0)
                    if not buf and not nxt[4]:
                        s = (*s[:4], 2.0, *s[5:])
                    self._draw(e, s, _INTERP, r)
                    return False
                if buf or nxt[4]:
                    return self._hold(e, e._lt, e._lv)
                # the newest snapshot came too late for where the entity is drawn: catch up over an interval
                span = max(self._interval, 1e-3)
                self._draw(e, k.seg(r, cur, r + span, e._lv, False), _CATCHUP, r)
                return False
        if e._mode == _INTERP:  # past the newest snapshot
            if s[4] != 0.0:  # a teleport whose time has come, or the end of a segment from a hold
                return self._hold(e, e._lt, e._lv)
            cap = self._cap()
            if cap > 0.0:
                x = (s[0], s[1] + cap, s[2], 1.0 + cap * s[2], *s[4:])
                if r < x[1]:
                    self._draw(e, x, _EXTRAP, r)
                    return False
            return self._hold(e, e._lt, e._lv)  # (a frame later than the whole extrapolation)
        if e._mode == _EXTRAP:
            # no newer snapshot came: the entity stopped where the newest one says, so it glides back
            # there over an interval (held past it, it would stay wrong until the entity moves again)
            k.put(e, s, s[3])
            span = max(self._interval, 1e-3)
            self._draw(e, k.seg(r, k.current(e), r + span, e._lv, False), _CATCHUP, r)
            return False
        # a catch-up is over: hold at the newest snapshot
        return self._hold(e, e._lt, e._lv)

    def _draw(self, e: Interpolated, s: Segment, mode: int, r: float) -> None:
        e._s = s
        e._t1 = s[1]
        e._mode = mode
        u = (r - s[0]) * s[2]
        self._k.put(e, s, u if u < s[3] else s[3])

    def _hold(self, e: Interpolated, t: float, v: Values) -> bool:
        """Hold ``e`` still at values ``v`` (its newest snapshot being at ``t``)."""
        e._lt = t
        e._lv = v
        s = self._k.hold(t, v)
        e._s = s
        e._t1 = s[1]
        e._mode = _HELD
        self._k.put(e, s, 0.0)
        return True

    # ----------------------------------------------------------------------------------------- reading

    def get(self, key: Hashable) -> Interpolated:
        """The drawn state of entity ``key`` (the same object every frame, updated in place); raises
        ``KeyError`` if it has no snapshot."""
        return self._entities[key]

    def __contains__(self, key: object) -> bool:
        return key in self._entities

    def __len__(self) -> int:
        return len(self._entities)

    def __iter__(self) -> Iterator[Interpolated]:
        return iter(self._entities.values())

    @property
    def delay(self) -> float:
        """The render delay in seconds (fixed, or the automatic one: ``delay_intervals`` x interval)."""
        if self._fixed_delay is not None:
            return self._fixed_delay
        return self._delay_intervals * self._interval

    @property
    def interval(self) -> float:
        """The observed update interval of an entity in seconds (a moving average)."""
        return self._interval

    @property
    def jitter(self) -> float:
        """The average deviation of the update interval from its mean, in seconds."""
        return self._jitter

    @property
    def render_time(self) -> float | None:
        """The time being drawn (on the snapshots' timeline), or ``None`` before the first frame."""
        return self._render

    @property
    def rate(self) -> float:
        """The playback rate of the render clock (1.0 unless ``adaptive``)."""
        return self._rate

    @property
    def depth(self) -> float:
        """Seconds of data buffered ahead of the render time (newest snapshot time minus render time);
        negative when the buffer ran dry. 0 before the first frame."""
        if self._render is None or self._newest == -_INF:
            return 0.0
        return self._newest - self._render

    @property
    def moving(self) -> int:
        """How many entities the last frame updated (the rest are held still)."""
        return len(self._active)

    @property
    def moved(self) -> list[Interpolated]:
        """The entities whose fields the last :meth:`advance` wrote (including those it brought to rest,
        and any a restarted timeline moved since the frame before): the only ones to place again. An
        entity held still is not in it, and a new entity neither (it is drawn at its first snapshot as
        :meth:`push` returns: place it then). Do not modify; removed entities may still be listed until
        the next frame (check ``key in interpolator`` if that matters)."""
        return self._moved
