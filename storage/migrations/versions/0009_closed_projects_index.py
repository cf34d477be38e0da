"""an index of the projects by classification: the closed projects (a few in a hundred) are read
on their own by every view that names them under pseudonyms and by the audit log's filter; and
one of the gates by status and due date with the project, so the dashboard's and the overdue
list's open gates are read from the index, not from a table of wide JSON definitions

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 14:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_projects_classification_id", "projects", ["classification", "id"], unique=False)
    op.create_index("ix_gates_status_due_at_project_id", "gates", ["status", "due_at", "project_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_gates_status_due_at_project_id", table_name="gates")
    op.drop_index("ix_projects_classification_id", table_name="projects")
