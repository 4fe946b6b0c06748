"""A small dev-server module for the engine tests: players that move (a keyed table), a scheduled tick
that moves the players who have a velocity, an event table of hits, and ``marker``, a table without a
primary key whose rows a reducer deletes and inserts again (what a view recomputed by the server does)."""

from __future__ import annotations

from typing import Annotated

from spacetime_game.server import (
    ReducerContext,
    ReducerError,
    ScheduleAt,
    TimeDuration,
    auto_inc,
    primary_key,
    reducer,
    table,
    u32,
    u64,
)


@table(public=True)
class Player:
    id: Annotated[u32, primary_key]
    name: str
    x: float
    y: float
    vx: float


@table(public=True)
class Marker:
    owner: u32
    x: float


@table(public=True, event=True)
class Hit:
    target: u32
    damage: u32


@table(scheduled="tick")
class TickTimer:
    scheduled_id: Annotated[u64, primary_key, auto_inc]
    scheduled_at: ScheduleAt


@reducer
def join(ctx: ReducerContext, id: u32, name: str, x: float, y: float) -> None:
    ctx.db.player.insert(Player(id, name, x, y, 0.0))


@reducer
def move(ctx: ReducerContext, id: u32, x: float, y: float) -> None:
    p = ctx.db.player.id.find(id)
    if p is None:
        raise ReducerError(f"no player {id}")
    p.x, p.y = x, y
    ctx.db.player.id.update(p)


@reducer
def set_velocity(ctx: ReducerContext, id: u32, vx: float) -> None:
    p = ctx.db.player.id.find(id)
    if p is None:
        raise ReducerError(f"no player {id}")
    p.vx = vx
    ctx.db.player.id.update(p)


@reducer
def leave(ctx: ReducerContext, id: u32) -> None:
    if not ctx.db.player.id.delete(id):
        raise ReducerError(f"no player {id}")


@reducer
def hit(ctx: ReducerContext, target: u32, damage: u32) -> None:
    ctx.db.hit.insert(Hit(target, damage))


@reducer
def place_marker(ctx: ReducerContext, owner: u32, x: float) -> None:
    """Delete the owner's marker (if any) and insert it at ``x``: a delete and an insert in one
    transaction, as a view recomputed by the server sends them."""
    for m in list(ctx.db.marker.iter()):
        if m.owner == owner:
            ctx.db.marker.delete(m)
    ctx.db.marker.insert(Marker(owner, x))


@reducer
def start_ticking(ctx: ReducerContext, every_ms: u32) -> None:
    ctx.db.tick_timer.insert(TickTimer(0, ScheduleAt.interval(TimeDuration(every_ms * 1000))))


@reducer
def tick(ctx: ReducerContext, timer: TickTimer) -> None:
    for p in list(ctx.db.player.iter()):
        if p.vx:
            p.x += p.vx
            ctx.db.player.id.update(p)
