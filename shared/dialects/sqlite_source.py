"""SQLite, the source side (see ``source_side.py``).
"""
from __future__ import annotations

from typing import Any, Callable

import sqlalchemy as sa

from shared.dialects.source_side import SourceSide
from shared.dialects.sqlrules import SqlRules
from shared.types import Column


SQLITE_READONLY, SQLITE_INTERRUPT = 8, 9  # primary result codes (sqlite3.h)


class SQLiteSource(SourceSide):
    """SQLite as a source."""

    # Sessions go back to the pool (an in-memory database lives in its connection): the
    # temporary tables are dropped and ``query_only`` switched off before. Column types come
    # from the values of the first batch (SQLite's cursor has no declared types).
    discard_source_sessions = False

    sql_flavor = "sqlite"
    sql_rules = SqlRules(bracket_identifiers=True)

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
        """By SQLite's primary result code: SQLITE_INTERRUPT is a timeout (or a cancel, which the caller
        knows); SQLITE_READONLY (a write under ``query_only``) a read-only error."""
        from shared.dialects.classify import sqlite_result_code

        code = sqlite_result_code(exc)
        return {SQLITE_INTERRUPT: "timeout", SQLITE_READONLY: "read_only"}.get(code, "source") if code else "source"

    def load_converters(self, columns: list[Column]) -> list[Callable[[Any], Any] | None]:
        """Values the sqlite3 module can bind: Decimal and UUID as text, dates ISO 8601, durations seconds."""
        iso = lambda v: v if isinstance(v, str) else v.isoformat()  # noqa: E731 - text: PostgreSQL's infinity
        special = {"decimal": str, "uuid": str, "date": iso, "time": iso, "timetz": iso, "timestamp": iso,
                   "timestamptz": iso, "interval": lambda td: td if isinstance(td, str) else td.total_seconds(),
                   "json": str, "unknown": str}
        return [special.get(c.type) for c in columns]
