"""The example of docs/pygame.md runs as it is written: its module under ``spacetime-game serve``, its
bindings from ``spacetime-game generate``, and the game headless in a child process for 240 frames, with
the right arrow key held for the first 45, next to a second client (this test). The screenshot of its
last frame shows both players' circles where their rows say they are, and the game leaves no thread."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from spacetime_game.sdk import DbConnection
from spacetime_game.server import DevServerProcess
from tests._support import forget

ROOT = Path(__file__).resolve().parent.parent.parent
DOC = ROOT / "docs" / "pygame.md"
FRAMES = 240
HELD = 45

#: Runs the example with a frame limit, the right arrow held for the first frames, and a screenshot of
#: the last frame (the example itself knows nothing of this).
HARNESS = textwrap.dedent(
    """
    import os, runpy, sys, threading, time

    import pygame

    frames, held, shot = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    frame = 0
    flip = pygame.display.flip


    class Keys:
        def __getitem__(self, key):
            return frame < held and key == pygame.K_RIGHT


    def counted_flip():
        global frame
        frame += 1
        if frame == frames:
            pygame.image.save(pygame.display.get_surface(), shot)
            pygame.event.post(pygame.event.Event(pygame.QUIT))
        flip()


    pygame.key.get_pressed = lambda: Keys()
    pygame.display.flip = counted_flip
    runpy.run_path(sys.argv[1], run_name="__main__")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        t.name.startswith("spacetime-game-") for t in threading.enumerate()
    ):
        time.sleep(0.05)
    left = [t.name for t in threading.enumerate() if t.name.startswith("spacetime-game-")]
    print("frames", frame, "threads left", left)
    """
)


def blocks() -> tuple[str, str]:
    """The module and the game of the page (its two Python blocks)."""
    found = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    module = [b for b in found if "@table" in b]
    game = [b for b in found if "pygame.init()" in b]
    assert len(module) == 1 and len(game) == 1, "docs/pygame.md has one module and one game"
    assert len(game[0].strip().splitlines()) < 40, "the example must stay under 40 lines"
    return module[0], game[0]


def test_the_documented_example_runs_as_written(pygame: ModuleType, tmp_path: Path) -> None:
    module, game = blocks()
    (tmp_path / "circles_module.py").write_text(module)
    (tmp_path / "circles.py").write_text(game)
    (tmp_path / "harness.py").write_text(HARNESS)
    shot = tmp_path / "last_frame.png"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    env |= {"SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    with DevServerProcess(tmp_path / "circles_module.py", "circles", env={"PYTHONPATH": str(ROOT)}) as server:
        # the page's `spacetime-game generate` command
        gen = [sys.executable, "-m", "spacetime_game.cli", "generate", "--server", f"http://{server.address}"]
        gen += ["--database", "circles", "--out-dir", str(tmp_path / "module_bindings")]
        proc = subprocess.run(gen, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr

        # the second client: this test, with the same bindings
        sys.path.insert(0, str(tmp_path))
        try:
            import module_bindings as mb  # type: ignore[import-not-found]
        finally:
            sys.path.remove(str(tmp_path))
        seen: dict[Any, Any] = {}
        conn = DbConnection(mb.MODULE, server.address, "circles")
        try:
            conn.on_row("player", "insert", lambda row, ev: seen.__setitem__(row.identity, row))
            conn.on_row("player", "update", lambda old, new, ev: seen.__setitem__(new.identity, new))
            conn.connect()
            conn.subscribe_multi(["SELECT * FROM player"])
            deadline = time.monotonic() + 20
            while conn.identity not in seen:
                conn.update()
                assert time.monotonic() < deadline, "this client's player did not appear"
                time.sleep(0.01)
            me = seen[conn.identity]

            env["SPACETIME_HOST"] = server.address
            command = [sys.executable, str(tmp_path / "harness.py"), str(tmp_path / "circles.py")]
            command += [str(FRAMES), str(HELD), str(shot)]
            child = subprocess.Popen(
                command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            try:
                deadline = time.monotonic() + 120
                while child.poll() is None:  # keep this client alive while the game runs
                    conn.update()
                    assert time.monotonic() < deadline, "the example did not end"
                    time.sleep(0.01)
                out, err = child.communicate(timeout=30)
            finally:
                if child.poll() is None:
                    child.kill()
                    child.communicate()
            assert child.returncode == 0, err
            # the QUIT posted after frame FRAMES is read in the next one, which is the last
            assert f"frames {FRAMES + 1} threads left []" in out, (out, err)
            assert "pygame" not in err.lower() or "Traceback" not in err, err
        finally:
            conn.close()
            forget(mb)

    others = [row for identity, row in seen.items() if identity != conn.identity]
    assert len(others) == 1, "the example's player never appeared"
    theirs = others[0]  # its last position: the keys were released long before the last frame
    assert theirs.x >= 100.0 + 110.0 + 100.0, f"the right arrow did not move the example's circle: {theirs}"

    if os.environ.get("SPACETIME_GAME_SCREENSHOTS"):
        (Path(os.environ["SPACETIME_GAME_SCREENSHOTS"]) / "docs_example.png").write_bytes(shot.read_bytes())
    image = pygame.image.load(str(shot))
    assert image.get_size() == (640, 480)

    def at(x: float, y: float) -> tuple[int, int, int]:
        return tuple(image.get_at((round(x), round(y))))[:3]  # type: ignore[return-value]

    gold, blue, background = (255, 196, 87), (94, 188, 255), (24, 28, 40)
    assert at(theirs.x, theirs.y) == gold, "the example's own circle is not where its row is"
    assert at(me.x, me.y) == blue, "the other player's circle is not where its row is"
    assert at(theirs.x + 21, theirs.y) != background  # the white outline
    assert at(theirs.x - 120, theirs.y) == background  # it left its start
    assert at(600, 30) == background
