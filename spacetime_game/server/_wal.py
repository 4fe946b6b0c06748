"""The dev server's commit log: an append-only file of opaque records with group commit.

Each record is one committed transaction, already serialized by the caller. The log gives it a sequence
number, writes it, and tells the caller when it is durable. A background writer thread gathers the records
appended meanwhile into one batch and makes the whole batch durable with one ``write`` and one ``fsync``
(group commit), so many small transactions cost one disk flush instead of one each.

File format (all integers little-endian)::

    file   := MAGIC frame*
    MAGIC  := b"STG-WAL" 0x01                     8 bytes; the last byte is the format version
    frame  := length:u32 crc:u32 seq:u64 payload  16-byte header, then ``length`` payload bytes
    crc    := zlib.crc32(payload)
    seq    := 1 for the first frame, previous seq + 1 for each further frame

A frame is valid when the file holds all of it, its crc matches and its seq is the next one expected. The
strict seq rule also rejects zero-filled space (length 0, crc 0, seq 0 would otherwise pass the crc).

Recovery (``replay``): frames are read in order until the end of the file or the first invalid frame.
An invalid frame at offset X is a *torn tail* - what ``kill -9`` or a crash during a write leaves - when
no valid frame (seq above the last good one, crc matching, within the file) starts anywhere at or after X;
the tail is then cut off (with a warning) so appends continue cleanly. If a valid frame does follow, the
damage is in the middle of committed data: ``CommitLogError`` names the offset and the file is left as it
is, because dropping the records behind it would silently lose committed transactions. (Damage to the
very last record cannot be told from a torn write, so that record is cut off as a tail.)

Durability: a record is handed to ``on_durable`` (and counted in ``durable_seq``) only after its batch has
been written and flushed with ``fdatasync`` (``F_FULLFSYNC`` on macOS, ``fsync`` elsewhere). With
``fsync=False`` a batch is written but not flushed: it survives a crash of the process, not of the machine.
If a write or flush fails the log stops: the failed batch is cut off again (best effort), its records
never become durable, and ``append``, ``wait_durable``, ``flush`` and ``close`` raise ``CommitLogError``.
It never retries: after a failed ``fsync`` the kernel may have dropped the dirty pages, so a retry that
succeeds proves nothing. ``on_failure`` (if given) is told once, with an error naming the file, the
operation and the OS error; without it the log reports the failure itself, as one error line. The records
of a failed batch may still turn up in the next replay (their outcome is unknown, as with any database
whose commit fails half-way).

A new log is created whole: the header is written to a temporary file, flushed and renamed into place, so
a log file shorter than its header is never left behind by a crash. Such a file (0 to 7 bytes) means the
log was cut short by something else; it is refused (``CommitLogError``) instead of being taken for a new,
empty log, which would silently start an empty database.

On POSIX the file is locked (``flock``) while open, so a second server on the same data directory fails
fast instead of interleaving frames.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

from ..sdk.sats import SpacetimeError
from ._files import FILE_MODE, ensure_private_dir, restrict_mode
from ._logsafe import server_logger

if sys.platform != "win32":
    import fcntl

__all__ = ["CommitLog", "CommitLogError"]

logger = server_logger("spacetime_game.server.wal")

MAGIC = b"STG-WAL\x01"
_FRAME = struct.Struct("<IIQ")
FRAME_HEADER_SIZE = _FRAME.size
MAX_RECORD_SIZE = 0xFFFFFFFF

# (seq, frame header, payload, on_durable)
_Pending = tuple[int, bytes, bytes, Callable[[int], None] | None]


class CommitLogError(SpacetimeError):
    """The commit log cannot be used: corrupt data, another owner, a failed write, or misuse (the message
    says which, with the file and byte offset where it applies)."""


def _sync(fd: int) -> None:
    """Flush ``fd``'s data to stable storage."""
    if sys.platform == "darwin":  # plain fsync on macOS does not flush the drive's cache
        try:
            fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
            return
        except OSError:
            pass
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:
        os.fsync(fd)


def _sync_dir(path: Path) -> None:
    """Make a new directory entry in ``path`` durable (POSIX; a no-op elsewhere)."""
    if sys.platform == "win32":
        return
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        logger.debug("cannot open directory %s to fsync it: %s", path, exc)
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems refuse fsync on directories
        logger.debug("cannot fsync directory %s: %s", path, exc)
    finally:
        os.close(fd)


def _find_valid_frame(fd: int, start: int, size: int, min_seq: int) -> tuple[int, int] | None:
    """The (offset, seq) of the first valid-looking frame at or after ``start`` with seq >= ``min_seq``.

    Used only after an invalid frame, to tell a torn tail (nothing valid follows) from damage in the middle.
    A frame at ``pos`` counts when it fits in the file, its crc matches and its seq could follow: at least
    ``min_seq``, and at most the number of frame headers that fit in the damaged region beyond it.
    """
    if size - start < FRAME_HEADER_SIZE:
        return None
    unpack_from = _FRAME.unpack_from
    crc32 = zlib.crc32
    max_seq = min_seq + (size - start) // FRAME_HEADER_SIZE
    with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as mm:
        for pos in range(start, size - FRAME_HEADER_SIZE + 1):
            length, crc, seq = unpack_from(mm, pos)
            if seq < min_seq or seq > max_seq:
                continue
            end = pos + FRAME_HEADER_SIZE + length
            if end <= size and crc32(mm[pos + FRAME_HEADER_SIZE : end]) == crc:
                return pos, seq
    return None


class CommitLog:
    """An append-only log of opaque records with group commit (see the module docstring for the format).

    Use::

        log = CommitLog(path)
        for seq, record in log.replay():   # required first, even for a new file
            apply(record)
        seq = log.append(record, on_durable=callback)   # returns at once; callback(seq) fires later
        ...
        log.close()

    ``append`` is thread-safe. ``on_durable(seq)`` runs on the writer thread, in seq order, once the
    record is durable; it should only hand over (``loop.call_soon_threadsafe``), since the next batch waits
    for it. Exceptions from it are logged and do not stop the log.

    Batching: records appended while a batch is being flushed form the next batch, so a batch costs one
    write and one fsync however many records it holds. When the previous batch held more than one record
    (appends are concurrent), the writer also keeps a new batch open until its oldest record has waited
    ``max_batch_delay`` seconds, so that more can join; a lone committer (batches of one) is never held
    back. ``max_batch_bytes`` of pending frames, ``flush`` and ``close`` end the wait at once. A batch
    holds at most ``max_batch_bytes`` of frames (or one record, if that is bigger); ``max_batch_delay=0``
    never waits.
    """

    def __init__(
        self,
        path: Path,
        *,
        fsync: bool = True,
        max_batch_delay: float = 0.001,
        max_batch_bytes: int = 4 << 20,
        on_failure: Callable[[CommitLogError], None] | None = None,
    ) -> None:
        if max_batch_delay < 0:
            raise ValueError(f"max_batch_delay must be >= 0, not {max_batch_delay}")
        if max_batch_bytes < 1:
            raise ValueError(f"max_batch_bytes must be >= 1, not {max_batch_bytes}")
        self._path = Path(path)
        self._fsync = fsync
        self._max_delay = float(max_batch_delay)
        self._max_bytes = int(max_batch_bytes)
        self._on_failure = on_failure
        #: How many times the log has flushed its file to stable storage since it was opened (each
        #: group commit is one; with ``fsync=False``, none): records / syncs is the batching achieved.
        self.syncs = 0

        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # the writer waits here for records
        self._durable_changed = threading.Condition(self._lock)  # wait_durable waits here
        self._close_lock = threading.Lock()

        # Guarded by _lock.
        self._pending: deque[_Pending] = deque()
        self._pending_bytes = 0
        self._pending_since = 0.0  # monotonic time the oldest pending record was appended
        self._next_seq = 1
        self._durable_seq = 0
        self._flush_upto = 0  # flush()/close() want everything up to this seq written without delay
        self._replayed = False
        self._closing = False
        self._failure: BaseException | None = None  # the error that stopped the writer
        self._failure_error: CommitLogError | None = None  # ... as reported (file, operation, OS error)

        # Owned by the writer thread once it runs.
        self._end = 0  # file size: where the next batch starts
        self._last_batch_records = 1  # more than 1: appends are concurrent, batching pays

        self._closed = False
        self._thread: threading.Thread | None = None
        self._fd = self._open()

    # -- opening -------------------------------------------------------------------------------

    def _open(self) -> int:
        path = self._path
        if not path.parent.exists():
            ensure_private_dir(path.parent)
        flags = os.O_RDWR | os.O_APPEND | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            self._create()
            fd = os.open(path, flags)
        try:
            restrict_mode(path, FILE_MODE)  # a log created world-readable by an older version
            self._lock_file(fd)
            size = os.fstat(fd).st_size
            head = os.read(fd, len(MAGIC)) if size else b""
            if size < len(MAGIC):
                raise CommitLogError(
                    f"commit log {path} is {size} byte(s) long, shorter than its {len(MAGIC)}-byte header: "
                    f"it was cut short or damaged (a new log is created whole, never this short); restore "
                    f"it from a backup, or delete the database folder {path.parent} to start over empty"
                )
            if head != MAGIC:
                raise CommitLogError(
                    f"{path} is not a spacetime_game commit log (bad magic {head!r}, expected {MAGIC!r}); "
                    f"restore it from a backup, or delete the database folder {path.parent} to start over"
                )
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _create(self) -> None:
        """Create a new, empty log atomically: the header goes to a temporary file that is flushed and
        then linked into place, so that no crash can leave a log shorter than its header behind."""
        path = self._path
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), FILE_MODE)
        try:
            try:
                if os.write(fd, MAGIC) != len(MAGIC):
                    raise OSError(f"short write of the header of {tmp}")
                _sync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)  # unlike rename, never replaces a log someone created meanwhile
            except FileExistsError:
                pass
            except OSError:  # a file system without hard links
                if not path.exists():
                    os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        _sync_dir(path.parent)

    def _lock_file(self, fd: int) -> None:
        if sys.platform == "win32":
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CommitLogError(
                f"commit log {self._path} is in use (locked by another running server, or another "
                f"CommitLog in this process); stop that server first, or use another data folder"
            ) from None
        except OSError as exc:  # e.g. a file system without locks; carry on unprotected
            logger.warning(
                "commit log %s: cannot lock the file (%s); not guarding against a second owner",
                self._path,
                exc,
            )

    # -- public API ------------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The log file."""
        return self._path

    @property
    def failure(self) -> CommitLogError | None:
        """Why the log stopped (the file, the operation and the OS error), or None while it works."""
        return self._failure_error

    @property
    def durable_seq(self) -> int:
        """The highest seq known durable (0 before any); after ``replay``, the last record replayed."""
        return self._durable_seq

    def replay(self) -> Iterator[tuple[int, bytes]]:
        """Yield ``(seq, record)`` for every committed record, in order; then open the log for appends.

        Must run to the end before the first ``append`` (an abandoned replay may be started again). A
        torn tail is cut off with a warning; damage followed by valid records raises ``CommitLogError``
        naming the offset, and leaves the file untouched. Replayed records are flushed once more, so they
        are durable even if the previous run crashed before its last flush.
        """
        with self._lock:
            self._check_usable()
            if self._replayed:
                raise CommitLogError(
                    f"commit log {self._path}: replay() runs once, before the first append()"
                )
        return self._replay()

    def append(self, record: bytes, on_durable: Callable[[int], None] | None = None) -> int:
        """Queue ``record`` and return its seq at once; ``on_durable(seq)`` fires once it is durable."""
        if not isinstance(record, bytes):
            record = bytes(record)  # a copy: a mutable buffer could change before it is written
        size = len(record)
        if size > MAX_RECORD_SIZE:
            raise ValueError(f"a commit log record holds at most {MAX_RECORD_SIZE} bytes, not {size}")
        crc = zlib.crc32(record)
        with self._lock:
            self._check_usable()
            if not self._replayed:
                raise CommitLogError(f"commit log {self._path}: call replay() (to the end) before append()")
            seq = self._next_seq
            self._next_seq = seq + 1
            pending = self._pending
            pending.append((seq, _FRAME.pack(size, crc, seq), record, on_durable))
            self._pending_bytes += FRAME_HEADER_SIZE + size
            if len(pending) == 1:
                self._pending_since = time.monotonic()
                self._work.notify()
            elif self._pending_bytes >= self._max_bytes:
                self._work.notify()
        return seq

    def wait_durable(self, seq: int, timeout: float | None = None) -> bool:
        """Block until record ``seq`` is durable; False if ``timeout`` seconds pass first.

        Raises ``CommitLogError`` if the log failed before the record became durable, ``ValueError`` for
        a seq not appended yet.
        """
        with self._lock:
            if seq <= self._durable_seq:
                return True
            if seq >= self._next_seq:
                raise ValueError(f"seq {seq} has not been appended (the last one is {self._next_seq - 1})")
            if self._failure is not None:
                raise self._failed_error(seq)
            if self._on_writer_thread():
                raise CommitLogError(
                    "wait_durable() for a later record from an on_durable callback would deadlock"
                )
            self._durable_changed.wait_for(
                lambda: self._durable_seq >= seq or self._failure is not None, timeout
            )
            if self._durable_seq >= seq:
                return True
            if self._failure is not None:
                raise self._failed_error(seq)
            return False

    def flush(self) -> None:
        """Block until every record appended so far is durable (its batch is written without delay)."""
        with self._lock:
            target = self._next_seq - 1
            if target <= self._durable_seq:
                return
            if target > self._flush_upto:
                self._flush_upto = target
                self._work.notify()
        self.wait_durable(target)

    def close(self) -> None:
        """Flush, stop the writer thread and close the file; idempotent.

        Raises ``CommitLogError`` (from the first call) if a write failed, so records were lost.
        """
        if self._on_writer_thread():
            raise CommitLogError("close() cannot be called from an on_durable callback")
        with self._close_lock:
            if self._closed:
                return
            with self._lock:
                self._closing = True
                self._work.notify()
            if self._thread is not None:
                self._thread.join()
                self._thread = None
            os.close(self._fd)  # releases the lock
            self._closed = True
            failure = self._failure
        if failure is not None:
            raise CommitLogError(f"commit log {self._path}: closed after a failed write") from failure

    def __enter__(self) -> CommitLog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<CommitLog {str(self._path)!r} durable_seq={self._durable_seq}>"

    # -- replay ----------------------------------------------------------------------------------

    def _replay(self) -> Iterator[tuple[int, bytes]]:
        fd = os.dup(self._fd)
        with open(fd, "rb") as f:
            size = os.fstat(fd).st_size
            offset = len(MAGIC)
            f.seek(offset)
            expected = 1
            problem = ""
            while offset < size:
                header = f.read(FRAME_HEADER_SIZE)
                if len(header) < FRAME_HEADER_SIZE:
                    problem = f"frame header cut short ({len(header)} of {FRAME_HEADER_SIZE} bytes)"
                    break
                length, crc, seq = _FRAME.unpack(header)
                if seq != expected:
                    problem = f"seq {seq} where {expected} was expected"
                    break
                if length > size - offset - FRAME_HEADER_SIZE:
                    problem = f"record of {length} bytes runs past the end of the file"
                    break
                payload = f.read(length)
                if len(payload) != length or zlib.crc32(payload) != crc:
                    problem = "checksum mismatch"
                    break
                yield seq, payload
                offset += FRAME_HEADER_SIZE + length
                expected += 1
            if problem:
                found = _find_valid_frame(fd, offset, size, expected)
                if found is not None:
                    at, seq = found
                    raise CommitLogError(
                        f"commit log {self._path} is corrupt at byte offset {offset} (record seq "
                        f"{expected}: {problem}), but a valid record (seq {seq}) follows at byte offset "
                        f"{at}: refusing to drop committed records; restore the file from a backup, or "
                        f"cut it at offset {offset} by hand (losing the records from seq {expected} on)"
                    )
        with self._lock:
            self._check_usable()
            if self._replayed:
                raise CommitLogError(
                    f"commit log {self._path}: replayed twice (another replay() finished first)"
                )
            if problem:
                logger.warning(
                    "commit log %s: discarding %d byte(s) of torn tail at byte offset %d after seq %d (%s)",
                    self._path,
                    size - offset,
                    offset,
                    expected - 1,
                    problem,
                )
                os.ftruncate(self._fd, offset)
            if self._fsync:
                _sync(self._fd)
                self.syncs += 1
            self._end = offset
            self._next_seq = expected
            self._durable_seq = expected - 1
            self._flush_upto = expected - 1
            self._replayed = True
            self._thread = threading.Thread(target=self._run, name="spacetime_game-commit-log", daemon=True)
            self._thread.start()

    # -- writer thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            data = b"".join([part for _, header, record, _ in batch for part in (header, record)])
            operation = "write"
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view) :]
                if self._fsync:
                    operation = "fsync"
                    _sync(self._fd)
                    self.syncs += 1
            except Exception as exc:
                self._fail(exc, batch[0][0], operation)
                return
            self._end += len(data)
            with self._lock:
                self._durable_seq = batch[-1][0]
                self._durable_changed.notify_all()
            for seq, _, _, on_durable in batch:
                if on_durable is not None:
                    try:
                        on_durable(seq)
                    except Exception:
                        logger.exception(
                            "commit log %s: on_durable callback for seq %d failed", self._path, seq
                        )

    def _take_batch(self) -> list[_Pending] | None:
        """Wait for the next batch to be due and take it; None once closing with nothing pending."""
        with self._lock:
            pending = self._pending
            while True:
                if pending:
                    if (
                        self._max_delay > 0
                        and self._last_batch_records > 1
                        and not self._closing
                        and self._flush_upto < pending[0][0]
                        and self._pending_bytes < self._max_bytes
                    ):
                        remaining = self._pending_since + self._max_delay - time.monotonic()
                        if remaining > 0:
                            self._work.wait(remaining)
                            continue
                    break
                if self._closing:
                    return None
                self._work.wait()
            batch: list[_Pending] = []
            size = 0
            limit = self._max_bytes
            while pending:
                frame_size = FRAME_HEADER_SIZE + len(pending[0][2])
                if batch and size + frame_size > limit:
                    self._pending_since = float("-inf")  # the rest is overdue: next batch at once
                    break
                batch.append(pending.popleft())
                size += frame_size
            self._pending_bytes -= size
            self._last_batch_records = len(batch)
            return batch

    def _fail(self, exc: Exception, first_seq: int, operation: str) -> None:
        error = CommitLogError(f"commit log {self._path}: {operation} failed: {exc}")
        error.__cause__ = exc
        with contextlib.suppress(OSError):  # best effort: leave no partial batch behind
            os.ftruncate(self._fd, self._end)
        with self._lock:
            self._failure = exc
            self._failure_error = error
            self._pending.clear()
            self._pending_bytes = 0
            self._durable_changed.notify_all()
        # one line at the default level; the traceback only for debugging
        logger.debug("commit log %s: the batch from seq %d failed", self._path, first_seq, exc_info=exc)
        if self._on_failure is None:
            logger.error(
                "%s; the log is stopped and records from seq %d on are not durable", error, first_seq
            )
            return
        try:
            self._on_failure(error)
        except Exception:
            logger.exception("commit log %s: on_failure callback failed", self._path)

    # -- helpers ---------------------------------------------------------------------------------

    def _check_usable(self) -> None:
        """Raise if the log is closed or failed (call with _lock held)."""
        if self._failure is not None:
            raise CommitLogError(f"commit log {self._path} stopped after a failed write") from self._failure
        if self._closing:
            raise CommitLogError(f"commit log {self._path} is closed")

    def _failed_error(self, seq: int) -> CommitLogError:
        error = CommitLogError(f"commit log {self._path}: record {seq} is not durable: a write failed")
        error.__cause__ = self._failure
        return error

    def _on_writer_thread(self) -> bool:
        thread = self._thread
        return thread is not None and thread.ident == threading.get_ident()
