"""Into SQL Server: every mode from PostgreSQL, row-level errors, the consecutive stop, cancel,
and the type table value by value. Runs where SQL Server exists (DM_TEST_MSSQL_URL or Docker)."""
from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql

from shared.errors import Cancelled, TooManyFailures
from shared.jobspec import Mode, StepSpec
from shared.load import LoadSession
from shared.types import Column
from tests.integration.mssql.conftest import move, temp_tables_left
from tests.integration.test_load_row_errors import BAD, COLUMNS, make_tables, source

pytestmark = [pytest.mark.integration, pytest.mark.mssql]
WORDS = {"null": "null", "long": "truncat", "foreign": "foreign key"}  # SQL Server's words for BAD's kinds


def _orders(engine: sa.Engine, rows: list[tuple]) -> sa.Table:
    table = sa.Table("orders", sa.MetaData(), sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
                     sa.Column("name", sa.Unicode(20), nullable=False), sa.Column("total", sa.Numeric(12, 2)))
    table.create(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [dict(zip(("id", "name", "total"), r)) for r in rows])
    return table


EXPECTED = {  # destination rows and counts after loading SOURCE over DEST_BEFORE
    Mode.insert_only: ([(1, "a", Decimal("1.00")), (2, "b", Decimal("2.00")), (3, "çé 東", Decimal("3.50")),
                        (9, "z", Decimal("9.00"))], dict(rows_inserted=1, rows_skipped=2)),
    Mode.upsert: ([(1, "a", Decimal("1.00")), (2, "B", Decimal("2.25")), (3, "çé 東", Decimal("3.50")),
                   (9, "z", Decimal("9.00"))], dict(rows_inserted=1, rows_updated=1, rows_skipped=1)),
    Mode.truncate_load: ([(1, "a", Decimal("1.00")), (2, "B", Decimal("2.25")), (3, "çé 東", Decimal("3.50"))],
                         dict(rows_inserted=3, rows_deleted=3)),
    Mode.sync_delete: ([(1, "a", Decimal("1.00")), (2, "B", Decimal("2.25")), (3, "çé 東", Decimal("3.50"))],
                       dict(rows_inserted=1, rows_updated=1, rows_skipped=1, rows_deleted=1)),
}


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_every_mode_from_postgresql_into_sql_server(mode: Mode, ms, pg_url, engines) -> None:
    # Given a PostgreSQL source and a SQL Server destination that already holds rows 1, 2, 9
    pg = engines(pg_url)
    with pg.begin() as c:
        c.exec_driver_sql("CREATE TABLE src (id bigint PRIMARY KEY, name text, total numeric(12,2))")
        c.exec_driver_sql("INSERT INTO src VALUES (1, 'a', 1.00), (2, 'B', 2.25), (3, 'çé 東', 3.5)")
    orders = _orders(ms, [(1, "a", Decimal("1")), (2, "b", Decimal("2")), (9, "z", Decimal("9"))])
    # When the job's mode loads the source through the extractor and the loader
    steps = [StepSpec(name="src", project_id=1, sql="SELECT id, name, total FROM src ORDER BY id")]
    counts, failed = move(steps, {1: pg}, ms, table="orders", mode=mode, batch_rows=2)
    # Then the destination holds what the mode promises, counted as documented
    rows, expected_counts = EXPECTED[mode]
    with ms.connect() as conn:
        assert conn.execute(sa.select(orders).order_by(orders.c.id)).all() == rows
    assert failed == [] and {k: v for k, v in counts.to_dict().items() if v} == expected_counts
    assert temp_tables_left(ms, "#dm_stage_") == 0 and temp_tables_left(ms, "#dm_seen_") == 0  # gone with the session


@pytest.mark.parametrize("mode", [Mode.insert_only, Mode.upsert, Mode.truncate_load, Mode.sync_delete],
                         ids=lambda m: m.value)
def test_seven_bad_rows_of_a_thousand_are_isolated_on_sql_server(mode: Mode, ms) -> None:
    # Given 1,000 rows of which 7 break NOT NULL, the column length or a foreign key
    child = make_tables(ms)
    rows = source("mssql")
    session = LoadSession(ms, table="child", columns=COLUMNS, mode=mode)
    session.begin()
    failed = [f for start in range(0, 1000, 250) for f in session.write(rows[start:start + 250])]
    counts = session.finish()
    session.commit()
    session.close()
    # Then the 993 good rows are written and each bad one is reported with SQL Server's message
    assert [f.position for f in failed] == sorted(BAD)
    for f in failed:
        assert all(WORDS[w] in f.error.lower() for w in BAD[f.position][1]), (f.position, f.error)
        assert f.values["id"] == f.position
    assert counts.rows_inserted == 993 and counts.rows_failed == 7
    with ms.connect() as conn:
        assert conn.execute(sa.select(child.c.id).order_by(child.c.id)).scalars().all() == [
            i for i in range(1, 1001) if i not in BAD]


def test_100_consecutive_bad_rows_stop_the_run_and_rollback_restores_the_table(ms) -> None:
    child = make_tables(ms)
    with ms.begin() as conn:
        conn.execute(child.insert(), [{"id": 5000, "name": "before", "parent_id": 1}])
    rows = [(i, "good", 1) for i in range(1, 51)] + [(i, None, 1) for i in range(51, 201)]
    session = LoadSession(ms, table="child", columns=COLUMNS, mode=Mode.truncate_load)
    session.begin()
    session.write(rows[:120])
    with pytest.raises(TooManyFailures) as info:
        session.write(rows[120:])
    assert info.value.consecutive == 100
    assert [f.position for f in info.value.failed_rows][-1] == 150
    session.rollback()
    session.close()
    with ms.connect() as conn:
        assert conn.execute(sa.select(child.c.id, child.c.name)).all() == [(5000, "before")]


def test_cancel_stops_a_blocked_write_and_nothing_is_written(ms) -> None:
    # Given a destination another session holds locked, and a load whose write blocks on it
    orders = _orders(ms, [(1, "a", Decimal("1"))])
    session = LoadSession(ms, table="orders", columns=[Column("id", "bigint"), Column("name", "text"),
                                                       Column("total", "decimal")], mode=Mode.upsert)
    session.begin()
    blocker = ms.connect()
    blocker.begin()
    blocker.exec_driver_sql("SELECT COUNT(*) FROM orders WITH (TABLOCKX, HOLDLOCK)").all()
    outcome: list[BaseException] = []

    def write() -> None:
        try:
            session.write([(2, "b", Decimal("2"))])
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        # When the load is cancelled from another thread (KILL of its session)
        threading.Event().wait(1.0)
        session.cancel()
        writer.join(60)
    finally:
        blocker.rollback()
        blocker.close()
        session.close()
    # Then the write raised Cancelled and the destination is as before
    assert len(outcome) == 1 and isinstance(outcome[0], Cancelled), outcome
    with ms.connect() as conn:
        assert conn.execute(sa.select(orders.c.id)).scalars().all() == [1]


TYPES = sa.Table(
    "types", sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("dto", mssql.DATETIMEOFFSET(7)), sa.Column("dt2", mssql.DATETIME2(7)), sa.Column("money", mssql.MONEY),
    sa.Column("u", mssql.UNIQUEIDENTIFIER), sa.Column("s", mssql.NVARCHAR(None)),
    sa.Column("b", mssql.VARBINARY("max")), sa.Column("bit", mssql.BIT), sa.Column("d", mssql.DECIMAL(38, 10)))
TYPE_COLUMNS = [Column("id", "int"), Column("dto", "timestamptz"), Column("dt2", "timestamp"),
                Column("money", "decimal", precision=19, scale=4), Column("u", "uuid"), Column("s", "text"),
                Column("b", "bytes"), Column("bit", "bool"), Column("d", "decimal", precision=38, scale=10)]
U = uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e")
LONG_TEXT = "Zoë 東京 🚀 \t\"'\\ " * 2000  # 4-byte UTF-8, quotes, tabs, backslashes; far beyond 4,000 characters
BLOB = bytes(range(256)) * 400  # zero bytes included, 100 KB
TYPE_ROWS = [
    (1, datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30))),
     datetime(2024, 2, 29, 23, 59, 59, 123456), Decimal("922337203685477.5807"), U, LONG_TEXT, BLOB, True,
     Decimal("1234567890123456789012345678.0123456789")),
    (2, datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=-14))), datetime(9999, 12, 31, 23, 59, 59, 999999),
     Decimal("-922337203685477.5808"), uuid.UUID(int=0), "", b"", False, Decimal("-0.0000000001")),
    (3, None, None, None, None, None, None, None, None),
]


def as_uuid(value: object) -> uuid.UUID | None:
    return value if value is None or isinstance(value, uuid.UUID) else uuid.UUID(str(value))


@pytest.mark.parametrize("mode", [Mode.insert_only, Mode.upsert], ids=lambda m: m.value)
def test_the_type_table_into_sql_server_value_by_value(mode: Mode, ms) -> None:
    TYPES.create(ms)
    session = LoadSession(ms, table="types", columns=TYPE_COLUMNS, mode=mode)
    session.begin()
    failed = session.write(TYPE_ROWS)
    session.finish()
    session.commit()
    session.close()
    assert failed == []
    with ms.connect() as conn:
        got = conn.exec_driver_sql("SELECT id, dto, dt2, money, u, s, b, bit, d FROM types ORDER BY id").all()
    for expected, row in zip(TYPE_ROWS, got):
        row = tuple(row)
        # DATETIMEOFFSET: same instant AND same offset (pyodbc alone would have dropped the offset)
        assert row[1] == expected[1] and (row[1] is None or row[1].utcoffset() == expected[1].utcoffset())
        assert row[2] == expected[2]  # DATETIME2(7): microseconds kept
        assert row[3] == expected[3] and row[8] == expected[8]  # MONEY, DECIMAL(38,10) exact
        assert as_uuid(row[4]) == expected[4]  # UNIQUEIDENTIFIER: pyodbc reads it as text
        assert row[5] == expected[5] and row[6] == expected[6] and row[7] == expected[7]
