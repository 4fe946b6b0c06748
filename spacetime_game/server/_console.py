"""The dev console: a page in the browser that shows the database live while the game runs
(docs/console.md).

The server serves the page (``console/``: plain HTML, CSS and JavaScript, package data) at ``/``, a small
JSON API under ``/_console/api/`` and a WebSocket at ``/_console/ws`` that pushes what changed, at most four
times a second. Only the database owner gets in: ``spacetime-game serve`` prints a login link holding a
secret made at start; following it sets an ``HttpOnly``, ``SameSite=Strict`` cookie, so a page from another
origin can neither read the secret nor make the browser use it (and every request that changes something, and
the WebSocket, must come from the console's own origin). The API also takes the owner's token as a bearer
token, for scripts.

Nothing of this runs while no console is open: the runtime's observers are installed when the first console
connects and removed when the last one leaves.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hmac
import itertools
import json
import logging
import math
import secrets
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aiohttp import WSMsgType, web

from ..sdk import EncodeError
from ..sdk.sats import (
    AlgebraicType,
    ArrayType,
    PrimitiveType,
    ProductElement,
    ProductType,
    RefType,
    SumType,
    Typespace,
    from_json,
    to_json,
)
from ._host import CallInfo
from ._logsafe import server_logger
from ._sql import SqlError, execute_sql
from ._store import _hkey

if TYPE_CHECKING:
    from ._app import ServerApp
    from ._module import ModuleDef
    from ._runtime import DatabaseRuntime
    from ._store import TableChanges, TableStore, TxRecord

__all__ = ["CONSOLE_COOKIE", "ConsoleHub", "readable", "type_label"]

log = server_logger("spacetime_game.server.console")

#: Where the page's files are (package data).
CONSOLE_DIR: Final = Path(__file__).with_name("console")
#: The cookie that holds a console session.
CONSOLE_COOKIE: Final = "stdb_console"
#: How often the consoles get what changed (seconds); nothing is sent when nothing changed.
FLUSH_EVERY: Final = 0.25
#: How often the list of clients is sent again (seconds).
CLIENTS_EVERY: Final = 1.0
#: How many reducer calls and log records are kept for a console that opens later.
KEEP: Final = 500
#: The most reducer calls one push carries (the newest; a flood of calls is summarized by the stats).
CALLS_PER_PUSH: Final = 50
#: The most rows a page of a table holds.
MAX_PAGE: Final = 500
#: Inserted row keys remembered per table between two pushes, to highlight them (beyond: none are).
MAX_CHANGED: Final = 5000
#: A transaction that adds or removes more primary keys than this in a table a console shows has the order
#: of its keys sorted again for the next page, instead of changed in place.
REORDER_MAX: Final = 256
#: A JavaScript number holds integers exactly up to this; bigger ones are sent as strings.
_JS_SAFE: Final = 2**53

_STATIC_TYPES: Final = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
}


# ----- values for the page ----------------------------------------------------------------------------------
def type_label(ty: AlgebraicType, module: ModuleDef) -> str:
    """A short readable spelling of a column or parameter type: ``u32``, ``String``, ``Option<f32>``,
    ``Array<u8>``, ``Identity``, or the name of a module type."""
    if isinstance(ty, RefType):
        name = module.type_names.get(ty.index)
        if name is not None:
            return name
        return type_label(module.typespace[ty.index], module)
    if isinstance(ty, PrimitiveType):
        return "String" if ty.name == "String" else ("bool" if ty.name == "Bool" else ty.name.lower())
    if isinstance(ty, ArrayType):
        return f"Array<{type_label(ty.elem, module)}>"
    kind = ty.special_kind if isinstance(ty, ProductType | SumType) else None
    if kind == "option":
        assert isinstance(ty, SumType)
        return f"Option<{type_label(ty.variants[0].type, module)}>"
    if kind is not None:
        return {
            "identity": "Identity",
            "connection_id": "ConnectionId",
            "timestamp": "Timestamp",
            "time_duration": "TimeDuration",
            "schedule_at": "ScheduleAt",
            "uuid": "Uuid",
        }.get(kind, kind)
    if isinstance(ty, ProductType):
        return "(" + ", ".join(f"{e.name}: {type_label(e.type, module)}" for e in ty.elements) + ")"
    assert isinstance(ty, SumType)
    return "enum(" + ", ".join(str(v.name) for v in ty.variants) + ")"


def readable(value: Any, ty: AlgebraicType, typespace: Typespace, bindings: Any) -> Any:
    """``value`` as JSON a person reads at a glance (and the console's forms send back): numbers, strings,
    ``null`` for none, an Identity as its hex, a Timestamp as ISO 8601 text, a product as an object, a sum
    as ``{"Variant": payload}``; integers a JavaScript number cannot hold exactly as strings."""
    return _tidy(to_json(value, ty, typespace, bindings), ty, typespace)


def _tidy(j: Any, ty: AlgebraicType, ts: Typespace) -> Any:
    while isinstance(ty, RefType):
        ty = ts[ty.index]
    if isinstance(ty, PrimitiveType):
        if isinstance(j, int) and not isinstance(j, bool) and abs(j) >= _JS_SAFE:
            return str(j)
        if isinstance(j, float):
            if not math.isfinite(j):
                return str(j)
            if ty.name == "F32":  # the digits an f32 holds (945.1637, not 945.1636962890625)
                return float(f"{j:.7g}")
        return j
    if isinstance(ty, ArrayType):
        return [_tidy(x, ty.elem, ts) for x in j] if isinstance(j, list) else j
    kind = ty.special_kind
    if kind in ("identity", "connection_id", "uuid") and isinstance(j, dict):
        (inner,) = j.values()
        number = int(inner, 16) if isinstance(inner, str) else int(inner)
        return f"{number:0{64 if kind == 'identity' else 32}x}"
    if kind == "timestamp" and isinstance(j, dict):
        (micros,) = j.values()
        try:
            return datetime.fromtimestamp(micros / 1e6, UTC).isoformat(timespec="microseconds")
        except (OverflowError, OSError, ValueError):
            return micros
    if kind == "time_duration" and isinstance(j, dict):
        (micros,) = j.values()
        return micros
    if isinstance(ty, SumType) and isinstance(j, dict) and len(j) == 1:
        ((name, payload),) = j.items()
        if kind == "option":
            return None if name == "none" else _tidy(payload, ty.variants[0].type, ts)
        variant = next((v for v in ty.variants if v.name == name), None)
        if variant is None:
            return j
        inner = ty.variants[ty.variants.index(variant)].type
        if isinstance(inner, ProductType) and not inner.elements:
            return name  # a plain enum value
        return {name: _tidy(payload, inner, ts)}
    if isinstance(ty, ProductType):
        if isinstance(j, dict):
            return {e.name: _tidy(j.get(str(e.name)), e.type, ts) for e in ty.elements}
        if isinstance(j, list):
            return [_tidy(x, e.type, ts) for x, e in zip(j, ty.elements, strict=False)]
    return j


# ----- what the runtime reports -------------------------------------------------------------------------------
def _log_entry(record: logging.LogRecord, module_logger: str | None) -> dict[str, Any]:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: show it as it is
        message = str(record.msg)
    if record.exc_info and record.exc_info[0] is not None:
        message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
    logger = record.name
    if module_logger and (logger == module_logger or logger.startswith(module_logger + ".")):
        logger = "module" + logger[len(module_logger) :]
    elif logger == "spacetime_game.server":
        logger = "server"
    elif logger.startswith("spacetime_game.server."):
        logger = logger[len("spacetime_game.server.") :]
    return {"at": record.created, "level": record.levelname, "logger": logger, "message": message[:4000]}


class _LogHandler(logging.Handler):
    """On the root logger while a console is open: the records of other loggers that the root lets through
    (the game's own, in a process that runs the server in-process)."""

    def __init__(self, hub: ConsoleHub) -> None:
        super().__init__(logging.DEBUG)
        self.hub = hub

    def emit(self, record: logging.LogRecord) -> None:
        name = record.name
        if name.startswith(("aiohttp", "spacetime_game")) or any(
            name == t or name.startswith(t + ".") for t in self.hub.tapped
        ):
            return  # the client's and the web server's own records; the tapped loggers are kept by their tap
        self.hub.keep(record)


class _LogTap(logging.Handler):
    """Takes over one logger while consoles are open, whatever the logging set-up: the logger lets records
    through from the lowest floor asked for, the tap hands them to the consoles, and passes on to the
    logger's own handlers and to the ones above it only what the logger let through before (its effective
    level then), so that nothing else of the process's logging changes. One tap per logger in a process,
    shared by its consoles (:func:`_tap`, :func:`_untap`); the last one out puts the logger back as it was."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.NOTSET)
        self.hubs: dict[ConsoleHub, int] = {}
        self.logger = logger = logging.getLogger(name)
        self.passes = logger.getEffectiveLevel()
        self.saved = (logger.level, logger.propagate, list(logger.handlers))
        for h in self.saved[2]:
            logger.removeHandler(h)
        logger.addHandler(self)
        logger.propagate = False

    def floor(self) -> None:
        """Let through what the consoles ask for (and at least what passed before)."""
        self.logger.setLevel(min([self.passes, *self.hubs.values()]))

    def emit(self, record: logging.LogRecord) -> None:
        for hub, floor in list(self.hubs.items()):
            if record.levelno >= floor:
                hub.keep(record)
        if record.levelno < self.passes:
            return
        found = 0
        for h in self.saved[2]:
            found += 1
            if record.levelno >= h.level:
                h.handle(record)
        node = self.logger.parent if self.saved[1] else None
        while node is not None:
            for h in node.handlers:
                if isinstance(h, _LogHandler):
                    continue
                found += 1
                if record.levelno >= h.level:
                    h.handle(record)
            node = node.parent if node.propagate else None
        if not found and logging.lastResort is not None and record.levelno >= logging.lastResort.level:
            logging.lastResort.handle(record)

    def restore(self) -> None:
        """Give the logger back its level, propagation and handlers."""
        level, propagate, handlers = self.saved
        self.logger.removeHandler(self)
        for h in handlers:
            self.logger.addHandler(h)
        self.logger.propagate = propagate
        self.logger.setLevel(level)


_taps: dict[str, _LogTap] = {}
_taps_lock = threading.Lock()


def _tap(name: str, hub: ConsoleHub, floor: int) -> None:
    with _taps_lock:
        tap = _taps.get(name)
        if tap is None:
            tap = _taps[name] = _LogTap(name)
        tap.hubs[hub] = floor
        tap.floor()


def _untap(name: str, hub: ConsoleHub) -> None:
    with _taps_lock:
        tap = _taps.get(name)
        if tap is None or tap.hubs.pop(hub, None) is None:
            return
        if tap.hubs:
            tap.floor()
        else:
            del _taps[name]
            tap.restore()


@dataclass
class _Viewer:
    """One open console and the table page it shows."""

    ws: web.WebSocketResponse
    table: str | None = None
    offset: int = 0
    limit: int = 100


class ConsoleHub:
    """The console of one :class:`ServerApp`: its routes, who may use them, and the live pushes."""

    def __init__(self, app: ServerApp) -> None:
        self.app = app
        #: The secret of the login link (``/_console/login?key=...``), made at start.
        self.login_key = secrets.token_urlsafe(18)
        self._session = secrets.token_urlsafe(32)
        self.viewers: list[_Viewer] = []
        self.calls: deque[CallInfo] = deque(maxlen=KEEP)
        self.logs: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self.new_calls: list[CallInfo] = []
        self.new_logs: list[dict[str, Any]] = []
        self._changed_tables: set[str] = set()
        self._changed_keys: dict[str, set[bytes]] = {}
        self._orders: dict[str, list[Any]] = {}
        self._unordered: set[str] = set()
        self._ordered_store: dict[str, TableStore] = {}
        self._transactions = 0
        self._history: deque[tuple[float, int, int]] = deque(maxlen=64)  # (time, transactions, calls)
        self._durations: deque[float] = deque(maxlen=2000)
        self._call_count = 0
        self._task: asyncio.Task[None] | None = None
        self._handler: _LogHandler | None = None
        #: The loggers taken over while a console is open: the server's and the module's.
        self.tapped: tuple[str, ...] = ()
        self._module_logger: str | None = None
        self._clients_sent = 0.0
        self._wake = asyncio.Event()

    # ----- routes ---------------------------------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        """The console's routes."""
        return [
            web.get("/", self.index),
            web.get("/_console/login", self.login),
            web.get("/_console/static/{name}", self.static),
            web.get("/_console/api/schema", self.schema),
            web.get("/_console/api/table/{name}", self.table),
            web.post("/_console/api/sql", self.sql),
            web.post("/_console/api/call/{reducer}", self.call),
            web.get("/_console/ws", self.websocket),
        ]

    def login_path(self) -> str:
        """The path of the login link (put ``http://host:port`` before it)."""
        return f"/_console/login?key={self.login_key}"

    # ----- who may -------------------------------------------------------------------------------------------
    def _has_session(self, request: web.Request) -> bool:
        cookie = request.cookies.get(CONSOLE_COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie.encode(), self._session.encode())

    def _is_owner(self, request: web.Request) -> bool:
        if self._has_session(request):
            return True
        if not request.headers.get("Authorization"):
            return False
        try:
            claims = self.app._claims(request)
        except web.HTTPException:
            return False
        return claims is not None and claims.identity == self.app.owner_identity

    @staticmethod
    def _same_origin(request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        return origin is None or origin == f"{request.scheme}://{request.host}"

    def _require(self, request: web.Request, *, changes: bool = False) -> None:
        if not self._is_owner(request):
            raise web.HTTPForbidden(
                text=json.dumps(
                    {
                        "error": "the console is for the database owner: open the console link that"
                        " `spacetime-game serve` printed"
                    }
                ),
                content_type="application/json",
            )
        if changes and not self._same_origin(request):
            raise web.HTTPForbidden(
                text=json.dumps({"error": "requests must come from the console's own page"}),
                content_type="application/json",
            )

    def _runtime(self) -> DatabaseRuntime:
        runtime = self.app.runtime
        if runtime is None:  # pragma: no cover - routes exist only once started
            raise web.HTTPServiceUnavailable(text="the database is not open yet")
        return runtime

    # ----- pages ---------------------------------------------------------------------------------------------
    async def index(self, request: web.Request) -> web.StreamResponse:
        if not self._has_session(request):
            return web.Response(
                status=401,
                content_type="text/html",
                text=(
                    "<!doctype html><meta charset=utf-8><title>spacetime-game console</title>"
                    "<body style='font-family:system-ui;background:#1b1f27;color:#d8dee9;padding:3em'>"
                    "<h1>spacetime-game dev console</h1><p>This console is for the database owner. Open the"
                    " console link that <code>spacetime-game serve</code> (or <code>dev</code>) printed when"
                    " it started.</p>"
                ),
            )
        return self._file("index.html")

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if "/" in name or name.startswith(".") or Path(name).suffix not in _STATIC_TYPES:
            raise web.HTTPNotFound()
        return self._file(name)

    def _file(self, name: str) -> web.StreamResponse:
        path = CONSOLE_DIR / name
        if not path.is_file():
            raise web.HTTPNotFound(text=f"the console's {name} is missing from this installation")
        return web.Response(
            body=path.read_bytes(),
            content_type=_STATIC_TYPES[path.suffix],
            charset="utf-8",
            headers={
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:;"
                " style-src 'self'; script-src 'self'; frame-ancestors 'none'",
                "Referrer-Policy": "no-referrer",
            },
        )

    async def login(self, request: web.Request) -> web.StreamResponse:
        key = request.query.get("key", "")
        if not key or not hmac.compare_digest(key.encode(), self.login_key.encode()):
            raise web.HTTPForbidden(
                text="this console link is not (or no longer) valid: use the one printed at start"
            )
        response = web.HTTPSeeOther("/")
        response.set_cookie(CONSOLE_COOKIE, self._session, httponly=True, samesite="Strict", path="/")
        response.headers["Referrer-Policy"] = "no-referrer"
        raise response

    # ----- API -----------------------------------------------------------------------------------------------
    async def schema(self, request: web.Request) -> web.Response:
        self._require(request)
        runtime = self._runtime()
        module = runtime.module
        tables = []
        for spec in sorted(module.tables, key=lambda s: s.name):
            names = [n for n, _ in spec.columns]
            tables.append(
                {
                    "name": spec.name,
                    "public": spec.public,
                    "event": spec.event,
                    "scheduled": spec.scheduled,
                    "columns": [{"name": n, "type": type_label(t, module)} for n, t in spec.columns],
                    "primary_key": names[spec.primary_key] if spec.primary_key is not None else None,
                    "unique": [names[i] for i in spec.unique],
                    "rows": len(runtime.host.store.tables[spec.name]),
                }
            )
        reducers = []
        for rd in module.reducers:
            reducers.append(
                {
                    "name": rd.name,
                    "lifecycle": rd.lifecycle,
                    "callable": runtime.host.is_callable(rd.name),
                    "params": [
                        {"name": n, "type": type_label(t, module), "json_type": t.to_json()}
                        for n, t in rd.params
                    ],
                }
            )
        return web.json_response(
            {
                "database": runtime.name,
                "owner": str(self.app.owner_identity),
                "tables": tables,
                "reducers": reducers,
            }
        )

    async def table(self, request: web.Request) -> web.Response:
        self._require(request)
        name = request.match_info["name"]
        try:
            offset = max(0, int(request.query.get("offset", "0")))
            limit = min(MAX_PAGE, max(1, int(request.query.get("limit", "100"))))
        except ValueError:
            raise web.HTTPBadRequest(text=json.dumps({"error": "offset and limit are numbers"})) from None
        return web.json_response(self._page(name, offset, limit, None))

    def _page(self, name: str, offset: int, limit: int, changed: set[bytes] | None) -> dict[str, Any]:
        runtime = self._runtime()
        store = runtime.host.store.tables.get(name)
        if store is None:
            raise web.HTTPNotFound(
                text=json.dumps({"error": f"no table {name!r}"}), content_type="application/json"
            )
        spec = store.spec
        ts = Typespace(tuple(runtime.module.typespace))
        bindings = runtime.module.bindings
        types = [t for _, t in spec.columns]
        order = self._order(store)
        keys: Iterable[bytes]
        if order is not None and spec.primary_key is not None:
            by_pk = store.unique[spec.primary_key]
            keys = [by_pk[v] for v in order[offset : offset + limit]]
        else:
            keys = itertools.islice(store.rows, offset, offset + limit)
        rows = []
        marks = []
        for i, key in enumerate(keys):
            rows.append([readable(v, t, ts, bindings) for v, t in zip(store.rows[key], types, strict=False)])
            if changed and key in changed:
                marks.append(i)
        return {
            "table": name,
            "total": len(store),
            "offset": offset,
            "columns": [n for n, _ in spec.columns],
            "order": None if order is None else spec.columns[spec.primary_key or 0][0],
            "rows": rows,
            "changed": marks,
        }

    def _order(self, store: TableStore) -> list[Any] | None:
        """The table's primary key values in order (a page shows its rows in this order, so that an updated
        row keeps its place), or None: no primary key, or keys that do not compare (insertion order then).
        Kept up to date by :meth:`on_commit` for the tables a console shows, built again when needed."""
        pk = store.spec.primary_key
        if store is not self._ordered_store.get(store.name):  # a new module's table: start over
            self._orders.pop(store.name, None)
            self._unordered.discard(store.name)
            self._ordered_store[store.name] = store
        if pk is None or store.name in self._unordered:
            return None
        order = self._orders.get(store.name)
        if order is None:
            try:
                order = sorted(store.unique[pk])
            except TypeError:
                self._unordered.add(store.name)
                return None
            if any(v.table == store.name for v in self.viewers):
                self._orders[store.name] = order
        return order

    def _update_order(self, table: str, changes: TableChanges) -> None:
        order = self._orders.get(table)
        store = self.app.runtime.host.store.tables.get(table) if self.app.runtime else None
        if order is None or store is None or store is not self._ordered_store.get(table):
            self._orders.pop(table, None)
            return
        pk = store.spec.primary_key
        if pk is None:
            return
        gone = {_hkey(r[pk]) for r in changes.deletes}
        new = {_hkey(r[pk]) for r in changes.inserts}
        gone, new = gone - new, new - gone  # an update keeps its key: nothing moves
        if len(gone) + len(new) > REORDER_MAX:
            del self._orders[table]  # built again for the next page
            return
        try:
            for v in gone:
                i = bisect.bisect_left(order, v)
                if i < len(order) and order[i] == v:
                    del order[i]
            for v in new:
                bisect.insort(order, v)
        except TypeError:
            del self._orders[table]
            self._unordered.add(table)

    async def sql(self, request: web.Request) -> web.Response:
        self._require(request, changes=True)
        runtime = self._runtime()
        try:
            body = await request.json()
            text = body["sql"]
            if not isinstance(text, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": 'send {"sql": "SELECT ..."}'}, status=400)
        t0 = time.perf_counter()
        try:
            results = execute_sql(
                text,
                runtime.schema,
                runtime.view,
                self.app.owner_identity,
                owner=True,
                limits=runtime.limits.sql,
            )
        except SqlError as exc:  # the query's own mistake: an answer, not a failed request
            return web.json_response({"error": str(exc)})
        elapsed = (time.perf_counter() - t0) * 1000
        ts = Typespace(tuple(runtime.module.typespace))
        out = []
        for res in results:
            types = [e.type for e in res.schema.elements]
            out.append(
                {
                    "columns": [str(e.name) for e in res.schema.elements],
                    "rows": [
                        [readable(v, t, ts, runtime.module.bindings) for v, t in zip(row, types, strict=True)]
                        for row in res.rows[:10_000]
                    ],
                    "total": len(res.rows),
                }
            )
        first = out[0] if out else {"columns": [], "rows": [], "total": 0}
        return web.json_response({**first, "results": out, "elapsed_ms": round(elapsed, 3)})

    async def call(self, request: web.Request) -> web.Response:
        self._require(request, changes=True)
        runtime = self._runtime()
        name = request.match_info["reducer"]
        rd = runtime.module.reducer_def(name)
        if rd is None or not runtime.host.is_callable(name):
            return web.json_response({"error": f"{name!r} is not a reducer that can be called"}, status=404)
        try:
            body = await request.json()
            raw = body.get("args", []) if isinstance(body, dict) else None
            if not isinstance(raw, list):
                raise TypeError
        except (ValueError, TypeError):
            return web.json_response({"error": 'send {"args": [...]}, one value per parameter'}, status=400)
        params = ProductType(tuple(ProductElement(n, t) for n, t in rd.params))
        ts = Typespace(tuple(runtime.module.typespace))
        try:
            values = from_json(raw, params, ts, runtime.module.bindings)
            args = tuple(values.values()) if isinstance(values, dict) else tuple(values)
            runtime.host.args_codec(name).encode(args)
        except (EncodeError, RecursionError) as exc:
            return web.json_response({"error": f"invalid arguments for {name}: {exc}"}, status=400)
        t0 = time.perf_counter()
        result = await runtime.call_http(name, args, self.app.owner_identity)
        status = {"ok": "committed", "err": "failed", "internal": "internal"}[result.status]
        return web.json_response(
            {
                "status": status,
                "message": result.message,
                "duration_ms": round((time.perf_counter() - t0) * 1000, 3),
            }
        )

    # ----- live ------------------------------------------------------------------------------------------------
    async def websocket(self, request: web.Request) -> web.StreamResponse:
        self._require(request, changes=True)
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=64 * 1024)
        await ws.prepare(request)
        viewer = _Viewer(ws)
        self.viewers.append(viewer)
        if len(self.viewers) == 1:
            self._open()
        try:
            await self._send(viewer, self._snapshot(viewer))
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                        break
                    continue
                self._on_page_message(viewer, msg.data)
        finally:
            self.viewers.remove(viewer)
            if not self.viewers:
                self._close()
        return ws

    def _on_page_message(self, viewer: _Viewer, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            return
        if not isinstance(msg, dict) or "view" not in msg:
            return
        view = msg["view"]
        if view is None:
            viewer.table = None
            return
        if not isinstance(view, dict) or not isinstance(view.get("table"), str):
            return
        runtime = self.app.runtime
        if runtime is None or view["table"] not in runtime.host.store.tables:
            return
        viewer.table = view["table"]
        shown = {v.table for v in self.viewers}
        for table in [t for t in self._orders if t not in shown]:
            del self._orders[table]
        try:
            viewer.offset = max(0, int(view.get("offset", 0)))
            viewer.limit = min(MAX_PAGE, max(1, int(view.get("limit", 100))))
        except (TypeError, ValueError):
            viewer.offset, viewer.limit = 0, 100
        self._changed_tables.add(viewer.table)  # the next push sends this page
        self._wake.set()

    def _open(self) -> None:
        """The first console opened: install the observers and start pushing."""
        runtime = self._runtime()
        runtime.host.observer = self.on_call
        runtime.observer = self.on_commit
        self._module_logger = runtime.module.import_name
        floors = {"spacetime_game.server": logging.INFO}
        if self._module_logger:
            floors[self._module_logger] = logging.DEBUG
        for name, floor in floors.items():
            _tap(name, self, floor)
        self.tapped = tuple(floors)
        self._handler = _LogHandler(self)
        logging.getLogger().addHandler(self._handler)
        self._task = asyncio.get_running_loop().create_task(self._pusher())
        log.info("a dev console opened")

    def _close(self) -> None:
        """The last console left: nothing of it runs any more."""
        runtime = self.app.runtime
        if runtime is not None:
            runtime.host.observer = None
            runtime.observer = None
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
            self._handler = None
        for name in self.tapped:
            _untap(name, self)
        self.tapped = ()
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.new_calls.clear()
        self.new_logs.clear()
        self._changed_tables.clear()
        self._changed_keys.clear()
        self._orders.clear()
        self._unordered.clear()
        self._ordered_store.clear()

    def keep(self, record: logging.LogRecord) -> None:
        """A log record for the consoles (from the log handlers, in any thread)."""
        entry = _log_entry(record, self._module_logger)
        self.logs.append(entry)
        self.new_logs.append(entry)

    def on_call(self, info: CallInfo) -> None:
        """The host ran a reducer (installed while a console is open)."""
        self.calls.append(info)
        self.new_calls.append(info)
        self._durations.append(info.duration)
        self._call_count += 1

    def on_commit(self, record: TxRecord) -> None:
        """A transaction committed (installed while a console is open)."""
        self._transactions += 1
        viewed = {v.table for v in self.viewers}
        for table, changes in record.changes.items():
            if not (changes.inserts or changes.deletes):
                continue
            self._changed_tables.add(table)
            if table in self._orders:
                self._update_order(table, changes)
            if table in viewed and changes.insert_bytes:
                keys = self._changed_keys.setdefault(table, set())
                if len(keys) < MAX_CHANGED:
                    keys.update(changes.insert_bytes)

    async def _pusher(self) -> None:
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), FLUSH_EVERY)
                self._wake.clear()
                await asyncio.sleep(0)
                self._push()
                await asyncio.sleep(FLUSH_EVERY / 2)
        except asyncio.CancelledError:
            pass
        except Exception:  # the console must never take the server down
            log.exception("the dev console stopped pushing")

    def _push(self) -> None:
        now = time.time()
        self._history.append((now, self._transactions, self._call_count))
        due_clients = now - self._clients_sent >= CLIENTS_EVERY
        if not (self._changed_tables or self.new_calls or self.new_logs or due_clients):
            return
        runtime = self.app.runtime
        if runtime is None:
            return
        common: dict[str, Any] = {"t": now, "stats": self._stats()}
        if self._changed_tables:
            tables = runtime.host.store.tables
            common["counts"] = {t: len(tables[t]) for t in self._changed_tables if t in tables}
        if self.new_calls:
            common["calls"] = [self._call_json(c) for c in self.new_calls[-CALLS_PER_PUSH:]]
        if self.new_logs:
            logs, self.new_logs = self.new_logs, []  # (records may come from other threads meanwhile)
            common["logs"] = logs[-KEEP:]
        if due_clients:
            common["clients"] = self._clients()
            self._clients_sent = now
        for viewer in list(self.viewers):
            msg = common
            if viewer.table is not None and viewer.table in self._changed_tables:
                changed = self._changed_keys.get(viewer.table)
                msg = {**common, "page": self._page(viewer.table, viewer.offset, viewer.limit, changed)}
            self._send_soon(viewer, msg)
        self._changed_tables.clear()
        self._changed_keys.clear()
        self.new_calls = []

    def _snapshot(self, viewer: _Viewer) -> dict[str, Any]:
        runtime = self._runtime()
        tables = runtime.host.store.tables
        return {
            "t": time.time(),
            "counts": {t: len(s) for t, s in tables.items()},
            "calls": [self._call_json(c) for c in self.calls],
            "logs": list(self.logs),
            "clients": self._clients(),
            "stats": self._stats(),
        }

    def _stats(self) -> dict[str, Any]:
        history = self._history
        tx_rate = calls_rate = 0.0
        if len(history) >= 2:
            (t0, tx0, c0), (t1, tx1, c1) = history[max(0, len(history) - 5)], history[-1]
            if t1 > t0:
                tx_rate = (tx1 - tx0) / (t1 - t0)
                calls_rate = (c1 - c0) / (t1 - t0)
        recent = sorted(itertools.islice(reversed(self._durations), 200))
        return {
            "tx_per_s": round(tx_rate, 2),
            "calls_per_s": round(calls_rate, 2),
            "reducer_ms_p50": round(recent[len(recent) // 2] * 1000, 3) if recent else 0.0,
            "reducer_ms_max": round(recent[-1] * 1000, 3) if recent else 0.0,
            "clients": len(self.app._conns),
            "transactions": self._transactions,
        }

    def _call_json(self, c: CallInfo) -> dict[str, Any]:
        runtime = self.app.runtime
        args: Any = None
        if runtime is not None:
            rd = runtime.module.reducer_def(c.reducer)
            if rd is not None:
                ts = Typespace(tuple(runtime.module.typespace))
                try:
                    args = {
                        n: readable(v, t, ts, runtime.module.bindings)
                        for (n, t), v in zip(rd.params, c.args, strict=False)
                    }
                except (EncodeError, TypeError, ValueError):
                    args = None
        return {
            "at": c.at,
            "reducer": c.reducer,
            "caller": str(c.caller),
            "connection": None if c.connection is None else str(c.connection),
            "args": args,
            "status": {"ok": "committed", "err": "failed", "internal": "internal"}.get(c.status, c.status),
            "message": c.message,
            "duration_ms": round(c.duration * 1000, 3),
            "rows_changed": c.rows_changed,
            "scheduled": c.scheduled,
        }

    def _clients(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for conn in list(self.app._conns):
            transport: Any = conn.transport
            out.append(
                {
                    "identity": str(conn.identity),
                    "connection": str(conn.connection_id),
                    "connected_at": conn.connected_at,
                    "subscriptions": sorted({q for qs in conn.query_sets.values() for q in qs.texts}),
                    "messages_in": conn.messages_in,
                    "bytes_in": conn.bytes_in,
                    "messages_out": getattr(transport, "messages_out", 0),
                    "bytes_out": getattr(transport, "bytes_out", 0),
                    "queue_bytes": getattr(transport, "queued_bytes", 0),
                    "calls": conn.calls,
                    "round_trip_ms": round(conn.call_seconds / conn.calls * 1000, 3) if conn.calls else None,
                }
            )
        out.sort(key=lambda c: c["connected_at"])
        return out

    async def _send(self, viewer: _Viewer, msg: dict[str, Any]) -> None:
        if viewer.ws.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            await viewer.ws.send_str(json.dumps(msg, separators=(",", ":")))

    def _send_soon(self, viewer: _Viewer, msg: dict[str, Any]) -> None:
        asyncio.get_running_loop().create_task(self._send(viewer, msg))

    async def close_all(self) -> None:
        """Close every open console (the server stops)."""
        for viewer in list(self.viewers):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(viewer.ws.close(), 2)
