"""``ModuleSchema``: the same normalised view from bare and wrapped V9 and V10 schemas, with tables, their
keys, constraints, indexes, sequences, schedules and access, reducers with their lifecycle and whether
clients may call them, and named types."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from spacetime_game.sdk.sats import (
    AlgebraicType,
    ArrayType,
    PrimitiveType,
    ProductType,
    RefType,
    SumType,
)
from spacetime_game.sdk.schema import (
    ColumnDef,
    IndexDef,
    ModuleSchema,
    RawModuleDefV9,
    RawModuleDefV10,
    ScheduleDef,
    SequenceDef,
    load_schema,
)

DATA = Path(__file__).resolve().parent.parent / "data"
P = PrimitiveType


def raw(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return doc


# ---- the four forms ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["example_schema.json", "quickstart_chat.schema.json", "blackholio.schema.json"]
)
def test_bare_and_wrapped_v9_give_the_same_schema(name: str) -> None:
    bare = ModuleSchema.from_json(raw(name))
    wrapped = ModuleSchema.from_json({"V9": raw(name)})
    assert bare.version == wrapped.version == 9
    assert bare == wrapped
    assert load_schema(DATA / name) == bare
    assert ModuleSchema.from_text(json.dumps({"V9": raw(name)})) == bare
    assert ModuleSchema.from_text(json.dumps(raw(name)).encode()) == bare


def test_bare_and_wrapped_v10_give_the_same_schema() -> None:
    bare = ModuleSchema.from_json(raw("v10.schema.json"))
    wrapped = ModuleSchema.from_json({"V10": raw("v10.schema.json")})
    assert bare.version == wrapped.version == 10
    assert bare == wrapped
    assert load_schema(DATA / "v10.schema.json") == bare


def test_v9_and_v10_of_the_same_module_agree() -> None:
    """The example module written as V10 (names equal, lifecycle in its own section) normalises like V9."""
    v9 = raw("example_schema.json")
    lifecycle = {r["name"]: r["lifecycle"] for r in v9["reducers"]}
    v10 = {
        "sections": [
            {"Typespace": v9["typespace"]},
            {
                "Types": [
                    {"source_name": {"scope": [], "source_name": t["name"]["name"]}, "ty": t["ty"]}
                    for t in v9["types"]
                ]
            },
            {
                "Tables": [
                    {k: v for k, v in t.items() if k not in ("name", "schedule")} | {"source_name": t["name"]}
                    for t in v9["tables"]
                ]
            },
            {
                "Reducers": [
                    {
                        "source_name": r["name"],
                        "params": r["params"],
                        "visibility": {"ClientCallable" if "none" in r["lifecycle"] else "Private": []},
                    }
                    for r in v9["reducers"]
                ]
            },
            {
                "LifeCycleReducers": [
                    {"lifecycle_spec": lc["some"], "function_name": name}
                    for name, lc in lifecycle.items()
                    if "some" in lc
                ]
            },
        ]
    }
    a, b = ModuleSchema.from_json(v9), ModuleSchema.from_json(v10)
    assert (a.typespace, a.tables, a.reducers, a.types) == (b.typespace, b.tables, b.reducers, b.types)


def test_raw_models_parse_the_files() -> None:
    v9 = RawModuleDefV9.model_validate(raw("blackholio.schema.json"))
    assert (
        len(v9.typespace.types) == 12
        and len(v9.tables) == 14
        and len(v9.reducers) == 13
        and len(v9.types) == 12
    )
    v10 = RawModuleDefV10.model_validate(raw("v10.schema.json"))
    assert v10.section("CaseConversionPolicy") == {"SnakeCase": []}
    assert v10.section("Procedures") is None


# ---- V9: the example module -------------------------------------------------------------------------
def test_example_schema() -> None:
    s = load_schema(DATA / "example_schema.json")
    (person,) = s.tables
    assert (person.name, person.accessor_name, person.product_type_ref) == ("person", "person", 0)
    assert person.columns == (ColumnDef(0, "name", P("String")),)
    assert person.row_type == AlgebraicType.product(name=P("String"))
    assert (person.primary_key, person.unique_constraints, person.indexes, person.sequences) == (
        (),
        (),
        (),
        (),
    )
    assert person.primary_key_column is None and person.unique_columns == () and person.indexed_columns == ()
    assert not person.is_public and not person.is_event and not person.is_system and person.schedule is None
    reducers = {r.name: (r.lifecycle, r.callable, r.params) for r in s.reducers}
    assert reducers == {
        "add": (None, True, AlgebraicType.product(name=P("String"))),
        "identity_connected": ("client_connected", False, ProductType(())),
        "identity_disconnected": ("client_disconnected", False, ProductType(())),
        "init": ("init", False, ProductType(())),
        "say_hello": (None, True, ProductType(())),
    }
    assert [t.name for t in s.types] == ["Person"] and s.type_name(0) == "Person"


# ---- V9: Blackholio -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bh() -> ModuleSchema:
    return load_schema(DATA / "blackholio.schema.json")


def test_blackholio_tables(bh: ModuleSchema) -> None:
    public = {t.name for t in bh.tables if t.is_public}
    assert public == {"circle", "config", "consume_entity_event", "entity", "food", "player"}
    assert {t.name for t in bh.tables} - public == {
        "circle_decay_timer",
        "circle_recombine_timer",
        "consume_entity_timer",
        "logged_out_circle",
        "logged_out_entity",
        "logged_out_player",
        "move_all_players_timer",
        "spawn_food_timer",
    }
    assert not any(t.is_event or t.is_system for t in bh.tables)  # V9 cannot say "event table"


def test_blackholio_circle(bh: ModuleSchema) -> None:
    circle = bh.table("circle")
    assert [(c.col_id, c.name, c.type) for c in circle.columns] == [
        (0, "entity_id", P("I32")),
        (1, "player_id", P("I32")),
        (2, "direction", RefType(1)),
        (3, "speed", P("F32")),
        (4, "last_split_time", AlgebraicType.special("timestamp")),
    ]
    assert circle.primary_key == (0,) and circle.primary_key_column == circle.column("entity_id")
    assert circle.unique_constraints == ((0,),)
    assert circle.indexes == (
        IndexDef("circle_entity_id_idx_btree", "entity_id", "btree", (0,)),
        IndexDef("circle_player_id_idx_btree", "player_id", "btree", (1,)),
    )
    assert [c.name for c in circle.unique_columns] == ["entity_id"]
    assert [c.name for c in circle.indexed_columns] == ["entity_id", "player_id"]
    assert circle.sequences == ()
    assert circle.row_type is bh.typespace[0]
    assert bh.type_name(circle.product_type_ref) == "Circle"
    assert bh.table("logged_out_circle").product_type_ref == circle.product_type_ref
    with pytest.raises(KeyError, match="no column 'radius'"):
        circle.column("radius")


def test_blackholio_player_has_two_unique_columns_and_a_sequence(bh: ModuleSchema) -> None:
    player = bh.table("player")
    assert player.primary_key == (0,)
    assert sorted(player.unique_constraints) == [(0,), (1,)]
    assert [c.name for c in player.unique_columns] == ["identity", "player_id"]
    assert player.sequences == (SequenceDef("player_player_id_seq", 1, None, None, None, 1),)
    assert player.column("identity").type.special_kind == "identity"


def test_blackholio_schedules(bh: ModuleSchema) -> None:
    schedules = {t.name: t.schedule for t in bh.tables if t.schedule}
    assert schedules == {
        "move_all_players_timer": ScheduleDef("move_all_players_timer_sched", "move_all_players", 1),
        "spawn_food_timer": ScheduleDef("spawn_food_timer_sched", "spawn_food", 1),
        "circle_decay_timer": ScheduleDef("circle_decay_timer_sched", "circle_decay", 1),
        "circle_recombine_timer": ScheduleDef("circle_recombine_timer_sched", "circle_recombine", 1),
        "consume_entity_timer": ScheduleDef("consume_entity_timer_sched", "consume_entity", 1),
    }
    for name, sched in schedules.items():
        t = bh.table(name)
        assert t.columns[sched.column].type.special_kind == "schedule_at"
        assert t.sequences[0].column == 0  # scheduled_id is auto_inc
        # the scheduled reducer takes the table's row
        assert bh.reducer(sched.reducer_name).params.elements[0].type == RefType(t.product_type_ref)


def test_blackholio_reducers(bh: ModuleSchema) -> None:
    assert [r.name for r in bh.reducers] == sorted(r.name for r in bh.reducers)
    lifecycle = {r.name: r.lifecycle for r in bh.reducers if r.lifecycle}
    assert lifecycle == {"init": "init", "connect": "client_connected", "disconnect": "client_disconnected"}
    for r in bh.reducers:
        assert r.callable is (r.lifecycle is None)
        assert r.accessor_name == r.name
    assert [(e.name, e.type) for e in bh.reducer("update_player_input").params.elements] == [
        ("direction", RefType(1))
    ]
    assert [(e.name, e.type) for e in bh.reducer("enter_game").params.elements] == [("name", P("String"))]
    with pytest.raises(KeyError, match="unknown reducer 'jump'"):
        bh.reducer("jump")
    with pytest.raises(KeyError, match=r"unknown table 'circles'.*'circle'"):
        bh.table("circles")


def test_quickstart() -> None:
    qc = load_schema(DATA / "quickstart_chat.schema.json")
    user, message = qc.table("user"), qc.table("message")
    assert [c.name for c in user.columns] == ["identity", "name", "online"]
    assert user.columns[1].type == AlgebraicType.option(P("String"))
    assert user.primary_key == (0,) and message.primary_key == ()
    assert user.is_public and message.is_public
    assert [r.name for r in qc.reducers if r.callable] == ["send_message", "set_name"]


# ---- every type ---------------------------------------------------------------------------------------
def test_all_types_schema() -> None:
    s = load_schema(DATA / "all_types.schema.json")
    prims = s.table("AllPrims")
    assert [c.type for c in prims.columns[2:14]] == [
        P(n) for n in ["I8", "U8", "I16", "U16", "I32", "U32", "I64", "U64", "I128", "U128", "I256", "U256"]
    ]
    assert prims.column("blob").type == ArrayType(P("U8")) and prims.column("blob").type.is_bytes
    assert [c.name for c in prims.columns[-4:]] == ["class", "from", "iter", "count"]
    compound = s.table("compound")
    kinds = {c.name: c.type.special_kind for c in compound.columns}
    assert {k: v for k, v in kinds.items() if v} == {
        "created": "timestamp",
        "who": "identity",
        "conn": "connection_id",
        "lasted": "time_duration",
        "uid": "uuid",
        "when": "schedule_at",
        "maybe_text": "option",
        "maybe_maybe": "option",
        "maybe_point": "option",
        "outcome": "result",
    }
    assert compound.column("maybe_maybe").type == AlgebraicType.option(AlgebraicType.option(P("I32")))
    assert compound.column("grid").type == ArrayType(ArrayType(P("F32")))
    assert [c.name for c in compound.unique_columns] == ["key", "code"]
    assert [c.name for c in compound.indexed_columns] == ["key", "code", "created"]
    color, shape = s.typespace[1], s.typespace[2]
    assert isinstance(color, SumType) and color.is_plain_enum
    assert isinstance(shape, SumType) and not shape.is_plain_enum
    assert not s.table("secret").is_public and s.table("compound").is_public
    assert s.table("tick_timer").schedule == ScheduleDef("tick_timer_sched", "tick", 1)
    assert [t.name for t in s.types if t.ref in (6, 7)] == ["FooBar", "foo_bar"]
    assert [(e.name, e.type) for e in s.reducer("add_point").params.elements][3] == ("client", P("String"))


# ---- V10 ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def v10() -> ModuleSchema:
    return load_schema(DATA / "v10.schema.json")


def test_v10_wire_names_are_canonical(v10: ModuleSchema) -> None:
    assert [(t.name, t.accessor_name) for t in v10.tables] == [
        ("player_roster", "Players"),
        ("tick_timer", "tickTimer"),
        ("hit_event", "hitEvents"),
    ]
    assert [(r.name, r.accessor_name) for r in v10.reducers] == [
        ("MovePlayerCanonical", "movePlayer"),
        ("say_hi", "sayHi"),
        ("admin_reset", "adminReset"),
        ("tick", "tick"),
        ("on_connect", "onConnect"),
        ("on_disconnect", "onDisconnect"),
        ("init", "init"),
    ]
    assert v10.table("player_roster").indexes[0] == IndexDef(
        "player_roster_id_idx_btree", "id", "btree", (0,)
    )
    with pytest.raises(KeyError):
        v10.table("Players")  # lookups are by wire name


def test_v10_flags(v10: ModuleSchema) -> None:
    callable_ = {r.name for r in v10.reducers if r.callable}
    assert callable_ == {"MovePlayerCanonical", "say_hi"}
    assert {r.name: r.lifecycle for r in v10.reducers if r.lifecycle} == {
        "init": "init",
        "on_connect": "client_connected",
        "on_disconnect": "client_disconnected",
    }
    roster, timer, hits = v10.tables
    assert (roster.is_public, timer.is_public, hits.is_public) == (True, False, True)
    assert (roster.is_event, timer.is_event, hits.is_event) == (False, False, True)
    assert timer.schedule == ScheduleDef("tickTimer_sched", "tick", 1)
    assert roster.primary_key == (0,) and roster.unique_constraints == ((0,), (1,))
    assert roster.sequences[0].column == 0 and hits.primary_key == ()
    assert {t.name: t.ref for t in v10.types} == {"HitEvent": 3, "Player": 0, "TickTimer": 2, "Vec2": 1}


def test_v10_without_explicit_names_uses_the_source_names() -> None:
    doc = raw("v10.schema.json")
    doc["sections"] = [s for s in doc["sections"] if "ExplicitNames" not in s]
    s = ModuleSchema.from_json(doc)
    assert [t.name for t in s.tables] == ["Players", "tickTimer", "hitEvents"]
    assert s.table("tickTimer").schedule == ScheduleDef("tickTimer_sched", "tick", 1)


def test_v10_schedule_function_gets_its_canonical_name() -> None:
    doc = raw("v10.schema.json")
    for section in doc["sections"]:
        if "ExplicitNames" in section:
            section["ExplicitNames"]["entries"].append(
                {"Function": {"source_name": "tick", "canonical_name": "tick_v2"}}
            )
            section["ExplicitNames"]["entries"].remove(
                {"Function": {"source_name": "tick", "canonical_name": "tick"}}
            )
    s = ModuleSchema.from_json(doc)
    assert s.table("tick_timer").schedule == ScheduleDef("tickTimer_sched", "tick_v2", 1)
    assert s.reducer("tick_v2").accessor_name == "tick"


# ---- lenient forms ------------------------------------------------------------------------------------
def test_plain_forms_of_options_and_unit_enums_are_accepted() -> None:
    doc = raw("blackholio.schema.json")
    plain = copy.deepcopy(doc)
    for t in plain["tables"]:
        t["table_access"] = next(iter(t["table_access"]))
        t["table_type"] = next(iter(t["table_type"]))
        t["schedule"] = t["schedule"].get("some")
        for ix in t["indexes"]:
            ix["name"] = ix["name"]["some"]
    for r in plain["reducers"]:
        r["lifecycle"] = next(iter(r["lifecycle"]["some"])) if "some" in r["lifecycle"] else None
    assert ModuleSchema.from_json(plain) == ModuleSchema.from_json(doc)


def test_hash_and_direct_indexes_and_defaults() -> None:
    doc: dict[str, Any] = {
        "typespace": {
            "types": [
                {
                    "Product": {
                        "elements": [
                            {"name": {"some": "a"}, "algebraic_type": {"U8": []}},
                            {"name": {"some": "b"}, "algebraic_type": {"U32": []}},
                        ]
                    }
                }
            ]
        },
        "tables": [
            {
                "name": "t",
                "product_type_ref": 0,
                "indexes": [
                    {
                        "name": {"none": []},
                        "accessor_name": {"none": []},
                        "algorithm": {"Hash": {"columns": [0, 1]}},
                    },
                    {"name": {"some": "t_a_idx_direct"}, "algorithm": {"Direct": {"column": 0}}},
                ],
                "sequences": [
                    {
                        "column": 1,
                        "start": {"some": 10},
                        "min_value": {"some": 1},
                        "max_value": {"some": 2**100},
                        "increment": 5,
                    }
                ],
                "table_type": {"System": []},
            }
        ],
    }
    s = ModuleSchema.from_json(doc)
    (t,) = s.tables
    assert t.indexes == (
        IndexDef(None, None, "hash", (0, 1)),
        IndexDef("t_a_idx_direct", None, "direct", (0,)),
    )
    assert t.sequences == (SequenceDef(None, 1, 10, 1, 2**100, 5),)
    assert t.is_system and not t.is_public  # table_access defaults to Private
    assert [c.name for c in t.indexed_columns] == ["a"]
    assert s.reducers == () and s.types == ()
