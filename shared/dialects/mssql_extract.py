"""SQL Server EXTRACTION helpers: temporary-table column types and values, read-only setup.

Pure functions (no pyodbc import), so they are unit-tested where no ODBC driver exists.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.dialects import mssql as sa_mssql

from shared.dialects.loading import json_text
from shared.dialects.mssql_load import datetimeoffset_text
from shared.types import Column, to_sqlalchemy

MAX_DECIMAL_PRECISION = 38
# a decimal whose precision the source did not declare (PostgreSQL numeric, SUM over it)
UNDECLARED_DECIMAL = (38, 10)
# both the source database and tempdb (where #temp tables live) must allow SNAPSHOT
SNAPSHOT_ALLOWED_SQL = ("SELECT MIN(CAST(snapshot_isolation_state AS int)) FROM sys.databases "
                        "WHERE database_id IN (DB_ID(), DB_ID('tempdb'))")


def temp_column_type(col: Column) -> sa.types.TypeEngine:
    """The SQL Server type of a ``#temp`` column holding ``@resultN``, chosen to keep values exact.

    Text is NVARCHAR (VARCHAR would turn characters outside the code page into ``?``),
    timestamps DATETIME2(7)/DATETIMEOFFSET(7) (DATETIME rounds to 1/300 s), DATE and
    TIME(7) whatever server version SQLAlchemy assumes, binary
    VARBINARY(max), decimals at most DECIMAL(38, s) (SQL Server's limit).
    """
    kind = col.type
    if kind in ("text", "unknown", "json", "interval"):
        return sa_mssql.NVARCHAR(col.length if col.length and col.length <= 4000 else None)
    if kind == "timestamp":
        return sa_mssql.DATETIME2(7)
    if kind == "timestamptz":
        return sa_mssql.DATETIMEOFFSET(7)
    if kind == "time":
        return sa_mssql.TIME(7)
    if kind == "date":
        return sa_mssql.DATE()
    if kind == "bytes":
        return sa_mssql.VARBINARY("max")
    if kind == "decimal":
        precision, scale = decimal_shape(col)
        return sa_mssql.DECIMAL(precision, scale)
    return to_sqlalchemy(col)


def decimal_shape(col: Column) -> tuple[int, int]:
    """(precision, scale) of the temporary column for a decimal result column."""
    if not col.precision:
        return UNDECLARED_DECIMAL
    scale = min(col.scale or 0, MAX_DECIMAL_PRECISION)
    return min(col.precision, MAX_DECIMAL_PRECISION), scale


def temp_converter(col: Column) -> Callable[[Any], Any] | None:
    """A portable value as pyodbc binds it into the ``#temp`` column; ValueError when it cannot be held."""
    kind = col.type
    if kind == "decimal":
        precision, scale = decimal_shape(col)

        def exact(value: Any) -> Any:
            if isinstance(value, Decimal) and value.is_finite() and decimal_places(value) > scale:
                raise ValueError(f"column {col.name!r}: value {value} has more than {scale} decimal places; "
                                 f"SQL Server holds it in DECIMAL({precision}, {scale}): cast it in the step's "
                                 "SQL to the precision you need")
            return value
        return exact
    return _encode


def decimal_places(value: Decimal) -> int:
    """Digits after the point that matter (trailing zeros do not): ``1.2500`` → 2."""
    _, digits, exponent = value.as_tuple()
    if not any(digits) or not isinstance(exponent, int):
        return 0
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing))


def _encode(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return datetimeoffset_text(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (list, dict)):
        return json_text(value)
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return value


def refine_kind(kind: str, column_index: int, sample_rows: list[tuple]) -> str:
    """The kind of a column whose values say more than pyodbc's description: DATETIMEOFFSET,
    read through SQLAlchemy's output converter, gives aware datetimes (timestamptz) although
    pyodbc describes it as text or datetime. From the first non-NULL value of the sample."""
    if kind not in ("text", "unknown", "timestamp"):
        return kind
    for row in sample_rows:
        value = row[column_index]
        if value is None:
            continue
        if isinstance(value, datetime):
            return "timestamptz" if value.tzinfo is not None else "timestamp"
        return kind
    return kind
