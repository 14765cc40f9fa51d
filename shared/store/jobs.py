"""Job persistence and the schedule fields derived from a job."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.cron import CronError, describe_cron, next_run
from shared.jobspec import STORED, JobSpec
from shared.store.models import ExecutionRow, JobRow, utcnow


def compute_next_run(job: JobRow, *, now: datetime | None = None) -> datetime | None:
    """Next scheduled run of an enabled, scheduled, not archived job (else None, also for a
    schedule saved before it was refused as one that never fires)."""
    if not job.schedule or not job.enabled or job.archived:
        return None
    try:
        return next_run(job.schedule, now or utcnow(), job.timezone or "UTC")
    except CronError:
        return None


def apply_job(row: JobRow, spec: JobSpec, *, now: datetime | None = None) -> JobRow:
    """Copy a validated spec into ``row`` and recompute its next run time."""
    row.name = spec.name
    row.description = spec.description
    row.steps = [s.model_dump() for s in spec.steps]
    row.destination = spec.destination.model_dump(mode="json")
    if row.destination.get("zero_dates") is None:
        row.destination.pop("zero_dates", None)
    schedule_changed = (row.schedule, row.timezone, row.enabled) != (spec.schedule, spec.timezone, spec.enabled)
    row.schedule, row.timezone = spec.schedule, spec.timezone
    row.max_retries, row.timeout_minutes = spec.max_retries, spec.timeout_minutes
    row.enabled, row.validate_before_execution = spec.enabled, spec.validate_before_execution
    row.transform = spec.transform
    row.alerts = spec.alerts.model_dump() if spec.alerts is not None else None
    if schedule_changed or row.next_run_at is None:
        row.next_run_at = compute_next_run(row, now=now)
    incremental = spec.incremental.model_dump() if spec.incremental else None
    if (incremental or {}).get("column") != (row.incremental or {}).get("column"):
        row.watermark, row.watermark_state = None, None  # another column: its stored value means nothing
    row.incremental = incremental
    return row


def job_spec(row: JobRow) -> JobSpec:
    return JobSpec.model_validate({
        "name": row.name, "description": row.description, "steps": row.steps,
        "destination": row.destination, "schedule": row.schedule, "timezone": row.timezone,
        "max_retries": row.max_retries, "timeout_minutes": row.timeout_minutes, "enabled": row.enabled,
        "validate_before_execution": row.validate_before_execution,
        "zero_dates": (row.destination or {}).get("zero_dates"), "incremental": row.incremental,
        "transform": row.transform, "alerts": row.alerts,
    }, context={STORED: True})


def job_out(row: JobRow, *, last: ExecutionRow | None = None) -> dict[str, Any]:
    return {
        "id": row.id, "name": row.name, "description": row.description, "steps": row.steps,
        "destination": row.destination, "schedule": row.schedule,
        "schedule_description": describe_cron(row.schedule) if row.schedule else "",
        "timezone": row.timezone, "max_retries": row.max_retries, "timeout_minutes": row.timeout_minutes,
        "enabled": row.enabled, "validate_before_execution": row.validate_before_execution,
        "zero_dates": (row.destination or {}).get("zero_dates"), "transform": row.transform,
        "verify": (row.destination or {}).get("verify") or "count",
        "next_run_at": row.next_run_at, "archived": row.archived, "alerts": row.alerts,
        "created_at": row.created_at, "updated_at": row.updated_at,
        "last_status": last.status if last else None,
        "last_execution_id": last.id if last else None,
        "incremental": row.incremental, "watermark": row.watermark,
    }


def last_executions(session: Session, job_ids: list[int]) -> dict[int, ExecutionRow]:
    """The newest execution of each job."""
    if not job_ids:
        return {}
    newest = (sa.select(sa.func.max(ExecutionRow.id)).where(ExecutionRow.job_id.in_(job_ids))
              .group_by(ExecutionRow.job_id))
    rows = session.scalars(sa.select(ExecutionRow).where(ExecutionRow.id.in_(newest))).all()
    return {r.job_id: r for r in rows}
