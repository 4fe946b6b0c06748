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
    """Hands out unique names: the second ``player`` becomes ``player_2``.

    Names are compared case-insensitively (for file systems) unless ``fold_case`` is False (for
    Python identifiers, where ``Any`` and ``any`` do not clash)."""

    def __init__(self, reserved: set[str] | None = None, *, fold_case: bool = True) -> None:
        self.fold_case = fold_case
        self.used: set[str] = {self._key(n) for n in (reserved or set())}

    def _key(self, name: str) -> str:
        return name.lower() if self.fold_case else name

    def take(self, name: str) -> str:
        """``name``, or ``name_2``, ``name_3``... if taken."""
        candidate = name
        n = 2
        while self._key(candidate) in self.used:
            candidate = f"{name}_{n}"
            n += 1
        self.used.add(self._key(candidate))
        return candidate
