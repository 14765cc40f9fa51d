"""The recorder's alert hook on SQLite metadata: alerts join the final-status transaction,
and a problem while queueing them never stops the status from being recorded."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from services.api.recorder import Recorder
from shared.alerts import outbox
from shared.alerts.models import ChannelRow, NotificationRow
from shared.jobspec import JobSpec
from shared.messages import Event
from shared.store.db import migrate, open_store, session_factory
from shared.store.executions import create_execution
from shared.store.jobs import apply_job
from shared.store.models import ExecutionRow, JobRow, ProjectRow
from shared.topology import Topology
from shared.transport.memory import MemoryTransport


@pytest.fixture
def store(tmp_path):
    engine = open_store(f"sqlite:///{tmp_path / 'meta.db'}")
    migrate(engine)
    sessions = session_factory(engine)
    with sessions() as s:
        p = ProjectRow(name="p", engine="sqlite", database="/tmp/x.db", options={})
        channel = ChannelRow(name="hook", kind="webhook", settings={"url": "http://127.0.0.1:9/x"})
        s.add_all([p, channel])
        s.flush()
        job = apply_job(JobRow(), JobSpec(name="j", max_retries=0, alerts={"channels": [channel.id]},
                                          steps=[{"name": "a", "project_id": p.id, "sql": "SELECT 1"}],
                                          destination={"project_id": p.id, "table": "t"}))
        s.add(job)
        s.flush()
        eid = create_execution(s, job, trigger="manual").id
        s.commit()
    recorder = Recorder(sessions, MemoryTransport(), Topology("t"), retry_base_s=0, retry_max_s=0,
                        public_url="http://dm")
    return sessions, recorder, eid


def finish(recorder: Recorder, eid: int) -> None:
    recorder.apply(Event(execution_id=eid, kind="started", ts=100.0))
    recorder.apply(Event(execution_id=eid, kind="finished", status="failed", ts=105.0, error={"message": "boom"}))


def state(sessions, eid: int) -> tuple[str, int]:
    with sessions() as s:
        status = s.get(ExecutionRow, eid).status
        queued = s.scalar(sa.select(sa.func.count()).select_from(NotificationRow))
    return status, queued


def test_a_failed_run_queues_its_alert_with_the_status(store) -> None:
    sessions, recorder, eid = store
    finish(recorder, eid)
    assert state(sessions, eid) == ("failed", 1)
    with sessions() as s:
        note = s.scalars(sa.select(NotificationRow)).one()
    assert (note.event, note.status, note.payload["link"]) == ("failed", "pending", f"http://dm/#/executions/{eid}")


def test_a_problem_while_queueing_alerts_still_records_the_status_and_leaves_no_half_written_alert(
        store, monkeypatch: pytest.MonkeyPatch) -> None:
    sessions, recorder, eid = store
    real = outbox.enqueue_alerts

    def half_then_fail(session, row, job, **kw):  # type: ignore[no-untyped-def]
        real(session, row, job, **kw)
        session.flush()
        raise RuntimeError("the alert rules exploded")

    monkeypatch.setattr(outbox, "enqueue_alerts", half_then_fail)
    finish(recorder, eid)
    assert state(sessions, eid) == ("failed", 0)
