"""SQLite, the destination side (see ``destination_side.py``); the SQL it runs is in ``sqlite_load.py``.
"""
from __future__ import annotations

from typing import Any, Callable

import sqlalchemy as sa

from shared.dialects.destination_side import DestinationSide
from shared.dialects.exact import guarded_encoder
from shared.dialects.loading import build_batch_stats
from shared.dialects.sourcevalues import with_source_checks
from shared.dialects.sqlite_load import (
    build_sqlite_upsert, sqlite_is_row_error, sqlite_key_collations, sqlite_row_encoder,
)
from shared.types import Column


class SQLiteDestination(DestinationSide):
    """SQLite as a destination.

    ``executemany`` inside one transaction (BEGIN IMMEDIATE, driver auto-transactions off so
    SAVEPOINTs work); keyed modes go through a TEMP staging table and ``INSERT ... ON CONFLICT
    DO UPDATE ... WHERE <changed>``. Foreign keys are enforced on the load connection. No
    statement timeout (cancel uses ``interrupt()``).
    """

    rowid_primary_key = True

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
        matched, done = self.counted_upsert_start(conn, build_batch_stats(target, staging, key), target=target,
                                                  staging=staging, columns=columns, key=key, staged=staged)
        if done is not None:
            return done
        written = conn.execute(build_sqlite_upsert(target, staging, columns, key)).rowcount
        inserted = staged - matched
        return inserted, written - inserted, matched - (written - inserted)

    def set_lock_timeout(self, conn: sa.Connection, seconds: float) -> None:
        """``PRAGMA busy_timeout`` ("database is locked" when it expires)."""
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {max(1, int(seconds * 1000))}")

    def is_row_error(self, exc: BaseException) -> bool:
        """Constraint violations, datatype mismatches, values too big."""
        return sqlite_is_row_error(exc)
