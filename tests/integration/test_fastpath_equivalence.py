"""The fast path (bulk text, shared.dialects.bulk) and the general path write identical rows.

Given a source with awkward values (NULL in every column, text with tabs, newlines,
carriage returns, backslashes, quotes and the words NULL and \\N, emoji, big numerics,
floats, timestamps with time zone read in a non-UTC session, bytea with zero bytes),
when the same query is migrated once through the fast path and once through the general
path, then both destination tables hold exactly the same rows and the counts agree; a
batch the database refuses is isolated row by row with the same failed rows.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
import sqlalchemy as sa

import shared.load.session as load_session
from shared.connections import create_db_engine
from shared.dialects import get_dialect
from shared.extract import Extraction
from shared.jobspec import Mode, StepSpec
from shared.load import LoadSession

pytestmark = pytest.mark.integration

PG_SOURCE = """
CREATE TABLE src (id bigint PRIMARY KEY, i int, n numeric(38,10), f float8, r real, b boolean, t text,
                  v varchar(40), by bytea, d date, tm time, ts timestamp, tstz timestamptz, u uuid, j jsonb);
INSERT INTO src VALUES
 (1, 2147483647, 1234567890123456789012345678.0123456789, 0.1, 0.1, true,
  E'tab\\there nl\\nthere cr\\rthere bs\\\\ bell\\b ff\\f vt\\x0b "dq" ''sq'' , comma', 'NULL', '\\x00ff00'::bytea,
  '1970-01-01', '23:59:59.999999', '2024-02-29 12:34:56.789012', '2024-03-31 01:30:15.123456+05:30',
  '12345678-1234-5678-1234-567812345678', '{"a": [1, null], "emoji": "😀", "q": "\\\\\\"x"}'),
 (2, -2147483648, -0.0000000001, 1.2345678901234567e300, -3.5e-30, false, '\\N', '', '\\x'::bytea,
  '9999-12-31', '00:00', '1999-12-31 23:59:59', '2030-01-01 00:00:00+00', gen_random_uuid(), '[]'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, 0, 0, -0.0, 'NaN', true, 'emoji 😀 and 𝄞 — ünïcödé ✓', 'x', '\\x5c6e'::bytea, '2000-02-29', '12:00',
  '2000-01-01 00:00:00', '1900-06-01 12:00:00-03', NULL, 'null');
"""
PG_DEST = ("(id bigint PRIMARY KEY, i int, n numeric(38,10), f float8, r real, b boolean, t text, v varchar(40), "
           "by bytea, d date, tm time, ts timestamp, tstz timestamptz, u uuid, j jsonb)")
MY_SOURCE = [
    "CREATE TABLE src (id BIGINT PRIMARY KEY, i INT, n DECIMAL(38,10), f DOUBLE, b BOOLEAN, t LONGTEXT, "
    "v VARCHAR(40), bl LONGBLOB, d DATE, ts DATETIME(6), fl FLOAT, y YEAR) CHARACTER SET utf8mb4",
    "INSERT INTO src VALUES (1, 2147483647, 1234567890123456789012345678.0123456789, 0.1, 1, "
    "'tab\\there nl\\nthere cr\\rthere bs\\\\\\\\ \"dq\" ''sq'' , comma', 'NULL', X'00FF00', '1970-01-01', "
    "'2024-02-29 12:34:56.789012', 0.1, 2024)",
    "INSERT INTO src VALUES (2, -2147483648, -0.0000000001, 1.2345678901234567e300, 0, '\\\\N', '', X'', "
    "'9999-12-31', '1999-12-31 23:59:59', 3.4e38, 1901)",
    "INSERT INTO src VALUES (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "INSERT INTO src VALUES (4, 0, 0, 1/3e0, 1, 'emoji 😀 and 𝄞 — ünïcödé ✓', 'x', X'5C6E', '2000-02-29', "
    "'2000-01-01 00:00:00.000001', 1/3, 2155)",
]
MY_TO_PG_DEST = ("(id bigint PRIMARY KEY, i int, n numeric(38,10), f float8, b boolean, t text, v varchar(40), "
                 "bl bytea, d date, ts timestamptz, fl real, y int)")
PG_TO_MY_DEST = ("(id BIGINT PRIMARY KEY, i INT, n DECIMAL(38,10), f DOUBLE, r DOUBLE, b BOOLEAN, t LONGTEXT, "
                 "v VARCHAR(40), `by` LONGBLOB, d DATE, tm TIME(6), ts DATETIME(6), tstz DATETIME(6), j LONGTEXT) "
                 "CHARACTER SET utf8mb4")
PG_TO_MY_SQL = "SELECT id, i, n, f, r, b, t, v, by, d, tm, ts, tstz, j FROM src"


def execute(url: str, statements: list[str] | str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for sql in [statements] if isinstance(statements, str) else statements:
            conn.exec_driver_sql(sql.replace("%", "%%"))
    engine.dispose()


def table_rows(url: str, table: str) -> list[tuple]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY id").all()
    engine.dispose()
    return [tuple(_comparable(v) for v in r) for r in rows]


def _comparable(value: object) -> object:
    """bytes for memoryview; floats by repr, so NaN equals NaN and -0.0 differs from 0.0."""
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, float):
        return repr(value)
    return value


def migrate(src_url: str, sql: str, dst_url: str, table: str, mode: Mode, *, bulk: bool,
            chunk_bytes: int = 300) -> tuple[dict, list]:
    """Extraction → LoadSession as the services run them; returns (counts, failed rows)."""
    src = create_db_engine(src_url, poolclass=sa.pool.NullPool)
    dst = create_db_engine(dst_url, poolclass=sa.pool.NullPool)
    fmt = get_dialect(dst.dialect.name).bulk_import_format if bulk else None
    failed: list = []
    try:
        with Extraction([StepSpec(name="read", project_id=1, sql=sql)], {1: src}, batch_rows=2) as extraction:
            columns = extraction.open(fmt)
            assert extraction.bulk is bulk
            session = LoadSession(dst, table=table, columns=columns, mode=mode)
            session.begin()
            try:
                if bulk:
                    for payload, count in extraction.bulk_batches(chunk_bytes):
                        failed += session.write_bulk(payload, count, fmt)
                else:
                    for rows in extraction.batches():
                        failed += session.write(rows)
                counts = session.finish().to_dict()
                session.commit()
            finally:
                session.close()
    finally:
        src.dispose()
        dst.dispose()
    return counts, [(f.position, f.error) for f in failed]


@pytest.fixture
def parse_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the fast path's fallbacks (payloads parsed back into rows)."""
    calls: list[int] = []
    real: Callable = load_session.parse_bulk

    def spy(payload: bytes, fmt: str, columns: list) -> list:
        calls.append(1)
        return real(payload, fmt, columns)

    monkeypatch.setattr(load_session, "parse_bulk", spy)
    return calls


def source_in_kolkata(pg_database: Callable[[], str], statements: str | list[str]) -> str:
    """A new PostgreSQL source database holding ``statements``' tables, whose sessions render
    timestamptz at +05:30 (Asia/Kolkata)."""
    url = pg_database()
    execute(url, statements)
    name = sa.engine.make_url(url).database
    execute(url, f"ALTER DATABASE \"{name}\" SET timezone = 'Asia/Kolkata'")
    return url


@pytest.fixture
def pg_source(pg_database: Callable[[], str]) -> str:
    return source_in_kolkata(pg_database, PG_SOURCE)


def test_postgresql_to_postgresql_fast_path_writes_the_same_rows_as_the_general_path(
        pg_source: str, pg_database: Callable[[], str], parse_calls: list[int]) -> None:
    dst = pg_database()
    execute(dst, [f"CREATE TABLE fast {PG_DEST}", f"CREATE TABLE general {PG_DEST}"])
    fast = migrate(pg_source, "SELECT * FROM src", dst, "fast", Mode.truncate_load, bulk=True)
    assert not parse_calls  # clean data never left the fast path
    general = migrate(pg_source, "SELECT * FROM src", dst, "general", Mode.truncate_load, bulk=False)
    assert fast == general
    assert table_rows(dst, "fast") == table_rows(dst, "general")
    assert len(table_rows(dst, "fast")) == 4


def test_mariadb_to_postgresql_fast_path_writes_the_same_rows_as_the_general_path(
        mysql_database: Callable[[], str], pg_database: Callable[[], str], parse_calls: list[int]) -> None:
    src, dst = mysql_database(), pg_database()
    execute(src, MY_SOURCE)
    execute(dst, [f"CREATE TABLE fast {MY_TO_PG_DEST}", f"CREATE TABLE general {MY_TO_PG_DEST}"])
    fast = migrate(src, "SELECT * FROM src", dst, "fast", Mode.truncate_load, bulk=True)
    assert not parse_calls
    general = migrate(src, "SELECT * FROM src", dst, "general", Mode.truncate_load, bulk=False)
    assert fast == general
    assert table_rows(dst, "fast") == table_rows(dst, "general")
    assert len(table_rows(dst, "fast")) == 4


def test_postgresql_to_mariadb_fast_path_writes_the_same_rows_as_the_general_path(
        pg_source: str, mysql_database: Callable[[], str], parse_calls: list[int]) -> None:
    dst = mysql_database()
    execute(dst, [f"CREATE TABLE fast {PG_TO_MY_DEST}", f"CREATE TABLE general {PG_TO_MY_DEST}"])
    # row 4 holds a NaN real: MariaDB cannot store it, so that batch falls back and the row fails alike
    fast = migrate(pg_source, PG_TO_MY_SQL, dst, "fast", Mode.truncate_load, bulk=True)
    general = migrate(pg_source, PG_TO_MY_SQL, dst, "general", Mode.truncate_load, bulk=False)
    assert fast == general
    assert [p for p, _ in fast[1]] == [4]
    assert table_rows(dst, "fast") == table_rows(dst, "general")
    assert len(table_rows(dst, "fast")) == 3


def test_a_clean_postgresql_to_mariadb_batch_stays_on_the_fast_path(
        pg_source: str, mysql_database: Callable[[], str], parse_calls: list[int]) -> None:
    dst = mysql_database()
    execute(dst, f"CREATE TABLE fast {PG_TO_MY_DEST}")
    counts, failed = migrate(pg_source, PG_TO_MY_SQL + " WHERE id < 4", dst, "fast", Mode.truncate_load, bulk=True)
    assert not parse_calls and not failed and counts["rows_inserted"] == 3


ESCAPES_SOURCE = r"""
CREATE TABLE src (id int PRIMARY KEY, t text, b boolean, by bytea, tstz timestamptz);
INSERT INTO src VALUES
 (1, E'form\ffeed', true, '\x0c0b5c'::bytea, '2024-03-31 01:30:15.123456+05:30'),
 (2, E'vertical\x0btab', false, '\x'::bytea, '1999-12-31 23:59:59-08'),
 (3, E'backslash f \\f', NULL, NULL, NULL),
 (4, E'backslash v \\v', true, '\x5c66'::bytea, '2030-01-01 00:00:00+00'),
 (5, E'tab\there nl\nthere cr\rthere crlf\r\n', true, '\x00ff00'::bytea, '2000-02-29 12:00:00+01'),
 (6, 'NULL', false, '\x4e554c4c'::bytea, '1970-01-01 00:00:00+00'),
 (7, E'\\N', true, '\x5c4e'::bytea, '2024-02-29 23:59:59.999999-05'),
 (8, '', false, '\x'::bytea, '2001-01-01 00:00:00+00'),
 (9, NULL, NULL, NULL, NULL),
 (10, E'ends in a backslash \\', true, '\x5c'::bytea, '2024-06-01 00:00:00+02'),
 (11, E'\\\\ two, \\t, \\n, \\Z, \\0, \\b and bell \b', false, '\x5c5c'::bytea, '2024-06-01 12:00:00+00'),
 (12, E'\\', NULL, '\x0a0d09'::bytea, '2024-06-01 12:00:00+00');
"""
ESCAPES_DEST = "(id INT PRIMARY KEY, t LONGTEXT, b BOOLEAN, `by` LONGBLOB, tstz DATETIME(6)) CHARACTER SET utf8mb4"


def test_postgresql_to_mariadb_escapes_nulls_and_empty_strings_arrive_as_on_the_general_path(
        pg_database: Callable[[], str], mysql_database: Callable[[], str], parse_calls: list[int]) -> None:
    # Given text with form feeds, vertical tabs, backslashes before f, v, N, t, n, Z, 0 and b,
    # tabs, newlines, carriage returns, the words NULL and \N, empty strings and NULLs, and
    # bytes, booleans and timestamps with time zone, read in a non-UTC session
    src, dst = pg_database(), mysql_database()
    execute(src, ESCAPES_SOURCE)
    execute(src, f"ALTER DATABASE \"{sa.engine.make_url(src).database}\" SET timezone = 'Asia/Kolkata'")
    execute(dst, [f"CREATE TABLE fast {ESCAPES_DEST}", f"CREATE TABLE general {ESCAPES_DEST}"])
    # When it is migrated into MariaDB through the fast path (small batches) and the general path
    fast = migrate(src, "SELECT * FROM src", dst, "fast", Mode.truncate_load, bulk=True)
    general = migrate(src, "SELECT * FROM src", dst, "general", Mode.truncate_load, bulk=False)
    # Then both tables hold the same rows, the source's text unchanged
    assert fast == general and not fast[1] and fast[0]["rows_inserted"] == 12
    rows = table_rows(dst, "fast")
    assert rows == table_rows(dst, "general")
    engine = sa.create_engine(src)
    with engine.connect() as conn:
        source = conn.exec_driver_sql("SELECT id, t, by FROM src ORDER BY id").all()
    engine.dispose()
    assert [(r[0], r[1], r[3]) for r in rows] == [(i, t, None if b is None else bytes(b)) for i, t, b in source]
    assert [r[2] for r in rows] == [1, 0, None, 1, 1, 0, 1, 0, None, 1, 0, None]
    assert rows[0][4] == datetime(2024, 3, 30, 20, 0, 15, 123456)  # UTC
    # And every batch stayed on the fast path (LOAD DATA of quoted CSV reads every byte as it is)
    assert not parse_calls


@pytest.mark.parametrize("mode", [Mode.upsert, Mode.sync_delete, Mode.insert_only])
def test_keyed_modes_give_the_same_rows_and_counts_on_both_paths(
        mode: Mode, pg_source: str, pg_database: Callable[[], str]) -> None:
    dst = pg_database()
    for table in ("fast", "general"):
        execute(dst, [f"CREATE TABLE {table} {PG_DEST}",
                      f"INSERT INTO {table} (id, t) VALUES (2, 'old'), (3, NULL), (99, 'gone')"])
    fast = migrate(pg_source, "SELECT * FROM src", dst, "fast", mode, bulk=True)
    general = migrate(pg_source, "SELECT * FROM src", dst, "general", mode, bulk=False)
    assert fast == general
    assert table_rows(dst, "fast") == table_rows(dst, "general")


# Rows 17 and 18 break a NOT NULL, 40 a CHECK and 61 the NOT NULL (PostgreSQL) or a VARCHAR(10) under
# strict mode (MariaDB: LOAD DATA LOCAL would only warn, writing NULL as '' or truncating the text).
REFUSED = {
    "postgresql": ("NULL", "(id int PRIMARY KEY, t text NOT NULL, q int CHECK (q >= 0))"),
    "mariadb": ("'far too long for ten'", "(id INT PRIMARY KEY, t VARCHAR(10) NOT NULL, q INT CHECK (q >= 0))"),
}


@pytest.mark.parametrize("destination", sorted(REFUSED))
def test_a_refused_fast_path_batch_is_isolated_row_by_row_like_the_general_path(
        destination: str, pg_database: Callable[[], str], request: pytest.FixtureRequest,
        parse_calls: list[int]) -> None:
    row_61, ddl = REFUSED[destination]
    src = pg_database()
    dst = request.getfixturevalue("mysql_database" if destination == "mariadb" else "pg_database")()
    execute(src, f"CREATE TABLE src AS SELECT g AS id, CASE WHEN g IN (17, 18) THEN NULL WHEN g = 61 THEN {row_61} "
                 "ELSE 'v' || g END AS t, CASE WHEN g = 40 THEN -1 ELSE g END AS q FROM generate_series(1, 100) g")
    for table in ("fast", "general"):
        execute(dst, f"CREATE TABLE {table} {ddl}")
    # When it is migrated through the fast path and through the general path
    fast = migrate(src, "SELECT * FROM src", dst, "fast", Mode.truncate_load, bulk=True, chunk_bytes=200)
    assert parse_calls  # the refused chunks went the general way
    general = migrate(src, "SELECT * FROM src", dst, "general", Mode.truncate_load, bulk=False)
    # Then the same rows fail with the same errors and the same rows are written
    assert fast[0] == general[0]
    assert [(p, e.replace("fast", "general")) for p, e in fast[1]] == general[1]
    assert [p for p, _ in fast[1]] == [17, 18, 40, 61]
    assert fast[0]["rows_inserted"] == 96
    assert table_rows(dst, "fast") == table_rows(dst, "general")


def test_a_mariadb_query_with_order_by_takes_the_general_path(mysql_database: Callable[[], str]) -> None:
    src = mysql_database()
    execute(src, MY_SOURCE)
    engine = create_db_engine(src, poolclass=sa.pool.NullPool)
    with Extraction([StepSpec(name="read", project_id=1, sql="SELECT id FROM src ORDER BY id DESC")],
                    {1: engine}) as extraction:
        extraction.open("pg_text")
        assert not extraction.bulk
        assert [r[0] for batch in extraction.batches() for r in batch] == [4, 3, 2, 1]
    engine.dispose()


def test_cancelling_a_bulk_export_stops_the_copy_and_raises_cancelled(pg_database: Callable[[], str]) -> None:
    from shared.errors import Cancelled

    src = pg_database()
    execute(src, "CREATE TABLE big AS SELECT g AS id, repeat('x', 200) AS t FROM generate_series(1, 200000) g")
    _cancel_after_the_first_chunk(src, Cancelled)


def test_cancelling_a_mariadb_bulk_export_read_ahead_raises_cancelled(mysql_database: Callable[[], str]) -> None:
    from shared.errors import Cancelled

    src = mysql_database()
    execute(src, ["CREATE TABLE big (id INT PRIMARY KEY, t VARCHAR(300))",
                  "INSERT INTO big SELECT seq, REPEAT('x', 200) FROM seq_1_to_200000"])
    _cancel_after_the_first_chunk(src, Cancelled)


def _cancel_after_the_first_chunk(src: str, cancelled: type[Exception]) -> None:
    """Read the first 1,000-row bulk chunk of ``big``, cancel, and expect the rest to raise ``cancelled``."""
    engine = create_db_engine(src, poolclass=sa.pool.NullPool)
    with Extraction([StepSpec(name="read", project_id=1, sql="SELECT * FROM big")], {1: engine},
                    batch_rows=1000) as extraction:
        extraction.open("pg_text")
        assert extraction.bulk
        chunks = extraction.bulk_batches(1 << 20)
        payload, rows = next(chunks)
        assert rows == 1000 and payload.count(b"\n") == 1000
        extraction.cancel()
        with pytest.raises(cancelled):
            for _ in chunks:
                pass
    engine.dispose()


def test_closing_an_extraction_with_a_suspended_bulk_export_stops_its_helper_thread(
        pg_database: Callable[[], str]) -> None:
    import threading

    src = pg_database()
    execute(src, "CREATE TABLE big AS SELECT g AS id, repeat('x', 200) AS t FROM generate_series(1, 200000) g")
    engine = create_db_engine(src, poolclass=sa.pool.NullPool)
    extraction = Extraction([StepSpec(name="read", project_id=1, sql="SELECT * FROM big")], {1: engine},
                            batch_rows=1000)
    extraction.open("pg_text")
    chunks = extraction.bulk_batches(1 << 20)
    next(chunks)  # e.g. publishing this chunk failed: the generator stays suspended (held by a traceback)
    extraction.close()
    # Then: the COPY's helper thread is gone before the connection was given up
    assert not [t for t in threading.enumerate() if t.name == "copy-out" and t.is_alive()]
    del chunks
    engine.dispose()
