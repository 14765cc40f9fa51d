"""phase, rows_estimate and estimate_source on dm_executions (issue 18: live progress with ETA)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dm_executions") as batch:
        batch.add_column(sa.Column("phase", sa.String(20), nullable=True))
        batch.add_column(sa.Column("rows_estimate", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("estimate_source", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dm_executions") as batch:
        batch.drop_column("estimate_source")
        batch.drop_column("rows_estimate")
        batch.drop_column("phase")
