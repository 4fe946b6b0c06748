"""The terminal chat demo (``demos/chat/client.py``) as a user runs it: the first client starts the
embedded dev server, a second one joins it, and each sees what the other does."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests._support import free_port

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "demos" / "chat" / "client.py"


class Chatter:
    """One ``client.py`` process, its typed input and the lines it prints."""

    def __init__(self, port: int, *extra: str, home: Path) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", HOME=str(home))
        self.proc = subprocess.Popen(
            [sys.executable, str(CLIENT), "--host", f"127.0.0.1:{port}", *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
        )
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, fragment: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append(line)
            if fragment in line:
                return line
        raise AssertionError(f"{fragment!r} never printed; saw {self.seen}")

    def type(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def test_two_users_chat_through_the_embedded_server(tmp_path: Path) -> None:
    port = free_port()
    alice = Chatter(port, home=tmp_path)
    bob = None
    try:
        alice.expect("started the embedded dev server")
        alice.expect("1 online")
        alice.type("/name alice")
        alice.expect("renamed to alice")
        alice.type("hello, anyone?")
        alice.expect("alice: hello, anyone?")

        bob = Chatter(port, "--no-serve", home=tmp_path)
        bob.expect("alice: hello, anyone?")  # the history so far
        bob.expect("2 online")
        alice.expect("connected.")
        bob.type("/name bob")
        alice.expect("renamed to bob")
        bob.type("hi alice")
        assert alice.expect("bob:") == "bob: hi alice"
        bob.type("/name ")
        bob.expect("Failed to set name: Names must not be empty")

        assert bob.proc.stdin is not None
        bob.proc.stdin.close()  # the end of bob's input: he leaves
        assert bob.proc.wait(20) == 0
        alice.expect("User bob disconnected.")
        alice.type("/quit")
        assert alice.proc.wait(20) == 0
        # the server alice started is gone with her
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            except OSError:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the embedded server outlived the chat that started it")
    finally:
        alice.stop()
        if bob is not None:
            bob.stop()


def test_no_server_and_no_serve_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(CLIENT), "--host", f"127.0.0.1:{free_port()}", "--no-serve"],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(ROOT), HOME=str(tmp_path)),
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 1
    assert "nothing answers at 127.0.0.1:" in done.stdout


def test_a_profile_keeps_the_identity_between_runs(tmp_path: Path) -> None:
    from tests.client._support import CHAT_MODULE, ServerProcess

    server = ServerProcess(CHAT_MODULE, "quickstart-chat", None).start()
    try:
        first = Chatter(server.port, "--no-serve", "--profile", "carol", home=tmp_path)
        first.expect("1 online")
        first.type("/name carol")
        first.expect("renamed to carol")
        first.type("/quit")
        assert first.proc.wait(20) == 0
        again = Chatter(server.port, "--no-serve", "--profile", "carol", home=tmp_path)
        assert again.expect("online:").endswith("1 online: carol. Type to chat, /name NAME, /quit.")
        again.type("/quit")
        assert again.proc.wait(20) == 0
        other = Chatter(server.port, "--no-serve", home=tmp_path)  # no profile: a new user
        assert "carol" not in other.expect("online:")
        other.type("/quit")
        assert other.proc.wait(20) == 0
    finally:
        server.stop()


def test_when_the_host_chat_ends_the_others_are_told_once_and_wait_quietly(tmp_path: Path) -> None:
    """The chat that started the server ends: another chat says so once (not a line per retry), and
    names users by the part of their identity that differs (every identity begins with c200)."""
    port = free_port()
    host = Chatter(port, home=tmp_path)
    guest = None
    try:
        host.expect("1 online")
        guest = Chatter(port, "--no-serve", home=tmp_path)
        online = guest.expect("2 online")
        names = online.split("online: ", 1)[1].split(".", 1)[0].split(", ")
        assert len(names) == 2 and not any(n.startswith("c200") for n in names), online
        host.type("/quit")
        assert host.proc.wait(20) == 0
        said = guest.expect("Nothing answers at")
        assert "if another chat started the server, that chat has ended" in said
        time.sleep(3)  # retries meanwhile
        later = []
        while True:
            try:
                later.append(guest.lines.get_nowait())
            except queue.Empty:
                break
        assert not [line for line in later if line.startswith("--")], later
        guest.type("/quit")
        assert guest.proc.wait(20) == 0
    finally:
        host.stop()
        if guest is not None:
            guest.stop()


def test_a_terminal_shows_ones_own_message_once(capsys: pytest.CaptureFixture[str]) -> None:
    """On a terminal the typed line is already on screen, so one's own message is not printed again;
    with piped input (no echo) it is."""
    from types import SimpleNamespace

    from demos.chat.client import Chat

    users = SimpleNamespace(
        filter_by_identity=lambda ident: SimpleNamespace(name=f"user-{ident}", identity=ident)
    )
    chat = Chat(SimpleNamespace(User=users), "localhost:3000")
    chat.identity = "me"
    for echoed in (True, False):
        chat.echoed = echoed
        chat.on_message_insert(SimpleNamespace(sender="me", text="mine"), event=object())
        chat.on_message_insert(SimpleNamespace(sender="you", text="theirs"), event=object())
        out = capsys.readouterr().out.splitlines()
        expected = ["user-you: theirs"] if echoed else ["user-me: mine", "user-you: theirs"]
        assert out == expected
