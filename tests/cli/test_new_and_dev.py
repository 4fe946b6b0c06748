"""The game-jam workflow end to end (#13): `spacetime-game new` makes a project whose own tests pass
headless; `spacetime-game dev` serves it, writes its bindings, and follows each save of the module: a
reducer change (clients stay), an added column with a default (rows migrate, clients reconnect), an
incompatible change (refused, the old module keeps serving), a syntax error (file:line, old module
kept). No coin row is lost along the way, across a restart too; `--clear` starts over."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from spacetime_game.cli import main
from spacetime_game.sdk import DbConnection

from .._support import free_port, pump

CLI = [sys.executable, "-m", "spacetime_game.cli"]


class Dev:
    """`spacetime-game dev` as a child process in a project folder, its log collected line by line."""

    def __init__(self, project: Path, *options: str) -> None:
        self.port = free_port()
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [*CLI, "dev", "--port", str(self.port), *options],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.wait_for(r"ready in \d+ ms")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def mark(self) -> int:
        return len(self.lines)

    def wait_for(self, pattern: str, since: int = 0, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[since:]:
                if re.search(pattern, line):
                    return line
            if self.proc.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"no log line matching {pattern!r}; the log:\n" + "\n".join(self.lines))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(20)
        self.reader.join(5)
        return code


def bindings(project: Path, tmp: Path, tag: str) -> ModuleType:
    """The project's module_bindings as dev wrote them, imported under a name of their own."""
    name = f"bindings_{tag}"
    shutil.copytree(project / "module_bindings", tmp / name)
    sys.path.insert(0, str(tmp))
    try:
        importlib.invalidate_caches()
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(tmp))


def coins(conn: DbConnection) -> dict[int, tuple[float, float]]:
    return {c.id: (c.x, c.y) for c in conn.iter_rows("coin")}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


@pytest.fixture()
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    assert main(["new", "Star Dash"]) == 0
    out = capsys.readouterr().out
    assert "cd " in out and "spacetime-game dev" in out and "python client.py" in out
    yield tmp_path / "Star Dash"


@pytest.mark.parametrize("engine", ["pygame", "arcade"])
def test_new_makes_a_project_whose_tests_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], engine: str
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["new", "Star Dash", "--engine", engine]) == 0
    assert f"a {'PyGame' if engine == 'pygame' else 'Arcade'} game" in capsys.readouterr().out
    project = tmp_path / "Star Dash"
    assert f"import {engine}" in (project / "client.py").read_text()
    assert sorted(p.name for p in project.iterdir()) == [
        ".gitignore",
        "README.md",
        "assets",
        "client.py",
        "module.py",
        "test_game.py",
    ]
    assert 'DATABASE = "star-dash"' in (project / "module.py").read_text()
    ignored = (project / ".gitignore").read_text().split()
    assert "module_bindings/" in ignored and "spacetime-data/" in ignored
    readme = (project / "README.md").read_text()
    for command in ("spacetime-game dev", "python client.py", "python -m unittest"):
        assert command in readme
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "ARCADE_HEADLESS": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "unittest", "-v"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Ran 5 tests" in run.stderr and "OK" in run.stderr


def test_new_refuses_what_it_cannot_make(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    assert main(["new", "taken"]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"  # untouched
    assert main(["new", "a/b"]) == 2
    assert "not a folder name" in capsys.readouterr().err
    assert main(["new", "!!!"]) == 2
    assert "makes no database name" in capsys.readouterr().err


def test_dev_without_a_module_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["dev"]) == 2
    err = capsys.readouterr().err
    assert "no module at module.py" in err and "spacetime-game new NAME" in err


def test_dev_follows_each_save_of_the_module(project: Path, tmp_path: Path) -> None:
    module = project / "module.py"
    dev = Dev(project)
    conn: DbConnection | None = None
    try:
        assert "client bindings written to" in dev.wait_for("client bindings written")
        assert (project / "module_bindings" / "player.py").is_file()
        mb = bindings(project, tmp_path, "v1")
        conn = DbConnection(mb.MODULE, dev.address, "star-dash", reconnect_min_delay=0.05)
        applied: list[int] = []
        conn.register_on_subscription_applied(lambda: applied.append(1))
        conn.connect()
        conn.subscribe_multi(["SELECT * FROM player", "SELECT * FROM coin"])
        pump(conn, lambda: conn.count_rows("player") == 1 and conn.count_rows("coin") == 10, "the first rows")
        stored = coins(conn)

        # 1. a reducer change: applied at once, the client stays connected
        at = dev.mark()
        edit(module, "    player.name = name\n", "    player.name = name.upper()\n")
        dev.wait_for(r"reloaded module.py: reducers updated, data and clients kept", at)
        mb.set_name("ann", client=conn)
        pump(conn, lambda: [p.name for p in conn.iter_rows("player")] == ["ANN"], "the new rule")
        assert len(applied) == 1  # no reconnect
        assert coins(conn) == stored

        # 2. a column added at the end with a default: rows migrate, the client reconnects by itself and
        #    keeps working with its old bindings; the bindings on disk gain the column
        at = dev.mark()
        edit(module, "    score: u32\n", "    score: u32\n    level: u32 = 1\n")
        dev.wait_for(r"reloaded module.py: `player` gained column level; clients reconnect", at)
        dev.wait_for(r"client bindings written", at)
        pump(conn, lambda: len(applied) == 2, "the reconnect")
        pump(conn, lambda: conn.count_rows("player") == 1, "the player after the reconnect")
        assert coins(conn) == stored  # no coin lost or moved
        assert "level" in (project / "module_bindings" / "player.py").read_text()
        mb2 = bindings(project, tmp_path, "v2")
        fresh = DbConnection(mb2.MODULE, dev.address, "star-dash")
        fresh.connect()
        fresh.subscribe_multi(["SELECT * FROM player"])
        pump(fresh, lambda: fresh.count_rows("player") == 2, "both players, for a client with new bindings")
        assert {p.level for p in fresh.iter_rows("player")} == {1}
        fresh.close()

        # 3. an incompatible change: refused with the reason; the old module keeps serving
        at = dev.mark()
        edit(module, "    level: u32 = 1\n", '    level: str = "one"\n')
        dev.wait_for(r"module.py cannot take over the stored data; still serving the previous version", at)
        dev.wait_for(r"`player.level` changed type from U32 to String", at)
        dev.wait_for(r"spacetime-game dev --clear", at)
        mb.set_name("bo", client=conn)
        pump(
            conn,
            lambda: [p.name for p in conn.iter_rows("player")] == ["BO"],
            "the old module, still serving",
        )

        # 4. a syntax error: file:line and the message; the old module keeps serving
        at = dev.mark()
        module.write_text(
            module.read_text().replace('    level: str = "one"\n', "    level: u32 = 1\n") + "\ndef (:\n"
        )
        line = dev.wait_for(r"still serving the previous version", at)
        assert re.search(r"module\.py:\d+: SyntaxError", line), line
        mb.set_name("cy", client=conn)
        pump(
            conn,
            lambda: [p.name for p in conn.iter_rows("player")] == ["CY"],
            "the old module, still serving",
        )

        # fixed again: served (it matches the running tables), and the data is all there
        at = dev.mark()
        module.write_text(module.read_text().replace("\ndef (:\n", ""))
        dev.wait_for(r"reloaded module.py: reducers updated", at)
        assert coins(conn) == stored
        conn.close()
        conn = None
        assert dev.stop() == 0
    finally:
        if conn is not None:
            conn.close()
        dev.stop()

    # a restart keeps the data; --clear starts over
    dev = Dev(project)
    try:
        conn = DbConnection(mb2.MODULE, dev.address, "star-dash")
        conn.connect()
        conn.subscribe_multi(["SELECT * FROM coin"])
        pump(conn, lambda: conn.count_rows("coin") == 10, "the coins after a restart")
        assert coins(conn) == stored
        conn.close()
    finally:
        dev.stop()
    dev = Dev(project, "--clear")
    try:
        dev.wait_for(r"cleared the stored data of star-dash")
        conn = DbConnection(mb2.MODULE, dev.address, "star-dash")
        conn.connect()
        conn.subscribe_multi(["SELECT * FROM coin"])
        pump(conn, lambda: conn.count_rows("coin") == 10, "the coins of a new database")
        assert coins(conn) != stored
        conn.close()
    finally:
        dev.stop()


def test_dev_listen_prints_the_join_command(project: Path) -> None:
    from spacetime_game.server import reachable_address

    dev = Dev(project, "--listen", "0.0.0.0")
    try:
        shared = reachable_address("0.0.0.0")
        if shared is None:
            pytest.skip("this machine has no address other machines could reach")
        line = dev.wait_for(r"reachable from other machines")
        assert f"--server {shared}:{dev.port}" in line
    finally:
        dev.stop()


@pytest.mark.parametrize("engine", ["pygame", "arcade"])
def test_the_scaffold_is_clean_code(tmp_path: Path, engine: str) -> None:
    """What `new` writes passes ruff as it stands, as a project of its own (spacetime_game third-party)."""
    from spacetime_game.cli._scaffold import create_project

    from .._support import tool

    folder = create_project("lint-me", engine, tmp_path)  # type: ignore[arg-type]
    common = ["--isolated", "--line-length=110"]
    for args in (["check", *common, "--select", "E,F,W,I,B,UP,SIM,RUF"], ["format", "--check", *common]):
        proc = subprocess.run([tool("ruff"), *args, "."], cwd=folder, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
