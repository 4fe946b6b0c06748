"""Our client against a hostile server (``_hostile_server.py``, a separate process): random and mutated
frames, text frames, compression bombs, unknown compression tags, messages that make no sense in the
protocol, and a server that ignores the close handshake. Whatever arrives, ``update()`` never raises and
never blocks the game loop, every problem reaches ``on_error`` as one of the SDK's own errors, memory stays
bounded, and once the server behaves again the cache ends equal to the server's true state."""

from __future__ import annotations

import json
import resource
import threading
import time
import urllib.request
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
import websocket

from spacetime_game.sdk import DbConnection, SpacetimeError
from spacetime_game.sdk.protocol import Compression

from ..client._support import chat_schema, forget, import_generated
from ._support import start_child, stop_child

pytestmark = pytest.mark.timeout(180)

ATTACK_SECONDS = 6.0


@pytest.fixture(scope="module")
def chat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    pkg = import_generated(chat_schema(), tmp_path_factory.mktemp("chat"), "quickstart_chat.schema.json")
    yield pkg
    forget(pkg)


class HostileServer:
    def __init__(self, seed: int, attack_seconds: float) -> None:
        self.proc, line = start_child(
            "_hostile_server.py", str(seed), str(attack_seconds), ready="port ", what="the hostile server"
        )
        self.port = int(line.split()[1])

    def state(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/state", timeout=10) as resp:
            data: dict[str, Any] = json.loads(resp.read())
        return data

    def stop(self) -> None:
        stop_child(self.proc, 10)


def _cache_state(conn: DbConnection) -> dict[str, Any]:
    users = sorted([str(u.identity), u.name, u.online] for u in conn.iter_rows("user"))
    messages = sorted([str(m.sender), m.sent.micros_since_epoch, m.text] for m in conn.iter_rows("message"))
    return {"users": users, "messages": messages}


def _same(conn: DbConnection, server: HostileServer) -> bool:
    state = server.state()
    return _cache_state(conn) == {"users": state["users"], "messages": state["messages"]}


def _sdk_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("spacetime-game") and t.is_alive()]


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("compression", [Compression.NONE, Compression.GZIP])
def test_the_client_survives_a_hostile_server(chat: ModuleType, seed: int, compression: Compression) -> None:
    threads_before = set(_sdk_threads())
    server = HostileServer(seed, ATTACK_SECONDS)
    errors: list[BaseException] = []
    events: list[str] = []
    try:
        conn = DbConnection(
            chat.MODULE,
            f"127.0.0.1:{server.port}",
            "db",
            compression=compression,
            reconnect=True,
            reconnect_min_delay=0.02,
            reconnect_max_delay=0.2,
            on_error=errors.append,
        )
        conn.on_row("message", "insert", lambda row, ev: events.append("m+"))
        conn.connect()
        conn.subscribe(["SELECT * FROM user", "SELECT * FROM message"])
        durations: list[float] = []
        raised: list[BaseException] = []
        deadline = time.monotonic() + ATTACK_SECONDS + 30
        converged = False
        rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            try:
                conn.update(budget=0.004)
            except BaseException as exc:  # the point of the test: nothing may escape update()
                raised.append(exc)
            durations.append(time.perf_counter() - t0)
            time.sleep(0.005)
            attack_over = time.monotonic() > deadline - 30
            if attack_over and len(durations) % 50 == 0 and conn.is_connected and _same(conn, server):
                converged = True
                break
        t0 = time.perf_counter()
        conn.close()
        close_time = time.perf_counter() - t0
        rss_peak_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_start) * 1024
        final = server.state()
        print(
            "hostile frames sent:", final["sent"], "errors:", len(errors), {type(e).__name__ for e in errors}
        )
        cache = _cache_state(conn)
    finally:
        server.stop()
    assert not raised, f"update() raised: {raised[:3]}"
    durations.sort()
    assert durations[-1] < 0.25, f"update() blocked the game loop for {durations[-1] * 1e3:.0f} ms"
    p99 = durations[int(len(durations) * 0.99)]
    assert p99 < 0.03, f"update() p99 {p99 * 1e3:.1f} ms"
    assert errors, "a hostile server and no error reported"
    foreign = [
        e for e in errors if not isinstance(e, SpacetimeError | OSError | websocket.WebSocketException)
    ]
    assert not foreign, f"errors that are not the SDK's own (bugs?): {foreign[:3]}"
    assert converged, f"the cache did not converge: {len(cache['users'])}/{len(final['users'])} users, " + (
        f"{len(cache['messages'])}/{len(final['messages'])} messages"
    )
    assert close_time < 1.0, f"close() took {close_time:.2f} s"
    assert rss_peak_growth < 600 * 2**20, f"memory grew by {rss_peak_growth / 2**20:.0f} MiB (bombs?)"
    deadline = time.monotonic() + 5
    while set(_sdk_threads()) - threads_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not set(_sdk_threads()) - threads_before, "threads left behind after close()"
