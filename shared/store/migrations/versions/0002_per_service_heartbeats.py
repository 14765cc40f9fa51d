"""per-service heartbeats, so the watchdog notices a dead extractor while its loader waits

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dm_executions") as batch:
        batch.add_column(sa.Column("extractor_heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("loader_heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("extractor_done", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("dm_executions") as batch:
        batch.drop_column("extractor_done")
        batch.drop_column("loader_heartbeat_at")
        batch.drop_column("extractor_heartbeat_at")
