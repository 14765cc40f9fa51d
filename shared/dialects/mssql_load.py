"""SQL Server LOADING helpers: pyodbc value encoding and MERGE (pure builders).

pyodbc is imported by SQLAlchemy only when an engine connects; nothing here imports it,
so these builders compile and are unit-tested where no ODBC driver exists.
"""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Callable

import sqlalchemy as sa

from shared.dialects.loading import json_text, kind_of, to_utc_naive

# MERGE touching a row twice, truncation, NULL, constraint conflicts, conversion failures
MSSQL_ROW_CODES = ("(8672)", "(2628)", "(8152)", "(515)", "(547)", "(2627)", "(2601)", "(245)", "(8114)",
                   "(241)", "(242)", "(8115)", "(220)", "(232)")


def mssql_converter(kind: str) -> Callable[[Any], Any]:
    """A pyodbc-bindable value; raises ValueError when SQL Server cannot hold it."""
    def convert(value: Any) -> Any:
        if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
            raise ValueError(f"SQL Server cannot store the float {value!r}")
        if isinstance(value, Decimal) and not value.is_finite():
            raise ValueError(f"SQL Server cannot store the decimal {value}")
        if isinstance(value, datetime):
            return datetimeoffset_text(value) if kind == "timestamptz" else to_utc_naive(value)
        if isinstance(value, uuid.UUID):
            return value.bytes_le if kind == "bytes" else str(value)
        if isinstance(value, (list, dict)):
            return json_text(value)
        if isinstance(value, (bytearray, memoryview)):
            return bytes(value)
        return value
    return convert


def datetimeoffset_text(value: datetime) -> str:
    """A datetime as the text SQL Server reads into DATETIMEOFFSET exactly (naive = UTC).

    pyodbc drops ``tzinfo`` when it binds a datetime (the instant would move by the
    offset), so aware values travel as ``2024-01-01 12:00:00.000000+02:00``, the form
    SQLAlchemy's own pyodbc dialect sends. Offsets with seconds (old local mean times)
    are not accepted by SQL Server: such values are sent in UTC.
    """
    offset = value.utcoffset()
    if offset is None:
        value = value.replace(tzinfo=UTC)
    elif offset % timedelta(minutes=1):
        value = value.astimezone(UTC)
    return value.isoformat(sep=" ", timespec="microseconds")


def mssql_row_encoder(target_columns: list[sa.Column]) -> Callable[[tuple], tuple]:
    convs = [mssql_converter(kind_of(c.type)) for c in target_columns]

    def encode(row: tuple) -> tuple:
        return tuple(None if v is None else f(v) for f, v in zip(convs, row))
    return encode


def build_mssql_staging(target: sa.Table, name: str, columns: list[str], sa_dialect: sa.Dialect) -> str:
    """``SELECT cols INTO #name ... UNION ALL ...``: column types copied, IDENTITY not (the UNION drops it)."""
    prep = sa_dialect.identifier_preparer
    cols = ", ".join(prep.quote(c) for c in columns)
    source = prep.format_table(target)
    return (f"SELECT {cols} INTO {prep.quote(name)} FROM {source} WHERE 1 = 0 "
            f"UNION ALL SELECT {cols} FROM {source} WHERE 1 = 0")


def build_mssql_merge(target: sa.Table, staging: sa.TableClause, columns: list[str], key: list[str],
                      sa_dialect: sa.Dialect) -> sa.TextClause:
    """``MERGE ... WHEN MATCHED AND <changed> THEN UPDATE ... WHEN NOT MATCHED THEN INSERT ... OUTPUT $action``.

    The change test ``EXISTS (SELECT s.* EXCEPT SELECT t.*)`` is NULL-safe. HOLDLOCK makes
    the match-then-insert atomic against concurrent writers.
    """
    q = sa_dialect.identifier_preparer.quote
    updates = [c for c in columns if c not in key]
    on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in key)
    parts = [f"MERGE INTO {sa_dialect.identifier_preparer.format_table(target)} WITH (HOLDLOCK) AS t",
             f"USING {sa_dialect.identifier_preparer.format_table(staging)} AS s ON {on}"]
    if updates:
        changed = (f"EXISTS (SELECT {', '.join(f's.{q(c)}' for c in updates)} "
                   f"EXCEPT SELECT {', '.join(f't.{q(c)}' for c in updates)})")
        parts.append(f"WHEN MATCHED AND {changed} THEN UPDATE SET "
                     + ", ".join(f"t.{q(c)} = s.{q(c)}" for c in updates))
    parts.append(f"WHEN NOT MATCHED BY TARGET THEN INSERT ({', '.join(q(c) for c in columns)}) "
                 f"VALUES ({', '.join(f's.{q(c)}' for c in columns)})")
    parts.append("OUTPUT $action;")
    return sa.text("\n".join(parts))


def mssql_error_text(exc: BaseException) -> tuple[str, str]:
    """(SQLSTATE, message) of a pyodbc error, wrapped or not."""
    orig = getattr(exc, "orig", exc)
    args = getattr(orig, "args", ())
    state = str(args[0]) if args else ""
    return state, str(args[1]) if len(args) > 1 else str(orig)
