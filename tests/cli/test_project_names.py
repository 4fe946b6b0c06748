"""Names and the documented generate command (issue: the game-jam workflow): ``serve`` names the database
after the module (its ``DATABASE``, else its file's name, or its folder's for a ``module.py``) unless
``--database`` is given, and ``generate --lang python --out-dir DIR --project-path PATH`` writes the
bindings of a module file or of a folder's ``module.py`` with no server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spacetime_game.sdk.sats import SchemaError
from spacetime_game.server import load_module

ROOT = Path(__file__).resolve().parents[2]
ARENA = ROOT / "demos" / "arena"


def _write(path: Path, declare: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (
        "from typing import Annotated\n"
        "from spacetime_game.server import primary_key, table, u32\n"
        f"{declare}\n\n"
        "@table(public=True)\n"
        "class Dot:\n"
        "    id: Annotated[u32, primary_key]\n"
        "    x: float\n"
    )
    path.write_text(text)
    return path


def test_the_database_is_named_after_the_module(tmp_path: Path) -> None:
    assert load_module(_write(tmp_path / "My Game_2.py")).database_name == "my-game-2"
    assert load_module(_write(tmp_path / "dots" / "module.py")).database_name == "dots"
    declared = _write(tmp_path / "other.py", 'DATABASE = "dot-world"')
    assert load_module(declared).database_name == "dot-world"
    assert load_module(ARENA / "module.py").database_name == "blackholio"
    with pytest.raises(SchemaError, match="is not a database name"):
        load_module(_write(tmp_path / "bad.py", 'DATABASE = "Not Valid"'))


def _serve_and_read_name(module: Path, *extra: str) -> str:
    cmd = [sys.executable, "-m", "spacetime_game.cli", "serve", str(module), "--in-memory", "--port", "0"]
    proc = subprocess.Popen(
        [*cmd, *extra], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=module.parent
    )
    assert proc.stderr is not None
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if "serving database" in line:
                return line.split("serving database", 1)[1].split()[0].strip("'\"")
            assert line or proc.poll() is None, "the server exited before serving"
        raise AssertionError("the server never said what it serves")
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_takes_the_modules_name_and_database_overrides_it(tmp_path: Path) -> None:
    module = _write(tmp_path / "dots" / "module.py")
    assert _serve_and_read_name(module) == "dots"
    assert _serve_and_read_name(module, "--database", "elsewhere") == "elsewhere"


def _generate(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "spacetime_game.cli", "generate", *args]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=60)


@pytest.mark.parametrize("given", ["folder", "file"])
def test_generate_from_a_project_path_writes_the_modules_bindings(given: str, tmp_path: Path) -> None:
    out = tmp_path / "module_bindings"
    path = ARENA if given == "folder" else ARENA / "module.py"
    done = _generate("--lang", "python", "--out-dir", str(out), "--project-path", str(path))
    assert done.returncode == 0, done.stderr
    shipped = ARENA / "module_bindings"
    names = sorted(p.name for p in shipped.glob("*.py"))
    assert sorted(p.name for p in out.glob("*.py")) == names
    # the same code as the bindings generated from Blackholio's schema file; only the header's source differs
    first = (out / "__init__.py").read_text().splitlines()[0]
    assert "module.py (database blackholio)" in first
    for name in names:
        ours = (out / name).read_text().replace("module.py (database blackholio)", "SOURCE")
        theirs = (shipped / name).read_text().replace("blackholio.schema.json", "SOURCE")
        assert ours.splitlines()[1:] == theirs.splitlines()[1:], name


def test_generate_refuses_other_languages_and_a_folder_without_a_module(tmp_path: Path) -> None:
    done = _generate("--lang", "rust", "--out-dir", str(tmp_path / "x"), "--project-path", str(ARENA))
    assert done.returncode == 2 and "Python bindings only" in done.stderr
    done = _generate("--out-dir", str(tmp_path / "x"), "--project-path", str(tmp_path))
    assert done.returncode == 2 and "holds no module.py" in done.stderr
    assert not (tmp_path / "x").exists(), "nothing is written on an error"
