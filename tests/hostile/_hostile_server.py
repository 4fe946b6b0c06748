"""A hostile SpacetimeDB server for the client's hostile-input suite, in its own process.

Run as ``python _hostile_server.py SEED ATTACK_SECONDS``; it prints ``port N`` once it listens. It serves the
quickstart-chat schema at ``/v1/database/db/subscribe`` and keeps one true state (users and messages) across
connections. For the first ATTACK_SECONDS each connection gets a valid start (InitialConnection, then the
SubscribeApplied of the true state), then a stream of valid transactions mixed with hostile frames: mutated
and random bytes, text frames, compression bombs, unknown compression tags, and messages that make no sense
in the protocol. Some connections also ignore the client's close handshake and hold the socket open. After
that it serves honestly, so a client that recovers ends with exactly the true state, which ``GET /state``
returns as JSON. A line on stdin (or its end) stops the server.
"""

from __future__ import annotations

import asyncio
import random
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from spacetime_game.sdk import ConnectionId, Identity, Timestamp
from spacetime_game.sdk.protocol import (
    PROTOCOL_V2,
    PROTOCOL_V3,
    BsatnRowList,
    InitialConnection,
    PersistentTableRows,
    QueryRows,
    QuerySetUpdate,
    ReducerOk,
    ReducerResult,
    SingleTableRows,
    Subscribe,
    SubscribeApplied,
    SubscriptionError,
    TableUpdate,
    TransactionUpdate,
    UnsubscribeApplied,
    decode_client_frame,
    encode_server_frame,
)
from spacetime_game.sdk.sats import compile_codec
from spacetime_game.server import load_module

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = load_module(ROOT / "demos" / "chat" / "module.py").schema()


class _RowCodec:
    """Encodes a row of one table given as a tuple in column order."""

    def __init__(self, table: str) -> None:
        row_type = SCHEMA.table(table).row_type
        self._codec = compile_codec(row_type, SCHEMA.typespace)
        self._names = row_type.names

    def encode(self, row: tuple[Any, ...]) -> bytes:
        return self._codec.encode(dict(zip(self._names, row, strict=True)))


USER = _RowCodec("user")
MESSAGE = _RowCodec("message")


def _bomb(kind: str, inflated: int) -> bytes:
    """A frame that inflates to ``inflated`` zero bytes, built without holding them."""
    chunk = b"\x00" * (1 << 20)
    if kind == "gzip":
        c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        parts = [c.compress(chunk) for _ in range(inflated >> 20)]
        return b"\x02" + b"".join(parts) + c.flush()
    import brotli

    b = brotli.Compressor(quality=5)
    parts = [b.process(chunk) for _ in range(inflated >> 20)]
    return b"\x01" + b"".join(parts) + b.finish()


class World:
    """The true state, and the hostile frames."""

    def __init__(self, seed: int, attack_seconds: float) -> None:
        self.rng = random.Random(seed)
        self.attack_seconds = attack_seconds
        self.until: float | None = None  # the attack starts with the first connection
        self.sent: dict[str, int] = {}
        self.users: dict[bytes, tuple[Any, ...]] = {}  # identity bytes -> row
        self.messages: list[tuple[Any, ...]] = []
        self.next_id = 1
        for _ in range(5):
            self._new_user()
        self.bombs = {"gzip": _bomb("gzip", 1 << 30), "brotli": _bomb("brotli", 1 << 30)}

    @property
    def attacking(self) -> bool:
        if self.until is None:
            self.until = time.monotonic() + self.attack_seconds
        return time.monotonic() < self.until

    def _new_user(self) -> tuple[Any, ...]:
        ident = Identity(self.rng.randbytes(32))
        row = (ident, f"user{self.next_id}", True)
        self.next_id += 1
        self.users[bytes(ident.data)] = row
        return row

    def snapshot(self) -> QueryRows:
        return QueryRows(
            (
                SingleTableRows(
                    "user", BsatnRowList.from_rows([USER.encode(r) for r in self.users.values()])
                ),
                SingleTableRows(
                    "message", BsatnRowList.from_rows([MESSAGE.encode(r) for r in self.messages])
                ),
            )
        )

    def transaction(self, qs: int) -> TransactionUpdate:
        """Change the true state a little and return the update that says so."""
        uins: list[bytes] = []
        udel: list[bytes] = []
        mins: list[bytes] = []
        mdel: list[bytes] = []
        roll = self.rng.random()
        if roll < 0.4 or not self.users:
            sender = self.rng.choice(list(self.users.values()))[0] if self.users else self._new_user()[0]
            msg = (sender, Timestamp(1_700_000_000_000_000 + self.next_id), f"hello {self.next_id}")
            self.next_id += 1
            self.messages.append(msg)
            mins.append(MESSAGE.encode(msg))
        elif roll < 0.7:
            key = self.rng.choice(list(self.users))
            old = self.users[key]
            new = (old[0], f"renamed{self.next_id}", not old[2])
            self.next_id += 1
            self.users[key] = new
            udel.append(USER.encode(old))
            uins.append(USER.encode(new))
        elif roll < 0.85 and self.messages:
            mdel.append(MESSAGE.encode(self.messages.pop(self.rng.randrange(len(self.messages)))))
        else:
            uins.append(USER.encode(self._new_user()))
        tables = []
        if uins or udel:
            tables.append(
                TableUpdate(
                    "user", (PersistentTableRows(BsatnRowList.from_rows(uins), BsatnRowList.from_rows(udel)),)
                )
            )
        if mins or mdel:
            tables.append(
                TableUpdate(
                    "message",
                    (PersistentTableRows(BsatnRowList.from_rows(mins), BsatnRowList.from_rows(mdel)),),
                )
            )
        return TransactionUpdate((QuerySetUpdate(qs, tuple(tables)),))

    def hostile(self, protocol: str, qs: int) -> tuple[str, bytes | str]:
        """One hostile frame: (kind, data). The true state does not change."""
        rng = self.rng
        kind = rng.choice(
            [
                "mutated",
                "mutated",
                "mutated",
                "random",
                "text",
                "bomb",
                "tag",
                "empty",
                "nonsense",
                "nonsense",
            ]
        )
        if kind == "text":
            return kind, "{}"
        if kind == "random":
            return kind, rng.randbytes(rng.randrange(1, 2048))
        if kind == "empty":
            return kind, b""
        if kind == "tag":
            return kind, bytes([rng.randrange(3, 256)]) + rng.randbytes(16)
        if kind == "bomb":
            return kind, self.bombs[rng.choice(["gzip", "brotli"])]
        if kind == "nonsense":
            ident = Identity(rng.randbytes(32))
            rows = QueryRows(
                (SingleTableRows("user", BsatnRowList.from_rows([USER.encode((ident, "ghost", True))])),)
            )
            msg = rng.choice(
                [
                    SubscribeApplied(rng.randrange(1000, 2000), qs + 1000, rows),  # a set never requested
                    UnsubscribeApplied(rng.randrange(1000, 2000), qs + 1000, rows),
                    SubscriptionError(rng.randrange(1000, 2000), qs + 1000, "no such set"),
                    ReducerResult(
                        rng.randrange(100_000, 200_000),
                        Timestamp(0),
                        ReducerOk(b"", TransactionUpdate(())),
                    ),  # a request never sent
                    InitialConnection(ident, ConnectionId(rng.randbytes(16)), "again"),  # a second one
                ]
            )
            return kind, encode_server_frame(msg, protocol)
        # mutated: a valid transaction's frame with a flipped bit, a cut, or a huge count
        frame = bytearray(encode_server_frame(self.transaction_preview(qs), protocol))
        how = rng.randrange(3)
        if how == 0:
            i = rng.randrange(1, len(frame))
            frame[i] ^= 1 << rng.randrange(8)
        elif how == 1:
            del frame[rng.randrange(1, len(frame)) :]
        else:
            i = rng.randrange(1, max(2, len(frame) - 4))
            frame[i : i + 4] = b"\xff\xff\xff\x7f"
        return kind, bytes(frame)

    def transaction_preview(self, qs: int) -> TransactionUpdate:
        """A plausible transaction that does not change the true state (for mutation)."""
        ident = Identity(self.rng.randbytes(32))
        msg = (ident, Timestamp(1), "mutant " * self.rng.randrange(1, 20))
        return TransactionUpdate(
            (
                QuerySetUpdate(
                    qs,
                    (
                        TableUpdate(
                            "message",
                            (
                                PersistentTableRows(
                                    BsatnRowList.from_rows([MESSAGE.encode(msg)]), BsatnRowList.from_rows([])
                                ),
                            ),
                        ),
                    ),
                ),
            )
        )

    def state_json(self) -> dict[str, Any]:
        return {
            "users": sorted([str(r[0]), r[1], r[2]] for r in self.users.values()),
            "messages": sorted([str(r[0]), r[1].micros_since_epoch, r[2]] for r in self.messages),
        }


async def main(seed: int, attack_seconds: float) -> None:
    world = World(seed, attack_seconds)

    async def subscribe(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(protocols=(PROTOCOL_V3, PROTOCOL_V2), autoping=True, compress=False)
        await ws.prepare(request)
        protocol = ws.ws_protocol or PROTOCOL_V2
        rng = world.rng
        attacking = world.attacking
        ignore_close = attacking and rng.random() < 0.3
        await ws.send_bytes(
            encode_server_frame(
                InitialConnection(Identity(b"\x02" * 32), ConnectionId(rng.randbytes(16)), "token"), protocol
            )
        )
        query_sets: list[int] = []

        async def reader() -> None:
            async for msg in ws:
                if msg.type != WSMsgType.BINARY:
                    break
                for m in decode_client_frame(msg.data, protocol):
                    if isinstance(m, Subscribe):
                        query_sets.append(m.query_set_id)
                        await ws.send_bytes(
                            encode_server_frame(
                                SubscribeApplied(m.request_id, m.query_set_id, world.snapshot()), protocol
                            )
                        )

        read = asyncio.ensure_future(reader())
        try:
            while not read.done():
                await asyncio.sleep(rng.uniform(0.002, 0.02))
                if attacking and not world.attacking:
                    # the attack is over: drop the connection, so that the client comes back and
                    # reconciles away whatever a mutated frame that still decoded left in its cache
                    break
                if not query_sets:
                    continue
                if world.attacking and rng.random() < 0.12:
                    kind, data = world.hostile(protocol, query_sets[0])
                    world.sent[kind] = world.sent.get(kind, 0) + 1
                    if isinstance(data, str):
                        await ws.send_str(data)
                    else:
                        await ws.send_bytes(data)
                    if ignore_close:  # hold the socket open and answer nothing, close handshake included
                        read.cancel()
                        await asyncio.sleep(3)
                        break
                elif rng.random() < (0.5 if world.attacking else 0.05):
                    await ws.send_bytes(encode_server_frame(world.transaction(query_sets[0]), protocol))
        except (ConnectionError, RuntimeError):
            pass
        finally:
            read.cancel()
            if request.transport is not None:
                request.transport.abort()
        return ws

    async def state(request: web.Request) -> web.Response:
        return web.json_response({**world.state_json(), "sent": world.sent})

    app = web.Application()
    app.add_routes([web.get("/v1/database/db/subscribe", subscribe), web.get("/state", state)])
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"port {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    threading.Thread(
        target=lambda: (sys.stdin.readline(), loop.call_soon_threadsafe(stop.set)), daemon=True
    ).start()
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
