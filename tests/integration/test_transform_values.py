"""Values survive a transform that only renames columns, PostgreSQL → MariaDB and MariaDB → PostgreSQL.

Each case loads the same source twice: once through the transform, once straight (the
step renames the columns itself, the general path). Both destination tables must hold
the very same values, and those values are also checked against what was inserted:
decimals keep precision and scale, timestamps their microseconds and instant, text its
UTF-8 characters, NULLs stay NULL.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest
import sqlalchemy as sa

from shared.connections import create_db_engine
from shared.extract import Extraction
from shared.jobspec import Mode, StepSpec
from shared.load import LoadSession
from shared.transform import TransformLimits, Transformation
from tests.integration.test_fastpath_equivalence import execute

pytestmark = pytest.mark.integration
TEXT = "naïve 😀 日本語 ‮ 'quote' \\ \t tab"
RENAME = "SELECT id, a AS amount, t AS ts, z AS tstz, x AS txt FROM @result1"
DIRECT = "SELECT id, a AS amount, t AS ts, z AS tstz, x AS txt FROM src"
UTC = dt.timezone.utc


def load(src_url: str, sql: str, dst_url: str, table: str, *, transform: str | None) -> dict:
    """Steps (and transform) → LoadSession as the services run them; returns the counts."""
    src = create_db_engine(src_url, poolclass=sa.pool.NullPool)
    dst = create_db_engine(dst_url, poolclass=sa.pool.NullPool)
    steps = [StepSpec(name="read", project_id=1, sql=sql)]
    try:
        run = (Transformation(steps, transform, {1: src}, batch_rows=2, limits=TransformLimits()) if transform
               else Extraction(steps, {1: src}, batch_rows=2))
        with run:
            session = LoadSession(dst, table=table, columns=run.open(), mode=Mode.insert_only)
            session.begin()
            try:
                failed = [f for rows in run.batches() for f in session.write(rows)]
                counts = session.finish().to_dict()
                session.commit()
            finally:
                session.close()
        assert failed == []
        return counts
    finally:
        src.dispose()
        dst.dispose()


def rows(url: str, table: str) -> list[tuple]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        out = [tuple(r) for r in conn.exec_driver_sql(f"SELECT id, amount, ts, tstz, txt FROM {table} ORDER BY id")]
    engine.dispose()
    return out


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def both(src: str, step_sql: str, dst: str, ddl: str) -> list[tuple]:
    """The rows of the transformed table, after checking they equal the straight copy's."""
    for table in ("transformed", "straight"):
        execute(dst, f"CREATE TABLE {table} {ddl}")
    assert load(src, step_sql, dst, "transformed", transform=RENAME)["rows_inserted"] == 4
    assert load(src, DIRECT, dst, "straight", transform=None)["rows_inserted"] == 4
    transformed, straight = rows(dst, "transformed"), rows(dst, "straight")
    assert transformed == straight
    return transformed


def check_values(got: list[tuple], *, scale: int) -> None:
    amounts = [Decimal("12345678901234.123456"), Decimal("-0.000001"), Decimal("0")]
    assert [r[1] for r in got] == [a.quantize(Decimal(1).scaleb(-scale)) for a in amounts] + [None]
    assert [r[2] for r in got] == [dt.datetime(2024, 2, 29, 23, 59, 59, 999999), dt.datetime(1999, 12, 31, 0, 0, 0, 1),
                                   dt.datetime(2000, 1, 1), None]
    assert [as_utc(r[3]) for r in got] == [dt.datetime(2024, 3, 31, 0, 30, 0, 1), dt.datetime(2021, 1, 1, 12),
                                           dt.datetime(2038, 1, 19, 3, 14, 7, 999999), None]
    assert [r[4] for r in got] == [TEXT, "", "ß", None]


def test_postgresql_to_mariadb_keeps_every_value(pg_database: Callable[[], str],
                                                  mysql_database: Callable[[], str]) -> None:
    # Given a PostgreSQL source with exact decimals, microsecond timestamps, zoned instants, UTF-8 and NULLs
    src, dst = pg_database(), mysql_database()
    execute(src, ["CREATE TABLE src (id int PRIMARY KEY, a numeric(20,6), t timestamp(6), z timestamptz(6), x text)",
                  "INSERT INTO src VALUES "
                  f"(1, 12345678901234.123456, '2024-02-29 23:59:59.999999', '2024-03-31 02:30:00.000001+02', "
                  f"'{TEXT.replace(chr(39), chr(39) * 2)}'), "
                  "(2, -0.000001, '1999-12-31 00:00:00.000001', '2021-01-01 07:00:00-05', ''), "
                  "(3, 0, '2000-01-01', '2038-01-19 03:14:07.999999+00', 'ß'), (4, NULL, NULL, NULL, NULL)"])
    # When it goes through a rename-only transform into MariaDB
    got = both(src, "SELECT * FROM src", dst, "(id int PRIMARY KEY, amount decimal(20,6), ts datetime(6), "
               "tstz datetime(6), txt text) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    # Then every value is the one inserted (and the same as the straight copy's)
    check_values(got, scale=6)


def test_mariadb_to_postgresql_keeps_every_value(pg_database: Callable[[], str],
                                                  mysql_database: Callable[[], str]) -> None:
    src, dst = mysql_database(), pg_database()
    execute(src, ["CREATE TABLE src (id int PRIMARY KEY, a decimal(30,10), t datetime(6), z timestamp(6) NULL, "
                  "x text) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                  "SET time_zone = '+00:00'",
                  "INSERT INTO src VALUES "
                  f"(1, 12345678901234.123456, '2024-02-29 23:59:59.999999', '2024-03-31 00:30:00.000001', "
                  f"'{TEXT.replace(chr(92), chr(92) * 2).replace(chr(39), chr(39) * 2)}'), "
                  "(2, -0.000001, '1999-12-31 00:00:00.000001', '2021-01-01 12:00:00', ''), "
                  "(3, 0, '2000-01-01', '2038-01-19 03:14:07.999999', 'ß'), (4, NULL, NULL, NULL, NULL)"])
    got = both(src, "SELECT * FROM src", dst, "(id int PRIMARY KEY, amount numeric(30,10), ts timestamp(6), "
               "tstz timestamptz(6), txt text)")
    check_values(got, scale=10)
