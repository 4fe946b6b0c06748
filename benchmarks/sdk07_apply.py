"""The original Python SDK's side of `python -m benchmarks.compare`: PyPI ``spacetimedb-sdk`` 0.7.0.

    python benchmarks/sdk07_apply.py frames SHAPE N UPDATES OUT
        Write the messages of one case as the JSON text protocol of server 0.7/0.8 (``v1.text.spacetimedb``)
        sent them, one per line after a first line that describes the expected final state: IdentityToken,
        a SubscriptionUpdate of N row inserts, then UPDATES TransactionUpdates of 100 row updates each (a
        delete and an insert of the same key, each with its ``row_pk``). These are the same rows, in the same
        order, as benchmarks/ts_apply.mjs serializes for the other two contenders. Needs only the standard
        library, so any Python runs it.
    SDK07_PYTHON benchmarks/sdk07_apply.py run FRAMES
        In a virtual environment where ``spacetimedb-sdk==0.7.0`` is installed: write 0.7-style bindings for
        the case's table (the shape that SDK's code generator produced: a table class with ``is_table_class``,
        ``primary_key`` and a ``data`` dict filled from the positional JSON row), make a
        ``SpacetimeDBClient`` over them, register a row-update callback, and feed the lines to the SDK's own
        message handler (``_on_message``, the function its websocket thread calls for each frame), then
        ``update()``. Prints one JSON line: the time to apply the SubscriptionUpdate and the update stream,
        and a checksum of the final cache for the caller to compare.

The SDK's websocket client is never started (it could not talk to any server of today); calling
``_on_message`` on this thread spares it the thread the SDK starts for each incoming frame, so the SDK is
measured at its best. Each ``run`` applies the case once untimed first, on another client, as the other
contenders are warm too.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SHAPES = ("fixed_shared", "fixed_distinct", "variable")


# ----- the rows (benchmarks/ts_apply.mjs's makeRow and checksumRow, in Python) ------------------------------
def _f32(v: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", v))[0])


def identity_hex(i: int) -> str:
    return f"{((i + 1) * 0x9E3779B97F4A7C15) % (1 << 256):064x}"


def json_row(shape: str, id_: int, version: int) -> list[Any]:
    """One row as SATS-JSON of that era: a product is a positional array, an Identity a one-element array
    holding its hex, an option ``{"0": value}`` (some) or ``{"1": []}`` (none)."""
    if shape == "variable":
        tags = [id_ * 7 + k for k in range((id_ + version) % 4)]
        nick: dict[str, Any] = {"1": []} if (id_ + version) % 3 == 0 else {"0": f"n{id_ % 1000}"}
        return [id_, f"item-{id_}-v{version}", nick, tags]
    owner = id_ % 16 if shape == "fixed_shared" else id_
    return [id_, [identity_hex(owner)], _f32(id_ * 0.5 + version), _f32(-id_ * 0.25), 100 + version]


def checksum_json_row(shape: str, row: list[Any]) -> int:
    if shape == "variable":
        nick = row[2].get("0")
        return int(row[0] * 31 + len(row[1]) + (0 if nick is None else len(nick) * 7) + sum(row[3]))
    return int(row[0] * 31 + row[4] + round(row[2] * 4) + int(row[1][0], 16) % 1000)


def _row_op(op: str, row: list[Any]) -> dict[str, Any]:
    text = json.dumps(row, separators=(",", ":"))
    row_pk = base64.b64encode(hashlib.blake2b(text.encode(), digest_size=32).digest()).decode()
    return {"op": op, "row_pk": row_pk, "row": row}


def make_frames(shape: str, n: int, updates: int) -> tuple[dict[str, Any], list[str]]:
    table = "Item" if shape == "variable" else "Entity"
    version = [0] * n
    frames = [
        json.dumps(
            {
                "IdentityToken": {
                    "identity": identity_hex(999999),
                    "token": "bench-token",
                    "address": "00000000000000000000000000000007",
                }
            }
        )
    ]
    ops = [_row_op("insert", json_row(shape, i, 0)) for i in range(n)]
    update = {"table_updates": [{"table_id": 0, "table_name": table, "table_row_operations": ops}]}
    frames.append(json.dumps({"SubscriptionUpdate": update}))
    nxt = 0
    for u in range(updates):
        ops = []
        for _ in range(100):
            i, nxt = nxt, (nxt + 1) % n
            ops.append(_row_op("delete", json_row(shape, i, version[i])))
            version[i] += 1
            ops.append(_row_op("insert", json_row(shape, i, version[i])))
        event = {
            "timestamp": 1_700_000_000_000_000 + u,
            "status": "committed",
            "caller_identity": identity_hex(999999),
            "caller_address": "00000000000000000000000000000007",
            "function_call": {"reducer": "tick", "args": "[]"},
            "energy_quanta_used": 0,
            "message": "",
        }
        table_update = {"table_id": 0, "table_name": table, "table_row_operations": ops}
        frames.append(
            json.dumps(
                {
                    "TransactionUpdate": {
                        "event": event,
                        "subscription_update": {"table_updates": [table_update]},
                    }
                }
            )
        )
    checksum = sum(checksum_json_row(shape, json_row(shape, i, version[i])) for i in range(n))
    return {"shape": shape, "table": table, "rows": n, "updates": updates, "checksum": checksum}, frames


# ----- 0.7-style bindings ---------------------------------------------------------------------------------------
_HEADER = "# 0.7-style bindings, written by benchmarks/sdk07_apply.py\nfrom __future__ import annotations\n"
_TABLES = {
    "Entity": (
        "entity",
        [
            ("id", "int(data[0])"),
            ("owner", "Identity.from_string(data[1][0])"),
            ("x", "float(data[2])"),
            ("y", "float(data[3])"),
            ("hp", "int(data[4])"),
        ],
    ),
    "Item": (
        "item",
        [
            ("id", "int(data[0])"),
            ("name", "str(data[1])"),
            ("nick", "str(data[2]['0']) if '0' in data[2] else None"),
            ("tags", "[int(e) for e in data[3]]"),
        ],
    ),
}


def write_bindings(folder: Path) -> None:
    """A bindings package in the shape of the 0.7 generator's output: one file per table, no __init__."""
    folder.mkdir(parents=True)
    for cls, (module, columns) in _TABLES.items():
        fields = "".join(f"        self.data[{name!r}] = {expr}\n" for name, expr in columns)
        (folder / f"{module}.py").write_text(
            _HEADER
            + "from typing import Callable, Iterator, List\n"
            + "from spacetimedb_sdk.spacetimedb_client import Identity, ReducerEvent, SpacetimeDBClient\n\n\n"
            + f"class {cls}:\n"
            + "    is_table_class = True\n"
            + "    primary_key = 'id'\n\n"
            + "    @classmethod\n"
            + f"    def register_row_update(cls, callback: Callable[[str, {cls}, {cls}, ReducerEvent], None]):\n"
            + f"        SpacetimeDBClient.instance._register_row_update({cls!r}, callback)\n\n"
            + "    @classmethod\n"
            + f"    def iter(cls) -> Iterator[{cls}]:\n"
            + f"        return SpacetimeDBClient.instance._get_table_cache({cls!r}).values()\n\n"
            + "    def __init__(self, data: List[object]):\n"
            + "        self.data = {}\n"
            + fields
            + "\n    def __getattr__(self, name: str):\n"
            + "        return self.data.get(name)\n"
        )


def checksum_row(shape: str, row: Any) -> int:
    if shape == "variable":
        s = row.id * 31 + len(row.name) + (0 if row.nick is None else len(row.nick) * 7)
        return int(s + sum(row.tags))
    return int(row.id * 31 + row.hp + round(row.x * 4) + int(str(row.owner), 16) % 1000)


def apply(package: Any, expected: dict[str, Any], frames: list[str]) -> dict[str, Any]:
    from spacetimedb_sdk.spacetimedb_client import SpacetimeDBClient

    client = SpacetimeDBClient(package)
    # what connect() sets before it starts the websocket, which is not started here
    client._on_connect = client._on_disconnect = client._on_identity = client._on_error = None
    table = getattr(
        importlib.import_module(f"{package.__name__}.{expected['table'].lower()}"), expected["table"]
    )
    counts = {"insert": 0, "update": 0}

    def on_row(op: str, old: Any, new: Any, event: Any) -> None:
        counts[op] = counts.get(op, 0) + 1

    table.register_row_update(on_row)
    client._on_message(frames[0])
    client.update()
    t0 = time.perf_counter()
    client._on_message(frames[1])
    client.update()
    initial = time.perf_counter() - t0
    t0 = time.perf_counter()
    for frame in frames[2:]:
        client._on_message(frame)
    client.update()
    updates = time.perf_counter() - t0
    rows = list(table.iter())
    checksum = sum(checksum_row(expected["shape"], r) for r in rows)
    ok = (
        len(rows) == expected["rows"]
        and checksum == expected["checksum"]
        and counts["insert"] == expected["rows"]
        and counts["update"] == expected["updates"] * 100
    )
    return {
        "initial_ms": initial * 1000,
        "updates_ms": updates * 1000,
        "rows": len(rows),
        "checksum": checksum,
        "callbacks": counts,
        "ok": ok,
    }


def main(argv: list[str]) -> int:
    if argv[:1] == ["frames"] and len(argv) == 5:
        shape, n, updates, out = argv[1], int(argv[2]), int(argv[3]), Path(argv[4])
        if shape not in SHAPES:
            raise SystemExit(f"unknown shape {shape!r}")
        expected, frames = make_frames(shape, n, updates)
        out.write_text("\n".join([json.dumps(expected), *frames]) + "\n")
        return 0
    if argv[:1] == ["run"] and len(argv) == 2:
        lines = Path(argv[1]).read_text().splitlines()
        expected, frames = json.loads(lines[0]), lines[1:]
        with tempfile.TemporaryDirectory() as tmp:
            write_bindings(Path(tmp) / "sdk07_bindings")
            sys.path.insert(0, tmp)
            package = importlib.import_module("sdk07_bindings")
            apply(package, expected, frames)  # warm, untimed
            result = apply(package, expected, frames)
        print(json.dumps(result))
        return 0 if result["ok"] else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
