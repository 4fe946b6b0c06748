"""Log records that cannot forge lines: control characters in logged text are escaped.

Much of what the dev server logs comes from outside: chat messages a module logs, reducer error texts,
protocol errors that quote a client's bytes. Written raw, a newline in such text starts a line that looks
like the server's own, and an ESC sequence can rewrite the terminal. :class:`EscapeControlFilter` formats
each record's message and escapes C0 and C1 control characters, DEL, the Unicode line and paragraph
separators, the bidirectional overrides and lone surrogates (``\\n``, ``\\x1b``, ``\\u2028``, ...), so one
log call gives exactly one line of plain text (a traceback attached with ``exc_info`` still spans lines).

Every logger of the server is made with :func:`server_logger`, which installs the filter; ``spacetime-game
serve`` also installs it on the handlers it prints with, which covers the loggers of module authors.
"""

from __future__ import annotations

import logging

__all__ = ["EscapeControlFilter", "escape_control", "server_logger"]


def _escapes() -> dict[int, str]:
    table: dict[int, str] = {}
    for code in (*range(0x20), 0x7F, *range(0x80, 0xA0)):
        table[code] = f"\\x{code:02x}"
    table.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"})
    # line/paragraph separators, bidi marks, embeddings, overrides and isolates, lone surrogates
    for code in (0x2028, 0x2029, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)):
        table[code] = f"\\u{code:04x}"
    for code in range(0xD800, 0xE000):
        table[code] = f"\\u{code:04x}"
    return table


_ESCAPES = _escapes()


def escape_control(text: str) -> str:
    """``text`` with its control characters written as escapes (``"a\\nb"`` -> ``"a\\\\nb"``); printable
    text, including any letters and symbols, is returned unchanged."""
    if text.isprintable():
        return text
    return text.translate(_ESCAPES)


class EscapeControlFilter(logging.Filter):
    """Rewrites a record whose formatted message holds control characters into the escaped message
    (``record.args`` become None); other records pass unchanged. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to logging's own error report
            return True
        safe = escape_control(message)
        if safe != message:
            record.msg = safe
            record.args = None
        return True


_FILTER = EscapeControlFilter()


def server_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with the escaping filter installed (once)."""
    logger = logging.getLogger(name)
    logger.addFilter(_FILTER)
    return logger
