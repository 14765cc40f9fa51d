"""Values arrive exactly or their row fails loudly, on the fast and the general path.

PostgreSQL special values (infinity, 24:00, month intervals, BC), source session settings
(extra_float_digits, DateStyle, IntervalStyle), rounding to a column's scale (allow_rounding,
MariaDB notes, temporary tables), SQLite's 15 digits, awkward identifiers (``pct%``, quotes,
``%(x)s``), timetz offsets and the sign of zero: issue #12 items 4, 5, 7, 8, 9, 10 and 14.
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
PATHS = (("fast", True), ("general", False))  # table name, bulk text


def run_sql(url: str, sql: str) -> None:
    """One statement as written (percent signs doubled only where the driver formats)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        doubled = conn.dialect.paramstyle in ("format", "pyformat")
        conn.exec_driver_sql(sql.replace("%", "%%") if doubled else sql)
    engine.dispose()


def both_paths(src: str, sql: str, dst: str, ddl: str, mode: Mode = Mode.upsert, *,
               bulk_ok: bool = True) -> dict[str, tuple[dict, list]]:
    """The same query migrated into table ``fast`` (bulk text) and ``general``; their results."""
    results = {}
    for table, bulk in PATHS:
        run_sql(dst, f"CREATE TABLE {table} {ddl}")
        results[table] = migrate(src, sql, dst, table, mode, bulk=bulk and bulk_ok)
    return results


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


@pytest.mark.parametrize("kind", ["postgresql", "mariadb", "sqlite"])
def test_any_identifier_the_engine_accepts_loads(kind: str, pg_database: Callable[[], str],
                                                 mysql_database: Callable[[], str], sqlite_url: str) -> None:
    src = pg_database()
    cols = ", ".join(f"{_pg_ident(n)} int" for n in ODD_NAMES)
    execute(src, [f"CREATE TABLE src (id int PRIMARY KEY, {cols})",
                  f"INSERT INTO src VALUES (1, {', '.join(str(i) for i in range(len(ODD_NAMES)))}), "
                  f"(2, {', '.join(str(10 + i) for i in range(len(ODD_NAMES)))})"])
    dst = {"postgresql": pg_database, "mariadb": mysql_database}.get(kind, lambda: sqlite_url)()
    ident = _my_ident if kind == "mariadb" else _pg_ident
    ddl = f"(id int PRIMARY KEY, {', '.join(f'{ident(n)} int' for n in ODD_NAMES)})"
    for table, (counts, failed) in both_paths(src, "SELECT * FROM src", dst, ddl, bulk_ok=kind != "sqlite").items():
        assert failed == [] and counts["rows_inserted"] == 2, table
        assert text_rows(dst, table, "*") == [(1, *range(len(ODD_NAMES))), (2, *range(10, 10 + len(ODD_NAMES)))]
        run_sql(dst, f"DELETE FROM {table}")  # plain inserts (no staging) too
        counts, failed = migrate(src, "SELECT * FROM src", dst, table, Mode.truncate_load,
                                 bulk=table == "fast" and kind != "sqlite")
        assert failed == [] and counts["rows_inserted"] == 2, table


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
 (7, NULL, NULL, NULL, NULL, '3 days 00:00:00.000001'),
 (8, '0044-03-15 12:00:00 BC', '12345-01-01 00:00:00+00', '4713-01-01 BC', NULL, NULL)
"""
SPECIAL_COLUMNS = "id, ts::text, tstz::text, d::text, tm::text, iv::text"
SPECIAL_DEST = "(id int PRIMARY KEY, ts timestamp, tstz timestamptz, d date, tm time, iv interval)"


@pytest.fixture
def special_source(pg_database: Callable[[], str]) -> str:
    url = pg_database()
    execute(url, SPECIAL_SOURCE)
    return url


def test_postgresql_special_values_stay_exact_into_postgresql(special_source: str,
                                                             pg_database: Callable[[], str]) -> None:
    dst = pg_database()
    for table, (counts, failed) in both_paths(special_source, "SELECT * FROM src", dst, SPECIAL_DEST).items():
        assert failed == [], table
        assert text_rows(dst, table, SPECIAL_COLUMNS) == text_rows(special_source, "src", SPECIAL_COLUMNS), table


@pytest.mark.parametrize("kind", ["mariadb", "sqlite"])
def test_postgresql_special_values_fail_their_row_where_the_destination_cannot_hold_them(
        kind: str, special_source: str, mysql_database: Callable[[], str], sqlite_url: str) -> None:
    dst = mysql_database() if kind == "mariadb" else sqlite_url
    ddl = ("(id int PRIMARY KEY, ts DATETIME(6), tstz DATETIME(6), d DATE, tm TIME(6))" if kind == "mariadb" else
           "(id int PRIMARY KEY, ts DATETIME, tstz DATETIME, d DATE, tm TIME)")
    sql = "SELECT id, ts, tstz, d, tm FROM src WHERE id <= 3"
    for table, (counts, failed) in both_paths(special_source, sql, dst, ddl, bulk_ok=kind == "mariadb").items():
        assert [p for p, _ in failed] == [1, 2], table
        assert "infinity" in failed[0][1] and "ts" in failed[0][1]
        assert "infinity" in failed[1][1]
        assert [r[0] for r in text_rows(dst, table, "id")] == [3]


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


def test_source_session_settings_do_not_change_values(pg_database: Callable[[], str]) -> None:
    src, dst = pg_database(), pg_database()
    execute(src, FLOAT_SOURCE)
    name = sa.engine.make_url(src).database
    execute(src, [f'ALTER DATABASE "{name}" SET extra_float_digits = 0',
                  f"ALTER DATABASE \"{name}\" SET DateStyle = 'SQL, DMY'",
                  f"ALTER DATABASE \"{name}\" SET IntervalStyle = 'iso_8601'"])
    results = both_paths(src, "SELECT * FROM src", dst, "(id int PRIMARY KEY, f float8, r real, d date, iv interval)")
    assert [failed for _, failed in results.values()] == [[], []]
    assert text_rows(dst, "general", FLOAT_COLUMNS) == text_rows(dst, "fast", FLOAT_COLUMNS) == [
        (1, "0.30000000000000004", "1.6777216e+07", "2024-02-29", "1 day 02:03:04"),
        (2, "1.7976931348623157e+308", "3.4028235e+38", "0001-01-01", "-00:00:01"),
        (3, "2.2250738585072014e-308", "1.1754944e-38", "1999-12-31", "1 mon 2 days")]


# ---------------------------------------------------------------- item 7: rounding to the destination's scale
ROUND_SOURCE = """
CREATE TABLE src (id int PRIMARY KEY, n numeric, f float8);
INSERT INTO src VALUES (1, 0.1234567890123456789012345678901234567890, NULL), (2, 1e-40, NULL),
 (3, 1.50, 0.25), (4, 2, NULL), (5, NULL, 0.1)
"""


@pytest.fixture
def round_source(pg_database: Callable[[], str]) -> str:
    url = pg_database()
    execute(url, ROUND_SOURCE)
    return url


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_a_value_rounded_to_the_column_scale_fails_its_row(kind: str, round_source: str,
                                                           pg_database: Callable[[], str],
                                                           mysql_database: Callable[[], str]) -> None:
    dst = pg_database() if kind == "postgresql" else mysql_database()
    ddl = "(id int PRIMARY KEY, n NUMERIC(65,30), f NUMERIC(10,1))"
    for table, (counts, failed) in both_paths(round_source, "SELECT * FROM src", dst, ddl).items():
        assert [p for p, _ in failed] == [1, 2, 3], table
        assert "column n" in failed[0][1] and "0.1234567890123456789012345678901234567890" in failed[0][1]
        assert "allow_rounding" in failed[0][1]
        assert "column n" in failed[1][1] and "1E-40" in failed[1][1].upper()
        assert "column f" in failed[2][1] and "0.25" in failed[2][1]
        assert [r[0] for r in text_rows(dst, table, "id")] == [4, 5]


def test_allow_rounding_writes_rounded_values(round_source: str, mysql_database: Callable[[], str],
                                             pg_database: Callable[[], str], monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.load import LoadSession

    original = LoadSession.__init__

    def allowing(self, *args, **kwargs):  # the loader worker passes the job's allow_rounding
        original(self, *args, **{**kwargs, "allow_rounding": True})
    monkeypatch.setattr(LoadSession, "__init__", allowing)
    for dst in (mysql_database(), pg_database()):
        ddl = "(id int PRIMARY KEY, n NUMERIC(65,30), f NUMERIC(10,1))"
        for table, (counts, failed) in both_paths(round_source, "SELECT * FROM src", dst, ddl).items():
            assert failed == [] and counts["rows_inserted"] == 5, table
            rows = dict((r[0], r[1]) for r in text_rows(dst, table, "id, n"))
            assert str(rows[2]) in ("0E-30", "0.000000000000000000000000000000")


def test_a_mariadb_note_on_insert_fails_the_row(mysql_database: Callable[[], str]) -> None:
    from decimal import Decimal

    from shared.load import LoadSession
    from shared.types import Column

    dst = mysql_database()
    execute(dst, "CREATE TABLE dst (id int PRIMARY KEY, n DECIMAL(10,2), d DATE, i INT)")
    engine = create_db_engine(dst, poolclass=sa.pool.NullPool)
    columns = [Column("id", "int"), Column("n", "text"), Column("d", "text"), Column("i", "decimal")]
    session = LoadSession(engine, table="dst", columns=columns, mode=Mode.upsert)
    session.begin()
    failed = session.write([(1, "1.234", None, None), (2, "1.5", "2024-01-02", Decimal("7")),
                            (3, None, "2024-01-01 10:00:00", None), (4, None, None, Decimal("1.5"))])
    session.finish()
    session.commit()
    session.close()
    engine.dispose()
    assert [f.position for f in failed] == [1, 3, 4]
    assert "column n" in failed[0].error and "1.234" in failed[0].error
    assert "1265" in failed[1].error and "'d'" in failed[1].error  # MariaDB's Note, read back
    assert "column i" in failed[2].error and "1.5" in failed[2].error
    assert text_rows(dst, "dst", "id, CAST(n AS CHAR), CAST(d AS CHAR), i") == [(2, "1.50", "2024-01-02", 7)]


def test_an_unconstrained_numeric_keeps_its_scale_through_a_mariadb_temporary_table(
        pg_database: Callable[[], str], mysql_database: Callable[[], str]) -> None:
    from decimal import Decimal

    from shared.errors import SourceError

    pg = create_db_engine(pg_database(), poolclass=sa.pool.NullPool)
    my = create_db_engine(mysql_database(), poolclass=sa.pool.NullPool)

    def through_mariadb(sql: str) -> list[tuple]:
        steps = [StepSpec(name="read", project_id=1, sql=sql),
                 StepSpec(name="again", project_id=2, sql="SELECT * FROM @result1 AS r ORDER BY id")]
        with Extraction(steps, {1: pg, 2: my}) as extraction:
            extraction.open()
            return [tuple(r) for b in extraction.batches() for r in b]
    try:
        rows = through_mariadb("SELECT 1 AS id, 1.50::numeric AS n, 2.5::numeric(10,3) AS m "
                               "UNION ALL SELECT 2, 3.25, 1")
        assert [(str(n), str(m)) for _, n, m in rows] == [("1.50", "2.500"), ("3.25", "1.000")]
        with pytest.raises(SourceError, match="0.1234567890123456789012345678901234567890"):
            through_mariadb("SELECT 1 AS id, 0.1234567890123456789012345678901234567890::numeric AS n")
    finally:
        pg.dispose()
        my.dispose()


# ---------------------------------------------------------------- item 8: SQLite NUMERIC digits
@pytest.mark.parametrize("value", ["1.00000000000000000000000000001", "9999999999999999999999999999.9999999999",
                                   "12345678901234567890"])
def test_sqlite_numeric_refuses_what_it_would_round(value: str, sqlite_url: str) -> None:
    from decimal import Decimal

    from shared.load import LoadSession
    from shared.types import Column

    run_sql(sqlite_url, "CREATE TABLE dst (id int PRIMARY KEY, n NUMERIC)")
    engine = create_db_engine(sqlite_url, poolclass=sa.pool.NullPool)
    session = LoadSession(engine, table="dst", columns=[Column("id", "int"), Column("n", "decimal")],
                          mode=Mode.insert_only)
    session.begin()
    failed = session.write([(1, Decimal(value)), (2, Decimal("1.5"))])
    session.finish()
    session.commit()
    session.close()
    engine.dispose()
    assert [f.position for f in failed] == [1] and "column n" in failed[0].error
    assert text_rows(sqlite_url, "dst", "id, n") == [(2, 1.5)]


# ---------------------------------------------------------------- item 9: timetz
@pytest.mark.parametrize("kind", ["postgresql", "mariadb", "sqlite"])
def test_a_time_with_an_offset_fails_its_row_where_the_offset_would_be_dropped(
        kind: str, pg_database: Callable[[], str], mysql_database: Callable[[], str],
        sqlite_url: str) -> None:
    src = pg_database()
    execute(src, "CREATE TABLE src (id int PRIMARY KEY, t timetz); "
                 "INSERT INTO src VALUES (1, '12:00:00+05'), (2, '13:00:00+00'), (3, NULL)")
    dst = {"postgresql": pg_database, "mariadb": mysql_database}.get(kind, lambda: sqlite_url)()
    results = both_paths(src, "SELECT * FROM src", dst, "(id int PRIMARY KEY, t TIME)", bulk_ok=kind != "sqlite")
    for table, (counts, failed) in results.items():
        assert [p for p, _ in failed] == [1, 2], table
        assert "column t" in failed[0][1] and "12:00:00+05:00" in failed[0][1]
    if kind == "postgresql":
        for table, bulk in PATHS:
            execute(dst, f"CREATE TABLE {table}_tz (id int PRIMARY KEY, t timetz)")
            counts, failed = migrate(src, "SELECT * FROM src", dst, f"{table}_tz", Mode.upsert, bulk=bulk)
            assert failed == []
            assert text_rows(dst, f"{table}_tz", "id, t::text") == [(1, "12:00:00+05"), (2, "13:00:00+00"),
                                                                    (3, None)]


# ---------------------------------------------------------------- item 10: -0.0 and real into double
@pytest.mark.parametrize("kind", ["postgresql", "mariadb", "sqlite"])
def test_negative_zero_and_real_into_double_are_the_same_on_both_paths(
        kind: str, pg_database: Callable[[], str], mysql_database: Callable[[], str],
        sqlite_url: str) -> None:
    src = pg_database()
    execute(src, "CREATE TABLE src (id int PRIMARY KEY, z float8, r real); "
                 "INSERT INTO src VALUES (1, '-0', 0.1), (2, 0, 16777217), (3, 1.5, 3.4028235e38)")
    dst = {"postgresql": pg_database, "mariadb": mysql_database}.get(kind, lambda: sqlite_url)()
    ddl = "(id int PRIMARY KEY, z DOUBLE PRECISION, r DOUBLE PRECISION)"
    negative_zero = "-0.0" if kind == "postgresql" else "0.0"  # MariaDB and SQLite do not keep the sign of zero
    for table, (counts, failed) in both_paths(src, "SELECT * FROM src", dst, ddl, bulk_ok=kind != "sqlite").items():
        assert failed == [], table
        rows = [(i, repr(float(z)), float(r)) for i, z, r in text_rows(dst, table, "id, z, r")]
        assert rows == [(1, negative_zero, 0.1), (2, "0.0", 16777216.0), (3, "1.5", 3.4028235e38)], table


def test_sqlite_numeric_refuses_numeric_text_it_would_round(sqlite_url: str) -> None:
    from shared.load import LoadSession
    from shared.types import Column

    run_sql(sqlite_url, "CREATE TABLE dst (id int PRIMARY KEY, n NUMERIC)")
    engine = create_db_engine(sqlite_url, poolclass=sa.pool.NullPool)
    session = LoadSession(engine, table="dst", columns=[Column("id", "int"), Column("n", "text")],
                          mode=Mode.insert_only)
    session.begin()
    failed = session.write([(1, "1.00000000000000000000000000001"), (2, "2.5"), (3, "12"), (4, "n/a")])
    session.finish()
    session.commit()
    session.close()
    engine.dispose()
    assert [f.position for f in failed] == [1] and "column n" in failed[0].error
    assert text_rows(sqlite_url, "dst", "id, n") == [(2, 2.5), (3, 12), (4, "n/a")]
