"""SQL for the embedded dev server.

Two entry points, both parsing with sqlglot (PostgreSQL dialect) and then checking the syntax tree
against the module schema:

* :func:`compile_query` compiles one subscription query (docs/protocol.md section 6.1), also used for
  one-off queries. The :class:`Query` it returns evaluates the whole result (``SubscribeApplied``) and
  maintains it incrementally: :meth:`Query.delta` turns the rows one transaction inserted and deleted
  into the result rows added and removed, with index lookups only, never a table scan.
* :func:`execute_sql` runs the statements of the HTTP ``/sql`` endpoint, which also allows column
  lists, ``COUNT(*)`` and ``LIMIT``.

Every problem with a query raises :class:`SqlError`, whose message is meant for the client.

Semantics worth knowing:

* A subscription returns a *set* of rows of one table: a row of the selected table is in the result
  when at least one row of the other table joins it and the WHERE holds for that pair; it appears
  once however many partners it has. ``/sql`` joins follow plain SQL instead: one output row per
  matching pair.
* Option columns compare with their inner value; a ``none`` never matches (not even ``!=``).
* Identity, ConnectionId and Timestamp compare by their numeric value (so ``<`` works as expected).
* Literals take the type of the column they are compared with, as in SpacetimeDB: integers must be
  integral and in range, F32 literals are rounded to F32, strings compare with String columns,
  RFC 3339 strings with Timestamp columns, hex (``0xAB``, ``X'AB'`` or a hex string) with Identity,
  ConnectionId and bytes columns, and ``:sender`` (the caller's Identity) with Identity columns.
"""

from ._common import DEFAULT_SQL_LIMITS, ReadView, SqlError, SqlLimits
from ._execute import SqlResult, execute_sql
from ._subscription import Query, RowDelta, compile_query

__all__ = [
    "DEFAULT_SQL_LIMITS",
    "Query",
    "ReadView",
    "RowDelta",
    "SqlError",
    "SqlLimits",
    "SqlResult",
    "compile_query",
    "execute_sql",
]
