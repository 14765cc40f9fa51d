"""verification on dm_executions: the loader's destination check before COMMIT (job option verify)

The job option ``verify`` itself is stored with the job's destination (JSON), like zero_dates.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dm_executions") as batch:
        batch.add_column(sa.Column("verification", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dm_executions") as batch:
        batch.drop_column("verification")
