"""Loading statements and value encoders of PostgreSQL, MySQL/MariaDB and SQLite, without servers."""
from __future__ import annotations

import sqlite3
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pymysql
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from shared.dialects import get_dialect
from shared.dialects.loading import compile_sql, kind_of, temp_table
from shared.dialects.mysql_load import build_mysql_batch_stats, build_mysql_upsert, mysql_row_encoder
from shared.dialects.postgresql_load import build_pg_insert_new, build_pg_upsert, pg_formatter
from shared.dialects.sqlite_load import build_sqlite_upsert, sqlite_row_encoder
from shared.jobspec import Engine
from shared.types import Column

TARGET = sa.Table("T", sa.MetaData(), sa.Column("id", sa.BigInteger, primary_key=True),
                  sa.Column("name", sa.String(10)), sa.Column("doc", postgresql.JSON()))
COLS = ["id", "name", "doc"]
STAGE = temp_table("dm_stage_1", COLS)


@pytest.mark.parametrize(("given", "name"), [
    ("postgresql", "postgresql"), ("postgresql+psycopg2", "postgresql"), ("mariadb", "mysql"), ("mysql", "mysql"),
    ("sqlite", "sqlite"), ("mssql+pyodbc", "mssql"), (Engine.mysql, "mysql"),
])
def test_get_dialect_accepts_engine_and_backend_names(given: object, name: str) -> None:
    assert get_dialect(given).name == name  # type: ignore[arg-type]


def test_get_dialect_accepts_an_engine_and_refuses_unknown_names() -> None:
    assert get_dialect(sa.create_engine("sqlite://")).name == "sqlite"
    with pytest.raises(ValueError, match="unknown database engine"):
        get_dialect("oracle")


def test_pg_upsert_guards_unchanged_rows_and_counts_inserts_apart() -> None:
    sql = compile_sql(build_pg_upsert(TARGET, STAGE, COLS, ["id"]), postgresql.dialect())
    assert 'ON CONFLICT (id) DO UPDATE SET name = excluded.name, doc = excluded.doc' in sql
    assert ('WHERE "T".name IS DISTINCT FROM excluded.name OR CAST("T".doc AS TEXT) IS DISTINCT FROM '
            'CAST(excluded.doc AS TEXT)') in sql  # json has no equality operator
    assert "RETURNING (xmax = 0) AS ins" in sql and "count(*) FILTER (WHERE dm_upsert.ins)" in sql


def test_pg_insert_only_skips_only_key_conflicts() -> None:
    sql = compile_sql(build_pg_insert_new(TARGET, STAGE, COLS, ["id"]), postgresql.dialect())
    assert sql.endswith("ON CONFLICT (id) DO NOTHING")


def test_mysql_upsert_uses_on_duplicate_key_update_never_ignore() -> None:
    sql = compile_sql(build_mysql_upsert(TARGET, STAGE, COLS, ["id"]), mysql.dialect())
    assert sql == ("INSERT INTO `T` (id, name, doc) SELECT dm_stage_1.id, dm_stage_1.name, dm_stage_1.doc \n"
                   "FROM dm_stage_1 ON DUPLICATE KEY UPDATE name = dm_stage_1.name, doc = dm_stage_1.doc")
    stats = compile_sql(build_mysql_batch_stats(TARGET, STAGE, ["id", "name"], mysql.dialect()), mysql.dialect())
    assert "count(DISTINCT dm_stage_1.id, dm_stage_1.name)" in stats and stats.count("dm_stage_1 LEFT OUTER") == 1


def test_sqlite_upsert_disambiguates_on_conflict() -> None:
    sql = compile_sql(build_sqlite_upsert(TARGET, STAGE, COLS, ["id"]), sqlite.dialect())
    assert "FROM dm_stage_1 \nWHERE 1 = 1 ON CONFLICT (id) DO UPDATE SET name = excluded.name" in sql
    assert '"T".name IS NOT excluded.name' in sql


def test_pg_copy_text_escapes_and_converts() -> None:
    text, data = pg_formatter("text"), pg_formatter("bytes")
    assert text("a\tb\nc\\d\re") == "a\\tb\\nc\\\\d\\re"
    assert data(b"\x00\xff") == "\\\\x00ff"
    assert pg_formatter("timestamp")(datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))) == "2024-01-01T10:00:00"
    assert pg_formatter("int")(True) == "1" and pg_formatter("bool")(False) == "f"
    assert pg_formatter("float")(float("inf")) == "Infinity"
    assert pg_formatter("interval")(timedelta(days=1, seconds=5)) == "1 days 5000000 microseconds"
    assert pg_formatter("interval")(-timedelta(days=1, hours=1)) == "-1 days -3600000000 microseconds"
    assert pg_formatter("json")({"a": [1]}) == '{"a": [1]}'
    with pytest.raises(ValueError, match="NUL"):
        text("a\x00b")
    with pytest.raises(ValueError, match="cannot be written into a int column"):
        pg_formatter("int")([1, 2])


def test_mysql_encoder_converts_what_the_driver_cannot_hold() -> None:
    cols = [sa.Column("b", sa.Boolean), sa.Column("ts", sa.DateTime), sa.Column("u", mysql.BINARY(16)),
            sa.Column("c", sa.CHAR(36)), sa.Column("f", sa.Float)]
    src = [Column("b", "bool"), Column("ts", "timestamptz"), Column("u", "uuid"), Column("c", "uuid"),
           Column("f", "float")]
    encode = mysql_row_encoder(cols, src)
    u = uuid.uuid4()
    aware = datetime(2024, 6, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert encode((True, aware, u, u, 1.5)) == (1, datetime(2024, 5, 31, 23, 30), u.bytes, str(u), 1.5)
    with pytest.raises(ValueError, match="cannot store the float inf"):
        encode((None, None, None, None, float("inf")))


def test_sqlite_encoder_keeps_decimals_exact_or_refuses() -> None:
    encode = sqlite_row_encoder([sa.Column("n", sa.Numeric(38, 10)), sa.Column("t", sa.Text),
                                 sa.Column("d", sa.Date), sa.Column("u", sa.CHAR(32))])
    u = uuid.uuid4()
    assert encode((Decimal("1.25"), Decimal("1.0000000000000000001"), date(2020, 2, 29), u)) == (
        "1.25", "1.0000000000000000001", "2020-02-29", u.hex)
    assert encode((Decimal("12"), None, None, None))[0] == 12
    with pytest.raises(ValueError, match="more than 15 significant digits"):
        encode((Decimal("1.0000000000000000001"), None, None, None))
    with pytest.raises(ValueError, match="64-bit"):
        sqlite_row_encoder([sa.Column("i", sa.BigInteger)])((2**64,))


@pytest.mark.parametrize(("sa_type", "kind"), [
    (sa.BigInteger(), "int"), (sa.Boolean(), "bool"), (sa.Float(), "float"), (sa.Numeric(10, 2), "decimal"),
    (sa.String(5), "text"), (sa.LargeBinary(), "bytes"), (mysql.VARBINARY(16), "bytes"), (sa.Date(), "date"),
    (sa.DateTime(), "timestamp"), (postgresql.TIMESTAMP(timezone=True), "timestamptz"), (sa.Uuid(), "uuid"),
    (postgresql.JSONB(), "json"), (postgresql.INTERVAL(), "interval"), (sa.types.NullType(), "other"),
])
def test_destination_types_map_to_kinds(sa_type: sa.types.TypeEngine, kind: str) -> None:
    assert kind_of(sa_type) == kind


class _PgError(Exception):
    def __init__(self, pgcode: str | None) -> None:
        super().__init__("x")
        self.pgcode = pgcode


@pytest.mark.parametrize(("code", "transient", "row"), [
    ("40P01", True, False), ("40001", True, False), ("55P03", True, False), ("57014", True, False),
    ("08006", True, False), ("23505", False, True), ("22001", False, True), ("21000", False, True),
    ("42501", False, False), ("42P01", False, False),
])
def test_postgresql_errors_are_classified_by_sqlstate(code: str, transient: bool, row: bool) -> None:
    d = get_dialect("postgresql")
    assert (d.is_transient(_PgError(code)), d.is_row_error(_PgError(code))) == (transient, row)


@pytest.mark.parametrize(("exc", "transient", "row"), [
    (pymysql.err.OperationalError(1213, "Deadlock found"), True, False),
    (pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"), True, False),
    (pymysql.err.OperationalError(2013, "Lost connection"), True, False),
    (pymysql.err.OperationalError(1969, "Query execution was interrupted (max_statement_time exceeded)"), True, False),
    (pymysql.err.IntegrityError(1048, "Column 'x' cannot be null"), False, True),
    (pymysql.err.DataError(1406, "Data too long for column 'x' at row 1"), False, True),
    (pymysql.err.ProgrammingError(1146, "Table 'x' doesn't exist"), False, False),
    (pymysql.err.OperationalError(1142, "INSERT command denied"), False, False),
])
def test_mysql_errors_are_classified_by_number(exc: Exception, transient: bool, row: bool) -> None:
    d = get_dialect("mariadb")
    assert (d.is_transient(exc), d.is_row_error(exc)) == (transient, row)


@pytest.mark.parametrize(("exc", "transient", "row"), [
    (sqlite3.OperationalError("database is locked"), True, False),
    (sqlite3.OperationalError("interrupted"), True, False),
    (sqlite3.IntegrityError("NOT NULL constraint failed: t.x"), False, True),
    (sqlite3.OperationalError("no such table: t"), False, False),
])
def test_sqlite_errors_are_classified(exc: Exception, transient: bool, row: bool) -> None:
    d = get_dialect("sqlite")
    assert (d.is_transient(exc), d.is_row_error(exc)) == (transient, row)
