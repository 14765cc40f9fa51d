"""/api/executions: history with filters, error details, cancel."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, status

from services.api.deps import IdPath, IdQuery, RuntimeDep, SessionDep
from services.api.schemas import ExecutionErrorsOut, ExecutionOut, ExecutionPage
from services.api.security import PrincipalDep, audit
from shared.jobspec import FINISHED_STATUSES, Status
from shared.messages import Cancel
from shared.store.executions import execution_out
from shared.store.models import ExecutionRow, FailedRowRow, JobRow, utcnow
from shared.store.tokens import Principal

router = APIRouter(prefix="/api/executions", tags=["executions"])
MAX_PAGE = 500


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def _get(session: SessionDep, execution_id: int) -> ExecutionRow:
    row = session.get(ExecutionRow, execution_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"execution {execution_id} not found")
    return row


@router.get("", response_model=ExecutionPage)
def list_executions(
    session: SessionDep,
    job_id: IdQuery = None,
    status_: Annotated[list[Status] | None, Query(alias="status")] = None,
    start_date: datetime | None = Query(None, description="executions queued at or after this time"),
    end_date: datetime | None = Query(None, description="executions queued at or before this time"),
    limit: int = Query(50, ge=1, le=MAX_PAGE),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> dict:
    """Newest first. ``status`` may repeat (``?status=failed&status=timed_out``)."""
    where = []
    if job_id is not None:
        where.append(ExecutionRow.job_id == job_id)
    if status_:
        where.append(ExecutionRow.status.in_([s.value for s in status_]))
    if start_date is not None:
        where.append(ExecutionRow.queued_at >= _aware(start_date))
    if end_date is not None:
        where.append(ExecutionRow.queued_at <= _aware(end_date))
    total = session.scalar(sa.select(sa.func.count()).select_from(ExecutionRow).where(*where)) or 0
    rows = session.execute(
        sa.select(ExecutionRow, JobRow.name).join(JobRow, JobRow.id == ExecutionRow.job_id)
        .where(*where).order_by(ExecutionRow.id.desc()).limit(limit).offset(offset)).all()
    now = utcnow()
    return {"items": [execution_out(r, job_name=name, now=now) for r, name in rows],
            "total": total, "limit": limit, "offset": offset}


@router.get("/{execution_id}", response_model=ExecutionOut)
def read_execution(execution_id: IdPath, session: SessionDep) -> dict:
    row = _get(session, execution_id)
    job = session.get(JobRow, row.job_id)
    return execution_out(row, job_name=job.name if job else None)


@router.get("/{execution_id}/errors", response_model=ExecutionErrorsOut)
def execution_errors(execution_id: IdPath, session: SessionDep, who: PrincipalDep,
                     limit: int = Query(100, ge=1, le=MAX_PAGE), offset: int = Query(0, ge=0)) -> dict:
    """The full error, its stack trace (editors only: it shows code paths and settings) and
    the failed rows, paginated by position."""
    row = _get(session, execution_id)
    where = FailedRowRow.execution_id == execution_id
    total = session.scalar(sa.select(sa.func.count()).select_from(FailedRowRow).where(where)) or 0
    failed = session.scalars(sa.select(FailedRowRow).where(where).order_by(FailedRowRow.position)
                             .limit(limit).offset(offset)).all()
    return {
        "execution_id": row.id, "status": row.status, "message": row.error_message, "kind": row.error_kind,
        **_stack_trace(row.error_trace, who), "report": row.report,
        "failed_rows": [{"position": f.position, "values": f.values, "error": f.error, "at": f.at} for f in failed],
        "failed_rows_total": total, "limit": limit, "offset": offset,
    }


def _stack_trace(trace: str | None, who: Principal) -> dict:
    if trace is None or who.can("editor"):
        return {"stack_trace": trace, "stack_trace_note": None}
    return {"stack_trace": None, "stack_trace_note": "the stack trace is shown to editors only"}


@router.post("/{execution_id}/cancel", response_model=ExecutionOut, status_code=status.HTTP_202_ACCEPTED)
def cancel_execution(execution_id: IdPath, session: SessionDep, rt: RuntimeDep, who: PrincipalDep) -> dict:
    """Stop an execution: queued ones are cancelled at once; running ones roll back."""
    row = _get(session, execution_id)
    if row.status in FINISHED_STATUSES:
        raise HTTPException(status.HTTP_409_CONFLICT, f"execution {execution_id} already {row.status}")
    row.cancel_requested = True
    audit(session, who, "execution.cancel", job_id=row.job_id, execution_id=row.id)
    if row.status == "queued" and row.dispatched_at is None:
        row.status, row.finished_at = "cancelled", utcnow()
        row.error_message, row.error_kind = "cancelled before it started", "cancelled"
    session.commit()
    rt.transport.publish(Cancel(execution_id=row.id, status="cancelled", reason="cancelled by a user").encode(),
                         exchange=rt.topology.control, routing_key="cancel")
    return execution_out(row)
