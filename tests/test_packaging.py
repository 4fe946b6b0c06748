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
