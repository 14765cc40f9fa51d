"""MariaDB ↔ PostgreSQL BIT and TIME; long MariaDB values on the fast path; cancel stops the server.

Given BIT(n) columns, when they move MariaDB → PostgreSQL bit(n)/varbit and back on both
paths, then the bits arrive as they are, and a value that does not fit fails its row
naming the column. Given MariaDB TIMEs beyond a day or negative, PostgreSQL ``time``
rows fail saying what the value is; 24:00:00 fits both engines. Given a few-MB text full
of characters to escape, the fast path costs linear time and writes what the general path
writes. Given a cancelled MariaDB read, the server thread is gone.
"""
from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from shared.connections import create_db_engine
from shared.errors import Cancelled, TimedOut
from shared.extract import Extraction
from shared.jobspec import Mode, StepSpec
from shared.load import LoadSession
from shared.types import Column
from tests.integration.mariadb_source import execute, move, rows_of

pytestmark = pytest.mark.integration
PATHS = pytest.mark.parametrize("bulk", [True, False], ids=["fast", "general"])


@PATHS
def test_mariadb_bit_into_postgresql_bit_and_varbit(bulk: bool, mysql_database: Callable[[], str],
                                                    pg_database: Callable[[], str]) -> None:
    src, dst = mysql_database(), pg_database()
    execute(src, ["CREATE TABLE src (id INT PRIMARY KEY, b BIT(10), one BIT(1))",
                  "INSERT INTO src VALUES (1, b'1010', b'1'), (2, b'1111111111', b'0'), (3, NULL, NULL), (4, 0, 0)"])
    execute(dst, ["CREATE TABLE dst (id int PRIMARY KEY, b bit(10), v varbit, one bit(1))",
                  "CREATE TABLE narrow (id int PRIMARY KEY, b bit(4))"])
    counts, failed, _ = move(src, "SELECT id, b, b AS v, one FROM src", dst, "dst", bulk=bulk)
    assert not failed and counts["rows_inserted"] == 4
    assert rows_of(dst, "SELECT b::text, v::text, one::text FROM dst ORDER BY id") == [
        ("0000001010", "0000001010", "1"), ("1111111111", "1111111111", "0"), (None, None, None),
        ("0000000000", "0000000000", "0")]
    _, failed, _ = move(src, "SELECT id, b FROM src", dst, "narrow", bulk=bulk)
    assert [p for p, _ in failed] == [2]
    assert "column 'b'" in failed[0][1] and "1111111111" in failed[0][1] and "bit(4)" in failed[0][1]


@PATHS
def test_postgresql_bit_and_varbit_into_mariadb_bit(bulk: bool, pg_database: Callable[[], str],
                                                    mysql_database: Callable[[], str]) -> None:
    src, dst = pg_database(), mysql_database()
    execute(src, ["CREATE TABLE src (id int PRIMARY KEY, b bit(4), v varbit)",
                  "INSERT INTO src VALUES (1, B'1010', B'1'), (2, B'0000', B'1111111111'), (3, NULL, NULL), "
                  "(4, B'1111', B'11111111111')"])
    execute(dst, "CREATE TABLE dst (id INT PRIMARY KEY, b BIT(4), v BIT(10))")
    counts, failed, _ = move(src, "SELECT * FROM src", dst, "dst", bulk=bulk)
    assert counts["rows_inserted"] == 3 and [p for p, _ in failed] == [4]
    assert "column 'v'" in failed[0][1] and "BIT(10)" in failed[0][1]
    assert rows_of(dst, "SELECT id, BIN(b), BIN(v) FROM dst ORDER BY id") == [
        (1, "1010", "1"), (2, "0", "1111111111"), (3, None, None)]


@PATHS
def test_mariadb_time_that_is_no_time_of_day_fails_its_postgresql_row_clearly(
        bulk: bool, mysql_database: Callable[[], str], pg_database: Callable[[], str]) -> None:
    src, dst = mysql_database(), pg_database()
    execute(src, ["CREATE TABLE src (id INT PRIMARY KEY, tm TIME(6))",
                  "INSERT INTO src VALUES (1, '12:00:00'), (2, '838:59:59'), (3, '-01:30:00.5'), (4, '24:00:00'), "
                  "(5, NULL)"])
    execute(dst, "CREATE TABLE dst (id int PRIMARY KEY, tm time)")
    counts, failed, _ = move(src, "SELECT * FROM src", dst, "dst", bulk=bulk)
    assert [p for p, _ in failed] == [2, 3] and counts["rows_inserted"] == 3
    assert "column 'tm'" in failed[0][1] and "TIME '838:59:59'" in failed[0][1] and "time of day" in failed[0][1]
    assert "TIME '-01:30:00.500000'" in failed[1][1]
    assert "days" not in failed[0][1]  # not Python's timedelta text
    assert rows_of(dst, "SELECT id, tm::text FROM dst ORDER BY id") == [(1, "12:00:00"), (4, "24:00:00"), (5, None)]


@PATHS
def test_postgresql_time_24_00_into_mariadb_time(bulk: bool, pg_database: Callable[[], str],
                                                 mysql_database: Callable[[], str]) -> None:
    src, dst = pg_database(), mysql_database()
    execute(src, ["CREATE TABLE src (id int PRIMARY KEY, tm time)",
                  "INSERT INTO src VALUES (1, '23:59:59'), (2, NULL)"])
    execute(dst, "CREATE TABLE dst (id INT PRIMARY KEY, tm TIME(6))")
    _, failed, _ = move(src, "SELECT * FROM src", dst, "dst", bulk=bulk)
    assert not failed
    if bulk:  # COPY writes PostgreSQL's 24:00:00 as it is
        _, failed, _ = move(src, "SELECT 6 AS id, '24:00:00'::time AS tm", dst, "dst", bulk=True,
                            mode=Mode.insert_only)
        assert not failed and rows_of(dst, "SELECT CAST(tm AS CHAR) FROM dst WHERE id = 6") == [("24:00:00.000000",)]
        execute(dst, "DELETE FROM dst WHERE id = 6")
    # the value as the general path carries it (a day, or PostgreSQL's text), through the MariaDB loader
    engine = create_db_engine(dst, poolclass=sa.pool.NullPool)
    session = LoadSession(engine, table="dst", columns=[Column("id", "int"), Column("tm", "time")], mode=Mode.upsert,
                          key_columns=["id"])
    session.begin()
    assert not session.write([(3, dt.timedelta(days=1)), (4, "24:00:00"), (5, dt.timedelta(hours=-1, minutes=-30))])
    session.finish()
    session.commit()
    session.close()
    engine.dispose()
    assert rows_of(dst, "SELECT id, CAST(tm AS CHAR) FROM dst ORDER BY id") == [
        (1, "23:59:59.000000"), (2, None), (3, "24:00:00.000000"), (4, "24:00:00.000000"), (5, "-01:30:00.000000")]


def test_a_few_mb_mariadb_text_costs_linear_time_on_the_fast_path(
        mysql_database: Callable[[], str], pg_database: Callable[[], str]) -> None:
    src, dst = mysql_database(), pg_database()
    unit = "a\\\\b\\tc\\nd\\re—"  # every character the COPY text escapes, and a multi-byte one
    execute(src, ["CREATE TABLE src (id INT PRIMARY KEY, t LONGTEXT, b LONGBLOB) CHARACTER SET utf8mb4",
                  f"INSERT INTO src SELECT seq, IF(seq = 2, REPEAT('{unit}', 300000), '{unit}'), "
                  f"IF(seq = 3, REPEAT(X'5C0A00', 100000), X'00') FROM seq_1_to_5"])
    expected = rows_of(src, "SELECT id, t, b FROM src ORDER BY id")
    assert len(expected[1][1]) >= 3_000_000
    execute(dst, ["CREATE TABLE fast (id int PRIMARY KEY, t text, b bytea)",
                  "CREATE TABLE general (id int PRIMARY KEY, t text, b bytea)"])
    for table, bulk in (("fast", True), ("general", False)):
        _, failed, _ = move(src, "SELECT * FROM src", dst, table, bulk=bulk)
        assert not failed
        assert [(i, t, bytes(b)) for i, t, b in rows_of(dst, f"SELECT * FROM {table} ORDER BY id")] == expected


def _thread_alive(url: str, thread_id: int) -> bool:
    return bool(rows_of(url, f"SELECT ID FROM information_schema.PROCESSLIST WHERE ID = {thread_id}"))


@PATHS
@pytest.mark.parametrize("stop", ["cancel", "timeout", "close"])
def test_cancelling_a_mariadb_read_stops_the_server_thread(stop: str, bulk: bool,
                                                          mysql_database: Callable[[], str]) -> None:
    url = mysql_database()
    engine = create_db_engine(url, poolclass=sa.pool.NullPool)
    # the first rows stream at once, then the server computes for minutes (no write to block on)
    sql = "SELECT seq AS id, IF(seq = 3000, BENCHMARK(50000000, MD5('x')), 0) AS busy FROM seq_1_to_3001"
    with Extraction([StepSpec(name="read", project_id=1, sql=sql)], {1: engine}, batch_rows=100) as ext:
        ext.open("pg_text" if bulk else None)
        assert ext.bulk is bulk
        thread_id = ext._session.raw.driver_connection.thread_id()  # noqa: SLF001 - the server thread to watch
        stream = iter(ext.bulk_batches(1 << 16) if bulk else ext.batches())
        assert next(stream) and _thread_alive(url, thread_id)
        if stop != "close":  # the API's cancel, or the job's time limit
            ext.cancel(stop if stop == "timeout" else "cancelled")
            with pytest.raises(TimedOut if stop == "timeout" else Cancelled):
                for _ in stream:
                    pass
    for _ in range(100):  # the thread ends soon after KILL QUERY and the close; not a timing assertion
        if not _thread_alive(url, thread_id):
            break
        time.sleep(0.1)
    assert not _thread_alive(url, thread_id)
    engine.dispose()
