"""Real data: every Chinook table, MariaDB → PostgreSQL and PostgreSQL → MariaDB, in all four modes.

Chinook 1.4.5 is read in place from the shared datasets (``$DM_TEST_DATASETS`` or
``../shared/datasets`` next to the repo). The sources get the whole script (MariaDB with
``NO_BACKSLASH_ESCAPES`` and utf8mb4, so the four track names with a backslash keep it);
the destinations get the CREATE TABLE part only: same tables, columns and primary keys,
NO foreign keys. We chose to leave the foreign keys out because the modes work per table:
``truncate_load`` and ``sync_delete`` on a parent table would otherwise depend on the
state of its children, and the 22 jobs of a stage run concurrently in any order.

One job per table and direction (22), the mode changed with PUT between stages; all 22
executions of a stage run at once. The step SQL maps names with aliases (MariaDB's
``AlbumId`` ↔ PostgreSQL's ``album_id``). Each destination is compared with ITS OWN source
row by row (per-row checksums keyed by primary key), so the engines' different takes on
``'Edinburgh '`` (PostgreSQL's script strips the trailing blank) are not a difference of
the migration, and the migrated value is checked to keep whatever the source holds.
"""
from __future__ import annotations

import hashlib
import re
import time
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import psycopg2
import pymysql
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.conftest import IN_CI, MYSQL_URL, PG_URL, require_service, unique_name
from tests.e2e.harness import Client, Databases, connect, counts, datasets_dir
from tests.fixtures.stacks import boot

pytestmark = pytest.mark.e2e

CHINOOK = datasets_dir() / "chinook"
# PostgreSQL table → rows (README of the datasets: identical on every engine)
ROWS = {"album": 347, "artist": 275, "customer": 59, "employee": 8, "genre": 25, "invoice": 412,
        "invoice_line": 2240, "media_type": 5, "playlist": 18, "playlist_track": 8715, "track": 3503}
# a non-key column per table that the test changes in the destination, and the new value
CHANGE = {"album": ("title", "'changed'"), "artist": ("name", "'changed'"), "customer": ("first_name", "'changed'"),
          "employee": ("last_name", "'changed'"), "genre": ("name", "'changed'"), "invoice": ("total", "0"),
          "invoice_line": ("quantity", "99"), "media_type": ("name", "'changed'"), "playlist": ("name", "'changed'"),
          "track": ("composer", "NULL"), "playlist_track": None}
EXTRA_KEY_OFFSET = 1_000_000


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


# ----------------------------------------------------------------------------- loading
def _strip_database_lines(script: str, names: tuple[str, ...]) -> str:
    return "\n".join(line for line in script.splitlines() if line.strip() not in names)


def _schema_part(script: str) -> str:
    """CREATE TABLE statements only: everything before the foreign-key section."""
    banner = script.index("Create Foreign Keys")
    return script[:script.rindex("/*", 0, banner)]


def load_pg(url: str, *, schema_only: bool) -> None:
    script = (CHINOOK / "Chinook_PostgreSql.sql").read_text(encoding="utf-8")
    script = _strip_database_lines(script, ("DROP DATABASE IF EXISTS chinook;", "CREATE DATABASE chinook;",
                                            "\\c chinook;"))
    u = make_url(url)
    conn = psycopg2.connect(host=u.host, port=u.port or 5432, user=u.username, password=u.password,
                            dbname=u.database)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(_schema_part(script) if schema_only else script)
    finally:
        conn.close()


def load_mysql(url: str, *, schema_only: bool) -> None:
    script = (CHINOOK / "Chinook_MySql.sql").read_text(encoding="utf-8")
    script = _strip_database_lines(script, ("DROP DATABASE IF EXISTS `Chinook`;", "CREATE DATABASE `Chinook`;",
                                            "USE `Chinook`;"))
    u = make_url(url)
    conn = pymysql.connect(host=u.host, port=u.port or 3306, user=u.username, password=u.password or "",
                           database=u.database, charset="utf8mb4", autocommit=True,
                           client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
    try:
        with conn.cursor() as cur:
            # the pitfall: without NO_BACKSLASH_ESCAPES '\ ' loses its backslash
            cur.execute("SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES')")
            cur.execute(_schema_part(script) if schema_only else script)
            while cur.nextset():
                pass
    finally:
        conn.close()


# ----------------------------------------------------------------------------- tables
@dataclass
class Table:
    pg: str
    mysql: str
    pg_columns: list[str]
    mysql_columns: list[str]
    key: list[str]  # PostgreSQL names

    def names(self, engine: str) -> tuple[str, list[str]]:
        return (self.pg, self.pg_columns) if engine == "postgresql" else (self.mysql, self.mysql_columns)

    def key_of(self, engine: str) -> list[str]:
        return [self.names(engine)[1][self.pg_columns.index(k)] for k in self.key]

    def select(self, source: str) -> str:
        """The step SQL on ``source``, columns aliased to the other engine's names."""
        if source == "mysql":
            cols = ", ".join(f"`{m}` AS {p}" for m, p in zip(self.mysql_columns, self.pg_columns))
            return f"SELECT {cols} FROM `{self.mysql}`"
        cols = ", ".join(f'{p} AS "{m}"' for m, p in zip(self.mysql_columns, self.pg_columns))
        return f"SELECT {cols} FROM {self.pg}"


def chinook_tables(mysql_url: str, pg_url: str) -> list[Table]:
    """The tables of both sources, paired by name (PascalCase ↔ snake_case) and checked."""
    my_engine, pg_engine = sa.create_engine(mysql_url), sa.create_engine(pg_url)
    try:
        my_inspect, pg_inspect = sa.inspect(my_engine), sa.inspect(pg_engine)
        tables = []
        for name in my_inspect.get_table_names():
            pg_name = snake(name)
            my_cols = [c["name"] for c in my_inspect.get_columns(name)]
            pg_cols = [c["name"] for c in pg_inspect.get_columns(pg_name)]
            assert [snake(c) for c in my_cols] == pg_cols, (name, my_cols, pg_cols)
            key = pg_inspect.get_pk_constraint(pg_name)["constrained_columns"]
            assert [snake(c) for c in my_inspect.get_pk_constraint(name)["constrained_columns"]] == key
            tables.append(Table(pg_name, name, pg_cols, my_cols, key))
    finally:
        my_engine.dispose()
        pg_engine.dispose()
    assert sorted(t.pg for t in tables) == sorted(ROWS)
    return sorted(tables, key=lambda t: t.pg)


def _normal(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return value


def checksums(url: str, table: Table) -> dict[tuple, str]:
    """Primary key → md5 of the row's values (decimals exact, timestamps ISO, text verbatim)."""
    engine = "postgresql" if url.startswith("postgresql") else "mysql"
    name, cols = table.names(engine)
    q = '"' if engine == "postgresql" else "`"
    sql = f"SELECT {', '.join(q + c + q for c in cols)} FROM {q}{name}{q}"
    key_idx = [table.pg_columns.index(k) for k in table.key]
    out = {}
    with connect(url) as conn:
        for row in conn.exec_driver_sql(sql):
            values = tuple(_normal(v) for v in row)
            out[tuple(values[i] for i in key_idx)] = hashlib.md5(repr(values).encode()).hexdigest()
    return out


_SOURCE_SUMS: dict[tuple[str, str], dict[tuple, str]] = {}  # (source URL, table) → checksums, read once


def assert_same_rows(src_url: str, dst_url: str, table: Table, where: str) -> None:
    """The destination holds the source's rows: the source's checksums as read at its first comparison
    (the test never writes a source, so every later stage is compared with the same, original rows)."""
    src = _SOURCE_SUMS.get((src_url, table.pg))
    if src is None:
        src = _SOURCE_SUMS[(src_url, table.pg)] = checksums(src_url, table)
    dst = checksums(dst_url, table)
    assert len(dst) == len(src) == ROWS[table.pg], (where, table.pg, len(src), len(dst))
    differ = sorted(k for k in src if dst.get(k) != src[k])
    extra = sorted(set(dst) - set(src))
    assert not differ and not extra, f"{where} {table.pg}: rows differ {differ[:5]}, extra keys {extra[:5]}"


# ----------------------------------------------------------------------------- destination edits
def _quote(engine: str, name: str) -> str:
    return f'"{name}"' if engine == "postgresql" else f"`{name}`"


def destination_edits(url: str, table: Table, *, delete: int = 0, change: int = 0, extra: int = 0) -> list[tuple]:
    """Deletes the rows with the ``delete`` highest keys, changes the ``change`` lowest, adds
    ``extra`` copies of the lowest row under new keys; returns the extra keys."""
    engine = "postgresql" if url.startswith("postgresql") else "mysql"
    name, cols = table.names(engine)
    key = table.key_of(engine)
    t, k = _quote(engine, name), [_quote(engine, c) for c in key]
    order_asc = ", ".join(k)
    order_desc = ", ".join(f"{c} DESC" for c in k)
    with connect(url) as conn:
        if delete:
            doomed = conn.exec_driver_sql(f"SELECT {order_asc} FROM {t} ORDER BY {order_desc} LIMIT {delete}").all()
            for row in doomed:
                cond = " AND ".join(f"{c} = {int(v)}" for c, v in zip(k, row))
                conn.exec_driver_sql(f"DELETE FROM {t} WHERE {cond}")
        if change and CHANGE[table.pg]:
            column, value = CHANGE[table.pg]
            col = _quote(engine, table.names(engine)[1][table.pg_columns.index(column)])
            rows = conn.exec_driver_sql(f"SELECT {order_asc} FROM {t} ORDER BY {order_asc} LIMIT {change}").all()
            for row in rows:
                cond = " AND ".join(f"{c} = {int(v)}" for c, v in zip(k, row))
                assert conn.exec_driver_sql(f"UPDATE {t} SET {col} = {value} WHERE {cond}").rowcount == 1
        added = []
        if extra:
            first = conn.exec_driver_sql(f"SELECT {order_asc} FROM {t} ORDER BY {order_asc} LIMIT 1").one()
            qcols = [_quote(engine, c) for c in cols]
            for n in range(1, extra + 1):
                new_key = (first[0] + EXTRA_KEY_OFFSET + n, *first[1:])
                select = ", ".join(f"{qc} + {EXTRA_KEY_OFFSET + n}" if c == key[0] else qc
                                   for c, qc in zip(cols, qcols))
                cond = " AND ".join(f"{c} = {int(v)}" for c, v in zip(k, first))
                conn.exec_driver_sql(f"INSERT INTO {t} ({', '.join(qcols)}) SELECT {select} FROM {t} WHERE {cond}")
                added.append(new_key)
    return added


def row_count(url: str, table: Table) -> int:
    engine = "postgresql" if url.startswith("postgresql") else "mysql"
    with connect(url) as conn:
        return conn.exec_driver_sql(f"SELECT count(*) FROM {_quote(engine, table.names(engine)[0])}").scalar_one()


# ----------------------------------------------------------------------------- the world
@dataclass
class Route:
    """One table in one direction: its job and where it reads and writes."""

    table: Table
    source: str  # "mysql" | "postgresql"
    src_url: str
    dst_url: str
    job_id: int = 0
    body: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.table.pg} {'MariaDB → PostgreSQL' if self.source == 'mysql' else 'PostgreSQL → MariaDB'}"


@dataclass
class World:
    client: Client
    routes: list[Route]
    src_my: str
    src_pg: str
    dst_pg: str
    dst_my: str
    timings: dict[str, float] = field(default_factory=dict)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    if not (CHINOOK / "Chinook_PostgreSql.sql").exists():
        message = f"Chinook scripts not found in {CHINOOK} (set DM_TEST_DATASETS to the shared datasets folder)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    require_service("PostgreSQL", PG_URL)
    require_service("MariaDB", MYSQL_URL)
    dbs = Databases()
    try:
        started = time.monotonic()
        metadata, src_my, src_pg, dst_pg, dst_my = dbs.pg(), dbs.mysql(), dbs.pg(), dbs.pg(), dbs.mysql()
        # the four databases load while the stack boots (each on its own connection): neither waits for the other
        with ThreadPoolExecutor(max_workers=5) as pool:
            booting = pool.submit(boot, tmp_path_factory.mktemp("chinook"), metadata_url=metadata,
                                  prefix=unique_name("dmchinook"), DM_EXTRACTOR_CONCURRENCY="4",
                                  DM_LOADER_CONCURRENCY="4", DM_BATCH_ROWS="5000")
            loads = [pool.submit(load_mysql, src_my, schema_only=False), pool.submit(load_pg, src_pg, schema_only=False),
                     pool.submit(load_pg, dst_pg, schema_only=True), pool.submit(load_mysql, dst_my, schema_only=True)]
            futures.wait([booting, *loads])
        stack = booting.result() if booting.exception() is None else None
        try:
            for load in (*loads, booting):
                load.result()
            tables = chinook_tables(src_my, src_pg)
            loaded = time.monotonic() - started
            client = Client(stack)
            projects = {"src_my": client.project("Chinook MariaDB", src_my),
                        "src_pg": client.project("Chinook PostgreSQL", src_pg),
                        "dst_pg": client.project("Warehouse PostgreSQL", dst_pg),
                        "dst_my": client.project("Warehouse MariaDB", dst_my)}
            routes = []
            for table in tables:
                for source, src, dst, src_pid, dst_pid, dst_table in (
                        ("mysql", src_my, dst_pg, projects["src_my"], projects["dst_pg"], table.pg),
                        ("postgresql", src_pg, dst_my, projects["src_pg"], projects["dst_my"], table.mysql)):
                    route = Route(table, source, src, dst)
                    route.body = {"name": f"chinook {route.label}",
                                  "steps": [{"name": table.pg, "project_id": src_pid, "sql": table.select(source)}],
                                  "destination": {"project_id": dst_pid, "table": dst_table, "mode": "insert_only"}}
                    route.job_id = client.create_job(route.body)
                    routes.append(route)
            yield World(client, routes, src_my, src_pg, dst_pg, dst_my, {"load datasets and boot": loaded})
            client.close()
        finally:
            if stack is not None:
                stack.stop()
    finally:
        dbs.drop_all()


def run_stage(world: World, mode: str) -> dict[int, dict]:
    """PUT the mode on every job, execute all at once, wait; executions by job id."""
    started = time.monotonic()
    for route in world.routes:
        if route.body["destination"]["mode"] != mode:
            route.body["destination"]["mode"] = mode
            job = world.client.put_job(route.job_id, route.body)
            assert job["destination"]["mode"] == mode
    ids = {route.job_id: world.client.execute(route.job_id) for route in world.routes}
    done = world.client.wait_all(ids.values(), timeout_s=150)
    world.timings[mode] = time.monotonic() - started
    by_job = {job_id: done[eid] for job_id, eid in ids.items()}
    slowest = max(world.routes, key=lambda r: by_job[r.job_id]["duration_seconds"] or 0)
    world.timings[f"{mode} slowest: {slowest.label}"] = by_job[slowest.job_id]["duration_seconds"] or 0
    return by_job


def expect(route: Route, executions: dict[int, dict], **expected: int) -> None:
    execution = executions[route.job_id]
    assert execution["status"] == "completed", (route.label, execution)
    got = counts(execution)
    want = {"rows_read": ROWS[route.table.pg], "rows_inserted": 0, "rows_updated": 0, "rows_skipped": 0,
            "rows_deleted": 0, "rows_failed": 0, **expected}
    assert got == want, route.label


def test_every_chinook_table_migrates_both_ways_in_every_mode(world: World) -> None:
    routes = world.routes
    assert len(routes) == 22

    # Given empty destination tables; When every table is migrated with insert_only
    executions = run_stage(world, "insert_only")
    # Then every row arrives unchanged, both ways
    for r in routes:
        expect(r, executions, rows_inserted=ROWS[r.table.pg])
        assert_same_rows(r.src_url, r.dst_url, r.table, "insert_only")

    # Given destinations missing 3 rows and holding 2 changed ones; When upserted
    for r in routes:
        destination_edits(r.dst_url, r.table, delete=3, change=2)
    executions = run_stage(world, "upsert")
    # Then the 3 come back, the 2 are corrected, the rest is left alone (skipped)
    for r in routes:
        changed = 2 if CHANGE[r.table.pg] else 0
        expect(r, executions, rows_inserted=3, rows_updated=changed, rows_skipped=ROWS[r.table.pg] - 3 - changed)
        assert_same_rows(r.src_url, r.dst_url, r.table, "upsert")

    # Given destinations with 2 rows the source does not have; When truncated and loaded
    for r in routes:
        destination_edits(r.dst_url, r.table, extra=2)
        assert row_count(r.dst_url, r.table) == ROWS[r.table.pg] + 2
    executions = run_stage(world, "truncate_load")
    # Then every old row was deleted and exactly the source rows are there
    for r in routes:
        expect(r, executions, rows_deleted=ROWS[r.table.pg] + 2, rows_inserted=ROWS[r.table.pg])
        assert_same_rows(r.src_url, r.dst_url, r.table, "truncate_load")

    # Given destinations with 2 extra rows, 3 missing and 2 changed; When synced with delete
    extras = {}
    for r in routes:
        extras[r.job_id] = destination_edits(r.dst_url, r.table, delete=3, change=2, extra=2)
    executions = run_stage(world, "sync_delete")
    # Then the extra rows are gone, the missing ones back, the changed ones corrected
    for r in routes:
        changed = 2 if CHANGE[r.table.pg] else 0
        expect(r, executions, rows_inserted=3, rows_updated=changed, rows_deleted=2,
               rows_skipped=ROWS[r.table.pg] - 3 - changed)
        assert_same_rows(r.src_url, r.dst_url, r.table, "sync_delete")
        assert not set(extras[r.job_id]) & set(checksums(r.dst_url, r.table))

    # The dataset's pitfalls arrived as their source holds them
    with connect(world.dst_pg) as conn:
        assert conn.exec_driver_sql("SELECT city FROM customer WHERE customer_id = 54").scalar_one() == "Edinburgh "
        assert conn.exec_driver_sql("SELECT count(*) FROM track WHERE strpos(name, chr(92)) > 0").scalar_one() == 4
    with connect(world.dst_my) as conn:
        assert conn.exec_driver_sql("SELECT City FROM Customer WHERE CustomerId = 54").scalar_one() == "Edinburgh"
        name = conn.exec_driver_sql("SELECT Name FROM Track WHERE TrackId = 3435").scalar_one()
        assert name == "Cavalleria Rusticana \\ Act \\ Intermezzo Sinfonico"
    print("timings (s):", {k: round(v, 1) for k, v in world.timings.items()})
