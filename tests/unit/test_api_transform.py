"""The transform through the HTTP API on SQLite projects: saved, checked, previewed, validated, drawn."""
from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.unit.api_fixtures import api, job_body, sqlite_project  # noqa: F401  (api is a fixture)

TRANSFORM = ("SELECT id AS user_id, lower(name) AS email, CASE WHEN orders > 10 THEN 'gold' ELSE 'std' END AS tier "
             "FROM @result1 WHERE id <> 2")


@pytest.fixture
def projects(api: TestClient, tmp_path: Path) -> tuple[int, int]:  # noqa: F811
    src, dst = tmp_path / "src.sqlite", tmp_path / "dst.sqlite"
    for path, ddl, rows in ((src, "CREATE TABLE users (id integer PRIMARY KEY, name text, orders integer)",
                             "INSERT INTO users VALUES (1, 'ANN@X', 12), (2, 'Bob@x', 1), (3, 'Çé@X', 0)"),
                            (dst, "CREATE TABLE tiers (user_id integer PRIMARY KEY, email text, tier text)", None)):
        engine = sa.create_engine(f"sqlite:///{path}")
        with engine.begin() as conn:
            conn.exec_driver_sql(ddl)
            if rows:
                conn.exec_driver_sql(rows)
        engine.dispose()
    return sqlite_project(api, "src", src), sqlite_project(api, "dst", dst)


def draft(projects: tuple[int, int], **extra: object) -> dict:
    """An unsaved job as the editor sends it for preview/validate: steps, destination, transform."""
    b = body(projects)
    return {"steps": b["steps"], "destination": b["destination"], **extra}


def body(projects: tuple[int, int], **extra: object) -> dict:
    src, dst = projects
    return job_body(src, dst, steps=[{"name": "users", "project_id": src, "sql": "SELECT * FROM users"}],
                    destination={"project_id": dst, "table": "tiers", "mode": "upsert"}, **extra)


def test_a_job_keeps_its_transform_and_a_blank_one_is_none(api: TestClient, projects: tuple[int, int]) -> None:  # noqa: F811
    r = api.post("/api/jobs", json=body(projects, transform=TRANSFORM))
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    assert api.get(f"/api/jobs/{job_id}").json()["transform"] == TRANSFORM
    assert api.patch(f"/api/jobs/{job_id}", json={"transform": ""}).json()["transform"] is None
    assert api.post("/api/jobs", json=body(projects, name="no transform")).json()["transform"] is None


def test_a_transform_reading_a_missing_step_is_a_422_naming_the_field(api: TestClient,  # noqa: F811
                                                                     projects: tuple[int, int]) -> None:
    r = api.post("/api/jobs", json=body(projects, transform="SELECT * FROM @result9"))
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert any("transform" in (d.get("loc") or []) and "@result9 refers to a missing step" in d["msg"]
               for d in detail), detail


def test_preview_shows_the_transformed_rows_and_checks_them_against_the_destination(
        api: TestClient, projects: tuple[int, int]) -> None:  # noqa: F811
    r = api.post("/api/jobs/preview", json=draft(projects, transform=TRANSFORM))
    assert r.status_code == 200, r.text
    out = r.json()
    assert [c["name"] for c in out["steps"][0]["columns"]] == ["id", "name", "orders"]
    assert [c["name"] for c in out["transform"]["columns"]] == ["user_id", "email", "tier"]
    assert out["transform"]["rows"] == [[1, "ann@x", "gold"], [3, "çé@x", "std"]]
    assert out["transform"]["row_count"] == 2 and out["transform"]["error"] is None
    assert out["destination"] and all(c["ok"] for c in out["destination"]), out["destination"]


def test_validation_checks_the_transform_columns_against_the_destination(api: TestClient,  # noqa: F811
                                                                         projects: tuple[int, int]) -> None:
    good = api.post("/api/jobs/validate", json=draft(projects, transform=TRANSFORM)).json()
    assert good["ok"], [c for c in good["checks"] if not c["ok"]]
    assert any(c["check"] == "the transform parses and plans" and c["ok"] for c in good["checks"])
    # the step's own columns (id, name, orders) do not fit the table; the transform's do, and a wrong one does not
    assert not api.post("/api/jobs/validate", json=draft(projects)).json()["ok"]
    bad = api.post("/api/jobs/validate", json=draft(projects, transform="SELECT id AS nope FROM @result1"))
    assert not bad.json()["ok"] and any("nope" in c["message"] for c in bad.json()["checks"] if not c["ok"])


def test_a_transform_sql_error_names_the_transform(api: TestClient, projects: tuple[int, int]) -> None:  # noqa: F811
    out = api.post("/api/jobs/preview", json=draft(projects, transform="SELECT missing FROM @result1")).json()
    assert out["steps"][0]["error"] is None
    assert out["transform"]["error"].startswith("the transform: Binder Error")
    checks = api.post("/api/jobs/validate", json=draft(projects, transform="SELECT missing FROM @result1")).json()
    failed = [c for c in checks["checks"] if not c["ok"]]
    assert [c["check"] for c in failed] == ["the transform parses and plans"]
    assert failed[0]["message"].startswith("the transform:") and "step 1" not in failed[0]["message"]


def test_the_flow_puts_the_transform_between_the_last_step_and_the_destination(
        api: TestClient, projects: tuple[int, int]) -> None:  # noqa: F811
    out = api.post("/api/jobs/flow", json={"steps": body(projects)["steps"], "transform": TRANSFORM}).json()
    assert out["transform"] == {"id": "transform", "references": [1]}
    assert api.post("/api/jobs/flow", json={"steps": body(projects)["steps"]}).json()["transform"] is None
