"""/api/audit: who created, changed, executed, enabled/disabled and archived what, and when."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel

from services.api.deps import IdQuery, SessionDep
from shared.store.models import AuditRow

router = APIRouter(prefix="/api/audit", tags=["audit"])


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    job_id: int | None
    project_id: int | None
    execution_id: int | None
    details: dict


class AuditPage(BaseModel):
    items: list[AuditOut]
    total: int


@router.get("", response_model=AuditPage)
def list_audit(session: SessionDep, job_id: IdQuery = None, project_id: IdQuery = None,
               limit: int = Query(100, ge=1, le=500), offset: int = Query(0, ge=0, le=10_000_000)) -> dict:
    """Newest first."""
    where = []
    if job_id is not None:
        where.append(AuditRow.job_id == job_id)
    if project_id is not None:
        where.append(AuditRow.project_id == project_id)
    total = session.scalar(sa.select(sa.func.count()).select_from(AuditRow).where(*where)) or 0
    rows = session.scalars(sa.select(AuditRow).where(*where).order_by(AuditRow.id.desc()).limit(limit).offset(offset))
    return {"items": [{c: getattr(r, c) for c in AuditOut.model_fields} for r in rows], "total": total}
