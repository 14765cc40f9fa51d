"""Peak memory of the transformation step on a large PostgreSQL result (README: Transformation step).

    .venv/bin/python -m bench.transform_memory [ROWS]      # default 2,000,000

Creates a scratch database ``dm_f17_transform_bench_<random>`` on DM_TEST_PG_URL's server with a
table of ROWS rows (id, email, amount numeric(12,2), created timestamptz), then, each in its
own process so that peak RSS (ru_maxrss) is that run's alone, reads the whole result:
``plain`` (no transform), ``stream`` (a projection and filter over the last step: streamed
through DuckDB) and ``aggregate`` (GROUP BY over a materialised result: spills under
DM_TRANSFORM_MEMORY_LIMIT). Prints rows and peak RSS per run; drops the database.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import uuid

import sqlalchemy as sa

PG_URL = os.environ.get("DM_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
CASES = {
    "plain": None,
    "stream": "SELECT id, lower(email) AS email, amount * 2 AS doubled FROM @result1 WHERE id % 10 <> 0",
    "aggregate": "SELECT count(*) AS n, sum(c) AS c FROM (SELECT email, count(*) AS c FROM @result1 GROUP BY email) g "
                 "JOIN (SELECT DISTINCT id % 1 AS k FROM @result1) k ON true",
}


def measure(url: str, case: str) -> dict:
    from shared.extract import Extraction
    from shared.jobspec import StepSpec
    from shared.transform import Transformation

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    steps = [StepSpec(name="big", project_id=1, sql="SELECT id, email, amount, created FROM big")]
    transform = CASES[case]
    run = Transformation(steps, transform, {1: engine}) if transform else Extraction(steps, {1: engine})
    started, rows = time.monotonic(), 0
    with run:
        run.open()
        for batch in run.batches():
            rows += len(batch)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"case": case, "rows_out": rows, "peak_rss_mb": round(peak_mb), "seconds": round(time.monotonic() - started, 1)}


def main(rows: int) -> None:
    name = f"dm_f17_transform_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        data = sa.create_engine(url)
        with data.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE big AS SELECT g AS id, 'User' || g || '@Example.com' AS email, "
                                 "(g %% 100000)::numeric(12,2) / 100 AS amount, "
                                 "timestamptz '2024-01-01 00:00+00' + g * interval '1 second' AS created "
                                 f"FROM generate_series(1, {rows}) g")
        data.dispose()
        for case in CASES:
            out = subprocess.run([sys.executable, "-m", "bench.transform_memory", "--one", url, case],
                                 capture_output=True, text=True)
            if out.returncode:
                print(case, "failed:", out.stderr.strip().splitlines()[-3:])
                continue
            print(out.stdout.strip().splitlines()[-1])
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        print(json.dumps(measure(sys.argv[2], sys.argv[3])))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000)
