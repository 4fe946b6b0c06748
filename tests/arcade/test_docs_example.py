"""The example of docs/arcade.md, run as written: its module served by ``spacetime-game serve`` (a child
process), its bindings made by ``spacetime-game generate``, its game run headless by ``arcade.run`` for
300 frames (``SPACETIME_GAME_FRAMES``) while a second client joins and moves. The screenshot of the last
frame shows the game's own circle and the other player's where the server has them, and the overlay."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from spacetime_game.engine import FrameDriver
from spacetime_game.sdk import DbConnection
from spacetime_game.sdk.schema import ModuleSchema
from spacetime_game.server import DevServerProcess, load_module
from tests._support import forget, import_generated

from ._helpers import adapter, near

ROOT = Path(__file__).resolve().parent.parent.parent
DOC = ROOT / "docs" / "arcade.md"
W, H = 800, 600
FRAMES = 300
BACKGROUND = (24, 28, 40)
MINE = (110, 210, 140)
OTHER = (104, 170, 255)


def example_files() -> dict[str, str]:
    """The python blocks of the page that start with ``# file: NAME``, by name."""
    blocks = re.findall(r"```python\n(.*?)\n```", DOC.read_text(encoding="utf-8"), flags=re.S)
    out = {}
    for block in blocks:
        first = block.splitlines()[0]
        if first.startswith("# file: "):
            out[first.removeprefix("# file: ").strip()] = block + "\n"
    return out


def test_the_example_is_complete_and_short() -> None:
    files = example_files()
    assert set(files) == {"circles.py", "circles_game.py"}
    assert len(files["circles_game.py"].splitlines()) < 40, "the game example must stay under 40 lines"
    text = DOC.read_text(encoding="utf-8")
    commands = re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)[0]
    assert "spacetime-game serve circles.py --database circles" in commands
    assert (
        "spacetime-game generate --server http://localhost:3000 --database circles --out-dir module_bindings"
        in commands
    )


def test_the_example_runs_as_written_against_spacetime_game_serve(tmp_path: Path) -> None:
    adapter()  # skips (fails in CI) without headless arcade
    files = example_files()
    for name, code in files.items():
        (tmp_path / name).write_text(code)
    cli = [sys.executable, "-m", "spacetime_game.cli"]
    with DevServerProcess(tmp_path / "circles.py", "circles") as server:
        gen = subprocess.run(
            [
                *cli,
                "generate",
                "--server",
                f"http://{server.address}",
                "--database",
                "circles",
                "--out-dir",
                "module_bindings",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert gen.returncode == 0, gen.stderr
        # the second player: this test, with bindings of the same module
        schema = ModuleSchema.from_json(load_module(tmp_path / "circles.py").schema_json())
        (tmp_path / "mine").mkdir()
        mb = import_generated(schema, tmp_path / "mine", "circles.py", prefix="circles")
        conn = DbConnection(mb.MODULE, server.address, "circles")
        driver = FrameDriver(conn)
        conn.subscribe_multi(["SELECT * FROM player"])
        shot = tmp_path / "shot.png"
        env = {**os.environ, "ARCADE_HEADLESS": "1", "SPACETIME_GAME_FRAMES": str(FRAMES)}
        env["SPACETIME_GAME_SCREENSHOT"] = str(shot)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        try:
            tick(driver, lambda: conn.identity is not None and len(list(conn.iter_rows("player"))) == 1)
            mb.move(-200.0, -150.0, client=conn)  # to (200, 150)
            tick(driver, lambda: mb.Player.filter_by_identity(conn.identity, client=conn).x == 200.0)
            game = subprocess.Popen(
                [sys.executable, "circles_game.py", server.address],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                tick(driver, lambda: len(list(conn.iter_rows("player"))) == 2, timeout=60)
                out, err = game.communicate(timeout=120)
            finally:
                if game.poll() is None:
                    game.kill()
                    game.communicate()
            assert game.returncode == 0, f"the example failed:\n{out}\n{err}"
            tick(driver, lambda: len(list(conn.iter_rows("player"))) == 1)  # it left when it closed
        finally:
            driver.close()
            forget(mb)
    keep = os.environ.get("SPACETIME_GAME_SCREENSHOTS")
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    if keep:
        image.save(Path(keep) / "arcade_example.png")
    assert image.size == (W, H)

    def at(x: float, y: float) -> tuple[int, ...]:
        return tuple(image.getpixel((round(x), H - 1 - round(y))))

    assert near(at(400, 300), MINE), f"the game's own circle, at its spawn point: {at(400, 300)}"
    assert near(at(200, 150), OTHER), f"the other player's circle, where it moved: {at(200, 150)}"
    assert near(at(700, 500), BACKGROUND) and near(at(600, 100), BACKGROUND)
    ring = at(400 + 20.5, 300)  # the white ring around the own circle
    assert min(ring) > 150, ring
    # the overlay (shown from the start) sits top left, dark, with text
    panel = image.crop((10, 10, 310, 120)).convert("L")
    assert max(panel.getdata()) > 180 and sorted(panel.getdata())[len(panel.getdata()) // 2] < 60


def tick(driver: FrameDriver, until: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        driver.tick(0.002)
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)
