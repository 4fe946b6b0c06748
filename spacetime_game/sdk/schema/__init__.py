"""Module schemas: RawModuleDefV9 / V10 (pydantic models) normalised to one :class:`ModuleSchema`."""

from ._module import (
    ColumnDef,
    IndexDef,
    Lifecycle,
    ModuleSchema,
    ReducerDef,
    ScheduleDef,
    SequenceDef,
    TableDef,
    TypeDef,
    load_schema,
)
from ._raw import RawModuleDefV9, RawModuleDefV10

__all__ = [
    "ColumnDef",
    "IndexDef",
    "Lifecycle",
    "ModuleSchema",
    "RawModuleDefV9",
    "RawModuleDefV10",
    "ReducerDef",
    "ScheduleDef",
    "SequenceDef",
    "TableDef",
    "TypeDef",
    "load_schema",
]
