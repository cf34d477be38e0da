"""gate review rounds

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 18:10:20.380348
"""

import warnings
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import SAWarning

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gate_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("gate_no", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", name="uq_gate_events_key"),
    )
    with op.batch_alter_table("gate_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gate_events_project_id"), ["project_id"], unique=False)

    op.create_table(
        "notifications",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("recipient", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
        ),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notifications_project_id"), ["project_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notifications_recipient"), ["recipient"], unique=False)

    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("round", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("terms", sa.JSON(), nullable=True))

    with op.batch_alter_table("gates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("round", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("workflow_id", sa.String(length=120), nullable=True))

    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("part", sa.Integer(), server_default="0", nullable=False))

    # The first schema's unique (project, gate, reviewer) was unnamed: name it as each backend did.
    sqlite = op.get_bind().dialect.name == "sqlite"
    old_unique = (
        "uq_review_tasks_project_id_gate_no_reviewer" if sqlite else "review_tasks_project_id_gate_no_reviewer_key"
    )
    with op.batch_alter_table(
        "review_tasks", schema=None, naming_convention={"uq": "uq_%(table_name)s_%(column_0_N_name)s"}
    ) as batch_op:
        batch_op.add_column(sa.Column("round", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("conflict_statement", sa.Text(), server_default="", nullable=False))
        batch_op.drop_constraint(old_unique, type_="unique")
        batch_op.create_unique_constraint("uq_review_tasks_round", ["project_id", "gate_no", "round", "reviewer"])

    # A gate can be decided once per round (Hold and Recycle run it again); a stage can hold one
    # reservation per part (its budget, then each recycle's extra budget).
    _replace_primary_key("decisions", ["project_id", "gate_no", "round"])
    _replace_primary_key("reservations", ["project_id", "stage_no", "part"])

    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("amended_at", sa.DateTime(timezone=True), nullable=True))


def _replace_primary_key(table: str, columns: list[str]) -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot alter a key: batch mode copies the table under the new key. SQLAlchemy warns
        # that the copy's key differs from the reflected one, which is the point here.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*specifies columns .* as primary_key=True", category=SAWarning)
            with op.batch_alter_table(table, recreate="always") as batch_op:
                batch_op.create_primary_key(f"pk_{table}", columns)
    else:
        op.drop_constraint(f"{table}_pkey", table, type_="primary")
        op.create_primary_key(f"{table}_pkey", table, columns)


def downgrade() -> None:
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_column("amended_at")
        batch_op.drop_column("version")

    with op.batch_alter_table("review_tasks", schema=None) as batch_op:
        batch_op.drop_constraint("uq_review_tasks_round", type_="unique")
        batch_op.drop_column("conflict_statement")
        batch_op.drop_column("round")

    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.drop_column("part")

    with op.batch_alter_table("gates", schema=None) as batch_op:
        batch_op.drop_column("workflow_id")
        batch_op.drop_column("due_at")
        batch_op.drop_column("round")

    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_column("terms")
        batch_op.drop_column("round")

    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_recipient"))
        batch_op.drop_index(batch_op.f("ix_notifications_project_id"))

    op.drop_table("notifications")
    with op.batch_alter_table("gate_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gate_events_project_id"))

    op.drop_table("gate_events")
