"""The scheduler: cron ticks, dispatch of queued executions, and the watchdog.

Every decision is made in the metadata database, so several replicas can run:
a tick is claimed by a compare-and-set on ``next_run_at`` (one replica wins), and
queued executions are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite
serialises writers anyway). An execution is marked dispatched *before* its run
request is published: a crash in between costs a timeout and a retry, never a
second concurrent run of the same execution.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from shared import metrics
from shared.messages import Cancel, Event, RunRequest
from shared.store.executions import create_execution, has_active_execution
from shared.store.jobs import compute_next_run
from shared.store.models import ExecutionRow, JobRow, ProjectRow, utcnow
from shared.store.projects import project_snapshot
from shared.topology import Topology
from shared.transport.base import Transport

log = logging.getLogger("datamig.scheduler")
DISPATCH_BATCH = 20
DEADLINE_GRACE_S = 30.0
Clock = Callable[[], datetime]


def _locking(session: Session, stmt: sa.Select) -> sa.Select:
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        return stmt.with_for_update(skip_locked=True)
    return stmt


def fire_due_jobs(session: Session, *, now: datetime) -> list[ExecutionRow]:
    """Create one execution per due job (or a ``skipped`` one if the previous still runs).

    Missed ticks collapse into one run: the next run time is computed from ``now``.
    """
    due = session.scalars(sa.select(JobRow).where(
        JobRow.enabled.is_(True), JobRow.archived.is_(False), JobRow.next_run_at.is_not(None),
        JobRow.next_run_at <= now).order_by(JobRow.next_run_at)).all()
    fired = []
    for job in due:
        old = job.next_run_at
        new = compute_next_run(job, now=now)
        claimed = session.execute(sa.update(JobRow).where(JobRow.id == job.id, JobRow.next_run_at == old)
                                  .values(next_run_at=new).execution_options(synchronize_session=False))
        if claimed.rowcount != 1:
            continue  # another replica took this tick
        metrics.SCHEDULE_LAG.labels(job_name=job.name).observe(max(0.0, (now - old).total_seconds()))
        if has_active_execution(session, job.id):
            row = create_execution(session, job, trigger="schedule", status="skipped", now=now)
            row.finished_at = row.started_at = now
            row.error_message, row.error_kind = "previous execution still running; tick skipped", "overlap"
        else:
            row = create_execution(session, job, trigger="schedule", not_before=now, now=now)
        fired.append(row)
        log.info("job %s (%s) fired for %s, %s", job.id, job.name, old.isoformat(), row.status)
    return fired


def build_run_request(session: Session, execution: ExecutionRow, job: JobRow, *, now: datetime,
                      batch_rows: int, timeout_scale: float = 1.0) -> RunRequest:
    project_ids = {s["project_id"] for s in job.steps} | {job.destination["project_id"]}
    projects = session.scalars(sa.select(ProjectRow).where(ProjectRow.id.in_(project_ids))).all()
    deadline = now + timedelta(minutes=job.timeout_minutes * timeout_scale)
    execution.deadline_at = deadline
    spec = {"name": job.name, "steps": job.steps, "destination": job.destination,
            "timeout_minutes": job.timeout_minutes, "validate_before_execution": job.validate_before_execution,
            "max_retries": job.max_retries}
    return RunRequest(run=execution.id, job_id=job.id, attempt=execution.attempt, job=spec,
                      projects={p.id: project_snapshot(p) for p in projects},
                      deadline=deadline.timestamp(), batch_rows=batch_rows)


def dispatch_queued(session: Session, transport: Transport, topology: Topology, *, now: datetime,
                    batch_rows: int, timeout_scale: float = 1.0) -> int:
    """Publish run requests for queued executions whose time has come. Returns how many."""
    rows = session.scalars(_locking(session, sa.select(ExecutionRow).where(
        ExecutionRow.status == "queued", ExecutionRow.dispatched_at.is_(None),
        sa.or_(ExecutionRow.not_before.is_(None), ExecutionRow.not_before <= now))
        .order_by(ExecutionRow.id).limit(DISPATCH_BATCH))).all()
    requests = []
    for row in rows:
        job = session.get(JobRow, row.job_id)
        if job is None or row.cancel_requested:
            row.status, row.finished_at = "cancelled", now
            continue
        row.dispatched_at = now
        requests.append(build_run_request(session, row, job, now=now, batch_rows=batch_rows,
                                          timeout_scale=timeout_scale))
    session.commit()
    for i, request in enumerate(requests):
        try:
            transport.publish(request.encode(), queue=topology.runs)
        except Exception:
            _undispatch(session, [r.run for r in requests[i:]])
            raise
    return len(requests)


def _undispatch(session: Session, execution_ids: list[int]) -> None:
    """Put executions whose run request could not be published back in the queue."""
    session.execute(sa.update(ExecutionRow).where(ExecutionRow.id.in_(execution_ids))
                    .values(dispatched_at=None, deadline_at=None))
    session.commit()


def _fail(transport: Transport, topology: Topology, row: ExecutionRow, *, status: str, kind: str,
          message: str) -> None:
    transport.publish(Cancel(run=row.id, status=status, reason=message).encode(),
                      exchange=topology.control, routing_key="cancel")
    event = Event(run=row.id, job_id=row.job_id, kind="finished", service="scheduler", status=status,
                  error={"message": message, "kind": kind, "transient": True})
    transport.publish(event.encode(), exchange=topology.events, routing_key=f"finished.{row.id}")


def _lost_service(row: ExecutionRow, stale: datetime) -> str | None:
    """Which worker of a running execution went silent, if any."""
    if row.status != "running":
        return None
    if not row.extractor_done and row.extractor_heartbeat_at is not None and row.extractor_heartbeat_at < stale:
        return "extractor"
    if row.loader_heartbeat_at is not None and row.loader_heartbeat_at < stale:
        return "loader"
    if row.extractor_heartbeat_at is None and row.loader_heartbeat_at is None and row.heartbeat_at is not None \
            and row.heartbeat_at < stale:
        return "worker"
    return None


def watch_running(session: Session, transport: Transport, topology: Topology, *, now: datetime,
                  worker_lost_s: float) -> int:
    """Fail executions whose worker went silent or whose deadline passed. Returns how many.

    The extractor is watched until it has sent its end marker, the loader from the moment
    it took the execution; either going silent for ``worker_lost_s`` fails the execution
    (worker lost, retried) and removes its batch queue.
    """
    stale = now - timedelta(seconds=worker_lost_s)
    late = now - timedelta(seconds=DEADLINE_GRACE_S)
    rows = session.scalars(sa.select(ExecutionRow).where(
        ExecutionRow.status.in_(("queued", "running")), ExecutionRow.dispatched_at.is_not(None),
        sa.or_(sa.and_(ExecutionRow.status == "running", ExecutionRow.heartbeat_at < stale),
               ExecutionRow.extractor_heartbeat_at < stale, ExecutionRow.loader_heartbeat_at < stale,
               ExecutionRow.deadline_at < late))).all()
    failed = 0
    for row in rows:
        if row.deadline_at is not None and row.deadline_at < late:
            _fail(transport, topology, row, status="timed_out", kind="timeout",
                  message="execution exceeded its timeout and was stopped")
        elif (lost := _lost_service(row, stale)) is not None:
            _fail(transport, topology, row, status="failed", kind="worker_lost",
                  message=f"no heartbeat from the {lost} for {worker_lost_s:.0f} s (worker lost)")
        else:
            continue
        transport.delete_queue(topology.batches(row.id))
        failed += 1
    return failed


class Scheduler:
    """The scheduler loop: only sleeps and calls the functions above."""

    def __init__(self, sessions: sessionmaker[Session], transport: Transport, topology: Topology, *,
                 poll_s: float, worker_lost_s: float, batch_rows: int, timeout_scale: float = 1.0,
                 clock: Clock = utcnow) -> None:
        self._sessions, self._transport, self._topology = sessions, transport, topology
        self._poll_s, self._worker_lost_s, self._batch_rows = poll_s, worker_lost_s, batch_rows
        self._clock, self._timeout_scale = clock, timeout_scale
        self._stop = threading.Event()
        self._last_watch = 0.0

    def tick(self) -> None:
        """One pass: fire due jobs, dispatch, and (every few seconds) the watchdog."""
        now = self._clock()
        with self._sessions() as session:
            fire_due_jobs(session, now=now)
            session.commit()
        with self._sessions() as session:
            dispatch_queued(session, self._transport, self._topology, now=now, batch_rows=self._batch_rows,
                            timeout_scale=self._timeout_scale)
        if time.monotonic() - self._last_watch >= min(5.0, self._worker_lost_s / 4):
            self._last_watch = time.monotonic()
            with self._sessions() as session:
                watch_running(session, self._transport, self._topology, now=now,
                              worker_lost_s=self._worker_lost_s)
            self._observe_queues()

    def _observe_queues(self) -> None:
        for kind, name in (("runs", self._topology.runs), ("loads", self._topology.loads)):
            depth, consumers = self._transport.queue_depth(name)
            metrics.QUEUE_DEPTH.labels(queue=kind).set(depth)
            metrics.QUEUE_CONSUMERS.labels(queue=kind).set(consumers)

    def run(self) -> None:
        log.info("scheduler running (poll every %.1f s)", self._poll_s)
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the loop survives a failed pass (db or broker down)
                log.exception("scheduler pass failed; retrying")
                self._stop.wait(min(5.0, self._poll_s * 4))
            self._stop.wait(self._poll_s)

    def stop(self) -> None:
        self._stop.set()
