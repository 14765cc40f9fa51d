"""Values arrive exactly or their row fails loudly, on the fast and the general path.

PostgreSQL special values (infinity, 24:00, month intervals), source session settings
(extra_float_digits, DateStyle, IntervalStyle), awkward identifiers (``pct%``, quotes,
``%(x)s``), timetz offsets and the sign of zero: issue #12 items 4, 5, 9, 10 and 14.
"""
from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from shared.connections import create_db_engine
from shared.extract import Extraction
from shared.jobspec import Mode, StepSpec
from tests.integration.test_fastpath_equivalence import execute, migrate

pytestmark = pytest.mark.integration
PATHS = [pytest.param(True, id="fast"), pytest.param(False, id="general")]


def run_sql(url: str, sql: str) -> None:
    """One statement as written (percent signs doubled only where the driver formats)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        doubled = conn.dialect.paramstyle in ("format", "pyformat")
        conn.exec_driver_sql(sql.replace("%", "%%") if doubled else sql)
    engine.dispose()


def text_rows(url: str, table: str, columns: str) -> list[tuple]:
    """Rows as the destination's own text (PostgreSQL casts; others as read)."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT {columns} FROM {table} ORDER BY 1").all()
    engine.dispose()
    return [tuple(r) for r in rows]


# ---------------------------------------------------------------- item 14: identifiers
ODD_NAMES = ["pct%", 'q"uote', "back`tick", "sp ace", "ünï", "%(x)s", "?", "%s"]


def _pg_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _my_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


@pytest.mark.parametrize("bulk", PATHS)
@pytest.mark.parametrize("kind", ["postgresql", "mariadb", "sqlite"])
def test_any_identifier_the_engine_accepts_loads(kind: str, bulk: bool, pg_database: Callable[[], str],
                                                 mysql_database: Callable[[], str], sqlite_url: str) -> None:
    src = pg_database()
    cols = ", ".join(f"{_pg_ident(n)} int" for n in ODD_NAMES)
    execute(src, [f"CREATE TABLE src (id int PRIMARY KEY, {cols})",
                  f"INSERT INTO src VALUES (1, {', '.join(str(i) for i in range(len(ODD_NAMES)))}), "
                  f"(2, {', '.join(str(10 + i) for i in range(len(ODD_NAMES)))})"])
    dst = {"postgresql": pg_database, "mariadb": mysql_database}.get(kind, lambda: sqlite_url)()
    ident = _my_ident if kind == "mariadb" else _pg_ident
    run_sql(dst, f"CREATE TABLE dst (id int PRIMARY KEY, {', '.join(f'{ident(n)} int' for n in ODD_NAMES)})")
    counts, failed = migrate(src, "SELECT * FROM src", dst, "dst", Mode.upsert, bulk=bulk and kind != "sqlite")
    assert failed == [] and counts["rows_inserted"] == 2
    assert text_rows(dst, "dst", "*") == [(1, *range(len(ODD_NAMES))), (2, *range(10, 10 + len(ODD_NAMES)))]
    run_sql(dst, "DELETE FROM dst")  # plain inserts (no staging) too
    counts, failed = migrate(src, "SELECT * FROM src", dst, "dst", Mode.truncate_load, bulk=bulk and kind != "sqlite")
    assert failed == [] and counts["rows_inserted"] == 2


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_any_identifier_survives_a_temporary_table(kind: str, pg_database: Callable[[], str],
                                                   mysql_database: Callable[[], str]) -> None:
    src = pg_database()
    cols = ", ".join(f"{_pg_ident(n)} int" for n in ODD_NAMES)
    execute(src, [f"CREATE TABLE src (id int PRIMARY KEY, {cols})",
                  f"INSERT INTO src VALUES (1, {', '.join(str(i) for i in range(len(ODD_NAMES)))})"])
    other = create_db_engine(pg_database() if kind == "postgresql" else mysql_database(), poolclass=sa.pool.NullPool)
    source = create_db_engine(src, poolclass=sa.pool.NullPool)
    steps = [StepSpec(name="read", project_id=1, sql="SELECT * FROM src"),
             StepSpec(name="again", project_id=2, sql="SELECT * FROM @result1 AS r")]
    try:
        with Extraction(steps, {1: source, 2: other}) as extraction:
            columns = extraction.open()
            rows = [tuple(r) for b in extraction.batches() for r in b]
    finally:
        source.dispose()
        other.dispose()
    assert [c.name for c in columns] == ["id", *ODD_NAMES]
    assert rows == [(1, *range(len(ODD_NAMES)))]


# ---------------------------------------------------------------- item 4: PostgreSQL special values
SPECIAL_SOURCE = """
CREATE TABLE src (id int PRIMARY KEY, ts timestamp, tstz timestamptz, d date, tm time, iv interval);
INSERT INTO src VALUES
 (1, 'infinity', 'infinity', 'infinity', '24:00:00', '1 year'),
 (2, '-infinity', '-infinity', '-infinity', '00:00:00', '1 mon'),
 (3, '2024-02-29 12:00:00', '2024-02-29 12:00:00+00', '2024-02-29', '23:59:59.999999',
  '1 year 2 mons 3 days 04:05:06.789'),
 (4, NULL, NULL, NULL, NULL, '25:00:00'),
 (5, NULL, NULL, NULL, NULL, '-1 days -01:00:00'),
 (6, NULL, NULL, NULL, NULL, '1 day -01:00:00'),
 (7, NULL, NULL, NULL, NULL, '3 days 00:00:00.000001')
"""
SPECIAL_COLUMNS = "id, ts::text, tstz::text, d::text, tm::text, iv::text"
SPECIAL_DEST = "(id int PRIMARY KEY, ts timestamp, tstz timestamptz, d date, tm time, iv interval)"


@pytest.fixture
def special_source(pg_database: Callable[[], str]) -> str:
    url = pg_database()
    execute(url, SPECIAL_SOURCE)
    return url


@pytest.mark.parametrize("bulk", PATHS)
def test_postgresql_special_values_stay_exact_into_postgresql(bulk: bool, special_source: str,
                                                             pg_database: Callable[[], str]) -> None:
    dst = pg_database()
    execute(dst, f"CREATE TABLE dst {SPECIAL_DEST}")
    counts, failed = migrate(special_source, "SELECT * FROM src", dst, "dst", Mode.upsert, bulk=bulk)
    assert failed == []
    assert text_rows(dst, "dst", SPECIAL_COLUMNS) == text_rows(special_source, "src", SPECIAL_COLUMNS)


@pytest.mark.parametrize("bulk", PATHS)
@pytest.mark.parametrize("kind", ["mariadb", "sqlite"])
def test_postgresql_special_values_fail_their_row_where_the_destination_cannot_hold_them(
        kind: str, bulk: bool, special_source: str, mysql_database: Callable[[], str], sqlite_url: str) -> None:
    dst = mysql_database() if kind == "mariadb" else sqlite_url
    ddl = ("(id int PRIMARY KEY, ts DATETIME(6), tstz DATETIME(6), d DATE, tm TIME(6))" if kind == "mariadb" else
           "(id int PRIMARY KEY, ts DATETIME, tstz DATETIME, d DATE, tm TIME)")
    execute(dst, f"CREATE TABLE dst {ddl}")
    sql = "SELECT id, ts, tstz, d, tm FROM src WHERE id <= 3"
    counts, failed = migrate(special_source, sql, dst, "dst", Mode.upsert, bulk=bulk and kind == "mariadb")
    assert [p for p, _ in failed] == ([1, 2] if kind == "sqlite" else [1, 2])
    assert "infinity" in failed[0][1] and "ts" in failed[0][1]
    assert "infinity" in failed[1][1]
    assert [r[0] for r in text_rows(dst, "dst", "id")] == [3]


def test_postgresql_time_24_00_goes_into_a_mariadb_time_as_24_hours(special_source: str,
                                                                 mysql_database: Callable[[], str]) -> None:
    dst = mysql_database()
    execute(dst, "CREATE TABLE dst (id int PRIMARY KEY, tm TIME(6))")
    for table_bulk in (True, False):
        execute(dst, "DELETE FROM dst")
        _, failed = migrate(special_source, "SELECT id, tm FROM src WHERE id = 1", dst, "dst", Mode.upsert,
                            bulk=table_bulk)
        assert failed == []
        assert text_rows(dst, "dst", "id, CAST(tm AS CHAR)") == [(1, "24:00:00.000000")]


def test_postgresql_special_values_survive_a_postgresql_temporary_table(special_source: str,
                                                                       pg_database: Callable[[], str]) -> None:
    other = create_db_engine(pg_database(), poolclass=sa.pool.NullPool)
    src = create_db_engine(special_source, poolclass=sa.pool.NullPool)
    steps = [StepSpec(name="read", project_id=1, sql="SELECT * FROM src"),
             StepSpec(name="again", project_id=2,
                      sql=f"SELECT {SPECIAL_COLUMNS} FROM @result1 AS r ORDER BY id")]
    try:
        with Extraction(steps, {1: src, 2: other}) as extraction:
            extraction.open()
            rows = [tuple(r) for b in extraction.batches() for r in b]
    finally:
        src.dispose()
        other.dispose()
    assert rows == text_rows(special_source, "src", SPECIAL_COLUMNS)


def test_postgresql_infinity_into_a_mariadb_temporary_table_fails_the_step(special_source: str,
                                                                         mysql_database: Callable[[], str]) -> None:
    from shared.errors import SourceError

    other = create_db_engine(mysql_database(), poolclass=sa.pool.NullPool)
    src = create_db_engine(special_source, poolclass=sa.pool.NullPool)
    steps = [StepSpec(name="read", project_id=1, sql="SELECT id, ts FROM src"),
             StepSpec(name="again", project_id=2, sql="SELECT * FROM @result1 AS r")]
    try:
        with pytest.raises(SourceError, match="infinity"):
            with Extraction(steps, {1: src, 2: other}) as extraction:
                extraction.open()
                list(extraction.batches())
    finally:
        src.dispose()
        other.dispose()


# ---------------------------------------------------------------- item 5: source session settings
FLOAT_SOURCE = """
CREATE TABLE src (id int PRIMARY KEY, f float8, r real, d date, iv interval);
INSERT INTO src VALUES (1, 0.1::float8 + 0.2::float8, 16777217::real, '2024-02-29', '1 day 02:03:04'),
 (2, 1.7976931348623157e308, 3.4028235e38, '0001-01-01', '-00:00:01'),
 (3, 2.2250738585072014e-308, 1.17549435e-38, '1999-12-31', '1 mon 2 days')
"""
FLOAT_COLUMNS = "id, f::text, r::text, d::text, iv::text"


@pytest.mark.parametrize("bulk", PATHS)
def test_source_session_settings_do_not_change_values(bulk: bool, pg_database: Callable[[], str]) -> None:
    src, dst = pg_database(), pg_database()
    execute(src, FLOAT_SOURCE)
    name = sa.engine.make_url(src).database
    execute(src, [f'ALTER DATABASE "{name}" SET extra_float_digits = 0',
                  f"ALTER DATABASE \"{name}\" SET DateStyle = 'SQL, DMY'",
                  f"ALTER DATABASE \"{name}\" SET IntervalStyle = 'iso_8601'"])
    execute(dst, "CREATE TABLE dst (id int PRIMARY KEY, f float8, r real, d date, iv interval)")
    counts, failed = migrate(src, "SELECT * FROM src", dst, "dst", Mode.upsert, bulk=bulk)
    assert failed == []
    assert text_rows(dst, "dst", FLOAT_COLUMNS) == [
        (1, "0.30000000000000004", "1.6777216e+07", "2024-02-29", "1 day 02:03:04"),
        (2, "1.7976931348623157e+308", "3.4028235e+38", "0001-01-01", "-00:00:01"),
        (3, "2.2250738585072014e-308", "1.1754944e-38", "1999-12-31", "1 mon 2 days")]
