"""Generated packages at run time: rows, their codecs, the table and reducer functions, and the one seam
to a client (a recording stand-in here). Blackholio shows the common shapes; ``all_types`` every type
and every awkward name."""

from __future__ import annotations

import importlib
import inspect
import struct
import uuid
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from spacetime_game.sdk import (
    ConnectionId,
    EncodeError,
    Identity,
    ScheduleAt,
    SpacetimeError,
    TimeDuration,
    Timestamp,
    bindings,
)
from spacetime_game.sdk.bindings import BindingsClient, NoClientError
from spacetime_game.sdk.sats import Some, SumValue, compile_codec

from ._helpers import Handle, RecordingClient, schema_of

ID_HEX = "c200112233445566778899aabbccddeeff00112233445566778899aabbccddee"
CONN_HEX = "0123456789abcdef0123456789abcdef"


def submodule(pkg: ModuleType, name: str) -> ModuleType:
    return importlib.import_module(f"{pkg.__name__}.{name}")


def generic_encode(schema_name: str, table: str, value: dict[str, Any]) -> bytes:
    """The BSATN of a row, encoded from plain values by a codec that knows nothing of generated classes."""
    schema = schema_of(schema_name)
    data: bytes = compile_codec(schema.table(table).row_type, schema.typespace).encode(value)
    return data


def generic_args(schema_name: str, reducer: str, value: dict[str, Any]) -> bytes:
    """The BSATN of a reducer's arguments, encoded from plain values."""
    schema = schema_of(schema_name)
    data: bytes = compile_codec(schema.reducer(reducer).params, schema.typespace).encode(value)
    return data


def noop(*args: Any) -> None:
    pass


# ---- rows ---------------------------------------------------------------------------------------------
def test_rows_build_from_positional_and_keyword_arguments(mb: ModuleType) -> None:
    v = mb.DbVector2(1.5, -2.0)
    assert v == mb.DbVector2(y=-2.0, x=1.5)
    assert (v.x, v.y) == (1.5, -2.0)
    assert isinstance(v, tuple) and tuple(v) == (1.5, -2.0)
    c = mb.Circle(7, 3, v, 2.5, Timestamp(10))
    kw = mb.Circle(entity_id=7, player_id=3, direction=v, speed=2.5, last_split_time=Timestamp(10))
    assert c == kw
    assert (c.entity_id, c.player_id, c.direction, c.speed, c.last_split_time) == (
        7,
        3,
        v,
        2.5,
        Timestamp(10),
    )
    with pytest.raises(TypeError):
        mb.Circle(7, 3, v, 2.5)
    with pytest.raises(TypeError):
        mb.Circle(7, 3, v, 2.5, Timestamp(10), color="red")
    with pytest.raises(AttributeError):
        c.speed = 3.0  # type: ignore[misc]


def test_rows_repr(mb: ModuleType) -> None:
    v = mb.DbVector2(1.5, -2.0)
    assert repr(v) == "DbVector2(x=1.5, y=-2.0)"
    c = mb.Circle(7, 3, v, 2.5, Timestamp(10))
    assert repr(c) == (
        f"Circle(entity_id=7, player_id=3, direction=DbVector2(x=1.5, y=-2.0), speed=2.5, "
        f"last_split_time={Timestamp(10)!r})"
    )


def test_rows_eq_and_hash_are_per_class(mb: ModuleType) -> None:
    v = mb.DbVector2(1.5, -2.0)
    c = mb.Circle(7, 3, v, 2.5, Timestamp(10))
    same = mb.Circle(7, 3, mb.DbVector2(1.5, -2.0), 2.5, Timestamp(10))
    assert c == same
    assert c.__ne__(same) is False and c.__ne__(mb.LoggedOutCircle(*c)) is True
    assert hash(c) == hash(same)
    assert len({c, same}) == 1 and {c: 1}[same] == 1
    assert c != mb.Circle(8, 3, v, 2.5, Timestamp(10))
    # the same values in another table's row class, or in a plain tuple, are not the same row
    other = mb.LoggedOutCircle(*c)
    assert c != other and other != c
    assert c != tuple(c) and tuple(c) != c
    assert mb.Entity(1, v, 5) != mb.LoggedOutEntity(1, v, 5)


# ---- row codecs ---------------------------------------------------------------------------------------
def test_row_bsatn_round_trips_through_the_table_codec(mb: ModuleType) -> None:
    c = mb.Circle(7, 3, mb.DbVector2(1.5, -2.0), 2.5, Timestamp(10))
    codec = mb.MODULE.table("circle").codec
    data = codec.encode(c)
    assert data == struct.pack("<iifffq", 7, 3, 1.5, -2.0, 2.5, 10)
    assert data == generic_encode(
        "blackholio",
        "circle",
        {
            "entity_id": 7,
            "player_id": 3,
            "direction": {"x": 1.5, "y": -2.0},
            "speed": 2.5,
            "last_split_time": Timestamp(10),
        },
    )
    back = codec.decode(data)
    assert back == c
    assert type(back) is mb.Circle
    assert type(back.direction) is mb.DbVector2
    assert type(back.last_split_time) is Timestamp
    # the same bytes through another table with the same row type give that table's class
    logged_out = mb.MODULE.table("logged_out_circle").codec.decode(data)
    assert type(logged_out) is mb.LoggedOutCircle and tuple(logged_out) == tuple(c)


def test_row_codec_rejects_a_wrong_row_or_column_type(mb: ModuleType) -> None:
    c = mb.Circle(7, 3, mb.DbVector2(1.5, -2.0), 2.5, Timestamp(10))
    with pytest.raises(EncodeError):
        mb.MODULE.table("logged_out_circle").codec.encode(c)
    bad = mb.Circle(7, 3, (1.5, -2.0), 2.5, Timestamp(10))
    with pytest.raises(EncodeError) as info:
        mb.MODULE.table("circle").codec.encode(bad)
    assert "direction" in str(info.value)
    with pytest.raises(EncodeError) as info:
        mb.MODULE.table("circle").codec.encode(mb.Circle(7, 2**31, mb.DbVector2(0.0, 0.0), 0.0, Timestamp(0)))
    assert "player_id" in str(info.value)


def _compound(at: ModuleType, **changes: Any) -> Any:
    values: dict[str, Any] = {
        "key": 1,
        "code": "c-1",
        "created": Timestamp(1_704_067_200_000_000),
        "who": Identity.from_string(ID_HEX),
        "conn": ConnectionId.from_string(CONN_HEX),
        "lasted": TimeDuration(-5),
        "uid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "when": ScheduleAt.interval(TimeDuration(1_000)),
        "ints": [1, -2, 2**31 - 1],
        "grid": [[1.5], [], [2.5, -0.5]],
        "names": ["a", "ß", ""],
        "maybe_text": None,
        "maybe_maybe": Some(None),
        "point": at.Point(1.0, 2.0),
        "points": [at.Point(0.0, 0.5), at.Point(-1.0, 1e300)],
        "maybe_point": at.Point(3.0, 4.0),
        "color": at.Color.Blue,
        "shape": at.Shape.polygon([at.Point(1.0, 1.0)]),
        "colors": [at.Color.Red, at.Color.Green],
        "pair": {"a": 1, "b": "x"},
        "tup": (7, True),
        "anon": SumValue(0, 5),
        "outcome": SumValue(1, "bad"),
    }
    values.update(changes)
    return at.Compound(**values)


def _plain(value: Any, at: ModuleType) -> Any:
    """A value of a generated class as the plain value a class-less codec takes."""
    if isinstance(value, at.Point):
        return {"x": value.x, "y": value.y}
    if isinstance(value, at.Color):
        return SumValue(value.value)
    if isinstance(value, at.Shape):
        return SumValue(value.tag, _plain(value.value, at))
    if isinstance(value, list):
        return [_plain(v, at) for v in value]
    return value


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"maybe_text": "hi", "maybe_maybe": None, "maybe_point": None},
        {"maybe_maybe": Some(5), "shape": "circle", "when": ScheduleAt.time(Timestamp(99))},
        {"shape": "empty", "colors": [], "points": [], "grid": [], "outcome": SumValue(0, -1)},
    ],
    ids=["some", "none", "nested-some", "empty"],
)
def test_every_type_round_trips(at: ModuleType, changes: dict[str, Any]) -> None:
    if changes.get("shape") == "circle":
        changes["shape"] = at.Shape.circle(1.5)
    elif changes.get("shape") == "empty":
        changes["shape"] = at.Shape.empty()
    row = _compound(at, **changes)
    codec = at.MODULE.table("compound").codec
    data = codec.encode(row)
    plain = {name: _plain(v, at) for name, v in zip(at.Compound.column_names, row, strict=True)}
    assert data == generic_encode("all_types", "compound", plain)
    back = codec.decode(data)
    assert back == row and type(back) is at.Compound
    assert type(back.point) is at.Point and back.color is at.Color.Blue
    assert type(back.shape) is at.Shape and back.shape == row.shape
    assert all(type(p) is at.Point for p in back.points)
    assert type(back.who) is Identity and type(back.conn) is ConnectionId
    assert type(back.uid) is uuid.UUID and type(back.when) is ScheduleAt
    assert back.maybe_maybe == row.maybe_maybe
    assert codec.encode(back) == data


def test_every_primitive_round_trips_at_its_limits(at: ModuleType) -> None:
    values: dict[str, Any] = {
        "id": 2**64 - 1,
        "flag": True,
        "i8": -(2**7),
        "u8": 2**8 - 1,
        "i16": -(2**15),
        "u16": 2**16 - 1,
        "i32": -(2**31),
        "u32": 2**32 - 1,
        "i64": -(2**63),
        "u64": 2**64 - 1,
        "i128": -(2**127),
        "u128": 2**128 - 1,
        "i256": -(2**255),
        "u256": 2**256 - 1,
        "f32": 1.5,
        "f64": -0.1,
        "text": "héllo",
        "blob": b"\x00\xff",
        "class": "cls",
        "from": -1,
        "iter": True,
        "count": 2**16 - 1,
    }
    # columns named after keywords or the table class's own methods get another property name
    row = at.AllPrims(*values.values())
    assert (row.class_, row.from_, row.iter_2, row.count_2) == ("cls", -1, True, 2**16 - 1)
    assert callable(at.AllPrims.iter) and row.count(True) == 2
    kw = dict(zip(inspect.signature(at.AllPrims).parameters, values.values(), strict=True))
    assert at.AllPrims(**kw) == row
    codec = at.MODULE.table("AllPrims").codec
    data = codec.encode(row)
    assert data == generic_encode("all_types", "AllPrims", values)
    back = codec.decode(data)
    assert back == row and type(back.blob) is bytes
    with pytest.raises(EncodeError) as info:
        codec.encode(at.AllPrims(*{**values, "u8": 256}.values()))
    assert "u8" in str(info.value)


# ---- table functions --------------------------------------------------------------------------------
@pytest.fixture
def circles(mb: ModuleType) -> tuple[RecordingClient, list[Any]]:
    client = RecordingClient(mb.MODULE)
    v = mb.DbVector2(0.0, 1.0)
    rows = [
        mb.Circle(1, 10, v, 1.0, Timestamp(1)),
        mb.Circle(2, 10, v, 2.0, Timestamp(2)),
        mb.Circle(3, 11, mb.DbVector2(5.0, 5.0), 3.0, Timestamp(3)),
    ]
    client.rows["circle"] = rows
    return client, rows


def test_recording_client_is_a_bindings_client(mb: ModuleType) -> None:
    assert isinstance(RecordingClient(mb.MODULE), BindingsClient)


def test_filter_by_unique_column_returns_the_row_or_none(mb: ModuleType, circles: Any) -> None:
    client, rows = circles
    assert mb.Circle.filter_by_entity_id(2, client=client) is rows[1]
    assert mb.Circle.filter_by_entity_id(99, client=client) is None
    assert client.calls == [("find_row", "circle", "entity_id", 2), ("find_row", "circle", "entity_id", 99)]
    p = mb.Player(Identity.from_string(ID_HEX), 5, "alice")
    client.rows["player"] = [p]
    assert mb.Player.filter_by_identity(Identity.from_string(ID_HEX), client=client) is p
    assert mb.Player.filter_by_player_id(5, client=client) is p
    assert client.calls[-1] == ("find_row", "player", "player_id", 5)


def test_filter_by_other_column_returns_an_iterator(mb: ModuleType, circles: Any) -> None:
    client, rows = circles
    found = mb.Circle.filter_by_player_id(10, client=client)
    assert isinstance(found, Iterator)
    assert list(found) == rows[:2]
    assert client.calls == [("filter_rows", "circle", "player_id", 10)]
    assert list(mb.Circle.filter_by_direction(mb.DbVector2(5.0, 5.0), client=client)) == [rows[2]]
    assert list(mb.Circle.filter_by_speed(9.0, client=client)) == []
    assert client.calls[-1] == ("filter_rows", "circle", "speed", 9.0)


def test_iter_yields_every_cached_row(mb: ModuleType, circles: Any) -> None:
    client, rows = circles
    it = mb.Circle.iter(client=client)
    assert isinstance(it, Iterator)
    assert list(it) == rows
    assert list(mb.Food.iter(client)) == []
    assert client.calls == [("iter_rows", "circle"), ("iter_rows", "food")]


def test_filter_by_keeps_the_column_name_for_awkward_columns(at: ModuleType) -> None:
    client = RecordingClient(at.MODULE)
    row = at.AllPrims(1, False, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0.0, "", b"", "x", 2, True, 3)
    client.rows["AllPrims"] = [row]
    assert list(at.AllPrims.filter_by_class("x", client=client)) == [row]
    assert list(at.AllPrims.filter_by_from(2, client=client)) == [row]
    assert list(at.AllPrims.filter_by_iter(True, client=client)) == [row]
    assert list(at.AllPrims.filter_by_count(3, client=client)) == [row]
    assert at.AllPrims.filter_by_id(1, client=client) is row
    assert [c[1:3] for c in client.calls] == [
        ("AllPrims", "class"),
        ("AllPrims", "from"),
        ("AllPrims", "iter"),
        ("AllPrims", "count"),
        ("AllPrims", "id"),
    ]
    # a column called ``client`` keeps ``client=`` for the connection
    secret = at.Secret(Identity.from_string(ID_HEX), "n", 7, -1)
    client.rows["secret"] = [secret]
    assert list(at.Secret.filter_by_client(7, client=client)) == [secret]
    assert list(at.Secret.filter_by_cls(-1, client=client)) == [secret]
    assert (secret.client, secret.cls_2) == (7, -1)
    assert at.Secret.filter_by_owner(Identity.from_string(ID_HEX), client=client) is secret
    assert client.calls[-3:] == [
        ("filter_rows", "secret", "client", 7),
        ("filter_rows", "secret", "cls", -1),
        ("find_row", "secret", "owner", Identity.from_string(ID_HEX)),
    ]


ROW_CALLBACKS = [
    ("register_row_update", "unregister_row_update", "row_update"),
    ("on_insert", "remove_on_insert", "insert"),
    ("on_update", "remove_on_update", "update"),
    ("on_delete", "remove_on_delete", "delete"),
]


@pytest.mark.parametrize(("register", "remove", "event"), ROW_CALLBACKS)
def test_row_callbacks_and_their_removers_reach_the_client(
    mb: ModuleType, register: str, remove: str, event: str
) -> None:
    client = RecordingClient(mb.MODULE)

    def callback(*args: Any) -> None:
        pass

    result = getattr(mb.Circle, register)(callback, client=client)
    assert result is (None if register == "register_row_update" else callback)
    assert client.calls == [("on_row", "circle", event, callback)]
    assert client.row_callbacks == {("circle", event): [callback]}
    getattr(mb.Circle, remove)(callback, client=client)
    assert client.calls[-1] == ("remove_on_row", "circle", event, callback)
    assert client.row_callbacks == {("circle", event): []}
    with pytest.raises(TypeError):
        getattr(mb.Circle, register)("not callable", client=client)
    assert len(client.calls) == 2


def test_on_insert_works_as_a_decorator_with_the_default_client(mb: ModuleType) -> None:
    client = RecordingClient(mb.MODULE)
    bindings.set_default_client(client)

    @mb.Entity.on_insert
    def spawned(row: Any, event: Any) -> None:
        pass

    assert callable(spawned) and spawned.__name__ == "spawned"
    assert client.row_callbacks == {("entity", "insert"): [spawned]}


# ---- reducers -------------------------------------------------------------------------------------------
def test_reducer_encodes_its_arguments_and_sends_the_wire_name(mb: ModuleType) -> None:
    client = RecordingClient(mb.MODULE)
    handle = mb.update_player_input(mb.DbVector2(0.5, -1.0), client=client)
    ((kind, reducer, args, callback),) = client.calls
    assert (kind, reducer, callback) == ("call_reducer", "update_player_input", None)
    assert args == struct.pack("<ff", 0.5, -1.0)
    assert args == generic_args("blackholio", "update_player_input", {"direction": {"x": 0.5, "y": -1.0}})
    assert isinstance(handle, Handle) and handle.args == args

    mb.enter_game("alice", client=client, callback=noop)
    assert client.calls[-1] == ("call_reducer", "enter_game", b"\x05\x00\x00\x00alice", noop)
    mb.respawn(client=client)
    mb.player_split(client=client)
    assert client.calls[-2:] == [
        ("call_reducer", "respawn", b"", None),
        ("call_reducer", "player_split", b"", None),
    ]


def test_reducer_with_many_typed_arguments(at: ModuleType) -> None:
    client = RecordingClient(at.MODULE)
    args: dict[str, Any] = {
        "class": "k",
        "from": -7,
        "who": Identity.from_string(ID_HEX),
        "at": Timestamp(123),
        "dur": TimeDuration(456),
        "uid": uuid.UUID(int=2**128 - 2),
        "when": ScheduleAt.time(Timestamp(5)),
        "nested": Some("deep"),
        "foo": at.FooBar(3),
        "foo2": at.FooBar_2("b"),
        "blob": b"\x01\x02",
        "conn": ConnectionId.from_string(CONN_HEX),
        "grid": [[1, 2], [], [-(2**63)]],
    }
    at.set_stuff(*args.values(), client=client)
    ((_, reducer, data, _),) = client.calls
    assert reducer == "set_stuff"
    plain = {**args, "foo": {"a": 3}, "foo2": {"b": "b"}}
    assert data == generic_args("all_types", "set_stuff", plain)
    decoded = submodule(at, "set_stuff_reducer")._decode_args(data)
    assert decoded == list(args.values())
    assert type(decoded[8]) is at.FooBar and type(decoded[9]) is at.FooBar_2
    assert decoded[7] == Some("deep")
    # keyword names: keywords get a trailing underscore
    at.set_stuff(
        **dict(zip(inspect.signature(at.set_stuff).parameters, args.values(), strict=False)), client=client
    )
    assert client.calls[-1][2] == data

    at.big_numbers(2**128 - 1, -(2**127), 2**256 - 1, -(2**255), 0.25, -1e308, client=client)
    expected = {"a": 2**128 - 1, "b": -(2**127), "c": 2**256 - 1, "d": -(2**255), "e": 0.25, "f": -1e308}
    assert client.calls[-1][2] == generic_args("all_types", "big_numbers", expected)
    assert submodule(at, "big_numbers_reducer")._decode_args(client.calls[-1][2]) == list(expected.values())


def test_reducer_parameter_named_client_keeps_client_for_the_connection(at: ModuleType) -> None:
    params = inspect.signature(at.add_point).parameters
    assert list(params) == ["point", "color", "shape", "client_2", "tags", "maybe", "client", "callback"]
    assert params["client"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["callback"].kind is inspect.Parameter.KEYWORD_ONLY
    client = RecordingClient(at.MODULE)
    at.add_point(
        at.Point(1.0, 2.0), at.Color.Green, at.Shape.rect(at.Point(3.0, 4.0)), "me", ["t"], 9, client=client
    )
    ((_, reducer, data, _),) = client.calls
    assert reducer == "add_point"
    expected = {
        "point": {"x": 1.0, "y": 2.0},
        "color": SumValue(1),
        "shape": SumValue(1, {"x": 3.0, "y": 4.0}),
        "client": "me",
        "tags": ["t"],
        "maybe": 9,
    }
    assert data == generic_args("all_types", "add_point", expected)
    decoded = submodule(at, "add_point_reducer")._decode_args(data)
    assert decoded == [at.Point(1.0, 2.0), at.Color.Green, at.Shape.rect(at.Point(3.0, 4.0)), "me", ["t"], 9]
    assert type(decoded[2]) is at.Shape and type(decoded[2].value) is at.Point


def test_reducer_wire_name_is_the_canonical_name(at: ModuleType) -> None:
    client = RecordingClient(at.MODULE)
    at.set_color(at.Color.Blue, client=client)
    assert client.calls == [("call_reducer", "SetColor", b"\x02", None)]
    assert submodule(at, "set_color_reducer").reducer_name == "SetColor"
    at.noop(client=client)
    assert client.calls[-1] == ("call_reducer", "noop", b"", None)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda mb, c: mb.update_player_input((0.5, -1.0), client=c), "direction"),
        (
            lambda mb, c: mb.update_player_input(
                mb.Circle(1, 2, mb.DbVector2(0, 0), 0, Timestamp(0)), client=c
            ),
            "direction",
        ),
        (lambda mb, c: mb.enter_game(42, client=c), "name"),
        (lambda mb, c: mb.enter_game(None, client=c), "name"),
    ],
)
def test_wrong_argument_type_raises_before_anything_is_sent(
    mb: ModuleType, call: Callable[[ModuleType, RecordingClient], Any], argument: str
) -> None:
    client = RecordingClient(mb.MODULE)
    with pytest.raises(EncodeError) as info:
        call(mb, client)
    assert argument in str(info.value)
    assert "argument" in str(info.value)
    assert client.calls == []


def test_wrong_nested_argument_types_name_the_argument(at: ModuleType) -> None:
    client = RecordingClient(at.MODULE)
    p = at.Point(1.0, 2.0)
    cases: list[tuple[Callable[[], Any], str]] = [
        (lambda: at.add_point(p, 1, at.Shape.empty(), "c", [], None, client=client), "color"),
        (lambda: at.add_point(p, at.Color.Red, at.Shape.circle("x"), "c", [], None, client=client), "shape"),
        (lambda: at.add_point(p, at.Color.Red, at.Shape.empty(), "c", [1], None, client=client), "tags"),
        (lambda: at.add_point(p, at.Color.Red, at.Shape.empty(), "c", [], 256, client=client), "maybe"),
        (lambda: at.add_point(p, at.Color.Red, at.Shape.empty(), 5, [], None, client=client), "client"),
        (lambda: at.set_color(at.Color.Red.value, client=client), "color"),
        (lambda: at.big_numbers(-1, 0, 0, 0, 0.0, 0.0, client=client), "a"),
    ]
    for call, argument in cases:
        with pytest.raises(EncodeError) as info:
            call()
        assert argument in str(info.value), str(info.value)
    args = [at.FooBar_2("wrong"), at.FooBar_2("b")]
    with pytest.raises(EncodeError) as info:
        at.set_stuff(
            "k",
            1,
            Identity.zero(),
            Timestamp(0),
            TimeDuration(0),
            uuid.UUID(int=0),
            ScheduleAt.time(Timestamp(0)),
            None,
            *args,
            b"",
            ConnectionId.zero(),
            [],
            client=client,
        )
    assert "foo" in str(info.value)
    assert client.calls == []


@pytest.mark.parametrize("wrapper", ["register_on_", "unregister_on_"])
def test_register_on_reducer_reaches_the_client(mb: ModuleType, wrapper: str) -> None:
    client = RecordingClient(mb.MODULE)
    mb.register_on_update_player_input(noop, client=client)
    assert client.calls == [("on_reducer", "update_player_input", noop)]
    if wrapper == "unregister_on_":
        mb.unregister_on_update_player_input(noop, client=client)
        assert client.calls[-1] == ("remove_on_reducer", "update_player_input", noop)
        assert client.reducer_callbacks == {"update_player_input": []}
    with pytest.raises(TypeError):
        mb.register_on_enter_game(None, client=client)
    assert len(client.calls) == (2 if wrapper == "unregister_on_" else 1)


def test_decode_args_inverts_the_encoding(mb: ModuleType) -> None:
    client = RecordingClient(mb.MODULE)
    mb.update_player_input(mb.DbVector2(0.25, 8.0), client=client)
    mb.enter_game("zoë", client=client)
    upi = submodule(mb, "update_player_input_reducer")._decode_args(client.calls[0][2])
    assert upi == [mb.DbVector2(0.25, 8.0)] and type(upi[0]) is mb.DbVector2
    assert submodule(mb, "enter_game_reducer")._decode_args(client.calls[1][2]) == ["zoë"]
    assert submodule(mb, "respawn_reducer")._decode_args(b"") == []


# ---- named types --------------------------------------------------------------------------------------
def test_plain_enum_binds_to_an_enum(at: ModuleType) -> None:
    assert [(m.name, m.value) for m in at.Color] == [("Red", 0), ("Green", 1), ("Blue", 2)]
    client = RecordingClient(at.MODULE)
    for member in at.Color:
        at.set_color(member, client=client)
        data = client.calls[-1][2]
        assert data == bytes([member.value])
        assert submodule(at, "set_color_reducer")._decode_args(data) == [member]


def test_sum_type_binds_to_its_class(at: ModuleType) -> None:
    s = at.Shape.circle(1.5)
    assert (s.tag, s.value, s.name) == (0, 1.5, "Circle")
    assert repr(s) == "Shape.Circle(1.5)"
    assert at.Shape.empty() == at.Shape(2) and at.Shape.empty().name == "Empty"
    assert hash(at.Shape.circle(1.5)) == hash(s) and at.Shape.circle(1.5) == s
    assert s != at.Shape.circle(2.5) and s != at.Shape.rect(at.Point(1.5, 0.0))
    assert s != SumValue(0, 1.5)
    assert at.Shape.variant_names == ("Circle", "Rect", "Empty", "Polygon")
    with pytest.raises(ValueError):
        at.Shape(4)
    codec = at.MODULE.reducer("add_point").args_codec
    for shape in [
        s,
        at.Shape.rect(at.Point(1.0, 2.0)),
        at.Shape.empty(),
        at.Shape.polygon([at.Point(0.0, 0.0)]),
    ]:
        args = (at.Point(0.0, 0.0), at.Color.Red, shape, "", [], None)
        back = codec.decode(codec.encode(args))
        assert back[2] == shape and type(back[2]) is at.Shape


def test_named_products_bind_to_their_classes(at: ModuleType) -> None:
    assert at.FooBar is not at.FooBar_2
    assert at.FooBar(1) != at.FooBar_2(1)
    assert submodule(at, "foo_bar").FooBar is at.FooBar
    assert submodule(at, "foo_bar_2").FooBar_2 is at.FooBar_2
    assert at.FooBar.column_names == ("a",) and at.FooBar_2.column_names == ("b",)
    assert not at.Point.is_table_class and at.Compound.is_table_class
    row = at.TickTimer(0, ScheduleAt.interval(TimeDuration(50)), at.FooBar_2("payload"))
    codec = at.MODULE.table("tick_timer").codec
    back = codec.decode(codec.encode(row))
    assert back == row and type(back.payload) is at.FooBar_2


# ---- the module description -----------------------------------------------------------------------------
def test_module_bindings_describe_every_table(at: ModuleType) -> None:
    tables = at.MODULE.tables
    assert set(tables) == {"AllPrims", "compound", "secret", "tick_timer"}
    expected = {
        "AllPrims": (at.AllPrims, "id", ("id",)),
        "compound": (at.Compound, "key", ("key", "code")),
        "secret": (at.Secret, "owner", ("owner",)),
        "tick_timer": (at.TickTimer, "scheduled_id", ("scheduled_id",)),
    }
    schema = schema_of("all_types")
    for name, (cls, pk, unique) in expected.items():
        t = tables[name]
        assert (t.row_class, t.primary_key, t.unique_columns, t.is_event) == (cls, pk, unique, False)
        assert t.column_names == tuple(c.name for c in schema.table(name).columns) == cls.column_names
        assert cls.table_name == name and cls.primary_key == pk
    assert "private table" in (at.Secret.__doc__ or "") and "public table" in (at.Compound.__doc__ or "")
    assert set(at.MODULE.reducers) == {"SetColor", "add_point", "big_numbers", "noop", "set_stuff"}


def test_lifecycle_and_scheduled_reducers_are_not_callable_functions(at: ModuleType) -> None:
    for name in ["init", "client_connected", "client_disconnected", "tick"]:
        assert not hasattr(at, name)
        assert not hasattr(at, f"register_on_{name}")
        with pytest.raises(ModuleNotFoundError):
            submodule(at, f"{name}_reducer")


# ---- no client ----------------------------------------------------------------------------------------
def test_no_client_error_when_no_client_is_set(mb: ModuleType) -> None:
    calls: list[Callable[[], Any]] = [
        lambda: mb.Circle.iter(),
        lambda: mb.Circle.filter_by_entity_id(1),
        lambda: mb.Circle.filter_by_player_id(1),
        lambda: mb.Circle.on_insert(noop),
        lambda: mb.Circle.register_row_update(noop),
        lambda: mb.Circle.remove_on_delete(noop),
        lambda: mb.update_player_input(mb.DbVector2(0.0, 0.0)),
        lambda: mb.register_on_update_player_input(noop),
        lambda: mb.unregister_on_update_player_input(noop),
    ]
    for call in calls:
        with pytest.raises(NoClientError) as info:
            call()
        assert "client=" in str(info.value)
        assert isinstance(info.value, SpacetimeError) and isinstance(info.value, RuntimeError)


def test_the_default_client_serves_calls_without_client_and_client_wins(mb: ModuleType) -> None:
    default = RecordingClient(mb.MODULE)
    bindings.set_default_client(default)
    assert bindings.get_default_client() is default
    list(mb.Circle.iter())
    mb.respawn()
    mb.register_on_respawn(noop)
    assert default.calls == [
        ("iter_rows", "circle"),
        ("call_reducer", "respawn", b"", None),
        ("on_reducer", "respawn", noop),
    ]
    explicit = RecordingClient(mb.MODULE)
    mb.suicide(client=explicit)
    mb.Food.filter_by_entity_id(4, client=explicit)
    assert explicit.calls == [("call_reducer", "suicide", b"", None), ("find_row", "food", "entity_id", 4)]
    assert len(default.calls) == 3
    bindings.set_default_client(None)
    with pytest.raises(NoClientError):
        mb.respawn()
