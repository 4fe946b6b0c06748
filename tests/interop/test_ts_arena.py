"""The official SpacetimeDB TypeScript SDK plays the arena on our dev server, as the official web client of
Blackholio does: it subscribes to the public tables (the event table ``consume_entity_event`` in a query
set of its own, declared an event table in its bindings), enters the game, steers toward food through
``update_player_input`` and sees its circle eat: a consume event naming it, the eaten rows deleted, its
mass grown, and the event never cached.

Setup as for test_ts_server.py (``cd tests/interop && npm ci``, Node 20)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from spacetime_game.server import DevServerProcess

from .test_ts_server import _require_interop

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def test_the_typescript_sdk_plays_the_arena() -> None:
    node = _require_interop()
    with DevServerProcess(ROOT / "demos" / "arena" / "module.py", database="blackholio") as server:
        done = subprocess.run(
            [node, str(HERE / "ts_arena.mjs"), "--uri", f"ws://{server.address}", "--db", "blackholio"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, done.stdout + done.stderr
    out = json.loads(lines[-1])
    assert done.returncode == 0 and out["ok"], out
    assert out["world_size"] == 1000 and out["food"] >= 600
    assert out["player"]["name"] == "TypeScript"
    eat = out["eat"]
    assert eat["consumer"] == out["circle"]
    assert eat["mass_after"] > out["start"]["mass"], "the eater's mass did not grow"
    assert not eat["consumed_still_cached"]
    assert {d["table"] for d in eat["deletes"]} >= {"entity", "food"}, eat
    assert eat["events_cached"] == 0, "event rows are never cached"
