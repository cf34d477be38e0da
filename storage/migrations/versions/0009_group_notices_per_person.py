"""notices addressed to a role group before 0009 reach each member, one row per person

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from domain.proposal import Classification
from domain.roles import Role
from domain.security import decide
from storage.access import SEE_ALL

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

notifications = sa.table(
    "notifications",
    sa.column("key", sa.String),
    sa.column("project_id", sa.String),
    sa.column("recipient", sa.String),
    sa.column("kind", sa.String),
    sa.column("message", sa.Text),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
users = sa.table(
    "users",
    sa.column("username", sa.String),
    sa.column("roles", sa.JSON),
    sa.column("active", sa.Boolean),
    sa.column("clearance_level", sa.Integer),
    sa.column("compartments", sa.JSON),
)
projects = sa.table(
    "projects",
    sa.column("id", sa.String),
    sa.column("classification", sa.String),
    sa.column("label_level", sa.Integer),
    sa.column("label_compartments", sa.JSON),
)
grants = sa.table(
    "need_to_know_grants",
    sa.column("project_id", sa.String),
    sa.column("username", sa.String),
    sa.column("revoked_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    """Until now a notice to a group ("finance") was one row no member's GET /notifications
    matched. Give each active member who may read the project their own copy, keyed as new
    notices are (activities/notices.py: the notice's key and the username). The group rows stay:
    nobody reads them, and a downgrade has nothing to restore."""
    bind = op.get_bind()
    group_notices = bind.execute(
        # "finance" was the one group ever addressed by its bare name ("admin", say, is a person).
        sa.select(notifications).where(notifications.c.recipient == Role.FINANCE.value)
    ).all()
    if not group_notices:
        return
    see_all = {r.value for r in SEE_ALL}
    members = bind.execute(sa.select(users).where(users.c.active.is_(True)).order_by(users.c.username)).all()
    for notice in group_notices:
        project = bind.execute(sa.select(projects).where(projects.c.id == notice.project_id)).first()
        if project is None:
            continue  # a notice whose project is gone: nobody to be told
        granted = set(
            bind.execute(
                sa.select(grants.c.username).where(grants.c.project_id == project.id, grants.c.revoked_at.is_(None))
            ).scalars()
        )
        for user in members:
            allowed = decide(
                closed=project.classification == Classification.CLOSED.value,
                label_level=project.label_level,
                label_compartments=project.label_compartments or [],
                clearance_level=user.clearance_level,
                compartments=user.compartments or [],
                granted=user.username in granted,
                role_allows=notice.recipient in see_all,  # finance, the one group addressed so far
            )
            key = f"{notice.key}-{user.username}"
            if notice.recipient not in (user.roles or []) or not allowed:
                continue
            if bind.execute(sa.select(notifications.c.key).where(notifications.c.key == key)).first() is None:
                bind.execute(
                    notifications.insert().values(
                        {**notice._asdict(), "key": key, "recipient": user.username},
                    )
                )


def downgrade() -> None:
    pass  # the per-person copies are valid rows of the old schema too
