"""indexes for the keyset-paged lists: each list's order with its id tie-breaker, the filter
columns before it, and the columns the access rule looks up (a user's grants, the performer; on
PostgreSQL GIN indexes for a reviewer's and a ministry's membership of a project's JSON lists)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 11:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
# The lead re-chains the parallel branches' migrations at merge.
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES: list[tuple[str, str, list[str]]] = [
    ("ix_projects_created_at_id", "projects", ["created_at", "id"]),
    ("ix_projects_title_id", "projects", ["title", "id"]),
    ("ix_projects_current_trl_id", "projects", ["current_trl", "id"]),
    ("ix_projects_total_budget_id", "projects", ["total_budget", "id"]),
    ("ix_projects_status_closed_at_id", "projects", ["status", "closed_at", "id"]),
    ("ix_projects_programme_manager_created_at_id", "projects", ["programme_manager", "created_at", "id"]),
    ("ix_projects_performer", "projects", ["performer"]),
    ("ix_review_tasks_reviewer_created_at_id", "review_tasks", ["reviewer", "created_at", "id"]),
    ("ix_review_tasks_created_at_id", "review_tasks", ["created_at", "id"]),
    ("ix_handoffs_ministry_created_at_id", "handoffs", ["ministry", "created_at", "id"]),
    ("ix_handoffs_created_at_id", "handoffs", ["created_at", "id"]),
    ("ix_notifications_recipient_at_created_at_key", "notifications", ["recipient", "at", "created_at", "key"]),
    ("ix_need_to_know_grants_username", "need_to_know_grants", ["username"]),
    ("ix_audit_log_actor_id", "audit_log", ["actor", "id"]),
    ("ix_audit_log_action_id", "audit_log", ["action", "id"]),
    ("ix_audit_log_target_id", "audit_log", ["target", "id"]),
]


# storage/access.json_lists: JSONB containment on PostgreSQL (SQLite reads the JSON text with
# LIKE, which no index serves). Expression indexes, so not in the models: tests/test_storage's
# schema comparison leaves out these names (PG_ONLY).
PG_ONLY = {
    "ix_projects_reviewers_jsonb": "reviewers",
    "ix_projects_public_use_ministries_jsonb": "public_use_ministries",
}


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)
    if op.get_bind().dialect.name == "postgresql":
        for name, column in PG_ONLY.items():
            op.execute(f"CREATE INDEX {name} ON projects USING gin ((CAST({column} AS JSONB)))")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in PG_ONLY:
            op.execute(f"DROP INDEX {name}")
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
