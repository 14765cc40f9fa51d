"""Incremental jobs over the API: 422s that name the field and say why, PUT …/watermark."""
from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.unit.api_fixtures import api, job_body, sqlite_project  # noqa: F401

INCREMENTAL_SQL = "SELECT id, ts FROM logs WHERE ts > @watermark"


def _problem(r) -> str:  # type: ignore[no-untyped-def]
    assert r.status_code == 422, r.text
    return " | ".join(f"{e['field']}: {e['msg']}" for e in r.json()["detail"])


def _incremental_job(src: int, dst: int, sql: str = INCREMENTAL_SQL, **incremental: object) -> dict:
    return job_body(src, dst, steps=[{"name": "logs", "project_id": src, "sql": sql}],
                    incremental={"column": "ts", **incremental})


@pytest.fixture
def projects(api: TestClient, tmp_path: Path) -> tuple[int, int]:  # noqa: F811
    return sqlite_project(api, "src", tmp_path / "src.db"), sqlite_project(api, "dst", tmp_path / "dst.db")


@pytest.mark.parametrize("sql", [
    "SELECT id, ts FROM logs",
    "SELECT id, ts FROM logs WHERE note = '@watermark'",
    "SELECT id, ts FROM logs -- WHERE ts > @watermark",
    'SELECT "@watermark" FROM logs',
    "SELECT id FROM logs WHERE ts > x@watermark",
])
def test_an_incremental_job_whose_sql_does_not_use_watermark_is_a_422(
        api: TestClient, projects: tuple[int, int], sql: str) -> None:  # noqa: F811
    assert "no step's SQL uses @watermark" in _problem(api.post("/api/jobs", json=_incremental_job(*projects, sql=sql)))


def test_watermark_without_the_incremental_option_is_a_422_naming_the_step(
        api: TestClient, projects: tuple[int, int]) -> None:  # noqa: F811
    body = job_body(*projects, steps=[{"name": "logs", "project_id": projects[0], "sql": INCREMENTAL_SQL}])
    assert "step 1 uses @watermark but the job has no incremental option" in _problem(api.post("/api/jobs", json=body))


@pytest.mark.parametrize("field,value,words", [
    ("lag", "soon", "is not a lag"),
    ("lag", -5, "must not be negative"),
    ("initial", "yesterday", "is not an integer, a date"),
    ("column", "", "at least 1 character"),
])
def test_bad_incremental_fields_are_422s_naming_the_field(
        api: TestClient, projects: tuple[int, int], field: str, value: object, words: str) -> None:  # noqa: F811
    body = _incremental_job(*projects)
    body["incremental"][field] = value
    problem = _problem(api.post("/api/jobs", json=body))
    assert f"incremental.{field}" in problem and words in problem


@pytest.mark.parametrize("mode", ["truncate_load", "sync_delete"])
def test_an_incremental_job_that_would_remove_earlier_rows_is_a_422(
        api: TestClient, projects: tuple[int, int], mode: str) -> None:  # noqa: F811
    body = _incremental_job(*projects)
    body["destination"] = {**body["destination"], "mode": mode, "key_columns": ["id"]}
    assert f"mode {mode} would remove the rows loaded before" in _problem(api.post("/api/jobs", json=body))


def test_put_watermark_sets_resets_and_is_audited(api: TestClient, projects: tuple[int, int]) -> None:  # noqa: F811
    job = api.post("/api/jobs", json=_incremental_job(*projects, lag="10 minutes", initial="2026-01-01T00:00:00"))
    assert job.status_code == 201, job.text
    job_id = job.json()["id"]
    assert job.json()["incremental"]["lag"] == "10 minutes" and job.json()["watermark"] is None

    r = api.put(f"/api/jobs/{job_id}/watermark", json={"value": "2026-03-01T12:00:00"})
    assert r.status_code == 200, r.text
    assert r.json()["watermark"] == "2026-03-01 12:00:00"
    assert api.get(f"/api/jobs/{job_id}").json()["watermark"] == "2026-03-01 12:00:00"

    assert "value" in _problem(api.put(f"/api/jobs/{job_id}/watermark", json={"value": "next tuesday"}))
    assert api.get(f"/api/jobs/{job_id}").json()["watermark"] == "2026-03-01 12:00:00"

    r = api.put(f"/api/jobs/{job_id}/watermark", json={"value": None})
    assert r.status_code == 200 and r.json()["watermark"] is None
    actions = [(e["action"], e.get("details")) for e in api.get("/api/audit", params={"job_id": job_id}).json()["items"]]
    assert ("job.watermark", {"before": "2026-03-01 12:00:00", "after": None}) in actions


def test_put_watermark_on_a_job_that_is_not_incremental_is_a_422(
        api: TestClient, projects: tuple[int, int]) -> None:  # noqa: F811
    job_id = api.post("/api/jobs", json=job_body(*projects)).json()["id"]
    assert "no incremental option" in _problem(api.put(f"/api/jobs/{job_id}/watermark", json={"value": 5}))
    assert api.put("/api/jobs/999999/watermark", json={"value": 5}).status_code == 404


def test_datamig_watermark_shows_sets_and_resets(api: TestClient, projects: tuple[int, int]) -> None:  # noqa: F811
    from tests.unit.test_cli_commands import cli

    body = _incremental_job(*projects, initial="2026-01-01T00:00:00")
    assert api.post("/api/jobs", json=body).status_code == 201
    code, out, err = cli(api, "watermark", "Copy users")
    assert (code, err) == (0, "") and "watermark of ts: none (the next run starts from 2026-01-01T00:00:00)" in out
    code, out, _ = cli(api, "watermark", "Copy users", "--set", "2026-02-03 04:05:06")
    assert code == 0 and "watermark of ts: 2026-02-03 04:05:06" in out
    code, out, err = cli(api, "watermark", "Copy users", "--set", "soon")
    assert code == 2 and "value" in err and "not an integer, a date" in err
    code, out, _ = cli(api, "watermark", "Copy users", "--reset")
    assert code == 0 and "none (the next run starts from" in out


def test_jobs_files_in_json_and_yaml_carry_incremental_and_name_a_bad_field(tmp_path: Path) -> None:
    import json

    from services.cliapp.specfile import SpecFileError, load_spec_file

    job = {"name": "Logs", "steps": [{"name": "s", "project": "Src", "sql": INCREMENTAL_SQL}],
           "destination": {"project": "Dst", "table": "t"},
           "incremental": {"column": "ts", "initial": "2026-01-01", "lag": "10 minutes"}}
    (tmp_path / "jobs.json").write_text(json.dumps({"jobs": [job]}))
    (tmp_path / "jobs.yaml").write_text(
        "jobs:\n  - name: Logs\n    steps: [{name: s, project: Src, sql: 'SELECT id, ts FROM logs WHERE ts > @watermark'}]\n"
        "    destination: {project: Dst, table: t}\n    incremental: {column: ts, initial: '2026-01-01', lag: 10 minutes}\n")
    for name in ("jobs.json", "jobs.yaml"):
        spec = load_spec_file(tmp_path / name, env={}).jobs[0].spec
        assert spec.incremental is not None and spec.incremental.lag == "10 minutes", name
    job["incremental"]["lag"] = "later"
    (tmp_path / "bad.json").write_text(json.dumps({"jobs": [job]}))
    with pytest.raises(SpecFileError, match=r"incremental\.lag.*is not a lag"):
        load_spec_file(tmp_path / "bad.json", env={})


def test_an_incremental_job_with_a_transform_is_a_422(api: TestClient, projects: tuple[int, int]) -> None:  # noqa: F811
    body = {**_incremental_job(*projects), "transform": "SELECT * FROM @result1"}
    assert "an incremental job cannot have a transform yet" in _problem(api.post("/api/jobs", json=body))
