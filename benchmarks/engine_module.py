"""The dev-server module that ``benchmarks.bench_engine`` loads.

    spacetime-game serve benchmarks/engine_module.py --database engine --port 3000

``entity``: moving things (``id``, position ``x``/``y``, velocity ``vx``/``vy``).

- ``spawn(start, count)`` inserts ``count`` entities (ids ``start`` ..), placed by ``start_position``.
- ``start_ticking(every_ms)`` schedules ``tick`` at that period, at a fixed rate (and gives back the
  velocities ``freeze`` took). ``tick`` moves every entity by its velocity and counts the ticks in
  ``clock`` (one row), in one transaction: entity ``i`` is at ``start_position(i) + ticks * velocity``.
- ``stop`` ends the ticking; ``freeze`` then zeroes the velocities, leaving the positions: a client's
  last update of each entity does not move it, so its drawn position comes to rest on the server's.
- ``nudge(id, dx, dy)``: a player's input reducer, moving one entity at once.
"""

from __future__ import annotations

from typing import Annotated

from spacetime_game.server import (
    ReducerContext,
    ReducerError,
    ScheduleAt,
    Timestamp,
    auto_inc,
    primary_key,
    reducer,
    table,
    u32,
    u64,
)


@table(public=True)
class Entity:
    id: Annotated[u32, primary_key]
    x: float
    y: float
    vx: float
    vy: float


@table(public=True)
class Clock:
    id: Annotated[u32, primary_key]
    tick: u64


@table(scheduled="tick")
class TickTimer:
    scheduled_id: Annotated[u64, primary_key, auto_inc]
    scheduled_at: ScheduleAt
    every_us: u64


def start_position(i: int) -> tuple[float, float, float, float]:
    """Where entity ``i`` starts and how fast it moves (per tick): a grid, each row a little faster."""
    return (float(i % 100) * 8.0, float(i // 100) * 8.0, 1.0 + (i % 7) * 0.25, 0.5 - (i % 5) * 0.25)


@reducer
def spawn(ctx: ReducerContext, start: u32, count: u32) -> None:
    for i in range(start, start + count):
        x, y, vx, vy = start_position(i)
        ctx.db.entity.insert(Entity(i, x, y, vx, vy))


@reducer
def start_ticking(ctx: ReducerContext, every_ms: u32) -> None:
    """Give every entity its velocity back (after ``freeze``) and tick every ``every_ms``."""
    update = ctx.db.entity.id.update
    for e in list(ctx.db.entity.iter()):
        vx, vy = start_position(e.id)[2:]
        if (e.vx, e.vy) != (vx, vy):
            e.vx, e.vy = vx, vy
            update(e)
    if ctx.db.clock.id.find(0) is None:
        ctx.db.clock.insert(Clock(0, 0))
    due = ctx.timestamp.micros_since_epoch + every_ms * 1000
    ctx.db.tick_timer.insert(TickTimer(0, ScheduleAt.time(Timestamp(due)), every_ms * 1000))


@reducer
def tick(ctx: ReducerContext, timer: TickTimer) -> None:
    """Move every entity; then schedule the next tick one period after this one was due (a one-shot
    timer per tick, so that ``stop`` ends the ticking by deleting a single row)."""
    assert isinstance(timer.scheduled_at.value, Timestamp)
    due = timer.scheduled_at.value.micros_since_epoch + timer.every_us
    now = ctx.timestamp.micros_since_epoch
    ctx.db.tick_timer.insert(TickTimer(0, ScheduleAt.time(Timestamp(max(due, now))), timer.every_us))
    update = ctx.db.entity.id.update
    for e in list(ctx.db.entity.iter()):
        e.x += e.vx
        e.y += e.vy
        update(e)
    c = ctx.db.clock.id.find(0)
    if c is not None:
        c.tick += 1
        ctx.db.clock.id.update(c)


@reducer
def stop(ctx: ReducerContext) -> None:
    for t in list(ctx.db.tick_timer.iter()):
        ctx.db.tick_timer.delete(t)


@reducer
def freeze(ctx: ReducerContext) -> None:
    update = ctx.db.entity.id.update
    for e in list(ctx.db.entity.iter()):
        if e.vx or e.vy:
            e.vx = e.vy = 0.0
            update(e)


@reducer
def nudge(ctx: ReducerContext, id: u32, dx: float, dy: float) -> None:
    e = ctx.db.entity.id.find(id)
    if e is None:
        raise ReducerError(f"no entity {id}")
    e.x += dx
    e.y += dy
    ctx.db.entity.id.update(e)
