"""The outbox: notification rows written by the history recorder, in the transaction that
records an execution's final status.

Because the status and its notifications commit together, a crash either loses neither or
records neither (and the event, not acknowledged, is recorded again). Each row's
``idempotency_key`` is unique, so the same notification is never queued twice.
"""
from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from shared.alerts.models import AlertDefaultsRow, ChannelRow, NotificationRow
from shared.alerts.payload import build_payload, execution_link, idempotency_key
from shared.alerts.rules import FAILURE_STATUSES, SLOW_HISTORY, SUCCESS_STATUSES, AlertRules, RunFacts, decide, \
    notified_events
from shared.store.executions import execution_out
from shared.store.models import AuditRow, ExecutionRow, JobRow, utcnow

log = logging.getLogger("datamig.alerts.outbox")
IGNORED_STATUSES = ("cancelled", "skipped", "queued", "running")


def rules_for(session: Session, job: JobRow) -> AlertRules | None:
    """The job's own rules, else the defaults for all jobs, else None."""
    raw = job.alerts
    if raw is None:
        defaults = session.get(AlertDefaultsRow, 1)
        raw = defaults.rules if defaults is not None else None
    if not raw:
        return None
    try:
        return AlertRules.model_validate(raw)
    except ValueError:
        log.warning("job %s: its alert rules cannot be read; no alert", job.id)
        return None


def _runs(session: Session, job_id: int, *, before: int, statuses: tuple[str, ...] | None, limit: int):
    """The job's earlier runs (executions not retried), newest first (by id: the order they were queued)."""
    retry = aliased(ExecutionRow)
    retried = sa.exists().where(retry.retry_of == ExecutionRow.id)  # index ix_dm_executions_retry_of (0009)
    q = (sa.select(ExecutionRow).where(ExecutionRow.job_id == job_id, ExecutionRow.id != before,
                                       ExecutionRow.finished_at.is_not(None), ~retried)
         .order_by(ExecutionRow.id.desc()).limit(limit))
    q = q.where(ExecutionRow.status.in_(statuses)) if statuses else q.where(ExecutionRow.status.not_in(
        IGNORED_STATUSES))
    return session.scalars(q).all()


def _duration(row: ExecutionRow) -> float | None:
    if row.started_at is None or row.finished_at is None:
        return None
    return (row.finished_at - row.started_at).total_seconds()


def run_facts(session: Session, row: ExecutionRow, *, failures_needed: int) -> RunFacts:
    earlier = _runs(session, row.job_id, before=row.id, statuses=None, limit=max(failures_needed, 1))
    consecutive = 1 if row.status in FAILURE_STATUSES else 0
    if consecutive:
        for past in earlier:
            if past.status not in FAILURE_STATUSES:
                break
            consecutive += 1
    durations = [d for r in _runs(session, row.job_id, before=row.id, statuses=tuple(SUCCESS_STATUSES),
                                  limit=SLOW_HISTORY) if (d := _duration(r)) is not None]
    return RunFacts(status=row.status, duration_s=_duration(row),
                    previous_status=earlier[0].status if earlier else None,
                    recent_durations_s=durations, consecutive_failures=consecutive)


def enqueue_alerts(session: Session, row: ExecutionRow, job: JobRow, *, public_url: str,
                   now: datetime | None = None) -> list[NotificationRow]:
    """Decide the finished run's alerts, disable the job when its rules say so, and add one
    outbox row per (event, channel) to ``session`` (the caller commits)."""
    rules = rules_for(session, job)
    if rules is None:
        return []
    facts = run_facts(session, row, failures_needed=(rules.disable_after_failures or 1))
    decision = decide(facts, rules, job_enabled=job.enabled)
    if decision.disable_job:
        job.enabled, job.next_run_at = False, None
        session.add(AuditRow(actor="alerts", action="job.disable", job_id=job.id, execution_id=row.id,
                             details={"consecutive_failures": facts.consecutive_failures}))
        log.warning("job %s disabled after %d consecutive failed runs", job.id, facts.consecutive_failures)
    events = notified_events(decision, rules)
    channels = set(session.scalars(sa.select(ChannelRow.id).where(ChannelRow.id.in_(rules.channels))).all())
    if missing := [c for c in rules.channels if c not in channels]:
        log.warning("job %s: alert channels %s no longer exist", job.id, missing)
    now = now or utcnow()
    shape = execution_out(row, job_name=job.name)
    job_info = {"id": job.id, "name": job.name, "enabled": job.enabled}
    added = []
    for event in events:
        for channel_id in (c for c in rules.channels if c in channels):
            key = idempotency_key(execution_id=row.id, queued_at=row.queued_at, event=event, channel_id=channel_id)
            payload = build_payload(key=key, event=event, job=job_info, execution=shape,
                                    link=execution_link(public_url, row.id), created_at=now,
                                    job_disabled=decision.disable_job and event in FAILURE_STATUSES,
                                    usual_duration_s=decision.usual_duration_s if event == "slow" else None)
            note = NotificationRow(idempotency_key=key, execution_id=row.id, job_id=job.id, channel_id=channel_id,
                                   event=event, payload=payload, status="pending", attempts=0,
                                   next_attempt_at=now, created_at=now)
            session.add(note)
            added.append(note)
    return added


def after_final_status(session: Session, row: ExecutionRow | None, job: JobRow | None, *, retried: bool,
                       public_url: str) -> None:
    """The recorder's hook, in its transaction: queue the alerts of a run that just ended.

    A retried attempt is not a run (its retry decides). Never raises: a problem here is
    logged and the final status is recorded without alerts (a savepoint undoes them)."""
    if row is None or job is None or retried or row.status in IGNORED_STATUSES:
        return
    try:
        with session.begin_nested():
            enqueue_alerts(session, row, job, public_url=public_url)
    except Exception:  # noqa: BLE001 - alerts never fail or block recording an execution
        log.exception("execution %s: its alerts could not be queued", row.id)
