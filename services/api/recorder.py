"""The history writer: consumes worker events and records them idempotently."""
from __future__ import annotations

import logging
from dataclasses import replace

from sqlalchemy.orm import Session, sessionmaker

from shared import messages, metrics
from shared.messages import Cancel, Event
from shared.store.executions import Recorded, note_unstored_failed_rows, record_event
from shared.store.models import ExecutionRow, JobRow
from shared.topology import Topology
from shared.transport.base import Consumer, Message, Transport

log = logging.getLogger("datamig.api.recorder")


class Recorder:
    """Applies events to the metadata store; one instance per API process."""

    def __init__(self, sessions: sessionmaker[Session], transport: Transport, topology: Topology, *,
                 retry_base_s: float, retry_max_s: float) -> None:
        self._sessions = sessions
        self._transport = transport
        self._topology = topology
        self._retry = {"retry_base_s": retry_base_s, "retry_max_s": retry_max_s}
        self._consumer: Consumer | None = None

    def start(self) -> None:
        self._consumer = self._transport.consume(self._topology.recorder, self.handle, prefetch=50)

    def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.stop()
            self._consumer = None

    def handle(self, message: Message) -> None:
        """Record one event. Raises DecodeError for a malformed message (it is dead-lettered)."""
        event = messages.decode(message.body, expect=Event)
        self.apply(event)

    def apply(self, event: Event) -> None:
        """Record one event. When its failed rows cannot be stored, the event is recorded without
        them (status, counts, error) and the execution counts them as ``failed_rows_not_stored``."""
        try:
            recorded, row, job, resend_cancel = self._record(event)
        except Exception:
            if not event.failed_rows:
                raise
            log.exception("execution %s: the details of %d failed rows could not be stored; recording the event "
                          "without them", event.execution_id, len(event.failed_rows))
            recorded, row, job, resend_cancel = self._record(replace(event, failed_rows=[]),
                                                             unstored=len(event.failed_rows))
        self._after(event, recorded, row, job, resend_cancel)

    def _record(self, event: Event, *, unstored: int = 0) -> tuple[Recorded, ExecutionRow | None, JobRow | None, bool]:
        with self._sessions() as session:
            if unstored:
                note_unstored_failed_rows(session, event.execution_id, unstored)
            recorded = record_event(session, event, **self._retry)
            row = session.get(ExecutionRow, event.execution_id)
            job = session.get(JobRow, row.job_id) if row is not None else None
            resend_cancel = row is not None and row.cancel_requested and row.status == "running"
            session.commit()
        return recorded, row, job, resend_cancel

    def _after(self, event: Event, recorded: Recorded, row: ExecutionRow | None, job: JobRow | None,
               resend_cancel: bool) -> None:
        if row is not None and job is not None:
            _observe(recorded, row, job.name)
        if recorded.retry is not None:
            log.info("execution %s %s; retry queued as execution %s", event.execution_id, event.status,
                     recorded.retry.id)
        if resend_cancel:
            cancel = Cancel(execution_id=event.execution_id, status="cancelled", reason="cancelled by a user")
            self._transport.publish(cancel.encode(), exchange=self._topology.control, routing_key="cancel")


def _observe(recorded: Recorded, row: ExecutionRow, job_name: str) -> None:
    """Metrics of a transition, counted once by the API that recorded it."""
    if recorded.started and not recorded.finished:
        metrics.EXECUTIONS_RUNNING.labels(job_name=job_name).inc()
    if recorded.finished:
        metrics.EXECUTIONS.labels(job_name=job_name, status=row.status).inc()
        if not recorded.started:
            metrics.EXECUTIONS_RUNNING.labels(job_name=job_name).dec()
        if row.started_at and row.finished_at:
            metrics.EXECUTION_DURATION.labels(job_name=job_name, status=row.status).observe(
                (row.finished_at - row.started_at).total_seconds())
    if recorded.retry is not None:
        metrics.RETRIES.labels(job_name=job_name).inc()
