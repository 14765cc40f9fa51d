"""PUT /api/jobs/{id}/watermark, and the watermark a preview or validation shows.

The stored watermark of an incremental job says "every row whose column is at most this is
loaded"; a run binds ``@watermark`` to it minus ``lag``. Setting it (editor role, audited)
skips or re-reads rows on purpose; ``null`` starts the next run from ``incremental.initial``
again (a backfill). A run queued before the change does not overwrite it.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from services.api.deps import IdPath, SessionDep
from services.api.errors import FieldErrors, field_error
from services.api.routers.jobs import _out, get_job
from services.api.schemas import JobOut
from services.api.security import PrincipalDep, audit
from shared.errors import DatamigError
from shared.incremental import IncrementalSpec, Watermark, format_value
from shared.store.watermarks import set_watermark

router = APIRouter(prefix="/api/jobs", tags=["jobs"])


class WatermarkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str | int | None = Field(..., description="the new watermark (null: back to incremental.initial)")


class WatermarkOut(BaseModel):
    column: str
    kind: str | None = Field(None, description="int, date, timestamp or timestamptz (None: not known yet)")
    stored: str | None = Field(None, description="the job's stored watermark")
    next_value: str | None = Field(None, description="what @watermark is bound to in the next run "
                                   "(stored minus lag, else incremental.initial; null: the beginning)")
    error: str | None = None


@router.put("/{job_id}/watermark", response_model=JobOut)
def put_watermark(job_id: IdPath, body: WatermarkIn, session: SessionDep, who: PrincipalDep) -> dict:
    """Set (or reset with ``null``) an incremental job's watermark."""
    row = get_job(session, job_id)
    before = row.watermark
    try:
        set_watermark(row, body.value)
    except ValueError as exc:
        raise FieldErrors([field_error(["body", "value"], str(exc))]) from None
    audit(session, who, "job.watermark", job_id=row.id, before=before, after=row.watermark)
    session.commit()
    return _out(session, row)


def watermark_info(incremental: IncrementalSpec | None, stored: dict | None, steps: list,
                   engines: dict[int, sa.Engine], *, timeout_s: float) -> tuple[dict | None, Any]:
    """``(what the next run would use, the (kind, value) binding for a preview)``; (None, None) for a
    job that is not incremental. A source that cannot describe the result gives an ``error``."""
    if incremental is None:
        return None, None
    from shared.extract.watermark import IncrementalRead, describe_final

    read = IncrementalRead(incremental, Watermark.from_dict(stored))
    info: dict[str, Any] = {"column": incremental.column, "stored": read.stored.value}
    try:
        kind = read.resolve_kind(lambda _: describe_final(steps, engines, timeout_s=timeout_s))
        value = read.bound_value()
    except DatamigError as exc:
        return {**info, "error": str(exc)}, None
    return {**info, "kind": kind, "next_value": format_value(value)}, (kind, value)


def watermark_check(info: dict | None) -> list[dict]:
    """The validation's line about the watermark."""
    if info is None:
        return []
    if info.get("error"):
        return [{"check": "incremental watermark", "ok": False, "message": info["error"]}]
    start = info.get("next_value") or "the beginning"
    return [{"check": "incremental watermark", "ok": True,
             "message": f"the next run binds @watermark to {start} ({info['column']}, {info['kind']}; "
                        f"stored watermark: {info.get('stored') or 'none'})"}]
