"""Bindings from a RawModuleDefV10 schema (``tests/data/v10.schema.json``): Python names come from the
accessor (source) names, wire names are the canonical names of the ExplicitNames section."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from types import ModuleType

from spacetime_game.sdk import Identity

from ._helpers import RecordingClient, generated_files

ID_HEX = "c200112233445566778899aabbccddeeff00112233445566778899aabbccddee"


def noop(*args: object) -> None:
    pass


def test_tables_have_accessor_class_names_and_canonical_wire_names(v10: ModuleType) -> None:
    assert set(v10.MODULE.tables) == {"player_roster", "tick_timer", "hit_event"}
    assert (v10.Players.table_name, v10.TickTimer.table_name, v10.HitEvents.table_name) == (
        "player_roster",
        "tick_timer",
        "hit_event",
    )
    assert v10.MODULE.table("player_roster").row_class is v10.Players
    names = set(generated_files("v10"))
    assert {"players.py", "tick_timer.py", "hit_events.py"} <= names
    assert not {"player_roster.py", "hit_event_table.py"} & names


def test_table_calls_use_the_canonical_name(v10: ModuleType) -> None:
    client = RecordingClient(v10.MODULE)
    owner = Identity.from_string(ID_HEX)
    row = v10.Players(1, owner, "ann", v10.Vec2(1.0, 2.0))
    client.rows["player_roster"] = [row]
    assert list(v10.Players.iter(client=client)) == [row]
    assert v10.Players.filter_by_id(1, client=client) is row
    assert v10.Players.filter_by_owner(owner, client=client) is row
    assert list(v10.Players.filter_by_name("ann", client=client)) == [row]
    v10.Players.on_insert(noop, client=client)
    v10.HitEvents.on_insert(noop, client=client)
    assert client.calls == [
        ("iter_rows", "player_roster"),
        ("find_row", "player_roster", "id", 1),
        ("find_row", "player_roster", "owner", owner),
        ("filter_rows", "player_roster", "name", "ann"),
        ("on_row", "player_roster", "insert", noop),
        ("on_row", "hit_event", "insert", noop),
    ]
    codec = v10.MODULE.table("player_roster").codec
    assert codec.decode(codec.encode(row)) == row


def test_event_table_is_marked(v10: ModuleType) -> None:
    assert v10.MODULE.table("hit_event").is_event
    assert not v10.MODULE.table("player_roster").is_event
    assert not v10.MODULE.table("tick_timer").is_event
    assert "event table" in (v10.HitEvents.__doc__ or "")


def test_reducers_have_accessor_function_names_and_canonical_wire_names(v10: ModuleType) -> None:
    assert set(v10.MODULE.reducers) == {"MovePlayerCanonical", "say_hi"}
    client = RecordingClient(v10.MODULE)
    v10.move_player(v10.Vec2(1.0, 2.0), 0.5, client=client)
    v10.say_hi("hello", client=client)
    v10.register_on_move_player(noop, client=client)
    v10.unregister_on_move_player(noop, client=client)
    assert [c[:2] for c in client.calls] == [
        ("call_reducer", "MovePlayerCanonical"),
        ("call_reducer", "say_hi"),
        ("on_reducer", "MovePlayerCanonical"),
        ("remove_on_reducer", "MovePlayerCanonical"),
    ]
    module = importlib.import_module(f"{v10.__name__}.move_player_reducer")
    assert module.reducer_name == "MovePlayerCanonical"
    assert module._decode_args(client.calls[0][2]) == [v10.Vec2(1.0, 2.0), 0.5]
    assert list(inspect.signature(v10.move_player).parameters) == ["pos", "speed", "client", "callback"]


def test_private_lifecycle_and_scheduled_reducers_are_not_generated(v10: ModuleType) -> None:
    files = {p.name for p in Path(v10.__file__ or "").parent.glob("*.py")}
    for source, snake in [
        ("tick", "tick"),
        ("onConnect", "on_connect"),
        ("onDisconnect", "on_disconnect"),
        ("init", "init"),
        ("adminReset", "admin_reset"),
    ]:
        assert not hasattr(v10, source) and not hasattr(v10, snake)
        assert f"{snake}_reducer.py" not in files


def test_named_types_keep_their_names(v10: ModuleType) -> None:
    # ``Player`` (the named row type) is not the table class ``Players``: both exist
    assert v10.Player is not v10.Players
    assert v10.Player.column_names == v10.Players.column_names == ("id", "owner", "name", "pos")
    assert v10.Vec2(1.0, 2.0).x == 1.0
    assert v10.HitEvent.column_names == ("target", "damage")
