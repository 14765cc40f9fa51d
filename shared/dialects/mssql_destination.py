"""SQL Server, the destination side (see ``destination_side.py``); the SQL it runs is in ``mssql_load.py``.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shared.dialects.destination_side import DestinationSide
from shared.dialects.mssql_load import (
    MSSQL_ROW_CODES, build_mssql_merge, build_mssql_staging, mssql_error_text, mssql_row_encoder,
)
from shared.dialects.sourcevalues import with_source_checks
from shared.types import Column


class MSSQLDestination(DestinationSide):
    """SQL Server as a destination."""

    # (owned by shared/load) pyodbc ``fast_executemany`` into a ``#temp`` staging table, then
    # one MERGE (OUTPUT $action gives the counts). Cancel is ``KILL <spid>`` from a second
    # connection: it ends the session, so the transaction is rolled back (needs ALTER ANY
    # CONNECTION). Statement timeout: pyodbc's connection ``timeout``. XACT_ABORT stays OFF so
    # a failing statement leaves the transaction usable for SAVEPOINT (SAVE TRANSACTION) rollback.
    release_after_rollback = False  # SAVE TRANSACTION has no RELEASE

    def start_load_transaction(self, conn: sa.Connection, *, statement_timeout_s: float | None) -> None:
        conn.exec_driver_sql("SET XACT_ABORT OFF")
        if statement_timeout_s:
            conn.connection.dbapi_connection.timeout = max(1, int(statement_timeout_s))

    def set_lock_timeout(self, conn: sa.Connection, seconds: float) -> None:
        """``SET LOCK_TIMEOUT`` (error 1222 when it expires)."""
        conn.exec_driver_sql(f"SET LOCK_TIMEOUT {max(1, int(seconds * 1000))}")

    def load_cancel_handle(self, conn: sa.Connection) -> Any:
        return int(conn.exec_driver_sql("SELECT @@SPID").scalar_one())

    def cancel_load_statement(self, engine: sa.Engine, handle: Any) -> None:
        with engine.connect() as other:
            other.exec_driver_sql(f"KILL {int(handle)}")  # an integer session id from the server

    def row_encoder(self, target_columns: list[sa.Column], source_columns: list[Column]) -> Any:
        """pyodbc tuples: aware timestamps kept for DATETIMEOFFSET, else UTC; UUID as text."""
        from shared.dialects.exact import guarded_encoder
        return with_source_checks(
            guarded_encoder(mssql_row_encoder(target_columns), target_columns, source_columns,
                            engine="SQL Server", allow_rounding=self.allow_rounding),
            target_columns, source_columns, engine="SQL Server")

    def create_staging(self, conn: sa.Connection, name: str, target: sa.Table, columns: list[str]) -> sa.TableClause:
        """A ``#temp`` table (session-scoped) with the target's column types, without IDENTITY."""
        from shared.dialects.loading import temp_table
        temp = name if name.startswith("#") else f"#{name}"
        conn.exec_driver_sql(build_mssql_staging(target, temp, columns, conn.dialect))
        return temp_table(temp, columns)

    def bulk_insert(self, conn: sa.Connection, table: sa.TableClause | sa.Table, columns: list[str],
                    rows: list[Any]) -> None:
        """``executemany`` with ``fast_executemany`` (one round trip per parameter array)."""
        prep = conn.dialect.identifier_preparer
        sql = (f"INSERT INTO {prep.format_table(table)} ({', '.join(prep.quote(c) for c in columns)}) "
               f"VALUES ({', '.join(['?'] * len(columns))})")
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.fast_executemany = True
            cursor.executemany(sql, rows)
        except Exception as exc:  # noqa: BLE001 - rewrapped as SQLAlchemy does for its own statements
            raise sa.exc.DBAPIError.instance(sql, None, exc, conn.dialect.loaded_dbapi.Error) from exc
        finally:
            cursor.close()

    def upsert(self, conn: sa.Connection, target: sa.Table, staging: sa.TableClause, columns: list[str],
               key: list[str], staged: int) -> tuple[int, int, int]:
        """MERGE; a key twice in the batch fails it (error 8672 or a key violation), so it is split."""
        actions = [r[0] for r in conn.execute(build_mssql_merge(target, staging, columns, key, conn.dialect))]
        inserted, updated = actions.count("INSERT"), actions.count("UPDATE")
        return inserted, updated, staged - inserted - updated

    def is_row_error(self, exc: BaseException) -> bool:
        state, message = mssql_error_text(exc)
        if self.is_transient(exc):
            return False
        return state.startswith("22") or state == "23000" or any(c in message for c in MSSQL_ROW_CODES)
