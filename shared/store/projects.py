"""Project persistence: passwords are stored encrypted and never read back in clear here."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from shared.connections import ProjectSpec, masked_url
from shared.secrets import SecretBox
from shared.store.models import ProjectRow


def _split_url_password(url: str) -> tuple[str, str | None]:
    parsed = make_url(url)
    password = parsed.password
    # URL.set(password=None) keeps the old password in SQLAlchemy 2; _replace really drops it
    return parsed._replace(password=None).render_as_string(hide_password=False), password


def apply_project(row: ProjectRow, spec: ProjectSpec, box: SecretBox, *, keep_password: bool) -> ProjectRow:
    """Copy ``spec`` into ``row``; an absent password keeps the stored one when ``keep_password``."""
    password = spec.password
    url = None
    if spec.url:
        url, url_password = _split_url_password(spec.url)
        password = password or url_password
    row.name = spec.name
    row.engine = spec.engine.value if spec.engine else row.engine
    row.url = url
    row.host, row.port, row.database, row.username = spec.host, spec.port, spec.database, spec.username
    row.options = dict(spec.options)
    if password is not None or not keep_password:
        row.password_enc = box.encrypt(password)
    return row


def _public_url(row: ProjectRow) -> str | None:
    """The stored URL (which never holds the password) with ``***`` where a password is set."""
    if not row.url:
        return None
    if row.password_enc is None:
        return masked_url(row.url)
    return make_url(row.url)._replace(password="x").render_as_string(hide_password=True)


def project_out(row: ProjectRow) -> dict[str, Any]:
    """The public shape: no password, the url (if any) masked."""
    return {
        "id": row.id,
        "name": row.name,
        "engine": row.engine,
        "url": _public_url(row),
        "host": row.host,
        "port": row.port,
        "database": row.database,
        "username": row.username,
        "options": row.options or {},
        "has_password": row.password_enc is not None,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def project_snapshot(row: ProjectRow) -> dict[str, Any]:
    """What a run request carries: the connection with the password still encrypted."""
    return {
        "id": row.id,
        "name": row.name,
        "engine": row.engine,
        "url": row.url,
        "host": row.host,
        "port": row.port,
        "database": row.database,
        "username": row.username,
        "options": row.options or {},
        "password_enc": row.password_enc,
    }


def spec_from_snapshot(snapshot: dict[str, Any], box: SecretBox) -> ProjectSpec:
    """Rebuild a ProjectSpec with the decrypted password (worker side only)."""
    data = {k: snapshot.get(k) for k in ("name", "engine", "url", "host", "port", "database", "username")}
    data["options"] = snapshot.get("options") or {}
    data["password"] = box.decrypt(snapshot.get("password_enc"))
    if data["url"]:
        data.pop("host"), data.pop("port"), data.pop("database")
    return ProjectSpec.model_validate({k: v for k, v in data.items() if v is not None})


def get_projects(session: Session, ids: set[int]) -> dict[int, ProjectRow]:
    rows = session.scalars(sa.select(ProjectRow).where(ProjectRow.id.in_(ids))).all()
    return {r.id: r for r in rows}
