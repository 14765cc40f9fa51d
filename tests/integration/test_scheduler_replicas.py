"""Several scheduler processes on one PostgreSQL metadata database: each tick fires once."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from services.scheduler.scheduler import Scheduler
from shared.jobspec import JobSpec
from shared.store.db import migrate, open_store, session_factory
from shared.store.jobs import apply_job
from shared.store.models import ExecutionRow, JobRow, ProjectRow
from shared.topology import Topology
from shared.transport.memory import MemoryTransport

T0 = datetime(2026, 5, 4, 10, 0, 0, tzinfo=timezone.utc)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.now += timedelta(seconds=seconds)


def test_two_schedulers_fire_a_minutely_job_exactly_three_times_in_three_minutes(pg_url) -> None:
    # Given a job every minute and two schedulers, each with its own connection pool
    engine = open_store(pg_url)
    migrate(engine)
    sessions = session_factory(engine)
    with sessions() as s:
        project = ProjectRow(name="p", engine="postgresql", host="h", database="d", options={})
        s.add(project)
        s.flush()
        s.add(apply_job(JobRow(), JobSpec(name="minutely", schedule="* * * * *", enabled=True,
                                          steps=[{"name": "a", "project_id": project.id, "sql": "SELECT 1"}],
                                          destination={"project_id": project.id, "table": "t"}), now=T0))
        s.commit()
    clock = FakeClock(T0)
    transport, topology = MemoryTransport(), Topology("replicas")
    topology.declare(transport)
    replicas = [Scheduler(session_factory(open_store(pg_url)), transport, topology, poll_s=0.01,
                          worker_lost_s=60, batch_rows=100, clock=clock) for _ in range(2)]
    # When three minutes pass, both replicas ticking as fast as they can, concurrently
    for _ in range(3 * 12):
        clock.advance(5)
        barrier = threading.Barrier(2)

        def tick(scheduler: Scheduler) -> None:
            barrier.wait()
            for _ in range(3):
                scheduler.tick()

        threads = [threading.Thread(target=tick, args=(r,)) for r in replicas]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with sessions() as s:  # the "run" finishes, so the next tick is not an overlap
            s.execute(sa.update(ExecutionRow).where(ExecutionRow.status == "queued").values(status="completed"))
            s.commit()
    # Then exactly three executions exist, one per minute, and three run requests were sent
    with sessions() as s:
        runs = s.scalars(sa.select(ExecutionRow).order_by(ExecutionRow.id)).all()
    assert [r.trigger for r in runs] == ["schedule"] * 3
    assert [r.queued_at.replace(second=0, microsecond=0) for r in runs] == [
        T0 + timedelta(minutes=m) for m in (1, 2, 3)]
    sent = 0
    while transport.get(topology.runs, timeout_s=0.05) is not None:
        sent += 1
    assert sent == 3
    transport.close()
