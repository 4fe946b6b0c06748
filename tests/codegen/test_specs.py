"""The bindings of the two official modules (quickstart chat and Blackholio; their schemas are
``tests/data/quickstart_chat.schema.json`` and ``tests/data/blackholio.schema.json``): every table and
every client-callable reducer is there, with the documented names and types; lifecycle and scheduled
reducers are not generated as functions."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from spacetime_game.sdk import Identity, ScheduleAt, Timestamp

from ._helpers import schema_of

BLACKHOLIO_TABLES = {
    "circle": "Circle",
    "circle_decay_timer": "CircleDecayTimer",
    "circle_recombine_timer": "CircleRecombineTimer",
    "config": "Config",
    "consume_entity_event": "ConsumeEntityEvent",
    "consume_entity_timer": "ConsumeEntityTimer",
    "entity": "Entity",
    "food": "Food",
    "logged_out_circle": "LoggedOutCircle",
    "logged_out_entity": "LoggedOutEntity",
    "logged_out_player": "LoggedOutPlayer",
    "move_all_players_timer": "MoveAllPlayersTimer",
    "player": "Player",
    "spawn_food_timer": "SpawnFoodTimer",
}
BLACKHOLIO_CALLABLE = {"enter_game", "respawn", "suicide", "update_player_input", "player_split"}
BLACKHOLIO_NOT_CALLABLE = {
    "init",
    "connect",
    "disconnect",
    "move_all_players",
    "spawn_food",
    "circle_decay",
    "circle_recombine",
    "consume_entity",
}


def hints(obj: Callable[..., Any], pkg: ModuleType) -> dict[str, Any]:
    """The resolved annotations of a generated function (local classes are imported for type checkers
    only, so they resolve through the package)."""
    return typing.get_type_hints(obj, localns=vars(pkg))


def files(pkg: ModuleType) -> set[str]:
    return {p.name for p in Path(pkg.__file__ or "").parent.glob("*.py")}


def reducer_signature(fn: Callable[..., Any], pkg: ModuleType) -> list[tuple[str, Any]]:
    """``[(name, type)]`` of the reducer's own parameters (without ``client`` and ``callback``)."""
    h = hints(fn, pkg)
    params = inspect.signature(fn).parameters
    assert list(params)[-2:] == ["client", "callback"]
    return [(n, h[n]) for n, p in params.items() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]


# ---- quickstart chat ------------------------------------------------------------------------------------
def test_quickstart_tables(qc: ModuleType) -> None:
    assert set(qc.MODULE.tables) == {"user", "message"}
    assert qc.User.table_name == "user" and qc.Message.table_name == "message"
    assert qc.MODULE.table("user").row_class is qc.User
    assert qc.MODULE.table("message").row_class is qc.Message
    new_user = hints(qc.User.__new__, qc)
    assert [(c, new_user[c]) for c in qc.User.column_names] == [
        ("identity", Identity),
        ("name", str | None),
        ("online", bool),
    ]
    new_message = hints(qc.Message.__new__, qc)
    assert [(c, new_message[c]) for c in qc.Message.column_names] == [
        ("sender", Identity),
        ("sent", Timestamp),
        ("text", str),
    ]
    assert (qc.User.primary_key, qc.Message.primary_key) == ("identity", None)
    assert qc.MODULE.table("user").unique_columns == ("identity",)
    assert qc.MODULE.table("message").unique_columns == ()
    # the primary key is a unique lookup; a table without one has only filters
    assert hints(qc.User.filter_by_identity, qc)["return"] == qc.User | None
    assert hints(qc.User.filter_by_online, qc)["return"] == Iterator[qc.User]
    assert hints(qc.Message.filter_by_sender, qc)["return"] == Iterator[qc.Message]
    assert hints(qc.Message.iter, qc)["return"] == Iterator[qc.Message]


def test_quickstart_reducers(qc: ModuleType) -> None:
    assert reducer_signature(qc.set_name, qc) == [("name", str)]
    assert reducer_signature(qc.send_message, qc) == [("text", str)]
    assert set(qc.MODULE.reducers) == {"set_name", "send_message"}
    for lifecycle in ["init", "identity_connected", "identity_disconnected"]:
        assert not hasattr(qc, lifecycle)
        assert f"{lifecycle}_reducer.py" not in files(qc)
    assert files(qc) == {
        "__init__.py",
        "_module.py",
        "user.py",
        "message.py",
        "set_name_reducer.py",
        "send_message_reducer.py",
    }


# ---- blackholio -----------------------------------------------------------------------------------------
def test_blackholio_has_every_table_with_its_columns(mb: ModuleType) -> None:
    schema = schema_of("blackholio")
    assert set(mb.MODULE.tables) == set(BLACKHOLIO_TABLES) == {t.name for t in schema.tables}
    for wire, cls_name in BLACKHOLIO_TABLES.items():
        cls = getattr(mb, cls_name)
        table = schema.table(wire)
        binding = mb.MODULE.table(wire)
        assert cls.table_name == wire and binding.row_class is cls
        assert cls.column_names == tuple(c.name for c in table.columns)
        pk = table.primary_key_column
        assert cls.primary_key == binding.primary_key == (pk.name if pk else None)
        assert binding.unique_columns == tuple(c.name for c in table.unique_columns)
        for column in table.columns:
            method = getattr(cls, f"filter_by_{column.name}")
            unique = column in table.unique_columns
            assert hints(method, mb)["return"] == (cls | None if unique else Iterator[cls]), (wire, column)
        assert f"{wire}.py" in files(mb)


def test_blackholio_column_types(mb: ModuleType) -> None:
    def columns(cls: type) -> list[tuple[str, Any]]:
        h = hints(cls.__new__, mb)
        return [(c, h[c]) for c in cls.column_names]  # type: ignore[attr-defined]

    assert columns(mb.Circle) == [
        ("entity_id", int),
        ("player_id", int),
        ("direction", mb.DbVector2),
        ("speed", float),
        ("last_split_time", Timestamp),
    ]
    assert columns(mb.Entity) == [("entity_id", int), ("position", mb.DbVector2), ("mass", int)]
    assert columns(mb.Player) == [("identity", Identity), ("player_id", int), ("name", str)]
    assert columns(mb.Config) == [("id", int), ("world_size", int)]
    assert columns(mb.ConsumeEntityTimer) == [
        ("scheduled_id", int),
        ("scheduled_at", ScheduleAt),
        ("consumed_entity_id", int),
        ("consumer_entity_id", int),
    ]
    assert columns(mb.DbVector2) == [("x", float), ("y", float)]
    assert hints(mb.Circle.direction.fget, mb)["return"] is mb.DbVector2
    assert not mb.DbVector2.is_table_class
    # logged_out_* tables share their row types with the live tables, but have their own classes
    assert columns(mb.LoggedOutCircle) == columns(mb.Circle)
    assert mb.LoggedOutCircle is not mb.Circle


def test_blackholio_reducers(mb: ModuleType) -> None:
    assert set(mb.MODULE.reducers) == BLACKHOLIO_CALLABLE
    assert reducer_signature(mb.update_player_input, mb) == [("direction", mb.DbVector2)]
    assert reducer_signature(mb.enter_game, mb) == [("name", str)]
    for name in ["respawn", "suicide", "player_split"]:
        assert reducer_signature(getattr(mb, name), mb) == []
    for name in BLACKHOLIO_CALLABLE:
        assert callable(getattr(mb, name)) and callable(getattr(mb, f"register_on_{name}"))
        assert f"{name}_reducer.py" in files(mb)
        assert name in mb.__all__
    callback = hints(mb.register_on_update_player_input, mb)["callback"]
    assert typing.get_args(callback)[0][-1] is mb.DbVector2


@pytest.mark.parametrize("name", sorted(BLACKHOLIO_NOT_CALLABLE))
def test_blackholio_lifecycle_and_scheduled_reducers_are_not_functions(mb: ModuleType, name: str) -> None:
    assert schema_of("blackholio").reducer(name)  # it is in the schema...
    assert not hasattr(mb, name)  # ...but not a function of the bindings
    assert not hasattr(mb, f"register_on_{name}")
    assert f"{name}_reducer.py" not in files(mb)
    assert name not in mb.MODULE.reducers


def test_init_exports_everything(mb: ModuleType, qc: ModuleType) -> None:
    for pkg in (mb, qc):
        assert pkg.__all__ == sorted(pkg.__all__, key=lambda n: (not n.isupper(), not n[:1].isupper(), n))
        for name in pkg.__all__:
            assert hasattr(pkg, name), name
    assert set(BLACKHOLIO_TABLES.values()) | {"DbVector2", "MODULE"} <= set(mb.__all__)
