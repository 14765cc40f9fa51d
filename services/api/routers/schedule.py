"""/api/schedule/preview: what a cron expression means and when it fires next. Read-only."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from pydantic import BaseModel

from services.api.errors import FieldErrors, field_error
from shared.cron import describe_cron, next_runs
from shared.jobspec import JobOptions
from shared.store.models import utcnow

router = APIRouter(prefix="/api/schedule", tags=["schedule"])
DEFAULT_COUNT = 5
MAX_COUNT = 20


class SchedulePreviewOut(BaseModel):
    schedule: str
    timezone: str
    description: str
    next_runs: list[datetime]


@router.get("/preview", response_model=SchedulePreviewOut)
def preview_schedule(schedule: str = Query("", max_length=200), timezone: str = Query("UTC", max_length=64),
                     count: int = Query(DEFAULT_COUNT, ge=1, le=MAX_COUNT)) -> dict:
    """The schedule's description and its next run times, in the given time zone (with offset).

    Answers 422 naming ``schedule`` or ``timezone`` when either is invalid, as saving a job would.
    """
    try:
        options = JobOptions(schedule=schedule, timezone=timezone)
    except ValueError as exc:
        errors = getattr(exc, "errors", lambda: [])()
        raise FieldErrors([field_error(list(e["loc"]), e["msg"].removeprefix("Value error, "))
                           for e in errors]) from None
    if not options.schedule:
        return {"schedule": "", "timezone": options.timezone, "description": "Manual only (no schedule)",
                "next_runs": []}
    zone = ZoneInfo(options.timezone)
    runs = next_runs(options.schedule, utcnow(), options.timezone, count=count)
    return {"schedule": options.schedule, "timezone": options.timezone,
            "description": describe_cron(options.schedule), "next_runs": [r.astimezone(zone) for r in runs]}
