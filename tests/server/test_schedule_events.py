"""Scheduled reducers, event tables, and a clean Ctrl-C shutdown."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

from spacetime_game.sdk.protocol import (
    CallReducer,
    EventTableRows,
    InitialConnection,
    ReducerOk,
    ReducerResult,
    Subscribe,
    SubscribeApplied,
    TransactionUpdate,
)
from spacetime_game.sdk.sats import AlgebraicType, PrimitiveType, compile_codec
from tests._support import free_port, wait_listening

from .conftest import ROOT, Client, ServerThread

MODULE = textwrap.dedent(
    """
    from typing import Annotated
    from spacetime_game.server import (
        ReducerContext, ScheduleAt, TimeDuration, Timestamp, auto_inc, primary_key, reducer, table, u32, u64,
    )

    @table(public=True)
    class Tick:
        id: Annotated[u32, primary_key, auto_inc]
        source: str

    @table(scheduled="on_timer")
    class Timer:
        scheduled_id: Annotated[u64, primary_key, auto_inc]
        scheduled_at: ScheduleAt
        label: str

    @table(public=True, event=True)
    class Boom:
        x: u32

    @reducer
    def on_timer(ctx: ReducerContext, timer: Timer) -> None:
        ctx.db.tick.insert(Tick(0, timer.label))

    @reducer
    def start(ctx: ReducerContext, every_ms: u32) -> None:
        ctx.db.timer.insert(Timer(0, ScheduleAt.interval(TimeDuration(every_ms * 1000)), "every"))
        at = Timestamp(ctx.timestamp.micros_since_epoch + 50_000)
        ctx.db.timer.insert(Timer(0, ScheduleAt.time(at), "once"))

    @reducer
    def stop(ctx: ReducerContext) -> None:
        for t in list(ctx.db.timer.iter()):
            ctx.db.timer.delete(t)

    @reducer
    def boom(ctx: ReducerContext, x: u32) -> None:
        ctx.db.boom.insert(Boom(x))
    """
)
U32 = compile_codec(AlgebraicType.product(x=PrimitiveType("U32")))
TICK = compile_codec(AlgebraicType.product(id=PrimitiveType("U32"), source=PrimitiveType("String")))


def test_scheduled_reducers_and_event_tables(tmp_path: Path) -> None:
    mod = tmp_path / "sched.py"
    mod.write_text(MODULE)
    server = ServerThread(mod, database="sched")
    try:
        c = Client(server.ws_url)
        c.recv_type(InitialConnection)
        c.send(Subscribe(1, 1, ("SELECT * FROM tick", "SELECT * FROM boom")))
        c.recv_type(SubscribeApplied)
        c.send(CallReducer(2, 0, "start", U32.encode({"x": 30})))
        assert isinstance(c.recv_type(ReducerResult).result, ReducerOk)
        sources: list[str] = []
        deadline = time.time() + 5
        while time.time() < deadline and (sources.count("every") < 3 or "once" not in sources):
            msg = c.recv()
            if isinstance(msg, TransactionUpdate):
                for qs in msg.query_sets:
                    for tu in qs.tables:
                        for rows in tu.rows:
                            sources += [TICK.decode(r)["source"] for r in rows.inserts.rows()]  # type: ignore[union-attr]
        assert sources.count("every") >= 3 and sources.count("once") == 1
        # the one-shot timer row is gone, the interval one stays
        timers = [r for r in server.server.runtime.host.store.tables["timer"].rows.values()]  # type: ignore[union-attr]
        assert [t[2] for t in timers] == ["every"]
        c.send(CallReducer(3, 0, "stop", b""))
        while not isinstance(c.recv(), ReducerResult):
            pass
        # an event table: subscribers see the row once, and it is never stored
        c.send(CallReducer(4, 0, "boom", U32.encode({"x": 7})))
        result = c.recv_type(ReducerResult)
        events = [
            U32.decode(r)["x"]
            for qs in result.result.transaction_update.query_sets
            for tu in qs.tables
            for rows in tu.rows
            if isinstance(rows, EventTableRows)
            for r in rows.events.rows()
        ]
        assert events == [7]
        assert len(server.server.runtime.host.store.tables["boom"].rows) == 0  # type: ignore[union-attr]
        c.close()
    finally:
        server.stop()


def _serve(data: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spacetime_game.cli._main",
            "serve",
            str(ROOT / "demos/chat/module.py"),
            "--port",
            str(port),
            "--data-dir",
            str(data),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_listening(port, proc)
    except AssertionError:
        proc.kill()
        raise
    return proc


def test_ctrl_c_runs_disconnects_and_keeps_data(tmp_path: Path) -> None:
    port = free_port()
    proc = _serve(tmp_path, port)
    url = f"ws://127.0.0.1:{port}/v1/database/quickstart-chat/subscribe"
    c = Client(url)
    me = c.recv_type(InitialConnection)
    c.call("set_name", "kept")
    c.recv_type(ReducerResult)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()
    assert b"stopped" in err
    proc = _serve(tmp_path, port)
    try:
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/database/quickstart-chat/sql",
            data=b"SELECT * FROM user",
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            (result,) = json.loads(resp.read())
        rows = {r[0][0]: r for r in result["rows"]}
        row = rows[f"0x{me.identity.to_int():x}"]
        assert row[1] == [0, "kept"] and row[2] is False  # the name survived; client_disconnected ran
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)


PACED = textwrap.dedent(
    """
    import time
    from typing import Annotated
    from spacetime_game.server import (
        ReducerContext, ScheduleAt, TimeDuration, Timestamp, auto_inc, primary_key, reducer, table, u32, u64,
    )

    @table(public=True)
    class Stamp:
        id: Annotated[u32, primary_key, auto_inc]
        at: Timestamp

    @table(scheduled="tick")
    class Every:
        scheduled_id: Annotated[u64, primary_key, auto_inc]
        scheduled_at: ScheduleAt

    @reducer
    def tick(ctx: ReducerContext, timer: Every) -> None:
        ctx.db.stamp.insert(Stamp(0, ctx.timestamp))
        time.sleep(0.03)  # a slow tick: 30 of its 50 ms

    @reducer
    def start(ctx: ReducerContext) -> None:
        ctx.db.every.insert(Every(0, ScheduleAt.interval(TimeDuration(50_000))))
    """
)


def test_an_interval_keeps_its_rate_and_phase_however_long_each_call_takes(tmp_path: Path) -> None:
    """Each next call is due one interval after the previous *intended* time (as SpacetimeDB's
    scheduler does), not after the previous call ended: a 50 ms interval whose reducer takes 30 ms still
    runs 20 times a second, each call's timestamp on the 50 ms grid (or later when late, never
    earlier)."""
    mod = tmp_path / "paced.py"
    mod.write_text(PACED)
    server = ServerThread(mod, database="paced")
    try:
        c = Client(server.ws_url)
        c.recv_type(InitialConnection)
        c.send(CallReducer(1, 0, "start", b""))
        c.recv_type(ReducerResult)
        time.sleep(1.6)
        store = server.server.runtime.host.store  # type: ignore[union-attr]
        stamps = sorted(r[1].micros_since_epoch for r in store.tables["stamp"].rows.values())
        c.close()
    finally:
        server.stop()
    assert len(stamps) >= 25, f"{len(stamps)} calls in 1.6 s: the interval is stretched by each call"
    first = stamps[0]
    offsets = [(t - first) % 50_000 for t in stamps]
    # distances from the grid, either way round (the first call, the grid's reference, may itself have
    # started a little late, putting the punctual ones just before its multiples)
    late = [o for o in offsets if min(o, 50_000 - o) > 15_000]
    assert len(late) <= len(stamps) // 5, f"calls off the 50 ms grid: {offsets}"
    periods = [b - a for a, b in itertools.pairwise(stamps)]
    assert sum(periods) / len(periods) < 60_000, periods
