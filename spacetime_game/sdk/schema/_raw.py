"""Pydantic models of the raw schema JSON: RawModuleDefV9, RawModuleDefV10 and the wrapped form.

These mirror the server's typed SATS-JSON (docs/protocol.md section 5). Options arrive as ``{"some": x}`` /
``{"none": []}``, unit enums as ``{"Name": []}``; both are accepted in plain form too.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ..sats import AlgebraicType, ProductType


def _opt(v: Any) -> Any:
    """``{"some": x}`` -> x, ``{"none": []}`` -> None; anything else unchanged."""
    if isinstance(v, dict) and len(v) == 1:
        if "some" in v:
            return v["some"]
        if "none" in v:
            return None
    return v


def _unit_enum(v: Any) -> Any:
    """``{"Public": []}`` -> ``"Public"``."""
    if isinstance(v, dict) and len(v) == 1:
        ((k, payload),) = v.items()
        if payload in ([], None, {}):
            return k
    return v


def _algebraic(v: Any) -> AlgebraicType:
    if isinstance(v, AlgebraicType):
        return v
    return AlgebraicType.from_json(v)


def _product(v: Any) -> ProductType:
    if isinstance(v, ProductType):
        return v
    if isinstance(v, dict) and "elements" in v and "Product" not in v:
        v = {"Product": v}
    ty = AlgebraicType.from_json(v)
    if not isinstance(ty, ProductType):
        raise ValueError("expected a product type")
    return ty


OptStr = Annotated[str | None, BeforeValidator(_opt)]
OptInt = Annotated[int | None, BeforeValidator(_opt)]
AlgType = Annotated[Any, BeforeValidator(_algebraic)]
ProdType = Annotated[Any, BeforeValidator(_product)]
Access = Annotated[Literal["Public", "Private"], BeforeValidator(_unit_enum)]
TableKind = Annotated[Literal["User", "System"], BeforeValidator(_unit_enum)]
LifecycleName = Annotated[Literal["Init", "OnConnect", "OnDisconnect"], BeforeValidator(_unit_enum)]
Visibility = Annotated[Literal["Private", "ClientCallable"], BeforeValidator(_unit_enum)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, arbitrary_types_allowed=True)


class RawTypespace(_Model):
    """``{"types": [AlgebraicType, ...]}``."""

    types: list[AlgType]


class RawIndexAlgorithm(_Model):
    """One of BTree/Hash (column lists) or Direct (one column)."""

    kind: Literal["BTree", "Hash", "Direct"]
    columns: list[int]


def _index_algorithm(v: Any) -> Any:
    if isinstance(v, dict) and len(v) == 1:
        ((kind, body),) = v.items()
        if kind == "Direct":
            col = body.get("column") if isinstance(body, dict) else body
            return {"kind": kind, "columns": [col]}
        cols = body.get("columns") if isinstance(body, dict) else body
        return {"kind": kind, "columns": cols}
    return v


IndexAlgorithm = Annotated[RawIndexAlgorithm, BeforeValidator(_index_algorithm)]


class RawIndexDefV9(_Model):
    """An index of a V9 table."""

    name: OptStr = None
    accessor_name: OptStr = None
    algorithm: IndexAlgorithm


def _unique(v: Any) -> Any:
    if isinstance(v, dict) and set(v) == {"Unique"}:
        body = v["Unique"]
        return body.get("columns") if isinstance(body, dict) else body
    return v


class RawConstraintDefV9(_Model):
    """A unique constraint (the only kind today)."""

    name: OptStr = None
    data: Annotated[list[int], BeforeValidator(_unique)]


class RawSequenceDefV9(_Model):
    """An auto_inc sequence on one column."""

    name: OptStr = None
    column: int
    start: OptInt = None
    min_value: OptInt = None
    max_value: OptInt = None
    increment: int = 1


class RawScheduleDefV9(_Model):
    """The schedule of a scheduled table."""

    name: OptStr = None
    reducer_name: str
    scheduled_at_column: int


class RawTableDefV9(_Model):
    """A table of a V9 module."""

    name: str
    product_type_ref: int
    primary_key: list[int] = Field(default_factory=list)
    indexes: list[RawIndexDefV9] = Field(default_factory=list)
    constraints: list[RawConstraintDefV9] = Field(default_factory=list)
    sequences: list[RawSequenceDefV9] = Field(default_factory=list)
    schedule: Annotated[RawScheduleDefV9 | None, BeforeValidator(_opt)] = None
    table_type: TableKind = "User"
    table_access: Access = "Private"


class RawReducerDefV9(_Model):
    """A reducer of a V9 module."""

    name: str
    params: ProdType
    lifecycle: Annotated[LifecycleName | None, BeforeValidator(_opt)] = None


class RawScopedTypeNameV9(_Model):
    """A (scoped) type name."""

    scope: list[str] = Field(default_factory=list)
    name: str


class RawTypeDefV9(_Model):
    """A named type: its name and its typespace entry."""

    name: RawScopedTypeNameV9
    ty: int
    custom_ordering: bool = True


class RawModuleDefV9(_Model):
    """``GET /v1/database/<name>/schema?version=9``."""

    typespace: RawTypespace
    tables: list[RawTableDefV9] = Field(default_factory=list)
    reducers: list[RawReducerDefV9] = Field(default_factory=list)
    types: list[RawTypeDefV9] = Field(default_factory=list)
    misc_exports: list[Any] = Field(default_factory=list)
    row_level_security: list[Any] = Field(default_factory=list)


# ---- V10 -------------------------------------------------------------------------------------------
class RawIndexDefV10(_Model):
    """An index of a V10 table."""

    source_name: OptStr = None
    accessor_name: OptStr = None
    algorithm: IndexAlgorithm


class RawConstraintDefV10(_Model):
    """A unique constraint of a V10 table."""

    source_name: OptStr = None
    data: Annotated[list[int], BeforeValidator(_unique)]


class RawSequenceDefV10(_Model):
    """An auto_inc sequence of a V10 table."""

    source_name: OptStr = None
    column: int
    start: OptInt = None
    min_value: OptInt = None
    max_value: OptInt = None
    increment: int = 1


class RawTableDefV10(_Model):
    """A table of a V10 module; ``source_name`` is the accessor name, not the wire name."""

    source_name: str
    product_type_ref: int
    primary_key: list[int] = Field(default_factory=list)
    indexes: list[RawIndexDefV10] = Field(default_factory=list)
    constraints: list[RawConstraintDefV10] = Field(default_factory=list)
    sequences: list[RawSequenceDefV10] = Field(default_factory=list)
    table_type: TableKind = "User"
    table_access: Access = "Private"
    is_event: bool = False


class RawReducerDefV10(_Model):
    """A reducer of a V10 module."""

    source_name: str
    params: ProdType
    visibility: Visibility = "ClientCallable"


class RawScheduleDefV10(_Model):
    """A schedule: which table drives which function."""

    source_name: OptStr = None
    table_name: str
    schedule_at_col: int
    function_name: str


class RawLifeCycleReducerDefV10(_Model):
    """Which function runs at a lifecycle event."""

    lifecycle_spec: LifecycleName
    function_name: str


class RawScopedTypeNameV10(_Model):
    """A (scoped) type name in V10."""

    scope: list[str] = Field(default_factory=list)
    source_name: str


class RawTypeDefV10(_Model):
    """A named type in V10."""

    source_name: RawScopedTypeNameV10
    ty: int
    custom_ordering: bool = True


class RawNameMapping(_Model):
    """Accessor (source) name to canonical (wire) name."""

    source_name: str
    canonical_name: str


class RawExplicitNameEntry(_Model):
    """One ExplicitNames entry."""

    kind: Literal["Table", "Function", "Index"]
    mapping: RawNameMapping


def _explicit_entry(v: Any) -> Any:
    if isinstance(v, dict) and len(v) == 1:
        ((kind, body),) = v.items()
        return {"kind": kind, "mapping": body}
    return v


class RawExplicitNames(_Model):
    """The ExplicitNames section."""

    entries: list[Annotated[RawExplicitNameEntry, BeforeValidator(_explicit_entry)]] = Field(
        default_factory=list
    )


class RawModuleDefV10(_Model):
    """``GET /v1/database/<name>/schema?version=10``: a list of sections."""

    sections: list[dict[str, Any]]

    def section(self, name: str) -> Any:
        """The payload of the section named ``name``, or None."""
        for s in self.sections:
            if name in s:
                return s[name]
        return None
