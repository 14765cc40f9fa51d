"""SQLite: engine facts and engine-specific operations (see ``base.py``)."""
from __future__ import annotations

from typing import Any, Callable

import sqlalchemy as sa

from shared.dialects.base import Dialect
from shared.types import Column


class SQLiteDialect(Dialect):
    """SQLite."""

    name = "sqlite"

    # --- EXTRACTION ---
    # (owned by shared/extract; methods added here by the extract engineer)
    # Sessions go back to the pool (an in-memory database lives in its connection): the
    # temporary tables are dropped and ``query_only`` switched off before. Column types come
    # from the values of the first batch (SQLite's cursor has no declared types).
    discard_source_sessions = False
    sql_flavor = "sqlite"
    VALUE_TYPES = {bool: "bool", int: "bigint", float: "float", str: "text", bytes: "bytes"}

    def begin_read_only(self, dbapi_conn: Any, *, timeout_s: float | None) -> None:
        """``PRAGMA query_only``; the time limit is a progress handler that interrupts the session."""
        import time

        dbapi_conn.commit()
        dbapi_conn.execute("PRAGMA query_only = ON")
        if timeout_s:
            deadline = time.monotonic() + timeout_s
            dbapi_conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)

    def describe_result(self, cursor_description: list, sample_rows: list[tuple]) -> list[Column]:
        """By the first non-NULL value of each column (``unknown`` when all are NULL)."""
        cols = []
        for i, d in enumerate(cursor_description):
            value = next((r[i] for r in sample_rows if r[i] is not None), None)
            cols.append(Column(d[0], self.VALUE_TYPES.get(type(value), "unknown")))
        return cols

    def cancel_statement(self, dbapi_conn: Any, cursor: Any, engine: sa.Engine) -> None:
        """``sqlite3.Connection.interrupt()``, safe from another thread."""
        dbapi_conn.interrupt()

    def release_source_session(self, dbapi_conn: Any, temp_tables: list[str]) -> None:
        """Writable again, no progress handler, temporary tables dropped."""
        dbapi_conn.set_progress_handler(None, 0)
        dbapi_conn.execute("PRAGMA query_only = OFF")
        for name in temp_tables:
            dbapi_conn.execute(f'DROP TABLE IF EXISTS temp."{name}"')
        dbapi_conn.commit()

    def classify_error(self, exc: BaseException) -> str:
        """``interrupted`` is a timeout (or a cancel, which the caller knows); writes are read-only errors."""
        text = str(exc).lower()
        if "interrupted" in text:
            return "timeout"
        if "readonly" in text or "read-only" in text or "query_only" in text:
            return "read_only"
        return "source"

    def load_converters(self, columns: list[Column]) -> list[Callable[[Any], Any] | None]:
        """Values the sqlite3 module can bind: Decimal and UUID as text, dates ISO 8601, durations seconds."""
        iso = lambda v: v if isinstance(v, str) else v.isoformat()  # noqa: E731 - text: PostgreSQL's infinity
        special = {"decimal": str, "uuid": str, "date": iso, "time": iso, "timetz": iso, "timestamp": iso,
                   "timestamptz": iso, "interval": lambda td: td if isinstance(td, str) else td.total_seconds(),
                   "json": str, "unknown": str}
        return [special.get(c.type) for c in columns]

    # --- LOADING ---
    # (owned by shared/load) ``executemany`` inside one transaction (BEGIN IMMEDIATE, driver
    # auto-transactions off so SAVEPOINTs work); keyed modes go through a TEMP staging table
    # and ``INSERT ... ON CONFLICT DO UPDATE ... WHERE <changed>``. Foreign keys are enforced
    # on the load connection. No statement timeout (cancel uses ``interrupt()``).

    def prepare_load_connection(self, conn: sa.Connection) -> None:
        """Driver transactions off (we BEGIN ourselves), foreign keys on (not possible in a transaction)."""
        raw = conn.connection.dbapi_connection
        raw.isolation_level = None
        raw.execute("PRAGMA foreign_keys = ON")

    def start_load_transaction(self, conn: sa.Connection, *, statement_timeout_s: float | None) -> None:
        """``BEGIN IMMEDIATE``: take the write lock now rather than fail to upgrade later."""
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    def cancel_load_statement(self, engine: sa.Engine, handle: Any) -> None:
        """``sqlite3.Connection.interrupt()`` (thread-safe)."""
        handle.interrupt()

    def row_encoder(self, target_columns: list[sa.Column], source_columns: list[Column]) -> Callable[[tuple], Any]:
        """Bindable tuples: SQLAlchemy's text formats for dates, UUID text, exact-or-refused decimals."""
        return with_source_checks(
            guarded_encoder(sqlite_row_encoder(target_columns), target_columns, source_columns, engine="SQLite",
                            allow_rounding=self.allow_rounding, enforces_scale=False),
            target_columns, source_columns, engine="SQLite")

    def key_collations(self, conn: sa.Connection, target: sa.Table, key: list[str]) -> list[str | None]:
        """The key index's collations (NOCASE, RTRIM...): staging copies made with AS SELECT lose them."""
        return sqlite_key_collations(conn, target, key)

    def upsert(self, conn: sa.Connection, target: sa.Table, staging: sa.TableClause, columns: list[str],
               key: list[str], staged: int) -> tuple[int, int, int]:
        """changes() counts inserted and changed rows; matched rows come from one stats query.

        Raises DuplicateKeysInBatch when the batch holds a key twice.
        """
        rows, distinct, matched = conn.execute(build_batch_stats(target, staging, key)).one()
        if distinct < rows:
            raise DuplicateKeysInBatch()
        if not [c for c in columns if c not in key]:
            inserted, skipped = self.insert_new(conn, target, staging, columns, key, staged)
            return inserted, 0, skipped
        written = conn.execute(build_sqlite_upsert(target, staging, columns, key)).rowcount
        inserted = staged - matched
        return inserted, written - inserted, matched - (written - inserted)

    def set_lock_timeout(self, conn: sa.Connection, seconds: float) -> None:
        """``PRAGMA busy_timeout`` ("database is locked" when it expires)."""
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {max(1, int(seconds * 1000))}")

    def is_row_error(self, exc: BaseException) -> bool:
        """Constraint violations, datatype mismatches, values too big."""
        return sqlite_is_row_error(exc)


# --- LOADING (module helpers) ---
from shared.dialects.exact import guarded_encoder  # noqa: E402
from shared.dialects.loading import DuplicateKeysInBatch, build_batch_stats  # noqa: E402
from shared.dialects.sqlite_load import (  # noqa: E402
    build_sqlite_upsert, sqlite_is_row_error, sqlite_is_transient, sqlite_key_collations, sqlite_row_encoder,
)
from shared.dialects.sourcevalues import with_source_checks  # noqa: E402
