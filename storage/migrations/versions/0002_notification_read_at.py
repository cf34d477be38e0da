"""notifications: read_at (when the recipient marked it read) and an index on (recipient, read_at)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("read_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_notifications_recipient_read_at", "notifications", ["recipient", "read_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_notifications_recipient_read_at", table_name="notifications")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("read_at")
