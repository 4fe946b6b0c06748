"""The dev-server module that ``benchmarks.bench_server`` and the crash-durability test load.

    spacetime-game serve benchmarks/load_module.py --database bench --port 3000 --data-dir /tmp/bench

One public table ``counter`` of ``ROWS`` rows (ids 0 .. ROWS-1, seeded by ``init``) and one reducer,
``bump(id)``, that adds 1 to one row's ``value`` (an update by primary key: one delete and one insert).
"""

from __future__ import annotations

from typing import Annotated

from spacetime_game.server import (
    Identity,
    ReducerContext,
    ReducerError,
    init,
    primary_key,
    reducer,
    table,
    u32,
    u64,
)

#: How many rows ``init`` seeds.
ROWS = 1000


@table(public=True)
class Counter:
    id: Annotated[u32, primary_key]
    value: u64
    owner: Identity


@init
def seed(ctx: ReducerContext) -> None:
    for i in range(ROWS):
        ctx.db.counter.insert(Counter(id=i, value=0, owner=ctx.identity))


@reducer
def bump(ctx: ReducerContext, id: u32) -> None:
    row = ctx.db.counter.id.find(id)
    if row is None:
        raise ReducerError(f"no counter with id {id}")
    row.value += 1
    ctx.db.counter.id.update(row)
