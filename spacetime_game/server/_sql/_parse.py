"""Parsing SQL text with sqlglot (PostgreSQL dialect), and turning sqlglot's errors into short messages
for the client (no ANSI colours, no token reprs, bounded length)."""

from __future__ import annotations

import re
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError, TokenError

from ._common import SqlError, SqlLimits, logger

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _parse(sql: str, limits: SqlLimits) -> list[Any]:
    if not isinstance(sql, str):
        raise SqlError(f"the query must be text, got {type(sql).__name__}")
    _check_size(sql, limits.max_bytes)
    try:
        stmts = sqlglot.parse(sql, read="postgres")
    except ParseError as exc:
        err = exc.errors[0] if exc.errors else None
        if err:
            near = str(err.get("highlight") or "").strip()
            where = f" at line {err.get('line')}, column {err.get('col')}"
            msg = _describe(str(err.get("description") or ""))
            raise SqlError(f"syntax error{where}{f' near `{near}`' if near else ''}{msg}") from None
        raise SqlError(f"syntax error: {_clean(str(exc))}") from None
    except TokenError as exc:
        context = _clean(str(exc)).removeprefix("Error tokenizing ")
        raise SqlError(
            f"syntax error: cannot read the query (an unterminated quote or a malformed literal?) near {context}"
        ) from None
    except SqlglotError as exc:
        raise SqlError(f"syntax error: {_clean(str(exc))}") from None
    except RecursionError:
        raise SqlError("the query is nested too deeply") from None
    except Exception as exc:  # sqlglot itself failed on odd input
        logger.debug("sqlglot failed on %r", sql[:500], exc_info=True)
        raise SqlError(f"syntax error: cannot parse the query ({type(exc).__name__})") from None
    out = [s for s in stmts if s is not None]
    if not out:
        raise SqlError("empty query: expected a SELECT statement")
    return out


def _check_size(sql: str, max_bytes: int) -> None:
    """Refuse a query text longer than ``max_bytes`` (UTF-8), before anything expensive is done."""
    # a str never has more characters than its UTF-8 has bytes, so a long text is refused without
    # encoding it; a short one is encoded to count multi-byte characters
    size = len(sql) if len(sql) > max_bytes else len(sql.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        shown = f"at least {size:,}" if len(sql) > max_bytes else f"{size:,}"
        raise SqlError(
            f"the query is {shown} bytes long, more than this server's limit of {max_bytes:,} bytes "
            "(max_query_bytes)"
        )


_END_TOKEN = re.compile(r"<Token token_type: TokenType\.SENTINEL[^>]*>")


_TOKEN = re.compile(r"<Token token_type: TokenType\.\w+, text: (.*?), line: [^>]*>")


def _describe(description: str) -> str:
    """sqlglot's description of a parse error, without its internals ('' when it is only internals)."""
    if not description or "<class" in description:
        return ""  # "Required keyword: 'this' missing for <class ...>": the position says more
    text = _TOKEN.sub(r"`\1`", _END_TOKEN.sub("the end of the query", description))
    return ": " + _clean(text)


def _clean(text: str) -> str:
    text = _ANSI.sub("", text).strip()
    return text if len(text) <= 200 else text[:197] + "..."


def _show(node: exp.Expression | None) -> str:
    """A short SQL rendering of a node, for messages."""
    if node is None:
        return "?"
    try:
        text = node.sql(dialect="postgres")
    except Exception:
        text = type(node).__name__
    return text if len(text) <= 60 else text[:57] + "..."
