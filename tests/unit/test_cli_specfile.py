"""The jobs file of ``datamig jobs apply``: YAML, ${ENV} expansion, validation messages, examples."""
from __future__ import annotations

from pathlib import Path

import pytest

from services.cliapp.specfile import SpecFileError, load_spec_file, parse_document
from shared.extract import check_references
from shared.jobspec import JobSpec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_FILES = ("daily-user-sync.yaml", "multi-db-order-summary.yaml", "incremental-log-archive.yaml",
                 "tenant-product-sync.yaml")


def job(**overrides: object) -> dict:
    body = {"name": "Copy", "steps": [{"name": "s1", "project": "Src", "sql": "SELECT 1 AS id"}],
            "destination": {"project": "Dst", "table": "t", "mode": "insert_only"}}
    body.update(overrides)
    return body


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jobs.yaml"
    path.write_text(text)
    return path


def test_passwords_come_from_the_environment_and_are_remembered_as_secrets() -> None:
    doc = {"projects": [
        {"name": "Src", "url": "postgresql://u:${SRC_PW}@h:5432/db"},
        {"name": "Dst", "engine": "mysql", "host": "${DST_HOST}", "database": "d", "password": "${DST_PW}"},
    ]}
    spec = parse_document(doc, path="f.yaml", env={"SRC_PW": "s3cret", "DST_HOST": "db2", "DST_PW": "pa$$"})
    assert spec.projects[0].url == "postgresql://u:s3cret@h:5432/db"
    assert spec.projects[1].host == "db2" and spec.projects[1].password == "pa$$"
    assert spec.secrets == {"s3cret", "pa$$"}
    assert spec.redact("failed for u:s3cret@h") == "failed for u:***@h"


def test_a_missing_variable_names_file_item_field_and_variable() -> None:
    doc = {"projects": [{"name": "Src", "url": "postgresql://u:${NOPE}@h/db"}]}
    with pytest.raises(SpecFileError) as exc:
        parse_document(doc, path="f.yaml", env={})
    assert str(exc.value) == 'f.yaml: project "Src": url: environment variable NOPE is not set'
    assert exc.value.exit_code == 2


def test_double_dollar_writes_a_literal_placeholder() -> None:
    doc = {"projects": [{"name": "Src", "engine": "sqlite", "database": "/tmp/$${x}.db"}]}
    assert parse_document(doc, path="f.yaml", env={}).projects[0].database == "/tmp/${x}.db"


def test_job_sql_is_not_expanded() -> None:
    spec = parse_document({"jobs": [job(steps=[{"name": "s", "project": "Src", "sql": "SELECT '${X}'"}])]},
                          path="f.yaml", env={"X": "no"})
    assert spec.jobs[0].spec.steps[0].sql == "SELECT '${X}'"


def test_jobs_refer_to_projects_by_name() -> None:
    spec = parse_document({"jobs": [job()]}, path="f.yaml", env={})
    fj = spec.jobs[0]
    assert fj.step_projects == ("Src",) and fj.destination_project == "Dst"
    assert fj.named_dump()["steps"][0]["project"] == "Src"
    real = fj.to_spec({"Src": 7, "Dst": 9})
    assert isinstance(real, JobSpec) and real.steps[0].project_id == 7 and real.destination.project_id == 9


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"schedule": "61 * * * *"}, "schedule", "out of range"),
    ({"schedule": "0 2 31 2 *"}, "schedule", "never fires"),
    ({"schedule": "0 0 L * 5#2"}, "schedule", "not a standard cron expression"),
    ({"description": "a\x00b"}, "description", "NUL"),
    ({"destination": {"project": "Dst", "table": "bad table", "mode": "upsert"}}, "destination.table", "table"),
    ({"destination": {"project": "Dst", "table": "t", "mode": "merge"}}, "destination.mode", "insert_only"),
    ({"steps": [{"name": "s", "project": "Src", "sql": "  "}]}, "steps[0].sql", "empty"),
    ({"steps": [{"name": "s", "project_id": 3, "sql": "SELECT 1"}]}, "steps[0].project_id", "by name"),
    ({"steps": [{"name": "s", "sql": "SELECT 1"}]}, "steps[0].project", "required"),
    ({"max_retries": 11}, "max_retries", "10"),
    ({"colour": "red"}, "colour", "Extra"),
])
def test_an_invalid_job_names_file_job_and_field(change: dict, field: str, words: str) -> None:
    with pytest.raises(SpecFileError) as exc:
        parse_document({"jobs": [job(**change)]}, path="jobs.yaml", env={})
    assert exc.value.path == "jobs.yaml" and exc.value.item == 'job "Copy"'
    assert exc.value.field_path == field and words.lower() in str(exc.value).lower()


def test_a_bad_url_error_never_shows_the_password() -> None:
    with pytest.raises(SpecFileError) as exc:
        parse_document({"projects": [{"name": "P", "url": "nosuch://u:${PW}@h/db"}]}, path="f", env={"PW": "hunter2"})
    assert "hunter2" not in str(exc.value) and 'project "P"' in str(exc.value)


def test_bad_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "jobs:\n  - name: [unclosed\n")
    with pytest.raises(SpecFileError) as exc:
        load_spec_file(path)
    assert str(path) in str(exc.value) and "line" in str(exc.value) and "invalid YAML" in str(exc.value)


@pytest.mark.parametrize(("text", "words"), [
    ("- a\n- b\n", "must be a mapping"),
    ("projects: []\njob: []\n", "unknown top-level"),
    ("jobs: {name: x}\n", "must be a list"),
])
def test_a_wrongly_shaped_file_is_explained(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(SpecFileError, match=words):
        load_spec_file(write(tmp_path, text))


def test_an_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SpecFileError, match="cannot read"):
        load_spec_file(tmp_path / "missing.yaml")


def test_names_must_be_unique_in_the_file() -> None:
    with pytest.raises(SpecFileError, match='job "Copy": the name appears more than once'):
        parse_document({"jobs": [job(), job()]}, path="f", env={})


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_the_shipped_examples_parse_into_the_models_apply_uses(name: str) -> None:
    # Given every ${VAR} of the example set, when parsed like `jobs apply` does
    text = (EXAMPLES / name).read_text()
    import re
    env = {v: "example-password" for v in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text)}
    assert env, "examples keep their passwords out of the file"
    spec = load_spec_file(EXAMPLES / name, env=env)
    # Then every job is a valid JobSpec whose projects are defined in the same file
    assert spec.projects and spec.jobs and spec.secrets == {"example-password"}
    defined = {p.name for p in spec.projects}
    for fj in spec.jobs:
        assert fj.project_names() <= defined
        ids = {n: i for i, n in enumerate(sorted(defined), start=1)}
        assert check_references(fj.to_spec(ids).steps) == []
        assert fj.spec.schedule and fj.spec.destination.table
