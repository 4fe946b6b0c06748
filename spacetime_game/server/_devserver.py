"""The dev server's programmatic entry: :class:`DevServer` runs it in this process (in a running event
loop, or on a thread of its own), :class:`DevServerProcess` runs ``spacetime-game serve`` as a child
process. Both know their URLs, so a test starts a real server in two lines::

    with DevServer("module.py") as server:  # port 0: a free port
        conn = DbConnection(module_bindings.MODULE, server.address, server.database)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Self, TypedDict, Unpack

from ..sdk import Identity, SpacetimeError
from ._app import ServerApp
from ._migrate import ModuleUpdate
from ._module import ModuleDef, load_module

__all__ = ["DevServer", "DevServerError", "DevServerProcess", "ServerLimits"]

#: How long :meth:`DevServer.start_in_thread` and :meth:`DevServerProcess.start` wait by default.
START_TIMEOUT: Final = 30.0
#: Seconds a child whose log has ended is given to exit, so that its exit code can be reported.
EXIT_WAIT: Final = 5.0


class ServerLimits(TypedDict, total=False):
    """The dev server's limits, as keywords of :class:`DevServer` and :class:`DevServerProcess` (and
    ``spacetime-game serve --limit NAME=VALUE``); each protects the other clients from the cost of one.
    See ``docs/limits.md`` and :class:`DevServer` for what each bounds and its default."""

    ping_interval: float
    idle_timeout: float
    max_queued_bytes: int
    pause_reading_bytes: int
    max_query_bytes: int
    max_query_terms: int
    max_query_depth: int
    max_query_sets_per_connection: int
    max_queries_per_connection: int


class DevServerError(SpacetimeError):
    """A dev server could not be started or stopped as asked: a child process that exited or did not
    get ready in time (the message ends with the last lines of its log), or a call that does not fit
    how the server runs (``close()`` on a server running in an event loop)."""


def _client_host(host: str) -> str:
    """The host a client on this machine uses to reach a server listening on ``host``."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class _Endpoints:
    """The addresses of a server, from the host and port it listens on and its database name."""

    def _listening(self) -> tuple[str, int, str]:
        """(host, port, database)."""
        raise NotImplementedError

    @property
    def address(self) -> str:
        """``host:port`` as the SDK takes it (``DbConnection(module, server.address, server.database)``,
        ``SpacetimeDBClient.init(..., server.address, server.database, ...)``)."""
        host, port, _ = self._listening()
        return f"{_client_host(host)}:{port}"

    @property
    def url(self) -> str:
        """The HTTP base URL (``http://127.0.0.1:3000``): ``/v1/ping``, ``/v1/database/<db>/sql``, ..."""
        return f"http://{self.address}"

    @property
    def ws_url(self) -> str:
        """The WebSocket URL of the database (``ws://127.0.0.1:3000/v1/database/<db>/subscribe``)."""
        return f"ws://{self.address}/v1/database/{self._listening()[2]}/subscribe"


class DevServer(_Endpoints):
    """The embedded dev server in this process: one module served as one database over HTTP and
    WebSocket (the SpacetimeDB 2.x protocol).

    Three ways to run it:

    * **on a thread of its own** (tests, tools, a game that hosts its own server)::

          with DevServer("module.py") as server:          # start_in_thread(), then close()
              ...  server.address, server.database, server.url, server.ws_url

    * **in a running asyncio loop** (what ``spacetime-game serve`` does)::

          async with DevServer("module.py") as server:    # await start(), then await stop()
              ...

    * **in a child process**: see :class:`DevServerProcess`.

    ``module`` is a module file (``module.py`` with tables and reducers) or a loaded
    :class:`~spacetime_game.server.ModuleDef`; it is loaded when the server is created, so a bad
    module raises here. ``port=0`` (the default) picks a free port, which :attr:`port` holds once
    started. With ``data_dir`` the database is durable (a commit log in ``<data_dir>/databases/``);
    without, it lives in memory. Limits are keywords (:class:`ServerLimits`, ``docs/limits.md``):

    * ``max_queued_bytes``: encoded messages waiting to be sent to one client (default 32 MiB); a
      client whose backlog would pass it is closed with 1008 "too slow".
    * ``pause_reading_bytes``: above this much unsent, the server stops reading that client's
      requests until half is sent (default: 1 MiB or a quarter of ``max_queued_bytes``).
    * ``max_query_bytes`` (4096), ``max_query_terms`` (256), ``max_query_depth`` (64): one SQL text.
    * ``max_query_sets_per_connection`` (256), ``max_queries_per_connection`` (1024).
    * ``ping_interval`` (15 s) and ``idle_timeout`` (30 s): keepalive of idle clients.

    The database has an **owner** (``docs/owner.md``): :attr:`owner_identity`, with the token
    :attr:`owner_token` (also written to ``<data_dir>/owner.token``); only the owner reads private
    tables over ``/sql``. One instance is started once; create a new one to serve again.

    ``protocols`` limits the WebSocket subprotocols served (default: all, preferred in the order of a 2.x
    server: ``v3``, ``v2``, then ``v1``, the protocol of 1.x servers); ``protocols=["v1"]`` makes it
    behave like a 1.x server (docs/protocol.md).
    """

    def __init__(
        self,
        module: ModuleDef | str | Path,
        database: str = "quickstart-chat",
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: str | Path | None = None,
        *,
        protocols: Sequence[str] | None = None,
        **limits: Unpack[ServerLimits],
    ) -> None:
        self._app = ServerApp(module, database, host, port, data_dir, protocols=protocols, **limits)
        self._state: Literal["new", "in_loop", "in_thread", "stopped"] = "new"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"DevServer({self.database!r} at {self.url}, {self._state})"

    def _listening(self) -> tuple[str, int, str]:
        return self._app.host, self._app.port, self._app.database

    # ----- what it is ---------------------------------------------------------------------------------
    @property
    def host(self) -> str:
        """The address it listens on (``127.0.0.1`` by default; ``0.0.0.0`` for every interface)."""
        return self._app.host

    @property
    def port(self) -> int:
        """The port it listens on (the one picked, once started with port 0)."""
        return self._app.port

    @property
    def database(self) -> str:
        """The database name clients connect to."""
        return self._app.database

    @property
    def data_dir(self) -> Path | None:
        """Where the data lives (None: in memory)."""
        return self._app.data_dir

    @property
    def owner_identity(self) -> Identity:
        """The owner of the database (the same after a restart with the same ``data_dir``)."""
        return self._app.owner_identity

    @property
    def owner_token(self) -> str:
        """A token (no expiry) for :attr:`owner_identity`; a credential, so keep it out of logs."""
        return self._app.owner_token

    @property
    def console_url(self) -> str:
        """The dev console's login link (docs/console.md): opening it in a browser signs that browser in
        as the owner, so it is a credential like :attr:`owner_token`."""
        return self.url + self._app.console.login_path()

    @property
    def failed(self) -> str | None:
        """Why the database stopped for good (its commit log failed), as one line; None while it works.
        Every request then gets 503 with this reason; stop the server and start a new one."""
        return self._app.failed

    @property
    def running(self) -> bool:
        """Whether it has been started and not stopped."""
        return self._state in ("in_loop", "in_thread")

    # ----- in a running event loop ----------------------------------------------------------------
    async def start(self) -> int:
        """Open the database and start listening in the running event loop; returns the bound port."""
        self._claim("in_loop")
        try:
            return await self._app.start()
        except BaseException:
            self._state = "stopped"
            with contextlib.suppress(Exception):
                await self._app.stop()
            raise

    async def stop(self) -> None:
        """Disconnect every client (running ``client_disconnected``), flush the data, stop listening.
        Only for a server started with :meth:`start` (a thread's server stops with :meth:`close`)."""
        if self._state == "in_thread":
            raise DevServerError("this DevServer runs on its own thread: stop it with close()")
        if self._state == "in_loop":
            self._state = "stopped"
            await self._app.stop()

    async def wait_failed(self) -> str:
        """Wait until the database fails (see :attr:`failed`); returns the reason."""
        return await self._app.wait_failed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # ----- on a thread of its own --------------------------------------------------------------------
    def start_in_thread(self, timeout: float = START_TIMEOUT) -> Self:
        """Start serving on a new thread with its own event loop; returns when it listens (or raises
        what stopped it from starting). Returns the server itself, so ``DevServer(...).start_in_thread()``
        reads as one step. Stop it with :meth:`close`."""
        self._claim("in_thread")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"devserver-{self.database}", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            asyncio.run_coroutine_threadsafe(self._app.start(), loop).result(timeout)
        except BaseException:
            self._state = "stopped"
            with contextlib.suppress(Exception):
                self._shut_thread(timeout)
            raise
        return self

    def close(self, timeout: float = START_TIMEOUT) -> None:
        """Stop a server started with :meth:`start_in_thread` and end its thread (clients are
        disconnected, data flushed). Does nothing if it is not running; a server running in an event
        loop stops with ``await stop()`` instead."""
        if self._state == "in_loop":
            raise DevServerError("this DevServer runs in an event loop: stop it with `await server.stop()`")
        if self._state == "in_thread":
            self._state = "stopped"
            self._shut_thread(timeout)

    def __enter__(self) -> Self:
        if self._state == "new":
            self.start_in_thread()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ----- module updates ----------------------------------------------------------------------------
    def reload(self, module: ModuleDef | str | Path) -> ModuleUpdate:
        """Serve a new version of the module (a file, loaded here, or a loaded ``ModuleDef``), keeping
        the data; what ``spacetime-game dev`` does on save.

        Reducer changes apply at once and clients stay connected. Compatible table changes (new tables
        and indexes, new columns at the end with a default, ...: ``docs/dev.md``) migrate the stored rows
        and close every client with 1012, so that it reconnects to the new tables. An incompatible change
        raises :class:`IncompatibleSchema` saying what is wrong, and the old module keeps serving; a
        module that fails to load raises ``SchemaError`` (``file:line``) before anything changes.

        From another thread for a server on its own thread; on the loop's thread for one started in a
        running event loop."""
        mod = module if isinstance(module, ModuleDef) else load_module(module)
        if self._state == "in_thread":
            assert self._loop is not None
            return asyncio.run_coroutine_threadsafe(self._reload_here(mod), self._loop).result(START_TIMEOUT)
        if self._state == "in_loop":
            return self._app.reload(mod)
        raise DevServerError(f"this DevServer is not running ({self._state}): start it before reloading")

    async def _reload_here(self, module: ModuleDef) -> ModuleUpdate:
        return self._app.reload(module)

    def _claim(self, state: Literal["in_loop", "in_thread"]) -> None:
        if self._state != "new":
            raise DevServerError(f"this DevServer was already started ({self._state}); create a new one")
        self._state = state

    def _shut_thread(self, timeout: float) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._app.stop(), loop).result(timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            if not thread.is_alive():
                loop.close()
            self._loop = self._thread = None


#: The lines ``spacetime-game serve`` logs once it accepts connections: the port it bound, then who owns
#: the database (with the token, in memory).
_READY: Final = re.compile(
    rb"ready in \d+ ms: ws://.*?:(\d+)/v1/database/[^\n]*\n[^\n]*database owner: [^\n]*\n"
)
_OWNER_TOKEN: Final = re.compile(rb"token \(valid until this in-memory server stops\): (\S+)")
#: The dev console line `serve` logs at start.
_CONSOLE_URL: Final = re.compile(rb"dev console \(for you only: the link signs you in\): (\S+)")


class DevServerProcess(_Endpoints):
    """``spacetime-game serve`` in a child process (``python -m spacetime_game.cli serve ...``): a
    server that a test can kill (:meth:`kill`: no clean shutdown) and start again on the same port
    and data directory, or that keeps its CPU use out of the test process::

        with DevServerProcess("module.py", data_dir=tmp_path) as server:   # start(), then stop()
            ...  server.address, server.database, server.url, server.ws_url

    The arguments are those of :class:`DevServer` (limits become ``--limit NAME=VALUE``), plus
    ``log_level`` of the child (at least INFO: its ready line tells the port) and ``env``, variables added to its environment (e.g. ``PYTHONPATH``
    for a module that imports your code). ``port=0`` (the default) picks a free port on the first
    start; a later :meth:`start` reuses it. The child's log (stderr) is read all along (:attr:`log`),
    so a chatty server never blocks on a full pipe.
    """

    def __init__(
        self,
        module: str | Path,
        database: str = "quickstart-chat",
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: str | Path | None = None,
        *,
        log_level: Literal["DEBUG", "INFO"] = "INFO",
        env: Mapping[str, str] | None = None,
        protocols: Sequence[str] | None = None,
        **limits: Unpack[ServerLimits],
    ) -> None:
        self.protocols = (
            None if protocols is None else [protocols] if isinstance(protocols, str) else list(protocols)
        )
        self.module = Path(module)
        self.database = database
        self.host = host
        self.port = port
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.log_level = log_level
        self.env = dict(env or {})
        self.limits: dict[str, Any] = dict(limits)
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._log = bytearray()  # appended to in place: a long log costs linear time
        self._log_lock = threading.Lock()
        self._ready = threading.Event()  # the ready line was seen, or the log ended
        self._ready_seen = False

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"DevServerProcess({self.database!r} at {self.url}, {state})"

    def _listening(self) -> tuple[str, int, str]:
        return self.host, self.port, self.database

    @property
    def command(self) -> list[str]:
        """The command line of the child process."""
        cmd = [sys.executable, "-m", "spacetime_game.cli", "serve", str(self.module)]
        cmd += ["--database", self.database, "--host", self.host, "--port", str(self.port)]
        cmd += ["--data-dir", str(self.data_dir)] if self.data_dir is not None else ["--in-memory"]
        for name, value in self.limits.items():
            cmd += ["--limit", f"{name}={value}"]
        for name in self.protocols or ():
            cmd += ["--protocol", name]
        return [*cmd, "--log-level", self.log_level]

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The child's process id (None before the first start)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """The child's exit code once it ended (0: a clean stop; negative: killed by that signal)."""
        return self._proc.poll() if self._proc is not None else None

    @property
    def log(self) -> str:
        """Everything the child wrote to stderr (its log), over all its starts."""
        with self._log_lock:
            return self._log.decode("utf-8", "replace")

    @property
    def owner_token(self) -> str | None:
        """The owner's token: read from ``<data_dir>/owner.token``, or, in memory, from the log of the
        current run (the child logs it at INFO); None if neither has it."""
        if self.data_dir is not None:
            with contextlib.suppress(OSError):
                return (self.data_dir / "owner.token").read_text("ascii").strip()
            return None
        with self._log_lock:
            found = _OWNER_TOKEN.findall(self._log)
        return found[-1].decode("ascii") if found else None

    @property
    def console_url(self) -> str | None:
        """The dev console's login link of the current run, from the child's log (None before it is
        logged)."""
        with self._log_lock:
            found = _CONSOLE_URL.findall(self._log)
        return found[-1].decode("ascii") if found else None

    def start(self, timeout: float = START_TIMEOUT) -> Self:
        """Start the child and wait until it accepts connections; returns the server itself. Raises
        :class:`DevServerError` (with the end of its log) if it exits or is not ready in ``timeout``."""
        if self.running:
            raise DevServerError(f"{self!r} is already running")
        self._ready.clear()
        self._ready_seen = False
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env)
        proc = subprocess.Popen(
            self.command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
        )
        self._proc = proc
        self._reader = threading.Thread(
            target=self._read_log, args=(proc,), name="devserver-process-log", daemon=True
        )
        self._reader.start()
        ended = self._ready.wait(timeout)  # set when it is ready, or when its log ends
        if not self._ready_seen:
            if ended:  # its log ended: it is exiting, if not reaped yet
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(EXIT_WAIT)
            exited = proc.poll() is not None
            self.kill()
            tail = "\n".join(self.log.splitlines()[-20:])
            why = f"exited with code {proc.returncode}" if exited else f"was not ready within {timeout:g} s"
            raise DevServerError(
                f"the dev server ({' '.join(self.command[3:])}) {why}; its log ends:\n{tail}"
            )
        return self

    def _read_log(self, proc: subprocess.Popen[bytes]) -> None:
        pipe = proc.stderr
        assert pipe is not None
        with self._log_lock:
            run_start = len(self._log)  # this run's log (a restart appends to the same log)
        with contextlib.suppress(OSError, ValueError):
            fd = pipe.fileno()
            for chunk in iter(lambda: os.read(fd, 65536), b""):
                with self._log_lock:
                    self._log += chunk
                    if not self._ready.is_set():  # a few lines until then: cheap to search again
                        m = _READY.search(self._log, run_start)
                        if m:
                            self.port = int(m.group(1))
                            self._ready_seen = True
                            self._ready.set()
        self._ready.set()  # the pipe ended: the child is gone; start() checks poll()

    def stop(self, timeout: float = 10.0) -> int | None:
        """Ask the child to shut down cleanly (SIGTERM: clients disconnected, data flushed) and wait;
        killed if it takes longer than ``timeout``. Returns its exit code (None if never started)."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        self._join_reader()
        return proc.returncode

    def kill(self) -> None:
        """Kill the child at once (SIGKILL on POSIX: no clean shutdown, no close frames) and wait."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        self._join_reader()

    def close(self) -> None:
        """Same as :meth:`stop`."""
        self.stop()

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(10)
            self._reader = None
        if self._proc is not None and self._proc.stderr is not None:
            self._proc.stderr.close()

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
