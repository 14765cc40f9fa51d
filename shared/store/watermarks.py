"""The stored watermark of incremental jobs in the metadata store.

The destination's ``datamig_state`` row is written in the load transaction, so the committed
watermark exists as soon as the rows do. History learns it from the loader's ``finished``
event, or, when the loader died after its COMMIT, from the scheduler's settlement, which reads
that row (services/scheduler/watchdog.py) before any new run of the job is dispatched.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.incremental import IncrementalSpec, guess_kind, parse_value
from shared.store.models import ExecutionRow, JobRow, utcnow

COMMITTED = ("completed", "partial_success")


def run_watermark(job: JobRow) -> dict:
    """What a RunRequest carries: the stored ``{value, kind, seen}``."""
    state = job.watermark_state or {}
    return {"value": job.watermark, "kind": state.get("kind"), "seen": list(state.get("seen") or [])}


def record_watermark(session: Session, row: ExecutionRow, watermark: dict[str, Any] | None) -> None:
    """A committed execution's watermark into its history and its job (unless the job's watermark was
    set by hand after the execution was queued: the user's value wins)."""
    if not watermark or row.status not in COMMITTED:
        return
    row.watermark_to = watermark.get("to")
    job = session.get(JobRow, row.job_id)
    if job is None or (job.watermark_set_at is not None and row.queued_at is not None
                       and job.watermark_set_at > row.queued_at):
        return
    kind = watermark.get("kind")
    new = watermark.get("to")
    if new is not None and job.watermark is not None and kind:
        try:
            if parse_value(new, kind) < parse_value(job.watermark, kind):  # type: ignore[operator]
                new = job.watermark  # an older overlapping run committed last: never move back
        except (ValueError, TypeError):
            pass
    job.watermark = new if new is not None else job.watermark
    job.watermark_state = {"kind": kind, "seen": list(watermark.get("seen") or [])}


def set_watermark(job: JobRow, value: str | int | None, *, now: datetime | None = None) -> None:
    """``PUT /api/jobs/{id}/watermark``: a value (checked against the column's kind when known) or
    None (back to ``incremental.initial``). Raises ValueError naming what is wrong."""
    if not job.incremental:
        raise ValueError("the job has no incremental option")
    kind = (job.watermark_state or {}).get("kind")
    if value is not None:
        if kind is None:
            kind = guess_kind(value)
            if kind is None:
                raise ValueError(f"{value!r} is not an integer, a date (YYYY-MM-DD) or a timestamp (ISO 8601)")
        from shared.incremental import format_value
        value = format_value(parse_value(value, kind))
    job.watermark = value
    job.watermark_state = {"kind": (job.watermark_state or {}).get("kind"), "seen": []}
    job.watermark_set_at = now or utcnow()


def next_start(job: JobRow) -> dict:
    """What the next run would bind to ``@watermark``: ``{stored, next_value, kind}``."""
    from shared.incremental import format_value, start_value

    spec = IncrementalSpec.model_validate(job.incremental)
    kind = (job.watermark_state or {}).get("kind") or guess_kind(job.watermark or spec.initial or "") or None
    value = None
    if kind:
        try:
            value = format_value(start_value(job.watermark, spec, kind))
        except ValueError:
            value = None
    return {"stored": job.watermark, "next_value": value, "kind": kind,
            "note": "the beginning" if value is None and job.watermark is None and spec.initial is None else ""}


def waits_for_another_run(session: Session, execution: ExecutionRow, job: JobRow) -> bool:
    """Whether an incremental job's execution must wait: another one of the job is dispatched and
    not finished. Runs of one incremental job are serial, so each starts from the watermark the
    previous one committed (two at once would read the same rows)."""
    if not job.incremental:
        return False
    return bool(session.scalar(sa.select(sa.func.count()).select_from(ExecutionRow).where(
        ExecutionRow.job_id == job.id, ExecutionRow.id != execution.id, ExecutionRow.dispatched_at.is_not(None),
        ExecutionRow.status.in_(("queued", "running")))))
