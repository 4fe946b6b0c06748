"""Fixtures of the engine tests: the bindings of ``move_module.py`` (generated once from the schema the
dev server publishes)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from spacetime_game.sdk.schema import ModuleSchema
from spacetime_game.server import load_module
from tests._support import forget, import_generated

MOVE_MODULE = Path(__file__).parent / "move_module.py"


@pytest.fixture(scope="session")
def mb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """``Player`` (keyed), ``Marker`` (no key), ``Hit`` (an event table) and the reducers."""
    schema = ModuleSchema.from_json(load_module(MOVE_MODULE).schema_json())
    # the module declares ``hit`` an event table, but the V9 schema the dev server publishes cannot say
    # so: mark it, as a V10 schema would
    tables = tuple(dataclasses.replace(t, is_event=True) if t.name == "hit" else t for t in schema.tables)
    schema = dataclasses.replace(schema, tables=tables, _tables_by_name={}, _reducers_by_name={})
    assert schema.table("hit").is_event
    pkg = import_generated(schema, tmp_path_factory.mktemp("move"), "move_module.py", prefix="move")
    yield pkg
    forget(pkg)
