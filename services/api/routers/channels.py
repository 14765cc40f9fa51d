"""/api/channels (CRUD, test), /api/alerts/defaults, /api/executions/{id}/notifications."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel
from sqlalchemy.orm import Session

from services.api.deps import IdPath, RuntimeDep, SessionDep
from services.api.errors import FieldErrors, field_error
from services.api.security import PrincipalDep, audit
from shared.alerts.channels import ChannelSpec, channel_out, check_channel
from shared.alerts.delivery import send_to
from shared.alerts.models import AlertDefaultsRow, ChannelRow, NotificationAttemptRow, NotificationRow
from shared.alerts.payload import build_payload
from shared.alerts.rules import AlertRules
from shared.store.models import ExecutionRow, JobRow, utcnow

router = APIRouter(tags=["alerts"])


class ChannelOut(BaseModel):
    id: int
    name: str
    kind: str
    settings: dict[str, Any]
    has_secret: bool
    created_at: datetime | None = None
    updated_at: datetime | None = None


class NotificationOut(BaseModel):
    """One delivery attempt (``attempt`` 0 and ``status`` pending: not attempted yet)."""

    notification_id: int
    channel_id: int
    channel_name: str | None = None
    event: str
    attempt: int
    status: str
    sent_at: datetime | None = None
    response_code: int | None = None
    response: str | None = None
    idempotency_key: str
    next_attempt_at: datetime | None = None


def _channel(session: Session, channel_id: int) -> ChannelRow:
    row = session.get(ChannelRow, channel_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"channel {channel_id} not found")
    return row


def _apply(session: Session, row: ChannelRow, spec: ChannelSpec, rt: RuntimeDep) -> None:
    settings, problems = check_channel(spec, has_stored_secret=bool(row.secret_enc) and row.kind == spec.kind.value)
    taken = session.scalar(sa.select(ChannelRow.id).where(ChannelRow.name == spec.name, ChannelRow.id != row.id))
    if taken:
        problems.append((["body", "name"], f"a channel named {spec.name!r} already exists"))
    if problems:
        raise FieldErrors([field_error(loc, msg) for loc, msg in problems])
    if spec.secret is None and row.kind and row.kind != spec.kind.value:
        row.secret_enc = None  # another kind's secret means nothing here
    row.name, row.kind, row.settings = spec.name, spec.kind.value, settings
    if spec.secret is not None:
        row.secret_enc = rt.box.encrypt(spec.secret) if spec.secret else None


@router.get("/api/channels", response_model=list[ChannelOut])
def list_channels(session: SessionDep) -> list[dict]:
    return [channel_out(r) for r in session.scalars(sa.select(ChannelRow).order_by(ChannelRow.name)).all()]


@router.post("/api/channels", response_model=ChannelOut, status_code=status.HTTP_201_CREATED)
def create_channel(spec: ChannelSpec, session: SessionDep, rt: RuntimeDep, who: PrincipalDep) -> dict:
    row = ChannelRow()
    _apply(session, row, spec, rt)
    session.add(row)
    session.flush()
    audit(session, who, "channel.create", channel_id=row.id, name=row.name, kind=row.kind)
    session.commit()
    return channel_out(row)


@router.get("/api/channels/{channel_id}", response_model=ChannelOut)
def read_channel(channel_id: IdPath, session: SessionDep) -> dict:
    return channel_out(_channel(session, channel_id))


@router.put("/api/channels/{channel_id}", response_model=ChannelOut)
def replace_channel(channel_id: IdPath, spec: ChannelSpec, session: SessionDep, rt: RuntimeDep,
                    who: PrincipalDep) -> dict:
    """Replace a channel; an omitted ``secret`` keeps the stored one (an empty one removes it)."""
    row = _channel(session, channel_id)
    _apply(session, row, spec, rt)
    audit(session, who, "channel.update", channel_id=row.id, secret_changed=spec.secret is not None)
    session.commit()
    return channel_out(row)


def _users(session: Session, channel_id: int) -> list[str]:
    """Who notifies this channel: job names, and 'the defaults'."""
    jobs = session.scalars(sa.select(JobRow).where(JobRow.alerts.is_not(None), JobRow.archived.is_(False))).all()
    users = [j.name for j in jobs if channel_id in ((j.alerts or {}).get("channels") or [])]
    defaults = session.get(AlertDefaultsRow, 1)
    if defaults is not None and channel_id in ((defaults.rules or {}).get("channels") or []):
        users.append("the defaults for all jobs")
    return users


@router.delete("/api/channels/{channel_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def delete_channel(channel_id: IdPath, session: SessionDep, who: PrincipalDep) -> Response:
    """Delete a channel no job's alert rules use (409 names those that do)."""
    row = _channel(session, channel_id)
    if users := _users(session, channel_id):
        raise HTTPException(status.HTTP_409_CONFLICT, f"channel {channel_id} is used by: {', '.join(users)}")
    session.delete(row)
    audit(session, who, "channel.delete", channel_id=channel_id, name=row.name)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/api/channels/{channel_id}/test", response_model=NotificationOut)
def test_channel(channel_id: IdPath, session: SessionDep, rt: RuntimeDep, who: PrincipalDep) -> dict:
    """Send a test notification now (one attempt, no retry) and say how it went."""
    channel = _channel(session, channel_id)
    now, key = utcnow(), f"dm-test-{uuid.uuid4().hex}"
    payload = build_payload(key=key, event="test", job={"id": None, "name": "(test notification)", "enabled": None},
                            execution={"status": "test"}, link=rt.public_url, created_at=now)
    note = NotificationRow(idempotency_key=key, channel_id=channel.id, event="test", payload=payload,
                           status="sending", attempts=1, next_attempt_at=now, created_at=now)
    session.add(note)
    session.flush()
    session.commit()
    outcome = send_to(channel, note, box=rt.box, timeout_s=rt.alerts.alert_timeout_s)
    note.status, note.sent_at = ("sent", utcnow()) if outcome.ok else ("failed", None)
    attempt = NotificationAttemptRow(notification_id=note.id, attempt=1, at=now, status="sent" if outcome.ok
                                     else "error", response_code=outcome.code, response=outcome.response)
    session.add(attempt)
    audit(session, who, "channel.test", channel_id=channel.id, ok=outcome.ok)
    session.commit()
    return _attempt_out(note, attempt, channel.name)


@router.get("/api/alerts/defaults", response_model=AlertRules)
def read_defaults(session: SessionDep) -> dict:
    """The rules of every job without its own ``alerts`` (no channels = no alerts)."""
    row = session.get(AlertDefaultsRow, 1)
    return AlertRules.model_validate(row.rules if row is not None and row.rules else {"channels": []}).model_dump()


@router.put("/api/alerts/defaults", response_model=AlertRules)
def replace_defaults(rules: AlertRules, session: SessionDep, who: PrincipalDep) -> dict:
    check_channels(session, rules, loc=["body", "channels"])
    row = session.get(AlertDefaultsRow, 1) or AlertDefaultsRow(id=1)
    row.rules = rules.model_dump()
    session.add(row)
    audit(session, who, "alerts.defaults", channels=rules.channels, on=rules.on)
    session.commit()
    return row.rules


def channel_errors(session: Session, rules: AlertRules | None, *, loc: list) -> list[dict]:
    """A field error naming ``loc`` when rules name channels that do not exist."""
    if rules is None or not rules.channels:
        return []
    known = set(session.scalars(sa.select(ChannelRow.id).where(ChannelRow.id.in_(rules.channels))).all())
    missing = [c for c in rules.channels if c not in known]
    return [field_error(loc, f"unknown channels {missing}")] if missing else []


def check_channels(session: Session, rules: AlertRules | None, *, loc: list) -> None:
    """Raises FieldErrors (422) when rules name channels that do not exist."""
    if errors := channel_errors(session, rules, loc=loc):
        raise FieldErrors(errors)


def _attempt_out(note: NotificationRow, attempt: NotificationAttemptRow | None, name: str | None) -> dict:
    return {"notification_id": note.id, "channel_id": note.channel_id, "channel_name": name, "event": note.event,
            "attempt": attempt.attempt if attempt else 0, "status": attempt.status if attempt else note.status,
            "sent_at": attempt.at if attempt else None, "response_code": attempt.response_code if attempt else None,
            "response": attempt.response if attempt else None, "idempotency_key": note.idempotency_key,
            "next_attempt_at": note.next_attempt_at if note.status == "pending" else None}


@router.get("/api/executions/{execution_id}/notifications", response_model=list[NotificationOut])
def execution_notifications(execution_id: IdPath, session: SessionDep) -> list[dict]:
    """Every delivery attempt of the execution's notifications, oldest first; a notification
    not attempted yet appears once with attempt 0."""
    if session.get(ExecutionRow, execution_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"execution {execution_id} not found")
    notes = session.scalars(sa.select(NotificationRow).where(NotificationRow.execution_id == execution_id)
                            .order_by(NotificationRow.id)).all()
    names = dict(session.execute(sa.select(ChannelRow.id, ChannelRow.name)).all())
    attempts: dict[int, list[NotificationAttemptRow]] = {}
    if notes:
        for a in session.scalars(sa.select(NotificationAttemptRow).where(NotificationAttemptRow.notification_id.in_(
                [n.id for n in notes])).order_by(NotificationAttemptRow.id)).all():
            attempts.setdefault(a.notification_id, []).append(a)
    out = []
    for note in notes:
        out += [_attempt_out(note, a, names.get(note.channel_id)) for a in attempts.get(note.id, [])] or [
            _attempt_out(note, None, names.get(note.channel_id))]
    return out
