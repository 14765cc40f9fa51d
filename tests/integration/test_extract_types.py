"""Values and types survive a move between engines through temporary tables."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

from shared.connections import create_db_engine
from shared.errors import SourceError
from shared.extract import Extraction
from shared.jobspec import StepSpec

pytestmark = pytest.mark.integration

PG_VALUES = """SELECT 1::int AS i, 9000000000::bigint AS big, 1.25::numeric(10,2) AS dec, 0.5::float8 AS f,
  'héllo "q"' AS txt, '' AS empty, NULL::text AS nothing, true AS flag, '2024-02-29'::date AS d,
  '13:14:15.5'::time AS tm, '2024-02-29 10:00:00'::timestamp AS ts,
  '2024-02-29 10:00:00+02'::timestamptz AS tstz, '00000000-0000-0000-0000-000000000001'::uuid AS uid,
  '{"a": [1, 2]}'::jsonb AS doc, '\\x00ff'::bytea AS raw, '1 day 02:00:03'::interval AS span,
  ARRAY[1, 2] AS arr"""


def extract(steps: list[StepSpec], engines: dict[int, sa.Engine]) -> tuple[list, list[tuple]]:
    with Extraction(steps, engines) as ext:
        cols = ext.open()
        return cols, [r for b in ext.batches() for r in b]


def test_postgresql_values_and_their_portable_types(pg_url) -> None:
    pg = create_db_engine(pg_url)
    cols, rows = extract([StepSpec(name="v", project_id=1, sql=PG_VALUES)], {1: pg})
    assert [c.type for c in cols] == ["int", "bigint", "decimal", "float", "text", "text", "text", "bool", "date",
                                      "time", "timestamp", "timestamptz", "uuid", "json", "bytes", "interval",
                                      "unknown"]
    assert rows[0][13] == '{"a": [1, 2]}' and rows[0][14] == b"\x00\xff" and rows[0][16] == "{1,2}"
    assert rows[0][12] == uuid.UUID(int=1) and rows[0][15] == dt.timedelta(days=1, seconds=7203)
    pg.dispose()


def test_postgresql_result_moves_into_mariadb_and_back(pg_url, mysql_url) -> None:
    pg, my = create_db_engine(pg_url), create_db_engine(mysql_url)
    steps = [StepSpec(name="pg", project_id=1, sql=PG_VALUES),
             StepSpec(name="my", project_id=2, sql="SELECT i, big, `dec`, f, txt, empty, nothing, flag, d, tm, ts, tstz, uid, doc, raw "
                                                "FROM @result1"),  # a MySQL TIME over 24 h cannot go back to a PG time
             StepSpec(name="back", project_id=1, sql="SELECT i, big, \"dec\", f, txt, empty, nothing, uid, doc FROM @result2")]
    _, rows = extract(steps[:2], {1: pg, 2: my})
    r = rows[0]
    assert r[:7] == (1, 9000000000, Decimal("1.25"), 0.5, 'héllo "q"', "", None)
    assert r[7] == 1  # MySQL BOOLEAN is TINYINT(1): stays an int
    assert r[8:12] == (dt.date(2024, 2, 29), dt.time(13, 14, 15, 500000), dt.datetime(2024, 2, 29, 10),
                       dt.datetime(2024, 2, 29, 8))  # aware timestamps become naive UTC in MySQL
    assert r[12] == str(uuid.UUID(int=1)) and r[14] == b"\x00\xff"
    _, rows = extract(steps, {1: pg, 2: my})
    assert rows[0] == (1, 9000000000, Decimal("1.25"), 0.5, 'héllo "q"', "", None, str(uuid.UUID(int=1)), '{"a": [1, 2]}')
    pg.dispose()
    my.dispose()


def test_sqlite_steps_join_a_postgresql_result_and_stay_read_only(pg_url, sqlite_url) -> None:
    pg, lite = create_db_engine(pg_url), create_db_engine(sqlite_url)
    with lite.begin() as c:
        c.exec_driver_sql("CREATE TABLE scores (user_id INTEGER, score REAL)")
        c.exec_driver_sql("INSERT INTO scores VALUES (1, 0.5), (2, 1.5)")
    steps = [StepSpec(name="users", project_id=1, sql="SELECT g AS user_id, 'u' || g AS name FROM generate_series(1, 3) g"),
             StepSpec(name="scored", project_id=2, sql="SELECT u.user_id, u.name, s.score FROM @result1 u "
                                                        "LEFT JOIN scores s ON s.user_id = u.user_id ORDER BY 1")]
    cols, rows = extract(steps, {1: pg, 2: lite})
    assert rows == [(1, "u1", 0.5), (2, "u2", 1.5), (3, "u3", None)]
    assert [c.type for c in cols] == ["bigint", "text", "float"]
    with pytest.raises(SourceError, match="read-only"):
        extract([StepSpec(name="w", project_id=2, sql="WITH x AS (SELECT 1) INSERT INTO scores SELECT 9, 9 FROM x")],
                {2: lite})
    with lite.connect() as c:  # the pooled connection is writable again and holds no temp tables
        assert c.exec_driver_sql("SELECT count(*) FROM scores").scalar() == 2
        assert c.exec_driver_sql("SELECT count(*) FROM sqlite_temp_master").scalar() == 0
        c.exec_driver_sql("INSERT INTO scores VALUES (3, 3.0)")
    pg.dispose()
    lite.dispose()
