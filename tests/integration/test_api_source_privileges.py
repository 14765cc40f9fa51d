"""A source role that is not read-only, as users see it: the connection test's ``privileges``,
preview and validation ``warnings``, and history (a warning count and a report line, or, with
DM_STRICT_SOURCES=true, a failed execution naming the privilege that is not retried)."""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from tests.conftest import unique_name
from tests.unit.api_fixtures import AUTH, make_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def source(pg_url) -> Iterator[tuple[str, str]]:
    """(superuser URL, read-only login URL) of a database with users(id, name): 3 rows."""
    role = unique_name("dm_reader")
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql("CREATE TABLE users (id int, name text)")
        c.exec_driver_sql("INSERT INTO users VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        c.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
        c.exec_driver_sql(f'GRANT SELECT ON users TO "{role}"')
    yield pg_url, make_url(pg_url).set(username=role).render_as_string(hide_password=False)
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP OWNED BY "{role}"')
        c.exec_driver_sql(f'DROP ROLE "{role}"')
    admin.dispose()


@pytest.fixture
def stack(tmp_path) -> Iterator[TestClient]:
    """API, scheduler, extractor and loader in one process on the in-memory transport."""
    from services.api.app import create_app
    from services.cli import start_workers
    from shared.bootstrap import build_secret_box, build_store, build_transport

    settings = make_settings(tmp_path, poll_s=0.1, retry_base_s=0.0)
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


def project(client: TestClient, name: str, url: str) -> int:
    r = client.post("/api/projects", json={"name": name, "url": url})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_the_connection_test_says_what_the_role_can_do(stack, source, monkeypatch) -> None:
    superuser, reader = source
    answer = stack.post(f"/api/projects/{project(stack, 'src', superuser)}/test").json()
    assert answer["ok"] and answer["privileges"]["read_only"] is False
    assert answer["privileges"]["risky"] == ["superuser"] and answer["privileges"]["role"] == "postgres"
    assert answer["privileges"]["message"].startswith("warning: ")
    answer = stack.post("/api/projects/test", json={"name": "r", "url": reader}).json()
    assert answer["ok"] and answer["privileges"] == {"read_only": True, "checked": True, "role": make_url(reader).username,
                                                     "risky": [], "strict": False, "message": None}
    monkeypatch.setenv("DM_STRICT_SOURCES", "true")
    answer = stack.post("/api/projects/test", json={"name": "s", "url": superuser}).json()
    assert answer["privileges"]["strict"] is True and "DM_STRICT_SOURCES=true refuses" in answer["privileges"]["message"]


def test_preview_and_validation_warn_and_strict_mode_refuses(stack, source, monkeypatch) -> None:
    src = project(stack, "src", source[0])
    draft = {"steps": [{"name": "users", "project_id": src, "sql": "SELECT id FROM users ORDER BY id"}]}
    preview = stack.post("/api/jobs/preview", json=draft).json()
    assert preview["steps"][0]["rows"] == [[1], [2], [3]]
    assert len(preview["warnings"]) == 1 and "'postgres'" in preview["warnings"][0] and "superuser" in preview["warnings"][0]
    assert preview["steps"][0]["warnings"] == preview["warnings"]
    validation = stack.post("/api/jobs/validate", json=draft).json()
    assert validation["ok"] and validation["warnings"] == preview["warnings"]
    monkeypatch.setenv("DM_STRICT_SOURCES", "true")
    preview = stack.post("/api/jobs/preview", json=draft).json()
    assert preview["steps"][0]["rows"] == [] and "superuser" in preview["steps"][0]["error"]
    assert "DM_STRICT_SOURCES=true refuses" in preview["steps"][0]["error"]
    validation = stack.post("/api/jobs/validate", json=draft).json()
    assert not validation["ok"]
    assert any(not c["ok"] and "superuser" in c["message"] for c in validation["checks"])


def run_job(client: TestClient, src: int, dst_path, validate: bool) -> dict:
    dst = client.post("/api/projects", json={"name": unique_name("dst"), "engine": "sqlite",
                                             "database": str(dst_path)}).json()["id"]
    job = client.post("/api/jobs", json={
        "name": unique_name("job"), "max_retries": 2, "validate_before_execution": validate,
        "steps": [{"name": "users", "project_id": src, "sql": "SELECT id, name FROM users"}],
        "destination": {"project_id": dst, "table": "users_copy", "mode": "truncate_load"}}).json()
    execution_id = client.post(f"/api/jobs/{job['id']}/execute").json()["execution_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        execution = client.get(f"/api/executions/{execution_id}").json()
        if execution["status"] not in ("queued", "running"):
            history = client.get("/api/executions", params={"job_id": job["id"]}).json()
            return {**execution, "attempts_in_history": history["total"]}
        time.sleep(0.2)
    raise AssertionError(f"execution {execution_id} did not finish: {execution}")


@pytest.mark.parametrize("validate", [True, False])
def test_history_warns_about_a_privileged_source_and_strict_mode_fails_it_without_retry(
        stack, source, tmp_path, monkeypatch, validate) -> None:
    src = project(stack, "src", source[0])
    dst_path = tmp_path / "dst.sqlite"
    with sqlite3.connect(dst_path) as db:
        db.execute("CREATE TABLE users_copy (id INTEGER, name TEXT)")
    done = run_job(stack, src, dst_path, validate)
    assert done["status"] == "completed" and done["warnings"] == {"source_privileged": 1}
    assert any("superuser" in line["message"] and line["check"].startswith("source role privileges")
               for line in done["report"])
    with sqlite3.connect(dst_path) as db:
        assert db.execute("SELECT count(*) FROM users_copy").fetchone() == (3,)

    monkeypatch.setenv("DM_STRICT_SOURCES", "true")
    refused = run_job(stack, src, tmp_path / "dst.sqlite", validate)
    assert refused["status"] == "failed" and refused["attempts_in_history"] == 1
    assert "superuser" in refused["error"]["message"] and "DM_STRICT_SOURCES=true" in refused["error"]["message"]

    reader = project(stack, "reader", source[1])  # a read-only role: no warning, strict mode runs it
    done = run_job(stack, reader, tmp_path / "dst.sqlite", validate)
    assert done["status"] == "completed" and done["warnings"] == {}
