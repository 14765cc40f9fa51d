"""/api/projects: named database connections. Passwords are write-only."""
from __future__ import annotations

import time

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, status
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from services.api.deps import IdPath, IdQuery, RuntimeDep, SessionDep, check_sqlite_location
from services.api.errors import FieldErrors, field_error
from services.api.schemas import ConnectionTestOut, ProjectOut
from services.api.security import PrincipalDep, audit
from shared.connections import ProjectSpec, build_url, create_db_engine, mask_secrets_in_text
from shared.store.models import JobRow, ProjectRow
from shared.store.projects import apply_project, project_out, spec_from_snapshot, project_snapshot

router = APIRouter(prefix="/api/projects", tags=["projects"])


def _get(session: SessionDep, project_id: int) -> ProjectRow:
    row = session.get(ProjectRow, project_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"project {project_id} not found")
    return row


def _commit_unique(session: SessionDep, name: str) -> None:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise FieldErrors([field_error(["body", "name"], f"a project named {name!r} already exists")]) from None


@router.get("", response_model=list[ProjectOut])
def list_projects(session: SessionDep) -> list[dict]:
    return [project_out(r) for r in session.scalars(sa.select(ProjectRow).order_by(ProjectRow.name))]


@router.post("", response_model=ProjectOut, status_code=status.HTTP_201_CREATED)
def create_project(spec: ProjectSpec, session: SessionDep, rt: RuntimeDep, who: PrincipalDep) -> dict:
    check_sqlite_location(spec, rt)
    row = apply_project(ProjectRow(), spec, rt.box, keep_password=False)
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise FieldErrors([field_error(["body", "name"], f"a project named {spec.name!r} already exists")]) from None
    audit(session, who, "project.create", project_id=row.id, name=row.name)
    _commit_unique(session, spec.name)
    return project_out(row)


@router.get("/{project_id}", response_model=ProjectOut)
def get_project(project_id: IdPath, session: SessionDep) -> dict:
    return project_out(_get(session, project_id))


@router.put("/{project_id}", response_model=ProjectOut)
def update_project(project_id: IdPath, spec: ProjectSpec, session: SessionDep, rt: RuntimeDep,
                   who: PrincipalDep) -> dict:
    """Replace a project; an omitted password keeps the stored one."""
    check_sqlite_location(spec, rt)
    row = apply_project(_get(session, project_id), spec, rt.box, keep_password=True)
    audit(session, who, "project.update", project_id=row.id, password_changed=spec.password is not None)
    _commit_unique(session, spec.name)
    return project_out(row)


@router.delete("/{project_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_project(project_id: IdPath, session: SessionDep, who: PrincipalDep) -> None:
    row = _get(session, project_id)
    for job in session.scalars(sa.select(JobRow).where(JobRow.archived.is_(False))):
        used = {s["project_id"] for s in job.steps} | {job.destination["project_id"]}
        if project_id in used:
            raise HTTPException(status.HTTP_409_CONFLICT, f"project {row.name!r} is used by job {job.name!r}")
    audit(session, who, "project.delete", project_id=row.id, name=row.name)
    session.delete(row)
    session.commit()


@router.post("/test", response_model=ConnectionTestOut)
def test_unsaved_connection(spec: ProjectSpec, session: SessionDep, rt: RuntimeDep,
                            project_id: IdQuery = None) -> dict:
    """Test settings before saving them. With ``project_id`` and no password given, the
    stored password of that project is used (the edit form never shows it)."""
    check_sqlite_location(spec, rt)
    if spec.password is None and project_id is not None:
        stored = spec_from_snapshot(project_snapshot(_get(session, project_id)), rt.box).password
        if stored is not None and not (spec.url and make_url(spec.url).password):
            spec = spec.model_copy(update={"password": stored})
    return _try_connect(spec)


@router.post("/{project_id}/test", response_model=ConnectionTestOut)
def test_connection(project_id: IdPath, session: SessionDep, rt: RuntimeDep) -> dict:
    """Connect with the saved settings and run a trivial query."""
    return _try_connect(spec_from_snapshot(project_snapshot(_get(session, project_id)), rt.box))


def _try_connect(spec: ProjectSpec) -> dict:
    """Connect and run ``SELECT 1``; the answer never contains the password."""
    started = time.perf_counter()
    engine = create_db_engine(build_url(spec), poolclass=sa.pool.NullPool, sqlite_mode="ro")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        ok, message = True, "connected"
    except Exception as exc:  # noqa: BLE001 - any driver error is the answer
        message = mask_secrets_in_text(str(getattr(exc, "orig", exc) or exc)).strip()
        if spec.password:
            message = message.replace(spec.password, "***")
        ok = False
    finally:
        engine.dispose()
    return {"ok": ok, "message": message, "elapsed_ms": round((time.perf_counter() - started) * 1000, 1)}
