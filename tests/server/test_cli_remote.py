"""``spacetime-game call / sql / identity`` against the dev server."""

from __future__ import annotations

import pytest

from spacetime_game.cli import main

from .conftest import ServerThread


def test_call_sql_and_identity(server: ServerThread, capsys: pytest.CaptureFixture[str]) -> None:
    where = ["--server", f"127.0.0.1:{server.port}"]
    assert main(["identity", *where]) == 0
    out = capsys.readouterr().out
    assert out.startswith("identity c200") and "token" in out
    assert main(["call", "quickstart-chat", "send_message", '"hi there"', *where]) == 0
    assert capsys.readouterr().out.strip() == "ok"
    assert main(["call", "quickstart-chat", "send_message", '""', *where]) == 1
    assert "send_message failed: Messages must not be empty" in capsys.readouterr().err
    assert main(["call", "quickstart-chat", "nope", *where]) == 2
    assert "no reducer 'nope' in quickstart-chat" in capsys.readouterr().err
    assert main(["sql", "quickstart-chat", "SELECT * FROM message", *where]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["sender", "|", "sent", "|", "text"] and lines[2].endswith("| hi there")
    assert main(["sql", "quickstart-chat", "SELECT * FROM nope", *where]) == 1
    assert "no such table" in capsys.readouterr().err


def test_unreachable_server_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "db", "SELECT 1", "--server", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot reach" in err
