"""Checksum verification over awkward values, on the fast (bulk text) and the general path.

Given the sources of the fast-path equivalence test (NULL in every column, text with control
characters, emoji, big numerics, NaN, -0.0, bytea with zero bytes, time zones, JSON), when the
same query is loaded once with ``verify: checksum`` (plain inserts then go through staging) and
once with ``verify: none``, then the checksum passes (no false mismatch on any type) and both
tables hold exactly the same rows and counts.
"""
from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from shared.connections import create_db_engine
from shared.dialects import get_dialect
from shared.extract import Extraction
from shared.jobspec import Mode, StepSpec
from shared.load import LoadSession
from tests.integration.test_fastpath_equivalence import (MY_SOURCE, MY_TO_PG_DEST, PG_DEST, PG_SOURCE, PG_TO_MY_DEST,
                                                         PG_TO_MY_SQL, execute, table_rows)

pytestmark = pytest.mark.integration


def migrate(src_url: str, sql: str, dst_url: str, table: str, mode: Mode, *, bulk: bool, verify: str) -> tuple:
    """Extraction → LoadSession as the services run them; returns (counts, failed positions, verification)."""
    src = create_db_engine(src_url, poolclass=sa.pool.NullPool)
    dst = create_db_engine(dst_url, poolclass=sa.pool.NullPool)
    fmt = get_dialect(dst.dialect.name).bulk_import_format if bulk else None
    failed: list = []
    try:
        with Extraction([StepSpec(name="read", project_id=1, sql=sql)], {1: src}, batch_rows=2) as extraction:
            columns = extraction.open(fmt)
            session = LoadSession(dst, table=table, columns=columns, mode=mode, verify=verify)
            session.begin()
            try:
                if extraction.bulk:
                    for payload, count in extraction.bulk_batches(300):
                        failed += session.write_bulk(payload, count, fmt)
                else:
                    for rows in extraction.batches():
                        failed += session.write(rows)
                counts = session.finish(extracted=extraction.rows_read).to_dict()
                session.commit()
            finally:
                session.close()
    finally:
        src.dispose()
        dst.dispose()
    return counts, [f.position for f in failed], session.verification


def both_ways(src: str, sql: str, dst: str, create: str, mode: Mode, *, bulk: bool) -> dict:
    for table in ("checked", "unchecked"):
        execute(dst, f"CREATE TABLE {table} {create}")
    checked = migrate(src, sql, dst, "checked", mode, bulk=bulk, verify="checksum")
    unchecked = migrate(src, sql, dst, "unchecked", mode, bulk=bulk, verify="none")
    assert checked[:2] == unchecked[:2]
    assert table_rows(dst, "checked") == table_rows(dst, "unchecked")
    assert unchecked[2]["outcome"] == "skipped"
    return checked[2]


@pytest.mark.parametrize("bulk", [True, False], ids=["fast", "general"])
@pytest.mark.parametrize("mode", [Mode.truncate_load, Mode.upsert, Mode.insert_only], ids=lambda m: m.value)
def test_postgresql_to_postgresql_checksum_passes_on_every_type(
        pg_database: Callable[[], str], mode: Mode, bulk: bool) -> None:
    src, dst = pg_database(), pg_database()
    execute(src, PG_SOURCE)
    result = both_ways(src, "SELECT * FROM src", dst, PG_DEST, mode, bulk=bulk)
    assert result["outcome"] == "passed" and result["rows_hashed"] == 4


@pytest.mark.parametrize("bulk", [True, False], ids=["fast", "general"])
def test_postgresql_to_mariadb_checksum_passes_on_every_type(
        pg_database: Callable[[], str], mysql_database: Callable[[], str], bulk: bool) -> None:
    src, dst = pg_database(), mysql_database()
    execute(src, PG_SOURCE.replace("'NaN'", "1.5"))  # MariaDB refuses NaN (a failed row, tested elsewhere)
    result = both_ways(src, PG_TO_MY_SQL, dst, PG_TO_MY_DEST, Mode.truncate_load, bulk=bulk)
    assert result["outcome"] == "passed" and result["rows_hashed"] == 4


@pytest.mark.parametrize("bulk", [True, False], ids=["fast", "general"])
def test_mariadb_to_postgresql_checksum_passes_on_every_type(
        pg_database: Callable[[], str], mysql_database: Callable[[], str], bulk: bool) -> None:
    src, dst = mysql_database(), pg_database()
    execute(src, MY_SOURCE)
    result = both_ways(src, "SELECT * FROM src", dst, MY_TO_PG_DEST, Mode.upsert, bulk=bulk)
    assert result["outcome"] == "passed" and result["rows_hashed"] == 4


def test_postgresql_to_sqlite_checksum_passes_on_every_type(pg_database: Callable[[], str], tmp_path) -> None:
    src, dst = pg_database(), f"sqlite:///{tmp_path / 'dst.db'}"
    execute(src, PG_SOURCE)
    create = ("(id bigint PRIMARY KEY, i int, n numeric(38,10), f float, r real, b boolean, t text, v varchar(40), "
              "by blob, d date, tm time, ts timestamp, tstz datetime, u text, j text)")
    result = both_ways(src, "SELECT * FROM src", dst, create, Mode.truncate_load, bulk=False)
    # rows 1 and 4 fail (a 38-digit decimal into SQLite NUMERIC, NaN): not expected, no false mismatch
    assert result["outcome"] == "passed" and result["rows_failed"] == 2 and result["rows_hashed"] == 2
