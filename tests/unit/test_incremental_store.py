"""Where the watermark lives: datamig_state (written with the rows, read by the settlement) and history."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from shared.jobspec import JobSpec
from shared.load.overlap import state_json
from shared.load.state import COMMITTED, claim, ensure_state_table, mark_committed, settle
from shared.messages import Event
from shared.store.db import migrate, open_store, session_factory
from shared.store.executions import create_execution, record_event
from shared.store.jobs import apply_job
from shared.store.models import ExecutionRow, JobRow, ProjectRow, utcnow
from shared.store.watermarks import set_watermark

RETRY = {"retry_base_s": 0.0, "retry_max_s": 0.0}
WM = {"from": None, "to": "2026-12-02 00:59:59.999999+00:00", "kind": "timestamptz", "seen": [], "lag": False}


def test_a_committed_watermark_is_read_back_by_the_settlement(tmp_path) -> None:
    dest = sa.create_engine(f"sqlite:///{tmp_path / 'dest.db'}")
    ensure_state_table(dest)
    with dest.begin() as conn:  # the load transaction: claim first, watermark with the committed row last
        claim(conn, execution_id=7, job_id=1, key="7@x")
        mark_committed(conn, execution_id=7, counts={"rows_read": 3}, key="7@x", watermark=state_json(WM))
    with dest.begin() as conn:  # rolled back: neither the row nor a watermark exists
        claim(conn, execution_id=8, job_id=1, key="8@x")
        conn.rollback()
    settled = settle(dest, execution_id=7, job_id=1, key="7@x")
    assert settled.outcome == COMMITTED and settled.watermark == {"to": WM["to"], "kind": "timestamptz", "seen": []}
    assert settle(dest, execution_id=8, job_id=1, key="8@x").watermark == {}


@pytest.fixture
def store(tmp_path):
    engine = open_store(f"sqlite:///{tmp_path / 'meta.db'}")
    migrate(engine)
    sessions = session_factory(engine)
    with sessions() as s:
        p = ProjectRow(name="p", engine="sqlite", database="/tmp/x.db", options={})
        s.add(p)
        s.flush()
        spec = JobSpec(name="j", steps=[{"name": "a", "project_id": p.id, "sql": "SELECT 1 AS ts WHERE 1 > @watermark"}],
                       destination={"project_id": p.id, "table": "t"}, incremental={"column": "ts"})
        job = apply_job(JobRow(), spec)
        s.add(job)
        s.flush()
        s.commit()
        return sessions, job.id


def _finish(sessions, job_id: int, status: str, *, queued_delta_s: float = 0) -> int:
    with sessions() as s:
        row = create_execution(s, s.get(JobRow, job_id), trigger="manual", now=utcnow() + timedelta(seconds=queued_delta_s))
        s.commit()
        record_event(s, Event(execution_id=row.id, job_id=job_id, kind="finished", status=status, watermark=WM), **RETRY)
        s.commit()
        return row.id


def test_only_a_committed_execution_moves_the_jobs_watermark(store) -> None:
    sessions, job_id = store
    failed = _finish(sessions, job_id, "failed")
    with sessions() as s:
        assert s.get(JobRow, job_id).watermark is None and s.get(ExecutionRow, failed).watermark_to is None
    done = _finish(sessions, job_id, "completed")
    with sessions() as s:
        assert s.get(JobRow, job_id).watermark == WM["to"] == s.get(ExecutionRow, done).watermark_to


def test_a_run_queued_before_a_reset_does_not_overwrite_it(store) -> None:
    sessions, job_id = store
    with sessions() as s:
        set_watermark(s.get(JobRow, job_id), None)  # a backfill asked for now
        s.commit()
    _finish(sessions, job_id, "completed", queued_delta_s=-60)  # queued a minute before the reset
    with sessions() as s:
        assert s.get(JobRow, job_id).watermark is None


def test_executions_of_an_incremental_job_are_dispatched_one_at_a_time(store) -> None:
    from shared.store.watermarks import waits_for_another_run

    sessions, job_id = store
    with sessions() as s:
        job = s.get(JobRow, job_id)
        first = create_execution(s, job, trigger="schedule")
        second = create_execution(s, job, trigger="manual")
        assert not waits_for_another_run(s, first, job)
        first.dispatched_at = utcnow()
        assert waits_for_another_run(s, second, job)
        first.status = "completed"
        assert not waits_for_another_run(s, second, job)
        job.incremental = None
        first.status = "running"
        assert not waits_for_another_run(s, second, job)  # other jobs keep running side by side
