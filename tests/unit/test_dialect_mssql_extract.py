"""SQL Server as a SOURCE and for ``@resultN`` temporary tables: the statements and values the
SQL Server suite (tests/integration/mssql) relies on, checked here without a server or pyodbc."""
from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy.dialects import mssql
from sqlalchemy.dialects.mssql.pyodbc import MSDialect_pyodbc

from shared.connections import build_url
from shared.dialects import get_dialect
from shared.dialects.mssql import read_isolation_level
from shared.dialects.mssql_extract import SNAPSHOT_ALLOWED_SQL, decimal_places
from shared.dialects.mssql_load import datetimeoffset_text
from shared.types import Column

D = get_dialect("mssql+pyodbc")
SA = mssql.dialect()


def test_temp_tables_hold_every_portable_value_exactly() -> None:
    columns = [Column("name", "text"), Column("code", "text", length=20), Column("at", "timestamp"),
               Column("at_tz", "timestamptz"), Column("t", "time"), Column("d", "date"), Column("blob", "bytes"),
               Column("total", "decimal"), Column("wide", "decimal", precision=50, scale=4),
               Column("money", "decimal", precision=19, scale=4), Column("u", "uuid"), Column("ok", "bool"),
               Column("doc", "json"), Column("n", "bigint"), Column("x", "float")]
    ddl = D.create_temp_table_sql(SA, D.temp_table_name(2, "ab12cd34"), columns)
    assert ddl.splitlines()[0] == "CREATE TABLE [#dm_result2_ab12cd34] ("
    types = [line.strip().rstrip(",").removesuffix(" NULL") for line in ddl.splitlines()[1:-1]]
    assert types == ["name NVARCHAR(max)", "code NVARCHAR(20)", "at DATETIME2(7)", "at_tz DATETIMEOFFSET(7)",
                     "t TIME(7)", "d DATE", "blob VARBINARY(max)", "total DECIMAL(38, 10)", "wide DECIMAL(38, 4)",
                     "money DECIMAL(19, 4)", "u UNIQUEIDENTIFIER", "ok BIT", "doc NVARCHAR(max)", "n BIGINT",
                     "x FLOAT(53)"]


def test_temp_values_are_bound_so_sql_server_keeps_them() -> None:
    columns = [Column("at_tz", "timestamptz"), Column("u", "uuid"), Column("doc", "json"),
               Column("blob", "bytes"), Column("total", "decimal"), Column("d", "date"), Column("t", "time")]
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    row = (datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=-3, minutes=-30))), u,
           {"k": ["ü", 1]}, bytearray(b"\x00\x01"), Decimal("12.5000000000000"), date(2024, 1, 2), time(3, 4, 5, 6))
    assert D.adapt_rows([row, (None,) * 7], D.load_converters(columns)) == [
        ("2024-05-06 07:08:09.123456-03:30", str(u), '{"k": ["ü", 1]}', b"\x00\x01", Decimal("12.5000000000000"),
         date(2024, 1, 2), time(3, 4, 5, 6)),
        (None,) * 7]


def test_a_decimal_the_temp_column_would_round_fails_naming_column_and_value() -> None:
    convert = D.load_converters([Column("avg_total", "decimal"), Column("fixed", "decimal", precision=10, scale=2)])
    with pytest.raises(ValueError, match=r"'avg_total': value 1\.12345678901 has more than 10 decimal places"):
        convert[0](Decimal("1.12345678901"))
    with pytest.raises(ValueError, match=r"'fixed': value 1\.005 .*DECIMAL\(10, 2\)"):
        convert[1](Decimal("1.005"))
    assert convert[1](Decimal("1.50")) == Decimal("1.50")
    assert [decimal_places(Decimal(v)) for v in ("1.2500", "100", "1E+3", "0.000", "-0.10")] == [2, 0, 0, 0, 1]


@pytest.mark.parametrize(("value", "text"), [
    (datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))), "2024-01-01 12:00:00.000000+02:00"),
    (datetime(2024, 1, 1, 12, 0, 0, 5), "2024-01-01 12:00:00.000005+00:00"),  # naive is taken as UTC
    (datetime(1890, 1, 1, 12, tzinfo=timezone(timedelta(minutes=-9, seconds=-21))),
     "1890-01-01 12:09:21.000000+00:00"),  # an offset with seconds: the same instant in UTC
])
def test_datetimeoffset_values_travel_as_text_with_their_offset(value: datetime, text: str) -> None:
    # pyodbc drops tzinfo when it binds a datetime; the loader's encoder must not rely on it
    assert datetimeoffset_text(value) == text


def test_the_loader_binds_aware_timestamps_into_datetimeoffset_as_text() -> None:
    import sqlalchemy as sa
    encode = D.row_encoder([sa.Column("at", mssql.DATETIMEOFFSET()), sa.Column("naive", mssql.DATETIME2(7))], [])
    aware = datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert encode((aware, aware)) == ("2024-01-01 12:00:00.000000+02:00", datetime(2024, 1, 1, 10))


class _Cursor:
    def __init__(self, log: list[str], snapshot_state: int | None) -> None:
        self.log, self.snapshot_state = log, snapshot_state

    def execute(self, sql: str) -> None:
        self.log.append(sql)

    def fetchone(self) -> tuple | None:
        return None if self.snapshot_state is None else (self.snapshot_state,)

    def close(self) -> None:
        self.log.append("close")


class _Connection:
    def __init__(self, snapshot_state: int | None) -> None:
        self.log: list[str] = []
        self.timeout = 0
        self.snapshot_state = snapshot_state

    def commit(self) -> None:
        self.log.append("commit")

    def cursor(self) -> _Cursor:
        return _Cursor(self.log, self.snapshot_state)


@pytest.mark.parametrize(("state", "level"), [(1, "SNAPSHOT"), (0, "READ COMMITTED"), (None, "READ COMMITTED")])
def test_read_only_sessions_use_snapshot_only_where_the_databases_allow_it(state: int | None, level: str) -> None:
    conn = _Connection(state)
    D.begin_read_only(conn, timeout_s=2.5)
    # SNAPSHOT can only be chosen before the transaction starts: commit after the check
    assert conn.log == ["commit", SNAPSHOT_ALLOWED_SQL, "commit", f"SET TRANSACTION ISOLATION LEVEL {level}", "close"]
    assert conn.timeout == 3
    assert "DB_ID('tempdb')" in SNAPSHOT_ALLOWED_SQL and read_isolation_level(2) == "READ COMMITTED"


def test_application_intent_read_only_reaches_the_odbc_connection_string() -> None:
    url = build_url({"name": "analytics", "engine": "mssql", "host": "db", "database": "web", "username": "u",
                     "password": "p", "options": {"ApplicationIntent": "ReadOnly", "TrustServerCertificate": "yes"}})
    (connection_string,), _ = MSDialect_pyodbc().create_connect_args(url)
    assert connection_string.startswith("DRIVER={ODBC Driver 18 for SQL Server};Server=db,1433;Database=web;")
    assert "ApplicationIntent=ReadOnly" in connection_string.split(";")


def test_result_columns_from_a_pyodbc_description() -> None:
    # pyodbc: (name, type_code, display_size, internal_size, precision, scale, null_ok)
    description = [("id", int, None, 19, 19, 0, False), ("total", Decimal, None, 38, 38, 6, True),
                   ("price", Decimal, None, 19, 19, 4, True), ("name", str, None, 0, 0, 0, True),
                   ("code", str, None, 12, 12, 0, True), ("at_tz", str, None, 34, 34, 7, True),
                   ("u", str, None, 36, 36, 0, True), ("ok", bool, None, 1, 1, 0, True),
                   ("blob", bytes, None, 0, 0, 0, True), ("at", datetime, None, 27, 27, 7, True),
                   ("at_dto", datetime, None, 34, 34, 7, True)]
    aware = datetime(2024, 1, 1, tzinfo=timezone.utc)
    sample = [(1, None, None, "x", "y", None, "D5E2", True, b"", None, aware),
              (2, None, None, "x", "y", aware, "D5E3", None, None, None, None)]
    cols = D.describe_result(description, sample)
    assert [(c.name, c.type, c.precision, c.scale, c.length) for c in cols] == [
        ("id", "bigint", None, None, None), ("total", "decimal", 38, 6, None), ("price", "decimal", 19, 4, None),
        ("name", "text", None, None, None), ("code", "text", None, None, 12),
        ("at_tz", "timestamptz", None, None, None),  # DATETIMEOFFSET: pyodbc says str, the values say otherwise
        ("u", "text", None, None, 36), ("ok", "bool", None, None, None), ("blob", "bytes", None, None, None),
        ("at", "timestamp", None, None, None), ("at_dto", "timestamptz", None, None, None)]


def test_cancel_reaches_a_statement_that_is_still_executing() -> None:
    # The extractor learns a statement's cursor only when execute() returns; a cancel must not wait for that
    import threading

    started, cancelled = threading.Event(), threading.Event()

    class Cursor:
        def execute(self, sql: str) -> None:
            started.set()
            if not cancelled.wait(10):
                raise AssertionError("never cancelled")
            raise RuntimeError("HY008", "[HY008] Operation canceled")

        def cancel(self) -> None:
            cancelled.set()

    class Connection:
        def cursor(self) -> Cursor:
            return Cursor()

    conn = Connection()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            D.open_stream(conn, "SELECT COUNT_BIG(*) FROM big")
        except RuntimeError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    assert started.wait(10)
    D.cancel_statement(conn, None, None)  # type: ignore[arg-type]
    worker.join(10)
    assert cancelled.is_set() and len(outcome) == 1 and D.classify_error(outcome[0]) == "cancelled"
    D.cancel_statement(conn, None, None)  # type: ignore[arg-type] - nothing running: nothing to do
