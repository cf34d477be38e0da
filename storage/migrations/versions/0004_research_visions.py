"""research_visions and technology_areas (each with the ministry responsible, retired_at), and
projects.vision_id / projects.area_id. Every existing project's free-text research_vision becomes
a vision row (the text, shortened to a title; the whole text as its description) that the project
then names, so existing projects keep working; a closed project's text is never published as one.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 02:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TITLE_MAX = 200


def _registry(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("title", sa.String(length=TITLE_MAX), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("ministry", sa.String(length=16), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["ministry"], ["ministries.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("title"),
    )


def title_of(text: str) -> str:
    """A vision's title from a project's free text: its whitespace collapsed, at most 200 characters."""
    words = " ".join(text.split())
    return words if len(words) <= TITLE_MAX else words[: TITLE_MAX - 1] + "…"


def _map_free_text() -> None:
    """One vision per distinct title of the projects' texts; each project then names its own."""
    bind = op.get_bind()
    ministries = {row[0] for row in bind.execute(sa.text("SELECT code FROM ministries"))}
    # Open work first: the registry is read by everyone signed in, so a closed project's own text
    # never becomes an entry of it; a closed project names a vision only where open work's text
    # made the same one (else none: "no registered vision" until its PM chooses one).
    projects = bind.execute(
        sa.text(
            "SELECT id, research_vision, funding_ministry, classification = 'closed' AS closed FROM projects"
            " ORDER BY classification = 'closed', created_at, id"
        )
    ).all()
    visions = sa.table(
        "research_visions",
        sa.column("id", sa.Integer),
        sa.column("title", sa.String),
        sa.column("description", sa.Text),
        sa.column("ministry", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    now = sa.func.now() if bind.dialect.name == "postgresql" else sa.func.datetime("now")
    ids: dict[str, int] = {}
    for project_id, text, ministry, closed in projects:
        title = title_of(text or "") or "(no research vision)"
        if closed and title not in ids:
            continue
        if title not in ids:
            bind.execute(
                visions.insert().values(
                    title=title,
                    description=text or "",
                    ministry=ministry if ministry in ministries else None,
                    created_at=now,
                    updated_at=now,
                )
            )
            ids[title] = bind.execute(
                sa.text("SELECT id FROM research_visions WHERE title = :t"), {"t": title}
            ).scalar_one()
        bind.execute(sa.text("UPDATE projects SET vision_id = :v WHERE id = :p"), {"v": ids[title], "p": project_id})


def upgrade() -> None:
    _registry("research_visions")
    _registry("technology_areas")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a column with its reference in place; batch mode would rebuild the projects
        # table, which other tables reference.
        op.execute("ALTER TABLE projects ADD COLUMN vision_id INTEGER REFERENCES research_visions (id)")
        op.execute("ALTER TABLE projects ADD COLUMN area_id INTEGER REFERENCES technology_areas (id)")
    else:
        op.add_column("projects", sa.Column("vision_id", sa.Integer(), nullable=True))
        op.add_column("projects", sa.Column("area_id", sa.Integer(), nullable=True))
        op.create_foreign_key("fk_projects_vision_id", "projects", "research_visions", ["vision_id"], ["id"])
        op.create_foreign_key("fk_projects_area_id", "projects", "technology_areas", ["area_id"], ["id"])
    _map_free_text()


def downgrade() -> None:
    # The projects keep their free text (research_vision was never changed), so nothing is lost.
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot drop a column that references another table; rebuild without them.
        with op.batch_alter_table("projects", recreate="always") as batch:
            batch.drop_column("area_id")
            batch.drop_column("vision_id")
    else:
        op.drop_constraint("fk_projects_area_id", "projects", type_="foreignkey")
        op.drop_constraint("fk_projects_vision_id", "projects", type_="foreignkey")
        op.drop_column("projects", "area_id")
        op.drop_column("projects", "vision_id")
    op.drop_table("technology_areas")
    op.drop_table("research_visions")
