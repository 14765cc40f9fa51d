"""The HTTP API's resources and their validation, on SQLite + in-memory transport."""
from __future__ import annotations

import sqlite3

import pytest
from fastapi.testclient import TestClient

from tests.unit.api_fixtures import api, job_body, sqlite_project  # noqa: F401 - fixture

SECRET = "s3cr3t-Pa55word!"


def test_project_password_is_write_only_and_url_masked(api: TestClient) -> None:
    r = api.post("/api/projects", json={"name": "pg", "url": f"postgresql://bob:{SECRET}@db.example:5432/app"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["engine"] == "postgresql" and body["has_password"] is True
    assert SECRET not in r.text and "password" not in body
    assert body["url"] == "postgresql://bob:***@db.example:5432/app"
    listing = api.get("/api/projects").text + api.get(f"/api/projects/{body['id']}").text
    assert SECRET not in listing


def test_project_from_host_fields(api: TestClient) -> None:
    r = api.post("/api/projects", json={"name": "maria", "engine": "mysql", "host": "127.0.0.1",
                                        "database": "test", "username": "root", "password": SECRET})
    assert r.status_code == 201 and r.json()["port"] is None and SECRET not in r.text


@pytest.mark.parametrize("body, field, words", [
    ({"name": "x"}, "", "engine is required"),
    ({"name": "x", "engine": "oracle", "host": "h", "database": "d"}, "engine", "postgresql"),
    ({"name": "x", "url": "foo://bar"}, "", "unsupported database engine"),
    ({"name": "", "engine": "sqlite", "database": "/tmp/x"}, "name", "at least 1"),
    ({"name": "x", "engine": "postgresql", "database": "d"}, "", "host and database are required"),
])
def test_project_validation_names_the_problem(api: TestClient, body: dict, field: str, words: str) -> None:
    r = api.post("/api/projects", json=body)
    assert r.status_code == 422
    errors = r.json()["detail"]
    assert any(field in e["field"] and words in e["msg"] for e in errors), errors


def test_duplicate_project_name_is_a_field_error(api: TestClient, tmp_path) -> None:
    sqlite_project(api, "a", tmp_path / "a.db")
    r = api.post("/api/projects", json={"name": "a", "engine": "sqlite", "database": str(tmp_path / "b.db")})
    assert r.status_code == 422 and "already exists" in r.json()["detail"][0]["msg"]


def test_job_round_trip_with_defaults(api: TestClient, tmp_path) -> None:
    src, dst = sqlite_project(api, "src", tmp_path / "s.db"), sqlite_project(api, "dst", tmp_path / "d.db")
    r = api.post("/api/jobs", json=job_body(src, dst))
    assert r.status_code == 201, r.text
    job = r.json()
    assert (job["max_retries"], job["timeout_minutes"], job["enabled"], job["validate_before_execution"]) == (
        3, 30, False, True)
    assert job["timezone"] == "UTC" and job["schedule"] == "" and job["next_run_at"] is None
    assert api.get(f"/api/jobs/{job['id']}").json()["steps"][0]["sql"] == "SELECT id, name FROM users"


@pytest.mark.parametrize("change, field, words", [
    ({"name": ""}, "name", "at least 1"),
    ({"steps": [{"name": "s", "project_id": 1, "sql": "   "}]}, "steps.0.sql", "SQL must not be empty"),
    ({"steps": []}, "steps", "at least 1"),
    ({"max_retries": 11}, "max_retries", "less than or equal to 10"),
    ({"max_retries": -1}, "max_retries", "greater than or equal to 0"),
    ({"timeout_minutes": 0}, "timeout_minutes", "greater than or equal to 1"),
    ({"timeout_minutes": 1441}, "timeout_minutes", "less than or equal to 1440"),
    ({"schedule": "61 * * * *"}, "schedule", "out of range"),
    ({"schedule": "* * *"}, "schedule", "5 fields"),
    ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
    ({"destination": {"project_id": 2, "table": "a.b.c", "mode": "insert_only"}}, "destination.table", "schema.table"),
    ({"destination": {"project_id": 2, "table": "t; DROP TABLE x", "mode": "insert_only"}}, "destination.table", "schema.table"),
    ({"destination": {"project_id": 2, "table": "t", "mode": "merge"}}, "destination.mode", "upsert"),
    ({"surprise": 1}, "surprise", "not permitted"),
])
def test_job_validation_names_field_and_reason(api: TestClient, tmp_path, change: dict, field: str,
                                                words: str) -> None:
    src, dst = sqlite_project(api, "src", tmp_path / "s.db"), sqlite_project(api, "dst", tmp_path / "d.db")
    r = api.post("/api/jobs", json=job_body(src, dst, **change))
    assert r.status_code == 422, r.text
    errors = r.json()["detail"]
    assert any(e["field"] == field and words in e["msg"] for e in errors), errors


def test_unknown_project_is_named(api: TestClient, tmp_path) -> None:
    src = sqlite_project(api, "src", tmp_path / "s.db")
    r = api.post("/api/jobs", json=job_body(src, 999))
    assert r.status_code == 422
    assert r.json()["detail"] == [{"loc": ["body", "destination", "project_id"],
                                   "field": "destination.project_id", "msg": "unknown project 999"}]


def test_schedule_shows_next_run_and_description(api: TestClient, tmp_path) -> None:
    src, dst = sqlite_project(api, "src", tmp_path / "s.db"), sqlite_project(api, "dst", tmp_path / "d.db")
    job = api.post("/api/jobs", json=job_body(src, dst, schedule="0 */6 * * *", enabled=True)).json()
    assert job["schedule_description"] == "Every 6 hours"
    assert job["next_run_at"] is not None and job["next_run_at"][11:13] in ("00", "06", "12", "18")
    disabled = api.patch(f"/api/jobs/{job['id']}", json={"enabled": False}).json()
    assert disabled["enabled"] is False and disabled["next_run_at"] is None


def test_execute_queues_and_delete_archives_keeping_history(api: TestClient, tmp_path) -> None:
    src, dst = sqlite_project(api, "src", tmp_path / "s.db"), sqlite_project(api, "dst", tmp_path / "d.db")
    job = api.post("/api/jobs", json=job_body(src, dst)).json()
    r = api.post(f"/api/jobs/{job['id']}/execute")
    assert r.status_code == 202 and r.json()["status"] == "queued"
    execution_id = r.json()["execution_id"]
    assert api.delete(f"/api/jobs/{job['id']}").status_code == 204
    assert api.get("/api/jobs").json() == []
    assert api.get(f"/api/jobs/{job['id']}").json()["archived"] is True
    history = api.get("/api/executions", params={"job_id": job["id"]}).json()
    assert history["total"] == 1 and history["items"][0]["id"] == execution_id
    assert api.post(f"/api/jobs/{job['id']}/execute").status_code == 409


def test_cancel_of_an_undispatched_execution_is_immediate(api: TestClient, tmp_path) -> None:
    src, dst = sqlite_project(api, "src", tmp_path / "s.db"), sqlite_project(api, "dst", tmp_path / "d.db")
    job = api.post("/api/jobs", json=job_body(src, dst)).json()
    execution_id = api.post(f"/api/jobs/{job['id']}/execute").json()["execution_id"]
    r = api.post(f"/api/executions/{execution_id}/cancel")
    assert r.status_code == 202 and r.json()["status"] == "cancelled"
    assert api.post(f"/api/executions/{execution_id}/cancel").status_code == 409


def test_history_filters_and_pagination(api: TestClient, tmp_path) -> None:
    src, dst = sqlite_project(api, "src", tmp_path / "s.db"), sqlite_project(api, "dst", tmp_path / "d.db")
    job = api.post("/api/jobs", json=job_body(src, dst)).json()
    ids = [api.post(f"/api/jobs/{job['id']}/execute").json()["execution_id"] for _ in range(3)]
    api.post(f"/api/executions/{ids[0]}/cancel")
    page = api.get("/api/executions", params={"limit": 2}).json()
    assert page["total"] == 3 and [i["id"] for i in page["items"]] == [ids[2], ids[1]]
    by_status = api.get("/api/executions", params=[("status", "cancelled"), ("status", "failed")]).json()
    assert [i["id"] for i in by_status["items"]] == [ids[0]]
    assert api.get("/api/executions", params={"start_date": "2999-01-01T00:00:00"}).json()["total"] == 0
    assert api.get("/api/executions", params={"status": "bogus"}).status_code == 422
    assert api.get("/api/executions", params={"limit": 10**9}).status_code == 422


def test_health_and_openapi(api: TestClient) -> None:
    health = api.get("/healthz")
    assert health.status_code == 200 and health.json()["metadata_store"] and health.json()["broker"]
    assert "/api/jobs/{job_id}/execute" in api.get("/openapi.json").json()["paths"]


def test_password_given_in_url_is_stored_encrypted_not_in_the_url(api: TestClient) -> None:
    import sqlalchemy as sa

    r = api.post("/api/projects", json={"name": "pg2", "url": f"postgresql://bob:{SECRET}@db:5432/app"})
    assert r.status_code == 201
    store = api.app.state.runtime.store
    with store.connect() as conn:
        stored = conn.execute(sa.text("SELECT url, password_enc FROM dm_projects WHERE name = 'pg2'")).one()
    assert SECRET not in stored.url and stored.password_enc and SECRET not in stored.password_enc


def test_manual_execution_never_shifts_the_schedule(api: TestClient, tmp_path) -> None:
    src, dst = sqlite_project(api, "src", tmp_path / "s.db"), sqlite_project(api, "dst", tmp_path / "d.db")
    job = api.post("/api/jobs", json=job_body(src, dst, schedule="0 2 * * *", enabled=True)).json()
    assert api.post(f"/api/jobs/{job['id']}/execute").status_code == 202
    assert api.get(f"/api/jobs/{job['id']}").json()["next_run_at"] == job["next_run_at"]


def test_unsaved_settings_can_be_tested_before_saving(api: TestClient, tmp_path) -> None:
    sqlite3.connect(tmp_path / "n.db").close()  # testing never creates the file: it must exist
    good = api.post("/api/projects/test", json={"name": "new", "engine": "sqlite", "database": str(tmp_path / "n.db")})
    assert good.status_code == 200 and good.json()["ok"] is True
    bad = api.post("/api/projects/test", json={"name": "new", "url": f"postgresql://u:{SECRET}@127.0.0.1:1/x"})
    assert bad.status_code == 200 and bad.json()["ok"] is False and SECRET not in bad.text
    assert api.post("/api/projects/test", json={"name": ""}).status_code == 422
