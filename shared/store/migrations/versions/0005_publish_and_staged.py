"""published_at and rows_staged on dm_executions (item 13: unpublished dispatches; item 14: staged counts)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dm_executions") as batch:
        batch.add_column(sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("rows_staged", sa.BigInteger(), nullable=False, server_default="0"))
    # executions dispatched before this migration were published by the scheduler of their time
    op.execute("UPDATE dm_executions SET published_at = dispatched_at WHERE dispatched_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("dm_executions") as batch:
        batch.drop_column("rows_staged")
        batch.drop_column("published_at")
