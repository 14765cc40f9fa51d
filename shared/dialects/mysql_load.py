"""MySQL/MariaDB LOADING helpers: driver value encoding and the mode statements (pure builders)."""
from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from collections.abc import Iterable, Iterator
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from shared.dialects.loading import json_text, key_match, kind_of, plain_preparer, to_utc_naive
from shared.dialects.sourcevalues import mysql_bit_converter
from shared.types import Column

# statement-level: access denied, unknown database/table/column, syntax, read-only, savepoint gone
MYSQL_FATAL = {1044, 1045, 1046, 1049, 1051, 1054, 1064, 1109, 1142, 1143, 1146, 1227, 1290, 1305, 1792}
_SAFE_SOURCE_TYPES = {"smallint", "int", "bigint", "text", "bytes", "date"}


def _mysql_datetime(kind: str, value: datetime) -> Any:
    # DATETIME/TIMESTAMP hold no offset: the instant is stored in UTC (sessions run at +00:00)
    return value.isoformat() if kind == "text" else to_utc_naive(value)


def _mysql_number(value: Any) -> Any:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise ValueError(f"MySQL/MariaDB cannot store the float {value!r}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError(f"MySQL/MariaDB cannot store the decimal {value}")
    return value


def mysql_converter(kind: str, length: int | None = None) -> Callable[[Any], Any]:
    """Driver value for a non-NULL value of a column of ``kind``; raises ValueError when impossible."""
    def convert(value: Any) -> Any:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, (float, Decimal)):
            return _mysql_number(value)
        if isinstance(value, datetime):
            return _mysql_datetime(kind, value)
        if isinstance(value, uuid.UUID):
            return value.bytes if kind == "bytes" else (value.hex if length == 32 else str(value))
        if isinstance(value, (list, dict)):
            return json_text(value)
        if isinstance(value, (bytearray, memoryview)):
            return bytes(value)
        return value
    return convert


def mysql_row_encoder(target_columns: list[sa.Column], source_columns: list[Column]) -> Callable[[tuple], tuple]:
    """Rows as driver tuples; only columns whose values may need converting pay for it."""
    convs = [mysql_bit_converter(t) or (None if s.type in _SAFE_SOURCE_TYPES
                                        else mysql_converter(kind_of(t.type), getattr(t.type, "length", None)))
             for t, s in zip(target_columns, source_columns)]
    if not any(convs):
        return tuple
    pairs = list(enumerate(convs))

    def encode(row: tuple) -> tuple:
        return tuple(v if f is None or v is None else f(v) for (_, f), v in zip(pairs, row))
    return encode


def build_mysql_batch_stats(target: sa.Table, staging: sa.TableClause, key: list[str],
                            sa_dialect: sa.Dialect) -> sa.Select:
    """(staged rows, distinct staged keys, staged rows already in the destination).

    One scan of staging: MySQL cannot open a TEMPORARY table twice in one statement.
    """
    prep = sa_dialect.identifier_preparer
    keys = ", ".join(f"{prep.format_table(staging)}.{prep.quote(k)}" for k in key)
    joined = staging.outerjoin(target, key_match(staging, target, key))
    return sa.select(sa.func.count(), sa.func.count(sa.literal_column(f"DISTINCT {keys}")),
                     sa.func.count(target.c[key[0]])).select_from(joined)


def build_mysql_upsert(target: sa.Table, staging: sa.TableClause, columns: list[str], key: list[str]) -> sa.Insert:
    """``INSERT ... SELECT ... ON DUPLICATE KEY UPDATE c = staging.c`` (never INSERT IGNORE)."""
    stmt = mysql.insert(target).from_select(columns, sa.select(*[staging.c[c] for c in columns]))
    return stmt.on_duplicate_key_update({c: staging.c[c] for c in columns if c not in key})


def mysql_error_code(exc: BaseException) -> int | None:
    """The server/client error number of a pymysql error (wrapped or not)."""
    orig = getattr(exc, "orig", exc)
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


MAX_INSERT_BYTES = 1_000_000  # one multi-row INSERT stays below MariaDB's default max_allowed_packet
ROUNDING_NOTE = 1265  # "Data truncated": a decimal rounded to its column's scale is only a Note


def mysql_insert_checked(conn: sa.Connection, table: sa.TableClause | sa.Table, columns: list[str], rows: list[tuple],
                         *, allow_rounding: bool) -> None:
    """Multi-row INSERTs of driver tuples, each statement's warnings and notes read back: any one
    (a value changed on the way in) raises a row-level DBAPIError, so the batch is split down to
    the row at fault; with ``allow_rounding`` a rounding note (1265) is accepted."""
    import pymysql

    prep = plain_preparer(conn.dialect)  # the statements run without parameters
    head = f"INSERT INTO {prep.format_table(table)} ({', '.join(prep.quote(c) for c in columns)}) VALUES "
    raw = conn.connection.dbapi_connection
    cursor = raw.cursor()
    parts: list[str] = []
    size = 0
    try:
        for row in rows:
            part = "(" + ",".join([raw.escape(v, raw.encoders) for v in row]) + ")"
            if parts and size + len(part) > MAX_INSERT_BYTES:
                _execute_checked(cursor, head + ",".join(parts), allow_rounding)
                parts, size = [], 0
            parts.append(part)
            size += len(part) + 1
        if parts:
            _execute_checked(cursor, head + ",".join(parts), allow_rounding)
    except pymysql.Error as exc:
        invalidated = conn.dialect.is_disconnect(exc, raw, cursor)
        raise sa.exc.DBAPIError.instance("INSERT", None, exc, pymysql.Error,
                                         connection_invalidated=invalidated) from exc
    finally:
        cursor.close()


def _execute_checked(cursor: Any, sql: str, allow_rounding: bool) -> None:
    import pymysql

    cursor.execute(sql)
    if not cursor.warning_count:
        return
    cursor.execute("SHOW WARNINGS")
    notes = [(level, code, message) for level, code, message in cursor.fetchall()
             if not (allow_rounding and code == ROUNDING_NOTE)]
    if notes:
        level, code, message = notes[0]
        hint = "; set allow_rounding: true on the job's destination to accept" if code == ROUNDING_NOTE else ""
        raise pymysql.err.DataError(code, f"{message} (a {level.lower()}: the value would be changed{hint})")


def mysql_temp_decimals(columns: list[Column], types: list[sa.types.TypeEngine], batches: Iterable[list[tuple]],
                        places: dict[int, int]) -> Iterator[list[tuple]]:
    """``batches`` unchanged, each decimal checked against its temporary DECIMAL(p, s) column (a value
    it would round or clip raises ValueError naming the column); ``places`` collects, per decimal
    column, the most decimal places a value needs."""
    from shared.dialects.exact import decimal_of, decimal_places

    limits = {i: (t.precision or 65, t.scale or 0) for i, (c, t) in enumerate(zip(columns, types))
              if c.type == "decimal"}
    for i in limits:
        places[i] = 0
    for batch in batches:
        for row in batch:
            for i, (precision, scale) in limits.items():
                d = None if row[i] is None else decimal_of(row[i])
                if d is None:
                    continue
                p = decimal_places(d)
                whole = max(d.adjusted() + 1, 0) if d else 0
                if p > scale or whole > precision - scale:
                    raise ValueError(f"column {columns[i].name}: {row[i]} does not fit a MariaDB DECIMAL("
                                     f"{precision}, {scale}) temporary column exactly")
                own = -d.as_tuple().exponent  # the value's own scale, trailing zeros included
                places[i] = max(places[i], min(max(own, 0), scale))  # type: ignore[operator]
        yield batch


_TRIGGERS_SQL = ("SELECT COUNT(*) FROM information_schema.TRIGGERS "
                 "WHERE EVENT_OBJECT_SCHEMA = COALESCE(:s, DATABASE()) AND EVENT_OBJECT_TABLE = :t")


def mysql_null_refusals(conn: sa.Connection, target: sa.Table, columns: list[str]) -> list[tuple[int, str]]:
    """NOT NULL columns that strict mode refuses NULL for: not AUTO_INCREMENT (NULL generates a
    value), not TIMESTAMP (NULL may mean now), not generated; none when the table has triggers."""
    if conn.execute(sa.text(_TRIGGERS_SQL), {"s": target.schema, "t": target.name}).scalar():
        return []
    refused = []
    for i, name in enumerate(columns):
        col = target.c[name]
        if col.nullable or col.autoincrement is True or col.computed is not None or isinstance(col.type, mysql.TIMESTAMP):
            continue
        refused.append((i, f"(1048) Column '{name}' cannot be null"))
    return refused
