"""Project persistence: secrets are stored encrypted and never read back in clear here.

Secrets are the password (given in the ``password`` field, in the URL as ``user:pw@`` or
``?password=``, or as ``options.password``) and every secret-bearing option (``sslpassword``, ``ssl_key_password``,
client key paths, anything named like a password, key, token or secret). The password is
``password_enc``; a secret option is kept in ``options`` as ``fernet:<token>``. Answers show
option keys with ``***`` for secret values; on an update, ``***`` keeps the stored value.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from shared.connections import (MASK, URL_PASSWORD_KEYS, ProjectSpec, mask_secrets_in_text,
                                masked_url, spec_password)
from shared.dialects import get_dialect
from shared.dialects.options import is_secret_option, target_options
from shared.jobspec import Engine
from shared.secrets import SecretBox
from shared.snapshots import ENCRYPTED_PREFIX, ProjectSnapshot, decrypt_option
from shared.store.models import ProjectRow

KEEP = MASK  # a secret option sent back as "***" keeps the stored value


def _engine(value: str | Engine | None) -> Engine | None:
    try:
        return Engine(value) if value is not None else None
    except ValueError:
        return None


def normalized(spec: ProjectSpec) -> tuple[str | None, str | None, dict[str, str]]:
    """``(url, password, options)`` as stored: the URL without any password, secret query
    parameters moved into the options (explicit options win)."""
    options = {k: v for k, v in spec.options.items() if k not in URL_PASSWORD_KEYS}
    if not spec.url:
        return None, spec_password(spec), options
    url = make_url(spec.url)
    query = {k: v for k, v in url.query.items() if k not in URL_PASSWORD_KEYS}
    secret = {k: v for k, v in query.items() if is_secret_option(spec.engine, k)}
    # URL.set(password=None) keeps the old password in SQLAlchemy 2; _replace really drops it
    url = url._replace(password=None).set(query={k: v for k, v in query.items() if k not in secret})
    return url.render_as_string(hide_password=False), spec_password(spec), {**secret, **options}


def apply_project(row: ProjectRow, spec: ProjectSpec, box: SecretBox, *, keep_password: bool) -> ProjectRow:
    """Copy ``spec`` into ``row``; an absent password keeps the stored one when ``keep_password``
    (an empty one removes it), and so does ``***`` for a stored secret option."""
    url, password, options = normalized(spec)
    stored = dict(row.options or {}) if keep_password else {}
    row.name = spec.name
    row.engine = spec.engine.value if spec.engine else row.engine
    row.url = url
    row.host, row.port, row.database, row.username = spec.host, spec.port, spec.database, spec.username
    row.options = {k: _stored_option(spec.engine, k, v, stored, box) for k, v in options.items()}
    if password == "":
        row.password_enc = None
    elif password is not None or not keep_password:
        row.password_enc = box.encrypt(password)
    return row


def _stored_option(engine: Engine | None, key: str, value: str, stored: dict[str, Any], box: SecretBox) -> str:
    if not is_secret_option(engine, key):
        return value
    if value == KEEP and key in stored:
        return stored[key]
    return ENCRYPTED_PREFIX + (box.encrypt(value) or "")


def missing_kept_secrets(row: ProjectRow | None, spec: ProjectSpec) -> list[str]:
    """Secret options sent as ``***`` with no stored value to keep."""
    stored = (row.options or {}) if row is not None else {}
    return [k for k, v in normalized(spec)[2].items()
            if v == KEEP and is_secret_option(spec.engine, k) and k not in stored]


def kept_secrets(row: ProjectRow, spec: ProjectSpec) -> list[str]:
    """The stored secrets ``spec`` would reuse: ``password`` and ``options.<key>``."""
    kept = ["password"] if row.password_enc is not None and spec_password(spec) is None else []
    return kept + [f"options.{k}" for k, v in normalized(spec)[2].items()
                   if v == KEEP and is_secret_option(spec.engine, k) and k in (row.options or {})]


def _target(engine: Engine | None, url: str | None, host: str | None, port: int | None, database: str | None,
            username: str | None, options: dict[str, Any]) -> dict[str, Any]:
    if url:
        parsed = make_url(url)
        host, port, database = parsed.host, parsed.port, parsed.database
        username = parsed.username or username
        options = {**{k: v for k, v in parsed.query.items() if k not in URL_PASSWORD_KEYS}, **options}
    out = {"engine": engine.value if engine else None, "host": host.lower() if host else None,
           "port": port or get_dialect(engine).default_port if engine else port, "database": database,
           "username": username}
    targets = target_options(engine, options) if engine else options
    return out | {f"options.{k}": v for k, v in targets.items()}


def target_changes(row: ProjectRow, spec: ProjectSpec) -> dict[str, list[Any]]:
    """What ``spec`` changes of where the stored secrets go: ``{field: [saved, new]}``
    (engine, host, port, database, username and the options that redirect the connection
    or weaken its TLS). Option values are left out (``None``): they may be secrets."""
    url, _, options = normalized(spec)
    saved = _target(_engine(row.engine), row.url, row.host, row.port, row.database, row.username, row.options or {})
    new = _target(spec.engine, url, spec.host, spec.port, spec.database, spec.username, options)
    return {k: [None, None] if k.startswith("options.") else [saved.get(k), new.get(k)]
            for k in sorted(saved.keys() | new.keys()) if saved.get(k) != new.get(k)}


def with_kept_secrets(row: ProjectRow, spec: ProjectSpec, box: SecretBox) -> ProjectSpec:
    """``spec`` with the stored password and ``***`` secret options filled in (to connect with).
    Call only when :func:`target_changes` is empty."""
    url, password, options = normalized(spec)
    if password is None:
        password = box.decrypt(row.password_enc)
    stored = row.options or {}
    for key, value in options.items():
        if value == KEEP and key in stored and is_secret_option(spec.engine, key):
            options[key] = decrypt_option(stored[key], box)
    return spec.model_copy(update={"url": url, "password": password, "options": options})


def public_options(engine: str | None, options: dict[str, Any] | None) -> dict[str, str]:
    """Option keys with their values, ``***`` for secret-bearing ones."""
    eng = _engine(engine)
    return {k: MASK if is_secret_option(eng, k) else str(v) for k, v in (options or {}).items()}


def _public_url(row: ProjectRow) -> str | None:
    """The stored URL (which never holds the password) with ``***`` where a password is set."""
    if not row.url:
        return None
    if row.password_enc is None:
        return mask_secrets_in_text(masked_url(row.url))
    return mask_secrets_in_text(make_url(row.url)._replace(password="x").render_as_string(hide_password=True))


def project_out(row: ProjectRow) -> dict[str, Any]:
    """The public shape: no password, the url (if any) masked, secret option values masked."""
    return {
        "id": row.id,
        "name": row.name,
        "engine": row.engine,
        "url": _public_url(row),
        "host": row.host,
        "port": row.port,
        "database": row.database,
        "username": row.username,
        "options": public_options(row.engine, row.options),
        "has_password": row.password_enc is not None,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def project_snapshot(row: ProjectRow) -> ProjectSnapshot:
    """What a run request carries: the connection with its secrets still encrypted
    (:meth:`ProjectSnapshot.connection` decrypts them, worker side)."""
    return ProjectSnapshot(id=row.id, name=row.name, engine=row.engine, url=row.url, host=row.host, port=row.port,
                           database=row.database, username=row.username, options=dict(row.options or {}),
                           password_enc=row.password_enc)


def encrypt_stored_secrets(session: Session, box: SecretBox) -> int:
    """Encrypt secrets saved in clear before secret options existed (URL query passwords,
    secret options); returns how many projects changed. Runs at API start; idempotent."""
    changed = 0
    for row in session.scalars(sa.select(ProjectRow)):
        engine = _engine(row.engine)
        options = dict(row.options or {})
        url = make_url(row.url) if row.url else None
        if url is not None:
            query = dict(url.query)
            for key in URL_PASSWORD_KEYS:
                value = query.pop(key, None)
                if isinstance(value, str) and value and row.password_enc is None:
                    row.password_enc = box.encrypt(value)
            options = {**{k: v for k, v in query.items() if is_secret_option(engine, k)}, **options}
            query = {k: v for k, v in query.items() if not is_secret_option(engine, k)}
            new_url = url.set(query=query).render_as_string(hide_password=False)
        for key in URL_PASSWORD_KEYS:
            value = options.pop(key, None)
            if isinstance(value, str) and value and row.password_enc is None:
                row.password_enc = box.encrypt(value)
        clear = {k: v for k, v in options.items()
                 if is_secret_option(engine, k) and not (isinstance(v, str) and v.startswith(ENCRYPTED_PREFIX))}
        if clear or options != (row.options or {}) or (url is not None and new_url != row.url):
            row.options = options | {k: ENCRYPTED_PREFIX + (box.encrypt(str(v)) or "") for k, v in clear.items()}
            row.url = new_url if url is not None else None
            changed += 1
    session.commit()
    return changed

