"""The client subcommands against the real API app (SQLite + in-memory transport, no workers)."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.cli import build_parser, main
from services.cliapp.client import ApiClient
from services.cliapp.commands import dispatch
from services.cliapp.run import progress_line, wait_for
from tests.e2e.stack import free_port
from tests.unit.api_fixtures import api  # noqa: F401 - fixture

SECRET = "Sup3r-secret-pw"


def jobs_yaml(tmp_path: Path, *, schedule: str = "0 2 * * *", sql: str = "SELECT id, name FROM users") -> Path:
    path = tmp_path / "jobs.yaml"
    path.write_text(f"""
projects:
  - name: Source
    url: postgresql://reader:${{SRC_PASSWORD}}@src.example:5432/app
  - name: Target
    engine: sqlite
    database: {tmp_path / 'target.db'}
jobs:
  - name: Copy users
    schedule: "{schedule}"
    steps:
      - name: users
        project: Source
        sql: {sql}
    destination: {{project: Target, table: users_copy, mode: upsert, key_columns: [id]}}
""")
    return path


def cli(api: TestClient, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = dispatch(build_parser().parse_args(list(argv)), client=ApiClient(api, base_url="http://testserver"),
                    out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SRC_PASSWORD", SECRET)


def test_apply_creates_then_reports_unchanged_then_updates_only_what_differs(api: TestClient, tmp_path) -> None:
    # Given an empty server, when the file is applied, then everything is created
    code, out, _ = cli(api, "jobs", "apply", "-f", str(jobs_yaml(tmp_path)))
    assert code == 0, out
    assert '+ create project "Source"' in out and '+ create job "Copy users"' in out
    assert 'created job "Copy users"' in out and SECRET not in out
    job = api.get("/api/jobs").json()[0]
    assert job["schedule"] == "0 2 * * *" and job["destination"]["key_columns"] == ["id"]
    # When applied again, then nothing changes
    code, out, _ = cli(api, "jobs", "apply", "-f", str(jobs_yaml(tmp_path)))
    assert code == 0 and out.count("= unchanged") == 3 and "0 to create, 0 to update, 3 unchanged" in out
    # When the schedule and SQL change, then only the job is updated, naming the fields
    changed = jobs_yaml(tmp_path, schedule="0 3 * * *", sql="SELECT id, name, email FROM users")
    code, out, _ = cli(api, "jobs", "apply", "-f", str(changed), "--dry-run")
    assert '~ update job "Copy users": schedule, steps[0].sql' in out and "Dry run" in out
    assert api.get("/api/jobs").json()[0]["schedule"] == "0 2 * * *"
    code, out, _ = cli(api, "jobs", "apply", "-f", str(changed))
    assert code == 0 and 'updated job "Copy users"' in out
    assert api.get("/api/jobs").json()[0]["schedule"] == "0 3 * * *" and len(api.get("/api/jobs").json()) == 1


def test_dry_run_on_an_empty_server_changes_nothing(api: TestClient, tmp_path) -> None:
    code, out, _ = cli(api, "jobs", "apply", "-f", str(jobs_yaml(tmp_path)), "--dry-run")
    assert code == 0 and "3 to create" in out
    assert api.get("/api/projects").json() == [] and api.get("/api/jobs").json() == []


def test_a_422_from_the_api_names_file_job_and_field(api: TestClient, tmp_path) -> None:
    # @result2 in the first step passes the file checks; the API refuses it
    path = jobs_yaml(tmp_path, sql="SELECT * FROM @result2")
    code, _, err = cli(api, "jobs", "apply", "-f", str(path))
    assert code == 2
    assert err.startswith(f'datamig: {path}: job "Copy users": steps') and "@result2" in err
    assert SECRET not in err


def test_bad_yaml_exits_2_naming_the_file(api: TestClient, tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("jobs: [\n")
    code, out, err = cli(api, "jobs", "apply", "-f", str(path))
    assert code == 2 and str(path) in err and "invalid YAML" in err and out == ""


def test_list_run_and_history(api: TestClient, tmp_path) -> None:
    cli(api, "jobs", "apply", "-f", str(jobs_yaml(tmp_path)))
    code, out, _ = cli(api, "jobs", "list")
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["ID", "NAME", "MODE", "SCHEDULE", "ENABLED", "LAST", "STATUS"]
    assert "Copy users" in row and "upsert" in row and "0 2 * * *" in row and "no" in row
    code, out, _ = cli(api, "run", "Copy users")
    assert code == 0 and out.startswith("execution 1 queued")
    cli(api, "run", "1")
    api.post("/api/executions/2/cancel")
    code, out, _ = cli(api, "history", "Copy users", "--status", "cancelled,failed")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2 and lines[1].split()[:4] == ["2", "Copy", "users", "cancelled"]
    code, out, _ = cli(api, "history", "--limit", "1")
    assert "(1 of 2;" in out
    code, _, err = cli(api, "history", "--status", "broken")
    assert code == 2 and "unknown status 'broken'" in err
    code, _, err = cli(api, "run", "No such job")
    assert code == 2 and 'no job with id or name "No such job"' in err


def test_history_of_an_archived_job_is_kept(api: TestClient, tmp_path) -> None:
    cli(api, "jobs", "apply", "-f", str(jobs_yaml(tmp_path)))
    cli(api, "run", "Copy users")
    api.delete("/api/jobs/1")
    code, out, _ = cli(api, "history", "Copy users")
    assert code == 0 and len(out.splitlines()) == 2
    code, _, err = cli(api, "run", "Copy users")
    assert code == 2 and "archived" in err


def test_an_unreachable_api_is_one_clear_line_and_exit_2(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("DM_API_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(SystemExit) as exc:
        main(["jobs", "list"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1 and "cannot reach the datamig API" in err


def test_the_token_is_sent_as_a_bearer_header() -> None:
    client = ApiClient.from_env({"DM_API_URL": "http://x:1/", "DM_API_TOKEN": "tok"})
    assert client.http.headers["Authorization"] == "Bearer tok" and client.base_url == "http://x:1"
    assert "Authorization" not in ApiClient.from_env({}).http.headers


class _FakeApi:
    """Answers GETs from a script of execution states."""

    def __init__(self, states: list[dict], *, retry: dict | None = None, errors: dict | None = None) -> None:
        self.states, self.retry, self.errors = states, retry, errors or {}

    def get(self, path: str, **params: object) -> dict:
        if path.endswith("/errors"):
            return self.errors
        if path == "/api/executions":
            return {"items": [self.retry] if self.retry else [], "total": 1}
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]


def execution(status: str, **counts: object) -> dict:
    base = {"id": 7, "job_id": 1, "status": status, "rows_read": 0, "rows_written": 0, "rows_failed": 0,
            "rows_inserted": 0, "rows_updated": 0, "rows_deleted": 0, "rows_skipped": 0, "rows_per_second": None,
            "duration_seconds": None, "duration": "", "attempt": 1, "retry_of": None}
    return base | counts


@pytest.mark.parametrize(("final", "code"), [("completed", 0), ("partial_success", 3), ("failed", 1),
                                              ("cancelled", 1), ("timed_out", 1)])
def test_wait_exit_codes_follow_the_final_status(final: str, code: int) -> None:
    err = io.StringIO()
    api = _FakeApi([execution("queued"), execution("running", rows_read=10), execution(final, rows_read=20)],
                   errors={"message": "boom", "kind": "load", "failed_rows": [], "failed_rows_total": 0})
    assert wait_for(api, 7, err=err, tty=False, sleep=lambda _: None) == code  # type: ignore[arg-type]
    text = err.getvalue()
    assert f"execution 7 {final}" in text
    assert ("error (load): boom" in text) == (code != 0)


def test_wait_prints_failed_rows_of_a_partial_success() -> None:
    err = io.StringIO()
    errors = {"message": None, "failed_rows": [{"position": 3, "error": "null value", "values": {"id": 3}}],
              "failed_rows_total": 9}
    api = _FakeApi([execution("partial_success", rows_failed=9)], errors=errors)
    assert wait_for(api, 7, err=err, tty=False, sleep=lambda _: None) == 3  # type: ignore[arg-type]
    assert "row 3: null value" in err.getvalue() and "8 more failed rows" in err.getvalue()


def test_wait_follows_a_retry_to_its_end() -> None:
    err = io.StringIO()
    api = _FakeApi([execution("failed"), execution("completed", id=8, attempt=2, retry_of=7)],
                   retry=execution("queued", id=8, attempt=2, retry_of=7), errors={"message": "lost"})
    assert wait_for(api, 7, err=err, tty=False, sleep=lambda _: None) == 0  # type: ignore[arg-type]
    assert "retrying as execution 8 (attempt 2)" in err.getvalue() and "execution 8 completed" in err.getvalue()


def test_a_terminal_gets_one_rewritten_line_and_a_pipe_gets_periodic_lines() -> None:
    states = [execution("running", rows_read=i * 100, duration_seconds=i * 0.5) for i in range(1, 6)]
    clock = iter(x * 0.5 for x in range(100))
    tty = io.StringIO()
    wait_for(_FakeApi(states + [execution("completed")]), 7, err=tty, tty=True,  # type: ignore[arg-type]
             sleep=lambda _: None, clock=lambda: next(clock))
    assert tty.getvalue().count("\r\x1b[K") >= 5 and tty.getvalue().count("\n") == 1
    clock = iter(x * 0.5 for x in range(100))
    pipe = io.StringIO()
    wait_for(_FakeApi(states + [execution("completed")]), 7, err=pipe, tty=False,  # type: ignore[arg-type]
             sleep=lambda _: None, clock=lambda: next(clock))
    assert "\r" not in pipe.getvalue() and pipe.getvalue().count("running") == 1


def test_the_progress_line_shows_counts_rate_and_elapsed() -> None:
    line = progress_line(execution("running", rows_read=12000, rows_written=10000, rows_per_second=3400.4,
                                   duration_seconds=3.5), elapsed_s=9, tick=-1)
    assert line == "execution 7 running  read 12,000  written 10,000  3,400 rows/s  elapsed 3.5s"
