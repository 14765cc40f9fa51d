"""The whole data path: API → scheduler → extractor → RabbitMQ → loader → destination.

Given the four services as separate OS processes on RabbitMQ with PostgreSQL metadata
(and again as one process on the in-memory transport), when a user creates projects and
jobs over HTTP and executes them, then every row arrives and the history says so.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.conftest import require_service, AMQP_URL, PG_URL, MYSQL_URL
from tests.e2e.stack import Stack
from tests.fixtures.stacks import SINGLE_PROCESS

ROWS = 10_000
pytestmark = pytest.mark.e2e


def source_rows(n: int = ROWS, seed: int = 7) -> list[tuple]:
    rng = random.Random(seed)
    names = ["Ana", "Zoë", "Jürgen", "李雷", "O'Brien", "Nação", "emoji 😀"]
    start = datetime(2024, 1, 1)
    return [(i, f"{rng.choice(names)} {i}", Decimal(rng.randint(0, 10**8)) / 100,
             start + timedelta(seconds=rng.randint(0, 10**8)), bool(i % 3), None if i % 7 == 0 else f"note {i}")
            for i in range(1, n + 1)]


def make_table(url: str, table: str, rows: list[tuple] | None) -> None:
    engine = sa.create_engine(url)
    is_mysql = engine.dialect.name == "mysql"
    text_type = "VARCHAR(200)" if is_mysql else "VARCHAR(200)"
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, name {text_type} NOT NULL, amount NUMERIC(12,2),"
            f" created_at {'DATETIME' if is_mysql else 'TIMESTAMP'}, flag BOOLEAN, note TEXT)")
        if rows:
            t = sa.table(table, *(sa.column(c) for c in ("id", "name", "amount", "created_at", "flag", "note")))
            conn.execute(t.insert(), [dict(zip(("id", "name", "amount", "created_at", "flag", "note"), r))
                                      for r in rows])
    engine.dispose()


def read_table(url: str, table: str) -> list[tuple]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT id, name, amount, created_at, flag, note FROM {table} ORDER BY id").all()
    engine.dispose()
    return [(r[0], r[1], r[2], r[3], bool(r[4]), r[5]) for r in rows]


def run_copy(stack: Stack, src_project: dict, dst_project: dict, *, src_table: str, dst_table: str) -> dict:
    with stack.api as api:
        src = api.post("/api/projects", json=src_project)
        dst = api.post("/api/projects", json=dst_project)
        assert src.status_code == 201 and dst.status_code == 201, (src.text, dst.text)
        job = api.post("/api/jobs", json={
            "name": f"copy {src_table} to {dst_table}",
            "steps": [{"name": "all rows", "project_id": src.json()["id"],
                       "sql": f"SELECT id, name, amount, created_at, flag, note FROM {src_table}"}],
            "destination": {"project_id": dst.json()["id"], "table": dst_table, "mode": "insert_only"},
        })
        assert job.status_code == 201, job.text
        r = api.post(f"/api/jobs/{job.json()['id']}/execute")
        assert r.status_code == 202
    return stack.wait_finished(r.json()["execution_id"])


def assert_copied(execution: dict, stack: Stack) -> None:
    assert execution["status"] == "completed", (execution, stack.all_logs()[-5000:])
    assert execution["rows_read"] == ROWS and execution["rows_inserted"] == ROWS
    assert execution["rows_written"] == ROWS and execution["rows_failed"] == 0
    assert execution["duration_seconds"] > 0 and execution["rows_per_second"] > 0
    assert execution["trigger"] == "manual" and execution["attempt"] == 1


def both_directions(stack: Stack, pg_url: str, mysql_url: str) -> None:
    rows = source_rows()
    make_table(mysql_url, "src_items", rows)
    make_table(pg_url, "dst_items", None)
    make_table(pg_url, "src_items", rows)
    make_table(mysql_url, "dst_items", None)
    m = make_url(mysql_url)
    mysql_project = {"name": "orders mariadb", "engine": "mysql", "host": m.host, "port": m.port,
                     "database": m.database, "username": m.username, "password": m.password or ""}
    pg_project = {"name": "warehouse pg", "url": pg_url}

    execution = run_copy(stack, mysql_project, pg_project, src_table="src_items", dst_table="dst_items")
    assert_copied(execution, stack)
    assert read_table(pg_url, "dst_items") == rows

    with stack.api as api:
        projects = {p["name"]: p["id"] for p in api.get("/api/projects").json()}
        job = api.post("/api/jobs", json={
            "name": "back to mariadb",
            "steps": [{"name": "pg rows", "project_id": projects["warehouse pg"],
                       "sql": "SELECT id, name, amount, created_at, flag, note FROM src_items"}],
            "destination": {"project_id": projects["orders mariadb"], "table": "dst_items", "mode": "insert_only"},
        }).json()
        execution_id = api.post(f"/api/jobs/{job['id']}/execute").json()["execution_id"]
    execution = stack.wait_finished(execution_id)
    assert_copied(execution, stack)
    assert read_table(mysql_url, "dst_items") == rows

    with stack.api as api:
        history = api.get("/api/executions", params={"status": "completed"}).json()
    assert history["total"] == 2 and {i["job_name"] for i in history["items"]} == {
        "copy src_items to dst_items", "back to mariadb"}


@pytest.fixture
def services_up() -> None:
    require_service("PostgreSQL", PG_URL)
    require_service("MariaDB", MYSQL_URL)
    require_service("RabbitMQ", AMQP_URL)


def test_distributed_services_copy_both_ways(services_up, stacks, pg_database, mysql_database) -> None:
    # Given the four services as separate processes on RabbitMQ with PostgreSQL metadata
    stack = stacks(pg_database())
    env = stack.env
    # When rows are copied MariaDB → PostgreSQL and back; Then every row and the history match
    both_directions(stack, pg_database(), mysql_database())
    assert env["DM_SECRET_KEY"] not in stack.all_logs()


def test_single_process_copies_both_ways(services_up, stacks, tmp_path, pg_database, mysql_database) -> None:
    stack = stacks("", base_dir=tmp_path, amqp_url="memory://", prefix="datamig", services=SINGLE_PROCESS,
                   DM_SECRET_KEY="")
    both_directions(stack, pg_database(), mysql_database())
    assert (tmp_path / "data" / "datamig.db").exists() and (tmp_path / "data" / "secret.key").exists()
    assert oct((tmp_path / "data" / "secret.key").stat().st_mode & 0o777) == "0o600"
