"""MariaDB as a source: FLOAT, TIMESTAMP and zero dates arrive exactly, or their row fails loudly.

Given MariaDB FLOAT values 16777216, 123456.789 and 3.14159274 (the server's text shows 6
digits), when they move into PostgreSQL real/double, MariaDB FLOAT/DOUBLE, through a
multi-step temporary table or under ORDER BY, on the fast and the general path, then the
float4 value arrives exactly. Given a TIMESTAMP read by a session whose time zone is
-05:00, the instant arrives unchanged. Given zero and invalid dates, MariaDB → MariaDB
copies them as they are, other engines fail the row naming column and value, and
``zero_dates: "null"`` loads NULL and counts a warning.
"""
from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable

import pytest

from shared.jobspec import StepSpec
from tests.integration.mariadb_source import execute, move, rows_of, source_engine

pytestmark = pytest.mark.integration
PATHS = pytest.mark.parametrize("bulk", [True, False], ids=["fast", "general"])
FLOATS = (16777216.0, 123456.789, 3.14159274, 0.1)


def float4(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


@pytest.fixture
def float_source(mysql_database: Callable[[], str]) -> str:
    url = mysql_database()
    execute(url, ["CREATE TABLE src (id INT PRIMARY KEY, f FLOAT, d DOUBLE)"] +
            [f"INSERT INTO src VALUES ({i}, {v!r}, {v!r})" for i, v in enumerate(FLOATS, 1)])
    return url


@PATHS
def test_mariadb_float_arrives_exactly_in_postgresql_real_and_double(
        bulk: bool, float_source: str, pg_database: Callable[[], str]) -> None:
    dst = pg_database()
    execute(dst, "CREATE TABLE dst (id int PRIMARY KEY, r real, dp double precision, d double precision)")
    counts, failed, _ = move(float_source, "SELECT id, f AS r, f AS dp, d FROM src", dst, "dst", bulk=bulk)
    assert not failed and counts["rows_inserted"] == len(FLOATS)
    got = rows_of(dst, "SELECT r, dp, d FROM dst ORDER BY id")
    assert [float4(r) for r, _, _ in got] == [float4(v) for v in FLOATS]  # 16777216, not 16777200
    assert [dp for _, dp, _ in got] == [float4(v) for v in FLOATS]  # the float4 value, exactly
    assert [d for _, _, d in got] == list(FLOATS)
    assert rows_of(dst, "SELECT r::text FROM dst ORDER BY id") == [("1.6777216e+07",), ("123456.79",), ("3.1415927",),
                                                                   ("0.1",)]


def test_mariadb_float_arrives_exactly_in_mariadb_float_and_double_and_keeps_order_by(
        float_source: str, mysql_database: Callable[[], str]) -> None:
    dst = mysql_database()
    execute(dst, "CREATE TABLE dst (id INT PRIMARY KEY, f FLOAT, dp DOUBLE)")
    counts, failed, _ = move(float_source, "SELECT id, f, f AS dp FROM src ORDER BY id DESC", dst, "dst",
                             bulk=False)
    assert not failed and counts["rows_inserted"] == len(FLOATS)
    got = rows_of(dst, "SELECT CAST(f AS DOUBLE), dp FROM dst ORDER BY id")
    assert got == [(float4(v), float4(v)) for v in FLOATS]


def test_mariadb_float_keeps_its_order_and_value_on_the_general_path(float_source: str) -> None:
    from shared.extract import Extraction

    engine = source_engine(float_source)
    with Extraction([StepSpec(name="r", project_id=1, sql="SELECT f, id FROM src ORDER BY id DESC")],
                    {1: engine}, batch_rows=2) as ext:
        ext.open()
        rows = [r for batch in ext.batches() for r in batch]
    engine.dispose()
    assert rows == [(float4(v), i) for i, v in reversed(list(enumerate(FLOATS, 1)))]


def test_mariadb_float_survives_a_multi_step_temporary_table(
        float_source: str, pg_database: Callable[[], str]) -> None:
    from shared.connections import create_db_engine
    import sqlalchemy as sa

    pg_src, dst = pg_database(), pg_database()
    execute(dst, "CREATE TABLE dst (id int PRIMARY KEY, r real, dp double precision)")
    steps = [StepSpec(name="my", project_id=1, sql="SELECT id, f FROM src"),
             StepSpec(name="pg", project_id=2, sql="SELECT id, f AS r, f AS dp FROM @result1")]
    pg = create_db_engine(pg_src, poolclass=sa.pool.NullPool)
    _, failed, _ = move(float_source, steps, dst, "dst", bulk=True, engines={2: pg})
    pg.dispose()
    assert not failed
    assert [(float4(r), dp) for r, dp in rows_of(dst, "SELECT r, dp FROM dst ORDER BY id")] == [
        (float4(v), float4(v)) for v in FLOATS]


@pytest.fixture
def timestamp_source(mysql_database: Callable[[], str]) -> str:
    url = mysql_database()
    execute(url, ["SET time_zone = '+00:00'", "CREATE TABLE src (id INT PRIMARY KEY, ts TIMESTAMP(6) NULL)",
                  "INSERT INTO src VALUES (1, '2024-01-01 05:30:00'), (2, '2024-07-01 23:59:59.5'), (3, NULL)"])
    return url


EXPECTED_INSTANTS = [dt.datetime(2024, 1, 1, 5, 30, tzinfo=dt.timezone.utc),
                     dt.datetime(2024, 7, 1, 23, 59, 59, 500000, tzinfo=dt.timezone.utc), None]


@PATHS
@pytest.mark.parametrize("how", ["init_command", "session"])
def test_mariadb_timestamp_is_read_in_utc_whatever_the_session_time_zone(
        how: str, bulk: bool, timestamp_source: str, pg_database: Callable[[], str]) -> None:
    dst = pg_database()
    execute(dst, "CREATE TABLE dst (id int PRIMARY KEY, ts timestamptz)")
    if how == "init_command":  # a project option
        engine = source_engine(timestamp_source + "?init_command=SET time_zone%3D'-05:00'")
    else:  # a server/session default set another way
        engine = source_engine(timestamp_source, session_time_zone="-05:00")
    with engine.connect() as conn:  # the premise: this session does not read in UTC
        assert conn.exec_driver_sql("SELECT @@time_zone").scalar() == "-05:00"
    _, failed, _ = move(engine, "SELECT id, ts FROM src", dst, "dst", bulk=bulk)
    engine.dispose()
    assert not failed
    assert [r[0] for r in rows_of(dst, "SELECT ts FROM dst ORDER BY id")] == EXPECTED_INSTANTS


def test_mariadb_timestamp_into_mariadb_timestamp_keeps_the_instant(
        timestamp_source: str, mysql_database: Callable[[], str]) -> None:
    dst = mysql_database()
    execute(dst, "CREATE TABLE dst (id INT PRIMARY KEY, ts TIMESTAMP(6) NULL)")
    engine = source_engine(timestamp_source, session_time_zone="-05:00")
    _, failed, _ = move(engine, "SELECT id, ts FROM src", dst, "dst", bulk=False)
    engine.dispose()
    assert not failed
    got = rows_of(dst, "SELECT UNIX_TIMESTAMP(ts) FROM dst ORDER BY id")
    assert [None if v is None else float(v) for (v,) in got] == [
        None if t is None else t.timestamp() for t in EXPECTED_INSTANTS]


ZERO_DATES = [(1, "0000-00-00", "0000-00-00 00:00:00", "0000-00-00 00:00:00"),
              (2, "2021-00-00", "2021-02-30 10:00:00", "2021-01-01 00:00:00"),
              (3, "2021-02-30", "2021-01-01 00:00:00", "0000-00-00 00:00:00"),
              (4, "2021-03-01", "2021-03-01 12:00:00", "2021-03-01 12:00:00")]
TEXT_OF = "SELECT id, CAST(d AS CHAR), CAST(dtm AS CHAR), CAST(ts AS CHAR) FROM {t} ORDER BY id"


@pytest.fixture
def zero_date_source(mysql_database: Callable[[], str]) -> str:
    url = mysql_database()
    execute(url, ["SET SESSION sql_mode = 'ALLOW_INVALID_DATES'", "SET time_zone = '+00:00'",
                  "CREATE TABLE src (id INT PRIMARY KEY, d DATE, dtm DATETIME, ts TIMESTAMP NULL)"] +
            [f"INSERT INTO src VALUES ({i}, '{d}', '{t}', '{s}')" for i, d, t, s in ZERO_DATES])
    return url


def test_mariadb_zero_and_invalid_dates_copy_to_mariadb_as_they_are(
        zero_date_source: str, mysql_database: Callable[[], str]) -> None:
    dst = mysql_database()
    execute(dst, "CREATE TABLE dst (id INT PRIMARY KEY, d DATE, dtm DATETIME, ts TIMESTAMP NULL)")
    counts, failed, warnings = move(zero_date_source, "SELECT * FROM src", dst, "dst", bulk=False)
    assert not failed and counts["rows_inserted"] == 4 and not warnings
    assert rows_of(dst, TEXT_OF.format(t="dst")) == rows_of(zero_date_source, TEXT_OF.format(t="src"))
    assert rows_of(dst, TEXT_OF.format(t="dst"))[:3] == [tuple(r) for r in ZERO_DATES[:3]]


@PATHS
def test_mariadb_zero_dates_fail_their_row_in_postgresql_naming_column_and_value(
        bulk: bool, zero_date_source: str, pg_database: Callable[[], str]) -> None:
    dst = pg_database()
    execute(dst, "CREATE TABLE dst (id int PRIMARY KEY, d date, dtm timestamp, ts timestamptz)")
    counts, failed, _ = move(zero_date_source, "SELECT * FROM src", dst, "dst", bulk=bulk)
    assert [p for p, _ in failed] == [1, 2, 3] and counts["rows_inserted"] == 1
    assert "column 'd'" in failed[0][1] and "'0000-00-00'" in failed[0][1] and "zero_dates" in failed[0][1]
    assert "column 'd'" in failed[1][1] and "'2021-00-00'" in failed[1][1]
    assert "column 'd'" in failed[2][1] and "'2021-02-30'" in failed[2][1]


def test_mariadb_zero_dates_fail_their_row_in_sqlite(zero_date_source: str, sqlite_url: str) -> None:
    execute(sqlite_url, "CREATE TABLE dst (id INTEGER PRIMARY KEY, d DATE, dtm DATETIME, ts DATETIME)")
    _, failed, _ = move(zero_date_source, "SELECT id, dtm FROM src", sqlite_url, "dst", bulk=False)
    assert [p for p, _ in failed] == [1, 2]
    assert "column 'dtm'" in failed[1][1] and "'2021-02-30 10:00:00'" in failed[1][1]


@PATHS
def test_zero_dates_null_loads_null_and_counts_a_warning(
        bulk: bool, zero_date_source: str, pg_database: Callable[[], str]) -> None:
    dst = pg_database()
    execute(dst, "CREATE TABLE dst (id int PRIMARY KEY, d date, dtm timestamp, ts timestamptz)")
    counts, failed, warnings = move(zero_date_source, "SELECT * FROM src", dst, "dst", bulk=bulk, zero_dates="null")
    assert not failed and counts["rows_inserted"] == 4
    assert warnings == {"zero_dates": 7}
    got = rows_of(dst, "SELECT d, dtm, ts FROM dst ORDER BY id")
    assert got[:3] == [(None, None, None), (None, None, dt.datetime(2021, 1, 1, tzinfo=dt.timezone.utc)),
                       (None, dt.datetime(2021, 1, 1), None)]
    assert got[3] == (dt.date(2021, 3, 1), dt.datetime(2021, 3, 1, 12),
                      dt.datetime(2021, 3, 1, 12, tzinfo=dt.timezone.utc))
