"""``spacetime-game new``: a ready game project from the templates in ``templates/``."""

from __future__ import annotations

import re
import shutil
from importlib import resources
from pathlib import Path
from typing import Literal

__all__ = ["ENGINES", "create_project", "database_name"]

Engine = Literal["pygame", "arcade"]
#: The engines a project can be made for, and how the README names them.
ENGINES: dict[str, str] = {"pygame": "PyGame", "arcade": "Arcade"}

#: template file -> the file it becomes in the project (the client depends on the engine).
_FILES = {
    "module.py.template": "module.py",
    "test_game.py.template": "test_game.py",
    "README.md.template": "README.md",
    "gitignore.template": ".gitignore",
}


def database_name(name: str) -> str:
    """The database name for a project called ``name``: lower-case letters, digits and '-'."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not slug or not slug[0].isalnum():
        raise ValueError(f"{name!r} makes no database name: use letters and digits")
    return slug


def create_project(name: str, engine: Engine = "pygame", parent: str | Path = ".") -> Path:
    """Write a new game project into ``parent/name`` and return its folder. The folder must not exist
    yet, or be empty (``FileExistsError`` otherwise: nothing of the user's is overwritten)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: choose {' or '.join(ENGINES)}")
    if not name or Path(name).name != name or name in (".", ".."):
        raise ValueError(f"{name!r} is not a folder name (give a name such as my-game, without slashes)")
    database = database_name(name)
    target = Path(parent) / name
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(f"{target} already exists and is not empty; choose another name")
    title = re.sub(r"[-_]+", " ", name).strip().title()
    values = {"title": title, "database": database, "engine_name": ENGINES[engine]}
    files = dict(_FILES)
    files[f"client_{engine}.py.template"] = "client.py"
    templates = resources.files(__package__).joinpath("templates")
    target.mkdir(parents=True, exist_ok=True)
    try:
        for template, out in files.items():
            text = templates.joinpath(template).read_text(encoding="utf-8")
            for key, value in values.items():
                text = text.replace("{{" + key + "}}", value)
            (target / out).write_text(text, encoding="utf-8")
        (target / "assets").mkdir()
        for asset in templates.joinpath("assets").iterdir():
            if asset.name.endswith(".png"):
                (target / "assets" / asset.name).write_bytes(asset.read_bytes())
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target
