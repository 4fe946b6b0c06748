"""The arena in Arcade 3: a Blackholio client written with ``spacetime_game.arcade``.

    python -m demos.arena --engine arcade                  # starts the dev server and bots, then this
    python -m demos.arena.arcade_client --server localhost:3000 --database blackholio --name Ada

The mouse steers (the farther from the centre, the faster), Space splits, S gives up your circles, Q
locks the steering, R respawns, F3 shows the network overlay, Esc quits. Arcade's y axis points up, and
so does this client's world (as in the Unity client); the pygame client draws y down. The server does
not mind: each client steers in the axes it draws.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from spacetime_game.engine import Change, Interpolator, NetworkSimulator, TickPredictor
from spacetime_game.sdk import DbConnection

from . import game
from . import module_bindings as mb
from .assets import FONT, path
from .bots import Bot
from .pygame_client import autopilot, summary

WIDTH, HEIGHT = 1280, 720
CONSUME_SECONDS = 0.2
#: The discs' textures are this many pixels across (scaled to each entity's size).
DISC = 128


@dataclass
class Consumed:
    sprite: Any
    eater: int
    start: float
    scale: float


@functools.cache
def window_class() -> type[Any]:
    """The game's window class (made at first use: arcade is imported then, after the caller chose
    headless or not)."""
    import arcade
    import pyglet

    from spacetime_game.arcade import Window, circle_texture

    class ArenaWindow(Window):
        def __init__(self, conn: DbConnection, name: str | None, autopilot: bool, sound: bool = True) -> None:
            # every round thing is a texture drawn anti-aliased (circle_texture) and every line is straight,
            # so the window needs no multisampling, which costs a software renderer four times the pixels
            super().__init__(WIDTH, HEIGHT, "spacetime-game arena", client=conn, antialiasing=False)
            self.pilot: Bot | None = None
            self.cues = game.Cues()
            self.sounds: dict[str, Any] = _sounds(arcade) if sound and not autopilot else {}
            self.background_color = game.BACKGROUND
            with contextlib.suppress(Exception):  # no icon file, or a headless window that takes none
                self.set_icon(pyglet.image.load(str(path("icon.png"))))
            self.conn = conn
            self.player = game.Player(conn, name)
            self.player.subscribe()
            if autopilot:
                self.pilot = Bot(self.player, seed=7)
            self.camera = game.Camera(HEIGHT)
            self.world = arcade.Camera2D()
            self.hud = arcade.Camera2D()
            self.food_textures = [circle_texture(DISC // 2 - 1, c) for c in game.FOOD_COLORS]
            self.player_textures = [
                circle_texture(DISC // 2 - 1, c, outline=_rim(c), outline_width=6) for c in game.PLAYER_COLORS
            ]
            for texture in (*self.food_textures, *self.player_textures):  # into the atlas now, not mid-game
                self.ctx.default_atlas.add(texture)
            # every entity (food and circles) is a sprite, interpolated on its position and mass; the
            # table's own list holds the food, the players' circles move to a list drawn above it
            self.entities = self.net.sprites(
                mb.Entity,
                self.spawn,
                position=("position.x", "position.y"),
                interpolate=Interpolator(("position.x", "position.y", "mass")),
                place=self.place,
                on_despawn=lambda sprite, row, change: self.rows.despawned(sprite),
            )
            self.circles = arcade.SpriteList(use_spatial_hash=False)
            self.rows = game.FrameRows(self.entities, lambda sprite: sprite.entity_id)
            self.net.driver.sync(mb.ConsumeEntityEvent, on_event=self.rows.consumed)
            self.animations: list[Consumed] = []
            self.pointer = (WIDTH / 2, HEIGHT / 2)
            self.locked: tuple[float, float] | None = None
            self.frames = 0
            self.frame_times: list[float] = []  # the work of each frame: tick, update, draw
            self.tick_times: list[float] = []  # the engine's share of it
            self.update_started = 0.0
            self.last_state = "connecting"
            self.font = _font_name(arcade)
            self.names: dict[int, arcade.Text] = {}
            self.hud_batch = pyglet.graphics.Batch()  # the HUD's texts, drawn in one call
            self.ground: Any = None
            self.ground_size = 0.0
            self.panels = arcade.shape_list.ShapeElementList()  # the HUD's panels, one draw call
            board_h = 34 + 22 * 11
            self.panels.append(
                arcade.shape_list.create_rectangle_filled(
                    WIDTH - 131, HEIGHT - 16 - board_h / 2, 230, board_h, game.PANEL
                )
            )
            self.panels.append(
                arcade.shape_list.create_rectangle_filled(WIDTH - 91, 91, 150, 150, game.PANEL)
            )
            self.panels.append(
                arcade.shape_list.create_rectangle_outline(WIDTH - 91, 91, 150, 150, game.BORDER, 1)
            )
            self.names_batch = pyglet.graphics.Batch()
            self.board_entries: list[game.Entry] | None = None
            hud = self.hud_batch
            self.board = [
                arcade.Text(
                    "", WIDTH - 232, HEIGHT - 50 - 22 * i, game.TEXT, 12, font_name=self.font, batch=hud
                )
                for i in range(11)
            ]
            self.board_mass = [
                arcade.Text(
                    "",
                    WIDTH - 28,
                    HEIGHT - 50 - 22 * i,
                    game.TEXT,
                    12,
                    font_name=self.font,
                    anchor_x="right",
                    batch=hud,
                )
                for i in range(11)
            ]
            self.title = arcade.Text(
                "Leaderboard", WIDTH - 232, HEIGHT - 28, game.BORDER, 14, font_name=self.font, batch=hud
            )
            self.mass_text = arcade.Text("", 18, 18, game.TEXT, 20, font_name=self.font, batch=hud)
            self.big = arcade.Text(
                "You were eaten", WIDTH / 2, HEIGHT / 2 + 10, game.TEXT, 32, font_name=self.font,
                anchor_x="center", batch=hud,
            )  # fmt: skip
            self.hint = arcade.Text(
                "Press R or click to play again", WIDTH / 2, HEIGHT / 2 - 30, game.MUTED, 15,
                font_name=self.font, anchor_x="center", batch=hud,
            )  # fmt: skip
            self.banner = arcade.Text(
                "", WIDTH / 2, HEIGHT - 30, game.BORDER, 15, font_name=self.font, anchor_x="center", batch=hud
            )
            self.typed = ""  # the name being typed at the prompt
            self.prompt = [
                arcade.Text("Your name", WIDTH / 2, HEIGHT / 2 + 40, game.BORDER, 18, font_name=self.font,
                            anchor_x="center", batch=hud),
                arcade.Text("", WIDTH / 2, HEIGHT / 2 - 8, game.TEXT, 18, font_name=self.font, anchor_x="center",
                            batch=hud),
                arcade.Text("Enter to play", WIDTH / 2, HEIGHT / 2 - 56, game.MUTED, 11, font_name=self.font,
                            anchor_x="center", batch=hud),
            ]  # fmt: skip
            # every glyph of every size the game writes, rendered now: a glyph met mid-game is rasterised
            # and uploaded then, which can stall a frame for a long time on a software renderer
            # pyglet keeps only its last four fonts alive, and a font made again renders its glyphs again,
            # so the window holds every font it uses (and with it the glyphs) for as long as it lives
            every = "".join(chr(c) for c in range(32, 127))
            sizes = [11, 12, 14, 15, 18, 20, 32] + [px * 0.75 for px in game.LABEL_SIZES]
            self.fonts = []
            for points in sizes:
                sample = arcade.Text(every, 0, 0, game.TEXT, points, font_name=self.font)
                sample.draw()
                label = sample.label
                self.fonts.append(label.document.get_font(0, dpi=label.dpi))

        # ----- rows -----------------------------------------------------------------------------------
        def spawn(self, row: mb.Entity, change: Change) -> arcade.Sprite:
            sprite = arcade.Sprite(self.food_textures[abs(row.entity_id) % len(self.food_textures)])
            sprite.entity_id = row.entity_id  # type: ignore[attr-defined]  # (kept after the row goes)
            sprite.circle = False  # type: ignore[attr-defined]  # (moved to the circles' list once known)
            return sprite

        def place(self, sprite: arcade.Sprite, state: Any) -> None:
            sprite.position = (state.x, state.y)
            sprite.scale = 2.0 * game.radius(state.mass) / DISC
            sprite.mass = state.mass  # type: ignore[attr-defined]

        def after_rows(self, now: float) -> None:
            self.player.settle()
            cues, eating = self.rows.settle(self.player, self.cues)
            for cue in cues:
                sound = self.sounds.get(cue)
                if sound is not None:
                    arcade.play_sound(sound, volume=0.35)
            self.animations += [Consumed(sprite, eater, now, sprite.scale_x) for sprite, eater in eating]
            owners = {c.entity_id: c.player_id for c in mb.Circle.iter(client=self.conn)}
            for key, pid in owners.items():  # a circle's sprite: its player's colour, above the food
                sprite = self.entities.get(key)
                if sprite is not None and not sprite.circle:
                    sprite.circle = True
                    sprite.remove_from_sprite_lists()
                    sprite.texture = self.player_textures[abs(pid) % len(self.player_textures)]
                    self.circles.append(sprite)

        # ----- input ----------------------------------------------------------------------------------
        def on_mouse_motion(self, x: int, y: int, dx: int, dy: int) -> None:
            self.pointer = (x, y)

        def on_mouse_press(self, x: int, y: int, button: int, modifiers: int) -> None:
            if not self.player.alive:
                self.player.respawn()

        def on_text(self, text: str) -> None:
            if self.player.needs_name:  # (the name prompt takes the keys)
                self.typed = (self.typed + text)[: game.MAX_NAME]

        def on_key_press(self, symbol: int, modifiers: int) -> None:
            k = arcade.key
            if symbol == k.ESCAPE:
                self.close()
            elif self.player.needs_name:
                if symbol in (k.ENTER, k.RETURN, k.NUM_ENTER):
                    self.player.choose_name(self.typed)
                elif symbol == k.BACKSPACE:
                    self.typed = self.typed[:-1]
            elif symbol == k.SPACE:
                self.player.split()
            elif symbol == k.S:
                self.player.suicide()
            elif symbol == k.Q:
                self.locked = None if self.locked else self.pointer
            elif symbol == k.R:
                self.player.respawn()

        # ----- the frame (the network was ticked just before) ------------------------------------------
        def on_update(self, delta_time: float) -> None:
            self.update_started = time.perf_counter()
            self.last_state = self.net.driver.state
            now = self.net.driver.now
            if self.pilot is not None and self.frames % 6 == 0:  # no mouse: a bot's mind moves the pointer
                self.pointer = autopilot(self.pilot, self.net.driver.clock(), self.pointer)
            self.after_rows(now)
            if self.player.ready:
                self.player.enter()
            direction = game.steering(*(self.locked or self.pointer), WIDTH, HEIGHT)
            call = self.player.steer(direction, now)
            for key in self.rows.predicted:
                predictor = self.entities.predictor(key)
                if isinstance(predictor, TickPredictor):
                    predictor.set_input(direction, call)
            for anim in self.animations:
                self.animate(anim, now)
            self.animations = [a for a in self.animations if now - a.start < CONSUME_SECONDS]
            mine = [self.entities.get(k) for k in self.rows.predicted]
            weighted = ((s.center_x, s.center_y, getattr(s, "mass", 0.0)) for s in mine if s is not None)
            self.camera.update(weighted, self.player.world_size(), delta_time)
            self.world.position = (self.camera.x, self.camera.y)
            self.world.zoom = self.camera.zoom
            self.frames += 1

        def animate(self, anim: Consumed, now: float) -> None:
            t = min(1.0, (now - anim.start) / CONSUME_SECONDS)
            eater = self.entities.get(anim.eater)
            sprite = anim.sprite
            if eater is not None:
                sprite.center_x += (eater.center_x - sprite.center_x) * t
                sprite.center_y += (eater.center_y - sprite.center_y) * t
            if t >= 1.0:
                self.entities.release(sprite)
            else:
                sprite.scale = anim.scale * (1.0 - t)

        def on_draw(self) -> None:
            self.clear()
            size = self.player.world_size()
            self.clear_ground(size)
            with self.world.activate():
                self.arena_shapes(size).draw()  # the grid and the border: one draw call
                self.entities.draw()
                if self.frames % 10 == 0:  # the bigger above (a sort rewrites the list's buffers)
                    self.circles.sort(key=lambda s: s.scale_x)
                self.circles.draw()
            with self.hud.activate():
                self.draw_names()
                self.draw_hud(size)
            self.player.drawn()
            if self.update_started:
                tick = self.net.driver.tick_seconds
                self.frame_times.append(tick + time.perf_counter() - self.update_started)
                self.tick_times.append(tick)
                self.update_started = 0.0

        def clear_ground(self, size: float) -> None:
            """The arena's ground: its rectangle on screen cleared to its colour (a clear limited to a
            rectangle is far cheaper than a filled shape for a software renderer; the window's own clear
            has drawn the space around it)."""
            x0, y0 = self.world.project((0.0, 0.0))
            x1, y1 = self.world.project((size, size))
            left, bottom = max(0, round(x0)), max(0, round(y0))
            right, top = min(self.width, round(x1)), min(self.height, round(y1))
            if right > left and top > bottom:
                self.ctx.screen.clear(color=game.ARENA, viewport=(left, bottom, right - left, top - bottom))

        def arena_shapes(self, size: float) -> Any:
            """The arena's faint grid every 50 units and its border, as one shape list (built again only
            if the world's size changes)."""
            if self.ground is None or self.ground_size != size:
                shapes = arcade.shape_list.ShapeElementList()
                c = size / 2
                lines: list[tuple[float, float]] = []
                for i in range(1, int(size // 50) + 1):
                    lines += [(i * 50.0, 0.0), (i * 50.0, size), (0.0, i * 50.0), (size, i * 50.0)]
                shapes.append(arcade.shape_list.create_lines(lines, game.GRID))
                shapes.append(
                    arcade.shape_list.create_rectangle_outline(c, c, size + 2, size + 2, game.BORDER, 2)
                )
                self.ground, self.ground_size = shapes, size
            return self.ground

        def draw_names(self) -> None:
            """The players' names on their circles (big enough ones), in one batch."""
            names = {p.player_id: p.name for p in mb.Player.iter(client=self.conn)}
            owners = {c.entity_id: c.player_id for c in mb.Circle.iter(client=self.conn)}
            shown = set()
            cam, zoom = self.camera, self.camera.zoom
            for sprite in self.circles:
                key = sprite.entity_id
                if key not in owners:
                    continue
                sx, sy = cam.to_screen(sprite.center_x, sprite.center_y, WIDTH, HEIGHT)
                r = game.radius(getattr(sprite, "mass", 0.0)) * zoom
                if r < game.LABEL_MIN_RADIUS or not (-r < sx < WIDTH + r and -r < sy < HEIGHT + r):
                    continue
                text = self.names.get(key)
                if text is None:
                    text = self.names[key] = arcade.Text(
                        "", 0, 0, game.TEXT, 12, font_name=self.font, anchor_x="center", anchor_y="center",
                        batch=self.names_batch,
                    )  # fmt: skip
                name = names.get(owners[key], "")
                if text.text != name:  # (a change costs pyglet a new layout: only when needed)
                    text.text = name
                points = game.label_size(name, r) * 0.75  # (points: pixels at 96 dpi)
                if text.font_size != points:
                    text.font_size = points
                text.position = (sx, sy)
                shown.add(key)
            for key, text in list(self.names.items()):
                if key not in owners:
                    text.batch = None
                    del self.names[key]
                elif text.visible != (key in shown):
                    text.visible = key in shown
            self.names_batch.draw()

        def draw_hud(self, size: float) -> None:
            """The leaderboard, the minimap, the mass and the state: shapes, then the texts in one batch."""
            rows = len(self.board)
            if self.frames % rows == 0 or self.board_entries is None:  # (ranked about five times a second)
                self.board_entries = self.player.leaderboard()
            board = self.board_entries
            self.panels.draw()
            # one row a frame: a text's new layout costs pyglet about half a millisecond, and the whole
            # board at once would stall a frame by ten
            for i in (self.frames % rows,) if self.frames else range(rows):
                if i < len(board):
                    e = board[i]
                    color = game.BORDER if e.me else game.TEXT
                    _set(self.board[i], f"{e.rank}. {e.name[:16]}", color)
                    _set(self.board_mass[i], str(e.mass), color)
                _show(self.board[i], i < len(board))
                _show(self.board_mass[i], i < len(board))
            m = 150.0
            x0, y0 = WIDTH - m - 16, 16.0
            k = m / size
            owners = {c.entity_id: c.player_id for c in mb.Circle.iter(client=self.conn)}
            me = self.player.player_id
            others: list[tuple[float, float]] = []
            mine: list[tuple[float, float]] = []
            for key, pid in owners.items():
                s = self.entities.get(key)
                if s is not None:
                    (mine if pid == me else others).append((x0 + s.center_x * k, y0 + s.center_y * k))
            if others:
                arcade.draw_points(others, game.MUTED, 3)
            if mine:
                arcade.draw_points(mine, (255, 255, 255), 4)
            vx0, vy0 = self.camera.to_world(0, 0, WIDTH, HEIGHT)
            vx1, vy1 = self.camera.to_world(WIDTH, HEIGHT, WIDTH, HEIGHT)
            left, right = max(x0, x0 + vx0 * k), min(x0 + m, x0 + vx1 * k)
            bottom, top_ = max(y0, y0 + vy0 * k), min(y0 + m, y0 + vy1 * k)
            if right > left and top_ > bottom:
                arcade.draw_lrbt_rectangle_outline(left, right, bottom, top_, game.MUTED, 1)
            alive = self.player.alive
            if alive:
                _set(self.mass_text, f"Mass {self.player.total_mass}", game.TEXT)
            _show(self.mass_text, alive)
            eaten = not alive and self.player.row is not None and self.player.entered
            _show(self.big, eaten)
            _show(self.hint, eaten)
            state = self.net.driver.state
            down = state != "connected" or not self.net.driver.loaded
            if down:
                why = self.net.driver.reason
                line = f"{state}{': ' + why if why else ''}"
                if state == "connected":
                    line = f"loading {self.net.driver.progress:.0%}"
                _set(self.banner, line, game.BORDER)
            _show(self.banner, down)
            asking = self.player.needs_name
            if asking:
                arcade.draw_lrbt_rectangle_filled(
                    WIDTH / 2 - 210, WIDTH / 2 + 210, HEIGHT / 2 - 75, HEIGHT / 2 + 75, game.PANEL
                )
                arcade.draw_lrbt_rectangle_outline(
                    WIDTH / 2 - 210, WIDTH / 2 + 210, HEIGHT / 2 - 75, HEIGHT / 2 + 75, game.BORDER, 2
                )
                caret = "_" if (self.frames // 30) % 2 == 0 else " "
                _set(self.prompt[1], self.typed + caret, game.TEXT)
            for line in self.prompt:
                _show(line, asking)
            self.hud_batch.draw()

    return ArenaWindow


def run(args: argparse.Namespace) -> int:
    """Open the window (or run headless) and play until it closes or ``--frames`` have run."""
    if args.headless:
        os.environ["ARCADE_HEADLESS"] = "1"
    ArenaWindow = window_class()
    from spacetime_game.arcade import FRAMES_ENV, SCREENSHOT_ENV

    sim = NetworkSimulator.from_args(args)
    conn = DbConnection(mb.MODULE, args.server, args.database, transport_factory=sim.transport_factory())
    saved = {k: os.environ.get(k) for k in (FRAMES_ENV, SCREENSHOT_ENV)}
    if args.frames:  # the window closes itself after them, saving the last one
        os.environ[FRAMES_ENV] = str(args.frames)
        if args.screenshot:
            os.environ[SCREENSHOT_ENV] = os.path.abspath(args.screenshot)
    started = time.perf_counter()
    try:
        name = args.name if args.name or not args.headless else "Player"
        window = ArenaWindow(conn, name, autopilot=args.headless, sound=not args.mute)
        window.run()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if args.headless:
        print(
            summary(
                "arcade",
                window.frames,
                window.frame_times,
                window.tick_times,
                time.perf_counter() - started,
                window.last_state,
                conn,
                window.player,
                len(window.entities),
            )
        )
    return 0


def _set(text: Any, value: str, color: tuple[int, int, int]) -> None:
    """Change an ``arcade.Text`` only if it differs (each change costs pyglet a new layout)."""
    if text.text != value:
        text.text = value
    if tuple(text.color)[:3] != color:
        text.color = color


def _sounds(arcade: Any) -> dict[str, Any]:
    """The cues' sounds, loaded; empty if there is no audio here (the game then plays silently)."""
    try:
        return {cue: arcade.load_sound(str(path(file))) for cue, file in game.Cues.FILES.items()}
    except Exception:  # no audio driver, or a missing file: silence rather than no game
        return {}


def _show(text: Any, visible: bool) -> None:
    if text.visible != visible:
        text.visible = visible


def _rim(color: tuple[int, int, int]) -> tuple[int, int, int]:
    return tuple(min(255, c + (255 - c) // 2) for c in color)  # type: ignore[return-value]


def _font_name(arcade: Any) -> str | tuple[str, ...]:
    """Our font if its file is there (loaded into pyglet), else arcade's default."""
    try:
        arcade.load_font(str(path(FONT)))
    except FileNotFoundError:
        return ("calibri", "arial")
    return "Arena Sans"


def main(argv: Sequence[str] | None = None) -> int:
    from .pygame_client import client_main

    return client_main(run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
