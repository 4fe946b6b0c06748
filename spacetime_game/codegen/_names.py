"""Python names for schema names: snake_case files and functions, CamelCase classes, no keywords."""

from __future__ import annotations

import keyword
import re

__all__ = ["NameSpace", "camel_case", "safe_identifier", "snake_case"]

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z0-9])|[A-Z]?[a-z0-9]+|[A-Z]+|[0-9]+")


def _words(name: str) -> list[str]:
    return _WORD.findall(name.replace("-", "_"))


def snake_case(name: str) -> str:
    """``PlayerInput`` -> ``player_input``; ``DbVector2`` -> ``db_vector2``; keeps leading underscores."""
    lead = len(name) - len(name.lstrip("_"))
    words = [w.lower() for w in _words(name)]
    out = "_" * lead + "_".join(words)
    return safe_identifier(out or "x")


def camel_case(name: str) -> str:
    """``logged_out_player`` -> ``LoggedOutPlayer``; an existing CamelCase name is kept."""
    words = _words(name)
    out = "".join(w[:1].upper() + w[1:] for w in words)
    return safe_identifier(out or "X")


def safe_identifier(name: str) -> str:
    """A valid, non-keyword identifier: ``class`` -> ``class_``, ``2d`` -> ``_2d``."""
    name = re.sub(r"\W", "_", name)
    if not name or name[0].isdigit():
        name = "_" + name
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in {"None", "True", "False"}:
        name += "_"
    return name


class NameSpace:
    """Hands out unique names: the second ``player`` becomes ``player_2``."""

    def __init__(self, reserved: set[str] | None = None) -> None:
        self.used: set[str] = {n.lower() for n in (reserved or set())}

    def take(self, name: str) -> str:
        """``name``, or ``name_2``, ``name_3``... if taken (compared case-insensitively, for file systems)."""
        candidate = name
        n = 2
        while candidate.lower() in self.used:
            candidate = f"{name}_{n}"
            n += 1
        self.used.add(candidate.lower())
        return candidate
