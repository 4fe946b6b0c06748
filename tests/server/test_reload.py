"""Module updates with the data kept: DevServer.reload (what `spacetime-game dev` does on save), the
migration rules, and a commit log that replays records written under earlier layouts."""

from __future__ import annotations

import json
import struct
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import websocket

from spacetime_game.sdk.protocol import (
    InitialConnection,
    QueryRows,
    Subscribe,
    SubscribeApplied,
)
from spacetime_game.sdk.sats import SchemaError
from spacetime_game.server import DevServer, IncompatibleSchema, load_module
from spacetime_game.server._migrate import plan_migration
from spacetime_game.server._wal import CommitLog

from .._support import http_call as call
from .._support import owner_sql as sql
from .conftest import Client

DB = "scores"
HEAD = """
from typing import Annotated
from spacetime_game.server import ReducerContext, ScheduleAt, TimeDuration, auto_inc, index, primary_key
from spacetime_game.server import reducer, table, u8, u32, u64, unique
"""
PLAYER = """
@table(public=True)
class Player:
    id: Annotated[u32, primary_key, auto_inc]
    name: str
"""
ADD = """
@reducer
def add(ctx: ReducerContext, name: str) -> None:
    ctx.db.player.insert(Player(0, name))
"""
ADD_UPPER = """
@reducer
def add(ctx: ReducerContext, name: str) -> None:
    ctx.db.player.insert(Player(0, name.upper()))
"""
SCORE = """
@table(public=True)
class Player:
    id: Annotated[u32, primary_key, auto_inc]
    name: str
    score: u32 = 7
"""
ADD_SCORED = """
@reducer
def add(ctx: ReducerContext, name: str) -> None:
    ctx.db.player.insert(Player(0, name, 100))
"""


def write(path: Path, *parts: str) -> Path:
    path.write_text(textwrap.dedent(HEAD + "".join(parts)))
    return path


def closed_with(client: Client) -> tuple[int, str]:
    """The close code and reason the server ends the client's connection with."""
    while True:
        opcode, data = client.ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return struct.unpack("!H", data[:2])[0], data[2:].decode()


def subscribed(server: DevServer) -> tuple[Client, list[bytes]]:
    """A protocol client subscribed to the player table, and the rows it got."""
    client = Client(server.ws_url)
    client.recv_type(InitialConnection)
    client.send(Subscribe(1, 1, ("SELECT * FROM player",)))
    applied = client.recv_type(SubscribeApplied)
    assert isinstance(applied.rows, QueryRows)
    return client, [row for t in applied.rows.tables for row in t.rows.rows()]


def test_reducer_change_keeps_data_and_clients(tmp_path: Path) -> None:
    module = write(tmp_path / "m.py", PLAYER, ADD)
    with DevServer(module, DB, data_dir=tmp_path / "data") as server:
        call(server, "add", "ann")
        client, rows = subscribed(server)
        assert len(rows) == 1
        write(module, PLAYER, ADD_UPPER)
        update = server.reload(module)
        assert update.changes == () and not update.tables_changed
        call(server, "add", "bob")
        assert sorted(r[1] for r in sql(server, "SELECT * FROM player")) == ["BOB", "ann"]
        # the client was not disconnected: it receives the new row as a transaction
        msg = client.recv()
        assert type(msg).__name__ == "TransactionUpdate"
        client.close()


def test_added_column_migrates_rows_and_renews_clients(tmp_path: Path) -> None:
    module = write(tmp_path / "m.py", PLAYER, ADD)
    data = tmp_path / "data"
    with DevServer(module, DB, data_dir=data) as server:
        for name in ("ann", "bob", "cy"):
            call(server, "add", name)
        client, _ = subscribed(server)
        write(module, SCORE, ADD_SCORED)
        update = server.reload(module)
        assert update.tables_changed and update.changes == ("`player` gained column score",)
        # the client is told to reconnect: its subscription was for the old columns
        assert closed_with(client) == (1012, "the module's tables changed: reconnect")
        assert sorted(map(tuple, sql(server, "SELECT * FROM player"))) == [
            (1, "ann", 7),
            (2, "bob", 7),
            (3, "cy", 7),
        ]
        call(server, "add", "dee")  # the auto_inc sequence continues
        assert [4, "dee", 100] in sql(server, "SELECT * FROM player")
        again, rows = subscribed(server)
        assert len(rows) == 4
        again.close()
    # a restart replays the records written before and after the change
    with DevServer(module, DB, data_dir=data) as server:
        assert sorted(map(tuple, sql(server, "SELECT * FROM player"))) == [
            (1, "ann", 7),
            (2, "bob", 7),
            (3, "cy", 7),
            (4, "dee", 100),
        ]
        call(server, "add", "eve")
        assert [5, "eve", 100] in sql(server, "SELECT * FROM player")


def test_a_module_changed_while_stopped_is_migrated_at_start(tmp_path: Path) -> None:
    module = write(tmp_path / "m.py", PLAYER, ADD)
    data = tmp_path / "data"
    with DevServer(module, DB, data_dir=data) as server:
        call(server, "add", "ann")
    write(module, SCORE, ADD_SCORED)
    with DevServer(module, DB, data_dir=data) as server:
        assert sql(server, "SELECT * FROM player") == [[1, "ann", 7]]
    # going back is removing a column: refused at start, with the reason, and the data is untouched
    write(module, PLAYER, ADD)
    with pytest.raises(IncompatibleSchema, match=r"`player.score` was removed"):
        DevServer(module, DB, data_dir=data).start_in_thread()
    write(module, SCORE, ADD_SCORED)
    with DevServer(module, DB, data_dir=data) as server:
        assert sql(server, "SELECT * FROM player") == [[1, "ann", 7]]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            "@table(public=True)\nclass Player:\n    id: Annotated[u32, primary_key, auto_inc]\n    name: u32\n",
            r"`player.name` changed type from String to U32",
        ),
        (
            "@table(public=True)\nclass Player:\n    id: Annotated[u32, primary_key, auto_inc]\n",
            r"`player.name` was removed",
        ),
        (
            "@table(public=True)\nclass Player:\n    name: str\n    id: Annotated[u32, primary_key, auto_inc]\n",
            r"`player.id` moved from position 1 to 2",
        ),
        (
            "@table(public=True)\nclass Player:\n    id: Annotated[u32, primary_key, auto_inc]\n    nick: str\n",
            r"`player.name` was renamed to `nick` or removed",
        ),
        (
            "@table(public=True)\nclass Player:\n    id: Annotated[u32, primary_key, auto_inc]\n    name: str\n"
            "    level: u8\n",
            r"`player.level` was added without a default",
        ),
        (
            "@table(public=True)\nclass Player:\n    id: Annotated[u32, primary_key, auto_inc]\n"
            "    name: Annotated[str, unique]\n",
            r"`player.name` became unique while the table holds 1 row",
        ),
        (
            "class Player:\n    pass\n@table\nclass Other:\n    x: u8\n",
            r"table `player` was removed \(it holds 1 row\)",
        ),
    ],
)
def test_incompatible_changes_are_refused_and_the_old_module_keeps_serving(
    tmp_path: Path, change: str, message: str
) -> None:
    module = write(tmp_path / "m.py", PLAYER, ADD)
    with DevServer(module, DB, data_dir=tmp_path / "data") as server:
        call(server, "add", "ann")
        write(module, change, "\n@reducer\ndef add(ctx: ReducerContext, name: str) -> None:\n    pass\n")
        with pytest.raises(IncompatibleSchema, match=message):
            server.reload(module)
        call(server, "add", "bob")  # the old module still runs, with its data
        assert sorted(r[1] for r in sql(server, "SELECT * FROM player")) == ["ann", "bob"]


def test_a_broken_module_is_refused_before_anything_changes(tmp_path: Path) -> None:
    module = write(tmp_path / "m.py", PLAYER, ADD)
    with DevServer(module, DB) as server:
        call(server, "add", "ann")
        module.write_text(module.read_text() + "\ndef oops(:\n")
        with pytest.raises(SchemaError, match=rf"{module}:\d+"):
            server.reload(module)
        module.write_text(textwrap.dedent(HEAD + PLAYER + ADD + "\nraise ValueError('nope')\n"))
        with pytest.raises(SchemaError, match=rf"{module}:\d+.*ValueError: nope"):
            server.reload(module)
        call(server, "add", "bob")
        assert len(sql(server, "SELECT * FROM player")) == 2


def test_compatible_changes(tmp_path: Path) -> None:
    old = load_module(write(tmp_path / "a.py", PLAYER, ADD))
    from spacetime_game.server._migrate import module_layout

    layout = module_layout(old)
    new = load_module(
        write(
            tmp_path / "b.py",
            "@table\nclass Player:\n    id: Annotated[u32, primary_key]\n    name: Annotated[str, index]\n",
            "@table(public=True)\nclass Team:\n    id: Annotated[u32, unique]\n",
            ADD,
        )
    )
    plan = plan_migration(layout, new, {"player": 3})
    assert plan.tables_changed and not plan.append
    assert plan.changes == [
        "table `team` added",
        "index on `player.name` added",
        "`player` is now private",
    ]
    # a unique constraint may be added to an empty table
    uniq = load_module(
        write(
            tmp_path / "c.py",
            "@table\nclass Player:\n    id: Annotated[u32, primary_key, auto_inc]\n"
            "    name: Annotated[str, unique]\n",
            ADD,
        )
    )
    plan_migration(layout, uniq, {"player": 0})
    with pytest.raises(IncompatibleSchema):
        plan_migration(layout, uniq, {"player": 2})


def test_a_new_auto_inc_continues_after_the_stored_values(tmp_path: Path) -> None:
    module = write(
        tmp_path / "m.py",
        "@table(public=True)\nclass Player:\n    id: Annotated[u32, primary_key]\n    name: str\n",
        "@reducer\ndef add(ctx: ReducerContext, id: u32, name: str) -> None:\n"
        "    ctx.db.player.insert(Player(id, name))\n",
    )
    with DevServer(module, DB) as server:
        call(server, "add", 41, "ann")
        write(module, PLAYER, ADD)
        server.reload(module)
        call(server, "add", "bob")
        assert sorted(map(tuple, sql(server, "SELECT * FROM player"))) == [(41, "ann"), (42, "bob")]


def test_timers_keep_running_across_a_reducer_change(tmp_path: Path) -> None:
    ticks = """
@table
class Tick:
    scheduled_id: Annotated[u64, primary_key, auto_inc]
    scheduled_at: ScheduleAt

@table(public=True)
class Count:
    id: Annotated[u32, primary_key]
    n: u32

@reducer
def tick(ctx: ReducerContext, t: Tick) -> None:
    c = ctx.db.count.id.find(0)
    if c is None:
        ctx.db.count.insert(Count(0, STEP))
    else:
        c.n += STEP
        ctx.db.count.id.update(c)

@reducer
def start(ctx: ReducerContext) -> None:
    ctx.db.tick.insert(Tick(0, ScheduleAt.interval(TimeDuration.from_seconds(0.02))))
"""
    module = tmp_path / "m.py"
    module.write_text(
        textwrap.dedent(
            HEAD + "STEP = 1\n" + ticks.replace("@table\nclass Tick", '@table(scheduled="tick")\nclass Tick')
        )
    )
    import time

    with DevServer(module, DB) as server:
        call(server, "start")
        time.sleep(0.3)
        module.write_text(module.read_text().replace("STEP = 1", "STEP = 1000"))
        server.reload(module)
        before = sql(server, "SELECT * FROM count")[0][1]
        time.sleep(0.3)
        after = sql(server, "SELECT * FROM count")[0][1]
        assert isinstance(before, int) and isinstance(after, int)
        assert after - before >= 1000 * 5, (before, after)  # the timer kept firing, with the new code


def test_the_log_says_which_layout_its_records_are_in(tmp_path: Path) -> None:
    module = write(tmp_path / "m.py", PLAYER, ADD)
    data = tmp_path / "data"
    with DevServer(module, DB, data_dir=data) as server:
        call(server, "add", "ann")
        write(module, SCORE, ADD_SCORED)
        server.reload(module)
    with CommitLog(data / "databases" / DB / "commitlog.bin") as log:
        kinds = [rec[:10] == b"\xff\xff\xff\xffLAYOUT" for _, rec in log.replay()]
    assert kinds == [True, False, True]  # created, a transaction, then the new layout


def test_http_errors_do_not_leak(tmp_path: Path) -> None:
    """The refusal raised by reload is for the developer; clients see the old module unchanged."""
    module = write(tmp_path / "m.py", PLAYER, ADD)
    with DevServer(module, DB) as server:
        write(module, "@table\nclass Player:\n    id: u8\n", ADD)
        with pytest.raises(IncompatibleSchema):
            server.reload(module)
        with pytest.raises(urllib.error.HTTPError):
            call(server, "nope")
        schema = json.loads(
            urllib.request.urlopen(f"{server.url}/v1/database/{DB}/schema?version=9", timeout=10).read()
        )
        assert [t["name"] for t in schema["tables"]] == ["player"]


def test_rows_holding_the_modules_own_types_follow_the_new_classes(tmp_path: Path) -> None:
    """A column of a product type declared by the module: after a reload its values are instances of the
    new module's class (the reducers' code creates and compares those), and the arena keeps playing."""
    module = tmp_path / "m.py"
    source = textwrap.dedent(
        HEAD
        + """
from spacetime_game.server import product_type

@product_type
class Vec:
    x: float
    y: float

@table(public=True)
class Body:
    id: Annotated[u32, primary_key]
    pos: Vec

@reducer
def add(ctx: ReducerContext, id: u32) -> None:
    ctx.db.body.insert(Body(id, Vec(0.0, 0.0)))

@reducer
def push(ctx: ReducerContext, id: u32) -> None:
    b = ctx.db.body.id.find(id)
    assert type(b.pos) is Vec, type(b.pos)
    b.pos = Vec(b.pos.x + STEP, b.pos.y)
    ctx.db.body.id.update(b)

STEP = 1.0
"""
    )
    module.write_text(source)
    with DevServer(module, DB) as server:
        call(server, "add", 1)
        call(server, "push", 1)
        module.write_text(source.replace("STEP = 1.0", "STEP = 10.0"))
        server.reload(module)
        call(server, "push", 1)  # the stored Vec is one of the new module's: the assert in push holds
        assert sql(server, "SELECT * FROM body") == [[1, [11.0, 0.0]]]


def test_the_arena_reloads_while_it_runs() -> None:
    arena = Path(__file__).resolve().parents[2] / "demos" / "arena" / "module.py"
    with DevServer(arena, "blackholio") as server:
        tables = ("config", "spawn_food_timer", "move_all_players_timer")
        before = {t: sql(server, f"SELECT * FROM {t}") for t in tables}
        assert all(before.values()), before
        update = server.reload(arena)
        assert not update.tables_changed and update.changes == ()
        assert {t: sql(server, f"SELECT * FROM {t}") for t in tables} == before


def test_the_reload_benchmark_runs_and_checks_its_results() -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_reload", "--quick"], cwd=root, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "reload, column added" in proc.stdout and "restart" in proc.stdout
