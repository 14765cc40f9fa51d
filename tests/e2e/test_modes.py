"""The four modes × three destination engines, each fed from ANOTHER engine, through the running stack.

Given a destination that already holds a row equal to the source, a row the source
changed and a row the source no longer has, each mode must leave the table a small
Python model of the mode says, and report the counts the model says. One execution per
mode and destination runs concurrently (12 at once) on one stack: API, scheduler,
extractor and loader as OS processes on RabbitMQ with PostgreSQL metadata.
"""
from __future__ import annotations

from decimal import Decimal

import pytest

from tests.conftest import MYSQL_URL, PG_URL, require_service, unique_name
from tests.e2e.harness import Client, Databases, connect, counts, running_stack

pytestmark = pytest.mark.e2e

MODES = ("insert_only", "upsert", "truncate_load", "sync_delete")
# destination engine → source engine (always another one)
SOURCE_OF = {"postgresql": "mysql", "mysql": "sqlite", "sqlite": "postgresql"}
SOURCE = [(1, "Ana", 1, "1.50"), (2, "Zoë", None, "2.00"), (3, "Jürgen", 3, "3.25"), (4, "O'Brien", 4, "0.00"),
          (5, "Nação 😀", None, "99999.99")]
DEST_BEFORE = [(1, "Ana", 1, "1.50"), (2, "old name", 7, "2.00"), (9, "not in the source", 9, "9.00")]
TYPES = {"postgresql": "id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL, qty INTEGER, price NUMERIC(10,2)",
         "mysql": "id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL, qty INTEGER, price NUMERIC(10,2)",
         "sqlite": "id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL, qty INTEGER, price NUMERIC(10,2)"}


def model(mode: str) -> tuple[list[tuple], dict[str, int]]:
    """What the product documentation promises: the final rows and the counts."""
    dest = {r[0]: r for r in DEST_BEFORE}
    n = {"rows_read": len(SOURCE), "rows_inserted": 0, "rows_updated": 0, "rows_skipped": 0, "rows_deleted": 0,
         "rows_failed": 0}
    if mode == "truncate_load":
        n["rows_deleted"], dest = len(dest), {}
    for row in SOURCE:
        old = dest.get(row[0])
        if old is None:
            n["rows_inserted"] += 1
        elif mode == "insert_only" or old == row:
            n["rows_skipped"] += 1
            continue
        else:
            n["rows_updated"] += 1
        dest[row[0]] = row
    if mode == "sync_delete":
        gone = set(dest) - {r[0] for r in SOURCE}
        n["rows_deleted"] = len(gone)
        dest = {k: v for k, v in dest.items() if k not in gone}
    return sorted(dest.values()), n


def make_table(url: str, engine: str, table: str, rows: list[tuple], columns: str | None = None) -> None:
    with connect(url) as conn:
        conn.exec_driver_sql(f"CREATE TABLE {table} ({columns or TYPES[engine]})")
        for row in rows:
            conn.exec_driver_sql(f"INSERT INTO {table} (id, name, qty, price) VALUES (%s, %s, %s, %s)"
                                 if engine != "sqlite" else
                                 f"INSERT INTO {table} (id, name, qty, price) VALUES (?, ?, ?, ?)", row)


def read_table(url: str, table: str) -> list[tuple]:
    with connect(url) as conn:
        rows = conn.exec_driver_sql(f"SELECT id, name, qty, price FROM {table} ORDER BY id").all()
    return [(r[0], r[1], r[2], None if r[3] is None else str(Decimal(str(r[3])).quantize(Decimal("0.01"))))
            for r in rows]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    require_service("PostgreSQL", PG_URL)
    require_service("MariaDB", MYSQL_URL)
    dbs = Databases()
    tmp = tmp_path_factory.mktemp("modes")
    try:
        urls = {"postgresql": dbs.pg(), "mysql": dbs.mysql(), "sqlite": f"sqlite:///{tmp / 'data.sqlite'}"}
        with running_stack(tmp / "stack", dbs.pg(), unique_name("dmmodes"),
                           DM_EXTRACTOR_CONCURRENCY="4", DM_LOADER_CONCURRENCY="4") as stack:
            client = Client(stack)
            projects = {engine: client.project(f"{engine} db", url) for engine, url in urls.items()}
            yield client, urls, projects
            client.close()
    finally:
        dbs.drop_all()


def test_every_mode_into_every_engine_from_another_engine(env) -> None:
    client, urls, projects = env
    # Given a source table on each engine and, per mode, a destination table on the next engine
    for engine, url in urls.items():
        make_table(url, engine, "items", SOURCE)
    jobs = {}
    for dest_engine, source_engine in SOURCE_OF.items():
        for mode in MODES:
            table = f"items_{mode}"
            make_table(urls[dest_engine], dest_engine, table, DEST_BEFORE)
            jobs[(dest_engine, mode)] = client.create_job({
                "name": f"{mode} {source_engine} → {dest_engine}",
                "steps": [{"name": "items", "project_id": projects[source_engine],
                           "sql": "SELECT id, name, qty, price FROM items ORDER BY id"}],
                "destination": {"project_id": projects[dest_engine], "table": table, "mode": mode}})
    # When every job is executed (all at once)
    ids = {key: client.execute(job_id) for key, job_id in jobs.items()}
    done = client.wait_all(ids.values())
    # Then each destination holds what the mode promises, and the history counts it
    for (dest_engine, mode), eid in ids.items():
        execution = done[eid]
        rows, expected = model(mode)
        where = f"{mode} {SOURCE_OF[dest_engine]} → {dest_engine}"
        assert execution["status"] == "completed", (where, execution)
        assert counts(execution) == expected, where
        assert read_table(urls[dest_engine], f"items_{mode}") == rows, where


def test_bad_rows_are_isolated_and_shown_with_values_error_and_position(env) -> None:
    client, urls, projects = env
    # Given 10 source rows on MariaDB, of which row 4 has no name and row 7 a negative price,
    # and a PostgreSQL destination that refuses both (NOT NULL, CHECK)
    source = [(i, None if i == 4 else f"item {i}", i, "-1.00" if i == 7 else f"{i}.00") for i in range(1, 11)]
    make_table(urls["mysql"], "mysql", "bad_items", source,
               "id INTEGER PRIMARY KEY, name VARCHAR(50), qty INTEGER, price NUMERIC(10,2)")
    make_table(urls["postgresql"], "postgresql", "checked_items", [],
               "id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL, qty INTEGER,"
               " price NUMERIC(10,2) CONSTRAINT price_not_negative CHECK (price >= 0)")
    job_id = client.create_job({
        "name": "bad rows", "max_retries": 0,
        "steps": [{"name": "items", "project_id": projects["mysql"],
                   "sql": "SELECT id, name, qty, price FROM bad_items ORDER BY id"}],
        "destination": {"project_id": projects["postgresql"], "table": "checked_items", "mode": "upsert"}})
    # When it runs
    execution = client.run(job_id)
    # Then the 8 good rows are written, the 2 bad ones recorded, and the run is a partial success
    assert execution["status"] == "partial_success", execution
    assert (execution["rows_read"], execution["rows_inserted"], execution["rows_failed"]) == (10, 8, 2)
    assert [r[0] for r in read_table(urls["postgresql"], "checked_items")] == [1, 2, 3, 5, 6, 8, 9, 10]
    errors = client.errors(execution["id"])
    assert errors["failed_rows_total"] == 2
    first, second = errors["failed_rows"]
    assert first["position"] == 4 and first["values"]["id"] == 4 and first["values"]["name"] is None
    assert "null value" in first["error"] and "name" in first["error"], first
    assert second["position"] == 7 and second["values"]["id"] == 7 and "price_not_negative" in second["error"], second
    assert first["at"] and second["at"]


def test_postgresql_to_postgresql_of_the_same_types_passes_through_in_binary_with_the_same_answer(env) -> None:
    client, urls, projects = env
    # Given a PostgreSQL source and destination of exactly the same column types, where row 4 has
    # no name and row 7 a negative price, which the destination refuses (NOT NULL, CHECK)
    source = [(i, None if i == 4 else f"item {i} 😀", i, "-1.00" if i == 7 else f"{i}.25") for i in range(1, 11)]
    make_table(urls["postgresql"], "postgresql", "bin_src", source,
               "id INTEGER PRIMARY KEY, name VARCHAR(50), qty INTEGER, price NUMERIC(10,2)")
    make_table(urls["postgresql"], "postgresql", "bin_dst", DEST_BEFORE,
               "id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL, qty INTEGER,"
               " price NUMERIC(10,2) CHECK (price >= 0)")
    job_id = client.create_job({
        "name": "binary pass-through", "max_retries": 0,
        "steps": [{"name": "items", "project_id": projects["postgresql"],
                   "sql": "SELECT id, name, qty, price FROM bin_src"}],
        "destination": {"project_id": projects["postgresql"], "table": "bin_dst", "mode": "upsert"}})
    # When it runs
    execution = client.run(job_id)
    # Then the batches went in binary COPY form, the refused batch was isolated row by row like
    # the general path does, and the table holds the good rows
    assert "batches as pg_binary" in client.stack.all_logs()
    assert execution["status"] == "partial_success", execution
    assert (execution["rows_read"], execution["rows_inserted"], execution["rows_updated"],
            execution["rows_failed"]) == (10, 5, 3, 2)
    assert [p["position"] for p in client.errors(execution["id"])["failed_rows"]] == [4, 7]
    good = [r for r in source if r[0] not in (4, 7)]
    assert read_table(urls["postgresql"], "bin_dst") == sorted(good)
