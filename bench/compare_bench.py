"""``python -m bench.compare_bench --rows N``: compare of equal tables vs. a plain count and full scan.

Builds the same N rows (7 mixed columns) in a fresh PostgreSQL and a fresh MariaDB database,
then times (a) ``SELECT count(*)`` plus a full scan read to the client on both sides, one
after the other, and (b) ``compare_job`` PostgreSQL → MariaDB. Prints both and their ratio;
drops the databases. A measurement, not a test.
"""
from __future__ import annotations

import argparse
import time
import uuid

import sqlalchemy as sa

from shared.compare import compare_job
from shared.jobspec import DestinationSpec, StepSpec

PG = "postgresql+psycopg2://postgres@127.0.0.1:5432/"
MY = "mysql+pymysql://root@127.0.0.1:3306/"
COLS = "id, qty, price, name, note, at, flag"


def _build(rows: int, name: str) -> tuple[sa.Engine, sa.Engine]:
    for admin, sql in ((PG + "postgres", f'CREATE DATABASE "{name}"'),
                       (MY + "mysql", f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")):
        engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(sql)
        engine.dispose()
    pg, my = sa.create_engine(PG + name), sa.create_engine(MY + name)
    with pg.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id bigint PRIMARY KEY, qty int, price numeric(12,2), name varchar(40),"
                             " note text, at timestamp(6), flag boolean)")
        conn.exec_driver_sql(f"INSERT INTO t SELECT g, g %% 1000, (g %% 100000) / 100.0, 'name ' || g,"
                             f" CASE WHEN g %% 7 = 0 THEN NULL ELSE repeat('x', (g %% 50)::int) END,"
                             f" timestamp '2024-01-01' + g * interval '1.000001 second', g %% 2 = 0"
                             f" FROM generate_series(1, {rows}) g")
    with my.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id BIGINT PRIMARY KEY, qty INT, price DECIMAL(12,2), name VARCHAR(40),"
                             " note TEXT, at DATETIME(6), flag TINYINT(1))")
        conn.exec_driver_sql(f"INSERT INTO t SELECT seq, seq %% 1000, (seq %% 100000) / 100.0, CONCAT('name ', seq),"
                             f" IF(seq %% 7 = 0, NULL, REPEAT('x', seq %% 50)),"
                             f" TIMESTAMP'2024-01-01 00:00:00' + INTERVAL seq * 1000001 MICROSECOND, seq %% 2 = 0"
                             f" FROM seq_1_to_{rows}")
    return pg, my


def _scan(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one()
        for _ in conn.execution_options(stream_results=True, yield_per=10_000).exec_driver_sql(f"SELECT {COLS} FROM t"):
            pass


def measure(rows: int) -> tuple[float, dict]:
    """(seconds of count(*) + full scan on both sides, the compare report) for ``rows`` equal rows."""
    name = f"bench_cmp_{uuid.uuid4().hex[:8]}"
    pg = my = None
    try:
        pg, my = _build(rows, name)
        started = time.monotonic()
        _scan(pg)
        _scan(my)
        baseline = time.monotonic() - started
        steps = [StepSpec(name="t", project_id=1, sql=f"SELECT {COLS} FROM t")]
        return baseline, compare_job(steps, DestinationSpec(project_id=2, table="t"), {1: pg, 2: my})
    finally:
        for engine in (pg, my):
            if engine is not None:
                engine.dispose()
        for admin, sql in ((PG + "postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'),
                           (MY + "mysql", f"DROP DATABASE IF EXISTS `{name}`")):
            engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.exec_driver_sql(sql)
            engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    rows = parser.parse_args().rows
    baseline, report = measure(rows)
    assert report["equal"], report
    print(f"rows {rows:,}: count(*) + full scan, both sides {baseline:.2f} s; compare {report['seconds']:.2f} s;"
          f" ratio {report['seconds'] / baseline:.2f}")


if __name__ == "__main__":
    main()
