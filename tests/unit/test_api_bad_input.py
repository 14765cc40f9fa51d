"""Bad input is a 422 naming the field, never a 500: schedules that never fire or are not
standard, NUL characters (on the PostgreSQL metadata store, which refuses them), unknown
fields in preview/validate bodies."""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from shared.bootstrap import build_secret_box, build_store, build_transport
from tests.unit.api_fixtures import (AUTH, api, job_body, make_settings, refuse_nul_like_postgresql,  # noqa: F401
                                     sqlite_project)

NEVER_FIRES = ["0 2 31 2 *", "0 0 30 2 *", "0 0 31 4 *"]
NOT_STANDARD = ["0 0 L * 5#2", "0 0 * * 5#2", "0 0 15W * *", "0 0 ? * *"]


def _fields(r) -> dict[str, str]:  # type: ignore[no-untyped-def]
    assert r.status_code == 422, r.text
    return {e["field"]: e["msg"] for e in r.json()["detail"]}


@pytest.fixture
def pg_api(tmp_path: Path, pg_database: Callable[[], str]) -> Iterator[TestClient]:
    """The API on a PostgreSQL metadata store (it refuses NUL characters in text)."""
    settings = make_settings(tmp_path, database_url=pg_database())
    transport, topology = build_transport(settings, name="test")
    store = build_store(settings)
    app = create_app(settings, transport, store=store, box=build_secret_box(settings), topology=topology)
    with TestClient(app, headers=AUTH) as client:
        yield client
    transport.close()
    store.dispose()


def _two_projects(client: TestClient, tmp_path: Path) -> tuple[int, int]:
    return sqlite_project(client, "src", tmp_path / "src.db"), sqlite_project(client, "dst", tmp_path / "dst.db")


@pytest.mark.parametrize("schedule", NEVER_FIRES + NOT_STANDARD)
def test_schedule_preview_of_a_schedule_that_never_fires_or_is_not_standard_is_a_422(
        api: TestClient, schedule: str) -> None:  # noqa: F811
    msg = _fields(api.get("/api/schedule/preview", params={"schedule": schedule}))["schedule"]
    assert ("never fires" in msg) if schedule in NEVER_FIRES else ("not a standard cron expression" in msg)


@pytest.mark.parametrize("schedule", NEVER_FIRES + NOT_STANDARD[:1])
def test_saving_an_enabled_job_whose_schedule_never_fires_is_a_422_on_post_put_and_patch(
        api: TestClient, tmp_path: Path, schedule: str) -> None:  # noqa: F811
    src, dst = _two_projects(api, tmp_path)
    assert "schedule" in _fields(api.post("/api/jobs", json=job_body(src, dst, schedule=schedule, enabled=True)))
    job = api.post("/api/jobs", json=job_body(src, dst)).json()
    assert "schedule" in _fields(api.put(f"/api/jobs/{job['id']}",
                                         json=job_body(src, dst, schedule=schedule, enabled=True)))
    assert "schedule" in _fields(api.patch(f"/api/jobs/{job['id']}", json={"schedule": schedule, "enabled": True}))
    assert api.get(f"/api/jobs/{job['id']}").json()["schedule"] == ""


def test_a_leap_day_schedule_is_accepted(api: TestClient, tmp_path: Path) -> None:  # noqa: F811
    r = api.get("/api/schedule/preview", params={"schedule": "0 0 29 2 *", "count": 2})
    assert r.status_code == 200 and all(run[5:10] == "02-29" for run in r.json()["next_runs"])


def test_nul_characters_are_a_422_naming_the_field_on_the_postgresql_store(pg_api: TestClient,
                                                                           tmp_path: Path) -> None:
    # Given a PostgreSQL metadata store, which cannot hold "\x00" in text
    src, dst = _two_projects(pg_api, tmp_path)
    # When names, descriptions, SQL or project fields carry a NUL character: 422 naming each field
    body = job_body(src, dst, name="a\x00b", description="d\x00")
    body["steps"][0]["sql"] = "SELECT 1\x00"
    assert set(_fields(pg_api.post("/api/jobs", json=body))) == {"name", "description", "steps.0.sql"}
    job = pg_api.post("/api/jobs", json=job_body(src, dst)).json()
    assert "name" in _fields(pg_api.put(f"/api/jobs/{job['id']}", json=job_body(src, dst, name="x\x00")))
    assert "description" in _fields(pg_api.patch(f"/api/jobs/{job['id']}", json={"description": "\x00"}))
    assert "name" in _fields(pg_api.post("/api/projects", json={"name": "p\x00", "engine": "sqlite",
                                                                "database": str(tmp_path / "x.db")}))
    assert "options" in _fields(pg_api.put(f"/api/projects/{src}", json={
        "name": "src", "engine": "sqlite", "database": str(tmp_path / "src.db"), "options": {"a": "b\x00"}}))
    assert "steps.0.name" in _fields(pg_api.post("/api/jobs/validate", json={
        "steps": [{"name": "s\x00", "project_id": src, "sql": "SELECT 1"}]}))
    # Then nothing was stored, and the store still answers
    assert [j["name"] for j in pg_api.get("/api/jobs").json()] == ["Copy users"]


@pytest.mark.parametrize("route", ["/api/jobs/preview", "/api/jobs/validate", "/api/jobs/flow"])
def test_unknown_fields_in_draft_bodies_are_a_422_naming_the_field(api: TestClient, tmp_path: Path,
                                                                   route: str) -> None:  # noqa: F811
    src, _ = _two_projects(api, tmp_path)
    body = {"steps": [{"name": "s", "project_id": src, "sql": "SELECT 1 AS x"}], "limitt": 5}
    assert "limitt" in _fields(api.post(route, json=body))


def _string_leaves(value: Any, path: tuple = ()) -> Iterator[tuple]:
    """Paths of every text value in a JSON body, and of the keys of free-form maps (options)."""
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for k, v in value.items():
            if path[-1:] == ("options",):
                yield (*path, ("key", k))
            yield from _string_leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _string_leaves(v, (*path, i))


def _with_nul(body: Any, path: tuple) -> Any:
    body = copy.deepcopy(body)
    *parents, last = path
    holder = body
    for p in parents:
        holder = holder[p]
    if isinstance(last, tuple):  # a dict key
        holder[last[1] + "\x00"] = holder.pop(last[1])
    else:
        holder[last] = holder[last][:1] + "\x00" + holder[last][1:]
    return body


def _expected_field(path: tuple) -> str:
    """The field a 422 names: a list of texts or a map is named as a whole."""
    if path and isinstance(path[-1], int):
        path = path[:-1]
    parts: list[str] = []
    for p in path:
        if isinstance(p, tuple) or parts[-1:] == ["options"]:
            break
        parts.append(str(p))
    return ".".join(parts)


def test_a_nul_in_any_text_field_of_any_writing_route_is_a_422_naming_it(tmp_path: Path) -> None:
    # Given a store that refuses NUL characters as PostgreSQL does, and valid bodies for every writing route
    settings = make_settings(tmp_path)
    transport, topology = build_transport(settings, name="test")
    store = build_store(settings)
    refuse_nul_like_postgresql(store)
    app = create_app(settings, transport, store=store, box=build_secret_box(settings), topology=topology)
    with TestClient(app, headers=AUTH) as client:
        src, dst = _two_projects(client, tmp_path)
        job = client.post("/api/jobs", json=job_body(src, dst)).json()["id"]
        project = {"name": "p", "engine": "sqlite", "database": str(tmp_path / "p.db"), "username": "u",
                   "options": {"timeout": "5"}}
        draft = {"steps": [{"name": "s", "description": "d", "project_id": src, "sql": "SELECT 1 AS x"}],
                 "destination": {"project_id": dst, "table": "t", "mode": "upsert", "key_columns": ["x"]}}
        full = job_body(src, dst, description="d", schedule="0 2 * * *", timezone="UTC")
        routes = [("POST", "/api/projects", project), ("PUT", f"/api/projects/{src}", project),
                  ("POST", "/api/projects/test", project), ("POST", "/api/jobs", full),
                  ("PUT", f"/api/jobs/{job}", full), ("PATCH", f"/api/jobs/{job}", {
                      "name": "n", "description": "d", "schedule": "0 2 * * *", "timezone": "UTC"}),
                  ("POST", "/api/jobs/validate", draft), ("POST", "/api/jobs/preview", draft),
                  ("POST", "/api/jobs/flow", draft)]
        # When a NUL character is put into each text value and key, one at a time
        for method, url, body in routes:
            for path in _string_leaves(body):
                r = client.request(method, url, json=_with_nul(body, path))
                # Then each is a 422 naming that field, never a 500
                assert r.status_code == 422, (method, url, path, r.status_code, r.text)
                assert _expected_field(path) in {e["field"] for e in r.json()["detail"]}, (method, url, path, r.text)
    transport.close()


def test_a_job_saved_with_a_schedule_now_refused_stays_readable_and_must_be_fixed_to_change(
        api: TestClient, tmp_path: Path) -> None:  # noqa: F811
    # Given a job saved before such schedules were refused
    src, dst = _two_projects(api, tmp_path)
    job = api.post("/api/jobs", json=job_body(src, dst)).json()["id"]
    with api.app.state.runtime.sessions() as session:
        from shared.store.models import JobRow
        session.get(JobRow, job).schedule = "0 0 L * 5#2"
        session.commit()
    # Then it can still be read and previewed, and a change that keeps the schedule names it
    assert api.get(f"/api/jobs/{job}").json()["schedule"] == "0 0 L * 5#2"
    assert api.get(f"/api/jobs/{job}/flow").status_code == 200
    assert "schedule" in _fields(api.patch(f"/api/jobs/{job}", json={"enabled": False}))
    assert api.patch(f"/api/jobs/{job}", json={"schedule": "0 0 * * 5"}).status_code == 200
