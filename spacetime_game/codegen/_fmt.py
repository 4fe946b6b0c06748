"""Small helpers that emit Python source the way ruff formats it (double quotes, 88 columns,
brackets split first onto one indented line, then one item per line with a trailing comma)."""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable, Iterator, Sequence
from itertools import pairwise

__all__ = ["LINE", "bracket", "export_key", "q", "sort_names", "split_expr"]

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
    the items always go one per line (isort's parenthesised imports, collection displays). An item
    that is still too long on its own line is split further at its last bracket pair.
    """
    joined = ", ".join(items)
    one = f"{indent}{head}{joined}{tail}"
    if not magic and len(one) <= LINE:
        return [one]
    inner = indent + "    "
    if not magic and len(inner + joined) <= LINE:
        return [f"{indent}{head}", inner + joined, f"{indent}{tail}"]
    if len(items) == 1 and not magic and not head.lstrip().startswith("def "):
        # a sole item gets no trailing comma (only a def's sole parameter does)
        return [f"{indent}{head}", *split_expr(inner, items[0]), f"{indent}{tail}"]
    return [
        f"{indent}{head}",
        *(line for it in items for line in split_expr(inner, f"{it},")),
        f"{indent}{tail}",
    ]


def split_expr(indent: str, text: str) -> list[str]:
    """``text`` at ``indent``, split like ruff's right-hand split when too long: at its last bracket
    pair, the contents hugged on one line if they fit, otherwise one item per line. Collection
    displays (``[a, b]``, ``(a, b)``) with several items always go one item per line."""
    if len(indent + text) <= LINE:
        return [indent + text]
    marks = [(i, ch) for i, ch, depth in _brackets(text) if depth == 0 and ch in "()[]{}"]
    if len(marks) < 2 or marks[-1][1] not in ")]}":
        return [indent + text]
    start, end = marks[-2][0], marks[-1][0]
    body = text[start + 1 : end]
    cuts = [-1, *(i for i, ch, depth in _brackets(body) if ch == "," and depth == 0), len(body)]
    items = [it for it in (body[a + 1 : b].strip() for a, b in pairwise(cuts)) if it]
    if not items:
        return [indent + text]
    before = text[:start].rstrip()
    word = re.findall(r"\w+$", before)
    display = not before or before[-1] in "([{,=:" or (bool(word) and keyword.iskeyword(word[0]))
    return bracket(indent, text[: start + 1], items, text[end:], magic=display and len(items) > 1)


def _brackets(text: str) -> Iterator[tuple[int, str, int]]:
    """Bracket and comma characters outside string literals: ``(position, character, depth)``, the
    depth being the one outside the bracket."""
    depth = 0
    quote = ""
    escaped = False
    for i, ch in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            yield i, ch, depth
            depth += 1
        elif ch in ")]}":
            depth -= 1
            yield i, ch, depth
        elif ch == ",":
            yield i, ch, depth
