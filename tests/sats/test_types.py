"""The AlgebraicType model: typed SATS-JSON in and out, special type detection, schema errors."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from spacetime_game.sdk.sats import (
    PRIMITIVE_NAMES,
    AlgebraicType,
    ArrayType,
    PrimitiveType,
    ProductElement,
    ProductType,
    RefType,
    SchemaError,
    SumType,
    SumVariant,
    Typespace,
    compile_codec,
)
from tests._support import DATA

P = PrimitiveType
UNIT = ProductType(())

SCHEMAS = ["example_schema.json", "blackholio.schema.json", "quickstart_chat.schema.json"]


def load(name: str) -> dict[str, Any]:
    with open(DATA / name, encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


# --------------------------------------------------------------------------------------------------
# round trips over real schemas
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SCHEMAS)
def test_typespace_round_trip(name: str) -> None:
    schema = load(name)
    raw = schema["typespace"]
    original = copy.deepcopy(raw)
    ts = Typespace.from_json(raw)
    assert raw == original  # parsing does not mutate its input
    assert len(ts) == len(raw["types"]) > 0
    assert ts.to_json() == raw
    for i, ty in enumerate(ts.types):
        assert isinstance(ty, AlgebraicType)
        assert ty.to_json() == raw["types"][i]
        assert AlgebraicType.from_json(ty.to_json()) == ty
    # idempotent, and equal as values
    assert Typespace.from_json(ts.to_json()) == ts


@pytest.mark.parametrize("name", SCHEMAS)
def test_reducer_params_and_table_refs(name: str) -> None:
    schema = load(name)
    ts = Typespace.from_json(schema["typespace"])
    for reducer in schema["reducers"]:
        params = AlgebraicType.from_json({"Product": reducer["params"]})
        assert isinstance(params, ProductType)
        assert params.to_json() == {"Product": reducer["params"]}
        ts.check_refs([(f"reducer {reducer['name']}", params)])
        compile_codec(params, ts)  # every reducer's argument type compiles
    for table in schema["tables"]:
        row = ts.resolve(RefType(table["product_type_ref"]))
        assert isinstance(row, ProductType)
        compile_codec(RefType(table["product_type_ref"]), ts)


def test_blackholio_types_are_read_as_expected() -> None:
    ts = Typespace.from_json(load("blackholio.schema.json")["typespace"])
    circle = ts[0]
    assert isinstance(circle, ProductType)
    assert circle.names == ("entity_id", "player_id", "direction", "speed", "last_split_time")
    assert circle.elements[2].type == RefType(1)
    assert circle.elements[4].type.special_kind == "timestamp"
    assert ts[1] == AlgebraicType.product(x=P("F32"), y=P("F32"))
    timer = ts[2]
    assert isinstance(timer, ProductType)
    assert timer.elements[1].type.special_kind == "schedule_at"
    assert timer.elements[1].type == AlgebraicType.special("schedule_at")
    player = ts[10]
    assert isinstance(player, ProductType)
    assert player.elements[0].type.special_kind == "identity"
    assert repr(player) == "Product{identity: Identity, player_id: I32, name: String}"


def test_quickstart_chat_option_column() -> None:
    ts = Typespace.from_json(load("quickstart_chat.schema.json")["typespace"])
    user = ts[1]
    assert isinstance(user, ProductType)
    name = user.elements[1].type
    assert name.special_kind == "option"
    assert name == AlgebraicType.option(P("String"))
    assert repr(name) == "Option<String>"


@pytest.mark.parametrize("name", PRIMITIVE_NAMES)
def test_primitive_json(name: str) -> None:
    assert P(name).to_json() == {name: []}
    assert AlgebraicType.from_json({name: []}) == P(name)


def test_constructed_types_json_round_trip() -> None:
    types: list[AlgebraicType] = [
        ArrayType(P("U8")),
        ArrayType(ArrayType(RefType(3))),
        UNIT,
        ProductType((ProductElement(None, P("U8")), ProductElement("b", P("String")))),
        SumType((SumVariant(None, UNIT), SumVariant("x", ArrayType(P("I256"))))),
        SumType(()),
        AlgebraicType.option(AlgebraicType.option(P("Bool"))),
        AlgebraicType.result(P("U32"), P("String")),
        *(AlgebraicType.special(k) for k in SPECIAL_KINDS),
    ]
    for ty in types:
        js = ty.to_json()
        json.dumps(js)  # plain JSON
        assert AlgebraicType.from_json(js) == ty
        assert AlgebraicType.from_json(json.loads(json.dumps(js))) == ty
    assert ProductType((ProductElement(None, P("U8")),)).to_json() == {
        "Product": {"elements": [{"name": {"none": []}, "algebraic_type": {"U8": []}}]}
    }
    assert RefType(7).to_json() == {"Ref": 7}


def test_lenient_names() -> None:
    """A bare string or null is accepted as an element name."""
    ty = AlgebraicType.from_json(
        {
            "Product": {
                "elements": [
                    {"name": "a", "algebraic_type": {"U8": []}},
                    {"name": None, "algebraic_type": {"U8": []}},
                    {"algebraic_type": {"U8": []}},
                ]
            }
        }
    )
    assert isinstance(ty, ProductType)
    assert ty.names == ("a", None, None)


def test_constructors() -> None:
    assert AlgebraicType.product(a=P("U8"), b=P("Bool")) == ProductType(
        (ProductElement("a", P("U8")), ProductElement("b", P("Bool")))
    )
    assert AlgebraicType.sum(A=UNIT, B=P("U8")) == SumType((SumVariant("A", UNIT), SumVariant("B", P("U8"))))
    assert AlgebraicType.array(P("U8")) == ArrayType(P("U8"))
    assert AlgebraicType.array(P("U8")).is_bytes
    assert not AlgebraicType.array(P("I8")).is_bytes
    assert AlgebraicType.sum(A=UNIT, B=UNIT).is_plain_enum
    assert not AlgebraicType.sum(A=UNIT, B=P("U8")).is_plain_enum
    with pytest.raises(ValueError):
        P("U7")
    with pytest.raises(ValueError):
        AlgebraicType.special("nope")
    # types are immutable, hashable values
    assert hash(AlgebraicType.option(P("U8"))) == hash(AlgebraicType.option(P("U8")))
    with pytest.raises(AttributeError):
        P("U8").name = "U16"  # type: ignore[misc]


def test_reprs() -> None:
    assert repr(P("U8")) == "U8"
    assert repr(ArrayType(P("String"))) == "Array<String>"
    assert repr(AlgebraicType.option(P("U8"))) == "Option<U8>"
    assert repr(AlgebraicType.result(P("U8"), P("String"))) == "Result<U8, String>"
    assert repr(AlgebraicType.special("schedule_at")) == "ScheduleAt"
    assert repr(AlgebraicType.special("identity")) == "Identity"
    assert repr(RefType(2)) == "Ref(2)"
    assert repr(AlgebraicType.product(a=P("U8"))) == "Product{a: U8}"
    assert repr(AlgebraicType.sum(A=P("U8"))) == "Sum{A: U8}"


# --------------------------------------------------------------------------------------------------
# special kinds
# --------------------------------------------------------------------------------------------------
SPECIAL_KINDS = ["identity", "connection_id", "timestamp", "time_duration", "uuid", "schedule_at"]
SPECIAL_FIELDS = {
    "identity": ("__identity__", "U256"),
    "connection_id": ("__connection_id__", "U128"),
    "timestamp": ("__timestamp_micros_since_unix_epoch__", "I64"),
    "time_duration": ("__time_duration_micros__", "I64"),
    "uuid": ("__uuid__", "U128"),
}


@pytest.mark.parametrize("kind", sorted(SPECIAL_FIELDS))
def test_special_products_are_detected_by_shape(kind: str) -> None:
    field, inner = SPECIAL_FIELDS[kind]
    ty = ProductType((ProductElement(field, P(inner)),))
    assert ty.special_kind == kind
    assert AlgebraicType.special(kind) == ty
    assert AlgebraicType.from_json(ty.to_json()).special_kind == kind
    # the wrong inner type, an extra field or a different name: an ordinary product
    wrong_inner = "U64" if inner != "U64" else "I64"
    assert ProductType((ProductElement(field, P(wrong_inner)),)).special_kind is None
    assert ProductType((ProductElement(field, P(inner)), ProductElement("x", P("U8")))).special_kind is None
    assert ProductType((ProductElement(field + "x", P(inner)),)).special_kind is None
    assert ProductType((ProductElement(None, P(inner)),)).special_kind is None
    # a special as a sum variant does not make the sum special
    assert SumType((SumVariant(field, P(inner)),)).special_kind is None


def test_sum_special_kinds() -> None:
    td, ts = AlgebraicType.special("time_duration"), AlgebraicType.special("timestamp")
    assert SumType((SumVariant("Interval", td), SumVariant("Time", ts))).special_kind == "schedule_at"
    assert SumType((SumVariant("Time", ts), SumVariant("Interval", td))).special_kind is None
    assert SumType((SumVariant("Interval", ts), SumVariant("Time", td))).special_kind is None
    assert SumType((SumVariant("Interval", P("I64")), SumVariant("Time", P("I64")))).special_kind is None
    assert AlgebraicType.option(P("U8")).special_kind == "option"
    assert SumType((SumVariant("some", P("U8")), SumVariant("none", P("U8")))).special_kind is None
    assert SumType((SumVariant("none", UNIT), SumVariant("some", P("U8")))).special_kind is None
    assert SumType((SumVariant("some", P("U8")),)).special_kind is None
    assert AlgebraicType.result(P("U8"), P("String")).special_kind == "result"
    assert SumType((SumVariant("err", P("U8")), SumVariant("ok", P("U8")))).special_kind is None
    assert AlgebraicType.sum(A=UNIT).special_kind is None
    assert SumType(()).special_kind is None


def test_non_special_types() -> None:
    for ty in (P("U256"), ArrayType(P("U8")), RefType(0), UNIT, AlgebraicType.product(x=P("I64"))):
        assert ty.special_kind is None


# --------------------------------------------------------------------------------------------------
# schema errors
# --------------------------------------------------------------------------------------------------
def _el(name: str, ty: Any) -> dict[str, Any]:
    return {"name": {"some": name}, "algebraic_type": ty}


def test_dangling_ref_in_typespace() -> None:
    raw = {"types": [{"Product": {"elements": [_el("a", {"U8": []}), _el("b", {"Ref": 3})]}}]}
    with pytest.raises(SchemaError) as info:
        Typespace.from_json(raw)
    assert info.value.path == "typespace.types[0].b"
    assert "dangling Ref 3" in str(info.value)
    assert "typespace.types[0].b" in str(info.value)


def test_dangling_ref_deep_in_a_typespace() -> None:
    raw = {
        "types": [
            {"U8": []},
            {
                "Sum": {
                    "variants": [
                        _el("A", {"U8": []}),
                        _el("B", {"Array": {"Product": {"elements": [_el("x", {"Ref": 2})]}}}),
                    ]
                }
            },
        ]
    }
    with pytest.raises(SchemaError) as info:
        Typespace.from_json(raw)
    assert info.value.path == "typespace.types[1]::B[].x"


def test_dangling_ref_in_extra_types() -> None:
    ts = Typespace((P("U8"),))
    ts.check_refs([("reducer add", AlgebraicType.product(a=RefType(0)))])
    with pytest.raises(SchemaError) as info:
        ts.check_refs([("reducer add", AlgebraicType.product(a=RefType(0), b=RefType(1)))])
    assert info.value.path == "reducer add.b"


def test_dangling_ref_when_compiling() -> None:
    with pytest.raises(SchemaError) as info:
        compile_codec(RefType(2))
    assert info.value.path == "Ref(2)"
    with pytest.raises(SchemaError) as info:
        compile_codec(AlgebraicType.product(a=ArrayType(RefType(5))), Typespace((P("U8"),)))
    assert info.value.path == "Ref(5)"
    with pytest.raises(SchemaError) as info:
        Typespace((P("U8"),)).resolve(RefType(1))
    assert info.value.path == "Ref(1)"


def test_ref_cycle_without_structure() -> None:
    ts = Typespace((RefType(1), RefType(0)))
    with pytest.raises(SchemaError) as info:
        ts.resolve(RefType(0))
    assert info.value.path == "Ref(0)"
    with pytest.raises(SchemaError):
        compile_codec(RefType(0), ts)


@pytest.mark.parametrize(
    ("raw", "path", "words"),
    [
        ({"Foo": []}, "type", "unknown type tag 'Foo'"),
        ({"Product": {"elements": [_el("a", {"u8": []})]}}, "type.a", "unknown type tag 'u8'"),
        ({"Array": {"Array": {"Bar": []}}}, "type[][]", "unknown type tag 'Bar'"),
        ({"Sum": {"variants": [_el("A", {"U8": []}), _el("B", {"X": 1})]}}, "type::B", "unknown type tag"),
        ("U8", "type", "single-key object"),
        ({"U8": [], "U16": []}, "type", "single-key object"),
        ({}, "type", "single-key object"),
        (None, "type", "single-key object"),
        ({"Product": {}}, "type", '"elements"'),
        ({"Product": {"elements": {}}}, "type", '"elements"'),
        ({"Sum": {"elements": []}}, "type", '"variants"'),
        ({"Product": {"elements": [{"name": {"some": "a"}}]}}, "type.elements[0]", "algebraic_type"),
        ({"Sum": {"variants": [{"name": {"some": "a"}}]}}, "type.variants[0]", "algebraic_type"),
        ({"Product": {"elements": [7]}}, "type.elements[0]", "algebraic_type"),
        (
            {"Product": {"elements": [{"name": {"some": 5}, "algebraic_type": {"U8": []}}]}},
            "type.elements[0].name",
            '{"some": "<name>"}',
        ),
        (
            {"Product": {"elements": [{"name": 5, "algebraic_type": {"U8": []}}]}},
            "type.elements[0].name",
            '{"some": "<name>"}',
        ),
        ({"Ref": -1}, "type", "non-negative"),
        ({"Ref": "0"}, "type", "non-negative"),
        ({"Ref": True}, "type", "non-negative"),
        ({"Ref": 1.0}, "type", "non-negative"),
        (
            {"Sum": {"variants": [_el(f"v{i}", {"U8": []}) for i in range(257)]}},
            "type",
            "at most 256 variants",
        ),
    ],
)
def test_schema_errors_name_the_path(raw: Any, path: str, words: str) -> None:
    with pytest.raises(SchemaError) as info:
        AlgebraicType.from_json(raw)
    assert info.value.path == path
    assert words in info.value.reason
    assert str(info.value).startswith(f"invalid schema at {path}: ")


def test_256_variants_are_allowed() -> None:
    raw = {"Sum": {"variants": [_el(f"v{i}", {"U8": []}) for i in range(256)]}}
    ty = AlgebraicType.from_json(raw)
    assert isinstance(ty, SumType)
    assert len(ty.variants) == 256
    codec = compile_codec(ty)
    assert codec.decode(b"\xff\x07").tag == 255


@pytest.mark.parametrize("raw", [None, [], {"types": {}}, {"typs": []}, {"types": "x"}])
def test_typespace_shape_errors(raw: Any) -> None:
    with pytest.raises(SchemaError) as info:
        Typespace.from_json(raw)
    assert info.value.path == "typespace"


def test_typespace_entry_error_path() -> None:
    with pytest.raises(SchemaError) as info:
        Typespace.from_json({"types": [{"U8": []}, {"Nope": []}]})
    assert info.value.path == "typespace.types[1]"


def test_schema_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        AlgebraicType.from_json({"Nope": []})
