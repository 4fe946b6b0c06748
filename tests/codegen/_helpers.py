"""Shared material of the codegen tests: generating a package into a folder and importing it under a
unique name, and a recording stand-in for a client (the :class:`BindingsClient` seam)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from spacetime_game.codegen import generate_package
from spacetime_game.sdk.bindings import ModuleBindings
from spacetime_game.sdk.schema import ModuleSchema, load_schema

from .._support import forget, import_generated, tool  # noqa: F401  (used by the tests here)

DATA = Path(__file__).resolve().parent.parent / "data"
ROOT = DATA.parent.parent

#: the schemas with committed golden packages, by golden folder name
SCHEMAS = {
    "example": DATA / "example_schema.json",
    "quickstart_chat": DATA / "quickstart_chat.schema.json",
    "blackholio": DATA / "blackholio.schema.json",
    "all_types": DATA / "all_types.schema.json",
    "v10": DATA / "v10.schema.json",
}


def subprocess_env(*paths: Path | str) -> dict[str, str]:
    """The environment for a child process: ``paths`` and the repository on PYTHONPATH and MYPYPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*(str(p) for p in paths), str(ROOT)])
    env["MYPYPATH"] = os.pathsep.join([*(str(p) for p in paths), str(ROOT)])
    return env


def schema_of(name: str) -> ModuleSchema:
    return load_schema(SCHEMAS[name])


def generated_files(name: str) -> dict[str, str]:
    """What ``spacetime-game generate --schema tests/data/<file>`` writes, as ``{file name: text}``."""
    path = SCHEMAS[name]
    return generate_package(load_schema(path), path.name)


class Handle:
    """What the recording client returns for a reducer call."""

    def __init__(self, reducer: str, args: bytes) -> None:
        self.reducer = reducer
        self.args = args


class RecordingClient:
    """A :class:`~spacetime_game.sdk.bindings.BindingsClient` that keeps rows per table (wire name) and
    records every call made to it, in order."""

    def __init__(self, module: ModuleBindings) -> None:
        self.module = module
        self.rows: dict[str, list[Any]] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.row_callbacks: dict[tuple[str, str], list[Callable[..., None]]] = {}
        self.reducer_callbacks: dict[str, list[Callable[..., None]]] = {}

    def _column(self, table: str, column: str) -> int:
        return self.module.table(table).column_index(column)

    def iter_rows(self, table: str) -> Iterator[Any]:
        self.calls.append(("iter_rows", table))
        return iter(list(self.rows.get(table, [])))

    def count_rows(self, table: str) -> int:
        self.calls.append(("count_rows", table))
        return len(self.rows.get(table, []))

    def find_row(self, table: str, column: str, value: Any) -> Any | None:
        self.calls.append(("find_row", table, column, value))
        i = self._column(table, column)
        found = [r for r in self.rows.get(table, []) if r[i] == value]
        assert len(found) <= 1, f"find_row on a column that is not unique: {found}"
        return found[0] if found else None

    def filter_rows(self, table: str, column: str, value: Any) -> Iterator[Any]:
        self.calls.append(("filter_rows", table, column, value))
        i = self._column(table, column)
        return (r for r in list(self.rows.get(table, [])) if r[i] == value)

    def on_row(self, table: str, event: str, callback: Callable[..., None]) -> Any:
        self.calls.append(("on_row", table, event, callback))
        self.row_callbacks.setdefault((table, event), []).append(callback)
        return callback

    def remove_on_row(self, table: str, event: str, callback: Callable[..., None]) -> None:
        self.calls.append(("remove_on_row", table, event, callback))
        self.row_callbacks[(table, event)].remove(callback)

    def call_reducer(self, reducer: str, args: bytes, callback: Callable[..., None] | None = None) -> Any:
        self.calls.append(("call_reducer", reducer, args, callback))
        return Handle(reducer, args)

    def on_reducer(self, reducer: str, callback: Callable[..., None]) -> Any:
        self.calls.append(("on_reducer", reducer, callback))
        self.reducer_callbacks.setdefault(reducer, []).append(callback)
        return callback

    def remove_on_reducer(self, reducer: str, callback: Callable[..., None]) -> None:
        self.calls.append(("remove_on_reducer", reducer, callback))
        self.reducer_callbacks[reducer].remove(callback)
