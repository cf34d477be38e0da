"""repair_runs: the daily repair's recorded runs (what a terminate left behind and was put right,
and the drift left alone), for the operations page

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
# The lead re-chains the parallel branches' migrations at merge.
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "repair_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ran_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ran_by", sa.String(length=120), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("repaired", sa.JSON(), nullable=False),
        sa.Column("released", sa.BigInteger(), nullable=False),
        sa.Column("drift", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_repair_runs_ran_at", "repair_runs", ["ran_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_repair_runs_ran_at", table_name="repair_runs")
    op.drop_table("repair_runs")
