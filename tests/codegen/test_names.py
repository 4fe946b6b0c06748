"""Naming and formatting helpers of the generator, and a module whose names collide with everything the
generated code uses itself (keywords, builtins, the names of the generated code's own imports)."""

from __future__ import annotations

import inspect
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from spacetime_game.codegen._fmt import LINE, split_expr
from spacetime_game.codegen._names import NameSpace, camel_case, safe_identifier, snake_case
from spacetime_game.sdk.schema import ModuleSchema

from ._helpers import RecordingClient, forget, import_generated, subprocess_env, tool


@pytest.mark.parametrize(
    ("name", "snake", "camel"),
    [
        ("PlayerInput", "player_input", "PlayerInput"),
        ("DbVector2", "db_vector2", "DbVector2"),
        ("logged_out_player", "logged_out_player", "LoggedOutPlayer"),
        ("HTTPServer", "http_server", "HTTPServer"),
        ("AllPrims", "all_prims", "AllPrims"),
        ("foo_bar", "foo_bar", "FooBar"),
        ("FooBar", "foo_bar", "FooBar"),
        ("kebab-case", "kebab_case", "KebabCase"),
        ("class", "class_", "Class"),
        ("2d", "_2d", "_2d"),
        ("_private", "_private", "Private"),
    ],
)
def test_snake_and_camel_case(name: str, snake: str, camel: str) -> None:
    assert snake_case(name) == snake
    assert camel_case(name) == camel


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("class", "class_"),
        ("from", "from_"),
        ("match", "match_"),
        ("None", "None_"),
        ("a b", "a_b"),
        ("1", "_1"),
    ],
)
def test_safe_identifier(name: str, safe: str) -> None:
    assert safe_identifier(name) == safe
    assert safe.isidentifier()


def test_namespace_hands_out_unique_names() -> None:
    files = NameSpace({"_module"})
    assert [files.take(n) for n in ["player", "Player", "player", "_module"]] == [
        "player",
        "Player_2",
        "player_3",
        "_module_2",
    ]
    idents = NameSpace({"Any"}, fold_case=False)
    assert [idents.take(n) for n in ["any", "Any", "any"]] == ["any", "Any_2", "any_2"]


# ---- formatting like ruff ---------------------------------------------------------------------------------
def _cases() -> list[str]:
    """Single-line statements around the 88-column limit, in the shapes the generator emits."""
    out = []
    for n in (2, 5, 9, 14, 30):
        types = ", ".join(
            ["int", '"Point"', "list[Point]", "str | None", "dict[str, Any]"][i % 5] for i in range(n)
        )
        out.append(f"class Row{n}(tuple[{types}]):\n    pass")
        out.append(
            f"_Callback: TypeAlias = Callable[[Identity, ConnectionId | None, str, str, {types}], None]"
        )
        out.append(f"_RowUpdate: TypeAlias = Callable[[str, 'Row{n} | None', 'Row{n} | None', Any], None]")
    for width in (40, 60, 75, 80, 85, 95, 120):
        name = "a" * width
        out.append(f"x = call({name}, b)")
        out.append(f"class C{width}(tuple[{name}]):\n    pass")
        out.append(f"value = f(g([{name}, 'x, y'], h({name[:10]}, 2)), 3)")
    return out


def test_split_expr_formats_like_ruff() -> None:
    ours = []
    for case in _cases():
        first, *rest = case.split("\n")
        ours.append("\n".join([*split_expr("", first.replace("'", '"')), *rest]))
    source = "\n\n\n".join(c.replace("'", '"') for c in _cases()) + "\n"
    proc = subprocess.run(
        [tool("ruff"), "format", "--isolated", "--no-cache", "-"],
        input=source,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "\n\n\n".join(ours) + "\n" == proc.stdout
    assert max(len(line) for text in ours for line in text.split("\n") if "aaaaaaaaaa" not in line) <= LINE


# ---- a module whose names collide with the generated code's own ------------------------------------------
def _p(name: str) -> dict[str, Any]:
    return {name: []}


def _elements(*fields: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"elements": [{"name": {"some": n}, "algebraic_type": t} for n, t in fields]}


UNIT: dict[str, Any] = {"Product": {"elements": []}}
AWKWARD: dict[str, Any] = {
    "typespace": {
        "types": [
            # 0: table "Thing": columns named like builtins, like names __new__ and the methods use,
            # like the class itself, and dunder names
            {
                "Product": _elements(
                    ("cls", _p("U8")),
                    ("tuple", _p("U8")),
                    ("values", _p("U8")),
                    ("int", _p("I32")),
                    ("str", _p("String")),
                    ("_b", _p("Bool")),
                    ("row", _p("U16")),
                    ("rows", _p("U16")),
                    ("Thing", _p("U8")),
                    ("__x", _p("U8")),
                    ("filter_by_int", _p("U8")),
                    ("env", {"Ref": 1}),
                )
            },
            # 1: a named product (not a table) with anonymous product fields
            {
                "Product": _elements(
                    ("meta", {"Product": _elements(("k", _p("String")), ("v", _p("I64")))}),
                    ("raw", {"Product": {"elements": [{"name": {"none": []}, "algebraic_type": _p("U8")}]}}),
                    ("int", _p("I32")),
                )
            },
            # 2: a sum whose variants are named like builtins and dunders
            {
                "Sum": {
                    "variants": [
                        {"name": {"some": n}, "algebraic_type": t}
                        for n, t in [("int", _p("I32")), ("__init__", UNIT), ("Name", _p("String"))]
                    ]
                }
            },
            # 3: a plain enum with a dunder and a sunder variant
            {
                "Sum": {
                    "variants": [
                        {"name": {"some": n}, "algebraic_type": UNIT}
                        for n in ["__init__", "_x_", "name", "Ok"]
                    ]
                }
            },
            # 4: a product named like the call handle that reducer functions return
            {"Product": _elements(("x", _p("U8")))},
        ]
    },
    "tables": [
        {
            "name": "Thing",
            "product_type_ref": 0,
            "primary_key": [3],
            "constraints": [{"name": {"some": "thing_int_key"}, "data": {"Unique": {"columns": [3]}}}],
            "table_access": {"Public": []},
        }
    ],
    "reducers": [
        {
            "name": "json",
            "params": _elements(
                ("reducer_name", _p("String")),
                ("MODULE", _p("U8")),
                ("_b", _p("U8")),
                ("__x", _p("U8")),
                ("args", _p("U8")),
                ("str", _p("String")),
                ("e", {"Ref": 1}),
                ("k", {"Ref": 2}),
                ("m", {"Ref": 3}),
            ),
        },
        {"name": "int", "params": _elements(("callback", _p("U8")))},
        {"name": "call", "params": _elements(("c", {"Ref": 4}))},
    ],
    "types": [
        {"name": {"scope": [], "name": n}, "ty": i, "custom_ordering": True}
        for i, n in enumerate(["Thing", "Envelope", "Kind", "Mode", "ReducerCall"])
    ],
}


@pytest.fixture(scope="module")
def awkward(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("awkward")
    pkg = import_generated(ModuleSchema.from_json(AWKWARD), root, "awkward.json")
    yield pkg, root / pkg.__name__
    forget(pkg)


def test_awkward_names_import_and_work(awkward: tuple[ModuleType, Path]) -> None:
    pkg, _ = awkward
    params = list(inspect.signature(pkg.Thing).parameters)
    assert params == [
        "cls_2",
        "tuple_2",
        "values_2",
        "int_2",
        "str_2",
        "_b_2",
        "row",
        "rows",
        "Thing_2",
        "_x",
        "filter_by_int_",
        "env",
    ]
    env = pkg.Envelope({"k": "a", "v": 1}, (7,), 3)
    thing = pkg.Thing(1, 2, 3, 4, "s", True, 5, 6, 7, 8, 9, env)
    assert (thing.cls_2, thing.tuple_2, thing.values_2, thing.int_2, thing.str_2, thing._b_2) == (
        1,
        2,
        3,
        4,
        "s",
        True,
    )
    assert (thing.row, thing.rows, thing.Thing_2, thing._x, thing.filter_by_int_) == (5, 6, 7, 8, 9)
    codec = pkg.MODULE.table("Thing").codec
    assert codec.decode(codec.encode(thing)) == thing
    client = RecordingClient(pkg.MODULE)
    client.rows["Thing"] = [thing]
    assert pkg.Thing.filter_by_int(4, client=client) is thing
    assert list(pkg.Thing.filter_by_rows(6, client=client)) == [thing]
    assert list(pkg.Thing.filter_by_row(5, client=client)) == [thing]
    assert list(pkg.Thing.filter_by_filter_by_int(9, client=client)) == [thing]
    assert client.calls[0] == ("find_row", "Thing", "int", 4)

    assert pkg.Kind.int_2(5).value == 5 and pkg.Kind._init().tag == 1 and pkg.Kind.name_2("n").tag == 2
    assert [m.name for m in pkg.Mode] == ["_init", "_x", "name_2", "Ok"]

    # a reducer called ``json`` whose parameters are named like the reducer module's own names
    assert "json_2" in pkg.__all__ and "int_2" in pkg.__all__
    args = ["r", 1, 2, 3, 4, "s", env, pkg.Kind.int_2(-1), pkg.Mode.Ok]
    pkg.json_2(*args, client=client)
    (_, wire, data, _) = client.calls[-1]
    assert wire == "json"
    assert pkg.MODULE.reducer("json").decode_args(data) == args
    pkg.int_2(1, client=client)
    assert client.calls[-1][:3] == ("call_reducer", "int", b"\x01")

    # a type named like the call handle that reducer functions return (``ReducerCall``) is renamed
    assert "ReducerCall" not in pkg.__all__ and "ReducerCall_2" in pkg.__all__
    pkg.call(pkg.ReducerCall_2(7), client=client)
    assert client.calls[-1][:3] == ("call_reducer", "call", b"\x07")


def test_awkward_names_pass_ruff_and_mypy(awkward: tuple[ModuleType, Path]) -> None:
    _, folder = awkward
    for args in (["check"], ["format", "--check"]):
        proc = subprocess.run(
            [tool("ruff"), *args, "--no-cache", "--isolated", folder.name],
            cwd=folder.parent,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = subprocess.run(
        [tool("mypy"), "--strict", "--cache-dir", str(folder.parent / ".mypy"), folder.name],
        cwd=folder.parent,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
