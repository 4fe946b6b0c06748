"""What every part of the SQL layer shares: the row and predicate types, :class:`SqlError`, the
:class:`ReadView` a query reads through, :class:`SqlLimits`, and the guard that turns an unexpected
failure while compiling into a :class:`SqlError` for the client."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

from ...sdk import SpacetimeError
from .._logsafe import server_logger

logger = server_logger("spacetime_game.server.sql")

Row = tuple[Any, ...]
#: A compiled condition over (row of side 0, row of side 1); single-table queries pass ``()`` as side 1.
_Pred = Callable[[Row, Row], bool]
_Key = Callable[[Any], Hashable]
_T = TypeVar("_T")

_NO_ROW: Final[Row] = ()


class SqlError(SpacetimeError):
    """A query that cannot be run: bad syntax, outside the supported subset, unknown names, type
    mismatches or no access. The message is written for the client that sent the query."""


class ReadView(Protocol):
    """Read access to the committed rows of the database (the state after the transaction being
    processed, when computing a delta)."""

    def rows(self, table: str) -> Iterable[Row]:
        """Every row of ``table``."""
        ...

    def lookup(self, table: str, column: int, value: Any) -> Iterable[Row]:
        """The rows of ``table`` whose column ``column`` equals ``value``, found through an index."""
        ...


@dataclass(frozen=True)
class SqlLimits:
    """How big and how complex one query may be: every query (subscription, one-off, ``/sql``) is
    checked against these before it costs anything, so that no single request stalls the server.

    ``max_bytes`` bounds the UTF-8 length of the SQL text and is checked before parsing (parsing costs
    up to about 10 microseconds per byte, so a query at the default limit of 4 KiB costs a few tens of
    milliseconds). ``max_terms`` bounds the conditions (comparisons and boolean columns) in one WHERE
    clause, which every row the query looks at is tested against, and ``max_depth`` how deeply
    AND/OR/parentheses nest (a chain of the same operator counts as one level).
    """

    max_bytes: int = 4096
    max_terms: int = 256
    max_depth: int = 64

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_terms", "max_depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"SqlLimits.{name} must be a positive int, got {value!r}")


#: The limits used when none are given.
DEFAULT_SQL_LIMITS: Final = SqlLimits()


def _true(a: Row, b: Row) -> bool:
    return True


def _guard(sql: str, build: Callable[[], _T]) -> _T:
    try:
        return build()
    except SqlError:
        raise
    except RecursionError:
        raise SqlError("the query is nested too deeply") from None
    except Exception as exc:  # a bug: still report it to the client as a query error
        logger.exception("internal error while compiling SQL %r", sql[:500])
        raise SqlError(f"internal error while compiling the query: {type(exc).__name__}") from None
