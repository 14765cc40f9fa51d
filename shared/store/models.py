"""Metadata tables: projects, jobs, executions, failed rows.

Times are stored in UTC; :class:`UTCDateTime` gives aware datetimes back on every
engine (SQLite keeps no offset). The schema is created by Alembic migrations
(shared/store/migrations), never by ``create_all`` at run time.
"""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """A timestamp stored as UTC and always returned timezone-aware."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class ProjectRow(Base):
    __tablename__ = "dm_projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    engine: Mapped[str] = mapped_column(sa.String(20))
    url: Mapped[str | None] = mapped_column(sa.String(2000))  # without the password
    host: Mapped[str | None] = mapped_column(sa.String(255))
    port: Mapped[int | None] = mapped_column(sa.Integer)
    database: Mapped[str | None] = mapped_column(sa.String(255))
    username: Mapped[str | None] = mapped_column(sa.String(255))
    password_enc: Mapped[str | None] = mapped_column(sa.Text)
    options: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class JobRow(Base):
    __tablename__ = "dm_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), index=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    steps: Mapped[list] = mapped_column(sa.JSON)
    destination: Mapped[dict] = mapped_column(sa.JSON)
    schedule: Mapped[str] = mapped_column(sa.String(200), default="")
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    max_retries: Mapped[int] = mapped_column(sa.Integer, default=3)
    timeout_minutes: Mapped[int] = mapped_column(sa.Integer, default=30)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    validate_before_execution: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    transform: Mapped[str | None] = mapped_column(sa.Text, nullable=True)  # SQL over @resultN (shared.transform)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    archived: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    alerts: Mapped[dict | None] = mapped_column(sa.JSON)  # shared.alerts.rules.AlertRules; None = the defaults
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    incremental: Mapped[dict | None] = mapped_column(sa.JSON)  # {column, initial, lag, include_nulls}
    watermark: Mapped[str | None] = mapped_column(sa.Text)  # every row with column <= this is loaded
    watermark_state: Mapped[dict | None] = mapped_column(sa.JSON)  # {kind, seen} (shared.incremental)
    watermark_set_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # last PUT …/watermark


class ExecutionRow(Base):
    __tablename__ = "dm_executions"
    __table_args__ = (sa.Index("ix_dm_executions_status_not_before", "status", "not_before"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(sa.ForeignKey("dm_jobs.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="queued")
    trigger: Mapped[str] = mapped_column(sa.String(20), default="manual")
    attempt: Mapped[int] = mapped_column(sa.Integer, default=1)
    retry_of: Mapped[int | None] = mapped_column(sa.ForeignKey("dm_executions.id"))
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # run request on the broker
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    extractor_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    loader_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    extractor_done: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rows_read: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    rows_inserted: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    rows_updated: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    rows_skipped: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    rows_deleted: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    rows_failed: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    rows_staged: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    error_kind: Mapped[str | None] = mapped_column(sa.String(50))
    error_trace: Mapped[str | None] = mapped_column(sa.Text)
    report: Mapped[list | None] = mapped_column(sa.JSON)
    warnings: Mapped[dict | None] = mapped_column(sa.JSON)  # counts by kind, e.g. {"zero_dates": 3}
    verification: Mapped[dict | None] = mapped_column(sa.JSON)  # the loader's check before COMMIT (job.verify)
    watermark_from: Mapped[str | None] = mapped_column(sa.Text)  # incremental: the stored value it started after
    watermark_to: Mapped[str | None] = mapped_column(sa.Text)  # …and the one it committed
    cancel_requested: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    phase: Mapped[str | None] = mapped_column(sa.String(20))  # shared.phases: what a running execution is doing
    rows_estimate: Mapped[int | None] = mapped_column(sa.BigInteger)  # the source planner's row estimate
    estimate_source: Mapped[str | None] = mapped_column(sa.String(200))


class TokenRow(Base):
    """An API token: only its SHA-256 is stored; ``prefix`` identifies it in lists."""

    __tablename__ = "dm_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(20))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditRow(Base):
    """Who did what to a job (or project), and when."""

    __tablename__ = "dm_audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(sa.String(200))
    action: Mapped[str] = mapped_column(sa.String(50))
    job_id: Mapped[int | None] = mapped_column(sa.Integer, index=True)
    project_id: Mapped[int | None] = mapped_column(sa.Integer)
    execution_id: Mapped[int | None] = mapped_column(sa.Integer)
    details: Mapped[dict] = mapped_column(sa.JSON, default=dict)


class FailedRowRow(Base):
    __tablename__ = "dm_failed_rows"
    __table_args__ = (sa.UniqueConstraint("execution_id", "position", name="uq_dm_failed_rows_position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    execution_id: Mapped[int] = mapped_column(sa.ForeignKey("dm_executions.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(sa.BigInteger)
    values: Mapped[dict] = mapped_column(sa.JSON)
    error: Mapped[str] = mapped_column(sa.Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
