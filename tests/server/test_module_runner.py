"""``ModuleRunner``: a module's reducers run here with no server, as any sender and at any time, its
timers run by hand as the scheduler would, its rows read and changed directly."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from spacetime_game.sdk import Identity, Timestamp
from spacetime_game.server import ModuleRunner

MODULE = textwrap.dedent(
    """
    from typing import Annotated
    from spacetime_game.server import (
        Identity, ReducerContext, ReducerError, ScheduleAt, TimeDuration, Timestamp, auto_inc,
        client_connected, init, primary_key, reducer, table, u32, u64,
    )

    @table(public=True)
    class Visit:
        id: Annotated[u32, primary_key, auto_inc]
        who: Identity
        at: Timestamp

    @table(scheduled="ring")
    class Bell:
        scheduled_id: Annotated[u64, primary_key, auto_inc]
        scheduled_at: ScheduleAt

    @init
    def setup(ctx: ReducerContext) -> None:
        ctx.db.bell.insert(Bell(0, ScheduleAt.interval(TimeDuration(1_000_000))))

    @client_connected
    def hello(ctx: ReducerContext) -> None:
        if ctx.db.visit.iter() and any(v.who == ctx.sender for v in ctx.db.visit.iter()):
            raise ReducerError("already here")
        ctx.db.visit.insert(Visit(0, ctx.sender, ctx.timestamp))

    @reducer
    def visit(ctx: ReducerContext, times: u32) -> None:
        for _ in range(times):
            ctx.db.visit.insert(Visit(0, ctx.sender, ctx.timestamp))
        if times > 3:
            raise ReducerError("too many")

    @reducer
    def later(ctx: ReducerContext) -> None:
        ctx.db.bell.insert(Bell(0, ScheduleAt(ctx.timestamp)))

    @reducer
    def ring(ctx: ReducerContext, bell: Bell) -> None:
        ctx.db.visit.insert(Visit(0, ctx.sender, ctx.timestamp))
    """
)


@pytest.fixture
def runner(tmp_path: Path) -> ModuleRunner:
    path = tmp_path / "visits.py"
    path.write_text(MODULE)
    return ModuleRunner(path)


def test_reducers_run_as_the_sender_at_the_time_given(runner: ModuleRunner) -> None:
    assert runner.init is not None and runner.init.status == "ok"
    ada = Identity.from_int(7)
    first = runner.connect(ada)
    assert first is not None and first.status == "ok"
    again = runner.connect(ada)
    assert again is not None and (again.status, again.message) == ("err", "already here")
    at = Timestamp(1_800_000_000_000_000)
    done = runner.call("visit", 2, sender=ada, at=at)
    assert done.status == "ok" and done.record is not None
    visits = runner.rows("visit")
    assert [(v.who, v.at) for v in visits[1:]] == [(ada, at), (ada, at)]
    failed = runner.call("visit", 5, sender=ada, at=at)
    assert (failed.status, failed.message) == ("err", "too many")
    assert len(runner.rows("visit")) == 3, "a failed call changes nothing"


def test_timers_run_by_hand_as_the_scheduler_would(runner: ModuleRunner) -> None:
    ada = Identity.from_int(7)
    (interval,) = runner.rows("bell")
    assert runner.call("ring", interval, sender=ada).status == "internal", "clients cannot call it"
    rung = runner.run_timer("bell", at=Timestamp(5))
    assert rung.status == "ok"
    assert runner.rows("visit")[-1].who == runner.owner, "scheduled reducers run as the database"
    assert len(runner.rows("bell")) == 1, "an interval row stays"
    runner.call("later", sender=ada)
    with pytest.raises(ValueError, match="2 rows"):
        runner.run_timer("bell")
    once = max(b.scheduled_id for b in runner.rows("bell"))
    assert runner.run_timer("bell", key=once).status == "ok"
    assert [b.scheduled_id for b in runner.rows("bell")] == [interval.scheduled_id], "a one-shot row goes"
    with pytest.raises(ValueError, match="schedules no reducer"):
        runner.run_timer("visit")


def test_rows_change_directly_in_a_transaction(runner: ModuleRunner) -> None:
    with runner.transaction() as db:
        db.visit.insert(runner.module.table_spec("visit").cls(0, Identity.from_int(3), Timestamp(1)))
    assert [v.who for v in runner.rows("visit")] == [Identity.from_int(3)]
    with pytest.raises(RuntimeError), runner.transaction() as db:
        db.visit.id.delete(1)
        raise RuntimeError("changed my mind")
    assert len(runner.rows("visit")) == 1, "an exception rolls the transaction back"
