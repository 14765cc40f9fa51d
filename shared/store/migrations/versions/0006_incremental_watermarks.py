"""incremental jobs: the job's option and stored watermark, each execution's watermark_from/to (issue 15)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dm_jobs") as batch:
        batch.add_column(sa.Column("incremental", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("watermark", sa.Text(), nullable=True))
        batch.add_column(sa.Column("watermark_state", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("watermark_set_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("dm_executions") as batch:
        batch.add_column(sa.Column("watermark_from", sa.Text(), nullable=True))
        batch.add_column(sa.Column("watermark_to", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dm_executions") as batch:
        batch.drop_column("watermark_to")
        batch.drop_column("watermark_from")
    with op.batch_alter_table("dm_jobs") as batch:
        batch.drop_column("watermark_set_at")
        batch.drop_column("watermark_state")
        batch.drop_column("watermark")
        batch.drop_column("incremental")
