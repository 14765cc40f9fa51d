"""The run request carries the whole job, typed, built once by the scheduler."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from services.scheduler.scheduler import dispatch_queued
from shared import messages
from shared.jobspec import JobSpec
from shared.messages import LoadRequest, RunRequest
from shared.snapshots import ProjectSnapshot
from shared.store.db import migrate, open_store, session_factory
from shared.store.executions import create_execution
from shared.store.jobs import apply_job, job_spec
from shared.store.models import ExecutionRow, JobRow, ProjectRow
from shared.topology import Topology
from shared.transport.memory import MemoryTransport
from shared.types import Column

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def sessions(tmp_path):
    engine = open_store(f"sqlite:///{tmp_path / 'meta.db'}")
    migrate(engine)
    return session_factory(engine)


def _queued(sessions, name: str = "j", **job: object) -> tuple[int, int]:
    with sessions() as s:
        source, destination = ProjectRow(name=f"{name}-s", engine="sqlite", database="/tmp/s.db", options={}), \
            ProjectRow(name=f"{name}-d", engine="sqlite", database="/tmp/d.db", options={"zero_dates": "null"})
        s.add_all([source, destination])
        s.flush()
        spec = JobSpec(name=name, description="nightly copy", schedule="0 3 * * *", timezone="Europe/Berlin",
                       steps=[{"name": "a", "project_id": source.id, "sql": "SELECT 1 AS x"}],
                       destination={"project_id": destination.id, "table": "t", "mode": "upsert",
                                    "key_columns": ["x"], "allow_rounding": True}, max_retries=5, **job)
        row = apply_job(JobRow(), spec, now=T0)
        s.add(row)
        s.flush()
        execution = create_execution(s, row, trigger="manual")
        s.commit()
        return row.id, execution.id


def test_the_run_request_carries_every_field_of_the_job_typed(sessions) -> None:
    transport, topology = MemoryTransport(), Topology("w")
    topology.declare(transport)
    job_id, execution_id = _queued(sessions, zero_dates="null", validate_before_execution=False)
    with sessions() as s:
        assert dispatch_queued(s, transport, topology, now=T0, batch_rows=100) == 1
        stored = job_spec(s.get(JobRow, job_id))
    request = messages.decode(transport.get(topology.runs, timeout_s=1).body, expect=RunRequest)
    assert request.execution_id == execution_id and request.job == stored
    assert (request.job.description, request.job.timezone, request.job.max_retries) == \
        ("nightly copy", "Europe/Berlin", 5)
    assert request.job.destination.allow_rounding and request.job.zero_dates == "null"
    assert set(request.projects) == {1, 2} and request.project(2).options == {"zero_dates": "null"}


def test_a_stored_job_that_no_longer_validates_fails_its_execution_without_stopping_the_others(sessions) -> None:
    transport, topology = MemoryTransport(), Topology("w")
    topology.declare(transport)
    broken_job, broken = _queued(sessions)
    _, fine = _queued(sessions, "fine")
    with sessions() as s:
        s.get(JobRow, broken_job).steps = [{"name": "a", "project_id": 1, "sql": "  "}]
        s.commit()
    with sessions() as s:
        assert dispatch_queued(s, transport, topology, now=T0, batch_rows=100) == 1
    request = messages.decode(transport.get(topology.runs, timeout_s=1).body, expect=RunRequest)
    assert request.execution_id == fine
    with sessions() as s:
        row = s.scalars(sa.select(ExecutionRow).where(ExecutionRow.id == broken)).one()
        assert (row.status, row.error_kind) == ("failed", "config")
        assert "steps.0.sql" in row.error_message and "SQL must not be empty" in row.error_message


def test_a_load_request_round_trips_with_its_columns_and_destination_connection() -> None:
    job = JobSpec(name="j", steps=[{"name": "s", "project_id": 1, "sql": "SELECT 1"}],
                  destination={"project_id": 2, "table": "t", "mode": "sync_delete", "key_columns": ["id"]})
    sent = LoadRequest(execution_id=4, job_id=1, job=job, batch_queue="q",
                       columns=(Column("id", "bigint", nullable=False), Column("name", "text", length=20)),
                       project=ProjectSnapshot(id=2, name="d", engine="postgresql", host="h", password_enc="enc"))
    got = messages.decode(sent.encode(), expect=LoadRequest)
    assert got == sent and got.destination.mode.value == "sync_delete" and got.job_name == "j"
