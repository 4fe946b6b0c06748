"""The documented Async client of the 0.x Python SDK: ``run()`` owns an asyncio loop and delivers
events as soon as they arrive (no polling).

::

    client = SpacetimeDBAsyncClient(module_bindings)
    await client.run(token, "localhost:3000", "quickstart-chat", False, on_connect, ["SELECT * FROM user"])
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from . import bindings
from ._client import ReducerCall, SubscriptionHandle
from ._failures import ConnectionFailed
from .sats import ConnectionId, Identity, SpacetimeError
from .spacetimedb_client import SpacetimeDBClient

__all__ = ["SpacetimeDBAsyncClient", "SpacetimeDBException"]

log = logging.getLogger("spacetime_game.sdk")


class SpacetimeDBException(SpacetimeError):
    """``run()`` ended because of an error or an unexpected disconnect."""


class SpacetimeDBAsyncClient:
    """The Async client. Register callbacks on the generated classes, then ``await run(...)``."""

    def __init__(self, autogen_package: Any) -> None:
        self._package = autogen_package
        # Made at once, as in the 0.x SDK: the documented quickstart registers its callbacks (generated
        # ``register_row_update``, ``client.register_on_subscription_applied``) before ``run``.
        self.client: SpacetimeDBClient | None = SpacetimeDBClient(autogen_package)
        SpacetimeDBClient.instance = self.client
        bindings.set_default_client(self.client)
        self._running = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stop = threading.Event()
        self._scheduled: list[tuple[float, Callable[..., Any], tuple[Any, ...]]] = []
        self._tasks: set[asyncio.TimerHandle] = set()
        self._queries: list[list[str]] = []
        self._applied_cbs: list[Callable[[], None]] = []
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._coros: set[asyncio.Task[Any]] = set()

    @property
    def identity(self) -> Identity | None:
        """This client's identity, once connected."""
        return self.client.identity if self.client else None

    @property
    def address(self) -> ConnectionId | None:
        """This connection's id."""
        return self.client.connection_id if self.client else None

    @property
    def last_error(self) -> ConnectionFailed | None:
        """The last failed connection attempt (its readable ``reason``), or None."""
        return self.client.last_error if self.client else None

    @property
    def is_connected(self) -> bool:
        """True while connected."""
        return self.client is not None and self.client.is_connected

    async def run(
        self,
        auth_token: str | None,
        host: str,
        address_or_name: str,
        ssl_enabled: bool,
        on_connect: Callable[[str, Identity], Any] | None = None,
        subscription_queries: Sequence[str] | None = None,
        *,
        reconnect: bool = True,
    ) -> None:
        """Connect, subscribe to ``subscription_queries``, call ``on_connect(token, identity)``, and
        deliver events until :meth:`force_close`. Raises :class:`SpacetimeDBException` if the connection
        is lost and ``reconnect`` is False, or if it fails for good (an unknown database, a refused
        token: the exception's text is the reason, its ``__cause__`` the :class:`ConnectionFailed`)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._wake = asyncio.Event()
        self._stop.clear()
        wake = self._wake

        def on_connect_cb() -> None:
            if on_connect is not None and self.client is not None:
                token = self.client.token or ""
                assert self.client.identity is not None
                result = on_connect(token, self.client.identity)
                if asyncio.iscoroutine(result):
                    self._coros.add(loop.create_task(result))

        def on_disconnect_cb(reason: str | None) -> None:
            if not reconnect:
                self._error = SpacetimeDBException(f"disconnected: {reason or 'connection closed'}")

        client = self.client if self.client is not None else SpacetimeDBClient(self._package)
        client._configure(auth_token, host, address_or_name, ssl_enabled, on_connect_cb, on_disconnect_cb)
        client.reconnect = reconnect
        self.client = client
        SpacetimeDBClient.instance = client
        bindings.set_default_client(client)
        self._running = True
        client.connect()

        def wakeup() -> None:
            loop.call_soon_threadsafe(wake.set)

        client.add_wakeup(wakeup)
        for cb in self._applied_cbs:
            client.register_on_subscription_applied(cb)
        if subscription_queries:
            client.subscribe(list(subscription_queries))
        for q in self._queries:
            client.subscribe(q)
        with self._lock:
            pending, self._scheduled = self._scheduled, []
        for delay, cb, args in pending:
            self._schedule_now(delay, cb, args)
        try:
            while not self._stop.is_set():
                client.update()
                if client.state == "failed" and client.last_error is not None:
                    raise SpacetimeDBException(client.last_error.reason) from client.last_error
                if self._error is not None:
                    raise self._error
                if client.state == "closed" and not self._stop.is_set():
                    raise SpacetimeDBException("the connection closed")
                wake.clear()
                if client.state == "reconnecting":
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), 0.05)  # update() drives the retry timer
                else:
                    await wake.wait()
        finally:
            for h in self._tasks:
                h.cancel()
            self._tasks.clear()
            for t in self._coros:
                t.cancel()
            self._running = False
            client.close()

    def subscribe(self, queries: Sequence[str]) -> SubscriptionHandle | None:
        """Subscribe (replacing earlier ``subscribe`` queries). Before ``run`` the queries are kept."""
        if self.client is None or not self._running:
            self._queries.append(list(queries))
            return None
        return self.client.subscribe(list(queries))

    def register_on_subscription_applied(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when subscribed rows are applied."""
        if self.client is None:
            self._applied_cbs.append(callback)
        else:
            self.client.register_on_subscription_applied(callback)

    def call_reducer(self, name: str, *args: Any) -> ReducerCall:
        """Call a reducer by name with Python arguments (encoded with the bindings)."""
        if self.client is None:
            raise SpacetimeDBException("not running")
        return self.client.call_reducer(name, self.client.module.reducer(name).encode_args(args))

    def force_close(self) -> None:
        """Stop :meth:`run`; safe to call from any thread."""
        self._stop.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    def schedule_event(self, delay_secs: float, callback: Callable[..., Any], *args: Any) -> None:
        """Call ``callback(*args)`` on the loop after ``delay_secs``; safe from any thread. Events still
        waiting when the client closes are cancelled."""
        loop = self._loop
        if loop is None or loop.is_closed():
            with self._lock:
                self._scheduled.append((delay_secs, callback, args))
            return
        loop.call_soon_threadsafe(self._schedule_now, delay_secs, callback, args)

    def _schedule_now(self, delay: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        assert self._loop is not None
        if self._stop.is_set():
            return
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            if handle is not None:
                self._tasks.discard(handle)
            try:
                result = callback(*args)
                if asyncio.iscoroutine(result):
                    assert self._loop is not None
                    self._coros.add(self._loop.create_task(result))
            except Exception:
                log.exception("a scheduled event raised")

        handle = self._loop.call_later(delay, fire)
        self._tasks.add(handle)
