"""``spacetime-game demo``: the arena is the default, each demo takes its own options, and a wrong name
says which demos there are."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from spacetime_game.cli._main import DEMOS, _demo, main

ROOT = Path(__file__).resolve().parents[2]


def test_a_wrong_demo_is_named_with_the_ones_there_are(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "pinball"]) == 2
    err = capsys.readouterr().err
    assert "no demo 'pinball'" in err and "arena" in err and "chat" in err


def test_the_arena_is_the_default_and_takes_its_own_options() -> None:
    assert set(DEMOS) == {"arena", "chat"}
    for argv in (["demo", "--help"], ["demo", "arena", "--help"]):
        done = subprocess.run(
            [sys.executable, "-m", "spacetime_game.cli", *argv],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    arena = subprocess.run(
        [sys.executable, "-m", "spacetime_game.cli", "demo", "--engine", "arcade", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert arena.returncode == 0 and "--bots N" in arena.stdout and "--lag MS" in arena.stdout, arena.stderr
    chat = subprocess.run(
        [sys.executable, "-m", "spacetime_game.cli", "demo", "chat", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert chat.returncode == 0 and "--server" in chat.stdout and "--bots" not in chat.stdout


def test_an_option_error_is_the_demos_own(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        _demo(["arena", "--engine", "unity"])
    assert exit_.value.code == 2
    assert "invalid choice: 'unity'" in capsys.readouterr().err
