"""Row isolation at scale: N rows of which 60 % are bad, interleaved (never 100 in a row).

``make bench BENCH_ARGS="--bad-rows"`` (``--rows`` sets N, default 100,000 here). For each
engine (PostgreSQL, MariaDB) and mode, the rows go through LoadSession in 10,000-row batches
into a table whose CHECK constraint refuses the bad rows (``--bad-kind null``: NULL into a
NOT NULL column instead, which fails before reaching the database). Prints the time, the
counts and whether the destination holds exactly the good rows. Not a test: no time limit.
"""
from __future__ import annotations

import time
import uuid

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from shared.connections import create_db_engine
from shared.jobspec import Mode
from shared.load import LoadSession
from shared.types import Column

ADMIN = {"postgresql": "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres",
         "mariadb": "mysql+pymysql://root@127.0.0.1:3306/test"}
COLUMNS = [Column("id", "bigint"), Column("amount", "int"), Column("name", "text")]
DDL = "CREATE TABLE bad (id BIGINT PRIMARY KEY, amount INT CHECK (amount >= 0), name VARCHAR(20) NOT NULL)"
MODES = (Mode.truncate_load, Mode.insert_only, Mode.upsert, Mode.sync_delete)
BATCH = 10_000


def is_bad(i: int) -> bool:
    return i % 5 in (1, 3, 4)  # 60 %, at most 2 in a row


def source(n: int, kind: str) -> list[tuple]:
    if kind == "null":
        return [(i, i, None if is_bad(i) else f"n{i}") for i in range(1, n + 1)]
    return [(i, -1 if is_bad(i) else i, f"n{i}") for i in range(1, n + 1)]


def run(engine: sa.Engine, mode: Mode, rows: list[tuple]) -> tuple[float, dict, bool]:
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS bad")
        conn.exec_driver_sql(DDL)
    began = time.perf_counter()
    session = LoadSession(engine, table="bad", columns=COLUMNS, mode=mode)
    session.begin()
    failed = 0
    try:
        for start in range(0, len(rows), BATCH):
            failed += len(session.write(rows[start:start + BATCH]))
        counts = session.finish().to_dict()
        session.commit()
    finally:
        session.close()
    seconds = time.perf_counter() - began
    with engine.connect() as conn:
        ids = conn.exec_driver_sql("SELECT id FROM bad ORDER BY id").scalars().all()
    exact = ids == [r[0] for r in rows if not is_bad(r[0])] and failed == counts["rows_failed"]
    return seconds, counts, exact


def bench_bad_rows(n: int, *, bad_kind: str = "check", engines: str = "postgresql,mariadb") -> list[dict]:
    """Run every mode on every engine; returns one result dict per run (also printed)."""
    rows, results = source(n, bad_kind), []
    for kind in engines.split(","):
        admin = sa.create_engine(ADMIN[kind], isolation_level="AUTOCOMMIT")
        name = f"dm_bench_{uuid.uuid4().hex[:8]}"
        quote = '"' if kind == "postgresql" else "`"
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {quote}{name}{quote}")
        engine = create_db_engine(make_url(ADMIN[kind]).set(database=name))
        try:
            for mode in MODES:
                seconds, counts, exact = run(engine, mode, rows)
                results.append({"engine": kind, "mode": mode.value, "rows": n, "bad": bad_kind, "seconds": seconds,
                                "exact": exact, **counts})
                print(f"{kind:10} {mode.value:13} {n:>8} rows, 60% bad ({bad_kind}): {seconds:6.1f} s "
                      f"{n / seconds:>7.0f} rows/s  inserted {counts['rows_inserted']} failed {counts['rows_failed']} "
                      f"destination {'= good rows' if exact else 'WRONG'}", flush=True)
        finally:
            engine.dispose()
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE {quote}{name}{quote}"
                                     + (" WITH (FORCE)" if kind == "postgresql" else ""))
            admin.dispose()
    return results
