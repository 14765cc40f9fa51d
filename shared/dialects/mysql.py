"""MySQL and MariaDB: engine facts and engine-specific operations (see ``base.py``)."""
from __future__ import annotations

from typing import Any, Callable, Iterable

import sqlalchemy as sa

from shared.dialects.base import Dialect
from shared.dialects.mysql_read import FLOAT4_PRECISION, float_read_sql, session_modes, setup_source_session
from shared.types import Column


class MySQLDialect(Dialect):
    """MySQL and MariaDB."""

    name = "mysql"

    def reflected_column_name(self, name: str) -> str:
        """SQLAlchemy reads names from SHOW CREATE TABLE and leaves a backtick doubled."""
        return name.replace("``", "`")

    # --- EXTRACTION ---
    # (owned by shared/extract; methods added here by the extract engineer)
    # Values: JSON as text; TINYINT(1)/BOOLEAN stays an int (MySQL cannot tell it from a
    # small number); TIME becomes ``datetime.time`` when within 00:00..24:00, otherwise it
    # stays a ``timedelta``; SET as its text; zero and invalid dates as their text ('0000-00-00');
    # FLOAT read as DOUBLE (exact); BIT(n) as bytes; sessions in UTC (mysql_read.py).
    sql_flavor = "mysql"
    EXTRACT_TYPES = {
        0: "decimal", 246: "decimal", 1: "smallint", 2: "smallint", 9: "int", 3: "int", 8: "bigint",
        4: "float", 5: "float", 7: "timestamp", 12: "timestamp", 10: "date", 14: "date", 11: "time",
        13: "smallint", 245: "json", 16: "bytes", 255: "bytes", 6: "unknown",
    }
    BINARY_CHARSET = 63
    UNSIGNED_FLAG = 32
    TIMEOUT_CODES = (1969, 3024)  # MariaDB max_statement_time, MySQL max_execution_time
    CONNECTION_CODES = (2003, 2006, 2013, 2055, 1053, 1152, 1927)

    def prepare_source_session(self, dbapi_conn: Any) -> None:
        """SET columns as text; zero and invalid dates stay the text the server sent
        ('0000-00-00'); dates storable in temporary tables; UTC, set last (see mysql_read)."""
        from pymysql.constants import FIELD_TYPE

        from pymysql.constants.CLIENT import MULTI_STATEMENTS

        if dbapi_conn.client_flag & MULTI_STATEMENTS:  # one statement per request: the server enforces it
            from shared.errors import ConfigError
            raise ConfigError("the project's options enable multiple statements (client_flag); sources refuse them")
        dec = dbapi_conn.decoders
        dec[FIELD_TYPE.SET] = lambda raw: raw.decode() if isinstance(raw, bytes) else raw
        setup_source_session(dbapi_conn)

    rewrites_reads = True

    def read_sql(self, dbapi_conn: Any, sql: str, columns: list[Column]) -> str | None:
        """FLOAT columns read as DOUBLE, exactly (see :func:`float_read_sql`); None: run ``sql`` as it is."""
        wrapped = float_read_sql(sql, columns)
        if wrapped is None:
            return None
        if wrapped[1]:  # keep an ORDER BY: materialise the derived table instead of merging it
            cur = dbapi_conn.cursor()
            cur.execute("SET SESSION optimizer_switch = 'derived_merge=off'")
            cur.close()
        return wrapped[0]

    def source_privileges(self, dbapi_conn: Any, *, project_id: int) -> Any:
        """SUPER, FILE and grants that write (INSERT…, CREATE…, EXECUTE: a procedure may commit)."""
        from shared.dialects.privileges import mysql_source_risks
        from shared.privileges import SourcePrivileges
        role, risky = mysql_source_risks(dbapi_conn)
        return SourcePrivileges(project_id=project_id, engine=self.name, role=role, risky=risky)

    def begin_read_only(self, dbapi_conn: Any, *, timeout_s: float | None) -> None:
        """Session default and this transaction read-only; a per-statement time limit."""
        cur = dbapi_conn.cursor()
        cur.execute("SET SESSION TRANSACTION READ ONLY")
        if timeout_s and "mariadb" in dbapi_conn.get_server_info().lower():
            cur.execute("SET SESSION max_statement_time = %s", (float(timeout_s),))
        elif timeout_s:
            cur.execute("SET SESSION max_execution_time = %s", (max(1, int(timeout_s * 1000)),))
        dbapi_conn.commit()
        cur.execute("START TRANSACTION READ ONLY")
        cur.close()

    def open_stream(self, dbapi_conn: Any, sql: str) -> Any:
        """An unbuffered ``SSCursor``: rows are read from the socket as they are fetched."""
        import pymysql.cursors

        cursor = dbapi_conn.cursor(pymysql.cursors.SSCursor)
        cursor.execute(sql)
        return cursor

    def describe_cursor(self, cursor: Any, sample_rows: list[tuple]) -> list[Column]:
        """From pymysql's field packets: type code, binary charset, unsigned flag, DECIMAL size."""
        result = getattr(cursor, "_result", None)
        fields = getattr(result, "fields", None) or []
        return [self._column(f) for f in fields] or self.describe_result(list(cursor.description or []), sample_rows)

    def _column(self, f: Any) -> Column:
        kind = self.EXTRACT_TYPES.get(f.type_code)
        unsigned = bool(f.flags & self.UNSIGNED_FLAG)
        if f.type_code == 4:  # FLOAT: float4, read exactly through read_sql / the bulk export
            return Column(f.name, "float", precision=FLOAT4_PRECISION)
        if f.type_code == 16:  # BIT(n): bytes; length = n bits
            return Column(f.name, "bytes", length=f.length or None)
        if kind is None:  # strings, blobs, enum, set
            kind = "bytes" if f.charsetnr == self.BINARY_CHARSET else "text"
        elif unsigned and kind in ("smallint", "int", "bigint"):
            kind = {"smallint": "int", "int": "bigint", "bigint": "decimal"}[kind]
            if kind == "decimal":
                return Column(f.name, kind, precision=20, scale=0)
        if kind == "decimal" and f.type_code in (0, 246):
            precision = f.length - (1 if f.scale else 0) - (0 if unsigned else 1)
            return Column(f.name, kind, precision=max(precision, 1), scale=f.scale)
        return Column(f.name, kind)

    def describe_result(self, cursor_description: list, sample_rows: list[tuple]) -> list[Column]:
        """From DB-API descriptions only (no charset): text vs bytes is unknown, so text."""
        return [Column(d[0], self.EXTRACT_TYPES.get(d[1], "text")) for d in cursor_description]

    def result_converters(self, columns: list[Column]) -> list[Callable[[Any], Any] | None]:
        """TIME arrives as timedelta: a time of day when it fits."""
        from datetime import time, timedelta

        def time_of_day(td: Any) -> Any:
            if isinstance(td, timedelta) and timedelta(0) <= td < timedelta(days=1):
                return time(td.seconds // 3600, td.seconds // 60 % 60, td.seconds % 60, td.microseconds)
            return td

        return [time_of_day if c.type == "time" else None for c in columns]

    def abandon_stream(self, cursor: Any) -> None:
        """Never read the rest of an unbuffered result (pymysql would, on close)."""
        abandon_stream(cursor)

    def cancel_statement(self, dbapi_conn: Any, cursor: Any, engine: sa.Engine) -> None:
        """``KILL QUERY`` for the session's thread id, from a second connection."""
        with engine.connect() as conn:
            conn.exec_driver_sql("KILL QUERY %s", (dbapi_conn.thread_id(),))

    def classify_error(self, exc: BaseException) -> str:
        """By MySQL error number (the first argument of pymysql's errors)."""
        import pymysql

        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code == 1317:
            return "cancelled"
        if code in self.TIMEOUT_CODES:
            return "timeout"
        if code == 1792:
            return "read_only"
        if code in self.CONNECTION_CODES or isinstance(exc, pymysql.err.InterfaceError):
            return "connection"
        return "source"

    def bulk_export_sql(self, sql: str, columns: list[Column], fmt: str) -> str | None:
        """``pg_text`` built by the server (CONCAT_WS of escaped values), one string per row.

        Not for a query with ORDER BY: MariaDB may ignore the order inside the derived
        table this needs, and the general path keeps it.
        """
        return mysql_export_sql(sql, columns, fmt)

    def bulk_export(self, dbapi_conn: Any, sql: str, *, chunk_bytes: int,
                    max_rows: int) -> Iterable[tuple[bytes, int]]:
        """Rows of one undecoded string each, streamed (``SSCursor``) and joined into chunks."""
        return mysql_export_chunks(dbapi_conn, sql, chunk_bytes, max_rows)

    def temp_column_type(self, col: Column) -> sa.types.TypeEngine:
        """UUID as CHAR(36), intervals as TIME(6); everything else as :func:`to_sqlalchemy`."""
        from sqlalchemy.dialects import mysql

        if col.type == "uuid":
            return sa.CHAR(36)
        if col.type == "interval":
            return mysql.TIME(fsp=6)
        if col.type in ("timestamp", "timestamptz"):
            return mysql.DATETIME(fsp=6)
        if col.type == "time":
            return mysql.TIME(fsp=6)
        if col.type == "decimal" and col.precision:  # MySQL: at most DECIMAL(65, 30)
            scale = min(col.scale or 0, 30)
            return sa.Numeric(min(max(col.precision, scale), 65), scale, asdecimal=True)
        return super().temp_column_type(col)

    def load_converters(self, columns: list[Column]) -> list[Callable[[Any], Any] | None]:
        """UUID as text, aware timestamps as naive UTC (MySQL DATETIME has no zone)."""
        from datetime import timezone

        def utc(v: Any) -> Any:
            return v.astimezone(timezone.utc).replace(tzinfo=None) if getattr(v, "tzinfo", None) else v

        def no_offset(v: Any) -> Any:
            if getattr(v, "utcoffset", lambda: None)() is not None:
                raise ValueError(f"a MariaDB TIME cannot hold the offset of {v.isoformat()}")
            return v

        special = {"uuid": str, "timestamptz": utc, "timetz": no_offset}
        return [special.get(c.type) for c in columns]

    # --- LOADING ---
    # (owned by shared/load) Multi-row INSERT (PyMySQL's executemany rewrites to
    # max-packet-sized statements) into a TEMPORARY staging table, then INSERT ... SELECT
    # ... ON DUPLICATE KEY UPDATE. Bulk-text batches (shared.dialects.bulk) go through LOAD DATA
    # LOCAL INFILE instead; LOCAL turns data errors into warnings (as IGNORE does), so a batch
    # with any warning or a missing row is rolled back to its savepoint and redone this strict way.
    # Sessions: time_zone +00:00, STRICT_ALL_TABLES added, MariaDB max_statement_time.
    statement_rollback = True
    server_isolation = True

    bulk_import_format = "mysql_csv"
    bulk_import_refuses_rounding = True  # LOAD DATA's notes (1265) refuse the batch

    def bulk_import(self, conn: sa.Connection, table: sa.TableClause | sa.Table, columns: list[str],
                    payload: bytes, *, kinds: list[str], rows: int) -> None:
        """``LOAD DATA LOCAL INFILE`` from a temporary file. LOCAL reports bad data as warnings
        instead of errors, so any warning or missing row raises BulkRefused (the batch is redone
        the general, strict way)."""
        mysql_load_payload(conn, table, columns, payload, kinds=kinds, rows=rows)

    def create_key_table(self, conn: sa.Connection, name: str, target: sa.Table, key: list[str]) -> sa.TableClause:
        """The sync_delete seen-keys table, indexed on the key: without the index MariaDB runs
        the end-of-run anti-join as a nested loop (quadratic). The index is declared in the
        CREATE TEMPORARY TABLE itself, because CREATE INDEX would commit implicitly."""
        from shared.dialects.loading import build_staging_select, compile_sql, temp_table
        select = compile_sql(build_staging_select(target, key), conn.dialect)
        columns = ", ".join(self.quote_identifier(conn.dialect, k) for k in key)
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {self.quote_identifier(conn.dialect, name)} "
                             f"(INDEX ({columns})) AS {select}")
        return temp_table(name, key)

    def start_load_transaction(self, conn: sa.Connection, *, statement_timeout_s: float | None) -> None:
        """UTC, strict mode; the connection is discarded after the load, so nothing leaks."""
        conn.exec_driver_sql("SET time_zone = '+00:00'")
        current = conn.exec_driver_sql("SELECT @@SESSION.sql_mode").scalar_one()
        # strict, but zero and invalid dates (from a MariaDB/MySQL source) are written as they are
        conn.execute(sa.text("SET SESSION sql_mode = :m"), {"m": session_modes(current, add=("STRICT_ALL_TABLES",))})
        if statement_timeout_s and getattr(conn.dialect, "is_mariadb", False):
            conn.execute(sa.text("SET SESSION max_statement_time = :s"), {"s": float(statement_timeout_s)})

    def load_cancel_handle(self, conn: sa.Connection) -> Any:
        """The server's connection id (for ``KILL QUERY``)."""
        return int(conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar_one())

    def cancel_load_statement(self, engine: sa.Engine, handle: Any) -> None:
        """``KILL QUERY id`` from a second connection (the session and its transaction survive)."""
        with engine.connect() as other:
            other.execute(sa.text("KILL QUERY :id"), {"id": int(handle)})

    def row_encoder(self, target_columns: list[sa.Column], source_columns: list[Column]) -> Callable[[tuple], Any]:
        """Driver tuples: bool as 1/0, aware timestamps as UTC, UUID as text or 16 bytes."""
        return guarded_encoder(mysql_row_encoder(target_columns, source_columns), target_columns, source_columns,
                               engine="MariaDB", allow_rounding=self.allow_rounding, holds_special_text=True)

    def bulk_insert(self, conn: sa.Connection, table: sa.TableClause | sa.Table, columns: list[str],
                    rows: list[Any]) -> None:
        """Multi-row INSERTs whose warnings and notes are read back (a note such as a decimal rounded
        to its column's scale fails the row unless ``allow_rounding``)."""
        mysql_insert_checked(conn, table, columns, rows, allow_rounding=self.allow_rounding)

    def bulk_load_temp(self, dbapi_conn: Any, sa_dialect: sa.Dialect, name: str, columns: list[Column],
                       batches: Iterable[list[tuple]]) -> int:
        """As the default, with decimals checked against the temporary column (no silent rounding) and
        a decimal of unknown scale narrowed afterwards to the scale its values need."""
        places: dict[int, int] = {}
        watched = mysql_temp_decimals(columns, [self.temp_column_type(c) for c in columns], batches, places)
        total = super().bulk_load_temp(dbapi_conn, sa_dialect, name, columns, watched)
        quote = plain_preparer(sa_dialect).quote_identifier
        narrow = [f"MODIFY {quote(columns[i].name)} DECIMAL({35 + p}, {p})" for i, p in places.items()
                  if not columns[i].precision]
        if narrow:
            cur = dbapi_conn.cursor()
            cur.execute(f"ALTER TABLE {quote(name)} {', '.join(narrow)}")
            cur.close()
        return total

    def check_keys(self, conn: sa.Connection, staging: sa.TableClause, written: sa.TableClause, key: list[str],
                   collations: list[str | None]) -> tuple[int, int, int]:
        """One scan of staging (MySQL cannot open a TEMPORARY table twice in one statement)."""
        rows, distinct, repeated = conn.execute(build_mysql_batch_stats(written, staging, key, conn.dialect)).one()
        return int(rows), int(distinct), int(repeated)

    def create_isolation(self, conn: sa.Connection, **kwargs: Any) -> Any:
        """An anonymous compound statement trying each row on its own (see mysql_isolate)."""
        return create_mysql_isolation(conn, **kwargs)

    def run_isolation(self, conn: sa.Connection, handle: Any, *, columns: list[str],
                      rows: list[Any]) -> list[tuple[int, str | None, int, int]]:
        return run_mysql_isolation(conn, handle, columns=columns, rows=rows, allow_rounding=self.allow_rounding)

    def null_refusals(self, conn: sa.Connection, target: sa.Table, columns: list[str]) -> list[tuple[int, str]]:
        """NOT NULL columns strict mode refuses NULL for (see :func:`mysql_null_refusals`)."""
        return mysql_null_refusals(conn, target, columns)

    def upsert(self, conn: sa.Connection, target: sa.Table, staging: sa.TableClause, columns: list[str],
               key: list[str], staged: int) -> tuple[int, int, int]:
        """Counts from one stats query and the affected-rows arithmetic of ON DUPLICATE KEY UPDATE
        (1 per insert, 2 per changed row, 1 per unchanged row with CLIENT_FOUND_ROWS, else 0).

        Raises DuplicateKeysInBatch when the batch holds a key twice (counts would be ambiguous).
        """
        rows, distinct, matched = conn.execute(build_mysql_batch_stats(target, staging, key, conn.dialect)).one()
        if distinct < rows:
            raise DuplicateKeysInBatch()
        if not [c for c in columns if c not in key]:
            inserted, skipped = self.insert_new(conn, target, staging, columns, key, staged)
            return inserted, 0, skipped
        affected = conn.execute(build_mysql_upsert(target, staging, columns, key)).rowcount
        inserted = staged - matched
        found_rows = bool(conn.connection.dbapi_connection.client_flag & _FOUND_ROWS)
        updated = affected - staged if found_rows else (affected - inserted) // 2
        return inserted, updated, staged - inserted - updated

    def set_lock_timeout(self, conn: sa.Connection, seconds: float) -> None:
        """``innodb_lock_wait_timeout`` for this session (error 1205 when it expires)."""
        conn.execute(sa.text("SET SESSION innodb_lock_wait_timeout = :s"), {"s": max(1, int(seconds))})

    def is_row_error(self, exc: BaseException) -> bool:
        """Any server error about the data; not permissions, unknown objects or syntax."""
        code = mysql_error_code(exc)
        return (code is not None and not 2000 <= code < 3000  # 2xxx: client errors; 1xxx, 3xxx, 4xxx: server
                and code not in MYSQL_FATAL and not self.is_transient(exc))

    def load_error_message(self, exc: BaseException) -> str:
        """``(1048) Column 'name' cannot be null``."""
        orig = getattr(exc, "orig", exc)
        args = getattr(orig, "args", ())
        if len(args) >= 2:
            return f"({args[0]}) {_AT_ROW.sub('', str(args[1]))}"
        return super().load_error_message(exc)


# --- LOADING (module helpers) ---
import re  # noqa: E402

from pymysql.constants.CLIENT import FOUND_ROWS as _FOUND_ROWS  # noqa: E402

from shared.dialects.exact import guarded_encoder  # noqa: E402
from shared.dialects.loading import DuplicateKeysInBatch, plain_preparer  # noqa: E402
from shared.dialects.mysql_isolate import create_mysql_isolation, run_mysql_isolation  # noqa: E402
from shared.dialects.mysql_bulk import (  # noqa: E402
    abandon_stream, mysql_export_chunks, mysql_export_sql, mysql_load_payload,
)
from shared.dialects.mysql_load import (  # noqa: E402
    MYSQL_TRANSIENT, MYSQL_FATAL, build_mysql_batch_stats, build_mysql_upsert, mysql_error_code,
    mysql_insert_checked, mysql_null_refusals, mysql_row_encoder, mysql_temp_decimals,
)

_AT_ROW = re.compile(r" at row \d+$")
