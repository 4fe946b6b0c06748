"""``spacetime-game generate`` end to end, the way a user runs it: in an empty folder, then ``import mb``
with ``gen`` on the path; the output passes ``ruff check``, ``ruff format --check`` (ruff's own defaults,
not this repository's settings) and ``mypy --strict``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ._helpers import DATA, SCHEMAS, generated_files, subprocess_env, tool


def _command() -> list[str]:
    """The installed ``spacetime-game`` script (the module when the script is not on disk)."""
    exe = Path(sys.executable).parent / "spacetime-game"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "spacetime_game.cli"]


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env or subprocess_env(), capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty folder in which ``spacetime-game generate`` wrote ``gen/<package>`` for each test schema
    (``gen/mb`` is Blackholio, as in the issue)."""
    work = tmp_path_factory.mktemp("empty")
    assert list(work.iterdir()) == []
    packages = {"mb": DATA / "blackholio.schema.json"} | {
        f"pkg_{name}": path for name, path in SCHEMAS.items() if name != "blackholio"
    }
    for package, schema in packages.items():
        proc = _run([*_command(), "generate", "--schema", str(schema), "--out-dir", f"gen/{package}"], work)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.startswith("wrote ") and f"gen/{package}" in proc.stdout
        assert proc.stderr == ""
    return work / "gen"


def test_generate_writes_the_package_in_an_empty_folder(gen: Path) -> None:
    written = {p.name: p.read_text(encoding="utf-8") for p in (gen / "mb").iterdir()}
    assert written == generated_files("blackholio")
    assert {"__init__.py", "_module.py", "circle.py", "update_player_input_reducer.py"} <= set(written)


def test_import_mb_with_gen_on_the_path(gen: Path) -> None:
    code = (
        "import mb\n"
        "from spacetime_game.sdk import Timestamp\n"
        "c = mb.Circle(1, 2, mb.DbVector2(1.0, -2.0), 3.5, Timestamp(7))\n"
        "codec = mb.MODULE.table('circle').codec\n"
        "assert codec.decode(codec.encode(c)) == c\n"
        "print(sorted(mb.MODULE.tables))\n"
        "print(sorted(mb.MODULE.reducers))\n"
    )
    proc = _run([sys.executable, "-c", code], gen.parent, subprocess_env(gen))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tables, reducers = proc.stdout.splitlines()
    assert "'circle'" in tables and "'consume_entity_timer'" in tables
    assert reducers == str(
        sorted(["enter_game", "player_split", "respawn", "suicide", "update_player_input"])
    )


def test_every_generated_package_imports(gen: Path) -> None:
    names = sorted(p.name for p in gen.iterdir())
    code = "import importlib\n" + "".join(f"importlib.import_module({n!r})\n" for n in names)
    proc = _run([sys.executable, "-c", code], gen.parent, subprocess_env(gen))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_check_and_format_pass_on_the_output(gen: Path) -> None:
    for args in (["check"], ["format", "--check"]):
        proc = _run([tool("ruff"), *args, "--no-cache", "--isolated", "."], gen)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_passes_on_the_output(gen: Path, tmp_path: Path) -> None:
    packages = sorted(p.name for p in gen.iterdir())
    args = [tool("mypy"), "--strict", "--cache-dir", str(tmp_path / "mypy-cache"), *packages]
    proc = _run(args, gen)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success: no issues found" in proc.stdout


def test_mypy_strict_catches_a_wrong_argument_type(gen: Path, tmp_path: Path) -> None:
    """The annotations are real: mypy rejects a str passed for ``DbVector2`` (so the check above can fail)."""
    (tmp_path / "game.py").write_text(
        "import mb\n\nmb.update_player_input('north')\nmb.Circle.filter_by_entity_id('1')\n", encoding="utf-8"
    )
    args = [tool("mypy"), "--strict", "--cache-dir", str(tmp_path / "mypy-cache"), "game.py"]
    proc = _run(args, tmp_path, subprocess_env(gen))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'Argument 1 to "update_player_input" has incompatible type "str"' in proc.stdout
    assert 'Argument 1 to "filter_by_entity_id" of "Circle" has incompatible type "str"' in proc.stdout


def test_mypy_sees_the_reducer_call_handle(gen: Path, tmp_path: Path) -> None:
    """A generated reducer function returns the public ``ReducerCall`` (not ``Any``): mypy accepts it
    where a ReducerCall is expected and rejects it where something else is."""
    (tmp_path / "game.py").write_text(
        "import mb\n"
        "from spacetime_game.sdk import ReducerCall\n\n\n"
        "def steer(direction: mb.DbVector2) -> None:\n"
        "    call: ReducerCall = mb.update_player_input(direction)\n"
        "    wrong: int = mb.update_player_input(direction)\n"
        "    print(call, wrong)\n",
        encoding="utf-8",
    )
    args = [tool("mypy"), "--strict", "--cache-dir", str(tmp_path / "mypy-cache"), "game.py"]
    proc = _run(args, tmp_path, subprocess_env(gen))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and "game.py:7:" in errors[0], proc.stdout
    assert 'expression has type "ReducerCall", variable has type "int"' in errors[0]


def test_generate_again_replaces_stale_files_but_keeps_the_users(tmp_path: Path) -> None:
    out = tmp_path / "bindings"
    assert (
        _run(
            [*_command(), "generate", "--schema", str(SCHEMAS["blackholio"]), "--out-dir", str(out)], tmp_path
        ).returncode
        == 0
    )
    (out / "notes.py").write_text("# mine\n", encoding="utf-8")
    proc = _run(
        [*_command(), "generate", "--schema", str(SCHEMAS["example"]), "--out-dir", str(out)], tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in out.glob("*.py")} == set(generated_files("example")) | {"notes.py"}
    assert not list(out.glob("*.tmp"))
