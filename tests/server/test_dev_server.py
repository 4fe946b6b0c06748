"""The public ``spacetime_game.server.DevServer`` and ``DevServerProcess``: started and stopped on a thread,
in a running event loop and as a child process; their URLs reach the server, and a client connects."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from spacetime_game.sdk.protocol import InitialConnection
from spacetime_game.server import DevServer, DevServerError, DevServerProcess

from .conftest import CHAT, Client

DB = "dev-chat"


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return int(reply.status)


def _sql(server: DevServer | DevServerProcess, query: str, token: str | None = None) -> list[object]:
    request = urllib.request.Request(
        f"{server.url}/v1/database/{server.database}/sql",
        data=query.encode(),
        headers={"Authorization": f"Bearer {token}"} if token else {},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())[0]["rows"]  # type: ignore[no-any-return]


def _connects(server: DevServer | DevServerProcess) -> None:
    """A WebSocket client gets its InitialConnection, and the module saw it connect."""
    client = Client(server.ws_url)
    try:
        hello = client.recv_type(InitialConnection)
        rows = _sql(server, "SELECT * FROM user")
        assert rows == [[[f"0x{hello.identity}"], [1, []], True]]  # online, no name yet
    finally:
        client.close()


def _refused(url: str) -> bool:
    try:
        _get(url)
    except OSError:
        return True
    return False


def test_on_a_thread_in_two_lines() -> None:
    with DevServer(CHAT, DB) as server:
        assert server.running and server.port > 0
        assert server.database == DB and server.host == "127.0.0.1"
        assert server.address == f"127.0.0.1:{server.port}"
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.ws_url == f"ws://127.0.0.1:{server.port}/v1/database/{DB}/subscribe"
        assert _get(f"{server.url}/v1/ping") == 200
        _connects(server)
        assert server.failed is None and server.data_dir is None
        url = server.url
        threads = [t for t in threading.enumerate() if t.name == f"devserver-{DB}"]
        assert len(threads) == 1
    assert not server.running
    assert _refused(f"{url}/v1/ping")
    assert not threads[0].is_alive()  # its thread ended too
    server.close()  # again: nothing to do


def test_start_in_thread_returns_the_server_and_close_stops_it(tmp_path: Path) -> None:
    server = DevServer(CHAT, DB, data_dir=tmp_path / "data", max_query_bytes=64).start_in_thread()
    try:
        assert (tmp_path / "data" / "owner.token").read_text().strip() == server.owner_token
        assert server.data_dir == tmp_path / "data"
        # the limit keyword reached the server
        with pytest.raises(urllib.error.HTTPError) as refused:
            _sql(server, "SELECT * FROM user WHERE name = '" + "x" * 100 + "'")
        assert refused.value.code == 400 and "max_query_bytes" in refused.value.read().decode()
        with pytest.raises(DevServerError, match="already started"):
            server.start_in_thread()
        with pytest.raises(DevServerError, match="close"):
            asyncio.run(server.stop())
    finally:
        server.close()
    assert _refused(f"{server.url}/v1/ping")


def test_a_server_that_cannot_start_raises_and_leaves_no_thread() -> None:
    with DevServer(CHAT, DB) as first:
        before = set(threading.enumerate())
        second = DevServer(CHAT, DB, port=first.port)
        with pytest.raises(OSError):
            second.start_in_thread()
        assert not second.running
        assert {t for t in threading.enumerate() if t.name.startswith("devserver")} <= before


def test_in_a_running_event_loop() -> None:
    async def main() -> str:
        async with DevServer(CHAT, DB) as server:
            assert server.running
            loop = asyncio.get_running_loop()
            assert await loop.run_in_executor(None, _get, f"{server.url}/v1/ping") == 200
            await loop.run_in_executor(None, _connects, server)
            with pytest.raises(DevServerError, match="await"):
                server.close()
            url = server.url
        assert not server.running
        return url

    url = asyncio.run(main())
    assert _refused(f"{url}/v1/ping")


def test_as_a_child_process_in_two_lines(tmp_path: Path) -> None:
    with DevServerProcess(CHAT, DB, data_dir=tmp_path / "data", max_query_terms=8) as server:
        assert server.running and server.port > 0 and server.pid is not None
        assert server.address == f"127.0.0.1:{server.port}"
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.ws_url == f"ws://127.0.0.1:{server.port}/v1/database/{DB}/subscribe"
        assert "--limit" in server.command and "max_query_terms=8" in server.command
        assert _get(f"{server.url}/v1/ping") == 200
        _connects(server)
        assert server.owner_token == (tmp_path / "data" / "owner.token").read_text().strip()
        port = server.port
    assert not server.running and server.returncode == 0  # SIGTERM: a clean stop
    assert "ready in" in server.log and "stopped" in server.log
    assert _refused(f"http://127.0.0.1:{port}/v1/ping")


def test_a_child_process_restarts_on_its_port_after_a_kill() -> None:
    server = DevServerProcess(CHAT, DB).start()
    try:
        port = server.port
        assert server.owner_token  # in memory: taken from its log
        server.kill()
        assert not server.running and server.returncode not in (None, 0)
        server.start()
        assert server.port == port and _get(f"{server.url}/v1/ping") == 200
    finally:
        server.stop()
    assert server.stop() == server.returncode  # again: already stopped


def test_a_child_process_that_fails_says_why(tmp_path: Path) -> None:
    bad = tmp_path / "bad_module.py"
    bad.write_text("this is not python\n")
    server = DevServerProcess(bad, DB)
    with pytest.raises(DevServerError, match=r"exited with code 2.*\n.*bad_module\.py"):
        server.start()
    assert not server.running


def test_the_public_limits_are_the_applications_keywords() -> None:
    import inspect

    from spacetime_game.server import ServerLimits
    from spacetime_game.server._app import ServerApp

    keywords = inspect.signature(ServerApp).parameters
    limits = {n for n, p in keywords.items() if p.kind == p.KEYWORD_ONLY} - {"protocols"}  # (not a limit)
    assert limits == set(ServerLimits.__annotations__)
