"""Fixtures of the client tests: the generated chat and game bindings (once per session), and a clean
default client around every test."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from spacetime_game.sdk import bindings
from spacetime_game.sdk.spacetimedb_client import SpacetimeDBClient

from ._support import (
    CHAT_MODULE,
    ServerProcess,
    chat_schema,
    forget,
    game_schema,
    import_generated,
)


@pytest.fixture(scope="session")
def chat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The quickstart-chat bindings (``User``, ``Message``, ``set_name``, ``send_message``)."""
    pkg = import_generated(chat_schema(), tmp_path_factory.mktemp("chat"), "quickstart_chat.schema.json")
    yield pkg
    forget(pkg)


@pytest.fixture(scope="session")
def game(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The custom V10 bindings (``Player``, ``Point``, the event table ``Hit``)."""
    pkg = import_generated(game_schema(), tmp_path_factory.mktemp("game"), "game.schema.json")
    yield pkg
    forget(pkg)


@pytest.fixture(autouse=True)
def _clean_default_client() -> Iterator[None]:
    bindings.set_default_client(None)
    SpacetimeDBClient.instance = None
    yield
    inst = SpacetimeDBClient.instance
    if inst is not None:
        inst.close()
    SpacetimeDBClient.instance = None
    bindings.set_default_client(None)


@pytest.fixture(scope="session")
def chat_server() -> Iterator[ServerProcess]:
    """The chat module on a dev server in a child process (in memory), shared by the live tests."""
    server = ServerProcess(CHAT_MODULE, "quickstart-chat", None).start()
    yield server
    server.stop()
