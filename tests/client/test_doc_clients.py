"""The documented 0.x quickstart, run as programs against the dev server: ``doc_basic_client.py`` (the
Basic client) and ``doc_async_client.py`` (the Async client of docs/sdks/python/quickstart.md), with the
bindings generated as ``module_bindings`` and the token kept by ``local_config`` under ``--client N``."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spacetime_game.codegen import write_package

from ._support import CHAT_MODULE, HERE, ROOT, ServerProcess, chat_schema

BASIC = HERE / "doc_basic_client.py"
ASYNC = HERE / "doc_async_client.py"


class Program:
    """A quickstart client as a child process; its output is collected line by line as it comes."""

    def __init__(self, script: Path, client: int, steps: list[Any], env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        env = {**env, "QUICKSTART_INPUT": json.dumps(steps)}
        self.proc = subprocess.Popen(
            [sys.executable, str(script), "--client", str(client)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for t in self._readers:
            t.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        self.err.extend(self.proc.stderr)

    def wait_for(self, text: str, timeout: float = 20) -> None:
        with self._cond:
            ok = self._cond.wait_for(lambda: any(text in line for line in self.lines), timeout)
        assert ok, f"no {text!r} in the output: {self.lines}"

    def finish(self, timeout: float = 30) -> list[str]:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the client did not exit: {self.lines}\n{''.join(self.err)}") from None
        finally:
            for t in self._readers:
                t.join(5)
        err = "".join(self.err)
        assert self.proc.returncode == 0, f"exit {self.proc.returncode}: {self.lines}\n{err}"
        assert "Traceback" not in err, err
        assert "DRIVER: exited" in err, err
        assert not [line for line in self.lines if line.startswith("DRIVER:")], self.lines
        return [line for line in self.lines if line]  # the "\nSYSTEM" print gives an empty line


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A server, ``module_bindings`` on the path, and a home directory for the settings files."""
    root = tmp_path_factory.mktemp("quickstart")
    write_package(chat_schema(), root / "bindings" / "module_bindings", "quickstart_chat.schema.json")
    home = root / "home"
    home.mkdir()
    server = ServerProcess(CHAT_MODULE, "quickstart-chat", None).start()
    env = dict(os.environ)
    env.pop("SPACETIME_GAME_PROFILE", None)
    env.update(
        PYTHONPATH=os.pathsep.join([str(root / "bindings"), str(ROOT)]),
        PYTHONUNBUFFERED="1",
        HOME=str(home),
        QUICKSTART_HOST=server.host,
        QUICKSTART_DB="quickstart-chat",
    )
    yield env
    server.stop()


ID8 = re.compile(r"^User ([0-9a-f]{8}) connected\.$")


def test_quickstart_clients_chat(env: dict[str, str]) -> None:
    started = time.monotonic()
    # alice: the Basic client, profile 1
    alice = Program(
        BASIC,
        1,
        [
            {"wait": "SYSTEM: Connected."},
            "/name alice",
            {"wait": "renamed to alice."},
            "/name ",
            {"wait": "Failed to set name"},
            "hello from alice",
            {"wait": "alice: hello from alice"},
            {"wait": "bob: hi alice", "timeout": 30},
            "bye bob",
            {"wait": "alice: bye bob"},
            {"wait": "User bob disconnected.", "timeout": 30},
        ],
        env,
    )
    alice.wait_for("alice: hello from alice")
    # bob: the Async client, profile 2, joins later
    bob = Program(
        ASYNC,
        2,
        [
            {"wait": "SYSTEM: Connected."},
            "/name bob",
            {"wait": "renamed to bob."},
            "hi alice",
            {"wait": "bob: hi alice"},
            {"wait": "alice: bye bob", "timeout": 30},
        ],
        env,
    )
    bob_out = bob.finish()
    alice_out = alice.finish()

    a_id = ID8.match(alice_out[0])
    assert a_id, alice_out
    a8 = a_id.group(1)
    b8 = next(m.group(1) for line in bob_out if (m := ID8.match(line)) and m.group(1) != "alice")
    assert a8.startswith("c2") and b8.startswith("c2") and a8 != b8
    assert alice_out == [
        f"User {a8} connected.",  # its own row, from the subscription
        "SYSTEM: Connected.",  # no history yet
        f"User {a8} renamed to alice.",
        "Failed to set name: Names must not be empty",
        "alice: hello from alice",
        f"User {b8} connected.",
        f"User {b8} renamed to bob.",
        "bob: hi alice",
        "alice: bye bob",
        "User bob disconnected.",
    ]
    # the initial rows come in table order; what follows is in event order
    assert sorted(bob_out[:2]) == sorted(["User alice connected.", f"User {b8} connected."])
    assert bob_out[2:] == [
        "SYSTEM: Connected.",
        "alice: hello from alice",  # the history, printed by on_subscription_applied
        f"User {b8} renamed to bob.",
        "bob: hi alice",
        "alice: bye bob",
    ]

    # the tokens were saved by on_connect / on_identity, one private file per profile
    folder = Path(env["HOME"]) / ".spacetimedb-python-quickstart"
    assert sorted(p.name for p in folder.iterdir()) == ["settings_1.ini", "settings_2.ini"]
    for p in folder.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
        assert "auth_token" in p.read_text()

    # alice again, now with the Async client: the saved token gives the same identity (and name)
    again = Program(ASYNC, 1, [{"wait": "SYSTEM: Connected."}], env).finish()
    assert again == [
        "User alice connected.",  # bob is offline: not announced
        "SYSTEM: Connected.",
        "alice: hello from alice",
        "bob: hi alice",
        "alice: bye bob",
    ]
    # bob again, with the Basic client
    bob_again = Program(BASIC, 2, [{"wait": "SYSTEM: Connected."}], env).finish()
    assert bob_again == [
        "User bob connected.",  # alice has left again: not announced
        "SYSTEM: Connected.",
        "alice: hello from alice",
        "bob: hi alice",
        "alice: bye bob",
    ]
    assert time.monotonic() - started < 60
