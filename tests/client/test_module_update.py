"""A client built before the module changed: a reducer change goes unnoticed, and after columns are
added (the server closes it with 1012) it reconnects by itself and keeps every row, decoding the columns
its bindings know and ignoring the new ones, as the other SpacetimeDB SDKs do."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

from spacetime_game.sdk import DbConnection
from spacetime_game.sdk.schema import ModuleSchema
from spacetime_game.server import DevServer, load_module

from .._support import forget, import_generated, pump

V1 = """
from typing import Annotated
from spacetime_game.server import ReducerContext, auto_inc, primary_key, reducer, table, u32

@table(public=True)
class Player:
    id: Annotated[u32, primary_key, auto_inc]
    name: str

@table(public=True)
class Note:
    text: str

@reducer
def add(ctx: ReducerContext, name: str) -> None:
    ctx.db.player.insert(Player(0, NAME(name)))
    ctx.db.note.insert(Note(name))

NAME = str
"""


def test_old_bindings_survive_reducer_and_column_changes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    module = tmp_path / "m.py"
    module.write_text(textwrap.dedent(V1))
    schema = ModuleSchema.from_json(load_module(module).schema_json())
    mb = import_generated(schema, tmp_path / "b", "m.py", prefix="upd")
    errors: list[object] = []
    try:
        with DevServer(module, "upd", data_dir=tmp_path / "data") as server:
            conn = DbConnection(mb.MODULE, server.address, server.database, reconnect_min_delay=0.05)
            conn.on_error = errors.append  # type: ignore[assignment]
            conn.connect()
            conn.subscribe_multi(["SELECT * FROM player", "SELECT * FROM note"])
            for name in ("ann", "bob"):
                mb.add(name, client=conn)
            pump(conn, lambda: conn.count_rows("player") == 2, "the first rows")

            # a reducer change: nothing to renew
            module.write_text(textwrap.dedent(V1).replace("NAME = str", "NAME = str.upper"))
            assert not server.reload(module).tables_changed
            mb.add("cy", client=conn)
            pump(conn, lambda: conn.count_rows("player") == 3, "the row of the new reducer")
            assert sorted(p.name for p in conn.iter_rows("player")) == ["CY", "ann", "bob"]

            # columns appended to both tables: the client is closed, reconnects, and keeps every row
            changed = (
                textwrap.dedent(V1)
                .replace("NAME = str", "NAME = str.upper")
                .replace("    name: str\n", "    name: str\n    score: u32 = 9\n")
                .replace("    text: str\n", "    text: str\n    likes: u32 = 0\n")
            )
            module.write_text(changed)
            seen: list[str] = []
            conn.on_row("player", "insert", lambda row, *_: seen.append(row.name))
            applied: list[int] = []
            conn.register_on_subscription_applied(lambda: applied.append(1))
            with caplog.at_level(logging.INFO, logger="spacetime_game.sdk"):
                assert server.reload(module).tables_changed
                pump(conn, lambda: bool(applied), "the subscription applied again after the reconnect")
                mb.add("dee", client=conn)
                pump(conn, lambda: conn.count_rows("player") == 4, "the rows after the reconnect")
                pump(conn, lambda: conn.count_rows("note") == 4, "the key-less rows after the reconnect")
            assert sorted(p.name for p in conn.iter_rows("player")) == ["CY", "DEE", "ann", "bob"]
            assert sorted(n.text for n in conn.iter_rows("note")) == ["ann", "bob", "cy", "dee"]
            assert seen == ["DEE"]  # the reconnect brought no duplicate inserts of the kept rows
            assert "regenerate the bindings" in caplog.text
            assert not [e for e in errors if "decode" in str(e).lower()], errors
            conn.close()
    finally:
        forget(mb)
