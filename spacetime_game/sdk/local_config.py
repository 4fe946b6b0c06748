"""The documented ``local_config`` of the 0.x SDK: a small settings file for tokens.

``init()`` picks ``~/.spacetime_python_sdk/settings.ini``; a profile (``--client N`` on the command
line as in the 0.x quickstart, ``SPACETIME_GAME_PROFILE``, or ``init(profile=...)``) gives
``settings_<profile>.ini`` so that two identities can run on one machine. Writes are atomic and the
file is readable only by its owner (mode 0600).
"""

from __future__ import annotations

import configparser
import os
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["config_path", "get_string", "init", "set_config", "set_string"]

_SECTION = "main"
_lock = threading.Lock()
_path: Path | None = None
_config: configparser.ConfigParser | None = None


def _profile_from_argv(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--client" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--client="):
            return arg.split("=", 1)[1]
    return None


def init(
    config_folder: str = ".spacetime_python_sdk",
    config_file: str = "settings.ini",
    config_root: str | Path | None = None,
    config_defaults: Mapping[str, str] | None = None,
    *,
    profile: str | None = None,
) -> Path:
    """Choose and load the settings file (documented signature, plus ``profile``). Returns its path."""
    global _path, _config
    root = Path(config_root) if config_root is not None else Path.home()
    profile = profile or os.environ.get("SPACETIME_GAME_PROFILE") or _profile_from_argv(sys.argv[1:])
    name = config_file
    if profile:
        stem, dot, ext = config_file.rpartition(".")
        name = f"{stem}_{profile}.{ext}" if dot else f"{config_file}_{profile}"
    path = root / config_folder / name
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.optionxform = str  # type: ignore[assignment,method-assign]  # keep key case
    if path.exists():
        cfg.read(path, encoding="utf-8")
    if not cfg.has_section(_SECTION):
        cfg.add_section(_SECTION)
    for k, v in (config_defaults or {}).items():
        if not cfg.has_option(_SECTION, k):
            cfg.set(_SECTION, k, str(v))
    with _lock:
        _path, _config = path, cfg
    return path


def config_path() -> Path | None:
    """The settings file in use (None before :func:`init`)."""
    return _path


def _ensure() -> configparser.ConfigParser:
    if _config is None:
        init()
    assert _config is not None
    return _config


def get_string(key: str) -> str | None:
    """The value of ``key``, or None."""
    cfg = _ensure()
    return cfg.get(_SECTION, key, fallback=None)


def set_string(key: str, value: str) -> None:
    """Set ``key`` and write the file at once (atomically, mode 0600)."""
    if not isinstance(value, str):
        raise TypeError(f"value must be str, got {type(value).__name__}")
    cfg = _ensure()
    with _lock:
        cfg.set(_SECTION, key, value)
        _write(cfg)


def set_config(items: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
    """Set several keys at once (a dict or (key, value) pairs) and write the file."""
    cfg = _ensure()
    pairs = items.items() if isinstance(items, Mapping) else items
    with _lock:
        for k, v in pairs:
            cfg.set(_SECTION, k, str(v))
        _write(cfg)


def _write(cfg: configparser.ConfigParser) -> None:
    assert _path is not None
    _path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".settings-", dir=_path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            cfg.write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, _path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
