"""audit log: one entry per command (command_key), written with the command's effect

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 13:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (no table copy on SQLite), so the append-only triggers stay as they are.
    op.add_column("audit_log", sa.Column("command_key", sa.String(200), nullable=True))
    op.create_index("ix_audit_log_command_key", "audit_log", ["command_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_audit_log_command_key", table_name="audit_log")
    op.drop_column("audit_log", "command_key")  # SQLite 3.35+ drops it in place, triggers kept
