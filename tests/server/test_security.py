"""Security and input hygiene of the dev server (issue #9, defects 1-4, 11 and 12): the owner's rights on
``/sql``, duplicate connection ids, private file modes, control characters in the log, HTTP inputs that
used to crash a handler, and unmasked WebSocket frames."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import secrets
import socket
import stat
import struct
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket

from spacetime_game.cli import main
from spacetime_game.sdk import ConnectionId
from spacetime_game.sdk.protocol import (
    PROTOCOL_V2,
    CallReducer,
    InitialConnection,
    ReducerOk,
    ReducerResult,
    Subscribe,
    SubscribeApplied,
    TransactionUpdate,
    decode_server_frame,
    encode_client_frame,
)
from spacetime_game.server._app import ServerApp
from spacetime_game.server._auth import TokenAuthority
from tests._support import free_port, wait_listening

from .conftest import CHAT, ROOT, STRING_ARG, Client, ServerThread

MODULE = textwrap.dedent(
    """
    from typing import Annotated
    from spacetime_game.server import ReducerContext, ReducerError, f32, i64, primary_key, reducer, table

    @table(public=True)
    class Note:
        id: Annotated[i64, primary_key]
        text: str
        ratio: f32

    @table
    class Secret:
        id: Annotated[i64, primary_key]
        value: str

    @reducer
    def add_note(ctx: ReducerContext, id: i64, text: str, ratio: f32) -> None:
        ctx.db.note.insert(Note(id, text, ratio))

    @reducer
    def hide(ctx: ReducerContext, id: i64, value: str) -> None:
        ctx.db.secret.insert(Secret(id, value))

    @reducer
    def crash(ctx: ReducerContext, text: str) -> None:
        raise ValueError(text)
    """
)
DB = "secure"


@pytest.fixture()
def module(tmp_path: Path) -> Path:
    path = tmp_path / "module.py"
    path.write_text(MODULE)
    return path


@contextlib.contextmanager
def running(module: Path, data_dir: Path | None = None, **options: Any) -> Iterator[ServerThread]:
    server = ServerThread(module, data_dir, DB, **options)
    try:
        yield server
    finally:
        server.stop()


def post(
    server: ServerThread, path: str, body: bytes, token: str | None = None, *, method: str = "POST"
) -> tuple[int, bytes]:
    req = urllib.request.Request(server.http + path, data=body if method == "POST" else None, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def sql(server: ServerThread, query: str, token: str | None = None) -> tuple[int, bytes]:
    return post(server, f"/v1/database/{server.database}/sql", query.encode(), token)


# ---- 1. private tables over HTTP /sql: only the owner ----------------------------------------------------
def test_private_tables_are_refused_over_http_except_to_the_owner(module: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running(module, data) as server:
        assert post(server, f"/v1/database/{DB}/call/hide", b'[1, "the cake is a lie"]')[0] == 200
        refusal = b"table `secret` is private"
        # no token: the server mints one, which is not the owner's
        assert sql(server, "SELECT * FROM secret") == (400, refusal)
        status, body = post(server, "/v1/identity", b"")
        assert status == 200
        stranger = json.loads(body)["token"]
        assert sql(server, "SELECT * FROM secret", stranger) == (400, refusal)
        assert sql(server, "SELECT COUNT(*) AS n FROM secret", stranger) == (400, refusal)
        # a public table is still readable by anyone
        assert sql(server, "SELECT * FROM note", stranger)[0] == 200
        # the owner reads it
        owner = server.server.owner_token
        status, body = sql(server, "SELECT * FROM secret", owner)
        assert status == 200, body
        assert json.loads(body)[0]["rows"] == [[1, "the cake is a lie"]]
        identity = server.server.owner_identity
        token_file = data / "owner.token"
        assert token_file.read_text().strip() == owner
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert server.server.auth.verify(owner).identity == identity
    # the owner is the same identity after a restart with the same data folder, and the old token works
    with running(module, data) as server:
        assert server.server.owner_identity == identity
        assert sql(server, "SELECT * FROM secret", owner)[0] == 200
        assert sql(server, "SELECT * FROM secret", server.server.owner_token)[0] == 200


def test_an_in_memory_server_has_an_owner_token_too(module: Path) -> None:
    with running(module) as server:
        assert server.server.auth.verify(server.server.owner_token).identity == server.server.owner_identity
        assert sql(server, "SELECT * FROM secret", server.server.owner_token)[0] == 200
        assert sql(server, "SELECT * FROM secret")[0] == 400


def test_the_cli_reads_the_owner_token_with_owner(
    module: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    with running(module, data) as server:
        where = ["--server", f"127.0.0.1:{server.port}"]
        assert main(["call", DB, "hide", "7", '"seven"', *where]) == 0
        capsys.readouterr()
        assert main(["sql", DB, "SELECT * FROM secret", *where]) == 1
        assert "table `secret` is private" in capsys.readouterr().err
        assert main(["sql", DB, "SELECT * FROM secret", "--owner", "--data-dir", str(data), *where]) == 0
        assert capsys.readouterr().out.splitlines() == ["id | value", "---+------", "7  | seven", "(1 row)"]
        # call --owner calls as the owner (a reducer sees the owner's identity as the sender)
        assert main(["call", DB, "hide", "8", '"eight"', "--owner", "--data-dir", str(data), *where]) == 0
        # a missing token file is one clear line, not a traceback
        capsys.readouterr()
        missing = tmp_path / "elsewhere"
        assert main(["sql", DB, "SELECT * FROM secret", "--owner", "--data-dir", str(missing), *where]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(missing / "owner.token") in err and "--in-memory" in err
        assert main(["sql", DB, "SELECT 1", "--owner", "--token", "x", *where]) == 2
        assert "not both" in capsys.readouterr().err


# ---- 2. a duplicate connection_id is refused ---------------------------------------------------------------
def _user_row(server: ServerThread, identity_hex: str) -> list[Any] | None:
    status, body = post(server, "/v1/database/quickstart-chat/sql", b"SELECT * FROM user")
    assert status == 200, body
    for row in json.loads(body)[0]["rows"]:
        if row[0][0] == identity_hex:
            return list(row)
    return None


def test_a_second_connection_with_a_live_connection_id_is_refused(server: ServerThread) -> None:
    cid = ConnectionId.random()
    first = Client(server.ws_url, query=f"connection_id={cid}&compression=None")
    hello = first.recv_type(InitialConnection)
    assert hello.connection_id == cid
    first.send(Subscribe(1, 1, ("SELECT * FROM message",)))
    first.recv_type(SubscribeApplied)
    me = f"0x{hello.identity.to_int():x}"
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        Client(server.ws_url, hello.token, query=f"connection_id={cid}&compression=None")
    assert refused.value.status_code == 409
    assert b"connection_id" in (refused.value.resp_body or b"")
    row = _user_row(server, me)
    assert row is not None and row[2] is True  # the refused one ran no client_connected/disconnected
    # the first connection still gets the transactions of others ...
    other = Client(server.ws_url)
    other.recv_type(InitialConnection)
    other.call("send_message", "still there?")
    assert isinstance(other.recv_type(ReducerResult).result, ReducerOk)
    update = first.recv_type(TransactionUpdate)
    assert update.query_sets[0].query_set_id == 1
    # ... and its own calls
    first.call("set_name", "first")
    assert isinstance(first.recv_type(ReducerResult).result, ReducerOk)
    # when it leaves, its client_disconnected runs
    first.close()
    deadline = time.monotonic() + 20
    while (row := _user_row(server, me)) is not None and row[2] is not False:
        assert time.monotonic() < deadline, f"client_disconnected never ran: {row}"
        time.sleep(0.05)
    # and the id is free again
    again = Client(server.ws_url, hello.token, query=f"connection_id={cid}&compression=None")
    assert again.recv_type(InitialConnection).connection_id == cid
    again.close()
    other.close()


# ---- 3. private modes for the data folder and the commit log ----------------------------------------------
def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_data_files_are_private_even_with_a_permissive_umask(module: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    old = os.umask(0o022)
    try:
        with running(module, data) as server:
            assert post(server, f"/v1/database/{DB}/call/hide", b'[1, "x"]')[0] == 200
        db_dir = data / "databases" / DB
        expected = {
            data: 0o700,
            data / "databases": 0o700,
            db_dir: 0o700,
            db_dir / "commitlog.bin": 0o600,
            data / "auth": 0o700,
            data / "auth" / "id_ecdsa": 0o600,
            data / "owner.token": 0o600,
        }
        assert {p: _mode(p) for p in expected} == expected
        # folders and files made world-readable by an older version are tightened at the next start
        for path, mode in expected.items():
            os.chmod(path, 0o755 if mode == 0o700 else 0o644)
        with running(module, data):
            assert {p: _mode(p) for p in expected} == expected
    finally:
        os.umask(old)


# ---- 4. control characters in logged text ------------------------------------------------------------------
NASTY = "hi\nFORGED 2026-01-01 00:00:00 INFO spacetime_game.server: admin logged in\r\x1b[2J\u2028\x85end"


def _single_line(text: str) -> None:
    assert "\n" not in text and "\r" not in text and "\x1b" not in text, repr(text)
    assert "\u2028" not in text and "\x85" not in text, repr(text)


def test_foreign_text_in_server_log_records_is_escaped(
    module: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with running(module) as server:
        body = json.dumps([NASTY]).encode()
        status, _ = post(server, f"/v1/database/{DB}/call/crash", body)
        assert status == 500
    crashed = [r for r in caplog.records if "crash" in r.getMessage() and "ValueError" in r.getMessage()]
    assert crashed, [r.getMessage() for r in caplog.records]
    for record in crashed:
        message = record.getMessage()
        _single_line(message)
        assert "\\n" in message and "\\x1b[2J" in message and "\\u2028" in message
    for record in caplog.records:
        if record.name.startswith("spacetime_game"):
            _single_line(record.getMessage())


def test_the_served_chat_log_stays_one_line_per_message(tmp_path: Path) -> None:
    """What a user sees in the terminal of ``spacetime-game serve``: the chat module logs each message
    with its own logger, and a message cannot forge a line or clear the screen."""
    port = free_port()
    err = tmp_path / "serve.log"
    with open(err, "wb") as stream:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "spacetime_game.cli",
                "serve",
                str(CHAT),
                "--port",
                str(port),
                "--in-memory",
            ],
            stdout=stream,
            stderr=stream,
            cwd=ROOT,
        )
    try:
        wait_listening(port, proc)
        c = Client(f"ws://127.0.0.1:{port}/v1/database/quickstart-chat/subscribe")
        c.recv_type(InitialConnection)
        c.call("send_message", NASTY)
        assert isinstance(c.recv_type(ReducerResult).result, ReducerOk)
        c.close()
    finally:
        proc.terminate()
        proc.wait(30)
    lines = err.read_text(encoding="utf-8").splitlines()
    said = [line for line in lines if "quickstart_chat" in line]
    assert len(said) == 1, lines
    assert said[0].endswith(
        "hi\\nFORGED 2026-01-01 00:00:00 INFO spacetime_game.server: admin logged in"
        "\\r\\x1b[2J\\u2028\\x85end"
    )
    assert not any(line.startswith("FORGED") for line in lines)
    _single_line(said[0])


def test_escape_control_keeps_ordinary_text() -> None:
    from spacetime_game.server._logsafe import escape_control

    assert (
        escape_control("héllo wörld ✓ \\n tabs\tand\u00a0space") == "héllo wörld ✓ \\n tabs\\tand\u00a0space"
    )
    assert escape_control("a\x00b\x7fc\x9bd\u202ee\u2029") == "a\\x00b\\x7fc\\x9bd\\u202ee\\u2029"


def test_every_server_logger_escapes() -> None:
    import importlib
    import pkgutil

    import spacetime_game.server as package
    from spacetime_game.server._logsafe import EscapeControlFilter

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    names = [n for n in logging.root.manager.loggerDict if n.startswith("spacetime_game.server")]
    assert "spacetime_game.server.host" in names and "spacetime_game.server.wal" in names
    for name in names:
        logger = logging.root.manager.loggerDict[name]
        if isinstance(logger, logging.Logger):
            assert any(isinstance(f, EscapeControlFilter) for f in logger.filters), name


# ---- 11. HTTP inputs that used to answer 500 with a traceback ----------------------------------------------
BAD_INPUTS = [
    pytest.param("call/add_note", b"\xff\xfe", "not valid UTF-8", id="call-not-utf8"),
    pytest.param("sql", b"\xff\xfe", "not valid UTF-8", id="sql-not-utf8"),
    pytest.param(
        "sql",
        "SELECT * FROM note WHERE text = '\ud800'".encode("utf-8", "surrogatepass"),
        "not valid UTF-8",
        id="sql-encoded-surrogate",
    ),
    pytest.param("call/add_note", b"[" * 100_000 + b"]" * 100_000, "nested too deeply", id="deep-json"),
    pytest.param("call/add_note", b'[1, "\\ud800", 1.0]', "surrogates", id="lone-surrogate"),
    pytest.param("call/add_note", b"[" + b"9" * 5000 + b', "x", 1.0]', "integer", id="huge-integer"),
    pytest.param("call/add_note", b'[1, "x", 1e300]', "too large", id="f32-overflow"),
]


@pytest.mark.parametrize(("route", "body", "reason"), BAD_INPUTS)
def test_bad_http_bodies_get_400_with_a_reason_and_no_traceback(
    module: Path, route: str, body: bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with running(module) as server:
        status, answer = post(server, f"/v1/database/{DB}/{route}", body)
        assert status == 400, answer[:300]
        assert reason in answer.decode("utf-8", "replace"), answer[:300]
        assert len(answer) < 1000
        # the server keeps serving
        assert post(server, f"/v1/database/{DB}/call/add_note", b'[2, "fine", 0.5]')[0] == 200
        assert json.loads(sql(server, "SELECT * FROM note")[1])[0]["rows"] == [[2, "fine", 0.5]]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_a_request_line_that_is_too_long_logs_no_traceback(
    server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    status, _ = post(server, "/v1/database/quickstart-chat/call/" + "a" * 10_000, b"[]")
    assert status == 400
    assert post(server, "/v1/ping", b"", method="GET")[0] == 200
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def _raw_http(port: int, request: bytes, *, read: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        if not read:
            return b""
        data = b""
        while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
            data += chunk
        return data


def test_undecodable_or_abandoned_bodies_log_no_traceback(
    server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    path = b"/v1/database/quickstart-chat/sql"
    gzip = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Encoding: gzip\r\n\r\nhello" % path
    answer = _raw_http(server.port, gzip)
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert b"Content-Encoding" in answer or b"content-encoding" in answer, answer
    # a client that announces a body and goes away before sending it
    _raw_http(
        server.port, b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nSEL" % path, read=False
    )
    deadline = time.monotonic() + 10
    while not any("went away" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
        time.sleep(0.02)
    assert post(server, "/v1/ping", b"", method="GET")[0] == 200
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


# ---- 12. unmasked client frames close the connection with 1002 ---------------------------------------------
class RawWebSocket:
    """A WebSocket client on a plain socket, so a test can send frames a real client never would."""

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Protocol: {PROTOCOL_V2}\r\n\r\n"
            ).encode()
        )
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            assert chunk, "the server closed during the handshake"
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head

    def send_frame(self, payload: bytes, *, masked: bool, opcode: int = 0x2, pieces: int = 1) -> None:
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, n | (0x80 if masked else 0))
        elif n < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 126 | (0x80 if masked else 0), n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 127 | (0x80 if masked else 0), n)
        if masked:
            mask = secrets.token_bytes(4)
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            header += mask
        frame = header + payload
        step = max(1, len(frame) // pieces)
        for i in range(0, len(frame), step):
            self.sock.sendall(frame[i : i + step])
            if pieces > 1:
                time.sleep(0.01)

    def recv_frame(self, timeout: float = 10) -> tuple[int, bytes] | None:
        """The next (opcode, payload) from the server, or None if the stream ends or times out."""
        self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= 2:  # server frames are never masked
                opcode, n = self.buf[0] & 0x0F, self.buf[1] & 0x7F
                head = {126: 4, 127: 10}.get(n, 2)
                if len(self.buf) >= head:
                    if n == 126:
                        n = struct.unpack("!H", self.buf[2:4])[0]
                    elif n == 127:
                        n = struct.unpack("!Q", self.buf[2:10])[0]
                    if len(self.buf) >= head + n:
                        payload, self.buf = self.buf[head : head + n], self.buf[head + n :]
                        return opcode, payload
            try:
                chunk = self.sock.recv(1 << 20)
            except OSError:
                return None
            if not chunk:
                return None
            self.buf += chunk

    def recv_message(self) -> Any:
        frame = self.recv_frame()
        assert frame is not None and frame[0] == 0x2, frame
        (msg,) = decode_server_frame(frame[1], PROTOCOL_V2)
        return msg

    def close_code(self, timeout: float = 10) -> int | None:
        """The code of the server's close frame (skipping other frames), or None without one."""
        while (frame := self.recv_frame(timeout)) is not None:
            if frame[0] == 0x8:
                return int(struct.unpack("!H", frame[1][:2])[0])
        return None

    def close(self) -> None:
        self.sock.close()


def _call(request_id: int, text: str) -> bytes:
    return encode_client_frame(CallReducer(request_id, 0, "send_message", STRING_ARG.encode({"x": text})))


def test_an_unmasked_client_frame_closes_the_connection_with_1002(server: ServerThread) -> None:
    path = "/v1/database/quickstart-chat/subscribe?compression=None"
    raw = RawWebSocket(server.port, path)
    try:
        assert isinstance(raw.recv_message(), InitialConnection)
        # masked frames of each length form, one of them cut into small pieces, are served
        for request_id, text, pieces in ((1, "short", 1), (2, "m" * 300, 7), (3, "l" * 70_000, 3)):
            raw.send_frame(_call(request_id, text), masked=True, pieces=pieces)
            result = raw.recv_message()
            assert isinstance(result, ReducerResult) and result.request_id == request_id, result
        raw.send_frame(_call(4, "unmasked"), masked=False)
        assert raw.close_code() == 1002
    finally:
        raw.close()
    status, body = post(server, "/v1/database/quickstart-chat/sql", b"SELECT text FROM message")
    assert status == 200 and "unmasked" not in body.decode()
    # other connections, which mask their frames, are unaffected
    c = Client(server.ws_url)
    c.recv_type(InitialConnection)
    c.call("send_message", "masked")
    assert isinstance(c.recv_type(ReducerResult).result, ReducerOk)
    c.close()


def test_an_unmasked_control_frame_is_refused_too(server: ServerThread) -> None:
    raw = RawWebSocket(server.port, "/v1/database/quickstart-chat/subscribe?compression=None")
    try:
        assert isinstance(raw.recv_message(), InitialConnection)
        raw.send_frame(b"hello?", masked=False, opcode=0x9)  # ping
        assert raw.close_code() == 1002
    finally:
        raw.close()


def test_the_mask_check_follows_frames_fed_one_byte_at_a_time() -> None:
    from spacetime_game.server._app import _FrameMaskCheck

    def frame(n: int, masked: bool) -> bytes:
        bit = 0x80 if masked else 0
        if n < 126:
            head = struct.pack("!BB", 0x82, n | bit)
        elif n < 1 << 16:
            head = struct.pack("!BBH", 0x82, 126 | bit, n)
        else:
            head = struct.pack("!BBQ", 0x82, 127 | bit, n)
        return head + (b"mask" if masked else b"") + b"p" * n

    good = frame(5, True) + frame(0, True) + frame(300, True) + frame(70_000, True)
    check = _FrameMaskCheck()
    for i in range(len(good)):
        assert check.find_unmasked(good[i : i + 1]) is None
    check = _FrameMaskCheck()
    assert check.find_unmasked(good) is None
    stream = good + frame(3, False)
    assert _FrameMaskCheck().find_unmasked(stream) == len(good)
    check = _FrameMaskCheck()
    assert check.find_unmasked(stream[: len(good) + 1]) is None  # only the first header byte so far
    assert check.find_unmasked(stream[len(good) + 1 :]) == 0


def test_owner_identity_is_derived_from_the_issuer() -> None:
    from spacetime_game.server._auth import identity_from_claims

    server = ServerApp(CHAT, port=0)
    assert server.owner_identity == identity_from_claims(server.auth.issuer, "owner")
    assert isinstance(server.auth, TokenAuthority)
