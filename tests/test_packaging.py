"""The distribution ships every package: the library's (``spacetime_game.*``) and the demos, which the
repository keeps in ``demos/`` and ``assets/`` and an installed copy carries as ``spacetime_game_demos``
(so that ``spacetime-game demo`` works without the repository). The package list in ``pyproject.toml``
is explicit (it maps folders to other names), so this test keeps it complete."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _packages_on_disk() -> set[str]:
    found = set()
    for folder, name in (("spacetime_game", "spacetime_game"), ("demos", "spacetime_game_demos")):
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join((name, *rel.parts)))
    found.add("spacetime_game_demos.assets")
    return found


def test_every_package_is_listed_and_mapped() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(config["packages"]) == _packages_on_disk()
    assert config["package-dir"] == {"spacetime_game_demos": "demos", "spacetime_game_demos.assets": "assets"}
    assert (ROOT / "assets" / "__init__.py").is_file()


def test_the_project_templates_are_package_data() -> None:
    """`spacetime-game new` reads its templates from the installed package: each one must be shipped."""
    import fnmatch

    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = globs["spacetime_game"]
    templates = [p for p in (ROOT / "spacetime_game" / "cli" / "templates").rglob("*") if p.is_file()]
    assert len(templates) >= 7
    for path in templates:
        rel = path.relative_to(ROOT / "spacetime_game").as_posix()
        assert any(fnmatch.fnmatch(rel, g) for g in shipped), f"{rel} is not in the package data"


def test_the_console_page_is_package_data() -> None:
    """The dev server serves its console from the installed package: each file must be shipped."""
    import fnmatch

    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = globs["spacetime_game"]
    files = [p for p in (ROOT / "spacetime_game" / "server" / "console").rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"index.html", "console.js", "console.css"}
    for path in files:
        rel = path.relative_to(ROOT / "spacetime_game").as_posix()
        assert any(fnmatch.fnmatch(rel, g) for g in shipped), f"{rel} is not in the package data"
