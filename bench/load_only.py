"""Measure LoadSession alone: 1,000,000 rows x 10 mixed columns into PostgreSQL and MariaDB.

Not a test (no assertions on time). Creates a scratch database per engine and drops it.
Usage: python bench/load_only.py [--rows N] [--batch N] [--engines postgresql,mariadb]
"""
from __future__ import annotations

import argparse
import time
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from shared.connections import create_db_engine
from shared.jobspec import Mode
from shared.load import LoadSession
from shared.types import Column

ADMIN = {"postgresql": "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres",
         "mariadb": "mysql+pymysql://root@127.0.0.1:3306/test"}
COLUMNS = [Column("id", "bigint"), Column("qty", "int"), Column("big", "bigint"), Column("price", "decimal"),
           Column("ratio", "float"), Column("active", "bool"), Column("name", "text"), Column("note", "text"),
           Column("day", "date"), Column("at", "timestamp")]


def table() -> sa.Table:
    return sa.Table("bench", sa.MetaData(), sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
                    sa.Column("qty", sa.Integer), sa.Column("big", sa.BigInteger), sa.Column("price", sa.Numeric(18, 4)),
                    sa.Column("ratio", sa.Double), sa.Column("active", sa.Boolean), sa.Column("name", sa.String(50)),
                    sa.Column("note", sa.Text), sa.Column("day", sa.Date), sa.Column("at", sa.DateTime))


def rows(n: int, version: int) -> list[tuple]:
    base, day = datetime(2024, 1, 1), date(2024, 1, 1)
    return [(i, i % 1000, i * 1_000_003, Decimal(i % 100_000) / 100 + version * (i % 10 == 0), i / 7.0,
             i % 2 == 0, f"name {i}", f"note for row {i} with tab\tand quote'", day + timedelta(days=i % 3650),
             base + timedelta(seconds=i)) for i in range(1, n + 1)]


def run(engine: sa.Engine, mode: Mode, data: list[tuple], batch: int) -> tuple[float, dict]:
    began = time.perf_counter()
    session = LoadSession(engine, table="bench", columns=COLUMNS, mode=mode)
    session.begin()
    for start in range(0, len(data), batch):
        session.write(data[start:start + batch])
    counts = session.finish()
    session.commit()
    session.close()
    return time.perf_counter() - began, counts.to_dict()


def bench(kind: str, n: int, batch: int) -> None:
    admin = sa.create_engine(ADMIN[kind], isolation_level="AUTOCOMMIT")
    name = f"dm_bench_{uuid.uuid4().hex[:8]}"
    quote = '"' if kind == "postgresql" else "`"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {quote}{name}{quote}")
    engine = create_db_engine(make_url(ADMIN[kind]).set(database=name))
    try:
        table().create(engine)
        first, second = rows(n, 0), rows(n, 1)
        for label, mode, data in [("truncate_load (empty table)", Mode.truncate_load, first),
                                  ("upsert (existing rows, 10% changed)", Mode.upsert, second),
                                  ("truncate_load (replacing all rows)", Mode.truncate_load, first)]:
            seconds, counts = run(engine, mode, data, batch)
            print(f"{kind:10} {label:38} {n:>9} rows {seconds:7.1f} s {n / seconds:>9.0f} rows/s  {counts}")
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {quote}{name}{quote}" + (" WITH (FORCE)" if kind == "postgresql" else ""))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--engines", default="postgresql,mariadb")
    args = parser.parse_args()
    for kind in args.engines.split(","):
        bench(kind, args.rows, args.batch)


if __name__ == "__main__":
    main()
