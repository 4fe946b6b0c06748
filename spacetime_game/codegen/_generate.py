"""``ModuleSchema`` -> the source files of a ``module_bindings`` package.

The output follows the documented shape of the 0.x Python SDK (``<table>.py`` with ``filter_by_<col>``,
``iter``, ``register_row_update``; ``<reducer>_reducer.py`` with ``<reducer>()`` and
``register_on_<reducer>``), plus ``on_insert``/``on_update``/``on_delete``. It needs only
``spacetime_game.sdk`` at run time, and it is formatted for ruff and typed for ``mypy --strict``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..sdk.sats import AlgebraicType, ArrayType, PrimitiveType, ProductType, RefType, SumType
from ..sdk.schema import ModuleSchema, TableDef
from ._fmt import LINE, bracket, q, sort_names, split_expr
from ._names import NameSpace, camel_case, safe_identifier, snake_case

__all__ = ["generate_package", "write_package"]

#: names generated classes use in annotations: a field property of that name would shadow them
_HINT_NAMES = {
    "int",
    "str",
    "bool",
    "float",
    "bytes",
    "list",
    "dict",
    "tuple",
    "object",
    "Any",
    "ClassVar",
    "Self",
    "cast",
    "Iterator",
    "Callable",
    "TypeAlias",
    "Identity",
    "ConnectionId",
    "Timestamp",
    "TimeDuration",
    "ScheduleAt",
    "ReducerCall",
    "Some",
    "SumValue",
    "uuid",
    "enum",
    "MODULE",
    "_b",
}
#: names a product's fields may not take: tuple methods, names ``__new__`` uses, names in hints
_PRODUCT_RESERVED = {"count", "index", "cls", "values"} | _HINT_NAMES
_TABLE_RESERVED = _PRODUCT_RESERVED | {
    "iter",
    "is_table_class",
    "table_name",
    "primary_key",
    "column_names",
    "register_row_update",
    "unregister_row_update",
    "on_insert",
    "on_update",
    "on_delete",
    "remove_on_insert",
    "remove_on_update",
    "remove_on_delete",
}
_SPECIAL_HINT = {
    "identity": "Identity",
    "connection_id": "ConnectionId",
    "timestamp": "Timestamp",
    "time_duration": "TimeDuration",
}
_CLIENT_T = "_b.BindingsClient | None"


@dataclass
class _Imports:
    sdk: set[str] = field(default_factory=set)
    sats: set[str] = field(default_factory=set)
    local: dict[str, str] = field(default_factory=dict)  # class -> module
    std: set[str] = field(default_factory=set)  # plain "import x" modules
    typing: set[str] = field(default_factory=set)  # names from typing that hints need

    def lines(self, own_module: str, typing_names: Iterable[str], abc_names: Iterable[str] = ()) -> list[str]:
        out = ["from __future__ import annotations", ""]
        local = {c: m for c, m in self.local.items() if m != own_module}
        out += [f"import {m}" for m in sorted(self.std)]
        if abc_names:
            out += _from_import("collections.abc", abc_names)
        typing = set(typing_names) | self.typing | ({"TYPE_CHECKING"} if local else set())
        if typing:
            out += _from_import("typing", typing)
        if out[-1] != "":
            out.append("")
        if self.sdk:
            out += _from_import("spacetime_game.sdk", self.sdk)
        out.append("from spacetime_game.sdk import bindings as _b")
        if self.sats:
            out += _from_import("spacetime_game.sdk.sats", self.sats)
        out += ["", "from ._module import MODULE"]
        if local:
            out += ["", "if TYPE_CHECKING:"]
            by_module: dict[str, set[str]] = {}
            for cls, mod in local.items():
                by_module.setdefault(mod, set()).add(cls)
            for mod in sorted(by_module):
                out += _from_import(f".{mod}", by_module[mod], "    ")
        return out


def _plain_attribute(name: str) -> str:
    """A class attribute name that Python treats as a plain one: no ``__dunder__`` or enum ``_sunder_``
    name, and no ``__private`` name that would be mangled (``__init__`` -> ``_init``)."""
    core = name.strip("_")
    if core and name.startswith("_") and (name.startswith("__") or name.endswith("_")):
        return "_" + core
    return name


def _from_import(module: str, names: Iterable[str], indent: str = "") -> list[str]:
    items = sort_names(names)
    one = f"{indent}from {module} import {', '.join(items)}"
    if len(one) <= LINE:
        return [one]
    return bracket(indent, f"from {module} import (", items, ")", magic=True)


def _tuple(items: list[str]) -> str:
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _assign_tuple(indent: str, target: str, items: list[str]) -> list[str]:
    """``target = (items)``; a collection display that does not fit goes one item per line."""
    one = f"{indent}{target} = {_tuple(items)}"
    if len(one) <= LINE:
        return [one]
    return bracket(indent, f"{target} = (", items, ")", magic=True)


def _atom(indent: str, head: str, expr: str) -> list[str]:
    """``head`` + an unsplittable expression; wrapped in parentheses when that makes it fit."""
    one = f"{indent}{head}{expr}"
    if len(one) <= LINE or len(f"{indent}    {expr}") > LINE:
        return [one]
    return [f"{indent}{head}(", f"{indent}    {expr}", f"{indent})"]


def _all(names: Iterable[str]) -> list[str]:
    items = [q(n) for n in sort_names(names)]
    one = f"__all__ = [{', '.join(items)}]"
    return [one] if len(one) <= LINE else bracket("", "__all__ = [", items, "]", magic=True)


class _Generator:
    def __init__(self, schema: ModuleSchema, source: str) -> None:
        self.schema = schema
        self.source = source
        self.files: dict[str, str] = {}
        self.modules = NameSpace({"_module", "__init__", "module"})
        self.classes = NameSpace({"TYPE_CHECKING", "Final"} | {n for n in _HINT_NAMES if n[0].isupper()})
        # ref -> (class name, module name) for named types usable as column/argument types
        self.ref_class: dict[int, tuple[str, str]] = {}
        self.table_names: dict[str, tuple[str, str]] = {}  # table wire name -> (class, module)
        self.table_is_type: dict[str, bool] = {}
        self.type_modules: list[tuple[int, str, str]] = []  # (ref, class, module)
        self._plan()

    # ----- naming ------------------------------------------------------------------------------
    def _plan(self) -> None:
        named = {t.ref: t for t in self.schema.types}
        # tables first: a table whose row type carries the table's own name is that type
        for t in self.schema.tables:
            cls = camel_case(t.accessor_name)
            td = named.get(t.product_type_ref)
            is_type = (
                td is not None and camel_case(td.name) == cls and t.product_type_ref not in self.ref_class
            )
            cls = self.classes.take(cls)
            mod = self.modules.take(snake_case(t.accessor_name))
            self.table_names[t.name] = (cls, mod)
            self.table_is_type[t.name] = is_type
            if is_type:
                self.ref_class[t.product_type_ref] = (cls, mod)
        for td in self.schema.types:
            if td.ref in self.ref_class:
                continue
            ty = self.schema.typespace[td.ref]
            if not isinstance(ty, ProductType | SumType) or ty.special_kind is not None:
                continue
            cls = self.classes.take(camel_case(td.name))
            mod = self.modules.take(snake_case(td.name))
            self.ref_class[td.ref] = (cls, mod)
            self.type_modules.append((td.ref, cls, mod))
        self.reducer_modules: list[tuple[str, str, str]] = []  # (wire name, function, module)
        funcs = NameSpace(_HINT_NAMES | {"json", "reducer_name"})  # the reducer module's own names
        for r in self.schema.reducers:
            if not r.callable or self._is_scheduled(r.name):
                continue
            fn = funcs.take(snake_case(r.accessor_name))
            self.reducer_modules.append((r.name, fn, self.modules.take(f"{fn}_reducer")))

    def _is_scheduled(self, reducer: str) -> bool:
        return any(t.schedule and t.schedule.reducer_name == reducer for t in self.schema.tables)

    # ----- type hints -----------------------------------------------------------------------------
    def hint(self, ty: AlgebraicType, imp: _Imports) -> str:
        if isinstance(ty, RefType):
            if ty.index in self.ref_class:
                cls, mod = self.ref_class[ty.index]
                imp.local[cls] = mod
                return cls
            return self.hint(self.schema.typespace.resolve(ty), imp)
        if isinstance(ty, PrimitiveType):
            if ty.name == "Bool":
                return "bool"
            if ty.name == "String":
                return "str"
            if ty.name in ("F32", "F64"):
                return "float"
            return "int"
        if isinstance(ty, ArrayType):
            return "bytes" if ty.is_bytes else f"list[{self.hint(ty.elem, imp)}]"
        if isinstance(ty, ProductType):
            kind = ty.special_kind
            if kind == "uuid":
                imp.std.add("uuid")
                return "uuid.UUID"
            if kind is not None:
                imp.sdk.add(_SPECIAL_HINT[kind])
                return _SPECIAL_HINT[kind]
            imp.typing.add("Any")
            if ty.elements and all(ty.names):
                return "dict[str, Any]"
            return "tuple[Any, ...]"
        if isinstance(ty, SumType):
            kind = ty.special_kind
            if kind == "option":
                inner = self.schema.typespace.resolve(ty.variants[0].type)
                if isinstance(inner, SumType) and inner.special_kind == "option":
                    imp.sats.add("Some")
                    return "Some | None"
                return f"{self.hint(ty.variants[0].type, imp)} | None"
            if kind == "schedule_at":
                imp.sdk.add("ScheduleAt")
                return "ScheduleAt"
            imp.sats.add("SumValue")
            return "SumValue"
        raise TypeError(f"not a type: {ty!r}")  # pragma: no cover

    def class_names(self) -> set[str]:
        """The names of the package's classes (tables and named types)."""
        return {c for c, _ in self.ref_class.values()} | {c for c, _ in self.table_names.values()}

    def quoted(self, hint: str) -> str:
        """A hint usable inside a runtime expression (``tuple[...]`` base): local classes quoted."""
        names = self.class_names()
        return q(hint) if names.intersection(re.findall(r"[A-Za-z_][\w.]*", hint)) else hint

    # ----- files -------------------------------------------------------------------------------------
    def header(self) -> list[str]:
        return [
            f"# Generated by spacetime-game {__version__} from {self.source} (RawModuleDefV{self.schema.version}).",
            "# Do not edit: run `spacetime-game generate` again instead.",
        ]

    def run(self) -> dict[str, str]:
        self.module_file()
        for ref, cls, mod in self.type_modules:
            self.type_file(ref, cls, mod)
        for t in self.schema.tables:
            self.table_file(t)
        for wire, fn, mod in self.reducer_modules:
            self.reducer_file(wire, fn, mod)
        self.init_file()
        return self.files

    def module_file(self) -> None:
        ts = json.dumps(self.schema.typespace.to_json(), separators=(",", ":"))
        lines = [
            *self.header(),
            '"""The module description shared by every file of this package."""',
            "",
            "from __future__ import annotations",
            "",
            "import json",
            "from typing import Final",
            "",
            "from spacetime_game.sdk import bindings as _b",
            "",
            *_atom("", "TYPESPACE_JSON: Final = ", q(ts)),
            *_atom("", "SOURCE: Final = ", q(self.source)),
            "",
            *bracket(
                "",
                "MODULE: Final = _b.ModuleBindings.from_typespace_json(",
                ["json.loads(TYPESPACE_JSON)", "SOURCE"],
                ")",
            ),
        ]
        self.files["_module.py"] = "\n".join(lines) + "\n"

    def _product_class(
        self, cls: str, row: ProductType, imp: _Imports, doc: str, table: TableDef | None
    ) -> tuple[list[str], list[str]]:
        """The class body of a product (row or named type) and the property names of its fields."""
        reserved = _TABLE_RESERVED if table is not None else _PRODUCT_RESERVED
        props = NameSpace(reserved | self.class_names(), fold_case=False)
        names: list[str] = []
        hints: list[str] = []
        for i, e in enumerate(row.elements):
            base = _plain_attribute(safe_identifier(e.name or f"f{i}"))
            if base.startswith("filter_by_"):
                base += "_"
            names.append(props.take(base))
            hints.append(self.hint(e.type, imp))
        base_hint = f"tuple[{', '.join(self.quoted(h) for h in hints)}]" if hints else "tuple[()]"
        out = [
            *split_expr("", f"class {cls}({base_hint}):"),
            f'    """{doc}"""',
            "",
            "    __slots__ = ()",
            "",
        ]
        if table is not None:
            pk = table.primary_key_column
            out += [
                "    is_table_class: ClassVar[bool] = True",
                f"    table_name: ClassVar[str] = {q(table.name)}",
                f"    primary_key: ClassVar[str | None] = {q(pk.name) if pk else None}",
            ]
        else:
            out.append("    is_table_class: ClassVar[bool] = False")
        out += _assign_tuple(
            "    ", "column_names: ClassVar[tuple[str, ...]]", [q(str(e.name)) for e in row.elements]
        )
        out.append("")
        params = ["cls", *(f"{n}: {h}" for n, h in zip(names, hints, strict=True))]
        out += bracket("    ", "def __new__(", params, ") -> Self:")
        out += _assign_tuple("        ", "values", names)
        out += ["        return tuple.__new__(cls, values)", ""]
        for i, (n, h, e) in enumerate(zip(names, hints, row.elements, strict=True)):
            what = "Column" if table is not None else "Field"
            out += [
                "    @property",
                f"    def {n}(self) -> {h}:",
                f'        """{what} ``{e.name}``: {e.type!r}."""',
                f"        return self[{i}]",
                "",
            ]
        fields = ", ".join(f"{n}={{self[{i}]!r}}" for i, n in enumerate(names))
        out += [
            "    def __repr__(self) -> str:",
            *_atom("        ", "return ", f'f"{cls}({fields})"'),
            "",
            "    def __eq__(self, other: object) -> bool:",
            f"        return other.__class__ is {cls} and tuple.__eq__(self, other)",
            "",
            "    def __ne__(self, other: object) -> bool:",
            "        return not self.__eq__(other)",
            "",
            "    __hash__ = tuple.__hash__",
        ]
        return out, names

    def type_file(self, ref: int, cls: str, mod: str) -> None:
        ty = self.schema.typespace[ref]
        imp = _Imports()
        typing: set[str] = set()
        if isinstance(ty, ProductType):
            body, _ = self._product_class(cls, ty, imp, f"The product type ``{cls}``.", None)
            typing |= {"ClassVar", "Self"}
            register = f"_b.bind_product(MODULE, {ref}, {cls})"
        elif isinstance(ty, SumType) and ty.is_plain_enum:
            members = NameSpace({"name", "value"})
            imp.std.add("enum")
            body = [
                f"class {cls}(enum.Enum):",
                f'    """The enum ``{cls}``; each value is the variant tag."""',
                "",
            ]
            for i, v in enumerate(ty.variants):
                body.append(f"    {members.take(_plain_attribute(safe_identifier(v.name or f'V{i}')))} = {i}")
            register = f"_b.bind_enum(MODULE, {ref}, {cls})"
        else:
            assert isinstance(ty, SumType)
            body = self._sum_class(cls, ty, imp)
            typing |= {"Any", "ClassVar"}
            register = f"_b.bind_sum(MODULE, {ref}, {cls})"
        lines = [*self.header(), f'"""The type ``{cls}``."""', ""]
        lines += imp.lines(mod, typing)
        lines += ["", *_all([cls]), "", "", *body, "", "", register]
        self.files[f"{mod}.py"] = "\n".join(lines) + "\n"

    def _sum_class(self, cls: str, ty: SumType, imp: _Imports) -> list[str]:
        names = [v.name or f"V{i}" for i, v in enumerate(ty.variants)]
        body = [
            f"class {cls}:",
            f'    """The sum type ``{cls}``: ``tag`` is the variant index, ``value`` its payload."""',
            "",
            '    __slots__ = ("tag", "value")',
            "",
        ]
        body += _assign_tuple("    ", "variant_names: ClassVar[tuple[str, ...]]", [q(n) for n in names])
        body += [
            "",
            "    def __init__(self, tag: int, value: Any = ()) -> None:",
            f"        if not 0 <= tag < {len(names)}:",
            f'            raise ValueError(f"{cls} has no variant {{tag}}")',
            "        self.tag = tag",
            "        self.value = value",
            "",
            "    @property",
            "    def name(self) -> str:",
            '        """The variant name."""',
            "        return self.variant_names[self.tag]",
            "",
        ]
        methods = NameSpace(
            {"name", "tag", "value", "variant_names"} | _HINT_NAMES | self.class_names(), fold_case=False
        )
        for i, v in enumerate(ty.variants):
            m = methods.take(_plain_attribute(snake_case(names[i])))
            if v.type == ProductType(()):
                sig, ret = f"    def {m}(cls) -> {cls}:", f"        return cls({i})"
            else:
                sig, ret = (
                    f"    def {m}(cls, value: {self.hint(v.type, imp)}) -> {cls}:",
                    f"        return cls({i}, value)",
                )
            body += ["    @classmethod", sig, f'        """The variant ``{names[i]}``."""', ret, ""]
        body += [
            "    def __eq__(self, other: object) -> bool:",
            f"        if not isinstance(other, {cls}):",
            "            return NotImplemented",
            "        return self.tag == other.tag and bool(self.value == other.value)",
            "",
            "    def __hash__(self) -> int:",
            "        return hash((self.tag, self.value))",
            "",
            "    def __repr__(self) -> str:",
            f'        return f"{cls}.{{self.name}}({{self.value!r}})"',
        ]
        return body

    def table_file(self, t: TableDef) -> None:
        cls, mod = self.table_names[t.name]
        imp = _Imports()
        kind = "event table" if t.is_event else ("public table" if t.is_public else "private table")
        aliases = [
            ("_RowUpdate", f'[str, "{cls} | None", "{cls} | None", Any]'),
            ("_OnInsert", f'["{cls}", Any]'),
            ("_OnUpdate", f'["{cls}", "{cls}", Any]'),
            ("_OnDelete", f'["{cls}", Any]'),
        ]
        alias_lines: list[str] = []
        for alias, params in aliases:
            alias_lines += bracket("", f"{alias}: TypeAlias = Callable[", [params, "None"], "]")
        body, props = self._product_class(cls, t.row_type, imp, f"A row of the {kind} ``{t.name}``.", t)
        unique = {c.col_id for c in t.unique_columns}
        w = q(t.name)
        client = f"client: {_CLIENT_T} = None"
        body += [
            "",
            "    @classmethod",
            *bracket("    ", "def iter(", ["cls", client], f") -> Iterator[{cls}]:"),
            '        """Every row of this table in the client cache."""',
            f"        rows = _b.iter_rows({w}, client)",
            f"        return cast(Iterator[{cls}], rows)",
        ]
        # ``filter_by_<column>`` keeps the column's name even where the property needs another
        # (``filter_by_class`` reads ``class_``): the prefix makes any name a valid identifier
        filters = NameSpace(fold_case=False)
        for c, prop in zip(t.columns, props, strict=True):
            h = self.hint(c.type, imp)
            arg = prop if prop not in ("cls", "client", "row", "rows") else prop + "_"
            method = filters.take("filter_by_" + re.sub(r"\W", "_", c.name))
            body += ["", "    @classmethod"]
            if c.col_id in unique:
                body += bracket(
                    "    ", f"def {method}(", ["cls", f"{arg}: {h}", client], f") -> {cls} | None:"
                )
                body.append(
                    f'        """The row whose unique column ``{c.name}`` equals the value, or None."""'
                )
                body += bracket("        ", "row = _b.find_row(", [w, q(c.name), arg, "client"], ")")
                body.append(f'        return cast("{cls} | None", row)')
            else:
                body += bracket(
                    "    ", f"def {method}(", ["cls", f"{arg}: {h}", client], f") -> Iterator[{cls}]:"
                )
                body.append(f'        """The rows whose column ``{c.name}`` equals the value."""')
                body += bracket("        ", "rows = _b.filter_rows(", [w, q(c.name), arg, "client"], ")")
                body.append(f"        return cast(Iterator[{cls}], rows)")
        callbacks = [
            (
                "register_row_update",
                "unregister_row_update",
                "row_update",
                "_RowUpdate",
                "Call ``callback(op, old, new, reducer_event)`` on each change (insert, update, delete).",
            ),
            (
                "on_insert",
                "remove_on_insert",
                "insert",
                "_OnInsert",
                "Call ``callback(row, event)`` for each new row.",
            ),
            (
                "on_update",
                "remove_on_update",
                "update",
                "_OnUpdate",
                "Call ``callback(old, new, event)`` when a row changes (same primary key).",
            ),
            (
                "on_delete",
                "remove_on_delete",
                "delete",
                "_OnDelete",
                "Call ``callback(row, event)`` for each deleted row.",
            ),
        ]
        for name, remover, event, alias, doc in callbacks:
            ret = "None" if name == "register_row_update" else alias
            body += ["", "    @classmethod"]
            body += bracket("    ", f"def {name}(", ["cls", f"callback: {alias}", client], f") -> {ret}:")
            body += [f'        """{doc}"""', f"        _b.on_row({w}, {q(event)}, callback, client)"]
            if ret != "None":
                body.append("        return callback")
            body += ["", "    @classmethod"]
            body += bracket("    ", f"def {remover}(", ["cls", f"callback: {alias}", client], ") -> None:")
            body += [
                f'        """Stop calling ``callback`` (registered with ``{name}``)."""',
                f"        _b.remove_on_row({w}, {q(event)}, callback, client)",
            ]
        pk = t.primary_key_column
        uniques = [q(c.name) for c in t.unique_columns]
        register = [
            "_b.bind_table(",
            "    MODULE,",
            f"    {cls},",
            f"    name={w},",
            f"    ref={t.product_type_ref},",
            f"    primary_key={q(pk.name) if pk else None},",
            f"    unique_columns={_tuple(uniques)},",
            f"    is_event={t.is_event},",
            f"    row_type_name={self.table_is_type[t.name]},",
            ")",
        ]
        lines = [*self.header(), f'"""The table ``{t.name}``."""', ""]
        lines += imp.lines(mod, {"Any", "ClassVar", "Self", "TypeAlias", "cast"}, {"Callable", "Iterator"})
        lines += ["", *_all([cls]), "", *alias_lines, "", "", *body, "", "", *register]
        self.files[f"{mod}.py"] = "\n".join(lines) + "\n"

    def reducer_file(self, wire: str, fn: str, mod: str) -> None:
        r = self.schema.reducer(wire)
        imp = _Imports()
        imp.sdk |= {"ConnectionId", "Identity", "ReducerCall"}
        imp.std.add("json")
        args = NameSpace(
            {"client", "callback", "cls", "args", "reducer_name", "MODULE", "_b"}, fold_case=False
        )
        names = [
            args.take(_plain_attribute(safe_identifier(e.name or f"arg{i}")))
            for i, e in enumerate(r.params.elements)
        ]
        hints = [self.hint(e.type, imp) for e in r.params.elements]
        params = json.dumps({"elements": [e.to_json() for e in r.params.elements]}, separators=(",", ":"))
        client = f"client: {_CLIENT_T} = None"
        cb_params = (
            "[" + ", ".join(["Identity", "ConnectionId | None", "str", "str", *map(self.quoted, hints)]) + "]"
        )
        body = [
            *_atom("", "reducer_name: Final = ", q(wire)),
            *_atom("", "_PARAMS: Final = ", q(params)),
            "",
            "_b.bind_reducer(MODULE, reducer_name, json.loads(_PARAMS))",
            "",
            *bracket("", "_Callback: TypeAlias = Callable[", [cb_params, "None"], "]"),
            "",
            "",
        ]
        sig = [
            *(f"{n}: {h}" for n, h in zip(names, hints, strict=True)),
            "*",
            client,
            "callback: Callable[..., None] | None = None",
        ]
        body += bracket("", f"def {fn}(", sig, ") -> ReducerCall:")
        body.append(
            f'    """Call the reducer ``{wire}``; returns the call handle (``callback`` gets the result)."""'
        )
        body += _assign_tuple("    ", "args", names)
        body += ["    return _b.call_reducer(MODULE, reducer_name, args, client, callback)", "", ""]
        body += bracket("", f"def register_on_{fn}(", ["callback: _Callback", client], ") -> None:")
        body += [
            '    """Call ``callback(caller_identity, caller_address, status, message, *args)`` after',
            '    each of this client\'s own calls of the reducer, and of everyone\'s with a 1.x server."""',
            "    _b.on_reducer(reducer_name, callback, client)",
            "",
            "",
        ]
        body += bracket("", f"def unregister_on_{fn}(", ["callback: _Callback", client], ") -> None:")
        body += [
            f'    """Stop calling ``callback`` (registered with ``register_on_{fn}``)."""',
            "    _b.remove_on_reducer(reducer_name, callback, client)",
            "",
            "",
            "def _decode_args(data: bytes) -> list[Any]:",
            '    """The arguments of a call, decoded from their BSATN."""',
            "    return MODULE.reducer(reducer_name).decode_args(data)",
        ]
        lines = [*self.header(), f'"""The reducer ``{wire}``."""', ""]
        lines += imp.lines(mod, {"Any", "Final", "TypeAlias"}, {"Callable"})
        exported = ["reducer_name", fn, f"register_on_{fn}", f"unregister_on_{fn}"]
        lines += ["", *_all(exported), "", *body]
        self.files[f"{mod}.py"] = "\n".join(lines) + "\n"

    def init_file(self) -> None:
        lines = [
            *self.header(),
            f'"""Bindings for the SpacetimeDB module described by {self.source}.',
            "",
            "Import this package (or pass it as ``autogen_package``) to get one class per table,",
            'one function per reducer and one class per named type."""',
            "",
        ]
        imports: dict[str, list[str]] = {"_module": ["MODULE"]}
        for _, cls, mod in self.type_modules:
            imports[mod] = [cls]
        for t in self.schema.tables:
            cls, mod = self.table_names[t.name]
            imports[mod] = [cls]
        for _, fn, mod in self.reducer_modules:
            imports[mod] = [fn, f"register_on_{fn}", f"unregister_on_{fn}"]
        for mod in sorted(imports):
            lines += _from_import(f".{mod}", imports[mod])
        exported = [n for names in imports.values() for n in names]
        lines += ["", "MODULE.compile()", "", *_all(exported)]
        self.files["__init__.py"] = "\n".join(lines) + "\n"


def generate_package(schema: ModuleSchema, source: str = "schema") -> dict[str, str]:
    """The files of a ``module_bindings`` package for ``schema``, as ``{file name: source text}``."""
    return _Generator(schema, source).run()


def write_package(schema: ModuleSchema, out_dir: str | Path, source: str = "schema") -> list[Path]:
    """Write the package into ``out_dir`` (created if needed; stale generated files are removed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = generate_package(schema, source)
    for old in out.glob("*.py"):
        if old.name not in files and old.read_text(errors="replace").startswith(
            "# Generated by spacetime-game"
        ):
            old.unlink()
    written = []
    for name, text in files.items():
        path = out / name
        tmp = path.with_suffix(".py.tmp")
        tmp.write_text(text)
        tmp.replace(path)
        written.append(path)
    return written
