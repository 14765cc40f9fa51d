"""The scheduler: cron ticks, dispatch of queued executions, and the watchdog.

Every decision is made in the metadata database, so several replicas can run:
a tick is claimed by a compare-and-set on ``next_run_at`` (one replica wins), and
queued executions are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite
serialises writers anyway). An execution is marked dispatched *before* its run
request is published, and published right after: a crash in between leaves it
dispatched but unpublished, and the watchdog (:mod:`services.scheduler.watchdog`)
queues it again after ``DM_WORKER_LOST_S`` unless a worker was seen with it.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from shared import metrics
from shared.connections import build_url, create_db_engine
from shared.faults import fault_point
from shared.load.state import Settled, execution_key, settle
from shared.messages import RunRequest
from shared.store.watermarks import run_watermark, waits_for_another_run
from shared.secrets import SecretBox
from shared.store.db import lock_rows
from shared.store.executions import create_execution, has_active_execution
from shared.store.jobs import compute_next_run, job_spec
from shared.store.models import ExecutionRow, JobRow, ProjectRow, utcnow
from shared.store.projects import project_snapshot
from shared.topology import Topology
from shared.transport.base import Transport

from services.scheduler.liveness import Liveness
from services.scheduler.watchdog import DEADLINE_GRACE_S, Watchdog

log = logging.getLogger("datamig.scheduler")
DISPATCH_BATCH = 20
__all__ = ["DEADLINE_GRACE_S", "Scheduler", "dispatch_queued", "fire_due_jobs", "settle_in_destination",
           "watch_running"]
Clock = Callable[[], datetime]


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
    """The run request: a snapshot of the whole job (:func:`job_spec`, every field) and of its projects.

    Raises pydantic's ValidationError when the stored job no longer validates."""
    spec = job_spec(job)
    project_ids = {s.project_id for s in spec.steps} | {spec.destination.project_id}
    projects = session.scalars(sa.select(ProjectRow).where(ProjectRow.id.in_(project_ids))).all()
    deadline = now + timedelta(minutes=job.timeout_minutes * timeout_scale)
    execution.deadline_at = deadline
    execution.watermark_from = job.watermark if job.incremental else None
    return RunRequest(execution_id=execution.id, job_id=job.id, attempt=execution.attempt, job=spec,
                      watermark=run_watermark(job) if job.incremental else {},
                      projects={p.id: project_snapshot(p) for p in projects},
                      deadline=deadline.timestamp(), batch_rows=batch_rows,
                      execution_key=execution_key(execution.id, execution.queued_at))


def dispatch_queued(session: Session, transport: Transport, topology: Topology, *, now: datetime,
                    batch_rows: int, timeout_scale: float = 1.0) -> int:
    """Publish run requests for queued executions whose time has come. Returns how many."""
    due = sa.select(ExecutionRow).where(
        ExecutionRow.status == "queued", ExecutionRow.dispatched_at.is_(None),
        sa.or_(ExecutionRow.not_before.is_(None), ExecutionRow.not_before <= now)).order_by(ExecutionRow.id)
    rows = session.scalars(lock_rows(session, due.limit(DISPATCH_BATCH), skip_locked=True)).all()
    requests = []
    for row in rows:
        job = session.get(JobRow, row.job_id)
        if job is None or row.cancel_requested:
            row.status, row.finished_at = "cancelled", now
            continue
        if waits_for_another_run(session, row, job):  # incremental runs of a job are serial
            continue
        try:
            request = build_run_request(session, row, job, now=now, batch_rows=batch_rows,
                                        timeout_scale=timeout_scale)
        except ValidationError as exc:  # saved before a rule it now breaks: it cannot run as it is
            _refuse(row, exc, now=now)
            continue
        row.dispatched_at = now
        requests.append(request)
    session.commit()
    fault_point("scheduler_after_dispatch")
    for i, request in enumerate(requests):
        try:
            transport.publish(request.encode(), queue=topology.runs)
        except Exception:
            _undispatch(session, [r.execution_id for r in requests[i:]])
            raise
        session.execute(sa.update(ExecutionRow).where(ExecutionRow.id == request.execution_id).values(published_at=now))
        session.commit()  # from here the watchdog never publishes it again
    return len(requests)


def _refuse(row: ExecutionRow, exc: ValidationError, *, now: datetime) -> None:
    """Fail an execution whose stored job no longer validates (no retry: editing the job heals it)."""
    reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {str(e['msg']).removeprefix('Value error, ')}"
                        for e in exc.errors())
    row.status, row.started_at, row.finished_at = "failed", row.started_at or now, now
    row.error_message, row.error_kind = f"the job needs editing: {reasons}", "config"
    log.warning("execution %s not dispatched: %s", row.id, row.error_message)


def _undispatch(session: Session, execution_ids: list[int]) -> None:
    """Put executions whose run request could not be published back in the queue."""
    session.execute(sa.update(ExecutionRow).where(ExecutionRow.id.in_(execution_ids))
                    .values(dispatched_at=None, deadline_at=None))
    session.commit()


def watch_running(session: Session, transport: Transport, topology: Topology, *, now: datetime,
                  worker_lost_s: float) -> int:
    """One stateless watchdog pass on stored heartbeats only (see :class:`Watchdog`)."""
    return Watchdog(transport, topology, worker_lost_s=worker_lost_s).run(session, now=now)


def settle_in_destination(session: Session, row: ExecutionRow, *, box: SecretBox) -> Settled:
    """Ask the execution's destination what it holds (:func:`shared.load.state.settle`).

    Raises DestinationError when it cannot answer."""
    from shared.errors import DestinationError

    job = session.get(JobRow, row.job_id)
    project = session.get(ProjectRow, int(job.destination["project_id"])) if job is not None else None
    if project is None:
        raise DestinationError("the job or its destination project no longer exists")
    try:
        engine = create_db_engine(build_url(project_snapshot(project).connection(box)),
                                  poolclass=sa.pool.NullPool)
    except Exception as exc:  # noqa: BLE001 - bad settings or secret: the destination cannot answer
        raise DestinationError(f"cannot connect to the destination: {type(exc).__name__}") from exc
    try:
        return settle(engine, execution_id=row.id, job_id=row.job_id, key=execution_key(row.id, row.queued_at))
    finally:
        engine.dispose()


class Scheduler:
    """The scheduler loop: only sleeps and calls the functions above."""

    def __init__(self, sessions: sessionmaker[Session], transport: Transport, topology: Topology, *,
                 poll_s: float, worker_lost_s: float, batch_rows: int, timeout_scale: float = 1.0,
                 clock: Clock = utcnow, box: SecretBox | None = None) -> None:
        self._sessions, self._transport, self._topology = sessions, transport, topology
        self._poll_s, self._worker_lost_s, self._batch_rows = poll_s, worker_lost_s, batch_rows
        self._clock, self._timeout_scale = clock, timeout_scale
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by an announced execution (shared.wakeup) or stop()
        self._last_watch = 0.0
        self._liveness = Liveness(transport, topology, on_queued=self._wake.set)
        settler = (lambda session, row: settle_in_destination(session, row, box=box)) if box is not None else None
        self._watchdog = Watchdog(transport, topology, worker_lost_s=worker_lost_s, liveness=self._liveness,
                                  settle=settler)

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
                self._watchdog.run(session, now=now)
            self._observe_queues()

    def _observe_queues(self) -> None:
        for kind, name in (("runs", self._topology.runs), ("loads", self._topology.loads)):
            depth, consumers = self._transport.queue_depth(name)
            metrics.QUEUE_DEPTH.labels(queue=kind).set(depth)
            metrics.QUEUE_CONSUMERS.labels(queue=kind).set(consumers)

    def serve(self) -> None:
        """Loop until :meth:`stop`."""
        log.info("scheduler running (poll every %.1f s)", self._poll_s)
        while not self._stop.is_set():
            try:
                self._liveness.start()
                break
            except Exception:  # noqa: BLE001 - broker not there yet
                log.warning("cannot listen to worker events yet; retrying", exc_info=True)
                self._stop.wait(2.0)
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the loop survives a failed pass (db or broker down)
                log.exception("scheduler pass failed; retrying")
                self._stop.wait(min(5.0, self._poll_s * 4))
            self._wake.wait(self._poll_s)  # polling is the fallback; an announcement wakes it at once
            self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._liveness.stop()
