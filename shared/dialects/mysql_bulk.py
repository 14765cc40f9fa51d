"""MySQL/MariaDB bulk text (see :mod:`shared.dialects.bulk`): export as PostgreSQL COPY text,
import with ``LOAD DATA LOCAL INFILE``.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from shared.dialects.loading import BulkRefused, plain_preparer
from shared.types import Column

FETCH_ROWS = 5_000


def _chars(*codes: int) -> str:
    """A string literal that means the same under every sql_mode (no backslash escapes)."""
    return f"CHAR({', '.join(map(str, codes))} USING utf8mb4)"


_BACKSLASH, _TAB, _LF, _CR = 92, 9, 10, 13
_NULL = _chars(_BACKSLASH, ord("N"))


def _text(expr: str) -> str:
    out = f"CONVERT({expr} USING utf8mb4)"
    for raw, escaped in ((_BACKSLASH, (_BACKSLASH, _BACKSLASH)), (_TAB, (_BACKSLASH, ord("t"))),
                         (_LF, (_BACKSLASH, ord("n"))), (_CR, (_BACKSLASH, ord("r")))):
        out = f"REPLACE({out}, {_chars(raw)}, {_chars(*escaped)})"
    return out


def _pg_field(expr: str, col: Column) -> str:
    if col.type == "bytes":
        value = f"CONCAT({_chars(_BACKSLASH, _BACKSLASH, ord('x'))}, HEX(CAST({expr} AS BINARY)))"
    elif col.type in ("smallint", "int", "bigint", "decimal", "float", "date", "timestamp"):
        value = f"CAST({expr} AS CHAR CHARACTER SET utf8mb4)"
    else:
        value = _text(expr)
    return f"IFNULL({value}, {_NULL})"


def mysql_export_sql(sql: str, columns: list[Column], fmt: str) -> str | None:
    """``SELECT CONCAT_WS(tab, …) FROM (sql) dm_q``: each row as one COPY text line (pg_text only)."""
    if fmt != "pg_text" or "order" in sql.lower() or any(c.type in ("interval", "time") for c in columns):
        return None
    fields = ", ".join(_pg_field("dm_q.`" + c.name.replace("`", "``") + "`", c) for c in columns)
    return f"SELECT CONCAT_WS({_chars(_TAB)}, {fields}) FROM (\n{sql}\n) dm_q"


def mysql_export_chunks(dbapi_conn: Any, sql: str, chunk_bytes: int, max_rows: int) -> Iterator[tuple[bytes, int]]:
    """Stream the export's rows undecoded (``SSCursor``) and join them into chunks."""
    import pymysql.cursors

    dbapi_conn.use_unicode = False  # rows arrive as the bytes the server sent: no str per row
    try:
        cursor = dbapi_conn.cursor(pymysql.cursors.SSCursor)
        cursor.execute(sql)
    finally:
        dbapi_conn.use_unicode = True
    parts: list[bytes] = []
    size = rows = 0
    while True:
        fetched = cursor.fetchmany(max(1, min(FETCH_ROWS, max_rows - rows)))
        if fetched:
            part = b"\n".join([r[0] for r in fetched]) + b"\n"
            parts.append(part)
            size += len(part)
            rows += len(fetched)
        if parts and (size >= chunk_bytes or rows >= max_rows or not fetched):
            yield b"".join(parts), rows
            parts, size, rows = [], 0, 0
        if not fetched:
            return


def mysql_load_payload(conn: sa.Connection, table: sa.TableClause | sa.Table, columns: list[str], payload: bytes,
                       *, kinds: list[str], rows: int) -> None:
    """``LOAD DATA LOCAL INFILE`` of a ``mysql_csv`` payload; raises BulkRefused unless every row
    went in without a warning. Raises DBAPIError for errors."""
    prep = plain_preparer(conn.dialect)  # LOAD DATA runs without parameters
    targets, sets = [], []
    for i, (name, kind) in enumerate(zip(columns, kinds)):
        if kind == "bytes":
            targets.append(f"@dm_v{i}")
            sets.append(f"{prep.quote(name)} = UNHEX(@dm_v{i})")
        else:
            targets.append(prep.quote(name))
    fd, path = tempfile.mkstemp(prefix="dm-load-", suffix=".csv", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        sql = (f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {prep.format_table(table)} CHARACTER SET utf8mb4 "
               "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\n' "
               f"({', '.join(targets)})" + (f" SET {', '.join(sets)}" if sets else ""))
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            loaded = cursor.execute(sql)
            warnings = cursor.warning_count
        except Exception as exc:  # noqa: BLE001 - rewrapped as SQLAlchemy does for its own statements
            raise sa.exc.DBAPIError.instance("LOAD DATA", None, exc, conn.dialect.loaded_dbapi.Error) from exc
        finally:
            cursor.close()
    finally:
        os.unlink(path)
    if warnings or loaded != rows:
        raise BulkRefused(f"LOAD DATA took {loaded} of {rows} rows with {warnings} warnings")
