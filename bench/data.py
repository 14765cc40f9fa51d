"""The benchmark tables: 10 mixed columns, ~250 bytes a row, built inside the servers.

PostgreSQL database ``dm_bench`` holds ``bench_src`` (the source) and the destinations;
MariaDB database ``dm_bench`` holds its ``bench_src`` and destinations. Rows are generated
with ``generate_series`` / the SEQUENCE engine, so building 1M rows takes seconds.
"""
from __future__ import annotations

import os

import sqlalchemy as sa

PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
MY_ADMIN = "mysql+pymysql://root@127.0.0.1:3306/mysql"
DB = os.environ.get("DM_BENCH_DB", "dm_bench")  # a private name per person benchmarking at once
PG_URL = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{DB}"
MY_URL = f"mysql+pymysql://root@127.0.0.1:3306/{DB}"
COLUMNS = ["id", "qty", "big", "price", "ratio", "active", "name", "note", "day", "at"]
PG_DDL = ("(id bigint PRIMARY KEY, qty int, big bigint, price numeric(18,4), ratio double precision, "
          "active boolean, name varchar(60), note text, day date, at timestamptz)")
MY_DDL = ("(id BIGINT PRIMARY KEY, qty INT, big BIGINT, price DECIMAL(18,4), ratio DOUBLE, active BOOLEAN, "
          "name VARCHAR(60), note TEXT, day DATE, at DATETIME(6)) CHARACTER SET utf8mb4")
PG_ROWS = ("SELECT g, g % 1000, g::bigint * 1000003, (g % 100000) / 100.0, g / 7.0, g % 2 = 0, 'name ' || g, "
           "CASE WHEN g % 10 = 0 THEN NULL ELSE repeat('note ' || g || E' tab\\there \"q\" \\\\ ', 5) END, "
           "date '2000-01-01' + (g % 9000), timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' "
           "+ (g % 1000) * interval '1 millisecond' FROM generate_series({lo}, {hi}) g")
MY_ROWS = ("SELECT seq, seq % 1000, seq * 1000003, (seq % 100000) / 100.0, seq / 7e0, seq % 2 = 0, "
           "CONCAT('name ', seq), IF(seq % 10 = 0, NULL, REPEAT(CONCAT('note ', seq, ' tab\\there \"q\" \\\\ '), 5)), "
           "DATE_ADD('2000-01-01', INTERVAL seq % 9000 DAY), "
           "TIMESTAMP('2024-01-01') + INTERVAL seq SECOND + INTERVAL (seq % 1000) * 1000 MICROSECOND "
           "FROM seq_{lo}_to_{hi}")


def pg() -> sa.Engine:
    return sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")


def my() -> sa.Engine:
    return sa.create_engine(MY_URL, isolation_level="AUTOCOMMIT", connect_args={"local_infile": True})


class _Raw:
    """Statements without parameters through the raw driver cursor (no ``%`` interpolation)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.raw = engine.raw_connection()

    def exec_driver_sql(self, sql: str) -> None:
        cur = self.raw.cursor()
        cur.execute(sql)
        cur.close()
        self.raw.commit()


class _connect:  # noqa: N801 - a context manager used like engine.connect()
    def __init__(self, engine: sa.Engine) -> None:
        self.conn = _Raw(engine)

    def __enter__(self) -> _Raw:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.raw.close()


def _count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        try:
            return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())
        except sa.exc.DBAPIError:
            return -1


def ensure_databases() -> None:
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).first():
            conn.exec_driver_sql(f'CREATE DATABASE "{DB}"')
    admin.dispose()
    admin = sa.create_engine(MY_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS `{DB}` CHARACTER SET utf8mb4")
    admin.dispose()


def build_sources(rows: int, *, rebuild: bool = False, mariadb: bool = True) -> None:
    """``bench_src`` with ``rows`` rows in both servers (kept when already that size; MariaDB's
    only with ``mariadb``)."""
    ensure_databases()
    engine = pg()
    if rebuild or _count(engine, "bench_src") != rows:
        with _connect(engine) as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS bench_src")
            conn.exec_driver_sql(f"CREATE TABLE bench_src {PG_DDL}")
            conn.exec_driver_sql(f"INSERT INTO bench_src {PG_ROWS.format(lo=1, hi=rows)}")
            conn.exec_driver_sql("VACUUM ANALYZE bench_src")
    engine.dispose()
    if not mariadb:
        return
    engine = my()
    if rebuild or _count(engine, "bench_src") != rows:
        with _connect(engine) as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS bench_src")
            conn.exec_driver_sql(f"CREATE TABLE bench_src {MY_DDL}")
            conn.exec_driver_sql(f"INSERT INTO bench_src {MY_ROWS.format(lo=1, hi=rows)}")
    engine.dispose()


def pg_empty(table: str) -> None:
    """A fresh, empty PostgreSQL destination shaped like the source."""
    engine = pg()
    with _connect(engine) as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        conn.exec_driver_sql(f"CREATE TABLE {table} {PG_DDL}")
    engine.dispose()


def my_empty(table: str) -> None:
    """A fresh, empty MariaDB destination shaped like the source."""
    engine = my()
    with _connect(engine) as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        conn.exec_driver_sql(f"CREATE TABLE {table} {MY_DDL}")
    engine.dispose()


def pg_existing(table: str, rows: int) -> None:
    """A PostgreSQL destination holding ``rows`` rows for the upsert cases.

    The source's first 10% of keys are absent (they will be inserted), half of the rest
    differ in ``note`` (updated), and 10% extra keys are not in the source (sync_delete
    deletes them).
    """
    missing = rows // 10
    pg_empty(table)
    engine = pg()
    cols = ", ".join(COLUMNS)
    changed = ", ".join("CASE WHEN id % 2 = 0 THEN 'changed' ELSE note END" if c == "note" else c for c in COLUMNS)
    with _connect(engine) as conn:
        conn.exec_driver_sql(f"INSERT INTO {table} ({cols}) SELECT {changed} FROM bench_src WHERE id > {missing}")
        conn.exec_driver_sql(f"INSERT INTO {table} {PG_ROWS.format(lo=rows + 1, hi=rows + missing)}")
        conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
    engine.dispose()


def source_megabytes() -> float:
    """Size of ``bench_src`` as PostgreSQL COPY text (what the MB/s figures divide)."""
    engine = pg()
    with engine.connect() as conn:
        size = conn.exec_driver_sql("SELECT sum(octet_length(t::text) - 1) FROM bench_src t").scalar_one()
    engine.dispose()
    return float(size or 0) / 1e6
