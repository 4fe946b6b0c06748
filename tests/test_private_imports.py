"""No code reaches into another package's private modules or names.

A private module or name (one whose name starts with ``_``) belongs to the package that holds it: code in
that package (or in a private subpackage of it) may import it; nothing else may, not the CLI, the
benchmarks, the demos, nor tests, except a test directory that checks the internals of the package it
mirrors (``tests/server`` for ``spacetime_game.server``, and so on). Everything else goes through the
public names each package exports in ``__all__``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: the package whose internals each test directory may check
TEST_DIRS = {
    "tests/sats": "spacetime_game.sdk.sats",
    "tests/protocol": "spacetime_game.sdk.protocol",
    "tests/schema": "spacetime_game.sdk.schema",
    "tests/client": "spacetime_game.sdk",
    "tests/codegen": "spacetime_game.codegen",
    "tests/server": "spacetime_game.server",
    "tests/cli": "spacetime_game.cli",
    "tests/engine": "spacetime_game.engine",
}


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _owner(module: str) -> str:
    """The package that a dotted name belongs to: everything before its first private part."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if _private(part):
            return ".".join(parts[:i])
    return module


def _home(path: Path) -> tuple[str | None, str | None]:
    """(the dotted module of a file inside spacetime_game, the package whose internals it may use)."""
    rel = path.relative_to(ROOT)
    if rel.parts[0] == "spacetime_game":
        dotted = ".".join(rel.with_suffix("").parts)
        if dotted.endswith(".__init__"):
            dotted = dotted.removesuffix(".__init__")
            package = dotted
        else:
            package = dotted.rsplit(".", 1)[0]
        return dotted, _owner(package)
    for folder, package in TEST_DIRS.items():
        if rel.as_posix().startswith(folder + "/"):
            return None, package
    return None, None


def _imports(path: Path, dotted: str | None) -> Iterator[tuple[int, str]]:
    """Every (line, imported dotted name) of a file, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                if dotted is None:
                    continue  # a relative import among tests: not into the package
                is_package = path.name == "__init__.py"
                anchor = dotted.split(".")
                drop = node.level - 1 + (0 if is_package else 1)
                anchor = anchor[: len(anchor) - drop] if drop else anchor
                base = ".".join(anchor + ([base] if base else []))
            if not base.startswith("spacetime_game"):
                continue
            for alias in node.names:
                yield node.lineno, base if alias.name == "*" else f"{base}.{alias.name}"


def _files() -> Iterator[Path]:
    for top in ("spacetime_game", "tests", "benchmarks", "demos"):
        folder = ROOT / top
        if folder.is_dir():
            for path in sorted(folder.rglob("*.py")):
                if "node_modules" not in path.parts and ".venv" not in path.parts:
                    yield path


def violations() -> list[str]:
    found = []
    for path in _files():
        dotted, allowed = _home(path)
        for line, name in _imports(path, dotted):
            if not name.startswith("spacetime_game"):
                continue
            owner = _owner(name)
            if owner == name:
                continue  # nothing private in it
            if allowed is not None and owner == allowed:
                continue
            found.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    return found


def test_no_import_of_another_packages_private_names() -> None:
    found = violations()
    assert not found, "private names imported from outside their package:\n" + "\n".join(found)


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    # the resolution of a relative import and the owner of a private name, on made-up paths
    assert _owner("spacetime_game.server._app.DevServer") == "spacetime_game.server"
    assert _owner("spacetime_game.sdk.sats._bsatn") == "spacetime_game.sdk.sats"
    assert _owner("spacetime_game.sdk.protocol.ServerMessage") == "spacetime_game.sdk.protocol.ServerMessage"
    cli = ROOT / "spacetime_game" / "cli" / "_main.py"
    dotted, allowed = _home(cli)
    assert (dotted, allowed) == ("spacetime_game.cli._main", "spacetime_game.cli")
    assert _home(ROOT / "spacetime_game" / "server" / "_sql" / "_plan.py")[1] == "spacetime_game.server"
    assert _home(ROOT / "tests" / "faults" / "test_churn.py") == (None, None)
    assert _home(ROOT / "tests" / "server" / "test_ws.py") == (None, "spacetime_game.server")
