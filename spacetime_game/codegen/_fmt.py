"""Small helpers that emit Python source the way ruff formats it (double quotes, 88 columns,
brackets split first onto one indented line, then one item per line with a trailing comma)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["LINE", "bracket", "export_key", "q", "sort_names"]

LINE = 88


def q(text: str) -> str:
    """A string literal in ruff's preferred quotes."""
    r = repr(text)
    if r.startswith("'") and '"' not in text:
        r = '"' + r[1:-1].replace("\\'", "'") + '"'
    return r


def export_key(name: str) -> tuple[int, str]:
    """isort "order by type": CONSTANTS, then Classes, then everything else."""
    bare = name.lstrip("_")
    if len(bare) > 1 and bare.isupper():
        return (0, name)
    if bare[:1].isupper():
        return (1, name)
    return (2, name)


def sort_names(names: Iterable[str]) -> list[str]:
    """Names in isort / RUF022 order."""
    return sorted(set(names), key=export_key)


def bracket(indent: str, head: str, items: Sequence[str], tail: str, *, magic: bool = False) -> list[str]:
    """``head`` + items joined by commas + ``tail``, split like ruff when too long.

    ``head`` ends with the opening bracket and ``tail`` starts with the closing one. With ``magic``
    the items always go one per line (isort's parenthesised imports).
    """
    joined = ", ".join(items)
    one = f"{indent}{head}{joined}{tail}"
    if not magic and len(one) <= LINE:
        return [one]
    inner = indent + "    "
    if not magic and len(inner + joined) <= LINE:
        return [f"{indent}{head}", inner + joined, f"{indent}{tail}"]
    return [f"{indent}{head}", *(f"{inner}{it}," for it in items), f"{indent}{tail}"]
