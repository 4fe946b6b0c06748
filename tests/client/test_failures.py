"""Failed connection attempts: which are permanent and which are retried, the one-line reason built from
the status and the server's answer (never websocket-client's text with headers), who hears about it
(``on_error``, ``on_disconnect``, ``last_error``, the ``failed`` state), and the single stderr line a
newcomer sees when nothing is configured. The pure functions first, then the client over a scripted
transport, then against the dev server."""

from __future__ import annotations

import asyncio
import errno
import io
import logging
import socket
import ssl
import time
from types import ModuleType
from typing import Any

import pytest
import websocket

from spacetime_game.sdk import ConnectionFailed, DbConnection
from spacetime_game.sdk._failures import (
    FailureNotice,
    describe_failure,
    handshake_failure,
    is_permanent_status,
    where,
)
from spacetime_game.sdk.spacetimedb_async_client import SpacetimeDBAsyncClient, SpacetimeDBException

from ._support import Script, ServerProcess

URL = "ws://localhost:3000/v1/database/quickstart_chat/subscribe?compression=Gzip"


def bad_status(status: int, body: bytes | None, phrase: str = "") -> websocket.WebSocketBadStatusException:
    """What websocket-client raises for an answer other than 101 (its text carries the headers)."""
    headers = {"content-type": "text/plain; charset=utf-8", "date": "Wed, 02 Dec 2026 07:05:17 GMT"}
    text = f"Handshake status {status} {phrase} -+-+- {headers} -+-+- {body!r}"
    return websocket.WebSocketBadStatusException(text, status, phrase, headers, body)


# ----- the pure functions ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 410, 426, 451, 501, 505, 301, 200])
def test_permanent_statuses(status: int) -> None:
    assert is_permanent_status(status)


@pytest.mark.parametrize("status", [408, 409, 425, 429, 500, 502, 503, 504, 599])
def test_transient_statuses(status: int) -> None:
    assert not is_permanent_status(status)


def test_where_reads_the_host_and_the_database_from_the_url() -> None:
    assert where(URL) == ("localhost:3000", "quickstart_chat")
    assert where("wss://example.com/base/v1/database/my%20db/subscribe?x=1") == ("example.com", "my db")


def test_an_unknown_database() -> None:
    exc = bad_status(404, b"database 'quickstart_chat' not found", "Not Found")
    f = describe_failure(exc, URL)
    assert f.permanent and f.status == 404 and f.__cause__ is exc
    assert str(f) == f.reason == "database 'quickstart_chat' not found at localhost:3000"
    assert (f.host, f.database) == ("localhost:3000", "quickstart_chat")
    assert isinstance(f, ConnectionError)  # what code that catches connection errors expects


def test_a_404_from_another_kind_of_server_quotes_it() -> None:
    f = handshake_failure(404, b"No such route.", URL)
    assert (
        f.reason == "database 'quickstart_chat' not found at localhost:3000 (the server said: No such route.)"
    )
    html = handshake_failure(404, b"<html><body><h1>404</h1></body></html>", URL)
    assert html.reason == "database 'quickstart_chat' not found at localhost:3000"


@pytest.mark.parametrize(
    ("status", "body"), [(401, b"token not signed by this instance"), (400, b"malformed token")]
)
def test_a_refused_token(status: int, body: bytes) -> None:
    f = handshake_failure(status, body, URL)
    assert f.permanent
    assert f.reason.startswith(f"the server at localhost:3000 refused the token: {body.decode()} (")
    assert "connect without it" in f.reason


def test_no_common_subprotocol() -> None:
    f = handshake_failure(400, b"no valid protocol selected", URL)
    assert f.permanent
    assert f.reason.startswith(
        "the server at localhost:3000 speaks none of this client's protocols: no valid protocol selected"
    )


def test_other_answers_name_the_status_and_quote_the_server() -> None:
    f = handshake_failure(403, b"private database", URL)
    assert f.permanent
    assert (
        f.reason
        == "the server at localhost:3000 does not let this client connect to database 'quickstart_chat': private database"
    )
    f = handshake_failure(503, b"database is starting", URL)
    assert not f.permanent
    assert (
        f.reason
        == "the server at localhost:3000 failed to open database 'quickstart_chat' (503 Service Unavailable): database is starting"
    )
    f = handshake_failure(418, None, URL)
    assert f.permanent
    assert (
        f.reason
        == "the server at localhost:3000 refused to connect to database 'quickstart_chat' (418 I'm a Teapot)"
    )
    f = handshake_failure(429, b"slow down", URL)
    assert not f.permanent and "429 Too Many Requests" in f.reason


def test_a_long_answer_is_cut_and_kept_on_one_line() -> None:
    f = handshake_failure(400, ("bad\r\nrequest " * 100).encode(), URL)
    assert "\n" not in f.reason and "\r" not in f.reason
    assert f.reason.endswith("...") and len(f.reason) < 400


def test_the_raw_handshake_text_never_reaches_the_reason() -> None:
    for status in (400, 401, 403, 404, 500):
        f = describe_failure(bad_status(status, b"why"), URL)
        assert (
            "-+-+-" not in f.reason and "content-type" not in f.reason and "Handshake status" not in f.reason
        )


@pytest.mark.parametrize(
    ("exc", "text", "permanent"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "connection refused", False),
        (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), "reset", False),
        (TimeoutError("timed out"), "no answer after 10 s (timed out)", False),
        (websocket.WebSocketTimeoutException("timed out"), "timed out", False),
        (
            websocket.WebSocketAddressException(socket.gaierror(-2, "Name or service not known")),
            "the host name does not resolve (Name or service not known)",
            False,
        ),
        (websocket.WebSocketException("Host not found.: nowhere:3000"), "does not resolve", False),
        (
            websocket.WebSocketConnectionClosedException("Connection to remote host was lost."),
            "closed the connection during the handshake",
            False,
        ),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), "the network is unreachable", False),
        (websocket.WebSocketException("Invalid WebSocket Header"), "did not answer as a SpacetimeDB", True),
        (websocket.WebSocketException("Invalid status line 'SSH-2.0'"), "a wrong port?", True),
        (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), "TLS failed", True),
        (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), "reset", False),
        (RuntimeError("something else"), "something else", False),
    ],
)
def test_attempts_without_an_http_answer(exc: BaseException, text: str, permanent: bool) -> None:
    f = describe_failure(exc, URL, connect_timeout=10.0)
    assert f.reason.startswith("cannot connect to localhost:3000: "), f.reason
    assert text in f.reason
    assert f.permanent is permanent and f.status is None and f.__cause__ is exc


def test_a_certificate_that_does_not_verify_is_permanent() -> None:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "self-signed certificate"
    f = describe_failure(exc, URL)
    assert f.permanent and "TLS certificate does not verify (self-signed certificate)" in f.reason


# ----- the notice ------------------------------------------------------------------------------------


def no_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make this the process of an application that configured no logging: called in the test's body,
    since pytest adds its handlers to the root logger after the fixtures are set up."""
    monkeypatch.setattr(logging.getLogger(), "handlers", [])


REFUSED = describe_failure(ConnectionRefusedError(errno.ECONNREFUSED, "refused"), URL)
NOT_FOUND = describe_failure(bad_status(404, b"database 'quickstart_chat' not found"), URL)


def test_one_line_on_stderr_for_a_run_of_transient_failures(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    no_logging(monkeypatch)
    notice = FailureNotice()
    for _ in range(5):
        notice.failed(REFUSED, retrying=True, handled=False)
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == (
        "spacetime_game: cannot connect to localhost:3000: connection refused (is the server running, on "
        "this port?); retrying (set on_error or configure logging to handle this yourself)\n"
    )
    notice.connected()  # a new run after a success gets its own line
    notice.failed(REFUSED, retrying=True, handled=False)
    assert capsys.readouterr().err.count("\n") == 1


def test_a_permanent_failure_gets_its_own_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    no_logging(monkeypatch)
    notice = FailureNotice()
    notice.failed(REFUSED, retrying=True, handled=False)
    notice.failed(NOT_FOUND, retrying=False, handled=False)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert lines[1] == (
        "spacetime_game: database 'quickstart_chat' not found at localhost:3000; not retrying (set on_error "
        "or configure logging to handle this yourself)"
    )


def test_nothing_on_stderr_when_on_error_handles_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    no_logging(monkeypatch)
    FailureNotice().failed(NOT_FOUND, retrying=False, handled=True)
    assert capsys.readouterr().err == ""


def test_nothing_on_stderr_when_last_resort_is_off(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    no_logging(monkeypatch)
    monkeypatch.setattr(logging, "lastResort", None)
    FailureNotice().failed(NOT_FOUND, retrying=False, handled=False)
    assert capsys.readouterr().err == ""


def test_nothing_on_stderr_when_the_application_silenced_the_library(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    no_logging(monkeypatch)
    logging.getLogger("spacetime_game").setLevel(logging.ERROR)
    try:
        FailureNotice().failed(NOT_FOUND, retrying=False, handled=False)
    finally:
        logging.getLogger("spacetime_game").setLevel(logging.NOTSET)
    assert capsys.readouterr().err == ""


def test_configured_logging_gets_records_not_stderr(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    no_logging(monkeypatch)
    out = io.StringIO()
    handler = logging.StreamHandler(out)  # what logging.basicConfig() installs
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger("spacetime_game").setLevel(logging.INFO)
    try:
        notice = FailureNotice()
        notice.failed(REFUSED, retrying=True, handled=False)
        notice.failed(REFUSED, retrying=True, handled=False)
    finally:
        logging.getLogger("spacetime_game").setLevel(logging.NOTSET)
    assert capsys.readouterr().err == ""
    assert out.getvalue().splitlines() == [
        f"WARNING spacetime_game.sdk.connection: {REFUSED.reason}; retrying",
        f"INFO spacetime_game.sdk.connection: {REFUSED.reason}; retrying",
    ]


# ----- the client, over a scripted transport ---------------------------------------------------------


def scripted(chat: ModuleType, **kwargs: Any) -> tuple[Script, list[Any]]:
    seen: list[Any] = []
    s = Script(
        chat,
        on_disconnect=lambda conn, reason: seen.append(("disconnect", reason)),
        on_state=lambda state: seen.append(("state", state)),
        reconnect_min_delay=0.01,
        reconnect_max_delay=0.01,
        **kwargs,
    )
    return s, seen


def test_a_permanent_failure_ends_in_failed_and_is_not_retried(chat: ModuleType) -> None:
    s, seen = scripted(chat)
    s.conn.connect()
    s.t.fail(NOT_FOUND)
    s.conn.update()
    assert s.conn.state == "failed"
    assert s.errors == [NOT_FOUND] and s.conn.last_error is NOT_FOUND
    assert seen == [
        ("state", "connecting"),
        ("state", "failed"),
        ("disconnect", "database 'quickstart_chat' not found at localhost:3000"),
    ]
    time.sleep(0.05)
    s.conn.update()
    assert len(s.transports) == 1  # never retried
    s.conn.connect()  # the application may try again itself
    assert len(s.transports) == 2 and s.conn.state == "connecting"


def test_a_transient_failure_is_retried(chat: ModuleType) -> None:
    s, seen = scripted(chat)
    s.conn.connect()
    s.t.fail(REFUSED)
    s.conn.update()
    assert s.conn.state == "reconnecting" and s.conn.last_error is REFUSED and s.errors == [REFUSED]
    deadline = time.monotonic() + 5
    while len(s.transports) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
        s.conn.update()
    assert len(s.transports) == 2
    assert ("disconnect", REFUSED.reason) not in seen  # never connected: nothing was disconnected
    s.t.fail(NOT_FOUND)  # the server is up now, but the database is not there
    s.conn.update()
    assert s.conn.state == "failed" and s.conn.last_error is NOT_FOUND


def test_a_transient_failure_without_reconnect_closes(chat: ModuleType) -> None:
    s, _ = scripted(chat, reconnect=False)
    s.conn.connect()
    s.t.fail(REFUSED)
    s.conn.update()
    assert s.conn.state == "closed" and s.conn.last_error is REFUSED


# ----- against the dev server ------------------------------------------------------------------------


def pump_until(conn: DbConnection, done: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        conn.wait(0.05)
        conn.update()
    assert done(), f"state {conn.state}, last_error {conn.last_error!r}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_live_unknown_database(chat: ModuleType, chat_server: ServerProcess) -> None:
    errors: list[BaseException] = []
    conn = DbConnection(chat.MODULE, chat_server.host, "quickstart_chat", on_error=errors.append)
    try:
        conn.connect()
        pump_until(conn, lambda: conn.state == "failed")
        assert str(conn.last_error) == f"database 'quickstart_chat' not found at {chat_server.host}"
        assert errors == [conn.last_error]
    finally:
        conn.close()


def test_live_refused_token(chat: ModuleType, chat_server: ServerProcess) -> None:
    conn = DbConnection(
        chat.MODULE, chat_server.host, "quickstart-chat", token="not-a-token", on_error=lambda e: None
    )
    try:
        conn.connect()
        pump_until(conn, lambda: conn.state == "failed")
        assert conn.last_error is not None and conn.last_error.status == 400
        assert conn.last_error.reason.startswith(
            f"the server at {chat_server.host} refused the token: malformed token"
        )
    finally:
        conn.close()


def test_live_nothing_listening_is_retried(chat: ModuleType) -> None:
    host = f"127.0.0.1:{free_port()}"
    conn = DbConnection(
        chat.MODULE, host, "quickstart-chat", on_error=lambda e: None, reconnect_min_delay=0.05
    )
    try:
        conn.connect()
        pump_until(conn, lambda: conn.stats.reconnects >= 2)
        assert conn.state in ("reconnecting", "connecting")
        assert conn.last_error is not None and not conn.last_error.permanent
        assert str(conn.last_error).startswith(f"cannot connect to {host}: connection refused")
    finally:
        conn.close()


def test_live_async_client_raises_the_reason(chat: ModuleType, chat_server: ServerProcess) -> None:
    client = SpacetimeDBAsyncClient(chat)

    async def main() -> None:
        await asyncio.wait_for(client.run(None, chat_server.host, "quickstart_chat", False), 15)

    with pytest.raises(SpacetimeDBException) as info:
        asyncio.run(main())
    assert str(info.value) == f"database 'quickstart_chat' not found at {chat_server.host}"
    assert isinstance(info.value.__cause__, ConnectionFailed)
    assert client.last_error is info.value.__cause__
