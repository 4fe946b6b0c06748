"""The layers of docs/architecture.md hold at import time.

Each package is imported in a fresh interpreter (plain ``import`` and then ``from ... import *``, which
touches every exported name, lazy ones included), and the modules it loaded are checked against what its
layer may import: no higher ``spacetime_game`` layer, and none of the heavy libraries that belong to
another layer (websocket-client to the client, aiohttp to the server, the engines to their adapters).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SATS = "spacetime_game.sdk.sats"
PROTOCOL = "spacetime_game.sdk.protocol"
SCHEMA = "spacetime_game.sdk.schema"
SDK = "spacetime_game.sdk"  # the whole SDK, client included
CODEGEN = "spacetime_game.codegen"
ENGINE = "spacetime_game.engine"
PYGAME = "spacetime_game.pygame"
ARCADE = "spacetime_game.arcade"
SERVER = "spacetime_game.server"
CLI = "spacetime_game.cli"

#: Third-party libraries that belong to one layer or another (top-level module names).
HEAVY = frozenset(
    {
        "websocket",
        "brotli",
        "aiohttp",
        "sqlglot",
        "jwt",
        "cryptography",
        "blake3",
        "pydantic",
        "pygame",
        "arcade",
        "pyglet",
    }
)
SERVER_LIBS = frozenset({"aiohttp", "sqlglot", "jwt", "cryptography", "blake3", "brotli", "pydantic"})
CLIENT_LIBS = frozenset({"websocket", "brotli", "pydantic"})


@dataclass(frozen=True)
class Layer:
    """What importing ``package`` may load: modules of ``packages`` (and the parent packages of
    each, which Python always runs), and the heavy libraries ``libs``. With ``stdlib_only``, no
    third-party module at all."""

    package: str
    packages: frozenset[str]
    libs: frozenset[str] = frozenset()
    stdlib_only: bool = False


LAYERS = [
    Layer("spacetime_game", frozenset(), stdlib_only=True),
    Layer(SATS, frozenset({SATS}), stdlib_only=True),
    Layer(PROTOCOL, frozenset({SATS, PROTOCOL}), stdlib_only=True),
    Layer(SCHEMA, frozenset({SATS, SCHEMA}), frozenset({"pydantic"})),
    Layer(SDK, frozenset({SDK}), CLIENT_LIBS),
    Layer(CODEGEN, frozenset({SATS, SCHEMA, CODEGEN}), frozenset({"pydantic"})),
    Layer(ENGINE, frozenset({SDK, ENGINE}), CLIENT_LIBS),
    Layer(PYGAME, frozenset({SDK, ENGINE, PYGAME}), CLIENT_LIBS | {"pygame"}),
    Layer(ARCADE, frozenset({SDK, ENGINE, ARCADE}), CLIENT_LIBS | {"arcade", "pyglet"}),
    Layer(SERVER, frozenset({SATS, PROTOCOL, SCHEMA, SERVER}), SERVER_LIBS),
    # the command imports everything it needs inside the command that needs it
    Layer(CLI, frozenset({CLI})),
]

# Modules of the SDK's client layer that the lower layers must never load (a sample that exists today;
# the check below covers every module of the client layer, whatever its name).
CLIENT_MODULES = ("spacetime_game.sdk._client", "spacetime_game.sdk._transport", "spacetime_game.sdk._cache")

_PROBE = """
import json, sys
before = set(sys.modules)
import {name}
after_import = sorted(set(sys.modules) - before)
from {name} import *
after_star = sorted(set(sys.modules) - before)
print(json.dumps({{"import": after_import, "star": after_star}}))
"""


def _loaded(name: str) -> dict[str, list[str]]:
    """The modules that ``import name`` and then ``from name import *`` load in a fresh interpreter."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE.format(name=name)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"import {name} failed:\n{proc.stderr}"
    result: dict[str, list[str]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _own_allowed(module: str, layer: Layer) -> bool:
    """Whether a ``spacetime_game`` module may be loaded by ``layer``."""
    for package in layer.packages | {layer.package}:
        if module == package or module.startswith(package + "."):
            return True
        if package.startswith(module + "."):
            return True  # a parent package, which Python runs first
    return False


def _is_stdlib(top: str) -> bool:
    return top in sys.stdlib_module_names or top.startswith("_sysconfigdata")


def _violations(layer: Layer, modules: list[str]) -> list[str]:
    bad = []
    for module in modules:
        top = module.split(".")[0]
        if top == "spacetime_game":
            if not _own_allowed(module, layer):
                bad.append(module)
        elif top in HEAVY:
            if top not in layer.libs:
                bad.append(module)
        elif layer.stdlib_only and not _is_stdlib(top):
            bad.append(module)
    return bad


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.package)
def test_import_loads_only_its_layer(layer: Layer) -> None:
    loaded = _loaded(layer.package)
    for how in ("import", "star"):
        bad = _violations(layer, loaded[how])
        assert not bad, (
            f"{'import' if how == 'import' else 'from ... import *'} {layer.package} loads modules "
            f"outside its layer (docs/architecture.md, 'Layers and packages'): {sorted(bad)}"
        )


@pytest.mark.parametrize("name", [SATS, PROTOCOL, SCHEMA, CODEGEN, SERVER])
def test_lower_layers_load_no_client(name: str) -> None:
    """Spelled out for the client modules, so a failure names what leaked."""
    loaded = _loaded(name)
    for how in ("import", "star"):
        modules = set(loaded[how])
        leaked = sorted(m for m in modules if m in CLIENT_MODULES or m.split(".")[0] == "websocket")
        assert not leaked, f"{name} loads client code: {leaked}"


def test_the_checker_sees_a_violation() -> None:
    """The check itself: client modules and websocket are outside the sats layer, its parents are not."""
    sats = LAYERS[1]
    assert _violations(sats, ["spacetime_game", SDK, f"{SATS}._bsatn", "json"]) == []
    assert _violations(sats, [*CLIENT_MODULES, "websocket._abnf", PROTOCOL, "pydantic", "yaml"]) == [
        *CLIENT_MODULES,
        "websocket._abnf",
        PROTOCOL,
        "pydantic",
        "yaml",
    ]
    server = next(layer for layer in LAYERS if layer.package == SERVER)
    assert _violations(server, ["aiohttp.web", "yarl", f"{PROTOCOL}._frames"]) == []
    assert _violations(server, ["spacetime_game.sdk.spacetimedb_client", CODEGEN, "pygame"]) == [
        "spacetime_game.sdk.spacetimedb_client",
        CODEGEN,
        "pygame",
    ]


def test_every_package_has_a_layer() -> None:
    found = (p.relative_to(ROOT).parent.parts for p in (ROOT / "spacetime_game").rglob("__init__.py"))
    # a private package (server/_sql) is part of the package that holds it
    packages = {".".join(parts) for parts in found if not any(part.startswith("_") for part in parts)}
    assert packages == {layer.package for layer in LAYERS}, "add the new package to LAYERS"


_ROUND_TRIP = """
import sys
import spacetime_game.sdk.sats as sats

identity = sats.Identity.from_string("0x" + "ab" * 31 + "01")
codec = sats.compile_codec(sats.AlgebraicType.special("identity"))
data = codec.encode(identity)
assert data == bytes(identity) and data[0] == 0x01, data.hex()
back = codec.decode(data)
assert type(back) is sats.Identity and back == identity, repr(back)
stamp = sats.compile_codec(sats.AlgebraicType.special("timestamp"))
assert stamp.decode(stamp.encode(sats.Timestamp(1_700_000_000_000_000))) == sats.Timestamp(1_700_000_000_000_000)
ident = sats.AlgebraicType.special("identity")
assert sats.from_json(sats.to_json(identity, ident), ident) == identity
assert "spacetime_game.sdk._client" not in sys.modules
print("ok")
"""


def test_identity_round_trips_after_importing_only_sats() -> None:
    """The special types are bound by the sats package itself, with no other import needed."""
    proc = subprocess.run(
        [sys.executable, "-c", _ROUND_TRIP], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_sdk_reexports_the_sats_value_types() -> None:
    import spacetime_game.sdk as sdk
    import spacetime_game.sdk.sats as sats

    for name in ("Identity", "ConnectionId", "Address", "Timestamp", "TimeDuration", "ScheduleAt"):
        assert getattr(sdk, name) is getattr(sats, name), name
