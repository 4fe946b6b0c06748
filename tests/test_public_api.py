"""The public surface of every package: each lists ``__all__``, every listed name exists, the package
exports nothing public outside it, and every public class and function says what it is for and is typed.

The packages are found on disk and the names are read from ``__all__``, so a new package or a new name
(``DevServer``, ``Transport``, ...) is checked without editing this file.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _packages() -> list[str]:
    found = (ROOT / "spacetime_game").rglob("__init__.py")
    return sorted(".".join(p.relative_to(ROOT).parent.parts) for p in found)


#: public modules that are not packages but are documented entry points with an ``__all__`` of their own
MODULES = ["spacetime_game.sdk.testing", "spacetime_game.sdk.protocol.v1"]

PACKAGES = _packages() + MODULES

#: Packages that are placeholders today: their ``__all__`` may be empty (and nothing else public).
STUBS: set[str] = set()


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


def test_every_package_is_found() -> None:
    assert {
        "spacetime_game",
        "spacetime_game.sdk",
        "spacetime_game.sdk.sats",
        "spacetime_game.sdk.protocol",
        "spacetime_game.sdk.schema",
        "spacetime_game.codegen",
        "spacetime_game.server",
        "spacetime_game.cli",
        "spacetime_game.engine",
        "spacetime_game.pygame",
        "spacetime_game.arcade",
    } <= set(PACKAGES)


@pytest.mark.parametrize("name", PACKAGES)
def test_package_has_all(name: str) -> None:
    module = _module(name)
    assert module.__doc__, f"{name} has no module docstring"
    exported = getattr(module, "__all__", None)
    assert isinstance(exported, list | tuple), f"{name} has no __all__"
    assert exported or name in STUBS, f"{name}.__all__ is empty"
    assert all(isinstance(n, str) for n in exported)
    assert len(set(exported)) == len(exported), f"{name}.__all__ lists a name twice"


@pytest.mark.parametrize("name", PACKAGES)
def test_every_name_in_all_exists(name: str) -> None:
    module = _module(name)
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names missing attributes: {missing}"
    # and star-import gives exactly those names
    namespace: dict[str, object] = {}
    exec(f"from {name} import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(module.__all__)


@pytest.mark.parametrize("name", PACKAGES)
def test_nothing_public_outside_all(name: str) -> None:
    """A class or function of ours that the package holds under a public name is listed in ``__all__``
    (or the package would export it by accident, untested); helpers take a ``_name``."""
    module = _module(name)
    for attr in dir(module):  # dir() includes the names a package loads lazily
        getattr(module, attr)
    unlisted = []
    for attr, obj in vars(module).items():
        if attr.startswith("_") or attr in module.__all__:
            continue
        home = getattr(obj, "__module__", "")
        # a package gathers its names from private modules; a plain module only answers for its own
        ours = home == name if name in MODULES else home.startswith("spacetime_game")
        if ours and (inspect.isclass(obj) or inspect.isfunction(obj)):
            unlisted.append(attr)
    assert not unlisted, f"{name} holds public names that __all__ does not list: {unlisted}"


def _unwrap(member: object) -> object:
    if isinstance(member, classmethod | staticmethod):
        return member.__func__
    if isinstance(member, property):
        return member.fget
    return member


def _is_function(cls: type, name: str) -> bool:
    return inspect.isfunction(_unwrap(vars(cls)[name]))


def _member_doc(cls: type, name: str) -> str | None:
    """The docstring of a method or property, or of the one it overrides in a base class."""
    for base in cls.__mro__:
        member = vars(base).get(name)
        if member is not None:
            doc = getattr(_unwrap(member), "__doc__", None)
            if doc:
                return str(doc)
    return None


def _exported(name: str) -> list[tuple[str, Any]]:
    module = _module(name)
    return [(attr, getattr(module, attr)) for attr in module.__all__]


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_callable_has_a_docstring(name: str) -> None:
    undocumented = []
    for attr, obj in _exported(name):
        if not (inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj)):
            continue
        if not inspect.getdoc(obj):
            undocumented.append(attr)
            continue
        if inspect.isclass(obj):
            for member_name in vars(obj):
                public = not member_name.startswith("_") and _is_function(obj, member_name)
                if public and not _member_doc(obj, member_name):
                    undocumented.append(f"{attr}.{member_name}")
    assert not undocumented, f"{name}: no docstring for {undocumented}"


def _untyped(func: Any, is_method: bool) -> list[str]:
    """The parameters (and ``return``) of ``func`` that have no annotation."""
    annotations = getattr(func, "__annotations__", {})
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):  # pragma: no cover - a C function: nothing to check
        return []
    if is_method and params and params[0].name in ("self", "cls"):
        params = params[1:]
    missing = [p.name for p in params if p.name not in annotations]
    if "return" not in annotations:
        missing.append("return")
    return missing


def _own_functions(cls: type) -> list[tuple[str, Any]]:
    """The public methods, properties and constructors that ``cls`` itself defines in our code."""
    out = []
    for member_name, member in vars(cls).items():
        if member_name.startswith("_") and member_name not in ("__init__", "__new__", "__call__"):
            continue
        func = _unwrap(member)
        if inspect.isfunction(func) and func.__module__.startswith("spacetime_game"):
            out.append((member_name, func))
    return out


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_callable_is_typed(name: str) -> None:
    """Every exported function, and every public method of an exported class, annotates each
    parameter and its return value (so games and engine adapters get checked calls)."""
    untyped = []
    for attr, obj in _exported(name):
        if inspect.isfunction(obj):
            untyped += [f"{attr}({p})" for p in _untyped(obj, is_method=False)]
        elif inspect.isclass(obj):
            for member_name, func in _own_functions(obj):
                untyped += [f"{attr}.{member_name}({p})" for p in _untyped(func, is_method=True)]
    assert not untyped, f"{name}: no annotation for {untyped}"


@pytest.mark.parametrize("name", PACKAGES)
def test_public_names_are_not_private_module_names(name: str) -> None:
    module = _module(name)
    for attr in module.__all__:
        assert not attr.startswith("_") or attr == "__version__"


def test_names_are_shared_not_copied() -> None:
    """The packages re-export the very objects of the layer that defines them (one class per concept)."""
    import spacetime_game.sdk as sdk
    import spacetime_game.sdk.protocol as protocol
    import spacetime_game.sdk.sats as sats
    import spacetime_game.server as server

    assert sdk.DecodeError is sats.DecodeError
    assert sdk.EncodeError is sats.EncodeError
    assert sdk.Address is sdk.ConnectionId
    for value_type in ("Identity", "ConnectionId", "Timestamp", "TimeDuration", "ScheduleAt"):
        assert getattr(sdk, value_type) is getattr(sats, value_type)
        assert getattr(server, value_type) is getattr(sats, value_type)
    assert protocol.InitialConnection.__module__.startswith("spacetime_game.sdk.protocol")
    assert isinstance(_module("spacetime_game").__version__, str)


def test_the_checks_can_fail() -> None:
    """The typing and ``__all__`` checks flag what they should."""

    def typed(a: int, *, b: str = "") -> None:
        """Typed."""

    def untyped(a, b: int = 0):  # type: ignore[no-untyped-def]
        """Untyped."""

    class Thing:
        def __init__(self, x: int) -> None:
            self.x = x

        def method(self, y):  # type: ignore[no-untyped-def]
            """A method."""

    Thing.__module__ = "spacetime_game.fake"
    Thing.method.__module__ = Thing.__init__.__module__ = "spacetime_game.fake"
    assert _untyped(typed, is_method=False) == []
    assert _untyped(untyped, is_method=False) == ["a", "return"]
    assert [(n, _untyped(f, is_method=True)) for n, f in _own_functions(Thing)] == [
        ("__init__", []),
        ("method", ["y", "return"]),
    ]
