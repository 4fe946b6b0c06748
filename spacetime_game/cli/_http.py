"""Small HTTP helpers for the command line (standard library only)."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

__all__ = ["fetch_schema", "http_base"]


def http_base(server: str) -> str:
    """``localhost:3000`` / ``ws://...`` / ``http://...`` -> an ``http(s)://host[:port]`` base URL."""
    s = server.strip().rstrip("/")
    if "://" not in s:
        s = "http://" + s
    scheme, rest = s.split("://", 1)
    scheme = {"ws": "http", "wss": "https"}.get(scheme.lower(), scheme.lower())
    if scheme not in ("http", "https"):
        raise OSError(f"unsupported server URL scheme {scheme!r} in {server!r}")
    return f"{scheme}://{rest}"


def fetch_schema(
    server: str, database: str, token: str | None = None, timeout: float = 15.0
) -> tuple[bytes, int]:
    """``GET /v1/database/<db>/schema?version=10``, falling back to ``version=9`` on a 4xx (like the
    official CLI). Returns the body and the version that answered."""
    base = http_base(server)
    db = urllib.parse.quote(database, safe="")
    last: Exception | None = None
    for version in (10, 9):
        req = urllib.request.Request(f"{base}/v1/database/{db}/schema?version={version}")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.read(), version
        except urllib.error.HTTPError as exc:
            last = exc
            if 400 <= exc.code < 500 and version == 10:
                continue
            raise OSError(
                f"{base}: the server answered HTTP {exc.code} for the schema of {database!r}"
            ) from None
        except urllib.error.URLError as exc:
            raise OSError(f"cannot reach {base}: {exc.reason}") from None
    raise OSError(f"{base}: no schema for {database!r} ({last})")


def request(
    method: str,
    server: str,
    path: str,
    body: bytes | None = None,
    token: str | None = None,
    content_type: str = "application/json",
    timeout: float = 15.0,
) -> tuple[int, bytes]:
    """One HTTP request to a SpacetimeDB server; returns (status, body). Connection problems raise OSError."""
    base = http_base(server)
    req = urllib.request.Request(f"{base}{path}", data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", content_type)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except urllib.error.URLError as exc:
        raise OSError(f"cannot reach {base}: {exc.reason}") from None
