"""A permanent error is not retried: a job whose MariaDB password is wrong ends ``failed`` at
attempt 1 with no retry execution — through API, scheduler, extractor and loader in one
process (in-memory transport), whether validation, the extractor or the loader meets it.
A database that is down (refused port) is still retried."""
from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from services.api.app import create_app
from services.cli import start_workers
from shared.bootstrap import build_secret_box, build_store, build_transport
from tests.conftest import MYSQL_URL, unique_name
from tests.integration.pg_refusal import pg_refusing_password
from tests.unit.api_fixtures import AUTH, make_settings


@pytest.fixture
def system(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, retry_base_s=0.05, retry_max_s=0.1, poll_s=0.05, heartbeat_s=0.5)
    transport, topology = build_transport(settings, name="test")
    app = create_app(settings, transport, store=build_store(settings), box=build_secret_box(settings),
                     topology=topology)
    with TestClient(app, headers=AUTH) as client:
        stop = start_workers(settings, ("scheduler", "extractor", "loader"), transport=transport, topology=topology)
        try:
            yield client
        finally:
            stop()
    transport.close()


@pytest.fixture
def mariadb_user(mysql_url: str) -> Iterator[dict]:
    """A MariaDB user with a password and rights on a fresh database holding ``src``."""
    name, password = unique_name("u"), "right-password"
    url = make_url(mysql_url)
    admin = sa.create_engine(MYSQL_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for host in ("%%", "localhost"):
            conn.exec_driver_sql(f"CREATE USER '{name}'@'{host}' IDENTIFIED BY '{password}'")
            conn.exec_driver_sql(f"GRANT ALL ON `{url.database}`.* TO '{name}'@'{host}'")
        conn.exec_driver_sql(f"CREATE TABLE `{url.database}`.src (id INT PRIMARY KEY, name VARCHAR(20))")
        conn.exec_driver_sql(f"INSERT INTO `{url.database}`.src VALUES (1, 'a'), (2, 'b')")
        conn.exec_driver_sql(f"CREATE TABLE `{url.database}`.dst (id INT PRIMARY KEY, name VARCHAR(20))")
    yield {"engine": "mysql", "host": url.host, "port": url.port, "database": url.database, "username": name,
           "password": password}
    with admin.connect() as conn:
        for host in ("%%", "localhost"):
            conn.exec_driver_sql(f"DROP USER IF EXISTS '{name}'@'{host}'")
    admin.dispose()


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(api: TestClient, source: dict, destination: dict, *, validate: bool, max_retries: int = 3) -> int:
    src = api.post("/api/projects", json={"name": unique_name("src"), **source}).json()["id"]
    dst = api.post("/api/projects", json={"name": unique_name("dst"), **destination}).json()["id"]
    job = api.post("/api/jobs", json={
        "name": unique_name("job"), "max_retries": max_retries, "validate_before_execution": validate,
        "steps": [{"name": "rows", "project_id": src, "sql": "SELECT id, name FROM src"}],
        "destination": {"project_id": dst, "table": "dst", "mode": "insert_only"}})
    assert job.status_code == 201, job.text
    return api.post(f"/api/jobs/{job.json()['id']}/execute").json()["execution_id"]


def _history_when_done(api: TestClient, job_id: int, *, until: int = 1) -> list[dict]:
    """The job's executions once ``until`` of them have finished (a retry is created with the finish)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        items = api.get("/api/executions", params={"job_id": job_id, "limit": 50}).json()["items"]
        if sum(i["status"] not in ("queued", "running") for i in items) >= until:
            return sorted(items, key=lambda i: i["id"])
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {items}")


@pytest.mark.parametrize("wrong, validate", [("source", True), ("source", False), ("destination", False)])
def test_a_wrong_password_fails_at_attempt_1_without_a_retry(system: TestClient, mariadb_user: dict, wrong: str,
                                                             validate: bool) -> None:
    # Given a job whose source or destination has the wrong password, and 3 retries allowed
    bad = {**mariadb_user, "password": "wrong-password"}
    source, destination = (bad, mariadb_user) if wrong == "source" else (mariadb_user, bad)
    execution_id = _run(system, source, destination, validate=validate)
    job_id = system.get(f"/api/executions/{execution_id}").json()["job_id"]
    # When it runs; Then it fails once, says why, and no retry is queued
    history = _history_when_done(system, job_id)
    assert [(e["status"], e["attempt"], e["trigger"]) for e in history] == [("failed", 1, "manual")], history
    assert "Access denied" in history[0]["error"]["message"] and "wrong-password" not in history[0]["error"]["message"]


@pytest.mark.parametrize("validate", [True, False])
def test_a_wrong_postgresql_password_fails_at_attempt_1_without_a_retry(system: TestClient, mariadb_user: dict,
                                                                        validate: bool) -> None:
    # Given a PostgreSQL source that refuses the password (SQLSTATE 28P01 at start-up)
    with pg_refusing_password("app") as port:
        source = {"engine": "postgresql", "host": "127.0.0.1", "port": port, "database": "db", "username": "app",
                  "password": "wrong-password"}
        execution_id = _run(system, source, mariadb_user, validate=validate)
        job_id = system.get(f"/api/executions/{execution_id}").json()["job_id"]
        history = _history_when_done(system, job_id)
    # Then it fails once and is not retried
    assert [(e["status"], e["attempt"]) for e in history] == [("failed", 1)], history
    assert "password authentication failed" in history[0]["error"]["message"]


def test_a_database_that_is_down_is_retried(system: TestClient, mariadb_user: dict) -> None:
    down = {**mariadb_user, "port": _refused_port()}
    execution_id = _run(system, down, mariadb_user, validate=False, max_retries=1)
    job_id = system.get(f"/api/executions/{execution_id}").json()["job_id"]
    history = _history_when_done(system, job_id, until=2)
    assert [(e["status"], e["attempt"]) for e in history] == [("failed", 1), ("failed", 2)]
    assert history[1]["retry_of"] == history[0]["id"]
