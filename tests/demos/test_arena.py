"""The arena demo (``demos/arena``): its bindings are what ``generate`` makes of its module, bots play
(they eat, and grow), the local player moves toward the pointer, and ``spacetime-game demo arena``
runs each client headless with bots against the embedded server, exits 0, draws circles, and leaves no
process behind."""

from __future__ import annotations

import filecmp
import json
import math
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spacetime_game.server import DevServer, load_module
from tests.engines._support import classic_pygame_rerun, import_arcade, import_pygame

ROOT = Path(__file__).resolve().parents[2]
ARENA = ROOT / "demos" / "arena"


def test_the_bindings_are_generated_from_the_module(tmp_path: Path) -> None:
    schema = tmp_path / "blackholio.schema.json"  # (the name the bindings' headers cite)
    schema.write_text(json.dumps(load_module(ARENA / "module.py").schema_json()))
    out = tmp_path / "module_bindings"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "spacetime_game.cli",
            "generate",
            "--schema",
            str(schema),
            "--out-dir",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    shipped = ARENA / "module_bindings"
    names = sorted(p.name for p in out.glob("*.py"))
    assert names == sorted(p.name for p in shipped.glob("*.py"))
    _, mismatch, errors = filecmp.cmpfiles(out, shipped, names, shallow=False)
    assert not mismatch and not errors, f"regenerate demos/arena/module_bindings: {mismatch or errors}"


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    with DevServer(ARENA / "module.py", database="blackholio") as s:
        yield s


def test_bots_eat_and_grow(server: DevServer) -> None:
    from demos.arena.bots import Bots

    bots = Bots(4, server.address, server.database, seed=3)
    try:
        masses: list[int] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            bots.step(time.monotonic())
            time.sleep(1 / 60)
            if all(b.player.alive for b in bots.bots):
                masses.append(bots.total_mass())
                if masses[-1] >= masses[0] + 20:
                    break
        assert masses, "the bots never entered the game"
        assert masses[-1] >= masses[0] + 20, f"the bots did not grow: {masses[0]} -> {masses[-1]}"
        names = {b.player.row.name for b in bots.bots if b.player.row is not None}
        assert len(names) == 4, names
    finally:
        bots.stop()


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="process priorities are POSIX")
def test_the_bots_process_runs_below_the_game(server: DevServer) -> None:
    from demos.arena.launch import BOTS_NICENESS, start_bots, stop

    proc = start_bots(2, server.address, server.database)
    try:
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == min(19, mine + BOTS_NICENESS)
    finally:
        stop(proc)
    assert proc.poll() is not None


def test_the_arcade_client_keeps_every_font_it_draws_with(server: DevServer) -> None:
    """pyglet keeps only its last few fonts alive; a font made again renders (and uploads) its glyphs
    again, which stalled frames for 100-350 ms on a software renderer. The window holds its fonts."""
    import gc

    import_arcade()
    import pyglet

    from demos.arena import game
    from demos.arena import module_bindings as mb
    from demos.arena.arcade_client import window_class
    from spacetime_game.sdk import DbConnection

    conn = DbConnection(mb.MODULE, server.address, server.database)
    window = window_class()(conn, "Tester", autopilot=False, sound=False)
    try:
        held = {id(font) for font in window.fonts}
        for points in range(40, 52):  # more fonts than pyglet keeps alive by itself
            pyglet.font.load(window.font, points)
        gc.collect()
        for px in game.LABEL_SIZES:  # the names' sizes: no text of the window uses them all the time
            font = pyglet.font.load(
                window.font, px * 0.75, weight="normal", italic=False, stretch=False, dpi=96
            )
            assert id(font) in held, f"the font of {px} px was made again"
    finally:
        window.close()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_second_demo_joins_the_arena_the_first_serves(
    server: DevServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``spacetime-game demo`` joins the arena already served at its home address (no second server,
    no more bots unless asked); with nothing there it serves the arena there, with bots."""
    from demos.arena import launch, pygame_client

    assert launch.serves_arena(server.address, server.database)
    assert not launch.serves_arena(server.address, "no-such-database")
    assert not launch.serves_arena(f"127.0.0.1:{_free_port()}", server.database)
    seen: list[tuple[str, int]] = []
    bots: list[tuple[int, str]] = []
    monkeypatch.setattr(pygame_client, "run", lambda args: seen.append((args.server, args.bots)) or 0)
    monkeypatch.setattr(launch, "start_bots", lambda n, address, db: bots.append((n, address)))
    monkeypatch.setenv("DISPLAY", ":0")  # (the client is replaced: nothing opens)

    monkeypatch.setattr(launch, "HOME", server.address)
    assert launch.main(["--database", server.database]) == 0
    assert seen == [(server.address, 0)] and bots == []
    assert "Joining the arena already running" in capsys.readouterr().out
    assert launch.main(["--database", server.database, "--bots", "2"]) == 0
    assert bots == [(2, server.address)]

    seen.clear()
    bots.clear()
    port = _free_port()
    monkeypatch.setattr(launch, "HOME", f"localhost:{port}")
    assert launch.main([]) == 0
    assert len(seen) == 1 and seen[0][0].endswith(f":{port}") and seen[0][1] == launch.DEFAULT_BOTS
    assert bots == [(launch.DEFAULT_BOTS, seen[0][0])]
    assert not launch.serves_arena(f"localhost:{port}", launch.DATABASE), "the server outlived the demo"


def test_a_demo_that_listens_on_the_network_prints_the_teammates_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from demos.arena import launch, pygame_client
    from spacetime_game.server import reachable_address

    lan = reachable_address("0.0.0.0")
    seen: list[str] = []

    def play(args: Any) -> int:
        seen.append(args.server)
        assert launch.serves_arena(f"{lan}:{port}", launch.DATABASE), "not reachable at the address printed"
        return 0

    port = _free_port()
    monkeypatch.setattr(launch, "HOME", f"localhost:{port}")
    monkeypatch.setattr(pygame_client, "run", play)
    monkeypatch.setenv("DISPLAY", ":0")
    assert launch.main(["--listen", "0.0.0.0", "--bots", "0"]) == 0
    out = capsys.readouterr().out
    assert f"Teammates on your network join with: spacetime-game demo --server {lan}:{port}" in out, out
    assert seen == [f"127.0.0.1:{port}"]  # (the server was started at the home port, not a fallback)


def test_the_pygame_player_moves_toward_the_pointer(server: DevServer) -> None:
    import_pygame()
    import pygame

    from demos.arena import module_bindings as mb
    from demos.arena.pygame_client import HEIGHT, WIDTH, ArenaGame
    from spacetime_game.sdk import DbConnection

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    pygame.init()
    conn = DbConnection(mb.MODULE, server.address, server.database)
    game = ArenaGame(conn, "Mover", headless=True)
    try:
        deadline = time.monotonic() + 20
        while not game.player.alive or not game.rows.predicted:
            assert game.frame(1 / 60, []), "the game ended"
            assert time.monotonic() < deadline, "never entered the game"
            time.sleep(1 / 60)
        game.frame(1 / 60, [])  # (the predictor's first frame: it starts its clock)
        time.sleep(1 / 60)
        (key,) = game.rows.predicted
        start = _drawn(game.entities.get(key))
        server_start = mb.Entity.filter_by_entity_id(key, client=conn)
        # full speed toward the arena's centre (away from the walls, which would stop it)
        assert server_start is not None
        tx, ty = 500.0 - server_start.position.x, 500.0 - server_start.position.y
        norm = math.hypot(tx, ty) or 1.0
        ux, uy = tx / norm, ty / norm
        game.pointer = (WIDTH / 2 + ux * HEIGHT / 3, HEIGHT / 2 + uy * HEIGHT / 3)  # (y down, as the world)
        assert game.frame(1 / 60, [])
        nxt = _drawn(game.entities.get(key))
        assert (nxt[0] - start[0]) * ux + (nxt[1] - start[1]) * uy > 0, (
            "the input did not show at the next frame"
        )
        for _ in range(40):
            game.frame(1 / 60, [])
            time.sleep(1 / 60)
        end = _drawn(game.entities.get(key))
        row = mb.Entity.filter_by_entity_id(key, client=conn)
        assert row is not None
        dx, dy = end[0] - start[0], end[1] - start[1]
        assert math.hypot(dx, dy) > 40, (start, end)
        along = (dx * ux + dy * uy) / math.hypot(dx, dy)
        assert along > math.cos(0.35), ("not toward the pointer", start, end, (ux, uy))
        moved = (row.position.x - server_start.position.x) * ux + (
            row.position.y - server_start.position.y
        ) * uy
        assert moved > 20, "the server did not move the circle"
    finally:
        game.close()
        pygame.quit()


def _drawn(sprite: Any) -> tuple[float, float]:
    assert sprite is not None
    return (sprite.x, sprite.y)


def _leftovers(mark: str) -> list[str]:
    """The processes whose environment holds ``mark`` (children of a run that should all be gone)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if mark.encode() in (proc / "environ").read_bytes():
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{proc.name}: {command}")
        except OSError:
            continue
    return found


SUMMARY = re.compile(
    r"arena \((\w+), headless\): (\d+) frames in [\d.]+ s \((\d+) fps\), frame work p99 ([\d.]+) ms "
    r"\(the network layer \d+% of it\); (\d+) players, (\d+) entities; your mass (\d+);"
)


@pytest.mark.parametrize("engine", ["pygame", "arcade"])
def test_the_demo_runs_headless_with_bots_and_leaves_nothing_behind(engine: str, tmp_path: Path) -> None:
    (import_pygame if engine == "pygame" else import_arcade)()
    shot = tmp_path / f"arena-{engine}.png"
    mark = f"ARENA_TEST_{uuid.uuid4().hex}"
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy", ARCADE_HEADLESS="1")
    env[mark] = "1"
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    cmd = [sys.executable, "-m", "spacetime_game.cli", "demo", "arena", "--engine", engine]
    cmd += ["--bots", "6", "--frames", "300", "--screenshot", str(shot), "--name", "Tester"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "No display here" in out, "without a display the demo says it runs headless"
    m = SUMMARY.search(out)
    assert m is not None, out
    assert m.group(1) == engine and int(m.group(2)) == 300
    assert int(m.group(5)) >= 7, f"the bots did not all join: {out}"
    assert int(m.group(6)) >= 500, out  # (food is topped up every 0.5 s)
    # the player entered the arena (its mass at the end may be 0: six bots can eat it within 5 s)
    assert "in the arena" in out, out
    time.sleep(0.5)
    assert _leftovers(mark) == [], "the server or the bots outlived the demo"
    _assert_circles(shot)


def _assert_circles(shot: Path) -> None:
    """The picture shows the arena: many pixels of the food and player palettes, on the dark ground."""
    from PIL import Image

    from demos.arena import game

    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 720)
    palette = {*game.FOOD_COLORS, *game.PLAYER_COLORS}
    counts: dict[tuple[int, int, int], int] = {}
    for pixel in image.getdata():
        if pixel in palette:
            counts[pixel] = counts.get(pixel, 0) + 1
    # (the view follows the player, so how much food it shows varies from run to run: 1,986 such pixels
    # in one clean-clone run; a food disc alone gives over 100, an arena with no circles none)
    assert sum(counts.values()) > 1000, f"too few circle pixels: {counts}"
    assert len(counts) >= 4, f"too few colours: {counts}"
    dark = sum(1 for p in image.getdata() if max(p) < 70)
    assert dark > 1280 * 720 // 2, "the ground is not the dark arena"


def test_the_docs_module_test_example_runs_as_written() -> None:
    text = (ROOT / "docs" / "arena.md").read_text()
    (example,) = re.findall(r"```python\n(.*?)\n```", text, flags=re.S)
    done = subprocess.run(
        [sys.executable, "-c", example], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


#: The pygame client's in-process test again, under classic pygame (the demo runs on either flavour).
test_the_pygame_client_under_classic_pygame = classic_pygame_rerun(
    "tests/demos/test_arena.py::test_the_pygame_player_moves_toward_the_pointer"
)


def test_without_a_name_the_pygame_client_asks_for_one(server: DevServer) -> None:
    import_pygame()
    import pygame

    from demos.arena import module_bindings as mb
    from demos.arena.pygame_client import ArenaGame
    from spacetime_game.sdk import DbConnection

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    pygame.init()
    conn = DbConnection(mb.MODULE, server.address, server.database)
    game = ArenaGame(conn, None, headless=True)
    try:
        deadline = time.monotonic() + 20
        while not game.player.needs_name:
            game.frame(1 / 60, [])
            assert time.monotonic() < deadline, "the prompt never came"
            time.sleep(1 / 60)
        for _ in range(10):  # it waits for the name
            game.frame(1 / 60, [])
        assert not game.player.entered and not game.player.alive
        keys = [pygame.event.Event(pygame.TEXTINPUT, text=c) for c in "Zedd"]
        keys += [pygame.event.Event(pygame.KEYDOWN, key=pygame.K_BACKSPACE, unicode="", mod=0, scancode=0)]
        keys += [pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RETURN, unicode="\r", mod=0, scancode=0)]
        game.frame(1 / 60, keys)
        while not game.player.alive:
            game.frame(1 / 60, [])
            assert time.monotonic() < deadline, "never entered the game"
            time.sleep(1 / 60)
        row = game.player.row
        assert row is not None and row.name == "Zed"
        assert not game.player.needs_name
    finally:
        game.close()
        pygame.quit()


def test_a_sprite_whose_row_went_is_eaten_only_if_a_consume_event_names_it() -> None:
    """Both clients decide at the end of the frame, whatever order the tables came in: the sprite named
    by a consume event goes to the animation with its eater, the others are released; the local
    player's circles are predicted while they exist."""
    from types import SimpleNamespace

    from demos.arena import game
    from demos.arena import module_bindings as mb
    from spacetime_game.engine import DEFER

    class Sprites:
        def __init__(self) -> None:
            self.live = {7, 8}
            self.released: list[Any] = []
            self.predicting: set[int] = set()

        def __contains__(self, key: object) -> bool:
            return key in self.live

        def release(self, sprite: Any) -> None:
            self.released.append(sprite)

        def predict(self, key: int, predictor: Any) -> None:
            self.predicting.add(key)

        def unpredict(self, key: int) -> None:
            self.predicting.discard(key)

    sprites = Sprites()
    rows = game.FrameRows(sprites, lambda sprite: sprite.key)
    mine = [SimpleNamespace(entity_id=7)]
    player = SimpleNamespace(circles=lambda: mine)
    food, other = SimpleNamespace(key=3), SimpleNamespace(key=4)
    assert rows.despawned(food, "row", "change") is DEFER and rows.despawned(other) is DEFER
    rows.consumed(mb.ConsumeEntityEvent(3, 7), None)  # (after the deletes, as the TypeScript SDK orders them)
    cues, eating = rows.settle(player, game.Cues())  # type: ignore[arg-type]
    assert eating == [(food, 7)] and sprites.released == [other]
    assert cues == ["spawn", "eat"] and sprites.predicting == {7} and rows.predicted == {7}
    mine.clear()
    assert rows.settle(player, game.Cues()) == ([], [])  # type: ignore[arg-type]
    assert sprites.predicting == set() and rows.predicted == set() and not rows.gone and not rows.eaten
