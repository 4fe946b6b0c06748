"""The arena in PyGame (pygame-ce or pygame): a Blackholio client written with ``spacetime_game.pygame``.

    python -m demos.arena --engine pygame                 # starts the dev server and bots, then this
    python -m demos.arena.pygame_client --server localhost:3000 --database blackholio --name Ada

The mouse steers (the farther from the centre, the faster), Space splits, S gives up your circles, Q
locks the steering, R respawns, F3 shows the network overlay, Esc quits.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from spacetime_game.engine import NetworkSimulator, TickPredictor, add_netsim_arguments
from spacetime_game.sdk import DbConnection

from . import game
from . import module_bindings as mb
from .assets import Assets
from .assets import path as asset_path
from .bots import Bot

WIDTH, HEIGHT = 1280, 720
#: The start time (``time.time()``) the summary counts "in the arena after" from: set by the launcher
#: (or by whoever started it, to count the interpreter's start too).
START_ENV = "SPACETIME_GAME_T0"
CONSUME_SECONDS = 0.2  # the consume animation: toward the eater, shrinking


@dataclass
class Consumed:
    """A sprite being eaten: it slides into its eater and shrinks, then goes."""

    sprite: Any
    eater: int
    start: float


class ArenaGame:
    """The game: one connection, its bridge, the sprites of the ``entity`` table, the HUD."""

    def __init__(
        self, conn: DbConnection, name: str | None, *, headless: bool = False, sound: bool = True
    ) -> None:
        import pygame

        from spacetime_game.pygame import Bridge

        self.pg = pygame
        self.headless = headless
        icon = self._icon()
        if icon is not None:
            pygame.display.set_icon(icon)
        self.screen = pygame.display.set_mode((WIDTH, HEIGHT))
        pygame.display.set_caption("spacetime-game arena")
        self.assets = Assets()
        self.fonts = {size: self.assets.pygame_font(size) for size in (14, 18, 24, 40)}
        self.cues = game.Cues()
        self.sounds = self.assets.pygame_sounds(game.Cues.FILES) if sound and not headless else {}
        self.conn = conn
        self.bridge = Bridge(conn, close_on_quit=True)
        self.player = game.Player(conn, name)
        self.player.subscribe()
        self.bridge.watch(self.player.subscription)  # type: ignore[arg-type]
        self.camera = game.Camera(HEIGHT)
        # every entity (food and circles) is a sprite, interpolated on its position and mass
        self.entities = self.bridge.sprites(
            mb.Entity,
            self._make,
            interpolate=("position.x", "position.y", "mass"),
            position=None,  # the camera places them (see draw)
            on_despawn=lambda sprite, row: self.rows.despawned(sprite),
        )
        self.rows = game.FrameRows(self.entities, lambda sprite: sprite.key)
        self.bridge.driver.sync(mb.ConsumeEntityEvent, on_event=self.rows.consumed)
        self.animations: list[Consumed] = []
        self.pointer: tuple[float, float] = (WIDTH / 2, HEIGHT / 2)
        self.locked: tuple[float, float] | None = None
        self.typed = ""  # the name being typed at the prompt
        self.frames = 0
        self.frame_times: list[float] = []  # the work of each frame: input, tick, draw
        self.tick_times: list[float] = []  # the engine's share of it
        self._images: dict[tuple[tuple[int, int, int], int, bool], Any] = {}
        self._labels: dict[tuple[str, int], Any] = {}
        self._texts: dict[tuple[int, str, tuple[int, int, int]], Any] = {}
        self._panels: dict[tuple[int, int], Any] = {}
        self._board: list[game.Entry] | None = None

    def _icon(self) -> Any:
        try:
            return self.pg.image.load(str(asset_path("icon.png")))
        except (FileNotFoundError, self.pg.error):
            return None

    # ----- rows ---------------------------------------------------------------------------------------
    def _make(self, row: mb.Entity) -> Any:
        sprite = self.pg.sprite.Sprite()
        sprite.color = game.food_color(row.entity_id)  # (a player's circle is drawn in its player's)
        sprite.image = self.pg.Surface((1, 1), self.pg.SRCALPHA)
        sprite.rect = sprite.image.get_rect()
        return sprite

    def _after_rows(self, now: float) -> None:
        self.player.settle()
        cues, eating = self.rows.settle(self.player, self.cues)
        for cue in cues:
            sound = self.sounds.get(cue)
            if sound is not None:
                sound.play()
        self.animations += [Consumed(sprite, eater, now) for sprite, eater in eating]

    # ----- one frame ------------------------------------------------------------------------------------
    def frame(self, dt: float, events: Sequence[Any]) -> bool:
        """Handle input, tick the network, draw. False when the game should end."""
        pg = self.pg
        for event in events:
            if self.bridge.handle(event):
                continue
            if event.type == pg.QUIT:
                return False
            if event.type == pg.MOUSEMOTION:
                self.pointer = event.pos
            elif self.player.needs_name and event.type in (pg.TEXTINPUT, pg.KEYDOWN):
                if event.type == pg.TEXTINPUT:  # (the name prompt takes the keys)
                    self.typed = (self.typed + event.text)[: game.MAX_NAME]
                elif event.key in (pg.K_RETURN, pg.K_KP_ENTER):
                    self.player.choose_name(self.typed)
                elif event.key == pg.K_BACKSPACE:
                    self.typed = self.typed[:-1]
                elif event.key == pg.K_ESCAPE:
                    return False
            elif event.type == pg.KEYDOWN:
                if event.key == pg.K_ESCAPE:
                    return False
                if event.key == pg.K_SPACE:
                    self.player.split()
                elif event.key == pg.K_s:
                    self.player.suicide()
                elif event.key == pg.K_q:
                    self.locked = None if self.locked else self.pointer
                elif event.key == pg.K_r:
                    self.player.respawn()
            elif event.type == pg.MOUSEBUTTONDOWN and not self.player.alive:
                self.player.respawn()
        now = self.bridge.driver.clock()
        if self.player.ready:
            self.player.enter()
        direction = game.steering(*(self.locked or self.pointer), WIDTH, HEIGHT)
        call = self.player.steer(direction, now)
        for key in self.rows.predicted:
            predictor = self.entities.predictor(key)
            if isinstance(predictor, TickPredictor):
                predictor.set_input(direction, call)
        self.bridge.tick(dt)
        now = self.bridge.driver.now
        self._after_rows(now)
        self.draw(now, dt)
        self.player.drawn()
        self.frames += 1
        return not self.bridge.closed

    # ----- drawing --------------------------------------------------------------------------------------
    def draw(self, now: float, dt: float) -> None:
        pg, screen, cam = self.pg, self.screen, self.camera
        size = self.player.world_size()
        mine = [self.entities.get(k) for k in self.rows.predicted]
        cam.update(((s.x, s.y, s.mass) for s in mine if s is not None), size, dt)
        screen.fill(game.BACKGROUND)
        self._draw_arena(size)
        circles = {c.entity_id: c.player_id for c in mb.Circle.iter(client=self.conn)}
        names = {p.player_id: p.name for p in mb.Player.iter(client=self.conn)}
        players = []
        # the food, hundreds of discs: one pass computing where each goes, and one batched blit
        z = cam.zoom
        ox, oy = WIDTH / 2 - cam.x * z, HEIGHT / 2 - cam.y * z
        images, image = self._images, self._image
        sqrt = math.sqrt
        batch = []
        for key, sprite in self.entities.sprites.items():
            if key in circles:
                players.append((key, sprite))
                continue
            r = int(sqrt(sprite.mass) * z + 0.5) or 1
            sx, sy = sprite.x * z + ox, sprite.y * z + oy
            if sx + r < 0 or sy + r < 0 or sx - r > WIDTH or sy - r > HEIGHT:
                continue
            color = sprite.color
            disc = images.get((color, r, False)) or image(color, r, False)
            batch.append((disc, (sx - r - 1, sy - r - 1)))  # (a disc image's centre is at r + 1)
        screen.blits(batch, doreturn=False)
        for anim in self.animations:
            self._animate(anim, now)
        self.animations = [a for a in self.animations if now - a.start < CONSUME_SECONDS]
        players.sort(key=lambda ks: ks[1].mass)
        for key, sprite in players:
            pid = circles[key]
            self._blit_entity(sprite, game.player_color(pid), 1.0, names.get(pid))
        self._draw_hud(size)
        self.bridge.draw_overlay(screen)
        pg.display.flip()

    def _draw_arena(self, size: float) -> None:
        pg, screen, cam = self.pg, self.screen, self.camera
        x0, y0 = cam.to_screen(0, 0, WIDTH, HEIGHT)
        x1, y1 = cam.to_screen(size, size, WIDTH, HEIGHT)
        pg.draw.rect(screen, game.ARENA, pg.Rect(round(x0), round(y0), round(x1 - x0), round(y1 - y0)))
        step = 50.0
        z = cam.zoom
        if step * z >= 8:  # a faint grid shows the motion
            i = 1
            while i * step < size:
                sx, _ = cam.to_screen(i * step, 0, WIDTH, HEIGHT)
                _, sy = cam.to_screen(0, i * step, WIDTH, HEIGHT)
                if 0 <= sx <= WIDTH:
                    pg.draw.line(screen, game.GRID, (sx, max(y0, 0)), (sx, min(y1, HEIGHT)))
                if 0 <= sy <= HEIGHT:
                    pg.draw.line(screen, game.GRID, (max(x0, 0), sy), (min(x1, WIDTH), sy))
                i += 1
        width = round(game.border_pixels(z))
        pg.draw.rect(
            screen,
            game.BORDER,
            pg.Rect(
                round(x0) - width, round(y0) - width, round(x1 - x0) + 2 * width, round(y1 - y0) + 2 * width
            ),
            width,
            border_radius=width,
        )

    def _image(self, color: tuple[int, int, int], r: int, outline: bool) -> Any:
        key = (color, r, outline)
        image = self._images.get(key)
        if image is None:
            if len(self._images) > 600:
                self._images.clear()
            image = self.assets.pygame_disc(r, color, outline)
            self._images[key] = image
        return image

    def _blit_entity(self, sprite: Any, color: tuple[int, int, int], scale: float, name: str | None) -> None:
        cam = self.camera
        sx, sy = cam.to_screen(sprite.x, sprite.y, WIDTH, HEIGHT)
        r = max(1, round(game.radius(sprite.mass) * cam.zoom * scale))
        if sx + r < 0 or sy + r < 0 or sx - r > WIDTH or sy - r > HEIGHT:
            return
        image = self._images.get((color, r, name is not None)) or self._image(color, r, name is not None)
        sprite.color = color
        sprite.image = image
        sprite.rect = image.get_rect(center=(round(sx), round(sy)))
        self.screen.blit(image, sprite.rect)
        if name and r >= game.LABEL_MIN_RADIUS:
            label = self._label(name, game.label_size(name, r))
            self.screen.blit(label, label.get_rect(center=(round(sx), round(sy))))

    def _label(self, text: str, size: int) -> Any:
        key = (text, size)
        label = self._labels.get(key)
        if label is None:
            if len(self._labels) > 400:
                self._labels.clear()
            label = self.assets.pygame_text(text, size, game.TEXT)
            self._labels[key] = label
        return label

    def _animate(self, anim: Consumed, now: float) -> None:
        t = min(1.0, (now - anim.start) / CONSUME_SECONDS)
        eater = self.entities.get(anim.eater)
        sprite = anim.sprite
        if eater is not None:
            sprite.x += (eater.x - sprite.x) * t
            sprite.y += (eater.y - sprite.y) * t
        if t >= 1.0:
            self.entities.release(sprite)
            return
        self._blit_entity(sprite, getattr(sprite, "color", game.TEXT), 1.0 - t, None)

    def _text(self, size: int, text: str, color: tuple[int, int, int]) -> Any:
        """``text`` rendered in the HUD's font (kept: the HUD redraws the same lines every frame)."""
        key = (size, text, color)
        surface = self._texts.get(key)
        if surface is None:
            if len(self._texts) > 300:
                self._texts.clear()
            surface = self._texts[key] = self.fonts[size].render(text, True, color)
        return surface

    def _draw_hud(self, size: float) -> None:
        pg, screen, text = self.pg, self.screen, self._text
        # the leaderboard (ranked six times a second)
        if self.frames % 10 == 0 or self._board is None:
            self._board = self.player.leaderboard()
        board = self._board
        height = 34 + 22 * max(1, len(board))
        panel = self._panels.get((230, height))
        if panel is None:
            panel = self._panels[(230, height)] = pg.Surface((230, height), pg.SRCALPHA)
            panel.fill(game.PANEL)
        screen.blit(panel, (WIDTH - 246, 16))
        screen.blit(text(18, "Leaderboard", game.BORDER), (WIDTH - 232, 22))
        for i, e in enumerate(board):
            color = game.BORDER if e.me else game.TEXT
            screen.blit(text(14, f"{e.rank}. {e.name[:16]}", color), (WIDTH - 232, 48 + 22 * i))
            mass = text(14, str(e.mass), color)
            screen.blit(mass, (WIDTH - 28 - mass.get_width(), 48 + 22 * i))
        # the minimap
        m = 150
        mx, my = WIDTH - m - 16, HEIGHT - m - 16
        mini = self._panels.get((m, m))
        if mini is None:
            mini = self._panels[(m, m)] = pg.Surface((m, m), pg.SRCALPHA)
            mini.fill(game.PANEL)
        screen.blit(mini, (mx, my))
        pg.draw.rect(screen, game.BORDER, (mx, my, m, m), 1)
        k = m / size
        circles = {c.entity_id: c.player_id for c in mb.Circle.iter(client=self.conn)}
        mine = self.player.player_id
        for key, pid in circles.items():
            s = self.entities.get(key)
            if s is None:
                continue
            color = (255, 255, 255) if pid == mine else game.player_color(pid)
            pg.draw.circle(screen, color, (mx + s.x * k, my + s.y * k), max(2, game.radius(s.mass) * k))
        cam = self.camera
        vx0, vy0 = cam.to_world(0, 0, WIDTH, HEIGHT)
        vx1, vy1 = cam.to_world(WIDTH, HEIGHT, WIDTH, HEIGHT)
        view = pg.Rect(mx + vx0 * k, my + vy0 * k, (vx1 - vx0) * k, (vy1 - vy0) * k).clip((mx, my, m, m))
        pg.draw.rect(screen, game.MUTED, view, 1)
        # the local player
        if self.player.alive:
            screen.blit(text(24, f"Mass {self.player.total_mass}", game.TEXT), (18, HEIGHT - 40))
        elif self.player.row is not None and self.player.entered:
            msg = text(40, "You were eaten", game.TEXT)
            screen.blit(msg, msg.get_rect(center=(WIDTH / 2, HEIGHT / 2 - 24)))
            hint = text(18, "Press R or click to play again", game.MUTED)
            screen.blit(hint, hint.get_rect(center=(WIDTH / 2, HEIGHT / 2 + 18)))
        state = self.bridge.state
        if state != "connected" or not self.bridge.loaded:
            why = self.bridge.reason
            line = f"{state}{': ' + why if why else ''}" if self.bridge.loaded else "loading"
            if not self.bridge.loaded and state == "connected":
                line = f"loading {self.bridge.progress:.0%}"
            banner = text(18, line, game.BORDER)
            screen.blit(banner, banner.get_rect(midtop=(WIDTH / 2, 14)))
        if self.locked:
            screen.blit(text(14, "steering locked (Q)", game.MUTED), (18, HEIGHT - 62))
        if self.player.needs_name:
            self._draw_prompt()

    def _draw_prompt(self) -> None:
        """The name prompt: a panel with what is typed so far and a blinking caret."""
        pg, screen, text = self.pg, self.screen, self._text
        box = pg.Rect(0, 0, 420, 150)
        box.center = (WIDTH // 2, HEIGHT // 2)
        pg.draw.rect(screen, game.PANEL, box, border_radius=12)
        pg.draw.rect(screen, game.BORDER, box, 2, border_radius=12)
        title = text(24, "Your name", game.BORDER)
        screen.blit(title, title.get_rect(midtop=(box.centerx, box.top + 16)))
        caret = "_" if (self.frames // 30) % 2 == 0 else " "
        typed = text(24, self.typed + caret, game.TEXT)
        screen.blit(typed, typed.get_rect(center=(box.centerx, box.centery + 4)))
        hint = text(14, "Enter to play", game.MUTED)
        screen.blit(hint, hint.get_rect(midbottom=(box.centerx, box.bottom - 14)))

    def close(self) -> None:
        self.bridge.close()


def run(args: argparse.Namespace) -> int:
    """Open the window (or run headless) and play until it closes or ``--frames`` have run."""
    if args.headless:
        os.environ["SDL_VIDEODRIVER"] = "dummy"
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # (the game prints only its summary)
    import pygame

    pygame.init()
    sim = NetworkSimulator.from_args(args)
    conn = DbConnection(mb.MODULE, args.server, args.database, transport_factory=sim.transport_factory())
    name = args.name if args.name or not args.headless else "Player"
    g = ArenaGame(conn, name, headless=args.headless, sound=not args.mute)
    clock = pygame.time.Clock()
    pilot = Bot(g.player, seed=7) if args.headless else None
    started = time.perf_counter()
    try:
        running = True
        while running:
            dt = clock.tick(60) / 1000.0
            events = pygame.event.get()
            if pilot is not None and g.frames % 6 == 0:  # no mouse here: a bot's mind moves the pointer
                g.pointer = autopilot(pilot, g.bridge.driver.clock(), g.pointer)
            t0 = time.perf_counter()
            running = g.frame(dt, events)
            g.frame_times.append(time.perf_counter() - t0)
            g.tick_times.append(g.bridge.driver.tick_seconds)
            if args.frames and g.frames >= args.frames:
                break
        if args.screenshot:
            pygame.image.save(g.screen, args.screenshot)
        if args.headless:
            print(
                summary(
                    "pygame",
                    g.frames,
                    g.frame_times,
                    g.tick_times,
                    time.perf_counter() - started,
                    g.bridge.state,
                    g.conn,
                    g.player,
                    len(g.entities),
                )
            )
    finally:
        g.close()
        pygame.quit()
    return 0


def summary(
    engine: str,
    frames: int,
    frame_times: Sequence[float],
    tick_times: Sequence[float],
    seconds: float,
    state: str,
    conn: DbConnection,
    player: game.Player,
    entities: int,
) -> str:
    """The paragraph a headless run prints: frames, fps, frame times, players, round trips."""
    times = sorted(frame_times)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))] * 1000 if times else 0.0
    share = sum(tick_times) / sum(frame_times) if sum(frame_times) > 0 else 0.0
    trip = conn.stats.round_trip("update_player_input", 0.5)
    t0 = os.environ.get(START_ENV)
    entered = ""
    if t0 and player.first_seen is not None:
        entered = f" in the arena {player.first_seen - float(t0):.2f} s after the start;"
    rtt = "n/a" if trip is None else f"{trip * 1000:.1f} ms"
    players = sum(1 for _ in mb.Player.iter(client=conn))
    return (
        f"arena ({engine}, headless): {frames} frames in {seconds:.1f} s ({frames / max(seconds, 1e-9):.0f} fps),"
        f" frame work p99 {p99:.1f} ms (the network layer {share:.0%} of it); {players} players, {entities} entities; your mass {player.total_mass};"
        f"{entered}"
        f" input round trip p50 {rtt}; connection {state}"
    )


def autopilot(pilot: Bot, now: float, pointer: tuple[float, float]) -> tuple[float, float]:
    """Where a headless run's pointer goes: toward what the bot's mind chooses, nearly full speed."""
    direction = pilot.think(now)
    if direction is None:
        return pointer
    reach = HEIGHT / 3 * 0.9
    return (WIDTH / 2 + direction[0] * reach, HEIGHT / 2 + direction[1] * reach)


def arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The client's options (shared by both clients and ``python -m demos.arena``)."""
    parser.add_argument("--server", default="localhost:3000", help="the server (default %(default)s)")
    parser.add_argument("--database", default="blackholio", help="the database (default %(default)s)")
    parser.add_argument("--name", help="your name (default: asked in the game; headless: Player)")
    parser.add_argument(
        "--headless", action="store_true", help="no window: run --frames frames, print a summary"
    )
    parser.add_argument("--frames", type=int, default=0, help="stop after this many frames (default: never)")
    parser.add_argument("--screenshot", metavar="PATH", help="save the last frame as a PNG")
    parser.add_argument("--mute", action="store_true", help="no sound effects")
    add_netsim_arguments(parser)
    return parser


def client_main(
    run_client: Callable[[argparse.Namespace], int], doc: str | None, argv: Sequence[str] | None
) -> int:
    """A client's command line: its options (:func:`arguments`), then ``run_client``."""
    parser = arguments(
        argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    )
    return run_client(parser.parse_args(argv))


def main(argv: Sequence[str] | None = None) -> int:
    return client_main(run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
