"""Name resolution for one statement: the tables of its FROM clause (sides 0 and 1) and their columns."""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from ...sdk.sats import AlgebraicType
from ...sdk.schema import ModuleSchema, TableDef
from ._common import SqlError, SqlLimits
from ._parse import _show


@dataclass(frozen=True)
class _Rel:
    """A table of the FROM clause: what the query calls it, its definition, and its side (0 or 1)."""

    alias: str
    table: TableDef


@dataclass(frozen=True)
class _Col:
    """A column reference: the side of its table, its position, its display name and type."""

    side: int
    index: int
    name: str
    type: AlgebraicType


class _Scope:
    """The tables a statement reads, and how to resolve names against them."""

    def __init__(self, schema: ModuleSchema, owner: bool, limits: SqlLimits) -> None:
        self.schema = schema
        self.ts = schema.typespace
        self.owner = owner
        self.limits = limits
        self.rels: list[_Rel] = []

    def table(self, name: str) -> TableDef:
        try:
            table = self.schema.table(name)
        except KeyError:
            hint = [t.name for t in self.schema.tables if t.name.lower() == name.lower()]
            extra = f" (names are case-sensitive: did you mean `{hint[0]}`?)" if hint else ""
            raise SqlError(f"no such table: `{name}`{extra}") from None
        if not table.is_public and not self.owner:
            raise SqlError(f"table `{name}` is private")
        return table

    def rel(self, alias: str) -> int:
        for i, r in enumerate(self.rels):
            if r.alias == alias:
                return i
        known = ", ".join(f"`{r.alias}`" for r in self.rels)
        raise SqlError(f"unknown table or alias `{alias}` (this query has {known})")

    def column(self, node: exp.Column) -> _Col:
        if node.args.get("db") or node.args.get("catalog"):
            raise SqlError(f"unsupported column reference `{_show(node)}`")
        ident = node.this
        if not isinstance(ident, exp.Identifier):
            raise SqlError(f"expected a column, got `{_show(node)}`")
        name = str(ident.this)
        qual = node.args.get("table")
        if qual is not None:
            if not isinstance(qual, exp.Identifier):
                raise SqlError(f"unsupported column reference `{_show(node)}`")
            side = self.rel(str(qual.this))
            return self._col(side, name, f"{qual.this}.{name}")
        found = [i for i, r in enumerate(self.rels) if any(c.name == name for c in r.table.columns)]
        if len(found) > 1:
            raise SqlError(f"ambiguous column `{name}`: qualify it with a table name or alias")
        if not found:
            if name[:1].isdigit():
                raise SqlError(f"invalid literal `{name}`")
            raise SqlError(f"no such column: `{name}`{self._hint(name)}")
        return self._col(found[0], name, name)

    def _col(self, side: int, name: str, shown: str) -> _Col:
        table = self.rels[side].table
        for c in table.columns:
            if c.name == name:
                return _Col(side, c.col_id, shown, c.type)
        raise SqlError(f"no such column: `{shown}` (table `{table.name}`){self._hint(name, side)}")

    def _hint(self, name: str, side: int | None = None) -> str:
        rels = self.rels if side is None else [self.rels[side]]
        for r in rels:
            for c in r.table.columns:
                if c.name.lower() == name.lower():
                    return f" (names are case-sensitive: did you mean `{c.name}`?)"
        return ""
