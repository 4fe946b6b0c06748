"""Private files and folders of the dev server: data files are mode 0600 and folders 0700 (POSIX), whatever
the umask, and files are replaced atomically."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from ._logsafe import server_logger

__all__ = ["ensure_private_dir", "fsync_dir", "restrict_mode", "write_atomic"]

logger = server_logger("spacetime_game.server.files")

#: The mode of a private file and of a private folder.
FILE_MODE = 0o600
DIR_MODE = 0o700


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` and any missing parent with mode 0700, and take group and other bits away from
    ``path`` itself if it already existed with them."""
    missing: list[Path] = []
    p = path
    while not p.exists() and p.parent != p:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(mode=DIR_MODE, exist_ok=True)
    restrict_mode(path, DIR_MODE)


def restrict_mode(path: Path, mode: int) -> None:
    """Take away any permission bit beyond ``mode`` (POSIX only), with a warning naming the file."""
    if os.name == "nt":
        return
    current = stat.S_IMODE(path.stat().st_mode)
    if current & ~mode:
        logger.warning("%s had mode %04o; setting %04o", path, current, current & mode)
        os.chmod(path, current & mode)


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to a new file next to ``path`` and move it into place, so that ``path`` is always
    either absent, the old content, or the whole new content."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(tmp, flags, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # the umask may have taken bits away from a public file
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make the entries of folder ``path`` durable (POSIX; best effort)."""
    if os.name == "nt":
        return
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
