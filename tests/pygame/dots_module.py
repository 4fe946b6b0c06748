"""A dev-server module with one big table: ``spawn_dots(n)`` inserts ``n`` dots in one transaction
(for the 100,000-row subscription test)."""

from __future__ import annotations

from typing import Annotated

from spacetime_game.server import ReducerContext, primary_key, reducer, table, u32


@table(public=True)
class Dot:
    id: Annotated[u32, primary_key]
    x: float
    y: float


@reducer
def spawn_dots(ctx: ReducerContext, start: u32, n: u32) -> None:
    for i in range(start, start + n):
        ctx.db.dot.insert(Dot(i, float(i % 320), float(i % 240)))
