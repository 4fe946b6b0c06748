"""The dev console's server side (issue #15, docs/console.md): the owner-only login, the JSON API, the live
WebSocket pushes, and that a closed console leaves no observer behind. The page itself is tested in a real
browser in tests/console."""

from __future__ import annotations

import contextlib
import json
import logging
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
import websocket  # websocket-client

from spacetime_game.sdk.protocol import CallReducer
from spacetime_game.sdk.sats import AlgebraicType, PrimitiveType, compile_codec

from .conftest import Client, ServerThread

MODULE = textwrap.dedent(
    """
    from typing import Annotated
    from spacetime_game.server import ReducerContext, ReducerError, Identity, primary_key, reducer, table, u32

    @table(public=True)
    class Note:
        id: Annotated[u32, primary_key]
        text: str
        author: Identity
        tag: str | None

    @table
    class Secret:
        id: Annotated[u32, primary_key]
        value: str

    @reducer
    def add(ctx: ReducerContext, id: u32, text: str) -> None:
        ctx.db.note.insert(Note(id, text, ctx.sender, None if id % 2 else "even"))
        ctx.db.secret.insert(Secret(id, text.upper()))

    @reducer
    def refuse(ctx: ReducerContext, why: str) -> None:
        raise ReducerError(why)

    @reducer
    def rename(ctx: ReducerContext, id: u32, text: str) -> None:
        note = ctx.db.note.id.find(id)
        note.text = text
        ctx.db.note.id.update(note)

    @reducer
    def chatter(ctx: ReducerContext, text: str) -> None:
        log.debug("debug %s", text)
        log.info("info %s", text)
        log.warning("warning %s", text)
        logging.getLogger("game.other").warning("elsewhere %s", text)

    import logging
    log = logging.getLogger(__name__)
    """
)
DB = "console-test"
ADD_ARGS = compile_codec(AlgebraicType.product(id=PrimitiveType("U32"), text=PrimitiveType("String")))


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[ServerThread]:
    path = tmp_path / "module.py"
    path.write_text(MODULE)
    s = ServerThread(path, database=DB)
    try:
        yield s
    finally:
        s.stop()


def request(
    server: ServerThread,
    path: str,
    *,
    cookie: str | None = None,
    token: str | None = None,
    body: Any = None,
    origin: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    headers = {}
    if cookie:
        headers["Cookie"] = cookie
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if origin:
        headers["Origin"] = origin
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(
        server.http + path, data=data, headers=headers, method="POST" if data else "GET"
    )
    try:
        with opener.open(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def login(server: ServerThread) -> str:
    """Follow the login link; returns the ``Cookie`` header value it set."""
    status, headers, _ = request(server, server.server.console.login_path())
    assert status == 303 and headers["Location"] == "/"
    raw = headers["Set-Cookie"]
    assert "HttpOnly" in raw and "SameSite=Strict" in raw and "Path=/" in raw
    jar: SimpleCookie = SimpleCookie()
    jar.load(raw)
    ((name, morsel),) = jar.items()
    return f"{name}={morsel.value}"


def open_ws(server: ServerThread, cookie: str, origin: str | None = None) -> websocket.WebSocket:
    return websocket.create_connection(
        server.http.replace("http", "ws") + "/_console/ws",
        header=[f"Cookie: {cookie}"],
        origin=origin or server.http,
        timeout=10,
    )


class Pushes:
    """The console pushes a socket received, kept, so that a wait also sees what arrived before it."""

    def __init__(self, ws: websocket.WebSocket) -> None:
        self.ws = ws
        self.got: list[dict[str, Any]] = []

    def mark(self) -> int:
        """A point in the pushes: :meth:`until` with ``after=`` it looks only at what came later."""
        return len(self.got)

    def until(self, wanted: Any, seconds: float = 3.0, after: int = 0) -> dict[str, Any]:
        """The first push (from number ``after`` on) for which ``wanted(msg)`` holds (AssertionError
        after ``seconds``)."""
        deadline = time.monotonic() + seconds
        seen = after
        while True:
            for msg in self.got[seen:]:
                if wanted(msg):
                    return msg
            seen = len(self.got)
            if time.monotonic() >= deadline:
                raise AssertionError(f"not pushed within {seconds} s; got {self.got!r}")
            self.ws.settimeout(max(0.05, deadline - time.monotonic()))
            with contextlib.suppress(websocket.WebSocketTimeoutException):
                self.got.append(json.loads(self.ws.recv()))


def test_only_the_login_link_lets_a_browser_in(server: ServerThread) -> None:
    assert request(server, "/")[0] == 401  # no session: a page saying where the link is
    assert request(server, "/_console/login?key=wrong")[0] == 403
    assert request(server, "/_console/login")[0] == 403
    cookie = login(server)
    status, headers, body = request(server, "/", cookie=cookie)
    assert status == 200 and b"/_console/static/console.js" in body
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert request(server, "/", cookie="stdb_console=forged")[0] == 401


def test_the_api_is_the_owners_only(server: ServerThread) -> None:
    owner = server.server.owner_token
    stranger = server.server.auth.mint().token
    for path in ("/_console/api/schema", "/_console/api/table/secret"):
        assert request(server, path)[0] == 403
        assert request(server, path, token=stranger)[0] == 403
        assert request(server, path, cookie="stdb_console=forged")[0] == 403
        assert request(server, path, token=owner)[0] == 200
    assert (
        request(server, "/_console/api/sql", token=stranger, body={"sql": "SELECT * FROM secret"})[0] == 403
    )
    assert request(server, "/_console/api/call/add", token=stranger, body={"args": [1, "x"]})[0] == 403
    try:  # the live socket too
        websocket.create_connection(server.http.replace("http", "ws") + "/_console/ws", timeout=5)
        raise AssertionError("a console socket opened without a session")
    except websocket.WebSocketBadStatusException as exc:
        assert exc.status_code == 403


def test_requests_from_another_origin_are_refused(server: ServerThread) -> None:
    cookie = login(server)
    evil = "http://evil.example"
    assert (
        request(server, "/_console/api/call/add", cookie=cookie, body={"args": [1, "x"]}, origin=evil)[0]
        == 403
    )
    assert (
        request(server, "/_console/api/sql", cookie=cookie, body={"sql": "SELECT * FROM note"}, origin=evil)[
            0
        ]
        == 403
    )
    with pytest.raises(websocket.WebSocketBadStatusException):
        open_ws(server, cookie, origin=evil)
    status, _, body = request(
        server, "/_console/api/call/add", cookie=cookie, body={"args": [1, "x"]}, origin=server.http
    )
    assert status == 200 and json.loads(body)["status"] == "committed"


def test_schema_tables_sql_and_calls(server: ServerThread) -> None:
    cookie = login(server)
    schema = json.loads(request(server, "/_console/api/schema", cookie=cookie)[2])
    assert schema["database"] == DB and schema["owner"] == str(server.server.owner_identity)
    tables = {t["name"]: t for t in schema["tables"]}
    assert tables["note"]["public"] and not tables["secret"]["public"]
    assert [(c["name"], c["type"]) for c in tables["note"]["columns"]] == [
        ("id", "u32"),
        ("text", "String"),
        ("author", "Identity"),
        ("tag", "Option<String>"),
    ]
    assert tables["note"]["primary_key"] == "id"
    reducers = {r["name"]: r for r in schema["reducers"]}
    assert [p["type"] for p in reducers["add"]["params"]] == ["u32", "String"]
    for i in range(3):
        status, _, body = request(
            server, "/_console/api/call/add", cookie=cookie, body={"args": [i, f"n{i}"]}
        )
        assert status == 200 and json.loads(body)["status"] == "committed"
    status, _, body = request(server, "/_console/api/call/refuse", cookie=cookie, body={"args": ["no way"]})
    assert json.loads(body) == {**json.loads(body), "status": "failed", "message": "no way"}
    assert request(server, "/_console/api/call/add", cookie=cookie, body={"args": ["x"]})[0] == 400
    assert request(server, "/_console/api/call/nope", cookie=cookie, body={"args": []})[0] == 404
    page = json.loads(request(server, "/_console/api/table/note?offset=1&limit=1", cookie=cookie)[2])
    assert page["total"] == 3 and page["offset"] == 1 and page["columns"] == ["id", "text", "author", "tag"]
    ((id_, text, author, tag),) = page["rows"]
    assert (id_, text, tag) == (1, "n1", None) and author == str(server.server.owner_identity)
    secret = json.loads(request(server, "/_console/api/table/secret", cookie=cookie)[2])
    assert sorted(r[1] for r in secret["rows"]) == ["N0", "N1", "N2"]  # private, and the owner sees it
    sql = json.loads(
        request(
            server, "/_console/api/sql", cookie=cookie, body={"sql": "SELECT * FROM secret WHERE id = 2"}
        )[2]
    )
    assert sql["columns"] == ["id", "value"] and sql["rows"] == [[2, "N2"]]
    status, _, body = request(
        server, "/_console/api/sql", cookie=cookie, body={"sql": "SELECT * FROM nowhere"}
    )
    # a query that fails is an answer (the page shows the error), not a failed request
    assert status == 200 and "nowhere" in json.loads(body)["error"]
    assert request(server, "/_console/api/sql", cookie=cookie, body={"query": "x"})[0] == 400


def test_the_socket_pushes_calls_rows_and_clients(server: ServerThread) -> None:
    cookie = login(server)
    ws = open_ws(server, cookie)
    try:
        first = json.loads(ws.recv())
        assert first["counts"] == {"note": 0, "secret": 0} and first["clients"] == []
        ws.send(json.dumps({"view": {"table": "secret", "offset": 0, "limit": 50}}))
        player = Client(server.ws_url)
        try:
            player.recv()  # InitialConnection
            player.send(CallReducer(1, 0, "add", ADD_ARGS.encode({"id": 7, "text": "hello"})))
            pushes = Pushes(ws)
            msg = pushes.until(lambda m: any(c["reducer"] == "add" for c in m.get("calls", [])))
            call = next(c for c in msg["calls"] if c["reducer"] == "add")
            assert call["args"] == {"id": 7, "text": "hello"} and call["status"] == "committed"
            assert call["rows_changed"] == 2 and call["duration_ms"] > 0 and not call["scheduled"]
            page = pushes.until(lambda m: "page" in m and m["page"]["total"] == 1)["page"]
            assert page["table"] == "secret" and page["rows"] == [[7, "HELLO"]] and page["changed"] == [0]
            assert pushes.until(lambda m: "counts" in m and m["counts"].get("note") == 1)
            msg = pushes.until(lambda m: len(m.get("clients", [])) == 1 and m["clients"][0]["calls"] == 1)
            (client,) = msg["clients"]
            assert client["messages_in"] == 1 and client["messages_out"] >= 2
            assert client["bytes_in"] > 0 and client["bytes_out"] > 0
        finally:
            player.close()
    finally:
        ws.close()


@contextlib.contextmanager
def notes_on_screen(server: ServerThread, cookie: str, ids: tuple[int, ...], limit: int) -> Iterator[Pushes]:
    """Notes added with these ids (in this order), then a console showing the first ``limit`` of them:
    its pushes, once the first page (in key order) arrived."""
    for i in ids:
        request(server, "/_console/api/call/add", cookie=cookie, body={"args": [i, f"n{i}"]})
    ws = open_ws(server, cookie)
    try:
        json.loads(ws.recv())
        ws.send(json.dumps({"view": {"table": "note", "offset": 0, "limit": limit}}))
        pushes = Pushes(ws)
        first = pushes.until(lambda m: "page" in m)["page"]
        assert [r[0] for r in first["rows"]] == sorted(ids)[:limit]
        yield pushes
    finally:
        ws.close()


def call_then_page(server: ServerThread, cookie: str, pushes: Pushes, reducer: str, args: list[Any]) -> Any:
    """Call ``reducer`` from the console's API; the first page pushed after it."""
    mark = pushes.mark()
    request(server, f"/_console/api/call/{reducer}", cookie=cookie, body={"args": args})
    return pushes.until(lambda m: "page" in m, after=mark)["page"]


def test_pages_follow_the_primary_key_and_an_updated_row_keeps_its_place(server: ServerThread) -> None:
    """Rows are stored in insertion order and an update re-inserts its row; the page is in key order, so the
    row a transaction changed stays where it was and is highlighted there."""
    cookie = login(server)
    with notes_on_screen(server, cookie, (5, 1, 4, 2, 3), limit=3) as pushes:
        page = json.loads(request(server, "/_console/api/table/note?offset=1&limit=3", cookie=cookie)[2])
        assert [r[0] for r in page["rows"]] == [2, 3, 4] and page["order"] == "id"
        page = call_then_page(server, cookie, pushes, "rename", [2, "two"])
        assert [r[:2] for r in page["rows"]] == [[1, "n1"], [2, "two"], [3, "n3"]] and page["changed"] == [1]
        # keys added and removed while the page is shown keep the order (it is kept, not sorted again)
        page = call_then_page(server, cookie, pushes, "add", [0, "zero"])
        assert [r[0] for r in page["rows"]] == [0, 1, 2] and page["changed"] == [0] and page["total"] == 6


def test_the_log_holds_the_modules_records_whatever_the_logging_setup(server: ServerThread) -> None:
    """The module's own records (from DEBUG) and the server's (from INFO) reach the console even when the
    process logs at WARNING; the process's own handlers get what they got before, and closing the console
    puts the loggers back as they were."""
    root = logging.getLogger()
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    keep = Keep()
    level = root.level
    root.addHandler(keep)
    root.setLevel(logging.WARNING)
    runtime = server.server.runtime
    assert runtime is not None and runtime.module.import_name
    module_logger = logging.getLogger(runtime.module.import_name)
    server_logger = logging.getLogger("spacetime_game.server")
    before = [(lg.level, lg.propagate, list(lg.handlers)) for lg in (module_logger, server_logger)]
    try:
        cookie = login(server)
        ws = open_ws(server, cookie)
        try:
            json.loads(ws.recv())
            request(server, "/_console/api/call/chatter", cookie=cookie, body={"args": ["hi"]})
            pushes = Pushes(ws)
            pushes.until(lambda m: any("elsewhere" in e["message"] for e in m.get("logs", [])))
            logs = [e for m in pushes.got for e in m.get("logs", [])]
            mine = [(e["level"], e["logger"], e["message"]) for e in logs if e["logger"] == "module"]
            assert mine == [
                ("DEBUG", "module", "debug hi"),
                ("INFO", "module", "info hi"),
                ("WARNING", "module", "warning hi"),
            ]
            assert any(e["logger"] == "game.other" and e["level"] == "WARNING" for e in logs)
            assert any(
                e["level"] == "INFO" and e["logger"] == "console" for e in logs
            )  # "a dev console opened"
            # the process's handlers: the WARNING records once each, nothing below WARNING
            got = [(r.levelname, r.getMessage()) for r in seen if r.name.startswith(("_spacetime", "game"))]
            assert got == [("WARNING", "warning hi"), ("WARNING", "elsewhere hi")]
            assert all(r.levelno >= logging.WARNING for r in seen)
        finally:
            ws.close()
        deadline = time.monotonic() + 5
        while runtime.observer is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        after = [(lg.level, lg.propagate, list(lg.handlers)) for lg in (module_logger, server_logger)]
        assert after == before
    finally:
        root.removeHandler(keep)
        root.setLevel(level)


def test_a_module_reload_keeps_the_console_going(server: ServerThread, tmp_path: Path) -> None:
    """A dev reload swaps the host and the tables: the open console still gets the calls (the observer moves
    to the new host) and pages of the new table, in order."""
    from spacetime_game.server import load_module

    cookie = login(server)
    with notes_on_screen(server, cookie, (3, 1, 2), limit=10) as pushes:
        path = tmp_path / "module.py"
        path.write_text(MODULE.replace("text.upper()", "text.lower()"))  # a reducer change only
        module = load_module(path)
        server.loop.call_soon_threadsafe(server.server.reload, module)
        deadline = time.monotonic() + 5
        while server.server.module is not module and time.monotonic() < deadline:
            time.sleep(0.02)
        mark = pushes.mark()
        page = call_then_page(server, cookie, pushes, "add", [0, "after"])
        assert [r[0] for r in page["rows"]] == [0, 1, 2, 3] and page["changed"] == [0]
        pushes.until(
            lambda m: any(c["args"] == {"id": 0, "text": "after"} for c in m.get("calls", [])), after=mark
        )


def test_a_closed_console_leaves_nothing_running(server: ServerThread) -> None:
    runtime = server.server.runtime
    assert runtime is not None
    assert runtime.observer is None and runtime.host.observer is None
    cookie = login(server)
    ws = open_ws(server, cookie)
    json.loads(ws.recv())
    assert runtime.observer is not None and runtime.host.observer is not None
    ws.close()
    deadline = time.monotonic() + 5
    while runtime.observer is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert runtime.observer is None and runtime.host.observer is None


def test_serve_prints_the_link_and_the_link_works(tmp_path: Path) -> None:
    """`spacetime-game serve` (here DevServerProcess, which reads its log) prints the console link, and the
    link it printed signs a browser in; DevServer.console_url is the same link for a server in this process."""
    from spacetime_game.server import DevServer, DevServerProcess

    path = tmp_path / "module.py"
    path.write_text(MODULE)
    with DevServerProcess(path, database=DB) as proc:
        deadline = time.monotonic() + 5
        while proc.console_url is None and time.monotonic() < deadline:
            time.sleep(0.05)
        link = proc.console_url
        assert link is not None and link.startswith(proc.url + "/_console/login?key=")
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with opener.open(link, timeout=10) as resp:  # follows the redirect to / with the cookie
            assert resp.status == 200 and b"console.js" in resp.read()
    with DevServer(path, DB) as server:
        assert server.console_url.startswith(server.url + "/_console/login?key=")
