"""Where a PostgreSQL keyed load spends its time: LoadSession alone, COPY-text batches (write_bulk,
as PG->PG runs at the defaults), the bench's shape (a destination of N rows; 10% of the source keys
new, half of the rest changed, 10% extra destination keys), per dialect call: wall seconds and the
server backend's CPU seconds (``cpu_*``, read from /proc, so the server must run on this machine;
CPU time is far less sensitive to a busy machine than wall time).

Not a test. Usage: ``ROWS=1000000 PDB=dm_bench_me python -m bench.keyed_profile [modes]`` (modes: a
comma list, default truncate_load,upsert,sync_delete; creates database PDB and drops it at the end).
"""
from __future__ import annotations

import collections
import io
import os
import sys
import time
from typing import Any

import sqlalchemy as sa

from bench.data import COLUMNS, PG_DDL, PG_ROWS, _connect
from shared.connections import create_db_engine
from shared.jobspec import Mode
from shared.load import LoadSession
from shared.types import Column

ROWS = int(os.environ.get("ROWS", "300000"))
BATCH = 10_000
DB = os.environ.get("PDB", "dm_bench_keyed_profile")
ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
URL = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{DB}"
SOURCE = [Column("id", "bigint"), Column("qty", "int"), Column("big", "bigint"),
          Column("price", "decimal", precision=18, scale=4), Column("ratio", "float"), Column("active", "bool"),
          Column("name", "text", length=60), Column("note", "text"), Column("day", "date"),
          Column("at", "timestamptz")]
TIMED = ["clear_destination", "clear_staging", "bulk_import", "check_keys", "claim_keys", "record_seen", "upsert",
         "delete_unseen"]


def setup() -> tuple[sa.Engine, list[tuple[bytes, int]]]:
    """The database, its source table, and the source as COPY-text batches."""
    with sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {DB}")
    engine = sa.create_engine(URL, isolation_level="AUTOCOMMIT")
    with _connect(engine) as conn:
        conn.exec_driver_sql(f"CREATE TABLE bench_src {PG_DDL}")
        conn.exec_driver_sql(f"INSERT INTO bench_src {PG_ROWS.format(lo=1, hi=ROWS)}")
    raw = engine.raw_connection()
    cursor, buffer = raw.cursor(), io.BytesIO()
    cursor.execute("SET TimeZone = 'UTC'")
    cursor.copy_expert(f"COPY (SELECT {', '.join(COLUMNS)} FROM bench_src ORDER BY id) TO STDOUT", buffer)
    raw.close()
    lines = buffer.getvalue().split(b"\n")[:-1]
    return engine, [(b"\n".join(lines[i:i + BATCH]) + b"\n", len(lines[i:i + BATCH]))
                    for i in range(0, len(lines), BATCH)]


def reset(engine: sa.Engine) -> None:
    """The destination as bench/data.py's pg_existing builds it."""
    missing = ROWS // 10
    changed = ", ".join("CASE WHEN id % 2 = 0 THEN 'changed' ELSE note END" if c == "note" else c for c in COLUMNS)
    with _connect(engine) as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS dest")
        conn.exec_driver_sql(f"CREATE TABLE dest {PG_DDL}")
        conn.exec_driver_sql(f"INSERT INTO dest ({', '.join(COLUMNS)}) SELECT {changed} FROM bench_src "
                             f"WHERE id > {missing}")
        conn.exec_driver_sql(f"INSERT INTO dest {PG_ROWS.format(lo=ROWS + 1, hi=ROWS + missing)}")
        conn.exec_driver_sql("VACUUM ANALYZE dest")
        conn.exec_driver_sql("CHECKPOINT")


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process on this machine."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(engine: sa.Engine, mode: Mode, payloads: list[tuple[bytes, int]]) -> tuple[float, dict, dict]:
    timers: collections.Counter = collections.Counter()
    pid: list[int] = []
    session = LoadSession(engine, table="dest", columns=SOURCE, mode=mode)
    for name in TIMED:
        call = getattr(session.dialect, name, None)
        if call is None:
            continue

        def timed(*args: Any, _call: Any = call, _name: str = name, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), cpu_of(pid[0]) if pid else 0.0
            try:
                return _call(*args, **kwargs)
            finally:
                timers[_name] += time.perf_counter() - wall
                if pid:
                    timers["cpu_" + _name] += cpu_of(pid[0]) - cpu
        setattr(session.dialect, name, timed)
    began = time.perf_counter()
    session.begin()
    pid.append(session._conn.exec_driver_sql("SELECT pg_backend_pid()").scalar())  # type: ignore[union-attr]
    cpu = cpu_of(pid[0])
    for payload, rows in payloads:
        if session.write_bulk(payload, rows, "pg_text"):
            raise RuntimeError("a row failed")
    timers["server_cpu_batches"], cpu, finishing = cpu_of(pid[0]) - cpu, cpu_of(pid[0]), time.perf_counter()
    counts = session.finish()
    timers["finish"], timers["server_cpu_finish"] = time.perf_counter() - finishing, cpu_of(pid[0]) - cpu
    session.commit()
    session.close()
    return time.perf_counter() - began, counts.to_dict(), dict(timers)


def main() -> None:
    source, payloads = setup()
    engine = create_db_engine(sa.engine.make_url(URL))
    try:
        for mode in (sys.argv[1] if len(sys.argv) > 1 else "truncate_load,upsert,sync_delete").split(","):
            reset(source)
            seconds, counts, timers = run(engine, Mode(mode), payloads)
            print(f"{mode:14} {seconds:6.2f} s  " + " ".join(f"{k}={v:.2f}" for k, v in sorted(timers.items())),
                  counts, flush=True)
    finally:
        source.dispose()
        engine.dispose()
        with sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
