"""job transform: optional SQL over @resultN run in the pipeline (issue 17)

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dm_jobs") as batch:
        batch.add_column(sa.Column("transform", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dm_jobs") as batch:
        batch.drop_column("transform")
