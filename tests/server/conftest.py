"""A dev server on a background event loop, and a small scripted protocol client."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket  # websocket-client

from spacetime_game.sdk import Identity
from spacetime_game.sdk.protocol import (
    PROTOCOL_V2,
    CallReducer,
    ClientMessage,
    ServerMessage,
    decode_server_frame,
    encode_client_frame,
)
from spacetime_game.sdk.sats import AlgebraicType, PrimitiveType, compile_codec
from spacetime_game.server._app import ServerApp

ROOT = Path(__file__).resolve().parents[2]
CHAT = ROOT / "demos" / "chat" / "module.py"
STRING_ARG = compile_codec(AlgebraicType.product(x=PrimitiveType("String")))


class ServerThread:
    """Runs the server application on its own event loop thread, with its internals at hand (``.server``;
    tests that need no internals use the public ``spacetime_game.server.DevServer``)."""

    def __init__(
        self,
        module: Path = CHAT,
        data_dir: Path | None = None,
        database: str = "quickstart-chat",
        **options: Any,
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = ServerApp(module, database, "127.0.0.1", 0, data_dir, **options)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(30)
        self.database = database

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/database/{self.database}/subscribe"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class Client:
    """A blocking v2 protocol client for tests."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        protocol: str = PROTOCOL_V2,
        query: str = "",
        sockopt: tuple[tuple[int, int, int], ...] = (),
    ) -> None:
        headers = [f"Authorization: Bearer {token}"] if token else []
        self.protocol = protocol
        self.ws = websocket.create_connection(
            url + ("?" + query if query else ""),
            subprotocols=[protocol],
            header=headers,
            timeout=10,
            sockopt=sockopt,  # set before connecting (a receive buffer shrunk later stalls TCP)
        )
        self.pending: list[ServerMessage] = []
        self.request_id = 0

    def recv(self) -> ServerMessage:
        while not self.pending:
            frame = self.ws.recv()
            assert isinstance(frame, bytes), f"expected a binary frame, got {frame!r}"
            self.pending.extend(decode_server_frame(frame, self.protocol))
        return self.pending.pop(0)

    def recv_type(self, cls: type) -> Any:
        msg = self.recv()
        assert isinstance(msg, cls), f"expected {cls.__name__}, got {msg!r}"
        return msg

    def send(self, msg: ClientMessage) -> None:
        self.ws.send_binary(encode_client_frame(msg, self.protocol))

    def call(self, reducer: str, arg: str) -> int:
        self.request_id += 1
        self.send(CallReducer(self.request_id, 0, reducer, STRING_ARG.encode({"x": arg})))
        return self.request_id

    def close(self) -> None:
        self.ws.close()


@pytest.fixture()
def server() -> Iterator[ServerThread]:
    s = ServerThread()
    try:
        yield s
    finally:
        s.stop()


def identity_of(msg: Any) -> Identity:
    return msg.identity  # type: ignore[no-any-return]
