"""``persist_token``: the identity survives a restart of the program through local_config."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from types import ModuleType

from spacetime_game.sdk import local_config
from spacetime_game.sdk.spacetimedb_client import SpacetimeDBClient

from ._support import ServerProcess


def _connect(chat: ModuleType, port: int) -> SpacetimeDBClient:
    client = SpacetimeDBClient(chat, f"127.0.0.1:{port}", "quickstart-chat", persist_token=True)
    client.connect()
    deadline = time.time() + 10
    while client.identity is None and time.time() < deadline:
        client.wait(0.1)
        client.update()
    assert client.identity is not None
    return client


def test_token_is_saved_and_reused(tmp_path: Path, chat: ModuleType, chat_server: ServerProcess) -> None:
    dev_server = chat_server.port
    local_config.init(config_root=tmp_path, profile="persist")
    assert local_config.get_string("auth_token") is None
    first = _connect(chat, dev_server)
    saved = local_config.get_string("auth_token")
    assert saved == first.token and saved
    path = local_config.config_path()
    assert path is not None and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    first.close()
    local_config.init(config_root=tmp_path, profile="persist")  # a new program run
    again = _connect(chat, dev_server)
    assert again.identity == first.identity
    again.close()
