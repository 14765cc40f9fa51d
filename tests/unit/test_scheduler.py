"""Scheduler decisions on SQLite metadata with an injected clock."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from services.scheduler.scheduler import dispatch_queued, fire_due_jobs, watch_running
from shared import messages
from shared.jobspec import JobSpec
from shared.store.db import migrate, open_store, session_factory
from shared.store.executions import create_execution
from shared.store.jobs import apply_job
from shared.store.models import ExecutionRow, JobRow, ProjectRow
from shared.topology import Topology
from shared.transport.memory import MemoryTransport

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def sessions(tmp_path):
    engine = open_store(f"sqlite:///{tmp_path / 'meta.db'}")
    migrate(engine)
    return session_factory(engine)


@pytest.fixture
def bus():
    transport, topology = MemoryTransport(), Topology("t")
    topology.declare(transport)
    yield transport, topology
    transport.close()


def add_job(sessions, *, schedule="* * * * *", enabled=True, now=T0) -> int:
    with sessions() as s:
        p = ProjectRow(name="p", engine="sqlite", database="/tmp/x.db", options={})
        s.add(p)
        s.flush()
        spec = JobSpec(name="j", steps=[{"name": "a", "project_id": p.id, "sql": "SELECT 1"}],
                       destination={"project_id": p.id, "table": "t"}, schedule=schedule, enabled=enabled)
        job = apply_job(JobRow(), spec, now=now)
        s.add(job)
        s.commit()
        return job.id


def executions(sessions) -> list[ExecutionRow]:
    with sessions() as s:
        return list(s.scalars(sa.select(ExecutionRow).order_by(ExecutionRow.id)))


def test_each_tick_fires_once_and_next_run_moves_on(sessions) -> None:
    add_job(sessions)
    for minute in range(1, 4):
        now = T0 + timedelta(minutes=minute, seconds=1)
        with sessions() as s:
            assert len(fire_due_jobs(s, now=now)) == 1
            s.commit()
        with sessions() as s:  # a second pass at the same instant finds nothing due
            assert fire_due_jobs(s, now=now) == []
        # finish it so the next tick is not an overlap
        with sessions() as s:
            s.execute(sa.update(ExecutionRow).values(status="completed"))
            s.commit()
    assert [e.trigger for e in executions(sessions)] == ["schedule"] * 3


def test_missed_ticks_run_once_on_recovery(sessions) -> None:
    job_id = add_job(sessions)
    with sessions() as s:
        fired = fire_due_jobs(s, now=T0 + timedelta(hours=5))
        s.commit()
        assert len(fired) == 1
        assert s.get(JobRow, job_id).next_run_at == T0 + timedelta(hours=5, minutes=1)


def test_overlapping_tick_is_recorded_as_skipped(sessions) -> None:
    add_job(sessions)
    with sessions() as s:
        fire_due_jobs(s, now=T0 + timedelta(minutes=1))
        s.commit()
    with sessions() as s:
        fire_due_jobs(s, now=T0 + timedelta(minutes=2))
        s.commit()
    assert [e.status for e in executions(sessions)] == ["queued", "skipped"]
    assert "still running" in executions(sessions)[1].error_message


def test_disabled_job_does_not_fire(sessions) -> None:
    add_job(sessions, enabled=False)
    with sessions() as s:
        assert fire_due_jobs(s, now=T0 + timedelta(days=1)) == []


def test_dispatch_publishes_run_request_with_encrypted_snapshot(sessions, bus) -> None:
    transport, topology = bus
    job_id = add_job(sessions, schedule="")
    with sessions() as s:
        s.get(ProjectRow, 1).password_enc = "gAAAA-encrypted"
        execution = create_execution(s, s.get(JobRow, job_id), trigger="manual")
        s.commit()
    with sessions() as s:
        assert dispatch_queued(s, transport, topology, now=T0, batch_rows=500) == 1
    with sessions() as s:
        assert dispatch_queued(s, transport, topology, now=T0, batch_rows=500) == 0
    request = messages.decode(transport.get(topology.runs, timeout_s=1).body)
    assert request.execution_id == execution.id and request.batch_rows == 500
    assert request.projects[1].password_enc == "gAAAA-encrypted" and "password" not in request.projects[1].model_dump()
    assert request.deadline == (T0 + timedelta(minutes=30)).timestamp()


def test_retry_waits_for_its_backoff(sessions, bus) -> None:
    transport, topology = bus
    job_id = add_job(sessions, schedule="")
    with sessions() as s:
        create_execution(s, s.get(JobRow, job_id), trigger="retry", not_before=T0 + timedelta(seconds=30))
        s.commit()
    with sessions() as s:
        assert dispatch_queued(s, transport, topology, now=T0, batch_rows=10) == 0
    with sessions() as s:
        assert dispatch_queued(s, transport, topology, now=T0 + timedelta(seconds=31), batch_rows=10) == 1


def test_watchdog_fails_silent_and_late_executions(sessions, bus) -> None:
    transport, topology = bus
    transport.declare_queue("spy")
    transport.bind("spy", topology.events, "finished.*")
    job_id = add_job(sessions, schedule="")
    with sessions() as s:
        job = s.get(JobRow, job_id)
        silent = create_execution(s, job, trigger="manual", status="running")
        silent.dispatched_at, silent.heartbeat_at = T0, T0
        silent.deadline_at = T0 + timedelta(hours=1)
        late = create_execution(s, job, trigger="manual", status="running")
        late.dispatched_at, late.heartbeat_at = T0, T0 + timedelta(seconds=100)
        late.deadline_at = T0 + timedelta(seconds=10)
        s.commit()
    with sessions() as s:
        assert watch_running(s, transport, topology, now=T0 + timedelta(seconds=100), worker_lost_s=60) == 2
    events = {e.execution_id: e for e in (messages.decode(transport.get("spy").body) for _ in range(2))}
    assert events[silent.id].status == "failed" and events[silent.id].error["kind"] == "worker_lost"
    assert events[late.id].status == "timed_out"
