"""hand-off workflows (kinds, answers, deadlines, re-routes) and need-to-know (clearances, labels, grants)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UQ_SQLITE = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    # A project may hand off to one ministry twice: early for demonstration, then for public use.
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("handoffs_project_id_ministry_key", "handoffs", type_="unique")
        batch = op.batch_alter_table("handoffs")
    else:
        batch = op.batch_alter_table("handoffs", naming_convention=UQ_SQLITE)
    with batch as b:
        if op.get_bind().dialect.name != "postgresql":
            b.drop_constraint("uq_handoffs_project_id", type_="unique")
        b.add_column(sa.Column("kind", sa.String(16), server_default="final", nullable=False))
        b.add_column(sa.Column("workflow_id", sa.String(120), nullable=True))
        b.add_column(sa.Column("decided_by", sa.String(64), nullable=True))
        b.add_column(sa.Column("receiving_programme", sa.Text(), server_default="", nullable=False))
        b.add_column(sa.Column("reason", sa.Text(), server_default="", nullable=False))
        b.add_column(sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True))
        b.add_column(sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))
        b.add_column(sa.Column("rerouted_from", sa.String(80), nullable=True))
        b.add_column(sa.Column("rerouted_to", sa.String(16), nullable=True))
        b.create_unique_constraint("uq_handoffs_project_ministry_kind", ["project_id", "ministry", "kind"])
    with op.batch_alter_table("projects") as b:
        b.add_column(sa.Column("public_use_achieved", sa.Boolean(), nullable=True))
        b.add_column(sa.Column("label_level", sa.Integer(), server_default="0", nullable=False))
        b.add_column(sa.Column("label_compartments", sa.JSON(), server_default="[]", nullable=False))
    with op.batch_alter_table("users") as b:
        b.add_column(sa.Column("clearance_level", sa.Integer(), server_default="0", nullable=False))
        b.add_column(sa.Column("compartments", sa.JSON(), server_default="[]", nullable=False))
    op.create_table(
        "need_to_know_grants",
        sa.Column("project_id", sa.String(40), sa.ForeignKey("projects.id"), primary_key=True),
        sa.Column("username", sa.String(64), sa.ForeignKey("users.username"), primary_key=True),
        sa.Column("granted_by", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(64), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("need_to_know_grants")
    with op.batch_alter_table("users") as b:
        b.drop_column("compartments")
        b.drop_column("clearance_level")
    with op.batch_alter_table("projects") as b:
        b.drop_column("label_compartments")
        b.drop_column("label_level")
        b.drop_column("public_use_achieved")
    with op.batch_alter_table("handoffs") as b:
        b.drop_constraint("uq_handoffs_project_ministry_kind", type_="unique")
        for column in (
            "rerouted_to",
            "rerouted_from",
            "escalated_at",
            "deadline_at",
            "reason",
            "receiving_programme",
            "decided_by",
            "workflow_id",
            "kind",
        ):
            b.drop_column(column)
        b.create_unique_constraint("uq_handoffs_project_id", ["project_id", "ministry"])
