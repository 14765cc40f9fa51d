"""Portable column types: how a result's columns are described between services.

The extractor describes each result column with a :class:`Column` whose ``type`` is one
of :data:`PORTABLE_TYPES`; the loader and the temporary tables of multi-step jobs map
it back to an engine's type through SQLAlchemy (:func:`to_sqlalchemy`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import sqlalchemy as sa

PORTABLE_TYPES = (
    "bool", "smallint", "int", "bigint", "float", "decimal", "text", "bytes",
    "date", "time", "timetz", "timestamp", "timestamptz", "uuid", "json", "interval", "unknown",
)


@dataclass(frozen=True)
class Column:
    """One result column. ``type`` is a portable type name; ``unknown`` travels as text."""

    name: str
    type: str = "unknown"
    nullable: bool = True
    length: int | None = None
    precision: int | None = None
    scale: int | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict) -> "Column":
        return cls(**d)


def to_sqlalchemy(col: Column) -> sa.types.TypeEngine:
    """The SQLAlchemy type for a portable column, compiled per dialect when used in DDL."""
    t = col.type
    if t == "bool":
        return sa.Boolean()
    if t == "smallint":
        return sa.SmallInteger()
    if t == "int":
        return sa.Integer()
    if t == "bigint":
        return sa.BigInteger()
    if t == "float":
        return sa.Float(precision=53)
    if t == "decimal":
        if col.precision:
            return sa.Numeric(min(col.precision, 65), col.scale or 0, asdecimal=True)
        return sa.Numeric(65, 30, asdecimal=True)
    if t == "bytes":
        return sa.LargeBinary()
    if t == "date":
        return sa.Date()
    if t == "time":
        return sa.Time()
    if t == "timetz":
        return sa.Time(timezone=True)
    if t == "timestamp":
        return sa.DateTime(timezone=False)
    if t == "timestamptz":
        return sa.DateTime(timezone=True)
    if t == "uuid":
        return sa.Uuid(as_uuid=True)
    if t == "json":
        return sa.JSON()
    if t == "interval":
        return sa.Interval()
    if col.length and col.length <= 4000:
        return sa.String(col.length)
    return sa.Text()
