"""The watchdog: finds executions whose worker vanished or whose deadline passed, and
decides them from the truth.

* Signs of life are the newer of the stored heartbeats and this replica's own
  :class:`~services.scheduler.liveness.Liveness` (so an API outage fails nothing).
* The extractor is watched until its end marker, the loader from its first beat. A
  running execution whose batches wait with no loader beating, while no load request
  waits either, lost its loader before its first beat.
* A dispatched execution never published (a scheduler killed between its dispatch commit
  and the publish) goes back to the queue, unless a worker was seen with it.
* Before failing or timing out an execution, the destination is asked
  (:func:`shared.load.state.settle`): committed → recorded completed with the committed
  counts; a load transaction still open → stopped and decided on a later pass; otherwise
  failed (worker lost, retried) or timed out. Without a destination answer a lost worker
  is waited for, and the deadline decides.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.errors import DestinationError
from shared.load.state import COMMITTED, Settled
from shared.messages import Cancel, Event
from shared.store.models import ExecutionRow
from shared.topology import Topology
from shared.transport.base import Transport

from services.scheduler.liveness import Liveness

log = logging.getLogger("datamig.scheduler.watchdog")
DEADLINE_GRACE_S = 30.0
Settler = Callable[[Session, ExecutionRow], Settled]  # raises DestinationError


class Watchdog:
    """One replica's watchdog; keeps what it observed between passes."""

    def __init__(self, transport: Transport, topology: Topology, *, worker_lost_s: float,
                 liveness: Liveness | None = None, settle: Settler | None = None) -> None:
        self._transport, self._topology = transport, topology
        self._lost_s, self._liveness, self._settle = worker_lost_s, liveness, settle
        self._orphaned: dict[int, datetime] = {}  # batches waiting for a loader, since
        self._now = datetime.min
        self._decided: dict[int, datetime] = {}  # final event sent at; history may lag (API down)
        self._resend_after = timedelta(seconds=max(60.0, 5 * worker_lost_s))

    def run(self, session: Session, *, now: datetime) -> int:
        """One pass. Returns how many executions it decided or sent back to the queue."""
        stale = now - timedelta(seconds=self._lost_s)
        late = now - timedelta(seconds=DEADLINE_GRACE_S)
        rows = session.scalars(sa.select(ExecutionRow).where(
            ExecutionRow.status.in_(("queued", "running")), ExecutionRow.dispatched_at.is_not(None),
            sa.or_(ExecutionRow.heartbeat_at < stale, ExecutionRow.extractor_heartbeat_at < stale,
                   ExecutionRow.loader_heartbeat_at < stale, ExecutionRow.deadline_at < late,
                   ExecutionRow.dispatched_at < stale))).all()
        live = self._liveness if self._liveness is not None and self._liveness.started else None
        listening = live is None or live.listening_s(now) >= self._lost_s
        self._now = now
        decided, republish = 0, []
        for row in rows:
            if now - self._decided.get(row.id, now - self._resend_after) < self._resend_after or (
                    live is not None and live.finished(row.id)):
                continue  # its final event is on its way to history
            if row.deadline_at is not None and row.deadline_at < late:
                decided += self._decide(session, row, status="timed_out", kind="timeout",
                                        message="execution exceeded its timeout and was stopped", final=True)
            elif not listening:
                continue
            elif self._unpublished(row, stale):
                republish.append(row.id)
            elif (lost := self._lost_service(row, stale, now)) is not None:
                decided += self._decide(session, row, status="failed", kind="worker_lost",
                                        message=f"no heartbeat from the {lost} for {self._lost_s:.0f} s (worker lost)")
        if republish:
            log.warning("executions %s were dispatched but never published; queued again", republish)
            session.execute(sa.update(ExecutionRow).where(  # re-checked: another replica may have just dispatched
                ExecutionRow.id.in_(republish), ExecutionRow.status == "queued", ExecutionRow.published_at.is_(None),
                ExecutionRow.dispatched_at < stale).values(dispatched_at=None, deadline_at=None)
                .execution_options(synchronize_session=False))
            session.commit()
        if self._liveness is not None:
            self._liveness.forget_old(now)
        return decided + len(republish)

    # ------------------------------------------------------------------ signs of life
    def _beat(self, row: ExecutionRow, service: str) -> datetime | None:
        stored = getattr(row, f"{service}_heartbeat_at")
        live = self._liveness.beat(row.id, service) if self._liveness else None
        return max((t for t in (stored, live) if t is not None), default=None)

    def _unpublished(self, row: ExecutionRow, stale: datetime) -> bool:
        seen = self._liveness is not None and self._liveness.seen(row.id)
        return (row.status == "queued" and row.published_at is None and row.heartbeat_at is None and not seen
                and row.dispatched_at is not None and row.dispatched_at < stale)

    def _lost_service(self, row: ExecutionRow, stale: datetime, now: datetime) -> str | None:
        """Which worker of a running execution went silent, if any."""
        if row.status != "running":
            return None
        extracted = row.extractor_done or (self._liveness is not None and self._liveness.extracted(row.id))
        extractor, loader = self._beat(row, "extractor"), self._beat(row, "loader")
        if not extracted and extractor is not None and extractor < stale:
            return "extractor"
        if loader is not None and loader < stale:
            return "loader"
        if extractor is None and loader is None and row.heartbeat_at is not None and row.heartbeat_at < stale:
            return "worker"
        if loader is None and self._orphaned_since(row, now) < stale:
            return "loader"
        return None

    def _orphaned_since(self, row: ExecutionRow, now: datetime) -> datetime:
        """Since when this execution's batches wait with no load request waiting (now if they do not)."""
        depth, _ = self._transport.queue_depth(self._topology.batches(row.id))
        waiting_loads, _ = self._transport.queue_depth(self._topology.loads) if depth else (0, 0)
        if not depth or waiting_loads:
            self._orphaned.pop(row.id, None)
            return now
        return self._orphaned.setdefault(row.id, now)

    # ------------------------------------------------------------------ decisions
    def _decide(self, session: Session, row: ExecutionRow, *, status: str, kind: str, message: str,
                final: bool = False) -> int:
        """Settle with the destination, then record. Returns 1 when decided, 0 to wait."""
        if self._settle is not None:
            try:
                settled = self._settle(session, row)
            except DestinationError as exc:
                log.warning("execution %s: the destination cannot tell whether it committed: %s", row.id, exc)
                if not final:
                    return 0  # wait: the deadline decides if the destination stays silent
                settled = None
            if settled is not None and settled.outcome == COMMITTED:
                self._completed(row, settled.counts, settled.watermark)
                self._remember(row.id)
                return 1
            if settled is not None and settled.outcome == "in_flight":
                log.info("execution %s: its load transaction is still open; stopping it", row.id)
                self._publish_cancel(row, status=status, message=message)
                return 0
        self._publish_cancel(row, status=status, message=message)
        event = Event(execution_id=row.id, job_id=row.job_id, kind="finished", service="scheduler", status=status,
                      error={"message": message, "kind": kind, "transient": True})
        self._transport.publish(event.encode(), exchange=self._topology.events, routing_key=f"finished.{row.id}")
        self._transport.delete_queue(self._topology.batches(row.id))
        self._orphaned.pop(row.id, None)
        self._remember(row.id)
        return 1

    def _remember(self, execution_id: int) -> None:
        self._decided[execution_id] = self._now
        while len(self._decided) > 10_000:
            self._decided.pop(next(iter(self._decided)))

    def _completed(self, row: ExecutionRow, counts: dict[str, int], watermark: dict | None = None) -> None:
        status = "partial_success" if counts.get("rows_failed") else "completed"
        log.warning("execution %s: its worker vanished after the destination committed; recorded %s", row.id, status)
        event = Event(execution_id=row.id, job_id=row.job_id, kind="finished", service="scheduler", status=status,
                      counts=counts, watermark=watermark or {})  # the destination's committed watermark
        self._transport.publish(event.encode(), exchange=self._topology.events, routing_key=f"finished.{row.id}")
        self._transport.delete_queue(self._topology.batches(row.id))

    def _publish_cancel(self, row: ExecutionRow, *, status: str, message: str) -> None:
        self._transport.publish(Cancel(execution_id=row.id, status=status, reason=message).encode(),
                                exchange=self._topology.control, routing_key="cancel")
