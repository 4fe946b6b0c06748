"""A broken schema is one :class:`SchemaError` whose path says where, never another exception."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from spacetime_game.sdk import SchemaError, SpacetimeError
from spacetime_game.sdk.schema import ModuleSchema, load_schema

DATA = Path(__file__).resolve().parent.parent / "data"
EXAMPLE: dict[str, Any] = json.loads((DATA / "example_schema.json").read_text(encoding="utf-8"))
V10: dict[str, Any] = json.loads((DATA / "v10.schema.json").read_text(encoding="utf-8"))
UNIT: dict[str, Any] = {"Product": {"elements": []}}


def error(obj: Any) -> SchemaError:
    with pytest.raises(SchemaError) as info:
        ModuleSchema.from_json(obj)
    err = info.value
    assert isinstance(err, SpacetimeError) and isinstance(err, ValueError)
    assert str(err) == f"invalid schema at {err.path}: {err.reason}"
    return err


def changed(base: dict[str, Any], change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    change(doc)
    return doc


def section(doc: dict[str, Any], name: str) -> Any:
    return next(s[name] for s in doc["sections"] if name in s)


def elem(doc: dict[str, Any]) -> dict[str, Any]:
    """The first column of the example's row type."""
    e: dict[str, Any] = doc["typespace"]["types"][0]["Product"]["elements"][0]
    return e


@pytest.mark.parametrize(
    ("obj", "path", "reason"),
    [
        ([], "schema", "expected a JSON object, got list"),
        ("V9", "schema", "expected a JSON object, got str"),
        ({"tables": []}, "schema", "not a module schema"),
        ({"V8BackCompat": {}}, "schema", "V8 schemas are not supported"),
        ({"V9": []}, "V9", "valid dictionary"),
        ({"V10": {}}, "V10.sections", "Field required"),
    ],
)
def test_not_a_schema(obj: Any, path: str, reason: str) -> None:
    err = error(obj)
    assert err.path == path
    assert reason in err.reason


V9_CASES: list[tuple[str, Callable[[dict[str, Any]], Any], str, str]] = [
    ("typespace-not-object", lambda d: d.update(typespace=1), "V9.typespace", "valid dictionary"),
    ("types-not-list", lambda d: d["typespace"].update(types=5), "V9.typespace.types", "valid list"),
    (
        "unknown-type",
        lambda d: d["typespace"]["types"].__setitem__(0, {"Float": []}),
        "V9.typespace.types[0]",
        "unknown type tag 'Float'",
    ),
    (
        "unknown-nested-type",
        lambda d: elem(d).update(algebraic_type={"Array": {"Nope": []}}),
        "V9.typespace.types[0].name[]",
        "unknown type tag 'Nope'",
    ),
    (
        "dangling-ref-in-typespace",
        lambda d: elem(d).update(algebraic_type={"Ref": 3}),
        "V9.typespace.types[0].name",
        "dangling Ref 3: typespace has 1 entries",
    ),
    (
        "dangling-ref-in-params",
        lambda d: d["reducers"][0]["params"]["elements"][0].update(algebraic_type={"Ref": 1}),
        "V9.reducers[0](add).params.name",
        "dangling Ref 1",
    ),
    (
        "negative-ref",
        lambda d: d["reducers"][0]["params"]["elements"][0].update(algebraic_type={"Ref": -1}),
        "V9.reducers[0].params.name",
        "Ref must be a non-negative integer",
    ),
    (
        "params-not-product",
        lambda d: d["reducers"][0].update(params={"U8": []}),
        "V9.reducers[0].params",
        "expected a product type",
    ),
    (
        "too-many-variants",
        lambda d: d["typespace"]["types"].append(
            {"Sum": {"variants": [{"name": {"some": f"v{i}"}, "algebraic_type": UNIT} for i in range(257)]}}
        ),
        "V9.typespace.types[1]",
        "at most 256 variants",
    ),
    (
        "dangling-table-ref",
        lambda d: d["tables"][0].update(product_type_ref=1),
        "V9.tables[0](person).product_type_ref",
        "dangling type reference 1",
    ),
    (
        "row-not-product",
        lambda d: d["typespace"]["types"].__setitem__(0, {"U8": []}),
        "V9.tables[0](person).product_type_ref",
        "not a product type",
    ),
    (
        "ref-cycle",
        lambda d: (d["typespace"]["types"].append({"Ref": 1}), d["tables"][0].update(product_type_ref=1)),
        "V9.tables[0](person).product_type_ref",
        "reference cycle",
    ),
    (
        "unnamed-column",
        lambda d: elem(d).update(name={"none": []}),
        "V9.tables[0](person).columns[0]",
        "a table column has no name",
    ),
    (
        "primary-key",
        lambda d: d["tables"][0].update(primary_key=[1]),
        "V9.tables[0](person).primary_key",
        "column id 1 is out of range (the row has 1 columns)",
    ),
    (
        "constraint",
        lambda d: d["tables"][0].update(constraints=[{"data": {"Unique": {"columns": [0, 2]}}}]),
        "V9.tables[0](person).constraints[0]",
        "column id 2 is out of range",
    ),
    (
        "index",
        lambda d: d["tables"][0].update(indexes=[{"algorithm": {"Direct": {"column": 5}}}]),
        "V9.tables[0](person).indexes[0]",
        "column id 5 is out of range",
    ),
    (
        "sequence",
        lambda d: d["tables"][0].update(sequences=[{"column": -1}]),
        "V9.tables[0](person).sequences[0]",
        "column id -1 is out of range",
    ),
    (
        "schedule-column",
        lambda d: d["tables"][0].update(schedule={"some": {"reducer_name": "add", "scheduled_at_column": 4}}),
        "V9.tables[0](person).schedule",
        "column id 4 is out of range",
    ),
    (
        "scheduled-reducer",
        lambda d: d["tables"][0].update(
            schedule={"some": {"reducer_name": "nope", "scheduled_at_column": 0}}
        ),
        "V9.tables[0](person).schedule",
        "scheduled reducer 'nope' does not exist",
    ),
    ("type-name-ref", lambda d: d["types"][0].update(ty=5), "V9.types[0].ty", "dangling type reference 5"),
    ("missing-name", lambda d: d["tables"][0].pop("name"), "V9.tables[0].name", "Field required"),
    ("missing-params", lambda d: d["reducers"][2].pop("params"), "V9.reducers[2].params", "Field required"),
    (
        "wrong-type",
        lambda d: d["tables"][0].update(primary_key="x"),
        "V9.tables[0].primary_key",
        "valid list",
    ),
    (
        "unknown-access",
        lambda d: d["tables"][0].update(table_access={"Protected": []}),
        "V9.tables[0].table_access",
        "'Public' or 'Private'",
    ),
    (
        "unknown-lifecycle",
        lambda d: d["reducers"][1].update(lifecycle={"some": {"OnFire": []}}),
        "V9.reducers[1].lifecycle",
        "'Init', 'OnConnect' or 'OnDisconnect'",
    ),
    (
        "bad-element",
        lambda d: d["typespace"]["types"][0]["Product"]["elements"].append(5),
        "V9.typespace.types[0].elements[1]",
        "expected {name, algebraic_type}, got 5",
    ),
]


@pytest.mark.parametrize(
    ("change", "path", "reason"), [c[1:] for c in V9_CASES], ids=[c[0] for c in V9_CASES]
)
def test_broken_v9(change: Callable[[dict[str, Any]], Any], path: str, reason: str) -> None:
    err = error(changed(EXAMPLE, change))
    assert err.path == path
    assert reason in err.reason
    wrapped = error({"V9": changed(EXAMPLE, change)})
    assert (wrapped.path, wrapped.reason) == (err.path, err.reason)


V10_CASES: list[tuple[str, Callable[[dict[str, Any]], Any], str, str]] = [
    ("sections-not-list", lambda d: d.update(sections=3), "V10.sections", "valid list"),
    ("section-not-object", lambda d: d["sections"].append(5), "V10.sections[9]", "valid dictionary"),
    (
        "no-typespace",
        lambda d: d.update(sections=[s for s in d["sections"] if "Typespace" not in s]),
        "V10.sections",
        "no Typespace section",
    ),
    (
        "tables-not-list",
        lambda d: d["sections"].__setitem__(2, {"Tables": 3}),
        "V10.Tables",
        "expected a list, got int",
    ),
    (
        "missing-source-name",
        lambda d: section(d, "Tables")[0].pop("source_name"),
        "V10.Tables[0].source_name",
        "Field required",
    ),
    (
        "explicit-name-incomplete",
        lambda d: section(d, "ExplicitNames")["entries"].append({"Table": {"source_name": "x"}}),
        "V10.ExplicitNames.entries[13].mapping.canonical_name",
        "Field required",
    ),
    (
        "explicit-name-kind",
        lambda d: section(d, "ExplicitNames")["entries"].append(
            {"Column": {"source_name": "x", "canonical_name": "y"}}
        ),
        "V10.ExplicitNames.entries[13].kind",
        "'Table', 'Function' or 'Index'",
    ),
    (
        "lifecycle",
        lambda d: section(d, "LifeCycleReducers")[0].update(lifecycle_spec={"OnFire": []}),
        "V10.LifeCycleReducers[0].lifecycle_spec",
        "'Init', 'OnConnect' or 'OnDisconnect'",
    ),
    (
        "visibility",
        lambda d: section(d, "Reducers")[0].update(visibility={"Public": []}),
        "V10.Reducers[0].visibility",
        "'Private' or 'ClientCallable'",
    ),
    (
        "scheduled-function",
        lambda d: section(d, "Schedules")[0].update(function_name="nope"),
        "V10.Tables[1](tickTimer).schedule",
        "scheduled reducer 'nope' does not exist",
    ),
    (
        "schedule-column",
        lambda d: section(d, "Schedules")[0].update(schedule_at_col=9),
        "V10.Tables[1](tickTimer).schedule",
        "column id 9 is out of range (the row has 2 columns)",
    ),
    (
        "dangling-ref-in-params",
        lambda d: section(d, "Reducers")[0]["params"]["elements"][0].update(algebraic_type={"Ref": 40}),
        "V10.Reducers[0](movePlayer).params.pos",
        "dangling Ref 40: typespace has 4 entries",
    ),
    (
        "type-name-ref",
        lambda d: section(d, "Types")[0].update(ty=40),
        "V10.Types[0].ty",
        "dangling type reference 40",
    ),
    (
        "primary-key",
        lambda d: section(d, "Tables")[2].update(primary_key=[5]),
        "V10.Tables[2](hitEvents).primary_key",
        "column id 5 is out of range",
    ),
    (
        "dangling-table-ref",
        lambda d: section(d, "Tables")[0].update(product_type_ref=4),
        "V10.Tables[0](Players).product_type_ref",
        "dangling type reference 4",
    ),
]


@pytest.mark.parametrize(
    ("change", "path", "reason"), [c[1:] for c in V10_CASES], ids=[c[0] for c in V10_CASES]
)
def test_broken_v10(change: Callable[[dict[str, Any]], Any], path: str, reason: str) -> None:
    err = error(changed(V10, change))
    assert err.path == path
    assert reason in err.reason


def test_bad_json_has_line_and_column(tmp_path: Path) -> None:
    with pytest.raises(SchemaError) as info:
        ModuleSchema.from_text('{\n  "typespace": {"types": [}\n}', "mod.json")
    assert info.value.path == "mod.json:2:27"
    assert info.value.reason.startswith("invalid JSON: ")
    path = tmp_path / "bad.json"
    path.write_text('{"typespace": 1,}', encoding="utf-8")
    with pytest.raises(SchemaError) as info:
        load_schema(path)
    assert info.value.path == f"{path}:1:17"
    assert info.value.reason == "invalid JSON: Expecting property name enclosed in double quotes"


@pytest.mark.parametrize(
    "data", [b"\xff\xfe not json", b'{"name": "caf\xe9"}'], ids=["utf-16-bom", "latin-1"]
)
def test_text_that_is_not_utf8(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(data)
    with pytest.raises(SchemaError) as info:
        load_schema(path)
    assert info.value.path == str(path)
    assert info.value.reason.startswith("invalid JSON: not utf-")


def test_unreadable_files(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.json", tmp_path):
        with pytest.raises(SchemaError) as info:
            load_schema(path)
        assert info.value.path == str(path)
        assert info.value.reason.startswith("cannot read the file: ")
