"""Alerts: notification channels, the notification outbox and its attempts, default rules, dm_jobs.alerts,
an index on dm_executions.retry_of

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dm_channels",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("secret_enc", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "dm_notifications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("idempotency_key", sa.String(120), nullable=False, unique=True),
        sa.Column("execution_id", sa.Integer(), nullable=True, index=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("channel_id", sa.Integer(), nullable=False, index=True),
        sa.Column("event", sa.String(30), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_dm_notifications_due", "dm_notifications", ["status", "next_attempt_at"])
    op.create_table(
        "dm_notification_attempts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("notification_id", sa.Integer(), sa.ForeignKey("dm_notifications.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
    )
    op.create_table(
        "dm_alert_defaults",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("dm_jobs") as batch:
        batch.add_column(sa.Column("alerts", sa.JSON(), nullable=True))
    # the alert rules look for a job's runs: executions that no other execution retries
    op.create_index("ix_dm_executions_retry_of", "dm_executions", ["retry_of"])


def downgrade() -> None:
    op.drop_index("ix_dm_executions_retry_of", table_name="dm_executions")
    with op.batch_alter_table("dm_jobs") as batch:
        batch.drop_column("alerts")
    op.drop_table("dm_alert_defaults")
    op.drop_table("dm_notification_attempts")
    op.drop_index("ix_dm_notifications_due", table_name="dm_notifications")
    op.drop_table("dm_notifications")
    op.drop_table("dm_channels")
