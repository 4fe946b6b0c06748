"""Fixtures of the pygame adapter's tests: headless pygame (either flavour), the bindings of the engine
tests' ``move_module.py`` (``mb``), and checks that nothing is left running."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from spacetime_game.sdk.schema import ModuleSchema
from spacetime_game.server import load_module
from tests._support import (
    forget,
    import_generated,
    wait_no_sdk_threads,  # noqa: F401  (the tests import it from here)
)
from tests.engine.conftest import MOVE_MODULE, mb
from tests.engines._support import expected_pygame_flavour, import_pygame, pygame_flavour

__all__ = ["DOTS_MODULE", "MOVE_MODULE", "dots", "mb"]

DOTS_MODULE = Path(__file__).parent / "dots_module.py"


@pytest.fixture(scope="session")
def dots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The bindings of ``dots_module.py`` (``Dot``, ``spawn_dots``)."""
    schema = ModuleSchema.from_json(load_module(DOTS_MODULE).schema_json())
    pkg = import_generated(schema, tmp_path_factory.mktemp("dots"), "dots_module.py", prefix="dots")
    yield pkg
    forget(pkg)


@pytest.fixture
def pygame() -> Iterator[ModuleType]:
    """pygame with a 320x240 display on the dummy video driver, shut down afterwards."""
    pg = import_pygame()
    assert pygame_flavour(pg) == expected_pygame_flavour(), f"pygame {pg.version.ver} at {pg.__file__}"
    pg.display.init()
    pg.font.init()
    try:
        pg.display.set_mode((320, 240))
        pg.event.clear()
        yield pg
    finally:
        pg.quit()
