"""/api/jobs: job CRUD (DELETE archives), execute, validate, preview, flow."""
from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy.orm import Session

from services.api.deps import IdPath, IdQuery, RuntimeDep, SessionDep
from services.api.errors import FieldErrors, field_error
from services.api.schemas import ExecuteOut, JobOut, JobPatch
from services.api.security import PrincipalDep, audit
from shared.jobspec import JobSpec
from shared.transform.checks import transform_problems_of
from shared.store.executions import create_execution
from shared.store.jobs import apply_job, job_out, job_spec, last_executions
from shared.store.models import JobRow, ProjectRow, utcnow
from shared.wakeup import announce_queued

router = APIRouter(prefix="/api/jobs", tags=["jobs"])


def get_job(session: Session, job_id: int) -> JobRow:
    row = session.get(JobRow, job_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} not found")
    return row


def check_job(session: Session, spec: JobSpec) -> None:
    """Checks that need the store or the SQL: projects exist, @resultN references are valid."""
    from shared.extract import check_references

    known = set(session.scalars(sa.select(ProjectRow.id)).all())
    errors = [field_error(["body", "steps", i, "project_id"], f"unknown project {s.project_id}")
              for i, s in enumerate(spec.steps) if s.project_id not in known]
    if spec.destination.project_id not in known:
        errors.append(field_error(["body", "destination", "project_id"],
                                  f"unknown project {spec.destination.project_id}"))
    errors += [field_error(["body", "steps"], msg) for msg in check_references(spec.steps)]
    errors += [field_error(["body", "transform"], msg) for msg in transform_problems_of(spec)]
    if errors:
        raise FieldErrors(errors)


def _out(session: Session, row: JobRow) -> dict:
    return job_out(row, last=last_executions(session, [row.id]).get(row.id))


@router.get("", response_model=list[JobOut])
def list_jobs(session: SessionDep, include_archived: bool = Query(False)) -> list[dict]:
    q = sa.select(JobRow).order_by(JobRow.name, JobRow.id)
    if not include_archived:
        q = q.where(JobRow.archived.is_(False))
    rows = session.scalars(q).all()
    last = last_executions(session, [r.id for r in rows])
    return [job_out(r, last=last.get(r.id)) for r in rows]


@router.post("", response_model=JobOut, status_code=status.HTTP_201_CREATED)
def create_job(spec: JobSpec, session: SessionDep, who: PrincipalDep) -> dict:
    check_job(session, spec)
    row = apply_job(JobRow(), spec)
    session.add(row)
    session.flush()
    audit(session, who, "job.create", job_id=row.id, name=row.name, enabled=row.enabled)
    session.commit()
    return _out(session, row)


@router.get("/{job_id}", response_model=JobOut)
def read_job(job_id: IdPath, session: SessionDep) -> dict:
    return _out(session, get_job(session, job_id))


@router.put("/{job_id}", response_model=JobOut)
def replace_job(job_id: IdPath, spec: JobSpec, session: SessionDep, who: PrincipalDep) -> dict:
    row = get_job(session, job_id)
    check_job(session, spec)
    _audit_change(session, who, row, spec)
    apply_job(row, spec)
    session.commit()
    return _out(session, row)


@router.patch("/{job_id}", response_model=JobOut)
def patch_job(job_id: IdPath, patch: JobPatch, session: SessionDep, who: PrincipalDep) -> dict:
    """Change some options (e.g. ``{"enabled": false}``), validated like a full job."""
    row = get_job(session, job_id)
    data = job_spec(row).model_dump() | patch.model_dump(exclude_none=True)
    try:
        spec = JobSpec.model_validate(data)
    except ValueError as exc:
        errors = getattr(exc, "errors", lambda: [])()
        raise FieldErrors([field_error(["body", *e["loc"]], e["msg"].removeprefix("Value error, "))
                           for e in errors]) from None
    _audit_change(session, who, row, spec)
    apply_job(row, spec)
    session.commit()
    return _out(session, row)


def _audit_change(session: Session, who: PrincipalDep, row: JobRow, spec: JobSpec) -> None:
    """One audit entry per change: enable/disable are their own actions."""
    before = job_spec(row).model_dump(mode="json")
    after = spec.model_dump(mode="json")
    changed = sorted(k for k in after if before.get(k) != after[k])
    if "enabled" in changed:
        audit(session, who, "job.enable" if spec.enabled else "job.disable", job_id=row.id)
        changed.remove("enabled")
    if changed:
        audit(session, who, "job.update", job_id=row.id, fields=changed)


@router.delete("/{job_id}", status_code=status.HTTP_204_NO_CONTENT)
def archive_job(job_id: IdPath, session: SessionDep, who: PrincipalDep) -> None:
    """Archive (soft delete): the job stops firing; its history is kept."""
    row = get_job(session, job_id)
    audit(session, who, "job.archive", job_id=row.id)
    row.archived, row.enabled, row.next_run_at = True, False, None
    session.commit()


@router.post("/{job_id}/execute", response_model=ExecuteOut, status_code=status.HTTP_202_ACCEPTED)
def execute_job(job_id: IdPath, session: SessionDep, rt: RuntimeDep, who: PrincipalDep) -> dict:
    """Queue a manual execution; the schedule is not affected."""
    row = get_job(session, job_id)
    if row.archived:
        raise HTTPException(status.HTTP_409_CONFLICT, f"job {row.name!r} is archived")
    execution = create_execution(session, row, trigger="manual")
    execution.not_before = utcnow()
    audit(session, who, "job.execute", job_id=row.id, execution_id=execution.id)
    session.commit()
    announce_queued(rt.transport, rt.topology, execution_id=execution.id, job_id=row.id)
    return {"execution_id": execution.id, "status": execution.status}
