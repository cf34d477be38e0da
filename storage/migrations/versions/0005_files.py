"""files: uploaded attachments (evidence packages, progress reports, hand-off annexes); the bytes
are in the blob store under their SHA-256

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("project_id", sa.String(length=40), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("attached_kind", sa.String(length=16), nullable=False),
        sa.Column("attached_ref", sa.String(length=40), nullable=False),
        sa.Column("encrypted", sa.Boolean(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), sa.ForeignKey("users.username"), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("project_id", "attached_kind", "attached_ref", "sha256", name="uq_files_attachment"),
    )
    op.create_index("ix_files_sha256", "files", ["sha256"])
    op.create_index("ix_files_attached", "files", ["project_id", "attached_kind", "attached_ref"])


def downgrade() -> None:
    op.drop_index("ix_files_attached", table_name="files")
    op.drop_index("ix_files_sha256", table_name="files")
    op.drop_table("files")
