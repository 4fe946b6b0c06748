"""A terminal chat on SpacetimeDB: the official quickstart's chat, as a spacetime-game client.

    python demos/chat/client.py                       # starts the embedded dev server if none answers
    python demos/chat/client.py                       # (again, in a second terminal: a second user)
    python demos/chat/client.py --host HOST:PORT --database quickstart-chat --profile alice

Type a line and press Enter to send it; ``/name NAME`` sets your name; ``/quit`` (or the end of the
input) leaves. The bindings are generated from the server's schema at start-up (``spacetime-game
generate``), as a user of a real SpacetimeDB would do. With ``--profile NAME`` the identity is kept
between runs (in ``local_config``), otherwise every run is a new user.
"""

from __future__ import annotations

import argparse
import importlib
import os
import queue
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MODULE = HERE / "module.py"
READY = re.compile(rb"ready in \d+ ms: ws://[\d.]+:(\d+)/")


#: set when the terminal (or pipe) is gone: the chat then leaves
gone = threading.Event()


def say(text: str) -> None:
    if gone.is_set():
        return
    try:
        print(text, flush=True)
    except (BrokenPipeError, ValueError):
        gone.set()


def answers(host: str) -> bool:
    """True if something listens at ``host`` (``name:port``)."""
    name, _, port = host.rpartition(":")
    try:
        socket.create_connection((name or "localhost", int(port)), timeout=0.5).close()
    except (OSError, ValueError):
        return False
    return True


def start_server(host: str, database: str) -> subprocess.Popen[bytes]:
    """The embedded dev server with the chat module, in memory, as a child process."""
    port = host.rpartition(":")[2]
    cmd = [sys.executable, "-m", "spacetime_game.cli", "serve", str(MODULE)]
    cmd += ["--database", database, "--port", port, "--in-memory", "--log-level", "WARNING"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), False)
    seen = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        seen += proc.stderr.read() or b""
        if READY.search(seen) or answers(host):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"the dev server did not start:\n{seen.decode(errors='replace')}")


def generate(host: str, database: str, into: Path) -> Any:
    """Generate the bindings from the server's schema and import them."""
    out = into / "chat_bindings"
    cmd = [sys.executable, "-m", "spacetime_game.cli", "generate", "--server", host]
    cmd += ["--database", database, "--out-dir", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"cannot generate the bindings: {done.stderr.strip()}")
    sys.path.insert(0, str(into))
    return importlib.import_module("chat_bindings")


def read_lines(lines: queue.SimpleQueue[str | None]) -> None:
    """Stdin, line by line, into ``lines`` (None at the end); the game-loop thread never blocks on it."""
    for line in sys.stdin:
        lines.put(line.rstrip("\n"))
    lines.put(None)


class Chat:
    """The chat's callbacks: what the quickstart prints, on the thread that calls ``update()``."""

    def __init__(self, mb: Any, host: str) -> None:
        self.mb = mb
        self.host = host
        self.identity: Any = None
        self.ready = False
        self.down = False  # between a lost connection and the next one
        # a terminal shows what was typed: one's own messages are not printed a second time
        self.echoed = sys.stdin is not None and sys.stdin.isatty()

    def name_of(self, user: Any) -> str:
        # (every identity begins with the same c200: its last digits tell people apart)
        return user.name if user.name else str(user.identity)[-8:]

    def on_identity(self, token: str, identity: Any, address: Any) -> None:
        self.identity = identity
        if self.down:
            self.down = False
            say(f"-- reconnected to {self.host}.")

    def on_disconnect(self, reason: str | None, failed: bool) -> None:
        """Once per outage (the retries that follow stay quiet until the connection is back)."""
        if self.down:
            return
        self.down = True
        if failed:
            say(f"-- disconnected ({reason}); giving up")
        else:
            say(
                f"-- disconnected ({reason}). Nothing answers at {self.host} now: if another chat started the"
                " server, that chat has ended. Retrying quietly; /quit leaves."
            )

    def on_error(self, exc: BaseException) -> None:
        if not self.down:  # (while down, each failed retry would say the same)
            say(f"-- error: {exc}")

    def on_applied(self) -> None:
        self.ready = True
        messages = sorted(self.mb.Message.iter(), key=lambda m: m.sent.micros_since_epoch)
        for m in messages[-10:]:
            self.print_message(m)
        online = sorted(self.name_of(u) for u in self.mb.User.iter() if u.online)
        say(f"-- {len(online)} online: {', '.join(online)}. Type to chat, /name NAME, /quit.")

    def print_message(self, m: Any) -> None:
        sender = self.mb.User.filter_by_identity(m.sender)
        say(f"{self.name_of(sender) if sender is not None else 'unknown'}: {m.text}")

    def on_user_insert(self, user: Any, event: Any) -> None:
        if self.ready and user.online:
            say(f"User {self.name_of(user)} connected.")

    def on_user_update(self, old: Any, new: Any, event: Any) -> None:
        if old.online and not new.online:
            say(f"User {self.name_of(new)} disconnected.")
        elif not old.online and new.online:
            say(f"User {self.name_of(new)} connected.")
        if old.name != new.name:
            say(f"User {self.name_of(old)} renamed to {self.name_of(new)}.")

    def on_message_insert(self, message: Any, event: Any) -> None:
        if event is None:  # the subscription's initial rows: on_applied prints the last ones
            return
        if not (self.echoed and message.sender == self.identity):
            self.print_message(message)

    def on_result(self, what: str) -> Any:
        def done(call: Any) -> None:
            if not call.committed:
                say(f"Failed to {what}: {call.message}")

        return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--host", "--server", dest="host", default="localhost:3000", help="the server (default: %(default)s)"
    )
    parser.add_argument("--database", default="quickstart-chat", help="the database (default: %(default)s)")
    parser.add_argument("--profile", help="keep this user's identity between runs under this name")
    parser.add_argument("--no-serve", action="store_true", help="never start the embedded dev server")
    args = parser.parse_args(argv)

    server = None
    if not answers(args.host):
        if args.no_serve:
            say(f"nothing answers at {args.host}")
            return 1
        server = start_server(args.host, args.database)
        say(f"-- started the embedded dev server at {args.host} (it stops when this chat ends);")
        python = os.path.relpath(sys.executable)
        python = sys.executable if python.startswith("..") else python
        same = "".join(
            f" --{k} {v}"
            for k, v, d in (
                ("host", args.host, "localhost:3000"),
                ("database", args.database, "quickstart-chat"),
            )
            if v != d
        )
        script = Path(sys.argv[0])
        again = f"{python} {script.as_posix()}" if script.suffix == ".py" else f"{script.name} demo chat"
        say(f"-- a second user: {again}{same} (in another terminal)")

    from spacetime_game.sdk import local_config
    from spacetime_game.sdk.spacetimedb_client import SpacetimeDBClient

    try:
        with tempfile.TemporaryDirectory(prefix="chat-bindings-") as tmp:
            mb = generate(args.host, args.database, Path(tmp))
            chat = Chat(mb, args.host)
            if args.profile:
                local_config.init(".spacetime_game_chat", profile=args.profile)
            client = SpacetimeDBClient.init(
                None,
                args.host,
                args.database,
                False,
                mb,
                on_identity=chat.on_identity,
                on_disconnect=lambda reason: chat.on_disconnect(reason, client.state == "failed"),
                on_error=chat.on_error,
                persist_token=bool(args.profile),
            )
            # (callbacks run inside update(): registering them right after init misses nothing)
            mb.User.on_insert(chat.on_user_insert)
            mb.User.on_update(chat.on_user_update)
            mb.Message.on_insert(chat.on_message_insert)
            client.register_on_subscription_applied(chat.on_applied)
            client.subscribe(["SELECT * FROM user", "SELECT * FROM message"])
            lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
            threading.Thread(target=read_lines, args=(lines,), daemon=True).start()
            try:
                run(client, mb, chat, lines)
            finally:
                client.close()
            if client.last_error is not None and client.last_error.permanent:
                return 1  # an unknown database or a refused token (said above)
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
    return 0


def run(client: Any, mb: Any, chat: Chat, lines: queue.SimpleQueue[str | None]) -> None:
    """The frame loop: ``update()`` about 60 times a second, then the lines typed meanwhile (kept until
    the subscription has arrived). At the end of the input, wait for the answers to what was sent."""
    leaving: float | None = None
    while not gone.is_set():
        client.update()
        if client.state == "failed":  # not retried: an unknown database, a refused token
            return
        if leaving is not None:
            if not client.stats.calls_in_flight or time.monotonic() > leaving:
                return
        elif chat.ready:
            while True:
                try:
                    line = lines.get_nowait()
                except queue.Empty:
                    break
                if line is None or line.strip() == "/quit":
                    leaving = time.monotonic() + 5
                    break
                if line.startswith("/name "):
                    mb.set_name(line[6:].strip()).add_done_callback(chat.on_result("set name"))
                elif line.strip():
                    mb.send_message(line).add_done_callback(chat.on_result("send message"))
        time.sleep(1 / 60)


if __name__ == "__main__":
    sys.exit(main())
