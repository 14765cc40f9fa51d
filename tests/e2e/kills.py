"""Helpers for the kill tests: a stack with a short DM_WORKER_LOST_S, per-service faults,
destinations that hold COMMIT or slow every statement, and what the destination holds."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.e2e.stack import Stack
from tests.fixtures.stacks import boot

WORKER_LOST_S = "2"


def kill_stack(tmp_path, metadata_url: str, prefix: str, *, faults: dict[str, str] | None = None,
               **extra: str) -> Stack:
    """The four services; ``faults`` maps a service to its DM_TEST_FAULT point."""
    settings = {"DM_WORKER_LOST_S": WORKER_LOST_S, "DM_HEARTBEAT_S": "0.3", "DM_BATCH_ROWS": "1000",
                "DM_BULK_BATCH_ROWS": "1000", "DM_BATCH_QUEUE_MAX": "4", **extra}
    return boot(tmp_path, metadata_url=metadata_url, prefix=prefix, faults=faults, **settings)


def kill9(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


def api_get(stack: Stack, path: str, **params: object) -> dict | None:
    """GET on the API, or None while it is down."""
    try:
        r = httpx.get(f"{stack.base_url}{path}", params=params, timeout=10, headers=stack.headers)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


def job_chain(stack: Stack, job_id: int) -> list[dict]:
    body = api_get(stack, "/api/executions", job_id=job_id)
    return sorted(body["items"], key=lambda e: e["id"]) if body else []


def settled_chain(stack: Stack, job_id: int) -> list[dict] | None:
    """The job's executions once the last one completed and none is active, else None."""
    runs = job_chain(stack, job_id)
    if runs and runs[-1]["status"] in ("completed", "partial_success") and \
            all(r["status"] not in ("queued", "running") for r in runs):
        return runs
    return None


def keyless_table(url: str) -> None:
    """items(id, name, price) without any key: a duplicate write shows as a second row."""
    with sa.create_engine(url).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE items (id BIGINT NOT NULL, name VARCHAR(100) NOT NULL, "
                             "price NUMERIC(10,2))")


def hold_commit(url: str, seconds: float) -> None:
    """PostgreSQL: a deferred constraint trigger makes COMMIT sleep ``seconds`` (row id 1 only)."""
    with sa.create_engine(url).begin() as conn:
        conn.exec_driver_sql("CREATE FUNCTION hold_commit() RETURNS trigger LANGUAGE plpgsql AS "
                             f"$$ BEGIN PERFORM pg_sleep({seconds}); RETURN NULL; END $$")
        conn.exec_driver_sql("CREATE CONSTRAINT TRIGGER hold_commit AFTER INSERT ON items "
                             "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.id = 1) "
                             "EXECUTE FUNCTION hold_commit()")


def committing(url: str) -> bool:
    """Whether a session of the destination database is running COMMIT now (pg_stat_activity)."""
    database = make_url(url).database
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = :db AND state = 'active' "
                "AND query = 'COMMIT' AND pid <> pg_backend_pid()"), {"db": database}).scalar())
    finally:
        engine.dispose()


def holding(url: str) -> tuple[int, int, int]:
    """(rows, distinct ids, sum of ids) of the destination's items."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows, ids, total = conn.exec_driver_sql(
                "SELECT count(*), count(DISTINCT id), coalesce(sum(id), 0) FROM items").one()
    finally:
        engine.dispose()
    return int(rows), int(ids), int(total)


def wait(predicate, *, timeout_s: float, what: str, stack: Stack, every_s: float = 0.1):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out waiting for {what}\n{stack.all_logs()[-8000:]}")


def add_project(stack: Stack, name: str, url: str) -> int:
    with stack.api as api:
        r = api.post("/api/projects", json={"name": name, "url": url})
        assert r.status_code == 201, r.text
        return r.json()["id"]


def add_job(stack: Stack, *, source_id: int, destination_id: int, mode: str, **options: object) -> int:
    body = {"name": f"{mode} {time.monotonic_ns()}",
            "steps": [{"name": "items", "project_id": source_id, "sql": "SELECT id, name, price FROM items"}],
            "destination": {"project_id": destination_id, "table": "items", "mode": mode}, **options}
    with stack.api as api:
        r = api.post("/api/jobs", json=body)
        assert r.status_code == 201, r.text
        return r.json()["id"]
