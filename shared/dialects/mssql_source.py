"""SQL Server, the source side (see ``source_side.py``); value and type helpers in ``mssql_extract.py``.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import sqlalchemy as sa

from shared.dialects.mssql_extract import SNAPSHOT_ALLOWED_SQL, refine_kind, temp_column_type, temp_converter
from shared.dialects.source_side import SourceSide
from shared.dialects.sqlrules import SqlRules
from shared.types import Column

_RUNNING: dict[int, Any] = {}  # id(DB-API connection) -> the cursor executing a source statement


class MSSQLSource(SourceSide):
    """SQL Server as a source."""

    # pyodbc is imported lazily (it needs libodbc). SQL Server has no read-only session
    # switch: steps run in a transaction that is always rolled back (the connection is
    # closed, not pooled), under SNAPSHOT isolation when the database and tempdb allow it,
    # and the login should hold db_datareader only (ApplicationIntent=ReadOnly in the
    # project's options routes to a readable secondary of an availability group).
    # Temporary tables are ``#local`` tables of the session: created by a direct batch (not
    # a prepared statement, whose scope would drop them at once), gone when it closes.
    sql_flavor = "mssql"
    sql_rules = SqlRules(bracket_identifiers=True)

    VALUE_TYPES = {"bool": "bool", "int": "bigint", "float": "float", "Decimal": "decimal", "str": "text",
                   "bytes": "bytes", "bytearray": "bytes", "date": "date", "time": "time",
                   "datetime": "timestamp", "UUID": "uuid"}

    def begin_read_only(self, dbapi_conn: Any, *, timeout_s: float | None) -> None:
        """SNAPSHOT (one consistent view for the whole read) where allowed, else READ COMMITTED;
        a query timeout (``pyodbc`` ``timeout``); the transaction is rolled back at the end."""
        dbapi_conn.commit()
        cur = dbapi_conn.cursor()
        cur.execute(SNAPSHOT_ALLOWED_SQL)
        row = cur.fetchone()
        dbapi_conn.commit()  # SNAPSHOT must be set before the transaction starts
        cur.execute(f"SET TRANSACTION ISOLATION LEVEL {read_isolation_level(row[0] if row else None)}")
        cur.close()
        if timeout_s:
            dbapi_conn.timeout = max(1, int(timeout_s + 0.999))

    def describe_result(self, cursor_description: list, sample_rows: list[tuple]) -> list[Column]:
        """pyodbc describes a column by its Python type; DECIMAL carries precision and scale."""
        cols = []
        for i, d in enumerate(cursor_description):
            kind = refine_kind(self.VALUE_TYPES.get(getattr(d[1], "__name__", ""), "unknown"), i, sample_rows)
            if kind == "decimal" and d[4]:
                cols.append(Column(d[0], kind, precision=d[4], scale=d[5] or 0))
            elif kind == "text" and d[3] and 0 < d[3] <= 4000:  # nvarchar(n): its length, for the #temp column
                cols.append(Column(d[0], kind, length=d[3]))
            else:
                cols.append(Column(d[0], kind))
        return cols

    def open_stream(self, dbapi_conn: Any, sql: str) -> Any:
        """Execute ``sql``; while it runs, :meth:`cancel_statement` can reach its cursor."""
        cursor = dbapi_conn.cursor()
        _RUNNING[id(dbapi_conn)] = cursor
        try:
            cursor.execute(sql)
        finally:
            _RUNNING.pop(id(dbapi_conn), None)
        return cursor

    def cancel_statement(self, dbapi_conn: Any, cursor: Any, engine: sa.Engine) -> None:
        """``SQLCancel`` on the running cursor: the session's, or the one still executing its statement
        (the session learns its cursor only when ``execute`` returns)."""
        cursor = cursor if cursor is not None else _RUNNING.get(id(dbapi_conn))
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

    def temp_column_type(self, col: Column) -> sa.types.TypeEngine:
        """NVARCHAR, DATETIME2(7), DATETIMEOFFSET(7), VARBINARY(max), DECIMAL(<=38, s): values stay exact."""
        return temp_column_type(col)

    def load_converters(self, columns: list[Column]) -> list[Callable[[Any], Any] | None]:
        """Aware timestamps as DATETIMEOFFSET text, UUIDs as text; decimals that a DECIMAL(38, s) would round fail."""
        return [temp_converter(c) for c in columns]

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


def read_isolation_level(snapshot_state: Any) -> str:
    """SNAPSHOT when ``sys.databases.snapshot_isolation_state`` is 1 (ON) for the database and tempdb."""
    return "SNAPSHOT" if snapshot_state == 1 else "READ COMMITTED"
