"""The documented Async client against the dev server: callbacks registered before ``run``, events
scheduled before ``run``, every callback on the loop's thread, ``force_close`` from another thread, and
``run`` raising when the connection is lost with ``reconnect=False``."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from spacetime_game.sdk.spacetimedb_async_client import SpacetimeDBAsyncClient, SpacetimeDBException
from spacetime_game.sdk.spacetimedb_client import SpacetimeDBClient

from ._support import CHAT_MODULE, Recorder, ServerProcess, sdk_threads_after_close

DB = "quickstart-chat"
QUERIES = ["SELECT * FROM user", "SELECT * FROM message"]


def wait(cond: Callable[[], bool], timeout: float = 10, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


class Runner:
    """``asyncio.run(client.run(...))`` on its own thread, as the quickstart does."""

    def __init__(self, client: SpacetimeDBAsyncClient, *args: Any, **kwargs: Any) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(client, args, kwargs), name="quickstart-loop")
        self.thread.start()

    def _run(self, client: SpacetimeDBAsyncClient, args: Any, kwargs: Any) -> None:
        try:
            asyncio.run(client.run(*args, **kwargs))
        except BaseException as exc:
            self.error = exc


def test_run_schedule_and_force_close(chat: ModuleType, chat_server: ServerProcess) -> None:
    threads_before = set(threading.enumerate())
    client = SpacetimeDBAsyncClient(chat)
    assert client.client is not None and SpacetimeDBClient.instance is client.client
    where: list[str] = []
    rec = Recorder()

    def on_user(op: str, old: Any, new: Any, ev: Any) -> None:
        where.append(threading.current_thread().name)
        rec.log.append((op, old, new, ev))

    chat.User.register_row_update(on_user)  # before run: the documented order
    applied: list[str] = []
    client.register_on_subscription_applied(lambda: applied.append(threading.current_thread().name))
    ticks: list[tuple[int, str]] = []

    def tick(n: int) -> None:
        ticks.append((n, threading.current_thread().name))
        if n < 3:
            client.schedule_event(0.01, tick, n + 1)  # a repeating event reschedules itself

    client.schedule_event(0.01, tick, 1)  # before run: kept until the loop starts
    connected: list[tuple[Any, ...]] = []

    def on_connect(token: str, identity: Any) -> None:
        connected.append((token, identity, threading.current_thread().name))

    runner = Runner(client, None, chat_server.host, DB, False, on_connect, QUERIES)
    wait(lambda: bool(connected and applied) and len(ticks) == 3, what="connect, subscription, ticks")
    token, identity, thread_name = connected[0]
    assert token and identity == client.identity and client.address is not None and client.is_connected
    assert [n for n, _ in ticks] == [1, 2, 3]
    assert {thread_name, *applied, *(t for _, t in ticks)} == {"quickstart-loop"}
    # the generated reducer function, called from a scheduled event, reaches the default client
    calls: list[Any] = []
    client.schedule_event(0, lambda: calls.append(chat.set_name("async alice")))
    wait(
        lambda: any(op == "update" and new.name == "async alice" for op, _, new, _ in rec.log), what="rename"
    )
    assert calls[0].committed
    assert set(where) == {"quickstart-loop"}
    (op, old, new, ev) = rec.log[-1]
    assert (op, old.name, new.identity, ev.reducer_name, ev.args) == (
        "update",
        None,
        identity,
        "set_name",
        ["async alice"],
    )

    # stop from the main thread; late events are dropped
    client.schedule_event(30, lambda: pytest.fail("a cancelled event ran"))
    t0 = time.monotonic()
    client.force_close()
    runner.thread.join(5)
    assert not runner.thread.is_alive() and runner.error is None
    assert time.monotonic() - t0 < 2
    assert not client.is_connected
    assert sdk_threads_after_close() == []
    assert set(threading.enumerate()) <= threads_before


def test_run_raises_when_the_connection_is_lost(chat: ModuleType) -> None:
    server = ServerProcess(CHAT_MODULE, DB, None).start()
    try:
        client = SpacetimeDBAsyncClient(chat)
        up: list[bool] = []
        runner = Runner(
            client, None, server.host, DB, False, lambda t, i: up.append(True), QUERIES, reconnect=False
        )
        wait(lambda: bool(up), what="connected")
        server.kill()
        runner.thread.join(10)
        assert not runner.thread.is_alive()
        assert isinstance(runner.error, SpacetimeDBException)
        assert "disconnected" in str(runner.error) or "closed" in str(runner.error)
    finally:
        server.stop()
