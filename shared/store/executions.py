"""Execution history: creation, the idempotent event recorder, and the public shape.

The recorder applies worker events so that repeats and late arrivals are harmless:
counts only grow while an execution runs, the first final status wins, and a
finished execution never moves back to running.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.connections import mask_secrets_in_text
from shared.jobspec import FINISHED_STATUSES
from shared.jsonsafe import json_safe, safe_text
from shared.messages import Event
from shared.retry import backoff_s, should_retry
from shared.store.db import lock_rows
from shared.store.models import ExecutionRow, FailedRowRow, JobRow, utcnow
from shared.store.progress import apply_progress, progress_out
from shared.store.watermarks import record_watermark

COUNT_FIELDS = ("rows_read", "rows_inserted", "rows_updated", "rows_skipped", "rows_deleted", "rows_failed")
WRITE_FIELDS = ("rows_inserted", "rows_updated", "rows_skipped", "rows_deleted")  # what a commit makes real
COMMITTED_STATUSES = ("completed", "partial_success")
ACTIVE_STATUSES = ("queued", "running")
UNSTORED_FAILED_ROWS = "failed_rows_not_stored"


def format_duration(seconds: float | None) -> str:
    """'1h 23m 45s', '2m 5s', '0.4s'."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f}s"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h"] if hours else []
    if hours or minutes:
        parts.append(f"{minutes}m")
    parts.append(f"{secs}s")
    return " ".join(parts)


def execution_out(row: ExecutionRow, *, job_name: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """The public shape of an execution (DESIGN.md field names)."""
    end = row.finished_at or (now or utcnow() if row.status == "running" else None)
    duration = (end - row.started_at).total_seconds() if (end and row.started_at) else None
    written = row.rows_inserted + row.rows_updated
    rate = (row.rows_read / duration) if duration and duration > 0 else None
    error = None
    if row.error_message:
        error = {"message": row.error_message, "kind": row.error_kind}
    return {
        "id": row.id, "job_id": row.job_id, "job_name": job_name, "status": row.status,
        "trigger": row.trigger, "attempt": row.attempt, "retry_of": row.retry_of,
        "queued_at": row.queued_at, "started_at": row.started_at, "finished_at": row.finished_at,
        "duration_seconds": round(duration, 3) if duration is not None else None,
        "duration": format_duration(duration),
        **{f: getattr(row, f) for f in COUNT_FIELDS},
        "rows_written": written, "rows_staged": row.rows_staged or 0,
        "rows_per_second": round(rate, 1) if rate is not None else None,
        "error": error, "report": row.report, "warnings": dict(row.warnings or {}),
        "verification": row.verification,
        "cancel_requested": row.cancel_requested, **progress_out(row, duration),
        "watermark_from": row.watermark_from, "watermark_to": row.watermark_to,
    }


def create_execution(session: Session, job: JobRow, *, trigger: str, attempt: int = 1,
                     retry_of: int | None = None, not_before: datetime | None = None,
                     status: str = "queued", now: datetime | None = None) -> ExecutionRow:
    row = ExecutionRow(job_id=job.id, status=status, trigger=trigger, attempt=attempt,
                       retry_of=retry_of, not_before=not_before, queued_at=now or utcnow())
    session.add(row)
    session.flush()
    return row


def has_active_execution(session: Session, job_id: int) -> bool:
    q = sa.select(sa.func.count()).select_from(ExecutionRow).where(
        ExecutionRow.job_id == job_id, ExecutionRow.status.in_(ACTIVE_STATUSES))
    return bool(session.scalar(q))


def _merge_warnings(row: ExecutionRow, ev: Event) -> None:
    """Warning counts are cumulative per sender: keep the largest seen for each kind."""
    if not ev.warnings:
        return
    merged = dict(row.warnings or {})
    for kind, count in ev.warnings.items():
        try:
            merged[str(kind)[:50]] = max(int(merged.get(str(kind)[:50], 0)), int(count))
        except (TypeError, ValueError):
            continue
    row.warnings = merged


def _ts(ev: Event) -> datetime:
    return datetime.fromtimestamp(ev.ts, timezone.utc)


def _add_failed_rows(session: Session, execution_id: int, rows: list[dict]) -> None:
    if not rows:
        return
    positions = [int(r["position"]) for r in rows]
    existing = set(session.scalars(sa.select(FailedRowRow.position).where(
        FailedRowRow.execution_id == execution_id, FailedRowRow.position.in_(positions))).all())
    for r in rows:
        pos = int(r["position"])
        if pos in existing:
            continue
        existing.add(pos)
        at = r.get("at")
        values = r.get("values") or {}
        session.add(FailedRowRow(
            execution_id=execution_id, position=pos,
            values=json_safe(values) if isinstance(values, dict) else {"value": json_safe(values)},
            error=safe_text(mask_secrets_in_text(str(r.get("error", ""))), limit=None),
            at=at if isinstance(at, datetime) else utcnow()))


def note_unstored_failed_rows(session: Session, execution_id: int, count: int) -> None:
    """Count failed rows whose details could not be stored (warning ``failed_rows_not_stored``)."""
    row = session.get(ExecutionRow, execution_id)
    if row is None or count <= 0:
        return
    merged = dict(row.warnings or {})
    merged[UNSTORED_FAILED_ROWS] = int(merged.get(UNSTORED_FAILED_ROWS, 0)) + count
    row.warnings = merged


@dataclass
class Recorded:
    """What applying an event changed: the transitions it caused and any retry it queued."""

    started: bool = False
    finished: bool = False
    retry: ExecutionRow | None = None


def _beat(row: ExecutionRow, ev: Event, ts: datetime) -> None:
    """Remember the newest sign of life, overall and per service."""
    for attr, wanted in (("heartbeat_at", None), ("extractor_heartbeat_at", "extractor"),
                         ("loader_heartbeat_at", "loader")):
        if wanted in (None, ev.service):
            current = getattr(row, attr)
            if current is None or ts > current:
                setattr(row, attr, ts)
    if ev.kind == "extracted":
        row.extractor_done = True


def record_event(session: Session, ev: Event, *, retry_base_s: float, retry_max_s: float) -> Recorded:
    """Apply one worker event; says which transition it caused and the retry it created, if any."""
    if ev.kind == "queued":  # the API's wake-up call to the schedulers (shared.wakeup): no history
        return Recorded()
    stmt = lock_rows(session, sa.select(ExecutionRow).where(ExecutionRow.id == ev.execution_id))
    row = session.scalars(stmt).first()
    if row is None or row.status in FINISHED_STATUSES:
        return Recorded()
    ts = _ts(ev)
    _beat(row, ev, ts)
    started = row.status == "queued"
    if ev.kind != "finished":
        if started:
            row.status = "running"
        row.started_at = row.started_at or ts
        for name, value in ev.counts.items():
            if name in COUNT_FIELDS or name == "rows_staged":
                setattr(row, name, max(getattr(row, name) or 0, int(value)))
        _merge_warnings(row, ev)
        apply_progress(row, ev)
        if ev.report and not row.report:  # e.g. the extractor's warning about a privileged source role
            row.report = ev.report
        _add_failed_rows(session, row.id, ev.failed_rows)
        return Recorded(started=started)
    retry = _finish(session, row, ev, ts, retry_base_s=retry_base_s, retry_max_s=retry_max_s)
    return Recorded(started=started, finished=True, retry=retry)


def _final_counts(row: ExecutionRow, counts: dict) -> None:
    """Counts of a finished execution say what the destination holds.

    ``rows_read`` keeps the most seen (a loader that stopped early knows fewer); the
    written counts are the committed ones, or 0 after a rollback; ``rows_staged`` keeps how
    many rows were written inside the transaction, committed or not.
    """
    staged = row.rows_inserted + row.rows_updated + row.rows_deleted
    row.rows_staged = max(row.rows_staged or 0, staged, int(counts.get("rows_staged", 0)))
    row.rows_read = max(row.rows_read or 0, int(counts.get("rows_read", 0)))
    if "rows_failed" in counts:
        row.rows_failed = int(counts["rows_failed"])
    committed = row.status in COMMITTED_STATUSES
    for name in WRITE_FIELDS:
        if committed and name not in counts:
            continue  # a success without counts keeps the progress it reported
        setattr(row, name, int(counts.get(name, 0)) if committed else 0)


def _finish(session: Session, row: ExecutionRow, ev: Event, ts: datetime, *,
            retry_base_s: float, retry_max_s: float) -> ExecutionRow | None:
    row.status = ev.status or "failed"
    row.started_at = row.started_at or ts
    row.finished_at = ts
    _final_counts(row, ev.counts)
    if ev.error:
        row.error_message = mask_secrets_in_text(str(ev.error.get("message", "")))[:20000]
        row.error_kind = str(ev.error.get("kind", "error"))[:50]
        row.error_trace = mask_secrets_in_text(str(ev.error.get("trace", "") or ""))[:100000] or None
    if ev.report:
        row.report = ev.report
    if ev.verification:
        row.verification = ev.verification
    _merge_warnings(row, ev)
    _add_failed_rows(session, row.id, ev.failed_rows)
    record_watermark(session, row, ev.watermark)
    job = session.get(JobRow, row.job_id)
    transient = bool(ev.error.get("transient")) if ev.error else False
    if job is None or row.cancel_requested or not should_retry(
            status=row.status, transient=transient, attempt=row.attempt, max_retries=job.max_retries):
        return None
    delay = backoff_s(row.attempt, base_s=retry_base_s, max_s=retry_max_s)
    return create_execution(session, job, trigger="retry", attempt=row.attempt + 1, retry_of=row.id,
                            not_before=utcnow() + timedelta(seconds=delay))
