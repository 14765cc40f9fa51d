"""A planted secret never leaves: not in API answers, logs, history, metrics or the store."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.conftest import AMQP_URL, PG_URL, require_service
from tests.e2e.faults import create_job, execute, execution, make_destination, make_source, snapshot, wait_for

pytestmark = pytest.mark.e2e
SECRET = "Planted-S3cret-0f-the-test"


def test_a_planted_password_appears_nowhere(stacks, pg_database) -> None:
    require_service("PostgreSQL", PG_URL)
    require_service("RabbitMQ", AMQP_URL)
    metadata, src, dst = pg_database(), pg_database(), pg_database()
    make_source(src, rows=5000)
    make_destination(dst)
    # trust authentication ignores the password, so the job works while carrying it everywhere
    # and as a secret option (libpq ignores sslpassword without a client key), which travels the same way
    secret_src = make_url(src).set(password=SECRET).update_query_dict({"sslpassword": SECRET})\
        .render_as_string(hide_password=False)
    unreachable = make_url(src).set(password=SECRET, port=1).update_query_dict({"sslpassword": SECRET})\
        .render_as_string(hide_password=False)
    stack = stacks(metadata, DM_LOG_JSON="true", DM_LOG_LEVEL="DEBUG")
    good = execute(stack, create_job(stack, secret_src, dst, mode="truncate_load"))
    wait_for(lambda: execution(stack, good)["status"] == "completed", what="good run", stack=stack)
    assert snapshot(dst)[0] == 5000
    with stack.api as api:
        bad_project = api.post("/api/projects", json={"name": "unreachable", "url": unreachable}).json()
        dst_id = [p["id"] for p in api.get("/api/projects").json() if p["name"] == "destination"][0]
        job = api.post("/api/jobs", json={
            "name": "broken", "max_retries": 0,
            "steps": [{"name": "s", "project_id": bad_project["id"], "sql": "SELECT 1 AS id"}],
            "destination": {"project_id": dst_id, "table": "items"}}).json()
        bad = api.post(f"/api/jobs/{job['id']}/execute").json()["execution_id"]
    wait_for(lambda: execution(stack, bad)["status"] == "failed", what="failed run", stack=stack)

    answers = []
    with stack.api as api:
        for path in ("/api/projects", "/api/jobs", "/api/executions", "/api/audit", f"/api/executions/{bad}/errors",
                     f"/api/executions/{good}", f"/api/projects/{bad_project['id']}", "/metrics"):
            answers.append(api.get(path).text)
        answers.append(api.post(f"/api/projects/{bad_project['id']}/test").text)
    assert "unreachable" in answers[4] or "refused" in answers[4].lower() or "port 1" in answers[4]
    assert all(SECRET not in text for text in answers)
    logs = stack.all_logs()
    assert "execution_id" in logs and SECRET not in logs
    json_lines = [json.loads(line) for line in stack.log("loader").splitlines() if line.startswith("{")]
    assert any(line.get("execution_id") == good for line in json_lines)
    engine = sa.create_engine(metadata)
    with engine.connect() as conn:
        tables = conn.exec_driver_sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").scalars().all()
        dump = "".join(str(conn.exec_driver_sql(f"SELECT * FROM {t}").all()) for t in tables)
    engine.dispose()
    assert "dm_projects" in tables and SECRET not in dump
