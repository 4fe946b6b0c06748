"""Fixtures: each test schema's generated package, imported once per session; a fresh recording client."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from spacetime_game.sdk import bindings

from ._helpers import SCHEMAS, forget, import_generated, schema_of


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModuleType]]:
    root = tmp_path_factory.mktemp("generated")
    pkgs = {name: import_generated(schema_of(name), root, path.name) for name, path in SCHEMAS.items()}
    yield pkgs
    for pkg in pkgs.values():
        forget(pkg)


@pytest.fixture(autouse=True)
def _no_default_client() -> Iterator[None]:
    """Every test starts and ends with no default client."""
    bindings.set_default_client(None)
    yield
    bindings.set_default_client(None)


@pytest.fixture
def mb(packages: dict[str, ModuleType]) -> ModuleType:
    """The Blackholio bindings."""
    return packages["blackholio"]


@pytest.fixture
def qc(packages: dict[str, ModuleType]) -> ModuleType:
    """The quickstart-chat bindings."""
    return packages["quickstart_chat"]


@pytest.fixture
def at(packages: dict[str, ModuleType]) -> ModuleType:
    """The every-type bindings."""
    return packages["all_types"]


@pytest.fixture
def v10(packages: dict[str, ModuleType]) -> ModuleType:
    """The V10 bindings."""
    return packages["v10"]
