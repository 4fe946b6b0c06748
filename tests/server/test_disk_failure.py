"""A failing disk: when a commit-log write or flush fails, the dev server stops in a clear failed state.

What must hold (issue #9, defect 5): the caller of the failed transaction gets an error, never an
acknowledgement; no client ever sees data that is not durable (subscribers, ``/sql``); the server logs one
error line naming the file and the OS error, closes every WebSocket with 1011 and a short reason, answers
every HTTP request (``/v1/ping`` too) with 503, runs no reducer any more, and ``spacetime-game serve``
exits with status 1; after a restart every acknowledged transaction is there.

Faults are real kernel errors, injected without root: in-process, the commit log's file descriptor is
swapped for one on ``/dev/full`` (ENOSPC on every write); in a child process, ``RLIMIT_FSIZE`` makes a
write past the limit fail with EFBIG (CPython ignores SIGXFSZ).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import resource
import struct
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aiohttp")

import websocket

from spacetime_game.sdk.protocol import (
    PROTOCOL_V2,
    CallReducer,
    InitialConnection,
    PersistentTableRows,
    ReducerOk,
    ReducerResult,
    Subscribe,
    SubscribeApplied,
    TransactionUpdate,
    decode_server_frame,
    encode_client_frame,
)
from spacetime_game.server import _wal
from tests._support import free_port, wait_listening

from .conftest import ServerThread

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not os.path.exists("/dev/full") or sys.platform == "win32", reason="POSIX only"),
]

ROOT = Path(__file__).resolve().parents[2]
LOAD_MODULE = ROOT / "benchmarks" / "load_module.py"
DATABASE = "db"
CLOSE_INTERNAL_ERROR = 1011

MODULE = textwrap.dedent(
    """
    from typing import Annotated
    from spacetime_game.server import (
        ReducerContext, ScheduleAt, TimeDuration, auto_inc, client_connected, client_disconnected, init,
        primary_key, reducer, table, u32, u64,
    )

    @table(public=True)
    class Counter:
        id: Annotated[u32, primary_key]
        value: u64

    @table(public=True)
    class Tick:
        id: Annotated[u64, primary_key, auto_inc]
        source: str

    @table(scheduled="on_timer")
    class Timer:
        scheduled_id: Annotated[u64, primary_key, auto_inc]
        scheduled_at: ScheduleAt

    @init
    def seed(ctx: ReducerContext) -> None:
        for i in range(4):
            ctx.db.counter.insert(Counter(i, 0))
        ctx.db.timer.insert(Timer(0, ScheduleAt.interval(TimeDuration(300_000))))

    @reducer
    def on_timer(ctx: ReducerContext, timer: Timer) -> None:
        ctx.db.tick.insert(Tick(0, "timer"))

    @client_connected
    def hello(ctx: ReducerContext) -> None:
        ctx.db.tick.insert(Tick(0, "connected"))

    @client_disconnected
    def bye(ctx: ReducerContext) -> None:
        ctx.db.tick.insert(Tick(0, "disconnected"))

    @reducer
    def bump(ctx: ReducerContext, id: u32) -> None:
        row = ctx.db.counter.id.find(id)
        row.value += 1
        ctx.db.counter.id.update(row)
    """
)

COUNTER = struct.Struct("<IQ")  # the first columns of both modules' counter rows: id u32, value u64


# -- helpers -------------------------------------------------------------------------------------------


class WsClient:
    """A blocking v2 client that also reports the close frame."""

    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(url, subprotocols=[PROTOCOL_V2], timeout=15)
        self.pending: list[Any] = []
        self.request_id = 0
        self.closed: tuple[int, str] | None = None
        assert isinstance(self.recv(), InitialConnection)

    def recv(self) -> Any:
        """The next message, or None once the server closed the connection (see ``closed``)."""
        while not self.pending:
            if self.closed is not None:
                return None
            try:
                opcode, frame = self.ws.recv_data_frame(True)
            except (websocket.WebSocketConnectionClosedException, ConnectionError):
                self.closed = (-1, "connection dropped without a close frame")
                return None
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                data = frame.data
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                self.closed = (code, data[2:].decode("utf-8", "replace"))
                return None
            if opcode == websocket.ABNF.OPCODE_BINARY:
                self.pending.extend(decode_server_frame(frame.data, PROTOCOL_V2))
        return self.pending.pop(0)

    def bump(self, row: int) -> int:
        self.request_id += 1
        try:
            self.ws.send_binary(
                encode_client_frame(
                    CallReducer(self.request_id, 0, "bump", struct.pack("<I", row)), PROTOCOL_V2
                )
            )
        except (websocket.WebSocketConnectionClosedException, ConnectionError):
            # the server closed first (its close frame may be waiting): the call was never sent
            while self.recv() is not None:
                pass
            if self.closed is None:  # pragma: no cover - recv() sets it on its way out
                self.closed = (-1, "the connection broke while sending")
        return self.request_id

    def subscribe(self, sql: str) -> None:
        self.request_id += 1
        self.ws.send_binary(encode_client_frame(Subscribe(self.request_id, 1, (sql,)), PROTOCOL_V2))
        assert isinstance(self.recv(), SubscribeApplied)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close(timeout=2)


def counter_values(msg: Any) -> list[tuple[int, int]]:
    """(id, value) of every counter row a TransactionUpdate inserts."""
    out = []
    for qs in msg.query_sets:
        for table in qs.tables:
            if table.table_name != "counter":
                continue
            for rows in table.rows:
                assert isinstance(rows, PersistentTableRows)
                out += [COUNTER.unpack_from(r) for r in rows.inserts.rows()]
    return out


def http(url: str, body: bytes | None = None, timeout: float = 15) -> tuple[int, str]:
    """(status, body) of one request; a timeout is a hang and fails the test."""
    request = urllib.request.Request(url, data=body, method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def sql_counter(base: str) -> dict[int, int]:
    status, body = http(f"{base}/v1/database/{DATABASE}/sql", b"SELECT * FROM counter")
    assert status == 200, body
    return {row[0]: row[1] for row in json.loads(body)[0]["rows"]}


def fail_writes(server: ServerThread) -> None:
    """From now on every write of the commit log fails with ENOSPC, a real error of the kernel."""
    runtime = server.server.runtime
    assert runtime is not None and runtime.log is not None
    runtime.log.flush()
    full = os.open("/dev/full", os.O_WRONLY)
    try:
        os.dup2(full, runtime.log._fd)
    finally:
        os.close(full)


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("spacetime_game")]


@pytest.fixture
def module(tmp_path: Path) -> Path:
    path = tmp_path / "module.py"
    path.write_text(MODULE)
    return path


@pytest.fixture
def started(module: Path, tmp_path: Path) -> Iterator[ServerThread]:
    server = ServerThread(module, tmp_path / "data", DATABASE)
    try:
        yield server
    finally:
        if not server.loop.is_closed():  # a test may have stopped it already
            server.stop()


# -- the commit log ----------------------------------------------------------------------------------------


def test_the_commit_log_reports_a_failed_write_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="spacetime_game")
    reported: list[_wal.CommitLogError] = []
    path = tmp_path / "commitlog.bin"
    log = _wal.CommitLog(path, on_failure=reported.append)
    assert list(log.replay()) == []
    log.wait_durable(log.append(b"kept"), timeout=10)
    assert log.failure is None
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, log._fd)
    os.close(full)
    seq = log.append(b"lost")
    with pytest.raises(_wal.CommitLogError, match="not durable"):
        log.wait_durable(seq, timeout=10)
    with pytest.raises(_wal.CommitLogError):
        log.append(b"refused")
    with pytest.raises(_wal.CommitLogError):
        log.close()
    assert len(reported) == 1 and log.failure is reported[0]
    assert str(reported[0]) == f"commit log {path}: write failed: [Errno 28] No space left on device"
    # the owner reports it: the log itself adds no error line, and the traceback is only at DEBUG
    assert error_records(caplog) == []
    with _wal.CommitLog(path) as again:
        assert list(again.replay()) == [(1, b"kept")]


# -- in process --------------------------------------------------------------------------------------------


def test_a_failed_write_stops_the_server_in_a_clear_failed_state(
    started: ServerThread, module: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="spacetime_game")
    server = started
    runtime = server.server.runtime
    assert runtime is not None and runtime.log is not None
    watcher = WsClient(server.ws_url)
    watcher.subscribe("SELECT * FROM counter")
    caller = WsClient(server.ws_url)
    try:
        rid = caller.bump(1)
        msg = caller.recv()
        assert isinstance(msg, ReducerResult) and msg.request_id == rid
        assert isinstance(msg.result, ReducerOk)
        assert counter_values(watcher.recv()) == [(1, 1)]
        assert http(f"{server.http}/v1/database/{DATABASE}/call/bump", b"[1]") == (200, "")
        assert counter_values(watcher.recv()) == [(1, 2)]
        assert sql_counter(server.http)[1] == 2

        fail_writes(server)
        ticks = len(runtime.host.store.tables["tick"].rows)
        caller.bump(1)
        msg = caller.recv()  # the call is not acknowledged: the connection closes with the reason
        assert msg is None, f"expected the connection to close, got {msg!r}"
        assert caller.closed is not None
        code, reason = caller.closed
        assert code == CLOSE_INTERNAL_ERROR and "commit log" in reason and "No space left" in reason
        # the subscriber never sees the transaction that did not become durable
        assert watcher.recv() is None
        assert watcher.closed is not None and watcher.closed[0] == CLOSE_INTERNAL_ERROR

        failed = server.server.failed
        assert failed is not None
        assert str(runtime.log.path) in failed and "No space left on device" in failed
        # every HTTP request, new WebSocket clients included, gets 503 with the reason
        for url, body in [
            (f"{server.http}/v1/ping", None),
            (f"{server.http}/v1/database/{DATABASE}/call/bump", b"[2]"),
            (f"{server.http}/v1/database/{DATABASE}/sql", b"SELECT * FROM counter"),
        ]:
            status, text = http(url, body)
            assert status == 503 and "commit log" in text, (url, status, text)
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(server.ws_url, subprotocols=[PROTOCOL_V2], timeout=15)
        assert refused.value.status_code == 503

        # no reducer runs any more: neither the scheduled one (every 0.3 s) nor the lifecycle ones
        time.sleep(1.0)
        assert len(runtime.host.store.tables["tick"].rows) == ticks

        errors = error_records(caplog)
        assert len(errors) == 1, [r.getMessage() for r in errors]
        line = errors[0].getMessage()
        assert "\n" not in line and errors[0].exc_info is None  # one line, no traceback
        assert str(runtime.log.path) in line and "[Errno 28]" in line
    finally:
        caller.close()
        watcher.close()
    server.stop()  # stops cleanly although the log failed

    again = ServerThread(module, tmp_path / "data", DATABASE)
    try:
        assert sql_counter(again.http)[1] == 2  # both acknowledged bumps, not the failed one
    finally:
        again.stop()


def test_an_http_call_whose_commit_fails_gets_503_promptly(started: ServerThread) -> None:
    server = started
    watcher = WsClient(server.ws_url)
    try:
        watcher.subscribe("SELECT * FROM counter")
        fail_writes(server)
        start = time.monotonic()
        status, text = http(f"{server.http}/v1/database/{DATABASE}/call/bump", b"[3]")
        assert status == 503, text
        assert "commit log" in text and "\n" not in text.strip()
        assert time.monotonic() - start < 10
        assert watcher.recv() is None  # closed, never shown the row
        assert watcher.closed is not None and watcher.closed[0] == CLOSE_INTERNAL_ERROR
    finally:
        watcher.close()


class SlowDisk:
    """``_wal._sync`` that holds every flush until released, then succeeds or fails."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.release = threading.Event()
        self.fail = False

    def __call__(self, fd: int) -> None:
        self.release.wait(30)
        if self.fail:
            raise OSError(errno.EIO, "Input/output error")
        self.real(fd)


@pytest.mark.parametrize("outcome", ["durable", "failed"])
def test_sql_shows_only_durable_rows(
    started: ServerThread, monkeypatch: pytest.MonkeyPatch, outcome: str
) -> None:
    server = started
    assert sql_counter(server.http)[0] == 0
    disk = SlowDisk(_wal._sync)
    monkeypatch.setattr(_wal, "_sync", disk)
    caller = WsClient(server.ws_url)
    answers: list[tuple[float, int, str]] = []
    try:
        caller.bump(0)  # committed in memory at once, durable once the disk is released
        time.sleep(0.2)

        def query_sql() -> None:
            status, body = http(f"{server.http}/v1/database/{DATABASE}/sql", b"SELECT * FROM counter")
            answers.append((time.monotonic(), status, body))

        query = threading.Thread(target=query_sql)
        query.start()
        query.join(1.5)
        released = time.monotonic()
        disk.fail = outcome == "failed"
        disk.release.set()
        query.join(20)
        assert not query.is_alive()
        answered_at, status, body = answers[0]
        if outcome == "durable":
            assert status == 200, body
            rows = {row[0]: row[1] for row in json.loads(body)[0]["rows"]}
            assert rows[0] == 1  # the bump appended before the query is in the answer...
            assert answered_at >= released  # ...which waited until it was durable
        else:
            assert status == 503 and "commit log" in body  # never shown, since never durable
    finally:
        disk.release.set()
        caller.close()


# -- through the command line, with a real EFBIG ------------------------------------------------------------

FSIZE_LIMIT = 64 * 1024  # the load module's init record is about 48 KiB: start-up fits, then ~100 bumps
ROWS = 8


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, FSIZE_LIMIT))


def test_serve_exits_with_one_error_line_when_the_disk_fills(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ws_url = f"ws://127.0.0.1:{port}/v1/database/{DATABASE}/subscribe"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "spacetime_game.cli", "serve", str(LOAD_MODULE)),
            *("--database", DATABASE, "--port", str(port), "--data-dir", str(data)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        preexec_fn=_limit_file_size,
    )
    sent: Counter[int] = Counter()
    acked: Counter[int] = Counter()
    seen: dict[int, int] = {}
    problems: list[str] = []
    closes: list[tuple[int, str]] = []
    lock = threading.Lock()
    try:
        wait_listening(port, proc)
        watcher = WsClient(ws_url)
        watcher.subscribe(f"SELECT * FROM counter WHERE id < {ROWS}")

        def watch() -> None:
            while (msg := watcher.recv()) is not None:
                if isinstance(msg, TransactionUpdate):
                    for row, value in counter_values(msg):
                        seen[row] = max(seen.get(row, 0), value)
            assert watcher.closed is not None
            closes.append(watcher.closed)

        def ws_calls() -> None:
            client = WsClient(ws_url)
            rows: dict[int, int] = {}
            try:
                for i in range(100_000):
                    if client.closed is not None:
                        break
                    row = i % ROWS
                    with lock:
                        sent[row] += 1
                    rows[client.bump(row)] = row
                    while len(rows) >= 8 or (client.closed is None and i % 50 == 49 and rows):
                        msg = client.recv()
                        if msg is None:
                            break
                        if isinstance(msg, ReducerResult):
                            row_of = rows.pop(msg.request_id)
                            if isinstance(msg.result, ReducerOk):
                                with lock:
                                    acked[row_of] += 1
                            else:
                                problems.append(f"unexpected outcome {msg.result!r}")
                assert client.closed is not None, "the server never closed the caller"
                closes.append(client.closed)
            finally:
                client.close()

        def http_calls() -> None:
            for i in range(100_000):
                row = i % ROWS
                with lock:
                    sent[row] += 1
                asked = time.monotonic()
                try:
                    status, text = http(f"{base}/v1/database/{DATABASE}/call/bump", b"[%d]" % row)
                except (urllib.error.URLError, ConnectionError):
                    return  # the server is gone: this call's outcome is unknown, and it was not acked
                except TimeoutError:  # a hang, whether the server still runs or is exiting
                    state = "running" if proc.poll() is None else "exited"
                    problems.append(
                        f"an HTTP call got no answer in {time.monotonic() - asked:.1f} s ({state})"
                    )
                    return
                if status == 200:
                    with lock:
                        acked[row] += 1
                elif status == 503:
                    assert "commit log" in text, text
                    return
                else:
                    problems.append(f"HTTP {status}: {text}")
                    return

        def guarded(target: Any) -> Any:
            def run() -> None:
                try:
                    target()
                except BaseException as exc:  # a hang (timeout) or a failed check in a client thread
                    problems.append(f"{target.__name__}: {exc!r}")

            return run

        threads = [threading.Thread(target=guarded(f), daemon=True) for f in (watch, ws_calls, http_calls)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads), "a client hung"
        watcher.close()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        assert proc.stderr is not None
        stderr = proc.stderr.read()
        proc.stderr.close()

    assert problems == [], stderr
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, stderr
    assert "commitlog.bin" in errors[0] and "File too large" in errors[0], errors[0]
    assert closes and all(code == CLOSE_INTERNAL_ERROR and "commit log" in why for code, why in closes), (
        closes
    )
    assert sum(acked.values()) > 0

    again = ServerThread(LOAD_MODULE, data, DATABASE)
    try:
        final = sql_counter(again.http)
    finally:
        again.stop()
    for row in range(ROWS):
        assert acked[row] <= final[row] <= sent[row], (row, acked[row], final[row], sent[row])
        assert seen.get(row, 0) <= final[row], (row, seen.get(row), final[row])
