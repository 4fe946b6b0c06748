"""The dev server under a hostile client: random and mutated frames, oversized and deeply nested input,
forged tokens and the worst-case queries. Each attack runs for a bounded time while a well-behaved client
(the probe, in its own process) calls a reducer over and over: the attack must be refused clearly, the
server must live through it, and the probe's round trip must stay low (p99 under 50 ms)."""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import random
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import websocket
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from spacetime_game.sdk.protocol import (
    PROTOCOL_V2,
    PROTOCOL_V3,
    CallReducer,
    ClientMessage,
    Err,
    InitialConnection,
    OneOffQuery,
    OneOffQueryResult,
    Subscribe,
    SubscribeApplied,
    SubscriptionError,
    Unsubscribe,
    UnsubscribeFlags,
    decode_server_frame,
    encode_client_frame,
)
from spacetime_game.sdk.sats import AlgebraicType, PrimitiveType, compile_codec

from ..client._support import ServerProcess
from ._support import (
    HOSTILE_CLOSE_CODES,
    Probe,
    alive,
    chat_server,
    close_code,
    connect,
    http,
    rss_bytes,
)

pytestmark = pytest.mark.timeout(180)

SEED = 20261202
ATTACK_SECONDS = 2.5
STRING_ARG = compile_codec(AlgebraicType.product(x=PrimitiveType("String")))
SQL = "/v1/database/quickstart-chat/sql"
CALL = "/v1/database/quickstart-chat/call"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    s = chat_server(tmp_path_factory.mktemp("hostile-data"))
    try:
        yield s
    finally:
        s.stop()
    assert "Traceback" not in s.stderr, s.stderr[-4000:]


@pytest.fixture(autouse=True)
def _still_alive(server: ServerProcess) -> Iterator[None]:
    yield
    assert alive(server), "the server did not survive the attack"


def _recv_all(
    ws: websocket.WebSocket, protocol: str, timeout: float, at_most: float = 10.0
) -> tuple[list[Any], int | None]:
    """Every server message until ``timeout`` passes quietly, ``at_most`` seconds pass in all, or the
    server closes: (messages, close code)."""
    try:
        return _recv_until(ws, protocol, timeout, time.monotonic() + at_most)
    finally:
        if ws.sock is not None:
            ws.settimeout(10)  # what sends expect


def _recv_until(
    ws: websocket.WebSocket, protocol: str, timeout: float, end: float
) -> tuple[list[Any], int | None]:
    ws.settimeout(timeout)
    out: list[Any] = []
    while time.monotonic() < end:
        try:
            opcode, frame = ws.recv_data_frame(True)
        except websocket.WebSocketTimeoutException:
            return out, None
        except (websocket.WebSocketException, OSError):
            return out, -1
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            data = frame.data or b""
            return out, int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
        if opcode == websocket.ABNF.OPCODE_BINARY:
            out.extend(decode_server_frame(frame.data, protocol))  # the server's own frames must decode
    return out, None


def _valid_messages(rng: random.Random) -> list[ClientMessage]:
    n = rng.randrange(1, 1 << 16)
    return [
        CallReducer(n, 0, "send_message", STRING_ARG.encode({"x": "hi"})),
        CallReducer(n, 0, "set_name", STRING_ARG.encode({"x": "mallory"})),
        Subscribe(n, n & 0xFFFF, ("SELECT * FROM user", "SELECT * FROM message")),
        Unsubscribe(n, n & 0xFFFF, UnsubscribeFlags.DEFAULT),
        OneOffQuery(n, "SELECT * FROM user WHERE online = true"),
    ]


def _mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    kind = rng.randrange(6)
    if kind == 0 and b:  # flip bits
        for _ in range(rng.randrange(1, 4)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif kind == 1 and b:  # truncate
        del b[rng.randrange(len(b)) :]
    elif kind == 2:  # append junk
        b += rng.randbytes(rng.randrange(1, 64))
    elif kind == 3 and len(b) >= 5:  # a length or count field turned huge
        i = rng.randrange(len(b) - 3)
        b[i : i + 4] = struct.pack("<I", rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 1 << 24, len(b) + 1]))
    elif kind == 4 and b:  # another tag
        b[0] = rng.randrange(256)
    else:  # insert junk in the middle
        i = rng.randrange(len(b) + 1)
        b[i:i] = rng.randbytes(rng.randrange(1, 16))
    return bytes(b)


# ---- frames ---------------------------------------------------------------------------------------------
def _attack_connections(
    server: ServerProcess,
    rng: random.Random,
    what: str,
    attack: Callable[[websocket.WebSocket, str], int | None],
) -> Counter[int | None]:
    """For ATTACK_SECONDS, while the probe measures the round trip, open one connection after another (each
    with a protocol chosen by ``rng``) and run ``attack(ws, protocol)`` on it; it returns the close code it
    saw (None: still open). Returns how many connections ended with each code (-1: the connection failed).
    The probe's check, named ``what``, runs at the end."""
    codes: Counter[int | None] = Counter()
    with Probe(server) as probe:
        deadline = time.monotonic() + ATTACK_SECONDS
        while time.monotonic() < deadline:
            protocol = rng.choice([PROTOCOL_V2, PROTOCOL_V3])
            ws = connect(server, protocol)
            try:
                code = attack(ws, protocol)
            except (websocket.WebSocketException, OSError):
                code = -1
            finally:
                ws.shutdown()  # type: ignore[no-untyped-call]
            codes[code] += 1
    probe.check(what)
    return codes


def test_random_frames(server: ServerProcess) -> None:
    rng = random.Random(SEED)

    def attack(ws: websocket.WebSocket, protocol: str) -> int | None:
        for _ in range(rng.randrange(1, 4)):
            ws.send_binary(rng.randbytes(rng.choice([0, 1, 5, 64, 1024, 4096])))
        return _recv_all(ws, protocol, 0.5)[1]

    codes = _attack_connections(server, rng, "random frames", attack)
    assert sum(codes.values()) >= 10, codes
    # random bytes are (almost always) not a message: the connection is closed with a reason
    assert set(codes) <= HOSTILE_CLOSE_CODES | {None}, codes
    assert sum(codes[c] for c in HOSTILE_CLOSE_CODES) >= 0.9 * sum(codes.values()), codes


def test_mutated_frames(server: ServerProcess) -> None:
    rng = random.Random(SEED + 1)
    sent = 0

    def attack(ws: websocket.WebSocket, protocol: str) -> int | None:
        nonlocal sent
        code = None
        for _ in range(20):
            msgs = rng.sample(_valid_messages(rng), rng.randrange(1, 4))
            if protocol == PROTOCOL_V3:
                frames = [encode_client_frame(msgs, protocol)]
            else:
                frames = [encode_client_frame(m, protocol) for m in msgs]
            for f in frames:
                ws.send_binary(_mutate(f, rng) if rng.random() < 0.3 else f)
                sent += 1
            _, code = _recv_all(ws, protocol, 0.01)
            if code is not None:
                break
        return code

    codes = _attack_connections(server, rng, "mutated frames", attack)
    assert sent >= 20
    assert set(codes) <= HOSTILE_CLOSE_CODES | {None}, codes


def test_oversized_frames_and_lying_headers(server: ServerProcess) -> None:
    with Probe(server) as probe:
        ws = connect(server, PROTOCOL_V2)
        ws.recv()
        with contextlib.suppress(OSError):  # the server may refuse it before it is all sent
            ws.send_binary(b"\x00" * (33 * 1024 * 1024))  # over the 32 MiB frame limit
        assert close_code(ws, 30) in (1009, -1)
        # a frame header announcing 2^62 bytes, then nothing: refused from the header alone
        ws = connect(server, PROTOCOL_V2)
        ws.recv()
        header = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 1 << 62) + b"\x01\x02\x03\x04"
        ws.sock.sendall(header)
        assert close_code(ws, 10) in (1009, -1)
        # a count inside a message claiming four billion elements
        ws = connect(server, PROTOCOL_V2)
        ws.recv()
        ws.send_binary(bytes([2]) + struct.pack("<III", 1, 1, 0xFFFFFFFF))  # Subscribe, 2^32-1 queries
        assert close_code(ws, 10) in HOSTILE_CLOSE_CODES
    probe.check("oversized frames")


def test_deeply_nested_and_malformed_http(server: ServerProcess) -> None:
    deep_json = b"[" * 100_000 + b"]" * 100_000
    deep_sql = "SELECT * FROM user WHERE " + "(" * 100_000 + "online = true" + ")" * 100_000
    with Probe(server) as probe:
        for body in (
            deep_json,
            b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
            b"\xff\xfe\x00not utf-8",
            b'["\\ud800"]',  # a lone surrogate as the string argument
            b"[1e999999]",
            b"[" + b"9" * 100_000 + b"]",
        ):
            status, text = http(server, "POST", f"{CALL}/send_message", body)
            assert status == 400, (body[:40], status, text[:200])
            assert text.strip(), "a 400 must say why"
        status, text = http(server, "POST", SQL, deep_sql.encode())
        assert status == 400, (status, text[:200])
        status, text = http(server, "POST", SQL, b"\xff\xfeSELECT")
        assert status == 400, (status, text[:200])
        # the same nesting as a subscription and as a one-off query: an error message, not a stall
        ws = connect(server, PROTOCOL_V2)
        ws.recv()
        ws.send_binary(encode_client_frame(Subscribe(1, 1, (deep_sql,)), PROTOCOL_V2))
        ws.send_binary(encode_client_frame(OneOffQuery(2, deep_sql), PROTOCOL_V2))
        msgs, code = _recv_all(ws, PROTOCOL_V2, 5)
        ws.close()
        assert code is None, f"the connection was closed ({code}) for a bad query"
        assert any(isinstance(m, SubscriptionError) for m in msgs), msgs
        assert any(isinstance(m, OneOffQueryResult) and isinstance(m.result, Err) for m in msgs), msgs
    probe.check("deep nesting")


# ---- tokens ---------------------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forged_tokens(data_dir: Path) -> dict[str, str]:
    ours = serialization.load_pem_private_key((data_dir / "auth" / "id_ecdsa").read_bytes(), None)
    assert isinstance(ours, ec.EllipticCurvePrivateKey)
    public_pem = (data_dir / "auth" / "id_ecdsa.pub").read_bytes()
    other = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    claims = {"iss": "localhost", "sub": "mallory", "aud": ["spacetimedb"], "iat": now}
    good = jwt.encode(claims, ours, algorithm="ES256")
    head, body, sig = good.split(".")
    hs_head = _b64(b'{"alg":"HS256","typ":"JWT"}')
    return {
        "garbage": "not a token at all",
        "three junk segments": "a.b.c",
        "huge": "A" * 20_000 + ".B.C",
        "non-ascii": "é.é.é",
        "alg none": _b64(b'{"alg":"none","typ":"JWT"}') + "." + body + ".",
        "another key": jwt.encode(claims, other, algorithm="ES256"),
        "hs256 with our public key": hs_head
        + "."
        + body
        + "."
        + _b64(hmac.new(public_pem, f"{hs_head}.{body}".encode(), "sha256").digest()),
        "payload swapped": head + "." + _b64(json.dumps({**claims, "sub": "admin"}).encode()) + "." + sig,
        "signature cut": head + "." + body + "." + sig[:-4],
        "expired": jwt.encode({**claims, "exp": now - 3600}, ours, algorithm="ES256"),
        "another issuer": jwt.encode({**claims, "iss": "https://evil.example"}, ours, algorithm="ES256"),
        "identity mismatch": jwt.encode(
            {**claims, "hex_identity": "c2" + "00" * 31}, ours, algorithm="ES256"
        ),
        "no iat": jwt.encode({k: v for k, v in claims.items() if k != "iat"}, ours, algorithm="ES256"),
        "no subject": jwt.encode({k: v for k, v in claims.items() if k != "sub"}, ours, algorithm="ES256"),
    }


def test_forged_tokens_are_refused_everywhere(server: ServerProcess) -> None:
    assert server.data_dir is not None
    tokens = _forged_tokens(server.data_dir)
    results: dict[str, list[int]] = {}
    with Probe(server) as probe:
        for _ in range(3):  # a few rounds, to keep the attack going while the probe measures
            for name, token in tokens.items():
                got = results.setdefault(name, [])
                got.append(http(server, "POST", "/v1/identity/websocket-token", b"", token)[0])
                got.append(http(server, "POST", f"{CALL}/send_message", b'["forged"]', token)[0])
                got.append(http(server, "POST", SQL, b"SELECT * FROM user", token)[0])
                try:
                    ws = connect(server, PROTOCOL_V2, [f"Authorization: Bearer {token}"])
                except websocket.WebSocketBadStatusException as exc:
                    got.append(exc.status_code)
                else:
                    ws.close()
                    got.append(101)
    probe.check("forged tokens")
    for name, statuses in results.items():
        assert set(statuses) <= {400, 401}, f"token {name!r} got {sorted(set(statuses))}"
    # and a genuine token still works
    status, body = http(server, "POST", "/v1/identity", b"")
    assert status == 200
    token = json.loads(body)["token"]
    assert http(server, "POST", f"{CALL}/send_message", b'["genuine"]', token)[0] == 200


# ---- the worst-case queries -------------------------------------------------------------------------------
def _or_query(n: int) -> str:
    return "SELECT * FROM message WHERE " + " OR ".join(f"text = 'x{i}'" for i in range(n))


def test_a_huge_query_is_refused_without_stalling(server: ServerProcess) -> None:
    big = _or_query(100_000)
    assert len(big) > 1_500_000
    with Probe(server) as probe:
        t0 = time.monotonic()
        status, text = http(server, "POST", SQL, big.encode())
        assert status == 400 and text.strip(), (status, text[:200])
        ws = connect(server, PROTOCOL_V2)
        ws.recv()
        ws.send_binary(encode_client_frame(Subscribe(1, 1, (big,)), PROTOCOL_V2))
        ws.send_binary(encode_client_frame(OneOffQuery(2, big), PROTOCOL_V2))
        msgs, code = _recv_all(ws, PROTOCOL_V2, 3)
        ws.close()
        elapsed = time.monotonic() - t0
        assert code is None, f"closed with {code}"
        assert any(isinstance(m, SubscriptionError) for m in msgs), msgs
        assert any(isinstance(m, OneOffQueryResult) and isinstance(m.result, Err) for m in msgs), msgs
    probe.check("a 1.7 MiB query")
    assert elapsed < 10, f"refusing the huge query took {elapsed:.1f} s"


def test_a_frame_of_twenty_thousand_one_off_queries(server: ServerProcess) -> None:
    msgs = [OneOffQuery(i, "SELECT * FROM user") for i in range(1, 20_001)]
    with Probe(server) as probe:
        ws = connect(server, PROTOCOL_V3)
        ws.recv()
        ws.send_binary(encode_client_frame(msgs, PROTOCOL_V3))
        got: list[Any] = []
        deadline = time.monotonic() + 60
        code = None
        while time.monotonic() < deadline and code is None:
            more, code = _recv_all(ws, PROTOCOL_V3, 2)
            got += more
            if not more:
                break
        ws.close()
    probe.check("20,000 one-off queries in one frame")
    answered = {m.request_id for m in got if isinstance(m, OneOffQueryResult)}
    # a server may refuse such a frame (closing with a clear code) or answer every query; never half-silently
    assert code in HOSTILE_CLOSE_CODES or len(answered) == 20_000, (code, len(answered))


def test_many_query_sets_on_one_connection(server: ServerProcess) -> None:
    ws = connect(server, PROTOCOL_V3)
    ws.recv()
    subs = [Subscribe(i, i, ("SELECT * FROM user",)) for i in range(1, 15_001)]
    with Probe(server) as probe:
        for start in range(0, len(subs), 1000):
            ws.send_binary(encode_client_frame(subs[start : start + 1000], PROTOCOL_V3))
        applied = errors = 0
        deadline = time.monotonic() + 60
        code = None
        while time.monotonic() < deadline and applied + errors < len(subs) and code is None:
            more, code = _recv_all(ws, PROTOCOL_V3, 2)
            applied += sum(isinstance(m, SubscribeApplied) for m in more)
            errors += sum(isinstance(m, SubscriptionError) for m in more)
            if not more:
                break
        # every further commit (the probe's calls) is now checked against this client's sets
        time.sleep(1.0)
    ws.close()
    probe.check("15,000 query sets on one connection")
    assert code is None, f"the connection was closed ({code}) instead of refusing the extra sets"
    assert errors > 0, "no per-connection limit: all 15,000 query sets were accepted"
    assert applied + errors == len(subs), (applied, errors)


def test_a_client_that_stops_reading(server: ServerProcess) -> None:
    sleeper = connect(server, PROTOCOL_V2)
    sleeper.recv()
    sleeper.send_binary(encode_client_frame(Subscribe(1, 1, ("SELECT * FROM user",)), PROTOCOL_V2))
    writer = connect(server, PROTOCOL_V2)
    writer.recv()
    before = rss_bytes(server)
    with Probe(server) as probe:
        # each rename sends the sleeper the old and the new row: about 240 MB that it never reads,
        # while the table itself stays small
        for i in range(1, 2001):
            name = f"{i:06d}" + "z" * 60_000
            writer.send_binary(
                encode_client_frame(
                    CallReducer(i, 0, "set_name", STRING_ARG.encode({"x": name})), PROTOCOL_V2
                )
            )
            if i % 100 == 0:
                _recv_all(writer, PROTOCOL_V2, 0.01, 0.5)
        _recv_all(writer, PROTOCOL_V2, 1.0)
    grown = rss_bytes(server) - before
    writer.close()
    probe.check("a client that stops reading", min_calls=20)
    code = close_code(sleeper, 30)
    assert code in (1008, -1), f"the sleeper was not disconnected (code {code})"
    assert grown < 150 * 1024 * 1024, f"the server grew by {grown / 2**20:.0f} MiB for one sleeping client"


def test_connection_floods_do_not_starve_others(server: ServerProcess) -> None:
    opened = 0
    with Probe(server) as probe:
        deadline = time.monotonic() + ATTACK_SECONDS
        conns = []
        while time.monotonic() < deadline:
            ws = connect(server, PROTOCOL_V2)
            assert isinstance(decode_server_frame(ws.recv(), PROTOCOL_V2)[0], InitialConnection)
            conns.append(ws)
            opened += 1
            if len(conns) > 50:
                conns.pop(0).close()
        for ws in conns:
            ws.close()
    probe.check("a flood of connections")
    assert opened >= 20
