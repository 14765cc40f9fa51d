"""PostgreSQL → PostgreSQL in binary COPY form (shared.dialects.pgbinary) writes what the general path writes.

Given a source with awkward values in every type the binary path carries (numeric with scale
and NaN, ±Infinity floats, dates and timestamps, BC dates, 24:00:00, intervals with months,
timetz, bytea with zero bytes, UTF-8, empty strings and NULL, json with its spacing, jsonb,
uuid, inet, cidr, macaddr), when the same query is migrated through the binary path, the
bulk-text path and the general path, then the destination tables hold the same rows and the
counts agree; a refused binary batch is decoded into exactly the rows the general path reads
and gives the same failed rows and the same 100-consecutive stop; and a column whose type is
not exactly the destination's never takes the binary path.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

import shared.load.session as load_session
from shared.connections import create_db_engine
from shared.dialects import pgbinary
from shared.dialects.postgresql_destination import PostgresDestination
from shared.errors import TooManyFailures
from shared.extract import Extraction
from shared.jobspec import Mode, StepSpec
from shared.load import LoadSession
from tests.integration.test_fastpath_equivalence import execute, source_in_kolkata

pytestmark = pytest.mark.integration

COLUMNS = ("id bigint PRIMARY KEY, s smallint, i int, n numeric(20,6), nu numeric, f8 float8, f4 real, b boolean, "
           "t text, v varchar(40), c char(5), by bytea, d date, tm time, ttz timetz, ts timestamp, "
           "tstz timestamptz, iv interval, u uuid, j json, jb jsonb, ip inet, cd cidr, mac macaddr")
SOURCE = f"""
CREATE TABLE src ({COLUMNS});
INSERT INTO src VALUES
 (1, 32767, -2147483648, 12345678901234.123456, 'NaN', 'Infinity', '-Infinity', true,
  E'tab\\there nl\\nthere bs\\\\ "dq" ''sq'' emoji 😀 𝄞 ünïcödé', '', 'ab', '\\x00ff0000'::bytea,
  '0044-03-15 BC', '24:00:00', '24:00:00+02', 'infinity', '-infinity',
  '1 year 2 mons -3 days 04:05:06.789', '12345678-1234-5678-1234-567812345678',
  '{{"a" :  [1, null],   "q": "\\\\\\"x"}}', '{{"b": 2, "a": "😀"}}', '2001:db8::1/64', '10.0.0.0/8',
  '08:00:2b:01:02:03'),
 (2, -32768, 0, -0.000001, 1e-30, 'NaN', 'NaN', false, '\\N', 'NULL', '', '\\x'::bytea, 'infinity',
  '00:00', '00:00-05:30', '0001-01-01 00:00:00 BC', '2024-03-31 01:30:15.123456+05:30', '-178000000 years',
  '00000000-0000-0000-0000-000000000000', 'null', '[]', '127.0.0.1', '192.168.0.0/16', 'ff:ff:ff:ff:ff:ff'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL),
 (4, 1, 2, 99999999999999.999999, 123456789012345678901234567890.123456789, 0.1, 0.1, true, 'x', 'y', 'zzzzz',
  '\\x5c6e'::bytea, '2000-02-29', '23:59:59.999999', '12:00:00.5+14', '2024-02-29 12:34:56.789012',
  '1900-06-01 12:00:00-03', '-1 days +23:00:00', gen_random_uuid(), '"s"', '{{"k": {{"n": 1.50}}}}', '::',
  '::/0', '00:00:00:00:00:00');
"""


def migrate(src_url: str, sql: str, dst_url: str, table: str, mode: Mode, *, path: str, chunk_bytes: int = 300,
            batch_rows: int = 2) -> dict:
    """Extraction → LoadSession as the services run them, through ``path``: binary | text | general."""
    src = create_db_engine(src_url, poolclass=sa.pool.NullPool)
    dst = create_db_engine(dst_url, poolclass=sa.pool.NullPool)
    result: dict = {"failed": []}
    try:
        into = None
        if path == "binary":
            with dst.connect() as conn:
                into = pgbinary.by_lower_name(pgbinary.table_types(conn.connection.dbapi_connection, table))
        with Extraction([StepSpec(name="read", project_id=1, sql=sql)], {1: src}, batch_rows=batch_rows) as extraction:
            columns = extraction.open(None if path == "general" else "pg_text", into)
            result["format"] = fmt = extraction.bulk_format
            session = LoadSession(dst, table=table, columns=columns, mode=mode)
            session.begin()
            try:
                try:
                    if fmt:
                        for payload, count in extraction.bulk_batches(chunk_bytes):
                            result["failed"] += session.write_bulk(payload, count, fmt)
                    else:
                        for rows in extraction.batches():
                            result["failed"] += session.write(rows)
                except TooManyFailures as exc:
                    result["stopped"] = exc.consecutive
                    result["failed"] += exc.failed_rows  # type: ignore[attr-defined]
                    return result
                result["counts"] = session.finish().to_dict()
                session.commit()
            finally:
                session.close()
    finally:
        src.dispose()
        dst.dispose()
    result["failed"] = [(f.position, f.error.replace(f'"{table}"', '"T"').replace(f'"{table}_', '"T_'))
                        for f in result["failed"]]
    return result


def table_text(url: str, table: str) -> list[str]:
    """Each row as PostgreSQL's own text of it (every value exactly, whatever Python could hold)."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        conn.exec_driver_sql("SET extra_float_digits = 3; SET TimeZone = 'UTC'")
        rows = conn.exec_driver_sql(f"SELECT x::text FROM {table} x ORDER BY id").scalars().all()
    engine.dispose()
    return list(rows)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[list[tuple]]:
    """The binary batches decoded back into rows (the fallback), as decoded."""
    calls: list[list[tuple]] = []
    real = PostgresDestination.decode_bulk

    def spy(self: PostgresDestination, conn: sa.Connection, payload: bytes, fmt: str, rows: int) -> list[tuple]:
        calls.append(real(self, conn, payload, fmt, rows))
        return calls[-1]

    monkeypatch.setattr(PostgresDestination, "decode_bulk", spy)
    return calls


@pytest.fixture
def pg_source(pg_database: Callable[[], str]) -> str:
    return source_in_kolkata(pg_database, SOURCE)


def test_binary_text_and_general_paths_write_the_same_rows(pg_source: str, pg_database: Callable[[], str],
                                                            decodes: list) -> None:
    dst = pg_database()
    execute(dst, [f"CREATE TABLE {t} ({COLUMNS})" for t in ("bin", "txt", "gen")])
    binary = migrate(pg_source, "SELECT * FROM src", dst, "bin", Mode.truncate_load, path="binary")
    assert binary["format"].startswith(pgbinary.PREFIX)
    assert not decodes  # clean data never left the binary path
    text = migrate(pg_source, "SELECT * FROM src", dst, "txt", Mode.truncate_load, path="text")
    general = migrate(pg_source, "SELECT * FROM src", dst, "gen", Mode.truncate_load, path="general")
    assert text["format"] == "pg_text" and general["format"] is None
    assert binary["counts"] == general["counts"] and binary["failed"] == general["failed"] == []
    assert table_text(dst, "bin") == table_text(dst, "gen") == table_text(dst, "txt")
    assert len(table_text(dst, "bin")) == 4


def _same(value: object) -> object:
    """A value as the general path's rows compare: type and exact content (NaN equal to NaN)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return "aware", value.astimezone(timezone.utc)
    return type(value).__name__, repr(value) if isinstance(value, float) else str(value)


def test_a_decoded_binary_batch_is_exactly_what_the_general_path_reads(pg_source: str, pg_database: Callable[[], str],
                                                                       decodes: list) -> None:
    dst = pg_database()
    # every row fails the CHECK: each binary batch is refused and decoded back into rows
    execute(dst, [f"CREATE TABLE bin ({COLUMNS}, CHECK (id < 0))", f"CREATE TABLE gen ({COLUMNS}, CHECK (id < 0))"])
    binary = migrate(pg_source, "SELECT * FROM src ORDER BY id", dst, "bin", Mode.truncate_load, path="binary")
    general = migrate(pg_source, "SELECT * FROM src ORDER BY id", dst, "gen", Mode.truncate_load, path="general")
    assert binary["format"].startswith(pgbinary.PREFIX) and decodes
    assert binary["failed"] == general["failed"] and [p for p, _ in binary["failed"]] == [1, 2, 3, 4]
    src = create_db_engine(pg_source, poolclass=sa.pool.NullPool)
    with Extraction([StepSpec(name="read", project_id=1, sql="SELECT * FROM src ORDER BY id")], {1: src}) as ex:
        ex.open()
        read = [row for batch in ex.batches() for row in batch]
    src.dispose()
    decoded = [row for batch in decodes for row in batch]
    assert [[_same(v) for v in r] for r in decoded] == [[_same(v) for v in r] for r in read]


def test_refused_binary_batches_fail_the_same_rows_as_the_general_path(pg_database: Callable[[], str],
                                                                         decodes: list) -> None:
    src, dst = pg_database(), pg_database()
    execute(src, "CREATE TABLE src AS SELECT g AS id, CASE WHEN g IN (17, 18, 61) THEN NULL ELSE 'v' || g END AS t, "
                 "CASE WHEN g = 40 THEN -1 ELSE g END AS q FROM generate_series(1, 100) g")
    for table in ("bin", "gen"):
        execute(dst, f"CREATE TABLE {table} (id int PRIMARY KEY, t text NOT NULL, q int CHECK (q >= 0))")
    binary = migrate(src, "SELECT * FROM src", dst, "bin", Mode.truncate_load, path="binary", chunk_bytes=200,
                     batch_rows=50)
    general = migrate(src, "SELECT * FROM src", dst, "gen", Mode.truncate_load, path="general")
    assert binary["format"].startswith(pgbinary.PREFIX) and decodes
    assert binary["counts"] == general["counts"] and binary["counts"]["rows_inserted"] == 96
    assert binary["failed"] == general["failed"] and [p for p, _ in binary["failed"]] == [17, 18, 40, 61]
    assert table_text(dst, "bin") == table_text(dst, "gen")


@pytest.mark.parametrize("path", ["binary", "text"])
@pytest.mark.parametrize("mode", [Mode.insert_only, Mode.upsert, Mode.sync_delete])
def test_keyed_modes_and_duplicate_keys_give_the_same_answer_on_both_paths(
        mode: Mode, path: str, pg_source: str, pg_database: Callable[[], str]) -> None:
    dst = pg_database()
    for table in ("bin", "gen"):
        execute(dst, [f"CREATE TABLE {table} ({COLUMNS})",
                      f"INSERT INTO {table} (id, t) VALUES (2, 'old'), (3, NULL), (99, 'gone')"])
    sql = "SELECT * FROM src UNION ALL SELECT * FROM src WHERE id = 4"  # key 4 twice
    binary = migrate(pg_source, sql, dst, "bin", mode, path=path, chunk_bytes=1 << 20)  # batches as the general's
    general = migrate(pg_source, sql, dst, "gen", mode, path="general")
    assert binary["format"].startswith(pgbinary.PREFIX if path == "binary" else "pg_text")
    assert {k: v for k, v in binary.items() if k != "format"} == {k: v for k, v in general.items() if k != "format"}
    assert table_text(dst, "bin") == table_text(dst, "gen")


def test_the_100_consecutive_stop_is_the_same_on_both_paths(pg_database: Callable[[], str]) -> None:
    src, dst = pg_database(), pg_database()
    execute(src, "CREATE TABLE src AS SELECT g AS id, CASE WHEN g > 50 THEN NULL ELSE 'v' END AS t "
                 "FROM generate_series(1, 300) g")
    for table in ("bin", "gen"):
        execute(dst, f"CREATE TABLE {table} (id int PRIMARY KEY, t text NOT NULL)")
    binary = migrate(src, "SELECT * FROM src", dst, "bin", Mode.truncate_load, path="binary", chunk_bytes=1 << 20,
                     batch_rows=70)
    general = migrate(src, "SELECT * FROM src", dst, "gen", Mode.truncate_load, path="general", batch_rows=70)
    assert binary["format"].startswith(pgbinary.PREFIX)
    assert binary["stopped"] == general["stopped"] == 100
    assert [f.position for f in binary["failed"]] == [f.position for f in general["failed"]]
    assert [f.position for f in binary["failed"]][-1] == 150


@pytest.mark.parametrize("source, dest", [
    ("int4", "int8"), ("numeric(10,2)", "numeric(12,4)"), ("varchar(10)", "varchar(20)"),
    ("varchar(20)", "varchar(10)"),
    ("timestamp", "timestamp(3)"), ("json", "jsonb"), ("text", "varchar"), ("dm_mood", "dm_mood"),
    ("int[]", "int[]"), ("dm_int", "dm_int"), ("int4", "dm_int"),
])
def test_a_type_that_is_not_exactly_the_destinations_takes_the_text_path(
        source: str, dest: str, pg_database: Callable[[], str], decodes: list) -> None:
    db = pg_database()  # one database: even the enum, array and domain types have the same OIDs
    execute(db, ["CREATE TYPE dm_mood AS ENUM ('sad', 'ok')", "CREATE DOMAIN dm_int AS int CHECK (VALUE > 0)",
                 f"CREATE TABLE src (id int, x {source})", f"CREATE TABLE dst (id int, x {dest})",
                 f"CREATE TABLE gen (id int, x {dest})", "INSERT INTO src (id) VALUES (1)"])
    fast = migrate(db, "SELECT * FROM src", db, "dst", Mode.truncate_load, path="binary")
    general = migrate(db, "SELECT * FROM src", db, "gen", Mode.truncate_load, path="general")
    assert not (fast["format"] or "").startswith(pgbinary.PREFIX) and not decodes
    assert fast["counts"] == general["counts"]


def test_the_loader_refuses_a_binary_format_it_cannot_prove(pg_database: Callable[[], str], decodes: list) -> None:
    src, dst = pg_database(), pg_database()
    execute(src, "CREATE TABLE src AS SELECT g::int4 AS id, g::numeric(10,2) AS n FROM generate_series(1, 5) g")
    execute(dst, ["CREATE TABLE dst (id int8, n numeric(10,2))", "CREATE TABLE gen (id int8, n numeric(10,2))"])
    src_engine = create_db_engine(src, poolclass=sa.pool.NullPool)
    # the extractor believed the destination had the source's types; the loader checks for itself
    into = {"id": (23, -1), "n": (1700, (10 << 16 | 2) + 4)}
    with Extraction([StepSpec(name="read", project_id=1, sql="SELECT * FROM src")], {1: src_engine}) as ex:
        columns = ex.open("pg_text", into)
        fmt = ex.bulk_format
        assert fmt == "pg_binary:23.-1,1700.655366"
        session = LoadSession(create_db_engine(dst, poolclass=sa.pool.NullPool), table="dst", columns=columns,
                              mode=Mode.truncate_load)
        session.begin()
        for payload, count in ex.bulk_batches(1 << 20):
            assert session.write_bulk(payload, count, fmt) == []
        session.finish()
        session.commit()
        session.close()
    src_engine.dispose()
    assert decodes  # written the general way, from the decoded rows
    migrate(src, "SELECT * FROM src", dst, "gen", Mode.truncate_load, path="general")
    assert table_text(dst, "dst") == table_text(dst, "gen")


def test_an_empty_result_sends_no_binary_batch(pg_database: Callable[[], str]) -> None:
    db = pg_database()
    execute(db, ["CREATE TABLE src (id int)", "CREATE TABLE dst (id int)"])
    result = migrate(db, "SELECT * FROM src", db, "dst", Mode.truncate_load, path="binary")
    assert result["format"].startswith(pgbinary.PREFIX) and result["counts"]["rows_inserted"] == 0


def test_the_binary_format_is_refused_by_the_general_parser() -> None:
    with pytest.raises(ValueError):
        load_session.parse_bulk(b"", "pg_binary:23.-1", [])
