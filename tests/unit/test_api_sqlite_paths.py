"""SQLite projects: the file must lie under DM_SQLITE_ROOT (default: the data directory), and
testing, previewing or validating never creates one (sources and checks open it read-only)."""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from shared.bootstrap import build_secret_box, build_store, build_transport
from tests.unit.api_fixtures import AUTH, api, make_settings, sqlite_project  # noqa: F401


def _field(r) -> str:  # type: ignore[no-untyped-def]
    assert r.status_code == 422, r.text
    return r.json()["detail"][0]["field"]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the data directory (tmp_path), i.e. outside the SQLite root."""
    path = tmp_path.parent / f"{tmp_path.name}-outside"
    path.mkdir()
    return path


def test_a_sqlite_file_outside_the_root_is_a_422_naming_the_field(api: TestClient, tmp_path: Path,  # noqa: F811
                                                                  outside: Path) -> None:
    target = outside / "victim.db"
    (tmp_path / "link").symlink_to(outside)
    cases = [({"engine": "sqlite", "database": str(target)}, "database"),
             ({"url": f"sqlite:///{target}"}, "url"),
             ({"engine": "sqlite", "database": str(tmp_path / ".." / outside.name / "victim.db")}, "database"),
             ({"engine": "sqlite", "database": str(tmp_path / "link" / "victim.db")}, "database"),
             ({"engine": "sqlite", "database": ":memory:"}, "database"),
             ({"url": f"sqlite:///file:{tmp_path / 'x.db'}?mode=rwc&uri=true"}, "url"),
             ({"engine": "sqlite", "database": str(tmp_path / "x.db"), "options": {"mode": "rwc"}}, "options")]
    for body, field in cases:
        for route in ("/api/projects", "/api/projects/test"):
            assert _field(api.post(route, json={"name": "p", **body})) == field, (route, body)
    ok = sqlite_project(api, "inside", tmp_path / "inside.db")
    assert _field(api.put(f"/api/projects/{ok}", json={"name": "inside", "engine": "sqlite",
                                                       "database": str(target)})) == "database"
    assert not target.exists() and list(outside.iterdir()) == []


def test_testing_or_previewing_a_missing_sqlite_file_never_creates_it(api: TestClient, tmp_path: Path) -> None:  # noqa: F811
    missing = tmp_path / "missing.db"
    r = api.post("/api/projects/test", json={"name": "p", "engine": "sqlite", "database": str(missing)})
    assert r.status_code == 200 and r.json()["ok"] is False and "unable to open" in r.json()["message"]
    project = sqlite_project(api, "p", missing)
    assert api.post(f"/api/projects/{project}/test").json()["ok"] is False
    step = {"name": "s", "project_id": project, "sql": "SELECT 1 AS one"}
    preview = api.post("/api/jobs/preview", json={"steps": [step]}).json()
    assert preview["steps"][0]["error"]
    validation = api.post("/api/jobs/validate", json={"steps": [step]}).json()
    assert validation["ok"] is False
    assert not missing.exists()


def test_an_existing_file_under_the_root_works_and_is_opened_read_only(api: TestClient, tmp_path: Path) -> None:  # noqa: F811
    path = tmp_path / "src.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x int)")
        db.execute("INSERT INTO t VALUES (1)")
    project = sqlite_project(api, "src", path)
    assert api.post(f"/api/projects/{project}/test").json()["ok"] is True
    step = {"name": "s", "project_id": project, "sql": "SELECT x FROM t"}
    assert api.post("/api/jobs/preview", json={"steps": [step]}).json()["steps"][0]["rows"] == [[1]]


def test_dm_sqlite_root_moves_the_allowed_directory(tmp_path: Path, outside: Path) -> None:
    settings = make_settings(tmp_path, sqlite_root=outside)
    transport, topology = build_transport(settings, name="test")
    app = create_app(settings, transport, store=build_store(settings), box=build_secret_box(settings),
                     topology=topology)
    with TestClient(app, headers=AUTH) as client:
        assert client.post("/api/projects", json={"name": "a", "engine": "sqlite",
                                                  "database": str(outside / "a.db")}).status_code == 201
        assert _field(client.post("/api/projects", json={"name": "b", "engine": "sqlite",
                                                         "database": str(tmp_path / "b.db")})) == "database"
    transport.close()
