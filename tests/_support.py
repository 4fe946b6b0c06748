"""Shared test material: the vector file, the hand-written Player row of the vectors, strict equality;
generated packages imported under unique names; free ports and waiting for a child server."""

from __future__ import annotations

import importlib
import itertools
import json
import math
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from spacetime_game.codegen import write_package
from spacetime_game.sdk import Identity, Timestamp
from spacetime_game.sdk.sats import (
    AlgebraicType,
    PrimitiveType,
    ProductElement,
    ProductType,
    Some,
    SumValue,
    compile_codec,
)
from spacetime_game.sdk.schema import ModuleSchema

DATA = Path(__file__).parent / "data"

IDENTITY_HEX = "c200112233445566778899aabbccddeeff00112233445566778899aabbccddee"
CONNECTION_ID_HEX = "0123456789abcdef0123456789abcdef"
JAN_1_2024_MICROS = 1_704_067_200_000_000


@cache
def vectors() -> dict[str, Any]:
    """``tests/data/bsatn_vectors.json``, made by the official TypeScript encoders (docs/protocol.md
    section 8)."""
    with open(DATA / "bsatn_vectors.json", encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def vector(section: str, name: str) -> dict[str, Any]:
    """The entry called ``name`` of ``section``."""
    for entry in vectors()[section]:
        if entry["name"] == name:
            return dict(entry)
    raise KeyError(f"no vector {name!r} in {section}")


# ---- the Player row of the vectors, typed by hand -------------------------------------------------
P = PrimitiveType
UNIT = ProductType(())
#: ``Product{x:F32, y:F32}``
POINT = AlgebraicType.product(x=P("F32"), y=P("F32"))
#: ``Product{id:U64, name:String, owner:Identity, pos:Option<Product{x:F32,y:F32}>, created:Timestamp}``,
#: written out field by field (the special types by their SATS shape, not through ``special()``).
PLAYER = ProductType(
    (
        ProductElement("id", P("U64")),
        ProductElement("name", P("String")),
        ProductElement("owner", ProductType((ProductElement("__identity__", P("U256")),))),
        ProductElement("pos", AlgebraicType.option(POINT)),
        ProductElement(
            "created", ProductType((ProductElement("__timestamp_micros_since_unix_epoch__", P("I64")),))
        ),
    )
)
OWNER = Identity.from_string(IDENTITY_HEX)
PLAYER_1 = {
    "id": 1,
    "name": "alice",
    "owner": OWNER,
    "pos": {"x": 1.0, "y": 2.0},
    "created": Timestamp(JAN_1_2024_MICROS),
}
PLAYER_2 = {"id": 2, "name": "bob", "owner": OWNER, "pos": None, "created": Timestamp(JAN_1_2024_MICROS + 1)}
PLAYER_1B = {**PLAYER_1, "name": "alice2"}


@cache
def player_codec() -> Any:
    return compile_codec(PLAYER, name="Player")


def player_bytes(row: dict[str, Any]) -> bytes:
    """The BSATN of a Player row (checked against the value vectors in ``test_vectors``)."""
    data: bytes = player_codec().encode(row)
    return data


def bsatn_string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<I", len(raw)) + raw


# ---- strict equality --------------------------------------------------------------------------------
def strict_eq(a: Any, b: Any) -> bool:
    """Equality that also requires the same types all the way down (so ``True`` is not ``1``,
    ``[1]`` is not ``(1,)``, ``-0.0`` is not ``0.0``) and that treats NaN as equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, dict):
        return list(a) == list(b) and all(strict_eq(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(strict_eq(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, SumValue):
        return a.tag == b.tag and strict_eq(a.value, b.value)
    if isinstance(a, Some):
        return strict_eq(a.value, b.value)
    return bool(a == b)


def assert_strict_eq(a: Any, b: Any) -> None:
    assert strict_eq(a, b), f"{a!r} != {b!r}"


# ---- generated packages ------------------------------------------------------------------------------
_counter = itertools.count()


def import_generated(
    schema: ModuleSchema, root: Path, source: str = "schema", prefix: str = "pkg"
) -> ModuleType:
    """Write the bindings of ``schema`` to ``root/<unique name>/`` and import them."""
    name = f"{prefix}_{next(_counter)}"
    write_package(schema, root / name, source)
    sys.path.insert(0, str(root))
    try:
        importlib.invalidate_caches()
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(root))


def forget(pkg: ModuleType) -> None:
    """Drop a generated package and its submodules from ``sys.modules``."""
    for mod in [m for m in sys.modules if m == pkg.__name__ or m.startswith(pkg.__name__ + ".")]:
        del sys.modules[mod]


# ---- child servers -----------------------------------------------------------------------------------
def free_port() -> int:
    """A TCP port nothing listens on (free when asked)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[Any] | None = None, timeout: float = 20.0) -> None:
    """Wait until something accepts connections on ``port``; AssertionError if ``proc`` ends first or
    the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"the server ended with {proc.returncode} before listening") from None
            time.sleep(0.03)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


def tool(name: str) -> str:
    """A command-line tool of the venv (ruff, mypy, spacetime-game); fails the test when it is missing."""
    exe = Path(sys.executable).parent / name
    found = str(exe) if exe.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed (pip install -e '.[dev]')")
    return found


# ---- the library's threads ---------------------------------------------------------------------------
def sdk_threads() -> list[threading.Thread]:
    """The library's threads now alive (transport readers, writers and closers, the network simulator)."""
    return [t for t in threading.enumerate() if t.name.startswith("spacetime-game-")]


def sdk_threads_after_close(timeout: float = 5.0) -> list[threading.Thread]:
    """The library's threads still alive after waiting up to ``timeout`` seconds for them to end
    (``close()`` returns at once; the close handshake and the reader's end happen in the background)."""
    deadline = time.monotonic() + timeout
    for t in sdk_threads():
        t.join(max(0.0, deadline - time.monotonic()))
    return sdk_threads()


def wait_no_sdk_threads(timeout: float = 10.0) -> None:
    """Wait for the library's threads to end; fail naming those left."""
    left = sdk_threads_after_close(timeout)
    assert left == [], f"threads left after close(): {[t.name for t in left]}"


def pump(conn: Any, until: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Call ``conn.update()`` (a game's frames) until ``until()`` holds; AssertionError naming ``what``
    when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not until():
        conn.update()
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


class QueueTransport:
    """A transport that feeds nothing itself: a benchmark or test puts the server's messages straight
    into the client's event queue (``transport.events.put(TransportMessage(...))``)."""

    def start(self, events: Any, wake: Any) -> None:
        self.events = events

    def send(self, messages: list[Any]) -> int:
        return 0

    def close(self) -> None:
        pass


def owner_sql(server: Any, query: str) -> list[list[object]]:
    """The rows of ``query`` over a DevServer's HTTP ``/sql``, as its owner (private tables too)."""
    import urllib.request

    request = urllib.request.Request(
        f"{server.url}/v1/database/{server.database}/sql",
        data=query.encode(),
        headers={"Authorization": f"Bearer {server.owner_token}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=300) as reply:
        return json.loads(reply.read())[0]["rows"]  # type: ignore[no-any-return]


def http_call(server: Any, reducer: str, *args: object) -> None:
    """Call ``reducer(*args)`` over a DevServer's HTTP API (anonymously); an error status raises."""
    import urllib.request

    request = urllib.request.Request(
        f"{server.url}/v1/database/{server.database}/call/{reducer}",
        data=json.dumps(list(args)).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=300) as reply:
        assert reply.status == 200
