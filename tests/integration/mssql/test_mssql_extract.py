"""Out of SQL Server (into PostgreSQL and MariaDB), value by value, in every mode; read-only
sessions, cancel and timeout. Runs where SQL Server exists (DM_TEST_MSSQL_URL or Docker)."""
from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from shared.errors import Cancelled, SourceError, TimedOut
from shared.extract import Extraction
from shared.jobspec import Mode, StepSpec
from tests.integration.mssql.conftest import move

pytestmark = [pytest.mark.integration, pytest.mark.mssql]
U = uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e")
TEXT = "Zoë 東京 🚀 \t\"'\\"
SOURCE_DDL = ("CREATE TABLE types (id int PRIMARY KEY, dto datetimeoffset(7), dt2 datetime2(7), money money, "
              "u uniqueidentifier, s nvarchar(max), b varbinary(max), bit bit, d decimal(38,10))")
SOURCE_ROWS = ("INSERT INTO types VALUES "
               "(1, '2024-02-29 23:59:59.1234567 +05:30', '2024-02-29 23:59:59.1234567', 922337203685477.5807, "
               "'0F8FAD5B-D9CB-469F-A165-70867728950E', ?, 0x0001FF00, 1, 1234567890123456789012345678.0123456789), "
               "(2, '1970-01-01 00:00:00 -14:00', '9999-12-31 23:59:59.9999990', -922337203685477.5808, "
               "'00000000-0000-0000-0000-000000000000', N'', 0x, 0, -0.0000000001), "
               "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)")
STEP = [StepSpec(name="read types", project_id=1, sql="SELECT id, dto, dt2, money, u, s, b, bit, d FROM types")]
# what a data engineer finds in the destination; datetime2(7)/datetimeoffset(7) keep microseconds
# (Python's resolution: the 7th digit, 100 ns, is dropped), uniqueidentifier arrives as SQL Server's text
EXPECTED = {
    1: (datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2024, 2, 29, 23, 59, 59, 123456), Decimal("922337203685477.5807"), U, TEXT * 500,
        b"\x00\x01\xff\x00", True, Decimal("1234567890123456789012345678.0123456789")),
    2: (datetime(1970, 1, 1, 14, tzinfo=timezone.utc), datetime(9999, 12, 31, 23, 59, 59, 999999),
        Decimal("-922337203685477.5808"), uuid.UUID(int=0), "", b"", False, Decimal("-0.0000000001")),
    3: (None,) * 8,
}


@pytest.fixture
def source(ms: sa.Engine) -> sa.Engine:
    with ms.begin() as c:
        c.exec_driver_sql(SOURCE_DDL)
        c.exec_driver_sql(SOURCE_ROWS, (TEXT * 500,))
    return ms


def test_sql_server_result_columns_are_described_portably(source) -> None:
    with Extraction(STEP, {1: source}) as ext:
        columns = ext.open()
        rows = {r[0]: r[1:] for b in ext.batches() for r in b}
    assert {c.name: c.type for c in columns} == {
        "id": "bigint", "dto": "timestamptz", "dt2": "timestamp", "money": "decimal", "u": "text", "s": "text",
        "b": "bytes", "bit": "bool", "d": "decimal"}
    assert [(c.precision, c.scale) for c in columns if c.type == "decimal"] == [(19, 4), (38, 10)]
    assert rows[1][0].utcoffset() == timedelta(hours=5, minutes=30) and rows[1][1:3] == EXPECTED[1][1:3]
    assert uuid.UUID(rows[1][3]) == U and rows[1][4:] == EXPECTED[1][4:]


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_sql_server_into_postgresql_value_by_value(mode: Mode, source, pg_url, engines) -> None:
    pg = engines(pg_url)
    with pg.begin() as c:
        c.exec_driver_sql("CREATE TABLE types (id int PRIMARY KEY, dto timestamptz, dt2 timestamp(6), "
                          "money numeric(19,4), u uuid, s text, b bytea, bit boolean, d numeric(38,10))")
        c.exec_driver_sql("INSERT INTO types (id) VALUES (1), (4)")
    counts, failed = move(STEP, {1: source}, pg, table="types", mode=mode)
    assert failed == []
    with pg.connect() as c:
        got = {r[0]: _py(tuple(r[1:])) for r in c.exec_driver_sql("SELECT * FROM types")}
    expected = dict(EXPECTED)
    if mode is Mode.insert_only:  # row 1 existed: skipped; row 4 stays
        expected[1], expected[4] = (None,) * 8, (None,) * 8
    elif mode is Mode.upsert:
        expected[4] = (None,) * 8
    for key, row in expected.items():
        assert got.pop(key) == row, key
    assert got == {}
    if mode is Mode.sync_delete:
        assert counts.rows_deleted == 1 and counts.rows_updated == 1 and counts.rows_inserted == 2


def _py(row: tuple) -> tuple:
    """psycopg2's uuid (text) and bytea (memoryview) as the Python values they hold."""
    dto, dt2, money, u, s, b, bit, d = row
    return (dto, dt2, money, None if u is None else uuid.UUID(str(u)), s, None if b is None else bytes(b), bit, d)


def test_sql_server_into_mariadb_value_by_value(source, mysql_url, engines) -> None:
    my = engines(mysql_url)
    with my.begin() as c:
        c.exec_driver_sql("CREATE TABLE types (id int PRIMARY KEY, dto DATETIME(6), dt2 DATETIME(6), "
                          "money DECIMAL(19,4), u CHAR(36), s LONGTEXT, b LONGBLOB, bit BOOLEAN, d DECIMAL(38,10))")
    counts, failed = move(STEP, {1: source}, my, table="types", mode=Mode.truncate_load)
    assert failed == [] and counts.rows_inserted == 3
    with my.connect() as c:
        got = {r[0]: tuple(r[1:]) for r in c.exec_driver_sql("SELECT * FROM types")}
    # DATETIME has no time zone: the same instant in UTC; uniqueidentifier as SQL Server writes it
    assert got[1] == (datetime(2024, 2, 29, 18, 29, 59, 123456), EXPECTED[1][1], EXPECTED[1][2],
                      "0F8FAD5B-D9CB-469F-A165-70867728950E", TEXT * 500, EXPECTED[1][5], 1, EXPECTED[1][7])
    assert got[2] == (datetime(1970, 1, 1, 14), EXPECTED[2][1], EXPECTED[2][2], "00000000-0000-0000-0000-000000000000",
                      "", b"", 0, EXPECTED[2][7])
    assert got[3] == (None,) * 8


@pytest.fixture
def table_t(ms: sa.Engine) -> sa.Engine:
    with ms.begin() as c:
        c.exec_driver_sql("CREATE TABLE t (id int)")
        c.exec_driver_sql("INSERT INTO t VALUES (1), (2)")
    return ms


def state_of(engine: sa.Engine) -> tuple[list[int], bool]:
    """(ids in t, whether a table dm_copy exists)."""
    with engine.connect() as c:
        ids = sorted(r[0] for r in c.exec_driver_sql("SELECT id FROM t"))
        copy = c.exec_driver_sql("SELECT OBJECT_ID('dm_copy')").scalar_one() is not None
    return ids, copy


def extract(engine: sa.Engine, sql: str, **kwargs: object) -> list[tuple]:
    with Extraction([StepSpec(name="writer", project_id=1, sql=sql)], {1: engine}, **kwargs) as ext:
        ext.open()
        return [r for b in ext.batches() for r in b]


@pytest.mark.parametrize("sql", ["UPDATE t SET id = 5", "DELETE FROM t", "DROP TABLE t", "SELECT 1 AS x; DELETE FROM t",
                                 "EXEC sp_rename 't', 'u'", "TRUNCATE TABLE t"])
def test_statements_that_write_are_refused_before_they_run(sql: str, table_t) -> None:
    with pytest.raises(SourceError, match="step 1 'writer'"):
        extract(table_t, sql)
    assert state_of(table_t) == ([1, 2], False)


@pytest.mark.parametrize("sql", ["SELECT id INTO dm_copy FROM t", "SELECT 1 AS x DELETE FROM t",
                                 "SELECT 1 AS x UPDATE t SET id = 7"])
def test_writes_hidden_in_a_query_are_rolled_back_with_the_session(sql: str, table_t) -> None:
    # T-SQL needs no semicolon between statements; the session's transaction is never committed
    try:
        extract(table_t, sql)
    except SourceError:
        pass  # SELECT ... INTO returns no result: refused, and rolled back either way
    assert state_of(table_t) == ([1, 2], False)


@pytest.mark.parametrize("snapshot", [True, False], ids=["snapshot-allowed", "snapshot-off"])
def test_reads_run_under_snapshot_where_the_database_allows_it(snapshot: bool, mssql_database, engines) -> None:
    engine = engines(mssql_database(snapshot=snapshot))
    with engine.connect() as c:
        tempdb_allows = c.exec_driver_sql("SELECT snapshot_isolation_state FROM sys.databases "
                                          "WHERE name = 'tempdb'").scalar_one() == 1
    rows = extract(engine, "SELECT transaction_isolation_level AS level FROM sys.dm_exec_sessions "
                           "WHERE session_id = @@SPID")
    assert rows == [(5 if snapshot and tempdb_allows else 2,)]  # 5 = SNAPSHOT, 2 = READ COMMITTED


SLOW = ("SELECT COUNT_BIG(*) AS n FROM sys.all_objects a CROSS JOIN sys.all_objects b "
        "CROSS JOIN sys.all_objects c CROSS JOIN sys.all_objects d")


def test_cancel_from_another_thread_stops_the_statement(ms) -> None:
    ext = Extraction([StepSpec(name="slow", project_id=1, sql=SLOW)], {1: ms})
    timer = threading.Timer(1.0, ext.cancel)
    timer.start()
    try:
        with pytest.raises(Cancelled, match="step 1 'slow'|cancelled"):
            ext.open()
    finally:
        timer.cancel()
        ext.close()


def test_statement_timeout_names_the_step(ms) -> None:
    with pytest.raises(TimedOut, match="step 1 'slow'"):
        extract(ms, SLOW, statement_timeout_s=1)
