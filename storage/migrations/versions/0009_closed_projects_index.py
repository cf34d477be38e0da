"""an index of the projects by classification: the closed projects (a few in a hundred) are read
on their own by every view that names them under pseudonyms and by the audit log's filter; and
one of the gates by project, status and due date, so the dashboard's and the overdue list's open
gates are read from the index, not from a table of wide JSON definitions (project first: SQLite
probed a (status, due date) index once per project for the overdue list, 2.4 s at 10,000)

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
    op.create_index("ix_gates_project_id_status_due_at", "gates", ["project_id", "status", "due_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_gates_project_id_status_due_at", table_name="gates")
    op.drop_index("ix_projects_classification_id", table_name="projects")
