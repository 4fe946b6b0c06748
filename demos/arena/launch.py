"""The arena demo: the embedded dev server with the arena module, bots, and a client window.

    python -m demos.arena                                   # pygame, 8 bots, the embedded server
    python -m demos.arena --engine arcade --bots 20 --name Ada
    python -m demos.arena --server localhost:3000 --database blackholio   # a running server (or a real one)
    python -m demos.arena --headless --frames 300 --screenshot arena.png  # no window: a summary and a picture

With no ``--server`` it joins the arena already served at ``localhost:3000`` (another ``spacetime-game
demo`` on this machine: that is how a second player joins), or else starts the embedded dev server (in
memory) there with ``module.py``, waits until it is ready, starts the bots in a process of their own,
opens the client and stops everything when the window closes (the first window hosts the game: closing
it ends it for the others). Where there is no display it says so and runs headless instead of failing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spacetime_game.server import reachable_address

HERE = Path(__file__).resolve().parent
MODULE = HERE / "module.py"
DATABASE = "blackholio"
#: Where the demo serves the arena, and where a second ``spacetime-game demo`` looks for it first
#: (SpacetimeDB's own default address).
HOME = "localhost:3000"
#: Bots started with the server when ``--bots`` is not given (none are added when joining).
DEFAULT_BOTS = 8


def has_display() -> bool:
    """Whether a window can open here (on Linux: an X or Wayland display; elsewhere assumed)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def parser() -> argparse.ArgumentParser:
    from .pygame_client import arguments

    p = argparse.ArgumentParser(
        prog="spacetime-game demo arena",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--engine", choices=("pygame", "arcade"), default="pygame", help="the client (default pygame)"
    )
    p.add_argument(
        "--bots",
        type=int,
        default=None,
        metavar="N",
        help=f"bot players (default {DEFAULT_BOTS} with a new server, none when joining a running one)",
    )
    p.add_argument(
        "--listen",
        metavar="ADDRESS",
        default="127.0.0.1",
        help="where the server it starts listens (default 127.0.0.1: this machine only); 0.0.0.0 or this "
        "machine's LAN address lets teammates join (it prints their command)",
    )
    arguments(p)
    p.set_defaults(server=None, database=DATABASE)
    return p


def serves_arena(host: str, database: str) -> bool:
    """Whether a SpacetimeDB server (ours or a real one) at ``host`` has the database ``database``."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{host}/v1/database/{database}", timeout=1.0) as reply:
            return bool(reply.status == 200)
    except (OSError, ValueError):  # nothing there, another program, or no such database (HTTP 404)
        return False


def start_server(database: str, host: str = "127.0.0.1") -> Any:
    """The embedded dev server with the arena module, listening on ``host``, at :data:`HOME`'s port if
    that is free, else at a free port."""
    from spacetime_game.server import DevServerProcess

    port = home_port()
    if _port_free(port):
        server = DevServerProcess(MODULE, database=database, port=port, host=host)
        try:
            server.start()
            return server
        except Exception:  # taken meanwhile (two demos started at once): any free port instead
            server.stop()
    server = DevServerProcess(MODULE, database=database, host=host)
    server.start()
    return server


def home_port() -> int:
    return int(HOME.rpartition(":")[2])


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # (as the server binds)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


#: How much lower the bots' process runs than the game's (``nice``).
BOTS_NICENESS = 10


def start_bots(count: int, server: str, database: str) -> subprocess.Popen[bytes]:
    """The bots, in a process of their own at a lower priority: they stand in for players on other
    machines, so on this one the player's own window (and the server) come first when the CPU is short."""
    package = __package__ or "demos.arena"
    cmd = [sys.executable, "-m", f"{package}.bots", "--count", str(count), "--server", server]
    cmd += ["--database", database]
    env = dict(os.environ)
    root = str(HERE.parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    with contextlib.suppress(AttributeError, OSError):  # (POSIX only; a lower priority is a nicety)
        os.setpriority(os.PRIO_PROCESS, proc.pid, os.getpriority(os.PRIO_PROCESS, 0) + BOTS_NICENESS)
    return proc


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("SPACETIME_GAME_T0", str(time.time()))  # (see pygame_client.START_ENV)
    args = parser().parse_args(argv)
    if not args.headless and not has_display():
        args.headless = True
        args.frames = args.frames or 300
        args.screenshot = args.screenshot or f"arena-{args.engine}.png"
        print(
            f"No display here (DISPLAY is not set): running the arena headless for {args.frames} frames;"
            f" the last frame goes to {args.screenshot}."
        )
    server = None
    bots = None
    try:
        if args.server is None and serves_arena(HOME, args.database):
            args.server = HOME
            print(f"Joining the arena already running at {HOME} (database {args.database}).")
            args.bots = args.bots or 0
        elif args.server is None:
            started = time.perf_counter()
            server = start_server(args.database, args.listen)
            shared = reachable_address(args.listen)
            args.server = f"{args.listen if shared == args.listen else '127.0.0.1'}:{server.port}"
            if shared is not None:
                print(
                    f"Teammates on your network join with: spacetime-game demo --server {shared}:{server.port}"
                )
            if server.port != home_port():
                print(
                    f"{HOME} is taken by something else: the arena is served at {args.server}; another"
                    f" player joins with: spacetime-game demo --server {args.server}"
                )
            elif not args.headless:
                print(
                    f"The embedded dev server is up at {server.url} ({time.perf_counter() - started:.1f} s);"
                    " run `spacetime-game demo` again in another terminal to join as a second player."
                )
            if not args.headless:
                link, deadline = server.console_url, time.monotonic() + 2.0
                while link is None and time.monotonic() < deadline:  # (logged just after it is ready)
                    time.sleep(0.05)
                    link = server.console_url
                if link is not None:
                    print(f"Watch the server live in your browser (the link signs you in): {link}")
        if args.bots is None:
            args.bots = DEFAULT_BOTS if server is not None else 0
        if args.bots > 0:
            bots = start_bots(args.bots, args.server, args.database)
        if args.engine == "arcade":
            from .arcade_client import run
        else:
            from .pygame_client import run
        return run(args)
    except KeyboardInterrupt:
        return 130
    finally:
        stop(bots)
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
