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
from shared.dialects.mysql_read import FLOAT4_PRECISION
from shared.errors import SourceError
from shared.types import Column

FETCH_ROWS = 5_000


def _chars(*codes: int) -> str:
    """A string literal that means the same under every sql_mode (no backslash escapes)."""
    return f"CHAR({', '.join(map(str, codes))} USING utf8mb4)"


_BACKSLASH, _TAB, _LF, _CR = 92, 9, 10, 13
_NULL = _chars(_BACKSLASH, ord("N"))
_FRAMED = (_BACKSLASH, ord("Z"))  # starts a framed long row: an escaped line never starts with it
MARK = bytes(_FRAMED)
LONG_ROW_BYTES = 4096  # REPLACE's cost per value is bounded by this squared


def _bytes(*codes: int) -> str:
    """A binary string literal (``CHAR`` without ``USING``)."""
    return f"CHAR({', '.join(map(str, codes))})"


def _text(expr: str) -> str:
    """The value's UTF-8 bytes, escaped. REPLACE runs on the bytes (a byte search, ~2x cheaper for
    the server than a utf8mb4 one): the escaped characters are ASCII, and no byte of a UTF-8
    multi-byte sequence is ASCII, so the result is the same."""
    out = f"CAST(CONVERT({expr} USING utf8mb4) AS BINARY)"
    for raw, escaped in ((_BACKSLASH, (_BACKSLASH, _BACKSLASH)), (_TAB, (_BACKSLASH, ord("t"))),
                         (_LF, (_BACKSLASH, ord("n"))), (_CR, (_BACKSLASH, ord("r")))):
        out = f"REPLACE({out}, {_bytes(raw)}, {_bytes(*escaped)})"
    return out


_PLAIN = ("smallint", "int", "bigint", "decimal", "float", "date", "timestamp")


def _plain(expr: str, col: Column) -> str:
    """The field's text when it needs no escaping (numbers, dates, bytes as ``\\x`` hex)."""
    if col.type == "bytes":
        return f"CONCAT({_chars(_BACKSLASH, _BACKSLASH, ord('x'))}, HEX(CAST({expr} AS BINARY)))"
    if col.type == "float" and col.precision == FLOAT4_PRECISION:  # FLOAT's own text has 6 digits
        expr = f"CAST({expr} AS DOUBLE)"
    return f"CAST({expr} AS CHAR CHARACTER SET utf8mb4)"


def _pg_field(expr: str, col: Column) -> str:
    value = _plain(expr, col) if col.type in _PLAIN or col.type == "bytes" else _text(expr)
    return f"IFNULL({value}, {_NULL})"


def _frame(expr: str, col: Column) -> str:
    """``E<len>:<text to escape>``, ``R<len>:<final text>`` or ``N`` (NULL), for a long row."""
    escape = col.type not in _PLAIN and col.type != "bytes"
    value = f"CONVERT({expr} USING utf8mb4)" if escape else _plain(expr, col)
    return f"IFNULL(CONCAT({_chars(ord('E' if escape else 'R'))}, LENGTH({value}), ':', {value}), 'N')"


def mysql_export_sql(sql: str, columns: list[Column], fmt: str) -> str | None:
    """``SELECT CONCAT_WS(tab, …) FROM (sql) dm_q``: each row as one COPY text line (pg_text only).

    The server escapes with REPLACE, which costs (length × matches): a row whose text and
    binary values exceed LONG_ROW_BYTES comes instead as ``\\Z`` + length-prefixed raw fields
    (:func:`_frame`), escaped here in linear time (:func:`_unframe`).
    """
    if fmt != "pg_text" or "order" in sql.lower() or any(c.type in ("interval", "time") for c in columns):
        return None
    refs = ["dm_q.`" + c.name.replace("`", "``") + "`" for c in columns]
    line = f"CONCAT_WS({_chars(_TAB)}, {', '.join(_pg_field(r, c) for r, c in zip(refs, columns))})"
    long_refs = [r for r, c in zip(refs, columns) if c.type not in _PLAIN]
    if long_refs:
        size = " + ".join(f"IFNULL(LENGTH({r}), 0)" for r in long_refs)
        framed = f"CONCAT({_chars(*_FRAMED)}, {', '.join(_frame(r, c) for r, c in zip(refs, columns))})"
        line = f"IF({size} > {LONG_ROW_BYTES}, {framed}, {line})"
    return f"SELECT {line} FROM (\n{sql}\n) dm_q"


def _unframe(line: bytes) -> bytes:
    """A framed long row (see :func:`_frame`) as its COPY text line."""
    fields, pos, end = [], len(_FRAMED), len(line)
    while pos < end:
        tag = line[pos]
        if tag == 78:  # N
            fields.append(b"\\N")
            pos += 1
            continue
        colon = line.index(b":", pos)
        start = colon + 1
        pos = start + int(line[pos + 1:colon])
        value = line[start:pos]
        if tag == 69:  # E
            value = (value.replace(b"\\", b"\\\\").replace(b"\t", b"\\t").replace(b"\n", b"\\n")
                     .replace(b"\r", b"\\r"))
        fields.append(value)
    return b"\t".join(fields)


def _lines(lines: list[bytes | None], *, plain: bool = False) -> bytes:
    """The COPY text of export rows (``plain``: bytes, none starting with MARK: joined as they are)."""
    if plain:
        lines.append(b"")  # the last newline, without a copy of the joined text to add it
        try:
            return b"\n".join(lines)  # type: ignore[arg-type]
        finally:
            lines.pop()
    try:
        part = b"\n".join(lines) + b"\n"
        if MARK not in part:
            return part
    except TypeError:  # a NULL line
        pass
    out = []
    for line in lines:
        if line is None:
            raise SourceError("a row is longer than the server's max_allowed_packet once written as COPY text; "
                              "raise max_allowed_packet or run with DM_BULK_TEXT=false")
        out.append(_unframe(line) if line.startswith(MARK) else line)
    return b"\n".join(out) + b"\n"


def mysql_export_chunks(dbapi_conn: Any, sql: str, chunk_bytes: int, max_rows: int, *,
                        packet_reader: bool = True) -> Iterator[tuple[bytes, int]]:
    """Stream the export's rows undecoded (``SSCursor``) and join them into chunks; the rows are
    cut from the socket buffer by :func:`~shared.dialects.mysql_rows.packet_rows` where PyMySQL
    is a version it knows (``packet_reader=False``: through the cursor, one row at a time)."""
    import pymysql.cursors

    from shared.dialects.mysql_rows import packet_rows

    dbapi_conn.use_unicode = False  # rows arrive as the bytes the server sent: no str per row
    try:
        cursor = dbapi_conn.cursor(pymysql.cursors.SSCursor)
        cursor.execute(sql)
    finally:
        dbapi_conn.use_unicode = True
    reader = packet_rows(cursor) if packet_reader else None
    fetch = reader.fetchmany if reader is not None else (lambda size: [r[0] for r in cursor.fetchmany(size)])
    plain = (lambda: reader.plain) if reader is not None else (lambda: False)
    parts: list[bytes] = []
    size = rows = 0
    try:
        while True:
            fetched = fetch(max(1, min(FETCH_ROWS, max_rows - rows)))
            if fetched:
                part = _lines(fetched, plain=plain())
                parts.append(part)
                size += len(part)
                rows += len(fetched)
            if parts and (size >= chunk_bytes or rows >= max_rows or not fetched):
                yield b"".join(parts), rows
                parts, size, rows = [], 0, 0
            if not fetched:
                return
    finally:
        abandon_stream(cursor)


def abandon_stream(cursor: Any) -> None:
    """Forget an unbuffered result without reading the rest of it (pymysql would, on close or
    garbage collection): the session stops the statement (KILL QUERY) and is discarded."""
    result = getattr(cursor, "_result", None)
    if result is not None:
        result.unbuffered_active = False
    cursor.connection = None


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
