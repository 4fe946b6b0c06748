"""Fixtures of the fault suite: the bindings of ``churn_module.py``, generated from the schema the dev
server publishes."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from spacetime_game.sdk.schema import ModuleSchema
from spacetime_game.server import load_module

from .._support import forget, import_generated
from ._churn import MODULE


@pytest.fixture(scope="session")
def churn_bindings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    schema = ModuleSchema.from_json(load_module(MODULE).schema_json())
    pkg = import_generated(schema, tmp_path_factory.mktemp("churn"), "churn_module.py", prefix="churn")
    yield pkg
    forget(pkg)
