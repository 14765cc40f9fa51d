"""The history recorder: repeated and late events never corrupt an execution."""
from __future__ import annotations

import pytest

from shared.jobspec import JobSpec
from shared.messages import Event
from shared.store.db import migrate, open_store, session_factory
from shared.store.executions import create_execution, execution_out, format_duration, record_event
from shared.store.jobs import apply_job
from shared.store.models import ExecutionRow, FailedRowRow, JobRow, ProjectRow

RETRY = {"retry_base_s": 0.0, "retry_max_s": 0.0}


@pytest.fixture
def setup(tmp_path):
    engine = open_store(f"sqlite:///{tmp_path / 'meta.db'}")
    migrate(engine)
    sessions = session_factory(engine)
    with sessions() as s:
        p = ProjectRow(name="p", engine="sqlite", database="/tmp/x.db", options={})
        s.add(p)
        s.flush()
        job = apply_job(JobRow(), JobSpec(name="j", steps=[{"name": "a", "project_id": p.id, "sql": "SELECT 1"}],
                                          destination={"project_id": p.id, "table": "t"}, max_retries=2))
        s.add(job)
        s.flush()
        execution = create_execution(s, job, trigger="manual")
        s.commit()
        return sessions, execution.id


def apply(sessions, event: Event):
    with sessions() as s:
        recorded = record_event(s, event, **RETRY)
        s.commit()
        return recorded.retry


def state(sessions, execution_id: int) -> dict:
    with sessions() as s:
        return execution_out(s.get(ExecutionRow, execution_id))


def test_repeated_and_late_progress_never_lowers_counts(setup) -> None:
    sessions, eid = setup
    apply(sessions, Event(execution_id=eid, kind="started", ts=100.0))
    apply(sessions, Event(execution_id=eid, kind="progress", counts={"rows_read": 500, "rows_inserted": 400}, ts=102.0))
    apply(sessions, Event(execution_id=eid, kind="progress", counts={"rows_read": 200, "rows_inserted": 100}, ts=101.0))
    apply(sessions, Event(execution_id=eid, kind="progress", counts={"rows_read": 500, "rows_inserted": 400}, ts=102.0))
    s = state(sessions, eid)
    assert (s["status"], s["rows_read"], s["rows_inserted"]) == ("running", 500, 400)


def test_first_final_status_wins_and_never_goes_back_to_running(setup) -> None:
    sessions, eid = setup
    apply(sessions, Event(execution_id=eid, kind="started", ts=100.0))
    apply(sessions, Event(execution_id=eid, kind="finished", status="completed",
                          counts={"rows_read": 10, "rows_inserted": 10}, ts=110.0))
    apply(sessions, Event(execution_id=eid, kind="finished", status="failed", error={"message": "late"}, ts=111.0))
    apply(sessions, Event(execution_id=eid, kind="progress", counts={"rows_read": 99}, ts=112.0))
    s = state(sessions, eid)
    assert (s["status"], s["rows_read"], s["rows_written"], s["error"]) == ("completed", 10, 10, None)
    assert s["duration_seconds"] == 10.0 and s["rows_per_second"] == 1.0


def test_failed_rows_recorded_once(setup) -> None:
    sessions, eid = setup
    rows = [{"position": 7, "values": {"id": 7}, "error": "null value"}]
    apply(sessions, Event(execution_id=eid, kind="progress", failed_rows=rows, ts=1.0))
    apply(sessions, Event(execution_id=eid, kind="progress", failed_rows=rows, ts=2.0))
    with sessions() as s:
        assert s.query(FailedRowRow).count() == 1


def test_transient_failure_creates_linked_retry_until_retries_run_out(setup) -> None:
    sessions, eid = setup
    chain = [eid]
    for _ in range(3):
        retry = apply(sessions, Event(execution_id=chain[-1], kind="finished", status="failed",
                                      error={"message": "connection refused", "transient": True}, ts=5.0))
        if retry is None:
            break
        chain.append(retry.id)
    assert len(chain) == 3  # the first run + max_retries=2
    last = state(sessions, chain[-1])
    assert (last["trigger"], last["attempt"], last["retry_of"]) == ("retry", 3, chain[1])


def test_terminal_failure_is_not_retried(setup) -> None:
    sessions, eid = setup
    assert apply(sessions, Event(execution_id=eid, kind="finished", status="failed",
                                 error={"message": "syntax error", "transient": False}, ts=5.0)) is None


def test_secrets_in_error_messages_are_masked(setup) -> None:
    sessions, eid = setup
    apply(sessions, Event(execution_id=eid, kind="finished", status="failed",
                          error={"message": "cannot reach postgresql://u:hunter2@db/x"}, ts=5.0))
    assert "hunter2" not in state(sessions, eid)["error"]["message"]


@pytest.mark.parametrize("seconds, text", [(0.42, "0.4s"), (65, "1m 5s"), (5025, "1h 23m 45s"), (None, "")])
def test_duration_format(seconds, text) -> None:
    assert format_duration(seconds) == text


def test_warning_counts_are_kept_by_kind_and_never_lowered_by_a_late_event(setup) -> None:
    sessions, eid = setup
    apply(sessions, Event(execution_id=eid, kind="started", ts=100.0))
    apply(sessions, Event(execution_id=eid, kind="progress", warnings={"zero_dates": 3}, ts=101.0))
    apply(sessions, Event(execution_id=eid, kind="progress", warnings={"zero_dates": 1, "duplicate_keys": 2}, ts=100.5))
    assert state(sessions, eid)["warnings"] == {"zero_dates": 3, "duplicate_keys": 2}
    apply(sessions, Event(execution_id=eid, kind="finished", status="completed", warnings={"zero_dates": 4}, ts=110.0))
    assert state(sessions, eid)["warnings"] == {"zero_dates": 4, "duplicate_keys": 2}


def test_a_rolled_back_attempt_keeps_rows_read_and_shows_nothing_written(setup) -> None:
    # Given an execution that read 90,000 rows and staged 10,000 of them in its transaction
    sessions, eid = setup
    apply(sessions, Event(execution_id=eid, kind="started", service="extractor", ts=100.0))
    apply(sessions, Event(execution_id=eid, kind="progress", service="extractor", counts={"rows_read": 90_000}, ts=101.0))
    apply(sessions, Event(execution_id=eid, kind="progress", service="loader", ts=102.0,
                          counts={"rows_read": 10_000, "rows_inserted": 9_000, "rows_updated": 1_000,
                                  "rows_staged": 10_000}))
    # When the loader reports the cancel with what it knows (fewer rows read, nothing written)
    apply(sessions, Event(execution_id=eid, kind="finished", service="loader", status="cancelled", ts=103.0,
                          counts={"rows_read": 0, "rows_inserted": 0, "rows_updated": 0, "rows_failed": 0}))
    # Then history keeps what was read and says the destination holds nothing of it
    s = state(sessions, eid)
    assert (s["status"], s["rows_read"], s["rows_written"], s["rows_staged"]) == ("cancelled", 90_000, 0, 10_000)
    assert (s["rows_inserted"], s["rows_updated"], s["rows_deleted"], s["rows_skipped"]) == (0, 0, 0, 0)


def test_a_failure_decided_by_the_scheduler_zeroes_the_staged_counts(setup) -> None:
    sessions, eid = setup
    apply(sessions, Event(execution_id=eid, kind="progress", service="loader", ts=101.0,
                          counts={"rows_read": 10_000, "rows_inserted": 10_000, "rows_deleted": 5}))
    apply(sessions, Event(execution_id=eid, kind="finished", service="scheduler", status="failed", ts=109.0,
                          error={"message": "no heartbeat from the loader", "kind": "worker_lost", "transient": True}))
    s = state(sessions, eid)
    assert (s["status"], s["rows_read"], s["rows_written"], s["rows_deleted"], s["rows_staged"]) == (
        "failed", 10_000, 0, 0, 10_005)


def test_a_commit_settled_by_the_scheduler_records_the_committed_counts(setup) -> None:
    sessions, eid = setup
    apply(sessions, Event(execution_id=eid, kind="progress", service="loader", ts=101.0,
                          counts={"rows_read": 4_000, "rows_inserted": 4_000}))
    apply(sessions, Event(execution_id=eid, kind="finished", service="scheduler", status="completed", ts=109.0,
                          counts={"rows_read": 5_000, "rows_inserted": 5_000, "rows_updated": 0, "rows_skipped": 0,
                                  "rows_deleted": 0, "rows_failed": 0}))
    s = state(sessions, eid)
    assert (s["status"], s["rows_read"], s["rows_inserted"], s["error"]) == ("completed", 5_000, 5_000, None)
