"""Plan computation of ``datamig jobs apply``: what is created, updated (and which fields), or left."""
from __future__ import annotations

import pytest

from services.cliapp.plan import Change, compute_plan, diff, summary
from services.cliapp.specfile import SpecFileError, parse_document

SQL1, SQL2 = "SELECT id, name FROM users", "SELECT id, total FROM @result1"


def file_spec(**job_overrides: object):
    job = {"name": "Sync", "schedule": "0 2 * * *",
           "steps": [{"name": "users", "project": "Src", "sql": SQL1},
                     {"name": "totals", "project": "Src", "sql": SQL2}],
           "destination": {"project": "Dst", "table": "dwh.users", "mode": "upsert"}}
    job.update(job_overrides)
    doc = {"projects": [{"name": "Src", "url": "postgresql://u:${PW}@src:5432/app"},
                        {"name": "Dst", "engine": "sqlite", "database": "/data/dst.db"}],
           "jobs": [job]}
    return parse_document(doc, path="jobs.yaml", env={"PW": "pw"})


def server_projects() -> list[dict]:
    return [{"id": 1, "name": "Src", "engine": "postgresql", "url": "postgresql://u@src:5432/app", "host": None,
             "port": None, "database": None, "username": None, "options": {}, "has_password": True},
            {"id": 2, "name": "Dst", "engine": "sqlite", "url": None, "host": None, "port": None,
             "database": "/data/dst.db", "username": None, "options": {}, "has_password": False}]


def server_job(**overrides: object) -> dict:
    body = {"id": 5, "name": "Sync", "description": "", "schedule": "0 2 * * *", "schedule_description": "At 02:00",
            "timezone": "UTC", "max_retries": 3, "timeout_minutes": 30, "enabled": False,
            "validate_before_execution": True, "archived": False, "next_run_at": None, "last_status": "completed",
            "steps": [{"name": "users", "description": "", "project_id": 1, "sql": SQL1},
                      {"name": "totals", "description": "", "project_id": 1, "sql": SQL2}],
            "destination": {"project_id": 2, "table": "dwh.users", "mode": "upsert", "key_columns": None,
                            "allow_empty_source": False, "max_delete_ratio": None}}
    body.update(overrides)
    return body


def test_diff_names_nested_paths_with_indexes() -> None:
    old = {"a": 1, "steps": [{"sql": "x"}, {"sql": "y"}], "destination": {"mode": "upsert"}}
    new = {"a": 2, "steps": [{"sql": "x"}, {"sql": "z"}, {"sql": "w"}], "destination": {"mode": "upsert"}}
    assert diff(old, new) == ["a", "steps[1].sql", "steps[2] (added)"]
    assert diff({"steps": [1, 2]}, {"steps": [1]}) == ["steps[1] (removed)"]
    assert diff({"key_columns": ["a"]}, {"key_columns": ["a", "b"]}) == ["key_columns"]


def test_everything_missing_is_created() -> None:
    plan = compute_plan(file_spec(), server_projects=[], server_jobs=[])
    assert [c.line() for c in plan] == ['+ create project "Src"', '+ create project "Dst"', '+ create job "Sync"']
    assert summary(plan) == "Plan: 3 to create, 0 to update, 0 unchanged."


def test_what_the_server_already_has_is_unchanged() -> None:
    plan = compute_plan(file_spec(), server_projects=server_projects(), server_jobs=[server_job()])
    assert [c.action for c in plan] == ["unchanged"] * 3
    assert plan[2] == Change("unchanged", "job", "Sync", (), 5)


def test_an_update_lists_the_fields_that_differ() -> None:
    spec = file_spec(schedule="0 3 * * *", steps=[{"name": "users", "project": "Src", "sql": SQL1},
                                                  {"name": "totals", "project": "Dst", "sql": SQL2 + " x"}])
    plan = compute_plan(spec, server_projects=server_projects(), server_jobs=[server_job()])
    assert plan[2].line() == '~ update job "Sync": schedule, steps[1].sql, steps[1].project'
    assert plan[2].server_id == 5


def test_project_connection_changes_are_updates_but_passwords_only_when_asked_or_missing() -> None:
    projects = server_projects()
    projects[0]["url"] = "postgresql://u@old-host:5432/app"
    plan = compute_plan(file_spec(), server_projects=projects, server_jobs=[server_job()])
    assert plan[0].line() == '~ update project "Src": url'
    projects = server_projects()
    projects[0]["has_password"] = False
    assert compute_plan(file_spec(), server_projects=projects, server_jobs=[])[0].fields == ("password",)
    plan = compute_plan(file_spec(), server_projects=server_projects(), server_jobs=[], update_passwords=True)
    assert plan[0].fields == ("password",) and plan[1].action == "unchanged"  # Dst has no password in the file


def test_archived_namesakes_are_ignored_so_the_job_is_created_again() -> None:
    plan = compute_plan(file_spec(), server_projects=server_projects(), server_jobs=[server_job(archived=True)])
    assert plan[2].action == "create"


def test_a_job_may_use_a_project_that_only_the_server_knows() -> None:
    spec = parse_document({"jobs": [{"name": "J", "steps": [{"name": "s", "project": "Src", "sql": SQL1}],
                                     "destination": {"project": "Dst", "table": "t"}}]}, path="f", env={})
    assert compute_plan(spec, server_projects=server_projects(), server_jobs=[])[0].action == "create"


def test_an_unknown_project_name_is_an_error_naming_the_field() -> None:
    spec = parse_document({"jobs": [{"name": "J", "steps": [{"name": "s", "project": "Nope", "sql": SQL1}],
                                     "destination": {"project": "Dst", "table": "t"}}]}, path="f", env={})
    with pytest.raises(SpecFileError) as exc:
        compute_plan(spec, server_projects=server_projects(), server_jobs=[])
    assert exc.value.field_path == "steps[0].project" and 'unknown project "Nope"' in str(exc.value)


def test_two_live_server_jobs_with_the_same_name_are_ambiguous() -> None:
    with pytest.raises(SpecFileError, match="several jobs"):
        compute_plan(file_spec(), server_projects=server_projects(), server_jobs=[server_job(), server_job(id=6)])


def test_secret_options_are_compared_as_the_server_shows_them_and_never_printed() -> None:
    doc = {"projects": [{"name": "Src", "url": "postgresql://u@src:5432/app?sslmode=require&sslpassword=${KEYPW}",
                         "options": {"connect_timeout": "5"}}]}
    spec = parse_document(doc, path="jobs.yaml", env={"KEYPW": "key-Secret-9"})
    assert "key-Secret-9" in spec.secrets
    server = [{"id": 1, "name": "Src", "engine": "postgresql", "url": "postgresql://u@src:5432/app?sslmode=require",
               "host": None, "port": None, "database": None, "username": None, "has_password": False,
               "options": {"connect_timeout": "5", "sslpassword": "***"}}]
    assert compute_plan(spec, server_projects=server, server_jobs=[])[0].action == "unchanged"
    server[0]["options"]["connect_timeout"] = "9"
    assert compute_plan(spec, server_projects=server, server_jobs=[])[0].fields == ("options.connect_timeout",)
    with pytest.raises(SpecFileError) as err:
        parse_document({"projects": [{"name": "P", "engine": "mysql", "host": "h", "database": "d",
                                      "options": {"ssl_key_password": "${KEYPW}", "init_command": "SET x=1"}}]},
                       path="jobs.yaml", env={"KEYPW": "key-Secret-9"})
    assert "init_command" in str(err.value) and "key-Secret-9" not in str(err.value)
