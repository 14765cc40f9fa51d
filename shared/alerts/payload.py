"""What a notification says: the JSON body every channel kind is built from.

The body is built once, when the outbox row is written, and sent unchanged on every
attempt (so its signature and its ``idempotency_key`` stay the same across retries).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.store.executions import COUNT_FIELDS, format_duration

PAYLOAD_VERSION = 1
HEADLINES = {
    "failed": "failed",
    "timed_out": "timed out",
    "partial_success": "finished with failed rows (partial success)",
    "recovered": "recovered: completed after a failure",
    "slow": "was slow",
    "test": "test notification",
}


def execution_link(public_url: str, execution_id: int) -> str:
    """The execution's page on the web UI."""
    return f"{public_url.rstrip('/')}/#/executions/{execution_id}"


def idempotency_key(*, execution_id: int, queued_at: datetime, event: str, channel_id: int) -> str:
    """Stable per (execution, event, channel); the queue time tells apart an id reused after a reset."""
    return f"dm-{execution_id}-{int(queued_at.timestamp() * 1000)}-{event}-{channel_id}"


def build_payload(*, key: str, event: str, job: dict[str, Any], execution: dict[str, Any], link: str,
                  job_disabled: bool = False, usual_duration_s: float | None = None,
                  created_at: datetime) -> dict[str, Any]:
    """The notification body. ``execution`` is the public execution shape."""
    counts = {name: execution.get(name, 0) for name in COUNT_FIELDS}
    counts["rows_written"] = execution.get("rows_written", 0)
    body: dict[str, Any] = {
        "version": PAYLOAD_VERSION,
        "idempotency_key": key,
        "event": event,
        "created_at": created_at.isoformat(),
        "job": job,
        "execution": {k: _jsonable(execution.get(k)) for k in (
            "id", "status", "trigger", "attempt", "retry_of", "started_at", "finished_at", "duration_seconds",
            "duration")},
        "status": execution.get("status"),
        "counts": counts,
        "error": execution.get("error"),
        "link": link,
        "job_disabled": job_disabled,
        "usual_duration_seconds": round(usual_duration_s, 3) if usual_duration_s is not None else None,
    }
    body["text"] = summary_text(body)
    return body


def summary_text(body: dict[str, Any]) -> str:
    """One short paragraph for people (Slack message, email body, the webhook's ``text``)."""
    job, execution = body.get("job") or {}, body.get("execution") or {}
    event = body.get("event", "")
    lines = [f"Job \"{job.get('name', '?')}\" {HEADLINES.get(event, event)}"
             + (f" (execution {execution.get('id')})" if execution.get("id") else "") + "."]
    if event != "test":
        counts = body.get("counts") or {}
        lines.append(f"Status {body.get('status')}; read {counts.get('rows_read', 0)}, "
                     f"written {counts.get('rows_written', 0)}, failed {counts.get('rows_failed', 0)}"
                     + (f"; took {execution.get('duration')}" if execution.get("duration") else "") + ".")
    if event == "slow" and body.get("usual_duration_seconds") is not None:
        lines.append(f"Usual duration (median of the last runs): {format_duration(body['usual_duration_seconds'])}.")
    error = body.get("error") or {}
    if error.get("message"):
        lines.append(f"Error ({error.get('kind') or 'error'}): {str(error['message'])[:1000]}")
    if body.get("job_disabled"):
        lines.append("The job was DISABLED after too many consecutive failures; enable it again once fixed.")
    if body.get("link"):
        lines.append(body["link"])
    return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
