"""Multi-step jobs with SQL Server: the documentation's Example 2 with step 3 on SQL Server, and
``@resultN`` as ``#temp`` tables (exact values, session scope, pooled connections)."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from shared.errors import SourceError
from shared.extract import Extraction
from shared.jobspec import Mode, StepSpec
from tests.integration.mssql.conftest import move, temp_tables_left
from tests.integration.test_extract_multidb import (
    ANALYTICS, ORDER_SUMMARY_STEPS, expected_order_summary, load_order_summary_sources,
)

pytestmark = [pytest.mark.integration, pytest.mark.mssql]


def test_example_2_with_web_analytics_on_sql_server_into_the_warehouse(ms, pg_database, mysql_database,
                                                                         engines) -> None:
    # Given users in PostgreSQL, orders in MariaDB and web analytics in SQL Server (Example 2)
    projects = load_order_summary_sources(pg_database(), mysql_database(), pg_database(), engines)
    with ms.begin() as c:
        c.exec_driver_sql("CREATE TABLE web_analytics (user_id int PRIMARY KEY, total_sessions int, "
                          "total_pageviews bigint, avg_session_duration numeric(8,2))")
        c.exec_driver_sql("INSERT INTO web_analytics VALUES (?, ?, ?, ?)", ANALYTICS)
    projects[3] = ms
    warehouse = engines(pg_database())
    with warehouse.begin() as c:
        c.exec_driver_sql("CREATE SCHEMA dwh")
        c.exec_driver_sql("CREATE TABLE dwh.customer_360 (user_id int PRIMARY KEY, username text, email text, "
                          "signup_date date, order_count bigint, lifetime_value numeric(12,2), "
                          "last_order_date date, total_sessions int, total_pageviews bigint, "
                          "avg_session_duration numeric(8,2))")
    # When the three-step job runs twice into dwh.customer_360 in upsert mode (it is scheduled every 6 hours)
    first, failed = move(ORDER_SUMMARY_STEPS, projects, warehouse, table="dwh.customer_360", mode=Mode.upsert,
                         batch_rows=7)
    second, _ = move(ORDER_SUMMARY_STEPS, projects, warehouse, table="dwh.customer_360", mode=Mode.upsert)
    # Then the warehouse holds the independently computed summary; the second run changes nothing
    expected = expected_order_summary()
    with warehouse.connect() as c:
        got = {tuple(r) for r in c.exec_driver_sql("SELECT * FROM dwh.customer_360")}
    assert got == expected and failed == []
    assert first.rows_inserted == len(expected) and second.rows_skipped == len(expected)
    assert second.rows_inserted == second.rows_updated == 0
    assert temp_tables_left(ms, "#dm_result") == 0


REFERENCED = [
    StepSpec(name="people", project_id=1, sql=(
        "SELECT id, name, seen, seen_tz, score, raw FROM people")),
    StepSpec(name="on sql server", project_id=2, sql=(
        "SELECT p.id, p.name, p.seen, p.seen_tz, p.score, p.raw, DATALENGTH(p.name) AS name_bytes, "
        "t.label FROM @result1 p JOIN labels t ON t.id = p.id")),
]
PEOPLE = [(1, "Zoë 東京 🚀", datetime(2024, 1, 2, 3, 4, 5, 123456), datetime(2024, 1, 2, 3, 4, 5, 654321,
                                                                             tzinfo=timezone.utc),
           Decimal("12.5"), b"\x00\xff"),
          (2, "x" * 5000, datetime(1999, 12, 31, 23, 59, 59, 999999), None, Decimal("0.0000000001"), None)]


@pytest.fixture
def referenced(ms, pg_url, engines) -> dict[int, sa.Engine]:
    pg = engines(pg_url)
    with pg.begin() as c:
        c.exec_driver_sql("CREATE TABLE people (id int, name text, seen timestamp, seen_tz timestamptz, "
                          "score numeric, raw bytea)")  # numeric without precision: SQL Server gets DECIMAL(38,10)
        c.exec_driver_sql("INSERT INTO people VALUES (%s, %s, %s, %s, %s, %s)", PEOPLE)
    with ms.begin() as c:
        c.exec_driver_sql("CREATE TABLE labels (id int PRIMARY KEY, label nvarchar(20))")
        c.exec_driver_sql("INSERT INTO labels VALUES (1, N'one'), (2, N'two')")
    return {1: pg, 2: ms}


def test_a_postgresql_result_becomes_an_exact_temp_table_on_sql_server(referenced) -> None:
    with Extraction(REFERENCED, referenced, batch_rows=1) as ext:
        ext.open()
        rows = sorted(tuple(r) for b in ext.batches() for r in b)
    # NVARCHAR keeps every character (2 bytes each in UTF-16, 4 for the emoji), DATETIME2(7) the microseconds
    assert rows == [(*PEOPLE[0], len(PEOPLE[0][1].encode("utf-16-le")), "one"),
                    (*PEOPLE[1], 2 * 5000, "two")]


def test_temp_tables_live_only_in_their_session_and_never_return_with_a_pooled_connection(referenced, engines,
                                                                                           mssql_url) -> None:
    observer = engines(mssql_url)
    referenced[2] = engines(mssql_url, pool_size=1, max_overflow=0)  # one pooled connection, reused every time
    for _ in range(3):  # the same job again and again on the same pool: no "object already exists"
        with Extraction(REFERENCED, referenced, batch_rows=1) as ext:
            ext.open()
            next(iter(ext.batches()))
            assert temp_tables_left(observer, "#dm_result1_") == 1  # exists while the step runs
        assert temp_tables_left(observer, "#dm_result1_") == 0  # gone with the session, not parked in the pool


def test_a_decimal_the_temp_table_would_round_fails_naming_the_column(referenced) -> None:
    steps = [StepSpec(name="ratio", project_id=1, sql="SELECT id, 1 / 3::numeric AS third FROM people"),
             StepSpec(name="on sql server", project_id=2, sql="SELECT * FROM @result1")]
    with pytest.raises(SourceError, match=r"'third': value 0\.3333.* more than 10 decimal places"):
        with Extraction(steps, referenced) as ext:
            ext.open()
