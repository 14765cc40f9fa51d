"""Tables of the alerts: channels, the notification outbox, delivery attempts, default rules.

Kept apart from shared/store/models.py (same declarative base, same migrations folder).
"""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from shared.store.models import Base, UTCDateTime, utcnow


class ChannelRow(Base):
    """Where notifications go. ``secret_enc`` is Fernet-encrypted and never returned."""

    __tablename__ = "dm_channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    settings: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    secret_enc: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class NotificationRow(Base):
    """One notification of one event to one channel (the outbox row)."""

    __tablename__ = "dm_notifications"
    __table_args__ = (sa.Index("ix_dm_notifications_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(sa.String(120), unique=True)
    execution_id: Mapped[int | None] = mapped_column(sa.Integer, index=True)  # None: a test notification
    job_id: Mapped[int | None] = mapped_column(sa.Integer)
    channel_id: Mapped[int] = mapped_column(sa.Integer, index=True)
    event: Mapped[str] = mapped_column(sa.String(30))
    payload: Mapped[dict] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(20), default="pending")  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NotificationAttemptRow(Base):
    """One delivery attempt: when, how it ended, the receiver's answer (code and a short text)."""

    __tablename__ = "dm_notification_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(sa.ForeignKey("dm_notifications.id", ondelete="CASCADE"),
                                                 index=True)
    attempt: Mapped[int] = mapped_column(sa.Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(sa.String(20))  # sending | sent | error | interrupted
    response_code: Mapped[int | None] = mapped_column(sa.Integer)
    response: Mapped[str | None] = mapped_column(sa.Text)


class AlertDefaultsRow(Base):
    """The rules of every job without its own ``alerts`` (one row, id 1)."""

    __tablename__ = "dm_alert_defaults"

    id: Mapped[int] = mapped_column(primary_key=True)
    rules: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
