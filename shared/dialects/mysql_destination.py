"""MySQL and MariaDB, the destination side (see ``destination_side.py``); the SQL it runs is in
``mysql_load.py``, ``mysql_bulk.py`` and ``mysql_isolate.py``.
"""
from __future__ import annotations

import re
from typing import Any, Callable

import sqlalchemy as sa
from pymysql.constants.CLIENT import FOUND_ROWS as _FOUND_ROWS

from shared.dialects.destination_side import DestinationSide
from shared.dialects.exact import guarded_encoder
from shared.dialects.mysql_bulk import mysql_load_payload
from shared.dialects.mysql_isolate import create_mysql_isolation, run_mysql_isolation
from shared.dialects.mysql_load import (
    MYSQL_FATAL, build_mysql_batch_stats, build_mysql_upsert, mysql_error_code, mysql_insert_checked,
    mysql_null_refusals, mysql_row_encoder,
)
from shared.dialects.mysql_read import session_modes
from shared.types import Column

_AT_ROW = re.compile(r" at row \d+$")


class MySQLDestination(DestinationSide):
    """MySQL and MariaDB as a destination."""

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
                    payload: bytes, *, kinds: list[str], rows: int, fmt: str | None = None) -> None:
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
        stats = build_mysql_batch_stats(target, staging, key, conn.dialect)
        matched, done = self.counted_upsert_start(conn, stats, target=target, staging=staging, columns=columns,
                                                  key=key, staged=staged)
        if done is not None:
            return done
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
