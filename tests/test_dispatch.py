"""Dispatch over messages, events and states is exhaustive: every ``match`` in the package ends with
``case _: assert_never(...)``, so that mypy (strict, run by tests/test_quality.py) names each place that a
new message, event or state must be handled, instead of the new case falling through silently. A match
over another library's type that mypy cannot check whole says so on its line (``# open match: why``)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "spacetime_game"


def _ends_in_assert_never(node: ast.Match) -> bool:
    last = node.cases[-1]
    if not (isinstance(last.pattern, ast.MatchAs) and last.pattern.pattern is None and last.guard is None):
        return False  # the last case is not a bare `case _:`
    body = last.body
    return (
        len(body) == 1
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Call)
        and isinstance(body[0].value.func, ast.Name)
        and body[0].value.func.id == "assert_never"
    )


#: the marker of a match that cannot be exhaustive (over another library's type), with its reason
OPEN = "# open match: "


def _matches(source: str, filename: str) -> list[tuple[int, bool]]:
    """(line, ok) of every match: ok when it ends in assert_never, or is marked open with a reason."""
    tree = ast.parse(source, filename)
    lines = source.splitlines()
    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Match):
            marked = lines[n.lineno - 1].partition(OPEN)[2].strip()
            found.append((n.lineno, _ends_in_assert_never(n) or bool(marked)))
    return found


def test_every_match_ends_in_assert_never() -> None:
    found = 0
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, ok in _matches(path.read_text(encoding="utf-8"), str(path)):
            found += 1
            if not ok:
                bad.append(f"{path.relative_to(ROOT)}:{line}")
    assert found >= 6, "the dispatch sites are gone: has the check gone stale?"
    assert not bad, (
        f"a match that a new case could fall through (end it with `case _: assert_never(x)`): {bad}"
    )


def test_the_check_tells_the_two_apart() -> None:
    good = "match x:\n    case int():\n        pass\n    case _:\n        assert_never(x)\n"
    falls_through = "match x:\n    case int():\n        pass\n"
    swallows = "match x:\n    case int():\n        pass\n    case _:\n        pass\n"
    assert _matches(good, "good") == [(1, True)]
    assert _matches(falls_through, "a") == [(1, False)]
    assert _matches(swallows, "b") == [(1, False)]
    marked = falls_through.replace("match x:", "match x:  # open match: x is another library's enum")
    assert _matches(marked, "c") == [(1, True)]
    assert _matches(falls_through.replace("match x:", "match x:  # open match: "), "d") == [(1, False)]


SNIPPET = """
from typing import assert_never

from spacetime_game.sdk import TransportClosed, TransportError, TransportEvent, TransportMessage, TransportOpened
from spacetime_game.sdk.protocol import ServerMessage, TransactionUpdate


def complete(ev: TransportEvent) -> None:
    match ev:
        case TransportOpened() | TransportMessage() | TransportError() | TransportClosed():
            pass
        case _:
            assert_never(ev)


def forgets_one_event(ev: TransportEvent) -> None:
    match ev:
        case TransportOpened() | TransportMessage() | TransportError():
            pass
        case _:
            assert_never(ev)


def forgets_most_messages(msg: ServerMessage) -> None:
    match msg:
        case TransactionUpdate():
            pass
        case _:
            assert_never(msg)
"""


def test_mypy_names_a_case_left_out(tmp_path: Path) -> None:
    """The unions are closed types that mypy checks: a match that leaves a member out is an error."""
    import subprocess
    import sys

    path = tmp_path / "dispatch_snippet.py"
    path.write_text(SNIPPET, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in run.stdout.splitlines() if ": error:" in line]
    lines = sorted({int(line.split(":")[1]) for line in errors})
    text = SNIPPET.splitlines()
    assert [text[n - 1].strip() for n in lines] == ["assert_never(ev)", "assert_never(msg)"], run.stdout
    assert "TransportClosed" in run.stdout and "ReducerResult" in run.stdout, run.stdout
