"""Why a connection attempt failed, in one readable line, and whether trying again can help.

Pure functions over the exception a connection attempt raised (websocket-client's handshake errors are
read by their attributes, ``status_code`` and ``resp_body``, never by their text, which carries the
response headers). The transport turns every failed attempt into a :class:`ConnectionFailed`; the
client ends a permanent one in the ``failed`` state and retries a transient one with its backoff.

Permanent (retrying gives the same answer until someone changes the code, the name or the token):

- an HTTP answer other than 101 at the handshake: 400 (malformed request or token, no common
  subprotocol), 401 (token refused), 403, 404 (unknown database), 410, 426 and any other 4xx, and the
  5xx that name a missing feature (501, 505);
- a server that answers, but not as a WebSocket server (a wrong header or subprotocol, not HTTP at all);
- a TLS certificate that does not verify, or TLS spoken to a port that does not speak it.

Transient (the server may be starting, restarting, overloaded, or the network down): connection
refused, reset or aborted, timeouts, an unreachable network, a host name that does not resolve (a
resolver may be offline), 408, 409 (a previous connection with the same id still closing), 425, 429,
and the other 5xx.

:class:`FailureNotice` decides where the reason goes: to the ``spacetime_game.sdk.connection`` logger,
and, when the application has neither configured logging nor registered ``on_error``, one line on
stderr through :data:`logging.lastResort` (exactly when Python itself would have shown the warning if
the library had not installed its ``NullHandler``). A run of transient failures is reported once.
"""

from __future__ import annotations

import errno
import logging
import re
import socket
import ssl
import urllib.parse
from http import HTTPStatus

from .sats import SpacetimeError

__all__ = [
    "ConnectionFailed",
    "FailureNotice",
    "describe_failure",
    "handshake_failure",
    "is_permanent_status",
    "where",
]

log = logging.getLogger("spacetime_game.sdk.connection")

#: 4xx answers that may go away on their own: retried.
_TRANSIENT_4XX = frozenset({408, 409, 425, 429})
#: 5xx answers that name a missing feature: not retried.
_PERMANENT_5XX = frozenset({501, 505})
#: How much of the server's answer a reason quotes.
_MAX_BODY = 300


class ConnectionFailed(SpacetimeError, ConnectionError):
    """A connection attempt failed; ``str()`` is the readable reason (``reason``).

    ``permanent`` is True when trying again cannot help (an unknown database, a refused token, no
    common protocol: the client then stops in the ``failed`` state) and False when it may (refused,
    reset, timed out, a 5xx: the client retries with its backoff). ``status`` is the HTTP status of the
    handshake's answer, if there was one; ``host`` and ``database`` say where. The exception that
    the attempt raised is ``__cause__``.
    """

    def __init__(
        self, reason: str, *, permanent: bool, host: str, database: str, status: int | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.host = host
        self.database = database
        self.status = status

    def __str__(self) -> str:
        return self.reason

    def __repr__(self) -> str:
        return f"ConnectionFailed({self.reason!r}, permanent={self.permanent}, status={self.status})"


def is_permanent_status(status: int) -> bool:
    """True when an HTTP answer (other than 101) to the handshake will not change by trying again."""
    if 500 <= status <= 599:
        return status in _PERMANENT_5XX
    return status not in _TRANSIENT_4XX


def where(url: str) -> tuple[str, str]:
    """``(host[:port], database)`` of a subscribe URL (``ws://localhost:3000/v1/database/NAME/subscribe``)."""
    parts = urllib.parse.urlsplit(url)
    m = re.search(r"/v1/database/([^/]+)/subscribe$", parts.path)
    database = urllib.parse.unquote(m.group(1)) if m else ""
    return parts.netloc or url, database


def _body_text(body: bytes | str | None) -> str:
    """The server's answer as one short line ("" for none, or for an HTML page)."""
    if body is None:
        return ""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    if text.startswith("<"):  # an HTML error page of some other web server: no use in one line
        return ""
    if len(text) > _MAX_BODY:
        text = text[: _MAX_BODY - 3].rstrip() + "..."
    return text


def _phrase(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def handshake_failure(status: int, body: bytes | str | None, url: str) -> ConnectionFailed:
    """The reason for an HTTP answer other than 101 to the WebSocket handshake at ``url``."""
    host, db = where(url)
    said = _body_text(body)
    permanent = is_permanent_status(status)
    quote = f": {said}" if said else ""
    if status == 404:
        extra = "" if not said or "not found" in said.lower() else f" (the server said: {said})"
        reason = f"database {db!r} not found at {host}{extra}"
    elif status == 401 or (status == 400 and "token" in said.lower()):
        reason = (
            f"the server at {host} refused the token{quote or ' (401 Unauthorized)'} (a token saved for "
            "another server, or for an in-memory dev server that has restarted since, is not valid here: "
            "connect without it to get a new identity)"
        )
    elif status == 403:
        reason = f"the server at {host} does not let this client connect to database {db!r}{quote}"
    elif status == 400 and "protocol" in said.lower():
        reason = (
            f"the server at {host} speaks none of this client's protocols{quote} (a SpacetimeDB too old "
            "or too new for this SDK, or not a SpacetimeDB server)"
        )
    elif status == 426:
        reason = f"the server at {host} asks for another protocol version (426 Upgrade Required){quote}"
    elif status == 429:
        reason = f"the server at {host} is busy (429 Too Many Requests){quote}"
    elif 500 <= status <= 599 and not permanent:
        reason = f"the server at {host} failed to open database {db!r} ({_phrase(status)}){quote}"
    else:
        reason = f"the server at {host} refused to connect to database {db!r} ({_phrase(status)}){quote}"
    return ConnectionFailed(reason, permanent=permanent, host=host, database=db, status=status)


def _network_reason(exc: BaseException, connect_timeout: float | None) -> tuple[str, bool]:
    """(what went wrong, permanent) for an attempt that got no HTTP answer."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"its TLS certificate does not verify ({exc.verify_message or exc})", True
    if isinstance(exc, ssl.SSLError) and not isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        why = getattr(exc, "reason", None) or exc.strerror or str(exc)
        return f"TLS failed: {why} (is this a TLS port, for wss:// or ssl_enabled?)", True
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server running, on this port?)", False
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError | ssl.SSLEOFError):
        return "the connection was reset during the handshake", False
    if isinstance(exc, TimeoutError | socket.timeout) or type(exc).__name__ == "WebSocketTimeoutException":
        after = f" after {connect_timeout:g} s" if connect_timeout else ""
        return f"no answer{after} (timed out)", False
    inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
    if isinstance(exc, socket.gaierror) or isinstance(inner, socket.gaierror):
        err = exc if isinstance(exc, socket.gaierror) else inner
        return f"the host name does not resolve ({getattr(err, 'strerror', None) or err})", False
    if type(exc).__name__ == "WebSocketConnectionClosedException":
        return "the server closed the connection during the handshake", False
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN):
        return f"the network is unreachable ({exc.strerror or exc})", False
    text = str(exc)
    if text.startswith("Host not found"):
        return "the host name does not resolve", False
    if text == "Invalid WebSocket Header" or text.startswith(("Invalid status line", "Invalid header")):
        # it answered, but not as a WebSocket server (or with a subprotocol this client did not offer)
        return "the server did not answer as a SpacetimeDB WebSocket server (a wrong port?)", True
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:], False
    return text or type(exc).__name__, False


def describe_failure(exc: BaseException, url: str, connect_timeout: float | None = None) -> ConnectionFailed:
    """The :class:`ConnectionFailed` for the exception a connection attempt to ``url`` raised (its
    ``__cause__`` is ``exc``). A handshake answered with an HTTP status is read from the exception's
    ``status_code`` and ``resp_body`` (websocket-client's ``WebSocketBadStatusException``)."""
    if isinstance(exc, ConnectionFailed):
        return exc
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status != 101:
        failure = handshake_failure(status, getattr(exc, "resp_body", None), url)
    else:
        host, db = where(url)
        what, permanent = _network_reason(exc, connect_timeout)
        failure = ConnectionFailed(
            f"cannot connect to {host}: {what}", permanent=permanent, host=host, database=db
        )
    failure.__cause__ = exc
    return failure


def _logging_configured(logger: logging.Logger, level: int) -> bool:
    """True when a record of ``level`` from ``logger`` reaches a handler the application installed
    (anything but a NullHandler), or when the application has silenced it (a level above it)."""
    if not logger.isEnabledFor(level):
        return True
    c: logging.Logger | None = logger
    while c is not None:
        if any(not isinstance(h, logging.NullHandler) and level >= h.level for h in c.handlers):
            return True
        if not c.propagate:
            break
        c = c.parent
    return False


class FailureNotice:
    """Tells someone once about connection failures: the first of a run of transient failures, and a
    permanent one. :meth:`connected` starts a new run.

    Every report is a log record of ``spacetime_game.sdk.connection`` (WARNING; later failures of the
    same run at INFO). When the application has not configured logging and has not registered
    ``on_error`` (``handled``), the first one is also written to stderr through
    :data:`logging.lastResort`, as one line: the library's only output that is not the application's
    choice, so that a wrong port or database name is never silent.
    """

    def __init__(self) -> None:
        self._told = False

    def connected(self) -> None:
        """The connection is up: the next failure starts a new run."""
        self._told = False

    def failed(self, failure: ConnectionFailed, *, retrying: bool, handled: bool) -> None:
        """Report ``failure``. ``retrying``: the client tries again (else it stops); ``handled``: an
        ``on_error`` callback receives it."""
        then = (
            "retrying"
            if retrying
            else "not retrying"
            if failure.permanent
            else "giving up (reconnect is off)"
        )
        first = not self._told or failure.permanent
        self._told = True
        level = logging.WARNING if first else logging.INFO
        log.log(level, "%s; %s", failure.reason, then)
        if not first or handled or _logging_configured(log, logging.WARNING):
            return
        last = logging.lastResort
        if last is None:  # the application has turned Python's last-resort output off
            return
        hint = "set on_error or configure logging to handle this yourself"
        line = f"spacetime_game: {failure.reason}; {then} ({hint})"
        last.handle(log.makeRecord(log.name, logging.WARNING, __file__, 0, line, (), None))
