"""The public surface: each package lists ``__all__``, every listed name exists, and every public class
and function says what it is for."""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType

import pytest

PACKAGES = [
    "spacetime_game",
    "spacetime_game.sdk",
    "spacetime_game.sdk.sats",
    "spacetime_game.sdk.protocol",
    "spacetime_game.sdk.testing",
]


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


@pytest.mark.parametrize("name", PACKAGES)
def test_package_has_all(name: str) -> None:
    module = _module(name)
    assert module.__doc__, f"{name} has no module docstring"
    exported = getattr(module, "__all__", None)
    assert isinstance(exported, list | tuple), f"{name} has no __all__"
    assert exported, f"{name}.__all__ is empty"
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


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_callable_has_a_docstring(name: str) -> None:
    module = _module(name)
    undocumented = []
    for attr in module.__all__:
        obj = getattr(module, attr)
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


@pytest.mark.parametrize("name", PACKAGES)
def test_public_names_are_not_private_module_names(name: str) -> None:
    module = _module(name)
    for attr in module.__all__:
        assert not attr.startswith("_") or attr == "__version__"


def test_names_are_shared_not_copied() -> None:
    """The sdk re-exports the very objects of its subpackages (one class per concept)."""
    import spacetime_game.sdk as sdk
    import spacetime_game.sdk.protocol as protocol
    import spacetime_game.sdk.sats as sats

    assert sdk.DecodeError is sats.DecodeError
    assert sdk.EncodeError is sats.EncodeError
    assert sdk.Address is sdk.ConnectionId
    assert protocol.InitialConnection.__module__.startswith("spacetime_game.sdk.protocol")
    assert isinstance(_module("spacetime_game").__version__, str)
