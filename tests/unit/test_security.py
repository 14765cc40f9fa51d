"""Authentication, roles, tokens, audit and hostile input on the HTTP API."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.api.server import ensure_first_token
from shared.bootstrap import build_secret_box, build_store, build_transport
from shared.store.db import session_factory
from shared.store.tokens import create_token, revoke_token
from tests.unit.api_fixtures import api, job_body, make_settings, sqlite_project  # noqa: F401 - fixture

PUBLIC = {"/healthz", "/", "/metrics"}
READ_ONLY_POSTS = {("POST", "/api/jobs/1/compare")}  # reads both sides read-only: viewers may call it


def api_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every documented /api operation, with ids filled in."""
    paths = client.get("/openapi.json").json()["paths"]
    return sorted((method.upper(), re.sub(r"\{[^}]+\}", "1", path))
                  for path, ops in paths.items() if path.startswith("/api") for method in ops)


def make_token(client: TestClient, role: str) -> str:
    with client.app.state.runtime.sessions() as session:
        _, token = create_token(session, name=f"a {role}", role=role)
        session.commit()
    return token


def test_every_api_route_needs_a_token(api: TestClient) -> None:
    routes = api_routes(api)
    assert len(routes) > 20
    for method, path in routes:
        r = api.request(method, path, headers={"Authorization": ""})
        assert r.status_code == 401, (method, path, r.status_code)
        bad = api.request(method, path, headers={"Authorization": "Bearer not-a-token"})
        assert bad.status_code == 401, (method, path, bad.status_code)


def test_viewer_reads_but_cannot_write(api: TestClient, tmp_path: Path) -> None:
    sqlite_project(api, "src", tmp_path / "s.db")
    viewer = {"Authorization": f"Bearer {make_token(api, 'viewer')}"}
    assert api.get("/api/projects", headers=viewer).status_code == 200
    for method, path in api_routes(api):
        if method not in ("GET", "HEAD") and (method, path) not in READ_ONLY_POSTS:
            r = api.request(method, path, headers=viewer, json={})
            assert r.status_code == 403, (method, path, r.status_code)
            assert "editor" in r.json()["detail"]
    for method, path in READ_ONLY_POSTS:
        assert api.request(method, path, headers=viewer, json={}).status_code == 404  # allowed; no job 1


def test_editor_token_works_and_revoked_token_does_not(api: TestClient, tmp_path) -> None:
    token = make_token(api, "editor")
    headers = {"Authorization": f"Bearer {token}"}
    assert api.post("/api/projects", headers=headers,
                    json={"name": "x", "engine": "sqlite", "database": str(tmp_path / "x.db")}).status_code == 201
    with api.app.state.runtime.sessions() as session:
        assert revoke_token(session, "a editor") == 1
        session.commit()
    assert api.get("/api/projects", headers=headers).status_code == 401


def test_health_is_open_and_metrics_open_by_default(api: TestClient) -> None:
    assert api.get("/healthz", headers={"Authorization": ""}).status_code == 200
    assert api.get("/metrics", headers={"Authorization": ""}).status_code == 200


def test_metrics_can_require_a_token(tmp_path: Path) -> None:
    config = make_settings(tmp_path, metrics_auth=True)
    transport, topology = build_transport(config, name="t")
    app = create_app(config, transport, store=build_store(config), box=build_secret_box(config), topology=topology)
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": f"Bearer {config.admin_token}"}).status_code == 200


def test_first_token_is_created_and_printed_once(tmp_path: Path, capsys) -> None:
    config = make_settings(tmp_path, admin_token="")
    sessions = session_factory(build_store(config))
    with sessions() as session:
        ensure_first_token(session, config)
        ensure_first_token(session, config)
    printed = capsys.readouterr().err
    tokens = re.findall(r"dm_[A-Za-z0-9_-]{20,}", printed)
    assert len(tokens) == 1
    with sessions() as session:
        from shared.store.tokens import authenticate

        assert authenticate(session, tokens[0]).role == "editor"
        from shared.store.models import TokenRow

        assert tokens[0] not in str([r.token_hash for r in session.query(TokenRow)])


def test_audit_records_who_did_what(api: TestClient, tmp_path: Path) -> None:
    src, dst = sqlite_project(api, "src", tmp_path / "s.db"), sqlite_project(api, "dst", tmp_path / "d.db")
    job = api.post("/api/jobs", json=job_body(src, dst)).json()
    api.patch(f"/api/jobs/{job['id']}", json={"enabled": True, "schedule": "0 2 * * *"})
    api.patch(f"/api/jobs/{job['id']}", json={"enabled": False})
    api.post(f"/api/jobs/{job['id']}/execute")
    api.delete(f"/api/jobs/{job['id']}")
    items = api.get("/api/audit", params={"job_id": job["id"]}).json()["items"]
    actions = [i["action"] for i in reversed(items)]
    assert actions == ["job.create", "job.enable", "job.update", "job.disable", "job.execute", "job.archive"]
    assert {i["actor"] for i in items} == {"admin (DM_ADMIN_TOKEN)"}
    assert [i for i in items if i["action"] == "job.update"][0]["details"]["fields"] == ["schedule"]


@pytest.mark.parametrize("body, status", [
    ({"name": "x", "engine": "sqlite", "database": "d" * 3_000_000}, 413),
    ({"name": ["not", "a", "string"], "engine": "sqlite", "database": "/tmp/x"}, 422),
    ({"name": "x", "engine": "sqlite", "database": "/tmp/x", "admin": True}, 422),
])
def test_hostile_project_bodies_get_a_clear_4xx(api: TestClient, body: dict, status: int) -> None:
    r = api.post("/api/projects", json=body)
    assert r.status_code == status, r.text
    assert r.json()["detail"]


def test_deeply_nested_json_is_a_4xx(api: TestClient) -> None:
    nested = "[" * 100_000 + "]" * 100_000
    r = api.post("/api/projects", content=nested, headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500


def test_oversize_sql_and_malformed_json_are_4xx(api: TestClient, tmp_path: Path) -> None:
    src, dst = sqlite_project(api, "src", tmp_path / "s.db"), sqlite_project(api, "dst", tmp_path / "d.db")
    body = job_body(src, dst)
    body["steps"][0]["sql"] = "SELECT 1 -- " + "x" * 1_000_001
    r = api.post("/api/jobs", json=body)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "steps.0.sql"
    r = api.post("/api/jobs", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422


@pytest.mark.parametrize("table", ['t"; DROP TABLE x; --', "a.b.c", "1abc", "t t", "`t`", "t;", ""])
def test_injection_in_table_names_is_rejected(api: TestClient, tmp_path: Path, table: str) -> None:
    src, dst = sqlite_project(api, "src", tmp_path / "s.db"), sqlite_project(api, "dst", tmp_path / "d.db")
    r = api.post("/api/jobs", json=job_body(src, dst, destination={"project_id": dst, "table": table}))
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "destination.table"


@pytest.mark.parametrize("key", ['id"; DROP TABLE x; --', "a b", "id)", "id.name"])
def test_injection_in_key_columns_is_rejected(api: TestClient, tmp_path: Path, key: str) -> None:
    src, dst = sqlite_project(api, "src", tmp_path / "s.db"), sqlite_project(api, "dst", tmp_path / "d.db")
    r = api.post("/api/jobs", json=job_body(src, dst, destination={"project_id": dst, "table": "t",
                                                                  "mode": "upsert", "key_columns": [key]}))
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "destination.key_columns"


def test_huge_ids_and_limits_are_4xx(api: TestClient) -> None:
    for path in ("/api/jobs/99999999999999999999", "/api/executions/-1", "/api/projects/0"):
        assert api.get(path).status_code == 422, path
    assert api.get("/api/executions", params={"limit": 10**12}).status_code == 422
    assert json.loads(api.get("/api/executions", params={"job_id": 2**40}).text)["detail"][0]["field"] == "job_id"
