"""A well-behaved client in its own process: it calls a reducer over and over and records each round trip.

Run as ``python _probe.py HOST:PORT DATABASE``. It prints ``ready`` once connected, then calls ``set_name``
back to back (with a short pause between calls) until a line arrives on stdin, then prints one JSON line:
``{"rtts": [seconds, ...], "errors": [...]}``. Being a separate process, it measures what any other
player of the server would see while a hostile client runs, without sharing a GIL with the attacker.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import websocket

from spacetime_game.sdk.protocol import (
    PROTOCOL_V2,
    CallReducer,
    ReducerOk,
    ReducerResult,
    decode_server_frame,
    encode_client_frame,
)
from spacetime_game.sdk.sats import AlgebraicType, PrimitiveType, compile_codec

STRING_ARG = compile_codec(AlgebraicType.product(x=PrimitiveType("String")))
PAUSE = 0.004  # between calls: about 200 calls a second


def main() -> int:
    host, database = sys.argv[1], sys.argv[2]
    url = f"ws://{host}/v1/database/{database}/subscribe?compression=None"
    ws = websocket.create_connection(url, subprotocols=[PROTOCOL_V2], timeout=10)
    ws.recv()  # InitialConnection
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    print("ready", flush=True)
    rtts: list[float] = []
    errors: list[str] = []
    request_id = 0
    while not stop.is_set():
        request_id += 1
        msg = CallReducer(request_id, 0, "set_name", STRING_ARG.encode({"x": f"probe {request_id % 97}"}))
        t0 = time.perf_counter()
        try:
            ws.send_binary(encode_client_frame(msg, PROTOCOL_V2))
            while True:
                replies = decode_server_frame(ws.recv(), PROTOCOL_V2)
                done = [m for m in replies if isinstance(m, ReducerResult) and m.request_id == request_id]
                if done:
                    break
        except Exception as exc:  # the probe reports; the test decides
            errors.append(f"{type(exc).__name__}: {exc}")
            break
        rtts.append(time.perf_counter() - t0)
        if not isinstance(done[0].result, ReducerOk):
            errors.append(f"call {request_id} failed: {done[0].result!r}")
        time.sleep(PAUSE)
    ws.close()
    print(json.dumps({"rtts": rtts, "errors": errors}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
