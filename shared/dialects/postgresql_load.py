"""PostgreSQL LOADING helpers: COPY text encoding and the mode statements (pure builders).

Upsert and sync_delete stay one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE <changed>`` per staged
batch, inside the batch's SAVEPOINT, so a batch's failed rows are known when ``LoadSession.write``
returns (the 100-consecutive stop, counts, verification and overlap work as in every mode). Tried
and measured (bench/keyed_profile.py, 1M rows into 1M, 10 % new, half changed): ``UPDATE ... FROM``
staging of the changed rows + ``INSERT ... WHERE NOT EXISTS`` in one statement, which skips
locking unchanged rows, was 15-50 % slower (two index probes per staged row instead of one, and
more CPU). One merge over all batches at the end was not chosen: failed rows are reported batch
by batch and the run stops after 100 consecutive ones mid-stream, which a deferred merge could
only reproduce by replaying every batch when any row fails.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from shared.dialects.postgresql_values import interval_text
from shared.dialects.loading import json_text, kind_of, plain_preparer, to_utc_naive

PG_NULL = "\\N"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
COPY_COLUMN_RE = re.compile(r"COPY [^,]+, line \d+, column ([^:]+)")
_NUMERIC_KINDS = ("int", "decimal", "float")


def _pg_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("PostgreSQL text cannot contain the NUL (0x00) character")
    return value.translate(_COPY_ESCAPES)


def _pg_float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _pg_bytes(kind: str, value: bytes) -> str:
    if kind == "text":
        try:
            return _pg_text(value.decode("utf-8"))
        except UnicodeDecodeError:
            raise ValueError("binary value is not valid UTF-8 and cannot go into a text column") from None
    return "\\\\x" + value.hex()


def _pg_datetime(kind: str, value: datetime) -> str:
    # timestamp WITHOUT time zone would silently drop an offset: store the instant in UTC
    return (to_utc_naive(value) if kind == "timestamp" else value).isoformat()


def _pg_interval(value: timedelta) -> str:
    return interval_text(value)


def _pg_document(kind: str, value: Any) -> str:
    if kind in ("json", "text", "other"):
        return _pg_text(json_text(value))
    raise ValueError(f"a {type(value).__name__} value cannot be written into a {kind} column")


def pg_formatter(kind: str) -> Callable[[Any], str]:
    """COPY text for one value of a column of ``kind``; raises ValueError when impossible."""
    by_type: dict[type, Callable[[Any], str]] = {
        str: _pg_text, int: str, float: _pg_float, Decimal: str, uuid.UUID: str,
        bool: (lambda v: "1" if v else "0") if kind in _NUMERIC_KINDS else (lambda v: "t" if v else "f"),
        bytes: lambda v: _pg_bytes(kind, v), datetime: lambda v: _pg_datetime(kind, v),
        date: date.isoformat, time: time.isoformat, timedelta: _pg_interval,
        list: lambda v: _pg_document(kind, v), dict: lambda v: _pg_document(kind, v),
    }

    def fmt(value: Any) -> str:
        f = by_type.get(type(value))
        if f is not None:
            return f(value)
        if isinstance(value, (bytearray, memoryview)):
            return _pg_bytes(kind, bytes(value))
        for cls, g in by_type.items():
            if isinstance(value, cls):
                return g(value)
        raise ValueError(f"cannot write a {type(value).__name__} value to PostgreSQL")
    return fmt


def _comparable(column: sa.ColumnElement, kind: str) -> sa.ColumnElement:
    """json (unlike jsonb) and some types have no equality operator: compare as text."""
    if kind == "other" or (kind == "json" and not isinstance(column.type, pg.JSONB)):
        return sa.cast(column, sa.Text)
    return column


def build_pg_insert_new(target: sa.Table, staging: sa.TableClause, columns: list[str], key: list[str]) -> sa.Insert:
    """insert_only with a key: ``INSERT ... SELECT ... ON CONFLICT (key) DO NOTHING``."""
    select = sa.select(*[staging.c[c] for c in columns])
    return pg.insert(target).from_select(columns, select).on_conflict_do_nothing(index_elements=key)


def build_pg_upsert(target: sa.Table, staging: sa.TableClause, columns: list[str], key: list[str]) -> sa.Select:
    """Upsert with an unchanged-row guard, wrapped to return (inserted, updated) counts."""
    stmt = pg.insert(target).from_select(columns, sa.select(*[staging.c[c] for c in columns]))
    updates = [c for c in columns if c not in key]
    kinds = {c: kind_of(target.c[c].type) for c in updates}
    guard = sa.or_(*[_comparable(target.c[c], kinds[c]).is_distinct_from(_comparable(stmt.excluded[c], kinds[c]))
                     for c in updates])
    stmt = stmt.on_conflict_do_update(index_elements=key, set_={c: stmt.excluded[c] for c in updates}, where=guard)
    done = stmt.returning(sa.literal_column("(xmax = 0)").label("ins")).cte("dm_upsert")
    return sa.select(sa.func.count().filter(done.c.ins), sa.func.count().filter(sa.not_(done.c.ins)))


def build_pg_claim_keys(staging: sa.TableClause, written: sa.TableClause, key: list[str]) -> sa.Select:
    """(staged rows, staged keys added to the UNIQUE ``written``): ``INSERT ... SELECT ... ON CONFLICT
    DO NOTHING`` skips a key already written and the repeats of a key within the batch."""
    select = sa.select(*[staging.c[k] for k in key])
    added = pg.insert(written).from_select(key, select).on_conflict_do_nothing() \
        .returning(sa.literal_column("1").label("one")).cte("dm_claimed")
    return sa.select(sa.select(sa.func.count()).select_from(staging).scalar_subquery(),
                     sa.select(sa.func.count()).select_from(added).scalar_subquery())


def copy_rows(conn: sa.Connection, table: sa.TableClause | sa.Table, columns: list[str], rows: list[str]) -> None:
    """``COPY table (cols) FROM STDIN`` (text format) with encoded lines. Raises DBAPIError."""
    copy_payload(conn, table, columns, ("\n".join(rows) + "\n").encode("utf-8"))


_PG_MYSQL_CSV = {"bool": "({c})::int", "timestamptz": "({c} AT TIME ZONE 'UTC')", "bytes": "encode({c}, 'hex')"}
_PG_EXPORTS = {"pg_text": "COPY (\n{sql}\n) TO STDOUT",
               "mysql_csv": "COPY (SELECT {cols} FROM (\n{sql}\n) dm_q) TO STDOUT WITH (FORMAT csv, FORCE_QUOTE *, "
                            "NULL 'NULL')"}


def pg_export_sql(sql: str, columns: Any, fmt: str) -> str | None:
    """The COPY statement exporting ``sql`` in a bulk format (None: not for these columns)."""
    if fmt not in _PG_EXPORTS or (fmt == "mysql_csv" and any(c.type in ("interval", "unknown") for c in columns)):
        return None
    quote = plain_preparer(pg.dialect()).quote  # COPY ... TO STDOUT runs without parameters
    cols = ", ".join(_PG_MYSQL_CSV.get(c.type, "{c}").format(c=f"dm_q.{quote(c.name)}") for c in columns)
    return _PG_EXPORTS[fmt].format(sql=sql, cols=cols)


def copy_payload(conn: sa.Connection, table: sa.TableClause | sa.Table, columns: list[str],
                 payload: bytes | Sequence[bytes], *, binary: bool = False) -> None:
    """``COPY table (cols) FROM STDIN`` (text format, or ``binary``) with a payload, or a payload's
    pieces in order (e.g. a binary COPY's header, rows and trailer). Each piece goes to the
    server as it is (one CopyData message): no slice or join copies it on the way.
    Raises DBAPIError."""
    prep = plain_preparer(conn.dialect)  # copy_expert binds no parameters
    cols = ", ".join(prep.quote(c) for c in columns)
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        form = " (FORMAT binary)" if binary else ""
        cursor.copy_expert(f"COPY {prep.format_table(table)} ({cols}) FROM STDIN{form}",
                           _Pieces((payload,) if isinstance(payload, bytes) else payload))
    except Exception as exc:  # noqa: BLE001 - rewrapped as SQLAlchemy does for its own statements
        raise sa.exc.DBAPIError.instance("COPY", None, exc, conn.dialect.loaded_dbapi.Error) from exc
    finally:
        cursor.close()


class _Pieces:
    """The file object ``copy_expert`` reads a COPY's data from: each ``read`` returns the next
    piece whole, whatever size is asked (psycopg2 sends what ``read`` returns as one message),
    then ``b""``. A piece above PIECE_MAX_BYTES (a batch of a few huge rows) goes in slices of
    that size: libpq keeps its send buffer as large as the largest message for the life of
    the (pooled) connection."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._next = _sliced(pieces).__next__

    def read(self, size: int = -1) -> bytes:
        try:
            return self._next()
        except StopIteration:
            return b""


PIECE_MAX_BYTES = 8 << 20


def _sliced(pieces: Iterable[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        if len(piece) <= PIECE_MAX_BYTES:
            yield piece
        else:
            yield from (piece[i:i + PIECE_MAX_BYTES] for i in range(0, len(piece), PIECE_MAX_BYTES))


_PLAIN_TABLE_SQL = """SELECT c.relkind = 'r'
   AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal)
   AND NOT EXISTS (SELECT 1 FROM pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename <> '_RETURN')
FROM pg_class c WHERE c.oid = CAST(:t AS regclass)"""


def pg_null_refusals(conn: sa.Connection, target: sa.Table, columns: list[str]) -> list[tuple[int, str]]:
    """NOT NULL columns of a plain table without triggers or rules (nothing can replace a NULL)."""
    if not conn.execute(sa.text(_PLAIN_TABLE_SQL), {"t": conn.dialect.identifier_preparer.format_table(target)}).scalar():
        return []
    return [(i, f'null value in column "{c}" of relation "{target.name}" violates not-null constraint')
            for i, c in enumerate(columns) if not target.c[c].nullable]
