"""The module authoring API, the schema it exports, and reducers run as transactions."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from spacetime_game.sdk import ConnectionId, Identity, SchemaError
from spacetime_game.server import load_module
from spacetime_game.server._host import Host
from spacetime_game.server._store import Store

ROOT = Path(__file__).resolve().parents[2]
CHAT = ROOT / "demos" / "chat" / "module.py"


def test_chat_schema_equals_the_official_one() -> None:
    got = load_module(CHAT).schema_json()
    expected = json.loads((ROOT / "tests" / "data" / "quickstart_chat.schema.json").read_text())
    assert got == expected


@pytest.fixture()
def host() -> Host:
    return Host(load_module(CHAT), Identity.from_int(1))


def _users(h: Host) -> dict[Identity, tuple[object, ...]]:
    return {r[0]: r for r in h.store.tables["user"].rows.values()}


def test_chat_reducers(host: Host) -> None:
    alice = Identity.from_int(5)
    assert host.lifecycle("client_connected", alice, ConnectionId.random()).status == "ok"  # type: ignore[union-attr]
    assert _users(host)[alice] == (alice, None, True)
    r = host.call("set_name", host.args_codec("set_name").encode(("alice",)), alice, None)
    assert r.status == "ok" and r.record is not None
    change = r.record.changes["user"]
    assert change.inserts == [(alice, "alice", True)] and change.deletes == [(alice, None, True)]
    assert host.call("set_name", ("",), alice, None).message == "Names must not be empty"
    unknown = host.call("set_name", ("bob",), Identity.from_int(9), None)
    assert (unknown.status, unknown.message) == ("err", "Cannot set name for unknown user")
    assert _users(host)[alice] == (alice, "alice", True)


def test_lifecycle_and_unknown_reducers_are_not_callable(host: Host) -> None:
    who = Identity.from_int(2)
    for name in ("identity_connected", "init", "nope"):
        r = host.call(name, b"", who, None)
        assert r.status == "internal" and "No such reducer" in r.message


def test_bad_arguments_are_an_internal_error(host: Host) -> None:
    r = host.call("send_message", b"\x01", Identity.from_int(2), None)
    assert r.status == "internal" and "invalid arguments" in r.message


def test_crash_rolls_back_and_reports(tmp_path: Path) -> None:
    mod = tmp_path / "m.py"
    mod.write_text(
        textwrap.dedent(
            """
            from typing import Annotated
            from spacetime_game.server import table, reducer, ReducerContext, u32, primary_key, auto_inc, unique

            @table(public=True)
            class Item:
                id: Annotated[u32, primary_key, auto_inc]
                name: Annotated[str, unique]

            @reducer
            def add(ctx: ReducerContext, name: str) -> None:
                ctx.db.item.insert(Item(0, name))

            @reducer
            def add_then_crash(ctx: ReducerContext, name: str) -> None:
                ctx.db.item.insert(Item(0, name))
                raise RuntimeError("boom")
            """
        )
    )
    h = Host(load_module(mod), Identity.from_int(1))
    me = Identity.from_int(3)
    assert h.call("add", ("a",), me, None).status == "ok"
    assert h.call("add", ("b",), me, None).record.changes["item"].inserts == [(2, "b")]  # type: ignore[union-attr]
    crash = h.call("add_then_crash", ("c",), me, None)
    assert crash.status == "internal" and crash.message == "RuntimeError: boom"
    dup = h.call("add", ("a",), me, None)
    assert dup.status == "err" and "duplicate unique column value" in dup.message
    assert sorted(h.store.tables["item"].rows.values()) == [(1, "a"), (2, "b")]
    # durable records replay into an equal store, sequences included
    fresh = Store(h.module)
    records = []
    h2 = Host(h.module, Identity.from_int(1))
    for name in ("x", "y"):
        rec = h2.call("add", (name,), me, None).record
        assert rec is not None
        records.append(h2.store.encode_record(rec))
    for rec_bytes in records:
        fresh.replay(rec_bytes)
    assert fresh.tables["item"].rows == h2.store.tables["item"].rows
    assert fresh.tables["item"].seq_next == h2.store.tables["item"].seq_next == {0: 3}


def test_plain_int_column_is_refused(tmp_path: Path) -> None:
    mod = tmp_path / "bad.py"
    mod.write_text("from spacetime_game.server import table\n@table\nclass T:\n    x: int\n")
    with pytest.raises(SchemaError, match="explicit width"):
        load_module(mod)


def test_nested_types_indexes_and_every_column_kind(tmp_path: Path) -> None:
    mod = tmp_path / "kinds.py"
    mod.write_text(
        textwrap.dedent(
            """
            import enum
            from typing import Annotated
            from spacetime_game.server import (
                ReducerContext, Identity, Timestamp, TimeDuration, ScheduleAt, ConnectionId,
                f32, f64, i8, i16, i32, i64, i128, i256, u8, u16, u32, u64, u128, u256,
                index, primary_key, product_type, reducer, table, unique,
            )

            class Color(enum.Enum):
                RED = 1
                GREEN = 2

            @product_type
            class Vec2:
                x: f32
                y: f32

            @table(public=True)
            class Thing:
                id: Annotated[u64, primary_key]
                owner: Annotated[Identity, index]
                tag: Annotated[str, unique]
                pos: Vec2
                color: Color
                path: list[Vec2]
                maybe: Vec2 | None
                a: i8
                b: i16
                c: i32
                d: i64
                e: i128
                f: i256
                g: u8
                h: u16
                i: u32
                j: u128
                k: u256
                l: f64
                m: bool
                n: bytes
                o: Timestamp
                p: TimeDuration
                q: ConnectionId

            @reducer
            def add(ctx: ReducerContext, id: u64, pos: Vec2, color: Color) -> None:
                ctx.db.thing.insert(Thing(id, ctx.sender, f"t{id}", pos, color, [pos, pos], None,
                    -1, -2, -3, -4, -5, -6, 1, 2, 3, 4, 5, 0.5, True, b"x", ctx.timestamp,
                    TimeDuration(7), ConnectionId.zero()))

            @reducer
            def recolor(ctx: ReducerContext, owner: Identity, color: Color) -> None:
                for t in ctx.db.thing.owner.filter(owner):
                    t.color = color
                    ctx.db.thing.id.update(t)
            """
        )
    )
    module = load_module(mod)
    schema = module.schema()
    thing = schema.table("thing")
    assert [c.name for c in thing.columns][:5] == ["id", "owner", "tag", "pos", "color"]
    assert {c.name for c in thing.unique_columns} == {"id", "tag"}
    assert "owner" in {c.name for c in thing.indexed_columns}
    assert [t.name for t in schema.types] == ["Color", "Thing", "Vec2"]
    h = Host(module, Identity.from_int(1))
    me, other = Identity.from_int(3), Identity.from_int(4)
    vec = module.bindings[next(t.ref for t in schema.types if t.name == "Vec2")].cls
    color = module.bindings[next(t.ref for t in schema.types if t.name == "Color")].cls
    assert vec is not None and color is not None
    args = h.args_codec("add")
    for i, who in ((1, me), (2, me), (3, other)):
        r = h.call("add", args.encode((i, vec(1.0, 2.0), color.GREEN)), who, None)
        assert r.status == "ok", r.message
    r = h.call("recolor", (me, color.RED), me, None)
    assert r.status == "ok" and r.record is not None
    changed = r.record.changes["thing"]
    assert sorted(row[0] for row in changed.inserts) == [1, 2]  # only `me`'s rows, found through the index
    assert all(row[4] is color.RED and row[3] == vec(1.0, 2.0) for row in changed.inserts)


def test_module_errors_name_the_file_and_line(tmp_path: Path) -> None:
    mod = tmp_path / "oops.py"
    mod.write_text("x = 1\nimport no_such_module_here\n")
    with pytest.raises(SchemaError) as info:
        load_module(mod)
    assert f"{mod.resolve()}:2" in str(info.value) and "ModuleNotFoundError" in str(info.value)
    mod.write_text("def broken(:\n")
    with pytest.raises(SchemaError, match="SyntaxError"):
        load_module(mod)
