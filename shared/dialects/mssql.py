"""SQL Server: engine facts and engine-specific operations (see ``base.py``)."""
from __future__ import annotations

from typing import Any, Iterable

import sqlalchemy as sa

from shared.dialects.base import Dialect
from shared.types import Column


class MSSQLDialect(Dialect):
    """SQL Server."""

    name = "mssql"
    max_identifier_length = 128
    transactional_ddl = True
    truncate_is_transactional = True

    # --- EXTRACTION ---
    # (owned by shared/extract; methods added here by the extract engineer)
    # pyodbc is imported lazily (it needs libodbc). SQL Server has no read-only session
    # switch: steps run in a transaction that is always rolled back, and the login should
    # hold db_datareader only. Temporary tables are ``#local`` tables of the session.
    sql_flavor = "mssql"
    VALUE_TYPES = {"bool": "bool", "int": "bigint", "float": "float", "Decimal": "decimal", "str": "text",
                   "bytes": "bytes", "bytearray": "bytes", "date": "date", "time": "time",
                   "datetime": "timestamp", "UUID": "uuid"}

    def begin_read_only(self, dbapi_conn: Any, *, timeout_s: float | None) -> None:
        """Best effort: READ COMMITTED, a query timeout (``pyodbc`` ``timeout``), rolled back at the end."""
        dbapi_conn.commit()
        cur = dbapi_conn.cursor()
        cur.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        cur.close()
        if timeout_s:
            dbapi_conn.timeout = max(1, int(timeout_s + 0.999))

    def describe_result(self, cursor_description: list, sample_rows: list[tuple]) -> list[Column]:
        """pyodbc describes a column by its Python type; DECIMAL carries precision and scale."""
        cols = []
        for d in cursor_description:
            kind = self.VALUE_TYPES.get(getattr(d[1], "__name__", ""), "unknown")
            if kind == "decimal" and d[4]:
                cols.append(Column(d[0], kind, precision=d[4], scale=d[5] or 0))
            else:
                cols.append(Column(d[0], kind))
        return cols

    def cancel_statement(self, dbapi_conn: Any, cursor: Any, engine: sa.Engine) -> None:
        """``SQLCancel`` on the running cursor."""
        if cursor is not None:
            cursor.cancel()

    def classify_error(self, exc: BaseException) -> str:
        """By ODBC SQLSTATE: 08xxx lost connection, HYT00 timeout, HY008 cancelled."""
        state = str(exc.args[0]) if exc.args else ""
        if state.startswith("08"):
            return "connection"
        return {"HYT00": "timeout", "HYT01": "timeout", "HY008": "cancelled"}.get(state, "source")

    def probe_sql(self, sql: str) -> str:
        """``TOP 0`` over a derived table (a step that starts with WITH cannot be probed this way)."""
        return f"SELECT TOP 0 * FROM (\n{sql}\n) AS dm_probe"

    def temp_table_name(self, step: int, token: str) -> str:
        """A ``#local`` temporary table, dropped with the session."""
        return f"#dm_result{step}_{token}"

    def create_temp_table_sql(self, sa_dialect: sa.Dialect, name: str, columns: list[Column]) -> str:
        """``CREATE TABLE [#name] (...)``: the ``#`` makes it temporary."""
        table = sa.Table(name, sa.MetaData(), *(sa.Column(c.name, self.temp_column_type(c)) for c in columns))
        return str(sa.schema.CreateTable(table).compile(dialect=sa_dialect)).strip()

    def bulk_load_temp(self, dbapi_conn: Any, sa_dialect: sa.Dialect, name: str, columns: list[Column],
                       batches: Iterable[list[tuple]]) -> int:
        """Parameter arrays (``fast_executemany``)."""
        original = dbapi_conn.cursor

        class _Fast:
            def cursor(self) -> Any:
                cur = original()
                cur.fast_executemany = True
                return cur

        return super().bulk_load_temp(_Fast(), sa_dialect, name, columns, batches)

    # --- LOADING ---
    # (owned by shared/load)
