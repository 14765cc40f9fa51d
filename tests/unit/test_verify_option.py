"""The job option verify: API round trip, default, 422 for a bad value, and the record in history."""
from __future__ import annotations

from fastapi.testclient import TestClient

from shared.jobspec import JobSpec
from shared.load.verify import VerificationFailed
from tests.unit.api_fixtures import api, job_body, sqlite_project  # noqa: F401 - fixture


def test_verify_defaults_to_count_round_trips_and_travels_with_the_destination(api: TestClient, tmp_path) -> None:  # noqa: F811
    src, dst = sqlite_project(api, "src", tmp_path / "s.db"), sqlite_project(api, "dst", tmp_path / "d.db")
    plain = api.post("/api/jobs", json=job_body(src, dst, name="plain"))
    assert plain.status_code == 201, plain.text
    assert plain.json()["verify"] == "count" and plain.json()["destination"]["verify"] == "count"
    hashed = api.post("/api/jobs", json=job_body(src, dst, name="hashed", verify="checksum")).json()
    job = api.get(f"/api/jobs/{hashed['id']}").json()
    assert job["verify"] == "checksum" and job["destination"]["verify"] == "checksum"
    patched = api.patch(f"/api/jobs/{plain.json()['id']}", json={"verify": "none"})
    assert patched.status_code == 200 and patched.json()["verify"] == "none", patched.text
    assert api.patch(f"/api/jobs/{plain.json()['id']}", json={"enabled": False}).json()["verify"] == "none"


def test_a_bad_verify_value_is_a_422_naming_the_field(api: TestClient, tmp_path) -> None:  # noqa: F811
    src, dst = sqlite_project(api, "src", tmp_path / "s.db"), sqlite_project(api, "dst", tmp_path / "d.db")
    r = api.post("/api/jobs", json=job_body(src, dst, verify="rows"))
    assert r.status_code == 422 and any(e["field"] == "verify" for e in r.json()["detail"]), r.text
    created = api.post("/api/jobs", json=job_body(src, dst, name="ok")).json()
    r = api.patch(f"/api/jobs/{created['id']}", json={"verify": "all"})
    assert r.status_code == 422 and "verify" in r.text


def test_the_job_level_verify_wins_over_a_destination_value() -> None:
    base = {"name": "j", "steps": [{"name": "s", "project_id": 1, "sql": "SELECT 1"}],
            "destination": {"project_id": 2, "table": "t", "verify": "none"}}
    assert JobSpec.model_validate(base).verify == "none"
    spec = JobSpec.model_validate({**base, "verify": "checksum"})
    assert spec.verify == spec.destination.verify == "checksum"


def test_a_verification_failure_names_the_problem_and_the_first_keys() -> None:
    keys = [{"key": {"id": i}, "problem": "different"} for i in range(7)]
    exc = VerificationFailed("accounts", {"method": "checksum", "problems": ["0 written keys are missing and 7 rows "
                                                                            "differ from what was written"],
                                          "keys": keys})
    text = str(exc)
    assert text.startswith("verification (checksum) of accounts failed, nothing was committed: 0 written keys")
    assert "different (id=0); different (id=1)" in text and "id=5" not in text and "(and 2 more keys" in text
    assert exc.kind == "verification" and not exc.transient


def test_the_finished_event_verification_is_recorded_in_history(tmp_path) -> None:
    # Given an execution recorded through the migrated store (0007 adds dm_executions.verification)
    from shared.messages import Event, decode
    from shared.store.db import migrate, open_store, session_factory
    from shared.store.executions import create_execution, execution_out, record_event
    from shared.store.jobs import apply_job
    from shared.store.models import ExecutionRow, JobRow, ProjectRow

    engine = open_store(f"sqlite:///{tmp_path / 'meta.db'}")
    migrate(engine)
    sessions = session_factory(engine)
    verification = {"method": "checksum", "outcome": "failed", "problems": ["1 rows differ"],
                    "keys": [{"key": {"id": 5}, "problem": "different"}], "seconds": 0.2}
    with sessions() as s:
        p = ProjectRow(name="p", engine="sqlite", database="/tmp/x.db", options={})
        s.add(p)
        s.flush()
        job = apply_job(JobRow(), JobSpec(name="j", steps=[{"name": "a", "project_id": p.id, "sql": "SELECT 1"}],
                                          destination={"project_id": p.id, "table": "t"}, max_retries=0))
        s.add(job)
        s.flush()
        eid = create_execution(s, job, trigger="manual").id
        # When the loader's finished event (through the wire) carries the verification
        event = decode(Event(execution_id=eid, kind="finished", status="failed", verification=verification,
                             error={"message": "verification failed", "kind": "verification"}).encode())
        record_event(s, event, retry_base_s=0, retry_max_s=0)
        s.commit()
        # Then the execution shows it
        out = execution_out(s.get(ExecutionRow, eid))
    assert out["verification"] == verification and out["error"]["kind"] == "verification"
    engine.dispose()


def test_the_command_line_says_how_the_run_was_verified() -> None:
    from services.cliapp.run import final_line

    execution = {"id": 7, "status": "completed", "duration": "2s", "rows_read": 3, "rows_written": 3,
                 "rows_inserted": 3, "rows_updated": 0, "rows_deleted": 0, "rows_skipped": 0, "rows_failed": 0,
                 "rows_per_second": None}
    assert "verification" not in final_line(execution)
    execution["verification"] = {"method": "checksum", "outcome": "passed", "seconds": 0.25}
    assert final_line(execution).endswith("failed 0; verification (checksum) passed in 0.25 s")
