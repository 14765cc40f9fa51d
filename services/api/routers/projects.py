"""/api/projects: named database connections. Passwords are write-only."""
from __future__ import annotations

import time

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, status
from sqlalchemy.exc import IntegrityError

from services.api.deps import IdPath, IdQuery, RuntimeDep, SessionDep, check_sqlite_location
from services.api.errors import FieldErrors, field_error
from services.api.schemas import ConnectionTestOut, ProjectOut
from services.api.security import PrincipalDep, audit
from shared.connections import MASK, ProjectSpec, build_url, create_db_engine, mask_secrets_in_text, spec_password
from shared.dialects.options import is_secret_option
from shared.privileges import inspect_engine, strict_sources_default
from shared.store.models import JobRow, ProjectRow
from shared.store.projects import (apply_project, kept_secrets, missing_kept_secrets, normalized, project_out,
                                   project_snapshot, target_changes, with_kept_secrets)
from shared.store.tokens import Principal

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
    _refuse_missing_secrets(None, spec)
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
    """Replace a project; an omitted password (or ``***`` secret option) keeps the stored one,
    unless the connection now points elsewhere: then it must be given again."""
    check_sqlite_location(spec, rt)
    row = _get(session, project_id)
    changes = _guard_stored_secrets(session, who, row, spec, action="project.update")
    password_changed = normalized(spec)[1] is not None
    row = apply_project(row, spec, rt.box, keep_password=True)
    audit(session, who, "project.update", project_id=row.id, password_changed=password_changed,
          **({"connection_changed": changes} if changes else {}))
    _commit_unique(session, spec.name)
    return project_out(row)


def _refuse_missing_secrets(row: ProjectRow | None, spec: ProjectSpec) -> None:
    missing = missing_kept_secrets(row, spec)
    if missing:
        raise FieldErrors([field_error(["body", "options", k], f"{k} is '***' but no value is stored to keep; "
                                       "enter the value") for k in missing])


def _guard_stored_secrets(session: SessionDep, who: Principal, row: ProjectRow, spec: ProjectSpec, *,
                          action: str) -> dict[str, list]:
    """The target changes of ``spec``; a 422 (audited) when they would carry a stored secret elsewhere."""
    _refuse_missing_secrets(row, spec)
    changes = target_changes(row, spec)
    kept = kept_secrets(row, spec) if changes else []
    if kept:
        audit(session, who, "project.secret_refused", project_id=row.id, attempted=action,
              connection_changed=changes, secrets=kept)
        session.commit()
        what = ", ".join(changes)
        raise FieldErrors([field_error(["body", *k.split(".", 1)],
                                       f"the stored {k.removeprefix('options.')} is only sent to the server it was "
                                       f"saved for and {what} changed: enter the "
                                       f"{'password' if k == 'password' else 'value'} again") for k in kept])
    return changes


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
def test_unsaved_connection(spec: ProjectSpec, session: SessionDep, rt: RuntimeDep, who: PrincipalDep,
                            project_id: IdQuery = None) -> dict:
    """Test settings before saving them. With ``project_id`` and no password given, the
    stored password of that project is used (the edit form never shows it), but only for
    the engine, host, port, database and user it was saved with."""
    check_sqlite_location(spec, rt)
    if project_id is None:
        _refuse_missing_secrets(None, spec)
        return _try_connect(spec)
    row = _get(session, project_id)
    _guard_stored_secrets(session, who, row, spec, action="project.test")
    return _try_connect(with_kept_secrets(row, spec, rt.box))


@router.post("/{project_id}/test", response_model=ConnectionTestOut)
def test_connection(project_id: IdPath, session: SessionDep, rt: RuntimeDep) -> dict:
    """Connect with the saved settings and run a trivial query."""
    return _try_connect(project_snapshot(_get(session, project_id)).connection(rt.box))


def _try_connect(spec: ProjectSpec) -> dict:
    """Connect and run ``SELECT 1``; the answer never contains the password."""
    started = time.perf_counter()
    engine = create_db_engine(build_url(spec), poolclass=sa.pool.NullPool, sqlite_mode="ro")
    privileges = None
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        ok, message = True, "connected"
        privileges = _privileges(engine)
    except Exception as exc:  # noqa: BLE001 - any driver error is the answer
        message = mask_secrets_in_text(str(getattr(exc, "orig", exc) or exc)).strip()
        for secret in [spec_password(spec), *(v for k, v in normalized(spec)[2].items()
                                              if is_secret_option(spec.engine, k))]:
            if secret:
                message = message.replace(secret, MASK)
        ok = False
    finally:
        engine.dispose()
    return {"ok": ok, "message": message, "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
            "privileges": privileges}


def _privileges(engine: sa.Engine) -> dict:
    """What the role can do as a source (after read_role), as the database says; never raises."""
    strict = strict_sources_default()
    try:
        found = inspect_engine(engine, project_id=0)
    except Exception as exc:  # noqa: BLE001 - the connection worked; say why the check did not
        text = mask_secrets_in_text(" ".join(str(getattr(exc, "orig", None) or exc).split()))
        return {"read_only": False, "checked": False, "role": "", "risky": [], "strict": strict,
                "message": f"could not check what the role may do: {text}"}
    message = None
    if found.risky:
        message = found.message(strict=strict)
    return {**found.to_dict(), "strict": strict, "message": message}
